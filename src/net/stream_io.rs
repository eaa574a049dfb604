//! The kernel I/O of a stream, one step at a time: read (within the
//! pass's quantum), flush (send, or sendmsg/writev when the write buffer
//! wraps), and the endings. Each step returns what to deliver; the loop
//! side (`stream_loop.rs`) runs the callback after the companion's borrow
//! has ended.

use super::pool::{Kind, NONE};
use super::stream::{Slot, StreamEvent, StreamFn, StreamId, Streams, flag};
use crate::LoopTypes;
use crate::WatchId;
use crate::sys::{self, Errno, OwnedFd, Shutdown};

/// What a step came to.
pub(crate) enum Next<L: LoopTypes> {
    /// Run this callback; the stream goes on.
    Call(StreamFn<L>, StreamEvent),
    /// The stream is over (its slot is free already): remove the watcher,
    /// close the fd, then run the callback.
    End(StreamFn<L>, StreamEvent, Option<WatchId>, OwnedFd),
    /// The read quantum is spent: continue next pass (queued already).
    Yield,
    /// Nothing more to do until the kernel reports again.
    Idle,
}

impl<L: LoopTypes, const S: usize, const BUF: usize> Streams<L, S, BUF> {
    fn event(s: &Slot<L>, id: StreamId) -> StreamEvent {
        StreamEvent { id, data: s.data, eof: false, errno: None }
    }

    /// Gives back a read buffer that holds nothing.
    fn release_empty_read(&mut self, slot: usize) {
        let s = &mut self.slots[slot];
        if s.rbuf != NONE && s.r_start == s.r_end {
            self.pool.give(Kind::Read, s.rbuf);
            s.rbuf = NONE;
            s.r_start = 0;
            s.r_end = 0;
        }
    }

    /// Reads once if the stream may and can, and says what to deliver.
    pub(crate) fn read_step(&mut self, id: StreamId) -> Next<L> {
        let (pass, quantum) = (self.pass, self.options.quantum);
        if self.slot(id).is_none() {
            return Next::Idle;
        }
        let i = id.slot as usize;
        let s = &mut self.slots[i];
        if s.has(flag::CLOSING) {
            // Nothing more is read; the flush closes it.
            self.queue_flush(id.slot);
            return Next::Idle;
        }
        if s.has(flag::PEER_EOF) {
            if s.has(flag::SHUT_DONE) && s.w_len == 0 {
                return self.end(id, None);
            }
            // Both sides are done once what is buffered is sent.
            s.flags |= flag::CLOSING;
            self.queue_flush(id.slot);
            return Next::Idle;
        }
        if !s.has(flag::READABLE) || s.has(flag::THROTTLED) {
            self.release_empty_read(i);
            return Next::Idle;
        }
        if s.pass != pass {
            s.pass = pass;
            s.read_this_pass = 0;
        }
        if s.read_this_pass >= quantum {
            self.stats.yields += 1;
            self.release_empty_read(i);
            self.queue_run(id.slot);
            return Next::Yield;
        }
        if s.rbuf == NONE {
            s.rbuf = self.pool.take(Kind::Read);
        }
        let s = &mut self.slots[i];
        if s.r_end as usize == BUF {
            if s.r_start == 0 {
                // Full, and the protocol has not consumed: wait for `consume`.
                return Next::Idle;
            }
            let (start, end) = (s.r_start as usize, s.r_end as usize);
            self.pool.get_mut(Kind::Read, s.rbuf).copy_within(start..end, 0);
            s.r_end -= s.r_start;
            s.r_start = 0;
        }
        let (rbuf, end) = (s.rbuf, s.r_end as usize);
        let fd = s.fd.as_ref().map_or(-1, OwnedFd::as_raw_fd);
        let room = BUF - end;
        let got = sys::read(fd, &mut self.pool.get_mut(Kind::Read, rbuf)[end..]);
        self.stats.reads += 1;
        let s = &mut self.slots[i];
        match got {
            Ok(0) => {
                s.flags = (s.flags | flag::PEER_EOF) & !flag::READABLE;
                let mut ev = Self::event(s, id);
                ev.eof = true;
                Next::Call(s.handlers.map_or(ev_ignore::<L> as StreamFn<L>, |h| h.data), ev)
            }
            Ok(n) => {
                s.r_end += n as u32;
                s.read_this_pass = s.read_this_pass.saturating_add(n as u32);
                self.stats.read_bytes += n as u64;
                if n < room && !s.has(flag::HUP) {
                    // A short read emptied the socket: a later arrival is a
                    // new edge (and level mode reports again anyway), so the
                    // read that would say EAGAIN is saved. Not after a
                    // hang-up: its end of file came with the same edge.
                    s.flags &= !flag::READABLE;
                }
                Next::Call(s.handlers.map_or(ev_ignore::<L> as StreamFn<L>, |h| h.data), Self::event(s, id))
            }
            Err(Errno::EAGAIN) => {
                s.flags &= !flag::READABLE;
                self.stats.would_block += 1;
                self.release_empty_read(i);
                Next::Idle
            }
            Err(e) => self.end(id, Some(e)),
        }
    }

    /// Sends what the write buffer holds, as far as the kernel takes it,
    /// and carries out what is owed once it is empty (drained, half-close,
    /// close).
    pub(crate) fn flush_step(&mut self, id: StreamId) -> Next<L> {
        let low = self.options.low;
        if self.slot(id).is_none() {
            return Next::Idle;
        }
        let i = id.slot as usize;
        // One call sends everything or fills the socket (a short write);
        // only learning that the fd is not a socket asks for a second.
        loop {
            let s = &self.slots[i];
            if s.w_len == 0 || !s.has(flag::WRITABLE) {
                break;
            }
            let (head, len) = (s.w_head as usize, s.w_len as usize);
            let fd = s.fd.as_ref().map_or(-1, OwnedFd::as_raw_fd);
            let buf = self.pool.get(Kind::Write, s.wbuf);
            let first_end = (head + len).min(BUF);
            let a = &buf[head..first_end];
            let b = &buf[..len - (first_end - head)];
            let sent = if s.has(flag::NOT_SOCKET) {
                sys::writev(fd, &[a, b])
            } else if b.is_empty() {
                sys::send(fd, a)
            } else {
                // The buffer wraps: both pieces in one call.
                sys::send_vectored(fd, &[a, b])
            };
            self.stats.writes += 1;
            let s = &mut self.slots[i];
            match sent {
                Ok(n) => {
                    self.stats.write_bytes += n as u64;
                    s.w_head = ((head + n) % BUF) as u32;
                    s.w_len -= n as u32;
                    if n < len {
                        s.flags &= !flag::WRITABLE;
                        self.stats.write_full += 1;
                    }
                }
                Err(Errno::EAGAIN) => {
                    self.stats.would_block += 1;
                    self.stats.write_full += 1;
                    s.flags &= !flag::WRITABLE;
                }
                Err(Errno::ENOTSOCK) if !s.has(flag::NOT_SOCKET) => {
                    s.flags |= flag::NOT_SOCKET;
                    continue;
                }
                Err(e) => return self.end(id, Some(e)),
            }
            break;
        }
        let s = &mut self.slots[i];
        if s.w_len == 0 && s.wbuf != NONE {
            self.pool.give(Kind::Write, s.wbuf);
            s.wbuf = NONE;
            s.w_head = 0;
        }
        if s.has(flag::THROTTLED) && s.w_len <= low {
            s.flags &= !flag::THROTTLED;
            let ev = Self::event(s, id);
            let callback = s.handlers.map_or(ev_ignore::<L> as StreamFn<L>, |h| h.drained);
            if s.has(flag::READABLE) {
                self.queue_run(id.slot);
            }
            return Next::Call(callback, ev);
        }
        if s.w_len > 0 {
            return Next::Idle;
        }
        let fd = s.fd.as_ref().map_or(-1, OwnedFd::as_raw_fd);
        if s.has(flag::CLOSING) {
            // Orderly end: FIN first, then drop what the peer still sends,
            // so closing with unread input does not turn into a reset that
            // could destroy our last bytes at the peer.
            let _ = sys::shutdown(fd, Shutdown::Write);
            let mut scratch = [0u8; 512];
            for _ in 0..8 {
                match sys::read(fd, &mut scratch) {
                    Ok(n) if n > 0 => continue,
                    _ => break,
                }
            }
            return self.end(id, None);
        }
        if s.has(flag::SHUT_WR) && !s.has(flag::SHUT_DONE) {
            s.flags |= flag::SHUT_DONE;
            if let Err(e) = sys::shutdown(fd, Shutdown::Write) {
                return self.end(id, Some(e));
            }
            if s.has(flag::PEER_EOF) {
                return self.end(id, None);
            }
        }
        Next::Idle
    }

    /// Frees the stream's slot and buffers and says what to deliver:
    /// `closed` (no errno) or `error`.
    pub(crate) fn end(&mut self, id: StreamId, errno: Option<Errno>) -> Next<L> {
        let i = id.slot as usize;
        let s = &mut self.slots[i];
        let Some(fd) = s.fd.take() else { return Next::Idle };
        let ev = StreamEvent { id, data: s.data, eof: s.has(flag::PEER_EOF), errno };
        let handlers = s.handlers.take();
        let callback = match (handlers, errno) {
            (Some(h), None) => h.closed,
            (Some(h), Some(_)) => h.error,
            (None, _) => ev_ignore::<L>,
        };
        let watch = s.watch.take();
        let (rbuf, wbuf) = (s.rbuf, s.wbuf);
        s.rbuf = NONE;
        s.wbuf = NONE;
        s.flags = 0;
        s.interest = 0;
        (s.r_start, s.r_end, s.w_head, s.w_len) = (0, 0, 0, 0);
        self.pool.give(Kind::Read, rbuf);
        self.pool.give(Kind::Write, wbuf);
        let _ = self.free.push(id.slot);
        Next::End(callback, ev, watch, fd)
    }
}

fn ev_ignore<L: LoopTypes>(_: &mut L, _: &mut L::Context, _: StreamEvent) {}
