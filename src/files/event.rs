//! `FileEvent`: what a request's callback gets, and `Refused`: a read or
//! write that was not accepted, with its buffer handed back.

use super::request::{Op, RequestId};
use super::stat::Stat;
use crate::error::Error;
use crate::sys::{Errno, OwnedFd};
use core::fmt;

/// One completed request, handed to its callback exactly once.
///
/// It owns what the request produced: the buffer of a read or write (take
/// it back with [`take_buffer`](Self::take_buffer)), the fd of an open
/// ([`take_fd`](Self::take_fd); closed with the event if not taken), the
/// metadata of a stat.
#[derive(Debug)]
pub struct FileEvent {
    pub(crate) id: RequestId,
    pub(crate) data: u64,
    pub(crate) op: Op,
    pub(crate) result: Result<u64, Errno>,
    pub(crate) fd: Option<OwnedFd>,
    pub(crate) stat: Option<Stat>,
    pub(crate) buffer: Option<&'static mut [u8]>,
}

impl FileEvent {
    /// The request this completes.
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// The user data given with the request.
    pub fn data(&self) -> u64 {
        self.data
    }

    /// The operation.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The raw outcome: the fd number of an open, the byte count of a read
    /// or write, 0 for the rest; or the errno (`ECANCELED` for a request
    /// that was cancelled).
    pub fn result(&self) -> Result<u64, Errno> {
        self.result
    }

    /// The errno, if it failed.
    pub fn errno(&self) -> Option<Errno> {
        self.result.err()
    }

    /// Whether it failed because it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.result == Err(Errno::ECANCELED)
    }

    /// The bytes a read or write transferred (0 at end of file).
    pub fn bytes(&self) -> Result<usize, Errno> {
        self.result.map(|n| n as usize)
    }

    /// The fd an open made, now yours. Its errno if the open failed;
    /// `EBADF` if this is no open or the fd was taken already.
    pub fn take_fd(&mut self) -> Result<OwnedFd, Errno> {
        self.result?;
        self.fd.take().ok_or(Errno::EBADF)
    }

    /// The metadata a stat, lstat or fstat found (`EINVAL` for other operations).
    pub fn stat(&self) -> Result<Stat, Errno> {
        self.result?;
        self.stat.ok_or(Errno::EINVAL)
    }

    /// The buffer of a read or write, back in your hands (once; `None` for
    /// other operations and for [`write_static`](super::Files::write_static)).
    pub fn take_buffer(&mut self) -> Option<&'static mut [u8]> {
        self.buffer.take()
    }

    /// What a read put in its buffer (empty if it failed or the buffer was taken).
    pub fn filled(&self) -> &[u8] {
        let n = match (self.op, self.result) {
            (Op::Read, Ok(n)) => n as usize,
            _ => 0,
        };
        self.buffer.as_deref().and_then(|b| b.get(..n)).unwrap_or(&[])
    }
}

/// A read or write that was not accepted: why, and its buffer, given back.
///
/// ```
/// use linux_event::files::Refused;
/// use linux_event::Error;
/// fn give_up(r: Refused) -> Error { r.into() } // `?` converts it too
/// # let _ = give_up;
/// ```
#[derive(Debug)]
pub struct Refused {
    /// `Capacity` (the request table is full), `Os(ENAMETOOLONG)`...
    pub error: Error,
    /// The buffer, unused.
    pub buffer: &'static mut [u8],
}

impl From<Refused> for Error {
    fn from(r: Refused) -> Error {
        r.error
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Refused {}
