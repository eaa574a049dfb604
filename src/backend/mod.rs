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
