//! `Key`: slot index plus generation, the value handed to the kernel, and
//! every key the loop and its backends reserve for themselves.
//!
//! A slot's generation changes every time its occupant changes, so a key
//! that outlived its entry never resolves again (invariant 1). The reserved
//! keys are defined here and nowhere else.

/// A table slot and the generation of the entry that occupied it.
///
/// Encoded for the kernel as `generation << 32 | slot` (epoll data, iocb and
/// sqe user data). The top [`Key::RESERVED`] slot numbers never name a
/// table slot: they are the loop's own kernel objects.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// Index of the slot in its table.
    pub slot: u32,
    /// Generation of the slot's occupant.
    pub generation: u32,
}

impl Key {
    /// The loop's waker (its doorbell eventfd).
    pub const WAKER: Key = Key::reserved(0);
    /// A backend's own deadline timer (the epoll backend's timerfd).
    pub const BACKEND_TIMER: Key = Key::reserved(1);
    /// The loop's signalfd.
    pub const SIGNALS: Key = Key::reserved(2);
    /// A backend's own wake-up fd (the Linux AIO backend's completion eventfd).
    pub const BACKEND_WAKE: Key = Key::reserved(3);
    /// How many slot numbers at the top of the range are reserved.
    pub const RESERVED: u32 = 4;
    /// The first reserved slot number: every table slot is below it.
    pub const FIRST_RESERVED: u32 = u32::MAX - (Key::RESERVED - 1);

    /// Reserved key `i` (0 = `u32::MAX`, 1 = `u32::MAX - 1`, ...).
    const fn reserved(i: u32) -> Key {
        Key { slot: u32::MAX - i, generation: 0 }
    }

    /// Which reserved key this is (0 for [`Key::WAKER`], ...), or `None`
    /// for a table slot.
    pub const fn reserved_index(self) -> Option<u32> {
        if self.slot >= Key::FIRST_RESERVED { Some(u32::MAX - self.slot) } else { None }
    }

    /// The 64-bit form handed to the kernel.
    pub const fn to_u64(self) -> u64 {
        ((self.generation as u64) << 32) | self.slot as u64
    }

    /// Decodes the 64-bit form.
    pub const fn from_u64(raw: u64) -> Key {
        Key { slot: raw as u32, generation: (raw >> 32) as u32 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_u64() {
        let k = Key { slot: 7, generation: 0xfeed_beef };
        assert_eq!(k.to_u64(), 0xfeed_beef_0000_0007);
        assert_eq!(Key::from_u64(k.to_u64()), k);
        assert_eq!(Key::from_u64(Key::WAKER.to_u64()), Key::WAKER);
    }

    #[test]
    fn reserved_keys_are_distinct_and_at_the_top() {
        let all = [Key::WAKER, Key::BACKEND_TIMER, Key::SIGNALS, Key::BACKEND_WAKE];
        for (i, k) in all.iter().enumerate() {
            assert_eq!(k.reserved_index(), Some(i as u32));
            assert!(k.slot >= Key::FIRST_RESERVED);
        }
        assert_eq!(Key { slot: Key::FIRST_RESERVED - 1, generation: 0 }.reserved_index(), None);
        assert_eq!(Key::WAKER.slot, u32::MAX);
    }
}
