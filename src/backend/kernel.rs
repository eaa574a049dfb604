//! `Kernel`: the one interface through which the loop and every source
//! reach the kernel. The epoll, Linux AIO and io_uring backends implement
//! it with `sys`; `Sim` implements it in memory.
//!
//! It has three parts: fd readiness (register, modify, deregister, wait,
//! the clock), the kernel objects the sources own (the waker's doorbell,
//! the signalfd and the thread's signal mask, pidfds and `waitid`), and the
//! owned handle type those objects come in. Nothing above this trait makes
//! a system call. It is sealed: only this crate implements or calls it, so
//! no caller can register an fd behind the loop's tables.

use super::ReadyEvent;
use crate::error::Error;
use crate::interest::{Interest, Trigger};
use crate::sys::{Errno, ExitStatus, RawFd, SigSet, SignalfdSiginfo};
use crate::time::Instant;

/// What a waker's holders ring to wake a blocked loop.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Ring {
    /// An eventfd: a ringer writes 1 to it.
    Eventfd(RawFd),
    /// A simulated doorbell: the simulation itself notices rings (see
    /// [`Sim`](super::Sim)); a real thread that rings it writes nothing.
    Virtual,
}

/// Whose exit a `child_wait` asks about.
#[derive(Debug)]
pub enum ChildTarget<'a, F> {
    /// The process behind a pidfd.
    Pidfd(&'a F),
    /// One child by pid.
    Pid(i32),
    /// Any child.
    Any,
}

/// A handle to a kernel object that a source owns: closed when dropped (for
/// the kernel backends, an [`OwnedFd`](crate::sys::OwnedFd)).
pub trait ObjectFd {
    /// The fd number, as registered for readiness.
    fn raw(&self) -> RawFd;
}

impl ObjectFd for crate::sys::OwnedFd {
    fn raw(&self) -> RawFd {
        self.as_raw_fd()
    }
}

/// The kernel face (sealed: its module is private to the crate).
pub trait Kernel {
    /// The owned handle a source keeps for each kernel object it made.
    type Fd: ObjectFd;

    /// A short, stable name: `"epoll"`, `"sim"`, ...
    fn name(&self) -> &'static str;

    /// How many key slots the backend can hold, when it has a limit (the
    /// loop refuses to be built with more watchers than that).
    fn capacity(&self) -> Option<usize> {
        None
    }

    // --- fd readiness ---

    /// Starts reporting `interest` on `fd` under `key` (`interest` is never
    /// empty). An fd the kernel still holds (a dup survived a close) is
    /// taken over.
    fn register(&mut self, fd: RawFd, key: u64, interest: Interest, trigger: Trigger) -> Result<(), Errno>;

    /// Changes what is reported for the registration under `key` (and its
    /// fd); re-arms a oneshot. An fd the kernel forgot (closed and reused)
    /// is registered afresh.
    fn modify(&mut self, fd: RawFd, key: u64, interest: Interest, trigger: Trigger) -> Result<(), Errno>;

    /// Stops reporting the registration `fd` was registered with under
    /// `key`. An fd that was closed meanwhile is not an error.
    fn deregister(&mut self, fd: RawFd, key: u64) -> Result<(), Errno>;

    /// Whether a registration is the fd's, whatever its key (epoll, Sim):
    /// then a later registration of the same fd takes over an earlier one
    /// whose deregistration failed, and deregistering the fd again would
    /// remove the later one. `false` where registrations are by key.
    fn registers_by_fd(&self) -> bool {
        true
    }

    /// Waits until a registration is ready or `deadline` (on this
    /// backend's clock) has passed; `None` waits for readiness only. Fills
    /// `out`, returns how many it filled; 0 means the deadline passed or a
    /// signal interrupted the wait.
    fn wait(&mut self, out: &mut [ReadyEvent], deadline: Option<Instant>) -> Result<usize, Errno>;

    /// The backend's clock: `CLOCK_MONOTONIC` for kernel backends.
    fn now(&mut self) -> Result<Instant, Errno>;

    /// Whether `fd` is one the backend itself owns and must not be watched.
    fn owns_fd(&self, fd: RawFd) -> bool;

    /// `Ok` if `fd` names an open file, `EBADF` if not: how a watcher that
    /// asks the kernel for nothing (empty interest) is still checked.
    fn check_fd(&self, fd: RawFd) -> Result<(), Errno>;

    // --- the waker's doorbell ---

    /// A doorbell for a waker: the object the loop watches, and what other
    /// threads ring.
    fn doorbell_open(&mut self) -> Result<(Self::Fd, Ring), Errno>;

    /// Resets a doorbell that rang (it is level-triggered).
    fn doorbell_reset(&mut self, fd: &Self::Fd);

    // --- signals ---

    /// A signalfd (non-blocking) listening to `mask`.
    fn signalfd_open(&mut self, mask: SigSet) -> Result<Self::Fd, Errno>;

    /// Changes what a signalfd listens to.
    fn signalfd_mask(&mut self, fd: &Self::Fd, mask: SigSet) -> Result<(), Errno>;

    /// Reads pending records (as many as fit); 0 when none is pending.
    fn signalfd_read(&mut self, fd: &Self::Fd, out: &mut [SignalfdSiginfo]) -> Result<usize, Errno>;

    /// The calling thread's id: whose signal mask `mask_hold` changes.
    fn thread_id(&mut self) -> i32;

    /// Blocks `set` in the calling thread on behalf of one more holder per
    /// signal (masks are per thread and shared by every loop in it).
    /// `Capacity` when the ledger of threads is full; on error nothing
    /// changed.
    fn mask_hold(&mut self, set: SigSet) -> Result<(), Error>;

    /// Gives back holds taken by thread `owner`. A signal no holder needs
    /// any more is unblocked, if the thread blocked it for a holder; its
    /// records still pending are discarded first, so none reaches its
    /// default action. Only a thread can change its own mask: a release for
    /// another thread is carried out by that thread at its next hold or
    /// release.
    fn mask_release(&mut self, owner: i32, set: SigSet);

    // --- children ---

    /// A pidfd (non-blocking) for `pid`.
    fn pidfd_open(&mut self, pid: i32) -> Result<Self::Fd, Errno>;

    /// Takes over a pidfd that `process::Spawn` made (`EINVAL` where the
    /// backend cannot hold real fds: `Sim`).
    fn adopt_pidfd(&mut self, fd: crate::sys::OwnedFd) -> Result<Self::Fd, Errno>;

    /// `waitid` for an exited child, never blocking: `Ok(None)` when none
    /// has exited. `reap: false` leaves the zombie (`WNOWAIT`). `ECHILD`
    /// for a process that is not a child of this one.
    fn child_wait(&mut self, target: ChildTarget<'_, Self::Fd>, reap: bool)
    -> Result<Option<(i32, ExitStatus)>, Errno>;

    /// Makes sure the kernel keeps exited children's statuses for `waitid`:
    /// a SIGCHLD disposition of "ignore" (inherited, say, from a parent
    /// that set it) makes the kernel reap children itself, so it is set
    /// back to the default action (which ignores SIGCHLD too, but keeps
    /// the statuses).
    fn keep_child_statuses(&mut self) -> Result<(), Errno>;

    /// `Ok` if process `pid` exists (signal 0; `EPERM` counts as existing).
    fn process_exists(&mut self, pid: i32) -> Result<(), Errno>;

    /// Fills `out` with pids of this process's children, live or zombie
    /// (at most `out.len()`); how many it filled.
    fn list_children(&mut self, out: &mut [i32]) -> Result<usize, Errno>;

    /// Gives up a kernel object (closes it).
    fn release(&mut self, fd: Self::Fd) {
        drop(fd);
    }
}
