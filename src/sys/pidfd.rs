//! pidfd(2): a file descriptor for a process, readable once it has exited.
//!
//! `PIDFD_NONBLOCK` is missing from linux-raw-sys and defined here. Opening a
//! pidfd never reaps anything; waiting on it is in `sys::wait`.

use super::call::check;
use super::errno::Errno;
use super::fd::{OwnedFd, RawFd};
use linux_raw_sys::general as k;

/// `PIDFD_NONBLOCK` (= `O_NONBLOCK`, Linux 5.10).
pub(crate) const PIDFD_NONBLOCK: u32 = k::O_NONBLOCK;

/// `pidfd_open(pid, PIDFD_NONBLOCK)`: `ESRCH` if no such process, `ENOSYS`
/// before Linux 5.3 or under some emulators, `EPERM` under some seccomp
/// profiles. Close-on-exec is implied.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    if pid <= 0 {
        return Err(Errno::EINVAL);
    }
    // SAFETY: takes no pointers.
    let fd = check(unsafe { sc::syscall2(k::__NR_pidfd_open as usize, pid as usize, PIDFD_NONBLOCK as usize) })?;
    Ok(OwnedFd::from_new(fd as RawFd))
}

/// Sends `signo` to the process behind `pidfd` (no pid-reuse race).
pub fn pidfd_send_signal(pidfd: RawFd, signo: i32) -> Result<(), Errno> {
    // SAFETY: a null siginfo means "as kill(2) would"; no other pointers.
    check(unsafe { sc::syscall4(k::__NR_pidfd_send_signal as usize, pidfd as usize, signo as usize, 0, 0) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_pids_are_named_errors() {
        assert_eq!(pidfd_open(0).err(), Some(Errno::EINVAL));
        assert_eq!(pidfd_open(-4).err(), Some(Errno::EINVAL));
        // pid_max is at most 2^22: this pid cannot exist.
        assert_eq!(pidfd_open(0x7fff_fff0).err(), Some(Errno::ESRCH));
        let own = pidfd_open(crate::sys::signal::getpid()).unwrap();
        assert!(own.as_raw_fd() >= 0);
        assert_eq!(pidfd_send_signal(own.as_raw_fd(), 0), Ok(()));
    }
}
