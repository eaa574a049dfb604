//! riscv64: `clone` for a thread on a new stack, whose child calls `main(arg)`.
//!
//! The child cannot return into Rust code (its stack is empty), so the
//! jump to its entry is made in the same asm block as the system call.
//! The generic clone ABI: `clone(flags, stack, ptid, tls, ctid)`.

/// Runs `clone(flags, stack_top, ptid, 0, ctid)`; in the child, clears the
/// frame pointer and return address and jumps to `main` with `arg` in a0.
/// Returns the raw result in the parent.
///
/// # Safety
///
/// `stack_top` must be the 16-byte aligned top of a stack that nothing
/// else uses for as long as the thread runs; `ptid` and `ctid` must stay
/// valid until the thread has exited; `main` must never return.
#[inline(never)]
pub(crate) unsafe fn clone_thread(
    flags: usize,
    stack_top: usize,
    ptid: *mut u32,
    ctid: *mut u32,
    main: extern "C" fn(usize) -> !,
    arg: usize,
) -> usize {
    let ret: usize;
    // SAFETY: the caller's contract; the child never comes back to this frame.
    unsafe {
        core::arch::asm!(
            "ecall",
            "bnez a0, 2f",
            "mv a0, t1",
            "mv s0, zero",
            "mv ra, zero",
            "jr t0",
            "2:",
            in("t0") main,
            in("t1") arg,
            in("a7") linux_raw_sys::general::__NR_clone as usize,
            inlateout("a0") flags => ret,
            in("a1") stack_top,
            in("a2") ptid,
            in("a3") 0usize,
            in("a4") ctid,
            options(nostack),
        );
    }
    ret
}
