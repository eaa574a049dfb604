//! The worker engine: a pool of raw `clone()` threads (no libc, no TLS)
//! that run requests with blocking system calls, fed and drained through
//! the control block's queues, and noticed by the loop through an eventfd.
//!
//! Workers start lazily (when requests wait and no worker is idle), up to
//! `max_parallel`; idle ones beyond `min_parallel` exit after the idle
//! timeout. The loop thread reaps an exited worker (unmaps its stack) once
//! its tid word reads 0, and the pool's shutdown joins them all.

mod control;
mod worker;

use super::config::{Config, MAX_WORKERS};
use super::request::Op;
use super::shared::{List, State, Table};
use crate::sys::fileops::{CURRENT_POSITION, RWF_NOWAIT};
use crate::sys::shared_mem::Region;
use crate::sys::thread::{self, Stack};
use crate::sys::{Errno, OwnedFd, RawFd, eventfd, fileops, futex};
use control::{Control, EXITED, FREE, RUNNING};
use core::sync::atomic::Ordering;

/// What a cancellation of an in-flight request found.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Cancelled {
    /// It was still queued: taken back, it never runs.
    Removed,
    /// A worker runs it: asked to give up (a read or write waiting for a
    /// pipe or socket does; any other call finishes).
    Asked,
    /// A worker finished it already.
    TooLate,
}

/// The pool, as the loop thread holds it.
pub(crate) struct Pool<const N: usize, const P: usize> {
    ctl: Region<Control<N>>,
    stacks: [Option<Stack>; MAX_WORKERS],
    cancel_fds: [Option<OwnedFd>; MAX_WORKERS],
    max_parallel: u32,
    stack_size: usize,
    inline: bool,
    /// Workers the pool believes exited and not yet reaped.
    exited: bool,
}

impl<const N: usize, const P: usize> Pool<N, P> {
    /// A pool for `table`'s requests, telling the loop through `event_fd`.
    /// No thread starts before the first request.
    pub(crate) fn new<F: Copy>(table: &Table<F, P>, event_fd: RawFd, cfg: &Config) -> Result<Self, Errno> {
        let ctl: Region<Control<N>> = Region::new(1)?;
        let c = ctl.get(0).ok_or(Errno::ENOMEM)?;
        c.event_fd.store(event_fd, Ordering::Relaxed);
        c.table_addr.store(table.work_region().addr(), Ordering::Relaxed);
        c.table_len.store(table.work_region().len(), Ordering::Relaxed);
        let max = cfg.max_parallel.clamp(1, MAX_WORKERS);
        c.min_parallel.store(cfg.min_parallel.min(max) as u32, Ordering::Relaxed);
        c.idle_ns.store(cfg.idle_timeout.as_nanos().clamp(1, u64::MAX as u128) as u64, Ordering::Relaxed);
        Ok(Pool {
            ctl,
            stacks: [const { None }; MAX_WORKERS],
            cancel_fds: [const { None }; MAX_WORKERS],
            max_parallel: max as u32,
            stack_size: cfg.stack_size,
            inline: cfg.inline_attempts,
            exited: false,
        })
    }

    fn ctl(&self) -> &Control<N> {
        // A `Region` of one element always has it.
        self.ctl.get(0).unwrap_or_else(|| unreachable!())
    }

    /// Worker threads alive now (started and not yet reaped).
    pub(crate) fn threads(&self) -> usize {
        self.stacks.iter().filter(|s| s.is_some()).count()
    }

    /// Hands every pending request to the workers (reads and writes first
    /// tried on this thread without blocking, when allowed), wakes idle
    /// workers and starts new ones as needed. Requests that finished here,
    /// or could not be run at all (no worker could be started), go to
    /// `done`; returns whether any did (the caller then rings its own
    /// eventfd, so that they are delivered).
    pub(crate) fn submit<F: Copy>(&mut self, table: &mut Table<F, P>, pending: &mut List, done: &mut List) -> bool {
        self.reap_threads();
        let mut finished = false;
        let mut to_queue = List::new();
        while let Some(i) = table.pop(pending) {
            match self.inline.then(|| inline_attempt(table, i)) {
                Some(Inline::Finished) => {
                    table.push(done, i);
                    finished = true;
                }
                Some(Inline::Unsupported) => {
                    // No preadv2 here (qemu-user 7.2, Linux before 4.6).
                    self.inline = false;
                    table.push(&mut to_queue, i);
                }
                _ => table.push(&mut to_queue, i),
            }
        }
        let mut queued = 0u32;
        let (idle, live) = {
            let Some(ctl) = self.ctl.get(0) else { return finished };
            let mut g = ctl.lock();
            while let Some(i) = table.pop(&mut to_queue) {
                table.hand_over(i);
                let _ = g.queue.push(i);
                queued += 1;
            }
            (g.idle, g.live)
        };
        if queued == 0 {
            return finished;
        }
        if idle > 0 {
            self.ctl().wake_workers(queued.min(idle));
        }
        let wanted = queued.saturating_sub(idle).min(self.max_parallel.saturating_sub(live));
        let mut failure = None;
        for _ in 0..wanted {
            if let Err(e) = self.start_worker() {
                failure = Some(e);
                break;
            }
        }
        if let Some(e) = failure {
            // No worker at all: the queued requests would wait forever.
            let mut g = self.ctl().lock();
            if g.live == 0 {
                while let Some(i) = g.queue.pop() {
                    table.finish(i, -i64::from(e.raw()));
                    table.push(done, i);
                    finished = true;
                }
            }
        }
        finished
    }

    /// Starts one worker in a free record.
    fn start_worker(&mut self) -> Result<(), Errno> {
        let ctl = self.ctl.get(0).ok_or(Errno::ENOMEM)?;
        let Some(index) = (0..MAX_WORKERS)
            .find(|&k| self.stacks[k].is_none() && ctl.workers[k].state.load(Ordering::Acquire) == FREE)
        else {
            return Err(Errno::EAGAIN);
        };
        let stack = Stack::new(self.stack_size)?;
        let cancel = eventfd::create()?;
        let slot = &ctl.workers[index];
        slot.cancel_fd.store(cancel.as_raw_fd(), Ordering::Relaxed);
        slot.current.store(0, Ordering::Relaxed);
        slot.tid.store(u32::MAX, Ordering::Relaxed);
        slot.state.store(RUNNING, Ordering::Relaxed);
        ctl.lock().live += 1;
        let arg = self.ctl.addr() | index;
        // SAFETY: the stack and the control block (with the table it names)
        // stay mapped until this worker's tid word reads 0: `reap_threads`
        // and `shutdown` wait for that before unmapping either, and the
        // files value runs `shutdown` before it drops the table.
        match unsafe { thread::spawn(&stack, &slot.tid, worker::worker_main::<N, P>, arg) } {
            Ok(_) => {
                self.stacks[index] = Some(stack);
                self.cancel_fds[index] = Some(cancel);
                Ok(())
            }
            Err(e) => {
                let mut g = ctl.lock();
                g.live -= 1;
                slot.state.store(FREE, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Unmaps the stacks of workers that exited (their tid word is 0).
    fn reap_threads(&mut self) {
        if !self.exited {
            return;
        }
        self.exited = false;
        let Some(ctl) = self.ctl.get(0) else { return };
        for k in 0..MAX_WORKERS {
            let slot = &ctl.workers[k];
            if self.stacks[k].is_some() && slot.state.load(Ordering::Acquire) == EXITED {
                if slot.tid.load(Ordering::Acquire) == 0 {
                    self.stacks[k] = None;
                    self.cancel_fds[k] = None;
                    slot.state.store(FREE, Ordering::Release);
                } else {
                    self.exited = true;
                }
            }
        }
    }

    /// Moves what the workers finished to `done`.
    pub(crate) fn reap<F: Copy>(&mut self, table: &mut Table<F, P>, done: &mut List) {
        let Some(ctl) = self.ctl.get(0) else { return };
        ctl.notified.store(0, Ordering::SeqCst);
        let mut g = ctl.lock();
        while let Some(i) = g.done.pop() {
            table.finish(i, table.worker_result(i));
            table.push(done, i);
        }
        drop(g);
        if !self.exited {
            self.exited = ctl.workers.iter().any(|w| w.state.load(Ordering::Relaxed) == EXITED);
        }
        self.reap_threads();
    }

    /// Cancels in-flight request `i`.
    pub(crate) fn cancel<F: Copy>(&mut self, table: &Table<F, P>, i: u32) -> Cancelled {
        let ctl = self.ctl();
        let mut g = ctl.lock();
        if g.queue.remove(i) {
            return Cancelled::Removed;
        }
        let running = ctl.workers.iter().position(|w| w.current.load(Ordering::Acquire) == i.wrapping_add(1));
        let Some(k) = running else { return Cancelled::TooLate };
        if let Some(w) = table.work(i) {
            w.request_cancel();
        }
        if let Some(fd) = &self.cancel_fds[k] {
            let _ = eventfd::add(fd.as_raw_fd(), 1);
        }
        Cancelled::Asked
    }

    /// Stops the pool: queued requests never run, running reads and writes
    /// that wait are asked to give up, every worker exits and is joined.
    /// Requests that were queued or running are left `InFlight` in the
    /// table; a finished open's fd is closed. Afterwards no worker exists.
    pub(crate) fn shutdown<F: Copy>(&mut self, table: &mut Table<F, P>) {
        let Some(ctl) = self.ctl.get(0) else { return };
        {
            let mut g = ctl.lock();
            while g.queue.pop().is_some() {}
            g.shutdown = true;
            for (k, w) in ctl.workers.iter().enumerate() {
                let current = w.current.load(Ordering::Acquire);
                if current != 0 {
                    if let Some(work) = table.work(current - 1) {
                        work.request_cancel();
                    }
                    if let Some(fd) = &self.cancel_fds[k] {
                        let _ = eventfd::add(fd.as_raw_fd(), 1);
                    }
                }
            }
        }
        ctl.wake_workers(u32::MAX);
        for k in 0..MAX_WORKERS {
            if self.stacks[k].is_none() {
                continue;
            }
            let tid = &ctl.workers[k].tid;
            loop {
                let now = tid.load(Ordering::Acquire);
                if now == 0 {
                    break;
                }
                // The kernel's wake at thread exit is not a private futex.
                let _ = futex::wait(tid, now, None, false);
            }
            self.stacks[k] = None;
            self.cancel_fds[k] = None;
            ctl.workers[k].state.store(FREE, Ordering::Relaxed);
        }
        // What the workers finished meanwhile: nobody will take an fd an
        // open made.
        let mut g = ctl.lock();
        while let Some(i) = g.done.pop() {
            let r = table.worker_result(i);
            if table.op(i) == Op::Open && r >= 0 {
                let _ = crate::sys::close(r as RawFd);
            }
        }
    }

    /// Forgets the workers without waiting for them: for a child process
    /// after fork, where they do not exist (the parent's still run).
    pub(crate) fn forget_threads(&mut self) {
        for s in self.stacks.iter_mut() {
            *s = None;
        }
    }
}

/// What an attempt on the loop's thread did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Inline {
    /// The request finished (its result is recorded).
    Finished,
    /// A worker must take it (nothing, or part of it, was moved: `done`
    /// records the part).
    ToWorker,
    /// The kernel has no `preadv2`/`pwritev2`: do not try again.
    Unsupported,
}

/// Tries pending read or write `i` without blocking (`RWF_NOWAIT`), on the
/// loop's thread.
fn inline_attempt<F: Copy, const P: usize>(table: &mut Table<F, P>, i: u32) -> Inline {
    if !matches!(table.op(i), Op::Read | Op::Write) || table.state(i) != State::Pending {
        return Inline::ToWorker;
    }
    let outcome = table.with_pending_io(i, |a, buf| {
        let want = a.len - a.done;
        let at = if a.offset == CURRENT_POSITION { a.offset } else { a.offset.saturating_add(a.done as u64) };
        let r = match buf {
            Ok(b) => fileops::preadv2(a.fd, b, at, RWF_NOWAIT),
            Err(b) => fileops::pwritev2(a.fd, b, at, RWF_NOWAIT),
        };
        (r, want, a.done, a.offset == CURRENT_POSITION, a.op == Op::Read as u8)
    });
    let Some((r, want, done, stream, is_read)) = outcome else { return Inline::ToWorker };
    match r {
        // All of it; end of file; or what a pipe or socket had.
        Ok(n) if n == want || (is_read && (n == 0 || stream)) => {
            table.finish(i, (done + n) as i64);
            Inline::Finished
        }
        Ok(n) => {
            table.set_done(i, done + n);
            Inline::ToWorker
        }
        Err(Errno::ENOSYS) => Inline::Unsupported,
        // Would block, cannot tell, or an error a worker will report.
        Err(_) => Inline::ToWorker,
    }
}
