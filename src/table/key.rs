//! `Key`: slot index plus generation, the value handed to the kernel.
//!
//! A slot's generation changes every time its occupant changes, so a key
//! that outlived its entry never resolves again (invariant 1).

/// A table slot and the generation of the entry that occupied it.
///
/// Encoded for the kernel as `generation << 32 | slot` (epoll data, iocb and
/// sqe user data). Slots at the top of the range are reserved for the
/// loop's own fds.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// Index of the slot in its table.
    pub slot: u32,
    /// Generation of the slot's occupant.
    pub generation: u32,
}

impl Key {
    /// The key of the loop's waker (never a table slot).
    pub const WAKER: Key = Key { slot: u32::MAX, generation: 0 };

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
}
