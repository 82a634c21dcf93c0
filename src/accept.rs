//! From a captured frame to a validated response, or a counted rejection.
//!
//! This is the receive path's first stage (zmap's `validate_packet`): it reads only the headers
//! the decision needs, and it decides from the keyed hash alone, with no per-probe state. The
//! scan and `mpscan trace` share it: what differs (one sequence number per probe, or one per TTL)
//! is a [`Validation`], a type parameter compiled separately for each. The scan's ([`KeyedSeq`]):
//!
//! * a SYN-ACK counts only if it comes from a target and port we could have probed, to the
//!   source address and port the hash gives for that (target, port, version) (with several
//!   sources, `-S`: the one [`source_index`] picks; an answer at another of ours is a
//!   `source-mismatch`, at an address not ours `not-to-us`), and acknowledges our seq + 1;
//! * a RST likewise, with an acknowledgment of seq or seq + 1 (as zmap accepts);
//! * an ICMP(v6) error that ends a probe (destination unreachable with any code, time exceeded,
//!   parameter problem) only if the datagram it quotes (IP header + first 8 bytes of TCP, all
//!   that some routers quote) is one of our probes: from the source the hash picked, a
//!   (target, port) whose hash gives the quoted source port, and the hash's sequence number.
//!
//! Everything else is a [`Reject`] with a stable reason, counted in the metadata (docs/ERRORS.md
//! lists them all): source quench, redirect and packet too big end nothing and are counted under
//! their own reasons; a quote whose ports match a probe but whose sequence number does not
//! (`icmp-quote-seq-mismatch`) is told apart from a quote of someone else's datagram
//! (`icmp-quote-not-ours`).

use crate::keyed_hash::{source_index, Validator};
use crate::probe::ProbeTag;
use crate::probe::ProbeVersion;
use crate::sources::{SourcePorts, SourceSet, Sources};
use crate::wire::tcp::TcpQuote;
use crate::wire::{
    ethernet, icmp, ipv4::protocol, EtherType, EthernetFrame, IcmpPacket, IpRepr, Ipv4Packet, Ipv4Repr, Ipv6Packet,
    Ipv6Repr, TcpPacket,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What kind of answer a response is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    /// SYN+ACK: something accepted the connection.
    SynAck,
    /// RST: the port is closed (or something reset it).
    Rst,
    /// An ICMP(v6) error that ends the probe: destination unreachable, time exceeded or
    /// parameter problem ([`icmp::effect`]), sent by the target or a router on the way.
    Icmp {
        /// The ICMP type (ICMPv4 3, 11, 12; ICMPv6 1, 3, 4).
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
    pub kind: ResponseKind,
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

/// What the receiver knows: our addresses, the secret (and source-port range) and the versions
/// probed.
#[derive(Debug, Clone)]
pub struct Context {
    /// The validation hash.
    pub validator: Validator,
    /// The probe versions this scan sends.
    pub versions: Vec<ProbeVersion>,
    /// Our source addresses (the hash is over each family's first; [`source_index`] says which
    /// one a probe left from).
    sources: Sources,
    /// The same addresses, for the test of an answer's destination.
    ours: SourceSet,
}

/// How an answer is tied to the probe it answers, given the keyed hash's tag for the (target,
/// port, version) it names: the one thing the scan and the trace validate differently. The scan
/// ([`KeyedSeq`]) sends one probe per tag, with the tag's sequence number; the trace
/// (`crate::trace::answer::TtlInProbe`) sends one per TTL and recovers the TTL from the sequence
/// number (and the IPv4 IP ID). [`Context::accept`] is generic over it, so each use is compiled
/// on its own and the scan's receive path pays nothing for the trace's.
pub trait Validation {
    /// What a validated answer says about its probe beyond the tag (the scan: nothing; the
    /// trace: the probe's TTL).
    type Probe: Copy;
    /// A SYN-ACK (`rst` false) or RST acknowledging `ack`: the probe of `tag` it answers, if any.
    fn answer(&self, tag: &ProbeTag, ack: u32, rst: bool) -> Option<Self::Probe>;
    /// An ICMP(v6) quote with `tag`'s ports: the probe it quotes, from the quoted sequence number
    /// and (IPv4 only) the quoted IP ID.
    fn quote(&self, tag: &ProbeTag, seq: u32, ident: Option<u16>) -> Option<Self::Probe>;
}

/// The scan's validation: a SYN-ACK acknowledges the tag's sequence number + 1, a RST it or it +
/// 1 (as zmap accepts), a quote carries it.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyedSeq;

impl Validation for KeyedSeq {
    type Probe = ();

    #[inline(always)]
    fn answer(&self, tag: &ProbeTag, ack: u32, rst: bool) -> Option<()> {
        (ack == tag.seq.wrapping_add(1) || (rst && ack == tag.seq)).then_some(())
    }

    #[inline(always)]
    fn quote(&self, tag: &ProbeTag, seq: u32, _ident: Option<u16>) -> Option<()> {
        (seq == tag.seq).then_some(())
    }
}

/// The datagram an ICMP(v6) error quotes: its IP header and the TCP bytes after it (at least 8,
/// as many as the router quoted, cut at the quoted datagram's own length).
#[derive(Debug, Clone, Copy)]
pub struct Quoted<'a> {
    /// The quoted IP header (IPv4: 20 bytes or more; IPv6: 40).
    pub ip_header: &'a [u8],
    /// The quoted TCP bytes, from the TCP header on.
    pub tcp: &'a [u8],
}

/// A validated answer with what its [`Validation`] recovered about the probe, and (ICMP) the
/// quote.
#[derive(Debug, Clone, Copy)]
pub struct Accepted<'a, P> {
    /// The answer, as the scan classifies it.
    pub response: Response<'a>,
    /// What the validation recovered.
    pub probe: P,
    /// ICMP: the quoted datagram (none for SYN-ACK and RST).
    pub quoted: Option<Quoted<'a>>,
}

/// What the outer IP header of an answer says: our address (its destination), its sender, its
/// TTL / hop limit.
#[derive(Debug, Clone, Copy)]
struct Outer {
    us: IpAddr,
    from: IpAddr,
    ttl: u8,
}

impl Context {
    /// The receive context of a scan with `validator` (its seed and source-port range), its
    /// `sources` and its probe `versions`.
    pub fn new(validator: Validator, sources: Sources, versions: Vec<ProbeVersion>) -> Context {
        let ours = SourceSet::new(&sources);
        Context { validator, versions, sources, ours }
    }

    /// The context with one source per family (as every scan had before `-S` took several).
    pub fn one_source(
        validator: Validator,
        src_v4: Option<Ipv4Addr>,
        src_v6: Option<Ipv6Addr>,
        versions: Vec<ProbeVersion>,
    ) -> Context {
        Context::new(validator, Sources::one(src_v4, src_v6), versions)
    }

    /// Rebuilds the receive context of a scan from its metadata's configuration: the seed,
    /// `source_ip` (every source, in index order), `source_ports` (absent: the default range)
    /// and `probe_versions`. What `mpscan scan` validated with, so answers recorded during a
    /// scan can be validated again later.
    pub fn from_record(record: &mpscan_schema::metadata::ConfigRecord) -> anyhow::Result<Context> {
        let sources = Sources::from_strings(&record.source_ip).map_err(|e| anyhow::anyhow!("metadata: {e}"))?;
        anyhow::ensure!(!sources.is_empty(), "metadata: no source address (config.source_ip is empty)");
        let ports = SourcePorts::from_pair(record.source_ports).map_err(|e| anyhow::anyhow!("metadata: {e}"))?;
        let versions = record
            .probe_versions
            .iter()
            .map(|v| match v.as_str() {
                "v0" => Ok(ProbeVersion::V0),
                "v1" => Ok(ProbeVersion::V1),
                o => Err(anyhow::anyhow!("metadata: unknown probe version {o:?}")),
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Context::new(Validator::from_seed(record.seed).with_ports(ports), sources, versions))
    }

    /// Our source addresses.
    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// Whether the probe with `tag` to a target of `us`'s family left from `us` (always, with
    /// one source of the family).
    #[inline]
    fn sent_from(&self, tag: &ProbeTag, us: IpAddr) -> bool {
        let n = self.sources.count(us.is_ipv4());
        n == 1 || self.sources.nth(us.is_ipv4(), source_index(tag, n)) == us
    }

    /// Validates one Ethernet frame as the scan does ([`KeyedSeq`]).
    #[inline]
    pub fn parse<'a>(&self, frame: &'a [u8]) -> Result<Response<'a>, Reject> {
        self.accept(&KeyedSeq, frame).map(|a| a.response)
    }

    /// Validates one Ethernet frame with `check`. One path for both families: only reading the
    /// IP header ([`Self::ip_header`]) differs.
    #[inline]
    pub fn accept<'a, V: Validation>(&self, check: &V, frame: &'a [u8]) -> Result<Accepted<'a, V::Probe>, Reject> {
        let eth = EthernetFrame::new_checked(frame)?;
        let (ip, fragment, payload) = self.ip_header(eth.ethertype(), &frame[ethernet::HEADER_LEN..])?;
        let us = ip.dst_addr();
        if !self.ours.contains(us) {
            return Err(Reject("not-to-us"));
        }
        if fragment {
            return Err(Reject("fragment"));
        }
        let (responder, ttl) = (ip.src_addr(), ip.ttl());
        match ip.protocol() {
            protocol::TCP => self.tcp(check, Outer { us, from: responder, ttl }, payload),
            p if p == ip.icmp_protocol() => self.icmp(check, Outer { us, from: responder, ttl }, payload),
            _ => Err(Reject("not-tcp-or-icmp")),
        }
    }

    /// The frame's IP header (of a family we have a source of), whether it is an IPv4 fragment
    /// (IPv6 fragments carry a next header of their own, and fail the protocol check), and the
    /// IP payload.
    #[inline]
    fn ip_header<'a>(&self, ethertype: EtherType, packet: &'a [u8]) -> Result<(IpRepr, bool, &'a [u8]), Reject> {
        match ethertype {
            EtherType::Ipv4 => {
                if self.sources.v4.is_empty() {
                    return Err(Reject("no-ipv4-source"));
                }
                let ip = Ipv4Packet::new_checked(packet)?;
                let fragment = ip.frag_offset() != 0 || ip.more_frags();
                Ok((IpRepr::V4(Ipv4Repr::parse(&ip)), fragment, ip.into_payload()))
            }
            EtherType::Ipv6 => {
                if self.sources.v6.is_empty() {
                    return Err(Reject("no-ipv6-source"));
                }
                let ip = Ipv6Packet::new_checked(packet)?;
                Ok((IpRepr::V6(Ipv6Repr::parse(&ip)), false, ip.into_payload()))
            }
            _ => Err(Reject("not-ip")),
        }
    }

    /// An ICMP or ICMPv6 message (the family is `src`'s): an error that ends a probe becomes a
    /// response if the datagram it quotes is one of our probes; the messages that end nothing
    /// (source quench, redirect, packet too big) are counted under their own reason.
    fn icmp<'a, V: Validation>(&self, check: &V, ip: Outer, body: &'a [u8]) -> Result<Accepted<'a, V::Probe>, Reject> {
        let Outer { us, from: responder, ttl } = ip;
        let msg = IcmpPacket::new_checked(body)?;
        match icmp::effect(us.is_ipv6(), msg.msg_type()) {
            icmp::Effect::EndsProbe => {}
            icmp::Effect::NoEffect(reason) => return Err(Reject(reason)),
            icmp::Effect::NotAnError => return Err(Reject("icmp-other-type")),
        }
        let kind = ResponseKind::Icmp { icmp_type: msg.msg_type(), code: msg.code() };
        // The quoted datagram: its IP header, then at least 8 bytes of TCP.
        let quote = msg.into_payload();
        let bad = |_| Reject("icmp-bad-quote");
        let (from, target, proto, ident, hl, l4) = match us {
            IpAddr::V4(_) => {
                let q = Ipv4Packet::new_quoted(quote).map_err(bad)?;
                let (ident, hl) = (Some(q.ident()), q.header_len());
                (IpAddr::V4(q.src_addr()), IpAddr::V4(q.dst_addr()), q.protocol(), ident, hl, q.into_payload())
            }
            IpAddr::V6(_) => {
                let q = Ipv6Packet::new_quoted(quote).map_err(bad)?;
                let hl = crate::wire::ipv6::HEADER_LEN;
                (IpAddr::V6(q.src_addr()), IpAddr::V6(q.dst_addr()), q.next_header(), None, hl, q.into_payload())
            }
        };
        // The quoted datagram came from one of our addresses (any: the ICMP error goes to its
        // source, and that may be another of ours than the one it reached, if routes differ).
        let key = self.sources.key_for(us.is_ipv4());
        if !self.ours.contains(from) || proto != protocol::TCP {
            return Err(Reject("icmp-quote-not-ours"));
        }
        let Some(key) = key else { return Err(Reject("icmp-quote-not-ours")) };
        let q = TcpQuote::new_checked(l4).map_err(bad)?;
        let port = q.dst_port();
        // Ports that match a probe but a sequence number that does not: a quote of our probe
        // rewritten on the way (some firewalls randomise sequence numbers), or a forgery. Told
        // apart from a quote of someone else's datagram, but not accepted.
        let (mut seq_differs, mut source_differs) = (false, false);
        for &version in &self.versions {
            let tag = self.validator.tag(key, target, port, version);
            if tag.sport == q.src_port() {
                if let Some(probe) = check.quote(&tag, q.seq(), ident) {
                    if !self.sent_from(&tag, from) {
                        source_differs = true;
                        continue;
                    }
                    let response =
                        Response { target, port, version, tag, responder, ttl, window: 0, kind, options: &[] };
                    let quoted = Some(Quoted { ip_header: &quote[..hl], tcp: l4 });
                    return Ok(Accepted { response, probe, quoted });
                }
                seq_differs = true;
            }
        }
        Err(Reject(if source_differs {
            "source-mismatch"
        } else if seq_differs {
            "icmp-quote-seq-mismatch"
        } else {
            "icmp-quote-not-ours"
        }))
    }

    /// A TCP segment: a SYN-ACK or RST becomes a response if it answers one of our probes.
    #[inline]
    fn tcp<'a, V: Validation>(&self, check: &V, ip: Outer, seg: &'a [u8]) -> Result<Accepted<'a, V::Probe>, Reject> {
        let Outer { us, from, ttl } = ip;
        let t = TcpPacket::new_checked(seg)?;
        let flags = t.flags();
        let kind = if flags.rst() {
            ResponseKind::Rst
        } else if flags.syn() && flags.ack() {
            ResponseKind::SynAck
        } else {
            return Err(Reject("not-syn-ack-or-rst"));
        };
        let (ack, rst, port, sport) = (t.ack(), kind == ResponseKind::Rst, t.src_port(), t.dst_port());
        // The probe version whose tag (over the family's key source) gives this answer's port
        // and acknowledgment number; the probe must have left from the address the answer came
        // to.
        let key = self.sources.key_for(us.is_ipv4()).ok_or(Reject("validation-failed"))?;
        let mut source_differs = false;
        let (version, tag, probe) = self
            .versions
            .iter()
            .find_map(|&v| {
                let tag = self.validator.tag(key, from, port, v);
                if tag.sport != sport {
                    return None;
                }
                let p = check.answer(&tag, ack, rst)?;
                if !self.sent_from(&tag, us) {
                    source_differs = true;
                    return None;
                }
                Some((v, tag, p))
            })
            .ok_or(Reject(if source_differs { "source-mismatch" } else { "validation-failed" }))?;
        let window = t.window();
        let response = Response {
            target: from,
            port,
            version,
            tag,
            responder: from,
            ttl,
            window,
            kind,
            options: t.into_options(),
        };
        Ok(Accepted { response, probe, quoted: None })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::{tcp_option, FrameRepr, IcmpRepr, TcpFlags, TcpOption, TcpRepr};

    pub const US: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    pub const TARGET: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

    pub fn ctx(versions: &[ProbeVersion]) -> Context {
        Context::one_source(Validator::from_seed(5), Some(US), None, versions.to_vec())
    }

    /// Builds an IPv4 TCP reply from `from:sport` to US:dport.
    pub fn tcp_reply(from: Ipv4Addr, sport: u16, dport: u16, flags: u8, ack: u32, options: &[TcpOption]) -> Vec<u8> {
        let mut opts = [0u8; 40];
        let olen = tcp_option::emit_all(options, &mut opts);
        tcp_reply_raw(from, sport, dport, flags, ack, &opts[..olen])
    }

    /// [`tcp_reply`] with the option area given as bytes (padded with zeros to a multiple of 4).
    pub fn tcp_reply_raw(from: Ipv4Addr, sport: u16, dport: u16, flags: u8, ack: u32, options: &[u8]) -> Vec<u8> {
        let tcp = TcpRepr {
            src_port: sport,
            dst_port: dport,
            seq: 0x7777,
            ack,
            flags: TcpFlags(flags),
            window: 29200,
            options,
            payload: &[],
        };
        FrameRepr::tcp(from.into(), US.into(), 57, tcp).to_vec()
    }

    /// Builds an ICMP destination-unreachable from `router` quoting `quoted` (IP + 8 bytes).
    pub fn icmp_reply(router: Ipv4Addr, quoted: &[u8]) -> Vec<u8> {
        let icmp = IcmpRepr { msg_type: 3, code: 13, rest_of_header: [0; 4], payload: quoted };
        FrameRepr::icmp(router.into(), US.into(), 63, icmp).to_vec()
    }

    #[test]
    fn syn_ack_validates_with_the_right_ack_only() {
        let c = ctx(&[ProbeVersion::V1]);
        let tag = c.validator.tag(US.into(), TARGET.into(), 443, ProbeVersion::V1);
        let ok = tcp_reply(TARGET, 443, tag.sport, 0x12, tag.seq.wrapping_add(1), &[]);
        let r = c.parse(&ok).unwrap();
        assert_eq!((r.target, r.port, r.version, r.kind), (TARGET.into(), 443, ProbeVersion::V1, ResponseKind::SynAck));
        for (frame, why) in [
            (tcp_reply(TARGET, 443, tag.sport, 0x12, tag.seq, &[]), "validation-failed"), // ack = seq
            (tcp_reply(TARGET, 443, tag.sport ^ 1, 0x12, tag.seq.wrapping_add(1), &[]), "validation-failed"), // port
            (tcp_reply(TARGET, 80, tag.sport, 0x12, tag.seq.wrapping_add(1), &[]), "validation-failed"), // other port
            (
                tcp_reply(Ipv4Addr::new(198, 18, 0, 2), 443, tag.sport, 0x12, tag.seq.wrapping_add(1), &[]),
                "validation-failed",
            ),
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
        assert!(ctx(&[ProbeVersion::V1])
            .parse(&tcp_reply(TARGET, 443, tag.sport, 0x12, tag.seq.wrapping_add(1), &[]))
            .is_err());
    }

    #[test]
    fn rst_accepts_seq_or_seq_plus_one() {
        let c = ctx(&[ProbeVersion::V1]);
        let tag = c.validator.tag(US.into(), TARGET.into(), 443, ProbeVersion::V1);
        for ack in [tag.seq, tag.seq.wrapping_add(1)] {
            assert_eq!(c.parse(&tcp_reply(TARGET, 443, tag.sport, 0x14, ack, &[])).unwrap().kind, ResponseKind::Rst);
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
        assert_eq!(r.kind, ResponseKind::Icmp { icmp_type: 3, code: 13 });
        assert_eq!((r.target, r.responder, r.port), (TARGET.into(), router.into(), 443));
        // Whole probe quoted: also fine.
        assert!(c.parse(&icmp_reply(router, &probe)).is_ok());
        // Less than 8 bytes of TCP: cannot be validated.
        assert_eq!(c.parse(&icmp_reply(router, &probe[..27])).unwrap_err(), Reject("icmp-bad-quote"));
        // Our ports, another sequence number: told apart from a quote of someone else's packet.
        let mut other = probe.clone();
        other[24] ^= 0xff;
        assert_eq!(c.parse(&icmp_reply(router, &other[..28])).unwrap_err(), Reject("icmp-quote-seq-mismatch"));
    }

    /// The generic stage hands a validation the quoted sequence number and IPv4 IP ID, and the
    /// quote's IP header and TCP bytes back with what it recovered.
    #[test]
    fn a_validation_sees_the_quote_and_gets_it_back() {
        struct Ident;
        impl Validation for Ident {
            type Probe = u16;
            fn answer(&self, _: &ProbeTag, _: u32, _: bool) -> Option<u16> {
                None
            }
            fn quote(&self, tag: &ProbeTag, seq: u32, ident: Option<u16>) -> Option<u16> {
                (seq == tag.seq).then_some(ident?)
            }
        }
        let c = ctx(&[ProbeVersion::V1]);
        let mut probe = quoted_probe(&c, TARGET, 443);
        probe[4..6].copy_from_slice(&0xbeefu16.to_be_bytes());
        let f = icmp_reply(Ipv4Addr::new(192, 0, 2, 1), &probe[..30]);
        let a = c.accept(&Ident, &f).unwrap();
        let q = a.quoted.unwrap();
        assert_eq!((a.probe, q.ip_header, q.tcp), (0xbeef, &probe[..20], &probe[20..30]));
        // The scan's validation on the same frame: no quote comes back with a SYN-ACK.
        let tag = c.validator.tag(US.into(), TARGET.into(), 443, ProbeVersion::V1);
        let ok = tcp_reply(TARGET, 443, tag.sport, 0x12, tag.seq.wrapping_add(1), &[]);
        assert!(c.accept(&KeyedSeq, &ok).unwrap().quoted.is_none());
        assert_eq!(c.accept(&Ident, &ok).unwrap_err(), Reject("validation-failed"));
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

    // Responses that must never become rows: one test per case, each asserting its reason.

    #[test]
    fn rst_acknowledging_another_sequence_number_is_rejected() {
        let c = ctx(&[ProbeVersion::V1]);
        let tag = c.validator.tag(US.into(), TARGET.into(), 443, ProbeVersion::V1);
        for ack in [tag.seq.wrapping_sub(1), tag.seq.wrapping_add(2), !tag.seq, 0] {
            let f = tcp_reply(TARGET, 443, tag.sport, 0x14, ack, &[]);
            assert_eq!(c.parse(&f).unwrap_err(), Reject("validation-failed"), "ack {ack:#x}");
        }
        // A bare RST (no ACK flag) with the right number is still ours: zmap accepts it too.
        assert_eq!(c.parse(&tcp_reply(TARGET, 443, tag.sport, 0x04, tag.seq, &[])).unwrap().kind, ResponseKind::Rst);
    }

    #[test]
    fn syn_ack_to_another_port_of_ours_is_rejected() {
        let c = ctx(&[ProbeVersion::V1]);
        let tag = c.validator.tag(US.into(), TARGET.into(), 443, ProbeVersion::V1);
        // Ports outside the probes' range (a server of this machine, an ephemeral client port).
        for dport in [22, 443, 8080, crate::keyed_hash::SPORT_LO - 1] {
            let f = tcp_reply(TARGET, 443, dport, 0x12, tag.seq.wrapping_add(1), &[]);
            assert_eq!(c.parse(&f).unwrap_err(), Reject("validation-failed"), "port {dport}");
        }
    }

    #[test]
    fn syn_ack_from_an_unprobed_address_with_a_probed_answer_is_rejected() {
        // Everything right for TARGET, but sent from its neighbour, or from TARGET's port 80
        // when only 443 was probed: the hash of (source, port) differs.
        let c = ctx(&[ProbeVersion::V1, ProbeVersion::V0]);
        let tag = c.validator.tag(US.into(), TARGET.into(), 443, ProbeVersion::V1);
        for (from, sport) in [(Ipv4Addr::new(198, 18, 0, 2), 443), (Ipv4Addr::new(203, 0, 113, 1), 443), (TARGET, 80)] {
            let f = tcp_reply(from, sport, tag.sport, 0x12, tag.seq.wrapping_add(1), &[]);
            assert_eq!(c.parse(&f).unwrap_err(), Reject("validation-failed"), "{from}:{sport}");
        }
    }

    fn quoted_probe(c: &Context, target: Ipv4Addr, port: u16) -> Vec<u8> {
        let tag = c.validator.tag(US.into(), target.into(), port, ProbeVersion::V1);
        let link = crate::probe::Link { src_mac: [0; 6], dst_mac: [0; 6], src_v4: Some(US), src_v6: None };
        let mut buf = [0u8; crate::probe::MAX_FRAME_LEN];
        let n = crate::probe::ProbeBuilder::new(&link, &[ProbeVersion::V1]).write(
            &mut buf,
            target.into(),
            port,
            ProbeVersion::V1,
            &tag,
        );
        buf[14..n].to_vec()
    }

    #[test]
    fn icmp_quoting_a_probe_to_an_unprobed_address_or_port_is_rejected() {
        let c = ctx(&[ProbeVersion::V1]);
        let router = Ipv4Addr::new(192, 0, 2, 1);
        let probe = quoted_probe(&c, TARGET, 443);
        assert!(c.parse(&icmp_reply(router, &probe[..28])).is_ok());
        let mut other_dst = probe.clone();
        other_dst[19] ^= 1; // destination 198.18.0.0: not the probe's target
        assert_eq!(c.parse(&icmp_reply(router, &other_dst[..28])).unwrap_err(), Reject("icmp-quote-not-ours"));
        let mut other_port = probe.clone();
        other_port[23] ^= 1; // destination port 442
        assert_eq!(c.parse(&icmp_reply(router, &other_port[..28])).unwrap_err(), Reject("icmp-quote-not-ours"));
        let mut other_sport = probe.clone();
        other_sport[21] ^= 1;
        assert_eq!(c.parse(&icmp_reply(router, &other_sport[..28])).unwrap_err(), Reject("icmp-quote-not-ours"));
    }

    #[test]
    fn icmp_quoting_someone_elses_datagram_is_rejected() {
        let c = ctx(&[ProbeVersion::V1]);
        let router = Ipv4Addr::new(192, 0, 2, 1);
        let probe = quoted_probe(&c, TARGET, 443);
        let mut other_src = probe.clone();
        other_src[15] = 99; // sent by 192.0.2.99, not by us
        assert_eq!(c.parse(&icmp_reply(router, &other_src[..28])).unwrap_err(), Reject("icmp-quote-not-ours"));
        let mut udp = probe.clone();
        udp[9] = 17; // our address, but a UDP datagram
        assert_eq!(c.parse(&icmp_reply(router, &udp[..28])).unwrap_err(), Reject("icmp-quote-not-ours"));
        let mut not_ip = probe.clone();
        not_ip[0] = 0x65;
        assert_eq!(c.parse(&icmp_reply(router, &not_ip[..28])).unwrap_err(), Reject("icmp-bad-quote"));
    }

    #[test]
    fn icmp_errors_that_end_a_probe_are_answers() {
        let c = ctx(&[ProbeVersion::V1]);
        let probe = quoted_probe(&c, TARGET, 443);
        let router = Ipv4Addr::new(192, 0, 2, 1);
        for (t, code) in [(3u8, 0u8), (3, 1), (3, 3), (3, 9), (3, 13), (3, 15), (11, 0), (11, 1), (12, 0), (12, 2)] {
            for quote in [&probe[..28], &probe[..]] {
                let mut f = icmp_reply(router, quote);
                f[34] = t;
                f[35] = code;
                let r = c.parse(&f).unwrap_or_else(|e| panic!("type {t} code {code}: {e:?}"));
                assert_eq!(r.kind, ResponseKind::Icmp { icmp_type: t, code });
                assert_eq!((r.target, r.port, r.responder, r.window), (TARGET.into(), 443, router.into(), 0));
            }
        }
    }

    /// A time exceeded from a routing loop, byte for byte: router 192.0.2.1 quoting the first 8
    /// bytes of TCP of our v1 probe to 198.18.0.1:443 (RFC 792's minimum). Only the seq and
    /// source port come from the hash; the vector fixes the rest of the layout.
    #[test]
    fn time_exceeded_vector() {
        let c = ctx(&[ProbeVersion::V1]);
        let tag = c.validator.tag(US.into(), TARGET.into(), 443, ProbeVersion::V1);
        let [s0, s1] = tag.sport.to_be_bytes();
        let [q0, q1, q2, q3] = tag.seq.to_be_bytes();
        #[rustfmt::skip]
        let mut f = vec![
            0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00, // Ethernet
            0x45, 0xc0, 0x00, 0x38, 0x12, 0x34, 0x00, 0x00, 0x40, 0x01, 0x00, 0x00, // IPv4, 56 bytes, ICMP
            192, 0, 2, 1, 192, 0, 2, 2,
            0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // time exceeded, TTL exceeded in transit
            0x45, 0x00, 0x00, 0x3c, 0x00, 0x00, 0x40, 0x00, 0x01, 0x06, 0x00, 0x00, // quoted IPv4, TTL 1
            192, 0, 2, 2, 198, 18, 0, 1,
            s0, s1, 0x01, 0xbb, q0, q1, q2, q3, // quoted TCP: ports and sequence number
        ];
        Ipv4Packet::new_unchecked(&mut f[14..34]).fill_checksum();
        IcmpPacket::new_unchecked(&mut f[34..]).fill_checksum_v4();
        let r = c.parse(&f).unwrap();
        assert_eq!(r.kind, ResponseKind::Icmp { icmp_type: 11, code: 0 });
        assert_eq!(
            (r.target, r.port, r.version, r.responder, r.ttl),
            (TARGET.into(), 443, ProbeVersion::V1, Ipv4Addr::new(192, 0, 2, 1).into(), 64)
        );
        f[34] = 4; // source quench
        assert_eq!(c.parse(&f).unwrap_err(), Reject("icmp-source-quench"));
        f[34] = 5; // redirect
        assert_eq!(c.parse(&f).unwrap_err(), Reject("icmp-redirect"));
    }

    /// An ICMPv6 time exceeded (hop limit exceeded in transit), byte for byte, quoting the whole
    /// v1 probe (as Linux routers do) and then only its first 8 bytes of TCP.
    #[test]
    fn time_exceeded_vector_v6() {
        let us: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let target: Ipv6Addr = "2001:db8:6::1".parse().unwrap();
        let router: Ipv6Addr = "2001:db8:0:9::2".parse().unwrap();
        let c = Context::one_source(Validator::from_seed(5), Some(US), Some(us), vec![ProbeVersion::V1]);
        let tag = c.validator.tag(us.into(), target.into(), 443, ProbeVersion::V1);
        let link = crate::probe::Link { src_mac: [0; 6], dst_mac: [0; 6], src_v4: None, src_v6: Some(us) };
        let mut probe = [0u8; crate::probe::MAX_FRAME_LEN];
        let n = crate::probe::ProbeBuilder::new(&link, &[ProbeVersion::V1]).write(
            &mut probe,
            target.into(),
            443,
            ProbeVersion::V1,
            &tag,
        );
        let quoted = &probe[14..n];
        for q in [quoted.len(), 48] {
            let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x86, 0xdd]; // Ethernet
            f.extend_from_slice(&[0x60, 0, 0, 0]); // IPv6
            f.extend_from_slice(&((8 + q) as u16).to_be_bytes());
            f.extend_from_slice(&[58, 61]); // ICMPv6, hop limit 61
            f.extend_from_slice(&router.octets());
            f.extend_from_slice(&us.octets());
            f.extend_from_slice(&[0x03, 0x00, 0, 0, 0, 0, 0, 0]); // time exceeded, code 0, unused
            f.extend_from_slice(&quoted[..q]);
            let r = c.parse(&f).unwrap_or_else(|e| panic!("quote of {q} bytes: {e:?}"));
            assert_eq!(r.kind, ResponseKind::Icmp { icmp_type: 3, code: 0 });
            assert_eq!((r.target, r.port, r.responder, r.ttl), (target.into(), 443, router.into(), 61));
            // Parameter problem, and ICMPv6 type 11 (not an ICMPv6 error: only ICMPv4's number).
            f[54] = 4;
            assert_eq!(c.parse(&f).unwrap().kind, ResponseKind::Icmp { icmp_type: 4, code: 0 });
            f[54] = 11;
            assert_eq!(c.parse(&f).unwrap_err(), Reject("icmp-other-type"));
            f[54] = 2;
            assert_eq!(c.parse(&f).unwrap_err(), Reject("icmp-packet-too-big"));
        }
    }

    /// Every reason the receiver can give is in docs/ERRORS.md's table of rejection reasons:
    /// the string literals inside `Reject(...)` in this file, the wire layer's reasons and the
    /// ICMP types that end nothing.
    #[test]
    fn every_rejection_reason_is_documented() {
        let doc = include_str!("../docs/ERRORS.md");
        let table = &doc[doc.find("## Answers that become no row").expect("the section")..];
        let code = include_str!("accept.rs");
        let code = &code[..code.find("#[cfg(test)]").unwrap()];
        let mut reasons: Vec<String> = Vec::new();
        let literals = |text: &str| -> Vec<String> { text.split('"').skip(1).step_by(2).map(str::to_string).collect() };
        for piece in code.split("Reject(").skip(1) {
            reasons.extend(literals(&piece[..piece.find(')').unwrap()]));
        }
        for piece in include_str!("wire/icmp.rs").split("NoEffect(\"").skip(1) {
            reasons.push(piece[..piece.find('"').unwrap()].to_string());
        }
        use crate::wire::Error as E;
        for e in [
            E::Truncated { what: "x", need: 1, have: 0 },
            E::BadHeaderLength { what: "x", len: 0 },
            E::BadVersion(0),
            E::BadOptionLength { kind: 0, len: 0 },
        ] {
            reasons.push(e.reason().to_string());
        }
        assert!(reasons.len() > 20, "{reasons:?}");
        for r in reasons {
            assert!(table.contains(&format!("`{r}`")), "rejection reason {r} is not in docs/ERRORS.md");
        }
    }

    #[test]
    fn icmp_that_ends_nothing_is_counted_under_its_own_reason() {
        let c = ctx(&[ProbeVersion::V1]);
        let probe = quoted_probe(&c, TARGET, 443);
        for (t, why) in
            [(4u8, "icmp-source-quench"), (5, "icmp-redirect"), (0, "icmp-other-type"), (8, "icmp-other-type")]
        {
            let mut f = icmp_reply(Ipv4Addr::new(192, 0, 2, 1), &probe[..28]);
            f[34] = t;
            assert_eq!(c.parse(&f).unwrap_err(), Reject(why), "type {t}");
        }
    }

    #[test]
    fn fragments_and_other_protocols_are_rejected() {
        let c = ctx(&[ProbeVersion::V1]);
        let tag = c.validator.tag(US.into(), TARGET.into(), 443, ProbeVersion::V1);
        let good = tcp_reply(TARGET, 443, tag.sport, 0x12, tag.seq.wrapping_add(1), &[]);
        let mut more_frags = good.clone();
        more_frags[20] = 0x20;
        assert_eq!(c.parse(&more_frags).unwrap_err(), Reject("fragment"));
        let mut later_frag = good.clone();
        later_frag[21] = 0x01;
        assert_eq!(c.parse(&later_frag).unwrap_err(), Reject("fragment"));
        let mut udp = good.clone();
        udp[23] = 17;
        assert_eq!(c.parse(&udp).unwrap_err(), Reject("not-tcp-or-icmp"));
        let mut arp = good.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(c.parse(&arp).unwrap_err(), Reject("not-ip"));
    }

    /// With several sources an answer validates at the source the hash sent its probe from,
    /// and at no other of ours; an ICMP error quoting the probe likewise; the rebuilt context
    /// of a scan's metadata validates the same.
    #[test]
    fn several_sources_validate_at_the_hashs_source_only() {
        use crate::sources::{SourceRange, Sources};
        let items = [SourceRange::parse("192.0.2.10-192.0.2.17").unwrap()];
        let sources = Sources::expand(&items).unwrap();
        let c = Context::new(Validator::from_seed(5), sources.clone(), vec![ProbeVersion::V1]);
        let key = sources.v4[0];
        let mut picked = std::collections::BTreeSet::new();
        for i in 0..64u32 {
            let target = Ipv4Addr::from(u32::from(TARGET) + i);
            let tag = c.validator.tag(key.into(), target.into(), 443, ProbeVersion::V1);
            let ours = sources.v4[source_index(&tag, 8)];
            picked.insert(ours);
            let reply = |to: Ipv4Addr| {
                let t = crate::wire::TcpRepr {
                    src_port: 443,
                    dst_port: tag.sport,
                    seq: 1,
                    ack: tag.seq.wrapping_add(1),
                    flags: TcpFlags(0x12),
                    window: 100,
                    options: &[],
                    payload: &[],
                };
                FrameRepr::tcp(target.into(), to.into(), 60, t).to_vec()
            };
            assert_eq!(c.parse(&reply(ours)).unwrap().target, IpAddr::V4(target));
            for other in sources.v4.iter().filter(|a| **a != ours) {
                assert_eq!(c.parse(&reply(*other)).unwrap_err(), Reject("source-mismatch"), "{target} to {other}");
            }
            assert_eq!(c.parse(&reply(Ipv4Addr::new(192, 0, 2, 18))).unwrap_err(), Reject("not-to-us"));
            // An ICMP error quoting the probe as sent from its source, then as if from another.
            let link = crate::probe::Link { src_mac: [0; 6], dst_mac: [0; 6], src_v4: Some(key), src_v6: None };
            let b = crate::probe::ProbeBuilder::with_sources(&link, &sources, &[ProbeVersion::V1]);
            let mut buf = [0u8; crate::probe::MAX_FRAME_LEN];
            let n = b.write_from(&mut buf, source_index(&tag, 8), target.into(), 443, ProbeVersion::V1, &tag);
            let probe = buf[14..n].to_vec();
            let icmp = |to: Ipv4Addr, quote: &[u8]| {
                let m = IcmpRepr { msg_type: 3, code: 13, rest_of_header: [0; 4], payload: quote };
                FrameRepr::icmp(Ipv4Addr::new(192, 0, 2, 1).into(), to.into(), 63, m).to_vec()
            };
            assert!(c.parse(&icmp(ours, &probe[..28])).is_ok());
            let mut moved = probe.clone();
            let other = *sources.v4.iter().find(|a| **a != ours).unwrap();
            moved[12..16].copy_from_slice(&other.octets());
            assert_eq!(c.parse(&icmp(other, &moved[..28])).unwrap_err(), Reject("source-mismatch"));
        }
        assert_eq!(picked.len(), 8, "64 targets reach all 8 sources");
        // The metadata's record of the scan rebuilds a context that decides the same.
        let record = mpscan_schema::metadata::ConfigRecord {
            seed: 5,
            source_ip: sources.strings(),
            source_ports: Some([32768, 65535]),
            probe_versions: vec!["v1".into()],
            ..Default::default()
        };
        let rebuilt = Context::from_record(&record).unwrap();
        assert_eq!(rebuilt.sources(), c.sources());
        let tag = c.validator.tag(key.into(), TARGET.into(), 443, ProbeVersion::V1);
        assert_eq!(rebuilt.validator.tag(key.into(), TARGET.into(), 443, ProbeVersion::V1), tag);
        // An older file: one source, no port range.
        let old =
            mpscan_schema::metadata::ConfigRecord { source_ip: vec![US.to_string()], source_ports: None, ..record };
        let ctx_old = Context::from_record(&old).unwrap();
        let t = ctx_old.validator.tag(US.into(), TARGET.into(), 443, ProbeVersion::V1);
        assert!(ctx_old.parse(&tcp_reply(TARGET, 443, t.sport, 0x12, t.seq.wrapping_add(1), &[])).is_ok());
        assert_eq!(t, ctx(&[ProbeVersion::V1]).validator.tag(US.into(), TARGET.into(), 443, ProbeVersion::V1));
    }

    #[test]
    fn ipv6_answers_without_an_ipv6_source_are_rejected() {
        // A scan of IPv4 targets only has no IPv6 source: any IPv6 frame is not ours.
        let c = ctx(&[ProbeVersion::V1]);
        let mut f = vec![0u8; 14 + 40 + 20];
        EthernetFrame::new_unchecked(&mut f[..]).set_ethertype(EtherType::Ipv6);
        f[14] = 0x60;
        assert_eq!(c.parse(&f).unwrap_err(), Reject("no-ipv6-source"));
    }
}

/// Property tests: a probe built by [`crate::probe`] parses with the wire views to exactly what
/// was meant, and the answers a target can give to it validate (and wrong ones do not), for
/// arbitrary seeds, targets, ports and versions, IPv4 and IPv6.
#[cfg(test)]
mod proptests;
