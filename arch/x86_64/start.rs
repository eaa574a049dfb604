//! x86_64 program entry: the `_start` the kernel jumps to, as a macro the
//! program's crate expands (see `rt::start!`).
//!
//! It only makes the stack and registers what the C ABI expects and calls Rust
//! with the initial stack pointer; it never reads or writes the stack contents.

/// Defines `_start`, which calls `$rust_start(sp)` (an `extern "C" fn(*const usize) -> !`).
#[doc(hidden)]
#[macro_export]
macro_rules! __linux_event_arch_start {
    ($rust_start:path) => {
        /// The ELF entry point. The kernel enters with `rsp` at `argc` (followed by argv,
        /// envp and auxv) and no return address.
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        unsafe extern "C" fn _start() -> ! {
            ::core::arch::naked_asm!(
                "xor ebp, ebp", // the outermost frame: a zero frame pointer ends backtraces
                "mov rdi, rsp", // argument 1: the initial stack pointer
                "and rsp, -16", // 16-byte aligned before the call, as the ABI requires
                "call {start}", // pushes a return address: the callee sees a normal frame
                "ud2",          // not reached: the callee never returns
                start = sym $rust_start,
            )
        }
    };
}
