//! A whole frame as owned headers: Ethernet, IP (either family) and TCP or ICMP.
//!
//! The one builder for frames that are not probes: the lab's responders, the receive path's
//! tests, the fuzz harness, the lab tests and the bench's storm frames (`mpscan dev frames`)
//! all describe a frame as a [`FrameRepr`] and [`FrameRepr::emit`] it. Probes are built from a
//! template (`crate::probe`), itself written with the same `Repr`s.

use super::ethernet::{self, EthernetFrame, EthernetRepr};
use super::icmp::{IcmpPacket, IcmpRepr};
use super::ip::{parse_ip, IpRepr};
use super::ipv4::protocol;
use super::tcp::{TcpPacket, TcpRepr};
use super::Result;
use std::net::IpAddr;

/// The layer-4 part of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4Repr<'a> {
    /// A TCP segment.
    Tcp(TcpRepr<'a>),
    /// An ICMP or ICMPv6 message (the family is the IP header's).
    Icmp(IcmpRepr<'a>),
}

impl L4Repr<'_> {
    /// Length of the layer-4 bytes.
    pub fn buffer_len(&self) -> usize {
        match self {
            L4Repr::Tcp(t) => t.buffer_len(),
            L4Repr::Icmp(i) => i.buffer_len(),
        }
    }
}

/// An Ethernet frame carrying IP and TCP or ICMP, as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRepr<'a> {
    /// The Ethernet header (its EtherType should be the IP header's: [`Self::new`] sets it).
    pub ethernet: EthernetRepr,
    /// The IP header.
    pub ip: IpRepr,
    /// The TCP segment or ICMP message.
    pub l4: L4Repr<'a>,
}

impl<'a> FrameRepr<'a> {
    /// A frame from `src` to `dst` (same family) with `ttl`, zero MAC addresses and an IP
    /// header that fits `l4` exactly.
    pub fn new(src: IpAddr, dst: IpAddr, ttl: u8, l4: L4Repr<'a>) -> FrameRepr<'a> {
        let proto = match (l4, src) {
            (L4Repr::Tcp(_), _) => protocol::TCP,
            (L4Repr::Icmp(_), IpAddr::V4(_)) => protocol::ICMP,
            (L4Repr::Icmp(_), IpAddr::V6(_)) => protocol::ICMPV6,
        };
        let ip = IpRepr::new(src, dst, proto, l4.buffer_len(), ttl);
        let ethernet = EthernetRepr { src: [0; 6], dst: [0; 6], ethertype: ip.ethertype() };
        FrameRepr { ethernet, ip, l4 }
    }

    /// A TCP frame: [`Self::new`] with [`L4Repr::Tcp`].
    pub fn tcp(src: IpAddr, dst: IpAddr, ttl: u8, tcp: TcpRepr<'a>) -> FrameRepr<'a> {
        Self::new(src, dst, ttl, L4Repr::Tcp(tcp))
    }

    /// An ICMP(v6) frame: [`Self::new`] with [`L4Repr::Icmp`].
    pub fn icmp(src: IpAddr, dst: IpAddr, ttl: u8, icmp: IcmpRepr<'a>) -> FrameRepr<'a> {
        Self::new(src, dst, ttl, L4Repr::Icmp(icmp))
    }

    /// Sets the MAC addresses.
    pub fn with_macs(mut self, src: [u8; 6], dst: [u8; 6]) -> Self {
        self.ethernet.src = src;
        self.ethernet.dst = dst;
        self
    }

    /// Reads a frame of Ethernet, IP and TCP or ICMP, each header checked as received (no
    /// checksum is verified). Other EtherTypes and protocols are [`None`].
    pub fn parse(frame: &'a [u8]) -> Option<Result<FrameRepr<'a>>> {
        let eth = match EthernetFrame::new_checked(frame) {
            Ok(e) => e,
            Err(e) => return Some(Err(e)),
        };
        let ethernet = EthernetRepr::parse(&eth);
        let (ip, payload) = match parse_ip(ethernet.ethertype, &frame[ethernet::HEADER_LEN..])? {
            Ok(x) => x,
            Err(e) => return Some(Err(e)),
        };
        let l4 = match ip.protocol() {
            protocol::TCP => TcpPacket::new_checked(payload).map(|t| L4Repr::Tcp(TcpRepr::parse(&t))),
            p if p == ip.icmp_protocol() => IcmpPacket::new_checked(payload).map(|m| L4Repr::Icmp(IcmpRepr::parse(&m))),
            _ => return None,
        };
        Some(l4.map(|l4| FrameRepr { ethernet, ip, l4 }))
    }

    /// The frame's length: what [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        self.ethernet.buffer_len() + self.ip.buffer_len() + self.l4.buffer_len()
    }

    /// Writes the frame, checksums included, at the start of `buf` (at least
    /// [`Self::buffer_len`] bytes) and returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let len = self.buffer_len();
        let buf = &mut buf[..len];
        self.ethernet.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        let l3 = ethernet::HEADER_LEN;
        self.ip.emit(&mut buf[l3..]);
        let l4 = l3 + self.ip.buffer_len();
        let (src, dst) = (self.ip.src_addr(), self.ip.dst_addr());
        match &self.l4 {
            L4Repr::Tcp(t) => t.emit(&mut TcpPacket::new_unchecked(&mut buf[l4..]), src, dst),
            L4Repr::Icmp(i) => i.emit(&mut IcmpPacket::new_unchecked(&mut buf[l4..]), src, dst),
        }
        len
    }

    /// The frame as a new vector (tests and the lab; the hot paths emit into their buffers).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.buffer_len()];
        self.emit(&mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Ipv4Packet, TcpFlags};
    use std::net::{Ipv4Addr, Ipv6Addr};

    // An RST from 198.18.0.1:443 to 192.0.2.2:40000 acknowledging 0x12345679, TTL 57.
    static RST: [u8; 54] = [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00, // Ethernet, IPv4
        0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, 0x00, 0x39, 0x06, 0xf9, 0xba, // IPv4 header...
        0xc6, 0x12, 0x00, 0x01, 0xc0, 0x00, 0x02, 0x02, // ...addresses
        0x01, 0xbb, 0x9c, 0x40, 0x00, 0x00, 0x00, 0x00, 0x12, 0x34, 0x56, 0x79, // ports, seq, ack
        0x50, 0x14, 0x00, 0x00, 0x21, 0x12, 0x00, 0x00, // offset 5, RST|ACK, window 0, checksum
    ];

    fn rst() -> TcpRepr<'static> {
        TcpRepr {
            src_port: 443,
            dst_port: 40000,
            seq: 0,
            ack: 0x12345679,
            flags: TcpFlags(TcpFlags::RST | TcpFlags::ACK),
            window: 0,
            options: &[],
            payload: &[],
        }
    }

    #[test]
    fn emit_and_parse_a_tcp_frame() {
        let (from, to) = (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(192, 0, 2, 2));
        let f = FrameRepr::tcp(from.into(), to.into(), 57, rst());
        let bytes = f.to_vec();
        assert_eq!(bytes, RST);
        assert!(Ipv4Packet::new_checked(&bytes[14..]).unwrap().verify_checksum());
        assert!(TcpPacket::new_checked(&bytes[34..]).unwrap().verify_checksum_v4(from, to));
        assert_eq!(FrameRepr::parse(&bytes).unwrap().unwrap(), f);
    }

    #[test]
    fn emit_and_parse_an_icmpv6_frame() {
        let quote = [0x60u8, 0, 0, 0, 0, 0x2c, 6, 64];
        let icmp = IcmpRepr { msg_type: 1, code: 1, rest_of_header: [0; 4], payload: &quote };
        let (from, to): (Ipv6Addr, Ipv6Addr) = ("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap());
        let f = FrameRepr::icmp(from.into(), to.into(), 63, icmp).with_macs([2; 6], [4; 6]);
        let bytes = f.to_vec();
        assert_eq!(bytes.len(), 14 + 40 + 8 + 8);
        assert_eq!(&bytes[12..14], &[0x86, 0xdd]);
        assert_eq!(bytes[14 + 6], 58);
        assert_eq!(FrameRepr::parse(&bytes).unwrap().unwrap(), f);
    }

    #[test]
    fn parse_rejects_cut_frames_and_skips_other_protocols() {
        let bytes = FrameRepr::tcp(Ipv4Addr::new(198, 18, 0, 1).into(), Ipv4Addr::LOCALHOST.into(), 57, rst()).to_vec();
        for cut in 0..bytes.len() {
            assert!(!matches!(FrameRepr::parse(&bytes[..cut]), Some(Ok(_))), "cut at {cut}");
        }
        let mut udp = bytes.clone();
        udp[14 + 9] = 17;
        assert!(FrameRepr::parse(&udp).is_none());
    }
}
