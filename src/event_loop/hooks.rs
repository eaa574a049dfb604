//! The optional parts of a pass (signals, children), reached through
//! function pointers that are set when a program first uses them.
//!
//! A program that never calls `signal`, `pid` or `children` never stores
//! these pointers, so the linker drops all of that code from its binary.

use super::{Handler, Loop};
use crate::backend::Backend;
use crate::sys::RawFd;
use crate::table::{Key, Watcher};

type Pass<C, const W: usize, const T: usize, B> = fn(&mut Loop<C, W, T, B>, &mut C) -> usize;
type ChildReady<C, const W: usize, const T: usize, B> =
    fn(&mut Loop<C, W, T, B>, &mut C, Key, RawFd, i32, bool) -> usize;
type Removed<C, const W: usize, const T: usize, B> = fn(&mut Loop<C, W, T, B>, &Watcher<Handler<C, W, T, B>>);
type Teardown<C, const W: usize, const T: usize, B> = fn(&mut Loop<C, W, T, B>);

pub(crate) struct Hooks<C, const W: usize, const T: usize, B: Backend> {
    /// Drains the signalfd and runs signal callbacks.
    pub(crate) signals: Option<Pass<C, W, T, B>>,
    /// Restores the signal mask (loop drop).
    pub(crate) restore_mask: Option<Teardown<C, W, T, B>>,
    /// A pid watcher's pidfd became readable.
    pub(crate) child_ready: Option<ChildReady<C, W, T, B>>,
    /// The SIGCHLD-mode scan and the any-child reaper.
    pub(crate) reap: Option<Pass<C, W, T, B>>,
    /// A pid watcher left the table: close its pidfd or update the counts.
    pub(crate) child_removed: Option<Removed<C, W, T, B>>,
}

impl<C, const W: usize, const T: usize, B: Backend> Hooks<C, W, T, B> {
    pub(crate) const fn new() -> Self {
        Hooks { signals: None, restore_mask: None, child_ready: None, reap: None, child_removed: None }
    }
}
