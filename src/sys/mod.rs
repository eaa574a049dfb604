//! The kernel interface: one file per primitive, every call decoded once.
//!
//! This is where the crate's `unsafe` lives (with `arch/`), each block with
//! the reason it is sound. Above this layer nothing touches a raw syscall.

pub(crate) mod aio;
#[cfg_attr(feature = "syscall-clock", allow(dead_code))] // only the vDSO lookup reads it
pub(crate) mod auxv;
pub(crate) mod call;
pub(crate) mod clock;
pub(crate) mod cstr_array;
pub(crate) mod dir;
pub(crate) mod epoll;
mod errno;
pub(crate) mod eventfd;
mod fd;
pub(crate) mod fd_kind;
#[cfg(feature = "files")]
pub(crate) mod fileops;
#[cfg(any(feature = "files", feature = "virt"))]
pub(crate) mod futex;
pub(crate) mod io_uring;
mod iov;
#[cfg(any(feature = "files", feature = "virt"))]
pub(crate) mod lock;
pub(crate) mod mmap;
mod pidfd;
#[cfg(feature = "files")]
pub(crate) mod ppoll;
mod prctl;
pub(crate) mod process;
#[cfg(feature = "files")]
pub(crate) mod shared_mem;
mod signal;
pub(crate) mod signalfd;
#[cfg(feature = "net")]
mod sockaddr;
#[cfg(feature = "net")]
mod socket;
#[cfg(feature = "files")]
pub(crate) mod statx;
#[cfg(feature = "files")]
pub(crate) mod thread;
pub(crate) mod timerfd;
mod tty;
#[cfg_attr(feature = "syscall-clock", allow(dead_code))] // unused with syscall-clock
pub(crate) mod vdso;
mod wait;

pub use auxv::set_sysinfo_ehdr;
pub use cstr_array::{CStrArray, CStrArrayIter, CStrArrayMut, c_str_in};
pub use errno::Errno;
pub use fd::{OwnedFd, RawFd, check_fd, close, dup, open_readonly, pipe, read, write};
pub use iov::{MAX_IOV, readv, writev};
pub use pidfd::{pidfd_open, pidfd_send_signal};
pub use prctl::{is_child_subreaper, set_child_subreaper, set_parent_death_signal};
pub use process::{ProcessGroup, Spawned, exit_group};
pub use signal::*;
pub use signalfd::SignalfdSiginfo;
#[cfg(feature = "net")]
pub use sockaddr::{SockAddr, UNIX_PATH_MAX};
#[cfg(feature = "net")]
pub use socket::{
    AF_INET, AF_INET6, AF_UNIX, Shutdown, accept, bind, connect, listen, local_addr, peer_addr, recv_buffer, send,
    send_buffer, send_vectored, set_linger_reset, set_nodelay, set_recv_buffer, set_reuse_addr, set_reuse_port,
    set_send_buffer, set_v6_only, shutdown, socket_error, socket_pair, stream_socket,
};
pub use tty::{isatty, tcsetpgrp};
pub use wait::{ExitStatus, WaitTarget, wait_exit};
