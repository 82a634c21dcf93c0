//! The receive loop (zmap's straight pipeline): validate, deduplicate, classify, write.
//!
//! It runs on its own thread from before the first probe until the end of the cooldown, reads
//! frames in batches from the receive back end (whose kernel filter already dropped most of what
//! is not a candidate), and counts every frame it rejects by reason.

use super::counters::Counters;
use super::dedup::Dedup;
use crate::classify::{classify, Class};
use crate::net::Receive;
use crate::output::sink::RowSink;
use crate::output::Row;
use crate::probe::ProbeVersion;
use crate::response::Context;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime};

/// What the receiver counted, handed back when it stops.
#[derive(Debug, Default)]
pub struct RecvReport {
    /// Rejected frames by reason.
    pub invalid: BTreeMap<String, u64>,
    /// Validated answers for targets that already had a row.
    pub duplicates: u64,
    /// Rows per (version, class).
    pub classes: BTreeMap<(ProbeVersion, Class), u64>,
    /// Kernel drops reported by the back end.
    pub kernel_drops: u64,
    /// The first output error, which stopped the scan.
    pub error: Option<String>,
}

/// Runs until `counters.stop_receiving` is set.
pub fn recv_loop(rx: &mut dyn Receive, ctx: &Context, sink: &mut (dyn RowSink + Send), counters: &Counters) -> RecvReport {
    let mut report = RecvReport::default();
    let mut invalid: HashMap<&'static str, u64> = HashMap::new();
    let mut dedup = Dedup::default();
    let mut last_flush = std::time::Instant::now();
    while !counters.stop_receiving.load(Relaxed) {
        let r = rx.recv_batch(Duration::from_millis(50), &mut |frame: &[u8]| {
            Counters::add(&counters.received, 1);
            let resp = match ctx.parse(frame) {
                Ok(r) => r,
                Err(why) => {
                    *invalid.entry(why.0).or_default() += 1;
                    return;
                }
            };
            Counters::add(&counters.validated, 1);
            if !dedup.first(resp.target, resp.port, resp.version) {
                report.duplicates += 1;
                return;
            }
            let verdict = classify(&resp);
            *report.classes.entry((resp.version, verdict.class)).or_default() += 1;
            if report.error.is_some() {
                return;
            }
            if let Err(e) = sink.write(&Row::new(&resp, &verdict, SystemTime::now())) {
                report.error = Some(format!("{e:#}"));
                counters.stop_sending.store(true, Relaxed);
                return;
            }
            Counters::add(&counters.rows, 1);
            if verdict.class == Class::Mptcp {
                Counters::add(&counters.hits, 1);
            }
        });
        if let Err(e) = r {
            report.error.get_or_insert(format!("receiving failed: {e}"));
            counters.stop_sending.store(true, Relaxed);
            break;
        }
        if last_flush.elapsed() > Duration::from_secs(1) && report.error.is_none() {
            if let Err(e) = sink.flush() {
                report.error = Some(format!("{e:#}"));
                counters.stop_sending.store(true, Relaxed);
            }
            last_flush = std::time::Instant::now();
        }
    }
    if report.error.is_none() {
        if let Err(e) = sink.flush() {
            report.error = Some(format!("{e:#}"));
        }
    }
    report.kernel_drops = rx.stats().dropped;
    report.invalid = invalid.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    report
}
