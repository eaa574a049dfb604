//! tini's command line and environment: options anywhere before `--`
//! (GNU permutation) unless POSIXLY_CORRECT is set, then the program.
//!
//! Parsing never allocates; what it cannot accept becomes a usage error
//! with getopt's wording, never a panic.

use crate::say::{self, Show, Verbosity};
use core::ffi::CStr;
use core::time::Duration;
use heapless::Vec;
use linux_event::sys;

/// Most arguments the program may get (the spawn's own limit).
pub const MAX_ARGS: usize = sys::MAX_EXEC_ARGS;

/// What the init was asked to do.
pub struct Options<'a> {
    pub subreaper: bool,
    pub parent_death_signal: Option<i32>,
    pub verbosity: Verbosity,
    pub warn_on_reap: bool,
    pub kill_group: bool,
    /// Exit codes turned into 0 (`-e`), one bit each.
    pub remap: [u64; 4],
    /// Signal rewriting (`-r FROM:TO`): what to send for each signal; 0 drops it.
    pub rewrite: [u8; 65],
    /// `--grace SECONDS`: how long leftovers get after the main child exits.
    pub grace: Option<Duration>,
    /// The program and its arguments.
    pub argv: Vec<&'a CStr, MAX_ARGS>,
}

impl Options<'_> {
    pub fn remapped(&self, code: i32) -> bool {
        (0..256).contains(&code) && self.remap[code as usize / 64] & (1 << (code % 64)) != 0
    }
}

/// The outcome of parsing. Built once and moved out at once, so the size
/// difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Parsed<'a> {
    Run(Options<'a>),
    /// Help, version or license was printed, or a usage error: exit with this.
    Exit(i32),
}

/// The usage text after `Usage: NAME`.
const USAGE: &str = " [OPTIONS] PROGRAM -- [ARGS] | --version

Runs PROGRAM as the child of a minimal init: signals are forwarded to it,
zombies are reaped as soon as they appear, and the init exits with the
child's status.

Options:
  --version      Print the version and exit (only as the sole argument).
  -h             Print this help and exit.
  -s             Register as a child subreaper.
  -p SIGNAL      Ask for SIGNAL when the init's parent dies, e.g. -p SIGKILL.
  -v             Say more (repeat for more still).
  -w             Warn each time a zombie is reaped.
  -g             Send forwarded signals to the child's process group.
  -e EXIT_CODE   Exit 0 when the child exits with EXIT_CODE (repeatable, 0-255).
  -l             Print the license and exit.
  -r FROM:TO     Forward signal FROM as TO; TO 0 drops it (repeatable).
  --grace SECS   After the main child exits, SIGTERM the remaining children,
                 reap them for up to SECS seconds, then SIGKILL what is left.

Environment:
  TINI_SUBREAPER           Register as a child subreaper.
  TINI_VERBOSITY           Verbosity level (default 1).
  TINI_KILL_PROCESS_GROUP  Send forwarded signals to the child's process group.
";

const LICENSE: &str = "\
linux-event's init is distributed under the terms of either the MIT
license or the Apache License, Version 2.0, at your option. It is provided
\"as is\", without warranty of any kind.
";

fn usage(name: &CStr, to_stdout: bool) {
    if to_stdout {
        say::out(format_args!("Usage: {}{USAGE}", Show(name)));
    } else {
        say::err(format_args!("Usage: {}{USAGE}", Show(name)));
    }
}

fn env_value<'a>(envp: &[&'a CStr], name: &[u8]) -> Option<&'a [u8]> {
    envp.iter().find_map(|e| e.to_bytes().strip_prefix(name).and_then(|rest| rest.strip_prefix(b"=")))
}

fn parse_int(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 12 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
    Some(if neg { -v } else { v })
}

/// C's atoi, as tini applies it to TINI_VERBOSITY: leading digits, else 0.
fn atoi(s: &[u8]) -> i32 {
    let end = s.iter().position(|b| !b.is_ascii_digit() && *b != b'-').unwrap_or(s.len());
    parse_int(&s[..end]).map_or(0, |v| v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
}

fn parse_signal(s: &[u8]) -> Option<i32> {
    if let Some(n) = parse_int(s) {
        return (0..=i64::from(sys::MAX_SIGNAL)).contains(&n).then_some(n as i32);
    }
    core::str::from_utf8(s).ok().and_then(sys::signal_number)
}

fn parse_seconds(s: &[u8]) -> Option<Duration> {
    let text = core::str::from_utf8(s).ok()?;
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: u64 = whole.parse().ok()?;
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nanos = 0u32;
    for b in frac.bytes().chain(core::iter::repeat(b'0')).take(9) {
        nanos = nanos * 10 + u32::from(b - b'0');
    }
    Some(Duration::new(secs, nanos))
}

/// Parses `argv` (with `argv[0]`) and the environment.
pub fn parse<'a>(argv: &[&'a CStr], envp: &[&'a CStr]) -> Parsed<'a> {
    let name = argv.first().copied().unwrap_or(c"init");
    let mut o = Options {
        subreaper: false,
        parent_death_signal: None,
        verbosity: Verbosity(1),
        warn_on_reap: false,
        kill_group: false,
        remap: [0; 4],
        rewrite: core::array::from_fn(|i| i as u8),
        grace: None,
        argv: Vec::new(),
    };
    if argv.len() == 2 && argv[1].to_bytes() == b"--version" {
        say::out(format_args!("linux-event init version {}\n", env!("CARGO_PKG_VERSION")));
        return Parsed::Exit(0);
    }
    let posix = env_value(envp, b"POSIXLY_CORRECT").is_some();
    let fail = |o: &Options<'_>, args: core::fmt::Arguments<'_>| {
        o.verbosity.fatal(args);
        Parsed::Exit(1)
    };
    let mut options_done = false;
    let mut i = 1;
    while i < argv.len() {
        let arg = argv[i];
        let bytes = arg.to_bytes();
        i += 1;
        if options_done || bytes.len() < 2 || bytes[0] != b'-' {
            if o.argv.push(arg).is_err() {
                return fail(&o, format_args!("too many arguments (at most {MAX_ARGS})"));
            }
            options_done |= posix;
            continue;
        }
        if bytes == b"--" {
            options_done = true;
            continue;
        }
        if let Some(long) = bytes.strip_prefix(b"--") {
            let (key, inline) = match long.iter().position(|&b| b == b'=') {
                Some(p) => (&long[..p], Some(&long[p + 1..])),
                None => (long, None),
            };
            if key != b"grace" {
                say::err(format_args!("{}: unrecognized option '{}'\n", Show(name), Show(arg)));
                usage(name, false);
                return Parsed::Exit(1);
            }
            let value = match inline.or_else(|| argv.get(i).map(|a| a.to_bytes())) {
                Some(v) => v,
                None => {
                    say::err(format_args!("{}: option '--grace' requires an argument\n", Show(name)));
                    usage(name, false);
                    return Parsed::Exit(1);
                }
            };
            if inline.is_none() {
                i += 1;
            }
            match parse_seconds(value) {
                Some(d) => o.grace = Some(d),
                None => return fail(&o, format_args!("Not a valid option for --grace: {}", Show2(value))),
            }
            continue;
        }
        // A cluster of short options: -vvv, -e3, -p SIGKILL.
        let mut j = 1;
        while j < bytes.len() {
            let c = bytes[j];
            j += 1;
            match c {
                b'h' => {
                    usage(name, true);
                    return Parsed::Exit(0);
                }
                b'l' => {
                    say::out(format_args!("{LICENSE}"));
                    return Parsed::Exit(0);
                }
                b's' => o.subreaper = true,
                b'v' => o.verbosity.0 += 1,
                b'w' => o.warn_on_reap = true,
                b'g' => o.kill_group = true,
                b'p' | b'e' | b'r' => {
                    let value = if j < bytes.len() {
                        let v = &bytes[j..];
                        j = bytes.len();
                        v
                    } else if let Some(next) = argv.get(i) {
                        i += 1;
                        next.to_bytes()
                    } else {
                        say::err(format_args!("{}: option requires an argument -- '{}'\n", Show(name), c as char));
                        usage(name, false);
                        return Parsed::Exit(1);
                    };
                    let ok = match c {
                        b'p' => parse_signal(value).filter(|&s| s > 0).map(|s| o.parent_death_signal = Some(s)),
                        b'e' => parse_int(value).filter(|v| (0..256).contains(v)).map(|v| {
                            o.remap[v as usize / 64] |= 1 << (v % 64);
                        }),
                        _ => parse_rewrite(value).map(|(from, to)| o.rewrite[from as usize] = to as u8),
                    };
                    if ok.is_none() {
                        return fail(&o, format_args!("Not a valid option for -{}: {}", c as char, Show2(value)));
                    }
                }
                other => {
                    say::err(format_args!("{}: invalid option -- '{}'\n", Show(name), other as char));
                    usage(name, false);
                    return Parsed::Exit(1);
                }
            }
        }
    }
    if env_value(envp, b"TINI_SUBREAPER").is_some() {
        o.subreaper = true;
    }
    if env_value(envp, b"TINI_KILL_PROCESS_GROUP").is_some() {
        o.kill_group = true;
    }
    if let Some(v) = env_value(envp, b"TINI_VERBOSITY") {
        o.verbosity = Verbosity(atoi(v));
    }
    if o.argv.is_empty() {
        usage(name, false);
        return Parsed::Exit(1);
    }
    Parsed::Run(o)
}

fn parse_rewrite(value: &[u8]) -> Option<(i32, i32)> {
    let colon = value.iter().position(|&b| b == b':')?;
    let from = parse_signal(&value[..colon]).filter(|&s| s > 0)?;
    let to = parse_signal(&value[colon + 1..])?;
    Some((from, to))
}

/// Bytes for display.
struct Show2<'a>(&'a [u8]);

impl core::fmt::Display for Show2<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
        }
        Ok(())
    }
}
