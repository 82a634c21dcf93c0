//! A scan rides through a flapping link (issue 18): the scanner's interface is taken down inside
//! the lab's own scanner namespace (`ip -n NS link set IF down`), in a lab this test created.
//!
//! * Down for 2 s in the middle of a scan: the scan completes (exit 0) with the rows of an
//!   uninterrupted scan, except targets whose answers were in flight when the link went down
//!   (bounded by rate × outage, and reported); the metadata counts the ENETDOWN, the stall and the
//!   probes re-sent, and the progress line said "link down, waiting (N s of 60)".
//! * Down for longer than a 3 s grace: exit 1 with one line naming --send-error-grace and the
//!   resume command; once the link is back, `--resume` completes, and the union of the rows is
//!   exactly the uninterrupted scan's.
//!
//! Needs root and network namespaces: skips without them, fails instead with
//! `MPSCAN_REQUIRE_LAB=1`.

mod common;
use common::lab_possible;
use mpscan::lab::Lab;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const RATE: u64 = 500;

type Key = (String, String, String, String);

/// Starts `mpscan scan` in the scanner namespace writing to `csv` (progress on stderr, which is
/// not a terminal: plain lines); `extra` is added last.
fn start(lab: &Lab, csv: &Path, extra: &[&str]) -> Child {
    let targets = format!("@{}", lab.info.targets.display());
    common::lab_scan(lab, csv)
        .args(["-e", "91", "-c", "2", "-r", &RATE.to_string(), "-G", &lab.info.gateway_mac])
        .args(extra)
        .arg(&targets)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpscan")
}

/// `ip -n NS ARGS` in the lab's scanner namespace (created by this test's lab).
fn ip(lab: &Lab, args: &[&str]) {
    let st = Command::new("ip").args(["-n", &lab.info.scanner_ns]).args(args).status().expect("ip");
    assert!(st.success(), "ip -n {} {args:?}", lab.info.scanner_ns);
}

/// Takes the scanner's interface down; the guard brings it back up (also when the test fails)
/// and puts back the default routes that a link down removes.
struct Down<'a>(&'a Lab, bool);

impl<'a> Down<'a> {
    fn new(lab: &'a Lab) -> Down<'a> {
        ip(lab, &["link", "set", &lab.info.interface, "down"]);
        Down(lab, false)
    }

    fn up(&mut self) {
        if self.1 {
            return;
        }
        self.1 = true;
        let lab = self.0;
        ip(lab, &["link", "set", &lab.info.interface, "up"]);
        ip(lab, &["route", "replace", "default", "via", &lab.info.gateway_ip.to_string()]);
    }
}

impl Drop for Down<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.1 = true;
            let lab = self.0;
            let _ = Command::new("ip")
                .args(["-n", &lab.info.scanner_ns, "link", "set", &lab.info.interface, "up"])
                .status();
        }
    }
}

fn output(child: Child) -> (Output, String) {
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    (out, err)
}

/// The lab (if it can run here), a scratch directory, and the rows of an uninterrupted scan.
fn setup(test: &str) -> Option<(Lab, PathBuf, BTreeSet<Key>)> {
    if !lab_possible(test) {
        return None;
    }
    let lab = common::up_small();
    let d = common::scratch_dir(&lab, "flap", test);
    let full = d.join("full.csv");
    let (out, err) = output(start(&lab, &full, &["-q"]));
    assert!(out.status.success(), "{err}");
    let rows = common::row_keys(&full);
    assert!(rows.len() > 500, "the lab answered only {} rows", rows.len());
    Some((lab, d, rows.into_iter().collect()))
}

fn meta(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn link_down_for_two_seconds_mid_scan_completes_with_the_same_rows() {
    let Some((lab, d, want)) = setup("link_down_for_two_seconds_mid_scan_completes_with_the_same_rows") else {
        return;
    };

    let csv = d.join("flap.csv");
    let json = d.join("flap.json");
    let child = start(&lab, &csv, &["-m", json.to_str().unwrap()]);
    // The scan sends for several seconds (over 1,200 probes at 500 pps): the link goes down
    // in the middle of it, for 2 s.
    std::thread::sleep(Duration::from_secs(1));
    let outage = Duration::from_secs(2);
    let mut down = Down::new(&lab);
    std::thread::sleep(outage);
    down.up();
    let (out, err) = output(child);
    assert!(out.status.success(), "the scan did not ride through the outage: {err}");
    assert!(err.contains("link down, waiting ("), "no waiting line in the progress: {err}");
    assert!(err.contains(" s of 60)"), "{err}");

    let rows = common::row_keys(&csv);
    let got: BTreeSet<_> = rows.iter().cloned().collect();
    assert_eq!(rows.len(), got.len(), "a row was written twice");
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(extra.is_empty(), "rows an uninterrupted scan does not have: {extra:?}");
    // Answers in flight when the link went down are lost; no more than the probes of the outage.
    let lost: Vec<_> = want.difference(&got).collect();
    let bound = RATE * outage.as_secs();
    assert!(
        lost.len() as u64 <= bound,
        "{} of {} rows lost, more than rate x outage = {bound}: {:?}",
        lost.len(),
        want.len(),
        &lost[..lost.len().min(5)]
    );
    eprintln!(
        "lab_flap: {} of {} rows lost to answers in flight during a 2 s outage at {RATE} pps (bound {bound})",
        lost.len(),
        want.len()
    );

    let m = meta(&json);
    assert_eq!(m["interrupted"], false, "{m}");
    assert_eq!(m["targets_probed"], m["targets_total"], "{m}");
    assert!(m["send_errors"]["ENETDOWN"].as_u64().unwrap_or(0) >= 1, "{m}");
    assert!(m["stalls"].as_u64().unwrap() >= 1, "{m}");
    assert!(m["stall_secs"].as_f64().unwrap() > 0.0, "{m}");
    assert!(m["probes_resent"].as_u64().unwrap() >= 1, "the frame refused when the link went down: {m}");
    assert_eq!(m["config"]["send_error_grace_secs"], 60.0);
}

#[test]
fn link_down_longer_than_the_grace_stops_and_resumes() {
    let Some((lab, d, want)) = setup("link_down_longer_than_the_grace_stops_and_resumes") else {
        return;
    };

    let csv = d.join("scan.csv");
    let json = d.join("scan.json");
    let child = start(&lab, &csv, &["-q", "--send-error-grace", "3", "-m", json.to_str().unwrap()]);
    std::thread::sleep(Duration::from_secs(1));
    let mut down = Down::new(&lab);
    // The link stays down until the scan has given up.
    let (out, err) = output(child);
    down.up();
    assert_eq!(out.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(lines[0].contains("Network is down") && lines[0].contains("--send-error-grace"), "{err}");
    let state = format!("{}.state", csv.display());
    assert!(lines[0].contains(&format!("--resume {state}")), "{err}");
    let m = meta(&json);
    assert_eq!(m["interrupted"], true, "{m}");
    assert!(m["send_errors"]["ENETDOWN"].as_u64().unwrap_or(0) >= 1, "{m}");
    assert!(m["stall_secs"].as_f64().unwrap() >= 3.0, "{m}");
    let probed = m["targets_probed"].as_u64().unwrap();
    assert!(probed < m["targets_total"].as_u64().unwrap(), "{m}");
    let before = common::row_keys(&csv).len();

    let (out, err) = output(start(&lab, &csv, &["-q", "--resume", &state, "-m", json.to_str().unwrap()]));
    assert!(out.status.success(), "{err}");
    let rows = common::row_keys(&csv);
    assert!(rows.len() > before, "the resume added no row");
    let got: BTreeSet<_> = rows.iter().cloned().collect();
    assert_eq!(rows.len(), got.len(), "a row was written twice");
    let lost: Vec<_> = want.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(&want).take(5).collect();
    assert!(lost.is_empty() && extra.is_empty(), "lost {lost:?}, extra {extra:?}");
    let m = meta(&json);
    assert_eq!(m["interrupted"], false, "{m}");
    assert_eq!(m["targets_probed"], m["targets_total"], "{m}");
    // The counts cover the whole scan, the run before the resume included (from the state).
    assert!(m["send_errors"]["ENETDOWN"].as_u64().unwrap_or(0) >= 1, "{m}");
    assert!(m["stall_secs"].as_f64().unwrap() >= 3.0, "{m}");
}

#[test]
fn killed_while_waiting_for_the_link_then_resumed_loses_nothing() {
    let Some((lab, d, want)) = setup("killed_while_waiting_for_the_link_then_resumed_loses_nothing") else {
        return;
    };
    let csv = d.join("scan.csv");
    let mut child = start(&lab, &csv, &["-q"]);
    std::thread::sleep(Duration::from_secs(1));
    let mut down = Down::new(&lab);
    // Long enough for the state saver to save (every 0.5 s) and to settle positions from before
    // the outage (after the 2 s cooldown): they must not pass the probes whose frames were kept
    // or whose answers were lost with the link.
    std::thread::sleep(Duration::from_secs(4));
    assert!(child.try_wait().unwrap().is_none(), "the scan should still be waiting for the link");
    // `ip netns exec` execs mpscan, so this PID is the scanner itself.
    child.kill().unwrap();
    let _ = child.wait();
    down.up();
    let state = format!("{}.state", csv.display());
    let (out, err) = output(start(&lab, &csv, &["-q", "--resume", &state]));
    assert!(out.status.success(), "{err}");
    let rows = common::row_keys(&csv);
    let got: BTreeSet<_> = rows.iter().cloned().collect();
    assert_eq!(rows.len(), got.len(), "a row was written twice");
    let lost: Vec<_> = want.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(&want).take(5).collect();
    assert!(lost.is_empty() && extra.is_empty(), "lost {lost:?}, extra {extra:?}");
}
