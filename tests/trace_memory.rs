//! `mpscan trace` end to end without root: the scan's pipeline with the trace's probes and
//! receiver (`mpscan::trace::run::run_on`) over the memory transport, whose far end plays a
//! path per target (last octet), IPv4, routers 198.19.(100 + OCTET).HOP (benchmarking space; nothing is sent: memory transport) quoting what they received:
//!
//! | octet | path | expected verdict |
//! |---|---|---|
//! | 0 | 4 routers quoting the whole probe, an MPTCP server at hop 5 | `intact`, answer TTL 5, class `mptcp` |
//! | 1 | router 2 strips MP_CAPABLE (NOPs) after quoting it, as a FORWARD-hook rule does | `removed-at` 3 (198.19.101.3), last intact 2 |
//! | 2 | as 1, but routers 2 and 3 quote 8 bytes | `unknown` (`change-after-unknown-stretch`), last intact 1 |
//! | 3 | a SYN proxy on router 2: SYN-ACK without MP_CAPABLE for every TTL from 3, from 1 router away | `answered-on-path` 3, class `tcp` |
//! | 4 | router 1 rewrites MSS to 1300, server at hop 5 | `intact`; hop rows from TTL 2 show MSS 1300 |
//!
//! Nothing is sent on any network: the targets are in 127.0.0.0/8 and the wire is memory.

use clap::{CommandFactory, FromArgMatches, Parser};
use mpscan::net::memory::{Answer, MemoryWire};
use mpscan::probe::Link;
use mpscan::scan::config::{Network, ScanConfig};
use mpscan::scan::stop::Stop;
use mpscan::scan::workers::Transport;
use mpscan::scan::Outcome;
use mpscan::trace::run::{open_sinks, prepare, run_on};
use mpscan::wire::{ipv4, EtherType, EthernetFrame, IcmpPacket, Ipv4Packet, MpCapable, TcpFlags, TcpOption};
use mpscan::wire::{tcp_option, TcpPacket};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

const SCANNER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    trace: mpscan::trace::TraceArgs,
}

/// What the far end does with a probe of TTL `ttl` to a target with path `kind`.
fn respond(probe: &[u8]) -> Vec<Answer> {
    let ip = Ipv4Packet::new_checked(&probe[14..]).unwrap();
    let (ttl, kind) = (ip.ttl(), ip.dst_addr().octets()[3]);
    let mut seen = probe[14..].to_vec(); // the probe as the router at hop `ttl` received it
    let (strip_after, short, proxy, mss_after) = match kind {
        1 => (Some(2), 0..=0, None, None),
        2 => (Some(2), 2..=3, None, None),
        3 => (None, 0..=0, Some(2u8), None),
        4 => (None, 0..=0, None, Some(1)),
        _ => (None, 0..=0, None, None),
    };
    if let Some(p) = proxy {
        if ttl > p {
            return vec![Answer::Now(tcp_answer(probe, 64 - (p - 1), &[TcpOption::MaxSegmentSize(1460)]))];
        }
    }
    if ttl >= 5 {
        let server = MpCapable { version: 1, flags: 0x01, sender_key: Some(7), receiver_key: None };
        return vec![Answer::Now(tcp_answer(probe, 60, &[TcpOption::MpCapable(server)]))];
    }
    if strip_after.is_some_and(|h| ttl > h) {
        let n = seen.len();
        seen[n - 4..].copy_from_slice(&[1, 1, 1, 1]); // v1 MP_CAPABLE is the last 4 bytes
    }
    if mss_after.is_some_and(|h| ttl > h) {
        seen[20 + 22..20 + 24].copy_from_slice(&1300u16.to_be_bytes());
    }
    let quoted = if short.contains(&ttl) { &seen[..28] } else { &seen[..] };
    vec![Answer::Now(time_exceeded(Ipv4Addr::new(198, 19, 100 + kind, ttl), quoted))]
}

fn ipv4_frame(src: Ipv4Addr, ttl: u8, proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 34 + l4.len()];
    EthernetFrame::new_unchecked(&mut f[..]).set_ethertype(EtherType::Ipv4);
    let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
    ip.set_version_and_header_len(20);
    ip.set_total_len((20 + l4.len()) as u16);
    ip.set_ttl(ttl);
    ip.set_protocol(proto);
    ip.set_src_addr(src);
    ip.set_dst_addr(SCANNER);
    ip.fill_checksum();
    f[34..].copy_from_slice(l4);
    f
}

fn time_exceeded(router: Ipv4Addr, quoted: &[u8]) -> Vec<u8> {
    let mut m = vec![0u8; 8 + quoted.len()];
    let mut icmp = IcmpPacket::new_unchecked(&mut m[..]);
    icmp.set_type_code(11, 0);
    icmp.payload_mut().copy_from_slice(quoted);
    icmp.fill_checksum_v4();
    ipv4_frame(router, 62, ipv4::protocol::ICMP, &m)
}

/// A SYN-ACK from the probed address arriving with `reply_ttl`, acknowledging the probe.
fn tcp_answer(probe: &[u8], reply_ttl: u8, options: &[TcpOption]) -> Vec<u8> {
    let ip = Ipv4Packet::new_checked(&probe[14..]).unwrap();
    let syn = TcpPacket::new_checked(ip.payload()).unwrap();
    let mut opts = [0u8; 40];
    let olen = tcp_option::emit_all(options, &mut opts);
    let mut seg = vec![0u8; 20 + olen];
    let mut t = TcpPacket::new_unchecked(&mut seg[..]);
    t.set_src_port(syn.dst_port());
    t.set_dst_port(syn.src_port());
    t.set_ack(syn.seq().wrapping_add(1));
    t.set_header_len(20 + olen);
    t.set_flags(TcpFlags(TcpFlags::SYN | TcpFlags::ACK));
    t.options_mut().copy_from_slice(&opts[..olen]);
    ipv4_frame(ip.dst_addr(), reply_ttl, ipv4::protocol::TCP, &seg)
}

fn read(path: &std::path::Path) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let h = r.headers().unwrap().clone();
    r.records().map(|rec| h.iter().zip(rec.unwrap().iter()).map(|(k, v)| (k.into(), v.into())).collect()).collect()
}

#[test]
fn memory_trace_locates_every_path_s_change() {
    let dir = std::env::temp_dir().join(format!("mpscan-trace-memory-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (hops, verdicts) = (dir.join("hops.csv"), dir.join("verdicts.csv"));
    let argv = ["trace", "-p", "443", "-r", "0", "-c", "1", "-q", "--no-blocklist", "--max-ttl", "8"];
    let meta = dir.join("trace.json");
    let argv: Vec<String> = argv
        .iter()
        .map(|s| s.to_string())
        .chain(["-m".to_string(), meta.display().to_string(), "127.0.2.0/29".to_string()])
        .collect();
    let m = Cli::command().try_get_matches_from(argv).unwrap();
    let args = Cli::from_arg_matches(&m).unwrap().trace;
    args.check().unwrap();
    let link = Link { src_mac: [2, 0, 0, 0, 0, 1], dst_mac: [2, 0, 0, 0, 0, 2], src_v4: Some(SCANNER), src_v6: None };
    let mut config = ScanConfig::resolve_on(&args.scan, &Network::Given { link, interface: "memory".into() }).unwrap();
    prepare(&mut config, args.max_ttl).unwrap();
    let wire = MemoryWire::new(respond);
    let transport = Transport { rx: Box::new(wire.rx()), txs: vec![Box::new(wire.tx())] };
    let sinks = open_sinks(Some(&hops), Some(&verdicts)).unwrap();
    let (outcome, tally) = run_on(&config, transport, sinks, &Stop::default());
    assert_eq!(outcome.unwrap(), Outcome::Finished);
    // Every (target, TTL) probe went out once: 8 targets x 8 TTLs, in one permutation.
    assert_eq!(wire.taken(), 64);

    let v: BTreeMap<String, BTreeMap<String, String>> =
        read(&verdicts).into_iter().map(|r| (r["target"].clone(), r)).collect();
    let get = |t: &str, col: &str| v[t][col].clone();
    assert_eq!(
        (get("127.0.2.0", "verdict"), get("127.0.2.0", "answer_ttl"), get("127.0.2.0", "answer_class")),
        ("intact".into(), "5".into(), "mptcp".into())
    );
    assert_eq!(
        (
            get("127.0.2.1", "verdict"),
            get("127.0.2.1", "hop"),
            get("127.0.2.1", "router"),
            get("127.0.2.1", "last_intact")
        ),
        ("removed-at".into(), "3".into(), "198.19.101.3".into(), "2".into())
    );
    assert_eq!(
        (get("127.0.2.2", "verdict"), get("127.0.2.2", "detail"), get("127.0.2.2", "last_intact")),
        ("unknown".into(), "change-after-unknown-stretch".into(), "1".into())
    );
    assert_eq!(
        (get("127.0.2.3", "verdict"), get("127.0.2.3", "hop"), get("127.0.2.3", "answer_class")),
        ("answered-on-path".into(), "3".into(), "tcp".into())
    );
    assert_eq!(get("127.0.2.4", "verdict"), "intact");
    // Targets 5 to 7 have clean paths too.
    assert_eq!(v.len(), 8);
    // The counts (the metadata's `trace`): 5 intact (0, 4 and the clean 5 to 7), one of each
    // other verdict but modified-at, every hop row an ICMP quote or a SYN-ACK.
    assert_eq!(tally.total_verdicts(), 8);
    let per = &tally.verdicts["ipv4"];
    assert_eq!(
        (per["intact"], per["removed-at"], per["modified-at"], per["answered-on-path"], per["unknown"]),
        (5, 1, 0, 1, 1)
    );
    assert_eq!(tally.verdicts["ipv6"].values().sum::<u64>(), 0);
    assert_eq!((tally.max_ttl, tally.hop_rows), (8, 64));
    assert_eq!(tally.answers.values().sum::<u64>(), 64);
    assert_eq!(tally.quotes["removed"] + tally.quotes["intact"] + tally.quotes["unknown"], tally.answers["icmp"]);
    // The same counts in the metadata JSON, which has no scan classes.
    let md: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
    let back: mpscan_schema::trace::TraceCounts = serde_json::from_value(md["trace"].clone()).unwrap();
    assert_eq!(back, tally);
    assert_eq!(md["classes"], serde_json::json!({}));
    assert_eq!(md["rows"], 64);

    let h = read(&hops);
    // Every probe got one answer: 64 hop rows.
    assert_eq!(h.len(), 64);
    let hop = |t: &str, ttl: &str| h.iter().find(|r| r["target"] == t && r["ttl"] == ttl).unwrap().clone();
    assert_eq!((hop("127.0.2.4", "1")["mss"].as_str(), hop("127.0.2.4", "2")["mss"].as_str()), ("1460", "1300"));
    assert_eq!(
        (hop("127.0.2.2", "2")["quoted_bytes"].as_str(), hop("127.0.2.2", "2")["mpc"].as_str()),
        ("28", "unknown")
    );
    assert_eq!((hop("127.0.2.1", "2")["mpc"].as_str(), hop("127.0.2.1", "3")["mpc"].as_str()), ("intact", "removed"));
    assert_eq!(hop("127.0.2.0", "3")["router"], "198.19.100.3");
    assert_eq!(hop("127.0.2.0", "6")["kind"], "syn-ack");
    let _ = std::fs::remove_dir_all(&dir);
}
