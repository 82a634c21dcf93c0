//! Never lose a result: a scan killed with SIGKILL at random points, and resumed each time with
//! `--resume` (or run with one unchanging `--resume STATE` command from the first run on), ends
//! with exactly the rows of an uninterrupted scan (no row lost, none twice);
//! SIGINT stops it cleanly with exit code 3, interrupted metadata and a resumable state; a full
//! disk stops it with a one-line error, keeps what was written, and leaves a state that resumes.
//!
//! Needs root and network namespaces: skips without them, fails instead with
//! `MPSCAN_REQUIRE_LAB=1`.

mod common;
use common::lab_possible;
use mpscan::lab::Lab;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn up() -> Lab {
    common::up_small()
}

fn dir(lab: &Lab, name: &str) -> PathBuf {
    common::scratch_dir(lab, "resume", name)
}

/// Starts `mpscan scan` in the scanner namespace writing to `csv`; `extra` is added last.
fn start(lab: &Lab, csv: &Path, extra: &[&str]) -> Child {
    let targets = format!("@{}", lab.info.targets.display());
    common::lab_scan(lab, csv)
        .args(["-e", "77", "-c", "1", "-q"])
        .args(extra)
        .arg(&targets)
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpscan")
}

fn keys(csv: &Path) -> Vec<(String, String, String, String)> {
    common::row_keys(csv)
}

/// A small deterministic generator (no rand dependency in tests).
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn sigkill_at_random_points_then_resume_gives_the_uninterrupted_rows() {
    if !lab_possible("sigkill_at_random_points_then_resume_gives_the_uninterrupted_rows") {
        return;
    }
    let lab = up();
    let d = dir(&lab, "kill");
    // The reference: one uninterrupted run.
    let full = d.join("full.csv");
    let out = start(&lab, &full, &["-r", "1500"]).wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reference: BTreeSet<_> = keys(&full).into_iter().collect();
    assert!(reference.len() > 1000);

    // As the README says first: the plain command, then `--resume FILE.state` after each kill.
    let csv = d.join("killed.csv");
    let state = format!("{}.state", csv.display());
    let kills = kill_and_resume(&lab, &csv, &state, false);
    same_rows(&csv, &reference, kills);
    // One unchanging command (`--resume STATE` from the first run, as a systemd unit restarts
    // it): the first run starts afresh, each rerun resumes.
    let csv = d.join("unchanging.csv");
    let state = d.join("unchanging.state").display().to_string();
    let kills = kill_and_resume(&lab, &csv, &state, true);
    same_rows(&csv, &reference, kills);
}

/// Runs the scan into `csv`, killing it (SIGKILL) at random points and resuming from `state`,
/// until it finishes; returns how many times it was killed. With `unchanging`, every run,
/// the first included, is given `--resume state`.
fn kill_and_resume(lab: &Lab, csv: &Path, state: &str, unchanging: bool) -> u32 {
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ unchanging as u64;
    let mut kills = 0;
    let mut first = true;
    for _ in 0..12 {
        let extra: Vec<&str> =
            if first && !unchanging { vec!["-r", "1500"] } else { vec!["-r", "1500", "--resume", state] };
        let mut child = start(lab, csv, &extra);
        first = false;
        std::thread::sleep(Duration::from_millis(150 + next(&mut rng) % 700));
        match child.try_wait().unwrap() {
            Some(status) => {
                let err = String::from_utf8_lossy(&child.wait_with_output().unwrap().stderr).to_string();
                assert!(status.success(), "resumed scan failed: {err}");
                break;
            }
            None => {
                // `ip netns exec` execs mpscan, so this PID is the scanner itself.
                child.kill().unwrap();
                let _ = child.wait();
                kills += 1;
            }
        }
    }
    // Finish whatever is left.
    let out = start(lab, csv, &["-r", "1500", "--resume", state]).wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() || err.contains("already finished"), "{err}");
    kills
}

/// The rows of `csv` are those of the uninterrupted scan: none lost, none twice, none extra.
fn same_rows(csv: &Path, reference: &BTreeSet<(String, String, String, String)>, kills: u32) {
    eprintln!("{}: killed {kills} times", csv.display());
    assert!(kills >= 3, "the scan of {} was killed only {kills} times", csv.display());
    let rows = keys(csv);
    let got: BTreeSet<_> = rows.iter().cloned().collect();
    assert_eq!(rows.len(), got.len(), "a row was written twice");
    let lost: Vec<_> = reference.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(reference).take(5).collect();
    assert!(lost.is_empty() && extra.is_empty(), "after {kills} kills: lost {lost:?}, extra {extra:?}");
}

#[test]
fn sigint_stops_cleanly_and_resumes() {
    if !lab_possible("sigint_stops_cleanly_and_resumes") {
        return;
    }
    let lab = up();
    let d = dir(&lab, "int");
    let csv = d.join("scan.csv");
    let json = d.join("scan.json");
    let child = start(&lab, &csv, &["-r", "500", "-m", json.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(800));
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(meta["interrupted"], true);
    let probed = meta["targets_probed"].as_u64().unwrap();
    assert!(probed > 0 && probed < meta["targets_total"].as_u64().unwrap(), "{meta}");
    let state = format!("{}.state", csv.display());
    // A different seed is refused before anything is sent.
    let out = start(&lab, &csv, &["-r", "2000", "--resume", &state, "-e", "78"]).wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--seed"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = start(&lab, &csv, &["-r", "2000", "--resume", &state, "-m", json.to_str().unwrap()])
        .wait_with_output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(meta["interrupted"], false);
    assert_eq!(meta["resumed"], true);
    assert_eq!(meta["targets_probed"], meta["targets_total"], "{meta}");
    let rows = keys(&csv);
    assert_eq!(rows.len(), rows.iter().collect::<BTreeSet<_>>().len());
    assert_eq!(meta["rows"].as_u64().unwrap(), rows.len() as u64);
}

#[test]
fn full_disk_stops_with_one_line_and_resumes_elsewhere() {
    if !lab_possible("full_disk_stops_with_one_line_and_resumes_elsewhere") {
        return;
    }
    let lab = up();
    let d = dir(&lab, "disk");
    let mnt = d.join("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let ok =
        Command::new("mount").args(["-t", "tmpfs", "-o", "size=96k", "tmpfs", mnt.to_str().unwrap()]).status().unwrap();
    assert!(ok.success(), "mounting a small tmpfs");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    let csv = mnt.join("scan.csv");
    let out = start(&lab, &csv, &["-r", "3000"]).wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(lines[0].contains("No space left") && lines[0].contains("--resume"), "{err}");
    // What was written is a valid CSV, and the state resumes once there is room again.
    let kept = keys(&csv);
    assert!(!kept.is_empty());
    let state = format!("{}.state", csv.display());
    let big = d.join("scan.csv");
    std::fs::copy(&csv, &big).unwrap();
    let big_state = format!("{}.state", big.display());
    std::fs::copy(&state, &big_state).unwrap();
    let out = start(&lab, &big, &["-r", "3000", "--resume", &big_state]).wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let all = keys(&big);
    assert_eq!(all.len(), all.iter().collect::<BTreeSet<_>>().len(), "no row twice");
    let full = d.join("full.csv");
    let out = start(&lab, &full, &["-r", "3000"]).wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(all.into_iter().collect::<BTreeSet<_>>(), keys(&full).into_iter().collect::<BTreeSet<_>>());
}
