//! A client on the Connect companion: `echo_client ADDR [MESSAGE]`
//! connects (5 s timeout), sends the message (default `hello`), shuts its
//! write side, prints what comes back until the server closes, and exits
//! 0. A failed connect prints the errno (`ECONNREFUSED`, `ETIMEDOUT`,
//! `ENETUNREACH`...) and exits 1.
//!
//! `cargo run --example echo -- 127.0.0.1:7777 &` then
//! `cargo run --example echo_client -- 127.0.0.1:7777 'hello there'`.

use core::time::Duration;
use linux_event::Loop;
use linux_event::net::{ConnectEvent, Connector, SocketAddr, StreamEvent, StreamHandlers, StreamId, Streams};

type ClientLoop = Loop<Client, 16, 16>;

struct Client {
    connect: Connector<ClientLoop, 1>,
    streams: Streams<ClientLoop, 1, 4096>,
    message: Vec<u8>,
    reply: Vec<u8>,
    status: i32,
}

impl AsMut<Connector<ClientLoop, 1>> for Client {
    fn as_mut(&mut self) -> &mut Connector<ClientLoop, 1> {
        &mut self.connect
    }
}

impl AsMut<Streams<ClientLoop, 1, 4096>> for Client {
    fn as_mut(&mut self) -> &mut Streams<ClientLoop, 1, 4096> {
        &mut self.streams
    }
}

const REPLY: StreamHandlers<ClientLoop> =
    StreamHandlers::new(on_data).drained(send_more).closed(on_closed).error(on_error);

fn connected(lp: &mut ClientLoop, client: &mut Client, ev: ConnectEvent) {
    match ev.into_result() {
        Ok(fd) => match client.streams.adopt(lp, fd, 0, &REPLY) {
            Ok(id) => send(client, id),
            Err(e) => {
                eprintln!("echo_client: {e}");
                lp.stop();
            }
        },
        Err(errno) => {
            eprintln!("echo_client: connect: {errno}");
            client.status = 1;
            lp.stop();
        }
    }
}

/// Sends what is left of the message; half-closes once all of it is in.
fn send(client: &mut Client, id: StreamId) {
    let n = client.streams.write(id, &client.message).unwrap_or(0);
    client.message.drain(..n);
    if client.message.is_empty() {
        let _ = client.streams.shutdown_write(id);
    }
}

fn send_more(_lp: &mut ClientLoop, client: &mut Client, ev: StreamEvent) {
    send(client, ev.id());
}

fn on_data(_lp: &mut ClientLoop, client: &mut Client, ev: StreamEvent) {
    let got = client.streams.read_buf(ev.id());
    client.reply.extend_from_slice(got);
    let n = got.len();
    client.streams.consume(ev.id(), n);
}

fn on_closed(lp: &mut ClientLoop, client: &mut Client, _ev: StreamEvent) {
    println!("{}", String::from_utf8_lossy(&client.reply));
    lp.stop();
}

fn on_error(lp: &mut ClientLoop, client: &mut Client, ev: StreamEvent) {
    eprintln!("echo_client: {}", ev.errno().map_or("error".to_string(), |e| e.to_string()));
    client.status = 1;
    lp.stop();
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(addr) = args.next() else {
        eprintln!("usage: echo_client ADDR [MESSAGE]");
        std::process::exit(2);
    };
    let addr: SocketAddr = addr.parse().unwrap_or_else(|e| {
        eprintln!("echo_client: {addr}: {e}");
        std::process::exit(2);
    });
    let message = args.next().unwrap_or_else(|| "hello".into()).into_bytes();
    let mut lp: ClientLoop = Loop::new().expect("loop");
    let mut client = Client {
        connect: Connector::new(),
        streams: Streams::new().expect("buffer pool"),
        message,
        reply: Vec::new(),
        status: 0,
    };
    if let Err(e) = client.connect.connect(&mut lp, &addr, Some(Duration::from_secs(5)), 0, connected) {
        eprintln!("echo_client: {e}");
        std::process::exit(1);
    }
    lp.run(&mut client).expect("run");
    std::process::exit(client.status);
}
