//! The shared table of handles and timeouts: fixed-size slots behind one
//! futex lock, the six calls of the contract, and the queues through which
//! the loop's side (`companion.rs`) learns what changed.
//!
//! Pure data: it never calls the kernel (beyond the lock and the loop's
//! waker) and never runs a callback; it is never held while one runs.

use super::events::*;
use crate::backend::Waker;
use crate::error::Error;
use crate::event_loop::LoopTypes;
use crate::sys::lock::Lock;
use crate::sys::{Errno, RawFd};
use core::sync::atomic::{AtomicBool, Ordering::*};
use heapless::{Deque, Vec};

/// No slot (ends of lists, empty free lists).
const NONE: u16 = u16::MAX;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum State {
    Free,
    Live,
    /// Removed, its free callback not yet run (the slot is held until then).
    Retired,
}

struct HandleSlot<L: LoopTypes> {
    id: i32,
    fd_slot: u16,
    /// The next handle of the same fd (in id order), or the next free slot.
    next: u16,
    events: HandleEvents,
    state: State,
    /// Its fd's registration was brought up to date after it was added: only
    /// then may a kernel event reach it (an event read before that may be
    /// about an earlier file under the same fd number).
    armed: bool,
    callback: Option<HandleFn<L>>,
    free: Option<FreeFn<L>>,
    data: u64,
}

struct FdSlot {
    fd: RawFd,
    /// The fd's live handles, in id order.
    head: u16,
    tail: u16,
    in_use: bool,
    /// In `dirty_fds`: the loop side must bring its watcher up to date.
    dirty: bool,
    next_free: u16,
}

struct TimeoutSlot<L: LoopTypes> {
    id: i32,
    ms: i32,
    state: State,
    /// In `dirty_timeouts`: the loop side must re-arm its timer.
    dirty: bool,
    next_free: u16,
    callback: Option<TimeoutFn<L>>,
    free: Option<FreeFn<L>>,
    data: u64,
}

// Manual impls: derive would demand `L: Copy`; fn pointers always are.
impl<L: LoopTypes> Clone for HandleSlot<L> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<L: LoopTypes> Copy for HandleSlot<L> {}
impl<L: LoopTypes> Clone for TimeoutSlot<L> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<L: LoopTypes> Copy for TimeoutSlot<L> {}
impl Clone for FdSlot {
    fn clone(&self) -> Self {
        *self
    }
}
impl Copy for FdSlot {}

impl<L: LoopTypes> HandleSlot<L> {
    const EMPTY: Self = HandleSlot {
        id: 0,
        fd_slot: NONE,
        next: NONE,
        events: HandleEvents::empty(),
        state: State::Free,
        armed: false,
        callback: None,
        free: None,
        data: 0,
    };
}

impl FdSlot {
    const EMPTY: Self = FdSlot { fd: -1, head: NONE, tail: NONE, in_use: false, dirty: false, next_free: NONE };
}

impl<L: LoopTypes> TimeoutSlot<L> {
    const EMPTY: Self = TimeoutSlot {
        id: 0,
        ms: -1,
        state: State::Free,
        dirty: false,
        next_free: NONE,
        callback: None,
        free: None,
        data: 0,
    };
}

/// Slots handed out from a high-water mark, then from a free list.
struct Alloc {
    free: u16,
    used: u16,
}

impl Alloc {
    const NEW: Alloc = Alloc { free: NONE, used: 0 };
}

struct Inner<L: LoopTypes, const H: usize, const T: usize> {
    handles: [HandleSlot<L>; H],
    handle_alloc: Alloc,
    /// Live handle ids and their slots, sorted (ids only grow).
    handle_ids: Vec<(i32, u16), H>,
    next_handle: i32,
    fds: [FdSlot; H],
    fd_alloc: Alloc,
    dirty_fds: Vec<u16, H>,
    timeouts: [TimeoutSlot<L>; T],
    timeout_alloc: Alloc,
    timeout_ids: Vec<(i32, u16), T>,
    next_timeout: i32,
    dirty_timeouts: Vec<u16, T>,
    /// Removed registrations waiting for their free callbacks, in order.
    retired_handles: Deque<u16, H>,
    retired_timeouts: Deque<u16, T>,
    /// The attached loop's waker (`None`: not attached).
    waker: Option<Waker>,
}

/// The shared table of libvirt handles and timeouts: `H` handles (and as
/// many fds), `T` timeouts, all fixed at compile time.
///
/// It is `Sync`: put it in a `static` (or anything that outlives the
/// threads using it) and call its six methods from any thread. Each call
/// changes the table under a small futex lock (no system call unless
/// contended) and rings the attached loop's waker, which costs a system
/// call only when the loop is blocked in its wait; the loop applies the
/// change before it sleeps again. On the loop's own thread use
/// [`Virt`](super::Virt)'s methods or [`loop_thread`](Self::loop_thread),
/// which skip the ring.
///
/// Ids are positive counters (handles and timeouts counted apart, as in
/// libvirt), never reused for the life of the table; after `i32::MAX` of
/// one kind, adding more is `Capacity`. Removal never fails for a live id
/// and is `NotFound` for any other; a removed registration never runs
/// again, an update cannot revive it, and its free callback runs exactly
/// once, in the loop's check phase (or at [`Virt::detach`](super::Virt::detach)).
pub struct VirtTable<L: LoopTypes, const H: usize, const T: usize> {
    inner: Lock<Inner<L, H, T>>,
    /// A dirty queue is not empty (read by the loop's prepare callback
    /// without taking the lock).
    changed: AtomicBool,
    /// A retired queue is not empty (read by the check callback).
    retired: AtomicBool,
}

/// The six calls for code on the loop's own thread: they do not ring the
/// waker (the loop cannot be blocked while its own thread runs this), so a
/// call from a callback costs no extra pass. From any other thread use the
/// [`VirtTable`]'s methods, which wake the loop.
pub struct LoopThread<'a, L: LoopTypes, const H: usize, const T: usize> {
    table: &'a VirtTable<L, H, T>,
}

/// What the loop side needs to bring one fd's watcher up to date.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) struct FdWant {
    pub fd: RawFd,
    /// The union of the fd's handles' events (empty: watch nothing).
    pub events: HandleEvents,
    /// A handle was added since the last look: the fd number may name
    /// another file than the one registered (closed and reused behind the
    /// loop's back, which drops an epoll registration silently), so the
    /// registration must reach the kernel again.
    pub fresh: bool,
}

/// One handle callback to run.
pub(super) struct Delivery<L: LoopTypes> {
    pub callback: HandleFn<L>,
    pub event: HandleEvent,
    /// Whether the fd has live handles after this one (then the dispatch
    /// asks again, and sees the table as the callback left it).
    pub more: bool,
}

impl<L: LoopTypes, const H: usize, const T: usize> Default for VirtTable<L, H, T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<L: LoopTypes, const H: usize, const T: usize> VirtTable<L, H, T> {
    const CHECK: () = assert!(H > 0 && T > 0 && H < NONE as usize && T < NONE as usize);

    /// An empty table (usable in a `static`).
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CHECK;
        VirtTable {
            inner: Lock::new(Inner {
                handles: [HandleSlot::EMPTY; H],
                handle_alloc: Alloc::NEW,
                handle_ids: Vec::new(),
                next_handle: 1,
                fds: [FdSlot::EMPTY; H],
                fd_alloc: Alloc::NEW,
                dirty_fds: Vec::new(),
                timeouts: [TimeoutSlot::EMPTY; T],
                timeout_alloc: Alloc::NEW,
                timeout_ids: Vec::new(),
                next_timeout: 1,
                dirty_timeouts: Vec::new(),
                retired_handles: Deque::new(),
                retired_timeouts: Deque::new(),
                waker: None,
            }),
            changed: AtomicBool::new(false),
            retired: AtomicBool::new(false),
        }
    }

    /// The six calls without the wake-up, for the loop's own thread.
    pub fn loop_thread(&self) -> LoopThread<'_, L, H, T> {
        LoopThread { table: self }
    }

    /// Watches `fd` for `events`; `callback` runs with `data` when they
    /// happen; `free`, if any, runs once after removal. Several handles may
    /// watch one fd. `Os(EBADF)` for a negative fd (a closed one is
    /// reported to its callback as `ERROR`, as poll(2) reports `POLLNVAL`),
    /// `Capacity` when `H` handles exist (a removed handle counts until its
    /// free callback has run, at the end of the loop's next pass).
    pub fn add_handle(
        &self,
        fd: RawFd,
        events: HandleEvents,
        data: u64,
        callback: HandleFn<L>,
        free: Option<FreeFn<L>>,
    ) -> Result<HandleId, Error> {
        self.add_handle_inner(fd, events, data, callback, free, true)
    }

    /// Sets a handle's events (empty: it hears nothing, not even errors,
    /// until updated again). `NotFound` for a removed or unknown id.
    pub fn update_handle(&self, id: HandleId, events: HandleEvents) -> Result<(), Error> {
        self.update_handle_inner(id, events, true)
    }

    /// Removes a handle: it never runs again, even later in the pass that is
    /// running; its free callback runs once, after dispatch. `NotFound` for
    /// a removed or unknown id.
    pub fn remove_handle(&self, id: HandleId) -> Result<(), Error> {
        self.remove_handle_inner(id, true)
    }

    /// Adds a timeout firing every `ms` milliseconds, counted from when it
    /// last fired (from now, for the first); 0 fires once on every pass of
    /// the loop; a negative `ms` adds it disabled. `Capacity` when `T`
    /// timeouts exist (a removed one counts until its free callback ran).
    pub fn add_timeout(
        &self,
        ms: i32,
        data: u64,
        callback: TimeoutFn<L>,
        free: Option<FreeFn<L>>,
    ) -> Result<TimeoutId, Error> {
        self.add_timeout_inner(ms, data, callback, free, true)
    }

    /// Sets a timeout's interval (counted from now; negative disables it,
    /// keeping its id). `NotFound` for a removed or unknown id.
    pub fn update_timeout(&self, id: TimeoutId, ms: i32) -> Result<(), Error> {
        self.update_timeout_inner(id, ms, true)
    }

    /// Removes a timeout, as [`remove_handle`](Self::remove_handle) does a handle.
    pub fn remove_timeout(&self, id: TimeoutId) -> Result<(), Error> {
        self.remove_timeout_inner(id, true)
    }

    /// Removes every handle and timeout (their free callbacks run as for
    /// any removal); returns how many there were.
    pub fn remove_all(&self) -> usize {
        let n = {
            let mut t = self.inner.lock();
            let mut n = 0;
            while let Some(&(raw, _)) = t.handle_ids.last() {
                let _ = t.remove_handle(HandleId::new(raw));
                n += 1;
            }
            while let Some(&(raw, _)) = t.timeout_ids.last() {
                let _ = t.remove_timeout(TimeoutId::new(raw));
                n += 1;
            }
            self.publish(&t);
            n
        };
        self.wake();
        n
    }

    /// Live handles.
    pub fn handle_count(&self) -> usize {
        self.inner.lock().handle_ids.len()
    }

    /// Live timeouts.
    pub fn timeout_count(&self) -> usize {
        self.inner.lock().timeout_ids.len()
    }

    /// Removed registrations whose free callbacks have not run yet.
    pub fn pending_frees(&self) -> usize {
        let t = self.inner.lock();
        t.retired_handles.len() + t.retired_timeouts.len()
    }

    /// The events a live handle watches for (`None`: removed or unknown).
    pub fn handle_events(&self, id: HandleId) -> Option<HandleEvents> {
        let t = self.inner.lock();
        t.handle_slot(id).map(|s| t.handles[s].events)
    }

    /// A live timeout's interval in ms (negative: disabled; `None`: removed
    /// or unknown).
    pub fn timeout_interval(&self, id: TimeoutId) -> Option<i32> {
        let t = self.inner.lock();
        t.timeout_slot(id).map(|s| t.timeouts[s].ms)
    }

    /// Wakes the attached loop (if it is blocked, its wait returns; if not,
    /// its next wait does not block). Nothing when no loop is attached.
    pub fn wake(&self) {
        let waker = self.inner.lock().waker;
        Self::ring(waker, true);
    }

    /// After a change: rings the loop's waker taken under the same lock
    /// (`wake`: the caller is not the loop's thread), once the lock is gone.
    fn ring(waker: Option<Waker>, wake: bool) {
        if wake && let Some(w) = waker {
            // Closed: the loop is gone, and nobody is left to wake.
            let _ = w.signal(1);
        }
    }

    /// Records, under the lock, whether queues are non-empty, for the loop
    /// side's lock-free look.
    fn publish(&self, t: &Inner<L, H, T>) {
        if !t.dirty_fds.is_empty() || !t.dirty_timeouts.is_empty() {
            self.changed.store(true, Release);
        }
        if !t.retired_handles.is_empty() || !t.retired_timeouts.is_empty() {
            self.retired.store(true, Release);
        }
    }

    /// One change of the table: `f` runs under the lock and says whether it
    /// changed anything (an error changes nothing); then the queues are
    /// published and, once the lock is gone, the loop is woken if `wake`.
    fn change<R>(
        &self,
        wake: bool,
        f: impl FnOnce(&mut Inner<L, H, T>) -> Result<(R, bool), Error>,
    ) -> Result<R, Error> {
        let mut t = self.inner.lock();
        let (r, changed) = f(&mut t)?;
        if changed {
            self.publish(&t);
            let waker = t.waker;
            drop(t);
            Self::ring(waker, wake);
        }
        Ok(r)
    }

    fn add_handle_inner(
        &self,
        fd: RawFd,
        events: HandleEvents,
        data: u64,
        callback: HandleFn<L>,
        free: Option<FreeFn<L>>,
        wake: bool,
    ) -> Result<HandleId, Error> {
        if fd < 0 {
            return Err(Error::Os(Errno::EBADF));
        }
        self.change(wake, |t| Ok((t.add_handle(fd, events, data, callback, free)?, true)))
    }

    fn update_handle_inner(&self, id: HandleId, events: HandleEvents, wake: bool) -> Result<(), Error> {
        self.change(wake, |t| {
            let slot = t.handle_slot(id).ok_or(Error::NotFound)?;
            if t.handles[slot].events == events {
                return Ok(((), false));
            }
            t.handles[slot].events = events;
            let fd_slot = t.handles[slot].fd_slot;
            t.mark_fd(fd_slot);
            Ok(((), true))
        })
    }

    fn remove_handle_inner(&self, id: HandleId, wake: bool) -> Result<(), Error> {
        self.change(wake, |t| Ok((t.remove_handle(id)?, true)))
    }

    fn add_timeout_inner(
        &self,
        ms: i32,
        data: u64,
        callback: TimeoutFn<L>,
        free: Option<FreeFn<L>>,
        wake: bool,
    ) -> Result<TimeoutId, Error> {
        self.change(wake, |t| Ok((t.add_timeout(ms, data, callback, free)?, true)))
    }

    fn update_timeout_inner(&self, id: TimeoutId, ms: i32, wake: bool) -> Result<(), Error> {
        self.change(wake, |t| {
            let slot = t.timeout_slot(id).ok_or(Error::NotFound)?;
            // Always re-armed, even at the same interval: libvirt's update
            // restarts the count from now.
            t.timeouts[slot].ms = ms.max(-1);
            t.mark_timeout(slot as u16);
            Ok(((), true))
        })
    }

    fn remove_timeout_inner(&self, id: TimeoutId, wake: bool) -> Result<(), Error> {
        self.change(wake, |t| Ok((t.remove_timeout(id)?, true)))
    }

    // ---- the loop side's interface (companion.rs) ----

    /// Connects the table to a loop, whose waker other threads will ring.
    /// Every fd and timeout is queued, so the loop's registrations are
    /// built from the table as it is. `AlreadyWatched` if another live
    /// loop holds it.
    pub(super) fn attach(&self, waker: Waker) -> Result<(), Error> {
        // A table whose loop was dropped without `detach` is free again:
        // that loop's waker says `Closed` (asked without the lock held).
        let held = self.inner.lock().waker;
        if let Some(old) = held
            && old.signal(0) != Err(Error::Closed)
        {
            return Err(Error::AlreadyWatched);
        }
        let mut t = self.inner.lock();
        if t.waker != held {
            return Err(Error::AlreadyWatched);
        }
        t.waker = Some(waker);
        for s in 0..t.fd_alloc.used {
            if t.fds[usize::from(s)].in_use {
                t.mark_fd(s);
            }
        }
        for s in 0..t.timeout_alloc.used {
            if t.timeouts[usize::from(s)].state == State::Live {
                t.mark_timeout(s);
            }
        }
        for h in t.handles.iter_mut() {
            h.armed = false;
        }
        self.publish(&t);
        Ok(())
    }

    /// Disconnects the loop: later calls change the table only.
    pub(super) fn detach(&self) {
        self.inner.lock().waker = None;
    }

    /// Whether any fd or timeout waits for the loop side (a look without
    /// the lock; clears the mark).
    pub(super) fn take_changed(&self) -> bool {
        self.changed.load(Relaxed) && self.changed.swap(false, Acquire)
    }

    /// Whether free callbacks wait (clears the mark).
    pub(super) fn take_retired_mark(&self) -> bool {
        self.retired.load(Relaxed) && self.retired.swap(false, Acquire)
    }

    /// Sets the mark again for work left for the next pass.
    pub(super) fn mark_changed(&self) {
        self.changed.store(true, Release);
    }

    /// The next fd slot whose watcher must be brought up to date, and what
    /// it must watch now (`None` for the fd: the slot has no handles left).
    /// Every live handle of the fd is armed from here on.
    pub(super) fn next_dirty_fd(&self) -> Option<(u16, Option<FdWant>)> {
        let mut t = self.inner.lock();
        let slot = t.dirty_fds.pop()?;
        let t = &mut *t;
        let f = &mut t.fds[usize::from(slot)];
        f.dirty = false;
        if !f.in_use {
            return Some((slot, None));
        }
        let fd = f.fd;
        let mut events = HandleEvents::empty();
        let mut fresh = false;
        let mut h = f.head;
        while h != NONE {
            let handle = &mut t.handles[usize::from(h)];
            fresh |= !handle.armed;
            handle.armed = true;
            events |= handle.events;
            h = handle.next;
        }
        Some((slot, Some(FdWant { fd, events, fresh })))
    }

    /// The next timeout slot to re-arm: its id and interval, or `None` if
    /// the slot holds no live timeout any more.
    pub(super) fn next_dirty_timeout(&self) -> Option<(u16, Option<(TimeoutId, i32)>)> {
        let mut t = self.inner.lock();
        let slot = t.dirty_timeouts.pop()?;
        let s = &mut t.timeouts[usize::from(slot)];
        s.dirty = false;
        let live = (s.state == State::Live).then(|| (TimeoutId::new(s.id), s.ms));
        Some((slot, live))
    }

    /// The first armed handle of fd slot `slot` with an id above `after`
    /// that `ready` concerns: its own events that are ready, plus `ERROR`
    /// and `HANGUP` for any handle whose events are not empty.
    pub(super) fn next_delivery(&self, slot: u16, ready: HandleEvents, after: i32) -> Option<Delivery<L>> {
        let t = self.inner.lock();
        let f = t.fds.get(usize::from(slot))?;
        if !f.in_use {
            return None;
        }
        let mut h = f.head;
        let mut found: Option<Delivery<L>> = None;
        while h != NONE {
            let handle = &t.handles[usize::from(h)];
            if handle.id > after && handle.armed {
                if let Some(d) = &mut found {
                    d.more = true;
                    break;
                }
                let events = (handle.events & ready) | (ready & (HandleEvents::ERROR | HandleEvents::HANGUP));
                if !handle.events.is_empty()
                    && !events.is_empty()
                    && let Some(callback) = handle.callback
                {
                    let event = HandleEvent { id: HandleId::new(handle.id), fd: f.fd, events, data: handle.data };
                    found = Some(Delivery { callback, event, more: false });
                }
            }
            h = handle.next;
        }
        found
    }

    /// The timeout of `slot`, if it is still the live, enabled timeout
    /// `id`, unchanged since the loop armed it (an update restarts the
    /// count from when it was made: the next prepare re-arms it): its
    /// callback, event and interval.
    pub(super) fn timeout_delivery(&self, slot: u16, id: TimeoutId) -> Option<(TimeoutFn<L>, TimeoutEvent, i32)> {
        let t = self.inner.lock();
        let s = t.timeouts.get(usize::from(slot))?;
        if s.state != State::Live || s.id != id.get() || s.ms < 0 || s.dirty {
            return None;
        }
        Some((s.callback?, TimeoutEvent { id, data: s.data }, s.ms))
    }

    /// Takes the next removed registration whose free callback is due, and
    /// gives its slot back.
    pub(super) fn take_retired(&self) -> Option<(FreeFn<L>, FreeEvent)> {
        let mut t = self.inner.lock();
        let t = &mut *t;
        loop {
            // Only registrations with a free callback are retired; the
            // `None` arms are for completeness.
            if let Some(slot) = t.retired_handles.pop_front() {
                let h = t.handles[usize::from(slot)];
                t.free_handle_slot(slot);
                if let Some(free) = h.free {
                    return Some((free, FreeEvent { what: Released::Handle(HandleId::new(h.id)), data: h.data }));
                }
            } else if let Some(slot) = t.retired_timeouts.pop_front() {
                let s = t.timeouts[usize::from(slot)];
                t.free_timeout_slot(slot);
                if let Some(free) = s.free {
                    return Some((free, FreeEvent { what: Released::Timeout(TimeoutId::new(s.id)), data: s.data }));
                }
            } else {
                return None;
            }
        }
    }
}

impl<L: LoopTypes, const H: usize, const T: usize> LoopThread<'_, L, H, T> {
    /// [`VirtTable::add_handle`] without the wake-up.
    pub fn add_handle(
        &self,
        fd: RawFd,
        events: HandleEvents,
        data: u64,
        callback: HandleFn<L>,
        free: Option<FreeFn<L>>,
    ) -> Result<HandleId, Error> {
        self.table.add_handle_inner(fd, events, data, callback, free, false)
    }

    /// [`VirtTable::update_handle`] without the wake-up.
    pub fn update_handle(&self, id: HandleId, events: HandleEvents) -> Result<(), Error> {
        self.table.update_handle_inner(id, events, false)
    }

    /// [`VirtTable::remove_handle`] without the wake-up.
    pub fn remove_handle(&self, id: HandleId) -> Result<(), Error> {
        self.table.remove_handle_inner(id, false)
    }

    /// [`VirtTable::add_timeout`] without the wake-up.
    pub fn add_timeout(
        &self,
        ms: i32,
        data: u64,
        callback: TimeoutFn<L>,
        free: Option<FreeFn<L>>,
    ) -> Result<TimeoutId, Error> {
        self.table.add_timeout_inner(ms, data, callback, free, false)
    }

    /// [`VirtTable::update_timeout`] without the wake-up.
    pub fn update_timeout(&self, id: TimeoutId, ms: i32) -> Result<(), Error> {
        self.table.update_timeout_inner(id, ms, false)
    }

    /// [`VirtTable::remove_timeout`] without the wake-up.
    pub fn remove_timeout(&self, id: TimeoutId) -> Result<(), Error> {
        self.table.remove_timeout_inner(id, false)
    }
}

impl<L: LoopTypes, const H: usize, const T: usize> Inner<L, H, T> {
    fn handle_slot(&self, id: HandleId) -> Option<usize> {
        let i = self.handle_ids.binary_search_by_key(&id.get(), |e| e.0).ok()?;
        Some(usize::from(self.handle_ids[i].1))
    }

    fn timeout_slot(&self, id: TimeoutId) -> Option<usize> {
        let i = self.timeout_ids.binary_search_by_key(&id.get(), |e| e.0).ok()?;
        Some(usize::from(self.timeout_ids[i].1))
    }

    fn mark_fd(&mut self, slot: u16) {
        let f = &mut self.fds[usize::from(slot)];
        if !f.dirty {
            f.dirty = true;
            // Never full: each fd slot is queued at most once.
            let _ = self.dirty_fds.push(slot);
        }
    }

    fn mark_timeout(&mut self, slot: u16) {
        let s = &mut self.timeouts[usize::from(slot)];
        if !s.dirty {
            s.dirty = true;
            let _ = self.dirty_timeouts.push(slot);
        }
    }

    /// The slot of `fd` (a new one if it has none), or `None` when full.
    fn fd_slot_for(&mut self, fd: RawFd) -> Option<u16> {
        if let Some(s) = (0..self.fd_alloc.used).find(|&s| {
            let f = &self.fds[usize::from(s)];
            f.in_use && f.fd == fd
        }) {
            return Some(s);
        }
        let s = take_slot(&mut self.fd_alloc, H, |s| self.fds[usize::from(s)].next_free)?;
        // A dirty mark stays: the slot may still be queued for its earlier fd.
        let dirty = self.fds[usize::from(s)].dirty;
        self.fds[usize::from(s)] = FdSlot { fd, in_use: true, dirty, ..FdSlot::EMPTY };
        Some(s)
    }

    fn add_handle(
        &mut self,
        fd: RawFd,
        events: HandleEvents,
        data: u64,
        callback: HandleFn<L>,
        free: Option<FreeFn<L>>,
    ) -> Result<HandleId, Error> {
        if self.next_handle <= 0 || self.handle_ids.is_full() {
            return Err(Error::Capacity);
        }
        let Some(slot) = take_slot(&mut self.handle_alloc, H, |s| self.handles[usize::from(s)].next) else {
            return Err(Error::Capacity);
        };
        let Some(fd_slot) = self.fd_slot_for(fd) else {
            self.free_handle_slot(slot);
            return Err(Error::Capacity);
        };
        let id = self.next_handle;
        self.next_handle = id.checked_add(1).unwrap_or(0);
        self.handles[usize::from(slot)] = HandleSlot {
            id,
            fd_slot,
            next: NONE,
            events,
            state: State::Live,
            armed: false,
            callback: Some(callback),
            free,
            data,
        };
        // Append: the fd's list stays in id order.
        let f = &mut self.fds[usize::from(fd_slot)];
        match f.tail {
            NONE => f.head = slot,
            tail => self.handles[usize::from(tail)].next = slot,
        }
        self.fds[usize::from(fd_slot)].tail = slot;
        // Ids only grow: pushing keeps the index sorted; never full (checked).
        let _ = self.handle_ids.push((id, slot));
        self.mark_fd(fd_slot);
        Ok(HandleId::new(id))
    }

    fn remove_handle(&mut self, id: HandleId) -> Result<(), Error> {
        let i = self.handle_ids.binary_search_by_key(&id.get(), |e| e.0).map_err(|_| Error::NotFound)?;
        let (_, slot) = self.handle_ids.remove(i);
        let h = self.handles[usize::from(slot)];
        // Unlink from its fd's list, so no dispatch finds it again.
        let fd_slot = usize::from(h.fd_slot);
        let mut prev = NONE;
        let mut cur = self.fds[fd_slot].head;
        while cur != NONE && cur != slot {
            prev = cur;
            cur = self.handles[usize::from(cur)].next;
        }
        if cur == slot {
            match prev {
                NONE => self.fds[fd_slot].head = h.next,
                p => self.handles[usize::from(p)].next = h.next,
            }
            if self.fds[fd_slot].tail == slot {
                self.fds[fd_slot].tail = prev;
            }
        }
        if self.fds[fd_slot].head == NONE {
            // The fd's last handle: the slot may serve another fd at once
            // (the loop side sees the fd change and moves its watcher).
            self.fds[fd_slot].in_use = false;
            self.fds[fd_slot].next_free = self.fd_alloc.free;
            self.fd_alloc.free = h.fd_slot;
        }
        self.mark_fd(h.fd_slot);
        if h.free.is_some() {
            self.handles[usize::from(slot)].state = State::Retired;
            self.handles[usize::from(slot)].armed = false;
            // Never full: a slot is retired at most once until freed.
            let _ = self.retired_handles.push_back(slot);
        } else {
            self.free_handle_slot(slot);
        }
        Ok(())
    }

    fn free_handle_slot(&mut self, slot: u16) {
        self.handles[usize::from(slot)] = HandleSlot { next: self.handle_alloc.free, ..HandleSlot::EMPTY };
        self.handle_alloc.free = slot;
    }

    fn add_timeout(
        &mut self,
        ms: i32,
        data: u64,
        callback: TimeoutFn<L>,
        free: Option<FreeFn<L>>,
    ) -> Result<TimeoutId, Error> {
        if self.next_timeout <= 0 || self.timeout_ids.is_full() {
            return Err(Error::Capacity);
        }
        let Some(slot) = take_slot(&mut self.timeout_alloc, T, |s| self.timeouts[usize::from(s)].next_free) else {
            return Err(Error::Capacity);
        };
        let id = self.next_timeout;
        self.next_timeout = id.checked_add(1).unwrap_or(0);
        let dirty = self.timeouts[usize::from(slot)].dirty;
        self.timeouts[usize::from(slot)] = TimeoutSlot {
            id,
            ms: ms.max(-1),
            state: State::Live,
            dirty,
            next_free: NONE,
            callback: Some(callback),
            free,
            data,
        };
        let _ = self.timeout_ids.push((id, slot));
        self.mark_timeout(slot);
        Ok(TimeoutId::new(id))
    }

    fn remove_timeout(&mut self, id: TimeoutId) -> Result<(), Error> {
        let i = self.timeout_ids.binary_search_by_key(&id.get(), |e| e.0).map_err(|_| Error::NotFound)?;
        let (_, slot) = self.timeout_ids.remove(i);
        self.mark_timeout(slot);
        if self.timeouts[usize::from(slot)].free.is_some() {
            self.timeouts[usize::from(slot)].state = State::Retired;
            let _ = self.retired_timeouts.push_back(slot);
        } else {
            self.free_timeout_slot(slot);
        }
        Ok(())
    }

    fn free_timeout_slot(&mut self, slot: u16) {
        let dirty = self.timeouts[usize::from(slot)].dirty;
        self.timeouts[usize::from(slot)] =
            TimeoutSlot { next_free: self.timeout_alloc.free, dirty, ..TimeoutSlot::EMPTY };
        self.timeout_alloc.free = slot;
    }
}

/// A free slot of `alloc` (capacity `cap`): from the free list, whose links
/// `next_of` reads, else the next never-used one.
fn take_slot(alloc: &mut Alloc, cap: usize, next_of: impl Fn(u16) -> u16) -> Option<u16> {
    if alloc.free != NONE {
        let s = alloc.free;
        alloc.free = next_of(s);
        return Some(s);
    }
    if usize::from(alloc.used) < cap {
        alloc.used += 1;
        return Some(alloc.used - 1);
    }
    None
}
