//! Several source addresses (`-S` with a range, a list and a repeat, both families) in the lab:
//!
//! * four IPv4 and two IPv6 addresses are added to the lab scanner's interface (inside the
//!   lab's own 192.0.2.0/24 and 2001:db8::/64 infrastructure ranges, outside every link the lab
//!   uses), and the router is told where they are;
//! * a scan of both families and both probe versions from them matches the ground truth row for
//!   row, its metadata lists the six sources in index order, no answer was rejected as
//!   `source-mismatch` or `not-to-us`, and every source got answers: each row's source,
//!   recomputed from the seed with the keyed hash, covers all six;
//! * the same scan with `--source-port 61000-61999` (outside the kernel's local port range, so
//!   no warning) finds the same rows, and the metadata records the range.
//!
//! Needs root and network namespaces: skips without them, fails instead with
//! `MPSCAN_REQUIRE_LAB=1`. The lab has a unique name and is torn down by its guard even when the
//! test fails (the added addresses go with its namespaces).

mod common;
use common::{check_rows, lab_possible, read_rows, version_of, Row};
use mpscan::keyed_hash::{source_index, Validator};
use mpscan::lab::{GroundTruth, Lab};
use mpscan::probe::ProbeVersion;
use mpscan::sources::{SourcePorts, SourceRange, Sources};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_mpscan");
const PORTS: [u16; 3] = [22, 80, 443];
const BOTH: [ProbeVersion; 2] = [ProbeVersion::V1, ProbeVersion::V0];
/// The sources, as typed: a range and an address in one `-S`, an address in a second.
const S1: &str = "192.0.2.248-192.0.2.251,2001:db8::f0";
const S2: &str = "2001:db8::f1";
const SEED: u64 = 17;

fn ip(ns: &str, args: &[&str]) {
    let out = Command::new("ip").arg("-n").arg(ns).args(args).output().expect("ip");
    assert!(out.status.success(), "ip -n {ns} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Puts `sources` on the scanner's interface and routes them from the router to the scanner.
fn add_sources(lab: &Lab, sources: &Sources) {
    let (scan, rtr, dev) = (&lab.info.scanner_ns, &lab.info.router_ns, &lab.info.interface);
    let out = Command::new("ip")
        .args(["netns", "exec", scan, "cat"])
        .arg(format!("/sys/class/net/{dev}/address"))
        .output()
        .expect("the scanner's MAC");
    let mac = String::from_utf8(out.stdout).unwrap().trim().to_string();
    for a in &sources.v4 {
        ip(scan, &["addr", "add", &format!("{a}/32"), "dev", dev]);
        ip(rtr, &["route", "add", &format!("{a}/32"), "via", &lab.info.source_ip.to_string(), "dev", "v-scan"]);
    }
    for a in &sources.v6 {
        ip(scan, &["-6", "addr", "add", &format!("{a}/128"), "dev", dev, "nodad"]);
        ip(rtr, &["-6", "neigh", "replace", &a.to_string(), "lladdr", &mac, "dev", "v-scan", "nud", "permanent"]);
    }
}

/// Runs the scan of both families with the sources and `extra`; the rows, the metadata and
/// standard error.
fn scan(lab: &Lab, name: &str, extra: &[&str]) -> (Vec<Row>, serde_json::Value, String) {
    let dir = common::scratch_dir(lab, "sources", name);
    let (csv, json) = (dir.join("scan.csv"), dir.join("scan.json"));
    let targets = format!("@{}", lab.info.targets.display());
    let targets6 = format!("@{}", lab.info.targets6.as_ref().expect("the lab has IPv6 ranges").display());
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.info.scanner_ns, EXE, "scan", "-p", "22,80,443", "--mptcp-version", "both"])
        .args(["-e", &SEED.to_string(), "-r", "20000", "-c", "2", "-b", &lab.info.blocklist.display().to_string()])
        .args(["-S", S1, "--source-ip", S2])
        .args(["-o", csv.to_str().unwrap(), "-m", json.to_str().unwrap()])
        .args(extra)
        .args([&targets, &targets6])
        .output()
        .expect("running mpscan in the lab");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "mpscan scan failed: {stderr}");
    let meta = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).expect("metadata JSON");
    (read_rows(&csv), meta, stderr)
}

/// The checks both scans share; returns the sources the rows' probes left from.
fn check(truth: &GroundTruth, rows: &[Row], meta: &serde_json::Value, sources: &Sources) -> BTreeSet<IpAddr> {
    let n = check_rows(truth, rows, &BOTH, &PORTS);
    assert!(n > 0);
    assert_eq!(meta["rows"].as_u64().unwrap(), n as u64);
    assert_eq!(meta["targets_probed"], meta["targets_total"]);
    let listed: Vec<String> = serde_json::from_value(meta["config"]["source_ip"].clone()).unwrap();
    assert_eq!(listed, sources.strings(), "the metadata lists every source, in index order");
    let invalid = &meta["invalid_reasons"];
    for why in ["source-mismatch", "not-to-us", "validation-failed"] {
        assert!(invalid.get(why).is_none(), "{why} rejections: {meta}");
    }
    // Which source each answered probe left from, from the seed alone (as the receiver did).
    let ports =
        SourcePorts::from_pair(serde_json::from_value(meta["config"]["source_ports"].clone()).unwrap()).unwrap();
    let v = Validator::from_seed(SEED).with_ports(ports);
    rows.iter()
        .map(|r| {
            let target: IpAddr = r["ip"].parse().unwrap();
            let key = sources.key_for(target.is_ipv4()).unwrap();
            let tag = v.tag(key, target, r["port"].parse().unwrap(), version_of(&r["probe"]));
            sources.nth(target.is_ipv4(), source_index(&tag, sources.count(target.is_ipv4())))
        })
        .collect()
}

#[test]
fn scan_from_several_sources_of_both_families() {
    if !lab_possible("scan_from_several_sources_of_both_families") {
        return;
    }
    let lab = common::up_small();
    let items: Vec<SourceRange> = [S1, S2].iter().flat_map(|s| SourceRange::parse_list(s).unwrap()).collect();
    let sources = Sources::expand(&items).unwrap();
    assert_eq!((sources.v4.len(), sources.v6.len()), (4, 2));
    add_sources(&lab, &sources);
    let truth = GroundTruth::load(Path::new(&lab.info.ground_truth)).unwrap();
    let all: BTreeSet<IpAddr> =
        sources.v4.iter().map(|&a| IpAddr::from(a)).chain(sources.v6.iter().map(|&a| IpAddr::from(a))).collect();

    let (rows, meta, _) = scan(&lab, "default-ports", &["-q"]);
    assert_eq!(check(&truth, &rows, &meta, &sources), all, "every source got answers");
    assert_eq!(meta["config"]["source_ports"], serde_json::json!([32768, 65535]));

    let (ranged, meta, stderr) = scan(&lab, "port-range", &["--source-port", "61000-61999"]);
    assert_eq!(check(&truth, &ranged, &meta, &sources), all, "every source got answers");
    assert_eq!(meta["config"]["source_ports"], serde_json::json!([61000, 61999]));
    assert!(!stderr.contains("overlaps the kernel's local port range"), "61000-61999 is outside 32768-60999: {stderr}");
    let key = |rows: &[Row]| -> BTreeSet<(String, String, String, String)> {
        rows.iter().map(|r| (r["ip"].clone(), r["port"].clone(), r["probe"].clone(), r["class"].clone())).collect()
    };
    assert_eq!(key(&rows), key(&ranged), "the same rows from other source ports");
}
