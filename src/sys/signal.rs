//! Signal masks and dispositions: `SigSet`, `rt_sigprocmask`, `rt_sigaction`
//! (default/ignore only), `kill`, `tgkill`, `getpid`, `gettid`.
//!
//! Never installs a handler: the loop receives signals through signalfd, and
//! a handler would need a restorer trampoline this crate does not carry.

use super::call::check;
use super::errno::Errno;
use core::ptr;
use linux_raw_sys::general as k;

/// The highest signal number Linux has (`_NSIG`, 64 on every supported CPU).
pub const MAX_SIGNAL: i32 = k::_NSIG as i32;

macro_rules! signal_numbers {
    ($($name:ident = $value:expr),* $(,)?) => {
        $(
            #[doc = concat!("`", stringify!($name), "` (", stringify!($value), " on every supported CPU).")]
            pub const $name: i32 = $value;
        )*
        /// Names in number order (`n - 1` spaces before signal `n`'s), for
        /// the standard signals 1..=31: one string, not a table of `&str`
        /// (16 bytes of pointer and length per entry).
        const NAMES: &str = concat!($(stringify!($name), " "),*);
    };
}

/// The name of a signal number (`"SIGTERM"`), or `None`.
pub fn signal_name(signo: i32) -> Option<&'static str> {
    let (start, end) = names().nth(usize::try_from(signo).ok()?.checked_sub(1)?)?;
    NAMES.get(start..end)
}

/// Where each name lies in `NAMES`, in number order.
fn names() -> impl Iterator<Item = (usize, usize)> {
    let mut start = 0;
    NAMES.bytes().enumerate().filter(|&(_, b)| b == b' ').map(move |(end, _)| {
        let name = (start, end);
        start = end + 1;
        name
    })
}

/// The number of a signal name, with or without the `SIG` prefix (`"TERM"`,
/// `"SIGTERM"`), or `None`.
pub fn signal_number(name: &str) -> Option<i32> {
    signal_number_of(name.as_bytes())
}

/// [`signal_number`] for bytes that need not be UTF-8 (a command-line
/// argument): no UTF-8 check is linked for it.
pub fn signal_number_of(name: &[u8]) -> Option<i32> {
    let bare = name.strip_prefix(b"SIG").unwrap_or(name);
    let i = names().position(|(start, end)| NAMES.as_bytes().get(start + 3..end) == Some(bare))?;
    Some(i as i32 + 1)
}

signal_numbers!(
    SIGHUP = 1,
    SIGINT = 2,
    SIGQUIT = 3,
    SIGILL = 4,
    SIGTRAP = 5,
    SIGABRT = 6,
    SIGBUS = 7,
    SIGFPE = 8,
    SIGKILL = 9,
    SIGUSR1 = 10,
    SIGSEGV = 11,
    SIGUSR2 = 12,
    SIGPIPE = 13,
    SIGALRM = 14,
    SIGTERM = 15,
    SIGSTKFLT = 16,
    SIGCHLD = 17,
    SIGCONT = 18,
    SIGSTOP = 19,
    SIGTSTP = 20,
    SIGTTIN = 21,
    SIGTTOU = 22,
    SIGURG = 23,
    SIGXCPU = 24,
    SIGXFSZ = 25,
    SIGVTALRM = 26,
    SIGPROF = 27,
    SIGWINCH = 28,
    SIGIO = 29,
    SIGPWR = 30,
    SIGSYS = 31,
);

/// The first real-time signal the kernel offers (no libc reserves any here).
pub const SIGRTMIN: i32 = 32;
/// The last real-time signal.
pub const SIGRTMAX: i32 = 64;

/// A set of signals 1..=64, in the kernel's layout (one 64-bit word).
///
/// ```
/// use linux_event::sys::SigSet;
/// let s = SigSet::empty().with(15).with(10);
/// assert!(s.contains(15) && !s.contains(9));
/// assert_eq!(s.iter().collect::<Vec<_>>(), [10, 15]);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]
#[repr(transparent)]
pub struct SigSet(u64);

impl SigSet {
    /// No signal.
    pub const fn empty() -> SigSet {
        SigSet(0)
    }
    /// Every signal 1..=64.
    pub const fn full() -> SigSet {
        SigSet(u64::MAX)
    }
    /// Wraps the kernel's bit word (bit `n - 1` is signal `n`).
    pub const fn from_bits(bits: u64) -> SigSet {
        SigSet(bits)
    }
    /// The kernel's bit word.
    pub const fn bits(self) -> u64 {
        self.0
    }
    const fn bit(signo: i32) -> u64 {
        if signo >= 1 && signo <= MAX_SIGNAL { 1 << (signo - 1) } else { 0 }
    }
    /// This set plus `signo` (numbers outside 1..=64 are ignored).
    pub const fn with(self, signo: i32) -> SigSet {
        SigSet(self.0 | Self::bit(signo))
    }
    /// This set minus `signo`.
    pub const fn without(self, signo: i32) -> SigSet {
        SigSet(self.0 & !Self::bit(signo))
    }
    /// Whether `signo` is in the set.
    pub const fn contains(self, signo: i32) -> bool {
        Self::bit(signo) != 0 && self.0 & Self::bit(signo) != 0
    }
    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The signals in the set, ascending.
    pub fn iter(self) -> impl Iterator<Item = i32> {
        (1..=MAX_SIGNAL).filter(move |&s| self.contains(s))
    }
}

/// How `sigprocmask` changes the mask.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MaskHow {
    /// Add the set.
    Block = k::SIG_BLOCK as isize,
    /// Remove the set.
    Unblock = k::SIG_UNBLOCK as isize,
    /// Replace the mask with the set.
    Set = k::SIG_SETMASK as isize,
}

/// Changes the calling thread's signal mask; returns the previous mask.
/// Masks are per thread: other threads keep theirs.
pub fn sigprocmask(how: MaskHow, set: SigSet) -> Result<SigSet, Errno> {
    let mut old = SigSet::empty();
    // SAFETY: `set` and `old` are valid 8-byte sigsets for the call (the
    // kernel's sigset size on every supported CPU is 8, passed explicitly).
    check(unsafe {
        sc::syscall4(
            k::__NR_rt_sigprocmask as usize,
            how as usize,
            ptr::addr_of!(set) as usize,
            ptr::addr_of_mut!(old) as usize,
            8,
        )
    })?;
    Ok(old)
}

/// The calling thread's signal mask.
pub fn current_mask() -> Result<SigSet, Errno> {
    let mut old = SigSet::empty();
    // SAFETY: a null new set only reads the mask into `old`, valid for writes.
    check(unsafe {
        sc::syscall4(k::__NR_rt_sigprocmask as usize, k::SIG_BLOCK as usize, 0, ptr::addr_of_mut!(old) as usize, 8)
    })?;
    Ok(old)
}

/// The kernel's `struct sigaction` for `rt_sigaction`: handler, flags,
/// restorer, mask on x86_64 and aarch64; riscv64 has no restorer field.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    #[cfg(not(target_arch = "riscv64"))]
    restorer: usize,
    mask: u64,
}

const _: () = assert!(core::mem::size_of::<KernelSigaction>() == core::mem::size_of::<k::kernel_sigaction>());

const SIG_DFL: usize = 0;
const SIG_IGN: usize = 1;

/// A signal's disposition, as far as a process without handlers cares.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// The kernel's default action.
    Default,
    /// Ignored (survives `execve`).
    Ignore,
    /// A handler is installed (by someone else: this crate never installs one).
    Handler,
}

/// Sets `signo` to its default action or to ignored; returns the previous
/// disposition. `EINVAL` for SIGKILL, SIGSTOP and numbers outside 1..=64.
pub fn set_disposition(signo: i32, to: Disposition) -> Result<Disposition, Errno> {
    let handler = match to {
        Disposition::Default => SIG_DFL,
        Disposition::Ignore => SIG_IGN,
        Disposition::Handler => return Err(Errno::EINVAL),
    };
    let new = KernelSigaction { handler, ..KernelSigaction::default() };
    sigaction(signo, Some(&new))
}

/// The current disposition of `signo`.
pub fn disposition(signo: i32) -> Result<Disposition, Errno> {
    sigaction(signo, None)
}

fn sigaction(signo: i32, new: Option<&KernelSigaction>) -> Result<Disposition, Errno> {
    let mut old = KernelSigaction::default();
    let new_ptr = new.map_or(0, |n| n as *const KernelSigaction as usize);
    // SAFETY: `new_ptr` is null or points at a valid sigaction borrowed for the
    // call; `old` is valid for writes; the mask size is the kernel's (8).
    check(unsafe {
        sc::syscall4(k::__NR_rt_sigaction as usize, signo as usize, new_ptr, ptr::addr_of_mut!(old) as usize, 8)
    })?;
    Ok(match old.handler {
        SIG_DFL => Disposition::Default,
        SIG_IGN => Disposition::Ignore,
        _ => Disposition::Handler,
    })
}

/// Takes one pending signal of `set` off the calling thread's (or the
/// process's) queue without waiting: `Ok(Some(signo))`, or `Ok(None)` when
/// none of `set` is pending. Used to discard what a watcher left unread
/// before its signal is unblocked.
pub fn take_pending(set: SigSet) -> Result<Option<i32>, Errno> {
    let zero = k::__kernel_timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `set` is a valid 8-byte sigset, the info pointer is null (not
    // wanted), `zero` is a valid timespec; all borrowed for the call.
    let r = check(unsafe {
        sc::syscall4(k::__NR_rt_sigtimedwait as usize, ptr::addr_of!(set) as usize, 0, ptr::addr_of!(zero) as usize, 8)
    });
    match r {
        Ok(signo) => Ok(Some(signo as i32)),
        Err(Errno::EAGAIN) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sends `signo` to process `pid` (negative: to a process group; 0: ours).
pub fn kill(pid: i32, signo: i32) -> Result<(), Errno> {
    // SAFETY: takes no pointers.
    check(unsafe { sc::syscall2(k::__NR_kill as usize, pid as isize as usize, signo as usize) }).map(drop)
}

/// Sends `signo` to one thread of a process.
pub fn tgkill(pid: i32, tid: i32, signo: i32) -> Result<(), Errno> {
    // SAFETY: takes no pointers.
    check(unsafe { sc::syscall3(k::__NR_tgkill as usize, pid as usize, tid as usize, signo as usize) }).map(drop)
}

/// This process's id.
pub fn getpid() -> i32 {
    // SAFETY: takes no pointers and cannot fail.
    unsafe { sc::syscall0(k::__NR_getpid as usize) as i32 }
}

/// This thread's id.
pub fn gettid() -> i32 {
    // SAFETY: takes no pointers and cannot fail.
    unsafe { sc::syscall0(k::__NR_gettid as usize) as i32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_round_trip() {
        assert_eq!(signal_name(SIGTERM), Some("SIGTERM"));
        assert_eq!(signal_number("TERM"), Some(15));
        assert_eq!(signal_number("SIGCHLD"), Some(17));
        assert_eq!(signal_number("NOPE"), None);
        assert_eq!(signal_name(0), None);
        assert_eq!(signal_name(1), Some("SIGHUP"));
        assert_eq!(signal_name(31), Some("SIGSYS"));
        assert_eq!(signal_name(32), None);
        assert_eq!(signal_number_of(b"SIGSYS"), Some(31));
        assert_eq!(signal_number_of(b"HUP"), Some(1));
        assert_eq!(signal_number_of(b"SIG"), None);
        assert_eq!(signal_number_of(b""), None);
        for n in 1..=31 {
            assert_eq!(signal_name(n).and_then(signal_number), Some(n));
        }
        assert_eq!((SIGCHLD as u32, SIGRTMIN as u32), (k::SIGCHLD, k::SIGRTMIN));
    }

    #[test]
    fn sigset_bits_are_the_kernels() {
        assert_eq!(SigSet::empty().with(1).bits(), 1);
        assert_eq!(SigSet::empty().with(64).bits(), 1 << 63);
        assert_eq!(SigSet::empty().with(0).with(65).with(-3), SigSet::empty());
        assert!(!SigSet::full().contains(0));
        assert_eq!(SigSet::full().without(9).iter().count(), 63);
    }

    #[test]
    fn kill_and_stop_cannot_be_ignored() {
        assert_eq!(set_disposition(SIGKILL, Disposition::Ignore), Err(Errno::EINVAL));
        assert_eq!(set_disposition(SIGSTOP, Disposition::Default), Err(Errno::EINVAL));
        assert_eq!(disposition(0), Err(Errno::EINVAL));
        assert_eq!(disposition(65), Err(Errno::EINVAL));
    }

    #[test]
    fn a_disposition_set_is_read_back_and_the_old_one_returned() {
        // Not SIGHUP or any signal whose disposition the parent may have set
        // (nohup ignores SIGHUP): SIGURG, which no other test here touches and
        // whose default action is to ignore it, so flipping it is harmless.
        // Whatever it was is put back, even if an assertion fails.
        struct Restore(Disposition);
        impl Drop for Restore {
            fn drop(&mut self) {
                set_disposition(SIGURG, self.0).unwrap();
            }
        }
        let inherited = disposition(SIGURG).unwrap();
        assert_ne!(inherited, Disposition::Handler, "nothing in this process installs a handler");
        let _restore = Restore(inherited);
        assert_eq!(set_disposition(SIGURG, Disposition::Ignore), Ok(inherited));
        assert_eq!(disposition(SIGURG), Ok(Disposition::Ignore));
        assert_eq!(set_disposition(SIGURG, Disposition::Default), Ok(Disposition::Ignore));
        assert_eq!(disposition(SIGURG), Ok(Disposition::Default));
        assert_eq!(set_disposition(SIGURG, Disposition::Handler), Err(Errno::EINVAL));
    }

    #[test]
    fn mask_changes_are_per_thread_and_reversible() {
        std::thread::spawn(|| {
            let before = current_mask().unwrap();
            let old = sigprocmask(MaskHow::Block, SigSet::empty().with(10)).unwrap();
            assert_eq!(old, before);
            assert!(current_mask().unwrap().contains(10));
            sigprocmask(MaskHow::Set, before).unwrap();
            assert_eq!(current_mask().unwrap(), before);
        })
        .join()
        .unwrap();
    }
}
