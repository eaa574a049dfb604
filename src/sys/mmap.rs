//! mmap(2): anonymous arrays with a stable address, and shared mappings of
//! a kernel object (the io_uring rings).
//!
//! The loop is returned by value and moves; memory the kernel identifies by
//! user address (Linux AIO finds a poll to cancel by its iocb's address) or
//! that the kernel shares with us (rings) must not move with it. These
//! mappings never move, never allocate from a heap, and are unmapped on drop.

use super::call::check;
use super::errno::Errno;
use super::fd::RawFd;
use core::marker::PhantomData;
use core::ptr::NonNull;
use linux_raw_sys::general as k;

/// `mmap(NULL, len, prot, flags, fd, offset)`; returns the address.
fn map(len: usize, prot: u32, flags: u32, fd: RawFd, offset: u64) -> Result<NonNull<u8>, Errno> {
    // SAFETY: a NULL hint lets the kernel choose an address that overlaps no
    // existing mapping, so no memory Rust knows about is replaced; the
    // result is only used as the start of `len` bytes we now own.
    let addr = check(unsafe {
        sc::syscall6(k::__NR_mmap as usize, 0, len, prot as usize, flags as usize, fd as usize, offset as usize)
    })?;
    NonNull::new(addr as *mut u8).ok_or(Errno::ENOMEM)
}

/// `munmap(addr, len)` of a mapping made by [`map`].
fn unmap(addr: NonNull<u8>, len: usize) {
    // SAFETY: callers pass a mapping they own and no longer reference.
    // Failure (only possible for bad arguments) is not actionable in drop.
    let _ = check(unsafe { sc::syscall2(k::__NR_munmap as usize, addr.as_ptr() as usize, len) });
}

/// A fixed-length array of `T` in its own anonymous, private mapping:
/// filled with one value at creation, at a stable address, freed on drop.
pub(crate) struct Anon<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    _owns: PhantomData<T>,
}

// SAFETY: an `Anon` owns its mapping exclusively (like a `Box<[T]>`): moving
// it to another thread moves that ownership, and `&Anon` only gives `&[T]`.
unsafe impl<T: Copy + Send> Send for Anon<T> {}
// SAFETY: as above; shared access is read-only.
unsafe impl<T: Copy + Sync> Sync for Anon<T> {}

impl<T: Copy> Anon<T> {
    /// `len` copies of `fill`. `ENOMEM` when the size overflows or the
    /// kernel refuses; a zero `len` maps one page anyway (mmap refuses zero).
    pub(crate) fn new(len: usize, fill: T) -> Result<Anon<T>, Errno> {
        const { assert!(align_of::<T>() <= 4096) };
        let bytes = len.checked_mul(size_of::<T>()).ok_or(Errno::ENOMEM)?.max(1);
        let prot = k::PROT_READ | k::PROT_WRITE;
        let flags = k::MAP_PRIVATE | k::MAP_ANONYMOUS;
        let ptr = map(bytes, prot, flags, -1, 0)?.cast::<T>();
        for i in 0..len {
            // SAFETY: `i < len` and the fresh mapping holds `len` `T`s,
            // page-aligned (enough for any `T`, as asserted above); writing
            // initialises them, so the slice views below see valid values.
            unsafe { ptr.as_ptr().add(i).write(fill) };
        }
        Ok(Anon { ptr, len, _owns: PhantomData })
    }

    /// The address of element `i` (for the kernel); `i` may equal `len`.
    pub(crate) fn addr_of(&self, i: usize) -> usize {
        debug_assert!(i <= self.len);
        self.ptr.as_ptr() as usize + i.min(self.len) * size_of::<T>()
    }

    fn bytes(&self) -> usize {
        (self.len * size_of::<T>()).max(1)
    }
}

#[cfg(feature = "net")]
impl Anon<u8> {
    /// `len` zero bytes, none of them touched: the kernel brings pages in
    /// when they are first written, so a large pool costs only what is used.
    pub(crate) fn zeroed(len: usize) -> Result<Anon<u8>, Errno> {
        let prot = k::PROT_READ | k::PROT_WRITE;
        let flags = k::MAP_PRIVATE | k::MAP_ANONYMOUS;
        let ptr = map(len.max(1), prot, flags, -1, 0)?;
        // A fresh anonymous mapping reads as zero bytes: every u8 is valid.
        Ok(Anon { ptr, len, _owns: PhantomData })
    }
}

impl<T: Copy> core::ops::Deref for Anon<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: the mapping holds `len` properly aligned `T`s, all
        // initialised in `new`; it lives as long as `self`.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> core::ops::DerefMut for Anon<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Drop for Anon<T> {
    fn drop(&mut self) {
        unmap(self.ptr.cast(), self.bytes());
    }
}

/// A shared mapping of part of a kernel object (`MAP_SHARED | MAP_POPULATE`
/// of `fd` at `offset`), such as an io_uring ring. Accessed only through raw
/// pointers, since the kernel writes it concurrently.
pub(crate) struct Shared {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is owned exclusively by this value; all access goes
// through raw pointers with atomics where the kernel writes concurrently.
unsafe impl Send for Shared {}

impl Shared {
    /// Maps `len` bytes of `fd` at `offset`, readable and writable.
    pub(crate) fn new(fd: RawFd, len: usize, offset: u64) -> Result<Shared, Errno> {
        let prot = k::PROT_READ | k::PROT_WRITE;
        let flags = k::MAP_SHARED | k::MAP_POPULATE;
        let ptr = map(len.max(1), prot, flags, fd, offset)?;
        Ok(Shared { ptr, len: len.max(1) })
    }

    /// The start of the mapping.
    pub(crate) fn base(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        unmap(self.ptr, self.len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anon_is_zeroed_writable_and_keeps_its_address_when_moved() {
        let mut a: Anon<u64> = Anon::new(1000, 0).unwrap();
        assert!(a.iter().all(|&x| x == 0));
        a[999] = 7;
        let addr = a.addr_of(999);
        let b = a;
        assert_eq!(b.addr_of(999), addr);
        assert_eq!(b[999], 7);
        assert_eq!(b.addr_of(0) % 4096, 0);
        let empty: Anon<u32> = Anon::new(0, 9).unwrap();
        assert!(empty.is_empty());
        assert_eq!(Anon::<u64>::new(usize::MAX, 0).err(), Some(Errno::ENOMEM));
        let filled: Anon<(u8, u32)> = Anon::new(5000, (1, 2)).unwrap();
        assert!(filled.iter().all(|&x| x == (1, 2)));
    }

    #[test]
    fn shared_mapping_of_a_bad_fd_is_refused() {
        assert_eq!(Shared::new(-1, 4096, 0).err(), Some(Errno::EBADF));
    }
}
