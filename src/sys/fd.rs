//! File descriptors: an owned fd that closes on drop, and read/write/close.
//!
//! These are thin, safe wrappers: they never retry a partial transfer and
//! never hide an error other than `EINTR` on read and write.

use super::call::{check, retry};
use super::errno::Errno;
use linux_raw_sys::general as k;

/// A raw file descriptor number, as the kernel sees it.
pub type RawFd = i32;

/// A file descriptor this value owns; it is closed when the value is dropped.
///
/// ```
/// let (r, w) = linux_event::sys::pipe().unwrap();
/// linux_event::sys::write(w.as_raw_fd(), b"hi").unwrap();
/// let mut buf = [0u8; 2];
/// assert_eq!(linux_event::sys::read(r.as_raw_fd(), &mut buf), Ok(2));
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct OwnedFd(RawFd);

impl OwnedFd {
    /// Takes ownership of `fd`: it will be closed when the result is dropped.
    ///
    /// # Safety
    ///
    /// `fd` must be an open fd that nothing else owns: nothing else may
    /// close it, or keep using it after the result is dropped (closing a
    /// number someone else still uses would close whatever file later
    /// reuses it under them).
    pub unsafe fn from_raw_fd(fd: RawFd) -> OwnedFd {
        OwnedFd(fd)
    }

    /// An fd the kernel just returned to this crate: owned by nobody else.
    pub(crate) fn from_new(fd: RawFd) -> OwnedFd {
        OwnedFd(fd)
    }

    /// The fd number, still owned by `self`.
    pub fn as_raw_fd(&self) -> RawFd {
        self.0
    }

    /// Gives up ownership without closing.
    pub fn into_raw_fd(self) -> RawFd {
        let fd = self.0;
        core::mem::forget(self);
        fd
    }
}

impl Drop for OwnedFd {
    fn drop(&mut self) {
        // Errors from close are not actionable here (Linux frees the fd even
        // when close reports EINTR or EIO), so they are deliberately ignored.
        let _ = close(self.0);
    }
}

#[cfg(feature = "std")]
impl std::os::fd::AsRawFd for OwnedFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0
    }
}

#[cfg(feature = "std")]
impl std::os::fd::AsFd for OwnedFd {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        // SAFETY: `self.0` is an open descriptor owned by `self`, which outlives
        // the returned borrow, so it cannot be closed while the borrow exists.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(self.0) }
    }
}

#[cfg(feature = "std")]
impl From<OwnedFd> for std::os::fd::OwnedFd {
    fn from(fd: OwnedFd) -> Self {
        let raw = fd.into_raw_fd();
        // SAFETY: `raw` was owned by our `OwnedFd`, which gave ownership up
        // without closing; std's `OwnedFd` now takes over closing it.
        unsafe { std::os::fd::FromRawFd::from_raw_fd(raw) }
    }
}

/// Reads into `buf`; returns the byte count (0 at end of file). `EINTR` is retried.
#[inline]
pub fn read(fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
    retry(|| {
        // SAFETY: the pointer and length describe `buf`, which is valid for
        // writes of `buf.len()` bytes for the duration of the call.
        check(unsafe { sc::syscall3(k::__NR_read as usize, fd as usize, buf.as_mut_ptr() as usize, buf.len()) })
    })
}

/// Writes from `buf`; returns the byte count written. `EINTR` is retried.
#[inline]
pub fn write(fd: RawFd, buf: &[u8]) -> Result<usize, Errno> {
    retry(|| {
        // SAFETY: the pointer and length describe `buf`, valid for reads of
        // `buf.len()` bytes; the kernel does not keep the pointer.
        check(unsafe { sc::syscall3(k::__NR_write as usize, fd as usize, buf.as_ptr() as usize, buf.len()) })
    })
}

/// Closes `fd`. Not retried on `EINTR`: Linux has released the fd by then.
pub fn close(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: close takes no pointers; a bad fd number is reported as EBADF.
    check(unsafe { sc::syscall1(k::__NR_close as usize, fd as usize) }).map(drop)
}

/// A non-blocking, close-on-exec pipe: `(read end, write end)`.
pub fn pipe() -> Result<(OwnedFd, OwnedFd), Errno> {
    let mut fds = [0i32; 2];
    let flags = k::O_NONBLOCK | k::O_CLOEXEC;
    // SAFETY: `fds` is a valid, writable array of two i32, as pipe2 expects.
    check(unsafe { sc::syscall2(k::__NR_pipe2 as usize, fds.as_mut_ptr() as usize, flags as usize) })?;
    Ok((OwnedFd(fds[0]), OwnedFd(fds[1])))
}

/// Opens `path` for reading, close-on-exec.
pub fn open_readonly(path: &core::ffi::CStr) -> Result<OwnedFd, Errno> {
    let flags = k::O_RDONLY | k::O_CLOEXEC;
    let fd = retry(|| {
        // SAFETY: `path` is NUL-terminated and only read by the kernel.
        check(unsafe {
            sc::syscall4(k::__NR_openat as usize, k::AT_FDCWD as usize, path.as_ptr() as usize, flags as usize, 0)
        })
    })?;
    Ok(OwnedFd(fd as RawFd))
}

/// `Ok` if `fd` is an open file descriptor, `EBADF` if not.
pub fn check_fd(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: fcntl(F_GETFD) takes no pointers.
    check(unsafe { sc::syscall2(k::__NR_fcntl as usize, fd as usize, k::F_GETFD as usize) }).map(drop)
}

/// Duplicates `fd` onto the lowest free fd number, close-on-exec.
pub fn dup(fd: RawFd) -> Result<OwnedFd, Errno> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) takes no pointers.
    let ret = check(unsafe { sc::syscall3(k::__NR_fcntl as usize, fd as usize, k::F_DUPFD_CLOEXEC as usize, 0) })?;
    Ok(OwnedFd(ret as RawFd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_round_trip_and_eof() {
        let (r, w) = pipe().unwrap();
        assert_eq!(write(w.as_raw_fd(), b"abc"), Ok(3));
        let mut buf = [0u8; 8];
        assert_eq!(read(r.as_raw_fd(), &mut buf), Ok(3));
        assert_eq!(read(r.as_raw_fd(), &mut buf), Err(Errno::EAGAIN));
        drop(w);
        assert_eq!(read(r.as_raw_fd(), &mut buf), Ok(0));
    }

    #[test]
    fn bad_fd_is_ebadf() {
        assert_eq!(close(-1), Err(Errno::EBADF));
        assert_eq!(write(-1, b"x"), Err(Errno::EBADF));
        assert_eq!(dup(-5).err(), Some(Errno::EBADF));
    }

    #[test]
    fn open_readonly_reads_and_names_errors() {
        let f = open_readonly(c"/proc/self/stat").unwrap();
        let mut buf = [0u8; 16];
        assert!(read(f.as_raw_fd(), &mut buf).unwrap() > 0);
        assert_eq!(open_readonly(c"/no/such/file").err(), Some(Errno::ENOENT));
    }

    #[test]
    fn into_raw_does_not_close() {
        let (r, _w) = pipe().unwrap();
        let raw = r.into_raw_fd();
        assert_eq!(close(raw), Ok(()));
        assert_eq!(close(raw), Err(Errno::EBADF));
    }
}
