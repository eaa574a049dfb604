//! A no-libc program that uses the loop for real: a periodic timer writes into a
//! pipe, a watcher reads it back, a one-shot timer cancels a slower one before it
//! fires, and closing the pipe's write end ends the loop through the reader's
//! end-of-file. It prints what happened and exits 0 if everything added up.
//! The loop itself lives in a `static`. It prints without `core::fmt` (pieces
//! and `FdWriter::write_decimal`) and installs the panic handler that prints
//! only the location, which keeps the formatting code (about 3 KB) out of the
//! static binary.
//!
//! `cargo static-examples` builds it as a static binary for x86_64 and aarch64
//! (`target/<triple>/release/examples/nolibc_loop`); its stripped size is in the
//! README. Built any other way (`cargo run --features rt --example nolibc_loop`)
//! it is an ordinary std program running the same code.

#![cfg_attr(linux_event_nolibc, no_std, no_main)]

use core::time::Duration;
use linux_event::backend::Epoll;
use linux_event::rt::{self, Startup};
use linux_event::sys::{self, OwnedFd};
use linux_event::{Instant, Interest, Loop, StaticLoop, TimerEvent, TimerId, WatchEvent};

#[cfg(linux_event_nolibc)]
linux_event::entry!(run, panic = location);

#[cfg(not(linux_event_nolibc))]
fn main() {
    rt::exit(rt::Exit::code(run(Startup::empty())))
}

/// Ticks of the periodic timer, one message each.
const TICKS: u32 = 5;
const TICK_MS: u64 = 10;

/// Room for 4 watchers and 4 timers: all this program needs.
type DemoLoop = Loop<Demo, 4, 4>;

/// The loop lives in a `static` (zero-filled `.bss`): made in place, once,
/// whatever its capacity, and never on the stack.
static LOOP: StaticLoop<Demo, 4, 4> = StaticLoop::new();

struct Demo {
    start: Instant,
    out: rt::FdWriter,
    /// The pipe's write end; dropping it (closing) is what ends the program.
    writer: Option<OwnedFd>,
    ticks: u32,
    sent: usize,
    received: usize,
    /// The slow timer the one-shot cancels.
    slow: Option<TimerId>,
    cancelled: bool,
}

/// A piece of a printed line.
enum Piece<'a> {
    Text(&'a str),
    Bytes(&'a [u8]),
    Number(u64),
}
use Piece::{Bytes as B, Number as N, Text as T};

impl Demo {
    /// Prints one line, prefixed with the loop's time in milliseconds since the start.
    #[inline(never)]
    fn log(&mut self, lp: &DemoLoop, line: &[Piece<'_>]) {
        let ms = lp.now().as_nanos().saturating_sub(self.start.as_nanos()) / 1_000_000;
        let pad = [1000, 100, 10].iter().filter(|&&p| ms < p).count();
        let _ = self.out.write_bytes(&b"   "[..pad]);
        print(&mut self.out, &[N(ms), T(" ms  ")]);
        print(&mut self.out, line);
        let _ = self.out.write_bytes(b"\n");
        let _ = self.out.flush();
    }
}

#[inline(never)]
fn print(out: &mut rt::FdWriter, line: &[Piece<'_>]) {
    for piece in line {
        let _ = match piece {
            T(text) => out.write_bytes(text.as_bytes()),
            B(bytes) => out.write_bytes(bytes),
            N(n) => out.write_decimal(*n),
        };
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

fn run(_: Startup) -> i32 {
    match demo() {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            // `{e}` would print the errno's name and description, and link the table of all
            // of them (about 9 KB, more than half this program); the number is enough here.
            let code = match e {
                linux_event::Error::Os(errno) => i32::from(errno.raw()),
                _ => -1,
            };
            let mut err = rt::stderr();
            print(&mut err, &[T("error: the loop refused (errno "), N(code as u64), T(")\n")]);
            2
        }
    }
}

/// Sets up the pipe, the watcher and the timers, runs the loop; whether all went as planned.
fn demo() -> Result<bool, linux_event::Error> {
    let lp = LOOP.init(Epoll::new()?)?;
    let (reader, writer) = sys::pipe()?;
    let mut demo = Demo {
        start: lp.now(),
        out: rt::stdout(),
        writer: Some(writer),
        ticks: 0,
        sent: 0,
        received: 0,
        slow: None,
        cancelled: false,
    };
    let line = [T("no-libc loop on "), T(lp.backend_name()), T(": "), N(TICKS.into()), T(" ticks every ")];
    print(&mut demo.out, &line);
    print(&mut demo.out, &[N(TICK_MS), T(" ms\n")]);

    lp.watch(reader.as_raw_fd(), Interest::READ, 0, on_readable)?;
    lp.every(Duration::from_millis(TICK_MS), 0, on_tick)?;
    demo.slow = Some(lp.after(Duration::from_millis(500), 0, |lp, demo, _| {
        demo.log(lp, &[T("slow timer fired (it should have been cancelled)")])
    })?);
    lp.after(Duration::from_millis(25), 0, |lp, demo, _| {
        let cancelled = demo.slow.take().is_some_and(|id| lp.remove(id));
        demo.cancelled = cancelled;
        demo.log(lp, &[T("one-shot timer: cancelled the 500 ms timer: "), T(yes_no(cancelled))]);
    })?;
    lp.after(Duration::from_secs(5), 0, |lp, demo, _| {
        demo.log(lp, &[T("watchdog: the pipe never reached end of file, stopping")]);
        lp.stop();
    })?;

    lp.run(&mut demo)?;

    let ok = demo.ticks == TICKS && demo.sent == demo.received && demo.cancelled;
    let line = [
        N(demo.ticks.into()),
        T(" ticks, "),
        N(demo.sent as u64),
        T(" bytes written, "),
        N(demo.received as u64),
        T(" read back, slow timer cancelled: "),
        T(yes_no(demo.cancelled)),
        T(if ok { ": ok\n" } else { ": FAILED\n" }),
    ];
    print(&mut demo.out, &line);
    let _ = demo.out.flush();
    Ok(ok)
}

/// Each tick writes one message into the pipe; the last one also closes it.
fn on_tick(lp: &mut DemoLoop, demo: &mut Demo, ev: TimerEvent) {
    let id = ev.id();
    demo.ticks += 1;
    let ticks = demo.ticks;
    let msg: &[u8] = match ticks {
        1 => b"tick 1",
        2 => b"tick 2",
        3 => b"tick 3",
        4 => b"tick 4",
        _ => b"tick 5",
    };
    let fd = demo.writer.as_ref().map_or(-1, OwnedFd::as_raw_fd);
    let wrote = sys::write(fd, msg).unwrap_or(0);
    demo.sent += wrote;
    demo.log(lp, &[T("tick "), N(ticks.into()), T(": wrote "), N(wrote as u64), T(" bytes")]);
    if ticks == TICKS {
        lp.remove(id);
        demo.writer = None;
        demo.log(lp, &[T("tick "), N(ticks.into()), T(": cancelled the periodic timer, closed the write end")]);
    }
}

/// Reads whatever arrived; at end of file, unwatches and stops the loop.
fn on_readable(lp: &mut DemoLoop, demo: &mut Demo, ev: WatchEvent) {
    let mut buf = [0u8; 64];
    match sys::read(ev.fd(), &mut buf) {
        Ok(0) | Err(_) => {
            lp.remove(ev.id());
            lp.stop();
            demo.log(lp, &[T("reader: end of file, unwatched, stopping")]);
        }
        Ok(n) => {
            demo.received += n;
            let text = buf.get(..n).unwrap_or(&[]);
            demo.log(lp, &[T("reader: "), N(n as u64), T(" bytes: \""), B(text), T("\"")]);
        }
    }
}
