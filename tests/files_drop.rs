//! Dropping a `Files` value, or the loop it is attached to, with requests
//! in flight: no crash, the process is back to one thread, and every fd the
//! test did not open itself is closed. No test harness: the harness's own
//! threads would make "one thread" meaningless (`harness = false`).

use linux_event::files::{Config, Engine, FileEvent, Files, OpenOptions};
use linux_event::{Errno, Error, Loop, sys};
use std::time::{Duration, Instant};

type Lp = Loop<Ctx>;
struct Ctx {
    files: Files<Lp, 32>,
    delivered: usize,
}
impl AsMut<Files<Lp, 32>> for Ctx {
    fn as_mut(&mut self) -> &mut Files<Lp, 32> {
        &mut self.files
    }
}

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn in_ppoll() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.flatten()
                .filter(|t| {
                    let s = std::fs::read_to_string(t.path().join("syscall")).unwrap_or_default();
                    let nr = s.split_whitespace().next().and_then(|n| n.parse::<i64>().ok());
                    // Under qemu-user /proc shows the host's call (x86_64's ppoll: 271).
                    nr == Some(libc::SYS_ppoll) || (cfg!(not(target_arch = "x86_64")) && nr == Some(271))
                })
                .count()
        })
        .unwrap_or(0)
}

fn until(what: &str, ok: impl Fn() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < give_up, "never: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn leak(n: usize) -> &'static mut [u8] {
    Box::leak(vec![0u8; n].into_boxed_slice())
}

fn counted(_: &mut Lp, c: &mut Ctx, _: FileEvent) {
    c.delivered += 1;
}

/// Requests of every kind, many never to complete (reads of empty pipes),
/// some completed but not delivered (opens whose fds nobody takes).
fn load(engine: Engine, attach_and_drop_loop_first: bool, threads: usize) {
    let fds_before = count("/proc/self/fd");
    let pipes: Vec<_> = (0..6).map(|_| sys::pipe().unwrap()).collect();
    let mut ctx = Ctx { files: Files::with_config(Config::new(engine).max_parallel(4)).unwrap(), delivered: 0 };
    let mut lp = Lp::new().unwrap();
    if attach_and_drop_loop_first {
        ctx.files.attach(&mut lp).unwrap();
    }
    for (r, _) in &pipes {
        ctx.files.read(r.as_raw_fd(), Files::<Lp, 32>::CURRENT_POSITION, leak(16), 16, 0, counted).unwrap();
    }
    for _ in 0..4 {
        ctx.files.open(b"/proc/self/stat", &OpenOptions::read_only(), 0, counted).unwrap();
        ctx.files.stat(b"/", 0, counted).unwrap();
    }
    ctx.files.submit().unwrap();
    if engine == Engine::Workers {
        // Four workers wait in ppoll on four pipes; the other reads queue.
        until("four workers in ppoll", || in_ppoll() == 4);
        assert_eq!(ctx.files.worker_threads(), 4);
    }
    assert_eq!(ctx.files.nreqs(), 14);
    let lp = if attach_and_drop_loop_first {
        drop(lp);
        None
    } else {
        Some(lp)
    };
    drop(ctx);
    drop(lp);
    if engine == Engine::Workers {
        assert_eq!(count("/proc/self/task"), threads, "every worker was joined by the drop");
    } else {
        // io_uring's kernel workers exit once the ring is gone (the kernel
        // tears the ring down after close, in the background).
        until("io_uring's kernel workers to exit", || count("/proc/self/task") == threads);
    }
    drop(pipes);
    assert_eq!(count("/proc/self/fd"), fds_before, "every fd closed (the opens' too)");
}

fn main() {
    // qemu-user runs a thread of its own (its RCU thread) in every guest.
    let threads = count("/proc/self/task");
    assert!(threads == 1 || cfg!(not(target_arch = "x86_64")), "no other thread at the start: {threads}");
    let (mut passed, mut failed) = (0, 0);
    let uring = match Files::<Lp, 1>::new(Engine::IoUring) {
        Ok(_) => true,
        Err(Error::Os(e @ (Errno::ENOSYS | Errno::EPERM | Errno::EOPNOTSUPP))) => {
            let required =
                std::env::var("LINUX_EVENT_REQUIRE").is_ok_and(|l| l.split(',').any(|w| w == "all" || w == "io_uring"));
            assert!(!required, "io_uring required but refused: {e}");
            println!("NOTE: [io_uring] not offered here: {e}; not run");
            false
        }
        Err(e) => panic!("{e}"),
    };
    // Closing a ring interrupts this thread's next blocking wait (see
    // tests/common); nothing here blocks in one.
    let mut cases: Vec<(&str, Engine, bool)> = vec![
        ("workers: drop the value", Engine::Workers, false),
        ("workers: drop the loop, then the value", Engine::Workers, true),
    ];
    if uring {
        cases.push(("io_uring: drop the value", Engine::IoUring, false));
        cases.push(("io_uring: drop the loop, then the value", Engine::IoUring, true));
    }
    for (name, engine, loop_first) in cases {
        match std::panic::catch_unwind(|| load(engine, loop_first, threads)) {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
