//! What a request is: its typed id, the operation, and the arguments an
//! engine needs to run it.

use crate::sys::RawFd;

/// Names one request of a [`Files`](super::Files) value: returned when it is
/// accepted, handed back in its [`FileEvent`](super::FileEvent). Goes stale
/// once the callback has been called; a stale id never names a later
/// request, even in the same table slot.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestId {
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}

/// The operation a request runs.
#[repr(u8)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `openat`.
    Open = 1,
    /// `close`.
    Close,
    /// `pread` (or `read` at the current position).
    Read,
    /// `pwrite` (or `write` at the current position).
    Write,
    /// `fsync`.
    Fsync,
    /// `fdatasync`.
    Fdatasync,
    /// `statx` of a path, following symlinks.
    Stat,
    /// `statx` of a path, not following a final symlink.
    Lstat,
    /// `statx` of an open fd.
    Fstat,
    /// `unlinkat` of a file.
    Unlink,
    /// `unlinkat(AT_REMOVEDIR)`.
    Rmdir,
    /// `renameat2`.
    Rename,
    /// `mkdirat`.
    Mkdir,
}

impl Op {
    /// Every operation, in discriminant order.
    pub(crate) const ALL: [Op; 13] = [
        Op::Open,
        Op::Close,
        Op::Read,
        Op::Write,
        Op::Fsync,
        Op::Fdatasync,
        Op::Stat,
        Op::Lstat,
        Op::Fstat,
        Op::Unlink,
        Op::Rmdir,
        Op::Rename,
        Op::Mkdir,
    ];

    /// The operation stored as `code` (0 and unknown codes: none).
    pub(crate) fn from_code(code: u8) -> Option<Op> {
        Op::ALL.get(usize::from(code).wrapping_sub(1)).copied()
    }

    /// Its name, e.g. `"open"`.
    pub const fn name(self) -> &'static str {
        match self {
            Op::Open => "open",
            Op::Close => "close",
            Op::Read => "read",
            Op::Write => "write",
            Op::Fsync => "fsync",
            Op::Fdatasync => "fdatasync",
            Op::Stat => "stat",
            Op::Lstat => "lstat",
            Op::Fstat => "fstat",
            Op::Unlink => "unlink",
            Op::Rmdir => "rmdir",
            Op::Rename => "rename",
            Op::Mkdir => "mkdir",
        }
    }
}

/// The arguments of one request, as an engine reads them. Plain integers
/// and a pointer, so all-zero is valid (op code 0: no operation).
#[derive(Copy, Clone, Debug)]
#[repr(C)]
pub(crate) struct Args {
    /// `Op as u8`.
    pub op: u8,
    /// The fd of fd operations; the directory fd (`AT_FDCWD`) of path ones.
    pub fd: RawFd,
    /// Open flags, statx/unlink flags.
    pub flags: u32,
    /// Open and mkdir mode.
    pub mode: u32,
    /// Read/write offset (`u64::MAX`: the current position).
    pub offset: u64,
    /// Read/write buffer (owned by the request until it completes).
    pub buf: *mut u8,
    /// Its length.
    pub len: usize,
    /// Bytes already transferred before the request reached the engine (an
    /// inline attempt that stopped short).
    pub done: usize,
    /// Where the second path (rename's new name) starts in the path buffer.
    pub path2: usize,
}

impl Args {
    /// No operation.
    pub(crate) const NONE: Args =
        Args { op: 0, fd: -1, flags: 0, mode: 0, offset: 0, buf: core::ptr::null_mut(), len: 0, done: 0, path2: 0 };

    /// Arguments of `op` on `fd`.
    pub(crate) const fn on(op: Op, fd: RawFd) -> Args {
        Args { op: op as u8, fd, ..Args::NONE }
    }
}

/// A path copied into a request: its bytes without a NUL, checked.
#[derive(Copy, Clone, Debug)]
pub(crate) struct PathArg<'a>(pub &'a [u8]);

impl<'a> PathArg<'a> {
    /// `path` as given (one trailing NUL allowed, so `CStr::to_bytes_with_nul`
    /// works too); `EINVAL` for a NUL inside it.
    pub(crate) fn new(path: &'a [u8]) -> Result<PathArg<'a>, crate::sys::Errno> {
        let path = path.strip_suffix(&[0]).unwrap_or(path);
        if path.contains(&0) {
            return Err(crate::sys::Errno::EINVAL);
        }
        Ok(PathArg(path))
    }

    /// Bytes it takes in a request's path buffer, its NUL included.
    pub(crate) fn stored_len(&self) -> usize {
        self.0.len() + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::Errno;

    #[test]
    fn op_codes_round_trip_and_zero_is_none() {
        for op in Op::ALL {
            assert_eq!(Op::from_code(op as u8), Some(op));
        }
        assert_eq!(Op::from_code(0), None);
        assert_eq!(Op::from_code(200), None);
    }

    #[test]
    fn paths_take_one_trailing_nul_and_refuse_inner_ones() {
        assert_eq!(PathArg::new(b"/etc\0").unwrap().0, b"/etc");
        assert_eq!(PathArg::new(b"/etc").unwrap().stored_len(), 5);
        assert_eq!(PathArg::new(b"/e\0tc").err(), Some(Errno::EINVAL));
        assert_eq!(PathArg::new(b"").unwrap().stored_len(), 1);
    }
}
