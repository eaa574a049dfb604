//! ppoll(2) on a few fds: how a file-operations worker waits for a pipe or
//! socket to become ready while staying cancellable (its cancel eventfd is
//! one of the fds).

use super::call::check;
use super::errno::Errno;
use super::fd::RawFd;
use linux_raw_sys::general as k;

/// `POLLIN`.
pub(crate) const POLLIN: i16 = k::POLLIN as i16;
/// `POLLOUT`.
pub(crate) const POLLOUT: i16 = k::POLLOUT as i16;

/// One fd to poll: what to wait for, and what was found.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PollFd {
    /// The fd (negative: ignored).
    pub fd: RawFd,
    /// `POLLIN`, `POLLOUT`...
    pub events: i16,
    /// What the kernel reported (`POLLERR`, `POLLHUP`, `POLLNVAL` always can be).
    pub revents: i16,
}

/// Waits until one of `fds` is ready; no timeout, no signal mask change.
/// Returns how many have `revents`. `EINTR` is returned, not retried.
pub(crate) fn ppoll(fds: &mut [PollFd]) -> Result<usize, Errno> {
    // SAFETY: `fds` is a valid, writable array of `struct pollfd` (same
    // layout, checked below) of the length given; no timeout, no sigmask.
    check(unsafe { sc::syscall5(k::__NR_ppoll as usize, fds.as_mut_ptr() as usize, fds.len(), 0, 0, 8) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_kernel_and_a_ready_pipe_is_reported() {
        assert_eq!(size_of::<PollFd>(), size_of::<k::pollfd>());
        let (r, w) = crate::sys::pipe().unwrap();
        crate::sys::write(w.as_raw_fd(), b"x").unwrap();
        let mut fds =
            [PollFd { fd: r.as_raw_fd(), events: POLLIN, revents: 0 }, PollFd { fd: -1, ..PollFd::default() }];
        assert_eq!(ppoll(&mut fds), Ok(1));
        assert_eq!(fds[0].revents & POLLIN, POLLIN);
    }
}
