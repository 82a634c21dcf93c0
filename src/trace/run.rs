//! `mpscan trace [OPTIONS] <TARGETS>...`: the scan's arguments, pipeline and safety checks, with
//! trace probes ([`super::encode`]) and the trace's receiver ([`super::recv`]).

use super::answer::{Answer, TraceContext};
use super::recv::{trace_loop, Carried, TraceSinks};
use super::rows::answer_of;
use crate::net::Receive;
use crate::output::sink::OutputFormat;
use crate::output::Row;
use crate::scan::checkpoint::Checkpointer;
use crate::scan::config::{Network, ScanConfig};
use crate::scan::counters::Counters;
use crate::scan::recv::{Carried as ScanCarried, Published};
use crate::scan::state::StateFile;
use crate::scan::stop::Stop;
use crate::scan::workers::Output;
use crate::scan::{Outcome, ScanArgs, EXIT_INTERRUPTED};
use mpscan_schema::metadata::MetadataFile;
use mpscan_schema::parquet_file::ParquetHops;
use mpscan_schema::trace::{read_hops_csv, CsvHops, HopSink, TraceCounts, VERDICTS};
use mpscan_schema::{Class, RowSink};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

/// Default `--max-ttl`.
pub const DEFAULT_MAX_TTL: u8 = 32;

/// The command line of `mpscan trace`: every `scan` option (targets, ports, versions, rate,
/// blocklist, safety flags; `-o` is the hops CSV), plus the TTL range, the verdicts file, and
/// the rows of an earlier scan to trace.
#[derive(Debug, clap::Args)]
#[command(mut_arg("targets", |a| a.required_unless_present_any(["config", "from"])))]
pub struct TraceArgs {
    /// Highest TTL / hop limit probed (1 to 255); every target gets `1..=MAX` probes.
    #[arg(long, default_value_t = DEFAULT_MAX_TTL, value_name = "MAX", value_parser = clap::value_parser!(u8).range(1..))]
    pub max_ttl: u8,
    /// Trace the targets of an earlier scan's result CSV (with the classes of `--classes`), in
    /// addition to any given on the command line.
    #[arg(long, value_name = "SCAN.csv")]
    pub from: Option<PathBuf>,
    /// The verdicts CSV (default: the hops file's name + `.verdicts.csv`; standard error's
    /// counts only when the hops go to standard output).
    #[arg(long, value_name = "FILE")]
    pub verdicts: Option<PathBuf>,
    /// What to trace, as for `scan`.
    #[command(flatten)]
    pub scan: ScanArgs,
}

impl TraceArgs {
    /// Checks the trace's own options: one line per bad value (docs/ERRORS.md).
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.max_ttl >= 1, "--max-ttl 0: give a highest TTL from 1 to 255 (default 32)");
        Ok(())
    }

    /// Where the verdicts go.
    pub fn verdicts_path(&self, hops: Option<&Path>) -> Option<PathBuf> {
        self.verdicts.clone().or_else(|| hops.map(|h| PathBuf::from(format!("{}.verdicts.csv", h.display()))))
    }
}

/// The addresses of the rows of the scan result `path` whose class is one of `classes`, each
/// once, in file order.
pub fn from_scan(path: &Path, classes: &[Class]) -> anyhow::Result<Vec<std::net::IpAddr>> {
    let mut file = mpscan_schema::records::ResultFile::open(path, &[mpscan_schema::Col::Ip, mpscan_schema::Col::Class])
        .map_err(|e| anyhow::anyhow!("{}: cannot read --from as a scan result: {e:#}", path.display()))?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut bad = None;
    file.for_each_row(|line, r| match r {
        Ok(r) if classes.contains(&r.class) => {
            let a: std::net::IpAddr = r.ip.into();
            if seen.insert(a) {
                out.push(a);
            }
        }
        Ok(_) => {}
        Err(e) => {
            bad.get_or_insert_with(|| format!("{}: row {line}: {e}", path.display()));
        }
    })?;
    if let Some(e) = bad {
        anyhow::bail!(e);
    }
    let names: Vec<&str> = classes.iter().map(|c| c.label()).collect();
    anyhow::ensure!(!out.is_empty(), "{}: no row of class {}", path.display(), names.join(", "));
    Ok(out)
}

/// Checks the arguments and resolves them into a trace's configuration against `net` (the
/// machine's, or a given link in tests): `--from`'s addresses join the targets, every target gets
/// TTLs `1..=--max-ttl`, and a `--resume` is checked against the saved trace (its `--max-ttl`
/// included).
pub fn resolve_on(args: &mut TraceArgs, net: &Network) -> anyhow::Result<ScanConfig> {
    args.check()?;
    args.scan.trace_max_ttl = Some(args.max_ttl);
    // --from: the scan's addresses become a target list, read like any @FILE (blocklist included).
    let list = match &args.from {
        Some(p) => {
            // `--classes` (the scan's option) picks the rows; by default those that lost MPTCP.
            let classes = match &args.scan.classes {
                Some(c) => c.0.clone(),
                None => vec![Class::Tcp, Class::Echo, Class::Malformed],
            };
            let addrs = from_scan(p, &classes)?;
            let list = std::env::temp_dir().join(format!("mpscan-trace-from-{}.txt", std::process::id()));
            let text: String = addrs.iter().map(|a| format!("{a}\n")).collect();
            std::fs::write(&list, text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", list.display()))?;
            args.scan.targets.push(format!("@{}", list.display()));
            Some(list)
        }
        None => None,
    };
    let config = ScanConfig::resolve_on(&args.scan, net);
    if let Some(l) = list {
        let _ = std::fs::remove_file(l);
    }
    let mut config = config?;
    prepare(&mut config, args.max_ttl)?;
    Ok(config)
}

/// Runs `mpscan trace`.
pub fn run(args: &mut TraceArgs) -> anyhow::Result<ExitCode> {
    let config = resolve_on(args, &Network::System)?;
    if config.dry_run {
        crate::scan::dry_run::print(&config)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Open everything that can fail before the first probe: the outputs, the state, the sockets.
    let output = open_output(&config, args.verdicts_path(config.output.as_deref()).as_deref())?;
    let transport = config.transport()?;
    crate::scan::shed_privileges();
    let stop = Arc::new(Stop::default());
    let signals = stop.on_signals()?;
    let (outcome, counts) = run_on(&config, transport, output, &stop);
    signals.close();
    if !config.quiet {
        let each: Vec<String> = VERDICTS.iter().map(|v| format!("{v} {}", counts.verdict(v))).collect();
        eprintln!("mpscan trace: {} verdicts: {}", counts.total_verdicts(), each.join(", "));
    }
    match outcome? {
        // --max-runtime ends a trace as it ends a scan: cleanly, as asked.
        Outcome::Finished | Outcome::Limited(_) => Ok(ExitCode::SUCCESS),
        Outcome::Interrupted => {
            eprintln!("mpscan: interrupted; hops, verdicts so far and metadata written{}", config.resume_hint());
            Ok(ExitCode::from(EXIT_INTERRUPTED))
        }
    }
}

/// Makes a resolved scan configuration a trace's: TTLs `1..=max_ttl`, if the (target, port, TTL)
/// triples fit one permutation.
pub fn prepare(config: &mut ScanConfig, max_ttl: u8) -> anyhow::Result<()> {
    let triples =
        config.space.len().checked_mul(u64::from(max_ttl)).filter(|&n| n <= crate::targets::cyclic::Group::MAX_N);
    anyhow::ensure!(
        triples.is_some(),
        "--max-ttl {max_ttl}: too many (target, port, TTL) triples; trace fewer targets"
    );
    config.trace_ttls = Some(max_ttl);
    Ok(())
}

/// Where a trace's results and progress go: the hops and verdicts, what a resumed trace already
/// had, and the resume checkpoint (none for standard output or Parquet hops).
pub struct TraceOutput {
    /// The hops and verdicts.
    pub sinks: TraceSinks,
    /// The answers and counters of the trace being resumed (empty otherwise).
    pub carried: Carried,
    /// Saves the resume state.
    pub checkpoint: Option<Checkpointer>,
    /// The metadata file, opened before the first probe.
    pub metadata: Option<MetadataFile>,
}

/// Opens the hops (`-o`, standard output without it; CSV or Parquet), the verdicts CSV (discarded
/// without a path) and the resume state; a resumed trace appends to its hops CSV, whose answers
/// are read back, and rewrites the verdicts whole at the end. Fails before anything is sent.
pub fn open_output(config: &ScanConfig, verdicts: Option<&Path>) -> anyhow::Result<TraceOutput> {
    let create = |p: &Path| -> anyhow::Result<Box<dyn Write + Send>> {
        let f = std::fs::File::create(p).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", p.display()))?;
        Ok(Box::new(std::io::BufWriter::new(f)))
    };
    let verdicts = csv::Writer::from_writer(match verdicts {
        Some(p) => create(p)?,
        None => Box::new(std::io::sink()),
    });
    let hops_path = config.output.as_deref();
    if let (Some(state), Some(r), Some(path)) = (&config.state_file, &config.resume, hops_path) {
        let (hops, answers): (Box<dyn HopSink>, Vec<Answer>) = match read_hops_csv(path)? {
            Some(records) => {
                let answers = records
                    .iter()
                    .enumerate()
                    .map(|(i, rec)| {
                        answer_of(rec).map_err(|e| anyhow::anyhow!("{}: row {}: {e}", path.display(), i + 2))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(path)
                    .map_err(|e| anyhow::anyhow!("cannot resume the hops file {}: {e}", path.display()))?;
                (Box::new(CsvHops::appending(Box::new(std::io::BufWriter::new(f)))), answers)
            }
            // Killed before the header reached the disk: start the file again.
            None => (Box::new(CsvHops::new(create(path)?)?), Vec::new()),
        };
        let carried = Carried { answers, invalid: r.saved.invalid.clone(), duplicates: r.saved.duplicates };
        let file = StateFile::reopen(state, &r.saved)?;
        let checkpoint = Some(Checkpointer::new(file, config.identity(), config.cooldown));
        let metadata = config.open_metadata()?;
        return Ok(TraceOutput { sinks: TraceSinks { hops, verdicts }, carried, checkpoint, metadata });
    }
    let hops: Box<dyn HopSink> = match (config.output_format, hops_path) {
        (OutputFormat::Csv, Some(p)) => Box::new(CsvHops::new(create(p)?)?),
        (OutputFormat::Csv, None) => Box::new(CsvHops::new(Box::new(std::io::stdout()))?),
        (OutputFormat::Parquet, Some(p)) => Box::new(ParquetHops::create(p)?),
        (OutputFormat::Parquet, None) => {
            anyhow::bail!("--output-format parquet needs a file: add -o FILE.parquet")
        }
        (OutputFormat::Jsonl, _) => {
            anyhow::bail!("trace writes its hops as csv or parquet: drop --output-format jsonl")
        }
    };
    // Only a streamed CSV can be resumed: a Parquet file is written whole at the end.
    let resumable = config.output_format == OutputFormat::Csv;
    let file = config.state_file.as_deref().filter(|_| resumable).map(StateFile::create).transpose()?;
    let checkpoint = file.map(|f| Checkpointer::new(f, config.identity(), config.cooldown));
    let metadata = config.open_metadata()?;
    Ok(TraceOutput { sinks: TraceSinks { hops, verdicts }, carried: Carried::default(), checkpoint, metadata })
}

/// Runs a prepared trace over `transport` (AF_PACKET rings, or the memory back ends in tests):
/// the scan's pipeline with the trace's receiver. Returns the outcome and the trace's counts (also
/// in the metadata JSON).
pub fn run_on(
    config: &ScanConfig,
    transport: crate::scan::workers::Transport,
    output: TraceOutput,
    stop: &Stop,
) -> (anyhow::Result<Outcome>, TraceCounts) {
    let probing_validator = config.validator();
    let tctx = TraceContext {
        ctx: config.receive_context(&probing_validator),
        max_ttl: config.trace_ttls.unwrap_or(DEFAULT_MAX_TTL),
    };
    let TraceOutput { sinks, carried, checkpoint, metadata } = output;
    let state = Mutex::new((sinks, Some(carried), TraceCounts::default()));
    let receiver = |rx: &mut (dyn Receive + Send), counters: &Counters, stop: &Stop, published: &Published| {
        let mut g = state.lock().unwrap_or_else(|p| p.into_inner());
        let (sinks, carried, counts) = &mut *g;
        let report = trace_loop(rx, &tctx, sinks, counters, stop, carried.take().unwrap_or_default(), published);
        *counts = report.trace.clone().unwrap_or_default();
        report
    };
    let output = Output { sink: Box::new(NoRows), carried: ScanCarried::default(), checkpoint, metadata };
    let outcome = crate::scan::run_receiving(config, transport, output, stop, Some(&receiver));
    let counts = state.into_inner().map(|s| s.2).unwrap_or_default();
    (outcome, counts)
}

/// The scan's row sink, unused by a trace (its rows are [`super::rows`]).
struct NoRows;

impl RowSink for NoRows {
    fn write(&mut self, _row: &Row) -> anyhow::Result<()> {
        anyhow::bail!("a trace writes no scan rows")
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        Ok(())
    }

    fn rows(&self) -> u64 {
        0
    }
}
