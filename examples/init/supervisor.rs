//! The init itself: start the child, forward signals, reap every zombie the
//! moment SIGCHLD arrives, and exit with the main child's status (after an
//! optional grace period for the leftovers), saying what it does as tini does.
//!
//! Runs the same under std and with no libc at all; it never allocates.

use crate::options::{self, ArgList, Options, Parsed};
use crate::say::{C, E, Lib, N, S, Sig, Verbosity};
use core::time::Duration;
use linux_event::backend::Epoll;
use linux_event::process::{SignalState, Spawn};
use linux_event::sys::{self, CStrArray, Disposition, Errno, ExitStatus, ProcessGroup, WaitTarget};
use linux_event::{Loop, SignalEvent, StaticLoop};

/// Signals that belong to the init itself: synchronous faults, the two the
/// kernel will not let anyone catch, SIGCHLD (watched on its own), and
/// terminal stops.
const NOT_FORWARDED: [i32; 12] = [
    sys::SIGFPE,
    sys::SIGILL,
    sys::SIGSEGV,
    sys::SIGBUS,
    sys::SIGABRT,
    sys::SIGTRAP,
    sys::SIGSYS,
    sys::SIGKILL,
    sys::SIGSTOP,
    sys::SIGCHLD,
    sys::SIGTTIN,
    sys::SIGTTOU,
];

struct Init {
    opts: Options,
    /// The init's own pid: a SIGPIPE it sent itself came from a write of its own.
    pid: i32,
    child: i32,
    /// The main child's exit code, once it has exited.
    exit_code: Option<i32>,
    /// The main child is gone; leftovers are being terminated.
    in_grace: bool,
    /// A fatal error ended the loop: exit 1.
    failed: bool,
}

type InitLoop = Loop<Init, 8, 4>;

/// The loop lives in zero-filled `.bss`, made in place: most of it (the
/// signal source's per-signal records) is never touched, so it costs no
/// memory, where a loop made on the stack would be written and copied whole
/// (about 14 KB, half the init's resident memory).
static LOOP: StaticLoop<Init, 8, 4> = StaticLoop::new();

/// Runs the init with `argv` (`argv[0]` included, reordered while parsing)
/// and the environment; returns the process exit code.
pub fn main<'a, A: ArgList<'a> + ?Sized>(argv: &mut A, envp: CStrArray<'a>) -> i32 {
    // What the child must start with: the init's own mask and ignored set,
    // captured before anything here changes them.
    #[allow(unused_mut)]
    let mut startup = SignalState::capture().unwrap_or_default();
    // Rust's std runtime ignores SIGPIPE before main, so a std build cannot
    // see how it was started; its own Command gives children the default.
    #[cfg(not(linux_event_nolibc))]
    {
        startup.ignored = startup.ignored.without(sys::SIGPIPE);
    }
    // The init's output may go to a pipe nobody reads: its writes must fail
    // with EPIPE rather than kill it. Once the loop blocks SIGPIPE to forward
    // it, the kernel queues the one a failed write raises instead; `forward`
    // tells it apart by its sender, the init itself.
    let _ = sys::set_disposition(sys::SIGPIPE, Disposition::Ignore);
    // An inherited "ignore" for SIGCHLD would make the kernel reap children
    // itself, unseen: the init would wait for its child forever.
    let _ = sys::set_disposition(sys::SIGCHLD, Disposition::Default);
    let opts = match options::parse(argv, envp) {
        Parsed::Run(opts) => opts,
        Parsed::Exit(code) => return code,
    };
    let say = opts.verbosity;
    if let Some(signo) = opts.parent_death_signal
        && sys::set_parent_death_signal(signo).is_err()
    {
        say.fatal("Failed to set up parent death signal", &[]);
        return 1;
    }
    if opts.subreaper {
        match sys::set_child_subreaper(true) {
            Ok(()) => say.trace("Registered as child subreaper", &[]),
            Err(Errno::EINVAL) => {
                say.fatal("PR_SET_CHILD_SUBREAPER is unavailable on this platform. Are you using Linux >= 3.4?", &[]);
                return 1;
            }
            Err(e) => {
                say.fatal("Failed to register as child subreaper: \u{1}", &[E(e)]);
                return 1;
            }
        }
    }
    warn_if_no_reaping(say);
    let program_at = opts.program_at;
    run(opts, startup, argv.tail(program_at), envp)
}

fn warn_if_no_reaping(say: Verbosity) {
    if sys::getpid() == 1 {
        return;
    }
    match sys::is_child_subreaper() {
        Ok(true) => return,
        Ok(false) => {}
        Err(e) => say.debug("Failed to read child subreaper attribute: \u{1}", &[E(e)]),
    }
    say.warn("Tini is not running as PID 1 and isn't registered as a child subreaper.\n\
Zombie processes will not be re-parented to Tini, so zombie reaping won't work.\n\
To fix the problem, use the -s option or set the environment variable TINI_SUBREAPER to register Tini as a child subreaper, or run Tini as PID 1.", &[]);
}

#[inline(never)]
fn run(opts: Options, startup: SignalState, argv: CStrArray<'_>, envp: CStrArray<'_>) -> i32 {
    let say = opts.verbosity;
    let fatal = |what: &str, e: linux_event::Error| {
        say.fatal("\u{1}: \u{1}", &[S(what), Lib(e)]);
        1
    };
    let lp = match Epoll::new().map_err(linux_event::Error::from).and_then(|epoll| LOOP.init(epoll)) {
        Ok(lp) => lp,
        Err(e) => return fatal("Event loop", e),
    };
    // Block and watch every forwardable signal, and SIGCHLD, before the child
    // exists, so none can reach the init's default action in between and no
    // exit can go unnoticed.
    for signo in 1..=sys::MAX_SIGNAL {
        if !NOT_FORWARDED.contains(&signo)
            && let Err(e) = lp.signal(signo, 0, forward)
        {
            return fatal("Watching signals", e);
        }
    }
    if let Err(e) = lp.signal(sys::SIGCHLD, 0, sigchld) {
        return fatal("Watching SIGCHLD", e);
    }
    // Background reads and writes on the terminal must not stop the init.
    for signo in [sys::SIGTTIN, sys::SIGTTOU] {
        let _ = sys::set_disposition(signo, Disposition::Ignore);
    }

    let program = argv.get(0).unwrap_or(c"");
    let mut spawn =
        Spawn::new(program).args(argv).env(envp).signal_state(startup).process_group(ProcessGroup::New).keep_fds();
    if sys::isatty(0) {
        spawn = spawn.foreground(0);
    }
    let child = match spawn.spawn() {
        Ok(child) => child,
        Err(e) => {
            say.fatal("exec \u{1} failed: \u{1}", &[C(program), E(e)]);
            return match e {
                Errno::ENOENT => 127,
                Errno::EACCES => 126,
                _ => 1,
            };
        }
    };
    say.info("Spawned child process '\u{1}' with pid '\u{1}'", &[C(program), N(child.pid.into())]);
    // Children are reaped on SIGCHLD, as tini does (its pidfd is not needed).
    let mut init = Init { child: child.pid, pid: sys::getpid(), opts, exit_code: None, in_grace: false, failed: false };
    drop(child);
    if let Err(e) = lp.run(&mut init) {
        return fatal("Event loop", e);
    }
    if init.failed {
        return 1;
    }
    say.trace("Exiting: child has exited", &[]);
    init.exit_code.unwrap_or(1)
}

fn forward(lp: &mut InitLoop, init: &mut Init, ev: SignalEvent) {
    let say = init.opts.verbosity;
    let signo = ev.signo();
    let mut count = ev.count().min(1024);
    if signo == sys::SIGPIPE {
        // A SIGPIPE the init raised itself (a write of its own hit a broken
        // pipe) is nobody else's business. The kernel queues it for this
        // thread, and signalfd hands those over before process-wide ones, so
        // when the last record of the pass is the init's own, nobody else sent
        // one. Otherwise someone did, and SIGPIPE, not a queued signal, is
        // passed on once. Dropped without a word: saying so on that same
        // output would raise the next one.
        if ev.pid() == init.pid {
            return;
        }
        count = 1;
    }
    let to = init.opts.rewrite.get(signo as usize).map_or(signo, |&to| i32::from(to));
    let target = if init.opts.kill_group { -init.child } else { init.child };
    // Real-time signals queue: forward each one that arrived.
    for _ in 0..count {
        if to == 0 {
            say.debug("Not passing signal: '\u{1}' (dropped by -r)", &[Sig(signo)]);
            continue;
        }
        say.debug("Passing signal: '\u{1}'", &[Sig(signo)]);
        match sys::kill(target, to) {
            Ok(()) => {}
            Err(Errno::ESRCH) => {
                say.warn("Child was dead when forwarding signal", &[]);
                return;
            }
            Err(e) => {
                say.fatal("Unexpected error when forwarding signal: '\u{1}'", &[E(e)]);
                init.failed = true;
                lp.stop();
                return;
            }
        }
    }
}

fn sigchld(lp: &mut InitLoop, init: &mut Init, _ev: SignalEvent) {
    init.opts.verbosity.debug("Received SIGCHLD", &[]);
    reap_zombies(lp, init);
}

/// Reaps every child that has exited (coalesced SIGCHLDs lose none).
fn reap_zombies(lp: &mut InitLoop, init: &mut Init) {
    let say = init.opts.verbosity;
    let mut main_exited = false;
    let none_left = loop {
        match sys::wait_exit(WaitTarget::Any, true) {
            Ok(Some((pid, status))) => {
                say.debug("Reaped child with pid: '\u{1}'", &[N(pid.into())]);
                if pid == init.child {
                    main_child_exited(init, status);
                    main_exited = true;
                } else if init.opts.warn_on_reap {
                    say.warn("Reaped zombie process with pid=\u{1}", &[N(pid.into())]);
                }
            }
            Ok(None) => {
                say.trace("No child to reap", &[]);
                break false;
            }
            Err(Errno::ECHILD) => {
                say.trace("No child to wait", &[]);
                break true;
            }
            Err(e) => {
                say.fatal("Error while waiting for pids: '\u{1}'", &[E(e)]);
                init.failed = true;
                lp.stop();
                return;
            }
        }
    };
    if main_exited {
        match init.opts.grace {
            Some(grace) if !none_left => start_grace(lp, init, grace),
            _ => lp.stop(),
        }
    } else if init.in_grace && none_left {
        lp.stop();
    }
}

fn main_child_exited(init: &mut Init, status: ExitStatus) {
    let say = init.opts.verbosity;
    let code = match status {
        ExitStatus::Exited(code) => {
            say.info("Main child exited normally (with status '\u{1}')", &[N(code.into())]);
            code
        }
        ExitStatus::Signaled { signal, .. } => {
            say.info("Main child exited with signal (with signal '\u{1}')", &[Sig(signal)]);
            128 + signal
        }
    };
    let code = code.rem_euclid(256);
    init.exit_code = Some(if init.opts.remapped(code) { 0 } else { code });
}

fn has_children() -> bool {
    !matches!(sys::wait_exit(WaitTarget::Any, false), Err(Errno::ECHILD))
}

fn start_grace(lp: &mut InitLoop, init: &mut Init, grace: Duration) {
    init.in_grace = true;
    init.opts.verbosity.info("Main child gone: sending SIGTERM to the other children", &[]);
    signal_children(sys::SIGTERM);
    let armed = lp.after(grace, 0, |lp, init, _| {
        init.opts.verbosity.info("Grace period over: killing what is left", &[]);
        signal_children(sys::SIGKILL);
        if !has_children() {
            lp.stop();
        }
    });
    if armed.is_err() {
        signal_children(sys::SIGKILL);
    }
}

/// Sends `signo` to every child of the init (orphans re-parented to it
/// included), as listed by `/proc/self/task/<pid>/children`; as PID 1
/// without that file, to every process in the namespace.
fn signal_children(signo: i32) {
    let mut path = [0u8; 48];
    let mut len = 0;
    for part in [&b"/proc/self/task/"[..], digits(sys::getpid(), &mut [0u8; 12]), b"/children"] {
        if let Some(room) = path.get_mut(len..len + part.len()) {
            room.copy_from_slice(part);
            len += part.len();
        }
    }
    let Some(path) = sys::c_str_in(&path) else { return };
    let Ok(file) = sys::open_readonly(path) else {
        if sys::getpid() == 1 {
            let _ = sys::kill(-1, signo);
        }
        return;
    };
    let mut buf = [0u8; 512];
    let mut pid: i32 = 0;
    loop {
        let n = match sys::read(file.as_raw_fd(), &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in buf.get(..n).unwrap_or(&[]) {
            if b.is_ascii_digit() {
                pid = pid.saturating_mul(10).saturating_add(i32::from(b - b'0'));
            } else if pid > 0 {
                let _ = sys::kill(pid, signo);
                pid = 0;
            }
        }
    }
    if pid > 0 {
        let _ = sys::kill(pid, signo);
    }
}

fn digits(mut n: i32, buf: &mut [u8; 12]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    &buf[i..]
}
