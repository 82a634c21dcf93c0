//! TCP headers (RFC 9293 §3.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Source Port          |       Destination Port        |
//! |                        Sequence Number                        |
//! |                    Acknowledgment Number                      |
//! |  Data |       |C|E|U|A|P|R|S|F|                               |
//! | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//! |           Checksum            |         Urgent Pointer        |
//! |                    Options                    |    Padding    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! [`TcpPacket`] views a whole segment; [`TcpQuote`] views the first 8 bytes of a segment quoted
//! in an ICMP error (ports and sequence number: all that RFC 792 promises to quote).

use super::{checksum, need, tcp_option::TcpOptions, Error, Result};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

mod field {
    use std::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ: Range<usize> = 4..8;
    pub const ACK: Range<usize> = 8..12;
    pub const OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
    pub const OPTIONS: usize = 20;
}

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = 20;
/// Longest TCP header (data offset 15).
pub const MAX_HEADER_LEN: usize = 60;

/// The TCP flag bits (the 13th byte of the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN
    pub const FIN: u8 = 0x01;
    /// SYN
    pub const SYN: u8 = 0x02;
    /// RST
    pub const RST: u8 = 0x04;
    /// PSH
    pub const PSH: u8 = 0x08;
    /// ACK
    pub const ACK: u8 = 0x10;

    /// Whether SYN is set.
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    /// Whether ACK is set.
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
    /// Whether RST is set.
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    /// Whether FIN is set.
    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
}

/// A view of a TCP segment.
#[derive(Debug, Clone, Copy)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps a buffer without checks (for emitting).
    pub fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps a received segment: a fixed header, a possible data offset, all options present.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let len = buffer.as_ref().len();
        need("tcp header", HEADER_LEN, len)?;
        let p = TcpPacket { buffer };
        let hl = p.header_len();
        if hl < HEADER_LEN {
            return Err(Error::BadHeaderLength { what: "tcp", len: hl });
        }
        need("tcp options", hl, len)?;
        Ok(p)
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        u16::from_be_bytes(self.buffer.as_ref()[field::SRC_PORT].try_into().unwrap())
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        u16::from_be_bytes(self.buffer.as_ref()[field::DST_PORT].try_into().unwrap())
    }

    /// Sequence number.
    pub fn seq(&self) -> u32 {
        u32::from_be_bytes(self.buffer.as_ref()[field::SEQ].try_into().unwrap())
    }

    /// Acknowledgment number.
    pub fn ack(&self) -> u32 {
        u32::from_be_bytes(self.buffer.as_ref()[field::ACK].try_into().unwrap())
    }

    /// Header length in bytes (data offset × 4).
    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[field::OFFSET] >> 4) as usize) * 4
    }

    /// The flags.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// Window.
    pub fn window(&self) -> u16 {
        u16::from_be_bytes(self.buffer.as_ref()[field::WINDOW].try_into().unwrap())
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes(self.buffer.as_ref()[field::CHECKSUM].try_into().unwrap())
    }

    /// The raw option bytes.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS..self.header_len()]
    }

    /// The options, parsed one at a time.
    pub fn option_iter(&self) -> TcpOptions<'_> {
        TcpOptions::new(self.options())
    }

    /// The segment's data.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// Whether the checksum is right for a segment carried in IPv4 between `src` and `dst`.
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let b = self.buffer.as_ref();
        let acc = checksum::pseudo_header_v4(src, dst, 6, b.len() as u16);
        checksum::finish(checksum::sum(acc, b)) == 0
    }

    /// Whether the checksum is right for a segment carried in IPv6.
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let b = self.buffer.as_ref();
        let acc = checksum::pseudo_header_v6(src, dst, 6, b.len() as u32);
        checksum::finish(checksum::sum(acc, b)) == 0
    }
}

impl<'a> TcpPacket<&'a [u8]> {
    /// The option bytes, borrowed for as long as the underlying buffer (not the view).
    pub fn into_options(self) -> &'a [u8] {
        &self.buffer[field::OPTIONS..self.header_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::SRC_PORT].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the destination port.
    pub fn set_dst_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::DST_PORT].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the sequence number.
    pub fn set_seq(&mut self, v: u32) {
        self.buffer.as_mut()[field::SEQ].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the acknowledgment number.
    pub fn set_ack(&mut self, v: u32) {
        self.buffer.as_mut()[field::ACK].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the header length in bytes (a multiple of 4, at most 60); clears the reserved bits.
    pub fn set_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::OFFSET] = ((len / 4) as u8) << 4;
    }
    /// Sets the flags.
    pub fn set_flags(&mut self, f: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = f.0;
    }
    /// Sets the window.
    pub fn set_window(&mut self, v: u16) {
        self.buffer.as_mut()[field::WINDOW].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the urgent pointer.
    pub fn set_urgent(&mut self, v: u16) {
        self.buffer.as_mut()[field::URGENT].copy_from_slice(&v.to_be_bytes());
    }
    /// The option area, writable (its size follows the header length).
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[field::OPTIONS..hl]
    }
    /// Computes and stores the checksum over the pseudo-header of `src` and `dst` (same
    /// family) and the whole buffer.
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let acc = checksum::pseudo_header(src, dst, super::ipv4::protocol::TCP, b.len());
        let c = checksum::finish(checksum::sum(acc, b));
        self.set_checksum(c);
    }

    /// Computes and stores the checksum of the whole buffer as a segment in IPv4.
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.fill_checksum(src.into(), dst.into());
    }
    /// Computes and stores the checksum of the whole buffer as a segment in IPv6.
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.fill_checksum(src.into(), dst.into());
    }
}

impl<'a> TcpPacket<&'a [u8]> {
    /// The payload, borrowed for as long as the underlying buffer (not the view).
    pub fn into_payload(self) -> &'a [u8] {
        &self.buffer[self.header_len()..]
    }
}

/// The owned face of a TCP segment: the header fields, the raw option bytes and the payload.
///
/// Options are kept as bytes (build them with [`super::tcp_option::emit_all`], read them with
/// [`TcpRepr::option_iter`]): the classifier compares them byte for byte with the probe's, and a
/// responder may copy them unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Receive window.
    pub window: u16,
    /// The option area (emitted padded with zeros to a multiple of 4; at most 40 bytes).
    pub options: &'a [u8],
    /// The data after the header.
    pub payload: &'a [u8],
}

impl<'a> TcpRepr<'a> {
    /// Reads a checked segment. The checksum is left to the caller.
    pub fn parse(packet: &TcpPacket<&'a [u8]>) -> TcpRepr<'a> {
        TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq: packet.seq(),
            ack: packet.ack(),
            flags: packet.flags(),
            window: packet.window(),
            options: packet.into_options(),
            payload: packet.into_payload(),
        }
    }

    /// The header's length: the fixed header and the padded options.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.len().div_ceil(4) * 4
    }

    /// The segment's length: what [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Walks the options.
    pub fn option_iter(&self) -> TcpOptions<'a> {
        TcpOptions::new(self.options)
    }

    /// Writes the segment into `packet`, whose buffer must be exactly [`Self::buffer_len`] bytes
    /// (the checksum covers all of it), with the checksum over the pseudo-header of `src` and
    /// `dst` (same family). Panics on more than 40 bytes of options: a bug of the builder.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut TcpPacket<T>, src: IpAddr, dst: IpAddr) {
        let hl = self.header_len();
        assert!(hl <= MAX_HEADER_LEN, "{} bytes of TCP options", self.options.len());
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq(self.seq);
        packet.set_ack(self.ack);
        packet.set_header_len(hl);
        packet.set_flags(self.flags);
        packet.set_window(self.window);
        packet.set_urgent(0);
        let opts = packet.options_mut();
        opts[..self.options.len()].copy_from_slice(self.options);
        opts[self.options.len()..].fill(0);
        packet.buffer.as_mut()[hl..].copy_from_slice(self.payload);
        packet.fill_checksum(src, dst);
    }
}

/// The first 8 bytes of a TCP segment, as quoted inside an ICMP error.
#[derive(Debug, Clone, Copy)]
pub struct TcpQuote<T: AsRef<[u8]>> {
    buffer: T,
}

/// Bytes of the transport header an ICMP error is sure to quote.
pub const QUOTE_LEN: usize = 8;

impl<T: AsRef<[u8]>> TcpQuote<T> {
    /// Wraps the quoted bytes; at least 8 must be there.
    pub fn new_checked(buffer: T) -> Result<Self> {
        need("quoted tcp header", QUOTE_LEN, buffer.as_ref().len())?;
        Ok(TcpQuote { buffer })
    }
    /// Source port of the quoted segment (our probe's source port).
    pub fn src_port(&self) -> u16 {
        u16::from_be_bytes(self.buffer.as_ref()[field::SRC_PORT].try_into().unwrap())
    }
    /// Destination port of the quoted segment (the probed port).
    pub fn dst_port(&self) -> u16 {
        u16::from_be_bytes(self.buffer.as_ref()[field::DST_PORT].try_into().unwrap())
    }
    /// Sequence number of the quoted segment (our probe's).
    pub fn seq(&self) -> u32 {
        u32::from_be_bytes(self.buffer.as_ref()[field::SEQ].try_into().unwrap())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tcp_option::TcpOption;

    // A SYN-ACK from 198.18.0.1:443 to 192.0.2.2:40000 as a Linux 6.x MPTCP listener sends it
    // to a v1 probe: MSS 1460, SACK-perm, timestamps, NOP, wscale 7, MP_CAPABLE v1 flags 0x01
    // with the server's key.
    static SYN_ACK: [u8; 52] = [
        0x01, 0xbb, 0x9c, 0x40, // ports 443 -> 40000
        0x5e, 0x1f, 0x3a, 0x11, // seq
        0x12, 0x34, 0x56, 0x79, // ack
        0xd0, 0x12, 0xfe, 0x88, // offset 13 (52 bytes), SYN|ACK, window 65160
        0x00, 0x00, 0x00, 0x00, // checksum (left zero), urgent
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
        0x04, 0x02, 0x08, 0x0a, // SACK-perm, timestamps...
        0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x2a, // TSval 7, TSecr 42
        0x01, 0x03, 0x03, 0x07, // NOP, wscale 7
        0x1e, 0x0c, 0x01, 0x01, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, // MP_CAPABLE
    ];

    #[test]
    fn deconstruct() {
        let p = TcpPacket::new_checked(&SYN_ACK[..]).unwrap();
        assert_eq!(p.src_port(), 443);
        assert_eq!(p.dst_port(), 40000);
        assert_eq!(p.seq(), 0x5e1f3a11);
        assert_eq!(p.ack(), 0x12345679);
        assert!(p.flags().syn() && p.flags().ack() && !p.flags().rst());
        assert_eq!(p.window(), 65160);
        assert_eq!(p.header_len(), 52);
        assert_eq!(p.options().len(), 32);
        let opts: Vec<_> = p.option_iter().collect::<Result<_>>().unwrap();
        assert_eq!(opts[0], TcpOption::MaxSegmentSize(1460));
        assert_eq!(opts.len(), 6);
        match opts[5] {
            TcpOption::MpCapable(m) => {
                assert_eq!(m.version, 1);
                assert_eq!(m.flags, 0x01);
                assert_eq!(m.sender_key, Some(0x1122334455667788));
            }
            ref o => panic!("expected MP_CAPABLE, got {o:?}"),
        }
    }

    #[test]
    fn construct_and_checksum() {
        let mut buf = SYN_ACK;
        let mut p = TcpPacket::new_unchecked(&mut buf[..]);
        let (src, dst) = (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(192, 0, 2, 2));
        p.fill_checksum_v4(src, dst);
        assert!(TcpPacket::new_checked(&buf[..]).unwrap().verify_checksum_v4(src, dst));
        buf[30] ^= 1;
        assert!(!TcpPacket::new_checked(&buf[..]).unwrap().verify_checksum_v4(src, dst));
    }

    #[test]
    fn set_fields_round_trip() {
        let mut buf = [0u8; 24];
        let mut p = TcpPacket::new_unchecked(&mut buf[..]);
        p.set_src_port(40000);
        p.set_dst_port(443);
        p.set_seq(0x12345678);
        p.set_ack(0);
        p.set_header_len(24);
        p.set_flags(TcpFlags(TcpFlags::SYN));
        p.set_window(64240);
        p.options_mut().copy_from_slice(&[0x02, 0x04, 0x05, 0xb4]);
        assert_eq!(
            buf,
            [
                0x9c, 0x40, 0x01, 0xbb, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0, 0x60, 0x02, 0xfa, 0xf0, 0, 0, 0, 0, 2, 4,
                5, 0xb4
            ]
        );
    }

    #[test]
    fn truncated_and_bad_offset() {
        assert!(matches!(TcpPacket::new_checked(&SYN_ACK[..19]), Err(Error::Truncated { .. })));
        assert!(matches!(TcpPacket::new_checked(&SYN_ACK[..51]), Err(Error::Truncated { .. })));
        let mut bad = SYN_ACK;
        bad[12] = 0x40; // data offset 4: shorter than the fixed header
        assert!(matches!(TcpPacket::new_checked(&bad[..]), Err(Error::BadHeaderLength { .. })));
        let mut big = SYN_ACK;
        big[12] = 0xf0; // data offset 15: 60 bytes, more than there are
        assert!(matches!(TcpPacket::new_checked(&big[..]), Err(Error::Truncated { .. })));
    }

    #[test]
    fn quote() {
        let q = TcpQuote::new_checked(&SYN_ACK[..8]).unwrap();
        assert_eq!((q.src_port(), q.dst_port(), q.seq()), (443, 40000, 0x5e1f3a11));
        assert!(TcpQuote::new_checked(&SYN_ACK[..7]).is_err());
    }

    #[test]
    fn repr_parse_and_emit() {
        let (src, dst) = (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(192, 0, 2, 2));
        let mut expected = SYN_ACK;
        TcpPacket::new_unchecked(&mut expected[..]).fill_checksum_v4(src, dst);
        let repr = TcpRepr::parse(&TcpPacket::new_checked(&SYN_ACK[..]).unwrap());
        assert_eq!((repr.src_port, repr.dst_port, repr.seq, repr.ack), (443, 40000, 0x5e1f3a11, 0x12345679));
        assert_eq!((repr.flags, repr.window), (TcpFlags(TcpFlags::SYN | TcpFlags::ACK), 65160));
        assert_eq!(repr.options, &SYN_ACK[20..]);
        assert!(repr.payload.is_empty());
        assert_eq!(repr.buffer_len(), 52);
        let mut out = [0xffu8; 52];
        repr.emit(&mut TcpPacket::new_unchecked(&mut out[..]), src.into(), dst.into());
        assert_eq!(out, expected);
    }

    #[test]
    fn repr_pads_options_and_carries_payload() {
        let repr = TcpRepr {
            src_port: 40000,
            dst_port: 443,
            seq: 0x12345678,
            ack: 0,
            flags: TcpFlags(TcpFlags::SYN),
            window: 64240,
            options: &[0x03, 0x03, 0x07], // window scale 7, padded with one zero
            payload: b"hi",
        };
        assert_eq!((repr.header_len(), repr.buffer_len()), (24, 26));
        let mut out = [0xffu8; 26];
        let (src, dst): (Ipv6Addr, Ipv6Addr) = ("2001:db8::2".parse().unwrap(), "2001:db8:1::1".parse().unwrap());
        repr.emit(&mut TcpPacket::new_unchecked(&mut out[..]), src.into(), dst.into());
        assert_eq!(&out[12..14], &[0x60, 0x02]);
        assert_eq!(&out[18..], &[0, 0, 3, 3, 7, 0, b'h', b'i']);
        let p = TcpPacket::new_checked(&out[..]).unwrap();
        assert!(p.verify_checksum_v6(src, dst));
        assert_eq!(TcpRepr::parse(&p), TcpRepr { options: &[3, 3, 7, 0], ..repr });
    }
}
