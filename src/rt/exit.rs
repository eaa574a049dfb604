//! Ending the process: `exit` (`sys::exit_group`, the one exit path) and the [`Exit`] trait
//! that turns what `main` returns into an exit status.
//!
//! Nothing here runs destructors or flushes anything: there is no libc `atexit`.

use core::fmt::{Display, Write};

/// The exit status of a program that panicked (the same as std's).
pub const PANIC_EXIT_CODE: i32 = 101;

/// Ends the process (every thread) with `code`; only its low 8 bits reach the parent.
/// The program's one exit path: this is `sys::exit_group`.
pub use crate::sys::exit_group as exit;

/// What a no-libc `main` may return: the exit status it stands for.
///
/// ```
/// use linux_event::rt::Exit;
/// assert_eq!(().code(), 0);
/// assert_eq!(3i32.code(), 3);
/// assert_eq!(Ok::<(), &str>(()).code(), 0);
/// ```
pub trait Exit {
    /// The exit status; may write a message to stderr first.
    fn code(self) -> i32;
}

impl Exit for () {
    fn code(self) -> i32 {
        0
    }
}

impl Exit for i32 {
    fn code(self) -> i32 {
        self
    }
}

impl Exit for u8 {
    fn code(self) -> i32 {
        i32::from(self)
    }
}

/// `Ok(v)` exits with `v`'s status; `Err(e)` prints `error: {e}` to stderr and exits with 1.
impl<T: Exit, E: Display> Exit for Result<T, E> {
    fn code(self) -> i32 {
        match self {
            Ok(v) => v.code(),
            Err(e) => {
                let mut err = super::stderr();
                let _ = writeln!(err, "error: {e}");
                let _ = err.flush();
                1
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_results_map_to_exit_statuses() {
        assert_eq!(().code(), 0);
        assert_eq!(7i32.code(), 7);
        assert_eq!(255u8.code(), 255);
        assert_eq!(Ok::<u8, &str>(4).code(), 4);
        assert_eq!(Ok::<(), crate::Error>(()).code(), 0);
    }
}
