//! Timers on the loop: after, at, every, rearm, set_interval (removal is
//! `Loop::remove`, as for every registration).
//!
//! Deadlines are absolute on the loop's clock. Relative delays count from
//! the loop's cached time, `now()`, as libev's do: scheduling never reads
//! the clock. Inside callbacks that is the time the pass began (right after
//! its wait); outside them, the time the last pass began (or the loop was
//! made), so a program that was busy outside the loop calls `update_now()`
//! first if the delay must count from the present. A timer scheduled while
//! callbacks run never fires in that pass (invariant 3), and one scheduled
//! there with a deadline in the past is due "now", after every timer already
//! due; outside a pass, past deadlines keep their order.

use super::{Loop, TimerFn};
use crate::backend::Backend;
use crate::error::Error;
use crate::table::{Key, TimerState};
use crate::time::{Instant, duration_ns};
use core::time::Duration;

/// Names one timer. Goes stale when the timer is removed or a one-shot
/// timer has fired; a stale id never touches a later timer in its slot.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct TimerId(pub(crate) Key);

/// What a timer callback is told.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TimerEvent {
    pub(crate) id: TimerId,
    pub(crate) data: u64,
}

impl TimerEvent {
    /// The timer that fired.
    pub fn id(&self) -> TimerId {
        self.id
    }
    /// The timer's user data.
    pub fn data(&self) -> u64 {
        self.data
    }
}

impl<C, const W: usize, const T: usize, B: Backend> Loop<C, W, T, B> {
    /// Runs `callback` once, `delay` after the loop's time [`now`](Self::now)
    /// (the cached time: no clock read; see [`update_now`](Self::update_now)),
    /// with `data` in its [`TimerEvent`]. `after(Duration::ZERO, ..)` fires
    /// on the next pass. `Capacity` when the timer table is full.
    #[inline(always)]
    pub fn after(&mut self, delay: Duration, data: u64, callback: TimerFn<Self>) -> Result<TimerId, Error> {
        let now = self.schedule_base()?;
        self.add_timer(now + delay, None, data, callback)
    }

    /// Runs `callback` once at `deadline` on the loop's clock. A deadline
    /// in the past fires on the next pass: in deadline order with other past
    /// deadlines scheduled outside a pass; scheduled from a callback, after
    /// every timer already due in that pass.
    pub fn at(&mut self, deadline: Instant, data: u64, callback: TimerFn<Self>) -> Result<TimerId, Error> {
        let deadline = if self.dispatching { deadline.max(self.now) } else { deadline };
        self.add_timer(deadline, None, data, callback)
    }

    /// Runs `callback` every `interval`, first `interval` from now. The
    /// phase is kept: a late pass does not shift later ticks, and ticks that
    /// were missed entirely are skipped rather than fired in a burst. An
    /// interval of zero fires on every pass (libvirt's frequency 0).
    pub fn every(&mut self, interval: Duration, data: u64, callback: TimerFn<Self>) -> Result<TimerId, Error> {
        let now = self.schedule_base()?;
        self.add_timer(now + interval, Some(duration_ns(interval)), data, callback)
    }

    /// Schedules a live timer to fire `delay` from now, keeping its id and
    /// its interval (a disabled timer is enabled again). Works from inside
    /// the timer's own callback, so a one-shot timer can re-arm itself.
    #[inline]
    pub fn rearm(&mut self, id: TimerId, delay: Duration) -> Result<(), Error> {
        let now = self.schedule_base()?;
        if self.timers.schedule(id.0, Some((now + delay).as_nanos())) { Ok(()) } else { Err(Error::NotFound) }
    }

    /// libvirt's `update_timeout`: `Some(d)` makes the timer repeat every `d`
    /// starting `d` from now (zero: every pass); `None` disables it without
    /// freeing its id (re-enable with `set_interval` or `rearm`).
    pub fn set_interval(&mut self, id: TimerId, interval: Option<Duration>) -> Result<(), Error> {
        self.timers.state(id.0).ok_or(Error::NotFound)?;
        match interval {
            Some(d) => {
                let now = self.schedule_base()?;
                self.timers.set_interval(id.0, Some(duration_ns(d)));
                self.timers.schedule(id.0, Some((now + d).as_nanos()));
            }
            None => {
                self.timers.schedule(id.0, None);
            }
        }
        Ok(())
    }

    /// Replaces a live timer's callback.
    pub fn set_timer_callback(&mut self, id: TimerId, callback: TimerFn<Self>) -> Result<(), Error> {
        let data = self.timers.callback(id.0).ok_or(Error::NotFound)?.1;
        if self.timers.set_callback(id.0, (callback, data)) { Ok(()) } else { Err(Error::NotFound) }
    }

    /// When a pending timer fires next; `None` if it is not pending.
    pub fn deadline(&self, id: TimerId) -> Option<Instant> {
        self.timers.deadline(id.0).map(Instant::from_nanos)
    }

    /// Whether the timer waits for a deadline (not disabled, not fired).
    pub fn is_pending(&self, id: TimerId) -> bool {
        self.timers.state(id.0) == Some(TimerState::Pending)
    }

    /// Number of allocated timers.
    pub fn timer_count(&self) -> usize {
        self.timers.len()
    }

    #[inline]
    fn add_timer(
        &mut self,
        deadline: Instant,
        interval: Option<u64>,
        data: u64,
        callback: TimerFn<Self>,
    ) -> Result<TimerId, Error> {
        self.timers.insert(Some(deadline.as_nanos()), interval, (callback, data)).map(TimerId)
    }

    /// The time relative delays count from: the loop's cached `now`.
    #[inline]
    fn schedule_base(&mut self) -> Result<Instant, Error> {
        Ok(self.now)
    }
}
