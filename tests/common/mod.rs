//! Shared helpers for the integration tests: the list of backend
//! configurations every behaviour runs against, fd helpers, and a watchdog
//! that turns a hang into a failure.

#![allow(dead_code)]

use core::time::Duration;
use linux_event::Errno;
use linux_event::backend::{AnyBackend, BackendKind, Epoll, EpollTimer};
use linux_event::sys::{self, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The loop every test body runs: on whichever backend its `Config` names.
pub type Loop<C, const W: usize = 256, const T: usize = 256> = linux_event::Loop<C, W, T, AnyBackend>;

/// A generous wait for something that is expected to happen: only there so
/// that a broken loop fails instead of hanging.
pub const PATIENCE: Option<Duration> = Some(Duration::from_secs(5));

/// Do not wait at all: report only what is ready right now.
pub const NO_WAIT: Option<Duration> = Some(Duration::ZERO);

/// One backend configuration under test.
#[derive(Copy, Clone, Debug)]
pub struct Config {
    /// Named in every assertion message.
    pub name: &'static str,
    /// The backend it runs on.
    pub kind: BackendKind,
    /// How an epoll configuration waits for deadlines (ignored by the others).
    pub timer: EpollTimer,
}

impl Config {
    fn make(&self) -> Result<AnyBackend, Errno> {
        match self.kind {
            BackendKind::Epoll => Epoll::with_timer(self.timer).map(AnyBackend::from_epoll),
            kind => AnyBackend::new(kind),
        }
    }

    /// A fresh backend of this configuration.
    pub fn backend(&self) -> AnyBackend {
        let b = self.make().unwrap_or_else(|e| panic!("[{}] backend: {e}", self.name));
        assert_eq!(b.kind(), self.kind, "[{}]", self.name);
        if let Some(epoll) = b.as_epoll() {
            assert_eq!(epoll.timer(), self.timer, "[{}] backend picked another way of waiting", self.name);
        }
        b
    }

    /// A fresh loop on a backend of this configuration.
    pub fn new_loop<C, const W: usize, const T: usize>(&self) -> Loop<C, W, T> {
        Loop::<C, W, T>::with_backend(self.backend())
            .unwrap_or_else(|e| panic!("[{}] Loop::with_backend: {e}", self.name))
    }
}

const ALL: [Config; 4] = [
    Config { name: "epoll+WaitTimeout", kind: BackendKind::Epoll, timer: EpollTimer::WaitTimeout },
    Config { name: "epoll+Timerfd", kind: BackendKind::Epoll, timer: EpollTimer::Timerfd },
    Config { name: "linux-aio", kind: BackendKind::LinuxAio, timer: EpollTimer::Timerfd },
    // Last: closing an io_uring makes the closing thread's next blocking
    // epoll_pwait or io_getevents return EINTR (about 16 ms later, the
    // ring's exit work runs a task_work there): no other backend follows it.
    Config { name: "io_uring", kind: BackendKind::IoUring, timer: EpollTimer::Timerfd },
];

/// The backend configurations to run every test body against:
/// `LINUX_EVENT_BACKEND=epoll|linux-aio|io_uring` selects one backend (and
/// makes its refusal a failure); unset, every one this kernel offers. A
/// configuration the kernel refuses (`ENOSYS`: no `epoll_pwait2`, no AIO or
/// io_uring, as under qemu-user; `EPERM`: a seccomp profile) is reported
/// with its errno, once per test binary on stderr (past libtest's capture)
/// and by every test on stdout: never skipped silently.
pub fn configs() -> Vec<Config> {
    let want = std::env::var("LINUX_EVENT_BACKEND")
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| BackendKind::from_name(&v).unwrap_or_else(|| panic!("LINUX_EVENT_BACKEND={v:?}: not a backend name")));
    // Probed once, in a thread of its own (see the note on io_uring above).
    static OFFERED: std::sync::OnceLock<Vec<Result<(), Errno>>> = std::sync::OnceLock::new();
    let offered = OFFERED.get_or_init(|| {
        let offered: Vec<_> = std::thread::spawn(|| ALL.iter().map(|c| c.make().map(drop)).collect()).join().unwrap();
        // Once per test binary, past libtest's capture of print!: a refused
        // backend shows in every `cargo test` output.
        for (cfg, r) in ALL.iter().zip(&offered) {
            if let Err(e) = r {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "NOTE: backend configuration {} refused by this kernel: {e} (errno {}); not tested here",
                    cfg.name,
                    e.raw()
                );
            }
        }
        offered
    });
    let mut out = Vec::new();
    for (cfg, offered) in ALL.iter().zip(offered) {
        if want.is_some_and(|w| w != BackendKind::Auto && w != cfg.kind) {
            continue;
        }
        match offered {
            Ok(()) => out.push(*cfg),
            // A backend asked for by name must run (epoll+WaitTimeout aside:
            // epoll+Timerfd covers epoll where epoll_pwait2 is missing).
            Err(e) if want == Some(cfg.kind) && cfg.kind != BackendKind::Epoll => {
                panic!("LINUX_EVENT_BACKEND names {}, which this kernel refuses: {e}", cfg.name)
            }
            Err(e @ (Errno::ENOSYS | Errno::EPERM | Errno::EOPNOTSUPP | Errno::EAGAIN)) => {
                println!(
                    "NOTE: configuration {} is not available here: {e} (errno {}); testing the others",
                    cfg.name,
                    e.raw()
                );
            }
            Err(e) => panic!("[{}] unexpected error creating the backend: {e}", cfg.name),
        }
    }
    assert!(!out.is_empty(), "no backend configuration is available");
    out
}

/// A non-blocking pipe: (read end, write end).
pub fn pipe() -> (OwnedFd, OwnedFd) {
    sys::pipe().expect("pipe2")
}

/// A connected, non-blocking stream socket pair.
pub fn socketpair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    a.set_nonblocking(true).expect("set_nonblocking");
    b.set_nonblocking(true).expect("set_nonblocking");
    (a, b)
}

/// Writes all of `bytes` in one write call (asserting the kernel took it all).
pub fn write_once(fd: RawFd, bytes: &[u8]) {
    assert_eq!(sys::write(fd, bytes), Ok(bytes.len()), "short write to fd {fd}");
}

/// Reads `fd` until `EAGAIN` or end of file; returns the bytes read.
pub fn drain(fd: RawFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match sys::read(fd, &mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(Errno::EAGAIN) => return out,
            Err(e) => panic!("read fd {fd}: {e}"),
        }
    }
}

/// A unique path under the temp dir for this process and test.
pub fn temp_path(test: &str) -> PathBuf {
    std::env::temp_dir().join(format!("linux-event-test-{}-{test}", std::process::id()))
}

/// Aborts the whole test process if it is still alive after `secs` seconds
/// (a hang would otherwise never be reported). Disarmed when dropped.
pub struct Watchdog(Arc<AtomicBool>);

pub fn watchdog(what: &'static str, secs: u64) -> Watchdog {
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    std::thread::spawn(move || {
        let step = Duration::from_millis(50);
        let mut waited = Duration::ZERO;
        while waited < Duration::from_secs(secs) {
            if flag.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(step);
            waited += step;
        }
        if !flag.load(Ordering::SeqCst) {
            // Straight to fd 2: the test harness captures eprintln!, and
            // would lose the message with the aborted process.
            let msg = format!("\nWATCHDOG: {what} still blocked after {secs} s; aborting the test process\n");
            let _ = std::io::Write::write_all(&mut std::io::stderr(), msg.as_bytes());
            std::process::abort();
        }
    });
    Watchdog(done)
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}
