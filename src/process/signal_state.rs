//! `SignalState`: a thread's signal mask and ignored signals, captured so a
//! child can start with exactly what the parent itself started with.
//!
//! Reading dispositions takes one `rt_sigaction` per signal; capture once,
//! at start-up, before the loop blocks anything.

use crate::sys::{self, Disposition, Errno, MAX_SIGNAL, SigSet};

/// A signal mask and the set of ignored signals.
///
/// ```
/// use linux_event::process::SignalState;
/// let at_start = SignalState::capture().unwrap();
/// # let _ = at_start;
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct SignalState {
    /// The blocked signals.
    pub mask: SigSet,
    /// The signals whose disposition is "ignore" (these survive `execve`).
    pub ignored: SigSet,
}

impl SignalState {
    /// The calling thread's mask and the process's ignored signals, now.
    pub fn capture() -> Result<SignalState, Errno> {
        let mask = sys::current_mask()?;
        let mut ignored = SigSet::empty();
        for signo in 1..=MAX_SIGNAL {
            if let Ok(Disposition::Ignore) = sys::disposition(signo) {
                ignored = ignored.with(signo);
            }
        }
        Ok(SignalState { mask, ignored })
    }
}
