//! Streams: buffered I/O with backpressure for established connections
//! (or any non-blocking stream fd: pipes, ttys).
//!
//! The companion's state and the calls a protocol makes (read what came,
//! consume it, write, close). The I/O itself is in `stream_io.rs`, the
//! loop plumbing (watchers, the prepare callback, the continue timer) in
//! `stream_loop.rs`. Nothing here allocates or reaches into the loop.

use super::pool::{BufIndex, Kind, NONE, Pool};
use crate::error::Error;
use crate::sys::{Errno, OwnedFd, RawFd};
use crate::{LoopTypes, PrepareId, TimerId, Trigger, WatchId};
use heapless::{Deque, Vec};

/// Names one stream of a [`Streams`]. Goes stale when the stream ends; a
/// stale id never reaches a later stream in the same slot.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct StreamId {
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}

impl StreamId {
    pub(crate) fn key(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.slot)
    }
    pub(crate) fn from_key(key: u64) -> StreamId {
        StreamId { slot: key as u32, generation: (key >> 32) as u32 }
    }
}

/// What a stream callback is told.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct StreamEvent {
    pub(crate) id: StreamId,
    pub(crate) data: u64,
    pub(crate) eof: bool,
    pub(crate) errno: Option<Errno>,
}

impl StreamEvent {
    /// The stream.
    pub fn id(&self) -> StreamId {
        self.id
    }
    /// Its user data.
    pub fn data(&self) -> u64 {
        self.data
    }
    /// In a data callback: the peer has finished sending (end of file);
    /// what is in the read buffer is all there will be. The stream closes
    /// once its write buffer is flushed.
    pub fn is_eof(&self) -> bool {
        self.eof
    }
    /// In an error callback: why the stream ended (`ECONNRESET`, `EPIPE`,
    /// `ETIMEDOUT`...).
    pub fn errno(&self) -> Option<Errno> {
        self.errno
    }
}

/// A stream callback.
pub type StreamFn<L> = fn(&mut L, &mut <L as LoopTypes>::Context, StreamEvent);

fn ignore<L: LoopTypes>(_: &mut L, _: &mut L::Context, _: StreamEvent) {}

/// A protocol's callbacks. Every stream ends with exactly one `closed` or
/// one `error` (not after [`Streams::abort`], which the program asked for).
///
/// ```
/// use linux_event::Loop;
/// use linux_event::net::{StreamEvent, StreamHandlers};
/// type L = Loop<(), 16, 16>;
/// fn on_data(_: &mut L, _: &mut (), _: StreamEvent) {}
/// fn on_closed(_: &mut L, _: &mut (), _: StreamEvent) {}
/// const ECHO: StreamHandlers<L> = StreamHandlers::new(on_data).closed(on_closed);
/// # let _ = &ECHO;
/// ```
pub struct StreamHandlers<L: LoopTypes> {
    pub(crate) data: StreamFn<L>,
    pub(crate) drained: StreamFn<L>,
    pub(crate) closed: StreamFn<L>,
    pub(crate) error: StreamFn<L>,
}

// Manual impls: derive would demand `L: Copy`.
impl<L: LoopTypes> Clone for StreamHandlers<L> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<L: LoopTypes> Copy for StreamHandlers<L> {}

impl<L: LoopTypes> StreamHandlers<L> {
    /// `data` runs when bytes arrived (or end of file); the others do nothing
    /// until set.
    pub const fn new(data: StreamFn<L>) -> Self {
        StreamHandlers { data, drained: ignore::<L>, closed: ignore::<L>, error: ignore::<L> }
    }
    /// Runs when the write buffer, after reaching high water, drained to low
    /// water (reading from the peer has resumed; write more).
    pub const fn drained(mut self, f: StreamFn<L>) -> Self {
        self.drained = f;
        self
    }
    /// Runs when the stream ended in order (end of file from the peer, or
    /// [`Streams::close`], after flushing) and its fd is closed.
    pub const fn closed(mut self, f: StreamFn<L>) -> Self {
        self.closed = f;
        self
    }
    /// Runs when the stream ended on an error (`ECONNRESET` for a reset,
    /// `EPIPE`...) and its fd is closed; unsent bytes are discarded.
    pub const fn error(mut self, f: StreamFn<L>) -> Self {
        self.error = f;
        self
    }
}

/// How the streams of a [`Streams`] behave.
///
/// ```
/// use linux_event::net::StreamOptions;
/// let opts = StreamOptions::new().watermarks(48 * 1024, 16 * 1024).read_quantum(32 * 1024);
/// # let _ = opts;
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct StreamOptions {
    pub(crate) high: u32,
    pub(crate) low: u32,
    pub(crate) quantum: u32,
    pub(crate) trigger: Trigger,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamOptions {
    /// Edge-triggered; high water three quarters of the write buffer, low
    /// water a quarter; 64 KiB read per stream per pass.
    pub const fn new() -> Self {
        StreamOptions { high: u32::MAX, low: u32::MAX, quantum: 64 * 1024, trigger: Trigger::Edge }
    }
    /// Above `high` bytes waiting in the write buffer the stream stops
    /// reading from its peer; at `low` or below it reads again and calls
    /// `drained`. Clamped to the buffer size, `low` to at most `high`.
    pub const fn watermarks(mut self, high: u32, low: u32) -> Self {
        self.high = high;
        self.low = if low > high { high } else { low };
        self
    }
    /// Bytes each stream may read per pass (at least one read); the rest
    /// waits for the next pass, which then does not block.
    pub const fn read_quantum(mut self, bytes: u32) -> Self {
        self.quantum = if bytes == 0 { 1 } else { bytes };
        self
    }
    /// Edge (default: no `epoll_ctl` after the first) or level-triggered
    /// watchers (interest changed as buffers fill and drain).
    pub const fn trigger(mut self, trigger: Trigger) -> Self {
        self.trigger = trigger;
        self
    }
}

/// Counters of a [`Streams`], for tests and tuning.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Streams adopted.
    pub adopted: u64,
    /// `read` calls and bytes they returned.
    pub reads: u64,
    /// Bytes read.
    pub read_bytes: u64,
    /// `send`/`sendmsg`/`writev` calls.
    pub writes: u64,
    /// Bytes written.
    pub write_bytes: u64,
    /// Reads and writes that found nothing to do (`EAGAIN`).
    pub would_block: u64,
    /// Flushes the kernel did not take whole (socket full: a short write
    /// or `EAGAIN`); the rest goes when it says writable again.
    pub write_full: u64,
    /// Times a stream spent its read quantum and continued next pass.
    pub yields: u64,
    /// Times a stream went above high water and stopped reading.
    pub throttles: u64,
    /// Interest changes asked of the loop (level-triggered mode only).
    pub interest_changes: u64,
}

pub(crate) mod flag {
    /// The kernel said readable; cleared at `EAGAIN` or a short read.
    pub const READABLE: u16 = 1;
    /// The kernel said writable; cleared at `EAGAIN` or a short write.
    pub const WRITABLE: u16 = 2;
    /// The peer finished sending.
    pub const PEER_EOF: u16 = 4;
    /// Close once the write buffer is flushed.
    pub const CLOSING: u16 = 8;
    /// Shut the write side once flushed.
    pub const SHUT_WR: u16 = 16;
    /// ... done.
    pub const SHUT_DONE: u16 = 32;
    /// Above high water: not reading.
    pub const THROTTLED: u16 = 64;
    /// Not a socket: write with writev (no MSG_NOSIGNAL).
    pub const NOT_SOCKET: u16 = 128;
    /// The kernel reported a hang-up or error: the end is in the queue, so
    /// a short read does not mean "empty" any more.
    pub const HUP: u16 = 256;
}

/// Membership of the two work queues; kept across a slot's reuse, so a
/// slot is never queued twice.
pub(crate) mod queued {
    pub const FLUSH: u8 = 1;
    pub const RUN: u8 = 2;
}

pub(crate) struct Slot<L: LoopTypes> {
    pub(crate) fd: Option<OwnedFd>,
    pub(crate) generation: u32,
    pub(crate) watch: Option<WatchId>,
    pub(crate) data: u64,
    pub(crate) handlers: Option<StreamHandlers<L>>,
    pub(crate) rbuf: BufIndex,
    pub(crate) r_start: u32,
    pub(crate) r_end: u32,
    pub(crate) wbuf: BufIndex,
    pub(crate) w_head: u32,
    pub(crate) w_len: u32,
    pub(crate) flags: u16,
    pub(crate) queued: u8,
    /// Level mode: the interest the loop was last given (READ = 1, WRITE = 2).
    pub(crate) interest: u8,
    pub(crate) pass: u32,
    pub(crate) read_this_pass: u32,
}

impl<L: LoopTypes> Slot<L> {
    const EMPTY: Self = Slot {
        fd: None,
        generation: 0,
        watch: None,
        data: 0,
        handlers: None,
        rbuf: NONE,
        r_start: 0,
        r_end: 0,
        wbuf: NONE,
        w_head: 0,
        w_len: 0,
        flags: 0,
        queued: 0,
        interest: 0,
        pass: 0,
        read_this_pass: 0,
    };

    pub(crate) fn has(&self, f: u16) -> bool {
        self.flags & f != 0
    }
}

/// Appends to a stream's write buffer inside [`Streams::respond`].
pub struct Writer<'a> {
    buf: &'a mut [u8],
    head: usize,
    len: usize,
}

impl Writer<'_> {
    /// Copies as much of `bytes` as fits and returns how much that was.
    pub fn write(&mut self, bytes: &[u8]) -> usize {
        let cap = self.buf.len();
        let n = bytes.len().min(cap - self.len);
        if n == 0 {
            return 0;
        }
        let tail = (self.head + self.len) % cap;
        let first = n.min(cap - tail);
        self.buf[tail..tail + first].copy_from_slice(&bytes[..first]);
        self.buf[..n - first].copy_from_slice(&bytes[first..n]);
        self.len += n;
        n
    }

    /// Bytes that still fit.
    pub fn room(&self) -> usize {
        self.buf.len() - self.len
    }
}

/// Up to `S` streams, each with a read buffer and a write buffer of `BUF`
/// bytes taken from a pool the companion owns, plugged into a loop of
/// type `L`.
///
/// A companion: the program owns it (usually in its context `C`, which
/// implements `AsMut<Streams<L, S, BUF>>`). [`attach`](Self::attach)
/// (or the first [`adopt`](Self::adopt)) registers one `prepare` callback,
/// which flushes every stream with pending writes once per pass, before
/// the loop sleeps; each stream is one watcher (edge-triggered by
/// default). A stream that spent its read quantum continues in the next
/// pass through a zero-delay timer, so the loop does not block meanwhile.
///
/// Memory per stream is bounded whatever the peer does: the buffers are
/// fixed, and above high water a stream stops reading. The pool is one
/// anonymous mapping of `2 * S * BUF` bytes; a stream holds a buffer
/// only while it has bytes in it (an idle connection holds none), and
/// buffers are reused last-in first-out, so untouched pages are never
/// paged in.
///
/// Drop the loop before the companion, or [`detach`](Self::detach) it
/// first: the loop's watchers name the companion's streams.
///
/// ```
/// use linux_event::Loop;
/// use linux_event::net::{StreamEvent, StreamHandlers, Streams};
///
/// type L = Loop<App, 16, 16>;
/// struct App { streams: Streams<L, 8, 4096>, got: Vec<u8> }
/// impl AsMut<Streams<L, 8, 4096>> for App {
///     fn as_mut(&mut self) -> &mut Streams<L, 8, 4096> { &mut self.streams }
/// }
/// fn on_data(lp: &mut L, app: &mut App, ev: StreamEvent) {
///     let bytes = app.streams.read_buf(ev.id());
///     app.got.extend_from_slice(bytes);
///     let n = bytes.len();
///     app.streams.consume(ev.id(), n);
///     if ev.is_eof() { lp.stop(); }
/// }
/// const HANDLERS: StreamHandlers<L> = StreamHandlers::new(on_data);
///
/// // Two streams on the two ends of a socketpair: one sends and
/// // half-closes, the other collects until end of file.
/// let (a, b) = linux_event::sys::socket_pair()?;
/// let mut lp: L = Loop::new()?;
/// let mut app = App { streams: Streams::new()?, got: Vec::new() };
/// let sender = app.streams.adopt(&mut lp, a, 0, &HANDLERS)?;
/// app.streams.adopt(&mut lp, b, 1, &HANDLERS)?;
/// app.streams.write(sender, b"ping")?;
/// app.streams.shutdown_write(sender)?;
/// lp.run(&mut app)?;
/// assert_eq!(app.got, b"ping");
/// # Ok::<(), linux_event::Error>(())
/// ```
pub struct Streams<L: LoopTypes, const S: usize, const BUF: usize> {
    pub(crate) slots: [Slot<L>; S],
    pub(crate) free: Vec<u32, S>,
    pub(crate) pool: Pool<S, BUF>,
    pub(crate) flush_queue: Deque<u32, S>,
    pub(crate) run_queue: Deque<u32, S>,
    pub(crate) options: StreamOptions,
    pub(crate) prepare: Option<PrepareId>,
    pub(crate) kick: Option<TimerId>,
    pub(crate) pass: u32,
    pub(crate) stats: StreamStats,
}

impl<L: LoopTypes, const S: usize, const BUF: usize> Streams<L, S, BUF> {
    /// Room for `S` streams with default options. `Os(ENOMEM)` if the
    /// pool cannot be mapped.
    pub fn new() -> Result<Self, Error> {
        Self::with_options(StreamOptions::new())
    }

    /// Room for `S` streams that behave as `options` say.
    pub fn with_options(options: StreamOptions) -> Result<Self, Error> {
        let mut options = options;
        let cap = BUF.min(u32::MAX as usize) as u32;
        if options.high == u32::MAX {
            options.high = (cap / 4 * 3).max(1);
            options.low = cap / 4;
        }
        options.high = options.high.clamp(1, cap);
        options.low = options.low.min(options.high.saturating_sub(1));
        let mut free = Vec::new();
        for i in (0..S as u32).rev() {
            let _ = free.push(i);
        }
        Ok(Streams {
            slots: [const { Slot::EMPTY }; S],
            free,
            pool: Pool::new()?,
            flush_queue: Deque::new(),
            run_queue: Deque::new(),
            options,
            prepare: None,
            kick: None,
            pass: 0,
            stats: StreamStats::default(),
        })
    }

    pub(crate) fn slot(&self, id: StreamId) -> Option<&Slot<L>> {
        let s = self.slots.get(id.slot as usize)?;
        (s.generation == id.generation && s.fd.is_some()).then_some(s)
    }

    pub(crate) fn slot_mut(&mut self, id: StreamId) -> Option<&mut Slot<L>> {
        let s = self.slots.get_mut(id.slot as usize)?;
        (s.generation == id.generation && s.fd.is_some()).then_some(s)
    }

    /// Whether the stream is open.
    pub fn is_open(&self, id: StreamId) -> bool {
        self.slot(id).is_some()
    }

    /// Open streams.
    pub fn len(&self) -> usize {
        S - self.free.len()
    }

    /// Whether no stream is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The options in force.
    pub fn options(&self) -> StreamOptions {
        self.options
    }

    /// The counters.
    pub fn stats(&self) -> StreamStats {
        self.stats
    }

    /// Pool buffers held right now: (read, write).
    pub fn buffers_in_use(&self) -> (usize, usize) {
        self.pool.in_use()
    }

    /// The stream's fd (for socket options; do not read or write it).
    pub fn fd(&self, id: StreamId) -> Option<RawFd> {
        self.slot(id).and_then(|s| s.fd.as_ref()).map(OwnedFd::as_raw_fd)
    }

    /// The stream's user data.
    pub fn data(&self, id: StreamId) -> Option<u64> {
        self.slot(id).map(|s| s.data)
    }

    /// Replaces the stream's user data (`NotFound` for a stale id).
    pub fn set_data(&mut self, id: StreamId, data: u64) -> Result<(), Error> {
        self.slot_mut(id).map(|s| s.data = data).ok_or(Error::NotFound)
    }

    /// The bytes read and not consumed yet (empty for a stale id).
    pub fn read_buf(&self, id: StreamId) -> &[u8] {
        match self.slot(id) {
            Some(s) => &self.pool.get(Kind::Read, s.rbuf)[s.r_start as usize..s.r_end as usize],
            None => &[],
        }
    }

    /// Marks the first `n` bytes of [`read_buf`](Self::read_buf) as used
    /// (more than there are: all of them). A stream whose read buffer is
    /// full reads nothing more until something is consumed.
    pub fn consume(&mut self, id: StreamId, n: usize) {
        let Some(s) = self.slot_mut(id) else { return };
        let was_full = s.rbuf != NONE && (s.r_end - s.r_start) as usize == BUF;
        let n = n.min((s.r_end - s.r_start) as usize) as u32;
        s.r_start += n;
        if s.r_start == s.r_end {
            s.r_start = 0;
            s.r_end = 0;
        }
        if was_full && n > 0 && s.has(flag::READABLE) {
            self.queue_run(id.slot);
        }
    }

    /// Bytes waiting in the write buffer.
    pub fn buffered(&self, id: StreamId) -> usize {
        self.slot(id).map_or(0, |s| s.w_len as usize)
    }

    /// Bytes [`write`](Self::write) would take now.
    pub fn write_room(&self, id: StreamId) -> usize {
        self.slot(id).filter(|s| !s.has(flag::CLOSING | flag::SHUT_WR)).map_or(0, |s| BUF - s.w_len as usize)
    }

    /// Whether the stream is above high water (not reading; wait for
    /// `drained` before writing more).
    pub fn is_throttled(&self, id: StreamId) -> bool {
        self.slot(id).is_some_and(|s| s.has(flag::THROTTLED))
    }

    /// Copies as much of `bytes` as fits into the write buffer and returns
    /// how much that was (0 when it is full: wait for `drained`). The bytes
    /// are sent before the loop next sleeps. Reaching high water stops
    /// reading from the peer until the buffer drains to low water.
    ///
    /// Errors: `NotFound` for a stale id; `Os(EPIPE)` after `close` or
    /// `shutdown_write`.
    pub fn write(&mut self, id: StreamId, bytes: &[u8]) -> Result<usize, Error> {
        let high = self.options.high;
        let Some(s) = self.slots.get_mut(id.slot as usize).filter(|s| s.generation == id.generation && s.fd.is_some())
        else {
            return Err(Error::NotFound);
        };
        if s.has(flag::CLOSING | flag::SHUT_WR) {
            return Err(Error::Os(Errno::EPIPE));
        }
        let n = bytes.len().min(BUF - s.w_len as usize);
        if n == 0 {
            return Ok(0);
        }
        if s.wbuf == NONE {
            s.wbuf = self.pool.take(Kind::Write);
            s.w_head = 0;
        }
        let (head, len) = (s.w_head as usize, s.w_len as usize);
        let buf = self.pool.get_mut(Kind::Write, s.wbuf);
        let tail = (head + len) % BUF;
        let first = n.min(BUF - tail);
        buf[tail..tail + first].copy_from_slice(&bytes[..first]);
        buf[..n - first].copy_from_slice(&bytes[first..n]);
        s.w_len += n as u32;
        if s.w_len >= high && !s.has(flag::THROTTLED) {
            s.flags |= flag::THROTTLED;
            self.stats.throttles += 1;
        }
        self.queue_flush(id.slot);
        Ok(n)
    }

    /// Lets `f` answer what came in one go: it gets the unconsumed input
    /// and a [`Writer`] into the write buffer, and returns how many input
    /// bytes it used (consumed afterwards). What an echo or a
    /// request-response protocol does, without copying the input first.
    ///
    /// Errors: `NotFound` for a stale id; `Os(EPIPE)` after `close` or
    /// `shutdown_write` (`f` does not run).
    pub fn respond<F: FnOnce(&[u8], &mut Writer<'_>) -> usize>(&mut self, id: StreamId, f: F) -> Result<usize, Error> {
        let high = self.options.high;
        let i = id.slot as usize;
        match self.slot(id) {
            None => return Err(Error::NotFound),
            Some(s) if s.has(flag::CLOSING | flag::SHUT_WR) => return Err(Error::Os(Errno::EPIPE)),
            Some(_) => {}
        }
        let s = &mut self.slots[i];
        if s.wbuf == NONE {
            s.wbuf = self.pool.take(Kind::Write);
            s.w_head = 0;
        }
        let (rbuf, wbuf) = (s.rbuf, s.wbuf);
        let (start, end) = (s.r_start as usize, s.r_end as usize);
        let (input, out) = self.pool.read_and_write(rbuf, wbuf);
        let mut w = Writer { buf: out, head: s.w_head as usize, len: s.w_len as usize };
        let used = f(&input[start.min(input.len())..end.min(input.len())], &mut w);
        s.w_len = w.len as u32;
        if s.w_len == 0 {
            self.pool.give(Kind::Write, s.wbuf);
            s.wbuf = NONE;
            s.w_head = 0;
        } else {
            if s.w_len >= high && !s.has(flag::THROTTLED) {
                s.flags |= flag::THROTTLED;
                self.stats.throttles += 1;
            }
            self.queue_flush(id.slot);
        }
        self.consume(id, used);
        Ok(used.min(end - start))
    }

    /// Closes the stream once its write buffer is flushed (nothing more
    /// is read or delivered); `closed` runs then. `NotFound` for a stale id.
    pub fn close(&mut self, id: StreamId) -> Result<(), Error> {
        let s = self.slot_mut(id).ok_or(Error::NotFound)?;
        s.flags |= flag::CLOSING;
        self.queue_flush(id.slot);
        Ok(())
    }

    /// Half-close: once the write buffer is flushed, shuts the write side
    /// (the peer reads end of file) and keeps reading until the peer ends
    /// too. `NotFound` for a stale id.
    pub fn shutdown_write(&mut self, id: StreamId) -> Result<(), Error> {
        let s = self.slot_mut(id).ok_or(Error::NotFound)?;
        s.flags |= flag::SHUT_WR;
        self.queue_flush(id.slot);
        Ok(())
    }

    pub(crate) fn queue_flush(&mut self, slot: u32) {
        let s = &mut self.slots[slot as usize];
        if s.queued & queued::FLUSH == 0 && self.flush_queue.push_back(slot).is_ok() {
            s.queued |= queued::FLUSH;
        }
    }

    pub(crate) fn queue_run(&mut self, slot: u32) {
        let s = &mut self.slots[slot as usize];
        if s.queued & queued::RUN == 0 && self.run_queue.push_back(slot).is_ok() {
            s.queued |= queued::RUN;
        }
    }

    /// The id of the stream in `slot` now (for queue entries).
    pub(crate) fn id_at(&self, slot: u32) -> Option<StreamId> {
        let s = self.slots.get(slot as usize)?;
        s.fd.is_some().then_some(StreamId { slot, generation: s.generation })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type L = crate::Loop<(), 16, 16>;

    #[test]
    fn per_stream_state_is_small() {
        // What every stream costs besides the buffers it holds while busy
        // (README: memory per idle connection).
        let per = size_of::<Slot<L>>() + size_of::<u32>() * 3; // + free list and two queues
        assert!(per <= 160, "{per} bytes per stream");
        std::println!("per-stream state: {per} bytes");
    }

    #[test]
    fn writes_wrap_around_and_watermarks_throttle() {
        let mut s: Streams<L, 2, 16> = Streams::with_options(StreamOptions::new().watermarks(12, 4)).unwrap();
        let (a, _b) = crate::sys::socket_pair().unwrap();
        // Adopted by hand (no loop): fill the slot as `adopt` would.
        let slot = s.free.pop().unwrap();
        let id = StreamId { slot, generation: 1 };
        s.slots[slot as usize].generation = 1;
        s.slots[slot as usize].fd = Some(a);
        assert_eq!(s.write(id, &[1; 10]), Ok(10));
        assert!(!s.is_throttled(id));
        assert_eq!(s.write(id, &[2; 10]), Ok(6)); // 16 bytes: full
        assert!(s.is_throttled(id));
        assert_eq!(s.write_room(id), 0);
        assert_eq!(s.buffered(id), 16);
        // Pretend 12 bytes went out: the next write wraps.
        let sl = &mut s.slots[slot as usize];
        sl.w_head = 12;
        sl.w_len = 4;
        assert_eq!(s.write(id, &[3; 8]), Ok(8));
        let buf = s.pool.get(Kind::Write, s.slots[slot as usize].wbuf);
        assert_eq!(&buf[12..16], &[2, 2, 2, 2]);
        assert_eq!(&buf[0..4], &[3, 3, 3, 3]);
        assert_eq!(s.write(StreamId { slot, generation: 2 }, b"x"), Err(Error::NotFound));
    }
}
