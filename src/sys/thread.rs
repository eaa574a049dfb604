//! Threads without libc: a stack from mmap with a guard page below it,
//! `clone` with the thread flags (the per-CPU entry is in `arch/`), and the
//! thread-only `exit`.
//!
//! A thread made here shares memory, fds, cwd and signal handlers with the
//! process (`CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND |
//! CLONE_THREAD | CLONE_SYSVSEM`): it is a thread, never a process a PID 1
//! would have to reap. It gets no TLS: it must run only code that needs none
//! (no libc, no panics). The kernel writes its tid into a word of the
//! caller's at creation and clears and futex-wakes that word when the thread
//! has exited (`CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID`): that is the join.

use super::call::check;
use super::errno::Errno;
use super::signal::{MaskHow, SigSet, sigprocmask};
use core::ptr::NonNull;
use core::sync::atomic::AtomicU32;
use linux_raw_sys::general as k;

#[cfg(target_arch = "aarch64")]
#[path = "../../arch/aarch64/thread.rs"]
mod arch;
#[cfg(target_arch = "riscv64")]
#[path = "../../arch/riscv64/thread.rs"]
mod arch;
#[cfg(target_arch = "x86_64")]
#[path = "../../arch/x86_64/thread.rs"]
mod arch;

/// The guard below every stack: a multiple of every page size Linux uses
/// on these CPUs (4, 16 and 64 KiB), so `mprotect` takes it as is.
pub(crate) const GUARD: usize = 64 * 1024;

/// A thread stack: `size` usable bytes above an inaccessible guard, in an
/// anonymous mapping of its own (touched pages only are ever allocated).
pub(crate) struct Stack {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: a `Stack` owns its mapping exclusively; it holds no references.
unsafe impl Send for Stack {}

impl Stack {
    /// A stack of at least `size` bytes (rounded up to 64 KiB) with a guard
    /// below. `ENOMEM` when the kernel refuses or the size overflows.
    pub(crate) fn new(size: usize) -> Result<Stack, Errno> {
        let size = size.checked_add(GUARD - 1).ok_or(Errno::ENOMEM)? / GUARD * GUARD;
        let len = size.max(GUARD).checked_add(GUARD).ok_or(Errno::ENOMEM)?;
        let prot = k::PROT_READ | k::PROT_WRITE;
        let flags = k::MAP_PRIVATE | k::MAP_ANONYMOUS | k::MAP_NORESERVE | k::MAP_STACK;
        // SAFETY: a NULL hint: the kernel picks an address that overlaps no
        // existing mapping; the result is owned by the value made below.
        let addr = check(unsafe {
            sc::syscall6(k::__NR_mmap as usize, 0, len, prot as usize, flags as usize, usize::MAX, 0)
        })?;
        let base = NonNull::new(addr as *mut u8).ok_or(Errno::ENOMEM)?;
        let stack = Stack { base, len };
        // SAFETY: the first GUARD bytes of our own fresh mapping, which
        // nothing references: from now on an overflow faults instead of
        // writing into whatever lies below.
        check(unsafe { sc::syscall3(k::__NR_mprotect as usize, addr, GUARD, k::PROT_NONE as usize) })?;
        Ok(stack)
    }

    /// The highest address, 16-byte aligned: where a stack starts.
    pub(crate) fn top(&self) -> usize {
        (self.base.as_ptr() as usize + self.len) & !15
    }

    /// The lowest usable address (just above the guard).
    #[cfg(test)]
    pub(crate) fn bottom(&self) -> usize {
        self.base.as_ptr() as usize + GUARD
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: our own mapping; callers drop a stack only once its thread
        // has exited (its tid word cleared) or never ran.
        let _ = check(unsafe { sc::syscall2(k::__NR_munmap as usize, self.base.as_ptr() as usize, self.len) });
    }
}

/// The flags of a thread made here.
const FLAGS: u32 = k::CLONE_VM
    | k::CLONE_FS
    | k::CLONE_FILES
    | k::CLONE_SIGHAND
    | k::CLONE_THREAD
    | k::CLONE_SYSVSEM
    | k::CLONE_PARENT_SETTID
    | k::CLONE_CHILD_CLEARTID;

/// Starts a thread running `main(arg)` on `stack`, with every signal
/// blocked (the caller's mask is blocked around `clone` and restored, so no
/// signal can reach the thread before its first instruction). `tid` gets the
/// thread's id before this returns, and is cleared and futex-woken
/// (non-private) when the thread has exited. Returns the tid.
///
/// # Safety
///
/// `stack` and `tid` must stay alive, and `stack` unused by anyone else,
/// until `tid` reads 0 after this returned `Ok`; `arg` must be valid for
/// whatever `main` does with it for as long as the thread runs; `main` must
/// end with [`exit_thread`] and must run only code that needs no TLS and
/// cannot panic.
pub(crate) unsafe fn spawn(
    stack: &Stack,
    tid: &AtomicU32,
    main: extern "C" fn(usize) -> !,
    arg: usize,
) -> Result<i32, Errno> {
    let old = sigprocmask(MaskHow::Block, SigSet::full())?;
    let ptr = tid.as_ptr();
    // SAFETY: forwarded from this function's contract; `top` is aligned.
    let ret = unsafe { arch::clone_thread(FLAGS as usize, stack.top(), ptr, ptr, main, arg) };
    let _ = sigprocmask(MaskHow::Set, old);
    check(ret).map(|t| t as i32)
}

/// Ends the calling thread (only it: `exit`, not `exit_group`).
pub(crate) fn exit_thread() -> ! {
    loop {
        // SAFETY: exit takes no pointers and does not return.
        unsafe { sc::syscall1(k::__NR_exit as usize, 0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::futex;
    use core::sync::atomic::{AtomicU64, Ordering};

    struct Shared {
        tid: AtomicU32,
        seen: AtomicU64,
    }

    extern "C" fn body(arg: usize) -> ! {
        // SAFETY: the test keeps `Shared` alive until the tid word clears.
        let shared = unsafe { &*(arg as *const Shared) };
        let mask = crate::sys::current_mask().map(|m| m.bits()).unwrap_or(0);
        shared.seen.store(mask, Ordering::SeqCst);
        exit_thread()
    }

    #[test]
    fn a_thread_runs_with_every_signal_blocked_and_is_joined_by_its_tid_word() {
        let stack = Stack::new(64 * 1024).unwrap();
        assert_eq!(stack.top() - stack.bottom(), 64 * 1024);
        let shared = Shared { tid: AtomicU32::new(u32::MAX), seen: AtomicU64::new(0) };
        // SAFETY: `stack` and `shared` outlive the thread: we join below.
        let tid = unsafe { spawn(&stack, &shared.tid, body, &shared as *const Shared as usize) }.unwrap();
        assert!(tid > 0);
        loop {
            let now = shared.tid.load(Ordering::SeqCst);
            if now == 0 {
                break;
            }
            let _ = futex::wait(&shared.tid, now, None, false);
        }
        // SIGKILL and SIGSTOP cannot be blocked; every other signal is
        // (qemu-user keeps the top two real-time signals for itself).
        let seen = shared.seen.load(Ordering::SeqCst);
        let all = SigSet::full().without(9).without(19).bits() & ((1 << 62) - 1);
        assert_eq!(seen & all, all, "mask {seen:#x}");
        drop(stack);
    }
}
