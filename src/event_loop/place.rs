//! Building a loop of any capacity directly where it will live: in a
//! `static` ([`StaticLoop`]), or in memory the caller provides, such as a
//! `Box::new_uninit()` ([`Loop::init_in`]), never passing through the stack (a 1,000,000-timer loop is tens of megabytes, and
//! debug builds copy every value they construct through a stack temporary).
//!
//! This is the one module of the loop layer with `unsafe` (ARCHITECTURE.md
//! says why): the big tables start as zero-filled memory, which is their
//! empty state, and the small fields are written in place.

use super::Loop;
use crate::backend::Backend;
use crate::error::Error;
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::ops::{Deref, DerefMut};
use core::ptr::addr_of_mut;
use core::sync::atomic::{AtomicBool, Ordering};

impl<C, const W: usize, const T: usize, B: Backend> Loop<C, W, T, B> {
    /// Makes a loop in `place`, which must be zero-filled memory (every
    /// byte 0): what `StaticLoop` and `Loop::boxed` hand in.
    ///
    /// # Safety
    ///
    /// `place` must be valid for writes of a `Loop`, properly aligned, and
    /// every byte of it must be zero.
    unsafe fn init_zeroed(place: *mut Self, mut backend: B) -> Result<(), Error> {
        let () = Self::CHECK_CAPACITY;
        if backend.capacity().is_some_and(|c| c < W) {
            return Err(Error::Capacity);
        }
        let now = backend.now()?;
        // SAFETY: `place` is valid for writes and aligned (the caller's
        // promise). The fields left alone are the tables, the event buffer,
        // the refused-deregistration list and the children source, whose
        // empty state is all-zero bytes: heapless `Vec`s are a
        // length and uninitialised storage, heapless `IndexMap` indices are
        // `Option<NonZero>` (None is 0), the `Option`s are None, the counters
        // and flags 0 or false (`zero_filled_tables_are_empty` below checks
        // it, under Miri too). Every other field is written here, so after
        // this block the whole value is initialised; nothing is read first.
        unsafe {
            addr_of_mut!((*place).backend).write(backend);
            // `events` stays zero-filled: a zero report is a valid one (W of
            // them could not go through the stack either).
            addr_of_mut!((*place).batch).write(W);
            addr_of_mut!((*place).now).write(now);
            #[cfg(feature = "waker")]
            addr_of_mut!((*place).waker).write(crate::source::waker::WakerSource::new());
            // Of the signal source only `fd` is not zero-valid (see the
            // field); its 12 KB of per-signal records stay untouched zero
            // pages.
            #[cfg(feature = "signals")]
            addr_of_mut!((*place).signals.fd).write(None);
            addr_of_mut!((*place).prepares).write(super::phases::Phase::new());
            addr_of_mut!((*place).checks).write(super::phases::Phase::new());
            addr_of_mut!((*place).stop_requested).write(false);
            addr_of_mut!((*place).running).write(false);
            addr_of_mut!((*place).dispatching).write(false);
            addr_of_mut!((*place).in_kernel).write(0);
            // `failed_deregs` stays zero-filled: an empty heapless Vec.
            addr_of_mut!((*place).firing).write(None);
        }
        Ok(())
    }

    /// Makes a loop on `backend` in `place` (memory the caller owns: a
    /// `Box::new_uninit()`, a field, a buffer), without passing it through
    /// the stack, so any capacity works from a thread with the default
    /// stack. `place` is zero-filled first. The loop is dropped, in place,
    /// with the returned handle. Errors as [`with_backend`](Self::with_backend).
    ///
    /// ```
    /// use linux_event::{Loop, backend::Epoll};
    /// type Big = Loop<(), 16, 100_000>;
    /// let mut room = Box::<Big>::new_uninit();
    /// let mut lp = Big::init_in(&mut room, Epoll::new()?)?;
    /// lp.after(core::time::Duration::ZERO, 0, |lp, _, _| lp.stop())?;
    /// lp.run(&mut ())?;
    /// # Ok::<(), linux_event::Error>(())
    /// ```
    pub fn init_in(place: &mut MaybeUninit<Self>, backend: B) -> Result<Placed<'_, Self>, Error> {
        let ptr = place.as_mut_ptr();
        // SAFETY: `ptr` is valid for writes of one `Self` (it comes from a
        // `&mut MaybeUninit<Self>`); zero bytes are written before anything
        // is read.
        unsafe {
            ptr.write_bytes(0, 1);
            Self::init_zeroed(ptr, backend)?;
        }
        // SAFETY: initialised above; the borrow of `place` is handed on.
        Ok(Placed { value: unsafe { &mut *ptr } })
    }

    /// A loop on `backend`, built on the heap without passing through the
    /// stack (in memory the allocator zeroes, so untouched pages of a huge
    /// table are never paged in). Needs the `std` feature; errors as
    /// [`with_backend`](Self::with_backend).
    #[cfg(any(test, feature = "std"))]
    pub fn boxed(backend: B) -> Result<std::boxed::Box<Self>, Error> {
        // `Box::new_zeroed` would do this from Rust 1.92; the crate's MSRV is older.
        let layout = std::alloc::Layout::new::<Self>();
        if layout.size() == 0 {
            return Err(Error::Capacity);
        }
        // SAFETY: the layout has a non-zero size (checked above).
        let raw = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<MaybeUninit<Self>>();
        if raw.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        // SAFETY: `raw` is a fresh allocation made by the global allocator
        // with `Self`'s layout, so a `Box` may own it.
        let mut place: std::boxed::Box<MaybeUninit<Self>> = unsafe { std::boxed::Box::from_raw(raw) };
        // SAFETY: zero-filled, aligned and sized for one `Self`.
        unsafe { Self::init_zeroed(place.as_mut_ptr(), backend)? };
        // SAFETY: `init_zeroed` returned Ok: every field is initialised.
        Ok(unsafe { place.assume_init() })
    }
}

/// A value made in place by [`Loop::init_in`]: derefs to it, and drops it,
/// in place, when dropped (forgetting it leaks the loop's kernel objects,
/// but is safe).
pub struct Placed<'a, T> {
    value: &'a mut T,
}

impl<T> Deref for Placed<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value
    }
}

impl<T> DerefMut for Placed<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value
    }
}

impl<T> Drop for Placed<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the value was initialised by `init_in` and is dropped
        // exactly once, here; its memory stays the caller's (uninitialised
        // again as far as anyone can tell, since `place` is MaybeUninit).
        unsafe { core::ptr::drop_in_place(self.value as *mut T) }
    }
}

/// Room for one loop in a `static`: zero-filled (it costs `.bss`, not file
/// size), made into a loop once, in place, by [`init`](Self::init).
///
/// ```
/// use linux_event::{StaticLoop, backend::Epoll};
/// static LOOP: StaticLoop<(), 16, 1024> = StaticLoop::new();
///
/// let lp = LOOP.init(Epoll::new()?)?;
/// assert_eq!(lp.backend_name(), "epoll");
/// assert!(LOOP.init(Epoll::new()?).is_err(), "only once");
/// # Ok::<(), linux_event::Error>(())
/// ```
pub struct StaticLoop<C, const W: usize = 256, const T: usize = 256, B: Backend = crate::backend::Epoll> {
    taken: AtomicBool,
    place: UnsafeCell<MaybeUninit<Loop<C, W, T, B>>>,
}

// SAFETY: the loop inside is handed out once, as `&'static mut`, to the
// thread that wins `taken`; nothing else ever touches it, so sharing the
// `StaticLoop` is sound whenever the loop itself may move between threads.
unsafe impl<C: Send, const W: usize, const T: usize, B: Backend + Send> Sync for StaticLoop<C, W, T, B> {}

impl<C, const W: usize, const T: usize, B: Backend> Default for StaticLoop<C, W, T, B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C, const W: usize, const T: usize, B: Backend> StaticLoop<C, W, T, B> {
    /// Zero-filled room for a loop (a `const fn`, for `static` items).
    pub const fn new() -> Self {
        StaticLoop { taken: AtomicBool::new(false), place: UnsafeCell::new(MaybeUninit::zeroed()) }
    }

    /// Makes the loop on `backend`, in place, and hands it out for the rest
    /// of the program. `Reentrant` if it was handed out before (also when
    /// that attempt failed: the room is used once); otherwise errors as
    /// [`Loop::with_backend`].
    ///
    /// The loop is never dropped (a `static` lives as long as the program).
    // A shared `&'static self` hands out one `&'static mut`: sound because
    // `taken` lets exactly one call through (clippy cannot see that).
    #[allow(clippy::mut_from_ref)]
    pub fn init(&'static self, backend: B) -> Result<&'static mut Loop<C, W, T, B>, Error> {
        if self.taken.swap(true, Ordering::AcqRel) {
            return Err(Error::Reentrant);
        }
        let place = self.place.get().cast::<Loop<C, W, T, B>>();
        // SAFETY: this thread alone won `taken`, so nothing else has or will
        // have access; the memory is still the zero-filled `new()` state,
        // aligned and sized for a `Loop`.
        unsafe { Loop::init_zeroed(place, backend)? };
        // SAFETY: initialised just above; the `'static` borrow is unique
        // because `taken` can be won only once.
        Ok(unsafe { &mut *place })
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::Sim;
    use crate::table::{TimerHeap, WatcherTable};
    use core::mem::MaybeUninit;

    #[test]
    fn zero_filled_tables_are_empty() {
        // What `init_zeroed` leaves alone must be the same empty state as
        // `new()`: check the tables (and, through a loop, the children
        // source) by using them.
        let zt: Box<MaybeUninit<TimerHeap<u8, 8>>> = Box::new_zeroed();
        // SAFETY: the claim under test (Miri checks the validity of what is read).
        let mut zt = unsafe { zt.assume_init() };
        let mut nt: TimerHeap<u8, 8> = TimerHeap::new();
        assert_eq!(zt.len(), 0);
        assert_eq!(zt.insert(Some(5), None, 1), nt.insert(Some(5), None, 1));
        assert_eq!(zt.peek_deadline(), Some(5));
        let zw: Box<MaybeUninit<WatcherTable<u8, 8>>> = Box::new_zeroed();
        // SAFETY: as above.
        let zw = unsafe { zw.assume_init() };
        let nw: WatcherTable<u8, 8> = WatcherTable::new();
        assert_eq!(zw.len(), 0);
        assert_eq!(zw.key_of_fd(3), None);
        assert_eq!(zw.next_key(3), nw.next_key(3));
    }

    #[test]
    fn a_boxed_loop_on_sim_works_like_a_made_one() {
        let mut lp: Box<crate::Loop<u32, 4, 4, Sim<8>>> = crate::Loop::boxed(Sim::new()).unwrap();
        let mut n = 0u32;
        lp.after(core::time::Duration::from_secs(1), 0, |_, n, _| *n += 1).unwrap();
        lp.watch(3, crate::Interest::READ, 0, |_, n, _| *n += 10).unwrap();
        lp.sim().set_ready(3, crate::Ready::READABLE).unwrap();
        lp.run_once(&mut n, None).unwrap();
        lp.sim().clear_ready(3, crate::Ready::READABLE);
        lp.run_once(&mut n, None).unwrap();
        assert_eq!(n, 11);
        #[cfg(feature = "children")]
        {
            let child = lp.sim().spawn_child().unwrap();
            lp.pid(child, 0, |_, n, ev| *n += ev.pid() as u32).unwrap();
        }
        #[cfg(feature = "signals")]
        {
            // The signal source is left zero-filled but for its fd.
            lp.signal(crate::sys::SIGUSR1, 0, |_, n, ev| *n += 100 * ev.count()).unwrap();
            lp.sim().raise(crate::sys::SIGUSR1).unwrap();
            lp.run_once(&mut n, Some(core::time::Duration::ZERO)).unwrap();
            assert_eq!(n % 1000 / 100, 1, "one SIGUSR1 counted");
        }
    }
}
