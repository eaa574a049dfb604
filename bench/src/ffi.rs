//! The C drivers' entry points (`c/bench.h`): libev, libevent, raw epoll.

use crate::measure::Span;

/// `struct chain_args`.
#[repr(C)]
pub struct ChainArgs {
    pub rfd: *const i32,
    pub wfd: *const i32,
    pub n: i32,
    pub active: i32,
    pub writes: i64,
}

/// `struct timer_args`.
#[repr(C)]
pub struct TimerArgs {
    pub n: i32,
    pub far: *const u64,
    pub rearm: *const u64,
    pub order_rearm: *const u32,
    pub order_cancel: *const u32,
    pub near: *const u64,
    pub from_main: i32,
    pub keep: i32,
}

/// `struct timer_result`.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default)]
pub struct TimerResult {
    pub insert: Span,
    pub rearm: Span,
    pub cancel: Span,
    pub fire: Span,
    pub fired: i64,
}

/// `struct pingpong_result`.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default)]
pub struct PingpongResult {
    pub span: Span,
    pub rounds: i64,
}

/// `struct pummel_result`.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default)]
pub struct PummelResult {
    pub sends: i64,
    pub callbacks: i64,
    pub sender: Span,
    pub loop_: Span,
    pub sender_writes: i64,
}

/// `struct child_args`.
#[repr(C)]
pub struct ChildArgs {
    pub n: i32,
    pub pid: *const i32,
    pub release: *const i32,
    pub one: i32,
}

/// `struct child_result`.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default)]
pub struct ChildResult {
    pub one: Span,
    pub rest: Span,
    pub good: i64,
}

unsafe extern "C" {
    pub fn bev_chain(a: *const ChainArgs, out: *mut Span) -> i64;
    pub fn bev_timers(a: *const TimerArgs, out: *mut TimerResult) -> i32;
    pub fn bev_pingpong(rounds: i64, cpu_a: i32, cpu_b: i32, out: *mut PingpongResult) -> i32;
    pub fn bev_pummel(duration_ns: u64, cpu_loop: i32, cpu_sender: i32, out: *mut PummelResult) -> i32;
    pub fn bev_idle(passes: i64) -> i32;
    pub fn bev_signals(n: i64, out: *mut Span) -> i64;
    pub fn bev_children(a: *const ChildArgs, out: *mut ChildResult) -> i32;

    pub fn bevent_chain(a: *const ChainArgs, out: *mut Span) -> i64;
    pub fn bevent_timers(a: *const TimerArgs, out: *mut TimerResult) -> i32;
    pub fn bevent_pingpong(rounds: i64, cpu_a: i32, cpu_b: i32, out: *mut PingpongResult) -> i32;
    pub fn bevent_pummel(duration_ns: u64, cpu_loop: i32, cpu_sender: i32, out: *mut PummelResult) -> i32;
    pub fn bevent_idle(passes: i64) -> i32;
    pub fn bevent_signals(n: i64, out: *mut Span) -> i64;
    pub fn bevent_children(a: *const ChildArgs, out: *mut ChildResult) -> i32;

    pub fn braw_chain(a: *const ChainArgs, out: *mut Span) -> i64;
    pub fn braw_pingpong(rounds: i64, cpu_a: i32, cpu_b: i32, out: *mut PingpongResult) -> i32;
    pub fn braw_pummel(duration_ns: u64, cpu_loop: i32, cpu_sender: i32, out: *mut PummelResult) -> i32;
    pub fn braw_idle(passes: i64) -> i32;
    pub fn braw_signals(n: i64, out: *mut Span) -> i64;
    pub fn braw_children(a: *const ChildArgs, out: *mut ChildResult) -> i32;
}

// The versions of the libraries actually linked.
unsafe extern "C" {
    pub fn ev_version_major() -> i32;
    pub fn ev_version_minor() -> i32;
    pub fn event_get_version() -> *const std::ffi::c_char;
}
