//! Resolving the vDSO's `clock_gettime` by parsing the ELF image the kernel maps into us.
//!
//! Only memory inside that image is read, and only after every offset and count has been
//! bounds-checked; anything unexpected gives `None` (callers then use the syscall). It never
//! writes to the image, never panics and never allocates.

use core::sync::atomic::{AtomicUsize, Ordering};

use linux_raw_sys::general::__kernel_timespec;

/// The vDSO's `clock_gettime`: same arguments as the syscall; returns `0` or `-errno`.
pub(crate) type ClockGettime = unsafe extern "C" fn(clockid: i32, ts: *mut __kernel_timespec) -> i32;

/// Name of the vDSO's `clock_gettime` on this architecture, `None` where it is not used.
#[cfg(all(target_pointer_width = "64", any(target_arch = "x86_64", target_arch = "riscv64")))]
const CLOCK_GETTIME_NAME: Option<&[u8]> = Some(b"__vdso_clock_gettime");
#[cfg(all(target_pointer_width = "64", target_arch = "aarch64"))]
const CLOCK_GETTIME_NAME: Option<&[u8]> = Some(b"__kernel_clock_gettime");
#[cfg(not(all(
    target_pointer_width = "64",
    any(target_arch = "x86_64", target_arch = "riscv64", target_arch = "aarch64")
)))]
const CLOCK_GETTIME_NAME: Option<&[u8]> = None;

/// Cache value meaning "not resolved yet"; never a symbol address (it is the last byte of
/// the address space, which no image ends past).
const UNRESOLVED: usize = usize::MAX;

/// The resolved `clock_gettime`: [`UNRESOLVED`], `0` (none) or the function's address.
static CLOCK_GETTIME: AtomicUsize = AtomicUsize::new(UNRESOLVED);

/// The vDSO's `clock_gettime`, or `None` if there is no vDSO or it lacks the function.
///
/// Resolved on first use and cached; concurrent first calls may each resolve it, which is
/// harmless because they all find the same address.
pub(crate) fn clock_gettime() -> Option<ClockGettime> {
    let mut addr = CLOCK_GETTIME.load(Ordering::Relaxed);
    if addr == UNRESOLVED {
        addr = resolve();
        CLOCK_GETTIME.store(addr, Ordering::Relaxed);
    }
    if addr == 0 {
        return None;
    }
    // SAFETY: nonzero values in CLOCK_GETTIME come only from `resolve`, i.e. the address of
    // a defined global function symbol with this architecture's vDSO `clock_gettime` name,
    // inside the image the kernel mapped for the whole life of the process. The kernel
    // implements it with the C ABI and exactly the `ClockGettime` signature.
    Some(unsafe { core::mem::transmute::<usize, ClockGettime>(addr) })
}

/// Looks the function up in the vDSO; its address, or `0`.
fn resolve() -> usize {
    let Some(name) = CLOCK_GETTIME_NAME else {
        return 0;
    };
    let base = super::auxv::sysinfo_ehdr();
    // SAFETY: `sysinfo_ehdr` returns 0 or AT_SYSINFO_EHDR, which the kernel (or the caller
    // of the unsafe `set_sysinfo_ehdr`, by its contract) guarantees is the address of the
    // vDSO image, mapped readable for the life of the process.
    unsafe { lookup(base, name) }.unwrap_or(0)
}

// ---- ELF64 (from `elf.h`): the few offsets and values the lookup needs ----

const ELFMAG: [u8; 4] = *b"\x7fELF";
const EI_CLASS: usize = 4;
const EI_DATA: usize = 5;
const ELFCLASS64: u8 = 2;
#[cfg(target_endian = "little")]
const ELFDATA_NATIVE: u8 = 1; // ELFDATA2LSB
#[cfg(target_endian = "big")]
const ELFDATA_NATIVE: u8 = 2; // ELFDATA2MSB

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;

const DT_NULL: u64 = 0;
const DT_HASH: u64 = 4;
const DT_STRTAB: u64 = 5;
const DT_SYMTAB: u64 = 6;
const DT_SYMENT: u64 = 11;

const STT_FUNC: u8 = 2;
const STB_GLOBAL: u8 = 1;
const STB_WEAK: u8 = 2;

/// Bytes at the start of the image that are mapped whatever the headers say (one page).
const HEAD_LEN: usize = 4096;
/// Larger images are nonsense (the real vDSO is a few pages).
const MAX_IMAGE: usize = 1 << 20;
/// Sizes of an ELF64 header, program header, dynamic entry and symbol.
const EHDR: usize = 64;
const PHDR: usize = 56;
const DYN: usize = 16;
const SYM: usize = 24;

/// `N` bytes of `image` at `at`, or `None` past its end.
fn bytes<const N: usize>(image: &[u8], at: usize) -> Option<[u8; N]> {
    image.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn u16_at(image: &[u8], at: usize) -> Option<u16> {
    bytes(image, at).map(u16::from_ne_bytes)
}

fn u32_at(image: &[u8], at: usize) -> Option<u32> {
    bytes(image, at).map(u32::from_ne_bytes)
}

/// A 64-bit field as an offset or count (`None` if it does not fit).
fn usize_at(image: &[u8], at: usize) -> Option<usize> {
    bytes(image, at).map(u64::from_ne_bytes).and_then(|v| usize::try_from(v).ok())
}

/// What the lookup needs from a loaded ELF image: the image as bytes (its
/// first `PT_LOAD` segment, which starts at file offset 0) and offsets into it.
struct Dynamic {
    image: &'static [u8],
    /// The segment's virtual address: vaddr `v` is at offset `v - vaddr`.
    vaddr: usize,
    strtab: usize,
    symtab: usize,
    /// Symbols in the table: `DT_HASH`'s `nchain`, else the room between the
    /// symbol table and the string table that follows it (where every
    /// linker puts it, the vDSO's included).
    count: usize,
}

/// Finds the defined global or weak function `name` in the ELF image at `base`.
///
/// # Safety
///
/// `base` must be 0 or the address of an ELF image mapped readable for the rest of the
/// process (the vDSO): its first page, and the bytes its first `PT_LOAD` segment (at file
/// offset 0) spans.
unsafe fn lookup(base: usize, name: &[u8]) -> Option<usize> {
    // SAFETY: forwarded from this function's contract.
    let dynamic = unsafe { parse(base) }?;
    find_symbol(&dynamic, name).and_then(|offset| base.checked_add(offset))
}

/// Checks the ELF and program headers and reads the dynamic section. Every
/// later read is a checked slice access inside the segment.
///
/// # Safety
///
/// As for [`lookup`].
unsafe fn parse(base: usize) -> Option<Dynamic> {
    if base == 0 || !base.is_multiple_of(HEAD_LEN) {
        return None;
    }
    // SAFETY: by the contract the first page at `base` is mapped (every image is at least a
    // page long, and `base` is page aligned) and stays mapped.
    let head: &'static [u8] = unsafe { core::slice::from_raw_parts(base as *const u8, HEAD_LEN) };
    if head.get(..4)? != ELFMAG
        || head[EI_CLASS] != ELFCLASS64
        || head[EI_DATA] != ELFDATA_NATIVE
        || usize::from(u16_at(head, 54)?) != PHDR
    {
        return None;
    }
    // (Offsets stay far below `usize::MAX` from here on, so adding a field's
    // offset to them cannot overflow.)
    let (phoff, phnum) = (usize_at(head, 32)?, usize::from(u16_at(head, 56)?));
    if phoff >= HEAD_LEN {
        return None;
    }
    let (mut load, mut dynamic) = (None, None);
    for i in 0..phnum {
        let ph = phoff + i * PHDR;
        match u32_at(head, ph)? {
            // (p_offset, p_vaddr, p_filesz, p_memsz) of the segment at offset 0.
            PT_LOAD if load.is_none() && usize_at(head, ph + 8)? == 0 => {
                let size = usize_at(head, ph + 32)?.min(usize_at(head, ph + 40)?);
                load = Some((usize_at(head, ph + 16)?, size));
            }
            PT_DYNAMIC if dynamic.is_none() => dynamic = Some((usize_at(head, ph + 16)?, usize_at(head, ph + 40)?)),
            _ => {}
        }
    }
    let ((vaddr, len), (dyn_vaddr, dyn_size)) = (load?, dynamic?);
    if !(EHDR..=MAX_IMAGE).contains(&len) {
        return None;
    }
    // SAFETY: by the contract the bytes the first PT_LOAD segment spans are mapped for the
    // rest of the process; it starts at `base` (file offset 0) and is `len` bytes long.
    let image: &'static [u8] = unsafe { core::slice::from_raw_parts(base as *const u8, len) };
    let at = |v: usize| v.checked_sub(vaddr).filter(|&offset| offset < len);
    let dyn_start = at(dyn_vaddr)?;
    let (mut strtab, mut symtab, mut count) = (None, None, None);
    for i in 0..(dyn_size / DYN).min(MAX_IMAGE / DYN) {
        let entry = dyn_start + i * DYN;
        let (tag, value) = (usize_at(image, entry)? as u64, usize_at(image, entry + 8)?);
        match tag {
            DT_NULL => break,
            DT_STRTAB => strtab = at(value),
            DT_SYMTAB => symtab = at(value),
            DT_HASH => count = at(value).and_then(|h| u32_at(image, h + 4)).map(|n| n as usize),
            DT_SYMENT if value != SYM => return None,
            _ => {}
        }
    }
    let (strtab, symtab) = (strtab?, symtab?);
    let count = count.or_else(|| strtab.checked_sub(symtab).map(|room| room / SYM))?;
    Some(Dynamic { image, vaddr, strtab, symtab, count })
}

/// The offset from the image's start of the defined global or weak function `name`.
fn find_symbol(d: &Dynamic, name: &[u8]) -> Option<usize> {
    for i in 0..d.count.min(MAX_IMAGE / SYM) {
        let sym = d.symtab + i * SYM;
        // st_name u32, st_info u8, st_other u8, st_shndx u16, st_value u64.
        let info = *d.image.get(sym + 4)?;
        let (bind, kind) = (info >> 4, info & 0xf);
        let value = usize_at(d.image, sym + 8)?;
        if kind != STT_FUNC || !(bind == STB_GLOBAL || bind == STB_WEAK) || u16_at(d.image, sym + 6)? == 0 || value == 0
        {
            continue;
        }
        let at = d.strtab + u32_at(d.image, sym)? as usize;
        let Some(text) = d.image.get(at..) else { continue };
        if text.starts_with(name) && text.get(name.len()) == Some(&0) {
            // The code must be inside the image.
            return value.checked_sub(d.vaddr).filter(|&offset| offset < d.image.len());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use linux_raw_sys::general::{CLOCK_MONOTONIC, CLOCK_REALTIME};

    fn nanos(ts: &__kernel_timespec) -> i128 {
        i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
    }

    fn vdso_now(f: ClockGettime, clock: u32) -> i128 {
        let mut ts = __kernel_timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `f` is the vDSO clock_gettime; `ts` is a valid, writable timespec.
        let ret = unsafe { f(clock as i32, &mut ts) };
        assert_eq!(ret, 0);
        nanos(&ts)
    }

    fn syscall_now(clock: u32) -> i128 {
        let mut ts = __kernel_timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: the kernel writes one `__kernel_timespec` to the valid pointer `&mut ts`.
        let ret = unsafe { sc::syscall!(CLOCK_GETTIME, clock, &mut ts as *mut __kernel_timespec) };
        assert_eq!(ret, 0);
        nanos(&ts)
    }

    /// The vDSO's clock_gettime, or `None` where the process has no vDSO.
    /// That is only acceptable off x86_64 (qemu-user 7.2 maps none for
    /// aarch64 guests): then the syscall fallback must work instead.
    fn vdso_or_checked_fallback() -> Option<ClockGettime> {
        let f = clock_gettime();
        if f.is_none() {
            if cfg!(target_arch = "x86_64") {
                panic!("x86_64 Linux always maps a vDSO");
            }
            std::eprintln!("no vDSO in this process (AT_SYSINFO_EHDR absent): checking the syscall fallback");
            let a = crate::sys::clock::monotonic_ns().expect("syscall clock");
            let b = crate::sys::clock::monotonic_ns().expect("syscall clock");
            assert!(a <= b);
        }
        f
    }

    fn real_vdso() -> Option<Dynamic> {
        vdso_or_checked_fallback()?;
        let base = crate::sys::auxv::sysinfo_ehdr();
        // SAFETY: `base` is this process's AT_SYSINFO_EHDR.
        Some(unsafe { parse(base) }.expect("this machine's vDSO parses"))
    }

    #[test]
    fn resolves_clock_gettime() {
        if vdso_or_checked_fallback().is_none() {
            return;
        }
        // Cached: same function again.
        assert_eq!(clock_gettime().map(|f| f as usize), clock_gettime().map(|f| f as usize));
    }

    #[test]
    fn vdso_agrees_with_syscall() {
        let Some(f) = vdso_or_checked_fallback() else { return };
        for clock in [CLOCK_MONOTONIC, CLOCK_REALTIME] {
            // Retry a few times in case the thread is descheduled between the reads.
            let ok = (0..20).any(|_| {
                let before = vdso_now(f, clock);
                let sys = syscall_now(clock);
                let after = vdso_now(f, clock);
                before <= sys && sys <= after && after - before < 5_000_000
            });
            assert!(ok, "clock {clock}: vDSO and syscall disagree");
        }
    }

    #[test]
    fn monotonic_never_goes_back() {
        let Some(f) = vdso_or_checked_fallback() else { return };
        let mut prev = vdso_now(f, CLOCK_MONOTONIC);
        for _ in 0..1000 {
            let now = vdso_now(f, CLOCK_MONOTONIC);
            assert!(now >= prev);
            prev = now;
        }
    }

    #[test]
    fn bad_clock_is_an_error_not_a_crash() {
        let Some(f) = vdso_or_checked_fallback() else { return };
        let mut ts = __kernel_timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: as above; the vDSO falls back to the syscall, which rejects the id.
        let ret = unsafe { f(-1_000, &mut ts) };
        assert_eq!(ret, -(linux_raw_sys::errno::EINVAL as i32));
    }

    #[test]
    fn the_hash_table_and_the_symbol_table_span_count_the_same() {
        let Some(d) = real_vdso() else { return };
        // The count from DT_HASH, and the fallback for images without it.
        let span = (d.strtab - d.symtab) / SYM;
        assert_eq!(d.count, span);
        let name = CLOCK_GETTIME_NAME.unwrap();
        let without_hash = Dynamic { count: span, ..d };
        let offset = find_symbol(&without_hash, name).unwrap();
        let base = crate::sys::auxv::sysinfo_ehdr();
        assert_eq!(Some(base + offset), clock_gettime().map(|f| f as usize));
    }

    #[test]
    fn only_defined_functions_by_exact_name() {
        let Some(d) = real_vdso() else { return };
        let name = CLOCK_GETTIME_NAME.unwrap();
        assert!(find_symbol(&d, &name[..name.len() - 1]).is_none(), "prefix");
        assert!(find_symbol(&d, b"__vdso_no_such_function").is_none());
        assert!(find_symbol(&d, b"").is_none());
        // Version definitions are absolute OBJECT symbols, not functions.
        assert!(find_symbol(&d, b"LINUX_2.6").is_none());
    }

    #[test]
    fn rejects_garbage() {
        #[repr(C, align(4096))]
        struct Page([u8; HEAD_LEN]);
        // SAFETY: `page` is a readable, page-aligned buffer of one page, and every fake
        // header below either is rejected before its PT_LOAD is used or has a PT_LOAD
        // lying within the page.
        let try_page = |p: &Page| unsafe { lookup(p as *const Page as usize, b"x") };
        let mut page = Page([0; HEAD_LEN]);
        // SAFETY: base 0 is rejected before anything is read.
        assert!(unsafe { lookup(0, b"x") }.is_none());
        assert!(try_page(&page).is_none());
        // Magic right, but no program headers.
        page.0[..4].copy_from_slice(&ELFMAG);
        page.0[EI_CLASS] = ELFCLASS64;
        page.0[EI_DATA] = ELFDATA_NATIVE;
        assert!(try_page(&page).is_none());
        // Correct entry size, absurd count and offset.
        page.0[54..56].copy_from_slice(&56u16.to_ne_bytes()); // e_phentsize
        page.0[56..58].copy_from_slice(&60u16.to_ne_bytes()); // e_phnum
        page.0[32..40].copy_from_slice(&u64::MAX.to_ne_bytes()); // e_phoff
        assert!(try_page(&page).is_none());
        // Program headers inside the page: a one-page PT_LOAD and a PT_DYNAMIC pointing
        // past the end of the address space.
        page.0[32..40].copy_from_slice(&64u64.to_ne_bytes());
        page.0[56..58].copy_from_slice(&2u16.to_ne_bytes());
        let load = 64;
        page.0[load..load + 4].copy_from_slice(&PT_LOAD.to_ne_bytes());
        page.0[load + 32..load + 40].copy_from_slice(&(HEAD_LEN as u64).to_ne_bytes());
        page.0[load + 40..load + 48].copy_from_slice(&(HEAD_LEN as u64).to_ne_bytes());
        let dy = load + 56;
        page.0[dy..dy + 4].copy_from_slice(&PT_DYNAMIC.to_ne_bytes());
        page.0[dy + 16..dy + 24].copy_from_slice(&u64::MAX.to_ne_bytes()); // p_vaddr
        page.0[dy + 40..dy + 48].copy_from_slice(&64u64.to_ne_bytes()); // p_memsz
        assert!(try_page(&page).is_none());
        // Dynamic section at the start of the page: the header bytes read as nonsense
        // tags, with no DT_STRTAB/DT_SYMTAB, so still nothing.
        page.0[dy + 16..dy + 24].copy_from_slice(&0u64.to_ne_bytes());
        assert!(try_page(&page).is_none());
    }
}
