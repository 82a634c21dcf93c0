//! The receive path under test, shared by the fuzz targets and by the regression test of the
//! main crate (`tests/fuzz_replay.rs` includes this file), so that a committed input is replayed
//! through exactly the code the fuzzer ran.
//!
//! The path is the scanner's: raw Ethernet frame -> [`Context::parse`] (validation, or a counted
//! rejection) -> [`classify`] -> [`new_row`] -> one CSV record in memory. The context is fixed:
//! the validator of seed [`SEED`], our IPv4 source 192.0.2.2 and IPv6 source 2001:db8::2, both
//! probe versions. Besides "no panic", every step checks what must hold of its output.
//!
//! [`structured`] is the structure-aware variant: its input is not a frame but a recipe (family,
//! version, answer kind, target, port, length fiddles, option bytes) from which it builds a
//! response to one of our probes, with the right acknowledgment number, so that validation
//! passes and the fuzzer's mutations reach the option walker and the classifier.

use mpscan::accept::{Context, Reject, Response, ResponseKind};
use mpscan::classify::{classify, Class, Classification};
use mpscan::keyed_hash::{Validator, SPORT_HI, SPORT_LO};
use mpscan::output::{new_row, Row, COLUMNS};
use mpscan::probe::{Link, ProbeBuilder, ProbeVersion, MAX_FRAME_LEN};
use mpscan::wire::{
    ethernet, ip, Error as WireError, FrameRepr, IcmpRepr, Ipv4Packet, Ipv6Packet, TcpFlags, TcpOption, TcpOptions,
    TcpPacket, TcpRepr,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime};

/// The seed of the fixed validator.
pub const SEED: u64 = 0x5eed;
/// Our IPv4 source.
pub const SRC_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// Our IPv6 source.
pub const SRC_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
/// The router that sends ICMP errors in the seeds.
pub const ROUTER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The router that sends ICMPv6 errors in the seeds.
pub const ROUTER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

/// The fixed receive context: validator of [`SEED`], both sources, both versions.
pub fn context() -> Context {
    Context::one_source(
        Validator::from_seed(SEED),
        Some(SRC_V4),
        Some(SRC_V6),
        vec![ProbeVersion::V1, ProbeVersion::V0],
    )
}

/// What one frame became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Rejected, with the metadata's reason.
    Rejected(&'static str),
    /// Validated and classified; the CSV record as written.
    Row(Class, String),
}

/// Runs one raw frame through the receive path, checking every step's output. Panics only if an
/// invariant is broken (which is what a fuzzer reports).
pub fn frame(ctx: &Context, data: &[u8]) -> Outcome {
    match ctx.parse(data) {
        Err(Reject(why)) => {
            assert!(
                !why.is_empty() && why.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "reason {why:?}"
            );
            Outcome::Rejected(why)
        }
        Ok(r) => {
            check_response(ctx, &r);
            let v = classify(&r);
            check_verdict(&r, &v);
            let row = new_row(&r, &v, SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456));
            Outcome::Row(v.class, csv_record(&row))
        }
    }
}

/// A validated response really is the answer to one of our probes.
fn check_response(ctx: &Context, r: &Response<'_>) {
    let src = match r.target {
        IpAddr::V4(_) => ctx.sources().key_for(true).expect("v4 source"),
        IpAddr::V6(_) => ctx.sources().key_for(false).expect("v6 source"),
    };
    assert_eq!(ctx.validator.tag(src, r.target, r.port, r.version), r.tag, "tag not recomputable");
    assert!((SPORT_LO..=SPORT_HI).contains(&r.tag.sport));
    assert!(ctx.versions.contains(&r.version));
    assert!(r.options.len() <= 40, "{} option bytes", r.options.len());
    match r.kind {
        ResponseKind::SynAck | ResponseKind::Rst => assert_eq!(r.responder, r.target),
        ResponseKind::Icmp { icmp_type, .. } => {
            assert!(r.options.is_empty() && r.window == 0);
            let v6 = r.target.is_ipv6();
            assert_eq!(mpscan::wire::icmp::effect(v6, icmp_type), mpscan::wire::icmp::Effect::EndsProbe);
        }
    }
}

/// The verdict agrees with the response it came from.
fn check_verdict(r: &Response<'_>, v: &Classification) {
    assert!(Class::ALL.contains(&v.class));
    match r.kind {
        ResponseKind::Rst => assert_eq!(v.class, Class::Closed),
        ResponseKind::Icmp { .. } => assert_eq!(v.class, Class::Unreachable),
        ResponseKind::SynAck => assert!(!matches!(v.class, Class::Closed | Class::Unreachable)),
    }
    // The walk is bounded: at most one step per option byte, plus the one error.
    assert!(TcpOptions::new(r.options).count() <= r.options.len() + 1);
    match v.class {
        Class::Mptcp => {
            let m = v.mpc.expect("mptcp without MP_CAPABLE");
            assert!(m.sender_key.is_some() && m.receiver_key.is_none() && m.version <= r.version as u8);
            assert!(v.detail.is_empty());
            // RFC 8684 §3.1: B clear and H the one algorithm (A and C free).
            assert_eq!(m.flags & 0x5f, 0x01, "mptcp with flags {:#04x}", m.flags);
            // A real server's answer: exactly one kind-30 option, and nothing of ours in it.
            let kind30: Vec<_> = TcpOptions::new(r.options)
                .filter(|o| {
                    matches!(
                        o,
                        Ok(TcpOption::MpCapable(_) | TcpOption::Mptcp { .. })
                            | Err(WireError::BadOptionLength { kind: 30, .. })
                    )
                })
                .collect();
            assert_eq!(kind30.len(), 1, "mptcp with {kind30:?}");
            if r.version == ProbeVersion::V0 {
                assert_ne!(m.sender_key, Some(r.tag.key), "our own key is an echo");
            }
        }
        Class::Echo => assert!(v.mpc.is_some() && v.detail.is_empty()),
        Class::Malformed => assert!(!v.detail.is_empty()),
        Class::Tcp => assert!(v.mpc.is_none()),
        Class::Closed | Class::Unreachable => {}
    }
    if v.mirrored {
        assert_eq!(r.options, &mpscan::probe::options_of(r.version, &r.tag).0[..r.options.len()]);
    }
}

/// Serialises `row` as CSV in memory and checks it reads back as one record of every column.
fn csv_record(row: &Row) -> String {
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    w.serialize(row).expect("a row always serialises");
    let bytes = w.into_inner().expect("in-memory writer");
    let text = String::from_utf8(bytes).expect("CSV is UTF-8");
    assert!(text.ends_with('\n') && text.matches('\n').count() == 1, "one line: {text:?}");
    let mut rd = csv::ReaderBuilder::new().has_headers(false).from_reader(text.as_bytes());
    let rec = rd.records().next().expect("one record").expect("reads back");
    assert_eq!(rec.len(), COLUMNS.len(), "{text:?}");
    assert_eq!(&rec[0], row.ip.to_string());
    assert_eq!(&rec[3], row.class.label());
    assert_eq!(rec[8].len() % 2, 0);
    text
}

/// The recipe of [`structured`], decoded from the fuzzer's bytes:
///
/// ```text
/// byte 0: bit 0 family (0 IPv4, 1 IPv6), bit 1 probe version (0 v1, 1 v0),
///         bits 2-3 answer (0 SYN-ACK, 1 RST, 2 ICMP unreachable, 3 SYN-ACK with payload),
///         bit 4 take the data offset from byte 6, bit 5 take the IP length delta from byte 7,
///         bit 6 take the acknowledgment delta from byte 8 (else the right one)
/// bytes 1-3: target (198.18.b1.b2 / 2001:db8:1::b1b2:b3), bytes 4-5: port (0 becomes 443)
/// byte 6: TCP data offset nibble (high 4 bits) or ICMP quote length
/// byte 7: signed IP length delta, byte 8: signed acknowledgment delta
/// bytes 9..: TCP option bytes (at most 40; the rest is payload)
/// ```
pub const RECIPE_HEADER: usize = 9;

/// Builds a response to one of our probes from a recipe (see [`RECIPE_HEADER`]) and runs it
/// through [`frame`]. Returns `None` if the input is too short to be a recipe.
pub fn structured(ctx: &Context, data: &[u8]) -> Option<Outcome> {
    let f = build(data)?;
    Some(frame(ctx, &f))
}

/// The frame a recipe describes (public so the corpus generator can write seeds of both kinds).
pub fn build(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < RECIPE_HEADER {
        return None;
    }
    let ctl = data[0];
    let v6 = ctl & 1 != 0;
    let version = if ctl & 2 != 0 { ProbeVersion::V0 } else { ProbeVersion::V1 };
    let answer = (ctl >> 2) & 3;
    let target: IpAddr = if v6 {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, u16::from_be_bytes([data[1], data[2]]), data[3] as u16))
    } else {
        IpAddr::V4(Ipv4Addr::new(198, 18, data[1], data[2]))
    };
    let port = match u16::from_be_bytes([data[4], data[5]]) {
        0 => 443,
        p => p,
    };
    let src = if v6 { IpAddr::V6(SRC_V6) } else { IpAddr::V4(SRC_V4) };
    let tag = Validator::from_seed(SEED).tag(src, target, port, version);
    let rest = &data[RECIPE_HEADER..];
    let (opts, payload) = rest.split_at(rest.len().min(40));
    let ip_delta = if ctl & 0x20 != 0 { data[7] as i8 as isize } else { 0 };

    if answer == 2 {
        // An ICMP error quoting our real probe, cut to the recipe's quote length.
        let link = Link {
            src_mac: [2, 0, 0, 0, 0, 2],
            dst_mac: [2, 0, 0, 0, 0, 1],
            src_v4: Some(SRC_V4),
            src_v6: Some(SRC_V6),
        };
        let mut probe = [0u8; MAX_FRAME_LEN];
        let n = ProbeBuilder::new(&link, &[version]).write(&mut probe, target, port, version, &tag);
        let l3 = &probe[14..n];
        let q = (data[6] as usize).min(l3.len());
        let mut quoted = l3[..q].to_vec();
        quoted.extend_from_slice(opts); // whatever else a router appends
        return Some(icmp_frame(target, &quoted, ip_delta));
    }

    let flags = if answer == 1 { TcpFlags::RST | TcpFlags::ACK } else { TcpFlags::SYN | TcpFlags::ACK };
    let mut ack = if answer == 1 { tag.seq } else { tag.seq.wrapping_add(1) };
    if ctl & 0x40 != 0 {
        ack = ack.wrapping_add(data[8] as i8 as i32 as u32);
    }
    let tcp = TcpRepr {
        src_port: port,
        dst_port: tag.sport,
        seq: 0x5e1f_3a11,
        ack,
        flags: TcpFlags(flags),
        window: 65160,
        options: opts, // padded with End of Option List
        payload: if answer == 3 { payload } else { &[] },
    };
    let reply = FrameRepr::tcp(target, src, 57, tcp);
    let mut f = reply.to_vec();
    let l4 = ip::l4_offset(&reply.ip);
    if ctl & 0x10 != 0 {
        // A data offset that lies, with a checksum that is right for it.
        let mut t = TcpPacket::new_unchecked(&mut f[l4..]);
        t.set_header_len(((data[6] >> 4) * 4) as usize);
        t.fill_checksum(target, src);
    }
    lie_about_ip_length(&mut f, ip_delta);
    Some(f)
}

/// Adds `delta` to the IP length field of frame `f` (so it may lie), keeping the IPv4 header
/// checksum right.
fn lie_about_ip_length(f: &mut [u8], delta: isize) {
    if delta == 0 {
        return;
    }
    let l3 = &mut f[ethernet::HEADER_LEN..];
    if l3[0] >> 4 == 4 {
        let mut ip = Ipv4Packet::new_unchecked(l3);
        ip.set_total_len((ip.total_len() as isize + delta).clamp(0, 0xffff) as u16);
        ip.fill_checksum();
    } else {
        let mut ip = Ipv6Packet::new_unchecked(l3);
        ip.set_payload_len((ip.payload_len() as isize + delta).clamp(0, 0xffff) as u16);
    }
}

/// An ICMP(v6) destination unreachable from the router of `target`'s family quoting `quoted`.
fn icmp_frame(target: IpAddr, quoted: &[u8], delta: isize) -> Vec<u8> {
    let v6 = target.is_ipv6();
    let icmp = IcmpRepr {
        msg_type: if v6 { 1 } else { 3 },
        code: if v6 { 1 } else { 13 },
        rest_of_header: [0; 4],
        payload: quoted,
    };
    let (src, router) =
        if v6 { (IpAddr::V6(SRC_V6), IpAddr::V6(ROUTER_V6)) } else { (IpAddr::V4(SRC_V4), IpAddr::V4(ROUTER_V4)) };
    let mut f = FrameRepr::icmp(router, src, 57, icmp).to_vec();
    lie_about_ip_length(&mut f, delta);
    f
}

/// The recipe of an honest answer: `ctl` (see [`RECIPE_HEADER`]), target 198.18.0.`host` (or
/// 2001:db8:1::`host`), port 443, and `options`. For the corpus generator and tests.
pub fn recipe(ctl: u8, host: u8, options: &[u8]) -> Vec<u8> {
    let mut r = vec![ctl, 0, host, host, 0x01, 0xbb, 0, 0, 0];
    if ctl & 0x0c == 0x08 {
        r[6] = if ctl & 1 != 0 { 48 } else { 28 }; // ICMP: quote the IP header + 8 bytes of TCP
    }
    r.extend_from_slice(options);
    r
}

/// The probe's own option bytes for a recipe's target (what an echo or mirror sends back).
pub fn probe_options(ctl: u8, host: u8) -> Vec<u8> {
    let v6 = ctl & 1 != 0;
    let version = if ctl & 2 != 0 { ProbeVersion::V0 } else { ProbeVersion::V1 };
    let (src, target) = if v6 {
        (IpAddr::V6(SRC_V6), IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, host as u16, host as u16)))
    } else {
        (IpAddr::V4(SRC_V4), IpAddr::V4(Ipv4Addr::new(198, 18, 0, host)))
    };
    let tag = Validator::from_seed(SEED).tag(src, target, 443, version);
    let (b, n) = mpscan::probe::options_of(version, &tag);
    b[..n].to_vec()
}
