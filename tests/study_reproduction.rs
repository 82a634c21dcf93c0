//! The study definitions in scans/ reproduce the headline figures their studies published: for
//! each, a synthetic result file shaped by the definition (its ports, probe versions and address
//! family) and planted with the published figures comes out of `mpscan summary` with those
//! figures exactly. No packets, no root: the rows are written by this test.
//!
//! The figures (and where they were published) are in each definition's comment.

use mpscan::scan::definition::{Definition, PortsValue};
use serde_json::Value;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_mpscan");

/// One group of planted rows: `hosts` addresses, each answering with `class` to probe `probe` on
/// every port of `ports` (an address on two ports is two rows and one host).
struct Group {
    ipv6: bool,
    /// Addresses in Apple's 17.0.0.0/8 (AS714 in the test's prefix-to-AS file); IPv4 only.
    apple: bool,
    ports: &'static [u16],
    probe: u8,
    class: &'static str,
    hosts: u64,
}

const fn g(ipv6: bool, ports: &'static [u16], probe: u8, class: &'static str, hosts: u64) -> Group {
    Group { ipv6, apple: false, ports, probe, class, hosts }
}

const fn apple(ports: &'static [u16], probe: u8, class: &'static str, hosts: u64) -> Group {
    Group { ipv6: false, apple: true, ports, probe, class, hosts }
}

/// Writes the rows of `groups` (each address used once across all groups) as a result CSV.
fn plant(path: &Path, groups: &[Group]) {
    let mut text = mpscan_schema::COLUMNS.join(",") + "\n";
    let (mut next4, mut next_apple, mut next6) = (0x0a00_0001u32, 0x1100_0001u32, 1u128);
    for grp in groups {
        for _ in 0..grp.hosts {
            let ip = if grp.ipv6 {
                next6 += 1;
                Ipv6Addr::from(0x2001_0db8u128 << 96 | next6).to_string()
            } else if grp.apple {
                next_apple += 1;
                Ipv4Addr::from(next_apple).to_string()
            } else {
                next4 += 1;
                Ipv4Addr::from(next4).to_string()
            };
            for port in grp.ports {
                let v = grp.probe;
                let (version, flags, key, options, mirrored) = match grp.class {
                    "mptcp" => (
                        v.to_string(),
                        "0x01",
                        "00112233aabbccdd",
                        format!("020405b40402080a0000000100000000010303071e0c0{v}0100112233aabbccdd"),
                        "false",
                    ),
                    "echo" if v == 0 => {
                        ("0".into(), "0x81", "", "020405b41e0c0081a1a2a3a4a5a6a7a8".to_string(), "true")
                    }
                    "echo" => ("1".into(), "0x01", "", "020405b41e040101".to_string(), "true"),
                    "tcp" => (String::new(), "", "", "020405b40103030701010402".to_string(), "false"),
                    _ => (String::new(), "", "", String::new(), "false"),
                };
                let window = if grp.class == "closed" { 0 } else { 64240 };
                writeln!(
                    text,
                    "{ip},{port},v{v},{},{ip},{version},{flags},{key},{options},{mirrored},false,52,{window},2026-11-21T18:00:00Z,",
                    grp.class
                )
                .unwrap();
            }
        }
    }
    std::fs::write(path, text).unwrap();
}

/// The definition's ports, probe versions and family: every group must fit them, so a planted
/// scan is one the definition could have produced.
fn check_fits(def_file: &str, groups: &[Group]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scans").join(def_file);
    std::env::set_var("MPSCAN_HITLIST6", "/nonexistent-hitlist-not-read-by-load");
    let d = Definition::load(&path).unwrap_or_else(|e| panic!("{def_file}: {e}"));
    let ports: Vec<u16> = match &d.ports {
        PortsValue::One(p) => vec![*p],
        PortsValue::List(v) => v.clone(),
        PortsValue::Spec(s) => s.split(',').map(|p| p.trim().parse().unwrap()).collect(),
    };
    let versions: &[u8] = match d.versions.as_deref() {
        Some("both") => &[0, 1],
        Some("0") => &[0],
        _ => &[1],
    };
    let ipv6 = d.ipv6 == Some(true);
    for grp in groups {
        assert!(grp.ports.iter().all(|p| ports.contains(p)), "{def_file}: port {:?} not in {ports:?}", grp.ports);
        assert!(versions.contains(&grp.probe), "{def_file}: probe v{} not in {versions:?}", grp.probe);
        assert_eq!(grp.ipv6, ipv6, "{def_file}: family");
    }
}

/// `mpscan summary --format json` of `files` (plus `extra` arguments).
fn summary(files: &[PathBuf], extra: &[&str]) -> Value {
    let out = Command::new(EXE).arg("summary").args(files).args(["--format", "json"]).args(extra).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The integer in `column` of the row labelled `row` (in any text cell, indentation trimmed) of the
/// table whose title contains `title`.
fn cell(s: &Value, title: &str, row: &str, column: &str) -> u64 {
    let tables = s["tables"].as_array().unwrap();
    let t = tables
        .iter()
        .find(|t| t["title"].as_str().unwrap().contains(title))
        .unwrap_or_else(|| panic!("no table {title:?}"));
    let r = t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r.as_object().unwrap().values().any(|v| v.as_str().is_some_and(|l| l.trim() == row)))
        .unwrap_or_else(|| panic!("{title}: no row {row:?} in {t}"));
    r[column].as_u64().unwrap_or_else(|| panic!("{title} / {row} / {column}: {}", r[column]))
}

fn tempdir(what: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mpscan-study-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A prefix-to-AS file: Apple's 17.0.0.0/8 is AS714, the rest of the planted space another AS.
fn pfx2as(dir: &Path) -> String {
    let p = dir.join("pfx2as.txt");
    std::fs::write(&p, "17.0.0.0\t8\t714\n10.0.0.0\t8\t64500\n").unwrap();
    p.to_str().unwrap().to_string()
}

/// RWTH, August 2015: 921 real servers (about a sixth at Apple), about 24,000 exact echoes.
#[test]
fn rwth_2015() {
    let groups = [
        apple(&[443], 0, "mptcp", 154),
        g(false, &[443], 0, "mptcp", 921 - 154),
        g(false, &[443], 0, "echo", 24_000),
        g(false, &[443], 0, "tcp", 30_000),
        g(false, &[443], 0, "closed", 12_000),
    ];
    check_fits("rwth2015-ipv4-443.toml", &groups);
    let dir = tempdir("2015");
    let csv = dir.join("rwth2015.csv");
    plant(&csv, &groups);
    let s = summary(std::slice::from_ref(&csv), &["--pfx2as", &pfx2as(&dir)]);
    assert_eq!(cell(&s, "Headline", "of which valid MPTCP", "probe v0"), 921);
    assert_eq!(cell(&s, "Headline", "of which echoed", "probe v0"), 24_000);
    assert_eq!(cell(&s, "Headline", "with MP_CAPABLE", "probe v0"), 24_921);
    // About one sixth at Apple: AS714 holds 154 of the 921.
    assert_eq!(cell(&s, "origin AS networks by real MPTCP servers", "AS714", "mptcp"), 154);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// RWTH, December 2018, port 443: 88,484 answered with MP_CAPABLE, 77,384 of them echoes.
#[test]
fn rwth_2018() {
    let groups = [
        g(false, &[443], 0, "mptcp", 88_484 - 77_384),
        g(false, &[443], 0, "echo", 77_384),
        g(false, &[443], 0, "tcp", 40_000),
        g(false, &[443], 0, "closed", 20_000),
    ];
    check_fits("rwth2018-443.toml", &groups);
    let dir = tempdir("2018");
    let csv = dir.join("rwth2018.csv");
    plant(&csv, &groups);
    let s = summary(std::slice::from_ref(&csv), &[]);
    assert_eq!(cell(&s, "Headline", "with MP_CAPABLE", "probe v0"), 88_484);
    assert_eq!(cell(&s, "Headline", "of which echoed", "probe v0"), 77_384);
    assert_eq!(cell(&s, "Headline", "of which valid MPTCP", "probe v0"), 11_100);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// TUM 2021 (v0, ports 80 and 443): "9k+" IPv4 addresses and "a few dozen" IPv6 ones, counted
/// as addresses although many answer on both ports; the IPv4 and IPv6 scans summarised together.
#[test]
fn tum_2021() {
    let v4 = [
        g(false, &[443], 0, "mptcp", 6_000),
        g(false, &[80], 0, "mptcp", 1_000),
        g(false, &[80, 443], 0, "mptcp", 2_000),
        g(false, &[80, 443], 0, "echo", 3_000),
        g(false, &[80, 443], 0, "tcp", 10_000),
    ];
    let v6 = [g(true, &[80, 443], 0, "mptcp", 24), g(true, &[443], 0, "mptcp", 12), g(true, &[80], 0, "tcp", 500)];
    check_fits("tum2021-ipv4-80-443.toml", &v4);
    check_fits("tum2021-ipv6-hitlist-80-443.toml", &v6);
    let dir = tempdir("2021");
    let (a, b) = (dir.join("tum2021-ipv4.csv"), dir.join("tum2021-ipv6.csv"));
    plant(&a, &v4);
    plant(&b, &v6);
    let s = summary(&[a, b], &[]);
    let t = "Distinct addresses by probe version and family";
    assert_eq!(cell(&s, t, "real MPTCP, probe v0", "IPv4"), 9_000);
    assert_eq!(cell(&s, t, "real MPTCP, probe v0", "IPv6"), 36);
    // The rows are per port: 11,000 + 60 answers, 8,000 + 36 of them on port 443.
    assert_eq!(cell(&s, "Headline: all ports", "of which valid MPTCP", "probe v0"), 11_060);
    assert_eq!(cell(&s, "Headline: port 443", "of which valid MPTCP", "probe v0"), 8_036);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// TUM 2022 (v0 and v1, ports 80 and 443): "13k+" IPv4 v0 addresses, "1k" IPv6 v0 addresses,
/// "about 100" v1 hosts over both families, most of them Apple's.
#[test]
fn tum_2022() {
    let v4 = [
        g(false, &[80, 443], 0, "mptcp", 5_000),
        g(false, &[443], 0, "mptcp", 8_000),
        apple(&[443], 1, "mptcp", 80),
        g(false, &[443], 1, "mptcp", 12),
        g(false, &[80, 443], 0, "echo", 4_000),
        g(false, &[80, 443], 1, "echo", 4_000),
        g(false, &[80, 443], 1, "tcp", 10_000),
    ];
    let v6 = [
        g(true, &[80, 443], 0, "mptcp", 600),
        g(true, &[80], 0, "mptcp", 400),
        g(true, &[443], 1, "mptcp", 8),
        g(true, &[443], 1, "tcp", 300),
    ];
    check_fits("tum2022-ipv4-80-443.toml", &v4);
    check_fits("tum2022-ipv6-hitlist-80-443.toml", &v6);
    let dir = tempdir("2022");
    let (a, b) = (dir.join("tum2022-ipv4.csv"), dir.join("tum2022-ipv6.csv"));
    plant(&a, &v4);
    plant(&b, &v6);
    let s = summary(&[a, b], &["--pfx2as", &pfx2as(&dir)]);
    let t = "Distinct addresses by probe version and family";
    assert_eq!(cell(&s, t, "real MPTCP, probe v0", "IPv4"), 13_000);
    assert_eq!(cell(&s, t, "real MPTCP, probe v0", "IPv6"), 1_000);
    assert_eq!(cell(&s, t, "real MPTCP, probe v1", "all"), 100);
    // Most v1 hosts are Apple's.
    assert_eq!(cell(&s, "origin AS networks by real MPTCP servers", "AS714", "mptcp"), 80);
    std::fs::remove_dir_all(&dir).unwrap();
}
