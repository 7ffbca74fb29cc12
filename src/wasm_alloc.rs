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
        #[cfg(not(wasm_threads))]
        #[inline]
        unsafe fn take(&self, c: usize) -> *mut u8 {
            let head = &mut (*self.free.get())[c];
            if head.is_null() {
                return (*self.dl.get()).malloc((c + 1) * 16, 8);
            }
            let block = *head;
            *head = *(block as *mut *mut u8);
            block
        }

        /// Puts a freed block of size class `c` on its free list.
        #[cfg(not(wasm_threads))]
        #[inline]
        unsafe fn give(&self, block: *mut u8, c: usize) {
            let head = &mut (*self.free.get())[c];
            *(block as *mut *mut u8) = *head;
            *head = block;
        }

        /// A block of size class `c`: from this thread's cache, else a batch of [`local::BATCH`]
        /// blocks for the cache: one the other threads gave back (taken under the lock in one
        /// step), else one cut from a new dlmalloc chunk (small blocks never go back to dlmalloc,
        /// so they need not be its own).
        #[cfg(wasm_threads)]
        #[inline]
        unsafe fn take(&self, c: usize) -> *mut u8 {
            let size = (c + 1) * 16;
            match local::with(|cache| cache.pop(c)) {
                Some(Some(block)) => return block,
                Some(None) => {}
                None => {
                    // No cache: only while the thread's storage is unavailable.
                    let _held = self.lock();
                    return (*self.dl.get()).malloc(size, 8);
                }
            }
            let (batch, shared) = {
                let _held = self.lock();
                let head = &mut (*self.free.get())[c];
                if head.is_null() {
                    ((*self.dl.get()).malloc(size * local::BATCH, 8), false)
                } else {
                    let batch = *head;
                    *head = *(batch as *mut *mut u8).add(1);
                    (batch, true)
                }
            };
            if batch.is_null() {
                let _held = self.lock();
                return (*self.dl.get()).malloc(size, 8);
            }
            let _ = local::with(|cache| {
                if shared {
                    cache.put_batch(c, *(batch as *mut *mut u8), local::BATCH - 1);
                } else {
                    for k in 1..local::BATCH {
                        cache.push(batch.add(k * size), c);
                    }
                }
            });
            batch
        }

        /// Puts a freed block of size class `c` in this thread's cache; when the cache's list
        /// of that class is full, [`local::BATCH`] of them go to the shared free lists as one
        /// batch (under the lock in one step).
        #[cfg(wasm_threads)]
        #[inline]
        unsafe fn give(&self, block: *mut u8, c: usize) {
            // Without a cache (only while the thread's storage is unavailable) the block is
            // dropped: it may be part of a batch, which dlmalloc does not know.
            let over = |cache: &mut local::Cache| cache.push(block, c).then(|| cache.take_batch(c));
            let Some(Some(batch)) = local::with(over) else {
                return;
            };
            let _held = self.lock();
            let head = &mut (*self.free.get())[c];
            *(batch as *mut *mut u8).add(1) = *head;
            *head = batch;
        }
    }

    /// Each thread's cache of free small blocks (WASM with threads): most small requests and
    /// frees then take no lock. At most `cache::LIMIT` blocks per class stay in a cache (about
    /// 0.5 MiB per thread at most); the blocks of a thread that ends stay in its cache. Between
    /// threads blocks move in batches of [`local::BATCH`]: the shared free list of a class
    /// (`WasmAlloc::free`) is then a stack of batches, each linked through its blocks' first
    /// words and to the next batch through its first block's second word (every block holds two
    /// pointers).
    #[cfg(wasm_threads)]
    mod local {
        use core::cell::UnsafeCell;

        pub use super::super::cache::{Cache, BATCH};

        std::thread_local! {
            // Const-initialised and without `Drop`: no allocation and no destructor to register,
            // so the allocator may use it.
            static CACHE: UnsafeCell<Cache> = const { UnsafeCell::new(Cache::new()) };
        }

        /// `f` on this thread's cache; `None` when the thread's storage is unavailable.
        #[inline]
        pub fn with<R>(f: impl FnOnce(&mut Cache) -> R) -> Option<R> {
            // SAFETY: the cache is this thread's alone and `f` does not re-enter `with`.
            CACHE.try_with(|cache| f(unsafe { &mut *cache.get() })).ok()
        }
    }

    // SAFETY: small blocks come from dlmalloc at their class's full size and alignment 8 and are
    // handed out again only for requests that fit them; everything else forwards to dlmalloc
    // with the layout's size and alignment, as std's wasm allocator does. The lock is held
    // whenever dlmalloc or the shared free lists are used, and never taken twice by one thread
    // (`take`/`give` take it themselves, the entry points only around dlmalloc). Not inlined:
    // under LTO every allocation site would otherwise carry a copy of the entry code (+15 %
    // module size).
    unsafe impl GlobalAlloc for WasmAlloc {
        #[inline(never)]
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            match class(&layout) {
                Some(c) => self.take(c),
                None => {
                    let _held = self.lock();
                    (*self.dl.get()).malloc(layout.size(), layout.align())
                }
            }
        }

        #[inline(never)]
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            match class(&layout) {
                Some(c) => {
                    let block = self.take(c);
                    if !block.is_null() {
                        ptr::write_bytes(block, 0, layout.size());
                    }
                    block
                }
                None => {
                    let _held = self.lock();
                    (*self.dl.get()).calloc(layout.size(), layout.align())
                }
            }
        }

        #[inline(never)]
        unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
            match class(&layout) {
                Some(c) => self.give(block, c),
                None => {
                    let _held = self.lock();
                    (*self.dl.get()).free(block, layout.size(), layout.align())
                }
            }
        }

        #[inline(never)]
        unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let new = Layout::from_size_align_unchecked(new_size, layout.align());
            match (class(&layout), class(&new)) {
                (None, None) => {
                    let _held = self.lock();
                    (*self.dl.get()).realloc(block, layout.size(), layout.align(), new_size)
                }
                (Some(a), Some(b)) if a == b => block,
                _ => {
                    let moved = self.alloc(new);
                    if !moved.is_null() {
                        ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                    moved
                }
            }
        }
    }
}

/// A thread's lists of free small blocks, one per size class, with their lengths: the
/// threaded WASM allocator's per-thread cache (`imp::local`), here so that it is tested natively.
/// A free block's first word points to the next block of its list.
#[cfg(any(test, wasm_threads))]
mod cache {
    use super::CLASSES;
    use core::ptr;

    /// Blocks moved between a cache and the shared free lists at a time.
    pub const BATCH: usize = 32;
    /// Blocks a cache holds per class at most.
    pub const LIMIT: u32 = 2 * BATCH as u32;

    pub struct Cache {
        heads: [*mut u8; CLASSES],
        counts: [u32; CLASSES],
    }

    impl Cache {
        pub const fn new() -> Self {
            Cache {
                heads: [ptr::null_mut(); CLASSES],
                counts: [0; CLASSES],
            }
        }

        /// The class's first block, taken off its list.
        ///
        /// # Safety
        /// Every block on the lists is a free block of at least a pointer's size.
        #[inline]
        pub unsafe fn pop(&mut self, c: usize) -> Option<*mut u8> {
            let block = self.heads[c];
            if block.is_null() {
                return None;
            }
            self.heads[c] = *(block as *mut *mut u8);
            self.counts[c] -= 1;
            Some(block)
        }

        /// Pushes `block`; true when the class's list is then over [`LIMIT`].
        ///
        /// # Safety
        /// `block` is free, at least a pointer's size and aligned for one, and on no list.
        #[inline]
        pub unsafe fn push(&mut self, block: *mut u8, c: usize) -> bool {
            *(block as *mut *mut u8) = self.heads[c];
            self.heads[c] = block;
            self.counts[c] += 1;
            self.counts[c] > LIMIT
        }

        /// Cuts the first [`BATCH`] blocks off the class's list as a list of their own (ending
        /// in a null pointer) and returns its first block.
        ///
        /// # Safety
        /// As [`Cache::pop`], and the class's list holds at least [`BATCH`] blocks.
        #[inline]
        pub unsafe fn take_batch(&mut self, c: usize) -> *mut u8 {
            let batch = self.heads[c];
            let mut last = batch;
            for _ in 1..BATCH {
                last = *(last as *mut *mut u8);
            }
            self.heads[c] = *(last as *mut *mut u8);
            *(last as *mut *mut u8) = ptr::null_mut();
            self.counts[c] -= BATCH as u32;
            batch
        }

        /// Makes `list` (`count` blocks, ending in a null pointer) the class's list.
        ///
        /// # Safety
        /// The class's list is empty; `list` is as [`Cache::push`] asks of each block.
        #[inline]
        pub unsafe fn put_batch(&mut self, c: usize, list: *mut u8, count: usize) {
            debug_assert!(self.heads[c].is_null());
            self.heads[c] = list;
            self.counts[c] = count as u32;
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

    #[test]
    fn a_thread_cache_gives_batches_of_whole_blocks_and_takes_them_back() {
        use super::cache::{Cache, BATCH, LIMIT};
        // Blocks of two words, as the smallest class's.
        let mut blocks: Vec<[usize; 2]> = vec![[0; 2]; LIMIT as usize + 1];
        let addrs: Vec<*mut u8> = blocks
            .iter_mut()
            .map(|b| b.as_mut_ptr() as *mut u8)
            .collect();
        let mut cache = Cache::new();
        unsafe {
            // Full only past LIMIT blocks.
            for (k, &b) in addrs.iter().enumerate() {
                assert_eq!(cache.push(b, 3), k + 1 > LIMIT as usize, "block {k}");
            }
            // Another class is untouched.
            assert_eq!(cache.pop(4), None);
            // A batch: the last BATCH pushed, linked, ending in null.
            let batch = cache.take_batch(3);
            let mut seen = Vec::new();
            let mut at = batch;
            while !at.is_null() {
                seen.push(at);
                at = *(at as *mut *mut u8);
            }
            let expected: Vec<*mut u8> = addrs.iter().rev().take(BATCH).copied().collect();
            assert_eq!(seen, expected);
            // What stays: the first LIMIT + 1 - BATCH blocks, newest first.
            let mut rest = Vec::new();
            while let Some(b) = cache.pop(3) {
                rest.push(b);
            }
            let expected: Vec<*mut u8> = addrs.iter().rev().skip(BATCH).copied().collect();
            assert_eq!(rest, expected);
            // The batch back as the (empty) class's list: BATCH blocks, then room up to LIMIT.
            cache.put_batch(3, batch, BATCH);
            for (k, &b) in rest.iter().enumerate() {
                assert_eq!(cache.push(b, 3), BATCH + k + 1 > LIMIT as usize);
            }
            let mut all = 0;
            while cache.pop(3).is_some() {
                all += 1;
            }
            assert_eq!(all, LIMIT as usize + 1);
        }
    }
}
