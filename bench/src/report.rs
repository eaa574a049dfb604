//! Collects the samples and prints the tables (Markdown, so they paste into
//! BENCHMARKS.md as they are), then the targets of issues 8 and 16 and where the
//! run stands against them. The numbers are printed, not judged: nothing
//! here fails a run.

use crate::measure::Stats;
use crate::tools::{self, Syscalls};
use crate::workload::{self, Config, Impl, Sample, Value, Workload};
use std::fmt::Write as _;
use std::time::Duration;

/// A workload as the tables print it: number, id, description, and the
/// implementations that cannot take part (and why).
type Described = (u32, &'static str, &'static str, &'static [(Impl, &'static str)]);

struct Row {
    id: &'static str,
    case: String,
    metric: &'static str,
    imp: Impl,
    values: Vec<Value>,
    failures: usize,
}

/// Everything one run measured.
pub struct Results {
    cfg: Config,
    impls: Vec<Impl>,
    rows: Vec<Row>,
    describe: Vec<Described>,
    machine: Vec<String>,
    /// Workload 6, per implementation.
    pub syscalls: Vec<(Impl, Result<Syscalls, String>)>,
    /// User-space instructions per chain event, per implementation.
    pub instructions: Vec<(Impl, Result<f64, String>)>,
    /// User-space instructions per signal (workload 4), per implementation.
    pub signal_instructions: Vec<(Impl, Result<f64, String>)>,
    /// User-space instructions per insert, re-arm and cancel (workload 2).
    pub timer_instructions: Vec<(Impl, Result<[f64; 3], String>)>,
    /// Things skipped, and why.
    pub notes: Vec<String>,
}

fn first_line(path: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find(|l| l.starts_with(key)).and_then(|l| l.split(':').nth(1)).map(|s| s.trim().to_string())
}

fn uname() -> String {
    // SAFETY: a zeroed utsname is valid for uname to fill.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is writable; the fields are NUL-terminated after the call.
    if unsafe { libc::uname(&mut u) } != 0 {
        return "unknown".into();
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    format!("{} {} {}", field(&u.sysname), field(&u.release), field(&u.machine))
}

/// `1234.5` -> `"1235"`, `12.34` -> `"12.3"`, `1.234` -> `"1.23"`.
fn ns(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn rate(ns_per_op: f64) -> String {
    let r = 1e9 / ns_per_op;
    if r >= 1e6 {
        format!("{:.2} M/s", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1} k/s", r / 1e3)
    } else {
        format!("{r:.0} /s")
    }
}

fn ratio(peer: f64, ours: f64) -> String {
    format!("{:.2}", peer / ours)
}

impl Results {
    /// An empty result set for a run with `cfg` over `impls`.
    pub fn new(cfg: Config, impls: Vec<Impl>) -> Results {
        Results {
            cfg,
            impls,
            rows: Vec::new(),
            describe: Vec::new(),
            machine: Vec::new(),
            syscalls: Vec::new(),
            instructions: Vec::new(),
            signal_instructions: Vec::new(),
            timer_instructions: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Records the machine, kernel and library versions.
    pub fn header(&mut self, nofile: u64) {
        let model = first_line("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown CPU".into());
        let cores = crate::measure::cpus();
        let mem = first_line("/proc/meminfo", "MemTotal").unwrap_or_default();
        self.machine.push(format!("machine: {model}, {} CPUs usable, memory {mem}", cores.len()));
        self.machine.push(format!("kernel: {}", uname()));
        // SAFETY: these return static version data of the linked libraries.
        let (ev_major, ev_minor, event) = unsafe {
            let v = std::ffi::CStr::from_ptr(crate::ffi::event_get_version());
            (crate::ffi::ev_version_major(), crate::ffi::ev_version_minor(), v.to_string_lossy().into_owned())
        };
        self.machine.push(format!(
            "libraries: linux-event {}, libev {ev_major}.{ev_minor}, libevent {event}, mio {}",
            env!("CARGO_PKG_VERSION_LINUX_EVENT"),
            env!("MIO_VERSION")
        ));
        let args: Vec<String> = std::env::args().skip(1).collect();
        let tail = if args.is_empty() { String::new() } else { format!(" -- {}", args.join(" ")) };
        self.machine.push(format!("command: cargo run --release -p linux-event-bench{tail}"));
        if self.cfg.cpu_single < 0 {
            self.machine.push(format!("pinning: none (--no-pin); open-file limit {nofile}"));
        } else {
            self.machine.push(format!(
                "pinning: single-threaded workloads on CPU {}; the two threads of workload 3 on CPUs {} and {}; \
                 open-file limit {nofile}",
                self.cfg.cpu_single, self.cfg.cpu_pair.0, self.cfg.cpu_pair.1
            ));
        }
    }

    fn row(&mut self, w: &dyn Workload, case: &str, metric: &'static str, imp: Impl) -> &mut Row {
        if !self.describe.iter().any(|d| d.0 == w.number()) {
            self.describe.push((w.number(), w.id(), w.describe(), w.not_applicable()));
        }
        let at = self.rows.iter().position(|r| r.id == w.id() && r.case == case && r.metric == metric && r.imp == imp);
        let at = at.unwrap_or_else(|| {
            self.rows.push(Row { id: w.id(), case: case.to_string(), metric, imp, values: Vec::new(), failures: 0 });
            self.rows.len() - 1
        });
        &mut self.rows[at]
    }

    /// Adds the samples of one run.
    pub fn add(&mut self, w: &dyn Workload, case: &str, imp: Impl, samples: Vec<Sample>) {
        for s in samples {
            self.row(w, case, s.metric, imp).values.push(s.value);
        }
    }

    /// Records a failed run (its rows say so).
    pub fn fail(&mut self, w: &dyn Workload, case: &str, imp: Impl) {
        self.row(w, case, "(failed)", imp).failures += 1;
    }

    fn find(&self, id: &str, case: &str, metric: &str, imp: Impl) -> Option<&Row> {
        self.rows.iter().find(|r| r.id == id && r.case == case && r.metric == metric && r.imp == imp)
    }

    /// (CPU, wall) statistics of a per-operation row, in ns per operation.
    fn per_op(&self, id: &str, case: &str, metric: &str, imp: Impl) -> Option<(Stats, Stats)> {
        let r = self.find(id, case, metric, imp)?;
        let (mut cpu, mut wall) = (Vec::new(), Vec::new());
        for v in &r.values {
            if let Value::PerOp { ops, span } = v {
                cpu.push(span.cpu as f64 / ops);
                wall.push(span.wall as f64 / ops);
            }
        }
        Some((Stats::of(&cpu)?, Stats::of(&wall)?))
    }

    fn number(&self, id: &str, case: &str, metric: &str, imp: Impl) -> Option<Stats> {
        let r = self.find(id, case, metric, imp)?;
        let v: Vec<f64> =
            r.values.iter().filter_map(|v| if let Value::Number(x) = v { Some(*x) } else { None }).collect();
        Stats::of(&v)
    }

    /// The keys (case, metric) of one workload in first-seen order.
    fn keys(&self, id: &str) -> Vec<(String, &'static str)> {
        let mut keys: Vec<(String, &'static str)> = Vec::new();
        for r in self.rows.iter().filter(|r| r.id == id) {
            if !keys.iter().any(|k| k.0 == r.case && k.1 == r.metric) {
                keys.push((r.case.clone(), r.metric));
            }
        }
        keys
    }

    fn workload_table(&self, out: &mut String, (number, id, describe, na): Described) {
        let _ = writeln!(out, "\n### Workload {number}: {id}\n\n{describe}\n");
        let _ = writeln!(
            out,
            "| case | op | implementation | CPU ns/op | CPU min-max | wall ns/op | wall min-max | rate (wall) | CPU vs ours | wall vs ours |"
        );
        let _ = writeln!(out, "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        let mut numbers = String::new();
        let keys = self.keys(id);
        for (k, (case, metric)) in keys.iter().enumerate() {
            let (case, metric) = (case.clone(), *metric);
            let ours = self.per_op(id, &case, metric, Impl::Ours);
            for &imp in &self.impls {
                let Some(row) = self.find(id, &case, metric, imp) else { continue };
                if metric == "(failed)" {
                    let _ =
                        writeln!(out, "| {case} | - | {} | failed {} time(s) | | | | | | |", imp.name(), row.failures);
                    continue;
                }
                if let Some(s) = self.number(id, &case, metric, imp) {
                    let vs =
                        self.number(id, &case, metric, Impl::Ours).map_or("-".into(), |o| ratio(s.median, o.median));
                    let _ = writeln!(
                        numbers,
                        "| {case} | {metric} | {} | {:.2} | {:.2}-{:.2} | {vs} |",
                        imp.name(),
                        s.median,
                        s.min,
                        s.max
                    );
                    continue;
                }
                let Some((cpu, wall)) = self.per_op(id, &case, metric, imp) else { continue };
                let (vs_cpu, vs_wall) = match ours {
                    Some((oc, ow)) => (ratio(cpu.median, oc.median), ratio(wall.median, ow.median)),
                    None => ("-".into(), "-".into()),
                };
                let _ = writeln!(
                    out,
                    "| {case} | {metric} | {} | {} | {}-{} | {} | {}-{} | {} | {vs_cpu} | {vs_wall} |",
                    imp.name(),
                    ns(cpu.median),
                    ns(cpu.min),
                    ns(cpu.max),
                    ns(wall.median),
                    ns(wall.min),
                    ns(wall.max),
                    rate(wall.median),
                );
            }
            // After a case's last row: the implementations that cannot run it.
            if keys.get(k + 1).is_none_or(|next| next.0 != case) {
                for (imp, why) in na.iter().filter(|(imp, _)| self.impls.contains(imp)) {
                    let _ = writeln!(out, "| {case} | - | {} | n/a: {why} | | | | | | |", imp.name());
                }
            }
        }
        if !numbers.is_empty() {
            let _ = writeln!(out, "\n| case | measure | implementation | median | min-max | vs ours |");
            let _ = writeln!(out, "| --- | --- | --- | ---: | ---: | ---: |");
            out.push_str(&numbers);
        }
    }

    fn tools_tables(&self, out: &mut String) {
        if !self.syscalls.is_empty() {
            let (w1, w2) = tools::CHAIN_WRITES;
            let (p1, p2) = tools::IDLE_PASSES;
            let (s1, s2) = tools::SIGNALS;
            let _ = writeln!(
                out,
                "\n### Workload 6: syscalls\n\n`strace -f -c`, difference of two runs: idle loop (one readable fd, one \
                 timer an hour away) with {p1} and {p2} passes; chain with n={}, w={w1} and w={w2}; workload 4 with \
                 {s1} and {s2} signals (the send included).\n",
                tools::CHAIN_N
            );
            let _ = writeln!(
                out,
                "| implementation | per idle pass | which | per chain event | which | per signal | which |"
            );
            let _ = writeln!(out, "| --- | ---: | --- | ---: | --- | ---: | --- |");
            for (imp, r) in &self.syscalls {
                match r {
                    Ok(s) => {
                        let (sig_total, sig_which) = match &s.signal {
                            Some(m) => (format!("{:.3}", total(m)), which(m)),
                            None => ("n/a".to_string(), "no signal API".to_string()),
                        };
                        let _ = writeln!(
                            out,
                            "| {} | {:.3} | {} | {:.3} | {} | {sig_total} | {sig_which} |",
                            imp.name(),
                            total(&s.idle),
                            which(&s.idle),
                            total(&s.chain),
                            which(&s.chain)
                        );
                    }
                    Err(e) => {
                        let _ = writeln!(out, "| {} | failed: {e} | | | | | |", imp.name());
                    }
                }
            }
        }
        if !self.instructions.is_empty() {
            let (w1, w2) = tools::CHAIN_WRITES;
            let _ = writeln!(
                out,
                "\n### User-space instructions per chain event (callgrind)\n\n`valgrind --tool=callgrind`, whole \
                 process, difference of two runs (n={}, w={w1} and w={w2}) divided by {} events. Includes the \
                 callback's own read and write wrappers.\n",
                tools::CHAIN_N,
                w2 - w1
            );
            let _ = writeln!(out, "| implementation | instructions per event | vs ours |");
            let _ = writeln!(out, "| --- | ---: | ---: |");
            let ours = self.instructions.iter().find(|(i, _)| *i == Impl::Ours).and_then(|(_, r)| r.as_ref().ok());
            for (imp, r) in &self.instructions {
                match r {
                    Ok(x) => {
                        let vs = ours.map_or("-".into(), |o| ratio(*x, *o));
                        let _ = writeln!(out, "| {} | {x:.0} | {vs} |", imp.name());
                    }
                    Err(e) => {
                        let _ = writeln!(out, "| {} | failed: {e} | |", imp.name());
                    }
                }
            }
        }
        if !self.signal_instructions.is_empty() {
            let (s1, s2) = tools::SIGNALS;
            let _ = writeln!(
                out,
                "\n### User-space instructions per signal (callgrind)\n\nWorkload 4 under `valgrind --tool=callgrind`, \
                 whole process, difference of two runs ({s1} and {s2} signals) divided by {}. Includes the callback \
                 and its `tgkill`.\n",
                s2 - s1
            );
            let _ = writeln!(out, "| implementation | instructions per signal | vs ours |");
            let _ = writeln!(out, "| --- | ---: | ---: |");
            let ours =
                self.signal_instructions.iter().find(|(i, _)| *i == Impl::Ours).and_then(|(_, r)| r.as_ref().ok());
            for (imp, r) in &self.signal_instructions {
                match r {
                    Ok(x) => {
                        let vs = ours.map_or("-".into(), |o| ratio(*x, *o));
                        let _ = writeln!(out, "| {} | {x:.0} | {vs} |", imp.name());
                    }
                    Err(e) => {
                        let _ = writeln!(out, "| {} | failed: {e} | |", imp.name());
                    }
                }
            }
            if self.impls.contains(&Impl::Mio) {
                let _ = writeln!(out, "| mio | n/a: no signal API | |");
            }
        }
        if !self.timer_instructions.is_empty() {
            let _ = writeln!(
                out,
                "\n### User-space instructions per timer operation (callgrind)\n\nWorkload 2, {}k timers, the `reused` \
                 variant, two repetitions on one loop, under `valgrind --tool=callgrind`: the inclusive cost of each \
                 phase function divided by its operations (the driver's own loop included).\n",
                tools::TIMERS_N / 1000
            );
            let _ = writeln!(out, "| implementation | insert | re-arm | cancel | vs ours (insert / re-arm / cancel) |");
            let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: |");
            let ours =
                self.timer_instructions.iter().find(|(i, _)| *i == Impl::Ours).and_then(|(_, r)| r.as_ref().ok());
            for (imp, r) in &self.timer_instructions {
                match r {
                    Ok(x) => {
                        let vs = ours.map_or("-".into(), |o| {
                            format!("{} / {} / {}", ratio(x[0], o[0]), ratio(x[1], o[1]), ratio(x[2], o[2]))
                        });
                        let _ = writeln!(out, "| {} | {:.0} | {:.0} | {:.0} | {vs} |", imp.name(), x[0], x[1], x[2]);
                    }
                    Err(e) => {
                        let _ = writeln!(out, "| {} | failed: {e} | | | |", imp.name());
                    }
                }
            }
        }
    }

    fn syscalls_of(&self, imp: Impl) -> Option<&Syscalls> {
        self.syscalls.iter().find(|(i, _)| *i == imp).and_then(|(_, r)| r.as_ref().ok())
    }

    fn instructions_of(&self, imp: Impl) -> Option<f64> {
        self.instructions.iter().find(|(i, _)| *i == imp).and_then(|(_, r)| r.as_ref().ok().copied())
    }

    fn targets(&self, out: &mut String) {
        let _ = writeln!(out, "\n### Targets of issue 16 (same-run medians)\n");
        // Collected, then printed in workload order (4 and 5 come last here).
        let mut lines: Vec<(String, &'static str)> = Vec::new();
        let mut line = |text: String, met: Option<bool>| {
            let mark = match met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "not measured",
            };
            lines.push((text, mark));
        };
        // Workload 1: CPU no worse than the raw loop at every n (issue 16;
        // issue 8 also asked for libev's, printed alongside).
        for (case, _) in self.keys("chain").into_iter().filter(|k| k.1 == "event") {
            let cpu = |imp| self.per_op("chain", &case, "event", imp).map(|(c, _)| c.median);
            match (cpu(Impl::Ours), cpu(Impl::Libev), cpu(Impl::Raw)) {
                (Some(o), ev, Some(raw)) => line(
                    format!(
                        "1 chain {case}: CPU per event {} ns, raw epoll {} ({}x ours){}; target: no slower than the raw \
                         loop",
                        ns(o),
                        ns(raw),
                        ratio(raw, o),
                        ev.map(|ev| format!(", libev {} ({}x ours)", ns(ev), ratio(ev, o))).unwrap_or_default()
                    ),
                    Some(o <= raw),
                ),
                _ => line(format!("1 chain {case}: CPU no slower than the raw epoll loop"), None),
            }
        }
        match (self.instructions_of(Impl::Ours), self.instructions_of(Impl::Libev)) {
            (Some(o), Some(ev)) => line(
                format!(
                    "1 chain: {o:.0} user-space instructions per event, libev {ev:.0} ({:.2}x); target: at most 0.6x \
                     libev's (aim 0.5x)",
                    o / ev
                ),
                Some(o <= 0.6 * ev),
            ),
            _ => line("1 chain: at most 0.6x libev's instructions per event".into(), None),
        }
        // Workload 2: at most 0.7x libev per operation, every size.
        for (case, metric) in self.keys("timers") {
            let cpu = |imp| self.per_op("timers", &case, metric, imp).map(|(c, _)| c.median);
            match (cpu(Impl::Ours), cpu(Impl::Libev)) {
                (Some(o), Some(ev)) => line(
                    format!(
                        "2 timers {case} {metric}: {} ns, libev {} ns, ours/libev {:.2}; target: at most 0.70",
                        ns(o),
                        ns(ev),
                        o / ev
                    ),
                    Some(o <= 0.7 * ev),
                ),
                _ => line(format!("2 timers {case} {metric}: at most 0.7x libev"), None),
            }
        }
        // Workload 3: wake-up callbacks at least libev's rate (issue 16);
        // sends and ping-pong at least libev's (issue 8).
        for (case, metric) in self.keys("wake") {
            let wall = |imp| self.per_op("wake", &case, metric, imp).map(|(_, w)| w.median);
            match (wall(Impl::Ours), wall(Impl::Libev)) {
                (Some(o), Some(ev)) => line(
                    format!("3 {case} {metric}s per second: {}, libev {}; target: at least libev's", rate(o), rate(ev)),
                    Some(o <= ev),
                ),
                _ if metric.contains(" per ") => {}
                _ => line(format!("3 {case} {metric}: at least libev's rate"), None),
            }
        }
        // Workload 6.
        match self.syscalls_of(Impl::Ours) {
            Some(s) => {
                let idle = total(&s.idle);
                line(
                    format!("6 idle pass: {idle:.3} syscalls ({}); target: exactly 1", which(&s.idle)),
                    Some((idle - 1.0).abs() < 0.005),
                );
                let extra: f64 = s.chain.iter().filter(|(k, _)| !is_wait_or_io(k)).map(|(_, v)| v).sum();
                line(
                    format!(
                        "6 chain: {:.3} syscalls per event ({}), {extra:.3} beyond the wait and the callback's read and \
                         write; target: none beyond",
                        total(&s.chain),
                        which(&s.chain)
                    ),
                    Some(extra.abs() < 0.005),
                );
            }
            None => line("6 syscalls: one per idle pass, none per event beyond the wait".into(), None),
        }
        // Workloads 4 and 5: issue 8 sets no number; the standing, for reference.
        for (number, id) in [(4, "signals"), (5, "children")] {
            for (case, metric) in self.keys(id) {
                let Some((oc, ow)) = self.per_op(id, &case, metric, Impl::Ours) else { continue };
                let peers: Vec<String> = [Impl::Libev, Impl::Libevent, Impl::Mio, Impl::Raw]
                    .into_iter()
                    .filter_map(|imp| {
                        let (c, _) = self.per_op(id, &case, metric, imp)?;
                        Some(format!("{} {} ({}x ours)", imp.name(), ns(c.median), ratio(c.median, oc.median)))
                    })
                    .collect();
                lines.push((
                    format!(
                        "{number} {id} {case}, {metric}: CPU {} ns ({}); wall {} ns",
                        ns(oc.median),
                        peers.join(", "),
                        ns(ow.median)
                    ),
                    "no target, for reference",
                ));
            }
        }
        lines.sort_by_key(|(text, _)| text.split(' ').next().and_then(|n| n.parse::<u32>().ok()).unwrap_or(0));
        for (text, mark) in lines {
            let _ = writeln!(out, "- {mark}: {text}");
        }
    }

    /// Prints everything.
    pub fn print(&self, elapsed: Duration) {
        let mut out = String::new();
        let _ = writeln!(out, "## linux-event benchmarks\n");
        for m in &self.machine {
            let _ = writeln!(out, "- {m}");
        }
        let mut reps: Vec<String> = Vec::new();
        for w in workload::all() {
            for c in w.cases(&self.cfg) {
                reps.push(format!("{} {} x{}", w.id(), c.label, c.reps));
            }
        }
        let _ = writeln!(out, "- repetitions (each implementation, interleaved A B A B): {}", reps.join(", "));
        let _ = writeln!(
            out,
            "- CPU = user + sys of the measuring thread(s) (CLOCK_THREAD_CPUTIME_ID); \"vs ours\" = peer / \
             linux-event (above 1: linux-event is faster); rate = operations per wall second"
        );
        let mut described = self.describe.clone();
        described.sort_by_key(|d| d.0);
        for d in described {
            self.workload_table(&mut out, d);
        }
        for (number, id, why) in workload::PENDING {
            let _ = writeln!(out, "\n### Workload {number}: {id}\n\n{why}: not measured.");
        }
        self.tools_tables(&mut out);
        self.targets(&mut out);
        for n in &self.notes {
            let _ = writeln!(out, "\nnote: {n}");
        }
        let _ = writeln!(out, "\n(whole run: {:.1} s)", elapsed.as_secs_f64());
        print!("{out}");
    }
}

fn total(m: &tools::PerUnit) -> f64 {
    m.values().sum()
}

fn which(m: &tools::PerUnit) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter().map(|(k, v)| format!("{k} {v:.3}")).collect::<Vec<_>>().join(", ")
}

fn is_wait_or_io(name: &str) -> bool {
    matches!(name, "read" | "write" | "epoll_wait" | "epoll_pwait" | "epoll_pwait2" | "recvfrom" | "sendto")
}
