//! Plugging a `Files` value into this crate's loop (a watcher on its
//! eventfd and a prepare callback, both ordinary registrations), and
//! [`Standalone`] for programs that drive it from another loop.

use super::Files;
use crate::backend::Backend;
use crate::error::Error;
use crate::event_loop::{Loop, LoopTypes, PhaseEvent, TimerEvent, WatchEvent, WatchOptions};
use crate::interest::{Interest, Trigger};
use core::marker::PhantomData;
use core::time::Duration;

/// A stand-in loop type for a [`Files`] value driven without this crate's
/// loop (through [`Files::poll_fd`] and [`Files::poll`]): its callbacks get
/// `&mut Standalone<C>`, which carries nothing, and the context `C`.
///
/// ```
/// use linux_event::files::{Engine, Files, Standalone};
/// struct App { files: Files<Standalone<App>, 8>, done: bool }
/// impl AsMut<Files<Standalone<App>, 8>> for App {
///     fn as_mut(&mut self) -> &mut Files<Standalone<App>, 8> { &mut self.files }
/// }
/// let mut app = App { files: Files::new(Engine::Workers)?, done: false };
/// app.files.mkdir(b"/", 0o755, 0, |_, app, ev| {
///     assert_eq!(ev.errno(), Some(linux_event::Errno::EEXIST));
///     app.done = true;
/// })?;
/// let mut none = Standalone::new();
/// while !app.done {
///     // A real program waits for `poll_fd()` to become readable here.
///     Files::poll(&mut none, &mut app);
/// }
/// # Ok::<(), linux_event::Error>(())
/// ```
pub struct Standalone<C>(PhantomData<fn(&mut C)>);

impl<C> Standalone<C> {
    /// The stand-in.
    pub const fn new() -> Self {
        Standalone(PhantomData)
    }
}

impl<C> Default for Standalone<C> {
    fn default() -> Self {
        Standalone::new()
    }
}

impl<C> LoopTypes for Standalone<C> {
    type Context = C;
}

impl<C, const W: usize, const T: usize, B: Backend, const N: usize, const P: usize> Files<Loop<C, W, T, B>, N, P>
where
    C: AsMut<Self>,
{
    /// Plugs into `lp`: an edge-triggered watcher on [`poll_fd`](Self::poll_fd)
    /// delivers completions, and a prepare callback submits the requests
    /// made during a pass with one system call, before the loop sleeps.
    /// The context `C` reaches this value through `AsMut`.
    ///
    /// While attached, the loop's `run` does not end on its own (the
    /// watcher keeps it alive): stop it, or [`detach`](Self::detach).
    /// `AlreadyWatched` if attached already; a loop error (a full table)
    /// otherwise, with nothing registered.
    pub fn attach(&mut self, lp: &mut Loop<C, W, T, B>) -> Result<(), Error> {
        if self.attached.is_some() {
            return Err(Error::AlreadyWatched);
        }
        let options = WatchOptions::new(Interest::READ).trigger(Trigger::Edge);
        let watch = lp.watch_with(self.poll_fd(), options, 0, on_ready::<C, W, T, B, N, P>)?;
        let prepare = match lp.prepare(0, on_prepare::<C, W, T, B, N, P>) {
            Ok(p) => p,
            Err(e) => {
                lp.remove(watch);
                return Err(e);
            }
        };
        self.attached = Some((watch, prepare));
        self.auto_submit = false;
        Ok(())
    }

    /// Unplugs from `lp` (the loop it was attached to): removes both
    /// registrations and submits each request as it is made again. Returns
    /// whether it was attached.
    pub fn detach(&mut self, lp: &mut Loop<C, W, T, B>) -> bool {
        let Some((watch, prepare)) = self.attached.take() else { return false };
        lp.remove(watch);
        lp.remove(prepare);
        if let Some(due) = self.due.take() {
            lp.remove(due);
            // What it would have delivered: the eventfd tells whoever polls now.
            self.ring_self();
        }
        self.set_auto_submit(true);
        true
    }

    /// Whether [`attach`](Self::attach)ed.
    pub fn is_attached(&self) -> bool {
        self.attached.is_some()
    }
}

/// The watcher: completions are waiting.
fn on_ready<C, const W: usize, const T: usize, B: Backend, const N: usize, const P: usize>(
    lp: &mut Loop<C, W, T, B>,
    ctx: &mut C,
    _ev: WatchEvent,
) where
    C: AsMut<Files<Loop<C, W, T, B>, N, P>>,
{
    // Edge-triggered: the eventfd is never read (its count only grows).
    Files::dispatch(lp, ctx, false);
}

/// The prepare callback: the pass's requests go to the engine. Requests
/// that finished right here are delivered by a zero-delay timer in this
/// very pass (the loop then does not block in its wait).
fn on_prepare<C, const W: usize, const T: usize, B: Backend, const N: usize, const P: usize>(
    lp: &mut Loop<C, W, T, B>,
    ctx: &mut C,
    _ev: PhaseEvent,
) where
    C: AsMut<Files<Loop<C, W, T, B>, N, P>>,
{
    let files = ctx.as_mut();
    if let Ok((_, true)) = files.submit_batch()
        && files.due.is_none()
    {
        match lp.after(Duration::ZERO, 0, on_due::<C, W, T, B, N, P>) {
            Ok(id) => ctx.as_mut().due = Some(id),
            // No room for a timer: the eventfd does it, one write.
            Err(_) => ctx.as_mut().ring_self(),
        }
    }
}

/// The zero-delay timer: delivers what finished during the prepare callback.
fn on_due<C, const W: usize, const T: usize, B: Backend, const N: usize, const P: usize>(
    lp: &mut Loop<C, W, T, B>,
    ctx: &mut C,
    _ev: TimerEvent,
) where
    C: AsMut<Files<Loop<C, W, T, B>, N, P>>,
{
    ctx.as_mut().due = None;
    Files::dispatch(lp, ctx, false);
}
