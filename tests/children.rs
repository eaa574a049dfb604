//! Child processes and process-directed signals. Runs without the test
//! harness: process-directed signals (SIGCHLD above all) go to any thread
//! that does not block them, so every test here runs on the main thread,
//! which blocks them before any other thread exists.

use linux_event::process::{SignalState, Spawn};
use linux_event::sys::{self, ExitStatus, MaskHow, ProcessGroup, SigSet, WaitTarget};
use linux_event::{ChildMode, Errno, Error, Loop, PidOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::time::Duration;

type Lp<C> = Loop<C, 2048, 16>;

fn run_until<C>(lp: &mut Lp<C>, ctx: &mut C, mut done: impl FnMut(&C) -> bool) {
    for _ in 0..10_000 {
        if done(ctx) {
            return;
        }
        lp.run_once(ctx, Some(Duration::from_secs(5))).expect("run_once");
    }
    panic!("condition not reached");
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
}

fn exit_status_42_is_delivered_once() {
    let mut lp: Lp<Seen> = Loop::new().unwrap();
    let child = Spawn::new(c"sh").args(&[c"sh", c"-c", c"exit 42"]).spawn().unwrap();
    let pid = child.pid;
    lp.child(child, |_, s, ev| s.by_watcher.entry(ev.pid()).or_default().push(ev.status()), 0).unwrap();
    let mut seen = Seen::default();
    run_until(&mut lp, &mut seen, |s| !s.by_watcher.is_empty());
    for _ in 0..3 {
        lp.run_once(&mut seen, Some(Duration::from_millis(10))).unwrap();
    }
    assert_eq!(seen.by_watcher[&pid], vec![Ok(ExitStatus::Exited(42))]);
    assert_eq!(lp.watcher_count(), 0, "the pid watcher removes itself");
}

fn death_by_sigterm_is_signaled() {
    let mut lp: Lp<Seen> = Loop::new().unwrap();
    let child = Spawn::new(c"sleep").args(&[c"sleep", c"30"]).spawn().unwrap();
    let pid = child.pid;
    lp.child(child, |_, s, ev| s.by_watcher.entry(ev.pid()).or_default().push(ev.status()), 0).unwrap();
    sys::kill(pid, sys::SIGTERM).unwrap();
    let mut seen = Seen::default();
    run_until(&mut lp, &mut seen, |s| !s.by_watcher.is_empty());
    assert_eq!(seen.by_watcher[&pid], vec![Ok(ExitStatus::Signaled { signal: 15, core_dumped: false })]);
}

fn missing_pid_is_esrch_and_bad_pid_is_einval() {
    let mut lp: Lp<Seen> = Loop::new().unwrap();
    assert_eq!(lp.pid(0x7fff_fff0, |_, _, _| {}, 0).err(), Some(Error::Os(Errno::ESRCH)));
    assert_eq!(lp.pid(0, |_, _, _| {}, 0).err(), Some(Error::Os(Errno::EINVAL)));
    assert_eq!(lp.pid(-5, |_, _, _| {}, 0).err(), Some(Error::Os(Errno::EINVAL)));
    lp.force_sigchld_mode(Errno::ENOSYS);
    assert_eq!(lp.pid(0x7fff_fff0, |_, _, _| {}, 0).err(), Some(Error::Os(Errno::ESRCH)));
    assert_eq!(lp.watcher_count(), 0);
}

fn non_child_exit_delivers_echild() {
    // A grandchild: the shell's background sleep is not our child.
    let (r, w) = sys::pipe().unwrap();
    let child = Spawn::new(c"sh").args(&[c"sh", c"-c", c"sleep 0.3 & echo $!"]).stdout(w.as_raw_fd()).spawn().unwrap();
    drop(w);
    let mut buf = [0u8; 32];
    let mut got = 0;
    while !buf[..got].contains(&b'\n') {
        match sys::read(r.as_raw_fd(), &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EAGAIN) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("{e}"),
        }
    }
    let grandchild: i32 = std::str::from_utf8(&buf[..got]).unwrap().trim().parse().unwrap();
    let mut lp: Lp<Seen> = Loop::new().unwrap();
    lp.child(child, |_, _, _| {}, 0).unwrap();
    lp.pid(grandchild, |_, s, ev| s.by_watcher.entry(ev.pid()).or_default().push(ev.status()), 0).unwrap();
    let mut seen = Seen::default();
    run_until(&mut lp, &mut seen, |s| s.by_watcher.contains_key(&grandchild));
    assert_eq!(seen.by_watcher[&grandchild], vec![Err(Errno::ECHILD)]);
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

fn thousand_children_exiting_at_once_each_delivered_once() {
    raise_fd_limit(4096);
    let mut lp: Lp<Seen> = Loop::new().unwrap();
    // A blocking pipe: every cat waits in read() until the write end closes.
    let (r, w) = std::io::pipe().unwrap();
    let mut pids = BTreeSet::new();
    for _ in 0..1000 {
        let child = Spawn::new(c"cat").stdin(r.as_raw_fd()).spawn().unwrap_or_else(|e| panic!("spawn: {e}"));
        pids.insert(child.pid);
        lp.child(child, |_, s, ev| s.by_watcher.entry(ev.pid()).or_default().push(ev.status()), 0).unwrap();
    }
    drop(r);
    // Every cat sees end of file at once.
    drop(w);
    let mut seen = Seen::default();
    run_until(&mut lp, &mut seen, |s| s.by_watcher.len() == 1000);
    lp.run_once(&mut seen, Some(Duration::from_millis(20))).unwrap();
    assert_eq!(seen.by_watcher.keys().copied().collect::<BTreeSet<_>>(), pids);
    assert!(seen.by_watcher.values().all(|v| v == &[Ok(ExitStatus::Exited(0))]), "exactly once each, exit 0");
    assert!(zombies_of_ours().is_empty(), "zombies left: {:?}", zombies_of_ours());
}

fn pid_watchers_and_any_child_reaping_together() {
    for forced in [false, true] {
        let mut lp: Lp<Seen> = Loop::new().unwrap();
        if forced {
            lp.force_sigchld_mode(Errno::EPERM);
        }
        lp.children(|_, s, pid, st| s.by_reaper.entry(pid).or_default().push(st)).unwrap();
        let mut watched = BTreeSet::new();
        let mut all = BTreeSet::new();
        for i in 0..40 {
            let code = CString::new(format!("exit {}", i % 7)).unwrap();
            let child = Spawn::new(c"sh").args(&[c"sh", c"-c", &code]).spawn().unwrap();
            all.insert(child.pid);
            if i % 2 == 0 {
                watched.insert(child.pid);
                lp.child(child, |_, s, ev| s.by_watcher.entry(ev.pid()).or_default().push(ev.status()), 0).unwrap();
            }
        }
        let mut seen = Seen::default();
        run_until(&mut lp, &mut seen, |s| s.by_reaper.len() == 20 && s.by_watcher.len() == 20);
        lp.run_once(&mut seen, Some(Duration::from_millis(20))).unwrap();
        assert_eq!(seen.by_watcher.keys().copied().collect::<BTreeSet<_>>(), watched, "forced={forced}");
        assert!(
            seen.by_watcher.values().all(|v| v.len() == 1 && v[0].is_ok()),
            "forced={forced}: {:?}",
            seen.by_watcher
        );
        for pid in &all {
            let expected = if watched.contains(pid) { None } else { Some(1) };
            assert_eq!(seen.by_reaper.get(pid).map(Vec::len), expected, "forced={forced}: {pid} by the reaper");
        }
        assert!(zombies_of_ours().is_empty());
    }
}

fn forced_fallback_still_delivers_and_says_why() {
    let mut lp: Lp<Seen> = Loop::new().unwrap();
    assert_eq!(lp.child_mode(), ChildMode::Pidfd);
    lp.force_sigchld_mode(Errno::ENOSYS);
    assert_eq!(lp.child_mode(), ChildMode::Sigchld(Errno::ENOSYS));
    let a = Spawn::new(c"sh").args(&[c"sh", c"-c", c"exit 3"]).spawn().unwrap();
    let b = Spawn::new(c"sh").args(&[c"sh", c"-c", c"kill -9 $$"]).spawn().unwrap();
    let (pa, pb) = (a.pid, b.pid);
    lp.child(a, |_, s, ev| s.by_watcher.entry(ev.pid()).or_default().push(ev.status()), 0).unwrap();
    lp.child(b, |_, s, ev| s.by_watcher.entry(ev.pid()).or_default().push(ev.status()), 0).unwrap();
    let mut seen = Seen::default();
    run_until(&mut lp, &mut seen, |s| s.by_watcher.len() == 2);
    assert_eq!(seen.by_watcher[&pa], vec![Ok(ExitStatus::Exited(3))]);
    assert_eq!(seen.by_watcher[&pb], vec![Ok(ExitStatus::Signaled { signal: 9, core_dumped: false })]);
    assert_eq!(lp.watcher_count(), 0);
}

fn not_reaping_leaves_the_zombie() {
    let mut lp: Lp<Seen> = Loop::new().unwrap();
    let child = Spawn::new(c"sh").args(&[c"sh", c"-c", c"exit 5"]).spawn().unwrap();
    let pid = child.pid;
    lp.pid_with(pid, PidOptions::default().reap(false).data(9), |_, s, ev| {
        assert_eq!(ev.data(), 9);
        s.by_watcher.entry(ev.pid()).or_default().push(ev.status())
    })
    .unwrap();
    drop(child);
    let mut seen = Seen::default();
    run_until(&mut lp, &mut seen, |s| !s.by_watcher.is_empty());
    assert_eq!(zombies_of_ours(), vec![pid]);
    assert_eq!(sys::wait_exit(WaitTarget::Pid(pid), true).unwrap(), Some((pid, ExitStatus::Exited(5))));
}

fn process_directed_signal_reaches_the_loop_with_sender() {
    let mut lp: Lp<(u32, i32)> = Loop::new().unwrap();
    lp.signal(
        sys::SIGUSR2,
        |lp, c, ev| {
            *c = (c.0 + ev.count(), ev.pid());
            lp.stop();
        },
        0,
    )
    .unwrap();
    sys::kill(sys::getpid(), sys::SIGUSR2).unwrap();
    let mut c = (0, 0);
    lp.run(&mut c).unwrap();
    assert_eq!(c, (1, sys::getpid()));
}

/// Runs `argv` with `spawn` and returns its stdout, after reaping it.
fn output_of(spawn: Spawn<'_>) -> String {
    let (r, w) = sys::pipe().unwrap();
    let child = spawn.stdout(w.as_raw_fd()).spawn().unwrap();
    drop(w);
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match sys::read(r.as_raw_fd(), &mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(Errno::EAGAIN) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("{e}"),
        }
    }
    while sys::wait_exit(WaitTarget::Pid(child.pid), true).unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(1));
    }
    String::from_utf8(out).unwrap()
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

fn main() {
    // Before any other thread exists: every later thread inherits this.
    sys::sigprocmask(MaskHow::Block, SigSet::empty().with(sys::SIGCHLD).with(sys::SIGUSR2)).unwrap();
    let tests: &[(&str, fn())] = &[
        ("exit_status_42_is_delivered_once", exit_status_42_is_delivered_once),
        ("death_by_sigterm_is_signaled", death_by_sigterm_is_signaled),
        ("missing_pid_is_esrch_and_bad_pid_is_einval", missing_pid_is_esrch_and_bad_pid_is_einval),
        ("non_child_exit_delivers_echild", non_child_exit_delivers_echild),
        (
            "thousand_children_exiting_at_once_each_delivered_once",
            thousand_children_exiting_at_once_each_delivered_once,
        ),
        ("pid_watchers_and_any_child_reaping_together", pid_watchers_and_any_child_reaping_together),
        ("forced_fallback_still_delivers_and_says_why", forced_fallback_still_delivers_and_says_why),
        ("not_reaping_leaves_the_zombie", not_reaping_leaves_the_zombie),
        ("process_directed_signal_reaches_the_loop_with_sender", process_directed_signal_reaches_the_loop_with_sender),
        ("spawned_child_gets_the_mask_group_and_cwd_asked_for", spawned_child_gets_the_mask_group_and_cwd_asked_for),
        ("spawn_errors_are_named", spawn_errors_are_named),
    ];
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let (mut passed, mut failed) = (0, 0);
    for (name, test) in tests {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        reap_leftovers();
        match std::panic::catch_unwind(test) {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    println!("children: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
