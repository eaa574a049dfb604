//! The worker pool's control block, in memory of its own that never moves:
//! a futex mutex (`sys::lock`), the request and completion queues it guards, the word
//! idle workers sleep on, and one record per worker thread.
//!
//! Lock order: there is one lock. Nothing blocks while holding it except
//! the lock itself; system calls (futex wakes, eventfd writes, the work)
//! happen outside it.

use crate::files::config::MAX_WORKERS;
use crate::sys::futex;
use crate::sys::lock::{Guard as LockGuard, Lock};
use crate::sys::shared_mem::Zeroed;
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// A worker record is unused (never started, or reaped).
pub(crate) const FREE: u32 = 0;
/// Its thread was started and has not announced its exit.
pub(crate) const RUNNING: u32 = 1;
/// Its thread announced its exit (its tid word clears when it is gone).
pub(crate) const EXITED: u32 = 2;

/// A FIFO of slot indices with room for `N`.
pub(crate) struct Queue<const N: usize> {
    items: [u32; N],
    head: usize,
    len: usize,
}

impl<const N: usize> Queue<N> {
    /// Appends `i`; `false` when full (cannot happen: at most `N` requests
    /// exist).
    pub(crate) fn push(&mut self, i: u32) -> bool {
        if self.len >= N {
            return false;
        }
        let at = (self.head + self.len) % N;
        if let Some(x) = self.items.get_mut(at) {
            *x = i;
        }
        self.len += 1;
        true
    }

    /// Takes the oldest.
    pub(crate) fn pop(&mut self) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        let i = self.items.get(self.head).copied();
        self.head = (self.head + 1) % N;
        self.len -= 1;
        i
    }

    /// Takes `i` out wherever it is (keeping the order of the rest).
    pub(crate) fn remove(&mut self, i: u32) -> bool {
        let Some(pos) = (0..self.len).find(|&k| self.items.get((self.head + k) % N) == Some(&i)) else {
            return false;
        };
        for k in pos..self.len - 1 {
            let next = self.items.get((self.head + k + 1) % N).copied().unwrap_or(0);
            if let Some(x) = self.items.get_mut((self.head + k) % N) {
                *x = next;
            }
        }
        self.len -= 1;
        true
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// What the lock guards.
pub(crate) struct Locked<const N: usize> {
    /// Requests waiting for a worker.
    pub queue: Queue<N>,
    /// Requests a worker finished, waiting for the loop.
    pub done: Queue<N>,
    /// Workers asleep waiting for work.
    pub idle: u32,
    /// Workers started and not exited.
    pub live: u32,
    /// Set when the pool is being dropped: workers exit.
    pub shutdown: bool,
}

/// One worker thread's record.
pub(crate) struct WorkerSlot {
    /// Its tid (the kernel writes it at clone and clears it at exit).
    pub tid: AtomicU32,
    /// `FREE`, `RUNNING`, `EXITED`.
    pub state: AtomicU32,
    /// The eventfd that interrupts its wait for a pipe or socket.
    pub cancel_fd: AtomicI32,
    /// The slot it runs, plus one (0: none).
    pub current: AtomicU32,
}

/// The control block.
pub(crate) struct Control<const N: usize> {
    locked: Lock<Locked<N>>,
    /// Idle workers sleep while this does not change.
    pub work_seq: AtomicU32,
    /// Whether the completion eventfd was written since the loop last looked.
    pub notified: AtomicU32,
    /// The completion eventfd.
    pub event_fd: AtomicI32,
    /// How long an idle worker waits before it exits, in ns.
    pub idle_ns: AtomicU64,
    /// Workers that stay when idle.
    pub min_parallel: AtomicU32,
    /// The request table's engine parts: address and length.
    pub table_addr: AtomicUsize,
    pub table_len: AtomicUsize,
    pub workers: [WorkerSlot; MAX_WORKERS],
}

// SAFETY: integers, atomics, `bool`s and arrays of them: zero is valid
// (an unlocked lock, empty queues, no workers).
unsafe impl<const N: usize> Zeroed for Control<N> {}
// SAFETY: integers and a `bool`: zero is valid (empty queues, no workers).
unsafe impl<const N: usize> Zeroed for Locked<N> {}

/// Holds the lock; gives the guarded state.
pub(crate) type Guard<'a, const N: usize> = LockGuard<'a, Locked<N>>;

impl<const N: usize> Control<N> {
    /// Takes the lock.
    pub(crate) fn lock(&self) -> Guard<'_, N> {
        self.locked.lock()
    }

    /// Tells the loop that completions are waiting: writes the completion
    /// eventfd unless it was written since the loop last looked.
    pub(crate) fn notify_loop(&self) {
        if self.notified.swap(1, Ordering::AcqRel) == 0 {
            let _ = crate::sys::eventfd::add(self.event_fd.load(Ordering::Relaxed), 1);
        }
    }

    /// Wakes up to `n` idle workers.
    pub(crate) fn wake_workers(&self, n: u32) {
        self.work_seq.fetch_add(1, Ordering::Release);
        let _ = futex::wake(&self.work_seq, n, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::shared_mem::Region;

    #[test]
    fn queue_is_fifo_bounded_and_removes_from_the_middle() {
        let r: Region<Control<4>> = Region::new(1).unwrap();
        let c = r.get(0).unwrap();
        let mut g = c.lock();
        for i in 10..14 {
            assert!(g.queue.push(i));
        }
        assert!(!g.queue.push(99), "full");
        assert_eq!(g.queue.pop(), Some(10));
        assert!(g.queue.push(14));
        assert!(g.queue.remove(12));
        assert!(!g.queue.remove(12));
        let rest: Vec<u32> = core::iter::from_fn(|| g.queue.pop()).collect();
        assert_eq!(rest, vec![11, 13, 14]);
        assert!(g.queue.is_empty());
    }

    #[test]
    fn the_lock_excludes_other_threads() {
        let r: std::sync::Arc<Region<Control<4>>> = std::sync::Arc::new(Region::new(1).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let r = r.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        let mut g = r.get(0).unwrap().lock();
                        g.idle += 1;
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(r.get(0).unwrap().lock().idle, 40_000);
    }
}
