//! `Epoll`: the default backend, one epoll instance.
//!
//! Deadlines are met with one timerfd in the epoll set, armed at an absolute
//! time and re-armed only when the earliest deadline moves earlier (the
//! default), or with `epoll_pwait2`'s nanosecond timeout. One syscall per
//! idle pass either way; ARCHITECTURE.md has the measurements behind the
//! default.

use super::kernel::Kernel;
use super::sys_objects::sys_objects;
use super::{ReadyEvent, relative_timeout};
use crate::interest::{Interest, Trigger};
use crate::sys::epoll::{self, CtlOp};
use crate::sys::{Errno, OwnedFd, RawFd, clock, timerfd};
use crate::time::Instant;
use linux_raw_sys::general as k;

/// How [`Epoll`] waits for a deadline.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum EpollTimer {
    /// The cheaper choice as measured: `Timerfd`.
    #[default]
    Auto,
    /// The wait's own nanosecond timeout (`epoll_pwait2`, Linux 5.11): no
    /// arming syscall ever, but the kernel's timeout set-up makes every
    /// wait dearer (about 0.3 us here), also when events are already ready.
    WaitTimeout,
    /// A timerfd in the epoll set, armed at absolute deadlines: waits carry
    /// no timeout; a deadline change costs one `timerfd_settime`.
    Timerfd,
}

enum Deadlines {
    WaitTimeout,
    Timerfd {
        fd: OwnedFd,
        /// The deadline the timerfd is armed for; `None` when it is not
        /// armed or has already expired.
        armed: Option<u64>,
    },
}

/// The key of the backend's own timerfd in the epoll set (no table slot).
const TIMERFD_KEY: u64 = crate::table::Key::BACKEND_TIMER.to_u64();

/// The epoll backend.
pub struct Epoll {
    epfd: OwnedFd,
    deadlines: Deadlines,
}

impl Epoll {
    /// An epoll backend that picks the cheapest way to wait for deadlines.
    pub fn new() -> Result<Epoll, Errno> {
        Epoll::with_timer(EpollTimer::Auto)
    }

    /// An epoll backend with the given way of waiting for deadlines.
    /// `WaitTimeout` on a kernel without `epoll_pwait2` is `ENOSYS`.
    pub fn with_timer(timer: EpollTimer) -> Result<Epoll, Errno> {
        let epfd = epoll::create()?;
        let deadlines = if timer == EpollTimer::WaitTimeout {
            require_pwait2(&epfd)?;
            Deadlines::WaitTimeout
        } else {
            let fd = timerfd::create()?;
            // Edge-triggered: every expiry is a new edge, so the timerfd never
            // needs to be read (settime resets its count).
            let events = k::EPOLLIN | k::EPOLLET;
            epoll::ctl(epfd.as_raw_fd(), CtlOp::Add, fd.as_raw_fd(), events, TIMERFD_KEY)?;
            Deadlines::Timerfd { fd, armed: None }
        };
        Ok(Epoll { epfd, deadlines })
    }

    /// Which way of waiting for deadlines is in use (`WaitTimeout` or `Timerfd`).
    pub fn timer(&self) -> EpollTimer {
        match self.deadlines {
            Deadlines::WaitTimeout => EpollTimer::WaitTimeout,
            Deadlines::Timerfd { .. } => EpollTimer::Timerfd,
        }
    }

    /// The epoll fd, for embedding this loop in another one.
    pub fn as_raw_fd(&self) -> RawFd {
        self.epfd.as_raw_fd()
    }
}

/// Probes `epoll_pwait2` with a zero timeout on the empty set: `ENOSYS` on
/// kernels before 5.11 and under qemu-user, `EPERM` under some seccomp profiles.
fn require_pwait2(epfd: &OwnedFd) -> Result<(), Errno> {
    let mut buf = [ReadyEvent::default(); 1];
    let zero = k::__kernel_timespec { tv_sec: 0, tv_nsec: 0 };
    epoll::pwait2(epfd.as_raw_fd(), &mut buf, Some(&zero)).map(drop)
}

fn epoll_mask(interest: Interest, trigger: Trigger) -> u32 {
    let mut events = 0;
    if interest.contains(Interest::READ) {
        events |= k::EPOLLIN | k::EPOLLRDHUP | k::EPOLLPRI;
    }
    if interest.contains(Interest::WRITE) {
        events |= k::EPOLLOUT;
    }
    match trigger {
        Trigger::Level => events,
        Trigger::Edge => events | k::EPOLLET,
        Trigger::Oneshot => events | k::EPOLLONESHOT,
    }
}

fn timespec(ns: u64) -> k::__kernel_timespec {
    k::__kernel_timespec { tv_sec: (ns / 1_000_000_000) as i64, tv_nsec: (ns % 1_000_000_000) as i64 }
}

impl Kernel for Epoll {
    type Fd = OwnedFd;

    fn name(&self) -> &'static str {
        "epoll"
    }

    fn register(&mut self, fd: RawFd, key: u64, interest: Interest, trigger: Trigger) -> Result<(), Errno> {
        let events = epoll_mask(interest, trigger);
        match epoll::ctl(self.epfd.as_raw_fd(), CtlOp::Add, fd, events, key) {
            // The kernel still holds this (file, fd) pair: a dup of an earlier
            // registration survived a close. Take it over.
            Err(Errno::EEXIST) => epoll::ctl(self.epfd.as_raw_fd(), CtlOp::Mod, fd, events, key),
            other => other,
        }
    }

    fn modify(&mut self, fd: RawFd, key: u64, interest: Interest, trigger: Trigger) -> Result<(), Errno> {
        let events = epoll_mask(interest, trigger);
        match epoll::ctl(self.epfd.as_raw_fd(), CtlOp::Mod, fd, events, key) {
            // Closing an fd silently removes it from epoll; if the number now
            // names a new file, the old registration is gone: add afresh.
            Err(Errno::ENOENT) => epoll::ctl(self.epfd.as_raw_fd(), CtlOp::Add, fd, events, key),
            other => other,
        }
    }

    fn deregister(&mut self, fd: RawFd, _key: u64) -> Result<(), Errno> {
        match epoll::ctl(self.epfd.as_raw_fd(), CtlOp::Del, fd, 0, 0) {
            // Already closed (EBADF) or closed and reused (ENOENT): the kernel
            // has dropped the registration, or it lingers on a dup under a
            // key that is stale now and whose events the loop drops.
            Err(Errno::EBADF | Errno::ENOENT) => Ok(()),
            other => other,
        }
    }

    fn wait(&mut self, out: &mut [ReadyEvent], deadline: Option<Instant>) -> Result<usize, Errno> {
        let max = out.len();
        let epfd = self.epfd.as_raw_fd();
        // The kernel writes straight into `out` (it has epoll_event's layout).
        // The timerfd's own expiries come out too, under its reserved key,
        // which the loop skips.
        let result = match &mut self.deadlines {
            Deadlines::WaitTimeout => {
                let timeout = relative_timeout(deadline)?.map(timespec);
                epoll::pwait2(epfd, &mut out[..max], timeout.as_ref())
            }
            Deadlines::Timerfd { fd, armed } => {
                let mut due_now = false;
                if let Some(d) = deadline.map(Instant::as_nanos) {
                    let now = clock::monotonic_ns()?;
                    // An armed expiry in the past has fired (the timerfd is
                    // edge-triggered: it is not armed any more).
                    if armed.is_some_and(|a| a <= now) {
                        *armed = None;
                    }
                    due_now = d <= now;
                    // Re-arm only when the earliest deadline moved earlier
                    // than what is armed (or nothing is); a later one just
                    // costs an early, empty wake-up, after which this arms it.
                    if !due_now && armed.is_none_or(|a| d < a) {
                        timerfd::set_abs(fd.as_raw_fd(), Some(d))?;
                        *armed = Some(d);
                    }
                }
                epoll::pwait(epfd, &mut out[..max], if due_now { 0 } else { -1 })
            }
        };
        match result {
            Ok(n) => Ok(n),
            // A signal handler ran: report an empty pass; the loop re-reads the
            // clock and comes back with a fresh deadline.
            Err(Errno::EINTR) => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn now(&mut self) -> Result<Instant, Errno> {
        clock::monotonic_ns().map(Instant::from_nanos)
    }

    fn owns_fd(&self, fd: RawFd) -> bool {
        fd == self.epfd.as_raw_fd()
            || matches!(&self.deadlines, Deadlines::Timerfd { fd: t, .. } if t.as_raw_fd() == fd)
    }

    fn check_fd(&self, fd: RawFd) -> Result<(), Errno> {
        crate::sys::check_fd(fd)
    }

    sys_objects!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interest::Ready;

    #[test]
    fn ready_bits_are_epolls() {
        let pairs = [
            (k::EPOLLIN, Ready::READABLE),
            (k::EPOLLPRI, Ready::PRIORITY),
            (k::EPOLLOUT, Ready::WRITABLE),
            (k::EPOLLERR, Ready::ERROR),
            (k::EPOLLHUP, Ready::HANGUP),
            (k::EPOLLRDHUP, Ready::READ_HANGUP),
        ];
        for (bit, ready) in pairs {
            assert_eq!(ReadyEvent::new(0, bit).ready(), ready);
        }
        assert_eq!(ReadyEvent::new(0, k::EPOLLET | k::EPOLLONESHOT | k::EPOLLMSG).ready(), Ready::empty());
    }
}
