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
    /// The bell rang in the last pass: poll it briefly before blocking.
    poll: bool,
    /// How long to poll it (rounds of `spin_loop`): doubled when a poll
    /// saw a signal, halved when it did not (a signaller that shares this
    /// thread's CPU cannot signal while it spins), within
    /// [`POLL_SPINS_MIN`]`..=`[`POLL_SPINS_MAX`].
    spins: u32,
}

/// The bounds of the bell poll before a blocking wait, in rounds of
/// `spin_loop` (about 25 ns each here: 0.1 to 6.4 us).
pub(crate) const POLL_SPINS_MIN: u32 = 4;
pub(crate) const POLL_SPINS_MAX: u32 = 256;

impl<F: Copy, K: Kernel> WakerSource<F, K> {
    pub(crate) const fn new() -> Self {
        WakerSource { bell: None, callback: None, generation: 0, poll: false, spins: POLL_SPINS_MAX }
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
    /// the wait must not block). After a pass in which the bell rang, and
    /// only before a wait that could block, the bell is polled for a few
    /// microseconds first, so a stream of signals from another CPU is taken
    /// pass after pass without blocking in between (each block and wake-up
    /// costs tens of microseconds on a VM). A loop whose bell is quiet never
    /// polls: an idle loop burns no CPU.
    pub(crate) fn before_sleep(&mut self, could_block: bool) -> bool {
        let Some((bell, _)) = &self.bell else { return false };
        if core::mem::take(&mut self.poll) && could_block {
            if bell.poll(self.spins) {
                self.spins = (self.spins * 2).min(POLL_SPINS_MAX);
                return true;
            }
            self.spins = (self.spins / 2).max(POLL_SPINS_MIN);
        }
        bell.before_sleep()
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
        self.poll = true;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Epoll;

    type Source = WakerSource<fn(), Epoll>;

    /// A source with its bell, after one pass in which the bell rang.
    fn rang_once(k: &mut Epoll) -> (Source, Waker) {
        let mut s = Source::new();
        let waker = s.waker(k).unwrap();
        s.set_callback(k, || {}, 0).unwrap();
        waker.signal(1).unwrap();
        assert!(s.after_wake(k, false).is_some());
        (s, waker)
    }

    #[test]
    fn a_quiet_bell_is_not_polled_and_a_fruitless_poll_halves_the_next() {
        let mut k = Epoll::new().unwrap();
        let mut s = Source::new();
        s.waker(&mut k).unwrap();
        // Never rang: no poll, the budget untouched.
        assert!(!s.before_sleep(true));
        assert_eq!(s.spins, POLL_SPINS_MAX);
        s.bell.as_ref().unwrap().0.cancel_sleep();
        let (mut s, _waker) = rang_once(&mut k);
        // Not before a wait that cannot block: no poll either.
        assert!(!s.before_sleep(false));
        assert_eq!(s.spins, POLL_SPINS_MAX);
        s.bell.as_ref().unwrap().0.cancel_sleep();
        for expected in [POLL_SPINS_MAX / 2, POLL_SPINS_MAX / 4] {
            s.poll = true;
            assert!(!s.before_sleep(true), "nothing rang");
            assert_eq!(s.spins, expected);
            s.bell.as_ref().unwrap().0.cancel_sleep();
        }
        for _ in 0..20 {
            s.poll = true;
            s.before_sleep(true);
            s.bell.as_ref().unwrap().0.cancel_sleep();
        }
        assert_eq!(s.spins, POLL_SPINS_MIN);
    }

    #[test]
    fn a_poll_that_sees_a_signal_keeps_the_loop_awake_and_doubles_the_next() {
        let mut k = Epoll::new().unwrap();
        let (mut s, waker) = rang_once(&mut k);
        s.spins = POLL_SPINS_MIN;
        waker.signal(2).unwrap();
        assert!(s.before_sleep(true), "the signal is seen without announcing a sleep");
        assert_eq!(s.spins, 2 * POLL_SPINS_MIN);
        let (_, event) = s.after_wake(&mut k, false).unwrap();
        assert_eq!(event.count, 2);
        // The signal found the loop awake: no eventfd write was needed.
        assert_eq!(crate::sys::eventfd::take(s.fd().unwrap()), Ok(0));
    }
}
