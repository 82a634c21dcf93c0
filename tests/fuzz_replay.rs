//! Every committed fuzz input (fuzz/seeds/, and the interesting inputs the fuzzer found,
//! fuzz/regressions/) goes through the same receive path the fuzz targets run
//! (`fuzz/src/harness.rs`, included here), and comes out as its file name says
//! (`CLASS--what` or `rejected--what`). Needs no root: nothing is sent or received.

#[allow(dead_code)]
#[path = "../fuzz/src/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

/// The files of `fuzz/<dir>/<target>/`, sorted.
fn inputs(dir: &str, target: &str) -> Vec<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(dir).join(target);
    let mut v: Vec<PathBuf> = match std::fs::read_dir(&d) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

#[test]
fn fuzz_seeds_and_regressions_replay() {
    let ctx = harness::context();
    let mut n = 0;
    for dir in ["seeds", "regressions"] {
        for target in ["frame", "syn_ack"] {
            for path in inputs(dir, target) {
                let data = std::fs::read(&path).unwrap();
                let name = path.file_name().unwrap().to_string_lossy().to_string();
                let expected = name.split("--").next().unwrap();
                let outcome = match target {
                    "frame" => harness::frame(&ctx, &data),
                    _ => match harness::structured(&ctx, &data) {
                        Some(o) => o,
                        None => harness::Outcome::Rejected("not-a-recipe"),
                    },
                };
                let got = match &outcome {
                    harness::Outcome::Rejected(_) => "rejected",
                    harness::Outcome::Row(c, _) => c.label(),
                };
                assert_eq!(got, expected, "{}: {outcome:?}", path.display());
                n += 1;
            }
        }
    }
    // The seeds are committed: an empty walk means the files went missing, not a pass.
    assert!(n >= 32, "only {n} fuzz inputs found under fuzz/seeds and fuzz/regressions");
}
