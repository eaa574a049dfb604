//! epoll(7): create, control, and the two waits (`epoll_pwait`, `epoll_pwait2`).
//!
//! `epoll_event` is `packed` on x86_64 only: its fields are copied out, never
//! borrowed. aarch64 and riscv64 have no plain `epoll_wait`, so the `pwait`
//! forms (with a null signal mask) are used everywhere.

use super::call::check;
use super::errno::Errno;
use super::fd::{OwnedFd, RawFd};
use core::ptr;
use linux_raw_sys::general as k;

pub(crate) use k::epoll_event as EpollEvent;

/// One readiness report in the kernel's `epoll_event` layout (packed on
/// x86_64), so that `epoll_pwait` writes straight into the loop's event
/// buffer: the data word (the loop's key) and the event bits. Every bit
/// pattern is valid; fields are copied out, never borrowed.
#[repr(transparent)]
#[derive(Copy, Clone)]
pub struct Event(EpollEvent);

impl Event {
    /// An event with `data` and `events`.
    pub const fn new(data: u64, events: u32) -> Event {
        Event(EpollEvent { events, data })
    }
    /// The data word (what was registered with the fd).
    #[inline]
    pub const fn data(self) -> u64 {
        self.0.data
    }
    /// The event bits (`EPOLLIN`, ...).
    #[inline]
    pub const fn events(self) -> u32 {
        self.0.events
    }
    /// Sets the event bits.
    #[inline]
    pub fn set_events(&mut self, events: u32) {
        self.0.events = events;
    }
}

/// `EPOLL_CTL_ADD`, `EPOLL_CTL_MOD`, `EPOLL_CTL_DEL`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum CtlOp {
    Add = k::EPOLL_CTL_ADD as isize,
    Mod = k::EPOLL_CTL_MOD as isize,
    Del = k::EPOLL_CTL_DEL as isize,
}

/// `epoll_create1(EPOLL_CLOEXEC)`.
pub(crate) fn create() -> Result<OwnedFd, Errno> {
    // SAFETY: takes no pointers.
    let fd = check(unsafe { sc::syscall1(k::__NR_epoll_create1 as usize, k::EPOLL_CLOEXEC as usize) })?;
    Ok(OwnedFd::from_new(fd as RawFd))
}

/// `epoll_ctl(epfd, op, fd, {events, data})`.
pub(crate) fn ctl(epfd: RawFd, op: CtlOp, fd: RawFd, events: u32, data: u64) -> Result<(), Errno> {
    let mut ev = EpollEvent { events, data };
    // SAFETY: `ev` is a valid epoll_event that lives across the call; the kernel
    // only reads it (DEL ignores it but old kernels want a non-null pointer).
    check(unsafe {
        sc::syscall4(
            k::__NR_epoll_ctl as usize,
            epfd as usize,
            op as usize,
            fd as usize,
            ptr::addr_of_mut!(ev) as usize,
        )
    })
    .map(drop)
}

/// `epoll_pwait` with a millisecond timeout (-1 blocks) and no signal mask.
/// Returns how many entries of `buf` the kernel filled.
pub(crate) fn pwait(epfd: RawFd, buf: &mut [Event], timeout_ms: i32) -> Result<usize, Errno> {
    let max = buf.len().min(i32::MAX as usize);
    // SAFETY: `buf` is valid for writes of `max` epoll_events; a null sigmask
    // means "do not change the mask", so the size argument is not read.
    check(unsafe {
        sc::syscall6(
            k::__NR_epoll_pwait as usize,
            epfd as usize,
            buf.as_mut_ptr() as usize,
            max,
            timeout_ms as isize as usize,
            0,
            8,
        )
    })
}

/// `epoll_pwait2` with a nanosecond timeout (`None` blocks) and no signal mask.
pub(crate) fn pwait2(epfd: RawFd, buf: &mut [Event], timeout: Option<&k::__kernel_timespec>) -> Result<usize, Errno> {
    let max = buf.len().min(i32::MAX as usize);
    let ts = timeout.map_or(0, |t| t as *const k::__kernel_timespec as usize);
    // SAFETY: `buf` is valid for writes of `max` events; `ts` is null or points
    // at a timespec borrowed for the call; the null sigmask is not read.
    check(unsafe {
        sc::syscall6(k::__NR_epoll_pwait2 as usize, epfd as usize, buf.as_mut_ptr() as usize, max, ts, 0, 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fd::{pipe, write};

    #[test]
    fn epoll_event_layout_matches_the_kernel() {
        assert_eq!(core::mem::size_of::<Event>(), core::mem::size_of::<EpollEvent>());
        #[cfg(target_arch = "x86_64")]
        assert_eq!(core::mem::size_of::<EpollEvent>(), 12);
        #[cfg(not(target_arch = "x86_64"))]
        assert_eq!(core::mem::size_of::<EpollEvent>(), 16);
        assert_eq!(CtlOp::Add as u32, 1);
        assert_eq!(CtlOp::Del as u32, 2);
        assert_eq!(CtlOp::Mod as u32, 3);
    }

    #[test]
    fn readable_pipe_is_reported_with_its_data() {
        let ep = create().unwrap();
        let (r, w) = pipe().unwrap();
        ctl(ep.as_raw_fd(), CtlOp::Add, r.as_raw_fd(), k::EPOLLIN, 0xdead_beef_0000_0007).unwrap();
        let mut buf = [Event::new(0, 0); 4];
        assert_eq!(pwait(ep.as_raw_fd(), &mut buf, 0), Ok(0));
        write(w.as_raw_fd(), b"x").unwrap();
        let n = pwait(ep.as_raw_fd(), &mut buf, 1000).unwrap();
        assert_eq!(n, 1);
        assert_eq!((buf[0].events(), buf[0].data()), (k::EPOLLIN, 0xdead_beef_0000_0007));
        match pwait2(ep.as_raw_fd(), &mut buf, Some(&k::__kernel_timespec { tv_sec: 0, tv_nsec: 0 })) {
            Ok(n) => assert_eq!(n, 1),
            Err(e) => assert_eq!(e, Errno::ENOSYS),
        }
    }

    #[test]
    fn ctl_errors_are_named() {
        let ep = create().unwrap();
        assert_eq!(ctl(ep.as_raw_fd(), CtlOp::Add, -1, k::EPOLLIN, 0), Err(Errno::EBADF));
        let (r, _w) = pipe().unwrap();
        assert_eq!(ctl(ep.as_raw_fd(), CtlOp::Mod, r.as_raw_fd(), k::EPOLLIN, 0), Err(Errno::ENOENT));
        ctl(ep.as_raw_fd(), CtlOp::Add, r.as_raw_fd(), k::EPOLLIN, 0).unwrap();
        assert_eq!(ctl(ep.as_raw_fd(), CtlOp::Add, r.as_raw_fd(), k::EPOLLIN, 0), Err(Errno::EEXIST));
    }
}
