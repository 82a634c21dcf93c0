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

/// The receive stage's work on one frame (validate, deduplicate, classify, write), with what it
/// counts. The scan's receive loop ([`recv_loop`]) and `mpscan reclassify` (`crate::reclassify`,
/// over a `--pcap` recording) both run frames through it, so that a re-classification gives the
/// scan's rows byte for byte.
pub struct Stage<'a> {
    ctx: &'a Context,
    counters: &'a Counters,
    stop: &'a Stop,
    dedup: Dedup,
    invalid: HashMap<String, u64>,
    report: RecvReport,
}

impl<'a> Stage<'a> {
    /// A stage that carries a resumed scan's rows (into the duplicate filter, the class counts
    /// and the row counters) and counts.
    pub fn new(ctx: &'a Context, counters: &'a Counters, stop: &'a Stop, carried: Carried) -> Stage<'a> {
        let mut report = RecvReport { duplicates: carried.duplicates, ..Default::default() };
        let mut dedup = Dedup::default();
        for e in &carried.rows {
            dedup.first(e.ip, e.port, e.version);
            *report.classes.entry((e.version, e.class)).or_default() += 1;
            if e.class == Class::Mptcp {
                Counters::add(&counters.hits, 1);
            }
        }
        Counters::add(&counters.rows, carried.rows.len() as u64);
        Stage { ctx, counters, stop, dedup, invalid: carried.invalid.into_iter().collect(), report }
    }

    /// Takes one frame, received at `at` (`None`: now, read only for a row). An output error
    /// stops the senders and is kept in the report.
    #[inline]
    pub fn frame(&mut self, frame: &[u8], at: Option<SystemTime>, sink: &mut (dyn RowSink + Send)) {
        let counters = self.counters;
        Counters::add(&counters.received, 1);
        let resp = match self.ctx.parse(frame) {
            Ok(r) => r,
            Err(why) => {
                match self.invalid.get_mut(why.0) {
                    Some(n) => *n += 1,
                    None => {
                        self.invalid.insert(why.0.to_string(), 1);
                    }
                }
                return;
            }
        };
        Counters::add(&counters.validated, 1);
        if self.stop.rows_reached(Counters::get(&counters.rows)) {
            // --max-results: no row past the limit (the answer is still counted as valid).
            return;
        }
        if !self.dedup.first(resp.target, resp.port, resp.version) {
            self.report.duplicates += 1;
            return;
        }
        let verdict = classify(&resp);
        *self.report.classes.entry((resp.version, verdict.class)).or_default() += 1;
        if self.report.error.is_some() || !sink.accepts(verdict.class) {
            return;
        }
        let at = at.unwrap_or_else(SystemTime::now);
        if let Err(e) = sink.write(&crate::output::new_row(&resp, &verdict, at)) {
            self.fail(format!("{e:#}"));
            return;
        }
        Counters::add(&counters.rows, 1);
        if verdict.class == Class::Mptcp {
            Counters::add(&counters.hits, 1);
        }
        if self.stop.rows_reached(Counters::get(&counters.rows)) {
            self.stop.stop_for(Why::MaxResults);
            self.stop.stop_receiving();
        }
    }

    /// Keeps the first error and stops the senders.
    pub fn fail(&mut self, e: String) {
        self.report.error.get_or_insert(e);
        self.stop.stop_sending();
    }

    /// The first error so far.
    pub fn error(&self) -> Option<&str> {
        self.report.error.as_deref()
    }

    /// Publishes the counts for the resume checkpoint (see [`publish`]).
    fn publish(&self, published: &Published, flushed: Option<Instant>) {
        publish(published, &self.invalid, self.report.duplicates, flushed)
    }

    /// The counts, with the rejections by reason.
    pub fn finish(mut self) -> RecvReport {
        self.report.invalid = self.invalid.into_iter().collect();
        self.report
    }
}

/// `--pcap`: the recording of every frame the receive loop takes, validated or not.
pub type Recording = crate::net::PcapWriter<std::io::BufWriter<std::fs::File>>;

/// Runs until `stop.receiving` is set; an output or receive error stops the senders. With
/// `pcap`, every frame is recorded, stamped with the time also given to its row. About once a
/// second, with the flush, the back end's kernel drops go to the counters (for the status file).
#[allow(clippy::too_many_arguments)]
pub fn recv_loop(
    rx: &mut dyn Receive,
    ctx: &Context,
    sink: &mut (dyn RowSink + Send),
    counters: &Counters,
    stop: &Stop,
    carried: Carried,
    published: &Published,
    mut pcap: Option<&mut Recording>,
) -> RecvReport {
    let mut stage = Stage::new(ctx, counters, stop, carried);
    stage.publish(published, Some(Instant::now()));
    let mut last_flush = Instant::now();
    while !stop.receiving.load(Relaxed) {
        let r = rx.recv_batch(Duration::from_millis(50), &mut |frame: &[u8]| {
            let at = match pcap.as_deref_mut() {
                None => None,
                Some(p) => {
                    let at = SystemTime::now();
                    if let Err(e) = p.record(at, frame) {
                        stage.fail(format!("cannot write the --pcap file: {e}"));
                    }
                    Some(at)
                }
            };
            stage.frame(frame, at, sink);
        });
        if let Err(e) = r {
            stage.fail(format!("receiving failed: {e}"));
            break;
        }
        if last_flush.elapsed() >= FLUSH_INTERVAL && stage.error().is_none() {
            let at = Instant::now();
            // The recording first: every row in the result file has its frame in the pcap.
            match flush_all(&mut pcap, sink) {
                Ok(()) => stage.publish(published, Some(at)),
                Err(e) => {
                    stage.fail(e);
                    stage.publish(published, None);
                }
            }
            counters.kernel_drops.store(rx.stats().dropped, Relaxed);
            last_flush = at;
        }
    }
    let at = Instant::now();
    let flushed = stage.error().is_none() && {
        let r = flush_all(&mut pcap, sink);
        if let Err(e) = r.clone() {
            stage.fail(e);
        }
        r.is_ok()
    };
    stage.publish(published, flushed.then_some(at));
    let drops = rx.stats().dropped;
    counters.kernel_drops.store(drops, Relaxed);
    let mut report = stage.finish();
    report.kernel_drops = drops;
    report
}

/// Flushes the recording, then the result sink.
fn flush_all(pcap: &mut Option<&mut Recording>, sink: &mut (dyn RowSink + Send)) -> Result<(), String> {
    if let Some(p) = pcap.as_deref_mut() {
        p.flush_records().map_err(|e| format!("cannot write the --pcap file: {e}"))?;
    }
    sink.flush().map_err(|e| format!("{e:#}"))
}
