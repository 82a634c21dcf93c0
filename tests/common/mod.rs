//! Shared by the lab integration tests: whether the lab can run here, and a small lab with a
//! unique name.
#![allow(dead_code)] // each test file uses what it needs

use mpscan::lab::topology::random_run_name;
use mpscan::lab::{preflight, Lab, LabOptions, Size};
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
