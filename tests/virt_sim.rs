//! libvirt's event contract on the Sim backend: a virtual clock makes the
//! timeout rules exact (an interval counts from when it fired, an update
//! from now), and a stall error shows whether a call rang the waker.

use linux_event::backend::Sim;
use linux_event::virt::{HandleEvent, HandleEvents, TimeoutEvent, Virt, VirtTable};
use linux_event::{Errno, Error, Loop, Ready};
use std::time::Duration;

type L = Loop<App, 16, 64, Sim<16>>;
type V = Virt<L, 8, 8>;

struct App {
    virt: V,
    fired: Vec<(i32, Duration)>,
    handled: Vec<(i32, HandleEvents)>,
}

impl AsMut<V> for App {
    fn as_mut(&mut self) -> &mut V {
        &mut self.virt
    }
}

type Table = VirtTable<L, 8, 8>;

/// Each test has a table of its own in a static (no leaked allocation, so
/// Miri can run these).
macro_rules! setup {
    () => {{
        static TABLE: Table = VirtTable::new();
        setup(&TABLE)
    }};
}

fn setup(table: &'static Table) -> (L, App) {
    let mut lp = L::with_backend(Sim::new()).unwrap();
    let mut virt = Virt::new(table);
    virt.attach(&mut lp).unwrap();
    (lp, App { virt, fired: Vec::new(), handled: Vec::new() })
}

fn on_timeout(lp: &mut L, app: &mut App, ev: TimeoutEvent) {
    let at = Duration::from_nanos(lp.now().as_nanos());
    app.fired.push((ev.id().get(), at));
}

fn on_handle(_lp: &mut L, app: &mut App, ev: HandleEvent) {
    app.handled.push((ev.id().get(), ev.events()));
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn at(lp: &mut L, app: &mut App, t: Duration) -> usize {
    lp.sim().set_now(linux_event::Instant::from_nanos(t.as_nanos() as u64));
    lp.run_once(app, Some(Duration::ZERO)).unwrap()
}

#[test]
fn an_interval_counts_from_when_the_timeout_fired() {
    let (mut lp, mut app) = setup!();
    at(&mut lp, &mut app, ms(100));
    let t = app.virt.add_timeout(10, 0, on_timeout, None).unwrap().get();
    at(&mut lp, &mut app, ms(100)); // armed: due at 110
    at(&mut lp, &mut app, ms(109));
    assert!(app.fired.is_empty());
    at(&mut lp, &mut app, ms(125)); // a late pass
    assert_eq!(app.fired, [(t, ms(125))]);
    // libvirt's rule: the next is 10 ms after 125, not on the 110 + 10k grid.
    at(&mut lp, &mut app, ms(134));
    assert_eq!(app.fired.len(), 1, "fired on the phase grid: {:?}", app.fired);
    at(&mut lp, &mut app, ms(135));
    assert_eq!(app.fired, [(t, ms(125)), (t, ms(135))]);
}

#[test]
fn an_update_counts_from_now() {
    let (mut lp, mut app) = setup!();
    at(&mut lp, &mut app, ms(0));
    let t = app.virt.add_timeout(10, 0, on_timeout, None).unwrap();
    at(&mut lp, &mut app, ms(8));
    app.virt.update_timeout(t, 10).unwrap();
    at(&mut lp, &mut app, ms(8));
    at(&mut lp, &mut app, ms(17));
    assert!(app.fired.is_empty(), "the update did not restart the count: {:?}", app.fired);
    at(&mut lp, &mut app, ms(18));
    assert_eq!(app.fired, [(t.get(), ms(18))]);
}

#[test]
fn a_blocked_wait_sleeps_until_the_deadline_of_the_timeout() {
    let (mut lp, mut app) = setup!();
    at(&mut lp, &mut app, ms(0));
    let t = app.virt.add_timeout(250, 0, on_timeout, None).unwrap();
    lp.sim().set_stall_error(Some(Errno::ETIMEDOUT));
    // The first pass arms it and waits until it is due: the clock jumps.
    while app.fired.is_empty() {
        lp.run_once(&mut app, None).unwrap();
    }
    assert_eq!(app.fired, [(t.get(), ms(250))]);
}

/// A prepare callback registered after the companion's runs between the
/// companion's look at the table and the wait: a call made there is what a
/// call from another thread at the worst moment looks like.
fn call_between_prepare_and_wait(lp: &mut L, app: &mut App, ev: linux_event::PhaseEvent) {
    let t = linux_event::virt::TimeoutId::from_raw(ev.data() as i32).unwrap();
    if app.fired.is_empty() {
        app.virt.table().update_timeout(t, 0).unwrap();
    }
    lp.remove(ev.prepare_id());
}

fn loop_thread_call_between_prepare_and_wait(lp: &mut L, app: &mut App, ev: linux_event::PhaseEvent) {
    let t = linux_event::virt::TimeoutId::from_raw(ev.data() as i32).unwrap();
    app.virt.update_timeout(t, 0).unwrap();
    lp.remove(ev.prepare_id());
}

#[test]
fn a_call_from_another_thread_rings_the_waker_and_a_loop_thread_call_does_not() {
    let (mut lp, mut app) = setup!();
    at(&mut lp, &mut app, ms(0));
    let t = app.virt.add_timeout(-1, 0, on_timeout, None).unwrap();
    lp.sim().set_stall_error(Some(Errno::ETIMEDOUT));
    // Nothing can wake the loop: a wait with no deadline stalls.
    assert_eq!(lp.run_once(&mut app, None), Err(Error::Os(Errno::ETIMEDOUT)));
    // The table's call (as from another thread) rings: the wait returns at
    // once, and the next pass arms the timeout (0: due at once).
    lp.prepare(t.get() as u64, call_between_prepare_and_wait).unwrap();
    assert_eq!(lp.run_once(&mut app, None), Ok(0));
    assert_eq!(lp.run_once(&mut app, None), Ok(1));
    assert_eq!(app.fired, [(t.get(), ms(0))]);
    // The loop thread's call does not ring (the loop cannot be asleep while
    // its own thread makes it, except from a prepare callback, as here): no
    // extra pass, the wait stalls.
    app.virt.update_timeout(t, -1).unwrap();
    lp.run_once(&mut app, Some(Duration::ZERO)).unwrap();
    lp.prepare(t.get() as u64, loop_thread_call_between_prepare_and_wait).unwrap();
    assert_eq!(lp.run_once(&mut app, None), Err(Error::Os(Errno::ETIMEDOUT)));
}

#[test]
fn handles_follow_scripted_readiness_and_share_one_registration() {
    let (mut lp, mut app) = setup!();
    let a = app.virt.add_handle(5, HandleEvents::READABLE, 0, on_handle, None).unwrap().get();
    let b = app.virt.add_handle(5, HandleEvents::WRITABLE, 0, on_handle, None).unwrap().get();
    let doorbell = 1;
    at(&mut lp, &mut app, ms(0));
    assert_eq!(lp.sim().registered(), doorbell + 1, "one registration for the fd");
    lp.sim().set_ready(5, Ready::WRITABLE | Ready::HANGUP).unwrap();
    at(&mut lp, &mut app, ms(0));
    assert_eq!(
        app.handled,
        [(a, HandleEvents::HANGUP), (b, HandleEvents::WRITABLE | HandleEvents::HANGUP)],
        "each handle: its own events plus the unasked hang-up"
    );
    app.virt.remove_handle(HandleId(a)).unwrap();
}

#[allow(non_snake_case)]
fn HandleId(raw: i32) -> linux_event::virt::HandleId {
    linux_event::virt::HandleId::from_raw(raw).unwrap()
}

#[test]
fn a_failed_registration_is_reported_and_retried_after_an_update() {
    let (mut lp, mut app) = setup!();
    let a = app.virt.add_handle(6, HandleEvents::READABLE, 0, on_handle, None).unwrap();
    lp.sim().fail_next(Errno::ENOSPC);
    at(&mut lp, &mut app, ms(0));
    at(&mut lp, &mut app, ms(0));
    assert_eq!(app.handled, [(a.get(), HandleEvents::ERROR), (a.get(), HandleEvents::ERROR)]);
    // An update brings the registration up to date again; it now succeeds.
    app.virt.update_handle(a, HandleEvents::READABLE | HandleEvents::WRITABLE).unwrap();
    app.handled.clear();
    at(&mut lp, &mut app, ms(0));
    assert!(app.handled.is_empty(), "{:?}", app.handled);
    assert_eq!(lp.sim().registered(), 2, "the doorbell and fd 6");
    lp.sim().set_ready(6, Ready::READABLE).unwrap();
    at(&mut lp, &mut app, ms(0));
    assert_eq!(app.handled, [(a.get(), HandleEvents::READABLE)]);
}

fn postpone_timeout_one(_lp: &mut L, app: &mut App, ev: HandleEvent) {
    app.handled.push((ev.id().get(), ev.events()));
    let t = linux_event::virt::TimeoutId::from_raw(ev.data() as i32).unwrap();
    app.virt.update_timeout(t, 10).unwrap();
}

/// The fuzzer's second find: a timeout due in this pass, updated by a
/// handle callback earlier in the same pass, must not fire on its stale
/// timer (the update restarts the count).
#[test]
fn a_timeout_updated_during_the_pass_waits_for_its_new_interval() {
    let (mut lp, mut app) = setup!();
    at(&mut lp, &mut app, ms(0));
    let t = app.virt.add_timeout(0, 0, on_timeout, None).unwrap();
    app.virt.add_handle(7, HandleEvents::READABLE, t.get() as u64, postpone_timeout_one, None).unwrap();
    at(&mut lp, &mut app, ms(0));
    assert_eq!(app.fired.len(), 1, "0 ms: fires in the first pass");
    lp.sim().set_ready(7, Ready::READABLE).unwrap();
    at(&mut lp, &mut app, ms(1));
    assert_eq!(app.fired.len(), 1, "fired on its stale timer: {:?}", app.fired);
    lp.sim().clear_ready(7, Ready::READABLE);
    // The next pass (right after, as in a running loop) applies the
    // change: 10 ms from then.
    at(&mut lp, &mut app, ms(1));
    at(&mut lp, &mut app, ms(10));
    assert_eq!(app.fired.len(), 1);
    at(&mut lp, &mut app, ms(11));
    assert_eq!(app.fired, [(t.get(), ms(0)), (t.get(), ms(11))]);
}
