//! `mpscan lab check`: a scan's CSV next to the lab's ground truth, range by range: what each
//! range should answer, what the scan found, and how many targets are missing or wrong.
//!
//! The demo prints this table; a blind reader can see at a glance that every echo was caught and
//! every real server found. The comparison is by (address, port, probe version): a row whose
//! class differs from the ground truth, or a row for a silent address, is wrong; an answering
//! target without a row is missing.

use super::GroundTruth;
use crate::probe::ProbeVersion;
use anyhow::Context;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
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
    let mut rdr = csv::Reader::from_path(csv).with_context(|| format!("reading {}", csv.display()))?;
    let h = rdr.headers()?.clone();
    let col = |name: &str| h.iter().position(|c| c == name).with_context(|| format!("{} has no {name} column", csv.display()));
    let (ci, cp, cv, cc) = (col("ip")?, col("port")?, col("probe")?, col("class")?);
    let mut rows: HashMap<(Ipv4Addr, u16, ProbeVersion), String> = HashMap::new();
    let (mut ports, mut versions) = (BTreeSet::new(), BTreeSet::new());
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.with_context(|| format!("{} line {}", csv.display(), i + 2))?;
        let bad = || format!("{} line {}: bad row", csv.display(), i + 2);
        let IpAddr::V4(ip) = rec[ci].parse::<IpAddr>().with_context(bad)? else { continue };
        let port: u16 = rec[cp].parse().with_context(bad)?;
        let v = match &rec[cv] {
            "v0" => ProbeVersion::V0,
            "v1" => ProbeVersion::V1,
            _ => anyhow::bail!("{}", bad()),
        };
        ports.insert(port);
        versions.insert(v);
        rows.insert((ip, port, v), rec[cc].to_string());
    }
    let mut lines = Vec::new();
    for range in &truth.ranges {
        for &v in &versions {
            let mut l = Line {
                prefix: range.prefix.to_string(),
                population: range.name.clone(),
                version: v,
                expected: BTreeMap::new(),
                found: BTreeMap::new(),
                missing: 0,
                wrong: 0,
            };
            for a in u32::from(range.prefix.network())..=u32::from(range.prefix.broadcast()) {
                let ip = Ipv4Addr::from(a);
                for &port in &ports {
                    let want = range.for_port(port).get(v).map(|e| e.class.label());
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
        if s.is_empty() { "(no rows)".to_string() } else { s.join(", ") }
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
