//! riscv64 program entry: the `_start` the kernel jumps to, as a macro the
//! program's crate expands (see `rt::start!`).
//!
//! It only sets up `gp`, the stack and the frame registers the psABI expects and
//! calls Rust with the initial stack pointer; it never touches the stack contents.

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
                // The global pointer, for code the linker relaxed to gp-relative accesses;
                // loading it must not itself be relaxed.
                ".option push",
                ".option norelax",
                "lla gp, __global_pointer$",
                ".option pop",
                "mv a0, sp",          // argument 1: the initial stack pointer
                "andi sp, sp, -16",   // 16-byte aligned, as the psABI requires
                "li s0, 0",           // the outermost frame: zero frame pointer
                "li ra, 0",           // and zero return address end backtraces
                "call {start}",
                "unimp",              // not reached: the callee never returns
                start = sym $rust_start,
            )
        }
    };
}
