//! Starts a child, forwards SIGINT/SIGTERM to it, restarts it once when it
//! fails, and reaps any other child that exits. Prints what happens and
//! exits with the final child's status.
//!
//! `cargo run --example supervise` (press Ctrl-C to see the forwarding).
//! `LINUX_EVENT_BACKEND=epoll|linux-aio|io_uring` picks the backend.

use linux_event::PidEvent;
use linux_event::backend::{AnyBackend, BackendKind};
use linux_event::process::Spawn;
use linux_event::sys::{self, ExitStatus, SigSet};

type Loop<C> = linux_event::Loop<C, 256, 256, AnyBackend>;

#[derive(Default)]
struct Supervisor {
    child: i32,
    restarts: u32,
    last: Option<ExitStatus>,
}

const SCRIPT: &std::ffi::CStr = c"echo \"  child $$: working\"; sleep 0.3; (sleep 0.1 &); exit 3";

fn start(lp: &mut Loop<Supervisor>, sup: &mut Supervisor) -> Result<(), linux_event::Error> {
    let child = Spawn::new(c"sh").args(&[c"sh", c"-c", SCRIPT]).spawn()?;
    println!("started child {}", child.pid);
    sup.child = child.pid;
    lp.pid(child, 0, on_exit)?;
    Ok(())
}

fn on_exit(lp: &mut Loop<Supervisor>, sup: &mut Supervisor, ev: PidEvent) {
    println!("child {} ended: {:?}", ev.pid(), ev.status());
    sup.last = ev.status().ok();
    if sup.restarts == 0 && ev.status() != Ok(ExitStatus::Exited(0)) {
        sup.restarts += 1;
        println!("restarting it once");
        if let Err(e) = start(lp, sup) {
            println!("restart failed: {e}");
            lp.stop();
        }
    } else {
        lp.stop();
    }
}

fn main() -> Result<(), linux_event::Error> {
    // Block the forwarded signals before any thread starts, so that no
    // other thread can take them.
    sys::sigprocmask(sys::MaskHow::Block, SigSet::empty().with(sys::SIGINT).with(sys::SIGTERM))?;
    let kind = match std::env::var("LINUX_EVENT_BACKEND") {
        Ok(name) if !name.is_empty() => BackendKind::from_name(&name).unwrap_or_else(|| {
            eprintln!("LINUX_EVENT_BACKEND={name:?}: expected auto, epoll, linux-aio or io_uring");
            std::process::exit(2)
        }),
        _ => BackendKind::Auto,
    };
    let mut lp: Loop<Supervisor> = Loop::with_backend(AnyBackend::new(kind)?)?;
    println!("backend: {}, children via {:?}", lp.backend_name(), lp.child_mode());
    for signo in [sys::SIGINT, sys::SIGTERM] {
        lp.signal(signo, 0, |_, sup, ev| {
            println!(
                "got {} x{}: forwarding to {}",
                sys::signal_name(ev.signo()).unwrap_or("?"),
                ev.count(),
                sup.child
            );
            let _ = sys::kill(sup.child, ev.signo());
        })?;
    }
    // Grandchildren orphaned to us (if we are a subreaper or PID 1) are reaped here.
    lp.reaper(0, |_, _, ev| println!("reaped {}: {:?}", ev.pid(), ev.status()))?;
    let mut sup = Supervisor::default();
    start(&mut lp, &mut sup)?;
    lp.run(&mut sup)?;
    let code = sup.last.map_or(1, ExitStatus::shell_code);
    println!("done after {} restart(s), exit code {code}", sup.restarts);
    std::process::exit(code);
}
