//! `TimerHeap`: the scheduler, an indexed 4-ary min-heap of deadlines.
//!
//! Heap nodes are 16 bytes, four to a cache line: the deadline, a 32-bit
//! insertion sequence number and the slot index, so sifting never touches
//! the slots. A dense array records each slot's heap position, which makes
//! cancel and re-arm O(log n). Equal deadlines pop in insertion order. The
//! sequence numbers are renumbered, order kept, in the rare pass that would
//! overflow them. Never allocates, never panics.

use super::key::Key;
use crate::error::Error;
use heapless::Vec;

/// Where a timer is in its life.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TimerState {
    /// In the heap, waiting for its deadline.
    Pending,
    /// Allocated but not scheduled; its id stays valid.
    Disabled,
    /// A one-shot timer popped for firing whose callback has not returned.
    Firing,
}

/// A slot's state in one byte (`0`: free).
const FREE: u8 = 0;
const PENDING: u8 = 1;
const DISABLED: u8 = 2;
const FIRING: u8 = 3;

/// The interval of a one-shot timer.
const ONE_SHOT: u64 = u64::MAX;

/// A heap node: deadline, sequence number and slot in one `u128`, in that
/// order from the top bits, so comparing two nodes is one integer compare
/// (the slot never decides: sequence numbers are unique).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Node(u128);

impl Node {
    #[inline]
    const fn new(deadline: u64, seq: u32, slot: u32) -> Node {
        Node(((deadline as u128) << 64) | ((seq as u128) << 32) | slot as u128)
    }
    #[inline]
    const fn deadline(self) -> u64 {
        (self.0 >> 64) as u64
    }
    #[inline]
    const fn seq(self) -> u32 {
        (self.0 >> 32) as u32
    }
    #[inline]
    const fn slot(self) -> u32 {
        self.0 as u32
    }
    #[inline]
    fn before(&self, other: &Node) -> bool {
        self.0 < other.0
    }
}

#[derive(Copy, Clone, Debug)]
struct Slot<F> {
    /// The callback of the timer in the slot (stale while it is free).
    callback: F,
    /// Period in ns, or `ONE_SHOT`.
    interval: u64,
    generation: u32,
    state: u8,
}

/// A timer popped because its deadline came.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Due<F> {
    /// Its key.
    pub key: Key,
    /// The deadline it was due at.
    pub deadline: u64,
    /// Its period, for a repeating timer.
    pub interval: Option<u64>,
    /// Its callback.
    pub callback: F,
}

/// A fixed-capacity timer heap.
pub struct TimerHeap<F, const T: usize> {
    slots: Vec<Slot<F>, T>,
    /// Heap index of each slot while it is pending: a dense array of its
    /// own (4 bytes a slot), because every step of a sift writes one, and
    /// a small array keeps those writes in few cache lines.
    pos: Vec<u32, T>,
    free: Vec<u32, T>,
    heap: Vec<Node, T>,
    /// The next sequence number.
    seq: u32,
    /// Timers with a sequence number from here on were scheduled after the
    /// current pass began ([`begin_pass`](Self::begin_pass)).
    limit: u32,
    /// Slots freed since the free list was last put back in order.
    churn: usize,
}

impl<F: Copy, const T: usize> Default for TimerHeap<F, T> {
    fn default() -> Self {
        Self::new()
    }
}

const ARITY: usize = 4;

impl<F: Copy, const T: usize> TimerHeap<F, T> {
    /// An empty heap.
    pub const fn new() -> Self {
        TimerHeap { slots: Vec::new(), pos: Vec::new(), free: Vec::new(), heap: Vec::new(), seq: 0, limit: 0, churn: 0 }
    }

    /// Allocated timers (pending, disabled or firing).
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Whether no timer is allocated.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Timers waiting in the heap.
    pub fn pending(&self) -> usize {
        self.heap.len()
    }

    /// Marks the start of a pass: timers scheduled from now on are held
    /// back by [`pop_due`](Self::pop_due) until the next `begin_pass`.
    pub fn begin_pass(&mut self) {
        self.limit = self.seq;
    }

    /// The earliest pending deadline.
    #[inline]
    pub fn peek_deadline(&self) -> Option<u64> {
        self.heap.first().map(|n| n.deadline())
    }

    /// Allocates a timer; schedules it at `deadline` unless that is `None`
    /// (then it starts `Disabled`). `Capacity` when full.
    pub fn insert(&mut self, deadline: Option<u64>, interval: Option<u64>, callback: F) -> Result<Key, Error> {
        let interval = interval.map_or(ONE_SHOT, |i| i.min(ONE_SHOT - 1));
        let slot = match self.free.pop() {
            Some(slot) => {
                let s = &mut self.slots[slot as usize];
                s.callback = callback;
                s.interval = interval;
                s.generation = s.generation.wrapping_add(1);
                s.state = DISABLED;
                slot
            }
            None => {
                let fresh = Slot { callback, interval, generation: 1, state: DISABLED };
                self.slots.push(fresh).map_err(|_| Error::Capacity)?;
                // Cannot fail: `pos` has one entry per slot.
                let _ = self.pos.push(0);
                (self.slots.len() - 1) as u32
            }
        };
        let key = Key { slot, generation: self.slots[slot as usize].generation };
        if let Some(d) = deadline {
            self.push(slot, d);
        }
        Ok(key)
    }

    /// The state of the timer with this key; `None` if the key is stale.
    pub fn state(&self, key: Key) -> Option<TimerState> {
        match self.live(key)?.state {
            PENDING => Some(TimerState::Pending),
            DISABLED => Some(TimerState::Disabled),
            _ => Some(TimerState::Firing),
        }
    }

    /// The period of a live timer (`Some(None)` for a one-shot).
    pub fn interval(&self, key: Key) -> Option<Option<u64>> {
        self.live(key).map(|s| (s.interval != ONE_SHOT).then_some(s.interval))
    }

    /// The deadline of a pending timer.
    pub fn deadline(&self, key: Key) -> Option<u64> {
        let s = self.live(key)?;
        (s.state == PENDING).then(|| self.heap[self.pos[key.slot as usize] as usize].deadline())
    }

    /// Frees the timer. Returns whether the key named a live timer; a stale
    /// key never touches the slot's new occupant.
    pub fn cancel(&mut self, key: Key) -> bool {
        let Some(s) = self.live(key) else { return false };
        if s.state == PENDING {
            self.remove_at(self.pos[key.slot as usize] as usize);
        }
        self.free_slot(key.slot);
        true
    }

    /// Moves a live timer to `deadline` (or disables it with `None`),
    /// keeping its key. It sorts after every timer scheduled before.
    pub fn schedule(&mut self, key: Key, deadline: Option<u64>) -> bool {
        let Some(s) = self.live(key) else { return false };
        let pending = s.state == PENDING;
        let at = self.pos[key.slot as usize] as usize;
        if let (true, Some(d)) = (pending, deadline) {
            // Re-arm in place: one sift instead of a removal and an insertion.
            let seq = self.next_seq();
            let old = self.heap[at].deadline();
            self.heap[at] = Node::new(d, seq, key.slot);
            // A later deadline (or an equal one, now with a later sequence
            // number) can only sink; an earlier one can only rise.
            if d < old {
                self.sift_up(at)
            } else {
                self.sift_down(at)
            }
            return true;
        }
        if pending {
            self.remove_at(at);
        }
        self.slots[key.slot as usize].state = DISABLED;
        if let Some(d) = deadline {
            self.push(key.slot, d);
        }
        true
    }

    /// Changes the period of a live timer (not its next deadline).
    pub fn set_interval(&mut self, key: Key, interval: Option<u64>) -> bool {
        match self.live_mut(key) {
            Some(s) => {
                s.interval = interval.map_or(ONE_SHOT, |i| i.min(ONE_SHOT - 1));
                true
            }
            None => false,
        }
    }

    /// A live timer's callback.
    pub fn callback(&self, key: Key) -> Option<F> {
        self.live(key).map(|s| s.callback)
    }

    /// Changes the callback of a live timer.
    pub fn set_callback(&mut self, key: Key, callback: F) -> bool {
        match self.live_mut(key) {
            Some(s) => {
                s.callback = callback;
                true
            }
            None => false,
        }
    }

    /// Pops the earliest timer if its deadline is at or before `now` and it
    /// was scheduled before the current pass began. A one-shot timer is
    /// left `Firing` (see [`finish`](Self::finish)); a repeating one is left
    /// `Disabled` for the caller to reschedule.
    #[inline]
    pub fn pop_due(&mut self, now: u64) -> Option<Due<F>> {
        let top = *self.heap.first()?;
        if top.deadline() > now || top.seq() >= self.limit {
            return None;
        }
        self.remove_at(0);
        let s = &mut self.slots[top.slot() as usize];
        let one_shot = s.interval == ONE_SHOT;
        s.state = if one_shot { FIRING } else { DISABLED };
        Some(Due {
            key: Key { slot: top.slot(), generation: s.generation },
            deadline: top.deadline(),
            interval: (!one_shot).then_some(s.interval),
            callback: s.callback,
        })
    }

    /// After a one-shot callback returned: frees the timer unless the
    /// callback re-armed, disabled or cancelled it.
    #[inline]
    pub fn finish(&mut self, key: Key) {
        if self.live(key).is_some_and(|s| s.state == FIRING) {
            self.free_slot(key.slot);
        }
    }

    #[inline]
    fn live(&self, key: Key) -> Option<&Slot<F>> {
        let s = self.slots.get(key.slot as usize)?;
        (s.generation == key.generation && s.state != FREE).then_some(s)
    }

    fn live_mut(&mut self, key: Key) -> Option<&mut Slot<F>> {
        let s = self.slots.get_mut(key.slot as usize)?;
        (s.generation == key.generation && s.state != FREE).then_some(s)
    }

    /// Frees a slot that is out of the heap. When the table becomes empty
    /// after at least as many frees as it has slots, the free list is put
    /// back in slot order (amortised O(1)), so a table reused after being
    /// emptied in a scrambled order hands out slots in memory order again.
    fn free_slot(&mut self, slot: u32) {
        let s = &mut self.slots[slot as usize];
        s.state = FREE;
        s.generation = s.generation.wrapping_add(1);
        // Cannot fail: each slot is freed once per allocation.
        let _ = self.free.push(slot);
        self.churn += 1;
        if self.free.len() == self.slots.len() && self.churn >= self.slots.len() {
            self.churn = 0;
            self.free.clear();
            for slot in (0..self.slots.len() as u32).rev() {
                let _ = self.free.push(slot);
            }
        }
    }

    /// The next sequence number; renumbers every pending timer first when
    /// the numbers would overflow (once per four billion schedules).
    #[inline]
    fn next_seq(&mut self) -> u32 {
        if self.seq == u32::MAX {
            self.renumber();
        }
        let seq = self.seq;
        self.seq += 1;
        seq
    }

    /// Gives the pending timers the sequence numbers `0..n` in their order,
    /// keeping which of them were scheduled before the current pass.
    #[cold]
    fn renumber(&mut self) {
        let nodes = self.heap.as_mut_slice();
        nodes.sort_unstable_by_key(|n| n.seq());
        let limit = nodes.partition_point(|n| n.seq() < self.limit);
        for (i, n) in nodes.iter_mut().enumerate() {
            *n = Node::new(n.deadline(), i as u32, n.slot());
        }
        self.seq = nodes.len() as u32;
        self.limit = limit as u32;
        // Sorted by sequence is not heap order by deadline: rebuild it.
        let len = self.heap.len();
        for at in (0..len.div_ceil(ARITY)).rev() {
            self.sift_down(at);
        }
        for at in 0..len {
            self.place(at);
        }
    }

    fn push(&mut self, slot: u32, deadline: u64) {
        let node = Node::new(deadline, self.next_seq(), slot);
        let at = self.heap.len();
        // Cannot fail: at most T slots exist and each is in the heap once.
        if self.heap.push(node).is_err() {
            return;
        }
        self.slots[slot as usize].state = PENDING;
        self.sift_up(at);
    }

    fn remove_at(&mut self, at: usize) {
        let last = self.heap.len() - 1;
        self.heap.swap(at, last);
        self.heap.pop();
        if at < last {
            // The node moved in from the end sorts anywhere relative to the
            // one removed: up if it beats its new parent, else down.
            if at > 0 && self.heap[at].before(&self.heap[(at - 1) / ARITY]) {
                self.sift_up(at);
            } else {
                self.sift_down(at);
            }
        }
    }

    #[inline]
    fn place(&mut self, at: usize) {
        let slot = self.heap[at].slot() as usize;
        self.pos[slot] = at as u32;
    }

    fn sift_up(&mut self, at: usize) {
        let (heap, pos) = (self.heap.as_mut_slice(), self.pos.as_mut_slice());
        let Some(&node) = heap.get(at) else { return };
        let mut at = at;
        while at > 0 {
            let parent = (at - 1) / ARITY;
            let up = heap[parent];
            if !node.before(&up) {
                break;
            }
            heap[at] = up;
            if let Some(p) = pos.get_mut(up.slot() as usize) {
                *p = at as u32;
            }
            at = parent;
        }
        heap[at] = node;
        if let Some(p) = pos.get_mut(node.slot() as usize) {
            *p = at as u32;
        }
    }

    /// Moves the node at `at` down to where it belongs. Works on the two
    /// arrays as slices, so their lengths stay in registers across levels.
    fn sift_down(&mut self, at: usize) {
        let (heap, pos) = (self.heap.as_mut_slice(), self.pos.as_mut_slice());
        let Some(&node) = heap.get(at) else { return };
        let len = heap.len();
        let mut at = at;
        loop {
            let first = at * ARITY + 1;
            let best = if first + ARITY <= len {
                // All four children: the smaller of each pair, then of those.
                let k = &heap[first..first + ARITY];
                let a = usize::from(k[1].before(&k[0]));
                let b = 2 + usize::from(k[3].before(&k[2]));
                first + if k[b].before(&k[a]) { b } else { a }
            } else if first < len {
                let mut best = first;
                for child in first + 1..len {
                    if heap[child].before(&heap[best]) {
                        best = child;
                    }
                }
                best
            } else {
                break;
            };
            let down = heap[best];
            if !down.before(&node) {
                break;
            }
            heap[at] = down;
            if let Some(p) = pos.get_mut(down.slot() as usize) {
                *p = at as u32;
            }
            at = best;
        }
        heap[at] = node;
        if let Some(p) = pos.get_mut(node.slot() as usize) {
            *p = at as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec as StdVec;

    fn drain(h: &mut TimerHeap<u32, 64>, now: u64) -> StdVec<u32> {
        h.begin_pass();
        let mut out = StdVec::new();
        while let Some(d) = h.pop_due(now) {
            out.push(d.callback);
            h.finish(d.key);
        }
        out
    }

    #[test]
    fn nodes_are_sixteen_bytes() {
        assert_eq!(core::mem::size_of::<Node>(), 16);
    }

    #[test]
    fn pops_in_deadline_order_with_fifo_ties() {
        let mut h: TimerHeap<u32, 64> = TimerHeap::new();
        let deadlines = [50, 10, 30, 10, 50, 20, 10, 40, 30, 5, 60, 10];
        for (i, d) in deadlines.iter().enumerate() {
            h.insert(Some(*d), None, i as u32).unwrap();
        }
        let mut expected: StdVec<(u64, u32)> = deadlines.iter().enumerate().map(|(i, d)| (*d, i as u32)).collect();
        expected.sort();
        assert_eq!(drain(&mut h, 100), expected.iter().map(|e| e.1).collect::<StdVec<_>>());
        assert!(h.is_empty());
    }

    #[test]
    fn cancel_in_any_order_keeps_the_heap_ordered() {
        let mut h: TimerHeap<u32, 64> = TimerHeap::new();
        let keys: StdVec<Key> =
            (0..40u32).map(|i| h.insert(Some(u64::from((i * 37) % 41)), None, i).unwrap()).collect();
        for k in keys.iter().step_by(3) {
            assert!(h.cancel(*k));
            assert!(!h.cancel(*k));
        }
        let fired = drain(&mut h, 1000);
        let mut last = 0;
        for i in &fired {
            assert!(i % 3 != 0);
            let d = u64::from((i * 37) % 41);
            assert!(d >= last);
            last = d;
        }
        assert_eq!(fired.len(), 40 - 14);
    }

    #[test]
    fn rearming_in_place_keeps_deadline_order_and_fifo_ties() {
        let mut h: TimerHeap<u32, 64> = TimerHeap::new();
        let keys: StdVec<Key> = (0..50u32).map(|i| h.insert(Some(u64::from(i * 7 % 50)), None, i).unwrap()).collect();
        // Move every third earlier, every third later, some onto equal deadlines.
        let mut expected: StdVec<(u64, usize, u32)> = StdVec::new();
        for (i, k) in keys.iter().enumerate() {
            let d = match i % 3 {
                0 => 5,
                1 => 100 + (i as u64 % 4),
                _ => u64::from(i as u32 * 7 % 50),
            };
            if i % 3 != 2 {
                assert!(h.schedule(*k, Some(d)));
            }
            // Rescheduled ones sort after every timer scheduled before them.
            let order = if i % 3 == 2 { i } else { 1000 + i };
            expected.push((d, order, i as u32));
        }
        expected.sort();
        let want: StdVec<u32> = expected.iter().map(|e| e.2).collect();
        assert_eq!(drain(&mut h, 1_000), want);
    }

    #[test]
    fn stale_key_cannot_touch_the_new_occupant() {
        let mut h: TimerHeap<u32, 1> = TimerHeap::new();
        let old = h.insert(Some(5), None, 1).unwrap();
        assert!(h.cancel(old));
        let new = h.insert(Some(5), None, 2).unwrap();
        assert_eq!(old.slot, new.slot);
        assert!(!h.cancel(old));
        assert!(!h.schedule(old, Some(1)));
        assert_eq!(h.deadline(new), Some(5));
        assert_eq!(h.insert(Some(1), None, 3), Err(Error::Capacity));
        assert_eq!(h.deadline(new), Some(5));
    }

    #[test]
    fn the_pass_limit_holds_back_timers_scheduled_later() {
        let mut h: TimerHeap<u32, 8> = TimerHeap::new();
        h.insert(Some(10), None, 1).unwrap();
        h.begin_pass();
        h.insert(Some(10), None, 2).unwrap();
        assert_eq!(h.pop_due(10).map(|d| d.callback), Some(1));
        assert!(h.pop_due(10).is_none());
        h.begin_pass();
        assert_eq!(h.pop_due(10).map(|d| d.callback), Some(2));
    }

    #[test]
    fn disabled_timer_keeps_its_key_and_firing_one_shot_is_freed() {
        let mut h: TimerHeap<u32, 8> = TimerHeap::new();
        let k = h.insert(Some(10), None, 1).unwrap();
        assert!(h.schedule(k, None));
        assert_eq!(h.state(k), Some(TimerState::Disabled));
        h.begin_pass();
        assert!(h.pop_due(100).is_none());
        assert!(h.schedule(k, Some(20)));
        h.begin_pass();
        let d = h.pop_due(100).unwrap();
        assert_eq!(h.state(k), Some(TimerState::Firing));
        h.finish(d.key);
        assert_eq!(h.state(k), None);
        assert!(!h.cancel(k));
    }

    #[test]
    fn renumbering_keeps_order_ties_and_the_pass_limit() {
        let mut h: TimerHeap<u32, 64> = TimerHeap::new();
        // Equal deadlines in insertion order, and some before the pass.
        for i in 0..10u32 {
            h.insert(Some(7), None, i).unwrap();
        }
        h.begin_pass();
        // Force the overflow path: the next sequence number is the last.
        h.seq = u32::MAX;
        for i in 10..20u32 {
            h.insert(Some(7), None, i).unwrap();
        }
        assert!(h.seq < 64, "renumbered");
        let mut fired = StdVec::new();
        while let Some(d) = h.pop_due(7) {
            fired.push(d.callback);
            h.finish(d.key);
        }
        assert_eq!(fired, (0..10).collect::<StdVec<_>>(), "only those from before the pass, in order");
        assert_eq!(drain(&mut h, 7), (10..20).collect::<StdVec<_>>());
    }

    #[test]
    fn a_table_emptied_in_scrambled_order_hands_out_slots_in_order_again() {
        let mut h: TimerHeap<u32, 64> = TimerHeap::new();
        let keys: StdVec<Key> = (0..64u32).map(|i| h.insert(Some(u64::from(i)), None, i).unwrap()).collect();
        for i in [5usize, 63, 0, 17, 42, 1] {
            h.cancel(keys[i]);
        }
        for (i, k) in keys.iter().enumerate() {
            if ![5usize, 63, 0, 17, 42, 1].contains(&i) {
                h.cancel(*k);
            }
        }
        assert!(h.is_empty());
        let slots: StdVec<u32> = (0..8).map(|i| h.insert(Some(i), None, 0).unwrap().slot).collect();
        assert_eq!(slots, (0..8).collect::<StdVec<_>>());
        // Old keys stay stale after the reordering.
        assert!(!h.cancel(keys[0]));
    }
}
