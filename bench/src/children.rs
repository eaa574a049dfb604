//! Workload 5, child exit: the time from a child's release to its exit
//! callback, the child reaped, with 1 and with 100 children watched.
//!
//! Each child is `/bin/sh -c 'echo; read x; exit 0'`, started with
//! `std::process::Command` (posix_spawn) before anything is timed, its
//! stdin a pipe of its own. Once every child has written its newline (and
//! then 2 ms more, for it to enter `read` and sleep there), the
//! implementation watches all of them; then the timed steps: a newline
//! written to a child's pipe releases it, the child exits, and the step
//! ends in the callback that saw its exit status. A step's time is the
//! loop thread's: the release write, the wait, the wake-up, the reaping and
//! the callback; the child's own exit runs in the child (on the same CPU,
//! since it inherits the pinning), in the wall time only.
//!
//! - `1 child`: one child watched, released; per exit. 20 rounds per run
//!   (10 with `--quick`), each with a new child and a new loop.
//! - `100 children`: 100 watched; 10 released one at a time, each timed
//!   alone (100 down to 91 outstanding), then the other 90 released at
//!   once, timed from the first release to the last callback, per exit.
//!
//! linux-event: `Loop::pid` (a pidfd per child; `waitid(P_PIDFD)`); libev:
//! `ev_child` (default loop: a SIGCHLD handler, `waitpid(-1)` until it
//! finds nothing); libevent, which has no child watcher: a SIGCHLD
//! `evsignal` whose callback reaps with `waitpid(-1, WNOHANG)` until none
//! is left and looks each pid up in its list; mio: a pidfd per child
//! registered as a `SourceFd`, `waitid(P_PIDFD)`, deregister, close; raw: a
//! pidfd per child in the epoll set, `waitid(P_PIDFD)`, close.
//!
//! No child outlives a run: every implementation reaps its own, the
//! harness kills and reaps any that is left (by pidfd, so never a stranger
//! that reused a pid), and a run that leaves a child behind fails.

use crate::ffi::{self, ChildResult};
use crate::measure::{Span, mark};
use crate::workload::{Case, Config, Impl, Sample, Workload};
use linux_event::sys::ExitStatus;
use linux_event::{Loop, PidEvent};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Duration;

/// What each child runs: say it is up, wait for its release, exit 0.
const SCRIPT: &str = "echo; read x; exit 0";
/// Children watched in the large case.
pub const MANY: usize = 100;
/// Children of the large case released (and timed) one at a time.
pub const ONE_BY_ONE: usize = 10;
/// How long the children get to block in `read` once all are up.
const SETTLE: Duration = Duration::from_millis(2);

fn os_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a writable array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(os_err("pipe2"));
    }
    // SAFETY: pipe2 just returned these two fds, owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn pidfd_open(pid: i32) -> Result<i32, String> {
    // SAFETY: pidfd_open takes a pid and flags, no pointers.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 { Err(os_err("pidfd_open")) } else { Ok(fd as i32) }
}

fn close(fd: i32) {
    // SAFETY: the caller owns `fd` and forgets it.
    unsafe { libc::close(fd) };
}

/// `waitid(P_PIDFD, fd, WEXITED | flags)`: the pid and the exit code
/// (`None` unless it exited normally), or `None` if nothing was collected.
fn wait_pidfd(fd: i32, flags: i32) -> Option<(i32, Option<i32>)> {
    // SAFETY: a zeroed siginfo_t is valid storage for waitid to fill.
    let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `si` is writable; the fd is a pidfd the caller holds.
    if unsafe { libc::waitid(libc::P_PIDFD, fd as libc::id_t, &mut si, libc::WEXITED | flags) } != 0 {
        return None;
    }
    // SAFETY: waitid filled the SIGCHLD fields (or left them zero).
    let (pid, status) = unsafe { (si.si_pid(), si.si_status()) };
    if pid == 0 {
        return None;
    }
    Some((pid, (si.si_code == libc::CLD_EXITED).then_some(status)))
}

/// `n` children, each asleep reading its pipe. Dropping them releases,
/// kills and reaps whatever is left.
pub struct Kids {
    pids: Vec<i32>,
    /// The harness's own pidfds, for the clean-up only.
    pidfds: Vec<OwnedFd>,
    /// Writing a newline to `release[i]` makes child `i` exit 0.
    release: Vec<OwnedFd>,
}

impl Kids {
    /// Starts `n` children and waits until each is up and blocks in `read`.
    pub fn spawn(n: usize) -> Result<Kids, String> {
        let mut kids = Kids { pids: Vec::with_capacity(n), pidfds: Vec::with_capacity(n), release: Vec::new() };
        let (ready_r, ready_w) = pipe()?;
        for _ in 0..n {
            let (rel_r, rel_w) = pipe()?;
            let out = ready_w.try_clone().map_err(|e| format!("dup: {e}"))?;
            let child = Command::new("/bin/sh")
                .args(["-c", SCRIPT])
                .stdin(Stdio::from(rel_r))
                .stdout(Stdio::from(out))
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("spawn /bin/sh: {e}"))?;
            let pid = child.id() as i32;
            kids.release.push(rel_w);
            match pidfd_open(pid) {
                // SAFETY: pidfd_open returned a new fd that nothing else owns.
                Ok(fd) => kids.pidfds.push(unsafe { OwnedFd::from_raw_fd(fd) }),
                Err(e) => {
                    // Our own unreaped child: its pid cannot have been reused.
                    // SAFETY: plain syscalls on our child's pid.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                        libc::waitpid(pid, std::ptr::null_mut(), 0);
                    }
                    return Err(e);
                }
            }
            kids.pids.push(pid);
        }
        drop(ready_w);
        let mut got = 0;
        let mut buf = [0u8; 256];
        while got < n {
            // SAFETY: `buf` is writable for its length.
            let r = unsafe { libc::read(ready_r.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if r <= 0 {
                return Err(format!("{got} of {n} children started"));
            }
            got += r as usize;
        }
        // After its newline a child only has to enter `read` (microseconds
        // of work, on this CPU while this thread sleeps). Checking its state
        // in /proc/PID/stat instead would leave /proc dentries that the
        // kernel flushes when the child is reaped: about 5 us more per exit,
        // inside the timed section.
        std::thread::sleep(SETTLE);
        Ok(kids)
    }

    /// Number of children.
    pub fn len(&self) -> usize {
        self.pids.len()
    }

    /// Their pids.
    pub fn pids(&self) -> &[i32] {
        &self.pids
    }

    /// Releases child `i`: it exits 0.
    pub fn release(&self, i: usize) -> Result<(), String> {
        // SAFETY: one byte from a static buffer to a pipe we own.
        if unsafe { libc::write(self.release[i].as_raw_fd(), b"\n".as_ptr().cast(), 1) } == 1 {
            Ok(())
        } else {
            Err(os_err("release"))
        }
    }
}

impl Drop for Kids {
    fn drop(&mut self) {
        // End-of-file releases any child still waiting; SIGKILL any other;
        // then reap. Both are no-ops (ESRCH, ECHILD) for a reaped child.
        self.release.clear();
        for fd in &self.pidfds {
            // SAFETY: a signal by pidfd, no pointers but a null siginfo.
            unsafe {
                libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), libc::SIGKILL, std::ptr::null::<u8>(), 0)
            };
            let _ = wait_pidfd(fd.as_raw_fd(), 0);
        }
    }
}

/// Whether this process has an exited child nobody reaped.
fn zombie_left() -> bool {
    // SAFETY: as in `wait_pidfd`; WNOWAIT leaves a zombie where it is.
    let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `si` is writable.
    let rc = unsafe { libc::waitid(libc::P_ALL, 0, &mut si, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT) };
    // SAFETY: waitid filled or zeroed the fields.
    rc == 0 && unsafe { si.si_pid() } != 0
}

/// The timed steps on `kids`, for the Rust implementations (the C drivers
/// have the same in `bench_release`, `c/common.c`): children `0..one`
/// released one at a time, each step ending when `run(target)` returns
/// after `target` callbacks; then the rest at once.
fn timed_releases(
    kids: &Kids,
    one: usize,
    mut run: impl FnMut(u64) -> Result<(), String>,
) -> Result<ChildResult, String> {
    let mut r = ChildResult::default();
    let n = kids.len();
    for i in 0..one.min(n) {
        let m = mark();
        kids.release(i)?;
        run(i as u64 + 1)?;
        let s = m.span();
        r.one.wall += s.wall;
        r.one.cpu += s.cpu;
    }
    if n > one {
        let m = mark();
        for i in one..n {
            kids.release(i)?;
        }
        run(n as u64)?;
        r.rest = m.span();
    }
    Ok(r)
}

// ---- linux-event ---------------------------------------------------------

struct Ctx {
    done: u64,
    target: u64,
    good: u64,
}

type L = Loop<Ctx, 128, 4>;

fn on_exit(lp: &mut L, c: &mut Ctx, ev: PidEvent) {
    c.done += 1;
    if ev.status() == Ok(ExitStatus::Exited(0)) {
        c.good += 1;
    }
    if c.done >= c.target {
        lp.stop();
    }
}

fn ours(kids: &Kids, one: usize) -> Result<ChildResult, String> {
    let e = |e: linux_event::Error| format!("linux-event: {e:?}");
    let mut lp: L = Loop::new().map_err(e)?;
    for (i, &pid) in kids.pids().iter().enumerate() {
        lp.pid(pid, i as u64, on_exit).map_err(e)?;
    }
    let mut ctx = Ctx { done: 0, target: 0, good: 0 };
    let mut r = timed_releases(kids, one, |target| {
        ctx.target = target;
        lp.run(&mut ctx).map_err(e)?;
        if ctx.done >= target { Ok(()) } else { Err(format!("linux-event: the loop ended after {} exits", ctx.done)) }
    })?;
    r.good = ctx.good as i64;
    Ok(r)
}

// ---- mio -----------------------------------------------------------------

fn mio_kids(kids: &Kids, one: usize) -> Result<ChildResult, String> {
    use mio::unix::SourceFd;
    use mio::{Events, Interest, Poll, Token};
    let io = |e: std::io::Error| format!("mio: {e}");
    let mut poll = Poll::new().map_err(io)?;
    let mut events = Events::with_capacity(64);
    let mut pfd: Vec<i32> = Vec::with_capacity(kids.len());
    let (mut done, mut good) = (0u64, 0i64);
    let mut result = Ok(ChildResult::default());
    for (i, &pid) in kids.pids().iter().enumerate() {
        match pidfd_open(pid) {
            Ok(fd) => {
                pfd.push(fd);
                if let Err(e) = poll.registry().register(&mut SourceFd(&fd), Token(i), Interest::READABLE) {
                    result = Err(io(e));
                    break;
                }
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if result.is_ok() {
        result = timed_releases(kids, one, |target| {
            while done < target {
                match poll.poll(&mut events, None) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io(e)),
                }
                for ev in events.iter() {
                    let i = ev.token().0;
                    let Some((_, code)) = wait_pidfd(pfd[i], libc::WNOHANG) else { continue };
                    poll.registry().deregister(&mut SourceFd(&pfd[i])).map_err(io)?;
                    close(pfd[i]);
                    pfd[i] = -1;
                    done += 1;
                    if code == Some(0) {
                        good += 1;
                    }
                }
            }
            Ok(())
        });
    }
    for fd in pfd.into_iter().filter(|&fd| fd >= 0) {
        close(fd);
    }
    let mut r = result?;
    r.good = good;
    Ok(r)
}

// ---- dispatch --------------------------------------------------------------

/// Watches `kids` on `imp` and runs the timed steps (`one` released alone).
pub fn run_once(imp: Impl, kids: &Kids, one: usize) -> Result<ChildResult, String> {
    let release: Vec<i32> = kids.release.iter().map(AsRawFd::as_raw_fd).collect();
    let args =
        ffi::ChildArgs { n: kids.len() as i32, pid: kids.pids.as_ptr(), release: release.as_ptr(), one: one as i32 };
    let mut r = ChildResult::default();
    // SAFETY: `args` points at n pids and n fds, alive for the call; `r` is writable.
    let rc = match imp {
        Impl::Ours => return ours(kids, one),
        Impl::Mio => return mio_kids(kids, one),
        Impl::Libev => unsafe { ffi::bev_children(&args, &mut r) },
        Impl::Libevent => unsafe { ffi::bevent_children(&args, &mut r) },
        Impl::Raw => unsafe { ffi::braw_children(&args, &mut r) },
    };
    if rc != 0 {
        return Err(format!("{} child exit failed", imp.name()));
    }
    Ok(r)
}

/// Spawns `n` children, runs `imp` on them, cleans up, and checks that
/// every child was reaped with status 0 and none is left.
pub fn run_checked(imp: Impl, n: usize, one: usize) -> Result<ChildResult, String> {
    let kids = Kids::spawn(n)?;
    let r = run_once(imp, &kids, one);
    drop(kids);
    if zombie_left() {
        return Err(format!("{}: a child was left unreaped", imp.name()));
    }
    let r = r?;
    if r.good != n as i64 {
        return Err(format!("{}: {} of {n} children reaped with status 0", imp.name(), r.good));
    }
    Ok(r)
}

/// Workload 5.
pub struct Children;

impl Workload for Children {
    fn number(&self) -> u32 {
        5
    }

    fn id(&self) -> &'static str {
        "children"
    }

    fn describe(&self) -> &'static str {
        "child exit: children blocked reading a pipe each; per exit, from the write that releases a child to the \
         callback that got its status (reaped); 1 child watched, or 100 watched with 10 released one at a time \
         (100 to 91 outstanding) and then 90 at once. linux-event, mio and raw epoll: pidfds; libev: ev_child \
         (SIGCHLD + waitpid); libevent: a SIGCHLD evsignal + waitpid loop"
    }

    fn impls(&self) -> &'static [Impl] {
        &Impl::ALL
    }

    fn cases(&self, cfg: &Config) -> Vec<Case> {
        vec![
            Case { label: "1 child".into(), param: 1, reps: cfg.reps(9, 3) },
            Case { label: format!("{MANY} children"), param: MANY as u64, reps: cfg.reps(9, 3) },
        ]
    }

    fn run(&self, case: &Case, _rep: usize, imp: Impl, cfg: &Config) -> Result<Vec<Sample>, String> {
        if case.param == 1 {
            let rounds = if cfg.quick { 10 } else { 20 };
            let mut sum = Span::default();
            for _ in 0..rounds {
                let r = run_checked(imp, 1, 1)?;
                sum.wall += r.one.wall;
                sum.cpu += r.one.cpu;
            }
            return Ok(vec![Sample::per_op("exit", rounds as f64, sum)]);
        }
        let r = run_checked(imp, MANY, ONE_BY_ONE)?;
        Ok(vec![
            Sample::per_op("exit, 1 of 100 released", ONE_BY_ONE as f64, r.one),
            Sample::per_op("exit, 90 released at once", (MANY - ONE_BY_ONE) as f64, r.rest),
        ])
    }
}
