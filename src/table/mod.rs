//! The loop's two fixed-capacity tables: watchers (the dispatch table) and
//! timers (the scheduler).
//!
//! Plain safe Rust on heapless storage: no syscalls, no allocation, no
//! panics. Both are generic over what they store so the fuzzers can drive
//! them directly.

mod key;
mod timers;
mod watchers;

pub use key::Key;
pub use timers::{TimerHeap, TimerState};
pub use watchers::{Watcher, WatcherTable};
