//! The benchmark driver of linux-event (issues 8 and 16): every workload on every
//! implementation in the same run, interleaved, repeated, and one table of
//! medians, min-max and ratios to linux-event, in wall and thread-CPU time.
//!
//! ```text
//! cargo run --release -p linux-event-bench -- [--quick] [--reps N]
//!     [--only chain,timers,wake,signals,children,syscalls,callgrind]
//!     [--impls ours,libev,...] [--cases 10k,10k main,...]
//! ```
//!
//! `--child idle|chain IMPL ...` is how the binary runs itself under strace
//! and callgrind; it is not meant to be typed (`--child signals|children`
//! are there for profiling by hand).

mod chain;
mod children;
mod ffi;
mod files;
mod idle;
mod measure;
mod net;
mod report;
mod signals;
mod timers;
mod tools;
mod virt;
mod wake;
mod workload;

use measure::{cpus, pin, raise_nofile};
use report::Results;
use std::process::ExitCode;
use workload::{Config, Impl};

const USAGE: &str =
    "usage: linux-event-bench [--quick] [--reps N] [--only LIST] [--impls LIST] [--cases LIST] [--no-tools] [--no-pin]
  --quick       fewer repetitions and shorter runs (under a minute)
  --reps N      repetitions of every case (default 9, --quick 3; timers at 1M: 5, --quick 1)
  --only LIST   comma-separated: chain, timers, wake, signals, children, syscalls, callgrind, files, virt, net
  --impls LIST  comma-separated: ours, libev, libevent, mio, raw
  --cases LIST  comma-separated case labels (as printed: n=100, 10k, 10k main, ...); default all
  --no-tools    skip strace and callgrind
  --no-pin      leave every thread where the scheduler puts it (default: pinned)";

/// The stack of the threads that hold loops: linux-event's loop with a
/// million timers is a value of about 70 MB (its tables are inline).
const BIG_STACK: usize = 1 << 30;

struct Args {
    cfg: Config,
    only: Option<Vec<String>>,
    cases: Option<Vec<String>>,
    impls: Vec<Impl>,
    tools: bool,
    pin: bool,
    child: Option<Vec<String>>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        cfg: Config { quick: false, reps: None, cpu_single: -1, cpu_pair: (-1, -1) },
        only: None,
        cases: None,
        impls: Impl::ALL.to_vec(),
        tools: true,
        pin: true,
        child: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => a.cfg.quick = true,
            "--reps" => {
                let n = it.next().and_then(|s| s.parse().ok()).filter(|&n| n > 0);
                a.cfg.reps = Some(n.ok_or("--reps wants a positive number")?);
            }
            "--cases" => {
                a.cases = Some(it.next().ok_or("--cases wants a list")?.split(',').map(String::from).collect())
            }
            "--only" => a.only = Some(it.next().ok_or("--only wants a list")?.split(',').map(String::from).collect()),
            "--impls" => {
                let list = it.next().ok_or("--impls wants a list")?;
                a.impls = list
                    .split(',')
                    .map(|s| Impl::parse(s).ok_or(format!("unknown implementation {s:?}")))
                    .collect::<Result<_, _>>()?;
            }
            "--no-tools" => a.tools = false,
            "--no-pin" => a.pin = false,
            "--child" => {
                a.child = Some(it.by_ref().collect());
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(a)
}

/// `--child idle IMPL PASSES`, `--child chain IMPL N WRITES`,
/// `--child timers IMPL N [callback|main|reused [REPS]]`, `--child signals IMPL N` or
/// `--child children IMPL N ONE`: one run, nothing printed, for strace,
/// callgrind or a profiler.
fn run_child(args: &[String]) -> Result<(), String> {
    let num = |i: usize| -> Result<u64, String> {
        args.get(i).and_then(|s| s.parse().ok()).ok_or_else(|| format!("bad child arguments {args:?}"))
    };
    let imp = args.get(1).and_then(|s| Impl::parse(s)).ok_or_else(|| format!("bad child arguments {args:?}"))?;
    match args.first().map(String::as_str) {
        Some("idle") => idle::run(imp, num(2)? as i64),
        Some("chain") => {
            let pairs = chain::Pairs::new(num(2)? as usize)?;
            let writes = num(3)?;
            let (fired, _) = chain::run_once(imp, &pairs, writes)?;
            if fired == chain::ACTIVE as u64 + writes { Ok(()) } else { Err(format!("{fired} bytes read")) }
        }
        Some("timers") => {
            let n = num(2)? as usize;
            let mode = match args.get(3) {
                Some(m) => timers::Mode::parse(m).ok_or_else(|| format!("bad timer mode {m:?}"))?,
                None => timers::Mode::Callback,
            };
            let reps = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(1u64);
            for rep in 0..reps {
                let plan = std::rc::Rc::new(timers::Plan::new(n, rep + 1));
                let r = timers::run_once(imp, plan, mode, rep + 1 < reps)?;
                if r.fired != n as i64 {
                    return Err(format!("{} of {n} timers fired", r.fired));
                }
            }
            Ok(())
        }
        Some("signals") => {
            let n = num(2)?;
            let (count, _) = signals::run_once(imp, n)?;
            if count == n { Ok(()) } else { Err(format!("{count} of {n} signals")) }
        }
        Some("children") => children::run_checked(imp, num(2)? as usize, num(3)? as usize).map(drop),
        _ => Err(format!("bad child arguments {args:?}")),
    }
}

/// What is running, on one rewritten line of a terminal; nothing in a log.
fn progress(what: &str) {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        eprint!("\r{what:<60}\r");
    }
}

fn wanted(only: &Option<Vec<String>>, id: &str) -> bool {
    only.as_ref().is_none_or(|l| l.iter().any(|x| x == id))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // Hand linux-event the vDSO address libc has, as a program with a libc
    // may. Its own lookup (prctl(PR_GET_AUXV), then /proc/self/auxv) finds
    // the same address normally, but under valgrind 3.19, which does not know
    // PR_GET_AUXV, it gets the host's auxv and calls into an unmapped vDSO.
    // SAFETY: the value is the AT_SYSINFO_EHDR this process was given (0 if none).
    unsafe { linux_event::sys::set_sysinfo_ehdr(libc::getauxval(libc::AT_SYSINFO_EHDR) as usize) };
    // Workload 4 sends SIGUSR1 to the loop's own thread with tgkill, so no
    // other thread could take it; blocked here, before any thread starts,
    // every thread has it blocked anyway (the drivers that catch it with a
    // handler unblock it in their own thread for their run).
    signals::block();
    // Workload 1 at n = 10000 holds 10000 socket fds.
    let nofile = raise_nofile(65_536);
    if let Some(child) = args.child.clone() {
        // Only the timers child needs the big stack. The others stay on the
        // main thread: with a second thread alive, glibc's read and write
        // take their multi-threaded (cancellation) path, about 45 more
        // instructions per call for the C implementations under callgrind.
        let ran = if child.first().is_some_and(|w| w == "timers") {
            let big = std::thread::Builder::new().stack_size(BIG_STACK).spawn(move || run_child(&child));
            big.map_err(|e| e.to_string()).and_then(|h| h.join().unwrap_or_else(|_| Err("panicked".into())))
        } else {
            run_child(&child)
        };
        return match ran {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("child: {e}");
                ExitCode::FAILURE
            }
        };
    }
    // libev.so exports libevent's names too (its compatibility layer); if
    // the dynamic linker found those first, every libevent number would be
    // libev's. build.rs orders the libraries so that it does not.
    // SAFETY: event_get_version returns a static NUL-terminated string.
    let event_version = unsafe { std::ffi::CStr::from_ptr(ffi::event_get_version()) }.to_string_lossy().into_owned();
    if !event_version.starts_with("2.") {
        eprintln!("libevent's symbols resolve to something else (event_get_version = {event_version:?})");
        return ExitCode::FAILURE;
    }
    let mut cfg = args.cfg.clone();
    let cores = cpus();
    let last = *cores.last().unwrap_or(&0);
    if args.pin {
        cfg.cpu_single = last;
        cfg.cpu_pair = (cores[0], if cores.len() > 1 { cores[1] } else { cores[0] });
    }
    let started = std::time::Instant::now();
    let mut results = Results::new(cfg.clone(), args.impls.clone());
    results.header(nofile);

    // The loops live on the stack, and linux-event's with a million timers
    // is a large value: run on a thread with room for it, pinned to one core.
    let (only, cases, impls, worker_cfg) = (args.only.clone(), args.cases.clone(), args.impls.clone(), cfg.clone());
    let worker = std::thread::Builder::new().stack_size(BIG_STACK).spawn(move || {
        pin(worker_cfg.cpu_single);
        let mut res = results;
        for w in workload::all() {
            if !wanted(&only, w.id()) {
                continue;
            }
            let taking: Vec<Impl> = w.impls().iter().copied().filter(|i| impls.contains(i)).collect();
            for case in w.cases(&worker_cfg) {
                if !wanted(&cases, &case.label) {
                    continue;
                }
                for rep in 0..case.reps {
                    let mut order = taking.clone();
                    if rep % 2 == 1 {
                        order.reverse();
                    }
                    for imp in order {
                        progress(&format!("{} {} rep {}/{} {}", w.id(), case.label, rep + 1, case.reps, imp.name()));
                        match w.run(&case, rep, imp, &worker_cfg) {
                            Ok(samples) => res.add(w.as_ref(), &case.label, imp, samples),
                            Err(e) => {
                                eprintln!("{} {} {}: {e}", w.id(), case.label, imp.name());
                                res.fail(w.as_ref(), &case.label, imp);
                            }
                        }
                    }
                }
            }
        }
        progress("");
        res
    });
    let mut results = match worker.map_err(|e| e.to_string()).and_then(|h| h.join().map_err(|_| "panicked".into())) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("benchmark thread: {e}");
            return ExitCode::FAILURE;
        }
    };

    if args.tools {
        let exe = std::env::current_exe().expect("own executable");
        if wanted(&args.only, "syscalls") {
            if tools::available("strace") {
                for &imp in &args.impls {
                    progress(&format!("strace {}", imp.name()));
                    results.syscalls.push((imp, tools::syscalls(&exe, imp)));
                }
            } else {
                results.notes.push("strace not found: workload 6 skipped".into());
            }
        }
        if wanted(&args.only, "callgrind") {
            if tools::available("valgrind") {
                for &imp in &args.impls {
                    progress(&format!("callgrind {}", imp.name()));
                    results.instructions.push((imp, tools::instructions_per_event(&exe, imp)));
                    if imp != Impl::Mio {
                        results.signal_instructions.push((imp, tools::instructions_per_signal(&exe, imp)));
                    }
                    if matches!(imp, Impl::Ours | Impl::Libev | Impl::Libevent) {
                        results.timer_instructions.push((imp, tools::timer_instructions(&exe, imp)));
                    }
                }
            } else {
                results.notes.push("valgrind not found: instruction counts skipped".into());
            }
        }
        progress("");
    }
    results.print(started.elapsed());
    if wanted(&args.only, "files") {
        files::run(args.cfg.quick);
    }
    if wanted(&args.only, "virt") {
        virt::run(&cfg);
    }
    if wanted(&args.only, "net") {
        net::run(&cfg);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Workloads 4 and 5 end to end on every implementation, small. One
    /// test, so that nothing else in this process catches signals or reaps
    /// children meanwhile (libev and libevent reap with waitpid(-1), and
    /// libevent lets one base at a time catch signals).
    #[test]
    fn signals_and_children_on_every_implementation() {
        signals::block();
        for imp in Impl::ALL {
            match signals::run_once(imp, 50) {
                Ok((count, span)) => assert!(count == 50 && span.wall > 0, "{}: {count} signals", imp.name()),
                Err(e) => assert_eq!(imp, Impl::Mio, "{e}"),
            }
            let r = children::run_checked(imp, 3, 1).unwrap_or_else(|e| panic!("{e}"));
            assert!(r.one.wall > 0 && r.rest.wall > 0 && r.good == 3, "{}: {r:?}", imp.name());
        }
    }
}
