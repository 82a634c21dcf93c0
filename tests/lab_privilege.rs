//! Least privilege (README, "Running without root"): a scan needs CAP_NET_RAW and nothing else.
//!
//! * An ordinary user (uid 65534) runs a copy of the binary given `cap_net_raw+ep` with
//!   `setcap`, and its scan of the lab matches the ground truth, writing files the user owns.
//! * The same user with a copy that lacks the capability gets one line saying what to run.
//! * A scan started as root keeps only CAP_NET_RAW in every thread once its sockets are open
//!   (read from `/proc/PID/task/*/status` while it runs), and still writes its metadata.
//!
//! Needs root, network namespaces and `setcap` (libcap2-bin, installed by scripts/install-deps):
//! skips without them, fails instead with `MPSCAN_REQUIRE_LAB=1`. The lab has a unique name and
//! is torn down by its guard even when the test fails; the copies live in the test's own
//! scratch directory.

mod common;
use common::{check_rows, lab_possible, read_rows};
use mpscan::lab::{GroundTruth, Lab};
use mpscan::probe::ProbeVersion;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_mpscan");
/// The user the unprivileged scans run as (`nobody` on Debian).
const NOBODY: &str = "65534";
/// CAP_NET_RAW's bit in a `/proc/PID/status` capability mask.
const NET_RAW: u64 = 1 << 13;

/// `ip netns exec SCANNER [setpriv --reuid 65534 ...] EXE scan ...` over the lab's IPv4 and
/// IPv6 targets on ports 80 and 443, writing `NAME.csv` and `NAME.json` into `dir`.
fn scan_cmd(lab: &Lab, exe: &Path, as_nobody: bool, dir: &Path, name: &str, rate: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &lab.info.scanner_ns]);
    if as_nobody {
        c.args(["setpriv", "--reuid", NOBODY, "--regid", NOBODY, "--clear-groups", "--inh-caps=-all"]);
    }
    c.arg(exe).args(["scan", "-p", "80,443", "-e", "5", "-r", rate, "-c", "1", "-q"]);
    c.args(["-b", lab.info.blocklist.to_str().unwrap()]);
    c.args(["-o", dir.join(format!("{name}.csv")).to_str().unwrap()]);
    c.args(["-m", dir.join(format!("{name}.json")).to_str().unwrap()]);
    c.arg(format!("@{}", lab.info.targets.display()));
    c.arg(format!("@{}", lab.info.targets6.as_ref().expect("the lab has IPv6 ranges").display()));
    c
}

/// A copy of the test's mpscan in `dir`, readable and runnable by everyone, with `caps` set on
/// it by setcap (none: a plain copy).
fn copy_binary(dir: &Path, name: &str, caps: Option<&str>) -> PathBuf {
    let p = dir.join(name);
    std::fs::copy(EXE, &p).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    if let Some(caps) = caps {
        let out = Command::new("setcap").args([caps, p.to_str().unwrap()]).output().expect("setcap (libcap2-bin)");
        assert!(out.status.success(), "setcap: {}", String::from_utf8_lossy(&out.stderr));
    }
    p
}

/// The rows of scan `name` match the lab's ground truth (both families, ports 80 and 443, v1).
fn check_scan(lab: &Lab, dir: &Path, name: &str, out: &Output) {
    assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    let truth = GroundTruth::load(Path::new(&lab.info.ground_truth)).unwrap();
    let rows = read_rows(&dir.join(format!("{name}.csv")));
    let n = check_rows(&truth, &rows, &[ProbeVersion::V1], &[80, 443]);
    assert!(rows.iter().any(|r| r["class"] == "mptcp") && rows.iter().any(|r| r["ip"].contains(':')));
    let meta = common::read_json(&dir.join(format!("{name}.json")));
    assert_eq!(meta["rows"].as_u64(), Some(n as u64), "{name}: metadata rows");
}

/// Every thread's `Cap*` masks and `NoNewPrivs` flag of process `pid`.
fn thread_caps(pid: u32) -> Vec<(u64, u64, u64, u64, bool)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let field = |s: &str, name: &str| -> Option<String> {
        s.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string())
    };
    let mask = |s: &str, name: &str| u64::from_str_radix(&field(s, name).unwrap_or_default(), 16).unwrap_or(u64::MAX);
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("status")).ok())
        .map(|s| {
            let nnp = field(&s, "NoNewPrivs:").as_deref() == Some("1");
            (mask(&s, "CapPrm:"), mask(&s, "CapEff:"), mask(&s, "CapInh:"), mask(&s, "CapBnd:"), nnp)
        })
        .collect()
}

#[test]
fn an_ordinary_user_scans_with_the_capability_and_root_keeps_only_it() {
    if !lab_possible("an_ordinary_user_scans_with_the_capability_and_root_keeps_only_it") {
        return;
    }
    let lab = common::up_small();
    let dir = common::scratch_dir(&lab, "privilege", "run");
    // The user must reach its copies and write its results here.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut parent = dir.parent();
    while let Some(p) = parent {
        assert!(std::fs::metadata(p).unwrap().permissions().mode() & 0o001 != 0, "{} not searchable", p.display());
        parent = p.parent();
    }

    // An ordinary user with the capability on a copy of the binary.
    let with_cap = copy_binary(&dir, "mpscan-cap", Some("cap_net_raw+ep"));
    let out = scan_cmd(&lab, &with_cap, true, &dir, "user", "20000").output().unwrap();
    check_scan(&lab, &dir, "user", &out);
    assert!(out.stderr.is_empty(), "quiet scan said: {}", String::from_utf8_lossy(&out.stderr));
    {
        use std::os::unix::fs::MetadataExt;
        for f in ["user.csv", "user.json"] {
            assert_eq!(std::fs::metadata(dir.join(f)).unwrap().uid(), 65534, "{f} is the user's");
        }
    }

    // The same user without the capability: one line that says what to run, and no packet.
    let plain = copy_binary(&dir, "mpscan-plain", None);
    let out = scan_cmd(&lab, &plain, true, &dir, "refused", "20000").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(&format!("setcap cap_net_raw+ep {}", plain.display())), "{err}");
    assert!(!dir.join("refused.csv").exists(), "refused before any output");

    // Root: once the sockets are open, every thread keeps CAP_NET_RAW and nothing else. Slow
    // enough (lab targets at 200 pps) to be watched while it runs.
    let mut child = scan_cmd(&lab, Path::new(EXE), false, &dir, "root", "200")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut seen = Vec::new();
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until && child.try_wait().unwrap().is_none() {
        let now = thread_caps(pid);
        // `ip netns exec` becomes mpscan by exec; wait until mpscan runs its threads.
        if now.len() > 1 {
            seen = now;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(seen.len() > 1, "never saw the root scan's threads (pid {pid})");
    for (prm, eff, inh, bnd, nnp) in &seen {
        assert_eq!((*prm, *eff, *inh, *bnd, *nnp), (NET_RAW, NET_RAW, 0, NET_RAW, true), "a thread of {seen:x?}");
    }
    check_scan(&lab, &dir, "root", &out);
    let _ = std::fs::remove_dir_all(&dir);
}
