//! Messages as tini 0.19 writes them: `[LEVEL tini (PID)] text`, FATAL and
//! WARN on stderr, INFO, DEBUG and TRACE on stdout, signals named as
//! strsignal names them and errors as strerror does. No allocation.
//!
//! A failed write (EPIPE from a pipe nobody reads, a full disk) is dropped:
//! the init must outlive its own output.

use core::fmt::{self, Write};
use linux_event::sys::{self, Errno};

/// A message on its way to one fd: formatted into a fixed buffer that is
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
        while done < self.len {
            match sys::write(self.fd, &self.buf[done..self.len]) {
                Ok(n) if n > 0 => done += n,
                // EPIPE and every other error: the message is lost, nothing else.
                _ => break,
            }
        }
        self.len = 0;
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut s = s.as_bytes();
        while !s.is_empty() {
            if self.len == self.buf.len() {
                self.flush();
            }
            let take = s.len().min(self.buf.len() - self.len);
            self.buf[self.len..self.len + take].copy_from_slice(&s[..take]);
            self.len += take;
            s = &s[take..];
        }
        Ok(())
    }
}

fn emit(fd: i32, args: fmt::Arguments<'_>) {
    let mut line = Line { fd, buf: [0; 1024], len: 0 };
    let _ = line.write_fmt(args);
    line.flush();
}

/// How much the init says, tini's unsigned verbosity: 0 only fatal errors,
/// 1 warnings too (the default), 2 info, 3 debug, 4 and up trace.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Verbosity(pub u32);

impl Verbosity {
    pub fn fatal(self, args: fmt::Arguments<'_>) {
        emit(2, format_args!("[FATAL tini ({})] {}\n", sys::getpid(), args));
    }
    pub fn warn(self, args: fmt::Arguments<'_>) {
        if self.0 > 0 {
            emit(2, format_args!("[WARN  tini ({})] {}\n", sys::getpid(), args));
        }
    }
    pub fn info(self, args: fmt::Arguments<'_>) {
        if self.0 > 1 {
            emit(1, format_args!("[INFO  tini ({})] {}\n", sys::getpid(), args));
        }
    }
    pub fn debug(self, args: fmt::Arguments<'_>) {
        if self.0 > 2 {
            emit(1, format_args!("[DEBUG tini ({})] {}\n", sys::getpid(), args));
        }
    }
    pub fn trace(self, args: fmt::Arguments<'_>) {
        if self.0 > 3 {
            emit(1, format_args!("[TRACE tini ({})] {}\n", sys::getpid(), args));
        }
    }
}

/// Text on stdout.
pub fn out(args: fmt::Arguments<'_>) {
    emit(1, args);
}

/// Text on stderr.
pub fn err(args: fmt::Arguments<'_>) {
    emit(2, args);
}

/// A C string for display (lossy: invalid UTF-8 shows as `?`).
pub struct Show<'a>(pub &'a core::ffi::CStr);

impl fmt::Display for Show<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.to_bytes().utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("?")?;
            }
        }
        Ok(())
    }
}

/// glibc's descriptions of the standard signals, as strsignal gives them.
const SIGNAL_TEXT: [&str; 31] = [
    "Hangup",
    "Interrupt",
    "Quit",
    "Illegal instruction",
    "Trace/breakpoint trap",
    "Aborted",
    "Bus error",
    "Floating point exception",
    "Killed",
    "User defined signal 1",
    "Segmentation fault",
    "User defined signal 2",
    "Broken pipe",
    "Alarm clock",
    "Terminated",
    "Stack fault",
    "Child exited",
    "Continued",
    "Stopped (signal)",
    "Stopped",
    "Stopped (tty input)",
    "Stopped (tty output)",
    "Urgent I/O condition",
    "CPU time limit exceeded",
    "File size limit exceeded",
    "Virtual timer expired",
    "Profiling timer expired",
    "Window changed",
    "I/O possible",
    "Power failure",
    "Bad system call",
];

/// glibc's SIGRTMIN: it keeps 32 and 33 for its threads, so strsignal calls
/// 34 "Real-time signal 0" (tini's releases are glibc builds).
const GLIBC_SIGRTMIN: i32 = 34;

/// A signal as strsignal(3) names it: `Hangup`, `Real-time signal 2`,
/// `Unknown signal 32`.
pub struct SignalText(pub i32);

impl fmt::Display for SignalText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        match usize::try_from(n).ok().and_then(|i| SIGNAL_TEXT.get(i.checked_sub(1)?)) {
            Some(text) => f.write_str(text),
            None if (GLIBC_SIGRTMIN..=sys::SIGRTMAX).contains(&n) => {
                write!(f, "Real-time signal {}", n - GLIBC_SIGRTMIN)
            }
            None => write!(f, "Unknown signal {n}"),
        }
    }
}

/// An errno as strerror(3) describes it (`No such file or directory`).
pub struct ErrText(pub Errno);

impl fmt::Display for ErrText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.description() {
            Some(text) => f.write_str(text),
            None => write!(f, "Unknown error {}", self.0.raw()),
        }
    }
}
