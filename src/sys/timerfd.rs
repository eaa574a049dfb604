//! timerfd(2) on `CLOCK_MONOTONIC`: create, and arm at an absolute deadline.
//!
//! Only absolute arming is offered, so re-arming never depends on when the
//! call happens. The fd is non-blocking and close-on-exec.

use super::call::check;
use super::errno::Errno;
use super::fd::{OwnedFd, RawFd};
use core::ptr;
use linux_raw_sys::general as k;

/// `timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)`.
pub(crate) fn create() -> Result<OwnedFd, Errno> {
    let flags = k::TFD_NONBLOCK | k::TFD_CLOEXEC;
    // SAFETY: takes no pointers.
    let fd =
        check(unsafe { sc::syscall2(k::__NR_timerfd_create as usize, k::CLOCK_MONOTONIC as usize, flags as usize) })?;
    Ok(OwnedFd::from_new(fd as RawFd))
}

/// Arms the timer to expire once at monotonic `deadline_ns`, or disarms it
/// with `None`. A deadline already past expires at once.
pub(crate) fn set_abs(fd: RawFd, deadline_ns: Option<u64>) -> Result<(), Errno> {
    let zero = k::__kernel_timespec { tv_sec: 0, tv_nsec: 0 };
    let value = match deadline_ns {
        // An it_value of zero would disarm: deadline 0 means "already due", so
        // it becomes 1 ns, which is just as much in the past.
        Some(ns) => {
            let ns = ns.max(1);
            k::__kernel_timespec { tv_sec: (ns / 1_000_000_000) as i64, tv_nsec: (ns % 1_000_000_000) as i64 }
        }
        None => zero,
    };
    let spec = k::__kernel_itimerspec { it_interval: zero, it_value: value };
    // SAFETY: `spec` lives across the call and is only read; the old-value
    // pointer is null, so nothing is written.
    check(unsafe {
        sc::syscall4(
            k::__NR_timerfd_settime as usize,
            fd as usize,
            k::TFD_TIMER_ABSTIME as usize,
            ptr::addr_of!(spec) as usize,
            0,
        )
    })
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::clock::monotonic_ns;
    use crate::sys::fd::read;

    #[test]
    fn expires_at_an_absolute_deadline_and_disarms() {
        let t = create().unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(read(t.as_raw_fd(), &mut buf), Err(Errno::EAGAIN));
        set_abs(t.as_raw_fd(), Some(monotonic_ns().unwrap())).unwrap();
        assert_eq!(read(t.as_raw_fd(), &mut buf), Ok(8));
        assert_eq!(u64::from_ne_bytes(buf), 1);
        set_abs(t.as_raw_fd(), Some(monotonic_ns().unwrap() + 3_600_000_000_000)).unwrap();
        set_abs(t.as_raw_fd(), None).unwrap();
        assert_eq!(read(t.as_raw_fd(), &mut buf), Err(Errno::EAGAIN));
        set_abs(t.as_raw_fd(), Some(0)).unwrap();
        assert_eq!(read(t.as_raw_fd(), &mut buf), Ok(8));
        assert_eq!(set_abs(-1, None), Err(Errno::EBADF));
    }
}
