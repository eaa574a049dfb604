//! Finding `AT_SYSINFO_EHDR` (the address of the kernel's vDSO image) without libc.
//!
//! The address is handed in by a no-libc entry point ([`set_sysinfo_ehdr`]) or looked up
//! once from `/proc/self/auxv`, else with `prctl(PR_GET_AUXV)`, and cached. This module never
//! panics and never allocates: every failure just means "no vDSO known" (`0`).

use core::mem::size_of;
use core::sync::atomic::{AtomicUsize, Ordering};

use linux_raw_sys::general::{AT_FDCWD, O_CLOEXEC, O_RDONLY};

use super::call;

// Auxiliary vector keys, the same on every Linux architecture; defined here once
// (`linux_raw_sys` only has them behind its `auxvec` feature, which this crate does not
// enable) and re-exported by `rt`, whose `Startup` reads the vector off the initial stack.
/// Auxiliary vector key that ends the vector.
pub const AT_NULL: usize = 0;
/// Auxiliary vector key: the system page size.
#[cfg_attr(not(feature = "rt"), allow(dead_code))]
pub const AT_PAGESZ: usize = 6;
/// Auxiliary vector key: CPU capability bits (`HWCAP_*` of the architecture).
#[cfg_attr(not(feature = "rt"), allow(dead_code))]
pub const AT_HWCAP: usize = 16;
/// Auxiliary vector key: nonzero if the program runs set-uid/set-gid or with capabilities.
#[cfg_attr(not(feature = "rt"), allow(dead_code))]
pub const AT_SECURE: usize = 23;
/// Auxiliary vector key: address of 16 random bytes from the kernel.
#[cfg_attr(not(feature = "rt"), allow(dead_code))]
pub const AT_RANDOM: usize = 25;
/// Auxiliary vector key: address of the file name the program was executed as.
#[cfg_attr(not(feature = "rt"), allow(dead_code))]
pub const AT_EXECFN: usize = 31;
/// Auxiliary vector key: address of the vDSO's ELF header.
pub const AT_SYSINFO_EHDR: usize = 33;
/// `prctl` option that copies the auxiliary vector out (Linux 6.4+), as in `linux/prctl.h`.
const PR_GET_AUXV: usize = 0x4155_5856;
/// Cache value meaning "not looked up yet"; never a valid vDSO address (not page aligned).
const UNKNOWN: usize = usize::MAX;
/// Words of auxiliary vector kept; a typical vector is 20-30 pairs (~500 bytes).
const AUXV_WORDS: usize = 256;

/// The cached `AT_SYSINFO_EHDR`: [`UNKNOWN`], `0` (no vDSO) or the address.
static SYSINFO_EHDR: AtomicUsize = AtomicUsize::new(UNKNOWN);

/// The address of the vDSO's ELF header, or `0` when there is none or it cannot be found.
///
/// Looked up on first use and cached; concurrent first calls may each look it up, which is
/// harmless because they all find the same value (an explicit [`set_sysinfo_ehdr`] wins).
pub(crate) fn sysinfo_ehdr() -> usize {
    let cached = SYSINFO_EHDR.load(Ordering::Relaxed);
    if cached != UNKNOWN {
        return cached;
    }
    let found = match lookup() {
        UNKNOWN => 0,
        addr => addr,
    };
    match SYSINFO_EHDR.compare_exchange(UNKNOWN, found, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => found,
        Err(already) => already,
    }
}

/// Tells the crate where the vDSO is, so it never has to look in `/proc`.
///
/// A program with its own entry point (no libc) finds the auxiliary vector on its initial
/// stack, after `argv` and `envp`; it passes the value of the `AT_SYSINFO_EHDR` (33) entry
/// here, or `0` if there is no such entry. `0` means "no vDSO": clocks are then read with
/// the `clock_gettime` syscall instead.
///
/// Call it before the first clock read; the vDSO function is resolved once and later calls
/// do not re-resolve it. `usize::MAX` is treated like `0`.
///
/// # Safety
///
/// `addr` must be `0` or the `AT_SYSINFO_EHDR` value the kernel gave this process, i.e. the
/// address of the vDSO image it mapped. The crate reads that memory and calls code in it.
pub unsafe fn set_sysinfo_ehdr(addr: usize) {
    let addr = if addr == UNKNOWN { 0 } else { addr };
    SYSINFO_EHDR.store(addr, Ordering::Relaxed);
}

/// Reads the auxiliary vector from the kernel and picks out `AT_SYSINFO_EHDR` (`0` if absent).
fn lookup() -> usize {
    let mut buf = [0usize; AUXV_WORDS];
    // /proc first: emulators and tools that run the program on a view of
    // memory of their own (valgrind) fake it consistently, while prctl
    // (Linux 6.4, newer than they know) reaches the kernel and returns the
    // host's vector. prctl serves where /proc is not mounted (early PID 1).
    let words = read_proc(&mut buf).or_else(|| read_prctl(&mut buf)).unwrap_or(0);
    find(buf.get(..words).unwrap_or(&[]), AT_SYSINFO_EHDR)
}

/// The value of `key` in an auxiliary vector of `(key, value)` words, or `0`.
fn find(auxv: &[usize], key: usize) -> usize {
    for pair in auxv.chunks_exact(2) {
        match pair[0] {
            AT_NULL => break,
            k if k == key => return pair[1],
            _ => {}
        }
    }
    0
}

/// Fills `buf` with `prctl(PR_GET_AUXV)`; the number of words copied, `None` if unsupported.
fn read_prctl(buf: &mut [usize]) -> Option<usize> {
    let len = size_of_val(buf);
    // SAFETY: PR_GET_AUXV writes at most `len` bytes to the pointer, which is `buf`'s
    // exclusively borrowed storage of exactly `len` bytes; the other arguments must be 0.
    let ret = unsafe { sc::syscall!(PRCTL, PR_GET_AUXV, buf.as_mut_ptr(), len, 0, 0) };
    // The return is the full size of the vector; only `len` bytes of it were copied.
    let total = call::check(ret).ok()?;
    Some(total.min(len) / size_of::<usize>())
}

/// Fills `buf` from `/proc/self/auxv`; the number of words read, `None` if it cannot be opened.
fn read_proc(buf: &mut [usize]) -> Option<usize> {
    const PATH: &[u8] = b"/proc/self/auxv\0";
    let flags = O_RDONLY | O_CLOEXEC;
    let fd = call::retry(|| {
        // SAFETY: `PATH` is a NUL-terminated static string; openat only reads it.
        call::check(unsafe { sc::syscall!(OPENAT, AT_FDCWD, PATH.as_ptr(), flags, 0) })
    })
    .ok()?;

    let cap = size_of_val(buf);
    let bytes = buf.as_mut_ptr().cast::<u8>();
    let mut filled = 0;
    while filled < cap {
        let got = call::retry(|| {
            // SAFETY: `filled < cap`, so `bytes + filled .. bytes + cap` lies inside `buf`,
            // which is exclusively borrowed; read writes at most `cap - filled` bytes there,
            // and any byte pattern is a valid `usize`.
            call::check(unsafe { sc::syscall!(READ, fd, bytes.add(filled), cap - filled) })
        });
        match got {
            Ok(0) | Err(_) => break,
            Ok(n) => filled += n.min(cap - filled),
        }
    }

    // SAFETY: `fd` was opened above and is owned by this function alone; it is closed once.
    // The result is ignored: on Linux the descriptor is released even if close reports an error.
    let _ = unsafe { sc::syscall!(CLOSE, fd) };
    Some(filled / size_of::<usize>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_vdso_elf_header() {
        let addr = sysinfo_ehdr();
        if addr == 0 && !cfg!(target_arch = "x86_64") {
            // qemu-user 7.2 gives aarch64 guests no vDSO; the clock then uses
            // the syscall, which the clock and vdso tests check.
            std::eprintln!("no AT_SYSINFO_EHDR in this process");
            return;
        }
        assert_ne!(addr, 0);
        assert_ne!(addr, UNKNOWN);
        assert_eq!(addr % 4096, 0, "vDSO is page aligned");
        // SAFETY: a nonzero AT_SYSINFO_EHDR is the start of the kernel-mapped vDSO image,
        // which is at least one page long and mapped for the life of the process.
        let magic = unsafe { core::ptr::read(addr as *const [u8; 4]) };
        assert_eq!(&magic, b"\x7fELF");
        // Cached: the second call returns the same value.
        assert_eq!(sysinfo_ehdr(), addr);
    }

    #[test]
    fn proc_and_prctl_agree() {
        let mut a = [0usize; AUXV_WORDS];
        let n = read_proc(&mut a).expect("/proc/self/auxv readable in tests");
        assert!(n >= 2);
        let from_proc = find(&a[..n], AT_SYSINFO_EHDR);
        assert_eq!(from_proc, sysinfo_ehdr());
        let mut b = [0usize; AUXV_WORDS];
        // PR_GET_AUXV needs Linux 6.4; older kernels only have /proc.
        if let Some(m) = read_prctl(&mut b) {
            assert_eq!(find(&b[..m], AT_SYSINFO_EHDR), from_proc);
        }
    }

    #[test]
    fn short_buffers_and_missing_keys() {
        assert_eq!(find(&[], AT_SYSINFO_EHDR), 0);
        assert_eq!(find(&[AT_SYSINFO_EHDR], AT_SYSINFO_EHDR), 0);
        assert_eq!(find(&[6, 4096, AT_SYSINFO_EHDR, 0x7000], AT_SYSINFO_EHDR), 0x7000);
        // Nothing after AT_NULL counts.
        assert_eq!(find(&[AT_NULL, 0, AT_SYSINFO_EHDR, 1], AT_SYSINFO_EHDR), 0);
        // A buffer too small for the whole vector still yields what it holds.
        let mut small = [0usize; 2];
        if let Some(m) = read_prctl(&mut small) {
            assert!(m <= 2);
        }
        let m = read_proc(&mut small).unwrap();
        assert_eq!(m, 2);
    }

    #[test]
    fn setting_the_found_value_keeps_it() {
        let addr = sysinfo_ehdr();
        // SAFETY: `addr` is the value the kernel gave this process (found above), so other
        // tests running in parallel see no change.
        unsafe { set_sysinfo_ehdr(addr) };
        assert_eq!(sysinfo_ehdr(), addr);
    }
}
