//! An echo server on the net companions: `echo [--level] [ADDR...]` listens on each
//! address (default `127.0.0.1:7777`; `[::1]:7777`, `unix:/path`, `@name`
//! work too), prints `listening on ADDR` for each (with the port the kernel
//! chose for `:0`), and sends every byte back. A peer's end of file closes
//! its connection once everything is echoed.
//!
//! Backpressure end to end: what does not fit the write buffer stays in the
//! read buffer, the stream stops reading above high water, and `drained`
//! echoes the rest. When the process runs out of fds, accepting pauses
//! (50 ms, or until a connection closes) instead of spinning.
//!
//! `cargo run --example echo -- 127.0.0.1:7777`, then `socat - TCP:127.0.0.1:7777`.
//! `cargo static-examples` also builds it as a static binary with no libc.

#![cfg_attr(linux_event_nolibc, no_std, no_main)]

use linux_event::net::{AcceptEvent, ListenOptions, Listeners, SocketAddr, StreamEvent, StreamHandlers, Streams};
use linux_event::{Loop, backend::Epoll};

/// Connections at once, and the bytes of each of their two buffers.
const CONNECTIONS: usize = 1024;
const BUF: usize = 16 * 1024;

type EchoLoop = Loop<Echo, 2048, 64, Epoll>;

struct Echo {
    listen: Listeners<EchoLoop, 8>,
    streams: Streams<EchoLoop, CONNECTIONS, BUF>,
}

impl AsMut<Listeners<EchoLoop, 8>> for Echo {
    fn as_mut(&mut self) -> &mut Listeners<EchoLoop, 8> {
        &mut self.listen
    }
}

impl AsMut<Streams<EchoLoop, CONNECTIONS, BUF>> for Echo {
    fn as_mut(&mut self) -> &mut Streams<EchoLoop, CONNECTIONS, BUF> {
        &mut self.streams
    }
}

const ECHO: StreamHandlers<EchoLoop> = StreamHandlers::new(pump).drained(pump).closed(ended).error(ended);

/// Echoes as much of what came as the write buffer takes; the rest waits
/// in the read buffer for `drained`.
fn pump(_lp: &mut EchoLoop, echo: &mut Echo, ev: StreamEvent) {
    let _ = echo.streams.respond(ev.id(), |input, out| out.write(input));
}

/// A connection ended: an fd is free, so a paused accept may go on.
fn ended(lp: &mut EchoLoop, echo: &mut Echo, _ev: StreamEvent) {
    echo.listen.resume_all(lp);
}

fn accepted(lp: &mut EchoLoop, echo: &mut Echo, ev: AcceptEvent) {
    // A refused adopt (all connections busy) closes the socket.
    if let Ok(fd) = ev.into_result() {
        let _ = echo.streams.adopt(lp, fd, 0, &ECHO);
    }
}

/// Listens on every address and runs until killed; the exit status says why
/// it could not start.
fn serve(addrs: &[&str], out: &mut dyn core::fmt::Write) -> i32 {
    let mut lp = match EchoLoop::new() {
        Ok(lp) => lp,
        Err(e) => return fail(out, "loop", e),
    };
    // `--level`: level-triggered stream watchers (to compare syscalls).
    let level = addrs.first() == Some(&"--level");
    let addrs = if level { &addrs[1..] } else { addrs };
    let trigger = if level { linux_event::Trigger::Level } else { linux_event::Trigger::Edge };
    let mut echo = match Streams::with_options(linux_event::net::StreamOptions::new().trigger(trigger)) {
        Ok(streams) => Echo { listen: Listeners::new(), streams },
        Err(e) => return fail(out, "buffer pool", e),
    };
    let defaults = ["127.0.0.1:7777"];
    let addrs = if addrs.is_empty() { &defaults[..] } else { addrs };
    for text in addrs {
        let addr: SocketAddr = match text.parse() {
            Ok(a) => a,
            Err(e) => {
                let _ = writeln!(out, "echo: {text}: {e}");
                return 2;
            }
        };
        match echo.listen.listen(&mut lp, &addr, ListenOptions::new().backlog(4096), 0, accepted) {
            Ok(id) => {
                let at = echo.listen.local_addr(id).unwrap_or(addr);
                let _ = writeln!(out, "listening on {at}");
            }
            Err(e) => return fail(out, text, e),
        }
    }
    flush(out);
    match lp.run(&mut echo) {
        Ok(()) => 0,
        Err(e) => fail(out, "run", e),
    }
}

fn fail(out: &mut dyn core::fmt::Write, what: &str, e: linux_event::Error) -> i32 {
    // The errno's number, not its name: the table of names would double
    // the static binary.
    match e {
        linux_event::Error::Os(errno) => {
            let _ = writeln!(out, "echo: {what}: errno {}", errno.raw());
        }
        _ => {
            let _ = writeln!(out, "echo: {what}: refused by the loop");
        }
    }
    flush(out);
    1
}

#[cfg(linux_event_nolibc)]
fn flush(_out: &mut dyn core::fmt::Write) {}
#[cfg(not(linux_event_nolibc))]
fn flush(_out: &mut dyn core::fmt::Write) {
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

#[cfg(linux_event_nolibc)]
linux_event::entry!(nolibc_main);

#[cfg(linux_event_nolibc)]
fn nolibc_main(startup: linux_event::rt::Startup) -> i32 {
    let mut args: heapless::Vec<&str, 8> = heapless::Vec::new();
    for a in startup.args().skip(1) {
        let _ = args.push(a.to_str().unwrap_or(""));
    }
    /// Every line flushed at once, so a parent reading the address sees it.
    struct Lines(linux_event::rt::FdWriter);
    impl core::fmt::Write for Lines {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            self.0.write_str(s)?;
            if s.ends_with('\n') {
                let _ = self.0.flush();
            }
            Ok(())
        }
    }
    serve(&args, &mut Lines(linux_event::rt::stdout()))
}

#[cfg(not(linux_event_nolibc))]
fn main() {
    struct Stdout;
    impl core::fmt::Write for Stdout {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            print!("{s}");
            Ok(())
        }
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    std::process::exit(serve(&args, &mut Stdout));
}
