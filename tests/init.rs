//! The init example as users run it: the built binary as a subprocess.
//!
//! `cargo test` builds the examples before the tests, so the binary is at
//! `target/<triple>/<profile>/examples/init`. Where this test runs under
//! qemu-user and the kernel cannot exec the foreign binary itself (no
//! binfmt_misc), the init is started through `qemu-<arch>-static`.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn init_path() -> PathBuf {
    // target/<...>/deps/init-<hash> -> target/<...>/examples/init
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("examples").join("init");
    assert!(path.exists(), "{} missing: cargo test builds examples first", path.display());
    path
}

/// The command prefix that runs the init: itself, or qemu-user when the
/// kernel cannot exec it directly.
fn launcher() -> &'static [String] {
    static L: OnceLock<Vec<String>> = OnceLock::new();
    L.get_or_init(|| {
        let path = init_path().to_string_lossy().into_owned();
        match Command::new(&path).arg("--version").output() {
            Ok(_) => vec![path],
            Err(e) if e.raw_os_error() == Some(8) => {
                let qemu = format!("qemu-{}-static", std::env::consts::ARCH);
                eprintln!("the kernel cannot exec {path} (ENOEXEC): running it with {qemu}");
                vec![qemu, path]
            }
            Err(e) => panic!("cannot run {path}: {e}"),
        }
    })
}

/// Whether the init can register as a child subreaper here. qemu-user 7.2
/// refuses PR_SET_CHILD_SUBREAPER (EINVAL): there the tests that need a
/// subreaper check the init's refusal instead, and say so.
fn subreaper() -> bool {
    static S: OnceLock<bool> = OnceLock::new();
    *S.get_or_init(|| {
        let (code, _, err) = run_raw(&["-s", "--", "true"]);
        if code == 0 {
            return true;
        }
        assert!(err.contains("PR_SET_CHILD_SUBREAPER is unavailable on this platform."), "{code}: {err}");
        eprintln!("PR_SET_CHILD_SUBREAPER is refused here (EINVAL, qemu-user): checking that refusal instead");
        false
    })
}

/// `-s` where it works (it also silences the not-PID-1 warning).
fn s() -> &'static [&'static str] {
    if subreaper() { &["-s"] } else { &[] }
}

fn with_s<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    s().iter().copied().chain(rest.iter().copied()).collect()
}

fn init(args: &[&str]) -> Command {
    let l = launcher();
    let mut cmd = Command::new(&l[0]);
    cmd.args(&l[1..]).args(args).env_remove("TINI_SUBREAPER").env_remove("TINI_VERBOSITY");
    cmd.env_remove("TINI_KILL_PROCESS_GROUP").env_remove("POSIXLY_CORRECT");
    cmd
}

/// Waits for `child` at most 60 s (then kills it and fails): tests never hang.
fn finish(mut child: Child) -> (i32, String, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("init did not exit within 60 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let code = status.code().unwrap_or_else(|| 1000 + status.signal().unwrap_or(0));
    (code, out, err)
}

fn run_raw(args: &[&str]) -> (i32, String, String) {
    finish(init(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
}

/// Runs the init; a leading "-s" is dropped where subreapers are refused.
fn run(args: &[&str]) -> (i32, String, String) {
    match args.split_first() {
        Some((&"-s", rest)) => run_raw(&with_s(rest)),
        _ => run_raw(args),
    }
}

/// Starts the init with a child that prints one line once it runs (so the
/// init has set up its signal handling), and returns after that line.
fn start_ready(args: &[&str]) -> (Child, String) {
    let args = match args.split_first() {
        Some((&"-s", rest)) => with_s(rest),
        _ => args.to_vec(),
    };
    let mut child = init(&args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    (child, line)
}

fn kill(pid: i32, sig: i32) {
    linux_event::sys::kill(pid, sig).unwrap();
}

#[test]
fn every_exit_code_passes_through() {
    for code in 0..=255 {
        let script = format!("exit {code}");
        let (got, _, _) = run(&["-s", "--", "sh", "-c", &script]);
        assert_eq!(got, code);
    }
}

#[test]
fn remapped_exit_codes_become_zero() {
    for (code, want) in [(3, 0), (4, 0), (5, 5), (0, 0)] {
        let script = format!("exit {code}");
        let (got, _, _) = run(&["-s", "-e", "3", "-e4", "--", "sh", "-c", &script]);
        assert_eq!(got, want, "exit {code}");
    }
    let (got, _, err) = run(&["-e", "256", "--", "true"]);
    assert_eq!(got, 1);
    assert!(err.contains("Not a valid option for -e: 256"), "{err}");
}

#[test]
fn term_usr1_usr2_to_the_init_end_the_child_with_128_plus_n() {
    for sig in [libc::SIGTERM, libc::SIGUSR1, libc::SIGUSR2] {
        let (child, line) = start_ready(&["-s", "--", "sh", "-c", "echo ready; exec sleep 30"]);
        assert_eq!(line.trim(), "ready");
        kill(child.id() as i32, sig);
        let (code, _, _) = finish(child);
        assert_eq!(code, 128 + sig, "signal {sig}");
    }
}

#[test]
fn hundred_orphaned_grandchildren_leave_no_zombie_and_each_is_warned_about() {
    if !subreaper() {
        return; // the refusal was checked by subreaper()
    }
    let script = "i=0; while [ $i -lt 100 ]; do (sleep 0.05 &); i=$((i+1)); done; echo ready; sleep 1";
    let (child, _) = start_ready(&["-s", "-w", "--", "sh", "-c", script]);
    let init_pid = child.id() as i32;
    // The orphans exit after 50 ms and are re-parented to the init (a
    // subreaper): none may stay a zombie while the main child still runs.
    std::thread::sleep(Duration::from_millis(600));
    let zombies = zombie_children_of(init_pid);
    let (code, _, err) = finish(child);
    assert_eq!(code, 0);
    assert!(zombies.is_empty(), "zombies of the init: {zombies:?}");
    let warned = err.matches("Reaped zombie process with pid=").count();
    assert_eq!(warned, 100, "{err}");
}

fn zombie_children_of(parent: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some(i) = stat.rfind(')') else { continue };
        let f: Vec<&str> = stat[i + 2..].split(' ').collect();
        if f[0] == "Z" && f[1].parse() == Ok(parent) {
            out.push(pid);
        }
    }
    out
}

fn state_of(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

#[test]
fn group_flag_delivers_to_a_grandchild_in_the_group() {
    // The shell traps TERM (a handler: its children get the default back at
    // exec), so only the group-wide delivery reaches the background sleep.
    // The pid is printed once the background job runs `sleep` itself: a TERM
    // that arrived while it was still a forked shell could meet the shell's
    // trap instead of sleep's default action.
    let script = "trap 'echo trapped' TERM; sleep 30 & p=$!; \
                  until [ \"$(cat /proc/$p/comm 2>/dev/null)\" = sleep ]; do :; done; \
                  echo $p; wait $p; wait $p; exit 9";
    for group in [true, false] {
        let args: Vec<&str> =
            if group { vec!["-s", "-g", "--", "sh", "-c", script] } else { vec!["-s", "--", "sh", "-c", script] };
        let (child, line) = start_ready(&args);
        let sleeper: i32 = line.trim().parse().unwrap();
        kill(child.id() as i32, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(if group { 30 } else { 1 });
        let mut dead = false;
        while Instant::now() < deadline {
            if matches!(state_of(sleeper), None | Some('Z')) {
                dead = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(dead, group, "group={group}: the grandchild got TERM only with -g");
        if !group {
            kill(sleeper, libc::SIGKILL);
        }
        let (code, _, _) = finish(child);
        assert_eq!(code, 9);
    }
}

#[test]
fn missing_program_is_127_and_non_executable_is_126() {
    let (code, _, err) = run(&["-s", "--", "/definitely/not/here"]);
    assert_eq!(code, 127);
    assert!(err.contains("exec /definitely/not/here failed: No such file or directory"), "{err}");
    let (code, _, _) = run(&["-s", "--", "no-such-program-in-path-xyz"]);
    assert_eq!(code, 127);
    let file = std::env::temp_dir().join(format!("le-init-noexec-{}", std::process::id()));
    std::fs::write(&file, "#!/bin/sh\nexit 0\n").unwrap();
    let (code, _, err) = run(&["-s", "--", file.to_str().unwrap()]);
    assert_eq!(code, 126, "{err}");
    let _ = std::fs::remove_file(&file);
    let (code, _, _) = run(&["-s", "--", "/tmp"]);
    assert_eq!(code, 126);
}

#[test]
fn child_gets_the_mask_and_ignored_signals_the_init_inherited() {
    use linux_event::process::{SignalState, Spawn};
    use linux_event::sys::{self, SigSet};
    let l = launcher();
    let owned: Vec<std::ffi::CString> = l
        .iter()
        .map(|s| std::ffi::CString::new(s.as_str()).unwrap())
        .chain(with_s(&["--", "cat", "/proc/self/status"]).iter().map(|s| std::ffi::CString::new(*s).unwrap()))
        .collect();
    let argv: Vec<&std::ffi::CStr> = owned.iter().map(|c| c.as_c_str()).collect();
    let path = std::ffi::CString::new("PATH=/usr/local/bin:/usr/bin:/bin").unwrap();
    let envp = [path.as_c_str()];
    let state = SignalState {
        mask: SigSet::empty().with(sys::SIGUSR1).with(sys::SIGWINCH),
        ignored: SigSet::empty().with(sys::SIGHUP).with(sys::SIGUSR2),
    };
    let (r, w) = std::io::pipe().unwrap();
    use std::os::fd::AsRawFd;
    let child = Spawn::new(argv[0]).args(&*argv).env(&envp).signal_state(state).stdout(w.as_raw_fd()).spawn().unwrap();
    drop(w);
    let mut status = String::new();
    BufReader::new(r).read_to_string(&mut status).unwrap();
    while sys::wait_exit(sys::WaitTarget::Pid(child.pid), true).unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let field = |name: &str| {
        let v = status.lines().find_map(|l| l.strip_prefix(name)).unwrap_or_else(|| panic!("{name} in {status}"));
        u64::from_str_radix(v.trim(), 16).unwrap()
    };
    let standard = (1u64 << 31) - 1;
    assert_eq!(field("SigBlk:"), state.mask.bits(), "{status}");
    assert_eq!(field("SigIgn:") & standard, state.ignored.bits(), "{status}");
}

#[test]
fn grace_terminates_leftovers_then_kills_what_ignores_term() {
    if !subreaper() {
        return; // leftovers are re-parented to the init only as a subreaper
    }
    // A leftover that dies of SIGTERM.
    let (code, _, _) = run(&["-s", "--grace", "20", "--", "sh", "-c", "sleep 30 & exit 3"]);
    assert_eq!(code, 3);
    // One that ignores SIGTERM: killed when the grace period ends.
    let (code, _, _) = run(&["-s", "--grace=0.3", "--", "sh", "-c", "(trap '' TERM; exec sleep 30) & exit 4"]);
    assert_eq!(code, 4);
}

#[test]
fn warns_when_it_cannot_reap_and_not_as_subreaper() {
    let (code, _, err) = run(&["--", "true"]);
    assert_eq!(code, 0);
    assert!(
        err.contains("Tini is not running as PID 1 and isn't registered as a child subreaper.\nZombie processes will not be re-parented to Tini, so zombie reaping won't work."),
        "{err}"
    );
    if subreaper() {
        let (_, _, err) = run(&["-s", "--", "true"]);
        assert!(!err.contains("not running as PID 1"), "{err}");
        let cmd = init(&["--", "true"]).env("TINI_SUBREAPER", "1").stderr(Stdio::piped()).spawn().unwrap();
        let (_, _, err) = finish(cmd);
        assert!(!err.contains("not running as PID 1"), "{err}");
    }
}

#[test]
fn usage_version_help_and_license() {
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("linux-event init version "), "{out}");
    assert_eq!(run(&["-h"]).0, 0);
    assert_eq!(run(&["-l"]).0, 0);
    let (code, _, err) = run(&[]);
    assert_eq!(code, 1);
    assert!(err.contains("Usage:"), "{err}");
    let (code, _, err) = run(&["-x", "--", "true"]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid option -- 'x'"), "{err}");
    assert_eq!(run(&["-p", "SIGNOPE", "--", "true"]).0, 1);
    assert_eq!(run(&["-s", "-p", "SIGKILL", "--", "true"]).0, 0);
    assert_eq!(run(&["-s", "-vvv", "--", "true"]).0, 0);
}

#[test]
fn options_after_the_program_are_the_inits_unless_posixly_correct() {
    // GNU permutation: -e 5 after the program still belongs to the init.
    let (code, _, _) = run(&["-s", "sh", "-e", "5", "-c", "exit 5"]);
    assert_eq!(code, 1, "-c is no init option: usage error");
    let (code, _, _) = finish(
        init(&with_s(&["sh", "-c", "exit 5"])).env("POSIXLY_CORRECT", "1").stderr(Stdio::piped()).spawn().unwrap(),
    );
    assert_eq!(code, 5, "with POSIXLY_CORRECT the program's options are its own");
}

#[test]
fn rewritten_and_dropped_signals() {
    // USR1 arrives as TERM: the child dies with 128 + 15.
    let (child, _) = start_ready(&["-s", "-r", "USR1:TERM", "--", "sh", "-c", "echo ready; exec sleep 30"]);
    kill(child.id() as i32, libc::SIGUSR1);
    assert_eq!(finish(child).0, 128 + libc::SIGTERM);
    // A dropped USR2 does nothing; the following TERM ends it.
    let (child, _) = start_ready(&["-s", "-r", "12:0", "--", "sh", "-c", "echo ready; exec sleep 30"]);
    kill(child.id() as i32, libc::SIGUSR2);
    std::thread::sleep(Duration::from_millis(100));
    kill(child.id() as i32, libc::SIGTERM);
    assert_eq!(finish(child).0, 128 + libc::SIGTERM);
}
