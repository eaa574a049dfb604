//! `LinuxAio`: readiness through Linux AIO's `IOCB_CMD_POLL` (Linux 4.18).
//!
//! The explanation lives on [`LinuxAio`] (this module is private).

use super::slots::{Slots, State, poll_mask, ready_of};
use super::kernel::Kernel;
use super::sys_objects::sys_objects;
use super::{EVENT_BATCH, Epoll, EpollTimer, ReadyEvent, relative_timeout};
use crate::interest::{Interest, Trigger};
use crate::sys::aio::{Context, IoEvent, Iocbs};
use crate::sys::fd_kind::{FdKind, fd_kind, is_signalfd};
use crate::sys::{Errno, OwnedFd, RawFd, clock, eventfd};
use crate::time::Instant;
use linux_raw_sys::general as k;

/// How a [`LinuxAio`] backend is sized and behaves.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct AioConfig {
    /// Key slots (watchers the loop can register): `1..u32::MAX / 4`.
    pub capacity: u32,
    /// Events the AIO context is first set up for (it grows on demand).
    pub initial_events: u32,
    /// The context never grows beyond this many events; needing more falls
    /// back to epoll as a whole, as reaching the system's `aio-max-nr` does.
    pub max_events: u32,
    /// Read completions straight from the shared ring when its header
    /// checks out (`true`), or always with `io_getevents`.
    pub read_ring: bool,
}

impl Default for AioConfig {
    fn default() -> Self {
        AioConfig { capacity: LinuxAio::DEFAULT_CAPACITY, initial_events: 64, max_events: 1 << 16, read_ring: true }
    }
}

/// The key of the completion eventfd in the inner epoll: a slot the loop
/// never uses (below its reserved three).
const RESFD_KEY: u64 = crate::table::Key::BACKEND_WAKE.to_u64();

/// `LinuxAio`: readiness through Linux AIO's `IOCB_CMD_POLL` (Linux 4.18),
/// after libev's linuxaio backend.
///
/// # How it works
///
/// Every registration is a one-shot poll request: an iocb in a table at a
/// stable address (one per key slot; `io_cancel` finds a request by that
/// address). A poll that completed is re-armed at the start of the next
/// wait, all of them in one `io_submit`, after the callbacks ran: a
/// level-triggered fd that is still ready completes again inside that very
/// `io_submit`. A oneshot registration is not re-armed until `modify`.
/// The iocb's `aio_data` is `generation << 32 | slot`, the generation
/// bumped at every arming, so a completion of a cancelled or replaced
/// request is recognised and dropped.
///
/// Completions are read from the ring the kernel shares with user space
/// (no syscall) when its header checks out: `AIO_RING_MAGIC`, no
/// incompatible features, the header size this code knows; the tail is
/// loaded with Acquire, the head stored with Release. Otherwise, and to
/// block, `io_getevents`. One syscall per busy pass (the `io_submit` of the
/// re-arms), one per idle pass (`io_getevents`), as with epoll.
///
/// # The inner epoll
///
/// Some fds are handed to an inner epoll instead, which then gets all their
/// events exactly as the epoll backend would report them:
///
/// - fds the kernel refuses to AIO-poll with `EINVAL` (ttys, a FIFO opened
///   read-write: files that poll on two wait queues);
/// - edge-triggered registrations: a one-shot poll cannot express "only new
///   readiness", and re-arming would report like level;
/// - signalfds: a signalfd's poll looks at the pending signals of the task
///   that polls, and AIO re-polls from a kernel worker when a wake-up
///   carries no event mask, which a signalfd's never does: a signal
///   arriving while the loop waits would be missed.
///
/// Departure from libev, for the last reason: the inner epoll is not
/// AIO-polled through its own fd (epoll re-polls its ready items from the
/// same kernel worker, and drops a signalfd that looks idle there). While
/// it holds any fd, the backend waits in `epoll_pwait` on it instead, and
/// every completed iocb also signals an eventfd in that epoll
/// (`IOCB_FLAG_RESFD`), so AIO completions still wake it. Such passes cost
/// one `epoll_pwait` more when busy.
///
/// # Limits
///
/// - Capacity: key slots `0..capacity` (a constructor argument, default
///   1024); a key beyond it is `ENOSPC`. Give the loop `W <= capacity`.
/// - The AIO context starts small and grows (destroyed, set up twice as
///   large, every armed poll re-armed) when the requests in flight would
///   not fit; `EAGAIN` from `io_submit` retries at the next pass, which then
///   does not block. When growing fails (`aio-max-nr` reached: `EAGAIN`) the
///   whole backend falls back to its inner epoll for good;
///   [`LinuxAio::fallback`] says why.
/// - Regular files and directories are refused with `EPERM`, as epoll does
///   (AIO would report them always ready); other files without a poll
///   method (`/dev/null`) are reported always ready.
/// - An in-flight poll holds a reference to its file: unwatch before close,
///   or the file stays open (and can still report) until the next re-arm.
///
/// # Deadlines
///
/// `io_getevents`' relative timeout, from the clock read right before the
/// call; while the inner epoll is the waiter, its timerfd (as the epoll
/// backend). No syscall is made for a deadline that is already due.
pub struct LinuxAio {
    // Field order is drop order: the context (io_destroy cancels and waits
    // for every request) goes before the iocb table it points into.
    ctx: Option<Context>,
    iocbs: Iocbs,
    slots: Slots,
    inner: Epoll,
    /// Signalled by the kernel for every completed iocb; in `inner` while
    /// `in_epoll > 0`.
    resfd: OwnedFd,
    resfd_registered: bool,
    /// Slots handed to the inner epoll.
    in_epoll: u32,
    /// Requests submitted whose completion has not been read (cancelled
    /// ones included).
    in_flight: u32,
    /// `io_submit` said `EAGAIN`: queued polls wait, the next wait must not block.
    retry: bool,
    eagain_passes: u32,
    config: AioConfig,
    fallback: Option<Errno>,
    grows: u32,
}

impl LinuxAio {
    /// Key slots when not told otherwise.
    pub const DEFAULT_CAPACITY: u32 = 1024;

    /// A backend with the default [`AioConfig`]. `ENOSYS` where the kernel
    /// has no AIO (qemu-user, `CONFIG_AIO=n`), `EAGAIN` when `aio-max-nr`
    /// is reached, `EPERM` under some seccomp profiles.
    pub fn new() -> Result<LinuxAio, Errno> {
        LinuxAio::with_config(AioConfig::default())
    }

    /// A backend with room for `capacity` key slots.
    pub fn with_capacity(capacity: u32) -> Result<LinuxAio, Errno> {
        LinuxAio::with_config(AioConfig { capacity, ..AioConfig::default() })
    }

    /// A backend as `config` says. `EINVAL` for a capacity of 0 or beyond
    /// `u32::MAX / 4`, or an `initial_events` of 0.
    pub fn with_config(config: AioConfig) -> Result<LinuxAio, Errno> {
        if config.initial_events == 0 {
            return Err(Errno::EINVAL);
        }
        let slots = Slots::new(config.capacity, 0)?;
        let mut ctx = Context::setup(config.initial_events.min(config.max_events.max(1)))?;
        if !config.read_ring {
            ctx.disable_ring();
        }
        Ok(LinuxAio {
            ctx: Some(ctx),
            iocbs: Iocbs::new(slots.len())?,
            slots,
            inner: Epoll::with_timer(EpollTimer::Timerfd)?,
            resfd: eventfd::create()?,
            resfd_registered: false,
            in_epoll: 0,
            in_flight: 0,
            retry: false,
            eagain_passes: 0,
            config,
            fallback: None,
            grows: 0,
        })
    }

    /// Key slots this backend has room for.
    pub fn capacity(&self) -> u32 {
        self.slots.capacity()
    }

    /// The inner epoll's fd (the backend's own fd: watching it is refused).
    pub fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }

    /// Whether completions are read from the shared ring (its header checked
    /// out) rather than with `io_getevents`. `false` after a fallback.
    pub fn reads_ring(&self) -> bool {
        self.ctx.as_ref().is_some_and(Context::reads_ring)
    }

    /// Events the AIO context is currently set up for (0 after a fallback).
    pub fn context_events(&self) -> u32 {
        self.ctx.as_ref().map_or(0, Context::size)
    }

    /// How many times the context grew.
    pub fn grows(&self) -> u32 {
        self.grows
    }

    /// Why the backend fell back to epoll as a whole, if it did (the errno
    /// of the failed `io_setup` when the context had to grow).
    pub fn fallback(&self) -> Option<Errno> {
        self.fallback
    }

    /// Whether `fd` is currently handed to the inner epoll (refused by AIO,
    /// edge-triggered, a signalfd, or everything after a fallback).
    pub fn in_inner_epoll(&self, fd: RawFd) -> bool {
        if self.ctx.is_none() {
            return true;
        }
        self.slots.index_of_fd(fd).and_then(|i| self.slots.get(i)).is_some_and(|s| s.state == State::Epoll)
    }

    fn data(generation: u32, i: usize) -> u64 {
        (u64::from(generation) << 32) | i as u64
    }

    /// Whether `fd` must live in the inner epoll whatever its trigger: a
    /// signalfd (the loop's own, in the reserved signal slot, or one of the
    /// user's; when `/proc` cannot tell, any anonymous-inode fd is assumed
    /// to be one).
    fn needs_epoll(&self, i: usize, fd: RawFd, kind: FdKind) -> bool {
        i == (self.slots.capacity() + 2) as usize || (kind == FdKind::Anon && is_signalfd(fd) != Some(false))
    }

    fn epoll_members(&mut self, delta: i32) -> Result<(), Errno> {
        self.in_epoll = self.in_epoll.saturating_add_signed(delta);
        let want = self.in_epoll > 0 && self.ctx.is_some();
        if want && !self.resfd_registered {
            // Edge-triggered: every completion is a new edge, so the eventfd
            // never needs reading.
            self.inner.register(self.resfd.as_raw_fd(), RESFD_KEY, Interest::READ, Trigger::Edge)?;
            self.resfd_registered = true;
        } else if !want && self.resfd_registered {
            self.inner.deregister(self.resfd.as_raw_fd(), RESFD_KEY)?;
            self.resfd_registered = false;
        }
        Ok(())
    }

    /// Takes slot `i` out of the kernel (cancelling its poll or removing it
    /// from the inner epoll) and unbinds its fd.
    fn release(&mut self, i: usize) {
        let Some(s) = self.slots.get(i).copied() else { return };
        match s.state {
            State::InFlight => {
                if let Some(ctx) = &self.ctx {
                    // Found or already completed: either way its completion
                    // arrives (or arrived) with a generation that is stale
                    // once the state changes; other errors cannot happen for
                    // a table address.
                    let _ = ctx.cancel(&self.iocbs, i);
                }
            }
            State::Epoll => {
                let _ = self.inner.deregister(s.fd, s.key);
                let _ = self.epoll_members(-1);
            }
            _ => {}
        }
        if s.fd >= 0 && self.slots.index_of_fd(s.fd) == Some(i) {
            self.slots.unbind_fd(s.fd);
        }
        if let Some(m) = self.slots.get_mut(i) {
            m.state = State::Free;
            m.fd = -1;
        }
    }

    /// Register and modify: brings slot `i` to `fd`/`key`/`interest`/`trigger`.
    /// The fallible step (adding to the inner epoll) comes first, so a
    /// refusal leaves the old registration as it was.
    fn apply(&mut self, i: usize, fd: RawFd, key: u64, interest: Interest, trigger: Trigger) -> Result<(), Errno> {
        // fstat on every call: a bad or closed fd is EBADF and a regular
        // file EPERM, as epoll says, also for a modify (a replacement).
        let kind = fd_kind(fd)?;
        if kind == FdKind::NotPollable {
            return Err(Errno::EPERM);
        }
        // Whether it must live in the inner epoll is decided once per fd.
        let known = self.slots.get(i).filter(|s| s.state != State::Free && s.fd == fd);
        let sticky = match known {
            Some(s) => s.refused,
            None => self.needs_epoll(i, fd, kind),
        };
        // One slot per fd and one fd per slot, whatever the caller did before.
        if let Some(j) = self.slots.index_of_fd(fd)
            && j != i
        {
            self.release(j);
        }
        let old = self.slots.get(i).copied().ok_or(Errno::ENOSPC)?;
        if old.state != State::Free && old.fd != fd {
            self.release(i);
        }
        let old = self.slots.get(i).copied().ok_or(Errno::ENOSPC)?;
        let to_epoll = sticky || trigger == Trigger::Edge;
        if to_epoll {
            if old.state == State::Epoll {
                self.inner.modify(fd, key, interest, trigger)?;
            } else {
                self.inner.register(fd, key, interest, trigger)?;
                if old.state == State::InFlight
                    && let Some(ctx) = &self.ctx
                {
                    let _ = ctx.cancel(&self.iocbs, i);
                }
                self.epoll_members(1)?;
            }
        } else {
            match old.state {
                State::Epoll => {
                    let _ = self.inner.deregister(fd, key);
                    self.epoll_members(-1)?;
                }
                // An armed poll for the same events stays armed: it reports
                // as soon as the fd is ready, which is all a re-arm would do.
                State::InFlight if old.interest() == interest => {}
                State::InFlight => {
                    if let Some(ctx) = &self.ctx {
                        let _ = ctx.cancel(&self.iocbs, i);
                    }
                }
                _ => {}
            }
        }
        let keep_armed = !to_epoll && old.state == State::InFlight && old.interest() == interest;
        let s = self.slots.get_mut(i).ok_or(Errno::ENOSPC)?;
        s.set(fd, key, interest, trigger);
        s.refused = sticky;
        s.state = if to_epoll {
            State::Epoll
        } else if keep_armed {
            State::InFlight
        } else {
            State::Queued
        };
        if s.state == State::Queued {
            self.slots.enqueue(i);
        }
        self.slots.bind_fd(fd, i);
        Ok(())
    }

    /// Arms every queued slot in one `io_submit` (more only when the kernel
    /// refuses one of them).
    fn flush(&mut self) -> Result<(), Errno> {
        loop {
            let Some(ctx) = &self.ctx else { return Ok(()) };
            if !self.slots.has_queued() {
                self.retry = false;
                return Ok(());
            }
            let n = self.slots.take_queue();
            let needed = self.in_flight.saturating_add(n as u32);
            if needed > ctx.size() {
                self.slots.requeue_batch(0, n);
                self.grow(needed)?;
                continue;
            }
            let resfd = Some(self.resfd.as_raw_fd());
            for q in 0..n {
                let i = self.slots.batch(n)[q] as usize;
                let Some(s) = self.slots.get_mut(i) else { continue };
                s.generation = s.generation.wrapping_add(1);
                s.state = State::InFlight;
                let (fd, events, data) = (s.fd, poll_mask(s.interest()), Self::data(s.generation, i));
                self.iocbs.set_poll(i, fd, events, data, resfd);
            }
            let mut pos = 0;
            let mut eagain = false;
            while pos < n {
                let Some(ctx) = &self.ctx else { break };
                match ctx.submit(&mut self.iocbs, &self.slots.batch(n)[pos..]) {
                    Ok(taken) => {
                        self.in_flight += taken as u32;
                        pos += taken;
                    }
                    Err(Errno::EAGAIN) => {
                        for q in pos..n {
                            let i = self.slots.batch(n)[q] as usize;
                            if let Some(s) = self.slots.get_mut(i) {
                                s.state = State::Queued;
                            }
                        }
                        self.slots.requeue_batch(pos, n);
                        eagain = true;
                        break;
                    }
                    Err(e) => {
                        let i = self.slots.batch(n)[pos] as usize;
                        self.refused(i, e);
                        pos += 1;
                    }
                }
            }
            if !eagain {
                self.retry = false;
                self.eagain_passes = 0;
                return Ok(());
            }
            self.retry = true;
            self.eagain_passes += 1;
            if self.eagain_passes < 3 {
                return Ok(());
            }
            // The kernel keeps refusing although our count says there is
            // room (per-CPU request stock): a larger context settles it.
            self.eagain_passes = 0;
            let needed = self.in_flight.saturating_add(1).max(self.context_events() + 1);
            self.grow(needed)?;
        }
    }

    /// The kernel refused to arm slot `i` with `e`: `EBADF` means the fd was
    /// closed (nothing more to report, like epoll forgetting a closed fd);
    /// anything else (`EINVAL`: ttys and other files AIO cannot poll) hands
    /// the fd to the inner epoll.
    fn refused(&mut self, i: usize, e: Errno) {
        let Some(s) = self.slots.get(i).copied() else { return };
        let state = if e == Errno::EBADF {
            State::Dead
        } else {
            match self.inner.register(s.fd, s.key, s.interest(), s.trigger()) {
                Ok(()) => {
                    let _ = self.epoll_members(1);
                    State::Epoll
                }
                Err(_) => State::Dead,
            }
        };
        if let Some(m) = self.slots.get_mut(i) {
            m.state = state;
            m.refused = e != Errno::EBADF;
        }
    }

    /// Replaces the context with one for at least `needed` requests; every
    /// poll armed in the old one is re-armed. Falls back to epoll as a whole
    /// when the kernel refuses (or `max_events` forbids) a larger one.
    fn grow(&mut self, needed: u32) -> Result<(), Errno> {
        let old = self.context_events();
        let size = needed.saturating_mul(2).max(old.saturating_mul(2)).max(1);
        // io_destroy cancels every request and waits for them: their
        // completions vanish with the ring, so the polls are queued again.
        self.ctx = None;
        self.in_flight = 0;
        for i in self.slots.indices() {
            if self.slots.get(i).is_some_and(|s| s.state == State::InFlight) {
                if let Some(s) = self.slots.get_mut(i) {
                    s.state = State::Queued;
                }
                self.slots.enqueue(i);
            }
        }
        let made = if size > self.config.max_events { Err(Errno::EAGAIN) } else { Context::setup(size) };
        match made {
            Ok(mut ctx) => {
                if !self.config.read_ring {
                    ctx.disable_ring();
                }
                self.ctx = Some(ctx);
                self.grows += 1;
                Ok(())
            }
            Err(e) => self.fall_back(e),
        }
    }

    /// Epoll as a whole from now on: every registration that is armed or
    /// waiting to be goes into the inner epoll (a fired oneshot joins it at
    /// its next `modify`).
    fn fall_back(&mut self, why: Errno) -> Result<(), Errno> {
        self.ctx = None;
        self.fallback = Some(why);
        let _ = self.epoll_members(0);
        for i in self.slots.indices() {
            let Some(s) = self.slots.get(i).copied() else { continue };
            if matches!(s.state, State::Queued | State::InFlight) {
                let state = match self.inner.register(s.fd, s.key, s.interest(), s.trigger()) {
                    Ok(()) => State::Epoll,
                    Err(_) => State::Dead,
                };
                if let Some(m) = self.slots.get_mut(i) {
                    m.state = state;
                }
            }
        }
        self.slots.take_queue();
        self.retry = false;
        Ok(())
    }

    /// Turns completions into events for the loop; returns how many of
    /// `out` it filled.
    fn complete(&mut self, events: &[IoEvent], out: &mut [ReadyEvent]) -> usize {
        let mut filled = 0;
        for ev in events {
            self.in_flight = self.in_flight.saturating_sub(1);
            let i = ev.data as u32 as usize;
            let generation = (ev.data >> 32) as u32;
            let Some(s) = self.slots.get_mut(i) else { continue };
            if s.state != State::InFlight || s.generation != generation {
                // Cancelled, replaced, or from before the context grew.
                continue;
            }
            let mask = if ev.res < 0 { k::POLLERR } else { ev.res as u32 };
            let oneshot = s.trigger() == Trigger::Oneshot;
            if mask == 0 || !oneshot {
                s.state = State::Queued;
                let key = s.key;
                self.slots.enqueue(i);
                if mask == 0 {
                    continue;
                }
                out[filled] = ReadyEvent { key, ready: ready_of(mask) };
            } else {
                s.state = State::Disarmed;
                out[filled] = ReadyEvent { key: s.key, ready: ready_of(mask) };
            }
            filled += 1;
        }
        filled
    }

    /// Reads completions already posted (ring, or `io_getevents` without
    /// waiting when the ring is not read directly).
    fn harvest_now(&self, buf: &mut [IoEvent]) -> Result<usize, Errno> {
        let Some(ctx) = &self.ctx else { return Ok(0) };
        if ctx.reads_ring() {
            Ok(ctx.read_ring(buf))
        } else if buf.is_empty() {
            Ok(0)
        } else {
            match ctx.getevents(0, buf, Some(0)) {
                Err(Errno::EINTR) => Ok(0),
                other => other,
            }
        }
    }

    /// One wait; `Ok(None)` when it only saw stale completions and should be
    /// repeated (the deadline has not passed).
    fn wait_once(&mut self, out: &mut [ReadyEvent], deadline: Option<Instant>) -> Result<Option<usize>, Errno> {
        self.flush()?;
        if self.ctx.is_none() {
            return self.inner.wait(out, deadline).map(Some);
        }
        let max = out.len().min(EVENT_BATCH);
        let mut buf = [IoEvent::default(); EVENT_BATCH];
        // While the inner epoll has members, keep half the batch for it.
        let aio_room = if self.in_epoll > 0 { max.div_ceil(2) } else { max };
        let reads_ring = self.reads_ring();
        let mut n = if reads_ring || self.in_epoll > 0 { self.harvest_now(&mut buf[..aio_room])? } else { 0 };
        let mut filled = 0;
        let mut timed_out = false;
        if self.in_epoll > 0 {
            let busy = n > 0 || self.retry;
            let room = max - n.min(max);
            let d = if busy { Some(Instant::ZERO) } else { deadline };
            let got = if room > 0 { self.inner.wait(&mut out[..room], d)? } else { 0 };
            // Drop the completion eventfd's own events; it only woke us.
            let mut woke = false;
            for j in 0..got {
                if out[j].key == RESFD_KEY {
                    woke = true;
                } else {
                    out[filled] = out[j];
                    filled += 1;
                }
            }
            if !busy {
                if woke || got == 0 {
                    n = self.harvest_now(&mut buf[..aio_room.min(max - filled)])?;
                }
                timed_out = got == 0 && n == 0;
            }
        } else if n == 0 {
            let ctx = self.ctx.as_ref().ok_or(Errno::EBADF)?;
            let timeout = if self.retry {
                Some(0)
            } else {
                relative_timeout(deadline)?
            };
            if timeout == Some(0) && reads_ring {
                timed_out = true;
            } else {
                let min = if timeout == Some(0) { 0 } else { 1 };
                n = match ctx.getevents(min, &mut buf[..max], timeout) {
                    Ok(n) => n,
                    // A signal handler ran: an empty pass, like epoll.
                    Err(Errno::EINTR) => return Ok(Some(0)),
                    Err(e) => return Err(e),
                };
                timed_out = n == 0;
            }
        }
        let more = self.complete(&buf[..n], &mut out[filled..max]);
        filled += more;
        if filled > 0 || timed_out || self.retry {
            return Ok(Some(filled));
        }
        // Only stale completions: wait again unless the deadline passed.
        if relative_timeout(deadline)? == Some(0) { Ok(Some(0)) } else { Ok(None) }
    }
}

impl Kernel for LinuxAio {
    type Fd = OwnedFd;

    fn name(&self) -> &'static str {
        "linux-aio"
    }

    fn register(&mut self, fd: RawFd, key: u64, interest: Interest, trigger: Trigger) -> Result<(), Errno> {
        if self.ctx.is_none() {
            return self.inner.register(fd, key, interest, trigger);
        }
        let i = self.slots.index_of_key(key)?;
        self.apply(i, fd, key, interest, trigger)
    }

    fn modify(&mut self, fd: RawFd, key: u64, interest: Interest, trigger: Trigger) -> Result<(), Errno> {
        if self.ctx.is_none() {
            return self.inner.modify(fd, key, interest, trigger);
        }
        let i = self.slots.index_of_key(key)?;
        self.apply(i, fd, key, interest, trigger)
    }

    fn deregister(&mut self, fd: RawFd, key: u64) -> Result<(), Errno> {
        if self.ctx.is_none() {
            return self.inner.deregister(fd, key);
        }
        if let Some(i) = self.slots.index_of_fd(fd) {
            self.release(i);
        }
        Ok(())
    }

    fn wait(&mut self, out: &mut [ReadyEvent], deadline: Option<Instant>) -> Result<usize, Errno> {
        loop {
            if let Some(n) = self.wait_once(out, deadline)? {
                return Ok(n);
            }
        }
    }

    fn now(&mut self) -> Result<Instant, Errno> {
        clock::monotonic_ns().map(Instant::from_nanos)
    }

    fn owns_fd(&self, fd: RawFd) -> bool {
        self.inner.owns_fd(fd) || fd == self.resfd.as_raw_fd()
    }

    fn check_fd(&self, fd: RawFd) -> Result<(), Errno> {
        crate::sys::check_fd(fd)
    }

    fn capacity(&self) -> Option<usize> {
        Some(self.slots.capacity() as usize)
    }

    sys_objects!();
}
