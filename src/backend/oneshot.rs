//! The state machine both one-shot poll backends (linux-aio, io_uring) run:
//! arming, the batched re-arm, release, the stale-completion filter, the
//! requeue after a refused submission and the wait that repeats when it saw
//! only stale completions. Written once, over [`PollKernel`]: the kernel
//! calls each backend makes (arm a batch of polls, cancel one, collect
//! completions). It reaches the kernel only through that trait (and the
//! `fstat` every registration is checked with).

use super::slots::{Slot, Slots, State, ready_of};
use super::{ReadyEvent, relative_timeout};
use crate::interest::{Interest, Ready, Trigger};
use crate::sys::fd_kind::{FdKind, fd_kind};
use crate::sys::{Errno, RawFd};
use crate::table::Key;
use crate::time::Instant;

/// One completed poll request, as the state machine reads it.
pub(super) struct Completion {
    /// The request's data ([`request_data`](super::slots::request_data)).
    pub data: u64,
    /// The `POLL*` mask it completed with, or why the kernel refused it.
    pub result: Result<u32, Errno>,
    /// The request stays armed (an io_uring multishot poll).
    pub more: bool,
}

/// Why [`PollKernel::arm`] took fewer polls than it was handed.
pub(super) enum Stop {
    /// The kernel takes no more for now (`EAGAIN`): the rest is armed at
    /// the next pass, and this one does not block.
    Later,
    /// The kernel refused the first poll not taken, for its fd alone (an fd
    /// it cannot poll); the rest is handed again.
    Refused(Errno),
    /// The wait fails with this error; the rest is armed at the next pass.
    Failed(Errno),
}

/// What [`PollKernel::arm`] did with a batch.
pub(super) struct Armed {
    /// How many polls, from the front, the kernel took (or staged for the
    /// coming wait).
    pub taken: usize,
    /// Why it took no more, if it said (`None` with fewer than all taken:
    /// hand the rest again to learn why).
    pub stop: Option<Stop>,
}

/// What one look at the kernel found ([`PollKernel::collect`]).
pub(super) struct Collected {
    /// Events put in `out`.
    pub filled: usize,
    /// The wait is over even without events: the deadline passed, a signal
    /// interrupted it, or a refused submission must not block.
    pub over: bool,
}

/// The kernel calls of a one-shot poll backend: everything the state
/// machine cannot do with the slot table alone.
pub(super) trait PollKernel {
    /// Arms a poll for each slot of `batch`, in order (each slot is
    /// `InFlight` with a fresh generation; its request carries
    /// [`request_data`](super::slots::request_data)).
    fn arm(&mut self, slots: &Slots, batch: &[u32]) -> Armed;

    /// Takes what slot `i` holds in the kernel out of it: an armed poll is
    /// cancelled or removed (a completion it still posts is stale once the
    /// slot's state changes); linux-aio also takes a handed-off fd out of
    /// its inner epoll. Any other state holds nothing.
    fn disarm(&mut self, i: usize, slot: &Slot) -> Result<(), Errno>;

    /// The kernel refused to poll `slot` with `e` (not `EBADF`, which the
    /// state machine handles: the fd was closed). Sets the slot's next
    /// state (`Queued` is armed again) and says what the loop hears of it.
    fn refused(&mut self, slot: &mut Slot, e: Errno) -> Option<Ready>;

    /// Submits what [`arm`](Self::arm) staged, waits for completions no
    /// longer than `deadline` (not at all when
    /// [`OneShot::timeout`] says 0), and hands each to
    /// [`OneShot::complete`], which fills `out` (at most
    /// `out.len().min(EVENT_BATCH)` completions per call).
    fn collect(
        &mut self,
        machine: &mut OneShot,
        out: &mut [ReadyEvent],
        deadline: Option<Instant>,
    ) -> Result<Collected, Errno>;

    /// Whether a registration with `trigger` is a multishot request, which
    /// stays armed across completions (io_uring's edge polls).
    fn multishot(&self, _trigger: Trigger) -> bool {
        false
    }

    /// Takes the registration `next` of slot `i` (which held `old`: the same
    /// fd, or nothing) somewhere other than a poll, when it must go there:
    /// then sets `next`'s state and returns `true` (linux-aio: its inner
    /// epoll). A refusal leaves the kernel as it was.
    fn hand_off(&mut self, _i: usize, _old: &Slot, _next: &mut Slot, _kind: FdKind) -> Result<bool, Errno> {
        Ok(false)
    }

    /// Before each arming round: makes room for every queued poll
    /// (linux-aio grows its context).
    fn make_room(&mut self, _machine: &mut OneShot) -> Result<(), Errno> {
        Ok(())
    }

    /// After an arming round; `later` when the kernel took fewer polls than
    /// asked for now. Returns whether to arm again at once.
    fn armed(&mut self, _machine: &mut OneShot, _later: bool) -> Result<bool, Errno> {
        Ok(false)
    }
}

/// The registrations of a one-shot poll backend and how they move between
/// [`State`]s.
pub(super) struct OneShot {
    pub slots: Slots,
    /// The kernel took fewer polls than asked for now: they wait in the
    /// queue, and the coming wait must not block.
    pub retry: bool,
    /// Counts waits, to merge several completions of one slot in a batch.
    pass: u32,
}

impl OneShot {
    /// Room for key slots `0..capacity` (`1..u32::MAX / 4`, else `EINVAL`).
    pub(super) fn new(capacity: u32) -> Result<OneShot, Errno> {
        Ok(OneShot { slots: Slots::new(capacity)?, retry: false, pass: 0 })
    }

    /// Register and modify: brings the slot of `key` to `fd`/`key`/
    /// `interest`/`trigger`. The fallible kernel step comes first, so a
    /// refusal leaves the old registration as it was.
    pub(super) fn apply<K: PollKernel>(
        &mut self,
        k: &mut K,
        fd: RawFd,
        key: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> Result<(), Errno> {
        let i = self.slots.index_of_key(key)?;
        // fstat on every call: a bad or closed fd is EBADF and a regular
        // file EPERM, as epoll says, also for a modify (a replacement).
        let kind = fd_kind(fd)?;
        if kind == FdKind::NotPollable {
            return Err(Errno::EPERM);
        }
        // One fd per slot: a slot that held another one gives it up first.
        let old = self.slots.get(i).copied().ok_or(Errno::ENOSPC)?;
        if old.state != State::Free && old.fd != fd {
            self.release(k, i);
        }
        let old = self.slots.get(i).copied().ok_or(Errno::ENOSPC)?;
        let mut next = old;
        next.set(fd, key, interest, trigger);
        if !k.hand_off(i, &old, &mut next, kind)? {
            // An armed poll for the same events stays armed: it reports as
            // soon as the fd is ready, which is all a re-arm would do. Not an
            // edge one: `modify` reports current readiness, as
            // `EPOLL_CTL_MOD` does.
            let keep = old.state == State::InFlight
                && old.interest() == interest
                && trigger != Trigger::Edge
                && k.multishot(old.trigger()) == k.multishot(trigger);
            if !keep {
                k.disarm(i, &old)?;
            }
            next.state = if keep { State::InFlight } else { State::Queued };
        }
        if let Some(s) = self.slots.get_mut(i) {
            *s = next;
        }
        if next.state == State::Queued {
            self.slots.enqueue(i);
        }
        Ok(())
    }

    /// Stops reporting the registration of `fd` under `key`. A key whose
    /// slot holds another fd (or nothing) names nothing to stop.
    pub(super) fn deregister<K: PollKernel>(&mut self, k: &mut K, fd: RawFd, key: u64) {
        // The whole key must match: a later registration in the same slot
        // (same fd, newer generation) is not the one being taken out.
        if let Ok(i) = self.slots.index_of_key(key)
            && self.slots.get(i).is_some_and(|s| s.state != State::Free && s.fd == fd && s.key == key)
        {
            self.release(k, i);
        }
    }

    /// Takes slot `i` out of the kernel and frees it.
    fn release<K: PollKernel>(&mut self, k: &mut K, i: usize) {
        let Some(s) = self.slots.get(i).copied() else { return };
        // Best effort: a poll that could not be cancelled completes with a
        // generation that is stale once the slot is free.
        let _ = k.disarm(i, &s);
        if let Some(m) = self.slots.get_mut(i) {
            m.state = State::Free;
            m.fd = -1;
        }
    }

    /// One `wait` of the backend: arms what is queued, collects, and when
    /// only stale completions came, waits again unless the deadline passed.
    pub(super) fn wait<K: PollKernel>(
        &mut self,
        k: &mut K,
        out: &mut [ReadyEvent],
        deadline: Option<Instant>,
    ) -> Result<usize, Errno> {
        loop {
            self.pass = self.pass.wrapping_add(1);
            self.flush(k)?;
            let got = k.collect(self, out, deadline)?;
            if got.filled > 0 || got.over {
                return Ok(got.filled);
            }
            // Only stale completions: wait again unless the deadline passed.
            if relative_timeout(deadline)? == Some(0) {
                return Ok(0);
            }
        }
    }

    /// The relative timeout of the coming wait, in nanoseconds: 0 when it
    /// must not block (a refused submission waits in the queue, or `busy`:
    /// the backend has a reason of its own).
    pub(super) fn timeout(&self, deadline: Option<Instant>, busy: bool) -> Result<Option<u64>, Errno> {
        if busy || self.retry { Ok(Some(0)) } else { relative_timeout(deadline) }
    }

    /// Arms every queued slot, in as few kernel calls as the kernel allows.
    #[inline]
    fn flush<K: PollKernel>(&mut self, k: &mut K) -> Result<(), Errno> {
        loop {
            k.make_room(self)?;
            let n = self.slots.take_queue();
            for q in 0..n {
                let i = self.slots.batch(n)[q] as usize;
                if let Some(s) = self.slots.get_mut(i) {
                    s.generation = s.generation.wrapping_add(1);
                    s.state = State::InFlight;
                }
            }
            let mut pos = 0;
            let mut later = false;
            while pos < n {
                let armed = k.arm(&self.slots, &self.slots.batch(n)[pos..]);
                pos = (pos + armed.taken).min(n);
                let stop = match armed.stop {
                    Some(stop) => stop,
                    None if armed.taken > 0 => continue,
                    None => Stop::Later,
                };
                match stop {
                    Stop::Later => {
                        self.slots.requeue_batch(pos, n);
                        later = true;
                        break;
                    }
                    Stop::Refused(e) => {
                        let i = self.slots.batch(n)[pos] as usize;
                        self.refuse(k, i, e);
                        pos += 1;
                    }
                    Stop::Failed(e) => {
                        self.slots.requeue_batch(pos, n);
                        return Err(e);
                    }
                }
            }
            self.retry = later;
            if !k.armed(self, later)? {
                return Ok(());
            }
        }
    }

    /// The kernel refused to poll slot `i` with `e`; what the loop hears.
    fn refuse<K: PollKernel>(&mut self, k: &mut K, i: usize, e: Errno) -> Option<Ready> {
        let s = self.slots.get_mut(i)?;
        let report = if e == Errno::EBADF {
            // Closed before it was armed: nothing more to report, like epoll
            // forgetting a closed fd.
            s.state = State::Dead;
            s.refused = false;
            None
        } else {
            k.refused(s, e)
        };
        if s.state == State::Queued {
            self.slots.enqueue(i);
        }
        report
    }

    /// Turns one completion into an event at `out[*filled]` (or merges it
    /// into this batch's earlier event of the same slot) and moves the slot
    /// on: re-armed at the next wait (level, or a completion with no
    /// events), disarmed (a oneshot that fired), or still armed (multishot).
    /// A completion of a request that is no longer the slot's is dropped.
    #[inline]
    pub(super) fn complete<K: PollKernel>(
        &mut self,
        k: &mut K,
        c: Completion,
        out: &mut [ReadyEvent],
        filled: &mut usize,
    ) {
        let Key { slot, generation } = Key::from_u64(c.data);
        let i = slot as usize;
        let Some(s) = self.slots.get_mut(i) else { return };
        if s.state != State::InFlight || s.generation != generation {
            // Cancelled, removed, replaced, or from a kernel object that
            // was replaced since.
            return;
        }
        let key = s.key;
        let ready = match c.result {
            Ok(mask) => ready_of(mask),
            Err(e) => {
                if let Some(ready) = self.refuse(k, i, e) {
                    out[*filled] = ReadyEvent::of(key, ready);
                    *filled += 1;
                }
                return;
            }
        };
        s.state = if c.more {
            State::InFlight
        } else if ready.is_empty() || s.trigger() != Trigger::Oneshot {
            State::Queued
        } else {
            State::Disarmed
        };
        let at = s.at as usize;
        let merged = s.mark == self.pass && at < *filled && out[at].key() == key;
        if !merged && !ready.is_empty() {
            s.mark = self.pass;
            s.at = *filled as u32;
        }
        if s.state == State::Queued {
            self.slots.enqueue(i);
        }
        if merged {
            out[at].add_ready(ready);
        } else if !ready.is_empty() {
            out[*filled] = ReadyEvent::of(key, ready);
            *filled += 1;
        }
    }

    /// Queues every armed poll to be armed again (its kernel object was
    /// replaced, or its completions were lost); `each` runs first for each.
    pub(super) fn rearm_in_flight(&mut self, mut each: impl FnMut(usize, &Slot)) {
        for i in self.slots.indices() {
            let Some(s) = self.slots.get(i).copied() else { continue };
            if s.state != State::InFlight {
                continue;
            }
            each(i, &s);
            if let Some(m) = self.slots.get_mut(i) {
                m.state = State::Queued;
            }
            self.slots.enqueue(i);
        }
    }
}
