//! Batches of file operations on the loop, for counting system calls:
//! `files_batch BATCHES DEPTH [io_uring|workers]` reads a 4 KiB block DEPTH
//! times per pass, BATCHES passes in a row, and prints what it did. Every
//! request made during a pass reaches the kernel in one `io_uring_enter`
//! (or one hand-over to the workers) from the loop's prepare callback:
//! `.ci/files.sh` counts them with strace between the two marker calls
//! `close(-100)` and `close(-101)`.

use linux_event::files::{Engine, FileEvent, Files};
use linux_event::{Loop, sys};

type Lp = Loop<Batch>;
type Fs = Files<Lp, 256>;

struct Batch {
    files: Fs,
    fd: i32,
    depth: usize,
    left: usize,
    in_flight: usize,
    bufs: Vec<&'static mut [u8]>,
    batches: usize,
}

impl AsMut<Fs> for Batch {
    fn as_mut(&mut self) -> &mut Fs {
        &mut self.files
    }
}

/// One pass's worth of requests.
fn issue(b: &mut Batch) {
    for _ in 0..b.depth {
        let buf = b.bufs.pop().expect("a buffer per request");
        b.files.read(b.fd, 0, buf, 4096, 0, done).expect("read accepted");
        b.in_flight += 1;
    }
    b.batches += 1;
}

fn done(lp: &mut Lp, b: &mut Batch, mut ev: FileEvent) {
    assert_eq!(ev.bytes(), Ok(4096), "read");
    b.bufs.push(ev.take_buffer().expect("buffer back"));
    b.in_flight -= 1;
    if b.in_flight == 0 {
        b.left -= 1;
        if b.left == 0 {
            lp.stop();
        } else {
            issue(b);
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let batches: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100);
    let depth: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(32).clamp(1, 256);
    let engine = args.next().and_then(|s| Engine::from_name(&s)).unwrap_or(Engine::Auto);
    let path = std::env::temp_dir().join(format!("files_batch.{}", std::process::id()));
    std::fs::write(&path, vec![1u8; 4096]).expect("scratch file");
    let file = std::fs::File::open(&path).expect("scratch file");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    let mut b = Batch {
        files: Fs::new(engine).expect("file operations"),
        fd,
        depth,
        left: batches,
        in_flight: 0,
        bufs: (0..depth).map(|_| &mut *Box::leak(vec![0u8; 4096].into_boxed_slice())).collect(),
        batches: 0,
    };
    let mut lp = Lp::new().expect("loop");
    b.files.attach(&mut lp).expect("attach");
    let _ = sys::close(-100);
    issue(&mut b);
    lp.run(&mut b).expect("run");
    let _ = sys::close(-101);
    println!("{}: {} batches of {} reads", b.files.engine().name(), b.batches, depth);
    let _ = std::fs::remove_file(&path);
}
