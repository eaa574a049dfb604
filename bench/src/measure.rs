//! Clocks, pinning, limits and statistics shared by every workload.
//!
//! Wall time is `CLOCK_MONOTONIC`; CPU time is `CLOCK_THREAD_CPUTIME_ID`
//! (user + sys of the calling thread), read the same way as the C drivers
//! read them (`c/bench.h`).

/// A wall and a thread-CPU reading, in nanoseconds.
#[derive(Copy, Clone, Debug)]
pub struct Mark {
    wall: u64,
    cpu: u64,
}

/// A measured section: elapsed wall and CPU nanoseconds. Same layout as
/// `struct bench_span` in `c/bench.h`.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// Wall-clock nanoseconds.
    pub wall: u64,
    /// CPU nanoseconds (user + sys) of the thread(s) measured.
    pub cpu: u64,
}

fn clock_ns(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `CLOCK_MONOTONIC` in nanoseconds.
pub fn wall_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// Reads both clocks now.
pub fn mark() -> Mark {
    Mark { wall: wall_ns(), cpu: clock_ns(libc::CLOCK_THREAD_CPUTIME_ID) }
}

impl Mark {
    /// The wall reading.
    pub fn wall_ns(&self) -> u64 {
        self.wall
    }

    /// What elapsed since this mark, on this thread.
    pub fn span(&self) -> Span {
        let now = mark();
        Span { wall: now.wall - self.wall, cpu: now.cpu - self.cpu }
    }
}

/// The write system calls the calling thread has made (`syscw` of
/// `/proc/thread-self/io`; reading it makes none), -1 if unknown. The same
/// as `bench_thread_writes` of the C drivers.
pub fn thread_writes() -> i64 {
    std::fs::read_to_string("/proc/thread-self/io")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("syscw:").and_then(|v| v.trim().parse().ok())))
        .unwrap_or(-1)
}

/// Pins the calling thread to `cpu` (nothing when negative).
pub fn pin(cpu: i32) {
    if cpu < 0 {
        return;
    }
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the pointer and size
    // describe it; pid 0 is the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The CPUs this process may run on.
pub fn cpus() -> Vec<i32> {
    // SAFETY: as in `pin`; the set is only read after the call filled it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return vec![0];
        }
        (0..libc::CPU_SETSIZE).filter(|&c| libc::CPU_ISSET(c as usize, &set)).collect()
    }
}

/// Raises the open-file limit to `want` (root may raise the hard limit
/// too); returns the soft limit in force afterwards.
pub fn raise_nofile(want: u64) -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid rlimit for both calls.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        if lim.rlim_cur >= want {
            return lim.rlim_cur;
        }
        let raised = libc::rlimit { rlim_cur: want, rlim_max: want.max(lim.rlim_max) };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
            let soft = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            libc::setrlimit(libc::RLIMIT_NOFILE, &soft);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

/// A small deterministic generator (splitmix64): the same seed gives every
/// implementation the same deadlines and the same shuffled orders.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (bound > 0; the bias is negligible here).
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// A shuffled `0..n`.
    pub fn permutation(&mut self, n: usize) -> Vec<u32> {
        let mut v: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
        v
    }
}

/// Median, minimum and maximum of some values.
#[derive(Copy, Clone, Debug)]
pub struct Stats {
    /// The median (mean of the two middle values for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Stats {
    /// Statistics of `values`; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Stats> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 };
        Some(Stats { median, min: v[0], max: v[v.len() - 1] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_is_a_permutation() {
        let mut p = Rng::new(7).permutation(1000);
        p.sort_unstable();
        assert!(p.iter().enumerate().all(|(i, &x)| i as u32 == x));
    }

    #[test]
    fn stats_median_min_max() {
        let s = Stats::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (3.0, 1.0, 5.0));
        let s = Stats::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert!(Stats::of(&[]).is_none());
    }

    #[test]
    fn clocks_move_forward() {
        let m = mark();
        let mut x = 0u64;
        for i in 0..100_000 {
            x = x.wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        let s = m.span();
        assert!(s.wall > 0 && s.cpu > 0);
    }
}
