//! `mpscan scan` against the lab, IPv4 and IPv6 in one scan, compared with the lab's ground
//! truth: every responder found, every class right (and the MP_CAPABLE version, flags, mirror and
//! timestamp facts, the responder and the detail where the ground truth states them: the
//! MP_CAPABLE naming no algorithm is `malformed`, the routing loop's time exceeded `unreachable`
//! from the loop's router), no row for a silent address, no duplicate row, and the same rows
//! again from a second run with the same seed.
//!
//! Needs root and network namespaces: skips without them, fails instead with
//! `MPSCAN_REQUIRE_LAB=1` (set by `.ci/run`). Each test's lab has a unique name and is torn down
//! by its guard even when the test fails.

mod common;
use common::{check_rows, lab_possible, read_rows, Row};
use mpscan::lab::{GroundTruth, Lab};
use mpscan::probe::ProbeVersion;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_mpscan");

fn up() -> Lab {
    common::up_small()
}

/// Runs `mpscan scan` in the lab's scanner namespace and returns the rows and the metadata.
fn scan(lab: &Lab, version: &str, seed: &str, extra: &[&str]) -> (Vec<Row>, serde_json::Value) {
    let dir = tempdir(&lab.info.run);
    let (csv, json) = (dir.join(format!("scan-{version}-{seed}.csv")), dir.join(format!("scan-{version}-{seed}.json")));
    let targets = format!("@{}", lab.info.targets.display());
    let targets6 = format!("@{}", lab.info.targets6.as_ref().expect("the lab has IPv6 ranges").display());
    let blocklist = lab.info.blocklist.display().to_string();
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.info.scanner_ns, EXE, "scan", "-p", "22,80,443", "--mptcp-version", version])
        .args(["-e", seed, "-r", "20000", "-c", "2", "-b", &blocklist, "-q"])
        .args(["-o", csv.to_str().unwrap(), "-m", json.to_str().unwrap()])
        .args(extra)
        .args([&targets, &targets6])
        .output()
        .expect("running mpscan in the lab");
    assert!(out.status.success(), "mpscan scan failed: {}", String::from_utf8_lossy(&out.stderr));
    let rows = read_rows(&csv);
    let meta = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).expect("metadata JSON");
    (rows, meta)
}

fn tempdir(run: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mpscan-scan-lab-{run}"));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn scan_matches_ground_truth_for_v1_v0_and_both() {
    if !lab_possible("scan_matches_ground_truth_for_v1_v0_and_both") {
        return;
    }
    let lab = up();
    let truth = GroundTruth::load(Path::new(&lab.info.ground_truth)).unwrap();
    let ports = [22, 80, 443];
    for (arg, versions) in [
        ("1", vec![ProbeVersion::V1]),
        ("0", vec![ProbeVersion::V0]),
        ("both", vec![ProbeVersion::V1, ProbeVersion::V0]),
    ] {
        let (rows, meta) = scan(&lab, arg, "11", &[]);
        let n = check_rows(&truth, &rows, &versions, &ports);
        assert!(n > 0);
        assert_eq!(meta["rows"].as_u64().unwrap(), n as u64);
        assert_eq!(meta["interrupted"], false);
        let targets = meta["targets_total"].as_u64().unwrap();
        assert_eq!(meta["targets_probed"].as_u64().unwrap(), targets);
        assert_eq!(meta["probes_sent"].as_u64().unwrap(), targets * versions.len() as u64);
        // Every class the lab has shows up.
        let classes: BTreeSet<&str> = rows.iter().map(|r| r["class"].as_str()).collect();
        for c in ["mptcp", "tcp", "closed", "unreachable", "malformed"] {
            assert!(classes.contains(c), "no {c} row with --mptcp-version {arg}");
        }
        // Time exceeded from the routing loop, in both families.
        for d in ["icmp-11-0", "icmp-3-0"] {
            assert!(rows.iter().any(|r| r["detail"] == d), "no {d} row with --mptcp-version {arg}");
        }
        assert!(rows.iter().any(|r| r["ip"].contains(':')), "no IPv6 row with --mptcp-version {arg}");
        assert!(classes.contains("echo"), "no echo row with --mptcp-version {arg}");
    }
}

#[test]
fn same_seed_same_rows_and_repeated_probes_do_not_duplicate() {
    if !lab_possible("same_seed_same_rows_and_repeated_probes_do_not_duplicate") {
        return;
    }
    let lab = up();
    let key = |rows: &[Row]| -> BTreeSet<(String, String, String, String)> {
        rows.iter().map(|r| (r["ip"].clone(), r["port"].clone(), r["probe"].clone(), r["class"].clone())).collect()
    };
    let (a, _) = scan(&lab, "both", "5", &[]);
    let (b, meta) = scan(&lab, "both", "5", &["-P", "3"]);
    assert_eq!(key(&a), key(&b));
    assert_eq!(a.len(), b.len());
    // Three probes per target: the extra answers are counted as duplicates, not written.
    assert!(meta["duplicates"].as_u64().unwrap() > 0, "{meta}");
    let truth = GroundTruth::load(Path::new(&lab.info.ground_truth)).unwrap();
    check_rows(&truth, &b, &[ProbeVersion::V1, ProbeVersion::V0], &[22, 80, 443]);
}

// Sharded scans (3 and 7 shards, both families, merge) are tested in tests/lab_multi.rs.
