//! libvirt's event contract from Rust: a handle on a pipe, a timeout, and a
//! second thread that uses the contract while the loop is blocked, the way
//! libvirt's threads do.
//!
//! ```sh
//! cargo run --example virt
//! ```

use linux_event::virt::{FreeEvent, HandleEvent, HandleEvents, TimeoutEvent, Virt, VirtTable};
use linux_event::{Loop, sys};

type MyLoop = Loop<App>;

struct App {
    virt: Virt<MyLoop, 16, 16>,
    lines: Vec<String>,
    ticks: u32,
    freed: u32,
}

impl AsMut<Virt<MyLoop, 16, 16>> for App {
    fn as_mut(&mut self) -> &mut Virt<MyLoop, 16, 16> {
        &mut self.virt
    }
}

/// Shared with the other thread: fixed size, no allocation.
static TABLE: VirtTable<MyLoop, 16, 16> = VirtTable::new();

fn on_readable(_lp: &mut MyLoop, app: &mut App, ev: HandleEvent) {
    let mut buf = [0u8; 256];
    match sys::read(ev.fd(), &mut buf) {
        Ok(0) | Err(_) => {
            // End of input (HANGUP arrives unasked): the handle removes
            // itself; its free callback runs after this pass.
            println!("handle {}: {:?}, removing it", ev.id().get(), ev.events());
            app.virt.remove_handle(ev.id()).unwrap();
        }
        Ok(n) => app.lines.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
    }
}

fn on_tick(lp: &mut MyLoop, app: &mut App, ev: TimeoutEvent) {
    app.ticks += 1;
    println!("timeout {} fired (tick {})", ev.id().get(), app.ticks);
    if app.ticks == 3 {
        app.virt.remove_timeout(ev.id()).unwrap();
        lp.stop();
    }
}

fn on_free(_lp: &mut MyLoop, app: &mut App, ev: FreeEvent) {
    app.freed += 1;
    println!("freed {:?} (data {})", ev.released(), ev.data());
}

fn main() -> Result<(), linux_event::Error> {
    let mut lp: MyLoop = Loop::new()?;
    let mut virt = Virt::new(&TABLE);
    virt.attach(&mut lp)?;
    let mut app = App { virt, lines: Vec::new(), ticks: 0, freed: 0 };

    let (r, w) = sys::pipe()?;
    app.virt.add_handle(r.as_raw_fd(), HandleEvents::READABLE, 1, on_readable, Some(on_free))?;
    // Disabled (-1) until the other thread enables it.
    let tick = app.virt.add_timeout(-1, 2, on_tick, Some(on_free))?;

    // Another thread writes, closes its end, and enables the timeout (every
    // 20 ms): each table call wakes the blocked loop.
    let writer = std::thread::spawn(move || {
        sys::write(w.as_raw_fd(), b"hello from another thread").unwrap();
        drop(w);
        TABLE.update_timeout(tick, 20).unwrap();
    });
    lp.run(&mut app)?;
    writer.join().unwrap();
    // The timeout removed in the last pass is freed at its end; detach runs
    // anything still due.
    Virt::detach(&mut lp, &mut app);
    println!("read {:?}; {} ticks; {} free callbacks", app.lines, app.ticks, app.freed);
    assert_eq!((app.ticks, app.freed), (3, 2));
    Ok(())
}
