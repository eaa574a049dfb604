//! aarch64: `clone` for a thread on a new stack, whose child calls `main(arg)`.
//!
//! The child cannot return into Rust code (its stack is empty), so the
//! branch to its entry is made in the same asm block as the system call.
//! The generic clone ABI: `clone(flags, stack, ptid, tls, ctid)`.

/// Runs `clone(flags, stack_top, ptid, 0, ctid)`; in the child, clears the
/// frame pointer and link register and branches to `main` with `arg` in x0.
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
            "svc 0",
            "cbnz x0, 2f",
            "mov x0, x10",
            "mov x29, xzr",
            "mov x30, xzr",
            "br x9",
            "2:",
            in("x9") main,
            in("x10") arg,
            in("x8") linux_raw_sys::general::__NR_clone as usize,
            inlateout("x0") flags => ret,
            in("x1") stack_top,
            in("x2") ptid,
            in("x3") 0usize,
            in("x4") ctid,
            options(nostack),
        );
    }
    ret
}
