//! Linux AIO for readiness: `io_setup`, `io_destroy`, `io_submit`,
//! `io_cancel`, `io_getevents` with `IOCB_CMD_POLL` (Linux 4.18), and the
//! completion ring the kernel shares with user space.
//!
//! linux-raw-sys has no `aio_abi.h`, so `struct iocb`, `struct io_event` and
//! the ring header (`struct aio_ring`, private to `fs/aio.c` but stable since
//! 2.6.19 and read by libaio and libev) are defined here, with their sizes
//! and offsets checked by tests.
//!
//! Iocbs live in an [`Iocbs`] table in anonymous memory: the kernel copies an
//! iocb at submit time, but `io_cancel` finds a request by the *address* of
//! the user's iocb and reads its `aio_key` there, so that address must not
//! move while the request is in flight, even when the loop that owns the
//! table moves.

use super::call::check;
use super::errno::Errno;
use super::fd::RawFd;
use super::mmap::Anon;
use core::sync::atomic::{AtomicU32, Ordering};
use linux_raw_sys::general as k;

/// `IOCB_CMD_POLL`: wait for poll events on `aio_fildes` (Linux 4.18).
pub(crate) const IOCB_CMD_POLL: u16 = 5;
/// `IOCB_FLAG_RESFD`: signal the eventfd in `aio_resfd` on completion.
pub(crate) const IOCB_FLAG_RESFD: u32 = 1;
/// `AIO_RING_MAGIC`, the first sign that the ring header can be trusted.
pub(crate) const AIO_RING_MAGIC: u32 = 0xa10a_10a1;
/// `AIO_RING_INCOMPAT_FEATURES`: a reader must refuse a ring with other bits.
pub(crate) const AIO_RING_INCOMPAT_FEATURES: u32 = 0;

/// `struct iocb` (little-endian layout: `aio_key` before `aio_rw_flags`).
/// Only poll requests are ever built, so no iocb can make the kernel write
/// into our memory.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Iocb {
    aio_data: u64,
    aio_key: u32,
    aio_rw_flags: u32,
    aio_lio_opcode: u16,
    aio_reqprio: i16,
    aio_fildes: u32,
    aio_buf: u64,
    aio_nbytes: u64,
    aio_offset: i64,
    aio_reserved2: u64,
    aio_flags: u32,
    aio_resfd: u32,
}

/// `struct io_event`: one completion.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct IoEvent {
    /// The iocb's `aio_data`.
    pub data: u64,
    /// The user address of the iocb.
    pub obj: u64,
    /// For a poll: the `POLL*` mask that completed it (0 when cancelled).
    pub res: i64,
    /// Unused for polls.
    pub res2: i64,
}

/// `struct aio_ring`: the header at the start of the completion ring, which
/// the kernel maps at the address `io_setup` returns as the context id. The
/// `io_event`s follow it.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default)]
pub(crate) struct AioRingHeader {
    /// Context id (not used).
    pub id: u32,
    /// Number of `io_event` slots in the ring.
    pub nr: u32,
    /// Next slot to consume; written by whoever consumes (us or `io_getevents`).
    pub head: u32,
    /// Next slot the kernel fills; written by the kernel.
    pub tail: u32,
    /// [`AIO_RING_MAGIC`].
    pub magic: u32,
    /// 1 (`AIO_RING_COMPAT_FEATURES`).
    pub compat_features: u32,
    /// Must equal [`AIO_RING_INCOMPAT_FEATURES`].
    pub incompat_features: u32,
    /// `sizeof(struct aio_ring)`: where the events start.
    pub header_length: u32,
}

/// A table of iocbs at stable addresses, plus the pointer array `io_submit`
/// takes. Index `i` is one request slot; only poll iocbs are ever stored.
pub(crate) struct Iocbs {
    iocbs: Anon<Iocb>,
    ptrs: Anon<usize>,
}

impl Iocbs {
    /// `n` slots, all empty.
    pub(crate) fn new(n: usize) -> Result<Iocbs, Errno> {
        Ok(Iocbs { iocbs: Anon::new(n, Iocb::default())?, ptrs: Anon::new(n, 0)? })
    }

    /// Number of slots.
    pub(crate) fn len(&self) -> usize {
        self.iocbs.len()
    }

    /// Prepares slot `i` as a poll for `events` (`POLL*` bits) on `fd`,
    /// reported with `data`; when `resfd` is set the kernel also signals that
    /// eventfd on completion. Panics never: an `i` out of range is ignored.
    pub(crate) fn set_poll(&mut self, i: usize, fd: RawFd, events: u32, data: u64, resfd: Option<RawFd>) {
        if let Some(cb) = self.iocbs.get_mut(i) {
            *cb = Iocb {
                aio_data: data,
                aio_lio_opcode: IOCB_CMD_POLL,
                aio_fildes: fd as u32,
                aio_buf: u64::from(events),
                aio_flags: if resfd.is_some() { IOCB_FLAG_RESFD } else { 0 },
                aio_resfd: resfd.unwrap_or(0) as u32,
                ..Iocb::default()
            };
        }
    }

    /// The user address of slot `i`, as the kernel reports it in
    /// [`IoEvent::obj`].
    pub(crate) fn addr_of(&self, i: usize) -> u64 {
        self.iocbs.addr_of(i) as u64
    }
}

/// An AIO context: the kernel's request table and completion ring, destroyed
/// (every request cancelled) on drop.
pub(crate) struct Context {
    id: usize,
    /// Events in the ring (`aio_ring.nr`) when its header checked out and
    /// reading it directly is allowed; 0 means: use `io_getevents`.
    ring_nr: u32,
    /// Events asked for at `io_setup` (what counts against `aio-max-nr`).
    size: u32,
}

impl Context {
    /// `io_setup(nr_events)`. `ENOSYS` under qemu-user and without
    /// `CONFIG_AIO`; `EAGAIN` when `nr_events` would exceed
    /// `/proc/sys/fs/aio-max-nr` for the whole system.
    pub(crate) fn setup(nr_events: u32) -> Result<Context, Errno> {
        let mut id: usize = 0;
        // SAFETY: `id` is a valid, writable aio_context_t (unsigned long)
        // that is zero, as io_setup demands.
        check(unsafe { sc::syscall2(k::__NR_io_setup as usize, nr_events as usize, &mut id as *mut usize as usize) })?;
        let mut ctx = Context { id, ring_nr: 0, size: nr_events };
        ctx.ring_nr = ctx.checked_ring().map_or(0, |h| h.nr);
        Ok(ctx)
    }

    /// The ring header, if it checks out: magic, incompatible features and
    /// header size as this code knows them, and indices in range.
    fn checked_ring(&self) -> Option<AioRingHeader> {
        let h = self.header();
        let ok = h.magic == AIO_RING_MAGIC
            && h.incompat_features == AIO_RING_INCOMPAT_FEATURES
            && h.header_length as usize == size_of::<AioRingHeader>()
            && h.nr > 0
            && h.head < h.nr
            && h.tail < h.nr;
        ok.then_some(h)
    }

    /// A copy of the ring header as it is now.
    pub(crate) fn header(&self) -> AioRingHeader {
        let base = self.id as *const AioRingHeader;
        // SAFETY: io_setup returned `id` as the address of the ring it mapped
        // into our address space, page-aligned and at least one page long,
        // which stays mapped until io_destroy (our drop). Volatile: the
        // kernel may write it concurrently; a torn copy only fails the check.
        unsafe { core::ptr::read_volatile(base) }
    }

    /// Whether completions are read from the shared ring (its header checked
    /// out) rather than with `io_getevents`.
    pub(crate) fn reads_ring(&self) -> bool {
        self.ring_nr != 0
    }

    /// Stops reading the ring directly: every harvest goes through
    /// `io_getevents` (for tests and measurement).
    pub(crate) fn disable_ring(&mut self) {
        self.ring_nr = 0;
    }

    /// The `nr_events` this context was set up with.
    pub(crate) fn size(&self) -> u32 {
        self.size
    }

    /// `io_submit` of the iocbs at `slots` in `table`, in order. Returns how
    /// many the kernel took: fewer than asked means the next one failed (a
    /// submit starting at it reports why); an error means the first failed.
    pub(crate) fn submit(&self, table: &mut Iocbs, slots: &[u32]) -> Result<usize, Errno> {
        let mut n = 0;
        for &s in slots {
            let Some(p) = table.ptrs.get_mut(n) else { break };
            if (s as usize) < table.iocbs.len() {
                *p = table.iocbs.addr_of(s as usize);
                n += 1;
            }
        }
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: `ptrs[..n]` holds addresses of iocbs inside `table.iocbs`,
        // which are poll requests or default ones (a zero-byte read into
        // address 0, which writes nothing). Poll
        // requests make the kernel read the iocb, never write user memory;
        // the mapping outlives the call and its address never changes.
        check(unsafe { sc::syscall3(k::__NR_io_submit as usize, self.id, n, table.ptrs.addr_of(0)) })
    }

    /// `io_cancel` of the request submitted from slot `i` of `table`.
    /// `Ok(true)`: the kernel found it and will post its completion (as
    /// `EINPROGRESS` says); `Ok(false)`: it had already completed (`EINVAL`),
    /// so its completion is in the ring or already read.
    pub(crate) fn cancel(&self, table: &Iocbs, i: usize) -> Result<bool, Errno> {
        if i >= table.len() {
            return Ok(false);
        }
        let mut result = IoEvent::default();
        // SAFETY: the iocb address lies in `table`, mapped for the call (the
        // kernel reads its aio_key); `result` is a writable io_event, which
        // kernels before 5.0 filled in.
        let r = check(unsafe {
            sc::syscall3(
                k::__NR_io_cancel as usize,
                self.id,
                table.addr_of(i) as usize,
                &mut result as *mut IoEvent as usize,
            )
        });
        match r {
            Ok(_) | Err(Errno::EINPROGRESS) => Ok(true),
            Err(Errno::EINVAL) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `io_getevents(min_nr, out.len())` waiting at most `timeout_ns`
    /// (`None`: as long as it takes). Returns how many of `out` it filled.
    /// `EINTR` is returned, not retried: the caller's deadline decides.
    pub(crate) fn getevents(
        &self,
        min_nr: usize,
        out: &mut [IoEvent],
        timeout_ns: Option<u64>,
    ) -> Result<usize, Errno> {
        let ts = timeout_ns.map(|ns| k::__kernel_timespec {
            tv_sec: (ns / 1_000_000_000) as i64,
            tv_nsec: (ns % 1_000_000_000) as i64,
        });
        let ts_ptr = ts.as_ref().map_or(0, |t| t as *const k::__kernel_timespec as usize);
        let nr = out.len().min(i32::MAX as usize);
        // SAFETY: `out` is valid for writes of `nr` io_events; `ts_ptr` is
        // null or points at a timespec that lives across the call.
        check(unsafe {
            sc::syscall5(k::__NR_io_getevents as usize, self.id, min_nr.min(nr), nr, out.as_mut_ptr() as usize, ts_ptr)
        })
    }

    /// Reads completions straight from the shared ring into `out`, without a
    /// syscall, and hands the consumed slots back to the kernel. Returns 0
    /// when the ring is not read directly (see [`reads_ring`](Self::reads_ring)).
    pub(crate) fn read_ring(&self, out: &mut [IoEvent]) -> usize {
        let nr = self.ring_nr;
        if nr == 0 || out.is_empty() {
            return 0;
        }
        let base = self.id as *mut u8;
        // SAFETY: the header is inside the ring mapping (see `header`); the
        // u32 fields at offsets 8 (head) and 12 (tail) are 4-byte aligned.
        // The kernel writes `tail` after the event it publishes (smp_wmb
        // then store), hence the Acquire load; it reads `head` to learn
        // which slots it may reuse, hence the Release store after we have
        // copied the events out. Only this thread consumes: `io_getevents`
        // is never running on this context at the same time.
        let (head_a, tail_a) = unsafe {
            (AtomicU32::from_ptr(base.add(8).cast::<u32>()), AtomicU32::from_ptr(base.add(12).cast::<u32>()))
        };
        let mut head = head_a.load(Ordering::Relaxed);
        let tail = tail_a.load(Ordering::Acquire);
        if head >= nr || tail >= nr {
            return 0;
        }
        let events = base.wrapping_add(size_of::<AioRingHeader>()).cast::<IoEvent>();
        let mut n = 0;
        while head != tail && n < out.len() {
            // SAFETY: `head < nr`, and the ring mapping holds `nr` io_events
            // after the header; slots between head and tail were published
            // by the kernel before the tail we loaded (Acquire above).
            out[n] = unsafe { core::ptr::read_volatile(events.add(head as usize)) };
            n += 1;
            head = if head + 1 == nr { 0 } else { head + 1 };
        }
        if n > 0 {
            head_a.store(head, Ordering::Release);
        }
        n
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: io_destroy takes the context id only; afterwards the ring
        // mapping is gone, and nothing reads it again (we are being dropped).
        // It cancels every request and waits for them, so the iocb table
        // (owned elsewhere, possibly dropped next) is no longer referenced.
        let _ = check(unsafe { sc::syscall1(k::__NR_io_destroy as usize, self.id) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fd::{pipe, write};
    use core::mem::offset_of;

    #[test]
    fn abi_layouts_match_the_kernel() {
        assert_eq!(size_of::<Iocb>(), 64);
        assert_eq!(offset_of!(Iocb, aio_data), 0);
        assert_eq!(offset_of!(Iocb, aio_key), 8);
        assert_eq!(offset_of!(Iocb, aio_rw_flags), 12);
        assert_eq!(offset_of!(Iocb, aio_lio_opcode), 16);
        assert_eq!(offset_of!(Iocb, aio_reqprio), 18);
        assert_eq!(offset_of!(Iocb, aio_fildes), 20);
        assert_eq!(offset_of!(Iocb, aio_buf), 24);
        assert_eq!(offset_of!(Iocb, aio_nbytes), 32);
        assert_eq!(offset_of!(Iocb, aio_offset), 40);
        assert_eq!(offset_of!(Iocb, aio_reserved2), 48);
        assert_eq!(offset_of!(Iocb, aio_flags), 56);
        assert_eq!(offset_of!(Iocb, aio_resfd), 60);
        assert_eq!(size_of::<IoEvent>(), 32);
        assert_eq!(offset_of!(IoEvent, res), 16);
        assert_eq!(size_of::<AioRingHeader>(), 32);
        assert_eq!(offset_of!(AioRingHeader, head), 8);
        assert_eq!(offset_of!(AioRingHeader, tail), 12);
        assert_eq!(offset_of!(AioRingHeader, magic), 16);
        assert_eq!(offset_of!(AioRingHeader, header_length), 28);
    }

    /// The kernel here has AIO, or refuses it with ENOSYS (qemu-user).
    fn context(n: u32) -> Option<Context> {
        match Context::setup(n) {
            Ok(c) => Some(c),
            Err(Errno::ENOSYS) => None,
            Err(e) => panic!("io_setup: {e}"),
        }
    }

    #[test]
    fn poll_completes_through_the_ring_and_through_getevents() {
        let Some(mut ctx) = context(8) else { return };
        assert!(ctx.reads_ring(), "{:?}", ctx.header());
        let h = ctx.header();
        assert_eq!((h.magic, h.incompat_features, h.header_length), (AIO_RING_MAGIC, 0, 32));
        let mut t = Iocbs::new(2).unwrap();
        let (r, w) = pipe().unwrap();
        t.set_poll(1, r.as_raw_fd(), k::POLLIN, 0xabcd_0000_0001, None);
        assert_eq!(ctx.submit(&mut t, &[1]), Ok(1));
        let mut out = [IoEvent::default(); 4];
        assert_eq!(ctx.read_ring(&mut out), 0);
        write(w.as_raw_fd(), b"x").unwrap();
        let h = ctx.header();
        assert_eq!((h.tail + h.nr - h.head) % h.nr, 1, "one completion published");
        assert_eq!(ctx.read_ring(&mut out), 1);
        assert_eq!(out[0].data, 0xabcd_0000_0001);
        assert_eq!(out[0].obj, t.addr_of(1));
        assert_eq!(out[0].res as u32 & k::POLLIN, k::POLLIN);
        // Ready at submit time: completed inline, already in the ring.
        assert_eq!(ctx.submit(&mut t, &[1]), Ok(1));
        ctx.disable_ring();
        assert_eq!(ctx.read_ring(&mut out), 0);
        assert_eq!(ctx.getevents(1, &mut out, Some(0)), Ok(1));
        assert_eq!(ctx.getevents(0, &mut out, Some(0)), Ok(0));
    }

    #[test]
    fn cancel_finds_a_pending_poll_by_its_iocb_address() {
        let Some(ctx) = context(8) else { return };
        let mut t = Iocbs::new(1).unwrap();
        let (r, _w) = pipe().unwrap();
        t.set_poll(0, r.as_raw_fd(), k::POLLIN, 7, None);
        assert_eq!(ctx.submit(&mut t, &[0]), Ok(1));
        assert_eq!(ctx.cancel(&t, 0), Ok(true));
        let mut out = [IoEvent::default(); 2];
        // The cancelled poll still posts its completion, with an empty mask.
        assert_eq!(ctx.getevents(1, &mut out, Some(1_000_000_000)), Ok(1));
        assert_eq!((out[0].data, out[0].res), (7, 0));
        assert_eq!(ctx.cancel(&t, 0), Ok(false));
    }

    #[test]
    fn submit_errors_are_per_iocb() {
        let Some(ctx) = context(8) else { return };
        let mut t = Iocbs::new(3).unwrap();
        let (r, _w) = pipe().unwrap();
        t.set_poll(0, r.as_raw_fd(), k::POLLIN, 1, None);
        t.set_poll(1, -1, k::POLLIN, 2, None);
        t.set_poll(2, r.as_raw_fd(), k::POLLIN, 3, None);
        assert_eq!(ctx.submit(&mut t, &[0, 1, 2]), Ok(1));
        assert_eq!(ctx.submit(&mut t, &[1, 2]), Err(Errno::EBADF));
        assert_eq!(ctx.submit(&mut t, &[2]), Ok(1));
    }
}
