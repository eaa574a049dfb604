//! The loop's clock read (`Loop::update_now`) through the vDSO and through
//! the `clock_gettime` syscall, in ns per call, same run, interleaved.
//!
//! The path is chosen once per process (`sys::set_sysinfo_ehdr(0)` before
//! the first read forces the syscall), so each measurement is a fresh child
//! process of this program: `clock` runs both, `clock vdso|syscall N` one.

use std::process::Command;

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec for clock_gettime to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn one(mode: &str, calls: u64) -> f64 {
    if mode == "syscall" {
        // SAFETY: 0 means "no vDSO"; it is set before the first clock read.
        unsafe { linux_event::sys::set_sysinfo_ehdr(0) };
    }
    let mut lp: linux_event::Loop<(), 2, 2> = linux_event::Loop::new().expect("loop");
    let mut sum = 0u64;
    let start = thread_cpu_ns();
    for _ in 0..calls {
        sum = sum.wrapping_add(lp.update_now().expect("clock").as_nanos());
    }
    let ns = (thread_cpu_ns() - start) as f64 / calls as f64;
    std::hint::black_box(sum);
    ns
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let (Some(mode), Some(calls)) = (args.get(1), args.get(2).and_then(|c| c.parse().ok())) {
        println!("{:.2}", one(mode, calls));
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let (reps, calls) = if quick { (3, 200_000) } else { (7, 2_000_000) };
    let exe = std::env::current_exe().expect("own path");
    let mut runs = [Vec::new(), Vec::new()];
    for _ in 0..reps {
        for (i, mode) in ["vdso", "syscall"].iter().enumerate() {
            let out = Command::new(&exe).args([mode.to_string(), calls.to_string()]).output().expect("child");
            let text = String::from_utf8_lossy(&out.stdout);
            runs[i].push(text.trim().parse::<f64>().expect("a number"));
        }
    }
    let [vdso, sys] = runs.map(median);
    println!("### Clock read (Loop::update_now), thread CPU ns per call, median of {reps} interleaved runs");
    println!("| path | ns per call | vs vDSO |");
    println!("| --- | ---: | ---: |");
    println!("| vDSO | {vdso:.1} | 1.00 |");
    println!("| syscall | {sys:.1} | {:.2} |", sys / vdso);
}
