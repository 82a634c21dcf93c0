//! The Ansible playbooks of deploy/ansible (docs/SCALE.md), run for real on this machine: an
//! inventory of three hosts that are all this machine (`ansible_connection: local`), each
//! scanning its shard of the shipped `scans/lab.toml` from inside the scanner namespace of its own
//! lab, merged on the "controller".
//!
//! * A first run: the merged result has the rows of an unsharded scan of the same definition
//!   (same (address, port, probe, class) set, every row as the ground truth says), and counts
//!   that add up, with the three vantage points recorded.
//! * Kill and stop: a slow run in which one shard's scan is SIGKILLed and the two others are
//!   stopped by `stop.yml` (exit 3, metadata "interrupted"); the playbook then refuses to merge;
//!   run again, it resumes all three with the same command and the merge again equals the
//!   unsharded scan, with no row lost or doubled.
//! * Bad inventories (two hosts with one shard, an index out of range, a missing definition) stop
//!   in the first play, before anything is installed or sent, with one line naming the host.
//!
//! Needs root, network namespaces and ansible (`ansible-playbook`, installed by
//! scripts/install-deps): skips without them, fails instead with `MPSCAN_REQUIRE_LAB=1`. The labs
//! have unique names and are torn down by their guards even when the test fails; every file the
//! playbooks write is under the test's scratch directory.

mod common;
use common::{check_rows, lab_possible, read_rows, row_keys};
use mpscan::lab::{GroundTruth, Lab};
use mpscan::probe::ProbeVersion;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_mpscan");
const PLAYBOOKS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/ansible");
const LAB_DEFINITION: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scans/lab.toml");
const SHARDS: u32 = 3;

/// Whether the lab and ansible-playbook can run here (see [`lab_possible`]).
fn possible(test: &str) -> bool {
    if !lab_possible(test) {
        return false;
    }
    let ok = Command::new("ansible-playbook").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok && std::env::var("MPSCAN_REQUIRE_LAB").as_deref() == Ok("1") {
        panic!("{test}: ansible-playbook is required (MPSCAN_REQUIRE_LAB=1) but missing: run scripts/install-deps");
    }
    if !ok {
        eprintln!("SKIPPED {test}: no ansible-playbook (scripts/install-deps installs it)");
    }
    ok
}

/// The lab's run directory (`MPSCAN_LAB` of scans/lab.toml).
fn lab_dir(lab: &Lab) -> PathBuf {
    lab.info.targets.parent().unwrap().to_path_buf()
}

/// Writes an inventory of `hosts` (name, shard, the lab whose scanner namespace it scans from)
/// into `dir`, every host's files under `dir/NAME`, the results under `dir/results`.
fn inventory(dir: &Path, definition: &Path, lab_dir: &Path, hosts: &[(&str, &str, &str)]) -> PathBuf {
    let mut y = String::from("all:\n  children:\n    mpscan_shards:\n      vars:\n");
    for (k, v) in [
        ("ansible_connection", "local".to_string()),
        ("ansible_python_interpreter", "/usr/bin/python3".to_string()),
        ("mpscan_definition", definition.display().to_string()),
        ("mpscan_shards", SHARDS.to_string()),
        ("mpscan_binary", EXE.to_string()),
        ("mpscan_results", dir.join("results").display().to_string()),
        ("mpscan_poll_seconds", "1".to_string()),
        ("mpscan_workdir", format!("{}/{{{{ inventory_hostname }}}}", dir.display())),
        ("mpscan_install_path", format!("{}/{{{{ inventory_hostname }}}}/mpscan", dir.display())),
    ] {
        y += &format!("        {k}: \"{v}\"\n");
    }
    y += &format!("        mpscan_env: {{ MPSCAN_LAB: \"{}\" }}\n      hosts:\n", lab_dir.display());
    for (name, shard, ns) in hosts {
        y += &format!("        {name}: {{ shard: {shard}, mpscan_netns: \"{ns}\" }}\n");
    }
    let p = dir.join("inventory.yml");
    std::fs::write(&p, y).unwrap();
    p
}

/// `ansible-playbook -i INVENTORY deploy/ansible/PLAY`.
fn playbook(inventory: &Path, play: &str) -> Command {
    let mut c = Command::new("ansible-playbook");
    c.args(["-i", inventory.to_str().unwrap(), &format!("{PLAYBOOKS}/{play}")]);
    c.env("ANSIBLE_NOCOLOR", "1").env("ANSIBLE_RETRY_FILES_ENABLED", "0");
    c
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The unsharded scan of `definition` from `lab`'s scanner namespace: its CSV and metadata.
fn unsharded(lab: &Lab, definition: &Path, dir: &Path) -> (PathBuf, serde_json::Value) {
    let (csv, json) = (dir.join("unsharded.csv"), dir.join("unsharded.json"));
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.info.scanner_ns, EXE, "scan", "--config", definition.to_str().unwrap()])
        .args(["--shards", "1", "--shard", "0", "-q", "-o", csv.to_str().unwrap(), "-m", json.to_str().unwrap()])
        .env("MPSCAN_LAB", lab_dir(lab))
        .output()
        .unwrap();
    assert!(out.status.success(), "unsharded scan: {}", text(&out));
    (csv, common::read_json(&json))
}

/// The merged result equals the unsharded scan: same (address, port, probe, class) rows, each
/// as the ground truth says, none twice; counters add up (probes sent again by a `resumed`
/// shard aside); three vantage points.
fn check_merged(lab: &Lab, results: &Path, unsharded: &(PathBuf, serde_json::Value), resumed: bool) {
    let merged_csv = results.join("merged.csv");
    let merged = common::read_json(&results.join("merged.json"));
    let (keys, want) = (row_keys(&merged_csv), row_keys(&unsharded.0));
    let set: BTreeSet<_> = keys.iter().cloned().collect();
    assert_eq!(set.len(), keys.len(), "a row twice in the merge");
    let want: BTreeSet<_> = want.into_iter().collect();
    let (extra, missing): (Vec<_>, Vec<_>) = (set.difference(&want).collect(), want.difference(&set).collect());
    assert!(
        extra.is_empty() && missing.is_empty(),
        "merged rows differ from the unsharded scan's: {} extra {:?}, {} missing {:?}",
        extra.len(),
        &extra[..extra.len().min(8)],
        missing.len(),
        &missing[..missing.len().min(8)]
    );
    let truth = GroundTruth::load(Path::new(&lab.info.ground_truth)).unwrap();
    check_rows(&truth, &read_rows(&merged_csv), &[ProbeVersion::V1, ProbeVersion::V0], &[22, 80, 443]);
    let u = &unsharded.1;
    for counter in ["targets_total", "targets_probed", "rows"] {
        assert_eq!(merged[counter], u[counter], "{counter}: merged {merged:#}");
    }
    // A resumed shard sends again the probes after its last safe checkpoint (their answers are
    // counted as duplicates, not rows); otherwise every probe is sent once.
    let (sent, once) = (merged["probes_sent"].as_u64().unwrap(), u["probes_sent"].as_u64().unwrap());
    assert!(if resumed { sent >= once } else { sent == once }, "probes_sent {sent}, unsharded {once}");
    assert_eq!(merged["complete"], true);
    assert_eq!(merged["shards_present"].as_array().map(Vec::len), Some(SHARDS as usize));
    assert_eq!(merged["vantage_points"].as_array().map(Vec::len), Some(SHARDS as usize));
}

/// The three labs and their hosts: `(name, shard, scanner namespace)`.
fn hosts(labs: &[Lab]) -> Vec<(String, String, String)> {
    labs.iter().enumerate().map(|(i, l)| (format!("h{i}"), i.to_string(), l.info.scanner_ns.clone())).collect()
}

fn as_refs(h: &[(String, String, String)]) -> Vec<(&str, &str, &str)> {
    h.iter().map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str())).collect()
}

#[test]
fn the_playbook_scans_every_shard_merges_them_and_resumes_after_kill_and_stop() {
    if !possible("the_playbook_scans_every_shard_merges_them_and_resumes_after_kill_and_stop") {
        return;
    }
    let labs: Vec<Lab> = (0..SHARDS).map(|_| common::up_small()).collect();
    let dir = common::scratch_dir(&labs[0], "ansible", "fleet");
    let hosts = hosts(&labs);
    let definition = Path::new(LAB_DEFINITION);
    let unsharded = unsharded(&labs[0], definition, &dir);

    // A first run, to the end.
    let first = dir.join("first");
    std::fs::create_dir_all(&first).unwrap();
    let inv = inventory(&first, definition, &lab_dir(&labs[0]), &as_refs(&hosts));
    let t = Instant::now();
    let out = playbook(&inv, "site.yml").output().unwrap();
    assert!(out.status.success(), "site.yml: {}", text(&out));
    eprintln!("site.yml over {SHARDS} local hosts: {:.1} s (scans included)", t.elapsed().as_secs_f64());
    check_merged(&labs[0], &first.join("results"), &unsharded, false);

    // A slow run (the same definition at 50 pps, some 16 s a shard): SIGKILL one shard's scan,
    // stop the others.
    let slow = dir.join("slow");
    std::fs::create_dir_all(&slow).unwrap();
    let slow_def = slow.join("lab-slow.toml");
    let text_def = std::fs::read_to_string(definition).unwrap();
    assert!(text_def.contains("rate = 20000"), "scans/lab.toml changed its rate; update this test");
    std::fs::write(&slow_def, text_def.replace("rate = 20000", "rate = 50")).unwrap();
    let inv = inventory(&slow, &slow_def, &lab_dir(&labs[0]), &as_refs(&hosts));
    let mut running = playbook(&inv, "site.yml").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let sent = |h: usize| -> u64 {
        // The status file's `sent` column (second), last line.
        let s = std::fs::read_to_string(slow.join(format!("h{h}/status.csv"))).unwrap_or_default();
        s.lines().skip(1).last().and_then(|l| l.split(',').nth(1)?.parse().ok()).unwrap_or(0)
    };
    let until = Instant::now() + Duration::from_secs(120);
    while (0..SHARDS as usize).any(|h| sent(h) == 0) {
        assert!(Instant::now() < until, "the shards never started sending");
        assert!(running.try_wait().unwrap().is_none(), "site.yml ended before the shards ran");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid: i32 = std::fs::read_to_string(slow.join("h1/scan.pid")).unwrap().trim().parse().unwrap();
    assert!(Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap().success());
    let out = playbook(&inv, "stop.yml").output().unwrap();
    assert!(out.status.success(), "stop.yml: {}", text(&out));
    for h in [0, 2] {
        let rc = std::fs::read_to_string(slow.join(format!("h{h}/scan.rc"))).unwrap();
        assert_eq!(rc.trim(), "3", "h{h} stopped by SIGINT");
        let meta = common::read_json(&slow.join(format!("h{h}/shard-{h}-of-{SHARDS}.json")));
        assert_eq!((meta["interrupted"].as_bool(), meta["end_reason"].as_str()), (Some(true), Some("signal")));
    }
    assert_eq!(std::fs::read_to_string(slow.join("h1/scan.rc")).unwrap().trim(), "137", "h1 SIGKILLed");
    let out = running.wait_with_output().unwrap();
    let said = text(&out);
    assert!(!out.status.success(), "site.yml merged unfinished shards: {said}");
    assert!(said.contains("h1: shard 1 stopped before finishing (STOPPED exit 137)"), "{said}");
    for h in [0, 2] {
        assert!(said.contains(&format!("h{h}: shard {h} stopped before finishing (STOPPED exit 3)")), "{said}");
    }
    assert!(!slow.join("results/merged.csv").exists());

    // The same playbook again: every shard resumes with its unchanged command.
    let out = playbook(&inv, "site.yml").output().unwrap();
    assert!(out.status.success(), "site.yml, resuming: {}", text(&out));
    for h in 0..SHARDS {
        let meta = common::read_json(&slow.join(format!("h{h}/shard-{h}-of-{SHARDS}.json")));
        assert_eq!(meta["resumed"].as_bool(), Some(true), "h{h} resumed: {meta:#}");
    }
    check_merged(&labs[0], &slow.join("results"), &unsharded, true);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_inventories_stop_before_anything_is_sent_naming_the_host() {
    if !possible("bad_inventories_stop_before_anything_is_sent_naming_the_host") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("mpscan-ansible-bad-{}", std::process::id()));
    let definition = PathBuf::from(LAB_DEFINITION);
    let missing = dir.join("no-such-definition.toml");
    // No lab: nothing may run far enough to need one (the namespaces named do not exist).
    let cases: [(&str, &Path, [(&str, &str, &str); 3], &str); 3] = [
        (
            "duplicate",
            &definition,
            [("a", "0", "x"), ("b", "1", "x"), ("c", "1", "x")],
            "b: shard 1 is also given to c",
        ),
        ("range", &definition, [("a", "0", "x"), ("b", "1", "x"), ("c", "3", "x")], "c: shard 3 is out of range 0-2"),
        ("definition", &missing, [("a", "0", "x"), ("b", "1", "x"), ("c", "2", "x")], "a: scan definition"),
    ];
    for (name, def, hosts, want) in cases {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        let inv = inventory(&d, def, &d, &hosts);
        let out = playbook(&inv, "site.yml").output().unwrap();
        let said = text(&out);
        assert!(!out.status.success(), "{name}: {said}");
        let line = said.lines().find(|l| l.contains(want)).unwrap_or_else(|| panic!("{name}: no {want:?} in {said}"));
        assert!(line.starts_with("fatal: ["), "{name}: {line}");
        assert!(!said.contains("Install the binary"), "{name}: went past the checks: {said}");
        for (host, _, _) in hosts {
            assert!(!d.join(host).exists(), "{name}: {host}'s work directory was made");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
