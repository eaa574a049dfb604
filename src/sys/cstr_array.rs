//! Argument vectors as `execve` takes them: arrays of thin pointers to C
//! strings that end with a null pointer, borrowed, never copied.
//!
//! [`CStrArray`] is either such an array that already exists (the initial
//! stack's argv and envp) or a slice of `&CStr` that is turned into one only
//! when a program is started. Nothing here allocates or limits the length.

use core::ffi::CStr;
use core::fmt;
use core::iter::FusedIterator;
use core::marker::PhantomData;
use core::ops::Range;
use core::ptr::{self, NonNull};

/// A borrowed argument vector or environment: C strings that live for `'a`.
///
/// Made safely from a slice (`CStrArray::from(&["sh", ...])`, turned into a
/// null-terminated pointer array only when a program starts) or, `unsafe`ly,
/// from a null-terminated pointer array that exists already
/// ([`from_ptr`](Self::from_ptr)), which `execve` then gets as it is.
///
/// ```
/// use linux_event::sys::CStrArray;
/// let argv = CStrArray::from(&[c"sh", c"-c", c"exit 3"]);
/// assert_eq!(argv.len(), 3);
/// assert_eq!(argv.get(2), Some(c"exit 3"));
/// assert_eq!(argv.tail(1).iter().collect::<Vec<_>>(), [c"-c", c"exit 3"]);
/// ```
#[derive(Copy, Clone)]
pub struct CStrArray<'a> {
    repr: Repr<'a>,
}

#[derive(Copy, Clone)]
enum Repr<'a> {
    /// `len` non-null pointers, then a null one; each to a string living `'a`.
    Terminated { ptrs: NonNull<*const u8>, len: usize, _life: PhantomData<&'a CStr> },
    /// Fat references: made into a terminated array at spawn time.
    Slice(&'a [&'a CStr]),
}

// SAFETY: a `CStrArray` only reads what it points at, and its constructors'
// contracts keep the pointer array and the strings unchanged for `'a`, like
// a `&'a [&'a CStr]`, which is Send and Sync.
unsafe impl Send for CStrArray<'_> {}
// SAFETY: as above: shared access is read-only.
unsafe impl Sync for CStrArray<'_> {}

impl<'a> CStrArray<'a> {
    /// No strings at all.
    pub const fn empty() -> Self {
        CStrArray { repr: Repr::Slice(&[]) }
    }

    /// The strings of `strings`.
    pub const fn from_slice(strings: &'a [&'a CStr]) -> Self {
        CStrArray { repr: Repr::Slice(strings) }
    }

    /// The array at `ptrs`: pointers to NUL-terminated strings up to the first
    /// null pointer. Counting them reads the array once.
    ///
    /// # Safety
    ///
    /// `ptrs` must point at such an array, each pointer before the null one
    /// must point at a NUL-terminated string, and the array and the strings
    /// must stay valid and unchanged for `'a`.
    pub unsafe fn from_ptr(ptrs: *const *const u8) -> Self {
        let mut len = 0;
        // SAFETY: the contract makes every element up to the null one readable.
        while !unsafe { *ptrs.add(len) }.is_null() {
            len += 1;
        }
        // SAFETY: the contract also makes `ptrs` non-null (it points at an array).
        let ptrs = unsafe { NonNull::new_unchecked(ptrs.cast_mut()) };
        CStrArray { repr: Repr::Terminated { ptrs, len, _life: PhantomData } }
    }

    /// How many strings there are.
    pub const fn len(&self) -> usize {
        match self.repr {
            Repr::Terminated { len, .. } => len,
            Repr::Slice(s) => s.len(),
        }
    }

    /// Whether there are none.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The string at `i`.
    pub fn get(&self, i: usize) -> Option<&'a CStr> {
        match self.repr {
            Repr::Terminated { ptrs, len, .. } => {
                // SAFETY: `i < len` indexes a non-null element pointing at a
                // string that lives for 'a (the constructor's contract).
                (i < len).then(|| unsafe { c_str(*ptrs.as_ptr().add(i)) })
            }
            Repr::Slice(s) => s.get(i).copied(),
        }
    }

    /// The strings in order.
    pub fn iter(&self) -> CStrArrayIter<'a> {
        CStrArrayIter { array: *self, next: 0 }
    }

    /// Everything after the first `skip` strings (empty when there are fewer):
    /// the tail of a terminated array is still terminated, so `execve` gets
    /// it as it is too.
    pub fn tail(&self, skip: usize) -> CStrArray<'a> {
        let skip = skip.min(self.len());
        let repr = match self.repr {
            // SAFETY: `skip <= len`, so the result points inside the array (at
            // the null pointer at most): still non-null, still terminated.
            Repr::Terminated { ptrs, len, .. } => {
                Repr::Terminated { ptrs: unsafe { ptrs.add(skip) }, len: len - skip, _life: PhantomData }
            }
            Repr::Slice(s) => Repr::Slice(&s[skip..]),
        };
        CStrArray { repr }
    }

    /// The first string that starts with `prefix`, without the prefix: for
    /// an environment, `find(b"PATH=")` is PATH's value.
    pub fn find(&self, prefix: &[u8]) -> Option<&'a [u8]> {
        self.iter().find_map(|s| s.to_bytes().strip_prefix(prefix))
    }

    /// The pointer array, if this is a terminated one already.
    pub(crate) fn terminated(&self) -> Option<Terminated<'a>> {
        match self.repr {
            Repr::Terminated { ptrs, .. } => Some(Terminated { ptrs, _life: PhantomData }),
            Repr::Slice(_) => None,
        }
    }

    /// The slice, if this was made from one.
    pub(crate) fn as_slice(&self) -> Option<&'a [&'a CStr]> {
        match self.repr {
            Repr::Slice(s) => Some(s),
            Repr::Terminated { .. } => None,
        }
    }
}

impl Default for CStrArray<'_> {
    fn default() -> Self {
        CStrArray::empty()
    }
}

impl<'a> From<&'a [&'a CStr]> for CStrArray<'a> {
    fn from(strings: &'a [&'a CStr]) -> Self {
        CStrArray::from_slice(strings)
    }
}

impl<'a, const N: usize> From<&'a [&'a CStr; N]> for CStrArray<'a> {
    fn from(strings: &'a [&'a CStr; N]) -> Self {
        CStrArray::from_slice(strings)
    }
}

impl fmt::Debug for CStrArray<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The strings of a [`CStrArray`].
#[derive(Clone, Debug)]
pub struct CStrArrayIter<'a> {
    array: CStrArray<'a>,
    next: usize,
}

impl<'a> Iterator for CStrArrayIter<'a> {
    type Item = &'a CStr;

    fn next(&mut self) -> Option<&'a CStr> {
        let s = self.array.get(self.next)?;
        self.next += 1;
        Some(s)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.array.len() - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for CStrArrayIter<'_> {}
impl FusedIterator for CStrArrayIter<'_> {}

/// A null-terminated pointer array whose owner may reorder it in place, as
/// getopt permutes `argv`: the initial stack's argv, for an options parser
/// that moves the program's arguments after its own.
///
/// Reordering keeps every string and the final null pointer, so any view of
/// the same array stays a valid argument vector.
pub struct CStrArrayMut<'a> {
    ptrs: NonNull<*const u8>,
    len: usize,
    _life: PhantomData<&'a mut [&'a CStr]>,
}

impl<'a> CStrArrayMut<'a> {
    /// The array at `ptrs`, as for [`CStrArray::from_ptr`].
    ///
    /// # Safety
    ///
    /// As for [`CStrArray::from_ptr`], except that the pointer array (not the
    /// strings) changes through this value: it must be writable, and nothing
    /// else may write it or hold a reference into it for `'a` (reads through
    /// other raw pointers between calls see a reordered, still valid array).
    pub unsafe fn from_ptr(ptrs: *mut *const u8) -> Self {
        // SAFETY: forwarded from this function's contract.
        let array = unsafe { CStrArray::from_ptr(ptrs) };
        // SAFETY: the contract also makes `ptrs` non-null.
        CStrArrayMut { ptrs: unsafe { NonNull::new_unchecked(ptrs) }, len: array.len(), _life: PhantomData }
    }

    /// How many strings there are.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The string at `i`.
    pub fn get(&self, i: usize) -> Option<&'a CStr> {
        // SAFETY: `i < len` indexes a non-null element, readable through this
        // value; the strings live for 'a (the constructor's contract).
        (i < self.len).then(|| unsafe { c_str(*self.ptrs.as_ptr().add(i)) })
    }

    /// Rotates `range` left by `mid`, as `slice[range].rotate_left(mid)`:
    /// the strings at `range.start + mid..range.end` move before the others.
    /// Returns `false` (and changes nothing) when `range` is out of bounds or
    /// `mid` exceeds its length.
    pub fn rotate_left(&mut self, range: Range<usize>, mid: usize) -> bool {
        if range.start > range.end || range.end > self.len || mid > range.end - range.start {
            return false;
        }
        if mid == 0 || mid == range.end - range.start {
            return true;
        }
        // SAFETY: `range` lies inside the `len` elements, which this value
        // may write exclusively (the constructor's contract); the slice lives
        // only for this call. Rotating keeps the same pointers, so the array
        // stays valid for every reader.
        let part = unsafe { core::slice::from_raw_parts_mut(self.ptrs.as_ptr().add(range.start), range.len()) };
        // Three reversals rather than `slice::rotate_left`: the same result
        // in a few dozen bytes of code, where core's rotation (three
        // algorithms and an assertion) is about half a kilobyte.
        let Some((front, back)) = part.split_at_mut_checked(mid) else { return false };
        reverse(front);
        reverse(back);
        reverse(part);
        true
    }

    /// A read-only view, for as long as this borrow lasts.
    pub fn as_array(&self) -> CStrArray<'_> {
        CStrArray { repr: Repr::Terminated { ptrs: self.ptrs, len: self.len, _life: PhantomData } }
    }

    /// Everything after the first `skip` strings, read-only and terminated.
    pub fn tail(&self, skip: usize) -> CStrArray<'_> {
        self.as_array().tail(skip)
    }
}

/// Reverses `s` in place with no panicking path (`split_at_mut` of half
/// the length is always in bounds).
fn reverse<T>(s: &mut [T]) {
    let half = s.len() / 2;
    let Some((front, back)) = s.split_at_mut_checked(half) else { return };
    for (a, b) in front.iter_mut().zip(back.iter_mut().rev()) {
        core::mem::swap(a, b);
    }
}

impl fmt::Debug for CStrArrayMut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_array().fmt(f)
    }
}

/// A pointer array known to be null-terminated, every entry a C string that
/// outlives `'a`: what `execve` is handed.
#[derive(Copy, Clone)]
pub(crate) struct Terminated<'a> {
    ptrs: NonNull<*const u8>,
    _life: PhantomData<&'a CStr>,
}

impl<'a> Terminated<'a> {
    /// Writes pointers to `strings` and a null pointer into `storage`;
    /// `None` if `storage` has fewer than `strings.len() + 1` entries.
    pub(crate) fn fill(strings: &[&'a CStr], storage: &'a mut [*const u8]) -> Option<Terminated<'a>> {
        *storage.get_mut(strings.len())? = ptr::null();
        for (slot, s) in storage.iter_mut().zip(strings) {
            *slot = s.as_ptr().cast();
        }
        Some(Terminated { ptrs: NonNull::from(storage).cast(), _life: PhantomData })
    }

    /// The address to hand to the kernel.
    pub(crate) fn as_ptr(&self) -> *const *const u8 {
        self.ptrs.as_ptr()
    }
}

/// The NUL-terminated string at `s`.
///
/// Its length is counted with volatile reads: `CStr::from_ptr` would call
/// libc's `strlen`, and a plain loop may be turned into a call to it by the
/// optimiser (a no-libc program has no `strlen`).
///
/// # Safety
///
/// `s` must point at a NUL-terminated string that lives, unchanged, for `'a`.
pub(crate) unsafe fn c_str<'a>(s: *const u8) -> &'a CStr {
    let mut len = 0;
    // SAFETY: every byte up to and including the NUL is readable, by the contract.
    while unsafe { ptr::read_volatile(s.add(len)) } != 0 {
        len += 1;
    }
    // SAFETY: the `len + 1` bytes at `s` end with the first NUL, and live for 'a.
    unsafe { CStr::from_bytes_with_nul_unchecked(core::slice::from_raw_parts(s, len + 1)) }
}

/// The C string at the start of `buf`: its bytes up to and including the
/// first NUL, or `None` if it has none. `CStr::from_bytes_until_nul` does
/// the same through core's `memchr` (about 400 bytes of a static binary
/// that has no other use for it); this is a plain scan.
///
/// ```
/// let buf = *b"/proc\0junk";
/// assert_eq!(linux_event::sys::c_str_in(&buf), Some(c"/proc"));
/// assert_eq!(linux_event::sys::c_str_in(b"no nul"), None);
/// ```
pub fn c_str_in(buf: &[u8]) -> Option<&CStr> {
    let nul = buf.iter().position(|&b| b == 0)?;
    let with_nul = buf.get(..=nul)?;
    // SAFETY: `with_nul` ends with its first NUL byte, at `nul`, and has no other.
    Some(unsafe { CStr::from_bytes_with_nul_unchecked(with_nul) })
}

/// A terminated array of `strings` that lives for the rest of the process
/// (its pointers are leaked): what other modules' tests hand to a spawn.
#[cfg(test)]
pub(crate) fn leaked_terminated(strings: &[&'static CStr]) -> CStrArray<'static> {
    let raw = std::vec::Vec::leak(strings.iter().map(|s| s.as_ptr().cast()).chain([ptr::null()]).collect());
    // SAFETY: `raw` is a null-terminated array of pointers to 'static strings, leaked, so
    // it stays valid and unchanged for the rest of the process.
    unsafe { CStrArray::from_ptr(raw.as_ptr()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    const STRINGS: [&CStr; 4] = [c"prog", c"-e", c"", c"last"];

    fn terminated(strings: &[&CStr]) -> Vec<*const u8> {
        strings.iter().map(|s| s.as_ptr().cast()).chain([ptr::null()]).collect()
    }

    #[test]
    fn a_terminated_array_reads_like_the_slice_it_came_from() {
        let raw = terminated(&STRINGS);
        // SAFETY: `raw` is a null-terminated array of pointers to 'static strings, alive and
        // unchanged for as long as `array` is used.
        let array = unsafe { CStrArray::from_ptr(raw.as_ptr()) };
        let slice = CStrArray::from(&STRINGS);
        for a in [array, slice] {
            assert_eq!(a.len(), 4);
            assert_eq!(a.iter().collect::<Vec<_>>(), STRINGS);
            assert_eq!(a.get(2), Some(c""));
            assert_eq!(a.get(4), None);
            assert_eq!(a.tail(3).iter().collect::<Vec<_>>(), [c"last"]);
            assert!(a.tail(4).is_empty() && a.tail(99).is_empty());
            assert_eq!(a.find(b"la"), Some(&b"st"[..]));
            assert_eq!(a.iter().len(), 4);
        }
        assert_eq!(array.terminated().map(|t| t.as_ptr()), Some(raw.as_ptr()));
        // The tail of a terminated array is the same memory, one element on.
        assert_eq!(array.tail(1).terminated().map(|t| t.as_ptr()), Some(raw[1..].as_ptr()));
        assert!(slice.terminated().is_none());
        assert!(CStrArray::empty().is_empty() && CStrArray::default().iter().next().is_none());
        assert_eq!(std::format!("{:?}", CStrArray::from(&[c"a", c"b"])), r#"["a", "b"]"#);
    }

    #[test]
    fn fill_writes_the_pointers_and_a_null_and_needs_room_for_it() {
        let mut storage = [ptr::dangling::<u8>(); 5];
        let t = Terminated::fill(&STRINGS, &mut storage).unwrap();
        // SAFETY: `fill` made a terminated array of pointers to the 'static strings.
        let back = unsafe { CStrArray::from_ptr(t.as_ptr()) };
        assert_eq!(back.iter().collect::<Vec<_>>(), STRINGS);
        let mut short = [ptr::null(); 4];
        assert!(Terminated::fill(&STRINGS, &mut short).is_none());
        let mut one = [ptr::dangling::<u8>(); 1];
        let at = one.as_ptr();
        assert!(Terminated::fill(&[], &mut one).is_some_and(|t| t.as_ptr() == at));
        assert!(one[0].is_null());
    }

    #[test]
    fn rotating_keeps_every_string_and_the_final_null() {
        let mut raw = terminated(&[c"init", c"sh", c"-v", c"--", c"-c", c"x"]);
        // SAFETY: `raw` is a writable null-terminated array of pointers to 'static strings,
        // used through `argv` alone while it lives.
        let mut argv = unsafe { CStrArrayMut::from_ptr(raw.as_mut_ptr()) };
        // Move "-v" and "--" before "sh", as getopt does.
        assert!(argv.rotate_left(1..4, 1));
        assert_eq!(argv.as_array().iter().collect::<Vec<_>>(), [c"init", c"-v", c"--", c"sh", c"-c", c"x"]);
        assert_eq!(argv.tail(3).iter().collect::<Vec<_>>(), [c"sh", c"-c", c"x"]);
        assert!(argv.rotate_left(0..6, 0) && argv.rotate_left(2..2, 0) && argv.rotate_left(0..6, 6));
        assert!(!argv.rotate_left(0..7, 1), "past the end");
        assert!(!argv.rotate_left(3..5, 3), "mid beyond the range");
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = 4..2;
        assert!(!argv.rotate_left(backwards, 0));
        assert_eq!(argv.len(), 6);
        assert_eq!(argv.get(5), Some(c"x"));
        assert!(raw[6].is_null());
    }
}
