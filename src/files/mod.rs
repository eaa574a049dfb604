//! Asynchronous file operations that complete on the loop: open, close,
//! read, write, fsync, fdatasync, stat, lstat, fstat, unlink, rmdir, rename,
//! mkdir, run by io_uring or by a pool of `clone()`d worker threads (no
//! libc), each completing with a callback `fn(&mut L, &mut L::Context,
//! FileEvent)`.
//!
//! A [`Files`] value is a companion: the program owns it (usually as a
//! field of its context), reaches it through `AsMut`, and plugs it into a
//! [`Loop`](crate::Loop) with [`Files::attach`], which registers a watcher
//! on its completion eventfd and a prepare callback that submits the
//! requests queued during a pass with one system call. Without this crate's
//! loop, watch [`Files::poll_fd`] and call [`Files::poll`] (Linux::AIO's
//! `poll_fileno` and `poll_cb`).
//!
//! ```
//! use linux_event::files::{Files, Engine, FileEvent, OpenOptions};
//! use linux_event::Loop;
//!
//! struct App { files: Files<Loop<App>, 16>, size: Option<u64> }
//! impl AsMut<Files<Loop<App>, 16>> for App {
//!     fn as_mut(&mut self) -> &mut Files<Loop<App>, 16> { &mut self.files }
//! }
//!
//! let mut lp: Loop<App> = Loop::new()?;
//! let mut app = App { files: Files::new(Engine::Auto)?, size: None };
//! app.files.attach(&mut lp)?;
//! app.files.stat(b"/proc/self/exe", 0, |lp, app, ev: FileEvent| {
//!     app.size = ev.stat().ok().map(|s| s.size);
//!     lp.stop();
//! })?;
//! lp.run(&mut app)?;
//! assert!(app.size.is_some());
//! # Ok::<(), linux_event::Error>(())
//! ```
//!
//! # Buffers, paths, capacity
//!
//! Nothing is allocated: the request table has `N` slots (a const generic),
//! in memory of its own mapped when the value is made; a full table is
//! [`Error::Capacity`] and nothing is lost (a refused read or write gives its
//! buffer back in [`Refused`]). A read or write holds its buffer, a
//! `&'static mut [u8]` (a static pool, or `Box::leak` in a std program),
//! until its callback, which gets it back: safe code never touches memory
//! the kernel or a worker is using. Paths are copied into the request: `P`
//! bytes per request (default 1024) hold its path, or both of a rename's,
//! each with a NUL; a longer one is `ENAMETOOLONG` before anything is
//! submitted, a NUL inside one `EINVAL`.
//!
//! # Completions, cancellation
//!
//! Every accepted request's callback runs exactly once, from the loop (or
//! [`poll`](Files::poll)), never from inside the call that made it.
//! [`cancel`](Files::cancel) returns whether the request had not completed
//! yet; if so, it runs with `ECANCELED` unless the operation finished
//! first (a request still queued always gets `ECANCELED`; one already
//! running on io_uring is cancelled by the kernel where it can be; on the
//! worker engine, a read or write waiting for a pipe or socket gives up,
//! and other running calls finish). Either way the buffer comes back.
//!
//! # Engines
//!
//! [`Engine::Auto`] takes io_uring, and falls back to the workers when the
//! kernel refuses it (`EPERM` from Docker's default seccomp profile or
//! `kernel.io_uring_disabled`, `ENOSYS` under qemu-user or on old kernels)
//! or its probe lacks an operation (`EOPNOTSUPP`); [`Files::fallback`] says
//! why. Both engines have the same semantics; see `ARCHITECTURE.md` for the
//! few differences in what can be cancelled while it runs.
//!
//! # Drop and fork
//!
//! Dropping the value (or the context holding it) with requests in flight
//! cancels them and waits: queued requests never run, running ones are
//! cancelled where they can be and otherwise finish, every worker thread
//! exits and is joined, the kernel has completed everything it was given,
//! and fds that opens made for callbacks that never ran are closed. Their
//! callbacks do not run. Detach it from the loop first (or drop the loop
//! first). After `fork`, the child has none of the parent's workers and
//! shares the parent's ring: it must not use the value; dropping it there
//! only unmaps memory and closes fds, without waiting or cancelling.

mod attach;
#[allow(unsafe_code)]
mod buffer;
mod config;
mod event;
mod open;
mod ops;
mod request;
#[allow(unsafe_code)]
mod shared;
mod stat;
mod uring;
#[allow(unsafe_code)]
mod workers;

pub use attach::Standalone;
pub use buffer::StaticBuffer;
pub use config::{Config, Engine, MAX_WORKERS};
pub use event::{FileEvent, Refused};
pub use open::OpenOptions;
pub use request::{Op, RequestId};
pub use stat::{FileType, Stat, Timestamp};

use crate::error::Error;
use crate::event_loop::{LoopTypes, PrepareId, TimerId, WatchId};
use crate::sys::{Errno, OwnedFd, RawFd, eventfd};
use shared::{List, State, Table};
use uring::Uring;
use workers::{Cancelled, Pool};

/// A file-operation callback: once per request, with its outcome.
pub type FileFn<L> = fn(&mut L, &mut <L as LoopTypes>::Context, FileEvent);

/// The engine a value runs on. (The pool's records of its 64 possible
/// threads make it the larger; a value of each kind is made once.)
#[allow(clippy::large_enum_variant)]
enum Runner<const N: usize, const P: usize> {
    Uring(Uring),
    Workers(Pool<N, P>),
}

/// Asynchronous file operations with room for `N` requests at once, paths
/// of up to `P` bytes per request; plugged into loop type `L` (whose
/// callbacks it calls). See the [module documentation](self).
pub struct Files<L: LoopTypes, const N: usize, const P: usize = 1024> {
    // Field order is drop order: the engine stops (in `drop`) and goes
    // before the table it uses.
    runner: Runner<N, P>,
    table: Table<FileFn<L>, P>,
    event_fd: OwnedFd,
    pending: List,
    done: List,
    fallback: Option<(Engine, Errno)>,
    attached: Option<(WatchId, PrepareId)>,
    /// The zero-delay timer that delivers requests finished during the
    /// prepare callback (attached only; a timer costs no system call, where
    /// ringing the eventfd would).
    due: Option<TimerId>,
    auto_submit: bool,
    pid: i32,
}

impl<L: LoopTypes, const N: usize, const P: usize> Files<L, N, P> {
    const CHECK: () = assert!(N >= 1 && N <= 1 << 20 && P >= 2, "Files needs 1 to 2^20 requests and P >= 2");

    /// File operations on `engine` with the default settings.
    pub fn new(engine: Engine) -> Result<Self, Error> {
        Self::with_config(Config::new(engine))
    }

    /// File operations as `config` says. `Os(errno)` when the engine asked
    /// for by name is refused (io_uring: `ENOSYS`, `EPERM`, `EOPNOTSUPP`
    /// for a missing operation), or memory or an eventfd cannot be had.
    pub fn with_config(config: Config) -> Result<Self, Error> {
        #[allow(clippy::let_unit_value)]
        let () = Self::CHECK;
        let table = Table::new(N)?;
        let event_fd = eventfd::create()?;
        let mut fallback = None;
        let max = config.max_parallel.clamp(1, MAX_WORKERS);
        let runner = match config.engine {
            Engine::IoUring => Runner::Uring(Uring::new(N, event_fd.as_raw_fd(), max)?),
            Engine::Workers => Runner::Workers(Pool::new(&table, event_fd.as_raw_fd(), &config)?),
            Engine::Auto => match Uring::new(N, event_fd.as_raw_fd(), max) {
                Ok(u) => Runner::Uring(u),
                Err(e) => {
                    fallback = Some((Engine::IoUring, e));
                    Runner::Workers(Pool::new(&table, event_fd.as_raw_fd(), &config)?)
                }
            },
        };
        Ok(Files {
            runner,
            table,
            event_fd,
            pending: List::new(),
            done: List::new(),
            fallback,
            attached: None,
            due: None,
            auto_submit: true,
            pid: crate::sys::getpid(),
        })
    }

    /// The engine in use: [`Engine::IoUring`] or [`Engine::Workers`].
    pub fn engine(&self) -> Engine {
        match self.runner {
            Runner::Uring(_) => Engine::IoUring,
            Runner::Workers(_) => Engine::Workers,
        }
    }

    /// `Some((tried, why))` when [`Engine::Auto`] could not have `tried`
    /// (io_uring) and took the workers instead.
    pub fn fallback(&self) -> Option<(Engine, Errno)> {
        self.fallback
    }

    /// Requests outstanding: accepted and whose callback has not run yet.
    pub fn nreqs(&self) -> usize {
        self.table.used()
    }

    /// How many requests fit at once (`N`).
    pub fn capacity(&self) -> usize {
        N
    }

    /// Worker threads running now (0 on io_uring, whose kernel workers are
    /// the kernel's).
    pub fn worker_threads(&self) -> usize {
        match &self.runner {
            Runner::Uring(_) => 0,
            Runner::Workers(p) => p.threads(),
        }
    }

    /// The fd to watch for reading: readable when completions wait for
    /// [`poll`](Self::poll). Owned by this value.
    pub fn poll_fd(&self) -> RawFd {
        self.event_fd.as_raw_fd()
    }

    /// Whether each request is handed to the engine as soon as it is made
    /// (the default), rather than by [`submit`](Self::submit). `attach`
    /// turns it off (its prepare callback submits once per pass), `detach`
    /// back on; another loop with a hook before it sleeps may turn it off
    /// and call `submit` there.
    pub fn set_auto_submit(&mut self, on: bool) {
        self.auto_submit = on;
        if on {
            let _ = self.submit();
        }
    }

    /// Hands every request made since the last submission to the engine:
    /// one `io_uring_enter` for all of them, or one lock, wake-up and
    /// thread start as needed for the workers. Returns how many. Nothing
    /// queued: no system call.
    pub fn submit(&mut self) -> Result<usize, Error> {
        let (n, finished_here) = self.submit_batch()?;
        if finished_here {
            self.ring_self();
        }
        Ok(n)
    }

    /// [`submit`](Self::submit), telling whether requests finished right
    /// here (the workers' attempts without blocking) and wait in the done
    /// list for delivery: the caller makes sure they are delivered.
    fn submit_batch(&mut self) -> Result<(usize, bool), Error> {
        let cancels = matches!(&self.runner, Runner::Uring(u) if u.has_unsubmitted());
        if self.pending.is_empty() && !cancels {
            return Ok((0, false));
        }
        let n = self.pending.len();
        match &mut self.runner {
            Runner::Uring(u) => {
                if let Err(e) = u.submit(&mut self.table, &mut self.pending) {
                    // Left pending: the next pass (rung here) tries again.
                    self.ring_self();
                    return Err(e.into());
                }
                Ok((n, false))
            }
            Runner::Workers(p) => Ok((n, p.submit(&mut self.table, &mut self.pending, &mut self.done))),
        }
    }

    /// Cancels a request. `true` when it had not completed yet: its
    /// callback will run once, with `ECANCELED` unless the operation
    /// finished first (see the [module documentation](self)). `false` for a
    /// request that completed already (its callback runs, or ran, with its
    /// outcome) or a stale id.
    pub fn cancel(&mut self, id: RequestId) -> bool {
        self.reap();
        let Some(i) = self.table.find(id) else { return false };
        match self.table.state(i) {
            State::Pending => {
                self.table.unlink(&mut self.pending, i);
                self.finish_locally(i, Errno::ECANCELED);
                true
            }
            State::InFlight if self.table.cancel_sent(i) => true,
            State::InFlight => match &mut self.runner {
                Runner::Uring(u) => {
                    if u.cancel(id).is_err() {
                        return true;
                    }
                    self.table.mark_cancel(i);
                    if self.auto_submit {
                        let _ = u.enter();
                    }
                    true
                }
                Runner::Workers(p) => match p.cancel(&self.table, i) {
                    Cancelled::Removed => {
                        self.finish_locally(i, Errno::ECANCELED);
                        true
                    }
                    Cancelled::Asked => {
                        self.table.mark_cancel(i);
                        true
                    }
                    Cancelled::TooLate => false,
                },
            },
            State::Done | State::Free => false,
        }
    }

    /// Finishes request `i` here, with `errno`, and rings the eventfd so
    /// that it is delivered.
    fn finish_locally(&mut self, i: u32, errno: Errno) {
        self.table.finish(i, -i64::from(errno.raw()));
        self.table.push(&mut self.done, i);
        self.ring_self();
    }

    fn ring_self(&self) {
        let _ = eventfd::add(self.event_fd.as_raw_fd(), 1);
    }

    /// Moves what the engine completed to the done list.
    fn reap(&mut self) {
        match &mut self.runner {
            Runner::Uring(u) => {
                u.reap(&mut self.table, &mut self.done);
            }
            Runner::Workers(p) => p.reap(&mut self.table, &mut self.done),
        }
    }

    /// Takes the next completion out, ready to be delivered.
    fn next_completion(&mut self) -> Option<(FileFn<L>, FileEvent)> {
        loop {
            let i = self.table.pop(&mut self.done)?;
            let Some(t) = self.table.release(i) else { continue };
            let result = if t.result < 0 {
                Err(Errno::from_raw(t.result.unsigned_abs().min(u16::MAX as u64) as u16))
            } else {
                Ok(t.result as u64)
            };
            let fd = match (t.op, result) {
                (Op::Open, Ok(fd)) => Some(OwnedFd::from_new(fd as RawFd)),
                _ => None,
            };
            let event = FileEvent { id: t.id, data: t.data, op: t.op, result, fd, stat: t.stat, buffer: t.buffer };
            if let Some(callback) = t.callback {
                return Some((callback, event));
            }
        }
    }

    /// Delivers completions: every request that has completed gets its
    /// callback, one at a time (each may make or cancel requests, the
    /// value is not borrowed while it runs). Returns how many ran.
    /// `drain` resets the eventfd first (for a level-triggered watcher).
    fn dispatch(lp: &mut L, ctx: &mut L::Context, drain: bool) -> usize
    where
        L::Context: AsMut<Self>,
    {
        {
            let files = ctx.as_mut();
            if drain {
                let _ = eventfd::take(files.event_fd.as_raw_fd());
            }
            files.reap();
        }
        let mut n = 0;
        while let Some((callback, event)) = ctx.as_mut().next_completion() {
            callback(lp, ctx, event);
            n += 1;
        }
        n
    }

    /// Processes completions (Linux::AIO's `poll_cb`): resets the eventfd,
    /// then runs the callback of every request that has completed, one at a
    /// time; returns how many ran (0 when none had). For programs that
    /// watch [`poll_fd`](Self::poll_fd) themselves; an attached value does
    /// this on its own. `L` is any [`LoopTypes`] type, e.g. a
    /// [`Standalone`] that stands for no loop.
    pub fn poll(lp: &mut L, ctx: &mut L::Context) -> usize
    where
        L::Context: AsMut<Self>,
    {
        Self::dispatch(lp, ctx, true)
    }

    /// Accepts a request: stores it, and submits it at once unless
    /// submissions are batched.
    fn accept(
        &mut self,
        op: Op,
        args: request::Args,
        paths: &[request::PathArg<'_>],
        data: u64,
        callback: FileFn<L>,
        buffer: shared::Buffer,
    ) -> Result<RequestId, (Error, shared::Buffer)> {
        let i = self.table.alloc(op, args, paths, data, callback, buffer)?;
        self.table.push(&mut self.pending, i);
        let id = self.table.id(i);
        if self.auto_submit {
            let _ = self.submit();
        }
        Ok(id)
    }
}

impl<L: LoopTypes, const N: usize, const P: usize> Drop for Files<L, N, P> {
    fn drop(&mut self) {
        if crate::sys::getpid() != self.pid {
            // A child after fork: the workers are the parent's, and so are
            // the ring's requests. Unmap and close only.
            if let Runner::Workers(p) = &mut self.runner {
                p.forget_threads();
            }
            return;
        }
        match &mut self.runner {
            Runner::Uring(u) => u.shutdown(&mut self.table, &mut self.done),
            Runner::Workers(p) => p.shutdown(&mut self.table),
        }
        // Opens that completed for callbacks that will never run.
        while let Some(i) = self.table.pop(&mut self.done) {
            if self.table.op(i) == Op::Open
                && let Some(fd) = self.table.result(i).filter(|&r| r >= 0)
            {
                let _ = crate::sys::close(fd as RawFd);
            }
        }
    }
}
