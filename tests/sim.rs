//! The loop, unchanged, on the deterministic `Sim` backend: scripted
//! readiness, a virtual clock that jumps to the next deadline, and the
//! invariants of DESIGN.md checked without a kernel in the way.

use core::time::Duration;
use linux_event::backend::Sim;
use linux_event::sys::{ExitStatus, SIGCHLD, SIGKILL, SIGRTMIN, SIGSTOP, SIGUSR1, SIGUSR2, SIGWINCH};
use linux_event::{
    ChildMode, Errno, Error, Instant, Interest, Loop, PidEvent, PidOptions, Ready, ReapEvent, Side, SignalEvent,
    TimerEvent, TimerId, Trigger, WatchEvent, WatchId, WatchOptions,
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

fn record(_lp: &mut Lp, log: &mut Log, ev: WatchEvent) {
    log.seen.push(("a", ev.fd(), ev.side()));
}

fn record_b(_lp: &mut Lp, log: &mut Log, ev: WatchEvent) {
    log.seen.push(("b", ev.fd(), ev.side()));
}

fn fire(lp: &mut Lp, log: &mut Log, ev: TimerEvent) {
    let which = log.timers.iter().position(|t| *t == ev.id()).unwrap() as u64;
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
    lp.watch_with(3, WatchOptions::new(Interest::READ | Interest::WRITE), 33, |_lp, log: &mut Log, ev| {
        assert_eq!(ev.data(), 33);
        log.seen.push(("a", ev.fd(), ev.side()));
    })
    .unwrap();
    assert_eq!(lp.run_once(&mut log, Some(Duration::ZERO)).unwrap(), 0);

    lp.sim().set_ready(3, Ready::READABLE | Ready::WRITABLE).unwrap();
    assert_eq!(lp.run_once(&mut log, None).unwrap(), 2);
    assert_eq!(log.seen, [("a", 3, Side::Read), ("a", 3, Side::Write)]);

    // Level-triggered: reported again while ready.
    lp.sim().clear_ready(3, Ready::READABLE);
    assert_eq!(lp.run_once(&mut log, None).unwrap(), 1);
    assert_eq!(log.seen[2], ("a", 3, Side::Write));

    // A hang-up wakes the read side.
    lp.sim().clear_ready(3, Ready::WRITABLE);
    lp.sim().set_ready(3, Ready::HANGUP).unwrap();
    lp.run_once(&mut log, None).unwrap();
    assert_eq!(log.seen[3], ("a", 3, Side::Read));
    // Nothing moved the clock.
    assert_eq!(lp.now(), Instant::ZERO);
}

#[test]
fn error_interest_gets_the_error_side_alone() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    lp.watch(4, Interest::READ | Interest::ERROR, 0, record).unwrap();
    lp.sim().set_ready(4, Ready::READABLE | Ready::ERROR).unwrap();
    lp.run_once(&mut log, None).unwrap();
    assert_eq!(log.seen, [("a", 4, Side::Error)]);
}

#[test]
fn timers_fire_in_order_as_the_clock_jumps() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    for delay in [30, 10, 20, 10, 0] {
        let id = lp.after(ms(delay), 0, fire).unwrap();
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
    let id = lp.every(ms(10), 0, fire).unwrap();
    log.timers.push(id);
    for _ in 0..3 {
        lp.run_once(&mut log, None).unwrap();
    }
    // A late pass: the clock was pushed past two ticks by the script.
    lp.sim().advance(ms(25));
    lp.run_once(&mut log, Some(Duration::ZERO)).unwrap();
    lp.run_once(&mut log, None).unwrap();
    let times: Vec<Instant> = log.fired.iter().map(|f| f.1).collect();
    assert_eq!(times, [at_ms(10), at_ms(20), at_ms(30), at_ms(55), at_ms(60)]);
}

#[test]
fn run_returns_when_the_timers_are_done() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    let id = lp.after(Duration::from_secs(86_400), 0, fire).unwrap();
    log.timers.push(id);
    lp.run(&mut log).unwrap();
    assert_eq!(log.fired, [(0, Instant::from_nanos(86_400 * 1_000_000_000))]);
}

#[test]
fn run_with_a_dry_script_stops_on_the_stall_error() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    lp.watch(5, Interest::READ, 0, record).unwrap();
    lp.sim().set_stall_error(Some(Errno::ETIMEDOUT));
    lp.sim().set_ready(5, Ready::READABLE).unwrap();
    lp.set_callback(lp.watcher_of(5).unwrap(), |lp, log: &mut Log, ev| {
        log.seen.push(("a", ev.fd(), ev.side()));
        // The handler drains the virtual fd.
        lp.sim().clear_ready(ev.fd(), Ready::READABLE);
    })
    .unwrap();
    assert_eq!(lp.run(&mut log), Err(Error::Os(Errno::ETIMEDOUT)));
    assert_eq!(log.seen, [("a", 5, Side::Read)]);
}

#[test]
fn removed_later_in_the_batch_gets_nothing() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    lp.watch(1, Interest::READ, 0, |lp, log: &mut Log, ev| {
        log.seen.push(("a", ev.fd(), ev.side()));
        let other = lp.watcher_of(2).unwrap();
        assert!(lp.remove(other));
    })
    .unwrap();
    lp.watch(2, Interest::READ, 0, record_b).unwrap();
    // fd 1 became ready first, so its event comes first in the batch.
    lp.sim().set_ready(1, Ready::READABLE).unwrap();
    lp.sim().set_ready(2, Ready::READABLE).unwrap();
    assert_eq!(lp.run_once(&mut log, None).unwrap(), 1);
    assert_eq!(log.seen, [("a", 1, Side::Read)]);
    assert_eq!(lp.backend().registration(2), None);
}

#[test]
fn replaced_later_in_the_batch_gets_nothing_until_the_next_pass() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    lp.watch(1, Interest::READ, 0, |lp, log: &mut Log, ev| {
        log.seen.push(("a", ev.fd(), ev.side()));
        if log.ids.is_empty() {
            // Same fd, new watcher: the event already in this batch carries
            // the old key and reaches neither.
            let id = lp.watch(2, Interest::READ, 0, record).unwrap();
            log.ids.push(id);
        }
    })
    .unwrap();
    let old = lp.watch(2, Interest::READ, 0, record_b).unwrap();
    lp.sim().set_ready(1, Ready::READABLE).unwrap();
    lp.sim().set_ready(2, Ready::READABLE).unwrap();
    assert_eq!(lp.run_once(&mut log, None).unwrap(), 1);
    assert_eq!(log.seen, [("a", 1, Side::Read)]);
    assert_eq!(lp.interest(old), None);
    assert!(!lp.remove(old));

    log.seen.clear();
    lp.run_once(&mut log, None).unwrap();
    assert_eq!(log.seen, [("a", 1, Side::Read), ("a", 2, Side::Read)]);
}

#[test]
fn closed_and_reused_fd_number_never_reaches_the_old_watcher() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    let old = lp.watch(6, Interest::READ, 0, record_b).unwrap();
    lp.sim().set_ready(6, Ready::READABLE).unwrap();
    // Close behind the loop's back, then the same number comes back.
    lp.sim().close(6);
    assert!(lp.remove(old));
    let new = lp.watch(6, Interest::READ, 0, record).unwrap();
    assert_ne!(old, new);
    lp.sim().set_ready(6, Ready::READABLE).unwrap();
    lp.run_once(&mut log, None).unwrap();
    assert_eq!(log.seen, [("a", 6, Side::Read)]);
}

#[test]
fn oneshot_reports_once_until_modified() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    let id = lp.watch_with(7, WatchOptions::new(Interest::READ).trigger(Trigger::Oneshot), 0, record).unwrap();
    lp.sim().set_ready(7, Ready::READABLE).unwrap();
    assert_eq!(lp.run_once(&mut log, None).unwrap(), 1);
    assert_eq!(lp.run_once(&mut log, Some(Duration::ZERO)).unwrap(), 0);
    lp.sim().set_ready(7, Ready::READABLE).unwrap();
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
    lp.watch_with(8, WatchOptions::new(Interest::READ).trigger(Trigger::Edge), 0, record).unwrap();
    lp.sim().set_ready(8, Ready::READABLE).unwrap();
    assert_eq!(lp.run_once(&mut log, None).unwrap(), 1);
    // Still readable (not drained), but no new wake-up: silence.
    assert_eq!(lp.run_once(&mut log, Some(Duration::ZERO)).unwrap(), 0);
    // New data: one more report, however many wake-ups came in between.
    lp.sim().set_ready(8, Ready::READABLE).unwrap();
    lp.sim().set_ready(8, Ready::READABLE).unwrap();
    assert_eq!(lp.run_once(&mut log, None).unwrap(), 1);
    assert_eq!(lp.run_once(&mut log, Some(Duration::ZERO)).unwrap(), 0);
}

#[test]
fn disabled_watcher_leaves_the_backend_and_comes_back() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    let id = lp.watch(9, Interest::READ, 0, record).unwrap();
    lp.sim().set_ready(9, Ready::READABLE).unwrap();
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
    lp.watch(1, Interest::READ, 0, |lp, log: &mut Log, _ev| {
        if log.timers.is_empty() {
            let id = lp.after(Duration::ZERO, 0, fire).unwrap();
            log.timers.push(id);
        }
    })
    .unwrap();
    let first = lp
        .after(Duration::ZERO, 0, |lp, log: &mut Log, _id| {
            // Due now, added while timers fire: not in this pass either.
            let id = lp.after(Duration::ZERO, 0, fire).unwrap();
            log.timers.push(id);
        })
        .unwrap();
    lp.sim().set_ready(1, Ready::READABLE).unwrap();
    // Pass 1: the watcher adds timer 0 and `first` adds timer 1; neither fires.
    assert_eq!(lp.run_once(&mut log, None).unwrap(), 2);
    assert!(!lp.is_live(first));
    assert!(log.fired.is_empty());
    assert_eq!(log.timers.len(), 2);
    lp.sim().clear_ready(1, Ready::READABLE);
    // Pass 2: both, in insertion order, at the same instant.
    assert_eq!(lp.run_once(&mut log, None).unwrap(), 2);
    assert_eq!(log.fired, [(0, Instant::ZERO), (1, Instant::ZERO)]);
}

#[test]
fn refused_registration_changes_nothing() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    let id = lp.watch(2, Interest::READ, 0, record).unwrap();
    lp.sim().fail_next(Errno::ENOMEM);
    assert_eq!(lp.watch(2, Interest::WRITE, 0, record_b), Err(Error::Os(Errno::ENOMEM)));
    assert_eq!(lp.interest(id), Some(Interest::READ));
    lp.sim().fail_next(Errno::EPERM);
    assert_eq!(lp.modify(id, Interest::WRITE), Err(Error::Os(Errno::EPERM)));
    assert_eq!(lp.interest(id), Some(Interest::READ));
    lp.sim().fail_next(Errno::EBADF);
    assert_eq!(lp.watch(3, Interest::READ, 0, record_b), Err(Error::Os(Errno::EBADF)));
    assert_eq!(lp.watcher_of(3), None);
    lp.sim().set_ready(2, Ready::READABLE).unwrap();
    lp.run_once(&mut log, None).unwrap();
    assert_eq!(log.seen, [("a", 2, Side::Read)]);

    lp.sim().fail_next_wait(Errno::EFAULT);
    assert_eq!(lp.run_once(&mut log, None), Err(Error::Os(Errno::EFAULT)));
    assert_eq!(lp.run_once(&mut log, None).unwrap(), 1);
}

#[test]
fn full_tables_are_capacity_not_loss() {
    let mut lp: Loop<Log, 4, 2, Sim<4>> = Loop::with_backend(Sim::new()).unwrap();
    let mut log = Log::default();
    fn rec(_lp: &mut Loop<Log, 4, 2, Sim<4>>, log: &mut Log, ev: WatchEvent) {
        log.seen.push(("a", ev.fd(), ev.side()));
    }
    for fd in 0..4 {
        lp.watch(fd, Interest::READ, 0, rec).unwrap();
    }
    assert_eq!(lp.watch(4, Interest::READ, 0, rec), Err(Error::Capacity));
    lp.after(ms(1), 0, |_, _, _| {}).unwrap();
    lp.after(ms(1), 0, |_, _, _| {}).unwrap();
    assert_eq!(lp.after(ms(1), 0, |_, _, _| {}).err(), Some(Error::Capacity));
    for fd in 0..4 {
        lp.sim().set_ready(fd, Ready::READABLE).unwrap();
    }
    lp.run_once(&mut log, None).unwrap();
    let fds: Vec<i32> = log.seen.iter().map(|s| s.1).collect();
    assert_eq!(fds, [0, 1, 2, 3]);
}

#[test]
fn a_refused_deregistration_is_retried_so_its_stale_events_stop() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    let a = lp.watch(3, Interest::READ, 0, record).unwrap();
    lp.watch(4, Interest::READ, 0, record_b).unwrap();
    lp.sim().set_ready(3, Ready::READABLE).unwrap();
    lp.sim().fail_next_deregister(Errno::ENOMEM);
    assert!(lp.remove(a), "the watcher is gone even though the backend refused");
    assert!(lp.backend().registration(3).is_some(), "the backend still holds it");
    lp.run_once(&mut log, Some(Duration::ZERO)).unwrap();
    assert!(lp.backend().registration(3).is_none(), "retried before the next wait");
    assert!(log.seen.is_empty(), "nothing reached the removed watcher: {:?}", log.seen);
}

#[test]
fn errors_asked_for_by_the_read_callback_go_to_the_error_side_alone() {
    let mut lp = sim_loop();
    let mut log = Log::default();
    lp.watch(3, Interest::READ | Interest::WRITE, 0, |lp, log: &mut Log, ev| {
        log.seen.push(("a", ev.fd(), ev.side()));
        if ev.side() == Side::Read {
            lp.enable(ev.id(), Interest::ERROR).unwrap();
        }
    })
    .unwrap();
    lp.sim().set_ready(3, Ready::READABLE | Ready::WRITABLE | Ready::ERROR).unwrap();
    lp.run_once(&mut log, None).unwrap();
    assert_eq!(log.seen, vec![("a", 3, Side::Read)], "no write side with an error once ERROR is wanted");
    lp.run_once(&mut log, None).unwrap();
    assert_eq!(log.seen.last(), Some(&("a", 3, Side::Error)));
}

#[test]
fn an_empty_interest_watch_is_checked_by_the_backend_not_the_process_fd_table() {
    let mut lp = sim_loop();
    // fd 40 is not open in this process, but it is a virtual fd of the Sim.
    assert!(lp.watch(40, Interest::ERROR, 0, record).is_ok());
    assert!(lp.watch(41, Interest::empty(), 0, record).is_ok());
    assert_eq!(lp.watch(-1, Interest::empty(), 0, record).err(), Some(Error::Os(Errno::EBADF)));
}

// ------------------------------------------- signals and children on the Sim

/// What signal, pid and reaper callbacks saw.
#[derive(Default)]
struct Procs {
    /// (signal, records, data)
    signals: Vec<(i32, u32, u64)>,
    /// (pid, status, data)
    exits: Vec<(i32, Result<ExitStatus, Errno>, u64)>,
    /// (pid, status, data)
    reaped: Vec<(i32, ExitStatus, u64)>,
}

type PLp = Loop<Procs, 16, 16, Sim<16>>;

fn on_signal(_lp: &mut PLp, p: &mut Procs, ev: SignalEvent) {
    p.signals.push((ev.signo(), ev.count(), ev.data()));
}

fn on_exit(_lp: &mut PLp, p: &mut Procs, ev: PidEvent) {
    p.exits.push((ev.pid(), ev.status(), ev.data()));
}

fn on_reap(_lp: &mut PLp, p: &mut Procs, ev: ReapEvent) {
    p.reaped.push((ev.pid(), ev.status(), ev.data()));
}

fn procs_loop() -> PLp {
    Loop::with_backend(Sim::new()).unwrap()
}

/// Runs passes (none of which can block on a `Sim`) until `done` holds.
fn run_until(lp: &mut PLp, p: &mut Procs, done: impl Fn(&Procs) -> bool) {
    for _ in 0..20 {
        if done(p) {
            return;
        }
        lp.run_once(p, None).unwrap();
    }
    assert!(done(p), "not reached: signals {:?} exits {:?} reaped {:?}", p.signals, p.exits, p.reaped);
}

#[test]
fn a_signal_registration_that_fails_leaves_the_threads_mask_as_it_was() {
    let mut lp = procs_loop();
    let before = lp.sim().thread_mask(1);
    // The signalfd cannot be made: nothing is blocked, nothing is open.
    lp.sim().fail_next_object(Errno::EMFILE);
    assert_eq!(lp.signal(SIGUSR1, 0, on_signal).err(), Some(Error::Os(Errno::EMFILE)));
    assert_eq!(lp.sim().thread_mask(1), before);
    assert_eq!(lp.sim().open_objects(), 0);
    for signo in [0, SIGKILL, SIGSTOP, 65] {
        assert_eq!(lp.signal(signo, 0, on_signal).err(), Some(Error::Os(Errno::EINVAL)), "signal {signo}");
        assert_eq!(lp.sim().thread_mask(1), before, "signal {signo}");
    }
    // And it works afterwards.
    let id = lp.signal(SIGUSR1, 4, on_signal).unwrap();
    assert!(lp.sim().thread_mask(1).contains(SIGUSR1));
    lp.sim().raise(SIGUSR1).unwrap();
    let mut p = Procs::default();
    run_until(&mut lp, &mut p, |p| !p.signals.is_empty());
    assert_eq!(p.signals, [(SIGUSR1, 1, 4)]);
    assert!(lp.remove(id));
    assert_eq!(lp.sim().thread_mask(1), before);
}

#[test]
fn pending_records_of_a_signal_are_discarded_when_its_last_watcher_goes() {
    let mut lp = procs_loop();
    lp.signal(SIGUSR1, 0, on_signal).unwrap();
    let usr2 = lp.signal(SIGUSR2, 0, on_signal).unwrap();
    let rt = lp.signal(SIGRTMIN + 1, 0, on_signal).unwrap();
    lp.sim().raise(SIGUSR2).unwrap();
    lp.sim().queue(SIGRTMIN + 1, 7).unwrap();
    lp.sim().queue(SIGRTMIN + 1, 8).unwrap();
    // Never read: the watchers go while the records are pending. Unblocking
    // the signals must not hand them to their default action (which ends
    // a process).
    assert!(lp.remove(usr2));
    assert!(lp.remove(rt));
    assert_eq!(lp.sim().killed_by(), None, "a pending record reached its default action");
    assert!(!lp.sim().thread_mask(1).contains(SIGUSR2) && !lp.sim().thread_mask(1).contains(SIGRTMIN + 1));
    assert!(lp.sim().thread_mask(1).contains(SIGUSR1), "the other watcher keeps its signal blocked");
    // Unblocked now: a new one takes its default action (the simulation
    // records the death it would have been).
    lp.sim().raise(SIGUSR2).unwrap();
    assert_eq!(lp.sim().killed_by(), Some(SIGUSR2));
}

#[test]
fn a_loop_moved_to_another_thread_cannot_watch_new_signals_until_its_watchers_are_gone() {
    let mut lp = procs_loop();
    let usr1 = lp.signal(SIGUSR1, 0, on_signal).unwrap();
    assert!(lp.sim().thread_mask(1).contains(SIGUSR1));
    assert!(lp.sim().set_thread(2));
    // Thread 2 started with thread 1's mask; the loop's watchers hold
    // thread 1's, which thread 2 cannot change.
    assert_eq!(lp.signal(SIGUSR2, 0, on_signal).err(), Some(Error::WrongThread));
    assert!(!lp.sim().thread_mask(1).contains(SIGUSR2));
    assert!(!lp.sim().thread_mask(2).contains(SIGUSR2));
    assert!(lp.is_live(usr1), "a refused registration leaves the others alone");
    // Removed on thread 2: thread 2's mask is left alone, thread 1 owes
    // the unblock until it next registers or removes a signal watcher.
    let mask2 = lp.sim().thread_mask(2);
    assert!(lp.remove(usr1));
    assert_eq!(lp.sim().thread_mask(2), mask2);
    // No watcher left: the loop now belongs to thread 2.
    let usr2 = lp.signal(SIGUSR2, 0, on_signal).unwrap();
    assert!(lp.sim().thread_mask(2).contains(SIGUSR2));
    lp.sim().raise_in_thread(2, SIGUSR2).unwrap();
    let mut p = Procs::default();
    run_until(&mut lp, &mut p, |p| !p.signals.is_empty());
    assert_eq!(p.signals, [(SIGUSR2, 1, 0)]);
    assert!(lp.remove(usr2));
    // Back on thread 1, the next registration settles what it owed.
    assert!(lp.sim().set_thread(1));
    assert!(lp.sim().thread_mask(1).contains(SIGUSR1), "owed, not yet carried out");
    lp.signal(SIGWINCH, 0, on_signal).unwrap();
    assert!(!lp.sim().thread_mask(1).contains(SIGUSR1), "thread 1 unblocked what nobody holds");
    assert!(lp.sim().thread_mask(1).contains(SIGWINCH));
    assert_eq!(lp.sim().killed_by(), None);
}

#[test]
fn a_second_pid_watcher_for_one_process_is_already_watched() {
    for sigchld in [false, true] {
        let mut lp = procs_loop();
        if sigchld {
            lp.sim().refuse_pidfds(Some(Errno::ENOSYS));
        }
        let child = lp.sim().spawn_child().unwrap();
        let first = lp.pid(child, 1, on_exit).unwrap();
        assert_eq!(lp.pid(child, 2, on_exit).err(), Some(Error::AlreadyWatched), "sigchld={sigchld}");
        let no_reap = PidOptions::default().reap(false);
        assert_eq!(lp.pid_with(child, no_reap, 3, on_exit).err(), Some(Error::AlreadyWatched), "sigchld={sigchld}");
        assert_eq!(lp.watcher_count(), 1, "sigchld={sigchld}");
        // One at a time: after removing the first, a new one is accepted.
        assert!(lp.remove(first), "sigchld={sigchld}");
        let second = lp.pid(child, 4, on_exit).unwrap();
        lp.sim().exit(child, ExitStatus::Exited(9)).unwrap();
        let mut p = Procs::default();
        run_until(&mut lp, &mut p, |p| !p.exits.is_empty());
        assert_eq!(p.exits, [(child, Ok(ExitStatus::Exited(9)), 4)], "sigchld={sigchld}");
        assert!(!lp.is_live(second) && !lp.is_live(first), "sigchld={sigchld}");
        assert!(!lp.sim().is_zombie(child), "sigchld={sigchld}: reaped");
    }
}

#[test]
fn in_sigchld_mode_a_process_that_is_not_our_child_is_refused_at_registration() {
    let mut lp = procs_loop();
    lp.sim().refuse_pidfds(Some(Errno::EPERM));
    let stranger = lp.sim().spawn_stranger().unwrap();
    assert_eq!(lp.pid(stranger, 0, on_exit).err(), Some(Error::Os(Errno::ECHILD)));
    assert_eq!(lp.child_mode(), ChildMode::Sigchld(Errno::EPERM));
    assert_eq!(lp.watcher_count(), 0);
    // A process that does not exist is still ESRCH.
    lp.sim().exit(stranger, ExitStatus::Exited(0)).unwrap();
    assert_eq!(lp.pid(stranger, 0, on_exit).err(), Some(Error::Os(Errno::ESRCH)));
    // With pidfds the same stranger can be watched, and its end is ECHILD.
    let mut lp = procs_loop();
    let stranger = lp.sim().spawn_stranger().unwrap();
    lp.pid(stranger, 6, on_exit).unwrap();
    lp.sim().exit(stranger, ExitStatus::Exited(0)).unwrap();
    let mut p = Procs::default();
    run_until(&mut lp, &mut p, |p| !p.exits.is_empty());
    assert_eq!(p.exits, [(stranger, Err(Errno::ECHILD), 6)]);
}

#[test]
fn a_non_reaping_pid_watcher_gets_its_childs_status_alone_and_the_reaper_steps_past_the_zombie() {
    for sigchld in [false, true] {
        let mut lp = procs_loop();
        if sigchld {
            lp.sim().refuse_pidfds(Some(Errno::ENOSYS));
        }
        let watched = lp.sim().spawn_child().unwrap();
        let other = lp.sim().spawn_child().unwrap();
        lp.pid_with(watched, PidOptions::default().reap(false), 5, on_exit).unwrap();
        lp.reaper(6, on_reap).unwrap();
        lp.sim().exit(watched, ExitStatus::Exited(1)).unwrap();
        lp.sim().exit(other, ExitStatus::Exited(2)).unwrap();
        let mut p = Procs::default();
        run_until(&mut lp, &mut p, |p| !p.exits.is_empty() && !p.reaped.is_empty());
        for _ in 0..3 {
            lp.run_once(&mut p, Some(Duration::ZERO)).unwrap();
        }
        assert_eq!(p.exits, [(watched, Ok(ExitStatus::Exited(1)), 5)], "sigchld={sigchld}");
        assert_eq!(p.reaped, [(other, ExitStatus::Exited(2), 6)], "sigchld={sigchld}: the reaper took the watched one");
        assert!(lp.sim().is_zombie(watched), "sigchld={sigchld}: the zombie is its user's to reap");
        assert!(!lp.sim().is_zombie(other), "sigchld={sigchld}");
        // A later child still reaches the reaper, past the zombie.
        let third = lp.sim().spawn_child().unwrap();
        lp.sim().exit(third, ExitStatus::Exited(3)).unwrap();
        run_until(&mut lp, &mut p, |p| p.reaped.len() == 2);
        assert_eq!(p.reaped[1], (third, ExitStatus::Exited(3), 6), "sigchld={sigchld}");
        assert!(lp.sim().is_zombie(watched), "sigchld={sigchld}");
        assert_eq!(p.exits.len(), 1, "sigchld={sigchld}: delivered twice");
    }
}

#[test]
fn pid_and_reaper_ids_are_removed_checked_and_given_data_like_every_other_id() {
    let mut lp = procs_loop();
    let child = lp.sim().spawn_child().unwrap();
    let watcher = lp.pid(child, 1, on_exit).unwrap();
    assert!(lp.is_live(watcher));
    lp.set_data(watcher, 2).unwrap();
    let first = lp.reaper(10, on_reap).unwrap();
    let reaper = lp.reaper(20, on_reap).unwrap();
    // A later reaper replaces the first: its id goes stale.
    assert_ne!(first, reaper);
    assert!(!lp.is_live(first) && lp.is_live(reaper));
    assert!(!lp.remove(first), "a stale reaper id removed the reaper");
    assert_eq!(lp.set_data(first, 0), Err(Error::NotFound));
    lp.set_data(reaper, 21).unwrap();
    assert!(lp.sim().thread_mask(1).contains(SIGCHLD), "a reaper watches SIGCHLD");
    let other = lp.sim().spawn_child().unwrap();
    lp.sim().exit(child, ExitStatus::Exited(0)).unwrap();
    lp.sim().exit(other, ExitStatus::Exited(1)).unwrap();
    let mut p = Procs::default();
    run_until(&mut lp, &mut p, |p| !p.exits.is_empty() && !p.reaped.is_empty());
    assert_eq!(p.exits, [(child, Ok(ExitStatus::Exited(0)), 2)]);
    assert_eq!(p.reaped, [(other, ExitStatus::Exited(1), 21)]);
    // A delivered pid watcher is gone.
    assert!(!lp.is_live(watcher));
    assert!(!lp.remove(watcher));
    assert_eq!(lp.set_data(watcher, 3), Err(Error::NotFound));
    assert!(lp.remove(reaper));
    assert!(!lp.remove(reaper), "idempotent");
    // Nothing needs SIGCHLD or a pidfd any more.
    assert!(!lp.sim().thread_mask(1).contains(SIGCHLD));
    assert_eq!(lp.sim().open_objects(), 0);
    // Without a reaper, an exited child is left alone.
    let third = lp.sim().spawn_child().unwrap();
    lp.sim().exit(third, ExitStatus::Exited(3)).unwrap();
    for _ in 0..3 {
        lp.run_once(&mut p, Some(Duration::ZERO)).unwrap();
    }
    assert!(lp.sim().is_zombie(third));
    assert_eq!(p.reaped.len(), 1);
}

mod phases {
    use linux_event::backend::Sim;
    use linux_event::{Interest, Loop, PhaseEvent, Ready};

    type Lp = Loop<Vec<&'static str>, 8, 8, Sim<8>>;

    fn prep(_: &mut Lp, log: &mut Vec<&'static str>, _: PhaseEvent) {
        log.push("prepare");
    }

    fn check(_: &mut Lp, log: &mut Vec<&'static str>, _: PhaseEvent) {
        log.push("check");
    }

    #[test]
    fn prepare_runs_before_the_wait_and_check_after_every_other_callback() {
        let mut lp: Lp = Loop::with_backend(Sim::new()).unwrap();
        let p = lp.prepare(0, prep).unwrap();
        let c = lp.check(0, check).unwrap();
        lp.watch(3, Interest::READ, 0, |_, log, _| log.push("io")).unwrap();
        lp.after(core::time::Duration::ZERO, 0, |_, log, _| log.push("timer")).unwrap();
        lp.sim().set_ready(3, Ready::READABLE).unwrap();
        let mut log = Vec::new();
        // Phase callbacks are not counted: the io and timer callbacks are.
        assert_eq!(lp.run_once(&mut log, None).unwrap(), 2);
        assert_eq!(log, ["prepare", "io", "timer", "check"]);
        assert!(lp.remove(p) && lp.remove(c));
        assert!(!lp.remove(p), "removed ids are stale");
        log.clear();
        lp.run_once(&mut log, None).unwrap();
        assert_eq!(log, ["io"]);
    }

    #[test]
    fn a_timer_added_by_a_prepare_callback_keeps_the_wait_from_blocking() {
        let mut lp: Lp = Loop::with_backend(Sim::new()).unwrap();
        lp.prepare(0, |lp, _, ev| {
            lp.after(core::time::Duration::ZERO, 0, |_, log, _| log.push("due")).unwrap();
            lp.remove(ev.prepare_id());
        })
        .unwrap();
        // Sim's wait with nothing ready and no deadline would stall: make
        // that an error, so a blocking wait shows.
        lp.sim().set_stall_error(Some(linux_event::Errno::EIO));
        let mut log = Vec::new();
        assert_eq!(lp.run_once(&mut log, None), Ok(1));
        assert_eq!(log, ["due"]);
    }

    #[test]
    fn a_stop_from_a_prepare_callback_keeps_the_wait_from_blocking_and_ends_run() {
        let mut lp: Lp = Loop::with_backend(Sim::new()).unwrap();
        lp.watch(3, Interest::READ, 0, |_, log, _| log.push("io")).unwrap();
        lp.prepare(0, |lp, log, _| {
            log.push("prepare");
            lp.stop();
        })
        .unwrap();
        // Nothing is ready and no timer is pending: a blocking wait stalls.
        lp.sim().set_stall_error(Some(linux_event::Errno::EIO));
        let mut log = Vec::new();
        assert_eq!(lp.run(&mut log), Ok(()));
        assert_eq!(log, ["prepare"]);
        // What is ready when the stop was asked for is still collected.
        lp.sim().set_ready(3, Ready::READABLE).unwrap();
        log.clear();
        assert_eq!(lp.run(&mut log), Ok(()));
        assert_eq!(log, ["prepare", "io"]);
    }

    #[derive(Default)]
    struct Walk {
        log: Vec<&'static str>,
        b: Option<linux_event::CheckId>,
    }

    type Wl = Loop<Walk, 8, 8, Sim<8>>;

    #[test]
    fn phase_callbacks_added_or_removed_during_a_walk_are_honoured() {
        let mut lp: Wl = Loop::with_backend(Sim::new()).unwrap();
        // A removes itself and B, and adds D: B does not run, D runs in the same walk.
        lp.check(0, |lp, w, ev| {
            w.log.push("a");
            lp.remove(ev.check_id());
            if let Some(b) = w.b.take() {
                assert!(lp.remove(b));
            }
            lp.check(0, |_, w: &mut Walk, _| w.log.push("d")).unwrap();
        })
        .unwrap();
        let mut w = Walk { b: Some(lp.check(0, |_, w, _| w.log.push("b")).unwrap()), ..Walk::default() };
        lp.check(0, |_, w, _| w.log.push("c")).unwrap();
        lp.after(core::time::Duration::ZERO, 0, |_, _, _| {}).unwrap();
        lp.run_once(&mut w, None).unwrap();
        assert_eq!(w.log, ["a", "c", "d"]);
        w.log.clear();
        lp.after(core::time::Duration::ZERO, 0, |_, _, _| {}).unwrap();
        lp.run_once(&mut w, None).unwrap();
        assert_eq!(w.log, ["c", "d"]);
    }

    #[test]
    fn a_full_phase_table_is_capacity_and_keeps_every_entry() {
        let mut lp: Lp = Loop::with_backend(Sim::new()).unwrap();
        for _ in 0..linux_event::PHASE_CALLBACKS {
            lp.prepare(0, prep).unwrap();
        }
        assert_eq!(lp.prepare(0, prep), Err(linux_event::Error::Capacity));
        lp.after(core::time::Duration::ZERO, 0, |_, _, _| {}).unwrap();
        let mut log = Vec::new();
        lp.run_once(&mut log, None).unwrap();
        assert_eq!(log.len(), linux_event::PHASE_CALLBACKS);
    }
}
