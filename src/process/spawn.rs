//! `Spawn`: how to start a program (defaults a supervisor wants: empty
//! mask, default dispositions, other fds closed at exec), and `spawn`,
//! which forks, has the child set itself up and exec, and collects the
//! child's errno if that failed. It never leaves a child behind on error.
//!
//! Arguments and environment are limited only by the kernel: a terminated
//! pointer array is handed to `execve` as it is, a slice is turned into one
//! on the stack (small) or in an anonymous mapping sized to it (large).

use super::SignalState;
use super::child;
use super::report::ReportPipe;
use crate::sys::cstr_array::Terminated;
use crate::sys::mmap::Anon;
use crate::sys::process::{Forked, fork_with_pidfd, wait_readable, yield_now};
use crate::sys::{self, CStrArray, Errno, ProcessGroup, RawFd, SigSet, Spawned, WaitTarget};
use core::ffi::CStr;
use core::ptr;

/// The PATH searched when the environment has none (execvp's choice).
pub const DEFAULT_PATH: &[u8] = b"/usr/local/bin:/usr/bin:/bin";

/// Pointer arrays of up to this many entries (the null one included) are
/// built on the stack; longer ones in an anonymous mapping of their size.
const ON_STACK: usize = 64;

/// How to start a program. Arguments and environment are the caller's C
/// strings; nothing is copied or allocated, and only the kernel limits how
/// many there are (its `E2BIG` is the error).
///
/// ```standalone_crate
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
    /// A path, or a bare name looked up in `search_path`.
    pub(super) program: &'a CStr,
    /// `None`: `[program]`.
    pub(super) argv: Option<CStrArray<'a>>,
    pub(super) envp: CStrArray<'a>,
    pub(super) search_path: &'a [u8],
    pub(super) mask: SigSet,
    /// Signals the child starts with ignored; every other one is reset to
    /// its default action.
    pub(super) ignored: SigSet,
    pub(super) group: ProcessGroup,
    pub(super) foreground_tty: Option<RawFd>,
    pub(super) parent_death_signal: Option<i32>,
    pub(super) cwd: Option<&'a CStr>,
    /// Fds that become the child's 0, 1 and 2 (`None`: inherited).
    pub(super) stdio: [Option<RawFd>; 3],
    pub(super) close_other_fds: bool,
}

impl<'a> Spawn<'a> {
    /// Runs `program`: a path, or a name looked up in PATH (from the
    /// environment given with [`env`](Self::env), else [`DEFAULT_PATH`]).
    /// `argv` defaults to `[program]`, the environment to empty; nothing is
    /// blocked, every signal starts at its default action, the child stays
    /// in this process group and fds above 2 are closed at exec.
    pub fn new(program: &'a CStr) -> Self {
        Spawn {
            program,
            argv: None,
            envp: CStrArray::empty(),
            search_path: DEFAULT_PATH,
            mask: SigSet::empty(),
            ignored: SigSet::empty(),
            group: ProcessGroup::Inherit,
            foreground_tty: None,
            parent_death_signal: None,
            cwd: None,
            stdio: [None; 3],
            close_other_fds: true,
        }
    }

    /// The whole argument vector, `argv[0]` included: a slice or array of
    /// `&CStr`, or a [`CStrArray`].
    pub fn args(mut self, argv: impl Into<CStrArray<'a>>) -> Self {
        self.argv = Some(argv.into());
        self
    }

    /// The environment (`NAME=value` strings). Its `PATH=` entry, if any, is
    /// what a bare program name is searched in.
    pub fn env(mut self, envp: impl Into<CStrArray<'a>>) -> Self {
        self.envp = envp.into();
        if let Some(path) = self.envp.find(b"PATH=") {
            self.search_path = path;
        }
        self
    }

    /// The PATH to search, overriding the environment's.
    pub fn search_path(mut self, path: &'a [u8]) -> Self {
        self.search_path = path;
        self
    }

    /// The child's signal mask and ignored signals (default: nothing
    /// blocked, every signal at its default action).
    pub fn signal_state(mut self, state: SignalState) -> Self {
        self.mask = state.mask;
        self.ignored = state.ignored;
        self
    }

    /// Process group or session of the child.
    pub fn process_group(mut self, group: ProcessGroup) -> Self {
        self.group = group;
        self
    }

    /// Makes the child's process group the foreground group of `tty`.
    pub fn foreground(mut self, tty: RawFd) -> Self {
        self.foreground_tty = Some(tty);
        self
    }

    /// A signal the child receives when this thread exits.
    pub fn parent_death_signal(mut self, signo: i32) -> Self {
        self.parent_death_signal = Some(signo);
        self
    }

    /// The child's working directory.
    pub fn cwd(mut self, dir: &'a CStr) -> Self {
        self.cwd = Some(dir);
        self
    }

    /// An fd that becomes the child's stdin.
    pub fn stdin(mut self, fd: RawFd) -> Self {
        self.stdio[0] = Some(fd);
        self
    }

    /// An fd that becomes the child's stdout.
    pub fn stdout(mut self, fd: RawFd) -> Self {
        self.stdio[1] = Some(fd);
        self
    }

    /// An fd that becomes the child's stderr.
    pub fn stderr(mut self, fd: RawFd) -> Self {
        self.stdio[2] = Some(fd);
        self
    }

    /// Let the child inherit every fd that is not close-on-exec (by
    /// default everything above 2 is closed at exec).
    pub fn keep_fds(mut self) -> Self {
        self.close_other_fds = false;
        self
    }

    /// Starts the child. `Err(ENOENT)`, `Err(EACCES)`, `Err(E2BIG)` and the
    /// like are the exec's own errors, reported before this returns; a
    /// failed child is already reaped.
    pub fn spawn(&self) -> Result<Spawned, Errno> {
        let own_argv = [self.program];
        let argv = self.argv.unwrap_or(CStrArray::from_slice(&own_argv));
        let (mut argv_stack, mut argv_mapped) = ([ptr::null(); ON_STACK], None);
        let (mut envp_stack, mut envp_mapped) = ([ptr::null(); ON_STACK], None);
        let argv = terminated(argv, &mut argv_stack, &mut argv_mapped)?;
        let envp = terminated(self.envp, &mut envp_stack, &mut envp_mapped)?;
        let report = ReportPipe::new()?;
        let (pid, pidfd) = match fork_with_pidfd()? {
            Forked::Child => child::run(self, argv, envp, report.write_end()),
            Forked::Parent { pid, pidfd } => (pid, pidfd),
        };
        // The pointer arrays' mappings (if any) go when this returns.
        let failed = match report.receive() {
            Ok(None) => None,
            Ok(Some(errno)) => Some(errno),
            Err(e) => {
                // Cannot tell whether the exec worked: do not leave it running.
                let _ = sys::kill(pid, sys::SIGKILL);
                Some(e)
            }
        };
        if let Some(errno) = failed {
            reap(pid, pidfd.as_ref().map(sys::OwnedFd::as_raw_fd));
            return Err(errno);
        }
        let pidfd = pidfd.or_else(|| sys::pidfd_open(pid).ok());
        Ok(Spawned { pid, pidfd })
    }
}

/// `array` as a null-terminated pointer array: itself when it is one, else
/// built in `stack` or, when that is too small, in a mapping put in `mapped`.
fn terminated<'s>(
    array: CStrArray<'s>,
    stack: &'s mut [*const u8; ON_STACK],
    mapped: &'s mut Option<Anon<*const u8>>,
) -> Result<Terminated<'s>, Errno> {
    if let Some(t) = array.terminated() {
        return Ok(t);
    }
    let strings = array.as_slice().unwrap_or_default();
    let storage: &mut [*const u8] = if strings.len() < ON_STACK {
        stack
    } else {
        // More entries than the kernel takes anyway end as ENOMEM or E2BIG.
        let entries = strings.len().checked_add(1).ok_or(Errno::E2BIG)?;
        mapped.insert(Anon::new(entries, ptr::null())?)
    };
    Terminated::fill(strings, storage).ok_or(Errno::E2BIG)
}

/// Collects a child that reported a failed exec (it exits right after).
fn reap(pid: i32, pidfd: Option<RawFd>) {
    if let Some(fd) = pidfd {
        let _ = wait_readable(fd);
    }
    loop {
        match sys::wait_exit(WaitTarget::Pid(pid), true) {
            Ok(None) => yield_now(),
            Ok(Some(_)) | Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::ExitStatus;
    use std::ffi::CString;
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::string::String;
    use std::vec::Vec;

    fn wait(child: &Spawned) -> ExitStatus {
        loop {
            if let Some((_, st)) = sys::wait_exit(WaitTarget::Pid(child.pid), true).unwrap() {
                return st;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Runs `spawn` with stdout on a pipe; returns what it printed and its status.
    fn output(spawn: Spawn<'_>) -> (String, ExitStatus) {
        let (mut r, w) = std::io::pipe().unwrap();
        let child = spawn.stdout(w.as_raw_fd()).spawn().unwrap();
        drop(w);
        let mut out = String::new();
        r.read_to_string(&mut out).unwrap();
        (out, wait(&child))
    }

    fn owned(strings: impl IntoIterator<Item = String>) -> Vec<CString> {
        strings.into_iter().map(|s| CString::new(s).unwrap()).collect()
    }

    #[test]
    fn exit_code_comes_back() {
        let child = Spawn::new(c"sh").args(&[c"sh", c"-c", c"exit 42"]).spawn().unwrap();
        assert!(child.pid > 0);
        assert_eq!(wait(&child).code(), Some(42));
    }

    #[test]
    fn exec_failures_are_the_childs_errno() {
        assert_eq!(Spawn::new(c"/nonexistent/prog").spawn().err(), Some(Errno::ENOENT));
        assert_eq!(Spawn::new(c"no-such-program-anywhere").spawn().err(), Some(Errno::ENOENT));
        assert_eq!(Spawn::new(c"/").spawn().err(), Some(Errno::EACCES));
        assert_eq!(Spawn::new(c"").args(&[]).spawn().err(), Some(Errno::ENOENT));
        assert_eq!(Spawn::new(c"/bin/true").cwd(c"/no/such/dir").spawn().err(), Some(Errno::ENOENT));
    }

    #[test]
    fn path_search_takes_eacces_over_enoent_and_skips_empty_and_bad_entries() {
        // A missing directory and an empty entry (the current one, which has no
        // `sh`) are passed over.
        let (out, st) = output(Spawn::new(c"sh").args(&[c"sh", c"-c", c"echo found"]).search_path(b"/no/dir::/bin"));
        assert_eq!((out.as_str(), st), ("found\n", ExitStatus::Exited(0)));
        // A directory called like the program is EACCES, and that wins.
        assert_eq!(Spawn::new(c"tmp").search_path(b"/:/no/dir").spawn().err(), Some(Errno::EACCES));
        assert_eq!(Spawn::new(c"sh").search_path(b"/no/dir:/also/not").spawn().err(), Some(Errno::ENOENT));
    }

    #[test]
    fn arguments_on_either_side_of_the_stack_array_size_all_arrive() {
        for n in [ON_STACK - 2, ON_STACK - 1, ON_STACK, ON_STACK + 1] {
            // sh -c 'echo $#' NAME ARGS: n strings in all, $# counts n - 3.
            let rest = owned((0..n - 3).map(|i| std::format!("a{i}")));
            let mut argv: Vec<&CStr> = std::vec![c"sh", c"-c", c"echo $# $1 ${#}"];
            argv.extend(rest.iter().map(CString::as_c_str));
            let (out, st) = output(Spawn::new(c"sh").args(&*argv));
            assert_eq!(st, ExitStatus::Exited(0));
            let want = n - 4;
            assert!(out.starts_with(&std::format!("{want} a1 ")), "n={n}: {out}");
        }
    }

    #[test]
    fn a_hundred_thousand_arguments_reach_the_child() {
        let rest = owned((0..100_000).map(|i| std::format!("{i}")));
        let mut argv: Vec<&CStr> = std::vec![c"sh", c"-c", c"echo $# \"$1\" \"${99999}\"", c"sh"];
        argv.extend(rest.iter().map(CString::as_c_str));
        let (out, st) = output(Spawn::new(c"sh").args(&*argv));
        assert_eq!((out.as_str(), st), ("100000 0 99998\n", ExitStatus::Exited(0)));
    }

    #[test]
    fn arguments_beyond_the_kernels_limit_are_e2big_and_leave_no_child() {
        // 80 strings of 100,000 bytes: 8 MB, above the kernel's cap of 6 MB
        // (three quarters of the 8 MB _STK_LIM) whatever the stack limit is.
        let big = CString::new(std::vec![b'x'; 100_000]).unwrap();
        let argv: Vec<&CStr> = core::iter::once(c"true").chain(core::iter::repeat_n(big.as_c_str(), 80)).collect();
        assert_eq!(Spawn::new(c"/bin/true").args(&*argv).spawn().err(), Some(Errno::E2BIG));
        // The same through the environment.
        let envp: Vec<&CStr> = core::iter::repeat_n(big.as_c_str(), 80).collect();
        assert_eq!(Spawn::new(c"/bin/true").env(&*envp).spawn().err(), Some(Errno::E2BIG));
    }

    #[test]
    fn two_thousand_environment_variables_are_all_seen() {
        let vars = owned((0..2000).map(|i| std::format!("LE_VAR_{i}=value {i}")));
        let mut envp: Vec<&CStr> = vars.iter().map(CString::as_c_str).collect();
        envp.push(c"PATH=/usr/bin:/bin");
        let (out, st) = output(Spawn::new(c"env").env(&*envp));
        assert_eq!(st, ExitStatus::Exited(0));
        let seen: Vec<&str> = out.lines().filter(|l| l.starts_with("LE_VAR_")).collect();
        assert_eq!(seen.len(), 2000);
        for (i, line) in seen.iter().enumerate() {
            assert_eq!(*line, std::format!("LE_VAR_{i}=value {i}"));
        }
        assert!(out.lines().any(|l| l == "PATH=/usr/bin:/bin"), "PATH= was used for the search and passed on");
    }

    #[test]
    fn a_terminated_array_is_handed_over_as_it_is() {
        let argv = crate::sys::cstr_array::leaked_terminated(&[c"sh", c"-c", c"echo \"$@\"", c"sh", c"one", c"two"]);
        let mut stack = [ptr::null(); ON_STACK];
        let mut mapped = None;
        let at = argv.terminated().map(|t| t.as_ptr());
        assert!(at.is_some());
        assert_eq!(terminated(argv, &mut stack, &mut mapped).ok().map(|t| t.as_ptr()), at);
        assert!(mapped.is_none() && stack[0].is_null(), "nothing copied");
        let (out, st) = output(Spawn::new(c"sh").args(argv.tail(0)));
        assert_eq!((out.as_str(), st), ("one two\n", ExitStatus::Exited(0)));
    }

    #[test]
    fn stdio_fds_are_set_and_other_fds_are_closed() {
        let (mut r, w) = std::io::pipe().unwrap();
        let child = Spawn::new(c"sh")
            .args(&[c"sh", c"-c", c"echo out; echo err >&2; ls /proc/self/fd | wc -l"])
            .stdout(w.as_raw_fd())
            .stderr(w.as_raw_fd())
            .stdin(w.as_raw_fd())
            .spawn()
            .unwrap();
        drop(w);
        let mut out = String::new();
        r.read_to_string(&mut out).unwrap();
        assert_eq!(wait(&child), ExitStatus::Exited(0));
        // 0, 1, 2 and the one `ls` opens for /proc/self/fd.
        assert_eq!(out, "out\nerr\n4\n");
    }
}
