//! eventfd(2): a kernel counter used as the loop's cross-thread doorbell.
//!
//! Non-blocking and close-on-exec; a full counter (`EAGAIN` on write) means a
//! wake-up is already pending, which is all a doorbell needs.

use super::call::check;
use super::errno::Errno;
use super::fd::{self, OwnedFd, RawFd};
use linux_raw_sys::general as k;

/// `eventfd2(0, EFD_NONBLOCK | EFD_CLOEXEC)`.
pub(crate) fn create() -> Result<OwnedFd, Errno> {
    let flags = k::EFD_NONBLOCK | k::EFD_CLOEXEC;
    // SAFETY: takes no pointers.
    let fd = check(unsafe { sc::syscall2(k::__NR_eventfd2 as usize, 0, flags as usize) })?;
    Ok(OwnedFd::from_new(fd as RawFd))
}

/// Adds `n` to the counter. `EAGAIN` (counter full) counts as success.
#[cfg_attr(not(feature = "waker"), allow(dead_code))] // only wakers ring
pub(crate) fn add(fd: RawFd, n: u64) -> Result<(), Errno> {
    match fd::write(fd, &n.to_ne_bytes()) {
        Ok(_) | Err(Errno::EAGAIN) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Reads and resets the counter; 0 when it was already zero.
pub(crate) fn take(fd: RawFd) -> Result<u64, Errno> {
    let mut buf = [0u8; 8];
    match fd::read(fd, &mut buf) {
        Ok(_) => Ok(u64::from_ne_bytes(buf)),
        Err(Errno::EAGAIN) => Ok(0),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_coalesce_and_reset() {
        let e = create().unwrap();
        assert_eq!(take(e.as_raw_fd()), Ok(0));
        add(e.as_raw_fd(), 2).unwrap();
        add(e.as_raw_fd(), 5).unwrap();
        assert_eq!(take(e.as_raw_fd()), Ok(7));
        assert_eq!(take(e.as_raw_fd()), Ok(0));
        assert_eq!(add(-1, 1), Err(Errno::EBADF));
    }
}
