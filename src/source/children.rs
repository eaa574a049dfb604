//! The children source: how the loop learns that processes exited (a pidfd
//! per pid watcher, or SIGCHLD and `waitid` where pidfds are refused), the
//! pidfds it owns, and the any-child reaper for PID 1.
//!
//! A child's status reaches exactly one party: its pid watcher if it has
//! one (whichever path notices the exit first), else the reaper. A watcher
//! that asked not to reap leaves the zombie for its user; the reaper steps
//! past such zombies instead of collecting them. Every kernel call goes
//! through the kernel face.

use crate::backend::{ChildTarget, Kernel};
use crate::error::Error;
use crate::sys::{Errno, ExitStatus, OwnedFd};
use crate::table::Key;
use heapless::Vec;

/// Names one pid watcher. Goes stale once its status was delivered or it
/// was removed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct PidId(pub(crate) Key);

/// Names the any-child reaper registration.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReaperId {
    pub(crate) generation: u32,
}

/// What a pid watcher's callback is told.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PidEvent {
    pub(crate) id: PidId,
    pub(crate) pid: i32,
    pub(crate) status: Result<ExitStatus, Errno>,
    pub(crate) data: u64,
}

impl PidEvent {
    /// The watcher (already removed when the callback runs).
    pub fn id(&self) -> PidId {
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

/// What the reaper's callback is told: a child that exited and was reaped.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ReapEvent {
    pub(crate) id: ReaperId,
    pub(crate) pid: i32,
    pub(crate) status: ExitStatus,
    pub(crate) data: u64,
}

impl ReapEvent {
    /// The reaper registration.
    pub fn id(&self) -> ReaperId {
        self.id
    }
    /// The child's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }
    /// How it ended.
    pub fn status(&self) -> ExitStatus {
        self.status
    }
    /// The registration's user data.
    pub fn data(&self) -> u64 {
        self.data
    }
}

/// How the loop learns about exited children.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum ChildMode {
    /// A pidfd per watched process (Linux 5.3+).
    #[default]
    Pidfd,
    /// SIGCHLD and `waitid` per watched pid, because `pidfd_open` failed with
    /// the given errno (`ENOSYS`: old kernel or emulator; `EPERM`: seccomp),
    /// or because it was asked for. Only children can be watched then.
    Sigchld(Errno),
}

/// Options of a pid watcher.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PidOptions {
    pub(crate) reap: bool,
}

impl Default for PidOptions {
    fn default() -> Self {
        PidOptions { reap: true }
    }
}

impl PidOptions {
    /// Reap the child (the default), or leave it a zombie (`WNOWAIT`) so
    /// that someone else can still wait for it.
    pub const fn reap(mut self, reap: bool) -> Self {
        self.reap = reap;
        self
    }
}

/// Which process a pid watcher watches: a pid, or a child started with
/// [`Spawn`](crate::process::Spawn),
/// whose pidfd is adopted (no second `pidfd_open`, no pid-reuse race).
#[derive(Debug)]
pub enum PidTarget {
    /// A process id.
    Pid(i32),
    /// A spawned child and its pidfd, if it has one.
    Spawned(crate::sys::Spawned),
}

impl From<i32> for PidTarget {
    fn from(pid: i32) -> Self {
        PidTarget::Pid(pid)
    }
}

impl From<crate::sys::Spawned> for PidTarget {
    fn from(child: crate::sys::Spawned) -> Self {
        PidTarget::Spawned(child)
    }
}

#[derive(Copy, Clone)]
struct Reaper<R> {
    callback: R,
    data: u64,
}

/// Where a reaped (or noticed) exit goes.
pub(crate) enum Reaped<R> {
    /// To the pid watcher under this key.
    Watcher { key: Key, pid: i32, status: ExitStatus },
    /// To the reaper.
    Reaper(R, ReapEvent),
}

/// Children listed per step past a zombie left for its user.
const LISTED: usize = 256;

pub(crate) struct ChildSource<R, K: Kernel, const W: usize> {
    mode: ChildMode,
    reaper: Option<Reaper<R>>,
    reaper_generation: u32,
    /// Watchers without a pidfd (SIGCHLD mode).
    pub(crate) by_pid: usize,
    /// A scan is owed: something may have exited before SIGCHLD was watched.
    pub(crate) scan_owed: bool,
    /// SIGCHLD's disposition was checked (see `Kernel::keep_child_statuses`).
    statuses_kept: bool,
    /// The pidfds the loop owns, by watcher slot.
    pidfds: [Option<K::Fd>; W],
    /// Zombies delivered to watchers that asked not to reap them: still
    /// there until their user reaps them, and never the reaper's.
    parked: Vec<i32, W>,
    /// Live pid watchers that asked not to reap: with `parked`, at most `W`
    /// (each may park a zombie, and a parked one must never be forgotten).
    keepers: usize,
}

impl<R: Copy, K: Kernel, const W: usize> ChildSource<R, K, W> {
    pub(crate) const fn new() -> Self {
        ChildSource {
            mode: ChildMode::Pidfd,
            reaper: None,
            reaper_generation: 0,
            by_pid: 0,
            scan_owed: false,
            statuses_kept: false,
            pidfds: [const { None }; W],
            parked: Vec::new(),
            keepers: 0,
        }
    }

    pub(crate) fn mode(&self) -> ChildMode {
        self.mode
    }

    pub(crate) fn force_sigchld_mode(&mut self, reason: Errno) {
        self.mode = ChildMode::Sigchld(reason);
    }

    /// Whether SIGCHLD must be watched (a reaper, or SIGCHLD-mode watchers).
    pub(crate) fn needs_sigchld(&self) -> bool {
        self.reaper.is_some() || self.by_pid > 0
    }

    /// The pidfd to watch `target` through, or `None` in SIGCHLD mode (then
    /// only children can be watched: `ECHILD` for any other process, which
    /// a pidfd could watch but `waitid` cannot).
    pub(crate) fn open(&mut self, k: &mut K, target: PidTarget) -> Result<(i32, Option<K::Fd>), Error> {
        self.keep_statuses(k)?;
        let pid = match target {
            PidTarget::Pid(pid) => pid,
            PidTarget::Spawned(child) => match (child.pidfd, self.mode) {
                (Some(fd), ChildMode::Pidfd) => return Ok((child.pid, Some(k.adopt_pidfd(fd)?))),
                (fd, _) => {
                    drop::<Option<OwnedFd>>(fd);
                    child.pid
                }
            },
        };
        if pid <= 0 {
            return Err(Error::Os(Errno::EINVAL));
        }
        if self.mode == ChildMode::Pidfd {
            match k.pidfd_open(pid) {
                Ok(fd) => return Ok((pid, Some(fd))),
                Err(e @ (Errno::ENOSYS | Errno::EPERM)) => self.mode = ChildMode::Sigchld(e),
                Err(e) => return Err(e.into()),
            }
        }
        match k.child_wait(ChildTarget::Pid(pid), false) {
            Ok(_) => Ok((pid, None)),
            // Not a child (or no such process): SIGCHLD mode cannot watch it.
            Err(Errno::ECHILD) => match k.process_exists(pid) {
                Ok(()) => Err(Error::Os(Errno::ECHILD)),
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Takes ownership of a watcher's pidfd (registered under `key`).
    pub(crate) fn keep_pidfd(&mut self, key: Key, fd: K::Fd) {
        if let Some(slot) = self.pidfds.get_mut(key.slot as usize) {
            *slot = Some(fd);
        }
    }

    /// Gives a removed watcher's pidfd back to the kernel (its
    /// registration was already taken out).
    pub(crate) fn release_pidfd(&mut self, k: &mut K, key: Key) {
        if let Some(fd) = self.pidfds.get_mut(key.slot as usize).and_then(Option::take) {
            k.release(fd);
        }
    }

    /// A watcher's pidfd became readable: its process ended. The status,
    /// or `ECHILD` when it is not ours to collect.
    pub(crate) fn collect(&mut self, k: &mut K, key: Key, reap: bool) -> Result<(i32, ExitStatus), Errno> {
        let fd = self.pidfds.get(key.slot as usize).and_then(Option::as_ref).ok_or(Errno::EBADF)?;
        match k.child_wait(ChildTarget::Pidfd(fd), reap)? {
            Some((pid, status)) => {
                if !reap {
                    self.park(pid);
                }
                Ok((pid, status))
            }
            // Readable means ended; nothing to report means someone else
            // (not this loop) collected it.
            None => Err(Errno::ECHILD),
        }
    }

    /// A SIGCHLD-mode watcher's child, if it exited.
    pub(crate) fn check(&mut self, k: &mut K, pid: i32, reap: bool) -> Option<Result<ExitStatus, Errno>> {
        match k.child_wait(ChildTarget::Pid(pid), reap) {
            Ok(Some((_, status))) => {
                if !reap {
                    self.park(pid);
                }
                Some(Ok(status))
            }
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }

    fn park(&mut self, pid: i32) {
        // Cannot be full: `reserve_keeper` keeps parked + keepers <= W.
        if !self.parked.contains(&pid) {
            let _ = self.parked.push(pid);
        }
    }

    /// Room for one more watcher that keeps its zombie: `Capacity` when `W`
    /// zombies are kept or could be (those their users reaped since are
    /// forgotten first). Fuzzing found the oldest kept zombie falling out of
    /// a full list, and the reaper then took it.
    pub(crate) fn reserve_keeper(&mut self, k: &mut K) -> Result<(), Error> {
        if self.parked.len() + self.keepers >= W {
            self.prune_parked(k);
        }
        if self.parked.len() + self.keepers >= W {
            return Err(Error::Capacity);
        }
        self.keepers += 1;
        Ok(())
    }

    /// A watcher that kept its zombie left the table (delivered or removed).
    pub(crate) fn keeper_gone(&mut self) {
        self.keepers = self.keepers.saturating_sub(1);
    }

    /// Before the first watcher or reaper: an inherited "ignore" for
    /// SIGCHLD would make the kernel reap children itself and every status
    /// would be lost (the init example exited 1, "Lost the main child's
    /// status", under a parent that ignored SIGCHLD).
    pub(crate) fn keep_statuses(&mut self, k: &mut K) -> Result<(), Error> {
        if !self.statuses_kept {
            k.keep_child_statuses()?;
            self.statuses_kept = true;
        }
        Ok(())
    }

    // --- the reaper ---

    pub(crate) fn set_reaper(&mut self, callback: R, data: u64) -> ReaperId {
        self.reaper_generation = self.reaper_generation.wrapping_add(1);
        self.reaper = Some(Reaper { callback, data });
        // Zombies from before this call: collect them on the next pass.
        self.scan_owed = true;
        ReaperId { generation: self.reaper_generation }
    }

    pub(crate) fn remove_reaper(&mut self, id: ReaperId) -> bool {
        let live = self.reaper_is_live(id);
        if live {
            self.reaper = None;
        }
        live
    }

    pub(crate) fn reaper_is_live(&self, id: ReaperId) -> bool {
        self.reaper.is_some() && id.generation == self.reaper_generation
    }

    pub(crate) fn set_reaper_data(&mut self, id: ReaperId, data: u64) -> bool {
        match &mut self.reaper {
            Some(r) if id.generation == self.reaper_generation => {
                r.data = data;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn has_reaper(&self) -> bool {
        self.reaper.is_some()
    }

    /// Forgets zombies their users have reaped since they were parked.
    pub(crate) fn prune_parked(&mut self, k: &mut K) {
        self.parked.retain(|&pid| matches!(k.child_wait(ChildTarget::Pid(pid), false), Ok(Some(_))));
    }

    /// The next exited child: to its watcher (`watched` finds its key and
    /// whether it reaps), or reaped for the reaper. `None` when no child
    /// has exited, or without a reaper.
    pub(crate) fn reap_next(&mut self, k: &mut K, watched: impl Fn(i32) -> Option<(Key, bool)>) -> Option<Reaped<R>> {
        self.reaper?;
        // ECHILD: no children at all; Ok(None): none exited yet.
        let (pid, status) = k.child_wait(ChildTarget::Any, false).ok()??;
        if !self.parked.contains(&pid) {
            return self.hand_over(k, pid, status, &watched);
        }
        // A zombie left for its user is first in the kernel's list, so a
        // plain any-child wait would return it forever: look past it.
        let mut pids = [0i32; LISTED];
        let n = k.list_children(&mut pids).ok()?;
        for &pid in &pids[..n] {
            if self.parked.contains(&pid) {
                continue;
            }
            if let Ok(Some((pid, status))) = k.child_wait(ChildTarget::Pid(pid), false) {
                return self.hand_over(k, pid, status, &watched);
            }
        }
        None
    }

    /// `pid` exited with `status` (seen without reaping it): to its
    /// watcher, or reaped for the reaper.
    fn hand_over(
        &mut self,
        k: &mut K,
        pid: i32,
        status: ExitStatus,
        watched: &impl Fn(i32) -> Option<(Key, bool)>,
    ) -> Option<Reaped<R>> {
        if let Some((key, reap)) = watched(pid) {
            if reap {
                let _ = k.child_wait(ChildTarget::Pid(pid), true);
            } else {
                self.park(pid);
            }
            return Some(Reaped::Watcher { key, pid, status });
        }
        let reaper = self.reaper?;
        let (pid, status) = k.child_wait(ChildTarget::Pid(pid), true).ok()??;
        let id = ReaperId { generation: self.reaper_generation };
        Some(Reaped::Reaper(reaper.callback, ReapEvent { id, pid, status, data: reaper.data }))
    }

    /// Gives every pidfd back (loop drop).
    pub(crate) fn close(&mut self, k: &mut K) {
        for slot in self.pidfds.iter_mut() {
            if let Some(fd) = slot.take() {
                k.release(fd);
            }
        }
    }
}
