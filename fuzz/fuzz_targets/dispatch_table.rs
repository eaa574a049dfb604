//! The dispatch table (`WatcherTable`) against a plain model: fd ->
//! (generation count, data).
//!
//! Checked after every step: a stale key (removed, replaced, or of a reused
//! fd number) never resolves, a live key always does and to the right
//! watcher, `next_key` predicts `insert`, the fd index and the walk by slot
//! agree with the keys, keys stay out of the reserved range and survive the
//! kernel's u64, and insert is `Capacity` exactly when a new fd finds the
//! table full.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use linux_event::table::{Key, Watcher, WatcherTable};
use linux_event::{Error, Interest, Trigger};
use std::collections::{BTreeMap, BTreeSet};

const CAP: usize = 8;
/// Fd numbers used: more than CAP, so the table fills and numbers get reused.
const FDS: u8 = 12;
const MAX_OPS: usize = 512;

#[derive(Arbitrary, Debug)]
enum Op {
    /// Watch `fd` (replacing its watcher if it has one).
    Insert { fd: u8, data: u64, callback: u32, interest: u8 },
    /// Remove by a key picked from every key ever issued, live or stale.
    Remove(u8),
    /// Remove the live watcher of `fd` through `key_of_fd`, as `unwatch` does.
    RemoveFd(u8),
    /// Change the data of a watcher through `get_mut` (live or stale key).
    SetData { key: u8, data: u64 },
}

#[derive(Debug, Clone, Copy)]
struct MWatcher {
    /// How many watchers this fd number has had, this one included.
    generation: u64,
    key: Key,
    data: u64,
    callback: u32,
    interest: Interest,
}

#[derive(Default)]
struct Model {
    live: BTreeMap<i32, MWatcher>,
    /// Every key handed out: (key, fd, generation count of the fd then).
    issued: Vec<(Key, i32, u64)>,
    generations: BTreeMap<i32, u64>,
}

impl Model {
    fn pick(&self, i: u8) -> Option<(Key, i32, u64)> {
        if self.issued.is_empty() { None } else { Some(self.issued[usize::from(i) % self.issued.len()]) }
    }

    fn is_live(&self, key: Key, fd: i32, generation: u64) -> bool {
        self.live.get(&fd).is_some_and(|w| w.generation == generation && w.key == key)
    }
}

fn watcher(fd: i32, m: &MWatcher) -> Watcher<u32> {
    Watcher { fd, interest: m.interest, trigger: Trigger::Level, registered: true, callback: m.callback, data: m.data }
}

fn check(t: &WatcherTable<u32, CAP>, m: &Model) {
    assert_eq!(t.len(), m.live.len());
    assert_eq!(t.is_empty(), m.live.is_empty());
    for &(key, fd, generation) in &m.issued {
        if m.is_live(key, fd, generation) {
            let want = watcher(fd, &m.live[&fd]);
            assert_eq!(t.get(key), Some(&want), "live key {key:?} of fd {fd}");
        } else {
            assert_eq!(t.get(key), None, "stale key {key:?} of fd {fd} (generation {generation}) resolves");
        }
    }
    let mut slots = BTreeSet::new();
    for fd in 0..i32::from(FDS) {
        let key = t.key_of_fd(fd);
        assert_eq!(key, m.live.get(&fd).map(|w| w.key), "key_of_fd({fd})");
        if let Some(k) = key {
            assert!((k.slot as usize) < CAP);
            assert!(slots.insert(k.slot), "two live watchers share slot {}", k.slot);
        }
    }
    let keys: BTreeSet<(u32, u32)> = t.keys().map(|k| (k.slot, k.generation)).collect();
    let want: BTreeSet<(u32, u32)> = m.live.values().map(|w| (w.key.slot, w.key.generation)).collect();
    assert_eq!(keys, want, "keys() disagrees with the live watchers");
    // Visiting by slot (how the loop walks its pid watchers) finds the same.
    assert!(t.slot_count() <= CAP);
    let by_slot: BTreeSet<(u32, u32)> =
        (0..t.slot_count()).filter_map(|s| t.key_at(s)).map(|k| (k.slot, k.generation)).collect();
    assert_eq!(by_slot, want, "key_at() disagrees with the live watchers");
    assert_eq!(t.key_at(t.slot_count()), None);
    for w in m.live.values() {
        assert_eq!(w.key.reserved_index(), None, "a watcher key in the reserved range");
        assert_eq!(Key::from_u64(w.key.to_u64()), w.key, "a key survives the kernel's u64");
    }
    for fd in 0..i32::from(FDS) {
        let predicted = t.next_key(fd);
        if !m.live.contains_key(&fd) && m.live.len() == CAP {
            assert_eq!(predicted, Err(Error::Capacity));
        } else {
            let k = predicted.expect("room for fd");
            assert!(m.issued.iter().all(|(old, _, _)| *old != k), "next_key({fd}) predicts a key already issued");
        }
    }
}

fn remove(t: &mut WatcherTable<u32, CAP>, m: &mut Model, key: Key, fd: i32, generation: u64) {
    let got = t.remove(key);
    if m.is_live(key, fd, generation) {
        let w = m.live.remove(&fd).unwrap();
        assert_eq!(got, Some(watcher(fd, &w)), "remove of live key {key:?}");
    } else {
        assert_eq!(got, None, "remove of stale key {key:?}");
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut t: WatcherTable<u32, CAP> = WatcherTable::new();
    let mut m = Model::default();
    for op in ops.into_iter().take(MAX_OPS) {
        match op {
            Op::Insert { fd, data, callback, interest } => {
                let fd = i32::from(fd % FDS);
                let interest = [Interest::READ, Interest::WRITE, Interest::ERROR]
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| interest & (1 << i) != 0)
                    .fold(Interest::empty(), |acc, (_, r)| acc | *r);
                let predicted = t.next_key(fd);
                let w = Watcher { fd, interest, trigger: Trigger::Level, registered: true, callback, data };
                let result = t.insert(w);
                let old = m.live.get(&fd).copied();
                if old.is_none() && m.live.len() == CAP {
                    assert_eq!(predicted, Err(Error::Capacity));
                    assert_eq!(result.err(), Some(Error::Capacity), "insert of a new fd into a full table");
                } else {
                    let (key, replaced) = result.expect("insert with room (or a replacement) must succeed");
                    assert_eq!(predicted, Ok(key), "next_key did not predict insert");
                    assert_eq!(replaced, old.map(|o| watcher(fd, &o)), "wrong replaced watcher");
                    if let Some(o) = old {
                        assert_eq!(o.key.slot, key.slot, "a replacement moved slots");
                    }
                    let generation = m.generations.entry(fd).or_default();
                    *generation += 1;
                    let g = *generation;
                    m.live.insert(fd, MWatcher { generation: g, key, data, callback, interest });
                    m.issued.push((key, fd, g));
                }
            }
            Op::Remove(i) => {
                if let Some((key, fd, generation)) = m.pick(i) {
                    remove(&mut t, &mut m, key, fd, generation);
                }
            }
            Op::RemoveFd(fd) => {
                let fd = i32::from(fd % FDS);
                match t.key_of_fd(fd) {
                    Some(key) => {
                        let generation = m.live.get(&fd).expect("key_of_fd of an unwatched fd").generation;
                        remove(&mut t, &mut m, key, fd, generation);
                    }
                    None => assert!(!m.live.contains_key(&fd)),
                }
            }
            Op::SetData { key, data } => {
                if let Some((key, fd, generation)) = m.pick(key) {
                    let live = m.is_live(key, fd, generation);
                    match t.get_mut(key) {
                        Some(w) => {
                            assert!(live, "get_mut of stale key {key:?}");
                            w.data = data;
                            m.live.get_mut(&fd).unwrap().data = data;
                        }
                        None => assert!(!live, "get_mut of live key {key:?}"),
                    }
                }
            }
        }
        check(&t, &m);
    }
});
