//! What the two one-shot poll backends (linux-aio, io_uring) keep per
//! registration: a slot record per key slot, an fd -> slot index, and the
//! queue of slots to (re)arm at the next wait.
//!
//! Everything lives in anonymous mappings sized at construction (the
//! backend's capacity is a run-time value and the library has no heap).
//! Slot `i` of the table is key slot `i` for `i < capacity`; the loop's
//! reserved keys (slots `u32::MAX`, `u32::MAX - 1`, `u32::MAX - 2`) map to
//! `capacity`, `capacity + 1`, `capacity + 2`.

use crate::interest::{Interest, Ready, Trigger};
use crate::sys::mmap::Anon;
use crate::sys::{Errno, RawFd};
use linux_raw_sys::general as k;

/// Key slots at the top of the range the loop reserves for its own fds.
pub(super) const RESERVED: u32 = crate::table::Key::RESERVED;

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
    /// Pass number of the batch this slot last reported in ([`Slots::pass`]).
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
    /// The kernel refused to poll this fd (linux-aio: `EINVAL`): it lives in
    /// the inner epoll until the slot gets another fd.
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

/// The registration table of a poll backend.
pub(super) struct Slots {
    slots: Anon<Slot>,
    capacity: u32,
    /// Open addressing, linear probing: `(fd as u32) << 32 | (index + 1)`,
    /// 0 for an empty bucket. At most one bucket per slot, and the table has
    /// at least twice as many buckets, so probes end.
    fds: Anon<u64>,
    queue: Anon<u32>,
    queue_len: usize,
    /// Counts waits, to merge several completions of one slot in a batch.
    pub pass: u32,
}

impl Slots {
    /// Room for key slots `0..capacity`, the reserved ones, and `extra`
    /// internal slots after them.
    pub(super) fn new(capacity: u32, extra: u32) -> Result<Slots, Errno> {
        if capacity == 0 || capacity >= u32::MAX / 4 {
            return Err(Errno::EINVAL);
        }
        let n = (capacity + RESERVED + extra) as usize;
        let buckets = (2 * n).next_power_of_two();
        let slots = Anon::new(n, Slot { fd: -1, ..Slot::default() })?;
        Ok(Slots { slots, capacity, fds: Anon::new(buckets, 0)?, queue: Anon::new(n, 0)?, queue_len: 0, pass: 0 })
    }

    /// Key slots available to the loop's table.
    pub(super) fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Total slots (key slots, reserved, internal).
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The table index of a key (its low 32 bits), or `ENOSPC` beyond the
    /// capacity.
    pub(super) fn index_of_key(&self, key: u64) -> Result<usize, Errno> {
        let slot = key as u32;
        if slot < self.capacity {
            Ok(slot as usize)
        } else if slot >= u32::MAX - (RESERVED - 1) {
            Ok((self.capacity + (u32::MAX - slot)) as usize)
        } else {
            Err(Errno::ENOSPC)
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

    fn bucket(&self, fd: RawFd) -> usize {
        let h = (fd as u32 as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> 32) as usize & (self.fds.len() - 1)
    }

    /// The slot `fd` is bound to.
    pub(super) fn index_of_fd(&self, fd: RawFd) -> Option<usize> {
        let mask = self.fds.len() - 1;
        let mut b = self.bucket(fd);
        loop {
            let e = self.fds[b];
            if e == 0 {
                return None;
            }
            if (e >> 32) as u32 == fd as u32 {
                return Some((e as u32 - 1) as usize);
            }
            b = (b + 1) & mask;
        }
    }

    /// Binds `fd` to slot `i` (the caller has unbound whatever either was
    /// bound to before).
    pub(super) fn bind_fd(&mut self, fd: RawFd, i: usize) {
        let mask = self.fds.len() - 1;
        let mut b = self.bucket(fd);
        let entry = (u64::from(fd as u32) << 32) | (i as u64 + 1);
        loop {
            let e = self.fds[b];
            if e == 0 || (e >> 32) as u32 == fd as u32 {
                self.fds[b] = entry;
                return;
            }
            b = (b + 1) & mask;
        }
    }

    /// Forgets `fd` (backward-shift deletion keeps probe chains intact).
    pub(super) fn unbind_fd(&mut self, fd: RawFd) {
        let mask = self.fds.len() - 1;
        let mut b = self.bucket(fd);
        loop {
            let e = self.fds[b];
            if e == 0 {
                return;
            }
            if (e >> 32) as u32 == fd as u32 {
                break;
            }
            b = (b + 1) & mask;
        }
        let mut hole = b;
        let mut j = b;
        loop {
            j = (j + 1) & mask;
            let e = self.fds[j];
            if e == 0 {
                break;
            }
            let home = self.bucket((e >> 32) as u32 as RawFd);
            // Move `e` into the hole unless its home lies cyclically in (hole, j].
            let stays = if hole <= j { hole < home && home <= j } else { hole < home || home <= j };
            if !stays {
                self.fds[hole] = e;
                hole = j;
            }
        }
        self.fds[hole] = 0;
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

    /// Puts batch entries `from..n` back on the queue (they could not be
    /// armed this time), keeping their order.
    pub(super) fn requeue_batch(&mut self, from: usize, n: usize) {
        for q in from..n {
            let i = self.queue[q] as usize;
            self.slots[i].queued = true;
            self.queue[self.queue_len] = i as u32;
            self.queue_len += 1;
        }
    }

    /// Whether anything waits to be armed.
    pub(super) fn has_queued(&self) -> bool {
        self.queue_len > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_slots_and_reserved_keys_to_the_end() {
        let s = Slots::new(8, 1).unwrap();
        assert_eq!(s.len(), 13);
        assert_eq!(s.index_of_key(0xffff_0000_0000_0007), Ok(7));
        assert_eq!(s.index_of_key(8), Err(Errno::ENOSPC));
        assert_eq!(s.index_of_key(u64::from(u32::MAX)), Ok(8));
        assert_eq!(s.index_of_key(u64::from(u32::MAX - 1)), Ok(9));
        assert_eq!(s.index_of_key(u64::from(u32::MAX - 2)), Ok(10));
        assert_eq!(s.index_of_key(u64::from(u32::MAX - 3)), Ok(11));
        assert_eq!(s.index_of_key(u64::from(u32::MAX - 4)), Err(Errno::ENOSPC));
        assert_eq!(Slots::new(0, 0).err(), Some(Errno::EINVAL));
    }

    #[test]
    fn fd_index_survives_collisions_and_deletions() {
        let mut s = Slots::new(64, 0).unwrap();
        let mut model = std::collections::HashMap::new();
        let mut x: u64 = 12345;
        for step in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let fd = (x % 200) as RawFd;
            if x.is_multiple_of(3) || model.len() >= 60 {
                s.unbind_fd(fd);
                model.remove(&fd);
            } else {
                let slot = (x >> 20) as usize % 60;
                s.bind_fd(fd, slot);
                model.insert(fd, slot);
            }
            if step % 97 == 0 {
                for fd in 0..200 {
                    assert_eq!(s.index_of_fd(fd), model.get(&fd).copied(), "fd {fd} at step {step}");
                }
            }
        }
    }

    #[test]
    fn queue_keeps_each_slot_once_and_only_queued_states() {
        let mut s = Slots::new(8, 0).unwrap();
        for i in [3, 1, 3, 5] {
            s.get_mut(i).unwrap().state = State::Queued;
            s.enqueue(i);
        }
        s.get_mut(5).unwrap().state = State::Free;
        assert!(s.has_queued());
        let n = s.take_queue();
        assert_eq!(s.batch(n), [3, 1]);
        assert!(!s.has_queued());
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
