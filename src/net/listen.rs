//! Listen: server-side sockets. Binds and listens with options, accepts
//! in batches with a per-pass budget, and pauses on a timer when the
//! process is out of fds. Registers only watchers and timers through the
//! public loop API; never reaches into the loop.
//!
//! **Out of fds (EMFILE, ENFILE, ENOBUFS, ENOMEM): accept is paused on a
//! timer.** The listener's watcher is disabled and a one-shot timer
//! ([`ListenOptions::fd_pause`], 50 ms by default) turns it back on; the
//! program may resume sooner with [`Listeners::resume`] (when it closes a
//! connection, say). Waiting clients stay in the kernel's backlog and are
//! served once fds are free. The other classic answer, a reserve fd
//! (close it, accept, close the accepted socket, reopen the reserve),
//! keeps the loop from spinning too, but it does so by hanging up on the
//! client; pausing turns nobody away that the backlog can hold.

use super::addr::SocketAddr;
use crate::backend::Backend;
use crate::error::Error;
use crate::sys::{self, Errno, OwnedFd, RawFd};
use crate::{Interest, Loop, LoopTypes, TimerEvent, TimerId, WatchEvent, WatchId};
use core::time::Duration;

/// Names one listening socket of a [`Listeners`]. Goes stale when it is
/// closed; a stale id never reaches a later listener in the same slot.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ListenId {
    slot: u32,
    generation: u32,
}

impl ListenId {
    fn key(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.slot)
    }
    fn from_key(key: u64) -> ListenId {
        ListenId { slot: key as u32, generation: (key >> 32) as u32 }
    }
}

/// How to listen.
///
/// ```
/// use linux_event::net::ListenOptions;
/// let opts = ListenOptions::new().reuse_port(true).backlog(4096).accept_budget(32);
/// # let _ = opts;
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ListenOptions {
    backlog: u32,
    reuse_addr: bool,
    reuse_port: bool,
    v6_only: Option<bool>,
    budget: u32,
    pause: Duration,
}

impl Default for ListenOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ListenOptions {
    /// Backlog 1024, `SO_REUSEADDR` on, `SO_REUSEPORT` off, 64 accepts
    /// per pass, a 50 ms pause when out of fds.
    pub const fn new() -> Self {
        ListenOptions {
            backlog: 1024,
            reuse_addr: true,
            reuse_port: false,
            v6_only: None,
            budget: 64,
            pause: Duration::from_millis(50),
        }
    }
    /// Connections the kernel queues before accept (capped by
    /// `net.core.somaxconn`).
    pub const fn backlog(mut self, n: u32) -> Self {
        self.backlog = n;
        self
    }
    /// `SO_REUSEADDR` (TCP only; on by default): rebind a port whose old
    /// connections linger in TIME_WAIT.
    pub const fn reuse_addr(mut self, on: bool) -> Self {
        self.reuse_addr = on;
        self
    }
    /// `SO_REUSEPORT` (TCP only): several sockets bind the same port and
    /// the kernel spreads connections over them. One loop per thread, each
    /// with its own listener on the port, is how a server grows past one
    /// core.
    pub const fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }
    /// `IPV6_V6ONLY` for an IPv6 listener (unset: the system's default).
    pub const fn v6_only(mut self, on: bool) -> Self {
        self.v6_only = Some(on);
        self
    }
    /// At most this many accepts per listener per pass (at least 1); the
    /// rest wait for the next pass, so one busy listener cannot starve
    /// other fds.
    pub const fn accept_budget(mut self, n: u32) -> Self {
        self.budget = if n == 0 { 1 } else { n };
        self
    }
    /// How long accept pauses when the process is out of fds.
    pub const fn fd_pause(mut self, d: Duration) -> Self {
        self.pause = d;
        self
    }
}

/// What the accept callback is told: a new connection, or why there was
/// none (the errors that pause accepting, and the ones that mean the
/// listener itself is broken, after which it stays disabled until
/// [`Listeners::resume`]).
#[derive(Debug)]
pub struct AcceptEvent {
    id: ListenId,
    data: u64,
    result: Result<OwnedFd, Errno>,
    peer: Option<SocketAddr>,
}

impl AcceptEvent {
    /// The listener.
    pub fn id(&self) -> ListenId {
        self.id
    }
    /// The listener's user data.
    pub fn data(&self) -> u64 {
        self.data
    }
    /// The peer's address (`None` for an unnamed Unix peer, or an error).
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }
    /// The connected socket (non-blocking, close-on-exec), or the errno:
    /// `EMFILE`/`ENFILE`/`ENOBUFS`/`ENOMEM` (accept is paused, see the
    /// module docs) or a fault of the listener itself (it is disabled).
    pub fn into_result(self) -> Result<OwnedFd, Errno> {
        self.result
    }
}

/// An accept callback.
pub type AcceptFn<L> = fn(&mut L, &mut <L as LoopTypes>::Context, AcceptEvent);

/// Counters of one listener.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ListenStats {
    /// Connections handed to the callback.
    pub accepted: u64,
    /// Times accept paused for lack of fds.
    pub pauses: u64,
    /// Connections that failed before accept finished (`ECONNABORTED`,
    /// `EPROTO`, `EPERM` from a firewall...): skipped.
    pub aborted: u64,
    /// Passes that ended with the budget spent and clients still waiting.
    pub budget_exhausted: u64,
}

struct Slot<L: LoopTypes> {
    fd: OwnedFd,
    watch: Option<WatchId>,
    pause: Option<TimerId>,
    options: ListenOptions,
    data: u64,
    callback: AcceptFn<L>,
    stats: ListenStats,
}

/// Up to `N` listening sockets, plugged into a loop of type `L`.
///
/// A companion: the program owns it (usually as a field of its context
/// `C`) and implements `AsMut<Listeners<L, N>>` for `C`. Each
/// [`listen`](Self::listen) registers one level-triggered watcher; a
/// pause adds a one-shot timer. [`close`](Self::close) removes both.
///
/// ```
/// use linux_event::Loop;
/// use linux_event::net::{Listeners, ListenOptions};
///
/// type L = Loop<App, 16, 16>;
/// struct App { listen: Listeners<L, 2>, accepted: u32 }
/// impl AsMut<Listeners<L, 2>> for App {
///     fn as_mut(&mut self) -> &mut Listeners<L, 2> { &mut self.listen }
/// }
///
/// let mut lp: L = Loop::new()?;
/// let mut app = App { listen: Listeners::new(), accepted: 0 };
/// let addr = "127.0.0.1:0".parse().unwrap();
/// let id = app.listen.listen(&mut lp, &addr, ListenOptions::new(), 0, |lp, app, ev| {
///     if ev.into_result().is_ok() { app.accepted += 1; lp.stop(); }
/// })?;
/// let at = app.listen.local_addr(id).unwrap();
/// let _client = std::net::TcpStream::connect(at.to_string()).unwrap();
/// lp.run(&mut app)?;
/// assert_eq!(app.accepted, 1);
/// # Ok::<(), linux_event::Error>(())
/// ```
pub struct Listeners<L: LoopTypes, const N: usize> {
    slots: [Option<Slot<L>>; N],
    generations: [u32; N],
}

impl<L: LoopTypes, const N: usize> Default for Listeners<L, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<L: LoopTypes, const N: usize> Listeners<L, N> {
    /// An empty set.
    pub const fn new() -> Self {
        Listeners { slots: [const { None }; N], generations: [0; N] }
    }

    fn slot(&self, id: ListenId) -> Option<&Slot<L>> {
        let i = id.slot as usize;
        if i < N && self.generations[i] == id.generation { self.slots[i].as_ref() } else { None }
    }

    fn slot_mut(&mut self, id: ListenId) -> Option<&mut Slot<L>> {
        let i = id.slot as usize;
        if i < N && self.generations[i] == id.generation { self.slots[i].as_mut() } else { None }
    }

    /// Whether the id names an open listener.
    pub fn is_open(&self, id: ListenId) -> bool {
        self.slot(id).is_some()
    }

    /// The listening socket's fd.
    pub fn fd(&self, id: ListenId) -> Option<RawFd> {
        self.slot(id).map(|s| s.fd.as_raw_fd())
    }

    /// The address it listens on (with the port the kernel chose for 0).
    pub fn local_addr(&self, id: ListenId) -> Option<SocketAddr> {
        let fd = self.slot(id)?.fd.as_raw_fd();
        SocketAddr::from_sys(&sys::local_addr(fd).ok()?)
    }

    /// Its counters.
    pub fn stats(&self, id: ListenId) -> Option<ListenStats> {
        self.slot(id).map(|s| s.stats)
    }

    /// Whether accepting is paused (out of fds, or the listener failed).
    pub fn is_paused(&self, id: ListenId) -> bool {
        self.slot(id).is_some_and(|s| s.pause.is_some() || s.watch.is_none())
    }

    /// Number of open listeners.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes one connection for `id`, or says why not.
    fn accept_one(&mut self, id: ListenId) -> Step<L> {
        let Some(s) = self.slot_mut(id) else { return Step::Gone };
        loop {
            return match sys::accept(s.fd.as_raw_fd()) {
                Ok((fd, peer)) => {
                    s.stats.accepted += 1;
                    let ev = AcceptEvent { id, data: s.data, result: Ok(fd), peer: SocketAddr::from_sys(&peer) };
                    Step::Deliver(s.callback, ev)
                }
                Err(Errno::EAGAIN) => Step::Empty,
                // The connection died in the queue, or a firewall refused it:
                // nothing for the program, try the next one.
                Err(Errno::ECONNABORTED | Errno::EPROTO | Errno::EPERM | Errno::ENETUNREACH | Errno::EHOSTUNREACH) => {
                    s.stats.aborted += 1;
                    continue;
                }
                Err(e @ (Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)) => {
                    s.stats.pauses += 1;
                    Step::Pause(s.callback, AcceptEvent { id, data: s.data, result: Err(e), peer: None }, true)
                }
                Err(e) => Step::Pause(s.callback, AcceptEvent { id, data: s.data, result: Err(e), peer: None }, false),
            };
        }
    }
}

/// What one accept attempt came to.
enum Step<L: LoopTypes> {
    Deliver(AcceptFn<L>, AcceptEvent),
    Empty,
    /// Stop accepting: out of fds (`true`: resume on the timer) or broken.
    Pause(AcceptFn<L>, AcceptEvent, bool),
    Gone,
}

impl<C, const W: usize, const T: usize, B: Backend, const N: usize> Listeners<Loop<C, W, T, B>, N>
where
    C: AsMut<Listeners<Loop<C, W, T, B>, N>>,
{
    /// Binds a socket to `addr`, listens as `options` say and watches it;
    /// `on_accept` runs once per connection (or per pausing error) with
    /// `data` in its [`AcceptEvent`]. A Unix path must not exist yet
    /// (`EADDRINUSE`; remove a stale socket file first).
    ///
    /// Errors: `Capacity` when all `N` slots are used (or the loop's
    /// watcher table is full); `Os(errno)` from socket, setsockopt, bind
    /// (`EADDRINUSE`, `EACCES` for a port below 1024...) or listen. On
    /// error nothing is left open.
    pub fn listen(
        &mut self,
        lp: &mut Loop<C, W, T, B>,
        addr: &SocketAddr,
        options: ListenOptions,
        data: u64,
        on_accept: AcceptFn<Loop<C, W, T, B>>,
    ) -> Result<ListenId, Error> {
        if self.free_slot().is_none() {
            return Err(Error::Capacity);
        }
        let fd = sys::stream_socket(addr.family())?;
        let raw = fd.as_raw_fd();
        if !matches!(addr, SocketAddr::Unix(_)) {
            if options.reuse_addr {
                sys::set_reuse_addr(raw, true)?;
            }
            if options.reuse_port {
                sys::set_reuse_port(raw, true)?;
            }
        }
        if let (SocketAddr::V6(_), Some(on)) = (addr, options.v6_only) {
            sys::set_v6_only(raw, on)?;
        }
        sys::bind(raw, &addr.to_sys())?;
        sys::listen(raw, options.backlog)?;
        self.adopt(lp, fd, options, data, on_accept)
    }

    /// Takes over a socket that is already bound and listening (inherited
    /// from a supervisor, or passed over a Unix socket): it is made
    /// non-blocking and watched as `listen` would. The backlog and socket
    /// options of `options` are not applied; its budget and pause are.
    pub fn adopt(
        &mut self,
        lp: &mut Loop<C, W, T, B>,
        fd: OwnedFd,
        options: ListenOptions,
        data: u64,
        on_accept: AcceptFn<Loop<C, W, T, B>>,
    ) -> Result<ListenId, Error> {
        let Some(i) = self.free_slot() else { return Err(Error::Capacity) };
        let id = ListenId { slot: i as u32, generation: self.generations[i].wrapping_add(1) };
        let watch = lp.watch(fd.as_raw_fd(), Interest::READ, id.key(), on_ready::<C, W, T, B, N>)?;
        self.generations[i] = id.generation;
        self.slots[i] = Some(Slot {
            fd,
            watch: Some(watch),
            pause: None,
            options,
            data,
            callback: on_accept,
            stats: ListenStats::default(),
        });
        Ok(id)
    }

    /// Stops listening: removes the watcher and any pause timer and closes
    /// the socket (clients still in its backlog are reset by the kernel).
    /// Returns whether the id was open.
    pub fn close(&mut self, lp: &mut Loop<C, W, T, B>, id: ListenId) -> bool {
        let Some(s) = self.slot(id) else { return false };
        if let Some(w) = s.watch {
            lp.remove(w);
        }
        if let Some(t) = s.pause {
            lp.remove(t);
        }
        self.slots[id.slot as usize] = None;
        true
    }

    /// Resumes a paused listener now (accepting again at the next pass).
    /// Returns whether it was paused.
    pub fn resume(&mut self, lp: &mut Loop<C, W, T, B>, id: ListenId) -> Result<bool, Error> {
        let Some(s) = self.slot_mut(id) else { return Err(Error::NotFound) };
        let was_paused = s.pause.is_some() || s.watch.is_none();
        if let Some(t) = s.pause.take() {
            lp.remove(t);
        }
        match s.watch {
            Some(w) => lp.enable(w, Interest::READ)?,
            None => s.watch = Some(lp.watch(s.fd.as_raw_fd(), Interest::READ, id.key(), on_ready::<C, W, T, B, N>)?),
        }
        Ok(was_paused)
    }

    /// Resumes every paused listener (see [`resume`](Self::resume)); how
    /// many were paused.
    pub fn resume_all(&mut self, lp: &mut Loop<C, W, T, B>) -> usize {
        let mut n = 0;
        for i in 0..N {
            let id = ListenId { slot: i as u32, generation: self.generations[i] };
            if self.is_paused(id) && self.resume(lp, id).unwrap_or(false) {
                n += 1;
            }
        }
        n
    }

    fn free_slot(&self) -> Option<usize> {
        self.slots.iter().position(Option::is_none)
    }

    /// Turns the watcher off; with `timed`, arms the pause timer.
    fn pause(&mut self, lp: &mut Loop<C, W, T, B>, id: ListenId, timed: bool) {
        let Some(s) = self.slot_mut(id) else { return };
        if let Some(w) = s.watch
            && lp.disable(w, Interest::READ).is_err()
        {
            // Cannot even disable: take it out for good (resume re-adds).
            lp.remove(w);
            s.watch = None;
        }
        if timed && s.pause.is_none() {
            // A full timer table leaves the listener disabled until `resume`.
            s.pause = lp.after(s.options.pause, id.key(), on_pause_over::<C, W, T, B, N>).ok();
        }
    }
}

/// The listener's watcher: accept up to the budget, one callback each.
fn on_ready<C, const W: usize, const T: usize, B: Backend, const N: usize>(
    lp: &mut Loop<C, W, T, B>,
    ctx: &mut C,
    ev: WatchEvent,
) where
    C: AsMut<Listeners<Loop<C, W, T, B>, N>>,
{
    let id = ListenId::from_key(ev.data());
    let Some(budget) = ctx.as_mut().slot(id).map(|s| s.options.budget) else { return };
    for _ in 0..budget {
        match ctx.as_mut().accept_one(id) {
            Step::Deliver(callback, event) => callback(lp, ctx, event),
            Step::Empty | Step::Gone => return,
            Step::Pause(callback, event, timed) => {
                ctx.as_mut().pause(lp, id, timed);
                callback(lp, ctx, event);
                return;
            }
        }
    }
    // Level-triggered: what is left in the backlog is reported next pass.
    if let Some(s) = ctx.as_mut().slot_mut(id) {
        s.stats.budget_exhausted += 1;
    }
}

/// The pause is over: accept again.
fn on_pause_over<C, const W: usize, const T: usize, B: Backend, const N: usize>(
    lp: &mut Loop<C, W, T, B>,
    ctx: &mut C,
    ev: TimerEvent,
) where
    C: AsMut<Listeners<Loop<C, W, T, B>, N>>,
{
    let id = ListenId::from_key(ev.data());
    let listeners = ctx.as_mut();
    if let Some(s) = listeners.slot_mut(id)
        && s.pause == Some(ev.id())
    {
        s.pause = None;
        if let Some(w) = s.watch
            && lp.enable(w, Interest::READ).is_err()
        {
            // Refused by the kernel: paused until `resume` adds it anew.
            lp.remove(w);
            s.watch = None;
        }
    }
}
