//! The waker: cross-thread wake-ups of a blocked loop, coalesced counts,
//! and handles that outlive their loop.

#[macro_use]
mod common;

use common::{Config, Loop, NO_WAIT, PATIENCE, wait_until_blocked, watchdog};
use core::time::Duration;
use linux_event::sys::gettid;
use linux_event::{Error, TimerEvent, WakeEvent, WakeId, Waker};

#[derive(Default)]
struct Ctx {
    wakes: Vec<u64>,
    /// (id, data) of every wake-up callback run.
    events: Vec<(WakeId, u64)>,
    timers: usize,
    waker: Option<Waker>,
}

type Lp = Loop<Ctx>;

fn wake_and_stop(lp: &mut Lp, ctx: &mut Ctx, ev: WakeEvent) {
    ctx.wakes.push(ev.count());
    lp.stop();
}

fn wake_record(_lp: &mut Lp, ctx: &mut Ctx, ev: WakeEvent) {
    ctx.wakes.push(ev.count());
    ctx.events.push((ev.id(), ev.data()));
}

fn far_timer(_lp: &mut Lp, ctx: &mut Ctx, _id: TimerEvent) {
    ctx.timers += 1;
}

fn waker_signalled_from_another_thread_wakes_a_blocked_run(cfg: &Config) {
    let n = cfg.name;
    let _guard = watchdog("a run() waiting for a cross-thread wake-up", 60);
    let mut lp: Lp = cfg.new_loop();
    lp.on_wake(0, wake_and_stop).unwrap();
    let waker = lp.waker().unwrap();
    let mut ctx = Ctx::default();
    // The ringer waits until this thread sleeps in the backend's wait.
    let tid = gettid();
    for round in 1..=3u64 {
        // No timers, no watchers: only the waker can end this run.
        let t = std::thread::spawn(move || (wait_until_blocked(tid), waker.signal(2)));
        assert_eq!(lp.run(&mut ctx), Ok(()), "[{n}] round {round}");
        assert_eq!(t.join().unwrap(), (true, Ok(())), "[{n}] round {round}: (loop blocked when rung, signal)");
        assert_eq!(ctx.wakes, vec![2; round as usize], "[{n}] round {round}");
    }
    // Same with a far timer making the loop wait for a deadline.
    let far = lp.after(Duration::from_secs(60), 0, far_timer).unwrap();
    let t = std::thread::spawn(move || (wait_until_blocked(tid), waker.signal(1)));
    assert_eq!(lp.run(&mut ctx), Ok(()), "[{n}] with a far timer");
    assert_eq!(t.join().unwrap(), (true, Ok(())), "[{n}] (loop blocked when rung, signal)");
    assert_eq!(ctx.wakes.last(), Some(&1), "[{n}]");
    assert_eq!(ctx.timers, 0, "[{n}] the far timer fired");
    assert!(lp.is_pending(far), "[{n}]");
}

fn signal_before_run_is_not_lost(cfg: &Config) {
    let n = cfg.name;
    let _guard = watchdog("a run() with a signal already pending", 60);
    let mut lp: Lp = cfg.new_loop();
    lp.on_wake(0, wake_and_stop).unwrap();
    let waker = lp.waker().unwrap();
    waker.signal(7).unwrap();
    let mut ctx = Ctx::default();
    assert_eq!(lp.run(&mut ctx), Ok(()), "[{n}]");
    assert_eq!(ctx.wakes, [7], "[{n}]");
}

fn signal_own_loop(_lp: &mut Lp, ctx: &mut Ctx, _id: TimerEvent) {
    ctx.timers += 1;
    ctx.waker.unwrap().signal(1).unwrap();
}

fn signal_from_a_callback_wakes_the_next_wait(cfg: &Config) {
    let n = cfg.name;
    let _guard = watchdog("a run() signalled from its own callback", 60);
    let mut lp: Lp = cfg.new_loop();
    lp.on_wake(0, wake_and_stop).unwrap();
    let mut ctx = Ctx { waker: Some(lp.waker().unwrap()), ..Ctx::default() };
    lp.after(Duration::ZERO, 0, signal_own_loop).unwrap();
    assert_eq!(lp.run(&mut ctx), Ok(()), "[{n}]");
    assert_eq!((ctx.timers, ctx.wakes.as_slice()), (1, &[1][..]), "[{n}]");
}

fn drain_returns_the_coalesced_count_and_zero_when_empty(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let waker = lp.waker().unwrap();
    assert_eq!(waker.drain(), Ok(0), "[{n}] empty");
    waker.signal(2).unwrap();
    waker.signal(3).unwrap();
    assert_eq!(waker.drain(), Ok(5), "[{n}]");
    assert_eq!(waker.drain(), Ok(0), "[{n}] drained");

    // Without on_wake the loop leaves the count for drain().
    waker.signal(4).unwrap();
    let mut ctx = Ctx::default();
    assert_eq!(lp.run_once(&mut ctx, NO_WAIT), Ok(0), "[{n}]");
    assert_eq!(waker.drain(), Ok(4), "[{n}]");

    // Many threads: no signal is lost.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    waker.signal(1).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(waker.drain(), Ok(4000), "[{n}]");
}

fn on_wake_gets_the_coalesced_count_once_per_pass(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    lp.on_wake(0, wake_record).unwrap();
    let waker = lp.waker().unwrap();
    waker.signal(2).unwrap();
    waker.signal(3).unwrap();
    let mut ctx = Ctx::default();
    assert_eq!(lp.run_once(&mut ctx, PATIENCE), Ok(1), "[{n}]");
    assert_eq!(ctx.wakes, [5], "[{n}]");
    assert_eq!(lp.run_once(&mut ctx, NO_WAIT), Ok(0), "[{n}] no new signal");
    assert_eq!(waker.drain(), Ok(0), "[{n}] on_wake drained the count");
    waker.signal(1).unwrap();
    assert_eq!(lp.run_once(&mut ctx, PATIENCE), Ok(1), "[{n}]");
    assert_eq!(ctx.wakes, [5, 1], "[{n}]");
}

fn a_loop_has_one_waker_and_it_wakes_only_that_loop(cfg: &Config) {
    let n = cfg.name;
    let mut a: Lp = cfg.new_loop();
    let mut b: Lp = cfg.new_loop();
    let wa = a.waker().unwrap();
    assert_eq!(a.waker(), Ok(wa), "[{n}] a second call must return the same waker");
    b.on_wake(0, wake_record).unwrap();
    let wb = b.waker().unwrap();
    assert_ne!(wa, wb, "[{n}]");
    wa.signal(3).unwrap();
    let mut ctx = Ctx::default();
    assert_eq!(b.run_once(&mut ctx, NO_WAIT), Ok(0), "[{n}] other loop woken");
    assert!(ctx.wakes.is_empty(), "[{n}]");
    assert_eq!(wb.drain(), Ok(0), "[{n}]");
    assert_eq!(wa.drain(), Ok(3), "[{n}]");
}

fn waker_used_after_its_loop_is_dropped_returns_closed(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let old = lp.waker().unwrap();
    old.signal(1).unwrap();
    drop(lp);
    assert_eq!(old.signal(1), Err(Error::Closed), "[{n}] signal");
    assert_eq!(old.drain(), Err(Error::Closed), "[{n}] drain");
    let from_thread = std::thread::spawn(move || old.signal(1)).join().unwrap();
    assert_eq!(from_thread, Err(Error::Closed), "[{n}] signal from another thread");

    // New loops may take the old waker's slot; the old handle must not
    // reach them.
    let mut loops: Vec<Lp> = (0..4).map(|_| cfg.new_loop()).collect();
    let wakers: Vec<Waker> = loops.iter_mut().map(|l| l.waker().unwrap()).collect();
    assert_eq!(old.signal(1), Err(Error::Closed), "[{n}] old waker revived by a new loop");
    assert_eq!(old.drain(), Err(Error::Closed), "[{n}]");
    for (i, w) in wakers.iter().enumerate() {
        assert_ne!(*w, old, "[{n}]");
        assert_eq!(w.drain(), Ok(0), "[{n}] loop {i} got the old waker's count");
        w.signal(i as u64 + 1).unwrap();
        assert_eq!(w.drain(), Ok(i as u64 + 1), "[{n}] loop {i}");
    }
}

fn huge_signal_counts_saturate_instead_of_wrapping_into_a_lost_wake_up(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    lp.on_wake(0, wake_record).unwrap();
    let waker = lp.waker().unwrap();
    // u64::MAX + 1 signals: a wrapping count reads 0, and a count of 0
    // runs no on_wake at all, so these signals would be lost.
    waker.signal(u64::MAX).unwrap();
    waker.signal(1).unwrap();
    let mut ctx = Ctx::default();
    assert_eq!(lp.run_once(&mut ctx, PATIENCE), Ok(1), "[{n}] the wake-up was lost: {:?}", ctx.wakes);
    assert_eq!(ctx.wakes, [u64::MAX], "[{n}] the count must saturate");
    // Same through drain().
    waker.signal(u64::MAX - 1).unwrap();
    waker.signal(5).unwrap();
    assert_eq!(waker.drain(), Ok(u64::MAX), "[{n}] drain must saturate");
}

fn on_wake_data_and_id_reach_the_callback_and_a_removed_one_leaves_the_count_for_drain(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let first = lp.on_wake(11, wake_record).unwrap();
    let waker = lp.waker().unwrap();
    waker.signal(1).unwrap();
    let mut ctx = Ctx::default();
    assert_eq!(lp.run_once(&mut ctx, PATIENCE), Ok(1), "[{n}]");
    lp.set_data(first, 12).unwrap();
    waker.signal(1).unwrap();
    assert_eq!(lp.run_once(&mut ctx, PATIENCE), Ok(1), "[{n}]");
    assert_eq!(ctx.events, [(first, 11), (first, 12)], "[{n}]");

    // A later on_wake replaces it: the old id goes stale.
    let second = lp.on_wake(21, wake_record).unwrap();
    assert_ne!(first, second, "[{n}]");
    assert!(!lp.is_live(first) && lp.is_live(second), "[{n}]");
    assert!(!lp.remove(first), "[{n}] a stale id removed the new wake-up callback");
    assert_eq!(lp.set_data(first, 0), Err(Error::NotFound), "[{n}]");
    waker.signal(1).unwrap();
    assert_eq!(lp.run_once(&mut ctx, PATIENCE), Ok(1), "[{n}]");
    assert_eq!(ctx.events.last(), Some(&(second, 21)), "[{n}]");

    // Removed: no callback, and the count waits for drain().
    assert!(lp.remove(second), "[{n}]");
    assert!(!lp.remove(second), "[{n}]");
    waker.signal(3).unwrap();
    assert_eq!(lp.run_once(&mut ctx, NO_WAIT), Ok(0), "[{n}] a removed wake-up callback ran");
    assert_eq!(ctx.events.len(), 3, "[{n}] {:?}", ctx.events);
    assert_eq!(waker.drain(), Ok(3), "[{n}]");
}

backend_tests!(
    waker_signalled_from_another_thread_wakes_a_blocked_run,
    signal_before_run_is_not_lost,
    signal_from_a_callback_wakes_the_next_wait,
    drain_returns_the_coalesced_count_and_zero_when_empty,
    on_wake_gets_the_coalesced_count_once_per_pass,
    a_loop_has_one_waker_and_it_wakes_only_that_loop,
    waker_used_after_its_loop_is_dropped_returns_closed,
    huge_signal_counts_saturate_instead_of_wrapping_into_a_lost_wake_up,
    on_wake_data_and_id_reach_the_callback_and_a_removed_one_leaves_the_count_for_drain,
);
