//! `WatcherTable`: one watcher per fd, found by key or by fd number.
//!
//! Slots are reused through a free list; every change of occupant bumps the
//! slot's generation, so keys of removed or replaced watchers go stale. The
//! fd index is an open-addressing table of its own (no panic path, so a
//! static binary that never panics carries no formatting code for one). It
//! never allocates and reports a full table as `Error::Capacity`.

use super::key::Key;
use crate::error::Error;
use crate::interest::{Interest, Trigger};
use crate::sys::RawFd;
use heapless::Vec;

/// One watched fd.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Watcher<F> {
    /// The fd number.
    pub fd: RawFd,
    /// Enabled sides.
    pub interest: Interest,
    /// Level, edge or oneshot.
    pub trigger: Trigger,
    /// Whether the kernel currently holds a registration for it (an empty
    /// interest is taken out of the kernel, since epoll reports errors and
    /// hang-ups even for an empty mask).
    pub registered: bool,
    /// The callback.
    pub callback: F,
    /// User data handed back in every event.
    pub data: u64,
}

#[derive(Copy, Clone, Debug)]
struct Slot<F> {
    generation: u32,
    watcher: Option<Watcher<F>>,
}

/// A fixed-capacity table of watchers, at most one per fd.
///
/// `W` must be a power of two (the fd index is a heapless `FnvIndexMap`);
/// this is checked when the table is built in a const context.
pub struct WatcherTable<F, const W: usize> {
    slots: Vec<Slot<F>, W>,
    free: Vec<u32, W>,
    by_fd: FdIndex<W>,
}

/// fd -> slot: open addressing with linear probing over `W` cells (`W` a
/// power of two, so `& (W - 1)` keeps every index in range), deletion by
/// backward shift. A cell is `(fd, slot + 1)`; `slot + 1 == 0` is empty, so
/// the all-zero table is the empty one.
struct FdIndex<const W: usize> {
    cells: [(RawFd, u32); W],
    len: usize,
}

impl<const W: usize> FdIndex<W> {
    const fn new() -> Self {
        FdIndex { cells: [(0, 0); W], len: 0 }
    }

    fn home(fd: RawFd) -> usize {
        let h = (fd as u32).wrapping_mul(0x9e37_79b9);
        ((h >> 16) ^ h) as usize & (W - 1)
    }

    /// The cell holding `fd`, if any.
    fn find(&self, fd: RawFd) -> Option<usize> {
        let home = Self::home(fd);
        for i in 0..W {
            let at = (home + i) & (W - 1);
            let (f, s) = self.cells[at];
            if s == 0 {
                return None;
            }
            if f == fd {
                return Some(at);
            }
        }
        None
    }

    fn get(&self, fd: RawFd) -> Option<u32> {
        self.find(fd).map(|at| self.cells[at & (W - 1)].1.wrapping_sub(1))
    }

    /// Sets `fd`'s slot; `Err` when `fd` is new and every cell is taken.
    fn insert(&mut self, fd: RawFd, slot: u32) -> Result<(), ()> {
        let home = Self::home(fd);
        for i in 0..W {
            let cell = &mut self.cells[(home + i) & (W - 1)];
            if cell.1 == 0 || cell.0 == fd {
                if cell.1 == 0 {
                    self.len += 1;
                }
                *cell = (fd, slot + 1);
                return Ok(());
            }
        }
        Err(())
    }

    fn remove(&mut self, fd: RawFd) {
        let Some(mut hole) = self.find(fd) else { return };
        self.len -= 1;
        // Move back every later entry of the run that may not stay behind
        // the hole (its home is not cyclically in `(hole, at]`).
        let mut at = hole;
        for _ in 1..W {
            at = (at + 1) & (W - 1);
            let (f, s) = self.cells[at];
            if s == 0 {
                break;
            }
            let home = Self::home(f);
            let stays = if hole <= at { hole < home && home <= at } else { hole < home || home <= at };
            if !stays {
                self.cells[hole & (W - 1)] = (f, s);
                hole = at;
            }
        }
        self.cells[hole & (W - 1)] = (0, 0);
    }

    fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.cells.iter().filter(|c| c.1 != 0).map(|c| c.1 - 1)
    }
}

impl<F: Copy, const W: usize> Default for WatcherTable<F, W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: Copy, const W: usize> WatcherTable<F, W> {
    /// An empty table.
    pub const fn new() -> Self {
        WatcherTable { slots: Vec::new(), free: Vec::new(), by_fd: FdIndex::new() }
    }

    /// Number of live watchers.
    pub fn len(&self) -> usize {
        self.by_fd.len
    }

    /// Whether no watcher is live.
    pub fn is_empty(&self) -> bool {
        self.by_fd.len == 0
    }

    /// The key of the live watcher on `fd`, if any.
    pub fn key_of_fd(&self, fd: RawFd) -> Option<Key> {
        let slot = self.by_fd.get(fd)?;
        Some(Key { slot, generation: self.slots.get(slot as usize)?.generation })
    }

    /// The key a watcher on `fd` would get from [`insert`](Self::insert)
    /// now: the same slot with a new generation when `fd` is watched (a
    /// replacement), a free slot otherwise. `Capacity` when there is none.
    /// Lets the caller register with the kernel before changing the table.
    pub fn next_key(&self, fd: RawFd) -> Result<Key, Error> {
        let slot = match self.by_fd.get(fd) {
            Some(slot) => slot,
            None => match self.free.last() {
                Some(&slot) => slot,
                None if self.slots.len() < W => self.slots.len() as u32,
                None => return Err(Error::Capacity),
            },
        };
        let generation = self.slots.get(slot as usize).map_or(0, |s| s.generation).wrapping_add(1);
        Ok(Key { slot, generation })
    }

    /// Inserts `watcher`, replacing the one on the same fd. Returns its key
    /// (equal to what [`next_key`](Self::next_key) said) and the replaced watcher.
    pub fn insert(&mut self, watcher: Watcher<F>) -> Result<(Key, Option<Watcher<F>>), Error> {
        let key = self.next_key(watcher.fd)?;
        let slot = key.slot as usize;
        let replaced = if slot < self.slots.len() {
            if self.free.last() == Some(&key.slot) && self.by_fd.find(watcher.fd).is_none() {
                self.free.pop();
            }
            let Some(s) = self.slots.get_mut(slot) else { return Err(Error::Capacity) };
            s.generation = key.generation;
            s.watcher.replace(watcher)
        } else {
            let fresh = Slot { generation: key.generation, watcher: Some(watcher) };
            self.slots.push(fresh).map_err(|_| Error::Capacity)?;
            None
        };
        if replaced.is_none() {
            // Cannot fail: the index holds at most one entry per live slot.
            self.by_fd.insert(watcher.fd, key.slot).map_err(|_| Error::Capacity)?;
        }
        Ok((key, replaced))
    }

    /// The live watcher with this key; `None` for a stale or unknown key.
    pub fn get(&self, key: Key) -> Option<&Watcher<F>> {
        let s = self.slots.get(key.slot as usize)?;
        if s.generation == key.generation { s.watcher.as_ref() } else { None }
    }

    /// Mutable access to the live watcher with this key.
    pub fn get_mut(&mut self, key: Key) -> Option<&mut Watcher<F>> {
        let s = self.slots.get_mut(key.slot as usize)?;
        if s.generation == key.generation { s.watcher.as_mut() } else { None }
    }

    /// Removes the watcher with this key; `None` when the key is stale.
    pub fn remove(&mut self, key: Key) -> Option<Watcher<F>> {
        let s = self.slots.get_mut(key.slot as usize)?;
        if s.generation != key.generation {
            return None;
        }
        let w = s.watcher.take()?;
        s.generation = s.generation.wrapping_add(1);
        self.by_fd.remove(w.fd);
        // Cannot fail: a slot is on the free list at most once and there are
        // at most W slots.
        let _ = self.free.push(key.slot);
        Some(w)
    }

    /// How many slots have ever been used (live or free); with
    /// [`key_at`](Self::key_at), a way to visit every watcher without
    /// collecting keys.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The key of the live watcher in slot `slot`, if any.
    pub fn key_at(&self, slot: usize) -> Option<Key> {
        let s = self.slots.get(slot)?;
        s.watcher.as_ref().map(|_| Key { slot: slot as u32, generation: s.generation })
    }

    /// Every live watcher's key.
    pub fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        self.by_fd.slots().filter_map(|slot| Some(Key { slot, generation: self.slots.get(slot as usize)?.generation }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(fd: RawFd, data: u64) -> Watcher<()> {
        Watcher { fd, interest: Interest::READ, trigger: Trigger::Level, registered: true, callback: (), data }
    }

    #[test]
    fn replacing_an_fd_keeps_the_slot_and_stales_the_old_key() {
        let mut t: WatcherTable<(), 4> = WatcherTable::new();
        let (a, none) = t.insert(w(5, 1)).unwrap();
        assert!(none.is_none());
        let (b, old) = t.insert(w(5, 2)).unwrap();
        assert_eq!(old.map(|o| o.data), Some(1));
        assert_eq!(a.slot, b.slot);
        assert!(t.get(a).is_none());
        assert_eq!(t.get(b).map(|x| x.data), Some(2));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn removed_key_never_resolves_even_after_reuse() {
        let mut t: WatcherTable<(), 2> = WatcherTable::new();
        let (a, _) = t.insert(w(3, 0)).unwrap();
        assert!(t.remove(a).is_some());
        assert!(t.remove(a).is_none());
        let (b, _) = t.insert(w(3, 0)).unwrap();
        assert_eq!(a.slot, b.slot);
        assert_ne!(a, b);
        assert!(t.get(a).is_none());
        assert_eq!(t.key_of_fd(3), Some(b));
    }

    #[test]
    fn full_table_is_capacity_and_loses_nothing() {
        let mut t: WatcherTable<(), 2> = WatcherTable::new();
        let (a, _) = t.insert(w(1, 1)).unwrap();
        let (b, _) = t.insert(w(2, 2)).unwrap();
        assert_eq!(t.next_key(3), Err(Error::Capacity));
        assert_eq!(t.insert(w(3, 3)).err(), Some(Error::Capacity));
        assert_eq!(t.get(a).map(|x| x.data), Some(1));
        assert_eq!(t.get(b).map(|x| x.data), Some(2));
        // Replacing a watched fd needs no new slot, so it works when full.
        assert!(t.insert(w(2, 9)).is_ok());
        assert_eq!(t.len(), 2);
    }

    #[test]
    // Four minutes under Miri even shortened; the index has no unsafe code,
    // and the dispatch_table fuzz target drives it against a model.
    #[cfg_attr(miri, ignore = "minutes under Miri; fuzzed by dispatch_table")]
    fn the_fd_index_survives_collisions_and_removal_in_any_order() {
        const W: usize = 16;
        let mut state = 7u32;
        for round in 0..40 {
            let mut t: WatcherTable<(), W> = WatcherTable::new();
            let mut model: std::collections::HashMap<RawFd, Key> = Default::default();
            for _ in 0..300 {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                // Few distinct fds: many collisions, replacements and removals.
                let fd = ((state >> 8) % 40) as RawFd * if round % 2 == 0 { 1 } else { 16 };
                if (state >> 20).is_multiple_of(3) {
                    if let Some(k) = model.remove(&fd) {
                        assert!(t.remove(k).is_some());
                    }
                } else if model.len() < W || model.contains_key(&fd) {
                    let (k, _) = t.insert(w(fd, 0)).unwrap();
                    model.insert(fd, k);
                } else {
                    assert_eq!(t.insert(w(fd, 0)).err(), Some(Error::Capacity));
                }
                assert_eq!(t.len(), model.len());
                for (fd, k) in &model {
                    assert_eq!(t.key_of_fd(*fd), Some(*k));
                }
                for fd in 0..640 {
                    assert_eq!(t.key_of_fd(fd).is_some(), model.contains_key(&fd));
                }
                assert_eq!(t.keys().count(), model.len());
            }
        }
    }

    #[test]
    fn next_key_predicts_insert() {
        let mut t: WatcherTable<(), 4> = WatcherTable::new();
        for fd in [4, 9, 4, 2] {
            let predicted = t.next_key(fd).unwrap();
            let (k, _) = t.insert(w(fd, 0)).unwrap();
            assert_eq!(predicted, k);
        }
        let k = t.key_of_fd(9).unwrap();
        t.remove(k);
        let predicted = t.next_key(11).unwrap();
        assert_eq!(predicted.slot, k.slot);
        assert_eq!(t.insert(w(11, 0)).unwrap().0, predicted);
    }
}
