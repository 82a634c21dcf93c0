//! The trace's receive loop, run by the scan's pipeline in place of the scan's
//! (`crate::scan::pipeline::run_receiving`): validate ([`super::answer`]), write each answer as a
//! hop row, keep the answers per (target, port, version), and judge each when receiving ends.
//!
//! The answers are kept in memory until the end (a few dozen bytes each, at most `--max-ttl`
//! plus the target's answers per traced target): fine for the thousands of targets a trace
//! follows up on, not for a whole-Internet trace. A resumed trace starts with the answers of its
//! hops file ([`Carried`]), so its verdicts cover the whole trace.
//!
//! Like the scan's receiver, it flushes the hops about once a second and publishes when it did,
//! so that the resume checkpoint saves only positions whose answers are in the file.

use super::answer::{Answer, TraceContext};
use super::rows::{hop_row, VerdictRow};
use super::verdict::judge;
use crate::accept::ResponseKind as Kind;
use crate::net::Receive;
use crate::probe::ProbeVersion;
use crate::scan::counters::Counters;
use crate::scan::recv::{publish, Published, RecvReport, FLUSH_INTERVAL};
use crate::scan::stop::Stop;
use mpscan_schema::trace::{HopSink, TraceCounts};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// What the trace's receiver writes to.
pub struct TraceSinks {
    /// The hops (CSV or Parquet).
    pub hops: Box<dyn HopSink>,
    /// The verdicts CSV, written whole when receiving ends.
    pub verdicts: csv::Writer<Box<dyn Write + Send>>,
}

/// What a resumed trace already had: the answers in its hops file and the saved counters.
#[derive(Debug, Default, Clone)]
pub struct Carried {
    /// The answers of the hops already written.
    pub answers: Vec<Answer>,
    /// Rejections so far.
    pub invalid: BTreeMap<String, u64>,
    /// Duplicates so far.
    pub duplicates: u64,
}

/// Counts one hop row: its kind of answer, and (ICMP) what its quote says.
fn count_hop(counts: &mut TraceCounts, a: &Answer) {
    counts.hop_rows += 1;
    let kind = match a.kind {
        Kind::Icmp { .. } => "icmp",
        Kind::SynAck => "syn-ack",
        Kind::Rst => "rst",
    };
    *counts.answers.entry(kind.to_string()).or_default() += 1;
    if let Some(q) = &a.quote {
        *counts.quotes.entry(q.mpc.label().to_string()).or_default() += 1;
    }
    counts.seq_rewritten += u64::from(a.seq_rewritten);
}

/// The key of one answer for the duplicate filter: one row per (probe, kind of answer), so a
/// router's second quote is a duplicate.
fn seen_key(a: &Answer) -> (IpAddr, u16, ProbeVersion, u8, bool) {
    (a.target, a.port, a.version, a.probe_ttl, a.quote.is_some())
}

/// Runs until `stop.receiving`; then judges every traced target and writes the verdicts. The
/// report's `trace` holds the counts (for the metadata).
pub fn trace_loop(
    rx: &mut dyn Receive,
    tctx: &TraceContext,
    sinks: &mut TraceSinks,
    counters: &Counters,
    stop: &Stop,
    carried: Carried,
    published: &Published,
) -> RecvReport {
    let mut report = RecvReport { duplicates: carried.duplicates, ..RecvReport::default() };
    let mut counts = TraceCounts::new(tctx.max_ttl);
    let mut invalid: HashMap<String, u64> = carried.invalid.into_iter().collect();
    let mut seen: HashSet<(IpAddr, u16, ProbeVersion, u8, bool)> = HashSet::new();
    let mut by_target: HashMap<(IpAddr, u16, ProbeVersion), Vec<Answer>> = HashMap::new();
    for a in carried.answers {
        seen.insert(seen_key(&a));
        count_hop(&mut counts, &a);
        Counters::add(&counters.rows, 1);
        by_target.entry((a.target, a.port, a.version)).or_default().push(a);
    }
    let publish = |invalid: &HashMap<String, u64>, dups: u64, flushed: Option<Instant>| {
        publish(published, invalid, dups, flushed)
    };
    publish(&invalid, report.duplicates, Some(Instant::now()));
    let mut last_flush = Instant::now();
    while !stop.receiving.load(Relaxed) {
        let r = rx.recv_batch(Duration::from_millis(50), &mut |frame: &[u8]| {
            Counters::add(&counters.received, 1);
            let a = match tctx.parse(frame, super::millis_since(*super::clock())) {
                Ok(a) => a,
                Err(why) => {
                    *invalid.entry(why.0.to_string()).or_default() += 1;
                    return;
                }
            };
            Counters::add(&counters.validated, 1);
            if !seen.insert(seen_key(&a)) {
                report.duplicates += 1;
                return;
            }
            if report.error.is_none() {
                if let Err(e) = sinks.hops.write(&hop_row(&a)) {
                    report.error = Some(format!("cannot write the hops: {e:#}"));
                    stop.stop_sending();
                }
            }
            Counters::add(&counters.rows, 1);
            count_hop(&mut counts, &a);
            by_target.entry((a.target, a.port, a.version)).or_default().push(a);
        });
        if let Err(e) = r {
            report.error.get_or_insert(format!("receiving failed: {e}"));
            stop.stop_sending();
            break;
        }
        if last_flush.elapsed() >= FLUSH_INTERVAL && report.error.is_none() {
            let at = Instant::now();
            match sinks.hops.flush() {
                Ok(()) => publish(&invalid, report.duplicates, Some(at)),
                Err(e) => {
                    report.error = Some(format!("cannot write the hops: {e:#}"));
                    stop.stop_sending();
                }
            }
            last_flush = at;
        }
    }
    let mut keys: Vec<_> = by_target.keys().copied().collect();
    keys.sort();
    for k in keys {
        let v = judge(&by_target[&k]);
        counts.add_verdict(super::encode::family(k.0), v.kind.label());
        if let Err(e) = sinks.verdicts.serialize(VerdictRow::new(k.0, k.1, k.2, &v)) {
            report.error.get_or_insert(format!("cannot write the verdicts: {e}"));
            break;
        }
    }
    let at = Instant::now();
    // Parquet: the last row group and the footer (CSV: a last flush).
    let hops = sinks.hops.finish().map_err(|e| format!("cannot write the hops: {e:#}"));
    let verdicts = sinks.verdicts.flush().map_err(|e| format!("cannot write the verdicts: {e}"));
    let flushed = report.error.is_none() && hops.is_ok();
    for e in [hops.err(), verdicts.err()].into_iter().flatten() {
        report.error.get_or_insert(e);
    }
    publish(&invalid, report.duplicates, flushed.then_some(at));
    report.kernel_drops = rx.stats().dropped;
    report.invalid = invalid.into_iter().collect();
    report.trace = Some(counts);
    report
}
