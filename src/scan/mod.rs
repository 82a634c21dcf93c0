//! The scan pipeline: a finished [`config::ScanConfig`] builds the workers, then
//!
//! ```text
//!  permutation cursor ─► send loop(s) ─► AF_PACKET TX        (one thread per sender)
//!  AF_PACKET RX ─► validate ─► dedup ─► classify ─► CSV       (one receiver thread)
//!  atomic counters ─► monitor (progress on stderr)            (one thread)
//! ```
//!
//! The receiver starts before the first probe and runs until the cooldown after the last one
//! ends. SIGINT/SIGTERM stop the senders (the receiver still waits out the cooldown); a second
//! signal ends the cooldown too. Results already written are kept in every case.

pub mod config;
pub mod counters;
pub mod dedup;
pub mod definition;
pub mod dry_run;
pub mod flap;
pub mod monitor;
pub mod recv;
pub mod send;
pub mod state;

use crate::net;
use crate::output::csv::CsvSink;
use crate::output::metadata::Metadata;
use crate::output::sink::RowSink;
use crate::probe::ProbeBuilder;
use crate::response::Context;
use crate::validate::Validator;
use config::ScanConfig;
use counters::Counters;
use send::ProbeStream;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Cursor positions and finished-target counts of every sender.
type Progress = (Vec<u64>, Vec<u64>);

/// Exit code of a scan stopped by a signal (its results and metadata are complete up to then).
pub const EXIT_INTERRUPTED: u8 = 3;

/// Runs `mpscan scan`.
pub fn run(a: &crate::cli::ScanArgs) -> anyhow::Result<ExitCode> {
    let cfg = ScanConfig::resolve(a)?;
    let validator = Validator::from_seed(cfg.seed);
    let mut builder = ProbeBuilder::new(&cfg.link, &cfg.versions);
    if let Some(mac) = cfg.gateway_mac6 {
        builder.set_v6_next_hop(mac);
    }
    let perm = cfg.space.permutation(cfg.seed);
    let counters = Arc::new(Counters::new(cfg.threads));
    let counters = &counters;
    let start = SystemTime::now();
    let identity = state::Identity {
        seed: cfg.seed,
        shards: cfg.shards,
        shard: cfg.shard,
        threads: cfg.threads,
        targets_total: cfg.space.len(),
        versions: cfg.versions.iter().map(|v| v.label().to_string()).collect(),
        probes: cfg.probes,
        ports: cfg.space.ports().to_vec(),
        max_targets: cfg.max_targets,
    };

    // Everything a resume can get wrong is refused before anything is opened or sent.
    if let (Some(sp), Some(saved)) = (&a.resume, &cfg.resumed) {
        state::check_identity(&saved.identity, &identity, sp)?;
        anyhow::ensure!(!saved.finished, "--resume {}: that scan already finished; nothing to resume", sp.display());
        anyhow::ensure!(
            a.output_format == crate::output::sink::OutputFormat::Csv,
            "--resume works with CSV output only (a Parquet file is written whole at the end): drop --output-format parquet"
        );
        anyhow::ensure!(
            !cfg.dry_run,
            "--resume with --dry-run: a dry run would overwrite the results in -o with probes; drop --dry-run"
        );
    }

    if cfg.dry_run {
        let out: Box<dyn std::io::Write> = match &cfg.output {
            Some(p) => {
                Box::new(std::fs::File::create(p).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", p.display()))?)
            }
            None => Box::new(std::io::stdout().lock()),
        };
        let mut tx = dry_run::DryRunTx::new(std::io::BufWriter::new(out));
        for t in 0..cfg.threads {
            let mut stream = stream_for(&cfg, &perm, &builder, &validator, t, 0, 0)?;
            send::send_loop(&mut tx, &mut stream, 0, counters, t as usize)?;
        }
        return Ok(ExitCode::SUCCESS);
    }

    // Open everything that can fail before the first probe: the output, the state, the sockets.
    let (mut sink, mut carried, mut state_file, saved) = match (&cfg.state_file, cfg.resumed.clone()) {
        (Some(sp), Some(saved)) => {
            let out = cfg.output.as_deref().expect("checked by config");
            let (sink, rows) = CsvSink::resume(out)?;
            let sink: Box<dyn RowSink + Send> = Box::new(sink);
            let carried = recv::Carried { rows, invalid: saved.invalid.clone(), duplicates: saved.duplicates };
            (sink, carried, Some(state::StateFile::reopen(sp, &saved)?), Some(saved))
        }
        (sp, _) => {
            let sink = crate::output::sink::create(cfg.output.as_deref(), a.output_format)?;
            // Only a streamed CSV can be resumed: a Parquet file is written whole at the end.
            let resumable = a.output_format == crate::output::sink::OutputFormat::Csv;
            let sf = sp.as_deref().filter(|_| resumable).map(state::StateFile::create).transpose()?;
            (sink, recv::Carried::default(), sf, None)
        }
    };
    if let Some(s) = &saved {
        Counters::add(&counters.sent, s.sent);
        Counters::add(&counters.received, s.received);
        Counters::add(&counters.validated, s.validated);
        counters.link.carry(&s.link);
        for (t, p) in counters.senders.iter().enumerate() {
            p.position.store(s.positions.get(t).copied().unwrap_or(0), Relaxed);
            let done = s.targets_done.get(t).copied().unwrap_or(0);
            p.done.store(done, Relaxed);
            Counters::add(&counters.targets_done, done);
        }
    }
    let filter = net::bpf::filter_for(crate::validate::SPORT_LO..=crate::validate::SPORT_HI);
    let mut rx: Box<dyn net::Receive + Send> = Box::new(
        net::AfPacketRx::open(
            &cfg.interface,
            Some(&filter),
            net::RxConfig::for_answers(
                expected_targets(&cfg).saturating_mul(u64::from(cfg.probes) * cfg.versions.len() as u64),
            ),
        )
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.interface))?,
    );
    let mut txs = (0..cfg.threads)
        .map(|_| {
            net::AfPacketTx::open(&cfg.interface, net::TxConfig::default())
                .map(|t| Box::new(t) as Box<dyn net::Transmit + Send>)
                .map_err(|e| anyhow::anyhow!("cannot send on {}: {e}", cfg.interface))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let signals = install_signal_handlers(counters)?;

    let ctx = Context {
        validator: validator.clone(),
        src_v4: cfg.link.src_v4,
        src_v6: cfg.link.src_v6,
        versions: cfg.versions.clone(),
    };
    let total = expected_targets(&cfg);
    let background_done = AtomicBool::new(false);
    let published: recv::Published = Default::default();
    let mut send_errors = Vec::new();
    let progress = || -> Progress {
        (
            counters.senders.iter().map(|p| p.position.load(Relaxed)).collect(),
            counters.senders.iter().map(|p| p.done.load(Relaxed)).collect(),
        )
    };
    let snapshot = |(positions, targets_done): Progress, finished: bool| -> state::State {
        let p = published.lock().map(|p| p.clone()).unwrap_or_default();
        let (invalid, duplicates) = (p.invalid, p.duplicates);
        state::State {
            seq: 0,
            identity: identity.clone(),
            positions,
            targets_done,
            sending_complete: counters.senders.iter().all(|p| p.complete.load(Relaxed)),
            sent: Counters::get(&counters.sent),
            received: Counters::get(&counters.received),
            validated: Counters::get(&counters.validated),
            duplicates,
            invalid,
            finished,
            link: counters.link.report(),
        }
    };
    // The state exists from the first probe on, so a scan killed at once can still resume.
    if let Some(sf) = state_file.as_mut() {
        sf.save(&mut snapshot(progress(), false))?;
    }
    let mut state_error = None;
    let (report, settled) = std::thread::scope(|s| {
        let recv = s.spawn(|| {
            recv::recv_loop(rx.as_mut(), &ctx, sink.as_mut(), counters, std::mem::take(&mut carried), &published)
        });
        let monitor = (!cfg.quiet).then(|| s.spawn(|| monitor::monitor(counters, total, &background_done)));
        // The state, every half second while the scan runs. A position is saved only once the
        // answers to its probes have had the cooldown to arrive and a successful CSV flush has
        // put them in the file, so that a hard kill (or a full disk) loses no row: a resume sends
        // those last probes again instead.
        let saver = state_file.as_mut().map(|sf| {
            let (background_done, snapshot, progress, published) = (&background_done, &snapshot, &progress, &published);
            let (cooldown, margin) = (cfg.cooldown, Duration::from_millis(200));
            s.spawn(move || -> anyhow::Result<Progress> {
                let mut history = std::collections::VecDeque::from([(Instant::now(), progress())]);
                let mut settled = history[0].1.clone();
                while !background_done.load(Relaxed) {
                    std::thread::sleep(Duration::from_millis(500));
                    history.push_back((Instant::now(), progress()));
                    let durable = published.lock().ok().and_then(|p| p.durable_at);
                    while let (Some((t, _)), Some(d)) = (history.front(), durable) {
                        if *t + cooldown + margin > d {
                            break;
                        }
                        settled = history.pop_front().unwrap().1;
                    }
                    flap::floor(&mut settled, &progress());
                    sf.save(&mut snapshot(settled.clone(), false))?;
                }
                Ok(settled)
            })
        });
        let senders: Vec<_> = txs
            .iter_mut()
            .enumerate()
            .map(|(t, tx)| {
                let (cfg, perm, builder, validator) = (&cfg, &perm, &builder, &validator);
                let p = &counters.senders[t];
                let (pos, done) = (p.position.load(Relaxed), p.done.load(Relaxed));
                s.spawn(move || {
                    let mut stream = stream_for(cfg, perm, builder, validator, t as u32, pos, done)
                        .map_err(|e| std::io::Error::other(e.to_string()))?;
                    let rate = if cfg.rate == 0 { 0 } else { (cfg.rate / cfg.threads as u64).max(1) };
                    let retry = flap::Retry::with_grace(cfg.send_error_grace);
                    send::send_loop_with(tx.as_mut(), &mut stream, rate, counters, t, &retry)
                })
            })
            .collect();
        for h in senders {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => send_errors.push(format!("sending failed: {e}")),
                Err(_) => send_errors.push("a sender thread panicked".to_string()),
            }
        }
        if !send_errors.is_empty() {
            counters.stop_sending.store(true, Relaxed);
        }
        // Cooldown: late answers still count. A second signal (or an error) ends it early.
        let end = Instant::now() + cfg.cooldown;
        while Instant::now() < end && !counters.stop_receiving.load(Relaxed) && send_errors.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
        counters.stop_receiving.store(true, Relaxed);
        let report = recv.join().unwrap_or_default();
        background_done.store(true, Relaxed);
        if let Some(m) = monitor {
            let _ = m.join();
        }
        let settled = match saver.map(|h| h.join()) {
            Some(Ok(Ok(p))) => Some(p),
            Some(Ok(Err(e))) => {
                state_error = Some(e);
                None
            }
            _ => None,
        };
        (report, settled)
    });
    signals.close();
    // Parquet: the last row group and the footer (CSV: a last flush).
    let finish_error = if report.error.is_none() { sink.finish().err().map(|e| format!("{e:#}")) } else { None };

    let interrupted = counters.stop_sending.load(Relaxed) || report.error.is_some() || !send_errors.is_empty();
    if let Some(sf) = state_file.as_mut() {
        // Every sender has stopped and the receiver has waited out the cooldown and flushed:
        // the current positions are settled, unless writing the results failed, in which case
        // the last positions known to be backed by the file stand.
        let at = if report.error.is_none() { Some(progress()) } else { settled };
        let mut last = match at {
            Some(p) => snapshot(p, !interrupted),
            None => snapshot(progress(), false),
        };
        if let Err(e) = sf.save(&mut last) {
            state_error.get_or_insert(e);
        }
    }
    let mut classes: BTreeMap<&'static str, BTreeMap<&'static str, u64>> = BTreeMap::new();
    for v in &cfg.versions {
        let per = classes.entry(v.label()).or_default();
        for c in crate::classify::Class::ALL {
            per.insert(c.label(), report.classes.get(&(*v, c)).copied().unwrap_or(0));
        }
    }
    let invalid: u64 = report.invalid.values().sum();
    let md = Metadata {
        tool: "mpscan",
        version: env!("CARGO_PKG_VERSION"),
        command_line: std::env::args().collect(),
        config: cfg.record.clone(),
        start_time: humantime::format_rfc3339_micros(start).to_string(),
        end_time: humantime::format_rfc3339_micros(SystemTime::now()).to_string(),
        interrupted,
        resumed: saved.is_some(),
        targets_total: cfg.space.len(),
        addresses_blocked: cfg.space.blocked(),
        targets_probed: Counters::get(&counters.targets_done),
        probes_sent: Counters::get(&counters.sent),
        responses_received: Counters::get(&counters.received),
        responses_validated: Counters::get(&counters.validated),
        responses_invalid: invalid,
        invalid_reasons: report.invalid.clone(),
        duplicates: report.duplicates,
        kernel_drops: report.kernel_drops,
        classes,
        rows: Counters::get(&counters.rows),
        link: counters.link.report(),
        definition: a.definition.clone(),
    };
    if let Some(p) = &cfg.metadata {
        md.write(p)?;
    }
    let resume_hint = match &cfg.state_file {
        Some(p) if interrupted => format!("; resume with the same command and --resume {}", p.display()),
        _ => String::new(),
    };
    if let Some(e) = report.error.iter().chain(send_errors.iter()).chain(finish_error.iter()).next() {
        anyhow::bail!("{e} (results so far are kept{resume_hint})");
    }
    if let Some(e) = state_error {
        anyhow::bail!("{e:#} (results are complete, but the scan cannot be resumed from it)");
    }
    if interrupted {
        eprintln!("mpscan: interrupted; results and metadata written up to here{resume_hint}");
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    Ok(ExitCode::SUCCESS)
}

/// The probe stream of sender thread `t`.
fn stream_for<'a>(
    cfg: &'a ScanConfig,
    perm: &crate::targets::Permutation,
    builder: &'a ProbeBuilder,
    validator: &'a Validator,
    t: u32,
    position: u64,
    done: u64,
) -> anyhow::Result<ProbeStream<'a>> {
    // A resumed sender starts at its saved position, and its share of --max-targets shrinks by
    // what it already sent.
    let mut cursor = perm.cursor(cfg.shard, cfg.shards, t, cfg.threads, position)?;
    if let Some(m) = cfg.max_targets {
        cursor = cursor.limit(crate::targets::share(m, cfg.threads, t).saturating_sub(done));
    }
    Ok(ProbeStream::new(&cfg.space, cursor, builder, validator, &cfg.versions, cfg.probes, &cfg.link))
}

/// About how many targets this shard sends to (for the progress bar).
fn expected_targets(cfg: &ScanConfig) -> u64 {
    let per_shard = cfg.space.len().div_ceil(cfg.shards as u64);
    cfg.max_targets.map_or(per_shard, |m| m.min(per_shard))
}

/// First SIGINT/SIGTERM: stop sending. Second: stop receiving too.
fn install_signal_handlers(counters: &Arc<Counters>) -> anyhow::Result<signal_hook::iterator::Handle> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    let handle = signals.handle();
    let c = Arc::clone(counters);
    std::thread::spawn(move || {
        for _ in signals.forever() {
            if c.stop_sending.swap(true, Relaxed) {
                c.stop_receiving.store(true, Relaxed);
            }
        }
    });
    Ok(handle)
}
