//! The C ABI of linux-event's libvirt event contract (`include/linux_event.h`).
//!
//! Six functions with exactly the signatures `virEventRegisterImpl` takes
//! (`le_add_handle` ... `le_remove_timeout`), over one process-wide loop
//! (`le_loop_create`, `le_loop_run_once`, `le_loop_run`, `le_loop_stop`,
//! `le_loop_destroy`): libvirt's callbacks carry no loop argument, so
//! there is one loop, as libvirt has one event implementation.
//!
//! This is the only place where pointers from C are trusted (see "The
//! pointers C hands in" in the header): callbacks are called as given,
//! `opaque` is never dereferenced, only handed back.
//!
//! Calls from the thread running the loop (in particular from inside
//! callbacks) change the table without waking the loop, which is not
//! asleep then; calls from any other thread wake it.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

use linux_event::backend::{AnyBackend, BackendKind};
use linux_event::virt::{FreeEvent, HandleEvent, HandleEvents, HandleId, TimeoutEvent, TimeoutId, Virt, VirtTable};
use linux_event::{Errno, Error, Loop};
use std::cell::{Cell, UnsafeCell};
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::*};
use std::time::Duration;

/// Handles (and fds) the process-wide table holds.
pub const MAX_HANDLES: usize = 1024;
/// Timeouts the process-wide table holds.
pub const MAX_TIMEOUTS: usize = 1024;

/// The loop behind the C ABI: a watcher per fd, the companion's timers
/// (one per timeout slot, one more) and room to spare; any backend
/// (`LINUX_EVENT_BACKEND` chooses, epoll by default).
pub type CLoop = Loop<Context, MAX_HANDLES, { MAX_TIMEOUTS + 32 }, AnyBackend>;
type CVirt = Virt<CLoop, MAX_HANDLES, MAX_TIMEOUTS>;

/// What every callback of the C loop gets: the companion.
pub struct Context {
    virt: CVirt,
    /// C callbacks run in this `le_loop_run_once` (what it returns).
    calls: usize,
}

impl AsMut<CVirt> for Context {
    fn as_mut(&mut self) -> &mut CVirt {
        &mut self.virt
    }
}

/// `virEventHandleCallback`.
pub type HandleCallback = unsafe extern "C" fn(watch: c_int, fd: c_int, events: c_int, opaque: *mut c_void);
/// `virEventTimeoutCallback`.
pub type TimeoutCallback = unsafe extern "C" fn(timer: c_int, opaque: *mut c_void);
/// `virFreeCallback`.
pub type FreeCallback = unsafe extern "C" fn(opaque: *mut c_void);

/// What C handed in for one registration: the table's `data` points here.
struct Registration {
    callback: Callback,
    opaque: *mut c_void,
    free: Option<FreeCallback>,
}

enum Callback {
    Handle(HandleCallback),
    Timeout(TimeoutCallback),
}

static TABLE: VirtTable<CLoop, MAX_HANDLES, MAX_TIMEOUTS> = VirtTable::new();

const NONE: u8 = 0;
const IDLE: u8 = 1;
const BUSY: u8 = 2;

/// Who may touch `LOOP`: whoever moves `STATE` from `IDLE` to `BUSY` (or
/// from `NONE`, to create it). Nobody ever waits for it: a second caller
/// gets `-EBUSY`.
static STATE: AtomicU8 = AtomicU8::new(NONE);
static STOP: AtomicBool = AtomicBool::new(false);

struct LoopCell(UnsafeCell<Option<(Box<CLoop>, Box<Context>)>>);
// SAFETY: the cell is only reached by the one thread that holds `STATE` at
// `BUSY` (see `Busy`), so it is never shared between threads at once.
unsafe impl Sync for LoopCell {}
static LOOP: LoopCell = LoopCell(UnsafeCell::new(None));

thread_local! {
    /// This thread is running the loop (inside `le_loop_run_once` or
    /// `le_loop_run`): its calls need no wake-up.
    static IN_LOOP: Cell<bool> = const { Cell::new(false) };
}

/// Holds `STATE` at `BUSY`; gives it back as `to` when dropped.
struct Busy(u8);

impl Busy {
    fn take(from: u8) -> Option<Busy> {
        STATE.compare_exchange(from, BUSY, Acquire, Relaxed).ok().map(|_| Busy(IDLE))
    }

    fn cell(&mut self) -> &mut Option<(Box<CLoop>, Box<Context>)> {
        // SAFETY: holding `Busy` means this thread moved `STATE` to `BUSY`,
        // and nobody else touches the cell until it is dropped.
        unsafe { &mut *LOOP.0.get() }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        STATE.store(self.0, Release);
    }
}

/// Marks this thread as the loop's while it lives.
struct InLoop;

impl InLoop {
    fn enter() -> InLoop {
        IN_LOOP.with(|c| c.set(true));
        InLoop
    }
}

impl Drop for InLoop {
    fn drop(&mut self) {
        IN_LOOP.with(|c| c.set(false));
    }
}

fn on_loop_thread() -> bool {
    IN_LOOP.with(Cell::get)
}

fn neg(e: Errno) -> c_int {
    -c_int::from(e.raw())
}

fn errno_of(e: Error) -> c_int {
    match e {
        Error::Os(errno) => neg(errno),
        Error::Capacity => neg(Errno::ENOSPC),
        Error::NotFound => neg(Errno::ENOENT),
        _ => neg(Errno::EBUSY),
    }
}

fn on_handle(_lp: &mut CLoop, ctx: &mut Context, ev: HandleEvent) {
    ctx.calls += 1;
    // SAFETY: `data` is the `Registration` leaked at `le_add_handle`, freed
    // only by `on_free`, which runs after the handle's last callback.
    let reg = unsafe { &*(ev.data() as usize as *const Registration) };
    if let Callback::Handle(cb) = reg.callback {
        // SAFETY: C promised a callable `virEventHandleCallback` for as long
        // as the handle lives (the header's pointer rules).
        unsafe { cb(ev.id().get(), ev.fd(), ev.events().bits() as c_int, reg.opaque) }
    }
}

fn on_timeout(_lp: &mut CLoop, ctx: &mut Context, ev: TimeoutEvent) {
    ctx.calls += 1;
    // SAFETY: as in `on_handle`, for `le_add_timeout`.
    let reg = unsafe { &*(ev.data() as usize as *const Registration) };
    if let Callback::Timeout(cb) = reg.callback {
        // SAFETY: C promised a callable `virEventTimeoutCallback`.
        unsafe { cb(ev.id().get(), reg.opaque) }
    }
}

fn on_free(_lp: &mut CLoop, _ctx: &mut Context, ev: FreeEvent) {
    // SAFETY: the registration is released exactly once (the table's
    // contract): this is the only `from_raw` of its leaked box.
    let reg = unsafe { Box::from_raw(ev.data() as usize as *mut Registration) };
    if let Some(ff) = reg.free {
        // SAFETY: C promised a callable `virFreeCallback` (or NULL).
        unsafe { ff(reg.opaque) }
    }
}

fn leak(reg: Registration) -> u64 {
    Box::into_raw(Box::new(reg)) as usize as u64
}

/// Takes back a registration the table refused.
fn unleak(data: u64) {
    // SAFETY: `data` came from `leak` and the table never saw it.
    drop(unsafe { Box::from_raw(data as usize as *mut Registration) });
}

/// `virEventAddHandleFunc`: watches `fd` for `event` (`VIR_EVENT_HANDLE_*`
/// bits; others are ignored). Returns the watch id (positive, never
/// reused), or -1: a NULL callback, a negative fd, or a full table (1024
/// handles). On -1 nothing is kept and `ff` is not called.
///
/// # Safety
///
/// `cb` and `ff` (which may be NULL) must be callable until `ff` has run
/// (or, with no `ff`, until the handle is removed and the loop has run a
/// pass); `opaque` is only handed back to them.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn le_add_handle(
    fd: c_int,
    event: c_int,
    cb: Option<HandleCallback>,
    opaque: *mut c_void,
    ff: Option<FreeCallback>,
) -> c_int {
    let Some(cb) = cb else { return -1 };
    let events = HandleEvents::from_bits_truncate(event as u32);
    let data = leak(Registration { callback: Callback::Handle(cb), opaque, free: ff });
    let added = if on_loop_thread() {
        TABLE.loop_thread().add_handle(fd, events, data, on_handle, Some(on_free))
    } else {
        TABLE.add_handle(fd, events, data, on_handle, Some(on_free))
    };
    match added {
        Ok(id) => id.get(),
        Err(_) => {
            unleak(data);
            -1
        }
    }
}

/// `virEventUpdateHandleFunc`: sets the events of watch `watch` (0: none,
/// not even errors). An unknown or removed watch is ignored.
#[unsafe(no_mangle)]
pub extern "C" fn le_update_handle(watch: c_int, event: c_int) {
    let Some(id) = HandleId::from_raw(watch) else { return };
    let events = HandleEvents::from_bits_truncate(event as u32);
    let _ =
        if on_loop_thread() { TABLE.loop_thread().update_handle(id, events) } else { TABLE.update_handle(id, events) };
}

/// `virEventRemoveHandleFunc`: 0, or -1 for an unknown or removed watch.
/// The handle's callback never runs again (not even later in the pass that
/// is running); its `ff` runs once, after the pass's callbacks, on the
/// loop's thread.
#[unsafe(no_mangle)]
pub extern "C" fn le_remove_handle(watch: c_int) -> c_int {
    let Some(id) = HandleId::from_raw(watch) else { return -1 };
    let removed = if on_loop_thread() { TABLE.loop_thread().remove_handle(id) } else { TABLE.remove_handle(id) };
    if removed.is_ok() { 0 } else { -1 }
}

/// `virEventAddTimeoutFunc`: a timeout every `timeout` ms, counted from
/// when it last fired; 0 fires on every pass, negative is disabled.
/// Returns the timer id (positive, never reused) or -1 (NULL callback,
/// full table of 1024 timeouts).
///
/// # Safety
///
/// As for [`le_add_handle`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn le_add_timeout(
    timeout: c_int,
    cb: Option<TimeoutCallback>,
    opaque: *mut c_void,
    ff: Option<FreeCallback>,
) -> c_int {
    let Some(cb) = cb else { return -1 };
    let data = leak(Registration { callback: Callback::Timeout(cb), opaque, free: ff });
    let added = if on_loop_thread() {
        TABLE.loop_thread().add_timeout(timeout, data, on_timeout, Some(on_free))
    } else {
        TABLE.add_timeout(timeout, data, on_timeout, Some(on_free))
    };
    match added {
        Ok(id) => id.get(),
        Err(_) => {
            unleak(data);
            -1
        }
    }
}

/// `virEventUpdateTimeoutFunc`: sets the interval, counted from now (0:
/// every pass, negative: disabled). Unknown or removed timers are ignored.
#[unsafe(no_mangle)]
pub extern "C" fn le_update_timeout(timer: c_int, timeout: c_int) {
    let Some(id) = TimeoutId::from_raw(timer) else { return };
    let _ = if on_loop_thread() {
        TABLE.loop_thread().update_timeout(id, timeout)
    } else {
        TABLE.update_timeout(id, timeout)
    };
}

/// `virEventRemoveTimeoutFunc`: as [`le_remove_handle`], for timers.
#[unsafe(no_mangle)]
pub extern "C" fn le_remove_timeout(timer: c_int) -> c_int {
    let Some(id) = TimeoutId::from_raw(timer) else { return -1 };
    let removed = if on_loop_thread() { TABLE.loop_thread().remove_timeout(id) } else { TABLE.remove_timeout(id) };
    if removed.is_ok() { 0 } else { -1 }
}

/// Creates the process-wide loop, on the backend `LINUX_EVENT_BACKEND`
/// names (`epoll`, `linux-aio`, `io_uring`, `auto`; epoll by default).
/// Handles and timeouts added before it are registered at its first pass.
/// 0, or a negative errno: `-EBUSY` if it exists, `-EINVAL` for an unknown
/// backend name, the kernel's refusal otherwise.
#[unsafe(no_mangle)]
pub extern "C" fn le_loop_create() -> c_int {
    let Some(mut busy) = Busy::take(NONE) else { return neg(Errno::EBUSY) };
    busy.0 = NONE;
    let kind = match std::env::var("LINUX_EVENT_BACKEND") {
        Ok(name) => match BackendKind::from_name(&name) {
            Some(kind) => kind,
            None => return neg(Errno::EINVAL),
        },
        Err(_) => BackendKind::Epoll,
    };
    let made = AnyBackend::new(kind).map_err(Error::Os).and_then(CLoop::boxed);
    let mut lp = match made {
        Ok(lp) => lp,
        Err(e) => return errno_of(e),
    };
    let mut virt = Virt::new(&TABLE);
    if let Err(e) = virt.attach(&mut lp) {
        return errno_of(e);
    }
    STOP.store(false, SeqCst);
    *busy.cell() = Some((lp, Box::new(Context { virt, calls: 0 })));
    busy.0 = IDLE;
    0
}

/// Runs one pass: waits up to `timeout_ms` (negative: as long as it takes;
/// 0: not at all) and runs every callback that is due. Returns how many ran
/// (free callbacks not counted), or a negative errno: `-EINVAL` with no
/// loop, `-EBUSY` when called while the loop runs (from a callback, or from
/// another thread during a pass).
#[unsafe(no_mangle)]
pub extern "C" fn le_loop_run_once(timeout_ms: c_int) -> c_int {
    let Some(mut busy) = Busy::take(IDLE) else { return not_idle() };
    let Some((lp, ctx)) = busy.cell().as_mut() else { return neg(Errno::EINVAL) };
    let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
    let _in_loop = InLoop::enter();
    ctx.calls = 0;
    match lp.run_once(ctx, timeout) {
        Ok(_) => c_int::try_from(ctx.calls).unwrap_or(c_int::MAX),
        Err(e) => errno_of(e),
    }
}

/// Runs passes until [`le_loop_stop`]; 0, or a negative errno as for
/// [`le_loop_run_once`].
#[unsafe(no_mangle)]
pub extern "C" fn le_loop_run() -> c_int {
    let Some(mut busy) = Busy::take(IDLE) else { return not_idle() };
    let Some((lp, ctx)) = busy.cell().as_mut() else { return neg(Errno::EINVAL) };
    let _in_loop = InLoop::enter();
    while !STOP.swap(false, SeqCst) {
        if let Err(e) = lp.run_once(ctx, None) {
            return errno_of(e);
        }
    }
    0
}

/// Makes [`le_loop_run`] return after the pass it is in (or at once, if
/// called before it). Any thread, also from a callback.
#[unsafe(no_mangle)]
pub extern "C" fn le_loop_stop() {
    STOP.store(true, SeqCst);
    if !on_loop_thread() {
        TABLE.wake();
    }
}

/// Removes every handle and timeout (running their free callbacks, on this
/// thread) and closes the loop. 0, or a negative errno: `-EINVAL` with no
/// loop, `-EBUSY` while it runs (from a callback or another thread).
#[unsafe(no_mangle)]
pub extern "C" fn le_loop_destroy() -> c_int {
    let Some(mut busy) = Busy::take(IDLE) else { return not_idle() };
    busy.0 = NONE;
    let Some((mut lp, mut ctx)) = busy.cell().take() else { return neg(Errno::EINVAL) };
    let _in_loop = InLoop::enter();
    TABLE.remove_all();
    CVirt::detach(&mut lp, &mut ctx);
    0
}

/// The backend the loop runs on (`"epoll"`, `"linux-aio"`, `"io_uring"`),
/// or NULL with no loop or while it runs. A static string.
#[unsafe(no_mangle)]
pub extern "C" fn le_loop_backend() -> *const c_char {
    let Some(mut busy) = Busy::take(IDLE) else { return std::ptr::null() };
    let Some((lp, _)) = busy.cell().as_ref() else { return std::ptr::null() };
    let name: &'static CStr = match lp.backend_name() {
        "epoll" => c"epoll",
        "linux-aio" => c"linux-aio",
        "io_uring" => c"io_uring",
        _ => c"other",
    };
    name.as_ptr()
}

/// Free callbacks still to run (of removed handles and timeouts).
#[unsafe(no_mangle)]
pub extern "C" fn le_pending_frees() -> c_int {
    c_int::try_from(TABLE.pending_frees()).unwrap_or(c_int::MAX)
}

fn not_idle() -> c_int {
    match STATE.load(Acquire) {
        NONE => neg(Errno::EINVAL),
        _ => neg(Errno::EBUSY),
    }
}
