//! `mpscan reclassify SCAN.pcap --metadata SCAN.json -o SCAN.csv`: the rows of a scan rebuilt
//! from its `--pcap` recording with the classifier of the mpscan that runs it, without sending a
//! packet. When the classifier improves, an old scan is re-read.
//!
//! The probes are recomputed from the metadata: the seed (which derives the validation secret),
//! the source address(es) and the probe versions ([`context_of`]). Every frame goes through the
//! scan's own receive stage (`crate::scan::recv::Stage`: validation, the duplicate filter, the
//! classifier, the row), stamped with the time it was recorded, which is the time the scan gave
//! its row: so the rows are the scan's, byte for byte (README, "Raw evidence").
//!
//! A recording of which no frame validates is not this scan's (or the metadata is another
//! scan's): that is an error, not an empty result (docs/ERRORS.md).

use crate::accept::Context;
use crate::net::PcapReader;
use crate::output::sink::{self, OutputFormat};
use crate::scan::counters::Counters;
use crate::scan::recv::{Carried, Stage};
use crate::scan::stop::Stop;
use anyhow::{bail, Context as _};
use clap::{Args, ValueEnum};
use mpscan_schema::metadata::ConfigRecord;
use mpscan_schema::{Class, Col, Metadata, RowSink};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `mpscan reclassify SCAN.pcap --metadata SCAN.json [-o SCAN.csv] [--counts OUT.json]`
#[derive(Debug, Args)]
#[command(after_help = "EXAMPLE:\n  mpscan scan ... --pcap scan.pcap -o scan.csv -m scan.json\n  \
    mpscan reclassify scan.pcap --metadata scan.json -o scan-again.csv")]
pub struct ReclassifyArgs {
    /// The scan's `--pcap` recording.
    #[arg(value_name = "SCAN.pcap")]
    pub pcap: PathBuf,

    /// The scan's metadata JSON (`-m`): its seed, sources and probe versions give the probes.
    #[arg(short = 'm', long, value_name = "SCAN.json")]
    pub metadata: PathBuf,

    /// Result file, in the scan's format, columns and classes (default, or `-`: standard output).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Also write the scan's metadata with its receive counters (responses received, validated,
    /// invalid by reason, duplicates, classes, rows) replaced by the re-classification's.
    #[arg(long, value_name = "FILE")]
    pub counts: Option<PathBuf>,
}

/// What the receiver of a scan with `record` accepts: its validation secret (from the seed), its
/// source addresses and ports and its probe versions ([`Context::from_record`]), once the record
/// is known to be a scan's. It must agree with `ScanConfig::receive_context` (a test checks it
/// does).
pub fn context_of(record: &ConfigRecord) -> anyhow::Result<Context> {
    if record.shards == 0 || record.source_ip.is_empty() || record.probe_versions.is_empty() {
        bail!("the metadata does not record a scan's configuration (seed, sources, probe versions)");
    }
    Context::from_record(record)
}

/// Runs `mpscan reclassify`.
pub fn run(a: &ReclassifyArgs) -> anyhow::Result<()> {
    let output = a.output.as_deref().filter(|p| p.as_os_str() != "-");
    let md = Metadata::read(&a.metadata)?;
    let existed = output.is_some_and(|o| o.exists());
    let done = reclassify(a, &md, output);
    if done.is_err() && !existed {
        // No row was written (or the file is not to be trusted): leave no output of ours behind.
        if let Some(o) = output {
            let _ = std::fs::remove_file(o);
        }
    }
    let m = done?;
    if let Some(c) = &a.counts {
        m.write(c)?;
    }
    eprintln!(
        "mpscan: reclassified {} frames: {} validated, {} duplicates, {} rows",
        m.responses_received, m.responses_validated, m.duplicates, m.rows
    );
    Ok(())
}

/// Re-classifies the recording `a.pcap` of the scan `md` into `output`; returns the scan's
/// metadata with the receive counters replaced by the re-classification's.
fn reclassify(a: &ReclassifyArgs, md: &Metadata, output: Option<&std::path::Path>) -> anyhow::Result<Metadata> {
    let meta = a.metadata.display();
    let ctx = context_of(&md.config).with_context(|| format!("{meta}"))?;
    let mut reader = PcapReader::open(&a.pcap).map_err(|e| anyhow::anyhow!("{}: {e}", a.pcap.display()))?;
    let mut sink = sink_of(&md.config, output)?;
    let counters = Counters::new(0);
    let stop = Stop::with_max_rows(md.config.max_results);
    let mut stage = Stage::new(&ctx, &counters, &stop, Carried::default());
    while let Some((at, frame)) = reader.next_frame().map_err(|e| anyhow::anyhow!("{}: {e}", a.pcap.display()))? {
        stage.frame(frame, Some(at), sink.as_mut());
        if let Some(e) = stage.error() {
            bail!("{e}");
        }
    }
    let received = Counters::get(&counters.received);
    if received > 0 && Counters::get(&counters.validated) == 0 {
        bail!(
            "{}: none of its {received} frames answers a probe of the scan in {meta} (seed {}): it is not that \
             scan's recording; give the metadata of the scan that recorded it",
            a.pcap.display(),
            md.config.seed
        );
    }
    sink.finish()?;
    let report = stage.finish();
    let mut classes: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for v in &ctx.versions {
        let per = classes.entry(v.label().to_string()).or_default();
        for c in Class::ALL {
            per.insert(c.label().to_string(), report.classes.get(&(*v, c)).copied().unwrap_or(0));
        }
    }
    Ok(Metadata {
        responses_received: received,
        responses_validated: Counters::get(&counters.validated),
        responses_invalid: report.invalid.values().sum(),
        invalid_reasons: report.invalid,
        duplicates: report.duplicates,
        classes,
        rows: Counters::get(&counters.rows),
        ..md.clone()
    })
}

/// The result sink of the scan `record`: its format, its columns (`-f`) and its classes
/// (`--classes`), so that the rows come out as the scan wrote them.
fn sink_of(record: &ConfigRecord, output: Option<&std::path::Path>) -> anyhow::Result<Box<dyn RowSink + Send>> {
    let format = match record.output_format.as_deref() {
        None => OutputFormat::Csv,
        Some(f) => OutputFormat::from_str(f, true)
            .map_err(|_| anyhow::anyhow!("the metadata's output format {f:?} is not one mpscan writes"))?,
    };
    let columns = match &record.output_fields {
        None => Col::ALL.to_vec(),
        Some(f) => Col::parse_list(&f.join(",")).map_err(|e| anyhow::anyhow!("the metadata's output fields: {e}"))?,
    };
    let inner = sink::create(output, format, &columns)?;
    Ok(match &record.classes_written {
        None => inner,
        Some(c) => {
            let classes =
                Class::parse_list(&c.join(",")).map_err(|e| anyhow::anyhow!("the metadata's classes: {e}"))?;
            Box::new(sink::OnlyClasses { inner, classes })
        }
    })
}
