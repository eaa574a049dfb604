//! Resolving the vDSO's `clock_gettime` by parsing the ELF image the kernel maps into us.
//!
//! Only memory inside that image is read, and only after every offset and count has been
//! bounds-checked; anything unexpected gives `None` (callers then use the syscall). It never
//! writes to the image, never panics and never allocates.

use core::mem::size_of;
use core::ptr;
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

// ---- ELF64 definitions (from `elf.h`) ----

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

const DT_NULL: i64 = 0;
const DT_HASH: i64 = 4;
const DT_STRTAB: i64 = 5;
const DT_SYMTAB: i64 = 6;
const DT_STRSZ: i64 = 10;
const DT_SYMENT: i64 = 11;
const DT_GNU_HASH: i64 = 0x6fff_fef5;

const STT_FUNC: u8 = 2;
const STB_GLOBAL: u8 = 1;
const STB_WEAK: u8 = 2;
const SHN_UNDEF: u16 = 0;

/// Bytes at the start of the image that are mapped whatever the headers say (one page).
const HEAD_LEN: usize = 4096;
/// Larger images are nonsense (the real vDSO is a few pages).
const MAX_IMAGE: usize = 1 << 20;
const MAX_PHNUM: usize = 64;
const MAX_DYN: usize = 256;
const MAX_SYMS: usize = 4096;
const MAX_BUCKETS: usize = 4096;

#[repr(C)]
#[derive(Copy, Clone)]
#[allow(dead_code)] // layout fields the parser does not need
struct Ehdr {
    e_ident: [u8; 16],
    e_type: u16,
    e_machine: u16,
    e_version: u32,
    e_entry: u64,
    e_phoff: u64,
    e_shoff: u64,
    e_flags: u32,
    e_ehsize: u16,
    e_phentsize: u16,
    e_phnum: u16,
    e_shentsize: u16,
    e_shnum: u16,
    e_shstrndx: u16,
}

#[repr(C)]
#[derive(Copy, Clone)]
#[allow(dead_code)] // layout fields the parser does not need
struct Phdr {
    p_type: u32,
    p_flags: u32,
    p_offset: u64,
    p_vaddr: u64,
    p_paddr: u64,
    p_filesz: u64,
    p_memsz: u64,
    p_align: u64,
}

#[repr(C)]
#[derive(Copy, Clone)]
struct Dyn {
    d_tag: i64,
    d_val: u64,
}

#[repr(C)]
#[derive(Copy, Clone)]
#[allow(dead_code)] // layout fields the parser does not need
struct Sym {
    st_name: u32,
    st_info: u8,
    st_other: u8,
    st_shndx: u16,
    st_value: u64,
    st_size: u64,
}

const _: () = assert!(size_of::<Ehdr>() == 64);
const _: () = assert!(size_of::<Phdr>() == 56);
const _: () = assert!(size_of::<Dyn>() == 16);
const _: () = assert!(size_of::<Sym>() == 24);

/// A range of memory known to be readable: every read is checked against it.
#[derive(Copy, Clone)]
struct Image {
    lo: usize,
    hi: usize,
}

impl Image {
    /// # Safety
    ///
    /// `lo..hi` must be readable memory that stays mapped while the `Image` is used.
    unsafe fn new(lo: usize, hi: usize) -> Image {
        Image { lo, hi }
    }

    /// Whether `addr..addr + len` lies inside the image.
    fn contains(self, addr: usize, len: usize) -> bool {
        addr >= self.lo && addr.checked_add(len).is_some_and(|end| end <= self.hi)
    }

    /// Reads a `T` at `addr`, or `None` if it does not lie wholly inside the image.
    /// Only used with plain integer structs, for which every bit pattern is valid.
    fn read<T: Copy>(self, addr: usize) -> Option<T> {
        if !self.contains(addr, size_of::<T>()) {
            return None;
        }
        // SAFETY: the bytes are inside `lo..hi`, readable by `Image::new`'s contract;
        // `read_unaligned` needs no alignment, and `T` is only ever an integer or a
        // `#[repr(C)]` struct of integers, valid for any bytes.
        Some(unsafe { ptr::read_unaligned(addr as *const T) })
    }

    /// Reads the `index`th `T` of an array starting at `start`.
    fn read_at<T: Copy>(self, start: usize, index: usize) -> Option<T> {
        let offset = index.checked_mul(size_of::<T>())?;
        self.read(start.checked_add(offset)?)
    }
}

/// What the parser needs from a loaded ELF image, all as checked in-memory addresses.
struct Dynamic {
    image: Image,
    bias: usize,
    strtab: usize,
    strsz: Option<usize>,
    symtab: usize,
    hash: Option<usize>,
    gnu_hash: Option<usize>,
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
    find_symbol(&dynamic, name)
}

/// Checks the ELF and program headers and reads the dynamic section.
///
/// # Safety
///
/// As for [`lookup`].
unsafe fn parse(base: usize) -> Option<Dynamic> {
    if base == 0 || !base.is_multiple_of(HEAD_LEN) {
        return None;
    }
    // SAFETY: by the contract the first page at `base` is mapped (every image is at least a
    // page long, and `base` is page aligned).
    let head = unsafe { Image::new(base, base.checked_add(HEAD_LEN)?) };

    let eh: Ehdr = head.read(base)?;
    if eh.e_ident[..4] != ELFMAG
        || eh.e_ident[EI_CLASS] != ELFCLASS64
        || eh.e_ident[EI_DATA] != ELFDATA_NATIVE
        || usize::from(eh.e_phentsize) != size_of::<Phdr>()
        || usize::from(eh.e_phnum) > MAX_PHNUM
    {
        return None;
    }
    let phdrs = base.checked_add(usize::try_from(eh.e_phoff).ok()?)?;

    let mut load: Option<Phdr> = None;
    let mut dyn_hdr: Option<Phdr> = None;
    for i in 0..usize::from(eh.e_phnum) {
        let ph: Phdr = head.read_at(phdrs, i)?;
        match ph.p_type {
            PT_LOAD if load.is_none() && ph.p_offset == 0 => load = Some(ph),
            PT_DYNAMIC if dyn_hdr.is_none() => dyn_hdr = Some(ph),
            _ => {}
        }
    }
    let (load, dyn_hdr) = (load?, dyn_hdr?);

    // The segment at file offset 0 starts at `base`, so vaddr `v` is at `v + bias`.
    let bias = base.wrapping_sub(usize::try_from(load.p_vaddr).ok()?);
    let len = usize::try_from(load.p_filesz.min(load.p_memsz)).ok()?;
    if len < size_of::<Ehdr>() || len > MAX_IMAGE {
        return None;
    }
    // SAFETY: by the contract the bytes the first PT_LOAD segment spans are mapped; it
    // starts at `base` (file offset 0) and is at least `len` bytes long.
    let image = unsafe { Image::new(base, base.checked_add(len)?) };
    let at = |vaddr: u64| Some(bias.wrapping_add(usize::try_from(vaddr).ok()?));

    let dyn_start = at(dyn_hdr.p_vaddr)?;
    let dyn_count = usize::try_from(dyn_hdr.p_memsz).ok()? / size_of::<Dyn>();
    let (mut strtab, mut strsz, mut symtab, mut hash, mut gnu_hash) = (None, None, None, None, None);
    for i in 0..dyn_count.min(MAX_DYN) {
        let d: Dyn = image.read_at(dyn_start, i)?;
        match d.d_tag {
            DT_NULL => break,
            DT_STRTAB => strtab = at(d.d_val),
            DT_STRSZ => strsz = usize::try_from(d.d_val).ok(),
            DT_SYMTAB => symtab = at(d.d_val),
            DT_HASH => hash = at(d.d_val),
            DT_GNU_HASH => gnu_hash = at(d.d_val),
            DT_SYMENT if usize::try_from(d.d_val).ok() != Some(size_of::<Sym>()) => return None,
            _ => {}
        }
    }
    Some(Dynamic { image, bias, strtab: strtab?, strsz, symtab: symtab?, hash, gnu_hash })
}

/// Number of symbols per `DT_HASH`: its `nchain` word.
fn sysv_count(d: &Dynamic, hash: usize) -> Option<usize> {
    let nchain: u32 = d.image.read_at(hash, 1)?;
    usize::try_from(nchain).ok()
}

/// Number of symbols per `DT_GNU_HASH`: one past the last symbol of the highest chain.
fn gnu_count(d: &Dynamic, gnu_hash: usize) -> Option<usize> {
    let img = d.image;
    let nbuckets = usize::try_from(img.read_at::<u32>(gnu_hash, 0)?).ok()?;
    let symoffset = usize::try_from(img.read_at::<u32>(gnu_hash, 1)?).ok()?;
    let bloom_size = usize::try_from(img.read_at::<u32>(gnu_hash, 2)?).ok()?;
    if nbuckets > MAX_BUCKETS || symoffset > MAX_SYMS || bloom_size > MAX_BUCKETS {
        return None;
    }
    // Header of 4 words, then `bloom_size` 64-bit bloom words, buckets, chains.
    let buckets = gnu_hash.checked_add(16 + bloom_size * size_of::<u64>())?;
    let mut last = 0;
    for i in 0..nbuckets {
        let b: u32 = img.read_at(buckets, i)?;
        last = last.max(usize::try_from(b).ok()?);
    }
    if last < symoffset {
        // All buckets empty: only the unhashed symbols below `symoffset` exist.
        return Some(symoffset);
    }
    let chains = buckets.checked_add(nbuckets * size_of::<u32>())?;
    // Walk the highest bucket's chain to its end (low bit set).
    while last < MAX_SYMS {
        let c: u32 = img.read_at(chains, last - symoffset)?;
        last += 1;
        if c & 1 != 0 {
            return Some(last);
        }
    }
    None
}

/// Whether the NUL-terminated string at `strtab + offset` is exactly `name`.
fn name_is(d: &Dynamic, offset: usize, name: &[u8]) -> bool {
    if d.strsz.is_some_and(|sz| offset.saturating_add(name.len()) >= sz) {
        return false;
    }
    let Some(start) = d.strtab.checked_add(offset) else {
        return false;
    };
    name.iter().chain(&[0u8]).enumerate().all(|(i, &want)| d.image.read_at::<u8>(start, i) == Some(want))
}

/// The address of the defined global or weak function `name`.
fn find_symbol(d: &Dynamic, name: &[u8]) -> Option<usize> {
    let count = match (d.hash, d.gnu_hash) {
        (Some(h), _) => sysv_count(d, h)?,
        (None, Some(g)) => gnu_count(d, g)?,
        (None, None) => return None,
    };
    for i in 0..count.min(MAX_SYMS) {
        let sym: Sym = d.image.read_at(d.symtab, i)?;
        let (bind, kind) = (sym.st_info >> 4, sym.st_info & 0xf);
        if kind != STT_FUNC
            || !(bind == STB_GLOBAL || bind == STB_WEAK)
            || sym.st_shndx == SHN_UNDEF
            || sym.st_value == 0
        {
            continue;
        }
        let Ok(offset) = usize::try_from(sym.st_name) else {
            continue;
        };
        if !name_is(d, offset, name) {
            continue;
        }
        let addr = d.bias.wrapping_add(usize::try_from(sym.st_value).ok()?);
        // The code must be inside the image.
        return d.image.contains(addr, 1).then_some(addr);
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
    fn both_hash_tables_count_the_same() {
        let Some(d) = real_vdso() else { return };
        let sysv = d.hash.map(|h| sysv_count(&d, h).unwrap());
        let gnu = d.gnu_hash.map(|g| gnu_count(&d, g).unwrap());
        assert!(sysv.is_some() || gnu.is_some());
        if let (Some(a), Some(b)) = (sysv, gnu) {
            assert_eq!(a, b);
        }
        // With only the GNU table the lookup still finds the function.
        if d.gnu_hash.is_some() {
            let gnu_only = Dynamic { hash: None, ..d };
            let name = CLOCK_GETTIME_NAME.unwrap();
            let addr = find_symbol(&gnu_only, name).unwrap();
            assert_eq!(Some(addr), clock_gettime().map(|f| f as usize));
        }
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
