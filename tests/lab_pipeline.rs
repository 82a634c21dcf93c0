//! Scans feeding the next stage through a pipe (README, "Outputs for pipelines"): in the lab's
//! scanner namespace, `mpscan scan -o - --classes mptcp` piped into `mpscan verify -`, once as CSV
//! and once as JSON lines (`--output-format jsonl`). The scan's stream (kept with `tee`) holds
//! only `mptcp` rows, all the lab's MPTCP servers and nothing else the ground truth does not
//! state; verify gives one row per streamed row, in order, and confirms every kernel MPTCP
//! server.
//!
//! The limits too, on the lab: `--max-results 10` ends the scan with exactly 10 rows and
//! `"end_reason": "max-results"`; `--max-runtime 1` at 200 pps ends it early (exit 0,
//! `"max-runtime"`, fewer targets than the space) and the same command with `--resume` then
//! completes it with no row lost or doubled.
//!
//! Needs root and network namespaces: skips without them, fails instead with
//! `MPSCAN_REQUIRE_LAB=1`. The lab has a unique name and is torn down by its guard even when the
//! test fails.

mod common;
use common::{lab_possible, read_rows, Row};
use mpscan::lab::{GroundTruth, RangeKind};
use mpscan::probe::ProbeVersion;
use std::path::Path;
use std::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_mpscan");

/// One JSON line per row, as a map from column to its CSV text (what the CSV would hold).
fn read_json_lines(p: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(p).unwrap();
    text.lines()
        .map(|l| {
            let o: serde_json::Map<String, serde_json::Value> = serde_json::from_str(l).expect("a JSON object a line");
            o.into_iter()
                .map(|(k, v)| {
                    let t = match v {
                        serde_json::Value::String(s) => s,
                        serde_json::Value::Null => String::new(),
                        v => v.to_string(),
                    };
                    (k, t)
                })
                .collect()
        })
        .collect()
}

#[test]
fn a_scan_piped_into_verify_as_csv_and_as_json_lines() {
    if !lab_possible("a_scan_piped_into_verify_as_csv_and_as_json_lines") {
        return;
    }
    let lab = common::up_small();
    let dir = common::scratch_dir(&lab, "pipeline", "pipe");
    let truth = GroundTruth::load(Path::new(&lab.info.ground_truth)).unwrap();
    let mptcp: ipnet::Ipv4Net =
        lab.info.ranges.iter().find(|r| r.kind == RangeKind::KernelMptcp).unwrap().prefix.parse().unwrap();
    for format in ["csv", "jsonl"] {
        let (stream, verified) = (dir.join(format!("scan.{format}")), dir.join(format!("verified-{format}.csv")));
        let script = format!(
            "set -o pipefail; {EXE} scan -p 80,443 -r 20000 -q -b {bl} --output-format {format} --classes mptcp \
             -o - @{targets} | tee {stream} | {EXE} verify - --timeout 2 --rate 0 -q -o {verified}",
            bl = lab.info.blocklist.display(),
            targets = lab.info.targets.display(),
            stream = stream.display(),
            verified = verified.display(),
        );
        let out = Command::new("ip")
            .args(["netns", "exec", &lab.info.scanner_ns, "bash", "-c", &script])
            .output()
            .expect("running the pipeline in the lab");
        assert!(out.status.success(), "{format} pipeline: {}", String::from_utf8_lossy(&out.stderr));
        let rows = if format == "csv" { read_rows(&stream) } else { read_json_lines(&stream) };
        assert!(!rows.is_empty() && rows.iter().all(|r| r["class"] == "mptcp"), "{format}: only mptcp rows");
        // As many rows as the ground truth has MPTCP servers (IPv4 targets, ports 80 and 443).
        let all = truth.addresses();
        let want = all
            .iter()
            .filter(|ip| ip.is_ipv4())
            .flat_map(|ip| [80u16, 443].map(|p| (*ip, p)))
            .filter(|(ip, p)| truth.expected(*ip, *p, ProbeVersion::V1).is_some_and(|e| e.class.label() == "mptcp"))
            .count();
        assert_eq!(rows.len(), want, "{format}: every MPTCP server once");
        let verdicts = read_rows(&verified);
        let key = |r: &Row| (r["ip"].clone(), r["port"].clone(), r["probe"].clone());
        assert_eq!(verdicts.iter().map(key).collect::<Vec<_>>(), rows.iter().map(key).collect::<Vec<_>>(), "{format}");
        for v in &verdicts {
            let ip: std::net::Ipv4Addr = match v["ip"].parse() {
                Ok(ip) => ip,
                Err(_) => continue,
            };
            if mptcp.contains(&ip) {
                assert_eq!(v["verdict"], "confirmed", "{format}: {v:?}");
            }
        }
        assert!(verdicts.iter().any(|v| v["verdict"] == "confirmed"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `mpscan scan` in the lab's scanner namespace over its IPv4 targets, ports 80 and 443.
fn lab_scan(lab: &mpscan::lab::Lab, dir: &Path, name: &str, extra: &[&str]) -> std::process::Output {
    Command::new("ip")
        .args(["netns", "exec", &lab.info.scanner_ns, EXE, "scan", "-p", "80,443", "-q", "-c", "1"])
        .args(["-b", lab.info.blocklist.to_str().unwrap()])
        .args(["-o", dir.join(format!("{name}.csv")).to_str().unwrap()])
        .args(["-m", dir.join(format!("{name}.json")).to_str().unwrap()])
        .args(extra)
        .arg(format!("@{}", lab.info.targets.display()))
        .output()
        .unwrap()
}

#[test]
fn max_results_and_max_runtime_end_a_lab_scan_cleanly() {
    if !lab_possible("max_results_and_max_runtime_end_a_lab_scan_cleanly") {
        return;
    }
    let lab = common::up_small();
    let dir = common::scratch_dir(&lab, "pipeline", "limits");
    let out = lab_scan(&lab, &dir, "ten", &["-r", "20000", "--max-results", "10"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let md = common::read_json(&dir.join("ten.json"));
    assert_eq!(read_rows(&dir.join("ten.csv")).len(), 10);
    assert_eq!((md["rows"].as_u64(), md["end_reason"].as_str()), (Some(10), Some("max-results")));

    // 200 pps for 1 s: a part of the lab's targets, then the same command resumes to the end.
    let state = dir.join("slow.state");
    let args = ["-r", "200", "--max-runtime", "1", "--resume", state.to_str().unwrap()];
    let out = lab_scan(&lab, &dir, "slow", &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let md = common::read_json(&dir.join("slow.json"));
    assert_eq!((md["end_reason"].as_str(), md["interrupted"].as_bool()), (Some("max-runtime"), Some(true)));
    let (probed, total) = (md["targets_probed"].as_u64().unwrap(), md["targets_total"].as_u64().unwrap());
    assert!(probed > 0 && probed < total, "{probed} of {total} probed in 1 s at 200 pps");
    let first = read_rows(&dir.join("slow.csv")).len();
    assert_eq!(md["rows"].as_u64(), Some(first as u64));
    let mut runs = 1;
    loop {
        // Without --max-runtime's cut the scan would take some seconds: resume until done.
        let out = lab_scan(&lab, &dir, "slow", &args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        runs += 1;
        if common::read_json(&dir.join("slow.json"))["end_reason"] == "completed" {
            break;
        }
        assert!(runs < 60, "never completed");
    }
    let full = lab_scan(&lab, &dir, "full", &["-r", "20000"]);
    assert!(full.status.success());
    let key = |r: &Row| (r["ip"].clone(), r["port"].clone(), r["probe"].clone(), r["class"].clone());
    let mut a: Vec<_> = read_rows(&dir.join("slow.csv")).iter().map(key).collect();
    let mut b: Vec<_> = read_rows(&dir.join("full.csv")).iter().map(key).collect();
    let n = a.len();
    a.sort();
    a.dedup();
    b.sort();
    assert_eq!(a.len(), n, "a row written twice across {runs} runs");
    assert_eq!(a, b, "the resumed scan's rows are the uninterrupted scan's");
    let _ = std::fs::remove_dir_all(&dir);
}
