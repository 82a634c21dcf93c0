//! Shared by the lab integration tests: whether the lab can run here, and a small lab with a
//! unique name.
#![allow(dead_code)] // each test file uses what it needs

use mpscan::lab::topology::random_run_name;
use mpscan::lab::{preflight, GroundTruth, Lab, LabOptions, Size};
use mpscan::probe::ProbeVersion;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Whether this machine can run the lab (root, namespaces, nftables). Without it the test is
/// skipped with a line saying why, unless `MPSCAN_REQUIRE_LAB=1` (set by `.ci/run`): then it fails.
pub fn lab_possible(test: &str) -> bool {
    match preflight() {
        Ok(()) => true,
        Err(e) if std::env::var("MPSCAN_REQUIRE_LAB").as_deref() == Ok("1") => {
            panic!("{test}: the lab is required (MPSCAN_REQUIRE_LAB=1) but cannot run: {e:#}")
        }
        Err(e) => {
            eprintln!("SKIPPED {test}: {e:#} (set MPSCAN_REQUIRE_LAB=1 to make this a failure)");
            false
        }
    }
}

/// A small lab with a unique name, run by the test binary's own `mpscan`; torn down when dropped.
pub fn up_small() -> Lab {
    Lab::up(LabOptions {
        name: Some(random_run_name()),
        size: Size::Small,
        exe: Some(PathBuf::from(env!("CARGO_BIN_EXE_mpscan"))),
    })
    .expect("lab up")
}

/// A fresh scratch directory for test `prefix`'s case `name` in `lab`.
pub fn scratch_dir(lab: &Lab, prefix: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mpscan-{prefix}-{}-{name}", lab.info.run));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `ip netns exec SCANNER-NS mpscan scan ...` with the lab's targets and blocklist, writing to
/// `csv`: what the lab scan tests run; they add their own options and the targets last.
pub fn lab_scan(lab: &Lab, csv: &Path) -> std::process::Command {
    let mut c = std::process::Command::new("ip");
    c.args(["netns", "exec", &lab.info.scanner_ns, env!("CARGO_BIN_EXE_mpscan"), "scan", "-p", "22,80,443"])
        .args(["--mptcp-version", "both", "-b", &lab.info.blocklist.display().to_string()])
        .args(["-o", csv.to_str().unwrap()]);
    c
}

/// The (ip, port, probe, class) of every row of a result CSV, in file order.
pub fn row_keys(csv: &Path) -> Vec<(String, String, String, String)> {
    let mut rdr = csv::Reader::from_path(csv).unwrap();
    rdr.records()
        .map(|r| r.unwrap())
        .map(|r| (r[0].to_string(), r[1].to_string(), r[2].to_string(), r[3].to_string()))
        .collect()
}

/// The header and the data lines of a result file, the lines sorted: two files' rows compared
/// byte for byte whatever their order (a scan and its re-classification).
pub fn sorted_lines(path: &Path) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines().map(str::to_string);
    let header = lines.next().unwrap_or_default();
    let mut rows: Vec<String> = lines.collect();
    rows.sort();
    (header, rows)
}

/// A JSON file (metadata, ground truth), parsed; panics naming the file.
pub fn read_json(p: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// One CSV row, as a map from column to value.
pub type Row = BTreeMap<String, String>;

/// Every row of a result CSV.
pub fn read_rows(p: &Path) -> Vec<Row> {
    let mut rdr = csv::Reader::from_path(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let headers = rdr.headers().unwrap().clone();
    rdr.records()
        .map(|r| headers.iter().zip(r.unwrap().iter()).map(|(h, v)| (h.to_string(), v.to_string())).collect())
        .collect()
}

/// The probe version of a `probe` column value.
pub fn version_of(label: &str) -> ProbeVersion {
    match label {
        "v0" => ProbeVersion::V0,
        "v1" => ProbeVersion::V1,
        o => panic!("bad probe column {o:?}"),
    }
}

/// Checks every row against the ground truth (either family): one row per answering (address,
/// port, version) of `versions` and `ports`, none for a silent address, and every value the
/// ground truth states (class, responder, MP_CAPABLE version and flags, mirror and timestamp
/// facts, detail). Returns the number of rows.
pub fn check_rows(truth: &GroundTruth, rows: &[Row], versions: &[ProbeVersion], ports: &[u16]) -> usize {
    let mut seen = BTreeSet::new();
    for r in rows {
        let ip: IpAddr = r["ip"].parse().unwrap();
        let port: u16 = r["port"].parse().unwrap();
        let v = version_of(&r["probe"]);
        assert!(versions.contains(&v), "row for a version not probed: {r:?}");
        assert!(seen.insert((ip, port, v)), "duplicate row {r:?}");
        let e = truth.expected(ip, port, v).unwrap_or_else(|| panic!("row for a silent address: {r:?}"));
        assert_eq!(r["class"], e.class.label(), "class of {ip}:{port} {v}: {r:?}");
        assert_eq!(r["responder"], e.responder_for(ip).to_string(), "{r:?}");
        let stated = [
            ("mptcp_version", e.mptcp_version.map(|v| v.to_string())),
            ("mpc_flags", e.mpc_flags.clone()),
            ("mirrored", e.mirrored.map(|m| m.to_string())),
            ("ts_echoed", e.ts_echoed.map(|t| t.to_string())),
            ("detail", e.detail.clone()),
        ];
        for (column, want) in stated {
            if let Some(want) = want {
                assert_eq!(r[column], want, "{column} of {ip}:{port} {v}: {r:?}");
            }
        }
        if r["class"] == "mptcp" {
            assert_eq!(r["mpc_key"].len(), 16, "{r:?}");
        }
    }
    // Recall: every (address, port, version) the ground truth says answers has its row.
    let mut missing = Vec::new();
    for ip in truth.addresses() {
        for &port in ports {
            for &v in versions {
                if truth.expected(ip, port, v).is_some() && !seen.contains(&(ip, port, v)) {
                    missing.push(format!("[{ip}]:{port} {v}"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} answering targets have no row, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    rows.len()
}
