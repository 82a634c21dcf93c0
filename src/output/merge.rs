//! `mpscan merge`: the result files of a sharded scan (one per vantage machine) joined into one
//! result, with one metadata document that adds up the shards and says which are missing.
//!
//! ```sh
//! mpscan merge -o all.csv -m all.json shard-*.csv --metadata shard-*.json
//! ```
//!
//! * Rows: concatenated in the order given; a row whose (ip, port, probe) key was already
//!   written is dropped and counted (`duplicate_rows`): shards of one scan never share a target,
//!   so a duplicate means a file was given twice or two scans were mixed. Inputs may be CSV or
//!   Parquet (by extension); the output is CSV.
//! * Metadata: the shards must come from one scan (same seed, shard count, ports, versions and
//!   target count), or merging is refused. Counters are summed; `missing_shards` lists the shard
//!   indexes no metadata was given for (with a warning), and `complete` is true only when every
//!   shard is there, none was interrupted, and their `targets_probed` add up to `targets_total`.
//!
//! The analysis commands also accept every shard's file directly (`mpscan summary a.csv b.csv
//! --metadata a.json b.json`): merging is for keeping one file per scan.

use anyhow::{bail, Context as _};
use mpscan_schema::records::ResultFile;
use mpscan_schema::{Col, Ip, Metadata, ProbeVersion};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// `mpscan merge` arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "EXAMPLE:\n  mpscan merge -o scan.csv -m scan.json scan-0-of-3.csv scan-1-of-3.csv scan-2-of-3.csv \\\n      \
    --metadata scan-0-of-3.json scan-1-of-3.json scan-2-of-3.json"
)]
pub struct MergeArgs {
    /// The shards' result files (CSV, or Parquet by the .parquet extension).
    #[arg(required = true, value_name = "SHARD.csv")]
    pub inputs: Vec<PathBuf>,
    /// The shards' metadata JSON files (as many as there are, in any order).
    #[arg(long, num_args = 1.., value_name = "SHARD.json")]
    pub metadata: Vec<PathBuf>,
    /// The merged result CSV.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: PathBuf,
    /// The merged metadata JSON (needs --metadata).
    #[arg(short = 'm', long = "merged-metadata", value_name = "FILE")]
    pub merged_metadata: Option<PathBuf>,
}

/// What merging the rows did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowStats {
    /// Rows read, per input.
    pub per_input: Vec<u64>,
    /// Rows written.
    pub written: u64,
    /// Rows dropped because their key was already written.
    pub duplicates: u64,
}

/// Runs `mpscan merge`.
pub fn run(a: &MergeArgs) -> anyhow::Result<()> {
    if a.inputs.iter().any(|p| p == &a.output) {
        bail!("-o {} is also an input: write the merged file elsewhere", a.output.display());
    }
    if a.merged_metadata.is_some() && a.metadata.is_empty() {
        bail!("-m needs the shards' metadata: add --metadata SHARD.json ...");
    }
    let docs = a
        .metadata
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
            let md = serde_json::from_str::<Metadata>(&text)
                .with_context(|| format!("{} is not an mpscan scan's metadata", p.display()))?;
            Ok((p.display().to_string(), md))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Check the metadata before writing anything.
    let merged = if docs.is_empty() { None } else { Some(Metadata::merge(&docs)?) };
    let stats = merge_rows(&a.inputs, &a.output)?;
    if stats.duplicates > 0 {
        eprintln!(
            "mpscan merge: warning: {} rows repeat a (ip, port, probe) already written and were dropped: \
             was a file given twice, or are two scans mixed?",
            stats.duplicates
        );
    }
    let Some(mut merged) = merged else {
        eprintln!("mpscan merge: no --metadata given: cannot check that the shards are one complete scan");
        return Ok(());
    };
    merged.rows = stats.written;
    merged.merge.duplicate_rows = Some(stats.duplicates);
    let missing = merged.merge.missing_shards.clone().unwrap_or_default();
    if !missing.is_empty() {
        eprintln!(
            "mpscan merge: warning: shard(s) {} of {} missing: the merged scan is incomplete",
            missing.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", "),
            merged.config.shards
        );
    } else if merged.merge.complete == Some(false) {
        eprintln!("mpscan merge: warning: every shard is there, but not every target was probed (interrupted or limited shards)");
    }
    if let Some(p) = &a.merged_metadata {
        merged.write(p)?;
    }
    Ok(())
}

/// Concatenates result files into `out`, dropping rows whose (ip, port, probe) key was
/// already written. Rows are read with the schema's reader (a row it cannot parse stops the
/// merge, naming the file and line) and copied unchanged.
pub fn merge_rows(inputs: &[PathBuf], out: &Path) -> anyhow::Result<RowStats> {
    let mut w = csv::Writer::from_path(out).with_context(|| format!("cannot write {}", out.display()))?;
    let mut header: Option<csv::ByteRecord> = None;
    let mut seen: HashSet<(Ip, u16, ProbeVersion)> = HashSet::new();
    let mut stats = RowStats::default();
    let mut rec = csv::ByteRecord::new();
    for p in inputs {
        let mut f = ResultFile::open(p, &[Col::Ip, Col::Port, Col::Probe])
            .with_context(|| format!("{} is not a result file", p.display()))?;
        match &header {
            None => {
                w.write_byte_record(&f.header)?;
                header = Some(f.header.clone());
            }
            Some(first) if *first != f.header => {
                bail!(
                    "{} has other columns than {}: merge files of one mpscan version",
                    p.display(),
                    inputs[0].display()
                )
            }
            Some(_) => {}
        }
        let mut n = 0;
        while f.next_record(&mut rec)? {
            n += 1;
            let r = mpscan_schema::RowRef::parse(&rec, &f.cols)
                .map_err(|e| anyhow::anyhow!("{}:{}: {e}", p.display(), f.line()))?;
            if seen.insert((r.ip, r.port, r.probe)) {
                w.write_byte_record(&rec)?;
                stats.written += 1;
            } else {
                stats.duplicates += 1;
            }
        }
        stats.per_input.push(n);
    }
    w.flush().with_context(|| format!("writing {}", out.display()))?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpscan_schema::COLUMNS;

    #[test]
    fn rows_concatenate_without_duplicate_keys() {
        let dir = std::env::temp_dir().join(format!("mpscan-merge-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let h = COLUMNS.join(",");
        let row = |ip: &str, port: u16, probe: &str, class: &str| {
            format!("{ip},{port},{probe},{class},{ip},,,,,false,false,64,0,2026-11-21T18:00:00.000000Z,\n")
        };
        let a = dir.join("a.csv");
        let b = dir.join("b.csv");
        std::fs::write(
            &a,
            format!("{h}\n{}{}", row("198.51.100.1", 80, "v1", "closed"), row("2001:db8::1", 443, "v1", "tcp")),
        )
        .unwrap();
        std::fs::write(
            &b,
            format!("{h}\n{}{}", row("198.51.100.1", 80, "v0", "closed"), row("198.51.100.1", 80, "v1", "closed")),
        )
        .unwrap();
        let out = dir.join("all.csv");
        let s = merge_rows(&[a.clone(), b.clone()], &out).unwrap();
        assert_eq!(s, RowStats { per_input: vec![2, 2], written: 3, duplicates: 1 });
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text.lines().count(), 4);
        assert!(text.starts_with(&h));
        // A file that is not a result file.
        let bad = dir.join("bad.csv");
        std::fs::write(&bad, "x,y\n1,2\n").unwrap();
        let e = merge_rows(&[bad], &out).unwrap_err();
        assert!(e.to_string().contains("not a result file"), "{e}");
        // Output that is also an input is refused.
        let e = run(&MergeArgs { inputs: vec![a.clone()], metadata: vec![], output: a.clone(), merged_metadata: None })
            .unwrap_err();
        assert!(e.to_string().contains("also an input"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
