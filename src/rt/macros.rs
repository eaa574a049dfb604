//! The macros a no-libc program invokes once, in its own crate: they define the
//! symbols only a final binary may have (`_start`, the panic handler, `memcpy`...).
//!
//! The library never defines those symbols itself, so std programs and test
//! harnesses that enable `rt` link exactly as before.

/// Everything a `#![no_std] #![no_main]` program needs from the runtime:
/// [`start!`](crate::start), [`panic_handler!`](crate::panic_handler) and
/// [`mem_functions!`](crate::mem_functions).
///
/// `main` is a `fn(rt::Startup) -> R` where `R` is `()`, `i32`, `u8` or a `Result`
/// of those with a `Display` error (see [`rt::Exit`](crate::rt::Exit)). A program that
/// brings its own panic handler or `memcpy` invokes the other macros one by one.
/// `entry!(main, panic = location)` installs the panic handler that prints only
/// where the panic happened (see [`panic_handler!`](crate::panic_handler)).
///
/// ```ignore
/// #![no_std]
/// #![no_main]
/// linux_event::entry!(main);
/// fn main(_: linux_event::rt::Startup) -> i32 { 0 }
/// ```
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        $crate::start!($main);
        $crate::panic_handler!();
        $crate::mem_functions!();
    };
    ($main:path, panic = location) => {
        $crate::start!($main);
        $crate::panic_handler!(location);
        $crate::mem_functions!();
    };
}

/// Defines the program entry `_start`: it hands the initial stack to the runtime,
/// which tells the clock where the vDSO is, runs `main` and exits with its status.
#[macro_export]
macro_rules! start {
    ($main:path) => {
        /// Called by `_start` with the stack pointer the kernel started the process with.
        extern "C" fn __linux_event_start(sp: *const usize) -> ! {
            // SAFETY: `_start` passes the kernel's initial stack pointer, and nothing writes
            // to the stack above it (`_start` only moves below it).
            unsafe { $crate::rt::__start(sp, $main) }
        }
        $crate::__linux_event_arch_start!(__linux_event_start);
    };
}

/// Defines the `#[panic_handler]`: the message goes to stderr and the process exits
/// with [`rt::PANIC_EXIT_CODE`](crate::rt::PANIC_EXIT_CODE) (101).
///
/// `panic_handler!(location)` prints only `panicked at FILE:LINE:COL`, without the
/// message: it needs no `core::fmt`, so a program that does not format either
/// leaves the formatting code (about 3 KB on x86_64) out of its binary.
#[macro_export]
macro_rules! panic_handler {
    () => {
        #[panic_handler]
        fn __linux_event_panic(info: &::core::panic::PanicInfo<'_>) -> ! {
            $crate::rt::__panic(info)
        }
    };
    (location) => {
        #[panic_handler]
        fn __linux_event_panic(info: &::core::panic::PanicInfo<'_>) -> ! {
            $crate::rt::__panic_location(info.location())
        }
    };
}

/// Defines `memcpy`, `memmove`, `memset`, `memcmp` and `bcmp`, which the compiler calls
/// even in `no_std` code, on top of [`rt::mem`](crate::rt::mem).
#[macro_export]
macro_rules! mem_functions {
    () => {
        /// `memcpy(3)`.
        ///
        /// # Safety
        ///
        /// As in C: `src` readable and `dest` writable for `n` bytes, not overlapping.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
            // SAFETY: memcpy's contract is stricter than copy_forward's.
            unsafe { $crate::rt::mem::copy_forward(dest, src, n) };
            dest
        }

        /// `memmove(3)`.
        ///
        /// # Safety
        ///
        /// As in C: `src` readable and `dest` writable for `n` bytes.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
            // SAFETY: memmove's contract is copy's.
            unsafe { $crate::rt::mem::copy(dest, src, n) };
            dest
        }

        /// `memset(3)`.
        ///
        /// # Safety
        ///
        /// As in C: `dest` writable for `n` bytes.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn memset(dest: *mut u8, c: i32, n: usize) -> *mut u8 {
            // SAFETY: memset's contract is set's; C converts `c` to unsigned char.
            unsafe { $crate::rt::mem::set(dest, c as u8, n) };
            dest
        }

        /// `memcmp(3)`.
        ///
        /// # Safety
        ///
        /// As in C: `a` and `b` readable for `n` bytes.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
            // SAFETY: memcmp's contract is compare's.
            unsafe { $crate::rt::mem::compare(a, b, n) }
        }

        /// `bcmp(3)`: zero if equal.
        ///
        /// # Safety
        ///
        /// As in C: `a` and `b` readable for `n` bytes.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
            // SAFETY: bcmp's contract is compare's.
            unsafe { $crate::rt::mem::compare(a, b, n) }
        }
    };
}
