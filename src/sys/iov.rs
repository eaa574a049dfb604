//! Vectored I/O: readv and writev over slices, and the `iovec` array
//! they (and `sendmsg`) hand to the kernel.
//!
//! At most [`MAX_IOV`] buffers go in one call; the byte count returned
//! says how far the kernel got, as for any partial transfer.

use super::call::{check, retry};
use super::errno::Errno;
use super::fd::RawFd;
use linux_raw_sys::general as k;

/// Buffers passed per call (later ones wait for the next call).
pub const MAX_IOV: usize = 16;

/// The kernel's `struct iovec`.
#[repr(C)]
#[derive(Copy, Clone)]
struct IoVec {
    base: usize,
    len: usize,
}

/// Up to [`MAX_IOV`] iovecs describing borrowed buffers; empty buffers
/// are left out.
pub(crate) struct IoSlices<'a> {
    iov: [IoVec; MAX_IOV],
    count: usize,
    _borrow: core::marker::PhantomData<&'a [u8]>,
}

impl<'a> IoSlices<'a> {
    pub(crate) fn new(bufs: &[&'a [u8]]) -> Self {
        let mut s =
            IoSlices { iov: [IoVec { base: 0, len: 0 }; MAX_IOV], count: 0, _borrow: core::marker::PhantomData };
        for b in bufs.iter().filter(|b| !b.is_empty()).take(MAX_IOV) {
            s.iov[s.count] = IoVec { base: b.as_ptr() as usize, len: b.len() };
            s.count += 1;
        }
        s
    }

    fn new_mut(bufs: &mut [&'a mut [u8]]) -> Self {
        let mut s =
            IoSlices { iov: [IoVec { base: 0, len: 0 }; MAX_IOV], count: 0, _borrow: core::marker::PhantomData };
        for b in bufs.iter_mut().filter(|b| !b.is_empty()).take(MAX_IOV) {
            s.iov[s.count] = IoVec { base: b.as_mut_ptr() as usize, len: b.len() };
            s.count += 1;
        }
        s
    }

    pub(crate) fn as_ptr(&self) -> usize {
        self.iov.as_ptr() as usize
    }

    pub(crate) fn count(&self) -> usize {
        self.count
    }
}

/// Reads into the buffers in order; returns the byte count (0 at end of
/// file). `EINTR` is retried.
pub fn readv(fd: RawFd, bufs: &mut [&mut [u8]]) -> Result<usize, Errno> {
    let iov = IoSlices::new_mut(bufs);
    retry(|| {
        // SAFETY: each iovec describes one of the caller's `&mut` buffers,
        // valid for writes of its length for the duration of the call.
        check(unsafe { sc::syscall3(k::__NR_readv as usize, fd as usize, iov.as_ptr(), iov.count()) })
    })
}

/// Writes the buffers in order; returns the byte count written. `EINTR`
/// is retried. (On a socket, `sys::send_vectored` does the same without
/// SIGPIPE.)
pub fn writev(fd: RawFd, bufs: &[&[u8]]) -> Result<usize, Errno> {
    let iov = IoSlices::new(bufs);
    retry(|| {
        // SAFETY: each iovec describes one of the caller's buffers, valid
        // for reads of its length for the duration of the call.
        check(unsafe { sc::syscall3(k::__NR_writev as usize, fd as usize, iov.as_ptr(), iov.count()) })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iovec_matches_the_kernel() {
        assert_eq!(size_of::<IoVec>(), size_of::<k::iovec>());
    }

    #[test]
    fn writev_then_readv_round_trip() {
        let (r, w) = crate::sys::pipe().unwrap();
        assert_eq!(writev(w.as_raw_fd(), &[b"hel", b"", b"lo"]), Ok(5));
        let (mut a, mut b) = ([0u8; 2], [0u8; 8]);
        assert_eq!(readv(r.as_raw_fd(), &mut [&mut a, &mut b]), Ok(5));
        assert_eq!((&a, &b[..3]), (b"he", &b"llo"[..]));
        assert_eq!(readv(r.as_raw_fd(), &mut [&mut a]), Err(Errno::EAGAIN));
        assert_eq!(writev(-1, &[b"x"]), Err(Errno::EBADF));
    }

    #[test]
    fn more_buffers_than_fit_are_a_partial_write() {
        let (r, w) = crate::sys::pipe().unwrap();
        let bufs = [&b"x"[..]; MAX_IOV + 4];
        assert_eq!(writev(w.as_raw_fd(), &bufs), Ok(MAX_IOV));
        let mut out = [0u8; 64];
        assert_eq!(crate::sys::read(r.as_raw_fd(), &mut out), Ok(MAX_IOV));
    }
}
