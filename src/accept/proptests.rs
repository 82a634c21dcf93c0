//! Property tests of the acceptance stage: random seeds, targets, ports and answers of every kind.
use super::*;
use crate::probe::{options_of, Link, ProbeBuilder, SynOption, MAX_FRAME_LEN};
use crate::wire::{FrameRepr, IcmpRepr, L4Repr, TcpFlags, TcpOption, TcpRepr};
use proptest::prelude::*;

const US4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const US6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

/// The probe turned into the target's answer: addresses and ports swapped, `flags`, `ack`,
/// and the probe's options (a mirroring box's answer).
fn answer(probe: &[u8], flags: u8, ack: u32) -> Vec<u8> {
    let p = FrameRepr::parse(probe).unwrap().unwrap();
    let L4Repr::Tcp(syn) = p.l4 else { panic!("a probe is TCP") };
    let tcp = TcpRepr {
        src_port: syn.dst_port,
        dst_port: syn.src_port,
        seq: 0x0bad_cafe,
        ack,
        flags: TcpFlags(flags),
        ..syn
    };
    FrameRepr::tcp(p.ip.dst_addr(), p.ip.src_addr(), p.ip.ttl(), tcp).to_vec()
}

/// An ICMP(v6) error of `icmp_type` from `router` to us quoting `quoted`.
fn icmp_error(router: IpAddr, icmp_type: u8, quoted: &[u8]) -> Vec<u8> {
    let us: IpAddr = if router.is_ipv6() { US6.into() } else { US4.into() };
    let icmp = IcmpRepr { msg_type: icmp_type, code: 1, rest_of_header: [0; 4], payload: quoted };
    FrameRepr::icmp(router, us, 60, icmp).to_vec()
}

fn target() -> impl Strategy<Value = IpAddr> {
    prop_oneof![any::<u32>().prop_map(|a| IpAddr::V4(a.into())), any::<u128>().prop_map(|a| IpAddr::V6(a.into()))]
}

proptest! {
    #[test]
    fn probe_build_parse_and_answer_validation(
        seed in any::<u64>(), dst in target(), port in 1u16.., v0 in any::<bool>(), delta in 1u32..,
    ) {
        let version = if v0 { ProbeVersion::V0 } else { ProbeVersion::V1 };
        let versions = [ProbeVersion::V1, ProbeVersion::V0];
        let link = Link { src_mac: [2, 0, 0, 0, 0, 2], dst_mac: [2, 0, 0, 0, 0, 1], src_v4: Some(US4), src_v6: Some(US6) };
        let ctx = Context::one_source(Validator::from_seed(seed), Some(US4), Some(US6), versions.to_vec());
        let src = if dst.is_ipv4() { IpAddr::V4(US4) } else { IpAddr::V6(US6) };
        let tag = ctx.validator.tag(src, dst, port, version);
        let mut buf = [0u8; MAX_FRAME_LEN];
        let n = ProbeBuilder::new(&link, &versions).write(&mut buf, dst, port, version, &tag);
        let probe = &buf[..n];

        // Build -> parse with the checked views.
        let eth = EthernetFrame::new_checked(probe).unwrap();
        let (l3, seg): (&[u8], &[u8]) = match dst {
            IpAddr::V4(d) => {
                let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
                prop_assert!(ip.verify_checksum());
                prop_assert_eq!((ip.src_addr(), ip.dst_addr(), ip.protocol()), (US4, d, protocol::TCP));
                prop_assert_eq!(ip.total_len() as usize, n - 14);
                let t = TcpPacket::new_checked(ip.payload()).unwrap();
                prop_assert!(t.verify_checksum_v4(US4, d));
                (&probe[14..], &probe[34..])
            }
            IpAddr::V6(d) => {
                let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
                prop_assert_eq!((ip.src_addr(), ip.dst_addr(), ip.next_header()), (US6, d, protocol::TCP));
                prop_assert_eq!(ip.payload_len() as usize, n - 54);
                let t = TcpPacket::new_checked(ip.payload()).unwrap();
                prop_assert!(t.verify_checksum_v6(US6, d));
                (&probe[14..], &probe[54..])
            }
        };
        let t = TcpPacket::new_checked(seg).unwrap();
        prop_assert_eq!((t.src_port(), t.dst_port(), t.seq(), t.flags()), (tag.sport, port, tag.seq, TcpFlags(TcpFlags::SYN)));
        let (want, len) = options_of(version, &tag);
        prop_assert_eq!(t.options(), &want[..len]);
        let opts: Vec<TcpOption> = t.option_iter().collect::<crate::wire::Result<_>>().unwrap();
        prop_assert_eq!(opts.last().copied(), Some(TcpOption::MpCapable(version.syn_option(tag.key))));
        let ts = TcpOption::Timestamps { tsval: tag.tsval, tsecr: 0 };
        prop_assert!(opts.contains(&ts));

        // Our own probe seen on the wire is never a response.
        prop_assert_eq!(ctx.parse(probe).unwrap_err(), Reject("not-to-us"));

        // The target's SYN-ACK validates, back to this (target, port, version, tag).
        let ok = answer(probe, TcpFlags::SYN | TcpFlags::ACK, tag.seq.wrapping_add(1));
        let r = ctx.parse(&ok).unwrap();
        prop_assert_eq!((r.target, r.port, r.version, r.tag, r.kind, r.responder), (dst, port, version, tag, ResponseKind::SynAck, dst));
        prop_assert_eq!(r.options, &want[..len]);
        // A RST acknowledging seq or seq + 1 too.
        for ack in [tag.seq, tag.seq.wrapping_add(1)] {
            prop_assert_eq!(ctx.parse(&answer(probe, TcpFlags::RST | TcpFlags::ACK, ack)).unwrap().kind, ResponseKind::Rst);
        }
        // Any other acknowledgment number does not.
        let bad = answer(probe, TcpFlags::SYN | TcpFlags::ACK, tag.seq.wrapping_add(1).wrapping_add(delta));
        prop_assert_eq!(ctx.parse(&bad).unwrap_err(), Reject("validation-failed"));
        // Neither does the same answer to a scan with another seed.
        let other = Context { validator: Validator::from_seed(seed ^ 1), ..ctx.clone() };
        prop_assert!(other.parse(&ok).is_err());

        // An ICMP error quoting the probe (header + 8 bytes, or all of it) validates too.
        let router = match dst {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        };
        // Every type that ends a probe: unreachable, time exceeded, parameter problem.
        let hdr = if dst.is_ipv4() { 20 } else { 40 };
        let ending = if dst.is_ipv4() { [icmp::V4_DEST_UNREACHABLE, icmp::V4_TIME_EXCEEDED, icmp::V4_PARAMETER_PROBLEM] }
            else { [icmp::V6_DEST_UNREACHABLE, icmp::V6_TIME_EXCEEDED, icmp::V6_PARAMETER_PROBLEM] };
        for t in ending {
            for q in [hdr + 8, l3.len()] {
                let f = icmp_error(router, t, &l3[..q]);
                let r = ctx.parse(&f).unwrap();
                prop_assert_eq!((r.target, r.port, r.version, r.responder), (dst, port, version, router));
                prop_assert_eq!(r.kind, ResponseKind::Icmp { icmp_type: t, code: 1 });
            }
        }
        // Quoting a different sequence number with our ports: counted apart.
        let mut other_seq = l3[..hdr + 8].to_vec();
        other_seq[hdr + 4..hdr + 8].copy_from_slice(&tag.seq.wrapping_add(delta).to_be_bytes());
        let f = icmp_error(router, ending[1], &other_seq);
        prop_assert_eq!(ctx.parse(&f).unwrap_err(), Reject("icmp-quote-seq-mismatch"));
        // Source quench / redirect / packet too big quoting the very probe: no response.
        let quiet = if dst.is_ipv4() { [icmp::V4_SOURCE_QUENCH, icmp::V4_REDIRECT] } else { [icmp::V6_PACKET_TOO_BIG, icmp::V6_REDIRECT] };
        for t in quiet {
            let icmp::Effect::NoEffect(why) = icmp::effect(dst.is_ipv6(), t) else { unreachable!() };
            prop_assert_eq!(ctx.parse(&icmp_error(router, t, &l3[..hdr + 8])).unwrap_err(), Reject(why));
        }
    }

    /// Any bytes as a frame: a response or a reason, never a panic; and any bytes after a
    /// valid Ethernet/IPv4 header with our address: the same.
    #[test]
    fn any_frame_is_a_response_or_a_reason(bytes in proptest::collection::vec(any::<u8>(), 0..200), v6 in any::<bool>()) {
        let ctx = Context::one_source(Validator::from_seed(1), Some(US4), Some(US6), vec![ProbeVersion::V1, ProbeVersion::V0]);
        let _ = ctx.parse(&bytes);
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(if v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
        f.extend_from_slice(&bytes);
        if let Err(Reject(why)) = ctx.parse(&f) {
            prop_assert!(!why.is_empty());
        }
    }
}
