//! Process calls: fork with a pidfd (`clone3`, then `clone`, then a plain
//! fork), `execve`, the set-up calls a child makes before it (`setpgid`,
//! `setsid`, `chdir`, `fcntl`/`dup3`, `close_range`), and `exit_group`.
//!
//! Thin wrappers only: PATH search, stdio and group set-up and the errno
//! report of a failed exec are `process::Spawn`'s. Nothing here allocates,
//! so the calls may run in a child forked from a threaded parent.

use super::call::{check, retry};
use super::cstr_array::Terminated;
use super::errno::Errno;
use super::fd::{OwnedFd, RawFd};
use core::ffi::CStr;
use core::ptr;
use linux_raw_sys::general as k;

/// `CLOSE_RANGE_CLOEXEC` (Linux 5.11).
const CLOSE_RANGE_CLOEXEC: usize = 1 << 2;

/// Which process group (or session) a child starts in.
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

/// A started child.
#[derive(Debug)]
pub struct Spawned {
    /// Its pid.
    pub pid: i32,
    /// Its pidfd; `None` where the kernel has no pidfds (then watch it by pid).
    pub pidfd: Option<OwnedFd>,
}

/// Which side of a fork this is.
pub(crate) enum Forked {
    /// The new process.
    Child,
    /// The caller, with the child's pid and (where the kernel gave one) pidfd.
    Parent { pid: i32, pidfd: Option<OwnedFd> },
}

/// Forks (no shared memory, exit signal SIGCHLD), asking for a pidfd the
/// newest way the kernel and any emulator in between support.
///
/// For the crate's own spawn only: on [`Forked::Child`] the caller is a copy
/// of a possibly threaded process in which only this thread survives, so it
/// must make raw system calls only (no lock another thread may have held)
/// and end in `execve` or [`exit_group`], never returning into its caller's
/// callers.
pub(crate) fn fork_with_pidfd() -> Result<Forked, Errno> {
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
    // valid for the call.
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

/// Replaces the process image with `path`; returns only on failure, with
/// the reason (`E2BIG` when the arguments and environment exceed the
/// kernel's limit).
pub(crate) fn execve(path: &CStr, argv: Terminated<'_>, envp: Terminated<'_>) -> Errno {
    // SAFETY: `path` is NUL-terminated, and `Terminated` guarantees both
    // arrays are null-terminated arrays of pointers to C strings that outlive
    // the call. On success execve does not return.
    let ret = unsafe {
        sc::syscall3(k::__NR_execve as usize, path.as_ptr() as usize, argv.as_ptr() as usize, envp.as_ptr() as usize)
    };
    check(ret).err().unwrap_or(Errno::EINVAL)
}

/// `setpgid(pid, pgid)`: moves `pid` (0: the caller) into group `pgid` (0: its own).
pub(crate) fn setpgid(pid: i32, pgid: i32) -> Result<(), Errno> {
    // SAFETY: takes no pointers.
    check(unsafe { sc::syscall2(k::__NR_setpgid as usize, pid as usize, pgid as usize) }).map(drop)
}

/// `setsid()`: a new session and process group led by the caller.
pub(crate) fn setsid() -> Result<(), Errno> {
    // SAFETY: takes no pointers.
    check(unsafe { sc::syscall0(k::__NR_setsid as usize) }).map(drop)
}

/// `chdir(dir)`.
pub(crate) fn chdir(dir: &CStr) -> Result<(), Errno> {
    // SAFETY: `dir` is a valid NUL-terminated string for the call.
    check(unsafe { sc::syscall1(k::__NR_chdir as usize, dir.as_ptr() as usize) }).map(drop)
}

/// `fcntl(fd, F_DUPFD_CLOEXEC, min)`: a close-on-exec copy of `fd` numbered
/// `min` or above, as a raw number (the caller decides who closes it).
pub(crate) fn dup_at_least(fd: RawFd, min: RawFd) -> Result<RawFd, Errno> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) takes no pointers.
    let r =
        check(unsafe { sc::syscall3(k::__NR_fcntl as usize, fd as usize, k::F_DUPFD_CLOEXEC as usize, min as usize) });
    r.map(|fd| fd as RawFd)
}

/// `dup3(old, new, 0)`: `new` becomes a copy of `old`, not close-on-exec.
pub(crate) fn dup_onto(old: RawFd, new: RawFd) -> Result<(), Errno> {
    // SAFETY: dup3 takes no pointers.
    check(unsafe { sc::syscall3(k::__NR_dup3 as usize, old as usize, new as usize, 0) }).map(drop)
}

/// `close_range(first, ~0, CLOSE_RANGE_CLOEXEC)`: marks every fd from `first`
/// up close-on-exec. `ENOSYS` or `EINVAL` before Linux 5.11.
pub(crate) fn cloexec_from(first: RawFd) -> Result<(), Errno> {
    // SAFETY: close_range takes no pointers.
    check(unsafe { sc::syscall3(k::__NR_close_range as usize, first as usize, u32::MAX as usize, CLOSE_RANGE_CLOEXEC) })
        .map(drop)
}

/// `fcntl(fd, F_SETFD, FD_CLOEXEC)`.
pub(crate) fn set_cloexec(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: fcntl(F_SETFD) takes no pointers.
    check(unsafe { sc::syscall3(k::__NR_fcntl as usize, fd as usize, k::F_SETFD as usize, k::FD_CLOEXEC as usize) })
        .map(drop)
}

/// Blocks until `fd` is readable (or hung up), with `ppoll` and no timeout.
pub(crate) fn wait_readable(fd: RawFd) -> Result<(), Errno> {
    let mut pfd = k::pollfd { fd, events: k::POLLIN as i16, revents: 0 };
    retry(|| {
        // SAFETY: one valid pollfd, no timeout (null), no signal mask (null).
        check(unsafe { sc::syscall5(k::__NR_ppoll as usize, ptr::addr_of_mut!(pfd) as usize, 1, 0, 0, 8) })
    })
    .map(drop)
}

/// Yields the CPU (`sched_yield`).
pub(crate) fn yield_now() {
    // SAFETY: takes no pointers and cannot fail.
    unsafe { sc::syscall0(k::__NR_sched_yield as usize) };
}

/// Ends the whole process (every thread) with `code`; only its low 8 bits
/// reach the parent. The program's one exit path (`rt::exit` is this).
pub fn exit_group(code: i32) -> ! {
    loop {
        // SAFETY: exit_group takes no pointers and does not return; if a
        // seccomp filter made it fail, it is tried again rather than
        // returning into nothing.
        unsafe { sc::syscall1(k::__NR_exit_group as usize, code as isize as usize) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_up_calls_report_the_kernels_errors() {
        assert_eq!(chdir(c"/no/such/dir"), Err(Errno::ENOENT));
        assert_eq!(dup_at_least(-1, 10), Err(Errno::EBADF));
        assert_eq!(dup_onto(-1, 100), Err(Errno::EBADF));
        assert_eq!(set_cloexec(-1), Err(Errno::EBADF));
        assert_eq!(setpgid(-1, 0), Err(Errno::EINVAL));
        let (r, _w) = super::super::fd::pipe().unwrap();
        let high = dup_at_least(r.as_raw_fd(), 500).unwrap();
        assert!(high >= 500);
        let high = OwnedFd::from_new(high);
        // A pipe with nothing in it is not readable: write first, then wait.
        let (r2, w2) = super::super::fd::pipe().unwrap();
        super::super::fd::write(w2.as_raw_fd(), b"x").unwrap();
        assert_eq!(wait_readable(r2.as_raw_fd()), Ok(()));
        drop(high);
    }

    #[test]
    fn a_forked_child_exits_with_the_code_it_asks_for() {
        match fork_with_pidfd().unwrap() {
            Forked::Child => exit_group(256 + 42),
            Forked::Parent { pid, pidfd } => {
                if let Some(fd) = &pidfd {
                    wait_readable(fd.as_raw_fd()).unwrap();
                }
                let status = loop {
                    match super::super::wait::wait_exit(super::super::wait::WaitTarget::Pid(pid), true).unwrap() {
                        Some((_, status)) => break status,
                        None => yield_now(),
                    }
                };
                // Only the low 8 bits reach the parent.
                assert_eq!(status.code(), Some(42));
            }
        }
    }
}
