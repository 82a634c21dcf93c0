//! ICMP (RFC 792) and ICMPv6 (RFC 4443) error messages: the common 8-byte header and the quoted
//! original datagram.
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! |             unused (or next-hop MTU, or pointer)              |
//! |      Internet Header + 64 bits of Original Data Datagram      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Both versions share this layout for their error messages (destination unreachable, time
//! exceeded, parameter problem), so one view serves both; the caller knows which it is from the IP
//! layer. [`effect`] says which types end a SYN probe and which end nothing.

use super::{checksum, need, Result};
use std::net::IpAddr;

mod field {
    use std::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const REST: Range<usize> = 4..8;
    pub const QUOTE: usize = 8;
}

/// Length of the ICMP header before the quoted datagram.
pub const HEADER_LEN: usize = field::QUOTE;

/// ICMPv4 destination unreachable.
pub const V4_DEST_UNREACHABLE: u8 = 3;
/// ICMPv4 source quench (deprecated by RFC 6633; a few old routers still send it).
pub const V4_SOURCE_QUENCH: u8 = 4;
/// ICMPv4 redirect.
pub const V4_REDIRECT: u8 = 5;
/// ICMPv4 time exceeded (code 0: TTL exceeded in transit, e.g. a routing loop).
pub const V4_TIME_EXCEEDED: u8 = 11;
/// ICMPv4 parameter problem.
pub const V4_PARAMETER_PROBLEM: u8 = 12;
/// ICMPv6 destination unreachable.
pub const V6_DEST_UNREACHABLE: u8 = 1;
/// ICMPv6 packet too big.
pub const V6_PACKET_TOO_BIG: u8 = 2;
/// ICMPv6 time exceeded (code 0: hop limit exceeded in transit).
pub const V6_TIME_EXCEEDED: u8 = 3;
/// ICMPv6 parameter problem.
pub const V6_PARAMETER_PROBLEM: u8 = 4;
/// ICMPv6 redirect (neighbour discovery, RFC 4861; its body is not a quote at offset 8).
pub const V6_REDIRECT: u8 = 137;
/// ICMPv4 echo request (used by tests and the lab).
pub const V4_ECHO_REQUEST: u8 = 8;

/// What an ICMP(v6) message of a given type means for a TCP SYN it quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// An error that ends the probe: destination unreachable (every code), time exceeded,
    /// parameter problem. The probe's target gets a row (class `unreachable`).
    EndsProbe,
    /// A message that ends nothing (source quench, redirect, packet too big): counted under its
    /// own reason, no row.
    NoEffect(&'static str),
    /// Not an error about a datagram we sent (echo, neighbour discovery, ...).
    NotAnError,
}

/// The [`Effect`] of an ICMPv4 (`v6 == false`) or ICMPv6 message of type `msg_type`. These are
/// the types the capture filter passes (zmap accepts 3, 4, 5 and 11 as answers to a SYN).
pub fn effect(v6: bool, msg_type: u8) -> Effect {
    match (v6, msg_type) {
        (false, V4_DEST_UNREACHABLE | V4_TIME_EXCEEDED | V4_PARAMETER_PROBLEM) => Effect::EndsProbe,
        (true, V6_DEST_UNREACHABLE | V6_TIME_EXCEEDED | V6_PARAMETER_PROBLEM) => Effect::EndsProbe,
        (false, V4_SOURCE_QUENCH) => Effect::NoEffect("icmp-source-quench"),
        (false, V4_REDIRECT) | (true, V6_REDIRECT) => Effect::NoEffect("icmp-redirect"),
        (true, V6_PACKET_TOO_BIG) => Effect::NoEffect("icmp-packet-too-big"),
        _ => Effect::NotAnError,
    }
}

/// A view of an ICMP or ICMPv6 message.
#[derive(Debug, Clone, Copy)]
pub struct IcmpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    /// Wraps a buffer without checks (for emitting).
    pub fn new_unchecked(buffer: T) -> Self {
        IcmpPacket { buffer }
    }

    /// Wraps a received message: the 8-byte header must be there.
    pub fn new_checked(buffer: T) -> Result<Self> {
        need("icmp header", HEADER_LEN, buffer.as_ref().len())?;
        Ok(IcmpPacket { buffer })
    }

    /// Message type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Message code.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes(self.buffer.as_ref()[field::CHECKSUM].try_into().unwrap())
    }

    /// The four bytes after the checksum.
    pub fn rest_of_header(&self) -> [u8; 4] {
        self.buffer.as_ref()[field::REST].try_into().unwrap()
    }

    /// The quoted datagram (for error messages) or the echo data.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::QUOTE..]
    }

    /// Whether an ICMPv4 checksum is right (ICMPv6 includes a pseudo-header; not checked here).
    pub fn verify_checksum_v4(&self) -> bool {
        checksum::checksum(self.buffer.as_ref()) == 0
    }
}

impl<'a> IcmpPacket<&'a [u8]> {
    /// The quoted datagram, borrowed for as long as the underlying buffer (not the view).
    pub fn into_payload(self) -> &'a [u8] {
        &self.buffer[field::QUOTE..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    /// Sets type and code.
    pub fn set_type_code(&mut self, t: u8, c: u8) {
        let b = self.buffer.as_mut();
        b[field::TYPE] = t;
        b[field::CODE] = c;
    }

    /// Sets the four bytes after the checksum.
    pub fn set_rest_of_header(&mut self, r: [u8; 4]) {
        self.buffer.as_mut()[field::REST].copy_from_slice(&r);
    }

    /// The bytes after the header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::QUOTE..]
    }

    /// Computes and stores the ICMPv4 checksum over the whole buffer.
    pub fn fill_checksum_v4(&mut self) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(self.buffer.as_ref());
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
}

/// The owned face of an ICMP or ICMPv6 message: type, code, the 4 bytes after the checksum, and
/// the body (for an error, the quoted datagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpRepr<'a> {
    /// The message type.
    pub msg_type: u8,
    /// The code.
    pub code: u8,
    /// The rest of the header (unused by the errors handled here, the MTU for packet too big).
    pub rest_of_header: [u8; 4],
    /// The body: for an error, as much of the offending datagram as the sender quoted.
    pub payload: &'a [u8],
}

impl<'a> IcmpRepr<'a> {
    /// Reads a checked message. The checksum is left to the caller.
    pub fn parse(packet: &IcmpPacket<&'a [u8]>) -> IcmpRepr<'a> {
        IcmpRepr {
            msg_type: packet.msg_type(),
            code: packet.code(),
            rest_of_header: packet.rest_of_header(),
            payload: packet.into_payload(),
        }
    }

    /// The message's length: what [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Writes the message into `packet`, whose buffer must be exactly [`Self::buffer_len`] bytes,
    /// with its checksum: over the message alone for ICMP (IPv4 `src` and `dst`), over the
    /// IPv6 pseudo-header too for ICMPv6 (RFC 4443 §2.3).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut IcmpPacket<T>, src: IpAddr, dst: IpAddr) {
        packet.set_type_code(self.msg_type, self.code);
        packet.set_rest_of_header(self.rest_of_header);
        packet.payload_mut().copy_from_slice(self.payload);
        packet.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&[0, 0]);
        let b = packet.buffer.as_ref();
        let acc = match src {
            IpAddr::V6(_) => checksum::pseudo_header(src, dst, super::ipv4::protocol::ICMPV6, b.len()),
            IpAddr::V4(_) => 0,
        };
        let c = checksum::finish(checksum::sum(acc, b));
        packet.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn construct_then_deconstruct() {
        let mut buf = [0u8; 12];
        let mut p = IcmpPacket::new_unchecked(&mut buf[..]);
        p.set_type_code(V4_DEST_UNREACHABLE, 13); // communication administratively prohibited
        p.payload_mut().copy_from_slice(&[0x45, 0, 0, 0x3c]);
        p.fill_checksum_v4();
        let p = IcmpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!((p.msg_type(), p.code()), (3, 13));
        assert_eq!(p.payload(), &[0x45, 0, 0, 0x3c]);
        assert!(p.verify_checksum_v4());
        // 030d + 4500 + 003c = 4849, complemented b7b6.
        assert_eq!(&buf[..4], &[3, 13, 0xb7, 0xb6]);
    }

    #[test]
    fn effects_by_type() {
        for t in [3, 11, 12] {
            assert_eq!(effect(false, t), Effect::EndsProbe, "ICMP {t}");
        }
        for t in [1, 3, 4] {
            assert_eq!(effect(true, t), Effect::EndsProbe, "ICMPv6 {t}");
        }
        assert_eq!(effect(false, 4), Effect::NoEffect("icmp-source-quench"));
        assert_eq!(effect(false, 5), Effect::NoEffect("icmp-redirect"));
        assert_eq!(effect(true, 137), Effect::NoEffect("icmp-redirect"));
        assert_eq!(effect(true, 2), Effect::NoEffect("icmp-packet-too-big"));
        // Echo, router advertisement, ICMPv6 types whose numbers are ICMPv4 errors.
        for (v6, t) in
            [(false, 0), (false, 8), (false, 1), (true, 128), (true, 129), (true, 134), (true, 11), (true, 12)]
        {
            assert_eq!(effect(v6, t), Effect::NotAnError, "v6 {v6} type {t}");
        }
    }

    #[test]
    fn truncated() {
        assert!(IcmpPacket::new_checked(&[3u8, 1, 0, 0, 0, 0, 0][..]).is_err());
    }

    // A router's "administratively prohibited" quoting the first 4 bytes of an IPv4 header;
    // checksum 0x030d + 0x4500 + 0x003c = 0x4849, complemented 0xb7b6.
    static UNREACHABLE: [u8; 12] = [0x03, 0x0d, 0xb7, 0xb6, 0, 0, 0, 0, 0x45, 0x00, 0x00, 0x3c];

    #[test]
    fn repr_parse_and_emit_v4() {
        let repr = IcmpRepr { msg_type: 3, code: 13, rest_of_header: [0; 4], payload: &UNREACHABLE[8..] };
        assert_eq!(IcmpRepr::parse(&IcmpPacket::new_checked(&UNREACHABLE[..]).unwrap()), repr);
        let mut out = [0xffu8; 12];
        let (a, b) = (std::net::Ipv4Addr::new(192, 0, 2, 1), std::net::Ipv4Addr::new(192, 0, 2, 2));
        repr.emit(&mut IcmpPacket::new_unchecked(&mut out[..]), a.into(), b.into());
        assert_eq!(out, UNREACHABLE);
        assert_eq!(repr.buffer_len(), 12);
    }

    #[test]
    fn repr_emit_v6_covers_the_pseudo_header() {
        let repr =
            IcmpRepr { msg_type: V6_DEST_UNREACHABLE, code: 1, rest_of_header: [0; 4], payload: &[0x60, 0, 0, 0] };
        let (a, b): (std::net::Ipv6Addr, std::net::Ipv6Addr) =
            ("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap());
        let mut out = [0u8; 12];
        repr.emit(&mut IcmpPacket::new_unchecked(&mut out[..]), a.into(), b.into());
        let acc = checksum::pseudo_header_v6(a, b, 58, 12);
        assert_eq!(checksum::finish(checksum::sum(acc, &out)), 0);
        assert_ne!(checksum::checksum(&out), 0);
    }
}
