//! Issue 13: asynchronous file operations. The same three workloads on
//! linux-event's io_uring engine, its worker engine (with and without the
//! inline RWF_NOWAIT attempt), tokio (tokio::fs, and spawn_blocking pread,
//! which is what tokio::fs does inside), and plain blocking system calls
//! (the floor), interleaved in one run; medians of the repetitions, ops/s
//! and ratios.
//!
//! - 4 KiB pread from the page cache, at queue depth 1 and 32, one loop thread;
//! - stat of 10,000 files (depth 32 for the asynchronous ones);
//! - open + read + close of 10,000 small files (32 files in flight).
//!
//! `cargo run --release -p linux-event-bench -- --only files [--quick]`

use linux_event::Loop;
use linux_event::files::{Config, Engine, FileEvent, Files, OpenOptions};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

const DEPTH: usize = 32;
const FILE_SIZE: u64 = 16 << 20;
const SMALL_FILES: usize = 10_000;

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Imp {
    Blocking,
    IoUring,
    Workers,
    WorkersNoInline,
    Tokio,
}

const IMPS: [Imp; 5] = [Imp::Blocking, Imp::IoUring, Imp::Workers, Imp::WorkersNoInline, Imp::Tokio];

impl Imp {
    fn name(self) -> &'static str {
        match self {
            Imp::Blocking => "blocking",
            Imp::IoUring => "io_uring",
            Imp::Workers => "workers",
            Imp::WorkersNoInline => "workers (no inline)",
            Imp::Tokio => "tokio",
        }
    }
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Work {
    Pread(usize),
    Stat,
    OpenReadClose,
}

impl Work {
    fn label(self) -> String {
        match self {
            Work::Pread(d) => format!("4 KiB pread, page cache, depth {d}"),
            Work::Stat => format!("stat of {SMALL_FILES} files"),
            Work::OpenReadClose => format!("open+read+close of {SMALL_FILES} small files"),
        }
    }
}

struct Fixture {
    big: PathBuf,
    small: Vec<PathBuf>,
    dir: PathBuf,
}

impl Fixture {
    fn new() -> std::io::Result<Fixture> {
        let dir = std::env::temp_dir().join(format!("linux-event-bench-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("small"))?;
        let big = dir.join("big");
        std::fs::write(&big, vec![0x5au8; FILE_SIZE as usize])?;
        let mut small = Vec::with_capacity(SMALL_FILES);
        for i in 0..SMALL_FILES {
            let p = dir.join("small").join(format!("{i:05}"));
            std::fs::write(&p, format!("small file {i}\n"))?;
            small.push(p);
        }
        // Into the page cache.
        let _ = std::fs::read(&big)?;
        for p in &small {
            let _ = std::fs::read(p)?;
        }
        Ok(Fixture { big, small, dir })
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The 4 KiB-aligned offset of op `i` (a fixed pseudo-random walk).
fn offset(i: u64) -> u64 {
    (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 20) % (FILE_SIZE / 4096) * 4096
}

// --- linux-event -----------------------------------------------------------

type Lp = Loop<Run>;
type Fs = Files<Lp, 64>;

struct Run {
    files: Fs,
    fd: i32,
    next: u64,
    total: u64,
    done: u64,
    errors: u64,
    paths: Vec<Vec<u8>>,
    bufs: Vec<&'static mut [u8]>,
}

impl AsMut<Fs> for Run {
    fn as_mut(&mut self) -> &mut Fs {
        &mut self.files
    }
}

fn on_pread(lp: &mut Lp, r: &mut Run, mut ev: FileEvent) {
    if ev.bytes() != Ok(4096) {
        r.errors += 1;
    }
    r.done += 1;
    let buf = ev.take_buffer().expect("buffer back");
    if r.next < r.total {
        let off = offset(r.next);
        r.next += 1;
        r.files.read(r.fd, off, buf, 4096, 0, on_pread).expect("read");
    } else if r.done == r.total {
        lp.stop();
    }
}

fn on_stat(lp: &mut Lp, r: &mut Run, ev: FileEvent) {
    if ev.stat().is_err() {
        r.errors += 1;
    }
    r.done += 1;
    if r.next < r.total {
        let p = r.next as usize;
        r.next += 1;
        r.files.stat(&r.paths[p], 0, on_stat).expect("stat");
    } else if r.done == r.total {
        lp.stop();
    }
}

fn start_open(r: &mut Run) {
    let p = r.next as usize;
    r.next += 1;
    r.files.open(&r.paths[p], &OpenOptions::read_only(), 0, on_open).expect("open");
}

fn on_open(lp: &mut Lp, r: &mut Run, mut ev: FileEvent) {
    match ev.take_fd() {
        Ok(fd) => {
            let raw = fd.into_raw_fd();
            let buf = r.bufs.pop().expect("a buffer per file in flight");
            r.files.read(raw, 0, buf, 4096, raw as u64, on_small_read).expect("read");
        }
        Err(_) => {
            r.errors += 1;
            finish_small(lp, r);
        }
    }
}

/// The read's user data is the fd it read: close it next.
fn on_small_read(_: &mut Lp, r: &mut Run, mut ev: FileEvent) {
    if !ev.bytes().is_ok_and(|n| n > 0) {
        r.errors += 1;
    }
    r.bufs.push(ev.take_buffer().expect("buffer back"));
    r.files.close(ev.data() as i32, 0, on_small_close).expect("close");
}

fn on_small_close(lp: &mut Lp, r: &mut Run, ev: FileEvent) {
    if ev.errno().is_some() {
        r.errors += 1;
    }
    finish_small(lp, r);
}

fn finish_small(lp: &mut Lp, r: &mut Run) {
    r.done += 1;
    if r.next < r.total {
        start_open(r);
    } else if r.done == r.total {
        lp.stop();
    }
}

fn ours(imp: Imp, work: Work, fx: &Fixture, reps_ops: u64) -> Result<(f64, u64), String> {
    let engine = if imp == Imp::IoUring { Engine::IoUring } else { Engine::Workers };
    let cfg = Config::new(engine).inline_attempts(imp != Imp::WorkersNoInline).max_parallel(4);
    let files = Fs::with_config(cfg).map_err(|e| e.to_string())?;
    let big = std::fs::File::open(&fx.big).map_err(|e| e.to_string())?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&big);
    let mut r = Run {
        files,
        fd,
        next: 0,
        total: 0,
        done: 0,
        errors: 0,
        paths: fx.small.iter().map(|p| p.as_os_str().as_bytes().to_vec()).collect(),
        bufs: (0..DEPTH).map(|_| &mut *Box::leak(vec![0u8; 4096].into_boxed_slice())).collect(),
    };
    let mut lp = Lp::new().map_err(|e| e.to_string())?;
    r.files.attach(&mut lp).map_err(|e| e.to_string())?;
    let (depth, total) = match work {
        Work::Pread(d) => (d, reps_ops),
        _ => (DEPTH, SMALL_FILES as u64),
    };
    r.total = total;
    let t = Instant::now();
    for _ in 0..depth.min(total as usize) {
        match work {
            Work::Pread(_) => {
                let buf = r.bufs.pop().expect("buffer");
                let off = offset(r.next);
                r.next += 1;
                r.files.read(fd, off, buf, 4096, 0, on_pread).map_err(|e| e.to_string())?;
            }
            Work::Stat => {
                let p = r.next as usize;
                r.next += 1;
                r.files.stat(&r.paths[p], 0, on_stat).map_err(|e| e.to_string())?;
            }
            Work::OpenReadClose => start_open(&mut r),
        }
    }
    lp.run(&mut r).map_err(|e| e.to_string())?;
    let secs = t.elapsed().as_secs_f64();
    if r.errors > 0 {
        return Err(format!("{} errors", r.errors));
    }
    Ok((total as f64 / secs, total))
}

// --- blocking system calls and tokio -----------------------------------------

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL in a path")
}

fn blocking(work: Work, fx: &Fixture, ops: u64) -> Result<(f64, u64), String> {
    let t = Instant::now();
    let total = match work {
        Work::Pread(_) => {
            let f = std::fs::File::open(&fx.big).map_err(|e| e.to_string())?;
            let mut buf = [0u8; 4096];
            for i in 0..ops {
                if f.read_at(&mut buf, offset(i)).map_err(|e| e.to_string())? != 4096 {
                    return Err("short read".into());
                }
            }
            ops
        }
        Work::Stat => {
            let paths: Vec<CString> = fx.small.iter().map(|p| cpath(p)).collect();
            // SAFETY: zeroed `struct stat` is valid; each path is a C string.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            for p in &paths {
                // SAFETY: as above.
                if unsafe { libc::stat(p.as_ptr(), &mut st) } != 0 {
                    return Err(std::io::Error::last_os_error().to_string());
                }
            }
            SMALL_FILES as u64
        }
        Work::OpenReadClose => {
            let paths: Vec<CString> = fx.small.iter().map(|p| cpath(p)).collect();
            let mut buf = [0u8; 4096];
            for p in &paths {
                // SAFETY: a C string; the fd is closed below; the buffer is ours.
                unsafe {
                    let fd = libc::open(p.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                    if fd < 0 || libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) <= 0 {
                        return Err(std::io::Error::last_os_error().to_string());
                    }
                    libc::close(fd);
                }
            }
            SMALL_FILES as u64
        }
    };
    Ok((total as f64 / t.elapsed().as_secs_f64(), total))
}

fn tokio_run(work: Work, fx: &Fixture, ops: u64) -> Result<(f64, u64), String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let big = std::sync::Arc::new(std::fs::File::open(&fx.big).map_err(|e| e.to_string())?);
    let small = fx.small.clone();
    rt.block_on(async move {
        let t = Instant::now();
        let depth = match work {
            Work::Pread(d) => d,
            _ => DEPTH,
        };
        let total = match work {
            Work::Pread(_) => ops,
            _ => SMALL_FILES as u64,
        };
        let mut set = tokio::task::JoinSet::new();
        let mut next = 0u64;
        let mut done = 0u64;
        while done < total {
            while set.len() < depth && next < total {
                let i = next;
                next += 1;
                match work {
                    // tokio::fs has no positional read; this is what its File
                    // does inside: the blocking call on the blocking pool.
                    Work::Pread(_) => {
                        let f = big.clone();
                        set.spawn(async move {
                            tokio::task::spawn_blocking(move || {
                                let mut buf = [0u8; 4096];
                                f.read_at(&mut buf, offset(i)).map(|n| n == 4096)
                            })
                            .await
                            .unwrap_or(Ok(false))
                        });
                    }
                    Work::Stat => {
                        let p = small[i as usize].clone();
                        set.spawn(async move { tokio::fs::metadata(p).await.map(|_| true) });
                    }
                    // Open, read and close in one call: fewer trips to the
                    // blocking pool than three separate operations.
                    Work::OpenReadClose => {
                        let p = small[i as usize].clone();
                        set.spawn(async move { tokio::fs::read(p).await.map(|b| !b.is_empty()) });
                    }
                }
            }
            match set.join_next().await {
                Some(Ok(Ok(true))) => done += 1,
                other => return Err(format!("tokio: {other:?}")),
            }
        }
        Ok((total as f64 / t.elapsed().as_secs_f64(), total))
    })
}

fn one_run(imp: Imp, work: Work, fx: &Fixture, ops: u64) -> Result<f64, String> {
    let r = match imp {
        Imp::Blocking => blocking(work, fx, ops),
        Imp::Tokio => tokio_run(work, fx, ops),
        _ => ours(imp, work, fx, ops),
    };
    r.map(|(rate, _)| rate)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

/// Runs the file-operation workloads and prints their table.
pub fn run(quick: bool) {
    let reps = if quick { 3 } else { 7 };
    let ops: u64 = if quick { 20_000 } else { 100_000 };
    let fx = match Fixture::new() {
        Ok(f) => f,
        Err(e) => {
            println!("\nfiles: cannot set up the files: {e}");
            return;
        }
    };
    // io_uring may be refused (seccomp, qemu-user): then its column is n/a.
    let uring = Fs::new(Engine::IoUring).map(drop).map_err(|e| e.to_string());
    let works = [Work::Pread(1), Work::Pread(DEPTH), Work::Stat, Work::OpenReadClose];
    type Row = Vec<(Imp, Option<f64>)>;
    let mut table: Vec<(Work, Row)> = Vec::new();
    let started = Instant::now();
    for work in works {
        let mut samples: Vec<(Imp, Vec<f64>)> = IMPS.iter().map(|&i| (i, Vec::new())).collect();
        for rep in 0..reps {
            let mut order: Vec<usize> = (0..IMPS.len()).collect();
            if rep % 2 == 1 {
                order.reverse();
            }
            for k in order {
                let imp = IMPS[k];
                if imp == Imp::IoUring && uring.is_err() {
                    continue;
                }
                match one_run(imp, work, &fx, ops) {
                    Ok(rate) => samples[k].1.push(rate),
                    Err(e) => eprintln!("files {} {}: {e}", work.label(), imp.name()),
                }
            }
        }
        table
            .push((work, samples.into_iter().map(|(i, mut v)| (i, (!v.is_empty()).then(|| median(&mut v)))).collect()));
    }
    println!("\n## File operations (issue 13): ops/s, medians of {reps} interleaved runs, one loop thread");
    if let Err(e) = &uring {
        println!("io_uring refused here: {e}");
    }
    print!("| workload |");
    for i in IMPS {
        print!(" {} |", i.name());
    }
    println!(" io_uring / tokio | workers / tokio | io_uring / blocking | workers / blocking |");
    println!("|---|{}---:|---:|---:|---:|", "---:|".repeat(IMPS.len()));
    let get = |row: &[(Imp, Option<f64>)], imp: Imp| row.iter().find(|(i, _)| *i == imp).and_then(|(_, r)| *r);
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "n/a".into(),
    };
    for (work, row) in &table {
        print!("| {} |", work.label());
        for i in IMPS {
            match get(row, i) {
                Some(r) => print!(" {:.0} k |", r / 1000.0),
                None => print!(" n/a |"),
            }
        }
        let (b, u, w, t) =
            (get(row, Imp::Blocking), get(row, Imp::IoUring), get(row, Imp::Workers), get(row, Imp::Tokio));
        println!(" {} | {} | {} | {} |", ratio(u, t), ratio(w, t), ratio(u, b), ratio(w, b));
    }
    if let Some((_, row)) = table.iter().find(|(w, _)| *w == Work::Pread(1)) {
        let us = |imp| get(row, imp).map(|r| 1e6 / r);
        let b = us(Imp::Blocking);
        print!("depth-1 latency per 4 KiB pread:");
        for i in IMPS {
            if let (Some(x), Some(b)) = (us(i), b) {
                print!(" {} {:.2} us ({:.2}x blocking);", i.name(), x, x / b);
            }
        }
        println!();
    }
    println!("(files: {:.1} s)", started.elapsed().as_secs_f64());
}
