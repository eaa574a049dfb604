//! What a watcher asks for (`Interest`, `Trigger`) and what the kernel
//! reported (`Ready`, `Side`).
//!
//! Plain values with the names epoll users know; no behaviour lives here.

use bitflags::bitflags;

bitflags! {
    /// The sides of an fd a watcher wants callbacks for.
    ///
    /// ```
    /// use linux_event::Interest;
    /// let both = Interest::READ | Interest::WRITE;
    /// assert!(both.contains(Interest::WRITE));
    /// ```
    #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
    pub struct Interest: u8 {
        /// Readable, or the peer hung up (`EPOLLIN`, `EPOLLRDHUP`, `EPOLLHUP`).
        const READ = 1;
        /// Writable (`EPOLLOUT`).
        const WRITE = 2;
        /// Errors go to a separate `Side::Error` callback instead of to the
        /// read and write sides (`EPOLLERR` is always reported by the kernel).
        const ERROR = 4;
    }
}

bitflags! {
    /// What the kernel reported for an fd, as seen by a callback. The bits
    /// are epoll's (and poll's), so the epoll backend converts with one AND.
    #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
    pub struct Ready: u32 {
        /// Data can be read (`EPOLLIN`).
        const READABLE = 0x1;
        /// Urgent data (`EPOLLPRI`).
        const PRIORITY = 0x2;
        /// Data can be written (`EPOLLOUT`).
        const WRITABLE = 0x4;
        /// An error is pending on the fd (`EPOLLERR`).
        const ERROR = 0x8;
        /// Both directions are closed (`EPOLLHUP`).
        const HANGUP = 0x10;
        /// The peer closed its writing side (`EPOLLRDHUP`).
        const READ_HANGUP = 0x2000;
    }
}

/// How readiness is reported for a watcher.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum Trigger {
    /// Reported on every pass while the condition holds (the default).
    #[default]
    Level,
    /// Reported when the condition becomes true; the callback must drain the
    /// fd to `EAGAIN` or it will not hear of it again (`EPOLLET`).
    Edge,
    /// Reported once, then the watcher is disarmed until it is modified
    /// again, for example with the same interest (`EPOLLONESHOT`).
    Oneshot,
}

/// Which of a watcher's sides a callback invocation is for.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The read side (readable, hang-up, or an error without `Interest::ERROR`).
    Read,
    /// The write side (writable, or an error without `Interest::ERROR`).
    Write,
    /// An error, for a watcher that asked for `Interest::ERROR`.
    Error,
}

impl Side {
    /// The interest bit that enables this side.
    pub const fn interest(self) -> Interest {
        match self {
            Side::Read => Interest::READ,
            Side::Write => Interest::WRITE,
            Side::Error => Interest::ERROR,
        }
    }
}
