//! IPv4 headers (RFC 791).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version|  IHL  |Type of Service|          Total Length         |
//! |         Identification        |Flags|      Fragment Offset    |
//! |  Time to Live |    Protocol   |         Header Checksum       |
//! |                       Source Address                          |
//! |                    Destination Address                        |
//! |                    Options                    |    Padding    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Two checked constructors: [`Ipv4Packet::new_checked`] for a packet as received (the whole
//! datagram must be there; Ethernet padding after it is ignored), and [`Ipv4Packet::new_quoted`]
//! for the header quoted inside an ICMP error, where the total length describes the original
//! datagram but only its first bytes were quoted.

use super::{checksum, need, Error, Result};
use std::net::Ipv4Addr;

mod field {
    use std::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;

/// IP protocol numbers used here.
pub mod protocol {
    /// ICMP
    pub const ICMP: u8 = 1;
    /// TCP
    pub const TCP: u8 = 6;
    /// ICMPv6 (next header)
    pub const ICMPV6: u8 = 58;
}

/// A view of an IPv4 packet.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without checks (for emitting).
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps a received datagram: version 4, a possible header length, and the whole total
    /// length present (bytes past it, such as Ethernet padding, are ignored by [`Self::payload`]).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_quoted(buffer)?;
        let len = p.buffer.as_ref().len();
        need("ipv4 datagram", p.total_len() as usize, len)?;
        Ok(p)
    }

    /// Wraps an IPv4 header quoted inside an ICMP error: the header itself must be complete and
    /// sound, but the datagram may be cut anywhere after it.
    pub fn new_quoted(buffer: T) -> Result<Self> {
        let len = buffer.as_ref().len();
        need("ipv4 header", HEADER_LEN, len)?;
        let p = Ipv4Packet { buffer };
        if p.version() != 4 {
            return Err(Error::BadVersion(p.version()));
        }
        let hl = p.header_len();
        if hl < HEADER_LEN || (p.total_len() as usize) < hl {
            return Err(Error::BadHeaderLength { what: "ipv4", len: hl });
        }
        need("ipv4 header", hl, len)?;
        Ok(p)
    }

    /// The version nibble.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// The header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[field::VER_IHL] & 0x0f) as usize) * 4
    }

    /// The total length field.
    pub fn total_len(&self) -> u16 {
        u16::from_be_bytes(self.buffer.as_ref()[field::LENGTH].try_into().unwrap())
    }

    /// The identification field.
    pub fn ident(&self) -> u16 {
        u16::from_be_bytes(self.buffer.as_ref()[field::IDENT].try_into().unwrap())
    }

    /// The fragment offset in 8-byte units; non-zero means this is not a first fragment.
    pub fn frag_offset(&self) -> u16 {
        u16::from_be_bytes(self.buffer.as_ref()[field::FLG_OFF].try_into().unwrap()) & 0x1fff
    }

    /// The "more fragments" flag.
    pub fn more_frags(&self) -> bool {
        self.buffer.as_ref()[field::FLG_OFF.start] & 0x20 != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The protocol of the payload.
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// The header checksum field.
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes(self.buffer.as_ref()[field::CHECKSUM].try_into().unwrap())
    }

    /// Whether the header checksum is right.
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(&self.buffer.as_ref()[..self.header_len()]) == 0
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        <[u8; 4]>::try_from(&self.buffer.as_ref()[field::SRC]).unwrap().into()
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        <[u8; 4]>::try_from(&self.buffer.as_ref()[field::DST]).unwrap().into()
    }

    /// The payload: from the end of the header to the total length, or to the end of the
    /// buffer if that comes first (a quoted header).
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = (self.total_len() as usize).min(b.len());
        &b[self.header_len()..end]
    }
}

impl<'a> Ipv4Packet<&'a [u8]> {
    /// The payload, borrowed for as long as the underlying buffer (not the view).
    pub fn into_payload(self) -> &'a [u8] {
        let b = self.buffer;
        let end = (self.total_len() as usize).min(b.len());
        &b[self.header_len()..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets version 4 and the header length in bytes (a multiple of 4).
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }

    /// Sets the type-of-service byte.
    pub fn set_tos(&mut self, tos: u8) {
        self.buffer.as_mut()[field::TOS] = tos;
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&len.to_be_bytes());
    }

    /// Sets the identification.
    pub fn set_ident(&mut self, id: u16) {
        self.buffer.as_mut()[field::IDENT].copy_from_slice(&id.to_be_bytes());
    }

    /// Sets the don't-fragment flag (and clears the offset and the other flags).
    pub fn set_dont_frag(&mut self, df: bool) {
        let v: u16 = if df { 0x4000 } else { 0 };
        self.buffer.as_mut()[field::FLG_OFF].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the time to live.
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Sets the protocol.
    pub fn set_protocol(&mut self, p: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = p;
    }

    /// Sets the checksum field to a given value.
    pub fn set_checksum(&mut self, c: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.octets());
    }

    /// Computes and stores the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::checksum(&self.buffer.as_ref()[..hl]);
        self.set_checksum(c);
    }

    /// The payload, writable (up to the total length).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        let end = (self.total_len() as usize).min(self.buffer.as_ref().len());
        &mut self.buffer.as_mut()[hl..end]
    }
}

/// The owned face of an IPv4 header without options: the fields this program reads or sets.
///
/// [`Self::parse`] accepts a header with options (they are skipped: the payload starts after
/// them); [`Self::emit`] always writes the 20-byte header, with its checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol of the payload ([`protocol`]).
    pub protocol: u8,
    /// Length of the payload in bytes (total length minus the header).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// Identification.
    pub ident: u16,
    /// The don't-fragment flag.
    pub dont_frag: bool,
}

impl Ipv4Repr {
    /// Reads a checked packet's header. Fragmentation and the checksum are left to the caller
    /// (the receive path counts fragments under their own reason).
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Ipv4Repr {
        Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: (packet.total_len() as usize).saturating_sub(packet.header_len()),
            ttl: packet.ttl(),
            ident: packet.ident(),
            dont_frag: packet.buffer.as_ref()[field::FLG_OFF.start] & 0x40 != 0,
        }
    }

    /// The header's length: what [`Self::emit`] writes (the payload comes after it).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 20-byte header, checksum included, into `packet`; the payload is untouched.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) {
        packet.set_version_and_header_len(HEADER_LEN);
        packet.set_tos(0);
        packet.set_total_len((HEADER_LEN + self.payload_len) as u16);
        packet.set_ident(self.ident);
        packet.set_dont_frag(self.dont_frag);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A SYN from 192.0.2.2 to 198.18.0.1 as mpscan emits it: 20-byte header, TTL 64, DF,
    // total length 60; the checksum field is left zero here.
    static HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x3c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 0xc0, 0x00, 0x02, 0x02, 0xc6, 0x12,
        0x00, 0x01,
    ];

    fn packet(total: usize) -> Vec<u8> {
        let mut v = HEADER.to_vec();
        v.resize(total, 0);
        v
    }

    #[test]
    fn deconstruct() {
        let buf = packet(60);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 60);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), protocol::TCP);
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(p.payload().len(), 40);
        assert_eq!(p.frag_offset(), 0);
    }

    #[test]
    fn construct_and_checksum() {
        let mut buf = [0u8; 20];
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        p.set_version_and_header_len(20);
        p.set_total_len(60);
        p.set_dont_frag(true);
        p.set_ttl(64);
        p.set_protocol(protocol::TCP);
        p.set_src_addr(Ipv4Addr::new(192, 0, 2, 2));
        p.set_dst_addr(Ipv4Addr::new(198, 18, 0, 1));
        p.fill_checksum();
        assert_eq!(&buf[..10], &HEADER[..10]);
        assert_eq!(&buf[12..], &HEADER[12..]);
        // The sum over the header including its checksum folds to zero.
        let p = Ipv4Packet::new_unchecked(&buf[..]);
        assert!(p.verify_checksum());
        // 4500+003c+0000+4000+4006+0000+c000+0202+c612+0001 = 0x24d57 -> 0x4d59 -> !0x4d59
        assert_eq!(p.checksum(), 0xb2a6);
    }

    #[test]
    fn padding_is_not_payload() {
        let mut buf = packet(40);
        buf[3] = 40;
        buf.resize(46, 0xee); // Ethernet minimum-frame padding
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.payload().len(), 20);
    }

    #[test]
    fn truncated_and_malformed() {
        let buf = packet(60);
        assert!(matches!(Ipv4Packet::new_checked(&buf[..19]), Err(Error::Truncated { .. })));
        assert!(matches!(Ipv4Packet::new_checked(&buf[..59]), Err(Error::Truncated { .. })));
        let mut bad = buf.clone();
        bad[0] = 0x65;
        assert_eq!(Ipv4Packet::new_checked(&bad[..]).unwrap_err(), Error::BadVersion(6));
        let mut bad = buf.clone();
        bad[0] = 0x44; // IHL 16 bytes
        assert!(matches!(Ipv4Packet::new_checked(&bad[..]), Err(Error::BadHeaderLength { .. })));
        let mut bad = buf.clone();
        bad[0] = 0x4f; // IHL 60 bytes but total length 60 and the buffer only has 60: fine length-wise
        bad[3] = 20; // total length below the header length
        assert!(matches!(Ipv4Packet::new_checked(&bad[..]), Err(Error::BadHeaderLength { .. })));
    }

    #[test]
    fn quoted_header_may_be_cut() {
        let buf = packet(60);
        // An ICMP error quoting the header and the first 8 bytes of TCP.
        let p = Ipv4Packet::new_quoted(&buf[..28]).unwrap();
        assert_eq!(p.payload().len(), 8);
        assert!(Ipv4Packet::new_checked(&buf[..28]).is_err());
    }

    #[test]
    fn repr_parse_and_emit() {
        let repr = Ipv4Repr {
            src_addr: Ipv4Addr::new(192, 0, 2, 2),
            dst_addr: Ipv4Addr::new(198, 18, 0, 1),
            protocol: protocol::TCP,
            payload_len: 40,
            ttl: 64,
            ident: 0,
            dont_frag: true,
        };
        let buf = packet(60);
        assert_eq!(Ipv4Repr::parse(&Ipv4Packet::new_checked(&buf[..]).unwrap()), repr);
        let mut out = [0u8; 20];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]));
        // The vector with its checksum (worked out in `construct_and_checksum`) filled in.
        let mut expected = HEADER;
        expected[10..12].copy_from_slice(&[0xb2, 0xa6]);
        assert_eq!(out, expected);
        assert_eq!(repr.buffer_len(), 20);
    }
}
