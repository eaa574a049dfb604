//! Companion (`net` feature): sockets on the loop, after the seed's
//! canonical composition: [`Listeners`] / [`Connector`] → [`Streams`] →
//! your protocol.
//!
//! - [`Listeners`]: bind + listen with options, accept in batches within a
//!   per-pass budget, accept paused on a timer when out of fds.
//! - [`Connector`]: non-blocking connects with a timeout; addresses only.
//! - [`Streams`]: fixed read and write buffers from a pool the companion
//!   owns, fair reads, high and low watermarks, half-close, close after
//!   flush; callbacks for data, drained, closed and error.
//! - [`SocketAddr`]: IPv4, IPv6 and Unix addresses parsed from text.
//!
//! Each is owned by the program (a field of its context, reached through
//! `AsMut`), registers only ordinary watchers, timers and a prepare
//! callback through the public loop API, and makes its kernel calls
//! through `sys`. No allocation.

mod addr;
mod connect;
mod listen;
mod pool;
mod stream;
mod stream_io;
mod stream_loop;

pub use addr::{AddrError, SocketAddr, UnixAddr};
pub use connect::{ConnectEvent, ConnectFn, ConnectId, Connector};
pub use listen::{AcceptEvent, AcceptFn, ListenId, ListenOptions, ListenStats, Listeners};
pub use stream::{StreamEvent, StreamFn, StreamHandlers, StreamId, StreamOptions, StreamStats, Streams, Writer};
