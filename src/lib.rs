//! A Linux-native readiness event loop on raw system calls: no libc, no
//! allocator, every table fixed in size at compile time.
//!
//! # Layers, top to bottom
//!
//! - [`Loop`]: what you use. Every registration has one shape (what to
//!   watch, a `u64` of user data, the callback) and returns a typed id;
//!   [`Loop::remove`] takes any id. Fds ([`Loop::watch`]), timers
//!   ([`Loop::after`], [`Loop::at`], [`Loop::every`]), and the sources:
//!   the waker ([`Loop::waker`], [`Loop::on_wake`]), signals
//!   ([`Loop::signal`]) and child processes ([`Loop::pid`],
//!   [`Loop::reaper`]). [`run`](Loop::run) it with your own context value,
//!   which every callback receives next to `&mut Loop`. A loop of any
//!   capacity can be made in place ([`StaticLoop`], [`Loop::init_in`]).
//! - The sources (waker, signals, children): each owns its state, its
//!   kernel objects and its dispatch, and is called by the pass directly.
//!   Each is a cargo feature (on by default): a static program that uses
//!   none pays nothing for them.
//! - [`table`]: the watcher table (slot + generation keys, one watcher per
//!   fd) and the timer heap (8-ary, indexed, FIFO among equal deadlines).
//!   Pure safe Rust; you only meet them through `Loop` (or a fuzzer).
//! - [`backend`]: the one interface through which the loop and every
//!   source reach the kernel (fd readiness, the clock, the waker's
//!   doorbell, the signalfd and the thread's signal mask, pidfds and
//!   `waitid`), sealed behind [`Backend`](backend::Backend):
//!   [`Epoll`](backend::Epoll), the default; [`LinuxAio`](backend::LinuxAio)
//!   and [`IoUring`](backend::IoUring), chosen at run time through
//!   [`AnyBackend`](backend::AnyBackend); and [`Sim`](backend::Sim), which
//!   simulates all of it in memory (a virtual clock, fds, signals, threads
//!   and child processes) for tests, fuzzing and Miri.
//! - [`sys`]: kernel calls and ABI only, one file per primitive, [`Errno`]
//!   and [`sys::OwnedFd`]. Nearly all of the `unsafe`.
//! - [`process`]: starting programs without libc ([`process::Spawn`]).
//! - [`virt`] (feature `virt`): libvirt's event-loop contract (handles and
//!   timeouts from any thread) as a companion of the loop; the `capi/`
//!   crate makes it callable from C, so that libvirt itself runs on it.
//! - `net` (feature `net`): the Listen, Connect and Stream companions:
//!   sockets with per-pass budgets and backpressure.
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
//! lp.after(Duration::from_millis(5), 0, |lp, app, _ev| {
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
#[cfg(feature = "files")]
pub mod files;
mod interest;
#[cfg(feature = "net")]
pub mod net;
pub mod process;
#[cfg(feature = "rt")]
#[allow(unsafe_code)]
pub mod rt;
mod source;
#[allow(unsafe_code)]
pub mod sys;
pub mod table;
mod time;
#[cfg(feature = "virt")]
pub mod virt;

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
    CheckId, Id, Loop, LoopTypes, PHASE_CALLBACKS, PhaseEvent, PhaseFn, Placed, PrepareId, StaticLoop, TimerEvent,
    TimerFn, TimerId, WatchEvent, WatchFn, WatchId, WatchOptions,
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
