//! The backend contract: how the loop asks the kernel about fds and time.
//!
//! A backend registers fds under a 64-bit key, waits until an fd is ready or
//! a deadline passes, and tells the time. It never runs callbacks and never
//! interprets keys beyond handing them back.

mod any;
mod epoll;
mod io_uring;
mod linux_aio;
mod sim;
mod slots;

pub use any::{AnyBackend, BackendKind};
pub use epoll::{Epoll, EpollTimer};
pub use io_uring::{IoUring, UringConfig};
pub use linux_aio::{AioConfig, LinuxAio};
pub use sim::{Sim, SimRegistration};

use crate::interest::{Interest, Ready, Trigger};
use crate::sys::{Errno, RawFd};
use crate::time::Instant;

/// One readiness report: the key the fd was registered with, and what is ready.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct ReadyEvent {
    /// The key given at registration (see `table::Key`).
    pub key: u64,
    /// What the kernel reported.
    pub ready: Ready,
}

impl Default for Ready {
    fn default() -> Self {
        Ready::empty()
    }
}

/// The most events one wait reports; the rest stay queued in the kernel for
/// the next pass.
pub const EVENT_BATCH: usize = 64;

/// What a readiness backend provides to the loop.
///
/// The traps of each kernel interface stay inside the backend:
/// `register` of an fd the kernel already holds updates it, `modify` of an
/// fd the kernel has forgotten (closed and reopened) registers it, and
/// `deregister` of an fd that was closed is not an error.
pub trait Backend {
    /// A short, stable name: `"epoll"`, `"sim"`, ...
    fn name(&self) -> &'static str;

    /// Starts reporting `interest` on `fd` under `key`. `interest` is never
    /// empty.
    fn register(&mut self, fd: RawFd, key: u64, interest: Interest, trigger: Trigger) -> Result<(), Errno>;

    /// Changes what is reported for `fd` (and under which key). Also re-arms
    /// a oneshot registration.
    fn modify(&mut self, fd: RawFd, key: u64, interest: Interest, trigger: Trigger) -> Result<(), Errno>;

    /// Stops reporting `fd`.
    fn deregister(&mut self, fd: RawFd) -> Result<(), Errno>;

    /// Waits until at least one registered fd is ready or `deadline` (on
    /// this backend's clock) has passed, whichever is first; `None` waits
    /// for an fd only. Fills `out` and returns how many entries it filled;
    /// 0 means the deadline passed or a signal interrupted the wait.
    fn wait(&mut self, out: &mut [ReadyEvent], deadline: Option<Instant>) -> Result<usize, Errno>;

    /// The backend's clock: `CLOCK_MONOTONIC` for kernel backends.
    fn now(&mut self) -> Result<Instant, Errno>;

    /// Whether `fd` is one the backend itself owns and must not be watched.
    fn owns_fd(&self, fd: RawFd) -> bool;

    /// `Ok` if `fd` names an open file, `EBADF` if not: how a watcher that
    /// asks the kernel for nothing (empty interest) is still checked.
    fn check_fd(&self, fd: RawFd) -> Result<(), Errno> {
        crate::sys::check_fd(fd)
    }
}
