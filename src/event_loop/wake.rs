//! The waker on the loop: handing out wakers and the wake-up callback,
//! over the waker source.

use super::{Loop, WakeFn};
use crate::backend::{Backend, Waker};
use crate::error::Error;
use crate::source::waker::WakeId;

impl<C, const W: usize, const T: usize, B: Backend> Loop<C, W, T, B> {
    /// The loop's waker, its doorbell made on first use. Hand copies to
    /// other threads; see [`Waker`].
    pub fn waker(&mut self) -> Result<Waker, Error> {
        self.waker.waker(&mut self.backend)
    }

    /// Runs `callback` once per pass in which the waker was signalled, with
    /// the coalesced count (which it drains) and `data`; replaces an earlier
    /// wake-up callback. Without one, the count waits for [`Waker::drain`].
    ///
    /// ```
    /// use linux_event::Loop;
    ///
    /// let mut lp: Loop<u64> = Loop::new()?;
    /// let waker = lp.waker()?;
    /// lp.on_wake(0, |lp, total, ev| {
    ///     *total += ev.count();
    ///     lp.stop();
    /// })?;
    /// std::thread::spawn(move || waker.signal(2)).join().unwrap()?;
    /// let mut total = 0;
    /// lp.run(&mut total)?;
    /// assert_eq!(total, 2);
    /// # Ok::<(), linux_event::Error>(())
    /// ```
    pub fn on_wake(&mut self, data: u64, callback: WakeFn<Self>) -> Result<WakeId, Error> {
        self.waker.set_callback(&mut self.backend, callback, data)
    }
}
