//! The body of the panic handler that `panic_handler!` installs: the message to
//! stderr, then exit with [`PANIC_EXIT_CODE`](super::PANIC_EXIT_CODE).
//!
//! It must never allocate, unwind or panic itself; a panic while printing a panic
//! exits at once without a second message.

use core::fmt::Write;
use core::panic::PanicInfo;
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
