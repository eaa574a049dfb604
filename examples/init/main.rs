//! A tini-compatible init (PID 1) on the loop: `init [OPTIONS] PROGRAM [ARGS...]`.
//!
//! It forwards signals to the child (or its process group with `-g`), reaps
//! every zombie the moment SIGCHLD arrives, and exits with the child's
//! status. `init -h` lists the options. It builds as an ordinary std program
//! (`cargo run --example init -- sh -c 'exit 3'`) and, with the `rt` feature,
//! as a static binary with no libc at all (`cargo static-examples`).

#![cfg_attr(linux_event_nolibc, no_std, no_main)]

mod options;
mod say;
mod supervisor;

#[cfg(linux_event_nolibc)]
linux_event::entry!(nolibc_main);

/// The no-libc entry: arguments and environment straight off the initial stack.
#[cfg(linux_event_nolibc)]
fn nolibc_main(startup: linux_event::rt::Startup) -> i32 {
    use core::ffi::CStr;
    let mut argv: heapless::Vec<&CStr, { options::MAX_ARGS + 16 }> = heapless::Vec::new();
    let mut envp: heapless::Vec<&CStr, 1024> = heapless::Vec::new();
    for arg in startup.args() {
        if argv.push(arg).is_err() {
            say::err(format_args!("init: too many arguments\n"));
            return 1;
        }
    }
    for var in startup.env() {
        if envp.push(var).is_err() {
            say::err(format_args!("init: too many environment variables (at most 1024)\n"));
            return 1;
        }
    }
    supervisor::main(&argv, &envp)
}

#[cfg(not(linux_event_nolibc))]
fn main() {
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
    let argv: Vec<&core::ffi::CStr> = args.iter().map(CString::as_c_str).collect();
    let envp: Vec<&core::ffi::CStr> = env.iter().map(CString::as_c_str).collect();
    std::process::exit(supervisor::main(&argv, &envp));
}
