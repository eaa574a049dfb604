//! What the poll backends ask about an fd before polling it: `fstat`'s file
//! type reduced to what they need ([`fd_kind`]), and whether an anonymous
//! inode is a signalfd ([`is_signalfd`], from its `/proc/self/fd` link).
//!
//! Epoll refuses regular files and directories with `EPERM`; the Linux AIO
//! and io_uring backends refuse them the same way, for one contract on
//! every backend. This file only asks the kernel; what to do with the
//! answer is the backends' business.

use super::call::check;
use super::errno::Errno;
use super::fd::RawFd;
use core::mem::MaybeUninit;
use linux_raw_sys::general as k;

/// What kind of file an fd is, as far as polling it is concerned.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum FdKind {
    /// A regular file or a directory: epoll refuses these (`EPERM`), and
    /// the poll backends do the same for one contract on every backend.
    NotPollable,
    /// An anonymous inode (eventfd, signalfd, timerfd, epoll, pidfd, ...).
    Anon,
    /// Anything else (socket, pipe, character device, ...).
    Other,
}

/// `fstat(fd)` reduced to what the poll backends need; `EBADF` for a bad fd.
pub(crate) fn fd_kind(fd: RawFd) -> Result<FdKind, Errno> {
    if fd < 0 {
        return Err(Errno::EBADF);
    }
    let mut st = MaybeUninit::<k::stat>::uninit();
    // SAFETY: `st` is valid for writes of one `struct stat` (the layout of
    // this architecture's fstat, which linux-raw-sys provides).
    check(unsafe { sc::syscall2(k::__NR_fstat as usize, fd as usize, st.as_mut_ptr() as usize) })?;
    // SAFETY: fstat succeeded, so the kernel filled the whole struct.
    let mode = unsafe { st.assume_init_ref() }.st_mode;
    Ok(match mode & k::S_IFMT {
        k::S_IFREG | k::S_IFDIR => FdKind::NotPollable,
        0 => FdKind::Anon,
        _ => FdKind::Other,
    })
}

/// Whether `fd` is a signalfd, from its `/proc/self/fd` link
/// (`anon_inode:[signalfd]`); `None` when that cannot be read (no `/proc`).
///
/// A signalfd's poll looks at the pending signals of the *calling* task, and
/// Linux AIO re-polls from a kernel worker when the wake-up carries no event
/// mask (a signalfd's never does): an AIO poll of a signalfd misses signals.
pub(crate) fn is_signalfd(fd: RawFd) -> Option<bool> {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    let mut path = [0u8; 32];
    path[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut len = PREFIX.len();
    let mut digits = [0u8; 10];
    let mut n = fd.unsigned_abs();
    let mut d = 0;
    loop {
        digits[d] = b'0' + (n % 10) as u8;
        d += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in (0..d).rev() {
        path[len] = digits[i];
        len += 1;
    }
    // path[len] is already 0: the C string ends here.
    let mut link = [0u8; 64];
    // SAFETY: `path` is a NUL-terminated string that lives across the call;
    // `link` is valid for writes of its length.
    let r = check(unsafe {
        sc::syscall4(
            k::__NR_readlinkat as usize,
            k::AT_FDCWD as isize as usize,
            path.as_ptr() as usize,
            link.as_mut_ptr() as usize,
            link.len(),
        )
    });
    r.ok().map(|n| &link[..n] == b"anon_inode:[signalfd]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fd::{open_readonly, pipe};
    use crate::sys::{SigSet, signalfd};

    #[test]
    fn fd_kinds() {
        let (r, _w) = pipe().unwrap();
        assert_eq!(fd_kind(r.as_raw_fd()), Ok(FdKind::Other));
        assert_eq!(fd_kind(-1), Err(Errno::EBADF));
        let e = crate::sys::eventfd::create().unwrap();
        assert_eq!(fd_kind(e.as_raw_fd()), Ok(FdKind::Anon));
        if let Some(sig) = is_signalfd(e.as_raw_fd()) {
            assert!(!sig);
        }
    }

    #[test]
    fn regular_files_and_directories_are_not_pollable() {
        let dir = open_readonly(c"/").unwrap();
        assert_eq!(fd_kind(dir.as_raw_fd()), Ok(FdKind::NotPollable));
        let file = open_readonly(c"/proc/self/status").unwrap();
        assert_eq!(fd_kind(file.as_raw_fd()), Ok(FdKind::NotPollable));
    }

    #[test]
    fn a_signalfd_is_an_anonymous_inode_named_so() {
        let fd = signalfd::signalfd(None, SigSet::empty().with(12)).unwrap().unwrap();
        assert_eq!(fd_kind(fd.as_raw_fd()), Ok(FdKind::Anon));
        if let Some(sig) = is_signalfd(fd.as_raw_fd()) {
            assert!(sig);
        }
    }
}
