//! The contract's values: event bits, ids, what callbacks are told, and
//! the callback types (keyed on the loop type, like the loop's own).

use crate::event_loop::LoopTypes;
use crate::sys::RawFd;
use bitflags::bitflags;
use core::num::NonZeroI32;

bitflags! {
    /// A handle's events, with libvirt's values (`VIR_EVENT_HANDLE_*`).
    /// `ERROR` and `HANGUP` are reported to every handle of an fd whose
    /// events are not empty, asked for or not, as poll(2) does.
    #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
    pub struct HandleEvents: u32 {
        /// Data can be read (also: the peer closed its writing side).
        const READABLE = 1;
        /// Data can be written.
        const WRITABLE = 2;
        /// An error is pending on the fd (or it could not be watched).
        const ERROR = 4;
        /// The fd hung up.
        const HANGUP = 8;
    }
}

/// Names one handle: a positive number, never reused for the life of its
/// table (libvirt's `watch`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HandleId(NonZeroI32);

/// Names one timeout: a positive number, never reused for the life of its
/// table (libvirt's `timer`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimeoutId(NonZeroI32);

macro_rules! raw_id {
    ($t:ident) => {
        impl $t {
            /// The id as libvirt passes it around (always positive).
            pub const fn get(self) -> i32 {
                self.0.get()
            }
            /// The id from libvirt's number: `None` unless positive (an
            /// unknown positive number is simply not found).
            pub const fn from_raw(raw: i32) -> Option<Self> {
                match NonZeroI32::new(raw) {
                    Some(n) if raw > 0 => Some($t(n)),
                    _ => None,
                }
            }
            pub(super) const fn new(raw: i32) -> Self {
                match NonZeroI32::new(raw) {
                    Some(n) => $t(n),
                    None => panic!("ids start at 1"),
                }
            }
        }
    };
}
raw_id!(HandleId);
raw_id!(TimeoutId);

/// What a handle callback is told.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct HandleEvent {
    pub(super) id: HandleId,
    pub(super) fd: RawFd,
    pub(super) events: HandleEvents,
    pub(super) data: u64,
}

impl HandleEvent {
    /// The handle.
    pub fn id(&self) -> HandleId {
        self.id
    }
    /// Its fd.
    pub fn fd(&self) -> RawFd {
        self.fd
    }
    /// What happened: the handle's events that are ready, plus `ERROR` and
    /// `HANGUP` when the fd has them.
    pub fn events(&self) -> HandleEvents {
        self.events
    }
    /// The handle's user data (libvirt's `opaque`).
    pub fn data(&self) -> u64 {
        self.data
    }
}

/// What a timeout callback is told.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TimeoutEvent {
    pub(super) id: TimeoutId,
    pub(super) data: u64,
}

impl TimeoutEvent {
    /// The timeout.
    pub fn id(&self) -> TimeoutId {
        self.id
    }
    /// The timeout's user data (libvirt's `opaque`).
    pub fn data(&self) -> u64 {
        self.data
    }
}

/// Which registration a free callback releases.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Released {
    /// A removed handle.
    Handle(HandleId),
    /// A removed timeout.
    Timeout(TimeoutId),
}

/// What a free callback is told: the registration that went, and its data.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FreeEvent {
    pub(super) what: Released,
    pub(super) data: u64,
}

impl FreeEvent {
    /// The handle or timeout that was removed.
    pub fn released(&self) -> Released {
        self.what
    }
    /// Its user data (libvirt's `opaque`, now the callback's to free).
    pub fn data(&self) -> u64 {
        self.data
    }
}

type Ctx<L> = <L as LoopTypes>::Context;

/// A handle callback: once per pass in which its fd has events for it.
pub type HandleFn<L> = fn(&mut L, &mut Ctx<L>, HandleEvent);
/// A timeout callback: once per expiry (every pass for an interval of 0).
pub type TimeoutFn<L> = fn(&mut L, &mut Ctx<L>, TimeoutEvent);
/// A free callback: exactly once per removed registration that has one,
/// after dispatch, never inside another callback and never under a lock.
pub type FreeFn<L> = fn(&mut L, &mut Ctx<L>, FreeEvent);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_positive_only() {
        assert_eq!(HandleId::from_raw(0), None);
        assert_eq!(HandleId::from_raw(-1), None);
        assert_eq!(HandleId::from_raw(i32::MIN), None);
        assert_eq!(HandleId::from_raw(7).map(HandleId::get), Some(7));
        assert_eq!(TimeoutId::from_raw(i32::MAX).map(TimeoutId::get), Some(i32::MAX));
    }

    #[test]
    fn event_bits_are_libvirts() {
        assert_eq!(HandleEvents::READABLE.bits(), 1);
        assert_eq!(HandleEvents::WRITABLE.bits(), 2);
        assert_eq!(HandleEvents::ERROR.bits(), 4);
        assert_eq!(HandleEvents::HANGUP.bits(), 8);
    }
}
