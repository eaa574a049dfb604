//! Workload 6 and the instruction counts: the bench binary runs itself in a
//! child process (`--child ...`) under `strace -f -c` and under
//! `valgrind --tool=callgrind`, twice with different amounts of work, and
//! divides the difference by the difference in work. Start-up, set-up and
//! tear-down cancel out. Besides the idle pass and the chain event, the
//! signal of workload 4 is counted the same way (mio has no signals). The
//! two runs of a pair go side by side (the counts do not depend on timing;
//! the wall time of the tools phase halves on two CPUs).

use crate::workload::Impl;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Pass counts of the two idle runs.
pub const IDLE_PASSES: (i64, i64) = (1000, 3000);
/// Pairs, and writes of the two chain runs, for strace and callgrind.
pub const CHAIN_N: usize = 1000;
/// Writes of the two chain runs (events differ by the difference).
pub const CHAIN_WRITES: (u64, u64) = (2000, 6000);
/// Signals of the two runs of workload 4.
pub const SIGNALS: (u64, u64) = (1000, 3000);

/// Whether `tool --version` runs.
pub fn available(tool: &str) -> bool {
    Command::new(tool)
        .arg(if tool == "strace" { "-V" } else { "--version" })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn temp(name: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("linux-event-bench-{}-{n}-{name}", std::process::id()))
}

/// Runs `f` on both argument lists at once, each in a thread of its own.
fn pair<T: Send>(f: impl Fn(&[String]) -> T + Sync, a: &[String], b: &[String]) -> (T, T) {
    std::thread::scope(|s| {
        let first = s.spawn(|| f(a));
        let second = f(b);
        (first.join().expect("tool thread"), second)
    })
}

fn child_args(what: &str, imp: Impl, amounts: &[String]) -> Vec<String> {
    let mut v = vec!["--child".to_string(), what.to_string(), imp.arg().to_string()];
    v.extend(amounts.iter().cloned());
    v
}

fn run_checked(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{:?} failed: {}", cmd, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Syscall counts by name of one child run under `strace -f -c`.
fn strace_counts(exe: &Path, args: &[String]) -> Result<BTreeMap<String, i64>, String> {
    let file = temp("strace");
    let r = run_checked(Command::new("strace").arg("-f").arg("-c").arg("-o").arg(&file).arg(exe).args(args));
    let text = std::fs::read_to_string(&file).map_err(|e| format!("strace output: {e}"));
    let _ = std::fs::remove_file(&file);
    r?;
    Ok(parse_strace(&text?))
}

/// Parses `strace -c`: `% time  seconds  usecs/call  calls  [errors]  syscall`.
pub fn parse_strace(text: &str) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 5 || cols[0].parse::<f64>().is_err() {
            continue;
        }
        let (Ok(calls), Some(name)) = (cols[3].parse::<i64>(), cols.last()) else { continue };
        if *name != "total" {
            counts.insert((*name).to_string(), calls);
        }
    }
    counts
}

/// Syscalls per unit of work, by name: (big - small) / units.
pub type PerUnit = BTreeMap<String, f64>;

fn per_unit(small: &BTreeMap<String, i64>, big: &BTreeMap<String, i64>, units: f64) -> PerUnit {
    let mut out = BTreeMap::new();
    for name in small.keys().chain(big.keys()) {
        let d = big.get(name).copied().unwrap_or(0) - small.get(name).copied().unwrap_or(0);
        if d != 0 {
            out.insert(name.clone(), d as f64 / units);
        }
    }
    out
}

/// What one implementation does in syscalls.
pub struct Syscalls {
    /// Per idle pass (fd ready, one timer an hour away).
    pub idle: PerUnit,
    /// Per event of the chain workload.
    pub chain: PerUnit,
    /// Per signal of workload 4 (`None`: the implementation has no signals).
    pub signal: Option<PerUnit>,
}

/// Counts syscalls per idle pass, per chain event and per signal for `imp`.
pub fn syscalls(exe: &Path, imp: Impl) -> Result<Syscalls, String> {
    let (p1, p2) = IDLE_PASSES;
    let (a, b) = pair(
        |args| strace_counts(exe, args),
        &child_args("idle", imp, &[p1.to_string()]),
        &child_args("idle", imp, &[p2.to_string()]),
    );
    let (a, b) = (a?, b?);
    let idle = per_unit(&a, &b, (p2 - p1) as f64);
    let (w1, w2) = CHAIN_WRITES;
    let n = CHAIN_N.to_string();
    let (a, b) = pair(
        |args| strace_counts(exe, args),
        &child_args("chain", imp, &[n.clone(), w1.to_string()]),
        &child_args("chain", imp, &[n, w2.to_string()]),
    );
    let (a, b) = (a?, b?);
    let chain = per_unit(&a, &b, (w2 - w1) as f64);
    let signal = if imp == Impl::Mio {
        None
    } else {
        let (s1, s2) = SIGNALS;
        let (a, b) = pair(
            |args| strace_counts(exe, args),
            &child_args("signals", imp, &[s1.to_string()]),
            &child_args("signals", imp, &[s2.to_string()]),
        );
        let (a, b) = (a?, b?);
        Some(per_unit(&a, &b, (s2 - s1) as f64))
    };
    Ok(Syscalls { idle, chain, signal })
}

/// Total user-space instructions (`Ir`) of one child run under callgrind.
fn callgrind_ir(exe: &Path, args: &[String]) -> Result<u64, String> {
    let file = temp("callgrind");
    let r = run_checked(
        Command::new("valgrind")
            .arg("--tool=callgrind")
            .arg("-q")
            .arg(format!("--callgrind-out-file={}", file.display()))
            .arg(exe)
            .args(args),
    );
    let text = std::fs::read_to_string(&file).map_err(|e| format!("callgrind output: {e}"));
    let _ = std::fs::remove_file(&file);
    r?;
    let text = text?;
    text.lines()
        .find_map(|l| l.strip_prefix("summary:").or_else(|| l.strip_prefix("totals:")))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| "no summary line in the callgrind output".to_string())
}

/// User-space instructions per chain event for `imp` (n = `CHAIN_N`).
pub fn instructions_per_event(exe: &Path, imp: Impl) -> Result<f64, String> {
    let (w1, w2) = CHAIN_WRITES;
    let n = CHAIN_N.to_string();
    let (a, b) = pair(
        |args| callgrind_ir(exe, args),
        &child_args("chain", imp, &[n.clone(), w1.to_string()]),
        &child_args("chain", imp, &[n, w2.to_string()]),
    );
    let (a, b) = (a?, b?);
    Ok((b as f64 - a as f64) / (w2 - w1) as f64)
}

/// User-space instructions per signal of workload 4 for `imp`.
pub fn instructions_per_signal(exe: &Path, imp: Impl) -> Result<f64, String> {
    let (s1, s2) = SIGNALS;
    let (a, b) = pair(
        |args| callgrind_ir(exe, args),
        &child_args("signals", imp, &[s1.to_string()]),
        &child_args("signals", imp, &[s2.to_string()]),
    );
    let (a, b) = (a?, b?);
    Ok((b as f64 - a as f64) / (s2 - s1) as f64)
}

/// Timers in the callgrind run of workload 2: two repetitions of the
/// `reused` variant (calls from main, one loop).
pub const TIMERS_N: usize = 10_000;

/// User-space instructions per insert, re-arm and cancel of workload 2 for
/// `imp` (not mio or raw): the inclusive cost of each phase function (one
/// per phase in every driver, never inlined) from `callgrind_annotate`,
/// over both repetitions, divided by the operations.
pub fn timer_instructions(exe: &Path, imp: Impl) -> Result<[f64; 3], String> {
    let file = temp("callgrind");
    let args = child_args("timers", imp, &[TIMERS_N.to_string(), "reused".into(), "2".into()]);
    let r = run_checked(
        Command::new("valgrind")
            .arg("--tool=callgrind")
            .arg("-q")
            .arg(format!("--callgrind-out-file={}", file.display()))
            .arg(exe)
            .args(&args),
    );
    let out = r.and_then(|()| {
        let o = Command::new("callgrind_annotate")
            .arg("--inclusive=yes")
            .arg("--threshold=100")
            .arg(&file)
            .output()
            .map_err(|e| format!("callgrind_annotate: {e}"))?;
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    });
    let _ = std::fs::remove_file(&file);
    let out = out?;
    let mut per = [0f64; 3];
    for (i, phase) in ["phase_insert", "phase_rearm", "phase_cancel"].iter().enumerate() {
        // `  1,230,147 (9.77%)  ???:linux_event_bench::timers::phase_insert [...]`,
        // `... bev_phase_insert [...]`: summed over both repetitions.
        let total: u64 = out
            .lines()
            .filter(|l| l.split_whitespace().any(|f| f.ends_with(phase)))
            .filter_map(|l| l.split_whitespace().next()?.replace(',', "").parse::<u64>().ok())
            .sum();
        if total == 0 {
            return Err(format!("no {phase} in the profile"));
        }
        per[i] = total as f64 / (2 * TIMERS_N) as f64;
    }
    Ok(per)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_strace_summary() {
        let text = "\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 60.00    0.000600           0      2000           epoll_pwait
 40.00    0.000400           0      1000        12 read
------ ----------- ----------- --------- --------- ----------------
100.00    0.001000           0      3000        12 total
";
        let c = parse_strace(text);
        assert_eq!(c.get("epoll_pwait"), Some(&2000));
        assert_eq!(c.get("read"), Some(&1000));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn per_unit_is_the_difference() {
        let a: BTreeMap<_, _> = [("read".to_string(), 10), ("close".to_string(), 3)].into();
        let b: BTreeMap<_, _> = [("read".to_string(), 30), ("close".to_string(), 3)].into();
        let p = per_unit(&a, &b, 10.0);
        assert_eq!(p.get("read"), Some(&2.0));
        assert!(!p.contains_key("close"));
    }
}
