//! Messages as tini 0.19 writes them: `[LEVEL tini (PID)] text`, FATAL and
//! WARN on stderr, INFO, DEBUG and TRACE on stdout, signals named as
//! strsignal names them and errors as strerror does. No allocation.
//!
//! A message is a template and its [`Part`]s, written by one function, not
//! `format_args!`: `core::fmt` (its `write`, padding and integer `Display`
//! code, and the argument tables every `format_args!` builds) was about a
//! sixth of the static init's bytes.
//!
//! A failed write (EPIPE from a pipe nobody reads, a full disk) is dropped:
//! the init must outlive its own output.

use core::ffi::CStr;
use linux_event::sys::{self, Errno};

/// One piece of a message.
#[derive(Copy, Clone)]
pub enum Part<'a> {
    /// Text as it is.
    S(&'a str),
    /// Bytes shown lossily: invalid UTF-8 is left out.
    B(&'a [u8]),
    /// A C string shown lossily: invalid UTF-8 shows as `?`.
    C(&'a CStr),
    /// A number in decimal.
    N(i64),
    /// A byte as a character (`b as char`: Latin-1 above 0x7f).
    Ch(u8),
    /// A signal as strsignal(3) names it.
    Sig(i32),
    /// An errno as strerror(3) describes it.
    E(Errno),
    /// The library's error as its `Display` shows it.
    Lib(linux_event::Error),
}

pub use Part::*;

/// A message on its way to one fd: gathered in a fixed buffer that is
/// written out when full and at the end, so a line of any length arrives
/// whole (and a usual one in a single write).
struct Line {
    fd: i32,
    buf: [u8; 1024],
    len: usize,
}

impl Line {
    fn flush(&mut self) {
        let mut done = 0;
        while let Some(rest) = self.buf.get(done..self.len)
            && !rest.is_empty()
        {
            match sys::write(self.fd, rest) {
                Ok(n) if n > 0 => done += n,
                // EPIPE and every other error: the message is lost, nothing else.
                _ => break,
            }
        }
        self.len = 0;
    }

    fn put(&mut self, mut s: &[u8]) {
        while !s.is_empty() {
            if self.len >= self.buf.len() {
                self.flush();
            }
            let Some(free) = self.buf.get_mut(self.len..) else { return };
            let take = s.len().min(free.len());
            let (now, later) = s.split_at(take);
            if let Some(room) = free.get_mut(..take) {
                room.copy_from_slice(now);
            }
            self.len += take;
            s = later;
        }
    }

    fn decimal(&mut self, n: i64) {
        if n < 0 {
            self.put(b"-");
        }
        let mut n = n.unsigned_abs();
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        while at > 0 {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.put(digits.get(at..).unwrap_or(&[]));
    }

    /// Valid UTF-8 as it is; each invalid sequence as `bad` (nothing or `?`).
    fn lossy(&mut self, bytes: &[u8], bad: &[u8]) {
        for chunk in bytes.utf8_chunks() {
            self.put(chunk.valid().as_bytes());
            if !chunk.invalid().is_empty() {
                self.put(bad);
            }
        }
    }

    fn part(&mut self, part: &Part<'_>) {
        match *part {
            S(s) => self.put(s.as_bytes()),
            B(b) => self.lossy(b, b""),
            C(c) => self.lossy(c.to_bytes(), b"?"),
            N(n) => self.decimal(n),
            Ch(c) if c < 0x80 => self.put(&[c]),
            Ch(c) => self.put(&[0xc0 | (c >> 6), 0x80 | (c & 0x3f)]),
            Sig(n) => self.signal(n),
            E(e) => match e.description() {
                Some(text) => self.put(text.as_bytes()),
                None => {
                    self.put(b"Unknown error ");
                    self.decimal(i64::from(e.raw()));
                }
            },
            Lib(linux_event::Error::Os(e)) => match (e.name(), e.description()) {
                (Some(name), Some(text)) => {
                    for s in [name, " (", text, ")"] {
                        self.put(s.as_bytes());
                    }
                }
                _ => {
                    self.put(b"errno ");
                    self.decimal(i64::from(e.raw()));
                }
            },
            Lib(e) => self.put(e.message().unwrap_or("").as_bytes()),
        }
    }

    fn signal(&mut self, n: i32) {
        match usize::try_from(n).ok().and_then(signal_text) {
            Some(text) => self.put(text),
            None if (GLIBC_SIGRTMIN..=sys::SIGRTMAX).contains(&n) => {
                self.put(b"Real-time signal ");
                self.decimal(i64::from(n - GLIBC_SIGRTMIN));
            }
            None => {
                self.put(b"Unknown signal ");
                self.decimal(i64::from(n));
            }
        }
    }
}

/// Writes `head` (with the pid after it), `template` and `tail` to `fd`.
/// In the template, each `\u{1}` stands for the next of `args` and each
/// `\u{2}` for the first. A template and a slice are cheaper to pass than
/// a list of parts, which every call would build on the stack. (Never
/// inlined: one copy of the writer serves every message.)
#[inline(never)]
fn emit(fd: i32, head: &str, template: &str, args: &[Part<'_>], tail: &str) {
    let mut line = Line { fd, buf: [0; 1024], len: 0 };
    line.put(head.as_bytes());
    if !head.is_empty() {
        line.decimal(i64::from(sys::getpid()));
        line.put(b")] ");
    }
    let mut next = args.iter();
    let bytes = template.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b < 3 {
            line.put(bytes.get(start..i).unwrap_or(&[]));
            start = i + 1;
            if let Some(arg) = if b == 2 { args.first() } else { next.next() } {
                line.part(arg);
            }
        }
    }
    line.put(bytes.get(start..).unwrap_or(&[]));
    line.put(tail.as_bytes());
    line.flush();
}

/// How much the init says, tini's unsigned verbosity: 0 only fatal errors,
/// 1 warnings too (the default), 2 info, 3 debug, 4 and up trace.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Verbosity(pub u32);

impl Verbosity {
    /// Says `template` with `args` at `level` (0 fatal ... 4 trace) if the
    /// verbosity allows.
    #[inline(never)]
    fn say(self, level: u32, template: &str, args: &[Part<'_>]) {
        const HEADS: [&str; 5] = ["[FATAL tini (", "[WARN  tini (", "[INFO  tini (", "[DEBUG tini (", "[TRACE tini ("];
        if self.0 >= level
            && let Some(head) = HEADS.get(level as usize)
        {
            emit(if level < 2 { 2 } else { 1 }, head, template, args, "\n");
        }
    }
    pub fn fatal(self, template: &str, args: &[Part<'_>]) {
        self.say(0, template, args);
    }
    pub fn warn(self, template: &str, args: &[Part<'_>]) {
        self.say(1, template, args);
    }
    pub fn info(self, template: &str, args: &[Part<'_>]) {
        self.say(2, template, args);
    }
    pub fn debug(self, template: &str, args: &[Part<'_>]) {
        self.say(3, template, args);
    }
    pub fn trace(self, template: &str, args: &[Part<'_>]) {
        self.say(4, template, args);
    }
}

/// Text on stdout.
pub fn out(template: &str, args: &[Part<'_>]) {
    emit(1, "", template, args, "");
}

/// Text on stderr.
pub fn err(template: &str, args: &[Part<'_>]) {
    emit(2, "", template, args, "");
}

/// glibc's descriptions of the standard signals, as strsignal gives them,
/// in number order, each ended by a newline: one string rather than a table
/// of `&str` (16 bytes of pointer and length per entry).
const SIGNAL_TEXT: &str = "\
Hangup\n\
Interrupt\n\
Quit\n\
Illegal instruction\n\
Trace/breakpoint trap\n\
Aborted\n\
Bus error\n\
Floating point exception\n\
Killed\n\
User defined signal 1\n\
Segmentation fault\n\
User defined signal 2\n\
Broken pipe\n\
Alarm clock\n\
Terminated\n\
Stack fault\n\
Child exited\n\
Continued\n\
Stopped (signal)\n\
Stopped\n\
Stopped (tty input)\n\
Stopped (tty output)\n\
Urgent I/O condition\n\
CPU time limit exceeded\n\
File size limit exceeded\n\
Virtual timer expired\n\
Profiling timer expired\n\
Window changed\n\
I/O possible\n\
Power failure\n\
Bad system call\n\
";

/// The description of signal `n` (1..=31).
fn signal_text(n: usize) -> Option<&'static [u8]> {
    SIGNAL_TEXT.as_bytes().split(|&b| b == b'\n').nth(n.checked_sub(1)?).filter(|t| !t.is_empty())
}

/// glibc's SIGRTMIN: it keeps 32 and 33 for its threads, so strsignal calls
/// 34 "Real-time signal 0" (tini's releases are glibc builds).
const GLIBC_SIGRTMIN: i32 = 34;
