//! Wireshark's MPTCP dissector, an independent implementation, must read our probes as we mean
//! them: captured on the wire in the lab (on the router, so what is checked is what arrived),
//! every SYN must decode as MP_CAPABLE of the intended version (v0 with a key, a different key
//! per probe; v1 without one), with correct IP and TCP checksums and the Linux-like options.
//!
//! Needs root, namespaces, tcpdump and tshark: skips without them, fails instead with
//! `MPSCAN_REQUIRE_LAB=1`.

use mpscan::lab::topology::random_run_name;
use mpscan::lab::{preflight, Lab, LabOptions, Size};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

const EXE: &str = env!("CARGO_BIN_EXE_mpscan");

fn possible(test: &str) -> bool {
    let tools = ["tcpdump", "tshark"]
        .iter()
        .all(|t| Command::new(t).arg("--version").output().is_ok_and(|o| o.status.success()));
    let why = match preflight() {
        Err(e) => Some(format!("{e:#}")),
        Ok(()) if !tools => Some("tcpdump and tshark are needed (scripts/install-deps installs them)".into()),
        Ok(()) => None,
    };
    match why {
        None => true,
        Some(w) if std::env::var("MPSCAN_REQUIRE_LAB").as_deref() == Ok("1") => {
            panic!("{test}: required but cannot run: {w}")
        }
        Some(w) => {
            eprintln!("SKIPPED {test}: {w}");
            false
        }
    }
}

#[test]
fn tshark_decodes_captured_probes_as_intended() {
    if !possible("tshark_decodes_captured_probes_as_intended") {
        return;
    }
    let lab = Lab::up(LabOptions { name: Some(random_run_name()), size: Size::Small, exe: Some(PathBuf::from(EXE)) })
        .unwrap();
    let pcap = std::env::temp_dir().join(format!("mpscan-probes-{}.pcap", lab.info.run));
    let src = lab.info.source_ip.to_string();
    let filter = format!("src host {src} and tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn");
    let mut dump = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.info.router_ns,
            "tcpdump",
            // The router's link to the scanner only: the routing-loop range's probes pass the
            // router's other links again and again.
            "-i",
            "v-scan",
            "-Q",
            "in",
            "-U",
            "-n",
            "-w",
            pcap.to_str().unwrap(),
            &filter,
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump");
    // Wait until tcpdump listens.
    let mut err = BufReader::new(dump.stderr.take().unwrap());
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 && !line.contains("listening on") {
        line.clear();
    }
    let targets = format!("@{}", lab.info.targets.display());
    let blocklist = lab.info.blocklist.display().to_string();
    let status = Command::new("ip")
        .args(["netns", "exec", &lab.info.scanner_ns, EXE, "scan", "-p", "443", "--mptcp-version", "both", "-n", "20"])
        .args(["-e", "3", "-c", "1", "-q", "-b", &blocklist, "-o", "/dev/null", &targets])
        .status()
        .unwrap();
    assert!(status.success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Stop only the tcpdump this test started, by its PID (through `ip netns exec`, which execs it).
    unsafe_free_kill(dump.id());
    let _ = dump.wait();

    let out = Command::new("tshark")
        .args([
            "-r",
            pcap.to_str().unwrap(),
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "ip.check_checksum:TRUE",
            "-T",
            "fields",
            "-E",
            "separator=|",
        ])
        .args(["-e", "tcp.options.mptcp.subtype", "-e", "tcp.options.mptcp.version", "-e", "tcp.options.mptcp.sendkey"])
        .args([
            "-e",
            "tcp.checksum.status",
            "-e",
            "ip.checksum.status",
            "-e",
            "tcp.options.mss_val",
            "-e",
            "tcp.options.wscale.shift",
        ])
        .args([
            "-e",
            "tcp.options.sack_perm",
            "-e",
            "tcp.options.timestamp.tsval",
            "-e",
            "tcp.options.mptcp.sha256.flag",
        ])
        .output()
        .expect("tshark");
    let text = String::from_utf8_lossy(&out.stdout);
    let _ = std::fs::remove_file(&pcap);
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('|').collect()).collect();
    assert_eq!(lines.len(), 40, "20 targets x 2 versions captured, got:\n{text}");
    let mut keys = BTreeSet::new();
    let mut versions = [0; 2];
    for f in &lines {
        assert_eq!(f[0], "0", "MP_CAPABLE subtype: {f:?}");
        assert_eq!(f[3], "1", "TCP checksum good (1 = Good): {f:?}");
        assert_eq!(f[4], "1", "IP checksum good: {f:?}");
        assert_eq!(f[5], "1460", "MSS: {f:?}");
        assert_eq!(f[6], "7", "window scale: {f:?}");
        assert!(!f[7].is_empty() && !f[8].is_empty(), "SACK-permitted and timestamps: {f:?}");
        match f[1] {
            "1" => {
                versions[1] += 1;
                assert!(f[2].is_empty(), "a v1 SYN carries no key: {f:?}");
                assert_eq!(f[9], "1", "v1 probes ask for HMAC-SHA256: {f:?}");
            }
            "0" => {
                versions[0] += 1;
                assert!(!f[2].is_empty(), "a v0 SYN carries the sender's key: {f:?}");
                assert!(keys.insert(f[2].to_string()), "v0 keys differ per probe: {f:?}");
            }
            v => panic!("unexpected MP_CAPABLE version {v}: {f:?}"),
        }
    }
    assert_eq!(versions, [20, 20]);
}

/// Sends SIGTERM to `pid` with the `kill` command (no libc in tests).
fn unsafe_free_kill(pid: u32) {
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
}
