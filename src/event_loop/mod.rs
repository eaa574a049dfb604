//! `Loop`: the reactor users hold. Owns a backend and the two tables, and
//! runs callbacks with `&mut Loop` and the user's context.
//!
//! This layer is safe Rust only: it calls the backend and the tables, never
//! the kernel directly, and never allocates.

mod child;
mod hooks;
mod run;
mod signal;
mod timer;
mod waker;
mod watch;

pub use child::{ChildEvent, ChildId, ChildMode, PidOptions};
pub use signal::{SignalEvent, SignalId};
pub use timer::TimerId;
pub use waker::{MAX_WAKERS, Waker};
pub use watch::{IoEvent, WatchId, WatchOptions};

use crate::backend::{Backend, EVENT_BATCH, Epoll, ReadyEvent};
use crate::error::Error;
use crate::table::{TimerHeap, WatcherTable};
use crate::time::Instant;
use waker::WakerCell;

/// A watcher callback: runs once per ready side of its fd.
pub type WatchFn<C, const W: usize, const T: usize, B> = fn(&mut Loop<C, W, T, B>, &mut C, IoEvent);
/// A timer callback: gets the id of the timer that fired.
pub type TimerFn<C, const W: usize, const T: usize, B> = fn(&mut Loop<C, W, T, B>, &mut C, TimerId);
/// A wake-up callback: gets the number of `Waker::signal` counts it drained.
pub type WakeFn<C, const W: usize, const T: usize, B> = fn(&mut Loop<C, W, T, B>, &mut C, u64);
/// A signal callback: once per pass per signal that arrived.
pub type SignalFn<C, const W: usize, const T: usize, B> = fn(&mut Loop<C, W, T, B>, &mut C, SignalEvent);
/// A pid watcher callback: once, when the process has exited.
pub type PidFn<C, const W: usize, const T: usize, B> = fn(&mut Loop<C, W, T, B>, &mut C, ChildEvent);
/// The any-child reaper: every exited child's pid and status.
pub type ChildrenFn<C, const W: usize, const T: usize, B> =
    fn(&mut Loop<C, W, T, B>, &mut C, i32, crate::sys::ExitStatus);

/// What an entry of the watcher table runs when its fd is ready.
pub(crate) enum Handler<C, const W: usize, const T: usize, B: Backend> {
    /// A user's fd watcher.
    Io(WatchFn<C, W, T, B>),
    /// A pid watcher (the fd is its pidfd, or `-pid` in SIGCHLD mode).
    Child { callback: PidFn<C, W, T, B>, pid: i32, reap: bool },
}

// Manual impls: derive would demand `C: Copy` although fn pointers are
// always Copy.
impl<C, const W: usize, const T: usize, B: Backend> Clone for Handler<C, W, T, B> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C, const W: usize, const T: usize, B: Backend> Copy for Handler<C, W, T, B> {}

/// A readiness event loop with room for `W` watchers and `T` timers, on
/// backend `B` (epoll unless told otherwise).
///
/// `C` is the context passed to [`run`](Loop::run) and on to every
/// callback; callbacks are plain `fn` pointers (closures that capture
/// nothing coerce to them), so the loop stores no closures and allocates
/// nothing. `W` must be a power of two, at least 2 (checked at compile time).
///
/// ```
/// use core::time::Duration;
/// use linux_event::{Interest, Loop};
///
/// #[derive(Default)]
/// struct App { ticks: u32, got: usize }
///
/// let (r, w) = linux_event::sys::pipe()?;
/// let mut lp: Loop<App> = Loop::new()?;
/// lp.watch(r.as_raw_fd(), Interest::READ, |lp, app, ev| {
///     let mut buf = [0u8; 16];
///     app.got += linux_event::sys::read(ev.fd(), &mut buf).unwrap_or(0);
///     lp.unwatch_id(ev.id());
/// })?;
/// lp.every(Duration::from_millis(1), |lp, app, _id| {
///     app.ticks += 1;
///     if app.ticks == 3 { lp.stop(); }
/// })?;
/// linux_event::sys::write(w.as_raw_fd(), b"hello")?;
/// let mut app = App::default();
/// lp.run(&mut app)?;
/// assert_eq!((app.ticks, app.got), (3, 5));
/// # Ok::<(), linux_event::Error>(())
/// ```
pub struct Loop<C, const W: usize = 256, const T: usize = 256, B: Backend = Epoll> {
    backend: B,
    watchers: WatcherTable<Handler<C, W, T, B>, W>,
    timers: TimerHeap<TimerFn<C, W, T, B>, T>,
    events: [ReadyEvent; EVENT_BATCH],
    now: Instant,
    waker: Option<WakerCell>,
    on_wake: Option<WakeFn<C, W, T, B>>,
    signals: signal::Signals<SignalFn<C, W, T, B>>,
    children: child::Children<ChildrenFn<C, W, T, B>>,
    hooks: hooks::Hooks<C, W, T, B>,
    stop_requested: bool,
    running: bool,
    dispatching: bool,
    /// Watchers the kernel currently holds (what can still wake `run`).
    in_kernel: usize,
    /// Fds whose deregistration the backend refused (not epoll's closed-fd
    /// cases, which are success): retried before every wait, since a
    /// registration left behind would keep reporting under a stale key.
    failed_deregs: heapless::Vec<crate::sys::RawFd, 8>,
    /// The one-shot timer whose callback is running, so a panic that
    /// unwinds out of it cannot leave its slot allocated for good.
    firing: Option<crate::table::Key>,
}

impl<C, const W: usize, const T: usize> Loop<C, W, T, Epoll> {
    /// A loop on the epoll backend.
    pub fn new() -> Result<Self, Error> {
        Self::with_backend(Epoll::new()?)
    }
}

impl<C, const W: usize, const T: usize, B: Backend> Loop<C, W, T, B> {
    const CHECK_CAPACITY: () =
        assert!(W.is_power_of_two() && W >= 2 && W < u32::MAX as usize / 2 && T < u32::MAX as usize / 2);

    /// A loop on the given backend.
    pub fn with_backend(mut backend: B) -> Result<Self, Error> {
        #[allow(clippy::let_unit_value)]
        let () = Self::CHECK_CAPACITY;
        let now = backend.now()?;
        Ok(Loop {
            backend,
            watchers: WatcherTable::new(),
            timers: TimerHeap::new(),
            events: [ReadyEvent::default(); EVENT_BATCH],
            now,
            waker: None,
            on_wake: None,
            signals: signal::Signals::new(),
            children: child::Children::new(),
            hooks: hooks::Hooks::new(),
            stop_requested: false,
            running: false,
            dispatching: false,
            in_kernel: 0,
            failed_deregs: heapless::Vec::new(),
            firing: None,
        })
    }

    /// The loop's time: read once per pass, right after the wait, and cached.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Reads the clock again, outside the once-per-pass rhythm.
    pub fn update_now(&mut self) -> Result<Instant, Error> {
        self.now = self.backend.now()?;
        Ok(self.now)
    }

    /// The backend's name, e.g. `"epoll"`.
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// The backend, for backend-specific questions.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend, mutably (a simulated backend is steered through this).
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// Whether `run` or `run_once` is executing.
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Asks `run` to return: the loop finishes the pass it is in (every event
    /// already received and every due timer is still dispatched) and does
    /// not wait again.
    pub fn stop(&mut self) {
        self.stop_requested = true;
    }

    /// The loop's waker, created with its eventfd on first use. Hand copies
    /// to other threads; see [`Waker`].
    pub fn waker(&mut self) -> Result<Waker, Error> {
        if let Some(cell) = &self.waker {
            return Ok(cell.waker());
        }
        let cell = WakerCell::new()?;
        let interest = crate::Interest::READ;
        self.backend.register(cell.fd(), crate::table::Key::WAKER.to_u64(), interest, crate::Trigger::Level)?;
        let waker = cell.waker();
        self.waker = Some(cell);
        Ok(waker)
    }

    /// Runs `callback` once per pass in which the waker was signalled, with
    /// the coalesced count (which it drains). Without one, the count waits
    /// for [`Waker::drain`].
    pub fn on_wake(&mut self, callback: WakeFn<C, W, T, B>) -> Result<(), Error> {
        self.waker()?;
        self.on_wake = Some(callback);
        Ok(())
    }

    /// Whether `fd` belongs to the loop itself (waker, signalfd, a pidfd it
    /// owns, or the backend's own).
    fn is_reserved(&self, fd: crate::sys::RawFd) -> bool {
        self.backend.owns_fd(fd)
            || self.waker.as_ref().is_some_and(|w| w.fd() == fd)
            || self.signals.fd() == Some(fd)
            || self
                .watchers
                .key_of_fd(fd)
                .and_then(|k| self.watchers.get(k))
                .is_some_and(|w| matches!(w.callback, Handler::Child { .. }))
    }

    /// Retries deregistrations the backend refused earlier; keeps those it
    /// still refuses. An fd watched again since then is left alone.
    pub(crate) fn retry_deregistrations(&mut self) {
        let mut i = 0;
        while i < self.failed_deregs.len() {
            let fd = self.failed_deregs[i];
            if self.watchers.key_of_fd(fd).is_some() || self.backend.deregister(fd).is_ok() {
                self.failed_deregs.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Removes any watcher-table entry: takes it out of the kernel and, for
    /// a pid watcher, lets the child code close its pidfd or update counts.
    fn remove_watcher(&mut self, key: crate::table::Key) -> bool {
        let Some(w) = self.watchers.remove(key) else { return false };
        if w.registered {
            self.in_kernel -= 1;
            // The watcher is gone either way; a refused deregistration is
            // retried before later waits (and its events are stale by now).
            if self.backend.deregister(w.fd).is_err() && self.failed_deregs.push(w.fd).is_err() {
                self.failed_deregs.remove(0);
                let _ = self.failed_deregs.push(w.fd);
            }
        }
        if let (Handler::Child { .. }, Some(removed)) = (w.callback, self.hooks.child_removed) {
            removed(self, &w);
        }
        true
    }
}

impl<C, const W: usize, const T: usize, B: Backend> Drop for Loop<C, W, T, B> {
    fn drop(&mut self) {
        // Close the pidfds the loop owns; everything else closes itself.
        for slot in 0..self.watchers.slot_count() {
            let owned_pidfd = |w: &crate::table::Watcher<Handler<C, W, T, B>>| {
                matches!(w.callback, Handler::Child { .. }) && w.registered
            };
            if let Some(key) = self.watchers.key_at(slot)
                && self.watchers.get(key).is_some_and(owned_pidfd)
            {
                self.remove_watcher(key);
            }
        }
        if let Some(restore) = self.hooks.restore_mask {
            restore(self);
        }
    }
}
