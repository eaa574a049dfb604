//! `CLOCK_MONOTONIC` in nanoseconds: through the vDSO when the kernel maps
//! one, else the `clock_gettime` syscall.
//!
//! The loop reads this once per pass; the vDSO path keeps that read out of
//! the syscall count (an idle pass makes only the wait). The `syscall-clock`
//! feature leaves the vDSO path out (its ELF lookup is about 1.4 KB).

use super::call::check;
use super::errno::Errno;
#[cfg(not(feature = "syscall-clock"))]
use super::vdso;
use linux_raw_sys::general as k;

/// Monotonic time in nanoseconds since an arbitrary point (boot, on Linux).
pub(crate) fn monotonic_ns() -> Result<u64, Errno> {
    let mut ts = k::__kernel_timespec { tv_sec: 0, tv_nsec: 0 };
    #[cfg(not(feature = "syscall-clock"))]
    if let Some(f) = vdso::clock_gettime() {
        // SAFETY: `f` is the vDSO's clock_gettime, resolved from the image the
        // kernel maps for the life of the process; `ts` is valid for writes.
        if unsafe { f(k::CLOCK_MONOTONIC as i32, &mut ts) } == 0 {
            return Ok(to_ns(&ts));
        }
    }
    syscall_ns(&mut ts)
}

/// The syscall path alone (used when there is no vDSO, and to check it).
pub(crate) fn syscall_ns(ts: &mut k::__kernel_timespec) -> Result<u64, Errno> {
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    check(unsafe { sc::syscall2(k::__NR_clock_gettime as usize, k::CLOCK_MONOTONIC as usize, ts as *mut _ as usize) })?;
    Ok(to_ns(ts))
}

fn to_ns(ts: &k::__kernel_timespec) -> u64 {
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vdso_and_syscall_agree_and_never_go_back() {
        let mut ts = k::__kernel_timespec { tv_sec: 0, tv_nsec: 0 };
        let a = monotonic_ns().unwrap();
        let b = syscall_ns(&mut ts).unwrap();
        let c = monotonic_ns().unwrap();
        assert!(a <= b && b <= c, "{a} {b} {c}");
    }
}
