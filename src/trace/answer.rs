//! From a captured frame to a validated trace answer, or a counted rejection. The frame goes
//! through the scan's own receive stage (`crate::accept::Context::accept`: headers, ICMP quote,
//! the keyed hash's ports), with [`TtlInProbe`] as the validation: the TTL is recovered from what
//! comes back ([`super::encode`]) instead of checking one fixed sequence number.
//!
//! * ICMP(v6) destination unreachable, time exceeded or parameter problem: the quote must be of
//!   our probe (our address, a probed (target, port) whose hash gives the quoted source port) and
//!   carry a TTL in `1..=max_ttl`: in the sequence number, or (IPv4) in the IP ID when the
//!   sequence number was rewritten on the way (`seq_rewritten`).
//! * SYN-ACK: acknowledges our sequence number + 1, which gives the TTL.
//! * RST: acknowledges the sequence number or it + 1 (as zmap accepts).
//!
//! Rejections are the scan's (docs/ERRORS.md), from the same code.

use super::encode;
use super::quote::{self, QuoteReport};
use crate::accept::{Context, Reject, ResponseKind as Kind, Validation};
use crate::classify::{classify, Class};
use crate::probe::{ProbeTag, ProbeVersion};
use crate::wire::{TcpOption, TcpOptions};
use std::net::IpAddr;

/// A validated answer to one trace probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Answer {
    /// The address we probed.
    pub target: IpAddr,
    /// The port we probed.
    pub port: u16,
    /// The probe's MP_CAPABLE version.
    pub version: ProbeVersion,
    /// The TTL the probe was sent with.
    pub probe_ttl: u8,
    /// Who answered: a router (ICMP) or whatever sent the SYN-ACK/RST.
    pub responder: IpAddr,
    /// What it is.
    pub kind: Kind,
    /// The IP TTL / hop limit the answer arrived with (how far away its sender is).
    pub reply_ttl: u8,
    /// Round trip in milliseconds, when the answer carries our send time (a quote of the TCP
    /// options, a SYN-ACK's TSecr).
    pub rtt_ms: Option<u32>,
    /// ICMP: what the quote says.
    pub quote: Option<QuoteReport>,
    /// ICMP, IPv4: the quote's sequence number is not ours, the IP ID is (a box rewrote it).
    pub seq_rewritten: bool,
    /// SYN-ACK/RST: the class `mpscan scan` would give this answer.
    pub class: Option<Class>,
}

/// The trace's [`Validation`]: the probe's TTL, `1..=max_ttl`, from the sequence number an answer
/// acknowledges or a quote carries, or (IPv4 quotes) from the IP ID when the sequence number was
/// rewritten. Its `Probe` is (TTL, sequence number rewritten).
#[derive(Debug, Clone, Copy)]
pub struct TtlInProbe {
    /// Highest TTL sent.
    pub max_ttl: u8,
}

impl Validation for TtlInProbe {
    type Probe = (u8, bool);

    #[inline]
    fn answer(&self, tag: &ProbeTag, ack: u32, rst: bool) -> Option<(u8, bool)> {
        encode::ttl_from_ack(tag, ack, rst, self.max_ttl).map(|t| (t, false))
    }

    #[inline]
    fn quote(&self, tag: &ProbeTag, seq: u32, ident: Option<u16>) -> Option<(u8, bool)> {
        let by_seq = encode::ttl_from_seq(tag, seq, self.max_ttl);
        let by_ident = ident.and_then(|i| encode::ttl_from_ident(tag, i, self.max_ttl));
        match (by_seq, by_ident) {
            // IPv4: both copies must agree when both are ours.
            (Some(a), Some(b)) if a != b => None,
            (Some(t), _) => Some((t, false)),
            (None, Some(t)) => Some((t, true)),
            (None, None) => None,
        }
    }
}

/// The trace's receive context: the scan's, plus the TTL range.
#[derive(Debug, Clone)]
pub struct TraceContext {
    /// Our addresses, the secret, the versions.
    pub ctx: Context,
    /// Highest TTL sent.
    pub max_ttl: u8,
}

impl TraceContext {
    /// Validates one Ethernet frame received at `now_ms` on the trace's clock.
    pub fn parse(&self, frame: &[u8], now_ms: u32) -> Result<Answer, Reject> {
        let a = self.ctx.accept(&TtlInProbe { max_ttl: self.max_ttl }, frame)?;
        let (r, (probe_ttl, seq_rewritten)) = (a.response, a.probe);
        let mut answer = Answer {
            target: r.target,
            port: r.port,
            version: r.version,
            probe_ttl,
            responder: r.responder,
            kind: r.kind,
            reply_ttl: r.ttl,
            rtt_ms: None,
            quote: None,
            seq_rewritten,
            class: None,
        };
        match a.quoted {
            Some(q) => {
                let report = quote::compare(q.ip_header, q.tcp, r.version, r.tag.key);
                answer.rtt_ms = report.tsval.map(|t| now_ms.wrapping_sub(t)).filter(|&ms| ms < MAX_RTT_MS);
                answer.quote = Some(report);
            }
            None => {
                // Our send time: a TCP stack echoes it in TSecr, a box copying our options keeps
                // it in TSval (with our TSecr of 0).
                let sent = TcpOptions::new(r.options).find_map(|o| match o {
                    Ok(TcpOption::Timestamps { tsval, tsecr }) => Some(if tsecr != 0 { tsecr } else { tsval }),
                    _ => None,
                });
                answer.rtt_ms = sent.map(|s| now_ms.wrapping_sub(s)).filter(|&ms| ms < MAX_RTT_MS);
                // Classify as `scan` would: with the probe's actual sequence number and TSval.
                let tag =
                    ProbeTag { seq: encode::seq_for(&r.tag, probe_ttl), tsval: sent.unwrap_or(r.tag.tsval), ..r.tag };
                answer.class = Some(classify(&crate::accept::Response { tag, ..r }).class);
            }
        }
        Ok(answer)
    }
}

/// An RTT above this is not one (a TSval that is not our send time, or clock wrap): left out.
const MAX_RTT_MS: u32 = 600_000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyed_hash::Validator;
    use crate::probe::SynOption;
    use crate::probe::{Link, ProbeBuilder, MAX_FRAME_LEN};
    use crate::wire::{ipv4::protocol, EtherType, EthernetFrame, IcmpPacket, Ipv4Packet, Ipv6Packet};
    use std::net::{Ipv4Addr, Ipv6Addr};

    const US4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    const T4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const R4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const US6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    const T6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
    const R6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 1);

    fn tctx() -> TraceContext {
        TraceContext {
            ctx: Context::one_source(
                Validator::from_seed(11),
                Some(US4),
                Some(US6),
                vec![ProbeVersion::V1, ProbeVersion::V0],
            ),
            max_ttl: 32,
        }
    }

    /// The trace probe to `dst:443` with `ttl`, sent at 1000 ms, without its Ethernet header.
    fn probe(c: &TraceContext, dst: IpAddr, v: ProbeVersion, ttl: u8) -> Vec<u8> {
        let link = Link { src_mac: [0; 6], dst_mac: [0; 6], src_v4: Some(US4), src_v6: Some(US6) };
        let src = if dst.is_ipv4() { IpAddr::V4(US4) } else { IpAddr::V6(US6) };
        let tag = c.ctx.validator.tag(src, dst, 443, v);
        let mut f = [0u8; MAX_FRAME_LEN];
        let n = ProbeBuilder::new(&link, &[v]).write(&mut f, dst, 443, v, &tag);
        assert!(encode::patch(&mut f[..n], &tag, ttl, 1000));
        f[14..n].to_vec()
    }

    /// A time exceeded from `router` quoting `quoted`.
    fn time_exceeded(router: IpAddr, quoted: &[u8]) -> Vec<u8> {
        let v6 = router.is_ipv6();
        let hl = if v6 { 40 } else { 20 };
        let mut f = vec![0u8; 14 + hl + 8 + quoted.len()];
        let mut eth = EthernetFrame::new_unchecked(&mut f[..]);
        eth.set_ethertype(if v6 { EtherType::Ipv6 } else { EtherType::Ipv4 });
        match router {
            IpAddr::V4(r) => {
                let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
                ip.set_version_and_header_len(20);
                ip.set_total_len((28 + quoted.len()) as u16);
                ip.set_ttl(64);
                ip.set_protocol(protocol::ICMP);
                ip.set_src_addr(r);
                ip.set_dst_addr(US4);
                ip.fill_checksum();
            }
            IpAddr::V6(r) => {
                let mut ip = Ipv6Packet::new_unchecked(&mut f[14..]);
                ip.set_version();
                ip.set_payload_len((8 + quoted.len()) as u16);
                ip.set_next_header(protocol::ICMPV6);
                ip.set_hop_limit(64);
                ip.set_src_addr(r);
                ip.set_dst_addr(US6);
            }
        }
        let mut m = IcmpPacket::new_unchecked(&mut f[14 + hl..]);
        m.set_type_code(if v6 { 3 } else { 11 }, 0);
        m.payload_mut().copy_from_slice(quoted);
        f
    }

    /// A SYN-ACK (or RST: `flags`) from the target acknowledging the probe with `ttl` + `ack_delta`.
    fn syn_ack(c: &TraceContext, v: ProbeVersion, ttl: u8, flags: u8, ack_delta: u32, opts: &[TcpOption]) -> Vec<u8> {
        let tag = c.ctx.validator.tag(US4.into(), T4.into(), 443, v);
        let ack = encode::seq_for(&tag, ttl).wrapping_add(ack_delta);
        crate::accept::tests::tcp_reply(T4, 443, tag.sport, flags, ack, opts)
    }

    #[test]
    fn whole_ipv4_quote_gives_the_ttl_state_and_rtt() {
        let c = tctx();
        let p = probe(&c, T4.into(), ProbeVersion::V1, 7);
        let a = c.parse(&time_exceeded(R4.into(), &p), 1042).unwrap();
        assert_eq!((a.target, a.port, a.version, a.probe_ttl), (T4.into(), 443, ProbeVersion::V1, 7));
        assert_eq!((a.responder, a.kind), (R4.into(), Kind::Icmp { icmp_type: 11, code: 0 }));
        let q = a.quote.unwrap();
        assert_eq!((q.mpc, q.quoted_bytes), (quote::MpcState::Intact, 64));
        assert_eq!((a.rtt_ms, a.seq_rewritten), (Some(42), false));
    }

    #[test]
    fn eight_byte_quotes_validate_in_both_families() {
        let c = tctx();
        for (dst, router, hl) in [(IpAddr::from(T4), IpAddr::from(R4), 20), (T6.into(), R6.into(), 40)] {
            for v in [ProbeVersion::V1, ProbeVersion::V0] {
                let p = probe(&c, dst, v, 3);
                let a = c.parse(&time_exceeded(router, &p[..hl + 8]), 2000).unwrap();
                assert_eq!((a.target, a.version, a.probe_ttl, a.responder), (dst, v, 3, router));
                let q = a.quote.unwrap();
                assert_eq!((q.mpc, q.quoted_bytes, a.rtt_ms), (quote::MpcState::Unknown, hl + 8, None));
                // Less than 8 bytes of TCP: rejected.
                let e = c.parse(&time_exceeded(router, &p[..hl + 7]), 0).unwrap_err();
                assert_eq!(e, Reject("icmp-bad-quote"));
            }
        }
        // The whole IPv6 probe, MP_CAPABLE v0 with its key: intact.
        let p = probe(&c, T6.into(), ProbeVersion::V0, 2);
        let a = c.parse(&time_exceeded(R6.into(), &p), 1005).unwrap();
        assert_eq!((a.quote.unwrap().mpc, a.rtt_ms), (quote::MpcState::Intact, Some(5)));
    }

    #[test]
    fn rewritten_seq_is_located_by_the_ipv4_ip_id() {
        let c = tctx();
        let mut p = probe(&c, T4.into(), ProbeVersion::V1, 9);
        p[24..28].copy_from_slice(&0xdead_beefu32.to_be_bytes());
        let a = c.parse(&time_exceeded(R4.into(), &p[..28]), 0).unwrap();
        assert_eq!((a.probe_ttl, a.seq_rewritten), (9, true));
        // IPv6 has no second copy: a rewritten sequence number is a mismatch.
        let mut p6 = probe(&c, T6.into(), ProbeVersion::V1, 9);
        p6[44..48].copy_from_slice(&0xdead_beefu32.to_be_bytes());
        assert_eq!(c.parse(&time_exceeded(R6.into(), &p6[..48]), 0).unwrap_err(), Reject("icmp-quote-seq-mismatch"));
        // IP ID and sequence number telling different TTLs: not ours.
        let mut p = probe(&c, T4.into(), ProbeVersion::V1, 9);
        p[5] ^= 0x03; // IP ID now says 10
        assert_eq!(c.parse(&time_exceeded(R4.into(), &p[..28]), 0).unwrap_err(), Reject("icmp-quote-seq-mismatch"));
    }

    #[test]
    fn ttl_above_max_or_other_ports_are_rejected() {
        let c = tctx();
        let p = probe(&c, T4.into(), ProbeVersion::V1, 33);
        assert_eq!(c.parse(&time_exceeded(R4.into(), &p), 0).unwrap_err(), Reject("icmp-quote-seq-mismatch"));
        let mut p = probe(&c, T4.into(), ProbeVersion::V1, 3);
        p[20] ^= 1; // source port
        assert_eq!(c.parse(&time_exceeded(R4.into(), &p), 0).unwrap_err(), Reject("icmp-quote-not-ours"));
    }

    #[test]
    fn syn_ack_and_rst_give_the_ttl_and_the_scan_class() {
        let c = tctx();
        let ts = TcpOption::Timestamps { tsval: 5, tsecr: 1000 };
        let a = c.parse(&syn_ack(&c, ProbeVersion::V1, 12, 0x12, 1, &[ts]), 1010).unwrap();
        assert_eq!((a.probe_ttl, a.kind, a.class, a.rtt_ms), (12, Kind::SynAck, Some(Class::Tcp), Some(10)));
        // An echoing box: our MP_CAPABLE v1 back.
        let mpc = TcpOption::MpCapable(ProbeVersion::V1.syn_option(0));
        let a = c.parse(&syn_ack(&c, ProbeVersion::V1, 4, 0x12, 1, &[mpc]), 0).unwrap();
        assert_eq!((a.probe_ttl, a.class), (4, Some(Class::Echo)));
        for d in [0, 1] {
            let a = c.parse(&syn_ack(&c, ProbeVersion::V0, 20, 0x14, d, &[]), 0).unwrap();
            assert_eq!((a.probe_ttl, a.version, a.class), (20, ProbeVersion::V0, Some(Class::Closed)));
        }
        // Acknowledging the probe's own sequence number (not + 1): not a SYN-ACK to it.
        let e = c.parse(&syn_ack(&c, ProbeVersion::V1, 12, 0x12, 0, &[]), 0).unwrap_err();
        assert_eq!(e, Reject("validation-failed"));
    }

    #[test]
    fn garbage_never_panics() {
        let c = tctx();
        let f = time_exceeded(R4.into(), &probe(&c, T4.into(), ProbeVersion::V0, 5));
        for n in 0..f.len() {
            let _ = c.parse(&f[..n], 0);
        }
        let s = syn_ack(&c, ProbeVersion::V1, 1, 0x12, 1, &[]);
        for n in 0..s.len() {
            let _ = c.parse(&s[..n], 0);
        }
    }
}
