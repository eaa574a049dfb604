//! Fuzzing your own handlers through the loop, on the `Sim` backend.
//!
//! The handlers below serve a tiny line protocol on one connection:
//! `HELO` first, then `PING` (answered `PONG`) or `QUIT` (answered `BYE`,
//! then closed); anything else is answered `ERR`, a line over 16 bytes
//! closes the connection, and so do 5 idle seconds or a hang-up. Replies go
//! out through an 8-byte send buffer, so writes are partial and the write
//! side is enabled only while there is something to send.
//!
//! `run_script` turns arbitrary bytes into a script for the simulated peer
//! (send a fragment, drain the send buffer, let time pass, hang up), runs
//! the loop until it is quiet after every step, and checks the handlers'
//! own invariants. `main` runs a few fixed scripts; in a cargo-fuzz target
//! the body is just `fuzz_target!(|data: &[u8]| { run_script(data); })`.
//! Nothing here sleeps or opens an fd: the clock and the socket are virtual.
//!
//! Run with `cargo run --example fuzz_handlers`.

use core::time::Duration;
use linux_event::backend::Sim;
use linux_event::{Instant, Interest, Loop, Ready, Side, TimerEvent, TimerId, WatchEvent, WatchId};

/// The virtual connection's fd number (no real fd is opened).
const CONN: i32 = 3;
const IDLE: Duration = Duration::from_secs(5);
const SNDBUF: usize = 8;
const MAX_LINE: usize = 16;

type Lp = Loop<Conn, 4, 4, Sim<4>>;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum State {
    Greeting,
    Ready,
    /// `QUIT` seen: flush, then close.
    Closing,
    Closed,
}

/// The connection: the handlers' state plus the simulated socket.
struct Conn {
    state: State,
    line: Vec<u8>,
    outbox: Vec<u8>,
    watch: Option<WatchId>,
    idle: Option<TimerId>,
    last_input: Instant,
    // The simulated socket and peer.
    /// Bytes the peer sent that the handler has not read.
    inbound: Vec<u8>,
    /// Free room in the kernel's send buffer.
    room: usize,
    /// Everything the peer received.
    wire: Vec<u8>,
    // What the checker counts.
    pings: usize,
}

fn on_io(lp: &mut Lp, c: &mut Conn, ev: WatchEvent) {
    assert_ne!(c.state, State::Closed, "callback on a closed connection");
    match ev.side() {
        Side::Read => {
            // "read(2)" everything: the virtual fd is drained, so not ready.
            let bytes = core::mem::take(&mut c.inbound);
            lp.sim().clear_ready(CONN, Ready::READABLE);
            if !bytes.is_empty() {
                c.last_input = lp.now();
                if let Some(t) = c.idle {
                    lp.rearm(t, IDLE).expect("idle timer is live while open");
                }
            }
            for b in bytes {
                feed(lp, c, b);
                if c.state == State::Closed {
                    return;
                }
            }
            if ev.ready().contains(Ready::HANGUP) {
                close(lp, c);
            }
        }
        Side::Write => flush(lp, c),
        Side::Error => close(lp, c),
    }
}

fn on_idle(lp: &mut Lp, c: &mut Conn, _id: TimerEvent) {
    c.idle = None; // a fired one-shot timer's id is stale after this
    close(lp, c);
}

fn feed(lp: &mut Lp, c: &mut Conn, b: u8) {
    if b != b'\n' {
        c.line.push(b);
        if c.line.len() > MAX_LINE {
            close(lp, c);
        }
        return;
    }
    let line = core::mem::take(&mut c.line);
    let reply: &[u8] = match (c.state, line.as_slice()) {
        (State::Greeting, b"HELO") => {
            c.state = State::Ready;
            b"HI\n"
        }
        (State::Greeting, _) => return close(lp, c),
        (State::Ready, b"PING") => {
            c.pings += 1;
            b"PONG\n"
        }
        (State::Ready, b"QUIT") => {
            c.state = State::Closing;
            b"BYE\n"
        }
        (State::Ready, _) => b"ERR\n",
        // Input after QUIT is ignored.
        (State::Closing | State::Closed, _) => return,
    };
    c.outbox.extend_from_slice(reply);
    flush(lp, c);
}

/// Writes what the send buffer takes; keeps the write side enabled exactly
/// while something is left.
fn flush(lp: &mut Lp, c: &mut Conn) {
    let n = c.outbox.len().min(c.room);
    c.wire.extend(c.outbox.drain(..n));
    c.room -= n;
    if c.room == 0 {
        lp.sim().clear_ready(CONN, Ready::WRITABLE);
    }
    let Some(w) = c.watch else { return };
    if c.outbox.is_empty() {
        if c.state == State::Closing {
            return close(lp, c);
        }
        lp.disable(w, Interest::WRITE).expect("watcher is live while open");
    } else {
        lp.enable(w, Interest::WRITE).expect("watcher is live while open");
    }
}

fn close(lp: &mut Lp, c: &mut Conn) {
    if let Some(w) = c.watch.take() {
        lp.remove(w);
    }
    if let Some(t) = c.idle.take() {
        lp.remove(t);
    }
    lp.sim().close(CONN);
    c.state = State::Closed;
}

/// What the peer can do, one byte of fuzz input each.
const FRAGMENTS: [&[u8]; 8] =
    [b"HELO\n", b"PING\n", b"QUIT\n", b"PI", b"NG\n", b"HELLO WORLD, HOW ARE YOU", b"\n", b"x"];

/// Runs one script and checks the handlers' invariants after every step.
/// Returns the connection at the end.
fn run_script(data: &[u8]) -> Conn {
    let mut lp: Lp = Loop::with_backend(Sim::new()).expect("sim loop");
    let mut c = Conn {
        state: State::Greeting,
        line: Vec::new(),
        outbox: Vec::new(),
        watch: None,
        idle: None,
        last_input: Instant::ZERO,
        inbound: Vec::new(),
        room: SNDBUF,
        wire: Vec::new(),
        pings: 0,
    };
    // "accept": the connection is writable and watched for reading.
    lp.sim().set_ready(CONN, Ready::WRITABLE).expect("room for one fd");
    c.watch = Some(lp.watch(CONN, Interest::READ, 0, on_io).expect("room for one watcher"));
    c.idle = Some(lp.after(IDLE, 0, on_idle).expect("room for one timer"));

    for &byte in data {
        let arg = usize::from(byte >> 2);
        match byte & 3 {
            0 if c.state != State::Closed => {
                c.inbound.extend_from_slice(FRAGMENTS[arg % FRAGMENTS.len()]);
                lp.sim().set_ready(CONN, Ready::READABLE).expect("fd is known");
            }
            1 if c.state != State::Closed => {
                c.room = SNDBUF;
                lp.sim().set_ready(CONN, Ready::WRITABLE).expect("fd is known");
            }
            2 => {
                lp.sim().advance(Duration::from_millis(250 * arg as u64));
            }
            3 if c.state != State::Closed => {
                lp.sim().set_ready(CONN, Ready::HANGUP).expect("fd is known");
            }
            _ => {}
        }
        // Run until quiet; the clock moves only by the script, so a zero
        // timeout never jumps it.
        for _ in 0..64 {
            if lp.run_once(&mut c, Some(Duration::ZERO)).expect("sim never fails unasked") == 0 {
                break;
            }
        }
        check(&lp, &c);
    }
    c
}

/// The handlers' invariants.
fn check(lp: &Lp, c: &Conn) {
    // Every PING is answered exactly once (on the wire, or waiting for room
    // in the send buffer; a reply may be split between the two)...
    let sent = [c.wire.as_slice(), c.outbox.as_slice()].concat();
    assert_eq!(sent.windows(5).filter(|w| w == b"PONG\n").count(), c.pings, "lost or extra PONG");
    match c.state {
        State::Closed => {
            assert_eq!(lp.watcher_count(), 0, "closed connection still watched");
            assert_eq!(lp.timer_count(), 0, "closed connection still has a timer");
        }
        _ => {
            // ...and an open connection has heard from its peer lately.
            assert!(lp.now().saturating_duration_since(c.last_input) < IDLE, "idle timeout missed");
            let write_on = c.watch.and_then(|w| lp.interest(w)).is_some_and(|i| i.contains(Interest::WRITE));
            assert_eq!(write_on, !c.outbox.is_empty(), "write side on without output (or off with output)");
        }
    }
}

fn main() {
    // Bytes: low 2 bits are the op (0 send, 1 drain, 2 wait, 3 hang up), the
    // rest its argument (fragment index, or quarter seconds to wait).
    let scripts: [(&str, &[u8]); 5] = [
        ("greet, ping, quit", &[0, 1 << 2, 1, 2 << 2, 1, 1]),
        ("ping split in two, slow peer", &[0, 3 << 2, 2 | (8 << 2), 4 << 2, 1, 1]),
        ("idle too long", &[0, 2 | (19 << 2), 2 | (4 << 2), 1 << 2]),
        ("line too long", &[0, 5 << 2]),
        ("hang up mid-line", &[0, 3 << 2, 3, 1 << 2]),
    ];
    for (name, script) in scripts {
        let c = run_script(script);
        println!("{name:30} -> {:?}, {} ping(s), peer got {:?}", c.state, c.pings, String::from_utf8_lossy(&c.wire));
    }
}
