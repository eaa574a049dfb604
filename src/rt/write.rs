//! `FdWriter`: `core::fmt::Write` onto a file descriptor through a small stack
//! buffer, so a `writeln!` of several pieces becomes one `write` syscall.
//!
//! It never allocates and never panics; a failed write is reported once as
//! `fmt::Error` (or `Errno` from `flush`) and the buffered bytes are dropped.

use core::fmt;

use crate::sys::{self, Errno, RawFd};

/// A buffered writer for `fd`, flushed when the buffer fills, on [`flush`](Self::flush)
/// and on drop. `N` is the buffer size in bytes.
///
/// ```
/// use core::fmt::Write;
/// let mut out = linux_event::rt::stdout();
/// writeln!(out, "{} + {} = {}", 1, 2, 1 + 2).unwrap();
/// out.flush().unwrap();
/// ```
pub struct FdWriter<const N: usize = 256> {
    fd: RawFd,
    len: usize,
    buf: [u8; N],
}

/// A writer for fd 1.
pub fn stdout() -> FdWriter {
    FdWriter::new(1)
}

/// A writer for fd 2.
pub fn stderr() -> FdWriter {
    FdWriter::new(2)
}

impl<const N: usize> FdWriter<N> {
    /// A writer for `fd` with an empty buffer; `fd` stays owned by the caller.
    pub const fn new(fd: RawFd) -> Self {
        FdWriter { fd, len: 0, buf: [0; N] }
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) -> Result<(), Errno> {
        let len = core::mem::take(&mut self.len);
        write_all(self.fd, self.buf.get(..len).unwrap_or(&[]))
    }

    /// Buffers `bytes`, flushing as needed; a piece longer than the buffer is written directly.
    pub fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), Errno> {
        // (No indexing that can panic: a static program that never panics
        // then carries no panic machinery.)
        let room = match self.buf.get_mut(self.len..).and_then(|free| free.get_mut(..bytes.len())) {
            Some(room) => room,
            None => {
                self.flush()?;
                match self.buf.get_mut(..bytes.len()) {
                    Some(room) => room,
                    None => return write_all(self.fd, bytes),
                }
            }
        };
        room.copy_from_slice(bytes);
        self.len += bytes.len();
        Ok(())
    }
}

impl<const N: usize> FdWriter<N> {
    /// Buffers `n` in decimal: what a program that prints numbers without
    /// `core::fmt` (about 3 KB of a static binary) needs.
    ///
    /// ```
    /// let mut out = linux_event::rt::stdout();
    /// out.write_bytes(b"answer: ").unwrap();
    /// out.write_decimal(42).unwrap();
    /// out.write_bytes(b"\n").unwrap();
    /// ```
    pub fn write_decimal(&mut self, n: u64) -> Result<(), Errno> {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut n = n;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            at -= 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.write_bytes(digits.get(at..).unwrap_or(&[]))
    }
}

impl<const N: usize> fmt::Write for FdWriter<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

impl<const N: usize> Drop for FdWriter<N> {
    fn drop(&mut self) {
        // Nothing can be done about a failed write at this point.
        let _ = self.flush();
    }
}

/// Writes all of `bytes`, retrying short writes (`EINTR` is retried in `sys::write`).
fn write_all(fd: RawFd, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match sys::write(fd, bytes)? {
            0 => return Err(Errno::EIO),
            n => bytes = bytes.get(n..).unwrap_or(&[]),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    fn drain(fd: RawFd) -> std::vec::Vec<u8> {
        let mut all = std::vec::Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = sys::read(fd, &mut buf) {
            all.extend_from_slice(&buf[..n]);
        }
        all
    }

    #[test]
    fn buffers_until_full_flush_or_drop() {
        let (r, w) = sys::pipe().unwrap();
        let mut out = FdWriter::<8>::new(w.as_raw_fd());
        write!(out, "abc{}", 12).unwrap();
        assert!(drain(r.as_raw_fd()).is_empty(), "5 bytes fit in the buffer");
        write!(out, "defg").unwrap();
        assert_eq!(drain(r.as_raw_fd()), b"abc12", "a piece that does not fit flushes first");
        out.write_bytes(b"a piece longer than the buffer").unwrap();
        assert_eq!(drain(r.as_raw_fd()), b"defga piece longer than the buffer");
        out.write_bytes(b"end").unwrap();
        drop(out);
        assert_eq!(drain(r.as_raw_fd()), b"end");
    }

    #[test]
    fn decimals_without_core_fmt() {
        let (r, w) = sys::pipe().unwrap();
        let mut out = FdWriter::<64>::new(w.as_raw_fd());
        for n in [0, 7, 10, 65_535, u64::MAX] {
            out.write_decimal(n).unwrap();
            out.write_bytes(b" ").unwrap();
        }
        out.flush().unwrap();
        assert_eq!(drain(r.as_raw_fd()), b"0 7 10 65535 18446744073709551615 ");
    }

    #[test]
    fn a_failed_write_is_an_error_not_a_panic() {
        let (r, w) = sys::pipe().unwrap();
        drop(r);
        let mut out = FdWriter::<4>::new(w.as_raw_fd());
        // The test harness ignores SIGPIPE, so the write fails with EPIPE.
        assert_eq!(out.write_bytes(b"too long for four"), Err(Errno::EPIPE));
        assert_eq!(FdWriter::<4>::new(-1).write_bytes(b"12345"), Err(Errno::EBADF));
    }
}
