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

use super::COLUMNS;
use anyhow::{bail, Context as _};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashSet};
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
            serde_json::from_str::<Value>(&text).with_context(|| format!("{} is not metadata JSON", p.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Check the metadata before writing anything.
    let merged = if docs.is_empty() { None } else { Some(merge_metadata(&docs, &a.metadata)?) };
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
    merged["rows"] = json!(stats.written);
    merged["duplicate_rows"] = json!(stats.duplicates);
    let missing = merged["missing_shards"].as_array().cloned().unwrap_or_default();
    if !missing.is_empty() {
        eprintln!(
            "mpscan merge: warning: shard(s) {} of {} missing: the merged scan is incomplete",
            missing.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", "),
            merged["config"]["shards"]
        );
    } else if merged["complete"] == false {
        eprintln!("mpscan merge: warning: every shard is there, but not every target was probed (interrupted or limited shards)");
    }
    if let Some(p) = &a.merged_metadata {
        std::fs::write(p, serde_json::to_string_pretty(&merged)? + "\n")
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(())
}

/// Concatenates result files into `out`, dropping rows whose (ip, port, probe) key was
/// already written.
pub fn merge_rows(inputs: &[PathBuf], out: &Path) -> anyhow::Result<RowStats> {
    let mut w = csv::Writer::from_path(out).with_context(|| format!("cannot write {}", out.display()))?;
    let mut header: Option<Vec<String>> = None;
    let mut seen: HashSet<(String, String, String)> = HashSet::new();
    let mut stats = RowStats::default();
    for p in inputs {
        let (h, records) = read_records(p)?;
        let key_at = |name: &str| {
            h.iter()
                .position(|c| c == name)
                .with_context(|| format!("{} has no {name:?} column: not a result file", p.display()))
        };
        let (ki, kp, kv) = (key_at("ip")?, key_at("port")?, key_at("probe")?);
        match &header {
            None => {
                w.write_record(&h)?;
                header = Some(h.clone());
            }
            Some(first) if *first != h => {
                bail!(
                    "{} has other columns than {}: merge files of one mpscan version",
                    p.display(),
                    inputs[0].display()
                )
            }
            Some(_) => {}
        }
        let mut n = 0;
        for r in records {
            let r = r?;
            n += 1;
            if r.len() != h.len() {
                bail!("{}: row {n} has {} fields for {} columns", p.display(), r.len(), h.len());
            }
            if seen.insert((r[ki].clone(), r[kp].clone(), r[kv].clone())) {
                w.write_record(&r)?;
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

type Records = Box<dyn Iterator<Item = anyhow::Result<Vec<String>>>>;

/// The header and records of a CSV or Parquet result file.
fn read_records(p: &Path) -> anyhow::Result<(Vec<String>, Records)> {
    if p.extension().is_some_and(|e| e == "parquet") {
        let recs = mpscan_schema::parquet_file::read_as_csv_records(p)?;
        return Ok((COLUMNS.iter().map(|s| s.to_string()).collect(), Box::new(recs.into_iter().map(Ok))));
    }
    let mut rdr = csv::Reader::from_path(p).with_context(|| format!("cannot read {}", p.display()))?;
    let h: Vec<String> =
        rdr.headers().with_context(|| format!("{}: no header", p.display()))?.iter().map(String::from).collect();
    let name = p.display().to_string();
    let it = rdr
        .into_records()
        .map(move |r| r.map(|r| r.iter().map(String::from).collect()).map_err(|e| anyhow::anyhow!("{name}: {e}")));
    Ok((h, Box::new(it)))
}

/// Counters that add up over shards.
const SUMMED: [&str; 8] = [
    "targets_probed",
    "probes_sent",
    "responses_received",
    "responses_validated",
    "responses_invalid",
    "duplicates",
    "kernel_drops",
    "rows",
];

/// Configuration keys every shard of one scan shares.
const SHARED_CONFIG: [&str; 5] = ["seed", "shards", "ports", "probe_versions", "targets"];

/// Merges the shards' metadata documents (`paths` name them in errors).
pub fn merge_metadata(docs: &[Value], paths: &[PathBuf]) -> anyhow::Result<Value> {
    let name = |i: usize| paths.get(i).map_or(format!("metadata #{i}"), |p| p.display().to_string());
    let first = &docs[0];
    for (i, d) in docs.iter().enumerate() {
        if d.get("config").is_none() || d.get("targets_total").is_none() {
            bail!("{} is not an mpscan scan's metadata (no config / targets_total)", name(i));
        }
        for k in SHARED_CONFIG {
            if d["config"][k] != first["config"][k] {
                bail!(
                    "{} and {} are not shards of one scan: config.{k} is {} vs {}",
                    name(0),
                    name(i),
                    first["config"][k],
                    d["config"][k]
                );
            }
        }
        if d["targets_total"] != first["targets_total"] {
            bail!("{} and {} are not shards of one scan: targets_total differs", name(0), name(i));
        }
    }
    let shards = first["config"]["shards"].as_u64().context("config.shards is not a number")?;
    let mut present = BTreeSet::new();
    for (i, d) in docs.iter().enumerate() {
        let s = d["config"]["shard"].as_u64().with_context(|| format!("{}: config.shard is not a number", name(i)))?;
        if s >= shards {
            bail!("{}: shard {s} is out of range for {shards} shards", name(i));
        }
        if !present.insert(s) {
            bail!("shard {s} is given twice ({}): give each shard's metadata once", name(i));
        }
    }
    let missing: Vec<u64> = (0..shards).filter(|s| !present.contains(s)).collect();

    let mut out = Map::new();
    out.insert("tool".into(), first["tool"].clone());
    out.insert("version".into(), first["version"].clone());
    out.insert("merged_from".into(), json!(paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>()));
    let mut config = first["config"].clone();
    config["shard"] = Value::Null;
    out.insert("config".into(), config);
    out.insert("shards_present".into(), json!(present));
    out.insert("missing_shards".into(), json!(missing));
    let min = docs.iter().filter_map(|d| d["start_time"].as_str()).min();
    let max = docs.iter().filter_map(|d| d["end_time"].as_str()).max();
    out.insert("start_time".into(), json!(min));
    out.insert("end_time".into(), json!(max));
    let interrupted = docs.iter().any(|d| d["interrupted"] == true);
    out.insert("interrupted".into(), json!(interrupted));
    out.insert("targets_total".into(), first["targets_total"].clone());
    out.insert("addresses_blocked".into(), first["addresses_blocked"].clone());
    for k in SUMMED {
        out.insert(k.into(), json!(docs.iter().map(|d| d[k].as_u64().unwrap_or(0)).sum::<u64>()));
    }
    out.insert("rows_in_shards".into(), out["rows"].clone());
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    let mut classes: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for d in docs {
        for (k, v) in d["invalid_reasons"].as_object().into_iter().flatten() {
            *reasons.entry(k.clone()).or_default() += v.as_u64().unwrap_or(0);
        }
        for (ver, per) in d["classes"].as_object().into_iter().flatten() {
            for (c, v) in per.as_object().into_iter().flatten() {
                *classes.entry(ver.clone()).or_default().entry(c.clone()).or_default() += v.as_u64().unwrap_or(0);
            }
        }
    }
    out.insert("invalid_reasons".into(), json!(reasons));
    out.insert("classes".into(), json!(classes));
    let probed = out["targets_probed"].as_u64().unwrap_or(0);
    let complete = missing.is_empty() && !interrupted && Some(probed) == first["targets_total"].as_u64();
    out.insert("complete".into(), json!(complete));
    if let Some(d) = first.get("definition") {
        out.insert("definition".into(), d.clone());
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(shard: u64, shards: u64, probed: u64, rows: u64) -> Value {
        json!({
            "tool": "mpscan", "version": "0.1.0",
            "config": { "seed": 9, "shards": shards, "shard": shard, "ports": [80, 443], "probe_versions": ["v1"],
                        "targets": ["198.51.100.0/24"] },
            "start_time": format!("2026-11-21T18:00:0{shard}Z"), "end_time": format!("2026-11-21T19:00:0{shard}Z"),
            "interrupted": false, "targets_total": 30, "addresses_blocked": 0,
            "targets_probed": probed, "probes_sent": probed, "responses_received": rows + 1, "responses_validated": rows,
            "responses_invalid": 1, "invalid_reasons": { "not-ours": 1 }, "duplicates": 0, "kernel_drops": 0,
            "classes": { "v1": { "mptcp": rows / 2, "closed": rows - rows / 2 } }, "rows": rows
        })
    }

    fn paths(n: usize) -> Vec<PathBuf> {
        (0..n).map(|i| PathBuf::from(format!("s{i}.json"))).collect()
    }

    #[test]
    fn counters_add_up_and_a_complete_scan_says_so() {
        let docs = [meta(0, 3, 10, 4), meta(2, 3, 10, 6), meta(1, 3, 10, 2)];
        let m = merge_metadata(&docs, &paths(3)).unwrap();
        assert_eq!(m["targets_probed"], 30);
        assert_eq!(m["rows"], 12);
        assert_eq!(m["responses_received"], 15);
        assert_eq!(m["invalid_reasons"]["not-ours"], 3);
        assert_eq!(m["classes"]["v1"]["mptcp"], 2 + 3 + 1);
        assert_eq!(m["missing_shards"], json!([]));
        assert_eq!(m["shards_present"], json!([0, 1, 2]));
        assert_eq!(m["complete"], true);
        assert_eq!(m["config"]["shard"], Value::Null);
        assert_eq!(m["start_time"], "2026-11-21T18:00:00Z");
        assert_eq!(m["end_time"], "2026-11-21T19:00:02Z");
    }

    #[test]
    fn missing_shard_is_flagged() {
        let docs = [meta(0, 7, 5, 1), meta(1, 7, 5, 1), meta(3, 7, 5, 1)];
        let m = merge_metadata(&docs, &paths(3)).unwrap();
        assert_eq!(m["missing_shards"], json!([2, 4, 5, 6]));
        assert_eq!(m["complete"], false);
    }

    #[test]
    fn shards_of_different_scans_or_twice_the_same_are_refused() {
        let mut other = meta(1, 3, 10, 1);
        other["config"]["seed"] = json!(10);
        let e = merge_metadata(&[meta(0, 3, 10, 1), other], &paths(2)).unwrap_err();
        assert!(e.to_string().contains("config.seed"), "{e}");
        let e = merge_metadata(&[meta(0, 3, 10, 1), meta(1, 4, 10, 1)], &paths(2)).unwrap_err();
        assert!(e.to_string().contains("config.shards"), "{e}");
        let e = merge_metadata(&[meta(0, 3, 10, 1), meta(0, 3, 10, 1)], &paths(2)).unwrap_err();
        assert!(e.to_string().contains("given twice"), "{e}");
        let e = merge_metadata(&[meta(5, 3, 10, 1)], &paths(1)).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
        let e = merge_metadata(&[json!({"a": 1})], &paths(1)).unwrap_err();
        assert!(e.to_string().contains("not an mpscan"), "{e}");
    }

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
