//! `AnyBackend`: the backend chosen at run time.
//!
//! [`BackendKind::Auto`] takes the backend measured fastest on the general
//! workloads ([`BackendKind::AUTO_PREFERS`], see ARCHITECTURE.md) and falls
//! back to epoll when the kernel refuses it (`ENOSYS` under qemu-user or
//! without the feature, `EPERM` from a seccomp profile or
//! `kernel.io_uring_disabled`, `EAGAIN` at `aio-max-nr`, `EOPNOTSUPP` on an
//! old kernel); [`AnyBackend::fallback`] tells what was tried and why it
//! was refused. A backend asked for by name is never replaced: its refusal
//! is the error.
//!
//! The library cannot read the environment; programs map a name such as
//! `LINUX_EVENT_BACKEND=io_uring` with [`BackendKind::from_name`].
//!
//! ```
//! use linux_event::backend::{AnyBackend, BackendKind};
//! use linux_event::Loop;
//!
//! let kind = BackendKind::from_name("epoll").unwrap();
//! let lp: Loop<(), 256, 256, AnyBackend> = Loop::with_backend(AnyBackend::new(kind)?)?;
//! assert_eq!(lp.backend_name(), "epoll");
//! assert_eq!(lp.backend().fallback(), None);
//! # Ok::<(), linux_event::Error>(())
//! ```

use super::kernel::Kernel;
use super::sys_objects::sys_objects;
use super::{Epoll, IoUring, LinuxAio, ReadyEvent};
use crate::interest::{Interest, Trigger};
use crate::sys::{Errno, OwnedFd, RawFd};
use crate::time::Instant;

/// Which backend an [`AnyBackend`] runs on.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum BackendKind {
    /// [`BackendKind::AUTO_PREFERS`], or epoll when the kernel refuses it.
    #[default]
    Auto,
    /// [`Epoll`](super::Epoll): works on every kernel this crate supports.
    Epoll,
    /// [`LinuxAio`](super::LinuxAio): Linux 4.18.
    LinuxAio,
    /// [`IoUring`](super::IoUring): Linux 5.11.
    IoUring,
}

impl BackendKind {
    /// What `Auto` tries first. Epoll: measured fastest, or as fast, on the
    /// general workloads (ARCHITECTURE.md, "Linux AIO and io_uring backends").
    pub const AUTO_PREFERS: BackendKind = BackendKind::Epoll;

    /// Every kind that names one backend, in a stable order.
    pub const CONCRETE: [BackendKind; 3] = [BackendKind::Epoll, BackendKind::LinuxAio, BackendKind::IoUring];

    /// `"auto"`, `"epoll"`, `"linux-aio"` or `"io_uring"`: the name
    /// [`from_name`](Self::from_name) reads and backends report.
    pub const fn name(self) -> &'static str {
        match self {
            BackendKind::Auto => "auto",
            BackendKind::Epoll => "epoll",
            BackendKind::LinuxAio => "linux-aio",
            BackendKind::IoUring => "io_uring",
        }
    }

    /// The kind with this [`name`](Self::name) (ASCII case ignored, `-`
    /// and `_` interchangeable), e.g. from `LINUX_EVENT_BACKEND`.
    ///
    /// ```
    /// use linux_event::backend::BackendKind;
    /// assert_eq!(BackendKind::from_name("linux-aio"), Some(BackendKind::LinuxAio));
    /// assert_eq!(BackendKind::from_name("IO_URING"), Some(BackendKind::IoUring));
    /// assert_eq!(BackendKind::from_name("kqueue"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<BackendKind> {
        let same = |want: &str| {
            name.len() == want.len()
                && name.bytes().zip(want.bytes()).all(|(a, b)| {
                    let a = if a == b'-' { b'_' } else { a.to_ascii_lowercase() };
                    let b = if b == b'-' { b'_' } else { b };
                    a == b
                })
        };
        [BackendKind::Auto, BackendKind::Epoll, BackendKind::LinuxAio, BackendKind::IoUring]
            .into_iter()
            .find(|k| same(k.name()))
    }
}

impl core::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

enum Inner {
    Epoll(Epoll),
    LinuxAio(LinuxAio),
    IoUring(IoUring),
}

/// A backend chosen at run time: epoll, Linux AIO or io_uring, with the
/// reason for a fallback. Every `Backend` call is delegated.
pub struct AnyBackend {
    inner: Inner,
    fallback: Option<(BackendKind, Errno)>,
}

impl AnyBackend {
    /// The backend `kind` names, each with its default capacity. `Auto` falls
    /// back to epoll when the kernel refuses its first choice; a named kind
    /// that the kernel refuses is that refusal's errno.
    pub fn new(kind: BackendKind) -> Result<AnyBackend, Errno> {
        AnyBackend::build(kind, None)
    }

    /// As [`new`](Self::new), with room for `capacity` key slots in the
    /// Linux AIO and io_uring backends (epoll has no such limit). Give the
    /// loop a watcher capacity `W <= capacity`.
    pub fn with_capacity(kind: BackendKind, capacity: u32) -> Result<AnyBackend, Errno> {
        AnyBackend::build(kind, Some(capacity))
    }

    /// The first backend of `preference` the kernel accepts, each with its
    /// default capacity; [`fallback`](Self::fallback) names the first one
    /// refused and why, when it is not the one in use. `Auto` in the list
    /// stands for [`BackendKind::AUTO_PREFERS`]. When every one is refused,
    /// the last refusal is the error (`EINVAL` for an empty list).
    ///
    /// ```
    /// use linux_event::backend::{AnyBackend, BackendKind};
    /// let b = AnyBackend::first_available(&[BackendKind::IoUring, BackendKind::Epoll])?;
    /// match b.fallback() {
    ///     None => assert_eq!(b.kind(), BackendKind::IoUring),
    ///     Some((tried, _errno)) => assert_eq!((tried, b.kind()), (BackendKind::IoUring, BackendKind::Epoll)),
    /// }
    /// # Ok::<(), linux_event::Errno>(())
    /// ```
    pub fn first_available(preference: &[BackendKind]) -> Result<AnyBackend, Errno> {
        AnyBackend::first_of(preference, None)
    }

    fn first_of(preference: &[BackendKind], capacity: Option<u32>) -> Result<AnyBackend, Errno> {
        let mut refused: Option<(BackendKind, Errno)> = None;
        let mut last = Errno::EINVAL;
        for (i, &kind) in preference.iter().enumerate() {
            let kind = if kind == BackendKind::Auto { BackendKind::AUTO_PREFERS } else { kind };
            let tried = preference[..i]
                .iter()
                .any(|&k| k == kind || (k == BackendKind::Auto && kind == BackendKind::AUTO_PREFERS));
            if tried {
                continue;
            }
            match AnyBackend::concrete(kind, capacity) {
                Ok(inner) => return Ok(AnyBackend { inner, fallback: refused }),
                Err(e) => {
                    refused = refused.or(Some((kind, e)));
                    last = e;
                }
            }
        }
        Err(last)
    }

    fn concrete(kind: BackendKind, capacity: Option<u32>) -> Result<Inner, Errno> {
        Ok(match kind {
            BackendKind::Auto | BackendKind::Epoll => Inner::Epoll(Epoll::new()?),
            BackendKind::LinuxAio => Inner::LinuxAio(match capacity {
                Some(c) => LinuxAio::with_capacity(c)?,
                None => LinuxAio::new()?,
            }),
            BackendKind::IoUring => Inner::IoUring(match capacity {
                Some(c) => IoUring::with_capacity(c)?,
                None => IoUring::new()?,
            }),
        })
    }

    fn build(kind: BackendKind, capacity: Option<u32>) -> Result<AnyBackend, Errno> {
        match kind {
            BackendKind::Auto => AnyBackend::first_of(&[BackendKind::AUTO_PREFERS, BackendKind::Epoll], capacity),
            named => Ok(AnyBackend { inner: AnyBackend::concrete(named, capacity)?, fallback: None }),
        }
    }

    /// Wraps a backend made elsewhere (for a configuration `new` does not offer).
    pub fn from_epoll(backend: Epoll) -> AnyBackend {
        AnyBackend { inner: Inner::Epoll(backend), fallback: None }
    }

    /// Wraps a Linux AIO backend made elsewhere.
    pub fn from_linux_aio(backend: LinuxAio) -> AnyBackend {
        AnyBackend { inner: Inner::LinuxAio(backend), fallback: None }
    }

    /// Wraps an io_uring backend made elsewhere.
    pub fn from_io_uring(backend: IoUring) -> AnyBackend {
        AnyBackend { inner: Inner::IoUring(backend), fallback: None }
    }

    /// The backend in use (never `Auto`).
    pub fn kind(&self) -> BackendKind {
        match self.inner {
            Inner::Epoll(_) => BackendKind::Epoll,
            Inner::LinuxAio(_) => BackendKind::LinuxAio,
            Inner::IoUring(_) => BackendKind::IoUring,
        }
    }

    /// After `Auto` fell back to epoll: which backend it tried and the errno
    /// the kernel refused it with. `None` when nothing was refused.
    pub fn fallback(&self) -> Option<(BackendKind, Errno)> {
        self.fallback
    }

    /// The backend's own fd (epoll fd, the Linux AIO backend's inner epoll,
    /// the io_uring fd).
    pub fn as_raw_fd(&self) -> RawFd {
        match &self.inner {
            Inner::Epoll(b) => b.as_raw_fd(),
            Inner::LinuxAio(b) => b.as_raw_fd(),
            Inner::IoUring(b) => b.as_raw_fd(),
        }
    }

    /// The epoll backend, when that is the one in use.
    pub fn as_epoll(&self) -> Option<&Epoll> {
        match &self.inner {
            Inner::Epoll(b) => Some(b),
            _ => None,
        }
    }

    /// The Linux AIO backend, when that is the one in use.
    pub fn as_linux_aio(&self) -> Option<&LinuxAio> {
        match &self.inner {
            Inner::LinuxAio(b) => Some(b),
            _ => None,
        }
    }

    /// The io_uring backend, when that is the one in use.
    pub fn as_io_uring(&self) -> Option<&IoUring> {
        match &self.inner {
            Inner::IoUring(b) => Some(b),
            _ => None,
        }
    }
}

macro_rules! delegate {
    ($self:ident, $b:ident => $e:expr) => {
        match &mut $self.inner {
            Inner::Epoll($b) => $e,
            Inner::LinuxAio($b) => $e,
            Inner::IoUring($b) => $e,
        }
    };
}

impl Kernel for AnyBackend {
    type Fd = OwnedFd;

    fn name(&self) -> &'static str {
        self.kind().name()
    }

    fn capacity(&self) -> Option<usize> {
        match &self.inner {
            Inner::Epoll(b) => b.capacity(),
            Inner::LinuxAio(b) => Kernel::capacity(b),
            Inner::IoUring(b) => Kernel::capacity(b),
        }
    }

    fn register(&mut self, fd: RawFd, key: u64, interest: Interest, trigger: Trigger) -> Result<(), Errno> {
        delegate!(self, b => b.register(fd, key, interest, trigger))
    }

    fn modify(&mut self, fd: RawFd, key: u64, interest: Interest, trigger: Trigger) -> Result<(), Errno> {
        delegate!(self, b => b.modify(fd, key, interest, trigger))
    }

    fn deregister(&mut self, fd: RawFd, key: u64) -> Result<(), Errno> {
        delegate!(self, b => b.deregister(fd, key))
    }

    fn wait(&mut self, out: &mut [ReadyEvent], deadline: Option<Instant>) -> Result<usize, Errno> {
        delegate!(self, b => b.wait(out, deadline))
    }

    fn now(&mut self) -> Result<Instant, Errno> {
        delegate!(self, b => b.now())
    }

    fn owns_fd(&self, fd: RawFd) -> bool {
        match &self.inner {
            Inner::Epoll(b) => b.owns_fd(fd),
            Inner::LinuxAio(b) => b.owns_fd(fd),
            Inner::IoUring(b) => b.owns_fd(fd),
        }
    }

    fn check_fd(&self, fd: RawFd) -> Result<(), Errno> {
        crate::sys::check_fd(fd)
    }

    fn registers_by_fd(&self) -> bool {
        match &self.inner {
            Inner::Epoll(b) => b.registers_by_fd(),
            Inner::LinuxAio(b) => b.registers_by_fd(),
            Inner::IoUring(b) => b.registers_by_fd(),
        }
    }

    sys_objects!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_backend_can_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<AnyBackend>();
        send::<LinuxAio>();
        send::<IoUring>();
    }

    #[test]
    fn names_round_trip() {
        for k in [BackendKind::Auto, BackendKind::Epoll, BackendKind::LinuxAio, BackendKind::IoUring] {
            assert_eq!(BackendKind::from_name(k.name()), Some(k));
        }
        assert_eq!(BackendKind::from_name("linux_aio"), Some(BackendKind::LinuxAio));
        assert_eq!(BackendKind::from_name("io-uring"), Some(BackendKind::IoUring));
        assert_eq!(BackendKind::from_name("Epoll"), Some(BackendKind::Epoll));
        assert_eq!(BackendKind::from_name(""), None);
        assert_eq!(BackendKind::from_name("epolls"), None);
    }

    #[test]
    fn auto_is_usable_and_says_what_it_is() {
        let b = AnyBackend::new(BackendKind::Auto).unwrap();
        assert_ne!(b.kind(), BackendKind::Auto);
        assert_eq!(b.name(), b.kind().name());
        if let Some((tried, _)) = b.fallback() {
            assert_eq!(tried, BackendKind::AUTO_PREFERS);
            assert_eq!(b.kind(), BackendKind::Epoll);
        }
    }
}
