//! How a child tells its parent that it could not start: the errno of the
//! failed step, four bytes over a close-on-exec pipe, then exit 127. A
//! successful exec closes the pipe with nothing written.
//!
//! The parent reads until end of file or four bytes; the child side only
//! writes (one raw `write`), as it may run after a fork from a threaded parent.

use crate::sys::{self, Errno, OwnedFd, RawFd};

/// The pipe of one spawn.
pub(super) struct ReportPipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl ReportPipe {
    /// A fresh pipe (non-blocking and close-on-exec at both ends).
    pub(super) fn new() -> Result<ReportPipe, Errno> {
        let (read, write) = sys::pipe()?;
        Ok(ReportPipe { read, write })
    }

    /// The end the child writes to.
    pub(super) fn write_end(&self) -> RawFd {
        self.write.as_raw_fd()
    }

    /// The parent's side, after the fork: `None` once the exec succeeded (the
    /// pipe closed empty), or the errno the child sent.
    pub(super) fn receive(self) -> Result<Option<Errno>, Errno> {
        drop(self.write);
        let fd = self.read.as_raw_fd();
        let mut buf = [0u8; 4];
        let mut got = 0;
        while got < buf.len() {
            match sys::read(fd, &mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(Errno::EAGAIN) => sys::process::wait_readable(fd)?,
                Err(e) => return Err(e),
            }
        }
        Ok((got == buf.len()).then(|| Errno::from_raw(u32::from_ne_bytes(buf) as u16)))
    }
}

/// The child's side: sends `errno` (a failure to write cannot be reported).
pub(super) fn send(fd: RawFd, errno: Errno) {
    let _ = sys::write(fd, &u32::from(errno.raw()).to_ne_bytes());
}
