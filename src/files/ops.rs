//! The operations: each stores a request and returns its id; its callback
//! runs once when it completes. Paths are bytes (a trailing NUL allowed).

use super::request::{Args, Op, PathArg, RequestId};
use super::shared::Buffer;
use super::{FileFn, Files, OpenOptions, Refused};
use crate::error::Error;
use crate::event_loop::LoopTypes;
use crate::sys::fileops::{AT_FDCWD, CURRENT_POSITION};
use crate::sys::statx::{EMPTY_PATH, NOFOLLOW};
use crate::sys::{Errno, RawFd};
use linux_raw_sys::general as k;

impl<L: LoopTypes, const N: usize, const P: usize> Files<L, N, P> {
    /// The offset that reads or writes at the file's current position (and
    /// moves it), as `read(2)` and `write(2)` do: for pipes, sockets and
    /// terminals, which have no offsets.
    pub const CURRENT_POSITION: u64 = CURRENT_POSITION;

    fn path_op(
        &mut self,
        op: Op,
        args: Args,
        paths: &[&[u8]],
        data: u64,
        callback: FileFn<L>,
    ) -> Result<RequestId, Error> {
        let mut checked = [PathArg(&[]), PathArg(&[])];
        for (slot, p) in checked.iter_mut().zip(paths) {
            *slot = PathArg::new(p)?;
        }
        let checked = checked.get(..paths.len()).unwrap_or(&[]);
        self.accept(op, args, checked, data, callback, Buffer::None).map_err(|(e, _)| e)
    }

    fn fd_op(&mut self, op: Op, args: Args, data: u64, callback: FileFn<L>) -> Result<RequestId, Error> {
        if args.fd < 0 {
            return Err(Error::Os(Errno::EBADF));
        }
        self.accept(op, args, &[], data, callback, Buffer::None).map_err(|(e, _)| e)
    }

    /// Opens `path` (relative to the working directory) as `options` say;
    /// the event's [`take_fd`](super::FileEvent::take_fd) gives the fd
    /// (close-on-exec).
    ///
    /// ```
    /// # use linux_event::files::{Files, Engine, OpenOptions};
    /// # use linux_event::Loop;
    /// # struct App { files: Files<Loop<App>, 4> }
    /// # impl AsMut<Files<Loop<App>, 4>> for App { fn as_mut(&mut self) -> &mut Files<Loop<App>, 4> { &mut self.files } }
    /// # let mut lp: Loop<App> = Loop::new()?;
    /// # let mut app = App { files: Files::new(Engine::Auto)? };
    /// # app.files.attach(&mut lp)?;
    /// app.files.open(b"/no/such/file", &OpenOptions::read_only(), 0, |lp, _app, mut ev| {
    ///     assert_eq!(ev.take_fd().err(), Some(linux_event::Errno::ENOENT));
    ///     lp.stop();
    /// })?;
    /// # lp.run(&mut app)?;
    /// # Ok::<(), linux_event::Error>(())
    /// ```
    pub fn open(
        &mut self,
        path: &[u8],
        options: &OpenOptions,
        data: u64,
        callback: FileFn<L>,
    ) -> Result<RequestId, Error> {
        self.open_at(AT_FDCWD, path, options, data, callback)
    }

    /// [`open`](Self::open) relative to directory fd `dir` (an absolute
    /// `path` ignores it).
    pub fn open_at(
        &mut self,
        dir: RawFd,
        path: &[u8],
        options: &OpenOptions,
        data: u64,
        callback: FileFn<L>,
    ) -> Result<RequestId, Error> {
        let args = Args { flags: options.flags(), mode: options.creation_mode(), ..Args::on(Op::Open, dir) };
        self.path_op(Op::Open, args, &[path], data, callback)
    }

    /// Closes `fd` (which the caller gives up: close it no other way).
    pub fn close(&mut self, fd: RawFd, data: u64, callback: FileFn<L>) -> Result<RequestId, Error> {
        self.fd_op(Op::Close, Args::on(Op::Close, fd), data, callback)
    }

    /// Reads up to `len` bytes of `fd` into `buf[..len]`, at `offset`
    /// (pread; or at the current position with
    /// [`CURRENT_POSITION`](Self::CURRENT_POSITION)). The whole buffer comes
    /// back in the event; [`bytes`](super::FileEvent::bytes) is the count (0
    /// at end of file). At an offset, a short count means end of file, as
    /// with pread on a regular file; a pipe, socket or terminal has no
    /// offsets, and is read at its current position (what io_uring does;
    /// pread itself would fail with `ESPIPE`). `EINVAL` if `len` exceeds the
    /// buffer.
    pub fn read(
        &mut self,
        fd: RawFd,
        offset: u64,
        buf: &'static mut [u8],
        len: usize,
        data: u64,
        callback: FileFn<L>,
    ) -> Result<RequestId, Refused> {
        self.io(Op::Read, fd, offset, Buffer::Mut(buf, len), data, callback)
    }

    /// Writes `buf[..len]` to `fd` at `offset` (pwrite; or at the current
    /// position with [`CURRENT_POSITION`](Self::CURRENT_POSITION), as for
    /// `O_APPEND` files and pipes). The whole buffer comes back in the event.
    /// `EINVAL` if `len` exceeds the buffer.
    pub fn write(
        &mut self,
        fd: RawFd,
        offset: u64,
        buf: &'static mut [u8],
        len: usize,
        data: u64,
        callback: FileFn<L>,
    ) -> Result<RequestId, Refused> {
        self.io(Op::Write, fd, offset, Buffer::Mut(buf, len), data, callback)
    }

    /// [`write`](Self::write) of bytes that live for the whole program
    /// (`b"started\n"`), which are not handed back.
    pub fn write_static(
        &mut self,
        fd: RawFd,
        offset: u64,
        bytes: &'static [u8],
        data: u64,
        callback: FileFn<L>,
    ) -> Result<RequestId, Error> {
        self.io(Op::Write, fd, offset, Buffer::Static(bytes), data, callback).map_err(Error::from)
    }

    fn io(
        &mut self,
        op: Op,
        fd: RawFd,
        offset: u64,
        buffer: Buffer,
        data: u64,
        callback: FileFn<L>,
    ) -> Result<RequestId, Refused> {
        let refused = |error, buffer: Buffer| Refused {
            error,
            buffer: match buffer {
                Buffer::Mut(b, _) => b,
                _ => &mut [],
            },
        };
        if let Buffer::Mut(b, len) = &buffer
            && *len > b.len()
        {
            return Err(refused(Error::Os(Errno::EINVAL), buffer));
        }
        if fd < 0 {
            return Err(refused(Error::Os(Errno::EBADF), buffer));
        }
        if offset != CURRENT_POSITION && offset > i64::MAX as u64 {
            return Err(refused(Error::Os(Errno::EINVAL), buffer));
        }
        let args = Args { offset, ..Args::on(op, fd) };
        self.accept(op, args, &[], data, callback, buffer).map_err(|(e, b)| refused(e, b))
    }

    /// Flushes `fd`'s data and metadata to its device.
    pub fn fsync(&mut self, fd: RawFd, data: u64, callback: FileFn<L>) -> Result<RequestId, Error> {
        self.fd_op(Op::Fsync, Args::on(Op::Fsync, fd), data, callback)
    }

    /// Flushes `fd`'s data (and the metadata needed to read it back).
    pub fn fdatasync(&mut self, fd: RawFd, data: u64, callback: FileFn<L>) -> Result<RequestId, Error> {
        self.fd_op(Op::Fdatasync, Args::on(Op::Fdatasync, fd), data, callback)
    }

    /// The metadata of `path`, following symlinks; the event's
    /// [`stat`](super::FileEvent::stat) has it.
    pub fn stat(&mut self, path: &[u8], data: u64, callback: FileFn<L>) -> Result<RequestId, Error> {
        self.path_op(Op::Stat, Args::on(Op::Stat, AT_FDCWD), &[path], data, callback)
    }

    /// The metadata of `path` itself, even when it is a symlink.
    pub fn lstat(&mut self, path: &[u8], data: u64, callback: FileFn<L>) -> Result<RequestId, Error> {
        let args = Args { flags: NOFOLLOW, ..Args::on(Op::Lstat, AT_FDCWD) };
        self.path_op(Op::Lstat, args, &[path], data, callback)
    }

    /// The metadata of open file `fd`.
    pub fn fstat(&mut self, fd: RawFd, data: u64, callback: FileFn<L>) -> Result<RequestId, Error> {
        if fd < 0 {
            return Err(Error::Os(Errno::EBADF));
        }
        let args = Args { flags: EMPTY_PATH, ..Args::on(Op::Fstat, fd) };
        self.path_op(Op::Fstat, args, &[b""], data, callback)
    }

    /// Removes the name `path` (not a directory: `EISDIR`).
    pub fn unlink(&mut self, path: &[u8], data: u64, callback: FileFn<L>) -> Result<RequestId, Error> {
        self.path_op(Op::Unlink, Args::on(Op::Unlink, AT_FDCWD), &[path], data, callback)
    }

    /// Removes the empty directory `path`.
    pub fn rmdir(&mut self, path: &[u8], data: u64, callback: FileFn<L>) -> Result<RequestId, Error> {
        let args = Args { flags: k::AT_REMOVEDIR, ..Args::on(Op::Rmdir, AT_FDCWD) };
        self.path_op(Op::Rmdir, args, &[path], data, callback)
    }

    /// Renames `from` to `to`, replacing `to` if it exists (rename(2)). Both
    /// paths share the request's `P` bytes.
    pub fn rename(&mut self, from: &[u8], to: &[u8], data: u64, callback: FileFn<L>) -> Result<RequestId, Error> {
        self.path_op(Op::Rename, Args::on(Op::Rename, AT_FDCWD), &[from, to], data, callback)
    }

    /// Makes directory `path` with `mode` (less the umask).
    pub fn mkdir(&mut self, path: &[u8], mode: u32, data: u64, callback: FileFn<L>) -> Result<RequestId, Error> {
        let args = Args { mode, ..Args::on(Op::Mkdir, AT_FDCWD) };
        self.path_op(Op::Mkdir, args, &[path], data, callback)
    }
}
