//! The kernel objects of the sources, made with `sys`: the part of the
//! [`Kernel`](super::kernel::Kernel) face that is the same for the epoll,
//! Linux AIO and io_uring backends (and `AnyBackend`). Each of them pastes
//! it into its `impl Kernel` with [`sys_objects!`].

use super::kernel::{ChildTarget, Ring};
use crate::error::Error;
use crate::sys::{self, Errno, ExitStatus, OwnedFd, SigSet, SignalfdSiginfo, WaitTarget, dir, eventfd, signalfd};

pub(crate) fn doorbell_open() -> Result<(OwnedFd, Ring), Errno> {
    let fd = eventfd::create()?;
    let ring = Ring::Eventfd(fd.as_raw_fd());
    Ok((fd, ring))
}

pub(crate) fn doorbell_reset(fd: &OwnedFd) {
    // A failed read leaves the doorbell rung: one more empty pass, no loss.
    let _ = eventfd::take(fd.as_raw_fd());
}

pub(crate) fn signalfd_open(mask: SigSet) -> Result<OwnedFd, Errno> {
    signalfd::signalfd(None, mask)?.ok_or(Errno::EBADF)
}

pub(crate) fn signalfd_mask(fd: &OwnedFd, mask: SigSet) -> Result<(), Errno> {
    signalfd::signalfd(Some(fd.as_raw_fd()), mask).map(drop)
}

pub(crate) fn signalfd_read(fd: &OwnedFd, out: &mut [SignalfdSiginfo]) -> Result<usize, Errno> {
    signalfd::read(fd.as_raw_fd(), out)
}

pub(crate) fn mask_hold(set: SigSet) -> Result<(), Error> {
    super::thread_masks::hold(set)
}

pub(crate) fn child_wait(target: ChildTarget<'_, OwnedFd>, reap: bool) -> Result<Option<(i32, ExitStatus)>, Errno> {
    let target = match target {
        ChildTarget::Pidfd(fd) => WaitTarget::Pidfd(fd.as_raw_fd()),
        ChildTarget::Pid(pid) => WaitTarget::Pid(pid),
        ChildTarget::Any => WaitTarget::Any,
    };
    sys::wait_exit(target, reap)
}

pub(crate) fn keep_child_statuses() -> Result<(), Errno> {
    use crate::sys::{Disposition, SIGCHLD, disposition, set_disposition};
    if disposition(SIGCHLD)? == Disposition::Ignore {
        set_disposition(SIGCHLD, Disposition::Default)?;
    }
    Ok(())
}

pub(crate) fn process_exists(pid: i32) -> Result<(), Errno> {
    match sys::kill(pid, 0) {
        Ok(()) | Err(Errno::EPERM) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Children of every thread of this process, from
/// `/proc/self/task/<tid>/children` (Linux 3.5, `CONFIG_PROC_CHILDREN`).
pub(crate) fn list_children(out: &mut [i32]) -> Result<usize, Errno> {
    let tasks = sys::open_readonly(c"/proc/self/task")?;
    let mut dents = [0u8; 1024];
    let mut filled = 0;
    loop {
        let n = dir::getdents(tasks.as_raw_fd(), &mut dents)?;
        if n == 0 {
            return Ok(filled);
        }
        for tid in dir::names(&dents[..n]).filter_map(dir::parse_decimal) {
            filled += children_of_task(tid, &mut out[filled..])?;
            if filled == out.len() {
                return Ok(filled);
            }
        }
    }
}

fn children_of_task(tid: i32, out: &mut [i32]) -> Result<usize, Errno> {
    // "/proc/self/task/" + up to 10 digits + "/children" + NUL.
    let mut path = [0u8; 48];
    let mut len = 0;
    let mut push = |bytes: &[u8]| {
        path[len..len + bytes.len()].copy_from_slice(bytes);
        len += bytes.len();
    };
    push(b"/proc/self/task/");
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    let mut n = tid.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    push(&digits[at..]);
    push(b"/children\0");
    let path = core::ffi::CStr::from_bytes_with_nul(&path[..len]).map_err(|_| Errno::EINVAL)?;
    let file = match sys::open_readonly(path) {
        Ok(f) => f,
        // The thread exited since the listing.
        Err(Errno::ENOENT | Errno::ESRCH) => return Ok(0),
        Err(e) => return Err(e),
    };
    // Space-separated pids; a number cut at the end of one read continues
    // in the next.
    let mut buf = [0u8; 512];
    let (mut filled, mut pending, mut have) = (0, 0i64, false);
    loop {
        let n = sys::read(file.as_raw_fd(), &mut buf)?;
        for &b in &buf[..n] {
            if b.is_ascii_digit() {
                pending = (pending * 10 + i64::from(b - b'0')).min(i64::from(i32::MAX));
                have = true;
            } else if have {
                if filled == out.len() {
                    return Ok(filled);
                }
                out[filled] = pending as i32;
                filled += 1;
                (pending, have) = (0, false);
            }
        }
        if n == 0 {
            if have && filled < out.len() {
                out[filled] = pending as i32;
                filled += 1;
            }
            return Ok(filled);
        }
    }
}

/// The kernel-object half of `impl Kernel` for a backend whose objects are
/// real kernel objects (`type Fd = OwnedFd`).
macro_rules! sys_objects {
    () => {
        fn doorbell_open(&mut self) -> Result<(crate::sys::OwnedFd, crate::backend::Ring), crate::sys::Errno> {
            crate::backend::sys_objects::doorbell_open()
        }

        fn doorbell_reset(&mut self, fd: &crate::sys::OwnedFd) {
            crate::backend::sys_objects::doorbell_reset(fd)
        }

        fn signalfd_open(&mut self, mask: crate::sys::SigSet) -> Result<crate::sys::OwnedFd, crate::sys::Errno> {
            crate::backend::sys_objects::signalfd_open(mask)
        }

        fn signalfd_mask(
            &mut self,
            fd: &crate::sys::OwnedFd,
            mask: crate::sys::SigSet,
        ) -> Result<(), crate::sys::Errno> {
            crate::backend::sys_objects::signalfd_mask(fd, mask)
        }

        fn signalfd_read(
            &mut self,
            fd: &crate::sys::OwnedFd,
            out: &mut [crate::sys::SignalfdSiginfo],
        ) -> Result<usize, crate::sys::Errno> {
            crate::backend::sys_objects::signalfd_read(fd, out)
        }

        fn thread_id(&mut self) -> i32 {
            crate::sys::gettid()
        }

        fn mask_hold(&mut self, set: crate::sys::SigSet) -> Result<(), crate::error::Error> {
            crate::backend::sys_objects::mask_hold(set)
        }

        fn mask_release(&mut self, owner: i32, set: crate::sys::SigSet) {
            crate::backend::thread_masks::release(owner, set)
        }

        fn pidfd_open(&mut self, pid: i32) -> Result<crate::sys::OwnedFd, crate::sys::Errno> {
            crate::sys::pidfd_open(pid)
        }

        fn adopt_pidfd(&mut self, fd: crate::sys::OwnedFd) -> Result<crate::sys::OwnedFd, crate::sys::Errno> {
            Ok(fd)
        }

        fn child_wait(
            &mut self,
            target: crate::backend::ChildTarget<'_, crate::sys::OwnedFd>,
            reap: bool,
        ) -> Result<Option<(i32, crate::sys::ExitStatus)>, crate::sys::Errno> {
            crate::backend::sys_objects::child_wait(target, reap)
        }

        fn keep_child_statuses(&mut self) -> Result<(), crate::sys::Errno> {
            crate::backend::sys_objects::keep_child_statuses()
        }

        fn process_exists(&mut self, pid: i32) -> Result<(), crate::sys::Errno> {
            crate::backend::sys_objects::process_exists(pid)
        }

        fn list_children(&mut self, out: &mut [i32]) -> Result<usize, crate::sys::Errno> {
            crate::backend::sys_objects::list_children(out)
        }
    };
}
pub(crate) use sys_objects;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_a_child_of_another_thread() {
        let child = std::process::Command::new("sleep").arg("1000").spawn().unwrap();
        let mut pids = [0i32; 256];
        let n = list_children(&mut pids).unwrap();
        let pid = child.id() as i32;
        let found = pids[..n].contains(&pid);
        let mut child = child;
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(found, "{pid} not in {:?}", &pids[..n]);
    }

    #[test]
    fn a_full_buffer_stops_the_listing() {
        let mut none: [i32; 0] = [];
        assert_eq!(list_children(&mut none), Ok(0));
    }
}
