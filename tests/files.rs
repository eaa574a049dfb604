//! The file-operations companion (`linux_event::files`): every operation's
//! success and error paths, capacity, cancellation, attach/detach and the
//! `poll_fd`/`poll` contract, on both engines (one named test each:
//! `io_uring::name`, `workers::name`). Where the kernel refuses io_uring
//! (qemu-user: ENOSYS; seccomp: EPERM) the io_uring tests say so and do not
//! run, unless `LINUX_EVENT_REQUIRE` names io_uring (or `all`).

mod common;

use common::{PATIENCE, watchdog};
use linux_event::files::{Config, Engine, FileEvent, FileType, Files, Op, OpenOptions, RequestId, Standalone};
use linux_event::sys::{self, OwnedFd};
use linux_event::{Errno, Error, Loop};
use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

type Lp = Loop<Ctx>;
type Fs = Files<Lp, 64>;

/// The context of every test: the companion and what callbacks saw.
struct Ctx {
    files: Fs,
    events: Vec<Seen>,
    /// Ids completed, with how many times (must be once each).
    completions: HashMap<RequestId, u32>,
    stop_after: usize,
}

/// What one callback saw.
#[derive(Debug)]
struct Seen {
    id: RequestId,
    op: Op,
    data: u64,
    result: Result<u64, Errno>,
    fd: Option<OwnedFd>,
    stat: Option<linux_event::files::Stat>,
    filled: Vec<u8>,
    buffer_back: bool,
}

impl AsMut<Fs> for Ctx {
    fn as_mut(&mut self) -> &mut Fs {
        &mut self.files
    }
}

/// One engine under test.
#[derive(Copy, Clone, Debug)]
struct E {
    name: &'static str,
    engine: Engine,
}

const IO_URING: E = E { name: "io_uring", engine: Engine::IoUring };
const WORKERS: E = E { name: "workers", engine: Engine::Workers };

fn required(e: &E) -> bool {
    std::env::var("LINUX_EVENT_REQUIRE").is_ok_and(|l| l.split(',').any(|w| w == "all" || w == e.name))
}

/// Runs `body` on engine `e`, or says why not (io_uring refused).
fn run_on(e: E, body: fn(&E)) {
    let _dog = watchdog("files test", 60);
    // Probed on a thread of its own (closing a ring interrupts the closing
    // thread's next blocking wait, see tests/common).
    let probe = std::thread::spawn(move || Files::<Lp, 1>::new(e.engine).map(drop)).join().unwrap();
    match probe {
        Ok(()) => body(&e),
        Err(err) if required(&e) => panic!("[{}] required by LINUX_EVENT_REQUIRE but refused: {err}", e.name),
        Err(Error::Os(err @ (Errno::ENOSYS | Errno::EPERM | Errno::EOPNOTSUPP))) => {
            let note = format!("NOTE: [{}] not offered here: {err}; not run", e.name);
            println!("{note}");
            eprintln!("{note}");
        }
        Err(err) => panic!("[{}] {err}", e.name),
    }
}

macro_rules! engine_tests {
    ($($name:ident),* $(,)?) => {
        mod io_uring { $( #[test] fn $name() { super::run_on(super::IO_URING, super::$name) } )* }
        mod workers { $( #[test] fn $name() { super::run_on(super::WORKERS, super::$name) } )* }
    };
}

fn config(e: &E) -> Config {
    Config::new(e.engine)
}

fn ctx(e: &E) -> Ctx {
    ctx_with(config(e))
}

fn ctx_with(cfg: Config) -> Ctx {
    let files = Files::with_config(cfg).unwrap_or_else(|err| panic!("Files::with_config: {err}"));
    Ctx { files, events: Vec::new(), completions: HashMap::new(), stop_after: usize::MAX }
}

/// A loop with `c.files` attached.
fn attached(e: &E, c: &mut Ctx) -> Lp {
    let mut lp = Lp::new().unwrap();
    c.files.attach(&mut lp).unwrap_or_else(|err| panic!("[{}] attach: {err}", e.name));
    lp
}

/// The callback every test uses: records what it saw.
fn record(lp: &mut Lp, c: &mut Ctx, mut ev: FileEvent) {
    let filled = ev.filled().to_vec();
    let fd = ev.take_fd().ok();
    let buffer_back = ev.take_buffer().is_some();
    *c.completions.entry(ev.id()).or_default() += 1;
    c.events.push(Seen {
        id: ev.id(),
        op: ev.op(),
        data: ev.data(),
        result: ev.result(),
        fd,
        stat: ev.stat().ok(),
        filled,
        buffer_back,
    });
    if c.events.len() >= c.stop_after {
        lp.stop();
    }
}

/// Runs passes until `n` more events were recorded.
fn wait_for(e: &E, lp: &mut Lp, c: &mut Ctx, n: usize) {
    let want = c.events.len() + n;
    let give_up = std::time::Instant::now() + PATIENCE.unwrap() * 2;
    while c.events.len() < want {
        assert!(std::time::Instant::now() < give_up, "[{}] {} of {want} events", e.name, c.events.len());
        lp.run_once(c, PATIENCE).unwrap_or_else(|err| panic!("[{}] run_once: {err}", e.name));
    }
}

/// Requests one thing and waits for its event.
fn one(e: &E, lp: &mut Lp, c: &mut Ctx, make: impl FnOnce(&mut Fs) -> Result<RequestId, Error>) -> Seen {
    let id = make(&mut c.files).unwrap_or_else(|err| panic!("[{}] request refused: {err}", e.name));
    wait_for(e, lp, c, 1);
    let seen = c.events.pop().unwrap();
    assert_eq!(seen.id, id, "[{}]", e.name);
    seen
}

fn leak(n: usize) -> &'static mut [u8] {
    Box::leak(vec![0u8; n].into_boxed_slice())
}

fn leak_bytes(b: &[u8]) -> &'static mut [u8] {
    Box::leak(b.to_vec().into_boxed_slice())
}

/// A fresh directory for one test.
fn scratch(e: &E, test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("linux-event-files-{}-{}-{test}", std::process::id(), e.name));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn b(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

fn open_fd(p: &Path, write: bool) -> OwnedFd {
    let c = CString::new(b(p)).unwrap();
    let flags = if write { libc::O_RDWR | libc::O_CREAT } else { libc::O_RDONLY } | libc::O_CLOEXEC;
    // SAFETY: a valid C string; the new fd is owned by nothing else.
    let fd = unsafe { libc::open(c.as_ptr(), flags, 0o644) };
    assert!(fd >= 0, "open {}: {}", p.display(), std::io::Error::last_os_error());
    // SAFETY: a fresh fd.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

// ---------------------------------------------------------------------------

fn open_write_read_sync_stat_close_round_trip(e: &E) {
    let dir = scratch(e, "round-trip");
    let path = dir.join("a");
    let mut c = ctx(e);
    let mut lp = attached(e, &mut c);
    let opts = OpenOptions::new().read(true).write(true).create_new(true).mode(0o640);
    let mut opened = one(e, &mut lp, &mut c, |f| f.open(b(&path), &opts, 7, record));
    assert_eq!((opened.op, opened.data), (Op::Open, 7));
    let fd = opened.fd.take().expect("open gives an fd");
    let raw = fd.as_raw_fd();
    let w =
        one(e, &mut lp, &mut c, |f| f.write(raw, 0, leak_bytes(b"hello, world\n"), 13, 1, record).map_err(Error::from));
    assert_eq!((w.op, w.result, w.buffer_back), (Op::Write, Ok(13), true), "[{}]", e.name);
    let part =
        one(e, &mut lp, &mut c, |f| f.write(raw, 13, leak_bytes(b"XYZ-unused"), 0, 1, record).map_err(Error::from));
    assert_eq!((part.result, part.buffer_back), (Ok(0), true), "[{}] a zero-length write", e.name);
    let w2 = one(e, &mut lp, &mut c, |f| f.write_static(raw, 7, b"files", 2, record));
    assert_eq!((w2.result, w2.buffer_back), (Ok(5), false));
    for (op, r) in [(Op::Fsync, 0), (Op::Fdatasync, 0)] {
        let s = one(e, &mut lp, &mut c, |f| {
            if op == Op::Fsync { f.fsync(raw, 0, record) } else { f.fdatasync(raw, 0, record) }
        });
        assert_eq!((s.op, s.result), (op, Ok(r)));
    }
    let r = one(e, &mut lp, &mut c, |f| f.read(raw, 0, leak(64), 64, 3, record).map_err(Error::from));
    assert_eq!((r.result, r.filled.as_slice(), r.buffer_back), (Ok(13), &b"hello, files\n"[..], true), "[{}]", e.name);
    let tail = one(e, &mut lp, &mut c, |f| f.read(raw, 7, leak(3), 3, 0, record).map_err(Error::from));
    assert_eq!(tail.filled, b"fil");
    let eof = one(e, &mut lp, &mut c, |f| f.read(raw, 100, leak(3), 3, 0, record).map_err(Error::from));
    assert_eq!(eof.result, Ok(0), "[{}] end of file", e.name);
    let st = one(e, &mut lp, &mut c, |f| f.fstat(raw, 4, record)).stat.expect("fstat");
    assert_eq!((st.size, st.file_type(), st.permissions()), (13, FileType::File, 0o640 & !umask()), "[{}]", e.name);
    let by_path = one(e, &mut lp, &mut c, |f| f.stat(b(&path), 0, record)).stat.unwrap();
    assert_eq!((by_path.ino, by_path.size), (st.ino, 13));
    let closed = one(e, &mut lp, &mut c, |f| f.close(fd.into_raw_fd(), 5, record));
    assert_eq!((closed.op, closed.result), (Op::Close, Ok(0)));
    // Closed: the number is free, or (tests run in parallel threads of one
    // process) already another test's file, never ours.
    let now = std::fs::read_link(format!("/proc/self/fd/{raw}"));
    assert!(now.as_ref().is_err() || now.as_ref().ok() != Some(&path), "[{}] the fd is still {path:?}", e.name);
    assert_eq!(c.files.nreqs(), 0);
    assert!(c.completions.values().all(|&n| n == 1));
    drop(c);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn umask() -> u32 {
    // SAFETY: umask has no preconditions; set back at once.
    unsafe {
        let m = libc::umask(0o022);
        libc::umask(m);
        m as u32
    }
}

fn directory_operations_and_symlinks(e: &E) {
    let dir = scratch(e, "dirs");
    let sub = dir.join("sub");
    let mut c = ctx(e);
    let mut lp = attached(e, &mut c);
    assert_eq!(one(e, &mut lp, &mut c, |f| f.mkdir(b(&sub), 0o755, 0, record)).result, Ok(0));
    assert!(sub.is_dir());
    std::fs::write(sub.join("f"), b"x").unwrap();
    std::os::unix::fs::symlink("sub/f", dir.join("link")).unwrap();
    let l = one(e, &mut lp, &mut c, |f| f.lstat(b(&dir.join("link")), 0, record)).stat.unwrap();
    assert!(l.is_symlink(), "[{}] lstat sees the link", e.name);
    let s = one(e, &mut lp, &mut c, |f| f.stat(b(&dir.join("link")), 0, record)).stat.unwrap();
    assert_eq!((s.file_type(), s.size), (FileType::File, 1), "[{}] stat follows it", e.name);
    let ren = one(e, &mut lp, &mut c, |f| f.rename(b(&sub.join("f")), b(&sub.join("g")), 0, record));
    assert_eq!(ren.result, Ok(0));
    assert!(!sub.join("f").exists() && sub.join("g").exists());
    assert_eq!(one(e, &mut lp, &mut c, |f| f.rmdir(b(&sub), 0, record)).result, Err(Errno::ENOTEMPTY));
    assert_eq!(one(e, &mut lp, &mut c, |f| f.unlink(b(&sub.join("g")), 0, record)).result, Ok(0));
    assert_eq!(one(e, &mut lp, &mut c, |f| f.rmdir(b(&sub), 0, record)).result, Ok(0));
    assert!(!sub.exists());
    drop(c);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn errors_reach_the_callback_as_named_errnos(e: &E) {
    let dir = scratch(e, "errors");
    let file = dir.join("file");
    std::fs::write(&file, b"data").unwrap();
    std::os::unix::fs::symlink("file", dir.join("link")).unwrap();
    let mut c = ctx(e);
    let mut lp = attached(e, &mut c);
    let ro = OpenOptions::read_only();
    type Make<'a> = Box<dyn FnOnce(&mut Fs) -> Result<RequestId, Error> + 'a>;
    let cases: Vec<(&str, Errno, Make<'_>)> = vec![
        ("open missing", Errno::ENOENT, Box::new(|f: &mut Fs| f.open(b"/no/such/file", &ro, 0, record))),
        ("stat missing", Errno::ENOENT, Box::new(|f: &mut Fs| f.stat(b"/no/such/file", 0, record))),
        ("unlink missing", Errno::ENOENT, Box::new(|f: &mut Fs| f.unlink(b"/no/such/file", 0, record))),
        ("rename missing", Errno::ENOENT, Box::new(|f: &mut Fs| f.rename(b"/no/such/a", b"/no/such/b", 0, record))),
        ("open a dir for writing", Errno::EISDIR, {
            let d = dir.clone();
            Box::new(move |f: &mut Fs| f.open(b(&d), &OpenOptions::new().write(true), 0, record))
        }),
        ("unlink a dir", Errno::EISDIR, {
            let d = dir.clone();
            Box::new(move |f: &mut Fs| f.unlink(b(&d), 0, record))
        }),
        ("mkdir existing", Errno::EEXIST, {
            let d = dir.clone();
            Box::new(move |f: &mut Fs| f.mkdir(b(&d), 0o700, 0, record))
        }),
        ("create_new existing", Errno::EEXIST, {
            let p = file.clone();
            Box::new(move |f: &mut Fs| f.open(b(&p), &OpenOptions::new().write(true).create_new(true), 0, record))
        }),
        ("path through a file", Errno::ENOTDIR, {
            let p = file.join("x");
            Box::new(move |f: &mut Fs| f.stat(b(&p), 0, record))
        }),
        ("directory option on a file", Errno::ENOTDIR, {
            let p = file.clone();
            Box::new(move |f: &mut Fs| f.open(b(&p), &OpenOptions::read_only().directory(true), 0, record))
        }),
        ("rmdir a file", Errno::ENOTDIR, {
            let p = file.clone();
            Box::new(move |f: &mut Fs| f.rmdir(b(&p), 0, record))
        }),
        (
            "read a closed fd",
            Errno::EBADF,
            Box::new(|f: &mut Fs| f.read(999_999, 0, leak(8), 8, 0, record).map_err(Error::from)),
        ),
        ("write a closed fd", Errno::EBADF, Box::new(|f: &mut Fs| f.write_static(999_999, 0, b"x", 0, record))),
        ("close a closed fd", Errno::EBADF, Box::new(|f: &mut Fs| f.close(999_999, 0, record))),
        ("fsync a closed fd", Errno::EBADF, Box::new(|f: &mut Fs| f.fsync(999_999, 0, record))),
        ("fstat a closed fd", Errno::EBADF, Box::new(|f: &mut Fs| f.fstat(999_999, 0, record))),
        ("nofollow on a symlink", Errno::ELOOP, {
            let l = dir.join("link");
            Box::new(move |f: &mut Fs| f.open(b(&l), &OpenOptions::read_only().nofollow(true), 0, record))
        }),
    ];
    for (what, want, make) in cases {
        let seen = one(e, &mut lp, &mut c, make);
        assert_eq!(seen.result, Err(want), "[{}] {what}", e.name);
        assert_eq!(seen.result.unwrap_err().name(), want.name());
    }
    // A read of a directory; a write to a file opened read-only.
    let d = open_fd(&dir, false);
    let r = one(e, &mut lp, &mut c, |f| f.read(d.as_raw_fd(), 0, leak(8), 8, 0, record).map_err(Error::from));
    assert_eq!(r.result, Err(Errno::EISDIR), "[{}] read a directory", e.name);
    let ro_fd = open_fd(&file, false);
    let w = one(e, &mut lp, &mut c, |f| f.write_static(ro_fd.as_raw_fd(), 0, b"x", 0, record));
    assert_eq!(w.result, Err(Errno::EBADF), "[{}] write a read-only fd", e.name);
    drop(c);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// EACCES needs a caller without CAP_DAC_OVERRIDE: a thread whose
/// file-system uid is not 0 (setfsuid is per thread, and drops those
/// capabilities), which makes the Files value, so that its workers and the
/// kernel's run with its credentials.
fn permission_denied_is_eacces(e: &E) {
    let dir = scratch(e, "eacces");
    let secret = dir.join("secret");
    std::fs::write(&secret, b"x").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let e = *e;
    let s = secret.clone();
    std::thread::spawn(move || {
        // SAFETY: setfsuid has no memory preconditions; it changes this thread only.
        unsafe { libc::setfsuid(65534) };
        let mut c = ctx(&e);
        let mut lp = attached(&e, &mut c);
        let r = one(&e, &mut lp, &mut c, |f| f.open(b(&s), &OpenOptions::read_only(), 0, record));
        assert_eq!(r.result, Err(Errno::EACCES), "[{}]", e.name);
        let r = one(&e, &mut lp, &mut c, |f| f.unlink(b(&s), 0, record));
        assert_eq!(r.result, Err(Errno::EACCES), "[{}] unlink in a root-owned 0755 dir", e.name);
    })
    .join()
    .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

fn bad_input_is_refused_before_submission(e: &E) {
    let mut c = ctx(e);
    let long = vec![b'a'; 1024];
    assert_eq!(c.files.stat(&long, 0, record), Err(Error::Os(Errno::ENAMETOOLONG)));
    assert!(c.files.stat(&long[..1023], 0, record).is_ok(), "1023 bytes and the NUL fit in 1024");
    let (a, bb) = (vec![b'a'; 600], vec![b'b'; 600]);
    assert_eq!(c.files.rename(&a, &bb, 0, record), Err(Error::Os(Errno::ENAMETOOLONG)), "both share P");
    assert_eq!(c.files.unlink(b"/tmp/a\0b", 0, record), Err(Error::Os(Errno::EINVAL)));
    assert_eq!(c.files.fstat(-1, 0, record), Err(Error::Os(Errno::EBADF)));
    let refused = c.files.read(-1, 0, leak(16), 16, 0, record).unwrap_err();
    assert_eq!((refused.error, refused.buffer.len()), (Error::Os(Errno::EBADF), 16), "the buffer comes back");
    let refused = c.files.read(0, u64::MAX - 1, leak(4), 4, 0, record).unwrap_err();
    assert_eq!(refused.error, Error::Os(Errno::EINVAL));
    let refused = c.files.write(1, 0, leak(4), 5, 0, record).unwrap_err();
    assert_eq!((refused.error, refused.buffer.len()), (Error::Os(Errno::EINVAL), 4), "len beyond the buffer");
    assert_eq!(c.files.nreqs(), 1, "only the one stat that fit");
    let mut lp = attached(e, &mut c);
    wait_for(e, &mut lp, &mut c, 1);
}

/// 10,000 requests through a 64-request table: `Capacity` whenever it is
/// full, and every accepted request completes exactly once.
fn ten_thousand_requests_through_a_64_request_table(e: &E) {
    let file = std::env::temp_dir().join(format!("linux-event-files-{}-{}-10k", std::process::id(), e.name));
    std::fs::write(&file, vec![7u8; 4096]).unwrap();
    let fd = open_fd(&file, false);
    let mut c = ctx(e);
    let mut lp = attached(e, &mut c);
    let (mut accepted, mut full) = (0u64, 0u64);
    let mut pool: Vec<&'static mut [u8]> = (0..64).map(|_| leak(512)).collect();
    while accepted < 10_000 {
        // Fill the table, then run a pass; buffers come back in the events.
        loop {
            if accepted == 10_000 {
                break;
            }
            let made = if accepted % 3 == 0 {
                c.files.stat(b(&file), accepted, record)
            } else {
                let Some(buf) = pool.pop() else { break };
                c.files.read(fd.as_raw_fd(), accepted % 8 * 512, buf, 512, accepted, record).map_err(|r| {
                    pool.push(r.buffer);
                    r.error
                })
            };
            match made {
                Ok(_) => accepted += 1,
                Err(Error::Capacity) => {
                    full += 1;
                    break;
                }
                Err(err) => panic!("[{}] {err}", e.name),
            }
        }
        lp.run_once(&mut c, PATIENCE).unwrap();
        for s in c.events.iter_mut().filter(|s| s.op == Op::Read) {
            assert!(s.buffer_back);
            assert_eq!(s.result, Ok(512), "[{}] read {}", e.name, s.data);
        }
        let reads = c.events.iter().filter(|s| s.op == Op::Read).count();
        pool.extend((0..reads).map(|_| leak(512)));
        c.events.retain(|s| s.op != Op::Read);
    }
    while c.files.nreqs() > 0 {
        lp.run_once(&mut c, PATIENCE).unwrap();
    }
    assert!(full > 0, "[{}] the table was never full", e.name);
    assert_eq!(c.completions.len(), 10_000, "[{}] every request completed", e.name);
    assert!(c.completions.values().all(|&n| n == 1), "[{}] exactly once each", e.name);
    drop(c);
    let _ = std::fs::remove_file(&file);
}

/// A request cancelled before it reached the engine completes once, with
/// ECANCELED and its buffer; cancelling again, or after completion, is false.
fn cancel_queued(e: &E) {
    let mut c = ctx(e);
    let mut lp = attached(e, &mut c);
    let (r, _w) = sys::pipe().unwrap();
    let id = c.files.read(r.as_raw_fd(), Fs::CURRENT_POSITION, leak(8), 8, 9, record).unwrap();
    let other = c.files.stat(b"/", 10, record).unwrap();
    assert!(c.files.cancel(id), "[{}] queued: cancellable", e.name);
    assert!(!c.files.cancel(id), "[{}] cancelled already: completed, if not delivered yet", e.name);
    wait_for(e, &mut lp, &mut c, 2);
    let seen: Vec<_> = c.events.drain(..).collect();
    let cancelled = seen.iter().find(|s| s.id == id).unwrap();
    assert_eq!((cancelled.result, cancelled.buffer_back, cancelled.data), (Err(Errno::ECANCELED), true, 9));
    assert!(seen.iter().any(|s| s.id == other && s.result == Ok(0)));
    assert!(!c.files.cancel(id), "[{}] delivered: stale", e.name);
    assert!(!c.files.cancel(other));
    assert_eq!(c.completions[&id], 1);
    // One that reached the engine: the cancellation may or may not win
    // (it may have finished already); either way it is delivered once.
    let raced = c.files.stat(b"/", 0, record).unwrap();
    c.files.submit().unwrap();
    let _ = c.files.cancel(raced);
    wait_for(e, &mut lp, &mut c, 1);
    let s = c.events.pop().unwrap();
    assert!(s.id == raced && (s.result == Ok(0) || s.result == Err(Errno::ECANCELED)), "[{}] {s:?}", e.name);
    assert_eq!(c.completions[&raced], 1);
    assert!(!c.files.cancel(raced));
}

/// Whether some thread of this process is asleep in ppoll. Under qemu-user
/// /proc shows the host's system call: x86_64's ppoll is 271.
fn some_thread_in_ppoll() -> bool {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return false };
    tasks.flatten().any(|t| {
        let call = std::fs::read_to_string(t.path().join("syscall")).unwrap_or_default();
        let nr = call.split_whitespace().next().and_then(|n| n.parse::<i64>().ok());
        nr == Some(libc::SYS_ppoll) || (cfg!(not(target_arch = "x86_64")) && nr == Some(271))
    })
}

/// A read of an empty pipe runs (a worker waits in ppoll; io_uring arms an
/// internal poll) until cancelled: then ECANCELED, with its buffer.
fn cancel_in_flight(e: &E) {
    let mut c = ctx(e);
    let mut lp = attached(e, &mut c);
    let (r, w) = sys::pipe().unwrap();
    let id = c.files.read(r.as_raw_fd(), Fs::CURRENT_POSITION, leak(8), 8, 1, record).unwrap();
    lp.run_once(&mut c, Some(std::time::Duration::ZERO)).unwrap();
    if e.engine == Engine::Workers {
        let give_up = std::time::Instant::now() + PATIENCE.unwrap();
        while !some_thread_in_ppoll() {
            assert!(std::time::Instant::now() < give_up, "no worker waits in ppoll");
            std::thread::yield_now();
        }
    }
    assert!(c.events.is_empty(), "[{}] nothing to read yet", e.name);
    assert!(c.files.cancel(id), "[{}] in flight: cancellable", e.name);
    wait_for(e, &mut lp, &mut c, 1);
    let s = c.events.pop().unwrap();
    assert_eq!((s.id, s.result, s.buffer_back), (id, Err(Errno::ECANCELED), true), "[{}]", e.name);
    // The pipe still works, and the next read gets what is written.
    let id = c.files.read(r.as_raw_fd(), Fs::CURRENT_POSITION, leak(8), 8, 2, record).unwrap();
    lp.run_once(&mut c, Some(std::time::Duration::ZERO)).unwrap();
    sys::write(w.as_raw_fd(), b"ping").unwrap();
    wait_for(e, &mut lp, &mut c, 1);
    let s = c.events.pop().unwrap();
    assert_eq!((s.id, s.filled.as_slice()), (id, &b"ping"[..]), "[{}]", e.name);
}

/// Reads and writes at the current position: pipes, in order.
fn stream_reads_and_writes_on_a_pipe(e: &E) {
    let mut c = ctx(e);
    let mut lp = attached(e, &mut c);
    let (r, w) = sys::pipe().unwrap();
    let wr = one(e, &mut lp, &mut c, |f| f.write_static(w.as_raw_fd(), Fs::CURRENT_POSITION, b"one two", 0, record));
    assert_eq!(wr.result, Ok(7));
    let rd = one(e, &mut lp, &mut c, |f| {
        f.read(r.as_raw_fd(), Fs::CURRENT_POSITION, leak(4), 4, 0, record).map_err(Error::from)
    });
    assert_eq!(rd.filled, b"one ");
    let rd = one(e, &mut lp, &mut c, |f| {
        f.read(r.as_raw_fd(), Fs::CURRENT_POSITION, leak(16), 16, 0, record).map_err(Error::from)
    });
    assert_eq!(rd.filled, b"two");
    drop(w);
    let eof = one(e, &mut lp, &mut c, |f| {
        f.read(r.as_raw_fd(), Fs::CURRENT_POSITION, leak(16), 16, 0, record).map_err(Error::from)
    });
    assert_eq!(eof.result, Ok(0), "[{}] end of file once the writer is gone", e.name);
    // A pipe has no offsets: both engines read at its current position, as
    // io_uring does.
    let (r, w) = sys::pipe().unwrap();
    sys::write(w.as_raw_fd(), b"abc").unwrap();
    let p = one(e, &mut lp, &mut c, |f| f.read(r.as_raw_fd(), 100, leak(16), 16, 0, record).map_err(Error::from));
    assert_eq!(p.filled, b"abc", "[{}] the offset of a pipe read is ignored", e.name);
}

/// Without this crate's loop: watch `poll_fd`, call `poll`.
fn poll_fd_and_poll_without_the_loop(e: &E) {
    struct Plain {
        files: Files<Standalone<Plain>, 8>,
        got: Vec<Result<u64, Errno>>,
    }
    impl AsMut<Files<Standalone<Plain>, 8>> for Plain {
        fn as_mut(&mut self) -> &mut Files<Standalone<Plain>, 8> {
            &mut self.files
        }
    }
    fn got(_: &mut Standalone<Plain>, p: &mut Plain, ev: FileEvent) {
        p.got.push(ev.result());
    }
    let mut p = Plain { files: Files::new(e.engine).unwrap(), got: Vec::new() };
    let mut none = Standalone::new();
    assert_eq!(Files::poll(&mut none, &mut p), 0, "nothing yet");
    p.files.stat(b"/", 0, got).unwrap();
    p.files.unlink(b"/no/such", 0, got).unwrap();
    while p.got.len() < 2 {
        let mut pfd = libc::pollfd { fd: p.files.poll_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 5000) };
        assert_eq!(n, 1, "[{}] poll_fd became readable", e.name);
        assert!(Files::poll(&mut none, &mut p) >= 1);
    }
    assert_eq!(p.got, vec![Ok(0), Err(Errno::ENOENT)]);
    assert_eq!(Files::poll(&mut none, &mut p), 0);
}

/// The companion works on every loop backend the kernel offers.
fn attach_on_every_loop_backend(e: &E) {
    use linux_event::backend::{AnyBackend, BackendKind};
    struct On<B: linux_event::backend::Backend> {
        files: Files<Loop<On<B>, 16, 16, B>, 8>,
        ok: bool,
    }
    impl<B: linux_event::backend::Backend> AsMut<Files<Loop<On<B>, 16, 16, B>, 8>> for On<B> {
        fn as_mut(&mut self) -> &mut Files<Loop<On<B>, 16, 16, B>, 8> {
            &mut self.files
        }
    }
    for kind in [BackendKind::Epoll, BackendKind::LinuxAio, BackendKind::IoUring] {
        let Ok(backend) = std::thread::spawn(move || AnyBackend::new(kind).map(|_| ())).join().unwrap() else {
            continue;
        };
        let () = backend;
        let mut lp: Loop<On<AnyBackend>, 16, 16, AnyBackend> =
            Loop::with_backend(AnyBackend::new(kind).unwrap()).unwrap();
        let mut on = On { files: Files::new(e.engine).unwrap(), ok: false };
        on.files.attach(&mut lp).unwrap();
        assert_eq!(on.files.attach(&mut lp), Err(Error::AlreadyWatched));
        on.files
            .stat(b"/", 0, |lp, on, ev| {
                on.ok = ev.stat().is_ok_and(|s| s.is_dir());
                lp.stop();
            })
            .unwrap();
        lp.run(&mut on).unwrap();
        assert!(on.ok, "[{}] on {kind:?}", e.name);
        assert!(on.files.detach(&mut lp));
        assert!(!on.files.detach(&mut lp));
    }
}

/// Requests made before attach are submitted by the first pass; after
/// detach each is submitted as it is made.
fn detach_submits_each_request_again(e: &E) {
    let mut c = ctx(e);
    c.files.set_auto_submit(false);
    let id = c.files.stat(b"/", 0, record).unwrap();
    let mut lp = attached(e, &mut c);
    wait_for(e, &mut lp, &mut c, 1);
    assert_eq!(c.events[0].id, id);
    assert!(c.files.detach(&mut lp));
    c.files.stat(b"/", 0, record).unwrap();
    let give_up = std::time::Instant::now() + PATIENCE.unwrap();
    while c.files.nreqs() > 0 {
        assert!(std::time::Instant::now() < give_up);
        let mut pfd = libc::pollfd { fd: c.files.poll_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, 100) };
        Files::poll(&mut lp, &mut c);
    }
    assert_eq!(c.events.len(), 2);
}

/// Callbacks may make and cancel requests, their own table slot included.
fn callbacks_make_more_requests(e: &E) {
    /// Each step makes the next one and a request it cancels at once.
    fn step(lp: &mut Lp, c: &mut Ctx, ev: FileEvent) {
        *c.completions.entry(ev.id()).or_default() += 1;
        if ev.data() == 1000 {
            assert_eq!(ev.result(), Err(Errno::ECANCELED));
            return;
        }
        assert_eq!(ev.result(), Ok(0));
        if ev.data() < 20 {
            c.files.stat(b"/", ev.data() + 1, step).unwrap();
            let doomed = c.files.stat(b"/", 1000, step).unwrap();
            assert!(c.files.cancel(doomed));
        } else {
            lp.stop();
        }
    }
    let mut c = ctx(e);
    let mut lp = attached(e, &mut c);
    c.files.stat(b"/", 0, step).unwrap();
    lp.run(&mut c).unwrap();
    // The last step's stop lets the pass finish: every cancelled one of
    // them was delivered too (before or in that pass).
    while c.files.nreqs() > 0 {
        lp.run_once(&mut c, PATIENCE).unwrap();
    }
    assert_eq!(c.completions.len(), 41, "[{}] 21 steps and 20 cancelled", e.name);
    assert!(c.completions.values().all(|&n| n == 1));
}

engine_tests!(
    open_write_read_sync_stat_close_round_trip,
    directory_operations_and_symlinks,
    errors_reach_the_callback_as_named_errnos,
    permission_denied_is_eacces,
    bad_input_is_refused_before_submission,
    ten_thousand_requests_through_a_64_request_table,
    cancel_queued,
    cancel_in_flight,
    stream_reads_and_writes_on_a_pipe,
    poll_fd_and_poll_without_the_loop,
    attach_on_every_loop_backend,
    detach_submits_each_request_again,
    callbacks_make_more_requests,
);

// --- engine choice ---------------------------------------------------------

#[test]
fn auto_takes_io_uring_where_offered_and_says_why_not_otherwise() {
    let f = std::thread::spawn(|| {
        let f = Files::<Lp, 4>::new(Engine::Auto).unwrap();
        (f.engine(), f.fallback(), Files::<Lp, 4>::new(Engine::IoUring).err())
    })
    .join()
    .unwrap();
    match f {
        (Engine::IoUring, None, None) => {}
        (Engine::Workers, Some((Engine::IoUring, why)), Some(Error::Os(refused))) => {
            assert_eq!(why, refused, "the reason is io_uring's own refusal");
            assert!(!required(&IO_URING), "io_uring required but refused: {why}");
            println!("NOTE: io_uring refused here ({why}): Auto took the workers");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn forced_workers_never_fall_back() {
    let f = Files::<Lp, 4>::new(Engine::Workers).unwrap();
    assert_eq!((f.engine(), f.fallback(), f.worker_threads()), (Engine::Workers, None, 0), "lazy: no thread yet");
    assert_eq!(Engine::from_name("workers"), Some(Engine::Workers));
    assert_eq!(Engine::from_name("io_uring").map(Engine::name), Some("io_uring"));
}

/// A seccomp filter that answers io_uring_setup with EPERM (Docker's
/// default profile does), installed on one thread (no TSYNC): Auto falls
/// back to the workers with that reason, forced io_uring is that error, and
/// the workers (which inherit the filter) still work.
#[test]
fn io_uring_refused_by_seccomp_falls_back_to_workers() {
    std::thread::spawn(|| {
        if let Err(err) = install_io_uring_eperm_filter() {
            // qemu-user has no seccomp (ENOSYS); the x86_64 kernel here has.
            if cfg!(target_arch = "x86_64") {
                panic!("seccomp: {err}");
            }
            println!("NOTE: no seccomp filters here ({err}); not run");
            return;
        }
        assert_eq!(Files::<Lp, 4>::new(Engine::IoUring).err(), Some(Error::Os(Errno::EPERM)));
        let e = WORKERS;
        let mut c = ctx_with(Config::new(Engine::Auto));
        assert_eq!((c.files.engine(), c.files.fallback()), (Engine::Workers, Some((Engine::IoUring, Errno::EPERM))));
        let mut lp = attached(&e, &mut c);
        let s = one(&e, &mut lp, &mut c, |f| f.stat(b"/", 0, record));
        assert!(s.stat.unwrap().is_dir());
    })
    .join()
    .unwrap();
}

fn install_io_uring_eperm_filter() -> std::io::Result<()> {
    #[cfg(target_arch = "x86_64")]
    const ARCH: u32 = 0xc000_003e;
    #[cfg(target_arch = "aarch64")]
    const ARCH: u32 = 0xc000_00b7;
    #[cfg(target_arch = "riscv64")]
    const ARCH: u32 = 0xc000_00f3;
    let stmt = |code: u16, k: u32| libc::sock_filter { code, jt: 0, jf: 0, k };
    let jump = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let load = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    let filter = [
        stmt(load, 4), // seccomp_data.arch
        jump(ARCH, 1, 0),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
        stmt(load, 0), // seccomp_data.nr
        jump(libc::SYS_io_uring_setup as u32, 0, 1),
        stmt(ret, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_ptr() as *mut _ };
    // SAFETY: prctl with plain integers; seccomp with a valid program that
    // lives across the call (the kernel copies it). Both affect this thread only.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        let r = libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &prog as *const libc::sock_fprog);
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

// --- the worker pool -------------------------------------------------------

/// Workers start lazily up to max_parallel, and idle ones beyond
/// min_parallel exit (and are reaped) after the idle timeout.
#[test]
fn workers_start_lazily_up_to_max_and_idle_ones_exit() {
    let e = WORKERS;
    let cfg =
        Config::new(Engine::Workers).max_parallel(3).min_parallel(1).idle_timeout(std::time::Duration::from_millis(20));
    let mut c = ctx_with(cfg);
    let mut lp = attached(&e, &mut c);
    let pipes: Vec<(OwnedFd, OwnedFd)> = (0..5).map(|_| sys::pipe().unwrap()).collect();
    for (r, _) in &pipes {
        c.files.read(r.as_raw_fd(), Fs::CURRENT_POSITION, leak(4), 4, 0, record).unwrap();
    }
    lp.run_once(&mut c, Some(std::time::Duration::ZERO)).unwrap();
    assert_eq!(c.files.worker_threads(), 3, "three started for five waiting reads");
    for (_, w) in &pipes {
        sys::write(w.as_raw_fd(), b"x").unwrap();
    }
    wait_for(&e, &mut lp, &mut c, 5);
    assert!(c.events.iter().all(|s| s.result == Ok(1)));
    let give_up = std::time::Instant::now() + PATIENCE.unwrap();
    while c.files.worker_threads() > 1 {
        assert!(std::time::Instant::now() < give_up, "idle workers never exited");
        std::thread::sleep(std::time::Duration::from_millis(5));
        Files::poll(&mut lp, &mut c);
    }
    assert_eq!(c.files.worker_threads(), 1, "min_parallel stays");
}
