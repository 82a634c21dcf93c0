//! `mpscan trace [OPTIONS] <TARGETS>...`: the scan's arguments, pipeline and safety checks, with
//! trace probes ([`super::encode`]) and the trace's receiver ([`super::recv`]).

use super::answer::TraceContext;
use super::recv::{trace_loop, TraceSinks};
use crate::net::Receive;
use crate::output::Row;
use crate::scan::config::ScanConfig;
use crate::scan::counters::Counters;
use crate::scan::recv::Carried;
use crate::scan::stop::Stop;
use crate::scan::workers::Output;
use crate::scan::{Outcome, ScanArgs, EXIT_INTERRUPTED};
use mpscan_schema::trace::{TraceCounts, VERDICTS};
use mpscan_schema::RowSink;
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
    /// The scan classes `--from` takes.
    #[arg(long, value_delimiter = ',', value_name = "CLASSES", default_value = "tcp,echo,malformed")]
    pub classes: Vec<String>,
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
        anyhow::ensure!(
            self.scan.resume.is_none(),
            "--resume: a trace cannot be resumed yet; run it again (its probes are idempotent)"
        );
        Ok(())
    }

    /// Where the verdicts go.
    pub fn verdicts_path(&self, hops: Option<&Path>) -> Option<PathBuf> {
        self.verdicts.clone().or_else(|| hops.map(|h| PathBuf::from(format!("{}.verdicts.csv", h.display()))))
    }
}

/// The addresses of the rows of the scan result `path` whose class is one of `classes`, each
/// once, in file order.
pub fn from_scan(path: &Path, classes: &[String]) -> anyhow::Result<Vec<std::net::IpAddr>> {
    let known: Vec<&str> = crate::classify::Class::ALL.iter().map(|c| c.label()).collect();
    if let Some(c) = classes.iter().find(|c| !known.contains(&c.as_str())) {
        anyhow::bail!("--classes \"{c}\": no such class (use {})", known.join(", "));
    }
    let mut r =
        csv::Reader::from_path(path).map_err(|e| anyhow::anyhow!("{}: cannot read --from: {e}", path.display()))?;
    let h = r.headers().map_err(|e| anyhow::anyhow!("{}: cannot read --from: {e}", path.display()))?.clone();
    let col = |n: &str| h.iter().position(|c| c == n);
    let (Some(ip), Some(class)) = (col("ip"), col("class")) else {
        anyhow::bail!("{}: not an mpscan scan result (no ip and class columns)", path.display());
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| anyhow::anyhow!("{}: row {}: {e}", path.display(), i + 2))?;
        if !classes.iter().any(|c| c == &rec[class]) {
            continue;
        }
        let a: std::net::IpAddr = rec[ip]
            .parse()
            .map_err(|_| anyhow::anyhow!("{}: row {}: ip {:?} is not an address", path.display(), i + 2, &rec[ip]))?;
        if seen.insert(a) {
            out.push(a);
        }
    }
    anyhow::ensure!(!out.is_empty(), "{}: no row of class {}", path.display(), classes.join(", "));
    Ok(out)
}

/// Runs `mpscan trace`.
pub fn run(args: &mut TraceArgs) -> anyhow::Result<ExitCode> {
    args.check()?;
    // --from: the scan's addresses become a target list, read like any @FILE (blocklist included).
    let list = match &args.from {
        Some(p) => {
            let addrs = from_scan(p, &args.classes)?;
            let list = std::env::temp_dir().join(format!("mpscan-trace-from-{}.txt", std::process::id()));
            let text: String = addrs.iter().map(|a| format!("{a}\n")).collect();
            std::fs::write(&list, text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", list.display()))?;
            args.scan.targets.push(format!("@{}", list.display()));
            Some(list)
        }
        None => None,
    };
    let config = ScanConfig::resolve(&args.scan);
    if let Some(l) = list {
        let _ = std::fs::remove_file(l);
    }
    let mut config = config?;
    prepare(&mut config, args.max_ttl)?;
    if config.dry_run {
        crate::scan::dry_run::print(&config)?;
        return Ok(ExitCode::SUCCESS);
    }
    let sinks = open_sinks(config.output.as_deref(), args.verdicts_path(config.output.as_deref()).as_deref())?;
    let transport = config.transport()?;
    let stop = Arc::new(Stop::default());
    let signals = stop.on_signals()?;
    let (outcome, counts) = run_on(&config, transport, sinks, &stop);
    signals.close();
    if !config.quiet {
        let each: Vec<String> = VERDICTS.iter().map(|v| format!("{v} {}", counts.verdict(v))).collect();
        eprintln!("mpscan trace: {} verdicts: {}", counts.total_verdicts(), each.join(", "));
    }
    match outcome? {
        Outcome::Finished => Ok(ExitCode::SUCCESS),
        Outcome::Interrupted => {
            eprintln!("mpscan: interrupted; hops, verdicts and metadata written up to here");
            Ok(ExitCode::from(EXIT_INTERRUPTED))
        }
    }
}

/// Makes a resolved scan configuration a trace's: TTLs `1..=max_ttl`, no resume state (the
/// scan's state describes (target, port) pairs).
pub fn prepare(config: &mut ScanConfig, max_ttl: u8) -> anyhow::Result<()> {
    let triples =
        config.space.len().checked_mul(u64::from(max_ttl)).filter(|&n| n <= crate::targets::cyclic::Group::MAX_N);
    anyhow::ensure!(
        triples.is_some(),
        "--max-ttl {max_ttl}: too many (target, port, TTL) triples; trace fewer targets"
    );
    config.trace_ttls = Some(max_ttl);
    config.state_file = None;
    config.resume = None;
    Ok(())
}

/// Opens the hops CSV (standard output without a path) and the verdicts CSV (discarded without
/// a path).
pub fn open_sinks(hops: Option<&Path>, verdicts: Option<&Path>) -> anyhow::Result<TraceSinks> {
    let open = |p: Option<&Path>, fallback: fn() -> Box<dyn Write + Send>| -> anyhow::Result<Box<dyn Write + Send>> {
        Ok(match p {
            Some(p) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(p).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", p.display()))?,
            )),
            None => fallback(),
        })
    };
    Ok(TraceSinks {
        hops: csv::Writer::from_writer(open(hops, || Box::new(std::io::stdout()))?),
        verdicts: csv::Writer::from_writer(open(verdicts, || Box::new(std::io::sink()))?),
    })
}

/// Runs a prepared trace over `transport` (AF_PACKET rings, or the memory back ends in tests):
/// the scan's pipeline with the trace's receiver. Returns the outcome and the trace's counts (also
/// in the metadata JSON).
pub fn run_on(
    config: &ScanConfig,
    transport: crate::scan::workers::Transport,
    sinks: TraceSinks,
    stop: &Stop,
) -> (anyhow::Result<Outcome>, TraceCounts) {
    let probing_validator = config.validator();
    let tctx = TraceContext {
        ctx: config.receive_context(&probing_validator),
        max_ttl: config.trace_ttls.unwrap_or(DEFAULT_MAX_TTL),
    };
    let state = Mutex::new((sinks, TraceCounts::default()));
    let receiver = |rx: &mut (dyn Receive + Send), counters: &Counters, stop: &Stop| {
        let mut g = state.lock().unwrap_or_else(|p| p.into_inner());
        let (sinks, counts) = &mut *g;
        let report = trace_loop(rx, &tctx, sinks, counters, stop);
        *counts = report.trace.clone().unwrap_or_default();
        report
    };
    let output = Output { sink: Box::new(NoRows), carried: Carried::default(), checkpoint: None };
    let outcome = crate::scan::run_receiving(config, transport, output, stop, Some(&receiver));
    let tally = state.into_inner().map(|s| s.1).unwrap_or_default();
    (outcome, tally)
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
