//! Signals through the loop's signalfd, on every backend. Every signal here
//! is sent to the test's own thread (tgkill), so tests running in parallel
//! threads never see each other's signals; process-directed ones are in
//! tests/children.rs. A test that looks at its thread's mask first unblocks
//! the signals it uses: the mask it inherited is not its business.

#[macro_use]
mod common;

use common::{Config, Loop, PATIENCE};
use linux_event::sys::{self, MaskHow, SigSet};
use linux_event::{Errno, Error, SignalEvent};
use std::cell::Cell;
use std::time::Duration;

#[derive(Default)]
struct Got {
    /// (signal, records, data)
    deliveries: Vec<(i32, u32, u64)>,
    /// (sender pid, signal code) of each delivery.
    senders: Vec<(i32, i32)>,
}

type Lp = Loop<Got>;

fn record(_lp: &mut Lp, g: &mut Got, ev: SignalEvent) {
    g.deliveries.push((ev.signo(), ev.count(), ev.data()));
    g.senders.push((ev.pid(), ev.code()));
}

fn ignore(_lp: &mut Lp, _g: &mut Got, _ev: SignalEvent) {}

fn to_self(signo: i32) {
    sys::tgkill(sys::getpid(), sys::gettid(), signo).unwrap();
}

/// Queues a real-time signal with a value to this thread (rt_tgsigqueueinfo).
fn queue_to_self(signo: i32, value: u64) {
    let mut info = [0u8; 128];
    info[0..4].copy_from_slice(&signo.to_ne_bytes());
    info[8..12].copy_from_slice(&(-1i32).to_ne_bytes()); // SI_QUEUE
    info[16..20].copy_from_slice(&sys::getpid().to_ne_bytes());
    info[24..32].copy_from_slice(&value.to_ne_bytes());
    // SAFETY: test-only raw syscall with a valid 128-byte siginfo buffer.
    let r = unsafe { libc::syscall(libc::SYS_rt_tgsigqueueinfo, sys::getpid(), sys::gettid(), signo, info.as_ptr()) };
    assert_eq!(r, 0, "rt_tgsigqueueinfo: {}", std::io::Error::last_os_error());
}

fn blocked_now() -> SigSet {
    sys::current_mask().unwrap()
}

/// Unblocks `signals` in the calling thread (each test runs on a thread of
/// its own), so that what the test asserts about the mask does not depend
/// on what it inherited. Returns the mask it leaves.
fn unblocked(signals: &[i32]) -> SigSet {
    let set = signals.iter().fold(SigSet::empty(), |s, &n| s.with(n));
    sys::sigprocmask(MaskHow::Unblock, set).unwrap();
    let now = blocked_now();
    assert!(signals.iter().all(|&s| !now.contains(s)));
    now
}

fn a_signal_sent_to_self_is_delivered_with_count_and_sender(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    lp.signal(sys::SIGUSR1, 77, record).unwrap();
    to_self(sys::SIGUSR1);
    let mut got = Got::default();
    lp.run_once(&mut got, PATIENCE).unwrap();
    assert_eq!(got.deliveries, vec![(sys::SIGUSR1, 1, 77)], "[{n}]");
    // tgkill: SI_TKILL (-6), from this process.
    assert_eq!(got.senders, vec![(sys::getpid(), -6)], "[{n}]");
}

fn storm_of_ten_thousand_counts_every_record_read_and_delivers_at_least_once(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Loop<(u32, u32, i32)> = cfg.new_loop();
    lp.signal(sys::SIGUSR1, 0, |_, c, ev| {
        c.0 += ev.count();
        c.1 += 1;
        c.2 = ev.pid();
    })
    .unwrap();
    let mut c = (0, 0, 0);
    for i in 0..10_000 {
        to_self(sys::SIGUSR1);
        if i % 1000 == 999 {
            lp.run_once(&mut c, Some(Duration::ZERO)).unwrap();
        }
    }
    lp.run_once(&mut c, Some(Duration::ZERO)).unwrap();
    // Standard signals coalesce while pending: each pass reads one record.
    assert!(c.1 >= 1, "[{n}] at least one delivery");
    assert_eq!(c.0, c.1, "[{n}] count is the number of records read: one per pass for a standard signal");
    assert!(c.0 <= 10_000, "[{n}]");
    assert_eq!(c.2, sys::getpid(), "[{n}]");
}

fn queued_realtime_signals_all_count_and_keep_their_order(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let rt = sys::SIGRTMIN + 3;
    for s in [rt, rt + 1] {
        lp.signal(s, 0, |_, g, ev| g.deliveries.push((ev.signo(), ev.count(), ev.value()))).unwrap();
    }
    // Sent in descending signal order; delivered ascending, once per signal.
    for i in 0..100 {
        queue_to_self(rt + 1, 1000 + i);
    }
    for i in 0..100 {
        queue_to_self(rt, i);
    }
    let mut got = Got::default();
    lp.run_once(&mut got, PATIENCE).unwrap();
    assert_eq!(
        got.deliveries,
        vec![(rt, 100, 99), (rt + 1, 100, 1099)],
        "[{n}] every record counts, the last one is the last sent"
    );
}

fn mask_is_restored_when_the_last_watcher_goes_and_on_drop(cfg: &Config) {
    let n = cfg.name;
    let before = unblocked(&[sys::SIGUSR2, sys::SIGWINCH]);
    {
        let mut lp: Lp = cfg.new_loop();
        let a = lp.signal(sys::SIGUSR2, 0, ignore).unwrap();
        let b = lp.signal(sys::SIGWINCH, 0, ignore).unwrap();
        assert!(blocked_now().contains(sys::SIGUSR2) && blocked_now().contains(sys::SIGWINCH), "[{n}]");
        assert!(lp.remove(a), "[{n}]");
        assert!(!blocked_now().contains(sys::SIGUSR2), "[{n}] SIGUSR2 has no watcher left");
        assert!(blocked_now().contains(sys::SIGWINCH), "[{n}] kept blocked until its watcher goes");
        assert!(lp.remove(b), "[{n}]");
        assert_eq!(blocked_now(), before, "[{n}] last watcher gone");
        lp.signal(sys::SIGUSR2, 0, ignore).unwrap();
        assert!(blocked_now().contains(sys::SIGUSR2), "[{n}]");
    }
    assert_eq!(blocked_now(), before, "[{n}] restored on drop");
}

fn two_loops_in_one_thread_keep_a_signal_blocked_until_both_are_gone(cfg: &Config) {
    let n = cfg.name;
    let before = unblocked(&[sys::SIGUSR2]);
    let mut a: Lp = cfg.new_loop();
    let mut b: Lp = cfg.new_loop();
    let in_a = a.signal(sys::SIGUSR2, 1, record).unwrap();
    let in_b = b.signal(sys::SIGUSR2, 2, record).unwrap();
    assert!(a.remove(in_a), "[{n}]");
    assert!(blocked_now().contains(sys::SIGUSR2), "[{n}] the other loop still watches it: it must stay blocked");
    // And the other loop still gets it (unblocked, it would have killed us).
    to_self(sys::SIGUSR2);
    let mut got = Got::default();
    assert_eq!(b.run_once(&mut got, PATIENCE), Ok(1), "[{n}]");
    assert_eq!(got.deliveries, [(sys::SIGUSR2, 1, 2)], "[{n}]");
    assert!(b.remove(in_b), "[{n}]");
    assert_eq!(blocked_now(), before, "[{n}] both gone");
    // The same with drops, in either order.
    for drop_a_first in [true, false] {
        let mut a: Lp = cfg.new_loop();
        let mut b: Lp = cfg.new_loop();
        a.signal(sys::SIGUSR2, 0, ignore).unwrap();
        b.signal(sys::SIGUSR2, 0, ignore).unwrap();
        let (first, second) = if drop_a_first { (a, b) } else { (b, a) };
        drop(first);
        assert!(blocked_now().contains(sys::SIGUSR2), "[{n}] one loop dropped, one left");
        drop(second);
        assert_eq!(blocked_now(), before, "[{n}] both dropped");
    }
}

thread_local! {
    /// How many times this thread ran `count_handled` (const-initialised:
    /// safe to touch from a signal handler).
    static HANDLED: Cell<u32> = const { Cell::new(0) };
}

extern "C" fn count_handled(_signo: libc::c_int) {
    HANDLED.with(|h| h.set(h.get() + 1));
}

/// The real-time signal of the discard test, with a handler that counts
/// (per thread) the records that reach it instead of the loop.
const DISCARDED: i32 = sys::SIGRTMIN + 7;

fn install_counting_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: installs a handler that only touches a const thread-local;
        // no other test uses this signal.
        unsafe {
            let mut sa: libc::sigaction = core::mem::zeroed();
            sa.sa_sigaction = count_handled as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            assert_eq!(libc::sigaction(DISCARDED, &sa, core::ptr::null_mut()), 0);
        }
    });
}

fn records_pending_when_the_last_watcher_goes_are_discarded_not_delivered(cfg: &Config) {
    let n = cfg.name;
    install_counting_handler();
    let before = unblocked(&[DISCARDED]);
    // The handler works: a record sent while nobody watches reaches it.
    let handled = HANDLED.with(Cell::get);
    queue_to_self(DISCARDED, 0);
    assert_eq!(HANDLED.with(Cell::get), handled + 1, "[{n}] the counting handler did not run");
    for how in ["remove", "drop"] {
        let mut lp: Lp = cfg.new_loop();
        let id = lp.signal(DISCARDED, 0, record).unwrap();
        for v in 0..3 {
            queue_to_self(DISCARDED, v);
        }
        // Never read by the loop: the watcher goes while they are pending.
        if how == "remove" {
            assert!(lp.remove(id), "[{n}]");
        } else {
            drop(lp);
        }
        assert_eq!(blocked_now(), before, "[{n}] {how}: unblocked again");
        assert_eq!(HANDLED.with(Cell::get), handled + 1, "[{n}] {how}: pending records reached the signal's action");
    }
}

fn a_signal_blocked_before_the_loop_stays_blocked(cfg: &Config) {
    let n = cfg.name;
    sys::sigprocmask(MaskHow::Block, SigSet::empty().with(sys::SIGURG)).unwrap();
    {
        let mut lp: Lp = cfg.new_loop();
        lp.signal(sys::SIGURG, 0, ignore).unwrap();
    }
    assert!(blocked_now().contains(sys::SIGURG), "[{n}] the loop only unblocks what it blocked");
    sys::sigprocmask(MaskHow::Unblock, SigSet::empty().with(sys::SIGURG)).unwrap();
}

fn kill_stop_zero_and_out_of_range_are_einval_and_leave_the_mask_alone(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let before = blocked_now();
    for s in [sys::SIGKILL, sys::SIGSTOP, 0, -1, 65, i32::MAX] {
        assert_eq!(lp.signal(s, 0, ignore).err(), Some(Error::Os(Errno::EINVAL)), "[{n}] signal {s}");
        assert_eq!(blocked_now(), before, "[{n}] signal {s}");
    }
    // The same with a signalfd already made for another signal.
    unblocked(&[sys::SIGUSR1]);
    lp.signal(sys::SIGUSR1, 0, ignore).unwrap();
    let watching = blocked_now();
    for s in [sys::SIGKILL, sys::SIGSTOP, 0, 65] {
        assert_eq!(lp.signal(s, 0, ignore).err(), Some(Error::Os(Errno::EINVAL)), "[{n}] signal {s}");
        assert_eq!(blocked_now(), watching, "[{n}] signal {s}");
    }
}

fn last_registration_wins_and_remove_touches_only_its_own(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let old = lp.signal(sys::SIGUSR1, 0, |_, g, _| g.deliveries.push((1, 0, 0))).unwrap();
    let new = lp.signal(sys::SIGUSR1, 0, |_, g, _| g.deliveries.push((2, 0, 0))).unwrap();
    assert!(!lp.remove(old), "[{n}] the replaced registration is stale");
    assert!(!lp.is_live(old), "[{n}]");
    assert_eq!(lp.set_data(old, 5), Err(Error::NotFound), "[{n}]");
    assert!(lp.is_live(new), "[{n}]");
    to_self(sys::SIGUSR1);
    let mut got = Got::default();
    lp.run_once(&mut got, PATIENCE).unwrap();
    assert_eq!(got.deliveries, vec![(2, 0, 0)], "[{n}]");
    assert!(lp.remove(new), "[{n}]");
    assert!(!lp.remove(new), "[{n}] idempotent");
}

fn set_data_changes_what_the_next_delivery_carries(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let id = lp.signal(sys::SIGUSR1, 1, record).unwrap();
    let mut got = Got::default();
    for data in [1, 2] {
        if data == 2 {
            lp.set_data(id, 2).unwrap();
        }
        to_self(sys::SIGUSR1);
        assert_eq!(lp.run_once(&mut got, PATIENCE), Ok(1), "[{n}]");
    }
    assert_eq!(got.deliveries, [(sys::SIGUSR1, 1, 1), (sys::SIGUSR1, 1, 2)], "[{n}]");
}

fn a_callback_can_remove_its_own_signal_and_stop(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    lp.signal(sys::SIGUSR1, 0, |lp, g, ev| {
        g.deliveries.push((ev.signo(), ev.count(), 0));
        assert!(lp.remove(ev.id()));
        lp.stop();
    })
    .unwrap();
    lp.after(Duration::from_secs(60), 0, |_, _, _| panic!("must not wait this long")).unwrap();
    to_self(sys::SIGUSR1);
    let mut got = Got::default();
    lp.run(&mut got).unwrap();
    assert_eq!(got.deliveries, vec![(sys::SIGUSR1, 1, 0)], "[{n}]");
}

fn a_loop_moved_to_another_thread_gets_wrong_thread_for_new_signals(cfg: &Config) {
    let n = cfg.name;
    let here = unblocked(&[sys::SIGUSR1, sys::SIGUSR2]);
    let mut lp: Lp = cfg.new_loop();
    let usr1 = lp.signal(sys::SIGUSR1, 0, ignore).unwrap();
    assert!(blocked_now().contains(sys::SIGUSR1), "[{n}]");
    let moved = std::thread::spawn(move || {
        let there = unblocked(&[sys::SIGUSR1, sys::SIGUSR2]);
        // Its watchers hold the first thread's mask.
        let refused = lp.signal(sys::SIGUSR2, 0, ignore).err();
        let unchanged = blocked_now() == there;
        // Removing them here leaves this thread's mask alone...
        let removed = lp.remove(usr1);
        let still_unchanged = blocked_now() == there;
        // ...and then the loop is this thread's.
        let adopted = lp.signal(sys::SIGUSR2, 0, ignore).is_ok() && blocked_now().contains(sys::SIGUSR2);
        drop(lp);
        (refused, unchanged, removed, still_unchanged, adopted, blocked_now() == there)
    })
    .join()
    .unwrap();
    assert_eq!(moved.0, Some(Error::WrongThread), "[{n}] a new signal on the moved loop");
    assert!(moved.1, "[{n}] the refused registration changed the new thread's mask");
    assert!(moved.2, "[{n}] removing the moved loop's watcher");
    assert!(moved.3, "[{n}] a removal on the new thread changed its mask");
    assert!(moved.4, "[{n}] with no watcher left, the moved loop watches signals on its new thread");
    assert!(moved.5, "[{n}] dropped on the new thread: its mask as it was");
    // This thread carries out the release it is owed at its next signal
    // registration or removal.
    assert!(blocked_now().contains(sys::SIGUSR1), "[{n}] only a thread changes its own mask");
    let mut other: Lp = cfg.new_loop();
    let id = other.signal(sys::SIGUSR2, 0, ignore).unwrap();
    assert!(!blocked_now().contains(sys::SIGUSR1), "[{n}] the owed unblock was not carried out");
    assert!(other.remove(id), "[{n}]");
    assert_eq!(blocked_now(), here, "[{n}]");
}

/// Set in the child process that
/// `a_failed_registration_leaves_the_mask_as_it_was` starts.
const EMFILE_CHILD: &str = "LINUX_EVENT_TEST_EMFILE_CHILD";

/// Runs the named test of this configuration alone, in a child process of
/// this test binary with `EMFILE_CHILD` set: for a test that must change
/// something process-wide (the fd limit) while other tests run in threads.
fn in_child_process(cfg: &Config, test: &str) {
    let name = format!("{}::{test}", cfg.module());
    let out = common::this_test_binary()
        .args([name.as_str(), "--exact", "--test-threads=1", "--nocapture"])
        .env(EMFILE_CHILD, "1")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("1 passed"), "[{}] {name} in a child process:\n{text}", cfg.name);
}

/// A registration whose signalfd cannot be made (EMFILE: the fd limit set
/// to the lowest free fd number) is the named error, and the thread's mask
/// is exactly as before: not left blocked for good (a later SIGTERM would
/// then never end the process). The same loop works once fds are free.
fn a_failed_registration_leaves_the_mask_as_it_was(cfg: &Config) {
    if std::env::var_os(EMFILE_CHILD).is_none() {
        return in_child_process(cfg, "a_failed_registration_leaves_the_mask_as_it_was");
    }
    let n = cfg.name;
    let before = unblocked(&[sys::SIGUSR1, sys::SIGTERM]);
    let mut lp: Lp = cfg.new_loop();
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain libc calls on valid structs (test code only); this
    // process runs this one test, so no other thread needs an fd meanwhile.
    let lowest_free = unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        let fd = libc::dup(0);
        assert!(fd >= 0);
        libc::close(fd);
        fd as u64
    };
    let lowered = libc::rlimit { rlim_cur: lowest_free, rlim_max: lim.rlim_max };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) }, 0);
    let refused = lp.signal(sys::SIGUSR1, 0, ignore).err();
    let refused_term = lp.signal(sys::SIGTERM, 0, ignore).err();
    let after = blocked_now();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    assert_eq!(refused, Some(Error::Os(Errno::EMFILE)), "[{n}]");
    assert_eq!(refused_term, Some(Error::Os(Errno::EMFILE)), "[{n}]");
    assert_eq!(after, before, "[{n}] a refused registration changed the mask");
    let id = lp.signal(sys::SIGUSR1, 0, ignore).unwrap();
    assert!(blocked_now().contains(sys::SIGUSR1), "[{n}]");
    assert!(lp.remove(id), "[{n}]");
    assert_eq!(blocked_now(), before, "[{n}]");
}

backend_tests!(
    a_signal_sent_to_self_is_delivered_with_count_and_sender,
    a_failed_registration_leaves_the_mask_as_it_was,
    storm_of_ten_thousand_counts_every_record_read_and_delivers_at_least_once,
    queued_realtime_signals_all_count_and_keep_their_order,
    mask_is_restored_when_the_last_watcher_goes_and_on_drop,
    two_loops_in_one_thread_keep_a_signal_blocked_until_both_are_gone,
    records_pending_when_the_last_watcher_goes_are_discarded_not_delivered,
    a_signal_blocked_before_the_loop_stays_blocked,
    kill_stop_zero_and_out_of_range_are_einval_and_leave_the_mask_alone,
    last_registration_wins_and_remove_touches_only_its_own,
    set_data_changes_what_the_next_delivery_carries,
    a_callback_can_remove_its_own_signal_and_stop,
    a_loop_moved_to_another_thread_gets_wrong_thread_for_new_signals,
);
