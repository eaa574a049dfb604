//! Companion: starting programs from a loop, the way the seeds' Fork does.
//!
//! Builds on `sys::spawn` (fork with a pidfd, exec, errno back through a
//! pipe) and hands the result to `Loop::child`. No allocation: argv and envp
//! are the caller's C strings.

mod signal_state;
mod spawn;

pub use signal_state::SignalState;
pub use spawn::Spawn;
