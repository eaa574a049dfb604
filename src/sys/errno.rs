//! `Errno`: a kernel error number with its name.
//!
//! Raw syscall returns are decoded into `Result<_, Errno>` in one place
//! (`sys::call`); everything above only ever sees this type. It never
//! allocates and its `Display` prints `EBADF (Bad file descriptor)`.

use core::fmt;
use linux_raw_sys::errno as e;

/// An error number returned by the kernel, e.g. [`Errno::EBADF`].
///
/// ```
/// use linux_event::Errno;
/// assert_eq!(Errno::EBADF.name(), Some("EBADF"));
/// assert_eq!(Errno::EBADF.to_string(), "EBADF (Bad file descriptor)");
/// ```
#[repr(transparent)]
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Errno(u16);

macro_rules! named {
    ($($name:ident),* $(,)?) => {
        impl Errno {
            $(
                #[doc = concat!("`", stringify!($name), "`: ", "see `errno(3)`.")]
                pub const $name: Errno = Errno(e::$name as u16);
            )*
        }
    };
}

named!(
    EPERM,
    ENOENT,
    ESRCH,
    EINTR,
    EIO,
    EBADF,
    ECHILD,
    EAGAIN,
    ENOMEM,
    EACCES,
    EFAULT,
    EBUSY,
    EEXIST,
    ENODEV,
    ENOTDIR,
    EINVAL,
    ENFILE,
    EMFILE,
    ENOSPC,
    EPIPE,
    ERANGE,
    ENOSYS,
    ELOOP,
    EOVERFLOW,
    ENOTSOCK,
    EOPNOTSUPP,
    ECONNRESET,
    ETIMEDOUT,
    ECONNREFUSED,
    EINPROGRESS,
    ECANCELED,
    E2BIG,
    ENOEXEC,
    ESTALE,
    ETXTBSY,
    ENAMETOOLONG,
    ENOTTY,
    ENXIO,
    // File operations (the `files` companion) report these too.
    EISDIR,
    ENOTEMPTY,
    EXDEV,
    EROFS,
    EFBIG,
    ESPIPE,
    EMLINK,
    EDQUOT,
    // Sockets (the `net` companions name these in their results).
    EADDRINUSE,
    EADDRNOTAVAIL,
    EAFNOSUPPORT,
    EALREADY,
    ECONNABORTED,
    EHOSTUNREACH,
    EISCONN,
    ENETUNREACH,
    ENOBUFS,
    ENOTCONN,
    EPROTO,
);

impl Errno {
    /// Wraps a raw error number (the positive value, as in `errno`).
    pub const fn from_raw(code: u16) -> Errno {
        Errno(code)
    }

    /// The raw, positive error number.
    pub const fn raw(self) -> u16 {
        self.0
    }

    /// The symbolic name (`"EBADF"`), or `None` for a number Linux does not define.
    pub fn name(self) -> Option<&'static str> {
        entry(self.0).map(|(name, _)| name)
    }

    /// The human description (`"Bad file descriptor"`), as `strerror(3)` gives it.
    pub fn description(self) -> Option<&'static str> {
        entry(self.0).map(|(_, desc)| desc)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.name(), self.description()) {
            (Some(name), Some(desc)) => write!(f, "{name} ({desc})"),
            _ => write!(f, "errno {}", self.0),
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Errno {}

#[cfg(feature = "std")]
impl From<Errno> for std::io::Error {
    fn from(err: Errno) -> Self {
        std::io::Error::from_raw_os_error(i32::from(err.0))
    }
}

/// Names and descriptions, `NAME|Description\n` each, in one string: a
/// table of `&str` pairs would cost 32 bytes of pointers per entry in every
/// static binary that prints an errno. The same numbering on every
/// architecture we build for (asm-generic).
const TEXT: &str = concat!(
    "EPERM|Operation not permitted\n",
    "ENOENT|No such file or directory\n",
    "ESRCH|No such process\n",
    "EINTR|Interrupted system call\n",
    "EIO|Input/output error\n",
    "ENXIO|No such device or address\n",
    "E2BIG|Argument list too long\n",
    "ENOEXEC|Exec format error\n",
    "EBADF|Bad file descriptor\n",
    "ECHILD|No child processes\n",
    "EAGAIN|Resource temporarily unavailable\n",
    "ENOMEM|Cannot allocate memory\n",
    "EACCES|Permission denied\n",
    "EFAULT|Bad address\n",
    "ENOTBLK|Block device required\n",
    "EBUSY|Device or resource busy\n",
    "EEXIST|File exists\n",
    "EXDEV|Invalid cross-device link\n",
    "ENODEV|No such device\n",
    "ENOTDIR|Not a directory\n",
    "EISDIR|Is a directory\n",
    "EINVAL|Invalid argument\n",
    "ENFILE|Too many open files in system\n",
    "EMFILE|Too many open files\n",
    "ENOTTY|Inappropriate ioctl for device\n",
    "ETXTBSY|Text file busy\n",
    "EFBIG|File too large\n",
    "ENOSPC|No space left on device\n",
    "ESPIPE|Illegal seek\n",
    "EROFS|Read-only file system\n",
    "EMLINK|Too many links\n",
    "EPIPE|Broken pipe\n",
    "EDOM|Numerical argument out of domain\n",
    "ERANGE|Numerical result out of range\n",
    "EDEADLK|Resource deadlock avoided\n",
    "ENAMETOOLONG|File name too long\n",
    "ENOLCK|No locks available\n",
    "ENOSYS|Function not implemented\n",
    "ENOTEMPTY|Directory not empty\n",
    "ELOOP|Too many levels of symbolic links\n",
    "ENOMSG|No message of desired type\n",
    "EIDRM|Identifier removed\n",
    "ECHRNG|Channel number out of range\n",
    "EL2NSYNC|Level 2 not synchronized\n",
    "EL3HLT|Level 3 halted\n",
    "EL3RST|Level 3 reset\n",
    "ELNRNG|Link number out of range\n",
    "EUNATCH|Protocol driver not attached\n",
    "ENOCSI|No CSI structure available\n",
    "EL2HLT|Level 2 halted\n",
    "EBADE|Invalid exchange\n",
    "EBADR|Invalid request descriptor\n",
    "EXFULL|Exchange full\n",
    "ENOANO|No anode\n",
    "EBADRQC|Invalid request code\n",
    "EBADSLT|Invalid slot\n",
    "EBFONT|Bad font file format\n",
    "ENOSTR|Device not a stream\n",
    "ENODATA|No data available\n",
    "ETIME|Timer expired\n",
    "ENOSR|Out of streams resources\n",
    "ENONET|Machine is not on the network\n",
    "ENOPKG|Package not installed\n",
    "EREMOTE|Object is remote\n",
    "ENOLINK|Link has been severed\n",
    "EADV|Advertise error\n",
    "ESRMNT|Srmount error\n",
    "ECOMM|Communication error on send\n",
    "EPROTO|Protocol error\n",
    "EMULTIHOP|Multihop attempted\n",
    "EDOTDOT|RFS specific error\n",
    "EBADMSG|Bad message\n",
    "EOVERFLOW|Value too large for defined data type\n",
    "ENOTUNIQ|Name not unique on network\n",
    "EBADFD|File descriptor in bad state\n",
    "EREMCHG|Remote address changed\n",
    "ELIBACC|Can not access a needed shared library\n",
    "ELIBBAD|Accessing a corrupted shared library\n",
    "ELIBSCN|.lib section in a.out corrupted\n",
    "ELIBMAX|Attempting to link in too many shared libraries\n",
    "ELIBEXEC|Cannot exec a shared library directly\n",
    "EILSEQ|Invalid or incomplete multibyte or wide character\n",
    "ERESTART|Interrupted system call should be restarted\n",
    "ESTRPIPE|Streams pipe error\n",
    "EUSERS|Too many users\n",
    "ENOTSOCK|Socket operation on non-socket\n",
    "EDESTADDRREQ|Destination address required\n",
    "EMSGSIZE|Message too long\n",
    "EPROTOTYPE|Protocol wrong type for socket\n",
    "ENOPROTOOPT|Protocol not available\n",
    "EPROTONOSUPPORT|Protocol not supported\n",
    "ESOCKTNOSUPPORT|Socket type not supported\n",
    "EOPNOTSUPP|Operation not supported\n",
    "EPFNOSUPPORT|Protocol family not supported\n",
    "EAFNOSUPPORT|Address family not supported by protocol\n",
    "EADDRINUSE|Address already in use\n",
    "EADDRNOTAVAIL|Cannot assign requested address\n",
    "ENETDOWN|Network is down\n",
    "ENETUNREACH|Network is unreachable\n",
    "ENETRESET|Network dropped connection on reset\n",
    "ECONNABORTED|Software caused connection abort\n",
    "ECONNRESET|Connection reset by peer\n",
    "ENOBUFS|No buffer space available\n",
    "EISCONN|Transport endpoint is already connected\n",
    "ENOTCONN|Transport endpoint is not connected\n",
    "ESHUTDOWN|Cannot send after transport endpoint shutdown\n",
    "ETOOMANYREFS|Too many references: cannot splice\n",
    "ETIMEDOUT|Connection timed out\n",
    "ECONNREFUSED|Connection refused\n",
    "EHOSTDOWN|Host is down\n",
    "EHOSTUNREACH|No route to host\n",
    "EALREADY|Operation already in progress\n",
    "EINPROGRESS|Operation now in progress\n",
    "ESTALE|Stale file handle\n",
    "EUCLEAN|Structure needs cleaning\n",
    "ENOTNAM|Not a XENIX named type file\n",
    "ENAVAIL|No XENIX semaphores available\n",
    "EISNAM|Is a named type file\n",
    "EREMOTEIO|Remote I/O error\n",
    "EDQUOT|Disk quota exceeded\n",
    "ENOMEDIUM|No medium found\n",
    "EMEDIUMTYPE|Wrong medium type\n",
    "ECANCELED|Operation canceled\n",
    "ENOKEY|Required key not available\n",
    "EKEYEXPIRED|Key has expired\n",
    "EKEYREVOKED|Key has been revoked\n",
    "EKEYREJECTED|Key was rejected by service\n",
    "EOWNERDEAD|Owner died\n",
    "ENOTRECOVERABLE|State not recoverable\n",
    "ERFKILL|Operation not possible due to RF-kill\n",
    "EHWPOISON|Memory page has hardware error\n",
);

/// Where each number's entry starts in `TEXT`; `NONE` for unused numbers.
const OFFSETS: [u16; 134] = [
    NONE, 0, 30, 63, 85, 115, 138, 170, 199, 225, 251, 277, 317, 347, 372, 391, 421, 451, 470, 502, 524, 548, 570, 594,
    631, 658, 696, 719, 740, 771, 791, 819, 841, 859, 897, 934, 968, 1000, 1026, 1058, 1088, NONE, 1128, 1162, 1187,
    1222, 1256, 1278, 1299, 1331, 1368, 1402, 1424, 1447, 1480, 1501, 1517, 1546, NONE, 1567, 1595, 1622, 1648, 1668,
    1699, 1736, 1765, 1790, 1820, 1841, 1862, 1896, 1918, 1947, 1974, 1994, 2042, 2078, 2114, 2145, 2192, 2237, 2277,
    2333, 2380, 2437, 2490, 2518, 2540, 2580, 2622, 2648, 2690, 2725, 2764, 2806, 2841, 2884, 2938, 2972, 3018, 3043,
    3078, 3124, 3170, 3206, 3240, 3288, 3333, 3389, 3437, 3468, 3500, 3523, 3553, 3592, 3630, 3655, 3688, 3724, 3762,
    3790, 3817, 3844, 3870, 3900, 3929, 3963, 3991, 4024, 4065, 4087, 4125, 4171,
];
const NONE: u16 = u16::MAX;

/// The `(name, description)` of a number, without any panicking path.
fn entry(code: u16) -> Option<(&'static str, &'static str)> {
    let start = usize::from(*OFFSETS.get(usize::from(code))?);
    if start == usize::from(NONE) {
        return None;
    }
    let rest = TEXT.get(start..)?;
    // Plain scans, not `split_once`: that links core's memchr (about 700
    // bytes) into a static program that has no other use for it.
    let end = rest.bytes().position(|b| b == b'\n')?;
    let bar = rest.bytes().take(end).position(|b| b == b'|')?;
    Some((rest.get(..bar)?, rest.get(bar + 1..end)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_error() {
        assert_eq!(std::format!("{}", Errno::EBADF), "EBADF (Bad file descriptor)");
        assert_eq!(std::format!("{:?}", Errno::EAGAIN), "EAGAIN");
        assert_eq!(std::format!("{}", Errno::from_raw(41)), "errno 41");
        assert_eq!(std::format!("{}", Errno::from_raw(9999)), "errno 9999");
    }

    #[test]
    fn every_number_linux_defines_has_a_name_and_text() {
        let named = (0..200u16).filter(|&n| Errno::from_raw(n).name().is_some()).count();
        assert_eq!(named, 131, "1..=133 less the unused 41 and 58");
        assert_eq!(Errno::from_raw(41).name(), None);
        assert_eq!(Errno::from_raw(0).name(), None);
        assert_eq!(Errno::from_raw(u16::MAX).description(), None);
        assert_eq!(Errno::from_raw(e::EHWPOISON as u16).description(), Some("Memory page has hardware error"));
    }

    #[test]
    fn table_agrees_with_kernel_numbers() {
        assert_eq!(Errno::EPERM.raw(), 1);
        assert_eq!(Errno::EAGAIN.name(), Some("EAGAIN"));
        assert_eq!(Errno::ENOSYS.name(), Some("ENOSYS"));
        assert_eq!(Errno::ECANCELED.name(), Some("ECANCELED"));
        assert_eq!(Errno::from_raw(e::EHWPOISON as u16).name(), Some("EHWPOISON"));
    }
}
