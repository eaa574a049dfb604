//! `OpenOptions`: the flags and mode of an open request, spelled as std's.

use linux_raw_sys::general as k;

/// How an open request opens its file: std's `OpenOptions`, as flags for
/// `openat`. The fd is always close-on-exec.
///
/// ```
/// use linux_event::files::OpenOptions;
/// let log = OpenOptions::new().append(true).create(true).mode(0o640);
/// let config = OpenOptions::read_only();
/// # let _ = (log, config);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
    directory: bool,
    nofollow: bool,
    custom: u32,
    mode: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// Nothing set: read-only, mode 0o666 (less the umask) for created files.
    pub const fn new() -> OpenOptions {
        OpenOptions {
            read: false,
            write: false,
            append: false,
            truncate: false,
            create: false,
            create_new: false,
            directory: false,
            nofollow: false,
            custom: 0,
            mode: 0o666,
        }
    }

    /// `O_RDONLY`.
    pub const fn read_only() -> OpenOptions {
        OpenOptions::new().read(true)
    }

    /// Open for reading.
    pub const fn read(mut self, on: bool) -> OpenOptions {
        self.read = on;
        self
    }

    /// Open for writing.
    pub const fn write(mut self, on: bool) -> OpenOptions {
        self.write = on;
        self
    }

    /// `O_APPEND` (implies writing).
    pub const fn append(mut self, on: bool) -> OpenOptions {
        self.append = on;
        self
    }

    /// `O_TRUNC`.
    pub const fn truncate(mut self, on: bool) -> OpenOptions {
        self.truncate = on;
        self
    }

    /// `O_CREAT`.
    pub const fn create(mut self, on: bool) -> OpenOptions {
        self.create = on;
        self
    }

    /// `O_CREAT | O_EXCL`: fails with `EEXIST` if the file exists.
    pub const fn create_new(mut self, on: bool) -> OpenOptions {
        self.create_new = on;
        self
    }

    /// `O_DIRECTORY`: fails with `ENOTDIR` unless it is a directory.
    pub const fn directory(mut self, on: bool) -> OpenOptions {
        self.directory = on;
        self
    }

    /// `O_NOFOLLOW`: fails with `ELOOP` on a final symlink.
    pub const fn nofollow(mut self, on: bool) -> OpenOptions {
        self.nofollow = on;
        self
    }

    /// More `O_*` flags, or'ed in as given (`O_DIRECT`, `O_SYNC`, `O_PATH`...).
    pub const fn custom_flags(mut self, flags: u32) -> OpenOptions {
        self.custom = flags;
        self
    }

    /// The mode of a created file (default 0o666, less the umask).
    pub const fn mode(mut self, mode: u32) -> OpenOptions {
        self.mode = mode;
        self
    }

    /// The `openat` flags.
    pub const fn flags(&self) -> u32 {
        let writes = self.write || self.append;
        let mut f = match (self.read, writes) {
            (_, false) => k::O_RDONLY,
            (false, true) => k::O_WRONLY,
            (true, true) => k::O_RDWR,
        };
        if self.append {
            f |= k::O_APPEND;
        }
        if self.truncate {
            f |= k::O_TRUNC;
        }
        if self.create || self.create_new {
            f |= k::O_CREAT;
        }
        if self.create_new {
            f |= k::O_EXCL;
        }
        if self.directory {
            f |= k::O_DIRECTORY;
        }
        if self.nofollow {
            f |= k::O_NOFOLLOW;
        }
        f | self.custom | k::O_CLOEXEC
    }

    /// The mode given to `openat`.
    pub const fn creation_mode(&self) -> u32 {
        self.mode
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_what_open_2_expects() {
        assert_eq!(OpenOptions::read_only().flags(), k::O_RDONLY | k::O_CLOEXEC);
        assert_eq!(OpenOptions::new().write(true).flags() & 3, k::O_WRONLY);
        assert_eq!(OpenOptions::new().read(true).append(true).flags() & (3 | k::O_APPEND), k::O_RDWR | k::O_APPEND);
        let f = OpenOptions::new().write(true).create_new(true).truncate(true).flags();
        assert_eq!(f & (k::O_CREAT | k::O_EXCL | k::O_TRUNC), k::O_CREAT | k::O_EXCL | k::O_TRUNC);
        assert_eq!(OpenOptions::new().directory(true).nofollow(true).flags() & k::O_DIRECTORY, k::O_DIRECTORY);
        assert_eq!(OpenOptions::new().mode(0o600).creation_mode(), 0o600);
    }
}
