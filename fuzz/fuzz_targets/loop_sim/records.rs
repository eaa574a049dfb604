//! The signal records of the simulated process, as a set of candidate
//! states.
//!
//! Most of the loop's behaviour is fixed by the order of the script, but
//! one point is not: where, among the callbacks of a pass, the loop reads
//! the signalfd. Its event sits somewhere in the batch, before or after
//! any fd's. A signal raised by an fd callback is therefore read in that
//! pass or the next, and a standard signal raised twice is one record or
//! two. Instead of guessing (or copying the ready-list order), the model
//! keeps every state the contract allows: at each callback boundary of a
//! pass that must read the signalfd and has not yet been seen to, it
//! forks into "read it here" and "not yet"; what the callbacks then report
//! (the signal, its count, the last record's details; the signal that
//! killed the process) rules candidates out. An empty set is a failure.
//!
//! Kernel semantics modelled here (as the Sim documents them): a standard
//! signal is pending at most once per target (the process, or one thread)
//! and keeps its first record; a real-time one queues every record, at most
//! `RT_QUEUE` process-wide; a signal that reaches a thread not blocking it
//! takes its default action (recorded, or dropped for the ignored ones); a
//! thread's signalfd reads its own pending signals and the process's.
//! The loop's contract: one read per pass in which the signalfd is
//! readable when the loop waits; one callback per signal read, in
//! ascending signal number, with the number of records and the last one;
//! SIGCHLD, when the loop watches it for its children, is reaped at its
//! turn.

use linux_event::sys::SigSet;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub const SIGCHLD: i32 = 17;
/// Real-time records the process can have queued (`Sim::raise`: `EAGAIN`
/// when 64 are queued).
pub const RT_QUEUE: usize = 64;
const SIGRTMIN: i32 = 32;

/// Signals whose default action is to be ignored (SIGCHLD, SIGCONT,
/// SIGURG, SIGWINCH): they vanish instead of killing.
pub fn ignored_by_default(signo: i32) -> bool {
    matches!(signo, 17 | 18 | 23 | 28)
}

/// One `signalfd_siginfo`, reduced to what the callback can see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rec {
    pub signo: i32,
    pub code: i32,
    pub pid: i32,
    pub status: i32,
    pub value: u64,
}

/// What remains of one read of the signalfd: its turns, in order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    /// SIGCHLD's turn: the loop reaps, if it watches SIGCHLD for children then.
    Reap,
    /// A signal's callback, if it is still watched at its turn.
    User { signo: i32, count: u32, last: Rec },
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Drain {
    /// This pass does not read the signalfd.
    Idle,
    /// It must read it, and has not yet.
    Expected,
    /// It read it; these turns are left.
    Phase { steps: VecDeque<Step>, in_reap: bool },
    /// It read it and every turn is over.
    Closed,
}

/// One way the simulated process's signals can be now.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cand {
    proc_std: BTreeMap<i32, Rec>,
    thr_std: BTreeMap<(i32, i32), Rec>,
    rt: Vec<(i32, Rec)>,
    /// `None`: nothing took a default action yet; `Some(set)`: the first
    /// one was one of these (resolved by `Sim::killed_by`).
    pub killed: Option<BTreeSet<i32>>,
    drain: Drain,
    /// A reap ran at SIGCHLD's turn in this pass.
    pub reaped: bool,
}

/// What the deterministic part of the model says, at the moment a
/// candidate is advanced.
pub struct View {
    /// The thread the loop runs on.
    pub cur: i32,
    /// What the loop's signalfd listens to.
    pub wanted: SigSet,
    /// Signals with a live user watcher.
    pub watched: SigSet,
    /// Whether the loop watches SIGCHLD for its children.
    pub internal: bool,
    /// Each thread's mask (index = tid, 1..=3).
    pub masks: [SigSet; 4],
}

/// What happened at a callback boundary.
#[derive(Clone, Copy, Debug)]
pub enum Obs {
    /// An fd callback (it runs in the batch).
    Io,
    /// A wake-up or timer callback (after the batch), or the end of the pass.
    After,
    /// A pid watcher's or the reaper's callback.
    Child,
    /// A signal callback with what its event said.
    Signal { signo: i32, count: u32, last: Rec },
}

impl Default for Cand {
    fn default() -> Self {
        Cand {
            proc_std: BTreeMap::new(),
            thr_std: BTreeMap::new(),
            rt: Vec::new(),
            killed: None,
            drain: Drain::Idle,
            reaped: false,
        }
    }
}

impl Cand {
    /// A record sent to the process (`tid` 0) or one thread. `Err(())`
    /// when the real-time queue is full (the Sim says `EAGAIN`).
    pub fn raise(&mut self, tid: i32, rec: Rec, view: &View) -> Result<(), ()> {
        if rec.signo >= SIGRTMIN {
            if self.rt.len() == RT_QUEUE {
                return Err(());
            }
            self.rt.push((tid, rec));
        } else if tid == 0 {
            self.proc_std.entry(rec.signo).or_insert(rec);
        } else {
            self.thr_std.entry((tid, rec.signo)).or_insert(rec);
        }
        self.default_actions(view);
        Ok(())
    }

    /// Every pending record that some eligible thread does not block takes
    /// its default action.
    pub fn default_actions(&mut self, view: &View) {
        let open_somewhere = |s: i32| (1..=3).any(|t| !view.masks[t].contains(s));
        let open_in = |t: i32, s: i32| !view.masks[t as usize].contains(s);
        let mut hit = BTreeSet::new();
        self.proc_std.retain(|&s, _| {
            let open = open_somewhere(s);
            if open {
                hit.insert(s);
            }
            !open
        });
        self.thr_std.retain(|&(t, s), _| {
            let open = open_in(t, s);
            if open {
                hit.insert(s);
            }
            !open
        });
        self.rt.retain(|&(t, r)| {
            let open = if t == 0 { open_somewhere(r.signo) } else { open_in(t, r.signo) };
            if open {
                hit.insert(r.signo);
            }
            !open
        });
        hit.retain(|&s| !ignored_by_default(s));
        if self.killed.is_none() && !hit.is_empty() {
            self.killed = Some(hit);
        }
    }

    /// The loop gave `signo` back on thread `tid`: what is pending for it
    /// there (and process-wide) is discarded.
    pub fn discard(&mut self, tid: i32, signo: i32) {
        self.proc_std.remove(&signo);
        self.thr_std.remove(&(tid, signo));
        self.rt.retain(|&(t, r)| !(r.signo == signo && (t == 0 || t == tid)));
    }

    /// Whether no read of the signalfd is pending or under way: then only a
    /// signal callback can change (or rule out) this state.
    pub fn quiet(&self) -> bool {
        matches!(self.drain, Drain::Idle | Drain::Closed)
    }

    /// Whether `Sim::killed_by` says exactly what this state says already.
    pub fn killed_is(&self, observed: Option<i32>) -> bool {
        match (&self.killed, observed) {
            (None, None) => true,
            (Some(set), Some(k)) => set.len() == 1 && set.contains(&k),
            _ => false,
        }
    }

    /// Whether `Sim::killed_by` may say `observed`; resolves the first one.
    pub fn killed_as(&mut self, observed: Option<i32>) -> bool {
        match (&self.killed, observed) {
            (None, None) => true,
            (Some(set), Some(k)) if set.contains(&k) => {
                self.killed = Some(BTreeSet::from([k]));
                true
            }
            _ => false,
        }
    }

    fn readable(&self, view: &View) -> bool {
        let cur = view.cur;
        self.proc_std.keys().any(|&s| view.wanted.contains(s))
            || self.thr_std.keys().any(|&(t, s)| t == cur && view.wanted.contains(s))
            || self.rt.iter().any(|&(t, r)| (t == 0 || t == cur) && view.wanted.contains(r.signo))
    }

    /// The loop waited: it will read the signalfd in this pass iff a record
    /// it listens to is readable now.
    pub fn begin_pass(&mut self, view: &View) {
        self.drain = if self.readable(view) { Drain::Expected } else { Drain::Idle };
        self.reaped = false;
    }

    /// The read itself: every readable record of a signal listened to.
    fn read(&mut self, view: &View) {
        let cur = view.cur;
        let mut steps = VecDeque::new();
        for s in view.wanted.iter() {
            let mut count = 0u32;
            let mut last = None;
            // A thread's own record is read before the process's.
            if let Some(r) = self.thr_std.remove(&(cur, s)) {
                count += 1;
                last = Some(r);
            }
            if let Some(r) = self.proc_std.remove(&s) {
                count += 1;
                last = Some(r);
            }
            let mut kept = Vec::new();
            for (t, r) in self.rt.drain(..) {
                if r.signo == s && (t == 0 || t == cur) {
                    count += 1;
                    last = Some(r);
                } else {
                    kept.push((t, r));
                }
            }
            self.rt = kept;
            if let Some(last) = last {
                if s == SIGCHLD {
                    steps.push_back(Step::Reap);
                }
                steps.push_back(Step::User { signo: s, count, last });
            }
        }
        self.drain = Drain::Phase { steps, in_reap: false };
    }

    /// Passes over a turn whose callback did not run: allowed only if the
    /// signal has no watcher now.
    fn skip(&mut self, step: &Step, view: &View) -> bool {
        match step {
            Step::Reap => {
                if view.internal {
                    self.reaped = true;
                }
                true
            }
            Step::User { signo, .. } => !view.watched.contains(*signo),
        }
    }

    /// Ends the read's turns here (none of the rest ran a callback).
    fn close(mut self, view: &View) -> Option<Cand> {
        if let Drain::Phase { steps, .. } = &mut self.drain {
            let steps = core::mem::take(steps);
            for step in &steps {
                if !self.skip(step, view) {
                    return None;
                }
            }
            self.drain = Drain::Closed;
        }
        Some(self)
    }

    /// The states that follow this one when `obs` happens now.
    pub fn advance(self, obs: Obs, view: &View) -> Vec<Cand> {
        let mut out = Vec::new();
        match (obs, &self.drain) {
            (Obs::Io, Drain::Expected) => {
                out.push(self.clone());
                let mut read = self;
                read.read(view);
                out.extend(read.close(view));
            }
            (Obs::After, Drain::Expected) => {
                let mut read = self;
                read.read(view);
                out.extend(read.close(view));
            }
            (Obs::Io | Obs::After, Drain::Phase { .. }) => out.extend(self.close(view)),
            (Obs::Io | Obs::After, Drain::Idle | Drain::Closed) => out.push(self),
            (Obs::Child, Drain::Idle | Drain::Closed) => out.push(self),
            (Obs::Child, Drain::Expected) => {
                out.push(self.clone());
                let mut read = self;
                read.read(view);
                read.child_in_phase(view, &mut out);
            }
            (Obs::Child, Drain::Phase { .. }) => self.child_in_phase(view, &mut out),
            (Obs::Signal { .. }, Drain::Idle | Drain::Closed) => {}
            (Obs::Signal { signo, count, last }, Drain::Expected) => {
                let mut read = self;
                read.read(view);
                out.extend(read.signal_turn(signo, count, last, view));
            }
            (Obs::Signal { signo, count, last }, Drain::Phase { .. }) => {
                out.extend(self.signal_turn(signo, count, last, view))
            }
        }
        out
    }

    /// A child callback while a read's turns are open: inside SIGCHLD's
    /// reap (still, or from now on), or after the read (a pidfd event or
    /// the owed scan).
    fn child_in_phase(self, view: &View, out: &mut Vec<Cand>) {
        if let Drain::Phase { in_reap: true, .. } = self.drain {
            out.push(self.clone());
        }
        let mut into_reap = self.clone();
        if into_reap.enter_reap(view) {
            out.push(into_reap);
        }
        out.extend(self.close(view));
    }

    fn enter_reap(&mut self, view: &View) -> bool {
        loop {
            let Drain::Phase { steps, .. } = &mut self.drain else { return false };
            let Some(step) = steps.pop_front() else { return false };
            match step {
                Step::Reap if view.internal => {
                    self.reaped = true;
                    if let Drain::Phase { in_reap, .. } = &mut self.drain {
                        *in_reap = true;
                    }
                    return true;
                }
                Step::Reap => return false,
                user => {
                    if !self.skip(&user, view) {
                        return false;
                    }
                }
            }
        }
    }

    /// The callback for `signo`: every earlier turn was passed over, and
    /// this one says what was read.
    fn signal_turn(mut self, signo: i32, count: u32, last: Rec, view: &View) -> Option<Cand> {
        loop {
            let Drain::Phase { steps, in_reap } = &mut self.drain else { return None };
            *in_reap = false;
            let step = steps.pop_front()?;
            match step {
                Step::User { signo: s, count: c, last: l } if s == signo => {
                    return (c == count && l == last).then_some(self);
                }
                Step::User { signo: s, .. } if s > signo => return None,
                other => {
                    if !self.skip(&other, view) {
                        return None;
                    }
                }
            }
        }
    }

    /// A short description of what is pending, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "process {:?}, threads {:?}, rt {:?}, killed {:?}, read {:?}",
            self.proc_std.keys().collect::<Vec<_>>(),
            self.thr_std.keys().collect::<Vec<_>>(),
            self.rt.iter().map(|(t, r)| (*t, r.signo, r.value)).collect::<Vec<_>>(),
            self.killed,
            self.drain
        )
    }
}
