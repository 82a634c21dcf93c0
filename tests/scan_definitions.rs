//! Every shipped scan definition (scans/*.toml) resolves and prints its probes in a dry run of
//! the real binary: documentation targets only, a blocklist override, nothing sent. Needs no
//! root.

use mpscan::scan::definition::Definition;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_mpscan");

fn tempdir(what: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mpscan-defs-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Every shipped definition resolves and prints its probes in a dry run: documentation targets
/// only (given on the command line, replacing the definition's), a blocklist override, nothing
/// sent, no root needed.
#[test]
fn shipped_definitions_resolve_in_a_dry_run() {
    let dir = tempdir("defs");
    let bl = dir.join("blocklist.txt");
    std::fs::write(&bl, "# test blocklist\n192.0.2.0/24\n").unwrap();
    std::fs::write(dir.join("targets.txt"), "198.51.100.0/28\n").unwrap();
    std::fs::write(dir.join("targets6.txt"), "2001:db8:1::1\n").unwrap();
    let hitlist = dir.join("hitlist6.txt");
    std::fs::write(&hitlist, "2001:db8:1::1\n2001:db8:1::2\n").unwrap();
    let scans = Path::new(env!("CARGO_MANIFEST_DIR")).join("scans");
    let mut n = 0;
    for e in std::fs::read_dir(&scans).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        std::env::set_var("MPSCAN_LAB", &dir);
        std::env::set_var("MPSCAN_HITLIST6", &hitlist);
        let d = Definition::load(&p).unwrap();
        let (target, prefix): (&str, ipnet::IpNet) = if d.ipv6 == Some(true) {
            ("2001:db8:1::/124", "2001:db8:1::/124".parse().unwrap())
        } else {
            ("198.51.100.0/24", "198.51.100.0/24".parse().unwrap())
        };
        let out = Command::new(EXE)
            .args(["scan", "--config", p.to_str().unwrap(), "--dry-run", "-n", "5", "-b", bl.to_str().unwrap(), target])
            .env("MPSCAN_LAB", &dir)
            .env("MPSCAN_HITLIST6", &hitlist)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {}", p.display(), String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        let versions = match d.versions.as_deref() {
            Some("both") => 2,
            _ => 1,
        };
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5 * versions, "{}: {text}", p.display());
        let ports: BTreeSet<u16> =
            d.ports.spec().split(',').flat_map(|s| s.split('-')).map(|s| s.parse().unwrap()).collect();
        for l in lines {
            let mut f = l.split(' ');
            let ip: IpAddr = f.next().unwrap().parse().unwrap();
            let port: u16 = f.next().unwrap().parse().unwrap();
            assert!(prefix.contains(&ip), "{}: probe to {ip} outside {prefix}", p.display());
            assert!(ports.contains(&port) || d.ports.spec().contains('-'), "{}: port {port}", p.display());
        }
        // A dry run writes no result files, whatever the definition's output names.
        assert!(!dir.join(format!("{}-0-of-1.csv", d.name)).exists());
        n += 1;
    }
    assert!(n >= 4, "{n} definitions");
    let _ = std::fs::remove_dir_all(&dir);
}
