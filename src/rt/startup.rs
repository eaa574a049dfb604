//! `Startup`: what the kernel puts on a new process's stack, read in place:
//! `argc`, the `argv` and `envp` pointer arrays, and the auxiliary vector.
//!
//! Parsing only follows the layout the kernel guarantees (each array ends with a
//! null word, the auxv with `AT_NULL`); it never copies or allocates, and writes
//! only when its owner reorders `argv` ([`Startup::argv_mut`], as getopt does).

use crate::sys::auxv::AT_NULL;
use crate::sys::cstr_array::c_str;
use crate::sys::{CStrArray, CStrArrayMut};
use core::ffi::CStr;
use core::iter::FusedIterator;

/// The process's arguments, environment and auxiliary vector, as the kernel laid
/// them out on the initial stack: five words that point into that stack.
///
/// The arrays are handed out as they are ([`argv`](Self::argv), [`envp`](Self::envp)),
/// so a program can start another with any number of arguments and variables
/// without copying them. There is one `Startup` per process, which is why it is
/// neither `Copy` nor `Clone`: [`argv_mut`](Self::argv_mut) may reorder `argv`.
///
/// ```
/// # use linux_event::rt::Startup;
/// let mut startup = Startup::empty();
/// assert_eq!(startup.args().len(), 0);
/// assert_eq!(startup.var(b"HOME"), None);
/// assert!(startup.argv().is_empty() && startup.envp().is_empty());
/// assert!(startup.argv_mut().is_empty());
/// ```
#[derive(Debug)]
pub struct Startup {
    argc: usize,
    argv: *mut *const u8,
    envc: usize,
    envp: *const *const u8,
    auxv: *const usize,
}

/// A startup block with no arguments, no environment and an empty auxv.
static EMPTY: [usize; 4] = [0, 0, 0, AT_NULL];

impl Startup {
    /// Reads the block at `sp`: `argc`, then `argv[0..argc]` and a null word, then the
    /// environment pointers and a null word, then `(key, value)` pairs up to `AT_NULL`.
    ///
    /// # Safety
    ///
    /// `sp` must point at such a block (the kernel's initial stack pointer does), every
    /// pointer in it must be a NUL-terminated string, and all of it must stay valid and
    /// unchanged for the rest of the program except through this value: the `argv`
    /// pointer array must be writable if [`argv_mut`](Self::argv_mut) is used, and no
    /// other `Startup` may be made from the same block.
    pub unsafe fn from_stack(sp: *const usize) -> Startup {
        // SAFETY: by the contract `sp` points at `argc`, followed by `argc + 1` argv words;
        // the environment follows and ends with a null word, and the auxv follows that.
        unsafe {
            let argc = *sp;
            let argv = sp.add(1).cast::<*const u8>().cast_mut();
            let envp = argv.add(argc + 1).cast_const();
            let mut envc = 0;
            while !(*envp.add(envc)).is_null() {
                envc += 1;
            }
            Startup { argc, argv, envc, envp, auxv: envp.add(envc + 1).cast::<usize>() }
        }
    }

    /// A block with no arguments, no environment and an empty auxiliary vector: for
    /// running a no-libc `main` from an ordinary std program or a test.
    pub fn empty() -> Startup {
        // SAFETY: EMPTY is argc 0, a null argv end, a null envp end and AT_NULL, in a static;
        // its argv has no entries, so `argv_mut` can never write to it.
        unsafe { Startup::from_stack(EMPTY.as_ptr()) }
    }

    /// The arguments, `argv[0]` (the program name, as the caller gave it) first.
    pub fn args(&self) -> CStrs {
        CStrs { next: self.argv.cast_const(), left: self.argc }
    }

    /// The environment entries, each `NAME=value`.
    pub fn env(&self) -> CStrs {
        CStrs { next: self.envp, left: self.envc }
    }

    /// `argv` as the null-terminated array it is (`execve` gets it as it is).
    pub fn argv(&self) -> CStrArray<'_> {
        // SAFETY: `argv` holds `argc` string pointers and a null one (`from_stack`'s
        // contract), and it cannot be reordered while `self` is borrowed.
        unsafe { CStrArray::from_ptr(self.argv.cast_const()) }
    }

    /// `argv`, reorderable in place: an options parser can move the program's own
    /// arguments behind its options, as GNU getopt does, and hand that tail on.
    pub fn argv_mut(&mut self) -> CStrArrayMut<'_> {
        // SAFETY: as in `argv`; the array is writable (`from_stack`'s contract) and `&mut
        // self` makes this its only writer. Reordering keeps it a valid argument vector,
        // so `args()` iterators made earlier still read valid strings.
        unsafe { CStrArrayMut::from_ptr(self.argv) }
    }

    /// The environment as the null-terminated array it is (`execve` gets it as it is).
    pub fn envp(&self) -> CStrArray<'static> {
        // SAFETY: `envp` holds `envc` string pointers and a null one, and nothing ever
        // writes it (`from_stack`'s contract).
        unsafe { CStrArray::from_ptr(self.envp) }
    }

    /// The value of environment variable `name` (the bytes after the first `=`).
    pub fn var(&self, name: &[u8]) -> Option<&'static CStr> {
        self.env().find_map(|entry| {
            let bytes = entry.to_bytes_with_nul();
            let value = bytes.strip_prefix(name)?.strip_prefix(b"=")?;
            CStr::from_bytes_with_nul(value).ok()
        })
    }

    /// The auxiliary vector's `(key, value)` pairs, `AT_NULL` excluded.
    pub fn auxv(&self) -> Auxv {
        Auxv { next: self.auxv }
    }

    /// The value of auxiliary vector entry `key` (e.g. [`AT_PAGESZ`](super::AT_PAGESZ)),
    /// if present.
    pub fn aux(&self, key: usize) -> Option<usize> {
        self.auxv().find(|&(k, _)| k == key).map(|(_, v)| v)
    }
}

/// The strings of `argv` or `envp`, as `&'static CStr`.
#[derive(Clone, Debug)]
pub struct CStrs {
    next: *const *const u8,
    left: usize,
}

impl Iterator for CStrs {
    type Item = &'static CStr;

    fn next(&mut self) -> Option<&'static CStr> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // SAFETY: `left` counted only non-null entries of an array that `Startup::from_stack`'s
        // contract keeps valid and NUL-terminated for the whole program.
        unsafe {
            let s = *self.next;
            self.next = self.next.add(1);
            Some(c_str(s))
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for CStrs {}
impl FusedIterator for CStrs {}

/// The `(key, value)` pairs of the auxiliary vector.
#[derive(Clone, Debug)]
pub struct Auxv {
    next: *const usize,
}

impl Iterator for Auxv {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        // SAFETY: `next` points at a pair of the vector, which runs up to an AT_NULL pair
        // (`Startup::from_stack`'s contract); it never moves past that pair.
        let key = unsafe { *self.next };
        if key == AT_NULL {
            return None;
        }
        // SAFETY: as above: a pair whose key is not AT_NULL is followed by another pair.
        unsafe {
            let value = *self.next.add(1);
            self.next = self.next.add(2);
            Some((key, value))
        }
    }
}

impl FusedIterator for Auxv {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::auxv::{AT_PAGESZ, AT_RANDOM, AT_SYSINFO_EHDR};

    const PROG: &CStr = c"/bin/prog";
    const ARG: &CStr = c"--flag";
    const EMPTY_ARG: &CStr = c"";
    const HOME: &CStr = c"HOME=/root";
    const HOMER: &CStr = c"HOMER=simpson";
    const EQ: &CStr = c"X=a=b";

    /// A fake initial stack: argc, argv, NULL, envp, NULL, auxv, AT_NULL.
    fn stack(args: &[&CStr], env: &[&CStr], aux: &[(usize, usize)]) -> std::vec::Vec<usize> {
        let mut s = std::vec![args.len()];
        s.extend(args.iter().map(|a| a.as_ptr() as usize));
        s.push(0);
        s.extend(env.iter().map(|e| e.as_ptr() as usize));
        s.push(0);
        for &(k, v) in aux {
            s.extend([k, v]);
        }
        s.extend([AT_NULL, 0]);
        s
    }

    fn parse(s: &[usize]) -> Startup {
        // SAFETY: `s` is a well-formed block of 'static strings (the constants above), and the
        // tests keep `s` alive for as long as they use the result.
        unsafe { Startup::from_stack(s.as_ptr()) }
    }

    #[test]
    fn args_env_and_auxv_from_a_fake_initial_stack() {
        let s = stack(&[PROG, ARG, EMPTY_ARG], &[HOMER, HOME, EQ], &[(AT_PAGESZ, 4096), (AT_SYSINFO_EHDR, 0x7000)]);
        let st = parse(&s);
        let args: std::vec::Vec<_> = st.args().collect();
        assert_eq!(args, [PROG, ARG, EMPTY_ARG]);
        assert_eq!(st.args().len(), 3);
        assert_eq!(st.env().collect::<std::vec::Vec<_>>(), [HOMER, HOME, EQ]);
        assert_eq!(st.env().len(), 3);
        assert_eq!(st.auxv().collect::<std::vec::Vec<_>>(), [(AT_PAGESZ, 4096), (AT_SYSINFO_EHDR, 0x7000)]);
        assert_eq!(st.aux(AT_SYSINFO_EHDR), Some(0x7000));
        assert_eq!(st.aux(AT_RANDOM), None);
    }

    #[test]
    fn var_matches_whole_names_only() {
        let s = stack(&[PROG], &[HOMER, HOME, EQ], &[]);
        let st = parse(&s);
        assert_eq!(st.var(b"HOME"), Some(c"/root"));
        assert_eq!(st.var(b"HOMER"), Some(c"simpson"));
        assert_eq!(st.var(b"X"), Some(c"a=b"));
        assert_eq!(st.var(b"HOM"), None);
        assert_eq!(st.var(b""), None);
    }

    #[test]
    fn empty_blocks() {
        for st in [Startup::empty(), parse(&stack(&[], &[], &[]))] {
            assert_eq!(st.args().next(), None);
            assert_eq!(st.env().next(), None);
            assert_eq!(st.auxv().next(), None);
        }
        // No arguments but an environment and auxv: argv's null word is skipped correctly.
        let s = stack(&[], &[HOME], &[(AT_PAGESZ, 65536)]);
        let st = parse(&s);
        assert_eq!(st.env().collect::<std::vec::Vec<_>>(), [HOME]);
        assert_eq!(st.aux(AT_PAGESZ), Some(65536));
    }

    #[test]
    fn argv_and_envp_are_the_stacks_own_arrays_and_argv_can_be_reordered() {
        let mut s = stack(&[PROG, ARG, EMPTY_ARG], &[HOME, EQ], &[(AT_PAGESZ, 4096)]);
        // SAFETY: `s` is a well-formed, writable block of 'static strings that outlives `st`;
        // `as_mut_ptr` keeps it writable through the pointer.
        let mut st = unsafe { Startup::from_stack(s.as_mut_ptr()) };
        let before = st.args();
        assert_eq!(st.argv().iter().collect::<std::vec::Vec<_>>(), [PROG, ARG, EMPTY_ARG]);
        assert_eq!(st.envp().iter().collect::<std::vec::Vec<_>>(), [HOME, EQ]);
        let mut argv = st.argv_mut();
        assert!(argv.rotate_left(1..3, 1));
        assert_eq!(argv.tail(1).iter().collect::<std::vec::Vec<_>>(), [EMPTY_ARG, ARG]);
        // Reordered in place: every view of the block sees the new order, and the
        // environment and auxv behind it are untouched.
        assert_eq!(st.args().collect::<std::vec::Vec<_>>(), [PROG, EMPTY_ARG, ARG]);
        assert_eq!(before.collect::<std::vec::Vec<_>>(), [PROG, EMPTY_ARG, ARG]);
        assert_eq!(st.env().collect::<std::vec::Vec<_>>(), [HOME, EQ]);
        assert_eq!(st.aux(AT_PAGESZ), Some(4096));
        assert_eq!(s[4], 0, "argv's null word");
    }

    #[test]
    fn iterators_stay_finished() {
        let s = stack(&[PROG], &[], &[(AT_PAGESZ, 4096)]);
        let st = parse(&s);
        let mut args = st.args();
        assert!(args.next().is_some());
        assert_eq!((args.next(), args.next()), (None, None));
        let mut aux = st.auxv();
        assert!(aux.next().is_some());
        assert_eq!((aux.next(), aux.next()), (None, None));
    }

    #[test]
    fn this_process_auxv_agrees_with_the_kernel() {
        // Build a block from this process's real auxv (/proc/self/auxv) and check that the
        // values the rt would hand to the clock are the ones the sys layer found itself.
        let raw = std::fs::read("/proc/self/auxv").unwrap();
        let words: std::vec::Vec<usize> =
            raw.chunks_exact(size_of::<usize>()).map(|c| usize::from_ne_bytes(c.try_into().unwrap())).collect();
        let pairs: std::vec::Vec<(usize, usize)> =
            words.chunks_exact(2).map(|p| (p[0], p[1])).take_while(|&(k, _)| k != AT_NULL).collect();
        let s = stack(&[PROG], &[], &pairs);
        let st = parse(&s);
        assert_eq!(st.aux(AT_SYSINFO_EHDR).unwrap_or(0), crate::sys::auxv::sysinfo_ehdr());
        assert_eq!(st.aux(AT_PAGESZ).map(|p| p.is_power_of_two()), Some(true));
    }
}
