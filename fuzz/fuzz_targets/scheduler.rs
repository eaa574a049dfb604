//! The scheduler (`TimerHeap`) against a plain model: a `BTreeMap` keyed by
//! (deadline, seq) for what is pending, and a map of live timers.
//!
//! Checked after every step: pops come in deadline order with FIFO ties and
//! honour the seq limit, nothing is lost or fired twice, a stale key never
//! touches (or reads) the timer that reused its slot, keys stay out of the
//! reserved range, and insert is `Capacity` exactly when the heap is full.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use linux_event::Error;
use linux_event::table::{Key, TimerHeap, TimerState};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Room for three levels of the 8-ary heap (1 + 8 + 64 nodes fill two), so
/// that the sift steps that look past a node's parent run; still small
/// enough that a run fills it and meets `Capacity`.
const CAP: usize = 80;
const MAX_OPS: usize = 512;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum When {
    /// `now + n`.
    Soon(u8),
    /// An absolute deadline anywhere, the extremes included.
    Abs(u64),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Insert {
        deadline: Option<When>,
        interval: Option<u8>,
    },
    /// The index picks a key from every key ever issued, live or stale.
    Cancel(u8),
    Schedule {
        key: u8,
        deadline: Option<When>,
    },
    SetInterval {
        key: u8,
        interval: Option<u8>,
    },
    SetCallback {
        key: u8,
        callback: u32,
    },
    /// Start a pass here: timers scheduled from now on are held back.
    BeginPass,
    /// Advance `now`, then pop one timer (held back as of the last BeginPass).
    PopDue {
        advance: u8,
    },
    Finish(u8),
    /// What the loop does in one pass: pop everything due before the pass
    /// began, reschedule repeating timers, finish one-shots.
    Pass {
        advance: u8,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MState {
    Pending { deadline: u64, seq: u64 },
    Disabled,
    Firing,
}

#[derive(Debug, Clone, Copy)]
struct MTimer {
    key: Key,
    state: MState,
    interval: Option<u64>,
    callback: u32,
}

#[derive(Default)]
struct Model {
    now: u64,
    seq: u64,
    /// The model's sequence number when the current pass began.
    limit: u64,
    live: HashMap<u32, MTimer>,
    pending: BTreeMap<(u64, u64), u32>,
    /// Every key handed out, with the model id it named.
    issued: Vec<(Key, u32)>,
    next_id: u32,
    /// Seqs already popped: each scheduling fires at most once.
    fired: BTreeSet<u64>,
}

impl Model {
    fn when(&self, w: When) -> u64 {
        match w {
            When::Soon(n) => self.now.saturating_add(u64::from(n)),
            When::Abs(t) => t,
        }
    }

    fn pick(&self, i: u8) -> Option<(Key, u32)> {
        if self.issued.is_empty() { None } else { Some(self.issued[usize::from(i) % self.issued.len()]) }
    }

    fn live_id(&self, key: Key) -> Option<u32> {
        self.issued
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, id)| *id)
            .filter(|id| self.live.get(id).is_some_and(|t| t.key == key))
    }

    fn unschedule(&mut self, id: u32) {
        if let MState::Pending { deadline, seq } = self.live[&id].state {
            assert_eq!(self.pending.remove(&(deadline, seq)), Some(id));
        }
    }

    fn schedule(&mut self, id: u32, deadline: Option<u64>) {
        self.unschedule(id);
        let state = match deadline {
            Some(d) => {
                let seq = self.seq;
                self.seq += 1;
                self.pending.insert((d, seq), id);
                MState::Pending { deadline: d, seq }
            }
            None => MState::Disabled,
        };
        self.live.get_mut(&id).unwrap().state = state;
    }

    fn free(&mut self, id: u32) {
        self.unschedule(id);
        self.live.remove(&id);
    }

    /// What `pop_due(now, limit)` must return: (id, deadline).
    fn due(&self, now: u64, limit: u64) -> Option<(u32, u64, u64)> {
        let (&(deadline, seq), &id) = self.pending.iter().next()?;
        (deadline <= now && seq < limit).then_some((id, deadline, seq))
    }
}

fn pop(h: &mut TimerHeap<u32, CAP>, m: &mut Model, now: u64, limit: u64) -> Option<(Key, Option<u64>, u64)> {
    let got = h.pop_due(now);
    let want = m.due(now, limit);
    match (got, want) {
        (None, None) => None,
        (Some(d), Some((id, deadline, seq))) => {
            let t = m.live[&id];
            assert_eq!(d.key, t.key, "popped the wrong timer");
            assert_eq!(d.deadline, deadline);
            assert_eq!(d.interval, t.interval);
            assert_eq!(d.callback, t.callback);
            assert!(m.fired.insert(seq), "fired twice");
            m.unschedule(id);
            m.live.get_mut(&id).unwrap().state = if t.interval.is_some() { MState::Disabled } else { MState::Firing };
            Some((d.key, d.interval, d.deadline))
        }
        (got, want) => panic!("pop_due({now}, {limit}) gave {got:?}, model says {want:?}"),
    }
}

fn finish(h: &mut TimerHeap<u32, CAP>, m: &mut Model, key: Key) {
    h.finish(key);
    if let Some(id) = m.live_id(key)
        && m.live[&id].state == MState::Firing
    {
        m.free(id);
    }
}

fn check(h: &mut TimerHeap<u32, CAP>, m: &Model) {
    assert_eq!(h.len(), m.live.len());
    assert_eq!(h.is_empty(), m.live.is_empty());
    assert_eq!(h.pending(), m.pending.len());
    assert_eq!(h.peek_deadline(), m.pending.keys().next().map(|k| k.0));
    for &(key, id) in &m.issued {
        match m.live.get(&id).filter(|t| t.key == key) {
            Some(t) => {
                let (state, deadline) = match t.state {
                    MState::Pending { deadline, .. } => (TimerState::Pending, Some(deadline)),
                    MState::Disabled => (TimerState::Disabled, None),
                    MState::Firing => (TimerState::Firing, None),
                };
                assert_eq!(h.state(key), Some(state), "live key {key:?}");
                assert_eq!(h.deadline(key), deadline);
                assert_eq!(h.interval(key), Some(t.interval));
                assert_eq!(h.callback(key), Some(t.callback), "callback of live key {key:?}");
            }
            None => {
                assert_eq!(h.state(key), None, "stale key {key:?} resolves");
                assert_eq!(h.deadline(key), None);
                assert_eq!(h.interval(key), None);
                assert_eq!(h.callback(key), None, "stale key {key:?} reads a callback");
            }
        }
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut h: TimerHeap<u32, CAP> = TimerHeap::new();
    let mut m = Model::default();
    for op in ops.into_iter().take(MAX_OPS) {
        match op {
            Op::Insert { deadline, interval } => {
                let deadline = deadline.map(|w| m.when(w));
                let interval = interval.map(u64::from);
                let id = m.next_id;
                let result = h.insert(deadline, interval, id);
                if m.live.len() == CAP {
                    assert_eq!(result, Err(Error::Capacity), "insert into a full heap");
                } else {
                    let key = result.expect("insert with room must succeed");
                    assert!((key.slot as usize) < CAP);
                    assert_eq!(key.reserved_index(), None, "a timer key in the reserved range");
                    assert!(m.issued.iter().all(|(k, _)| *k != key), "key {key:?} handed out twice");
                    m.next_id += 1;
                    m.live.insert(id, MTimer { key, state: MState::Disabled, interval, callback: id });
                    m.issued.push((key, id));
                    if deadline.is_some() {
                        m.schedule(id, deadline);
                    }
                }
            }
            Op::Cancel(i) => {
                if let Some((key, _)) = m.pick(i) {
                    let live = m.live_id(key);
                    assert_eq!(h.cancel(key), live.is_some());
                    if let Some(id) = live {
                        m.free(id);
                    }
                }
            }
            Op::Schedule { key, deadline } => {
                if let Some((key, _)) = m.pick(key) {
                    let deadline = deadline.map(|w| m.when(w));
                    let live = m.live_id(key);
                    assert_eq!(h.schedule(key, deadline), live.is_some());
                    if let Some(id) = live {
                        m.schedule(id, deadline);
                    }
                }
            }
            Op::SetInterval { key, interval } => {
                if let Some((key, _)) = m.pick(key) {
                    let interval = interval.map(u64::from);
                    let live = m.live_id(key);
                    assert_eq!(h.set_interval(key, interval), live.is_some());
                    if let Some(id) = live {
                        m.live.get_mut(&id).unwrap().interval = interval;
                    }
                }
            }
            Op::SetCallback { key, callback } => {
                if let Some((key, _)) = m.pick(key) {
                    let live = m.live_id(key);
                    assert_eq!(h.set_callback(key, callback), live.is_some());
                    if let Some(id) = live {
                        m.live.get_mut(&id).unwrap().callback = callback;
                    }
                }
            }
            Op::BeginPass => {
                h.begin_pass();
                m.limit = m.seq;
            }
            Op::PopDue { advance } => {
                m.now = m.now.saturating_add(u64::from(advance));
                let (now, limit) = (m.now, m.limit);
                pop(&mut h, &mut m, now, limit);
            }
            Op::Finish(i) => {
                if let Some((key, _)) = m.pick(i) {
                    finish(&mut h, &mut m, key);
                }
            }
            Op::Pass { advance } => {
                m.now = m.now.saturating_add(u64::from(advance));
                h.begin_pass();
                m.limit = m.seq;
                let limit = m.limit;
                let mut last = None;
                let now = m.now;
                while let Some((key, interval, deadline)) = pop(&mut h, &mut m, now, limit) {
                    assert!(last <= Some(deadline), "deadline order");
                    last = Some(deadline);
                    match interval {
                        Some(i) => {
                            let next = deadline.saturating_add(i.max(1)).max(m.now);
                            assert!(h.schedule(key, Some(next)));
                            let id = m.live_id(key).unwrap();
                            m.schedule(id, Some(next));
                        }
                        None => finish(&mut h, &mut m, key),
                    }
                    check(&mut h, &m);
                }
                // Everything due before the pass has fired.
                assert!(m.pending.iter().all(|(&(d, s), _)| d > m.now || s >= limit), "due timer left behind");
            }
        }
        check(&mut h, &m);
    }
    // Nothing lost: every pending timer is still there to pop, in order.
    h.begin_pass();
    while pop(&mut h, &mut m, u64::MAX, u64::MAX).is_some() {}
    assert!(m.pending.is_empty());
    check(&mut h, &m);
});
