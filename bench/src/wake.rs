//! Workload 3, cross-thread wake-ups.
//!
//! - ping-pong: two threads (pinned to two cores), each with its loop and
//!   its waker; each wake-up callback wakes the other loop. Per round trip;
//!   CPU is both threads' added.
//! - pummel: a sender thread signals one loop as fast as it can for a fixed
//!   time. Reported: per send (the sender's wall and CPU), per callback (the
//!   sender's window divided by the loop's callbacks; the loop thread's CPU),
//!   sends per callback, and the write system calls the sender made per
//!   second of its window (`syscw` of `/proc/thread-self/io`: the wake-ups
//!   it paid for, which is what makes a send expensive).
//!
//! linux-event: `Waker::signal` and `on_wake`; libev: `ev_async_send`;
//! libevent: `event_active` from another thread (pthreads locking on);
//! mio: `mio::Waker`; raw: an eventfd written on every signal.

use crate::ffi::{self, PingpongResult, PummelResult};
use crate::measure::{Span, mark, pin, thread_writes, wall_ns};
use crate::workload::{Case, Config, Impl, Sample, Workload};
use linux_event::{Loop, Waker};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;

// ---- linux-event ---------------------------------------------------------

struct PpCtx {
    peer: Waker,
    leader: bool,
    count: i64,
    rounds: i64,
    done: Arc<AtomicBool>,
}

fn pp_side(
    cpu: i32,
    leader: bool,
    rounds: i64,
    done: Arc<AtomicBool>,
    mine: mpsc::Sender<Waker>,
    theirs: mpsc::Receiver<Waker>,
    barrier: Arc<Barrier>,
) -> Result<(Span, i64), String> {
    let e = |e: linux_event::Error| format!("linux-event: {e:?}");
    pin(cpu);
    let mut lp: Loop<PpCtx, 4, 4> = Loop::new().map_err(e)?;
    mine.send(lp.waker().map_err(e)?).map_err(|e| e.to_string())?;
    let peer = theirs.recv().map_err(|e| e.to_string())?;
    lp.on_wake(0, |lp, c, _count| {
        if c.leader {
            c.count += 1;
            if c.count == c.rounds {
                c.done.store(true, Ordering::SeqCst);
                let _ = c.peer.signal(1);
                lp.stop();
                return;
            }
        } else if c.done.load(Ordering::SeqCst) {
            lp.stop();
            return;
        }
        let _ = c.peer.signal(1);
    })
    .map_err(e)?;
    let mut ctx = PpCtx { peer, leader, count: 0, rounds, done };
    barrier.wait();
    let m = mark();
    if leader {
        peer.signal(1).map_err(e)?;
    }
    let result = lp.run(&mut ctx).map_err(e);
    let span = m.span();
    // Both loops stay alive until both sides stopped signalling.
    barrier.wait();
    result.map(|()| (span, ctx.count))
}

fn ours_pingpong(rounds: i64, cpus: (i32, i32)) -> Result<PingpongResult, String> {
    let (a_tx, a_rx) = mpsc::channel();
    let (b_tx, b_rx) = mpsc::channel();
    let done = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(2));
    let (d, bar) = (done.clone(), barrier.clone());
    let b = thread::spawn(move || pp_side(cpus.1, false, rounds, d, b_tx, a_rx, bar));
    let a = thread::spawn(move || pp_side(cpus.0, true, rounds, done, a_tx, b_rx, barrier));
    let (sa, count) = a.join().map_err(|_| "ping thread panicked")??;
    let (sb, _) = b.join().map_err(|_| "pong thread panicked")??;
    Ok(PingpongResult { span: Span { wall: sa.wall, cpu: sa.cpu + sb.cpu }, rounds: count })
}

struct PummelCtx {
    callbacks: i64,
    received: u64,
    done: Arc<AtomicBool>,
}

fn ours_pummel(duration: u64, cpus: (i32, i32)) -> Result<PummelResult, String> {
    let e = |e: linux_event::Error| format!("linux-event: {e:?}");
    let (tx, rx) = mpsc::channel::<Waker>();
    let done = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(2));
    let (d, bar) = (done.clone(), barrier.clone());
    let sender = thread::spawn(move || -> Result<(i64, Span, i64), String> {
        pin(cpus.1);
        let waker = rx.recv().map_err(|e| e.to_string())?;
        bar.wait();
        let writes = thread_writes();
        let m = mark();
        let mut sends = 0i64;
        loop {
            for _ in 0..256 {
                waker.signal(1).map_err(e)?;
            }
            sends += 256;
            if wall_ns() - m.wall_ns() >= duration {
                break;
            }
        }
        let span = m.span();
        let writes = thread_writes() - writes;
        d.store(true, Ordering::SeqCst);
        waker.signal(1).map_err(e)?;
        bar.wait();
        Ok((sends + 1, span, writes))
    });
    pin(cpus.0);
    let mut lp: Loop<PummelCtx, 4, 4> = Loop::new().map_err(e)?;
    let waker = lp.waker().map_err(e)?;
    lp.on_wake(0, |lp, c, ev| {
        c.callbacks += 1;
        c.received += ev.count();
        if c.done.load(Ordering::SeqCst) {
            lp.stop();
        }
    })
    .map_err(e)?;
    tx.send(waker).map_err(|e| e.to_string())?;
    let mut ctx = PummelCtx { callbacks: 0, received: 0, done };
    barrier.wait();
    let m = mark();
    let run = lp.run(&mut ctx).map_err(e);
    let loop_span = m.span();
    barrier.wait();
    let (sends, sender_span, sender_writes) = sender.join().map_err(|_| "sender panicked")??;
    run?;
    let received = ctx.received + waker.drain().map_err(e)?;
    if received != sends as u64 {
        return Err(format!("linux-event: {sends} signals sent, {received} counted"));
    }
    Ok(PummelResult { sends, callbacks: ctx.callbacks, sender: sender_span, loop_: loop_span, sender_writes })
}

// ---- mio -----------------------------------------------------------------

const WAKE: mio::Token = mio::Token(0);

fn mio_pp_side(
    cpu: i32,
    leader: bool,
    rounds: i64,
    done: Arc<AtomicBool>,
    mine: mpsc::Sender<Arc<mio::Waker>>,
    theirs: mpsc::Receiver<Arc<mio::Waker>>,
    barrier: Arc<Barrier>,
) -> Result<(Span, i64), String> {
    let io = |e: std::io::Error| format!("mio: {e}");
    pin(cpu);
    let mut poll = mio::Poll::new().map_err(io)?;
    let mut events = mio::Events::with_capacity(64);
    mine.send(Arc::new(mio::Waker::new(poll.registry(), WAKE).map_err(io)?)).map_err(|e| e.to_string())?;
    let peer = theirs.recv().map_err(|e| e.to_string())?;
    barrier.wait();
    let m = mark();
    if leader {
        peer.wake().map_err(io)?;
    }
    let mut count = 0;
    'run: loop {
        poll.poll(&mut events, None).map_err(io)?;
        for ev in events.iter() {
            if ev.token() != WAKE {
                continue;
            }
            if leader {
                count += 1;
                if count == rounds {
                    done.store(true, Ordering::SeqCst);
                    peer.wake().map_err(io)?;
                    break 'run;
                }
            } else if done.load(Ordering::SeqCst) {
                break 'run;
            }
            peer.wake().map_err(io)?;
        }
    }
    let span = m.span();
    barrier.wait();
    Ok((span, count))
}

fn mio_pingpong(rounds: i64, cpus: (i32, i32)) -> Result<PingpongResult, String> {
    let (a_tx, a_rx) = mpsc::channel();
    let (b_tx, b_rx) = mpsc::channel();
    let done = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(2));
    let (d, bar) = (done.clone(), barrier.clone());
    let b = thread::spawn(move || mio_pp_side(cpus.1, false, rounds, d, b_tx, a_rx, bar));
    let a = thread::spawn(move || mio_pp_side(cpus.0, true, rounds, done, a_tx, b_rx, barrier));
    let (sa, count) = a.join().map_err(|_| "ping thread panicked")??;
    let (sb, _) = b.join().map_err(|_| "pong thread panicked")??;
    Ok(PingpongResult { span: Span { wall: sa.wall, cpu: sa.cpu + sb.cpu }, rounds: count })
}

fn mio_pummel(duration: u64, cpus: (i32, i32)) -> Result<PummelResult, String> {
    let io = |e: std::io::Error| format!("mio: {e}");
    let (tx, rx) = mpsc::channel::<Arc<mio::Waker>>();
    let done = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(2));
    let (d, bar) = (done.clone(), barrier.clone());
    let sender = thread::spawn(move || -> Result<(i64, Span, i64), String> {
        pin(cpus.1);
        let waker = rx.recv().map_err(|e| e.to_string())?;
        bar.wait();
        let writes = thread_writes();
        let m = mark();
        let mut sends = 0i64;
        loop {
            for _ in 0..256 {
                waker.wake().map_err(io)?;
            }
            sends += 256;
            if wall_ns() - m.wall_ns() >= duration {
                break;
            }
        }
        let span = m.span();
        let writes = thread_writes() - writes;
        d.store(true, Ordering::SeqCst);
        waker.wake().map_err(io)?;
        bar.wait();
        Ok((sends + 1, span, writes))
    });
    pin(cpus.0);
    let mut poll = mio::Poll::new().map_err(io)?;
    let mut events = mio::Events::with_capacity(64);
    tx.send(Arc::new(mio::Waker::new(poll.registry(), WAKE).map_err(io)?)).map_err(|e| e.to_string())?;
    barrier.wait();
    let m = mark();
    let mut callbacks = 0;
    'run: loop {
        poll.poll(&mut events, None).map_err(io)?;
        for ev in events.iter() {
            if ev.token() == WAKE {
                callbacks += 1;
                if done.load(Ordering::SeqCst) {
                    break 'run;
                }
            }
        }
    }
    let loop_span = m.span();
    barrier.wait();
    let (sends, sender_span, sender_writes) = sender.join().map_err(|_| "sender panicked")??;
    Ok(PummelResult { sends, callbacks, sender: sender_span, loop_: loop_span, sender_writes })
}

// ---- dispatch --------------------------------------------------------------

/// Runs `rounds` round trips on `imp`.
pub fn pingpong(imp: Impl, rounds: i64, cpus: (i32, i32)) -> Result<PingpongResult, String> {
    let mut r = PingpongResult::default();
    // SAFETY: `r` is writable for the call.
    let rc = match imp {
        Impl::Ours => return ours_pingpong(rounds, cpus),
        Impl::Mio => return mio_pingpong(rounds, cpus),
        Impl::Libev => unsafe { ffi::bev_pingpong(rounds, cpus.0, cpus.1, &mut r) },
        Impl::Libevent => unsafe { ffi::bevent_pingpong(rounds, cpus.0, cpus.1, &mut r) },
        Impl::Raw => unsafe { ffi::braw_pingpong(rounds, cpus.0, cpus.1, &mut r) },
    };
    if rc != 0 {
        return Err(format!("{} ping-pong failed", imp.name()));
    }
    Ok(r)
}

/// Pummels `imp` for `duration` ns. The pummel runs on its own threads, so
/// the caller's pinning is left alone.
pub fn pummel(imp: Impl, duration: u64, cpus: (i32, i32)) -> Result<PummelResult, String> {
    let mut r = PummelResult::default();
    // SAFETY: `r` is writable for the call.
    let rc = match imp {
        Impl::Ours => return thread::spawn(move || ours_pummel(duration, cpus)).join().map_err(|_| "panicked")?,
        Impl::Mio => return thread::spawn(move || mio_pummel(duration, cpus)).join().map_err(|_| "panicked")?,
        Impl::Libev => unsafe { ffi::bev_pummel(duration, cpus.0, cpus.1, &mut r) },
        Impl::Libevent => unsafe { ffi::bevent_pummel(duration, cpus.0, cpus.1, &mut r) },
        Impl::Raw => unsafe { ffi::braw_pummel(duration, cpus.0, cpus.1, &mut r) },
    };
    if rc != 0 {
        return Err(format!("{} pummel failed", imp.name()));
    }
    Ok(r)
}

/// Workload 3.
pub struct Wake;

impl Workload for Wake {
    fn number(&self) -> u32 {
        3
    }

    fn id(&self) -> &'static str {
        "wake"
    }

    fn describe(&self) -> &'static str {
        "cross-thread wake-ups: ping-pong per round trip (CPU of both threads); pummel per send and per callback"
    }

    fn impls(&self) -> &'static [Impl] {
        &Impl::ALL
    }

    fn cases(&self, cfg: &Config) -> Vec<Case> {
        let rounds = if cfg.quick { 2_000 } else { 20_000 };
        let ms = if cfg.quick { 100 } else { 300 };
        vec![
            Case { label: "ping-pong".into(), param: rounds, reps: cfg.reps(9, 3) },
            Case { label: format!("pummel {ms} ms"), param: ms * 1_000_000, reps: cfg.reps(9, 3) },
        ]
    }

    fn run(&self, case: &Case, _rep: usize, imp: Impl, cfg: &Config) -> Result<Vec<Sample>, String> {
        if case.label == "ping-pong" {
            let rounds = case.param as i64;
            let r = pingpong(imp, rounds, cfg.cpu_pair)?;
            if r.rounds != rounds {
                return Err(format!("{}: {} of {rounds} round trips", imp.name(), r.rounds));
            }
            return Ok(vec![Sample::per_op("round trip", rounds as f64, r.span)]);
        }
        let r = pummel(imp, case.param, cfg.cpu_pair)?;
        let per_callback = Span { wall: r.sender.wall, cpu: r.loop_.cpu };
        Ok(vec![
            Sample::per_op("send", r.sends as f64, r.sender),
            Sample::per_op("callback", r.callbacks as f64, per_callback),
            Sample::number("sends per callback", r.sends as f64 / r.callbacks.max(1) as f64),
            Sample::number(
                "sender write syscalls per second",
                r.sender_writes as f64 * 1e9 / r.sender.wall.max(1) as f64,
            ),
        ])
    }
}
