//! A short tour of the loop: a socket pair, one-shot and periodic timers,
//! and a waker signalled from another thread. Exits by itself.
//!
//! Run it with `cargo run --example tour`. `LINUX_EVENT_BACKEND=epoll`,
//! `linux-aio` or `io_uring` picks the backend (unset: `auto`); the first
//! line names the one in use, the second (if any) why `auto` fell back.

use linux_event::backend::{AnyBackend, BackendKind};
use linux_event::{Interest, Side, sys};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

type Loop<C> = linux_event::Loop<C, 256, 256, AnyBackend>;

#[derive(Default)]
struct Tour {
    started: Option<linux_event::Instant>,
    ticks: u32,
    bytes: usize,
    wakes: u64,
    /// The writing end, kept open until the tour closes it.
    writer: Option<UnixStream>,
}

impl Tour {
    fn ms(&self, lp: &Loop<Tour>) -> u128 {
        self.started.map_or(0, |t| lp.now().saturating_duration_since(t).as_millis())
    }
}

fn main() -> Result<(), linux_event::Error> {
    let kind = match std::env::var("LINUX_EVENT_BACKEND") {
        Ok(name) if !name.is_empty() => BackendKind::from_name(&name).unwrap_or_else(|| {
            eprintln!("LINUX_EVENT_BACKEND={name:?}: expected auto, epoll, linux-aio or io_uring");
            std::process::exit(2)
        }),
        _ => BackendKind::Auto,
    };
    let mut lp: Loop<Tour> = Loop::with_backend(AnyBackend::new(kind)?)?;
    println!("backend: {}", lp.backend_name());
    if let Some((tried, why)) = lp.backend().fallback() {
        println!("         ({tried} was refused by the kernel: {why})");
    }

    let (reader, writer) = UnixStream::pair().expect("socketpair");
    reader.set_nonblocking(true).expect("nonblocking");
    let mut tour = Tour { started: Some(lp.now()), writer: Some(writer), ..Tour::default() };

    // Read whatever arrives; when the peer hangs up, stop watching.
    lp.watch(reader.as_raw_fd(), Interest::READ, 0, |lp, tour, ev| {
        let mut buf = [0u8; 64];
        match sys::read(ev.fd(), &mut buf) {
            Ok(0) => {
                println!("{:4} ms  fd {}: peer hung up, unwatching", tour.ms(lp), ev.fd());
                lp.remove(ev.id());
            }
            Ok(n) => {
                tour.bytes += n;
                let text = String::from_utf8_lossy(&buf[..n]);
                println!("{:4} ms  fd {}: read {n} bytes {text:?} ({:?} side)", tour.ms(lp), ev.fd(), ev.side());
            }
            Err(e) => println!("{:4} ms  fd {}: {e}", tour.ms(lp), ev.fd()),
        }
        debug_assert_eq!(ev.side(), Side::Read);
    })?;

    // A periodic timer that writes into the pair on each tick.
    lp.every(Duration::from_millis(100), 0, |lp, tour, ev| {
        tour.ticks += 1;
        println!("{:4} ms  tick {} (next at +100 ms, phase kept)", tour.ms(lp), tour.ticks);
        if let Some(w) = &tour.writer {
            let _ = sys::write(w.as_raw_fd(), format!("tick {}", tour.ticks).as_bytes());
        }
        if tour.ticks == 5 {
            println!("{:4} ms  five ticks: cancelling the periodic timer, closing the writer", tour.ms(lp));
            lp.remove(ev.id());
            tour.writer = None;
        }
    })?;

    // A one-shot timer, and one that re-arms itself once.
    lp.after(Duration::from_millis(250), 0, |lp, tour, _| {
        println!("{:4} ms  one-shot timer at 250 ms", tour.ms(lp));
    })?;
    lp.after(Duration::from_millis(50), 0, |lp, tour, ev| {
        let again = tour.ms(lp) < 100;
        println!("{:4} ms  self-re-arming timer{}", tour.ms(lp), if again { ", again in 300 ms" } else { "" });
        if again {
            let _ = lp.rearm(ev.id(), Duration::from_millis(300));
        }
    })?;

    // Another thread wakes the loop; the wake callback sees coalesced counts.
    let waker = lp.waker()?;
    lp.on_wake(0, |lp, tour, ev| {
        let count = ev.count();
        tour.wakes += count;
        println!("{:4} ms  woken by another thread (count {count}, total {})", tour.ms(lp), tour.wakes);
        if tour.wakes >= 6 {
            println!("{:4} ms  six wake-ups: stopping", tour.ms(lp));
            lp.stop();
        }
    })?;
    let thread = std::thread::spawn(move || {
        for i in 0..3 {
            std::thread::sleep(Duration::from_millis(if i == 0 { 620 } else { 80 }));
            // Two signals at once coalesce into one wake-up with count 2.
            waker.signal(1).expect("signal");
            waker.signal(1).expect("signal");
        }
    });

    lp.run(&mut tour)?;
    thread.join().expect("waker thread");
    println!(
        "done after {} ms: {} ticks, {} bytes read, {} wake-ups, {} watchers and {} timers left",
        tour.ms(&lp),
        tour.ticks,
        tour.bytes,
        tour.wakes,
        lp.watcher_count(),
        lp.timer_count()
    );
    Ok(())
}
