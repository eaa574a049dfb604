//! The init itself: start the child, forward signals, reap zombies the
//! moment SIGCHLD arrives, and exit with the main child's status (after an
//! optional grace period for the leftovers).
//!
//! Runs the same under std and with no libc at all; it never allocates.

use crate::options::{self, Options, Parsed};
use crate::say::{Show, Verbosity};
use core::ffi::CStr;
use core::time::Duration;
use linux_event::process::{SignalState, Spawn};
use linux_event::sys::{self, Disposition, Errno, ExitStatus, ProcessGroup, WaitTarget};
use linux_event::{ChildEvent, Loop, SignalEvent};

/// Signals that belong to the init itself: synchronous faults, the two the
/// kernel will not let anyone catch, SIGCHLD, and terminal stops.
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

struct Init<'a> {
    opts: Options<'a>,
    child: i32,
    exit_code: i32,
    /// The main child is gone; leftovers are being terminated.
    in_grace: bool,
}

type InitLoop<'a> = Loop<Init<'a>, 8, 4>;

/// Runs the init with `argv` (`argv[0]` included) and the environment;
/// returns the process exit code.
pub fn main(argv: &[&CStr], envp: &[&CStr]) -> i32 {
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
    let opts = match options::parse(argv, envp) {
        Parsed::Run(opts) => opts,
        Parsed::Exit(code) => return code,
    };
    let say = opts.verbosity;
    if let Some(signo) = opts.parent_death_signal
        && let Err(e) = sys::set_parent_death_signal(signo)
    {
        say.fatal(format_args!("Failed to set up parent death signal: {e}"));
        return 1;
    }
    if opts.subreaper
        && let Err(e) = sys::set_child_subreaper(true)
    {
        say.fatal(format_args!("Failed to register as child subreaper: {e}"));
        return 1;
    }
    warn_if_no_reaping(say);
    match run(opts, startup, envp) {
        Ok(code) => code,
        Err(code) => code,
    }
}

fn warn_if_no_reaping(say: Verbosity) {
    if sys::getpid() == 1 || sys::is_child_subreaper().unwrap_or(false) {
        return;
    }
    say.warn(format_args!(
        "Tini is not running as PID 1 and isn't registered as a child subreaper.\n\
Zombie processes will not be re-parented to Tini, so zombie reaping won't work.\n\
To fix the problem, use the -s option or set the environment variable TINI_SUBREAPER to register Tini as a child subreaper, or run Tini as PID 1."
    ));
}

fn run(opts: Options<'_>, startup: SignalState, envp: &[&CStr]) -> Result<i32, i32> {
    let say = opts.verbosity;
    let fatal = |what: &str, e: linux_event::Error| {
        say.fatal(format_args!("{what}: {e}"));
        1
    };
    let mut lp: InitLoop<'_> = Loop::new().map_err(|e| fatal("Event loop", e))?;
    // Block and watch every forwardable signal before the child exists, so
    // none can reach the init's default action in between.
    for signo in 1..=sys::MAX_SIGNAL {
        if !NOT_FORWARDED.contains(&signo) {
            lp.signal(signo, forward, 0).map_err(|e| fatal("Watching signals", e))?;
        }
    }
    // Background reads and writes on the terminal must not stop the init.
    for signo in [sys::SIGTTIN, sys::SIGTTOU] {
        let _ = sys::set_disposition(signo, Disposition::Ignore);
    }
    lp.children(reaped).map_err(|e| fatal("Reaping children", e))?;

    let program = opts.argv[0];
    let mut spawn = Spawn::new(program)
        .args(&opts.argv)
        .env(envp)
        .signal_state(startup)
        .process_group(ProcessGroup::New)
        .keep_fds();
    if sys::isatty(0) {
        spawn = spawn.foreground(0);
    }
    let child = match spawn.spawn() {
        Ok(child) => child,
        Err(e) => {
            say.fatal(format_args!("exec {} failed: {}", Show(program), e.description().unwrap_or("unknown error")));
            return Err(match e {
                Errno::ENOENT => 127,
                Errno::EACCES => 126,
                _ => 1,
            });
        }
    };
    say.info(format_args!("Spawned child process '{}' with pid '{}'", Show(program), child.pid));
    let mut init = Init { child: child.pid, opts, exit_code: 1, in_grace: false };
    lp.child(child, main_child_exited, 0).map_err(|e| fatal("Watching the child", e))?;
    lp.run(&mut init).map_err(|e| fatal("Event loop", e))?;
    Ok(init.exit_code)
}

fn forward(_lp: &mut InitLoop<'_>, init: &mut Init<'_>, ev: SignalEvent) {
    let to = i32::from(init.opts.rewrite[ev.signo() as usize]);
    if to == 0 {
        init.opts.verbosity.debug(format_args!("Dropping signal {} as asked", ev.signo()));
        return;
    }
    let target = if init.opts.kill_group { -init.child } else { init.child };
    // Real-time signals queue: forward each one that arrived.
    for _ in 0..ev.count().min(1024) {
        if let Err(e) = sys::kill(target, to) {
            if e == Errno::ESRCH {
                init.opts.verbosity.debug(format_args!("Child was dead when forwarding signal"));
            } else {
                init.opts.verbosity.fatal(format_args!("Unexpected error when forwarding signal: {e}"));
            }
            return;
        }
    }
    init.opts.verbosity.debug(format_args!("Passed on signal {} as {}", ev.signo(), to));
}

fn main_child_exited(lp: &mut InitLoop<'_>, init: &mut Init<'_>, ev: ChildEvent) {
    let say = init.opts.verbosity;
    let code = match ev.status() {
        Ok(ExitStatus::Exited(code)) => {
            say.info(format_args!("Main child exited normally (with status '{code}')"));
            code
        }
        Ok(ExitStatus::Signaled { signal, .. }) => {
            say.info(format_args!("Main child exited with signal (with signal '{signal}')"));
            128 + signal
        }
        Err(e) => {
            say.fatal(format_args!("Lost the main child's status: {e}"));
            1
        }
    };
    let code = code.rem_euclid(256);
    init.exit_code = if init.opts.remapped(code) { 0 } else { code };
    match init.opts.grace {
        Some(grace) => start_grace(lp, init, grace),
        None => lp.stop(),
    }
}

fn reaped(lp: &mut InitLoop<'_>, init: &mut Init<'_>, pid: i32, _status: ExitStatus) {
    if init.opts.warn_on_reap {
        init.opts.verbosity.warn(format_args!("Reaped zombie process with pid={pid}"));
    }
    if init.in_grace && !has_children() {
        lp.stop();
    }
}

fn has_children() -> bool {
    !matches!(sys::wait_exit(WaitTarget::Any, false), Err(Errno::ECHILD))
}

fn start_grace(lp: &mut InitLoop<'_>, init: &mut Init<'_>, grace: Duration) {
    init.in_grace = true;
    if !has_children() {
        lp.stop();
        return;
    }
    signal_children(sys::SIGTERM);
    let armed = lp.after(grace, |lp, init, _| {
        init.opts.verbosity.info(format_args!("Grace period over: killing what is left"));
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
        path[len..len + part.len()].copy_from_slice(part);
        len += part.len();
    }
    let Ok(path) = CStr::from_bytes_until_nul(&path[..=len]) else { return };
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
        for &b in &buf[..n] {
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
