//! Integration tests of the lab itself: bringing labs up and down (also in parallel, also after
//! crashes), isolation, the kernel MPTCP servers, and what every range answers to the
//! project's own v0 and v1 probes compared with the ground truth.
//!
//! They need root and network namespaces. Without them they skip with a message, unless
//! `MPSCAN_REQUIRE_LAB=1` (set by `.ci/run`), which makes a missing capability a failure.
//! Every lab has a unique name and is torn down by its `Lab` guard, even when a test fails.

mod common;
use common::lab_possible;
use mpscan::keyed_hash::Validator;
use mpscan::lab::connect::Outcome;
use mpscan::lab::state::{LabState, ProcRef};
use mpscan::lab::topology::random_run_name;
use mpscan::lab::{down, Class, GroundTruth, Lab, LabOptions, Size};
use mpscan::net::{pcap::PcapWriter, Transmit};
use mpscan::probe::{options_of, ProbeVersion, SynOption};
use mpscan::wire::{icmp, ipv4, EthernetFrame, IcmpPacket, Ipv4Packet, MpCapable, TcpOption, TcpPacket};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const EXE: &str = env!("CARGO_BIN_EXE_mpscan");

fn opts(name: &str) -> LabOptions {
    LabOptions { name: Some(name.to_string()), size: Size::Small, exe: Some(PathBuf::from(EXE)) }
}

fn up() -> Lab {
    Lab::up(opts(&random_run_name())).expect("lab up")
}

fn mpscan(args: &[&str]) -> (bool, String) {
    let out = Command::new(EXE).args(args).output().expect("running mpscan");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn ns_exists(n: &str) -> bool {
    Path::new("/run/netns").join(n).exists()
}

fn assert_gone(run: &str, namespaces: &[String], procs: &[ProcRef]) {
    for n in namespaces {
        assert!(!ns_exists(n), "namespace {n} still exists");
    }
    for p in procs {
        assert!(!p.alive(), "process {} still runs", p.pid);
    }
    assert!(!Path::new("/run/mpscan-lab").join(run).exists(), "state of {run} left behind");
}

#[test]
fn up_status_down() {
    if !lab_possible("up_status_down") {
        return;
    }
    let lab = up();
    let info = lab.info.clone();
    assert_eq!(info.namespaces.len(), 12);
    for n in &info.namespaces {
        assert!(ns_exists(n), "{n}");
        assert!(n.starts_with(&format!("mps-{}-", info.run)));
    }
    let procs: Vec<ProcRef> = lab.processes().iter().map(|p| p.proc).collect();
    assert_eq!(procs.len(), 8, "{:?}", lab.processes());
    assert!(procs.iter().all(|p| p.alive()));
    let gt = lab.ground_truth().unwrap();
    assert_eq!(gt.run, info.run);
    assert_eq!(gt.ranges.len(), info.ranges.len());
    let targets = std::fs::read_to_string(&info.targets).unwrap();
    for r in &info.ranges {
        assert!(targets.contains(&r.prefix), "{} missing from the targets file", r.prefix);
    }
    let (ok, text) = mpscan(&["lab", "status", "--name", &info.run]);
    assert!(ok, "{text}");
    assert!(text.contains("complete") && text.contains("held by pid"), "{text}");
    for bad in ["DEAD", "MISSING", "NOT ISOLATED", "STALE"] {
        assert!(!text.contains(bad), "{bad} in status:\n{text}");
    }
    lab.down().unwrap();
    assert_gone(&info.run, &info.namespaces, &procs);
    let (ok, text) = mpscan(&["lab", "down", "--name", &info.run]);
    assert!(ok && text.contains("was not up"), "{text}");
}

#[test]
fn parallel_labs_and_idempotent_up() {
    if !lab_possible("parallel_labs_and_idempotent_up") {
        return;
    }
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(up);
        let b = s.spawn(up);
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_ne!(a.info.run, b.info.run);
    let old: Vec<ProcRef> = a.processes().iter().map(|p| p.proc).collect();
    let run_a = a.info.run.clone();
    // Bringing up a lab of the same name replaces it (the old handle must not tear down the
    // new lab: forget it).
    std::mem::forget(a);
    let a2 = Lab::up(opts(&run_a)).expect("second up of the same name");
    assert!(old.iter().all(|p| !p.alive()), "the first lab's processes survived");
    for lab in [&a2, &b] {
        lab.info.isolation().unwrap();
        let to = SocketAddrV4::new("198.18.0.9".parse().unwrap(), 443);
        let got = lab.info.connect_from_scanner(lab.exe(), &[to], true, 3000).unwrap();
        assert_eq!(got[0].1, Outcome::Mptcp, "lab {}", lab.info.run);
    }
    let b_ns = b.info.namespaces.clone();
    drop(b);
    for n in &b_ns {
        assert!(!ns_exists(n), "{n}");
    }
    assert!(a2.info.namespaces.iter().all(|n| ns_exists(n)), "dropping one lab touched the other");
}

#[test]
fn cleanup_after_responders_are_killed() {
    if !lab_possible("cleanup_after_responders_are_killed") {
        return;
    }
    let lab = up();
    let info = lab.info.clone();
    let procs: Vec<ProcRef> = lab.processes().iter().map(|p| p.proc).collect();
    for p in &procs {
        assert!(p.kill());
    }
    // `up` of the same name over the broken lab works...
    let lab2 = Lab::up(opts(&info.run)).expect("up over a broken lab");
    std::mem::forget(lab);
    let procs2: Vec<ProcRef> = lab2.processes().iter().map(|p| p.proc).collect();
    // ...and `down` after the new one's responders die removes everything.
    for p in &procs2 {
        assert!(p.kill());
    }
    lab2.down().unwrap();
    assert_gone(&info.run, &info.namespaces, &procs2);
}

#[test]
fn cleanup_after_up_process_dies() {
    if !lab_possible("cleanup_after_up_process_dies") {
        return;
    }
    let run = random_run_name();
    let mut child = Command::new(EXE)
        .args(["lab", "up", "--name", &run, "--size", "small", "--hold"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the lab to be up: `up` prints its description, whose last line is the command.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            panic!("lab up --hold ended early:\n{text}");
        }
        text.push_str(&line);
        if line.contains("scan -i") {
            break;
        }
    }
    let st = LabState::load(&run).unwrap().expect("state of a held lab");
    assert!(st.complete && st.owner.is_some_and(|o| o.pid == child.id()), "{st:?}");
    assert!(!st.is_stale());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(st.is_stale(), "the owner died: the lab is stale");
    let procs: Vec<ProcRef> = st.processes.iter().map(|p| p.proc).collect();
    // Responders outlive their owner until reaped; a concurrent test's `up` may be reaping this
    // stale lab right now (it removes stale labs), so a dead responder must mean the lab goes.
    if !procs.iter().all(|p| p.alive()) {
        let reaped = (0..100).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            LabState::load(&run).unwrap().is_none()
        });
        assert!(reaped, "a responder died while its stale lab was not being reaped");
    }
    // Another test's `up` may reap it first (any `up` removes stale labs); either way it goes.
    let (ok, text) = mpscan(&["lab", "down", "--all-stale"]);
    assert!(ok, "{text}");
    assert_gone(&run, &st.namespaces, &procs);
}

#[test]
fn lab_is_isolated() {
    if !lab_possible("lab_is_isolated") {
        return;
    }
    let lab = up();
    let checks = lab.info.isolation().expect("isolated");
    assert!(checks.len() >= 3, "{checks:?}");
    // An address of the reserved ranges that no population holds: nothing answers (the
    // router has no route for it and no default route).
    let outside: Ipv4Addr = "198.19.200.1".parse().unwrap();
    let got = lab.info.connect_from_scanner(lab.exe(), &[SocketAddrV4::new(outside, 80)], false, 1500).unwrap();
    assert!(matches!(got[0].1, Outcome::Timeout | Outcome::Unreachable(_)), "{:?}", got[0].1);
    let rtr =
        Command::new("ip").args(["-n", &lab.info.router_ns, "route", "get", &outside.to_string()]).output().unwrap();
    assert!(!rtr.status.success(), "the router has a route out: {}", String::from_utf8_lossy(&rtr.stdout));
    assert!(String::from_utf8_lossy(&rtr.stderr).contains("unreachable"));
    for ns in [&lab.info.scanner_ns, &lab.info.router_ns] {
        let r = Command::new("ip").args(["-n", ns, "route", "show", "default"]).output().unwrap();
        let text = String::from_utf8_lossy(&r.stdout).to_string();
        if ns == &lab.info.router_ns {
            assert!(text.trim().is_empty(), "router default route: {text}");
        } else {
            assert!(text.contains("via 192.0.2.1 dev v-rtr"), "scanner default route: {text}");
        }
    }
}

#[test]
fn kernel_mptcp_servers_are_mptcp() {
    if !lab_possible("kernel_mptcp_servers_are_mptcp") {
        return;
    }
    let lab = up();
    let t = |a: &str, p: u16| SocketAddrV4::new(a.parse().unwrap(), p);
    let cases = [
        (t("198.18.0.1", 80), "mptcp"),
        (t("198.18.0.126", 443), "mptcp"),
        (t("203.0.113.140", 443), "mptcp"),
        (t("203.0.113.3", 443), "tcp"),
        (t("198.19.1.5", 80), "tcp"),
        (t("198.18.0.5", 22), "refused"),
        (t("198.19.2.5", 443), "refused"),
    ];
    let targets: Vec<_> = cases.iter().map(|c| c.0).collect();
    let got = lab.info.connect_from_scanner(lab.exe(), &targets, true, 3000).unwrap();
    for ((to, o), (_, want)) in got.iter().zip(&cases) {
        assert_eq!(o.label(), *want, "{to}: {o:?}");
    }
}

/// A response to one probe, read with the wire layer.
#[derive(Debug)]
struct Answer {
    class: Class,
    responder: Ipv4Addr,
    mpc: Option<MpCapable>,
    options: Vec<u8>,
    /// `icmp-TYPE-CODE` for an ICMP answer, as the CSV's detail column says it.
    icmp: Option<String>,
}

/// Sends `version` probes to `targets` from the scanner namespace (`lab probe`) and reads the
/// answers, keyed by (target, port).
fn probe(lab: &Lab, version: ProbeVersion, targets: &[SocketAddrV4]) -> (BTreeMap<SocketAddrV4, Answer>, Vec<Vec<u8>>) {
    let v = version.label();
    let mut args = vec!["lab", "probe", "--gateway-mac", &lab.info.gateway_mac, "--version", v, "--seed", "7"];
    args.extend(["--wait-ms", "1500"]);
    let ts: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
    args.extend(ts.iter().map(String::as_str));
    let out = lab.info.exec_in_scanner(lab.exe(), &args).unwrap();
    let validator = Validator::from_seed(7);
    let mut answers = BTreeMap::new();
    let mut frames = Vec::new();
    for line in out.lines() {
        let bytes: Vec<u8> =
            (0..line.len() / 2).map(|i| u8::from_str_radix(&line[2 * i..2 * i + 2], 16).unwrap()).collect();
        frames.push(bytes.clone());
        let eth = EthernetFrame::new_checked(&bytes[..]).unwrap();
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        let responder = ip.src_addr();
        if ip.protocol() == ipv4::protocol::ICMP {
            let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
            // Admin-prohibited from the firewall, time exceeded from the routing loop.
            assert!([icmp::V4_DEST_UNREACHABLE, icmp::V4_TIME_EXCEEDED].contains(&icmp.msg_type()), "{line}");
            let q = Ipv4Packet::new_quoted(icmp.payload()).unwrap();
            let port = u16::from_be_bytes([q.payload()[2], q.payload()[3]]);
            let key = SocketAddrV4::new(q.dst_addr(), port);
            let detail = Some(format!("icmp-{}-{}", icmp.msg_type(), icmp.code()));
            answers
                .insert(key, Answer { class: Class::Unreachable, responder, mpc: None, options: vec![], icmp: detail });
            continue;
        }
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum_v4(ip.src_addr(), ip.dst_addr()), "bad checksum from {responder}");
        let key = SocketAddrV4::new(responder, tcp.src_port());
        let tag = validator.tag(IpAddr::V4(lab.info.source_ip), IpAddr::V4(responder), tcp.src_port(), version);
        // A late answer to the previous round's probe (the other version, same source port: a
        // retransmitted SYN-ACK) is not an answer to this round's.
        let other = if version == ProbeVersion::V1 { ProbeVersion::V0 } else { ProbeVersion::V1 };
        let other_tag = validator.tag(IpAddr::V4(lab.info.source_ip), IpAddr::V4(responder), tcp.src_port(), other);
        if tcp.ack() == other_tag.seq.wrapping_add(1) && tcp.ack() != tag.seq.wrapping_add(1) {
            frames.pop();
            continue;
        }
        assert_eq!(tcp.ack(), tag.seq.wrapping_add(1), "{key}: ack is not our seq + 1");
        let mpc = tcp.option_iter().find_map(|o| match o {
            Ok(TcpOption::MpCapable(m)) => Some(m),
            _ => None,
        });
        let class = if tcp.flags().rst() {
            Class::Closed
        } else {
            match mpc {
                None => Class::Tcp,
                Some(m) if m == version.syn_option(tag.key) => Class::Echo,
                // RFC 8684 §3.1: a server picks H, the one algorithm offered, and leaves B clear.
                Some(m) if m.sender_key.is_some() && m.flags & 0x5f == 0x01 => Class::Mptcp,
                Some(_) => Class::Malformed,
            }
        };
        answers.insert(key, Answer { class, responder, mpc, options: tcp.options().to_vec(), icmp: None });
    }
    (answers, frames)
}

#[test]
fn every_range_answers_as_the_ground_truth_says() {
    if !lab_possible("every_range_answers_as_the_ground_truth_says") {
        return;
    }
    let lab = up();
    let gt: GroundTruth = lab.ground_truth().unwrap();
    // The first, a middle and the last address of every range, on both server ports and a
    // closed one.
    let mut targets = Vec::new();
    for r in &gt.ranges {
        let n = u32::from(r.prefix.network());
        let size = 1u32 << (32 - r.prefix.prefix_len());
        for off in [0, size / 2 + 1, size - 1] {
            for port in [80, 443, 8080] {
                targets.push(SocketAddrV4::new(Ipv4Addr::from(n + off), port));
            }
        }
    }
    for version in [ProbeVersion::V1, ProbeVersion::V0] {
        let (answers, _) = probe(&lab, version, &targets);
        let validator = Validator::from_seed(7);
        for t in &targets {
            let want = gt.expected(IpAddr::V4(*t.ip()), t.port(), version);
            let got = answers.get(t);
            match (want, got) {
                (None, None) => {}
                (None, Some(a)) => panic!("{version} {t}: expected silence, got {a:?}"),
                (Some(w), None) => panic!("{version} {t}: expected {:?}, got nothing", w.class),
                (Some(w), Some(a)) => {
                    assert_eq!(a.class, w.class, "{version} {t}: {a:?}");
                    assert_eq!(a.responder, w.responder.unwrap_or(*t.ip()), "{version} {t}");
                    if w.class == Class::Unreachable {
                        assert_eq!(a.icmp, w.detail, "{version} {t}");
                    }
                    if w.class == Class::Malformed {
                        let m = a.mpc.unwrap();
                        assert_eq!(Some(m.version), w.mptcp_version, "{version} {t}");
                        assert_eq!(Some(format!("0x{:02x}", m.flags)), w.mpc_flags, "{version} {t}");
                    }
                    if w.class == Class::Mptcp {
                        let m = a.mpc.unwrap();
                        assert_eq!(Some(m.version), w.mptcp_version, "{version} {t}");
                        assert_eq!(Some(format!("0x{:02x}", m.flags)), w.mpc_flags, "{version} {t}");
                    }
                    if let Some(mirrored) = w.mirrored {
                        let tag = validator.tag(IpAddr::V4(lab.info.source_ip), IpAddr::V4(*t.ip()), t.port(), version);
                        let (sent, n) = options_of(version, &tag);
                        assert_eq!(a.options == sent[..n], mirrored, "{version} {t}: mirrored");
                        let tsval = mpscan::wire::TcpOptions::new(&a.options).find_map(|o| match o {
                            Ok(TcpOption::Timestamps { tsval, .. }) => Some(tsval),
                            _ => None,
                        });
                        assert_eq!(Some(tsval == Some(tag.tsval)), w.ts_echoed, "{version} {t}: ts_echoed");
                    }
                }
            }
        }
    }
}

#[test]
fn tshark_decodes_responder_answers() {
    if !lab_possible("tshark_decodes_responder_answers") {
        return;
    }
    if Command::new("tshark").arg("--version").output().is_err() {
        assert!(std::env::var("MPSCAN_REQUIRE_LAB").as_deref() != Ok("1"), "tshark is required");
        eprintln!("SKIPPED tshark_decodes_responder_answers: no tshark");
        return;
    }
    let lab = up();
    let t = |a: &str| SocketAddrV4::new(a.parse().unwrap(), 443);
    let mut rows = Vec::new();
    for version in [ProbeVersion::V1, ProbeVersion::V0] {
        // echo, mirror, v0 server, kernel MPTCP, load-balanced MPTCP.
        let targets = [t("198.51.100.5"), t("198.51.100.70"), t("198.51.100.130"), t("198.18.0.4"), t("203.0.113.131")];
        let (_, frames) = probe(&lab, version, &targets);
        assert_eq!(frames.len(), targets.len(), "{version}: one answer each");
        let pcap = lab.info.dir.join(format!("answers-{}.pcap", version.label()));
        write_pcap(&pcap, &frames);
        let out = Command::new("tshark")
            .args(["-r", pcap.to_str().unwrap(), "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"])
            .args(["-T", "fields", "-E", "separator=,", "-e", "ip.src", "-e", "tcp.checksum.status"])
            .args(["-e", "ip.checksum.status", "-e", "tcp.options.mptcp.version", "-e", "tcp.options.mptcp.flags"])
            .args(["-e", "tcp.options.mptcp.sendkey", "-e", "tcp.options.timestamp.tsval"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            rows.push((version, line.to_string()));
        }
    }
    let row = |v: ProbeVersion, ip: &str| -> Vec<String> {
        let line = &rows.iter().find(|(rv, l)| *rv == v && l.starts_with(&format!("{ip},"))).unwrap().1;
        line.split(',').map(str::to_string).collect()
    };
    for v in [ProbeVersion::V1, ProbeVersion::V0] {
        for ip in ["198.51.100.5", "198.51.100.70", "198.51.100.130", "198.18.0.4", "203.0.113.131"] {
            let r = row(v, ip);
            assert_eq!((r[1].as_str(), r[2].as_str()), ("1", "1"), "{v} {ip}: checksums not good: {r:?}");
        }
        // The v0 server answers v0, flags 0x81, with a key.
        let r = row(v, "198.51.100.130");
        assert_eq!((r[3].as_str(), r[4].as_str()), ("0", "0x81"), "{v}: {r:?}");
        assert!(!r[5].is_empty());
        // The echo returns exactly what was sent: version and flags of the probe.
        let r = row(v, "198.51.100.5");
        let sent = if v == ProbeVersion::V1 { ("1", "0x01") } else { ("0", "0x81") };
        assert_eq!((r[3].as_str(), r[4].as_str()), sent, "{v}: {r:?}");
    }
    let r = row(ProbeVersion::V1, "198.18.0.4");
    assert_eq!((r[3].as_str(), r[4].as_str()), ("1", "0x01"), "{r:?}");
    assert!(!r[5].is_empty(), "a real v1 server sends its key");
    let r = row(ProbeVersion::V1, "203.0.113.131");
    assert_eq!((r[3].as_str(), r[4].as_str()), ("1", "0x21"), "{r:?}");
    // The mirror's TSval is the probe's own.
    let tag = Validator::from_seed(7).tag(
        IpAddr::V4(lab.info.source_ip),
        IpAddr::V4("198.51.100.70".parse().unwrap()),
        443,
        ProbeVersion::V1,
    );
    assert_eq!(row(ProbeVersion::V1, "198.51.100.70")[6], tag.tsval.to_string());
}

/// Writes Ethernet frames as a classic pcap file, with the scanner's own pcap back end.
fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut w = PcapWriter::create(path).unwrap();
    let mut next = frames.iter();
    let mut fill = |slot: &mut [u8]| match next.next() {
        Some(f) => {
            slot[..f.len()].copy_from_slice(f);
            f.len()
        }
        None => 0,
    };
    assert_eq!(w.send_batch(frames.len(), &mut fill).unwrap(), frames.len());
    w.into_inner().unwrap();
}

#[test]
fn down_of_an_unknown_lab_is_harmless() {
    if !lab_possible("down_of_an_unknown_lab_is_harmless") {
        return;
    }
    assert!(!down(&random_run_name()).unwrap());
    assert!(down("../etc").is_err());
}
