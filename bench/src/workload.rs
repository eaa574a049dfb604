//! The workload table: every workload implements [`Workload`], and the
//! driver runs each case of each workload on each of its implementations,
//! interleaved, `reps` times. Adding a workload means one more type
//! implementing the trait and one more line in [`all`].

use crate::measure::Span;

/// An implementation under test.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Impl {
    /// This crate.
    Ours,
    /// libev 4.33 (Debian `libev-dev`), C driver `c/ev.c`.
    Libev,
    /// libevent 2.1.12 (Debian `libevent-dev`), C driver `c/event.c`.
    Libevent,
    /// The `mio` crate.
    Mio,
    /// A hand-written epoll loop in C (`c/raw.c`).
    Raw,
}

impl Impl {
    /// Every implementation, in table order.
    pub const ALL: [Impl; 5] = [Impl::Ours, Impl::Libev, Impl::Libevent, Impl::Mio, Impl::Raw];

    /// The name printed in tables and accepted on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Impl::Ours => "linux-event",
            Impl::Libev => "libev",
            Impl::Libevent => "libevent",
            Impl::Mio => "mio",
            Impl::Raw => "raw epoll",
        }
    }

    /// Parses a command-line name (`ours` is accepted for linux-event).
    pub fn parse(s: &str) -> Option<Impl> {
        match s {
            "ours" | "linux-event" => Some(Impl::Ours),
            "libev" | "ev" => Some(Impl::Libev),
            "libevent" | "event" => Some(Impl::Libevent),
            "mio" => Some(Impl::Mio),
            "raw" | "raw-epoll" => Some(Impl::Raw),
            _ => None,
        }
    }

    /// The short command-line name.
    pub fn arg(self) -> &'static str {
        match self {
            Impl::Ours => "ours",
            Impl::Libev => "libev",
            Impl::Libevent => "libevent",
            Impl::Mio => "mio",
            Impl::Raw => "raw",
        }
    }
}

/// How a run is set up: quick or full, and where threads are pinned.
#[derive(Clone, Debug)]
pub struct Config {
    /// `--quick`: fewer repetitions and shorter runs.
    pub quick: bool,
    /// `--reps N`: overrides every workload's repetition count.
    pub reps: Option<usize>,
    /// The core single-threaded workloads are pinned to.
    pub cpu_single: i32,
    /// The cores of the two threads of a cross-thread workload.
    pub cpu_pair: (i32, i32),
}

impl Config {
    /// `full` repetitions, or `quick` ones under `--quick`, unless `--reps`.
    pub fn reps(&self, full: usize, quick: usize) -> usize {
        self.reps.unwrap_or(if self.quick { quick } else { full })
    }
}

/// One size or variant of a workload, e.g. `n=1000`.
#[derive(Clone, Debug)]
pub struct Case {
    /// Printed in the table.
    pub label: String,
    /// The workload's own parameter (n, timer count, ...).
    pub param: u64,
    /// How many times each implementation runs it.
    pub reps: usize,
}

/// What one measured run produced for one metric.
#[derive(Copy, Clone, Debug)]
pub enum Value {
    /// `ops` operations took `span`: reported per operation.
    PerOp {
        /// Operations done in the span.
        ops: f64,
        /// Wall and CPU time they took.
        span: Span,
    },
    /// A plain number (e.g. sends per callback).
    Number(f64),
}

/// One metric of one run.
#[derive(Copy, Clone, Debug)]
pub struct Sample {
    /// What was measured: "event", "insert", "round trip", ...
    pub metric: &'static str,
    /// The measurement.
    pub value: Value,
}

impl Sample {
    /// A per-operation sample.
    pub fn per_op(metric: &'static str, ops: f64, span: Span) -> Sample {
        Sample { metric, value: Value::PerOp { ops, span } }
    }

    /// A plain number.
    pub fn number(metric: &'static str, x: f64) -> Sample {
        Sample { metric, value: Value::Number(x) }
    }
}

/// A benchmark workload.
pub trait Workload {
    /// The number it has in issue 8 (1 chain, 2 timers, 3 wake-ups, ...).
    fn number(&self) -> u32;
    /// Short id for `--only` and in tables: "chain", "timers", ...
    fn id(&self) -> &'static str;
    /// One line saying what is measured and what an operation is.
    fn describe(&self) -> &'static str;
    /// The implementations that take part.
    fn impls(&self) -> &'static [Impl];
    /// Implementations that cannot take part, and why: printed as "n/a".
    fn not_applicable(&self) -> &'static [(Impl, &'static str)] {
        &[]
    }
    /// The cases to run.
    fn cases(&self, cfg: &Config) -> Vec<Case>;
    /// Runs `case` once on `imp` and measures it.
    fn run(&self, case: &Case, rep: usize, imp: Impl, cfg: &Config) -> Result<Vec<Sample>, String>;
}

/// Every workload, in the order they are run and printed.
pub fn all() -> Vec<Box<dyn Workload>> {
    vec![
        Box::new(crate::chain::Chain::default()),
        Box::new(crate::timers::Timers),
        Box::new(crate::wake::Wake),
        Box::new(crate::signals::Signals),
        Box::new(crate::children::Children),
    ]
}

/// Workloads of issue 8 that are not measured yet, and why (none now).
pub const PENDING: &[(u32, &str, &str)] = &[];
