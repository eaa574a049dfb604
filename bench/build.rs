//! Compiles the C drivers (libev, libevent, raw epoll) and links the two
//! libraries. They come from Debian's `libev-dev` and `libevent-dev`
//! (`.ci/bench.sh` installs them). Also records the versions of
//! linux-event and mio for the report's header.

use std::fs;

/// The `version = "..."` that follows `name = "<name>"` in a Cargo file.
fn version_after(text: &str, name: &str) -> Option<String> {
    let at = text.find(&format!("name = \"{name}\""))?;
    let rest = &text[at..];
    let v = rest.find("version = \"")? + "version = \"".len();
    Some(rest[v..].split('"').next()?.to_string())
}

fn main() {
    let sources = ["c/common.c", "c/ev.c", "c/event.c", "c/raw.c"];
    for s in sources.iter().chain(["c/bench.h", "../Cargo.toml", "../Cargo.lock"].iter()) {
        println!("cargo:rerun-if-changed={s}");
    }
    cc::Build::new()
        .files(sources)
        .include("c")
        .opt_level(2)
        .flag("-std=gnu11")
        .flag("-Wall")
        .flag("-Wextra")
        .flag("-Werror")
        .compile("bench_drivers");
    // libev.so also exports libevent's API (event_add, event_base_new, ...:
    // its compatibility layer). libevent must come first in the link order,
    // and so first in the dynamic linker's search, or libevent's calls land
    // in libev. The report checks `event_get_version` at start-up.
    for lib in ["event_core", "event_pthreads", "ev", "pthread"] {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }
    virt_driver();
    let ours = fs::read_to_string("../Cargo.toml").ok().and_then(|t| version_after(&t, "linux-event"));
    let mio = fs::read_to_string("../Cargo.lock").ok().and_then(|t| version_after(&t, "mio"));
    println!("cargo:rustc-env=CARGO_PKG_VERSION_LINUX_EVENT={}", ours.as_deref().unwrap_or("?"));
    println!("cargo:rustc-env=MIO_VERSION={}", mio.as_deref().unwrap_or("?"));
}

/// The virt workload's driver (`c/virt.c`, `src/virt.rs`): compiled with
/// libvirt (its default event loop) where pkg-config finds libvirt
/// (Debian's `libvirt-dev`), without it otherwise (the workload then
/// reports libvirt as not available).
fn virt_driver() {
    println!("cargo:rerun-if-changed=c/virt.c");
    let mut build = cc::Build::new();
    build.file("c/virt.c").include("c").opt_level(2).flag("-std=gnu11").flag("-Wall").flag("-Wextra").flag("-Werror");
    let cflags = std::process::Command::new("pkg-config").args(["--cflags", "libvirt"]).output();
    if let Ok(out) = cflags
        && out.status.success()
    {
        for flag in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            build.flag(flag);
        }
        build.define("HAVE_LIBVIRT", None);
        println!("cargo:rustc-link-lib=dylib=virt");
    }
    build.compile("bench_virt");
}
