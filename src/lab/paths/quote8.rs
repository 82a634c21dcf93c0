//! The trace lab's RFC 792 router: a time exceeded that quotes the expired datagram's IP header
//! and its first 8 bytes (RFC 792: "Internet Header + 64 bits of Original Data Datagram"), as
//! older routers do. A Linux router quotes as much as fits in 576 bytes, so this is userspace:
//! the router's nftables drops, in prerouting (before the kernel's own TTL check), the IPv4
//! datagrams to the target whose TTL expires there, and a process reading the router's link
//! toward the scanner with an AF_PACKET socket (which sees frames before netfilter) answers them
//! with [`ShortQuoter::answer`]. This module is the pure part: frame in, frame out, built with
//! [`crate::wire`]; the socket loop is `lab serve --kind quote8` (`super::super::serve`).
//!
//! IPv4 only: RFC 4443 §2.4 (c) has an ICMPv6 error carry as much of the invoking packet as fits
//! in the minimum MTU, so an 8-byte IPv6 quote would be a broken router, not an old one.

use crate::lab::responder::Ignored;
use crate::wire::{ethernet, icmp, ipv4, EtherType, EthernetFrame, FrameRepr, IcmpRepr, IpRepr, Ipv4Packet};
use ipnet::Ipv4Net;
use std::net::{IpAddr, Ipv4Addr};

/// Bytes of the expired datagram after its IP header that the router quotes.
pub const QUOTED_DATA: usize = 8;

/// Longest frame [`ShortQuoter::answer`] writes: Ethernet, IPv4, ICMP, a quoted IPv4 header
/// with the longest options, and 8 bytes.
pub const MAX_LEN: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN + icmp::HEADER_LEN + 60 + QUOTED_DATA;

/// An RFC 792 router's time exceeded, for the datagrams to one range.
#[derive(Debug, Clone)]
pub struct ShortQuoter {
    mac: [u8; 6],
    source: Ipv4Addr,
    prefix: Ipv4Net,
}

impl ShortQuoter {
    /// A router answering from `source` (its address on the link it reads) and `mac`, for the
    /// datagrams to `prefix`.
    pub fn new(mac: [u8; 6], source: Ipv4Addr, prefix: Ipv4Net) -> ShortQuoter {
        ShortQuoter { mac, source, prefix }
    }

    /// Turns an IPv4 `frame` to our range whose TTL expires here (at most 1 on arrival) into a
    /// time exceeded (type 11, code 0) written at the start of `out` (at least [`MAX_LEN`] bytes),
    /// back to the datagram's source through the frame's sender; returns its length. `ident` is
    /// the answer's IP ID.
    pub fn answer(&self, frame: &[u8], ident: u16, out: &mut [u8]) -> Result<usize, Ignored> {
        let eth = EthernetFrame::new_checked(frame).map_err(|e| Ignored::Malformed(e.reason()))?;
        if eth.ethertype() != EtherType::Ipv4 {
            return Err(Ignored::NotIpv4);
        }
        let l3 = &frame[ethernet::HEADER_LEN..];
        let ip = Ipv4Packet::new_checked(l3).map_err(|e| Ignored::Malformed(e.reason()))?;
        if !self.prefix.contains(&ip.dst_addr()) {
            return Err(Ignored::NotOurs);
        }
        if ip.ttl() > 1 {
            return Err(Ignored::Forwarded);
        }
        let end = (ip.header_len() + QUOTED_DATA).min(usize::from(ip.total_len())).min(l3.len());
        let msg = IcmpRepr { msg_type: 11, code: 0, rest_of_header: [0; 4], payload: &l3[..end] };
        let mut answer =
            FrameRepr::icmp(IpAddr::V4(self.source), IpAddr::V4(ip.src_addr()), 64, msg).with_macs(self.mac, eth.src());
        if let IpRepr::V4(h) = &mut answer.ip {
            h.ident = ident;
        }
        Ok(answer.emit(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyed_hash::Validator;
    use crate::probe::{Link, ProbeBuilder, ProbeVersion, MAX_FRAME_LEN};
    use crate::wire::{IcmpPacket, L4Repr};

    const SCANNER: Ipv4Addr = Ipv4Addr::new(198, 19, 200, 1);
    const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 19, 201, 2);
    const TARGET: Ipv4Addr = Ipv4Addr::new(198, 19, 206, 2);
    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 9];
    const PREV_MAC: [u8; 6] = [2, 0, 0, 0, 0, 8];

    fn quoter() -> ShortQuoter {
        ShortQuoter::new(MAC, ROUTER, "198.19.206.2/32".parse().unwrap())
    }

    /// The scan's probe to `dst`:443 as it arrives with `ttl`, from the previous router.
    fn probe(dst: Ipv4Addr, ttl: u8) -> Vec<u8> {
        let link = Link { src_mac: PREV_MAC, dst_mac: MAC, src_v4: Some(SCANNER), src_v6: None };
        let tag = Validator::from_seed(3).tag(SCANNER.into(), dst.into(), 443, ProbeVersion::V1);
        let mut f = vec![0u8; MAX_FRAME_LEN];
        let n = ProbeBuilder::new(&link, &[ProbeVersion::V1]).write(&mut f, dst.into(), 443, ProbeVersion::V1, &tag);
        f.truncate(n);
        f[14 + 8] = ttl;
        f
    }

    #[test]
    fn expiring_probe_gets_a_time_exceeded_quoting_header_and_8_bytes() {
        let p = probe(TARGET, 1);
        let mut out = [0u8; MAX_LEN];
        let n = quoter().answer(&p, 77, &mut out).expect("an answer");
        let f = FrameRepr::parse(&out[..n]).unwrap().unwrap();
        assert_eq!((f.ethernet.src, f.ethernet.dst), (MAC, PREV_MAC));
        assert_eq!((f.ip.src_addr(), f.ip.dst_addr(), f.ip.ttl()), (ROUTER.into(), SCANNER.into(), 64));
        let L4Repr::Icmp(m) = f.l4 else { panic!("not ICMP") };
        assert_eq!((m.msg_type, m.code), (11, 0));
        assert_eq!(m.payload, &p[14..14 + 20 + 8], "IP header and the ports and sequence number");
        assert!(Ipv4Packet::new_checked(&out[14..n]).unwrap().verify_checksum());
        assert!(IcmpPacket::new_checked(&out[34..n]).unwrap().verify_checksum_v4());
        // TTL 0 on arrival (cannot come from a Linux sender, but expires as well).
        assert!(quoter().answer(&probe(TARGET, 0), 1, &mut out).is_ok());
    }

    #[test]
    fn forwarded_or_foreign_datagrams_get_nothing() {
        let mut out = [0u8; MAX_LEN];
        let q = quoter();
        assert_eq!(q.answer(&probe(TARGET, 2), 1, &mut out), Err(Ignored::Forwarded));
        assert_eq!(q.answer(&probe(Ipv4Addr::new(198, 19, 206, 3), 1), 1, &mut out), Err(Ignored::NotOurs));
        let p = probe(TARGET, 1);
        for cut in [0, 13, 20, 33] {
            assert!(q.answer(&p[..cut], 1, &mut out).is_err(), "cut at {cut}");
        }
        let mut v6 = p.clone();
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(q.answer(&v6, 1, &mut out), Err(Ignored::NotIpv4));
    }
}
