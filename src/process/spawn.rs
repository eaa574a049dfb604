//! `Spawn`: a builder over `sys::ExecPlan` with the defaults a supervisor
//! wants (empty mask, default dispositions, other fds closed at exec).
//!
//! It only describes the child; `spawn` does the work and never leaves a
//! child behind on error.

use super::SignalState;
use crate::sys::{self, Errno, ExecPlan, ProcessGroup, RawFd, Spawned};
use core::ffi::CStr;

/// How to start a program. Arguments and environment are the caller's C
/// strings; nothing is copied or allocated.
///
/// ```
/// use linux_event::process::Spawn;
/// use linux_event::sys::{ExitStatus, WaitTarget, wait_exit};
///
/// let child = Spawn::new(c"sh").args(&[c"sh", c"-c", c"exit 7"]).spawn()?;
/// let status = loop {
///     if let Some((_, status)) = wait_exit(WaitTarget::Pid(child.pid), true)? { break status; }
/// #   std::thread::sleep(std::time::Duration::from_millis(1));
/// };
/// assert_eq!(status, ExitStatus::Exited(7));
/// assert_eq!(Spawn::new(c"/no/such/program").spawn().err(), Some(linux_event::Errno::ENOENT));
/// # Ok::<(), linux_event::Errno>(())
/// ```
#[derive(Copy, Clone, Debug)]
pub struct Spawn<'a> {
    plan: ExecPlan<'a>,
    own_argv: [&'a CStr; 1],
    argv_given: bool,
}

impl<'a> Spawn<'a> {
    /// Runs `program`: a path, or a name looked up in PATH (from the
    /// environment given with [`env`](Self::env), else
    /// `/usr/local/bin:/usr/bin:/bin`). `argv` defaults to `[program]`,
    /// the environment to empty.
    pub fn new(program: &'a CStr) -> Self {
        Spawn { plan: ExecPlan::new(program, &[]), own_argv: [program], argv_given: false }
    }

    /// The whole argument vector, `argv[0]` included.
    pub fn args(mut self, argv: &'a [&'a CStr]) -> Self {
        self.plan.argv = argv;
        self.argv_given = true;
        self
    }

    /// The environment (`NAME=value` strings). Its `PATH=` entry, if any, is
    /// what a bare program name is searched in.
    pub fn env(mut self, envp: &'a [&'a CStr]) -> Self {
        self.plan.envp = envp;
        if let Some(path) = envp.iter().find_map(|e| e.to_bytes().strip_prefix(b"PATH=")) {
            self.plan.search_path = path;
        }
        self
    }

    /// The PATH to search, overriding the environment's.
    pub fn search_path(mut self, path: &'a [u8]) -> Self {
        self.plan.search_path = path;
        self
    }

    /// The child's signal mask and ignored signals (default: nothing
    /// blocked, every signal at its default action).
    pub fn signal_state(mut self, state: SignalState) -> Self {
        self.plan.mask = state.mask;
        self.plan.ignored = state.ignored;
        self
    }

    /// Process group or session of the child.
    pub fn process_group(mut self, group: ProcessGroup) -> Self {
        self.plan.group = group;
        self
    }

    /// Makes the child's process group the foreground group of `tty`.
    pub fn foreground(mut self, tty: RawFd) -> Self {
        self.plan.foreground_tty = Some(tty);
        self
    }

    /// A signal the child receives when this thread exits.
    pub fn parent_death_signal(mut self, signo: i32) -> Self {
        self.plan.parent_death_signal = Some(signo);
        self
    }

    /// The child's working directory.
    pub fn cwd(mut self, dir: &'a CStr) -> Self {
        self.plan.cwd = Some(dir);
        self
    }

    /// An fd that becomes the child's stdin.
    pub fn stdin(mut self, fd: RawFd) -> Self {
        self.plan.stdio[0] = Some(fd);
        self
    }

    /// An fd that becomes the child's stdout.
    pub fn stdout(mut self, fd: RawFd) -> Self {
        self.plan.stdio[1] = Some(fd);
        self
    }

    /// An fd that becomes the child's stderr.
    pub fn stderr(mut self, fd: RawFd) -> Self {
        self.plan.stdio[2] = Some(fd);
        self
    }

    /// Let the child inherit every fd that is not close-on-exec (by
    /// default everything above 2 is closed at exec).
    pub fn keep_fds(mut self) -> Self {
        self.plan.close_other_fds = false;
        self
    }

    /// Starts the child. `Err(ENOENT)`, `Err(EACCES)` and the like are the
    /// exec's own errors, reported before this returns; a failed child is
    /// already reaped.
    pub fn spawn(&self) -> Result<Spawned, Errno> {
        let mut plan = self.plan;
        if !self.argv_given {
            plan.argv = &self.own_argv;
        }
        sys::spawn(&plan)
    }
}
