//! Terminals: whether an fd is one, and handing its foreground to a group.
//!
//! Only the two ioctls a supervisor needs; constants are asm-generic (the
//! same on x86_64, aarch64 and riscv64).

use super::call::check;
use super::errno::Errno;
use super::fd::RawFd;
use core::ptr;
use linux_raw_sys::general as k;

const TCGETS: usize = 0x5401;
pub(crate) const TIOCSPGRP: usize = 0x5410;

/// Whether `fd` is a terminal.
pub fn isatty(fd: RawFd) -> bool {
    let mut termios = [0u8; 64];
    // SAFETY: TCGETS writes a struct termios (60 bytes here, 44 in the
    // kernel's own layout) into the 64-byte buffer, valid for the call.
    let r = unsafe { sc::syscall3(k::__NR_ioctl as usize, fd as usize, TCGETS, termios.as_mut_ptr() as usize) };
    check(r).is_ok()
}

/// Makes process group `pgid` the foreground group of terminal `fd`.
/// A caller in a background group gets SIGTTOU unless it blocks or ignores it.
pub fn tcsetpgrp(fd: RawFd, pgid: i32) -> Result<(), Errno> {
    // SAFETY: TIOCSPGRP reads one pid_t from the pointer, valid for the call.
    check(unsafe { sc::syscall3(k::__NR_ioctl as usize, fd as usize, TIOCSPGRP, ptr::addr_of!(pgid) as usize) })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipe_is_not_a_terminal() {
        let (r, _w) = crate::sys::pipe().unwrap();
        assert!(!isatty(r.as_raw_fd()));
        assert!(!isatty(-1));
        assert_eq!(tcsetpgrp(r.as_raw_fd(), 1), Err(Errno::ENOTTY));
    }
}
