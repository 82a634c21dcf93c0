//! The scan's metadata JSON (one per shard, or one merged document), read as the result schema
//! types it (`mpscan_schema::Metadata`) and summed over shards: how many targets were probed, on
//! which ports, with which probe versions, and whether the scan is whole.

use anyhow::Result;
use mpscan_schema::Metadata;
use std::path::PathBuf;

/// The metadata of all shards of a scan, summed.
#[derive(Debug, Clone, Default)]
pub struct ScanMeta {
    /// Sum of `targets_probed` over shards.
    pub targets_probed: u64,
    /// Ports of the scan (union over shards, sorted).
    pub ports: Vec<u16>,
    /// Probe versions of the scan (union over shards).
    pub probe_versions: Vec<String>,
    /// Number of metadata files read.
    pub files: usize,
    /// Some shard was interrupted.
    pub interrupted: bool,
    /// Shard numbers read, to spot a missing shard.
    pub shards_seen: Vec<u32>,
    /// Declared shard count, if any file said.
    pub shards_declared: Option<u32>,
    /// Sum over shards of the scanner's own per-(probe, class) row counts.
    pub classes: std::collections::BTreeMap<(String, String), u64>,
    /// Send errors by errno name, summed over shards.
    pub send_errors: std::collections::BTreeMap<String, u64>,
    /// Times a scanner waited for its link, and the seconds it waited, summed over shards.
    pub stalls: u64,
    /// See `stalls`.
    pub stall_secs: f64,
    /// `mpscan trace`'s counts, summed over the files that have them.
    pub trace: Option<mpscan_schema::trace::TraceCounts>,
}

impl ScanMeta {
    /// Read and sum the metadata files of one scan.
    pub fn read_all(paths: &[PathBuf]) -> Result<ScanMeta> {
        let mut m = ScanMeta::default();
        for p in paths {
            let md = Metadata::read(p)?;
            m.targets_probed += md.targets_probed;
            m.interrupted |= md.interrupted;
            for port in md.config.ports {
                if !m.ports.contains(&port) {
                    m.ports.push(port);
                }
            }
            for v in md.config.probe_versions {
                if !m.probe_versions.contains(&v) {
                    m.probe_versions.push(v);
                }
            }
            if let Some(s) = md.config.shard {
                m.shards_seen.push(s);
            }
            // A merged document covers the shards it lists.
            m.shards_seen.extend(md.merge.shards_present.iter().flatten());
            m.shards_declared = m.shards_declared.or((md.config.shards > 0).then_some(md.config.shards));
            for (probe, per) in md.classes {
                for (class, n) in per {
                    *m.classes.entry((probe.clone(), class)).or_insert(0) += n;
                }
            }
            for (e, n) in md.link.send_errors {
                *m.send_errors.entry(e).or_insert(0) += n;
            }
            m.stalls += md.link.stalls;
            m.stall_secs += md.link.stall_secs;
            if let Some(t) = &md.trace {
                m.trace.get_or_insert_with(Default::default).merge(t);
            }
            m.files += 1;
        }
        m.ports.sort_unstable();
        Ok(m)
    }

    /// Addresses probed on `port` (`None` = all ports) with probe `version`, if the metadata says.
    /// Every address of a scan is probed on every port, so one port gets `targets_probed / ports`.
    pub fn probed(&self, port: Option<u16>, version: &str) -> Option<u64> {
        if self.files == 0 || !self.probe_versions.iter().any(|v| v == version) {
            return None;
        }
        match port {
            None => Some(self.targets_probed),
            Some(p) if self.ports.contains(&p) => Some(self.targets_probed / self.ports.len() as u64),
            Some(_) => Some(0),
        }
    }

    /// Warnings a reader should see: missing shards, an interrupted scan.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = vec![];
        if self.interrupted {
            w.push("the scan was interrupted: addresses probed is what was sent, not the whole target set".into());
        }
        if self.stalls > 0 {
            w.push(format!(
                "the scanner waited {} time(s) for its link ({:.1} s in all): answers in flight when it went down were lost",
                self.stalls, self.stall_secs
            ));
        }
        if let Some(n) = self.shards_declared {
            if n > 1 && (self.shards_seen.len() as u32) < n {
                w.push(format!(
                    "metadata for {} of {} shards: addresses probed is incomplete",
                    self.shards_seen.len(),
                    n
                ));
            }
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn meta(json: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(json.as_bytes()).unwrap();
        f
    }

    #[test]
    fn shards_sum_and_ports_split() {
        let a = meta(
            r#"{"tool":"mpscan","config":{"ports":[80,443],"probe_versions":["v1","v0"],"shards":2,"shard":0},"targets_probed":1000,"extra":1}"#,
        );
        let b = meta(
            r#"{"config":{"ports":[443,80],"probe_versions":["v1"],"shards":2,"shard":1},"targets_probed":600,"classes":{"v1":{"echo":2}}}"#,
        );
        let c = meta(r#"{"targets_probed":0,"classes":{"v1":{"echo":3}}}"#);
        let m = ScanMeta::read_all(&[a.path().into(), b.path().into(), c.path().into()]).unwrap();
        assert_eq!(m.classes.get(&("v1".to_string(), "echo".to_string())), Some(&5));
        assert_eq!(m.targets_probed, 1600);
        assert_eq!(m.ports, vec![80, 443]);
        assert_eq!(m.probed(None, "v1"), Some(1600));
        assert_eq!(m.probed(Some(443), "v0"), Some(800));
        assert_eq!(m.probed(Some(22), "v0"), Some(0));
        assert!(m.warnings().is_empty());
        let m1 = ScanMeta::read_all(&[a.path().into()]).unwrap();
        assert!(m1.warnings()[0].contains("1 of 2 shards"));
        assert_eq!(ScanMeta::default().probed(None, "v1"), None);
    }

    #[test]
    fn a_merged_document_covers_its_shards() {
        let merged = meta(
            r#"{"config":{"ports":[443],"probe_versions":["v1"],"shards":3,"shard":null},"targets_probed":900,"shards_present":[0,1,2],"missing_shards":[],"complete":true}"#,
        );
        let m = ScanMeta::read_all(&[merged.path().into()]).unwrap();
        assert_eq!((m.shards_declared, m.shards_seen.clone()), (Some(3), vec![0, 1, 2]));
        assert!(m.warnings().is_empty(), "{:?}", m.warnings());
        let partial = meta(
            r#"{"config":{"shards":3,"shard":null},"targets_probed":600,"shards_present":[0,2],"missing_shards":[1]}"#,
        );
        let m = ScanMeta::read_all(&[partial.path().into()]).unwrap();
        assert!(m.warnings()[0].contains("2 of 3 shards"), "{:?}", m.warnings());
    }

    #[test]
    fn link_counts_are_read_from_new_files_and_absent_from_old_ones() {
        let old = meta(r#"{"targets_probed":10}"#);
        let new = meta(
            r#"{"targets_probed":10,"send_errors":{"ENETDOWN":2,"ENOBUFS":5},"stalls":2,"stall_secs":3.5,"probes_resent":40}"#,
        );
        let m = ScanMeta::read_all(&[old.path().into()]).unwrap();
        assert!(m.send_errors.is_empty() && m.stalls == 0 && m.warnings().is_empty());
        let m = ScanMeta::read_all(&[old.path().into(), new.path().into(), new.path().into()]).unwrap();
        assert_eq!(m.send_errors.get("ENETDOWN"), Some(&4));
        assert_eq!((m.stalls, m.stall_secs), (4, 7.0));
        assert!(m.warnings()[0].contains("waited 4 time(s) for its link (7.0 s"), "{:?}", m.warnings());
    }

    #[test]
    fn trace_counts_are_summed_over_shards_and_absent_for_a_scan() {
        let scan = meta(r#"{"targets_probed":10}"#);
        assert_eq!(ScanMeta::read_all(&[scan.path().into()]).unwrap().trace, None);
        let t = meta(
            r#"{"targets_probed":16,"trace":{"max_ttl":8,"verdicts":{"ipv4":{"intact":3,"removed-at":1}},"hop_rows":16,"answers":{"icmp":14,"syn-ack":2},"quotes":{"intact":12,"removed":2},"seq_rewritten":0}}"#,
        );
        let m = ScanMeta::read_all(&[t.path().into(), scan.path().into(), t.path().into()]).unwrap();
        let c = m.trace.unwrap();
        assert_eq!((c.verdict("intact"), c.verdict("removed-at"), c.hop_rows, c.answers["icmp"]), (6, 2, 32, 28));
    }

    #[test]
    fn bad_metadata_is_an_error_naming_the_file() {
        let f = meta(r#"{"config":{}}"#);
        let e = format!("{:#}", ScanMeta::read_all(&[f.path().into()]).unwrap_err());
        assert!(e.contains("targets_probed") && e.contains(&f.path().display().to_string()), "{e}");
    }
}
