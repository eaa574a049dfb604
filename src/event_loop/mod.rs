//! `Loop`: the reactor users hold. Owns a backend, the two tables and the
//! sources, and runs callbacks with `&mut Loop` and the user's context.
//!
//! This layer is safe Rust only: it calls the backend (the kernel face),
//! the tables and the sources, never `sys`, and never allocates.

mod handle;
mod phases;
#[cfg(feature = "children")]
mod pid;
#[allow(unsafe_code)]
mod place;
mod run;
#[cfg(feature = "signals")]
mod signal;
mod timer;
#[cfg(feature = "waker")]
mod wake;
mod watch;

pub use handle::{Id, LoopTypes};
pub use phases::{CheckId, PHASE_CALLBACKS, PhaseEvent, PhaseFn, PrepareId};
pub use place::{Placed, StaticLoop};
pub use timer::{TimerEvent, TimerId};
pub use watch::{WatchEvent, WatchId, WatchOptions};

use crate::backend::{Backend, Epoll, ReadyEvent};
use crate::error::Error;
#[cfg(feature = "children")]
use crate::source::children::{ChildSource, PidEvent, ReapEvent};
#[cfg(feature = "signals")]
use crate::source::signals::{SignalEvent, SignalSource};
#[cfg(feature = "waker")]
use crate::source::waker::{WakeEvent, WakerSource};
use crate::sys::RawFd;
use crate::table::{Key, TimerHeap, WatcherTable};
use crate::time::Instant;

/// The context type of loop `L`: what its callbacks get next to `&mut L`.
type Ctx<L> = <L as LoopTypes>::Context;

/// A watcher callback: runs once per ready side of its fd.
///
/// Keyed on the loop type, so changing a capacity changes one line:
/// `type MyLoop = Loop<App, 64, 1024>;` and `WatchFn<MyLoop>`.
pub type WatchFn<L> = fn(&mut L, &mut Ctx<L>, WatchEvent);
/// A timer callback.
pub type TimerFn<L> = fn(&mut L, &mut Ctx<L>, TimerEvent);
/// A signal callback: once per pass per signal that arrived.
#[cfg(feature = "signals")]
pub type SignalFn<L> = fn(&mut L, &mut Ctx<L>, SignalEvent);
/// A pid watcher callback: once, when the process has exited.
#[cfg(feature = "children")]
pub type PidFn<L> = fn(&mut L, &mut Ctx<L>, PidEvent);
/// The any-child reaper: once per exited child that has no pid watcher.
#[cfg(feature = "children")]
pub type ReaperFn<L> = fn(&mut L, &mut Ctx<L>, ReapEvent);
/// The wake-up callback: once per pass in which the waker rang.
#[cfg(feature = "waker")]
pub type WakeFn<L> = fn(&mut L, &mut Ctx<L>, WakeEvent);

/// What an entry of the watcher table runs when its fd is ready.
pub(crate) enum Handler<L: LoopTypes> {
    /// A user's fd watcher.
    Io(WatchFn<L>),
    /// A pid watcher (the fd is its pidfd, or `-pid` in SIGCHLD mode).
    #[cfg(feature = "children")]
    Pid { callback: PidFn<L>, pid: i32, reap: bool },
}

// Manual impls: derive would demand `L: Copy` although fn pointers are
// always Copy.
impl<L: LoopTypes> Clone for Handler<L> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<L: LoopTypes> Copy for Handler<L> {}

impl<L: LoopTypes> Handler<L> {
    /// Whether this is a pid watcher (never, without the children source).
    #[cfg_attr(not(feature = "children"), allow(dead_code))]
    pub(crate) fn is_pid(&self) -> bool {
        match self {
            Handler::Io(_) => false,
            #[cfg(feature = "children")]
            Handler::Pid { .. } => true,
        }
    }
}

/// A readiness event loop with room for `W` watchers and `T` timers, on
/// backend `B` (epoll unless told otherwise).
///
/// `C` is the context passed to [`run`](Loop::run) and on to every
/// callback; callbacks are plain `fn` pointers (closures that capture
/// nothing coerce to them), so the loop stores no closures and allocates
/// nothing. `W` must be a power of two, at least 2 (checked at compile time).
///
/// Every registration has the same shape: what to watch, a `u64` of user
/// data, the callback; it returns a typed id. [`remove`](Loop::remove)
/// takes any id and says whether it was live; [`is_live`](Loop::is_live)
/// and [`set_data`](Loop::set_data) take any id too. Every event a
/// callback gets has `id()` and `data()`.
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
/// lp.watch(r.as_raw_fd(), Interest::READ, 0, |lp, app, ev| {
///     let mut buf = [0u8; 16];
///     app.got += linux_event::sys::read(ev.fd(), &mut buf).unwrap_or(0);
///     lp.remove(ev.id());
/// })?;
/// lp.every(Duration::from_millis(1), 0, |lp, app, _ev| {
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
    watchers: WatcherTable<Handler<Self>, W>,
    timers: TimerHeap<(TimerFn<Self>, u64), T>,
    /// Where a wait reports readiness: room for one event per watcher.
    events: [ReadyEvent; W],
    /// How many events one wait may report (`set_event_batch`), at most `W`.
    batch: usize,
    now: Instant,
    #[cfg(feature = "waker")]
    waker: WakerSource<WakeFn<Self>, B>,
    #[cfg(feature = "signals")]
    signals: SignalSource<SignalFn<Self>, B>,
    #[cfg(feature = "children")]
    children: ChildSource<ReaperFn<Self>, B, W>,
    prepares: phases::Phase<PhaseFn<Self>>,
    checks: phases::Phase<PhaseFn<Self>>,
    stop_requested: bool,
    running: bool,
    dispatching: bool,
    /// Watchers the kernel currently holds (what can still wake `run`).
    in_kernel: usize,
    /// Registrations whose deregistration the backend refused (not epoll's
    /// closed-fd cases, which are success): retried before every wait,
    /// since a registration left behind would keep reporting under a stale
    /// key. Room for one per watcher; when full, every entry is retried at
    /// once to make room.
    failed_deregs: heapless::Vec<(RawFd, u64), W>,
    /// The one-shot timer whose callback is running, so a panic that
    /// unwinds out of it cannot leave its slot allocated for good.
    firing: Option<Key>,
}

impl<C, const W: usize, const T: usize, B: Backend> LoopTypes for Loop<C, W, T, B> {
    type Context = C;
}

impl<C, const W: usize, const T: usize> Loop<C, W, T, Epoll> {
    /// A loop on the epoll backend.
    pub fn new() -> Result<Self, Error> {
        Self::with_backend(Epoll::new()?)
    }
}

impl<C, const W: usize, const T: usize, const N: usize> Loop<C, W, T, crate::backend::Sim<N>> {
    /// The simulated backend, for a script to steer: make fds ready, move
    /// the clock, raise signals, end child processes, inject faults.
    pub fn sim(&mut self) -> &mut crate::backend::Sim<N> {
        &mut self.backend
    }
}

impl<C, const W: usize, const T: usize, B: Backend> Loop<C, W, T, B> {
    const CHECK_CAPACITY: () =
        assert!(W.is_power_of_two() && W >= 2 && W < (Key::FIRST_RESERVED / 2) as usize && T < (u32::MAX / 2) as usize);

    /// A loop on the given backend.
    ///
    /// `Capacity` when the backend holds fewer registrations than `W` (the
    /// Linux AIO and io_uring backends are sized when made).
    pub fn with_backend(mut backend: B) -> Result<Self, Error> {
        #[allow(clippy::let_unit_value)]
        let () = Self::CHECK_CAPACITY;
        if backend.capacity().is_some_and(|c| c < W) {
            return Err(Error::Capacity);
        }
        let now = backend.now()?;
        Ok(Loop {
            backend,
            watchers: WatcherTable::new(),
            timers: TimerHeap::new(),
            events: [ReadyEvent::new(0, 0); W],
            batch: W,
            now,
            #[cfg(feature = "waker")]
            waker: WakerSource::new(),
            #[cfg(feature = "signals")]
            signals: SignalSource::new(),
            #[cfg(feature = "children")]
            children: ChildSource::new(),
            prepares: phases::Phase::new(),
            checks: phases::Phase::new(),
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

    /// The backend, for backend-specific questions (it cannot be changed
    /// from outside: registrations only go through the loop).
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Whether `run` or `run_once` is executing.
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// How many events one wait may report (default: `W`, one per watcher,
    /// so a pass handles every ready fd with one wait). A smaller batch
    /// bounds how long one pass runs before timers and the wake-up
    /// callback get their turn (the rest stay queued in the kernel for the
    /// next pass); a larger one means fewer waits per event. `Capacity` for
    /// 0 or more than `W`.
    pub fn set_event_batch(&mut self, batch: usize) -> Result<(), Error> {
        if batch == 0 || batch > W {
            return Err(Error::Capacity);
        }
        self.batch = batch;
        Ok(())
    }

    /// The event batch (see [`set_event_batch`](Self::set_event_batch)).
    pub fn event_batch(&self) -> usize {
        self.batch
    }

    /// Asks `run` to return: the loop finishes the pass it is in (every event
    /// already received and every due timer is still dispatched) and does
    /// not wait again.
    pub fn stop(&mut self) {
        self.stop_requested = true;
    }

    /// Removes any registration by its id: a watcher, timer, signal
    /// watcher, pid watcher, the reaper or the wake-up callback. Returns
    /// whether it was live; idempotent, and safe inside callbacks (their
    /// own registration included): no later event reaches it.
    pub fn remove(&mut self, id: impl Id) -> bool {
        id.remove_from(self)
    }

    /// Whether the id names a live registration.
    pub fn is_live(&self, id: impl Id) -> bool {
        id.is_live_in(self)
    }

    /// Replaces a live registration's user data (`NotFound` for a stale id).
    pub fn set_data(&mut self, id: impl Id, data: u64) -> Result<(), Error> {
        if id.set_data_in(self, data) { Ok(()) } else { Err(Error::NotFound) }
    }

    /// Whether `fd` belongs to the loop itself (waker, signalfd, a pidfd it
    /// owns, or the backend's own).
    fn is_reserved(&self, fd: RawFd) -> bool {
        #[cfg(feature = "waker")]
        if self.waker.fd() == Some(fd) {
            return true;
        }
        #[cfg(feature = "signals")]
        if self.signals.fd() == Some(fd) {
            return true;
        }
        #[cfg(feature = "children")]
        if self.watchers.key_of_fd(fd).and_then(|k| self.watchers.get(k)).is_some_and(|w| w.callback.is_pid()) {
            return true;
        }
        self.backend.owns_fd(fd)
    }

    /// Retries deregistrations the backend refused earlier; keeps those it
    /// still refuses. An fd watched again since then, by a watcher the
    /// kernel holds, is left alone: that registration took the old one
    /// over. (One watched with nothing to ask the kernel for took nothing
    /// over: fuzzing found its stale registration left reporting.)
    pub(crate) fn retry_deregistrations(&mut self) {
        let mut i = 0;
        // (No indexing that can panic here or below: a static program that
        // never panics then carries no panic machinery.)
        while let Some(&(fd, key)) = self.failed_deregs.get(i) {
            let taken_over = self.backend.registers_by_fd()
                && self.watchers.key_of_fd(fd).and_then(|k| self.watchers.get(k)).is_some_and(|w| w.registered);
            if taken_over || self.backend.deregister(fd, key).is_ok() {
                if let Some(last) = self.failed_deregs.pop()
                    && let Some(here) = self.failed_deregs.get_mut(i)
                {
                    *here = last;
                }
            } else {
                i += 1;
            }
        }
    }

    /// Removes any watcher-table entry: takes it out of the kernel and, for
    /// a pid watcher, gives its pidfd back or updates the SIGCHLD count.
    fn remove_watcher(&mut self, key: Key) -> bool {
        let Some(w) = self.watchers.remove(key) else { return false };
        if w.registered {
            self.in_kernel -= 1;
            // The watcher is gone either way; a refused deregistration is
            // retried before later waits (and its events are stale by now).
            let k = key.to_u64();
            if self.backend.deregister(w.fd, k).is_err() {
                if self.failed_deregs.is_full() {
                    self.retry_deregistrations();
                }
                if self.failed_deregs.push((w.fd, k)).is_err() {
                    // W refused deregistrations outstanding and none would
                    // go now: the oldest is given up (documented limit).
                    let kept = self.failed_deregs.as_mut_slice();
                    for j in 1..kept.len() {
                        kept[j - 1] = kept[j];
                    }
                    if let Some(newest) = kept.last_mut() {
                        *newest = (w.fd, k);
                    }
                }
            }
        }
        #[cfg(feature = "children")]
        if let Handler::Pid { reap, .. } = w.callback {
            self.pid_watcher_removed(key, w.registered, reap);
        }
        true
    }
}

impl<C, const W: usize, const T: usize, B: Backend> Drop for Loop<C, W, T, B> {
    fn drop(&mut self) {
        // Pid watchers first (their pidfds leave the kernel before they
        // close), then each source gives its kernel objects back.
        #[cfg(feature = "children")]
        {
            for slot in 0..self.watchers.slot_count() {
                if let Some(key) = self.watchers.key_at(slot)
                    && self.watchers.get(key).is_some_and(|w| w.callback.is_pid())
                {
                    self.remove_watcher(key);
                }
            }
            self.children.close(&mut self.backend);
        }
        #[cfg(feature = "signals")]
        self.signals.close(&mut self.backend);
        #[cfg(feature = "waker")]
        self.waker.close(&mut self.backend);
    }
}
