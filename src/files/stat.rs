//! `Stat`: the metadata a stat, lstat or fstat request reports.

use crate::sys::statx::FileStat;

/// A time stamp: seconds and nanoseconds since the Unix epoch.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Seconds since 1970-01-01 00:00 UTC (negative before).
    pub secs: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
}

/// What kind of file.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum FileType {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (only `lstat` reports one).
    Symlink,
    /// A named pipe.
    Fifo,
    /// A socket.
    Socket,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A type bit pattern Linux does not define.
    Unknown,
}

/// A file's metadata, from `statx` (or `newfstatat` where the kernel or a
/// sandbox has no statx: then [`created`](Stat::created) is `None`).
///
/// ```
/// # use linux_event::files::{Stat, FileType};
/// let s = Stat::default();
/// assert_eq!(s.file_type(), FileType::Unknown);
/// assert_eq!(s.permissions(), 0);
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    /// Type and permission bits (`st_mode`).
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    /// Preferred I/O block size.
    pub block_size: u32,
    /// Hard links.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Inode number.
    pub ino: u64,
    /// The device the file is on: (major, minor).
    pub dev: (u32, u32),
    /// The device a device file stands for: (major, minor).
    pub rdev: (u32, u32),
    /// Last access.
    pub accessed: Timestamp,
    /// Last modification of the contents.
    pub modified: Timestamp,
    /// Last change of the metadata.
    pub changed: Timestamp,
    /// Creation, where the file system records it.
    pub created: Option<Timestamp>,
}

impl Stat {
    /// The kind of file.
    pub fn file_type(&self) -> FileType {
        match self.mode & 0o170000 {
            0o100000 => FileType::File,
            0o040000 => FileType::Dir,
            0o120000 => FileType::Symlink,
            0o010000 => FileType::Fifo,
            0o140000 => FileType::Socket,
            0o020000 => FileType::CharDevice,
            0o060000 => FileType::BlockDevice,
            _ => FileType::Unknown,
        }
    }

    /// A regular file.
    pub fn is_file(&self) -> bool {
        self.file_type() == FileType::File
    }

    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.file_type() == FileType::Dir
    }

    /// A symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.file_type() == FileType::Symlink
    }

    /// The permission bits, set-id and sticky bits included (`mode & 0o7777`).
    pub fn permissions(&self) -> u32 {
        self.mode & 0o7777
    }
}

impl From<FileStat> for Stat {
    fn from(s: FileStat) -> Stat {
        let t = |(secs, nanos): (i64, u32)| Timestamp { secs, nanos };
        Stat {
            mode: s.mode,
            size: s.size,
            blocks: s.blocks,
            block_size: s.blksize,
            nlink: s.nlink,
            uid: s.uid,
            gid: s.gid,
            ino: s.ino,
            dev: s.dev,
            rdev: s.rdev,
            accessed: t(s.atime),
            modified: t(s.mtime),
            changed: t(s.ctime),
            created: s.btime.map(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_types_from_mode_bits() {
        let of = |mode| Stat { mode, ..Stat::default() };
        assert!(of(0o100644).is_file());
        assert!(of(0o040755).is_dir());
        assert!(of(0o120777).is_symlink());
        assert_eq!(of(0o010600).file_type(), FileType::Fifo);
        assert_eq!(of(0o140600).file_type(), FileType::Socket);
        assert_eq!(of(0o020600).file_type(), FileType::CharDevice);
        assert_eq!(of(0o060600).file_type(), FileType::BlockDevice);
        assert_eq!(of(0o104755).permissions(), 0o4755);
    }
}
