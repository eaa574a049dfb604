//! `Error`: everything the loop can refuse, as one small `Copy` value.
//!
//! Kernel failures carry their `Errno`; the rest are the loop's own refusals.
//! Nothing here allocates, and no input makes the library panic instead.

use crate::sys::Errno;
use core::fmt;

/// Why an operation on the loop failed.
///
/// ```
/// use linux_event::{Error, Errno};
/// assert_eq!(Error::Os(Errno::EBADF).to_string(), "EBADF (Bad file descriptor)");
/// assert_eq!(Error::Capacity.to_string(), "table full (raise the capacity parameter)");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// The kernel refused: the errno says why.
    Os(Errno),
    /// A fixed-capacity table is full; nothing was added and nothing was lost.
    Capacity,
    /// The id or fd does not name a live watcher or timer of this loop.
    NotFound,
    /// The fd is one the loop owns (its waker or timer fd) and cannot be watched.
    Reserved,
    /// `run`/`run_once` was called from inside a callback of the same loop.
    Reentrant,
    /// The loop that owned this handle has been dropped.
    Closed,
    /// The process already has a pid watcher on this loop (one per process).
    AlreadyWatched,
    /// The loop's signal watchers hold another thread's signal mask (the
    /// loop moved): remove them all before watching signals on this thread.
    WrongThread,
}

impl From<Errno> for Error {
    fn from(e: Errno) -> Self {
        Error::Os(e)
    }
}

impl Error {
    /// What the loop's own refusals say (`Display` shows the same text), or
    /// `None` for `Os`, which `Display` shows as its errno does. For a program
    /// that prints errors without `core::fmt`.
    ///
    /// ```
    /// use linux_event::{Error, Errno};
    /// assert_eq!(Error::NotFound.message(), Some("no such watcher or timer"));
    /// assert_eq!(Error::Os(Errno::EBADF).message(), None);
    /// ```
    pub fn message(&self) -> Option<&'static str> {
        Some(match self {
            Error::Os(_) => return None,
            Error::Capacity => "table full (raise the capacity parameter)",
            Error::NotFound => "no such watcher or timer",
            Error::Reserved => "fd is reserved by the loop",
            Error::Reentrant => "loop run from inside one of its callbacks",
            Error::Closed => "the loop is gone",
            Error::AlreadyWatched => "the process already has a pid watcher",
            Error::WrongThread => "the loop's signal watchers belong to another thread",
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, self.message()) {
            (_, Some(text)) => f.write_str(text),
            (Error::Os(e), None) => fmt::Display::fmt(e, f),
            (_, None) => Ok(()),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

#[cfg(feature = "std")]
impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Os(errno) => errno.into(),
            other => std::io::Error::other(other),
        }
    }
}
