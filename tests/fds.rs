//! Tests that depend on fd numbers: reuse of a closed fd's number (in the
//! same batch and across passes), dups that keep a closed fd's file alive,
//! and the loop's own fds (found through /proc/self/fd).
//!
//! Each test holds `FD_LOCK` for its whole run, so no other test of this
//! binary opens or closes fds meanwhile and "the lowest free fd number" is
//! predictable. (Every tests/*.rs file is its own process.)

#[macro_use]
mod common;

use common::{Config, Loop, NO_WAIT, PATIENCE, pipe, remove_watcher_of, write_once};
use linux_event::sys::{self, OwnedFd, RawFd};
use linux_event::{Errno, Error, Interest, MAX_WAKERS, WatchEvent, WatchId, WatchOptions};
use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};

static FD_LOCK: Mutex<()> = Mutex::new(());

fn fd_lock() -> MutexGuard<'static, ()> {
    FD_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes fds with `make` until one gets the number `target` (which must be
/// free). The kernel hands out the lowest free number, so this fills any
/// lower holes first; those fds go to `keep` so they stay open.
fn claim_number(target: RawFd, keep: &mut Vec<OwnedFd>, mut make: impl FnMut(&mut Vec<OwnedFd>) -> OwnedFd) -> OwnedFd {
    for _ in 0..10_000 {
        let fd = make(keep);
        if fd.as_raw_fd() == target {
            return fd;
        }
        assert!(fd.as_raw_fd() < target, "fd {} handed out while {target} should be free", fd.as_raw_fd());
        keep.push(fd);
    }
    panic!("could not get fd number {target} back");
}

/// A new pipe with data in it; its write end goes to `keep`.
fn readable_pipe(keep: &mut Vec<OwnedFd>) -> OwnedFd {
    let (r, w) = pipe();
    write_once(w.as_raw_fd(), b"new");
    keep.push(w);
    r
}

#[derive(Copy, Clone, Debug, PartialEq)]
enum Reuse {
    /// Close the fd, open a new pipe that gets its number.
    CloseAndReopen,
    /// Close the fd, `dup` another (readable) fd onto its number.
    CloseAndDup,
    /// Keep the fd, just give it a new watcher.
    Replace,
}

struct BatchCtx {
    reuse: Reuse,
    unwatch_first: bool,
    /// The two watched read ends; the first callback closes the other one.
    fds: [Option<OwnedFd>; 2],
    ids: [Option<WatchId>; 2],
    dup_source: OwnedFd,
    keep: Vec<OwnedFd>,
    reused: Option<RawFd>,
    old_calls: Vec<u64>,
    new_calls: Vec<(RawFd, u64)>,
}

type BatchLp = Loop<BatchCtx>;

const NEW_TAG: u64 = 100;

fn batch_old(lp: &mut BatchLp, ctx: &mut BatchCtx, ev: WatchEvent) {
    ctx.old_calls.push(ev.data());
    common::drain(ev.fd());
    if ctx.reused.is_some() {
        return;
    }
    let victim = 1 - ev.data() as usize;
    let fd = ctx.fds[victim].as_ref().unwrap().as_raw_fd();
    if ctx.unwatch_first {
        assert!(lp.remove(ctx.ids[victim].unwrap()));
    }
    if ctx.reuse != Reuse::Replace {
        ctx.fds[victim] = None; // closes it
        let new = match ctx.reuse {
            Reuse::CloseAndReopen => claim_number(fd, &mut ctx.keep, readable_pipe),
            _ => {
                let src = ctx.dup_source.as_raw_fd();
                claim_number(fd, &mut ctx.keep, |_| sys::dup(src).unwrap())
            }
        };
        ctx.fds[victim] = Some(new);
    }
    lp.watch_with(fd, WatchOptions::new(Interest::READ), NEW_TAG, batch_new).unwrap();
    ctx.reused = Some(fd);
}

fn batch_new(lp: &mut BatchLp, ctx: &mut BatchCtx, ev: WatchEvent) {
    ctx.new_calls.push((ev.fd(), ev.data()));
    lp.remove(ev.id());
}

fn stale_event_in_the_same_batch(cfg: &Config, reuse: Reuse, unwatch_first: bool) {
    let n = cfg.name;
    let what = format!("{reuse:?}, unwatch first: {unwatch_first}");
    let mut lp: BatchLp = cfg.new_loop();
    let mut keep = Vec::new();
    let (a, b) = (readable_pipe(&mut keep), readable_pipe(&mut keep));
    let dup_source = readable_pipe(&mut keep);
    let mut ids = [None, None];
    for (tag, fd) in [(0u64, a.as_raw_fd()), (1, b.as_raw_fd())] {
        ids[tag as usize] = Some(lp.watch_with(fd, WatchOptions::new(Interest::READ), tag, batch_old).unwrap());
    }
    let mut ctx = BatchCtx {
        reuse,
        unwatch_first,
        fds: [Some(a), Some(b)],
        ids,
        dup_source,
        keep,
        reused: None,
        old_calls: Vec::new(),
        new_calls: Vec::new(),
    };
    // Both fds are ready: one wait reports both, in one batch.
    assert_eq!(lp.run_once(&mut ctx, PATIENCE), Ok(1), "[{n}] {what}: old {:?} new {:?}", ctx.old_calls, ctx.new_calls);
    let reused = ctx.reused.expect("the first callback ran");
    let first = ctx.old_calls[0];
    assert_eq!(ctx.old_calls, [first], "[{n}] {what}: the replaced watcher got its stale event");
    assert!(ctx.new_calls.is_empty(), "[{n}] {what}: the stale event reached the new watcher: {:?}", ctx.new_calls);
    assert_eq!(ctx.fds[1 - first as usize].as_ref().map(OwnedFd::as_raw_fd), Some(reused), "[{n}] {what}");

    // The new watcher hears of its own fd on the next pass.
    assert_eq!(lp.run_once(&mut ctx, PATIENCE), Ok(1), "[{n}] {what}");
    assert_eq!(ctx.new_calls, [(reused, NEW_TAG)], "[{n}] {what}");
    assert_eq!(ctx.old_calls, [first], "[{n}] {what}");
    assert_eq!(lp.run_once(&mut ctx, NO_WAIT), Ok(0), "[{n}] {what}");
}

fn stale_event_after_fd_reuse_in_the_same_batch_is_not_delivered(cfg: &Config) {
    let _l = fd_lock();
    for reuse in [Reuse::CloseAndReopen, Reuse::CloseAndDup, Reuse::Replace] {
        for unwatch_first in [false, true] {
            stale_event_in_the_same_batch(cfg, reuse, unwatch_first);
        }
    }
}

#[derive(Default)]
struct Log {
    calls: Vec<(RawFd, u64)>,
}

type Lp = Loop<Log>;

fn record(_lp: &mut Lp, log: &mut Log, ev: WatchEvent) {
    log.calls.push((ev.fd(), ev.data()));
}

fn closed_and_reused_fd_number_reaches_only_the_new_watcher(cfg: &Config) {
    let _l = fd_lock();
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let mut keep = Vec::new();
    let r = readable_pipe(&mut keep);
    let fd = r.as_raw_fd();
    let old = lp.watch_with(fd, WatchOptions::new(Interest::READ), 1, record).unwrap();
    drop(r);
    let mut log = Log::default();
    assert_eq!(lp.run_once(&mut log, NO_WAIT), Ok(0), "[{n}] closed fd reported");
    let _new_fd = claim_number(fd, &mut keep, readable_pipe);
    let new = lp.watch_with(fd, WatchOptions::new(Interest::READ), 2, record).unwrap();
    assert_ne!(old, new, "[{n}]");
    assert_eq!(lp.interest(old), None, "[{n}]");
    for pass in 1..=3 {
        assert_eq!(lp.run_once(&mut log, PATIENCE), Ok(1), "[{n}] pass {pass}");
    }
    assert_eq!(log.calls, vec![(fd, 2); 3], "[{n}]");
}

fn refused_replacement_on_a_closed_fd_keeps_the_old_watcher(cfg: &Config) {
    let _l = fd_lock();
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let mut keep = Vec::new();
    let r = readable_pipe(&mut keep);
    let fd = r.as_raw_fd();
    let old = lp.watch_with(fd, WatchOptions::new(Interest::READ), 1, record).unwrap();
    drop(r);
    assert_eq!(lp.watch(fd, Interest::READ, 0, record), Err(Error::Os(Errno::EBADF)), "[{n}]");
    assert_eq!(lp.watcher_of(fd), Some(old), "[{n}] a refused replacement changed the table");
    assert_eq!(lp.interest(old), Some(Interest::READ), "[{n}]");
    assert_eq!(lp.watcher_count(), 1, "[{n}]");
    assert!(lp.remove(old), "[{n}]");
}

fn unwatched_fd_whose_file_lives_on_in_a_dup_delivers_nothing(cfg: &Config) {
    let _l = fd_lock();
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (r, w) = pipe();
    let fd = r.as_raw_fd();
    lp.watch_with(fd, WatchOptions::new(Interest::READ), 1, record).unwrap();
    let d = sys::dup(fd).unwrap();
    drop(r);
    // The kernel keeps the registration (the file is alive in the dup)
    // and cannot remove it by the closed number: its events must go
    // nowhere once the watcher is gone.
    assert_eq!(remove_watcher_of(&mut lp, fd), Some(true), "[{n}]");
    write_once(w.as_raw_fd(), b"x");
    let mut log = Log::default();
    for _ in 0..3 {
        lp.run_once(&mut log, NO_WAIT).unwrap();
    }
    assert!(log.calls.is_empty(), "[{n}] removed watcher called: {:?}", log.calls);
    // The dup can be watched, and is reported once per pass, to its watcher.
    lp.watch_with(d.as_raw_fd(), WatchOptions::new(Interest::READ), 2, record).unwrap();
    for _ in 0..3 {
        lp.run_once(&mut log, PATIENCE).unwrap();
    }
    assert_eq!(log.calls, vec![(d.as_raw_fd(), 2); 3], "[{n}]");
}

fn rewatching_a_number_whose_old_registration_lingers_takes_it_over(cfg: &Config) {
    let _l = fd_lock();
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (r, w) = pipe();
    let fd = r.as_raw_fd();
    lp.watch_with(fd, WatchOptions::new(Interest::READ), 1, record).unwrap();
    let d = sys::dup(fd).unwrap();
    drop(r);
    assert_eq!(remove_watcher_of(&mut lp, fd), Some(true), "[{n}]");
    // Same file, same number: the kernel still holds this (file, fd) pair.
    let mut keep = Vec::new();
    let again = claim_number(fd, &mut keep, |_| sys::dup(d.as_raw_fd()).unwrap());
    assert_eq!(again.as_raw_fd(), fd);
    lp.watch_with(fd, WatchOptions::new(Interest::READ), 2, record).unwrap();
    write_once(w.as_raw_fd(), b"x");
    let mut log = Log::default();
    for _ in 0..3 {
        lp.run_once(&mut log, PATIENCE).unwrap();
    }
    assert_eq!(log.calls, vec![(fd, 2); 3], "[{n}]");
}

/// The fds open in this process, with what they point to.
fn open_fds() -> BTreeSet<(RawFd, String)> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd") {
        let entry = entry.unwrap();
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<RawFd>() else { continue };
        if let Ok(target) = std::fs::read_link(entry.path()) {
            out.insert((fd, target.to_string_lossy().into_owned()));
        }
    }
    out
}

fn new_fds_of_kind(before: &BTreeSet<(RawFd, String)>, kind: &str) -> Vec<RawFd> {
    open_fds().difference(before).filter(|(_, t)| t.contains(kind)).map(|(fd, _)| *fd).collect()
}

fn watching_the_wakers_eventfd_is_reserved(cfg: &Config) {
    let _l = fd_lock();
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let before = open_fds();
    lp.waker().unwrap();
    let eventfds = new_fds_of_kind(&before, "[eventfd]");
    assert_eq!(eventfds.len(), 1, "[{n}] the waker made one eventfd: {eventfds:?}");
    for interest in [Interest::READ, Interest::WRITE, Interest::empty()] {
        assert_eq!(lp.watch(eventfds[0], interest, 0, record), Err(Error::Reserved), "[{n}] {interest:?}");
    }
    assert_eq!(lp.watcher_count(), 0, "[{n}]");
}

fn watching_the_backends_own_fds_is_reserved(cfg: &Config) {
    use linux_event::backend::BackendKind;
    let _l = fd_lock();
    let n = cfg.name;
    let before = open_fds();
    let backend = cfg.backend();
    let epolls = new_fds_of_kind(&before, "[eventpoll]");
    let timerfds = new_fds_of_kind(&before, "[timerfd]");
    let rings = new_fds_of_kind(&before, "[io_uring]");
    let eventfds = new_fds_of_kind(&before, "[eventfd]");
    // Epoll: its epoll fd (and timerfd). Linux AIO: its inner epoll (and
    // that epoll's timerfd) and the eventfd AIO completions signal.
    // io_uring: its ring fd alone.
    let (own, expected_timerfds, expected_eventfds) = match cfg.kind {
        BackendKind::IoUring => (&rings, 0, 0),
        BackendKind::LinuxAio => (&epolls, 1, 1),
        _ => (&epolls, if cfg.timer == linux_event::backend::EpollTimer::Timerfd { 1 } else { 0 }, 0),
    };
    assert_eq!(*own, [backend.as_raw_fd()], "[{n}]");
    assert_eq!(timerfds.len(), expected_timerfds, "[{n}] timerfds: {timerfds:?}");
    assert_eq!(eventfds.len(), expected_eventfds, "[{n}] eventfds: {eventfds:?}");
    let mut lp = Loop::<Log, 256, 256>::with_backend(backend).unwrap();
    for fd in epolls.iter().chain(&timerfds).chain(&rings).chain(&eventfds) {
        for interest in [Interest::READ, Interest::WRITE, Interest::empty()] {
            assert_eq!(lp.watch(*fd, interest, 0, record), Err(Error::Reserved), "[{n}] fd {fd} {interest:?}");
        }
    }
    assert_eq!(lp.watcher_count(), 0, "[{n}]");
}

fn full_waker_table_is_capacity_leaks_no_fd_and_a_freed_slot_is_reused(cfg: &Config) {
    let _l = fd_lock();
    let n = cfg.name;
    let mut loops: Vec<Lp> = Vec::new();
    let mut wakers = Vec::new();
    loop {
        let mut lp: Lp = cfg.new_loop();
        let before = open_fds();
        match lp.waker() {
            Ok(w) => {
                wakers.push(w);
                loops.push(lp);
            }
            Err(e) => {
                assert_eq!(e, Error::Capacity, "[{n}]");
                assert_eq!(lp.on_wake(0, |_, _, _| {}), Err(Error::Capacity), "[{n}]");
                assert_eq!(
                    new_fds_of_kind(&before, "[eventfd]"),
                    Vec::<RawFd>::new(),
                    "[{n}] refused waker leaked its fd"
                );
                break;
            }
        }
        assert!(loops.len() <= MAX_WAKERS, "[{n}] more wakers than MAX_WAKERS");
    }
    // This binary's other tests hold no waker while we hold the lock.
    assert_eq!(loops.len(), MAX_WAKERS, "[{n}]");
    for (i, w) in wakers.iter().enumerate() {
        w.signal(i as u64 + 1).unwrap();
    }
    for (i, w) in wakers.iter().enumerate() {
        assert_eq!(w.drain(), Ok(i as u64 + 1), "[{n}] waker {i}");
    }
    let freed = wakers[7];
    drop(loops.remove(7));
    assert_eq!(freed.signal(1), Err(Error::Closed), "[{n}]");
    let mut lp: Lp = cfg.new_loop();
    let w = lp.waker().expect("a freed waker slot is reused");
    assert_ne!(w, freed, "[{n}]");
    assert_eq!(freed.drain(), Err(Error::Closed), "[{n}] the old handle reached the slot's new loop");
    assert_eq!(w.drain(), Ok(0), "[{n}]");
}

backend_tests!(
    stale_event_after_fd_reuse_in_the_same_batch_is_not_delivered,
    closed_and_reused_fd_number_reaches_only_the_new_watcher,
    refused_replacement_on_a_closed_fd_keeps_the_old_watcher,
    unwatched_fd_whose_file_lives_on_in_a_dup_delivers_nothing,
    rewatching_a_number_whose_old_registration_lingers_takes_it_over,
    watching_the_wakers_eventfd_is_reserved,
    watching_the_backends_own_fds_is_reserved,
    full_waker_table_is_capacity_leaks_no_fd_and_a_freed_slot_is_reused,
);
