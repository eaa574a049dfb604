//! `IoUring`: readiness through io_uring's `IORING_OP_POLL_ADD`.
//!
//! The explanation lives on [`IoUring`] (this module is private).

use super::kernel::Kernel;
use super::oneshot::{Armed, Collected, Completion, OneShot, PollKernel, Stop};
use super::slots::{Slot, Slots, State, poll_mask, request_data};
use super::sys_objects::sys_objects;
use super::{EVENT_BATCH, ReadyEvent};
use crate::interest::{Interest, Ready, Trigger};
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

/// `user_data` of requests whose completions are not about a slot (no
/// table index is `u32::MAX`).
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
    machine: OneShot,
    uring: Uring,
}

/// The io_uring side of [`IoUring`]: the ring and what the kernel offers.
struct Uring {
    ring: Ring,
    config: UringConfig,
    multishot: bool,
    skip_success: bool,
    /// The kernel's dropped-completion count as last seen.
    dropped_seen: u32,
    overflows: u32,
    grows: u32,
    /// `io_uring_enter` refused the submission for now (`EBUSY`/`EAGAIN`):
    /// the SQEs stay in the SQ ring, and the next wait does not block.
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
        let machine = OneShot::new(config.capacity)?;
        let ring = make_ring(config.sq_entries, config.cq_entries)?;
        let features = ring.features();
        if features & u::IORING_FEAT_EXT_ARG == 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let probe = ring.probe()?;
        if !probe.supports(Op::IORING_OP_POLL_ADD) || !probe.supports(Op::IORING_OP_POLL_REMOVE) {
            return Err(Errno::EOPNOTSUPP);
        }
        let uring = Uring {
            multishot: config.multishot && features & u::IORING_FEAT_RSRC_TAGS != 0,
            skip_success: features & u::IORING_FEAT_CQE_SKIP != 0,
            dropped_seen: ring.cq_overflow(),
            ring,
            config,
            overflows: 0,
            grows: 0,
            retry: false,
        };
        Ok(IoUring { machine, uring })
    }

    /// Key slots this backend has room for.
    pub fn capacity(&self) -> u32 {
        self.machine.slots.capacity()
    }

    /// The ring's fd (the backend's own fd: watching it is refused). It
    /// changes when the ring grows.
    pub fn as_raw_fd(&self) -> RawFd {
        self.uring.ring.as_raw_fd()
    }

    /// Whether edge-triggered registrations use multishot polls (exact edge
    /// semantics) rather than re-armed one-shot polls (reported like level).
    pub fn multishot(&self) -> bool {
        self.uring.multishot
    }

    /// `IORING_FEAT_*` bits the kernel reported.
    pub fn features(&self) -> u32 {
        self.uring.ring.features()
    }

    /// `IORING_SETUP_*` flags the ring was set up with.
    pub fn setup_flags(&self) -> u32 {
        self.uring.ring.setup_flags()
    }

    /// Current CQ ring size.
    pub fn cq_entries(&self) -> u32 {
        self.uring.ring.cq_entries()
    }

    /// How many times completions overflowed the CQ ring.
    pub fn overflows(&self) -> u32 {
        self.uring.overflows
    }

    /// How many times the ring was replaced by a larger one.
    pub fn grows(&self) -> u32 {
        self.uring.grows
    }
}

impl Uring {
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

    /// Queues the removal of the poll slot `i` armed with `generation`. Best
    /// effort: if it cannot be queued, the poll's completions are stale anyway.
    fn remove(&mut self, i: usize, generation: u32) {
        let sqe = Sqe {
            opcode: Op::IORING_OP_POLL_REMOVE as u8,
            flags: if self.skip_success { CQE_SKIP_SUCCESS } else { 0 },
            fd: -1,
            addr: request_data(i, generation),
            user_data: NOT_A_SLOT,
            ..Sqe::default()
        };
        let _ = self.push(&sqe);
    }

    /// Completions did not fit the CQ ring: grow it, or make sure nothing
    /// stays lost.
    fn overflowed(&mut self, machine: &mut OneShot) -> Result<(), Errno> {
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
            machine.rearm_in_flight(|_, _| {});
            return Ok(());
        }
        if self.ring.features() & u::IORING_FEAT_NODROP == 0 {
            // Completions were dropped: re-arm every poll, which reports
            // again whatever is ready.
            machine.rearm_in_flight(|i, s| self.remove(i, s.generation));
        }
        self.dropped_seen = self.ring.cq_overflow();
        Ok(())
    }
}

impl PollKernel for Uring {
    /// Copies a `POLL_ADD` per slot into the SQ ring; the wait submits them.
    #[inline]
    fn arm(&mut self, slots: &Slots, batch: &[u32]) -> Armed {
        for (q, &i) in batch.iter().enumerate() {
            let Some(s) = slots.get(i as usize) else { continue };
            let sqe = Sqe {
                opcode: Op::IORING_OP_POLL_ADD as u8,
                fd: s.fd,
                op_flags: poll_mask(s.interest()),
                len: if self.multishot(s.trigger()) { u::IORING_POLL_ADD_MULTI } else { 0 },
                user_data: request_data(i as usize, s.generation),
                ..Sqe::default()
            };
            if let Err(e) = self.push(&sqe) {
                // A full SQ ring the kernel will not take now (EBUSY, EAGAIN).
                let stop = if matches!(e, Errno::EBUSY | Errno::EAGAIN) { Stop::Later } else { Stop::Failed(e) };
                return Armed { taken: q, stop: Some(stop) };
            }
        }
        Armed { taken: batch.len(), stop: None }
    }

    fn disarm(&mut self, i: usize, slot: &Slot) -> Result<(), Errno> {
        if slot.state == State::InFlight {
            self.remove(i, slot.generation);
        }
        Ok(())
    }

    fn refused(&mut self, slot: &mut Slot, e: Errno) -> Option<Ready> {
        match e {
            // A kernel that refuses multishot after all.
            Errno::EINVAL if slot.trigger() == Trigger::Edge && self.multishot => {
                self.multishot = false;
                slot.state = State::Queued;
                None
            }
            // Cancelled by the kernel (not by us: ours are stale).
            Errno::ECANCELED => {
                slot.state = State::Queued;
                None
            }
            _ => {
                slot.state = State::Dead;
                Some(Ready::ERROR)
            }
        }
    }

    /// One `io_uring_enter` submits the staged SQEs and waits, with its own
    /// relative timeout; completions are read from the mapped CQ ring.
    #[inline]
    fn collect(
        &mut self,
        machine: &mut OneShot,
        out: &mut [ReadyEvent],
        deadline: Option<Instant>,
    ) -> Result<Collected, Errno> {
        let max = out.len().min(EVENT_BATCH);
        let to_submit = self.ring.sq_pending();
        let mut timed_out = false;
        let entered = if self.ring.cq_ready() > 0 {
            if to_submit > 0 { Some(self.ring.enter(to_submit, 0, u::IORING_ENTER_GETEVENTS, None)) } else { None }
        } else {
            let timeout = machine.timeout(deadline, self.retry)?;
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
            for c in &cqes[..got] {
                if c.user_data == NOT_A_SLOT {
                    continue;
                }
                let result =
                    if c.res < 0 { Err(Errno::from_raw(c.res.unsigned_abs() as u16)) } else { Ok(c.res as u32) };
                let more = c.flags & u::IORING_CQE_F_MORE != 0;
                machine.complete(self, Completion { data: c.user_data, result, more }, out, &mut filled);
            }
        }
        if self.ring.sq_flags() & u::IORING_SQ_CQ_OVERFLOW != 0 || self.ring.cq_overflow() != self.dropped_seen {
            self.overflowed(machine)?;
        }
        Ok(Collected { filled, over: timed_out || self.retry })
    }

    fn multishot(&self, trigger: Trigger) -> bool {
        trigger == Trigger::Edge && self.multishot
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
        self.machine.apply(&mut self.uring, fd, key, interest, trigger)
    }

    fn modify(&mut self, fd: RawFd, key: u64, interest: Interest, trigger: Trigger) -> Result<(), Errno> {
        self.machine.apply(&mut self.uring, fd, key, interest, trigger)
    }

    fn deregister(&mut self, fd: RawFd, key: u64) -> Result<(), Errno> {
        self.machine.deregister(&mut self.uring, fd, key);
        Ok(())
    }

    fn wait(&mut self, out: &mut [ReadyEvent], deadline: Option<Instant>) -> Result<usize, Errno> {
        self.machine.wait(&mut self.uring, out, deadline)
    }

    fn now(&mut self) -> Result<Instant, Errno> {
        clock::monotonic_ns().map(Instant::from_nanos)
    }

    fn owns_fd(&self, fd: RawFd) -> bool {
        fd == self.uring.ring.as_raw_fd()
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
