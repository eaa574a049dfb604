//! Workload 1, chain propagation (the idea of libevent's `test/bench.c`,
//! written fresh): `n` socket fds are watched for reading; `ACTIVE` of
//! them, spaced evenly, get one byte; every read callback reads one byte
//! and writes one to the next fd (through its peer) until `writes` writes
//! were made. An event is one byte delivered: `ACTIVE + writes` per run,
//! one callback, one `read` and (but for the last `ACTIVE`) one `write`.
//!
//! mio is edge-triggered only, so its handler reads one byte at a time
//! until `EAGAIN`, handling each byte as one event: the extra `read` per
//! wake-up is what edge triggering costs with this protocol.

use crate::ffi;
use crate::measure::{Span, mark};
use crate::workload::{Case, Config, Impl, Sample, Workload};
use linux_event::{Interest, Loop, WatchEvent, WatchOptions};
use std::cell::RefCell;

/// Chains in flight.
pub const ACTIVE: usize = 100;
/// The bound on writes per run.
pub const MAX_WRITES: u64 = 100_000;

/// `n` watched fds: `n / 2` non-blocking AF_UNIX stream socketpairs with
/// both ends watched. `rfd[i]` is watched for reading; `wfd[i]` is its peer,
/// the fd to write to so that `rfd[i]` becomes readable. Both ends of every
/// pair are used, so `n = 10000` needs 10000 fds (this machine's hard limit
/// is 20000 and cannot be raised from inside); the kernel work per event is
/// the same AF_UNIX read and write as with `n` pairs. Closed on drop.
pub struct Pairs {
    /// The watched fds.
    pub rfd: Vec<i32>,
    /// `wfd[i]`: the peer of `rfd[i]`.
    pub wfd: Vec<i32>,
}

impl Pairs {
    /// Makes `n` (even) watched fds.
    pub fn new(n: usize) -> Result<Pairs, String> {
        let mut p = Pairs { rfd: Vec::with_capacity(n), wfd: Vec::with_capacity(n) };
        for _ in 0..n.div_ceil(2) {
            let mut fds = [0i32; 2];
            let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
            // SAFETY: `fds` is a writable array of two ints, as socketpair wants.
            if unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()) } != 0 {
                let err = std::io::Error::last_os_error();
                return Err(format!("socketpair #{}: {err}", p.rfd.len() / 2));
            }
            p.rfd.extend([fds[0], fds[1]]);
            p.wfd.extend([fds[1], fds[0]]);
        }
        Ok(p)
    }

    /// Number of watched fds.
    pub fn len(&self) -> usize {
        self.rfd.len()
    }
}

impl Drop for Pairs {
    fn drop(&mut self) {
        for &fd in &self.rfd {
            // SAFETY: the pairs own these fds; each appears once in `rfd`.
            unsafe { libc::close(fd) };
        }
    }
}

/// Writes `n` bytes (n <= 64) to `fd` with libc.
fn libc_write(fd: i32, n: usize) {
    let buf = [b'e'; 64];
    // SAFETY: `buf` is valid for reads of `n.min(64)` bytes.
    let w = unsafe { libc::write(fd, buf.as_ptr().cast(), n.min(64)) };
    assert_eq!(w, n as isize, "chain write");
}

/// The number of writes for `n` pairs: 10 x n, bounded.
pub fn writes_for(n: usize) -> u64 {
    (10 * n as u64).min(MAX_WRITES)
}

/// Runs one chain on `imp` over `pairs`; returns the bytes read and the
/// time the propagation took.
pub fn run_once(imp: Impl, pairs: &Pairs, writes: u64) -> Result<(u64, Span), String> {
    let n = pairs.len();
    let args = ffi::ChainArgs {
        rfd: pairs.rfd.as_ptr(),
        wfd: pairs.wfd.as_ptr(),
        n: n as i32,
        active: ACTIVE as i32,
        writes: writes as i64,
    };
    let mut span = Span::default();
    // SAFETY: `args` points at the pairs' fd arrays (n entries each), alive
    // for the call; `span` is writable.
    let mut c = |f: unsafe extern "C" fn(*const ffi::ChainArgs, *mut Span) -> i64| unsafe { f(&args, &mut span) };
    let fired = match imp {
        Impl::Ours => return ours(pairs, writes),
        Impl::Mio => return mio_chain(pairs, writes).map_err(|e| format!("mio: {e}")),
        Impl::Libev => c(ffi::bev_chain),
        Impl::Libevent => c(ffi::bevent_chain),
        Impl::Raw => c(ffi::braw_chain),
    };
    if fired < 0 {
        return Err(format!("{} chain failed", imp.name()));
    }
    Ok((fired as u64, span))
}

// ---- linux-event ---------------------------------------------------------

struct Ctx {
    wfd: Vec<i32>,
    fired: u64,
    writes: u64,
    max_writes: u64,
    total: u64,
}

fn on_read<const W: usize>(lp: &mut Loop<Ctx, W, 4>, c: &mut Ctx, ev: WatchEvent) {
    let mut b = [0u8; 1];
    if linux_event::sys::read(ev.fd(), &mut b) != Ok(1) {
        return;
    }
    c.fired += 1;
    if c.writes < c.max_writes {
        let next = ev.data() as usize + 1;
        let next = if next == c.wfd.len() { 0 } else { next };
        c.writes += 1;
        let _ = linux_event::sys::write(c.wfd[next], &b);
    }
    if c.fired == c.total {
        lp.stop();
    }
}

fn ours_with<const W: usize>(pairs: &Pairs, writes: u64) -> Result<(u64, Span), String> {
    let e = |e: linux_event::Error| format!("linux-event: {e:?}");
    let mut lp: Loop<Ctx, W, 4> = Loop::new().map_err(e)?;
    for (i, &fd) in pairs.rfd.iter().enumerate() {
        lp.watch_with(fd, WatchOptions::new(Interest::READ), i as u64, on_read::<W>).map_err(e)?;
    }
    let mut ctx =
        Ctx { wfd: pairs.wfd.clone(), fired: 0, writes: 0, max_writes: writes, total: ACTIVE as u64 + writes };
    let space = pairs.len() / ACTIVE;
    let m = mark();
    for i in 0..ACTIVE {
        linux_event::sys::write(pairs.wfd[i * space], b"e").map_err(|e| format!("write: {e:?}"))?;
    }
    lp.run(&mut ctx).map_err(e)?;
    Ok((ctx.fired, m.span()))
}

/// The watcher capacity is the smallest power of two that holds `n`.
fn ours(pairs: &Pairs, writes: u64) -> Result<(u64, Span), String> {
    match pairs.len() {
        0..=128 => ours_with::<128>(pairs, writes),
        129..=1024 => ours_with::<1024>(pairs, writes),
        1025..=16384 => ours_with::<16384>(pairs, writes),
        n => Err(format!("no linux-event capacity for {n} pairs")),
    }
}

// ---- mio -----------------------------------------------------------------

fn mio_chain(pairs: &Pairs, writes: u64) -> std::io::Result<(u64, Span)> {
    use mio::unix::SourceFd;
    use mio::{Events, Poll, Token};
    let n = pairs.len();
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(64);
    for (i, fd) in pairs.rfd.iter().enumerate() {
        poll.registry().register(&mut SourceFd(fd), Token(i), mio::Interest::READABLE)?;
    }
    let total = ACTIVE as u64 + writes;
    let (mut fired, mut written) = (0u64, 0u64);
    let space = n / ACTIVE;
    let m = mark();
    for i in 0..ACTIVE {
        libc_write(pairs.wfd[i * space], 1);
    }
    let mut b = [0u8; 1];
    while fired < total {
        poll.poll(&mut events, None)?;
        for ev in events.iter() {
            let i = ev.token().0;
            // SAFETY: `b` is valid for writes of one byte.
            while unsafe { libc::read(pairs.rfd[i], b.as_mut_ptr().cast(), 1) } == 1 {
                fired += 1;
                if written < writes {
                    written += 1;
                    libc_write(pairs.wfd[if i + 1 == n { 0 } else { i + 1 }], 1);
                }
            }
        }
    }
    let span = m.span();
    for fd in &pairs.rfd {
        poll.registry().deregister(&mut SourceFd(fd))?;
    }
    Ok((fired, span))
}

// ---- the workload ----------------------------------------------------------

/// Workload 1. Keeps the socketpairs of the case being run, shared by
/// every implementation and repetition (each run leaves them drained).
#[derive(Default)]
pub struct Chain {
    pairs: RefCell<Option<Pairs>>,
}

impl Workload for Chain {
    fn number(&self) -> u32 {
        1
    }

    fn id(&self) -> &'static str {
        "chain"
    }

    fn describe(&self) -> &'static str {
        "chain propagation: n watched AF_UNIX socket fds (n/2 socketpairs, both ends watched), 100 active, w = 10 x n writes; per event (one byte read and passed on)"
    }

    fn impls(&self) -> &'static [Impl] {
        &Impl::ALL
    }

    fn cases(&self, cfg: &Config) -> Vec<Case> {
        [100usize, 1000, 10000]
            .iter()
            .map(|&n| Case { label: format!("n={n}"), param: n as u64, reps: cfg.reps(9, 3) })
            .collect()
    }

    fn run(&self, case: &Case, _rep: usize, imp: Impl, _cfg: &Config) -> Result<Vec<Sample>, String> {
        let n = case.param as usize;
        let mut cached = self.pairs.borrow_mut();
        if cached.as_ref().is_none_or(|p| p.len() != n) {
            *cached = None;
            *cached = Some(Pairs::new(n)?);
        }
        let pairs = cached.as_ref().expect("pairs were just made");
        let writes = writes_for(n);
        let (fired, span) = run_once(imp, pairs, writes)?;
        let expected = ACTIVE as u64 + writes;
        if fired != expected {
            return Err(format!("{}: {fired} bytes read, expected {expected}", imp.name()));
        }
        Ok(vec![Sample::per_op("event", fired as f64, span)])
    }
}
