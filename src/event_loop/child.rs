//! Child processes on the loop: pid watchers (pidfd, or SIGCHLD + waitid
//! where pidfds are refused), and any-child reaping for PID 1.
//!
//! A child's status reaches its pid watcher exactly once, whichever path
//! reaps it: the pidfd path, the fallback scan, or the any-child reaper.
//! A pid watcher lives in the watcher table, so it costs one watcher slot.

use super::{ChildrenFn, Handler, Loop, PidFn};
use crate::backend::Backend;
use crate::error::Error;
use crate::interest::{Interest, Trigger};
use crate::sys::{self, Errno, ExitStatus, OwnedFd, RawFd, SIGCHLD, SigSet, Spawned, WaitTarget, wait_exit};
use crate::table::{Key, Watcher};

/// Names one pid watcher. Goes stale once its status was delivered or it
/// was cancelled.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChildId(pub(crate) Key);

/// What a pid watcher's callback is told.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ChildEvent {
    pub(crate) id: ChildId,
    pub(crate) pid: i32,
    pub(crate) status: Result<ExitStatus, Errno>,
    pub(crate) data: u64,
}

impl ChildEvent {
    /// The watcher (already removed when the callback runs).
    pub fn id(&self) -> ChildId {
        self.id
    }
    /// The process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }
    /// How it ended; `Err(ECHILD)` for a process that is not our child
    /// (it ended, but its status is its parent's to collect).
    pub fn status(&self) -> Result<ExitStatus, Errno> {
        self.status
    }
    /// The watcher's user data.
    pub fn data(&self) -> u64 {
        self.data
    }
}

/// How the loop learns that children exited.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum ChildMode {
    /// A pidfd per watched child (Linux 5.3+).
    #[default]
    Pidfd,
    /// SIGCHLD and `waitid` per watched pid, because `pidfd_open` failed with
    /// the given errno (`ENOSYS`: old kernel or emulator; `EPERM`: seccomp),
    /// or because it was asked for.
    Sigchld(Errno),
}

/// Options of a pid watcher.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PidOptions {
    reap: bool,
    data: u64,
}

impl Default for PidOptions {
    fn default() -> Self {
        PidOptions { reap: true, data: 0 }
    }
}

impl PidOptions {
    /// Reap the child (the default), or leave it a zombie (`WNOWAIT`) so
    /// that someone else can still wait for it.
    pub const fn reap(mut self, reap: bool) -> Self {
        self.reap = reap;
        self
    }
    /// User data handed back in the [`ChildEvent`].
    pub const fn data(mut self, data: u64) -> Self {
        self.data = data;
        self
    }
}

/// The child-side state of a loop.
pub(crate) struct Children<F> {
    pub(crate) mode: ChildMode,
    /// The any-child reaper.
    pub(crate) reaper: Option<F>,
    /// Watchers without a pidfd (fallback mode).
    pub(crate) by_pid: usize,
    /// A scan is owed: something may have exited before SIGCHLD was watched.
    pub(crate) scan_owed: bool,
}

impl<F> Children<F> {
    pub(crate) const fn new() -> Self {
        Children { mode: ChildMode::Pidfd, reaper: None, by_pid: 0, scan_owed: false }
    }
}

impl<C, const W: usize, const T: usize, B: Backend> Loop<C, W, T, B> {
    /// Calls `callback` once when process `pid` exits, then forgets it.
    /// `Os(ESRCH)` if there is no such process.
    pub fn pid(&mut self, pid: i32, callback: PidFn<C, W, T, B>, data: u64) -> Result<ChildId, Error> {
        self.pid_with(pid, PidOptions::default().data(data), callback)
    }

    /// [`pid`](Self::pid) with options (reap or not, user data).
    pub fn pid_with(&mut self, pid: i32, options: PidOptions, callback: PidFn<C, W, T, B>) -> Result<ChildId, Error> {
        if pid <= 0 {
            return Err(Error::Os(Errno::EINVAL));
        }
        if self.children.mode == ChildMode::Pidfd {
            match sys::pidfd_open(pid) {
                Ok(fd) => return self.add_child(pid, Some(fd), options, callback),
                Err(e @ (Errno::ENOSYS | Errno::EPERM)) => self.children.mode = ChildMode::Sigchld(e),
                Err(e) => return Err(e.into()),
            }
        }
        // Fallback: the process must exist now; SIGCHLD tells when it ends.
        sys::kill(pid, 0).or_else(|e| if e == Errno::EPERM { Ok(()) } else { Err(e) })?;
        self.add_child(pid, None, options, callback)
    }

    /// Watches a child started with [`sys::spawn`] or `process::Spawn`,
    /// adopting its pidfd (no second `pidfd_open`, no pid-reuse race).
    pub fn child(&mut self, child: Spawned, callback: PidFn<C, W, T, B>, data: u64) -> Result<ChildId, Error> {
        let options = PidOptions::default().data(data);
        match (child.pidfd, self.children.mode) {
            (Some(fd), ChildMode::Pidfd) => self.add_child(child.pid, Some(fd), options, callback),
            _ => self.pid_with(child.pid, options, callback),
        }
    }

    /// Stops watching a child. Returns whether the watcher was live.
    pub fn cancel_pid(&mut self, id: ChildId) -> bool {
        self.remove_watcher(id.0)
    }

    /// Calls `callback` with every child that exits (orphans reparented to
    /// a PID 1 or subreaper included), reaping each at once; replaces an
    /// earlier reaper. A child that has a pid watcher is delivered to that
    /// watcher instead, exactly once, whichever path reaps it.
    pub fn children(&mut self, callback: ChildrenFn<C, W, T, B>) -> Result<(), Error> {
        self.install_child_hooks();
        self.set_internal_signals(self.internal_signals(true))?;
        self.children.reaper = Some(callback);
        // Zombies from before this call: collect them on the next pass.
        self.children.scan_owed = true;
        Ok(())
    }

    /// Stops any-child reaping.
    pub fn stop_children(&mut self) {
        self.children.reaper = None;
        let _ = self.set_internal_signals(self.internal_signals(false));
    }

    /// How the loop learns about exited children; after a fallback, why.
    pub fn child_mode(&self) -> ChildMode {
        self.children.mode
    }

    /// Makes later pid watchers use SIGCHLD + `waitid` instead of pidfds,
    /// as if `pidfd_open` had failed with `reason` (for tests of that path,
    /// and for sandboxes known to refuse pidfds).
    pub fn force_sigchld_mode(&mut self, reason: Errno) {
        self.children.mode = ChildMode::Sigchld(reason);
    }

    fn internal_signals(&self, reaper: bool) -> SigSet {
        if reaper || self.children.by_pid > 0 { SigSet::empty().with(SIGCHLD) } else { SigSet::empty() }
    }

    fn add_child(
        &mut self,
        pid: i32,
        pidfd: Option<OwnedFd>,
        options: PidOptions,
        callback: PidFn<C, W, T, B>,
    ) -> Result<ChildId, Error> {
        self.install_child_hooks();
        let by_pidfd = pidfd.is_some();
        // Fallback watchers have no fd: they are filed under -pid, a number
        // no fd can have, and never reach the backend.
        let fd = pidfd.as_ref().map_or(-pid, OwnedFd::as_raw_fd);
        let key = self.watchers.next_key(fd)?;
        if by_pidfd {
            self.backend.register(fd, key.to_u64(), Interest::READ, Trigger::Level)?;
        } else {
            self.children.by_pid += 1;
            if let Err(e) = self.set_internal_signals(self.internal_signals(false)) {
                self.children.by_pid -= 1;
                return Err(e);
            }
            // It may have exited before SIGCHLD was watched.
            self.children.scan_owed = true;
        }
        let handler = Handler::Child { callback, pid, reap: options.reap };
        let watcher = Watcher {
            fd,
            interest: Interest::READ,
            trigger: Trigger::Level,
            registered: by_pidfd,
            callback: handler,
            data: options.data,
        };
        let (key, replaced) = self.watchers.insert(watcher)?;
        if by_pidfd {
            self.in_kernel += 1;
        }
        if replaced.is_some_and(|old| !old.registered) {
            // A second watcher for the same pid (SIGCHLD mode) replaced the first.
            self.children.by_pid -= 1;
        }
        if let Some(fd) = pidfd {
            // The watcher table owns the pidfd from here; `remove_watcher` closes it.
            let _ = fd.into_raw_fd();
        }
        Ok(ChildId(key))
    }

    /// Makes the pass reach the child code (see `hooks`).
    fn install_child_hooks(&mut self) {
        self.hooks.child_ready = Some(Self::child_ready);
        self.hooks.reap = Some(Self::reap_children);
        self.hooks.child_removed = Some(Self::child_removed);
    }

    /// A pid watcher left the table: close the pidfd the loop owns, or keep
    /// the SIGCHLD-mode count (and stop watching SIGCHLD when it is zero).
    fn child_removed(&mut self, w: &Watcher<Handler<C, W, T, B>>) {
        if w.registered {
            let _ = sys::close(w.fd);
            return;
        }
        self.children.by_pid -= 1;
        if self.children.by_pid == 0 && self.children.reaper.is_none() {
            let _ = self.set_internal_signals(SigSet::empty());
        }
    }

    /// The pidfd of a child watcher became readable: collect and deliver.
    fn child_ready(&mut self, ctx: &mut C, key: Key, fd: RawFd, pid: i32, reap: bool) -> usize {
        let status = match wait_exit(WaitTarget::Pidfd(fd), reap) {
            Ok(Some((_, status))) => Ok(status),
            // Readable means exited; nothing to report means someone else
            // (not this loop) collected it.
            Ok(None) => Err(Errno::ECHILD),
            Err(e) => Err(e),
        };
        self.deliver_child(ctx, key, pid, status)
    }

    /// Removes the watcher, then runs its callback with `status`.
    fn deliver_child(&mut self, ctx: &mut C, key: Key, pid: i32, status: Result<ExitStatus, Errno>) -> usize {
        let Some(w) = self.watchers.get(key).copied() else { return 0 };
        let Handler::Child { callback, .. } = w.callback else { return 0 };
        self.remove_watcher(key);
        callback(self, ctx, super::ChildEvent { id: ChildId(key), pid, status, data: w.data });
        1
    }

    /// SIGCHLD arrived (or a scan is owed): collect fallback watchers' children
    /// and, with a reaper, every exited child.
    pub(crate) fn reap_children(&mut self, ctx: &mut C) -> usize {
        self.children.scan_owed = false;
        let mut calls = 0;
        if self.children.by_pid > 0 {
            for slot in 0..self.watchers.slot_count() {
                let Some(key) = self.watchers.key_at(slot) else { continue };
                let Some(w) = self.watchers.get(key).copied() else { continue };
                let Handler::Child { pid, reap, .. } = w.callback else { continue };
                if w.registered {
                    continue;
                }
                match wait_exit(WaitTarget::Pid(pid), reap) {
                    Ok(Some((_, status))) => calls += self.deliver_child(ctx, key, pid, Ok(status)),
                    Ok(None) => {}
                    Err(e) => calls += self.deliver_child(ctx, key, pid, Err(e)),
                }
            }
        }
        while let Some(reaper) = self.children.reaper {
            let (pid, status) = match wait_exit(WaitTarget::Any, true) {
                Ok(Some(found)) => found,
                // ECHILD: no children at all; Ok(None): none exited yet.
                _ => break,
            };
            if let Some(key) = self.child_watcher_of(pid) {
                calls += self.deliver_child(ctx, key, pid, Ok(status));
                continue;
            }
            reaper(self, ctx, pid, status);
            calls += 1;
        }
        calls
    }

    fn child_watcher_of(&self, pid: i32) -> Option<Key> {
        if let Some(key) = self.watchers.key_of_fd(-pid) {
            return Some(key);
        }
        self.watchers.keys().find(|&k| {
            matches!(self.watchers.get(k), Some(Watcher { callback: Handler::Child { pid: p, .. }, .. }) if *p == pid)
        })
    }
}
