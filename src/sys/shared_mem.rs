//! Zero-filled anonymous mappings for memory that other threads or the
//! kernel use while we do: the file-operations request table and the worker
//! pool's control block. They never move and are unmapped on drop.
//!
//! Only types for which all-zero bytes are a valid value ([`Zeroed`]) can
//! live here, so nothing is written at creation (untouched pages cost no
//! memory), and access is shared (`&T`): the types use atomics or
//! `UnsafeCell` with their own protocol for what changes.

use super::call::check;
use super::errno::Errno;
use core::marker::PhantomData;
use core::ptr::NonNull;
use linux_raw_sys::general as k;

/// Types whose all-zero bit pattern is a valid value.
///
/// # Safety
///
/// Implement only for types made of integers, atomics, raw pointers,
/// `Option` of fn pointers or references, and `UnsafeCell`s or arrays of
/// those: anything for which zeroed memory is a valid, initialised value.
pub(crate) unsafe trait Zeroed {}

/// `len` zero-filled `T`s in a mapping of their own.
pub(crate) struct Region<T: Zeroed> {
    ptr: NonNull<T>,
    len: usize,
    _owns: PhantomData<T>,
}

// SAFETY: the region owns its mapping (like a `Box<[T]>`); sharing or
// sending it is sharing or sending the `T`s.
unsafe impl<T: Zeroed + Send> Send for Region<T> {}
// SAFETY: as above; access is `&T` only.
unsafe impl<T: Zeroed + Sync> Sync for Region<T> {}

impl<T: Zeroed> Region<T> {
    /// `len` zeroed `T`s (one page at least). `ENOMEM` when the size
    /// overflows or the kernel refuses.
    pub(crate) fn new(len: usize) -> Result<Region<T>, Errno> {
        const { assert!(align_of::<T>() <= 4096) };
        let bytes = len.checked_mul(size_of::<T>()).ok_or(Errno::ENOMEM)?.max(1);
        let prot = k::PROT_READ | k::PROT_WRITE;
        let flags = k::MAP_PRIVATE | k::MAP_ANONYMOUS;
        // SAFETY: a NULL hint lets the kernel choose an address overlapping
        // no existing mapping; the result becomes this value's alone.
        let addr = check(unsafe {
            sc::syscall6(k::__NR_mmap as usize, 0, bytes, prot as usize, flags as usize, usize::MAX, 0)
        })?;
        let ptr = NonNull::new(addr as *mut T).ok_or(Errno::ENOMEM)?;
        Ok(Region { ptr, len, _owns: PhantomData })
    }

    /// Element `i`, or `None` past the end.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        // SAFETY: `i < len`: inside the mapping, page-aligned base (enough
        // for any `T`, as asserted), zero-filled memory is a valid `T`
        // (`Zeroed`), and the mapping lives as long as `self`.
        (i < self.len).then(|| unsafe { &*self.ptr.as_ptr().add(i) })
    }

    /// How many elements.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The address of the first element.
    pub(crate) fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }
}

impl<T: Zeroed> Drop for Region<T> {
    fn drop(&mut self) {
        let bytes = (self.len * size_of::<T>()).max(1);
        // SAFETY: our own mapping, no longer referenced (`&T`s borrow `self`).
        let _ = check(unsafe { sc::syscall2(k::__NR_munmap as usize, self.ptr.as_ptr() as usize, bytes) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::{AtomicU64, Ordering};

    // SAFETY: an atomic integer: zero is a valid value.
    unsafe impl Zeroed for AtomicU64 {}

    #[test]
    fn zeroed_stable_and_bounds_checked() {
        let r: Region<AtomicU64> = Region::new(10_000).unwrap();
        assert!((0..10_000).all(|i| r.get(i).unwrap().load(Ordering::Relaxed) == 0));
        r.get(9_999).unwrap().store(7, Ordering::Relaxed);
        let addr = r.addr();
        let moved = r;
        assert_eq!((moved.addr(), moved.get(9_999).unwrap().load(Ordering::Relaxed)), (addr, 7));
        assert!(moved.get(10_000).is_none());
        assert_eq!(moved.len(), 10_000);
        assert!(Region::<AtomicU64>::new(usize::MAX).is_err());
    }
}
