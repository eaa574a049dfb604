//! The file system calls behind the file-operations companion: openat,
//! pread/pwrite (and their `v2` forms with per-call flags), fsync,
//! fdatasync, unlinkat, renameat2, mkdirat.
//!
//! Thin and safe: paths are `&CStr`, buffers slices; every result is decoded
//! once by `call::check`. `EINTR` is retried where the call can be repeated
//! as is. Policy (what to retry, what to hand to a worker) lives above.

use super::call::{check, retry};
use super::errno::Errno;
use super::fd::RawFd;
use core::ffi::CStr;
use linux_raw_sys::general as k;

/// `AT_FDCWD`: paths relative to the working directory.
pub(crate) const AT_FDCWD: RawFd = k::AT_FDCWD;
/// `RWF_NOWAIT`: fail with `EAGAIN` instead of blocking (Linux 4.14).
pub(crate) const RWF_NOWAIT: u32 = k::RWF_NOWAIT;
/// The offset that means "the file's current position" for the `v2` calls.
pub(crate) const CURRENT_POSITION: u64 = u64::MAX;

/// `openat(dir, path, flags, mode)`; returns the new fd, which the caller owns.
pub(crate) fn openat(dir: RawFd, path: &CStr, flags: u32, mode: u32) -> Result<RawFd, Errno> {
    retry(|| {
        // SAFETY: `path` is NUL-terminated and only read during the call.
        check(unsafe {
            sc::syscall4(k::__NR_openat as usize, dir as usize, path.as_ptr() as usize, flags as usize, mode as usize)
        })
    })
    .map(|fd| fd as RawFd)
}

/// `pread64`: reads at `offset` without moving the file position.
pub(crate) fn pread(fd: RawFd, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
    retry(|| {
        // SAFETY: the pointer and length describe `buf`, writable for the call.
        check(unsafe {
            sc::syscall4(k::__NR_pread64 as usize, fd as usize, buf.as_mut_ptr() as usize, buf.len(), offset as usize)
        })
    })
}

/// `pwrite64`: writes at `offset` without moving the file position.
pub(crate) fn pwrite(fd: RawFd, buf: &[u8], offset: u64) -> Result<usize, Errno> {
    retry(|| {
        // SAFETY: the pointer and length describe `buf`, readable for the call.
        check(unsafe {
            sc::syscall4(k::__NR_pwrite64 as usize, fd as usize, buf.as_ptr() as usize, buf.len(), offset as usize)
        })
    })
}

/// `preadv2` of one buffer: at `offset`, or at the current position (and
/// moving it) for [`CURRENT_POSITION`], with `RWF_*` flags. Not retried.
pub(crate) fn preadv2(fd: RawFd, buf: &mut [u8], offset: u64, flags: u32) -> Result<usize, Errno> {
    let iov = k::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() as _ };
    // SAFETY: one iovec describing `buf`, writable for the call; on 64-bit
    // CPUs the whole offset goes in `pos_l` (the kernel shifts `pos_h` out).
    check(unsafe {
        sc::syscall6(
            k::__NR_preadv2 as usize,
            fd as usize,
            &iov as *const k::iovec as usize,
            1,
            offset as usize,
            0,
            flags as usize,
        )
    })
}

/// `pwritev2` of one buffer, as [`preadv2`].
pub(crate) fn pwritev2(fd: RawFd, buf: &[u8], offset: u64, flags: u32) -> Result<usize, Errno> {
    let iov = k::iovec { iov_base: buf.as_ptr() as *mut _, iov_len: buf.len() as _ };
    // SAFETY: one iovec describing `buf`; the kernel only reads it.
    check(unsafe {
        sc::syscall6(
            k::__NR_pwritev2 as usize,
            fd as usize,
            &iov as *const k::iovec as usize,
            1,
            offset as usize,
            0,
            flags as usize,
        )
    })
}

/// `fsync(fd)`, or `fdatasync(fd)` when `data_only`.
pub(crate) fn fsync(fd: RawFd, data_only: bool) -> Result<(), Errno> {
    let nr = if data_only { k::__NR_fdatasync } else { k::__NR_fsync };
    // SAFETY: takes no pointers.
    retry(|| check(unsafe { sc::syscall1(nr as usize, fd as usize) })).map(drop)
}

/// `unlinkat(dir, path, flags)` (`AT_REMOVEDIR` removes a directory).
pub(crate) fn unlinkat(dir: RawFd, path: &CStr, flags: u32) -> Result<(), Errno> {
    // SAFETY: `path` is NUL-terminated and only read.
    retry(|| {
        check(unsafe { sc::syscall3(k::__NR_unlinkat as usize, dir as usize, path.as_ptr() as usize, flags as usize) })
    })
    .map(drop)
}

/// `renameat2(dir, old, dir, new, flags)` (renameat2 is the only rename
/// call aarch64 and riscv64 have).
pub(crate) fn renameat2(dir: RawFd, old: &CStr, new: &CStr, flags: u32) -> Result<(), Errno> {
    retry(|| {
        // SAFETY: both paths are NUL-terminated and only read.
        check(unsafe {
            sc::syscall5(
                k::__NR_renameat2 as usize,
                dir as usize,
                old.as_ptr() as usize,
                dir as usize,
                new.as_ptr() as usize,
                flags as usize,
            )
        })
    })
    .map(drop)
}

/// `mkdirat(dir, path, mode)`.
pub(crate) fn mkdirat(dir: RawFd, path: &CStr, mode: u32) -> Result<(), Errno> {
    // SAFETY: `path` is NUL-terminated and only read.
    retry(|| {
        check(unsafe { sc::syscall3(k::__NR_mkdirat as usize, dir as usize, path.as_ptr() as usize, mode as usize) })
    })
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fd::close;

    fn tmp(name: &str) -> std::ffi::CString {
        let p = std::env::temp_dir().join(format!("le-fileops-{}-{name}", std::process::id()));
        std::ffi::CString::new(p.into_os_string().into_encoded_bytes()).unwrap()
    }

    #[test]
    fn create_write_read_rename_unlink_with_named_errors() {
        let a = tmp("a");
        let b = tmp("b");
        let fd = openat(AT_FDCWD, &a, k::O_CREAT | k::O_EXCL | k::O_RDWR | k::O_CLOEXEC, 0o600).unwrap();
        assert_eq!(openat(AT_FDCWD, &a, k::O_CREAT | k::O_EXCL | k::O_RDWR, 0o600), Err(Errno::EEXIST));
        assert_eq!(pwrite(fd, b"hello world", 0), Ok(11));
        let mut buf = [0u8; 5];
        assert_eq!(pread(fd, &mut buf, 6), Ok(5));
        assert_eq!(&buf, b"world");
        // qemu-user 7.2 has no preadv2/pwritev2 (ENOSYS).
        if preadv2(fd, &mut buf, 0, 0) != Err(Errno::ENOSYS) {
            assert_eq!(preadv2(fd, &mut buf, 0, 0), Ok(5));
            assert_eq!(&buf, b"hello");
            assert_eq!(preadv2(fd, &mut buf, CURRENT_POSITION, 0), Ok(5), "the position starts at 0");
            assert_eq!(pwritev2(fd, b"HELLO", 0, 0), Ok(5));
        }
        fsync(fd, false).unwrap();
        fsync(fd, true).unwrap();
        close(fd).unwrap();
        renameat2(AT_FDCWD, &a, &b, 0).unwrap();
        assert_eq!(unlinkat(AT_FDCWD, &a, 0), Err(Errno::ENOENT));
        unlinkat(AT_FDCWD, &b, 0).unwrap();
        mkdirat(AT_FDCWD, &a, 0o700).unwrap();
        assert_eq!(mkdirat(AT_FDCWD, &a, 0o700), Err(Errno::EEXIST));
        assert_eq!(unlinkat(AT_FDCWD, &a, 0), Err(Errno::EISDIR));
        unlinkat(AT_FDCWD, &a, k::AT_REMOVEDIR).unwrap();
        assert_eq!(pread(-1, &mut buf, 0), Err(Errno::EBADF));
    }
}
