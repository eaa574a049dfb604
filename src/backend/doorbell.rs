//! `Waker`: wakes a loop from any thread by ringing its doorbell (an
//! eventfd for the kernel backends, a simulated one on `Sim`).
//!
//! A waker names a slot of a process-wide table, not an fd: the loop gives
//! up its doorbell only after marking the slot dead and waiting out signals
//! in flight, so a waker that outlives its loop gets `Error::Closed` and can
//! never write into an fd number the process has reused. This is the one
//! kernel object other threads touch, which is why it lives in the kernel
//! face rather than with the loop.

use super::kernel::Ring;
use crate::error::Error;
use crate::sys::{RawFd, eventfd};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::*};

/// How many loops in one process can hold a waker at the same time.
pub const MAX_WAKERS: usize = 128;

const USERS: u64 = (1 << 31) - 1;
const LIVE: u64 = 1 << 31;

/// One loop's waker state, shared with every thread that holds its `Waker`.
struct Slot {
    /// `generation << 32 | LIVE | users in flight`.
    state: AtomicU64,
    /// The eventfd to ring plus one: 0 means none (a simulated doorbell, or
    /// a free slot), so the table starts all zero and lives in `.bss`
    /// rather than taking 3 KB of a static binary's `.data`.
    fd_plus_one: AtomicI32,
    /// Signals not yet drained (the coalesced count).
    pending: AtomicU64,
    /// A signal came since the loop last looked.
    rung: AtomicBool,
    /// The loop is, or is about to be, blocked in the kernel.
    sleeping: AtomicBool,
}

impl Slot {
    fn fd(&self) -> RawFd {
        self.fd_plus_one.load(Acquire) - 1
    }

    /// Adds `n` to the count; whether the doorbell must ring for it.
    fn count(&self, n: u64) -> bool {
        // Saturate: a count that wrapped to 0 would lose the wake-up.
        let _ = self.pending.fetch_update(SeqCst, SeqCst, |c| Some(c.saturating_add(n)));
        // Only the signal that rings first since the loop last looked needs
        // the doorbell, and only if the loop sleeps: a later one finds the
        // bell rung, and a loop about to sleep sees `rung` and does not.
        let first = !self.rung.swap(true, SeqCst);
        first && self.sleeping.load(SeqCst)
    }
}

#[allow(clippy::declare_interior_mutable_const)] // a template for the static array
const EMPTY: Slot = Slot {
    state: AtomicU64::new(0),
    fd_plus_one: AtomicI32::new(0),
    pending: AtomicU64::new(0),
    rung: AtomicBool::new(false),
    sleeping: AtomicBool::new(false),
};

static SLOTS: [Slot; MAX_WAKERS] = [EMPTY; MAX_WAKERS];

/// A handle that wakes one loop from any thread: `Send + Sync + Copy`.
///
/// Signals coalesce: the loop sees their count, not each one. Once the loop
/// is dropped, every method returns [`Error::Closed`].
///
/// ```
/// use linux_event::Loop;
/// struct App;
/// let mut lp: Loop<App> = Loop::new().unwrap();
/// let waker = lp.waker().unwrap();
/// std::thread::spawn(move || waker.signal(1).unwrap()).join().unwrap();
/// assert_eq!(waker.drain(), Ok(1));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Waker {
    slot: u32,
    generation: u32,
}

impl Waker {
    /// Adds `n` to the count and wakes the loop if it is blocked.
    ///
    /// Skips the eventfd write (a syscall) when the loop is not blocked: it
    /// looks at the count before it blocks again.
    pub fn signal(&self, n: u64) -> Result<(), Error> {
        let slot = self.enter()?;
        let result =
            if slot.count(n) && slot.fd() >= 0 { eventfd::add(slot.fd(), 1).map_err(Error::Os) } else { Ok(()) };
        slot.state.fetch_sub(1, Release);
        result
    }

    /// [`signal`](Self::signal) without ringing: adds `n` and returns
    /// whether the doorbell must ring (the simulation rings its own).
    pub(crate) fn count(&self, n: u64) -> Result<bool, Error> {
        let slot = self.enter()?;
        let ring = slot.count(n);
        slot.state.fetch_sub(1, Release);
        Ok(ring)
    }

    /// Takes the count of signals since the last drain (0 when none).
    pub fn drain(&self) -> Result<u64, Error> {
        let slot = self.enter()?;
        let n = slot.pending.swap(0, SeqCst);
        slot.state.fetch_sub(1, Release);
        Ok(n)
    }

    /// Marks this thread as using the slot, if the loop is still alive.
    fn enter(&self) -> Result<&'static Slot, Error> {
        let slot = SLOTS.get(self.slot as usize).ok_or(Error::Closed)?;
        let mut s = slot.state.load(Acquire);
        loop {
            if s >> 32 != u64::from(self.generation) || s & LIVE == 0 || s & USERS == USERS {
                return Err(Error::Closed);
            }
            match slot.state.compare_exchange_weak(s, s + 1, AcqRel, Acquire) {
                Ok(_) => return Ok(slot),
                Err(now) => s = now,
            }
        }
    }
}

/// The loop's side of its waker: owns the slot (the doorbell object itself
/// is owned by the waker source, and outlives this).
#[derive(Debug)]
pub(crate) struct Doorbell {
    waker: Waker,
}

impl Doorbell {
    /// Claims a free slot for a doorbell that rings `ring`. `Capacity` when
    /// all are taken.
    pub(crate) fn new(ring: Ring) -> Result<Doorbell, Error> {
        let fd = match ring {
            Ring::Eventfd(fd) => fd,
            Ring::Virtual => -1,
        };
        for (i, slot) in SLOTS.iter().enumerate() {
            let s = slot.state.load(Acquire);
            if s & (LIVE | USERS) != 0 {
                continue;
            }
            let generation = (s >> 32).wrapping_add(1) & u64::from(u32::MAX);
            let claimed = (generation << 32) | LIVE;
            // Publish the fd and a clean state before the slot goes live.
            if slot.state.compare_exchange(s, s | USERS, AcqRel, Acquire).is_err() {
                continue;
            }
            slot.fd_plus_one.store(fd + 1, Release);
            slot.pending.store(0, SeqCst);
            slot.rung.store(false, SeqCst);
            slot.sleeping.store(false, SeqCst);
            slot.state.store(claimed, Release);
            return Ok(Doorbell { waker: Waker { slot: i as u32, generation: generation as u32 } });
        }
        Err(Error::Capacity)
    }

    pub(crate) fn waker(&self) -> Waker {
        self.waker
    }

    fn slot(&self) -> &'static Slot {
        &SLOTS[self.waker.slot as usize]
    }

    /// Watches the bell for up to `spins` rounds of `spin_loop` (about 25 ns
    /// each on this project's machines), without announcing a sleep, so a
    /// signaller on another CPU is seen without a blocking wait on this side
    /// and an eventfd write on its side. Whether it rang. A simulated
    /// doorbell is never polled: nothing can ring it meanwhile.
    pub(crate) fn poll(&self, spins: u32) -> bool {
        let slot = self.slot();
        if slot.fd_plus_one.load(Relaxed) == 0 {
            return false;
        }
        for _ in 0..spins {
            if slot.rung.load(Relaxed) {
                // `after_wake` takes it (SeqCst), and the count with it.
                return true;
            }
            core::hint::spin_loop();
        }
        false
    }

    /// Before a wait that may block: announce it, and report whether a signal
    /// already came (then the wait must not block).
    pub(crate) fn before_sleep(&self) -> bool {
        let slot = self.slot();
        slot.sleeping.store(true, SeqCst);
        if slot.rung.load(SeqCst) {
            slot.sleeping.store(false, SeqCst);
            return true;
        }
        false
    }

    /// The wait failed: no longer blocked, and whatever rang stays for the
    /// next pass (nothing is taken).
    pub(crate) fn cancel_sleep(&self) {
        self.slot().sleeping.store(false, SeqCst);
    }

    /// After the wait: no longer blocked (the caller resets a doorbell that
    /// rang). Returns whether any signal came since the last call.
    pub(crate) fn after_wake(&self) -> bool {
        let slot = self.slot();
        slot.sleeping.store(false, SeqCst);
        slot.rung.swap(false, SeqCst)
    }

    /// Takes the coalesced count.
    pub(crate) fn drain(&self) -> u64 {
        self.slot().pending.swap(0, SeqCst)
    }
}

impl Drop for Doorbell {
    fn drop(&mut self) {
        let slot = self.slot();
        slot.state.fetch_and(!LIVE, AcqRel);
        // Wait out signal() calls that entered before the slot died: each is one
        // short write, and none can enter any more. After this nobody rings
        // the doorbell, and its owner may close it.
        while slot.state.load(Acquire) & USERS != 0 {
            core::hint::spin_loop();
        }
        slot.fd_plus_one.store(0, Release);
    }
}
