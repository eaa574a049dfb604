//! The run-time backend choice (`AnyBackend`), a representative set of
//! behaviours run on every backend (one named test per backend, and also
//! on Linux AIO reading every completion with `io_getevents`:
//! `linux_aio_io_getevents::`), and what is specific to the Linux AIO and
//! io_uring backends (`linux_aio_*`, `io_uring_*`: ring header, fds handed
//! to the inner epoll, context growth and fallback, stale completions, CQ
//! overflow).
//!
//! `cargo test io_uring` selects one backend. A backend the kernel refuses
//! is reported with its errno, and is a failure where `LINUX_EVENT_REQUIRE`
//! names it (see `common::run_on`).

#[macro_use]
mod common;

use common::{
    Config, IO_URING, LINUX_AIO, Loop, NO_WAIT, PATIENCE, drain, pass, pipe, remove_watcher_of, run_on, socketpair,
    wait_until_blocked, write_once,
};
use core::time::Duration;
use linux_event::backend::{AioConfig, AnyBackend, BackendKind, IoUring, LinuxAio, UringConfig};
use linux_event::sys::{self, OwnedFd, RawFd};
use linux_event::{Errno, Error, Interest, Side, TimerEvent, Trigger, WakeEvent, WatchEvent, WatchId, WatchOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::Instant as StdInstant;

/// Whether io_uring here has multishot polls (probed in a thread of its
/// own, as `Config::offered` is).
fn uring_multishot() -> bool {
    static MULTI: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *MULTI.get_or_init(|| std::thread::spawn(|| IoUring::new().is_ok_and(|b| b.multishot())).join().unwrap())
}

#[derive(Default)]
struct Log {
    seen: Vec<(WatchId, RawFd, Side)>,
    tags: Vec<&'static str>,
    timers: Vec<&'static str>,
    bytes: Vec<u8>,
    /// Bytes each edge callback reads (0: none).
    read_limit: usize,
    pair: Vec<WatchId>,
    /// (pid, exit code, data) of every pid watcher callback.
    exits: Vec<(i32, Option<i32>, u64)>,
}

type Lp = Loop<Log, 512, 64>;

fn record(_lp: &mut Lp, log: &mut Log, ev: WatchEvent) {
    log.seen.push((ev.id(), ev.fd(), ev.side()));
}

fn record_and_remove(lp: &mut Lp, log: &mut Log, ev: WatchEvent) {
    log.seen.push((ev.id(), ev.fd(), ev.side()));
    lp.remove(ev.id());
}

fn read_some(_lp: &mut Lp, log: &mut Log, ev: WatchEvent) {
    log.seen.push((ev.id(), ev.fd(), ev.side()));
    let mut buf = vec![0u8; log.read_limit.max(1)];
    if log.read_limit > 0
        && let Ok(n) = sys::read(ev.fd(), &mut buf)
    {
        log.bytes.extend_from_slice(&buf[..n]);
    }
}

/// A pseudo-terminal: (master, slave). A tty is what Linux AIO refuses.
fn pty() -> (OwnedFd, OwnedFd) {
    // SAFETY: plain libc calls on fds this function owns.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC);
        assert!(m >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
        let s = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC);
        assert!(s >= 0, "open pty slave: {}", std::io::Error::last_os_error());
        // Raw mode, so bytes reach the master side unchanged and at once.
        let mut t: libc::termios = core::mem::zeroed();
        libc::tcgetattr(s, &mut t);
        libc::cfmakeraw(&mut t);
        libc::tcsetattr(s, libc::TCSANOW, &t);
        (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s))
    }
}

// ---------------------------------------------------------------- selection

/// Under qemu-user 7.2 there is no vDSO for aarch64 and riscv64 guests (and
/// no AIO or io_uring); a native kernel always maps one.
fn under_qemu_user() -> bool {
    // SAFETY: getauxval only reads the auxiliary vector.
    cfg!(any(target_arch = "aarch64", target_arch = "riscv64"))
        && unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) } == 0
}

#[test]
fn auto_is_a_working_backend_and_reports_any_fallback() {
    let b = AnyBackend::new(BackendKind::Auto).unwrap();
    assert_ne!(b.kind(), BackendKind::Auto);
    let preferred = if BackendKind::AUTO_PREFERS == BackendKind::Epoll {
        Ok(())
    } else {
        AnyBackend::new(BackendKind::AUTO_PREFERS).map(drop)
    };
    match preferred {
        Ok(()) => {
            assert_eq!(b.kind(), BackendKind::AUTO_PREFERS);
            assert_eq!(b.fallback(), None);
        }
        Err(e) => {
            assert_eq!(b.kind(), BackendKind::Epoll, "Auto falls back to epoll");
            assert_eq!(b.fallback(), Some((BackendKind::AUTO_PREFERS, e)));
            println!("NOTE: Auto fell back from {} to epoll: {e}", BackendKind::AUTO_PREFERS);
        }
    }
    let mut lp: Lp = Loop::with_backend(b).unwrap();
    assert_eq!(lp.backend_name(), lp.backend().kind().name());
    let (r, w) = pipe();
    lp.watch(r.as_raw_fd(), Interest::READ, 0, record).unwrap();
    sys::write(w.as_raw_fd(), b"x").unwrap();
    assert_eq!(lp.run_once(&mut Log::default(), PATIENCE), Ok(1));
}

#[test]
fn a_named_backend_is_that_backend_or_the_kernels_refusal() {
    for kind in BackendKind::CONCRETE {
        match AnyBackend::new(kind) {
            Ok(b) => {
                assert_eq!((b.kind(), b.fallback()), (kind, None));
                // The backend's own name, as a loop on it reports it.
                let lp: Loop<(), 2, 2> = Loop::with_backend(b).unwrap();
                assert_eq!(lp.backend_name(), kind.name());
            }
            Err(e) => {
                assert!(
                    [Errno::ENOSYS, Errno::EPERM, Errno::EOPNOTSUPP, Errno::EAGAIN, Errno::EINVAL].contains(&e),
                    "{kind}: unexpected refusal {e}"
                );
                println!("NOTE: {kind} refused by this kernel: {e} (errno {})", e.raw());
            }
        }
    }
}

#[test]
fn under_qemu_user_both_refuse_auto_falls_back_and_named_ones_error() {
    if !under_qemu_user() {
        println!("NOTE: not under qemu-user; the refusals qemu gives are checked on the aarch64 and riscv64 runs");
        return;
    }
    assert_eq!(LinuxAio::new().err(), Some(Errno::ENOSYS));
    assert_eq!(IoUring::new().err(), Some(Errno::ENOSYS));
    assert_eq!(AnyBackend::new(BackendKind::LinuxAio).err(), Some(Errno::ENOSYS));
    assert_eq!(AnyBackend::new(BackendKind::IoUring).err(), Some(Errno::ENOSYS));
    let auto = AnyBackend::new(BackendKind::Auto).unwrap();
    assert_eq!(auto.kind(), BackendKind::Epoll);
    let expected =
        (BackendKind::AUTO_PREFERS != BackendKind::Epoll).then_some((BackendKind::AUTO_PREFERS, Errno::ENOSYS));
    assert_eq!(auto.fallback(), expected);
    // The fallback itself, whatever Auto prefers: both refused, epoll taken,
    // the first refusal reported.
    let b = AnyBackend::first_available(&[BackendKind::IoUring, BackendKind::LinuxAio, BackendKind::Epoll]).unwrap();
    assert_eq!((b.kind(), b.fallback()), (BackendKind::Epoll, Some((BackendKind::IoUring, Errno::ENOSYS))));
    let lp: Lp = Loop::with_backend(b).unwrap();
    assert_eq!(lp.backend_name(), "epoll");
    assert_eq!(lp.backend().fallback(), Some((BackendKind::IoUring, Errno::ENOSYS)));
    assert_eq!(
        AnyBackend::first_available(&[BackendKind::LinuxAio, BackendKind::IoUring]).err(),
        Some(Errno::ENOSYS),
        "none accepted: the last refusal"
    );
}

#[test]
fn first_available_takes_the_first_the_kernel_accepts_and_names_what_it_refused() {
    let order = [BackendKind::IoUring, BackendKind::LinuxAio, BackendKind::Epoll];
    let accepted: Vec<_> = order.iter().map(|&k| offered_kind(k)).collect();
    let first_ok = order.iter().zip(&accepted).position(|(_, ok)| ok.is_ok()).unwrap();
    let b = AnyBackend::first_available(&order).unwrap();
    assert_eq!(b.kind(), order[first_ok]);
    // The first refusal before the one taken, if any.
    let refused = order[..first_ok].iter().zip(&accepted).find_map(|(k, ok)| ok.err().map(|e| (*k, e)));
    assert_eq!(b.fallback(), refused);
    if let Some((k, e)) = refused {
        println!("NOTE: {k} refused ({e}); first_available took {}", b.kind());
    }
    assert_eq!(AnyBackend::first_available(&[]).err(), Some(Errno::EINVAL));
    let auto_first = AnyBackend::first_available(&[BackendKind::Auto, BackendKind::Epoll]).unwrap();
    assert_eq!(auto_first.kind(), AnyBackend::new(BackendKind::Auto).unwrap().kind());
}

/// Whether the kernel accepts `kind` (from the probe in its own thread).
fn offered_kind(kind: BackendKind) -> Result<(), Errno> {
    [common::EPOLL, LINUX_AIO, IO_URING].iter().find(|c| c.kind == kind).map_or(Err(Errno::EINVAL), |c| c.offered())
}

#[test]
fn backend_names_parse_as_the_environment_variable_spells_them() {
    assert_eq!(BackendKind::from_name("epoll"), Some(BackendKind::Epoll));
    assert_eq!(BackendKind::from_name("linux-aio"), Some(BackendKind::LinuxAio));
    assert_eq!(BackendKind::from_name("io_uring"), Some(BackendKind::IoUring));
    assert_eq!(BackendKind::from_name("auto"), Some(BackendKind::Auto));
    assert_eq!(BackendKind::from_name("select"), None);
}

// ------------------------------------------------------ behaviour, every backend

fn level_watcher_hears_every_pass_until_drained(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (r, w) = pipe();
    let id = lp.watch(r.as_raw_fd(), Interest::READ, 0, record).unwrap();
    let mut log = Log::default();
    assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 0, "[{n}] nothing yet");
    write_once(w.as_raw_fd(), b"hello");
    for p in 0..3 {
        assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}] pass {p}");
    }
    assert!(log.seen.iter().all(|e| *e == (id, r.as_raw_fd(), Side::Read)), "[{n}]");
    drain(r.as_raw_fd());
    assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 0, "[{n}] drained");
    assert_eq!(pass(cfg, &mut lp, &mut log, Some(Duration::from_millis(20))), 0, "[{n}] drained");
    write_once(w.as_raw_fd(), b"again");
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}] ready again");
}

fn write_side_and_hangups_reach_the_right_sides(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (a, b) = socketpair();
    lp.watch(a.as_raw_fd(), Interest::WRITE, 0, record).unwrap();
    let mut log = Log::default();
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}] writable");
    assert_eq!(log.seen[0].2, Side::Write, "[{n}]");
    let id = lp.watch(a.as_raw_fd(), Interest::READ, 0, record).unwrap();
    drop(b);
    log.seen.clear();
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}] peer hung up");
    assert_eq!(log.seen, [(id, a.as_raw_fd(), Side::Read)], "[{n}]");
}

fn oneshot_fires_once_and_modify_rearms_it(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (r, w) = pipe();
    write_once(w.as_raw_fd(), b"stays");
    let opts = WatchOptions::new(Interest::READ).trigger(Trigger::Oneshot);
    let id = lp.watch_with(r.as_raw_fd(), opts, 0, record).unwrap();
    let mut log = Log::default();
    for round in 1..=3 {
        assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}] round {round}");
        for _ in 0..3 {
            assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 0, "[{n}] round {round}: fired twice");
        }
        lp.modify(id, Interest::READ).unwrap();
    }
    // Armed but not ready: a modify keeps it armed, and it fires once
    // when data arrives.
    drain(r.as_raw_fd());
    assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 0, "[{n}]");
    lp.modify(id, Interest::READ).unwrap();
    write_once(w.as_raw_fd(), b"x");
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}] armed oneshot");
    assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 0, "[{n}]");
}

fn edge_watcher_hears_new_data_only(cfg: &Config) {
    let n = cfg.name;
    if cfg.kind == BackendKind::IoUring && !uring_multishot() {
        // Documented, and checked by io_uring_without_multishot_reports_edge_like_level.
        println!("NOTE: [{n}] no multishot poll: edge is reported like level here; not run");
        return;
    }
    let mut lp: Lp = cfg.new_loop();
    let (a, mut b) = socketpair();
    let opts = WatchOptions::new(Interest::READ).trigger(Trigger::Edge);
    lp.watch_with(a.as_raw_fd(), opts, 0, read_some).unwrap();
    let mut log = Log { read_limit: 1, ..Log::default() };
    b.write_all(b"0123456789").unwrap();
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}]");
    for _ in 0..3 {
        assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 0, "[{n}] unread data reported again");
    }
    // Many writes between two passes: one callback.
    for _ in 0..50 {
        b.write_all(b"x").unwrap();
    }
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}] one edge per pass");
    assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 0, "[{n}]");
    assert_eq!(log.bytes, b"01", "[{n}]");
}

fn modify_to_other_sides_drops_what_the_old_registration_would_have_said(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (a, mut b) = socketpair();
    // Not ready for reading yet: the read poll is armed in the kernel.
    let id = lp.watch(a.as_raw_fd(), Interest::READ, 0, record).unwrap();
    let mut log = Log::default();
    assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 0, "[{n}]");
    lp.modify(id, Interest::WRITE).unwrap();
    b.write_all(b"readable now").unwrap();
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}]");
    assert_eq!(log.seen, [(id, a.as_raw_fd(), Side::Write)], "[{n}] the old read poll's completion leaked");
    lp.disable(id, Interest::WRITE).unwrap();
    log.seen.clear();
    assert_eq!(pass(cfg, &mut lp, &mut log, Some(Duration::from_millis(20))), 0, "[{n}] {:?}", log.seen);
    lp.enable(id, Interest::READ).unwrap();
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}]");
    assert_eq!(log.seen, [(id, a.as_raw_fd(), Side::Read)], "[{n}]");
}

fn tag_a(_lp: &mut Lp, log: &mut Log, _ev: WatchEvent) {
    log.tags.push("a");
}

fn tag_b(_lp: &mut Lp, log: &mut Log, _ev: WatchEvent) {
    log.tags.push("b");
}

/// Removes whichever of the pair in `log.pair` is not itself.
fn remove_other(lp: &mut Lp, log: &mut Log, ev: WatchEvent) {
    log.tags.push("cb");
    if let Some(other) = log.pair.iter().copied().find(|&id| id != ev.id()) {
        lp.remove(other);
    }
    log.pair.clear();
}

fn stale_keys_reach_nobody(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    // A replaced watcher: the old one never hears again.
    let (r, w) = pipe();
    let old = lp.watch(r.as_raw_fd(), Interest::READ, 0, tag_a).unwrap();
    let mut log = Log::default();
    assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 0, "[{n}]");
    let new = lp.watch(r.as_raw_fd(), Interest::READ, 0, tag_b).unwrap();
    assert_ne!(old, new, "[{n}]");
    write_once(w.as_raw_fd(), b"x");
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}]");
    assert_eq!(log.tags, ["b"], "[{n}]");
    assert_eq!(remove_watcher_of(&mut lp, r.as_raw_fd()), Some(true), "[{n}]");
    // Removed inside the batch that reports it: nothing reaches it.
    let (r1, w1) = pipe();
    let (r2, w2) = pipe();
    let first = lp.watch(r1.as_raw_fd(), Interest::READ, 0, remove_other).unwrap();
    let second = lp.watch(r2.as_raw_fd(), Interest::READ, 0, remove_other).unwrap();
    write_once(w1.as_raw_fd(), b"1");
    write_once(w2.as_raw_fd(), b"2");
    log.tags.clear();
    log.pair = vec![first, second];
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}] {:?}", log.tags);
    assert_eq!(log.tags, ["cb"], "[{n}]");
    assert_eq!(lp.watcher_count(), 1, "[{n}]");
    assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 1, "[{n}] the survivor is still level-triggered");
    drop((w1, w2));
}

fn closing_a_watched_fd_without_removing_its_watcher_delivers_nothing(cfg: &Config) {
    // epoll forgets a registration when the last reference to the file
    // description goes. A child that another test of this process forks
    // holds a copy of every fd until it execs, which would keep the pipe
    // alive (and its event coming) for a moment: the test runs in a thread
    // with a file table of its own, which no other thread's fork copies.
    let cfg = *cfg;
    std::thread::spawn(move || {
        // SAFETY: unshare(CLONE_FILES) gives this thread a private copy of
        // the file table; it touches no memory.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_FILES) }, 0, "unshare(CLONE_FILES)");
        closing_a_watched_fd_in_a_private_file_table(&cfg);
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e));
}

fn closing_a_watched_fd_in_a_private_file_table(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (r, w) = common::pipe_with_unique_read_fd();
    write_once(w.as_raw_fd(), b"pending");
    let id = lp.watch(r.as_raw_fd(), Interest::READ, 0, record).unwrap();
    drop(r);
    let mut log = Log::default();
    for _ in 0..3 {
        assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 0, "[{n}] {:?}", log.seen);
    }
    assert!(lp.remove(id), "[{n}]");
}

fn refusals_are_the_same_on_every_backend(cfg: &Config) {
    let n = cfg.name;
    let path = common::temp_path(&format!("backends-refusals-{n}"));
    let file = std::fs::File::create(&path).unwrap();
    let dir = std::fs::File::open(std::env::temp_dir()).unwrap();
    let mut lp: Lp = cfg.new_loop();
    for fd in [file.as_raw_fd(), dir.as_raw_fd()] {
        assert_eq!(lp.watch(fd, Interest::READ, 0, record), Err(Error::Os(Errno::EPERM)), "[{n}]");
    }
    for fd in [-1, i32::MAX] {
        assert_eq!(lp.watch(fd, Interest::READ, 0, record), Err(Error::Os(Errno::EBADF)), "[{n}]");
        let edge = WatchOptions::new(Interest::READ).trigger(Trigger::Edge);
        assert_eq!(lp.watch_with(fd, edge, 0, record), Err(Error::Os(Errno::EBADF)), "[{n}]");
    }
    let own = lp.backend().as_raw_fd();
    assert_eq!(lp.watch(own, Interest::READ, 0, record), Err(Error::Reserved), "[{n}]");
    assert_eq!(lp.watcher_count(), 0, "[{n}]");
    drop(file);
    std::fs::remove_file(&path).unwrap();
}

type NarrowLp = Loop<Log, 4, 4>;

fn narrow_record(_lp: &mut NarrowLp, log: &mut Log, ev: WatchEvent) {
    log.seen.push((ev.id(), ev.fd(), ev.side()));
}

fn narrow_woke(_lp: &mut NarrowLp, log: &mut Log, _ev: WakeEvent) {
    log.tags.push("woke");
}

fn a_loop_wider_than_the_backends_capacity_is_refused_and_one_as_wide_fills_it(cfg: &Config) {
    let n = cfg.name;
    // W = 8 on a backend with room for 4 key slots: refused when the loop
    // is made (epoll has no such limit).
    let wide = Loop::<Log, 8, 4>::with_backend(cfg.backend_with_capacity(4)).map(drop);
    let expected = if cfg.kind == BackendKind::Epoll { Ok(()) } else { Err(Error::Capacity) };
    assert_eq!(wide, expected, "[{n}] W = 8, backend capacity 4");
    // W = capacity: every watcher fits, and the loop's own registrations
    // (the waker's doorbell) take no key slot of the backend's.
    let mut lp: NarrowLp = Loop::with_backend(cfg.backend_with_capacity(4))
        .unwrap_or_else(|e| panic!("[{n}] W = 4, backend capacity 4: {e}"));
    let pipes: Vec<_> = (0..5).map(|_| pipe()).collect();
    for (i, (r, w)) in pipes.iter().take(4).enumerate() {
        write_once(w.as_raw_fd(), b"x");
        lp.watch(r.as_raw_fd(), Interest::READ, i as u64, narrow_record).unwrap();
    }
    assert_eq!(lp.watch(pipes[4].0.as_raw_fd(), Interest::READ, 4, narrow_record), Err(Error::Capacity), "[{n}]");
    lp.on_wake(0, narrow_woke).unwrap();
    lp.waker().unwrap().signal(1).unwrap();
    let mut log = Log::default();
    let mut fds = std::collections::HashSet::new();
    for _ in 0..10 {
        lp.run_once(&mut log, PATIENCE).unwrap_or_else(|e| panic!("[{n}] run_once: {e}"));
        fds.extend(log.seen.drain(..).map(|e| e.1));
        if fds.len() == 4 && !log.tags.is_empty() {
            break;
        }
    }
    let want: std::collections::HashSet<_> = pipes[..4].iter().map(|(r, _)| r.as_raw_fd()).collect();
    assert_eq!(fds, want, "[{n}] every watcher of a full table is reported");
    assert_eq!(log.tags, ["woke"], "[{n}] the waker works on a backend filled to capacity");
}

fn a_tty_works_on_every_backend(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let (master, slave) = pty();
    let id = lp.watch(master.as_raw_fd(), Interest::READ, 0, record).unwrap();
    let mut log = Log::default();
    assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 0, "[{n}]");
    write_once(slave.as_raw_fd(), b"typed");
    assert_eq!(pass(cfg, &mut lp, &mut log, PATIENCE), 1, "[{n}] tty readable");
    assert_eq!(log.seen, [(id, master.as_raw_fd(), Side::Read)], "[{n}]");
    drain(master.as_raw_fd());
    assert_eq!(pass(cfg, &mut lp, &mut log, Some(Duration::from_millis(20))), 0, "[{n}] drained");
    assert!(lp.remove(id), "[{n}]");
}

fn hundreds_of_fds_are_all_reported(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let pipes: Vec<_> = (0..300).map(|_| pipe()).collect();
    for (r, _) in &pipes {
        lp.watch(r.as_raw_fd(), Interest::READ, 0, record).unwrap();
    }
    let mut log = Log::default();
    assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 0, "[{n}]");
    for (_, w) in &pipes {
        write_once(w.as_raw_fd(), b"x");
    }
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        pass(cfg, &mut lp, &mut log, PATIENCE);
        for (_, fd, _) in log.seen.drain(..) {
            if seen.insert(fd) {
                drain(fd);
            }
        }
        if seen.len() == pipes.len() {
            break;
        }
    }
    assert_eq!(seen.len(), pipes.len(), "[{n}]");
    assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 0, "[{n}] all drained");
}

fn timer_named<const TAG: usize>(_lp: &mut Lp, log: &mut Log, _ev: TimerEvent) {
    log.timers.push(["t0", "t1", "t2", "t3"][TAG]);
}

fn timers_fire_in_order_never_early_and_a_busy_fd_does_not_starve_them(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    let start = StdInstant::now();
    // Absolute deadlines from one reading of the clock, so a slow
    // emulator between the calls cannot reorder them.
    let base = lp.update_now().unwrap();
    lp.at(base + Duration::from_millis(30), 0, timer_named::<2>).unwrap();
    lp.at(base + Duration::from_millis(10), 0, timer_named::<0>).unwrap();
    lp.at(base + Duration::from_millis(20), 0, timer_named::<1>).unwrap();
    let mut log = Log::default();
    lp.run(&mut log).unwrap();
    let took = start.elapsed();
    assert_eq!(log.timers, ["t0", "t1", "t2"], "[{n}]");
    assert!(took >= Duration::from_millis(30), "[{n}] fired early: {took:?}");
    // A timeout with nothing to do waits that long, and no less.
    let start = StdInstant::now();
    assert_eq!(pass(cfg, &mut lp, &mut log, Some(Duration::from_millis(25))), 0, "[{n}]");
    assert!(start.elapsed() >= Duration::from_millis(25), "[{n}] {:?}", start.elapsed());
    // A timer while an fd stays ready: both keep going. Every pass reads
    // the clock after its wait and fires what is due then, so once a
    // pass's time is past the deadline the timer must have fired in it.
    let (r, w) = pipe();
    write_once(w.as_raw_fd(), b"busy");
    lp.watch(r.as_raw_fd(), Interest::READ, 0, record).unwrap();
    let start = StdInstant::now();
    // Delays count from the loop's cached time: bring it to the present.
    lp.update_now().unwrap();
    let id = lp.after(Duration::from_millis(15), 0, timer_named::<3>).unwrap();
    let deadline = lp.deadline(id).unwrap();
    while !log.timers.contains(&"t3") {
        pass(cfg, &mut lp, &mut log, PATIENCE);
        assert!(
            log.timers.contains(&"t3") || lp.now() < deadline,
            "[{n}] timer starved by a busy fd: due at {deadline:?}, the pass ran at {:?}",
            lp.now()
        );
    }
    assert!(lp.now() >= deadline, "[{n}] fired before its deadline");
    assert!(start.elapsed() >= Duration::from_millis(15), "[{n}]");
    assert!(!log.seen.is_empty(), "[{n}] the busy fd was reported too");
}

fn woke(lp: &mut Lp, log: &mut Log, _ev: WakeEvent) {
    log.tags.push("woke");
    lp.stop();
}

fn a_waker_from_another_thread_wakes_a_blocked_wait(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    lp.on_wake(0, woke).unwrap();
    let waker = lp.waker().unwrap();
    // The ringer waits until this thread sleeps in the backend's wait.
    let tid = sys::gettid();
    let t = std::thread::spawn(move || (wait_until_blocked(tid), waker.signal(1)));
    let mut log = Log::default();
    pass(cfg, &mut lp, &mut log, PATIENCE);
    assert_eq!(t.join().unwrap(), (true, Ok(())), "[{n}] (loop blocked when rung, signal)");
    assert_eq!(log.tags, ["woke"], "[{n}]");
}

fn on_usr2(_lp: &mut Lp, log: &mut Log, ev: linux_event::SignalEvent) {
    log.tags.push(if ev.signo() == sys::SIGUSR2 { "usr2" } else { "?" });
}

/// A signal arriving while the loop waits. On Linux AIO this is the case
/// that an AIO poll of the signalfd would miss.
fn a_signal_that_arrives_while_the_loop_waits_is_delivered(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    lp.signal(sys::SIGUSR2, 0, on_usr2).unwrap();
    let (pid, tid) = (sys::getpid(), sys::gettid());
    // Sent once this thread sleeps in the backend's wait.
    let t = std::thread::spawn(move || (wait_until_blocked(tid), sys::tgkill(pid, tid, sys::SIGUSR2)));
    let mut log = Log::default();
    for _ in 0..5 {
        pass(cfg, &mut lp, &mut log, PATIENCE);
        if !log.tags.is_empty() {
            break;
        }
    }
    assert_eq!(t.join().unwrap(), (true, Ok(())), "[{n}] (loop blocked when signalled, tgkill)");
    assert_eq!(log.tags, ["usr2"], "[{n}] the signal was missed");
}

fn on_exit(_lp: &mut Lp, log: &mut Log, ev: linux_event::PidEvent) {
    log.exits.push((ev.pid(), ev.status().ok().and_then(|st| st.code()), ev.data()));
}

fn a_child_exit_reaches_its_pid_watcher_on_every_backend(cfg: &Config) {
    let n = cfg.name;
    let mut lp: Lp = cfg.new_loop();
    // Exits when its stdin closes, which happens once the loop waits. The
    // loop reaps it (through its pidfd), not std.
    #[allow(clippy::zombie_processes)]
    let mut child = std::process::Command::new("sh")
        .args(["-c", "read _; exit 7"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let pid = child.id() as i32;
    lp.pid(pid, 9, on_exit).unwrap();
    let tid = sys::gettid();
    let t = std::thread::spawn(move || {
        let blocked = wait_until_blocked(tid);
        drop(stdin);
        blocked
    });
    let mut log = Log::default();
    for _ in 0..5 {
        pass(cfg, &mut lp, &mut log, PATIENCE);
        if !log.exits.is_empty() {
            break;
        }
    }
    assert!(t.join().unwrap(), "[{n}] the loop was not blocked when the child was told to exit");
    assert_eq!(log.exits, [(pid, Some(7), 9)], "[{n}]");
}

/// Every behaviour above on every backend configuration, and on Linux AIO
/// reading each completion through `io_getevents` instead of the ring it
/// shares with the kernel (`linux_aio_io_getevents::`).
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        backend_tests!($($name),*);
        backend_tests!(@on linux_aio_io_getevents = LINUX_AIO_IO_GETEVENTS; $($name),*);
    };
}

on_every_backend!(
    level_watcher_hears_every_pass_until_drained,
    write_side_and_hangups_reach_the_right_sides,
    oneshot_fires_once_and_modify_rearms_it,
    edge_watcher_hears_new_data_only,
    modify_to_other_sides_drops_what_the_old_registration_would_have_said,
    stale_keys_reach_nobody,
    closing_a_watched_fd_without_removing_its_watcher_delivers_nothing,
    refusals_are_the_same_on_every_backend,
    a_loop_wider_than_the_backends_capacity_is_refused_and_one_as_wide_fills_it,
    a_tty_works_on_every_backend,
    hundreds_of_fds_are_all_reported,
    timers_fire_in_order_never_early_and_a_busy_fd_does_not_starve_them,
    a_waker_from_another_thread_wakes_a_blocked_wait,
    a_signal_that_arrives_while_the_loop_waits_is_delivered,
    a_child_exit_reaches_its_pid_watcher_on_every_backend,
);

// ------------------------------------------------------------------ Linux AIO

fn aio_loop(config: AioConfig) -> Lp {
    Loop::with_backend(AnyBackend::from_linux_aio(LinuxAio::with_config(config).unwrap())).unwrap()
}

fn aio(lp: &Lp) -> &LinuxAio {
    lp.backend().as_linux_aio().unwrap()
}

#[test]
fn linux_aio_reads_the_shared_ring_when_its_header_checks_out() {
    run_on(LINUX_AIO, |cfg| {
        let lp: Lp = cfg.new_loop();
        assert!(aio(&lp).reads_ring(), "the ring header of this kernel should check out");
        let lp = aio_loop(AioConfig { read_ring: false, ..AioConfig::default() });
        assert!(!aio(&lp).reads_ring());
    });
}

#[test]
fn linux_aio_hands_ttys_fifos_edge_watchers_and_signalfds_to_the_inner_epoll() {
    run_on(LINUX_AIO, |cfg| {
        let mut lp: Lp = cfg.new_loop();
        let (master, slave) = pty();
        let (r, w) = pipe();
        let (er, ew) = pipe();
        let fifo_path = common::temp_path("fifo");
        let _ = std::fs::remove_file(&fifo_path);
        let c = std::ffi::CString::new(fifo_path.to_str().unwrap()).unwrap();
        // SAFETY: plain libc calls with a valid C string.
        let fifo = unsafe {
            assert_eq!(libc::mkfifo(c.as_ptr(), 0o600), 0);
            OwnedFd::from_raw_fd(libc::open(c.as_ptr(), libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC))
        };
        // SAFETY: plain libc calls building a signal set and a signalfd.
        let sigfd = unsafe {
            let mut set: libc::sigset_t = core::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGWINCH);
            OwnedFd::from_raw_fd(libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC))
        };
        // Each watcher removes itself once reported, so that every later
        // pass waits for the fds not reported yet.
        lp.watch(master.as_raw_fd(), Interest::READ, 0, record_and_remove).unwrap();
        lp.watch(fifo.as_raw_fd(), Interest::READ, 0, record_and_remove).unwrap();
        lp.watch(r.as_raw_fd(), Interest::READ, 0, record_and_remove).unwrap();
        let edge = WatchOptions::new(Interest::READ).trigger(Trigger::Edge);
        lp.watch_with(er.as_raw_fd(), edge, 0, record_and_remove).unwrap();
        lp.watch(sigfd.as_raw_fd(), Interest::READ, 0, record_and_remove).unwrap();
        let mut log = Log::default();
        // The refusal (EINVAL) comes at the first arming, in the next wait.
        assert_eq!(pass(cfg, &mut lp, &mut log, NO_WAIT), 0);
        assert!(aio(&lp).in_inner_epoll(master.as_raw_fd()), "tty");
        assert!(aio(&lp).in_inner_epoll(fifo.as_raw_fd()), "fifo opened read-write");
        assert!(aio(&lp).in_inner_epoll(er.as_raw_fd()), "edge-triggered");
        assert!(aio(&lp).in_inner_epoll(sigfd.as_raw_fd()), "signalfd");
        assert!(!aio(&lp).in_inner_epoll(r.as_raw_fd()), "a pipe is AIO-polled");
        for fd in [slave.as_raw_fd(), fifo.as_raw_fd(), w.as_raw_fd(), ew.as_raw_fd()] {
            write_once(fd, b"x");
        }
        // A pty hands written bytes to its other side from a kernel worker:
        // the master may turn readable a little after the other fds.
        let mut fds = std::collections::HashSet::new();
        for _ in 0..8 {
            pass(cfg, &mut lp, &mut log, PATIENCE);
            fds.extend(log.seen.drain(..).map(|e| e.1));
            if fds.len() == 4 {
                break;
            }
        }
        let want: std::collections::HashSet<_> =
            [master.as_raw_fd(), fifo.as_raw_fd(), r.as_raw_fd(), er.as_raw_fd()].into();
        assert_eq!(fds, want);
        std::fs::remove_file(&fifo_path).unwrap();
    });
}

#[test]
fn linux_aio_context_grows_when_more_polls_are_armed_than_it_holds() {
    run_on(LINUX_AIO, |_| {
        let mut lp = aio_loop(AioConfig { initial_events: 8, ..AioConfig::default() });
        let pipes: Vec<_> = (0..100).map(|_| pipe()).collect();
        for (r, _) in &pipes {
            lp.watch(r.as_raw_fd(), Interest::READ, 0, record).unwrap();
        }
        let mut log = Log::default();
        assert_eq!(lp.run_once(&mut log, NO_WAIT), Ok(0));
        assert!(aio(&lp).grows() >= 1);
        assert!(aio(&lp).context_events() >= 100, "{}", aio(&lp).context_events());
        assert_eq!(aio(&lp).fallback(), None);
        for (_, w) in &pipes {
            write_once(w.as_raw_fd(), b"x");
        }
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10 {
            lp.run_once(&mut log, PATIENCE).unwrap();
            for (_, fd, _) in log.seen.drain(..) {
                if seen.insert(fd) {
                    drain(fd);
                }
            }
            if seen.len() == 100 {
                break;
            }
        }
        assert_eq!(seen.len(), 100);
    });
}

#[test]
fn linux_aio_falls_back_to_epoll_as_a_whole_when_the_context_cannot_grow() {
    run_on(LINUX_AIO, |_| {
        let mut lp = aio_loop(AioConfig { initial_events: 8, max_events: 16, ..AioConfig::default() });
        let pipes: Vec<_> = (0..40).map(|_| pipe()).collect();
        let mut ids = Vec::new();
        for (r, _) in &pipes[..30] {
            ids.push(lp.watch(r.as_raw_fd(), Interest::READ, 0, record).unwrap());
        }
        let oneshot = WatchOptions::new(Interest::READ).trigger(Trigger::Oneshot);
        let os = lp.watch_with(pipes[30].0.as_raw_fd(), oneshot, 0, record).unwrap();
        let mut log = Log::default();
        assert_eq!(lp.run_once(&mut log, NO_WAIT), Ok(0));
        assert_eq!(aio(&lp).fallback(), Some(Errno::EAGAIN), "the context may not grow past max_events");
        assert!(aio(&lp).in_inner_epoll(pipes[0].0.as_raw_fd()));
        // Everything keeps working on the inner epoll: level, oneshot, changes.
        for (_, w) in &pipes[..31] {
            write_once(w.as_raw_fd(), b"x");
        }
        assert_eq!(lp.run_once(&mut log, PATIENCE), Ok(31));
        assert_eq!(lp.run_once(&mut log, NO_WAIT), Ok(30), "level again, oneshot not");
        lp.modify(os, Interest::READ).unwrap();
        assert_eq!(lp.run_once(&mut log, NO_WAIT), Ok(31));
        for id in &ids[..10] {
            assert!(lp.remove(*id));
        }
        for (r, _) in &pipes[31..] {
            lp.watch(r.as_raw_fd(), Interest::READ, 0, record).unwrap();
        }
        assert_eq!(lp.run_once(&mut log, NO_WAIT), Ok(20));
        assert_eq!(lp.backend_name(), "linux-aio");
    });
}

#[test]
fn linux_aio_cancelled_polls_complete_as_stale_and_are_dropped() {
    run_on(LINUX_AIO, |_| {
        let mut lp = aio_loop(AioConfig::default());
        let (r, w) = pipe();
        let mut log = Log::default();
        // Watch, arm, change interest (cancel + resubmit), remove (cancel),
        // many times over: every cancelled poll posts a completion that must
        // not reach the loop, and none may be lost for the live one.
        for round in 0..50 {
            let id = lp.watch(r.as_raw_fd(), Interest::READ, 0, record).unwrap();
            assert_eq!(lp.run_once(&mut log, NO_WAIT), Ok(0), "round {round}");
            lp.modify(id, Interest::READ | Interest::WRITE).unwrap();
            lp.modify(id, Interest::READ).unwrap();
            assert_eq!(lp.run_once(&mut log, NO_WAIT), Ok(0), "round {round}");
            assert!(lp.remove(id), "round {round}");
        }
        let id = lp.watch(r.as_raw_fd(), Interest::READ, 0, record).unwrap();
        write_once(w.as_raw_fd(), b"x");
        assert_eq!(lp.run_once(&mut log, PATIENCE), Ok(1));
        assert_eq!(log.seen, [(id, r.as_raw_fd(), Side::Read)]);
    });
}

// ------------------------------------------------------------------- io_uring

fn uring_loop(config: UringConfig) -> Lp {
    Loop::with_backend(AnyBackend::from_io_uring(IoUring::with_config(config).unwrap())).unwrap()
}

fn uring(lp: &Lp) -> &IoUring {
    lp.backend().as_io_uring().unwrap()
}

/// The few io_uring constants this test checks (the test does not depend
/// on linux-raw-sys).
mod linux_raw_sys_feat {
    pub const EXT_ARG: u32 = 1 << 8;
}

#[test]
fn io_uring_probes_what_it_uses() {
    run_on(IO_URING, |cfg| {
        let lp: Lp = cfg.new_loop();
        let b = uring(&lp);
        assert!(b.features() & linux_raw_sys_feat::EXT_ARG != 0);
        println!(
            "io_uring: features {:#x}, setup flags {:#x}, multishot {}",
            b.features(),
            b.setup_flags(),
            b.multishot()
        );
    });
}

#[test]
fn io_uring_cq_overflow_grows_the_ring_and_loses_nothing() {
    run_on(IO_URING, |_| {
        let mut lp = uring_loop(UringConfig { sq_entries: 4, cq_entries: 8, ..UringConfig::default() });
        assert_eq!(uring(&lp).cq_entries(), 8);
        let pipes: Vec<_> = (0..64).map(|_| pipe()).collect();
        for (r, w) in &pipes {
            write_once(w.as_raw_fd(), b"x");
            lp.watch(r.as_raw_fd(), Interest::READ, 0, record).unwrap();
        }
        let mut log = Log::default();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10 {
            lp.run_once(&mut log, PATIENCE).unwrap();
            seen.extend(log.seen.drain(..).map(|e| e.1));
            if seen.len() == pipes.len() {
                break;
            }
        }
        assert_eq!(seen.len(), pipes.len(), "completions lost to the overflow");
        assert!(uring(&lp).overflows() >= 1);
        assert!(uring(&lp).grows() >= 1 && uring(&lp).cq_entries() > 8, "{}", uring(&lp).cq_entries());
        // Level keeps reporting every fd on every pass after the growth.
        log.seen.clear();
        let mut per_pass = 0;
        for _ in 0..3 {
            per_pass = lp.run_once(&mut log, PATIENCE).unwrap();
        }
        assert_eq!(per_pass, 64);
    });
}

#[test]
fn io_uring_modify_removes_the_old_poll_and_drops_its_completion() {
    run_on(IO_URING, |_| {
        let mut lp = uring_loop(UringConfig::default());
        let (a, mut b) = socketpair();
        let mut log = Log::default();
        for round in 0..50 {
            let id = lp.watch(a.as_raw_fd(), Interest::READ, 0, record).unwrap();
            assert_eq!(lp.run_once(&mut log, NO_WAIT), Ok(0), "round {round}");
            lp.modify(id, Interest::READ | Interest::WRITE).unwrap();
            lp.modify(id, Interest::READ).unwrap();
            lp.set_trigger(id, Trigger::Edge).unwrap();
            lp.set_trigger(id, Trigger::Level).unwrap();
            assert_eq!(lp.run_once(&mut log, NO_WAIT), Ok(0), "round {round}: {:?}", log.seen);
            assert!(lp.remove(id), "round {round}");
        }
        let id = lp.watch(a.as_raw_fd(), Interest::READ, 0, record).unwrap();
        b.write_all(b"x").unwrap();
        assert_eq!(lp.run_once(&mut log, PATIENCE), Ok(1));
        assert_eq!(log.seen, [(id, a.as_raw_fd(), Side::Read)]);
    });
}

#[test]
fn io_uring_without_multishot_reports_edge_like_level() {
    run_on(IO_URING, |_| {
        let mut lp = uring_loop(UringConfig { multishot: false, ..UringConfig::default() });
        assert!(!uring(&lp).multishot());
        let (r, w) = pipe();
        let edge = WatchOptions::new(Interest::READ).trigger(Trigger::Edge);
        lp.watch_with(r.as_raw_fd(), edge, 0, record).unwrap();
        write_once(w.as_raw_fd(), b"x");
        let mut log = Log::default();
        assert_eq!(lp.run_once(&mut log, PATIENCE), Ok(1));
        assert_eq!(lp.run_once(&mut log, NO_WAIT), Ok(1), "documented: re-armed one-shot polls report like level");
    });
}
