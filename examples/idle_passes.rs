//! Shows what one pass costs in syscalls: a loop with a far-away timer and
//! an fd that is always readable runs N passes. Under `strace -f` the passes
//! sit between `close(-100)` and `close(-101)` markers, and each one is a
//! single wait (`epoll_pwait` in the default timerfd mode, `epoll_pwait2`
//! in pwait2 mode).
//!
//! `strace -f cargo run --release --example idle_passes -- 1000 [timerfd|pwait2]`

use linux_event::backend::{Epoll, EpollTimer};
use linux_event::{Interest, Loop, sys};
use std::time::Duration;

fn main() -> Result<(), linux_event::Error> {
    let passes: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let timer = match std::env::args().nth(2).as_deref() {
        Some("pwait2") => EpollTimer::WaitTimeout,
        _ => EpollTimer::Timerfd,
    };
    let mut lp: Loop<usize> = Loop::with_backend(Epoll::with_timer(timer)?)?;
    let (r, w) = sys::pipe()?;
    sys::write(w.as_raw_fd(), b"x")?;
    lp.after(Duration::from_secs(3600), 0, |_, _, _| {})?;
    lp.watch(r.as_raw_fd(), Interest::READ, 0, |_, seen, _| *seen += 1)?;
    // Warm up: the first pass arms the timer once.
    let mut seen = 0;
    lp.run_once(&mut seen, None)?;
    let _ = sys::close(-100);
    for _ in 0..passes {
        lp.run_once(&mut seen, None)?;
    }
    let _ = sys::close(-101);
    println!("{} passes, {} callbacks, backend {} ({:?})", passes, seen - 1, lp.backend_name(), lp.backend().timer());
    Ok(())
}
