//! aarch64 program entry: the `_start` the kernel jumps to, as a macro the
//! program's crate expands (see `rt::start!`).
//!
//! It only makes the stack and registers what the C ABI expects and calls Rust
//! with the initial stack pointer; it never reads or writes the stack contents.

/// Defines `_start`, which calls `$rust_start(sp)` (an `extern "C" fn(*const usize) -> !`).
#[doc(hidden)]
#[macro_export]
macro_rules! __linux_event_arch_start {
    ($rust_start:path) => {
        /// The ELF entry point. The kernel enters with `sp` at `argc` (followed by argv,
        /// envp and auxv).
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        unsafe extern "C" fn _start() -> ! {
            ::core::arch::naked_asm!(
                "mov x29, xzr",     // the outermost frame: zero frame pointer
                "mov x30, xzr",     // and zero link register end backtraces
                "mov x0, sp",       // argument 1: the initial stack pointer
                "and x1, x0, #-16", // sp must stay 16-byte aligned (the kernel aligns it;
                "mov sp, x1",       // this makes it certain)
                "bl {start}",
                "udf #0", // not reached: the callee never returns
                start = sym $rust_start,
            )
        }
    };
}
