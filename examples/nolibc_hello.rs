//! The smallest no-libc program: prints its arguments, the size of its environment,
//! two auxiliary vector entries and the monotonic clock, with no libc and no std.
//! `nolibc_hello panic` checks the panic handler (message on stderr, exit status 101).
//!
//! `cargo static-examples` builds it as a static binary for x86_64 and aarch64
//! (`target/<triple>/release/examples/nolibc_hello`). Built any other way (for
//! example `cargo run --features rt --example nolibc_hello`) it is an ordinary std
//! program running the same code with an empty startup block.

#![cfg_attr(linux_event_nolibc, no_std, no_main)]

use core::fmt::Write;
use linux_event::rt::{self, AT_PAGESZ, AT_SYSINFO_EHDR, Startup};

#[cfg(linux_event_nolibc)]
linux_event::entry!(hello);

#[cfg(not(linux_event_nolibc))]
fn main() {
    rt::exit(rt::Exit::code(hello(Startup::empty())))
}

fn hello(startup: Startup) -> Result<(), linux_event::Error> {
    let mut out = rt::stdout();
    for (i, arg) in startup.args().enumerate() {
        let _ = writeln!(out, "argv[{i}] = {:?}", arg);
    }
    let _ = writeln!(out, "{} environment variables", startup.env().len());
    let _ = writeln!(out, "page size {}", startup.aux(AT_PAGESZ).unwrap_or(0));
    let vdso = if startup.aux(AT_SYSINFO_EHDR).is_some() { "the vDSO" } else { "no vDSO: the syscall" };
    let lp: linux_event::Loop<(), 2, 2> = linux_event::Loop::new()?;
    let _ = writeln!(out, "monotonic clock {} ns (auxv names {vdso})", lp.now().as_nanos());
    out.flush()?;
    if startup.args().nth(1).is_some_and(|a| a.to_bytes() == b"panic") {
        panic!("asked to panic");
    }
    Ok(())
}
