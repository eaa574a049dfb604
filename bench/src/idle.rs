//! Workload 6's idle loop: one fd that is always readable and one timer an
//! hour away, `passes` passes. Run in a child process under `strace -c -f`
//! (see `tools.rs`); the difference between two pass counts is the cost of
//! a pass.

use crate::ffi;
use crate::workload::Impl;
use linux_event::{Interest, Loop, sys};
use std::time::Duration;

/// Runs `passes` idle passes on `imp`.
pub fn run(imp: Impl, passes: i64) -> Result<(), String> {
    // SAFETY: the C idle loops take no pointers.
    let rc = match imp {
        Impl::Ours => return ours(passes).map_err(|e| format!("linux-event: {e:?}")),
        Impl::Mio => return mio_idle(passes).map_err(|e| format!("mio: {e}")),
        Impl::Libev => unsafe { ffi::bev_idle(passes) },
        Impl::Libevent => unsafe { ffi::bevent_idle(passes) },
        Impl::Raw => unsafe { ffi::braw_idle(passes) },
    };
    if rc == 0 { Ok(()) } else { Err(format!("{} idle loop failed", imp.name())) }
}

fn ours(passes: i64) -> Result<(), linux_event::Error> {
    let mut lp: Loop<i64> = Loop::new()?;
    let (r, w) = sys::pipe()?;
    sys::write(w.as_raw_fd(), b"x")?;
    lp.after(Duration::from_secs(3600), 0, |_, _, _| {})?;
    lp.watch(r.as_raw_fd(), Interest::READ, 0, |_, seen, _| *seen += 1)?;
    let mut seen = 0;
    for _ in 0..passes {
        lp.run_once(&mut seen, None)?;
    }
    assert_eq!(seen, passes);
    Ok(())
}

fn mio_idle(passes: i64) -> std::io::Result<()> {
    use mio::unix::SourceFd;
    let os = |e: linux_event::Errno| std::io::Error::from_raw_os_error(i32::from(e.raw()));
    let (r, w) = sys::pipe().map_err(os)?;
    sys::write(w.as_raw_fd(), b"x").map_err(os)?;
    let mut poll = mio::Poll::new()?;
    let mut events = mio::Events::with_capacity(64);
    // mio is edge-triggered only: a pipe that is never drained is reported
    // once, and a wait for the hour-away deadline would then block. So each
    // pass reads the clock for the deadline, as a mio user would, and polls
    // with a zero timeout: still exactly one wait per pass.
    poll.registry().register(&mut SourceFd(&r.as_raw_fd()), mio::Token(1), mio::Interest::READABLE)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(3600);
    for _ in 0..passes {
        let remaining = deadline.saturating_duration_since(std::time::Instant::now());
        poll.poll(&mut events, Some(remaining.min(Duration::ZERO)))?;
    }
    Ok(())
}
