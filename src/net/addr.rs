//! Addresses the companions take: IPv4, IPv6 and Unix (a path or an
//! abstract name), parsed from text with named errors. No DNS: a host
//! name is an error.
//!
//! `127.0.0.1:8080`, `[::1]:80`, `[fe80::1%2]:80` (scope as a number),
//! `unix:/run/x.sock`, `unix:@name` or `@name` (abstract).

use crate::sys::{SockAddr, UNIX_PATH_MAX};
use core::fmt;
use core::net::{SocketAddrV4, SocketAddrV6};
use core::str::FromStr;

/// Why a text is not an address.
///
/// ```
/// use linux_event::net::{AddrError, SocketAddr};
/// assert_eq!("localhost:80".parse::<SocketAddr>(), Err(AddrError::NotAnIpAddress));
/// assert_eq!("127.0.0.1".parse::<SocketAddr>(), Err(AddrError::MissingPort));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum AddrError {
    /// Empty text.
    Empty,
    /// An IP address with no `:port` (IPv6 also needs brackets: `[::1]:80`).
    MissingPort,
    /// The port is not a number from 0 to 65535.
    BadPort,
    /// Not an IPv4 or bracketed IPv6 address (host names are not resolved).
    NotAnIpAddress,
    /// `unix:` with nothing after it, or `@` alone.
    EmptyPath,
    /// A Unix path or name longer than the kernel takes (107 bytes).
    PathTooLong,
    /// A Unix path with a NUL byte in it.
    NulInPath,
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddrError::Empty => "empty address",
            AddrError::MissingPort => "no port (want ip:port, [ipv6]:port, unix:/path or @name)",
            AddrError::BadPort => "port is not a number from 0 to 65535",
            AddrError::NotAnIpAddress => "not an IP address (host names are not resolved)",
            AddrError::EmptyPath => "empty Unix socket path",
            AddrError::PathTooLong => "Unix socket path longer than 107 bytes",
            AddrError::NulInPath => "Unix socket path contains a NUL byte",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for AddrError {}

/// A Unix socket address: a filesystem path or an abstract name, stored
/// inline (at most 107 bytes).
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct UnixAddr {
    bytes: [u8; UNIX_PATH_MAX - 1],
    len: u8,
    abstract_name: bool,
}

impl UnixAddr {
    /// A filesystem path (bytes, no NUL).
    pub fn path(path: &[u8]) -> Result<UnixAddr, AddrError> {
        if path.contains(&0) {
            return Err(AddrError::NulInPath);
        }
        Self::make(path, false)
    }

    /// A name in the abstract namespace (`@name`; any bytes).
    pub fn abstract_name(name: &[u8]) -> Result<UnixAddr, AddrError> {
        Self::make(name, true)
    }

    fn make(name: &[u8], abstract_name: bool) -> Result<UnixAddr, AddrError> {
        if name.is_empty() {
            return Err(AddrError::EmptyPath);
        }
        if name.len() > UNIX_PATH_MAX - 1 {
            return Err(AddrError::PathTooLong);
        }
        let mut bytes = [0u8; UNIX_PATH_MAX - 1];
        bytes[..name.len()].copy_from_slice(name);
        Ok(UnixAddr { bytes, len: name.len() as u8, abstract_name })
    }

    /// The path or name, without the leading `@` of an abstract name.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Whether it is an abstract name rather than a path.
    pub fn is_abstract(&self) -> bool {
        self.abstract_name
    }
}

impl fmt::Debug for UnixAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for UnixAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.abstract_name { "@" } else { "unix:" })?;
        for chunk in self.as_bytes().utf8_chunks() {
            f.write_str(chunk.valid())?;
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// Where to listen or connect: IPv4, IPv6 or Unix.
///
/// ```
/// use linux_event::net::SocketAddr;
/// let v4: SocketAddr = "127.0.0.1:8080".parse()?;
/// let v6: SocketAddr = "[::1]:80".parse()?;
/// let path: SocketAddr = "unix:/run/x.sock".parse()?;
/// let name: SocketAddr = "@name".parse()?;
/// assert_eq!((v4.port(), v6.port(), path.port()), (Some(8080), Some(80), None));
/// assert_eq!(name.to_string(), "@name");
/// # Ok::<(), linux_event::net::AddrError>(())
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum SocketAddr {
    /// IPv4 address and port.
    V4(SocketAddrV4),
    /// IPv6 address, port, flow label and scope.
    V6(SocketAddrV6),
    /// Unix socket path or abstract name.
    Unix(UnixAddr),
}

impl SocketAddr {
    /// The port of an IP address (`None` for Unix).
    pub fn port(&self) -> Option<u16> {
        match self {
            SocketAddr::V4(a) => Some(a.port()),
            SocketAddr::V6(a) => Some(a.port()),
            SocketAddr::Unix(_) => None,
        }
    }

    /// The address family (`sys::AF_INET`, `AF_INET6`, `AF_UNIX`).
    pub fn family(&self) -> u32 {
        match self {
            SocketAddr::V4(_) => crate::sys::AF_INET,
            SocketAddr::V6(_) => crate::sys::AF_INET6,
            SocketAddr::Unix(_) => crate::sys::AF_UNIX,
        }
    }

    /// The kernel's form of the address.
    pub fn to_sys(&self) -> SockAddr {
        match self {
            SocketAddr::V4(a) => SockAddr::v4(*a),
            SocketAddr::V6(a) => SockAddr::v6(*a),
            // Length and NUL were checked when the UnixAddr was made.
            SocketAddr::Unix(u) => SockAddr::unix(u.as_bytes(), u.is_abstract())
                .unwrap_or(SockAddr::v4(SocketAddrV4::new(core::net::Ipv4Addr::UNSPECIFIED, 0))),
        }
    }

    /// The address the kernel reported, if it is one of the three kinds
    /// (`None` for an unnamed Unix socket, as most Unix peers are).
    pub fn from_sys(a: &SockAddr) -> Option<SocketAddr> {
        if let Some(v4) = a.as_v4() {
            return Some(SocketAddr::V4(v4));
        }
        if let Some(v6) = a.as_v6() {
            return Some(SocketAddr::V6(v6));
        }
        let (name, abstract_name) = a.as_unix()?;
        let u = if abstract_name { UnixAddr::abstract_name(name) } else { UnixAddr::path(name) };
        u.ok().map(SocketAddr::Unix)
    }
}

impl From<SocketAddrV4> for SocketAddr {
    fn from(a: SocketAddrV4) -> Self {
        SocketAddr::V4(a)
    }
}

impl From<SocketAddrV6> for SocketAddr {
    fn from(a: SocketAddrV6) -> Self {
        SocketAddr::V6(a)
    }
}

impl From<core::net::SocketAddr> for SocketAddr {
    fn from(a: core::net::SocketAddr) -> Self {
        match a {
            core::net::SocketAddr::V4(a) => SocketAddr::V4(a),
            core::net::SocketAddr::V6(a) => SocketAddr::V6(a),
        }
    }
}

impl From<UnixAddr> for SocketAddr {
    fn from(a: UnixAddr) -> Self {
        SocketAddr::Unix(a)
    }
}

impl FromStr for SocketAddr {
    type Err = AddrError;

    fn from_str(s: &str) -> Result<Self, AddrError> {
        if s.is_empty() {
            return Err(AddrError::Empty);
        }
        if let Some(rest) = s.strip_prefix("unix:") {
            return match rest.strip_prefix('@') {
                Some(name) => UnixAddr::abstract_name(name.as_bytes()),
                None => UnixAddr::path(rest.as_bytes()),
            }
            .map(SocketAddr::Unix);
        }
        if let Some(name) = s.strip_prefix('@') {
            return UnixAddr::abstract_name(name.as_bytes()).map(SocketAddr::Unix);
        }
        parse_ip(s)
    }
}

/// `a.b.c.d:port` or `[v6]:port`, with errors that say which part is wrong.
fn parse_ip(s: &str) -> Result<SocketAddr, AddrError> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(AddrError::NotAnIpAddress)?;
        let port = after.strip_prefix(':').ok_or(if after.is_empty() {
            AddrError::MissingPort
        } else {
            AddrError::NotAnIpAddress
        })?;
        (host, port)
    } else {
        match s.rsplit_once(':') {
            // More than one colon and no brackets: a bare IPv6 address.
            Some((host, _)) if host.contains(':') => return Err(AddrError::MissingPort),
            Some(parts) => parts,
            None => {
                return Err(if s.parse::<core::net::Ipv4Addr>().is_ok() {
                    AddrError::MissingPort
                } else {
                    AddrError::NotAnIpAddress
                });
            }
        }
    };
    let port = parse_port(port)?;
    if s.starts_with('[') {
        let (ip, scope) = match host.split_once('%') {
            Some((ip, scope)) => (ip, scope.parse::<u32>().map_err(|_| AddrError::NotAnIpAddress)?),
            None => (host, 0),
        };
        let ip = ip.parse::<core::net::Ipv6Addr>().map_err(|_| AddrError::NotAnIpAddress)?;
        Ok(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope)))
    } else {
        let ip = host.parse::<core::net::Ipv4Addr>().map_err(|_| AddrError::NotAnIpAddress)?;
        Ok(SocketAddr::V4(SocketAddrV4::new(ip, port)))
    }
}

fn parse_port(s: &str) -> Result<u16, AddrError> {
    if s.is_empty() {
        return Err(AddrError::MissingPort);
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddrError::BadPort);
    }
    s.parse::<u16>().map_err(|_| AddrError::BadPort)
}

impl fmt::Display for SocketAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketAddr::V4(a) => fmt::Display::fmt(a, f),
            SocketAddr::V6(a) => fmt::Display::fmt(a, f),
            SocketAddr::Unix(u) => fmt::Display::fmt(u, f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<SocketAddr, AddrError> {
        s.parse()
    }

    #[test]
    fn every_kind_parses_and_prints_back() {
        for s in ["127.0.0.1:8080", "[::1]:80", "[fe80::1%2]:443", "unix:/run/x.sock", "@name", "0.0.0.0:0"] {
            assert_eq!(p(s).unwrap().to_string(), s, "{s}");
        }
        assert_eq!(p("unix:@abs").unwrap().to_string(), "@abs");
        assert_eq!(p("[::1]:80").unwrap().port(), Some(80));
        let SocketAddr::V6(v6) = p("[fe80::1%2]:443").unwrap() else { panic!() };
        assert_eq!(v6.scope_id(), 2);
    }

    #[test]
    fn bad_input_gets_a_named_error() {
        let cases = [
            ("", AddrError::Empty),
            ("127.0.0.1", AddrError::MissingPort),
            ("127.0.0.1:", AddrError::MissingPort),
            ("::1", AddrError::MissingPort),
            ("[::1]", AddrError::MissingPort),
            ("[::1]x", AddrError::NotAnIpAddress),
            ("[::1", AddrError::NotAnIpAddress),
            ("127.0.0.1:65536", AddrError::BadPort),
            ("127.0.0.1:-1", AddrError::BadPort),
            ("127.0.0.1:+80", AddrError::BadPort),
            ("localhost:80", AddrError::NotAnIpAddress),
            ("example.com", AddrError::NotAnIpAddress),
            ("300.0.0.1:80", AddrError::NotAnIpAddress),
            ("[1.2.3.4]:80", AddrError::NotAnIpAddress),
            ("[fe80::1%eth0]:80", AddrError::NotAnIpAddress),
            ("unix:", AddrError::EmptyPath),
            ("@", AddrError::EmptyPath),
            ("unix:/a\0b", AddrError::NulInPath),
        ];
        for (s, want) in cases {
            assert_eq!(p(s), Err(want), "{s:?}");
        }
        let long = format!("unix:/{}", "x".repeat(107));
        assert_eq!(p(&long), Err(AddrError::PathTooLong));
        assert!(p(&long[..long.len() - 1]).is_ok());
    }

    #[test]
    fn kernel_form_round_trips() {
        for s in ["127.0.0.1:8080", "[::1]:80", "unix:/run/x.sock", "@name"] {
            let a = p(s).unwrap();
            assert_eq!(SocketAddr::from_sys(&a.to_sys()), Some(a), "{s}");
            assert_eq!(a.to_sys().family(), a.family());
        }
    }

    #[test]
    fn non_utf8_names_print_escaped() {
        let a = UnixAddr::abstract_name(&[b'a', 0xff, 0]).unwrap();
        assert_eq!(a.to_string(), "@a\\xff\u{0}");
    }
}
