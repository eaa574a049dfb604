//! The signal source: one signalfd per loop, the thread-mask holds its
//! watchers need, and the per-pass drain that coalesces records into one
//! callback per signal.
//!
//! Every kernel object is reached through the kernel face. Ordering is what
//! keeps the thread's mask right: the signalfd listens before the mask is
//! held (a failure in either undoes the other, so a failed registration
//! leaves the mask exactly as it was), and the signalfd stops listening
//! before the hold is given back (which unblocks only what no holder in
//! the thread needs, after discarding what is still pending).

use crate::backend::{Kernel, ObjectFd};
use crate::error::Error;
use crate::interest::{Interest, Trigger};
use crate::sys::{Errno, MAX_SIGNAL, SigSet, SignalfdSiginfo};
use crate::table::Key;

/// Names one signal registration. Goes stale when removed or replaced by
/// a later registration for the same signal.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct SignalId {
    pub(crate) signo: u8,
    pub(crate) generation: u32,
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

#[derive(Copy, Clone)]
struct Registration<F> {
    generation: u32,
    callback: F,
    data: u64,
}

/// Records read from the signalfd per read call.
const READ_BATCH: usize = 16;

// In this order (`repr(C)`): what every pass touches first, the records
// last, so a loop that sees few kinds of signal touches few of its pages
// (the records are 10 KB, most never written).
#[repr(C)]
pub(crate) struct SignalSource<F, K: Kernel> {
    /// The signalfd. The only field whose empty state is not all-zero
    /// bytes (empty sets, zero counts and generations, `None`
    /// registrations: a registration holds a callback, a non-null
    /// pointer), so a loop made in place writes it alone and leaves the
    /// 12 KB of per-signal records untouched zero pages
    /// (`event_loop/place.rs`).
    pub(crate) fd: Option<K::Fd>,
    /// What the signalfd listens to.
    listening: SigSet,
    /// What this loop holds in its thread's mask, and which thread that is.
    held: SigSet,
    holder: i32,
    /// Signals the loop needs for itself (SIGCHLD for children).
    internal: SigSet,
    generations: [u32; 65],
    /// Per-pass accumulation: records counted and the last one, per signal.
    counts: [u32; 65],
    slots: [Option<Registration<F>>; 65],
    /// Where records are read into (kept here: no 2 KB zeroing per pass).
    buf: [SignalfdSiginfo; READ_BATCH],
    last: [SignalfdSiginfo; 65],
}

impl<F: Copy, K: Kernel> SignalSource<F, K> {
    pub(crate) const fn new() -> Self {
        SignalSource {
            slots: [None; 65],
            generations: [0; 65],
            fd: None,
            listening: SigSet::empty(),
            held: SigSet::empty(),
            holder: 0,
            internal: SigSet::empty(),
            counts: [0; 65],
            last: [SignalfdSiginfo::zeroed(); 65],
            buf: [SignalfdSiginfo::zeroed(); READ_BATCH],
        }
    }

    /// Whether the signalfd exists (then a signal can still wake the loop).
    pub(crate) fn is_open(&self) -> bool {
        self.fd.is_some()
    }

    /// The signalfd's number, if there is one.
    pub(crate) fn fd(&self) -> Option<crate::sys::RawFd> {
        self.fd.as_ref().map(ObjectFd::raw)
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

    /// Registers `callback` for `signo`, replacing an earlier registration.
    pub(crate) fn add(&mut self, k: &mut K, signo: i32, callback: F, data: u64) -> Result<SignalId, Error> {
        if !(1..=MAX_SIGNAL).contains(&signo) || signo == 9 || signo == 19 {
            return Err(Error::Os(Errno::EINVAL));
        }
        let i = signo as usize;
        let generation = self.generations[i].wrapping_add(1);
        let previous = self.slots[i].replace(Registration { generation, callback, data });
        if let Err(e) = self.sync(k) {
            self.slots[i] = previous;
            return Err(e);
        }
        self.generations[i] = generation;
        Ok(SignalId { signo: signo as u8, generation })
    }

    /// Removes a registration; whether it was live. Never touches a later
    /// registration for the same signal.
    pub(crate) fn remove(&mut self, k: &mut K, id: SignalId) -> bool {
        if !self.is_live(id) {
            return false;
        }
        self.slots[usize::from(id.signo)] = None;
        // Shrinking cannot fail in a way that matters: a signalfd that
        // keeps listening to one signal more reads and drops it.
        let _ = self.sync(k);
        true
    }

    pub(crate) fn is_live(&self, id: SignalId) -> bool {
        matches!(self.slots.get(usize::from(id.signo)), Some(Some(r)) if r.generation == id.generation)
    }

    pub(crate) fn set_data(&mut self, id: SignalId, data: u64) -> bool {
        match self.slots.get_mut(usize::from(id.signo)) {
            Some(Some(r)) if r.generation == id.generation => {
                r.data = data;
                true
            }
            _ => false,
        }
    }

    /// Marks the signals the loop needs for itself.
    #[cfg(feature = "children")]
    pub(crate) fn set_internal(&mut self, k: &mut K, set: SigSet) -> Result<(), Error> {
        let previous = self.internal;
        self.internal = set;
        self.sync(k).inspect_err(|_| self.internal = previous)
    }

    #[cfg(feature = "children")]
    pub(crate) fn is_internal(&self, signo: i32) -> bool {
        self.internal.contains(signo)
    }

    /// Brings the signalfd and the thread-mask holds in line with what the
    /// registrations want. On error nothing changed.
    fn sync(&mut self, k: &mut K) -> Result<(), Error> {
        let wanted = self.wanted();
        let to_hold = SigSet::from_bits(wanted.bits() & !self.held.bits());
        let to_release = SigSet::from_bits(self.held.bits() & !wanted.bits());
        if !to_hold.is_empty() && !self.held.is_empty() && k.thread_id() != self.holder {
            // The loop moved: its watchers hold another thread's mask.
            return Err(Error::WrongThread);
        }
        // Listen first, then hold: the mask changes only once the signalfd
        // is certain to exist.
        let before = self.listening;
        self.listen(k, wanted)?;
        if !to_hold.is_empty() {
            if let Err(e) = k.mask_hold(to_hold) {
                // Undo the listening change (shrinking back cannot fail in
                // a way that leaves the mask wrong).
                let _ = self.listen(k, before);
                return Err(e);
            }
            if self.held.is_empty() {
                self.holder = k.thread_id();
            }
            self.held = SigSet::from_bits(self.held.bits() | to_hold.bits());
        }
        if !to_release.is_empty() {
            k.mask_release(self.holder, to_release);
            self.held = SigSet::from_bits(self.held.bits() & !to_release.bits());
        }
        Ok(())
    }

    /// Makes the signalfd listen to `set`: made (and registered) on first
    /// need, closed when `set` is empty.
    fn listen(&mut self, k: &mut K, set: SigSet) -> Result<(), Error> {
        if set == self.listening && (self.fd.is_some() || set.is_empty()) {
            return Ok(());
        }
        if set.is_empty() {
            if let Some(fd) = self.fd.take() {
                let _ = k.deregister(fd.raw(), Key::SIGNALS.to_u64());
                k.release(fd);
            }
            self.listening = set;
            return Ok(());
        }
        match &self.fd {
            Some(fd) => k.signalfd_mask(fd, set)?,
            None => {
                let fd = k.signalfd_open(set)?;
                if let Err(e) = k.register(fd.raw(), Key::SIGNALS.to_u64(), Interest::READ, Trigger::Level) {
                    k.release(fd);
                    return Err(e.into());
                }
                self.fd = Some(fd);
            }
        }
        self.listening = set;
        Ok(())
    }

    /// Gives everything back (loop drop): the signalfd goes, then the holds.
    pub(crate) fn close(&mut self, k: &mut K) {
        self.slots = [None; 65];
        self.internal = SigSet::empty();
        let _ = self.sync(k);
    }

    /// Reads every pending record; returns which signals arrived (bit
    /// `n - 1` for signal `n`), their counts kept for [`take`](Self::take).
    pub(crate) fn drain(&mut self, k: &mut K) -> u64 {
        let Some(fd) = &self.fd else { return 0 };
        let mut arrived = 0u64;
        loop {
            // A failed read (it cannot fail for a valid signalfd) ends the drain.
            let n = k.signalfd_read(fd, &mut self.buf).unwrap_or_default();
            // (`take`, not `[..n]`: no panic path for a count the kernel bounds.)
            for rec in self.buf.iter().take(n) {
                let i = rec.ssi_signo as usize;
                if (1..65).contains(&i) {
                    self.counts[i] = self.counts[i].saturating_add(1);
                    self.last[i] = *rec;
                    arrived |= 1 << (i - 1);
                }
            }
            if n < READ_BATCH {
                return arrived;
            }
        }
    }

    /// The callback and event for `signo` after a drain, if it is watched
    /// (the count is reset either way).
    pub(crate) fn take(&mut self, signo: i32) -> Option<(F, SignalEvent)> {
        let i = signo as usize;
        let count = core::mem::take(&mut self.counts[i]);
        let r = self.slots[i]?;
        let id = SignalId { signo: signo as u8, generation: r.generation };
        Some((r.callback, SignalEvent { id, count, info: self.last[i], data: r.data }))
    }
}
