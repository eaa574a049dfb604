//! Declares the `linux_event_nolibc` cfg, which `cargo static-examples` sets to build
//! the no-libc examples as `#![no_std] #![no_main]` programs (see .cargo/config.toml),
//! and, in that build only, gives their link the size settings that need a path:
//! drop the unwind tables (panic = "abort" never unwinds) and the RELRO padding.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(linux_event_nolibc)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=arch/no-unwind-tables.ld");
    // The triple this package is built for: tests that build an example of
    // their own (tests/init.rs) build it for the same one.
    println!("cargo::rustc-env=LINUX_EVENT_BUILD_TARGET={}", std::env::var("TARGET").unwrap_or_default());
    if std::env::var_os("CARGO_CFG_LINUX_EVENT_NOLIBC").is_some() {
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
        println!("cargo::rustc-link-arg-examples=-T{dir}/arch/no-unwind-tables.ld");
        println!("cargo::rustc-link-arg-examples=--no-eh-frame-hdr");
        println!("cargo::rustc-link-arg-examples=-znorelro");
    }
}
