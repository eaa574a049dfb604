//! Shared helpers for the integration tests: the list of backend
//! configurations every behaviour runs against, fd helpers, and a watchdog
//! that turns a hang into a failure.

#![allow(dead_code)]

use core::time::Duration;
use linux_event::backend::{Epoll, EpollTimer};
use linux_event::sys::{self, OwnedFd, RawFd};
use linux_event::{Errno, Loop};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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
    pub timer: EpollTimer,
}

impl Config {
    /// A fresh backend of this configuration.
    pub fn backend(&self) -> Epoll {
        let b = Epoll::with_timer(self.timer).unwrap_or_else(|e| panic!("[{}] Epoll::with_timer: {e}", self.name));
        assert_eq!(b.timer(), self.timer, "[{}] backend picked another way of waiting", self.name);
        b
    }

    /// A fresh loop on a backend of this configuration.
    pub fn new_loop<C, const W: usize, const T: usize>(&self) -> Loop<C, W, T> {
        Loop::<C, W, T>::with_backend(self.backend())
            .unwrap_or_else(|e| panic!("[{}] Loop::with_backend: {e}", self.name))
    }
}

/// Every backend configuration this kernel offers. A configuration the
/// kernel refuses (`ENOSYS`: no `epoll_pwait2`; `EPERM`: a seccomp profile)
/// is reported on stdout, never skipped silently.
pub fn configs() -> Vec<Config> {
    let all = [
        Config { name: "epoll+WaitTimeout", timer: EpollTimer::WaitTimeout },
        Config { name: "epoll+Timerfd", timer: EpollTimer::Timerfd },
    ];
    let mut out = Vec::new();
    for cfg in all {
        match Epoll::with_timer(cfg.timer) {
            Ok(b) => {
                assert_eq!(b.timer(), cfg.timer, "[{}] backend picked another way of waiting", cfg.name);
                out.push(cfg);
            }
            Err(e @ (Errno::ENOSYS | Errno::EPERM)) => {
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
