//! `StaticBuffer`: a buffer in a `static` that can be taken once as
//! `&'static mut [u8]`, for programs without an allocator (the read and
//! write requests want buffers that live as long as the program).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

/// `N` bytes in a `static`, handed out once as `&'static mut [u8]`.
///
/// ```
/// use linux_event::files::StaticBuffer;
/// static BUF: StaticBuffer<4096> = StaticBuffer::new();
/// let buf: &'static mut [u8] = BUF.take().unwrap();
/// assert_eq!(buf.len(), 4096);
/// assert!(BUF.take().is_none(), "only once");
/// ```
pub struct StaticBuffer<const N: usize> {
    taken: AtomicBool,
    bytes: UnsafeCell<[u8; N]>,
}

// SAFETY: the bytes are reached only through `take`, which hands out one
// reference, once, whatever the thread.
unsafe impl<const N: usize> Sync for StaticBuffer<N> {}

impl<const N: usize> StaticBuffer<N> {
    /// Zeroed bytes (in `.bss`).
    pub const fn new() -> Self {
        StaticBuffer { taken: AtomicBool::new(false), bytes: UnsafeCell::new([0; N]) }
    }

    /// The bytes, the first time; `None` afterwards.
    #[allow(clippy::mut_from_ref)] // the flag makes the reference unique
    pub fn take(&'static self) -> Option<&'static mut [u8]> {
        if self.taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: the flag was clear: this is the one and only reference
        // ever made to the bytes, and they live for the whole program.
        Some(unsafe { &mut *self.bytes.get() })
    }
}

impl<const N: usize> Default for StaticBuffer<N> {
    fn default() -> Self {
        StaticBuffer::new()
    }
}
