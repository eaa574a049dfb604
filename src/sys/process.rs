//! Starting a program: fork with a pidfd (`clone3`, then `clone`, then plain
//! fork + `pidfd_open`), the child's set-up, and `execve` with PATH search.
//!
//! The child runs only raw syscalls on its copy of the parent's stack, so it
//! is safe after a fork from a threaded parent. It never returns: it execs,
//! or writes its errno into a close-on-exec pipe and exits 127. Nothing here
//! allocates.

use super::call::{check, retry};
use super::errno::Errno;
use super::fd::{self, OwnedFd, RawFd};
use super::pidfd;
use super::prctl;
use super::signal::{self, Disposition, MaskHow, SigSet};
use super::tty;
use super::wait::{WaitTarget, wait_exit};
use core::ffi::CStr;
use core::ptr;
use linux_raw_sys::general as k;

/// Most argv or envp entries a spawn takes (the pointer arrays live on the stack).
pub const MAX_EXEC_ARGS: usize = 256;
/// Longest path tried during a PATH search.
const PATH_BUF: usize = 4096;
/// `CLOSE_RANGE_CLOEXEC` (Linux 5.11).
const CLOSE_RANGE_CLOEXEC: usize = 1 << 2;
/// Where the child parks stdio sources before moving them into 0..=2.
const PARK_FD_BASE: usize = 10;

/// Which process group (or session) the child starts in.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum ProcessGroup {
    /// The parent's.
    #[default]
    Inherit,
    /// A new group led by the child (`setpgid(0, 0)`).
    New,
    /// An existing group.
    Join(i32),
    /// A new session and group (`setsid`).
    NewSession,
}

/// Everything the child does between fork and exec. Built by
/// `linux_event::process::Spawn`.
#[derive(Copy, Clone, Debug)]
pub struct ExecPlan<'a> {
    /// The program: a path, or a bare name looked up in `search_path`.
    pub program: &'a CStr,
    /// Arguments, `argv[0]` included.
    pub argv: &'a [&'a CStr],
    /// Environment, `NAME=value` each.
    pub envp: &'a [&'a CStr],
    /// PATH to search when `program` has no slash.
    pub search_path: &'a [u8],
    /// The child's signal mask.
    pub mask: SigSet,
    /// Signals the child starts with ignored; every other one is reset to
    /// its default action.
    pub ignored: SigSet,
    /// Process group or session.
    pub group: ProcessGroup,
    /// A terminal whose foreground group the child's group becomes.
    pub foreground_tty: Option<RawFd>,
    /// Signal the child gets when the parent thread dies.
    pub parent_death_signal: Option<i32>,
    /// Working directory.
    pub cwd: Option<&'a CStr>,
    /// Fds that become the child's 0, 1 and 2 (`None`: inherited).
    pub stdio: [Option<RawFd>; 3],
    /// Close every fd above 2 at exec.
    pub close_other_fds: bool,
}

/// The PATH searched when the environment has none (execvp's choice).
pub const DEFAULT_PATH: &[u8] = b"/usr/local/bin:/usr/bin:/bin";

impl<'a> ExecPlan<'a> {
    /// Runs `program` with `argv`: empty environment, PATH
    /// [`DEFAULT_PATH`], nothing blocked, every signal at its default
    /// action, same process group, fds above 2 closed at exec.
    pub const fn new(program: &'a CStr, argv: &'a [&'a CStr]) -> Self {
        ExecPlan {
            program,
            argv,
            envp: &[],
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
}

/// A started child.
#[derive(Debug)]
pub struct Spawned {
    /// Its pid.
    pub pid: i32,
    /// Its pidfd; `None` where the kernel has no pidfds (then watch it by pid).
    pub pidfd: Option<OwnedFd>,
}

/// A null-terminated array of pointers to C strings, built on the stack.
struct PtrArray {
    ptrs: [*const u8; MAX_EXEC_ARGS + 1],
}

impl PtrArray {
    fn new(strings: &[&CStr]) -> Result<PtrArray, Errno> {
        if strings.len() > MAX_EXEC_ARGS {
            return Err(Errno::E2BIG);
        }
        let mut ptrs = [ptr::null(); MAX_EXEC_ARGS + 1];
        for (p, s) in ptrs.iter_mut().zip(strings) {
            *p = s.as_ptr().cast();
        }
        Ok(PtrArray { ptrs })
    }
}

/// Starts `plan.program` in a new process. Exec failures come back as the
/// child's errno (`ENOENT`, `EACCES`, ...), never as a child exiting 127.
pub fn spawn(plan: &ExecPlan<'_>) -> Result<Spawned, Errno> {
    let argv = PtrArray::new(plan.argv)?;
    let envp = PtrArray::new(plan.envp)?;
    let (err_read, err_write) = fd::pipe()?;
    let (pid, pidfd) = match fork_with_pidfd()? {
        Forked::Child => child(plan, &argv, &envp, err_write.as_raw_fd()),
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop(err_write);
    let mut buf = [0u8; 4];
    // The pipe is non-blocking: wait for exec or failure with a blocking read
    // on a poll-free loop by reading until EOF or four bytes.
    let got = read_report(err_read.as_raw_fd(), &mut buf)?;
    if got == 4 {
        let errno = Errno::from_raw(u32::from_ne_bytes(buf) as u16);
        // Collect the failed child so it leaves no zombie.
        let _ = retry_wait(pid);
        return Err(errno);
    }
    let pidfd = match pidfd {
        Some(fd) => Some(fd),
        None => pidfd::pidfd_open(pid).ok(),
    };
    Ok(Spawned { pid, pidfd })
}

/// Reads the child's report: 0 bytes (exec succeeded, the pipe closed with
/// it) or the 4-byte errno. Waits on the non-blocking pipe with `ppoll`.
fn read_report(fd: RawFd, buf: &mut [u8; 4]) -> Result<usize, Errno> {
    let mut got = 0;
    while got < 4 {
        match fd::read(fd, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EAGAIN) => wait_readable(fd)?,
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn wait_readable(fd: RawFd) -> Result<(), Errno> {
    let mut pfd = k::pollfd { fd, events: k::POLLIN as i16, revents: 0 };
    retry(|| {
        // SAFETY: one valid pollfd, no timeout (null), no signal mask (null).
        check(unsafe { sc::syscall5(k::__NR_ppoll as usize, ptr::addr_of_mut!(pfd) as usize, 1, 0, 0, 8) })
    })
    .map(drop)
}

fn retry_wait(pid: i32) -> Result<(), Errno> {
    // The child exits right after writing its errno; wait for it to do so.
    loop {
        match wait_exit(WaitTarget::Pid(pid), true)? {
            Some(_) => return Ok(()),
            None => core::hint::spin_loop(),
        }
    }
}

enum Forked {
    Child,
    Parent { pid: i32, pidfd: Option<OwnedFd> },
}

/// Forks (no shared memory), asking for a pidfd the newest way the kernel
/// and any emulator in between support.
fn fork_with_pidfd() -> Result<Forked, Errno> {
    let mut pidfd: i32 = -1;
    let args = k::clone_args {
        flags: u64::from(k::CLONE_PIDFD),
        pidfd: ptr::addr_of_mut!(pidfd) as u64,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: u64::from(k::SIGCHLD),
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: 0,
    };
    // SAFETY: a fork without CLONE_VM: the child gets a private copy of memory
    // and continues here on its copy of this stack; `args` and `pidfd` are
    // valid for the call. The child only runs `child`, which never returns.
    let mut ret = check(unsafe {
        sc::syscall2(k::__NR_clone3 as usize, ptr::addr_of!(args) as usize, k::CLONE_ARGS_SIZE_VER0 as usize)
    });
    if let Err(Errno::ENOSYS | Errno::EPERM | Errno::EINVAL) = ret {
        // clone(2) with CLONE_PIDFD (5.2): the pidfd comes back through the
        // parent_tid argument, the third on every supported CPU.
        let flags = (k::CLONE_PIDFD | k::SIGCHLD) as usize;
        // SAFETY: as above; `pidfd` is valid for writes.
        ret = check(unsafe { sc::syscall5(k::__NR_clone as usize, flags, 0, ptr::addr_of_mut!(pidfd) as usize, 0, 0) });
        if let Err(Errno::ENOSYS | Errno::EPERM | Errno::EINVAL) = ret {
            pidfd = -1;
            // SAFETY: a plain fork (exit signal SIGCHLD only), as above.
            ret = check(unsafe { sc::syscall5(k::__NR_clone as usize, k::SIGCHLD as usize, 0, 0, 0, 0) });
        }
    }
    match ret? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent { pid: pid as i32, pidfd: (pidfd >= 0).then(|| OwnedFd::from_new(pidfd)) }),
    }
}

/// The child's side: set up as planned, exec, or report the errno and exit.
fn child(plan: &ExecPlan<'_>, argv: &PtrArray, envp: &PtrArray, err_fd: RawFd) -> ! {
    let errno = match prepare(plan) {
        Ok(()) => exec(plan, argv, envp),
        Err(e) => e,
    };
    let _ = fd::write(err_fd, &u32::from(errno.raw()).to_ne_bytes());
    exit_group(127)
}

fn prepare(plan: &ExecPlan<'_>) -> Result<(), Errno> {
    // Nothing may interrupt the set-up; the planned mask is set last.
    signal::sigprocmask(MaskHow::Set, SigSet::full())?;
    for signo in 1..=signal::MAX_SIGNAL {
        let to = if plan.ignored.contains(signo) { Disposition::Ignore } else { Disposition::Default };
        match signal::set_disposition(signo, to) {
            // SIGKILL and SIGSTOP cannot be changed; neither can the ones an
            // emulator keeps for itself.
            Ok(_) | Err(Errno::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }
    match plan.group {
        ProcessGroup::Inherit => {}
        ProcessGroup::New => setpgid(0, 0)?,
        ProcessGroup::Join(pgid) => setpgid(0, pgid)?,
        ProcessGroup::NewSession => setsid()?,
    }
    if let Some(tty) = plan.foreground_tty {
        // SIGTTOU is blocked here, so a background group may take the
        // terminal. No terminal after all (ENOTTY) or no controlling one
        // (ENXIO) is not worth failing the start for.
        match tty::tcsetpgrp(tty, signal::getpid()) {
            Ok(()) | Err(Errno::ENOTTY | Errno::ENXIO) => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(sig) = plan.parent_death_signal {
        prctl::set_parent_death_signal(sig)?;
    }
    if let Some(dir) = plan.cwd {
        // SAFETY: `dir` is a valid NUL-terminated string for the call.
        check(unsafe { sc::syscall1(k::__NR_chdir as usize, dir.as_ptr() as usize) })?;
    }
    redirect_stdio(&plan.stdio)?;
    if plan.close_other_fds {
        mark_cloexec_from(3)?;
    }
    signal::sigprocmask(MaskHow::Set, plan.mask)?;
    Ok(())
}

/// Moves the planned fds into 0, 1, 2. Sources are first parked above 9 so
/// that a swap (stdin <- 1, stdout <- 0) cannot clobber one with the other.
fn redirect_stdio(stdio: &[Option<RawFd>; 3]) -> Result<(), Errno> {
    let mut parked = [None; 3];
    for (slot, src) in parked.iter_mut().zip(stdio) {
        if let Some(src) = *src {
            // SAFETY: fcntl(F_DUPFD_CLOEXEC) takes no pointers.
            let fd = check(unsafe {
                sc::syscall3(k::__NR_fcntl as usize, src as usize, k::F_DUPFD_CLOEXEC as usize, PARK_FD_BASE)
            })?;
            *slot = Some(fd);
        }
    }
    for (target, fd) in parked.iter().enumerate() {
        if let Some(fd) = *fd {
            // SAFETY: dup3 takes no pointers; the result is not close-on-exec.
            check(unsafe { sc::syscall3(k::__NR_dup3 as usize, fd, target, 0) })?;
        }
    }
    Ok(())
}

/// Marks every fd from `first` up close-on-exec (the error pipe must stay
/// open until the exec itself, so they are not closed here).
fn mark_cloexec_from(first: usize) -> Result<(), Errno> {
    // SAFETY: close_range takes no pointers.
    let r = check(unsafe { sc::syscall3(k::__NR_close_range as usize, first, u32::MAX as usize, CLOSE_RANGE_CLOEXEC) });
    match r {
        Ok(_) => Ok(()),
        // Before Linux 5.11, or an emulator without close_range: one by one.
        Err(Errno::ENOSYS | Errno::EINVAL) => {
            for fd in first..1024 {
                // SAFETY: fcntl(F_SETFD) takes no pointers; EBADF is expected.
                let _ =
                    unsafe { sc::syscall3(k::__NR_fcntl as usize, fd, k::F_SETFD as usize, k::FD_CLOEXEC as usize) };
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Execs the program, searching `search_path` for a name without a slash
/// the way execvp does: EACCES anywhere wins over ENOENT.
fn exec(plan: &ExecPlan<'_>, argv: &PtrArray, envp: &PtrArray) -> Errno {
    let name = plan.program.to_bytes();
    if name.is_empty() {
        return Errno::ENOENT;
    }
    if name.contains(&b'/') {
        return execve(plan.program.as_ptr().cast(), argv, envp);
    }
    let mut buf = [0u8; PATH_BUF];
    let mut saw_eacces = false;
    for dir in plan.search_path.split(|&b| b == b':') {
        let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
        let len = dir.len() + 1 + name.len();
        if len + 1 > PATH_BUF {
            continue;
        }
        buf[..dir.len()].copy_from_slice(dir);
        buf[dir.len()] = b'/';
        buf[dir.len() + 1..len].copy_from_slice(name);
        buf[len] = 0;
        match execve(buf.as_ptr(), argv, envp) {
            Errno::EACCES => saw_eacces = true,
            Errno::ENOENT | Errno::ENOTDIR | Errno::ENODEV | Errno::ETIMEDOUT => {}
            Errno::ESTALE => {}
            other => return other,
        }
    }
    if saw_eacces { Errno::EACCES } else { Errno::ENOENT }
}

fn execve(path: *const u8, argv: &PtrArray, envp: &PtrArray) -> Errno {
    // SAFETY: `path` is NUL-terminated (a CStr or the terminated buffer), and
    // both arrays are null-terminated arrays of pointers to CStrs that outlive
    // the call. On success execve does not return.
    let ret = unsafe {
        sc::syscall3(k::__NR_execve as usize, path as usize, argv.ptrs.as_ptr() as usize, envp.ptrs.as_ptr() as usize)
    };
    check(ret).err().unwrap_or(Errno::EINVAL)
}

fn setpgid(pid: i32, pgid: i32) -> Result<(), Errno> {
    // SAFETY: takes no pointers.
    check(unsafe { sc::syscall2(k::__NR_setpgid as usize, pid as usize, pgid as usize) }).map(drop)
}

fn setsid() -> Result<(), Errno> {
    // SAFETY: takes no pointers.
    check(unsafe { sc::syscall0(k::__NR_setsid as usize) }).map(drop)
}

/// Ends the whole process at once with `code`.
pub fn exit_group(code: i32) -> ! {
    // SAFETY: takes no pointers and does not return.
    unsafe { sc::syscall1(k::__NR_exit_group as usize, code as usize) };
    // exit_group cannot fail; this only satisfies the type checker.
    loop {
        core::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan<'a>(program: &'a CStr, argv: &'a [&'a CStr]) -> ExecPlan<'a> {
        ExecPlan::new(program, argv)
    }

    fn wait(child: &Spawned) -> super::super::wait::ExitStatus {
        loop {
            if let Some((_, st)) = wait_exit(WaitTarget::Pid(child.pid), true).unwrap() {
                return st;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    #[test]
    fn exit_code_comes_back() {
        // A parent that left SIGCHLD ignored (`trap '' CHLD`, inherited across
        // exec) would have the kernel reap the child itself: ECHILD. Waiting
        // for children needs the default, so the test sets it.
        signal::set_disposition(signal::SIGCHLD, Disposition::Default).unwrap();
        let child = spawn(&plan(c"sh", &[c"sh", c"-c", c"exit 42"])).unwrap();
        assert!(child.pid > 0);
        assert_eq!(wait(&child).code(), Some(42));
    }

    #[test]
    fn exec_failures_are_the_childs_errno() {
        assert_eq!(spawn(&plan(c"/nonexistent/prog", &[c"x"])).err(), Some(Errno::ENOENT));
        assert_eq!(spawn(&plan(c"no-such-program-anywhere", &[c"x"])).err(), Some(Errno::ENOENT));
        assert_eq!(spawn(&plan(c"/", &[c"/"])).err(), Some(Errno::EACCES));
        assert_eq!(spawn(&plan(c"", &[])).err(), Some(Errno::ENOENT));
    }

    #[test]
    fn too_many_arguments_is_e2big_before_forking() {
        let many = [c"x"; MAX_EXEC_ARGS + 1];
        assert_eq!(spawn(&plan(c"/bin/true", &many)).err(), Some(Errno::E2BIG));
    }
}
