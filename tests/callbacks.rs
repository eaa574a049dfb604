//! Callbacks may do anything to the loop, their own watcher or timer
//! included: watch, remove, add timers, re-arm, stop.

#[macro_use]
mod common;

use common::{Config, Loop, NO_WAIT, PATIENCE, pipe, write_once};
use core::time::Duration;
use linux_event::sys::OwnedFd;
use linux_event::{Interest, TimerEvent, TimerId, WatchEvent, WatchId, WatchOptions};

#[derive(Default)]
struct Ctx {
    pass: usize,
    log: Vec<(usize, String)>,
    other: Option<WatchId>,
    ids: Vec<WatchId>,
    timer: Option<TimerId>,
    results: Vec<bool>,
    fds: Vec<OwnedFd>,
}

impl Ctx {
    fn note(&mut self, what: impl Into<String>) {
        let pass = self.pass;
        self.log.push((pass, what.into()));
    }
    fn notes(&self) -> Vec<&str> {
        self.log.iter().map(|l| l.1.as_str()).collect()
    }
}

type Lp = Loop<Ctx>;

fn step(n: &str, lp: &mut Lp, ctx: &mut Ctx, pass: usize) -> usize {
    ctx.pass = pass;
    lp.run_once(ctx, PATIENCE).unwrap_or_else(|e| panic!("[{n}] run_once (pass {pass}): {e}"))
}

fn added_timer(_lp: &mut Lp, ctx: &mut Ctx, _id: TimerEvent) {
    ctx.note("timer");
}

fn adds_timer_and_unwatches_other(lp: &mut Lp, ctx: &mut Ctx, ev: WatchEvent) {
    ctx.note(format!("io {}", ev.data()));
    if ev.data() == 1 {
        let other = ctx.other.take().unwrap();
        ctx.results.push(lp.remove(other));
        ctx.timer = Some(lp.after(Duration::ZERO, 0, added_timer).unwrap());
        lp.remove(ev.id());
    }
}

fn watcher_callback_can_add_a_timer_and_remove_another_watcher(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (r1, w1) = pipe();
    let (r2, w2) = pipe();
    write_once(w1.as_raw_fd(), b"1");
    lp.watch_with(r1.as_raw_fd(), WatchOptions::new(Interest::READ), 1, adds_timer_and_unwatches_other).unwrap();
    let other = lp.watch_with(r2.as_raw_fd(), WatchOptions::new(Interest::READ), 2, adds_timer_and_unwatches_other);
    let mut ctx = Ctx { other: Some(other.unwrap()), ..Ctx::default() };
    assert_eq!(step(n, &mut lp, &mut ctx, 1), 1, "[{n}] {:?}", ctx.log);
    assert_eq!(ctx.results, [true], "[{n}] unwatch of the other watcher");
    assert_eq!(lp.watcher_count(), 0, "[{n}]");
    // The other fd becomes ready now; it was unwatched, so nothing runs.
    write_once(w2.as_raw_fd(), b"2");
    assert_eq!(step(n, &mut lp, &mut ctx, 2), 1, "[{n}] {:?}", ctx.log);
    assert_eq!(ctx.log, [(1, "io 1".to_string()), (2, "timer".to_string())], "[{n}]");
    assert_eq!(lp.run_once(&mut ctx, NO_WAIT), Ok(0), "[{n}] {:?}", ctx.log);
    assert!(!lp.is_live(ctx.timer.unwrap()), "[{n}]");
}

fn first_io_unwatches_the_other(lp: &mut Lp, ctx: &mut Ctx, ev: WatchEvent) {
    ctx.note(format!("io {}", ev.data()));
    lp.remove(ev.id());
    let other = ctx.ids[1 - ev.data() as usize];
    ctx.results.push(lp.remove(other));
}

fn watcher_removed_by_an_earlier_callback_of_the_same_batch_does_not_run(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (r0, w0) = pipe();
    let (r1, w1) = pipe();
    write_once(w0.as_raw_fd(), b"0");
    write_once(w1.as_raw_fd(), b"1");
    let mut ctx = Ctx::default();
    for (tag, fd) in [(0, r0.as_raw_fd()), (1, r1.as_raw_fd())] {
        ctx.ids.push(lp.watch_with(fd, WatchOptions::new(Interest::READ), tag, first_io_unwatches_the_other).unwrap());
    }
    // Both are ready, so both are in one batch; whichever runs first
    // removes the other, whose event must then be dropped.
    assert_eq!(step(n, &mut lp, &mut ctx, 1), 1, "[{n}] {:?}", ctx.log);
    assert_eq!(ctx.log.len(), 1, "[{n}] {:?}", ctx.log);
    assert_eq!(ctx.results, [true], "[{n}] the other watcher was live when removed");
    assert_eq!(lp.watcher_count(), 0, "[{n}]");
    assert_eq!(lp.run_once(&mut ctx, NO_WAIT), Ok(0), "[{n}]");
}

fn watches_a_new_fd(lp: &mut Lp, ctx: &mut Ctx, _id: TimerEvent) {
    ctx.note("timer");
    let (r, w) = pipe();
    write_once(w.as_raw_fd(), b"x");
    lp.watch(r.as_raw_fd(), Interest::READ, 0, |lp, ctx, ev| {
        ctx.note("io");
        lp.remove(ev.id());
    })
    .unwrap();
    ctx.fds.push(r);
    ctx.fds.push(w);
}

fn timer_callback_can_watch_a_new_fd(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    lp.after(Duration::ZERO, 0, watches_a_new_fd).unwrap();
    let mut ctx = Ctx::default();
    assert_eq!(step(n, &mut lp, &mut ctx, 1), 1, "[{n}]");
    assert_eq!(step(n, &mut lp, &mut ctx, 2), 1, "[{n}]");
    assert_eq!(ctx.log, [(1, "timer".to_string()), (2, "io".to_string())], "[{n}]");
}

fn periodic_cancels_itself(lp: &mut Lp, ctx: &mut Ctx, ev: TimerEvent) {
    let id = ev.id();
    ctx.note("tick");
    if ctx.log.len() == 3 {
        let live = lp.remove(id);
        ctx.results.push(live);
        ctx.results.push(lp.remove(id));
    }
}

fn periodic_timer_can_cancel_itself_from_its_callback(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let id = lp.every(Duration::from_millis(1), 0, periodic_cancels_itself).unwrap();
    let mut ctx = Ctx::default();
    let _guard = common::watchdog("run() of a self-cancelling periodic timer", 60);
    // Once it is cancelled nothing is left, so run returns.
    assert_eq!(lp.run(&mut ctx), Ok(()), "[{n}]");
    assert_eq!(ctx.notes(), ["tick"; 3], "[{n}]");
    assert_eq!(ctx.results, [true, false], "[{n}] cancel inside the callback");
    assert!(!lp.is_live(id), "[{n}]");
    assert_eq!(lp.timer_count(), 0, "[{n}]");
}

fn one_shot_rearms_itself(lp: &mut Lp, ctx: &mut Ctx, ev: TimerEvent) {
    let id = ev.id();
    ctx.note("fire");
    ctx.results.push(lp.is_live(id));
    if ctx.log.len() < 3 {
        lp.rearm(id, Duration::from_millis(1)).unwrap();
    }
}

fn one_shot_timer_can_rearm_itself_from_its_callback(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let id = lp.after(Duration::ZERO, 0, one_shot_rearms_itself).unwrap();
    let mut ctx = Ctx::default();
    let _guard = common::watchdog("run() of a self-rearming timer", 60);
    assert_eq!(lp.run(&mut ctx), Ok(()), "[{n}]");
    assert_eq!(ctx.notes(), ["fire"; 3], "[{n}]");
    assert_eq!(ctx.results, [true; 3], "[{n}] a one-shot is live inside its own callback");
    assert!(!lp.is_live(id), "[{n}] freed after the last, un-rearmed firing");
}

fn one_shot_cancels_itself(lp: &mut Lp, ctx: &mut Ctx, ev: TimerEvent) {
    let id = ev.id();
    ctx.note("fire");
    ctx.results.push(lp.remove(id));
    ctx.results.push(lp.remove(id));
    // Its slot may now be reused, from inside the same callback.
    ctx.timer = Some(lp.after(Duration::ZERO, 0, added_timer).unwrap());
}

fn one_shot_timer_cancelling_itself_in_its_callback_returns_true_once(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Loop<Ctx, 2, 1> = cfg.new_loop();
    // T = 1: the timer added in the callback takes the cancelled slot.
    fn cb(lp: &mut Loop<Ctx, 2, 1>, ctx: &mut Ctx, ev: TimerEvent) {
        let id = ev.id();
        ctx.note("fire");
        ctx.results.push(lp.remove(id));
        ctx.results.push(lp.remove(id));
        ctx.timer = Some(lp.after(Duration::ZERO, 0, |_, c, _| c.note("timer")).unwrap());
    }
    let id = lp.after(Duration::ZERO, 0, cb).unwrap();
    let mut ctx = Ctx { pass: 1, ..Ctx::default() };
    assert_eq!(lp.run_once(&mut ctx, PATIENCE), Ok(1), "[{n}]");
    assert_eq!(ctx.results, [true, false], "[{n}]");
    let new = ctx.timer.unwrap();
    assert_ne!(new, id, "[{n}]");
    assert!(lp.is_pending(new), "[{n}] finishing the cancelled one-shot freed the new timer in its slot");
    ctx.pass = 2;
    assert_eq!(lp.run_once(&mut ctx, PATIENCE), Ok(1), "[{n}]");
    assert_eq!(ctx.notes(), ["fire", "timer"], "[{n}]");
    // The same with the default capacity, through a plain fn.
    let mut lp: Lp = cfg.new_loop();
    lp.after(Duration::ZERO, 0, one_shot_cancels_itself).unwrap();
    let mut ctx = Ctx::default();
    assert_eq!(lp.run(&mut ctx), Ok(()), "[{n}]");
    assert_eq!(ctx.results, [true, false], "[{n}]");
    assert_eq!(ctx.notes(), ["fire", "timer"], "[{n}]");
}

fn cancels_the_other(lp: &mut Lp, ctx: &mut Ctx, _id: TimerEvent) {
    ctx.note("first");
    let other = ctx.timer.take().unwrap();
    ctx.results.push(lp.remove(other));
}

fn must_not_fire(_lp: &mut Lp, ctx: &mut Ctx, _id: TimerEvent) {
    ctx.note("cancelled one fired");
}

fn postpones_the_other(lp: &mut Lp, ctx: &mut Ctx, _id: TimerEvent) {
    ctx.note("first");
    let other = ctx.timer.unwrap();
    lp.rearm(other, Duration::from_secs(60)).unwrap();
}

fn timer_cancelled_or_postponed_by_an_earlier_callback_of_the_same_pass_does_not_fire(cfg: &Config) {
    let n = cfg.name;
    for (what, first) in
        [("cancel", cancels_the_other as fn(&mut Lp, &mut Ctx, TimerEvent)), ("rearm", postpones_the_other)]
    {
        let mut lp: Lp = cfg.new_loop();
        let now = lp.update_now().unwrap();
        // Same deadline, FIFO: `first` runs first, both due in one pass.
        lp.at(now, 0, first).unwrap();
        let victim = lp.at(now, 0, must_not_fire).unwrap();
        let mut ctx = Ctx { timer: Some(victim), ..Ctx::default() };
        assert_eq!(step(n, &mut lp, &mut ctx, 1), 1, "[{n}] {what}: {:?}", ctx.log);
        assert_eq!(ctx.notes(), ["first"], "[{n}] {what}");
        assert_eq!(lp.run_once(&mut ctx, NO_WAIT), Ok(0), "[{n}] {what}");
        if what == "cancel" {
            assert_eq!(ctx.results, [true], "[{n}]");
            assert!(!lp.is_live(victim), "[{n}]");
        } else {
            assert!(lp.is_pending(victim), "[{n}]");
        }
    }
}

fn switch_callback(lp: &mut Lp, ctx: &mut Ctx, ev: TimerEvent) {
    let id = ev.id();
    ctx.note("a");
    lp.set_timer_callback(id, |lp, ctx, ev| {
        ctx.note("b");
        lp.remove(ev.id());
    })
    .unwrap();
}

fn periodic_timer_can_replace_its_own_callback(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    lp.every(Duration::ZERO, 0, switch_callback).unwrap();
    let mut ctx = Ctx::default();
    assert_eq!(lp.run(&mut ctx), Ok(()), "[{n}]");
    assert_eq!(ctx.notes(), ["a", "b"], "[{n}]");
}

fn io_stops(lp: &mut Lp, ctx: &mut Ctx, _ev: WatchEvent) {
    ctx.note("io");
    lp.stop();
}

fn watcher_callback_can_stop_the_loop(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (r, w) = pipe();
    write_once(w.as_raw_fd(), b"x");
    // Level-triggered and never drained: only stop can end this run.
    lp.watch(r.as_raw_fd(), Interest::READ, 0, io_stops).unwrap();
    let mut ctx = Ctx::default();
    let _guard = common::watchdog("run() stopped from a watcher callback", 60);
    assert_eq!(lp.run(&mut ctx), Ok(()), "[{n}]");
    assert_eq!(ctx.notes(), ["io"], "[{n}]");
}

fn panics(_lp: &mut Lp, ctx: &mut Ctx, _id: TimerEvent) {
    ctx.note("panic");
    panic!("a callback panicked (expected by this test)");
}

fn loop_stays_usable_after_a_panicking_callback_is_caught(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    lp.after(Duration::ZERO, 0, panics).unwrap();
    let mut ctx = Ctx::default();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run_once(&mut ctx, PATIENCE)));
    assert!(caught.is_err(), "[{n}] the callback's panic must reach the caller");
    // The panic is not a re-entrant run: the loop must run again.
    assert!(!lp.is_running(), "[{n}] the loop still claims to be running");
    lp.after(Duration::ZERO, 0, |_, c, _| c.note("after")).unwrap();
    assert_eq!(lp.run_once(&mut ctx, PATIENCE), Ok(1), "[{n}] loop unusable after a caught panic");
    assert_eq!(ctx.notes(), ["panic", "after"], "[{n}]");
}

fn closes_own_fd_then_unwatches(lp: &mut Lp, ctx: &mut Ctx, ev: WatchEvent) {
    ctx.note(format!("{:?}", ev.side()));
    ctx.fds.clear(); // closes the watched fd
    ctx.results.push(lp.remove(ev.id()));
}

fn callback_that_closes_its_own_fd_and_removes_its_watcher_hears_nothing_more(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (a, mut b) = common::socketpair();
    std::io::Write::write_all(&mut b, b"bye").unwrap();
    // SAFETY: `into_raw_fd` gave up the socket's ownership; nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(a)) };
    let raw = fd.as_raw_fd();
    let mut ctx = Ctx::default();
    ctx.fds.push(fd);
    lp.watch(raw, Interest::READ | Interest::WRITE, 0, closes_own_fd_then_unwatches).unwrap();
    assert_eq!(step(n, &mut lp, &mut ctx, 1), 1, "[{n}] {:?}", ctx.log);
    assert_eq!(ctx.notes(), ["Read"], "[{n}] write side ran on a closed, removed watcher");
    assert_eq!(ctx.results, [true], "[{n}] unwatch after close");
    assert_eq!(lp.watcher_count(), 0, "[{n}]");
    assert_eq!(lp.run_once(&mut ctx, NO_WAIT), Ok(0), "[{n}]");
}

backend_tests!(
    watcher_callback_can_add_a_timer_and_remove_another_watcher,
    watcher_removed_by_an_earlier_callback_of_the_same_batch_does_not_run,
    timer_callback_can_watch_a_new_fd,
    periodic_timer_can_cancel_itself_from_its_callback,
    one_shot_timer_can_rearm_itself_from_its_callback,
    one_shot_timer_cancelling_itself_in_its_callback_returns_true_once,
    timer_cancelled_or_postponed_by_an_earlier_callback_of_the_same_pass_does_not_fire,
    periodic_timer_can_replace_its_own_callback,
    watcher_callback_can_stop_the_loop,
    loop_stays_usable_after_a_panicking_callback_is_caught,
    callback_that_closes_its_own_fd_and_removes_its_watcher_hears_nothing_more,
);
