//! Companion: starting programs from a loop, the way the seeds' Fork does.
//!
//! [`Spawn`] describes the child; its `spawn` forks with a pidfd (through
//! `sys`), sets the child up, searches PATH and execs, and brings a failed
//! exec's errno back over a pipe. The result goes to `Loop::child`. No
//! allocation and no fixed limit: argv and envp are the caller's C strings.

mod child;
mod report;
mod signal_state;
mod spawn;

pub use crate::sys::{CStrArray, CStrArrayMut, ProcessGroup};
pub use signal_state::SignalState;
pub use spawn::{DEFAULT_PATH, Spawn};
