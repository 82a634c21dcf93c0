//! The receive loop (zmap's straight pipeline): validate, deduplicate, classify, write.
//!
//! It runs on its own thread from before the first probe until the end of the cooldown, reads
//! frames in batches from the receive back end (whose kernel filter already dropped most of what
//! is not a candidate), and counts every frame it rejects by reason.

use super::counters::Counters;
use super::dedup::Dedup;
use super::stop::{Stop, Why};
use crate::accept::Context;
use crate::classify::{classify, Class};
use crate::net::Receive;
use crate::probe::ProbeVersion;
use mpscan_schema::line_file::Existing;
use mpscan_schema::RowSink;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

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
    /// `mpscan trace`'s counts (its receiver's; none for a scan).
    pub trace: Option<mpscan_schema::trace::TraceCounts>,
}

/// How often the receiver pushes buffered rows to the file.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// What a resumed scan already had: its rows (for the duplicate filter and the class counts)
/// and its counters.
#[derive(Debug, Default)]
pub struct Carried {
    /// Rows already in the CSV.
    pub rows: Vec<Existing>,
    /// Rejections so far.
    pub invalid: BTreeMap<String, u64>,
    /// Duplicates so far.
    pub duplicates: u64,
}

/// What the receiver publishes about once a second, for the resume state.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Rejections by reason.
    pub invalid: BTreeMap<String, u64>,
    /// Duplicates.
    pub duplicates: u64,
    /// When the CSV was last flushed successfully: every row received before is in the file.
    pub durable_at: Option<Instant>,
}

/// The receiver's published snapshot.
pub type Published = Mutex<Snapshot>;

/// Publishes the receiver's counts for the resume checkpoint, and `flushed`, when the results
/// were last flushed successfully (every answer received before is in the file).
pub fn publish(published: &Published, invalid: &HashMap<String, u64>, dups: u64, flushed: Option<Instant>) {
    if let Ok(mut p) = published.lock() {
        p.invalid = invalid.iter().map(|(k, v)| (k.clone(), *v)).collect();
        p.duplicates = dups;
        if flushed.is_some() {
            p.durable_at = flushed;
        }
    }
}

/// Runs until `stop.receiving` is set; an output or receive error stops the senders.
pub fn recv_loop(
    rx: &mut dyn Receive,
    ctx: &Context,
    sink: &mut (dyn RowSink + Send),
    counters: &Counters,
    stop: &Stop,
    carried: Carried,
    published: &Published,
) -> RecvReport {
    let mut report = RecvReport { duplicates: carried.duplicates, ..Default::default() };
    let mut invalid: HashMap<String, u64> = carried.invalid.into_iter().collect();
    let mut dedup = Dedup::default();
    for e in &carried.rows {
        dedup.first(e.ip, e.port, e.version);
        *report.classes.entry((e.version, e.class)).or_default() += 1;
        if e.class == Class::Mptcp {
            Counters::add(&counters.hits, 1);
        }
    }
    Counters::add(&counters.rows, carried.rows.len() as u64);
    let publish = |invalid: &HashMap<String, u64>, dups: u64, flushed: Option<Instant>| {
        publish(published, invalid, dups, flushed)
    };
    publish(&invalid, report.duplicates, Some(Instant::now()));
    let mut last_flush = Instant::now();
    while !stop.receiving.load(Relaxed) {
        let r = rx.recv_batch(Duration::from_millis(50), &mut |frame: &[u8]| {
            Counters::add(&counters.received, 1);
            let resp = match ctx.parse(frame) {
                Ok(r) => r,
                Err(why) => {
                    match invalid.get_mut(why.0) {
                        Some(n) => *n += 1,
                        None => {
                            invalid.insert(why.0.to_string(), 1);
                        }
                    }
                    return;
                }
            };
            Counters::add(&counters.validated, 1);
            if stop.rows_reached(Counters::get(&counters.rows)) {
                // --max-results: no row past the limit (the answer is still counted as valid).
                return;
            }
            if !dedup.first(resp.target, resp.port, resp.version) {
                report.duplicates += 1;
                return;
            }
            let verdict = classify(&resp);
            *report.classes.entry((resp.version, verdict.class)).or_default() += 1;
            if report.error.is_some() || !sink.accepts(verdict.class) {
                return;
            }
            if let Err(e) = sink.write(&crate::output::new_row(&resp, &verdict, SystemTime::now())) {
                report.error = Some(format!("{e:#}"));
                stop.stop_sending();
                return;
            }
            Counters::add(&counters.rows, 1);
            if verdict.class == Class::Mptcp {
                Counters::add(&counters.hits, 1);
            }
            if stop.rows_reached(Counters::get(&counters.rows)) {
                stop.stop_for(Why::MaxResults);
                stop.stop_receiving();
            }
        });
        if let Err(e) = r {
            report.error.get_or_insert(format!("receiving failed: {e}"));
            stop.stop_sending();
            break;
        }
        if last_flush.elapsed() >= FLUSH_INTERVAL && report.error.is_none() {
            let at = Instant::now();
            match sink.flush() {
                Ok(()) => publish(&invalid, report.duplicates, Some(at)),
                Err(e) => {
                    report.error = Some(format!("{e:#}"));
                    stop.stop_sending();
                    publish(&invalid, report.duplicates, None);
                }
            }
            last_flush = at;
        }
    }
    let at = Instant::now();
    let flushed = report.error.is_none() && {
        let r = sink.flush();
        if let Err(e) = &r {
            report.error = Some(format!("{e:#}"));
        }
        r.is_ok()
    };
    publish(&invalid, report.duplicates, flushed.then_some(at));
    report.kernel_drops = rx.stats().dropped;
    report.invalid = invalid.into_iter().collect();
    report
}
