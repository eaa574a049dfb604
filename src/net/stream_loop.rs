//! How `Streams` plugs into a loop: one watcher per stream, one prepare
//! callback (flush every stream with pending writes, once per pass, before
//! the loop sleeps), and a zero-delay timer while some stream has read
//! its quantum and must go on next pass. Public loop API only.
//!
//! Every callback takes one step out of the companion (ending the
//! `AsMut` borrow) and then runs the user's callback with the loop and
//! the context, so a protocol may do anything there, this companion
//! included.

use super::stream::{StreamHandlers, StreamId, Streams, flag};
use super::stream_io::Next;
use crate::backend::Backend;
use crate::error::Error;
use crate::sys::OwnedFd;
use crate::{Interest, Loop, PhaseEvent, Ready, Side, TimerEvent, Trigger, WatchEvent, WatchOptions};
use core::time::Duration;

/// Interest bits kept per stream (level-triggered mode).
const READ: u8 = 1;
const WRITE: u8 = 2;

/// Flush rounds (each possibly a `drained` callback that writes more)
/// one stream gets per pass before the rest waits for the next.
const FLUSH_ROUNDS: usize = 4;

impl<C, const W: usize, const T: usize, B: Backend, const S: usize, const BUF: usize> Streams<Loop<C, W, T, B>, S, BUF>
where
    C: AsMut<Streams<Loop<C, W, T, B>, S, BUF>>,
{
    /// Plugs the companion into `lp`: registers its prepare callback (one
    /// of the loop's [`PHASE_CALLBACKS`](crate::PHASE_CALLBACKS)).
    /// Idempotent; [`adopt`](Self::adopt) calls it when needed.
    pub fn attach(&mut self, lp: &mut Loop<C, W, T, B>) -> Result<(), Error> {
        if self.prepare.is_none_or(|p| !lp.is_live(p)) {
            self.prepare = Some(lp.prepare(0, on_prepare::<C, W, T, B, S, BUF>)?);
        }
        Ok(())
    }

    /// Unplugs it: every stream is closed at once (no callbacks, unsent
    /// bytes discarded) and the prepare callback and timer are removed.
    pub fn detach(&mut self, lp: &mut Loop<C, W, T, B>) {
        for slot in 0..S as u32 {
            if let Some(id) = self.id_at(slot) {
                self.abort(lp, id);
            }
        }
        if let Some(p) = self.prepare.take() {
            lp.remove(p);
        }
        if let Some(t) = self.kick.take() {
            lp.remove(t);
        }
    }

    /// Takes over a connected, non-blocking stream fd (from
    /// [`Listeners`](super::Listeners), [`Connector`](super::Connector), a
    /// socketpair, a pipe...) and watches it; `handlers` are its protocol.
    ///
    /// Errors (the fd is closed): `Capacity` when `S` streams are open or
    /// the loop's watcher table is full; what `watch` refuses.
    pub fn adopt(
        &mut self,
        lp: &mut Loop<C, W, T, B>,
        fd: OwnedFd,
        data: u64,
        handlers: &StreamHandlers<Loop<C, W, T, B>>,
    ) -> Result<StreamId, Error> {
        self.attach(lp)?;
        let Some(&slot) = self.free.last() else { return Err(Error::Capacity) };
        let s = &self.slots[slot as usize];
        let id = StreamId { slot, generation: s.generation.wrapping_add(1) };
        let (interest, bits) = match self.options.trigger {
            Trigger::Edge => (Interest::READ | Interest::WRITE, READ | WRITE),
            _ => (Interest::READ, READ),
        };
        let options = WatchOptions::new(interest).trigger(self.options.trigger);
        let watch = lp.watch_with(fd.as_raw_fd(), options, id.key(), on_ready::<C, W, T, B, S, BUF>)?;
        self.free.pop();
        let s = &mut self.slots[slot as usize];
        s.generation = id.generation;
        s.fd = Some(fd);
        s.watch = Some(watch);
        s.data = data;
        s.handlers = Some(*handlers);
        s.flags = flag::WRITABLE;
        s.interest = bits;
        s.pass = self.pass;
        s.read_this_pass = 0;
        self.stats.adopted += 1;
        Ok(id)
    }

    /// Closes the stream now: unsent bytes are discarded and no callback
    /// runs. Returns whether it was open.
    pub fn abort(&mut self, lp: &mut Loop<C, W, T, B>, id: StreamId) -> bool {
        if self.slot(id).is_none() {
            return false;
        }
        if let Next::End(_, _, watch, fd) = self.end(id, None) {
            if let Some(w) = watch {
                lp.remove(w);
            }
            drop(fd);
        }
        true
    }
}

/// Runs what a step asked for; whether to take another step.
fn deliver<C, const W: usize, const T: usize, B: Backend>(
    lp: &mut Loop<C, W, T, B>,
    ctx: &mut C,
    next: Next<Loop<C, W, T, B>>,
) -> bool {
    match next {
        Next::Call(callback, event) => {
            callback(lp, ctx, event);
            true
        }
        Next::End(callback, event, watch, fd) => {
            // Out of the kernel before the fd closes (its number may be
            // reused by the callback).
            if let Some(w) = watch {
                lp.remove(w);
            }
            drop(fd);
            callback(lp, ctx, event);
            false
        }
        Next::Yield | Next::Idle => false,
    }
}

fn drive_read<C, const W: usize, const T: usize, B: Backend, const S: usize, const BUF: usize>(
    lp: &mut Loop<C, W, T, B>,
    ctx: &mut C,
    id: StreamId,
) where
    C: AsMut<Streams<Loop<C, W, T, B>, S, BUF>>,
{
    loop {
        let next = ctx.as_mut().read_step(id);
        if !deliver(lp, ctx, next) {
            break;
        }
    }
}

fn drive_flush<C, const W: usize, const T: usize, B: Backend, const S: usize, const BUF: usize>(
    lp: &mut Loop<C, W, T, B>,
    ctx: &mut C,
    id: StreamId,
) -> bool
where
    C: AsMut<Streams<Loop<C, W, T, B>, S, BUF>>,
{
    for _ in 0..FLUSH_ROUNDS {
        let next = ctx.as_mut().flush_step(id);
        let calls = matches!(next, Next::Call(..) | Next::End(..));
        if !deliver(lp, ctx, next) {
            return calls;
        }
    }
    // A `drained` callback kept writing: the rest waits for the next pass.
    let streams = ctx.as_mut();
    if streams.slot(id).is_some_and(|s| s.w_len > 0) {
        streams.queue_flush(id.slot);
    }
    true
}

/// Level-triggered mode: asks the loop for what the stream can use now
/// (read unless throttled, closing or full; write while blocked on it).
fn sync_interest<C, const W: usize, const T: usize, B: Backend, const S: usize, const BUF: usize>(
    lp: &mut Loop<C, W, T, B>,
    ctx: &mut C,
    id: StreamId,
) where
    C: AsMut<Streams<Loop<C, W, T, B>, S, BUF>>,
{
    let streams = ctx.as_mut();
    if streams.options.trigger == Trigger::Edge {
        return;
    }
    let Some(s) = streams.slot_mut(id) else { return };
    let full = (s.r_end - s.r_start) as usize == BUF;
    let mut want = 0;
    if !s.has(flag::THROTTLED | flag::CLOSING | flag::PEER_EOF) && !full {
        want |= READ;
    }
    if s.w_len > 0 && !s.has(flag::WRITABLE) {
        want |= WRITE;
    }
    if want == s.interest {
        return;
    }
    let Some(watch) = s.watch else { return };
    let mut interest = Interest::empty();
    if want & READ != 0 {
        interest |= Interest::READ;
    }
    if want & WRITE != 0 {
        interest |= Interest::WRITE;
    }
    if lp.modify(watch, interest).is_ok() {
        s.interest = want;
        streams.stats.interest_changes += 1;
    }
}

/// A stream's watcher: latch what the kernel said, then read or flush.
fn on_ready<C, const W: usize, const T: usize, B: Backend, const S: usize, const BUF: usize>(
    lp: &mut Loop<C, W, T, B>,
    ctx: &mut C,
    ev: WatchEvent,
) where
    C: AsMut<Streams<Loop<C, W, T, B>, S, BUF>>,
{
    let id = StreamId::from_key(ev.data());
    let Some(s) = ctx.as_mut().slot_mut(id) else { return };
    if ev.ready().intersects(Ready::HANGUP | Ready::READ_HANGUP | Ready::ERROR) {
        s.flags |= flag::HUP;
    }
    match ev.side() {
        Side::Read => {
            s.flags |= flag::READABLE;
            drive_read(lp, ctx, id);
        }
        Side::Write | Side::Error => {
            s.flags |= flag::WRITABLE;
            if s.w_len > 0 || s.has(flag::CLOSING | flag::SHUT_WR) {
                drive_flush(lp, ctx, id);
            }
        }
    }
    sync_interest(lp, ctx, id);
}

/// Before the loop sleeps: flush every stream with pending writes, and
/// keep the wait from blocking while work is queued.
fn on_prepare<C, const W: usize, const T: usize, B: Backend, const S: usize, const BUF: usize>(
    lp: &mut Loop<C, W, T, B>,
    ctx: &mut C,
    _ev: PhaseEvent,
) where
    C: AsMut<Streams<Loop<C, W, T, B>, S, BUF>>,
{
    let streams = ctx.as_mut();
    streams.pass = streams.pass.wrapping_add(1);
    // Whether a protocol callback ran here (a `drained`, or the `closed`
    // of a flush that ended the stream): what it did is the program's
    // progress, which the pass must not sit on in a blocking wait.
    let mut delivered = false;
    // Those queued while this runs (by callbacks) wait for the next pass.
    for _ in 0..streams.flush_queue.len() {
        let streams = ctx.as_mut();
        let Some(slot) = streams.flush_queue.pop_front() else { break };
        streams.slots[slot as usize].queued &= !super::stream::queued::FLUSH;
        if let Some(id) = streams.id_at(slot) {
            delivered |= drive_flush(lp, ctx, id);
            // A flush that ended with an orderly close may owe the read
            // side its ending too (peer's end of file seen while flushing).
            sync_interest(lp, ctx, id);
        }
    }
    let streams = ctx.as_mut();
    if (delivered || !streams.run_queue.is_empty() || !streams.flush_queue.is_empty()) && streams.kick.is_none() {
        // Fires in this very pass, after the I/O callbacks, and keeps its
        // wait from blocking; a full timer table leaves the work for a
        // later wake-up.
        streams.kick = lp.after(Duration::ZERO, 0, on_kick::<C, W, T, B, S, BUF>).ok();
    }
}

/// The zero-delay timer: streams that spent their quantum read on.
fn on_kick<C, const W: usize, const T: usize, B: Backend, const S: usize, const BUF: usize>(
    lp: &mut Loop<C, W, T, B>,
    ctx: &mut C,
    _ev: TimerEvent,
) where
    C: AsMut<Streams<Loop<C, W, T, B>, S, BUF>>,
{
    let streams = ctx.as_mut();
    streams.kick = None;
    for _ in 0..streams.run_queue.len() {
        let streams = ctx.as_mut();
        let Some(slot) = streams.run_queue.pop_front() else { break };
        streams.slots[slot as usize].queued &= !super::stream::queued::RUN;
        if let Some(id) = streams.id_at(slot) {
            drive_read(lp, ctx, id);
            sync_interest(lp, ctx, id);
        }
    }
}
