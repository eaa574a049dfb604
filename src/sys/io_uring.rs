//! io_uring(7) for readiness: `io_uring_setup`, the two rings mapped from
//! its fd, `io_uring_enter` and `IORING_REGISTER_PROBE`.
//!
//! [`Ring`] is the whole safe surface: push a submission (copied into the
//! mapped SQE array, so nothing of ours needs a stable address), enter the
//! kernel, pop completions. Ring indices shared with the kernel are accessed
//! with atomics: Acquire loads of what the kernel publishes (SQ head, CQ
//! tail), Release stores of what we publish (SQ tail, CQ head).
//!
//! The SQE is defined here as a plain struct (linux-raw-sys has it as nested
//! unions); a test checks it against linux-raw-sys's layout.

use super::call::check;
use super::errno::Errno;
use super::fd::{OwnedFd, RawFd};
use super::mmap::Shared;
use core::sync::atomic::{AtomicU32, Ordering};
use linux_raw_sys::general as g;
use linux_raw_sys::io_uring as u;

pub(crate) use u::io_uring_op as Op;

/// `ETIME`: a wait's timeout passed (io_uring reports it as an error).
pub(crate) const ETIME: Errno = Errno::from_raw(linux_raw_sys::errno::ETIME as u16);

/// `struct io_uring_sqe` with the fields a poll request uses named plainly.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sqe {
    /// `IORING_OP_*`.
    pub opcode: u8,
    /// `IOSQE_*`.
    pub flags: u8,
    /// Unused here.
    pub ioprio: u16,
    /// The fd a poll watches.
    pub fd: i32,
    /// Unused here.
    pub off: u64,
    /// `POLL_REMOVE`: the user_data of the poll to remove.
    pub addr: u64,
    /// `POLL_ADD`: `IORING_POLL_ADD_*` flags.
    pub len: u32,
    /// `POLL_ADD`: `poll32_events`.
    pub op_flags: u32,
    /// Handed back in the completion.
    pub user_data: u64,
    /// Unused here.
    pub buf_index: u16,
    /// Unused here.
    pub personality: u16,
    /// Unused here.
    pub splice_fd_in: i32,
    /// Unused here.
    pub addr3: u64,
    /// Unused here.
    pub pad: u64,
}

/// One completion, copied out of the CQ ring.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Cqe {
    /// The submission's user_data.
    pub user_data: u64,
    /// A poll mask, or `-errno`.
    pub res: i32,
    /// `IORING_CQE_F_*` (`F_MORE`: a multishot request stays armed).
    pub flags: u32,
}

/// Which operations the kernel supports, from `IORING_REGISTER_PROBE`.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Probe {
    supported: [u64; 4],
}

impl Probe {
    /// Whether `op` is supported.
    pub(crate) fn supports(&self, op: Op) -> bool {
        let i = op as usize;
        i < 256 && self.supported[i / 64] & (1 << (i % 64)) != 0
    }
}

/// Offsets (from the start of their mapping) of the ring fields we use.
#[derive(Copy, Clone, Debug)]
struct Offsets {
    sq_head: usize,
    sq_tail: usize,
    sq_flags: usize,
    sq_array: usize,
    cq_head: usize,
    cq_tail: usize,
    cq_overflow: usize,
    cqes: usize,
}

/// An io_uring instance: its fd, the mapped SQ and CQ rings and the SQE array.
pub(crate) struct Ring {
    // Field order is drop order: unmap before the fd closes.
    sq_map: Shared,
    /// `None` with `IORING_FEAT_SINGLE_MMAP`: the CQ ring shares `sq_map`.
    cq_map: Option<Shared>,
    sqes: Shared,
    fd: OwnedFd,
    off: Offsets,
    sq_entries: u32,
    sq_mask: u32,
    cq_entries: u32,
    cq_mask: u32,
    features: u32,
    flags: u32,
    /// Our copy of the SQ tail (we are its only writer).
    sq_tail: u32,
    /// Our copy of the CQ head (we are its only writer).
    cq_head: u32,
}

impl Ring {
    /// `io_uring_setup(entries)` with `flags` (`IORING_SETUP_*`; a nonzero
    /// `cq_entries` adds `IORING_SETUP_CQSIZE`), and the three mappings.
    /// `ENOSYS` under qemu-user; `EPERM` from seccomp profiles or
    /// `kernel.io_uring_disabled`; `EINVAL` for flags the kernel does not know.
    pub(crate) fn setup(entries: u32, cq_entries: u32, flags: u32) -> Result<Ring, Errno> {
        // SAFETY: io_uring_params is plain integers, valid when zeroed.
        let mut p: u::io_uring_params = unsafe { core::mem::zeroed() };
        p.flags = flags;
        if cq_entries > 0 {
            p.flags |= u::IORING_SETUP_CQSIZE;
            p.cq_entries = cq_entries;
        }
        // SAFETY: `p` is a valid, writable io_uring_params for the call.
        let fd = check(unsafe {
            sc::syscall2(g::__NR_io_uring_setup as usize, entries as usize, &mut p as *mut u::io_uring_params as usize)
        })?;
        let fd = OwnedFd::from_new(fd as RawFd);
        let sq_len = p.sq_off.array as usize + p.sq_entries as usize * size_of::<u32>();
        let cq_len = p.cq_off.cqes as usize + p.cq_entries as usize * size_of::<u::io_uring_cqe>();
        let single = p.features & u::IORING_FEAT_SINGLE_MMAP != 0;
        let sq_map = Shared::new(
            fd.as_raw_fd(),
            if single { sq_len.max(cq_len) } else { sq_len },
            u64::from(u::IORING_OFF_SQ_RING),
        )?;
        let cq_map =
            if single { None } else { Some(Shared::new(fd.as_raw_fd(), cq_len, u64::from(u::IORING_OFF_CQ_RING))?) };
        let sqes =
            Shared::new(fd.as_raw_fd(), p.sq_entries as usize * size_of::<Sqe>(), u64::from(u::IORING_OFF_SQES))?;
        let off = Offsets {
            sq_head: p.sq_off.head as usize,
            sq_tail: p.sq_off.tail as usize,
            sq_flags: p.sq_off.flags as usize,
            sq_array: p.sq_off.array as usize,
            cq_head: p.cq_off.head as usize,
            cq_tail: p.cq_off.tail as usize,
            cq_overflow: p.cq_off.overflow as usize,
            cqes: p.cq_off.cqes as usize,
        };
        let mut ring = Ring {
            sq_map,
            cq_map,
            sqes,
            fd,
            off,
            sq_entries: p.sq_entries,
            sq_mask: p.sq_entries - 1,
            cq_entries: p.cq_entries,
            cq_mask: p.cq_entries - 1,
            features: p.features,
            flags: p.flags,
            sq_tail: 0,
            cq_head: 0,
        };
        if !p.sq_entries.is_power_of_two() || !p.cq_entries.is_power_of_two() {
            return Err(Errno::EINVAL);
        }
        ring.sq_tail = ring.sq_atomic(ring.off.sq_tail).load(Ordering::Relaxed);
        ring.cq_head = ring.cq_atomic(ring.off.cq_head).load(Ordering::Relaxed);
        // The SQ array maps ring positions to SQE indices: identity, once.
        for i in 0..ring.sq_entries {
            ring.sq_atomic(ring.off.sq_array + i as usize * 4).store(i, Ordering::Relaxed);
        }
        Ok(ring)
    }

    fn sq_atomic(&self, offset: usize) -> &AtomicU32 {
        debug_assert!(offset + 4 <= self.sq_map.len() && offset.is_multiple_of(4));
        // SAFETY: every offset used comes from the kernel's io_sqring_offsets
        // (or the array, checked against the mapping length at setup): a
        // 4-byte aligned u32 inside `sq_map`, which lives as long as `self`.
        // The kernel accesses it concurrently, hence atomics only.
        unsafe { AtomicU32::from_ptr(self.sq_map.base().add(offset).cast::<u32>()) }
    }

    fn cq_base(&self) -> *mut u8 {
        self.cq_map.as_ref().unwrap_or(&self.sq_map).base()
    }

    fn cq_atomic(&self, offset: usize) -> &AtomicU32 {
        // SAFETY: as in `sq_atomic`, for io_cqring_offsets in the CQ mapping.
        unsafe { AtomicU32::from_ptr(self.cq_base().add(offset).cast::<u32>()) }
    }

    /// The ring's fd.
    pub(crate) fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// `IORING_FEAT_*` the kernel reported at setup.
    pub(crate) fn features(&self) -> u32 {
        self.features
    }

    /// `IORING_SETUP_*` in effect.
    pub(crate) fn setup_flags(&self) -> u32 {
        self.flags
    }

    /// SQ ring size.
    pub(crate) fn sq_entries(&self) -> u32 {
        self.sq_entries
    }

    /// CQ ring size.
    pub(crate) fn cq_entries(&self) -> u32 {
        self.cq_entries
    }

    /// `IORING_REGISTER_PROBE`: which operations the kernel supports
    /// (Linux 5.6; `EINVAL` before).
    pub(crate) fn probe(&self) -> Result<Probe, Errno> {
        // struct io_uring_probe (16 bytes) followed by 256 io_uring_probe_op
        // (8 bytes each), zeroed as the kernel demands.
        let mut buf = [0u64; 2 + 256];
        // SAFETY: `buf` is a zeroed, writable io_uring_probe with room for
        // the 256 ops announced in nr_args, 8-byte aligned.
        check(unsafe {
            sc::syscall4(
                g::__NR_io_uring_register as usize,
                self.fd.as_raw_fd() as usize,
                u::io_uring_register_op::IORING_REGISTER_PROBE as usize,
                buf.as_mut_ptr() as usize,
                256,
            )
        })?;
        let ops_len = ((buf[0] >> 8) & 0xff) as usize;
        let mut supported = [0u64; 4];
        for op in &buf[2..2 + ops_len] {
            // io_uring_probe_op: op (u8), resv (u8), flags (u16), resv2 (u32).
            let code = (op & 0xff) as usize;
            let flags = ((op >> 16) & 0xffff) as u32;
            if flags & u::IO_URING_OP_SUPPORTED != 0 {
                supported[code / 64] |= 1 << (code % 64);
            }
        }
        Ok(Probe { supported })
    }

    /// `IORING_REGISTER_EVENTFD`: the kernel signals `fd` whenever it posts
    /// a completion (Linux 5.1), so a loop can watch an eventfd instead of
    /// the ring.
    #[cfg(feature = "files")]
    pub(crate) fn register_eventfd(&self, fd: RawFd) -> Result<(), Errno> {
        let arg: i32 = fd;
        // SAFETY: `arg` is one readable i32, as nr_args = 1 announces.
        check(unsafe {
            sc::syscall4(
                g::__NR_io_uring_register as usize,
                self.fd.as_raw_fd() as usize,
                u::io_uring_register_op::IORING_REGISTER_EVENTFD as usize,
                &arg as *const i32 as usize,
                1,
            )
        })
        .map(drop)
    }

    /// `IORING_REGISTER_IOWQ_MAX_WORKERS` (Linux 5.15): at most `bounded`
    /// kernel workers for requests that can block on disk (0 keeps the
    /// kernel's limit).
    #[cfg(feature = "files")]
    pub(crate) fn set_max_workers(&self, bounded: u32) -> Result<(), Errno> {
        let mut counts: [u32; 2] = [bounded, 0];
        // SAFETY: `counts` is two writable u32, as nr_args = 2 announces.
        check(unsafe {
            sc::syscall4(
                g::__NR_io_uring_register as usize,
                self.fd.as_raw_fd() as usize,
                u::io_uring_register_op::IORING_REGISTER_IOWQ_MAX_WORKERS as usize,
                counts.as_mut_ptr() as usize,
                2,
            )
        })
        .map(drop)
    }

    /// Free SQ slots.
    pub(crate) fn sq_space(&self) -> u32 {
        let head = self.sq_atomic(self.off.sq_head).load(Ordering::Acquire);
        self.sq_entries - self.sq_tail.wrapping_sub(head)
    }

    /// Submissions queued and not yet taken by the kernel.
    pub(crate) fn sq_pending(&self) -> u32 {
        let head = self.sq_atomic(self.off.sq_head).load(Ordering::Acquire);
        self.sq_tail.wrapping_sub(head)
    }

    /// Copies `sqe` into the next SQ slot and publishes it. `false` when the
    /// SQ ring is full (nothing was written).
    pub(crate) fn push(&mut self, sqe: &Sqe) -> bool {
        if self.sq_space() == 0 {
            return false;
        }
        let idx = (self.sq_tail & self.sq_mask) as usize;
        // SAFETY: `idx < sq_entries`, and the SQE mapping holds sq_entries
        // SQEs (64-byte aligned). The kernel reads SQEs only inside
        // io_uring_enter and only between head and tail; this slot is beyond
        // the tail we published, so the kernel is not reading it.
        unsafe { core::ptr::write_volatile(self.sqes.base().cast::<Sqe>().add(idx), *sqe) };
        self.sq_tail = self.sq_tail.wrapping_add(1);
        self.sq_atomic(self.off.sq_tail).store(self.sq_tail, Ordering::Release);
        true
    }

    /// `IORING_SQ_*` flags (`CQ_OVERFLOW`: completions wait in the kernel's
    /// overflow list for room in the CQ ring).
    pub(crate) fn sq_flags(&self) -> u32 {
        self.sq_atomic(self.off.sq_flags).load(Ordering::Acquire)
    }

    /// The kernel's count of completions it dropped for lack of CQ room
    /// (only kernels without `IORING_FEAT_NODROP` drop them).
    pub(crate) fn cq_overflow(&self) -> u32 {
        self.cq_atomic(self.off.cq_overflow).load(Ordering::Acquire)
    }

    /// Completions waiting in the CQ ring.
    pub(crate) fn cq_ready(&self) -> u32 {
        self.cq_atomic(self.off.cq_tail).load(Ordering::Acquire).wrapping_sub(self.cq_head)
    }

    /// Copies up to `out.len()` completions out of the CQ ring and hands
    /// their slots back to the kernel.
    pub(crate) fn pop(&mut self, out: &mut [Cqe]) -> usize {
        let tail = self.cq_atomic(self.off.cq_tail).load(Ordering::Acquire);
        let mut n = 0;
        let entry = size_of::<u::io_uring_cqe>();
        while self.cq_head != tail && n < out.len() {
            let idx = (self.cq_head & self.cq_mask) as usize;
            // SAFETY: `idx < cq_entries` and the CQ mapping holds cq_entries
            // CQEs after `cqes` (checked at setup); the kernel published this
            // one before the tail we loaded with Acquire and will not reuse
            // its slot before we release the head past it.
            let (user_data, res, flags) = unsafe {
                let p = self.cq_base().add(self.off.cqes + idx * entry);
                (
                    core::ptr::read_volatile(p.cast::<u64>()),
                    core::ptr::read_volatile(p.add(8).cast::<i32>()),
                    core::ptr::read_volatile(p.add(12).cast::<u32>()),
                )
            };
            out[n] = Cqe { user_data, res, flags };
            n += 1;
            self.cq_head = self.cq_head.wrapping_add(1);
        }
        if n > 0 {
            self.cq_atomic(self.off.cq_head).store(self.cq_head, Ordering::Release);
        }
        n
    }

    /// `io_uring_enter`: submits `to_submit` queued SQEs and, with
    /// `IORING_ENTER_GETEVENTS` in `flags`, waits until `min_complete`
    /// completions are in the CQ ring or `timeout_ns` (relative) passes,
    /// with `IORING_ENTER_EXT_ARG` (Linux 5.11) when a timeout is given.
    /// Returns how many SQEs were submitted. `ETIME` when the timeout passed.
    pub(crate) fn enter(
        &self,
        to_submit: u32,
        min_complete: u32,
        flags: u32,
        timeout_ns: Option<u64>,
    ) -> Result<usize, Errno> {
        let ts = timeout_ns.map(|ns| g::__kernel_timespec {
            tv_sec: (ns / 1_000_000_000) as i64,
            tv_nsec: (ns % 1_000_000_000) as i64,
        });
        let arg = ts.as_ref().map(|t| u::io_uring_getevents_arg {
            sigmask: 0,
            sigmask_sz: g::_NSIG / 8,
            min_wait_usec: 0,
            ts: t as *const g::__kernel_timespec as u64,
        });
        let (flags, argp, argsz) = match &arg {
            Some(a) => (
                flags | u::IORING_ENTER_EXT_ARG,
                a as *const u::io_uring_getevents_arg as usize,
                size_of::<u::io_uring_getevents_arg>(),
            ),
            None => (flags, 0, g::_NSIG as usize / 8),
        };
        // SAFETY: `argp` is null (no signal mask) or points at a getevents
        // arg whose timespec pointer refers to `ts`; both live across the call
        // and are only read.
        check(unsafe {
            sc::syscall6(
                g::__NR_io_uring_enter as usize,
                self.fd.as_raw_fd() as usize,
                to_submit as usize,
                min_complete as usize,
                flags as usize,
                argp,
                argsz,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fd::{pipe, write};
    use core::mem::offset_of;

    #[test]
    fn sqe_layout_matches_the_kernel() {
        assert_eq!(size_of::<Sqe>(), 64);
        assert_eq!(size_of::<u::io_uring_sqe>(), 64);
        assert_eq!(offset_of!(Sqe, fd), offset_of!(u::io_uring_sqe, fd));
        assert_eq!(offset_of!(Sqe, len), offset_of!(u::io_uring_sqe, len));
        assert_eq!(offset_of!(Sqe, user_data), offset_of!(u::io_uring_sqe, user_data));
        assert_eq!(offset_of!(Sqe, personality), offset_of!(u::io_uring_sqe, personality));
        assert_eq!((offset_of!(Sqe, addr), offset_of!(Sqe, op_flags)), (16, 28));
        assert_eq!(size_of::<u::io_uring_cqe>(), 16);
    }

    fn ring(entries: u32, cq: u32) -> Option<Ring> {
        match Ring::setup(entries, cq, 0) {
            Ok(r) => Some(r),
            Err(Errno::ENOSYS | Errno::EPERM) => None,
            Err(e) => panic!("io_uring_setup: {e}"),
        }
    }

    #[test]
    fn poll_add_completes_and_probe_names_the_ops() {
        let Some(mut r) = ring(4, 16) else { return };
        assert_eq!((r.sq_entries(), r.cq_entries()), (4, 16));
        let probe = r.probe().unwrap();
        assert!(probe.supports(Op::IORING_OP_POLL_ADD) && probe.supports(Op::IORING_OP_POLL_REMOVE));
        assert!(!probe.supports(Op::IORING_OP_LAST));
        let (rd, wr) = pipe().unwrap();
        let sqe = Sqe {
            opcode: Op::IORING_OP_POLL_ADD as u8,
            fd: rd.as_raw_fd(),
            op_flags: g::POLLIN,
            user_data: 0x1234,
            ..Sqe::default()
        };
        assert!(r.push(&sqe));
        assert_eq!(r.sq_pending(), 1);
        assert_eq!(r.enter(1, 0, u::IORING_ENTER_GETEVENTS, None), Ok(1));
        assert_eq!(r.cq_ready(), 0);
        write(wr.as_raw_fd(), b"x").unwrap();
        assert_eq!(r.enter(0, 1, u::IORING_ENTER_GETEVENTS, Some(1_000_000_000)), Ok(0));
        let mut out = [Cqe::default(); 4];
        assert_eq!(r.pop(&mut out), 1);
        assert_eq!(out[0].user_data, 0x1234);
        assert_eq!(out[0].res as u32 & g::POLLIN, g::POLLIN);
        // Nothing to wait for: the timeout passes.
        assert_eq!(r.enter(0, 1, u::IORING_ENTER_GETEVENTS, Some(1_000_000)), Err(ETIME));
        for _ in 0..4 {
            assert!(r.push(&Sqe::default()));
        }
        assert!(!r.push(&Sqe::default()), "the SQ ring holds 4");
    }
}
