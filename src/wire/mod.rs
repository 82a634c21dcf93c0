//! The wire layer: zero-copy, checked views of the packets a scan sends and receives.
//!
//! Each protocol has two faces, in the manner of smoltcp:
//!
//! * a view, `Packet<T: AsRef<[u8]>>`, that reads (and, where `T: AsMut<[u8]>`, writes) fields in
//!   place. `new_checked` verifies every length the getters rely on, so **after `new_checked`
//!   succeeds no getter can panic**: use it on anything that came from the network.
//!   `new_unchecked` is for emitting into a buffer the caller sized itself.
//! * where building is needed, a small owned `Repr` with `parse`, `buffer_len` and `emit`.
//!
//! Errors are structured ([`Error`]) and every variant has a stable short [`Error::reason`]
//! string: rejected responses are counted by reason in the scan's metadata.
//!
//! Byte ranges are named in a private `field` module in each file; no magic offsets elsewhere.

pub mod checksum;
pub mod ethernet;
pub mod frame;
pub mod icmp;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod mptcp;
pub mod tcp;
pub mod tcp_option;

pub use ethernet::{EtherType, EthernetFrame, EthernetRepr};
pub use frame::{FrameRepr, L4Repr};
pub use icmp::{IcmpPacket, IcmpRepr};
pub use ip::IpRepr;
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6Packet, Ipv6Repr};
pub use mptcp::MpCapable;
pub use tcp::{TcpFlags, TcpPacket, TcpRepr};
pub use tcp_option::{TcpOption, TcpOptions};

use std::fmt;

/// Why bytes could not be read as the packet they claim to be.
///
/// Length problems and content problems are kept apart, and each carries the offending values,
/// because a scan reports what it rejected and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The buffer ends before the structure does.
    Truncated {
        /// Which structure was cut off.
        what: &'static str,
        /// Bytes the structure needs.
        need: usize,
        /// Bytes there are.
        have: usize,
    },
    /// A header's own length field is impossible (shorter than the fixed header, or longer than
    /// the packet).
    BadHeaderLength {
        /// Which header.
        what: &'static str,
        /// The length it claims, in bytes.
        len: usize,
    },
    /// The IP version nibble is not the one expected.
    BadVersion(u8),
    /// A TCP option's length byte is below 2 or runs past the option area.
    BadOptionLength {
        /// Option kind.
        kind: u8,
        /// The length byte.
        len: u8,
    },
}

impl Error {
    /// A short, stable name for this error, used as a counter key in the metadata.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Truncated { .. } => "truncated",
            Error::BadHeaderLength { .. } => "bad-header-length",
            Error::BadVersion(_) => "bad-ip-version",
            Error::BadOptionLength { .. } => "bad-option-length",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { what, need, have } => {
                write!(f, "{what} truncated: needs {need} bytes, has {have}")
            }
            Error::BadHeaderLength { what, len } => write!(f, "{what} header length {len} is impossible"),
            Error::BadVersion(v) => write!(f, "IP version {v} is not the one expected"),
            Error::BadOptionLength { kind, len } => write!(f, "TCP option kind {kind} has bad length {len}"),
        }
    }
}

impl std::error::Error for Error {}

/// Result of the wire layer.
pub type Result<T> = std::result::Result<T, Error>;

/// Fails with [`Error::Truncated`] unless `have >= need`.
#[inline]
pub(crate) fn need(what: &'static str, need: usize, have: usize) -> Result<()> {
    if have < need {
        Err(Error::Truncated { what, need, have })
    } else {
        Ok(())
    }
}

/// Formats bytes as lowercase hex (the CSV's `options` column and the dry-run output).
pub fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}
