//! The io_uring engine: each request becomes one SQE (OPENAT, CLOSE, READ,
//! WRITE, FSYNC, STATX, UNLINKAT, RENAMEAT, MKDIRAT), copied into the
//! mapped SQ ring and submitted by one `io_uring_enter` per pass; the
//! kernel signals a registered eventfd when it posts completions, which the
//! loop watches; completions are read from the CQ ring without a syscall.
//!
//! The SQE's `user_data` is `generation << 32 | slot`; cancellations carry
//! `CANCEL_TAG` in the slot half and their completions are ignored (the
//! target's own completion says how it ended).

use super::request::{Args, Op, RequestId};
use super::shared::{List, State, Table};
use crate::sys::io_uring::{Cqe, Op as UOp, Ring, Sqe};
use crate::sys::{Errno, RawFd};
use linux_raw_sys::io_uring as u;

/// Marks the user data of an ASYNC_CANCEL.
const CANCEL_TAG: u64 = 1 << 31;

/// The operations the engine needs, all checked with `IORING_REGISTER_PROBE`.
const NEEDED: [UOp; 10] = [
    UOp::IORING_OP_OPENAT,
    UOp::IORING_OP_CLOSE,
    UOp::IORING_OP_READ,
    UOp::IORING_OP_WRITE,
    UOp::IORING_OP_FSYNC,
    UOp::IORING_OP_STATX,
    UOp::IORING_OP_UNLINKAT,
    UOp::IORING_OP_RENAMEAT,
    UOp::IORING_OP_MKDIRAT,
    UOp::IORING_OP_ASYNC_CANCEL,
];

/// The user data of request `id`.
pub(crate) fn user_data(id: RequestId) -> u64 {
    u64::from(id.generation) << 32 | u64::from(id.slot)
}

/// The io_uring engine.
pub(crate) struct Uring {
    ring: Ring,
    /// SQEs pushed since the last enter.
    unsubmitted: u32,
}

impl Uring {
    /// A ring with room for `n` requests and one cancellation each, whose
    /// completions signal `event_fd`. `ENOSYS` (qemu-user), `EPERM`
    /// (seccomp, `kernel.io_uring_disabled`), `EOPNOTSUPP` when the probe
    /// lacks an operation.
    pub(crate) fn new(n: usize, event_fd: RawFd, max_workers: usize) -> Result<Uring, Errno> {
        let sq = (n.saturating_mul(2)).next_power_of_two().clamp(8, 4096) as u32;
        let cq = sq.saturating_mul(2);
        let mut ring = Err(Errno::EINVAL);
        for flags in [u::IORING_SETUP_CLAMP | u::IORING_SETUP_SUBMIT_ALL, u::IORING_SETUP_CLAMP, 0] {
            ring = Ring::setup(sq, cq, flags);
            if !matches!(ring, Err(Errno::EINVAL)) {
                break;
            }
        }
        let ring = ring?;
        let probe = ring.probe()?;
        if NEEDED.iter().any(|&op| !probe.supports(op)) {
            return Err(Errno::EOPNOTSUPP);
        }
        ring.register_eventfd(event_fd)?;
        // Older kernels keep their own limit of kernel workers.
        let _ = ring.set_max_workers(max_workers as u32);
        Ok(Uring { ring, unsubmitted: 0 })
    }

    /// The SQE for pending request `i`.
    fn sqe<F: Copy, const P: usize>(table: &Table<F, P>, i: u32, a: &Args) -> Sqe {
        let user_data = user_data(table.id(i));
        let path = table.path_addr(i, 0);
        let base = Sqe { fd: a.fd, user_data, ..Sqe::default() };
        let op = |o: UOp| o as u8;
        match Op::from_code(a.op) {
            Some(Op::Open) => {
                Sqe { opcode: op(UOp::IORING_OP_OPENAT), addr: path, len: a.mode, op_flags: a.flags, ..base }
            }
            Some(Op::Close) => Sqe { opcode: op(UOp::IORING_OP_CLOSE), ..base },
            Some(o @ (Op::Read | Op::Write)) => Sqe {
                opcode: op(if o == Op::Read { UOp::IORING_OP_READ } else { UOp::IORING_OP_WRITE }),
                addr: a.buf as usize as u64,
                len: a.len.min(u32::MAX as usize) as u32,
                off: a.offset,
                ..base
            },
            Some(o @ (Op::Fsync | Op::Fdatasync)) => Sqe {
                opcode: op(UOp::IORING_OP_FSYNC),
                op_flags: if o == Op::Fdatasync { u::IORING_FSYNC_DATASYNC } else { 0 },
                ..base
            },
            Some(Op::Stat | Op::Lstat | Op::Fstat) => Sqe {
                opcode: op(UOp::IORING_OP_STATX),
                addr: path,
                len: crate::sys::statx::MASK,
                op_flags: a.flags,
                off: table.statx_addr(i),
                ..base
            },
            Some(Op::Unlink | Op::Rmdir) => {
                Sqe { opcode: op(UOp::IORING_OP_UNLINKAT), addr: path, op_flags: a.flags, ..base }
            }
            Some(Op::Rename) => Sqe {
                opcode: op(UOp::IORING_OP_RENAMEAT),
                addr: path,
                len: a.fd as u32,
                off: table.path_addr(i, a.path2),
                op_flags: a.flags,
                ..base
            },
            Some(Op::Mkdir) => Sqe { opcode: op(UOp::IORING_OP_MKDIRAT), addr: path, len: a.mode, ..base },
            None => Sqe { opcode: op(UOp::IORING_OP_NOP), ..base },
        }
    }

    /// Pushes an SQE, entering the kernel first when the SQ ring is full.
    fn push(&mut self, sqe: &Sqe) -> Result<(), Errno> {
        if !self.ring.push(sqe) {
            self.enter()?;
            if !self.ring.push(sqe) {
                return Err(Errno::EAGAIN);
            }
        }
        self.unsubmitted += 1;
        Ok(())
    }

    /// Copies every pending request into the SQ ring (they are then in
    /// flight) and submits them with one `io_uring_enter`. Returns how many
    /// were submitted; on an error the rest stay pending.
    pub(crate) fn submit<F: Copy, const P: usize>(
        &mut self,
        table: &mut Table<F, P>,
        pending: &mut List,
    ) -> Result<usize, Errno> {
        let mut n = 0;
        while let Some(i) = table.pop(pending) {
            let Some(a) = table.args(i) else { continue };
            let sqe = Self::sqe(table, i, &a);
            if let Err(e) = self.push(&sqe) {
                // Back to the head of the list: it goes first next time.
                let mut rest = List::new();
                table.push(&mut rest, i);
                while let Some(j) = table.pop(pending) {
                    table.push(&mut rest, j);
                }
                *pending = rest;
                return Err(e);
            }
            table.hand_over(i);
            n += 1;
        }
        self.enter()?;
        Ok(n)
    }

    /// Asks the kernel to cancel in-flight request `id` (at the next enter).
    pub(crate) fn cancel(&mut self, id: RequestId) -> Result<(), Errno> {
        let sqe = Sqe {
            opcode: UOp::IORING_OP_ASYNC_CANCEL as u8,
            fd: -1,
            addr: user_data(id),
            user_data: user_data(id) | CANCEL_TAG,
            ..Sqe::default()
        };
        self.push(&sqe)
    }

    /// Whether SQEs (cancellations) wait for the next enter.
    pub(crate) fn has_unsubmitted(&self) -> bool {
        self.unsubmitted > 0
    }

    /// Submits what was pushed (nothing to do: no syscall).
    pub(crate) fn enter(&mut self) -> Result<(), Errno> {
        while self.ring.sq_pending() > 0 {
            match self.ring.enter(self.ring.sq_pending(), 0, 0, None) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
        self.unsubmitted = 0;
        Ok(())
    }

    /// Moves the requests the kernel completed to `done`.
    pub(crate) fn reap<F: Copy, const P: usize>(&mut self, table: &mut Table<F, P>, done: &mut List) -> usize {
        let mut cqes = [Cqe::default(); 64];
        let mut total = 0;
        loop {
            let n = self.ring.pop(&mut cqes);
            for c in cqes.iter().take(n) {
                if c.user_data & CANCEL_TAG != 0 {
                    continue;
                }
                let id = RequestId { slot: c.user_data as u32, generation: (c.user_data >> 32) as u32 };
                if let Some(i) = table.find(id)
                    && table.state(i) == State::InFlight
                {
                    table.finish(i, i64::from(c.res));
                    table.push(done, i);
                    total += 1;
                }
            }
            if n < cqes.len() {
                return total;
            }
        }
    }

    /// Cancels every in-flight request and waits until the kernel has
    /// completed each (so no memory of the table is in use afterwards).
    /// Their completions go to `done`.
    pub(crate) fn shutdown<F: Copy, const P: usize>(&mut self, table: &mut Table<F, P>, done: &mut List) {
        for i in 0..table.capacity() as u32 {
            if table.state(i) == State::InFlight && !table.cancel_sent(i) && self.cancel(table.id(i)).is_ok() {
                table.mark_cancel(i);
            }
        }
        let _ = self.enter();
        while table.slots_in(State::InFlight).next().is_some() {
            match self.ring.enter(0, 1, u::IORING_ENTER_GETEVENTS, None) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => break,
            }
            self.reap(table, done);
        }
    }
}
