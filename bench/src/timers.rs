//! Workload 2, timers: `n` timers inserted about an hour away, re-armed in
//! a shuffled order, cancelled in another shuffled order; then `n` timers
//! inserted under a millisecond away and, once all are due, fired in one
//! pass. Per operation.
//!
//! The insert, re-arm and cancel phases run inside a callback of the loop
//! (where timer operations happen in a real program), so every
//! implementation schedules from its cached loop time and none reads the
//! clock per operation. Deadlines and orders come from one seed per
//! repetition, the same for every implementation. mio and the raw loop have
//! no timers.

use crate::ffi;
use crate::measure::{Rng, Span, mark};
use crate::workload::{Case, Config, Impl, Sample, Workload};
use linux_event::{Loop, TimerEvent, TimerId};
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

// ---- linux-event ---------------------------------------------------------

struct Ctx<'a> {
    plan: &'a Plan,
    ids: Vec<TimerId>,
    res: ffi::TimerResult,
    fired: usize,
    failures: usize,
}

type L<'a, const T: usize> = Loop<Ctx<'a>, 4, T>;

fn far_cb<const T: usize>(_: &mut L<'_, T>, _: &mut Ctx<'_>, _: TimerEvent) {}

fn fire_cb<const T: usize>(lp: &mut L<'_, T>, c: &mut Ctx<'_>, _: TimerEvent) {
    c.fired += 1;
    if c.fired == c.plan.n() {
        lp.stop();
    }
}

fn driver<const T: usize>(lp: &mut L<'_, T>, c: &mut Ctx<'_>, _: TimerEvent) {
    let p = c.plan;
    let n = p.n();
    let m = mark();
    for &d in &p.far {
        match lp.after(Duration::from_nanos(d), 0, far_cb::<T>) {
            Ok(id) => c.ids.push(id),
            Err(_) => c.failures += 1,
        }
    }
    c.res.insert = m.span();
    let m = mark();
    for i in 0..n {
        if lp.rearm(c.ids[p.order_rearm[i] as usize], Duration::from_nanos(p.rearm[i])).is_err() {
            c.failures += 1;
        }
    }
    c.res.rearm = m.span();
    let m = mark();
    for &j in &p.order_cancel {
        if !lp.remove(c.ids[j as usize]) {
            c.failures += 1;
        }
    }
    c.res.cancel = m.span();
    for &d in &p.near {
        if lp.after(Duration::from_nanos(d), 0, fire_cb::<T>).is_err() {
            c.failures += 1;
        }
    }
    lp.stop();
}

#[inline(never)]
fn ours_with<const T: usize>(plan: &Plan) -> Result<ffi::TimerResult, String> {
    let e = |e: linux_event::Error| format!("linux-event: {e:?}");
    let mut lp: L<'_, T> = Loop::new().map_err(e)?;
    let mut ctx = Ctx { plan, ids: Vec::with_capacity(plan.n()), res: Default::default(), fired: 0, failures: 0 };
    lp.after(Duration::ZERO, 0, driver::<T>).map_err(e)?;
    lp.run(&mut ctx).map_err(e)?;
    std::thread::sleep(Duration::from_millis(2));
    let m = mark();
    lp.run(&mut ctx).map_err(e)?;
    ctx.res.fire = m.span();
    ctx.res.fired = ctx.fired as i64;
    if ctx.failures > 0 {
        return Err(format!("linux-event: {} timer operations failed", ctx.failures));
    }
    Ok(ctx.res)
}

/// The timer capacity is `n` plus the driver timer.
fn ours(plan: &Plan) -> Result<ffi::TimerResult, String> {
    match plan.n() {
        1000 => ours_with::<1001>(plan),
        10_000 => ours_with::<10_001>(plan),
        100_000 => ours_with::<100_001>(plan),
        1_000_000 => ours_with::<1_000_001>(plan),
        n => Err(format!("no linux-event capacity for {n} timers")),
    }
}

/// Runs the four phases on `imp`.
pub fn run_once(imp: Impl, plan: &Plan) -> Result<ffi::TimerResult, String> {
    let args = ffi::TimerArgs {
        n: plan.n() as i32,
        far: plan.far.as_ptr(),
        rearm: plan.rearm.as_ptr(),
        order_rearm: plan.order_rearm.as_ptr(),
        order_cancel: plan.order_cancel.as_ptr(),
        near: plan.near.as_ptr(),
    };
    let mut res = ffi::TimerResult::default();
    // SAFETY: every array in `args` has n entries and outlives the call.
    let rc = match imp {
        Impl::Ours => return ours(plan),
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
        "timers: insert, re-arm and cancel in shuffled orders (from a callback), fire all due; per operation"
    }

    fn impls(&self) -> &'static [Impl] {
        &[Impl::Ours, Impl::Libev, Impl::Libevent]
    }

    fn not_applicable(&self) -> &'static [(Impl, &'static str)] {
        &[(Impl::Mio, "mio has no timers"), (Impl::Raw, "the raw loop has no timers")]
    }

    fn cases(&self, cfg: &Config) -> Vec<Case> {
        [1000u64, 10_000, 100_000, 1_000_000]
            .iter()
            .map(|&n| {
                let reps = if n >= 1_000_000 { cfg.reps(5, 1) } else { cfg.reps(9, 3) };
                Case { label: format!("{}k", n / 1000), param: n, reps }
            })
            .collect()
    }

    fn run(&self, case: &Case, rep: usize, imp: Impl, _cfg: &Config) -> Result<Vec<Sample>, String> {
        let n = case.param as usize;
        let plan = Plan::new(n, case.param ^ ((rep as u64 + 1) << 40));
        let r = run_once(imp, &plan)?;
        if r.fired != n as i64 {
            return Err(format!("{}: {} of {n} timers fired", imp.name(), r.fired));
        }
        let ops = n as f64;
        let s = |metric, span: Span| Sample::per_op(metric, ops, span);
        Ok(vec![s("insert", r.insert), s("re-arm", r.rearm), s("cancel", r.cancel), s("fire", r.fire)])
    }
}
