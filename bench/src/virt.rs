//! The virt workload (issue 14): libvirt's event contract on linux-event
//! (through its C ABI, `linux-event-capi`) and on libvirt's default
//! implementation (`virEventRegisterDefaultImpl` + `virEventRunDefaultImpl`),
//! the same C driver (`c/virt.c`) on both, interleaved in one run.
//!
//! - ready: 64 handles on always-writable sockets whose callbacks only
//!   count, and 4 timeouts of 0 ms: what the loop itself costs per callback.
//! - chain: 64 socket pairs with a handle each, 16 bytes in flight, each
//!   callback reading its byte, writing one to the next pair and updating
//!   its handle; 4 timeouts of 0 ms (the kernel's read and write dominate).
//!
//! Both report callbacks per second (wall) and CPU per callback.
//! - cross-thread latency: another thread's `updateTimeout(0)` on a loop
//!   blocked in its iteration, to the timeout's callback: p50 and p99.
//!
//! `--only virt` runs it alone. Printed as a table of its own after the
//! main one; timings are never asserted.

use crate::measure::{cpus, pin};
use crate::workload::Config;
use linux_event_capi as capi;
use std::ffi::{c_int, c_ulong};

type AddHandle = unsafe extern "C" fn(
    c_int,
    c_int,
    Option<capi::HandleCallback>,
    *mut std::ffi::c_void,
    Option<capi::FreeCallback>,
) -> c_int;
type AddTimeout = unsafe extern "C" fn(
    c_int,
    Option<capi::TimeoutCallback>,
    *mut std::ffi::c_void,
    Option<capi::FreeCallback>,
) -> c_int;

/// `struct virt_impl` in `c/virt.c`.
#[repr(C)]
struct VirtImpl {
    add_handle: AddHandle,
    update_handle: extern "C" fn(c_int, c_int),
    remove_handle: extern "C" fn(c_int) -> c_int,
    add_timeout: AddTimeout,
    update_timeout: extern "C" fn(c_int, c_int),
    remove_timeout: extern "C" fn(c_int) -> c_int,
    run_once: extern "C" fn() -> c_int,
}

/// `struct virt_dispatch_result`.
#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
struct DispatchResult {
    span: crate::measure::Span,
    handle_calls: i64,
    timeout_calls: i64,
    iterations: i64,
}

unsafe extern "C" {
    fn virt_bench_libvirt_impl(out: *mut VirtImpl) -> c_int;
    fn virt_bench_libvirt_version() -> c_ulong;
    fn virt_bench_dispatch(
        imp: *const VirtImpl,
        rfd: *const c_int,
        wfd: *const c_int,
        pairs: c_int,
        tokens: c_int,
        timeouts: c_int,
        dispatches: i64,
        out: *mut DispatchResult,
    ) -> c_int;
    fn virt_bench_latency(
        imp: *const VirtImpl,
        cpu_loop: c_int,
        cpu_other: c_int,
        samples: c_int,
        ns: *mut u64,
    ) -> c_int;
}

unsafe extern "C" {
    fn virt_bench_latency_floor(cpu_loop: c_int, cpu_other: c_int, samples: c_int, ns: *mut u64) -> c_int;
}

/// The same pacing on a bare eventfd and epoll_wait: the wake-up alone.
fn floor(cpus: (i32, i32), samples: usize) -> Result<Vec<u64>, String> {
    let mut ns = vec![0u64; samples];
    // SAFETY: `ns` has room for `samples` values.
    let rc = unsafe { virt_bench_latency_floor(cpus.0, cpus.1, samples as c_int, ns.as_mut_ptr()) };
    if rc == 0 { Ok(ns) } else { Err("floor run failed".into()) }
}

extern "C" fn ours_run_once() -> c_int {
    if capi::le_loop_run_once(-1) < 0 { -1 } else { 0 }
}

fn ours() -> VirtImpl {
    VirtImpl {
        add_handle: capi::le_add_handle,
        update_handle: capi::le_update_handle,
        remove_handle: capi::le_remove_handle,
        add_timeout: capi::le_add_timeout,
        update_timeout: capi::le_update_timeout,
        remove_timeout: capi::le_remove_timeout,
        run_once: ours_run_once,
    }
}

fn libvirt() -> Option<VirtImpl> {
    let mut imp = ours();
    // SAFETY: `imp` is a valid `struct virt_impl` for the driver to fill.
    (unsafe { virt_bench_libvirt_impl(&mut imp) } == 0).then_some(imp)
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Which {
    Ours,
    Libvirt,
}

const PAIRS: usize = 64;
const TOKENS: c_int = 16;
const TIMEOUTS: c_int = 4;

struct Pairs {
    r: Vec<c_int>,
    w: Vec<c_int>,
}

impl Pairs {
    fn new() -> Result<Pairs, String> {
        let (mut r, mut w) = (Vec::new(), Vec::new());
        for _ in 0..PAIRS {
            let mut sv = [0; 2];
            let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
            // SAFETY: `sv` has room for the two fds.
            if unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, sv.as_mut_ptr()) } != 0 {
                return Err(std::io::Error::last_os_error().to_string());
            }
            r.push(sv[0]);
            w.push(sv[1]);
        }
        Ok(Pairs { r, w })
    }
}

impl Drop for Pairs {
    fn drop(&mut self) {
        for fd in self.r.iter().chain(&self.w) {
            // SAFETY: fds this value opened and nothing else closes.
            unsafe { libc::close(*fd) };
        }
    }
}

/// Runs `f` with the implementation: ours gets a fresh process-wide loop.
fn with_impl<R>(which: Which, f: impl FnOnce(&VirtImpl) -> Result<R, String>) -> Result<R, String> {
    match which {
        Which::Ours => {
            let rc = capi::le_loop_create();
            if rc != 0 {
                return Err(format!("le_loop_create: {rc}"));
            }
            let r = f(&ours());
            let rc = capi::le_loop_destroy();
            if rc != 0 {
                return Err(format!("le_loop_destroy: {rc}"));
            }
            r
        }
        Which::Libvirt => f(&libvirt().ok_or("libvirt not available")?),
    }
}

fn dispatch(which: Which, pairs: &Pairs, tokens: c_int, dispatches: i64) -> Result<DispatchResult, String> {
    with_impl(which, |imp| {
        let mut out = DispatchResult::default();
        // SAFETY: the fd arrays hold PAIRS entries each; `out` is writable.
        let rc = unsafe {
            virt_bench_dispatch(
                imp,
                pairs.r.as_ptr(),
                pairs.w.as_ptr(),
                PAIRS as c_int,
                tokens,
                TIMEOUTS,
                dispatches,
                &mut out,
            )
        };
        if rc == 0 { Ok(out) } else { Err("dispatch failed".into()) }
    })
}

fn latency(which: Which, cpus: (i32, i32), samples: usize) -> Result<Vec<u64>, String> {
    with_impl(which, |imp| {
        let mut ns = vec![0u64; samples];
        // SAFETY: `ns` has room for `samples` values.
        let rc = unsafe { virt_bench_latency(imp, cpus.0, cpus.1, samples as c_int, ns.as_mut_ptr()) };
        if rc == 0 { Ok(ns) } else { Err("latency run failed".into()) }
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64
}

#[derive(Default)]
struct Rates {
    rate: Vec<f64>,
    cpu_per_call: Vec<f64>,
    calls_per_iteration: Vec<f64>,
}

impl Rates {
    fn add(&mut self, r: &DispatchResult) {
        let calls = (r.handle_calls + r.timeout_calls) as f64;
        self.rate.push(calls / (r.span.wall as f64 / 1e9));
        self.cpu_per_call.push(r.span.cpu as f64 / calls);
        self.calls_per_iteration.push(calls / r.iterations.max(1) as f64);
    }
}

#[derive(Default)]
struct Side {
    ready: Rates,
    chain: Rates,
    p50: Vec<f64>,
    p99: Vec<f64>,
    errors: Vec<String>,
}

/// Runs the workload and prints its table.
pub fn run(cfg: &Config) {
    let reps = cfg.reps(9, 3);
    let dispatches: i64 = if cfg.quick { 100_000 } else { 400_000 };
    let samples = if cfg.quick { 1_000 } else { 4_000 };
    let have_libvirt = libvirt().is_some();
    let cores = cpus();
    let pair = (cores[0], *cores.get(1).unwrap_or(&cores[0]));
    let pairs = match Pairs::new() {
        Ok(p) => p,
        Err(e) => {
            println!("virt: socketpair: {e}");
            return;
        }
    };
    let mut sides = [Side::default(), Side::default()];
    let mut floors = Side::default();
    let whiches: Vec<Which> = if have_libvirt { vec![Which::Ours, Which::Libvirt] } else { vec![Which::Ours] };
    // The loop thread: the main thread, pinned like the other workloads.
    pin(cfg.cpu_single);
    for rep in 0..reps {
        let mut order = whiches.clone();
        if rep % 2 == 1 {
            order.reverse();
        }
        match floor(pair, samples) {
            Ok(mut ns) => {
                ns.sort_unstable();
                floors.p50.push(percentile(&ns, 0.50));
                floors.p99.push(percentile(&ns, 0.99));
            }
            Err(e) => floors.errors.push(e),
        }
        for which in order {
            let side = &mut sides[which as usize];
            pin(cfg.cpu_single);
            match dispatch(which, &pairs, 0, dispatches) {
                Ok(r) => side.ready.add(&r),
                Err(e) => side.errors.push(e),
            }
            match dispatch(which, &pairs, TOKENS, dispatches) {
                Ok(r) => side.chain.add(&r),
                Err(e) => side.errors.push(e),
            }
            match latency(which, pair, samples) {
                Ok(mut ns) => {
                    ns.sort_unstable();
                    side.p50.push(percentile(&ns, 0.50));
                    side.p99.push(percentile(&ns, 0.99));
                }
                Err(e) => side.errors.push(e),
            }
        }
    }
    pin(cfg.cpu_single);
    print(&sides, &floors, reps, have_libvirt, dispatches, samples);
}

fn print(sides: &[Side; 2], floors: &Side, reps: usize, have_libvirt: bool, dispatches: i64, samples: usize) {
    let v = unsafe_version();
    let name = if have_libvirt {
        format!("libvirt {}.{}.{} default", v / 1_000_000, v / 1000 % 1000, v % 1000)
    } else {
        "libvirt default".to_string()
    };
    println!();
    println!(
        "### virt: libvirt's event contract, linux-event (C ABI) vs {name} (virEventRunDefaultImpl); medians of {reps} interleaved runs"
    );
    println!(
        "ready: {PAIRS} always-writable handles counting, chain: {PAIRS} socket pairs, {TOKENS} bytes in flight; both with {TIMEOUTS} timeouts of 0 ms, {dispatches} handle callbacks per run; latency: {samples} cross-thread updateTimeout(0) per run"
    );
    println!();
    println!("| Measurement | linux-event | {name} | linux-event / libvirt |");
    println!("| --- | ---: | ---: | ---: |");
    let ours = &sides[Which::Ours as usize];
    let lv = &sides[Which::Libvirt as usize];
    let cell = |x: f64, f: &dyn Fn(f64) -> String| if x.is_nan() { "n/a".to_string() } else { f(x) };
    let row = |what: &str, a: f64, b: f64, f: &dyn Fn(f64) -> String| {
        let ratio = if a.is_nan() || b.is_nan() { "n/a".to_string() } else { format!("{:.2}", a / b) };
        println!("| {what} | {} | {} | {ratio} |", cell(a, f), cell(b, f));
    };
    let k = |x: f64| format!("{:.0} k", x / 1e3);
    let ns = |x: f64| format!("{x:.0} ns");
    let us = |x: f64| format!("{:.1} us", x / 1e3);
    let n = |x: f64| format!("{x:.2}");
    for (what, a, b) in [("ready", &ours.ready, &lv.ready), ("chain", &ours.chain, &lv.chain)] {
        row(&format!("{what}: callbacks per second (wall)"), median(a.rate.clone()), median(b.rate.clone()), &k);
        row(&format!("{what}: CPU per callback"), median(a.cpu_per_call.clone()), median(b.cpu_per_call.clone()), &ns);
        row(
            &format!("{what}: callbacks per iteration"),
            median(a.calls_per_iteration.clone()),
            median(b.calls_per_iteration.clone()),
            &n,
        );
    }
    row("cross-thread update -> callback, p50", median(ours.p50.clone()), median(lv.p50.clone()), &us);
    row("cross-thread update -> callback, p99", median(ours.p99.clone()), median(lv.p99.clone()), &us);
    println!(
        "| floor: bare eventfd write -> epoll_wait return, same pacing, p50 / p99 | {} / {} | | |",
        cell(median(floors.p50.clone()), &us),
        cell(median(floors.p99.clone()), &us)
    );
    for (who, side) in [("linux-event", ours), ("libvirt", lv), ("floor", floors)] {
        for e in &side.errors {
            println!("virt: {who}: {e}");
        }
    }
    if !have_libvirt {
        println!("virt: libvirt was not found when the bench was built (Debian: libvirt-dev, pkg-config): n/a");
    }
}

fn unsafe_version() -> c_ulong {
    // SAFETY: takes nothing, returns a number.
    unsafe { virt_bench_libvirt_version() }
}
