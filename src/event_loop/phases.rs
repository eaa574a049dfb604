//! Prepare and check callbacks (libev's names): run once per pass, right
//! before the wait and right after everything else. This is how a
//! companion batches its own kernel calls into one per pass (submit queued
//! work before the loop sleeps) and runs deferred work on a clean stack
//! (free callbacks after dispatch).
//!
//! They do not keep `run` alive, and they are not counted in what
//! `run_once` returns (that counts the callbacks events caused).

use super::{Loop, LoopTypes};
use crate::backend::Backend;
use crate::error::Error;
use heapless::Vec;

/// How many prepare callbacks, and how many check callbacks, a loop holds.
pub const PHASE_CALLBACKS: usize = 8;

/// Names a prepare callback registration.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct PrepareId(pub(crate) u32);

/// Names a check callback registration.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct CheckId(pub(crate) u32);

/// What a prepare or check callback is told.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PhaseEvent {
    pub(crate) serial: u32,
    pub(crate) data: u64,
}

impl PhaseEvent {
    /// The registration, as a prepare id (meaningful in a prepare callback).
    pub fn prepare_id(&self) -> PrepareId {
        PrepareId(self.serial)
    }
    /// The registration, as a check id (meaningful in a check callback).
    pub fn check_id(&self) -> CheckId {
        CheckId(self.serial)
    }
    /// The registration's user data.
    pub fn data(&self) -> u64 {
        self.data
    }
}

/// A prepare or check callback.
pub type PhaseFn<L> = fn(&mut L, &mut <L as LoopTypes>::Context, PhaseEvent);

/// The callbacks of one phase, in registration order. Serials are never
/// reused while the loop lives (32 bits: 4 billion registrations).
pub(crate) struct Phase<F> {
    entries: Vec<(u32, F, u64), PHASE_CALLBACKS>,
    next: u32,
}

impl<F: Copy> Phase<F> {
    pub(crate) const fn new() -> Self {
        Phase { entries: Vec::new(), next: 1 }
    }

    fn add(&mut self, callback: F, data: u64) -> Result<u32, Error> {
        let serial = self.next;
        self.entries.push((serial, callback, data)).map_err(|_| Error::Capacity)?;
        self.next = self.next.wrapping_add(1).max(1);
        Ok(serial)
    }

    pub(crate) fn remove(&mut self, serial: u32) -> bool {
        match self.entries.iter().position(|e| e.0 == serial) {
            Some(i) => {
                self.entries.remove(i);
                true
            }
            None => false,
        }
    }

    pub(crate) fn is_live(&self, serial: u32) -> bool {
        self.entries.iter().any(|e| e.0 == serial)
    }

    pub(crate) fn set_data(&mut self, serial: u32, data: u64) -> bool {
        self.entries.iter_mut().find(|e| e.0 == serial).map(|e| e.2 = data).is_some()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The first entry whose serial is above `after` (0: the first of
    /// all), for a walk that survives callbacks adding and removing
    /// entries: serials grow with registration order, so an entry added
    /// during the walk runs in it, and a removed one does not. (After 4
    /// billion registrations the serials wrap; the pass that sees the wrap
    /// may skip the entries registered after it.)
    fn next_after(&self, after: u32) -> Option<(u32, F, u64)> {
        self.entries.iter().find(|e| e.0 > after).copied()
    }
}

impl<C, const W: usize, const T: usize, B: Backend> Loop<C, W, T, B> {
    /// Runs `callback` at the start of every pass, before the loop waits
    /// (a timer it adds with a due deadline keeps the wait from blocking).
    /// `Capacity` beyond [`PHASE_CALLBACKS`]. Remove it with `remove`.
    ///
    /// ```
    /// use linux_event::Loop;
    /// let mut lp: Loop<u32> = Loop::new()?;
    /// lp.prepare(0, |lp, passes, _| {
    ///     *passes += 1;
    ///     if *passes == 3 { lp.stop(); }
    /// })?;
    /// lp.every(core::time::Duration::ZERO, 0, |_, _, _| {})?;
    /// let mut passes = 0;
    /// lp.run(&mut passes)?;
    /// assert_eq!(passes, 3);
    /// # Ok::<(), linux_event::Error>(())
    /// ```
    pub fn prepare(&mut self, data: u64, callback: PhaseFn<Self>) -> Result<PrepareId, Error> {
        self.prepares.add(callback, data).map(PrepareId)
    }

    /// Runs `callback` at the end of every pass, after the I/O, source and
    /// timer callbacks. `Capacity` beyond [`PHASE_CALLBACKS`].
    pub fn check(&mut self, data: u64, callback: PhaseFn<Self>) -> Result<CheckId, Error> {
        self.checks.add(callback, data).map(CheckId)
    }

    /// Runs the prepare (`before_wait`) or check callbacks, in order; each
    /// may add or remove any of them.
    pub(crate) fn run_phase(&mut self, ctx: &mut C, before_wait: bool) {
        let mut after = 0;
        loop {
            let phase = if before_wait { &self.prepares } else { &self.checks };
            let Some((serial, callback, data)) = phase.next_after(after) else { return };
            after = serial;
            callback(self, ctx, PhaseEvent { serial, data });
        }
    }
}
