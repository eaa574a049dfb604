//! What the two one-shot poll backends (linux-aio, io_uring) keep per
//! registration: a slot record per key slot and the queue of slots to
//! (re)arm at the next wait. Pure data: the state machine that moves a slot
//! from one [`State`] to the next is `oneshot.rs`.
//!
//! Everything lives in anonymous mappings sized at construction (the
//! backend's capacity is a run-time value and the library has no heap).
//! Slot `i` of the table is key slot `i` for `i < capacity`; the loop's
//! reserved keys ([`Key::RESERVED`] of them, [`Key::WAKER`] first) map to
//! `capacity`, `capacity + 1`, ... There is no fd -> slot index: the loop
//! names every registration by its key, and keeps one watcher per fd.

use crate::interest::{Interest, Ready, Trigger};
use crate::sys::mmap::Anon;
use crate::sys::{Errno, RawFd};
use crate::table::Key;
use linux_raw_sys::general as k;

/// Where a registration stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub(super) enum State {
    /// No registration.
    #[default]
    Free,
    /// To be armed at the next wait.
    Queued,
    /// Armed in the kernel; its completion carries `generation`.
    InFlight,
    /// A oneshot that fired: waits for `modify`.
    Disarmed,
    /// Handed to the inner epoll (linux-aio only).
    Epoll,
    /// The kernel said the fd is closed (`EBADF` when arming): nothing
    /// more is reported until `modify` or `register` tries again.
    Dead,
}

/// One registration.
#[derive(Copy, Clone, Debug, Default)]
pub(super) struct Slot {
    /// The loop's key, handed back in every event.
    pub key: u64,
    /// The fd, or -1.
    pub fd: RawFd,
    /// Bumped at every arming: a completion carrying another value is stale.
    pub generation: u32,
    /// Which wait (the state machine's count) this slot last reported in.
    pub mark: u32,
    /// Where in that batch.
    pub at: u32,
    pub state: State,
    /// `Interest` bits.
    pub interest: u8,
    /// 0 level, 1 edge, 2 oneshot.
    pub trigger: u8,
    /// In the arming queue (at most once).
    pub queued: bool,
    /// The fd is never polled here (linux-aio: the kernel refused it with
    /// `EINVAL`, or it is a signalfd): it is handed off whatever its trigger
    /// until the slot gets another fd.
    pub refused: bool,
}

impl Slot {
    pub(super) fn interest(&self) -> Interest {
        Interest::from_bits_truncate(self.interest)
    }

    pub(super) fn trigger(&self) -> Trigger {
        match self.trigger {
            1 => Trigger::Edge,
            2 => Trigger::Oneshot,
            _ => Trigger::Level,
        }
    }

    /// Takes on a registration; keeps [`refused`](Self::refused) for the same fd.
    pub(super) fn set(&mut self, fd: RawFd, key: u64, interest: Interest, trigger: Trigger) {
        if self.fd != fd {
            self.refused = false;
        }
        self.fd = fd;
        self.key = key;
        self.interest = interest.bits();
        self.trigger = match trigger {
            Trigger::Level => 0,
            Trigger::Edge => 1,
            Trigger::Oneshot => 2,
        };
    }
}

/// The `POLL*` events to ask for: what epoll asks for on the same interest
/// (errors and hang-ups are always reported).
pub(super) fn poll_mask(interest: Interest) -> u32 {
    let mut events = 0;
    if interest.contains(Interest::READ) {
        events |= k::POLLIN | k::POLLRDHUP | k::POLLPRI;
    }
    if interest.contains(Interest::WRITE) {
        events |= k::POLLOUT;
    }
    events
}

/// A completed poll's `POLL*` mask as the loop's `Ready`: the `POLL*` bits
/// are epoll's, which `Ready` uses, so this is one AND (pinned by a test).
pub(super) fn ready_of(mask: u32) -> Ready {
    Ready::from_bits_truncate(mask)
}

/// The value a poll request of slot `i` carries to the kernel and back
/// (iocb `aio_data`, SQE `user_data`): the table index and the slot's
/// arming generation, encoded as a [`Key`] is.
pub(super) fn request_data(i: usize, generation: u32) -> u64 {
    Key { slot: i as u32, generation }.to_u64()
}

/// The registration table of a poll backend.
pub(super) struct Slots {
    slots: Anon<Slot>,
    capacity: u32,
    queue: Anon<u32>,
    queue_len: usize,
}

impl Slots {
    /// Room for key slots `0..capacity` and the reserved ones.
    pub(super) fn new(capacity: u32) -> Result<Slots, Errno> {
        if capacity == 0 || capacity >= u32::MAX / 4 {
            return Err(Errno::EINVAL);
        }
        let n = (capacity + Key::RESERVED) as usize;
        let slots = Anon::new(n, Slot { fd: -1, ..Slot::default() })?;
        Ok(Slots { slots, capacity, queue: Anon::new(n, 0)?, queue_len: 0 })
    }

    /// Key slots available to the loop's table.
    pub(super) fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Total slots (key slots and reserved).
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The table index of a key (its low 32 bits), or `ENOSPC` beyond the
    /// capacity.
    pub(super) fn index_of_key(&self, key: u64) -> Result<usize, Errno> {
        let key = Key::from_u64(key);
        match key.reserved_index() {
            Some(r) => Ok((self.capacity + r) as usize),
            None if key.slot < self.capacity => Ok(key.slot as usize),
            None => Err(Errno::ENOSPC),
        }
    }

    pub(super) fn get(&self, i: usize) -> Option<&Slot> {
        self.slots.get(i)
    }

    pub(super) fn get_mut(&mut self, i: usize) -> Option<&mut Slot> {
        self.slots.get_mut(i)
    }

    /// Indices of every slot (for sweeps over the whole table).
    pub(super) fn indices(&self) -> core::ops::Range<usize> {
        0..self.slots.len()
    }

    /// Puts slot `i` on the arming queue (once).
    pub(super) fn enqueue(&mut self, i: usize) {
        if let Some(s) = self.slots.get_mut(i)
            && !s.queued
            && self.queue_len < self.queue.len()
        {
            s.queued = true;
            self.queue[self.queue_len] = i as u32;
            self.queue_len += 1;
        }
    }

    /// Takes the queue: moves the slots still in `State::Queued` to the front
    /// of the queue array, clears every queued mark, empties the queue and
    /// returns how many were moved (see [`batch`](Self::batch)).
    pub(super) fn take_queue(&mut self) -> usize {
        let mut n = 0;
        for q in 0..self.queue_len {
            let i = self.queue[q] as usize;
            let s = &mut self.slots[i];
            s.queued = false;
            if s.state == State::Queued {
                self.queue[n] = i as u32;
                n += 1;
            }
        }
        self.queue_len = 0;
        n
    }

    /// The first `n` entries of the queue array after [`take_queue`](Self::take_queue).
    pub(super) fn batch(&self, n: usize) -> &[u32] {
        &self.queue[..n.min(self.queue.len())]
    }

    /// Puts batch entries `from..n` back on the queue, in `State::Queued`
    /// (they could not be armed this time), keeping their order.
    pub(super) fn requeue_batch(&mut self, from: usize, n: usize) {
        for q in from..n {
            let i = self.queue[q] as usize;
            self.slots[i].state = State::Queued;
            self.slots[i].queued = true;
            self.queue[self.queue_len] = i as u32;
            self.queue_len += 1;
        }
    }

    /// Entries in the queue, some perhaps no longer to be armed (at least
    /// [`queued`](Self::queued)).
    pub(super) fn queue_len(&self) -> usize {
        self.queue_len
    }

    /// How many slots the queue holds that are still to be armed (what
    /// [`take_queue`](Self::take_queue) would return).
    pub(super) fn queued(&self) -> usize {
        self.queue[..self.queue_len].iter().filter(|&&i| self.slots[i as usize].state == State::Queued).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_slots_and_reserved_keys_to_the_end() {
        let s = Slots::new(8).unwrap();
        assert_eq!(s.len(), 8 + Key::RESERVED as usize);
        assert_eq!(s.index_of_key(0xffff_0000_0000_0007), Ok(7));
        assert_eq!(s.index_of_key(8), Err(Errno::ENOSPC));
        assert_eq!(s.index_of_key(u64::from(u32::MAX)), Ok(8));
        assert_eq!(s.index_of_key(u64::from(u32::MAX - 1)), Ok(9));
        assert_eq!(s.index_of_key(u64::from(u32::MAX - 2)), Ok(10));
        assert_eq!(s.index_of_key(Key::SIGNALS.to_u64()), Ok(10));
        assert_eq!(s.index_of_key(Key::BACKEND_WAKE.to_u64()), Ok(11));
        assert_eq!(s.index_of_key(u64::from(Key::FIRST_RESERVED - 1)), Err(Errno::ENOSPC));
        assert_eq!(Slots::new(0).err(), Some(Errno::EINVAL));
        assert_eq!(request_data(7, 3), 3 << 32 | 7);
    }

    #[test]
    fn queue_keeps_each_slot_once_and_only_queued_states() {
        let mut s = Slots::new(8).unwrap();
        for i in [3, 1, 3, 5] {
            s.get_mut(i).unwrap().state = State::Queued;
            s.enqueue(i);
        }
        s.get_mut(5).unwrap().state = State::Free;
        assert_eq!(s.queued(), 2);
        let n = s.take_queue();
        assert_eq!(s.batch(n), [3, 1]);
        assert_eq!(s.queued(), 0);
        s.requeue_batch(1, n);
        assert_eq!(s.take_queue(), 1);
        assert_eq!(s.batch(1), [1]);
    }

    #[test]
    fn masks_round_trip() {
        assert_eq!(poll_mask(Interest::READ) & k::POLLIN, k::POLLIN);
        assert_eq!(poll_mask(Interest::WRITE), k::POLLOUT);
        assert_eq!(poll_mask(Interest::ERROR), 0);
        assert_eq!(ready_of(k::POLLIN | k::POLLHUP | 0x40), Ready::READABLE | Ready::HANGUP);
        let pairs = [
            (k::POLLIN, Ready::READABLE),
            (k::POLLPRI, Ready::PRIORITY),
            (k::POLLOUT, Ready::WRITABLE),
            (k::POLLERR, Ready::ERROR),
            (k::POLLHUP, Ready::HANGUP),
            (k::POLLRDHUP, Ready::READ_HANGUP),
        ];
        for (bit, ready) in pairs {
            assert_eq!(ready_of(bit), ready, "POLL bit {bit:#x}");
        }
    }
}
