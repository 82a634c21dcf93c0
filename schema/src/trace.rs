//! The outputs of `mpscan trace`, written once for the scanner and for analysis: the verdict
//! names, the counts of its metadata JSON ([`TraceCounts`]), and the hop and verdict files'
//! columns.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The verdicts of a trace, in table order (the verdicts CSV's `verdict` column).
pub const VERDICTS: [&str; 5] = ["intact", "removed-at", "modified-at", "answered-on-path", "unknown"];

/// The address families, as the counts spell them.
pub const FAMILIES: [&str; 2] = ["ipv4", "ipv6"];

/// What a trace counted, in its metadata JSON under `trace` (a scan's metadata has none): the
/// verdicts per family and the answers behind them, so that a trace's results can be judged
/// without reading its files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceCounts {
    /// The highest TTL / hop limit probed.
    pub max_ttl: u8,
    /// Verdicts per family (`ipv4`, `ipv6`), then per verdict ([`VERDICTS`], every one present,
    /// zeros included): one per traced (target, port, version) that got any answer.
    pub verdicts: BTreeMap<String, BTreeMap<String, u64>>,
    /// Hop rows written (validated answers, one per probe and kind of answer).
    pub hop_rows: u64,
    /// Hop rows by kind of answer: `icmp`, `syn-ack`, `rst`.
    pub answers: BTreeMap<String, u64>,
    /// ICMP hop rows by what the quote says of MP_CAPABLE: `intact`, `removed`, `modified`,
    /// `unknown`.
    pub quotes: BTreeMap<String, u64>,
    /// ICMP hop rows whose quoted sequence number was rewritten on the way (the TTL came from the
    /// IPv4 IP ID).
    pub seq_rewritten: u64,
}

impl TraceCounts {
    /// Empty counts for a trace up to `max_ttl`, with every family and verdict at zero.
    pub fn new(max_ttl: u8) -> TraceCounts {
        let zeros: BTreeMap<String, u64> = VERDICTS.iter().map(|v| (v.to_string(), 0)).collect();
        TraceCounts {
            max_ttl,
            verdicts: FAMILIES.iter().map(|f| (f.to_string(), zeros.clone())).collect(),
            ..TraceCounts::default()
        }
    }

    /// Counts one verdict of a target of `family`.
    pub fn add_verdict(&mut self, family: &str, verdict: &str) {
        *self.verdicts.entry(family.to_string()).or_default().entry(verdict.to_string()).or_default() += 1;
    }

    /// Verdicts of one kind over both families.
    pub fn verdict(&self, verdict: &str) -> u64 {
        self.verdicts.values().filter_map(|per| per.get(verdict)).sum()
    }

    /// Every verdict of every family.
    pub fn total_verdicts(&self) -> u64 {
        self.verdicts.values().flat_map(|per| per.values()).sum()
    }

    /// Adds the counts of another shard (or run) of the same trace.
    pub fn merge(&mut self, other: &TraceCounts) {
        self.max_ttl = self.max_ttl.max(other.max_ttl);
        for (fam, per) in &other.verdicts {
            for (v, n) in per {
                *self.verdicts.entry(fam.clone()).or_default().entry(v.clone()).or_default() += n;
            }
        }
        self.hop_rows += other.hop_rows;
        for (k, n) in &other.answers {
            *self.answers.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &other.quotes {
            *self.quotes.entry(k.clone()).or_default() += n;
        }
        self.seq_rewritten += other.seq_rewritten;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_start_at_zero_for_every_verdict_and_add_up() {
        let mut c = TraceCounts::new(16);
        assert_eq!(c.verdicts["ipv6"]["answered-on-path"], 0);
        assert_eq!(c.total_verdicts(), 0);
        c.add_verdict("ipv4", "removed-at");
        c.add_verdict("ipv6", "removed-at");
        c.add_verdict("ipv4", "intact");
        assert_eq!((c.verdict("removed-at"), c.verdict("intact"), c.total_verdicts()), (2, 1, 3));
        let mut d = TraceCounts::new(32);
        d.hop_rows = 5;
        d.add_verdict("ipv4", "unknown");
        c.merge(&d);
        assert_eq!((c.max_ttl, c.hop_rows, c.total_verdicts(), c.verdicts["ipv4"]["unknown"]), (32, 5, 4, 1));
        // The JSON round trip analysis relies on.
        let back: TraceCounts = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }
}
