//! futex(2): wait until a 32-bit word changes, and wake its waiters.
//!
//! The file-operations workers park on futexes, and a worker is joined by
//! waiting on its tid word, which the kernel clears and wakes when the thread
//! exits (`CLONE_CHILD_CLEARTID`). That wake is not a private futex, so
//! joins pass `private = false`; the pool's own words are private.

use super::call::check;
use super::errno::Errno;
use core::sync::atomic::AtomicU32;
use linux_raw_sys::general as k;

fn op(base: u32, private: bool) -> usize {
    (if private { base | k::FUTEX_PRIVATE_FLAG } else { base }) as usize
}

/// Sleeps while `*word == expected`, at most `timeout_ns` (relative).
/// `EAGAIN` when the word already differs, `ETIMEDOUT` when the time
/// passed, `EINTR` for a signal; `Ok` when woken (or spuriously).
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout_ns: Option<u64>, private: bool) -> Result<(), Errno> {
    let ts = timeout_ns
        .map(|ns| k::__kernel_timespec { tv_sec: (ns / 1_000_000_000) as _, tv_nsec: (ns % 1_000_000_000) as _ });
    let tsp = ts.as_ref().map_or(0, |t| t as *const k::__kernel_timespec as usize);
    // SAFETY: `word` is a live, aligned u32 for the duration of the call;
    // `tsp` is null or points at `ts`, which outlives the call. The kernel
    // only reads both.
    check(unsafe {
        sc::syscall4(k::__NR_futex as usize, word.as_ptr() as usize, op(k::FUTEX_WAIT, private), expected as usize, tsp)
    })
    .map(drop)
}

/// Wakes at most `n` waiters of `word`; returns how many were woken.
pub(crate) fn wake(word: &AtomicU32, n: u32, private: bool) -> Result<usize, Errno> {
    // SAFETY: the kernel uses the address only as a key; nothing is read
    // or written through it here.
    check(unsafe {
        sc::syscall3(
            k::__NR_futex as usize,
            word.as_ptr() as usize,
            op(k::FUTEX_WAKE, private),
            n.min(i32::MAX as u32) as usize,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::Ordering;

    #[test]
    fn wait_returns_at_once_when_the_word_differs_and_times_out_otherwise() {
        let w = AtomicU32::new(1);
        assert_eq!(wait(&w, 2, None, true), Err(Errno::EAGAIN));
        assert_eq!(wait(&w, 1, Some(1_000_000), true), Err(Errno::ETIMEDOUT));
        assert_eq!(wake(&w, 1, true), Ok(0));
    }

    #[test]
    fn wake_reaches_a_waiting_thread() {
        let w = std::sync::Arc::new(AtomicU32::new(0));
        let w2 = w.clone();
        let t = std::thread::spawn(move || {
            while w2.load(Ordering::SeqCst) == 0 {
                let _ = wait(&w2, 0, None, true);
            }
        });
        w.store(1, Ordering::SeqCst);
        // The waiter may not be asleep yet: it then sees the 1 and leaves.
        while !t.is_finished() {
            let _ = wake(&w, 1, true);
            std::thread::yield_now();
        }
        t.join().unwrap();
    }
}
