//! The loop, unchanged, on the deterministic `Sim` backend: scripted
//! readiness, a virtual clock that jumps to the next deadline, and the
//! invariants of DESIGN.md checked without a kernel in the way.

use core::time::Duration;
use linux_event::backend::Sim;
use linux_event::{
    Errno, Error, Instant, Interest, IoEvent, Loop, Ready, Side, TimerId, Trigger, WatchId, WatchOptions,
};

type Lp = Loop<Log, 16, 16, Sim<16>>;

/// What the callbacks saw, in order.
#[derive(Default)]
struct Log {
    seen: Vec<(&'static str, i32, Side)>,
    fired: Vec<(u64, Instant)>,
    ids: Vec<WatchId>,
    timers: Vec<TimerId>,
}

fn sim_loop() -> Lp {
    Loop::with_backend(Sim::new()).unwrap()
}

fn record(_lp: &mut Lp, log: &mut Log, ev: IoEvent) {
    log.seen.push(("a", ev.fd(), ev.side()));
}

fn record_b(_lp: &mut Lp, log: &mut Log, ev: IoEvent) {
    log.seen.push(("b", ev.fd(), ev.side()));
}

fn fire(lp: &mut Lp, log: &mut Log, id: TimerId) {
    let which = log.timers.iter().position(|t| *t == id).unwrap() as u64;
    log.fired.push((which, lp.now()));
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn at_ms(n: u64) -> Instant {
    Instant::from_nanos(n * 1_000_000)
}

#[test]
fn scripted_readiness_runs_read_then_write() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    assert_eq!(lp.backend_name(), "sim");
    lp.watch_with(3, WatchOptions::new(Interest::READ | Interest::WRITE).data(33), |_lp, log: &mut Log, ev| {
        assert_eq!(ev.data(), 33);
        log.seen.push(("a", ev.fd(), ev.side()));
    })
    .unwrap();
    assert_eq!(lp.run_once(&mut log, Some(Duration::ZERO)).unwrap(), 0);

    lp.backend_mut().set_ready(3, Ready::READABLE | Ready::WRITABLE).unwrap();
    assert_eq!(lp.run_once(&mut log, None).unwrap(), 2);
    assert_eq!(log.seen, [("a", 3, Side::Read), ("a", 3, Side::Write)]);

    // Level-triggered: reported again while ready.
    lp.backend_mut().clear_ready(3, Ready::READABLE);
    assert_eq!(lp.run_once(&mut log, None).unwrap(), 1);
    assert_eq!(log.seen[2], ("a", 3, Side::Write));

    // A hang-up wakes the read side.
    lp.backend_mut().clear_ready(3, Ready::WRITABLE);
    lp.backend_mut().set_ready(3, Ready::HANGUP).unwrap();
    lp.run_once(&mut log, None).unwrap();
    assert_eq!(log.seen[3], ("a", 3, Side::Read));
    // Nothing moved the clock.
    assert_eq!(lp.now(), Instant::ZERO);
}

#[test]
fn error_interest_gets_the_error_side_alone() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    lp.watch(4, Interest::READ | Interest::ERROR, record).unwrap();
    lp.backend_mut().set_ready(4, Ready::READABLE | Ready::ERROR).unwrap();
    lp.run_once(&mut log, None).unwrap();
    assert_eq!(log.seen, [("a", 4, Side::Error)]);
}

#[test]
fn timers_fire_in_order_as_the_clock_jumps() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    for delay in [30, 10, 20, 10, 0] {
        let id = lp.after(ms(delay), fire).unwrap();
        log.timers.push(id);
    }
    let mut passes = 0;
    while lp.timer_count() > 0 {
        lp.run_once(&mut log, None).unwrap();
        passes += 1;
        assert!(passes < 10);
    }
    // Deadline order, insertion order among equals, each at its deadline.
    assert_eq!(log.fired, [(4, at_ms(0)), (1, at_ms(10)), (3, at_ms(10)), (2, at_ms(20)), (0, at_ms(30))]);
    assert_eq!(lp.now(), at_ms(30));
    // One wait per pass.
    assert_eq!(lp.backend().waits(), passes);
}

#[test]
fn repeating_timer_keeps_its_phase_on_the_virtual_clock() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    let id = lp.every(ms(10), fire).unwrap();
    log.timers.push(id);
    for _ in 0..3 {
        lp.run_once(&mut log, None).unwrap();
    }
    // A late pass: the clock was pushed past two ticks by the script.
    lp.backend_mut().advance(ms(25));
    lp.run_once(&mut log, Some(Duration::ZERO)).unwrap();
    lp.run_once(&mut log, None).unwrap();
    let times: Vec<Instant> = log.fired.iter().map(|f| f.1).collect();
    assert_eq!(times, [at_ms(10), at_ms(20), at_ms(30), at_ms(55), at_ms(60)]);
}

#[test]
fn run_returns_when_the_timers_are_done() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    let id = lp.after(Duration::from_secs(86_400), fire).unwrap();
    log.timers.push(id);
    lp.run(&mut log).unwrap();
    assert_eq!(log.fired, [(0, Instant::from_nanos(86_400 * 1_000_000_000))]);
}

#[test]
fn run_with_a_dry_script_stops_on_the_stall_error() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    lp.watch(5, Interest::READ, record).unwrap();
    lp.backend_mut().set_stall_error(Some(Errno::ETIMEDOUT));
    lp.backend_mut().set_ready(5, Ready::READABLE).unwrap();
    lp.set_callback(lp.watcher_of(5).unwrap(), |lp, log: &mut Log, ev| {
        log.seen.push(("a", ev.fd(), ev.side()));
        // The handler drains the virtual fd.
        lp.backend_mut().clear_ready(ev.fd(), Ready::READABLE);
    })
    .unwrap();
    assert_eq!(lp.run(&mut log), Err(Error::Os(Errno::ETIMEDOUT)));
    assert_eq!(log.seen, [("a", 5, Side::Read)]);
}

#[test]
fn unwatched_later_in_the_batch_gets_nothing() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    lp.watch(1, Interest::READ, |lp, log: &mut Log, ev| {
        log.seen.push(("a", ev.fd(), ev.side()));
        lp.unwatch(2).unwrap();
    })
    .unwrap();
    lp.watch(2, Interest::READ, record_b).unwrap();
    // fd 1 became ready first, so its event comes first in the batch.
    lp.backend_mut().set_ready(1, Ready::READABLE).unwrap();
    lp.backend_mut().set_ready(2, Ready::READABLE).unwrap();
    assert_eq!(lp.run_once(&mut log, None).unwrap(), 1);
    assert_eq!(log.seen, [("a", 1, Side::Read)]);
    assert_eq!(lp.backend().registration(2), None);
}

#[test]
fn replaced_later_in_the_batch_gets_nothing_until_the_next_pass() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    lp.watch(1, Interest::READ, |lp, log: &mut Log, ev| {
        log.seen.push(("a", ev.fd(), ev.side()));
        if log.ids.is_empty() {
            // Same fd, new watcher: the event already in this batch carries
            // the old key and reaches neither.
            let id = lp.watch(2, Interest::READ, record).unwrap();
            log.ids.push(id);
        }
    })
    .unwrap();
    let old = lp.watch(2, Interest::READ, record_b).unwrap();
    lp.backend_mut().set_ready(1, Ready::READABLE).unwrap();
    lp.backend_mut().set_ready(2, Ready::READABLE).unwrap();
    assert_eq!(lp.run_once(&mut log, None).unwrap(), 1);
    assert_eq!(log.seen, [("a", 1, Side::Read)]);
    assert_eq!(lp.interest(old), None);
    assert!(!lp.unwatch_id(old));

    log.seen.clear();
    lp.run_once(&mut log, None).unwrap();
    assert_eq!(log.seen, [("a", 1, Side::Read), ("a", 2, Side::Read)]);
}

#[test]
fn closed_and_reused_fd_number_never_reaches_the_old_watcher() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    let old = lp.watch(6, Interest::READ, record_b).unwrap();
    lp.backend_mut().set_ready(6, Ready::READABLE).unwrap();
    // Close behind the loop's back, then the same number comes back.
    lp.backend_mut().close(6);
    assert!(lp.unwatch_id(old));
    let new = lp.watch(6, Interest::READ, record).unwrap();
    assert_ne!(old, new);
    lp.backend_mut().set_ready(6, Ready::READABLE).unwrap();
    lp.run_once(&mut log, None).unwrap();
    assert_eq!(log.seen, [("a", 6, Side::Read)]);
}

#[test]
fn oneshot_reports_once_until_modified() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    let id = lp.watch_with(7, WatchOptions::new(Interest::READ).trigger(Trigger::Oneshot), record).unwrap();
    lp.backend_mut().set_ready(7, Ready::READABLE).unwrap();
    assert_eq!(lp.run_once(&mut log, None).unwrap(), 1);
    assert_eq!(lp.run_once(&mut log, Some(Duration::ZERO)).unwrap(), 0);
    lp.backend_mut().set_ready(7, Ready::READABLE).unwrap();
    assert_eq!(lp.run_once(&mut log, Some(Duration::ZERO)).unwrap(), 0);
    // Re-arming with the same interest reports the still-ready fd again.
    lp.modify(id, Interest::READ).unwrap();
    assert_eq!(lp.run_once(&mut log, None).unwrap(), 1);
    assert_eq!(lp.run_once(&mut log, Some(Duration::ZERO)).unwrap(), 0);
    assert_eq!(log.seen.len(), 2);
}

#[test]
fn edge_reports_once_per_wakeup() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    lp.watch_with(8, WatchOptions::new(Interest::READ).trigger(Trigger::Edge), record).unwrap();
    lp.backend_mut().set_ready(8, Ready::READABLE).unwrap();
    assert_eq!(lp.run_once(&mut log, None).unwrap(), 1);
    // Still readable (not drained), but no new wake-up: silence.
    assert_eq!(lp.run_once(&mut log, Some(Duration::ZERO)).unwrap(), 0);
    // New data: one more report, however many wake-ups came in between.
    lp.backend_mut().set_ready(8, Ready::READABLE).unwrap();
    lp.backend_mut().set_ready(8, Ready::READABLE).unwrap();
    assert_eq!(lp.run_once(&mut log, None).unwrap(), 1);
    assert_eq!(lp.run_once(&mut log, Some(Duration::ZERO)).unwrap(), 0);
}

#[test]
fn disabled_watcher_leaves_the_backend_and_comes_back() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    let id = lp.watch(9, Interest::READ, record).unwrap();
    lp.backend_mut().set_ready(9, Ready::READABLE).unwrap();
    lp.disable(id, Interest::READ).unwrap();
    assert_eq!(lp.backend().registration(9), None);
    assert_eq!(lp.run_once(&mut log, Some(Duration::ZERO)).unwrap(), 0);
    lp.enable(id, Interest::READ).unwrap();
    assert_eq!(lp.backend().registration(9).map(|r| r.interest), Some(Interest::READ));
    assert_eq!(lp.run_once(&mut log, None).unwrap(), 1);
}

#[test]
fn timer_added_during_dispatch_waits_for_the_next_pass() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    lp.watch(1, Interest::READ, |lp, log: &mut Log, _ev| {
        if log.timers.is_empty() {
            let id = lp.after(Duration::ZERO, fire).unwrap();
            log.timers.push(id);
        }
    })
    .unwrap();
    let first = lp
        .after(Duration::ZERO, |lp, log: &mut Log, _id| {
            // Due now, added while timers fire: not in this pass either.
            let id = lp.after(Duration::ZERO, fire).unwrap();
            log.timers.push(id);
        })
        .unwrap();
    lp.backend_mut().set_ready(1, Ready::READABLE).unwrap();
    // Pass 1: the watcher adds timer 0 and `first` adds timer 1; neither fires.
    assert_eq!(lp.run_once(&mut log, None).unwrap(), 2);
    assert!(!lp.is_live(first));
    assert!(log.fired.is_empty());
    assert_eq!(log.timers.len(), 2);
    lp.backend_mut().clear_ready(1, Ready::READABLE);
    // Pass 2: both, in insertion order, at the same instant.
    assert_eq!(lp.run_once(&mut log, None).unwrap(), 2);
    assert_eq!(log.fired, [(0, Instant::ZERO), (1, Instant::ZERO)]);
}

#[test]
fn refused_registration_changes_nothing() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    let id = lp.watch(2, Interest::READ, record).unwrap();
    lp.backend_mut().fail_next(Errno::ENOMEM);
    assert_eq!(lp.watch(2, Interest::WRITE, record_b), Err(Error::Os(Errno::ENOMEM)));
    assert_eq!(lp.interest(id), Some(Interest::READ));
    lp.backend_mut().fail_next(Errno::EPERM);
    assert_eq!(lp.modify(id, Interest::WRITE), Err(Error::Os(Errno::EPERM)));
    assert_eq!(lp.interest(id), Some(Interest::READ));
    lp.backend_mut().fail_next(Errno::EBADF);
    assert_eq!(lp.watch(3, Interest::READ, record_b), Err(Error::Os(Errno::EBADF)));
    assert_eq!(lp.watcher_of(3), None);
    lp.backend_mut().set_ready(2, Ready::READABLE).unwrap();
    lp.run_once(&mut log, None).unwrap();
    assert_eq!(log.seen, [("a", 2, Side::Read)]);

    lp.backend_mut().fail_next_wait(Errno::EFAULT);
    assert_eq!(lp.run_once(&mut log, None), Err(Error::Os(Errno::EFAULT)));
    assert_eq!(lp.run_once(&mut log, None).unwrap(), 1);
}

#[test]
fn full_tables_are_capacity_not_loss() {
    let mut lp: Loop<Log, 4, 2, Sim<4>> = Loop::with_backend(Sim::new()).unwrap();
    let mut log = Log::default();
    fn rec(_lp: &mut Loop<Log, 4, 2, Sim<4>>, log: &mut Log, ev: IoEvent) {
        log.seen.push(("a", ev.fd(), ev.side()));
    }
    for fd in 0..4 {
        lp.watch(fd, Interest::READ, rec).unwrap();
    }
    assert_eq!(lp.watch(4, Interest::READ, rec), Err(Error::Capacity));
    lp.after(ms(1), |_, _, _| {}).unwrap();
    lp.after(ms(1), |_, _, _| {}).unwrap();
    assert_eq!(lp.after(ms(1), |_, _, _| {}).err(), Some(Error::Capacity));
    for fd in 0..4 {
        lp.backend_mut().set_ready(fd, Ready::READABLE).unwrap();
    }
    lp.run_once(&mut log, None).unwrap();
    let fds: Vec<i32> = log.seen.iter().map(|s| s.1).collect();
    assert_eq!(fds, [0, 1, 2, 3]);
}

#[test]
fn a_refused_deregistration_is_retried_so_its_stale_events_stop() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    let a = lp.watch(3, Interest::READ, record).unwrap();
    lp.watch(4, Interest::READ, record_b).unwrap();
    lp.backend_mut().set_ready(3, Ready::READABLE).unwrap();
    lp.backend_mut().fail_next_deregister(Errno::ENOMEM);
    assert!(lp.unwatch_id(a), "the watcher is gone even though the backend refused");
    assert!(lp.backend().registration(3).is_some(), "the backend still holds it");
    lp.run_once(&mut log, Some(Duration::ZERO)).unwrap();
    assert!(lp.backend().registration(3).is_none(), "retried before the next wait");
    assert!(log.seen.is_empty(), "nothing reached the removed watcher: {:?}", log.seen);
}

#[test]
fn errors_asked_for_by_the_read_callback_go_to_the_error_side_alone() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    lp.watch(3, Interest::READ | Interest::WRITE, |lp, log: &mut Log, ev| {
        log.seen.push(("a", ev.fd(), ev.side()));
        if ev.side() == Side::Read {
            lp.enable(ev.id(), Interest::ERROR).unwrap();
        }
    })
    .unwrap();
    lp.backend_mut().set_ready(3, Ready::READABLE | Ready::WRITABLE | Ready::ERROR).unwrap();
    lp.run_once(&mut log, None).unwrap();
    assert_eq!(log.seen, vec![("a", 3, Side::Read)], "no write side with an error once ERROR is wanted");
    lp.run_once(&mut log, None).unwrap();
    assert_eq!(log.seen.last(), Some(&("a", 3, Side::Error)));
}

#[test]
fn an_empty_interest_watch_is_checked_by_the_backend_not_the_process_fd_table() {
    let mut lp = sim_loop();
    // fd 40 is not open in this process, but it is a virtual fd of the Sim.
    assert!(lp.watch(40, Interest::ERROR, record).is_ok());
    assert!(lp.watch(41, Interest::empty(), record).is_ok());
    assert_eq!(lp.watch(-1, Interest::empty(), record).err(), Some(Error::Os(Errno::EBADF)));
}
