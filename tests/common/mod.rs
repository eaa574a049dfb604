//! Shared helpers for the integration tests: the backend configurations
//! every behaviour runs on (one named test each, see [`backend_tests!`]),
//! fd helpers, and a watchdog that turns a hang into a failure.

#![allow(dead_code)]

use core::time::Duration;
use linux_event::Errno;
use linux_event::backend::{AioConfig, AnyBackend, BackendKind, Epoll, EpollTimer, IoUring, LinuxAio};
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
    /// Whether a Linux AIO configuration reads completions from the ring
    /// it shares with the kernel (`true`) or always with `io_getevents`
    /// (ignored by the others).
    pub aio_ring: bool,
}

/// Epoll with a timerfd for deadlines (the default).
pub const EPOLL: Config =
    Config { name: "epoll", kind: BackendKind::Epoll, timer: EpollTimer::Timerfd, aio_ring: true };
/// Epoll with `epoll_pwait2`'s own timeout.
pub const EPOLL_PWAIT2: Config =
    Config { name: "epoll+pwait2", kind: BackendKind::Epoll, timer: EpollTimer::WaitTimeout, aio_ring: true };
/// Linux AIO (`IOCB_CMD_POLL`), completions read from the shared ring.
pub const LINUX_AIO: Config =
    Config { name: "linux-aio", kind: BackendKind::LinuxAio, timer: EpollTimer::Timerfd, aio_ring: true };
/// Linux AIO with every completion read through `io_getevents` (not one of
/// [`ALL`]: `backend_tests!(@on linux_aio_io_getevents = LINUX_AIO_IO_GETEVENTS; ...)`
/// adds it where the way completions are read matters).
pub const LINUX_AIO_IO_GETEVENTS: Config =
    Config { name: "linux-aio+io_getevents", kind: BackendKind::LinuxAio, timer: EpollTimer::Timerfd, aio_ring: false };
/// io_uring (`POLL_ADD`).
pub const IO_URING: Config =
    Config { name: "io_uring", kind: BackendKind::IoUring, timer: EpollTimer::Timerfd, aio_ring: true };

/// Every configuration the kernel is probed for.
const PROBED: [Config; 5] = [EPOLL, EPOLL_PWAIT2, LINUX_AIO, LINUX_AIO_IO_GETEVENTS, IO_URING];

impl Config {
    fn make(&self, capacity: Option<u32>) -> Result<AnyBackend, Errno> {
        match self.kind {
            BackendKind::Epoll => Epoll::with_timer(self.timer).map(AnyBackend::from_epoll),
            BackendKind::LinuxAio => {
                let capacity = capacity.unwrap_or(LinuxAio::DEFAULT_CAPACITY);
                LinuxAio::with_config(AioConfig { capacity, read_ring: self.aio_ring, ..AioConfig::default() })
                    .map(AnyBackend::from_linux_aio)
            }
            BackendKind::IoUring => {
                IoUring::with_capacity(capacity.unwrap_or(IoUring::DEFAULT_CAPACITY)).map(AnyBackend::from_io_uring)
            }
            BackendKind::Auto => AnyBackend::new(BackendKind::Auto),
        }
    }

    /// The module `backend_tests!` puts this configuration's tests in
    /// (`epoll_pwait2` for `epoll+pwait2`): the first part of their names.
    pub fn module(&self) -> String {
        self.name.replace(['+', '-'], "_")
    }

    /// A fresh backend of this configuration.
    pub fn backend(&self) -> AnyBackend {
        self.checked(self.make(None))
    }

    /// A fresh backend of this configuration with room for `capacity` key
    /// slots (epoll has no such limit and ignores it).
    pub fn backend_with_capacity(&self, capacity: u32) -> AnyBackend {
        self.checked(self.make(Some(capacity)))
    }

    fn checked(&self, made: Result<AnyBackend, Errno>) -> AnyBackend {
        let b = made.unwrap_or_else(|e| panic!("[{}] backend: {e}", self.name));
        assert_eq!(b.kind(), self.kind, "[{}]", self.name);
        if let Some(epoll) = b.as_epoll() {
            assert_eq!(epoll.timer(), self.timer, "[{}] backend picked another way of waiting", self.name);
        }
        if let Some(aio) = b.as_linux_aio()
            && !self.aio_ring
        {
            assert!(!aio.reads_ring(), "[{}] backend reads the ring although told not to", self.name);
        }
        b
    }

    /// A fresh loop on a backend of this configuration.
    pub fn new_loop<C, const W: usize, const T: usize>(&self) -> Loop<C, W, T> {
        Loop::<C, W, T>::with_backend(self.backend())
            .unwrap_or_else(|e| panic!("[{}] Loop::with_backend: {e}", self.name))
    }

    /// Whether this kernel offers the configuration: probed once per test
    /// binary, in a thread of its own (closing an io_uring makes the
    /// closing thread's next blocking `epoll_pwait` or `io_getevents`
    /// return EINTR about 16 ms later, which would turn a test's blocking
    /// `run_once` into an empty pass).
    pub fn offered(&self) -> Result<(), Errno> {
        static OFFERED: std::sync::OnceLock<Vec<(&'static str, Result<(), Errno>)>> = std::sync::OnceLock::new();
        let all = OFFERED.get_or_init(|| {
            std::thread::spawn(|| PROBED.iter().map(|c| (c.name, c.make(None).map(drop))).collect()).join().unwrap()
        });
        all.iter().find(|(n, _)| *n == self.name).map_or(Err(Errno::EINVAL), |(_, r)| *r)
    }
}

/// Every configuration, in the order `backend_tests!` runs them.
pub const ALL: [Config; 4] = [EPOLL, EPOLL_PWAIT2, LINUX_AIO, IO_URING];

/// Whether `cfg` must run here: `LINUX_EVENT_REQUIRE` (a comma-separated
/// list of backend names, or `all`) makes a refusal a failure; CI sets it
/// on the machine class whose kernel has every backend.
fn required(cfg: &Config) -> bool {
    let Ok(list) = std::env::var("LINUX_EVENT_REQUIRE") else { return false };
    list.split(',').any(|w| w == "all" || w == cfg.name || BackendKind::from_name(w) == Some(cfg.kind))
}

/// Runs the body of one behaviour on one configuration. A configuration
/// the kernel refuses (`ENOSYS`: no `epoll_pwait2`, no AIO or io_uring, as
/// under qemu-user; `EPERM`: a seccomp profile) is reported with its errno
/// on stdout and stderr, never skipped silently, and is a failure when
/// `LINUX_EVENT_REQUIRE` names it.
pub fn run_on(cfg: Config, body: fn(&Config)) {
    match cfg.offered() {
        Ok(()) => body(&cfg),
        Err(e) if required(&cfg) => panic!("[{}] required by LINUX_EVENT_REQUIRE but refused: {e}", cfg.name),
        Err(e @ (Errno::ENOSYS | Errno::EPERM | Errno::EOPNOTSUPP | Errno::EAGAIN)) => {
            let note =
                format!("NOTE: [{}] not offered by this kernel: {e} (errno {}); not run here", cfg.name, e.raw());
            println!("{note}");
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "{note}");
        }
        Err(e) => panic!("[{}] unexpected error creating the backend: {e}", cfg.name),
    }
}

/// One `#[test]` per behaviour per backend configuration: for each listed
/// function `name(&Config)`, `epoll::name`, `epoll_pwait2::name`,
/// `linux_aio::name` and `io_uring::name`. `cargo test io_uring` selects one
/// backend, and a failure names the backend it failed on.
///
/// `backend_tests!(@on module = CONFIG; names...)` adds the same for one
/// more configuration of this module (e.g. `LINUX_AIO_IO_GETEVENTS`).
#[allow(unused_macros)] // tests/children.rs lists its entries itself
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        backend_tests!(@on epoll = EPOLL; $($name),*);
        backend_tests!(@on epoll_pwait2 = EPOLL_PWAIT2; $($name),*);
        backend_tests!(@on linux_aio = LINUX_AIO; $($name),*);
        backend_tests!(@on io_uring = IO_URING; $($name),*);
    };
    (@on $module:ident = $config:ident; $($name:ident),* $(,)?) => {
        mod $module {
            $( #[test] fn $name() { $crate::common::run_on($crate::common::$config, super::$name) } )*
        }
    };
}

/// Runs one pass of `lp`, waiting at most `timeout`; how many callbacks
/// ran. An error fails the test, naming the backend.
pub fn pass<C, const W: usize, const T: usize>(
    cfg: &Config,
    lp: &mut Loop<C, W, T>,
    ctx: &mut C,
    timeout: Option<Duration>,
) -> usize {
    lp.run_once(ctx, timeout).unwrap_or_else(|e| panic!("[{}] run_once: {e}", cfg.name))
}

/// Removes the watcher of `fd` the way the API spells it (`watcher_of`,
/// then `remove`): `None` when the fd has no watcher, else what `remove`
/// said (whether the watcher was live).
pub fn remove_watcher_of<C, const W: usize, const T: usize>(lp: &mut Loop<C, W, T>, fd: RawFd) -> Option<bool> {
    lp.watcher_of(fd).map(|id| lp.remove(id))
}

/// A non-blocking pipe: (read end, write end).
pub fn pipe() -> (OwnedFd, OwnedFd) {
    sys::pipe().expect("pipe2")
}

/// A pipe whose read end has an fd number no other fd of this process
/// has had (counting up from 4096): for tests that close a watched fd
/// behind the loop's back. Other test threads then cannot open a file
/// under the same number before the loop looks again (the one-shot
/// backends arm a watch at the next wait, by number).
pub fn pipe_with_unique_read_fd() -> (OwnedFd, OwnedFd) {
    static NEXT: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(4096);
    let (r, w) = pipe();
    let want = NEXT.fetch_add(1, Ordering::SeqCst);
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) takes no pointers.
    let fd = unsafe { libc::fcntl(r.as_raw_fd(), libc::F_DUPFD_CLOEXEC, want) };
    assert_eq!(fd, want, "F_DUPFD_CLOEXEC gave another number: {}", std::io::Error::last_os_error());
    // SAFETY: a fresh fd from fcntl, owned by nothing else.
    (unsafe { OwnedFd::from_raw_fd(fd) }, w)
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

/// The system calls a loop blocks in: every backend's wait.
const WAIT_SYSCALLS: [i64; 4] =
    [libc::SYS_epoll_pwait, libc::SYS_epoll_pwait2, libc::SYS_io_getevents, libc::SYS_io_uring_enter];

/// Under qemu-user, `/proc/<tid>/syscall` is the host kernel's view: the
/// emulator's own call, numbered for the host. CI's hosts are x86_64, whose
/// numbers for the same waits (qemu may turn `epoll_pwait` into
/// `epoll_wait`, and `io_getevents` into `io_pgetevents`) are these.
#[cfg(not(target_arch = "x86_64"))]
const HOST_WAIT_SYSCALLS: [i64; 6] = [232, 281, 441, 208, 333, 426];
#[cfg(target_arch = "x86_64")]
const HOST_WAIT_SYSCALLS: [i64; 0] = [];

/// Whether thread `tid` of this process is asleep inside one of the
/// backends' wait system calls (read from `/proc/self/task/<tid>`).
pub fn blocked_in_wait(tid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else { return false };
    // The state follows the parenthesised command name.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    if state != Some('S') {
        return false;
    }
    let Ok(call) = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")) else { return false };
    call.split_whitespace()
        .next()
        .and_then(|nr| nr.parse::<i64>().ok())
        .is_some_and(|nr| WAIT_SYSCALLS.contains(&nr) || HOST_WAIT_SYSCALLS.contains(&nr))
}

/// Waits until thread `tid` is asleep in a backend's wait (how a test
/// knows a loop is blocked before waking it, instead of sleeping and
/// hoping); `false` if it never got there within `PATIENCE`.
pub fn wait_until_blocked(tid: i32) -> bool {
    let give_up = std::time::Instant::now() + PATIENCE.unwrap();
    while !blocked_in_wait(tid) {
        if std::time::Instant::now() > give_up {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
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

/// Whether this process can exec programs of its own architecture
/// directly. Tests of another architecture run under `qemu-<arch>-static`
/// as cargo's runner, with no binfmt_misc: the kernel refuses the exec
/// (ENOEXEC), or glibc's posix_spawn loses that error and the child exits
/// 127 with no output. Probed once, by running this test binary's `--list`.
fn execs_natively() -> bool {
    static NATIVE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *NATIVE.get_or_init(|| {
        let exe = std::env::current_exe().expect("current_exe");
        match std::process::Command::new(&exe).arg("--list").output() {
            Ok(o) if o.status.success() => true,
            Ok(o) if o.status.code() == Some(127) && o.stdout.is_empty() => false,
            Err(e) if e.raw_os_error() == Some(8) => false,
            other => panic!("cannot run {}: {other:?}", exe.display()),
        }
    })
}

/// A command that runs `program`, a binary built for this test's
/// architecture: directly, or through qemu-user (see [`execs_natively`]).
pub fn program(program: impl AsRef<std::path::Path>) -> std::process::Command {
    let program = program.as_ref();
    if execs_natively() {
        return std::process::Command::new(program);
    }
    let mut c = std::process::Command::new(format!("qemu-{}-static", std::env::consts::ARCH));
    if let Ok(root) = std::env::var("QEMU_LD_PREFIX") {
        c.arg("-L").arg(root);
    }
    c.arg(program);
    c
}

/// A command that runs this test binary again (see [`program`]).
pub fn this_test_binary() -> std::process::Command {
    program(std::env::current_exe().expect("current_exe"))
}
