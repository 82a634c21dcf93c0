//! Either IP header, as one owned value: what lets the probe builder, the receive path and the
//! frame builders handle IPv4 and IPv6 on one path, branching only where the headers differ.

use super::ethernet::{self, EtherType};
use super::ipv4::{self, Ipv4Packet, Ipv4Repr};
use super::ipv6::{self, Ipv6Packet, Ipv6Repr};
use std::net::IpAddr;

/// An IPv4 or IPv6 header ([`Ipv4Repr`], [`Ipv6Repr`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpRepr {
    /// IPv4.
    V4(Ipv4Repr),
    /// IPv6.
    V6(Ipv6Repr),
}

impl IpRepr {
    /// A header from `src` to `dst` (same family; mixing them is a bug, and panics) carrying
    /// `payload_len` bytes of `protocol` with `ttl`; IPv4's ident is 0 and DF is clear.
    pub fn new(src: IpAddr, dst: IpAddr, protocol: u8, payload_len: usize, ttl: u8) -> IpRepr {
        match (src, dst) {
            (IpAddr::V4(src_addr), IpAddr::V4(dst_addr)) => {
                IpRepr::V4(Ipv4Repr { src_addr, dst_addr, protocol, payload_len, ttl, ident: 0, dont_frag: false })
            }
            (IpAddr::V6(src_addr), IpAddr::V6(dst_addr)) => {
                IpRepr::V6(Ipv6Repr { src_addr, dst_addr, next_header: protocol, payload_len, hop_limit: ttl })
            }
            _ => panic!("IP header of mixed address families: {src} -> {dst}"),
        }
    }

    /// Source address.
    pub fn src_addr(&self) -> IpAddr {
        match self {
            IpRepr::V4(r) => r.src_addr.into(),
            IpRepr::V6(r) => r.src_addr.into(),
        }
    }

    /// Destination address.
    pub fn dst_addr(&self) -> IpAddr {
        match self {
            IpRepr::V4(r) => r.dst_addr.into(),
            IpRepr::V6(r) => r.dst_addr.into(),
        }
    }

    /// The payload's protocol (IPv4 protocol, IPv6 next header).
    pub fn protocol(&self) -> u8 {
        match self {
            IpRepr::V4(r) => r.protocol,
            IpRepr::V6(r) => r.next_header,
        }
    }

    /// TTL or hop limit.
    pub fn ttl(&self) -> u8 {
        match self {
            IpRepr::V4(r) => r.ttl,
            IpRepr::V6(r) => r.hop_limit,
        }
    }

    /// Length of the payload in bytes.
    pub fn payload_len(&self) -> usize {
        match self {
            IpRepr::V4(r) => r.payload_len,
            IpRepr::V6(r) => r.payload_len,
        }
    }

    /// The ICMP protocol number of this family (1, or 58 for ICMPv6).
    pub fn icmp_protocol(&self) -> u8 {
        match self {
            IpRepr::V4(_) => ipv4::protocol::ICMP,
            IpRepr::V6(_) => ipv4::protocol::ICMPV6,
        }
    }

    /// The EtherType that carries this header.
    pub fn ethertype(&self) -> EtherType {
        match self {
            IpRepr::V4(_) => EtherType::Ipv4,
            IpRepr::V6(_) => EtherType::Ipv6,
        }
    }

    /// The header's length: what [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            IpRepr::V4(r) => r.buffer_len(),
            IpRepr::V6(r) => r.buffer_len(),
        }
    }

    /// Writes the header (with its checksum, for IPv4) at the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) {
        match self {
            IpRepr::V4(r) => r.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..ipv4::HEADER_LEN])),
            IpRepr::V6(r) => r.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..ipv6::HEADER_LEN])),
        }
    }
}

/// Reads the IP header of a frame's payload (`ethertype` says which), checked as received, and
/// returns it with the IP payload. Frames that are not IP are [`None`].
pub fn parse_ip(ethertype: EtherType, packet: &[u8]) -> Option<super::Result<(IpRepr, &[u8])>> {
    Some(match ethertype {
        EtherType::Ipv4 => Ipv4Packet::new_checked(packet).map(|p| (IpRepr::V4(Ipv4Repr::parse(&p)), p.into_payload())),
        EtherType::Ipv6 => Ipv6Packet::new_checked(packet).map(|p| (IpRepr::V6(Ipv6Repr::parse(&p)), p.into_payload())),
        _ => return None,
    })
}

/// Length of the Ethernet and IP headers of a frame carrying `ip`: where layer 4 starts.
pub fn l4_offset(ip: &IpRepr) -> usize {
    ethernet::HEADER_LEN + ip.buffer_len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn either_family_through_one_interface() {
        let v4 = IpRepr::new(Ipv4Addr::new(192, 0, 2, 2).into(), Ipv4Addr::new(198, 18, 0, 1).into(), 6, 40, 64);
        let v6_src: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let v6 = IpRepr::new(v6_src.into(), "2001:db8:1::1".parse::<Ipv6Addr>().unwrap().into(), 6, 40, 64);
        for (ip, et, hl, icmp) in [(v4, EtherType::Ipv4, 20, 1), (v6, EtherType::Ipv6, 40, 58)] {
            assert_eq!((ip.ethertype(), ip.buffer_len(), ip.icmp_protocol()), (et, hl, icmp));
            assert_eq!((ip.protocol(), ip.ttl(), ip.payload_len()), (6, 64, 40));
            assert_eq!(l4_offset(&ip), 14 + hl);
            let mut buf = vec![0u8; hl + 40];
            ip.emit(&mut buf);
            let (parsed, payload) = parse_ip(et, &buf).unwrap().unwrap();
            assert_eq!((parsed, payload.len()), (ip, 40));
        }
        assert!(parse_ip(EtherType::Arp, &[]).is_none());
        assert!(parse_ip(EtherType::Ipv4, &[0x45]).unwrap().is_err());
    }

    #[test]
    #[should_panic(expected = "mixed address families")]
    fn mixed_families_are_a_bug() {
        IpRepr::new(Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into(), 6, 0, 64);
    }
}
