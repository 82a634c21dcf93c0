//! Shared by the lab integration tests: whether the lab can run here, and a small lab with a
//! unique name.
#![allow(dead_code)] // each test file uses what it needs

use mpscan::lab::topology::random_run_name;
use mpscan::lab::{preflight, Lab, LabOptions, Size};
use std::path::PathBuf;

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
