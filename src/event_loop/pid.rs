//! Child processes on the loop: pid watchers and the any-child reaper, over
//! the children source (which owns the pidfds and every `waitid`).
//!
//! A pid watcher lives in the watcher table (a pidfd is an fd like any
//! other, and generation keys protect it the same way), so it costs one
//! watcher slot. A child's status reaches exactly one party: its pid
//! watcher if it has one, whichever path notices the exit first, else the
//! reaper.

use super::{Handler, Loop, PidFn, ReaperFn};
use crate::backend::{Backend, ObjectFd};
use crate::error::Error;
use crate::interest::{Interest, Trigger};
use crate::source::children::{ChildMode, PidEvent, PidId, PidOptions, PidTarget, Reaped, ReaperId};
use crate::sys::{Errno, ExitStatus, SIGCHLD, SigSet};
use crate::table::{Key, Watcher};

impl<C, const W: usize, const T: usize, B: Backend> Loop<C, W, T, B> {
    /// Calls `callback` once when process `target` exits (a pid, or a
    /// [`Spawned`](crate::sys::Spawned) child whose pidfd is adopted), then
    /// forgets it. The child is reaped; see [`pid_with`](Self::pid_with).
    ///
    /// ```standalone_crate
    /// use linux_event::{Loop, process::Spawn, sys::ExitStatus};
    ///
    /// let mut lp: Loop<Option<ExitStatus>> = Loop::new()?;
    /// let child = Spawn::new(c"sh").args(&[c"sh", c"-c", c"exit 3"]).spawn()?;
    /// lp.pid(child, 0, |_, status, ev| *status = ev.status().ok())?;
    /// let mut status = None;
    /// lp.run(&mut status)?; // returns once nothing is left to wait for
    /// assert_eq!(status, Some(ExitStatus::Exited(3)));
    /// # Ok::<(), linux_event::Error>(())
    /// ```
    pub fn pid(&mut self, target: impl Into<PidTarget>, data: u64, callback: PidFn<Self>) -> Result<PidId, Error> {
        self.pid_with(target, PidOptions::default(), data, callback)
    }

    /// [`pid`](Self::pid) with options: `reap(false)` leaves the zombie for
    /// someone else to wait for (the reaper never takes it either).
    ///
    /// The first pid watcher or reaper sets SIGCHLD's disposition back to
    /// the default if it was "ignore" (under which the kernel reaps
    /// children itself and their statuses are lost).
    ///
    /// Errors: `Os(ESRCH)` if there is no such process; `Os(EINVAL)` for a
    /// pid of 0 or less; `AlreadyWatched` if the process has a pid watcher
    /// of this loop (one per process: remove it first); in SIGCHLD mode
    /// ([`child_mode`](Self::child_mode)), `Os(ECHILD)` for a process that
    /// is not a child of this one (only a pidfd can watch those); `Capacity`
    /// when the watcher table is full, or for `reap(false)` when `W`
    /// zombies are kept for their users already.
    pub fn pid_with(
        &mut self,
        target: impl Into<PidTarget>,
        options: PidOptions,
        data: u64,
        callback: PidFn<Self>,
    ) -> Result<PidId, Error> {
        let target = target.into();
        let pid = match &target {
            PidTarget::Pid(pid) => *pid,
            PidTarget::Spawned(child) => child.pid,
        };
        if pid > 0 && self.pid_watcher_of(pid).is_some() {
            return Err(Error::AlreadyWatched);
        }
        if !options.reap {
            self.children.reserve_keeper(&mut self.backend)?;
        }
        let opened = self.children.open(&mut self.backend, target);
        let (pid, pidfd) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                if !options.reap {
                    self.children.keeper_gone();
                }
                return Err(e);
            }
        };
        // SIGCHLD-mode watchers have no fd: they are filed under -pid, a
        // number no fd can have, and never reach the backend.
        let fd = pidfd.as_ref().map_or(-pid, ObjectFd::raw);
        let key = match self.watchers.next_key(fd) {
            Ok(key) => key,
            Err(e) => {
                if let Some(fd) = pidfd {
                    self.backend.release(fd);
                }
                if !options.reap {
                    self.children.keeper_gone();
                }
                return Err(e);
            }
        };
        match pidfd {
            Some(pidfd) => {
                if let Err(e) = self.backend.register(fd, key.to_u64(), Interest::READ, Trigger::Level) {
                    self.backend.release(pidfd);
                    if !options.reap {
                        self.children.keeper_gone();
                    }
                    return Err(e.into());
                }
                self.children.keep_pidfd(key, pidfd);
                self.in_kernel += 1;
            }
            None => {
                self.children.by_pid += 1;
                if let Err(e) = self.sync_child_signals() {
                    self.children.by_pid -= 1;
                    if !options.reap {
                        self.children.keeper_gone();
                    }
                    return Err(e);
                }
                // It may have exited before SIGCHLD was watched.
                self.children.scan_owed = true;
            }
        }
        let watcher = Watcher {
            fd,
            interest: Interest::READ,
            trigger: Trigger::Level,
            registered: fd >= 0,
            callback: Handler::Pid { callback, pid, reap: options.reap },
            data,
        };
        let (inserted, _) = self.watchers.insert(watcher)?;
        debug_assert_eq!(inserted, key);
        Ok(PidId(inserted))
    }

    /// Calls `callback` with every child that exits and has no pid watcher
    /// (orphans reparented to a PID 1 or subreaper included), reaping each
    /// at once; replaces an earlier reaper. Zombies that exist already are
    /// collected on the next pass. A child whose pid watcher said
    /// `reap(false)` is left alone: the reaper steps past that zombie by
    /// listing the process's children (`/proc/self/task/*/children`);
    /// without `/proc`, later zombies wait until the kept one is reaped.
    ///
    /// ```standalone_crate
    /// use linux_event::{Loop, process::Spawn, sys::{self, WaitTarget}};
    ///
    /// let child = Spawn::new(c"true").spawn()?;
    /// // Until it has exited (a zombie: not reaped yet).
    /// while sys::wait_exit(WaitTarget::Pid(child.pid), false)?.is_none() {
    ///     std::thread::yield_now();
    /// }
    /// let mut lp: Loop<Vec<i32>> = Loop::new()?;
    /// lp.reaper(0, |lp, reaped, ev| {
    ///     reaped.push(ev.pid());
    ///     lp.stop();
    /// })?;
    /// let mut reaped = Vec::new();
    /// lp.run(&mut reaped)?;
    /// assert_eq!(reaped, [child.pid]);
    /// # Ok::<(), linux_event::Error>(())
    /// ```
    pub fn reaper(&mut self, data: u64, callback: ReaperFn<Self>) -> Result<ReaperId, Error> {
        self.children.keep_statuses(&mut self.backend)?;
        let had = self.children.has_reaper();
        let id = self.children.set_reaper(callback, data);
        if !had && let Err(e) = self.sync_child_signals() {
            self.children.remove_reaper(id);
            return Err(e);
        }
        Ok(id)
    }

    /// How the loop learns about exited children; after a fallback, why.
    pub fn child_mode(&self) -> ChildMode {
        self.children.mode()
    }

    /// Makes later pid watchers use SIGCHLD + `waitid` instead of pidfds,
    /// as if `pidfd_open` had failed with `reason` (for tests of that path,
    /// and for sandboxes known to refuse pidfds).
    pub fn force_sigchld_mode(&mut self, reason: Errno) {
        self.children.force_sigchld_mode(reason);
    }

    /// Watches SIGCHLD exactly while the children source needs it.
    pub(crate) fn sync_child_signals(&mut self) -> Result<(), Error> {
        let set = if self.children.needs_sigchld() { SigSet::empty().with(SIGCHLD) } else { SigSet::empty() };
        self.signals.set_internal(&mut self.backend, set)
    }

    /// A pid watcher left the table: its pidfd goes back, or the SIGCHLD
    /// count drops.
    pub(crate) fn pid_watcher_removed(&mut self, key: Key, had_pidfd: bool, reap: bool) {
        if !reap {
            self.children.keeper_gone();
        }
        if had_pidfd {
            self.children.release_pidfd(&mut self.backend, key);
            return;
        }
        self.children.by_pid -= 1;
        if !self.children.needs_sigchld() {
            let _ = self.sync_child_signals();
        }
    }

    /// The pid watcher of process `pid`, if this loop has one.
    fn pid_watcher_of(&self, pid: i32) -> Option<Key> {
        if let Some(key) = self.watchers.key_of_fd(-pid) {
            return Some(key);
        }
        self.watchers.keys().find(|&k| {
            matches!(self.watchers.get(k), Some(Watcher { callback: Handler::Pid { pid: p, .. }, .. }) if *p == pid)
        })
    }

    /// A pid watcher's pidfd became readable: collect and deliver.
    pub(crate) fn pid_ready(&mut self, ctx: &mut C, key: Key, pid: i32, reap: bool) -> usize {
        let status = self.children.collect(&mut self.backend, key, reap).map(|(_, status)| status);
        self.deliver_pid(ctx, key, pid, status)
    }

    /// Removes the watcher, then runs its callback with `status`.
    fn deliver_pid(&mut self, ctx: &mut C, key: Key, pid: i32, status: Result<ExitStatus, Errno>) -> usize {
        let Some(w) = self.pid_watcher(key) else { return 0 };
        let Handler::Pid { callback, .. } = w.callback else { return 0 };
        self.remove_watcher(key);
        callback(self, ctx, PidEvent { id: PidId(key), pid, status, data: w.data });
        1
    }

    /// SIGCHLD arrived (or a scan is owed): collect SIGCHLD-mode watchers'
    /// children and, with a reaper, every exited child.
    pub(crate) fn reap_children(&mut self, ctx: &mut C) -> usize {
        self.children.scan_owed = false;
        let mut calls = 0;
        if self.children.by_pid > 0 {
            for slot in 0..self.watchers.slot_count() {
                let Some(key) = self.watchers.key_at(slot) else { continue };
                let Some(w) = self.pid_watcher(key) else { continue };
                let Handler::Pid { pid, reap, .. } = w.callback else { continue };
                if w.registered {
                    continue;
                }
                if let Some(status) = self.children.check(&mut self.backend, pid, reap) {
                    calls += self.deliver_pid(ctx, key, pid, status);
                }
            }
        }
        if self.children.has_reaper() {
            self.children.prune_parked(&mut self.backend);
        }
        loop {
            let watchers = &self.watchers;
            let watched = |pid: i32| {
                watchers.keys().find_map(|k| match watchers.get(k) {
                    Some(Watcher { callback: Handler::Pid { pid: p, reap, .. }, .. }) if *p == pid => Some((k, *reap)),
                    _ => None,
                })
            };
            match self.children.reap_next(&mut self.backend, watched) {
                None => break,
                Some(Reaped::Watcher { key, pid, status }) => calls += self.deliver_pid(ctx, key, pid, Ok(status)),
                Some(Reaped::Reaper(callback, event)) => {
                    callback(self, ctx, event);
                    calls += 1;
                }
            }
        }
        calls
    }
}
