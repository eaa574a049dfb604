//! The backends: every way the loop reaches the kernel, behind one sealed
//! interface ([`Backend`]).
//!
//! A backend registers fds under a 64-bit key, waits until an fd is ready or
//! a deadline passes, tells the time, and makes the kernel objects the
//! sources own (the waker's doorbell, the signalfd and the thread's signal
//! mask, pidfds and `waitid`). It never runs callbacks and never interprets
//! keys beyond handing them back. [`Epoll`], [`LinuxAio`] and [`IoUring`]
//! do it with real system calls; [`Sim`] does all of it in memory.

mod any;
#[cfg(feature = "waker")]
mod doorbell;
mod epoll;
mod io_uring;
mod kernel;
mod linux_aio;
mod oneshot;
mod sim;
mod slots;
pub(crate) mod sys_objects;
pub(crate) mod thread_masks;

pub use any::{AnyBackend, BackendKind};
#[cfg(feature = "waker")]
pub(crate) use doorbell::Doorbell;
#[cfg(feature = "waker")]
pub use doorbell::{MAX_WAKERS, Waker};
pub use epoll::{Epoll, EpollTimer};
pub use io_uring::{IoUring, UringConfig};
#[allow(unused_imports)] // which of them are used depends on the sources built
pub(crate) use kernel::{ChildTarget, Kernel, ObjectFd, Ring};
pub use linux_aio::{AioConfig, LinuxAio};
pub use sim::{Sim, SimFd, SimRegistration};
pub use thread_masks::MAX_SIGNAL_THREADS;

use crate::interest::Ready;
use crate::sys::{Errno, clock};
use crate::time::Instant;

/// One readiness report: the key the fd was registered with, and what is
/// ready. It has the kernel's `epoll_event` layout, so the epoll backend's
/// wait writes straight into the loop's buffer (no copy per event).
pub use crate::sys::epoll::Event as ReadyEvent;

impl ReadyEvent {
    /// A report of `ready` for the registration under `key`.
    #[inline]
    pub const fn of(key: u64, ready: Ready) -> ReadyEvent {
        ReadyEvent::new(key, ready.bits())
    }
    /// The key given at registration (see `table::Key`).
    #[inline]
    pub const fn key(self) -> u64 {
        self.data()
    }
    /// What the kernel reported (`Ready` uses epoll's bits).
    #[inline]
    pub const fn ready(self) -> Ready {
        Ready::from_bits_truncate(self.events())
    }
    /// Adds `more` to what is reported.
    #[inline]
    pub fn add_ready(&mut self, more: Ready) {
        self.set_events(self.events() | more.bits());
    }
}

impl Default for ReadyEvent {
    fn default() -> Self {
        ReadyEvent::new(0, 0)
    }
}

impl core::fmt::Debug for ReadyEvent {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReadyEvent").field("key", &self.key()).field("ready", &self.ready()).finish()
    }
}

impl PartialEq for ReadyEvent {
    fn eq(&self, other: &Self) -> bool {
        (self.key(), self.events()) == (other.key(), other.events())
    }
}

impl Eq for ReadyEvent {}

impl Default for Ready {
    fn default() -> Self {
        Ready::empty()
    }
}

/// The most completions the Linux AIO and io_uring backends read per wait
/// (their own buffers); the loop's batch is its own (`Loop::set_event_batch`).
pub const EVENT_BATCH: usize = 256;

/// How long from now until `deadline`, in nanoseconds of the monotonic clock
/// read right now: `None` without a deadline, 0 once it has passed. Every
/// relative wait timeout (`epoll_pwait2`, `io_getevents`, `io_uring_enter`)
/// and every "has the deadline passed" check of the backends comes from here.
fn relative_timeout(deadline: Option<Instant>) -> Result<Option<u64>, Errno> {
    match deadline {
        Some(d) => Ok(Some(d.as_nanos().saturating_sub(clock::monotonic_ns()?))),
        None => Ok(None),
    }
}

/// A backend the loop can run on: [`Epoll`], [`LinuxAio`], [`IoUring`],
/// [`AnyBackend`] or [`Sim`].
///
/// Sealed: its methods belong to the crate-private kernel face, so only the
/// loop registers fds and makes kernel objects (nothing can register an fd
/// behind the loop's tables). Use it as a bound in code generic over the
/// backend: `fn serve<B: Backend>(lp: &mut Loop<App, 64, 64, B>)`.
pub trait Backend: kernel::Kernel {}

impl<K: kernel::Kernel> Backend for K {}
