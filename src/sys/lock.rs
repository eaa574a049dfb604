//! The one small lock the crate's shared tables use: a value guarded by a
//! three-state word (0 free, 1 held, 2 held with sleepers), the classic
//! futex mutex. Uncontended, locking is one compare-and-swap and unlocking
//! one swap: no system call. A contended lock spins briefly (its holders
//! never make system calls or run user code while they hold it), then
//! sleeps in `FUTEX_WAIT` on a private futex.
//!
//! An all-zero `Lock<T>` is a free lock, so it can sit in zeroed shared
//! memory when `T` can (see [`Zeroed`]).

use super::futex;
#[cfg(feature = "files")]
use super::shared_mem::Zeroed;
use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU32, Ordering::*};

const FREE: u32 = 0;
const HELD: u32 = 1;
const CONTENDED: u32 = 2;

/// How many times a contended lock spins before it sleeps: holders keep it
/// for a few table operations, so most waits end while spinning.
const SPINS: u32 = 100;

/// A value shared between threads, reached only through [`Lock::lock`].
///
/// No poisoning: a panic while the guard is held unlocks on unwind (the
/// code that holds it in this crate does not panic).
pub(crate) struct Lock<T> {
    word: AtomicU32,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through a guard, and at most one guard
// exists at a time (the word's compare-and-swap hands it out), so sharing
// the lock shares the value with one thread at a time, which `T: Send` allows.
unsafe impl<T: Send> Sync for Lock<T> {}
// SAFETY: a zero word is FREE, and the value is zero-valid when `T` is.
#[cfg(feature = "files")]
unsafe impl<T: Zeroed> Zeroed for Lock<T> {}

impl<T> Lock<T> {
    /// An unlocked lock holding `value` (usable in a `static`). The file
    /// workers' lock is never built: it starts as zeroed memory.
    #[cfg_attr(not(feature = "virt"), allow(dead_code))]
    pub(crate) const fn new(value: T) -> Self {
        Lock { word: AtomicU32::new(FREE), value: UnsafeCell::new(value) }
    }

    /// Waits until the lock is free and takes it.
    pub(crate) fn lock(&self) -> Guard<'_, T> {
        if self.word.compare_exchange(FREE, HELD, Acquire, Relaxed).is_err() {
            self.lock_contended();
        }
        Guard { lock: self }
    }

    #[cold]
    fn lock_contended(&self) {
        for _ in 0..SPINS {
            core::hint::spin_loop();
            if self.word.load(Relaxed) == FREE && self.word.compare_exchange(FREE, HELD, Acquire, Relaxed).is_ok() {
                return;
            }
        }
        // Announce a sleeper (2) before sleeping, so the unlocker wakes us;
        // taking the lock this way leaves it marked contended, which costs
        // at most one unneeded wake-up.
        while self.word.swap(CONTENDED, Acquire) != FREE {
            let _ = futex::wait(&self.word, CONTENDED, None, true);
        }
    }
}

/// Holds a [`Lock`]; unlocks when dropped.
pub(crate) struct Guard<'a, T> {
    lock: &'a Lock<T>,
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard is the only one (see `Sync`), so no `&mut` to
        // the value exists while this reference lives.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        if self.lock.word.swap(FREE, Release) == CONTENDED {
            let _ = futex::wake(&self.lock.word, 1, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_exclude_each_other_across_threads() {
        static COUNTER: Lock<u64> = Lock::new(0);
        let threads: std::vec::Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..20_000 {
                        let mut g = COUNTER.lock();
                        // A read-modify-write split in two: a lost update
                        // shows if two guards ever overlap.
                        let v = *g;
                        core::hint::spin_loop();
                        *g = v + 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*COUNTER.lock(), 80_000);
        assert_eq!(COUNTER.word.load(SeqCst), FREE);
    }

    #[test]
    fn a_sleeper_is_woken_by_unlock() {
        static L: Lock<u32> = Lock::new(0);
        let g = L.lock();
        let t = std::thread::spawn(|| *L.lock());
        // The other thread spins, then sleeps on the word (marked contended).
        while L.word.load(SeqCst) != CONTENDED {
            std::thread::yield_now();
        }
        drop(g);
        assert_eq!(t.join().unwrap(), 0);
        assert_eq!(L.word.load(SeqCst), FREE);
    }
}
