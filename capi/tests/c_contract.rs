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

/// Compiles `source` (under capi/tests) into the program `name` next to
/// this test. Each test names its own program: tests run in parallel, and
/// one running a program another is still linking gets EACCES.
fn build(source: &str, name: &str, extra: &[String]) -> PathBuf {
    let lib = static_lib();
    assert!(lib.exists(), "{} is missing (cargo builds it with the crate)", lib.display());
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
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
    let program = build("contract.c", "contract", &[]);
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
    let program = build("libvirt.c", "libvirt-test-driver", &flags);
    for backend in ["epoll", "io_uring"] {
        run(&program, backend);
    }
}

/// A libvirtd of this test's own: its config, sockets and pid file in a
/// temp dir, no driver modules (`LIBVIRT_DRIVER_DIR` names an empty dir:
/// the test driver is built into libvirt itself). Killed when dropped.
struct Daemon {
    child: std::process::Child,
    dir: PathBuf,
}

impl Daemon {
    fn start() -> Result<Daemon, String> {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("libvirtd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("no-drivers")).map_err(|e| e.to_string())?;
        let conf = format!(
            "unix_sock_dir = \"{}\"\nunix_sock_rw_perms = \"0700\"\nauth_unix_rw = \"none\"\nauth_unix_ro = \"none\"\n\
             listen_tls = 0\nlisten_tcp = 0\nlog_outputs = \"3:stderr\"\n",
            dir.display()
        );
        std::fs::write(dir.join("libvirtd.conf"), conf).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("log")).map_err(|e| e.to_string())?;
        let child = Command::new("libvirtd")
            .arg("--config")
            .arg(dir.join("libvirtd.conf"))
            .arg("--pid-file")
            .arg(dir.join("pid"))
            .env("LIBVIRT_DRIVER_DIR", dir.join("no-drivers"))
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("libvirtd: {e}"))?;
        let mut daemon = Daemon { child, dir };
        // Polls for its socket (bounded: 30 s), or for its early exit.
        for _ in 0..3000 {
            if daemon.socket().exists() {
                return Ok(daemon);
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                let log = std::fs::read_to_string(daemon.dir.join("log")).unwrap_or_default();
                return Err(format!("libvirtd exited ({status}):\n{log}"));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Err("libvirtd made no socket in 30 s".into())
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("libvirt-sock")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The same program through libvirtd's Unix socket: the remote driver
/// uses the handle callbacks (its socket) as well as the timeouts.
#[test]
fn real_libvirt_through_libvirtd() {
    let require = std::env::var_os("LINUX_EVENT_REQUIRE_LIBVIRT").is_some();
    let Some(flags) = libvirt_flags() else {
        assert!(!require, "libvirt not found by pkg-config");
        println!("NOTE: libvirt not found by pkg-config: not run");
        return;
    };
    let daemon = match Daemon::start() {
        Ok(d) => d,
        Err(e) => {
            assert!(!require, "{e}");
            println!("NOTE: no libvirtd here ({e}): not run");
            eprintln!("NOTE: no libvirtd here ({e}): not run");
            return;
        }
    };
    let program = build("libvirt.c", "libvirt-through-libvirtd", &flags);
    let uri = format!("test+unix:///default?socket={}", daemon.socket().display());
    for backend in ["epoll", "io_uring"] {
        let out = Command::new(&program).arg(&uri).env("LINUX_EVENT_BACKEND", backend).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        println!("--- libvirt through libvirtd on {backend}:\n{text}");
        match out.status.code() {
            Some(0) => assert!(text.contains("addHandle 1"), "the remote driver watched no socket:\n{text}"),
            Some(77) if !required(backend) => eprintln!("NOTE: {backend} not offered here:\n{text}"),
            _ => panic!("libvirt through libvirtd on {backend} failed ({}):\n{text}", out.status),
        }
    }
}
