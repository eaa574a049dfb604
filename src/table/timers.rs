//! `TimerHeap`: the scheduler, an indexed 4-ary min-heap of deadlines.
//!
//! Heap nodes carry the deadline and an insertion sequence number beside the
//! slot index, so sifting never touches the slots; a dense array records
//! each slot's heap position (4 bytes a slot, so the writes a sift makes
//! stay in few cache lines), which makes cancel and re-arm O(log n). Equal deadlines
//! pop in insertion order. Never allocates, never panics.

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

#[derive(Copy, Clone, Debug)]
struct Node {
    deadline: u64,
    seq: u64,
    slot: u32,
}

impl Node {
    #[inline]
    fn before(&self, other: &Node) -> bool {
        (self.deadline, self.seq) < (other.deadline, other.seq)
    }
}

#[derive(Copy, Clone, Debug)]
struct Slot<F> {
    generation: u32,
    /// `None` while the slot is free.
    state: Option<TimerState>,
    /// Period in ns for a repeating timer.
    interval: Option<u64>,
    callback: Option<F>,
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
    /// Heap index of each slot while it is `Pending`.
    pos: Vec<u32, T>,
    free: Vec<u32, T>,
    heap: Vec<Node, T>,
    seq: u64,
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
        TimerHeap { slots: Vec::new(), pos: Vec::new(), free: Vec::new(), heap: Vec::new(), seq: 0 }
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

    /// The sequence number the next scheduled timer will get. Timers
    /// scheduled from now on compare after every timer scheduled before.
    pub fn next_seq(&self) -> u64 {
        self.seq
    }

    /// The earliest pending deadline.
    pub fn peek_deadline(&self) -> Option<u64> {
        self.heap.first().map(|n| n.deadline)
    }

    /// Allocates a timer; schedules it at `deadline` unless that is `None`
    /// (then it starts `Disabled`). `Capacity` when full.
    pub fn insert(&mut self, deadline: Option<u64>, interval: Option<u64>, callback: F) -> Result<Key, Error> {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                let fresh = Slot { generation: 0, state: None, interval: None, callback: None };
                self.slots.push(fresh).map_err(|_| Error::Capacity)?;
                // Cannot fail: `pos` has one entry per slot.
                let _ = self.pos.push(0);
                (self.slots.len() - 1) as u32
            }
        };
        let s = &mut self.slots[slot as usize];
        s.generation = s.generation.wrapping_add(1);
        s.state = Some(TimerState::Disabled);
        s.interval = interval;
        s.callback = Some(callback);
        let key = Key { slot, generation: s.generation };
        if let Some(d) = deadline {
            self.push(slot, d);
        }
        Ok(key)
    }

    /// The state of the timer with this key; `None` if the key is stale.
    pub fn state(&self, key: Key) -> Option<TimerState> {
        self.live(key).and_then(|s| s.state)
    }

    /// The period of a live timer (`Some(None)` for a one-shot).
    pub fn interval(&self, key: Key) -> Option<Option<u64>> {
        self.live(key).map(|s| s.interval)
    }

    /// The deadline of a pending timer.
    pub fn deadline(&self, key: Key) -> Option<u64> {
        let s = self.live(key)?;
        (s.state == Some(TimerState::Pending)).then(|| self.heap[self.pos[key.slot as usize] as usize].deadline)
    }

    /// Frees the timer. Returns whether the key named a live timer; a stale
    /// key never touches the slot's new occupant.
    pub fn cancel(&mut self, key: Key) -> bool {
        let Some(s) = self.live(key) else { return false };
        if s.state == Some(TimerState::Pending) {
            self.remove_at(self.pos[key.slot as usize] as usize);
        }
        let s = &mut self.slots[key.slot as usize];
        s.state = None;
        s.callback = None;
        s.generation = s.generation.wrapping_add(1);
        // Cannot fail: each slot is freed once per allocation.
        let _ = self.free.push(key.slot);
        true
    }

    /// Moves a live timer to `deadline` (or disables it with `None`),
    /// keeping its key. It sorts after every timer scheduled before.
    pub fn schedule(&mut self, key: Key, deadline: Option<u64>) -> bool {
        let Some(s) = self.live(key) else { return false };
        let pending = s.state == Some(TimerState::Pending);
        if let (true, Some(d)) = (pending, deadline) {
            // Re-arm in place: one sift instead of a removal and an insertion.
            let at = self.pos[key.slot as usize] as usize;
            self.heap[at] = Node { deadline: d, seq: self.seq, slot: key.slot };
            self.seq += 1;
            self.resift(at);
            return true;
        }
        if pending {
            self.remove_at(self.pos[key.slot as usize] as usize);
        }
        self.slots[key.slot as usize].state = Some(TimerState::Disabled);
        if let Some(d) = deadline {
            self.push(key.slot, d);
        }
        true
    }

    /// Changes the period of a live timer (not its next deadline).
    pub fn set_interval(&mut self, key: Key, interval: Option<u64>) -> bool {
        match self.live_mut(key) {
            Some(s) => {
                s.interval = interval;
                true
            }
            None => false,
        }
    }

    /// A live timer's callback.
    pub fn callback(&self, key: Key) -> Option<F> {
        self.live(key)?.callback
    }

    /// Changes the callback of a live timer.
    pub fn set_callback(&mut self, key: Key, callback: F) -> bool {
        match self.live_mut(key) {
            Some(s) => {
                s.callback = Some(callback);
                true
            }
            None => false,
        }
    }

    /// Pops the earliest timer if its deadline is at or before `now` and it
    /// was scheduled before sequence number `seq_limit`. A one-shot timer is
    /// left `Firing` (see [`finish`](Self::finish)); a repeating one is left
    /// `Disabled` for the caller to reschedule.
    pub fn pop_due(&mut self, now: u64, seq_limit: u64) -> Option<Due<F>> {
        let top = *self.heap.first()?;
        if top.deadline > now || top.seq >= seq_limit {
            return None;
        }
        self.remove_at(0);
        let s = &mut self.slots[top.slot as usize];
        s.state = Some(if s.interval.is_some() { TimerState::Disabled } else { TimerState::Firing });
        Some(Due {
            key: Key { slot: top.slot, generation: s.generation },
            deadline: top.deadline,
            interval: s.interval,
            callback: s.callback?,
        })
    }

    /// After a one-shot callback returned: frees the timer unless the
    /// callback re-armed, disabled or cancelled it.
    pub fn finish(&mut self, key: Key) {
        if self.state(key) == Some(TimerState::Firing) {
            self.cancel(key);
        }
    }

    fn live(&self, key: Key) -> Option<&Slot<F>> {
        let s = self.slots.get(key.slot as usize)?;
        (s.generation == key.generation && s.state.is_some()).then_some(s)
    }

    fn live_mut(&mut self, key: Key) -> Option<&mut Slot<F>> {
        let s = self.slots.get_mut(key.slot as usize)?;
        (s.generation == key.generation && s.state.is_some()).then_some(s)
    }

    fn push(&mut self, slot: u32, deadline: u64) {
        let node = Node { deadline, seq: self.seq, slot };
        self.seq += 1;
        let at = self.heap.len();
        // Cannot fail: at most T slots exist and each is in the heap once.
        if self.heap.push(node).is_err() {
            return;
        }
        self.slots[slot as usize].state = Some(TimerState::Pending);
        self.sift_up(at);
    }

    fn remove_at(&mut self, at: usize) {
        let last = self.heap.len() - 1;
        self.heap.swap(at, last);
        self.heap.pop();
        if at < last {
            self.resift(at);
        }
    }

    /// Restores heap order after the node at `at` changed: up if it now
    /// sorts before its parent, else down.
    fn resift(&mut self, at: usize) {
        if at > 0 && self.heap[at].before(&self.heap[(at - 1) / ARITY]) {
            self.sift_up(at);
        } else {
            self.sift_down(at);
        }
    }

    fn place(&mut self, at: usize) {
        let slot = self.heap[at].slot as usize;
        self.pos[slot] = at as u32;
    }

    fn sift_up(&mut self, mut at: usize) {
        let node = self.heap[at];
        while at > 0 {
            let parent = (at - 1) / ARITY;
            if !node.before(&self.heap[parent]) {
                break;
            }
            self.heap[at] = self.heap[parent];
            self.place(at);
            at = parent;
        }
        self.heap[at] = node;
        self.place(at);
    }

    fn sift_down(&mut self, mut at: usize) {
        let node = self.heap[at];
        let len = self.heap.len();
        loop {
            let first = at * ARITY + 1;
            if first >= len {
                break;
            }
            let mut best = first;
            for child in first + 1..(first + ARITY).min(len) {
                if self.heap[child].before(&self.heap[best]) {
                    best = child;
                }
            }
            if !self.heap[best].before(&node) {
                break;
            }
            self.heap[at] = self.heap[best];
            self.place(at);
            at = best;
        }
        self.heap[at] = node;
        self.place(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec as StdVec;

    fn drain(h: &mut TimerHeap<u32, 64>, now: u64) -> StdVec<u32> {
        let limit = h.next_seq();
        let mut out = StdVec::new();
        while let Some(d) = h.pop_due(now, limit) {
            out.push(d.callback);
            h.finish(d.key);
        }
        out
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
    fn due_limit_holds_back_timers_scheduled_later() {
        let mut h: TimerHeap<u32, 8> = TimerHeap::new();
        h.insert(Some(10), None, 1).unwrap();
        let limit = h.next_seq();
        h.insert(Some(10), None, 2).unwrap();
        assert_eq!(h.pop_due(10, limit).map(|d| d.callback), Some(1));
        assert!(h.pop_due(10, limit).is_none());
        assert_eq!(h.pop_due(10, h.next_seq()).map(|d| d.callback), Some(2));
    }

    #[test]
    fn disabled_timer_keeps_its_key_and_firing_one_shot_is_freed() {
        let mut h: TimerHeap<u32, 8> = TimerHeap::new();
        let k = h.insert(Some(10), None, 1).unwrap();
        assert!(h.schedule(k, None));
        assert_eq!(h.state(k), Some(TimerState::Disabled));
        assert!(h.pop_due(100, h.next_seq()).is_none());
        assert!(h.schedule(k, Some(20)));
        let d = h.pop_due(100, h.next_seq()).unwrap();
        assert_eq!(h.state(k), Some(TimerState::Firing));
        h.finish(d.key);
        assert_eq!(h.state(k), None);
        assert!(!h.cancel(k));
    }
}
