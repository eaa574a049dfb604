//! A small `cat` / `cp` / `du` on asynchronous file operations, with no libc:
//!
//! ```text
//! nolibc_files cat FILE...      # FILEs to stdout, 64 KiB at a time
//! nolibc_files cp SRC DST       # copies, then fsyncs DST
//! nolibc_files du PATH...       # KiB allocated to each PATH (lstat), and the total
//! nolibc_files                  # self-test: mkdir, write, cp, read back, stat, unlink, rmdir
//! ```
//!
//! Every file operation goes through `linux_event::files` on the loop:
//! io_uring where the kernel allows it, the clone()d workers otherwise (the
//! first line says which, and why). The program has no allocator: its one
//! buffer is a `StaticBuffer`. `cargo static-examples` builds it as a static
//! binary for x86_64 and aarch64; built any other way it is a std program
//! running the same code.

#![cfg_attr(linux_event_nolibc, no_std, no_main)]

use core::fmt::Write;
use linux_event::files::{Engine, FileEvent, Files, OpenOptions, StaticBuffer};
use linux_event::rt::{self, FdWriter, Startup};
use linux_event::sys::{self, OwnedFd, RawFd};
use linux_event::{Errno, Loop};

#[cfg(linux_event_nolibc)]
linux_event::entry!(run);

#[cfg(not(linux_event_nolibc))]
fn main() {
    let args: Vec<std::ffi::CString> = std::env::args_os()
        .map(|a| std::ffi::CString::new(std::os::unix::ffi::OsStringExt::into_vec(a)).unwrap_or_default())
        .collect();
    let args: Vec<&[u8]> = args.iter().map(|a| a.to_bytes()).collect();
    rt::exit(start(&args))
}

#[cfg(linux_event_nolibc)]
fn run(startup: Startup) -> i32 {
    let mut args: heapless::Vec<&[u8], 64> = heapless::Vec::new();
    for a in startup.args() {
        if args.push(a.to_bytes()).is_err() {
            let _ = writeln!(rt::stderr(), "nolibc_files: at most 63 arguments");
            return 2;
        }
    }
    start(&args)
}

#[cfg(not(linux_event_nolibc))]
#[allow(dead_code)]
fn run(_: Startup) -> i32 {
    0
}

type Lp = Loop<Tool, 4, 4>;
type Fs = Files<Lp, 8, 512>;
type Path = heapless::Vec<u8, 512>;

const CHUNK: usize = 64 * 1024;
static BUFFER: StaticBuffer<CHUNK> = StaticBuffer::new();
const CURRENT: u64 = Fs::CURRENT_POSITION;
const SAMPLE: &[u8] = b"linux-event files: a line written, copied and read back without libc\n";

#[derive(Copy, Clone, PartialEq, Eq)]
enum Mode {
    Cat,
    Cp,
    Du,
    SelfTest,
}

struct Tool {
    files: Fs,
    mode: Mode,
    paths: heapless::Vec<Path, 62>,
    next: usize,
    src: Option<OwnedFd>,
    dst: Option<OwnedFd>,
    offset: u64,
    buf: Option<&'static mut [u8]>,
    kib: u64,
    status: i32,
    out: FdWriter,
    step: u32,
}

impl AsMut<Fs> for Tool {
    fn as_mut(&mut self) -> &mut Fs {
        &mut self.files
    }
}

fn start(args: &[&[u8]]) -> i32 {
    let mut err = rt::stderr();
    let mode = match args.get(1).copied() {
        Some(b"cat") => Mode::Cat,
        Some(b"cp") if args.len() == 4 => Mode::Cp,
        Some(b"du") => Mode::Du,
        None => Mode::SelfTest,
        _ => {
            let _ = writeln!(err, "usage: nolibc_files [cat FILE... | cp SRC DST | du PATH...]");
            return 2;
        }
    };
    let files = match Fs::new(Engine::Auto) {
        Ok(f) => f,
        Err(e) => {
            let _ = writeln!(err, "nolibc_files: no file operations: {e}");
            return 1;
        }
    };
    let mut tool = Tool {
        files,
        mode,
        paths: heapless::Vec::new(),
        next: 0,
        src: None,
        dst: None,
        offset: 0,
        buf: BUFFER.take(),
        kib: 0,
        status: 0,
        out: rt::stdout(),
        step: 0,
    };
    for a in args.iter().skip(2) {
        let mut p = Path::new();
        if p.extend_from_slice(a).is_err() || tool.paths.push(p).is_err() {
            let _ = writeln!(err, "nolibc_files: path too long, or too many");
            return 2;
        }
    }
    let mut lp = match Lp::new() {
        Ok(lp) => lp,
        Err(e) => {
            let _ = writeln!(err, "nolibc_files: loop: {e}");
            return 1;
        }
    };
    if let Err(e) = tool.files.attach(&mut lp) {
        let _ = writeln!(err, "nolibc_files: attach: {e}");
        return 1;
    }
    if mode == Mode::SelfTest {
        let engine = tool.files.engine().name();
        let _ = match tool.files.fallback() {
            Some((tried, why)) => writeln!(tool.out, "engine: {engine} ({} refused: {why:?})", tried.name()),
            None => writeln!(tool.out, "engine: {engine}"),
        };
        let _ = tool.out.flush();
        self_test_step(&mut tool);
    } else {
        next_path(&mut tool);
    }
    if let Err(e) = lp.run(&mut tool) {
        let _ = writeln!(err, "nolibc_files: loop: {e}");
        return 1;
    }
    let _ = tool.out.flush();
    tool.status
}

/// Reports a failed operation and ends the program with status 1.
fn fail(lp: &mut Lp, tool: &mut Tool, what: &str, errno: Errno) {
    let _ = tool.out.flush();
    let _ = writeln!(rt::stderr(), "nolibc_files: {what}: {errno:?}");
    tool.status = 1;
    lp.stop();
}

fn fd_of(f: &Option<OwnedFd>) -> RawFd {
    f.as_ref().map_or(-1, OwnedFd::as_raw_fd)
}

/// Starts on the next path of `cat` or `du`, or the copy; stops at the end.
fn next_path(tool: &mut Tool) {
    let Some(path) = tool.paths.get(tool.next).cloned() else {
        if tool.mode == Mode::Du {
            let _ = writeln!(tool.out, "{}\ttotal", tool.kib);
        }
        tool.step = u32::MAX;
        return;
    };
    tool.next += 1;
    tool.offset = 0;
    let made = match tool.mode {
        Mode::Du => tool.files.lstat(&path, 0, on_stat),
        _ => tool.files.open(&path, &OpenOptions::read_only(), 0, on_open_src),
    };
    if made.is_err() {
        tool.status = 1;
    }
}

/// Ends the loop once `next_path` ran out (called from every callback).
fn maybe_done(lp: &mut Lp, tool: &Tool) {
    if tool.step == u32::MAX {
        lp.stop();
    }
}

fn on_stat(lp: &mut Lp, tool: &mut Tool, ev: FileEvent) {
    let path = tool.paths.get(tool.next - 1).cloned().unwrap_or_default();
    match ev.stat() {
        Ok(s) => {
            let kib = s.blocks / 2;
            tool.kib += kib;
            let _ = write!(tool.out, "{kib}\t");
            let _ = tool.out.write_bytes(&path);
            let _ = tool.out.write_str("\n");
        }
        Err(e) => {
            let _ = writeln!(rt::stderr(), "nolibc_files: du: {e:?}");
            tool.status = 1;
        }
    }
    next_path(tool);
    maybe_done(lp, tool);
}

fn on_open_src(lp: &mut Lp, tool: &mut Tool, mut ev: FileEvent) {
    match ev.take_fd() {
        Ok(fd) => tool.src = Some(fd),
        Err(e) => return fail(lp, tool, "open", e),
    }
    if tool.mode == Mode::Cp && tool.step == 0 {
        let dst = tool.paths.get(1).cloned().unwrap_or_default();
        let opts = OpenOptions::new().write(true).create(true).truncate(true).mode(0o644);
        if let Err(e) = tool.files.open(&dst, &opts, 0, on_open_dst) {
            return fail(lp, tool, "open", os(e));
        }
        return;
    }
    read_more(lp, tool);
}

fn on_open_dst(lp: &mut Lp, tool: &mut Tool, mut ev: FileEvent) {
    match ev.take_fd() {
        Ok(fd) => tool.dst = Some(fd),
        Err(e) => return fail(lp, tool, "open", e),
    }
    read_more(lp, tool);
}

fn os(e: linux_event::Error) -> Errno {
    match e {
        linux_event::Error::Os(errno) => errno,
        _ => Errno::ENOMEM,
    }
}

fn read_more(lp: &mut Lp, tool: &mut Tool) {
    let Some(buf) = tool.buf.take() else { return fail(lp, tool, "read", Errno::ENOMEM) };
    if let Err(refused) = tool.files.read(fd_of(&tool.src), tool.offset, buf, CHUNK, 0, on_read) {
        tool.buf = Some(refused.buffer);
        fail(lp, tool, "read", os(refused.error));
    }
}

fn on_read(lp: &mut Lp, tool: &mut Tool, mut ev: FileEvent) {
    let n = match ev.bytes() {
        Ok(n) => n,
        Err(e) => return fail(lp, tool, "read", e),
    };
    tool.buf = ev.take_buffer();
    if n == 0 {
        // End of file: cp syncs its copy first; then both close what they opened.
        match &tool.dst {
            Some(dst) => {
                if let Err(e) = tool.files.fsync(dst.as_raw_fd(), 0, on_synced) {
                    fail(lp, tool, "fsync", os(e));
                }
            }
            None => close_all(lp, tool),
        }
        return;
    }
    let (fd, at) = match tool.mode {
        Mode::Cat => (1, CURRENT),
        _ => (fd_of(&tool.dst), tool.offset),
    };
    let Some(buf) = tool.buf.take() else { return };
    if let Err(refused) = tool.files.write(fd, at, buf, n, n as u64, on_written) {
        tool.buf = Some(refused.buffer);
        fail(lp, tool, "write", os(refused.error));
    }
}

fn on_synced(lp: &mut Lp, tool: &mut Tool, ev: FileEvent) {
    match ev.errno() {
        Some(e) => fail(lp, tool, "fsync", e),
        None => close_all(lp, tool),
    }
}

/// Closes the source and the copy (each request after the other's data is safe).
fn close_all(lp: &mut Lp, tool: &mut Tool) {
    for fd in [tool.src.take(), tool.dst.take()].into_iter().flatten() {
        if let Err(e) = tool.files.close(fd.into_raw_fd(), 0, on_closed) {
            return fail(lp, tool, "close", os(e));
        }
    }
}

fn on_written(lp: &mut Lp, tool: &mut Tool, mut ev: FileEvent) {
    tool.buf = ev.take_buffer();
    match ev.bytes() {
        Ok(n) if n as u64 == ev.data() => {
            tool.offset += n as u64;
            read_more(lp, tool);
        }
        Ok(_) => fail(lp, tool, "write", Errno::EIO),
        Err(e) => fail(lp, tool, "write", e),
    }
}

fn on_closed(lp: &mut Lp, tool: &mut Tool, ev: FileEvent) {
    if let Some(e) = ev.errno() {
        return fail(lp, tool, "close", e);
    }
    if tool.files.nreqs() > 0 {
        return; // the other close
    }
    match tool.mode {
        Mode::SelfTest => self_test_step(tool),
        Mode::Cp => tool.step = u32::MAX,
        _ => next_path(tool),
    }
    maybe_done(lp, tool);
}

/// The self-test, one request per step.
fn self_test_step(tool: &mut Tool) {
    let mut dir = Path::new();
    let _ = dir.extend_from_slice(b"/tmp/nolibc_files.");
    let mut pid = [0u8; 10];
    let mut n = sys::getpid() as u32;
    let mut len = 0;
    loop {
        pid[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    pid[..len].reverse();
    let _ = dir.extend_from_slice(&pid[..len]);
    let join = |name: &[u8]| {
        let mut p = dir.clone();
        let _ = p.extend_from_slice(name);
        p
    };
    let (a, b) = (join(b"/a"), join(b"/b"));
    tool.step += 1;
    let made = match tool.step {
        1 => tool.files.mkdir(&dir, 0o700, 0, self_test_done),
        2 => tool.files.open(&a, &OpenOptions::new().write(true).create_new(true), 0, |lp, tool, mut ev| {
            match ev.take_fd() {
                Ok(fd) => {
                    let raw = fd.as_raw_fd();
                    tool.src = Some(fd);
                    let wrote = tool.files.write_static(raw, 0, SAMPLE, 0, |lp, tool, ev| {
                        if ev.bytes() != Ok(SAMPLE.len()) {
                            return fail(lp, tool, "write", ev.errno().unwrap_or(Errno::EIO));
                        }
                        close_all(lp, tool);
                    });
                    if let Err(e) = wrote {
                        fail(lp, tool, "write", os(e));
                    }
                }
                Err(e) => fail(lp, tool, "open", e),
            }
        }),
        3 => {
            // cp a b, then back to step 4 from on_closed.
            tool.mode = Mode::Cp;
            tool.paths.clear();
            let _ = tool.paths.push(a.clone());
            let _ = tool.paths.push(b.clone());
            tool.files.open(&a, &OpenOptions::read_only(), 0, |lp, tool, mut ev| {
                tool.mode = Mode::SelfTest;
                tool.step = 10;
                match ev.take_fd() {
                    Ok(fd) => tool.src = Some(fd),
                    Err(e) => return fail(lp, tool, "open", e),
                }
                let dst = tool.paths.get(1).cloned().unwrap_or_default();
                let opts = OpenOptions::new().write(true).create(true).truncate(true);
                if tool.files.open(&dst, &opts, 0, on_open_dst).is_err() {
                    fail(lp, tool, "open", Errno::ENOMEM);
                }
            })
        }
        11 => tool.files.stat(&b, 0, |lp, tool, ev| match ev.stat() {
            Ok(s) if s.size == SAMPLE.len() as u64 && s.is_file() => self_test_step(tool),
            Ok(_) => fail(lp, tool, "stat: the copy's size", Errno::EIO),
            Err(e) => fail(lp, tool, "stat", e),
        }),
        12 => tool.files.open(&b, &OpenOptions::read_only(), 0, |lp, tool, mut ev| {
            match (ev.take_fd(), tool.buf.take()) {
                (Ok(fd), Some(buf)) => {
                    let raw = fd.as_raw_fd();
                    tool.src = Some(fd);
                    let r = tool.files.read(raw, 0, buf, CHUNK, 0, |lp, tool, mut ev| {
                        let same = ev.filled() == SAMPLE;
                        tool.buf = ev.take_buffer();
                        if !same {
                            return fail(lp, tool, "read: the copy differs", Errno::EIO);
                        }
                        close_all(lp, tool);
                    });
                    if let Err(refused) = r {
                        tool.buf = Some(refused.buffer);
                        fail(lp, tool, "read", os(refused.error));
                    }
                }
                (Err(e), _) => fail(lp, tool, "open", e),
                (_, None) => fail(lp, tool, "read", Errno::ENOMEM),
            }
        }),
        13 => tool.files.unlink(&a, 0, self_test_done),
        14 => tool.files.unlink(&b, 0, self_test_done),
        15 => tool.files.rmdir(&dir, 0, self_test_done),
        _ => {
            let _ = writeln!(tool.out, "self-test: mkdir, write, cp, stat, read back, unlink, rmdir: ok");
            tool.step = u32::MAX;
            return;
        }
    };
    if let Err(e) = made {
        tool.status = 1;
        let _ = writeln!(rt::stderr(), "nolibc_files: step {}: {e}", tool.step);
        tool.step = u32::MAX;
    }
}

/// A self-test step finished: on to the next one.
fn self_test_done(lp: &mut Lp, tool: &mut Tool, ev: FileEvent) {
    if let Some(e) = ev.errno() {
        return fail(lp, tool, "self-test", e);
    }
    if tool.files.nreqs() == 0 {
        self_test_step(tool);
    }
    maybe_done(lp, tool);
}
