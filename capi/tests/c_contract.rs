//! Builds the C programs under `capi/tests/` with the system C compiler
//! against the static library cargo just built, and runs them: the
//! contract test once per backend, and (where `pkg-config` finds libvirt)
//! the real-libvirt test. A backend the kernel refuses is reported, not
//! hidden; `LINUX_EVENT_REQUIRE=all` makes it a failure, and
//! `LINUX_EVENT_REQUIRE_LIBVIRT=1` makes a missing libvirt one.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The static library cargo built with this test: `target/<profile>/deps/`
/// (where this test runs from; `cargo test` does not copy it up a level).
fn static_lib() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().join("liblinux_event_capi.a")
}

fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Compiles `source` (under capi/tests) into a program next to this test.
fn build(source: &str, extra: &[String]) -> PathBuf {
    let lib = static_lib();
    assert!(lib.exists(), "{} is missing (cargo builds it with the crate)", lib.display());
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(source.trim_end_matches(".c"));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-pthread"])
        .arg("-I")
        .arg(here().join("include"))
        .arg(here().join("tests").join(source))
        .arg(&lib)
        .args(extra)
        .args(["-ldl", "-lm", "-lrt", "-lutil", "-lgcc_s", "-o"])
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cc}: {e}"));
    assert!(status.success(), "{cc} failed to build {source}");
    out
}

fn required(name: &str) -> bool {
    std::env::var("LINUX_EVENT_REQUIRE").is_ok_and(|l| l.split(',').any(|w| w == "all" || w == name))
}

/// Runs `program`; exit 77 means "refused here" (printed, and a failure
/// when required).
fn run(program: &Path, backend: &str) {
    let out = Command::new(program).env("LINUX_EVENT_BACKEND", backend).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("--- {} on {backend}:\n{text}", program.display());
    match out.status.code() {
        Some(0) => {}
        Some(77) if !required(backend) => eprintln!("NOTE: {backend} not offered here:\n{text}"),
        _ => panic!("{} on {backend} failed ({}):\n{text}", program.display(), out.status),
    }
}

#[test]
fn contract_in_c_on_every_backend() {
    let program = build("contract.c", &[]);
    for backend in ["epoll", "linux-aio", "io_uring"] {
        run(&program, backend);
    }
}

/// `pkg-config --cflags --libs libvirt`, if libvirt is installed.
fn libvirt_flags() -> Option<Vec<String>> {
    let out = Command::new("pkg-config").args(["--cflags", "--libs", "libvirt"]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).split_whitespace().map(String::from).collect())
}

#[test]
fn real_libvirt_runs_on_it() {
    let Some(flags) = libvirt_flags() else {
        let note = "NOTE: libvirt not found by pkg-config (Debian: apt-get install libvirt-dev pkg-config): not run";
        assert!(std::env::var_os("LINUX_EVENT_REQUIRE_LIBVIRT").is_none(), "{note}");
        println!("{note}");
        eprintln!("{note}");
        return;
    };
    let program = build("libvirt.c", &flags);
    for backend in ["epoll", "io_uring"] {
        run(&program, backend);
    }
}
