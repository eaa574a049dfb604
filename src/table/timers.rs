//! `TimerHeap`: the scheduler, an indexed 8-ary min-heap of deadlines.
//!
//! Heap nodes are 16 bytes: the deadline, a 32-bit insertion sequence
//! number and the slot index, so sifting never touches the slots. They are
//! laid out so that the eight children of a node fill one aligned pair of
//! cache lines.
//! Each slot has an 8-byte record (its generation and its heap position,
//! which also says whether it is disabled or firing, or links it into the
//! free list), so cancel and re-arm look up one small record and are
//! O(log n). Equal deadlines pop in insertion order. The sequence numbers
//! are renumbered, order kept, in the rare pass that would overflow them.
//! Never allocates, never panics; the all-zero value is the empty heap.

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

/// `Meta::pos` of a live timer that is not in the heap.
const DISABLED: u32 = u32::MAX;
const FIRING: u32 = u32::MAX - 1;

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
    const fn slot(self) -> usize {
        self.0 as u32 as usize
    }
}

/// A slot's record. The generation is odd while a timer occupies the slot
/// and even while it is free (it grows by one at each change), so a key
/// (always odd) names a live timer exactly when the generations match.
/// `pos` is the heap index of a pending timer, [`DISABLED`] or [`FIRING`];
/// in a free slot, the next free slot plus one (0 ends the list).
#[derive(Copy, Clone, Debug, Default)]
struct Meta {
    generation: u32,
    pos: u32,
}

/// What a slot holds besides its record: read when it fires.
#[derive(Copy, Clone, Debug)]
struct Payload<F> {
    /// The callback of the timer in the slot (stale while it is free).
    callback: F,
    /// Period in ns, or `ONE_SHOT`.
    interval: u64,
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

/// The heap's nodes, placed so that node 1 starts a 128-byte block: the
/// eight children of node `k` (`8k + 1 ..= 8k + 8`) then fill exactly one
/// aligned pair of cache lines (which the adjacent-line prefetchers fetch
/// together), and a step of a sift reads that pair, never three lines.
#[repr(C, align(128))]
struct Nodes<const T: usize> {
    _pad: [Node; 7],
    node: [Node; T],
}

/// A fixed-capacity timer heap.
pub struct TimerHeap<F, const T: usize> {
    heap: Nodes<T>,
    /// Nodes in the heap.
    len: usize,
    /// One record per slot.
    meta: [Meta; T],
    /// Callbacks and periods, one per slot ever used.
    payload: Vec<Payload<F>, T>,
    /// The first free slot plus one (0: none) among the first `used`.
    free: u32,
    /// Slots handed out since the table was last empty; those from here on
    /// are free, in order.
    used: u32,
    /// Allocated timers.
    live: u32,
    /// The next sequence number.
    seq: u32,
    /// Timers with a sequence number from here on were scheduled after the
    /// current pass began ([`begin_pass`](Self::begin_pass)).
    limit: u32,
}

impl<F: Copy, const T: usize> Default for TimerHeap<F, T> {
    fn default() -> Self {
        Self::new()
    }
}

const ARITY: usize = 8;

impl<F: Copy, const T: usize> TimerHeap<F, T> {
    /// An empty heap.
    pub const fn new() -> Self {
        TimerHeap {
            heap: Nodes { _pad: [Node(0); 7], node: [Node(0); T] },
            len: 0,
            meta: [Meta { generation: 0, pos: 0 }; T],
            payload: Vec::new(),
            free: 0,
            used: 0,
            live: 0,
            seq: 0,
            limit: 0,
        }
    }

    /// Allocated timers (pending, disabled or firing).
    pub fn len(&self) -> usize {
        self.live as usize
    }

    /// Whether no timer is allocated.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Timers waiting in the heap.
    pub fn pending(&self) -> usize {
        self.len
    }

    /// Marks the start of a pass: timers scheduled from now on are held
    /// back by [`pop_due`](Self::pop_due) until the next `begin_pass`.
    pub fn begin_pass(&mut self) {
        self.limit = self.seq;
    }

    /// The earliest pending deadline.
    #[inline]
    pub fn peek_deadline(&self) -> Option<u64> {
        if self.len > 0 { self.heap.node.first().map(|n| n.deadline()) } else { None }
    }

    /// Allocates a timer; schedules it at `deadline` unless that is `None`
    /// (then it starts `Disabled`). `Capacity` when full.
    #[inline]
    pub fn insert(&mut self, deadline: Option<u64>, interval: Option<u64>, callback: F) -> Result<Key, Error> {
        let interval = interval.map_or(ONE_SHOT, |i| i.min(ONE_SHOT - 1));
        let payload = Payload { callback, interval };
        let slot = if self.free != 0 {
            let slot = self.free - 1;
            let Some(m) = self.meta.get(slot as usize) else { return Err(Error::Capacity) };
            self.free = m.pos;
            slot
        } else if (self.used as usize) < T {
            self.used += 1;
            self.used - 1
        } else {
            return Err(Error::Capacity);
        };
        // Every slot below `payload.len()` has been used before.
        match self.payload.get_mut(slot as usize) {
            Some(p) => *p = payload,
            None => {
                if self.payload.push(payload).is_err() {
                    return Err(Error::Capacity);
                }
            }
        }
        self.live += 1;
        let Some(m) = self.meta.get_mut(slot as usize) else { return Err(Error::Capacity) };
        m.generation = m.generation.wrapping_add(1);
        let key = Key { slot, generation: m.generation };
        match deadline {
            // `push` records the position.
            Some(d) => self.push(slot, d),
            None => m.pos = DISABLED,
        }
        Ok(key)
    }

    /// The state of the timer with this key; `None` if the key is stale.
    pub fn state(&self, key: Key) -> Option<TimerState> {
        match self.live(key)?.pos {
            DISABLED => Some(TimerState::Disabled),
            FIRING => Some(TimerState::Firing),
            _ => Some(TimerState::Pending),
        }
    }

    /// The period of a live timer (`Some(None)` for a one-shot).
    pub fn interval(&self, key: Key) -> Option<Option<u64>> {
        self.live(key)?;
        let p = self.payload.get(key.slot as usize)?;
        Some((p.interval != ONE_SHOT).then_some(p.interval))
    }

    /// The deadline of a pending timer.
    pub fn deadline(&self, key: Key) -> Option<u64> {
        let at = self.live(key)?.pos as usize;
        self.heap.node.get(..self.len)?.get(at).map(|n| n.deadline())
    }

    /// Frees the timer. Returns whether the key named a live timer; a stale
    /// key never touches the slot's new occupant.
    #[inline]
    pub fn cancel(&mut self, key: Key) -> bool {
        let Some(m) = self.live(key) else { return false };
        let at = m.pos as usize;
        if at < self.len {
            self.remove_at(at);
        }
        self.free_slot(key.slot);
        true
    }

    /// Moves a live timer to `deadline` (or disables it with `None`),
    /// keeping its key. It sorts after every timer scheduled before.
    #[inline]
    pub fn schedule(&mut self, key: Key, deadline: Option<u64>) -> bool {
        if self.seq == u32::MAX {
            // Before the lookup: renumbering rebuilds the heap.
            self.renumber();
        }
        let Some(m) = self.live(key) else { return false };
        let at = m.pos as usize;
        let pending = at < self.len;
        match deadline {
            Some(d) if pending => {
                // Re-arm in place: one sift instead of a removal and an
                // insertion. The sequence number cannot overflow here: it
                // was renumbered above if it was about to.
                let seq = self.seq;
                self.seq = seq.wrapping_add(1);
                let node = Node::new(d, seq, key.slot);
                let len = self.len;
                let Some(heap) = self.heap.node.get_mut(..len) else { return true };
                // The node rises if it sorts before its parent and otherwise
                // sinks as far as it must: parent <= old node <= children, so
                // that is the decision a comparison with the old node would
                // make, without reading the old node. Its line is then not
                // waited for before the parent's or the children's: re-arm
                // at 100k timers took 15% less time (ARCHITECTURE.md).
                reposition(heap, &mut self.meta, at, node);
            }
            _ => {
                if pending {
                    self.remove_at(at);
                }
                self.set_pos(key.slot, DISABLED);
                if let Some(d) = deadline {
                    self.push(key.slot, d);
                }
            }
        }
        true
    }

    /// Changes the period of a live timer (not its next deadline).
    pub fn set_interval(&mut self, key: Key, interval: Option<u64>) -> bool {
        if self.live(key).is_none() {
            return false;
        }
        match self.payload.get_mut(key.slot as usize) {
            Some(p) => {
                p.interval = interval.map_or(ONE_SHOT, |i| i.min(ONE_SHOT - 1));
                true
            }
            None => false,
        }
    }

    /// A live timer's callback.
    pub fn callback(&self, key: Key) -> Option<F> {
        self.live(key)?;
        self.payload.get(key.slot as usize).map(|p| p.callback)
    }

    /// Changes the callback of a live timer.
    pub fn set_callback(&mut self, key: Key, callback: F) -> bool {
        if self.live(key).is_none() {
            return false;
        }
        match self.payload.get_mut(key.slot as usize) {
            Some(p) => {
                p.callback = callback;
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
        if self.len == 0 {
            return None;
        }
        let top = *self.heap.node.first()?;
        if top.deadline() > now || top.seq() >= self.limit {
            return None;
        }
        self.remove_at(0);
        let slot = top.slot();
        let p = *self.payload.get(slot)?;
        let m = self.meta.get_mut(slot)?;
        let one_shot = p.interval == ONE_SHOT;
        m.pos = if one_shot { FIRING } else { DISABLED };
        Some(Due {
            key: Key { slot: slot as u32, generation: m.generation },
            deadline: top.deadline(),
            interval: (!one_shot).then_some(p.interval),
            callback: p.callback,
        })
    }

    /// After a one-shot callback returned: frees the timer unless the
    /// callback re-armed, disabled or cancelled it.
    #[inline]
    pub fn finish(&mut self, key: Key) {
        if self.live(key).is_some_and(|m| m.pos == FIRING) {
            self.free_slot(key.slot);
        }
    }

    /// The record of the live timer `key` names.
    #[inline]
    fn live(&self, key: Key) -> Option<Meta> {
        let m = *self.meta.get(key.slot as usize)?;
        // Free slots have even generations, keys odd ones.
        (m.generation == key.generation && m.generation & 1 == 1).then_some(m)
    }

    #[inline]
    fn set_pos(&mut self, slot: u32, pos: u32) {
        if let Some(m) = self.meta.get_mut(slot as usize) {
            m.pos = pos;
        }
    }

    /// Frees a slot that is out of the heap. When the table becomes empty,
    /// the free list starts over (in O(1): every slot is free and unused
    /// again), so a table reused after being emptied in a scrambled order
    /// hands out slots in memory order again.
    #[inline]
    fn free_slot(&mut self, slot: u32) {
        let Some(m) = self.meta.get_mut(slot as usize) else { return };
        m.generation = m.generation.wrapping_add(1);
        self.live -= 1;
        if self.live == 0 {
            self.free = 0;
            self.used = 0;
        } else {
            m.pos = self.free;
            self.free = slot + 1;
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
    /// keeping which of them were scheduled before the current pass. Small
    /// rather than fast (it runs once per four billion schedules): one
    /// heapsort by sequence number, then one by node, whose sorted result is
    /// a valid heap.
    #[cold]
    #[inline(never)]
    fn renumber(&mut self) {
        let len = self.len;
        let Some(nodes) = self.heap.node.get_mut(..len) else { return };
        // (sequence, slot, deadline) from the top bits: sorts by sequence.
        for n in nodes.iter_mut() {
            *n = Node(n.0.rotate_left(64));
        }
        heapsort(nodes);
        let mut limit = 0;
        for (i, n) in nodes.iter_mut().enumerate() {
            let old = Node(n.0.rotate_right(64));
            if old.seq() < self.limit {
                limit = i + 1;
            }
            *n = Node::new(old.deadline(), i as u32, old.slot() as u32);
        }
        heapsort(nodes);
        for (at, n) in nodes.iter().enumerate() {
            if let Some(m) = self.meta.get_mut(n.slot()) {
                m.pos = at as u32;
            }
        }
        self.seq = len as u32;
        self.limit = limit as u32;
    }

    #[inline]
    fn push(&mut self, slot: u32, deadline: u64) {
        let node = Node::new(deadline, self.next_seq(), slot);
        let at = self.len;
        // Cannot fail: at most T slots exist and each is in the heap once.
        let Some(heap) = self.heap.node.get_mut(..at + 1) else { return };
        self.len = at + 1;
        rise(heap, &mut self.meta, at, node);
    }

    /// Takes the node at `at` out (Floyd's way: the hole goes down the path
    /// of smaller children to the bottom, comparing children only, and the
    /// last node is sifted up from there; it usually belongs near the
    /// bottom, so this saves a compare per level over a plain sift-down).
    #[inline]
    fn remove_at(&mut self, at: usize) {
        let Some(heap) = self.heap.node.get_mut(..self.len) else { return };
        let Some((&mut last, heap)) = heap.split_last_mut() else { return };
        self.len = heap.len();
        if at >= heap.len() {
            return;
        }
        // Measured against putting `last` in the hole and repositioning it
        // as a re-arm does: 3 fewer instructions per cancel, but 3-6% more
        // time at 1k-100k (its rise-or-sink branch is the harder to predict).
        let hole = descend(heap, &mut self.meta, at);
        sift_up(heap, &mut self.meta, hole, last);
    }
}

/// Puts `node` where it belongs, starting at `at` (whose old node is being
/// replaced): up if it sorts before the parent, else down as far as it must.
#[inline(always)]
fn reposition<const T: usize>(heap: &mut [Node], meta: &mut [Meta; T], at: usize, node: Node) {
    // The root has no parent: the index wraps to one no heap has.
    let parent = at.wrapping_sub(1) / ARITY;
    match heap.get(parent) {
        Some(&up) if node < up => {
            if let Some(h) = heap.get_mut(at) {
                *h = up;
            }
            place(meta, up, at);
            sift_up(heap, meta, parent, node);
        }
        _ => sift_down(heap, meta, at, node),
    }
}

/// Sorts `v` ascending (a binary heapsort: little code, no allocation).
fn heapsort(v: &mut [Node]) {
    /// Sinks `v[root]` within `v` (a max-heap).
    fn sift(v: &mut [Node], mut root: usize) {
        loop {
            let child = 2 * root + 1;
            let pick = match (v.get(child), v.get(child + 1)) {
                (Some(a), Some(b)) if a < b => child + 1,
                (Some(_), _) => child,
                _ => return,
            };
            match (v.get(root), v.get(pick)) {
                (Some(&r), Some(&c)) if r < c => {
                    if let Some(x) = v.get_mut(root) {
                        *x = c;
                    }
                    if let Some(x) = v.get_mut(pick) {
                        *x = r;
                    }
                    root = pick;
                }
                _ => return,
            }
        }
    }
    for i in (0..v.len() / 2).rev() {
        sift(v, i);
    }
    let mut rest = v;
    while let Some((last, init)) = rest.split_last_mut() {
        if let Some(first) = init.first_mut() {
            core::mem::swap(first, last);
        }
        sift(init, 0);
        rest = init;
    }
}

/// The index of the smallest of the (at most eight) children from `first`.
#[inline(always)]
fn smallest_child(heap: &[Node], first: usize) -> Option<usize> {
    if let Some(k) = heap.get(first..first + ARITY) {
        // All eight: the smaller of each pair, then of those, and so on.
        let a = usize::from(k[1] < k[0]);
        let b = 2 + usize::from(k[3] < k[2]);
        let c = 4 + usize::from(k[5] < k[4]);
        let d = 6 + usize::from(k[7] < k[6]);
        let ab = if k[b] < k[a] { b } else { a };
        let cd = if k[d] < k[c] { d } else { c };
        return Some(first + if k[cd] < k[ab] { cd } else { ab });
    }
    let rest = heap.get(first..)?;
    let (mut best, mut least) = (0, *rest.first()?);
    for (i, &n) in rest.iter().enumerate().skip(1) {
        if n < least {
            (best, least) = (i, n);
        }
    }
    Some(first + best)
}

/// Records that the node of `slot` is now at `at`.
#[inline(always)]
fn place<const T: usize>(meta: &mut [Meta; T], node: Node, at: usize) {
    if let Some(m) = meta.get_mut(node.slot()) {
        m.pos = at as u32;
    }
}

/// Puts `node` at `at` or above, where it belongs.
#[inline(always)]
fn sift_up<const T: usize>(heap: &mut [Node], meta: &mut [Meta; T], at: usize, node: Node) {
    let mut at = at;
    while at > 0 {
        let parent = (at - 1) / ARITY;
        let Some(&up) = heap.get(parent) else { break };
        if node >= up {
            break;
        }
        if let Some(h) = heap.get_mut(at) {
            *h = up;
        }
        place(meta, up, at);
        at = parent;
    }
    if let Some(h) = heap.get_mut(at) {
        *h = node;
    }
    place(meta, node, at);
}

/// [`sift_up`] for a new node at the bottom, whose first step goes either
/// way about as often: it is taken without a branch on the comparison, so
/// the first branch is the second step's, which is rarely taken. (The node
/// sorts before its grandparent only if it also sorts before its parent,
/// which never sorts before the grandparent.)
#[inline(always)]
fn rise<const T: usize>(heap: &mut [Node], meta: &mut [Meta; T], at: usize, node: Node) {
    let parent = at.wrapping_sub(1) / ARITY;
    let Some(&up) = heap.get(parent) else {
        // The root (or no such node): nothing to compare with.
        return sift_up(heap, meta, at, node);
    };
    let below = node < up;
    let stays = if below { up } else { node };
    if let Some(h) = heap.get_mut(at) {
        *h = stays;
    }
    place(meta, stays, at);
    let at = if below { parent } else { at };
    // Never below the grandparent unless below the parent (see above).
    let grandparent = parent.wrapping_sub(1) / ARITY;
    if heap.get(grandparent).is_some_and(|&g| node < g) {
        sift_up(heap, meta, parent, node);
    } else {
        if let Some(h) = heap.get_mut(at) {
            *h = node;
        }
        place(meta, node, at);
    }
}

/// Puts `node` at `at` or below, where it belongs.
#[inline(always)]
fn sift_down<const T: usize>(heap: &mut [Node], meta: &mut [Meta; T], at: usize, node: Node) {
    let mut at = at;
    while let Some(best) = smallest_child(heap, at * ARITY + 1) {
        let Some(&down) = heap.get(best) else { break };
        if down >= node {
            break;
        }
        if let Some(h) = heap.get_mut(at) {
            *h = down;
        }
        place(meta, down, at);
        at = best;
    }
    if let Some(h) = heap.get_mut(at) {
        *h = node;
    }
    place(meta, node, at);
}

/// Moves the hole at `at` down to the bottom along the smaller children,
/// moving each up one level; returns where the hole ended.
#[inline(always)]
fn descend<const T: usize>(heap: &mut [Node], meta: &mut [Meta; T], at: usize) -> usize {
    let mut at = at;
    while let Some(best) = smallest_child(heap, at * ARITY + 1) {
        let Some(&down) = heap.get(best) else { break };
        if let Some(h) = heap.get_mut(at) {
            *h = down;
        }
        place(meta, down, at);
        at = best;
    }
    at
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
    fn the_children_of_every_node_fill_one_pair_of_cache_lines() {
        let h: std::boxed::Box<TimerHeap<u32, 64>> = std::boxed::Box::default();
        for k in 0..7 {
            let first = core::ptr::addr_of!(h.heap.node[ARITY * k + 1]) as usize;
            let last = core::ptr::addr_of!(h.heap.node[ARITY * k + ARITY]) as usize;
            assert_eq!(first % 128, 0, "children of {k}");
            assert_eq!(first / 128, last / 128);
        }
    }

    #[test]
    fn a_key_that_was_never_issued_touches_nothing() {
        let mut h: TimerHeap<u32, 4> = TimerHeap::new();
        let live = h.insert(Some(5), None, 1).unwrap();
        assert!(h.cancel(live));
        // Free slots have even generations; no key of those was issued.
        for generation in 0..4 {
            let forged = Key { slot: live.slot, generation };
            assert!(!h.cancel(forged) && !h.schedule(forged, Some(1)) && h.state(forged).is_none());
        }
        assert!(h.is_empty());
        assert_eq!(h.pending(), 0);
    }

    /// The heap property (every node sorts after its parent) and every
    /// pending timer's recorded position.
    fn check_heap<const N: usize>(h: &TimerHeap<u32, N>) {
        let nodes = &h.heap.node[..h.len];
        for (i, n) in nodes.iter().enumerate() {
            if i > 0 {
                assert!(nodes[(i - 1) / ARITY] < *n, "node {i} sorts before its parent");
            }
            assert_eq!(h.meta[n.slot()].pos as usize, i, "position of slot {}", n.slot());
        }
    }

    /// Random inserts, cancels, re-arms, disables and pops against a
    /// sorted model, checked after every step.
    #[test]
    fn random_operations_match_a_sorted_model() {
        // Under Miri, a shorter run: every step is interpreted.
        let steps = if cfg!(miri) { 3_000 } else { 20_000 };
        random_operations::<48>(0x1234_5678_9abc_def0, steps, 200);
    }

    /// The same on a heap five levels deep (deadlines far enough apart that
    /// it fills up), so that the sift paths that look past the parent
    /// (insert's and re-arm's) run at every depth.
    #[test]
    fn random_operations_on_a_deep_heap_match_a_sorted_model() {
        // Under Miri, a shorter run (the heap then stays shallower).
        let steps = if cfg!(miri) { 600 } else { 30_000 };
        let deepest = random_operations::<700>(0x0fed_cba9_8765_4321, steps, 20_000);
        // Five levels hold at least 1 + 8 + 64 + 512 + 1 nodes.
        assert!(cfg!(miri) || deepest > 585, "the heap never got deep: {deepest} nodes at most");
    }

    /// `steps` random operations on a heap of `N` slots, deadlines up to
    /// `span` ahead; the heap and its positions checked after every step.
    /// Returns the most timers that were pending at once.
    fn random_operations<const N: usize>(seed: u64, steps: usize, span: u64) -> usize {
        let mut h: std::boxed::Box<TimerHeap<u32, N>> = std::boxed::Box::default();
        let mut state = seed;
        let mut rnd = |m: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % m
        };
        // (deadline, seq, id) of every pending timer; keys by id.
        let mut model: std::collections::BTreeSet<(u64, u64, u32)> = Default::default();
        let mut keys: std::collections::HashMap<u32, (Key, Option<(u64, u64)>)> = Default::default();
        let (mut seq, mut next_id, mut now) = (0u64, 0u32, 0u64);
        let mut deepest = 0;
        for step in 0..steps {
            if step % 997 == 0 {
                // Force the renumbering now and then (order must survive it).
                h.seq = u32::MAX - rnd(2) as u32;
            }
            match rnd(10) {
                0..=3 => {
                    let d = now + rnd(span);
                    match h.insert(Some(d), None, next_id) {
                        Ok(k) => {
                            model.insert((d, seq, next_id));
                            keys.insert(next_id, (k, Some((d, seq))));
                            seq += 1;
                            next_id += 1;
                        }
                        Err(e) => assert_eq!((e, keys.len()), (Error::Capacity, N)),
                    }
                }
                4 | 5 if !keys.is_empty() => {
                    let id = *keys.keys().nth(rnd(keys.len() as u64) as usize).unwrap();
                    let (k, p) = keys.remove(&id).unwrap();
                    if let Some((d, s)) = p {
                        assert!(model.remove(&(d, s, id)));
                    }
                    assert!(h.cancel(k) && !h.cancel(k));
                }
                6 | 7 if !keys.is_empty() => {
                    let id = *keys.keys().nth(rnd(keys.len() as u64) as usize).unwrap();
                    let (k, p) = keys[&id];
                    if let Some((d, s)) = p {
                        assert!(model.remove(&(d, s, id)));
                    }
                    let new = if rnd(8) == 0 { None } else { Some(now + rnd(span)) };
                    assert!(h.schedule(k, new));
                    let p = new.map(|d| {
                        model.insert((d, seq, id));
                        seq += 1;
                        (d, seq - 1)
                    });
                    keys.insert(id, (k, p));
                }
                _ => {
                    now += rnd(20);
                    h.begin_pass();
                    while let Some(due) = h.pop_due(now) {
                        let first = *model.iter().next().unwrap();
                        assert_eq!((due.deadline, due.callback), (first.0, first.2), "step {step}");
                        model.remove(&first);
                        assert_eq!(keys[&due.callback].0, due.key);
                        h.finish(due.key);
                        keys.remove(&due.callback);
                    }
                    assert!(model.iter().next().is_none_or(|m| m.0 > now));
                }
            }
            // (Under Miri every 16th step, to keep its run short.)
            if !cfg!(miri) || step % 16 == 0 {
                check_heap::<N>(&h);
            }
            deepest = deepest.max(h.pending());
            assert_eq!(h.len(), keys.len());
            assert_eq!(h.pending(), model.len());
            assert_eq!(h.peek_deadline(), model.iter().next().map(|m| m.0));
            for (id, (k, p)) in &keys {
                assert_eq!(h.deadline(*k), p.map(|p| p.0), "timer {id}");
                assert_eq!(h.callback(*k), Some(*id));
            }
        }
        deepest
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
