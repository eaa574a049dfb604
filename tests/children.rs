//! Child processes and process-directed signals. Runs without the test
//! harness: process-directed signals (SIGCHLD above all) go to any thread
//! that does not block them, so every test here runs on the main thread,
//! which blocks them before any other thread exists.
//!
//! Each behaviour that involves a loop runs once per backend configuration,
//! as its own named entry (`epoll::name`, `epoll_pwait2::name`,
//! `linux_aio::name`, `io_uring::name`; io_uring last, since closing a ring
//! makes the closing thread's next blocking wait return early). `main`
//! reads the command line as libtest does: `cargo test --test children
//! io_uring` runs only the io_uring entries; `--exact`, `--skip` and
//! `--list` work too.

mod common;

use common::{Config, run_on};
use linux_event::process::{SignalState, Spawn};
use linux_event::sys::{self, ExitStatus, MaskHow, ProcessGroup, SigSet, Spawned, WaitTarget};
use linux_event::{ChildMode, Errno, Error, PidOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::time::Duration;

type Lp<C> = common::Loop<C, 2048, 16>;

/// A loop on `cfg` with room for the thousand children below (the Linux
/// AIO and io_uring backends are sized when made).
fn new_loop<C>(cfg: &Config) -> Lp<C> {
    Lp::<C>::with_backend(cfg.backend_with_capacity(2048))
        .unwrap_or_else(|e| panic!("[{}] Loop::with_backend: {e}", cfg.name))
}

fn run_until<C>(cfg: &Config, lp: &mut Lp<C>, ctx: &mut C, mut done: impl FnMut(&C) -> bool) {
    for _ in 0..10_000 {
        if done(ctx) {
            return;
        }
        lp.run_once(ctx, Some(Duration::from_secs(5))).unwrap_or_else(|e| panic!("[{}] run_once: {e}", cfg.name));
    }
    panic!("[{}] condition not reached", cfg.name);
}

fn zombies_of_ours() -> Vec<i32> {
    let me = sys::getpid();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // pid (comm) state ppid ...
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else { continue };
        let mut f = rest.split(' ');
        let (state, ppid) = (f.next(), f.next().and_then(|p| p.parse::<i32>().ok()));
        if state == Some("Z") && ppid == Some(me) {
            out.push(pid);
        }
    }
    out
}

#[derive(Default)]
struct Seen {
    by_watcher: BTreeMap<i32, Vec<Result<ExitStatus, Errno>>>,
    by_reaper: BTreeMap<i32, Vec<ExitStatus>>,
    data: Vec<u64>,
}

fn watched(_lp: &mut Lp<Seen>, s: &mut Seen, ev: linux_event::PidEvent) {
    s.by_watcher.entry(ev.pid()).or_default().push(ev.status());
    s.data.push(ev.data());
}

fn reaped(_lp: &mut Lp<Seen>, s: &mut Seen, ev: linux_event::ReapEvent) {
    s.by_reaper.entry(ev.pid()).or_default().push(ev.status());
}

fn unused(_lp: &mut Lp<Seen>, _s: &mut Seen, _ev: linux_event::PidEvent) {}

/// `sh -c <script>`.
fn sh(script: &CString) -> Spawned {
    Spawn::new(c"sh").args(&[c"sh", c"-c", script]).spawn().unwrap()
}

fn exit_status_42_is_delivered_once(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp<Seen> = new_loop(cfg);
    let child = sh(&CString::new("exit 42").unwrap());
    let pid = child.pid;
    lp.pid(child, 42, watched).unwrap();
    let mut seen = Seen::default();
    run_until(cfg, &mut lp, &mut seen, |s| !s.by_watcher.is_empty());
    for _ in 0..3 {
        lp.run_once(&mut seen, Some(Duration::from_millis(10))).unwrap();
    }
    assert_eq!(seen.by_watcher[&pid], vec![Ok(ExitStatus::Exited(42))], "[{n}]");
    assert_eq!(seen.data, [42], "[{n}]");
    assert_eq!(lp.watcher_count(), 0, "[{n}] the pid watcher removes itself");
}

fn an_inherited_ignore_of_sigchld_does_not_lose_the_status(cfg: &Config) {
    // Under a parent that ignores SIGCHLD the kernel reaps children itself;
    // the loop sets the disposition back to the default on its first pid
    // watcher or reaper (before, the status came back as ECHILD). Children
    // spawned after that keep their statuses.
    let n = cfg.name;
    sys::set_disposition(sys::SIGCHLD, sys::Disposition::Ignore).unwrap();
    let mut lp: Lp<Seen> = new_loop(cfg);
    let (blocker, release) = grandchild_free_blocker();
    lp.pid(blocker, 0, watched).unwrap();
    assert_eq!(sys::disposition(sys::SIGCHLD), Ok(sys::Disposition::Default), "[{n}]");
    let child = sh(&CString::new("exit 5").unwrap());
    let pid = child.pid;
    lp.pid(child, 0, watched).unwrap();
    let mut seen = Seen::default();
    run_until(cfg, &mut lp, &mut seen, |s| s.by_watcher.contains_key(&pid));
    assert_eq!(seen.by_watcher[&pid], vec![Ok(ExitStatus::Exited(5))], "[{n}]");
    drop(release);
    run_until(cfg, &mut lp, &mut seen, |s| s.by_watcher.len() == 2);
}

/// A child that runs until the returned pipe end is dropped.
fn grandchild_free_blocker() -> (Spawned, std::io::PipeWriter) {
    let (r, w) = std::io::pipe().unwrap();
    let child =
        Spawn::new(c"sh").args(&[c"sh", c"-c", c"read x"]).stdin(std::os::fd::AsRawFd::as_raw_fd(&r)).spawn().unwrap();
    drop(r);
    (child, w)
}

fn death_by_sigterm_is_signaled(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp<Seen> = new_loop(cfg);
    let child = Spawn::new(c"sleep").args(&[c"sleep", c"30"]).spawn().unwrap();
    let pid = child.pid;
    lp.pid(child, 0, watched).unwrap();
    sys::kill(pid, sys::SIGTERM).unwrap();
    let mut seen = Seen::default();
    run_until(cfg, &mut lp, &mut seen, |s| !s.by_watcher.is_empty());
    assert_eq!(seen.by_watcher[&pid], vec![Ok(ExitStatus::Signaled { signal: 15, core_dumped: false })], "[{n}]");
}

fn missing_pid_is_esrch_and_bad_pid_is_einval(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp<Seen> = new_loop(cfg);
    assert_eq!(lp.pid(0x7fff_fff0, 0, unused).err(), Some(Error::Os(Errno::ESRCH)), "[{n}]");
    assert_eq!(lp.pid(0, 0, unused).err(), Some(Error::Os(Errno::EINVAL)), "[{n}]");
    assert_eq!(lp.pid(-5, 0, unused).err(), Some(Error::Os(Errno::EINVAL)), "[{n}]");
    lp.force_sigchld_mode(Errno::ENOSYS);
    assert_eq!(lp.pid(0x7fff_fff0, 0, unused).err(), Some(Error::Os(Errno::ESRCH)), "[{n}]");
    assert_eq!(lp.pid(-5, 0, unused).err(), Some(Error::Os(Errno::EINVAL)), "[{n}]");
    assert_eq!(lp.watcher_count(), 0, "[{n}]");
}

fn a_second_pid_watcher_for_one_process_is_already_watched(cfg: &Config) {
    let n = cfg.name;
    for forced in [false, true] {
        let mut lp: Lp<Seen> = new_loop(cfg);
        if forced {
            lp.force_sigchld_mode(Errno::EPERM);
        }
        // Exits when its stdin closes: it outlives the refusals below.
        let (r, w) = std::io::pipe().unwrap();
        let child = Spawn::new(c"cat").stdin(r.as_raw_fd()).spawn().unwrap();
        drop(r);
        let pid = child.pid;
        let first = lp.pid(pid, 1, watched).unwrap();
        assert_eq!(lp.pid(pid, 2, watched).err(), Some(Error::AlreadyWatched), "[{n}] forced={forced}");
        assert_eq!(lp.pid(child, 3, watched).err(), Some(Error::AlreadyWatched), "[{n}] forced={forced}: Spawned");
        let no_reap = PidOptions::default().reap(false);
        let refused = lp.pid_with(pid, no_reap, 4, watched).err();
        assert_eq!(refused, Some(Error::AlreadyWatched), "[{n}] forced={forced}: reap(false)");
        assert_eq!(lp.watcher_count(), 1, "[{n}] forced={forced}");
        // One at a time: once the first is removed, another is accepted.
        assert!(lp.remove(first), "[{n}] forced={forced}");
        let second = lp.pid(pid, 5, watched).unwrap();
        drop(w);
        let mut seen = Seen::default();
        run_until(cfg, &mut lp, &mut seen, |s| !s.by_watcher.is_empty());
        assert_eq!(seen.by_watcher[&pid], vec![Ok(ExitStatus::Exited(0))], "[{n}] forced={forced}");
        assert_eq!(seen.data, [5], "[{n}] forced={forced}: delivered to the first or a refused one");
        assert!(!lp.is_live(second), "[{n}] forced={forced}");
        assert!(zombies_of_ours().is_empty(), "[{n}] forced={forced}");
    }
}

/// A process that is not our child (the grandchild `cat`, its parent
/// shell gone), alive until `release` is written to or dropped. Returns
/// the shell (for the loop to reap), the grandchild's pid and `release`.
fn grandchild() -> (Spawned, i32, std::io::PipeWriter) {
    let (stdin_r, release) = std::io::pipe().unwrap();
    let (out_r, out_w) = std::io::pipe().unwrap();
    // The background cat reads the shell's original stdin (fd 3), our
    // pipe, so it lives exactly until we close it.
    let script = c"exec 3<&0; cat <&3 >/dev/null & echo $!";
    let child = Spawn::new(c"sh")
        .args(&[c"sh", c"-c", script])
        .stdin(stdin_r.as_raw_fd())
        .stdout(out_w.as_raw_fd())
        .spawn()
        .unwrap();
    drop((stdin_r, out_w));
    let mut out = String::new();
    (&out_r).read_to_string(&mut out).unwrap();
    let pid = out.trim().parse().unwrap_or_else(|e| panic!("grandchild pid {out:?}: {e}"));
    (child, pid, release)
}

fn non_child_exit_delivers_echild(cfg: &Config) {
    let n = cfg.name;
    let (child, grandchild, release) = grandchild();
    let mut lp: Lp<Seen> = new_loop(cfg);
    lp.pid(child, 0, unused).unwrap();
    lp.pid(grandchild, 0, watched).unwrap();
    drop(release);
    let mut seen = Seen::default();
    run_until(cfg, &mut lp, &mut seen, |s| s.by_watcher.contains_key(&grandchild));
    assert_eq!(seen.by_watcher[&grandchild], vec![Err(Errno::ECHILD)], "[{n}]");
}

fn in_sigchld_mode_a_process_that_is_not_our_child_is_refused_at_registration(cfg: &Config) {
    let n = cfg.name;
    let (child, grandchild, release) = grandchild();
    let mut lp: Lp<Seen> = new_loop(cfg);
    lp.force_sigchld_mode(Errno::ENOSYS);
    // waitid cannot watch someone else's child: refused now, not an
    // ECHILD delivered later.
    assert_eq!(lp.pid(grandchild, 0, watched).err(), Some(Error::Os(Errno::ECHILD)), "[{n}]");
    assert_eq!(lp.watcher_count(), 0, "[{n}]");
    assert_eq!(lp.child_mode(), ChildMode::Sigchld(Errno::ENOSYS), "[{n}]");
    // Our own child is watched as before.
    let shell = child.pid;
    lp.pid(child, 7, watched).unwrap();
    drop(release);
    let mut seen = Seen::default();
    run_until(cfg, &mut lp, &mut seen, |s| !s.by_watcher.is_empty());
    assert_eq!(seen.by_watcher[&shell], vec![Ok(ExitStatus::Exited(0))], "[{n}]");
    assert_eq!(seen.data, [7], "[{n}]");
}

fn raise_fd_limit(n: u64) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain libc calls with a valid rlimit struct (test code only).
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = n.min(lim.rlim_max);
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

fn thousand_children_exiting_at_once_each_delivered_once(cfg: &Config) {
    let n = cfg.name;
    raise_fd_limit(4096);
    let mut lp: Lp<Seen> = new_loop(cfg);
    // A blocking pipe: every cat waits in read() until the write end closes.
    let (r, w) = std::io::pipe().unwrap();
    let mut pids = BTreeSet::new();
    for _ in 0..1000 {
        let child = Spawn::new(c"cat").stdin(r.as_raw_fd()).spawn().unwrap_or_else(|e| panic!("[{n}] spawn: {e}"));
        pids.insert(child.pid);
        lp.pid(child, 0, watched).unwrap();
    }
    drop(r);
    // Every cat sees end of file at once.
    drop(w);
    let mut seen = Seen::default();
    run_until(cfg, &mut lp, &mut seen, |s| s.by_watcher.len() == 1000);
    lp.run_once(&mut seen, Some(Duration::from_millis(20))).unwrap();
    assert_eq!(seen.by_watcher.keys().copied().collect::<BTreeSet<_>>(), pids, "[{n}]");
    assert!(seen.by_watcher.values().all(|v| v == &[Ok(ExitStatus::Exited(0))]), "[{n}] exactly once each, exit 0");
    assert!(zombies_of_ours().is_empty(), "[{n}] zombies left: {:?}", zombies_of_ours());
}

fn pid_watchers_and_any_child_reaping_together(cfg: &Config) {
    let n = cfg.name;
    for forced in [false, true] {
        let mut lp: Lp<Seen> = new_loop(cfg);
        if forced {
            lp.force_sigchld_mode(Errno::EPERM);
        }
        lp.reaper(0, reaped).unwrap();
        let mut watched_pids = BTreeSet::new();
        let mut all = BTreeSet::new();
        for i in 0..40 {
            let child = sh(&CString::new(format!("exit {}", i % 7)).unwrap());
            all.insert(child.pid);
            if i % 2 == 0 {
                watched_pids.insert(child.pid);
                lp.pid(child, 0, watched).unwrap();
            }
        }
        let mut seen = Seen::default();
        run_until(cfg, &mut lp, &mut seen, |s| s.by_reaper.len() == 20 && s.by_watcher.len() == 20);
        lp.run_once(&mut seen, Some(Duration::from_millis(20))).unwrap();
        assert_eq!(seen.by_watcher.keys().copied().collect::<BTreeSet<_>>(), watched_pids, "[{n}] forced={forced}");
        assert!(
            seen.by_watcher.values().all(|v| v.len() == 1 && v[0].is_ok()),
            "[{n}] forced={forced}: {:?}",
            seen.by_watcher
        );
        for pid in &all {
            let expected = if watched_pids.contains(pid) { None } else { Some(1) };
            assert_eq!(seen.by_reaper.get(pid).map(Vec::len), expected, "[{n}] forced={forced}: {pid} by the reaper");
        }
        assert!(zombies_of_ours().is_empty(), "[{n}] forced={forced}");
    }
}

fn forced_fallback_still_delivers_and_says_why(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp<Seen> = new_loop(cfg);
    assert_eq!(lp.child_mode(), ChildMode::Pidfd, "[{n}]");
    lp.force_sigchld_mode(Errno::ENOSYS);
    assert_eq!(lp.child_mode(), ChildMode::Sigchld(Errno::ENOSYS), "[{n}]");
    let a = sh(&CString::new("exit 3").unwrap());
    let b = sh(&CString::new("kill -9 $$").unwrap());
    let (pa, pb) = (a.pid, b.pid);
    lp.pid(a, 0, watched).unwrap();
    lp.pid(b, 0, watched).unwrap();
    let mut seen = Seen::default();
    run_until(cfg, &mut lp, &mut seen, |s| s.by_watcher.len() == 2);
    assert_eq!(seen.by_watcher[&pa], vec![Ok(ExitStatus::Exited(3))], "[{n}]");
    assert_eq!(seen.by_watcher[&pb], vec![Ok(ExitStatus::Signaled { signal: 9, core_dumped: false })], "[{n}]");
    assert_eq!(lp.watcher_count(), 0, "[{n}]");
}

fn not_reaping_leaves_the_zombie(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp<Seen> = new_loop(cfg);
    let child = sh(&CString::new("exit 5").unwrap());
    let pid = child.pid;
    lp.pid_with(pid, PidOptions::default().reap(false), 9, watched).unwrap();
    drop(child);
    let mut seen = Seen::default();
    run_until(cfg, &mut lp, &mut seen, |s| !s.by_watcher.is_empty());
    assert_eq!(seen.data, [9], "[{n}]");
    assert_eq!(seen.by_watcher[&pid], vec![Ok(ExitStatus::Exited(5))], "[{n}]");
    assert_eq!(zombies_of_ours(), vec![pid], "[{n}]");
    assert_eq!(sys::wait_exit(WaitTarget::Pid(pid), true).unwrap(), Some((pid, ExitStatus::Exited(5))), "[{n}]");
}

fn a_non_reaping_pid_watcher_gets_its_childs_status_alone_and_the_reaper_steps_past_the_zombie(cfg: &Config) {
    let n = cfg.name;
    for forced in [false, true] {
        let mut lp: Lp<Seen> = new_loop(cfg);
        if forced {
            lp.force_sigchld_mode(Errno::EPERM);
        }
        lp.reaper(0, reaped).unwrap();
        let kept = sh(&CString::new("exit 5").unwrap());
        let kept_pid = kept.pid;
        lp.pid_with(kept, PidOptions::default().reap(false), 9, watched).unwrap();
        let other = sh(&CString::new("exit 6").unwrap()).pid;
        let mut seen = Seen::default();
        run_until(cfg, &mut lp, &mut seen, |s| !s.by_watcher.is_empty() && s.by_reaper.contains_key(&other));
        assert_eq!(seen.by_watcher[&kept_pid], vec![Ok(ExitStatus::Exited(5))], "[{n}] forced={forced}");
        assert_eq!(seen.by_reaper.get(&other), Some(&vec![ExitStatus::Exited(6)]), "[{n}] forced={forced}");
        assert_eq!(zombies_of_ours(), vec![kept_pid], "[{n}] forced={forced}: the zombie is its user's");
        // A child that exits later reaches the reaper, past the zombie
        // (which an any-child wait would return first, forever).
        let later = sh(&CString::new("exit 7").unwrap()).pid;
        run_until(cfg, &mut lp, &mut seen, |s| s.by_reaper.contains_key(&later));
        lp.run_once(&mut seen, Some(Duration::from_millis(20))).unwrap();
        assert_eq!(seen.by_reaper.get(&later), Some(&vec![ExitStatus::Exited(7)]), "[{n}] forced={forced}");
        assert!(!seen.by_reaper.contains_key(&kept_pid), "[{n}] forced={forced}: the reaper took the kept zombie");
        assert_eq!(seen.by_watcher.len(), 1, "[{n}] forced={forced}: {:?}", seen.by_watcher);
        assert_eq!(zombies_of_ours(), vec![kept_pid], "[{n}] forced={forced}");
        // Its user reaps it; the reaper carries on.
        let status = sys::wait_exit(WaitTarget::Pid(kept_pid), true).unwrap();
        assert_eq!(status, Some((kept_pid, ExitStatus::Exited(5))), "[{n}] forced={forced}");
        let last = sh(&CString::new("exit 8").unwrap()).pid;
        run_until(cfg, &mut lp, &mut seen, |s| s.by_reaper.contains_key(&last));
        assert!(zombies_of_ours().is_empty(), "[{n}] forced={forced}");
    }
}

fn process_directed_signal_reaches_the_loop_with_sender(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp<(u32, i32)> = new_loop(cfg);
    lp.signal(sys::SIGUSR2, 0, |lp, c, ev| {
        *c = (c.0 + ev.count(), ev.pid());
        lp.stop();
    })
    .unwrap();
    sys::kill(sys::getpid(), sys::SIGUSR2).unwrap();
    let mut c = (0, 0);
    lp.run(&mut c).unwrap();
    assert_eq!(c, (1, sys::getpid()), "[{n}]");
}

/// Runs `spawn` and returns its stdout, after reaping it.
fn output_of(spawn: Spawn<'_>) -> String {
    let (mut r, w) = std::io::pipe().unwrap();
    let child = spawn.stdout(w.as_raw_fd()).spawn().unwrap();
    drop(w);
    let mut out = String::new();
    r.read_to_string(&mut out).unwrap();
    let mut status = 0;
    // SAFETY: a blocking waitpid for our own child, with a valid status pointer.
    assert_eq!(unsafe { libc::waitpid(child.pid, &mut status, 0) }, child.pid);
    out
}

fn spawned_child_gets_the_mask_group_and_cwd_asked_for() {
    let dir = std::env::temp_dir().join(format!("le-cwd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cdir = CString::new(dir.to_str().unwrap()).unwrap();
    let state = SignalState {
        mask: SigSet::empty().with(sys::SIGUSR1).with(sys::SIGHUP),
        ignored: SigSet::empty().with(sys::SIGTTIN),
    };
    let asked = |s: Spawn<'static>| s.signal_state(state).process_group(ProcessGroup::New);
    // `cat` reads its own /proc entries: no shell in between to change them.
    let status = output_of(asked(Spawn::new(c"cat").args(&[c"cat", c"/proc/self/status"])));
    let field = |name: &str| {
        let v = status.lines().find_map(|l| l.strip_prefix(name)).unwrap();
        u64::from_str_radix(v.trim(), 16).unwrap()
    };
    assert_eq!(field("SigBlk:"), state.mask.bits(), "{status}");
    // Standard signals only: qemu-user keeps real-time signal 32 ignored
    // in the host processes it starts.
    let standard = (1u64 << 31) - 1;
    assert_eq!(field("SigIgn:") & standard, state.ignored.bits(), "{status}");
    let stat = output_of(asked(Spawn::new(c"cat").args(&[c"cat", c"/proc/self/stat"])));
    let after_comm: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let (pid, pgid) = (stat.split(' ').next().unwrap(), after_comm[2]);
    assert_eq!(pid, pgid, "leads its own process group: {stat}");
    assert_ne!(pgid.parse::<i32>().unwrap(), sys::getpid());
    let cwd = output_of(Spawn::new(c"readlink").args(&[c"readlink", c"/proc/self/cwd"]).cwd(&cdir));
    assert_eq!(cwd.trim(), dir.to_str().unwrap());
    let _ = std::fs::remove_dir(&dir);
}

fn spawn_errors_are_named() {
    assert_eq!(Spawn::new(c"/definitely/not/here").spawn().err(), Some(Errno::ENOENT));
    assert_eq!(Spawn::new(c"not-a-program-in-path").spawn().err(), Some(Errno::ENOENT));
    assert_eq!(Spawn::new(c"/tmp").spawn().err(), Some(Errno::EACCES));
    assert!(zombies_of_ours().is_empty(), "a failed spawn leaves no zombie");
}

/// Collects zombies a failed earlier test may have left, so tests stay independent.
fn reap_leftovers() {
    while let Ok(Some(_)) = sys::wait_exit(WaitTarget::Any, true) {}
}

/// Behaviours that involve no loop: one entry each, under their own name.
const WITHOUT_A_LOOP: &[(&str, fn())] = &[
    ("spawned_child_gets_the_mask_group_and_cwd_asked_for", spawned_child_gets_the_mask_group_and_cwd_asked_for),
    ("spawn_errors_are_named", spawn_errors_are_named),
];

/// The body of a behaviour, run on one backend configuration.
type Behaviour = fn(&Config);

/// Behaviours run on every backend configuration: `<backend>::<name>`.
const ON_EVERY_BACKEND: &[(&str, Behaviour)] = &[
    ("exit_status_42_is_delivered_once", exit_status_42_is_delivered_once),
    ("death_by_sigterm_is_signaled", death_by_sigterm_is_signaled),
    (
        "an_inherited_ignore_of_sigchld_does_not_lose_the_status",
        an_inherited_ignore_of_sigchld_does_not_lose_the_status,
    ),
    ("missing_pid_is_esrch_and_bad_pid_is_einval", missing_pid_is_esrch_and_bad_pid_is_einval),
    (
        "a_second_pid_watcher_for_one_process_is_already_watched",
        a_second_pid_watcher_for_one_process_is_already_watched,
    ),
    ("non_child_exit_delivers_echild", non_child_exit_delivers_echild),
    (
        "in_sigchld_mode_a_process_that_is_not_our_child_is_refused_at_registration",
        in_sigchld_mode_a_process_that_is_not_our_child_is_refused_at_registration,
    ),
    ("thousand_children_exiting_at_once_each_delivered_once", thousand_children_exiting_at_once_each_delivered_once),
    ("pid_watchers_and_any_child_reaping_together", pid_watchers_and_any_child_reaping_together),
    ("forced_fallback_still_delivers_and_says_why", forced_fallback_still_delivers_and_says_why),
    ("not_reaping_leaves_the_zombie", not_reaping_leaves_the_zombie),
    (
        "a_non_reaping_pid_watcher_gets_its_childs_status_alone_and_the_reaper_steps_past_the_zombie",
        a_non_reaping_pid_watcher_gets_its_childs_status_alone_and_the_reaper_steps_past_the_zombie,
    ),
    ("process_directed_signal_reaches_the_loop_with_sender", process_directed_signal_reaches_the_loop_with_sender),
];

/// One named entry.
struct Entry {
    name: String,
    run: Box<dyn Fn()>,
}

/// Every entry, in the order they run: no-loop ones, then each backend's
/// (`common::ALL` puts io_uring last).
fn entries() -> Vec<Entry> {
    let mut out: Vec<Entry> =
        WITHOUT_A_LOOP.iter().map(|&(name, f)| Entry { name: name.to_string(), run: Box::new(f) }).collect();
    for cfg in common::ALL {
        for &(name, f) in ON_EVERY_BACKEND {
            out.push(Entry { name: format!("{}::{name}", cfg.module()), run: Box::new(move || run_on(cfg, f)) });
        }
    }
    out
}

/// The part of libtest's command line that selects tests.
#[derive(Default)]
struct Selection {
    filters: Vec<String>,
    skips: Vec<String>,
    exact: bool,
    list: bool,
    /// `--ignored`: only ignored tests, of which there are none here.
    ignored_only: bool,
}

impl Selection {
    fn from_args(mut args: impl Iterator<Item = String>) -> Selection {
        let mut s = Selection::default();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--exact" => s.exact = true,
                "--list" => s.list = true,
                "--ignored" => s.ignored_only = true,
                "--skip" => s.skips.extend(args.next()),
                // libtest options that take a value: the value is no filter.
                "--test-threads" | "--color" | "--format" | "--logfile" | "--shuffle-seed" | "-Z" => {
                    args.next();
                }
                a if a.starts_with("--skip=") => s.skips.push(a["--skip=".len()..].to_string()),
                // --nocapture, --quiet, --include-ignored, --show-output, ...
                a if a.starts_with('-') => {}
                a => s.filters.push(a.to_string()),
            }
        }
        s
    }

    fn matches(&self, pattern: &str, name: &str) -> bool {
        if self.exact { name == pattern } else { name.contains(pattern) }
    }

    fn selects(&self, name: &str) -> bool {
        !self.ignored_only
            && (self.filters.is_empty() || self.filters.iter().any(|f| self.matches(f, name)))
            && !self.skips.iter().any(|f| self.matches(f, name))
    }
}

fn main() {
    // Before any other thread exists: every later thread inherits this.
    sys::sigprocmask(MaskHow::Block, SigSet::empty().with(sys::SIGCHLD).with(sys::SIGUSR2)).unwrap();
    let selection = Selection::from_args(std::env::args().skip(1));
    let all = entries();
    let total = all.len();
    let chosen: Vec<Entry> = all.into_iter().filter(|e| selection.selects(&e.name)).collect();
    if selection.list {
        for e in &chosen {
            println!("{}: test", e.name);
        }
        println!("\n{} tests, 0 benchmarks", chosen.len());
        return;
    }
    let started = std::time::Instant::now();
    println!("\nrunning {} tests", chosen.len());
    let mut failed = Vec::new();
    for e in &chosen {
        reap_leftovers();
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (e.run)())).is_ok();
        println!("test {} ... {}", e.name, if ok { "ok" } else { "FAILED" });
        let _ = std::io::stdout().flush();
        if !ok {
            failed.push(e.name.as_str());
        }
    }
    if !failed.is_empty() {
        println!("\nfailures:");
        for name in &failed {
            println!("    {name}");
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed; 0 ignored; 0 measured; {} filtered out; finished in {:.2}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        chosen.len() - failed.len(),
        failed.len(),
        total - chosen.len(),
        started.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        std::process::exit(101);
    }
}
