//! The trace's receive loop, run by the scan's pipeline in place of the scan's
//! (`crate::scan::pipeline::run_receiving`): validate ([`super::answer`]), write each answer as a
//! hop row, keep the answers per (target, port, version), and judge each when receiving ends.
//!
//! The answers are kept in memory until the end (a few dozen bytes each, at most `--max-ttl`
//! plus the target's answers per traced target): fine for the thousands of targets a trace
//! follows up on, not for a whole-Internet trace.

use super::answer::{Answer, TraceContext};
use super::rows::{HopRow, VerdictRow};
use super::verdict::judge;
use crate::accept::ResponseKind as Kind;
use crate::net::Receive;
use crate::probe::ProbeVersion;
use crate::scan::counters::Counters;
use crate::scan::recv::RecvReport;
use crate::scan::stop::Stop;
use mpscan_schema::trace::TraceCounts;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// What the trace's receiver writes to.
pub struct TraceSinks {
    /// The hops CSV.
    pub hops: csv::Writer<Box<dyn Write + Send>>,
    /// The verdicts CSV.
    pub verdicts: csv::Writer<Box<dyn Write + Send>>,
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

/// Runs until `stop.receiving`; then judges every traced target and writes the verdicts. The
/// report's `trace` holds the counts (for the metadata).
pub fn trace_loop(
    rx: &mut dyn Receive,
    tctx: &TraceContext,
    sinks: &mut TraceSinks,
    counters: &Counters,
    stop: &Stop,
) -> RecvReport {
    let mut report = RecvReport::default();
    let mut counts = TraceCounts::new(tctx.max_ttl);
    let mut invalid: HashMap<&'static str, u64> = HashMap::new();
    let mut seen: HashSet<(IpAddr, u16, ProbeVersion, u8, bool)> = HashSet::new();
    let mut by_target: HashMap<(IpAddr, u16, ProbeVersion), Vec<Answer>> = HashMap::new();
    while !stop.receiving.load(Relaxed) {
        let r = rx.recv_batch(Duration::from_millis(50), &mut |frame: &[u8]| {
            Counters::add(&counters.received, 1);
            let a = match tctx.parse(frame, super::millis_since(*super::clock())) {
                Ok(a) => a,
                Err(why) => {
                    *invalid.entry(why.0).or_default() += 1;
                    return;
                }
            };
            Counters::add(&counters.validated, 1);
            // One row per (probe, kind of answer): a router's second quote is a duplicate.
            if !seen.insert((a.target, a.port, a.version, a.probe_ttl, a.quote.is_some())) {
                report.duplicates += 1;
                return;
            }
            if report.error.is_none() {
                if let Err(e) = sinks.hops.serialize(HopRow::new(&a)) {
                    report.error = Some(format!("cannot write the hops: {e}"));
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
    for w in [&mut sinks.hops, &mut sinks.verdicts] {
        if let Err(e) = w.flush() {
            report.error.get_or_insert(format!("cannot write the trace output: {e}"));
        }
    }
    report.kernel_drops = rx.stats().dropped;
    report.invalid = invalid.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    report.trace = Some(counts);
    report
}
