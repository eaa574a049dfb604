//! Socket addresses in the kernel's byte layout (`sockaddr_in`,
//! `sockaddr_in6`, `sockaddr_un`), built from and read back into plain
//! values. ABI only: parsing and display live in the `net` companion.
//!
//! The layout is written byte by byte (family in host order, port and
//! flow label in network order), so no `unsafe` is needed; the sizes are
//! pinned against linux-raw-sys's structs in the tests.

use super::errno::Errno;
use core::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use linux_raw_sys::net as k;

/// Bytes of the largest address the kernel takes here (`sockaddr_un`).
const STORAGE: usize = 112;
/// Bytes of a `sockaddr_in`.
const LEN_V4: u32 = 16;
/// Bytes of a `sockaddr_in6`.
const LEN_V6: u32 = 28;
/// Offset of `sun_path` in a `sockaddr_un` (after the family).
const SUN_PATH: usize = 2;
/// Bytes of `sun_path`.
pub const UNIX_PATH_MAX: usize = 108;

/// A socket address as the kernel reads and writes it: the bytes of a
/// `sockaddr_*` and their length.
#[derive(Copy, Clone)]
#[repr(C, align(8))]
pub struct SockAddr {
    bytes: [u8; STORAGE],
    len: u32,
}

impl SockAddr {
    /// Room for any address the kernel may write (`accept4`, `getsockname`).
    pub(crate) const fn empty() -> SockAddr {
        SockAddr { bytes: [0; STORAGE], len: STORAGE as u32 }
    }

    /// An IPv4 address and port.
    pub fn v4(addr: SocketAddrV4) -> SockAddr {
        let mut a = SockAddr { bytes: [0; STORAGE], len: LEN_V4 };
        a.bytes[0..2].copy_from_slice(&(k::AF_INET as u16).to_ne_bytes());
        a.bytes[2..4].copy_from_slice(&addr.port().to_be_bytes());
        a.bytes[4..8].copy_from_slice(&addr.ip().octets());
        a
    }

    /// An IPv6 address, port, flow label and scope.
    pub fn v6(addr: SocketAddrV6) -> SockAddr {
        let mut a = SockAddr { bytes: [0; STORAGE], len: LEN_V6 };
        a.bytes[0..2].copy_from_slice(&(k::AF_INET6 as u16).to_ne_bytes());
        a.bytes[2..4].copy_from_slice(&addr.port().to_be_bytes());
        a.bytes[4..8].copy_from_slice(&addr.flowinfo().to_be_bytes());
        a.bytes[8..24].copy_from_slice(&addr.ip().octets());
        a.bytes[24..28].copy_from_slice(&addr.scope_id().to_ne_bytes());
        a
    }

    /// A Unix socket address: a filesystem path, or (`abstract_name`) a
    /// name in the abstract namespace (no leading NUL in `name`).
    /// `ENAMETOOLONG` beyond 107 bytes for a path (a NUL ends it), 107 for
    /// an abstract name (the leading NUL takes one); `EINVAL` for an empty
    /// path or one containing NUL.
    pub fn unix(name: &[u8], abstract_name: bool) -> Result<SockAddr, Errno> {
        if !abstract_name && (name.is_empty() || name.contains(&0)) {
            return Err(Errno::EINVAL);
        }
        if name.len() > UNIX_PATH_MAX - 1 {
            return Err(Errno::ENAMETOOLONG);
        }
        let mut a = SockAddr { bytes: [0; STORAGE], len: 0 };
        a.bytes[0..2].copy_from_slice(&(k::AF_UNIX as u16).to_ne_bytes());
        let start = SUN_PATH + usize::from(abstract_name);
        a.bytes[start..start + name.len()].copy_from_slice(name);
        // A path is passed with its NUL, an abstract name exactly.
        a.len = (start + name.len() + usize::from(!abstract_name)) as u32;
        Ok(a)
    }

    /// The address family (`AF_INET`, `AF_INET6`, `AF_UNIX`), 0 if unset.
    pub fn family(&self) -> u32 {
        if self.len < 2 { 0 } else { u32::from(u16::from_ne_bytes([self.bytes[0], self.bytes[1]])) }
    }

    /// The IPv4 address, if this is one.
    pub fn as_v4(&self) -> Option<SocketAddrV4> {
        if self.family() != k::AF_INET || self.len < LEN_V4 {
            return None;
        }
        let b = &self.bytes;
        Some(SocketAddrV4::new(Ipv4Addr::new(b[4], b[5], b[6], b[7]), u16::from_be_bytes([b[2], b[3]])))
    }

    /// The IPv6 address, if this is one.
    pub fn as_v6(&self) -> Option<SocketAddrV6> {
        if self.family() != k::AF_INET6 || self.len < LEN_V6 {
            return None;
        }
        let b = &self.bytes;
        let mut ip = [0u8; 16];
        ip.copy_from_slice(&b[8..24]);
        Some(SocketAddrV6::new(
            Ipv6Addr::from(ip),
            u16::from_be_bytes([b[2], b[3]]),
            u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            u32::from_ne_bytes([b[24], b[25], b[26], b[27]]),
        ))
    }

    /// A Unix address as `(name, is_abstract)`: an unnamed socket (what
    /// `accept` reports for most Unix peers) has an empty name. `None` for
    /// other families.
    pub fn as_unix(&self) -> Option<(&[u8], bool)> {
        if self.family() != k::AF_UNIX {
            return None;
        }
        let end = (self.len as usize).min(STORAGE);
        let path = &self.bytes[SUN_PATH.min(end)..end];
        match path.split_first() {
            Some((0, name)) => Some((name, true)),
            _ => {
                // A path ends at its first NUL (the kernel may count it).
                let n = path.iter().position(|&c| c == 0).unwrap_or(path.len());
                Some((&path[..n], false))
            }
        }
    }

    /// The bytes the kernel reads.
    pub(crate) fn as_ptr(&self) -> usize {
        self.bytes.as_ptr() as usize
    }

    /// Their length.
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    /// For calls the kernel writes an address into: the buffer and its
    /// length word, which the kernel updates.
    pub(crate) fn out(&mut self) -> (usize, &mut u32) {
        self.len = STORAGE as u32;
        (self.bytes.as_mut_ptr() as usize, &mut self.len)
    }

    /// Whether the kernel wrote a longer address than fits (never for the
    /// families here; such an address is refused rather than truncated).
    pub(crate) fn overflowed(&self) -> bool {
        self.len as usize > STORAGE
    }
}

impl core::fmt::Debug for SockAddr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if let Some(a) = self.as_v4() {
            return write!(f, "{a}");
        }
        if let Some(a) = self.as_v6() {
            return write!(f, "{a}");
        }
        match self.as_unix() {
            Some((name, true)) => write!(f, "@{}", core::str::from_utf8(name).unwrap_or("?")),
            Some((name, false)) => write!(f, "unix:{}", core::str::from_utf8(name).unwrap_or("?")),
            None => write!(f, "family {}", self.family()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_kernel_structs() {
        assert_eq!(LEN_V4 as usize, size_of::<k::sockaddr_in>());
        assert_eq!(LEN_V6 as usize, size_of::<k::sockaddr_in6>());
        assert_eq!(SUN_PATH + UNIX_PATH_MAX, size_of::<k::sockaddr_un>());
        assert!(STORAGE >= size_of::<k::sockaddr_un>());
    }

    #[test]
    fn v4_round_trips_in_network_order() {
        let a = SockAddr::v4("127.0.0.1:8080".parse().unwrap());
        assert_eq!(a.family(), k::AF_INET);
        assert_eq!(&a.bytes[2..8], &[0x1f, 0x90, 127, 0, 0, 1]);
        assert_eq!(a.as_v4(), Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(a.as_v6(), None);
    }

    #[test]
    fn v6_round_trips() {
        let v6 = SocketAddrV6::new(Ipv6Addr::LOCALHOST, 443, 7, 3);
        let a = SockAddr::v6(v6);
        assert_eq!(a.len(), LEN_V6);
        assert_eq!(a.as_v6(), Some(v6));
        assert_eq!(a.as_unix(), None);
    }

    #[test]
    fn unix_paths_and_abstract_names() {
        let p = SockAddr::unix(b"/run/x.sock", false).unwrap();
        assert_eq!(p.len(), 2 + 11 + 1);
        assert_eq!(p.as_unix(), Some((&b"/run/x.sock"[..], false)));
        let n = SockAddr::unix(b"name", true).unwrap();
        assert_eq!(n.len(), 2 + 1 + 4);
        assert_eq!(n.as_unix(), Some((&b"name"[..], true)));
        assert_eq!(SockAddr::unix(b"", false).err(), Some(Errno::EINVAL));
        assert_eq!(SockAddr::unix(b"a\0b", false).err(), Some(Errno::EINVAL));
        assert_eq!(SockAddr::unix(&[b'a'; 108], false).err(), Some(Errno::ENAMETOOLONG));
        assert!(SockAddr::unix(&[b'a'; 107], false).is_ok());
        assert_eq!(SockAddr::unix(&[b'a'; 108], true).err(), Some(Errno::ENAMETOOLONG));
    }

    #[test]
    fn an_unnamed_unix_peer_has_an_empty_name() {
        let mut a = SockAddr::empty();
        a.bytes[0..2].copy_from_slice(&(k::AF_UNIX as u16).to_ne_bytes());
        a.len = 2;
        assert_eq!(a.as_unix(), Some((&b""[..], false)));
        assert_eq!(SockAddr::empty().as_v4(), None);
    }
}
