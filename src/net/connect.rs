//! Connect: client-side non-blocking connects with a timeout. Addresses
//! only, no DNS. Each connect in flight is one watcher (writable) and one
//! timer (the timeout), registered through the public loop API; the
//! callback always runs from the loop, never from inside `connect`.

use super::addr::SocketAddr;
use crate::backend::Backend;
use crate::error::Error;
use crate::sys::{self, Errno, OwnedFd};
use crate::{Interest, Loop, LoopTypes, TimerEvent, TimerId, WatchEvent, WatchId};
use core::time::Duration;

/// Names one connect in flight. Goes stale when its callback has run or it
/// was cancelled.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConnectId {
    slot: u32,
    generation: u32,
}

impl ConnectId {
    fn key(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.slot)
    }
    fn from_key(key: u64) -> ConnectId {
        ConnectId { slot: key as u32, generation: (key >> 32) as u32 }
    }
}

/// What the connect callback is told.
#[derive(Debug)]
pub struct ConnectEvent {
    id: ConnectId,
    data: u64,
    result: Result<OwnedFd, Errno>,
}

impl ConnectEvent {
    /// The connect this is for.
    pub fn id(&self) -> ConnectId {
        self.id
    }
    /// Its user data.
    pub fn data(&self) -> u64 {
        self.data
    }
    /// The connected socket (non-blocking, close-on-exec), or why not:
    /// `ECONNREFUSED` (nobody listens), `ETIMEDOUT` (the timeout passed, or
    /// the kernel gave up), `EHOSTUNREACH`, `ENETUNREACH`, `ENOENT` (no
    /// such Unix socket), `EAGAIN` (a Unix listener's backlog is full)...
    pub fn into_result(self) -> Result<OwnedFd, Errno> {
        self.result
    }
}

/// A connect callback.
pub type ConnectFn<L> = fn(&mut L, &mut <L as LoopTypes>::Context, ConnectEvent);

struct Pending<L: LoopTypes> {
    fd: OwnedFd,
    watch: Option<WatchId>,
    timer: Option<TimerId>,
    /// Known before the loop ran (connect finished or failed at once):
    /// delivered by the zero-delay timer.
    settled: Option<Result<(), Errno>>,
    data: u64,
    callback: ConnectFn<L>,
}

/// Up to `N` connects in flight for a loop of type `L`.
///
/// A companion: the program owns it (usually in its context `C`, which
/// implements `AsMut<Connector<L, N>>`).
///
/// ```
/// use core::time::Duration;
/// use linux_event::Loop;
/// use linux_event::net::Connector;
///
/// type L = Loop<App, 16, 16>;
/// struct App { connect: Connector<L, 4>, result: Option<linux_event::Errno> }
/// impl AsMut<Connector<L, 4>> for App {
///     fn as_mut(&mut self) -> &mut Connector<L, 4> { &mut self.connect }
/// }
///
/// // A port nobody listens on: bind one, then close it.
/// let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
/// let mut lp: L = Loop::new()?;
/// let mut app = App { connect: Connector::new(), result: None };
/// let addr = format!("127.0.0.1:{port}").parse().unwrap();
/// app.connect.connect(&mut lp, &addr, Some(Duration::from_secs(5)), 0, |lp, app, ev| {
///     app.result = ev.into_result().err();
///     lp.stop();
/// })?;
/// lp.run(&mut app)?;
/// assert_eq!(app.result, Some(linux_event::Errno::ECONNREFUSED));
/// # Ok::<(), linux_event::Error>(())
/// ```
pub struct Connector<L: LoopTypes, const N: usize> {
    slots: [Option<Pending<L>>; N],
    generations: [u32; N],
}

impl<L: LoopTypes, const N: usize> Default for Connector<L, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<L: LoopTypes, const N: usize> Connector<L, N> {
    /// No connects in flight.
    pub const fn new() -> Self {
        Connector { slots: [const { None }; N], generations: [0; N] }
    }

    fn pending(&mut self, id: ConnectId) -> Option<&mut Pending<L>> {
        let i = id.slot as usize;
        if i < N && self.generations[i] == id.generation { self.slots[i].as_mut() } else { None }
    }

    /// Whether the connect is still in flight.
    pub fn is_pending(&self, id: ConnectId) -> bool {
        let i = id.slot as usize;
        i < N && self.generations[i] == id.generation && self.slots[i].is_some()
    }

    /// Connects in flight.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Whether none is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ends `id`: takes its registrations' ids and the result to deliver.
    fn finish(&mut self, id: ConnectId, outcome: Result<(), Errno>) -> Option<Finished<L>> {
        self.pending(id)?;
        let p = self.slots[id.slot as usize].take()?;
        let result = outcome.map(|()| p.fd);
        Some(Finished {
            watch: p.watch,
            timer: p.timer,
            callback: p.callback,
            event: ConnectEvent { id, data: p.data, result },
        })
    }
}

struct Finished<L: LoopTypes> {
    watch: Option<WatchId>,
    timer: Option<TimerId>,
    callback: ConnectFn<L>,
    event: ConnectEvent,
}

impl<C, const W: usize, const T: usize, B: Backend, const N: usize> Connector<Loop<C, W, T, B>, N>
where
    C: AsMut<Connector<Loop<C, W, T, B>, N>>,
{
    /// Starts connecting to `addr`; `callback` runs once, from the loop,
    /// with the connected socket or the errno (`timeout` passed:
    /// `ETIMEDOUT`; `None` leaves it to the kernel, which gives up after
    /// about two minutes for TCP).
    ///
    /// Errors (nothing started, no callback): `Capacity` when `N` connects
    /// are in flight or a loop table is full; `Os` from `socket` (`EMFILE`,
    /// `EAFNOSUPPORT`).
    pub fn connect(
        &mut self,
        lp: &mut Loop<C, W, T, B>,
        addr: &SocketAddr,
        timeout: Option<Duration>,
        data: u64,
        callback: ConnectFn<Loop<C, W, T, B>>,
    ) -> Result<ConnectId, Error> {
        let Some(i) = self.slots.iter().position(Option::is_none) else { return Err(Error::Capacity) };
        let id = ConnectId { slot: i as u32, generation: self.generations[i].wrapping_add(1) };
        let fd = sys::stream_socket(addr.family())?;
        let (watch, timer, settled) = match sys::connect(fd.as_raw_fd(), &addr.to_sys()) {
            Err(Errno::EINPROGRESS) => {
                let watch = lp.watch(fd.as_raw_fd(), Interest::WRITE, id.key(), on_writable::<C, W, T, B, N>)?;
                let timer = match timeout {
                    Some(d) => match lp.after(d, id.key(), on_timer::<C, W, T, B, N>) {
                        Ok(t) => Some(t),
                        Err(e) => {
                            lp.remove(watch);
                            return Err(e);
                        }
                    },
                    None => None,
                };
                (Some(watch), timer, None)
            }
            // Done or failed already (Unix sockets, mostly): report it from
            // the loop, at the next pass.
            settled => (None, Some(lp.after(Duration::ZERO, id.key(), on_timer::<C, W, T, B, N>)?), Some(settled)),
        };
        self.generations[i] = id.generation;
        self.slots[i] = Some(Pending { fd, watch, timer, settled, data, callback });
        Ok(id)
    }

    /// Gives up on a connect: its socket is closed and its callback never
    /// runs. Returns whether it was in flight.
    pub fn cancel(&mut self, lp: &mut Loop<C, W, T, B>, id: ConnectId) -> bool {
        match self.finish(id, Err(Errno::ECANCELED)) {
            Some(f) => {
                remove_registrations(lp, f.watch, f.timer);
                true
            }
            None => false,
        }
    }
}

fn remove_registrations<C, const W: usize, const T: usize, B: Backend>(
    lp: &mut Loop<C, W, T, B>,
    watch: Option<WatchId>,
    timer: Option<TimerId>,
) {
    if let Some(w) = watch {
        lp.remove(w);
    }
    if let Some(t) = timer {
        lp.remove(t);
    }
}

/// Writable (or an error): the connect is over; `SO_ERROR` says how.
fn on_writable<C, const W: usize, const T: usize, B: Backend, const N: usize>(
    lp: &mut Loop<C, W, T, B>,
    ctx: &mut C,
    ev: WatchEvent,
) where
    C: AsMut<Connector<Loop<C, W, T, B>, N>>,
{
    let id = ConnectId::from_key(ev.data());
    let outcome = match sys::socket_error(ev.fd()) {
        Ok(None) => Ok(()),
        Ok(Some(e)) | Err(e) => Err(e),
    };
    let Some(f) = ctx.as_mut().finish(id, outcome) else { return };
    remove_registrations(lp, f.watch, f.timer);
    (f.callback)(lp, ctx, f.event);
}

/// The timeout passed, or a result known at `connect` is due.
fn on_timer<C, const W: usize, const T: usize, B: Backend, const N: usize>(
    lp: &mut Loop<C, W, T, B>,
    ctx: &mut C,
    ev: TimerEvent,
) where
    C: AsMut<Connector<Loop<C, W, T, B>, N>>,
{
    let id = ConnectId::from_key(ev.data());
    let connector = ctx.as_mut();
    let Some(p) = connector.pending(id) else { return };
    let outcome = p.settled.unwrap_or(Err(Errno::ETIMEDOUT));
    let Some(mut f) = connector.finish(id, outcome) else { return };
    f.timer = None; // a one-shot timer that fired is gone already
    remove_registrations(lp, f.watch, f.timer);
    (f.callback)(lp, ctx, f.event);
}
