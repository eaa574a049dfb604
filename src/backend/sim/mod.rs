//! `Sim`: a deterministic backend for tests and fuzzing. No syscalls, no
//! allocation, a virtual clock and virtual fds whose readiness a script sets.
//!
//! The readiness model is epoll's, reduced to what a script can say: every
//! registration sits on a ready list (in the order it became ready) the way
//! an epitem does in the kernel, and `wait` harvests that list with the same
//! level, edge and oneshot rules as `ep_send_events`.

mod process;

use super::ReadyEvent;
#[cfg(feature = "waker")]
use super::doorbell::Waker;
use super::kernel::{ChildTarget, Kernel, ObjectFd, Ring};
use crate::error::Error;
use crate::interest::{Interest, Ready, Trigger};
use crate::sys::{Errno, ExitStatus, RawFd, SigSet, SignalfdSiginfo};
use crate::time::Instant;
use core::time::Duration;
use heapless::Vec;
use process::{Object, Process};

/// What one registration of a [`Sim`] holds, as [`Sim::registration`]
/// reports it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct SimRegistration {
    /// The key given at registration (handed back in every event).
    pub key: u64,
    /// What the registration asked for.
    pub interest: Interest,
    /// Level, edge or oneshot.
    pub trigger: Trigger,
    /// `false` for a oneshot registration that has reported and waits for
    /// `modify` (or `register`) to re-arm it; `true` otherwise.
    pub armed: bool,
}

#[derive(Copy, Clone, Debug)]
struct Reg {
    key: u64,
    interest: Interest,
    trigger: Trigger,
    armed: bool,
    /// On the ready list (the kernel's `rdllist`): reported by the next wait
    /// if it is still ready then.
    queued: bool,
    /// Position on the ready list: lower is earlier.
    stamp: u64,
}

#[derive(Copy, Clone, Debug)]
struct Entry {
    fd: RawFd,
    /// What the virtual file is ready for, whether or not it is registered.
    ready: Ready,
    reg: Option<Reg>,
}

/// The bits epoll reports for a registration with `interest`: what
/// `epoll_mask` asks for, plus `EPOLLERR` and `EPOLLHUP`, which the kernel
/// always reports.
fn reportable(interest: Interest) -> Ready {
    let mut mask = Ready::ERROR | Ready::HANGUP;
    if interest.contains(Interest::READ) {
        mask |= Ready::READABLE | Ready::READ_HANGUP | Ready::PRIORITY;
    }
    if interest.contains(Interest::WRITE) {
        mask |= Ready::WRITABLE;
    }
    mask
}

/// A deterministic, simulated backend: a virtual monotonic clock and up to
/// `N` virtual fds (registered, or ready without a registration).
///
/// Nothing here touches the kernel: the kernel objects the loop's sources
/// make (the waker's doorbell, the signalfd and the thread's signal mask,
/// pidfds, `waitid`) are simulated too, in one simulated process (see
/// "Signals, children and the waker" below). Time moves only when told
/// ([`advance`](Sim::advance), [`set_now`](Sim::set_now)) or when a
/// `wait` that has nothing to report is given a deadline:
/// then the clock jumps to the deadline and the wait returns, so timers fire
/// at once, in order, without real sleeping. Fd numbers are just numbers:
/// any `fd >= 0` can be registered, and a script says what is ready with
/// [`set_ready`](Sim::set_ready) and [`clear_ready`](Sim::clear_ready).
///
/// # Readiness, as epoll does it
///
/// A registration with interest `READ` reports `READABLE`, `READ_HANGUP` and
/// `PRIORITY`; `WRITE` reports `WRITABLE`; `ERROR` and `HANGUP` are always
/// reported (epoll reports them for every registration). Each
/// [`set_ready`](Sim::set_ready) call that touches a reported bit is one
/// wake-up, like new data arriving on a socket:
///
/// - [`Trigger::Level`]: reported by every wait while ready and interested.
/// - [`Trigger::Edge`]: reported once per wake-up (wake-ups between two
///   waits coalesce into one report), and once after `register`/`modify`
///   when already ready. An fd that stays ready is not reported again.
/// - [`Trigger::Oneshot`]: reported once, then disarmed until `modify` (or
///   `register`) re-arms it; re-arming an fd that is ready reports it again.
///
/// A report carries what is ready at the time of the wait (readiness cleared
/// since the wake-up is not reported, and an fd with nothing left is
/// skipped). Events come out in the order the fds became ready; a
/// level-triggered fd goes to the back after each report, so a batch
/// smaller than the ready set rotates fairly.
///
/// # The `Backend` contract
///
/// `register` of an fd already registered updates it (as the epoll backend
/// does on `EEXIST`), `modify` of an unknown fd registers it (`ENOENT`),
/// `deregister` of an unknown fd is `Ok(())`. A negative fd is `EBADF`; a
/// new fd when all `N` entries are taken is `ENOSPC` (epoll's
/// `max_user_watches`). [`fail_next`](Sim::fail_next) and its siblings make
/// the next call fail with a chosen errno, to exercise error paths.
///
/// # Waiting cannot block
///
/// A wait with nothing ready and no deadline returns `Ok(0)` at once: there
/// is nobody to make anything ready while it waits. [`Loop::run`] on a `Sim`
/// with a watcher, nothing ready and no timer therefore spins; drive the
/// loop with [`Loop::run_once`] and a script instead, or make such waits fail
/// with [`set_stall_error`](Sim::set_stall_error) so `run` returns.
///
/// [`Loop::run`]: crate::Loop::run
/// [`Loop::run_once`]: crate::Loop::run_once
///
/// # Signals, children and the waker
///
/// The simulation is one process: threads (the main one, tid 1, and any
/// a script switches to with [`set_thread`](Sim::set_thread)), each with
/// its own signal mask; pending signals, standard ones coalesced and
/// real-time ones queued with their values ([`raise`](Sim::raise),
/// [`queue`](Sim::queue)); and other processes: children
/// ([`spawn_child`](Sim::spawn_child)) that exit when told
/// ([`exit`](Sim::exit)), stay zombies until reaped and send SIGCHLD, and
/// processes that are not children ([`spawn_stranger`](Sim::spawn_stranger)).
/// A signal that reaches a thread that does not block it takes its default
/// action, which the simulation records ([`killed_by`](Sim::killed_by))
/// instead of dying. Pidfds can be refused ([`refuse_pidfds`](Sim::refuse_pidfds))
/// to drive the loop's SIGCHLD mode. A waker signalled "from another
/// thread while the loop sleeps" is [`wake_in_next_wait`](Sim::wake_in_next_wait).
///
/// # Example
///
/// ```
/// use core::time::Duration;
/// use linux_event::backend::Sim;
/// use linux_event::{Interest, Loop, Ready};
///
/// #[derive(Default)]
/// struct App { reads: u32, ticks: u32 }
///
/// let mut lp: Loop<App, 16, 16, Sim> = Loop::with_backend(Sim::new())?;
/// // Fd 7 is virtual: nothing is opened.
/// lp.watch(7, Interest::READ, 0, |_lp, app, _ev| app.reads += 1)?;
/// lp.after(Duration::from_secs(3600), 0, |_lp, app, _ev| app.ticks += 1)?;
///
/// let mut app = App::default();
/// lp.sim().set_ready(7, Ready::READABLE)?;
/// lp.run_once(&mut app, None)?; // reports fd 7; the clock stays put
/// assert_eq!((app.reads, app.ticks), (1, 0));
///
/// lp.sim().clear_ready(7, Ready::READABLE);
/// lp.run_once(&mut app, None)?; // nothing ready: jumps an hour ahead
/// assert_eq!((app.reads, app.ticks), (1, 1));
/// assert_eq!(lp.now().as_nanos(), 3600 * 1_000_000_000);
/// # Ok::<(), linux_event::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Sim<const N: usize = 64> {
    now: Instant,
    entries: Vec<Entry, N>,
    /// The next ready-list position.
    stamp: u64,
    fail_ctl: Option<Errno>,
    fail_deregister: Option<Errno>,
    fail_wait: Option<Errno>,
    stall_error: Option<Errno>,
    waits: u64,
    process: Process<N>,
    /// The doorbell the loop made, for scripted wake-ups.
    doorbell: Option<RawFd>,
    #[cfg(feature = "waker")]
    wakes: Vec<(Waker, u64), 4>,
}

/// A kernel object of the simulation, as a source holds it: a virtual fd
/// number (never a real fd; nothing is closed when it is dropped).
#[derive(Debug, PartialEq, Eq)]
pub struct SimFd(RawFd);

impl ObjectFd for SimFd {
    fn raw(&self) -> RawFd {
        self.0
    }
}

impl<const N: usize> Default for Sim<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Sim<N> {
    /// A simulation with its clock at [`Instant::ZERO`], no fds and no
    /// faults.
    pub const fn new() -> Self {
        Sim {
            now: Instant::ZERO,
            entries: Vec::new(),
            stamp: 0,
            fail_ctl: None,
            fail_deregister: None,
            fail_wait: None,
            stall_error: None,
            waits: 0,
            process: Process::new(),
            doorbell: None,
            #[cfg(feature = "waker")]
            wakes: Vec::new(),
        }
    }

    /// The virtual clock's reading (what the loop reads as its time).
    pub fn clock(&self) -> Instant {
        self.now
    }

    /// Moves the clock `d` ahead (saturating at [`Instant::MAX`]) and
    /// returns the new time. The loop sees it after its next wait.
    pub fn advance(&mut self, d: Duration) -> Instant {
        self.now = self.now + d;
        self.now
    }

    /// Moves the clock to `t`, and returns the new time. The clock is
    /// monotonic: an instant earlier than the current one leaves it where it
    /// is.
    pub fn set_now(&mut self, t: Instant) -> Instant {
        self.now = self.now.max(t);
        self.now
    }

    /// Makes `fd` ready for `ready` (added to what it already is): one
    /// wake-up. A registration that reports any of these bits goes on the
    /// ready list, unless it is there already or is a disarmed oneshot.
    /// An fd need not be registered to be ready; it keeps its readiness when
    /// it is registered later.
    ///
    /// `Err(Error::Capacity)` when `fd` is new and all `N` entries are taken
    /// (by fds that are registered or ready); nothing changes then.
    pub fn set_ready(&mut self, fd: RawFd, ready: Ready) -> Result<(), Error> {
        if ready.is_empty() {
            return Ok(());
        }
        let at = match self.find(fd) {
            Some(at) => at,
            None => {
                self.entries.push(Entry { fd, ready: Ready::empty(), reg: None }).map_err(|_| Error::Capacity)?;
                self.entries.len() - 1
            }
        };
        let stamp = self.stamp;
        let e = &mut self.entries[at];
        e.ready |= ready;
        if let Some(reg) = &mut e.reg
            && reg.armed
            && !reg.queued
            && reportable(reg.interest).intersects(ready)
        {
            reg.queued = true;
            reg.stamp = stamp;
            self.stamp += 1;
        }
        Ok(())
    }

    /// Makes `fd` no longer ready for `ready` (the rest stays). A
    /// registration left with nothing to report is dropped from the ready
    /// list at the next wait, as epoll drops it. Unknown fds are ignored.
    pub fn clear_ready(&mut self, fd: RawFd, ready: Ready) {
        if let Some(at) = self.find(fd) {
            self.entries[at].ready -= ready;
            self.forget_if_idle(at);
        }
    }

    /// What `fd` is ready for (empty for an unknown fd).
    pub fn ready(&self, fd: RawFd) -> Ready {
        self.find(fd).map_or(Ready::empty(), |at| self.entries[at].ready)
    }

    /// Simulates `close(fd)`: the registration and the readiness go, as the
    /// kernel drops an fd's epoll registration when its file is closed. A
    /// later `modify` of the same number registers afresh and `deregister`
    /// is `Ok(())`, exactly as for a closed and reused fd on epoll.
    pub fn close(&mut self, fd: RawFd) {
        if let Some(at) = self.find(fd) {
            self.entries.swap_remove(at);
        }
    }

    /// The registration of `fd`, if it has one.
    pub fn registration(&self, fd: RawFd) -> Option<SimRegistration> {
        let reg = self.entries[self.find(fd)?].reg?;
        Some(SimRegistration { key: reg.key, interest: reg.interest, trigger: reg.trigger, armed: reg.armed })
    }

    /// How many fds are registered.
    pub fn registered(&self) -> usize {
        self.entries.iter().filter(|e| e.reg.is_some()).count()
    }

    /// How many times `wait` was called (failed calls
    /// included): the simulated count of blocking syscalls.
    pub fn waits(&self) -> u64 {
        self.waits
    }

    /// Makes the next `register` or `modify`, whichever comes first, fail
    /// with `errno` and change nothing, as a refusing kernel would. One
    /// failure per call of this method; a second call before it is used
    /// replaces the errno.
    pub fn fail_next(&mut self, errno: Errno) {
        self.fail_ctl = Some(errno);
    }

    /// Makes the next `deregister` fail with `errno` and change nothing.
    pub fn fail_next_deregister(&mut self, errno: Errno) {
        self.fail_deregister = Some(errno);
    }

    /// Makes the next `wait` fail with `errno` (reporting nothing and
    /// leaving the clock alone). The loop hands it on as `Error::Os`; note
    /// that a kernel backend turns `EINTR` into an empty wait itself, so a
    /// realistic fault is one a backend would pass on (`EBADF`, `EINVAL`, ...).
    pub fn fail_next_wait(&mut self, errno: Errno) {
        self.fail_wait = Some(errno);
    }

    /// Withdraws every pending `fail_next*` fault.
    pub fn clear_faults(&mut self) {
        self.fail_ctl = None;
        self.fail_deregister = None;
        self.fail_wait = None;
    }

    /// What a wait that has nothing to report and no deadline returns:
    /// `None` (the default) is `Ok(0)`; `Some(errno)` makes it fail with
    /// `errno`, so [`Loop::run`](crate::Loop::run) returns that error
    /// instead of spinning when the script has run dry.
    pub fn set_stall_error(&mut self, errno: Option<Errno>) {
        self.stall_error = errno;
    }

    // --- the simulated process: signals ---

    /// Sends `signo` to the process, as `kill(getpid(), signo)` from pid
    /// 2000 would (`SI_USER`). A standard signal already pending is not
    /// queued again; a real-time one always is (`EAGAIN` when 64 are queued).
    /// `EINVAL` for numbers outside 1..=64.
    pub fn raise(&mut self, signo: i32) -> Result<(), Errno> {
        let mut info = SignalfdSiginfo::zeroed();
        info.ssi_signo = signo as u32;
        info.ssi_pid = 2000;
        self.process.raise(0, info)
    }

    /// Queues `signo` with `value` to the process, as `sigqueue` does
    /// (`SI_QUEUE`, the value in `ssi_int` and `ssi_ptr`).
    pub fn queue(&mut self, signo: i32, value: u64) -> Result<(), Errno> {
        let mut info = SignalfdSiginfo::zeroed();
        info.ssi_signo = signo as u32;
        info.ssi_code = -1;
        info.ssi_pid = 2000;
        info.ssi_int = value as i32;
        info.ssi_ptr = value;
        self.process.raise(0, info)
    }

    /// Sends `signo` to one thread (`tgkill`); `ESRCH` for a thread the
    /// simulation cannot add.
    pub fn raise_in_thread(&mut self, tid: i32, signo: i32) -> Result<(), Errno> {
        let mut info = SignalfdSiginfo::zeroed();
        info.ssi_signo = signo as u32;
        info.ssi_pid = 2000;
        info.ssi_code = -6; // SI_TKILL
        self.process.raise(tid, info)
    }

    /// The signal whose default action would have ended the process (the
    /// first one), if any reached a thread that did not block it.
    pub fn killed_by(&self) -> Option<i32> {
        self.process.killed_by
    }

    /// The thread the loop runs on now (1, the main thread, at first).
    pub fn thread(&self) -> i32 {
        self.process.current_thread()
    }

    /// Makes the loop run on thread `tid` from now on (a new thread starts
    /// with the current thread's mask, as a thread inherits its creator's),
    /// to simulate a loop moved to another thread. `false` when the
    /// simulation has no room for another thread (8).
    pub fn set_thread(&mut self, tid: i32) -> bool {
        self.process.set_current_thread(tid)
    }

    /// Thread `tid`'s signal mask.
    pub fn thread_mask(&mut self, tid: i32) -> SigSet {
        self.process.mask_of(tid)
    }

    /// Sets thread `tid`'s signal mask (as the program around the loop
    /// would, with `sigprocmask`); pending signals it unblocks are delivered.
    pub fn set_thread_mask(&mut self, tid: i32, mask: SigSet) {
        self.process.set_mask(tid, mask)
    }

    // --- the simulated process: children ---

    /// Starts a child process; its pid. `Capacity` when `N` processes exist.
    pub fn spawn_child(&mut self) -> Result<i32, Error> {
        self.process.spawn(true).ok_or(Error::Capacity)
    }

    /// Starts a process that is not a child of this one (its exit can be
    /// watched through a pidfd, but never collected).
    pub fn spawn_stranger(&mut self) -> Result<i32, Error> {
        self.process.spawn(false).ok_or(Error::Capacity)
    }

    /// Ends process `pid` with `status`: a child becomes a zombie and
    /// SIGCHLD is sent to the process; a stranger is gone. `ESRCH` for a
    /// process that does not exist or already ended.
    pub fn exit(&mut self, pid: i32, status: ExitStatus) -> Result<(), Errno> {
        self.process.exit(pid, status)
    }

    /// Whether child `pid` is a zombie (exited, not yet reaped).
    pub fn is_zombie(&self, pid: i32) -> bool {
        self.process.is_zombie(pid)
    }

    /// Makes `pidfd_open` fail with `errno` from now on (`ENOSYS` as on an
    /// old kernel or under qemu-user, `EPERM` as under seccomp), or work
    /// again with `None`.
    pub fn refuse_pidfds(&mut self, errno: Option<Errno>) {
        self.process.pidfd_refusal = errno;
    }

    /// Sets SIGCHLD's disposition to "ignore", as a parent may leave it: the
    /// kernel then reaps exiting children itself (no zombie, no SIGCHLD),
    /// until the loop sets it back to the default.
    pub fn ignore_sigchld(&mut self) {
        self.process.sigchld_ignored = true;
    }

    /// Makes listing the process's children fail (`ENOENT`, as without
    /// `/proc`), or work again.
    pub fn hide_children_list(&mut self, hidden: bool) {
        self.process.proc_children = !hidden;
    }

    // --- kernel objects and the waker ---

    /// Makes the next kernel object the loop asks for (doorbell, signalfd
    /// or pidfd) fail with `errno`, as `EMFILE` at the fd limit would.
    pub fn fail_next_object(&mut self, errno: Errno) {
        self.process.object_fault = Some(errno);
    }

    /// How many kernel objects the loop holds open.
    pub fn open_objects(&self) -> usize {
        self.process.open_objects()
    }

    #[cfg(feature = "waker")]
    /// Signals `waker` with `n` during the next wait, as another thread
    /// would while the loop is blocked: the signal rings the simulated
    /// doorbell if the waker says it must. `Capacity` when 4 are queued.
    pub fn wake_in_next_wait(&mut self, waker: Waker, n: u64) -> Result<(), Error> {
        self.wakes.push((waker, n)).map_err(|_| Error::Capacity)
    }

    /// Brings the readiness of every registered kernel object up to date.
    fn refresh_objects(&mut self) {
        let mut fds: Vec<RawFd, N> = Vec::new();
        for fd in self.process.object_fds() {
            if self.registration(fd).is_some() {
                let _ = fds.push(fd);
            }
        }
        for fd in fds {
            if self.process.readable(fd) {
                if !self.ready(fd).contains(Ready::READABLE) {
                    let _ = self.set_ready(fd, Ready::READABLE);
                }
            } else {
                self.clear_ready(fd, Ready::READABLE);
            }
        }
    }

    fn find(&self, fd: RawFd) -> Option<usize> {
        self.entries.iter().position(|e| e.fd == fd)
    }

    /// Frees the entry of an fd that is neither registered nor ready.
    fn forget_if_idle(&mut self, at: usize) {
        let e = &self.entries[at];
        if e.reg.is_none() && e.ready.is_empty() {
            self.entries.swap_remove(at);
        }
    }

    /// `EPOLL_CTL_ADD` and `EPOLL_CTL_MOD` in one: sets the registration and
    /// (re-)arms it, putting it on the ready list if it is ready now.
    fn ctl(&mut self, fd: RawFd, key: u64, interest: Interest, trigger: Trigger) -> Result<(), Errno> {
        if let Some(errno) = self.fail_ctl.take() {
            return Err(errno);
        }
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        let at = match self.find(fd) {
            Some(at) => at,
            None => {
                self.entries.push(Entry { fd, ready: Ready::empty(), reg: None }).map_err(|_| Errno::ENOSPC)?;
                self.entries.len() - 1
            }
        };
        let e = &mut self.entries[at];
        let (queued, stamp) = match e.reg {
            Some(old) if old.queued => (true, old.stamp),
            _ => (false, 0),
        };
        let mut reg = Reg { key, interest, trigger, armed: true, queued, stamp };
        if !reg.queued && reportable(interest).intersects(e.ready) {
            reg.queued = true;
            reg.stamp = self.stamp;
            self.stamp += 1;
        }
        e.reg = Some(reg);
        Ok(())
    }
}

impl<const N: usize> Kernel for Sim<N> {
    type Fd = SimFd;

    fn name(&self) -> &'static str {
        "sim"
    }

    fn register(&mut self, fd: RawFd, key: u64, interest: Interest, trigger: Trigger) -> Result<(), Errno> {
        self.ctl(fd, key, interest, trigger)
    }

    fn modify(&mut self, fd: RawFd, key: u64, interest: Interest, trigger: Trigger) -> Result<(), Errno> {
        self.ctl(fd, key, interest, trigger)
    }

    fn deregister(&mut self, fd: RawFd, _key: u64) -> Result<(), Errno> {
        if let Some(errno) = self.fail_deregister.take() {
            return Err(errno);
        }
        if let Some(at) = self.find(fd) {
            self.entries[at].reg = None;
            self.forget_if_idle(at);
        }
        Ok(())
    }

    fn wait(&mut self, out: &mut [ReadyEvent], deadline: Option<Instant>) -> Result<usize, Errno> {
        self.waits += 1;
        if let Some(errno) = self.fail_wait.take() {
            return Err(errno);
        }
        // Other threads signal the waker while this one sleeps.
        #[cfg(feature = "waker")]
        while let Some((waker, n)) = self.wakes.pop() {
            if waker.count(n) == Ok(true)
                && let Some(fd) = self.doorbell
                && let Some(Object::Doorbell { rung }) = self.process.object_mut(fd)
            {
                *rung = true;
            }
        }
        self.refresh_objects();
        // The ready list, in order.
        let mut list = [(0u64, 0usize); N];
        let mut len = 0;
        for (at, e) in self.entries.iter().enumerate() {
            if let Some(reg) = e.reg
                && reg.queued
            {
                list[len] = (reg.stamp, at);
                len += 1;
            }
        }
        let list = &mut list[..len];
        list.sort_unstable();
        let mut filled = 0;
        for &(_, at) in list.iter() {
            if filled == out.len() {
                break;
            }
            let e = &mut self.entries[at];
            let Some(reg) = &mut e.reg else { continue };
            let ready = e.ready & reportable(reg.interest);
            if ready.is_empty() || !reg.armed {
                // Nothing left to say: off the list, as ep_send_events does.
                reg.queued = false;
                continue;
            }
            out[filled] = ReadyEvent::of(reg.key, ready);
            filled += 1;
            match reg.trigger {
                Trigger::Level => {
                    // Back on the list, at its tail.
                    reg.stamp = self.stamp;
                    self.stamp += 1;
                }
                Trigger::Edge => reg.queued = false,
                Trigger::Oneshot => {
                    reg.queued = false;
                    reg.armed = false;
                }
            }
        }
        if filled > 0 {
            return Ok(filled);
        }
        match deadline {
            Some(d) => {
                // Nothing is ready, so nothing can become ready before the
                // deadline: be there at once.
                self.now = self.now.max(d);
                Ok(0)
            }
            None => match self.stall_error {
                Some(errno) => Err(errno),
                None => Ok(0),
            },
        }
    }

    fn now(&mut self) -> Result<Instant, Errno> {
        Ok(self.now)
    }

    fn owns_fd(&self, _fd: RawFd) -> bool {
        false
    }

    /// Every non-negative fd number is a virtual fd here: the process's
    /// real fd table must not make a simulation behave differently.
    fn check_fd(&self, fd: RawFd) -> Result<(), Errno> {
        if fd >= 0 { Ok(()) } else { Err(Errno::EBADF) }
    }

    fn doorbell_open(&mut self) -> Result<(SimFd, Ring), Errno> {
        let fd = self.process.open(Object::Doorbell { rung: false })?;
        self.doorbell = Some(fd);
        Ok((SimFd(fd), Ring::Virtual))
    }

    fn doorbell_reset(&mut self, fd: &SimFd) {
        if let Some(Object::Doorbell { rung }) = self.process.object_mut(fd.0) {
            *rung = false;
        }
    }

    fn signalfd_open(&mut self, mask: SigSet) -> Result<SimFd, Errno> {
        self.process.open(Object::Signalfd { mask }).map(SimFd)
    }

    fn signalfd_mask(&mut self, fd: &SimFd, new: SigSet) -> Result<(), Errno> {
        match self.process.object_mut(fd.0) {
            Some(Object::Signalfd { mask }) => {
                *mask = new;
                Ok(())
            }
            _ => Err(Errno::EINVAL),
        }
    }

    fn signalfd_read(&mut self, fd: &SimFd, out: &mut [SignalfdSiginfo]) -> Result<usize, Errno> {
        self.process.read_signals(fd.0, out)
    }

    fn thread_id(&mut self) -> i32 {
        self.process.current_thread()
    }

    fn mask_hold(&mut self, set: SigSet) -> Result<(), Error> {
        self.process.hold(set)
    }

    fn mask_release(&mut self, owner: i32, set: SigSet) {
        self.process.release(owner, set)
    }

    fn pidfd_open(&mut self, pid: i32) -> Result<SimFd, Errno> {
        if let Some(e) = self.process.pidfd_refusal {
            return Err(e);
        }
        if pid <= 0 {
            return Err(Errno::EINVAL);
        }
        self.process.exists(pid)?;
        self.process.open(Object::Pidfd { pid }).map(SimFd)
    }

    /// A real pidfd cannot stand for a simulated process.
    fn adopt_pidfd(&mut self, fd: crate::sys::OwnedFd) -> Result<SimFd, Errno> {
        drop(fd);
        Err(Errno::EINVAL)
    }

    fn child_wait(&mut self, target: ChildTarget<'_, SimFd>, reap: bool) -> Result<Option<(i32, ExitStatus)>, Errno> {
        let pid = match target {
            ChildTarget::Pidfd(fd) => match self.process.object(fd.0) {
                Some(Object::Pidfd { pid }) => Some(pid),
                _ => return Err(Errno::EBADF),
            },
            ChildTarget::Pid(pid) => Some(pid),
            ChildTarget::Any => None,
        };
        self.process.wait(pid, reap)
    }

    fn keep_child_statuses(&mut self) -> Result<(), Errno> {
        self.process.sigchld_ignored = false;
        Ok(())
    }

    fn process_exists(&mut self, pid: i32) -> Result<(), Errno> {
        self.process.exists(pid)
    }

    fn list_children(&mut self, out: &mut [i32]) -> Result<usize, Errno> {
        self.process.children(out)
    }

    fn release(&mut self, fd: SimFd) {
        if self.doorbell == Some(fd.0) {
            self.doorbell = None;
        }
        self.process.close(fd.0);
        // Closing an fd drops its registration, as the kernel does.
        self.close(fd.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::backend::Kernel;

    fn wait(sim: &mut Sim<8>) -> std::vec::Vec<(u64, Ready)> {
        let mut out = [ReadyEvent::default(); 8];
        let n = sim.wait(&mut out, None).unwrap();
        out[..n].iter().map(|e| (e.key(), e.ready())).collect()
    }

    #[test]
    fn level_reports_while_ready_and_interested() {
        let mut sim: Sim<8> = Sim::new();
        sim.register(3, 30, Interest::READ, Trigger::Level).unwrap();
        assert!(wait(&mut sim).is_empty());
        sim.set_ready(3, Ready::READABLE | Ready::WRITABLE).unwrap();
        assert_eq!(wait(&mut sim), [(30, Ready::READABLE)]);
        assert_eq!(wait(&mut sim), [(30, Ready::READABLE)]);
        sim.clear_ready(3, Ready::READABLE);
        assert!(wait(&mut sim).is_empty());
        sim.set_ready(3, Ready::HANGUP).unwrap();
        assert_eq!(wait(&mut sim), [(30, Ready::HANGUP)]);
    }

    #[test]
    fn edge_reports_once_per_wakeup() {
        let mut sim: Sim<8> = Sim::new();
        sim.set_ready(4, Ready::READABLE).unwrap();
        sim.register(4, 40, Interest::READ, Trigger::Edge).unwrap();
        assert_eq!(wait(&mut sim), [(40, Ready::READABLE)]);
        assert!(wait(&mut sim).is_empty());
        sim.set_ready(4, Ready::READABLE).unwrap();
        sim.set_ready(4, Ready::READABLE).unwrap();
        assert_eq!(wait(&mut sim), [(40, Ready::READABLE)]);
        assert!(wait(&mut sim).is_empty());
        // A wake-up on a side it does not watch is no edge.
        sim.set_ready(4, Ready::WRITABLE).unwrap();
        assert!(wait(&mut sim).is_empty());
        // Modify re-checks readiness, as EPOLL_CTL_MOD does.
        sim.modify(4, 41, Interest::READ, Trigger::Edge).unwrap();
        assert_eq!(wait(&mut sim), [(41, Ready::READABLE)]);
    }

    #[test]
    fn oneshot_disarms_until_modified() {
        let mut sim: Sim<8> = Sim::new();
        sim.register(5, 50, Interest::WRITE, Trigger::Oneshot).unwrap();
        sim.set_ready(5, Ready::WRITABLE).unwrap();
        assert_eq!(wait(&mut sim), [(50, Ready::WRITABLE)]);
        assert!(!sim.registration(5).unwrap().armed);
        sim.set_ready(5, Ready::WRITABLE | Ready::ERROR).unwrap();
        assert!(wait(&mut sim).is_empty());
        sim.modify(5, 50, Interest::WRITE, Trigger::Oneshot).unwrap();
        assert_eq!(wait(&mut sim), [(50, Ready::WRITABLE | Ready::ERROR)]);
    }

    #[test]
    fn contract_of_register_modify_deregister() {
        let mut sim: Sim<2> = Sim::new();
        sim.modify(1, 10, Interest::READ, Trigger::Level).unwrap();
        sim.register(1, 11, Interest::WRITE, Trigger::Level).unwrap();
        assert_eq!(sim.registration(1).map(|r| (r.key, r.interest)), Some((11, Interest::WRITE)));
        assert_eq!(sim.deregister(9, 0), Ok(()));
        assert_eq!(sim.register(-1, 0, Interest::READ, Trigger::Level), Err(Errno::EBADF));
        sim.register(2, 20, Interest::READ, Trigger::Level).unwrap();
        assert_eq!(sim.register(3, 30, Interest::READ, Trigger::Level), Err(Errno::ENOSPC));
        assert_eq!(sim.set_ready(3, Ready::READABLE), Err(Error::Capacity));
        sim.fail_next(Errno::ENOMEM);
        assert_eq!(sim.modify(2, 21, Interest::WRITE, Trigger::Level), Err(Errno::ENOMEM));
        assert_eq!(sim.registration(2).map(|r| r.key), Some(20));
        sim.deregister(2, 0).unwrap();
        assert_eq!(sim.registered(), 1);
        sim.close(1);
        assert_eq!(sim.registered(), 0);
        assert_eq!(sim.name(), "sim");
    }

    #[test]
    fn empty_wait_jumps_to_the_deadline_and_never_back() {
        let mut sim: Sim<2> = Sim::new();
        let mut out = [ReadyEvent::default(); 2];
        assert_eq!(sim.wait(&mut out, Some(Instant::from_nanos(500))), Ok(0));
        assert_eq!(sim.clock(), Instant::from_nanos(500));
        assert_eq!(sim.wait(&mut out, Some(Instant::from_nanos(100))), Ok(0));
        assert_eq!(sim.set_now(Instant::from_nanos(7)), Instant::from_nanos(500));
        sim.set_stall_error(Some(Errno::ETIMEDOUT));
        assert_eq!(sim.wait(&mut out, None), Err(Errno::ETIMEDOUT));
        // Ready fds win over the deadline; the clock stays.
        sim.register(0, 1, Interest::READ, Trigger::Level).unwrap();
        sim.set_ready(0, Ready::READABLE).unwrap();
        assert_eq!(sim.wait(&mut out, Some(Instant::from_nanos(900))), Ok(1));
        assert_eq!(sim.clock(), Instant::from_nanos(500));
    }

    #[test]
    fn level_rotates_when_the_batch_is_small() {
        let mut sim: Sim<4> = Sim::new();
        for fd in 0..3 {
            sim.register(fd, fd as u64, Interest::READ, Trigger::Level).unwrap();
            sim.set_ready(fd, Ready::READABLE).unwrap();
        }
        let mut out = [ReadyEvent::default(); 2];
        let mut seen = std::vec::Vec::new();
        for _ in 0..3 {
            let n = sim.wait(&mut out, None).unwrap();
            seen.extend(out[..n].iter().map(|e| e.key()));
        }
        assert_eq!(seen, [0, 1, 2, 0, 1, 2]);
    }
}
