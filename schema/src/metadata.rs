//! The scan's metadata JSON, typed once: what the scanner writes at the end of a scan (the full
//! configuration with seed and shard, times, and every counter, so a result file can be judged
//! and reproduced), what `mpscan merge` writes for a sharded scan ([`Metadata::merge`]), and what
//! the analysis reads. One shape for all three.
//!
//! Reading is lenient where files of older versions (or synthetic scans) lack a field: every
//! field but `targets_probed` has a default, and unknown fields are ignored, so the scanner can
//! grow its metadata without breaking readers.

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Said in every scan's metadata next to its seed: the seed derives the scan's validation secret
/// (the keyed hash of its probes), which is what `mpscan reclassify` needs to re-read the scan's
/// `--pcap` recording, and what would let someone forge answers.
pub const SEED_NOTE: &str = "The seed derives this scan's validation secret: whoever holds this file can \
forge answers to this scan's probes, and only to them, after the fact (keep it with the scan's --pcap file: mpscan \
reclassify needs it)";

/// The configuration as recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigRecord {
    /// Target arguments as given.
    pub targets: Vec<String>,
    /// Ports probed.
    pub ports: Vec<u16>,
    /// Packets per second asked (0: unlimited).
    pub rate: u64,
    /// `v0`/`v1`.
    pub probe_versions: Vec<String>,
    /// Probes per target and version.
    pub probes_per_target: u32,
    /// Seconds of cooldown.
    pub cooldown_secs: f64,
    /// The seed.
    pub seed: u64,
    /// What the seed gives away ([`SEED_NOTE`]), said plainly beside it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub seed_note: String,
    /// Number of shards (0 in a file that does not say: not a scan's metadata).
    pub shards: u32,
    /// This shard (null in a merged document, which covers them all).
    pub shard: Option<u32>,
    /// Sender threads.
    pub sender_threads: u32,
    /// Interface.
    pub interface: String,
    /// Source addresses: every one the scan sent from, IPv4 first, each family in the order of
    /// the index the keyed hash picks a probe's source by (the first of a family is the one the
    /// hash is computed over). Files of earlier versions hold one per family, which reads the
    /// same way.
    pub source_ip: Vec<String>,
    /// The probes' source ports, `[low, high]` (`--source-port`). Absent in files written before
    /// the option: those scans used 32768-65535.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ports: Option<[u16; 2]>,
    /// Gateway MAC (of IPv6 probes too, unless `gateway_mac6` is given).
    pub gateway_mac: String,
    /// The IPv6 router's MAC, when a scan of both families leaves through two routers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_mac6: Option<String>,
    /// Blocklist used (`builtin`, a path, or null).
    pub blocklist: Option<String>,
    /// Allowlist used.
    pub allowlist: Option<String>,
    /// Target limit.
    pub max_targets: Option<u64>,
    /// `--max-runtime`, seconds of sending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_runtime_secs: Option<f64>,
    /// `--max-results`, rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_results: Option<u64>,
    /// `--output-format` (`csv`, `jsonl`, `parquet`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_format: Option<String>,
    /// `-f`: the columns written, when not every one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_fields: Option<Vec<String>>,
    /// `--classes`: the classes whose rows were written, when not every one (the counts in
    /// `classes` cover them all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes_written: Option<Vec<String>>,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Who ran the scan.
    pub contact: Option<String>,
    /// How long a send error may last before the scan stops (`--send-error-grace`).
    pub send_error_grace_secs: f64,
}

/// How the scan rode through send errors (docs/ERRORS.md, "When the link goes down"). Flattened
/// into [`Metadata`], next to the other counters, and carried across `--resume` in the state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LinkReport {
    /// Send errors by errno name (`ENETDOWN`, `ENOBUFS`, ..., `ring-stuck` for a transmit ring
    /// that did not drain): each stall counts the error that began it, and ENOBUFS/EAGAIN also
    /// count each refusal the transmit back end retried by itself.
    pub send_errors: BTreeMap<String, u64>,
    /// Times a sender stopped to wait for the link.
    pub stalls: u64,
    /// Seconds spent waiting, summed over senders.
    pub stall_secs: f64,
    /// Probes handed to the kernel again after a stall (their first hand-over failed).
    pub probes_resent: u64,
}

impl LinkReport {
    /// Adds `other`'s counts to these (shards of one scan, or a scan and its resumed part).
    pub fn add(&mut self, other: &LinkReport) {
        for (e, n) in &other.send_errors {
            *self.send_errors.entry(e.clone()).or_default() += n;
        }
        self.stalls += other.stalls;
        self.stall_secs += other.stall_secs;
        self.probes_resent += other.probes_resent;
    }
}

/// The machine a scan (or one shard) ran from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Vantage {
    /// The shard this was (in a merged document's `vantage_points`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
    /// The host name.
    pub host_name: String,
    /// The addresses of the interface the scan sent from.
    pub addresses: Vec<String>,
}

/// What only a merged document has (`mpscan merge`): which shards it joins and whether they
/// are the whole scan. Every field is absent from one scanner's metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MergeRecord {
    /// The shards' metadata files, as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_from: Option<Vec<String>>,
    /// Shard indexes given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards_present: Option<Vec<u32>>,
    /// Shard indexes no metadata was given for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_shards: Option<Vec<u32>>,
    /// Every shard is there, none was interrupted, and their `targets_probed` add up to
    /// `targets_total`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub complete: Option<bool>,
    /// The shards' own row counts, summed (before duplicates were dropped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_in_shards: Option<u64>,
    /// Each shard's vantage point, in shard order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vantage_points: Option<Vec<Vantage>>,
    /// Rows dropped by the merge because their (ip, port, probe) was already written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_rows: Option<u64>,
}

/// The whole metadata document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// Always `mpscan`.
    #[serde(default)]
    pub tool: String,
    /// Tool version.
    #[serde(default)]
    pub version: String,
    /// The command line (absent from a merged document: each shard had its own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command_line: Vec<String>,
    /// Configuration.
    #[serde(default)]
    pub config: ConfigRecord,
    /// Start, RFC 3339.
    #[serde(default)]
    pub start_time: String,
    /// End, RFC 3339.
    #[serde(default)]
    pub end_time: String,
    /// Stopped before every target was probed (signal, error or a limit).
    #[serde(default)]
    pub interrupted: bool,
    /// Why the scan ended: `completed`, `signal`, `error`, `max-runtime` or `max-results` (empty
    /// in files of older versions; in a merged document, the shards' reasons joined by commas).
    #[serde(default)]
    pub end_reason: String,
    /// Continued from a state file (`--resume`): the counters cover the whole scan.
    #[serde(default)]
    pub resumed: bool,
    /// (address, port) pairs in the whole space after block/allow lists.
    #[serde(default)]
    pub targets_total: u64,
    /// Addresses the blocklist removed from the targets.
    #[serde(default)]
    pub addresses_blocked: u64,
    /// (address, port) pairs sent to by this shard.
    pub targets_probed: u64,
    /// Packets sent.
    #[serde(default)]
    pub probes_sent: u64,
    /// Frames that reached the receiver.
    #[serde(default)]
    pub responses_received: u64,
    /// Frames that validated as answers to our probes.
    #[serde(default)]
    pub responses_validated: u64,
    /// Frames rejected.
    #[serde(default)]
    pub responses_invalid: u64,
    /// Rejections by reason.
    #[serde(default)]
    pub invalid_reasons: BTreeMap<String, u64>,
    /// Validated answers for a (target, port, version) that already had a row.
    #[serde(default)]
    pub duplicates: u64,
    /// Frames the kernel dropped before we could read them.
    #[serde(default)]
    pub kernel_drops: u64,
    /// Rows per probe version and class.
    #[serde(default)]
    pub classes: BTreeMap<String, BTreeMap<String, u64>>,
    /// `mpscan trace`: verdicts per family, hop rows and answers (absent for a scan, whose
    /// `classes` count its rows; a trace's `classes` are empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<crate::trace::TraceCounts>,
    /// Rows written.
    #[serde(default)]
    pub rows: u64,
    /// Send errors, stalls and probes sent again.
    #[serde(flatten)]
    pub link: LinkReport,
    /// `--notes`, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// `--user-metadata`, the JSON as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_metadata: Option<serde_json::Value>,
    /// Where the scan ran from (absent in a merged document: see `vantage_points`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vantage: Option<Vantage>,
    /// The scan definition (`--config`) the scan ran, if any: path, values, overridden flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<serde_json::Value>,
    /// The shards a merged document joins (absent from one scanner's metadata).
    #[serde(flatten)]
    pub merge: MergeRecord,
}

impl Metadata {
    /// Reads one metadata file; errors name the file.
    pub fn read(path: &Path) -> anyhow::Result<Metadata> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("{}: cannot read metadata", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}: not valid mpscan metadata JSON", path.display()))
    }

    /// Writes the document to `path` (pretty-printed).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n")
            .map_err(|e| anyhow::anyhow!("cannot write the metadata file {}: {e}", path.display()))
    }

    /// Writes the document through a file opened beforehand by [`MetadataFile::open`].
    pub fn write_to(&self, out: &mut MetadataFile) -> anyhow::Result<()> {
        use std::io::{Seek, Write};
        let text = serde_json::to_string_pretty(self)? + "\n";
        let fail = |e: std::io::Error| anyhow::anyhow!("cannot write the metadata file {}: {e}", out.path.display());
        out.file.set_len(0).map_err(fail)?;
        out.file.rewind().map_err(fail)?;
        out.file.write_all(text.as_bytes()).map_err(fail)
    }

    /// Merges the metadata of a sharded scan's shards (each with the name errors give it) into
    /// one document. The shards must be of one scan (same seed, shard count, ports, versions,
    /// targets and target count) and each given once, or merging is refused. Counters are
    /// summed, times span the shards, and [`MergeRecord`] says which shards are missing and
    /// whether the scan is complete. `rows` is the shards' sum until the caller sets what it
    /// wrote.
    pub fn merge(shards: &[(String, Metadata)]) -> anyhow::Result<Metadata> {
        let Some((first_name, first)) = shards.first() else { bail!("no metadata to merge") };
        for (name, d) in shards {
            if d.config.shards == 0 {
                bail!("{name} is not an mpscan scan's metadata (no config.shards)");
            }
            let c = (&d.config, &first.config);
            let differs = [
                ("seed", c.0.seed != c.1.seed, c.0.seed.to_string(), c.1.seed.to_string()),
                ("shards", c.0.shards != c.1.shards, c.0.shards.to_string(), c.1.shards.to_string()),
                ("ports", c.0.ports != c.1.ports, format!("{:?}", c.0.ports), format!("{:?}", c.1.ports)),
                (
                    "probe_versions",
                    c.0.probe_versions != c.1.probe_versions,
                    format!("{:?}", c.0.probe_versions),
                    format!("{:?}", c.1.probe_versions),
                ),
                ("targets", c.0.targets != c.1.targets, format!("{:?}", c.0.targets), format!("{:?}", c.1.targets)),
            ];
            if let Some((k, _, this, theirs)) = differs.into_iter().find(|d| d.1) {
                bail!("{first_name} and {name} are not shards of one scan: config.{k} is {theirs} vs {this}");
            }
            if d.targets_total != first.targets_total {
                bail!("{first_name} and {name} are not shards of one scan: targets_total differs");
            }
        }
        let n = first.config.shards;
        let mut present = BTreeSet::new();
        for (name, d) in shards {
            let s = d.config.shard.with_context(|| format!("{name}: config.shard is not a number"))?;
            if s >= n {
                bail!("{name}: shard {s} is out of range for {n} shards");
            }
            if !present.insert(s) {
                bail!("shard {s} is given twice ({name}): give each shard's metadata once");
            }
        }
        let missing: Vec<u32> = (0..n).filter(|s| !present.contains(s)).collect();
        let mut out = Metadata {
            command_line: vec![],
            config: ConfigRecord { shard: None, ..first.config.clone() },
            start_time: shards.iter().map(|s| &s.1.start_time).min().cloned().unwrap_or_default(),
            end_time: shards.iter().map(|s| &s.1.end_time).max().cloned().unwrap_or_default(),
            targets_probed: 0,
            probes_sent: 0,
            responses_received: 0,
            responses_validated: 0,
            responses_invalid: 0,
            invalid_reasons: BTreeMap::new(),
            duplicates: 0,
            kernel_drops: 0,
            classes: BTreeMap::new(),
            rows: 0,
            link: LinkReport::default(),
            trace: None,
            vantage: None,
            end_reason: String::new(),
            ..first.clone()
        };
        let mut reasons: Vec<&str> = shards.iter().map(|s| s.1.end_reason.as_str()).filter(|r| !r.is_empty()).collect();
        reasons.sort_unstable();
        reasons.dedup();
        out.end_reason = reasons.join(",");
        let mut vantage: Vec<Vantage> = shards
            .iter()
            .filter_map(|(_, d)| d.vantage.clone().map(|v| Vantage { shard: d.config.shard, ..v }))
            .collect();
        vantage.sort_by_key(|v| v.shard);
        for (_, d) in shards {
            out.add_counts(d);
        }
        let complete = missing.is_empty() && !out.interrupted && out.targets_probed == first.targets_total;
        out.merge = MergeRecord {
            merged_from: Some(shards.iter().map(|s| s.0.clone()).collect()),
            shards_present: Some(present.into_iter().collect()),
            missing_shards: Some(missing),
            complete: Some(complete),
            rows_in_shards: Some(out.rows),
            vantage_points: (!vantage.is_empty()).then_some(vantage),
            duplicate_rows: None,
        };
        Ok(out)
    }

    /// Adds one shard's counters to these.
    fn add_counts(&mut self, d: &Metadata) {
        self.interrupted |= d.interrupted;
        self.resumed |= d.resumed;
        self.targets_probed += d.targets_probed;
        self.probes_sent += d.probes_sent;
        self.responses_received += d.responses_received;
        self.responses_validated += d.responses_validated;
        self.responses_invalid += d.responses_invalid;
        self.duplicates += d.duplicates;
        self.kernel_drops += d.kernel_drops;
        self.rows += d.rows;
        for (k, v) in &d.invalid_reasons {
            *self.invalid_reasons.entry(k.clone()).or_default() += v;
        }
        for (ver, per) in &d.classes {
            let mine = self.classes.entry(ver.clone()).or_default();
            for (c, v) in per {
                *mine.entry(c.clone()).or_default() += v;
            }
        }
        self.link.add(&d.link);
        if let Some(t) = &d.trace {
            self.trace.get_or_insert_with(Default::default).merge(t);
        }
    }
}

/// A metadata file opened when the scan starts and written when it ends. Opening it up front
/// makes a path that cannot be written fail before the first probe, not after days of scanning,
/// and lets a scan that dropped root's powers once its files were open still write it. An
/// existing file is left as it is until then (a resumed scan's old document stays readable).
#[derive(Debug)]
pub struct MetadataFile {
    path: std::path::PathBuf,
    file: std::fs::File,
}

impl MetadataFile {
    /// Opens (creating, not truncating) `path` for writing.
    pub fn open(path: &Path) -> anyhow::Result<MetadataFile> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| anyhow::anyhow!("cannot write the metadata file {}: {e}", path.display()))?;
        Ok(MetadataFile { path: path.to_path_buf(), file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn meta(shard: u32, shards: u32, probed: u64, rows: u64) -> (String, Metadata) {
        let v = json!({
            "tool": "mpscan", "version": "0.1.0", "command_line": ["mpscan", "scan"],
            "config": { "seed": 9, "shards": shards, "shard": shard, "ports": [80, 443], "probe_versions": ["v1"],
                        "targets": ["198.51.100.0/24"] },
            "start_time": format!("2026-11-21T18:00:0{shard}Z"), "end_time": format!("2026-11-21T19:00:0{shard}Z"),
            "interrupted": false, "targets_total": 30, "addresses_blocked": 0,
            "targets_probed": probed, "probes_sent": probed, "responses_received": rows + 1, "responses_validated": rows,
            "responses_invalid": 1, "invalid_reasons": { "not-ours": 1 }, "duplicates": 0, "kernel_drops": 0,
            "classes": { "v1": { "mptcp": rows / 2, "closed": rows - rows / 2 } }, "rows": rows,
            "send_errors": { "ENOBUFS": 2 }, "stalls": 1, "stall_secs": 0.5, "probes_resent": 3
        });
        (format!("s{shard}.json"), serde_json::from_value(v).unwrap())
    }

    fn json_of(m: &Metadata) -> Value {
        serde_json::to_value(m).unwrap()
    }

    #[test]
    fn counters_add_up_and_a_complete_scan_says_so() {
        let m = json_of(&Metadata::merge(&[meta(0, 3, 10, 4), meta(2, 3, 10, 6), meta(1, 3, 10, 2)]).unwrap());
        assert_eq!(m["targets_probed"], 30);
        assert_eq!(m["rows"], 12);
        assert_eq!(m["rows_in_shards"], 12);
        assert_eq!(m["responses_received"], 15);
        assert_eq!(m["invalid_reasons"]["not-ours"], 3);
        assert_eq!(m["classes"]["v1"]["mptcp"], 2 + 3 + 1);
        assert_eq!(m["send_errors"]["ENOBUFS"], 6);
        assert_eq!(
            (m["stalls"].clone(), m["stall_secs"].clone(), m["probes_resent"].clone()),
            (json!(3), json!(1.5), json!(9))
        );
        assert_eq!(m["missing_shards"], json!([]));
        assert_eq!(m["shards_present"], json!([0, 1, 2]));
        assert_eq!(m["merged_from"], json!(["s0.json", "s2.json", "s1.json"]));
        assert_eq!(m["complete"], true);
        assert_eq!(m["config"]["shard"], Value::Null);
        assert_eq!(m["config"]["seed"], 9);
        assert_eq!(m["start_time"], "2026-11-21T18:00:00Z");
        assert_eq!(m["end_time"], "2026-11-21T19:00:02Z");
        assert!(m.get("command_line").is_none() && m.get("duplicate_rows").is_none());
    }

    #[test]
    fn the_merge_records_every_shards_vantage_point_and_end_reason() {
        let mut shards = [meta(1, 2, 15, 3), meta(0, 2, 15, 3)];
        for (i, (_, m)) in shards.iter_mut().enumerate() {
            m.vantage =
                Some(Vantage { shard: None, host_name: format!("scan{i}"), addresses: vec![format!("192.0.2.{i}")] });
            m.end_reason = if i == 0 { "completed".into() } else { "max-runtime".into() };
        }
        let m = Metadata::merge(&shards).unwrap();
        let v = m.merge.vantage_points.unwrap();
        assert_eq!(
            v.iter().map(|v| (v.shard, v.host_name.as_str())).collect::<Vec<_>>(),
            [(Some(0), "scan1"), (Some(1), "scan0")]
        );
        assert_eq!(m.vantage, None);
        assert_eq!(m.end_reason, "completed,max-runtime");
    }

    #[test]
    fn missing_shard_is_flagged() {
        let m = Metadata::merge(&[meta(0, 7, 5, 1), meta(1, 7, 5, 1), meta(3, 7, 5, 1)]).unwrap();
        assert_eq!(m.merge.missing_shards, Some(vec![2, 4, 5, 6]));
        assert_eq!(m.merge.complete, Some(false));
    }

    #[test]
    fn shards_of_different_scans_or_twice_the_same_are_refused() {
        let mut other = meta(1, 3, 10, 1);
        other.1.config.seed = 10;
        let e = Metadata::merge(&[meta(0, 3, 10, 1), other]).unwrap_err();
        assert!(e.to_string().contains("config.seed is 9 vs 10"), "{e}");
        let e = Metadata::merge(&[meta(0, 3, 10, 1), meta(1, 4, 10, 1)]).unwrap_err();
        assert!(e.to_string().contains("config.shards"), "{e}");
        let e = Metadata::merge(&[meta(0, 3, 10, 1), meta(0, 3, 10, 1)]).unwrap_err();
        assert!(e.to_string().contains("given twice"), "{e}");
        let e = Metadata::merge(&[meta(5, 3, 10, 1)]).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
        let mut unsharded = meta(0, 3, 10, 1);
        unsharded.1.config.shard = None;
        let e = Metadata::merge(&[unsharded]).unwrap_err();
        assert!(e.to_string().contains("config.shard is not a number"), "{e}");
        let not_a_scan: Metadata = serde_json::from_str(r#"{"targets_probed": 1}"#).unwrap();
        let e = Metadata::merge(&[("x.json".into(), not_a_scan)]).unwrap_err();
        assert!(e.to_string().contains("x.json is not an mpscan"), "{e}");
    }

    #[test]
    fn a_file_opened_up_front_keeps_the_old_document_until_written_and_then_holds_only_the_new() {
        let path = std::env::temp_dir().join(format!("mpscan-metafile-{}.json", std::process::id()));
        let (_, long) = meta(0, 1, 30, 20);
        let mut short = long.clone();
        short.notes = None;
        short.classes.clear();
        long.write(&path).unwrap();
        let before = std::fs::read_to_string(&path).unwrap();
        let mut f = MetadataFile::open(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before, "opening must not truncate");
        short.write_to(&mut f).unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        assert!(after.len() < before.len());
        assert_eq!(json_of(&Metadata::read(&path).unwrap()), json_of(&short), "no tail of the old document");
        std::fs::remove_file(&path).unwrap();
        let dir = path.with_extension("missing-dir").join("m.json");
        let e = MetadataFile::open(&dir).unwrap_err().to_string();
        assert!(e.contains("cannot write the metadata file") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn a_scanners_document_round_trips_and_old_files_read() {
        let (_, m) = meta(0, 1, 10, 4);
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Metadata>(&text).unwrap(), m);
        // One scanner's document has none of the merge's fields.
        let v = json_of(&m);
        for k in ["merged_from", "shards_present", "missing_shards", "complete", "rows_in_shards", "duplicate_rows"] {
            assert!(v.get(k).is_none(), "{k}");
        }
        // A file of an older version: no link counters, no config fields beyond a few.
        let old: Metadata =
            serde_json::from_str(r#"{"config":{"ports":[443]},"targets_probed":10,"extra":1}"#).unwrap();
        assert_eq!((old.targets_probed, old.config.ports.clone(), old.link.stalls), (10, vec![443], 0));
        // Without targets_probed it is not metadata.
        let e = serde_json::from_str::<Metadata>(r#"{"config":{}}"#).unwrap_err();
        assert!(e.to_string().contains("targets_probed"), "{e}");
    }
}
