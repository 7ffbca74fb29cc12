//! The native binary's global allocator: mimalloc for everything, except that on Linux a block
//! of at least [`HUGE`] bytes gets pages of its own from the kernel, grows and shrinks with
//! `mremap` and goes back with `munmap` when freed.
//!
//! The input read from a pipe grows by doubling (`read_to_end`). Through an allocator every
//! doubling copies the block and, until the allocator returns the old one to the system, holds
//! both: a 26 MB stream cost 58 MB of RSS before anything was parsed, and returning every freed
//! page at once (mimalloc's purge delay 0) cost a fifth of a stream run's time in page faults
//! and TLB shootdowns between the cores. `mremap` moves the page table instead, so a huge block
//! never exists twice, and the small blocks can keep mimalloc's default purge delay.

use std::alloc::{GlobalAlloc, Layout};

/// Blocks from this size on are mapped on their own.
pub const HUGE: usize = 1 << 20;

const PAGE: usize = 4096;

pub struct Alloc;

#[inline]
fn huge(layout: &Layout) -> bool {
    layout.size() >= HUGE && layout.align() <= PAGE
}

#[inline]
fn pages(size: usize) -> usize {
    (size + PAGE - 1) & !(PAGE - 1)
}

unsafe fn map(size: usize) -> *mut u8 {
    let p = libc::mmap(
        std::ptr::null_mut(),
        pages(size),
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        -1,
        0,
    );
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p.cast()
    }
}

// SAFETY: every block is freed and resized by the path that allocated it: the layout's size
// (which Rust passes unchanged to `dealloc` and `realloc`) decides the path both times.
unsafe impl GlobalAlloc for Alloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if huge(&layout) {
            map(layout.size())
        } else {
            mimalloc::MiMalloc.alloc(layout)
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if huge(&layout) {
            // Fresh anonymous pages are zero.
            map(layout.size())
        } else {
            mimalloc::MiMalloc.alloc_zeroed(layout)
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if huge(&layout) {
            libc::munmap(ptr.cast(), pages(layout.size()));
        } else {
            mimalloc::MiMalloc.dealloc(ptr, layout)
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = Layout::from_size_align_unchecked(new_size, layout.align());
        match (huge(&layout), huge(&new)) {
            (false, false) => mimalloc::MiMalloc.realloc(ptr, layout, new_size),
            (true, true) => {
                let (old, want) = (pages(layout.size()), pages(new_size));
                if old == want {
                    return ptr;
                }
                let p = libc::mremap(ptr.cast(), old, want, libc::MREMAP_MAYMOVE);
                if p == libc::MAP_FAILED {
                    std::ptr::null_mut()
                } else {
                    p.cast()
                }
            }
            (from_huge, _) => {
                let p = self.alloc(new);
                if !p.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
                    if from_huge {
                        libc::munmap(ptr.cast(), pages(layout.size()));
                    } else {
                        mimalloc::MiMalloc.dealloc(ptr, layout);
                    }
                }
                p
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Alloc, HUGE};
    use std::alloc::{GlobalAlloc, Layout};

    fn fill(p: *mut u8, n: usize) {
        for i in (0..n).step_by(4093) {
            unsafe { p.add(i).write((i % 251) as u8) };
        }
    }

    fn check(p: *const u8, n: usize) {
        for i in (0..n).step_by(4093) {
            assert_eq!(unsafe { p.add(i).read() }, (i % 251) as u8, "byte {i}");
        }
    }

    /// A block keeps its bytes across every crossing: small to huge, huge to larger (mremap),
    /// huge to smaller, and back below the threshold.
    #[test]
    fn a_block_keeps_its_bytes_through_every_resize() {
        let a = Alloc;
        unsafe {
            let mut layout = Layout::from_size_align(1000, 8).unwrap();
            let mut p = a.alloc(layout);
            fill(p, 1000);
            for size in [HUGE + 1, 3 * HUGE + 17, 8 * HUGE, 2 * HUGE, HUGE - 1, 4096] {
                let kept = layout.size().min(size);
                p = a.realloc(p, layout, size);
                assert!(!p.is_null());
                check(p, kept);
                layout = Layout::from_size_align(size, 8).unwrap();
                fill(p, size);
            }
            a.dealloc(p, layout);
        }
    }

    #[test]
    fn huge_zeroed_blocks_are_zero_and_large_alignments_go_to_mimalloc() {
        let a = Alloc;
        unsafe {
            let layout = Layout::from_size_align(2 * HUGE, 8).unwrap();
            let p = a.alloc_zeroed(layout);
            assert!((0..2 * HUGE).step_by(997).all(|i| p.add(i).read() == 0));
            a.dealloc(p, layout);
            let aligned = Layout::from_size_align(2 * HUGE, 1 << 16).unwrap();
            let q = a.alloc(aligned);
            assert_eq!(q as usize % (1 << 16), 0);
            fill(q, 2 * HUGE);
            let q = a.realloc(q, aligned, 3 * HUGE);
            check(q, 2 * HUGE);
            a.dealloc(q, Layout::from_size_align(3 * HUGE, 1 << 16).unwrap());
        }
    }

    /// Through the global allocator: a Vec grown past the threshold like `read_to_end`.
    #[test]
    fn a_vec_grows_past_the_threshold() {
        let mut v: Vec<u8> = Vec::new();
        for i in 0..(3 * HUGE) {
            v.push((i % 253) as u8);
        }
        v.shrink_to_fit();
        assert!(v.iter().enumerate().all(|(i, b)| *b == (i % 253) as u8));
    }
}
