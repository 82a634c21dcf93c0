//! `mpscan trace` over real router namespaces (`mpscan::lab::paths`), IPv4 and IPv6, MP_CAPABLE
//! v0 and v1 in one trace (`--mptcp-version both`), compared with each path's ground truth
//! (`mpscan::lab::paths::truth`, whose table lists the paths and their verdicts): every hop row
//! of TTL 1 to 6 (who answered, ICMP or SYN-ACK, the quote's MP_CAPABLE state, MSS and length,
//! the SYN-ACK's class) and the verdict row (verdict, hop, router, last intact TTL, answering
//! TTL and class, detail), for each of the 4 (family, version) pairs:
//!
//! * a stripper and an MSS rewriter (nftables in a router's FORWARD hook);
//! * an echoing box (a userspace responder in router 3) and nftables `synproxy` on router 3;
//! * a stretch of RFC 792 routers quoting 8 bytes (userspace, IPv4) before a stripper, and at
//!   the end of an unchanged path;
//! * a clean path to kernel MPTCP listeners.
//!
//! Plus `traceroute -T` (Debian's) agreeing with the hop addresses, over the stripper's path and
//! over the one with userspace 8-byte routers.
//!
//! Needs root and namespaces: skips without them, fails instead with `MPSCAN_REQUIRE_LAB=1`. Each
//! path has a unique name and is deleted by its guard (processes killed by PID first) even when
//! the test fails.

mod common;
use common::lab_possible;
use mpscan::lab::paths::truth::LabPath;
use mpscan::lab::paths::{TracePath, ROUTERS};
use mpscan::lab::topology::random_run_name;
use mpscan::probe::ProbeVersion;
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

fn hop<'a>(hops: &'a [Row], key: &(String, String), ttl: u8) -> &'a Row {
    hops.iter()
        .find(|h| h["target"] == key.0 && h["probe"] == key.1 && h["ttl"] == ttl.to_string())
        .unwrap_or_else(|| panic!("no hop {ttl} for {key:?}"))
}

fn text<T: ToString>(x: Option<T>) -> String {
    x.map(|x| x.to_string()).unwrap_or_default()
}

/// Brings `path` up, traces its server and compares every hop row of TTL 1 to 6 and every
/// verdict with the path's ground truth.
fn trace_matches_truth(path: LabPath) {
    if !lab_possible("lab_trace") {
        return;
    }
    let p = TracePath::up(&random_run_name(), path.spec(), Path::new(EXE)).expect("path up");
    let (hops, verdicts) = trace(&p);
    assert_eq!(verdicts.len(), 4, "{path:?}: one verdict per family and version: {verdicts:?}");
    for (target, v6) in TracePath::server().into_iter().zip([false, true]) {
        for version in [ProbeVersion::V0, ProbeVersion::V1] {
            let key = (target.to_string(), version.label().to_string());
            let truth = path.truth(v6, version);
            for h in &truth.hops {
                let got = hop(&hops, &key, h.ttl);
                let at = format!("{path:?} {key:?} TTL {}: {got:?}", h.ttl);
                assert_eq!(
                    (got["router"].as_str(), got["kind"].as_str()),
                    (h.from.to_string().as_str(), h.kind),
                    "{at}"
                );
                assert_eq!(got["mpc"], text(h.mpc), "{at}");
                assert_eq!(got["class"], text(h.class), "{at}");
                if h.kind == "icmp" {
                    assert_eq!(got["mss"], text(h.mss), "{at}");
                }
                if let Some(n) = h.quoted_bytes {
                    assert_eq!(got["quoted_bytes"], n.to_string(), "{at}");
                }
            }
            let v = verdicts.iter().find(|v| v["target"] == key.0 && v["probe"] == key.1);
            let v = v.unwrap_or_else(|| panic!("{path:?}: no verdict for {key:?}: {verdicts:?}"));
            let t = &truth.verdict;
            let want = [
                t.verdict.to_string(),
                text(t.hop),
                text(t.router),
                text(t.last_intact),
                t.answer_ttl.to_string(),
                t.answer_class.to_string(),
                t.detail.to_string(),
            ];
            let cols = ["verdict", "hop", "router", "last_intact", "answer_ttl", "answer_class", "detail"];
            let got = cols.map(|c| v[c].clone());
            assert_eq!(got, want, "{path:?} {key:?}: columns {cols:?}");
        }
    }
}

#[test]
fn stripping_router_is_located_in_both_families_and_versions() {
    trace_matches_truth(LabPath::Stripper);
}

#[test]
fn mss_rewrite_is_seen_and_mptcp_stays_intact() {
    trace_matches_truth(LabPath::MssRewriter);
}

#[test]
fn echoing_box_mid_path_answers_on_path_as_echo() {
    trace_matches_truth(LabPath::EchoBox);
}

#[test]
fn synproxy_mid_path_answers_on_path_as_tcp() {
    trace_matches_truth(LabPath::Synproxy);
}

#[test]
fn stripper_among_8_byte_routers_is_unknown_in_ipv4_and_located_in_ipv6() {
    trace_matches_truth(LabPath::ShortQuotesThenStripper);
}

#[test]
fn eight_byte_routers_at_the_end_are_not_called_intact() {
    trace_matches_truth(LabPath::ShortQuotesTail);
}

#[test]
fn clean_path_to_a_kernel_mptcp_server_is_intact() {
    trace_matches_truth(LabPath::MptcpServer);
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
    // The kernel's routers, and a path with userspace RFC 792 routers (2 to 4, IPv4).
    for path in [LabPath::Stripper, LabPath::ShortQuotesThenStripper] {
        let p = TracePath::up(&random_run_name(), path.spec(), Path::new(EXE)).expect("path up");
        let (hops, _) = trace(&p);
        for target in TracePath::server() {
            let theirs = traceroute(&p, target);
            let key = (target.to_string(), "v1".to_string());
            let ours: BTreeMap<u8, String> =
                (1..=ROUTERS).map(|t| (t, hop(&hops, &key, t)["router"].clone())).collect();
            assert_eq!(ours, theirs, "{path:?} {target}: mpscan's hops against traceroute -T");
        }
    }
}

/// Takes a path brought up with `mpscan lab paths up` down again, also when the test fails.
struct CliPath(String);

impl Drop for CliPath {
    fn drop(&mut self) {
        let _ = Command::new(EXE).args(["lab", "paths", "down", "--name", &self.0]).output();
    }
}

/// `mpscan lab paths up --targets 1000` over the echoing box's path: the server namespace
/// answers for 1,000 addresses per family and the box answers for all of them; a trace of the
/// 2,000 targets gives every one the ground truth's verdict (`up` wrote it as JSON), the box
/// answering as the target itself. Then `lab paths down` removes the 8 namespaces and kills the
/// path's processes.
#[test]
fn cli_path_with_1000_targets_per_family_matches_its_ground_truth() {
    if !lab_possible("lab_trace") {
        return;
    }
    let run = random_run_name();
    let guard = CliPath(run.clone());
    let out = Command::new(EXE)
        .args(["lab", "paths", "up", "--name", &run, "--path", "echo", "--targets", "1000", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "lab paths up: {}", String::from_utf8_lossy(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = |k: &str| info[k].as_str().unwrap_or_else(|| panic!("no {k} in {info}")).to_string();
    let namespaces: Vec<String> =
        info["namespaces"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect();
    assert_eq!(namespaces.len(), usize::from(ROUTERS) + 2);
    assert!(namespaces.iter().all(|n| n.starts_with(&format!("mps-{run}-t"))), "{namespaces:?}");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("/run/mpscan-lab/{run}/state.json")).unwrap()).unwrap();
    let pids: Vec<u64> =
        state["processes"].as_array().unwrap().iter().map(|p| p["proc"]["pid"].as_u64().unwrap()).collect();
    assert_eq!(pids.len(), 1, "the echoing box's responder: {state}");
    let truth: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(s("ground_truth")).unwrap()).unwrap();

    let dir = std::env::temp_dir().join(format!("mpscan-lab-trace-cli-{run}"));
    std::fs::create_dir_all(&dir).unwrap();
    let (hops, verdicts) = (dir.join("hops.csv"), dir.join("verdicts.csv"));
    let out = Command::new("ip")
        .args(["netns", "exec", &s("scanner_ns"), EXE, "trace", "-i", &s("interface"), "-G", &s("gateway_mac")])
        .args(["-p", "443", "--no-blocklist", "--max-ttl", "8", "-r", "5000", "-c", "2", "-q"])
        .args(["-o", hops.to_str().unwrap(), "--verdicts", verdicts.to_str().unwrap()])
        .args([format!("@{}", s("targets4")), format!("@{}", s("targets6"))])
        .output()
        .unwrap();
    assert!(out.status.success(), "mpscan trace failed: {}", String::from_utf8_lossy(&out.stderr));
    let rows = read(&verdicts);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(rows.len(), 2000, "one verdict per target");
    for row in &rows {
        let v6 = row["target"].contains(':');
        let t = &truth[if v6 { "ipv6_v1" } else { "ipv4_v1" }]["verdict"];
        let field = |k: &str| match &t[k] {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(x) => x.clone(),
            x => x.to_string(),
        };
        let want = [field("verdict"), field("hop"), row["target"].clone(), field("answer_ttl"), field("answer_class")];
        let got = ["verdict", "hop", "router", "answer_ttl", "answer_class"].map(|c| row[c].clone());
        assert_eq!(got, want, "{row:?}");
    }

    let out = Command::new(EXE).args(["lab", "paths", "down", "--name", &run]).output().unwrap();
    assert!(out.status.success(), "lab paths down: {}", String::from_utf8_lossy(&out.stderr));
    let left =
        String::from_utf8_lossy(&Command::new("ip").args(["netns", "list"]).output().unwrap().stdout).to_string();
    for ns in &namespaces {
        assert!(!left.lines().any(|l| l.split_whitespace().next() == Some(ns.as_str())), "{ns} is left");
    }
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(!stat.contains("mpscan") || stat.contains(") Z "), "the responder (pid {pid}) still runs: {stat}");
    }
    drop(guard);
}
