//! Verification beside the scan: `mpscan summary SCAN.csv --verified VERIFIED.csv` counts, for
//! each probe version and SYN-ACK class, how many rows `mpscan verify` tried and what it found
//! over a real kernel MPTCP connection (confirmed, fallback, no-data, refused, unreachable,
//! timeout, error).
//!
//! A verified CSV is small (one row per candidate, not per probe), so it is read with the csv
//! crate by column name; only `probe`, `class` and `verdict` are needed.

use crate::table::{Cell, Table};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mpscan_schema::ConfirmVerdict;

/// Verdict counts per (probe version, scan class).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Verified {
    /// (probe, class) -> verdict -> rows.
    pub counts: BTreeMap<(String, String), BTreeMap<String, u64>>,
    /// Rows whose verdict is not a [`ConfirmVerdict`] (a newer verify, or a damaged file).
    pub unknown: u64,
}

impl Verified {
    /// Reads and adds up verified CSVs (several for a sharded scan).
    pub fn read_all(paths: &[PathBuf]) -> Result<Verified> {
        let mut v = Verified::default();
        for p in paths {
            v.read(p)?;
        }
        Ok(v)
    }

    fn read(&mut self, path: &Path) -> Result<()> {
        let mut rdr =
            csv::Reader::from_path(path).with_context(|| format!("{}: cannot open verified CSV", path.display()))?;
        let h = rdr.headers().with_context(|| format!("{}: cannot read the header", path.display()))?.clone();
        let col = |name: &str| {
            h.iter().position(|c| c == name).with_context(|| {
                format!("{}: no {name} column: give the CSV that `mpscan verify -o` wrote", path.display())
            })
        };
        let (cp, cc, cv) = (col("probe")?, col("class")?, col("verdict")?);
        let mut rec = csv::StringRecord::new();
        let mut line = 1u64;
        loop {
            line += 1;
            match rdr.read_record(&mut rec) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => bail!("{}: line {line}: {e}", path.display()),
            }
            let (Some(p), Some(c), Some(v)) = (rec.get(cp), rec.get(cc), rec.get(cv)) else {
                bail!("{}: line {line}: too few columns", path.display());
            };
            if ConfirmVerdict::parse(v).is_none() {
                self.unknown += 1;
                continue;
            }
            *self.counts.entry((p.to_string(), c.to_string())).or_default().entry(v.to_string()).or_default() += 1;
        }
        Ok(())
    }

    /// The table: one row per (probe, class) verified, with each verdict's count and the share
    /// confirmed.
    pub fn table(&self, scan_rows: impl Fn(&str, &str) -> Option<u64>) -> Table {
        let mut cols = vec!["probe", "class", "in scan", "verified"];
        cols.extend(ConfirmVerdict::ALL.map(ConfirmVerdict::label));
        cols.push("confirmed share");
        let mut t = Table::new("Verification over real MPTCP connections (mpscan verify)", &cols);
        for ((probe, class), by) in &self.counts {
            let total: u64 = by.values().sum();
            let mut row = vec![
                Cell::text(probe.as_str()),
                Cell::text(class.as_str()),
                scan_rows(probe, class).map_or(Cell::Empty, Cell::Int),
                Cell::Int(total),
            ];
            row.extend(ConfirmVerdict::ALL.iter().map(|v| Cell::Int(by.get(v.label()).copied().unwrap_or(0))));
            row.push(Cell::pct(by.get("confirmed").copied().unwrap_or(0), total));
            t.push(row);
        }
        let mut note = "confirmed = the connection stayed MPTCP and data flowed; Linux speaks v1 only, so v0-only servers show as fallback".to_string();
        if self.unknown > 0 {
            note.push_str(&format!("; {} rows with an unknown verdict left out", self.unknown));
        }
        t.with_note(note)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        use std::io::Write;
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    const HEAD: &str = "ip,port,probe,class,verdict,mptcp\n";

    #[test]
    fn counts_by_probe_class_and_verdict() {
        let a = file(&format!(
            "{HEAD}198.18.0.1,443,v1,mptcp,confirmed,true\n198.18.0.2,443,v1,mptcp,confirmed,true\n\
             198.18.0.3,443,v1,mptcp,fallback,false\n203.0.113.9,443,v1,echo,fallback,false\n"
        ));
        let b = file(&format!("{HEAD}203.0.113.10,443,v1,echo,no-data,false\n198.18.0.4,443,v1,mptcp,weird,false\n"));
        let v = Verified::read_all(&[a.path().into(), b.path().into()]).unwrap();
        let m = &v.counts[&("v1".into(), "mptcp".into())];
        assert_eq!((m["confirmed"], m["fallback"]), (2, 1));
        let e = &v.counts[&("v1".into(), "echo".into())];
        assert_eq!((e["fallback"], e["no-data"]), (1, 1));
        assert_eq!(v.unknown, 1);
        let t = v.table(|p, c| (p == "v1" && c == "mptcp").then_some(10));
        assert_eq!(t.rows.len(), 2);
        // echo sorts before mptcp; the mptcp row: 10 in the scan, 3 verified, 2 confirmed.
        assert_eq!(t.rows[1][2], Cell::Int(10));
        assert_eq!(t.rows[1][3], Cell::Int(3));
        assert_eq!(t.rows[1][4], Cell::Int(2));
        assert_eq!(t.rows[0][2], Cell::Empty);
        assert!(t.note.unwrap().contains("1 rows with an unknown verdict"));
    }

    #[test]
    fn a_scan_csv_is_not_a_verified_csv() {
        let f = file("ip,port,probe,class\n198.18.0.1,443,v1,mptcp\n");
        let e = Verified::read_all(&[f.path().into()]).unwrap_err().to_string();
        assert!(e.contains("no verdict column"), "{e}");
    }
}
