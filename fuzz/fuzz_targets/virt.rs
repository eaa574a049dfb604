//! libvirt's event contract (`linux_event::virt`) on the `Sim` backend,
//! against a plain model.
//!
//! The input is a driver script (the six calls, on the loop's thread or
//! through the table as another thread would; fd readiness; the clock;
//! passes) and a queue of reactions that callbacks perform from inside
//! dispatch (the six calls again, either way, on themselves or anything
//! else). A prepare callback registered after the companion's can also make
//! a call "from another thread" between the companion's look at the table
//! and the wait: the worst moment.
//!
//! Checked after every step:
//! - no callback for a removed handle or timeout, not even later in the
//!   same pass, and none for a handle added or a timeout changed after the
//!   pass's prepare (its fd's events may be about an earlier file);
//! - every armed handle whose events the fd has (its own, plus ERROR and
//!   HANGUP unasked) runs exactly once per pass, with exactly those events,
//!   unless it was changed during the pass before its turn;
//! - a timeout of 0 fires exactly once per pass; one of n ms fires exactly
//!   when n ms have passed since it fired or was (re)armed; -1 never;
//! - every free callback runs exactly once, after dispatch (never inside a
//!   callback), and only for removed registrations;
//! - ids only grow; calls on removed ids are `NotFound`; full tables are
//!   `Capacity` exactly when the model is full; counts agree.

#![no_main]

use arbitrary::Arbitrary;
use core::time::Duration;
use libfuzzer_sys::fuzz_target;
use linux_event::backend::Sim;
use linux_event::virt::{
    FreeEvent, HandleEvent, HandleEvents, HandleId, Released, TimeoutEvent, TimeoutId, Virt, VirtTable,
};
use linux_event::{Error, Loop, PhaseEvent, Ready};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

const H: usize = 6;
const T: usize = 6;
const FDS: u8 = 5;
const MAX_OPS: usize = 192;

type L = Loop<App, 16, 32, Sim<16>>;
type V = Virt<L, H, T>;

/// One table for the whole fuzzing process (emptied after every input):
/// ids keep growing across inputs, which the model does not mind.
static TABLE: VirtTable<L, H, T> = VirtTable::new();

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Call {
    AddHandle { fd: u8, events: u8, free: bool },
    UpdateHandle { pick: u8, events: u8 },
    RemoveHandle { pick: u8 },
    AddTimeout { ms: i8, free: bool },
    UpdateTimeout { pick: u8, ms: i8 },
    RemoveTimeout { pick: u8 },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct Reaction {
    call: Option<Call>,
    /// Through the table, as another thread would (rings the waker).
    remote: bool,
    /// Remove the handle or timeout that is running, first.
    remove_self: bool,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Op {
    Call {
        call: Call,
        remote: bool,
    },
    /// A call made between the companion's prepare and the wait.
    AtWorstMoment {
        call: Call,
    },
    SetReady {
        fd: u8,
        bits: u8,
    },
    Advance {
        ms: u8,
    },
    Pass,
}

#[derive(Arbitrary, Debug)]
struct Input {
    ops: Vec<Op>,
    reactions: Vec<Reaction>,
}

#[derive(Clone, Copy, Debug)]
struct MHandle {
    fd: i32,
    events: HandleEvents,
    free: bool,
    /// Synced into the loop by a prepare (may receive kernel events).
    armed: bool,
}

#[derive(Clone, Copy, Debug)]
struct MTimeout {
    ms: i32,
    free: bool,
    /// When it is due (virtual ns), once synced; `None`: not armed yet.
    due: Option<u64>,
    /// Changed since the last prepare: re-armed at the next one.
    dirty: bool,
}

#[derive(Default)]
struct Model {
    handles: BTreeMap<HandleId, MHandle>,
    timeouts: BTreeMap<TimeoutId, MTimeout>,
    /// Removed, with a free callback due.
    retired: BTreeSet<(bool, i32)>,
    freed: BTreeSet<(bool, i32)>,
    issued_handles: Vec<HandleId>,
    issued_timeouts: Vec<TimeoutId>,
    last_handle: i32,
    last_timeout: i32,
    /// Registrations changed during the running pass: exempt from "must run".
    touched_handles: BTreeSet<HandleId>,
    touched_timeouts: BTreeSet<TimeoutId>,
    /// Expected this pass: handle -> events; timeouts due.
    expect_handles: BTreeMap<HandleId, HandleEvents>,
    expect_timeouts: BTreeSet<TimeoutId>,
    ran_handles: BTreeSet<HandleId>,
    ran_timeouts: BTreeSet<TimeoutId>,
    ready: BTreeMap<i32, Ready>,
}

struct App {
    virt: V,
    model: Model,
    reactions: VecDeque<Reaction>,
    worst_moment: Option<Call>,
    depth: u32,
    now: u64,
}

impl AsMut<V> for App {
    fn as_mut(&mut self) -> &mut V {
        &mut self.virt
    }
}

fn events_of(bits: u8) -> HandleEvents {
    HandleEvents::from_bits_truncate(u32::from(bits))
}

impl Model {
    /// Slots in use: live registrations, and removed ones whose free
    /// callback has not run yet (they hold their slot until it has).
    fn used(&self, handles: bool) -> usize {
        let live = if handles { self.handles.len() } else { self.timeouts.len() };
        live + self.retired.iter().filter(|k| k.0 == handles && !self.freed.contains(k)).count()
    }
}

fn pick<T: Copy>(v: &[T], i: u8) -> Option<T> {
    (!v.is_empty()).then(|| v[usize::from(i) % v.len()])
}

/// Performs `call` and checks its result against the model.
fn perform(app: &mut App, call: Call, remote: bool) {
    let table = app.virt.table();
    let local = table.loop_thread();
    match call {
        Call::AddHandle { fd, events, free } => {
            let fd = i32::from(fd % FDS);
            let events = events_of(events);
            let ff = free.then_some(on_free as linux_event::virt::FreeFn<L>);
            let r = if remote {
                table.add_handle(fd, events, 0, on_handle, ff)
            } else {
                local.add_handle(fd, events, 0, on_handle, ff)
            };
            let m = &mut app.model;
            match r {
                Ok(id) => {
                    assert!(m.used(true) < H, "added beyond capacity");
                    assert!(id.get() > m.last_handle, "handle ids must grow");
                    m.last_handle = id.get();
                    m.handles.insert(id, MHandle { fd, events, free, armed: false });
                    m.issued_handles.push(id);
                    m.touched_handles.insert(id);
                }
                Err(Error::Capacity) => assert_eq!(m.used(true), H, "Capacity with room"),
                Err(e) => panic!("add_handle: {e:?}"),
            }
        }
        Call::UpdateHandle { pick: p, events } => {
            let Some(id) = pick(&app.model.issued_handles, p) else { return };
            let events = events_of(events);
            let r = if remote { table.update_handle(id, events) } else { local.update_handle(id, events) };
            let m = &mut app.model;
            match m.handles.get_mut(&id) {
                Some(h) => {
                    assert_eq!(r, Ok(()));
                    h.events = events;
                    m.touched_handles.insert(id);
                }
                None => assert_eq!(r, Err(Error::NotFound), "update revived {id:?}"),
            }
        }
        Call::RemoveHandle { pick: p } => {
            let Some(id) = pick(&app.model.issued_handles, p) else { return };
            let r = if remote { table.remove_handle(id) } else { local.remove_handle(id) };
            remove_handle_in_model(&mut app.model, id, r);
        }
        Call::AddTimeout { ms, free } => {
            let ms = i32::from(ms).clamp(-1, 40);
            let ff = free.then_some(on_free as linux_event::virt::FreeFn<L>);
            let r = if remote {
                table.add_timeout(ms, 0, on_timeout, ff)
            } else {
                local.add_timeout(ms, 0, on_timeout, ff)
            };
            let m = &mut app.model;
            match r {
                Ok(id) => {
                    assert!(m.used(false) < T, "added beyond capacity");
                    assert!(id.get() > m.last_timeout, "timeout ids must grow");
                    m.last_timeout = id.get();
                    m.timeouts.insert(id, MTimeout { ms, free, due: None, dirty: true });
                    m.issued_timeouts.push(id);
                    m.touched_timeouts.insert(id);
                }
                Err(Error::Capacity) => assert_eq!(m.used(false), T, "Capacity with room"),
                Err(e) => panic!("add_timeout: {e:?}"),
            }
        }
        Call::UpdateTimeout { pick: p, ms } => {
            let Some(id) = pick(&app.model.issued_timeouts, p) else { return };
            let ms = i32::from(ms).clamp(-1, 40);
            let r = if remote { table.update_timeout(id, ms) } else { local.update_timeout(id, ms) };
            let m = &mut app.model;
            match m.timeouts.get_mut(&id) {
                Some(t) => {
                    assert_eq!(r, Ok(()));
                    t.ms = ms;
                    t.dirty = true;
                    m.touched_timeouts.insert(id);
                }
                None => assert_eq!(r, Err(Error::NotFound), "update revived {id:?}"),
            }
        }
        Call::RemoveTimeout { pick: p } => {
            let Some(id) = pick(&app.model.issued_timeouts, p) else { return };
            let r = if remote { table.remove_timeout(id) } else { local.remove_timeout(id) };
            remove_timeout_in_model(&mut app.model, id, r);
        }
    }
}

fn remove_handle_in_model(m: &mut Model, id: HandleId, r: Result<(), Error>) {
    match m.handles.remove(&id) {
        Some(h) => {
            assert_eq!(r, Ok(()));
            if h.free {
                m.retired.insert((true, id.get()));
            }
            m.touched_handles.insert(id);
        }
        None => assert_eq!(r, Err(Error::NotFound), "removed {id:?} twice"),
    }
}

fn remove_timeout_in_model(m: &mut Model, id: TimeoutId, r: Result<(), Error>) {
    match m.timeouts.remove(&id) {
        Some(t) => {
            assert_eq!(r, Ok(()));
            if t.free {
                m.retired.insert((false, id.get()));
            }
            m.touched_timeouts.insert(id);
        }
        None => assert_eq!(r, Err(Error::NotFound), "removed {id:?} twice"),
    }
}

fn react(app: &mut App) {
    let Some(r) = app.reactions.pop_front() else { return };
    if let Some(call) = r.call {
        perform(app, call, r.remote);
    }
}

fn on_handle(_lp: &mut L, app: &mut App, ev: HandleEvent) {
    app.depth += 1;
    let m = &mut app.model;
    let h = m.handles.get(&ev.id()).copied().unwrap_or_else(|| panic!("callback of removed handle {:?}", ev.id()));
    assert!(h.armed, "handle {:?} added after the pass's prepare got an event", ev.id());
    assert_eq!(ev.fd(), h.fd);
    assert!(m.ran_handles.insert(ev.id()), "handle {:?} ran twice in one pass", ev.id());
    if !m.touched_handles.contains(&ev.id()) {
        let want = m.expect_handles.get(&ev.id()).copied();
        assert_eq!(Some(ev.events()), want, "handle {:?} (events {:?}) got the wrong events", ev.id(), h.events);
    }
    let remove_self = app.reactions.front().is_some_and(|r| r.remove_self);
    if remove_self {
        let r = app.virt.remove_handle(ev.id());
        remove_handle_in_model(&mut app.model, ev.id(), r);
    }
    react(app);
    app.depth -= 1;
}

fn on_timeout(lp: &mut L, app: &mut App, ev: TimeoutEvent) {
    app.depth += 1;
    let now = lp.now().as_nanos();
    let m = &mut app.model;
    let t = m.timeouts.get_mut(&ev.id()).unwrap_or_else(|| panic!("callback of removed timeout {:?}", ev.id()));
    assert!(t.ms >= 0, "disabled timeout {:?} fired", ev.id());
    assert!(!t.dirty, "timeout {:?} fired before its change was applied", ev.id());
    assert!(t.due.is_some_and(|d| d <= now), "timeout {:?} fired early: due {:?}, now {now}", ev.id(), t.due);
    assert!(m.ran_timeouts.insert(ev.id()), "timeout {:?} fired twice in one pass", ev.id());
    // libvirt's rule: the next one counts from now.
    t.due = Some(now + u64::try_from(t.ms).unwrap() * 1_000_000);
    let remove_self = app.reactions.front().is_some_and(|r| r.remove_self);
    if remove_self {
        let r = app.virt.remove_timeout(ev.id());
        remove_timeout_in_model(&mut app.model, ev.id(), r);
    }
    react(app);
    app.depth -= 1;
}

fn on_free(_lp: &mut L, app: &mut App, ev: FreeEvent) {
    assert_eq!(app.depth, 0, "free callback inside another callback");
    let key = match ev.released() {
        Released::Handle(id) => {
            assert!(!app.model.handles.contains_key(&id), "free of live handle");
            (true, id.get())
        }
        Released::Timeout(id) => {
            assert!(!app.model.timeouts.contains_key(&id), "free of live timeout");
            (false, id.get())
        }
    };
    assert!(app.model.retired.contains(&key), "free of {key:?}, never removed with a free callback");
    assert!(app.model.freed.insert(key), "free of {key:?} twice");
    // A free callback may call the contract.
    react(app);
}

/// The map the loop applies: what an fd's readiness means to a handle.
fn expected(ready: Ready, union: HandleEvents, events: HandleEvents) -> HandleEvents {
    let mut reportable = Ready::ERROR | Ready::HANGUP;
    if union.contains(HandleEvents::READABLE) {
        reportable |= Ready::READABLE | Ready::PRIORITY | Ready::READ_HANGUP;
    }
    if union.contains(HandleEvents::WRITABLE) {
        reportable |= Ready::WRITABLE;
    }
    if !union.intersects(HandleEvents::READABLE | HandleEvents::WRITABLE) {
        return HandleEvents::empty(); // not registered at all
    }
    let r = ready & reportable;
    let mut got = HandleEvents::empty();
    if r.intersects(Ready::READABLE | Ready::PRIORITY | Ready::READ_HANGUP) {
        got |= HandleEvents::READABLE;
    }
    if r.contains(Ready::WRITABLE) {
        got |= HandleEvents::WRITABLE;
    }
    if r.contains(Ready::ERROR) {
        got |= HandleEvents::ERROR;
    }
    if r.contains(Ready::HANGUP) {
        got |= HandleEvents::HANGUP;
    }
    if events.is_empty() {
        return HandleEvents::empty();
    }
    (got & events) | (got & (HandleEvents::ERROR | HandleEvents::HANGUP))
}

/// Runs right after the companion's prepare: the model syncs as it did,
/// computes what this pass must deliver, then makes the worst-moment call.
fn after_companion_prepare(lp: &mut L, app: &mut App, _ev: PhaseEvent) {
    // The wait does not move the clock (passes never block): this is the
    // pass's `now`, and the one the companion armed timeouts from.
    let now = lp.sim().clock().as_nanos();
    app.now = now;
    let m = &mut app.model;
    m.touched_handles.clear();
    m.touched_timeouts.clear();
    m.ran_handles.clear();
    m.ran_timeouts.clear();
    m.expect_handles.clear();
    m.expect_timeouts.clear();
    let mut unions: BTreeMap<i32, HandleEvents> = BTreeMap::new();
    for h in m.handles.values_mut() {
        h.armed = true;
        *unions.entry(h.fd).or_insert(HandleEvents::empty()) |= h.events;
    }
    for (id, h) in &m.handles {
        let ready = m.ready.get(&h.fd).copied().unwrap_or(Ready::empty());
        let got = expected(ready, unions[&h.fd], h.events);
        if !got.is_empty() {
            m.expect_handles.insert(*id, got);
        }
    }
    for (id, t) in m.timeouts.iter_mut() {
        if t.dirty {
            t.dirty = false;
            t.due = (t.ms >= 0).then(|| now + u64::try_from(t.ms).unwrap() * 1_000_000);
        }
        if t.ms >= 0 && t.due.is_some_and(|d| d <= now) {
            m.expect_timeouts.insert(*id);
        }
    }
    if let Some(call) = app.worst_moment.take() {
        perform(app, call, true);
    }
}

fn check_pass(app: &App) {
    let m = &app.model;
    for (id, events) in &m.expect_handles {
        if !m.touched_handles.contains(id) {
            assert!(m.ran_handles.contains(id), "handle {id:?} should have run with {events:?}");
        }
    }
    for id in &m.expect_timeouts {
        if !m.touched_timeouts.contains(id) {
            assert!(m.ran_timeouts.contains(id), "timeout {id:?} was due and did not fire");
        }
    }
    assert_eq!(m.retired, m.freed, "free callbacks still due after the pass");
    assert_eq!(TABLE.pending_frees(), 0);
    assert_eq!(TABLE.handle_count(), m.handles.len());
    assert_eq!(TABLE.timeout_count(), m.timeouts.len());
}

fn pass(lp: &mut L, app: &mut App) {
    lp.run_once(app, Some(Duration::ZERO)).expect("pass");
    check_pass(app);
}

fuzz_target!(|input: Input| {
    let mut lp = L::with_backend(Sim::new()).unwrap();
    let mut virt = Virt::new(&TABLE);
    virt.attach(&mut lp).unwrap();
    lp.prepare(0, after_companion_prepare).unwrap();
    let mut app = App {
        virt,
        model: Model::default(),
        reactions: input.reactions.into_iter().take(4 * MAX_OPS).collect(),
        worst_moment: None,
        depth: 0,
        now: 0,
    };
    // Ids keep growing across inputs: start the model where the table is.
    app.model.last_handle = 0;
    app.model.last_timeout = 0;
    for op in input.ops.into_iter().take(MAX_OPS) {
        match op {
            Op::Call { call, remote } => perform(&mut app, call, remote),
            Op::AtWorstMoment { call } => {
                app.worst_moment = Some(call);
                pass(&mut lp, &mut app);
            }
            Op::SetReady { fd, bits } => {
                let fd = i32::from(fd % FDS);
                let ready = Ready::from_bits_truncate(u32::from(bits & 0x1f));
                let old = app.model.ready.get(&fd).copied().unwrap_or(Ready::empty());
                lp.sim().clear_ready(fd, old - ready);
                if !ready.is_empty() {
                    lp.sim().set_ready(fd, ready).unwrap();
                }
                app.model.ready.insert(fd, ready);
            }
            Op::Advance { ms } => {
                lp.sim().advance(Duration::from_millis(u64::from(ms % 50)));
            }
            Op::Pass => pass(&mut lp, &mut app),
        }
        assert_eq!(TABLE.handle_count(), app.model.handles.len());
        assert_eq!(TABLE.timeout_count(), app.model.timeouts.len());
    }
    // Everything goes: every free callback exactly once.
    app.reactions.clear();
    for (id, h) in &app.model.handles {
        if h.free {
            app.model.retired.insert((true, id.get()));
        }
    }
    for (id, t) in &app.model.timeouts {
        if t.free {
            app.model.retired.insert((false, id.get()));
        }
    }
    app.model.handles.clear();
    app.model.timeouts.clear();
    TABLE.remove_all();
    V::detach(&mut lp, &mut app);
    assert_eq!(app.model.retired, app.model.freed, "free callbacks missing after detach");
    assert_eq!(TABLE.pending_frees(), 0);
});
