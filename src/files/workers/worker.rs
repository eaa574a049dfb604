//! What a worker thread runs: take a request from the queue, do its system
//! call, put it on the done queue, tell the loop; sleep on a futex when
//! there is nothing to do, and exit when idle for long (beyond the pool's
//! minimum) or when the pool shuts down.
//!
//! This code runs on a raw `clone()` thread with no TLS and every signal
//! blocked: it must not panic (no indexing, no unwrap, no arithmetic that
//! can overflow) and calls nothing but this crate's `sys` wrappers.

use super::control::{Control, EXITED, WorkerSlot};
use crate::files::request::{Args, Op};
use crate::files::shared::{Work, store_stat};
use crate::sys::fileops::{self, CURRENT_POSITION, RWF_NOWAIT};
use crate::sys::ppoll::{POLLIN, POLLOUT, PollFd, ppoll};
use crate::sys::statx;
use crate::sys::{Errno, RawFd, eventfd, futex, thread};
use core::sync::atomic::Ordering;

/// The thread's entry: `arg` is the control block's address (page-aligned)
/// plus the worker's index.
pub(crate) extern "C" fn worker_main<const N: usize, const P: usize>(arg: usize) -> ! {
    let index = arg & 0xfff;
    // SAFETY: the pool passes the address of its control block, which it
    // keeps mapped, with the request table it names, until this thread's tid
    // word reads 0 (the pool's join).
    let ctl = unsafe { &*((arg & !0xfff) as *const Control<N>) };
    if let Some(me) = ctl.workers.get(index) {
        serve::<N, P>(ctl, me);
    }
    thread::exit_thread()
}

/// The engine part of slot `i`, from the table the control block names.
fn work<const N: usize, const P: usize>(ctl: &Control<N>, i: u32) -> Option<&Work<P>> {
    let len = ctl.table_len.load(Ordering::Relaxed);
    if i as usize >= len {
        return None;
    }
    let addr = ctl.table_addr.load(Ordering::Relaxed);
    // SAFETY: `i < len`, and the pool keeps the region of `len` `Work<P>`
    // at `addr` mapped until every worker has exited.
    Some(unsafe { &*(addr as *const Work<P>).add(i as usize) })
}

fn serve<const N: usize, const P: usize>(ctl: &Control<N>, me: &WorkerSlot) {
    let cancel_fd = me.cancel_fd.load(Ordering::Relaxed);
    let mut g = ctl.lock();
    loop {
        if let Some(i) = g.queue.pop() {
            me.current.store(i.wrapping_add(1), Ordering::Release);
            drop(g);
            if let Some(w) = work::<N, P>(ctl, i) {
                // SAFETY: taken from the queue under the lock: this worker
                // owns the slot until it puts it on the done queue.
                unsafe { run(w, cancel_fd) };
            }
            g = ctl.lock();
            me.current.store(0, Ordering::Release);
            let _ = g.done.push(i);
            drop(g);
            ctl.notify_loop();
            g = ctl.lock();
            continue;
        }
        if g.shutdown {
            break;
        }
        let seq = ctl.work_seq.load(Ordering::Acquire);
        g.idle = g.idle.saturating_add(1);
        drop(g);
        let idle = ctl.idle_ns.load(Ordering::Relaxed);
        let waited = futex::wait(&ctl.work_seq, seq, Some(idle), true);
        g = ctl.lock();
        g.idle = g.idle.saturating_sub(1);
        let min = ctl.min_parallel.load(Ordering::Relaxed);
        if waited == Err(Errno::ETIMEDOUT) && g.queue.is_empty() && g.live > min && !g.shutdown {
            break;
        }
    }
    g.live = g.live.saturating_sub(1);
    me.state.store(EXITED, Ordering::Release);
    drop(g);
}

/// A result as the table stores it: a value or `-errno`.
fn encode(r: Result<u64, Errno>) -> i64 {
    match r {
        Ok(v) => v.min(i64::MAX as u64) as i64,
        Err(e) => -i64::from(e.raw()),
    }
}

/// Runs the request in `w` and records its result.
///
/// # Safety
///
/// The caller owns the slot (taken from the queue).
unsafe fn run<const P: usize>(w: &Work<P>, cancel_fd: RawFd) {
    // SAFETY: forwarded: this thread owns the slot.
    let r = unsafe { execute(w, cancel_fd) };
    w.set_result(encode(r));
}

/// # Safety
///
/// The caller owns the slot.
unsafe fn execute<const P: usize>(w: &Work<P>, cancel_fd: RawFd) -> Result<u64, Errno> {
    // SAFETY: the caller owns the slot (for every access below).
    let a = unsafe { w.args() };
    let Some(op) = Op::from_code(a.op) else { return Err(Errno::EINVAL) };
    // SAFETY: as above.
    let path = |from| unsafe { w.path(from) };
    match op {
        Op::Open => fileops::openat(a.fd, path(0)?, a.flags, a.mode).map(|fd| fd as u64),
        Op::Close => crate::sys::close(a.fd).map(|()| 0),
        // SAFETY: as above; the request is a read, its buffer its own.
        Op::Read => transfer(&a, Transfer::Read(unsafe { w.read_buffer() }), w, cancel_fd),
        // SAFETY: as above, for a write.
        Op::Write => transfer(&a, Transfer::Write(unsafe { w.write_buffer() }), w, cancel_fd),
        Op::Fsync | Op::Fdatasync => fileops::fsync(a.fd, op == Op::Fdatasync).map(|()| 0),
        Op::Stat | Op::Lstat | Op::Fstat => {
            let p = path(0)?;
            // SAFETY: as above; no other reference to the buffer exists.
            let buf = unsafe { w.statx_mut() };
            match statx::statx(a.fd, p, a.flags, buf) {
                Ok(()) => Ok(0),
                Err(Errno::ENOSYS | Errno::EPERM) => {
                    let s = statx::fstatat(a.fd, p, a.flags)?;
                    store_stat(buf, &s);
                    Ok(0)
                }
                Err(e) => Err(e),
            }
        }
        Op::Unlink | Op::Rmdir => fileops::unlinkat(a.fd, path(0)?, a.flags).map(|()| 0),
        Op::Rename => fileops::renameat2(a.fd, path(0)?, path(a.path2)?, a.flags).map(|()| 0),
        Op::Mkdir => fileops::mkdirat(a.fd, path(0)?, a.mode).map(|()| 0),
    }
}

enum Transfer<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}

/// A read or write of what the request still has to move (`a.done` bytes
/// were moved on the loop's thread already). At an offset: one blocking
/// `pread`/`pwrite`. At the current position, or on a file without offsets (pipes, sockets, terminals):
/// first without blocking; if that would block, a `ppoll` on the fd and
/// this worker's cancel eventfd, so the loop can cancel it, then one
/// blocking call. Returns the total moved.
fn transfer<const P: usize>(a: &Args, mut t: Transfer<'_>, w: &Work<P>, cancel_fd: RawFd) -> Result<u64, Errno> {
    let done = a.done as u64;
    if a.offset != CURRENT_POSITION {
        let at = a.offset.saturating_add(done);
        let n = match t {
            Transfer::Read(ref mut b) => fileops::pread(a.fd, b, at),
            Transfer::Write(b) => fileops::pwrite(a.fd, b, at),
        };
        match n {
            Ok(n) => return Ok(done.saturating_add(n as u64)),
            // A pipe, socket or terminal has no offsets: io_uring then reads
            // or writes at the current position, and so do the workers.
            Err(Errno::ESPIPE) => {}
            Err(e) => return Err(e),
        }
    }
    let nowait = |t: &mut Transfer<'_>| match t {
        Transfer::Read(b) => fileops::preadv2(a.fd, b, CURRENT_POSITION, RWF_NOWAIT),
        Transfer::Write(b) => fileops::pwritev2(a.fd, b, CURRENT_POSITION, RWF_NOWAIT),
    };
    let plain = |t: &mut Transfer<'_>| match t {
        Transfer::Read(b) => crate::sys::read(a.fd, b),
        Transfer::Write(b) => crate::sys::write(a.fd, b),
    };
    let events = if matches!(t, Transfer::Read(_)) { POLLIN } else { POLLOUT };
    // Without preadv2 (before Linux 4.6, qemu-user 7.2), no attempt first.
    let mut try_nowait = true;
    loop {
        if w.cancel_requested() {
            return Err(Errno::ECANCELED);
        }
        if try_nowait {
            match nowait(&mut t) {
                Ok(n) => return Ok(done.saturating_add(n as u64)),
                // Would block, or the file cannot say (a terminal): wait.
                Err(Errno::EAGAIN | Errno::EOPNOTSUPP) => {}
                Err(Errno::ENOSYS) => try_nowait = false,
                Err(e) => return Err(e),
            }
        }
        let mut fds = [PollFd { fd: a.fd, events, revents: 0 }, PollFd { fd: cancel_fd, events: POLLIN, revents: 0 }];
        match ppoll(&mut fds) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
        let [file, poke] = fds;
        if poke.revents != 0 {
            let _ = eventfd::take(cancel_fd);
            continue;
        }
        if file.revents != 0 {
            match plain(&mut t) {
                Ok(n) => return Ok(done.saturating_add(n as u64)),
                // Taken by another reader first, or a non-blocking fd: wait again.
                Err(Errno::EAGAIN) => {}
                Err(e) => return Err(e),
            }
        }
    }
}
