//! One handle API for every kind of registration: the sealed [`Id`] trait
//! behind `Loop::remove`, `Loop::is_live` and `Loop::set_data`, and
//! [`LoopTypes`], which lets callback types be keyed on the loop type.

#[cfg(feature = "children")]
use super::Handler;
use super::{CheckId, Loop, PrepareId, TimerId, WatchId};
use crate::backend::Backend;
#[cfg(feature = "children")]
use crate::source::children::{PidId, ReaperId};
#[cfg(feature = "signals")]
use crate::source::signals::SignalId;
#[cfg(feature = "waker")]
use crate::source::waker::WakeId;

/// What a loop type is made of, for the callback aliases
/// ([`WatchFn<L>`](crate::WatchFn) and the others): name the loop type
/// once and every callback type follows it.
pub trait LoopTypes {
    /// The context every callback gets next to the loop.
    type Context;
}

mod private {
    use super::*;

    /// How each kind of id is removed, checked and given new data.
    pub trait IdOps: Copy {
        fn remove_from<C, const W: usize, const T: usize, B: Backend>(self, lp: &mut Loop<C, W, T, B>) -> bool;
        fn is_live_in<C, const W: usize, const T: usize, B: Backend>(self, lp: &Loop<C, W, T, B>) -> bool;
        fn set_data_in<C, const W: usize, const T: usize, B: Backend>(
            self,
            lp: &mut Loop<C, W, T, B>,
            data: u64,
        ) -> bool;
    }
}

/// An id of any kind of registration: [`WatchId`], [`TimerId`],
/// [`SignalId`], [`PidId`], [`ReaperId`], [`WakeId`], [`PrepareId`],
/// [`CheckId`]. Sealed.
pub trait Id: private::IdOps {}

impl<I: private::IdOps> Id for I {}

impl private::IdOps for WatchId {
    fn remove_from<C, const W: usize, const T: usize, B: Backend>(self, lp: &mut Loop<C, W, T, B>) -> bool {
        lp.io_watcher(self).is_ok() && lp.remove_watcher(self.0)
    }
    fn is_live_in<C, const W: usize, const T: usize, B: Backend>(self, lp: &Loop<C, W, T, B>) -> bool {
        lp.io_watcher(self).is_ok()
    }
    fn set_data_in<C, const W: usize, const T: usize, B: Backend>(self, lp: &mut Loop<C, W, T, B>, data: u64) -> bool {
        lp.io_watcher(self).is_ok() && lp.watchers.get_mut(self.0).map(|w| w.data = data).is_some()
    }
}

impl private::IdOps for TimerId {
    fn remove_from<C, const W: usize, const T: usize, B: Backend>(self, lp: &mut Loop<C, W, T, B>) -> bool {
        lp.timers.cancel(self.0)
    }
    fn is_live_in<C, const W: usize, const T: usize, B: Backend>(self, lp: &Loop<C, W, T, B>) -> bool {
        lp.timers.state(self.0).is_some()
    }
    fn set_data_in<C, const W: usize, const T: usize, B: Backend>(self, lp: &mut Loop<C, W, T, B>, data: u64) -> bool {
        match lp.timers.callback(self.0) {
            Some((callback, _)) => lp.timers.set_callback(self.0, (callback, data)),
            None => false,
        }
    }
}

impl private::IdOps for PrepareId {
    fn remove_from<C, const W: usize, const T: usize, B: Backend>(self, lp: &mut Loop<C, W, T, B>) -> bool {
        lp.prepares.remove(self.0)
    }
    fn is_live_in<C, const W: usize, const T: usize, B: Backend>(self, lp: &Loop<C, W, T, B>) -> bool {
        lp.prepares.is_live(self.0)
    }
    fn set_data_in<C, const W: usize, const T: usize, B: Backend>(self, lp: &mut Loop<C, W, T, B>, data: u64) -> bool {
        lp.prepares.set_data(self.0, data)
    }
}

impl private::IdOps for CheckId {
    fn remove_from<C, const W: usize, const T: usize, B: Backend>(self, lp: &mut Loop<C, W, T, B>) -> bool {
        lp.checks.remove(self.0)
    }
    fn is_live_in<C, const W: usize, const T: usize, B: Backend>(self, lp: &Loop<C, W, T, B>) -> bool {
        lp.checks.is_live(self.0)
    }
    fn set_data_in<C, const W: usize, const T: usize, B: Backend>(self, lp: &mut Loop<C, W, T, B>, data: u64) -> bool {
        lp.checks.set_data(self.0, data)
    }
}

#[cfg(feature = "signals")]
impl private::IdOps for SignalId {
    fn remove_from<C, const W: usize, const T: usize, B: Backend>(self, lp: &mut Loop<C, W, T, B>) -> bool {
        lp.signals.remove(&mut lp.backend, self)
    }
    fn is_live_in<C, const W: usize, const T: usize, B: Backend>(self, lp: &Loop<C, W, T, B>) -> bool {
        lp.signals.is_live(self)
    }
    fn set_data_in<C, const W: usize, const T: usize, B: Backend>(self, lp: &mut Loop<C, W, T, B>, data: u64) -> bool {
        lp.signals.set_data(self, data)
    }
}

#[cfg(feature = "children")]
impl private::IdOps for PidId {
    fn remove_from<C, const W: usize, const T: usize, B: Backend>(self, lp: &mut Loop<C, W, T, B>) -> bool {
        lp.pid_watcher(self.0).is_some() && lp.remove_watcher(self.0)
    }
    fn is_live_in<C, const W: usize, const T: usize, B: Backend>(self, lp: &Loop<C, W, T, B>) -> bool {
        lp.pid_watcher(self.0).is_some()
    }
    fn set_data_in<C, const W: usize, const T: usize, B: Backend>(self, lp: &mut Loop<C, W, T, B>, data: u64) -> bool {
        lp.pid_watcher(self.0).is_some() && lp.watchers.get_mut(self.0).map(|w| w.data = data).is_some()
    }
}

#[cfg(feature = "children")]
impl private::IdOps for ReaperId {
    fn remove_from<C, const W: usize, const T: usize, B: Backend>(self, lp: &mut Loop<C, W, T, B>) -> bool {
        let live = lp.children.remove_reaper(self);
        if live {
            // Shrinking the signal set cannot leave the mask wrong.
            let _ = lp.sync_child_signals();
        }
        live
    }
    fn is_live_in<C, const W: usize, const T: usize, B: Backend>(self, lp: &Loop<C, W, T, B>) -> bool {
        lp.children.reaper_is_live(self)
    }
    fn set_data_in<C, const W: usize, const T: usize, B: Backend>(self, lp: &mut Loop<C, W, T, B>, data: u64) -> bool {
        lp.children.set_reaper_data(self, data)
    }
}

#[cfg(feature = "waker")]
impl private::IdOps for WakeId {
    fn remove_from<C, const W: usize, const T: usize, B: Backend>(self, lp: &mut Loop<C, W, T, B>) -> bool {
        lp.waker.remove(self)
    }
    fn is_live_in<C, const W: usize, const T: usize, B: Backend>(self, lp: &Loop<C, W, T, B>) -> bool {
        lp.waker.is_live(self)
    }
    fn set_data_in<C, const W: usize, const T: usize, B: Backend>(self, lp: &mut Loop<C, W, T, B>, data: u64) -> bool {
        lp.waker.set_data(self, data)
    }
}

#[cfg(feature = "children")]
impl<C, const W: usize, const T: usize, B: Backend> Loop<C, W, T, B> {
    /// The pid watcher under `key`, if it is one.
    pub(crate) fn pid_watcher(&self, key: crate::table::Key) -> Option<crate::table::Watcher<Handler<Self>>> {
        self.watchers.get(key).copied().filter(|w| w.callback.is_pid())
    }
}
