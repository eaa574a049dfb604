//! A Linux-native readiness event loop on raw system calls: no libc, no
//! allocator, every table fixed in size at compile time.
//!
//! # Layers, top to bottom
//!
//! - [`Loop`]: what you use. Watch fds ([`Loop::watch`]), add timers
//!   ([`Loop::after`], [`Loop::every`]), wake it from other threads
//!   ([`Loop::waker`]), and [`run`](Loop::run) it with your own context
//!   value, which every callback receives next to `&mut Loop`.
//! - [`table`]: the watcher table (slot + generation keys, one watcher per
//!   fd) and the timer heap (4-ary, indexed, FIFO among equal deadlines).
//!   Pure safe Rust; you only meet them through `Loop` (or a fuzzer).
//! - [`backend`]: the [`Backend`](backend::Backend) contract and its
//!   implementations: [`Epoll`](backend::Epoll), the default;
//!   [`LinuxAio`](backend::LinuxAio) and [`IoUring`](backend::IoUring),
//!   chosen at run time through [`AnyBackend`](backend::AnyBackend); and
//!   [`Sim`](backend::Sim), deterministic and syscall-free for tests and
//!   fuzzing.
//! - [`sys`]: one file per kernel primitive (epoll, timerfd, eventfd, clock
//!   through the vDSO), [`Errno`] and [`sys::OwnedFd`]. The only `unsafe`.
//!
//! # Example
//!
//! ```
//! use core::time::Duration;
//! use linux_event::Loop;
//!
//! struct App { fired: bool }
//!
//! let mut lp: Loop<App> = Loop::new()?;
//! lp.after(Duration::from_millis(5), |lp, app, _id| {
//!     app.fired = true;
//!     lp.stop();
//! })?;
//! let mut app = App { fired: false };
//! lp.run(&mut app)?;
//! assert!(app.fired);
//! # Ok::<(), linux_event::Error>(())
//! ```
//!
//! The `std` feature adds interop only: `AsFd`/`AsRawFd` for
//! [`sys::OwnedFd`], `From<Errno>` for `std::io::Error`, and
//! `std::error::Error` impls.

#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod backend;
mod error;
mod event_loop;
mod interest;
pub mod process;
#[cfg(feature = "rt")]
#[allow(unsafe_code)]
pub mod rt;
#[allow(unsafe_code)]
mod source;
#[allow(unsafe_code)]
pub mod sys;
pub mod table;
mod time;

#[cfg(feature = "signals")]
pub use backend::MAX_SIGNAL_THREADS;
#[cfg(feature = "waker")]
pub use backend::{MAX_WAKERS, Waker};
pub use error::Error;
#[cfg(feature = "signals")]
pub use event_loop::SignalFn;
#[cfg(feature = "waker")]
pub use event_loop::WakeFn;
pub use event_loop::{
    Id, Loop, LoopTypes, Placed, StaticLoop, TimerEvent, TimerFn, TimerId, WatchEvent, WatchFn, WatchId, WatchOptions,
};
#[cfg(feature = "children")]
pub use event_loop::{PidFn, ReaperFn};
pub use interest::{Interest, Ready, Side, Trigger};
#[cfg(feature = "children")]
pub use source::children::{ChildMode, PidEvent, PidId, PidOptions, PidTarget, ReapEvent, ReaperId};
#[cfg(feature = "signals")]
pub use source::signals::{SignalEvent, SignalId};
#[cfg(feature = "waker")]
pub use source::waker::{WakeEvent, WakeId};
pub use sys::Errno;
pub use time::Instant;

/// The README's examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
