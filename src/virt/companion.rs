//! `Virt`: the loop's side of the contract. It turns the table into loop
//! registrations (one watcher per fd, one timer per timeout slot) in a
//! prepare callback, dispatches kernel events and expiries to the table's
//! callbacks one at a time, and runs free callbacks in a check callback.
//!
//! It reaches the loop through its public API only, and never runs a user
//! callback while it borrows itself or holds the table's lock.

use super::events::*;
use super::table::{FdWant, LoopThread, VirtTable};
use crate::backend::Backend;
use crate::error::Error;
use crate::event_loop::{
    CheckId, Loop, LoopTypes, PhaseEvent, PhaseFn, PrepareId, TimerEvent, TimerFn, TimerId, WatchEvent, WatchFn,
    WatchId,
};
use crate::interest::{Interest, Ready};
use crate::sys::{Errno, RawFd};
use core::time::Duration;

/// The loop's view of one fd slot of the table.
#[derive(Copy, Clone, Debug)]
struct FdState {
    watch: Option<WatchId>,
    fd: RawFd,
    interest: Interest,
    /// What to report on every pass instead of kernel events, when the fd
    /// could not be watched (empty: none): `ERROR`, or for a file epoll
    /// refuses (a regular file) the asked-for sides, as poll(2) does.
    fault: HandleEvents,
    /// The pass that last dispatched this fd: the loop calls a watcher once
    /// per side, the contract once per event.
    pass: u32,
}

impl FdState {
    const EMPTY: FdState =
        FdState { watch: None, fd: -1, interest: Interest::empty(), fault: HandleEvents::empty(), pass: 0 };
}

/// The loop timer of one timeout slot, and the timeout it is armed for.
#[derive(Copy, Clone, Debug)]
struct TimerState {
    timer: Option<TimerId>,
    armed_for: Option<TimeoutId>,
}

/// The libvirt event contract as a companion of the loop: owned by the
/// loop's context (reached through `AsMut<Virt<..>>`), plugged in with
/// [`attach`](Self::attach), sharing its [`VirtTable`] with other threads.
///
/// Its six methods are the table's without the wake-up: call them on the
/// loop's thread (inside callbacks, or before `run`); other threads call
/// the table's. Capacities: `H` handles (and fds), `T` timeouts; the loop
/// must have room for `T + 1` more timers (taken at attach) and for a
/// watcher per fd with handles. See the [module](super) for an example.
pub struct Virt<L: LoopTypes + 'static, const H: usize = 64, const T: usize = 64> {
    table: &'static VirtTable<L, H, T>,
    fds: [FdState; H],
    timers: [TimerState; T],
    /// Fds with a fault, and the timer that reports them on every pass.
    faults: usize,
    fault_timer: Option<TimerId>,
    prepare: Option<PrepareId>,
    check: Option<CheckId>,
    pass: u32,
}

impl<L: LoopTypes + 'static, const H: usize, const T: usize> Virt<L, H, T> {
    /// A companion over `table`, not yet attached to a loop.
    pub const fn new(table: &'static VirtTable<L, H, T>) -> Self {
        Virt {
            table,
            fds: [FdState::EMPTY; H],
            timers: [TimerState { timer: None, armed_for: None }; T],
            faults: 0,
            fault_timer: None,
            prepare: None,
            check: None,
            pass: 0,
        }
    }

    /// The shared table (hand `&'static` copies of it to other threads).
    pub fn table(&self) -> &'static VirtTable<L, H, T> {
        self.table
    }

    /// Whether it is attached to a loop.
    pub fn is_attached(&self) -> bool {
        self.prepare.is_some()
    }

    fn local(&self) -> LoopThread<'static, L, H, T> {
        self.table.loop_thread()
    }

    /// [`VirtTable::add_handle`], on the loop's thread.
    pub fn add_handle(
        &mut self,
        fd: RawFd,
        events: HandleEvents,
        data: u64,
        callback: HandleFn<L>,
        free: Option<FreeFn<L>>,
    ) -> Result<HandleId, Error> {
        self.local().add_handle(fd, events, data, callback, free)
    }

    /// [`VirtTable::update_handle`], on the loop's thread.
    pub fn update_handle(&mut self, id: HandleId, events: HandleEvents) -> Result<(), Error> {
        self.local().update_handle(id, events)
    }

    /// [`VirtTable::remove_handle`], on the loop's thread.
    pub fn remove_handle(&mut self, id: HandleId) -> Result<(), Error> {
        self.local().remove_handle(id)
    }

    /// [`VirtTable::add_timeout`], on the loop's thread.
    pub fn add_timeout(
        &mut self,
        ms: i32,
        data: u64,
        callback: TimeoutFn<L>,
        free: Option<FreeFn<L>>,
    ) -> Result<TimeoutId, Error> {
        self.local().add_timeout(ms, data, callback, free)
    }

    /// [`VirtTable::update_timeout`], on the loop's thread.
    pub fn update_timeout(&mut self, id: TimeoutId, ms: i32) -> Result<(), Error> {
        self.local().update_timeout(id, ms)
    }

    /// [`VirtTable::remove_timeout`], on the loop's thread.
    pub fn remove_timeout(&mut self, id: TimeoutId) -> Result<(), Error> {
        self.local().remove_timeout(id)
    }
}

impl<C: 'static, const W: usize, const TT: usize, B: Backend + 'static, const H: usize, const T: usize>
    Virt<Loop<C, W, TT, B>, H, T>
where
    C: AsMut<Self>,
{
    /// Plugs into `lp`: takes its waker (for other threads' calls), `T + 1`
    /// timers (one per timeout slot, one to report fds that cannot be
    /// watched), a prepare and a check callback. Handles and timeouts
    /// already in the table are registered at the first pass.
    ///
    /// `AlreadyWatched` if this companion or its table is attached already;
    /// `Capacity` if the loop lacks room (nothing is kept then).
    pub fn attach(&mut self, lp: &mut Loop<C, W, TT, B>) -> Result<(), Error> {
        if self.is_attached() {
            return Err(Error::AlreadyWatched);
        }
        let waker = lp.waker()?;
        if let Err(e) = self.register(lp) {
            self.unregister(lp);
            return Err(e);
        }
        if let Err(e) = self.table.attach(waker) {
            self.unregister(lp);
            return Err(e);
        }
        Ok(())
    }

    fn register(&mut self, lp: &mut Loop<C, W, TT, B>) -> Result<(), Error> {
        for (slot, state) in self.timers.iter_mut().enumerate() {
            let timer = lp.every(Duration::ZERO, slot as u64, Self::on_timeout as TimerFn<_>)?;
            state.timer = Some(timer);
            lp.set_interval(timer, None)?;
        }
        let fault = lp.every(Duration::ZERO, 0, Self::on_fault as TimerFn<_>)?;
        self.fault_timer = Some(fault);
        lp.set_interval(fault, None)?;
        self.prepare = Some(lp.prepare(0, Self::on_prepare as PhaseFn<_>)?);
        self.check = Some(lp.check(0, Self::on_check as PhaseFn<_>)?);
        Ok(())
    }

    /// Removes every loop registration it made.
    fn unregister(&mut self, lp: &mut Loop<C, W, TT, B>) {
        for state in self.timers.iter_mut() {
            if let Some(t) = state.timer.take() {
                lp.remove(t);
            }
            state.armed_for = None;
        }
        if let Some(t) = self.fault_timer.take() {
            lp.remove(t);
        }
        for st in self.fds.iter_mut() {
            if let Some(w) = st.watch.take() {
                lp.remove(w);
            }
            *st = FdState::EMPTY;
        }
        self.faults = 0;
        if let Some(p) = self.prepare.take() {
            lp.remove(p);
        }
        if let Some(c) = self.check.take() {
            lp.remove(c);
        }
    }

    /// Unplugs from `lp`: removes every loop registration, runs the free
    /// callbacks that are due, and lets the table go (later calls change
    /// the table only; live handles and timeouts stay in it, and a later
    /// `attach` registers them again). To end everything, call
    /// [`VirtTable::remove_all`] first.
    pub fn detach(lp: &mut Loop<C, W, TT, B>, ctx: &mut C) {
        let v = ctx.as_mut();
        let table = v.table;
        if v.is_attached() {
            table.detach();
            v.unregister(lp);
        }
        while let Some((free, ev)) = table.take_retired() {
            free(lp, ctx, ev);
        }
    }

    /// Before the wait: applies the table's changes to the loop's watchers
    /// and timers (no user code runs here).
    fn on_prepare(lp: &mut Loop<C, W, TT, B>, ctx: &mut C, _ev: PhaseEvent) {
        let v = ctx.as_mut();
        // Never 0 (what an fd slot that never dispatched holds), even after
        // 2^32 passes.
        v.pass = v.pass.wrapping_add(1).max(1);
        if v.table.take_changed() {
            v.sync(lp);
        }
    }

    fn sync(&mut self, lp: &mut Loop<C, W, TT, B>) {
        // Bounded, so another thread changing the table without pause
        // cannot hold the loop here; what is left waits for the next pass
        // (that thread's wake-up keeps the wait from blocking).
        let mut budget = 2 * (H + T);
        while budget > 0 {
            let Some((slot, want)) = self.table.next_dirty_fd() else { break };
            self.sync_fd(lp, usize::from(slot), want);
            budget -= 1;
        }
        // Timeouts count from now: read the clock once for all of them.
        let mut clock_read = false;
        while budget > 0 {
            let Some((slot, live)) = self.table.next_dirty_timeout() else { break };
            if !clock_read {
                let _ = lp.update_now();
                clock_read = true;
            }
            self.sync_timeout(lp, usize::from(slot), live);
            budget -= 1;
        }
        if budget == 0 {
            self.table.mark_changed();
        }
    }

    fn sync_fd(&mut self, lp: &mut Loop<C, W, TT, B>, slot: usize, want: Option<FdWant>) {
        let Some(st) = self.fds.get(slot).copied() else { return };
        let desired = want.and_then(|w| Some((w.fd, interest_of(w.events)?)));
        let fresh = want.is_some_and(|w| w.fresh);
        let mut next = FdState { fault: HandleEvents::empty(), ..st };
        match (st.watch, desired) {
            (Some(w), Some((fd, interest))) if st.fd == fd && lp.is_live(w) => {
                // A new handle may be about a new file under the same number:
                // `modify` reaches the kernel (epoll's `ENOENT` becomes an add).
                if interest != st.interest || fresh {
                    match lp.modify(w, interest) {
                        Ok(()) => next.interest = interest,
                        Err(e) => {
                            lp.remove(w);
                            next.watch = None;
                            next.fault = fault_of(e, interest);
                        }
                    }
                }
            }
            (current, desired) => {
                if let Some(w) = current {
                    lp.remove(w);
                }
                next = FdState::EMPTY;
                if let Some((fd, interest)) = desired {
                    next.fd = fd;
                    next.interest = interest;
                    // A watcher of ours on this fd belongs to a slot the fd
                    // left (its last handle went; the slot is queued too):
                    // take it over. Anyone else's is never replaced.
                    if let Some(theirs) = lp.watcher_of(fd)
                        && let Some(other) = self.fds.iter().position(|o| o.watch == Some(theirs))
                    {
                        lp.remove(theirs);
                        if !self.fds[other].fault.is_empty() {
                            self.faults -= 1;
                        }
                        self.fds[other] = FdState::EMPTY;
                    }
                    if lp.watcher_of(fd).is_some() {
                        next.fault = HandleEvents::ERROR;
                    } else {
                        match lp.watch(fd, interest, slot as u64, Self::on_ready as WatchFn<_>) {
                            Ok(w) => next.watch = Some(w),
                            Err(e) => next.fault = fault_of(e, interest),
                        }
                    }
                }
            }
        }
        next.pass = st.pass;
        let (was, now) = (!st.fault.is_empty(), !next.fault.is_empty());
        self.fds[slot] = next;
        if was && !now {
            self.faults -= 1;
        } else if now && !was {
            self.faults += 1;
            if let Some(t) = self.fault_timer {
                let _ = lp.set_interval(t, Some(Duration::ZERO));
            }
        }
    }

    fn sync_timeout(&mut self, lp: &mut Loop<C, W, TT, B>, slot: usize, live: Option<(TimeoutId, i32)>) {
        let Some(state) = self.timers.get_mut(slot) else { return };
        let Some(timer) = state.timer else { return };
        state.armed_for = live.map(|(id, _)| id);
        let interval = live.and_then(|(_, ms)| u64::try_from(ms).ok()).map(Duration::from_millis);
        // The timer is the companion's own, taken at attach: this cannot
        // fail while it is attached.
        let _ = lp.set_interval(timer, interval);
    }

    /// A kernel event on a watched fd: every matching handle, one at a time.
    fn on_ready(lp: &mut Loop<C, W, TT, B>, ctx: &mut C, ev: WatchEvent) {
        let v = ctx.as_mut();
        let slot = ev.data() as usize;
        let pass = v.pass;
        let Some(st) = v.fds.get_mut(slot) else { return };
        if st.watch != Some(ev.id()) || st.pass == pass {
            // Stale, or the second side of an event already dispatched.
            return;
        }
        st.pass = pass;
        let table = v.table;
        Self::deliver(lp, ctx, table, slot as u16, events_of(ev.ready()));
    }

    /// Runs the callback of every armed handle of fd slot `slot` that
    /// `ready` concerns, in id order, asking the table afresh before each
    /// (an earlier callback may have removed or changed any of them).
    fn deliver(
        lp: &mut Loop<C, W, TT, B>,
        ctx: &mut C,
        table: &VirtTable<Loop<C, W, TT, B>, H, T>,
        slot: u16,
        ready: HandleEvents,
    ) {
        let mut after = 0;
        while let Some(d) = table.next_delivery(slot, ready, after) {
            after = d.event.id().get();
            (d.callback)(lp, ctx, d.event);
            if !d.more {
                return;
            }
        }
    }

    /// A timeout's loop timer expired: re-armed from now, then its callback.
    fn on_timeout(lp: &mut Loop<C, W, TT, B>, ctx: &mut C, ev: TimerEvent) {
        let v = ctx.as_mut();
        let slot = ev.data() as usize;
        let Some(&TimerState { timer: Some(timer), armed_for: Some(id) }) = v.timers.get(slot) else { return };
        if timer != ev.id() {
            return;
        }
        match v.table.timeout_delivery(slot as u16, id) {
            Some((callback, event, ms)) => {
                // libvirt's interval counts from when the timeout fired.
                let _ = lp.rearm(timer, Duration::from_millis(ms as u64));
                callback(lp, ctx, event);
            }
            // Removed or disabled since it was armed (its slot is queued:
            // the next prepare re-arms it as the table says).
            None => {
                let _ = lp.set_interval(timer, None);
            }
        }
    }

    /// Once per pass while fds cannot be watched: report their fault.
    fn on_fault(lp: &mut Loop<C, W, TT, B>, ctx: &mut C, ev: TimerEvent) {
        let v = ctx.as_mut();
        if v.fault_timer != Some(ev.id()) {
            return;
        }
        if v.faults == 0 {
            let _ = lp.set_interval(ev.id(), None);
            return;
        }
        let table = v.table;
        for slot in 0..H {
            let fault = ctx.as_mut().fds[slot].fault;
            if !fault.is_empty() {
                Self::deliver(lp, ctx, table, slot as u16, fault);
            }
        }
    }

    /// After dispatch: the free callbacks of removed registrations.
    fn on_check(lp: &mut Loop<C, W, TT, B>, ctx: &mut C, _ev: PhaseEvent) {
        let table = ctx.as_mut().table;
        if !table.take_retired_mark() {
            return;
        }
        while let Some((free, ev)) = table.take_retired() {
            free(lp, ctx, ev);
        }
    }
}

/// The loop interest for a union of handle events; `None` when the kernel
/// need not be asked (no readable or writable side).
fn interest_of(events: HandleEvents) -> Option<Interest> {
    let mut i = Interest::empty();
    if events.contains(HandleEvents::READABLE) {
        i |= Interest::READ;
    }
    if events.contains(HandleEvents::WRITABLE) {
        i |= Interest::WRITE;
    }
    (!i.is_empty()).then_some(i)
}

/// What the kernel reported, in the contract's terms (poll(2)'s: urgent
/// data and a half-close are readable).
fn events_of(ready: Ready) -> HandleEvents {
    let mut e = HandleEvents::empty();
    if ready.intersects(Ready::READABLE | Ready::PRIORITY | Ready::READ_HANGUP) {
        e |= HandleEvents::READABLE;
    }
    if ready.contains(Ready::WRITABLE) {
        e |= HandleEvents::WRITABLE;
    }
    if ready.contains(Ready::ERROR) {
        e |= HandleEvents::ERROR;
    }
    if ready.contains(Ready::HANGUP) {
        e |= HandleEvents::HANGUP;
    }
    e
}

/// What to report for an fd the loop could not watch: a file epoll refuses
/// (`EPERM`: regular files, directories) is always ready for what it asked,
/// as poll(2) says; anything else (a closed fd, a full table) is an error,
/// as poll(2)'s `POLLNVAL`.
fn fault_of(e: Error, interest: Interest) -> HandleEvents {
    match e {
        Error::Os(Errno::EPERM) => {
            let mut f = HandleEvents::empty();
            if interest.contains(Interest::READ) {
                f |= HandleEvents::READABLE;
            }
            if interest.contains(Interest::WRITE) {
                f |= HandleEvents::WRITABLE;
            }
            f
        }
        _ => HandleEvents::ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_readiness_maps_as_poll_does() {
        assert_eq!(events_of(Ready::READ_HANGUP), HandleEvents::READABLE);
        assert_eq!(events_of(Ready::PRIORITY | Ready::WRITABLE), HandleEvents::READABLE | HandleEvents::WRITABLE);
        assert_eq!(events_of(Ready::ERROR | Ready::HANGUP), HandleEvents::ERROR | HandleEvents::HANGUP);
        assert_eq!(interest_of(HandleEvents::ERROR | HandleEvents::HANGUP), None);
        assert_eq!(interest_of(HandleEvents::all()), Some(Interest::READ | Interest::WRITE));
        assert_eq!(fault_of(Error::Os(Errno::EPERM), Interest::READ), HandleEvents::READABLE);
        assert_eq!(fault_of(Error::Os(Errno::EBADF), Interest::READ), HandleEvents::ERROR);
        assert_eq!(fault_of(Error::Capacity, Interest::WRITE), HandleEvents::ERROR);
    }
}
