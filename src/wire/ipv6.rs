//! IPv6 fixed headers (RFC 8200 §3).
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Traffic Class |           Flow Label                  |
//! |         Payload Length        |  Next Header  |   Hop Limit   |
//! |                  Source Address (128 bits)                    |
//! |               Destination Address (128 bits)                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Extension headers are not walked: a SYN-ACK, RST or ICMPv6 error with an extension header
//! is not a response a probe provokes, and is counted as not ours by the receiver.

use super::{need, Error, Result};
use std::net::Ipv6Addr;

mod field {
    use std::ops::Range;
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;

/// A view of an IPv6 packet.
#[derive(Debug, Clone, Copy)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps a buffer without checks (for emitting).
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps a received packet: version 6 and the whole payload length present.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_quoted(buffer)?;
        need("ipv6 packet", HEADER_LEN + p.payload_len() as usize, p.buffer.as_ref().len())?;
        Ok(p)
    }

    /// Wraps a header quoted in an ICMPv6 error: the fixed header must be whole, the payload may
    /// be cut.
    pub fn new_quoted(buffer: T) -> Result<Self> {
        need("ipv6 header", HEADER_LEN, buffer.as_ref().len())?;
        let p = Ipv6Packet { buffer };
        if p.version() != 6 {
            return Err(Error::BadVersion(p.version()));
        }
        Ok(p)
    }

    /// The version nibble.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// Payload length.
    pub fn payload_len(&self) -> u16 {
        u16::from_be_bytes(self.buffer.as_ref()[field::LENGTH].try_into().unwrap())
    }

    /// Next header (the upper-layer protocol when there is no extension header).
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT_HDR]
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        <[u8; 16]>::try_from(&self.buffer.as_ref()[field::SRC]).unwrap().into()
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        <[u8; 16]>::try_from(&self.buffer.as_ref()[field::DST]).unwrap().into()
    }

    /// The payload, up to the payload length or the end of the buffer.
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = (HEADER_LEN + self.payload_len() as usize).min(b.len());
        &b[HEADER_LEN..end]
    }
}

impl<'a> Ipv6Packet<&'a [u8]> {
    /// The payload, borrowed for as long as the underlying buffer (not the view).
    pub fn into_payload(self) -> &'a [u8] {
        let b = self.buffer;
        let end = (HEADER_LEN + self.payload_len() as usize).min(b.len());
        &b[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets version 6, traffic class 0 and flow label 0.
    pub fn set_version(&mut self) {
        self.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&[0x60, 0, 0, 0]);
    }

    /// Sets the payload length.
    pub fn set_payload_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&len.to_be_bytes());
    }

    /// Sets the next header.
    pub fn set_next_header(&mut self, nh: u8) {
        self.buffer.as_mut()[field::NXT_HDR] = nh;
    }

    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, h: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = h;
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.octets());
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = (HEADER_LEN + self.payload_len() as usize).min(self.buffer.as_ref().len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// The owned face of an IPv6 fixed header (traffic class and flow label zero; no extension
/// headers are written or walked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    /// Source address.
    pub src_addr: Ipv6Addr,
    /// Destination address.
    pub dst_addr: Ipv6Addr,
    /// Next header (the payload's protocol).
    pub next_header: u8,
    /// Length of the payload in bytes.
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
}

impl Ipv6Repr {
    /// Reads a checked packet's fixed header.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv6Packet<T>) -> Ipv6Repr {
        Ipv6Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: packet.payload_len() as usize,
            hop_limit: packet.hop_limit(),
        }
    }

    /// The header's length: what [`Self::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 40-byte header into `packet`; the payload is untouched.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv6Packet<T>) {
        packet.set_version();
        packet.set_payload_len(self.payload_len as u16);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn construct_then_deconstruct() {
        let mut buf = [0u8; 60];
        let mut p = Ipv6Packet::new_unchecked(&mut buf[..]);
        p.set_version();
        p.set_payload_len(20);
        p.set_next_header(6);
        p.set_hop_limit(64);
        p.set_src_addr("2001:db8::2".parse().unwrap());
        p.set_dst_addr("2001:db8:1::1".parse().unwrap());
        assert_eq!(&buf[..8], &[0x60, 0, 0, 0, 0, 20, 6, 64]);
        assert_eq!(&buf[8..12], &[0x20, 0x01, 0x0d, 0xb8]);
        let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.dst_addr(), "2001:db8:1::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.payload().len(), 20);
    }

    #[test]
    fn truncated_and_wrong_version() {
        let mut buf = [0u8; 60];
        buf[0] = 0x60;
        buf[5] = 21;
        assert!(matches!(Ipv6Packet::new_checked(&buf[..]), Err(Error::Truncated { .. })));
        assert!(Ipv6Packet::new_quoted(&buf[..]).is_ok());
        assert!(Ipv6Packet::new_quoted(&buf[..39]).is_err());
        buf[0] = 0x40;
        assert_eq!(Ipv6Packet::new_quoted(&buf[..]).unwrap_err(), Error::BadVersion(4));
    }

    // A probe's IPv6 header: 2001:db8::2 -> 2001:db8:1::1, TCP, 44 bytes of payload, hop limit 64.
    static HEADER: [u8; 40] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x06, 0x40, // version, flow, payload length, TCP, hop limit
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // source
        0x20, 0x01, 0x0d, 0xb8, 0, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // destination
    ];

    #[test]
    fn repr_parse_and_emit() {
        let repr = Ipv6Repr {
            src_addr: "2001:db8::2".parse().unwrap(),
            dst_addr: "2001:db8:1::1".parse().unwrap(),
            next_header: 6,
            payload_len: 44,
            hop_limit: 64,
        };
        let mut out = [0xffu8; 40];
        repr.emit(&mut Ipv6Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, HEADER);
        assert_eq!(Ipv6Repr::parse(&Ipv6Packet::new_quoted(&HEADER[..]).unwrap()), repr);
        assert_eq!(repr.buffer_len(), 40);
    }
}
