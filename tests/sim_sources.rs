//! Signals, children and the waker on the simulated backend: the same
//! sources as on the kernel backends, with their kernel objects simulated,
//! so these run under Miri too. Each defect fixed in the outside-checks
//! issue has its regression here as well as on the kernel backends.

use core::time::Duration;
use linux_event::backend::Sim;
use linux_event::sys::{ExitStatus, SigSet};
use linux_event::{Errno, Error, Loop, PidEvent, PidOptions, ReapEvent, SignalEvent, WakeEvent};

#[derive(Default)]
struct Log {
    signals: Vec<(i32, u32, u64, u64)>,
    pids: Vec<(i32, Result<ExitStatus, Errno>, u64)>,
    reaped: Vec<(i32, ExitStatus)>,
    wakes: Vec<u64>,
}

type Lp = Loop<Log, 16, 16, Sim<32>>;

const SIGUSR1: i32 = 10;
const SIGUSR2: i32 = 12;
const SIGTERM: i32 = 15;
const SIGRT3: i32 = 35;

fn new_loop() -> Lp {
    Loop::with_backend(Sim::new()).unwrap()
}

fn on_signal(_lp: &mut Lp, log: &mut Log, ev: SignalEvent) {
    log.signals.push((ev.signo(), ev.count(), ev.value(), ev.data()));
}

fn on_pid(_lp: &mut Lp, log: &mut Log, ev: PidEvent) {
    log.pids.push((ev.pid(), ev.status(), ev.data()));
}

fn on_reap(_lp: &mut Lp, log: &mut Log, ev: ReapEvent) {
    log.reaped.push((ev.pid(), ev.status()));
}

fn on_wake(_lp: &mut Lp, log: &mut Log, ev: WakeEvent) {
    log.wakes.push(ev.count());
}

fn pass(lp: &mut Lp, log: &mut Log) -> usize {
    lp.run_once(log, Some(Duration::ZERO)).unwrap()
}

fn blocked(lp: &mut Lp, tid: i32) -> SigSet {
    lp.sim().thread_mask(tid)
}

// --- signals ---

#[test]
fn standard_signals_coalesce_and_real_time_ones_queue_with_their_values() {
    let mut lp = new_loop();
    let mut log = Log::default();
    lp.signal(SIGUSR1, 7, on_signal).unwrap();
    lp.signal(SIGRT3, 8, on_signal).unwrap();
    lp.sim().raise(SIGUSR1).unwrap();
    lp.sim().raise(SIGUSR1).unwrap();
    for v in [11, 22, 33] {
        lp.sim().queue(SIGRT3, v).unwrap();
    }
    assert_eq!(pass(&mut lp, &mut log), 2);
    // One callback per signal per pass, in ascending signal number.
    assert_eq!(log.signals, [(SIGUSR1, 1, 0, 7), (SIGRT3, 3, 33, 8)]);
    assert_eq!(lp.sim().killed_by(), None);
}

#[test]
fn a_watched_signal_is_blocked_and_the_mask_is_restored_when_the_last_watcher_goes() {
    let mut lp = new_loop();
    let before = blocked(&mut lp, 1);
    let id = lp.signal(SIGUSR1, 0, on_signal).unwrap();
    assert!(blocked(&mut lp, 1).contains(SIGUSR1));
    assert!(lp.remove(id));
    assert!(!lp.remove(id), "a second remove reports the id dead");
    assert_eq!(blocked(&mut lp, 1), before);
    assert_eq!(lp.sim().open_objects(), 0, "the signalfd is closed");
}

#[test]
fn a_signal_blocked_before_the_loop_stays_blocked_after_it() {
    let mut lp = new_loop();
    lp.sim().set_thread_mask(1, SigSet::empty().with(SIGUSR2));
    let id = lp.signal(SIGUSR2, 0, on_signal).unwrap();
    lp.remove(id);
    assert_eq!(blocked(&mut lp, 1), SigSet::empty().with(SIGUSR2));
}

#[test]
fn a_failed_signal_registration_leaves_the_mask_as_it_was() {
    // Outside checks: EMFILE at signalfd creation left SIGTERM blocked for
    // good, so a later SIGTERM never ended the process.
    let mut lp = new_loop();
    let before = blocked(&mut lp, 1);
    lp.sim().fail_next_object(Errno::EMFILE);
    assert_eq!(lp.signal(SIGTERM, 0, on_signal), Err(Error::Os(Errno::EMFILE)));
    assert_eq!(blocked(&mut lp, 1), before);
    lp.sim().raise(SIGTERM).unwrap();
    assert_eq!(lp.sim().killed_by(), Some(SIGTERM), "SIGTERM must still terminate");
}

#[test]
fn a_signal_pending_when_its_last_watcher_goes_is_discarded_not_delivered() {
    // Outside checks: a SIGTERM that arrived but was not read killed the
    // process when its watcher was removed (exit 143).
    let mut lp = new_loop();
    let id = lp.signal(SIGTERM, 0, on_signal).unwrap();
    lp.sim().raise(SIGTERM).unwrap();
    assert!(lp.remove(id));
    assert_eq!(lp.sim().killed_by(), None);
    assert!(!blocked(&mut lp, 1).contains(SIGTERM));
    // Unblocked again: the next one takes its default action.
    lp.sim().raise(SIGTERM).unwrap();
    assert_eq!(lp.sim().killed_by(), Some(SIGTERM));
}

#[test]
fn replacing_a_signal_watcher_keeps_one_hold() {
    let mut lp = new_loop();
    let mut log = Log::default();
    let old = lp.signal(SIGUSR1, 1, on_signal).unwrap();
    let new = lp.signal(SIGUSR1, 2, on_signal).unwrap();
    assert!(!lp.is_live(old) && lp.is_live(new));
    assert!(!lp.remove(old), "a replaced id is stale");
    lp.sim().raise(SIGUSR1).unwrap();
    pass(&mut lp, &mut log);
    assert_eq!(log.signals, [(SIGUSR1, 1, 0, 2)]);
    lp.remove(new);
    assert!(!blocked(&mut lp, 1).contains(SIGUSR1));
}

#[test]
fn a_moved_loop_refuses_new_signals_and_hands_unblocking_back_to_its_first_thread() {
    let mut lp = new_loop();
    let usr1 = lp.signal(SIGUSR1, 0, on_signal).unwrap();
    let usr2 = lp.signal(SIGUSR2, 0, on_signal).unwrap();
    assert!(lp.sim().set_thread(2));
    let on_2 = blocked(&mut lp, 2);
    assert_eq!(lp.signal(SIGTERM, 0, on_signal), Err(Error::WrongThread));
    // Removing on thread 2 leaves thread 2's mask alone; thread 1 still
    // blocks USR1 (only it can change its mask) ...
    assert!(lp.remove(usr1));
    assert_eq!(blocked(&mut lp, 2), on_2);
    assert!(blocked(&mut lp, 1).contains(SIGUSR1));
    // ... until thread 1 gives back a hold itself: then both go.
    assert!(lp.sim().set_thread(1));
    assert!(lp.remove(usr2));
    assert!(!blocked(&mut lp, 1).contains(SIGUSR1));
    assert!(!blocked(&mut lp, 1).contains(SIGUSR2));
    assert_eq!(lp.sim().killed_by(), None);
}

#[test]
fn removing_every_registration_gives_back_every_kernel_object_and_hold() {
    let mut lp = new_loop();
    let before = blocked(&mut lp, 1);
    let sig = lp.signal(SIGUSR1, 0, on_signal).unwrap();
    let child = lp.sim().spawn_child().unwrap();
    let pid = lp.pid(child, 0, on_pid).unwrap();
    let reaper = lp.reaper(0, on_reap).unwrap();
    let wake = lp.on_wake(0, on_wake).unwrap();
    assert_eq!(lp.sim().open_objects(), 3, "signalfd, pidfd, doorbell");
    for live in [lp.remove(sig), lp.remove(pid), lp.remove(reaper), lp.remove(wake)] {
        assert!(live);
    }
    // The doorbell stays with the loop: wakers handed out keep working.
    assert_eq!(lp.sim().open_objects(), 1);
    assert_eq!(blocked(&mut lp, 1), before);
    assert_eq!(lp.sim().killed_by(), None);
}

// --- children ---

#[test]
fn a_pid_watcher_gets_its_childs_status_once_and_the_zombie_is_reaped() {
    let mut lp = new_loop();
    let mut log = Log::default();
    let child = lp.sim().spawn_child().unwrap();
    let id = lp.pid(child, 5, on_pid).unwrap();
    assert_eq!(pass(&mut lp, &mut log), 0);
    lp.sim().exit(child, ExitStatus::Exited(42)).unwrap();
    assert_eq!(pass(&mut lp, &mut log), 1);
    assert_eq!(log.pids, [(child, Ok(ExitStatus::Exited(42)), 5)]);
    assert!(!lp.is_live(id));
    assert!(!lp.sim().is_zombie(child));
    assert_eq!(pass(&mut lp, &mut log), 0);
    assert_eq!(lp.sim().open_objects(), 0, "the pidfd is closed");
}

#[test]
fn a_process_that_is_not_our_child_is_watched_by_pidfd_and_reported_as_echild() {
    let mut lp = new_loop();
    let mut log = Log::default();
    let other = lp.sim().spawn_stranger().unwrap();
    lp.pid(other, 0, on_pid).unwrap();
    lp.sim().exit(other, ExitStatus::Exited(0)).unwrap();
    pass(&mut lp, &mut log);
    assert_eq!(log.pids, [(other, Err(Errno::ECHILD), 0)]);
}

#[test]
fn in_sigchld_mode_a_process_that_is_not_our_child_is_refused_at_registration() {
    // Outside checks: SIGCHLD mode called back at once with ECHILD while
    // the process still ran; pidfd mode waited for its exit.
    let mut lp = new_loop();
    let mut log = Log::default();
    lp.sim().refuse_pidfds(Some(Errno::ENOSYS));
    let other = lp.sim().spawn_stranger().unwrap();
    assert_eq!(lp.pid(other, 0, on_pid), Err(Error::Os(Errno::ECHILD)));
    assert_eq!(lp.child_mode(), linux_event::ChildMode::Sigchld(Errno::ENOSYS));
    assert_eq!(pass(&mut lp, &mut log), 0);
    assert!(log.pids.is_empty());
    // A child is watched through SIGCHLD.
    let child = lp.sim().spawn_child().unwrap();
    lp.pid(child, 0, on_pid).unwrap();
    assert!(blocked(&mut lp, 1).contains(17), "SIGCHLD is watched");
    lp.sim().exit(child, ExitStatus::Signaled { signal: 9, core_dumped: false }).unwrap();
    pass(&mut lp, &mut log);
    assert_eq!(log.pids, [(child, Ok(ExitStatus::Signaled { signal: 9, core_dumped: false }), 0)]);
    assert!(!blocked(&mut lp, 1).contains(17), "SIGCHLD is given back with the last watcher");
    assert_eq!(lp.sim().killed_by(), None);
}

#[test]
fn a_second_pid_watcher_for_one_process_is_refused() {
    let mut lp = new_loop();
    let mut log = Log::default();
    let child = lp.sim().spawn_child().unwrap();
    let first = lp.pid(child, 1, on_pid).unwrap();
    assert_eq!(lp.pid(child, 2, on_pid), Err(Error::AlreadyWatched));
    lp.sim().exit(child, ExitStatus::Exited(3)).unwrap();
    pass(&mut lp, &mut log);
    assert_eq!(log.pids, [(child, Ok(ExitStatus::Exited(3)), 1)]);
    assert!(!lp.is_live(first));
}

#[test]
fn the_reaper_collects_children_without_watchers_and_leaves_watched_ones_to_their_watchers() {
    let mut lp = new_loop();
    let mut log = Log::default();
    let watched = lp.sim().spawn_child().unwrap();
    let orphan = lp.sim().spawn_child().unwrap();
    lp.pid(watched, 0, on_pid).unwrap();
    lp.reaper(0, on_reap).unwrap();
    lp.sim().exit(watched, ExitStatus::Exited(1)).unwrap();
    lp.sim().exit(orphan, ExitStatus::Exited(2)).unwrap();
    pass(&mut lp, &mut log);
    assert_eq!(log.pids, [(watched, Ok(ExitStatus::Exited(1)), 0)]);
    assert_eq!(log.reaped, [(orphan, ExitStatus::Exited(2))]);
    assert!(!lp.sim().is_zombie(watched) && !lp.sim().is_zombie(orphan));
}

#[test]
fn a_no_reap_watcher_keeps_its_zombie_from_the_reaper_which_still_reaps_the_others() {
    // Outside checks: with reap(false) and the reaper, the watched child's
    // status also reached the reaper, which reaped it.
    for sigchld_mode in [false, true] {
        let mut lp = new_loop();
        let mut log = Log::default();
        if sigchld_mode {
            lp.sim().refuse_pidfds(Some(Errno::EPERM));
        }
        let kept = lp.sim().spawn_child().unwrap();
        lp.pid_with(kept, PidOptions::default().reap(false), 0, on_pid).unwrap();
        lp.reaper(0, on_reap).unwrap();
        lp.sim().exit(kept, ExitStatus::Exited(7)).unwrap();
        pass(&mut lp, &mut log);
        assert_eq!(log.pids, [(kept, Ok(ExitStatus::Exited(7)), 0)], "sigchld mode {sigchld_mode}");
        assert!(log.reaped.is_empty(), "sigchld mode {sigchld_mode}: {:?}", log.reaped);
        assert!(lp.sim().is_zombie(kept), "the zombie stays for its user");
        // A later child, behind the kept zombie, is still reaped.
        let later = lp.sim().spawn_child().unwrap();
        lp.sim().exit(later, ExitStatus::Exited(8)).unwrap();
        pass(&mut lp, &mut log);
        assert_eq!(log.reaped, [(later, ExitStatus::Exited(8))], "sigchld mode {sigchld_mode}");
        assert!(lp.sim().is_zombie(kept));
        assert_eq!(pass(&mut lp, &mut log), 0);
    }
}

#[test]
fn zombies_that_exist_when_the_reaper_is_set_are_collected_on_the_next_pass() {
    let mut lp = new_loop();
    let mut log = Log::default();
    let early = lp.sim().spawn_child().unwrap();
    lp.sim().exit(early, ExitStatus::Exited(0)).unwrap();
    let id = lp.reaper(9, on_reap).unwrap();
    pass(&mut lp, &mut log);
    assert_eq!(log.reaped, [(early, ExitStatus::Exited(0))]);
    assert!(lp.remove(id));
    assert!(!blocked(&mut lp, 1).contains(17));
}

// --- the waker ---

#[test]
fn a_waker_rung_while_the_loop_sleeps_rings_the_doorbell_and_counts_coalesce() {
    let mut lp = new_loop();
    let mut log = Log::default();
    let waker = lp.waker().unwrap();
    lp.on_wake(0, on_wake).unwrap();
    lp.sim().wake_in_next_wait(waker, 2).unwrap();
    lp.sim().wake_in_next_wait(waker, 3).unwrap();
    assert_eq!(pass(&mut lp, &mut log), 1);
    assert_eq!(log.wakes, [5]);
    // The doorbell was reset: the next pass is quiet.
    assert_eq!(pass(&mut lp, &mut log), 0);
    // A signal between passes needs no doorbell: the loop looks before it sleeps.
    waker.signal(1).unwrap();
    assert_eq!(pass(&mut lp, &mut log), 1);
    assert_eq!(log.wakes, [5, 1]);
}

#[test]
fn without_a_wake_callback_the_count_waits_for_drain() {
    let mut lp = new_loop();
    let mut log = Log::default();
    let waker = lp.waker().unwrap();
    lp.sim().wake_in_next_wait(waker, 4).unwrap();
    assert_eq!(pass(&mut lp, &mut log), 0);
    assert_eq!(waker.drain(), Ok(4));
    assert_eq!(waker.drain(), Ok(0));
}

#[test]
fn a_waker_outliving_its_loop_is_closed() {
    let mut lp = new_loop();
    let waker = lp.waker().unwrap();
    drop(lp);
    assert_eq!(waker.signal(1), Err(Error::Closed));
    assert_eq!(waker.drain(), Err(Error::Closed));
}

#[test]
fn an_inherited_ignore_of_sigchld_does_not_lose_a_childs_status() {
    // Outside checks: under a parent that ignored SIGCHLD the kernel reaped
    // the init's child itself, and its status was lost.
    for reaper in [false, true] {
        let mut lp = new_loop();
        let mut log = Log::default();
        lp.sim().ignore_sigchld();
        let child = lp.sim().spawn_child().unwrap();
        if reaper {
            lp.reaper(0, on_reap).unwrap();
        } else {
            lp.pid(child, 0, on_pid).unwrap();
        }
        lp.sim().exit(child, ExitStatus::Exited(3)).unwrap();
        pass(&mut lp, &mut log);
        if reaper {
            assert_eq!(log.reaped, [(child, ExitStatus::Exited(3))]);
        } else {
            assert_eq!(log.pids, [(child, Ok(ExitStatus::Exited(3)), 0)]);
        }
    }
}

// --- found by the loop_sim fuzz target ---

mod found_by_fuzzing {
    use core::time::Duration;
    use linux_event::backend::Sim;
    use linux_event::sys::ExitStatus;
    use linux_event::{Errno, Error, Interest, Loop, PidOptions, Ready};

    #[derive(Default)]
    struct Log {
        wakes: Vec<u64>,
        reaped: Vec<i32>,
    }

    type Lp = Loop<Log, 16, 16, Sim<64>>;

    fn new_loop() -> Lp {
        Loop::with_backend(Sim::new()).unwrap()
    }

    fn pass(lp: &mut Lp, log: &mut Log) {
        lp.run_once(log, Some(Duration::ZERO)).unwrap();
    }

    #[test]
    fn a_refused_deregistration_is_retried_when_the_fd_is_watched_again_with_nothing_to_ask() {
        let mut lp = new_loop();
        let mut log = Log::default();
        let id = lp.watch(3, Interest::READ, 0, |_, _, _| {}).unwrap();
        lp.sim().set_ready(3, Ready::READABLE).unwrap();
        lp.sim().fail_next_deregister(Errno::EIO);
        assert!(lp.remove(id));
        lp.watch(3, Interest::empty(), 0, |_, _, _| {}).unwrap();
        pass(&mut lp, &mut log);
        assert_eq!(lp.sim().registration(3), None, "the old registration is gone");
    }

    #[test]
    fn a_failed_wait_keeps_the_wakers_count_for_the_next_pass() {
        let mut lp = new_loop();
        let mut log = Log::default();
        let w = lp.waker().unwrap();
        lp.on_wake(0, |_, l, ev| l.wakes.push(ev.count())).unwrap();
        w.signal(3).unwrap();
        lp.sim().fail_next_wait(Errno::EBADF);
        assert!(lp.run_once(&mut log, Some(Duration::ZERO)).is_err());
        w.signal(1).unwrap();
        pass(&mut lp, &mut log);
        assert_eq!(log.wakes.iter().sum::<u64>() + w.drain().unwrap(), 4);
    }

    #[test]
    fn more_refused_deregistrations_than_ever_fit_before_a_wait_are_all_retried() {
        let mut lp = new_loop();
        let mut log = Log::default();
        for fd in 0..40 {
            let id = lp.watch(fd, Interest::READ, 0, |_, _, _| {}).unwrap();
            lp.sim().fail_next_deregister(Errno::EIO);
            lp.remove(id);
        }
        pass(&mut lp, &mut log);
        assert_eq!(lp.sim().registered(), 0);
    }

    #[test]
    fn kept_zombies_beyond_the_table_are_refused_not_forgotten() {
        let mut lp = new_loop();
        let mut log = Log::default();
        lp.reaper(0, |_, l, ev| l.reaped.push(ev.pid())).unwrap();
        let mut kept = 0;
        for _ in 0..20 {
            let c = lp.sim().spawn_child().unwrap();
            match lp.pid_with(c, PidOptions::default().reap(false), 0, |_, _, _| {}) {
                Ok(_) => kept += 1,
                Err(e) => {
                    assert_eq!(e, Error::Capacity, "room for W kept zombies");
                    lp.pid(c, 0, |_, _, _| {}).unwrap();
                }
            }
            lp.sim().exit(c, ExitStatus::Exited(1)).unwrap();
            pass(&mut lp, &mut log);
        }
        assert_eq!(kept, 16);
        assert!(log.reaped.is_empty(), "the reaper never took a kept zombie: {:?}", log.reaped);
    }
}
