//! libvirt's event-loop contract on the loop: handles (fd watches with
//! READABLE/WRITABLE/ERROR/HANGUP events) and timeouts (intervals in
//! milliseconds, 0 = every pass, -1 = disabled), added, updated and removed
//! from any thread, with free callbacks run later from a clean stack.
//!
//! Two parts. [`VirtTable`] is the shared, fixed-size table of handles and
//! timeouts behind a small futex lock: any thread calls its six methods,
//! which change the table and wake the loop. [`Virt`] is the companion the
//! loop's context owns: [`attach`](Virt::attach) registers a prepare
//! callback (which applies table changes to the loop's watchers and timers
//! before the loop sleeps: one watcher per fd, its interest the union of
//! the fd's handles), a check callback (free callbacks, after dispatch) and
//! one loop timer per timeout slot. Neither ever allocates, and neither
//! reaches into the loop's private state: everything goes through the
//! loop's public API.
//!
//! # Example
//!
//! ```
//! use linux_event::Loop;
//! use linux_event::virt::{HandleEvent, HandleEvents, TimeoutEvent, Virt, VirtTable};
//!
//! type MyLoop = Loop<App>;
//! struct App { virt: Virt<MyLoop, 8, 8>, reads: u32, ticks: u32 }
//! impl AsMut<Virt<MyLoop, 8, 8>> for App {
//!     fn as_mut(&mut self) -> &mut Virt<MyLoop, 8, 8> { &mut self.virt }
//! }
//!
//! // The table is shared with other threads: it lives in a static.
//! static TABLE: VirtTable<MyLoop, 8, 8> = VirtTable::new();
//!
//! let (r, w) = linux_event::sys::pipe()?;
//! let mut lp: MyLoop = Loop::new()?;
//! let mut virt = Virt::new(&TABLE);
//! virt.attach(&mut lp)?;
//! let mut app = App { virt, reads: 0, ticks: 0 };
//!
//! fn on_read(lp: &mut MyLoop, app: &mut App, ev: HandleEvent) {
//!     let mut buf = [0u8; 8];
//!     let _ = linux_event::sys::read(ev.fd(), &mut buf);
//!     app.reads += 1;
//!     // Removal is safe inside the handle's own callback.
//!     app.virt.remove_handle(ev.id()).unwrap();
//! }
//! fn on_tick(lp: &mut MyLoop, app: &mut App, ev: TimeoutEvent) {
//!     app.ticks += 1;
//!     if app.ticks == 3 { app.virt.remove_timeout(ev.id()).unwrap(); lp.stop(); }
//! }
//! app.virt.add_handle(r.as_raw_fd(), HandleEvents::READABLE, 0, on_read, None)?;
//! app.virt.add_timeout(1, 0, on_tick, None)?; // every millisecond
//! linux_event::sys::write(w.as_raw_fd(), b"x")?;
//! lp.run(&mut app)?;
//! assert_eq!((app.reads, app.ticks), (1, 3));
//! # Ok::<(), linux_event::Error>(())
//! ```

mod companion;
mod events;
mod table;

pub use companion::Virt;
pub use events::{
    FreeEvent, FreeFn, HandleEvent, HandleEvents, HandleFn, HandleId, Released, TimeoutEvent, TimeoutFn, TimeoutId,
};
pub use table::{LoopThread, VirtTable};
