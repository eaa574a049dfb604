//! A tini-compatible init (PID 1) on the loop: `init [OPTIONS] PROGRAM [ARGS...]`.
//!
//! It forwards signals to the child (or its process group with `-g`), reaps
//! every zombie the moment SIGCHLD arrives, and exits with the child's
//! status. `init -h` lists the options. It builds as an ordinary std program
//! (`cargo run --example init -- sh -c 'exit 3'`) and, with the `rt` feature,
//! as a static binary with no libc at all (`cargo static-examples`), which
//! hands the child the argv tail and envp of its own initial stack: no copy,
//! no limit but the kernel's.

#![cfg_attr(linux_event_nolibc, no_std, no_main)]

mod options;
mod say;
mod supervisor;

#[cfg(linux_event_nolibc)]
linux_event::entry!(nolibc_main, panic = location);

/// The no-libc entry: arguments and environment straight off the initial stack.
#[cfg(linux_event_nolibc)]
fn nolibc_main(mut startup: linux_event::rt::Startup) -> i32 {
    let envp = startup.envp();
    supervisor::main(&mut startup.argv_mut(), envp)
}

#[cfg(not(linux_event_nolibc))]
fn main() {
    use core::ffi::CStr;
    use std::ffi::CString;
    use std::os::unix::ffi::OsStringExt;
    let args: Vec<CString> =
        std::env::args_os().map(|a| CString::new(a.into_vec()).unwrap_or_else(|_| c"?".into())).collect();
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend(v.into_vec());
            CString::new(kv).ok()
        })
        .collect();
    let mut argv: Vec<&CStr> = args.iter().map(CString::as_c_str).collect();
    let envp: Vec<&CStr> = env.iter().map(CString::as_c_str).collect();
    std::process::exit(supervisor::main(&mut argv[..], linux_event::sys::CStrArray::from(&envp[..])));
}
