//! tini's command line and environment: options anywhere before `--`
//! (GNU getopt's permutation) unless POSIXLY_CORRECT is set, then the
//! program and its arguments.
//!
//! Parsing never allocates and copies nothing: like getopt it reorders argv
//! in place so that the program's arguments end it, and says where they
//! start. What it cannot accept becomes a usage error with getopt's wording.

use crate::say::{self, B, C, Ch, Part, Verbosity};
use core::ffi::CStr;
use core::ops::Range;
use core::time::Duration;
use linux_event::sys::{self, CStrArray, CStrArrayMut};

/// An argument vector the parser may reorder: the initial stack's argv in
/// the no-libc build, a `Vec` of the arguments in the std build.
pub trait ArgList<'a> {
    /// How many arguments there are, `argv[0]` included.
    fn count(&self) -> usize;
    /// The argument at `i`.
    fn arg(&self, i: usize) -> &'a CStr;
    /// `argv[range].rotate_left(mid)`.
    fn rotate_left(&mut self, range: Range<usize>, mid: usize);
    /// The arguments from `skip` on, as a terminated array or a slice.
    fn tail(&self, skip: usize) -> CStrArray<'_>;
}

impl<'a> ArgList<'a> for [&'a CStr] {
    fn count(&self) -> usize {
        self.len()
    }
    fn arg(&self, i: usize) -> &'a CStr {
        self[i]
    }
    fn rotate_left(&mut self, range: Range<usize>, mid: usize) {
        self[range].rotate_left(mid);
    }
    fn tail(&self, skip: usize) -> CStrArray<'_> {
        CStrArray::from_slice(&self[skip.min(self.len())..])
    }
}

impl<'a> ArgList<'a> for CStrArrayMut<'a> {
    fn count(&self) -> usize {
        self.len()
    }
    fn arg(&self, i: usize) -> &'a CStr {
        self.get(i).unwrap_or(c"")
    }
    fn rotate_left(&mut self, range: Range<usize>, mid: usize) {
        CStrArrayMut::rotate_left(self, range, mid);
    }
    fn tail(&self, skip: usize) -> CStrArray<'_> {
        CStrArrayMut::tail(self, skip)
    }
}

/// What the init was asked to do.
pub struct Options {
    pub subreaper: bool,
    pub parent_death_signal: Option<i32>,
    pub verbosity: Verbosity,
    pub warn_on_reap: bool,
    pub kill_group: bool,
    /// Exit codes turned into 0 (`-e`): a 256-bit set, one bit per code.
    pub remap: [u64; 4],
    /// Signal rewriting (`-r FROM:TO`): what to send for each signal; 0 drops it.
    pub rewrite: [u8; 65],
    /// `--grace SECONDS`: how long leftovers get after the main child exits.
    pub grace: Option<Duration>,
    /// Where the program and its arguments start in the reordered argv; they
    /// run to its end.
    pub program_at: usize,
}

impl Options {
    pub fn remapped(&self, code: i32) -> bool {
        (0..256).contains(&code) && self.remap.get(code as usize / 64).is_some_and(|w| w & (1 << (code % 64)) != 0)
    }
}

/// The outcome of parsing.
pub enum Parsed {
    Run(Options),
    /// Help, version or license was printed, or a usage error: exit with this.
    Exit(i32),
}

const LICENSE: &str = "\
linux-event's init is distributed under the terms of either the MIT
license or the Apache License, Version 2.0, at your option. It is provided
\"as is\", without warranty of any kind.
";

/// The last path component, as tini shows its own name.
fn basename(name: &CStr) -> &[u8] {
    let bytes = name.to_bytes();
    bytes.rsplit(|&b| b == b'/').next().unwrap_or(bytes)
}

/// tini's usage text, with this init's name and version, and its two
/// options of its own (`-r`, `--grace`).
fn usage(name: &CStr, to_stdout: bool) {
    let base = [B(basename(name))];
    // `\u{2}` is the name, each time.
    let text = concat!(
        "\u{2} (linux-event init version ",
        env!("CARGO_PKG_VERSION"),
        ")\nUsage: \u{2} [OPTIONS] PROGRAM -- [ARGS] | --version

Execute a program under the supervision of a valid init process (\u{2})

Command line options:

  --version: Show version and exit.
  -h: Show this help message and exit.
  -s: Register as a process subreaper (requires Linux >= 3.4).
  -p SIGNAL: Trigger SIGNAL when parent dies, e.g. \"-p SIGKILL\".
  -v: Generate more verbose output. Repeat up to 3 times.
  -w: Print a warning when processes are getting reaped.
  -g: Send signals to the child's process group.
  -e EXIT_CODE: Remap EXIT_CODE (from 0 to 255) to 0.
  -l: Show license and exit.
  -r FROM:TO: Forward signal FROM as signal TO; TO 0 drops it (can be repeated).
  --grace SECONDS: When the main child exits, send SIGTERM to the other children, then SIGKILL after SECONDS.

Environment variables:

  TINI_SUBREAPER: Register as a process subreaper (requires Linux >= 3.4).
  TINI_VERBOSITY: Set the verbosity level (default: 1).
  TINI_KILL_PROCESS_GROUP: Send signals to the child's process group.

"
    );
    if to_stdout { say::out(text, &base) } else { say::err(text, &base) }
}

/// The value of `name` in the environment (getenv: the first entry wins).
fn env_value<'a>(envp: &CStrArray<'a>, name: &[u8]) -> Option<&'a [u8]> {
    envp.iter().find_map(|e| e.to_bytes().strip_prefix(name).and_then(|rest| rest.strip_prefix(b"=")))
}

/// C's strtol in base 10 up to the first non-digit: leading white space, a
/// sign, digits. The value (saturated) and whether any digit was seen.
fn strtol_prefix(s: &[u8]) -> (i64, usize) {
    let mut i = s.iter().take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')).count();
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let rest = s.get(i..).unwrap_or(&[]);
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let v = rest.iter().take(digits).fold(0i64, |acc, d| acc.saturating_mul(10).saturating_add(i64::from(d - b'0')));
    // No digits: strtol's end pointer stays at the start of the string.
    let end = if digits == 0 { 0 } else { i + digits };
    (if neg { -v } else { v }, end)
}

/// A whole number as tini takes `-e`'s: strtol must use up the string (an
/// empty one is 0, as strtol makes it).
fn parse_int(s: &[u8]) -> Option<i64> {
    let (v, end) = strtol_prefix(s);
    (end == s.len()).then_some(v)
}

/// C's atoi, as tini applies it to TINI_VERBOSITY, stored as tini's
/// unsigned verbosity (so a negative value means "everything").
fn atoi_unsigned(s: &[u8]) -> u32 {
    strtol_prefix(s).0 as i32 as u32
}

fn parse_signal(s: &[u8]) -> Option<i32> {
    if !s.is_empty()
        && let Some(n) = parse_int(s)
    {
        return (0..=i64::from(sys::MAX_SIGNAL)).contains(&n).then_some(n as i32);
    }
    sys::signal_number_of(s)
}

/// `--grace`'s value: whole seconds as Rust's `u64::from_str` takes them
/// (an optional `+`, at least one digit, no overflow), then optionally `.`
/// and up to 9 digits. Parsed by hand: no UTF-8 check and no `Duration::new`
/// (whose overflow check is a panic path).
fn parse_seconds(s: &[u8]) -> Option<Duration> {
    let dot = s.iter().position(|&b| b == b'.');
    let (whole, frac) = match dot {
        Some(p) => (s.get(..p)?, s.get(p + 1..)?),
        None => (s, &[][..]),
    };
    let whole = whole.strip_prefix(b"+").unwrap_or(whole);
    if whole.is_empty() || frac.len() > 9 {
        return None;
    }
    let mut secs = 0u64;
    for &b in whole {
        if !b.is_ascii_digit() {
            return None;
        }
        secs = secs.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    let mut nanos = 0u64;
    for i in 0..9 {
        let b = frac.get(i).copied().unwrap_or(b'0');
        if !b.is_ascii_digit() {
            return None;
        }
        nanos = nanos * 10 + u64::from(b - b'0');
    }
    Some(Duration::from_secs(secs).saturating_add(Duration::from_nanos(nanos)))
}

/// Parses `argv` (with `argv[0]`) and the environment. On `Run`, `argv` is
/// reordered as getopt leaves it: options (and a `--`) first, then the
/// program and its arguments from `program_at` to the end.
#[inline(never)]
pub fn parse<'a, A: ArgList<'a> + ?Sized>(argv: &mut A, envp: CStrArray<'a>) -> Parsed {
    let argc = argv.count();
    let name = if argc > 0 { argv.arg(0) } else { c"init" };
    let mut o = Options {
        subreaper: false,
        parent_death_signal: None,
        verbosity: Verbosity(1),
        warn_on_reap: false,
        kill_group: false,
        remap: [0; 4],
        rewrite: core::array::from_fn(|i| i as u8),
        grace: None,
        program_at: argc,
    };
    if argc == 2 && argv.arg(1).to_bytes() == b"--version" {
        say::out(concat!("linux-event init version ", env!("CARGO_PKG_VERSION"), "\n"), &[]);
        return Parsed::Exit(0);
    }
    let posix = env_value(&envp, b"POSIXLY_CORRECT").is_some();
    let fail = |o: &Options, template: &str, args: &[Part<'_>]| {
        o.verbosity.fatal(template, args);
        Parsed::Exit(1)
    };
    // The non-options seen so far, kept together at `block.start..i` (getopt's
    // permutation): each option found after them is rotated in front of them.
    let mut block = 0..0;
    let mut options_done = false;
    let mut i = 1;
    while i < argc {
        let arg = argv.arg(i);
        let bytes = arg.to_bytes();
        if options_done || bytes.len() < 2 || bytes.first() != Some(&b'-') {
            if block.is_empty() {
                block = i..i;
            }
            i += 1;
            block.end = i;
            options_done |= posix;
            continue;
        }
        let start = i;
        i += 1;
        if bytes == b"--" {
            options_done = true;
        } else if let Some(long) = bytes.strip_prefix(b"--") {
            let (key, inline) = match long.iter().position(|&b| b == b'=') {
                Some(p) => (long.get(..p).unwrap_or(long), long.get(p + 1..)),
                None => (long, None),
            };
            if key != b"grace" {
                say::err("\u{1}: unrecognized option '\u{1}'\n", &[C(name), C(arg)]);
                usage(name, false);
                return Parsed::Exit(1);
            }
            let value = match inline {
                Some(v) => v,
                None if i < argc => {
                    i += 1;
                    argv.arg(i - 1).to_bytes()
                }
                None => {
                    say::err("\u{1}: option '--grace' requires an argument\n", &[C(name)]);
                    usage(name, false);
                    return Parsed::Exit(1);
                }
            };
            match parse_seconds(value) {
                Some(d) => o.grace = Some(d),
                None => return fail(&o, "Not a valid option for --grace: \u{1}", &[B(value)]),
            }
        } else {
            // A cluster of short options: -vvv, -e3, -p SIGKILL.
            let mut j = 1;
            while let Some(&c) = bytes.get(j) {
                j += 1;
                match c {
                    b'h' => {
                        usage(name, true);
                        return Parsed::Exit(0);
                    }
                    b'l' => {
                        say::out(LICENSE, &[]);
                        return Parsed::Exit(0);
                    }
                    b's' => o.subreaper = true,
                    b'v' => o.verbosity.0 = o.verbosity.0.wrapping_add(1),
                    b'w' => o.warn_on_reap = true,
                    b'g' => o.kill_group = true,
                    b'p' | b'e' | b'r' => {
                        let value = if let Some(v) = bytes.get(j..).filter(|v| !v.is_empty()) {
                            j = bytes.len();
                            v
                        } else if i < argc {
                            i += 1;
                            argv.arg(i - 1).to_bytes()
                        } else {
                            say::err("\u{1}: option requires an argument -- '\u{1}'\n", &[C(name), Ch(c)]);
                            usage(name, false);
                            return Parsed::Exit(1);
                        };
                        let ok = match c {
                            b'p' => parse_signal(value).filter(|&s| s > 0).map(|s| o.parent_death_signal = Some(s)),
                            b'e' => parse_int(value).filter(|v| (0..256).contains(v)).map(|v| {
                                if let Some(word) = o.remap.get_mut(v as usize / 64) {
                                    *word |= 1 << (v % 64);
                                }
                            }),
                            _ => parse_rewrite(value).map(|(from, to)| {
                                if let Some(slot) = o.rewrite.get_mut(from as usize) {
                                    *slot = to as u8;
                                }
                            }),
                        };
                        if ok.is_none() {
                            return fail(&o, "Not a valid option for -\u{1}: \u{1}", &[Ch(c), B(value)]);
                        }
                    }
                    other => {
                        say::err("\u{1}: invalid option -- '\u{1}'\n", &[C(name), Ch(other)]);
                        usage(name, false);
                        return Parsed::Exit(1);
                    }
                }
            }
        }
        if !block.is_empty() {
            // Move this option (and its value, and a `--`) before the
            // non-options, which then end where the scan is.
            argv.rotate_left(block.start..i, start - block.start);
            block = block.start + (i - start)..i;
        }
    }
    if env_value(&envp, b"TINI_SUBREAPER").is_some() {
        o.subreaper = true;
    }
    if env_value(&envp, b"TINI_KILL_PROCESS_GROUP").is_some() {
        o.kill_group = true;
    }
    if let Some(v) = env_value(&envp, b"TINI_VERBOSITY") {
        o.verbosity = Verbosity(atoi_unsigned(v));
    }
    if block.is_empty() {
        // The user forgot the program.
        usage(name, false);
        return Parsed::Exit(1);
    }
    o.program_at = block.start;
    Parsed::Run(o)
}

fn parse_rewrite(value: &[u8]) -> Option<(i32, i32)> {
    let colon = value.iter().position(|&b| b == b':')?;
    let from = parse_signal(value.get(..colon)?).filter(|&s| s > 0)?;
    let to = parse_signal(value.get(colon + 1..)?)?;
    Some((from, to))
}
