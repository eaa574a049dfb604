//! The whole `Loop` on the `Sim` backend, against a plain model.
//!
//! The input is a driver script (make fds ready, move the clock, close fds
//! behind the loop's back, inject faults, run passes, act on the loop from
//! outside) and a queue of reactions: each callback takes the next reaction
//! and performs its actions (watch, unwatch, modify, add and cancel timers,
//! stop) from inside dispatch, on itself or on anything else.
//!
//! Checked (DESIGN.md, "Invariants"):
//! - no callback for a removed or replaced watcher (1), whatever callbacks
//!   did earlier in the batch (2);
//! - a timer scheduled during a pass never fires in that pass, timers fire
//!   in deadline order with FIFO ties, and every timer due when a pass began
//!   fires in it (3);
//! - cancel returns liveness and stale ids touch nothing (4);
//! - a full table is `Capacity` exactly when the model is full (5);
//! - no panic; injected backend errors come back unchanged and change
//!   nothing (6);
//! - a quiet pass delivers every level-triggered readiness; the backend's
//!   registrations match the watchers.

#![no_main]

use arbitrary::Arbitrary;
use core::time::Duration;
use libfuzzer_sys::fuzz_target;
use linux_event::backend::Sim;
use linux_event::{
    Errno, Error, Instant, Interest, IoEvent, Loop, Ready, Side, TimerId, Trigger, WatchId, WatchOptions,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

const W: usize = 8;
const T: usize = 8;
/// Fd numbers used: more than W, so the watcher table fills.
const FDS: u8 = 12;
const MAX_OPS: usize = 256;
const MAX_REACTIONS: usize = 256;
/// Callbacks one `Run` may make before a callback calls `stop`.
const RUN_BUDGET: u32 = 64;

type Lp = Loop<Ctx, W, T, Sim<16>>;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Action {
    Watch {
        fd: u8,
        interest: u8,
        trigger: u8,
        alt: bool,
    },
    Unwatch {
        fd: u8,
    },
    /// Ids are picked from every id ever handed out, live or stale.
    UnwatchId {
        which: u8,
    },
    Modify {
        which: u8,
        interest: u8,
    },
    SetTrigger {
        which: u8,
        trigger: u8,
    },
    Enable {
        which: u8,
        sides: u8,
    },
    Disable {
        which: u8,
        sides: u8,
    },
    SetWatchCallback {
        which: u8,
        alt: bool,
    },
    After {
        delay: u16,
        alt: bool,
    },
    At {
        at: u16,
        alt: bool,
    },
    Every {
        interval: u16,
        alt: bool,
    },
    Cancel {
        which: u8,
    },
    Rearm {
        which: u8,
        delay: u16,
    },
    SetInterval {
        which: u8,
        interval: Option<u16>,
    },
    SetTimerCallback {
        which: u8,
        alt: bool,
    },
    Stop,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Act(Action),
    SetReady {
        fd: u8,
        ready: u8,
    },
    ClearReady {
        fd: u8,
        ready: u8,
    },
    Advance {
        ms: u16,
    },
    /// `close(fd)` behind the loop's back (the number may come back).
    Close {
        fd: u8,
    },
    FailCtl {
        errno: u8,
    },
    FailDeregister {
        errno: u8,
    },
    FailWait {
        errno: u8,
    },
    /// `run_once` with a timeout in ms (`None`: until something happens).
    RunOnce {
        timeout: Option<u8>,
    },
    /// `run` until a callback stops it or the script runs dry.
    Run,
}

#[derive(Arbitrary, Debug)]
struct Input {
    ops: Vec<Op>,
    /// One entry per callback invocation, in order; missing ones do nothing.
    reactions: Vec<Vec<Action>>,
}

const ERRNOS: [Errno; 6] = [Errno::ENOMEM, Errno::EPERM, Errno::EBADF, Errno::EINVAL, Errno::ENOSPC, Errno::EIO];

fn errno(i: u8) -> Errno {
    ERRNOS[usize::from(i) % ERRNOS.len()]
}

fn duration(ms: u16) -> Duration {
    // The extreme stands for "never", to exercise saturation.
    if ms == u16::MAX { Duration::MAX } else { Duration::from_millis(u64::from(ms)) }
}

/// Bit i of `bits` stands for the i-th flag (independent of how the
/// library encodes the flags).
fn ready_of(bits: u8) -> Ready {
    const ALL: [Ready; 6] =
        [Ready::READABLE, Ready::WRITABLE, Ready::ERROR, Ready::HANGUP, Ready::READ_HANGUP, Ready::PRIORITY];
    ALL.iter().enumerate().filter(|(i, _)| bits & (1 << i) != 0).fold(Ready::empty(), |acc, (_, r)| acc | *r)
}

fn interest_of(bits: u8) -> Interest {
    const ALL: [Interest; 3] = [Interest::READ, Interest::WRITE, Interest::ERROR];
    ALL.iter().enumerate().filter(|(i, _)| bits & (1 << i) != 0).fold(Interest::empty(), |acc, (_, r)| acc | *r)
}

fn trigger(t: u8) -> Trigger {
    [Trigger::Level, Trigger::Edge, Trigger::Oneshot][usize::from(t) % 3]
}

fn kernel(interest: Interest) -> Interest {
    interest & (Interest::READ | Interest::WRITE)
}

/// What the Sim (as epoll) reports for a registration with `interest`.
fn reportable(interest: Interest) -> Ready {
    let mut mask = Ready::ERROR | Ready::HANGUP;
    if interest.contains(Interest::READ) {
        mask |= Ready::READABLE | Ready::READ_HANGUP | Ready::PRIORITY;
    }
    if interest.contains(Interest::WRITE) {
        mask |= Ready::WRITABLE;
    }
    mask
}

/// The sides a report of `ready` reaches, as DESIGN.md says: the error side
/// alone when asked for, else read then write; a hang-up wakes the read
/// side, or the write side of a write-only watcher.
fn sides(ready: Ready, interest: Interest) -> Vec<Side> {
    if ready.contains(Ready::ERROR) && interest.contains(Interest::ERROR) {
        return vec![Side::Error];
    }
    let mut out = Vec::new();
    let read = Ready::READABLE | Ready::HANGUP | Ready::READ_HANGUP | Ready::ERROR | Ready::PRIORITY;
    if interest.contains(Interest::READ) && ready.intersects(read) {
        out.push(Side::Read);
    }
    let hangup_here = !interest.contains(Interest::READ) && ready.contains(Ready::HANGUP);
    if interest.contains(Interest::WRITE) && (hangup_here || ready.intersects(Ready::WRITABLE | Ready::ERROR)) {
        out.push(Side::Write);
    }
    out
}

/// The loop's phase rule for repeating timers (see `Loop::every`).
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

#[derive(Debug, Clone, Copy)]
struct MWatch {
    id: WatchId,
    serial: u64,
    interest: Interest,
    trigger: Trigger,
    alt: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MState {
    Pending { deadline: u64, seq: u64 },
    Disabled,
    Firing,
}

#[derive(Debug, Clone, Copy)]
struct MTimer {
    state: MState,
    interval: Option<u64>,
    alt: bool,
}

/// One pass as the callbacks saw it.
#[derive(Debug, Clone, Copy)]
struct Pass {
    waits: u64,
    now: Instant,
    /// Timers scheduled at or after this seq wait for the next pass.
    limit: u64,
}

#[derive(Default)]
struct Ctx {
    watchers: BTreeMap<i32, MWatch>,
    watch_ids: Vec<WatchId>,
    timers: BTreeMap<u64, MTimer>,
    /// Every timer id handed out, with its serial.
    timer_ids: Vec<(TimerId, u64)>,
    serial: u64,
    seq: u64,
    /// Fds closed behind the loop: the Sim holds no registration for them
    /// until the loop registers them again.
    closed: BTreeSet<i32>,
    fail_ctl: Option<Errno>,
    fail_deregister: Option<Errno>,
    reactions: VecDeque<Vec<Action>>,
    in_callback: bool,
    pass: Option<Pass>,
    /// Actions run by I/O callbacks in this pass.
    io_actions: usize,
    /// (serial, side, trigger) of every I/O callback in this pass.
    io_calls: Vec<(u64, Side, Trigger)>,
    budget: Option<u32>,
}

impl Ctx {
    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq - 1
    }

    fn pick_watch(&self, i: u8) -> Option<WatchId> {
        if self.watch_ids.is_empty() { None } else { Some(self.watch_ids[usize::from(i) % self.watch_ids.len()]) }
    }

    fn pick_timer(&self, i: u8) -> Option<(TimerId, u64)> {
        if self.timer_ids.is_empty() { None } else { Some(self.timer_ids[usize::from(i) % self.timer_ids.len()]) }
    }

    fn live_watch(&self, id: WatchId) -> Option<(i32, MWatch)> {
        self.watchers.iter().find(|(_, w)| w.id == id).map(|(fd, w)| (*fd, *w))
    }

    /// The time delays count from: the pass's `now` inside callbacks, the
    /// clock outside.
    fn base(&self, lp: &Lp) -> Instant {
        if self.in_callback { lp.now() } else { lp.backend().clock() }
    }

    /// The fault the next backend call of this kind meets, consumed.
    /// `ctl`: register or modify; otherwise deregister.
    fn fault(&mut self, registered: bool, interest: Interest) -> Option<Errno> {
        let wanted = !kernel(interest).is_empty();
        match (registered, wanted) {
            (_, true) => self.fail_ctl.take(),
            (true, false) => self.fail_deregister.take(),
            (false, false) => None,
        }
    }

    /// Notices a new pass (by the Sim's wait count) and checks the last one.
    fn observe(&mut self, lp: &Lp) {
        let waits = lp.backend().waits();
        if self.pass.is_some_and(|p| p.waits == waits) {
            return;
        }
        if let Some(p) = self.pass.take() {
            self.finish_pass(p);
        }
        self.pass = Some(Pass { waits, now: lp.now(), limit: self.seq });
        self.io_calls.clear();
    }

    /// Every timer that was due when the pass began has fired.
    fn finish_pass(&self, p: Pass) {
        for (serial, t) in &self.timers {
            if let MState::Pending { deadline, seq } = t.state {
                assert!(
                    deadline > p.now.as_nanos() || seq >= p.limit,
                    "timer {serial} due at {deadline} (seq {seq}) did not fire in the pass at {:?} (limit {})",
                    p.now,
                    p.limit
                );
            }
        }
    }

    fn callback_budget(&mut self, lp: &mut Lp) {
        if let Some(b) = &mut self.budget {
            *b = b.saturating_sub(1);
            if *b == 0 {
                lp.stop();
            }
        }
    }
}

fn on_io(lp: &mut Lp, ctx: &mut Ctx, ev: IoEvent) {
    io(lp, ctx, ev, false);
}

fn on_io_alt(lp: &mut Lp, ctx: &mut Ctx, ev: IoEvent) {
    io(lp, ctx, ev, true);
}

fn io(lp: &mut Lp, ctx: &mut Ctx, ev: IoEvent, alt: bool) {
    ctx.observe(lp);
    let w = ctx.watchers.get(&ev.fd()).copied();
    let w = w.unwrap_or_else(|| panic!("callback for fd {} that has no watcher: {ev:?}", ev.fd()));
    assert_eq!(w.serial, ev.data(), "callback for a removed or replaced watcher: {ev:?}");
    assert_eq!(w.id, ev.id(), "event id is not the live watcher's");
    assert_eq!(w.alt, alt, "wrong callback");
    assert!(w.interest.contains(ev.side().interest()), "side {:?} not in interest {:?}", ev.side(), w.interest);
    // The first side of an event follows the routing rules exactly. A later
    // side of the same event, after the earlier callback toggled
    // `Interest::ERROR`, may still follow the routing of the interest the
    // event was dispatched with (the loop picks the sides once per event).
    let same_event = ctx.io_calls.last().is_some_and(|c| c.0 == w.serial);
    let routed = sides(ev.ready(), w.interest).contains(&ev.side())
        || (same_event && sides(ev.ready(), w.interest ^ Interest::ERROR).contains(&ev.side()));
    assert!(routed, "side {:?} for {:?} with interest {:?}", ev.side(), ev.ready(), w.interest);
    assert!(!ctx.io_calls.iter().any(|c| (c.0, c.1) == (w.serial, ev.side())), "side called twice in one pass");
    ctx.io_calls.push((w.serial, ev.side(), w.trigger));
    ctx.callback_budget(lp);
    if let Some(actions) = ctx.reactions.pop_front() {
        ctx.io_actions += actions.len();
        for a in actions {
            act(lp, ctx, a);
        }
    }
}

fn on_timer(lp: &mut Lp, ctx: &mut Ctx, id: TimerId) {
    timer(lp, ctx, id, false);
}

fn on_timer_alt(lp: &mut Lp, ctx: &mut Ctx, id: TimerId) {
    timer(lp, ctx, id, true);
}

fn timer(lp: &mut Lp, ctx: &mut Ctx, id: TimerId, alt: bool) {
    ctx.observe(lp);
    let pass = ctx.pass.expect("observed");
    let serial = ctx.timer_ids.iter().find(|(t, _)| *t == id).map(|(_, s)| *s).expect("unknown timer id");
    let t = *ctx.timers.get(&serial).unwrap_or_else(|| panic!("callback of dead timer {serial}"));
    assert_eq!(t.alt, alt, "wrong timer callback");
    let MState::Pending { deadline, seq } = t.state else { panic!("timer {serial} fired while {:?}", t.state) };
    let now = lp.now().as_nanos();
    assert!(deadline <= now, "timer {serial} fired at {now}, before its deadline {deadline}");
    assert!(seq < pass.limit, "timer {serial} fired in the pass that scheduled it");
    // It is the earliest of those that may fire, FIFO among equals.
    let first = ctx
        .timers
        .iter()
        .filter_map(|(s, t)| match t.state {
            MState::Pending { deadline, seq } if deadline <= now && seq < pass.limit => Some((deadline, seq, *s)),
            _ => None,
        })
        .min();
    assert_eq!(first, Some((deadline, seq, serial)), "timer order");
    let state = match t.interval {
        Some(i) => MState::Pending { deadline: next_tick(deadline, i, now), seq: ctx.next_seq() },
        None => MState::Firing,
    };
    ctx.timers.get_mut(&serial).unwrap().state = state;
    assert_eq!(
        lp.deadline(id).map(Instant::as_nanos),
        if let MState::Pending { deadline, .. } = state { Some(deadline) } else { None }
    );
    ctx.callback_budget(lp);
    if let Some(actions) = ctx.reactions.pop_front() {
        for a in actions {
            act(lp, ctx, a);
        }
    }
    if ctx.timers.get(&serial).is_some_and(|t| t.state == MState::Firing) {
        ctx.timers.remove(&serial);
    }
}

fn watch_fn(alt: bool) -> fn(&mut Lp, &mut Ctx, IoEvent) {
    if alt { on_io_alt } else { on_io }
}

fn timer_fn(alt: bool) -> fn(&mut Lp, &mut Ctx, TimerId) {
    if alt { on_timer_alt } else { on_timer }
}

/// Applies a change of interest or trigger to a live watcher, in the model
/// and the loop, checking the result.
fn apply(lp: &mut Lp, ctx: &mut Ctx, id: WatchId, interest: Interest, trig: Trigger, result: Result<(), Error>) {
    let Some((fd, w)) = ctx.live_watch(id) else {
        assert_eq!(result, Err(Error::NotFound), "change of a stale watcher id");
        return;
    };
    let _ = lp;
    match ctx.fault(!kernel(w.interest).is_empty(), interest) {
        Some(e) => assert_eq!(result, Err(Error::Os(e)), "injected fault"),
        None => {
            assert_eq!(result, Ok(()));
            let entry = ctx.watchers.get_mut(&fd).unwrap();
            entry.interest = interest;
            entry.trigger = trig;
            if !kernel(interest).is_empty() {
                ctx.closed.remove(&fd);
            }
        }
    }
}

fn add_timer(ctx: &mut Ctx, result: Result<TimerId, Error>, deadline: Instant, interval: Option<Duration>, alt: bool) {
    if ctx.timers.len() == T {
        assert_eq!(result, Err(Error::Capacity), "timer added to a full table");
        return;
    }
    let id = result.expect("timer with room");
    assert!(ctx.timer_ids.iter().all(|(t, _)| *t != id), "timer id handed out twice");
    let serial = ctx.next_serial();
    let interval = interval.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let seq = ctx.next_seq();
    ctx.timers.insert(serial, MTimer { state: MState::Pending { deadline: deadline.as_nanos(), seq }, interval, alt });
    ctx.timer_ids.push((id, serial));
}

fn act(lp: &mut Lp, ctx: &mut Ctx, a: Action) {
    match a {
        Action::Watch { fd, interest, trigger: t, alt } => {
            let fd = i32::from(fd % FDS);
            let interest = interest_of(interest);
            let trig = trigger(t);
            let serial = ctx.serial + 1;
            let options = WatchOptions::new(interest).trigger(trig).data(serial);
            let result = lp.watch_with(fd, options, watch_fn(alt));
            let old = ctx.watchers.get(&fd).copied();
            if old.is_none() && ctx.watchers.len() == W {
                assert_eq!(result, Err(Error::Capacity), "watch on a full table");
                return;
            }
            let registered = old.is_some_and(|o| !kernel(o.interest).is_empty());
            if let Some(e) = ctx.fault(registered, interest) {
                assert_eq!(result, Err(Error::Os(e)), "injected fault");
                return;
            }
            let id = result.expect("watch with room");
            assert!(!ctx.watch_ids.contains(&id), "watch id handed out twice");
            ctx.next_serial();
            ctx.watchers.insert(fd, MWatch { id, serial, interest, trigger: trig, alt });
            ctx.watch_ids.push(id);
            if !kernel(interest).is_empty() {
                ctx.closed.remove(&fd);
            }
        }
        Action::Unwatch { fd } => {
            let fd = i32::from(fd % FDS);
            let result = lp.unwatch(fd);
            match ctx.watchers.remove(&fd) {
                Some(w) => {
                    assert_eq!(result, Ok(()));
                    if !kernel(w.interest).is_empty() {
                        ctx.fail_deregister = None;
                    }
                }
                None => assert_eq!(result, Err(Error::NotFound)),
            }
        }
        Action::UnwatchId { which } => {
            if let Some(id) = ctx.pick_watch(which) {
                let live = ctx.live_watch(id);
                assert_eq!(lp.unwatch_id(id), live.is_some(), "unwatch_id liveness");
                if let Some((fd, w)) = live {
                    ctx.watchers.remove(&fd);
                    if !kernel(w.interest).is_empty() {
                        ctx.fail_deregister = None;
                    }
                }
            }
        }
        Action::Modify { which, interest } => {
            if let Some(id) = ctx.pick_watch(which) {
                let interest = interest_of(interest);
                let result = lp.modify(id, interest);
                let trig = ctx.live_watch(id).map_or(Trigger::Level, |(_, w)| w.trigger);
                apply(lp, ctx, id, interest, trig, result);
            }
        }
        Action::SetTrigger { which, trigger: t } => {
            if let Some(id) = ctx.pick_watch(which) {
                let result = lp.set_trigger(id, trigger(t));
                let interest = ctx.live_watch(id).map_or(Interest::empty(), |(_, w)| w.interest);
                apply(lp, ctx, id, interest, trigger(t), result);
            }
        }
        Action::Enable { which, sides } | Action::Disable { which, sides } => {
            if let Some(id) = ctx.pick_watch(which) {
                let sides = interest_of(sides);
                let enable = matches!(a, Action::Enable { .. });
                let result = if enable { lp.enable(id, sides) } else { lp.disable(id, sides) };
                let (interest, trig) = match ctx.live_watch(id) {
                    Some((_, w)) if enable => (w.interest | sides, w.trigger),
                    Some((_, w)) => (w.interest - sides, w.trigger),
                    None => (Interest::empty(), Trigger::Level),
                };
                apply(lp, ctx, id, interest, trig, result);
            }
        }
        Action::SetWatchCallback { which, alt } => {
            if let Some(id) = ctx.pick_watch(which) {
                let result = lp.set_callback(id, watch_fn(alt));
                match ctx.live_watch(id) {
                    Some((fd, _)) => {
                        assert_eq!(result, Ok(()));
                        ctx.watchers.get_mut(&fd).unwrap().alt = alt;
                    }
                    None => assert_eq!(result, Err(Error::NotFound)),
                }
            }
        }
        Action::After { delay, alt } => {
            let deadline = ctx.base(lp) + duration(delay);
            let result = lp.after(duration(delay), timer_fn(alt));
            add_timer(ctx, result, deadline, None, alt);
        }
        Action::At { at, alt } => {
            let deadline = Instant::ZERO + duration(at);
            let result = lp.at(deadline, timer_fn(alt));
            add_timer(ctx, result, deadline.max(ctx.base(lp)), None, alt);
        }
        Action::Every { interval, alt } => {
            let deadline = ctx.base(lp) + duration(interval);
            let result = lp.every(duration(interval), timer_fn(alt));
            add_timer(ctx, result, deadline, Some(duration(interval)), alt);
        }
        Action::Cancel { which } => {
            if let Some((id, serial)) = ctx.pick_timer(which) {
                let live = ctx.timers.remove(&serial).is_some();
                assert_eq!(lp.cancel(id), live, "cancel liveness");
            }
        }
        Action::Rearm { which, delay } => {
            if let Some((id, serial)) = ctx.pick_timer(which) {
                let deadline = ctx.base(lp) + duration(delay);
                let result = lp.rearm(id, duration(delay));
                if ctx.timers.contains_key(&serial) {
                    assert_eq!(result, Ok(()));
                    let seq = ctx.next_seq();
                    ctx.timers.get_mut(&serial).unwrap().state = MState::Pending { deadline: deadline.as_nanos(), seq };
                } else {
                    assert_eq!(result, Err(Error::NotFound), "rearm of a dead timer");
                }
            }
        }
        Action::SetInterval { which, interval } => {
            if let Some((id, serial)) = ctx.pick_timer(which) {
                let interval = interval.map(duration);
                let base = ctx.base(lp);
                let result = lp.set_interval(id, interval);
                if !ctx.timers.contains_key(&serial) {
                    assert_eq!(result, Err(Error::NotFound), "set_interval of a dead timer");
                    return;
                }
                assert_eq!(result, Ok(()));
                let state = match interval {
                    Some(d) => MState::Pending { deadline: (base + d).as_nanos(), seq: ctx.next_seq() },
                    None => MState::Disabled,
                };
                let t = ctx.timers.get_mut(&serial).unwrap();
                t.state = state;
                if let Some(d) = interval {
                    t.interval = Some(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
                }
            }
        }
        Action::SetTimerCallback { which, alt } => {
            if let Some((id, serial)) = ctx.pick_timer(which) {
                let result = lp.set_timer_callback(id, timer_fn(alt));
                match ctx.timers.get_mut(&serial) {
                    Some(t) => {
                        assert_eq!(result, Ok(()));
                        t.alt = alt;
                    }
                    None => assert_eq!(result, Err(Error::NotFound)),
                }
            }
        }
        Action::Stop => lp.stop(),
    }
}

/// The loop agrees with the model, and the Sim's registrations with both.
fn check(lp: &Lp, ctx: &Ctx) {
    assert_eq!(lp.watcher_count(), ctx.watchers.len());
    assert_eq!(lp.timer_count(), ctx.timers.len());
    for fd in 0..i32::from(FDS) {
        assert_eq!(lp.watcher_of(fd), ctx.watchers.get(&fd).map(|w| w.id), "watcher_of({fd})");
    }
    for id in &ctx.watch_ids {
        assert_eq!(lp.interest(*id), ctx.live_watch(*id).map(|(_, w)| w.interest), "interest of {id:?}");
    }
    for (fd, w) in &ctx.watchers {
        let reg = lp.backend().registration(*fd);
        if !kernel(w.interest).is_empty() && !ctx.closed.contains(fd) {
            let reg = reg.unwrap_or_else(|| panic!("watcher on fd {fd} is not registered with the backend"));
            assert_eq!((reg.interest, reg.trigger), (w.interest, w.trigger), "backend registration of fd {fd}");
        }
    }
    for (id, serial) in &ctx.timer_ids {
        let t = ctx.timers.get(serial);
        assert_eq!(lp.is_live(*id), t.is_some(), "liveness of timer {serial}");
        let deadline = t.and_then(|t| match t.state {
            MState::Pending { deadline, .. } => Some(Instant::from_nanos(deadline)),
            _ => None,
        });
        assert_eq!(lp.deadline(*id), deadline, "deadline of timer {serial}");
        assert_eq!(lp.is_pending(*id), deadline.is_some());
    }
}

/// The level-triggered callbacks a pass must make when no I/O callback
/// changes anything: every registered level watcher whose fd is ready.
fn expected_level(lp: &Lp, ctx: &Ctx) -> BTreeSet<(u64, u8)> {
    let mut out = BTreeSet::new();
    for (fd, w) in &ctx.watchers {
        if w.trigger != Trigger::Level || kernel(w.interest).is_empty() || ctx.closed.contains(fd) {
            continue;
        }
        let ready = lp.backend().ready(*fd) & reportable(w.interest);
        if ready.is_empty() {
            continue;
        }
        for s in sides(ready, w.interest) {
            out.insert((w.serial, s as u8));
        }
    }
    out
}

fn has_stale_registration(lp: &Lp, ctx: &Ctx) -> bool {
    (0..i32::from(FDS)).any(|fd| {
        lp.backend().registration(fd).is_some()
            && !ctx.watchers.get(&fd).is_some_and(|w| !kernel(w.interest).is_empty())
    })
}

/// Makes every fd number below `FDS` name an open file (`/dev/null`). The
/// loop checks an fd with `fcntl` itself (not through the backend) when a
/// watcher asks the kernel for nothing (`Interest::ERROR` alone, or empty);
/// without this, that check would depend on what the process has open.
fn open_virtual_fds() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use std::os::fd::IntoRawFd;
        // Each open takes the lowest free number: once one lands at or past
        // FDS, every number below it is taken. The files stay open.
        while let Ok(f) = std::fs::File::open("/dev/null") {
            if f.into_raw_fd() >= i32::from(FDS) {
                break;
            }
        }
    });
}

fuzz_target!(|input: Input| {
    open_virtual_fds();
    let mut lp: Lp = Loop::with_backend(Sim::new()).expect("a Sim loop");
    let mut ctx = Ctx { reactions: input.reactions.into_iter().take(MAX_REACTIONS).collect(), ..Ctx::default() };
    let mut fail_wait = false;
    for op in input.ops.into_iter().take(MAX_OPS) {
        match op {
            Op::Act(a) => act(&mut lp, &mut ctx, a),
            Op::SetReady { fd, ready } => {
                let fd = i32::from(fd % FDS);
                lp.backend_mut().set_ready(fd, ready_of(ready)).expect("the Sim has room for every fd");
            }
            Op::ClearReady { fd, ready } => {
                lp.backend_mut().clear_ready(i32::from(fd % FDS), ready_of(ready));
            }
            Op::Advance { ms } => {
                lp.backend_mut().advance(duration(ms));
            }
            Op::Close { fd } => {
                let fd = i32::from(fd % FDS);
                lp.backend_mut().close(fd);
                ctx.closed.insert(fd);
            }
            Op::FailCtl { errno: e } => {
                lp.backend_mut().fail_next(errno(e));
                ctx.fail_ctl = Some(errno(e));
            }
            Op::FailDeregister { errno: e } => {
                lp.backend_mut().fail_next_deregister(errno(e));
                ctx.fail_deregister = Some(errno(e));
            }
            Op::FailWait { errno: e } => {
                lp.backend_mut().fail_next_wait(errno(e));
                fail_wait = true;
            }
            Op::RunOnce { timeout } => {
                let expected = expected_level(&lp, &ctx);
                let wait_fails = core::mem::take(&mut fail_wait);
                ctx.pass = None;
                ctx.io_actions = 0;
                ctx.io_calls.clear();
                ctx.in_callback = true;
                let result = lp.run_once(&mut ctx, timeout.map(|ms| Duration::from_millis(u64::from(ms))));
                ctx.in_callback = false;
                if wait_fails {
                    assert!(matches!(result, Err(Error::Os(_))), "injected wait fault: {result:?}");
                    assert!(ctx.io_calls.is_empty() && ctx.pass.is_none(), "callbacks after a failed wait");
                    continue;
                }
                let calls = result.expect("run_once on the Sim");
                ctx.observe(&lp);
                let pass = ctx.pass.take().expect("observed");
                ctx.finish_pass(pass);
                if ctx.io_actions == 0 {
                    let level: BTreeSet<(u64, u8)> =
                        ctx.io_calls.iter().filter(|c| c.2 == Trigger::Level).map(|c| (c.0, c.1 as u8)).collect();
                    assert_eq!(level, expected, "a quiet pass lost or invented level-triggered callbacks");
                }
                assert!(calls >= ctx.io_calls.len());
            }
            Op::Run => {
                if has_stale_registration(&lp, &ctx) || ctx.fail_deregister.is_some() {
                    // A registration whose deregister failed (now, or by a
                    // callback during the run) is reported and dropped as
                    // stale on every pass: `run` would spin without a
                    // callback to stop it. `unwatch_id` ignores that error.
                    continue;
                }
                let wait_fails = core::mem::take(&mut fail_wait);
                lp.backend_mut().set_stall_error(Some(Errno::ETIMEDOUT));
                ctx.pass = None;
                ctx.io_calls.clear();
                ctx.budget = Some(RUN_BUDGET);
                ctx.in_callback = true;
                let result = lp.run(&mut ctx);
                ctx.in_callback = false;
                ctx.budget = None;
                lp.backend_mut().set_stall_error(None);
                match result {
                    Ok(()) | Err(Error::Os(Errno::ETIMEDOUT)) => {}
                    Err(Error::Os(_)) if wait_fails => {}
                    other => panic!("run: {other:?}"),
                }
                if let Some(p) = ctx.pass.take() {
                    ctx.finish_pass(p);
                }
                if wait_fails && result.is_ok() {
                    // The fault is still armed for the next wait.
                    fail_wait = true;
                }
            }
        }
        check(&lp, &ctx);
    }
});
