//! waitid(2): collect a child's exit, by pidfd, by pid or any child.
//!
//! The kernel's 128-byte `siginfo_t` is read through a minimal struct defined
//! here (linux-raw-sys only has it as nested unions), pinned by a size test.

use super::call::{check, retry};
use super::errno::Errno;
use super::fd::RawFd;
use core::ptr;
use linux_raw_sys::general as k;

/// How a child ended.
///
/// ```
/// use linux_event::sys::ExitStatus;
/// let s = ExitStatus::Exited(42);
/// assert_eq!(s.code(), Some(42));
/// assert_eq!(ExitStatus::Signaled { signal: 15, core_dumped: false }.code(), None);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ExitStatus {
    /// It called `exit` with this code.
    Exited(i32),
    /// A signal killed it.
    Signaled {
        /// The signal.
        signal: i32,
        /// Whether it dumped core.
        core_dumped: bool,
    },
}

impl ExitStatus {
    /// The exit code, if it exited normally.
    pub fn code(self) -> Option<i32> {
        match self {
            ExitStatus::Exited(c) => Some(c),
            ExitStatus::Signaled { .. } => None,
        }
    }

    /// The shell's view: the code, or 128 + the signal.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled { signal, .. } => 128 + signal,
        }
    }
}

/// Which children `waitid` looks at.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum WaitTarget {
    /// The child behind this pidfd.
    Pidfd(RawFd),
    /// The child with this pid.
    Pid(i32),
    /// Any child.
    Any,
}

/// The head of the kernel's `siginfo_t` as `waitid` fills it for SIGCHLD.
#[repr(C)]
#[derive(Copy, Clone)]
struct WaitInfo {
    signo: i32,
    errno: i32,
    code: i32,
    _pad: i32,
    pid: i32,
    uid: u32,
    status: i32,
    _rest: [u8; 100],
}

const _: () = assert!(core::mem::size_of::<WaitInfo>() == 128);

/// Collects one exited child without blocking: `Ok(None)` when the target
/// has not exited yet. With `reap == false` the child stays a zombie
/// (`WNOWAIT`). `ECHILD` when there is no such child of ours.
pub fn wait_exit(target: WaitTarget, reap: bool) -> Result<Option<(i32, ExitStatus)>, Errno> {
    let (idtype, id) = match target {
        WaitTarget::Pidfd(fd) => (k::P_PIDFD, fd as usize),
        WaitTarget::Pid(pid) => (k::P_PID, pid as usize),
        WaitTarget::Any => (k::P_ALL, 0),
    };
    let mut options = k::WEXITED | k::WNOHANG;
    if !reap {
        options |= k::WNOWAIT;
    }
    let mut info = WaitInfo { signo: 0, errno: 0, code: 0, _pad: 0, pid: 0, uid: 0, status: 0, _rest: [0; 100] };
    retry(|| {
        // SAFETY: `info` is a valid, writable 128-byte siginfo; the rusage
        // pointer is null (not wanted).
        check(unsafe {
            sc::syscall5(
                k::__NR_waitid as usize,
                idtype as usize,
                id,
                ptr::addr_of_mut!(info) as usize,
                options as usize,
                0,
            )
        })
    })?;
    // WNOHANG with nothing to report leaves si_pid zero.
    if info.pid == 0 {
        return Ok(None);
    }
    let status = match info.code as u32 {
        k::CLD_EXITED => ExitStatus::Exited(info.status),
        k::CLD_DUMPED => ExitStatus::Signaled { signal: info.status, core_dumped: true },
        _ => ExitStatus::Signaled { signal: info.status, core_dumped: false },
    };
    Ok(Some((info.pid, status)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_children_is_echild() {
        // A fresh thread of the test binary may still have children from
        // other tests, so ask about a pid that is certainly not ours.
        assert_eq!(wait_exit(WaitTarget::Pid(0x7fff_fff0), true), Err(Errno::ECHILD));
        assert_eq!(wait_exit(WaitTarget::Pidfd(-1), true).err(), Some(Errno::EINVAL));
        assert_eq!(wait_exit(WaitTarget::Pidfd(1 << 20), true).err(), Some(Errno::EBADF));
    }

    #[test]
    fn shell_codes() {
        assert_eq!(ExitStatus::Signaled { signal: 9, core_dumped: false }.shell_code(), 137);
        assert_eq!(ExitStatus::Exited(3).shell_code(), 3);
    }
}
