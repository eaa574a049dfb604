//! What the loop refuses: full tables, bad and reserved fds, stale ids,
//! re-entrant runs; and inputs that must not make it panic.

#[macro_use]
mod common;

use common::{Config, Loop, NO_WAIT, PATIENCE, pipe, temp_path, write_once};
use core::time::Duration;
use linux_event::{Errno, Error, Instant, Interest, TimerEvent, TimerId, Trigger, WakeEvent, WatchEvent, WatchOptions};

/// What a callback saw when it tried to run the loop: which callback, the
/// `run_once` and `run` results, and `is_running`.
type Reentry = (&'static str, Result<(), Error>, Result<(), Error>, bool);

#[derive(Default)]
struct Ctx {
    io: Vec<u64>,
    timers: Vec<&'static str>,
    reentry: Vec<Reentry>,
}

type Lp<const W: usize = 256, const T: usize = 256> = Loop<Ctx, W, T>;

fn io_once<const W: usize, const T: usize>(lp: &mut Lp<W, T>, ctx: &mut Ctx, ev: WatchEvent) {
    ctx.io.push(ev.data());
    lp.remove(ev.id());
}

fn io_record(_lp: &mut Lp, ctx: &mut Ctx, ev: WatchEvent) {
    ctx.io.push(ev.data());
}

fn io_other(_lp: &mut Lp, ctx: &mut Ctx, _ev: WatchEvent) {
    ctx.io.push(u64::MAX);
}

fn full_watcher_table_is_capacity_and_loses_nothing(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp<4, 2> = cfg.new_loop();
    let pipes: Vec<_> = (0..6).map(|_| pipe()).collect();
    for (_, w) in &pipes {
        write_once(w.as_raw_fd(), b"x");
    }
    let mut ids = Vec::new();
    for (i, (r, _)) in pipes.iter().take(4).enumerate() {
        ids.push(lp.watch_with(r.as_raw_fd(), WatchOptions::new(Interest::READ), i as u64, io_once::<4, 2>).unwrap());
    }
    let fifth = pipes[4].0.as_raw_fd();
    assert_eq!(lp.watch(fifth, Interest::READ, 4, io_once::<4, 2>), Err(Error::Capacity), "[{n}]");
    let opts = WatchOptions::new(Interest::READ).trigger(Trigger::Edge);
    assert_eq!(lp.watch_with(fifth, opts, 4, io_once::<4, 2>), Err(Error::Capacity), "[{n}]");
    assert_eq!(lp.watcher_count(), 4, "[{n}]");
    assert_eq!(lp.watcher_of(fifth), None, "[{n}]");
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(lp.interest(*id), Some(Interest::READ), "[{n}] watcher {i} lost");
    }
    // Replacing a watched fd needs no new slot: allowed when full.
    let replaced = lp.watch(pipes[0].0.as_raw_fd(), Interest::READ, 10, io_once::<4, 2>).unwrap();
    assert_eq!(lp.interest(ids[0]), None, "[{n}]");
    ids[0] = replaced;
    assert_eq!(lp.watch(pipes[5].0.as_raw_fd(), Interest::READ, 5, io_once::<4, 2>), Err(Error::Capacity), "[{n}]");

    let mut ctx = Ctx::default();
    let _guard = common::watchdog("run() over a full watcher table", 60);
    assert_eq!(lp.run(&mut ctx), Ok(()), "[{n}] run ends once every watcher removed itself");
    ctx.io.sort();
    assert_eq!(ctx.io, [1, 2, 3, 10], "[{n}] refused fds must never be reported");

    // With room again, the refused fd can be watched and is reported.
    lp.watch(fifth, Interest::READ, 4, io_once::<4, 2>).unwrap();
    assert_eq!(lp.run_once(&mut ctx, PATIENCE), Ok(1), "[{n}]");
    assert_eq!(ctx.io, [1, 2, 3, 10, 4], "[{n}]");
}

fn timer_named<const T: usize>(name: &'static str) -> fn(&mut Lp<2, T>, &mut Ctx, TimerEvent) {
    match name {
        "t1" => |_, c, _| c.timers.push("t1"),
        "t2" => |_, c, _| c.timers.push("t2"),
        "t3" => |_, c, _| c.timers.push("t3"),
        "t4" => |_, c, _| c.timers.push("t4"),
        _ => |_, c, _| c.timers.push("refused"),
    }
}

fn full_timer_table_is_capacity_and_loses_nothing(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp<2, 4> = cfg.new_loop();
    let ids: Vec<TimerId> = ["t1", "t2", "t3", "t4"]
        .iter()
        .enumerate()
        .map(|(i, name)| lp.after(Duration::from_millis(i as u64 + 1), 0, timer_named::<4>(name)).unwrap())
        .collect();
    let refused = timer_named::<4>("refused");
    assert_eq!(lp.after(Duration::ZERO, 0, refused), Err(Error::Capacity), "[{n}] after");
    assert_eq!(lp.every(Duration::ZERO, 0, refused), Err(Error::Capacity), "[{n}] every");
    assert_eq!(lp.at(Instant::ZERO, 0, refused), Err(Error::Capacity), "[{n}] at");
    assert_eq!(lp.timer_count(), 4, "[{n}]");
    for (i, id) in ids.iter().enumerate() {
        assert!(lp.is_pending(*id), "[{n}] timer {i} lost");
    }
    let mut ctx = Ctx::default();
    assert_eq!(lp.run(&mut ctx), Ok(()), "[{n}]");
    assert_eq!(ctx.timers, ["t1", "t2", "t3", "t4"], "[{n}]");
    // Room again.
    lp.after(Duration::ZERO, 0, timer_named::<4>("t1")).unwrap();
    assert_eq!(lp.run(&mut ctx), Ok(()), "[{n}]");
    assert_eq!(ctx.timers.last(), Some(&"t1"), "[{n}]");
}

fn watching_a_bad_fd_is_ebadf_and_changes_nothing(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    for fd in [-1, -2, i32::MIN, i32::MAX] {
        for interest in [Interest::READ, Interest::WRITE, Interest::READ | Interest::WRITE | Interest::ERROR] {
            assert_eq!(lp.watch(fd, interest, 0, io_record), Err(Error::Os(Errno::EBADF)), "[{n}] fd {fd}");
            let opts = WatchOptions::new(interest).trigger(Trigger::Edge);
            assert_eq!(lp.watch_with(fd, opts, 0, io_record), Err(Error::Os(Errno::EBADF)), "[{n}] fd {fd}");
        }
        assert_eq!(lp.watcher_of(fd), None, "[{n}] fd {fd}");
    }
    assert_eq!(lp.watcher_count(), 0, "[{n}]");
}

fn watching_a_regular_file_or_a_directory_is_eperm(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let path = temp_path(&format!("watching_a_regular_file_is_eperm-{}", cfg.name));
    let file = std::fs::File::create(&path).unwrap();
    let dir = std::fs::File::open(std::env::temp_dir()).unwrap();
    use std::os::fd::AsRawFd;
    for (what, fd) in [("regular file", file.as_raw_fd()), ("directory", dir.as_raw_fd())] {
        for interest in [Interest::READ, Interest::WRITE, Interest::READ | Interest::WRITE] {
            assert_eq!(lp.watch(fd, interest, 0, io_record), Err(Error::Os(Errno::EPERM)), "[{n}] {what}");
        }
        assert_eq!(lp.watcher_of(fd), None, "[{n}] {what}");
    }
    assert_eq!(lp.watcher_count(), 0, "[{n}]");
    drop(file);
    std::fs::remove_file(&path).unwrap();
}

fn watching_the_backends_epoll_fd_is_reserved(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let epfd = lp.backend().as_raw_fd();
    for interest in [Interest::READ, Interest::WRITE, Interest::empty()] {
        assert_eq!(lp.watch(epfd, interest, 0, io_record), Err(Error::Reserved), "[{n}] {interest:?}");
    }
    assert_eq!(lp.watcher_count(), 0, "[{n}]");
}

fn reenter_from_timer(lp: &mut Lp, ctx: &mut Ctx, _id: TimerEvent) {
    let once = lp.run_once(ctx, NO_WAIT).map(drop);
    let run = lp.run(ctx).map(drop);
    let running = lp.is_running();
    ctx.reentry.push(("timer", once, run, running));
}

fn reenter_from_watcher(lp: &mut Lp, ctx: &mut Ctx, ev: WatchEvent) {
    let once = lp.run_once(ctx, Some(Duration::MAX)).map(drop);
    let run = lp.run(ctx).map(drop);
    let running = lp.is_running();
    ctx.reentry.push(("watcher", once, run, running));
    lp.remove(ev.id());
}

fn reenter_from_wake(lp: &mut Lp, ctx: &mut Ctx, _ev: WakeEvent) {
    let once = lp.run_once(ctx, None).map(drop);
    let run = lp.run(ctx).map(drop);
    let running = lp.is_running();
    ctx.reentry.push(("wake", once, run, running));
}

fn running_the_loop_from_inside_a_callback_is_reentrant(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (r, w) = pipe();
    write_once(w.as_raw_fd(), b"x");
    lp.watch(r.as_raw_fd(), Interest::READ, 0, reenter_from_watcher).unwrap();
    lp.after(Duration::ZERO, 0, reenter_from_timer).unwrap();
    lp.on_wake(0, reenter_from_wake).unwrap();
    lp.waker().unwrap().signal(1).unwrap();
    let mut ctx = Ctx::default();
    assert_eq!(lp.run_once(&mut ctx, PATIENCE), Ok(3), "[{n}] {:?}", ctx.reentry);
    let mut who: Vec<&str> = ctx.reentry.iter().map(|r| r.0).collect();
    who.sort();
    assert_eq!(who, ["timer", "wake", "watcher"], "[{n}]");
    for (who, once, run, running) in &ctx.reentry {
        assert_eq!(*once, Err(Error::Reentrant), "[{n}] run_once from a {who} callback");
        assert_eq!(*run, Err(Error::Reentrant), "[{n}] run from a {who} callback");
        assert!(*running, "[{n}] is_running inside a {who} callback");
    }
    // The refusals left the loop usable.
    assert!(!lp.is_running(), "[{n}]");
    lp.after(Duration::ZERO, 0, |_, c, _| c.timers.push("after")).unwrap();
    assert_eq!(lp.run_once(&mut ctx, PATIENCE), Ok(1), "[{n}]");
    assert_eq!(ctx.timers, ["after"], "[{n}]");
}

fn check_stale_watch_id(cfg: &Config, lp: &mut Lp, stale: linux_event::WatchId, why: &str) {
    let n = cfg.name;
    assert_eq!(lp.modify(stale, Interest::READ), Err(Error::NotFound), "[{n}] modify, {why}");
    assert_eq!(lp.set_trigger(stale, Trigger::Oneshot), Err(Error::NotFound), "[{n}] set_trigger, {why}");
    assert_eq!(lp.enable(stale, Interest::WRITE), Err(Error::NotFound), "[{n}] enable, {why}");
    assert_eq!(lp.disable(stale, Interest::READ), Err(Error::NotFound), "[{n}] disable, {why}");
    assert_eq!(lp.set_data(stale, 99), Err(Error::NotFound), "[{n}] set_data, {why}");
    assert_eq!(lp.set_callback(stale, io_other), Err(Error::NotFound), "[{n}] set_callback, {why}");
    assert_eq!(lp.interest(stale), None, "[{n}] interest, {why}");
    assert!(!lp.remove(stale), "[{n}] remove, {why}");
    assert!(!lp.is_live(stale), "[{n}] is_live, {why}");
}

fn stale_watch_id_is_not_found_for_every_method_and_touches_nothing(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (r, w) = pipe();
    write_once(w.as_raw_fd(), b"x");
    let removed = lp.watch(r.as_raw_fd(), Interest::READ, 0, io_record).unwrap();
    assert!(lp.remove(removed));
    check_stale_watch_id(cfg, &mut lp, removed, "removed");

    let replaced = lp.watch_with(r.as_raw_fd(), WatchOptions::new(Interest::READ), 1, io_record).unwrap();
    let live = lp.watch_with(r.as_raw_fd(), WatchOptions::new(Interest::READ), 2, io_record).unwrap();
    check_stale_watch_id(cfg, &mut lp, replaced, "replaced");
    check_stale_watch_id(cfg, &mut lp, removed, "removed, slot reused");

    // The live watcher is exactly as it was.
    assert_eq!(lp.interest(live), Some(Interest::READ), "[{n}]");
    let mut ctx = Ctx::default();
    assert_eq!(lp.run_once(&mut ctx, PATIENCE), Ok(1), "[{n}]");
    assert_eq!(ctx.io, [2], "[{n}] stale ids changed the live watcher");
}

fn stale_timer_id_is_refused_by_every_method(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let cancelled = lp.after(Duration::from_secs(60), 0, |_, c, _| c.timers.push("cancelled")).unwrap();
    assert!(lp.remove(cancelled));
    let fired = lp.after(Duration::ZERO, 0, |_, c, _| c.timers.push("fired")).unwrap();
    let mut ctx = Ctx::default();
    assert_eq!(lp.run_once(&mut ctx, PATIENCE), Ok(1), "[{n}]");
    let live = lp.after(Duration::from_secs(60), 0, |_, c, _| c.timers.push("live")).unwrap();
    for (why, id) in [("cancelled", cancelled), ("fired", fired)] {
        assert!(!lp.remove(id), "[{n}] remove, {why}");
        assert_eq!(lp.set_data(id, 7), Err(Error::NotFound), "[{n}] set_data, {why}");
        assert_eq!(lp.rearm(id, Duration::ZERO), Err(Error::NotFound), "[{n}] rearm, {why}");
        assert_eq!(lp.set_interval(id, None), Err(Error::NotFound), "[{n}] set_interval(None), {why}");
        assert_eq!(lp.set_interval(id, Some(Duration::MAX)), Err(Error::NotFound), "[{n}] set_interval, {why}");
        let cb = |_: &mut Lp, c: &mut Ctx, _| c.timers.push("hijacked");
        assert_eq!(lp.set_timer_callback(id, cb), Err(Error::NotFound), "[{n}] set_timer_callback, {why}");
        assert_eq!(lp.deadline(id), None, "[{n}] deadline, {why}");
        assert!(!lp.is_live(id) && !lp.is_pending(id), "[{n}] is_live/is_pending, {why}");
    }
    assert!(lp.is_pending(live), "[{n}]");
    lp.rearm(live, Duration::ZERO).unwrap();
    assert_eq!(lp.run_once(&mut ctx, PATIENCE), Ok(1), "[{n}]");
    assert_eq!(ctx.timers, ["fired", "live"], "[{n}]");
}

fn never(_lp: &mut Lp, ctx: &mut Ctx, _id: TimerEvent) {
    ctx.timers.push("never");
}

fn huge_durations_and_instant_max_do_not_panic_or_fire(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let a = lp.after(Duration::MAX, 0, never).unwrap();
    let b = lp.every(Duration::MAX, 0, never).unwrap();
    let c = lp.at(Instant::MAX, 0, never).unwrap();
    for id in [a, b, c] {
        assert_eq!(lp.deadline(id), Some(Instant::MAX), "[{n}] saturates at Instant::MAX");
    }
    lp.rearm(a, Duration::MAX).unwrap();
    lp.set_interval(b, Some(Duration::MAX)).unwrap();
    lp.set_interval(c, Some(Duration::MAX)).unwrap();
    let d = lp.after(Duration::from_secs(u64::MAX), 0, never).unwrap();
    assert_eq!(lp.deadline(d), Some(Instant::MAX), "[{n}]");
    assert_eq!(lp.update_now().unwrap() + Duration::MAX, Instant::MAX, "[{n}]");

    // The loop must still wait for (and report) an fd with such
    // deadlines armed, and with the largest timeouts.
    let (r, w) = pipe();
    write_once(w.as_raw_fd(), b"x");
    lp.watch(r.as_raw_fd(), Interest::READ, 0, io_record).unwrap();
    let mut ctx = Ctx::default();
    for timeout in [None, Some(Duration::MAX), Some(Duration::from_secs(u64::MAX)), PATIENCE, NO_WAIT] {
        assert_eq!(lp.run_once(&mut ctx, timeout), Ok(1), "[{n}] timeout {timeout:?}");
    }
    assert!(ctx.timers.is_empty(), "[{n}] {:?}", ctx.timers);
    for id in [a, b, c, d] {
        assert!(lp.is_pending(id), "[{n}]");
    }
    assert_eq!(lp.timer_count(), 4, "[{n}]");
}

fn unknown_interest_bits_and_empty_interests_do_not_panic(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (r, w) = pipe();
    write_once(w.as_raw_fd(), b"x");
    let odd = Interest::from_bits_retain(0xf8);
    let id = lp.watch(r.as_raw_fd(), odd, 0, io_record).unwrap();
    let mut ctx = Ctx::default();
    assert_eq!(lp.run_once(&mut ctx, NO_WAIT), Ok(0), "[{n}] no known side asked for");
    lp.enable(id, Interest::all()).unwrap();
    lp.disable(id, Interest::from_bits_retain(0xff)).unwrap();
    lp.modify(id, Interest::empty()).unwrap();
    assert_eq!(lp.run_once(&mut ctx, NO_WAIT), Ok(0), "[{n}]");
    lp.modify(id, Interest::READ | odd).unwrap();
    assert_eq!(lp.run_once(&mut ctx, PATIENCE), Ok(1), "[{n}]");
    assert!(lp.remove(id), "[{n}]");
}

fn zero_capacity_timer_table_refuses_every_timer(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp<2, 0> = cfg.new_loop();
    let cb = |_: &mut Lp<2, 0>, c: &mut Ctx, _| c.timers.push("fired");
    assert_eq!(lp.after(Duration::ZERO, 0, cb), Err(Error::Capacity), "[{n}]");
    assert_eq!(lp.every(Duration::from_secs(1), 0, cb), Err(Error::Capacity), "[{n}]");
    assert_eq!(lp.at(Instant::MAX, 0, cb), Err(Error::Capacity), "[{n}]");
    assert_eq!(lp.timer_count(), 0, "[{n}]");
    let mut ctx = Ctx::default();
    assert_eq!(lp.run(&mut ctx), Ok(()), "[{n}] nothing to wait for");
    assert_eq!(lp.run_once(&mut ctx, NO_WAIT), Ok(0), "[{n}]");
}

backend_tests!(
    full_watcher_table_is_capacity_and_loses_nothing,
    full_timer_table_is_capacity_and_loses_nothing,
    watching_a_bad_fd_is_ebadf_and_changes_nothing,
    watching_a_regular_file_or_a_directory_is_eperm,
    watching_the_backends_epoll_fd_is_reserved,
    running_the_loop_from_inside_a_callback_is_reentrant,
    stale_watch_id_is_not_found_for_every_method_and_touches_nothing,
    stale_timer_id_is_refused_by_every_method,
    huge_durations_and_instant_max_do_not_panic_or_fire,
    unknown_interest_bits_and_empty_interests_do_not_panic,
    zero_capacity_timer_table_refuses_every_timer,
);
