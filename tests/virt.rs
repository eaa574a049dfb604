//! libvirt's event contract (`linux_event::virt`) on every backend: the six
//! calls, several handles on one fd, ERROR and HANGUP reported unasked,
//! removal anywhere with the free callback exactly once from a clean stack,
//! calls from other threads that wake a blocked loop, timeouts of 0 and -1,
//! fds that cannot be watched, and attach/detach.

#[macro_use]
mod common;

use common::{Config, NO_WAIT, PATIENCE, pass, pipe, socketpair, write_once};
use linux_event::Error;
use linux_event::sys::{self, RawFd};
use linux_event::virt::{
    FreeEvent, HandleEvent, HandleEvents, HandleId, Released, TimeoutEvent, TimeoutId, Virt, VirtTable,
};
use std::os::fd::AsRawFd;
use std::time::Duration;

const H: usize = 40;
const T: usize = 40;
type L = common::Loop<App, 64, 128>;
type V = Virt<L, H, T>;
type Table = VirtTable<L, H, T>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    Handle(HandleId, HandleEvents, u64),
    Timeout(TimeoutId, u64),
    Free(Released, u64),
}

struct App {
    virt: V,
    log: Vec<Ev>,
    /// Callbacks of the contract running right now (free callbacks must
    /// see 0).
    depth: u32,
    /// What a handle or timeout callback does besides logging.
    action: Action,
    /// Ids for the actions to act on.
    handles: Vec<HandleId>,
    timeouts: Vec<TimeoutId>,
    free_thread: Option<std::thread::ThreadId>,
    /// Every registration freed, never cleared (the log is).
    freed: Vec<Released>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Action {
    Nothing,
    /// Remove the handle or timeout that fired.
    RemoveSelf,
    /// Remove every other handle and timeout in `handles` / `timeouts`.
    RemoveOthers,
    /// Replace the fired handle's fd by a new pipe at the same number (when
    /// the kernel gives it) with a new handle on it.
    ReuseFd,
}

impl AsMut<V> for App {
    fn as_mut(&mut self) -> &mut V {
        &mut self.virt
    }
}

fn table() -> &'static Table {
    Box::leak(Box::new(VirtTable::new()))
}

fn setup(cfg: &Config) -> (L, App) {
    let mut lp: L = cfg.new_loop();
    let mut virt = Virt::new(table());
    virt.attach(&mut lp).unwrap_or_else(|e| panic!("[{}] attach: {e}", cfg.name));
    let app = App {
        virt,
        log: Vec::new(),
        depth: 0,
        action: Action::Nothing,
        handles: Vec::new(),
        timeouts: Vec::new(),
        free_thread: None,
        freed: Vec::new(),
    };
    (lp, app)
}

fn on_handle(lp: &mut L, app: &mut App, ev: HandleEvent) {
    app.depth += 1;
    app.log.push(Ev::Handle(ev.id(), ev.events(), ev.data()));
    match app.action {
        Action::Nothing => {}
        Action::RemoveSelf => app.virt.remove_handle(ev.id()).unwrap(),
        Action::RemoveOthers => remove_others(app, Some(ev.id()), None),
        Action::ReuseFd if ev.data() == 1 => {
            // The fd number now names a new pipe, with a byte in it and no
            // hang-up, and a new handle watches it.
            app.virt.remove_handle(ev.id()).unwrap();
            let (r, w) = sys::pipe().unwrap();
            sys::write(w.as_raw_fd(), b"x").unwrap();
            // SAFETY: dup2 onto a number this test owns; takes no pointers.
            assert_eq!(unsafe { libc::dup2(r.as_raw_fd(), ev.fd()) }, ev.fd());
            let id = app.virt.add_handle(ev.fd(), HandleEvents::READABLE, 99, on_handle, Some(on_free)).unwrap();
            app.handles.push(id);
            // The write end stays open for the rest of the test.
            std::mem::forget(w);
            let _ = lp;
        }
        Action::ReuseFd => {}
    }
    app.depth -= 1;
}

fn on_timeout(_lp: &mut L, app: &mut App, ev: TimeoutEvent) {
    app.depth += 1;
    app.log.push(Ev::Timeout(ev.id(), ev.data()));
    match app.action {
        Action::RemoveSelf => app.virt.remove_timeout(ev.id()).unwrap(),
        Action::RemoveOthers => remove_others(app, None, Some(ev.id())),
        Action::Nothing | Action::ReuseFd => {}
    }
    app.depth -= 1;
}

fn remove_others(app: &mut App, handle: Option<HandleId>, timeout: Option<TimeoutId>) {
    for h in app.handles.clone() {
        if Some(h) != handle {
            let _ = app.virt.remove_handle(h);
        }
    }
    for t in app.timeouts.clone() {
        if Some(t) != timeout {
            let _ = app.virt.remove_timeout(t);
        }
    }
}

fn on_free(_lp: &mut L, app: &mut App, ev: FreeEvent) {
    assert_eq!(app.depth, 0, "a free callback ran inside another callback");
    // Taking the table's lock here would hang if it were held.
    let _ = app.virt.table().handle_count();
    app.free_thread = Some(std::thread::current().id());
    app.log.push(Ev::Free(ev.released(), ev.data()));
    app.freed.push(ev.released());
}

fn handle_events(app: &App, id: HandleId) -> Vec<HandleEvents> {
    app.log.iter().filter_map(|e| if let Ev::Handle(h, ev, _) = e { (*h == id).then_some(*ev) } else { None }).collect()
}

fn timeout_fires(app: &App, id: TimeoutId) -> usize {
    app.log.iter().filter(|e| matches!(e, Ev::Timeout(t, _) if *t == id)).count()
}

fn frees(app: &App) -> Vec<(Released, u64)> {
    app.log.iter().filter_map(|e| if let Ev::Free(r, d) = e { Some((*r, *d)) } else { None }).collect()
}

fn handle_reports_readable_with_fd_and_data(cfg: &Config) {
    let (mut lp, mut app) = setup(cfg);
    let (r, w) = pipe();
    let id = app.virt.add_handle(r.as_raw_fd(), HandleEvents::READABLE, 7, on_handle, None).unwrap();
    assert!(id.get() > 0);
    pass(cfg, &mut lp, &mut app, NO_WAIT);
    assert!(app.log.is_empty(), "[{}] nothing to read yet: {:?}", cfg.name, app.log);
    write_once(w.as_raw_fd(), b"a");
    pass(cfg, &mut lp, &mut app, PATIENCE);
    assert_eq!(app.log, [Ev::Handle(id, HandleEvents::READABLE, 7)], "[{}]", cfg.name);
    assert_eq!(lp.watcher_count(), 1, "[{}] one loop watcher", cfg.name);
}

fn two_handles_on_one_fd_share_one_watcher(cfg: &Config) {
    let (mut lp, mut app) = setup(cfg);
    let (a, b) = socketpair();
    let fd = a.as_raw_fd();
    let reader = app.virt.add_handle(fd, HandleEvents::READABLE, 1, on_handle, None).unwrap();
    let writer = app.virt.add_handle(fd, HandleEvents::WRITABLE, 2, on_handle, None).unwrap();
    assert!(writer > reader, "[{}] ids grow", cfg.name);
    pass(cfg, &mut lp, &mut app, PATIENCE);
    assert_eq!(app.log, [Ev::Handle(writer, HandleEvents::WRITABLE, 2)], "[{}] only the writer", cfg.name);
    assert_eq!(lp.watcher_count(), 1, "[{}] one kernel registration for both", cfg.name);
    write_once(b.as_raw_fd(), b"x");
    app.log.clear();
    pass(cfg, &mut lp, &mut app, PATIENCE);
    // One callback per handle per pass, with its own events only, in id order.
    assert_eq!(
        app.log,
        [Ev::Handle(reader, HandleEvents::READABLE, 1), Ev::Handle(writer, HandleEvents::WRITABLE, 2)],
        "[{}]",
        cfg.name
    );
}

fn error_and_hangup_reach_handles_that_did_not_ask(cfg: &Config) {
    let (mut lp, mut app) = setup(cfg);
    let (r, w) = pipe();
    let reader = app.virt.add_handle(r.as_raw_fd(), HandleEvents::READABLE, 0, on_handle, None).unwrap();
    let (r2, w2) = pipe();
    let writer = app.virt.add_handle(w2.as_raw_fd(), HandleEvents::WRITABLE, 0, on_handle, None).unwrap();
    drop(w); // the reader's peer: HANGUP
    drop(r2); // the writer's peer: ERROR
    pass(cfg, &mut lp, &mut app, PATIENCE);
    if handle_events(&app, writer).is_empty() {
        pass(cfg, &mut lp, &mut app, PATIENCE);
    }
    assert_eq!(handle_events(&app, reader)[0], HandleEvents::HANGUP, "[{}] {:?}", cfg.name, app.log);
    let wev = handle_events(&app, writer)[0];
    assert!(wev.contains(HandleEvents::ERROR), "[{}] writer got {wev:?}", cfg.name);
}

fn removed_handle_never_runs_later_in_the_same_pass(cfg: &Config) {
    let (mut lp, mut app) = setup(cfg);
    let (a, b) = socketpair();
    let (c, d) = socketpair();
    // Four handles, all ready in one pass: on two fds, two per fd.
    for fd in [a.as_raw_fd(), c.as_raw_fd()] {
        for n in 0..2 {
            let id = app.virt.add_handle(fd, HandleEvents::WRITABLE, n, on_handle, Some(on_free)).unwrap();
            app.handles.push(id);
        }
    }
    app.action = Action::RemoveOthers;
    pass(cfg, &mut lp, &mut app, PATIENCE);
    let ran: Vec<_> = app.log.iter().filter(|e| matches!(e, Ev::Handle(..))).collect();
    assert_eq!(ran.len(), 1, "[{}] the first callback removed the other three: {:?}", cfg.name, app.log);
    // The three others' free callbacks ran after dispatch, each once; the
    // survivor's did not.
    assert_eq!(frees(&app).len(), 3, "[{}] {:?}", cfg.name, app.log);
    app.log.clear();
    app.action = Action::Nothing;
    pass(cfg, &mut lp, &mut app, PATIENCE);
    assert_eq!(app.log.len(), 1, "[{}] only the survivor: {:?}", cfg.name, app.log);
    drop((b, d));
}

fn callback_removing_itself_is_freed_once_after_dispatch(cfg: &Config) {
    let (mut lp, mut app) = setup(cfg);
    let (r, w) = pipe();
    let id = app.virt.add_handle(r.as_raw_fd(), HandleEvents::READABLE, 5, on_handle, Some(on_free)).unwrap();
    let t = app.virt.add_timeout(0, 6, on_timeout, Some(on_free)).unwrap();
    app.action = Action::RemoveSelf;
    write_once(w.as_raw_fd(), b"x");
    pass(cfg, &mut lp, &mut app, PATIENCE);
    let want_free = [(Released::Handle(id), 5), (Released::Timeout(t), 6)];
    assert_eq!(app.log.len(), 4, "[{}] {:?}", cfg.name, app.log);
    assert!(matches!(app.log[2], Ev::Free(..)) && matches!(app.log[3], Ev::Free(..)), "[{}] frees last", cfg.name);
    assert_eq!(frees(&app), want_free, "[{}]", cfg.name);
    for _ in 0..3 {
        pass(cfg, &mut lp, &mut app, NO_WAIT);
    }
    assert_eq!(app.log.len(), 4, "[{}] nothing runs again, nothing is freed twice: {:?}", cfg.name, app.log);
    assert_eq!(lp.watcher_count(), 0, "[{}] the watcher went with its last handle", cfg.name);
    assert_eq!(app.virt.table().pending_frees(), 0);
}

fn update_after_removal_does_not_revive(cfg: &Config) {
    let (mut lp, mut app) = setup(cfg);
    let (a, _b) = socketpair();
    let id = app.virt.add_handle(a.as_raw_fd(), HandleEvents::WRITABLE, 0, on_handle, Some(on_free)).unwrap();
    let t = app.virt.add_timeout(0, 0, on_timeout, Some(on_free)).unwrap();
    app.virt.remove_handle(id).unwrap();
    app.virt.remove_timeout(t).unwrap();
    assert_eq!(app.virt.update_handle(id, HandleEvents::WRITABLE), Err(Error::NotFound));
    assert_eq!(app.virt.update_timeout(t, 0), Err(Error::NotFound));
    assert_eq!(app.virt.remove_handle(id), Err(Error::NotFound));
    assert_eq!(app.virt.remove_timeout(t), Err(Error::NotFound));
    for _ in 0..3 {
        pass(cfg, &mut lp, &mut app, NO_WAIT);
    }
    assert_eq!(frees(&app), [(Released::Handle(id), 0), (Released::Timeout(t), 0)], "[{}]", cfg.name);
    assert_eq!(app.log.len(), 2, "[{}] removed before the first pass: never ran", cfg.name);
}

fn update_handle_changes_what_is_reported(cfg: &Config) {
    let (mut lp, mut app) = setup(cfg);
    let (a, b) = socketpair();
    let id = app.virt.add_handle(a.as_raw_fd(), HandleEvents::READABLE, 0, on_handle, None).unwrap();
    pass(cfg, &mut lp, &mut app, NO_WAIT);
    assert!(app.log.is_empty(), "[{}]", cfg.name);
    app.virt.update_handle(id, HandleEvents::READABLE | HandleEvents::WRITABLE).unwrap();
    pass(cfg, &mut lp, &mut app, PATIENCE);
    assert_eq!(handle_events(&app, id), [HandleEvents::WRITABLE], "[{}]", cfg.name);
    write_once(b.as_raw_fd(), b"x");
    app.log.clear();
    pass(cfg, &mut lp, &mut app, PATIENCE);
    assert_eq!(handle_events(&app, id), [HandleEvents::READABLE | HandleEvents::WRITABLE], "[{}]", cfg.name);
    // Empty events: nothing at all, not even the hang-up, and no kernel
    // registration.
    app.virt.update_handle(id, HandleEvents::empty()).unwrap();
    drop(b);
    app.log.clear();
    for _ in 0..2 {
        pass(cfg, &mut lp, &mut app, NO_WAIT);
    }
    assert!(app.log.is_empty(), "[{}] {:?}", cfg.name, app.log);
    assert_eq!(lp.watcher_count(), 0, "[{}]", cfg.name);
    assert_eq!(app.virt.table().handle_events(id), Some(HandleEvents::empty()));
    app.virt.update_handle(id, HandleEvents::READABLE).unwrap();
    pass(cfg, &mut lp, &mut app, PATIENCE);
    assert_eq!(handle_events(&app, id), [HandleEvents::READABLE | HandleEvents::HANGUP], "[{}]", cfg.name);
}

fn ids_grow_and_are_never_reused(cfg: &Config) {
    let (mut lp, mut app) = setup(cfg);
    let (r, _w) = pipe();
    let mut last_h = 0;
    let mut last_t = 0;
    for round in 0..100 {
        let h = app.virt.add_handle(r.as_raw_fd(), HandleEvents::READABLE, 0, on_handle, Some(on_free)).unwrap();
        let t = app.virt.add_timeout(-1, 0, on_timeout, Some(on_free)).unwrap();
        assert!(h.get() > last_h && t.get() > last_t, "[{}] round {round}", cfg.name);
        (last_h, last_t) = (h.get(), t.get());
        app.virt.remove_handle(h).unwrap();
        app.virt.remove_timeout(t).unwrap();
        if round % 10 == 0 {
            pass(cfg, &mut lp, &mut app, NO_WAIT);
        }
    }
    pass(cfg, &mut lp, &mut app, NO_WAIT);
    assert_eq!(frees(&app).len(), 200, "[{}]", cfg.name);
    assert_eq!(HandleId::from_raw(last_h + 1).map(|id| app.virt.remove_handle(id)), Some(Err(Error::NotFound)));
}

fn full_tables_are_capacity_and_lose_nothing(cfg: &Config) {
    let (mut lp, mut app) = setup(cfg);
    let (a, _b) = socketpair();
    let fd = a.as_raw_fd();
    let ids: Vec<_> =
        (0..H).map(|n| app.virt.add_handle(fd, HandleEvents::WRITABLE, n as u64, on_handle, None).unwrap()).collect();
    assert_eq!(app.virt.add_handle(fd, HandleEvents::WRITABLE, 0, on_handle, None), Err(Error::Capacity));
    let tids: Vec<_> = (0..T).map(|_| app.virt.add_timeout(-1, 0, on_timeout, None).unwrap()).collect();
    assert_eq!(app.virt.add_timeout(0, 0, on_timeout, None), Err(Error::Capacity));
    assert_eq!(app.virt.add_handle(-1, HandleEvents::READABLE, 0, on_handle, None), Err(Error::Os(sys::Errno::EBADF)));
    pass(cfg, &mut lp, &mut app, PATIENCE);
    for id in &ids {
        assert_eq!(handle_events(&app, *id), [HandleEvents::WRITABLE], "[{}] handle {id:?}", cfg.name);
    }
    assert_eq!(app.virt.table().timeout_count(), T);
    app.virt.remove_handle(ids[3]).unwrap();
    app.virt.remove_timeout(tids[3]).unwrap();
    assert!(app.virt.add_handle(fd, HandleEvents::WRITABLE, 0, on_handle, None).is_ok(), "[{}] room again", cfg.name);
    assert!(app.virt.add_timeout(0, 0, on_timeout, None).is_ok(), "[{}]", cfg.name);
}

fn timeout_zero_fires_once_per_pass(cfg: &Config) {
    let (mut lp, mut app) = setup(cfg);
    let t = app.virt.add_timeout(0, 3, on_timeout, None).unwrap();
    for n in 1..=5 {
        pass(cfg, &mut lp, &mut app, PATIENCE);
        assert_eq!(timeout_fires(&app, t), n, "[{}] pass {n}", cfg.name);
    }
    assert_eq!(app.log[0], Ev::Timeout(t, 3));
}

fn timeout_minus_one_never_fires_until_updated(cfg: &Config) {
    let (mut lp, mut app) = setup(cfg);
    let t = app.virt.add_timeout(-1, 0, on_timeout, None).unwrap();
    let zero = app.virt.add_timeout(0, 0, on_timeout, None).unwrap();
    for _ in 0..3 {
        pass(cfg, &mut lp, &mut app, PATIENCE);
    }
    assert_eq!((timeout_fires(&app, t), timeout_fires(&app, zero)), (0, 3), "[{}]", cfg.name);
    app.virt.update_timeout(t, 0).unwrap();
    app.virt.update_timeout(zero, -1).unwrap();
    for _ in 0..3 {
        pass(cfg, &mut lp, &mut app, PATIENCE);
    }
    assert_eq!((timeout_fires(&app, t), timeout_fires(&app, zero)), (3, 3), "[{}]", cfg.name);
    assert_eq!(app.virt.table().timeout_interval(zero), Some(-1));
}

fn timeout_with_an_interval_fires_after_it(cfg: &Config) {
    let (mut lp, mut app) = setup(cfg);
    let start = std::time::Instant::now();
    let t = app.virt.add_timeout(20, 0, on_timeout, None).unwrap();
    let mut passes = 0;
    while timeout_fires(&app, t) < 3 {
        pass(cfg, &mut lp, &mut app, PATIENCE);
        passes += 1;
        assert!(passes < 100, "[{}] no fire", cfg.name);
    }
    // Only a lower bound: three intervals of 20 ms cannot pass sooner.
    assert!(start.elapsed() >= Duration::from_millis(60), "[{}] fired early: {:?}", cfg.name, start.elapsed());
}

/// Waits until the loop's thread sleeps in its wait. Under qemu-user
/// `/proc` shows the host's system call numbers, so this gives up after its
/// patience there, and the call then lands whenever it does: still a call
/// from another thread, which must wake the loop or keep it from sleeping.
fn blocked(tid: i32) {
    let _ = common::wait_until_blocked(tid);
}

/// The loop blocks in its wait (no timeout, nothing ready); another thread
/// enables a timeout, adds a handle, removes the timeout: each call wakes
/// the loop, and the free callback runs on the loop's thread.
fn calls_from_another_thread_wake_a_blocked_loop(cfg: &Config) {
    let (mut lp, mut app) = setup(cfg);
    let table = app.virt.table();
    let t = app.virt.add_timeout(-1, 1, on_timeout, Some(on_free)).unwrap();
    let (r, w) = pipe();
    write_once(w.as_raw_fd(), b"x");
    let rfd = r.as_raw_fd();
    let tid = sys::gettid();
    // Each run_once(None) below returns only when the other thread's call
    // wakes it; without the wake-up the watchdog ends the test.
    let _dog = common::watchdog("virt: a call from another thread did not wake the loop", 60);
    let (go, next_step) = std::sync::mpsc::channel::<()>();
    let other = std::thread::spawn(move || {
        blocked(tid);
        table.update_timeout(t, 0).unwrap();
        next_step.recv().unwrap();
        blocked(tid);
        let h = table.add_handle(rfd, HandleEvents::READABLE, 2, on_handle, Some(on_free)).unwrap();
        next_step.recv().unwrap();
        blocked(tid);
        table.remove_timeout(t).unwrap();
        h
    });
    while timeout_fires(&app, t) == 0 {
        lp.run_once(&mut app, None).unwrap();
    }
    // It fires on every pass now: disable it so that the loop blocks again.
    app.virt.update_timeout(t, -1).unwrap();
    go.send(()).unwrap();
    let h = loop {
        if let Some(Ev::Handle(h, _, _)) = app.log.iter().find(|e| matches!(e, Ev::Handle(_, _, 2))) {
            break *h;
        }
        lp.run_once(&mut app, None).unwrap();
    };
    // Its byte stays unread: remove it so that the loop blocks again.
    app.virt.remove_handle(h).unwrap();
    go.send(()).unwrap();
    while !frees(&app).iter().any(|(r, _)| *r == Released::Timeout(t)) {
        lp.run_once(&mut app, None).unwrap();
    }
    assert_eq!(other.join().unwrap(), h, "[{}]", cfg.name);
    assert_eq!(app.free_thread, Some(std::thread::current().id()), "[{}] frees run on the loop thread", cfg.name);
    assert_eq!(frees(&app), [(Released::Handle(h), 2), (Released::Timeout(t), 1)], "[{}]", cfg.name);
}

fn closed_fd_reports_error_every_pass_until_removed(cfg: &Config) {
    let (mut lp, mut app) = setup(cfg);
    let (r, _w) = common::pipe_with_unique_read_fd();
    let fd: RawFd = r.into_raw_fd();
    sys::close(fd).unwrap();
    let id = app.virt.add_handle(fd, HandleEvents::READABLE, 0, on_handle, Some(on_free)).unwrap();
    for _ in 0..3 {
        pass(cfg, &mut lp, &mut app, PATIENCE);
    }
    assert_eq!(handle_events(&app, id), [HandleEvents::ERROR; 3], "[{}] as poll's POLLNVAL", cfg.name);
    app.virt.remove_handle(id).unwrap();
    app.log.clear();
    pass(cfg, &mut lp, &mut app, NO_WAIT);
    pass(cfg, &mut lp, &mut app, NO_WAIT);
    assert_eq!(frees(&app), [(Released::Handle(id), 0)], "[{}] {:?}", cfg.name, app.log);
    assert_eq!(app.log.len(), 1, "[{}]", cfg.name);
}

fn regular_file_is_always_ready_as_with_poll(cfg: &Config) {
    let (mut lp, mut app) = setup(cfg);
    let path = common::temp_path(&format!("virt-regular-{}", cfg.module()));
    let file = std::fs::File::create(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let id = app.virt.add_handle(file.as_raw_fd(), HandleEvents::READABLE, 0, on_handle, None).unwrap();
    pass(cfg, &mut lp, &mut app, PATIENCE);
    pass(cfg, &mut lp, &mut app, PATIENCE);
    assert_eq!(handle_events(&app, id), [HandleEvents::READABLE; 2], "[{}]", cfg.name);
    app.virt.update_handle(id, HandleEvents::READABLE | HandleEvents::WRITABLE).unwrap();
    app.log.clear();
    pass(cfg, &mut lp, &mut app, PATIENCE);
    assert_eq!(handle_events(&app, id), [HandleEvents::READABLE | HandleEvents::WRITABLE], "[{}]", cfg.name);
}

fn handle_added_during_dispatch_waits_for_the_next_pass(cfg: &Config) {
    let (mut lp, mut app) = setup(cfg);
    let (r, w) = common::pipe_with_unique_read_fd();
    let fd = r.into_raw_fd();
    write_once(w.as_raw_fd(), b"x");
    drop(w); // data and a hang-up: an event the new file will not have
    let first = app.virt.add_handle(fd, HandleEvents::READABLE, 1, on_handle, Some(on_free)).unwrap();
    let second = app.virt.add_handle(fd, HandleEvents::READABLE, 3, on_handle, None).unwrap();
    app.action = Action::ReuseFd;
    pass(cfg, &mut lp, &mut app, PATIENCE);
    let old = HandleEvents::READABLE | HandleEvents::HANGUP;
    assert_eq!((handle_events(&app, first), handle_events(&app, second)), (vec![old], vec![old]), "[{}]", cfg.name);
    let new = app.handles[0];
    assert!(
        handle_events(&app, new).is_empty(),
        "[{}] the old file's event reached the new handle: {:?}",
        cfg.name,
        app.log
    );
    app.log.clear();
    pass(cfg, &mut lp, &mut app, PATIENCE);
    let want = vec![HandleEvents::READABLE];
    assert_eq!(
        (handle_events(&app, second), handle_events(&app, new)),
        (want.clone(), want),
        "[{}] {:?}",
        cfg.name,
        app.log
    );
    sys::close(fd).unwrap();
}

/// The fuzzer's first find: the last handle of fd A goes, a handle on fd B
/// takes A's slot, and a new handle on A lands in another slot, all before
/// the next pass. The new slot must take over A's watcher, not see it as
/// someone else's and report ERROR.
fn an_fd_moving_to_another_slot_keeps_being_watched(cfg: &Config) {
    let (mut lp, mut app) = setup(cfg);
    let (a, _a2) = socketpair();
    let (b, _b2) = socketpair();
    let first = app.virt.add_handle(a.as_raw_fd(), HandleEvents::WRITABLE, 0, on_handle, None).unwrap();
    pass(cfg, &mut lp, &mut app, PATIENCE);
    app.virt.remove_handle(first).unwrap();
    let on_b = app.virt.add_handle(b.as_raw_fd(), HandleEvents::WRITABLE, 0, on_handle, None).unwrap();
    let on_a = app.virt.add_handle(a.as_raw_fd(), HandleEvents::WRITABLE, 0, on_handle, None).unwrap();
    app.log.clear();
    pass(cfg, &mut lp, &mut app, PATIENCE);
    assert_eq!(handle_events(&app, on_a), [HandleEvents::WRITABLE], "[{}] {:?}", cfg.name, app.log);
    assert_eq!(handle_events(&app, on_b), [HandleEvents::WRITABLE], "[{}] {:?}", cfg.name, app.log);
    assert_eq!(lp.watcher_count(), 2, "[{}]", cfg.name);
}

fn a_user_watcher_on_the_same_fd_is_never_replaced(cfg: &Config) {
    let (mut lp, mut app) = setup(cfg);
    let (a, _b) = socketpair();
    fn mine(_lp: &mut L, app: &mut App, _ev: linux_event::WatchEvent) {
        app.log.push(Ev::Timeout(TimeoutId::from_raw(i32::MAX).unwrap(), 0));
    }
    let w = lp.watch(a.as_raw_fd(), linux_event::Interest::WRITE, 0, mine).unwrap();
    let id = app.virt.add_handle(a.as_raw_fd(), HandleEvents::WRITABLE, 0, on_handle, None).unwrap();
    pass(cfg, &mut lp, &mut app, PATIENCE);
    assert!(lp.is_live(w), "[{}] the user's watcher was replaced", cfg.name);
    assert_eq!(handle_events(&app, id), [HandleEvents::ERROR], "[{}] {:?}", cfg.name, app.log);
}

fn free_callbacks_may_call_the_contract(cfg: &Config) {
    fn free_and_add(lp: &mut L, app: &mut App, ev: FreeEvent) {
        on_free(lp, app, ev);
        if ev.data() == 1 {
            let t = app.virt.add_timeout(0, 2, on_timeout, Some(on_free)).unwrap();
            app.virt.remove_timeout(t).unwrap();
        }
    }
    let (mut lp, mut app) = setup(cfg);
    let t = app.virt.add_timeout(0, 1, on_timeout, Some(free_and_add)).unwrap();
    app.action = Action::RemoveSelf;
    pass(cfg, &mut lp, &mut app, PATIENCE);
    // The timeout removed by the free callback is freed in the same check phase.
    let got = frees(&app);
    assert_eq!(got.len(), 2, "[{}] {:?}", cfg.name, app.log);
    assert_eq!(got[0], (Released::Timeout(t), 1));
    assert_eq!(got[1].1, 2);
}

fn remove_all_and_detach_release_everything(cfg: &Config) {
    let (mut lp, mut app) = setup(cfg);
    let baseline_timers = lp.timer_count();
    let (a, _b) = socketpair();
    for n in 0..4 {
        let id = app.virt.add_handle(a.as_raw_fd(), HandleEvents::WRITABLE, n, on_handle, Some(on_free)).unwrap();
        app.handles.push(id);
        app.virt.add_timeout(n as i32, n, on_timeout, Some(on_free)).unwrap();
    }
    pass(cfg, &mut lp, &mut app, PATIENCE);
    assert_eq!(lp.watcher_count(), 1);
    // Attaching twice (this companion, or its table elsewhere) is refused.
    assert_eq!(app.virt.attach(&mut lp), Err(Error::AlreadyWatched));
    let mut other: common::Loop<App, 64, 128> = cfg.new_loop();
    assert_eq!(Virt::new(app.virt.table()).attach(&mut other), Err(Error::AlreadyWatched));
    // Detach keeps the table; a new attach registers it again.
    V::detach(&mut lp, &mut app);
    assert_eq!((lp.watcher_count(), lp.timer_count() + T + 1), (0, baseline_timers), "[{}]", cfg.name);
    app.log.clear();
    app.virt.attach(&mut lp).unwrap();
    pass(cfg, &mut lp, &mut app, PATIENCE);
    assert_eq!(handle_events(&app, app.handles[3]), [HandleEvents::WRITABLE], "[{}] {:?}", cfg.name, app.log);
    assert_eq!(app.virt.table().remove_all(), 8);
    V::detach(&mut lp, &mut app);
    assert_eq!(frees(&app).len(), 8, "[{}] every free callback, once", cfg.name);
    assert_eq!(app.virt.table().pending_frees(), 0);
}

/// A loop dropped without `detach` lets its table go: a new loop takes it
/// over, with everything still in it.
fn a_table_outlives_a_loop_dropped_without_detach(cfg: &Config) {
    let (lp, app) = setup(cfg);
    let table = app.virt.table();
    let (a, _b) = socketpair();
    let id = table.add_handle(a.as_raw_fd(), HandleEvents::WRITABLE, 4, on_handle, Some(on_free)).unwrap();
    drop((lp, app));
    let mut lp: L = cfg.new_loop();
    let mut virt = Virt::new(table);
    virt.attach(&mut lp).unwrap_or_else(|e| panic!("[{}] attach after the old loop went: {e}", cfg.name));
    let mut app = App {
        virt,
        log: Vec::new(),
        depth: 0,
        action: Action::Nothing,
        handles: Vec::new(),
        timeouts: Vec::new(),
        free_thread: None,
        freed: Vec::new(),
    };
    pass(cfg, &mut lp, &mut app, PATIENCE);
    assert_eq!(handle_events(&app, id), [HandleEvents::WRITABLE], "[{}] {:?}", cfg.name, app.log);
    table.remove_all();
    V::detach(&mut lp, &mut app);
    assert_eq!(app.freed, [Released::Handle(id)], "[{}]", cfg.name);
}

/// libvirt's own test's shape: 31 pipes and 31 timeouts, removals before
/// the wait and during dispatch, one fd twice with disjoint events.
fn thirty_one_pipes_and_thirty_one_timeouts(cfg: &Config) {
    let (mut lp, mut app) = setup(cfg);
    let pipes: Vec<_> = (0..31).map(|_| pipe()).collect();
    let hs: Vec<_> = pipes
        .iter()
        .enumerate()
        .map(|(i, (r, _))| {
            app.virt.add_handle(r.as_raw_fd(), HandleEvents::READABLE, i as u64, on_handle, Some(on_free)).unwrap()
        })
        .collect();
    let ts: Vec<_> = (0..31).map(|i| app.virt.add_timeout(-1, i, on_timeout, Some(on_free)).unwrap()).collect();
    // Each pipe alone: only its handle runs.
    for i in [0usize, 15, 30] {
        write_once(pipes[i].1.as_raw_fd(), b"x");
        app.log.clear();
        pass(cfg, &mut lp, &mut app, PATIENCE);
        assert_eq!(app.log, [Ev::Handle(hs[i], HandleEvents::READABLE, i as u64)], "[{}]", cfg.name);
        common::drain(pipes[i].0.as_raw_fd());
    }
    // Removed before the wait: never runs.
    write_once(pipes[1].1.as_raw_fd(), b"x");
    app.virt.remove_handle(hs[1]).unwrap();
    app.log.clear();
    pass(cfg, &mut lp, &mut app, NO_WAIT);
    assert_eq!(app.log, [Ev::Free(Released::Handle(hs[1]), 1)], "[{}]", cfg.name);
    // Timeouts: each enabled alone fires alone.
    for i in [0usize, 30] {
        app.virt.update_timeout(ts[i], 0).unwrap();
        app.log.clear();
        pass(cfg, &mut lp, &mut app, PATIENCE);
        assert_eq!(app.log, [Ev::Timeout(ts[i], i as u64)], "[{}]", cfg.name);
        app.virt.update_timeout(ts[i], -1).unwrap();
    }
    // Removal during dispatch: handle 2's callback removes handle 3 (both ready).
    app.handles = vec![hs[3]];
    app.timeouts.clear();
    app.action = Action::RemoveOthers;
    write_once(pipes[2].1.as_raw_fd(), b"x");
    write_once(pipes[3].1.as_raw_fd(), b"x");
    app.log.clear();
    pass(cfg, &mut lp, &mut app, PATIENCE);
    let ran: Vec<_> = app.log.iter().filter(|e| matches!(e, Ev::Handle(..))).copied().collect();
    assert_eq!(ran.len(), 1, "[{}] one of 2 and 3 ran, the other was removed by it: {:?}", cfg.name, app.log);
    // Remove everything: every free callback exactly once.
    app.action = Action::Nothing;
    app.virt.table().remove_all();
    pass(cfg, &mut lp, &mut app, NO_WAIT);
    let mut released: Vec<_> = app.freed.iter().map(|r| format!("{r:?}")).collect();
    assert_eq!(released.len(), 62, "[{}] 31 handles and 31 timeouts freed: {released:?}", cfg.name);
    released.sort();
    released.dedup();
    assert_eq!(released.len(), 62, "[{}] each freed once", cfg.name);
}

backend_tests!(
    handle_reports_readable_with_fd_and_data,
    two_handles_on_one_fd_share_one_watcher,
    error_and_hangup_reach_handles_that_did_not_ask,
    removed_handle_never_runs_later_in_the_same_pass,
    callback_removing_itself_is_freed_once_after_dispatch,
    update_after_removal_does_not_revive,
    update_handle_changes_what_is_reported,
    ids_grow_and_are_never_reused,
    full_tables_are_capacity_and_lose_nothing,
    timeout_zero_fires_once_per_pass,
    timeout_minus_one_never_fires_until_updated,
    timeout_with_an_interval_fires_after_it,
    calls_from_another_thread_wake_a_blocked_loop,
    closed_fd_reports_error_every_pass_until_removed,
    regular_file_is_always_ready_as_with_poll,
    handle_added_during_dispatch_waits_for_the_next_pass,
    an_fd_moving_to_another_slot_keeps_being_watched,
    a_user_watcher_on_the_same_fd_is_never_replaced,
    free_callbacks_may_call_the_contract,
    remove_all_and_detach_release_everything,
    a_table_outlives_a_loop_dropped_without_detach,
    thirty_one_pipes_and_thirty_one_timeouts,
);
