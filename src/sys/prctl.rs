//! prctl(2) for supervisors: the parent-death signal and the child
//! subreaper bit.
//!
//! Both are per process (the death signal fires when the parent *thread*
//! exits); nothing here changes anything else about the process.

use super::call::check;
use super::errno::Errno;
use core::ptr;
use linux_raw_sys::general as k;

const PR_SET_PDEATHSIG: usize = 1;
const PR_SET_CHILD_SUBREAPER: usize = 36;
const PR_GET_CHILD_SUBREAPER: usize = 37;

/// Asks for `signo` when the parent thread exits (0 clears it).
pub fn set_parent_death_signal(signo: i32) -> Result<(), Errno> {
    // SAFETY: takes no pointers.
    check(unsafe { sc::syscall2(k::__NR_prctl as usize, PR_SET_PDEATHSIG, signo as usize) }).map(drop)
}

/// Becomes (or stops being) a child subreaper: orphaned descendants are
/// re-parented to this process instead of to PID 1.
pub fn set_child_subreaper(on: bool) -> Result<(), Errno> {
    // SAFETY: takes no pointers.
    check(unsafe { sc::syscall2(k::__NR_prctl as usize, PR_SET_CHILD_SUBREAPER, usize::from(on)) }).map(drop)
}

/// Whether this process is a child subreaper.
pub fn is_child_subreaper() -> Result<bool, Errno> {
    let mut bit: i32 = 0;
    // SAFETY: the kernel writes one int to the pointer, valid for the call.
    check(unsafe { sc::syscall2(k::__NR_prctl as usize, PR_GET_CHILD_SUBREAPER, ptr::addr_of_mut!(bit) as usize) })?;
    Ok(bit != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_signal_is_einval_and_the_bit_reads() {
        assert_eq!(set_parent_death_signal(99), Err(Errno::EINVAL));
        assert_eq!(set_parent_death_signal(0), Ok(()));
        // qemu-user 7.2 does not implement PR_GET_CHILD_SUBREAPER.
        match is_child_subreaper() {
            Ok(_) => {}
            Err(e) => assert_eq!(e, Errno::EINVAL, "only an emulator may refuse it"),
        }
    }
}
