//! The sources besides fds and timers: the waker, signals and children.
//! Each module owns its state, its kernel objects (reached only through
//! the kernel face) and its dispatch; the loop's pass calls them directly.
//!
//! A source hands the pass what to deliver (a callback and its event); it
//! never runs callbacks itself and never reaches another source's state.

#[cfg(feature = "children")]
pub(crate) mod children;
#[cfg(feature = "signals")]
pub(crate) mod signals;
#[cfg(feature = "waker")]
pub(crate) mod waker;
