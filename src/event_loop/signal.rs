//! Signals on the loop: the registration call and the per-pass delivery,
//! over the signal source (which owns the signalfd and the mask holds).

use super::{Loop, SignalFn};
use crate::backend::Backend;
use crate::error::Error;
use crate::source::signals::SignalId;
#[cfg(feature = "children")]
use crate::sys::SIGCHLD;

impl<C, const W: usize, const T: usize, B: Backend> Loop<C, W, T, B> {
    /// Calls `callback` once per pass in which `signo` arrived, with the
    /// number of records, the last one's details and `data`. A later
    /// registration for the same signal replaces this one.
    ///
    /// The signal is blocked in the calling thread and read through a
    /// signalfd. Masks are per thread and shared by every loop in the
    /// thread: the thread keeps the signal blocked while any loop in it
    /// watches it, and unblocks it (if it was not blocked before) when the
    /// last one goes; records still pending then are discarded, never
    /// handed to the signal's default action. Block the signal in every
    /// other thread too (or start them after this call: they inherit the
    /// mask), or the kernel may deliver it to one of them instead.
    ///
    /// A loop's signal watchers belong to the thread whose mask they hold:
    /// on a loop moved to another thread, watching a new signal is
    /// `WrongThread` until every signal watcher is removed. Removing them,
    /// or dropping the loop, on another thread leaves that thread's mask
    /// alone; the first thread unblocks what it no longer needs at its next
    /// signal registration or removal (only a thread can change its own mask).
    ///
    /// `Os(EINVAL)` for SIGKILL, SIGSTOP, 0 and numbers above 64; on any
    /// error the thread's mask is exactly as it was.
    ///
    /// ```
    /// use linux_event::{Loop, sys};
    ///
    /// std::thread::spawn(|| {
    ///     let mut lp: Loop<u32> = Loop::new()?;
    ///     lp.signal(sys::SIGUSR1, 0, |lp, count, ev| {
    ///         *count += ev.count();
    ///         lp.stop();
    ///     })?;
    ///     // To this thread: it blocks SIGUSR1 now, the signalfd reads it.
    ///     sys::tgkill(sys::getpid(), sys::gettid(), sys::SIGUSR1)?;
    ///     let mut count = 0;
    ///     lp.run(&mut count)?;
    ///     assert_eq!(count, 1);
    ///     Ok::<(), linux_event::Error>(())
    /// })
    /// .join()
    /// .unwrap()?;
    /// # Ok::<(), linux_event::Error>(())
    /// ```
    pub fn signal(&mut self, signo: i32, data: u64, callback: SignalFn<Self>) -> Result<SignalId, Error> {
        self.signals.add(&mut self.backend, signo, callback, data)
    }

    /// Drains the signalfd and runs one callback per signal that arrived,
    /// in ascending signal number. SIGCHLD also drives the children source.
    pub(crate) fn dispatch_signals(&mut self, ctx: &mut C) -> usize {
        let mut arrived = self.signals.drain(&mut self.backend);
        let mut calls = 0;
        while arrived != 0 {
            let signo = arrived.trailing_zeros() as i32 + 1;
            arrived &= arrived - 1;
            #[cfg(feature = "children")]
            if signo == SIGCHLD && self.signals.is_internal(SIGCHLD) {
                calls += self.reap_children(ctx);
            }
            if let Some((callback, event)) = self.signals.take(signo) {
                callback(self, ctx, event);
                calls += 1;
            }
        }
        calls
    }
}
