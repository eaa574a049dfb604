//! An HTTP/1.1 keep-alive server that answers every `GET` with the fixed
//! 13-byte body `Hello, world!`: `http_hello [ADDR] [THREADS]` (default
//! `127.0.0.1:8080`, one thread). Several threads each run a loop with
//! their own `SO_REUSEPORT` listener on the same port (std build only).
//!
//! Correct under pipelining: every complete request in the read buffer is
//! answered in order, and what does not fit the write buffer waits for
//! `drained`. Other methods get `405` and the connection closes; a request
//! head larger than the buffer gets `431`; `Connection: close` (and
//! HTTP/1.0 without keep-alive) closes after the answer.
//!
//! `cargo run --release --example http_hello`, then `curl -v 127.0.0.1:8080/`.
//! `cargo static-examples` also builds it as a static binary with no libc.

#![cfg_attr(linux_event_nolibc, no_std, no_main)]

use linux_event::net::{AcceptEvent, ListenOptions, Listeners, SocketAddr, StreamEvent, StreamHandlers, Streams};
use linux_event::{Loop, backend::Epoll};

/// Connections at once (10,240: the benchmark holds 10,000 idle ones).
const CONNECTIONS: usize = 10_240;
const BUF: usize = 4096;

type HttpLoop = Loop<Http, 16384, 16, Epoll>;

struct Http {
    listen: Listeners<HttpLoop, 2>,
    streams: Streams<HttpLoop, CONNECTIONS, BUF>,
}

impl AsMut<Listeners<HttpLoop, 2>> for Http {
    fn as_mut(&mut self) -> &mut Listeners<HttpLoop, 2> {
        &mut self.listen
    }
}

impl AsMut<Streams<HttpLoop, CONNECTIONS, BUF>> for Http {
    fn as_mut(&mut self) -> &mut Streams<HttpLoop, CONNECTIONS, BUF> {
        &mut self.streams
    }
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";
const NOT_ALLOWED: &[u8] =
    b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const TOO_LARGE: &[u8] =
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

const HTTP: StreamHandlers<HttpLoop> = StreamHandlers::new(pump).drained(pump);

/// Where the head of the first request ends (after its blank line).
fn head_end(input: &[u8]) -> Option<usize> {
    input.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Whether the connection ends after answering this request head.
fn closes_after(head: &[u8]) -> bool {
    let mut lines = head.split(|&b| b == b'\n');
    let http10 = lines.next().is_some_and(|l| l.trim_ascii_end().ends_with(b"HTTP/1.0"));
    let mut keep_alive = !http10;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        if line[..colon].eq_ignore_ascii_case(b"connection") {
            let value = line[colon + 1..].trim_ascii();
            if value.eq_ignore_ascii_case(b"close") {
                keep_alive = false;
            } else if value.eq_ignore_ascii_case(b"keep-alive") {
                keep_alive = true;
            }
        }
    }
    !keep_alive
}

/// Answers every complete request that came, in order, while the answers fit.
fn pump(_lp: &mut HttpLoop, http: &mut Http, ev: StreamEvent) {
    let id = ev.id();
    let mut close = false;
    let answered = http.streams.respond(id, |input, out| {
        let mut used = 0;
        while let Some(end) = head_end(&input[used..]) {
            let head = &input[used..used + end];
            let answer = if head.starts_with(b"GET ") { OK } else { NOT_ALLOWED };
            if out.room() < answer.len() {
                break; // the rest waits for `drained`
            }
            out.write(answer);
            used += end;
            if answer != OK || closes_after(head) {
                close = true;
                break;
            }
        }
        if !close && used == 0 && input.len() == BUF {
            out.write(TOO_LARGE);
            close = true;
        }
        used
    });
    if close || answered.is_err() || ev.is_eof() {
        let _ = http.streams.close(id);
    }
}

fn accepted(lp: &mut HttpLoop, http: &mut Http, ev: AcceptEvent) {
    if let Ok(fd) = ev.into_result() {
        // Answers go out whole and at once: no need to wait for more.
        let _ = linux_event::sys::set_nodelay(fd.as_raw_fd(), true);
        let _ = http.streams.adopt(lp, fd, 0, &HTTP);
    }
}

/// Serves `addr` until killed; prints `listening on ADDR` first.
fn serve(addr: &str, reuse_port: bool, out: &mut dyn core::fmt::Write) -> i32 {
    let addr: SocketAddr = match addr.parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = writeln!(out, "http_hello: {addr}: {e}");
            return 2;
        }
    };
    let Ok(mut lp) = HttpLoop::new() else { return fail(out, "loop") };
    let Ok(streams) = Streams::new() else { return fail(out, "buffer pool") };
    let mut http = Http { listen: Listeners::new(), streams };
    let options = ListenOptions::new().backlog(4096).reuse_port(reuse_port);
    match http.listen.listen(&mut lp, &addr, options, 0, accepted) {
        Ok(id) => {
            let _ = writeln!(out, "listening on {}", http.listen.local_addr(id).unwrap_or(addr));
        }
        Err(_) => return fail(out, "listen"),
    }
    done_printing(out);
    if lp.run(&mut http).is_err() {
        return fail(out, "run");
    }
    0
}

fn fail(out: &mut dyn core::fmt::Write, what: &str) -> i32 {
    let _ = writeln!(out, "http_hello: {what} failed");
    done_printing(out);
    1
}

#[cfg(linux_event_nolibc)]
fn done_printing(_: &mut dyn core::fmt::Write) {}
#[cfg(not(linux_event_nolibc))]
fn done_printing(_: &mut dyn core::fmt::Write) {
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

#[cfg(linux_event_nolibc)]
linux_event::entry!(nolibc_main);

#[cfg(linux_event_nolibc)]
fn nolibc_main(startup: linux_event::rt::Startup) -> i32 {
    struct Lines(linux_event::rt::FdWriter);
    impl core::fmt::Write for Lines {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            self.0.write_str(s)?;
            let _ = self.0.flush();
            Ok(())
        }
    }
    let addr = startup.args().nth(1).and_then(|a| a.to_str().ok()).unwrap_or("127.0.0.1:8080");
    serve(addr, false, &mut Lines(linux_event::rt::stdout()))
}

/// Each serving thread's stack (see `main`).
#[cfg(not(linux_event_nolibc))]
const STACK: usize = 64 << 20;

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
    let addr = args.first().cloned().unwrap_or_else(|| "127.0.0.1:8080".into());
    let threads: usize = args.get(1).and_then(|t| t.parse().ok()).unwrap_or(1).max(1);
    // One loop per thread, each with its own SO_REUSEPORT listener. The
    // loop's 16,384 watchers and the 10,240 stream slots are about 3 MiB of
    // fixed tables that live on the serving thread's stack, so each thread
    // gets a stack with room for them (only the pages used are ever paged
    // in; a debug build also makes temporary copies).
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let addr = addr.clone();
            std::thread::Builder::new()
                .stack_size(STACK)
                .spawn(move || serve(&addr, threads > 1, &mut Stdout))
                .expect("spawn a serving thread")
        })
        .collect();
    let code = workers.into_iter().map(|w| w.join().unwrap_or(1)).max().unwrap_or(0);
    std::process::exit(code);
}
