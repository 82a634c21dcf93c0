//! `-S` and `--source-port` end to end in dry runs (no root, nothing sent): the probes of a scan
//! from several sources of both families with a source-port range all carry a port of the
//! range and one of the sources, every source sends, repeated `-S` and lists combine, and the
//! warning about the kernel's local port range appears exactly when the range overlaps it (as
//! this machine's `/proc/sys/net/ipv4/ip_local_port_range` says).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_mpscan");

/// Runs `mpscan scan --dry-run` with `args`; the probe lines and standard error.
fn dry_run(args: &[&str]) -> (Vec<String>, String) {
    let out = Command::new(EXE).args(["scan", "--dry-run", "--no-blocklist", "-e", "5"]).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{args:?}: {stderr}");
    (String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect(), stderr)
}

/// The value of `key=` in a dry-run line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split(' ').find_map(|f| f.strip_prefix(key)).unwrap_or_else(|| panic!("no {key} in {line}"))
}

/// The source address of a probe, from the frame's bytes.
fn source_of(line: &str) -> IpAddr {
    let hex = field(line, "frame=");
    let b: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    match [b[12], b[13]] {
        [0x08, 0x00] => IpAddr::from(<[u8; 4]>::try_from(&b[26..30]).unwrap()),
        _ => IpAddr::from(<[u8; 16]>::try_from(&b[22..38]).unwrap()),
    }
}

#[test]
fn every_probe_has_a_port_of_the_range_and_one_of_the_sources() {
    let args = &[
        "-p",
        "443,80",
        "--mptcp-version",
        "both",
        "-S",
        "192.0.2.10-192.0.2.12,2001:db8::10/127",
        "-S",
        "192.0.2.20",
        "--source-port",
        "40000-40015",
        "-q",
        "198.18.0.0/24",
        "2001:db8:1::/124",
    ];
    let (lines, _) = dry_run(args);
    assert_eq!(lines.len(), (256 + 16) * 2 * 2, "every (target, port, version)");
    let want: BTreeSet<IpAddr> =
        ["192.0.2.10", "192.0.2.11", "192.0.2.12", "192.0.2.20", "2001:db8::10", "2001:db8::11"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
    let (mut used, mut ports) = (BTreeSet::new(), BTreeSet::new());
    for l in &lines {
        let sport: u16 = field(l, "sport=").parse().unwrap();
        assert!((40000..=40015).contains(&sport), "source port {sport} outside 40000-40015: {l}");
        ports.insert(sport);
        let src = source_of(l);
        assert!(want.contains(&src), "source {src} is not one of ours: {l}");
        let dst: IpAddr = l.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(src.is_ipv4(), dst.is_ipv4(), "{l}");
        used.insert(src);
    }
    assert_eq!(used, want, "every source sends");
    assert_eq!(ports.len(), 16, "1,088 probes use all 16 ports");
    // The same command gives the same probes (the source is the hash's, not a random pick).
    let (again, _) = dry_run(args);
    assert_eq!(again, lines);
}

#[test]
fn one_source_and_default_ports_send_from_the_old_range() {
    let (lines, stderr) = dry_run(&["-p", "443", "-S", "192.0.2.2", "198.18.0.0/26"]);
    assert_eq!(lines.len(), 64);
    for l in &lines {
        let sport: u16 = field(l, "sport=").parse().unwrap();
        assert!(sport >= 32768, "{l}");
        assert_eq!(source_of(l), "192.0.2.2".parse::<IpAddr>().unwrap());
    }
    assert!(!stderr.contains("--source-port"), "no warning without --source-port: {stderr}");
}

#[test]
fn the_warning_appears_when_the_range_overlaps_the_kernels() {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").expect("Linux");
    let k: Vec<u16> = text.split_whitespace().map(|n| n.parse().unwrap()).collect();
    let inside = format!("{}-{}", k[0], k[0]);
    let (_, stderr) = dry_run(&["-p", "443", "--source-port", &inside, "198.18.0.1"]);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("overlaps the kernel's local port range")).collect();
    assert_eq!(lines.len(), 1, "one warning line: {stderr}");
    assert!(lines[0].contains(&format!("{}-{}", k[0], k[1])), "names the kernel's range: {stderr}");
    // Ports below the kernel's range (if it leaves room): no warning; with -q never.
    if k[0] > 1024 {
        let below = format!("1024-{}", k[0] - 1);
        let (_, stderr) = dry_run(&["-p", "443", "--source-port", &below, "198.18.0.1"]);
        assert!(!stderr.contains("overlaps"), "{stderr}");
    }
    let (_, quiet) = dry_run(&["-p", "443", "-q", "--source-port", &inside, "198.18.0.1"]);
    assert!(!quiet.contains("overlaps"), "{quiet}");
}
