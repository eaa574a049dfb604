//! The request table, in memory that never moves: the loop thread's part
//! (state, callback, user data, the buffer it holds) and the part an engine
//! uses while the request runs (arguments, paths, the statx buffer, the
//! result), which the kernel or a worker thread reads and writes meanwhile.
//!
//! The ownership protocol is the whole of this file's `unsafe`: a slot's
//! engine part belongs to the loop thread except while its state is
//! `InFlight`; from the hand-over until the completion is seen (a CQE, or
//! the slot's index taken from the workers' done queue under their lock,
//! which orders the worker's writes before the loop's reads), it belongs to
//! the engine. The loop never forms a reference into an in-flight slot's
//! engine part, and the table is unmapped only when nothing is in flight.

use super::request::{Args, Op, PathArg, RequestId};
use super::stat::Stat;
use crate::error::Error;
use crate::sys::Errno;
use crate::sys::mmap::Anon;
use crate::sys::shared_mem::{Region, Zeroed};
use crate::sys::statx::{self, FileStat, Statx};
use core::cell::UnsafeCell;
use core::ffi::CStr;
use core::sync::atomic::{AtomicI64, AtomicU32, Ordering};

/// No slot (end of a list).
pub(crate) const NIL: u32 = u32::MAX;

/// The part of a slot an engine uses while the request runs.
#[repr(C)]
pub(crate) struct Work<const P: usize> {
    args: UnsafeCell<Args>,
    /// The outcome a worker left: a value, or `-errno`.
    result: AtomicI64,
    /// Set by the loop to ask the worker running it to give up (reads and
    /// writes that wait for a pipe or socket).
    cancel: AtomicU32,
    statx: UnsafeCell<Statx>,
    path: UnsafeCell<[u8; P]>,
}

// SAFETY: integers, a raw pointer (null), atomics and byte arrays: all-zero
// is a valid value (op code 0: no operation).
unsafe impl<const P: usize> Zeroed for Work<P> {}
// SAFETY: the cells are accessed only by the slot's current owner (the
// module's protocol); the rest is atomic.
unsafe impl<const P: usize> Sync for Work<P> {}
// SAFETY: the buffer pointer is an address the request owns, usable from
// any thread.
unsafe impl<const P: usize> Send for Work<P> {}

impl<const P: usize> Work<P> {
    /// The arguments.
    ///
    /// # Safety
    ///
    /// The caller owns the slot (see the module's protocol).
    pub(crate) unsafe fn args(&self) -> Args {
        // SAFETY: the owner is the only one touching the cell.
        unsafe { *self.args.get() }
    }

    /// The path stored at byte `from` (0: the first; `Args::path2`: the
    /// second), `EINVAL` if it is not NUL-terminated there.
    ///
    /// # Safety
    ///
    /// The caller owns the slot.
    pub(crate) unsafe fn path(&self, from: usize) -> Result<&CStr, Errno> {
        // SAFETY: the owner is the only one writing the cell, and it does
        // not while this borrow lives.
        let bytes = unsafe { &*self.path.get() };
        bytes.get(from..).and_then(|b| CStr::from_bytes_until_nul(b).ok()).ok_or(Errno::EINVAL)
    }

    /// The statx buffer, for the kernel to fill.
    ///
    /// # Safety
    ///
    /// The caller owns the slot and makes no other reference to the buffer
    /// while this one lives.
    #[allow(clippy::mut_from_ref)] // the protocol makes it unique
    pub(crate) unsafe fn statx_mut(&self) -> &mut Statx {
        // SAFETY: forwarded.
        unsafe { &mut *self.statx.get() }
    }

    /// The part of the read buffer not yet filled.
    ///
    /// # Safety
    ///
    /// The caller owns the slot, the request is a read (its buffer is a
    /// `&'static mut` the request holds), and no other reference to it lives.
    #[allow(clippy::mut_from_ref)] // the protocol makes it unique
    pub(crate) unsafe fn read_buffer(&self) -> &mut [u8] {
        // SAFETY: forwarded; `done <= len` is kept by whoever sets `done`.
        unsafe {
            let a = *self.args.get();
            core::slice::from_raw_parts_mut(a.buf.add(a.done.min(a.len)), a.len - a.done.min(a.len))
        }
    }

    /// The part of the write buffer not yet written.
    ///
    /// # Safety
    ///
    /// The caller owns the slot and the request is a write.
    pub(crate) unsafe fn write_buffer(&self) -> &[u8] {
        // SAFETY: forwarded.
        unsafe {
            let a = *self.args.get();
            core::slice::from_raw_parts(a.buf.add(a.done.min(a.len)), a.len - a.done.min(a.len))
        }
    }

    /// Records the outcome (by the engine that owns the slot).
    pub(crate) fn set_result(&self, r: i64) {
        self.result.store(r, Ordering::Relaxed);
    }

    /// Whether the loop asked for cancellation.
    pub(crate) fn cancel_requested(&self) -> bool {
        self.cancel.load(Ordering::Acquire) != 0
    }

    /// Asks the running engine to give up.
    pub(crate) fn request_cancel(&self) {
        self.cancel.store(1, Ordering::Release);
    }

    fn path_addr(&self, from: usize) -> u64 {
        (self.path.get() as usize + from.min(P)) as u64
    }

    fn statx_addr(&self) -> u64 {
        self.statx.get() as usize as u64
    }
}

/// Where a request is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Unused.
    Free,
    /// Accepted, not yet handed to the engine.
    Pending,
    /// The engine (kernel or worker) owns its engine part.
    InFlight,
    /// Finished; waiting to be delivered.
    Done,
}

/// The buffer a request holds, as the raw parts of the reference it was
/// given (rebuilt when it is handed back).
#[derive(Copy, Clone, Debug)]
enum Held {
    None,
    Mut(*mut u8, usize),
    Static,
}

/// A request's buffer, as given by the caller.
pub(crate) enum Buffer {
    /// No buffer.
    None,
    /// A read's or write's buffer and how much of it to use (at most its
    /// length), handed back whole in the event.
    Mut(&'static mut [u8], usize),
    /// A write's static bytes (not handed back).
    Static(&'static [u8]),
}

/// The loop thread's part of a slot.
#[derive(Copy, Clone)]
struct Meta<F> {
    generation: u32,
    state: State,
    next: u32,
    op: Op,
    cancel: bool,
    data: u64,
    callback: Option<F>,
    held: Held,
    result: i64,
}

/// A FIFO of slots linked through their `next`.
#[derive(Copy, Clone, Debug)]
pub(crate) struct List {
    head: u32,
    tail: u32,
    len: usize,
}

impl List {
    pub(crate) const fn new() -> List {
        List { head: NIL, tail: NIL, len: 0 }
    }
    pub(crate) fn len(&self) -> usize {
        self.len
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A delivered request, taken out of the table.
pub(crate) struct Taken<F> {
    pub id: RequestId,
    pub op: Op,
    pub data: u64,
    pub callback: Option<F>,
    pub result: i64,
    pub buffer: Option<&'static mut [u8]>,
    pub stat: Option<Stat>,
}

/// The request table: `n` slots, a free list, and the lists it threads.
pub(crate) struct Table<F: Copy, const P: usize> {
    meta: Anon<Meta<F>>,
    work: Region<Work<P>>,
    free: u32,
    used: usize,
}

// SAFETY: the raw buffer parts are of `&'static` references the table owns
// (usable from any thread); the engine part is `Send` and `Sync`.
unsafe impl<F: Copy + Send, const P: usize> Send for Table<F, P> {}

impl<F: Copy, const P: usize> Table<F, P> {
    /// `n` free slots.
    pub(crate) fn new(n: usize) -> Result<Self, Errno> {
        let empty = Meta {
            generation: 1,
            state: State::Free,
            next: NIL,
            op: Op::Close,
            cancel: false,
            data: 0,
            callback: None,
            held: Held::None,
            result: 0,
        };
        let mut meta = Anon::new(n, empty)?;
        for (i, m) in meta.iter_mut().enumerate() {
            m.next = if i + 1 < n { (i + 1) as u32 } else { NIL };
        }
        let work = Region::new(n)?;
        Ok(Table { meta, work, free: if n > 0 { 0 } else { NIL }, used: 0 })
    }

    /// How many slots are in use.
    pub(crate) fn used(&self) -> usize {
        self.used
    }

    /// How many slots.
    pub(crate) fn capacity(&self) -> usize {
        self.meta.len()
    }

    /// Takes a free slot for `op`: stores its arguments and paths (`Capacity`
    /// when none is free, `ENAMETOOLONG` when the paths do not fit in `P`
    /// bytes with their NULs; nothing changes then). The slot is `Pending`.
    pub(crate) fn alloc(
        &mut self,
        op: Op,
        mut args: Args,
        paths: &[PathArg<'_>],
        data: u64,
        callback: F,
        buffer: Buffer,
    ) -> Result<u32, (Error, Buffer)> {
        let need: usize = paths.iter().map(PathArg::stored_len).sum();
        if need > P {
            return Err((Error::Os(Errno::ENAMETOOLONG), buffer));
        }
        let i = self.free;
        let Some(m) = self.meta.get_mut(i as usize) else { return Err((Error::Capacity, buffer)) };
        self.free = m.next;
        let held = match buffer {
            Buffer::None => Held::None,
            Buffer::Mut(b, len) => {
                args.buf = b.as_mut_ptr();
                args.len = len.min(b.len());
                Held::Mut(b.as_mut_ptr(), b.len())
            }
            Buffer::Static(b) => {
                args.buf = b.as_ptr() as *mut u8;
                args.len = b.len();
                Held::Static
            }
        };
        *m = Meta {
            state: State::Pending,
            next: NIL,
            op,
            cancel: false,
            data,
            callback: Some(callback),
            held,
            result: 0,
            ..*m
        };
        self.used += 1;
        if let Some(w) = self.work.get(i as usize) {
            // SAFETY: the slot was free: the loop thread owns it, and no
            // engine can reach it before it is handed over.
            let bytes = unsafe { &mut *w.path.get() };
            let mut at = 0;
            for (k, p) in paths.iter().enumerate() {
                if k == 1 {
                    args.path2 = at;
                }
                if let Some(dst) = bytes.get_mut(at..at + p.0.len() + 1) {
                    let (text, nul) = dst.split_at_mut(p.0.len());
                    text.copy_from_slice(p.0);
                    nul.fill(0);
                }
                at += p.stored_len();
            }
            // SAFETY: as above.
            unsafe { *w.args.get() = args };
            w.result.store(0, Ordering::Relaxed);
            w.cancel.store(0, Ordering::Relaxed);
        }
        Ok(i)
    }

    /// The id of slot `i`'s current request.
    pub(crate) fn id(&self, i: u32) -> RequestId {
        RequestId { slot: i, generation: self.meta.get(i as usize).map_or(0, |m| m.generation) }
    }

    /// The slot of a live request.
    pub(crate) fn find(&self, id: RequestId) -> Option<u32> {
        let m = self.meta.get(id.slot as usize)?;
        (m.generation == id.generation && m.state != State::Free).then_some(id.slot)
    }

    /// The slot's state (`Free` past the end).
    pub(crate) fn state(&self, i: u32) -> State {
        self.meta.get(i as usize).map_or(State::Free, |m| m.state)
    }

    /// The slot's operation.
    pub(crate) fn op(&self, i: u32) -> Op {
        self.meta.get(i as usize).map_or(Op::Close, |m| m.op)
    }

    /// Whether cancellation was asked for (and, for io_uring, sent).
    pub(crate) fn cancel_sent(&self, i: u32) -> bool {
        self.meta.get(i as usize).is_some_and(|m| m.cancel)
    }

    /// Records that cancellation was asked for.
    pub(crate) fn mark_cancel(&mut self, i: u32) {
        if let Some(m) = self.meta.get_mut(i as usize) {
            m.cancel = true;
        }
    }

    /// The arguments of a slot the loop owns (`None` while in flight).
    pub(crate) fn args(&self, i: u32) -> Option<Args> {
        let w = self.work.get(i as usize)?;
        // SAFETY: not in flight: the loop thread owns the engine part.
        (self.state(i) != State::InFlight).then(|| unsafe { *w.args.get() })
    }

    /// Records bytes moved before the hand-over (`done <= len`).
    pub(crate) fn set_done(&mut self, i: u32, done: usize) {
        if self.state(i) == State::InFlight {
            return;
        }
        if let Some(w) = self.work.get(i as usize) {
            // SAFETY: not in flight: the loop thread owns the engine part.
            let a = unsafe { &mut *w.args.get() };
            a.done = done.min(a.len);
        }
    }

    /// Runs `f` on a pending read's remaining buffer (`Ok`) or a pending
    /// write's remaining bytes (`Err`), for an attempt on the loop thread.
    pub(crate) fn with_pending_io<R>(
        &mut self,
        i: u32,
        f: impl FnOnce(&Args, Result<&mut [u8], &[u8]>) -> R,
    ) -> Option<R> {
        let m = self.meta.get(i as usize)?;
        if m.state != State::Pending {
            return None;
        }
        let w = self.work.get(i as usize)?;
        // SAFETY: pending: the loop thread owns the slot and the buffer the
        // request holds (a `&'static mut` for reads, `&'static` bytes for
        // writes), and makes no other reference to it during `f`.
        unsafe {
            let a = *w.args.get();
            match (m.op, m.held) {
                (Op::Read, Held::Mut(..)) => Some(f(&a, Ok(w.read_buffer()))),
                (Op::Write, Held::Mut(..) | Held::Static) => Some(f(&a, Err(w.write_buffer()))),
                _ => None,
            }
        }
    }

    /// The engine part of slot `i`.
    pub(crate) fn work(&self, i: u32) -> Option<&Work<P>> {
        self.work.get(i as usize)
    }

    /// The engine parts, for a worker pool to reach by index.
    pub(crate) fn work_region(&self) -> &Region<Work<P>> {
        &self.work
    }

    /// The address of the path at `from` in slot `i` (for an SQE).
    pub(crate) fn path_addr(&self, i: u32, from: usize) -> u64 {
        self.work.get(i as usize).map_or(0, |w| w.path_addr(from))
    }

    /// The address of slot `i`'s statx buffer (for an SQE).
    pub(crate) fn statx_addr(&self, i: u32) -> u64 {
        self.work.get(i as usize).map_or(0, Work::statx_addr)
    }

    /// Pending -> InFlight: the engine part now belongs to the engine.
    pub(crate) fn hand_over(&mut self, i: u32) {
        if let Some(m) = self.meta.get_mut(i as usize)
            && m.state == State::Pending
        {
            m.state = State::InFlight;
        }
    }

    /// The request finished with `result` (a value or `-errno`): it is
    /// `Done`, and its engine part the loop's again.
    pub(crate) fn finish(&mut self, i: u32, result: i64) {
        if let Some(m) = self.meta.get_mut(i as usize)
            && matches!(m.state, State::Pending | State::InFlight)
        {
            m.state = State::Done;
            m.result = result;
        }
    }

    /// The result a worker left in slot `i` (read after its completion was
    /// taken from the done queue under the pool's lock).
    pub(crate) fn worker_result(&self, i: u32) -> i64 {
        self.work.get(i as usize).map_or(-(Errno::EINVAL.raw() as i64), |w| w.result.load(Ordering::Relaxed))
    }

    /// The result of a `Done` slot.
    pub(crate) fn result(&self, i: u32) -> Option<i64> {
        self.meta.get(i as usize).filter(|m| m.state == State::Done).map(|m| m.result)
    }

    /// Takes a `Done` request out: the slot is free again (its id stale).
    pub(crate) fn release(&mut self, i: u32) -> Option<Taken<F>> {
        let id = self.id(i);
        let m = self.meta.get_mut(i as usize)?;
        if m.state != State::Done {
            return None;
        }
        let taken = *m;
        m.state = State::Free;
        m.generation = m.generation.wrapping_add(1);
        m.callback = None;
        m.held = Held::None;
        m.next = self.free;
        self.free = i;
        self.used -= 1;
        // SAFETY: the raw parts are of the `&'static mut` the request was
        // given; nothing else has referred to it since it finished (the
        // engine is done with it), and the slot no longer holds it.
        let buffer = match taken.held {
            Held::Mut(p, n) => Some(unsafe { core::slice::from_raw_parts_mut(p, n) }),
            _ => None,
        };
        let stat = match taken.op {
            Op::Stat | Op::Lstat | Op::Fstat if taken.result >= 0 => self.work.get(i as usize).map(|w| {
                // SAFETY: done: the loop thread owns the engine part again.
                Stat::from(FileStat::from_statx(unsafe { &*w.statx.get() }))
            }),
            _ => None,
        };
        Some(Taken { id, op: taken.op, data: taken.data, callback: taken.callback, result: taken.result, buffer, stat })
    }

    /// Appends `i` to `list`.
    pub(crate) fn push(&mut self, list: &mut List, i: u32) {
        if let Some(m) = self.meta.get_mut(i as usize) {
            m.next = NIL;
        }
        match self.meta.get_mut(list.tail as usize) {
            Some(t) => t.next = i,
            None => list.head = i,
        }
        list.tail = i;
        list.len += 1;
    }

    /// Takes the first slot of `list`.
    pub(crate) fn pop(&mut self, list: &mut List) -> Option<u32> {
        let i = list.head;
        let m = self.meta.get(i as usize)?;
        list.head = m.next;
        if list.head == NIL {
            list.tail = NIL;
        }
        list.len -= 1;
        Some(i)
    }

    /// Takes `i` out of `list` wherever it is; whether it was there.
    pub(crate) fn unlink(&mut self, list: &mut List, i: u32) -> bool {
        let mut prev = NIL;
        let mut at = list.head;
        while let Some(m) = self.meta.get(at as usize) {
            let next = m.next;
            if at == i {
                match self.meta.get_mut(prev as usize) {
                    Some(p) => p.next = next,
                    None => list.head = next,
                }
                if list.tail == i {
                    list.tail = prev;
                }
                list.len -= 1;
                return true;
            }
            prev = at;
            at = next;
        }
        false
    }

    /// Every slot in `state`.
    pub(crate) fn slots_in(&self, state: State) -> impl Iterator<Item = u32> + '_ {
        self.meta.iter().enumerate().filter(move |(_, m)| m.state == state).map(|(i, _)| i as u32)
    }
}

/// A worker's fstatat fallback, written where statx would have written.
pub(crate) fn store_stat(out: &mut Statx, s: &FileStat) {
    *out = statx::empty();
    out.stx_mask = statx::MASK & !linux_raw_sys::general::STATX_BTIME;
    out.stx_mode = s.mode as u16;
    out.stx_nlink = s.nlink;
    out.stx_uid = s.uid;
    out.stx_gid = s.gid;
    out.stx_size = s.size;
    out.stx_blocks = s.blocks;
    out.stx_blksize = s.blksize;
    out.stx_ino = s.ino;
    (out.stx_dev_major, out.stx_dev_minor) = s.dev;
    (out.stx_rdev_major, out.stx_rdev_minor) = s.rdev;
    (out.stx_atime.tv_sec, out.stx_atime.tv_nsec) = s.atime;
    (out.stx_mtime.tv_sec, out.stx_mtime.tv_nsec) = s.mtime;
    (out.stx_ctime.tv_sec, out.stx_ctime.tv_nsec) = s.ctime;
}

#[cfg(test)]
mod tests {
    use super::*;

    type T = Table<fn(), 16>;

    fn noop() {}

    #[test]
    fn slots_are_reused_with_a_new_generation_and_a_full_table_is_capacity() {
        let mut t = T::new(2).unwrap();
        let a = t.alloc(Op::Close, Args::on(Op::Close, 3), &[], 7, noop, Buffer::None).ok().unwrap();
        let b = t.alloc(Op::Close, Args::on(Op::Close, 4), &[], 8, noop, Buffer::None).ok().unwrap();
        assert!(matches!(t.alloc(Op::Close, Args::NONE, &[], 0, noop, Buffer::None), Err((Error::Capacity, _))));
        let id = t.id(a);
        assert_eq!(t.find(id), Some(a));
        t.hand_over(a);
        assert!(t.args(a).is_none(), "in flight: the engine's");
        t.finish(a, 0);
        assert_eq!(t.release(a).map(|x| x.data), Some(7));
        assert_eq!(t.find(id), None, "stale after release");
        let c = t.alloc(Op::Close, Args::NONE, &[], 9, noop, Buffer::None).ok().unwrap();
        assert_eq!(c, a);
        assert_ne!(t.id(c), id);
        assert_eq!(t.used(), 2);
        let _ = b;
    }

    #[test]
    fn paths_are_copied_with_their_nuls_or_refused_whole() {
        let mut t = T::new(1).unwrap();
        let p = [PathArg::new(b"/a/b").unwrap(), PathArg::new(b"/c").unwrap()];
        let i = t.alloc(Op::Rename, Args::on(Op::Rename, -100), &p, 0, noop, Buffer::None).ok().unwrap();
        let w = t.work(i).unwrap();
        // SAFETY: pending: the test (the loop) owns the slot.
        unsafe {
            assert_eq!(w.path(0).unwrap().to_bytes(), b"/a/b");
            assert_eq!(w.path(w.args().path2).unwrap().to_bytes(), b"/c");
        }
        let mut t = T::new(1).unwrap();
        let long = [PathArg::new(&[b'x'; 16]).unwrap()];
        let r = t.alloc(Op::Unlink, Args::NONE, &long, 0, noop, Buffer::None);
        assert!(matches!(r, Err((Error::Os(Errno::ENAMETOOLONG), _))));
        assert_eq!(t.used(), 0);
        let fits = [PathArg::new(&[b'x'; 15]).unwrap()];
        assert!(t.alloc(Op::Unlink, Args::NONE, &fits, 0, noop, Buffer::None).is_ok());
    }

    #[test]
    fn lists_keep_fifo_order_and_unlink_anywhere() {
        let mut t = T::new(4).unwrap();
        let ids: Vec<u32> =
            (0..4).map(|_| t.alloc(Op::Close, Args::NONE, &[], 0, noop, Buffer::None).ok().unwrap()).collect();
        let mut l = List::new();
        for &i in &ids {
            t.push(&mut l, i);
        }
        assert!(t.unlink(&mut l, ids[2]));
        assert!(!t.unlink(&mut l, ids[2]));
        assert!(t.unlink(&mut l, ids[3]));
        t.push(&mut l, ids[3]);
        let order: Vec<u32> = core::iter::from_fn(|| t.pop(&mut l)).collect();
        assert_eq!(order, vec![ids[0], ids[1], ids[3]]);
        assert!(l.is_empty());
    }

    #[test]
    fn a_read_buffer_comes_back_whole_after_release() {
        static mut BUF: [u8; 8] = [0; 8];
        let mut t = T::new(1).unwrap();
        // SAFETY: the only reference ever made to BUF.
        let buf: &'static mut [u8] = unsafe { &mut *core::ptr::addr_of_mut!(BUF) };
        let i = t.alloc(Op::Read, Args::on(Op::Read, 0), &[], 0, noop, Buffer::Mut(buf, 8)).ok().unwrap();
        t.with_pending_io(i, |_, b| b.unwrap().copy_from_slice(b"abcdefgh")).unwrap();
        t.set_done(i, 3);
        t.with_pending_io(i, |a, b| assert_eq!((a.done, b.unwrap().len()), (3, 5))).unwrap();
        t.finish(i, 8);
        let back = t.release(i).unwrap().buffer.unwrap();
        assert_eq!(back, b"abcdefgh");
    }
}
