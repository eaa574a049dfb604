//! x86_64: `clone` for a thread on a new stack, whose child calls `main(arg)`.
//!
//! The child cannot return into Rust code (its stack is empty), so the
//! branch to its entry is made in the same asm block as the system call.

/// Runs `clone(flags, stack_top, ptid, ctid, 0)`; in the child, clears the
/// frame pointer, pushes a zero return address (so the stack is aligned as
/// after a call) and jumps to `main` with `arg` as its first argument.
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
    // SAFETY: the caller's contract; the parent's registers are declared
    // (rcx and r11 are clobbered by `syscall`), and the child never comes
    // back to this frame.
    unsafe {
        core::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "push rbp",
            "jmp r9",
            "2:",
            inlateout("rax") linux_raw_sys::general::__NR_clone as usize => ret,
            in("rdi") flags,
            in("rsi") stack_top,
            in("rdx") ptid,
            in("r10") ctid,
            in("r8") 0usize,
            in("r9") main,
            in("r12") arg,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}
