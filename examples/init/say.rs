//! Messages in tini's format, `[LEVEL tini (PID)] text`, on stderr, and
//! plain text on stdout or stderr. One write per message, no allocation.

use core::fmt::{self, Write};
use linux_event::sys;

/// A message formatted into a fixed buffer (longer ones are cut).
struct Line {
    buf: [u8; 2048],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let take = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

fn emit(fd: i32, args: fmt::Arguments<'_>) {
    let mut line = Line { buf: [0; 2048], len: 0 };
    let _ = line.write_fmt(args);
    let mut done = 0;
    while done < line.len {
        match sys::write(fd, &line.buf[done..line.len]) {
            Ok(n) if n > 0 => done += n,
            _ => break,
        }
    }
}

/// How much the init says: 0 only fatal errors, 1 warnings (the default),
/// 2 info, 3 debug.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Verbosity(pub i32);

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
            emit(2, format_args!("[INFO  tini ({})] {}\n", sys::getpid(), args));
        }
    }
    pub fn debug(self, args: fmt::Arguments<'_>) {
        if self.0 > 2 {
            emit(2, format_args!("[DEBUG tini ({})] {}\n", sys::getpid(), args));
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
