//! Beyond one port, one family and one machine, in the lab:
//!
//! * one scan of both families (the IPv4 ranges and the IPv6 hitlist), ports 22, 80 and 443,
//!   v0 and v1 probes, run from `scans/lab.toml`, matches the ground truth row for row;
//! * the same scan split into 3 and into 7 shards (separate processes, one after another) gives
//!   exactly the full scan's rows, no target probed twice, and `mpscan merge` of the shards
//!   says so (and flags a shard left out);
//! * a scan written as Parquet holds the same rows as the one written as CSV;
//! * `-6` scans the hitlist and refuses IPv4 targets;
//! * a scan of both families whose IPv6 router is another machine than the IPv4 one.
//!
//! (That every shipped scan definition resolves in a dry run is checked without root by
//! `tests/scan_definitions.rs`.)
//!
//! The lab tests need root and network namespaces: they skip without them, and fail instead with
//! `MPSCAN_REQUIRE_LAB=1` (set by `.ci/run`). Each test's lab has a unique name and is torn down
//! by its guard even when the test fails.

mod common;
use common::{check_rows, lab_possible, read_rows, Row};
use mpscan::lab::topology::random_run_name;
use mpscan::lab::{GroundTruth, Lab, LabOptions, Size};
use mpscan::probe::ProbeVersion;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const EXE: &str = env!("CARGO_BIN_EXE_mpscan");
const LAB_TOML: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scans/lab.toml");
const PORTS: [u16; 3] = [22, 80, 443];
const BOTH: [ProbeVersion; 2] = [ProbeVersion::V1, ProbeVersion::V0];

fn up() -> Lab {
    Lab::up(LabOptions { name: Some(random_run_name()), size: Size::Small, exe: Some(PathBuf::from(EXE)) })
        .expect("lab up")
}

fn tempdir(what: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mpscan-multi-{what}-{}-{}", std::process::id(), random_run_name()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `mpscan scan --config scans/lab.toml EXTRA...` in the lab's scanner namespace, in `dir`
/// (where the definition's output names land).
fn scan_lab(lab: &Lab, dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["netns", "exec", &lab.info.scanner_ns, EXE, "scan", "--config", LAB_TOML, "-q"];
    args.extend_from_slice(extra);
    Command::new("ip").args(&args).env("MPSCAN_LAB", &lab.info.dir).current_dir(dir).output().expect("running mpscan")
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "mpscan failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

/// Checks every row against the ground truth (both families, both versions, every port) and
/// returns the rows per family.
fn check(truth: &GroundTruth, rows: &[Row]) -> (usize, usize) {
    check_rows(truth, rows, &BOTH, &PORTS);
    let v6 = rows.iter().filter(|r| r["ip"].contains(':')).count();
    (rows.len() - v6, v6)
}

/// The comparable identity of a row: what does not change between two scans of the lab.
fn key(r: &Row) -> (String, String, String, String, String) {
    (r["ip"].clone(), r["port"].clone(), r["probe"].clone(), r["class"].clone(), r["responder"].clone())
}

#[test]
fn both_families_and_sharded_scans_match_the_full_scan() {
    if !lab_possible("both_families_and_sharded_scans_match_the_full_scan") {
        return;
    }
    let lab = up();
    let truth = lab.ground_truth().unwrap();
    let dir = tempdir("shards");

    // The full scan, both families, from the shipped definition.
    ok(scan_lab(&lab, &dir, &[]));
    let full = read_rows(&dir.join("lab-0-of-1.csv"));
    let full_meta = read_json(&dir.join("lab-0-of-1.json"));
    let (n4, n6) = check(&truth, &full);
    assert!(n4 > 0 && n6 > 0, "rows: {n4} IPv4, {n6} IPv6");
    let classes6: BTreeSet<&str> = full.iter().filter(|r| r["ip"].contains(':')).map(|r| r["class"].as_str()).collect();
    for c in ["mptcp", "tcp", "closed", "unreachable"] {
        assert!(classes6.contains(c), "no IPv6 {c} row: {classes6:?}");
    }
    let total = full_meta["targets_total"].as_u64().unwrap();
    assert_eq!(total, (truth.addresses().len() * PORTS.len()) as u64);
    assert_eq!(full_meta["targets_probed"].as_u64().unwrap(), total);
    assert_eq!(full_meta["definition"]["values"]["name"], "lab", "the definition is recorded: {full_meta}");
    let full_keys: BTreeSet<_> = full.iter().map(key).collect();

    for n in [3u32, 7] {
        let ns = n.to_string();
        let mut union = Vec::new();
        let mut probed = 0;
        let (mut csvs, mut metas) = (Vec::new(), Vec::new());
        for i in 0..n {
            ok(scan_lab(&lab, &dir, &["--shards", &ns, "--shard", &i.to_string()]));
            let (csv, json) = (dir.join(format!("lab-{i}-of-{n}.csv")), dir.join(format!("lab-{i}-of-{n}.json")));
            let meta = read_json(&json);
            assert_eq!(
                (meta["config"]["shard"].as_u64(), meta["config"]["shards"].as_u64()),
                (Some(i as u64), Some(n as u64))
            );
            assert_eq!(meta["targets_total"].as_u64().unwrap(), total);
            probed += meta["targets_probed"].as_u64().unwrap();
            union.extend(read_rows(&csv));
            csvs.push(csv);
            metas.push(json);
        }
        let union_keys: BTreeSet<_> = union.iter().map(key).collect();
        assert_eq!(union.len(), union_keys.len(), "{n} shards: a target has rows in two shards");
        assert_eq!(union_keys, full_keys, "{n} shards: the union differs from the full scan");
        assert_eq!(probed, total, "{n} shards: each (address, port) probed exactly once across the shards");

        // mpscan merge: the rows of the full scan, metadata that adds up and says complete.
        let (all_csv, all_json) = (dir.join(format!("all-{n}.csv")), dir.join(format!("all-{n}.json")));
        let mut args: Vec<String> = vec!["merge".into(), "-o".into(), path(&all_csv), "-m".into(), path(&all_json)];
        args.extend(csvs.iter().map(|p| path(p)));
        args.push("--metadata".into());
        args.extend(metas.iter().map(|p| path(p)));
        ok(Command::new(EXE).args(&args).output().unwrap());
        let merged = read_rows(&all_csv);
        assert_eq!(merged.iter().map(key).collect::<BTreeSet<_>>(), full_keys);
        assert_eq!(merged.len(), full.len());
        let m = read_json(&all_json);
        assert_eq!(m["targets_probed"].as_u64(), Some(total), "{m}");
        assert_eq!(m["missing_shards"], serde_json::json!([]));
        assert_eq!(m["complete"], true, "{m}");
        assert_eq!(m["rows"].as_u64(), Some(full.len() as u64));

        // Leave one shard's metadata out: flagged, not complete.
        let mut args: Vec<String> = vec!["merge".into(), "-o".into(), path(&all_csv), "-m".into(), path(&all_json)];
        args.extend(csvs.iter().map(|p| path(p)));
        args.push("--metadata".into());
        args.extend(metas.iter().enumerate().filter(|(i, _)| *i != 1).map(|(_, p)| path(p)));
        let out = ok(Command::new(EXE).args(&args).output().unwrap());
        assert!(String::from_utf8_lossy(&out.stderr).contains("missing"), "{}", String::from_utf8_lossy(&out.stderr));
        let m = read_json(&all_json);
        assert_eq!(m["missing_shards"], serde_json::json!([1]));
        assert_eq!(m["complete"], false);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

#[test]
fn parquet_and_csv_scans_hold_the_same_rows() {
    if !lab_possible("parquet_and_csv_scans_hold_the_same_rows") {
        return;
    }
    let lab = up();
    let dir = tempdir("parquet");
    ok(scan_lab(&lab, &dir, &[]));
    ok(scan_lab(&lab, &dir, &["--output-format", "parquet"]));
    let csv = read_rows(&dir.join("lab-0-of-1.csv"));
    let pq = mpscan_schema::parquet_file::read_as_csv_records(&dir.join("lab-0-of-1.parquet")).unwrap();
    let pq: Vec<Row> =
        pq.into_iter().map(|r| mpscan::output::COLUMNS.iter().map(|c| c.to_string()).zip(r).collect()).collect();
    assert_eq!(pq.len(), csv.len());
    // Keys, timestamps, TCP timestamps and ISNs differ between two scans; the rest is the lab's.
    let unstable = ["mpc_key", "options", "window", "timestamp"];
    let stable = |r: &Row| {
        mpscan::output::COLUMNS.iter().filter(|c| !unstable.contains(c)).map(|c| r[*c].clone()).collect::<Vec<_>>()
    };
    let a: BTreeSet<_> = csv.iter().map(stable).collect();
    let b: BTreeSet<_> = pq.iter().map(stable).collect();
    assert_eq!(a, b);
    check(&lab.ground_truth().unwrap(), &pq);
    let meta = read_json(&dir.join("lab-0-of-1.json"));
    assert_eq!(meta["rows"].as_u64(), Some(pq.len() as u64));
    // summary and diff read the scanner's Parquet file as it is: the same headline as the CSV's,
    // and no target changed class between the two.
    let json = |args: &[&str]| -> serde_json::Value {
        let out = ok(Command::new(EXE).args(args).args(["--format", "json"]).current_dir(&dir).output().unwrap());
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (s_csv, s_pq) = (json(&["summary", "lab-0-of-1.csv"]), json(&["summary", "lab-0-of-1.parquet"]));
    assert!(s_csv["tables"][0]["title"].as_str().unwrap().starts_with("Headline"));
    assert_eq!(s_csv["tables"][0], s_pq["tables"][0]);
    let d = json(&["diff", "lab-0-of-1.csv", "lab-0-of-1.parquet"]);
    for r in d["tables"][0]["rows"].as_array().unwrap() {
        assert_eq!(r["old"], r["new"], "{r}");
        for c in ["appeared", "disappeared", "switched in", "switched out"] {
            assert_eq!(r[c].as_u64(), Some(0), "{r}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ipv6_hitlist_scan_with_dash_6() {
    if !lab_possible("ipv6_hitlist_scan_with_dash_6") {
        return;
    }
    let lab = up();
    let dir = tempdir("v6");
    let hitlist = format!("@{}", lab.info.targets6.as_ref().expect("an IPv6 lab").display());
    ok(scan_lab(&lab, &dir, &["-6", "-o", "v6.csv", "-m", "v6.json", "--mptcp-version", "1", &hitlist]));
    let rows = read_rows(&dir.join("v6.csv"));
    assert!(!rows.is_empty() && rows.iter().all(|r| r["ip"].parse::<IpAddr>().unwrap().is_ipv6()));
    let truth = lab.ground_truth().unwrap();
    for r in &rows {
        let ip: IpAddr = r["ip"].parse().unwrap();
        let e = truth.expected(ip, r["port"].parse().unwrap(), ProbeVersion::V1).expect("an answering address");
        assert_eq!(r["class"], e.class.label(), "{r:?}");
    }
    let meta = read_json(&dir.join("v6.json"));
    assert_eq!(meta["config"]["source_ip"], serde_json::json!([lab.info.source_ip6.unwrap().to_string()]));
    // IPv4 targets with -6: a one-line error, nothing scanned.
    let v4 = format!("@{}", lab.info.targets.display());
    let out = scan_lab(&lab, &dir, &["-6", "-o", "v4.csv", &v4]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("-6") && err.contains("IPv4") && err.trim().lines().count() == 1, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A scan of both families whose IPv6 router is another machine than the IPv4 one: the IPv6
/// probes go to the IPv6 router's MAC (resolved from the scanner's IPv6 route), the IPv4 ones to
/// the IPv4 router's, and both families' answers match the ground truth.
///
/// The second router is a macvlan on the lab router's scanner-facing link with its own MAC and
/// link-local address, and the router drops IPv6 TCP that arrives for its own MAC (an nftables
/// ingress rule on the link, which runs before the macvlan takes its frames), so IPv6 probes
/// sent to the IPv4 router get no answer. The scanner's IPv6 default route is moved to it.
#[test]
fn ipv6_through_its_own_router() {
    if !lab_possible("ipv6_through_its_own_router") {
        return;
    }
    let lab = up();
    let truth = lab.ground_truth().unwrap();
    let dir = tempdir("gw6");
    let (rtr, scan) = (&lab.info.router_ns, &lab.info.scanner_ns);
    const GW6_MAC: &str = "02:00:5e:00:66:06";
    let ip = |ns: &str, args: &[&str]| {
        let out = Command::new("ip").arg("-n").arg(ns).args(args).output().unwrap();
        assert!(out.status.success(), "ip -n {ns} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    ip(rtr, &["link", "add", "link", "v-scan", "name", "gw6", "address", GW6_MAC, "type", "macvlan", "mode", "bridge"]);
    ip(rtr, &["-6", "addr", "add", "fe80::66/64", "dev", "gw6", "nodad"]);
    ip(rtr, &["link", "set", "gw6", "up"]);
    ip(scan, &["-6", "route", "replace", "default", "via", "fe80::66", "dev", "v-rtr"]);
    let mut nft = Command::new("ip")
        .args(["netns", "exec", rtr, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    write!(
        nft.stdin.take().unwrap(),
        "table netdev gw6only {{\n chain in {{\n  type filter hook ingress device \"v-scan\" priority 0;\n  \
         ether type ip6 ether daddr != {GW6_MAC} meta l4proto tcp drop\n }}\n}}\n"
    )
    .unwrap();
    assert!(nft.wait().unwrap().success(), "nft: IPv6 TCP only through the second router");

    ok(scan_lab(&lab, &dir, &[]));
    let rows = read_rows(&dir.join("lab-0-of-1.csv"));
    let meta = read_json(&dir.join("lab-0-of-1.json"));
    let (n4, n6) = check(&truth, &rows);
    assert!(n4 > 0 && n6 > 0, "rows: {n4} IPv4, {n6} IPv6");
    assert_eq!(meta["config"]["gateway_mac6"], GW6_MAC, "{meta}");
    assert_eq!(meta["config"]["gateway_mac"], lab.info.gateway_mac.to_string(), "{meta}");
    assert_ne!(lab.info.gateway_mac.to_string(), GW6_MAC);
    let _ = std::fs::remove_dir_all(&dir);
}
