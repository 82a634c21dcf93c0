//! From a captured frame to a validated response, or a counted rejection.
//!
//! This is the receive path's first stage (zmap's `validate_packet`): it reads only the headers
//! the decision needs, and it decides from the keyed hash alone, with no per-probe state:
//!
//! * a SYN-ACK counts only if it comes from a target and port we could have probed, to the
//!   source port the hash gives for that (target, port, version), and acknowledges our seq + 1;
//! * a RST likewise, with an acknowledgment of seq or seq + 1 (as zmap accepts);
//! * an ICMP(v6) destination-unreachable only if the datagram it quotes (IP header + first 8
//!   bytes of TCP, all that some routers quote) is one of our probes.
//!
//! Everything else is a [`Reject`] with a stable reason, counted in the metadata.

use crate::probe::ProbeVersion;
use crate::validate::{ProbeTag, Validator};
use crate::wire::{
    icmp, ipv4::protocol, EtherType, EthernetFrame, IcmpPacket, Ipv4Packet, Ipv6Packet, TcpPacket,
};
use crate::wire::tcp::TcpQuote;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What kind of answer a response is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SYN+ACK: something accepted the connection.
    SynAck,
    /// RST: the port is closed (or something reset it).
    Rst,
    /// ICMP(v6) destination unreachable, with its code.
    Unreachable {
        /// The ICMP type (3 for ICMPv4, 1 for ICMPv6).
        icmp_type: u8,
        /// The ICMP code (e.g. 13: administratively prohibited).
        code: u8,
    },
}

/// A response that validated as the answer to one of our probes.
#[derive(Debug, Clone, Copy)]
pub struct Response<'a> {
    /// The address we probed.
    pub target: IpAddr,
    /// The port we probed.
    pub port: u16,
    /// The version of the probe this answers.
    pub version: ProbeVersion,
    /// The probe's hash-derived values.
    pub tag: ProbeTag,
    /// Who sent the response (the target, or a router for ICMP).
    pub responder: IpAddr,
    /// TTL / hop limit of the response.
    pub ttl: u8,
    /// TCP window (0 for ICMP).
    pub window: u16,
    /// What it is.
    pub kind: Kind,
    /// The response's TCP options (empty for ICMP).
    pub options: &'a [u8],
}

/// Why a frame is not a response to our probes. The `&'static str` is the metadata counter key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject(pub &'static str);

impl From<crate::wire::Error> for Reject {
    fn from(e: crate::wire::Error) -> Self {
        Reject(e.reason())
    }
}

/// What the receiver knows: our addresses, the secret and the versions probed.
#[derive(Debug, Clone)]
pub struct Context {
    /// The validation hash.
    pub validator: Validator,
    /// Our IPv4 source, if any.
    pub src_v4: Option<Ipv4Addr>,
    /// Our IPv6 source, if any.
    pub src_v6: Option<Ipv6Addr>,
    /// The probe versions this scan sends.
    pub versions: Vec<ProbeVersion>,
}

impl Context {
    /// Finds the probe version whose tag matches a reply from `target:port` to our `sport`
    /// with the predicate `seq_ok` on the tag.
    #[inline]
    fn matching(
        &self,
        src: IpAddr,
        target: IpAddr,
        port: u16,
        sport: u16,
        seq_ok: impl Fn(&ProbeTag) -> bool,
    ) -> Option<(ProbeVersion, ProbeTag)> {
        self.versions.iter().find_map(|&v| {
            let tag = self.validator.tag(src, target, port, v);
            (tag.sport == sport && seq_ok(&tag)).then_some((v, tag))
        })
    }

    /// Validates one Ethernet frame.
    pub fn parse<'a>(&self, frame: &'a [u8]) -> Result<Response<'a>, Reject> {
        let eth = EthernetFrame::new_checked(frame)?;
        match eth.ethertype() {
            EtherType::Ipv4 => {
                let src = self.src_v4.ok_or(Reject("no-ipv4-source"))?;
                let ip = Ipv4Packet::new_checked(&frame[crate::wire::ethernet::HEADER_LEN..])?;
                if ip.dst_addr() != src {
                    return Err(Reject("not-to-us"));
                }
                if ip.frag_offset() != 0 || ip.more_frags() {
                    return Err(Reject("fragment"));
                }
                let responder = IpAddr::V4(ip.src_addr());
                match ip.protocol() {
                    protocol::TCP => self.tcp(IpAddr::V4(src), responder, ip.ttl(), ip.into_payload()),
                    protocol::ICMP => {
                        let msg = IcmpPacket::new_checked(ip.payload())?;
                        if msg.msg_type() != icmp::V4_DEST_UNREACHABLE {
                            return Err(Reject("icmp-not-unreachable"));
                        }
                        let quoted = Ipv4Packet::new_quoted(msg.payload()).map_err(|_| Reject("icmp-bad-quote"))?;
                        if quoted.src_addr() != src || quoted.protocol() != protocol::TCP {
                            return Err(Reject("icmp-quote-not-ours"));
                        }
                        let kind = Kind::Unreachable { icmp_type: msg.msg_type(), code: msg.code() };
                        self.quote(IpAddr::V4(src), IpAddr::V4(quoted.dst_addr()), responder, ip.ttl(), kind, quoted.payload())
                    }
                    _ => Err(Reject("not-tcp-or-icmp")),
                }
            }
            EtherType::Ipv6 => {
                let src = self.src_v6.ok_or(Reject("no-ipv6-source"))?;
                let ip = Ipv6Packet::new_checked(&frame[crate::wire::ethernet::HEADER_LEN..])?;
                if ip.dst_addr() != src {
                    return Err(Reject("not-to-us"));
                }
                let responder = IpAddr::V6(ip.src_addr());
                match ip.next_header() {
                    protocol::TCP => self.tcp(IpAddr::V6(src), responder, ip.hop_limit(), ip.into_payload()),
                    protocol::ICMPV6 => {
                        let msg = IcmpPacket::new_checked(ip.payload())?;
                        if msg.msg_type() != icmp::V6_DEST_UNREACHABLE {
                            return Err(Reject("icmp-not-unreachable"));
                        }
                        let quoted = Ipv6Packet::new_quoted(msg.payload()).map_err(|_| Reject("icmp-bad-quote"))?;
                        if quoted.src_addr() != src || quoted.next_header() != protocol::TCP {
                            return Err(Reject("icmp-quote-not-ours"));
                        }
                        let kind = Kind::Unreachable { icmp_type: msg.msg_type(), code: msg.code() };
                        self.quote(IpAddr::V6(src), IpAddr::V6(quoted.dst_addr()), responder, ip.hop_limit(), kind, quoted.payload())
                    }
                    _ => Err(Reject("not-tcp-or-icmp")),
                }
            }
            _ => Err(Reject("not-ip")),
        }
    }

    fn tcp<'a>(&self, src: IpAddr, from: IpAddr, ttl: u8, seg: &'a [u8]) -> Result<Response<'a>, Reject> {
        let t = TcpPacket::new_checked(seg)?;
        let flags = t.flags();
        let (kind, ack) = if flags.rst() {
            (Kind::Rst, t.ack())
        } else if flags.syn() && flags.ack() {
            (Kind::SynAck, t.ack())
        } else {
            return Err(Reject("not-syn-ack-or-rst"));
        };
        let (version, tag) = self
            .matching(src, from, t.src_port(), t.dst_port(), |tag| match kind {
                Kind::Rst => ack == tag.seq.wrapping_add(1) || ack == tag.seq,
                _ => ack == tag.seq.wrapping_add(1),
            })
            .ok_or(Reject("validation-failed"))?;
        let (port, window) = (t.src_port(), t.window());
        Ok(Response { target: from, port, version, tag, responder: from, ttl, window, kind, options: t.into_options() })
    }

    fn quote<'a>(
        &self,
        src: IpAddr,
        target: IpAddr,
        responder: IpAddr,
        ttl: u8,
        kind: Kind,
        quoted_l4: &[u8],
    ) -> Result<Response<'a>, Reject> {
        let q = TcpQuote::new_checked(quoted_l4).map_err(|_| Reject("icmp-bad-quote"))?;
        let (version, tag) = self
            .matching(src, target, q.dst_port(), q.src_port(), |tag| q.seq() == tag.seq)
            .ok_or(Reject("icmp-quote-not-ours"))?;
        Ok(Response { target, port: q.dst_port(), version, tag, responder, ttl, window: 0, kind, options: &[] })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::{tcp_option, EthernetFrame, TcpFlags, TcpOption};

    pub const US: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    pub const TARGET: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

    pub fn ctx(versions: &[ProbeVersion]) -> Context {
        Context { validator: Validator::from_seed(5), src_v4: Some(US), src_v6: None, versions: versions.to_vec() }
    }

    /// Builds an IPv4 TCP reply from `from:sport` to US:dport.
    pub fn tcp_reply(from: Ipv4Addr, sport: u16, dport: u16, flags: u8, ack: u32, options: &[TcpOption]) -> Vec<u8> {
        let mut opts = [0u8; 40];
        let olen = tcp_option::emit_all(options, &mut opts);
        let tcp_len = 20 + olen;
        let mut f = vec![0u8; 14 + 20 + tcp_len];
        let mut eth = EthernetFrame::new_unchecked(&mut f[..]);
        eth.set_ethertype(EtherType::Ipv4);
        let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
        ip.set_version_and_header_len(20);
        ip.set_total_len((20 + tcp_len) as u16);
        ip.set_ttl(57);
        ip.set_protocol(protocol::TCP);
        ip.set_src_addr(from);
        ip.set_dst_addr(US);
        ip.fill_checksum();
        let mut t = TcpPacket::new_unchecked(&mut f[34..]);
        t.set_src_port(sport);
        t.set_dst_port(dport);
        t.set_seq(0x7777);
        t.set_ack(ack);
        t.set_header_len(tcp_len);
        t.set_flags(TcpFlags(flags));
        t.set_window(29200);
        t.options_mut().copy_from_slice(&opts[..olen]);
        t.fill_checksum_v4(from, US);
        f
    }

    /// Builds an ICMP destination-unreachable from `router` quoting `quoted` (IP + 8 bytes).
    pub fn icmp_reply(router: Ipv4Addr, quoted: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8 + quoted.len()];
        EthernetFrame::new_unchecked(&mut f[..]).set_ethertype(EtherType::Ipv4);
        let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
        ip.set_version_and_header_len(20);
        ip.set_total_len((28 + quoted.len()) as u16);
        ip.set_ttl(63);
        ip.set_protocol(protocol::ICMP);
        ip.set_src_addr(router);
        ip.set_dst_addr(US);
        ip.fill_checksum();
        let mut m = IcmpPacket::new_unchecked(&mut f[34..]);
        m.set_type_code(3, 13);
        m.payload_mut().copy_from_slice(quoted);
        m.fill_checksum_v4();
        f
    }

    #[test]
    fn syn_ack_validates_with_the_right_ack_only() {
        let c = ctx(&[ProbeVersion::V1]);
        let tag = c.validator.tag(US.into(), TARGET.into(), 443, ProbeVersion::V1);
        let ok = tcp_reply(TARGET, 443, tag.sport, 0x12, tag.seq.wrapping_add(1), &[]);
        let r = c.parse(&ok).unwrap();
        assert_eq!((r.target, r.port, r.version, r.kind), (TARGET.into(), 443, ProbeVersion::V1, Kind::SynAck));
        for (frame, why) in [
            (tcp_reply(TARGET, 443, tag.sport, 0x12, tag.seq, &[]), "validation-failed"), // ack = seq
            (tcp_reply(TARGET, 443, tag.sport ^ 1, 0x12, tag.seq.wrapping_add(1), &[]), "validation-failed"), // port
            (tcp_reply(TARGET, 80, tag.sport, 0x12, tag.seq.wrapping_add(1), &[]), "validation-failed"), // other port
            (tcp_reply(Ipv4Addr::new(198, 18, 0, 2), 443, tag.sport, 0x12, tag.seq.wrapping_add(1), &[]), "validation-failed"),
            (tcp_reply(TARGET, 443, tag.sport, 0x02, tag.seq.wrapping_add(1), &[]), "not-syn-ack-or-rst"), // bare SYN
            (tcp_reply(TARGET, 443, tag.sport, 0x10, tag.seq.wrapping_add(1), &[]), "not-syn-ack-or-rst"), // bare ACK
        ] {
            assert_eq!(c.parse(&frame).unwrap_err(), Reject(why));
        }
    }

    #[test]
    fn version_is_recovered_from_the_hash() {
        let c = ctx(&[ProbeVersion::V1, ProbeVersion::V0]);
        let tag = c.validator.tag(US.into(), TARGET.into(), 443, ProbeVersion::V0);
        let f = tcp_reply(TARGET, 443, tag.sport, 0x12, tag.seq.wrapping_add(1), &[]);
        assert_eq!(c.parse(&f).unwrap().version, ProbeVersion::V0);
        // A scan that sent only v1 does not accept the v0 probe's answer.
        assert!(ctx(&[ProbeVersion::V1]).parse(&tcp_reply(TARGET, 443, tag.sport, 0x12, tag.seq.wrapping_add(1), &[])).is_err());
    }

    #[test]
    fn rst_accepts_seq_or_seq_plus_one() {
        let c = ctx(&[ProbeVersion::V1]);
        let tag = c.validator.tag(US.into(), TARGET.into(), 443, ProbeVersion::V1);
        for ack in [tag.seq, tag.seq.wrapping_add(1)] {
            assert_eq!(c.parse(&tcp_reply(TARGET, 443, tag.sport, 0x14, ack, &[])).unwrap().kind, Kind::Rst);
        }
        assert!(c.parse(&tcp_reply(TARGET, 443, tag.sport, 0x14, tag.seq.wrapping_add(2), &[])).is_err());
    }

    #[test]
    fn icmp_validates_by_the_quoted_probe() {
        let c = ctx(&[ProbeVersion::V1]);
        let tag = c.validator.tag(US.into(), TARGET.into(), 443, ProbeVersion::V1);
        // What a router quotes: our probe's IP header and first 8 TCP bytes.
        let probe = {
            let b = crate::probe::ProbeBuilder::new(
                &crate::probe::Link { src_mac: [0; 6], dst_mac: [0; 6], src_v4: Some(US), src_v6: None },
                &[ProbeVersion::V1],
            );
            let mut buf = [0u8; 128];
            let n = b.write(&mut buf, TARGET.into(), 443, ProbeVersion::V1, &tag);
            buf[14..n].to_vec()
        };
        let router = Ipv4Addr::new(192, 0, 2, 1);
        let f = icmp_reply(router, &probe[..28]);
        let r = c.parse(&f).unwrap();
        assert_eq!(r.kind, Kind::Unreachable { icmp_type: 3, code: 13 });
        assert_eq!((r.target, r.responder, r.port), (TARGET.into(), router.into(), 443));
        // Whole probe quoted: also fine.
        assert!(c.parse(&icmp_reply(router, &probe)).is_ok());
        // Less than 8 bytes of TCP: cannot be validated.
        assert_eq!(c.parse(&icmp_reply(router, &probe[..27])).unwrap_err(), Reject("icmp-bad-quote"));
        // A quote of something we did not send (sequence number changed).
        let mut other = probe.clone();
        other[24] ^= 0xff;
        assert_eq!(c.parse(&icmp_reply(router, &other[..28])).unwrap_err(), Reject("icmp-quote-not-ours"));
    }

    #[test]
    fn garbage_is_rejected_not_panicking() {
        let c = ctx(&[ProbeVersion::V1, ProbeVersion::V0]);
        let tag = c.validator.tag(US.into(), TARGET.into(), 443, ProbeVersion::V1);
        let good = tcp_reply(TARGET, 443, tag.sport, 0x12, tag.seq.wrapping_add(1), &[TcpOption::MaxSegmentSize(1460)]);
        for cut in 0..good.len() {
            let _ = c.parse(&good[..cut]);
        }
        let mut other_dst = good.clone();
        other_dst[33] = 9;
        assert_eq!(c.parse(&other_dst).unwrap_err(), Reject("not-to-us"));
    }
}
