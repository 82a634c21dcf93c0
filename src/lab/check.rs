//! `mpscan lab check`: a scan's CSV next to the lab's ground truth, range by range: what each
//! range should answer, what the scan found, and how many targets are missing or wrong.
//!
//! The demo prints this table; a blind reader can see at a glance that every echo was caught and
//! every real server found. The comparison is by (address, port, probe version): a row whose
//! class differs from the ground truth, or a row for a silent address, is wrong; an answering
//! target without a row is missing.

use super::GroundTruth;
use crate::probe::ProbeVersion;
use mpscan_schema::records::ResultFile;
use mpscan_schema::Col;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// One line of the comparison: a range and a probe version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The range.
    pub prefix: String,
    /// Its population.
    pub population: String,
    /// Probe version.
    pub version: ProbeVersion,
    /// Expected rows by class.
    pub expected: BTreeMap<&'static str, u64>,
    /// Rows found by class.
    pub found: BTreeMap<String, u64>,
    /// Answering targets without a row.
    pub missing: u64,
    /// Rows whose class is not the expected one (or that should not exist).
    pub wrong: u64,
}

/// Compares the rows of `csv` with `truth` over the ports and versions that appear in the CSV.
pub fn compare(truth: &GroundTruth, csv: &Path) -> anyhow::Result<Vec<Line>> {
    let mut file = ResultFile::open(csv, Col::KEY_CLASS)?;
    let mut rows: HashMap<(IpAddr, u16, ProbeVersion), String> = HashMap::new();
    let (mut ports, mut versions) = (BTreeSet::new(), BTreeSet::new());
    let mut bad = None;
    file.for_each_row(|line, r| match r {
        Ok(r) => {
            ports.insert(r.port);
            versions.insert(r.probe);
            rows.insert((r.ip.into(), r.port, r.probe), r.class.label().to_string());
        }
        Err(e) => {
            bad.get_or_insert_with(|| format!("{} line {line}: bad row: {e}", csv.display()));
        }
    })?;
    if let Some(e) = bad {
        anyhow::bail!(e);
    }
    // Every range of either family, with its addresses.
    let ranges = truth
        .ranges
        .iter()
        .map(|r| {
            let all = (u32::from(r.prefix.network())..=u32::from(r.prefix.broadcast()))
                .map(|a| IpAddr::V4(Ipv4Addr::from(a)));
            (r.prefix.to_string(), r.name.clone(), all.collect::<Vec<_>>())
        })
        .chain(truth.ranges6.iter().filter(|r| r.prefix.prefix_len() >= 104).map(|r| {
            // (a lab range of more than 2^24 IPv6 addresses is not enumerable; the lab has none)
            let all = (u128::from(r.prefix.network())..=u128::from(r.prefix.broadcast()))
                .map(|a| IpAddr::V6(Ipv6Addr::from(a)));
            (r.prefix.to_string(), r.name.clone(), all.collect::<Vec<_>>())
        }));
    let mut lines = Vec::new();
    for (prefix, name, addrs) in ranges {
        // A family the scan did not probe at all is not compared.
        let probed = addrs.first().is_some_and(|a| rows.keys().any(|(ip, ..)| ip.is_ipv4() == a.is_ipv4()));
        if !probed {
            continue;
        }
        for &v in &versions {
            let mut l = Line {
                prefix: prefix.clone(),
                population: name.clone(),
                version: v,
                expected: BTreeMap::new(),
                found: BTreeMap::new(),
                missing: 0,
                wrong: 0,
            };
            for &ip in &addrs {
                for &port in &ports {
                    let want = truth.expected(ip, port, v).map(|e| e.class.label());
                    let got = rows.get(&(ip, port, v));
                    if let Some(w) = want {
                        *l.expected.entry(w).or_default() += 1;
                    }
                    if let Some(g) = got {
                        *l.found.entry(g.clone()).or_default() += 1;
                    }
                    match (want, got) {
                        (Some(_), None) => l.missing += 1,
                        (Some(w), Some(g)) if w != g => l.wrong += 1,
                        (None, Some(_)) => l.wrong += 1,
                        _ => {}
                    }
                }
            }
            lines.push(l);
        }
    }
    Ok(lines)
}

/// Renders the comparison as an aligned table.
pub fn render(lines: &[Line]) -> String {
    let fmt = |m: &mut dyn Iterator<Item = (String, u64)>| {
        let s: Vec<String> = m.map(|(k, n)| format!("{k} {n}")).collect();
        if s.is_empty() {
            "(no rows)".to_string()
        } else {
            s.join(", ")
        }
    };
    let mut table = vec![[
        "range".to_string(),
        "population".into(),
        "probe".into(),
        "ground truth".into(),
        "scan found".into(),
        "missing".into(),
        "wrong".into(),
    ]];
    for l in lines {
        table.push([
            l.prefix.clone(),
            l.population.clone(),
            l.version.to_string(),
            fmt(&mut l.expected.iter().map(|(k, n)| (k.to_string(), *n))),
            fmt(&mut l.found.iter().map(|(k, n)| (k.clone(), *n))),
            l.missing.to_string(),
            l.wrong.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..7).map(|c| table.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in &table {
        let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    let (missing, wrong): (u64, u64) = (lines.iter().map(|l| l.missing).sum(), lines.iter().map(|l| l.wrong).sum());
    out.push_str(&format!(
        "\n{} — {missing} answering targets without a row, {wrong} rows of the wrong class\n",
        if missing + wrong == 0 { "scan matches the ground truth" } else { "SCAN DIFFERS FROM THE GROUND TRUTH" }
    ));
    out
}
