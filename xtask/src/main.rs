//! `cargo static-examples [--target TRIPLE]...`: builds every no-libc
//! example as a static binary with no libc, each with only the library
//! features it uses (a cargo alias runs one build, and features are unified
//! within a build: nolibc_loop would otherwise carry the signal and child
//! code the init needs). Default targets: x86_64 and aarch64 musl; each
//! `--target` adds one. Binaries land in `target/<triple>/release/examples/`.

use std::process::{Command, ExitCode};

/// Each static example and the library features it needs (`rt` always).
const EXAMPLES: &[(&str, &[&str])] = &[
    ("nolibc_hello", &[]),
    ("nolibc_loop", &[]),
    ("init", &["signals", "syscall-clock"]),
    ("nolibc_files", &["files"]),
    ("echo", &["net"]),
    ("http_hello", &["net"]),
];

const DEFAULT_TARGETS: &[&str] = &["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"];

/// The settings every static no-libc program needs, for `triple`:
/// - `--cfg linux_event_nolibc` makes the examples `#![no_std] #![no_main]`;
/// - rust-lld with no self-contained objects links no start files and no libc;
/// - relocation-model=static gives a plain static executable (musl's default,
///   static-pie, would need start code that relocates itself; a -gnu target
///   also needs +crt-static to link statically);
/// - force-unwind-tables=no: panic=abort needs none;
/// - size: opt-level "s", fat LTO, one codegen unit, panic=abort.
fn settings(triple: &str) -> Vec<String> {
    let mut flags = vec![
        "'--cfg=linux_event_nolibc'",
        "'-Clink-self-contained=no'",
        "'-Crelocation-model=static'",
        "'-Cforce-unwind-tables=no'",
    ];
    if triple.ends_with("-gnu") {
        flags.push("'-Ctarget-feature=+crt-static'");
    }
    if triple.starts_with("aarch64") {
        // Outline atomics call getauxval, which a program without libc lacks.
        flags.push("'-Ctarget-feature=-outline-atomics'");
    }
    [
        "profile.release.opt-level='s'".to_string(),
        "profile.release.lto=true".to_string(),
        "profile.release.codegen-units=1".to_string(),
        "profile.release.panic='abort'".to_string(),
        format!("target.{triple}.linker='rust-lld'"),
        format!("target.{triple}.rustflags=[{}]", flags.join(", ")),
    ]
    .into_iter()
    .flat_map(|c| ["--config".to_string(), c])
    .collect()
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some("static-examples") {
        eprintln!("usage: cargo static-examples [--target TRIPLE]...");
        return ExitCode::from(2);
    }
    let mut targets: Vec<String> = DEFAULT_TARGETS.iter().map(|t| t.to_string()).collect();
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--target", Some(t)) => targets.push(t),
            _ => {
                eprintln!("usage: cargo static-examples [--target TRIPLE]...");
                return ExitCode::from(2);
            }
        }
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for triple in &targets {
        for (example, features) in EXAMPLES {
            let features = std::iter::once("rt").chain(features.iter().copied()).collect::<Vec<_>>().join(",");
            let status = Command::new(&cargo)
                .args(["build", "--release", "-p", "linux-event", "--no-default-features"])
                .args(["--features", &features, "--example", example, "--target", triple])
                .args(settings(triple))
                .status();
            match status {
                Ok(s) if s.success() => {}
                Ok(s) => {
                    eprintln!("static-examples: {example} for {triple} failed ({s})");
                    return ExitCode::FAILURE;
                }
                Err(e) => {
                    eprintln!("static-examples: cannot run {cargo}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    ExitCode::SUCCESS
}
