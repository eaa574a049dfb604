//! Declares the `linux_event_nolibc` cfg, which `cargo static-examples` sets to build
//! the `nolibc_*` examples as `#![no_std] #![no_main]` programs (see .cargo/config.toml).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(linux_event_nolibc)");
    println!("cargo::rerun-if-changed=build.rs");
}
