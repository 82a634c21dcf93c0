//! The userspace responders of the lab: the echoing and mirroring middleboxes, the v0-only
//! MPTCP server and a server naming no crypto algorithm, which no Linux kernel of today can play.
//!
//! A responder sees every frame routed to its range (an AF_PACKET socket on its namespace's
//! link; the namespace has no local route for the range, so its kernel stays silent) and turns
//! each SYN into one answer with [`Responder::answer`]. This module is the pure part: frame in,
//! frame out, built with [`crate::wire`]; the socket loop lives in `serve`.
//!
//! What each kind answers to a SYN on one of its ports (always `ack = probe seq + 1`, its own
//! ISN, its own MAC and the probe's addresses swapped):
//!
//! * [`ResponderKind::Echo`]: MSS 1460, SACK-permitted, timestamps (its own TSval, TSecr = the
//!   probe's TSval), NOP, window scale 7, and a byte-exact copy of the probe's MP_CAPABLE.
//! * [`ResponderKind::Mirror`]: the probe's whole option list, byte for byte (so the probe's
//!   TSval comes back as TSval).
//! * [`ResponderKind::V0Server`]: the same base options plus MP_CAPABLE v0, 12 bytes, flags
//!   0x81 and its own random key, to any probe that carried an MP_CAPABLE (RFC 8684 §3.1: the
//!   responder answers with a version no higher than offered; a v0-only server says 0); a plain
//!   SYN-ACK to a SYN without one.
//! * [`ResponderKind::NoAlgorithm`]: the same base options plus a 12-byte MP_CAPABLE of the
//!   probe's own version with its own key and flags 0x00: no crypto algorithm, which RFC 8684
//!   §3.1 says MUST be ignored (a broken stack, or a box that zeroes flags it does not know).
//! * [`ResponderKind::Plain`]: the base options only, as a SYN proxy answers (the trace lab's
//!   IPv6 SYN proxy, `super::paths`).
//!
//! The trace lab's boxes ([`Responder::on_path`]) also answer IPv6 and leave the probes whose
//! TTL (hop limit) expires at their router to its kernel.
//!
//! A SYN to any other port gets a RST (the host is there, the port is closed). Everything else
//! (non-IPv4, non-TCP, fragments, segments that are not a bare SYN, addresses outside the range)
//! is ignored with a reason. Incoming checksums are not verified: a SYN from a kernel socket in
//! the lab crosses veths with its checksum left to offload and would look wrong.

use crate::wire::{
    ethernet, ipv4, ipv6, tcp, tcp_option, EtherType, EthernetFrame, FrameRepr, IpRepr, Ipv4Packet, Ipv6Packet,
    MpCapable, TcpFlags, TcpOption, TcpPacket, TcpRepr,
};
use ipnet::{Ipv4Net, Ipv6Net};
use std::net::IpAddr;

/// Which middlebox or server a responder plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponderKind {
    /// Copies the probe's MP_CAPABLE.
    Echo,
    /// Returns the probe's whole option list.
    Mirror,
    /// A v0-only MPTCP server.
    V0Server,
    /// Answers MP_CAPABLE of the probe's version, its own key, and no algorithm bit (flags 0x00).
    NoAlgorithm,
    /// A SYN proxy's SYN-ACK: the base options, never MP_CAPABLE.
    Plain,
}

/// The per-answer values a responder makes up: passed in so that tests are deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fresh {
    /// Our initial sequence number.
    pub isn: u32,
    /// Our TSval.
    pub tsval: u32,
    /// Our v0 key.
    pub key: u64,
    /// The IP ident.
    pub ident: u16,
}

/// Why a frame got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// Not an IPv4 frame (nor IPv6, for a responder given an IPv6 prefix).
    NotIpv4,
    /// The frame could not be read (the wire layer's reason).
    Malformed(&'static str),
    /// Not TCP, or a fragment.
    NotTcp,
    /// Not a bare SYN.
    NotSyn,
    /// Destination outside our range.
    NotOurs,
    /// The answer's options would not fit in 40 bytes.
    OptionsTooLong,
    /// On a path: the TTL (hop limit) expires here, the router's kernel answers it.
    ExpiresHere,
    /// An RFC 792 router: the TTL does not expire here, the kernel forwards it.
    Forwarded,
}

impl Ignored {
    /// A short name for counters.
    pub fn reason(self) -> &'static str {
        match self {
            Ignored::NotIpv4 => "not-ipv4",
            Ignored::Malformed(r) => r,
            Ignored::NotTcp => "not-tcp",
            Ignored::NotSyn => "not-syn",
            Ignored::NotOurs => "not-ours",
            Ignored::OptionsTooLong => "options-too-long",
            Ignored::ExpiresHere => "expires-here",
            Ignored::Forwarded => "forwarded",
        }
    }
}

/// Longest frame a responder writes: Ethernet + IPv6 + TCP with 40 bytes of options.
pub const MAX_ANSWER_LEN: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN + tcp::MAX_HEADER_LEN;

/// Our MSS, window scale and receive window.
const MSS: u16 = 1460;
const WSCALE: u8 = 7;
const WINDOW: u16 = 65160;

/// A responder for one range.
#[derive(Debug, Clone)]
pub struct Responder {
    kind: ResponderKind,
    mac: [u8; 6],
    prefix: Option<Ipv4Net>,
    prefix6: Option<Ipv6Net>,
    ports: Vec<u16>,
    on_path: bool,
}

/// What a SYN carried, as far as an answer needs it.
#[derive(Default)]
struct SynOptions<'a> {
    mss: bool,
    sack_perm: bool,
    wscale: bool,
    tsval: Option<u32>,
    /// The raw bytes of the first valid MP_CAPABLE.
    mp_capable: Option<&'a [u8]>,
}

impl<'a> SynOptions<'a> {
    /// Walks the option area with the wire layer's parser, keeping each option's raw bytes
    /// (the echo must copy them exactly, whatever their length).
    fn parse(mut rest: &'a [u8]) -> SynOptions<'a> {
        let mut s = SynOptions::default();
        while !rest.is_empty() {
            let Ok((opt, next)) = TcpOption::parse(rest) else { break };
            let raw = &rest[..rest.len() - next.len()];
            match opt {
                TcpOption::EndOfList => break,
                TcpOption::MaxSegmentSize(_) => s.mss = true,
                TcpOption::SackPermitted => s.sack_perm = true,
                TcpOption::WindowScale(_) => s.wscale = true,
                TcpOption::Timestamps { tsval, .. } => s.tsval = Some(tsval),
                TcpOption::MpCapable(_) if s.mp_capable.is_none() => s.mp_capable = Some(raw),
                _ => {}
            }
            rest = next;
        }
        s
    }
}

impl Responder {
    /// A responder of `kind` answering for `prefix` on `ports`, sending from `mac`.
    pub fn new(kind: ResponderKind, mac: [u8; 6], prefix: Ipv4Net, ports: Vec<u16>) -> Responder {
        Responder { kind, mac, prefix: Some(prefix), prefix6: None, ports, on_path: false }
    }

    /// A responder of `kind` answering for the IPv6 `prefix6` only (the trace lab's SYN proxy
    /// for IPv6, beside the kernel's for IPv4).
    pub fn new_ipv6(kind: ResponderKind, mac: [u8; 6], prefix6: Ipv6Net, ports: Vec<u16>) -> Responder {
        Responder { kind, mac, prefix: None, prefix6: Some(prefix6), ports, on_path: false }
    }

    /// Also answers for the IPv6 prefix `prefix6` (the trace lab's echoing box; the scan lab's
    /// responders speak IPv4 only).
    pub fn with_ipv6(mut self, prefix6: Ipv6Net) -> Responder {
        self.prefix6 = Some(prefix6);
        self
    }

    /// Whether it answers IPv6 too (its socket must then receive every EtherType).
    pub fn speaks_ipv6(&self) -> bool {
        self.prefix6.is_some()
    }

    /// Plays a box inside a router (the trace lab): it answers only the SYNs the router would
    /// forward (TTL or hop limit above 1), leaving the others to the kernel's time exceeded.
    pub fn on_path(mut self) -> Responder {
        self.on_path = true;
        self
    }

    /// Turns `frame` into an answer written at the start of `out` (at least
    /// [`MAX_ANSWER_LEN`] bytes) and returns its length, or says why there is none.
    pub fn answer(&self, frame: &[u8], fresh: Fresh, out: &mut [u8]) -> Result<usize, Ignored> {
        let eth = EthernetFrame::new_checked(frame).map_err(|e| Ignored::Malformed(e.reason()))?;
        let (src, dst, ttl, seg) = match eth.ethertype() {
            EtherType::Ipv4 => {
                let ip = Ipv4Packet::new_checked(eth.payload()).map_err(|e| Ignored::Malformed(e.reason()))?;
                if ip.protocol() != ipv4::protocol::TCP || ip.frag_offset() != 0 || ip.more_frags() {
                    return Err(Ignored::NotTcp);
                }
                if !self.prefix.is_some_and(|p| p.contains(&ip.dst_addr())) {
                    return Err(Ignored::NotOurs);
                }
                (IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()), ip.ttl(), ip.into_payload())
            }
            EtherType::Ipv6 if self.prefix6.is_some() => {
                let ip = Ipv6Packet::new_checked(eth.payload()).map_err(|e| Ignored::Malformed(e.reason()))?;
                if ip.next_header() != ipv4::protocol::TCP {
                    return Err(Ignored::NotTcp);
                }
                if !self.prefix6.is_some_and(|p| p.contains(&ip.dst_addr())) {
                    return Err(Ignored::NotOurs);
                }
                (IpAddr::V6(ip.src_addr()), IpAddr::V6(ip.dst_addr()), ip.hop_limit(), ip.into_payload())
            }
            _ => return Err(Ignored::NotIpv4),
        };
        if self.on_path && ttl <= 1 {
            return Err(Ignored::ExpiresHere);
        }
        let syn = TcpPacket::new_checked(seg).map_err(|e| Ignored::Malformed(e.reason()))?;
        let f = syn.flags();
        if !f.syn() || f.ack() || f.rst() || f.fin() {
            return Err(Ignored::NotSyn);
        }

        let mut opts = [0u8; 64];
        let (flags, seq, window, opts_len) = if self.ports.contains(&syn.dst_port()) {
            let n = self.syn_ack_options(syn.options(), fresh, &mut opts);
            if n > 40 {
                return Err(Ignored::OptionsTooLong);
            }
            (TcpFlags::SYN | TcpFlags::ACK, fresh.isn, WINDOW, n)
        } else {
            (TcpFlags::RST | TcpFlags::ACK, 0, 0, 0)
        };

        let tcp = TcpRepr {
            src_port: syn.dst_port(),
            dst_port: syn.src_port(),
            seq,
            ack: syn.seq().wrapping_add(1),
            flags: TcpFlags(flags),
            window,
            options: &opts[..opts_len],
            payload: &[],
        };
        let mut frame = FrameRepr::tcp(dst, src, 64, tcp).with_macs(self.mac, eth.src());
        if let IpRepr::V4(ip) = &mut frame.ip {
            (ip.ident, ip.dont_frag) = (fresh.ident, true);
        }
        Ok(frame.emit(out))
    }

    /// Writes the SYN-ACK's option list (padded to a multiple of 4) and returns its length,
    /// which may exceed 40 (the caller refuses such an answer).
    fn syn_ack_options(&self, syn_opts: &[u8], fresh: Fresh, buf: &mut [u8; 64]) -> usize {
        if self.kind == ResponderKind::Mirror {
            let n = syn_opts.len().min(buf.len());
            buf[..n].copy_from_slice(&syn_opts[..n]);
            return syn_opts.len();
        }
        let s = SynOptions::parse(syn_opts);
        // Linux's SYN-ACK layout: MSS, SACK-permitted, timestamps, NOP, window scale; each only
        // if the SYN offered it.
        let mut list: Vec<TcpOption<'_>> = Vec::with_capacity(7);
        if s.mss {
            list.push(TcpOption::MaxSegmentSize(MSS));
        }
        if s.sack_perm {
            list.push(TcpOption::SackPermitted);
        }
        if let Some(tsecr) = s.tsval {
            list.push(TcpOption::Timestamps { tsval: fresh.tsval, tsecr });
        }
        if s.wscale {
            list.push(TcpOption::NoOperation);
            list.push(TcpOption::WindowScale(WSCALE));
        }
        match (self.kind, s.mp_capable) {
            (ResponderKind::Echo, Some(raw)) => list.push(TcpOption::Mptcp { subtype: 0, bytes: raw }),
            (ResponderKind::V0Server, Some(_)) => list.push(TcpOption::MpCapable(MpCapable {
                version: 0,
                flags: 0x81,
                sender_key: Some(fresh.key),
                receiver_key: None,
            })),
            (ResponderKind::NoAlgorithm, Some(raw)) => list.push(TcpOption::MpCapable(MpCapable {
                version: raw[2] & 0x0f,
                flags: 0x00,
                sender_key: Some(fresh.key),
                receiver_key: None,
            })),
            _ => {}
        }
        let need: usize = list.iter().map(|o| o.buffer_len()).sum();
        if need > 40 {
            return need;
        }
        tcp_option::emit_all(&list, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyed_hash::Validator;
    use crate::probe::{Link, ProbeBuilder, ProbeVersion, SynOption};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    const SCANNER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const ROUTER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const OUR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 3];
    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    const SRC6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    const FRESH: Fresh = Fresh { isn: 0xdead_beef, tsval: 0x0102_0304, key: 0x1122_3344_5566_7788, ident: 7 };

    /// A probe as `mpscan scan` sends it, from the project's own probe builder.
    fn probe(dst: &str, port: u16, v: ProbeVersion) -> (Vec<u8>, crate::probe::ProbeTag) {
        let link = Link { src_mac: SCANNER_MAC, dst_mac: ROUTER_MAC, src_v4: Some(SRC), src_v6: Some(SRC6) };
        let b = ProbeBuilder::new(&link, &[v]);
        let dst: IpAddr = dst.parse().unwrap();
        let src = if dst.is_ipv6() { IpAddr::V6(SRC6) } else { IpAddr::V4(SRC) };
        let tag = Validator::from_seed(1).tag(src, dst, port, v);
        let mut buf = vec![0u8; 128];
        let n = b.write(&mut buf, dst, port, v, &tag);
        buf.truncate(n);
        (buf, tag)
    }

    fn responder(kind: ResponderKind) -> Responder {
        Responder::new(kind, OUR_MAC, "198.51.100.0/24".parse().unwrap(), vec![80, 443])
    }

    /// Answers `frame` and checks everything every answer must satisfy.
    fn answer(kind: ResponderKind, frame: &[u8]) -> Vec<u8> {
        let mut out = [0u8; MAX_ANSWER_LEN];
        let n = responder(kind).answer(frame, FRESH, &mut out).expect("an answer");
        let out = out[..n].to_vec();
        let in_eth = EthernetFrame::new_checked(frame).unwrap();
        let in_ip = Ipv4Packet::new_checked(in_eth.payload()).unwrap();
        let in_tcp = TcpPacket::new_checked(in_ip.payload()).unwrap();
        let e = EthernetFrame::new_checked(&out[..]).unwrap();
        assert_eq!((e.dst(), e.src()), (SCANNER_MAC, OUR_MAC));
        let ip = Ipv4Packet::new_checked(e.payload()).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!((ip.src_addr(), ip.dst_addr()), (in_ip.dst_addr(), in_ip.src_addr()));
        let t = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(t.verify_checksum_v4(ip.src_addr(), ip.dst_addr()));
        assert_eq!((t.src_port(), t.dst_port()), (in_tcp.dst_port(), in_tcp.src_port()));
        assert_eq!(t.ack(), in_tcp.seq().wrapping_add(1));
        out
    }

    fn tcp_of(frame: &[u8]) -> TcpPacket<Vec<u8>> {
        let e = EthernetFrame::new_checked(frame).unwrap();
        let ip = Ipv4Packet::new_checked(e.payload()).unwrap();
        TcpPacket::new_checked(ip.payload().to_vec()).unwrap()
    }

    fn mp_capable(t: &TcpPacket<Vec<u8>>) -> Option<MpCapable> {
        t.option_iter().find_map(|o| match o {
            Ok(TcpOption::MpCapable(m)) => Some(m),
            _ => None,
        })
    }

    fn timestamps(t: &TcpPacket<Vec<u8>>) -> Option<(u32, u32)> {
        t.option_iter().find_map(|o| match o {
            Ok(TcpOption::Timestamps { tsval, tsecr }) => Some((tsval, tsecr)),
            _ => None,
        })
    }

    #[test]
    fn echo_copies_the_mp_capable_exactly() {
        for v in [ProbeVersion::V1, ProbeVersion::V0] {
            let (syn, tag) = probe("198.51.100.9", 443, v);
            let t = tcp_of(&answer(ResponderKind::Echo, &syn));
            assert_eq!(t.flags().0, TcpFlags::SYN | TcpFlags::ACK);
            assert_eq!(t.seq(), FRESH.isn);
            assert_eq!(mp_capable(&t), Some(v.syn_option(tag.key)), "{v}");
            assert_eq!(timestamps(&t), Some((FRESH.tsval, tag.tsval)));
            let syn_t = tcp_of(&syn);
            assert_ne!(t.options(), syn_t.options(), "an echo is not a mirror");
        }
    }

    #[test]
    fn mirror_returns_the_whole_option_list() {
        for v in [ProbeVersion::V1, ProbeVersion::V0] {
            let (syn, tag) = probe("198.51.100.200", 80, v);
            let t = tcp_of(&answer(ResponderKind::Mirror, &syn));
            assert_eq!(t.options(), tcp_of(&syn).options());
            assert_eq!(timestamps(&t), Some((tag.tsval, 0)), "our TSval comes back as TSval");
        }
    }

    #[test]
    fn v0_server_answers_v0_with_its_own_key() {
        for v in [ProbeVersion::V0, ProbeVersion::V1] {
            let (syn, tag) = probe("198.51.100.1", 443, v);
            let t = tcp_of(&answer(ResponderKind::V0Server, &syn));
            let m = mp_capable(&t).unwrap();
            assert_eq!((m.version, m.flags, m.sender_key), (0, 0x81, Some(FRESH.key)));
            assert_ne!(m.sender_key, Some(tag.key));
            let raw = t.options();
            assert!(raw.windows(4).any(|w| w == [0x1e, 0x0c, 0x00, 0x81]), "{raw:02x?}");
        }
    }

    #[test]
    fn no_algorithm_server_answers_the_probes_version_with_flags_zero() {
        for (v, version_byte) in [(ProbeVersion::V0, 0x00), (ProbeVersion::V1, 0x01)] {
            let (syn, tag) = probe("198.51.100.1", 443, v);
            let t = tcp_of(&answer(ResponderKind::NoAlgorithm, &syn));
            let m = mp_capable(&t).unwrap();
            assert_eq!((m.version, m.flags, m.sender_key), (version_byte, 0x00, Some(FRESH.key)));
            assert_ne!(m.sender_key, Some(tag.key));
            let raw = t.options();
            assert!(raw.windows(4).any(|w| w == [0x1e, 0x0c, version_byte, 0x00]), "{raw:02x?}");
        }
    }

    #[test]
    fn plain_syn_gets_plain_syn_ack() {
        let (mut syn, _) = probe("198.51.100.1", 443, ProbeVersion::V1);
        // Overwrite the 4-byte MP_CAPABLE at the end of the option list with NOPs; fix nothing
        // else (checksums are not verified on input).
        let n = syn.len();
        syn[n - 4..].fill(1);
        for kind in [ResponderKind::V0Server, ResponderKind::Echo, ResponderKind::NoAlgorithm] {
            let t = tcp_of(&answer(kind, &syn));
            assert_eq!(mp_capable(&t), None, "{kind:?}");
            assert_eq!(t.flags().0, TcpFlags::SYN | TcpFlags::ACK);
        }
    }

    #[test]
    fn other_ports_get_a_rst() {
        let (syn, _) = probe("198.51.100.1", 22, ProbeVersion::V1);
        let t = tcp_of(&answer(ResponderKind::Echo, &syn));
        assert_eq!(t.flags().0, TcpFlags::RST | TcpFlags::ACK);
        assert!(t.options().is_empty());
    }

    #[test]
    fn ignores_what_is_not_a_syn_for_us() {
        let r = responder(ResponderKind::Echo);
        let mut out = [0u8; MAX_ANSWER_LEN];
        let (syn, _) = probe("203.0.113.1", 80, ProbeVersion::V1);
        assert_eq!(r.answer(&syn, FRESH, &mut out), Err(Ignored::NotOurs));
        let (syn, _) = probe("198.51.100.1", 80, ProbeVersion::V1);
        // Our own answer (a SYN-ACK) must not be answered.
        let ans = answer(ResponderKind::Echo, &syn);
        let mut ans = ans.clone();
        ans[30..34].copy_from_slice(&[198, 51, 100, 2]);
        assert_eq!(r.answer(&ans, FRESH, &mut out), Err(Ignored::NotSyn));
        for cut in [0, 10, 20, 40, syn.len() - 1] {
            assert!(r.answer(&syn[..cut], FRESH, &mut out).is_err(), "cut at {cut}");
        }
        let mut arp = syn.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(r.answer(&arp, FRESH, &mut out), Err(Ignored::NotIpv4));
    }

    #[test]
    fn on_path_echo_answers_both_families_and_leaves_expiring_probes_to_the_kernel() {
        let r = responder(ResponderKind::Echo).with_ipv6("2001:db8:77::/48".parse().unwrap()).on_path();
        let mut out = [0u8; MAX_ANSWER_LEN];
        for (dst, ttl_at) in [("198.51.100.9", 14 + 8), ("2001:db8:77:6::2", 14 + 7)] {
            let (mut syn, tag) = probe(dst, 443, ProbeVersion::V1);
            syn[ttl_at] = 2;
            let n = r.answer(&syn, FRESH, &mut out).expect("an answer");
            let f = FrameRepr::parse(&out[..n]).unwrap().unwrap();
            let FrameRepr { ethernet, ip, l4: crate::wire::L4Repr::Tcp(t) } = f else { panic!("not TCP") };
            assert_eq!((ethernet.src, ethernet.dst), (OUR_MAC, SCANNER_MAC));
            assert_eq!((ip.src_addr(), ip.ttl()), (dst.parse().unwrap(), 64));
            assert_eq!(t.flags.0, TcpFlags::SYN | TcpFlags::ACK);
            let opts = crate::wire::TcpOptions::new(t.options);
            let mpc = opts.filter_map(Result::ok).find_map(|o| match o {
                TcpOption::MpCapable(m) => Some(m),
                _ => None,
            });
            assert_eq!(mpc, Some(ProbeVersion::V1.syn_option(tag.key)), "{dst}");
            if let IpRepr::V6(_) = ip {
                let seg = &out[14 + ipv6::HEADER_LEN..n];
                let c =
                    crate::wire::checksum::pseudo_header(ip.src_addr(), ip.dst_addr(), ipv4::protocol::TCP, seg.len());
                assert_eq!(crate::wire::checksum::finish(crate::wire::checksum::sum(c, seg)), 0, "TCP checksum");
            }
            // Expiring here: the router's kernel sends the time exceeded, the box stays silent.
            syn[ttl_at] = 1;
            assert_eq!(r.answer(&syn, FRESH, &mut out), Err(Ignored::ExpiresHere), "{dst}");
        }
        // The IPv6 SYN proxy: a plain SYN-ACK, and IPv4 is not its to answer.
        let plain = Responder::new_ipv6(ResponderKind::Plain, OUR_MAC, "2001:db8:77::/48".parse().unwrap(), vec![443])
            .on_path();
        let (mut syn6, _) = probe("2001:db8:77:6::2", 443, ProbeVersion::V0);
        syn6[14 + 7] = 2;
        let n = plain.answer(&syn6, FRESH, &mut out).expect("an answer");
        let Some(Ok(FrameRepr { l4: crate::wire::L4Repr::Tcp(t), .. })) = FrameRepr::parse(&out[..n]) else {
            panic!("not TCP")
        };
        assert_eq!(t.flags.0, TcpFlags::SYN | TcpFlags::ACK);
        assert!(crate::wire::TcpOptions::new(t.options).all(|o| !matches!(o, Ok(TcpOption::MpCapable(_)))));
        let (syn4, _) = probe("198.51.100.9", 443, ProbeVersion::V1);
        assert_eq!(plain.answer(&syn4, FRESH, &mut out), Err(Ignored::NotOurs));
        // Without an IPv6 prefix, IPv6 is not ours to answer.
        let (syn6, _) = probe("2001:db8:77:6::2", 443, ProbeVersion::V1);
        assert_eq!(responder(ResponderKind::Echo).answer(&syn6, FRESH, &mut out), Err(Ignored::NotIpv4));
    }
}
