//! Timers: ordering, next-pass semantics, stop, cancel, slot reuse,
//! periodic phase, interval zero, disabling and re-arming.

#[macro_use]
mod common;

use common::{Config, Loop, NO_WAIT, PATIENCE, pipe, write_once};
use core::time::Duration;
use linux_event::{Instant, Interest, TimerEvent, TimerId, WatchEvent};

#[derive(Default)]
struct Ctx {
    /// Set by the test before each `run_once`, so callbacks can say in
    /// which pass they ran.
    pass: usize,
    fired: Vec<(usize, &'static str)>,
}

impl Ctx {
    fn names(&self) -> Vec<&'static str> {
        self.fired.iter().map(|f| f.1).collect()
    }
}

type Lp = Loop<Ctx>;

fn stopper(lp: &mut Lp, ctx: &mut Ctx, _id: TimerEvent) {
    ctx.fired.push((ctx.pass, "stopper"));
    lp.stop();
}

fn far(_lp: &mut Lp, ctx: &mut Ctx, _id: TimerEvent) {
    ctx.fired.push((ctx.pass, "far"));
}

fn plain(_lp: &mut Lp, ctx: &mut Ctx, _id: TimerEvent) {
    ctx.fired.push((ctx.pass, "plain"));
}

/// Runs one pass numbered `pass` and returns how many callbacks ran.
fn pass(cfg: &Config, lp: &mut Lp, ctx: &mut Ctx, pass: usize, timeout: Option<Duration>) -> usize {
    ctx.pass = pass;
    lp.run_once(ctx, timeout).unwrap_or_else(|e| panic!("[{}] run_once (pass {pass}): {e}", cfg.name))
}

fn stop_inside_a_timer_callback_makes_run_return_without_waiting_again(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    lp.after(Duration::from_millis(1), 0, stopper).unwrap();
    // If run waited again it would sleep until this one (and fire it).
    let far_id = lp.after(Duration::from_secs(60), 0, far).unwrap();
    let mut ctx = Ctx::default();
    assert_eq!(lp.run(&mut ctx), Ok(()), "[{n}]");
    assert_eq!(ctx.names(), ["stopper"], "[{n}]");
    assert!(lp.is_pending(far_id), "[{n}] the far timer must still wait");
    assert!(!lp.is_running(), "[{n}]");

    // The stop request is consumed: a second run works the same way.
    lp.after(Duration::ZERO, 0, stopper).unwrap();
    assert_eq!(lp.run(&mut ctx), Ok(()), "[{n}]");
    assert_eq!(ctx.names(), ["stopper", "stopper"], "[{n}]");
    assert!(lp.is_pending(far_id), "[{n}]");
}

fn stop_before_run_makes_run_return_at_once(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    lp.after(Duration::ZERO, 0, plain).unwrap();
    lp.stop();
    let mut ctx = Ctx::default();
    assert_eq!(lp.run(&mut ctx), Ok(()), "[{n}]");
    assert!(ctx.fired.is_empty(), "[{n}] run dispatched after a stop: {:?}", ctx.fired);
    // The request was used up by that run.
    assert_eq!(lp.run(&mut ctx), Ok(()), "[{n}]");
    assert_eq!(ctx.names(), ["plain"], "[{n}]");
}

fn run_returns_once_nothing_is_left_to_wait_for(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    lp.after(Duration::from_millis(2), 0, plain).unwrap();
    lp.after(Duration::from_millis(1), 0, far).unwrap();
    let mut ctx = Ctx::default();
    assert_eq!(lp.run(&mut ctx), Ok(()), "[{n}]");
    assert_eq!(ctx.names(), ["far", "plain"], "[{n}]");
    assert_eq!(lp.timer_count(), 0, "[{n}]");
}

fn schedules_zero(lp: &mut Lp, ctx: &mut Ctx, _id: TimerEvent) {
    ctx.fired.push((ctx.pass, "first"));
    lp.after(Duration::ZERO, 0, second).unwrap();
    // A deadline in the past is the same: due, but not in this pass.
    lp.at(Instant::ZERO, 0, third).unwrap();
}

fn second(_lp: &mut Lp, ctx: &mut Ctx, _id: TimerEvent) {
    ctx.fired.push((ctx.pass, "second"));
}

fn third(_lp: &mut Lp, ctx: &mut Ctx, _id: TimerEvent) {
    ctx.fired.push((ctx.pass, "third"));
}

fn zero_delay_timer_added_from_a_timer_callback_fires_on_the_next_pass_not_the_current_one(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    lp.after(Duration::ZERO, 0, schedules_zero).unwrap();
    let mut ctx = Ctx::default();
    assert_eq!(pass(cfg, &mut lp, &mut ctx, 1, PATIENCE), 1, "[{n}] {:?}", ctx.fired);
    assert_eq!(ctx.fired, [(1, "first")], "[{n}]");
    // Due at once: the next pass fires them even without waiting.
    assert_eq!(pass(cfg, &mut lp, &mut ctx, 2, NO_WAIT), 2, "[{n}] {:?}", ctx.fired);
    assert_eq!(ctx.fired, [(1, "first"), (2, "second"), (2, "third")], "[{n}]");
    assert_eq!(pass(cfg, &mut lp, &mut ctx, 3, NO_WAIT), 0, "[{n}]");
}

fn io_schedules_zero(lp: &mut Lp, ctx: &mut Ctx, ev: WatchEvent) {
    ctx.fired.push((ctx.pass, "io"));
    lp.remove(ev.id());
    lp.after(Duration::ZERO, 0, second).unwrap();
}

fn zero_delay_timer_added_from_a_watcher_callback_fires_on_the_next_pass_not_the_current_one(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (r, w) = pipe();
    write_once(w.as_raw_fd(), b"x");
    lp.watch(r.as_raw_fd(), Interest::READ, 0, io_schedules_zero).unwrap();
    let mut ctx = Ctx::default();
    // Timers are fired after I/O in the same pass: this one must wait.
    assert_eq!(pass(cfg, &mut lp, &mut ctx, 1, PATIENCE), 1, "[{n}] {:?}", ctx.fired);
    assert_eq!(pass(cfg, &mut lp, &mut ctx, 2, NO_WAIT), 1, "[{n}] {:?}", ctx.fired);
    assert_eq!(ctx.fired, [(1, "io"), (2, "second")], "[{n}]");
}

fn rearms_zero(lp: &mut Lp, ctx: &mut Ctx, ev: TimerEvent) {
    let id = ev.id();
    ctx.fired.push((ctx.pass, "self"));
    lp.rearm(id, Duration::ZERO).unwrap();
}

fn timer_rearmed_with_zero_delay_inside_its_callback_fires_once_per_pass(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let id = lp.after(Duration::ZERO, 0, rearms_zero).unwrap();
    let mut ctx = Ctx::default();
    for p in 1..=10 {
        assert_eq!(pass(cfg, &mut lp, &mut ctx, p, NO_WAIT), 1, "[{n}] pass {p}");
    }
    let passes: Vec<usize> = ctx.fired.iter().map(|f| f.0).collect();
    assert_eq!(passes, (1..=10).collect::<Vec<_>>(), "[{n}]");
    assert!(lp.remove(id), "[{n}] the re-armed timer is still live");
}

const ORDER_TIMERS: usize = 60;

#[derive(Default)]
struct OrderCtx {
    ids: Vec<TimerId>,
    offsets: Vec<u64>,
    cancelled: Vec<usize>,
    fired: Vec<usize>,
}

type OrderLp = Loop<OrderCtx>;

fn ordered(lp: &mut OrderLp, ctx: &mut OrderCtx, ev: TimerEvent) {
    let id = ev.id();
    let index = ctx.ids.iter().position(|&i| i == id).expect("unknown timer fired");
    assert!(!lp.is_pending(id));
    ctx.fired.push(index);
}

/// Adds every timer from inside a callback, where the loop's `now` is fixed,
/// so that deadlines are exact and none is in the past.
fn add_shuffled(lp: &mut OrderLp, ctx: &mut OrderCtx, _id: TimerEvent) {
    let base = lp.now() + Duration::from_millis(1);
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..ORDER_TIMERS {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        // 8 distinct deadlines for 60 timers: many ties, in shuffled order.
        let offset_us = ((seed >> 33) % 8) * 700;
        let deadline = base + Duration::from_micros(offset_us);
        let id = lp.at(deadline, 0, ordered).unwrap();
        assert_eq!(lp.deadline(id), Some(deadline), "at() must keep the exact deadline");
        ctx.ids.push(id);
        ctx.offsets.push(offset_us);
    }
    // Cancelling some must not disturb the order of the rest.
    for i in (0..ORDER_TIMERS).step_by(7) {
        assert!(lp.remove(ctx.ids[i]));
        ctx.cancelled.push(i);
    }
}

fn timers_fire_in_deadline_order_with_fifo_ties(cfg: &Config) {
    let n = cfg.name;
    let mut lp: OrderLp = cfg.new_loop();
    lp.after(Duration::ZERO, 0, add_shuffled).unwrap();
    let mut ctx = OrderCtx::default();
    assert_eq!(lp.run(&mut ctx), Ok(()), "[{n}]");
    let mut expected: Vec<usize> = (0..ORDER_TIMERS).filter(|i| !ctx.cancelled.contains(i)).collect();
    // A stable sort by deadline keeps insertion order among ties.
    expected.sort_by_key(|&i| ctx.offsets[i]);
    assert_eq!(ctx.fired, expected, "[{n}] offsets {:?}", ctx.offsets);
    assert_eq!(lp.timer_count(), 0, "[{n}]");
}

fn cancel_twice_returns_true_then_false(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let id = lp.after(Duration::from_secs(60), 0, far).unwrap();
    assert!(lp.is_live(id) && lp.is_pending(id), "[{n}]");
    assert!(lp.remove(id), "[{n}] first cancel");
    assert!(!lp.remove(id), "[{n}] second cancel");
    assert!(!lp.is_live(id), "[{n}]");
    assert_eq!(lp.timer_count(), 0, "[{n}]");
    let mut ctx = Ctx::default();
    assert_eq!(lp.run(&mut ctx), Ok(()), "[{n}] nothing left: run returns");
    assert!(ctx.fired.is_empty(), "[{n}]");
}

fn cancel_of_a_fired_one_shot_returns_false(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let id = lp.after(Duration::ZERO, 0, plain).unwrap();
    let mut ctx = Ctx::default();
    assert_eq!(pass(cfg, &mut lp, &mut ctx, 1, PATIENCE), 1, "[{n}]");
    assert!(!lp.is_live(id), "[{n}] a fired one-shot is gone");
    assert_eq!(lp.deadline(id), None, "[{n}]");
    assert!(!lp.remove(id), "[{n}]");
}

type SmallLp<const T: usize> = Loop<Ctx, 2, T>;

fn small_a<const T: usize>(_lp: &mut SmallLp<T>, ctx: &mut Ctx, _id: TimerEvent) {
    ctx.fired.push((ctx.pass, "a"));
}

fn small_b<const T: usize>(_lp: &mut SmallLp<T>, ctx: &mut Ctx, _id: TimerEvent) {
    ctx.fired.push((ctx.pass, "b"));
}

fn old_id_cannot_touch_the_new_timer<const T: usize>(cfg: &Config) {
    let n = cfg.name;
    let mut lp: SmallLp<T> = cfg.new_loop();
    let mut ctx = Ctx::default();
    let mut stale = Vec::new();
    for round in 0..3 * T {
        // Cancelled ids.
        let old = lp.after(Duration::from_secs(60), 0, small_a::<T>).unwrap();
        assert!(lp.remove(old), "[{n}] T={T}");
        stale.push(old);
        // Fired ids.
        let fired = lp.after(Duration::ZERO, 0, small_a::<T>).unwrap();
        ctx.pass = round;
        assert_eq!(lp.run_once(&mut ctx, PATIENCE), Ok(1), "[{n}] T={T}");
        stale.push(fired);
    }
    // Fill the table: every slot now holds a new timer.
    let new: Vec<TimerId> = (0..T).map(|_| lp.after(Duration::from_secs(60), 0, small_b::<T>).unwrap()).collect();
    for &old in &stale {
        assert!(!new.contains(&old), "[{n}] T={T}: a new timer got an old id");
        assert!(!lp.remove(old), "[{n}] T={T}: stale id cancelled a new timer");
        assert_eq!(lp.rearm(old, Duration::ZERO), Err(linux_event::Error::NotFound), "[{n}] T={T}");
        assert_eq!(lp.set_interval(old, None), Err(linux_event::Error::NotFound), "[{n}] T={T}");
        assert_eq!(lp.set_interval(old, Some(Duration::ZERO)), Err(linux_event::Error::NotFound), "[{n}] T={T}");
        assert_eq!(lp.set_timer_callback(old, small_a::<T>), Err(linux_event::Error::NotFound), "[{n}] T={T}");
        assert_eq!(lp.deadline(old), None, "[{n}] T={T}");
        assert!(!lp.is_live(old) && !lp.is_pending(old), "[{n}] T={T}");
    }
    assert_eq!(lp.timer_count(), T, "[{n}] T={T}");
    for &id in &new {
        assert!(lp.is_pending(id), "[{n}] T={T}: a stale id disturbed a new timer");
        assert!(lp.rearm(id, Duration::ZERO).is_ok(), "[{n}] T={T}");
    }
    ctx.fired.clear();
    ctx.pass = 1000;
    assert_eq!(lp.run_once(&mut ctx, PATIENCE), Ok(T), "[{n}] T={T}");
    assert_eq!(ctx.names(), vec!["b"; T], "[{n}] T={T}: a stale id changed a callback");
}

fn old_timer_id_cannot_touch_a_new_timer_that_reused_its_slot(cfg: &Config) {
    old_id_cannot_touch_the_new_timer::<1>(cfg);
    old_id_cannot_touch_the_new_timer::<2>(cfg);
}

#[derive(Default)]
struct PhaseCtx {
    /// (loop time of the pass, next deadline seen inside the callback)
    ticks: Vec<(Instant, Option<Instant>)>,
}

const PERIOD: Duration = Duration::from_millis(20);
const SLEEPY_TICK: usize = 2;
const TICKS: usize = 7;

fn phase_tick(lp: &mut Loop<PhaseCtx>, ctx: &mut PhaseCtx, ev: TimerEvent) {
    let id = ev.id();
    ctx.ticks.push((lp.now(), lp.deadline(id)));
    if ctx.ticks.len() == SLEEPY_TICK {
        // Late by several periods once.
        std::thread::sleep(PERIOD * 7 / 2);
    }
    if ctx.ticks.len() == TICKS {
        lp.stop();
    }
}

fn periodic_timer_keeps_its_phase_and_skips_missed_ticks_instead_of_bursting(cfg: &Config) {
    let n = cfg.name;
    let _guard = common::watchdog("periodic phase test", 60);
    let mut lp: Loop<PhaseCtx> = cfg.new_loop();
    let id = lp.every(PERIOD, 0, phase_tick).unwrap();
    let first = lp.deadline(id).expect("a new periodic timer is pending");
    assert_eq!(first, lp.now() + PERIOD, "[{n}] first tick one period from now");
    let mut ctx = PhaseCtx::default();
    assert_eq!(lp.run(&mut ctx), Ok(()), "[{n}]");
    assert_eq!(ctx.ticks.len(), TICKS, "[{n}]");
    let period = PERIOD.as_nanos() as u64;
    let mut ks = Vec::new();
    for (i, &(now, next)) in ctx.ticks.iter().enumerate() {
        let next = next.unwrap_or_else(|| panic!("[{n}] tick {i}: periodic timer not pending in its callback"));
        let since = next.as_nanos() - first.as_nanos();
        assert_eq!(since % period, 0, "[{n}] tick {i}: deadline {next:?} is off the grid of {first:?}");
        assert!(next > now, "[{n}] tick {i}: next deadline {next:?} not after the pass time {now:?} (burst)");
        ks.push(since / period);
    }
    for w in ctx.ticks.windows(2) {
        assert!(w[1].0 > w[0].0, "[{n}] two ticks in one pass: {:?}", ctx.ticks);
    }
    for w in ks.windows(2) {
        assert!(w[1] > w[0], "[{n}] deadlines not increasing: {ks:?}");
    }
    // The sleepy callback saw the ordinary next tick; the pass after it
    // was at least 3.5 periods late, so at least 3 ticks were skipped.
    assert!(ks[SLEEPY_TICK] >= ks[SLEEPY_TICK - 1] + 3, "[{n}] missed ticks not skipped: {ks:?}");
    assert!(lp.remove(id), "[{n}]");
}

fn count_tick(_lp: &mut Lp, ctx: &mut Ctx, _id: TimerEvent) {
    ctx.fired.push((ctx.pass, "tick"));
}

fn zero_interval_timer_fires_on_every_pass(cfg: &Config) {
    let n = cfg.name;
    for how in ["every(ZERO)", "set_interval(Some(ZERO))"] {
        let mut lp: Lp = cfg.new_loop();
        let id = if how == "every(ZERO)" {
            lp.every(Duration::ZERO, 0, count_tick).unwrap()
        } else {
            let id = lp.after(Duration::from_secs(60), 0, count_tick).unwrap();
            lp.set_interval(id, Some(Duration::ZERO)).unwrap();
            id
        };
        let mut ctx = Ctx::default();
        for p in 1..=25 {
            // Due at once on every pass: a pass that does not wait fires it.
            assert_eq!(pass(cfg, &mut lp, &mut ctx, p, NO_WAIT), 1, "[{n}] {how}: pass {p}");
        }
        let passes: Vec<usize> = ctx.fired.iter().map(|f| f.0).collect();
        assert_eq!(passes, (1..=25).collect::<Vec<_>>(), "[{n}] {how}");
        assert!(lp.is_pending(id), "[{n}] {how}");
        lp.set_interval(id, None).unwrap();
        assert_eq!(pass(cfg, &mut lp, &mut ctx, 26, NO_WAIT), 0, "[{n}] {how}: disabled");
    }
}

fn disabled_timer_keeps_its_id_does_not_fire_and_rearm_enables_it(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let id = lp.after(Duration::from_millis(1), 0, plain).unwrap();
    lp.set_interval(id, None).unwrap();
    assert!(lp.is_live(id), "[{n}] disabled timer keeps its id");
    assert!(!lp.is_pending(id), "[{n}]");
    assert_eq!(lp.deadline(id), None, "[{n}]");
    assert_eq!(lp.timer_count(), 1, "[{n}]");
    let mut ctx = Ctx::default();
    // Long past its old deadline, it still does not fire.
    assert_eq!(pass(cfg, &mut lp, &mut ctx, 1, Some(Duration::from_millis(30))), 0, "[{n}]");
    // Nothing pending: run returns without firing it.
    assert_eq!(lp.run(&mut ctx), Ok(()), "[{n}]");
    assert!(ctx.fired.is_empty(), "[{n}] a disabled timer fired: {:?}", ctx.fired);
    assert!(lp.is_live(id), "[{n}]");

    lp.rearm(id, Duration::ZERO).unwrap();
    assert!(lp.is_pending(id), "[{n}]");
    assert_eq!(pass(cfg, &mut lp, &mut ctx, 2, PATIENCE), 1, "[{n}]");
    assert_eq!(ctx.fired, [(2, "plain")], "[{n}]");
    assert!(!lp.is_live(id), "[{n}] a re-armed one-shot is freed after it fires");
}

fn disabled_periodic_timer_resumes_with_set_interval(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let id = lp.every(Duration::from_millis(1), 0, count_tick).unwrap();
    lp.set_interval(id, None).unwrap();
    let mut ctx = Ctx::default();
    assert_eq!(lp.run(&mut ctx), Ok(()), "[{n}] nothing pending");
    assert!(ctx.fired.is_empty(), "[{n}]");
    lp.set_interval(id, Some(Duration::from_millis(1))).unwrap();
    assert!(lp.is_pending(id), "[{n}]");
    let mut ctx = Ctx::default();
    for p in 1..=3 {
        let before = ctx.fired.len();
        while ctx.fired.len() == before {
            pass(cfg, &mut lp, &mut ctx, p, PATIENCE);
        }
    }
    assert!(lp.is_live(id), "[{n}] a periodic timer stays live");
    assert!(lp.remove(id), "[{n}]");
}

fn deadlines_are_exact_and_rearm_keeps_the_id(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let d = Duration::from_secs(30);
    let id = lp.after(d, 0, plain).unwrap();
    // Delays count from the loop's cached time.
    assert_eq!(lp.deadline(id), Some(lp.now() + d), "[{n}]");
    let at = lp.update_now().unwrap() + Duration::from_secs(40);
    let id2 = lp.at(at, 0, far).unwrap();
    assert_eq!(lp.deadline(id2), Some(at), "[{n}]");
    lp.rearm(id, Duration::from_secs(50)).unwrap();
    assert_eq!(lp.deadline(id), Some(lp.now() + Duration::from_secs(50)), "[{n}]");
    // A deadline in the past is kept (outside a pass) and fires next pass.
    let id3 = lp.at(Instant::ZERO, 0, second).unwrap();
    assert_eq!(lp.deadline(id3), Some(Instant::ZERO), "[{n}]");
    let mut ctx = Ctx::default();
    assert_eq!(pass(cfg, &mut lp, &mut ctx, 1, PATIENCE), 1, "[{n}]");
    assert_eq!(ctx.names(), ["second"], "[{n}]");
    lp.rearm(id2, Duration::ZERO).unwrap();
    assert_eq!(pass(cfg, &mut lp, &mut ctx, 2, PATIENCE), 1, "[{n}]");
    assert_eq!(ctx.names(), ["second", "far"], "[{n}]");
    assert!(lp.is_pending(id), "[{n}]");
}

fn unwatch_self(lp: &mut Lp, ctx: &mut Ctx, ev: WatchEvent) {
    ctx.fired.push((ctx.pass, "io"));
    lp.remove(ev.id());
}

fn timer_added_earlier_than_the_deadline_being_waited_for_fires_first(cfg: &Config) {
    let n = cfg.name;
    let _guard = common::watchdog("a wait for a near timer behind a far one", 120);
    let mut lp: Lp = cfg.new_loop();
    let far_id = lp.after(Duration::from_secs(60), 0, far).unwrap();
    // One pass that waits with the far deadline (a timerfd gets armed
    // for it), ended by an fd.
    let (r, w) = pipe();
    write_once(w.as_raw_fd(), b"x");
    lp.watch(r.as_raw_fd(), Interest::READ, 0, unwatch_self).unwrap();
    let mut ctx = Ctx::default();
    assert_eq!(pass(cfg, &mut lp, &mut ctx, 1, None), 1, "[{n}]");
    // Now a nearer deadline: the next wait must end at it, not at 60 s.
    lp.after(Duration::from_millis(5), 0, plain).unwrap();
    let mut p = 2;
    while ctx.fired.len() < 2 {
        pass(cfg, &mut lp, &mut ctx, p, None);
        p += 1;
        assert!(p < 100, "[{n}] {:?}", ctx.fired);
    }
    assert_eq!(ctx.names(), ["io", "plain"], "[{n}] the far timer fired first");
    assert!(lp.is_pending(far_id), "[{n}]");
}

fn delays_count_from_the_loops_cached_time_and_update_now_refreshes_it(cfg: &Config) {
    // libev's rule: scheduling never reads the clock. A program that was
    // busy outside the loop refreshes the loop's time first.
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let created = lp.now();
    let idle = Duration::from_millis(30);
    std::thread::sleep(idle);
    let d = Duration::from_millis(100);
    for (how, id) in [("after", lp.after(d, 0, plain).unwrap()), ("every", lp.every(d, 0, plain).unwrap())] {
        assert_eq!(lp.deadline(id), Some(created + d), "[{n}] {how} counts from the cached now");
    }
    let fresh = lp.update_now().unwrap();
    assert!(fresh >= created + idle, "[{n}]");
    let id = lp.after(d, 0, plain).unwrap();
    assert_eq!(lp.deadline(id), Some(fresh + d), "[{n}]");
    lp.rearm(id, Duration::from_secs(60)).unwrap();
    assert_eq!(lp.deadline(id), Some(fresh + Duration::from_secs(60)), "[{n}] rearm too");
}

fn past_deadlines_keep_their_order(cfg: &Config) {
    // Outside checks: `at()` moved every past deadline up to now, so past
    // deadlines fired in insertion order instead of deadline order.
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let now = lp.update_now().unwrap();
    let past = |ms: u64| Instant::from_nanos(now.as_nanos().saturating_sub(ms * 1_000_000));
    lp.at(past(1), 0, third).unwrap();
    lp.at(past(3), 0, plain).unwrap();
    lp.at(past(2), 0, second).unwrap();
    let mut ctx = Ctx::default();
    assert_eq!(pass(cfg, &mut lp, &mut ctx, 1, NO_WAIT), 3, "[{n}]");
    assert_eq!(ctx.names(), ["plain", "second", "third"], "[{n}] deadline order");
}

backend_tests!(
    stop_inside_a_timer_callback_makes_run_return_without_waiting_again,
    stop_before_run_makes_run_return_at_once,
    run_returns_once_nothing_is_left_to_wait_for,
    zero_delay_timer_added_from_a_timer_callback_fires_on_the_next_pass_not_the_current_one,
    zero_delay_timer_added_from_a_watcher_callback_fires_on_the_next_pass_not_the_current_one,
    timer_rearmed_with_zero_delay_inside_its_callback_fires_once_per_pass,
    timers_fire_in_deadline_order_with_fifo_ties,
    cancel_twice_returns_true_then_false,
    cancel_of_a_fired_one_shot_returns_false,
    old_timer_id_cannot_touch_a_new_timer_that_reused_its_slot,
    periodic_timer_keeps_its_phase_and_skips_missed_ticks_instead_of_bursting,
    zero_interval_timer_fires_on_every_pass,
    disabled_timer_keeps_its_id_does_not_fire_and_rearm_enables_it,
    disabled_periodic_timer_resumes_with_set_interval,
    deadlines_are_exact_and_rearm_keeps_the_id,
    timer_added_earlier_than_the_deadline_being_waited_for_fires_first,
    delays_count_from_the_loops_cached_time_and_update_now_refreshes_it,
    past_deadlines_keep_their_order,
);
