//! `LinuxAio`: readiness through Linux AIO's `IOCB_CMD_POLL` (Linux 4.18).
//!
//! The explanation lives on [`LinuxAio`] (this module is private).

use super::kernel::Kernel;
use super::oneshot::{Armed, Collected, Completion, OneShot, PollKernel, Stop};
use super::slots::{Slot, Slots, State, poll_mask, request_data};
use super::sys_objects::sys_objects;
use super::{EVENT_BATCH, Epoll, EpollTimer, ReadyEvent};
use crate::interest::{Interest, Ready, Trigger};
use crate::sys::aio::{Context, IoEvent, Iocbs};
use crate::sys::fd_kind::{FdKind, is_signalfd};
use crate::sys::{Errno, OwnedFd, RawFd, clock, eventfd};
use crate::table::Key;
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
    machine: OneShot,
    aio: Aio,
}

/// The Linux AIO side of [`LinuxAio`]: its kernel objects and what it
/// counts about them.
struct Aio {
    // Field order is drop order: the context (io_destroy cancels and waits
    // for every request) goes before the iocb table it points into.
    ctx: Option<Context>,
    iocbs: Iocbs,
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
    /// Arming rounds in a row in which `io_submit` said `EAGAIN`.
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
        let machine = OneShot::new(config.capacity)?;
        let mut ctx = Context::setup(config.initial_events.min(config.max_events.max(1)))?;
        if !config.read_ring {
            ctx.disable_ring();
        }
        let aio = Aio {
            ctx: Some(ctx),
            iocbs: Iocbs::new(machine.slots.len())?,
            inner: Epoll::with_timer(EpollTimer::Timerfd)?,
            resfd: eventfd::create()?,
            resfd_registered: false,
            in_epoll: 0,
            in_flight: 0,
            eagain_passes: 0,
            config,
            fallback: None,
            grows: 0,
        };
        Ok(LinuxAio { machine, aio })
    }

    /// Key slots this backend has room for.
    pub fn capacity(&self) -> u32 {
        self.machine.slots.capacity()
    }

    /// The inner epoll's fd (the backend's own fd: watching it is refused).
    pub fn as_raw_fd(&self) -> RawFd {
        self.aio.inner.as_raw_fd()
    }

    /// Whether completions are read from the shared ring (its header checked
    /// out) rather than with `io_getevents`. `false` after a fallback.
    pub fn reads_ring(&self) -> bool {
        self.aio.reads_ring()
    }

    /// Events the AIO context is currently set up for (0 after a fallback).
    pub fn context_events(&self) -> u32 {
        self.aio.context_events()
    }

    /// How many times the context grew.
    pub fn grows(&self) -> u32 {
        self.aio.grows
    }

    /// Why the backend fell back to epoll as a whole, if it did (the errno
    /// of the failed `io_setup` when the context had to grow).
    pub fn fallback(&self) -> Option<Errno> {
        self.aio.fallback
    }

    /// Whether `fd` is currently handed to the inner epoll (refused by AIO,
    /// edge-triggered, a signalfd, or everything after a fallback). Looks
    /// through every slot: it is for tests and diagnostics.
    pub fn in_inner_epoll(&self, fd: RawFd) -> bool {
        let slots = &self.machine.slots;
        self.aio.ctx.is_none()
            || slots.indices().any(|i| slots.get(i).is_some_and(|s| s.fd == fd && s.state == State::Epoll))
    }
}

impl Aio {
    fn reads_ring(&self) -> bool {
        self.ctx.as_ref().is_some_and(Context::reads_ring)
    }

    fn context_events(&self) -> u32 {
        self.ctx.as_ref().map_or(0, Context::size)
    }

    /// Whether `fd` must live in the inner epoll whatever its trigger: a
    /// signalfd (the loop's own, under its reserved key, or one of the
    /// user's; when `/proc` cannot tell, any anonymous-inode fd is assumed
    /// to be one).
    fn needs_epoll(key: u64, fd: RawFd, kind: FdKind) -> bool {
        Key::from_u64(key).slot == Key::SIGNALS.slot || (kind == FdKind::Anon && is_signalfd(fd) != Some(false))
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

    /// Cancels slot `i`'s poll. Found or already completed: either way its
    /// completion arrives (or arrived) with a generation that is stale once
    /// the slot's state changes; other errors cannot happen for a table
    /// address.
    fn cancel(&self, i: usize) {
        if let Some(ctx) = &self.ctx {
            let _ = ctx.cancel(&self.iocbs, i);
        }
    }

    /// Replaces the context with one for at least `needed` requests; every
    /// poll armed in the old one is re-armed. Falls back to epoll as a whole
    /// when the kernel refuses (or `max_events` forbids) a larger one.
    fn grow(&mut self, machine: &mut OneShot, needed: u32) -> Result<(), Errno> {
        let old = self.context_events();
        let size = needed.saturating_mul(2).max(old.saturating_mul(2)).max(1);
        // io_destroy cancels every request and waits for them: their
        // completions vanish with the ring, so the polls are queued again.
        self.ctx = None;
        self.in_flight = 0;
        machine.rearm_in_flight(|_, _| {});
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
            Err(e) => self.fall_back(machine, e),
        }
    }

    /// Epoll as a whole from now on: every registration that is armed or
    /// waiting to be goes into the inner epoll (a fired oneshot joins it at
    /// its next `modify`).
    fn fall_back(&mut self, machine: &mut OneShot, why: Errno) -> Result<(), Errno> {
        self.ctx = None;
        self.fallback = Some(why);
        let _ = self.epoll_members(0);
        let slots = &mut machine.slots;
        for i in slots.indices() {
            let Some(s) = slots.get_mut(i) else { continue };
            if matches!(s.state, State::Queued | State::InFlight) {
                s.state = match self.inner.register(s.fd, s.key, s.interest(), s.trigger()) {
                    Ok(()) => State::Epoll,
                    Err(_) => State::Dead,
                };
            }
        }
        slots.take_queue();
        machine.retry = false;
        Ok(())
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
}

impl PollKernel for Aio {
    /// One `io_submit` for the batch (its iocbs filled in first).
    #[inline]
    fn arm(&mut self, slots: &Slots, batch: &[u32]) -> Armed {
        let Some(ctx) = &self.ctx else { return Armed { taken: 0, stop: Some(Stop::Failed(Errno::EBADF)) } };
        let resfd = Some(self.resfd.as_raw_fd());
        for &i in batch {
            if let Some(s) = slots.get(i as usize) {
                let data = request_data(i as usize, s.generation);
                self.iocbs.set_poll(i as usize, s.fd, poll_mask(s.interest()), data, resfd);
            }
        }
        match ctx.submit(&mut self.iocbs, batch) {
            Ok(taken) => {
                self.in_flight += taken as u32;
                Armed { taken, stop: None }
            }
            Err(Errno::EAGAIN) => Armed { taken: 0, stop: Some(Stop::Later) },
            Err(e) => Armed { taken: 0, stop: Some(Stop::Refused(e)) },
        }
    }

    fn disarm(&mut self, i: usize, slot: &Slot) -> Result<(), Errno> {
        match slot.state {
            State::InFlight => {
                self.cancel(i);
                Ok(())
            }
            State::Epoll => {
                let _ = self.inner.deregister(slot.fd, slot.key);
                self.epoll_members(-1)
            }
            _ => Ok(()),
        }
    }

    /// Anything but `EBADF` at `io_submit` (`EINVAL`: ttys and other files
    /// AIO cannot poll) hands the fd to the inner epoll, for good.
    fn refused(&mut self, slot: &mut Slot, _e: Errno) -> Option<Ready> {
        slot.state = match self.inner.register(slot.fd, slot.key, slot.interest(), slot.trigger()) {
            Ok(()) => {
                let _ = self.epoll_members(1);
                State::Epoll
            }
            Err(_) => State::Dead,
        };
        slot.refused = true;
        None
    }

    #[inline]
    fn collect(
        &mut self,
        machine: &mut OneShot,
        out: &mut [ReadyEvent],
        deadline: Option<Instant>,
    ) -> Result<Collected, Errno> {
        if self.ctx.is_none() {
            // Fell back while arming.
            return Ok(Collected { filled: self.inner.wait(out, deadline)?, over: true });
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
            let busy = n > 0 || machine.retry;
            let room = max - n.min(max);
            let d = if busy { Some(Instant::ZERO) } else { deadline };
            let got = if room > 0 { self.inner.wait(&mut out[..room], d)? } else { 0 };
            // Drop the completion eventfd's own events; it only woke us.
            let mut woke = false;
            for j in 0..got {
                if out[j].key() == RESFD_KEY {
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
            let timeout = machine.timeout(deadline, false)?;
            if timeout == Some(0) && reads_ring {
                timed_out = true;
            } else {
                let min = if timeout == Some(0) { 0 } else { 1 };
                n = match ctx.getevents(min, &mut buf[..max], timeout) {
                    Ok(n) => n,
                    // A signal handler ran: an empty pass, like epoll.
                    Err(Errno::EINTR) => return Ok(Collected { filled: 0, over: true }),
                    Err(e) => return Err(e),
                };
                timed_out = n == 0;
            }
        }
        for ev in &buf[..n] {
            self.in_flight = self.in_flight.saturating_sub(1);
            let mask = if ev.res < 0 { k::POLLERR } else { ev.res as u32 };
            machine.complete(self, Completion { data: ev.data, result: Ok(mask), more: false }, out, &mut filled);
        }
        Ok(Collected { filled, over: timed_out || machine.retry })
    }

    /// Edge-triggered registrations and fds that cannot be AIO-polled live
    /// in the inner epoll; whether an fd cannot is decided once per fd.
    fn hand_off(&mut self, i: usize, old: &Slot, next: &mut Slot, kind: FdKind) -> Result<bool, Errno> {
        let sticky = if old.state != State::Free { old.refused } else { Aio::needs_epoll(next.key, next.fd, kind) };
        if !sticky && next.trigger() != Trigger::Edge {
            return Ok(false);
        }
        if old.state == State::Epoll {
            self.inner.modify(next.fd, next.key, next.interest(), next.trigger())?;
        } else {
            self.inner.register(next.fd, next.key, next.interest(), next.trigger())?;
            if old.state == State::InFlight {
                self.cancel(i);
            }
            self.epoll_members(1)?;
        }
        next.refused = sticky;
        next.state = State::Epoll;
        Ok(true)
    }

    /// Grows the context before more polls would be in flight than it holds.
    #[inline]
    fn make_room(&mut self, machine: &mut OneShot) -> Result<(), Errno> {
        let Some(ctx) = &self.ctx else { return Ok(()) };
        // The queue's length bounds what it holds to be armed: count only
        // when that bound would not fit.
        if self.in_flight.saturating_add(machine.slots.queue_len() as u32) <= ctx.size() {
            return Ok(());
        }
        let needed = self.in_flight.saturating_add(machine.slots.queued() as u32);
        if needed > ctx.size() {
            self.grow(machine, needed)?;
        }
        Ok(())
    }

    fn armed(&mut self, machine: &mut OneShot, later: bool) -> Result<bool, Errno> {
        if !later {
            self.eagain_passes = 0;
            return Ok(false);
        }
        self.eagain_passes += 1;
        if self.eagain_passes < 3 {
            return Ok(false);
        }
        // The kernel keeps refusing although our count says there is
        // room (per-CPU request stock): a larger context settles it.
        self.eagain_passes = 0;
        let needed = self.in_flight.saturating_add(1).max(self.context_events() + 1);
        self.grow(machine, needed)?;
        Ok(true)
    }
}

impl Kernel for LinuxAio {
    type Fd = OwnedFd;

    fn name(&self) -> &'static str {
        "linux-aio"
    }

    fn register(&mut self, fd: RawFd, key: u64, interest: Interest, trigger: Trigger) -> Result<(), Errno> {
        if self.aio.ctx.is_none() {
            return self.aio.inner.register(fd, key, interest, trigger);
        }
        self.machine.apply(&mut self.aio, fd, key, interest, trigger)
    }

    fn modify(&mut self, fd: RawFd, key: u64, interest: Interest, trigger: Trigger) -> Result<(), Errno> {
        if self.aio.ctx.is_none() {
            return self.aio.inner.modify(fd, key, interest, trigger);
        }
        self.machine.apply(&mut self.aio, fd, key, interest, trigger)
    }

    fn deregister(&mut self, fd: RawFd, key: u64) -> Result<(), Errno> {
        if self.aio.ctx.is_none() {
            return self.aio.inner.deregister(fd, key);
        }
        self.machine.deregister(&mut self.aio, fd, key);
        Ok(())
    }

    fn wait(&mut self, out: &mut [ReadyEvent], deadline: Option<Instant>) -> Result<usize, Errno> {
        if self.aio.ctx.is_none() {
            return self.aio.inner.wait(out, deadline);
        }
        self.machine.wait(&mut self.aio, out, deadline)
    }

    fn now(&mut self) -> Result<Instant, Errno> {
        clock::monotonic_ns().map(Instant::from_nanos)
    }

    fn owns_fd(&self, fd: RawFd) -> bool {
        self.aio.inner.owns_fd(fd) || fd == self.aio.resfd.as_raw_fd()
    }

    fn check_fd(&self, fd: RawFd) -> Result<(), Errno> {
        crate::sys::check_fd(fd)
    }

    fn registers_by_fd(&self) -> bool {
        false
    }

    fn capacity(&self) -> Option<usize> {
        Some(self.machine.slots.capacity() as usize)
    }

    sys_objects!();
}
