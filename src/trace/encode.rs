//! The TTL of a trace probe, carried where a router's ICMP quote shows it and the keyed hash
//! covers it, so that the receiver recovers it with no per-probe state (yarrp's method).
//!
//! A trace probe is the scan's MP_CAPABLE SYN for (target, port, version) (same keyed tag, see
//! `crate::keyed_hash`) with three changes:
//!
//! * the IP TTL / hop limit is the probe's TTL, `1..=--max-ttl`;
//! * the TCP sequence number is the tag's `seq` plus 256 × TTL. Every quote carries it (it is
//!   within the first 8 bytes of TCP, all that RFC 792 routers quote), and a SYN-ACK or RST
//!   acknowledges it, so the TTL of a probe the target (or a box on the path) answered is known
//!   too. The low byte stays the tag's, so an acknowledgment of `seq` or `seq + 1` decodes to one
//!   TTL only (an XOR in the low byte would not: `seq ^ t` + 1 can be `seq ^ t'`);
//! * IPv4 only: the IP ID is the tag's upper 16 bits of `seq` XOR the TTL. It is an independent
//!   copy of the TTL that survives a box that rewrites sequence numbers (which the quotes after
//!   that box then show as `seq_rewritten`).
//!
//! IPv6 has no IP ID. The flow label is quoted too, but varying it per TTL would make ECMP
//! routers (which hash the flow label, RFC 6438) send each TTL down a different path, which is
//! the classic traceroute error Paris traceroute fixed; so the flow label stays constant (0) and
//! the IPv6 TTL lives in the sequence number alone. The 5-tuple is constant for every TTL of a
//! target in both families for the same reason.
//!
//! The timestamp option's TSval carries the send time (milliseconds on the trace's clock) in
//! place of the scan's hash-derived TSval: a quote of the whole TCP header (Linux routers) and a
//! SYN-ACK's TSecr then give the RTT statelessly. An 8-byte quote gives no RTT.

use crate::probe::ProbeTag;
use crate::wire::{ethernet, EtherType, EthernetFrame, Ipv4Packet, Ipv6Packet, TcpPacket};
use std::net::IpAddr;

/// Largest `--max-ttl` (the TTL field's range).
pub const MAX_TTL: u8 = 255;

/// The sequence number of the trace probe with `ttl` (`1..=255`).
#[inline]
pub fn seq_for(tag: &ProbeTag, ttl: u8) -> u32 {
    tag.seq.wrapping_add(u32::from(ttl) << 8)
}

/// The IPv4 IP ID of the trace probe with `ttl`.
#[inline]
pub fn ident_for(tag: &ProbeTag, ttl: u8) -> u16 {
    ((tag.seq >> 16) as u16) ^ u16::from(ttl)
}

/// The TTL a sequence number encodes for `tag`, if it is one of `1..=max_ttl`.
#[inline]
pub fn ttl_from_seq(tag: &ProbeTag, seq: u32, max_ttl: u8) -> Option<u8> {
    let d = seq.wrapping_sub(tag.seq);
    if d & 0xff != 0 {
        return None;
    }
    valid_ttl(d >> 8, max_ttl)
}

/// The TTL of the probe an acknowledgment number answers: `seq + 1` (SYN-ACK; RST with ACK), or
/// also `seq` itself when `rst` (a bare RST, as zmap accepts).
#[inline]
pub fn ttl_from_ack(tag: &ProbeTag, ack: u32, rst: bool, max_ttl: u8) -> Option<u8> {
    ttl_from_seq(tag, ack.wrapping_sub(1), max_ttl).or_else(|| if rst { ttl_from_seq(tag, ack, max_ttl) } else { None })
}

/// The TTL an IPv4 IP ID encodes for `tag`, if it is one of `1..=max_ttl`.
#[inline]
pub fn ttl_from_ident(tag: &ProbeTag, ident: u16, max_ttl: u8) -> Option<u8> {
    valid_ttl(u32::from(ident ^ (tag.seq >> 16) as u16), max_ttl)
}

fn valid_ttl(x: u32, max_ttl: u8) -> Option<u8> {
    (1..=u32::from(max_ttl)).contains(&x).then_some(x as u8)
}

/// Turns the scan probe in `frame` (as `crate::probe::ProbeBuilder::write` wrote it for `tag`)
/// into the trace probe with `ttl`, sent at `now_ms` on the trace's clock: TTL or hop limit,
/// sequence number, IP ID (IPv4), TSval, and both checksums. `frame` is the whole Ethernet frame.
/// Returns false (and leaves the frame alone) if it is not an IPv4 or IPv6 TCP frame.
pub fn patch(frame: &mut [u8], tag: &ProbeTag, ttl: u8, now_ms: u32) -> bool {
    let l3 = ethernet::HEADER_LEN;
    let Ok(eth) = EthernetFrame::new_checked(&frame[..]) else { return false };
    match eth.ethertype() {
        EtherType::Ipv4 => {
            let (src, dst, l4) = {
                let mut ip = Ipv4Packet::new_unchecked(&mut frame[l3..]);
                ip.set_ttl(ttl);
                ip.set_ident(ident_for(tag, ttl));
                ip.fill_checksum();
                (ip.src_addr(), ip.dst_addr(), l3 + ip.header_len())
            };
            let mut t = TcpPacket::new_unchecked(&mut frame[l4..]);
            patch_tcp(&mut t, tag, ttl, now_ms);
            t.fill_checksum_v4(src, dst);
        }
        EtherType::Ipv6 => {
            let (src, dst) = {
                let mut ip = Ipv6Packet::new_unchecked(&mut frame[l3..]);
                ip.set_hop_limit(ttl);
                (ip.src_addr(), ip.dst_addr())
            };
            let mut t = TcpPacket::new_unchecked(&mut frame[l3 + crate::wire::ipv6::HEADER_LEN..]);
            patch_tcp(&mut t, tag, ttl, now_ms);
            t.fill_checksum_v6(src, dst);
        }
        _ => return false,
    }
    true
}

/// Offset of TSval in the probe's option list (`crate::probe` writes MSS, SACK-permitted, then
/// the timestamps).
pub const TSVAL_AT: usize = 8;

fn patch_tcp(t: &mut TcpPacket<&mut [u8]>, tag: &ProbeTag, ttl: u8, now_ms: u32) {
    t.set_seq(seq_for(tag, ttl));
    t.options_mut()[TSVAL_AT..TSVAL_AT + 4].copy_from_slice(&now_ms.to_be_bytes());
}

/// The family of an address as the CSV spells it.
pub fn family(a: IpAddr) -> &'static str {
    if a.is_ipv4() {
        "ipv4"
    } else {
        "ipv6"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{Link, ProbeBuilder, ProbeVersion, MAX_FRAME_LEN};
    use std::net::{Ipv4Addr, Ipv6Addr};

    const TAG: ProbeTag = ProbeTag { seq: 0x1234_5678, sport: 40000, tsval: 0x0a0b_0c0d, key: 0x0102_0304_0506_0708 };

    fn link() -> Link {
        Link {
            src_mac: [2, 0, 0, 0, 0, 2],
            dst_mac: [2, 0, 0, 0, 0, 1],
            src_v4: Some(Ipv4Addr::new(192, 0, 2, 2)),
            src_v6: Some("2001:db8::2".parse().unwrap()),
        }
    }

    #[test]
    fn ttl_round_trips_through_seq_and_ident() {
        // Byte vectors: TTL 1 and 32 in the sequence number and the IP ID.
        assert_eq!(seq_for(&TAG, 1), 0x1234_5778);
        assert_eq!(seq_for(&TAG, 32), 0x1234_7678);
        assert_eq!(seq_for(&ProbeTag { seq: u32::MAX, ..TAG }, 1), 0xff, "wraps");
        assert_eq!(ident_for(&TAG, 1), 0x1235);
        assert_eq!(ident_for(&TAG, 32), 0x1214);
        for ttl in 1..=MAX_TTL {
            assert_eq!(ttl_from_seq(&TAG, seq_for(&TAG, ttl), MAX_TTL), Some(ttl));
            assert_eq!(ttl_from_ident(&TAG, ident_for(&TAG, ttl), MAX_TTL), Some(ttl));
            let s = seq_for(&TAG, ttl);
            assert_eq!(ttl_from_ack(&TAG, s.wrapping_add(1), false, MAX_TTL), Some(ttl));
            assert_eq!(ttl_from_ack(&TAG, s.wrapping_add(1), true, MAX_TTL), Some(ttl));
            assert_eq!(ttl_from_ack(&TAG, s, true, MAX_TTL), Some(ttl));
            assert_eq!(ttl_from_ack(&TAG, s, false, MAX_TTL), None, "a SYN-ACK acknowledges seq + 1");
            assert_eq!(ttl_from_ack(&TAG, s.wrapping_add(2), true, MAX_TTL), None);
        }
        // Outside 1..=max_ttl: not a trace probe of ours.
        assert_eq!(ttl_from_seq(&TAG, seq_for(&TAG, 33), 32), None);
        assert_eq!(ttl_from_seq(&TAG, TAG.seq, 32), None, "TTL 0 is never sent");
        assert_eq!(ttl_from_seq(&TAG, TAG.seq.wrapping_add(0x101), 255), None);
        assert_eq!(ttl_from_ident(&TAG, 0x1234, 32), None);
    }

    #[test]
    fn patched_ipv4_probe_is_byte_exact_and_checksums_hold() {
        let b = ProbeBuilder::new(&link(), &[ProbeVersion::V1]);
        let mut f = [0u8; MAX_FRAME_LEN];
        let dst = Ipv4Addr::new(198, 18, 0, 1);
        let n = b.write(&mut f, dst.into(), 443, ProbeVersion::V1, &TAG);
        assert!(patch(&mut f[..n], &TAG, 5, 0x0102_0304));
        let ip = Ipv4Packet::new_checked(&f[14..n]).unwrap();
        assert_eq!((ip.ttl(), ip.ident()), (5, 0x1231));
        assert!(ip.verify_checksum());
        let t = TcpPacket::new_checked(&f[34..n]).unwrap();
        assert_eq!(t.seq(), 0x1234_5b78);
        assert_eq!(&t.options()[8..12], &[1, 2, 3, 4], "TSval is the send time");
        assert_eq!(&t.options()[20..24], &[0x1e, 0x04, 0x01, 0x01], "MP_CAPABLE v1 unchanged");
        assert!(t.verify_checksum_v4(Ipv4Addr::new(192, 0, 2, 2), dst));
    }

    #[test]
    fn patched_ipv6_probe_keeps_the_flow_label() {
        let b = ProbeBuilder::new(&link(), &[ProbeVersion::V0]);
        let mut f = [0u8; MAX_FRAME_LEN];
        let dst: Ipv6Addr = "2001:db8:1::1".parse().unwrap();
        let n = b.write(&mut f, dst.into(), 443, ProbeVersion::V0, &TAG);
        assert!(patch(&mut f[..n], &TAG, 9, 7));
        assert_eq!(&f[14..18], &[0x60, 0, 0, 0], "traffic class and flow label stay 0 (ECMP)");
        let ip = Ipv6Packet::new_checked(&f[14..n]).unwrap();
        assert_eq!(ip.hop_limit(), 9);
        let t = TcpPacket::new_checked(&f[54..n]).unwrap();
        assert_eq!(ttl_from_seq(&TAG, t.seq(), 32), Some(9));
        assert!(t.verify_checksum_v6("2001:db8::2".parse().unwrap(), dst));
        // The v0 key stays the hash's.
        assert_eq!(&t.options()[24..32], &TAG.key.to_be_bytes());
    }

    #[test]
    fn non_ip_frames_are_left_alone() {
        let mut f = [0u8; 60];
        f[12] = 0x08;
        f[13] = 0x06; // ARP
        assert!(!patch(&mut f, &TAG, 1, 0));
        assert!(f[14..].iter().all(|&b| b == 0));
        assert!(!patch(&mut [0u8; 4], &TAG, 1, 0));
    }
}
