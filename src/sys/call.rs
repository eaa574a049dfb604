//! Decoding of raw syscall returns, in one place.
//!
//! The kernel returns `-errno` in the range `-4095..=-1`; everything else is a
//! value. Every wrapper in `sys/` goes through [`check`], so no other module
//! interprets a raw return.

use super::errno::Errno;

/// Turns a raw syscall return into a value or the [`Errno`] it encodes.
#[inline]
pub(crate) fn check(ret: usize) -> Result<usize, Errno> {
    if ret > (-4096isize) as usize { Err(Errno::from_raw((ret as isize).unsigned_abs() as u16)) } else { Ok(ret) }
}

/// Runs `op` again for as long as it fails with `EINTR` (invariant 6).
#[inline]
pub(crate) fn retry<T>(mut op: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
    loop {
        match op() {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_returns_decode_to_errno() {
        assert_eq!(check((-9isize) as usize), Err(Errno::EBADF));
        assert_eq!(check((-4095isize) as usize), Err(Errno::from_raw(4095)));
        assert_eq!(check(0), Ok(0));
        assert_eq!(check(7), Ok(7));
        // -4096 is a value (e.g. a high mmap address), not an error.
        assert_eq!(check((-4096isize) as usize), Ok((-4096isize) as usize));
    }

    #[test]
    fn retry_stops_at_first_non_eintr() {
        let mut n = 0;
        let r = retry(|| {
            n += 1;
            if n < 3 { Err(Errno::EINTR) } else { Ok(n) }
        });
        assert_eq!(r, Ok(3));
    }
}
