//! One pass of the loop, and `run`/`run_once` around it.
//!
//! A pass: one wait (until an fd, the earliest timer or a wake-up), one
//! clock read, then every I/O event of the batch in order, the wake-up
//! callback, and every timer that was due when the pass began.

use super::Loop;
use crate::backend::Backend;
use crate::error::Error;
use crate::interest::{Interest, Ready, Side};
use crate::table::{Key, Watcher};
use crate::time::Instant;
use core::time::Duration;

use super::timer::{TimerEvent, TimerId};
use super::watch::{WatchEvent, WatchId};
use super::{Handler, WatchFn};

impl<C, const W: usize, const T: usize, B: Backend> Loop<C, W, T, B> {
    /// Runs passes until [`stop`](Self::stop) is called, or until nothing is
    /// left that could ever wake the loop (no watcher, no pending timer, no
    /// waker). A `stop` made before `run` makes it return at once.
    pub fn run(&mut self, ctx: &mut C) -> Result<(), Error> {
        if self.dispatching {
            return Err(Error::Reentrant);
        }
        let result = loop {
            if self.stop_requested || !self.has_work() {
                break Ok(());
            }
            if let Err(e) = self.pass(ctx, None) {
                break Err(e);
            }
        };
        self.stop_requested = false;
        result
    }

    /// Runs one pass, waiting at most `timeout` (`None`: as long as it
    /// takes; `Some(Duration::ZERO)`: not at all). Returns how many
    /// callbacks ran.
    pub fn run_once(&mut self, ctx: &mut C, timeout: Option<Duration>) -> Result<usize, Error> {
        if self.dispatching {
            return Err(Error::Reentrant);
        }
        self.pass(ctx, timeout)
    }

    /// Whether anything could still wake the loop: a watcher the kernel
    /// holds, a pending timer, the waker, or the signalfd (disabled watchers
    /// and disabled timers cannot).
    fn has_work(&self) -> bool {
        #[cfg(feature = "waker")]
        if self.waker.is_open() {
            return true;
        }
        #[cfg(feature = "signals")]
        if self.signals.is_open() {
            return true;
        }
        self.in_kernel > 0 || self.timers.pending() > 0
    }

    fn pass(&mut self, ctx: &mut C, timeout: Option<Duration>) -> Result<usize, Error> {
        let guard = PassGuard(self);
        guard.0.running = true;
        guard.0.wait_and_dispatch(ctx, timeout)
    }

    fn wait_and_dispatch(&mut self, ctx: &mut C, timeout: Option<Duration>) -> Result<usize, Error> {
        if !self.failed_deregs.is_empty() {
            self.retry_deregistrations();
        }
        if !self.prepares.is_empty() {
            self.dispatching = true;
            self.run_phase(ctx, true);
            self.dispatching = false;
        }
        let mut deadline = self.timers.peek_deadline().map(Instant::from_nanos);
        if let Some(t) = timeout {
            let limit = if t.is_zero() { self.now } else { self.update_now()? + t };
            deadline = Some(deadline.map_or(limit, |d| d.min(limit)));
        }
        #[cfg(feature = "children")]
        if self.children.scan_owed {
            deadline = Some(self.now);
        }
        // A prepare callback (or an earlier callback of this `run_once`'s
        // caller) asked to stop: the pass still collects what is ready, but
        // does not sit in the kernel first.
        if self.stop_requested {
            deadline = Some(self.now);
        }
        #[cfg(feature = "waker")]
        {
            // (Polling the bell first is only worth it before a wait that
            // could block.)
            let could_block = deadline.is_none_or(|d| d > self.now);
            if self.waker.before_sleep(could_block) {
                deadline = Some(self.now);
            }
        }
        let batch = self.batch.min(W);
        let waited = self.backend.wait(&mut self.events[..batch], deadline);
        let n = match waited {
            // (A backend never reports more than it was given room for; the
            // bound also spares a second bounds check per event below.)
            Ok(n) => n.min(batch),
            Err(e) => {
                #[cfg(feature = "waker")]
                self.waker.wait_failed();
                return Err(e.into());
            }
        };
        self.now = self.backend.now()?;
        self.dispatching = true;
        // Timers scheduled from here on wait for the next pass.
        self.timers.begin_pass();
        #[cfg_attr(not(feature = "waker"), allow(unused_variables))]
        let (mut calls, doorbell) = self.dispatch_batch(ctx, n);
        #[cfg(feature = "waker")]
        if let Some((callback, event)) = self.waker.after_wake(&mut self.backend, doorbell) {
            callback(self, ctx, event);
            calls += 1;
        }
        #[cfg(feature = "children")]
        if self.children.scan_owed {
            calls += self.reap_children(ctx);
        }
        calls += self.fire_timers(ctx);
        if !self.checks.is_empty() {
            self.run_phase(ctx, false);
        }
        Ok(calls)
    }

    /// Dispatches the first `n` events of the buffer; returns how many
    /// callbacks ran and whether the doorbell was among the events.
    // Inlined: as a function of its own it saved 3 instructions per chain
    // event but cost 36 per signal (callgrind), the call's own cost landing
    // on every pass.
    #[inline(always)]
    fn dispatch_batch(&mut self, ctx: &mut C, n: usize) -> (usize, bool) {
        let mut calls = 0;
        #[cfg_attr(not(feature = "waker"), allow(unused_mut))]
        let mut doorbell = false;
        let mut i = 0;
        while i < n.min(W) {
            let ev = self.events[i];
            i += 1;
            let key = Key::from_u64(ev.key());
            if key.slot >= Key::FIRST_RESERVED {
                #[cfg(feature = "waker")]
                if key == Key::WAKER {
                    doorbell = true;
                }
                #[cfg(feature = "signals")]
                if key == Key::SIGNALS {
                    calls += self.dispatch_signals(ctx);
                }
                continue;
            }
            calls += self.dispatch_io(ctx, key, ev.ready());
        }
        (calls, doorbell)
    }

    /// Runs the callbacks of one event: the error side alone if the watcher
    /// asked for errors and there is one; else read, then write. Each side
    /// re-checks the watcher, so one removed or changed by an earlier
    /// callback (in this batch or this event) gets nothing more.
    // Inlined into the pass: it runs once per event, and the call was a
    // tenth of the loop's own instructions per event (callgrind). An event
    // that can only wake the read side (no writable, error or hang-up bit:
    // the common case) takes the short way, which keeps nothing alive
    // across the callback; the rest go through `dispatch_sides`.
    #[inline(always)]
    fn dispatch_io(&mut self, ctx: &mut C, key: Key, ready: Ready) -> usize {
        let Some(w) = self.watchers.get(key) else {
            // Stale key: removed or replaced watcher, or a closed-and-reused fd.
            return 0;
        };
        #[allow(clippy::infallible_destructuring_match)] // not without the children source
        let callback = match w.callback {
            Handler::Io(callback) => callback,
            #[cfg(feature = "children")]
            Handler::Pid { pid, reap, .. } => return self.pid_ready(ctx, key, pid, reap),
        };
        if ready.intersects(Ready::WRITABLE | Ready::ERROR | Ready::HANGUP) {
            return self.dispatch_sides(ctx, key, ready, *w, callback);
        }
        // Only the read side can wake (the error side needs an error).
        if !w.interest.contains(Interest::READ) || !wakes(Side::Read, ready, w.interest) {
            return 0;
        }
        let event = WatchEvent { id: WatchId(key), fd: w.fd, side: Side::Read, ready, data: w.data };
        callback(self, ctx, event);
        1
    }

    /// [`dispatch_io`](Self::dispatch_io) for an event that may wake the
    /// write or the error side.
    #[inline(never)]
    fn dispatch_sides(
        &mut self,
        ctx: &mut C,
        key: Key,
        ready: Ready,
        w: Watcher<Handler<Self>>,
        callback: WatchFn<Self>,
    ) -> usize {
        let event = |w: &Watcher<_>, side| WatchEvent { id: WatchId(key), fd: w.fd, side, ready, data: w.data };
        if ready.contains(Ready::ERROR) && w.interest.contains(Interest::ERROR) {
            callback(self, ctx, event(&w, Side::Error));
            return 1;
        }
        let mut calls = 0;
        let (mut w, mut callback) = (w, callback);
        if w.interest.contains(Interest::READ) && wakes(Side::Read, ready, w.interest) {
            callback(self, ctx, event(&w, Side::Read));
            calls += 1;
            // The callback may have removed, replaced or changed its watcher:
            // the write side sees the watcher as it is now, or nothing.
            match self.watchers.get(key) {
                Some(now @ Watcher { callback: Handler::Io(cb), .. }) => (w, callback) = (*now, *cb),
                #[allow(unreachable_patterns)] // only pid watchers besides `Io`
                _ => return calls,
            }
            // Asked for errors meanwhile: they go to the error side alone.
            if ready.contains(Ready::ERROR) && w.interest.contains(Interest::ERROR) {
                return calls;
            }
        }
        if w.interest.contains(Interest::WRITE) && wakes(Side::Write, ready, w.interest) {
            callback(self, ctx, event(&w, Side::Write));
            calls += 1;
        }
        calls
    }

    /// Fires, in deadline order, every timer that was due and scheduled
    /// before this pass began. A repeating timer is rescheduled before its
    /// callback runs, so the callback can cancel or change it.
    fn fire_timers(&mut self, ctx: &mut C) -> usize {
        let now = self.now.as_nanos();
        let mut calls = 0;
        while let Some(due) = self.timers.pop_due(now) {
            if let Some(interval) = due.interval {
                self.timers.schedule(due.key, Some(next_tick(due.deadline, interval, now)));
            }
            self.firing = Some(due.key);
            let (callback, data) = due.callback;
            callback(self, ctx, TimerEvent { id: TimerId(due.key), data });
            self.firing = None;
            calls += 1;
            self.timers.finish(due.key);
        }
        calls
    }
}

/// Ends a pass however it ends, a callback's panic unwinding through it
/// included: the loop stays usable (not running, not dispatching) and a
/// one-shot timer whose callback panicked is freed.
struct PassGuard<'a, C, const W: usize, const T: usize, B: Backend>(&'a mut Loop<C, W, T, B>);

impl<C, const W: usize, const T: usize, B: Backend> Drop for PassGuard<'_, C, W, T, B> {
    fn drop(&mut self) {
        let lp = &mut *self.0;
        lp.running = false;
        lp.dispatching = false;
        if let Some(key) = lp.firing.take() {
            lp.timers.finish(key);
        }
    }
}

/// Whether `ready` concerns `side` of a watcher with `interest`. An error
/// wakes both sides (without error interest); a hang-up wakes the read side,
/// or the write side of a write-only watcher, which would otherwise never
/// hear of it while the kernel keeps reporting it.
fn wakes(side: Side, ready: Ready, interest: Interest) -> bool {
    match side {
        Side::Read => {
            ready.intersects(Ready::READABLE | Ready::HANGUP | Ready::READ_HANGUP | Ready::ERROR | Ready::PRIORITY)
        }
        Side::Write => {
            let hangup_here = !interest.contains(Interest::READ) && ready.contains(Ready::HANGUP);
            hangup_here || ready.intersects(Ready::WRITABLE | Ready::ERROR)
        }
        Side::Error => ready.contains(Ready::ERROR),
    }
}

/// The first tick of a repeating timer after `now`, on the grid of
/// `deadline + k * interval`. Interval zero means "next pass".
fn next_tick(deadline: u64, interval: u64, now: u64) -> u64 {
    if interval == 0 {
        return now;
    }
    let next = deadline.saturating_add(interval);
    if next > now {
        return next;
    }
    let missed = (now - deadline) / interval + 1;
    deadline.saturating_add(missed.saturating_mul(interval))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_tick_keeps_the_phase() {
        assert_eq!(next_tick(100, 10, 100), 110);
        assert_eq!(next_tick(100, 10, 105), 110);
        assert_eq!(next_tick(100, 10, 110), 120);
        assert_eq!(next_tick(100, 10, 137), 140);
        assert_eq!(next_tick(100, 0, 137), 137);
        assert_eq!(next_tick(u64::MAX - 5, 10, u64::MAX - 5), u64::MAX);
    }

    #[test]
    fn hangup_reaches_a_write_only_watcher() {
        assert!(wakes(Side::Write, Ready::HANGUP, Interest::WRITE));
        assert!(!wakes(Side::Write, Ready::HANGUP, Interest::READ | Interest::WRITE));
        assert!(wakes(Side::Read, Ready::HANGUP, Interest::READ | Interest::WRITE));
        assert!(wakes(Side::Write, Ready::ERROR, Interest::WRITE));
    }
}
