//! Which engine runs the requests, and the worker pool's settings.

use core::time::Duration;

/// The engine behind a [`Files`](super::Files) value, chosen at run time.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Engine {
    /// io_uring where the kernel allows it and has every operation
    /// (checked with `IORING_REGISTER_PROBE`), the worker pool otherwise;
    /// [`Files::fallback`](super::Files::fallback) says why.
    Auto,
    /// io_uring only: refused setups are errors.
    IoUring,
    /// The pool of `clone()`d worker threads only.
    Workers,
}

impl Engine {
    /// `"auto"`, `"io_uring"` or `"workers"`.
    pub const fn name(self) -> &'static str {
        match self {
            Engine::Auto => "auto",
            Engine::IoUring => "io_uring",
            Engine::Workers => "workers",
        }
    }

    /// The engine with that [`name`](Self::name).
    pub fn from_name(name: &str) -> Option<Engine> {
        [Engine::Auto, Engine::IoUring, Engine::Workers].into_iter().find(|e| e.name() == name)
    }
}

/// The most worker threads a pool runs at once.
pub const MAX_WORKERS: usize = 64;

/// How a [`Files`](super::Files) value is made.
///
/// ```
/// use core::time::Duration;
/// use linux_event::files::{Config, Engine};
/// let cfg = Config::new(Engine::Workers).max_parallel(8).idle_timeout(Duration::from_secs(2));
/// # let _ = cfg;
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub(crate) engine: Engine,
    pub(crate) min_parallel: usize,
    pub(crate) max_parallel: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) stack_size: usize,
    pub(crate) inline_attempts: bool,
}

impl Config {
    /// `engine` with the defaults: workers start lazily, up to 4 run at
    /// once, one stays when idle, the others exit after 10 s idle; reads and
    /// writes are first tried without blocking on the loop's thread.
    pub const fn new(engine: Engine) -> Config {
        Config {
            engine,
            min_parallel: 1,
            max_parallel: 4,
            idle_timeout: Duration::from_secs(10),
            stack_size: 64 * 1024,
            inline_attempts: true,
        }
    }

    /// Workers that stay when idle (Linux::AIO's `min_parallel`; default 1).
    /// They are still started lazily, by the first requests. Capped at
    /// `max_parallel`.
    pub const fn min_parallel(mut self, n: usize) -> Config {
        self.min_parallel = n;
        self
    }

    /// Most workers running at once (default 4; 1 to [`MAX_WORKERS`]). With
    /// io_uring, the limit of the kernel's workers for requests that may
    /// block on disk, where the kernel has `IORING_REGISTER_IOWQ_MAX_WORKERS`.
    pub const fn max_parallel(mut self, n: usize) -> Config {
        self.max_parallel = n;
        self
    }

    /// How long a worker beyond `min_parallel` waits for work before it
    /// exits (default 10 s).
    pub const fn idle_timeout(mut self, d: Duration) -> Config {
        self.idle_timeout = d;
        self
    }

    /// Each worker's stack (default 64 KiB, rounded up to 64 KiB; a 64 KiB
    /// guard below it is extra). Workers run only this crate's code.
    pub const fn stack_size(mut self, bytes: usize) -> Config {
        self.stack_size = bytes;
        self
    }

    /// Whether the worker engine first tries a read or write on the loop's
    /// thread with `RWF_NOWAIT` (data in the page cache, room in a pipe), as
    /// io_uring does in the kernel, and hands it to a worker only when it
    /// would block (default on). Off: every request goes to a worker.
    pub const fn inline_attempts(mut self, on: bool) -> Config {
        self.inline_attempts = on;
        self
    }

    /// The engine asked for.
    pub const fn engine(&self) -> Engine {
        self.engine
    }
}
