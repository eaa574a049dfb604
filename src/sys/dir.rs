//! Directory listing with `getdents64`, for the few `/proc` directories the
//! library reads (a process's threads). Nothing here allocates.

use super::call::{check, retry};
use super::errno::Errno;
use super::fd::RawFd;
use linux_raw_sys::general as k;

/// Where `d_name` starts in a `linux_dirent64` record (after `d_ino`,
/// `d_off`, `d_reclen` and `d_type`).
const NAME_OFFSET: usize = 8 + 8 + 2 + 1;

/// Reads directory records of the open directory `fd` into `buf`; 0 at the end.
pub(crate) fn getdents(fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `buf` is valid for `buf.len()` bytes of writes for the call.
    retry(|| {
        check(unsafe { sc::syscall3(k::__NR_getdents64 as usize, fd as usize, buf.as_mut_ptr() as usize, buf.len()) })
    })
}

/// The entry names in the first `len` bytes that [`getdents`] filled
/// (`.` and `..` included). A malformed record ends the iteration.
pub(crate) fn names(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0;
    core::iter::from_fn(move || {
        let rec = buf.get(at..)?;
        let reclen = usize::from(u16::from_ne_bytes([*rec.get(16)?, *rec.get(17)?]));
        if reclen <= NAME_OFFSET || reclen > rec.len() {
            return None;
        }
        at += reclen;
        let name = &rec[NAME_OFFSET..reclen];
        Some(&name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())])
    })
}

/// Parses a decimal number (no sign); `None` for anything else.
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<i32> {
    if digits.is_empty() || digits.len() > 10 {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(d - b'0');
    }
    i32::try_from(n).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_this_process_threads() {
        let dir = crate::sys::open_readonly(c"/proc/self/task").unwrap();
        let mut buf = [0u8; 4096];
        let n = getdents(dir.as_raw_fd(), &mut buf).unwrap();
        let tids: std::vec::Vec<i32> = names(&buf[..n]).filter_map(parse_decimal).collect();
        assert!(tids.contains(&crate::sys::getpid()), "{tids:?}");
        assert!(names(&buf[..n]).any(|name| name == b"."));
    }

    #[test]
    fn parses_only_plain_decimals() {
        assert_eq!(parse_decimal(b"1234"), Some(1234));
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b"12a"), None);
        assert_eq!(parse_decimal(b"99999999999"), None);
        assert_eq!(parse_decimal(b"-1"), None);
    }

    #[test]
    fn malformed_records_end_the_listing() {
        assert_eq!(names(&[0u8; 10]).count(), 0);
        let mut rec = [0u8; 24];
        rec[16] = 200; // reclen past the buffer
        assert_eq!(names(&rec).count(), 0);
    }
}
