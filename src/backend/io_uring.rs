//! `IoUring`: readiness through io_uring's `IORING_OP_POLL_ADD`.
//!
//! The explanation lives on [`IoUring`] (this module is private).

use super::slots::{Slots, State, poll_mask, ready_of};
use super::kernel::Kernel;
use super::sys_objects::sys_objects;
use super::{EVENT_BATCH, ReadyEvent, relative_timeout};
use crate::interest::{Interest, Trigger};
use crate::sys::fd_kind::{FdKind, fd_kind};
use crate::sys::io_uring::{Cqe, ETIME, Op, Ring, Sqe};
use crate::sys::{Errno, OwnedFd, RawFd, clock};
use crate::time::Instant;
use linux_raw_sys::io_uring as u;

/// How an [`IoUring`] backend is sized and behaves.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct UringConfig {
    /// Key slots (watchers the loop can register): `1..u32::MAX / 4`.
    pub capacity: u32,
    /// SQ ring entries (a power of two; more arming requests than this in
    /// one pass are submitted in several chunks).
    pub sq_entries: u32,
    /// CQ ring entries to start with (at least `sq_entries`).
    pub cq_entries: u32,
    /// The CQ ring never grows beyond this.
    pub max_cq_entries: u32,
    /// Use multishot polls for edge-triggered registrations where the
    /// kernel has them.
    pub multishot: bool,
}

impl Default for UringConfig {
    fn default() -> Self {
        UringConfig {
            capacity: IoUring::DEFAULT_CAPACITY,
            sq_entries: 256,
            cq_entries: 1024,
            max_cq_entries: 1 << 16,
            multishot: true,
        }
    }
}

/// `user_data` of requests whose completions are not about a slot.
const NOT_A_SLOT: u64 = u64::MAX;
/// `IOSQE_CQE_SKIP_SUCCESS`: no completion unless the request fails.
const CQE_SKIP_SUCCESS: u8 = 1 << u::io_uring_sqe_flags_bit::IOSQE_CQE_SKIP_SUCCESS_BIT as u8;

/// Setup flags, most wanted first; the first set the kernel accepts wins.
const SETUP_FLAGS: [u32; 3] = [u::IORING_SETUP_CLAMP | u::IORING_SETUP_SUBMIT_ALL, u::IORING_SETUP_CLAMP, 0];

/// `IoUring`: readiness through io_uring's `IORING_OP_POLL_ADD`.
///
/// # How it works
///
/// Every registration is a poll request whose `user_data` is
/// `generation << 32 | slot`, the generation bumped at every arming, so a
/// completion of a removed or replaced request is recognised and dropped.
/// Requests are copied into the mapped SQ ring at the start of the next
/// wait and submitted by the same `io_uring_enter` that waits: one syscall
/// per pass, busy or idle, as with epoll.
///
/// - Level: a one-shot poll, re-armed at the next wait after its callbacks
///   ran (a still-ready fd completes again inside that `io_uring_enter`).
/// - Oneshot: a one-shot poll, not re-armed until `modify`.
/// - Edge: a multishot poll (`IORING_POLL_ADD_MULTI`, Linux 5.13), which the
///   kernel runs edge-triggered: one completion per wake-up of the file, none
///   for data left unread. Several completions of one fd in a batch are
///   merged into one event. Where multishot is missing, edge is emulated
///   with re-armed one-shot polls and reports like level.
/// - `modify` = `POLL_REMOVE` + `POLL_ADD`, both queued for the next wait (a
///   poll still armed for the same events is kept, except for edge, which
///   is re-armed so that `modify` reports current readiness as epoll's
///   `EPOLL_CTL_MOD` does).
///
/// # Kernel features, probed at construction
///
/// `IORING_REGISTER_PROBE` (Linux 5.6) must list `POLL_ADD` and
/// `POLL_REMOVE`; `IORING_FEAT_EXT_ARG` (5.11) must be present (waits carry
/// their timeout). Otherwise construction fails with the probe's errno or
/// `EOPNOTSUPP`. Multishot poll has no probe bit of its own: it arrived in
/// 5.13 with `IORING_FEAT_RSRC_TAGS`, which is taken as its sign, and a
/// multishot request the kernel still refuses (`EINVAL`) turns multishot off
/// and is re-armed one-shot. Setup flags the kernel does not know
/// (`SUBMIT_ALL`, `CLAMP`) are dropped one by one.
///
/// # Completion overflow
///
/// When completions do not fit the CQ ring (many multishot completions, a
/// burst of registrations), the kernel either keeps them in an overflow list
/// (`IORING_FEAT_NODROP`, 5.5) or drops them (counted in the CQ header). On
/// either sign the backend grows: a new ring with twice the CQ entries (up
/// to [`UringConfig::max_cq_entries`]), every armed poll re-armed in it,
/// which reports again whatever is ready (an edge registration may hear of
/// ready data once more). If it cannot grow, NODROP kernels lose nothing
/// (the overflow is flushed by the next wait) and older ones re-arm every
/// poll in the same ring.
///
/// # Deadlines
///
/// `io_uring_enter`'s own timeout (`IORING_ENTER_EXT_ARG`), relative, from
/// the clock read right before the call: no arming syscall, and the kernel
/// looks at the timeout only when it actually sleeps.
///
/// # Limits
///
/// Key slots `0..capacity` (default 1024; beyond is `ENOSPC`). Regular files
/// and directories are refused with `EPERM`, as epoll does. An armed poll
/// holds a reference to its file: unwatch before close.
pub struct IoUring {
    ring: Ring,
    slots: Slots,
    config: UringConfig,
    multishot: bool,
    skip_success: bool,
    /// The kernel's dropped-completion count as last seen.
    dropped_seen: u32,
    overflows: u32,
    grows: u32,
    /// A submission was refused for now (`EBUSY`/`EAGAIN`): do not block.
    retry: bool,
}

impl IoUring {
    /// Key slots when not told otherwise.
    pub const DEFAULT_CAPACITY: u32 = 1024;

    /// A backend with the default [`UringConfig`]. `ENOSYS` where the
    /// kernel has no io_uring (qemu-user, `CONFIG_IO_URING=n`), `EPERM`
    /// under seccomp profiles that refuse it and with
    /// `kernel.io_uring_disabled`, `EOPNOTSUPP` on a kernel older than 5.11.
    pub fn new() -> Result<IoUring, Errno> {
        IoUring::with_config(UringConfig::default())
    }

    /// A backend with room for `capacity` key slots.
    pub fn with_capacity(capacity: u32) -> Result<IoUring, Errno> {
        IoUring::with_config(UringConfig { capacity, ..UringConfig::default() })
    }

    /// A backend as `config` says. `EINVAL` for a capacity of 0 or beyond
    /// `u32::MAX / 4`, or ring sizes the kernel refuses.
    pub fn with_config(config: UringConfig) -> Result<IoUring, Errno> {
        let slots = Slots::new(config.capacity, 0)?;
        let ring = make_ring(config.sq_entries, config.cq_entries)?;
        let features = ring.features();
        if features & u::IORING_FEAT_EXT_ARG == 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let probe = ring.probe()?;
        if !probe.supports(Op::IORING_OP_POLL_ADD) || !probe.supports(Op::IORING_OP_POLL_REMOVE) {
            return Err(Errno::EOPNOTSUPP);
        }
        Ok(IoUring {
            multishot: config.multishot && features & u::IORING_FEAT_RSRC_TAGS != 0,
            skip_success: features & u::IORING_FEAT_CQE_SKIP != 0,
            dropped_seen: ring.cq_overflow(),
            ring,
            slots,
            config,
            overflows: 0,
            grows: 0,
            retry: false,
        })
    }

    /// Key slots this backend has room for.
    pub fn capacity(&self) -> u32 {
        self.slots.capacity()
    }

    /// The ring's fd (the backend's own fd: watching it is refused). It
    /// changes when the ring grows.
    pub fn as_raw_fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }

    /// Whether edge-triggered registrations use multishot polls (exact edge
    /// semantics) rather than re-armed one-shot polls (reported like level).
    pub fn multishot(&self) -> bool {
        self.multishot
    }

    /// `IORING_FEAT_*` bits the kernel reported.
    pub fn features(&self) -> u32 {
        self.ring.features()
    }

    /// `IORING_SETUP_*` flags the ring was set up with.
    pub fn setup_flags(&self) -> u32 {
        self.ring.setup_flags()
    }

    /// Current CQ ring size.
    pub fn cq_entries(&self) -> u32 {
        self.ring.cq_entries()
    }

    /// How many times completions overflowed the CQ ring.
    pub fn overflows(&self) -> u32 {
        self.overflows
    }

    /// How many times the ring was replaced by a larger one.
    pub fn grows(&self) -> u32 {
        self.grows
    }

    fn data(generation: u32, i: usize) -> u64 {
        (u64::from(generation) << 32) | i as u64
    }

    /// Whether slot `s`'s poll is (or would be) a multishot one.
    fn multishot_for(&self, trigger: Trigger) -> bool {
        trigger == Trigger::Edge && self.multishot
    }

    /// Copies `sqe` into the SQ ring, submitting what is there first when
    /// the ring is full.
    fn push(&mut self, sqe: &Sqe) -> Result<(), Errno> {
        if self.ring.push(sqe) {
            return Ok(());
        }
        let pending = self.ring.sq_pending();
        self.ring.enter(pending, 0, 0, None)?;
        if self.ring.push(sqe) { Ok(()) } else { Err(Errno::EBUSY) }
    }

    /// Queues the removal of slot `i`'s armed poll. Best effort: if it cannot
    /// be queued, the poll's completions are stale anyway.
    fn remove(&mut self, i: usize) {
        let Some(s) = self.slots.get(i) else { return };
        let sqe = Sqe {
            opcode: Op::IORING_OP_POLL_REMOVE as u8,
            flags: if self.skip_success { CQE_SKIP_SUCCESS } else { 0 },
            fd: -1,
            addr: Self::data(s.generation, i),
            user_data: NOT_A_SLOT,
            ..Sqe::default()
        };
        let _ = self.push(&sqe);
    }

    /// Takes slot `i` out of the kernel and unbinds its fd.
    fn release(&mut self, i: usize) {
        let Some(s) = self.slots.get(i).copied() else { return };
        if s.state == State::InFlight {
            self.remove(i);
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
    fn apply(&mut self, i: usize, fd: RawFd, key: u64, interest: Interest, trigger: Trigger) -> Result<(), Errno> {
        // fstat on every call: a bad or closed fd is EBADF and a regular
        // file EPERM, as epoll says, also for a modify (a replacement).
        if fd_kind(fd)? == FdKind::NotPollable {
            return Err(Errno::EPERM);
        }
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
        let keep = old.state == State::InFlight
            && old.fd == fd
            && old.interest() == interest
            && trigger != Trigger::Edge
            && self.multishot_for(old.trigger()) == self.multishot_for(trigger);
        if old.state == State::InFlight && !keep {
            self.remove(i);
        }
        let s = self.slots.get_mut(i).ok_or(Errno::ENOSPC)?;
        s.set(fd, key, interest, trigger);
        if !keep {
            s.state = State::Queued;
            self.slots.enqueue(i);
        }
        self.slots.bind_fd(fd, i);
        Ok(())
    }

    /// Copies a `POLL_ADD` for every queued slot into the SQ ring.
    fn flush(&mut self) -> Result<(), Errno> {
        let n = self.slots.take_queue();
        for q in 0..n {
            let i = self.slots.batch(n)[q] as usize;
            let multishot_ok = self.multishot;
            let Some(s) = self.slots.get_mut(i) else { continue };
            s.generation = s.generation.wrapping_add(1);
            s.state = State::InFlight;
            let multi = s.trigger() == Trigger::Edge && multishot_ok;
            let sqe = Sqe {
                opcode: Op::IORING_OP_POLL_ADD as u8,
                fd: s.fd,
                op_flags: poll_mask(s.interest()),
                len: if multi { u::IORING_POLL_ADD_MULTI } else { 0 },
                user_data: Self::data(s.generation, i),
                ..Sqe::default()
            };
            if let Err(e) = self.push(&sqe) {
                // Keep what could not be queued for the next pass.
                for r in q..n {
                    let j = self.slots.batch(n)[r] as usize;
                    if let Some(s) = self.slots.get_mut(j) {
                        s.state = State::Queued;
                    }
                }
                self.slots.requeue_batch(q, n);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Turns completions into events for the loop, merging several of one
    /// slot; appends to `out` from `*filled`.
    fn complete(&mut self, cqes: &[Cqe], out: &mut [ReadyEvent], filled: &mut usize) {
        let pass = self.slots.pass;
        for c in cqes {
            let i = c.user_data as u32 as usize;
            let generation = (c.user_data >> 32) as u32;
            let multishot_on = self.multishot;
            let Some(s) = self.slots.get_mut(i) else { continue };
            if c.user_data == NOT_A_SLOT || s.state != State::InFlight || s.generation != generation {
                continue;
            }
            let more = c.flags & u::IORING_CQE_F_MORE != 0;
            if c.res < 0 {
                let e = Errno::from_raw(c.res.unsigned_abs() as u16);
                let requeue = match e {
                    // Closed before it was armed: like epoll forgetting it.
                    Errno::EBADF => false,
                    // A kernel that refuses multishot after all.
                    Errno::EINVAL if s.trigger() == Trigger::Edge && multishot_on => {
                        self.multishot = false;
                        true
                    }
                    // Cancelled by the kernel (not by us: ours are stale).
                    Errno::ECANCELED => true,
                    _ => {
                        s.state = State::Dead;
                        out[*filled] = ReadyEvent { key: s.key, ready: crate::interest::Ready::ERROR };
                        *filled += 1;
                        continue;
                    }
                };
                s.state = if requeue { State::Queued } else { State::Dead };
                if requeue {
                    self.slots.enqueue(i);
                }
                continue;
            }
            let ready = ready_of(c.res as u32);
            s.state = if more {
                State::InFlight
            } else if s.trigger() == Trigger::Oneshot {
                State::Disarmed
            } else {
                State::Queued
            };
            let (key, mark, at) = (s.key, s.mark, s.at as usize);
            let merged = mark == pass && at < *filled && out[at].key == key;
            if !merged && !ready.is_empty() {
                s.mark = pass;
                s.at = *filled as u32;
            }
            if s.state == State::Queued {
                self.slots.enqueue(i);
            }
            if ready.is_empty() {
                continue;
            }
            if merged {
                out[at].ready |= ready;
            } else {
                out[*filled] = ReadyEvent { key, ready };
                *filled += 1;
            }
        }
    }

    /// Completions did not fit the CQ ring: grow it, or make sure nothing
    /// stays lost.
    fn overflowed(&mut self) -> Result<(), Errno> {
        self.overflows += 1;
        let cq = self.ring.cq_entries().saturating_mul(2);
        if cq <= self.config.max_cq_entries
            && let Ok(ring) = make_ring(self.ring.sq_entries(), cq)
        {
            // Dropping the old ring cancels all its polls (and discards its
            // overflow): every armed poll is armed again in the new one.
            self.ring = ring;
            self.dropped_seen = self.ring.cq_overflow();
            self.grows += 1;
            self.requeue_armed(false);
            return Ok(());
        }
        if self.ring.features() & u::IORING_FEAT_NODROP == 0 {
            // Completions were dropped: re-arm every poll, which reports
            // again whatever is ready.
            self.requeue_armed(true);
        }
        self.dropped_seen = self.ring.cq_overflow();
        Ok(())
    }

    fn requeue_armed(&mut self, remove_first: bool) {
        for i in self.slots.indices() {
            if self.slots.get(i).is_some_and(|s| s.state == State::InFlight) {
                if remove_first {
                    self.remove(i);
                }
                if let Some(s) = self.slots.get_mut(i) {
                    s.state = State::Queued;
                }
                self.slots.enqueue(i);
            }
        }
    }

    /// One wait; `Ok(None)` when it only saw stale completions and should be
    /// repeated (the deadline has not passed).
    fn wait_once(&mut self, out: &mut [ReadyEvent], deadline: Option<Instant>) -> Result<Option<usize>, Errno> {
        self.slots.pass = self.slots.pass.wrapping_add(1);
        // A full SQ ring the kernel will not take now (EBUSY, EAGAIN): what
        // is left waits for the next pass, and this one does not block.
        let refused = match self.flush() {
            Ok(()) => false,
            Err(Errno::EBUSY | Errno::EAGAIN) => true,
            Err(e) => return Err(e),
        };
        let max = out.len().min(EVENT_BATCH);
        let to_submit = self.ring.sq_pending();
        let mut timed_out = false;
        let busy = refused || self.retry;
        let entered = if self.ring.cq_ready() > 0 {
            if to_submit > 0 { Some(self.ring.enter(to_submit, 0, u::IORING_ENTER_GETEVENTS, None)) } else { None }
        } else {
            let timeout = if busy {
                Some(0)
            } else {
                relative_timeout(deadline)?
            };
            if timeout == Some(0) {
                timed_out = true;
                Some(self.ring.enter(to_submit, 0, u::IORING_ENTER_GETEVENTS, None))
            } else {
                Some(self.ring.enter(to_submit, 1, u::IORING_ENTER_GETEVENTS, timeout))
            }
        };
        self.retry = false;
        match entered {
            None | Some(Ok(_)) => {}
            Some(Err(e)) if e == ETIME => timed_out = true,
            // A signal handler ran: report what is there, like epoll.
            Some(Err(Errno::EINTR)) => timed_out = true,
            // Submission refused for now (overflow backlog, memory): what
            // is queued waits for the next pass, which does not block.
            Some(Err(Errno::EBUSY | Errno::EAGAIN)) => self.retry = true,
            Some(Err(e)) => return Err(e),
        }
        let mut filled = 0;
        let mut cqes = [Cqe::default(); EVENT_BATCH];
        while filled < max {
            let got = self.ring.pop(&mut cqes[..max - filled]);
            if got == 0 {
                break;
            }
            self.complete(&cqes[..got], out, &mut filled);
        }
        if self.ring.sq_flags() & u::IORING_SQ_CQ_OVERFLOW != 0 || self.ring.cq_overflow() != self.dropped_seen {
            self.overflowed()?;
        }
        if filled > 0 || timed_out || self.retry {
            return Ok(Some(filled));
        }
        if relative_timeout(deadline)? == Some(0) { Ok(Some(0)) } else { Ok(None) }
    }
}

/// A ring with the most wanted setup flags the kernel accepts.
fn make_ring(sq_entries: u32, cq_entries: u32) -> Result<Ring, Errno> {
    let mut last = Errno::EINVAL;
    for flags in SETUP_FLAGS {
        match Ring::setup(sq_entries, cq_entries, flags) {
            Ok(ring) => return Ok(ring),
            Err(Errno::EINVAL) => last = Errno::EINVAL,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

impl Kernel for IoUring {
    type Fd = OwnedFd;

    fn name(&self) -> &'static str {
        "io_uring"
    }

    fn register(&mut self, fd: RawFd, key: u64, interest: Interest, trigger: Trigger) -> Result<(), Errno> {
        let i = self.slots.index_of_key(key)?;
        self.apply(i, fd, key, interest, trigger)
    }

    fn modify(&mut self, fd: RawFd, key: u64, interest: Interest, trigger: Trigger) -> Result<(), Errno> {
        let i = self.slots.index_of_key(key)?;
        self.apply(i, fd, key, interest, trigger)
    }

    fn deregister(&mut self, fd: RawFd, _key: u64) -> Result<(), Errno> {
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
        fd == self.ring.as_raw_fd()
    }

    fn check_fd(&self, fd: RawFd) -> Result<(), Errno> {
        crate::sys::check_fd(fd)
    }

    fn capacity(&self) -> Option<usize> {
        Some(self.slots.capacity() as usize)
    }

    sys_objects!();
}
