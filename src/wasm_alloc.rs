//! The WASM builds' global allocator: dlmalloc (what std uses on `wasm32-unknown-unknown`, and
//! wasi-libc's malloc on `wasm32-wasip1`), except that the linear memory grows in large steps.
//!
//! Why: those allocators grow the memory by about what each request needs (64 KiB pages at a
//! time), so hardening a 26 MB stream meant hundreds of `memory.grow`s. V8 (node, browsers, kpt's
//! `nodejs` WASM runtime) counts every grow as external memory and, past a threshold, answers it
//! with a full mark-compact GC: about 600 of them, a third of the run's time under node. Growing
//! by half the current size (at least 1 MiB, at most 256 MiB per step) makes that a handful.
//! Pages the program never touches are never committed by the runtimes, so the cost of growing
//! ahead is address space, not memory.
//!
//! Small blocks (up to [`SMALL`] bytes) are kept, once freed, on a free list per 16-byte size
//! class and handed out again from there (a pop and a push instead of dlmalloc's bins): a stream
//! run makes and drops a few small values per scalar, and under node this made the WASI build
//! about 15 % faster on the bench stream. Freed small blocks are not given back to dlmalloc, so
//! the memory held is each class's peak.
//!
//! Every artifact declares it (`#[global_allocator]`) itself, so that a library user's own
//! allocator stays possible. On WASM with threads (`wasm32-wasip1-threads`, where
//! `build.rs` sets `cfg(wasm_threads)`) every entry point holds a spin lock around the free lists and
//! dlmalloc; without it (every other WASM build) there is no lock: such a module has one thread.

/// A WASM page.
pub const PAGE: usize = 64 * 1024;
/// Smallest step: 1 MiB.
pub const MIN_STEP_PAGES: usize = 16;
/// Largest step beyond what a request needs: 256 MiB.
pub const MAX_STEP_PAGES: usize = 4096;

/// How many pages to grow by when `needed` more pages are required and the memory has `current`
/// pages: half the current size, within [`MIN_STEP_PAGES`, `MAX_STEP_PAGES`], and never less than
/// `needed`.
pub fn step_pages(needed: usize, current: usize) -> usize {
    needed.max((current / 2).clamp(MIN_STEP_PAGES, MAX_STEP_PAGES))
}

/// The largest small block: requests up to this size (alignment up to 8) are served from free
/// lists per 16-byte size class.
pub const SMALL: usize = 512;
/// How many size classes there are.
pub const CLASSES: usize = SMALL / 16;

/// The size class (0-based; blocks of class `c` are `(c + 1) * 16` bytes) of a small request
/// (`size`, `align`), or `None` for a request dlmalloc serves directly.
#[inline]
pub fn class(layout: &core::alloc::Layout) -> Option<usize> {
    (layout.size() <= SMALL && layout.align() <= 8).then(|| layout.size().max(1).div_ceil(16) - 1)
}

#[cfg(target_family = "wasm")]
pub use imp::WasmAlloc;

#[cfg(target_family = "wasm")]
mod imp {
    use super::{class, step_pages, CLASSES, PAGE};
    use core::alloc::{GlobalAlloc, Layout};
    use core::arch::wasm32;
    use core::cell::UnsafeCell;
    use core::ptr;
    use dlmalloc::{Allocator, Dlmalloc};

    /// The system side of dlmalloc: fresh pages from `memory.grow`, in steps of [`step_pages`].
    pub struct Grow;

    // SAFETY: `alloc` hands out fresh, zeroed pages nobody else owns; nothing is ever given back
    // (WASM memory cannot shrink), which the other methods say.
    unsafe impl Allocator for Grow {
        fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
            let needed = size.div_ceil(PAGE);
            let current = wasm32::memory_size(0);
            let mut pages = step_pages(needed, current);
            let mut previous = wasm32::memory_grow(0, pages);
            if previous == usize::MAX && pages > needed {
                // Near the 4 GiB limit: take only what this request needs.
                pages = needed;
                previous = wasm32::memory_grow(0, pages);
            }
            if previous == usize::MAX {
                return (ptr::null_mut(), 0, 0);
            }
            let base = previous * PAGE;
            let mut bytes = pages * PAGE;
            if base.wrapping_add(bytes) == 0 {
                // The very end of the address space: a pointer one past the region would wrap.
                bytes -= 16;
            }
            (base as *mut u8, bytes, 0)
        }

        fn remap(&self, _ptr: *mut u8, _old: usize, _new: usize, _can_move: bool) -> *mut u8 {
            ptr::null_mut()
        }

        fn free_part(&self, _ptr: *mut u8, _old: usize, _new: usize) -> bool {
            false
        }

        fn free(&self, _ptr: *mut u8, _size: usize) -> bool {
            false
        }

        fn can_release_part(&self, _flags: u32) -> bool {
            false
        }

        fn allocates_zeros(&self) -> bool {
            true
        }

        fn page_size(&self) -> usize {
            PAGE
        }
    }

    /// `#[global_allocator] static ALLOC: WasmAlloc = WasmAlloc::new();`
    ///
    /// Small blocks (up to [`SMALL`] bytes, alignment up to 8) are taken from dlmalloc rounded
    /// up to a multiple of 16 bytes and, once freed, kept on a free list per size (never given
    /// back to dlmalloc): a stream's many short-lived small values are then a pop and a push.
    pub struct WasmAlloc {
        dl: UnsafeCell<Dlmalloc<Grow>>,
        /// Free small blocks, one list per 16-byte size class: each block's first word is the next.
        free: UnsafeCell<[*mut u8; CLASSES]>,
        /// Held while `dl` or `free` is used (WASM with threads only).
        #[cfg(wasm_threads)]
        locked: core::sync::atomic::AtomicBool,
    }

    // SAFETY: without threads (`cfg(wasm_threads)`, see `build.rs`) a WASM module has one thread, so the allocator
    // is never entered twice at once; with it, every entry point holds `locked` ([`WasmAlloc::lock`])
    // while it touches `dl` and `free`, and none calls another.
    unsafe impl Sync for WasmAlloc {}

    /// Releases the lock when dropped.
    #[cfg(wasm_threads)]
    pub struct Held<'a>(&'a core::sync::atomic::AtomicBool);

    /// Nothing to release: one thread.
    #[cfg(not(wasm_threads))]
    pub struct Held;

    #[cfg(wasm_threads)]
    impl Drop for Held<'_> {
        #[inline]
        fn drop(&mut self) {
            self.0.store(false, core::sync::atomic::Ordering::Release);
        }
    }

    impl WasmAlloc {
        #[allow(clippy::new_without_default)]
        pub const fn new() -> Self {
            WasmAlloc {
                dl: UnsafeCell::new(Dlmalloc::new_with_allocator(Grow)),
                free: UnsafeCell::new([ptr::null_mut(); CLASSES]),
                #[cfg(wasm_threads)]
                locked: core::sync::atomic::AtomicBool::new(false),
            }
        }

        /// Takes the lock: a spin lock (no thread holds it for long, and the main thread of a
        /// browser may not block in `memory.atomic.wait`).
        #[cfg(wasm_threads)]
        #[inline]
        fn lock(&self) -> Held<'_> {
            use core::sync::atomic::Ordering::{Acquire, Relaxed};
            while self
                .locked
                .compare_exchange_weak(false, true, Acquire, Relaxed)
                .is_err()
            {
                while self.locked.load(Relaxed) {
                    core::hint::spin_loop();
                }
            }
            Held(&self.locked)
        }

        /// No lock: one thread.
        #[cfg(not(wasm_threads))]
        #[inline(always)]
        fn lock(&self) -> Held {
            Held
        }

        /// A block of size class `c`: the head of its free list, else a new one from dlmalloc.
        #[inline]
        unsafe fn small(&self, c: usize) -> *mut u8 {
            let head = &mut (*self.free.get())[c];
            if head.is_null() {
                return (*self.dl.get()).malloc((c + 1) * 16, 8);
            }
            let block = *head;
            *head = *(block as *mut *mut u8);
            block
        }
    }

    impl WasmAlloc {
        /// [`GlobalAlloc::alloc`], the lock held by the caller.
        #[inline]
        unsafe fn alloc_held(&self, layout: Layout) -> *mut u8 {
            match class(&layout) {
                Some(c) => self.small(c),
                None => (*self.dl.get()).malloc(layout.size(), layout.align()),
            }
        }

        /// [`GlobalAlloc::dealloc`], the lock held by the caller.
        #[inline]
        unsafe fn dealloc_held(&self, block: *mut u8, layout: Layout) {
            match class(&layout) {
                Some(c) => {
                    let head = &mut (*self.free.get())[c];
                    *(block as *mut *mut u8) = *head;
                    *head = block;
                }
                None => (*self.dl.get()).free(block, layout.size(), layout.align()),
            }
        }
    }

    // SAFETY: small blocks come from dlmalloc at their class's full size and alignment 8 and are
    // handed out again only for requests that fit them; everything else forwards to dlmalloc
    // with the layout's size and alignment, as std's wasm allocator does. Each entry point takes
    // the lock once (the `_held` helpers do not). Not inlined: under LTO every allocation site
    // would otherwise carry a copy of the entry code (+15 % module size).
    unsafe impl GlobalAlloc for WasmAlloc {
        #[inline(never)]
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let _held = self.lock();
            self.alloc_held(layout)
        }

        #[inline(never)]
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            let _held = self.lock();
            match class(&layout) {
                Some(c) => {
                    let block = self.small(c);
                    if !block.is_null() {
                        ptr::write_bytes(block, 0, layout.size());
                    }
                    block
                }
                None => (*self.dl.get()).calloc(layout.size(), layout.align()),
            }
        }

        #[inline(never)]
        unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
            let _held = self.lock();
            self.dealloc_held(block, layout)
        }

        #[inline(never)]
        unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let _held = self.lock();
            let new = Layout::from_size_align_unchecked(new_size, layout.align());
            match (class(&layout), class(&new)) {
                (None, None) => {
                    (*self.dl.get()).realloc(block, layout.size(), layout.align(), new_size)
                }
                (Some(a), Some(b)) if a == b => block,
                _ => {
                    let moved = self.alloc_held(new);
                    if !moved.is_null() {
                        ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                        self.dealloc_held(block, layout);
                    }
                    moved
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_requests_fall_in_16_byte_classes_that_hold_them() {
        use core::alloc::Layout;
        let at = |size, align| class(&Layout::from_size_align(size, align).unwrap());
        assert_eq!(at(0, 1), Some(0));
        assert_eq!(at(1, 1), Some(0));
        assert_eq!(at(16, 8), Some(0));
        assert_eq!(at(17, 4), Some(1));
        assert_eq!(at(SMALL, 8), Some(CLASSES - 1));
        // Too big, or aligned past what dlmalloc gives every block: dlmalloc serves them.
        assert_eq!(at(SMALL + 1, 8), None);
        assert_eq!(at(32, 16), None);
        // Every class's blocks hold every request of it.
        for size in 0..=SMALL {
            let c = at(size, 8).unwrap();
            assert!((c + 1) * 16 >= size && c < CLASSES);
        }
    }

    #[test]
    fn grows_by_half_the_memory_within_bounds() {
        // A small memory still grows by 1 MiB.
        assert_eq!(step_pages(1, 17), MIN_STEP_PAGES);
        // Half the current size.
        assert_eq!(step_pages(1, 1000), 500);
        // Never more than 256 MiB beyond the request...
        assert_eq!(step_pages(1, 40_000), MAX_STEP_PAGES);
        // ...and never less than the request.
        assert_eq!(step_pages(10_000, 1000), 10_000);
        assert_eq!(step_pages(10_000, 40_000), 10_000);
    }

    #[test]
    fn a_stream_of_small_requests_grows_a_few_times() {
        // 200 MB of 64 KiB requests: std's allocator grew ~3,200 times, this one a dozen.
        let (mut current, mut free, mut grows) = (17usize, 0usize, 0);
        for _ in 0..3200 {
            if free == 0 {
                let step = step_pages(1, current);
                current += step;
                free += step;
                grows += 1;
            }
            free -= 1;
        }
        assert!(grows <= 16, "{grows} grows");
    }
}
