//! statx(2) (Linux 4.11), and `newfstatat` for kernels or sandboxes without
//! it, both decoded into one plain record ([`FileStat`]).

use super::call::check;
use super::errno::Errno;
use super::fd::RawFd;
use core::ffi::CStr;
use linux_raw_sys::general as k;

/// `struct statx` as the kernel fills it.
pub(crate) type Statx = k::statx;

/// What the file-operations companion asks statx for: the basic fields
/// and the birth time.
pub(crate) const MASK: u32 = k::STATX_BASIC_STATS | k::STATX_BTIME;
/// `AT_SYMLINK_NOFOLLOW`: lstat.
pub(crate) const NOFOLLOW: u32 = k::AT_SYMLINK_NOFOLLOW;
/// `AT_EMPTY_PATH`: fstat through statx with an empty path.
pub(crate) const EMPTY_PATH: u32 = k::AT_EMPTY_PATH;

/// A statx buffer of zeroes (the kernel overwrites what it reports).
pub(crate) const fn empty() -> Statx {
    // SAFETY: statx is plain integers and arrays of them: all-zero is valid.
    unsafe { core::mem::zeroed() }
}

/// A file's metadata, from either call.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FileStat {
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub blocks: u64,
    pub blksize: u32,
    pub ino: u64,
    pub dev: (u32, u32),
    pub rdev: (u32, u32),
    pub atime: (i64, u32),
    pub mtime: (i64, u32),
    pub ctime: (i64, u32),
    pub btime: Option<(i64, u32)>,
}

impl FileStat {
    /// From what statx filled in.
    pub(crate) fn from_statx(s: &Statx) -> FileStat {
        let t = |t: k::statx_timestamp| (t.tv_sec, t.tv_nsec);
        FileStat {
            mode: u32::from(s.stx_mode),
            nlink: s.stx_nlink,
            uid: s.stx_uid,
            gid: s.stx_gid,
            size: s.stx_size,
            blocks: s.stx_blocks,
            blksize: s.stx_blksize,
            ino: s.stx_ino,
            dev: (s.stx_dev_major, s.stx_dev_minor),
            rdev: (s.stx_rdev_major, s.stx_rdev_minor),
            atime: t(s.stx_atime),
            mtime: t(s.stx_mtime),
            ctime: t(s.stx_ctime),
            btime: (s.stx_mask & k::STATX_BTIME != 0).then(|| t(s.stx_btime)),
        }
    }

    /// From a `struct stat` (no birth time). Its field types differ per CPU,
    /// hence casts that are no-ops on some.
    #[allow(clippy::unnecessary_cast)]
    fn from_stat(s: &k::stat) -> FileStat {
        // The kernel's new_encode_dev: 12 bits of major, 20 of minor.
        let split = |d: u64| {
            (((d >> 8) & 0xfff) as u32 | ((d >> 32) & !0xfff) as u32, ((d & 0xff) | ((d >> 12) & !0xff)) as u32)
        };
        FileStat {
            mode: s.st_mode as u32,
            nlink: s.st_nlink as u32,
            uid: s.st_uid as u32,
            gid: s.st_gid as u32,
            size: s.st_size as u64,
            blocks: s.st_blocks as u64,
            blksize: s.st_blksize as u32,
            ino: s.st_ino as u64,
            dev: split(s.st_dev as u64),
            rdev: split(s.st_rdev as u64),
            atime: (s.st_atime as i64, s.st_atime_nsec as u32),
            mtime: (s.st_mtime as i64, s.st_mtime_nsec as u32),
            ctime: (s.st_ctime as i64, s.st_ctime_nsec as u32),
            btime: None,
        }
    }
}

/// `statx(dir, path, flags, MASK, out)`.
pub(crate) fn statx(dir: RawFd, path: &CStr, flags: u32, out: &mut Statx) -> Result<(), Errno> {
    // SAFETY: `path` is NUL-terminated and only read; `out` is a writable
    // statx buffer of the kernel's size for the duration of the call.
    check(unsafe {
        sc::syscall5(
            k::__NR_statx as usize,
            dir as usize,
            path.as_ptr() as usize,
            flags as usize,
            MASK as usize,
            out as *mut Statx as usize,
        )
    })
    .map(drop)
}

/// `newfstatat(dir, path, flags)` decoded (`AT_EMPTY_PATH` with an empty
/// path is fstat).
pub(crate) fn fstatat(dir: RawFd, path: &CStr, flags: u32) -> Result<FileStat, Errno> {
    // SAFETY: struct stat is plain integers: all-zero is valid.
    let mut st: k::stat = unsafe { core::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and only read; `st` is writable.
    check(unsafe {
        sc::syscall4(
            k::__NR_newfstatat as usize,
            dir as usize,
            path.as_ptr() as usize,
            &mut st as *mut k::stat as usize,
            flags as usize,
        )
    })?;
    Ok(FileStat::from_stat(&st))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fileops::AT_FDCWD;

    #[test]
    fn statx_and_fstatat_agree() {
        let mut buf = empty();
        let stat = |dir, path, flags, buf: &mut Statx| statx(dir, path, flags, buf).map(|()| FileStat::from_statx(buf));
        let a = stat(AT_FDCWD, c"/proc/self/exe", 0, &mut buf).unwrap();
        let b = fstatat(AT_FDCWD, c"/proc/self/exe", 0).unwrap();
        assert_eq!((a.mode, a.size, a.ino, a.dev, a.nlink, a.mtime), (b.mode, b.size, b.ino, b.dev, b.nlink, b.mtime));
        let l = stat(AT_FDCWD, c"/proc/self/exe", NOFOLLOW, &mut buf).unwrap();
        assert_eq!(l.mode & 0o170000, 0o120000, "lstat of a symlink");
        let f = crate::sys::open_readonly(c"/proc/self/stat").unwrap();
        let by_fd = stat(f.as_raw_fd(), c"", EMPTY_PATH, &mut buf).unwrap();
        assert_eq!(by_fd, FileStat::from_statx(&buf));
        assert_eq!(stat(AT_FDCWD, c"/no/such", 0, &mut buf), Err(Errno::ENOENT));
        assert_eq!(fstatat(AT_FDCWD, c"/no/such", 0), Err(Errno::ENOENT));
        assert_eq!(stat(AT_FDCWD, c"/proc/self/stat/x", 0, &mut buf).err(), Some(Errno::ENOTDIR));
    }
}
