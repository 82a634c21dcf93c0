//! Raw evidence and monitoring against the lab: a scan of both families with `--pcap` and
//! `--status-updates-file`, then `mpscan reclassify` of its recording.
//!
//! * the re-classified rows are the scan's, byte for byte (compared sorted), and its receive
//!   counters (received, validated, invalid by reason, duplicates, classes, rows) are the
//!   metadata's;
//! * tshark (when installed) reads the recording and sees as many frames as the scan received;
//! * the recording re-read with another seed's metadata is a one-line error, not zero rows;
//! * the status file has its header, a line per whole second the scan ran (but one), and a last
//!   line whose totals are the metadata's.
//!
//! Needs root and network namespaces: skips without them, fails instead with
//! `MPSCAN_REQUIRE_LAB=1`. The lab has a unique name and is torn down by its guard even when the
//! test fails.

mod common;
use common::{lab_possible, lab_scan, scratch_dir, sorted_lines};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_mpscan");

/// `mpscan reclassify` (no root, no namespace: it sends nothing).
fn reclassify(pcap: &Path, metadata: &Path, out: &Path, counts: &Path) -> std::process::Output {
    Command::new(EXE)
        .args(["reclassify", pcap.to_str().unwrap(), "--metadata", metadata.to_str().unwrap()])
        .args(["-o", out.to_str().unwrap(), "--counts", counts.to_str().unwrap()])
        .output()
        .unwrap()
}

#[test]
fn pcap_reclassifies_to_the_scans_rows_and_the_status_file_follows_the_scan() {
    if !lab_possible("pcap_reclassifies_to_the_scans_rows_and_the_status_file_follows_the_scan") {
        return;
    }
    let lab = common::up_small();
    let dir = scratch_dir(&lab, "pcap", "scan");
    let (csv, meta, pcap, status) =
        (dir.join("scan.csv"), dir.join("scan.json"), dir.join("scan.pcap"), dir.join("status.csv"));
    let targets = format!("@{}", lab.info.targets.display());
    let targets6 = format!("@{}", lab.info.targets6.as_ref().expect("the lab has IPv6 ranges").display());
    // Three probes per target: duplicates to filter the same way; a 3 s cooldown: a few lines.
    let out = lab_scan(&lab, &csv)
        .args(["-e", "21", "-r", "20000", "-c", "3", "-P", "3", "-q", "-m", meta.to_str().unwrap()])
        .args(["--pcap", pcap.to_str().unwrap(), "--status-updates-file", status.to_str().unwrap()])
        .args([&targets, &targets6])
        .output()
        .unwrap();
    assert!(out.status.success(), "mpscan scan failed: {}", String::from_utf8_lossy(&out.stderr));
    let md = common::read_json(&meta);
    assert!(md["config"]["seed_note"].as_str().unwrap().contains("forge answers"), "{md}");

    // Re-classified: the same rows, byte for byte, and the same receive counters.
    let (re, counts) = (dir.join("re.csv"), dir.join("counts.json"));
    let r = reclassify(&pcap, &meta, &re, &counts);
    assert!(r.status.success(), "reclassify failed: {}", String::from_utf8_lossy(&r.stderr));
    let (h1, rows1) = sorted_lines(&csv);
    let (h2, rows2) = sorted_lines(&re);
    assert_eq!(h1, h2);
    assert!(rows1.len() > 10, "the lab answers: {} rows", rows1.len());
    assert_eq!(rows1, rows2);
    let c = common::read_json(&counts);
    assert!(md["duplicates"].as_u64().unwrap() > 0, "three probes per target give duplicates: {md}");
    assert!(md["responses_invalid"].as_u64().unwrap() + md["responses_validated"].as_u64().unwrap() > 0);
    for k in ["responses_received", "responses_validated", "responses_invalid", "invalid_reasons", "duplicates"] {
        assert_eq!(c[k], md[k], "{k}");
    }
    assert_eq!((&c["classes"], &c["rows"]), (&md["classes"], &md["rows"]));

    // tshark reads the recording: one frame per frame received.
    if Command::new("tshark").arg("--version").output().is_ok() {
        let t = Command::new("tshark")
            .args(["-r", pcap.to_str().unwrap(), "-T", "fields", "-e", "frame.number"])
            .output()
            .unwrap();
        assert!(t.status.success(), "tshark: {}", String::from_utf8_lossy(&t.stderr));
        let frames = String::from_utf8_lossy(&t.stdout).lines().count() as u64;
        assert_eq!(frames, md["responses_received"].as_u64().unwrap());
    }

    // Another seed's metadata: one line, an error, no output left.
    let mut other = md.clone();
    other["config"]["seed"] = 22.into();
    let other_meta = dir.join("other.json");
    std::fs::write(&other_meta, other.to_string()).unwrap();
    let bad = dir.join("bad.csv");
    let r = reclassify(&pcap, &other_meta, &bad, &dir.join("bad-counts.json"));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("it is not that scan's recording"), "{err}");
    assert!(!bad.exists());

    // The status file.
    let text = std::fs::read_to_string(&status).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header.join(","), mpscan::scan::status::HEADER);
    let rows: Vec<BTreeMap<&str, &str>> = lines.map(|l| header.iter().copied().zip(l.split(',')).collect()).collect();
    let t = |k: &str| humantime::parse_rfc3339(md[k].as_str().unwrap()).unwrap();
    let secs = t("end_time").duration_since(t("start_time")).unwrap().as_secs();
    assert!(secs >= 3 && rows.len() as u64 >= secs - 1, "{} lines for {secs} s:\n{text}", rows.len());
    assert!(rows.iter().all(|r| r.len() == header.len()), "{text}");
    let last = rows.last().unwrap();
    let n = |k: &str| last[k].parse::<u64>().unwrap();
    assert_eq!(n("sent-total"), md["probes_sent"]);
    assert_eq!(n("received-total"), md["responses_received"]);
    assert_eq!(n("recv-total"), md["responses_validated"]);
    assert_eq!(n("pcap-drop-total"), md["kernel_drops"]);
    let mptcp: u64 = md["classes"].as_object().unwrap().values().map(|v| v["mptcp"].as_u64().unwrap()).sum();
    assert_eq!(n("recv-success-total"), mptcp);
    let _ = std::fs::remove_dir_all(&dir);
}
