//! The buffer pool of a `Streams`: `S` read buffers and `S` write
//! buffers of `BUF` bytes each, in one anonymous mapping the pool owns.
//!
//! A stream holds a buffer only while it has bytes in it, and freed
//! buffers are reused last-in first-out, so the pages that are ever
//! touched are about as many as the streams busy at once: an idle
//! connection holds no buffer at all. Each stream holds at most one of
//! each kind, so the pool can never run dry.

use crate::sys::Errno;
use crate::sys::mmap::Anon;
use heapless::Vec;

/// A buffer's number in the pool; `NONE` when a stream holds none.
pub(crate) type BufIndex = u32;
pub(crate) const NONE: BufIndex = u32::MAX;

/// Which half of the pool.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Read,
    Write,
}

pub(crate) struct Pool<const S: usize, const BUF: usize> {
    memory: Anon<u8>,
    free_read: Vec<BufIndex, S>,
    free_write: Vec<BufIndex, S>,
}

impl<const S: usize, const BUF: usize> Pool<S, BUF> {
    pub(crate) fn new() -> Result<Self, Errno> {
        const { assert!(BUF > 0 && BUF <= u32::MAX as usize / 2 && S < u32::MAX as usize) };
        let bytes = S.checked_mul(BUF).and_then(|n| n.checked_mul(2)).ok_or(Errno::ENOMEM)?;
        let memory = Anon::zeroed(bytes)?;
        let mut pool = Pool { memory, free_read: Vec::new(), free_write: Vec::new() };
        // Pushed high to low, so buffer 0 is handed out first.
        for i in (0..S as u32).rev() {
            let _ = pool.free_read.push(i);
            let _ = pool.free_write.push(i);
        }
        Ok(pool)
    }

    /// A free buffer of `kind` (never fails: one of each per stream).
    pub(crate) fn take(&mut self, kind: Kind) -> BufIndex {
        let free = match kind {
            Kind::Read => &mut self.free_read,
            Kind::Write => &mut self.free_write,
        };
        free.pop().unwrap_or(NONE)
    }

    /// Gives a buffer back.
    pub(crate) fn give(&mut self, kind: Kind, i: BufIndex) {
        if i == NONE {
            return;
        }
        let free = match kind {
            Kind::Read => &mut self.free_read,
            Kind::Write => &mut self.free_write,
        };
        debug_assert!(!free.contains(&i), "buffer {i} given back twice");
        let _ = free.push(i);
    }

    fn range(kind: Kind, i: BufIndex) -> core::ops::Range<usize> {
        let n = i as usize + if kind == Kind::Write { S } else { 0 };
        n * BUF..(n + 1) * BUF
    }

    /// The bytes of buffer `i` (empty for `NONE`).
    pub(crate) fn get(&self, kind: Kind, i: BufIndex) -> &[u8] {
        if i == NONE { &[] } else { &self.memory[Self::range(kind, i)] }
    }

    /// The bytes of buffer `i`, writable (empty for `NONE`).
    pub(crate) fn get_mut(&mut self, kind: Kind, i: BufIndex) -> &mut [u8] {
        if i == NONE { &mut [] } else { &mut self.memory[Self::range(kind, i)] }
    }

    /// Read buffer `r` and write buffer `w` at once (either may be `NONE`:
    /// empty); the two halves of the pool never overlap.
    pub(crate) fn read_and_write(&mut self, r: BufIndex, w: BufIndex) -> (&[u8], &mut [u8]) {
        let (reads, writes) = self.memory.split_at_mut(S * BUF);
        let r = if r == NONE { &[][..] } else { &reads[r as usize * BUF..(r as usize + 1) * BUF] };
        let w = if w == NONE { &mut [][..] } else { &mut writes[w as usize * BUF..(w as usize + 1) * BUF] };
        (r, w)
    }

    /// Buffers in use (read, write).
    pub(crate) fn in_use(&self) -> (usize, usize) {
        (S - self.free_read.len(), S - self.free_write.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_disjoint_and_reused_last_in_first_out() {
        let mut p: Pool<3, 16> = Pool::new().unwrap();
        let (a, b) = (p.take(Kind::Read), p.take(Kind::Read));
        let w = p.take(Kind::Write);
        assert_eq!((a, b, w), (0, 1, 0));
        p.get_mut(Kind::Read, a).fill(1);
        p.get_mut(Kind::Write, w).fill(2);
        assert!(p.get(Kind::Read, b).iter().all(|&x| x == 0));
        assert!(p.get(Kind::Read, a).iter().all(|&x| x == 1));
        let (r, w2) = p.read_and_write(a, w);
        assert!(r.iter().all(|&x| x == 1) && w2.iter().all(|&x| x == 2));
        assert_eq!(p.in_use(), (2, 1));
        p.give(Kind::Read, a);
        assert_eq!(p.take(Kind::Read), a);
        assert_eq!(p.take(Kind::Read), 2);
        assert_eq!(p.take(Kind::Read), NONE);
        assert!(p.get(Kind::Read, NONE).is_empty());
    }
}
