//! Watchers on the loop: watch, replace, modify, enable/disable, unwatch.
//!
//! Each change reaches the kernel first and the table second, so a refused
//! change leaves the old watcher exactly as it was (nothing is lost).

use super::{Handler, Loop, WatchFn};
use crate::backend::Backend;
use crate::error::Error;
use crate::interest::{Interest, Ready, Side, Trigger};
use crate::sys::{Errno, RawFd};
use crate::table::{Key, Watcher};

/// Names one watcher. Goes stale when the watcher is removed or replaced;
/// a stale id never reaches a later watcher, even in the same slot.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct WatchId(pub(crate) Key);

/// What a watcher callback is told.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    pub(crate) id: WatchId,
    pub(crate) fd: RawFd,
    pub(crate) side: Side,
    pub(crate) ready: Ready,
    pub(crate) data: u64,
}

impl WatchEvent {
    /// The watcher this is for.
    pub fn id(&self) -> WatchId {
        self.id
    }
    /// Its fd.
    pub fn fd(&self) -> RawFd {
        self.fd
    }
    /// Which side this invocation is for.
    pub fn side(&self) -> Side {
        self.side
    }
    /// Everything the kernel reported for the fd in this pass.
    pub fn ready(&self) -> Ready {
        self.ready
    }
    /// The watcher's user data.
    pub fn data(&self) -> u64 {
        self.data
    }
    /// Data can be read.
    pub fn is_readable(&self) -> bool {
        self.ready.contains(Ready::READABLE)
    }
    /// Data can be written.
    pub fn is_writable(&self) -> bool {
        self.ready.contains(Ready::WRITABLE)
    }
    /// An error is pending on the fd.
    pub fn is_error(&self) -> bool {
        self.ready.contains(Ready::ERROR)
    }
    /// The peer hung up (fully, or its writing side).
    pub fn is_hangup(&self) -> bool {
        self.ready.intersects(Ready::HANGUP | Ready::READ_HANGUP)
    }
}

/// How to watch an fd: interest and trigger mode.
///
/// ```
/// use linux_event::{Interest, Trigger, WatchOptions};
/// let opts = WatchOptions::new(Interest::READ).trigger(Trigger::Edge);
/// # let _ = opts;
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct WatchOptions {
    interest: Interest,
    trigger: Trigger,
}

impl WatchOptions {
    /// Level-triggered `interest`.
    pub const fn new(interest: Interest) -> Self {
        WatchOptions { interest, trigger: Trigger::Level }
    }
    /// Sets the trigger mode.
    pub const fn trigger(mut self, trigger: Trigger) -> Self {
        self.trigger = trigger;
        self
    }
}

impl<C, const W: usize, const T: usize, B: Backend> Loop<C, W, T, B> {
    /// Watches `fd` for `interest` (level-triggered), replacing any watcher
    /// the fd already has. `callback` runs once per ready side, read before
    /// write, with `data` in its [`WatchEvent`]. See
    /// [`watch_with`](Self::watch_with).
    pub fn watch(
        &mut self,
        fd: RawFd,
        interest: Interest,
        data: u64,
        callback: WatchFn<Self>,
    ) -> Result<WatchId, Error> {
        self.watch_with(fd, WatchOptions::new(interest), data, callback)
    }

    /// Watches `fd` as `options` say, replacing any watcher the fd has (its
    /// id goes stale and no later event reaches it). Remove it with
    /// [`remove`](Self::remove); find it by fd with
    /// [`watcher_of`](Self::watcher_of).
    ///
    /// Errors: `Capacity` when the table is full; `Reserved` for the loop's
    /// own fds; `Os(EBADF)` for a bad fd; `Os(EPERM)` for a file epoll
    /// cannot watch (regular files, directories). On error nothing changed.
    pub fn watch_with(
        &mut self,
        fd: RawFd,
        options: WatchOptions,
        data: u64,
        callback: WatchFn<Self>,
    ) -> Result<WatchId, Error> {
        if fd < 0 {
            return Err(Error::Os(Errno::EBADF));
        }
        if self.is_reserved(fd) {
            return Err(Error::Reserved);
        }
        let key = self.watchers.next_key(fd)?;
        let was_registered =
            self.watchers.key_of_fd(fd).and_then(|k| self.watchers.get(k)).is_some_and(|w| w.registered);
        let registered = self.sync_kernel(fd, key, was_registered, options.interest, options.trigger)?;
        let watcher = Watcher {
            fd,
            interest: options.interest,
            trigger: options.trigger,
            registered,
            callback: Handler::Io(callback),
            data,
        };
        let (inserted, _replaced) = self.watchers.insert(watcher)?;
        debug_assert_eq!(inserted, key);
        Ok(WatchId(inserted))
    }

    /// Sets the watcher's interest. Always reaches the kernel, so calling it
    /// with the same interest re-arms a oneshot watcher.
    pub fn modify(&mut self, id: WatchId, interest: Interest) -> Result<(), Error> {
        let w = self.io_watcher(id)?;
        self.apply(id, w, interest, w.trigger)
    }

    /// Sets the trigger mode (level, edge, oneshot), keeping the interest.
    pub fn set_trigger(&mut self, id: WatchId, trigger: Trigger) -> Result<(), Error> {
        let w = self.io_watcher(id)?;
        self.apply(id, w, w.interest, trigger)
    }

    /// Turns on the given sides, keeping the others.
    pub fn enable(&mut self, id: WatchId, sides: Interest) -> Result<(), Error> {
        let w = self.io_watcher(id)?;
        self.apply(id, w, w.interest | sides, w.trigger)
    }

    /// Turns off the given sides, keeping the others. A watcher with no side
    /// left stays in the table (its id stays valid) but out of the kernel.
    pub fn disable(&mut self, id: WatchId, sides: Interest) -> Result<(), Error> {
        let w = self.io_watcher(id)?;
        self.apply(id, w, w.interest - sides, w.trigger)
    }

    /// Replaces the watcher's callback.
    pub fn set_callback(&mut self, id: WatchId, callback: WatchFn<Self>) -> Result<(), Error> {
        self.io_watcher(id)?;
        if let Some(w) = self.watchers.get_mut(id.0) {
            w.callback = Handler::Io(callback);
        }
        Ok(())
    }

    /// The watcher's current interest, or `None` if the id is stale.
    pub fn interest(&self, id: WatchId) -> Option<Interest> {
        self.io_watcher(id).ok().map(|w| w.interest)
    }

    /// The id of the watcher on `fd`, if it has one.
    pub fn watcher_of(&self, fd: RawFd) -> Option<WatchId> {
        self.io_key_of_fd(fd).map(WatchId)
    }

    /// Number of live watchers.
    pub fn watcher_count(&self) -> usize {
        self.watchers.len()
    }

    /// The fd watcher with this id (not a pid watcher sharing the table).
    pub(crate) fn io_watcher(&self, id: WatchId) -> Result<Watcher<Handler<Self>>, Error> {
        match self.watchers.get(id.0) {
            Some(w) if matches!(w.callback, Handler::Io(_)) => Ok(*w),
            _ => Err(Error::NotFound),
        }
    }

    fn io_key_of_fd(&self, fd: RawFd) -> Option<Key> {
        if fd < 0 {
            return None;
        }
        let key = self.watchers.key_of_fd(fd)?;
        self.io_watcher(WatchId(key)).ok().map(|_| key)
    }

    fn apply(
        &mut self,
        id: WatchId,
        w: Watcher<Handler<Self>>,
        interest: Interest,
        trigger: Trigger,
    ) -> Result<(), Error> {
        let registered = self.sync_kernel(w.fd, id.0, w.registered, interest, trigger)?;
        if let Some(entry) = self.watchers.get_mut(id.0) {
            entry.interest = interest;
            entry.trigger = trigger;
            entry.registered = registered;
        }
        Ok(())
    }

    /// Brings the kernel's registration of `fd` in line with `interest`;
    /// returns whether the kernel holds it afterwards.
    fn sync_kernel(
        &mut self,
        fd: RawFd,
        key: Key,
        registered: bool,
        interest: Interest,
        trigger: Trigger,
    ) -> Result<bool, Error> {
        let wanted = !kernel_interest(interest).is_empty();
        let k = key.to_u64();
        match (registered, wanted) {
            (true, true) => self.backend.modify(fd, k, interest, trigger)?,
            (false, true) => {
                self.backend.register(fd, k, interest, trigger)?;
                self.in_kernel += 1;
            }
            (true, false) => {
                self.backend.deregister(fd, k)?;
                self.in_kernel -= 1;
            }
            // Nothing to ask the kernel for, but a bad fd is still refused.
            (false, false) => self.backend.check_fd(fd)?,
        }
        Ok(wanted)
    }
}

/// The part of an interest the kernel is asked for. `ERROR` alone asks for
/// nothing: errors are always reported while any side is registered.
fn kernel_interest(interest: Interest) -> Interest {
    interest & (Interest::READ | Interest::WRITE)
}
