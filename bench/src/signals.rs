//! Workload 4, signals: the loop's thread sends itself SIGUSR1 with
//! `tgkill`; the signal is delivered through the loop to a callback, which
//! sends the next one. Per signal: the send, the delivery, the callback.
//!
//! linux-event: `Loop::signal` (signalfd); libev: `ev_signal` (a handler
//! and the loop's wake-up pipe, libev's default; `EVFLAG_SIGNALFD` is
//! opt-in); libevent: `evsignal` (a handler writing to a socketpair); raw:
//! signalfd in the epoll set. mio has no signal API: n/a.
//!
//! `tgkill` aims at the loop's thread, so no other thread of the bench
//! can take the signal; main() also blocks SIGUSR1 before it starts any
//! thread, and every run leaves the worker thread that way: SIGUSR1 blocked
//! and none pending (a run that leaves one pending fails).

use crate::ffi;
use crate::measure::{Span, mark};
use crate::workload::{Case, Config, Impl, Sample, Workload};
use linux_event::{Loop, SignalEvent, sys};

/// The signal sent (`BENCH_SIGNAL` in `c/bench.h`).
pub const SIGNAL: i32 = sys::SIGUSR1;

fn sigset(signo: i32) -> libc::sigset_t {
    // SAFETY: a zeroed sigset_t is valid storage; sigemptyset/sigaddset fill it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signo);
        set
    }
}

/// Blocks [`SIGNAL`] in the calling thread (and in threads it starts later).
pub fn block() {
    let set = sigset(SIGNAL);
    // SAFETY: `set` is a valid sigset; the old mask is not wanted.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// Blocks [`SIGNAL`] again and takes any that is pending; returns how many
/// were (0 after a clean run).
fn settle() -> usize {
    block();
    let set = sigset(SIGNAL);
    let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    let mut stray = 0;
    // SAFETY: `set` and `zero` are valid; the siginfo is not wanted.
    while unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) } == SIGNAL {
        stray += 1;
    }
    stray
}

// ---- linux-event ---------------------------------------------------------

struct Ctx {
    n: u64,
    count: u64,
    pid: i32,
    tid: i32,
}

fn on_signal(lp: &mut Loop<Ctx, 4, 4>, c: &mut Ctx, ev: SignalEvent) {
    c.count += u64::from(ev.count());
    if c.count < c.n {
        let _ = sys::tgkill(c.pid, c.tid, SIGNAL);
    } else {
        lp.stop();
    }
}

fn ours(n: u64) -> Result<(u64, Span), String> {
    let e = |e: linux_event::Error| format!("linux-event: {e:?}");
    let mut lp: Loop<Ctx, 4, 4> = Loop::new().map_err(e)?;
    lp.signal(SIGNAL, 0, on_signal).map_err(e)?;
    let mut ctx = Ctx { n, count: 0, pid: sys::getpid(), tid: sys::gettid() };
    let m = mark();
    sys::tgkill(ctx.pid, ctx.tid, SIGNAL).map_err(|e| format!("tgkill: {e:?}"))?;
    lp.run(&mut ctx).map_err(e)?;
    Ok((ctx.count, m.span()))
}

// ---- dispatch --------------------------------------------------------------

/// Sends and delivers `n` signals on `imp`; returns the signals the
/// callbacks counted and the time from the first send to the last callback.
pub fn run_once(imp: Impl, n: u64) -> Result<(u64, Span), String> {
    let mut span = Span::default();
    // SAFETY: `span` is writable for the call.
    let c = |f: unsafe extern "C" fn(i64, *mut Span) -> i64, span: &mut Span| unsafe { f(n as i64, span) };
    let got = match imp {
        Impl::Ours => ours(n).map(|(count, span)| (count as i64, span)),
        Impl::Libev => Ok((c(ffi::bev_signals, &mut span), span)),
        Impl::Libevent => Ok((c(ffi::bevent_signals, &mut span), span)),
        Impl::Raw => Ok((c(ffi::braw_signals, &mut span), span)),
        Impl::Mio => Err("mio has no signal API".to_string()),
    };
    let stray = settle();
    let (count, span) = got?;
    if count < 0 {
        return Err(format!("{} signals failed", imp.name()));
    }
    if stray > 0 {
        return Err(format!("{}: {stray} signal(s) left pending", imp.name()));
    }
    Ok((count as u64, span))
}

/// Workload 4.
pub struct Signals;

impl Workload for Signals {
    fn number(&self) -> u32 {
        4
    }

    fn id(&self) -> &'static str {
        "signals"
    }

    fn describe(&self) -> &'static str {
        "signals: SIGUSR1 sent with tgkill to the loop's own thread, the next one from the callback of the previous; \
         per signal (send, delivery through the loop, callback)"
    }

    fn impls(&self) -> &'static [Impl] {
        &[Impl::Ours, Impl::Libev, Impl::Libevent, Impl::Raw]
    }

    fn not_applicable(&self) -> &'static [(Impl, &'static str)] {
        &[(Impl::Mio, "mio has no signal API")]
    }

    fn cases(&self, cfg: &Config) -> Vec<Case> {
        let n = if cfg.quick { 5_000 } else { 20_000 };
        vec![Case { label: "SIGUSR1".into(), param: n, reps: cfg.reps(9, 3) }]
    }

    fn run(&self, case: &Case, _rep: usize, imp: Impl, _cfg: &Config) -> Result<Vec<Sample>, String> {
        let n = case.param;
        let (count, span) = run_once(imp, n)?;
        if count != n {
            return Err(format!("{}: {count} of {n} signals delivered", imp.name()));
        }
        Ok(vec![Sample::per_op("signal", n as f64, span)])
    }
}
