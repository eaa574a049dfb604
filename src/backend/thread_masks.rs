//! The process-wide ledger of signal-mask holds: per thread, how many
//! holders (signal watchers of any loop) want each signal blocked, and
//! which of those signals the thread blocked on their behalf.
//!
//! Masks are per thread and shared by every loop in the thread, so a loop
//! cannot simply block on its first watcher and unblock on its last: two
//! loops in one thread watching SIGUSR1 must keep it blocked until both are
//! gone. Only a thread can change its own mask; a release made on another
//! thread (a loop moved and dropped there) is recorded as owed and carried
//! out by the owning thread at its next hold or release.
//!
//! All state is atomics behind one spin lock bit; the critical sections are
//! a handful of `rt_sigprocmask` calls. Nothing here allocates.

use crate::error::Error;
use crate::sys::{self, MaskHow, SigSet};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU16, AtomicU64, Ordering::*};

/// How many threads can hold signal watchers at the same time.
pub const MAX_SIGNAL_THREADS: usize = 64;

struct Entry {
    /// The thread, 0 while the entry is free.
    tid: AtomicI32,
    /// Holders per signal (index = signal number).
    holds: [AtomicU16; 65],
    /// Signals this ledger blocked in the thread (bit `signo - 1`).
    blocked_by_us: AtomicU64,
    /// Signals to unblock that another thread released (bit `signo - 1`).
    owed: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)] // a template for the static array
const FREE: Entry = Entry {
    tid: AtomicI32::new(0),
    holds: [const { AtomicU16::new(0) }; 65],
    blocked_by_us: AtomicU64::new(0),
    owed: AtomicU64::new(0),
};

static ENTRIES: [Entry; MAX_SIGNAL_THREADS] = [FREE; MAX_SIGNAL_THREADS];
static LOCKED: AtomicBool = AtomicBool::new(false);

/// Holds the ledger's lock; every field is read and written only under it
/// (so `Relaxed` suffices inside: the lock's Acquire/Release orders them).
struct Guard;

impl Guard {
    fn lock() -> Guard {
        while LOCKED.compare_exchange_weak(false, true, Acquire, Relaxed).is_err() {
            core::hint::spin_loop();
        }
        Guard
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        LOCKED.store(false, Release);
    }
}

fn entry_of(tid: i32) -> Option<&'static Entry> {
    ENTRIES.iter().find(|e| e.tid.load(Relaxed) == tid)
}

fn bit(signo: i32) -> u64 {
    1 << (signo - 1)
}

/// Blocks `set` in the calling thread for one more holder of each signal.
/// `Capacity` when [`MAX_SIGNAL_THREADS`] other threads already hold
/// signals (or a signal has 65535 holders); on error nothing changed.
pub(crate) fn hold(set: SigSet) -> Result<(), Error> {
    if set.is_empty() {
        return Ok(());
    }
    let tid = sys::gettid();
    let _guard = Guard::lock();
    let entry = match entry_of(tid) {
        Some(e) => e,
        None => {
            let e = entry_of(0).ok_or(Error::Capacity)?;
            e.tid.store(tid, Relaxed);
            e
        }
    };
    // Owed unblocks of signals held again are void: they stay blocked.
    entry.owed.fetch_and(!set.bits(), Relaxed);
    settle(entry);
    let mut fresh = 0u64;
    for signo in set.iter() {
        let n = entry.holds[signo as usize].load(Relaxed);
        if n == u16::MAX {
            free_if_idle(entry);
            return Err(Error::Capacity);
        }
        if n == 0 {
            fresh |= bit(signo);
        }
    }
    if fresh != 0 {
        match sys::sigprocmask(MaskHow::Block, SigSet::from_bits(fresh)) {
            Ok(old) => {
                entry.blocked_by_us.fetch_or(fresh & !old.bits(), Relaxed);
            }
            Err(e) => {
                free_if_idle(entry);
                return Err(Error::Os(e));
            }
        }
    }
    for signo in set.iter() {
        entry.holds[signo as usize].fetch_add(1, Relaxed);
    }
    Ok(())
}

/// Gives back one hold per signal of `set` taken by thread `owner`.
pub(crate) fn release(owner: i32, set: SigSet) {
    let _guard = Guard::lock();
    let Some(entry) = entry_of(owner) else { return };
    let mut idle = 0u64;
    for signo in set.iter() {
        let h = &entry.holds[signo as usize];
        let n = h.load(Relaxed);
        if n > 0 {
            h.store(n - 1, Relaxed);
            if n == 1 {
                idle |= bit(signo);
            }
        }
    }
    entry.owed.fetch_or(idle & entry.blocked_by_us.load(Relaxed), Relaxed);
    if owner == sys::gettid() {
        settle(entry);
    }
    free_if_idle(entry);
}

/// In the entry's own thread: unblocks the owed signals nobody holds,
/// discarding their pending records first (none may reach its default
/// action just because its last watcher went).
fn settle(entry: &Entry) {
    let owed = entry.owed.swap(0, Relaxed);
    if owed == 0 {
        return;
    }
    let mut unblock = 0u64;
    for signo in SigSet::from_bits(owed).iter() {
        if entry.holds[signo as usize].load(Relaxed) == 0 {
            unblock |= bit(signo);
        }
    }
    let unblock = unblock & entry.blocked_by_us.load(Relaxed);
    if unblock == 0 {
        return;
    }
    let set = SigSet::from_bits(unblock);
    // Bounded: each round takes one pending signal off; a sender flooding
    // us cannot keep this thread here forever.
    for _ in 0..4096 {
        match sys::take_pending(set) {
            Ok(Some(_)) | Err(crate::sys::Errno::EINTR) => {}
            Ok(None) | Err(_) => break,
        }
    }
    if sys::sigprocmask(MaskHow::Unblock, set).is_ok() {
        entry.blocked_by_us.fetch_and(!unblock, Relaxed);
    } else {
        entry.owed.fetch_or(unblock, Relaxed);
    }
}

fn free_if_idle(entry: &Entry) {
    let held = entry.holds.iter().any(|h| h.load(Relaxed) != 0);
    if !held && entry.owed.load(Relaxed) == 0 && entry.blocked_by_us.load(Relaxed) == 0 {
        entry.tid.store(0, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(signo: i32) -> bool {
        sys::current_mask().unwrap().contains(signo)
    }

    #[test]
    fn holds_count_per_thread_and_restore_exactly() {
        std::thread::spawn(|| {
            let usr1 = SigSet::empty().with(10);
            sys::sigprocmask(MaskHow::Unblock, usr1).unwrap();
            hold(usr1).unwrap();
            hold(usr1).unwrap();
            assert!(blocked(10));
            release(sys::gettid(), usr1);
            assert!(blocked(10), "one holder is left");
            release(sys::gettid(), usr1);
            assert!(!blocked(10), "the last holder is gone");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_signal_blocked_before_the_first_hold_stays_blocked() {
        std::thread::spawn(|| {
            let usr2 = SigSet::empty().with(12);
            sys::sigprocmask(MaskHow::Block, usr2).unwrap();
            hold(usr2).unwrap();
            release(sys::gettid(), usr2);
            assert!(blocked(12));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_pending_signal_is_discarded_not_delivered_at_the_last_release() {
        std::thread::spawn(|| {
            let sig = SigSet::empty().with(sys::SIGRTMIN + 3);
            sys::sigprocmask(MaskHow::Unblock, sig).unwrap();
            hold(sig).unwrap();
            sys::tgkill(sys::getpid(), sys::gettid(), sys::SIGRTMIN + 3).unwrap();
            // Its default action would end the test process.
            release(sys::gettid(), sig);
            assert!(!blocked(sys::SIGRTMIN + 3));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_release_from_another_thread_is_settled_by_the_owner() {
        let sig = SigSet::empty().with(sys::SIGRTMIN + 4);
        let (to_owner, owner_rx) = std::sync::mpsc::channel::<()>();
        let (to_main, main_rx) = std::sync::mpsc::channel::<i32>();
        let owner = std::thread::spawn(move || {
            sys::sigprocmask(MaskHow::Unblock, sig).unwrap();
            hold(sig).unwrap();
            to_main.send(sys::gettid()).unwrap();
            owner_rx.recv().unwrap();
            assert!(blocked(sys::SIGRTMIN + 4), "another thread cannot change this mask");
            // The owner's next ledger call carries the release out.
            hold(SigSet::empty().with(sys::SIGRTMIN + 5)).unwrap();
            assert!(!blocked(sys::SIGRTMIN + 4));
            release(sys::gettid(), SigSet::empty().with(sys::SIGRTMIN + 5));
        });
        let tid = main_rx.recv().unwrap();
        let mine = sys::current_mask().unwrap();
        release(tid, sig);
        assert_eq!(sys::current_mask().unwrap(), mine, "the releasing thread's mask is untouched");
        to_owner.send(()).unwrap();
        owner.join().unwrap();
    }
}
