//! The net companions in one process, on every backend: a server loop on
//! the test thread (Listeners + Streams, or Connector), real peers on
//! std threads with blocking std sockets. IPv4, IPv6, Unix paths and
//! abstract names; half-close, backpressure, resets, refused and timed-out
//! connects, the accept budget, the read quantum, 1,000 connections.
//!
//! No test waits for time to pass: each runs passes until what it waits
//! for has happened (a generous pass timeout only turns a hang into a
//! failure).

#[macro_use]
mod common;

use common::{Config, Loop, PATIENCE};
use core::time::Duration;
use linux_event::net::{
    AcceptEvent, ConnectEvent, Connector, ListenId, ListenOptions, Listeners, SocketAddr, StreamEvent, StreamHandlers,
    StreamId, StreamOptions, Streams,
};
use linux_event::sys::{self, OwnedFd};
use linux_event::{Errno, Placed, Trigger};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread::JoinHandle;

const S: usize = 1100;
const BUF: usize = 4096;
type L = Loop<Net, 4096, 64>;

#[derive(Default)]
struct Log {
    accepted: usize,
    closed: usize,
    errors: Vec<Errno>,
    eofs: usize,
    drained: usize,
    connects: Vec<Result<(), Errno>>,
    received: Vec<u8>,
    /// The last stream accepted.
    last: Option<StreamId>,
    /// (pass, stream slot data, bytes) of every data callback.
    reads: Vec<(u64, u64, usize)>,
}

struct Net {
    listen: Listeners<L, 4>,
    streams: Streams<L, S, BUF>,
    connect: Connector<L, 4>,
    log: Log,
    pass: u64,
    /// What the source protocol still has to send (reset test).
    to_send: usize,
    /// A send buffer size for accepted sockets (so the kernel cannot hold
    /// a whole test transfer).
    sndbuf: Option<u32>,
}

impl AsMut<Listeners<L, 4>> for Net {
    fn as_mut(&mut self) -> &mut Listeners<L, 4> {
        &mut self.listen
    }
}
impl AsMut<Streams<L, S, BUF>> for Net {
    fn as_mut(&mut self) -> &mut Streams<L, S, BUF> {
        &mut self.streams
    }
}
impl AsMut<Connector<L, 4>> for Net {
    fn as_mut(&mut self) -> &mut Connector<L, 4> {
        &mut self.connect
    }
}

fn net(options: StreamOptions) -> Box<Net> {
    Box::new(Net {
        listen: Listeners::new(),
        streams: Streams::with_options(options).expect("pool"),
        connect: Connector::new(),
        log: Log::default(),
        pass: 0,
        to_send: 0,
        sndbuf: None,
    })
}

fn closed(_: &mut L, n: &mut Net, _: StreamEvent) {
    n.log.closed += 1;
}
fn errored(_: &mut L, n: &mut Net, ev: StreamEvent) {
    n.log.errors.push(ev.errno().expect("error without errno"));
}
fn drained_echo(lp: &mut L, n: &mut Net, ev: StreamEvent) {
    n.log.drained += 1;
    echo(lp, n, ev);
}
fn echo(_: &mut L, n: &mut Net, ev: StreamEvent) {
    if ev.is_eof() {
        n.log.eofs += 1;
    }
    let len = n.streams.read_buf(ev.id()).len();
    n.log.reads.push((n.pass, ev.data(), len));
    let _ = n.streams.respond(ev.id(), |input, out| out.write(input));
}
const ECHO: StreamHandlers<L> = StreamHandlers::new(echo).drained(drained_echo).closed(closed).error(errored);

fn collect(_: &mut L, n: &mut Net, ev: StreamEvent) {
    if ev.is_eof() {
        n.log.eofs += 1;
    }
    let got = n.streams.read_buf(ev.id()).to_vec();
    n.log.reads.push((n.pass, ev.data(), got.len()));
    n.log.received.extend_from_slice(&got);
    n.streams.consume(ev.id(), got.len());
}
const COLLECT: StreamHandlers<L> = StreamHandlers::new(collect).closed(closed).error(errored);

fn accept_echo(lp: &mut L, n: &mut Net, ev: AcceptEvent) {
    n.log.accepted += 1;
    let fd = ev.into_result().expect("accept");
    if let Some(bytes) = n.sndbuf {
        sys::set_send_buffer(fd.as_raw_fd(), bytes).unwrap();
    }
    n.log.last = Some(n.streams.adopt(lp, fd, 0, &ECHO).expect("adopt"));
}

/// A loop whose backend has room for every watcher the tests make.
/// A 4096-watcher loop is too big to pass around on a test thread's stack
/// in a debug build: it is built in place, in memory of the test's.
fn new_loop<'a>(cfg: &Config, room: &'a mut std::mem::MaybeUninit<L>) -> Placed<'a, L> {
    L::init_in(room, cfg.backend_with_capacity(4096)).unwrap_or_else(|e| panic!("[{}] loop: {e}", cfg.name))
}

/// Runs passes until `done` holds (each pass waits at most PATIENCE), for
/// what a callback reports.
fn run_until(cfg: &Config, lp: &mut L, n: &mut Net, what: &str, done: impl Fn(&Net) -> bool) {
    let _dog = common::watchdog("net test", 120);
    while !done(n) {
        n.pass += 1;
        // The peers are busy the whole time, so a pass that waited out its
        // PATIENCE with nothing to do is a lost wake-up (say, a callback the
        // companion ran before the wait, which then blocked on it). A pass
        // with no callback that ends sooner is not: an early timer wake-up,
        // an event only the companion handles.
        let began = std::time::Instant::now();
        let calls = common::pass(cfg, lp, n, PATIENCE);
        assert!(
            calls > 0 || began.elapsed() < PATIENCE.unwrap(),
            "[{}] a pass of {:?} went by with nothing to do, waiting for {what}",
            cfg.name,
            PATIENCE.unwrap()
        );
    }
}

/// Runs passes until `done` holds, for a state of the companion that no
/// callback reports (a stream throttled, a socket buffer full): the flush
/// before the wait may reach it, and the wait then has nothing to end it.
/// Each pass waits at most 10 ms; gives up after PATIENCE in all.
fn run_until_state(cfg: &Config, lp: &mut L, n: &mut Net, what: &str, done: impl Fn(&Net) -> bool) {
    let give_up = std::time::Instant::now() + PATIENCE.unwrap();
    while !done(n) {
        n.pass += 1;
        common::pass(cfg, lp, n, Some(Duration::from_millis(10)));
        assert!(std::time::Instant::now() < give_up, "[{}] still waiting for {what}", cfg.name);
    }
}

fn listen(cfg: &Config, lp: &mut L, n: &mut Net, addr: &str, options: ListenOptions) -> (ListenId, SocketAddr) {
    let addr: SocketAddr = addr.parse().unwrap();
    let id = n
        .listen
        .listen(lp, &addr, options, 0, accept_echo)
        .unwrap_or_else(|e| panic!("[{}] listen {addr}: {e}", cfg.name));
    (id, n.listen.local_addr(id).unwrap())
}

/// A client thread: connects, sends `msg`, half-closes, reads to EOF.
fn echo_client(addr: SocketAddr, msg: Vec<u8>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut back = Vec::new();
        match addr {
            SocketAddr::Unix(u) => {
                let mut s = if u.is_abstract() {
                    use std::os::linux::net::SocketAddrExt;
                    let a = std::os::unix::net::SocketAddr::from_abstract_name(u.as_bytes()).unwrap();
                    std::os::unix::net::UnixStream::connect_addr(&a).unwrap()
                } else {
                    use std::os::unix::ffi::OsStrExt;
                    std::os::unix::net::UnixStream::connect(std::ffi::OsStr::from_bytes(u.as_bytes())).unwrap()
                };
                s.write_all(&msg).unwrap();
                s.shutdown(Shutdown::Write).unwrap();
                s.read_to_end(&mut back).unwrap();
            }
            _ => {
                let mut s = TcpStream::connect(addr.to_string()).unwrap();
                s.write_all(&msg).unwrap();
                s.shutdown(Shutdown::Write).unwrap();
                s.read_to_end(&mut back).unwrap();
            }
        }
        back
    })
}

fn echo_round_trip(cfg: &Config, addr: &str) {
    let mut room = Box::new_uninit();
    let mut lp = new_loop(cfg, &mut room);
    let mut n = net(StreamOptions::new());
    let (_, at) = listen(cfg, &mut lp, &mut n, addr, ListenOptions::new());
    let msg: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let client = echo_client(at, msg.clone());
    run_until(cfg, &mut lp, &mut n, "the stream to close", |n| n.log.closed == 1);
    assert_eq!(client.join().unwrap(), msg, "[{}] echo over {at}", cfg.name);
    assert_eq!((n.log.accepted, n.log.eofs, n.log.errors.len()), (1, 1, 0), "[{}]", cfg.name);
    assert_eq!(n.streams.buffers_in_use(), (0, 0), "[{}] buffers not given back", cfg.name);
    assert!(n.streams.is_empty());
}

fn echo_over_ipv4(cfg: &Config) {
    echo_round_trip(cfg, "127.0.0.1:0");
}

fn echo_over_ipv6(cfg: &Config) {
    echo_round_trip(cfg, "[::1]:0");
}

fn echo_over_unix_path(cfg: &Config) {
    let path = common::temp_path(&format!("net-{}.sock", cfg.module()));
    let _ = std::fs::remove_file(&path);
    echo_round_trip(cfg, &format!("unix:{}", path.display()));
    let _ = std::fs::remove_file(&path);
}

fn echo_over_unix_abstract_name(cfg: &Config) {
    echo_round_trip(cfg, &format!("@linux-event-net-{}-{}", std::process::id(), cfg.module()));
}

/// The same over level-triggered watchers, which change interest as the
/// buffers fill and drain.
fn echo_with_level_triggered_streams(cfg: &Config) {
    let mut room = Box::new_uninit();
    let mut lp = new_loop(cfg, &mut room);
    let mut n = net(StreamOptions::new().trigger(Trigger::Level));
    let (_, at) = listen(cfg, &mut lp, &mut n, "127.0.0.1:0", ListenOptions::new());
    let msg: Vec<u8> = (0..2_000_000u32).map(|i| (i % 253) as u8).collect();
    let client = echo_client(at, msg.clone());
    run_until(cfg, &mut lp, &mut n, "the stream to close", |n| n.log.closed == 1);
    assert_eq!(client.join().unwrap(), msg, "[{}]", cfg.name);
    assert_eq!(n.streams.buffers_in_use(), (0, 0));
}

/// A peer that sends 4 MB and reads nothing until it has sent it all:
/// the server's write buffer reaches high water, it stops reading (the
/// peer's writes block in the kernel), and memory stays at one buffer of
/// each kind. Then the peer reads, `drained` runs, and every byte comes back.
fn backpressure_stops_reading_until_drained(cfg: &Config) {
    let mut room = Box::new_uninit();
    let mut lp = new_loop(cfg, &mut room);
    let mut n = net(StreamOptions::new());
    n.sndbuf = Some(16 * 1024);
    let (_, at) = listen(cfg, &mut lp, &mut n, "127.0.0.1:0", ListenOptions::new());
    let msg: Vec<u8> = (0..4_000_000u32).map(|i| (i % 241) as u8).collect();
    let s = small_receiver(at);
    let mut writer = s.try_clone().unwrap();
    let sent = msg.clone();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let w = std::thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut reader = s;
    let r = std::thread::spawn(move || {
        go_rx.recv().unwrap();
        let mut back = Vec::new();
        reader.read_to_end(&mut back).unwrap();
        back
    });
    // Until the kernel's buffers are full both ways: throttled, and a few
    // more passes read nothing.
    let mut tries = 0;
    loop {
        run_until_state(cfg, &mut lp, &mut n, "the stream to be throttled", |n| {
            n.log.last.is_some_and(|id| n.streams.is_throttled(id)) && n.streams.stats().write_full > 0
        });
        let reads = n.streams.stats().reads;
        for _ in 0..3 {
            let _ = lp.run_once(&mut n, Some(Duration::ZERO));
        }
        if n.streams.stats().reads == reads && n.log.last.is_some_and(|id| n.streams.is_throttled(id)) {
            break;
        }
        tries += 1;
        assert!(tries < 10_000, "[{}] never settled above high water", cfg.name);
    }
    let (rb, wb) = n.streams.buffers_in_use();
    assert!(rb <= 1 && wb == 1, "[{}] memory beyond one buffer each: {rb} read, {wb} write", cfg.name);
    go_tx.send(()).unwrap();
    run_until(cfg, &mut lp, &mut n, "the stream to close", |n| n.log.closed == 1);
    w.join().unwrap();
    assert_eq!(r.join().unwrap(), msg, "[{}]", cfg.name);
    assert!(n.log.drained > 0, "[{}] drained never ran", cfg.name);
}

/// A TCP connection to `at` whose receive buffer is small, so what the
/// peer does not read backs up to the sender quickly.
fn small_receiver(at: SocketAddr) -> TcpStream {
    let fd = sys::stream_socket(sys::AF_INET).unwrap();
    sys::set_recv_buffer(fd.as_raw_fd(), 16 * 1024).unwrap();
    match sys::connect(fd.as_raw_fd(), &at.to_sys()) {
        Ok(()) | Err(Errno::EINPROGRESS) => {}
        Err(e) => panic!("connect: {e}"),
    }
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLOUT, revents: 0 };
    // SAFETY: one valid pollfd.
    assert_eq!(unsafe { libc::poll(&mut p, 1, 10_000) }, 1);
    assert_eq!(sys::socket_error(fd.as_raw_fd()), Ok(None));
    let raw = fd.into_raw_fd();
    // SAFETY: `raw` is a connected socket nothing else owns.
    let s = unsafe { <TcpStream as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    s.set_nonblocking(false).unwrap();
    s
}

fn source(_: &mut L, n: &mut Net, ev: StreamEvent) {
    fill(n, ev.id());
}

/// Writes until the write buffer is full or `to_send` is spent.
fn fill(n: &mut Net, id: StreamId) {
    while n.to_send > 0 {
        let chunk = [b'x'; 1024];
        let k = n.streams.write(id, &chunk[..n.to_send.min(1024)]).unwrap_or(0);
        if k == 0 {
            break;
        }
        n.to_send -= k;
    }
}
const SOURCE: StreamHandlers<L> = StreamHandlers::new(collect).drained(source).closed(closed).error(errored);

/// A peer that resets the connection while the server is writing to it:
/// the stream ends with `error(ECONNRESET)` (or `EPIPE`), once, and its
/// buffers are given back; the loop goes on serving.
fn peer_reset_mid_write_is_an_error(cfg: &Config) {
    let mut room = Box::new_uninit();
    let mut lp = new_loop(cfg, &mut room);
    let mut n = net(StreamOptions::new());
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (server_side, _) = l.accept().unwrap();
    server_side.set_nonblocking(true).unwrap();
    let fd: OwnedFd = owned(server_side);
    let id = n.streams.adopt(&mut lp, fd, 0, &SOURCE).unwrap();
    n.to_send = usize::MAX;
    fill(&mut n, id);
    run_until_state(cfg, &mut lp, &mut n, "the write side to block", |n| n.streams.stats().write_full > 0);
    // Read a little, then reset.
    let mut peer = peer;
    let mut some = [0u8; 1000];
    peer.read_exact(&mut some).unwrap();
    reset(peer);
    run_until(cfg, &mut lp, &mut n, "the error", |n| !n.log.errors.is_empty());
    assert!(
        matches!(n.log.errors[..], [Errno::ECONNRESET] | [Errno::EPIPE]),
        "[{}] errors: {:?}",
        cfg.name,
        n.log.errors
    );
    assert_eq!(n.log.closed, 0);
    assert_eq!(n.streams.buffers_in_use(), (0, 0));
    assert!(!n.streams.is_open(id));
}

fn owned(s: impl std::os::fd::IntoRawFd) -> OwnedFd {
    // SAFETY: the std socket gives up its fd, which nothing else owns.
    unsafe { OwnedFd::from_raw_fd(s.into_raw_fd()) }
}

/// Closes with SO_LINGER 0: the kernel sends RST.
fn reset(s: TcpStream) {
    let fd = owned(s);
    sys::set_linger_reset(fd.as_raw_fd()).unwrap();
}

/// Half-close from the server: it sends, shuts its write side, the peer
/// reads end of file, answers and closes; the stream then ends `closed`.
fn server_half_close_then_peer_finishes(cfg: &Config) {
    let mut room = Box::new_uninit();
    let mut lp = new_loop(cfg, &mut room);
    let mut n = net(StreamOptions::new());
    let (mine, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    mine.set_nonblocking(true).unwrap();
    let id = n.streams.adopt(&mut lp, owned(mine), 7, &COLLECT).unwrap();
    n.streams.write(id, b"bye").unwrap();
    n.streams.shutdown_write(id).unwrap();
    assert_eq!(n.streams.write(id, b"more"), Err(linux_event::Error::Os(Errno::EPIPE)));
    let peer = std::thread::spawn(move || {
        let mut theirs = theirs;
        let mut got = Vec::new();
        theirs.read_to_end(&mut got).unwrap();
        theirs.write_all(b"ack").unwrap();
        got
    });
    run_until(cfg, &mut lp, &mut n, "the stream to close", |n| n.log.closed == 1);
    assert_eq!(peer.join().unwrap(), b"bye");
    assert_eq!(n.log.received, b"ack");
    assert_eq!(n.log.eofs, 1);
}

/// `close` after writing: the peer gets every byte, then end of file.
fn close_after_flush_delivers_everything(cfg: &Config) {
    let mut room = Box::new_uninit();
    let mut lp = new_loop(cfg, &mut room);
    let mut n = net(StreamOptions::new());
    let (mine, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    mine.set_nonblocking(true).unwrap();
    let id = n.streams.adopt(&mut lp, owned(mine), 0, &COLLECT).unwrap();
    assert_eq!(n.streams.write(id, &[5u8; 3000]), Ok(3000));
    n.streams.close(id).unwrap();
    run_until(cfg, &mut lp, &mut n, "the stream to close", |n| n.log.closed == 1);
    let mut theirs = theirs;
    let mut got = Vec::new();
    theirs.read_to_end(&mut got).unwrap();
    assert_eq!(got, vec![5u8; 3000]);
    assert_eq!(n.streams.close(id), Err(linux_event::Error::NotFound));
}

fn record_connect(_: &mut L, n: &mut Net, ev: ConnectEvent) {
    n.log.connects.push(ev.into_result().map(drop));
}

fn connect_to(cfg: &Config, addr: &str, timeout: Option<Duration>) -> Result<(), Errno> {
    let mut room = Box::new_uninit();
    let mut lp = new_loop(cfg, &mut room);
    let mut n = net(StreamOptions::new());
    let addr: SocketAddr = addr.parse().unwrap();
    n.connect.connect(&mut lp, &addr, timeout, 0, record_connect).unwrap();
    run_until(cfg, &mut lp, &mut n, "the connect callback", |n| !n.log.connects.is_empty());
    assert!(n.connect.is_empty());
    assert_eq!(n.log.connects.len(), 1);
    n.log.connects[0]
}

fn connect_refused(cfg: &Config) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let got = connect_to(cfg, &format!("127.0.0.1:{port}"), Some(Duration::from_secs(30)));
    assert_eq!(got, Err(Errno::ECONNREFUSED), "[{}]", cfg.name);
}

fn connect_to_a_missing_unix_path(cfg: &Config) {
    let got = connect_to(cfg, "unix:/nonexistent/linux-event.sock", None);
    assert_eq!(got, Err(Errno::ENOENT), "[{}]", cfg.name);
}

/// A listener with a backlog of 0 that never accepts holds one finished
/// connection; the kernel drops every later SYN while that queue is full,
/// so a connect stays in progress for as long as the test holds it, and
/// only the timeout can end it. No timing: the queue stays full.
fn connect_timed_out(cfg: &Config) {
    let l = sys::stream_socket(sys::AF_INET).unwrap();
    sys::bind(l.as_raw_fd(), &"127.0.0.1:0".parse::<SocketAddr>().unwrap().to_sys()).unwrap();
    sys::listen(l.as_raw_fd(), 0).unwrap();
    let at = SocketAddr::from_sys(&sys::local_addr(l.as_raw_fd()).unwrap()).unwrap();
    let fill = TcpStream::connect(at.to_string()).unwrap();
    // The first connection is in the accept queue once the listener polls readable.
    let mut p = libc::pollfd { fd: l.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    assert_eq!(unsafe { libc::poll(&mut p, 1, 10_000) }, 1);
    let got = connect_to(cfg, &at.to_string(), Some(Duration::from_millis(200)));
    assert_eq!(got, Err(Errno::ETIMEDOUT), "[{}]", cfg.name);
    drop(fill);
}

/// Connect then Stream: a Connector's socket adopted by Streams, talking
/// to our own Listeners.
fn connect_then_stream(cfg: &Config) {
    fn connected(lp: &mut L, n: &mut Net, ev: ConnectEvent) {
        let fd = ev.into_result().expect("connect");
        let id = n.streams.adopt(lp, fd, 1, &COLLECT).unwrap();
        n.streams.write(id, b"through Connect").unwrap();
        n.streams.shutdown_write(id).unwrap();
    }
    let mut room = Box::new_uninit();
    let mut lp = new_loop(cfg, &mut room);
    let mut n = net(StreamOptions::new());
    let (_, at) = listen(cfg, &mut lp, &mut n, "127.0.0.1:0", ListenOptions::new());
    n.connect.connect(&mut lp, &at, Some(Duration::from_secs(30)), 0, connected).unwrap();
    run_until(cfg, &mut lp, &mut n, "both streams to close", |n| n.log.closed == 2);
    assert_eq!(n.log.received, b"through Connect");
}

/// Five clients wait in the backlog; a budget of 2 accepts per pass takes
/// 2, 2, then 1.
fn accept_budget_limits_each_pass(cfg: &Config) {
    fn count(_: &mut L, n: &mut Net, ev: AcceptEvent) {
        n.log.accepted += 1;
        drop(ev.into_result().unwrap());
    }
    let mut room = Box::new_uninit();
    let mut lp = new_loop(cfg, &mut room);
    let mut n = net(StreamOptions::new());
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let id = n.listen.listen(&mut lp, &addr, ListenOptions::new().accept_budget(2), 0, count).unwrap();
    let at = n.listen.local_addr(id).unwrap();
    let clients: Vec<TcpStream> = (0..5).map(|_| TcpStream::connect(at.to_string()).unwrap()).collect();
    let mut per_pass = Vec::new();
    while n.log.accepted < 5 {
        let before = n.log.accepted;
        common::pass(cfg, &mut lp, &mut n, PATIENCE);
        per_pass.push(n.log.accepted - before);
    }
    assert_eq!(per_pass, [2, 2, 1], "[{}] accepts per pass", cfg.name);
    assert_eq!(n.listen.stats(id).unwrap().budget_exhausted, 2);
    drop(clients);
}

/// Two streams with 64 KiB waiting each and a quantum of 8 KiB: every
/// pass gives each at most its quantum (plus one read), both progress from
/// the first pass, and the loop keeps going without new events.
fn read_quantum_is_shared_between_streams(cfg: &Config) {
    let mut room = Box::new_uninit();
    let mut lp = new_loop(cfg, &mut room);
    let mut n = net(StreamOptions::new().read_quantum(8192));
    let mut peers = Vec::new();
    for data in 0..2u64 {
        let (mine, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        theirs.set_nonblocking(true).unwrap();
        let mut sent = 0;
        while sent < 64 * 1024 {
            match theirs.write(&[1u8; 4096]) {
                Ok(k) => sent += k,
                Err(_) => break,
            }
        }
        mine.set_nonblocking(true).unwrap();
        n.streams.adopt(&mut lp, owned(mine), data, &COLLECT).unwrap();
        peers.push((theirs, sent));
    }
    let total: usize = peers.iter().map(|p| p.1).sum();
    run_until(cfg, &mut lp, &mut n, "all bytes", |n| n.log.received.len() == total);
    let mut per: std::collections::BTreeMap<(u64, u64), usize> = Default::default();
    for &(pass, stream, bytes) in &n.log.reads {
        *per.entry((pass, stream)).or_default() += bytes;
    }
    for (&(pass, stream), &bytes) in &per {
        assert!(bytes <= 8192 + BUF, "[{}] stream {stream} read {bytes} in pass {pass}", cfg.name);
    }
    let first = n.log.reads.first().unwrap().0;
    assert!(per.contains_key(&(first, 0)) && per.contains_key(&(first, 1)), "[{}] {per:?}", cfg.name);
    assert!(n.streams.stats().yields > 0);
}

/// 1,000 clients connected at once, each sending and getting its echo
/// while all the others are open.
fn thousand_concurrent_connections(cfg: &Config) {
    raise_nofile(4096);
    let mut room = Box::new_uninit();
    let mut lp = new_loop(cfg, &mut room);
    let mut n = net(StreamOptions::new());
    let (_, at) = listen(cfg, &mut lp, &mut n, "127.0.0.1:0", ListenOptions::new().backlog(4096));
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut socks: Vec<TcpStream> = (0..250).map(|_| TcpStream::connect(at.to_string()).unwrap()).collect();
                barrier.wait(); // all 1,000 are open now
                for (i, s) in socks.iter_mut().enumerate() {
                    s.write_all(format!("{t}:{i};").as_bytes()).unwrap();
                }
                for (i, s) in socks.iter_mut().enumerate() {
                    let want = format!("{t}:{i};");
                    let mut got = vec![0u8; want.len()];
                    s.read_exact(&mut got).unwrap();
                    assert_eq!(got, want.as_bytes());
                }
                barrier.wait();
                drop(socks);
            })
        })
        .collect();
    run_until(cfg, &mut lp, &mut n, "1,000 streams to close", |n| n.log.closed == 1000);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(n.log.accepted, 1000);
    assert!(n.streams.buffers_in_use().0 <= 1);
}

fn raise_nofile(want: u64) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid rlimit.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        if lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

backend_tests!(
    echo_over_ipv4,
    echo_over_ipv6,
    echo_over_unix_path,
    echo_over_unix_abstract_name,
    echo_with_level_triggered_streams,
    backpressure_stops_reading_until_drained,
    peer_reset_mid_write_is_an_error,
    server_half_close_then_peer_finishes,
    close_after_flush_delivers_everything,
    connect_refused,
    connect_to_a_missing_unix_path,
    connect_timed_out,
    connect_then_stream,
    accept_budget_limits_each_pass,
    read_quantum_is_shared_between_streams,
    thousand_concurrent_connections,
);
