//! Sockets: socket, bind, listen, accept4, connect, shutdown, the socket
//! options the `net` companions use, getsockname/getpeername, and send
//! with `MSG_NOSIGNAL` (one buffer, or several through `sendmsg`).
//!
//! Every socket made here is non-blocking and close-on-exec. No policy:
//! retries beyond `EINTR` and what an errno means are the caller's.

use super::call::{check, retry};
use super::errno::Errno;
use super::fd::{OwnedFd, RawFd};
use super::iov::{IoSlices, MAX_IOV};
use super::sockaddr::SockAddr;
use linux_raw_sys::general as g;
use linux_raw_sys::net as k;

/// Address families, as `socket` takes them.
pub use linux_raw_sys::net::{AF_INET, AF_INET6, AF_UNIX};

/// Which direction `shutdown` ends.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// No more receiving.
    Read,
    /// No more sending: the peer reads end of file after what was sent.
    Write,
    /// Both.
    Both,
}

/// A non-blocking, close-on-exec stream socket of `family` (`AF_INET`,
/// `AF_INET6`, `AF_UNIX`).
pub fn stream_socket(family: u32) -> Result<OwnedFd, Errno> {
    let ty = k::SOCK_STREAM | g::O_NONBLOCK | g::O_CLOEXEC;
    // SAFETY: socket takes no pointers.
    let fd = check(unsafe { sc::syscall3(g::__NR_socket as usize, family as usize, ty as usize, 0) })?;
    Ok(OwnedFd::from_new(fd as RawFd))
}

/// A connected pair of non-blocking, close-on-exec Unix stream sockets.
pub fn socket_pair() -> Result<(OwnedFd, OwnedFd), Errno> {
    let mut fds = [0i32; 2];
    let ty = k::SOCK_STREAM | g::O_NONBLOCK | g::O_CLOEXEC;
    // SAFETY: `fds` is a writable array of two i32, as socketpair expects.
    check(unsafe {
        sc::syscall4(g::__NR_socketpair as usize, k::AF_UNIX as usize, ty as usize, 0, fds.as_mut_ptr() as usize)
    })?;
    Ok((OwnedFd::from_new(fds[0]), OwnedFd::from_new(fds[1])))
}

/// Binds `fd` to `addr`.
pub fn bind(fd: RawFd, addr: &SockAddr) -> Result<(), Errno> {
    // SAFETY: the pointer and length describe `addr`'s bytes, read only.
    check(unsafe { sc::syscall3(g::__NR_bind as usize, fd as usize, addr.as_ptr(), addr.len() as usize) }).map(drop)
}

/// Makes `fd` a listening socket with a queue of `backlog` connections
/// (the kernel caps it at `net.core.somaxconn`).
pub fn listen(fd: RawFd, backlog: u32) -> Result<(), Errno> {
    // SAFETY: listen takes no pointers.
    check(unsafe { sc::syscall2(g::__NR_listen as usize, fd as usize, backlog as usize) }).map(drop)
}

/// Takes one connection off `fd`'s queue: a non-blocking, close-on-exec
/// socket and the peer's address. `EAGAIN` when the queue is empty.
pub fn accept(fd: RawFd) -> Result<(OwnedFd, SockAddr), Errno> {
    let mut peer = SockAddr::empty();
    let flags = g::O_NONBLOCK | g::O_CLOEXEC;
    let got = retry(|| {
        let (buf, len) = peer.out();
        // SAFETY: `buf` has room for the length in `*len`, and `len` is a
        // valid u32 the kernel updates; neither is kept after the call.
        check(unsafe {
            sc::syscall4(g::__NR_accept4 as usize, fd as usize, buf, len as *mut u32 as usize, flags as usize)
        })
    })?;
    let sock = OwnedFd::from_new(got as RawFd);
    if peer.overflowed() {
        // Not one of the families here (a longer address would be cut off).
        return Err(Errno::EAFNOSUPPORT);
    }
    Ok((sock, peer))
}

/// Starts connecting `fd` to `addr`: `EINPROGRESS` means "wait for
/// writable, then read [`socket_error`]". Not retried on `EINTR` (the
/// connection goes on in the background; a second call would say
/// `EALREADY`).
pub fn connect(fd: RawFd, addr: &SockAddr) -> Result<(), Errno> {
    // SAFETY: the pointer and length describe `addr`'s bytes, read only.
    check(unsafe { sc::syscall3(g::__NR_connect as usize, fd as usize, addr.as_ptr(), addr.len() as usize) }).map(drop)
}

/// Ends one or both directions of a connection.
pub fn shutdown(fd: RawFd, how: Shutdown) -> Result<(), Errno> {
    let how = match how {
        Shutdown::Read => k::SHUT_RD,
        Shutdown::Write => k::SHUT_WR,
        Shutdown::Both => k::SHUT_RDWR,
    };
    // SAFETY: shutdown takes no pointers.
    check(unsafe { sc::syscall2(g::__NR_shutdown as usize, fd as usize, how as usize) }).map(drop)
}

/// The address `fd` is bound to (with the port the kernel picked for 0).
pub fn local_addr(fd: RawFd) -> Result<SockAddr, Errno> {
    name_of(fd, g::__NR_getsockname)
}

/// The address of `fd`'s peer; `ENOTCONN` before it is connected.
pub fn peer_addr(fd: RawFd) -> Result<SockAddr, Errno> {
    name_of(fd, g::__NR_getpeername)
}

fn name_of(fd: RawFd, nr: u32) -> Result<SockAddr, Errno> {
    let mut a = SockAddr::empty();
    let (buf, len) = a.out();
    // SAFETY: `buf` has room for `*len` bytes and `len` is a valid u32,
    // both only written by the kernel during the call.
    check(unsafe { sc::syscall3(nr as usize, fd as usize, buf, len as *mut u32 as usize) })?;
    if a.overflowed() {
        return Err(Errno::EAFNOSUPPORT);
    }
    Ok(a)
}

fn set_int(fd: RawFd, level: u32, name: u32, value: i32) -> Result<(), Errno> {
    // SAFETY: the pointer and length describe `value`, read only.
    check(unsafe {
        sc::syscall5(
            g::__NR_setsockopt as usize,
            fd as usize,
            level as usize,
            name as usize,
            &value as *const i32 as usize,
            size_of::<i32>(),
        )
    })
    .map(drop)
}

fn get_int(fd: RawFd, level: u32, name: u32) -> Result<i32, Errno> {
    let mut value = 0i32;
    let mut len = size_of::<i32>() as u32;
    // SAFETY: `value` has room for the `len` bytes the kernel may write,
    // and `len` is a valid u32 it updates.
    check(unsafe {
        sc::syscall5(
            g::__NR_getsockopt as usize,
            fd as usize,
            level as usize,
            name as usize,
            &mut value as *mut i32 as usize,
            &mut len as *mut u32 as usize,
        )
    })?;
    Ok(value)
}

/// `SO_ERROR`: the error a non-blocking connect ended with (and clears
/// it); `None` when there is none.
pub fn socket_error(fd: RawFd) -> Result<Option<Errno>, Errno> {
    let e = get_int(fd, k::SOL_SOCKET, k::SO_ERROR)?;
    Ok(if e == 0 { None } else { Some(Errno::from_raw(e.unsigned_abs() as u16)) })
}

/// `SO_REUSEADDR`: bind a port whose old connections are still in TIME_WAIT.
pub fn set_reuse_addr(fd: RawFd, on: bool) -> Result<(), Errno> {
    set_int(fd, k::SOL_SOCKET, k::SO_REUSEADDR, i32::from(on))
}

/// `SO_REUSEPORT`: several sockets (one loop per thread, say) bind the
/// same port and the kernel spreads new connections between them.
pub fn set_reuse_port(fd: RawFd, on: bool) -> Result<(), Errno> {
    set_int(fd, k::SOL_SOCKET, k::SO_REUSEPORT, i32::from(on))
}

/// `TCP_NODELAY`: send small writes at once instead of coalescing them
/// (Nagle's algorithm off).
pub fn set_nodelay(fd: RawFd, on: bool) -> Result<(), Errno> {
    set_int(fd, k::IPPROTO_TCP as u32, k::TCP_NODELAY, i32::from(on))
}

/// `IPV6_V6ONLY`: an IPv6 socket that does not also take IPv4 peers.
pub fn set_v6_only(fd: RawFd, on: bool) -> Result<(), Errno> {
    set_int(fd, k::IPPROTO_IPV6 as u32, k::IPV6_V6ONLY, i32::from(on))
}

/// `SO_RCVBUF`: the kernel's receive buffer (it doubles the value asked for).
pub fn set_recv_buffer(fd: RawFd, bytes: u32) -> Result<(), Errno> {
    set_int(fd, k::SOL_SOCKET, k::SO_RCVBUF, bytes.min(i32::MAX as u32) as i32)
}

/// `SO_SNDBUF`: the kernel's send buffer (it doubles the value asked for).
pub fn set_send_buffer(fd: RawFd, bytes: u32) -> Result<(), Errno> {
    set_int(fd, k::SOL_SOCKET, k::SO_SNDBUF, bytes.min(i32::MAX as u32) as i32)
}

/// The receive buffer size the kernel uses (`SO_RCVBUF`).
pub fn recv_buffer(fd: RawFd) -> Result<u32, Errno> {
    get_int(fd, k::SOL_SOCKET, k::SO_RCVBUF).map(|v| v.max(0) as u32)
}

/// The send buffer size the kernel uses (`SO_SNDBUF`).
pub fn send_buffer(fd: RawFd) -> Result<u32, Errno> {
    get_int(fd, k::SOL_SOCKET, k::SO_SNDBUF).map(|v| v.max(0) as u32)
}

/// `SO_LINGER` with a zero timeout: closing the socket then sends a reset
/// (RST) instead of an orderly end, discarding unsent data.
pub fn set_linger_reset(fd: RawFd) -> Result<(), Errno> {
    let value = k::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: the pointer and length describe `value`, read only.
    check(unsafe {
        sc::syscall5(
            g::__NR_setsockopt as usize,
            fd as usize,
            k::SOL_SOCKET as usize,
            k::SO_LINGER as usize,
            &value as *const k::linger as usize,
            size_of::<k::linger>(),
        )
    })
    .map(drop)
}

/// Sends from `buf` with `MSG_NOSIGNAL` (a peer that went away is `EPIPE`,
/// never a SIGPIPE). `ENOTSOCK` if `fd` is not a socket.
pub fn send(fd: RawFd, buf: &[u8]) -> Result<usize, Errno> {
    retry(|| {
        // SAFETY: the pointer and length describe `buf`, read only; no
        // destination address (NULL, 0).
        check(unsafe {
            sc::syscall6(
                g::__NR_sendto as usize,
                fd as usize,
                buf.as_ptr() as usize,
                buf.len(),
                k::MSG_NOSIGNAL as usize,
                0,
                0,
            )
        })
    })
}

/// The kernel's `user_msghdr` (linux-raw-sys's `msghdr` points at an
/// opaque iovec type); the size is pinned in the tests.
#[repr(C)]
struct MsgHdr {
    name: usize,
    name_len: i32,
    iov: usize,
    iov_len: usize,
    control: usize,
    control_len: usize,
    flags: u32,
}

/// Sends the buffers in order, as one `sendmsg` with `MSG_NOSIGNAL`
/// (a socket's writev that cannot raise SIGPIPE). At most
/// [`MAX_IOV`] buffers are sent per call; the count says how far it got.
pub fn send_vectored(fd: RawFd, bufs: &[&[u8]]) -> Result<usize, Errno> {
    let iov = IoSlices::new(bufs);
    let msg =
        MsgHdr { name: 0, name_len: 0, iov: iov.as_ptr(), iov_len: iov.count(), control: 0, control_len: 0, flags: 0 };
    const { assert!(MAX_IOV <= 1024) };
    retry(|| {
        // SAFETY: `msg` points at `iov`'s iovecs, which describe the
        // caller's buffers (valid for reads for the call); no name, no
        // control data.
        check(unsafe {
            sc::syscall3(
                g::__NR_sendmsg as usize,
                fd as usize,
                &msg as *const MsgHdr as usize,
                k::MSG_NOSIGNAL as usize,
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{read, write};

    fn loopback_pair() -> (OwnedFd, OwnedFd, OwnedFd) {
        let l = stream_socket(AF_INET).unwrap();
        set_reuse_addr(l.as_raw_fd(), true).unwrap();
        bind(l.as_raw_fd(), &SockAddr::v4("127.0.0.1:0".parse().unwrap())).unwrap();
        listen(l.as_raw_fd(), 8).unwrap();
        let at = local_addr(l.as_raw_fd()).unwrap();
        assert_ne!(at.as_v4().unwrap().port(), 0);
        let c = stream_socket(AF_INET).unwrap();
        match connect(c.as_raw_fd(), &at) {
            Ok(()) | Err(Errno::EINPROGRESS) => {}
            Err(e) => panic!("connect: {e}"),
        }
        // Loopback completes the handshake in the kernel; accept may still
        // need a moment on a busy machine.
        let s = loop {
            match accept(l.as_raw_fd()) {
                Ok((s, peer)) => {
                    assert_eq!(peer.as_v4().unwrap().ip().octets(), [127, 0, 0, 1]);
                    break s;
                }
                Err(Errno::EAGAIN) => core::hint::spin_loop(),
                Err(e) => panic!("accept: {e}"),
            }
        };
        (l, c, s)
    }

    #[test]
    fn msghdr_matches_the_kernel() {
        assert_eq!(size_of::<MsgHdr>(), size_of::<k::msghdr>());
        assert_eq!(core::mem::offset_of!(MsgHdr, iov_len), core::mem::offset_of!(k::msghdr, msg_iovlen));
        assert_eq!(core::mem::offset_of!(MsgHdr, flags), core::mem::offset_of!(k::msghdr, msg_flags));
    }

    #[test]
    fn accept_connect_send_and_shutdown() {
        let (_l, c, s) = loopback_pair();
        assert_eq!(socket_error(c.as_raw_fd()), Ok(None));
        assert_eq!(peer_addr(c.as_raw_fd()).unwrap().as_v4(), local_addr(s.as_raw_fd()).unwrap().as_v4());
        assert_eq!(send(c.as_raw_fd(), b"ab"), Ok(2));
        assert_eq!(send_vectored(c.as_raw_fd(), &[b"cd", b"", b"ef"]), Ok(4));
        shutdown(c.as_raw_fd(), Shutdown::Write).unwrap();
        let mut got = [0u8; 16];
        let mut n = 0;
        loop {
            match read(s.as_raw_fd(), &mut got[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(Errno::EAGAIN) => core::hint::spin_loop(),
                Err(e) => panic!("read: {e}"),
            }
        }
        assert_eq!(&got[..n], b"abcdef");
        // The other direction still works after a half-close.
        assert_eq!(write(s.as_raw_fd(), b"x"), Ok(1));
    }

    #[test]
    fn options_are_set_and_read_back() {
        let (_l, c, _s) = loopback_pair();
        set_nodelay(c.as_raw_fd(), true).unwrap();
        set_reuse_port(c.as_raw_fd(), true).unwrap();
        set_send_buffer(c.as_raw_fd(), 8192).unwrap();
        assert!(send_buffer(c.as_raw_fd()).unwrap() >= 8192);
        set_recv_buffer(c.as_raw_fd(), 8192).unwrap();
        assert!(recv_buffer(c.as_raw_fd()).unwrap() >= 8192);
        set_linger_reset(c.as_raw_fd()).unwrap();
        let v6 = stream_socket(AF_INET6).unwrap();
        set_v6_only(v6.as_raw_fd(), true).unwrap();
    }

    #[test]
    fn errors_are_named() {
        assert_eq!(stream_socket(12345).err(), Some(Errno::EAFNOSUPPORT));
        assert_eq!(listen(-1, 1), Err(Errno::EBADF));
        let (r, _w) = crate::sys::pipe().unwrap();
        assert_eq!(send(r.as_raw_fd(), b"x"), Err(Errno::ENOTSOCK));
        assert_eq!(accept(r.as_raw_fd()).err(), Some(Errno::ENOTSOCK));
        let l = stream_socket(AF_INET).unwrap();
        assert_eq!(accept(l.as_raw_fd()).err(), Some(Errno::EINVAL)); // not listening
        assert_eq!(peer_addr(l.as_raw_fd()).err(), Some(Errno::ENOTCONN));
    }

    #[test]
    fn connect_to_a_closed_port_is_refused() {
        let l = stream_socket(AF_INET).unwrap();
        bind(l.as_raw_fd(), &SockAddr::v4("127.0.0.1:0".parse().unwrap())).unwrap();
        let at = local_addr(l.as_raw_fd()).unwrap();
        drop(l); // bound, never listening, now closed: nobody takes the port
        let c = stream_socket(AF_INET).unwrap();
        match connect(c.as_raw_fd(), &at) {
            Err(Errno::ECONNREFUSED) => {}
            Err(Errno::EINPROGRESS) => loop {
                if let Some(e) = socket_error(c.as_raw_fd()).unwrap() {
                    assert_eq!(e, Errno::ECONNREFUSED);
                    break;
                }
                core::hint::spin_loop();
            },
            other => panic!("connect to a closed port: {other:?}"),
        }
    }

    #[test]
    fn unix_abstract_socket_round_trip() {
        let name = b"linux-event-sys-socket-test";
        let addr = SockAddr::unix(name, true).unwrap();
        let l = stream_socket(AF_UNIX).unwrap();
        bind(l.as_raw_fd(), &addr).unwrap();
        listen(l.as_raw_fd(), 4).unwrap();
        assert_eq!(local_addr(l.as_raw_fd()).unwrap().as_unix(), Some((&name[..], true)));
        let c = stream_socket(AF_UNIX).unwrap();
        connect(c.as_raw_fd(), &addr).unwrap();
        let (s, peer) = accept(l.as_raw_fd()).unwrap();
        assert_eq!(peer.as_unix(), Some((&b""[..], false)));
        assert_eq!(send(s.as_raw_fd(), b"hi"), Ok(2));
    }
}
