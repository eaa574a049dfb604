//! Watchers: replacement, removal, the order and suppression of sides,
//! errors and hang-ups, trigger modes, enabling and disabling sides.

#[macro_use]
mod common;

use common::{Config, Loop, NO_WAIT, PATIENCE, drain, pass, pipe, remove_watcher_of, socketpair, write_once};
use linux_event::sys::RawFd;
use linux_event::{Error, Interest, Ready, Side, TimerEvent, Trigger, WatchEvent, WatchId, WatchOptions};
use std::io::Write;
use std::os::fd::AsRawFd;

/// One callback invocation, as the callback saw it.
#[derive(Copy, Clone, Debug, PartialEq)]
struct Seen {
    who: &'static str,
    id: WatchId,
    fd: RawFd,
    side: Side,
    ready: Ready,
    data: u64,
}

impl Seen {
    fn new(who: &'static str, ev: WatchEvent) -> Seen {
        Seen { who, id: ev.id(), fd: ev.fd(), side: ev.side(), ready: ev.ready(), data: ev.data() }
    }
}

#[derive(Default)]
struct Log {
    seen: Vec<Seen>,
    timers: usize,
}

impl Log {
    fn sides_of(&self, who: &str) -> Vec<Side> {
        self.seen.iter().filter(|s| s.who == who).map(|s| s.side).collect()
    }
    fn count(&self, who: &str) -> usize {
        self.seen.iter().filter(|s| s.who == who).count()
    }
}

type Lp = Loop<Log>;

fn old_cb(_lp: &mut Lp, log: &mut Log, ev: WatchEvent) {
    log.seen.push(Seen::new("old", ev));
}

fn new_cb(_lp: &mut Lp, log: &mut Log, ev: WatchEvent) {
    log.seen.push(Seen::new("new", ev));
}

fn record(_lp: &mut Lp, log: &mut Log, ev: WatchEvent) {
    log.seen.push(Seen::new("cb", ev));
}

fn timer_fired(_lp: &mut Lp, log: &mut Log, _id: TimerEvent) {
    log.timers += 1;
}

fn record_and_remove(lp: &mut Lp, log: &mut Log, ev: WatchEvent) {
    log.seen.push(Seen::new("cb", ev));
    lp.remove(ev.id());
}

fn replacing_the_watcher_of_an_fd_stales_the_old_id_and_only_the_new_callback_runs(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (r, w) = pipe();
    write_once(w.as_raw_fd(), b"x");
    let old = lp.watch(r.as_raw_fd(), Interest::READ, 0, old_cb).unwrap();
    let new = lp.watch(r.as_raw_fd(), Interest::READ, 0, new_cb).unwrap();
    assert_ne!(old, new, "[{n}] replacement must hand out a new id");
    assert_eq!(lp.watcher_count(), 1, "[{n}] one watcher per fd");
    assert_eq!(lp.watcher_of(r.as_raw_fd()), Some(new), "[{n}]");
    assert_eq!(lp.interest(old), None, "[{n}] old id must be stale");
    assert_eq!(lp.modify(old, Interest::READ), Err(Error::NotFound), "[{n}] old id must be stale");
    let mut log = Log::default();
    for round in 1..=3 {
        assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}] pass {round}");
        assert_eq!(log.count("old"), 0, "[{n}] the replaced callback ran: {:?}", log.seen);
        assert_eq!(log.count("new"), round, "[{n}] level-triggered new watcher, pass {round}");
    }
    assert!(log.seen.iter().all(|s| s.id == new && s.fd == r.as_raw_fd()), "[{n}] {:?}", log.seen);
    assert!(!lp.remove(old), "[{n}] a stale id cannot remove the new watcher");
    assert_eq!(lp.watcher_of(r.as_raw_fd()), Some(new), "[{n}]");
    assert!(lp.remove(new), "[{n}]");
}

fn replace_self_on_read(lp: &mut Lp, log: &mut Log, ev: WatchEvent) {
    log.seen.push(Seen::new("old", ev));
    if ev.side() == Side::Read {
        lp.watch(ev.fd(), Interest::READ | Interest::WRITE, 0, new_cb).unwrap();
    }
}

fn replacing_a_watcher_inside_its_own_read_callback_suppresses_its_write_side(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (a, mut b) = socketpair();
    b.write_all(b"ping").unwrap();
    let old = lp.watch(a.as_raw_fd(), Interest::READ | Interest::WRITE, 0, replace_self_on_read).unwrap();
    let mut log = Log::default();
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}] {:?}", log.seen);
    assert_eq!(log.sides_of("old"), [Side::Read], "[{n}] old write side ran after replacement");
    assert_eq!(log.count("new"), 0, "[{n}] this pass's event was for the old watcher: {:?}", log.seen);
    let new = lp.watcher_of(a.as_raw_fd()).unwrap();
    assert_ne!(new, old, "[{n}]");
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 2, "[{n}]");
    assert_eq!(log.sides_of("new"), [Side::Read, Side::Write], "[{n}]");
    assert_eq!(log.sides_of("old"), [Side::Read], "[{n}] the old callback ran again");
    assert!(log.seen.iter().filter(|s| s.who == "new").all(|s| s.id == new), "[{n}] {:?}", log.seen);
}

fn watcher_of_an_unwatched_fd_is_none(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (r, _w) = pipe();
    assert_eq!(remove_watcher_of(&mut lp, r.as_raw_fd()), None, "[{n}] never watched");
    assert_eq!(remove_watcher_of(&mut lp, -1), None, "[{n}] negative fd");
    assert_eq!(remove_watcher_of(&mut lp, i32::MAX), None, "[{n}] huge fd");
    assert_eq!(lp.watcher_count(), 0, "[{n}]");
}

fn removing_the_watcher_of_an_fd_forgets_the_fd_and_delivers_nothing(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (r, w) = pipe();
    write_once(w.as_raw_fd(), b"x");
    let id = lp.watch(r.as_raw_fd(), Interest::READ, 0, record).unwrap();
    assert_eq!(lp.watcher_of(r.as_raw_fd()), Some(id), "[{n}]");
    assert_eq!(remove_watcher_of(&mut lp, r.as_raw_fd()), Some(true), "[{n}]");
    assert_eq!(remove_watcher_of(&mut lp, r.as_raw_fd()), None, "[{n}] second removal by fd");
    assert_eq!(lp.watcher_of(r.as_raw_fd()), None, "[{n}]");
    assert_eq!(lp.interest(id), None, "[{n}] id stale after removal by fd");
    let mut log = Log::default();
    assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 0, "[{n}] removed watcher still reported");
    assert!(log.seen.is_empty(), "[{n}] {:?}", log.seen);
}

fn remove_twice_returns_true_then_false(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (r, w) = pipe();
    write_once(w.as_raw_fd(), b"x");
    let id = lp.watch(r.as_raw_fd(), Interest::READ, 0, record).unwrap();
    assert!(lp.remove(id), "[{n}] first remove");
    assert!(!lp.remove(id), "[{n}] second remove");
    assert_eq!(lp.watcher_count(), 0, "[{n}]");
    let mut log = Log::default();
    assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 0, "[{n}]");
    assert!(log.seen.is_empty(), "[{n}] {:?}", log.seen);
}

fn remove_of_an_id_already_removed_by_fd_returns_false_and_spares_a_new_watcher(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (r, w) = pipe();
    write_once(w.as_raw_fd(), b"x");
    let id = lp.watch(r.as_raw_fd(), Interest::READ, 0, record).unwrap();
    assert_eq!(remove_watcher_of(&mut lp, r.as_raw_fd()), Some(true), "[{n}]");
    assert!(!lp.remove(id), "[{n}] remove after removal by fd must report 'not live'");
    // A new watcher on the same fd must not be touched by the old id.
    let again = lp.watch(r.as_raw_fd(), Interest::READ, 0, record).unwrap();
    assert!(!lp.remove(id), "[{n}] old id removed the new watcher");
    assert_eq!(lp.watcher_of(r.as_raw_fd()), Some(again), "[{n}]");
    let mut log = Log::default();
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}]");
    assert!(log.seen.iter().all(|s| s.id == again), "[{n}] {:?}", log.seen);
}

fn read_runs_before_write_in_one_event(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (a, mut b) = socketpair();
    b.write_all(b"ping").unwrap();
    lp.watch(a.as_raw_fd(), Interest::READ | Interest::WRITE, 0, record).unwrap();
    let mut log = Log::default();
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 2, "[{n}] {:?}", log.seen);
    assert_eq!(log.sides_of("cb"), [Side::Read, Side::Write], "[{n}]");
    assert!(log.seen.iter().all(|s| s.ready.contains(Ready::READABLE | Ready::WRITABLE)), "[{n}] {:?}", log.seen);
}

fn read_callback_that_removes_its_watcher_suppresses_the_write_callback_in_the_same_event(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (a, mut b) = socketpair();
    b.write_all(b"ping").unwrap();
    lp.watch(a.as_raw_fd(), Interest::READ | Interest::WRITE, 0, record_and_remove).unwrap();
    let mut log = Log::default();
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}] {:?}", log.seen);
    assert_eq!(log.sides_of("cb"), [Side::Read], "[{n}] write side ran after read removed the watcher");
    assert_eq!(lp.watcher_count(), 0, "[{n}]");
    assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 0, "[{n}]");
    assert_eq!(log.seen.len(), 1, "[{n}] {:?}", log.seen);
}

fn disable_write_on_read(lp: &mut Lp, log: &mut Log, ev: WatchEvent) {
    log.seen.push(Seen::new("cb", ev));
    if ev.side() == Side::Read {
        lp.disable(ev.id(), Interest::WRITE).unwrap();
    }
}

fn read_callback_that_disables_write_suppresses_the_write_callback_in_the_same_event(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (a, mut b) = socketpair();
    b.write_all(b"ping").unwrap();
    let id = lp.watch(a.as_raw_fd(), Interest::READ | Interest::WRITE, 0, disable_write_on_read).unwrap();
    let mut log = Log::default();
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}] {:?}", log.seen);
    assert_eq!(log.sides_of("cb"), [Side::Read], "[{n}]");
    assert_eq!(lp.interest(id), Some(Interest::READ), "[{n}]");
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}] level read, no write");
    assert_eq!(log.sides_of("cb"), [Side::Read, Side::Read], "[{n}]");
}

/// A full pipe's write end whose read end is closed: the kernel reports
/// `EPOLLERR` alone on it (no `EPOLLOUT`: full) for as long as it stays open.
fn broken_pipe_write_end() -> linux_event::sys::OwnedFd {
    let (r, w) = pipe();
    let chunk = [0u8; 4096];
    while linux_event::sys::write(w.as_raw_fd(), &chunk).is_ok() {}
    assert_eq!(linux_event::sys::write(w.as_raw_fd(), &chunk), Err(linux_event::Errno::EAGAIN));
    drop(r);
    w
}

fn error_with_error_interest_goes_to_the_error_side_alone(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    // Full (EPOLLERR alone) and with room (EPOLLERR | EPOLLOUT): either
    // way only the error side runs.
    let (r, with_room) = pipe();
    drop(r);
    let full = broken_pipe_write_end();
    for (what, fd, ready) in
        [("full", full.as_raw_fd(), Ready::ERROR), ("with room", with_room.as_raw_fd(), Ready::ERROR | Ready::WRITABLE)]
    {
        let id = lp.watch(fd, Interest::READ | Interest::WRITE | Interest::ERROR, 0, record).unwrap();
        let mut log = Log::default();
        assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}] {what}: {:?}", log.seen);
        assert_eq!(log.sides_of("cb"), [Side::Error], "[{n}] {what}: {:?}", log.seen);
        assert_eq!(log.seen[0].ready, ready, "[{n}] {what}");
        lp.remove(id);
    }
}

fn error_without_error_interest_goes_to_the_write_side_with_is_error(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let w = broken_pipe_write_end();
    lp.watch(w.as_raw_fd(), Interest::WRITE, 0, record).unwrap();
    // (The full pipe reports EPOLLERR without EPOLLOUT: the error alone
    // must wake the write side.)
    let mut log = Log::default();
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}] {:?}", log.seen);
    assert_eq!(log.sides_of("cb"), [Side::Write], "[{n}] {:?}", log.seen);
    assert_eq!(log.seen[0].ready, Ready::ERROR, "[{n}] ev.is_error() must hold: {:?}", log.seen);
}

fn error_without_error_interest_wakes_both_read_and_write_sides(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let w = broken_pipe_write_end();
    lp.watch(w.as_raw_fd(), Interest::READ | Interest::WRITE, 0, record).unwrap();
    let mut log = Log::default();
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 2, "[{n}] {:?}", log.seen);
    assert_eq!(log.sides_of("cb"), [Side::Read, Side::Write], "[{n}] {:?}", log.seen);
    assert!(log.seen.iter().all(|s| s.ready == Ready::ERROR), "[{n}] {:?}", log.seen);
}

fn hangup_wakes_the_write_side_of_a_write_only_watcher(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    // A pipe read end asked for writes only: after the writer closes the
    // kernel reports EPOLLHUP alone, forever. The write side must hear it.
    let (r, w) = pipe();
    drop(w);
    lp.watch(r.as_raw_fd(), Interest::WRITE, 0, record_and_remove).unwrap();
    let mut log = Log::default();
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}] {:?}", log.seen);
    assert_eq!(log.sides_of("cb"), [Side::Write], "[{n}]");
    assert_eq!(log.seen[0].ready, Ready::HANGUP, "[{n}]");
}

fn is_hangup_cb(lp: &mut Lp, log: &mut Log, ev: WatchEvent) {
    assert_eq!(ev.is_hangup(), ev.ready().intersects(Ready::HANGUP | Ready::READ_HANGUP));
    log.seen.push(Seen::new("cb", ev));
    lp.remove(ev.id());
}

fn hangup_of_the_socket_peer_wakes_the_read_side(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (a, b) = socketpair();
    drop(b);
    lp.watch(a.as_raw_fd(), Interest::READ, 0, is_hangup_cb).unwrap();
    let mut log = Log::default();
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}] {:?}", log.seen);
    assert_eq!(log.sides_of("cb"), [Side::Read], "[{n}]");
    assert!(log.seen[0].ready.intersects(Ready::HANGUP | Ready::READ_HANGUP), "[{n}] {:?}", log.seen);
}

fn hangup_without_data_wakes_the_read_side(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (r, w) = pipe();
    drop(w);
    lp.watch(r.as_raw_fd(), Interest::READ, 0, is_hangup_cb).unwrap();
    let mut log = Log::default();
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}] {:?}", log.seen);
    assert_eq!(log.sides_of("cb"), [Side::Read], "[{n}]");
    let ready = log.seen[0].ready;
    assert!(ready.contains(Ready::HANGUP) && !ready.contains(Ready::READABLE), "[{n}] {ready:?}");
}

fn level_watcher_is_told_again_while_data_remains(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (r, w) = pipe();
    write_once(w.as_raw_fd(), b"unread");
    lp.watch(r.as_raw_fd(), Interest::READ, 0, record).unwrap();
    let mut log = Log::default();
    for round in 1..=3 {
        assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 1, "[{n}] pass {round}");
    }
    drain(r.as_raw_fd());
    assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 0, "[{n}] drained");
}

fn oneshot_watcher_fires_once_and_rearms_with_modify_to_the_same_interest(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (r, w) = pipe();
    // Never drained: a level or edge watcher would keep hearing of it.
    write_once(w.as_raw_fd(), b"stays");
    let opts = WatchOptions::new(Interest::READ).trigger(Trigger::Oneshot);
    let id = lp.watch_with(r.as_raw_fd(), opts, 0, record).unwrap();
    let mut log = Log::default();
    for round in 1..=3 {
        assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}] round {round}: armed");
        for _ in 0..3 {
            assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 0, "[{n}] round {round}: fired twice");
        }
        assert_eq!(log.count("cb"), round, "[{n}]");
        assert_eq!(lp.interest(id), Some(Interest::READ), "[{n}] a fired oneshot keeps its watcher");
        lp.modify(id, Interest::READ).unwrap();
    }
}

const LINES: usize = 10_000;

#[derive(Default)]
struct EdgeCtx {
    calls: usize,
    data: Vec<u8>,
    /// Read at most this many bytes per callback (0: drain to EAGAIN).
    limit: usize,
}

fn edge_reader(_lp: &mut Loop<EdgeCtx>, ctx: &mut EdgeCtx, ev: WatchEvent) {
    ctx.calls += 1;
    if ctx.limit == 0 {
        ctx.data.extend(drain(ev.fd()));
    } else {
        let mut buf = vec![0u8; ctx.limit];
        let got = linux_event::sys::read(ev.fd(), &mut buf).unwrap();
        ctx.data.extend_from_slice(&buf[..got]);
    }
}

fn lines(range: std::ops::Range<usize>) -> Vec<u8> {
    range.flat_map(|i| format!("{i}\n").into_bytes()).collect()
}

fn edge_watcher_drains_ten_thousand_lines_written_at_once_and_hears_the_next_edge(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Loop<EdgeCtx> = cfg.new_loop();
    let (r, w) = pipe();
    let opts = WatchOptions::new(Interest::READ).trigger(Trigger::Edge);
    lp.watch_with(r.as_raw_fd(), opts, 0, edge_reader).unwrap();
    let mut ctx = EdgeCtx::default();

    let first = lines(0..LINES);
    write_once(w.as_raw_fd(), &first);
    assert_eq!(lp.run_once(&mut ctx, PATIENCE), Ok(1), "[{n}]");
    assert_eq!(ctx.calls, 1, "[{n}]");
    assert_eq!(ctx.data.len(), first.len(), "[{n}] bytes");
    assert_eq!(ctx.data.iter().filter(|&&c| c == b'\n').count(), LINES, "[{n}] lines");
    assert!(ctx.data == first, "[{n}] content differs");
    assert_eq!(lp.run_once(&mut ctx, NO_WAIT), Ok(0), "[{n}] no new edge yet");

    let second = lines(LINES..2 * LINES);
    write_once(w.as_raw_fd(), &second);
    assert_eq!(lp.run_once(&mut ctx, PATIENCE), Ok(1), "[{n}] the next write is a new edge");
    assert_eq!(ctx.calls, 2, "[{n}]");
    assert_eq!(ctx.data.iter().filter(|&&c| c == b'\n').count(), 2 * LINES, "[{n}] lines");
    assert!(ctx.data[first.len()..] == second[..], "[{n}] content differs");
    assert_eq!(lp.run_once(&mut ctx, NO_WAIT), Ok(0), "[{n}]");
}

fn edge_watcher_is_not_told_again_about_data_it_left_unread(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Loop<EdgeCtx> = cfg.new_loop();
    let (a, mut b) = socketpair();
    let opts = WatchOptions::new(Interest::READ).trigger(Trigger::Edge);
    lp.watch_with(a.as_raw_fd(), opts, 0, edge_reader).unwrap();
    let mut ctx = EdgeCtx { limit: 1, ..EdgeCtx::default() };
    b.write_all(b"0123456789").unwrap();
    assert_eq!(lp.run_once(&mut ctx, PATIENCE), Ok(1), "[{n}]");
    assert_eq!(lp.run_once(&mut ctx, NO_WAIT), Ok(0), "[{n}] edge mode reported unread data again");
    assert_eq!(ctx.data, b"0", "[{n}]");
    b.write_all(b"x").unwrap();
    assert_eq!(lp.run_once(&mut ctx, PATIENCE), Ok(1), "[{n}] new data is a new edge");
    assert_eq!(ctx.data, b"01", "[{n}]");
}

fn set_trigger_switches_a_level_watcher_to_edge(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (r, w) = pipe();
    write_once(w.as_raw_fd(), b"unread");
    let id = lp.watch(r.as_raw_fd(), Interest::READ, 0, record).unwrap();
    let mut log = Log::default();
    assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 1, "[{n}] level");
    assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 1, "[{n}] level again");
    lp.set_trigger(id, Trigger::Edge).unwrap();
    // Re-registering reports the current state once...
    let after_switch = pass(cfg, &mut lp, &mut log, NO_WAIT);
    assert!(after_switch <= 1, "[{n}] {after_switch}");
    // ...and then not again while nothing new arrives.
    assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 0, "[{n}] edge mode");
    write_once(w.as_raw_fd(), b"more");
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}] new edge");
}

fn closing_a_watched_fd_without_removing_its_watcher_delivers_nothing_afterwards(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (r, w) = common::pipe_with_unique_read_fd();
    write_once(w.as_raw_fd(), b"pending");
    let rfd = r.as_raw_fd();
    let id = lp.watch(rfd, Interest::READ, 0, record).unwrap();
    drop(r);
    let mut log = Log::default();
    for _ in 0..3 {
        assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 0, "[{n}] {:?}", log.seen);
    }
    assert!(log.seen.is_empty(), "[{n}] {:?}", log.seen);
    // The watcher stays until removed, and removing it is not an error.
    assert_eq!(lp.watcher_of(rfd), Some(id), "[{n}]");
    assert!(lp.remove(id), "[{n}]");
    assert_eq!(lp.watcher_count(), 0, "[{n}]");
}

fn disabling_every_side_keeps_the_id_and_delivers_nothing_until_enabled_again(cfg: &Config) {
    let n = cfg.name;
    // Fds the kernel reports errors or hang-ups for even with an empty
    // event mask: disabling must take them out of the kernel.
    let broken = broken_pipe_write_end();
    let (hung, peer) = socketpair();
    drop(peer);
    let cases: [(&str, RawFd, Interest); 2] =
        [("broken pipe", broken.as_raw_fd(), Interest::WRITE), ("hung-up socket", hung.as_raw_fd(), Interest::READ)];
    for (what, fd, interest) in cases {
        let mut lp: Lp = cfg.new_loop();
        let id = lp.watch(fd, interest, 0, record).unwrap();
        lp.disable(id, interest).unwrap();
        assert_eq!(lp.interest(id), Some(Interest::empty()), "[{n}] {what}");
        assert_eq!(lp.watcher_of(fd), Some(id), "[{n}] {what}: id must stay valid");
        let mut log = Log::default();
        for _ in 0..3 {
            assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 0, "[{n}] {what}: {:?}", log.seen);
        }
        // Nor does it wake the loop: only the timer ends this wait.
        lp.after(core::time::Duration::from_millis(20), 0, timer_fired).unwrap();
        assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}] {what}: woken by a disabled watcher");
        assert_eq!(log.timers, 1, "[{n}] {what}");
        // Disabling nothing more, or the same side twice, is harmless.
        lp.disable(id, interest).unwrap();
        lp.disable(id, Interest::empty()).unwrap();
        assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 0, "[{n}] {what}: {:?}", log.seen);
        lp.enable(id, interest).unwrap();
        assert_eq!(lp.interest(id), Some(interest), "[{n}] {what}");
        assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}] {what}: enabled again");
        assert!(log.seen.iter().all(|s| s.id == id), "[{n}] {what}: {:?}", log.seen);
    }
}

fn disabling_one_side_keeps_the_other(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (a, mut b) = socketpair();
    b.write_all(b"ping").unwrap();
    let id = lp.watch(a.as_raw_fd(), Interest::READ | Interest::WRITE, 0, record).unwrap();
    lp.disable(id, Interest::READ).unwrap();
    let mut log = Log::default();
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}]");
    assert_eq!(log.sides_of("cb"), [Side::Write], "[{n}]");
    lp.enable(id, Interest::READ).unwrap();
    lp.disable(id, Interest::WRITE).unwrap();
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}]");
    assert_eq!(log.sides_of("cb"), [Side::Write, Side::Read], "[{n}]");
}

fn watch_data_reaches_the_callback_and_set_data_changes_it(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (r, w) = pipe();
    write_once(w.as_raw_fd(), b"x");
    let id = lp.watch_with(r.as_raw_fd(), WatchOptions::new(Interest::READ), 0xdead_beef, record).unwrap();
    let mut log = Log::default();
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}]");
    lp.set_data(id, u64::MAX).unwrap();
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}]");
    let data: Vec<u64> = log.seen.iter().map(|s| s.data).collect();
    assert_eq!(data, [0xdead_beef, u64::MAX], "[{n}]");
}

fn set_callback_sends_later_events_to_the_new_callback_under_the_same_id(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (r, w) = pipe();
    write_once(w.as_raw_fd(), b"x");
    let id = lp.watch(r.as_raw_fd(), Interest::READ, 0, old_cb).unwrap();
    let mut log = Log::default();
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}]");
    lp.set_callback(id, new_cb).unwrap();
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}]");
    let who: Vec<&str> = log.seen.iter().map(|s| s.who).collect();
    assert_eq!(who, ["old", "new"], "[{n}]");
    assert!(log.seen.iter().all(|s| s.id == id), "[{n}] {:?}", log.seen);
}

fn more_ready_fds_than_one_batch_are_all_reported_over_the_next_passes(cfg: &Config) {
    let n = cfg.name;
    const BATCH: usize = 64;
    let count = BATCH * 2 + 5;
    let mut lp: Lp = cfg.new_loop();
    assert_eq!(lp.event_batch(), 256, "[{n}] the default batch is the watcher capacity");
    assert_eq!(lp.set_event_batch(0), Err(linux_event::Error::Capacity), "[{n}]");
    assert_eq!(lp.set_event_batch(257), Err(linux_event::Error::Capacity), "[{n}]");
    lp.set_event_batch(BATCH).unwrap();
    let pipes: Vec<_> = (0..count).map(|_| pipe()).collect();
    for (i, (r, w)) in pipes.iter().enumerate() {
        write_once(w.as_raw_fd(), b"x");
        lp.watch_with(r.as_raw_fd(), WatchOptions::new(Interest::READ), i as u64, record_and_remove).unwrap();
    }
    let mut log = Log::default();
    let mut passes = 0;
    while log.seen.len() < count {
        let ran = pass(cfg, &mut lp, &mut log, PATIENCE);
        assert!(ran <= BATCH, "[{n}] {ran} callbacks from one batch");
        passes += 1;
        assert!(passes <= 10, "[{n}] only {} of {count} reported", log.seen.len());
    }
    let mut data: Vec<u64> = log.seen.iter().map(|s| s.data).collect();
    data.sort();
    assert_eq!(data, (0..count as u64).collect::<Vec<_>>(), "[{n}] each fd exactly once");
    assert!(passes >= 3, "[{n}] {passes}");
    assert_eq!(lp.watcher_count(), 0, "[{n}]");
}

fn with_the_default_batch_one_pass_reports_every_ready_fd(cfg: &Config) {
    let n = cfg.name;
    let count = 200;
    let mut lp: Lp = cfg.new_loop();
    let pipes: Vec<_> = (0..count).map(|_| pipe()).collect();
    for (i, (r, w)) in pipes.iter().enumerate() {
        write_once(w.as_raw_fd(), b"x");
        lp.watch(r.as_raw_fd(), Interest::READ, i as u64, record_and_remove).unwrap();
    }
    let mut log = Log::default();
    // The one-shot backends arm at the next wait and may complete some polls
    // only in the wait after: every fd is reported within two passes.
    pass(cfg, &mut lp, &mut log, PATIENCE);
    if cfg.name.starts_with("epoll") {
        assert_eq!(log.seen.len(), count, "[{n}] one wait reports them all");
    }
    if log.seen.len() < count {
        pass(cfg, &mut lp, &mut log, PATIENCE);
    }
    assert_eq!(log.seen.len(), count, "[{n}]");
}

backend_tests!(
    with_the_default_batch_one_pass_reports_every_ready_fd,
    replacing_the_watcher_of_an_fd_stales_the_old_id_and_only_the_new_callback_runs,
    replacing_a_watcher_inside_its_own_read_callback_suppresses_its_write_side,
    watcher_of_an_unwatched_fd_is_none,
    removing_the_watcher_of_an_fd_forgets_the_fd_and_delivers_nothing,
    remove_twice_returns_true_then_false,
    remove_of_an_id_already_removed_by_fd_returns_false_and_spares_a_new_watcher,
    read_runs_before_write_in_one_event,
    read_callback_that_removes_its_watcher_suppresses_the_write_callback_in_the_same_event,
    read_callback_that_disables_write_suppresses_the_write_callback_in_the_same_event,
    error_with_error_interest_goes_to_the_error_side_alone,
    error_without_error_interest_goes_to_the_write_side_with_is_error,
    error_without_error_interest_wakes_both_read_and_write_sides,
    hangup_wakes_the_write_side_of_a_write_only_watcher,
    hangup_of_the_socket_peer_wakes_the_read_side,
    hangup_without_data_wakes_the_read_side,
    level_watcher_is_told_again_while_data_remains,
    oneshot_watcher_fires_once_and_rearms_with_modify_to_the_same_interest,
    edge_watcher_drains_ten_thousand_lines_written_at_once_and_hears_the_next_edge,
    edge_watcher_is_not_told_again_about_data_it_left_unread,
    set_trigger_switches_a_level_watcher_to_edge,
    closing_a_watched_fd_without_removing_its_watcher_delivers_nothing_afterwards,
    disabling_every_side_keeps_the_id_and_delivers_nothing_until_enabled_again,
    disabling_one_side_keeps_the_other,
    watch_data_reaches_the_callback_and_set_data_changes_it,
    set_callback_sends_later_events_to_the_new_callback_under_the_same_id,
    more_ready_fds_than_one_batch_are_all_reported_over_the_next_passes,
);
