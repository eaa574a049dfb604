//! Workload 2, timers: `n` timers inserted about an hour away, re-armed in
//! a shuffled order, cancelled in another shuffled order; then `n` timers
//! inserted under a millisecond away and, once all are due, fired in one
//! pass. Per operation.
//!
//! Three variants per size, the same plan for every implementation: the
//! insert, re-arm and cancel phases run inside a callback of a new loop
//! (`1k`), from `main` on a new loop (`1k main`), or from `main` on one loop
//! kept across the repetitions (`1k reused`: its free slots come back in
//! the order the last repetition freed them). Every implementation
//! schedules relative to its cached loop time (libev and linux-event never
//! read the clock to schedule; libevent reads it per call outside its
//! callbacks). Deadlines and orders come from one seed per repetition, the
//! same for every implementation. mio and the raw loop have no timers.

use crate::ffi;
use crate::measure::{Rng, Span, mark};
use crate::workload::{Case, Config, Impl, Sample, Workload};
use linux_event::backend::Epoll;
use linux_event::{Loop, TimerEvent, TimerId};
use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// The deadlines and orders of one run.
pub struct Plan {
    /// Insert: now + far[i], an hour and up to 100 s away.
    pub far: Vec<u64>,
    /// Re-arm timer order_rearm[i] to now + rearm[i].
    pub rearm: Vec<u64>,
    /// The shuffled re-arm order.
    pub order_rearm: Vec<u32>,
    /// The shuffled cancel order.
    pub order_cancel: Vec<u32>,
    /// Fire: now + near[i], under a millisecond away.
    pub near: Vec<u64>,
}

impl Plan {
    /// The plan for `n` timers from `seed`.
    pub fn new(n: usize, seed: u64) -> Plan {
        let mut rng = Rng::new(seed);
        let hour = 3_600_000_000_000u64;
        let far = (0..n).map(|_| hour + rng.below(100_000_000_000)).collect();
        let rearm = (0..n).map(|_| hour + rng.below(100_000_000_000)).collect();
        let order_rearm = rng.permutation(n);
        let order_cancel = rng.permutation(n);
        let near = (0..n).map(|_| rng.below(1_000_000)).collect();
        Plan { far, rearm, order_rearm, order_cancel, near }
    }

    fn n(&self) -> usize {
        self.far.len()
    }
}

/// How a run drives the timers (the same for every implementation).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A new loop per run; the calls are made inside a callback of the loop.
    Callback,
    /// A new loop per run; the calls are made from `main`, outside any
    /// callback, before the loop runs.
    Main,
    /// One loop kept across the repetitions of a case (its free slots come
    /// back in the order the previous repetition freed them); the calls are
    /// made from `main`.
    Reused,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::Callback, Mode::Main, Mode::Reused];

    fn suffix(self) -> &'static str {
        match self {
            Mode::Callback => "",
            Mode::Main => " main",
            Mode::Reused => " reused",
        }
    }

    /// The command-line name (`--child timers IMPL N MODE`).
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "callback" | "cb" => Some(Mode::Callback),
            "main" => Some(Mode::Main),
            "reused" => Some(Mode::Reused),
            _ => None,
        }
    }

    fn outside_callbacks(self) -> bool {
        self != Mode::Callback
    }
}

// ---- linux-event ---------------------------------------------------------

struct Ctx {
    plan: Rc<Plan>,
    ids: Vec<TimerId>,
    res: ffi::TimerResult,
    fired: usize,
    failures: usize,
}

type L<const T: usize> = Loop<Ctx, 4, T>;

fn far_cb<const T: usize>(_: &mut L<T>, _: &mut Ctx, _: TimerEvent) {}

fn fire_cb<const T: usize>(lp: &mut L<T>, c: &mut Ctx, _: TimerEvent) {
    c.fired += 1;
    if c.fired == c.plan.n() {
        lp.stop();
    }
}

// One function per phase (never inlined), so a profile names each; the C
// drivers do the same.
#[inline(never)]
fn phase_insert<const T: usize>(lp: &mut L<T>, c: &mut Ctx) {
    let p = Rc::clone(&c.plan);
    let m = mark();
    for &d in &p.far {
        match lp.after(Duration::from_nanos(d), 0, far_cb::<T>) {
            Ok(id) => c.ids.push(id),
            Err(_) => c.failures += 1,
        }
    }
    c.res.insert = m.span();
}

#[inline(never)]
fn phase_rearm<const T: usize>(lp: &mut L<T>, c: &mut Ctx) {
    let p = Rc::clone(&c.plan);
    let m = mark();
    for (&i, &d) in p.order_rearm.iter().zip(&p.rearm) {
        if lp.rearm(c.ids[i as usize], Duration::from_nanos(d)).is_err() {
            c.failures += 1;
        }
    }
    c.res.rearm = m.span();
}

#[inline(never)]
fn phase_cancel<const T: usize>(lp: &mut L<T>, c: &mut Ctx) {
    let p = Rc::clone(&c.plan);
    let m = mark();
    for &j in &p.order_cancel {
        if !lp.remove(c.ids[j as usize]) {
            c.failures += 1;
        }
    }
    c.res.cancel = m.span();
}

fn phases<const T: usize>(lp: &mut L<T>, c: &mut Ctx) {
    phase_insert(lp, c);
    phase_rearm(lp, c);
    phase_cancel(lp, c);
    let p = Rc::clone(&c.plan);
    for &d in &p.near {
        if lp.after(Duration::from_nanos(d), 0, fire_cb::<T>).is_err() {
            c.failures += 1;
        }
    }
}

fn driver<const T: usize>(lp: &mut L<T>, c: &mut Ctx, _: TimerEvent) {
    phases(lp, c);
    lp.stop();
}

/// The four phases on `lp`, then the fire phase.
fn ours_on<const T: usize>(lp: &mut L<T>, c: &mut Ctx, mode: Mode) -> Result<(), String> {
    let e = |e: linux_event::Error| format!("linux-event: {e:?}");
    if mode.outside_callbacks() {
        phases(lp, c);
    } else {
        lp.after(Duration::ZERO, 0, driver::<T>).map_err(e)?;
        lp.run(c).map_err(e)?;
    }
    std::thread::sleep(Duration::from_millis(2));
    let m = mark();
    lp.run(c).map_err(e)?;
    c.res.fire = m.span();
    Ok(())
}

thread_local! {
    /// The loop kept across repetitions (`Mode::Reused`), by capacity.
    static KEPT: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

#[inline(never)]
fn ours_with<const T: usize>(plan: Rc<Plan>, mode: Mode, keep: bool) -> Result<ffi::TimerResult, String> {
    let e = |e: linux_event::Error| format!("linux-event: {e:?}");
    let n = plan.n();
    let mut ctx = Ctx { plan, ids: Vec::with_capacity(n), res: Default::default(), fired: 0, failures: 0 };
    if mode == Mode::Reused {
        let kept = KEPT.with(|k| k.borrow_mut().take()).and_then(|b| b.downcast::<L<T>>().ok());
        let mut lp = match kept {
            Some(lp) => lp,
            None => L::<T>::boxed(Epoll::new().map_err(|x| e(x.into()))?).map_err(e)?,
        };
        ours_on(&mut lp, &mut ctx, mode)?;
        if keep {
            KEPT.with(|k| *k.borrow_mut() = Some(lp));
        }
    } else {
        let mut lp: L<T> = Loop::new().map_err(e)?;
        ours_on(&mut lp, &mut ctx, mode)?;
    }
    ctx.res.fired = ctx.fired as i64;
    if ctx.failures > 0 {
        return Err(format!("linux-event: {} timer operations failed", ctx.failures));
    }
    Ok(ctx.res)
}

/// The timer capacity is `n` plus the driver timer.
fn ours(plan: Rc<Plan>, mode: Mode, keep: bool) -> Result<ffi::TimerResult, String> {
    match plan.n() {
        1000 => ours_with::<1001>(plan, mode, keep),
        10_000 => ours_with::<10_001>(plan, mode, keep),
        100_000 => ours_with::<100_001>(plan, mode, keep),
        1_000_000 => ours_with::<1_000_001>(plan, mode, keep),
        n => Err(format!("no linux-event capacity for {n} timers")),
    }
}

/// Runs the four phases on `imp`. With `Mode::Reused` and `keep`, the loop
/// is kept for the next run with the same `n`; without `keep` it is freed.
pub fn run_once(imp: Impl, plan: Rc<Plan>, mode: Mode, keep: bool) -> Result<ffi::TimerResult, String> {
    let keep = keep && mode == Mode::Reused;
    let args = ffi::TimerArgs {
        n: plan.n() as i32,
        far: plan.far.as_ptr(),
        rearm: plan.rearm.as_ptr(),
        order_rearm: plan.order_rearm.as_ptr(),
        order_cancel: plan.order_cancel.as_ptr(),
        near: plan.near.as_ptr(),
        from_main: i32::from(mode.outside_callbacks()),
        keep: i32::from(keep),
    };
    let mut res = ffi::TimerResult::default();
    // SAFETY: every array in `args` has n entries and outlives the call.
    let rc = match imp {
        Impl::Ours => return ours(plan, mode, keep),
        Impl::Libev => unsafe { ffi::bev_timers(&args, &mut res) },
        Impl::Libevent => unsafe { ffi::bevent_timers(&args, &mut res) },
        Impl::Mio | Impl::Raw => return Err(format!("{} has no timers", imp.name())),
    };
    if rc != 0 {
        return Err(format!("{} timers failed", imp.name()));
    }
    Ok(res)
}

/// Workload 2.
pub struct Timers;

impl Workload for Timers {
    fn number(&self) -> u32 {
        2
    }

    fn id(&self) -> &'static str {
        "timers"
    }

    fn describe(&self) -> &'static str {
        "timers: insert, re-arm and cancel in shuffled orders, fire all due; per operation. `1k`: from a callback \
         of a new loop; `main`: from main, new loop; `reused`: from main, one loop kept across repetitions"
    }

    fn impls(&self) -> &'static [Impl] {
        &[Impl::Ours, Impl::Libev, Impl::Libevent]
    }

    fn not_applicable(&self) -> &'static [(Impl, &'static str)] {
        &[(Impl::Mio, "mio has no timers"), (Impl::Raw, "the raw loop has no timers")]
    }

    fn cases(&self, cfg: &Config) -> Vec<Case> {
        let mut cases = Vec::new();
        for n in [1000u64, 10_000, 100_000, 1_000_000] {
            for (m, mode) in Mode::ALL.iter().enumerate() {
                let reps = if n >= 1_000_000 { cfg.reps(5, 1) } else { cfg.reps(9, 3) };
                let label = format!("{}k{}", n / 1000, mode.suffix());
                cases.push(Case { label, param: n | (m as u64) << 32, reps });
            }
        }
        cases
    }

    fn run(&self, case: &Case, rep: usize, imp: Impl, _cfg: &Config) -> Result<Vec<Sample>, String> {
        let n = (case.param & 0xffff_ffff) as usize;
        let mode = Mode::ALL[(case.param >> 32) as usize];
        let plan = Rc::new(Plan::new(n, n as u64 ^ ((rep as u64 + 1) << 40)));
        let r = run_once(imp, plan, mode, rep + 1 < case.reps)?;
        if r.fired != n as i64 {
            return Err(format!("{}: {} of {n} timers fired", imp.name(), r.fired));
        }
        let ops = n as f64;
        let s = |metric, span: Span| Sample::per_op(metric, ops, span);
        Ok(vec![s("insert", r.insert), s("re-arm", r.rearm), s("cancel", r.cancel), s("fire", r.fire)])
    }
}
