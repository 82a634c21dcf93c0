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
use mpscan::trace::run::{open_output, resolve_on, run_on};
use mpscan::wire::{ipv4, EtherType, EthernetFrame, IcmpPacket, Ipv4Packet, MpCapable, TcpFlags, TcpOption};
use mpscan::wire::{tcp_option, TcpPacket};
use mpscan_schema::trace::TraceCounts;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// A scratch directory of one test.
fn scratch(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mpscan-trace-memory-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The configuration of the test's `mpscan trace` command line plus `extra`, the hops in
/// `dir/hops.csv` (or `hops.parquet`), the metadata in `dir/trace.json`.
fn resolve(dir: &Path, extra: &[&str]) -> anyhow::Result<ScanConfig> {
    let parquet = extra.contains(&"parquet");
    let hops = dir.join(if parquet { "hops.parquet" } else { "hops.csv" });
    let mut argv: Vec<String> = ["trace", "-p", "443", "-r", "0", "-c", "1", "-e", "9", "-q", "--no-blocklist"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    argv.extend(["--max-ttl", "8", "-m"].iter().map(|s| s.to_string()));
    argv.push(dir.join("trace.json").display().to_string());
    argv.extend(["-o".to_string(), hops.display().to_string()]);
    argv.extend(extra.iter().map(|s| s.to_string()));
    argv.push("127.0.2.0/29".to_string());
    let m = Cli::command().try_get_matches_from(argv).unwrap();
    let mut args = Cli::from_arg_matches(&m).unwrap().trace;
    let link = Link { src_mac: [2, 0, 0, 0, 0, 1], dst_mac: [2, 0, 0, 0, 0, 2], src_v4: Some(SCANNER), src_v6: None };
    resolve_on(&mut args, &Network::Given { link, interface: "memory".into() })
}

/// Runs that trace over `wire`, the verdicts in `dir/verdicts.csv`.
fn trace(dir: &Path, extra: &[&str], wire: &MemoryWire, stop: &Stop) -> (anyhow::Result<Outcome>, TraceCounts) {
    let config = resolve(dir, extra).unwrap();
    let output = open_output(&config, Some(&dir.join("verdicts.csv"))).unwrap();
    let transport = Transport { rx: Box::new(wire.rx()), txs: vec![Box::new(wire.tx())] };
    run_on(&config, transport, output, stop)
}

#[test]
fn memory_trace_locates_every_path_s_change() {
    let dir = scratch("paths");
    let (hops, verdicts, meta) = (dir.join("hops.csv"), dir.join("verdicts.csv"), dir.join("trace.json"));
    let wire = MemoryWire::new(respond);
    let (outcome, tally) = trace(&dir, &[], &wire, &Stop::default());
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
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Hop rows without the RTT (which depends on when the memory wire answered).
fn hop_set(rows: Vec<Vec<String>>) -> std::collections::BTreeSet<Vec<String>> {
    let rtt = mpscan_schema::trace::HOP_COLUMNS.iter().position(|c| c.name == "rtt_ms").unwrap();
    rows.into_iter()
        .map(|mut r| {
            r.remove(rtt);
            r
        })
        .collect()
}

fn records(path: &Path) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    r.records().map(|rec| rec.unwrap().iter().map(str::to_string).collect()).collect()
}

/// `--output-format parquet`: the same hop rows as the CSV, typed, and the verdicts CSV beside.
#[test]
fn parquet_hops_are_the_csv_hops() {
    let (csv_dir, pq_dir) = (scratch("csv"), scratch("parquet"));
    let (o, _) = trace(&csv_dir, &[], &MemoryWire::new(respond), &Stop::default());
    assert_eq!(o.unwrap(), Outcome::Finished);
    let (o, counts) = trace(&pq_dir, &["--output-format", "parquet"], &MemoryWire::new(respond), &Stop::default());
    assert_eq!(o.unwrap(), Outcome::Finished);
    assert_eq!(counts.hop_rows, 64);
    let pq = mpscan_schema::parquet_file::read_hops_as_csv_records(&pq_dir.join("hops.parquet")).unwrap();
    assert_eq!(pq.len(), 64);
    assert_eq!(hop_set(pq), hop_set(records(&csv_dir.join("hops.csv"))));
    assert_eq!(records(&pq_dir.join("verdicts.csv")), records(&csv_dir.join("verdicts.csv")));
    // Parquet is written whole at the end: no state file, nothing to resume.
    assert!(!pq_dir.join("hops.parquet.state").exists());
    for d in [csv_dir, pq_dir] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

/// A trace stopped by a signal at an exact probe index resumes there with `--resume STATE`: the
/// second run sends exactly the probes not sent, appends to the hops, and writes the verdicts of
/// the whole trace, the same as an uninterrupted trace's.
#[test]
fn a_trace_stopped_at_an_exact_probe_resumes_there_and_loses_nothing() {
    let whole = scratch("whole");
    let (o, _) = trace(&whole, &[], &MemoryWire::new(respond), &Stop::default());
    assert_eq!(o.unwrap(), Outcome::Finished);
    let want_verdicts = records(&whole.join("verdicts.csv"));
    let want_hops = hop_set(records(&whole.join("hops.csv")));
    for stop_at in [1u64, 30, 63] {
        let dir = scratch(&format!("resume-{stop_at}"));
        let stop = Arc::new(Stop::default());
        let s = Arc::clone(&stop);
        let wire = MemoryWire::new(respond).limit(stop_at, move || s.signal());
        let (o, first_counts) = trace(&dir, &[], &wire, &stop);
        assert_eq!(o.unwrap(), Outcome::Interrupted);
        assert_eq!((wire.taken(), first_counts.hop_rows), (stop_at, stop_at));
        let state_path = dir.join("hops.csv.state");
        let saved = mpscan::scan::state::load(&state_path).unwrap();
        assert_eq!((saved.sent, saved.finished, saved.identity.max_ttl), (stop_at, false, Some(8)));
        let first = records(&dir.join("hops.csv"));

        let state = state_path.display().to_string();
        let wire = MemoryWire::new(respond);
        let (o, counts) = trace(&dir, &["--resume", &state], &wire, &Stop::default());
        assert_eq!(o.unwrap(), Outcome::Finished);
        assert_eq!(wire.taken(), 64 - stop_at, "the resumed trace sends exactly the probes not sent");
        let all = records(&dir.join("hops.csv"));
        assert_eq!(all[..first.len()], first[..], "the first run's hops stay, in place");
        assert_eq!(hop_set(all), want_hops);
        assert_eq!(records(&dir.join("verdicts.csv")), want_verdicts, "stopped at {stop_at}");
        // The counts cover the whole trace.
        assert_eq!((counts.hop_rows, counts.total_verdicts()), (64, 8));
        let md: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("trace.json")).unwrap()).unwrap();
        assert_eq!((md["resumed"].clone(), md["interrupted"].clone()), (true.into(), false.into()));
        assert_eq!((md["probes_sent"].clone(), md["rows"].clone()), (64.into(), 64.into()));
        assert!(mpscan::scan::state::load(&state_path).unwrap().finished);
        // A finished trace cannot be resumed, nor one of another --max-ttl.
        let e = resolve(&dir, &["--resume", &state]).err().unwrap().to_string();
        assert!(e.contains("already finished"), "{e}");
        let mut st = saved.clone();
        st.identity.max_ttl = Some(9);
        let other = dir.join("other.state");
        mpscan::scan::state::StateFile::create(&other).unwrap().save(&mut st).unwrap();
        let e = resolve(&dir, &["--resume", other.to_str().unwrap()]).err().unwrap().to_string();
        assert!(e.contains("--max-ttl was 9, now 8"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::remove_dir_all(&whole).unwrap();
}
