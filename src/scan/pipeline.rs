//! The scan's threads over any transport: senders, the receiver, the monitor and the
//! checkpoint saver, then the cooldown, the last state, the metadata, and which error wins.
//!
//! [`run_with`] takes a finished configuration and opened ends, so the same pipeline runs over
//! AF_PACKET rings (`mpscan scan`) and over the memory back ends (tests without root).

use super::checkpoint::{progress, Checkpointer, Progress};
use super::config::ScanConfig;
use super::counters::Counters;
use super::recv::{self, Carried, Published, RecvReport};
use super::stop::{Stop, Why};
use super::workers::{Output, Probing, Transport};
use super::{monitor, send};
use crate::accept::Context;
use crate::net::{Receive, Transmit};
use mpscan_schema::Metadata;
use mpscan_schema::RowSink;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime};

/// How a scan ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every probe was sent and the cooldown waited out.
    Finished,
    /// Stopped early by a signal (or [`Stop`]): results and metadata are complete up to then,
    /// and the state file resumes it.
    Interrupted,
    /// Ended by `--max-runtime` (resumable, like an interruption) or `--max-results` (done: its
    /// state says finished), cleanly, as asked.
    Limited(Why),
}

/// Runs the scan `config` over `transport`, writing to `output`, until it ends or `stop` says
/// so; then saves the last state and writes the metadata. An error names what failed and says
/// whether the scan can be resumed.
pub fn run_with(config: &ScanConfig, transport: Transport, output: Output, stop: &Stop) -> anyhow::Result<Outcome> {
    run_receiving(config, transport, output, stop, None)
}

/// A receive loop in place of the scan's (`mpscan trace` has its own answers and rows): it runs
/// on the receiver thread until `stop.receiving` and hands back its counts.
/// It publishes its flushes in [`Published`] as the scan's does, for the resume checkpoint.
pub type Receiver<'a> = &'a (dyn Fn(&mut (dyn Receive + Send), &Counters, &Stop, &Published) -> RecvReport + Sync);

/// [`run_with`], with `receiver` (when given) in place of the scan's receive loop; the senders,
/// pacer, monitor, checkpoint, cooldown and metadata are the scan's.
pub fn run_receiving(
    config: &ScanConfig,
    transport: Transport,
    output: Output,
    stop: &Stop,
    receiver: Option<Receiver<'_>>,
) -> anyhow::Result<Outcome> {
    anyhow::ensure!(
        transport.txs.len() == config.threads as usize,
        "{} transmitters for {} sender threads: give one per thread",
        transport.txs.len(),
        config.threads
    );
    let start = SystemTime::now();
    let counters = config.counters();
    let probing = config.probing();
    let shared = Shared {
        config,
        counters: &counters,
        stop,
        probing: &probing,
        ctx: config.receive_context(&probing.validator),
        published: Published::default(),
        receiver,
    };
    let Output { mut sink, carried, mut checkpoint, metadata: metadata_file } = output;
    let mut recording = Recordings::open(config, receiver.is_some())?;
    // The state exists from the first probe on, so a scan killed at once can still resume.
    if let Some(c) = checkpoint.as_mut() {
        c.save(&counters, &shared.published, progress(&counters), false)?;
    }
    let ended = shared.run_threads(transport, sink.as_mut(), carried, checkpoint.as_mut(), &mut recording);
    // Parquet: the last row group and the footer (CSV: a last flush).
    let finish_error = if ended.report.error.is_none() { sink.finish().err().map(|e| format!("{e:#}")) } else { None };
    let failed = ended.report.error.is_some() || !ended.send_errors.is_empty();
    let interrupted = stop.sending_stopped() || failed;
    let limit = stop.why().filter(|w| matches!(w, Why::MaxRuntime | Why::MaxResults) && !failed);
    // A scan that reached --max-results is done: resuming it would only look for more.
    let done = !interrupted || limit == Some(Why::MaxResults);
    let mut state_error = ended.state_error;
    if let Some(c) = checkpoint.as_mut() {
        // Every sender has stopped and the receiver has waited out the cooldown and flushed:
        // the current positions are settled, unless writing the results failed, in which case
        // the last positions known to be backed by the file stand.
        let (at, finished) = match (ended.report.error.is_none(), ended.settled) {
            (true, _) => (progress(&counters), done),
            (false, Some(p)) => (p, done),
            (false, None) => (progress(&counters), false),
        };
        if let Err(e) = c.save(&counters, &shared.published, at, finished) {
            state_error.get_or_insert(e);
        }
    }
    let end_reason = match (interrupted, stop.why()) {
        (false, _) => "completed",
        (true, _) if failed => "error",
        (true, Some(w)) => w.label(),
        (true, None) => "signal",
    };
    let md = metadata(config, &counters, &ended.report, start, (interrupted, end_reason));
    if let Some(mut f) = metadata_file {
        md.write_to(&mut f)?;
    }
    let resume_hint = if interrupted { config.resume_hint() } else { String::new() };
    let report_error = ended.report.error.iter();
    if let Some(e) = report_error.chain(ended.send_errors.iter()).chain(finish_error.iter()).next() {
        anyhow::bail!("{e} (results so far are kept{resume_hint})");
    }
    if let Some(e) = state_error {
        anyhow::bail!("{e:#} (results are complete, but the scan cannot be resumed from it)");
    }
    Ok(match (interrupted, limit) {
        (false, _) => Outcome::Finished,
        (true, Some(w)) => Outcome::Limited(w),
        (true, None) => Outcome::Interrupted,
    })
}

/// What a scan records besides its rows: the `--status-updates-file` (written by the monitor)
/// and the `--pcap` recording (by the receiver). Opened before the first probe; a resumed scan
/// appends to both.
struct Recordings {
    status: Option<super::status::StatusFile>,
    pcap: Option<recv::Recording>,
}

impl Recordings {
    /// Opens what `config` asks for. `--pcap` records the scan's receive loop, so a run with
    /// its own receiver (`mpscan trace`) refuses it rather than write an empty file.
    fn open(config: &ScanConfig, own_receiver: bool) -> anyhow::Result<Recordings> {
        let append = config.resume.is_some();
        let status =
            config.status_updates.as_deref().map(|p| super::status::StatusFile::open(p, append)).transpose()?;
        let pcap = match &config.pcap {
            None => None,
            Some(_) if own_receiver => {
                anyhow::bail!("--pcap records the answers of mpscan scan; mpscan trace does not take it: drop --pcap")
            }
            Some(p) => Some(open_pcap(p, append)?),
        };
        Ok(Recordings { status, pcap })
    }
}

/// Creates the `--pcap` file, or appends to a resumed scan's.
fn open_pcap(p: &std::path::Path, append: bool) -> anyhow::Result<recv::Recording> {
    let r = if append { crate::net::PcapWriter::append(p) } else { crate::net::PcapWriter::create(p) };
    r.map_err(|e| anyhow::anyhow!("--pcap {}: cannot write the pcap file ({e}); give a writable path", p.display()))
}

/// What the threads of one scan share.
struct Shared<'a> {
    config: &'a ScanConfig,
    counters: &'a Counters,
    stop: &'a Stop,
    probing: &'a Probing,
    ctx: Context,
    published: Published,
    receiver: Option<Receiver<'a>>,
}

/// What the threads left behind.
struct Ended {
    /// The receiver's counts and its error.
    report: RecvReport,
    /// Each failed sender's error.
    send_errors: Vec<String>,
    /// The last progress the checkpoint saver knew to be backed by the result file.
    settled: Option<Progress>,
    /// The checkpoint saver's error.
    state_error: Option<anyhow::Error>,
}

impl Shared<'_> {
    /// Starts the receiver, the monitor, the checkpoint saver and the senders; waits for the
    /// senders, then the cooldown, then the rest.
    fn run_threads(
        &self,
        transport: Transport,
        sink: &mut (dyn RowSink + Send),
        carried: Carried,
        checkpoint: Option<&mut Checkpointer>,
        recording: &mut Recordings,
    ) -> Ended {
        let Transport { mut rx, mut txs } = transport;
        let (status, pcap) = (recording.status.take(), recording.pcap.as_mut());
        let background_done = AtomicBool::new(false);
        let senders_done = &AtomicBool::new(false);
        let (c, total, done) = (self.counters, self.config.expected_targets(), &background_done);
        std::thread::scope(|s| {
            let recv = s.spawn(|| self.receive(rx.as_mut(), sink, carried, pcap));
            let quiet = self.config.quiet;
            let monitor =
                (!quiet || status.is_some()).then(|| s.spawn(move || monitor::monitor(c, total, done, quiet, status)));
            let saver = checkpoint.map(|cp| s.spawn(move || cp.run(c, &self.published, done)));
            if let Some(d) = self.config.max_runtime {
                s.spawn(move || self.stop_after(d, senders_done));
            }
            let senders: Vec<_> =
                txs.iter_mut().enumerate().map(|(t, tx)| s.spawn(move || self.send(tx.as_mut(), t))).collect();
            let send_errors = senders
                .into_iter()
                .filter_map(|h| match h.join() {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(format!("sending failed: {e}")),
                    Err(_) => Some("a sender thread panicked".to_string()),
                })
                .collect::<Vec<_>>();
            senders_done.store(true, Relaxed);
            if !send_errors.is_empty() {
                self.stop.stop_sending();
            }
            self.cooldown(!send_errors.is_empty());
            let report = recv.join().unwrap_or_default();
            background_done.store(true, Relaxed);
            if let Some(m) = monitor {
                let _ = m.join();
            }
            let (settled, state_error) = match saver.map(|h| h.join()) {
                Some(Ok(Ok(p))) => (Some(p), None),
                Some(Ok(Err(e))) => (None, Some(e)),
                _ => (None, None),
            };
            Ended { report, send_errors, settled, state_error }
        })
    }

    /// The receiver thread.
    fn receive(
        &self,
        rx: &mut (dyn Receive + Send),
        sink: &mut (dyn RowSink + Send),
        carried: Carried,
        pcap: Option<&mut recv::Recording>,
    ) -> RecvReport {
        match self.receiver {
            Some(r) => r(rx, self.counters, self.stop, &self.published),
            None => recv::recv_loop(rx, &self.ctx, sink, self.counters, self.stop, carried, &self.published, pcap),
        }
    }

    /// Sender thread `t`: from its (possibly resumed) position to the end of its share.
    fn send(&self, tx: &mut (dyn Transmit + Send), t: usize) -> std::io::Result<()> {
        let p = &self.counters.senders[t];
        let (pos, done) = (p.position.load(Relaxed), p.done.load(Relaxed));
        let mut stream = self
            .config
            .probe_stream(self.probing, t as u32, pos, done)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let retry = super::flap::Retry::with_grace(self.config.send_error_grace);
        let rate = self.config.rate_per_sender();
        send::send_loop_with(tx, &mut stream, rate, self.counters, &self.stop.sending, t, &retry)
    }

    /// `--max-runtime`: stops the senders `d` after they started, unless they are done first.
    fn stop_after(&self, d: Duration, senders_done: &AtomicBool) {
        let end = Instant::now() + d;
        while !senders_done.load(Relaxed) && !self.stop.sending_stopped() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.stop.stop_for(Why::MaxRuntime);
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(20)));
        }
    }

    /// Cooldown: late answers still count. A second signal (or a sender's error) ends it early;
    /// then the receiver stops.
    fn cooldown(&self, send_failed: bool) {
        let end = Instant::now() + self.config.cooldown;
        while Instant::now() < end && !self.stop.receiving_stopped() && !send_failed {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop.stop_receiving();
    }
}

/// The machine the scan runs from: its host name and the sending interface's addresses (what
/// the kernel says; empty if it cannot, as for the memory transport's interface).
fn vantage(interface: &str) -> mpscan_schema::metadata::Vantage {
    let host_name =
        std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    let addresses = crate::net::interface_addrs()
        .map(|all| all.into_iter().filter(|a| a.name == interface).map(|a| a.addr.to_string()).collect())
        .unwrap_or_default();
    mpscan_schema::metadata::Vantage { shard: None, host_name, addresses }
}

/// The metadata document of the scan.
fn metadata(
    config: &ScanConfig,
    counters: &Counters,
    report: &RecvReport,
    start: SystemTime,
    (interrupted, end_reason): (bool, &str),
) -> Metadata {
    let mut classes: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for v in config.versions.iter().filter(|_| report.trace.is_none()) {
        let per = classes.entry(v.label().to_string()).or_default();
        for c in crate::classify::Class::ALL {
            per.insert(c.label().to_string(), report.classes.get(&(*v, c)).copied().unwrap_or(0));
        }
    }
    Metadata {
        tool: "mpscan".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        command_line: std::env::args().collect(),
        config: config.record.clone(),
        start_time: humantime::format_rfc3339_micros(start).to_string(),
        end_time: humantime::format_rfc3339_micros(SystemTime::now()).to_string(),
        interrupted,
        end_reason: end_reason.to_string(),
        resumed: config.resume.is_some(),
        targets_total: config.space.len(),
        addresses_blocked: config.space.blocked(),
        targets_probed: Counters::get(&counters.targets_done),
        probes_sent: Counters::get(&counters.sent),
        responses_received: Counters::get(&counters.received),
        responses_validated: Counters::get(&counters.validated),
        responses_invalid: report.invalid.values().sum(),
        invalid_reasons: report.invalid.clone(),
        duplicates: report.duplicates,
        kernel_drops: report.kernel_drops,
        classes,
        trace: report.trace.clone(),
        rows: Counters::get(&counters.rows),
        link: counters.link.report(),
        notes: config.notes.clone(),
        user_metadata: config.user_metadata.clone(),
        vantage: Some(vantage(&config.interface)),
        definition: config.definition.clone(),
        merge: Default::default(),
    }
}
