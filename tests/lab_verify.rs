//! `mpscan verify` against the lab: scan a small lab (v1 and v0 probes, ports 80 and 443), then
//! verify every row of every class, plus hand-made rows for the silently dropped range (which a
//! scan never reports), and check each range's verdicts against what it stands for:
//!
//! * kernel MPTCP servers: `confirmed`, the HTTP or TLS answer read over MPTCP;
//! * the load balancer: `confirmed`, the C flag from the scan, and the announced direct address
//!   joined by the client's path manager;
//! * SYN proxy, plain TCP, echoing/mirroring boxes, the v0-only server: `fallback` or `no-data`,
//!   never `confirmed`;
//! * closed: `refused`; dropped: `timeout`; ICMP-rejected: `unreachable` or `timeout`;
//! * one MPTCP server behind a router rule that strips MPTCP options from all but SYNs:
//!   `fallback` after the handshake.
//!
//! Needs root and network namespaces: skips without them, fails instead with
//! `MPSCAN_REQUIRE_LAB=1`. The lab is torn down by its guard even when the test fails.

mod common;
use common::lab_possible;
use mpscan::lab::plan::LB_DIRECT_ADDR;
use mpscan::lab::topology::random_run_name;
use mpscan::lab::{Lab, LabOptions, RangeKind, Size};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Output};

const EXE: &str = env!("CARGO_BIN_EXE_mpscan");

type Row = BTreeMap<String, String>;

fn read_rows(path: &std::path::Path) -> Vec<Row> {
    let mut rdr = csv::Reader::from_path(path).expect("CSV written");
    let headers = rdr.headers().unwrap().clone();
    rdr.records()
        .map(|r| headers.iter().zip(r.unwrap().iter()).map(|(h, v)| (h.to_string(), v.to_string())).collect())
        .collect()
}

fn in_scanner(lab: &Lab, args: &[&str]) -> Output {
    let mut all = vec!["netns", "exec", &lab.info.scanner_ns, EXE];
    all.extend_from_slice(args);
    Command::new("ip").args(&all).output().expect("running mpscan in the lab")
}

fn tempdir(run: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mpscan-verify-lab-{run}"));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The lab range an address belongs to.
fn range_of(lab: &Lab, ip: Ipv4Addr) -> &mpscan::lab::LabRange {
    lab.info
        .ranges
        .iter()
        .find(|r| r.prefix.parse::<ipnet::Ipv4Net>().unwrap().contains(&ip))
        .unwrap_or_else(|| panic!("{ip} is in no lab range"))
}

#[test]
fn verify_gives_each_lab_range_its_verdict() {
    if !lab_possible("verify_gives_each_lab_range_its_verdict") {
        return;
    }
    let lab = Lab::up(LabOptions { name: Some(random_run_name()), size: Size::Small, exe: Some(PathBuf::from(EXE)) })
        .expect("lab up");
    // The client's path manager must accept ADD_ADDRs to join the load balancer's announced
    // address (the kernel's default limit is 0).
    let st = Command::new("ip")
        .args(["-n", &lab.info.scanner_ns, "mptcp", "limits", "set", "subflows", "2", "add_addr_accepted", "2"])
        .status()
        .unwrap();
    assert!(st.success(), "ip mptcp limits set");
    // One MPTCP server behind a middlebox that strips MPTCP options from everything but SYNs (the
    // kind that breaks MPTCP after the handshake): the router resets option 30 towards it.
    let mptcp_range = lab.info.ranges.iter().find(|r| r.kind == RangeKind::KernelMptcp).unwrap();
    let stripped: Ipv4Addr = mptcp_range.prefix.parse::<ipnet::Ipv4Net>().unwrap().hosts().nth(4).unwrap();
    let mut nft = Command::new("ip")
        .args(["netns", "exec", &lab.info.router_ns, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    write!(
        nft.stdin.take().unwrap(),
        "table inet vfystrip {{\n chain f {{\n  type filter hook forward priority 0;\n  \
         ip daddr {stripped} tcp flags & syn == 0 reset tcp option mptcp\n }}\n}}\n"
    )
    .unwrap();
    assert!(nft.wait().unwrap().success(), "nft rule stripping MPTCP options");

    let dir = tempdir(&lab.info.run);
    let (scan_csv, verify_csv) = (dir.join("scan.csv"), dir.join("verified.csv"));
    let targets = format!("@{}", lab.info.targets.display());
    let blocklist = lab.info.blocklist.display().to_string();
    let gw = lab.info.gateway_mac.to_string();
    let out = in_scanner(
        &lab,
        &[
            "scan",
            "-i",
            "v-rtr",
            "-S",
            "192.0.2.2",
            "-G",
            &gw,
            "-p",
            "80,443",
            "--mptcp-version",
            "both",
            "-r",
            "20000",
            "-b",
            &blocklist,
            "-q",
            "-o",
            scan_csv.to_str().unwrap(),
            &targets,
        ],
    );
    assert!(out.status.success(), "mpscan scan failed: {}", String::from_utf8_lossy(&out.stderr));

    // The dropped range never answers a scan; give verify two of its addresses by hand.
    let dropped = lab.info.ranges.iter().find(|r| r.kind == RangeKind::Dropped).expect("a dropped range");
    let dropped_net: ipnet::Ipv4Net = dropped.prefix.parse().unwrap();
    let drop_ips: Vec<Ipv4Addr> = dropped_net.hosts().take(2).collect();
    let mut text = std::fs::read_to_string(&scan_csv).unwrap();
    for (ip, port) in [(drop_ips[0], 443), (drop_ips[1], 80)] {
        text.push_str(&format!("{ip},{port},v1,tcp,{ip},,,,,false,false,64,0,2024-01-01T00:00:00.000000Z,\n"));
    }
    let input = dir.join("scan-plus-dropped.csv");
    std::fs::write(&input, text).unwrap();
    let scan_rows = read_rows(&input);

    let out = in_scanner(
        &lab,
        &[
            "verify",
            input.to_str().unwrap(),
            "--classes",
            "all",
            "--timeout",
            "2",
            "--rate",
            "0",
            "--concurrency",
            "300",
            "--add-addr-wait",
            "3000",
            "-o",
            verify_csv.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "mpscan verify failed: {stderr}");
    assert!(stderr.contains("Linux speaks MPTCP v1 only; v0-only servers show as fallback"), "{stderr}");
    assert!(!stderr.contains("accepts no ADD_ADDR"), "limits were set: {stderr}");
    let v0_servers = scan_rows.iter().filter(|r| r["class"] == "mptcp" && r["mptcp_version"] == "0").count();
    assert!(v0_servers > 0);
    assert!(stderr.contains(&format!("({v0_servers} mptcp rows had a v0 MP_CAPABLE")), "{stderr}");
    let rows = read_rows(&verify_csv);
    assert_eq!(rows.len(), scan_rows.len(), "one verified row per scan row");
    // Same (ip, port, probe) keys, in the same order.
    let key = |r: &Row| (r["ip"].clone(), r["port"].clone(), r["probe"].clone(), r["class"].clone());
    assert_eq!(rows.iter().map(key).collect::<Vec<_>>(), scan_rows.iter().map(key).collect::<Vec<_>>());

    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &rows {
        let ip: Ipv4Addr = r["ip"].parse().unwrap();
        let range = range_of(&lab, ip);
        let v = r["verdict"].as_str();
        seen.entry(range.name.clone()).or_default().insert(v.to_string());
        let app = if r["port"] == "80" { "http" } else { "tls" };
        assert_eq!(r["app"], app, "{r:?}");
        match range.kind {
            _ if ip == stripped => {
                // MP_CAPABLE in the SYN-ACK, then data without MPTCP options: the kernel falls back.
                assert_eq!((v, r["fallback_reason"].as_str()), ("fallback", "after-handshake"), "{r:?}");
                assert_eq!(r["mptcp"], "false", "{r:?}");
            }
            RangeKind::KernelMptcp | RangeKind::LoadBalancedMptcp => {
                assert_eq!(v, "confirmed", "{r:?}");
                assert_eq!(r["mptcp"], "true", "{r:?}");
                assert_eq!(r["app_ok"], "true", "the {app} answer came over MPTCP: {r:?}");
                assert_eq!(r["remote_key"], "true", "{r:?}");
                assert_eq!(r["checksum"], "false", "{r:?}");
                assert!(!r["ttfb_ms"].is_empty(), "{r:?}");
                if range.kind == RangeKind::LoadBalancedMptcp {
                    assert_eq!(r["add_addr"], LB_DIRECT_ADDR.to_string(), "announced address joined: {r:?}");
                    // Issue 16: the path manager's event shows the announcement on every
                    // connection, joined, with the time it came.
                    assert_eq!(r["announced"], format!("{LB_DIRECT_ADDR}:{}", r["port"]), "{r:?}");
                    assert_eq!(r["announced_joined"], "yes", "{r:?}");
                    let ms: f64 = r["announced_ms"].parse().unwrap_or_else(|_| panic!("announced_ms: {r:?}"));
                    assert!(ms > 0.0 && ms < 10_000.0, "{r:?}");
                    assert_eq!(r["subflows"], "2", "{r:?}");
                    if r["probe"] == "v1" {
                        assert_eq!(r["c_flag"], "true", "C flag from the scan: {r:?}");
                    }
                } else {
                    assert_eq!(r["add_addr"], "", "{r:?}");
                    assert_eq!((r["announced"].as_str(), r["announced_joined"].as_str()), ("", ""), "{r:?}");
                    assert_eq!(r["subflows"], "1", "{r:?}");
                    if r["probe"] == "v1" {
                        assert_eq!(r["c_flag"], "false", "{r:?}");
                    }
                }
            }
            RangeKind::Synproxy | RangeKind::KernelTcp => {
                // The proxy strips MP_CAPABLE: plain TCP, but the server behind it answers.
                assert_eq!((v, r["fallback_reason"].as_str()), ("fallback", "handshake"), "{r:?}");
                assert_eq!(r["mptcp"], "false", "{r:?}");
                assert_eq!(r["app_ok"], "true", "{r:?}");
            }
            RangeKind::Echo | RangeKind::Mirror | RangeKind::V0Server | RangeKind::NoAlgorithm => {
                assert!(v == "fallback" || v == "no-data", "never confirmed: {r:?}");
                assert_ne!(r["mptcp"], "true", "{r:?}");
            }
            RangeKind::Closed => assert_eq!(v, "refused", "{r:?}"),
            RangeKind::Dropped => {
                assert_eq!(v, "timeout", "{r:?}");
                assert_eq!(r["error"], "no answer within the timeout", "{r:?}");
            }
            RangeKind::IcmpRejected | RangeKind::RoutingLoop => assert!(v == "unreachable" || v == "timeout", "{r:?}"),
        }
    }
    // Every range was verified (the dropped one through the hand-made rows).
    for r in &lab.info.ranges {
        assert!(seen.contains_key(&r.name), "no verified row for range {}: {seen:?}", r.name);
    }
    // The v0-only server's rows: its v0 MP_CAPABLE was seen by the scan, Linux cannot speak it.
    let v0_range = lab.info.ranges.iter().find(|r| r.kind == RangeKind::V0Server).unwrap();
    assert!(seen[&v0_range.name].contains("fallback"), "{seen:?}");

    // The scan's summary takes the verified CSV: confirmed counts beside the SYN-ACK classes.
    let out = Command::new(env!("CARGO_BIN_EXE_mpscan"))
        .args(["summary", scan_csv.to_str().unwrap(), "--verified", verify_csv.to_str().unwrap(), "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "mpscan summary --verified: {}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tables = doc.as_array().or_else(|| doc["tables"].as_array()).expect("a list of tables");
    let vt = tables
        .iter()
        .find(|t| t["title"].as_str().is_some_and(|s| s.starts_with("Verification")))
        .unwrap_or_else(|| panic!("no verification table in {doc}"));
    let vrows = vt["rows"].as_array().unwrap();
    let want = |probe: &str, class: &str, verdict: &str| {
        rows.iter().filter(|r| r["probe"] == probe && r["class"] == class && r["verdict"] == verdict).count() as u64
    };
    let mut confirmed_total = 0;
    for vr in vrows {
        let (p, c) = (vr["probe"].as_str().unwrap(), vr["class"].as_str().unwrap());
        let confirmed = vr["confirmed"].as_u64().unwrap();
        assert_eq!(confirmed, want(p, c, "confirmed"), "{vr}");
        assert_eq!(vr["fallback"].as_u64().unwrap(), want(p, c, "fallback"), "{vr}");
        let in_scan = scan_rows.iter().filter(|r| r["probe"] == p && r["class"] == c).count() as u64;
        if c != "tcp" {
            assert_eq!(vr["in scan"].as_u64(), Some(in_scan), "{vr}");
        }
        confirmed_total += confirmed;
    }
    assert!(confirmed_total > 0, "{vt}");
    assert_eq!(confirmed_total, rows.iter().filter(|r| r["verdict"] == "confirmed").count() as u64, "{vt}");
}

#[test]
fn verify_without_add_addr_limits_says_announced_addresses_are_unseen() {
    if !lab_possible("verify_without_add_addr_limits_says_announced_addresses_are_unseen") {
        return;
    }
    let lab = Lab::up(LabOptions { name: Some(random_run_name()), size: Size::Small, exe: Some(PathBuf::from(EXE)) })
        .expect("lab up");
    let lb = lab.info.ranges.iter().find(|r| r.kind == RangeKind::LoadBalancedMptcp).unwrap();
    let ip = lb.prefix.parse::<ipnet::Ipv4Net>().unwrap().hosts().next().unwrap();
    let dir = tempdir(&lab.info.run);
    let (input, output) = (dir.join("lb.csv"), dir.join("lb-verified.csv"));
    std::fs::write(&input, format!("ip,port,probe,class,mpc_flags,mptcp_version\n{ip},443,v1,mptcp,0x21,1\n")).unwrap();
    let out = in_scanner(&lab, &["verify", input.to_str().unwrap(), "--timeout", "2", "-o", output.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("accepts no ADD_ADDR"), "{stderr}");
    let rows = read_rows(&output);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["verdict"], "confirmed", "{:?}", rows[0]);
    assert_eq!(rows[0]["c_flag"], "true");
    assert_eq!(rows[0]["add_addr"], "", "the kernel joins nothing with add_addr_accepted 0");
    // Issue 16: the announcement still shows, from the path manager's event, not joined.
    assert_eq!(rows[0]["announced"], format!("{LB_DIRECT_ADDR}:443"), "{:?}", rows[0]);
    assert_eq!(rows[0]["announced_joined"], "no", "{:?}", rows[0]);
    assert!(!rows[0]["announced_ms"].is_empty(), "{:?}", rows[0]);
    assert!(stderr.contains("ADD_ADDR (path-manager events): 1 rows received an announcement, 0 joined"), "{stderr}");
}
