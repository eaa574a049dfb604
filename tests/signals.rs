//! Signals through the loop's signalfd. Every signal here is sent to the
//! test's own thread (tgkill), so tests running in parallel threads never
//! see each other's signals; process-directed ones are in tests/children.rs.

use linux_event::sys::{self, SigSet};
use linux_event::{Errno, Error, Loop};
use std::time::Duration;

#[derive(Default)]
struct Got {
    deliveries: Vec<(i32, u32, u64)>,
}

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
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    let v = status.lines().find_map(|l| l.strip_prefix("SigBlk:")).unwrap();
    SigSet::from_bits(u64::from_str_radix(v.trim(), 16).unwrap())
}

#[test]
fn a_signal_sent_to_self_is_delivered_with_count_and_sender() {
    let mut lp: Loop<Got> = Loop::new().unwrap();
    lp.signal(sys::SIGUSR1, |_, g, ev| g.deliveries.push((ev.signo(), ev.count(), ev.data())), 77).unwrap();
    to_self(sys::SIGUSR1);
    let mut got = Got::default();
    lp.run_once(&mut got, Some(Duration::from_secs(5))).unwrap();
    assert_eq!(got.deliveries, vec![(sys::SIGUSR1, 1, 77)]);
}

#[test]
fn storm_of_ten_thousand_counts_every_record_read_and_delivers_at_least_once() {
    let mut lp: Loop<(u32, u32, i32)> = Loop::new().unwrap();
    lp.signal(
        sys::SIGUSR1,
        |_, c, ev| {
            c.0 += ev.count();
            c.1 += 1;
            c.2 = ev.pid();
        },
        0,
    )
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
    assert!(c.1 >= 1, "at least one delivery");
    assert_eq!(c.0, c.1, "count is the number of records read: one per pass for a standard signal");
    assert!(c.0 <= 10_000);
    assert_eq!(c.2, sys::getpid());
}

#[test]
fn queued_realtime_signals_all_count_and_keep_their_order() {
    let mut lp: Loop<Got> = Loop::new().unwrap();
    let rt = sys::SIGRTMIN + 3;
    for s in [rt, rt + 1] {
        lp.signal(s, |_, g, ev| g.deliveries.push((ev.signo(), ev.count(), ev.value())), 0).unwrap();
    }
    // Sent in descending signal order; delivered ascending, once per signal.
    for i in 0..100 {
        queue_to_self(rt + 1, 1000 + i);
    }
    for i in 0..100 {
        queue_to_self(rt, i);
    }
    let mut got = Got::default();
    lp.run_once(&mut got, Some(Duration::from_secs(5))).unwrap();
    assert_eq!(
        got.deliveries,
        vec![(rt, 100, 99), (rt + 1, 100, 1099)],
        "every record counts, the last one is the last sent"
    );
}

#[test]
fn mask_is_restored_when_the_last_watcher_goes_and_on_drop() {
    let before = blocked_now();
    assert!(!before.contains(sys::SIGUSR2));
    {
        let mut lp: Loop<Got> = Loop::new().unwrap();
        let a = lp.signal(sys::SIGUSR2, |_, _, _| {}, 0).unwrap();
        let b = lp.signal(sys::SIGWINCH, |_, _, _| {}, 0).unwrap();
        assert!(blocked_now().contains(sys::SIGUSR2) && blocked_now().contains(sys::SIGWINCH));
        assert!(lp.cancel_signal(a));
        assert!(blocked_now().contains(sys::SIGUSR2), "kept blocked until the last watcher goes");
        assert!(lp.cancel_signal(b));
        assert_eq!(blocked_now(), before, "last watcher gone");
        lp.signal(sys::SIGUSR2, |_, _, _| {}, 0).unwrap();
        assert!(blocked_now().contains(sys::SIGUSR2));
    }
    assert_eq!(blocked_now(), before, "restored on drop");
}

#[test]
fn a_signal_blocked_before_the_loop_stays_blocked() {
    sys::sigprocmask(sys::MaskHow::Block, SigSet::empty().with(sys::SIGURG)).unwrap();
    {
        let mut lp: Loop<Got> = Loop::new().unwrap();
        lp.signal(sys::SIGURG, |_, _, _| {}, 0).unwrap();
    }
    assert!(blocked_now().contains(sys::SIGURG), "the loop only unblocks what it blocked");
    sys::sigprocmask(sys::MaskHow::Unblock, SigSet::empty().with(sys::SIGURG)).unwrap();
}

#[test]
fn kill_stop_zero_and_out_of_range_are_einval() {
    let mut lp: Loop<Got> = Loop::new().unwrap();
    for s in [sys::SIGKILL, sys::SIGSTOP, 0, -1, 65, i32::MAX] {
        assert_eq!(lp.signal(s, |_, _, _| {}, 0).err(), Some(Error::Os(Errno::EINVAL)), "signal {s}");
    }
}

#[test]
fn last_registration_wins_and_cancel_touches_only_its_own() {
    let mut lp: Loop<Got> = Loop::new().unwrap();
    let old = lp.signal(sys::SIGUSR1, |_, g, _| g.deliveries.push((1, 0, 0)), 0).unwrap();
    let new = lp.signal(sys::SIGUSR1, |_, g, _| g.deliveries.push((2, 0, 0)), 0).unwrap();
    assert!(!lp.cancel_signal(old), "the replaced registration is stale");
    assert!(lp.is_signal_live(new));
    to_self(sys::SIGUSR1);
    let mut got = Got::default();
    lp.run_once(&mut got, Some(Duration::from_secs(5))).unwrap();
    assert_eq!(got.deliveries, vec![(2, 0, 0)]);
    assert!(lp.cancel_signal(new));
    assert!(!lp.cancel_signal(new), "idempotent");
}

#[test]
fn a_callback_can_cancel_its_own_signal_and_stop() {
    let mut lp: Loop<Got> = Loop::new().unwrap();
    lp.signal(
        sys::SIGUSR1,
        |lp, g, ev| {
            g.deliveries.push((ev.signo(), ev.count(), 0));
            assert!(lp.cancel_signal(ev.id()));
            lp.stop();
        },
        0,
    )
    .unwrap();
    lp.after(Duration::from_secs(60), |_, _, _| panic!("must not wait this long")).unwrap();
    to_self(sys::SIGUSR1);
    let mut got = Got::default();
    lp.run(&mut got).unwrap();
    assert_eq!(got.deliveries, vec![(sys::SIGUSR1, 1, 0)]);
}
