//! `memcpy`, `memmove`, `memset`, `memcmp`/`bcmp` for programs with no libc, as plain
//! functions; [`mem_functions!`](crate::mem_functions) exports them under the C names.
//!
//! Every access here is volatile (a word at a time where both sides share an alignment),
//! so the optimiser can never turn a loop back into a call to the function it implements.

use core::mem::size_of;
use core::ptr::{read_volatile, write_volatile};

const WORD: usize = size_of::<usize>();

/// Whether `a` and `b` are equally misaligned, so both reach word alignment together.
fn same_alignment(a: usize, b: usize) -> bool {
    a.wrapping_sub(b).is_multiple_of(WORD)
}

/// Copies `n` bytes from `src` to `dest`, lowest address first (`memcpy`).
///
/// # Safety
///
/// `src` must be valid for reads and `dest` for writes of `n` bytes; if they overlap,
/// `dest` must not lie above `src`.
pub unsafe fn copy_forward(dest: *mut u8, src: *const u8, n: usize) {
    let mut i = 0;
    // SAFETY: every access is at an offset below `n`, inside both regions; word accesses
    // start at a word-aligned `dest + i`, and `src + i` is then aligned too. With overlap
    // and dest <= src, a word is read before the write that could overlap its later bytes.
    unsafe {
        if n >= 2 * WORD && same_alignment(dest.addr(), src.addr()) {
            while !(dest.addr() + i).is_multiple_of(WORD) {
                write_volatile(dest.add(i), read_volatile(src.add(i)));
                i += 1;
            }
            while n - i >= WORD {
                write_volatile(dest.add(i).cast::<usize>(), read_volatile(src.add(i).cast::<usize>()));
                i += WORD;
            }
        }
        while i < n {
            write_volatile(dest.add(i), read_volatile(src.add(i)));
            i += 1;
        }
    }
}

/// Copies `n` bytes from `src` to `dest`, highest address first.
///
/// # Safety
///
/// `src` must be valid for reads and `dest` for writes of `n` bytes; if they overlap,
/// `dest` must not lie below `src`.
pub unsafe fn copy_backward(dest: *mut u8, src: *const u8, n: usize) {
    let mut i = n;
    // SAFETY: as in `copy_forward`, mirrored: offsets stay below `n`, word accesses start at
    // a word-aligned `dest + i - WORD`, and each word is read before it can be overwritten.
    unsafe {
        if n >= 2 * WORD && same_alignment(dest.addr(), src.addr()) {
            while !(dest.addr() + i).is_multiple_of(WORD) {
                i -= 1;
                write_volatile(dest.add(i), read_volatile(src.add(i)));
            }
            while i >= WORD {
                i -= WORD;
                write_volatile(dest.add(i).cast::<usize>(), read_volatile(src.add(i).cast::<usize>()));
            }
        }
        while i > 0 {
            i -= 1;
            write_volatile(dest.add(i), read_volatile(src.add(i)));
        }
    }
}

/// Copies `n` bytes from `src` to `dest`; the regions may overlap (`memmove`).
///
/// # Safety
///
/// `src` must be valid for reads and `dest` for writes of `n` bytes.
pub unsafe fn copy(dest: *mut u8, src: *const u8, n: usize) {
    // `dest - src >= n` (unsigned) means dest is below src or past its end: forward is safe.
    // SAFETY: the direction chosen is the one each function allows for overlap.
    unsafe {
        if dest.addr().wrapping_sub(src.addr()) >= n { copy_forward(dest, src, n) } else { copy_backward(dest, src, n) }
    }
}

/// Sets `n` bytes at `dest` to `byte` (`memset`).
///
/// # Safety
///
/// `dest` must be valid for writes of `n` bytes.
pub unsafe fn set(dest: *mut u8, byte: u8, n: usize) {
    let word = usize::from(byte) * (usize::MAX / 0xff);
    let mut i = 0;
    // SAFETY: offsets stay below `n`; word writes start at a word-aligned address.
    unsafe {
        if n >= 2 * WORD {
            while !(dest.addr() + i).is_multiple_of(WORD) {
                write_volatile(dest.add(i), byte);
                i += 1;
            }
            while n - i >= WORD {
                write_volatile(dest.add(i).cast::<usize>(), word);
                i += WORD;
            }
        }
        while i < n {
            write_volatile(dest.add(i), byte);
            i += 1;
        }
    }
}

/// Compares `n` bytes as unsigned: negative, zero or positive as `a` sorts before, equal
/// to or after `b` (`memcmp`; `bcmp` only needs zero or not).
///
/// # Safety
///
/// `a` and `b` must be valid for reads of `n` bytes.
pub unsafe fn compare(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    // SAFETY: offsets stay below `n`; word reads start at a word-aligned `a + i`, and `b + i`
    // is then aligned too.
    unsafe {
        if n >= 2 * WORD && same_alignment(a.addr(), b.addr()) {
            while !(a.addr() + i).is_multiple_of(WORD) {
                let (x, y) = (read_volatile(a.add(i)), read_volatile(b.add(i)));
                if x != y {
                    return i32::from(x) - i32::from(y);
                }
                i += 1;
            }
            // Skip equal words; the first unequal one is compared byte by byte below.
            while n - i >= WORD && read_volatile(a.add(i).cast::<usize>()) == read_volatile(b.add(i).cast::<usize>()) {
                i += WORD;
            }
        }
        while i < n {
            let (x, y) = (read_volatile(a.add(i)), read_volatile(b.add(i)));
            if x != y {
                return i32::from(x) - i32::from(y);
            }
            i += 1;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    const LEN: usize = 80;

    /// Bytes no two neighbours of which are equal, so a misplaced byte is always noticed.
    fn pattern(seed: u8) -> [u8; LEN] {
        core::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(seed))
    }

    /// Every (dest offset, src offset, length) a word-at-a-time path can get wrong.
    fn cases() -> impl Iterator<Item = (usize, usize, usize)> {
        (0..2 * WORD).flat_map(|d| (0..2 * WORD).flat_map(move |s| (0..=LEN - 2 * WORD).map(move |n| (d, s, n))))
    }

    #[test]
    fn copy_forward_matches_copy_from_slice() {
        for (d, s, n) in cases() {
            let src = pattern(1);
            let (mut got, mut want) = (pattern(100), pattern(100));
            want[d..d + n].copy_from_slice(&src[s..s + n]);
            // SAFETY: both ranges are inside their arrays, which do not overlap.
            unsafe { copy_forward(got.as_mut_ptr().add(d), src.as_ptr().add(s), n) };
            assert_eq!(got, want, "dest+{d} src+{s} len {n}");
        }
    }

    #[test]
    fn overlapping_copies_match_copy_within() {
        for (d, s, n) in cases() {
            let mut got = pattern(7);
            let mut want = got;
            want.copy_within(s..s + n, d);
            let p = got.as_mut_ptr();
            // SAFETY: both ranges lie inside `got`; `copy` handles the overlap.
            unsafe { copy(p.add(d), p.add(s), n) };
            assert_eq!(got, want, "dest+{d} src+{s} len {n}");
        }
    }

    #[test]
    fn copy_backward_with_dest_above_src() {
        for (d, s, n) in cases().filter(|&(d, s, _)| d >= s) {
            let mut got = pattern(3);
            let mut want = got;
            want.copy_within(s..s + n, d);
            let p = got.as_mut_ptr();
            // SAFETY: both ranges lie inside `got`, and dest is not below src.
            unsafe { copy_backward(p.add(d), p.add(s), n) };
            assert_eq!(got, want, "dest+{d} src+{s} len {n}");
        }
    }

    #[test]
    fn set_matches_fill_and_stays_in_bounds() {
        for (d, _, n) in cases().filter(|&(_, s, _)| s == 0) {
            for byte in [0, 0x5a, 0xff] {
                let (mut got, mut want) = (pattern(9), pattern(9));
                want[d..d + n].fill(byte);
                // SAFETY: the range is inside `got`.
                unsafe { set(got.as_mut_ptr().add(d), byte, n) };
                assert_eq!(got, want, "dest+{d} len {n} byte {byte:#x}");
            }
        }
    }

    #[test]
    fn compare_orders_like_slices() {
        let sign = |o: core::cmp::Ordering| o as i32;
        for (d, s, n) in cases() {
            let a = pattern(0);
            let mut b: Vec<u8> = std::vec![0; LEN];
            b[s..s + n].copy_from_slice(&a[d..d + n]);
            // Equal, then one byte changed at each position (up and down).
            let mut variants = std::vec![b.clone()];
            for at in [0, n / 2, n.saturating_sub(1)] {
                if n > 0 {
                    for delta in [1u8, 255] {
                        let mut v = b.clone();
                        v[s + at] = v[s + at].wrapping_add(delta);
                        variants.push(v);
                    }
                }
            }
            for v in variants {
                let want = sign(a[d..d + n].cmp(&v[s..s + n]));
                // SAFETY: both ranges are inside their buffers.
                let got = unsafe { compare(a.as_ptr().add(d), v.as_ptr().add(s), n) };
                assert_eq!(got.signum(), want, "a+{d} b+{s} len {n}");
            }
        }
    }
}
