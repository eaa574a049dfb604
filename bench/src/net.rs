//! Workload "net" (issue 15): HTTP keep-alive servers under wrk, and echo
//! servers under a ping-pong and a streaming client, interleaved in one
//! run, every server pinned to one core and the client to the other.
//!
//! - http: `wrk -t1 -c100` against `examples/http_hello` (linux-event),
//!   nginx 1.22 with one process (`master_process off`) answering
//!   `return 200 "Hello, world!"` with keep-alive, and the same server on
//!   mio (a thread of this process). Requests per second, ratios to ours.
//! - echo: `examples/echo` against a mio echo server: round trips per
//!   second of one 64-byte ping-pong (latency = 1 / rate) and MB/s of one
//!   connection streaming 64 KiB writes both ways.
//! - memory: RSS growth of http_hello and nginx per idle keep-alive
//!   connection, 10,000 connections each having made one request.
//!
//! Needs wrk and nginx (`.ci/net.sh` installs them); missing tools are
//! reported and their rows left out.

use crate::measure::{Stats, pin};
use crate::workload::Config;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";

/// Runs the workload and prints its tables.
pub fn run(cfg: &Config) {
    let (server_cpu, client_cpu) = cfg.cpu_pair;
    let secs = if cfg.quick { 2 } else { 10 };
    let reps = cfg.reps(5, 2);
    println!(
        "\n## net (issue 15): servers on cpu {server_cpu}, clients on cpu {client_cpu}, {reps} reps, {secs} s each"
    );
    if let Err(e) = build_examples() {
        println!("net: cannot build the examples: {e}");
        return;
    }
    let have_wrk = tool("wrk");
    let have_nginx = std::path::Path::new("/usr/sbin/nginx").exists();
    let examples = examples_dir();
    let ours = Proc::start(&server_cpu, examples.join("http_hello").to_str().unwrap(), &["127.0.0.1:0"]);
    let mio = MioHttp::start(server_cpu);
    let nginx = if have_nginx { Nginx::start(server_cpu).map_err(|e| println!("net: nginx: {e}")).ok() } else { None };
    let mut http: Vec<(&str, Vec<f64>)> = vec![("linux-event", vec![]), ("nginx 1.22", vec![]), ("mio", vec![])];
    if have_wrk {
        for rep in 0..reps {
            let mut order = vec![0, 1, 2];
            if rep % 2 == 1 {
                order.reverse();
            }
            for i in order {
                let addr = match i {
                    0 => ours.as_ref().map(|p| p.addr.clone()),
                    1 => nginx.as_ref().map(|n| n.addr.clone()),
                    _ => Some(mio.addr.clone()),
                };
                if let Some(rate) = addr.and_then(|a| wrk(client_cpu, &a, secs)) {
                    http[i].1.push(rate);
                }
            }
        }
    } else {
        println!("net: wrk not found: the http rows are left out");
    }
    println!("\n| http, wrk -t1 -c100 -d{secs}s | requests/s (median) | min-max | ours / it |");
    println!("| --- | ---: | ---: | ---: |");
    let our_rate = Stats::of(&http[0].1).map(|s| s.median);
    for (name, rates) in &http {
        if let Some(s) = Stats::of(rates) {
            let ratio = our_rate.map_or(String::new(), |o| format!("{:.2}", o / s.median));
            println!("| {name} | {:.0} | {:.0}-{:.0} | {ratio} |", s.median, s.min, s.max);
        }
    }

    // Echo: ours against mio.
    let echo = Proc::start(&server_cpu, examples.join("echo").to_str().unwrap(), &["127.0.0.1:0"]);
    let mio_echo = MioEcho::start(server_cpu);
    let mut pings = [vec![], vec![]];
    let mut streams = [vec![], vec![]];
    for rep in 0..reps {
        for k in if rep % 2 == 0 { [0, 1] } else { [1, 0] } {
            let addr = if k == 0 { echo.as_ref().map(|p| p.addr.clone()) } else { Some(mio_echo.addr.clone()) };
            let Some(addr) = addr else { continue };
            pings[k].push(ping_pong(client_cpu, &addr, Duration::from_secs(secs.min(3))));
            streams[k].push(streaming(client_cpu, &addr, Duration::from_secs(secs.min(3))));
        }
    }
    println!("\n| echo | linux-event | mio | ours / mio |");
    println!("| --- | ---: | ---: | ---: |");
    if let (Some(a), Some(b)) = (Stats::of(&pings[0]), Stats::of(&pings[1])) {
        println!("| ping-pong 64 B, round trips/s | {:.0} | {:.0} | {:.2} |", a.median, b.median, a.median / b.median);
        println!(
            "| ping-pong latency, us | {:.1} | {:.1} | {:.2} |",
            1e6 / a.median,
            1e6 / b.median,
            b.median / a.median
        );
    }
    if let (Some(a), Some(b)) = (Stats::of(&streams[0]), Stats::of(&streams[1])) {
        println!("| streaming 64 KiB writes, MB/s | {:.0} | {:.0} | {:.2} |", a.median, b.median, a.median / b.median);
    }

    // Memory per idle connection.
    let conns = if cfg.quick { 2_000 } else { 10_000 };
    println!("\n| memory per idle keep-alive connection ({conns} connections, RSS growth) | bytes |");
    println!("| --- | ---: |");
    if let Some(p) = &ours {
        match idle_cost(p.child.id(), &p.addr, conns) {
            Ok(b) => println!("| linux-event http_hello | {b:.0} |"),
            Err(e) => println!("| linux-event http_hello | failed: {e} |"),
        }
    }
    if let Some(n) = &nginx {
        match idle_cost(n.child.id(), &n.addr, conns) {
            Ok(b) => println!("| nginx 1.22, one process | {b:.0} |"),
            Err(e) => println!("| nginx | failed: {e} |"),
        }
    }
}

fn tool(name: &str) -> bool {
    Command::new(name).arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

fn examples_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().join("examples")
}

/// `cargo build --release --example http_hello --example echo` (the
/// benchmark runs under `cargo run --release`, which sets `CARGO`).
fn build_examples() -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .args(["build", "-q", "--release", "-p", "linux-event", "--example", "http_hello", "--example", "echo"])
        .status()
        .map_err(|e| e.to_string())?;
    if st.success() { Ok(()) } else { Err(st.to_string()) }
}

/// A server process pinned with taskset, and the address it printed.
struct Proc {
    child: Child,
    addr: String,
}

impl Proc {
    fn start(cpu: &i32, path: &str, args: &[&str]) -> Option<Proc> {
        let mut child = Command::new("taskset")
            .arg("-c")
            .arg(cpu.to_string())
            .arg(path)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| println!("net: {path}: {e}"))
            .ok()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take()?).read_line(&mut line).ok()?;
        let addr = line.trim().strip_prefix("listening on ")?.to_string();
        Some(Proc { child, addr })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Nginx {
    child: Child,
    addr: String,
    dir: std::path::PathBuf,
}

impl Nginx {
    fn start(cpu: i32) -> Result<Nginx, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?.local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("linux-event-bench-nginx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let conf = format!(
            "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;
             events {{ worker_connections 16384; }}
             http {{ access_log off; keepalive_requests 100000000; keepalive_timeout 600s;
               client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};
               server {{ listen 127.0.0.1:{port} backlog=4096; default_type text/plain;
                 location / {{ return 200 \"Hello, world!\"; }} }} }}\n",
            d = dir.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).map_err(|e| e.to_string())?;
        let child = Command::new("taskset")
            .args(["-c", &cpu.to_string(), "/usr/sbin/nginx", "-p"])
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let addr = format!("127.0.0.1:{port}");
        for _ in 0..500 {
            if TcpStream::connect(&addr).is_ok() {
                return Ok(Nginx { child, addr, dir });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err("did not start listening".into())
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `taskset -c CPU wrk -t1 -c100 -dSECSs`; requests per second.
fn wrk(cpu: i32, addr: &str, secs: u64) -> Option<f64> {
    let out = Command::new("taskset")
        .args(["-c", &cpu.to_string(), "wrk", "-t1", "-c100", &format!("-d{secs}s"), &format!("http://{addr}/")])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        println!("net: wrk against {addr} saw errors:\n{text}");
    }
    text.lines().find_map(|l| l.strip_prefix("Requests/sec:")).and_then(|v| v.trim().parse().ok())
}

/// One connection, 64-byte messages back and forth; round trips per second.
fn ping_pong(cpu: i32, addr: &str, d: Duration) -> f64 {
    let addr = addr.to_string();
    std::thread::spawn(move || {
        pin(cpu);
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_nodelay(true).unwrap();
        let (msg, mut back) = ([7u8; 64], [0u8; 64]);
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < d {
            for _ in 0..100 {
                s.write_all(&msg).unwrap();
                s.read_exact(&mut back).unwrap();
            }
            n += 100;
        }
        n as f64 / start.elapsed().as_secs_f64()
    })
    .join()
    .unwrap()
}

/// One connection, 64 KiB writes one way while a second thread reads the
/// echo; MB/s through.
fn streaming(cpu: i32, addr: &str, d: Duration) -> f64 {
    let s = TcpStream::connect(addr).unwrap();
    let mut r = s.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        pin(cpu);
        let mut buf = vec![0u8; 65536];
        let mut total = 0u64;
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => return total,
                Ok(k) => total += k as u64,
            }
        }
    });
    let mut w = s;
    let start = Instant::now();
    std::thread::spawn(move || {
        pin(cpu);
        let chunk = vec![1u8; 65536];
        while start.elapsed() < d {
            if w.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = w.shutdown(Shutdown::Write);
    })
    .join()
    .unwrap();
    let total = reader.join().unwrap();
    total as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn rss(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    Some(statm.split_whitespace().nth(1)?.parse::<u64>().ok()? * 4096)
}

/// Opens `n` keep-alive connections, makes one request on each, and
/// returns the server's RSS growth per connection.
fn idle_cost(pid: u32, addr: &str, n: usize) -> Result<f64, String> {
    let before = rss(pid).ok_or("no /proc")?;
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").map_err(|e| e.to_string())?;
        conns.push(s);
    }
    for s in &mut conns {
        let mut head = [0u8; 512];
        let mut got = 0;
        while got < HELLO.len().min(60) {
            got += s.read(&mut head[got..]).map_err(|e| e.to_string())?;
        }
    }
    let after = rss(pid).ok_or("no /proc")?;
    drop(conns);
    Ok(after.saturating_sub(before) as f64 / n as f64)
}

/// The http_hello server on mio: one thread, the same answers.
struct MioHttp {
    addr: String,
}

impl MioHttp {
    fn start(cpu: i32) -> MioHttp {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || mio_server(cpu, tx, http_answer));
        MioHttp { addr: rx.recv().unwrap() }
    }
}

struct MioEcho {
    addr: String,
}

impl MioEcho {
    fn start(cpu: i32) -> MioEcho {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            mio_server(cpu, tx, |input, out| {
                out.extend_from_slice(input);
                input.len()
            })
        });
        MioEcho { addr: rx.recv().unwrap() }
    }
}

/// Answers every complete request head in `input`; bytes used.
fn http_answer(input: &[u8], out: &mut Vec<u8>) -> usize {
    let mut used = 0;
    while let Some(end) = input[used..].windows(4).position(|w| w == b"\r\n\r\n") {
        out.extend_from_slice(HELLO);
        used += end + 4;
    }
    used
}

/// A single-threaded mio server (edge-triggered, as mio is): reads until
/// WouldBlock, answers through `answer`, writes until WouldBlock.
fn mio_server(cpu: i32, tx: std::sync::mpsc::Sender<String>, answer: fn(&[u8], &mut Vec<u8>) -> usize) {
    use mio::net::TcpListener;
    use mio::{Events, Interest, Poll, Token};
    pin(cpu);
    let mut poll = Poll::new().unwrap();
    let mut listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    poll.registry().register(&mut listener, Token(usize::MAX), Interest::READABLE).unwrap();
    tx.send(listener.local_addr().unwrap().to_string()).unwrap();
    struct Conn {
        s: mio::net::TcpStream,
        input: Vec<u8>,
        out: Vec<u8>,
    }
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 65536];
    loop {
        poll.poll(&mut events, None).unwrap();
        for ev in events.iter() {
            if ev.token() == Token(usize::MAX) {
                while let Ok((mut s, _)) = listener.accept() {
                    let _ = s.set_nodelay(true);
                    let i = free.pop().unwrap_or_else(|| {
                        conns.push(None);
                        conns.len() - 1
                    });
                    poll.registry().register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE).unwrap();
                    conns[i] = Some(Conn { s, input: Vec::new(), out: Vec::new() });
                }
                continue;
            }
            let i = ev.token().0;
            let Some(c) = conns[i].as_mut() else { continue };
            let mut dead = false;
            loop {
                match c.s.read(&mut buf) {
                    Ok(0) => {
                        dead = true;
                        break;
                    }
                    Ok(k) => c.input.extend_from_slice(&buf[..k]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        dead = true;
                        break;
                    }
                }
            }
            let used = answer(&c.input, &mut c.out);
            c.input.drain(..used);
            while !c.out.is_empty() {
                match c.s.write(&c.out) {
                    Ok(k) => {
                        c.out.drain(..k);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        dead = true;
                        break;
                    }
                }
            }
            if dead {
                if let Some(mut c) = conns[i].take() {
                    let _ = poll.registry().deregister(&mut c.s);
                }
                free.push(i);
            }
        }
    }
}
