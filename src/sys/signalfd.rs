//! signalfd(2): create or re-mask a signal fd, and read its records.
//!
//! `signalfd_siginfo` is not in linux-raw-sys: it is defined here once, with
//! its size pinned to the kernel's 128 bytes. Reading never blocks.

use super::call::check;
use super::errno::Errno;
use super::fd::{self, OwnedFd, RawFd};
use super::signal::SigSet;
use core::mem::size_of;
use core::ptr;
use linux_raw_sys::general as k;

/// `SFD_NONBLOCK` (= `O_NONBLOCK`), missing from linux-raw-sys.
pub(crate) const SFD_NONBLOCK: u32 = k::O_NONBLOCK;
/// `SFD_CLOEXEC` (= `O_CLOEXEC`), missing from linux-raw-sys.
pub(crate) const SFD_CLOEXEC: u32 = k::O_CLOEXEC;

/// One record read from a signalfd (`struct signalfd_siginfo`).
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct SignalfdSiginfo {
    /// Signal number.
    pub ssi_signo: u32,
    /// Error number (unused by the kernel).
    pub ssi_errno: i32,
    /// Signal code (`SI_USER`, `SI_QUEUE`, `CLD_EXITED`, ...).
    pub ssi_code: i32,
    /// Sender's pid (for SIGCHLD: the child's).
    pub ssi_pid: u32,
    /// Sender's real uid.
    pub ssi_uid: u32,
    /// File descriptor (SIGIO).
    pub ssi_fd: i32,
    /// Kernel timer id (POSIX timers).
    pub ssi_tid: u32,
    /// Band event (SIGIO).
    pub ssi_band: u32,
    /// Overrun count (POSIX timers).
    pub ssi_overrun: u32,
    /// Trap number.
    pub ssi_trapno: u32,
    /// Exit status or signal (SIGCHLD).
    pub ssi_status: i32,
    /// Integer sent by `sigqueue`.
    pub ssi_int: i32,
    /// Pointer sent by `sigqueue`.
    pub ssi_ptr: u64,
    /// User CPU time consumed (SIGCHLD).
    pub ssi_utime: u64,
    /// System CPU time consumed (SIGCHLD).
    pub ssi_stime: u64,
    /// Faulting address (hardware signals).
    pub ssi_addr: u64,
    /// Least significant bit of the address.
    pub ssi_addr_lsb: u16,
    _pad2: u16,
    /// System call number (SIGSYS).
    pub ssi_syscall: i32,
    /// Address of the system call instruction (SIGSYS).
    pub ssi_call_addr: u64,
    /// Architecture of the system call (SIGSYS).
    pub ssi_arch: u32,
    _pad: [u8; 28],
}

const _: () = assert!(size_of::<SignalfdSiginfo>() == 128);

impl SignalfdSiginfo {
    /// A record with every field zero (what `Default` gives, usable in
    /// `const` contexts).
    pub const fn zeroed() -> Self {
        SignalfdSiginfo {
            ssi_signo: 0,
            ssi_errno: 0,
            ssi_code: 0,
            ssi_pid: 0,
            ssi_uid: 0,
            ssi_fd: 0,
            ssi_tid: 0,
            ssi_band: 0,
            ssi_overrun: 0,
            ssi_trapno: 0,
            ssi_status: 0,
            ssi_int: 0,
            ssi_ptr: 0,
            ssi_utime: 0,
            ssi_stime: 0,
            ssi_addr: 0,
            ssi_addr_lsb: 0,
            _pad2: 0,
            ssi_syscall: 0,
            ssi_call_addr: 0,
            ssi_arch: 0,
            _pad: [0; 28],
        }
    }
}

/// A new signalfd for `mask` (non-blocking, close-on-exec), or with
/// `Some(fd)` a new mask for an existing one.
pub(crate) fn signalfd(existing: Option<RawFd>, mask: SigSet) -> Result<Option<OwnedFd>, Errno> {
    let fd = existing.unwrap_or(-1);
    // SAFETY: `mask` is a valid 8-byte sigset for the call; its size is passed.
    let ret = check(unsafe {
        sc::syscall4(
            k::__NR_signalfd4 as usize,
            fd as isize as usize,
            ptr::addr_of!(mask) as usize,
            8,
            (SFD_NONBLOCK | SFD_CLOEXEC) as usize,
        )
    })?;
    Ok(if existing.is_some() { None } else { Some(OwnedFd::from_new(ret as RawFd)) })
}

/// Reads as many whole records as fit in `out`; 0 when none is pending.
pub(crate) fn read(fd: RawFd, out: &mut [SignalfdSiginfo]) -> Result<usize, Errno> {
    // Viewing the records as bytes is sound: plain integers, no padding
    // invariants; the kernel writes whole 128-byte records only.
    let bytes = as_bytes(out);
    match fd::read(fd, bytes) {
        Ok(n) => Ok(n / size_of::<SignalfdSiginfo>()),
        Err(Errno::EAGAIN) => Ok(0),
        Err(e) => Err(e),
    }
}

fn as_bytes(out: &mut [SignalfdSiginfo]) -> &mut [u8] {
    let len = core::mem::size_of_val(out);
    // SAFETY: `out` is valid for `len` bytes of writes, u8 has no alignment
    // requirement, and every bit pattern is a valid SignalfdSiginfo.
    unsafe { core::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<u8>(), len) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::signal::{MaskHow, getpid, gettid, sigprocmask, tgkill};

    #[test]
    fn layout_matches_the_kernel() {
        assert_eq!(size_of::<SignalfdSiginfo>(), 128);
        assert_eq!(core::mem::offset_of!(SignalfdSiginfo, ssi_pid), 12);
        assert_eq!(core::mem::offset_of!(SignalfdSiginfo, ssi_status), 40);
        assert_eq!(core::mem::offset_of!(SignalfdSiginfo, ssi_int), 44);
        assert_eq!(core::mem::offset_of!(SignalfdSiginfo, ssi_ptr), 48);
        assert_eq!(core::mem::offset_of!(SignalfdSiginfo, ssi_addr_lsb), 80);
        assert_eq!(core::mem::offset_of!(SignalfdSiginfo, ssi_syscall), 84);
        assert_eq!(core::mem::offset_of!(SignalfdSiginfo, ssi_arch), 96);
        assert_eq!((SFD_NONBLOCK, SFD_CLOEXEC), (0o4000, 0o2000000));
    }

    #[test]
    fn a_blocked_signal_arrives_as_a_record() {
        std::thread::spawn(|| {
            let usr2 = SigSet::empty().with(12);
            sigprocmask(MaskHow::Block, usr2).unwrap();
            let fd = signalfd(None, usr2).unwrap().unwrap();
            let mut recs = [SignalfdSiginfo::default(); 4];
            assert_eq!(read(fd.as_raw_fd(), &mut recs), Ok(0));
            tgkill(getpid(), gettid(), 12).unwrap();
            assert_eq!(read(fd.as_raw_fd(), &mut recs), Ok(1));
            assert_eq!(recs[0].ssi_signo, 12);
            assert_eq!(recs[0].ssi_pid as i32, getpid());
            assert_eq!(signalfd(Some(fd.as_raw_fd()), SigSet::empty()), Ok(None));
        })
        .join()
        .unwrap();
    }
}
