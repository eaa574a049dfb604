//! The simulated process behind [`Sim`](super::Sim): its threads and their
//! signal masks, pending signals, child processes, and the kernel objects a
//! loop makes (doorbell, signalfds, pidfds). No syscalls, no allocation.
//!
//! What is modelled, as the kernel does it: a standard signal is pending at
//! most once per target (process or thread) and keeps its first record; a
//! real-time signal queues every record with its value, up to a limit. A
//! signal that reaches a thread which does not block it takes its default
//! action: the simulation records the death ([`Sim::killed_by`]) instead of
//! dying, and the signals whose default is to be ignored are dropped. A
//! child that exits becomes a zombie until reaped, makes its pidfd readable
//! and sends SIGCHLD to the process.
//!
//! [`Sim::killed_by`]: super::Sim::killed_by

use crate::sys::{Errno, ExitStatus, RawFd, SIGCHLD, SigSet, SignalfdSiginfo};
use heapless::Vec;

/// The first virtual fd number given to a kernel object (far above the fd
/// numbers scripts use for their own virtual fds).
pub(super) const FIRST_OBJECT_FD: RawFd = 1 << 20;
/// The main thread's id (and the process id).
pub(super) const MAIN_TID: i32 = 1;
/// The first pid handed to a simulated process.
const FIRST_PID: i32 = 1000;
/// Queued real-time records, process-wide (the kernel's `RLIMIT_SIGPENDING`).
const RT_QUEUE: usize = 64;
/// Threads the simulation knows.
const THREADS: usize = 8;

/// What a kernel object of the simulation is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Object {
    Doorbell { rung: bool },
    Signalfd { mask: SigSet },
    Pidfd { pid: i32 },
}

/// A simulated process (other than the one running the loop).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Proc {
    pid: i32,
    /// A child of the simulated process (else: someone else's).
    child: bool,
    /// `None` while running.
    exit: Option<ExitStatus>,
}

/// Pending standard signals of one target, with the first record of each.
#[derive(Clone, Debug)]
struct Pending {
    standard: SigSet,
    records: [SignalfdSiginfo; 32],
}

impl Pending {
    const fn new() -> Self {
        Pending { standard: SigSet::empty(), records: [ZERO_INFO; 32] }
    }
}

const ZERO_INFO: SignalfdSiginfo = SignalfdSiginfo::zeroed();

#[derive(Clone, Debug)]
struct Thread {
    tid: i32,
    mask: SigSet,
    pending: Pending,
    /// Holders per signal (`mask_hold`), and what was blocked for them.
    holds: [u16; 65],
    blocked_for_holders: SigSet,
    /// Releases made from another thread, carried out by this one.
    owed: SigSet,
}

impl Thread {
    const fn new(tid: i32, mask: SigSet) -> Self {
        Thread {
            tid,
            mask,
            pending: Pending::new(),
            holds: [0; 65],
            blocked_for_holders: SigSet::empty(),
            owed: SigSet::empty(),
        }
    }
}

/// The whole simulated process.
#[derive(Clone, Debug)]
pub(super) struct Process<const N: usize> {
    threads: Vec<Thread, THREADS>,
    current: i32,
    pending: Pending,
    rt: Vec<(i32 /* target tid, 0 = process */, SignalfdSiginfo), RT_QUEUE>,
    procs: Vec<Proc, N>,
    next_pid: i32,
    objects: Vec<(RawFd, Object), N>,
    next_fd: RawFd,
    pub(super) killed_by: Option<i32>,
    pub(super) pidfd_refusal: Option<Errno>,
    pub(super) object_fault: Option<Errno>,
    pub(super) proc_children: bool,
    /// SIGCHLD's disposition is "ignore": children are reaped on exit.
    pub(super) sigchld_ignored: bool,
}

/// Signals whose default action is to be ignored.
fn ignored_by_default(signo: i32) -> bool {
    matches!(signo, 17 | 18 | 23 | 28) // SIGCHLD, SIGCONT, SIGURG, SIGWINCH
}

impl<const N: usize> Process<N> {
    pub(super) const fn new() -> Self {
        // `Vec::push` is not const: the main thread is added on first use.
        Process {
            threads: Vec::new(),
            current: MAIN_TID,
            pending: Pending::new(),
            rt: Vec::new(),
            procs: Vec::new(),
            next_pid: FIRST_PID,
            objects: Vec::new(),
            next_fd: FIRST_OBJECT_FD,
            killed_by: None,
            pidfd_refusal: None,
            object_fault: None,
            proc_children: true,
            sigchld_ignored: false,
        }
    }

    // --- threads and masks ---

    fn thread_index(&mut self, tid: i32) -> Option<usize> {
        if let Some(i) = self.threads.iter().position(|t| t.tid == tid) {
            return Some(i);
        }
        // A new thread inherits the mask of the thread that made it: here,
        // the current one (the main thread starts with nothing blocked).
        let mask = self.threads.iter().find(|t| t.tid == self.current).map_or(SigSet::empty(), |t| t.mask);
        self.threads.push(Thread::new(tid, mask)).ok()?;
        Some(self.threads.len() - 1)
    }

    pub(super) fn current_thread(&self) -> i32 {
        self.current
    }

    pub(super) fn set_current_thread(&mut self, tid: i32) -> bool {
        if self.thread_index(tid).is_none() {
            return false;
        }
        self.current = tid;
        // Like the kernel's signal return path: what is pending and now
        // unblocked in this thread is delivered.
        self.deliver_unblocked(tid);
        true
    }

    pub(super) fn mask_of(&mut self, tid: i32) -> SigSet {
        self.thread_index(tid).map_or(SigSet::empty(), |i| self.threads[i].mask)
    }

    pub(super) fn set_mask(&mut self, tid: i32, mask: SigSet) {
        if let Some(i) = self.thread_index(tid) {
            self.threads[i].mask = mask;
            self.deliver_unblocked(tid);
        }
    }

    pub(super) fn hold(&mut self, set: SigSet) -> Result<(), crate::error::Error> {
        let tid = self.current;
        let i = self.thread_index(tid).ok_or(crate::error::Error::Capacity)?;
        self.settle(i);
        let t = &mut self.threads[i];
        t.owed = SigSet::from_bits(t.owed.bits() & !set.bits());
        for signo in set.iter() {
            if t.holds[signo as usize] == u16::MAX {
                return Err(crate::error::Error::Capacity);
            }
        }
        for signo in set.iter() {
            if t.holds[signo as usize] == 0 && !t.mask.contains(signo) {
                t.mask = t.mask.with(signo);
                t.blocked_for_holders = t.blocked_for_holders.with(signo);
            }
            t.holds[signo as usize] += 1;
        }
        Ok(())
    }

    pub(super) fn release(&mut self, owner: i32, set: SigSet) {
        let Some(i) = self.threads.iter().position(|t| t.tid == owner) else { return };
        let t = &mut self.threads[i];
        for signo in set.iter() {
            let h = &mut t.holds[signo as usize];
            if *h > 0 {
                *h -= 1;
                if *h == 0 && t.blocked_for_holders.contains(signo) {
                    t.owed = t.owed.with(signo);
                }
            }
        }
        if owner == self.current {
            self.settle(i);
        }
    }

    /// Carries out owed unblocks in thread `i` (the current one): pending
    /// records of those signals are discarded first.
    fn settle(&mut self, i: usize) {
        let t = &mut self.threads[i];
        let unblock = SigSet::from_bits(t.owed.bits() & t.blocked_for_holders.bits());
        t.owed = SigSet::empty();
        if unblock.is_empty() {
            return;
        }
        let tid = t.tid;
        for signo in unblock.iter() {
            while self.take(tid, SigSet::empty().with(signo)).is_some() {}
        }
        let t = &mut self.threads[i];
        t.mask = SigSet::from_bits(t.mask.bits() & !unblock.bits());
        t.blocked_for_holders = SigSet::from_bits(t.blocked_for_holders.bits() & !unblock.bits());
        self.deliver_unblocked(tid);
    }

    // --- signals ---

    /// Sends `info.ssi_signo` to the process (`tid` 0) or to one thread.
    pub(super) fn raise(&mut self, tid: i32, info: SignalfdSiginfo) -> Result<(), Errno> {
        let signo = info.ssi_signo as i32;
        if !(1..=64).contains(&signo) {
            return Err(Errno::EINVAL);
        }
        // Make sure the current thread exists, so delivery has a target.
        self.thread_index(self.current).ok_or(Errno::EAGAIN)?;
        if tid != 0 && self.thread_index(tid).is_none() {
            return Err(Errno::ESRCH);
        }
        if signo >= crate::sys::SIGRTMIN {
            self.rt.push((tid, info)).map_err(|_| Errno::EAGAIN)?;
        } else {
            let pending = if tid == 0 {
                &mut self.pending
            } else {
                let i = self.thread_index(tid).ok_or(Errno::ESRCH)?;
                &mut self.threads[i].pending
            };
            if !pending.standard.contains(signo) {
                pending.standard = pending.standard.with(signo);
                pending.records[signo as usize - 1] = info;
            }
        }
        self.deliver_unblocked(tid);
        Ok(())
    }

    /// Delivers to its default action every pending signal some eligible
    /// thread does not block: `tid` 0 means process-directed signals (any
    /// thread), a tid that thread's own and the process's.
    fn deliver_unblocked(&mut self, tid: i32) {
        let targets: Vec<(i32, SigSet), THREADS> = self.threads.iter().map(|t| (t.tid, t.mask)).collect();
        for (t, mask) in targets {
            if tid != 0 && t != tid {
                continue;
            }
            let open = SigSet::from_bits(!mask.bits());
            while let Some(rec) = self.take(t, open) {
                let signo = rec.ssi_signo as i32;
                if !ignored_by_default(signo) && self.killed_by.is_none() {
                    self.killed_by = Some(signo);
                }
            }
        }
    }

    /// What thread `tid` would read now from a signalfd listening to `set`
    /// (its own pending signals first, then the process's; lowest number
    /// first, as the kernel dequeues).
    pub(super) fn peek(&self, tid: i32, set: SigSet) -> bool {
        let thread = self.threads.iter().find(|t| t.tid == tid);
        let std = self.pending.standard.bits() | thread.map_or(0, |t| t.pending.standard.bits());
        std & set.bits() != 0 || self.rt.iter().any(|(t, r)| (*t == 0 || *t == tid) && set.contains(r.ssi_signo as i32))
    }

    /// Takes the next signal of `set` pending for thread `tid`.
    fn take(&mut self, tid: i32, set: SigSet) -> Option<SignalfdSiginfo> {
        let ti = self.threads.iter().position(|t| t.tid == tid);
        for signo in 1..crate::sys::SIGRTMIN {
            if !set.contains(signo) {
                continue;
            }
            if let Some(i) = ti
                && self.threads[i].pending.standard.contains(signo)
            {
                let p = &mut self.threads[i].pending;
                p.standard = p.standard.without(signo);
                return Some(p.records[signo as usize - 1]);
            }
            if self.pending.standard.contains(signo) {
                self.pending.standard = self.pending.standard.without(signo);
                return Some(self.pending.records[signo as usize - 1]);
            }
        }
        let mut best: Option<usize> = None;
        for (i, (t, r)) in self.rt.iter().enumerate() {
            let signo = r.ssi_signo as i32;
            if (*t == 0 || *t == tid)
                && set.contains(signo)
                && best.is_none_or(|b| signo < self.rt[b].1.ssi_signo as i32)
            {
                best = Some(i);
            }
        }
        // Queued records of one signal leave in the order they came.
        best.map(|i| self.rt.remove(i).1)
    }

    pub(super) fn read_signals(&mut self, fd: RawFd, out: &mut [SignalfdSiginfo]) -> Result<usize, Errno> {
        let Some(Object::Signalfd { mask }) = self.object(fd) else { return Err(Errno::EBADF) };
        let mut n = 0;
        while n < out.len() {
            match self.take(self.current, mask) {
                Some(rec) => out[n] = rec,
                None => break,
            }
            n += 1;
        }
        Ok(n)
    }

    // --- processes ---

    pub(super) fn spawn(&mut self, child: bool) -> Option<i32> {
        let pid = self.next_pid;
        self.procs.push(Proc { pid, child, exit: None }).ok()?;
        self.next_pid += 1;
        Some(pid)
    }

    pub(super) fn exit(&mut self, pid: i32, status: ExitStatus) -> Result<(), Errno> {
        let p = self.procs.iter_mut().find(|p| p.pid == pid).ok_or(Errno::ESRCH)?;
        if p.exit.is_some() {
            return Err(Errno::ESRCH);
        }
        p.exit = Some(status);
        let child = p.child;
        if !child || self.sigchld_ignored {
            // Someone else's (reaped by its own parent), or ours with SIGCHLD
            // ignored (the kernel reaps it, and sends no SIGCHLD).
            self.procs.retain(|p| p.pid != pid);
            return Ok(());
        }
        let (code, st) = match status {
            ExitStatus::Exited(c) => (1, c),
            ExitStatus::Signaled { signal, core_dumped } => (if core_dumped { 3 } else { 2 }, signal),
        };
        let mut info = SignalfdSiginfo::zeroed();
        info.ssi_signo = SIGCHLD as u32;
        info.ssi_code = code;
        info.ssi_pid = pid as u32;
        info.ssi_status = st;
        let _ = self.raise(0, info);
        Ok(())
    }

    pub(super) fn is_zombie(&self, pid: i32) -> bool {
        self.procs.iter().any(|p| p.pid == pid && p.child && p.exit.is_some())
    }

    pub(super) fn exists(&self, pid: i32) -> Result<(), Errno> {
        if self.procs.iter().any(|p| p.pid == pid) { Ok(()) } else { Err(Errno::ESRCH) }
    }

    /// Whether process `pid` has ended (a zombie, reaped, or someone else's
    /// that exited): what makes its pidfd readable.
    fn ended(&self, pid: i32) -> bool {
        match self.procs.iter().find(|p| p.pid == pid) {
            Some(p) => p.exit.is_some(),
            None => true,
        }
    }

    pub(super) fn wait(&mut self, target: Option<i32>, reap: bool) -> Result<Option<(i32, ExitStatus)>, Errno> {
        let found = match target {
            Some(pid) => {
                let p = self.procs.iter().find(|p| p.pid == pid && p.child).ok_or(Errno::ECHILD)?;
                p.exit.map(|st| (p.pid, st))
            }
            None => {
                if !self.procs.iter().any(|p| p.child) {
                    return Err(Errno::ECHILD);
                }
                self.procs.iter().find(|p| p.child && p.exit.is_some()).and_then(|p| p.exit.map(|st| (p.pid, st)))
            }
        };
        if let (true, Some((pid, _))) = (reap, found) {
            self.procs.retain(|p| p.pid != pid);
        }
        Ok(found)
    }

    pub(super) fn children(&self, out: &mut [i32]) -> Result<usize, Errno> {
        if !self.proc_children {
            return Err(Errno::ENOENT);
        }
        let mut n = 0;
        for p in self.procs.iter().filter(|p| p.child) {
            if n == out.len() {
                break;
            }
            out[n] = p.pid;
            n += 1;
        }
        Ok(n)
    }

    // --- objects ---

    pub(super) fn open(&mut self, object: Object) -> Result<RawFd, Errno> {
        if let Some(e) = self.object_fault.take() {
            return Err(e);
        }
        let fd = self.next_fd;
        self.objects.push((fd, object)).map_err(|_| Errno::EMFILE)?;
        self.next_fd += 1;
        Ok(fd)
    }

    pub(super) fn object(&self, fd: RawFd) -> Option<Object> {
        self.objects.iter().find(|(f, _)| *f == fd).map(|(_, o)| *o)
    }

    pub(super) fn object_mut(&mut self, fd: RawFd) -> Option<&mut Object> {
        self.objects.iter_mut().find(|(f, _)| *f == fd).map(|(_, o)| o)
    }

    pub(super) fn close(&mut self, fd: RawFd) {
        self.objects.retain(|(f, _)| *f != fd);
    }

    pub(super) fn open_objects(&self) -> usize {
        self.objects.len()
    }

    /// Whether object `fd` is readable now.
    pub(super) fn readable(&self, fd: RawFd) -> bool {
        match self.object(fd) {
            Some(Object::Doorbell { rung }) => rung,
            Some(Object::Signalfd { mask }) => self.peek(self.current, mask),
            Some(Object::Pidfd { pid }) => self.ended(pid),
            None => false,
        }
    }

    pub(super) fn object_fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.objects.iter().map(|(fd, _)| *fd)
    }
}
