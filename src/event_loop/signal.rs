//! Signals on the loop through one signalfd: register, cancel, and the
//! per-pass drain that coalesces records into one callback per signal.
//!
//! The loop blocks watched signals in the calling thread and remembers which
//! ones it blocked itself; it unblocks exactly those when the last watcher
//! goes and when it is dropped, so the thread's mask ends as it was found.

use super::{Loop, SignalFn};
use crate::backend::Backend;
use crate::error::Error;
use crate::interest::{Interest, Trigger};
use crate::sys::signalfd::{self, SignalfdSiginfo};
use crate::sys::{Errno, MAX_SIGNAL, MaskHow, OwnedFd, SigSet, sigprocmask};
use crate::table::Key;

/// Names one signal registration. Goes stale when cancelled or replaced by
/// a later registration for the same signal.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct SignalId {
    signo: u8,
    generation: u32,
}

/// What a signal callback is told: which signal, how many records arrived
/// since the last callback for it, and the last record's details.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SignalEvent {
    id: SignalId,
    count: u32,
    info: SignalfdSiginfo,
    data: u64,
}

impl SignalEvent {
    /// The registration this is for.
    pub fn id(&self) -> SignalId {
        self.id
    }
    /// The signal number.
    pub fn signo(&self) -> i32 {
        i32::from(self.id.signo)
    }
    /// Records read in this pass (standard signals coalesce in the kernel;
    /// real-time signals queue, and each queued one counts).
    pub fn count(&self) -> u32 {
        self.count
    }
    /// The sender's pid (for SIGCHLD: the child's), from the last record.
    pub fn pid(&self) -> i32 {
        self.info.ssi_pid as i32
    }
    /// The sender's real uid, from the last record.
    pub fn uid(&self) -> u32 {
        self.info.ssi_uid
    }
    /// The signal code (`SI_USER` = 0, `SI_QUEUE` = -1, `CLD_EXITED` = 1, ...).
    pub fn code(&self) -> i32 {
        self.info.ssi_code
    }
    /// For SIGCHLD, the exit code or signal; from the last record.
    pub fn status(&self) -> i32 {
        self.info.ssi_status
    }
    /// The value a `sigqueue` sender attached, from the last record.
    pub fn value(&self) -> u64 {
        self.info.ssi_ptr
    }
    /// The whole last record.
    pub fn info(&self) -> &SignalfdSiginfo {
        &self.info
    }
    /// The registration's user data.
    pub fn data(&self) -> u64 {
        self.data
    }
}

/// The loop's signal state: one slot per signal number, the signalfd, and
/// which signals the loop blocked itself.
pub(crate) struct Signals<F> {
    slots: [Option<(u32, F, u64)>; 65],
    generations: [u32; 65],
    fd: Option<OwnedFd>,
    /// What the signalfd currently listens to.
    in_fd: SigSet,
    /// Signals the loop blocked that were not blocked when it found the mask.
    blocked_by_us: SigSet,
    /// Signals the loop needs for itself (SIGCHLD for child reaping).
    internal: SigSet,
    /// Per-pass accumulation: records counted and the last one, per signal.
    counts: [u32; 65],
    last: [SignalfdSiginfo; 65],
    /// Where records are read into (kept here: no 2 KB zeroing per pass).
    buf: [SignalfdSiginfo; READ_BATCH],
}

impl<F: Copy> Signals<F> {
    pub(crate) fn new() -> Self {
        Signals {
            slots: [None; 65],
            generations: [0; 65],
            fd: None,
            in_fd: SigSet::empty(),
            blocked_by_us: SigSet::empty(),
            internal: SigSet::empty(),
            counts: [0; 65],
            last: [SignalfdSiginfo::default(); 65],
            buf: [SignalfdSiginfo::default(); READ_BATCH],
        }
    }

    pub(crate) fn fd(&self) -> Option<crate::sys::RawFd> {
        self.fd.as_ref().map(OwnedFd::as_raw_fd)
    }

    fn wanted(&self) -> SigSet {
        let mut set = self.internal;
        for (signo, slot) in self.slots.iter().enumerate() {
            if slot.is_some() {
                set = set.with(signo as i32);
            }
        }
        set
    }

    /// Unblocks what the loop blocked; for loop drop and for the last watcher.
    pub(crate) fn restore_mask(&mut self) {
        if !self.blocked_by_us.is_empty() {
            let _ = sigprocmask(MaskHow::Unblock, self.blocked_by_us);
            self.blocked_by_us = SigSet::empty();
        }
    }
}

/// The reserved key of the loop's signalfd.
pub(crate) const SIGNAL_KEY: Key = Key { slot: u32::MAX - 2, generation: 0 };

/// Records read from the signalfd per read call.
const READ_BATCH: usize = 16;

impl<C, const W: usize, const T: usize, B: Backend> Loop<C, W, T, B> {
    /// Calls `callback` once per pass in which `signo` arrived, with the
    /// number of records and the last one's details. A later registration
    /// for the same signal replaces this one.
    ///
    /// The signal is blocked in the calling thread and read through a
    /// signalfd. Signal masks are per thread: block it in every other
    /// thread too (or start them after this call, as they inherit the
    /// mask), or the kernel may deliver it to one of them instead.
    ///
    /// `Os(EINVAL)` for SIGKILL, SIGSTOP, 0 and numbers above 64.
    pub fn signal(&mut self, signo: i32, callback: SignalFn<C, W, T, B>, data: u64) -> Result<SignalId, Error> {
        if !(1..=MAX_SIGNAL).contains(&signo) || signo == 9 || signo == 19 {
            return Err(Error::Os(Errno::EINVAL));
        }
        let i = signo as usize;
        let previous = self.signals.slots[i];
        let generation = self.signals.generations[i].wrapping_add(1);
        self.signals.slots[i] = Some((generation, callback, data));
        if let Err(e) = self.sync_signals() {
            self.signals.slots[i] = previous;
            return Err(e);
        }
        self.signals.generations[i] = generation;
        Ok(SignalId { signo: signo as u8, generation })
    }

    /// Removes a signal registration. Returns whether it was live;
    /// idempotent, and never touches a later registration for the signal.
    pub fn cancel_signal(&mut self, id: SignalId) -> bool {
        let i = usize::from(id.signo);
        match self.signals.slots.get(i) {
            Some(Some((generation, _, _))) if *generation == id.generation => {
                self.signals.slots[i] = None;
                // Shrinking the mask cannot fail for a valid fd; if it did,
                // the extra signal is read and dropped, which is harmless.
                let _ = self.sync_signals();
                true
            }
            _ => false,
        }
    }

    /// Whether the registration is live.
    pub fn is_signal_live(&self, id: SignalId) -> bool {
        matches!(self.signals.slots.get(usize::from(id.signo)), Some(Some((g, _, _))) if *g == id.generation)
    }

    /// Marks signals the loop needs for itself (SIGCHLD for children).
    pub(crate) fn set_internal_signals(&mut self, set: SigSet) -> Result<(), Error> {
        let previous = self.signals.internal;
        self.signals.internal = set;
        self.sync_signals().inspect_err(|_| self.signals.internal = previous)
    }

    /// Brings the thread mask and the signalfd in line with the wanted set:
    /// block before listening, stop listening before unblocking.
    fn sync_signals(&mut self) -> Result<(), Error> {
        let wanted = self.signals.wanted();
        if wanted.is_empty() {
            if let Some(fd) = self.signals.fd.take() {
                let _ = self.backend.deregister(fd.as_raw_fd());
            }
            self.signals.in_fd = SigSet::empty();
            self.signals.restore_mask();
            return Ok(());
        }
        let to_block =
            SigSet::from_bits(wanted.bits() & !self.signals.in_fd.bits() & !self.signals.blocked_by_us.bits());
        if !to_block.is_empty() {
            let old = sigprocmask(MaskHow::Block, to_block)?;
            let newly = to_block.bits() & !old.bits();
            self.signals.blocked_by_us = SigSet::from_bits(self.signals.blocked_by_us.bits() | newly);
        }
        match &self.signals.fd {
            Some(fd) => {
                signalfd::signalfd(Some(fd.as_raw_fd()), wanted)?;
            }
            None => {
                let fd = signalfd::signalfd(None, wanted)?.ok_or(Error::Os(Errno::EBADF))?;
                self.backend.register(fd.as_raw_fd(), SIGNAL_KEY.to_u64(), Interest::READ, Trigger::Level)?;
                self.signals.fd = Some(fd);
                self.hooks.signals = Some(Self::dispatch_signals);
                self.hooks.restore_mask = Some(|lp| lp.signals.restore_mask());
            }
        }
        self.signals.in_fd = wanted;
        Ok(())
    }

    /// Drains the signalfd and runs one callback per signal that arrived,
    /// in ascending signal number. SIGCHLD also drives child reaping.
    pub(crate) fn dispatch_signals(&mut self, ctx: &mut C) -> usize {
        let Some(fd) = self.signals.fd() else { return 0 };
        // Which signals arrived, bit n - 1 for signal n: the delivery below
        // visits only those instead of scanning all 64.
        let mut arrived = 0u64;
        loop {
            // A failed read (it cannot fail for a valid signalfd) ends the drain.
            let n = signalfd::read(fd, &mut self.signals.buf).unwrap_or_default();
            for k in 0..n {
                let rec = self.signals.buf[k];
                let i = rec.ssi_signo as usize;
                if (1..65).contains(&i) {
                    self.signals.counts[i] = self.signals.counts[i].saturating_add(1);
                    self.signals.last[i] = rec;
                    arrived |= 1 << (i - 1);
                }
            }
            if n < READ_BATCH {
                break;
            }
        }
        let mut calls = 0;
        while arrived != 0 {
            let i = arrived.trailing_zeros() as usize + 1;
            arrived &= arrived - 1;
            let count = core::mem::take(&mut self.signals.counts[i]);
            if i == crate::sys::SIGCHLD as usize && self.signals.internal.contains(i as i32) {
                calls += self.reap_children(ctx);
            }
            if let Some((generation, callback, data)) = self.signals.slots[i] {
                let id = SignalId { signo: i as u8, generation };
                let ev = SignalEvent { id, count, info: self.signals.last[i], data };
                callback(self, ctx, ev);
                calls += 1;
            }
        }
        calls
    }
}
