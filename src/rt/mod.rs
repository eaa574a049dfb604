//! A small runtime for programs with no libc at all (the `rt` feature): the
//! `_start` glue, the startup block (args, environment, auxv), exit, a panic
//! handler, buffered writes to stdout/stderr, and `memcpy` and friends.
//!
//! The symbols a final binary needs (`_start`, `#[panic_handler]`, `memcpy`...)
//! are never defined by this library itself, only by the macros below invoked in
//! the program's own crate, so std builds and test harnesses never see them.
//!
//! # A complete program
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! use core::fmt::Write;
//! use linux_event::rt::{self, Startup};
//!
//! linux_event::entry!(main);
//!
//! fn main(startup: Startup) -> Result<(), linux_event::Error> {
//!     let mut out = rt::stdout();
//!     let _ = writeln!(out, "{} arguments", startup.args().len());
//!     Ok(())
//! }
//! ```
//!
//! It needs `panic = "abort"`, a static non-PIE link with no start files and no
//! libc; `cargo static-examples` shows the settings (see the README).

mod exit;
mod macros;
pub mod mem;
mod panic;
mod startup;
mod write;

#[cfg(target_arch = "aarch64")]
#[path = "../../arch/aarch64/start.rs"]
mod arch;
#[cfg(target_arch = "riscv64")]
#[path = "../../arch/riscv64/start.rs"]
mod arch;
#[cfg(target_arch = "x86_64")]
#[path = "../../arch/x86_64/start.rs"]
mod arch;

pub use crate::sys::auxv::{AT_EXECFN, AT_HWCAP, AT_NULL, AT_PAGESZ, AT_RANDOM, AT_SECURE, AT_SYSINFO_EHDR};
pub use exit::{Exit, PANIC_EXIT_CODE, exit};
pub use startup::{Auxv, CStrs, Startup};
pub use write::{FdWriter, stderr, stdout};

#[doc(hidden)]
pub use panic::panic as __panic;
#[doc(hidden)]
pub use panic::panic_location as __panic_location;

/// Runs `main` with the startup block at `sp` and exits with its result; called by
/// the `_start` glue that [`start!`](crate::start) defines.
///
/// Before `main` runs, the vDSO address from the auxiliary vector is handed to the
/// clock (`sys::set_sysinfo_ehdr`), so `now()` never needs `/proc`.
///
/// # Safety
///
/// `sp` must be the stack pointer the kernel started the process with (pointing at
/// `argc`), and that stack must stay untouched above `sp` for the rest of the program.
#[doc(hidden)]
pub unsafe fn __start<R: Exit>(sp: *const usize, main: fn(Startup) -> R) -> ! {
    // SAFETY: forwarded from this function's contract.
    let startup = unsafe { Startup::from_stack(sp) };
    let vdso = startup.aux(AT_SYSINFO_EHDR).unwrap_or(0);
    // SAFETY: the value is the kernel's own AT_SYSINFO_EHDR for this process (or 0).
    unsafe { crate::sys::set_sysinfo_ehdr(vdso) };
    exit(main(startup).code())
}
