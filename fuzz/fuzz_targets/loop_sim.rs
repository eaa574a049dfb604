//! The whole `Loop` on the `Sim` backend, checked against a plain model of
//! its contract (DESIGN.md's invariants and the sources' documented
//! semantics), never against a copy of its code.
//!
//! The input is a script of outside operations (act on the loop, move the
//! clock, move the loop to another thread, let "another thread" ring the
//! waker during the next wait, run passes) and a queue of reactions: each
//! callback takes the next reaction and performs its actions from inside
//! dispatch. Every action can be taken from both sides: fd watchers,
//! timers, signal watchers, raising and queueing signals, blocking them in
//! threads, spawning and ending processes, pid watchers, the reaper,
//! refusing pidfds, the waker, `remove`/`set_data` on any id ever handed
//! out, stop. A `Fault` action arms one injected kernel error for the next
//! action only (then it is withdrawn), so the model knows exactly which
//! call it can reach; whether that call talks to the kernel is what the
//! model predicts from the contract ("each change reaches the kernel
//! first", "a watcher with no side left is out of the kernel", "objects are
//! made on first use").
//!
//! What is checked is listed in `fuzz/README.md`. Where the contract leaves
//! an order open (where the signalfd's event falls in a batch), the model
//! keeps every allowed state (`records.rs`) instead of guessing.
//!
//! The library defects this target found are fixed, and their inputs are
//! kept as regression seeds (`fuzz/README.md`).

#![no_main]

#[path = "loop_sim/records.rs"]
mod records;

use arbitrary::Arbitrary;
use core::time::Duration;
use libfuzzer_sys::fuzz_target;
use linux_event::backend::Sim;
use linux_event::sys::{ExitStatus, SigSet};
use linux_event::{
    ChildMode, Errno, Error, Instant, Interest, Loop, PidEvent, PidId, PidOptions, Ready, ReapEvent, ReaperId, Side,
    SignalEvent, SignalId, TimerEvent, TimerId, Trigger, WakeEvent, WakeId, Waker, WatchEvent, WatchId, WatchOptions,
};
use records::{Cand, Obs, Rec, SIGCHLD, View};
use std::collections::{BTreeMap, BTreeSet, VecDeque};


const W: usize = 8;
const T: usize = 8;
const N: usize = 32;
/// User fd numbers: more than W, so the watcher table fills.
const FDS: u8 = 12;
const MAX_OPS: usize = 256;
const MAX_REACTIONS: usize = 256;
const MAX_SPAWNS: usize = 20;
/// Callbacks one `Run` may make before a callback calls `stop`.
const RUN_BUDGET: u32 = 64;
/// The Sim's children start at this pid, one more per process.
const FIRST_PID: i32 = 1000;
/// A pid no process has.
const NO_SUCH_PID: i32 = 999;

type Lp = Loop<Ctx, W, T, Sim<N>>;

/// `LOOP_SIM_TRACE=1` prints every operation and callback (for reading a
/// reproducer: `LOOP_SIM_TRACE=1 cargo +nightly fuzz run loop_sim <file>`).
fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("LOOP_SIM_TRACE").is_some())
}

macro_rules! trace {
    ($($arg:tt)*) => {
        if tracing() {
            eprintln!($($arg)*);
        }
    };
}

// --- the input ---

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Fault {
    Ctl(u8),
    Deregister(u8),
    Wait(u8),
    Object(u8),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Action {
    Watch {
        fd: u8,
        interest: u8,
        trigger: u8,
        alt: bool,
    },
    Modify {
        which: u8,
        interest: u8,
    },
    SetTrigger {
        which: u8,
        trigger: u8,
    },
    Enable {
        which: u8,
        sides: u8,
    },
    Disable {
        which: u8,
        sides: u8,
    },
    SetWatchCallback {
        which: u8,
        alt: bool,
    },
    SetReady {
        fd: u8,
        ready: u8,
    },
    ClearReady {
        fd: u8,
        ready: u8,
    },
    /// `close(fd)` behind the loop's back.
    CloseFd {
        fd: u8,
    },
    After {
        delay: u16,
        alt: bool,
    },
    At {
        at: u16,
        alt: bool,
    },
    Every {
        interval: u16,
        alt: bool,
    },
    Rearm {
        which: u8,
        delay: u16,
    },
    SetInterval {
        which: u8,
        interval: Option<u16>,
    },
    SetTimerCallback {
        which: u8,
        alt: bool,
    },
    Signal {
        sig: u8,
    },
    Raise {
        sig: u8,
    },
    Queue {
        sig: u8,
        value: u8,
    },
    RaiseInThread {
        tid: u8,
        sig: u8,
    },
    /// The program around the loop blocks or unblocks a signal in a thread.
    BlockInThread {
        tid: u8,
        sig: u8,
        block: bool,
    },
    SpawnChild,
    SpawnStranger,
    Exit {
        which: u8,
        status: u8,
    },
    Pid {
        which: u8,
        reap: bool,
    },
    Reaper,
    RefusePidfds {
        how: u8,
    },
    HideChildren {
        hidden: bool,
    },
    Waker,
    OnWake,
    /// `Waker::signal` from another thread (outside) or a callback.
    Wake {
        n: u8,
    },
    Drain,
    /// `remove` of any id ever handed out, live or stale.
    Remove {
        which: u8,
    },
    SetData {
        which: u8,
        data: u8,
    },
    Stop,
    /// `run_once`/`run` from inside a callback.
    Reenter,
    /// One injected kernel error for the next action (or run) only.
    Fault(Fault),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Act(Action),
    Advance {
        ms: u16,
    },
    /// The loop moves to thread 1, 2 or 3.
    SetThread {
        tid: u8,
    },
    /// Another thread signals the waker while the loop sleeps.
    WakeInNextWait {
        n: u8,
    },
    RunOnce {
        timeout: Option<u8>,
    },
    Run,
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// Threads 2 and 3 block every signal (as a program that wants its
    /// signals read by the loop does).
    workers_block: bool,
    ops: Vec<Op>,
    /// One entry per callback invocation, in order; missing ones do nothing.
    reactions: Vec<Vec<Action>>,
}

const ERRNOS: [Errno; 7] =
    [Errno::ENOMEM, Errno::EPERM, Errno::EBADF, Errno::EINVAL, Errno::ENOSPC, Errno::EIO, Errno::EMFILE];
/// Signals scripts raise and watch: standard, SIGCHLD, default-ignored
/// ones, real-time.
const SIGNALS: [i32; 12] = [1, 2, 10, 12, 15, 17, 18, 28, 32, 33, 40, 64];
/// Refused at registration.
const BAD_SIGNALS: [i32; 4] = [0, 9, 19, 65];

fn errno(i: u8) -> Errno {
    ERRNOS[usize::from(i) % ERRNOS.len()]
}

fn signal_of(i: u8) -> i32 {
    SIGNALS[usize::from(i) % SIGNALS.len()]
}

fn registrable_signal(i: u8) -> i32 {
    let i = usize::from(i) % (SIGNALS.len() + BAD_SIGNALS.len());
    if i < SIGNALS.len() { SIGNALS[i] } else { BAD_SIGNALS[i - SIGNALS.len()] }
}

fn tid_of(i: u8) -> i32 {
    i32::from(i % 3) + 1
}

fn fd_of(i: u8) -> i32 {
    i32::from(i % FDS)
}

fn duration(ms: u16) -> Duration {
    // The extreme stands for "never", to exercise saturation.
    if ms == u16::MAX { Duration::MAX } else { Duration::from_millis(u64::from(ms)) }
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn status_of(i: u8) -> ExitStatus {
    match i % 4 {
        0 | 1 => ExitStatus::Exited(i32::from(i / 4)),
        2 => ExitStatus::Signaled { signal: 9, core_dumped: false },
        _ => ExitStatus::Signaled { signal: 11, core_dumped: true },
    }
}

/// Bit i of `bits` stands for the i-th flag (independent of how the
/// library encodes the flags).
fn ready_of(bits: u8) -> Ready {
    const ALL: [Ready; 6] =
        [Ready::READABLE, Ready::WRITABLE, Ready::ERROR, Ready::HANGUP, Ready::READ_HANGUP, Ready::PRIORITY];
    ALL.iter().enumerate().filter(|(i, _)| bits & (1 << i) != 0).fold(Ready::empty(), |acc, (_, r)| acc | *r)
}

fn interest_of(bits: u8) -> Interest {
    const ALL: [Interest; 3] = [Interest::READ, Interest::WRITE, Interest::ERROR];
    ALL.iter().enumerate().filter(|(i, _)| bits & (1 << i) != 0).fold(Interest::empty(), |acc, (_, r)| acc | *r)
}

fn trigger_of(t: u8) -> Trigger {
    [Trigger::Level, Trigger::Edge, Trigger::Oneshot][usize::from(t) % 3]
}

// --- the contract, stated once ---

/// The sides that reach the kernel: `ERROR` alone asks it for nothing.
fn in_kernel(interest: Interest) -> bool {
    interest.intersects(Interest::READ | Interest::WRITE)
}

/// What epoll reports for a registration: the asked-for side's bits, and
/// errors and hang-ups always.
fn relevant(interest: Interest) -> Ready {
    let mut r = Ready::ERROR | Ready::HANGUP;
    if interest.contains(Interest::READ) {
        r |= Ready::READABLE | Ready::READ_HANGUP | Ready::PRIORITY;
    }
    if interest.contains(Interest::WRITE) {
        r |= Ready::WRITABLE;
    }
    r
}

/// Whether a callback for `side` may run for a report of `ready` to a
/// watcher with `interest` (DESIGN.md): errors go to the error side alone
/// when it is asked for, otherwise to read and write; a hang-up wakes the
/// read side, or the write side of a write-only watcher.
fn routed(side: Side, ready: Ready, interest: Interest) -> bool {
    let error_alone = ready.contains(Ready::ERROR) && interest.contains(Interest::ERROR);
    match side {
        Side::Error => error_alone,
        Side::Read => {
            !error_alone
                && interest.contains(Interest::READ)
                && ready
                    .intersects(Ready::READABLE | Ready::HANGUP | Ready::READ_HANGUP | Ready::ERROR | Ready::PRIORITY)
        }
        Side::Write => {
            !error_alone
                && interest.contains(Interest::WRITE)
                && (ready.intersects(Ready::WRITABLE | Ready::ERROR)
                    || (ready.contains(Ready::HANGUP) && !interest.contains(Interest::READ)))
        }
    }
}

/// Every side a report reaches, in order (read before write).
fn routing(ready: Ready, interest: Interest) -> Vec<Side> {
    [Side::Error, Side::Read, Side::Write].into_iter().filter(|s| routed(*s, ready, interest)).collect()
}

fn sigchld_record(pid: i32, status: ExitStatus) -> Rec {
    // CLD_EXITED, CLD_KILLED, CLD_DUMPED.
    let (code, st) = match status {
        ExitStatus::Exited(c) => (1, c),
        ExitStatus::Signaled { signal, core_dumped } => (if core_dumped { 3 } else { 2 }, signal),
    };
    Rec { signo: SIGCHLD, code, pid, status: st, value: 0 }
}

// --- the model ---

#[derive(Clone, Copy, Debug)]
enum AnyId {
    Watch(WatchId),
    Timer(TimerId),
    Signal(SignalId),
    Pid(PidId),
    Reaper(ReaperId),
    Wake(WakeId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Io,
    Signal,
    Child,
    Wake,
    Timer,
}

#[derive(Clone, Copy, Debug)]
struct MWatch {
    id: WatchId,
    serial: u64,
    interest: Interest,
    trigger: Trigger,
    alt: bool,
    data: u64,
    /// Edge: a report is due (a wake-up or an arming since the last
    /// report). Oneshot: armed. Level: unused.
    credit: bool,
}

impl MWatch {
    fn registered(&self) -> bool {
        in_kernel(self.interest)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TState {
    Pending { deadline: u64, seq: u64 },
    Disabled,
    Firing,
}

#[derive(Clone, Copy, Debug)]
struct MTimer {
    id: TimerId,
    state: TState,
    interval: Option<u64>,
    alt: bool,
    data: u64,
}

#[derive(Clone, Copy, Debug)]
struct MSig {
    id: SignalId,
    data: u64,
}

#[derive(Clone, Copy, Debug)]
struct MProc {
    pid: i32,
    child: bool,
    exit: Option<ExitStatus>,
    exit_epoch: u64,
    reaped: bool,
    /// Delivered to a `reap(false)` watcher and still a zombie.
    parked: bool,
}

impl MProc {
    /// Still in the process table (a stranger is gone once it exits).
    fn exists(&self) -> bool {
        if self.child { !self.reaped } else { self.exit.is_none() }
    }
    fn zombie(&self) -> bool {
        self.child && self.exit.is_some() && !self.reaped
    }
}

#[derive(Clone, Copy, Debug)]
struct MPidW {
    id: PidId,
    pid: i32,
    reap: bool,
    data: u64,
    /// Watched through a pidfd (else through SIGCHLD).
    pidfd: bool,
    epoch: u64,
}

#[derive(Clone, Copy, Debug)]
struct MReaper {
    id: ReaperId,
    data: u64,
    epoch: u64,
}

#[derive(Clone, Copy, Debug)]
struct MWake {
    id: WakeId,
    data: u64,
}

/// A watcher as the wait saw it.
#[derive(Clone, Copy, Debug)]
struct WSnap {
    fd: i32,
    interest: Interest,
    trigger: Trigger,
    /// Registered with the kernel, and its fd not closed behind its back.
    in_sim: bool,
    credit: bool,
    /// What the fd was ready for, of what the registration reports.
    ready: Ready,
}

/// One pass, as the model follows it.
#[derive(Debug, Default)]
struct Pass {
    waits: u64,
    epoch: u64,
    now: Option<Instant>,
    seq_limit: u64,
    wsnap: BTreeMap<u64, WSnap>,
    calls: BTreeMap<u64, Vec<Side>>,
    /// Watchers changed by an action in this pass.
    touched: BTreeSet<u64>,
    /// Fds whose readiness an action changed in this pass.
    fd_touched: BTreeSet<i32>,
    /// Watchers (re-)armed or woken in this pass.
    rearmed: BTreeSet<u64>,
    last_signo: Option<i32>,
    callbacks: usize,
    // waker
    wake_called: bool,
    rung_start: Option<bool>,
    pending_start: u64,
    wake_live_start: bool,
    wake_touched: bool,
    /// Signals by callbacks: before the wake-up callback (if any), whether
    /// one came from a callback certainly in the batch, and the kind of the
    /// last one.
    signaled_before_wake: bool,
    signaled_in_batch: bool,
    signaled_after_wake: bool,
    last_signaller: Option<Kind>,
    // children
    scan_start: bool,
    last_scan_setter: Option<Kind>,
    pid_touched: BTreeSet<i32>,
    hidden_touched: bool,
    reaper_start: Option<ReaperId>,
}

#[derive(Default)]
struct Ctx {
    reactions: VecDeque<Vec<Action>>,
    budget: Option<u32>,
    ids: Vec<AnyId>,
    serial: u64,
    in_callback: bool,
    kind: Option<Kind>,
    epoch: u64,
    pass: Option<Pass>,
    /// The Sim's wait count the model has accounted for.
    waits_seen: u64,
    ops_callbacks: usize,
    stop_pending: bool,
    /// The wait count of the pass in which a callback stopped `run`.
    stopped_at: Option<u64>,
    last_now: Instant,
    // fds
    watchers: BTreeMap<i32, MWatch>,
    ready: [Ready; FDS as usize],
    /// Fds closed behind the loop: the Sim holds no registration for them
    /// until the loop registers them again.
    closed: BTreeSet<i32>,
    /// Fds whose deregistration was refused: the Sim may still hold them
    /// until the loop retries, before its next wait.
    stale_regs: BTreeSet<i32>,
    failed_deregs: usize,
    // timers
    timers: Vec<MTimer>,
    timer_ids: Vec<TimerId>,
    seq: u64,
    // signals
    sigw: BTreeMap<i32, MSig>,
    holder: i32,
    cur: i32,
    /// Masks as the program around the loop set them.
    program: [SigSet; 4],
    /// Signals the loop gave back on a thread it no longer runs on, which
    /// that thread unblocks at its next hold or release.
    owed: [SigSet; 4],
    cands: Vec<Cand>,
    // children
    procs: Vec<MProc>,
    pidw: Vec<MPidW>,
    reaper: Option<MReaper>,
    sigchld_mode: Option<Errno>,
    refuse: Option<Errno>,
    hidden: bool,
    scan_owed: Option<bool>,
    reap_false: usize,
    // waker
    doorbell: bool,
    waker: Option<Waker>,
    wake: Option<MWake>,
    pending: u64,
    rung: Option<bool>,
    next_wait: Vec<u64>,
}

impl Ctx {
    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn table_len(&self) -> usize {
        self.watchers.len() + self.pidw.len()
    }

    fn internal(&self) -> bool {
        self.reaper.is_some() || self.pidw.iter().any(|w| !w.pidfd)
    }

    fn watched(&self) -> SigSet {
        self.sigw.keys().fold(SigSet::empty(), |s, &n| s.with(n))
    }

    fn wanted(&self) -> SigSet {
        let w = self.watched();
        if self.internal() { w.with(SIGCHLD) } else { w }
    }

    fn mask(&self, tid: i32) -> SigSet {
        let t = tid as usize;
        let held = if self.holder == tid { self.wanted() } else { SigSet::empty() };
        SigSet::from_bits(self.program[t].bits() | held.bits() | self.owed[t].bits())
    }

    fn view(&self) -> View {
        View {
            cur: self.cur,
            wanted: self.wanted(),
            watched: self.watched(),
            internal: self.internal(),
            masks: [SigSet::empty(), self.mask(1), self.mask(2), self.mask(3)],
        }
    }

    fn open_objects(&self) -> usize {
        usize::from(self.doorbell)
            + usize::from(!self.wanted().is_empty())
            + self.pidw.iter().filter(|w| w.pidfd).count()
    }

    fn has_work(&self) -> bool {
        self.doorbell
            || !self.wanted().is_empty()
            || self.watchers.values().any(|w| w.registered())
            || self.pidw.iter().any(|w| w.pidfd)
            || self.timers.iter().any(|t| matches!(t.state, TState::Pending { .. }))
    }

    /// Applies `f` to every candidate; keeps those for which it holds.
    fn filter_cands(&mut self, what: &str, mut f: impl FnMut(&mut Cand, &View) -> bool) {
        let view = self.view();
        let mut next = self.cands.clone();
        next.retain_mut(|c| f(c, &view));
        if next.is_empty() {
            let before: Vec<String> = self.cands.iter().map(Cand::describe).collect();
            panic!("no state of the signal records explains {what}; candidates were {before:#?}");
        }
        next.sort();
        next.dedup();
        self.cands = next;
    }

    fn advance_cands(&mut self, obs: Obs) {
        if !matches!(obs, Obs::Signal { .. }) && self.cands.iter().all(Cand::quiet) {
            return;
        }
        let view = self.view();
        let mut next: Vec<Cand> = self.cands.iter().flat_map(|c| c.clone().advance(obs, &view)).collect();
        if next.is_empty() {
            let before: Vec<String> = self.cands.iter().map(Cand::describe).collect();
            panic!("no state of the signal records explains {obs:?}; candidates were {before:#?}");
        }
        next.sort();
        next.dedup();
        self.cands = next;
    }

    /// The signal a pending change makes a thread unblock.
    fn settle(&mut self, tid: i32) {
        let t = tid as usize;
        let unblock = core::mem::replace(&mut self.owed[t], SigSet::empty());
        if unblock.is_empty() {
            return;
        }
        let view = self.view();
        for c in &mut self.cands {
            for s in unblock.iter() {
                c.discard(tid, s);
            }
            c.default_actions(&view);
        }
    }

    /// The loop's signal set changed from `old` to the current wanted set:
    /// the holds it takes and gives back, per the mask contract.
    fn sync_mask(&mut self, old: SigSet) {
        let new = self.wanted();
        let to_hold = SigSet::from_bits(new.bits() & !old.bits());
        let to_release = SigSet::from_bits(old.bits() & !new.bits());
        if !to_hold.is_empty() {
            let cur = self.cur;
            if old.is_empty() {
                self.holder = cur;
            }
            let t = cur as usize;
            self.owed[t] = SigSet::from_bits(self.owed[t].bits() & !to_hold.bits());
            self.settle(cur);
        }
        if !to_release.is_empty() {
            let h = self.holder;
            let t = h as usize;
            // Blocked "for the loop" only if the program had not blocked it.
            let ours = SigSet::from_bits(to_release.bits() & !self.program[t].bits());
            self.owed[t] = SigSet::from_bits(self.owed[t].bits() | ours.bits());
            if h == self.cur {
                self.settle(h);
            }
        }
    }

    /// Whether adding `signo` to what the loop listens to would need a new
    /// hold on another thread than the holder's (`WrongThread`).
    fn wrong_thread(&self) -> bool {
        !self.wanted().is_empty() && self.holder != self.cur
    }

    fn touch(&mut self, serial: u64) {
        if let Some(p) = &mut self.pass {
            p.touched.insert(serial);
        }
    }

    fn rearm(&mut self, serial: u64) {
        if let Some(p) = &mut self.pass {
            p.rearmed.insert(serial);
        }
    }

    fn watch_by_id(&self, id: WatchId) -> Option<MWatch> {
        self.watchers.values().find(|w| w.id == id).copied()
    }

    fn timer(&self, id: TimerId) -> Option<usize> {
        self.timers.iter().position(|t| t.id == id)
    }

    fn proc_of(&self, pid: i32) -> Option<usize> {
        self.procs.iter().position(|p| p.pid == pid)
    }

    fn pid_target(&self, which: u8) -> i32 {
        let i = usize::from(which) % (self.procs.len() + 2);
        match i.checked_sub(self.procs.len()) {
            None => self.procs[i].pid,
            Some(0) => 0,
            Some(_) => NO_SUCH_PID,
        }
    }

    fn set_scan_owed(&mut self) {
        self.scan_owed = Some(true);
        if let Some(p) = &mut self.pass {
            p.last_scan_setter = Some(self.kind.unwrap_or(Kind::Timer));
        }
    }

    /// The time relative delays count from: the loop's cached `now`,
    /// inside callbacks and outside (scheduling never reads the clock).
    fn base(&self, lp: &mut Lp) -> Instant {
        lp.now()
    }

    // --- passes ---

    /// Notices, from a callback, a pass the model has not begun yet.
    fn observe(&mut self, lp: &mut Lp) {
        let waits = lp.sim().waits();
        if self.pass.as_ref().is_some_and(|p| p.waits == waits) {
            return;
        }
        self.catch_up(lp, waits - 1);
        let now = lp.now();
        self.begin_pass(lp, waits, Some(now));
    }

    /// Ends the pass being followed and every pass up to wait `upto` that
    /// ran no callback.
    fn catch_up(&mut self, lp: &mut Lp, upto: u64) {
        if let Some(p) = self.pass.take() {
            self.waits_seen = p.waits;
            self.end_pass(lp, p);
        }
        while self.waits_seen < upto {
            let w = self.waits_seen + 1;
            self.begin_pass(lp, w, None);
            let p = self.pass.take().expect("begun");
            self.waits_seen = w;
            self.end_pass(lp, p);
        }
    }

    /// After `run`/`run_once` returned: ends every pass it made.
    fn finish_passes(&mut self, lp: &mut Lp) {
        let waits = lp.sim().waits();
        if self.pass.as_ref().is_some_and(|p| p.waits == waits) {
            if let Some(p) = &mut self.pass {
                p.now = Some(lp.now());
            }
            self.catch_up(lp, waits);
            return;
        }
        if waits > self.waits_seen || self.pass.is_some() {
            self.catch_up(lp, waits - 1);
            if self.waits_seen < waits {
                let now = lp.now();
                self.begin_pass(lp, waits, Some(now));
                self.catch_up(lp, waits);
            }
        }
    }

    /// The loop waited (successfully): what the wait saw.
    fn begin_pass(&mut self, lp: &mut Lp, waits: u64, now: Option<Instant>) {
        self.epoch += 1;
        // Refused deregistrations are retried before every wait.
        self.stale_regs.clear();
        self.failed_deregs = 0;
        if let Some(n) = now {
            assert!(n >= self.last_now, "the loop's clock went back: {n:?} < {:?}", self.last_now);
            self.last_now = n;
        }
        // Another thread signalled the waker while the loop slept.
        for n in core::mem::take(&mut self.next_wait) {
            self.pending = self.pending.saturating_add(n);
            self.rung = Some(true);
        }
        let mut wsnap = BTreeMap::new();
        for (&fd, w) in &self.watchers {
            let in_sim = w.registered() && !self.closed.contains(&fd);
            let ready = self.ready[fd as usize] & relevant(w.interest);
            wsnap.insert(
                w.serial,
                WSnap { fd, interest: w.interest, trigger: w.trigger, in_sim, credit: w.credit, ready },
            );
        }
        let view = self.view();
        for c in &mut self.cands {
            c.begin_pass(&view);
        }
        self.pass = Some(Pass {
            waits,
            epoch: self.epoch,
            now,
            seq_limit: self.seq + 1,
            wsnap,
            rung_start: self.rung,
            pending_start: self.pending,
            wake_live_start: self.wake.is_some(),
            scan_start: self.scan_owed == Some(true),
            reaper_start: self.reaper.map(|r| r.id),
            ..Pass::default()
        });
        let _ = lp;
    }

    /// The loop's wait failed: nothing ran, but it retried refused
    /// deregistrations. A ring stays for the next pass (the loop takes
    /// nothing from its waker when the wait fails).
    fn failed_wait(&mut self) {
        self.stale_regs.clear();
        self.failed_deregs = 0;
    }

    fn end_pass(&mut self, lp: &mut Lp, p: Pass) {
        let _ = lp;
        // Signals: the read (if due) and its turns are over.
        self.advance_cands(Obs::After);
        // Fds.
        for (serial, snap) in &p.wsnap {
            let calls = p.calls.get(serial).cloned().unwrap_or_default();
            let report = snap.in_sim && !snap.ready.is_empty() && (snap.trigger == Trigger::Level || snap.credit);
            assert!(
                calls.is_empty() || report,
                "watcher {serial} on fd {} got {calls:?} without a report due ({snap:?})",
                snap.fd
            );
            let live = self.watchers.get(&snap.fd).filter(|w| w.serial == *serial).copied();
            if let Some(w) = live {
                if report && !p.touched.contains(serial) && !p.fd_touched.contains(&snap.fd) {
                    assert_eq!(
                        calls,
                        routing(snap.ready, snap.interest),
                        "watcher {serial} on fd {} ({:?}, {:?}) ready {:?} was not reported as due",
                        snap.fd,
                        snap.interest,
                        snap.trigger,
                        snap.ready
                    );
                }
                let credit = match w.trigger {
                    Trigger::Level => true,
                    // The wait consumed a due report (or dropped an fd with
                    // nothing left to say); only a new wake-up or arming
                    // gives another.
                    Trigger::Edge => p.rearmed.contains(serial) || (w.credit && !snap.in_sim),
                    Trigger::Oneshot => {
                        p.rearmed.contains(serial) || (w.credit && !(snap.in_sim && !snap.ready.is_empty()))
                    }
                };
                self.watchers.get_mut(&snap.fd).expect("live").credit = credit;
            }
        }
        // Timers: every timer due when the pass began has fired.
        if let Some(now) = p.now {
            for t in &self.timers {
                if let TState::Pending { deadline, seq } = t.state {
                    assert!(
                        deadline > now.as_nanos() || seq >= p.seq_limit,
                        "timer {:?} due at {deadline} (seq {seq}) did not fire in the pass at {now:?} (limit {})",
                        t.id,
                        p.seq_limit
                    );
                }
            }
        }
        // Waker: a ring before the wait with a callback and a count is a
        // callback in this pass.
        if !p.wake_called && p.wake_live_start && !p.wake_touched {
            let due = (p.rung_start == Some(true) && p.pending_start > 0) || (p.signaled_in_batch && self.pending > 0);
            assert!(!due, "the waker rang (count {}) but the wake-up callback did not run", self.pending);
        }
        self.rung = if p.wake_called {
            Some(p.signaled_after_wake)
        } else {
            match p.last_signaller {
                None | Some(Kind::Io | Kind::Signal) => Some(false),
                Some(Kind::Timer | Kind::Wake) => Some(true),
                Some(Kind::Child) => None,
            }
        };
        if !self.doorbell {
            self.rung = Some(false);
        }
        self.scan_owed = match p.last_scan_setter {
            None | Some(Kind::Io | Kind::Signal | Kind::Wake) => Some(false),
            Some(Kind::Timer) => Some(true),
            Some(Kind::Child) => None,
        };
        self.check_children(&p);
    }

    /// Exits that a pass had to deliver, by what it certainly did.
    fn check_children(&mut self, p: &Pass) {
        let before = |e: u64| e < p.epoch;
        for w in &self.pidw {
            let proc = self.procs[self.proc_of(w.pid).expect("watched process")];
            let ended = proc.exit.is_some() && before(proc.exit_epoch);
            assert!(
                !(w.pidfd && ended && before(w.epoch)),
                "pidfd watcher of pid {} (ended before the pass) was not delivered",
                w.pid
            );
        }
        // What a reap in this pass (owed scan, or SIGCHLD read) must have done.
        let mut missed = None;
        for w in &self.pidw {
            let proc = self.procs[self.proc_of(w.pid).expect("watched process")];
            if !w.pidfd && proc.exit.is_some() && before(proc.exit_epoch) && before(w.epoch) {
                missed = Some(format!("SIGCHLD-mode watcher of pid {} kept its exited child", w.pid));
            }
        }
        if let Some(r) = self.reaper
            && before(r.epoch)
            && p.reaper_start == Some(r.id)
            && !p.hidden_touched
        {
            for c in &self.procs {
                let blocked = self.hidden && self.procs.iter().any(|q| q.parked && q.zombie() && q.pid < c.pid);
                if c.zombie() && !c.parked && before(c.exit_epoch) && !p.pid_touched.contains(&c.pid) && !blocked {
                    missed = Some(format!("the reaper left exited child {} ({:?})", c.pid, c.exit));
                }
            }
        }
        if let Some(why) = missed {
            if p.scan_start {
                panic!("an owed scan ran, yet {why}");
            }
            self.filter_cands(&why, |c, _| !c.reaped);
        }
    }

    /// The start of every callback.
    fn enter(&mut self, lp: &mut Lp, kind: Kind, obs: Obs) {
        assert!(self.kind.is_none(), "a callback ran inside another");
        self.observe(lp);
        self.advance_cands(obs);
        self.kind = Some(kind);
        self.in_callback = true;
        self.ops_callbacks += 1;
        if let Some(p) = &mut self.pass {
            p.callbacks += 1;
        }
        if let Some(b) = &mut self.budget {
            *b = b.saturating_sub(1);
            if *b == 0 {
                lp.stop();
                self.stop_pending = true;
                self.stopped_at.get_or_insert(lp.sim().waits());
            }
        }
    }

    /// Runs the callback's reaction, then leaves it.
    fn react_and_leave(&mut self, lp: &mut Lp) {
        if let Some(actions) = self.reactions.pop_front() {
            run_actions(lp, self, &actions);
        }
        self.kind = None;
        self.in_callback = false;
    }
}

// --- callbacks ---

fn on_io(lp: &mut Lp, ctx: &mut Ctx, ev: WatchEvent) {
    io(lp, ctx, ev, false);
}

fn on_io_alt(lp: &mut Lp, ctx: &mut Ctx, ev: WatchEvent) {
    io(lp, ctx, ev, true);
}

fn io(lp: &mut Lp, ctx: &mut Ctx, ev: WatchEvent, alt: bool) {
    trace!("  io {ev:?}");
    ctx.enter(lp, Kind::Io, Obs::Io);
    let w = ctx.watchers.get(&ev.fd()).copied();
    let w = w.unwrap_or_else(|| panic!("callback for fd {} that has no watcher: {ev:?}", ev.fd()));
    assert_eq!(w.id, ev.id(), "callback for a removed or replaced watcher: {ev:?}");
    assert_eq!(w.data, ev.data(), "event data is not the watcher's");
    assert_eq!(w.alt, alt, "the watcher's callback was not the one it was given");
    assert!(lp.is_live(ev.id()));
    assert!(
        routed(ev.side(), ev.ready(), w.interest),
        "side {:?} for {:?} with interest {:?}",
        ev.side(),
        ev.ready(),
        w.interest
    );
    let pass = ctx.pass.as_mut().expect("observed");
    let snap =
        pass.wsnap.get(&w.serial).unwrap_or_else(|| panic!("watcher {} made after the wait got an event", w.serial));
    assert_eq!(ev.ready(), snap.ready, "the report is not what the fd was ready for at the wait");
    let calls = pass.calls.entry(w.serial).or_default();
    assert!(!calls.contains(&ev.side()), "side {:?} twice in one pass: {calls:?}", ev.side());
    assert!(!calls.contains(&Side::Error) && (ev.side() != Side::Error || calls.is_empty()), "error side with others");
    assert!(!(ev.side() == Side::Read && calls.contains(&Side::Write)), "read after write");
    calls.push(ev.side());
    ctx.react_and_leave(lp);
}

fn on_timer(lp: &mut Lp, ctx: &mut Ctx, ev: TimerEvent) {
    timer(lp, ctx, ev, false);
}

fn on_timer_alt(lp: &mut Lp, ctx: &mut Ctx, ev: TimerEvent) {
    timer(lp, ctx, ev, true);
}

fn timer(lp: &mut Lp, ctx: &mut Ctx, ev: TimerEvent, alt: bool) {
    trace!("  timer {ev:?} at {:?}", lp.now());
    ctx.enter(lp, Kind::Timer, Obs::After);
    let id = ev.id();
    let i = ctx.timer(id).unwrap_or_else(|| panic!("callback of a dead timer {id:?}"));
    let t = ctx.timers[i];
    assert_eq!(t.alt, alt, "wrong timer callback");
    assert_eq!(t.data, ev.data(), "timer event data");
    let TState::Pending { deadline, seq } = t.state else { panic!("timer {id:?} fired while {:?}", t.state) };
    let pass = ctx.pass.as_ref().expect("observed");
    let now = lp.now().as_nanos();
    assert!(deadline <= now, "timer {id:?} fired at {now}, before its deadline {deadline}");
    assert!(seq < pass.seq_limit, "timer {id:?} fired in the pass that scheduled it");
    // The earliest of those that may fire, insertion order among equals.
    let first = ctx
        .timers
        .iter()
        .filter_map(|t| match t.state {
            TState::Pending { deadline, seq } if deadline <= now && seq < pass.seq_limit => Some((deadline, seq)),
            _ => None,
        })
        .min();
    assert_eq!(first, Some((deadline, seq)), "timer order");
    assert!(lp.is_live(id));
    let state = match t.interval {
        Some(interval) => {
            let next = lp.deadline(id).expect("a repeating timer is pending while its callback runs").as_nanos();
            check_next_tick(deadline, interval, now, next);
            TState::Pending { deadline: next, seq: ctx.next_seq() }
        }
        None => {
            assert_eq!(lp.deadline(id), None, "a one-shot timer is not pending while it fires");
            assert!(!lp.is_pending(id));
            TState::Firing
        }
    };
    ctx.timers[i].state = state;
    ctx.react_and_leave(lp);
    if let Some(i) = ctx.timer(id)
        && ctx.timers[i].state == TState::Firing
    {
        ctx.timers.remove(i);
    }
}

/// A repeating timer moves to the first tick of its phase grid
/// (`deadline + k * interval`) after `now`; interval zero: the next pass.
fn check_next_tick(deadline: u64, interval: u64, now: u64, next: u64) {
    if interval == 0 {
        assert_eq!(next, now, "an every-pass timer is due again at once");
        return;
    }
    let (d, i, n, x) = (u128::from(deadline), u128::from(interval), u128::from(now), u128::from(next));
    if next == u64::MAX && d + ((n - d) / i + 1) * i >= u128::from(u64::MAX) {
        return; // saturated
    }
    assert!(x > n, "next tick {next} not after now {now}");
    assert_eq!((x - d) % i, 0, "next tick {next} off the grid of {deadline} + k * {interval}");
    assert!(x - i <= n, "next tick {next} skipped a tick after now {now}");
}

fn on_signal(lp: &mut Lp, ctx: &mut Ctx, ev: SignalEvent) {
    trace!("  signal {} count {} value {} code {} pid {}", ev.signo(), ev.count(), ev.value(), ev.code(), ev.pid());
    let last = Rec { signo: ev.signo(), code: ev.code(), pid: ev.pid(), status: ev.status(), value: ev.value() };
    ctx.enter(lp, Kind::Signal, Obs::Signal { signo: ev.signo(), count: ev.count(), last });
    let w = ctx.sigw.get(&ev.signo()).copied();
    let w = w.unwrap_or_else(|| panic!("callback for signal {} that has no watcher", ev.signo()));
    assert_eq!(w.id, ev.id(), "callback for a removed or replaced signal watcher");
    assert_eq!(w.data, ev.data(), "signal event data");
    assert!(lp.is_live(ev.id()));
    assert!(ev.count() > 0);
    let pass = ctx.pass.as_mut().expect("observed");
    assert!(pass.last_signo < Some(ev.signo()), "signal {} after {:?} in one pass", ev.signo(), pass.last_signo);
    pass.last_signo = Some(ev.signo());
    ctx.react_and_leave(lp);
}

fn on_pid(lp: &mut Lp, ctx: &mut Ctx, ev: PidEvent) {
    trace!("  pid {ev:?}");
    ctx.enter(lp, Kind::Child, Obs::Child);
    let i = ctx.pidw.iter().position(|w| w.id == ev.id());
    let old = ctx.wanted();
    let w = ctx.pidw.remove(i.unwrap_or_else(|| panic!("callback of a removed pid watcher: {ev:?}")));
    assert_eq!(w.pid, ev.pid());
    assert_eq!(w.data, ev.data(), "pid event data");
    assert!(!lp.is_live(ev.id()), "a pid watcher is gone when its callback runs");
    let pi = ctx.proc_of(w.pid).expect("watched process");
    let p = ctx.procs[pi];
    let exit = p.exit.unwrap_or_else(|| panic!("pid {} reported before it exited", w.pid));
    if p.child {
        assert!(!p.reaped, "pid {} reported after it was reaped", w.pid);
        assert_eq!(ev.status(), Ok(exit));
        if w.reap {
            ctx.procs[pi].reaped = true;
            ctx.procs[pi].parked = false;
            assert!(!lp.sim().is_zombie(w.pid), "a reaping watcher's child is reaped");
        } else {
            ctx.procs[pi].parked = true;
            assert!(lp.sim().is_zombie(w.pid), "reap(false) leaves the zombie");
        }
    } else {
        assert_eq!(ev.status(), Err(Errno::ECHILD), "a stranger's status is its parent's");
    }
    if !w.pidfd {
        ctx.sync_mask(old);
    }
    ctx.react_and_leave(lp);
}

fn on_reap(lp: &mut Lp, ctx: &mut Ctx, ev: ReapEvent) {
    trace!("  reap {ev:?}");
    ctx.enter(lp, Kind::Child, Obs::Child);
    let r = ctx.reaper.unwrap_or_else(|| panic!("reaper callback without a reaper: {ev:?}"));
    assert_eq!(r.id, ev.id(), "callback of a removed or replaced reaper");
    assert_eq!(r.data, ev.data(), "reap event data");
    let pi = ctx.proc_of(ev.pid()).unwrap_or_else(|| panic!("reaped unknown pid {}", ev.pid()));
    let p = ctx.procs[pi];
    assert!(p.child && p.zombie(), "reaped {} which is no zombie child: {p:?}", ev.pid());
    assert!(!p.parked, "the reaper took {}, kept by a reap(false) watcher", ev.pid());
    assert!(!ctx.pidw.iter().any(|w| w.pid == ev.pid()), "the reaper took {}, which has a pid watcher", ev.pid());
    assert_eq!(Some(ev.status()), p.exit);
    assert!(!lp.sim().is_zombie(ev.pid()));
    ctx.procs[pi].reaped = true;
    ctx.react_and_leave(lp);
}

fn on_wake(lp: &mut Lp, ctx: &mut Ctx, ev: WakeEvent) {
    trace!("  wake {ev:?}");
    ctx.enter(lp, Kind::Wake, Obs::After);
    let w = ctx.wake.unwrap_or_else(|| panic!("wake-up callback without one: {ev:?}"));
    assert_eq!(w.id, ev.id(), "callback of a removed or replaced wake-up registration");
    assert_eq!(w.data, ev.data(), "wake event data");
    assert_eq!(ev.count(), ctx.pending, "the wake-up count is every signal not yet drained");
    assert!(ev.count() > 0);
    let pass = ctx.pass.as_mut().expect("observed");
    assert!(!pass.wake_called, "two wake-up callbacks in one pass");
    assert!(pass.rung_start != Some(false) || pass.signaled_before_wake, "a wake-up callback without a ring");
    pass.wake_called = true;
    ctx.pending = 0;
    ctx.react_and_leave(lp);
}

fn watch_fn(alt: bool) -> fn(&mut Lp, &mut Ctx, WatchEvent) {
    if alt { on_io_alt } else { on_io }
}

fn timer_fn(alt: bool) -> fn(&mut Lp, &mut Ctx, TimerEvent) {
    if alt { on_timer_alt } else { on_timer }
}

// --- actions ---

/// The faults one action may meet: armed just before it, withdrawn after.
#[derive(Clone, Copy, Default)]
struct Faults {
    ctl: Option<Errno>,
    dereg: Option<Errno>,
    object: Option<Errno>,
}

fn run_actions(lp: &mut Lp, ctx: &mut Ctx, actions: &[Action]) {
    let mut fault = None;
    for &a in actions {
        if let Action::Fault(f) = a {
            fault = Some(f);
            continue;
        }
        act(lp, ctx, a, fault.take());
    }
}

fn act(lp: &mut Lp, ctx: &mut Ctx, a: Action, fault: Option<Fault>) {
    trace!(
        "{}{a:?}{}",
        if ctx.in_callback { "    " } else { "" },
        fault.map(|f| format!(" with {f:?}")).unwrap_or_default()
    );
    let mut f = Faults::default();
    match fault {
        Some(Fault::Ctl(e)) => {
            f.ctl = Some(errno(e));
            lp.sim().fail_next(errno(e));
        }
        Some(Fault::Deregister(e)) => {
            let e = errno(e);
            // (Fixed: a full list of refused deregistrations is retried
            // at once, so none is forgotten.)
            f.dereg = Some(e);
            lp.sim().fail_next_deregister(e);
        }
        // Armed by the action itself, only where it makes an object: an
        // object fault cannot be withdrawn.
        Some(Fault::Object(e)) => f.object = Some(errno(e)),
        Some(Fault::Wait(_)) | None => {}
    }
    act_inner(lp, ctx, a, f);
    lp.sim().clear_faults();
    check_killed(lp, ctx);
}

fn check_killed(lp: &mut Lp, ctx: &mut Ctx) {
    let k = lp.sim().killed_by();
    if ctx.cands.iter().all(|c| c.killed_is(k)) {
        return;
    }
    ctx.filter_cands(&format!("killed_by() = {k:?}"), |c, _| c.killed_as(k));
}

/// What a call that may reach the kernel must return, given the faults.
fn ctl_result(f: &Faults, was: bool, wanted: bool) -> Result<(), Error> {
    match (was, wanted) {
        (_, true) => f.ctl.map_or(Ok(()), |e| Err(Error::Os(e))),
        (true, false) => f.dereg.map_or(Ok(()), |e| Err(Error::Os(e))),
        (false, false) => Ok(()),
    }
}

/// What making a kernel object (and registering it) must return.
fn object_result(lp: &mut Lp, f: &Faults) -> Result<(), Error> {
    if let Some(e) = f.object {
        lp.sim().fail_next_object(e);
        return Err(Error::Os(e));
    }
    f.ctl.map_or(Ok(()), |e| Err(Error::Os(e)))
}

fn act_inner(lp: &mut Lp, ctx: &mut Ctx, a: Action, f: Faults) {
    match a {
        Action::Watch { fd, interest, trigger, alt } => {
            let fd = fd_of(fd);
            let interest = interest_of(interest);
            let trig = trigger_of(trigger);
            let old = ctx.watchers.get(&fd).copied();
            let was = old.is_some_and(|w| w.registered());
            let wanted = in_kernel(interest);
            let data = ctx.next_serial();
            let result = lp.watch_with(fd, WatchOptions::new(interest).trigger(trig), data, watch_fn(alt));
            let expect =
                if old.is_none() && ctx.table_len() == W { Err(Error::Capacity) } else { ctl_result(&f, was, wanted) };
            if let Err(e) = expect {
                assert_eq!(result, Err(e), "watch of fd {fd} ({interest:?}): nothing may change");
                return;
            }
            let id = result.unwrap_or_else(|e| panic!("watch of fd {fd} ({interest:?}, {trig:?}): {e:?}"));
            if let Some(o) = old {
                ctx.touch(o.serial);
                assert!(!lp.is_live(o.id), "a replaced watcher's id is stale");
            }
            ctx.watchers.insert(fd, MWatch { id, serial: data, interest, trigger: trig, alt, data, credit: true });
            ctx.ids.push(AnyId::Watch(id));
            if wanted || was {
                ctx.closed.remove(&fd);
            }
            if wanted {
                ctx.rearm(data);
            }
        }
        Action::Modify { which, interest } => {
            if let Some(id) = pick_watch(ctx, which) {
                let interest = interest_of(interest);
                let result = lp.modify(id, interest);
                let trig = ctx.watch_by_id(id).map_or(Trigger::Level, |w| w.trigger);
                apply(ctx, id, interest, trig, result, &f);
            }
        }
        Action::SetTrigger { which, trigger } => {
            if let Some(id) = pick_watch(ctx, which) {
                let result = lp.set_trigger(id, trigger_of(trigger));
                let interest = ctx.watch_by_id(id).map_or(Interest::empty(), |w| w.interest);
                apply(ctx, id, interest, trigger_of(trigger), result, &f);
            }
        }
        Action::Enable { which, sides } | Action::Disable { which, sides } => {
            if let Some(id) = pick_watch(ctx, which) {
                let sides = interest_of(sides);
                let enable = matches!(a, Action::Enable { .. });
                let result = if enable { lp.enable(id, sides) } else { lp.disable(id, sides) };
                let (interest, trig) = match ctx.watch_by_id(id) {
                    Some(w) if enable => (w.interest | sides, w.trigger),
                    Some(w) => (w.interest - sides, w.trigger),
                    None => (Interest::empty(), Trigger::Level),
                };
                apply(ctx, id, interest, trig, result, &f);
            }
        }
        Action::SetWatchCallback { which, alt } => {
            if let Some(id) = pick_watch(ctx, which) {
                let result = lp.set_callback(id, watch_fn(alt));
                match ctx.watch_by_id(id) {
                    Some(w) => {
                        assert_eq!(result, Ok(()));
                        ctx.watchers.values_mut().find(|x| x.id == id).expect("live").alt = alt;
                        ctx.touch(w.serial);
                    }
                    None => assert_eq!(result, Err(Error::NotFound)),
                }
            }
        }
        Action::SetReady { fd, ready } => {
            let fd = fd_of(fd);
            let ready = ready_of(ready);
            lp.sim().set_ready(fd, ready).expect("the Sim has room for every fd");
            ctx.ready[fd as usize] |= ready;
            if let Some(p) = &mut ctx.pass {
                p.fd_touched.insert(fd);
            }
            // A wake-up for an edge watcher that hears of these bits.
            if let Some(w) = ctx.watchers.get_mut(&fd)
                && w.trigger == Trigger::Edge
                && relevant(w.interest).intersects(ready)
            {
                w.credit = true;
                let serial = w.serial;
                ctx.rearm(serial);
            }
        }
        Action::ClearReady { fd, ready } => {
            let fd = fd_of(fd);
            lp.sim().clear_ready(fd, ready_of(ready));
            ctx.ready[fd as usize] -= ready_of(ready);
            if let Some(p) = &mut ctx.pass {
                p.fd_touched.insert(fd);
            }
        }
        Action::CloseFd { fd } => {
            let fd = fd_of(fd);
            lp.sim().close(fd);
            ctx.ready[fd as usize] = Ready::empty();
            ctx.closed.insert(fd);
            if let Some(p) = &mut ctx.pass {
                p.fd_touched.insert(fd);
            }
        }
        Action::After { delay, alt } => {
            let deadline = ctx.base(lp) + duration(delay);
            let data = ctx.next_serial();
            let result = lp.after(duration(delay), data, timer_fn(alt));
            add_timer(ctx, result, deadline, None, alt, data);
        }
        Action::At { at, alt } => {
            let at = Instant::ZERO + duration(at);
            // Inside a pass a past deadline is due now; outside, it is kept.
            let deadline = if ctx.in_callback { at.max(ctx.base(lp)) } else { at };
            let data = ctx.next_serial();
            let result = lp.at(at, data, timer_fn(alt));
            add_timer(ctx, result, deadline, None, alt, data);
        }
        Action::Every { interval, alt } => {
            let deadline = ctx.base(lp) + duration(interval);
            let data = ctx.next_serial();
            let result = lp.every(duration(interval), data, timer_fn(alt));
            add_timer(ctx, result, deadline, Some(ns(duration(interval))), alt, data);
        }
        Action::Rearm { which, delay } => {
            if let Some(id) = pick_timer(ctx, which) {
                let deadline = ctx.base(lp) + duration(delay);
                let result = lp.rearm(id, duration(delay));
                match ctx.timer(id) {
                    Some(i) => {
                        assert_eq!(result, Ok(()));
                        let seq = ctx.next_seq();
                        ctx.timers[i].state = TState::Pending { deadline: deadline.as_nanos(), seq };
                    }
                    None => assert_eq!(result, Err(Error::NotFound), "rearm of a dead timer"),
                }
            }
        }
        Action::SetInterval { which, interval } => {
            if let Some(id) = pick_timer(ctx, which) {
                let interval = interval.map(duration);
                let base = ctx.base(lp);
                let result = lp.set_interval(id, interval);
                let Some(i) = ctx.timer(id) else {
                    assert_eq!(result, Err(Error::NotFound), "set_interval of a dead timer");
                    return;
                };
                assert_eq!(result, Ok(()));
                match interval {
                    Some(d) => {
                        let seq = ctx.next_seq();
                        ctx.timers[i].state = TState::Pending { deadline: (base + d).as_nanos(), seq };
                        ctx.timers[i].interval = Some(ns(d));
                    }
                    None => ctx.timers[i].state = TState::Disabled,
                }
            }
        }
        Action::SetTimerCallback { which, alt } => {
            if let Some(id) = pick_timer(ctx, which) {
                let result = lp.set_timer_callback(id, timer_fn(alt));
                match ctx.timer(id) {
                    Some(i) => {
                        assert_eq!(result, Ok(()));
                        ctx.timers[i].alt = alt;
                    }
                    None => assert_eq!(result, Err(Error::NotFound)),
                }
            }
        }
        Action::Signal { sig } => {
            let s = registrable_signal(sig);
            let data = ctx.next_serial();
            let old = ctx.wanted();
            let mask_before = lp.sim().thread_mask(ctx.cur);
            let expect = if BAD_SIGNALS.contains(&s) {
                Err(Error::Os(Errno::EINVAL))
            } else if old.contains(s) {
                Ok(())
            } else if ctx.wrong_thread() {
                Err(Error::WrongThread)
            } else if old.is_empty() {
                object_result(lp, &f)
            } else {
                Ok(())
            };
            let result = lp.signal(s, data, on_signal);
            if let Err(e) = expect {
                assert_eq!(result.map(|_| ()), Err(e), "signal({s})");
                assert_eq!(lp.sim().thread_mask(ctx.cur), mask_before, "a failed signal() changed the mask");
                return;
            }
            let id = result.unwrap_or_else(|e| panic!("signal({s}): {e:?}"));
            if let Some(w) = ctx.sigw.get(&s) {
                assert!(!lp.is_live(w.id), "a replaced signal watcher's id is stale");
            }
            ctx.sigw.insert(s, MSig { id, data });
            ctx.ids.push(AnyId::Signal(id));
            ctx.sync_mask(old);
        }
        Action::Raise { sig } => {
            let s = signal_of(sig);
            let result = lp.sim().raise(s);
            raised(ctx, 0, Rec { signo: s, code: 0, pid: 2000, status: 0, value: 0 }, result);
        }
        Action::Queue { sig, value } => {
            let s = signal_of(sig);
            let v = u64::from(value);
            let result = lp.sim().queue(s, v);
            raised(ctx, 0, Rec { signo: s, code: -1, pid: 2000, status: 0, value: v }, result);
        }
        Action::RaiseInThread { tid, sig } => {
            let (t, s) = (tid_of(tid), signal_of(sig));
            let result = lp.sim().raise_in_thread(t, s);
            raised(ctx, t, Rec { signo: s, code: -6, pid: 2000, status: 0, value: 0 }, result);
        }
        Action::BlockInThread { tid, sig, block } => {
            let (t, s) = (tid_of(tid), signal_of(sig));
            let loop_holds = (ctx.holder == t && ctx.wanted().contains(s)) || ctx.owed[t as usize].contains(s);
            if loop_holds {
                return; // the program keeps its hands off what the loop holds
            }
            let ti = t as usize;
            ctx.program[ti] = if block { ctx.program[ti].with(s) } else { ctx.program[ti].without(s) };
            let mask = ctx.mask(t);
            lp.sim().set_thread_mask(t, mask);
            let view = ctx.view();
            for c in &mut ctx.cands {
                c.default_actions(&view);
            }
        }
        Action::SpawnChild | Action::SpawnStranger => {
            if ctx.procs.len() >= MAX_SPAWNS {
                return;
            }
            let child = matches!(a, Action::SpawnChild);
            let result = if child { lp.sim().spawn_child() } else { lp.sim().spawn_stranger() };
            let live = ctx.procs.iter().filter(|p| p.exists()).count();
            if live == N {
                assert_eq!(result, Err(Error::Capacity));
                return;
            }
            let pid = FIRST_PID + ctx.procs.len() as i32;
            assert_eq!(result, Ok(pid));
            ctx.procs.push(MProc { pid, child, exit: None, exit_epoch: 0, reaped: false, parked: false });
        }
        Action::Exit { which, status } => {
            if ctx.procs.is_empty() {
                return;
            }
            let pi = usize::from(which) % ctx.procs.len();
            let p = ctx.procs[pi];
            let status = status_of(status);
            let result = lp.sim().exit(p.pid, status);
            if !p.exists() || p.exit.is_some() {
                assert_eq!(result, Err(Errno::ESRCH));
                return;
            }
            assert_eq!(result, Ok(()));
            ctx.procs[pi].exit = Some(status);
            ctx.procs[pi].exit_epoch = ctx.epoch;
            if p.child {
                let rec = sigchld_record(p.pid, status);
                let view = ctx.view();
                for c in &mut ctx.cands {
                    let _ = c.raise(0, rec, &view);
                }
            }
        }
        Action::Pid { which, reap } => pid_action(lp, ctx, which, reap, &f),
        Action::Reaper => {
            let data = ctx.next_serial();
            let old = ctx.wanted();
            let had = ctx.reaper;
            let expect = if had.is_some() || old.contains(SIGCHLD) {
                Ok(())
            } else if ctx.wrong_thread() {
                Err(Error::WrongThread)
            } else if old.is_empty() {
                object_result(lp, &f)
            } else {
                Ok(())
            };
            let result = lp.reaper(data, on_reap);
            if let Err(e) = expect {
                assert_eq!(result.map(|_| ()), Err(e), "reaper()");
                return;
            }
            let id = result.unwrap_or_else(|e| panic!("reaper(): {e:?}"));
            if let Some(h) = had {
                assert!(!lp.is_live(h.id), "a replaced reaper's id is stale");
            }
            ctx.reaper = Some(MReaper { id, data, epoch: ctx.epoch });
            ctx.ids.push(AnyId::Reaper(id));
            ctx.set_scan_owed();
            if let Some(p) = &mut ctx.pass {
                p.reaper_start = None;
            }
            ctx.sync_mask(old);
        }
        Action::RefusePidfds { how } => {
            let refusal = [None, Some(Errno::ENOSYS), Some(Errno::EPERM)][usize::from(how) % 3];
            lp.sim().refuse_pidfds(refusal);
            ctx.refuse = refusal;
        }
        Action::HideChildren { hidden } => {
            lp.sim().hide_children_list(hidden);
            ctx.hidden = hidden;
            if let Some(p) = &mut ctx.pass {
                p.hidden_touched = true;
            }
        }
        Action::Waker | Action::OnWake => {
            let expect = if ctx.doorbell { Ok(()) } else { object_result(lp, &f) };
            let data = ctx.next_serial();
            let result = if matches!(a, Action::Waker) {
                lp.waker().map(|w| (Some(w), None))
            } else {
                lp.on_wake(data, on_wake).map(|id| (None, Some(id)))
            };
            if let Err(e) = expect {
                assert_eq!(result.map(|_| ()), Err(e), "{a:?}");
                return;
            }
            let (waker, id) = result.unwrap_or_else(|e| panic!("{a:?}: {e:?}"));
            ctx.doorbell = true;
            if let Some(w) = waker {
                assert!(ctx.waker.is_none_or(|old| old == w), "the loop has one waker");
                ctx.waker = Some(w);
            }
            if let Some(id) = id {
                if let Some(old) = ctx.wake {
                    assert!(!lp.is_live(old.id), "a replaced wake-up registration's id is stale");
                }
                ctx.wake = Some(MWake { id, data });
                ctx.ids.push(AnyId::Wake(id));
                if let Some(p) = &mut ctx.pass {
                    p.wake_touched = true;
                }
            }
        }
        Action::Wake { n } => {
            let Some(w) = ctx.waker else { return };
            let n = u64::from(n);
            assert_eq!(w.signal(n), Ok(()));
            ctx.pending = ctx.pending.saturating_add(n);
            ctx.rung = Some(true);
            let kind = ctx.kind;
            if let (Some(p), Some(kind)) = (&mut ctx.pass, kind) {
                if p.wake_called {
                    p.signaled_after_wake = true;
                } else {
                    p.signaled_before_wake = true;
                    if matches!(kind, Kind::Io | Kind::Signal) && n > 0 {
                        p.signaled_in_batch = true;
                    }
                }
                p.last_signaller = Some(kind);
            }
        }
        Action::Drain => {
            let Some(w) = ctx.waker else { return };
            assert_eq!(w.drain(), Ok(ctx.pending), "drain returns every signal not yet drained");
            ctx.pending = 0;
            if let Some(p) = &mut ctx.pass {
                p.wake_touched = true;
            }
        }
        Action::Remove { which } => {
            if ctx.ids.is_empty() {
                return;
            }
            let id = ctx.ids[usize::from(which) % ctx.ids.len()];
            remove(lp, ctx, id, &f);
        }
        Action::SetData { which, data } => {
            if ctx.ids.is_empty() {
                return;
            }
            let id = ctx.ids[usize::from(which) % ctx.ids.len()];
            let data = u64::from(data) << 32 | ctx.next_serial();
            set_data(lp, ctx, id, data);
        }
        Action::Stop => {
            lp.stop();
            ctx.stop_pending = true;
            if ctx.in_callback {
                ctx.stopped_at.get_or_insert(lp.sim().waits());
            }
        }
        Action::Reenter => {
            if ctx.in_callback {
                assert_eq!(lp.run_once(ctx, Some(Duration::ZERO)), Err(Error::Reentrant));
                assert_eq!(lp.run(ctx), Err(Error::Reentrant));
            }
        }
        Action::Fault(_) => {}
    }
}

/// A signal was sent: each candidate takes it (or says the queue is full).
fn raised(ctx: &mut Ctx, tid: i32, rec: Rec, result: Result<(), Errno>) {
    let ok = match result {
        Ok(()) => true,
        Err(Errno::EAGAIN) => false,
        Err(e) => panic!("raising {rec:?}: {e:?}"),
    };
    ctx.filter_cands(&format!("raising {} -> {result:?}", rec.signo), |c, view| c.raise(tid, rec, view).is_ok() == ok);
}

fn pick_watch(ctx: &Ctx, which: u8) -> Option<WatchId> {
    let ids: Vec<WatchId> =
        ctx.ids.iter().filter_map(|i| if let AnyId::Watch(w) = i { Some(*w) } else { None }).collect();
    (!ids.is_empty()).then(|| ids[usize::from(which) % ids.len()])
}

fn pick_timer(ctx: &Ctx, which: u8) -> Option<TimerId> {
    (!ctx.timer_ids.is_empty()).then(|| ctx.timer_ids[usize::from(which) % ctx.timer_ids.len()])
}

/// A change of interest or trigger of a watcher, in the model, checked
/// against what the loop returned.
fn apply(ctx: &mut Ctx, id: WatchId, interest: Interest, trig: Trigger, result: Result<(), Error>, f: &Faults) {
    let Some(w) = ctx.watch_by_id(id) else {
        assert_eq!(result, Err(Error::NotFound), "change of a stale watcher id");
        return;
    };
    let wanted = in_kernel(interest);
    let expect = ctl_result(f, w.registered(), wanted);
    assert_eq!(result, expect, "change of watcher {} to {interest:?} {trig:?}", w.serial);
    if expect.is_err() {
        return;
    }
    let fd = *ctx.watchers.iter().find(|(_, x)| x.id == id).expect("live").0;
    let entry = ctx.watchers.get_mut(&fd).expect("live");
    entry.interest = interest;
    entry.trigger = trig;
    if wanted {
        entry.credit = true;
    }
    let serial = entry.serial;
    if wanted || w.registered() {
        ctx.closed.remove(&fd);
    }
    ctx.touch(serial);
    if wanted {
        ctx.rearm(serial);
    }
}

fn add_timer(
    ctx: &mut Ctx,
    result: Result<TimerId, Error>,
    deadline: Instant,
    interval: Option<u64>,
    alt: bool,
    data: u64,
) {
    if ctx.timers.len() == T {
        assert_eq!(result.map(|_| ()), Err(Error::Capacity), "timer added to a full table");
        return;
    }
    let id = result.expect("timer with room");
    assert!(!ctx.timer_ids.contains(&id), "timer id handed out twice");
    let seq = ctx.next_seq();
    ctx.timers.push(MTimer { id, state: TState::Pending { deadline: deadline.as_nanos(), seq }, interval, alt, data });
    ctx.timer_ids.push(id);
    ctx.ids.push(AnyId::Timer(id));
}

fn pid_action(lp: &mut Lp, ctx: &mut Ctx, which: u8, reap: bool, f: &Faults) {
    let pid = ctx.pid_target(which);
    if !reap && ctx.reap_false >= W - 1 {
        // The loop refuses (`Capacity`) a reap(false) watcher once W zombies
        // are kept or could be (it used to forget the oldest); the model
        // does not predict that refusal, so it stays below it.
        return;
    }
    let proc = ctx.proc_of(pid).map(|i| ctx.procs[i]);
    let exists = proc.is_some_and(|p| p.exists());
    let child = proc.is_some_and(|p| p.child && !p.reaped);
    let data = ctx.next_serial();
    let old = ctx.wanted();
    let mut mode_switch = None;
    let mut f = *f;
    let expect: Result<bool, Error> = 'e: {
        if pid <= 0 {
            break 'e Err(Error::Os(Errno::EINVAL));
        }
        if ctx.pidw.iter().any(|w| w.pid == pid) {
            break 'e Err(Error::AlreadyWatched);
        }
        if ctx.sigchld_mode.is_none() {
            match ctx.refuse {
                Some(e) => mode_switch = Some(e),
                None => {
                    if !exists {
                        break 'e Err(Error::Os(Errno::ESRCH));
                    }
                    match f.object.take() {
                        // ENOSYS and EPERM from pidfd_open mean pidfds are
                        // refused (old kernel, seccomp): SIGCHLD mode from now on.
                        Some(e @ (Errno::ENOSYS | Errno::EPERM)) => {
                            lp.sim().fail_next_object(e);
                            mode_switch = Some(e);
                        }
                        Some(e) => {
                            lp.sim().fail_next_object(e);
                            break 'e Err(Error::Os(e));
                        }
                        None => {}
                    }
                }
            }
        }
        if mode_switch.is_none() && ctx.sigchld_mode.is_none() {
            // A pidfd: then a table slot, then its registration.
            if ctx.table_len() == W {
                break 'e Err(Error::Capacity);
            }
            if let Some(e) = f.ctl {
                break 'e Err(Error::Os(e));
            }
            break 'e Ok(true);
        }
        // SIGCHLD mode: only children can be watched.
        if !child {
            break 'e Err(Error::Os(if exists { Errno::ECHILD } else { Errno::ESRCH }));
        }
        if ctx.table_len() == W {
            break 'e Err(Error::Capacity);
        }
        if !old.contains(SIGCHLD) {
            if ctx.wrong_thread() {
                break 'e Err(Error::WrongThread);
            }
            if old.is_empty() {
                if let Err(e) = object_result(lp, &f) {
                    break 'e Err(e);
                }
            }
        }
        Ok(false)
    };
    let result = lp.pid_with(pid, PidOptions::default().reap(reap), data, on_pid);
    if let Some(e) = mode_switch {
        ctx.sigchld_mode = Some(e);
    }
    let pidfd = match expect {
        Err(e) => {
            assert_eq!(result.map(|_| ()), Err(e), "pid({pid}, reap {reap})");
            return;
        }
        Ok(pidfd) => pidfd,
    };
    let id = result.unwrap_or_else(|e| panic!("pid({pid}, reap {reap}): {e:?}"));
    ctx.pidw.push(MPidW { id, pid, reap, data, pidfd, epoch: ctx.epoch });
    ctx.ids.push(AnyId::Pid(id));
    if !reap {
        ctx.reap_false += 1;
    }
    if let Some(p) = &mut ctx.pass {
        p.pid_touched.insert(pid);
    }
    if !pidfd {
        ctx.set_scan_owed();
        ctx.sync_mask(old);
    }
}

fn remove(lp: &mut Lp, ctx: &mut Ctx, id: AnyId, f: &Faults) {
    match id {
        AnyId::Watch(id) => {
            let live = ctx.watch_by_id(id);
            assert_eq!(lp.remove(id), live.is_some(), "remove of {id:?}");
            if let Some(w) = live {
                let fd = *ctx.watchers.iter().find(|(_, x)| x.id == id).expect("live").0;
                ctx.watchers.remove(&fd);
                ctx.touch(w.serial);
                if w.registered() && f.dereg.is_some() {
                    ctx.stale_regs.insert(fd);
                    ctx.failed_deregs += 1;
                }
                assert!(!lp.is_live(id));
            }
        }
        AnyId::Timer(id) => {
            let live = ctx.timer(id);
            assert_eq!(lp.remove(id), live.is_some(), "remove of {id:?}");
            if let Some(i) = live {
                ctx.timers.remove(i);
            }
        }
        AnyId::Signal(id) => {
            let live = ctx.sigw.iter().find(|(_, w)| w.id == id).map(|(s, _)| *s);
            assert_eq!(lp.remove(id), live.is_some(), "remove of {id:?}");
            if let Some(s) = live {
                let old = ctx.wanted();
                ctx.sigw.remove(&s);
                ctx.sync_mask(old);
            }
        }
        AnyId::Pid(id) => {
            let live = ctx.pidw.iter().position(|w| w.id == id);
            assert_eq!(lp.remove(id), live.is_some(), "remove of {id:?}");
            if let Some(i) = live {
                let old = ctx.wanted();
                let w = ctx.pidw.remove(i);
                if let Some(p) = &mut ctx.pass {
                    p.pid_touched.insert(w.pid);
                }
                if w.pidfd && f.dereg.is_some() {
                    ctx.failed_deregs += 1;
                }
                ctx.sync_mask(old);
            }
        }
        AnyId::Reaper(id) => {
            let live = ctx.reaper.is_some_and(|r| r.id == id);
            assert_eq!(lp.remove(id), live, "remove of {id:?}");
            if live {
                let old = ctx.wanted();
                ctx.reaper = None;
                ctx.sync_mask(old);
            }
        }
        AnyId::Wake(id) => {
            let live = ctx.wake.is_some_and(|w| w.id == id);
            assert_eq!(lp.remove(id), live, "remove of {id:?}");
            if live {
                ctx.wake = None;
                if let Some(p) = &mut ctx.pass {
                    p.wake_touched = true;
                }
            }
        }
    }
}

fn set_data(lp: &mut Lp, ctx: &mut Ctx, id: AnyId, data: u64) {
    let (result, live) = match id {
        AnyId::Watch(id) => {
            let r = lp.set_data(id, data);
            let live = ctx.watchers.values_mut().find(|w| w.id == id).map(|w| w.data = data).is_some();
            (r, live)
        }
        AnyId::Timer(id) => {
            let r = lp.set_data(id, data);
            let live = ctx.timers.iter_mut().find(|t| t.id == id).map(|t| t.data = data).is_some();
            (r, live)
        }
        AnyId::Signal(id) => {
            let r = lp.set_data(id, data);
            let live = ctx.sigw.values_mut().find(|w| w.id == id).map(|w| w.data = data).is_some();
            (r, live)
        }
        AnyId::Pid(id) => {
            let r = lp.set_data(id, data);
            let live = ctx.pidw.iter_mut().find(|w| w.id == id).map(|w| w.data = data).is_some();
            (r, live)
        }
        AnyId::Reaper(id) => {
            let r = lp.set_data(id, data);
            let live = ctx.reaper.as_mut().filter(|r| r.id == id).map(|r| r.data = data).is_some();
            (r, live)
        }
        AnyId::Wake(id) => {
            let r = lp.set_data(id, data);
            let live = ctx.wake.as_mut().filter(|w| w.id == id).map(|w| w.data = data).is_some();
            (r, live)
        }
    };
    assert_eq!(result, if live { Ok(()) } else { Err(Error::NotFound) }, "set_data of {id:?}");
}

// --- the state, outside passes ---

fn is_live(lp: &Lp, id: AnyId) -> bool {
    match id {
        AnyId::Watch(i) => lp.is_live(i),
        AnyId::Timer(i) => lp.is_live(i),
        AnyId::Signal(i) => lp.is_live(i),
        AnyId::Pid(i) => lp.is_live(i),
        AnyId::Reaper(i) => lp.is_live(i),
        AnyId::Wake(i) => lp.is_live(i),
    }
}

fn model_live(ctx: &Ctx, id: AnyId) -> bool {
    match id {
        AnyId::Watch(i) => ctx.watch_by_id(i).is_some(),
        AnyId::Timer(i) => ctx.timer(i).is_some(),
        AnyId::Signal(i) => ctx.sigw.values().any(|w| w.id == i),
        AnyId::Pid(i) => ctx.pidw.iter().any(|w| w.id == i),
        AnyId::Reaper(i) => ctx.reaper.is_some_and(|r| r.id == i),
        AnyId::Wake(i) => ctx.wake.is_some_and(|w| w.id == i),
    }
}

/// The loop and the Sim agree with the model.
fn check(lp: &mut Lp, ctx: &mut Ctx) {
    assert_eq!(lp.watcher_count(), ctx.table_len(), "watcher count");
    assert_eq!(lp.timer_count(), ctx.timers.len(), "timer count");
    for id in &ctx.ids {
        assert_eq!(is_live(lp, *id), model_live(ctx, *id), "liveness of {id:?}");
    }
    let mut user_regs = 0;
    for fd in 0..i32::from(FDS) {
        let w = ctx.watchers.get(&fd);
        assert_eq!(lp.watcher_of(fd), w.map(|w| w.id), "watcher_of({fd})");
        if let Some(w) = w {
            assert_eq!(lp.interest(w.id), Some(w.interest), "interest of fd {fd}");
        }
        assert_eq!(lp.sim().ready(fd), ctx.ready[fd as usize], "readiness of fd {fd} (the script's own record)");
        let reg = lp.sim().registration(fd);
        match w {
            Some(w) if w.registered() && !ctx.closed.contains(&fd) => {
                let reg = reg.unwrap_or_else(|| panic!("watcher on fd {fd} is not registered with the Sim"));
                assert_eq!((reg.interest, reg.trigger), (w.interest, w.trigger), "Sim registration of fd {fd}");
                if w.trigger == Trigger::Oneshot {
                    assert_eq!(reg.armed, w.credit, "oneshot fd {fd} armed");
                }
                user_regs += 1;
            }
            _ if ctx.stale_regs.contains(&fd) => user_regs += usize::from(reg.is_some()),
            _ => assert_eq!(reg, None, "the Sim holds fd {fd}, which no registered watcher has"),
        }
    }
    assert_eq!(lp.sim().open_objects(), ctx.open_objects(), "kernel objects open (doorbell, signalfd, pidfds)");
    assert_eq!(lp.sim().registered(), user_regs + ctx.open_objects(), "Sim registrations");
    for t in &ctx.timers {
        let deadline = match t.state {
            TState::Pending { deadline, .. } => Some(Instant::from_nanos(deadline)),
            _ => None,
        };
        assert_eq!(lp.deadline(t.id), deadline, "deadline of {:?}", t.id);
        assert_eq!(lp.is_pending(t.id), deadline.is_some());
    }
    for tid in 1..=3 {
        assert_eq!(lp.sim().thread_mask(tid), ctx.mask(tid), "signal mask of thread {tid}");
    }
    for p in &ctx.procs {
        if p.child {
            assert_eq!(lp.sim().is_zombie(p.pid), p.zombie(), "zombie state of {}", p.pid);
        }
    }
    let mode = ctx.sigchld_mode.map_or(ChildMode::Pidfd, ChildMode::Sigchld);
    assert_eq!(lp.child_mode(), mode);
    check_killed(lp, ctx);
}

fn run_once(lp: &mut Lp, ctx: &mut Ctx, timeout: Option<u8>, fault: Option<Errno>) {
    let waits = lp.sim().waits();
    ctx.waits_seen = waits;
    ctx.ops_callbacks = 0;
    if let Some(e) = fault {
        lp.sim().fail_next_wait(e);
    }
    let result = lp.run_once(ctx, timeout.map(|ms| Duration::from_millis(u64::from(ms))));
    lp.sim().clear_faults();
    if let Some(e) = fault {
        assert_eq!(result, Err(Error::Os(e)), "injected wait fault");
        assert_eq!(ctx.ops_callbacks, 0, "callbacks after a failed wait");
        assert_eq!(lp.sim().waits(), waits + 1);
        ctx.waits_seen = waits + 1;
        ctx.failed_wait();
        return;
    }
    let calls = result.unwrap_or_else(|e| panic!("run_once: {e:?}"));
    assert_eq!(lp.sim().waits(), waits + 1, "one wait per pass");
    ctx.finish_passes(lp);
    assert_eq!(calls, ctx.ops_callbacks, "run_once counts every callback it ran");
    assert_eq!(lp.now(), lp.sim().clock(), "the pass's now is the clock after its wait");
}

fn run(lp: &mut Lp, ctx: &mut Ctx, fault: Option<Errno>) {
    let waits = lp.sim().waits();
    ctx.waits_seen = waits;
    ctx.ops_callbacks = 0;
    ctx.stopped_at = None;
    let idle = ctx.stop_pending || !ctx.has_work();
    if let Some(e) = fault {
        lp.sim().fail_next_wait(e);
    }
    lp.sim().set_stall_error(Some(Errno::ETIMEDOUT));
    ctx.budget = Some(RUN_BUDGET);
    let result = lp.run(ctx);
    ctx.budget = None;
    lp.sim().set_stall_error(None);
    lp.sim().clear_faults();
    let stop_before = ctx.stop_pending && ctx.stopped_at.is_none() && idle;
    ctx.stop_pending = false;
    if idle {
        assert_eq!(
            result,
            Ok(()),
            "run with {} returns at once",
            if stop_before { "stop() pending" } else { "nothing to wait for" }
        );
        assert_eq!(lp.sim().waits(), waits, "run waited although it had nothing to wait for");
        return;
    }
    if let Some(e) = fault {
        assert_eq!(result, Err(Error::Os(e)), "injected wait fault");
        assert_eq!(lp.sim().waits(), waits + 1);
        ctx.waits_seen = waits + 1;
        ctx.failed_wait();
        return;
    }
    match result {
        Ok(()) => ctx.finish_passes(lp),
        Err(Error::Os(Errno::ETIMEDOUT)) => {
            // The last wait found nothing and had no deadline: it failed.
            let waits = lp.sim().waits();
            ctx.catch_up(lp, waits - 1);
            ctx.waits_seen = waits;
            ctx.failed_wait();
        }
        other => panic!("run: {other:?}"),
    }
    if let Some(w) = ctx.stopped_at {
        assert_eq!(lp.sim().waits(), w, "run waited again after stop()");
    } else if result.is_ok() {
        assert!(!ctx.has_work(), "run returned Ok without stop() while it had work");
    }
}

fn setup(lp: &mut Lp, ctx: &mut Ctx, workers_block: bool) {
    // Three threads exist from the start, with nothing blocked.
    for tid in 1..=3 {
        assert_eq!(lp.sim().thread_mask(tid), SigSet::empty());
    }
    if workers_block {
        let all = SIGNALS.iter().fold(SigSet::empty(), |s, &n| s.with(n));
        for tid in 2..=3 {
            ctx.program[tid] = all;
            lp.sim().set_thread_mask(tid as i32, all);
        }
    }
    ctx.cur = 1;
    ctx.cands = vec![Cand::default()];
    ctx.rung = Some(false);
    ctx.scan_owed = Some(false);
    ctx.waits_seen = lp.sim().waits();
}

fuzz_target!(|input: Input| {
    let mut lp: Lp = Loop::with_backend(Sim::new()).expect("a Sim loop");
    let mut ctx = Ctx { reactions: input.reactions.into_iter().take(MAX_REACTIONS).collect(), ..Ctx::default() };
    setup(&mut lp, &mut ctx, input.workers_block);
    let mut fault = None;
    for op in input.ops.into_iter().take(MAX_OPS) {
        if !matches!(op, Op::Act(_)) {
            trace!("{op:?}{}", fault.map(|f| format!(" with {f:?}")).unwrap_or_default());
        }
        match op {
            Op::Act(Action::Fault(f)) => {
                fault = Some(f);
                continue;
            }
            Op::Act(a) => act(&mut lp, &mut ctx, a, fault.take()),
            Op::Advance { ms } => {
                lp.sim().advance(duration(ms));
            }
            Op::SetThread { tid } => {
                let t = tid_of(tid);
                assert!(lp.sim().set_thread(t));
                ctx.cur = t;
            }
            Op::WakeInNextWait { n } => {
                if let Some(w) = ctx.waker {
                    let result = lp.sim().wake_in_next_wait(w, u64::from(n));
                    if ctx.next_wait.len() == 4 {
                        assert_eq!(result, Err(Error::Capacity));
                    } else {
                        assert_eq!(result, Ok(()));
                        ctx.next_wait.push(u64::from(n));
                    }
                }
            }
            Op::RunOnce { timeout } => {
                let f = match fault.take() {
                    Some(Fault::Wait(e)) => Some(errno(e)),
                    _ => None,
                };
                run_once(&mut lp, &mut ctx, timeout, f);
            }
            Op::Run => {
                let f = match fault.take() {
                    Some(Fault::Wait(e)) => Some(errno(e)),
                    _ => None,
                };
                run(&mut lp, &mut ctx, f);
            }
        }
        fault = None;
        check(&mut lp, &mut ctx);
    }
});
