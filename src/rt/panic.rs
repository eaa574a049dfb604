//! The bodies of the panic handlers that `panic_handler!` installs: the message
//! (or only where it happened) to stderr, then exit with
//! [`PANIC_EXIT_CODE`](super::PANIC_EXIT_CODE).
//!
//! It must never allocate, unwind or panic itself; a panic while printing a panic
//! exits at once without a second message.

use core::fmt::Write;
use core::panic::{Location, PanicInfo};
use core::sync::atomic::{AtomicBool, Ordering};

/// Set by the first panic, so a panic inside the message formatting cannot loop.
static PANICKING: AtomicBool = AtomicBool::new(false);

/// Writes `panicked at FILE:LINE:COL:` and the message to stderr, then exits with 101.
pub fn panic(info: &PanicInfo<'_>) -> ! {
    if !PANICKING.swap(true, Ordering::Relaxed) {
        let mut err = super::stderr();
        let _ = writeln!(err, "{info}");
        let _ = err.flush();
    }
    super::exit(super::PANIC_EXIT_CODE)
}

/// Writes `panicked at FILE:LINE:COL` (no message) to stderr, then exits with
/// 101. Needs no `core::fmt`, and takes only the location, not the
/// `PanicInfo`: once the handler is inlined into core's `panic_fmt`, the
/// message is dead, and with it the formatting code every bounds check
/// would otherwise drag in (about 1 KB, 3 KB with a program's own
/// formatting).
pub fn panic_location(at: Option<&Location<'_>>) -> ! {
    if !PANICKING.swap(true, Ordering::Relaxed) {
        let mut err = super::stderr();
        let _ = err.write_bytes(b"panicked");
        if let Some(at) = at {
            let _ = err.write_bytes(b" at ");
            let _ = err.write_bytes(at.file().as_bytes());
            let _ = err.write_bytes(b":");
            let _ = err.write_decimal(u64::from(at.line()));
            let _ = err.write_bytes(b":");
            let _ = err.write_decimal(u64::from(at.column()));
        }
        let _ = err.write_bytes(b"\n");
        let _ = err.flush();
    }
    super::exit(super::PANIC_EXIT_CODE)
}
