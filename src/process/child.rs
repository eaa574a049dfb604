//! The child's side of a spawn, between fork and exec: signals, process
//! group, terminal, death signal, working directory, stdio, fds, mask, then
//! `execve` with a PATH search like execvp's.
//!
//! It runs in a copy of a possibly threaded parent where only this thread
//! survives: raw system calls only (no allocation, no lock), and it never
//! returns: it execs, or reports its errno and exits 127.

use super::Spawn;
use super::report;
use crate::sys::cstr_array::Terminated;
use crate::sys::process::{chdir, cloexec_from, dup_at_least, dup_onto, execve, set_cloexec, setpgid, setsid};
use crate::sys::{self, Disposition, Errno, MaskHow, ProcessGroup, RawFd, SigSet};
use core::ffi::CStr;

/// Longest path tried during a PATH search (PATH_MAX, the NUL included).
const PATH_BUF: usize = 4096;
/// Where the child parks fds (stdio sources, the report pipe) before moving
/// stdio sources into 0..=2, so that no move can overwrite another source.
const PARK_FD_BASE: RawFd = 10;
/// Highest fd the close-on-exec fallback (kernels before 5.11) reaches.
const FALLBACK_FD_LIMIT: RawFd = 1024;

/// Sets the child up as `plan` says and execs; on any failure reports the
/// errno on `report_fd` and exits 127.
pub(super) fn run(plan: &Spawn<'_>, argv: Terminated<'_>, envp: Terminated<'_>, report_fd: RawFd) -> ! {
    // The report pipe must survive the stdio moves below.
    let report_fd = if report_fd < PARK_FD_BASE { dup_at_least(report_fd, PARK_FD_BASE) } else { Ok(report_fd) };
    let Ok(report_fd) = report_fd else { sys::exit_group(127) };
    let errno = match prepare(plan) {
        Ok(()) => exec(plan.program, plan.search_path, argv, envp),
        Err(e) => e,
    };
    report::send(report_fd, errno);
    sys::exit_group(127)
}

fn prepare(plan: &Spawn<'_>) -> Result<(), Errno> {
    // Nothing may interrupt the set-up; the planned mask is set last.
    sys::sigprocmask(MaskHow::Set, SigSet::full())?;
    for signo in 1..=sys::MAX_SIGNAL {
        let to = if plan.ignored.contains(signo) { Disposition::Ignore } else { Disposition::Default };
        match sys::set_disposition(signo, to) {
            // SIGKILL and SIGSTOP cannot be changed; neither can the ones an
            // emulator keeps for itself.
            Ok(_) | Err(Errno::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }
    match plan.group {
        ProcessGroup::Inherit => {}
        ProcessGroup::New => setpgid(0, 0)?,
        ProcessGroup::Join(pgid) => setpgid(0, pgid)?,
        ProcessGroup::NewSession => setsid()?,
    }
    if let Some(tty) = plan.foreground_tty {
        // SIGTTOU is blocked here, so a background group may take the
        // terminal. No terminal after all (ENOTTY) or no controlling one
        // (ENXIO) is not worth failing the start for.
        match sys::tcsetpgrp(tty, sys::getpid()) {
            Ok(()) | Err(Errno::ENOTTY | Errno::ENXIO) => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(sig) = plan.parent_death_signal {
        sys::set_parent_death_signal(sig)?;
    }
    if let Some(dir) = plan.cwd {
        chdir(dir)?;
    }
    redirect_stdio(&plan.stdio)?;
    if plan.close_other_fds {
        mark_cloexec_from(3)?;
    }
    sys::sigprocmask(MaskHow::Set, plan.mask)?;
    Ok(())
}

/// Moves the planned fds into 0, 1, 2. Sources are parked above 9 first so
/// that a swap (stdin <- 1, stdout <- 0) cannot clobber one with the other.
fn redirect_stdio(stdio: &[Option<RawFd>; 3]) -> Result<(), Errno> {
    let mut parked = [None; 3];
    for (slot, src) in parked.iter_mut().zip(stdio) {
        if let Some(src) = *src {
            *slot = Some(dup_at_least(src, PARK_FD_BASE)?);
        }
    }
    for (target, fd) in parked.iter().enumerate() {
        if let Some(fd) = *fd {
            dup_onto(fd, target as RawFd)?;
        }
    }
    Ok(())
}

/// Marks every fd from `first` up close-on-exec (the report pipe must stay
/// open until the exec itself, so they are not closed here).
fn mark_cloexec_from(first: RawFd) -> Result<(), Errno> {
    match cloexec_from(first) {
        Ok(()) => Ok(()),
        // Before Linux 5.11, or an emulator without close_range: one by one.
        Err(Errno::ENOSYS | Errno::EINVAL) => {
            for fd in first..FALLBACK_FD_LIMIT {
                // EBADF (no such fd) is expected for most numbers.
                let _ = set_cloexec(fd);
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Execs `program`, searching `search_path` for a name without a slash the
/// way execvp does: empty entries mean the current directory, entries that
/// cannot hold the program are passed over, and EACCES anywhere wins over
/// ENOENT.
fn exec(program: &CStr, search_path: &[u8], argv: Terminated<'_>, envp: Terminated<'_>) -> Errno {
    let name = program.to_bytes();
    if name.is_empty() {
        return Errno::ENOENT;
    }
    // A scan, not `contains`: that is core's memchr, about 400 bytes of a
    // static program (the init) that has no other use for it.
    #[allow(clippy::manual_contains)]
    if name.iter().any(|&b| b == b'/') {
        return execve(program, argv, envp);
    }
    let mut buf = [0u8; PATH_BUF];
    let mut saw_eacces = false;
    for dir in search_path.split(|&b| b == b':') {
        let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
        let len = dir.len() + 1 + name.len();
        if len + 1 > PATH_BUF {
            continue;
        }
        // (Checked accesses, though `len` fits: a static program then links
        // no panic path for them.)
        let mut at = 0;
        for piece in [dir, b"/", name, b"\0"] {
            if let Some(room) = buf.get_mut(at..at + piece.len()) {
                room.copy_from_slice(piece);
                at += piece.len();
            }
        }
        // A PATH entry with a NUL in it names no directory.
        // (An interior NUL would end the string early: the whole must be it.)
        let Some(path) = sys::c_str_in(buf.get(..at).unwrap_or(&[])).filter(|p| p.to_bytes().len() + 1 == at) else {
            continue;
        };
        match execve(path, argv, envp) {
            Errno::EACCES => saw_eacces = true,
            Errno::ENOENT | Errno::ENOTDIR | Errno::ENODEV | Errno::ETIMEDOUT | Errno::ESTALE => {}
            other => return other,
        }
    }
    if saw_eacces { Errno::EACCES } else { Errno::ENOENT }
}
