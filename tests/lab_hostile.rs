//! What the network sends that must never become a row, and never crash the scanner (the
//! committed fuzz inputs are replayed without root by `tests/fuzz_replay.rs`):
//!
//! * `forged_frames_never_become_rows`: a scan of the lab while forged frames are written at
//!   the scanner's interface from the router's namespace (an AF_PACKET socket there): SYN-ACKs
//!   with wrong acknowledgments, from unprobed addresses and ports, to other ports and addresses
//!   of the scanner, answering a probe version that was not sent, RSTs and ICMP errors quoting
//!   what the scanner did not send, and duplicates of one valid answer. None may become a row;
//!   the metadata counts them as invalid (by reason) or as duplicates. Forged frames go only
//!   between the lab's own namespaces. Needs root and namespaces: skips without them, fails
//!   instead with `MPSCAN_REQUIRE_LAB=1`.

mod common;
use common::lab_possible;
use mpscan::keyed_hash::Validator;
use mpscan::lab::sys::PacketSocket;
use mpscan::lab::topology::random_run_name;
use mpscan::lab::{netns, Lab, LabOptions, RangeKind, Size};
use mpscan::probe::{Link, ProbeBuilder, ProbeVersion, MAX_FRAME_LEN};
use mpscan::wire::{FrameRepr, IcmpRepr, L4Repr, TcpFlags, TcpRepr};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_mpscan");

/// An AF_PACKET socket on `ifname` inside namespace `ns`: opened on a thread that entered the
/// namespace, so the socket belongs to it; this process's own namespace is untouched.
fn socket_in(ns: &str, ifname: &str) -> PacketSocket {
    let f = std::fs::File::open(format!("/run/netns/{ns}")).expect("namespace file");
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns(2) on a valid namespace descriptor; it changes only this thread's
            // network namespace, and the thread ends right after opening the socket.
            let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns into {ns}: {}", std::io::Error::last_os_error());
            PacketSocket::open(ifname).expect("AF_PACKET socket in the router namespace")
        })
        .join()
        .unwrap()
    })
}

fn mac(s: &str) -> [u8; 6] {
    mpscan::net::route::parse_mac(s).unwrap()
}

/// An Ethernet/IPv4 frame carrying `l4` from `src` to `dst`, MACs as given, TTL 61.
fn ipv4_frame(macs: ([u8; 6], [u8; 6]), src: Ipv4Addr, dst: Ipv4Addr, l4: L4Repr<'_>) -> Vec<u8> {
    FrameRepr::new(src.into(), dst.into(), 61, l4).with_macs(macs.0, macs.1).to_vec()
}

/// MSS 1460, SACK-permitted, two NOPs: what a plain server's SYN-ACK offers.
const SERVER_OPTIONS: [u8; 8] = [0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x01, 0x01];

/// A TCP segment from `sport` to `dport` with `flags` and `ack` (checksummed when emitted).
fn tcp(sport: u16, dport: u16, flags: u8, ack: u32) -> L4Repr<'static> {
    L4Repr::Tcp(TcpRepr {
        src_port: sport,
        dst_port: dport,
        seq: 0x4f4f_4f4f,
        ack,
        flags: TcpFlags(flags),
        window: 29200,
        options: &SERVER_OPTIONS,
        payload: &[],
    })
}

/// An ICMP admin-prohibited quoting `quoted` (an IPv4 header and at least 8 bytes of TCP).
fn icmp(quoted: &[u8]) -> L4Repr<'_> {
    L4Repr::Icmp(IcmpRepr { msg_type: 3, code: 13, rest_of_header: [0; 4], payload: quoted })
}

/// The first host of a lab range of `kind`.
fn host_of(lab: &Lab, kind: RangeKind) -> Ipv4Addr {
    let r = lab.info.ranges.iter().find(|r| r.kind == kind).expect("range in the lab");
    let net: ipnet::Ipv4Net = r.prefix.parse().unwrap();
    Ipv4Addr::from(u32::from(net.network()) + 1)
}

#[test]
fn forged_frames_never_become_rows() {
    if !lab_possible("forged_frames_never_become_rows") {
        return;
    }
    let lab = Lab::up(LabOptions { name: Some(random_run_name()), size: Size::Small, exe: Some(PathBuf::from(EXE)) })
        .expect("lab up");
    let info = &lab.info;
    let seed: u64 = 4242;
    let port = 443;
    let us = info.source_ip;
    let router = info.gateway_ip;
    let v = Validator::from_seed(seed);
    let tag = |t: Ipv4Addr, p: u16, ver: ProbeVersion| v.tag(IpAddr::V4(us), IpAddr::V4(t), p, ver);
    let scanner_mac = mac(&netns::mac(&info.scanner_ns, &info.interface).unwrap());
    let macs = (mac(&info.gateway_mac), scanner_mac);

    // A real server, a silent target (the router drops what is sent to it), and addresses the
    // scan never probes.
    let real = host_of(&lab, RangeKind::KernelTcp);
    let silent = host_of(&lab, RangeKind::Dropped);
    let unprobed = Ipv4Addr::new(198, 19, 200, 1);
    let t_real = tag(real, port, ProbeVersion::V1);
    let t_silent = tag(silent, port, ProbeVersion::V1);
    let syn_ack = TcpFlags::SYN | TcpFlags::ACK;
    let rst = TcpFlags::RST | TcpFlags::ACK;

    // The probe a router would quote, and variants of it the scanner never sent.
    let probe_l3 = {
        let link = Link { src_mac: scanner_mac, dst_mac: macs.0, src_v4: Some(us), src_v6: None };
        let mut buf = [0u8; MAX_FRAME_LEN];
        let n =
            ProbeBuilder::new(&link, &[ProbeVersion::V1]).write(&mut buf, real.into(), port, ProbeVersion::V1, &t_real);
        buf[14..n].to_vec()
    };
    let mut quote_other_seq = probe_l3[..28].to_vec();
    quote_other_seq[24..28].copy_from_slice(&t_real.seq.wrapping_add(1000).to_be_bytes());
    let mut quote_unprobed = probe_l3[..28].to_vec();
    quote_unprobed[16..20].copy_from_slice(&unprobed.octets());

    // (what, reason the scanner must count, frame)
    let mut forged: Vec<(&str, Option<&str>, Vec<u8>)> = vec![
        (
            "SYN-ACK, ack off by one",
            Some("validation-failed"),
            ipv4_frame(macs, real, us, tcp(port, t_real.sport, syn_ack, t_real.seq.wrapping_add(2))),
        ),
        (
            "SYN-ACK, ack = seq",
            Some("validation-failed"),
            ipv4_frame(macs, real, us, tcp(port, t_real.sport, syn_ack, t_real.seq)),
        ),
        (
            "SYN-ACK from an unprobed address",
            Some("validation-failed"),
            ipv4_frame(macs, unprobed, us, tcp(port, t_real.sport, syn_ack, t_real.seq.wrapping_add(1))),
        ),
        (
            "SYN-ACK from an unprobed port",
            Some("validation-failed"),
            ipv4_frame(macs, real, us, tcp(8443, t_real.sport, syn_ack, t_real.seq.wrapping_add(1))),
        ),
        (
            "SYN-ACK to another port of the scanner (in the probe range)",
            Some("validation-failed"),
            ipv4_frame(macs, real, us, tcp(port, t_real.sport ^ 1, syn_ack, t_real.seq.wrapping_add(1))),
        ),
        ("SYN-ACK answering the v0 probe of a v1-only scan", Some("validation-failed"), {
            let t0 = tag(silent, port, ProbeVersion::V0);
            ipv4_frame(macs, silent, us, tcp(port, t0.sport, syn_ack, t0.seq.wrapping_add(1)))
        }),
        ("SYN-ACK to another address of the link", Some("not-to-us"), {
            let other = Ipv4Addr::new(192, 0, 2, 3);
            ipv4_frame(macs, real, other, tcp(port, t_real.sport, syn_ack, t_real.seq.wrapping_add(1)))
        }),
        (
            "RST acknowledging another sequence number",
            Some("validation-failed"),
            ipv4_frame(macs, real, us, tcp(port, t_real.sport, rst, t_real.seq.wrapping_add(7))),
        ),
        (
            "ICMP quoting another sequence number",
            Some("icmp-quote-seq-mismatch"),
            ipv4_frame(macs, router, us, icmp(&quote_other_seq)),
        ),
        (
            "ICMP quoting a probe to an unprobed address",
            Some("icmp-quote-not-ours"),
            ipv4_frame(macs, router, us, icmp(&quote_unprobed)),
        ),
        // Dropped by the capture filter (destination port below the probes' range): never
        // reaches the receiver, so never counted, and never a row.
        (
            "SYN-ACK to port 22 of the scanner",
            None,
            ipv4_frame(macs, real, us, tcp(port, 22, syn_ack, t_real.seq.wrapping_add(1))),
        ),
    ];
    // One valid answer for the silent target, three times: one row, two duplicates.
    let valid_silent = ipv4_frame(macs, silent, us, tcp(port, t_silent.sport, syn_ack, t_silent.seq.wrapping_add(1)));
    for _ in 0..3 {
        forged.push(("valid SYN-ACK of the silent target", None, valid_silent.clone()));
    }

    // The injector: the router's end of the scanner link.
    let sock = socket_in(&info.router_ns, "v-scan");

    let dir = std::env::temp_dir().join(format!("mpscan-hostile-{}", info.run));
    std::fs::create_dir_all(&dir).unwrap();
    let (csv, json) = (dir.join("scan.csv"), dir.join("scan.json"));
    let targets = format!("@{}", info.targets.display());
    let blocklist = info.blocklist.display().to_string();
    let seed_s = seed.to_string();
    let args = [
        "netns",
        "exec",
        &info.scanner_ns,
        EXE,
        "scan",
        "-p",
        "80,443",
        "-e",
        &seed_s,
        "-r",
        "500",
        "-c",
        "3",
        "-b",
        &blocklist,
        "-q",
        "-o",
        csv.to_str().unwrap(),
        "-m",
        json.to_str().unwrap(),
        &targets,
    ];
    let mut scan = Command::new("ip").args(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();

    // The receiver is open before the first probe leaves: wait for a probe at the router, then
    // inject everything (the scan keeps sending for about a second, then waits out 3 s).
    sock.set_read_timeout(Duration::from_millis(200)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 2048];
    let mut seen_probe = false;
    while !seen_probe && Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            let f = &buf[..n];
            seen_probe = matches!(FrameRepr::parse(f), Some(Ok(FrameRepr { ip, l4: L4Repr::Tcp(t), .. }))
                if ip.src_addr() == IpAddr::V4(us) && t.flags == TcpFlags(TcpFlags::SYN));
        }
        if let Ok(Some(st)) = scan.try_wait() {
            panic!("the scan ended ({st}) before a probe was seen at the router");
        }
    }
    assert!(seen_probe, "no probe reached the router");
    for (_, _, f) in &forged {
        sock.send(f).expect("injecting a frame");
    }

    let out = scan.wait_with_output().unwrap();
    assert!(out.status.success(), "mpscan scan failed: {}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let mut rdr = csv::Reader::from_path(&csv).unwrap();
    let headers = rdr.headers().unwrap().clone();
    let rows: Vec<BTreeMap<String, String>> = rdr
        .records()
        .map(|r| headers.iter().zip(r.unwrap().iter()).map(|(h, v)| (h.to_string(), v.to_string())).collect())
        .collect();
    let _ = std::fs::remove_dir_all(&dir);

    // No forged frame became a row: every row is the lab's truth, except the one valid answer
    // for the silent target, which appears once.
    let truth = lab.ground_truth().unwrap();
    let mut silent_rows = 0;
    for r in &rows {
        let ip: IpAddr = r["ip"].parse().unwrap();
        let p: u16 = r["port"].parse().unwrap();
        assert_eq!(r["probe"], "v1", "{r:?}");
        if ip == IpAddr::V4(silent) && p == port {
            silent_rows += 1;
            assert_eq!(r["class"], "tcp", "{r:?}");
            continue;
        }
        assert_ne!(ip, IpAddr::V4(unprobed), "row from an unprobed address: {r:?}");
        let e =
            truth.expected(ip, p, ProbeVersion::V1).unwrap_or_else(|| panic!("row that the lab did not send: {r:?}"));
        assert_eq!(r["class"], e.class.label(), "{r:?}");
    }
    assert_eq!(silent_rows, 1, "the valid answer of the silent target: one row, however often it came");
    assert!(
        rows.iter().any(|r| r["ip"] == real.to_string() && r["port"] == "443"),
        "the real server's own answer is kept"
    );

    // The metadata counts every forged frame that reached the receiver.
    let reasons = &meta["invalid_reasons"];
    let mut want: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, reason, _) in &forged {
        if let Some(r) = reason {
            *want.entry(r).or_default() += 1;
        }
    }
    for (reason, n) in &want {
        let got = reasons[*reason].as_u64().unwrap_or(0);
        assert!(got >= *n, "invalid_reasons[{reason}] = {got}, expected at least {n}: {meta}");
    }
    let total: u64 = want.values().sum();
    let invalid = meta["responses_invalid"].as_u64().unwrap();
    assert!(invalid >= total, "responses_invalid = {invalid}, expected at least {total}: {meta}");
    let sum: u64 = reasons.as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(invalid, sum, "responses_invalid is the sum of invalid_reasons: {meta}");
    assert!(meta["duplicates"].as_u64().unwrap() >= 2, "the two repeated answers are duplicates: {meta}");
    assert_eq!(meta["rows"].as_u64().unwrap(), rows.len() as u64);
    eprintln!(
        "forged {} frames; metadata: invalid {invalid} {reasons}, duplicates {}",
        forged.len(),
        meta["duplicates"]
    );
}
