//! `mpscan trace` over real router namespaces (`mpscan::lab::paths`), IPv4 and IPv6, MP_CAPABLE
//! v0 and v1 in one trace, compared with each path's ground truth:
//!
//! | path | ground truth |
//! |---|---|
//! | router 3 strips MP_CAPABLE in FORWARD (nft `reset tcp option mptcp`) | `removed-at` TTL 4 (router 4), last intact TTL 3; quotes intact up to TTL 3, removed from 4 to 6 |
//! | router 2 rewrites MSS to 1300 | `intact`; quotes show MSS 1460 up to TTL 2 and 1300 from 3 to 6 |
//!
//! In both, the server (no listener: it resets) answers from TTL 7, the path length, and every
//! router 1 to 6 is found at its TTL with its own address.
//!
//! Needs root and namespaces: skips without them, fails instead with `MPSCAN_REQUIRE_LAB=1`. Each
//! path has a unique name and is deleted by its guard even when the test fails.

mod common;
use common::lab_possible;
use mpscan::lab::paths::{Middlebox, TracePath, ROUTERS};
use mpscan::lab::topology::random_run_name;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_mpscan");

type Row = BTreeMap<String, String>;

fn read(path: &Path) -> Vec<Row> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let h = r.headers().unwrap().clone();
    r.records().map(|rec| h.iter().zip(rec.unwrap().iter()).map(|(k, v)| (k.into(), v.into())).collect()).collect()
}

/// Traces the path's server (both families, both versions); returns the hops and the verdicts.
fn trace(p: &TracePath) -> (Vec<Row>, Vec<Row>) {
    let dir = std::env::temp_dir().join(format!("mpscan-lab-trace-{}", p.run));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (hops, verdicts) = (dir.join("hops.csv"), dir.join("verdicts.csv"));
    let [v4, v6] = TracePath::server();
    let out = Command::new("ip")
        .args(["netns", "exec", &p.scanner_ns, EXE, "trace", "-i", &p.scanner_if, "-G", &p.gateway_mac])
        .args([
            "-p",
            "443",
            "--no-blocklist",
            "--mptcp-version",
            "both",
            "--max-ttl",
            "10",
            "-r",
            "500",
            "-c",
            "2",
            "-q",
        ])
        .args(["-o", hops.to_str().unwrap(), "--verdicts", verdicts.to_str().unwrap()])
        .args([v4.to_string(), v6.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "mpscan trace failed: {}", String::from_utf8_lossy(&out.stderr));
    let r = (read(&hops), read(&verdicts));
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// Checks what every path has in common: the routers at their TTLs, the server at TTL 7.
fn check_path(hops: &[Row], verdicts: &[Row]) -> BTreeMap<(String, String), Row> {
    let by: BTreeMap<(String, String), Row> =
        verdicts.iter().map(|v| ((v["target"].clone(), v["probe"].clone()), v.clone())).collect();
    for target in TracePath::server() {
        let v6 = target.is_ipv6();
        for probe in ["v0", "v1"] {
            let key = (target.to_string(), probe.to_string());
            let v = by.get(&key).unwrap_or_else(|| panic!("no verdict for {key:?}: {verdicts:?}"));
            assert_eq!(v["answer_ttl"], TracePath::server_ttl().to_string(), "{key:?}");
            assert_eq!(v["answer_class"], "closed", "{key:?}");
            for ttl in 1..=ROUTERS {
                let h = hop(hops, &key, ttl);
                assert_eq!(h["router"], TracePath::router(ttl, v6).to_string(), "{key:?} TTL {ttl}");
                assert_eq!(h["kind"], "icmp");
            }
        }
    }
    by
}

fn hop<'a>(hops: &'a [Row], key: &(String, String), ttl: u8) -> &'a Row {
    hops.iter()
        .find(|h| h["target"] == key.0 && h["probe"] == key.1 && h["ttl"] == ttl.to_string())
        .unwrap_or_else(|| panic!("no hop {ttl} for {key:?}"))
}

#[test]
fn stripping_router_is_located_in_both_families_and_versions() {
    if !lab_possible("lab_trace") {
        return;
    }
    let p = TracePath::up(&random_run_name(), Some((3, Middlebox::StripMpCapable))).expect("path up");
    let (hops, verdicts) = trace(&p);
    let by = check_path(&hops, &verdicts);
    for (key, v) in &by {
        let v6 = key.0.contains(':');
        assert_eq!(v["verdict"], "removed-at", "{key:?}: {v:?}");
        assert_eq!((v["hop"].as_str(), v["last_intact"].as_str()), ("4", "3"), "{key:?}");
        assert_eq!(v["router"], TracePath::router(4, v6).to_string());
        for ttl in 1..=ROUTERS {
            let want = if ttl <= 3 { "intact" } else { "removed" };
            assert_eq!(hop(&hops, key, ttl)["mpc"], want, "{key:?} TTL {ttl}");
        }
    }
    assert_eq!(by.len(), 4);
}

#[test]
fn mss_rewrite_is_seen_and_mptcp_stays_intact() {
    if !lab_possible("lab_trace") {
        return;
    }
    let p = TracePath::up(&random_run_name(), Some((2, Middlebox::RewriteMss))).expect("path up");
    let (hops, verdicts) = trace(&p);
    let by = check_path(&hops, &verdicts);
    for (key, v) in &by {
        assert_eq!(v["verdict"], "intact", "{key:?}: {v:?}");
        for ttl in 1..=ROUTERS {
            let h = hop(&hops, key, ttl);
            assert_eq!(h["mpc"], "intact", "{key:?} TTL {ttl}");
            assert_eq!(h["mss"], if ttl <= 2 { "1460" } else { "1300" }, "{key:?} TTL {ttl}");
        }
    }
    assert_eq!(by.len(), 4);
}

/// The hop addresses `traceroute -T -p 443` (Debian's, TCP SYN probes) finds from the scanner,
/// by TTL: its lines are `TTL ADDRESS RTT ms` with `-n -q 1`.
fn traceroute(p: &TracePath, target: std::net::IpAddr) -> BTreeMap<u8, String> {
    let fam = if target.is_ipv6() { "-6" } else { "-4" };
    let out = Command::new("ip")
        .args(["netns", "exec", &p.scanner_ns, "traceroute", fam, "-T", "-p", "443", "-n", "-q", "1", "-w", "2"])
        .args(["-m", &ROUTERS.to_string(), &target.to_string()])
        .output()
        .expect("traceroute (scripts/install-deps installs it)");
    assert!(out.status.success(), "traceroute failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.parse().ok()?, w.next()?.to_string()))
        })
        .collect()
}

#[test]
fn hop_addresses_agree_with_traceroute() {
    if !lab_possible("lab_trace") {
        return;
    }
    let p = TracePath::up(&random_run_name(), Some((3, Middlebox::StripMpCapable))).expect("path up");
    let (hops, _) = trace(&p);
    for target in TracePath::server() {
        let theirs = traceroute(&p, target);
        let key = (target.to_string(), "v1".to_string());
        let ours: BTreeMap<u8, String> = (1..=ROUTERS).map(|t| (t, hop(&hops, &key, t)["router"].clone())).collect();
        assert_eq!(ours, theirs, "{target}: mpscan's hops against traceroute -T");
    }
}
