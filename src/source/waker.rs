//! The waker source: the loop's doorbell (made through the kernel face on
//! first use), the handles other threads hold, and the wake-up callback run
//! once per pass in which the waker rang.
//!
//! It never makes a system call itself: the doorbell is a kernel-face
//! object, and what a ringer writes is the kernel face's business.

use crate::backend::{Doorbell, Kernel, Waker};
use crate::error::Error;
use crate::interest::{Interest, Trigger};
use crate::table::Key;

/// Names the wake-up callback registration. Goes stale when it is removed
/// or replaced by a later `on_wake`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct WakeId {
    pub(crate) generation: u32,
}

/// What a wake-up callback is told: how many `Waker::signal` counts it
/// drained (coalesced since the last one).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct WakeEvent {
    pub(crate) id: WakeId,
    pub(crate) count: u64,
    pub(crate) data: u64,
}

impl WakeEvent {
    /// The registration this is for.
    pub fn id(&self) -> WakeId {
        self.id
    }
    /// The coalesced count of signals.
    pub fn count(&self) -> u64 {
        self.count
    }
    /// The registration's user data.
    pub fn data(&self) -> u64 {
        self.data
    }
}

pub(crate) struct WakerSource<F, K: Kernel> {
    /// The slot other threads ring, then the doorbell object: dropped in
    /// this order, so nobody rings a doorbell that is gone.
    bell: Option<(Doorbell, K::Fd)>,
    callback: Option<(F, u64)>,
    generation: u32,
}

impl<F: Copy, K: Kernel> WakerSource<F, K> {
    pub(crate) const fn new() -> Self {
        WakerSource { bell: None, callback: None, generation: 0 }
    }

    /// Whether a doorbell exists (a waker was handed out): then something
    /// outside can still wake the loop.
    pub(crate) fn is_open(&self) -> bool {
        self.bell.is_some()
    }

    /// The doorbell's fd number, if there is one.
    pub(crate) fn fd(&self) -> Option<crate::sys::RawFd> {
        self.bell.as_ref().map(|(_, fd)| crate::backend::ObjectFd::raw(fd))
    }

    /// The waker, making the doorbell on first use.
    pub(crate) fn waker(&mut self, k: &mut K) -> Result<Waker, Error> {
        if let Some((bell, _)) = &self.bell {
            return Ok(bell.waker());
        }
        let (fd, ring) = k.doorbell_open()?;
        let bell = match Doorbell::new(ring) {
            Ok(bell) => bell,
            Err(e) => {
                k.release(fd);
                return Err(e);
            }
        };
        if let Err(e) =
            k.register(crate::backend::ObjectFd::raw(&fd), Key::WAKER.to_u64(), Interest::READ, Trigger::Level)
        {
            drop(bell);
            k.release(fd);
            return Err(e.into());
        }
        let waker = bell.waker();
        self.bell = Some((bell, fd));
        Ok(waker)
    }

    /// Sets the wake-up callback (replacing an earlier one).
    pub(crate) fn set_callback(&mut self, k: &mut K, callback: F, data: u64) -> Result<WakeId, Error> {
        self.waker(k)?;
        self.generation = self.generation.wrapping_add(1);
        self.callback = Some((callback, data));
        Ok(WakeId { generation: self.generation })
    }

    pub(crate) fn remove(&mut self, id: WakeId) -> bool {
        let live = self.is_live(id);
        if live {
            self.callback = None;
        }
        live
    }

    pub(crate) fn is_live(&self, id: WakeId) -> bool {
        self.callback.is_some() && id.generation == self.generation
    }

    pub(crate) fn set_data(&mut self, id: WakeId, data: u64) -> bool {
        match &mut self.callback {
            Some((_, d)) if id.generation == self.generation => {
                *d = data;
                true
            }
            _ => false,
        }
    }

    /// Before a wait that may block: whether a signal came already (then
    /// the wait must not block).
    pub(crate) fn before_sleep(&self) -> bool {
        self.bell.as_ref().is_some_and(|(bell, _)| bell.before_sleep())
    }

    /// After the wait: resets a doorbell that rang and, if any signal came
    /// since the last pass, takes the count for the wake-up callback.
    pub(crate) fn after_wake(&mut self, k: &mut K, doorbell_rang: bool) -> Option<(F, WakeEvent)> {
        let (bell, fd) = self.bell.as_ref()?;
        if doorbell_rang {
            // Level-triggered: reset it or every wait returns at once.
            k.doorbell_reset(fd);
        }
        if !bell.after_wake() {
            return None;
        }
        let (callback, data) = self.callback?;
        let count = bell.drain();
        if count == 0 {
            return None;
        }
        Some((callback, WakeEvent { id: WakeId { generation: self.generation }, count, data }))
    }

    /// The wait failed: the loop is not blocked any more, and signals that
    /// came stay for the next pass (fuzzing found a failed wait drained the
    /// count into an event nobody saw).
    pub(crate) fn wait_failed(&self) {
        if let Some((bell, _)) = &self.bell {
            bell.cancel_sleep();
        }
    }

    /// Gives the doorbell back (loop drop): its waker reports `Closed`.
    pub(crate) fn close(&mut self, k: &mut K) {
        if let Some((bell, fd)) = self.bell.take() {
            drop(bell);
            let _ = k.deregister(crate::backend::ObjectFd::raw(&fd), Key::WAKER.to_u64());
            k.release(fd);
        }
    }
}
