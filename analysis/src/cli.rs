//! Command-line arguments of the analysis commands (`summary`, `diff`, `synth`) and the glue that
//! runs them: read what the user typed, resolve it into finished options, stream the rows, print.

use crate::diff::{self, Diff};
use crate::metadata::ScanMeta;
use crate::pfx2as::Pfx2As;
use crate::summary::{self, Aggregate, Level, Options};
use crate::synth::{self, SynthConfig};
use crate::table::{render, Format};
use anyhow::{bail, Context, Result};
use clap::Args;
use mpscan_schema::reader::{for_each_row, Input};
use mpscan_schema::{Class, Col, ProbeVersion};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// `mpscan summary`: the headline table of one scan (its shards).
#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// Result files of one scan, CSV or Parquet (pass every shard: they are one scan). Optional with --trace.
    #[arg(required_unless_present = "trace", value_name = "SCAN.csv")]
    pub csv: Vec<PathBuf>,
    /// The scan's metadata JSON (one per shard; repeat or list several) for "addresses probed".
    #[arg(long, num_args = 1.., value_name = "SCAN.json")]
    pub metadata: Vec<PathBuf>,
    /// CAIDA RouteViews prefix-to-AS file for the origin-AS breakdown.
    #[arg(long, value_name = "FILE")]
    pub pfx2as: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Write SVG charts and the IPv4 Hilbert maps (PNG, and an SVG overview) into this directory.
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// Rows per top-N table (0 = all).
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Breakdowns: comma-separated 8,16,24 (IPv4 prefixes), 32,48 (IPv6 prefixes), as (origin AS,
    /// needs --pfx2as; added by default when --pfx2as is given).
    #[arg(long, value_delimiter = ',', default_value = "8,16,24,32,48")]
    pub by: Vec<String>,
    /// Only rows of this probe version.
    #[arg(long, value_parser = ["v0", "v1"])]
    pub probe: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// CSVs written by `mpscan verify -o` for this scan: adds a table of verdicts (confirmed,
    /// fallback, no-data, refused, unreachable, timeout, error) beside the SYN-ACK classes.
    #[arg(long, num_args = 1.., value_name = "VERIFIED.csv")]
    pub verified: Vec<PathBuf>,
    /// Verdicts CSVs written by `mpscan trace` (its --verdicts): adds the trace tables, verdicts
    /// by the class each target had in the scan given, and the routers where MP_CAPABLE was lost.
    #[arg(long, num_args = 1.., value_name = "VERDICTS.csv")]
    pub trace: Vec<PathBuf>,
    /// The trace's hops CSVs (its -o): names the last router that quoted the option intact.
    #[arg(long, num_args = 1.., value_name = "HOPS.csv", requires = "trace")]
    pub hops: Vec<PathBuf>,
    /// The trace's metadata JSON: its verdict counts are checked against the verdicts files.
    #[arg(long, num_args = 1.., value_name = "TRACE.json", requires = "trace")]
    pub trace_metadata: Vec<PathBuf>,
    /// The IPv6 hitlist service's aliased-prefix list (one prefix per line, `#` comments, IPv6 or
    /// IPv4): rows inside those prefixes are counted apart and left out of the server counts.
    #[arg(long, value_name = "FILE")]
    pub aliased: Option<PathBuf>,
    /// Flag an IPv6 /64 or /96 as likely aliased when at least K answered addresses in it (same
    /// port and probe) all answered identically (0 = off; 1 is refused: one answer is no evidence).
    #[arg(long, value_name = "K", default_value_t = 3, value_parser = parse_alias_min)]
    pub alias_min: u32,
    /// CAIDA AS-to-organization file (`YYYYMMDD.as-org2info.txt`): adds the top organizations
    /// (by the origin AS, so it needs --pfx2as).
    #[arg(long, value_name = "FILE")]
    pub as_org: Option<PathBuf>,
    /// Economy (country) of each address from a MaxMind-format database (GeoLite2-Country,
    /// IPinfo country .mmdb) or a CSV of start,end,country ranges: adds the top economies.
    #[arg(long, value_name = "FILE")]
    pub geo: Option<PathBuf>,
}

fn parse_alias_min(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(1) => Err("a single answer is never evidence of aliasing: use 2 or more, or 0 to turn detection off".into()),
        Ok(k) => Ok(k),
        Err(_) => Err(format!("{s:?} is not a count of rows (2 or more, or 0 for off)")),
    }
}

/// `mpscan diff`: change between two scans.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier scan's result file, CSV or Parquet (for a sharded scan, list its shards with --old).
    #[arg(value_name = "OLD.csv")]
    pub old: PathBuf,
    /// The later scan's CSV (more shards with --new).
    #[arg(value_name = "NEW.csv")]
    pub new: PathBuf,
    /// More shards of the old scan.
    #[arg(long = "old", num_args = 1.., value_name = "CSV")]
    pub old_more: Vec<PathBuf>,
    /// More shards of the new scan.
    #[arg(long = "new", num_args = 1.., value_name = "CSV")]
    pub new_more: Vec<PathBuf>,
    /// Entries per list (0 = all).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Write an SVG chart into this directory.
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// Worker threads for reading the old scan (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// `mpscan trend`: a series of scans, ordered by start time (analysis/src/trend.rs).
#[derive(Debug, Args)]
pub struct TrendArgs {
    /// Scans one after another: each its metadata JSON (a sharded scan: every shard's) followed
    /// by its result files, CSV or Parquet (a JSON given alone stands for the .csv or .parquet
    /// beside it), e.g. `2021.json 2021-*.csv 2022.json 2022.parquet`. Any order: scans are sorted
    /// by the metadata's start_time.
    #[arg(required = true, value_name = "FILE")]
    pub scans: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Write the trend chart (SVG line chart) into this directory.
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// `mpscan synth`: synthetic result CSVs.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Rows to write.
    #[arg(long)]
    pub rows: u64,
    /// Seed: the same seed gives the same file.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output CSV (`-` = stdout).
    #[arg(long, short, default_value = "-")]
    pub output: PathBuf,
    /// Also write the scan's metadata JSON here.
    #[arg(long, value_name = "FILE")]
    pub metadata: Option<PathBuf>,
    /// Probe versions: v0, v1 or both (one row per version and target).
    #[arg(long, default_value = "v1", value_parser = ["v0", "v1", "both"])]
    pub probe: String,
    /// Ports, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "443")]
    pub ports: Vec<u16>,
    /// Share of targets that are IPv6 (0 to 1; addresses in 2001:db8::/32).
    #[arg(long, default_value_t = 0.0)]
    pub ipv6: f64,
}

fn threads(t: Option<usize>) -> usize {
    t.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())).max(1)
}

fn print(s: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("cannot write to stdout"),
    }
}

/// Resolve summary arguments into options (reads the pfx2as file).
pub fn summary_options(a: &SummaryArgs) -> Result<Options> {
    let mut levels = vec![];
    for s in &a.by {
        let l = Level::parse(s).map_err(|e| anyhow::anyhow!("--by: {e}"))?;
        if !levels.contains(&l) {
            levels.push(l);
        }
    }
    if a.as_org.is_some() && a.pfx2as.is_none() {
        bail!("--as-org needs --pfx2as FILE: organizations are found through the origin AS");
    }
    // The enrichment files are read while the pfx2as file is: on a full routing table and a
    // country database, reading them is most of summary's start-up.
    let (pfx_read, files) = std::thread::scope(|s| {
        let files = s.spawn(|| crate::enrich::Files::read(a.as_org.as_deref(), a.geo.as_deref()));
        let pfx = a.pfx2as.as_deref().map(Pfx2As::read);
        (pfx, files.join().unwrap_or_default())
    });
    let pfx2as = match (&a.pfx2as, pfx_read) {
        (Some(p), Some(t)) => {
            let t = t?;
            crate::enrich::warn_skips(p, t.skipped, &t.skip_examples, "");
            Some(Arc::new(t))
        }
        _ if levels.contains(&Level::As) => bail!("--by as needs --pfx2as FILE"),
        _ => None,
    };
    if pfx2as.is_some() && !levels.contains(&Level::As) {
        levels.push(Level::As);
    }
    let aliased = match &a.aliased {
        Some(p) => {
            let t = crate::aliased::AliasedList::read(p)?;
            crate::enrich::warn_skips(p, t.skipped, &t.skip_examples, crate::aliased::FIX);
            Some(Arc::new(t))
        }
        None => None,
    };
    let enrich = crate::enrich::Enrichment::from_files(
        a.pfx2as.as_deref(),
        pfx2as.as_deref(),
        a.as_org.as_deref(),
        a.geo.as_deref(),
        files,
    )?;
    Ok(Options {
        top: a.top,
        levels,
        probe: a.probe.as_deref().and_then(|p| ProbeVersion::parse(p.as_bytes())),
        pfx2as,
        aliased,
        alias_min: a.alias_min,
        enrich,
    })
}

/// Stream a scan's CSVs into one aggregate.
pub fn aggregate(csv: &[PathBuf], opts: &Options, threads: usize) -> Result<Aggregate> {
    let inputs = Input::open_all(csv, Col::SUMMARY)?;
    let parts = for_each_row(&inputs, threads, || Aggregate::new(opts), |agg, row| agg.add(row))?;
    let mut it = parts.into_iter();
    let mut all = it.next().unwrap_or_else(|| Aggregate::new(opts));
    for p in it {
        all.merge(p);
    }
    all.finish();
    Ok(all)
}

/// The trace tables (`--trace`), and warnings where the trace's metadata disagrees with its files.
pub fn trace_tables(a: &SummaryArgs, opts: &Options) -> Result<Vec<crate::table::Table>> {
    use crate::trace;
    let verdicts = trace::read_verdicts(&a.trace)?;
    let wanted = trace::keys(&verdicts);
    let classes = if a.csv.is_empty() { None } else { Some(trace::scan_classes(&a.csv, &wanted, threads(a.threads))?) };
    let hops = if a.hops.is_empty() { None } else { Some(trace::read_hop_routers(&a.hops, &wanted)?) };
    if !a.trace_metadata.is_empty() {
        let m = ScanMeta::read_all(&a.trace_metadata)?;
        let Some(counts) = m.trace else {
            bail!(
                "--trace-metadata: {} is not a trace's metadata (no \"trace\" counts)",
                a.trace_metadata[0].display()
            );
        };
        for v in mpscan_schema::trace::VERDICTS {
            let in_files = verdicts.iter().filter(|r| r.verdict == v).count() as u64;
            if counts.verdict(v) != in_files {
                eprintln!(
                    "mpscan: warning: the trace's metadata counts {} {v} verdicts, its files {in_files}",
                    counts.verdict(v)
                );
            }
        }
    }
    Ok(vec![
        trace::by_class_table(&verdicts, classes.as_ref()),
        trace::routers_table(&verdicts, hops.as_ref(), opts.pfx2as.as_deref(), opts.top),
    ])
}

/// Run `mpscan summary`.
pub fn summary(a: &SummaryArgs) -> Result<()> {
    let opts = summary_options(a)?;
    if a.csv.is_empty() {
        // A trace without its scan: only the trace tables.
        return print(&render(&trace_tables(a, &opts)?, a.format));
    }
    let meta = if a.metadata.is_empty() { None } else { Some(ScanMeta::read_all(&a.metadata)?) };
    let agg = aggregate(&a.csv, &opts, threads(a.threads))?;
    if let Some(m) = &meta {
        for w in m.warnings().into_iter().chain(summary::check_against_metadata(&agg, m)) {
            eprintln!("mpscan: warning: {w}");
        }
    }
    let mut tables = summary::tables(&agg, meta.as_ref(), &opts);
    if !a.verified.is_empty() {
        let v = crate::verified::Verified::read_all(&a.verified)?;
        let in_scan = |probe: &str, class: &str| {
            let p = ProbeVersion::parse(probe.as_bytes())?;
            let c = Class::ALL.into_iter().find(|c| c.label() == class)?;
            Some(agg.counts(None, p)[c as usize])
        };
        // Right after the headline table(s), which it qualifies.
        let at = tables.iter().position(|t| !t.title.starts_with("Headline")).unwrap_or(tables.len());
        tables.insert(at, v.table(in_scan));
    }
    if !a.trace.is_empty() {
        tables.extend(trace_tables(a, &opts)?);
    }
    print(&render(&tables, a.format))?;
    if let Some(dir) = &a.plots {
        let files = crate::plots::summary_charts(&agg, &opts, dir)?;
        eprintln!("mpscan: wrote {} charts to {}", files.len(), dir.display());
    }
    Ok(())
}

/// Run `mpscan diff`.
pub fn diff(a: &DiffArgs) -> Result<()> {
    let old: Vec<PathBuf> = std::iter::once(a.old.clone()).chain(a.old_more.iter().cloned()).collect();
    let new: Vec<PathBuf> = std::iter::once(a.new.clone()).chain(a.new_more.iter().cloned()).collect();
    let io = Input::open_all(&old, diff::NEEDED)?;
    let inew = Input::open_all(&new, diff::NEEDED)?;
    let d = Diff::run(&io, &inew, threads(a.threads))?;
    print(&render(&diff::tables(&d, a.limit), a.format))?;
    if let Some(dir) = &a.plots {
        let files = crate::plots::diff_charts(&d, dir)?;
        eprintln!("mpscan: wrote {} chart to {}", files.len(), dir.display());
    }
    Ok(())
}

/// Run `mpscan trend`.
pub fn trend(a: &TrendArgs) -> Result<()> {
    use crate::trend;
    let scans = trend::order(trend::group(&a.scans)?)?;
    let t = trend::run(scans, threads(a.threads))?;
    print(&render(&trend::tables(&t), a.format))?;
    if let Some(dir) = &a.plots {
        let files = trend::chart(&t, dir)?;
        eprintln!("mpscan: wrote {} chart to {}", files.len(), dir.display());
    }
    Ok(())
}

/// Run `mpscan synth`.
pub fn synth(a: &SynthArgs) -> Result<()> {
    let probes = match a.probe.as_str() {
        "v0" => vec![ProbeVersion::V0],
        "v1" => vec![ProbeVersion::V1],
        _ => vec![ProbeVersion::V1, ProbeVersion::V0],
    };
    let cfg = SynthConfig { rows: a.rows, seed: a.seed, probes, ports: a.ports.clone(), ipv6_share: a.ipv6 };
    synth::write_files(&cfg, &a.output, a.metadata.as_deref())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::HEADLINE_ROWS;
    use crate::table::Cell;

    fn sargs(csv: Vec<PathBuf>) -> SummaryArgs {
        SummaryArgs {
            csv,
            metadata: vec![],
            pfx2as: None,
            format: Format::Text,
            plots: None,
            top: 10,
            by: "8,16,24,32,48".split(',').map(String::from).collect(),
            probe: None,
            threads: Some(2),
            verified: vec![],
            trace: vec![],
            hops: vec![],
            trace_metadata: vec![],
            aliased: None,
            alias_min: 3,
            as_org: None,
            geo: None,
        }
    }

    /// A synthetic scan, split into two shards, summarised: every count equals what synth wrote.
    #[test]
    fn synthetic_counts_known_by_construction() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SynthConfig {
            rows: 120_000,
            seed: 3,
            probes: vec![ProbeVersion::V1, ProbeVersion::V0],
            ports: vec![443, 80],
            ipv6_share: 0.05,
        };
        let (csv, meta) = (dir.path().join("s.csv"), dir.path().join("s.json"));
        let st = synth::write_files(&cfg, &csv, Some(&meta)).unwrap();
        // Shard it by hand: header + first half, header + second half.
        let text = std::fs::read_to_string(&csv).unwrap();
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        let rows: Vec<&str> = lines.collect();
        let (a, b) = rows.split_at(rows.len() / 2);
        let (pa, pb) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
        std::fs::write(&pa, format!("{header}\n{}\n", a.join("\n"))).unwrap();
        std::fs::write(&pb, format!("{header}\n{}\n", b.join("\n"))).unwrap();
        let opts = summary_options(&sargs(vec![])).unwrap();
        let agg = aggregate(&[pa, pb], &opts, 2).unwrap();
        assert_eq!(agg.rows, st.rows);
        for ((port, probe, class), n) in &st.classes {
            assert_eq!(agg.counts(Some(*port), *probe)[*class as usize], *n, "{port} {probe:?} {class:?}");
        }
        for ((probe, v, f), n) in &st.flags {
            assert_eq!(agg.flags.get(&(*probe, Some(*v), Some(*f))), Some(n));
        }
        // Six middlebox models, each seen with both probe versions (option length differs).
        assert_eq!(st.models.len(), 6);
        assert_eq!(agg.fingerprints.len(), 12);
        assert_eq!(agg.fingerprints.values().map(|s| s.count).sum::<u64>(), st.class(Class::Echo));
        // Metadata gives addresses probed.
        let m = ScanMeta::read_all(&[meta]).unwrap();
        assert_eq!(summary::check_against_metadata(&agg, &m), Vec::<String>::new());
        let t = summary::headline(&agg, Some(&m), None);
        assert_eq!(t.int(HEADLINE_ROWS[0], "probe v1"), Some(st.targets * synth::PROBED_PER_ANSWER));
        assert_eq!(t.int("answered", "probe v1"), Some(st.targets));
    }

    /// Single-version synth at the 2018 mix: the MP_CAPABLE split is the study's.
    #[test]
    fn summary_of_2018_mix() {
        let dir = tempfile::tempdir().unwrap();
        let cfg =
            SynthConfig { rows: 1_000_000, seed: 1, probes: vec![ProbeVersion::V1], ports: vec![443], ipv6_share: 0.0 };
        let csv = dir.path().join("s.csv");
        synth::write_files(&cfg, &csv, None).unwrap();
        let opts = summary_options(&sargs(vec![])).unwrap();
        let agg = aggregate(&[csv], &opts, 2).unwrap();
        let t = summary::headline(&agg, None, None);
        let want = synth::class_counts(1_000_000);
        assert_eq!(t.int("of which echoed", "probe v1"), Some(want[Class::Echo as usize]));
        assert_eq!(t.int("of which valid MPTCP", "probe v1"), Some(want[Class::Mptcp as usize]));
        // 77,384 / 88,484 = 87.46% echoes, as in 2018.
        let Cell::Pct(Some(p)) = t.row("of which echoed").unwrap()[2] else { panic!() };
        assert!((p - 87.46).abs() < 0.3, "{p}");
        // Real servers cluster: the top /16 holds far more than a uniform share.
        let (v, total, distinct) = summary::top_networks(&agg, Level::V4p16, Class::Mptcp, 1);
        assert!(distinct <= 64 && v[0].1[0] * 10 > total, "{distinct} {v:?}");
    }

    #[test]
    fn summary_end_to_end_outputs_and_plots() {
        let dir = tempfile::tempdir().unwrap();
        let cfg =
            SynthConfig { rows: 200_000, seed: 9, probes: vec![ProbeVersion::V1], ports: vec![443], ipv6_share: 0.01 };
        let csv = dir.path().join("s.csv");
        synth::write_files(&cfg, &csv, None).unwrap();
        let pfx = dir.path().join("p.pfx2as");
        std::fs::write(&pfx, "1.0.0.0\t8\t1\n64.0.0.0\t2\t64\n128.0.0.0\t1\t128\nbroken line\n").unwrap();
        let mut a = sargs(vec![csv]);
        a.pfx2as = Some(pfx);
        a.plots = Some(dir.path().join("plots"));
        a.format = Format::Json;
        summary(&a).unwrap();
        let files: Vec<PathBuf> =
            std::fs::read_dir(dir.path().join("plots")).unwrap().map(|e| e.unwrap().path()).collect();
        for want in [
            "classes.svg",
            "mp_capable.svg",
            "fingerprints.svg",
            "top_mptcp_16.svg",
            "top_echo_24.svg",
            "top_echo_as.svg",
            "top_echo_v6_48.svg",
        ] {
            assert!(files.iter().any(|f| f.ends_with(want)), "{want} missing from {files:?}");
        }
        crate::plots::tests::check_all(&files);
    }

    /// `--trace` with and without the scan: verdicts by the scan's class, and the metadata check.
    #[test]
    fn trace_tables_with_and_without_the_scan() {
        let dir = tempfile::tempdir().unwrap();
        let scan = dir.path().join("scan.csv");
        std::fs::write(
            &scan,
            format!(
                "{}\n198.18.0.1,443,v1,tcp,198.18.0.1,,,,,false,false,60,29200,2026-01-01T00:00:00Z,\n",
                mpscan_schema::COLUMNS.join(",")
            ),
        )
        .unwrap();
        let verdicts = dir.path().join("v.csv");
        std::fs::write(
            &verdicts,
            format!(
                "{}\n198.18.0.1,443,v1,removed-at,3,198.19.1.3,2,,,removed\n198.18.0.7,443,v1,intact,,,4,5,mptcp,answered\n",
                mpscan_schema::trace::VERDICT_COLUMNS.join(",")
            ),
        )
        .unwrap();
        let mut a = sargs(vec![scan]);
        a.trace = vec![verdicts];
        let opts = summary_options(&a).unwrap();
        let t = trace_tables(&a, &opts).unwrap();
        assert_eq!((t[0].int("tcp", "removed-at"), t[0].int("not in the scan", "intact")), (Some(1), Some(1)));
        assert_eq!(t[1].int("removed-at", "targets"), Some(1));
        summary(&a).unwrap();
        a.csv.clear();
        assert_eq!(trace_tables(&a, &opts).unwrap()[0].int("(no scan given)", "traced"), Some(2));
        summary(&a).unwrap();
        // A scan's metadata given as the trace's: one line.
        let md = dir.path().join("scan.json");
        std::fs::write(&md, r#"{"targets_probed":1}"#).unwrap();
        a.trace_metadata = vec![md];
        assert!(trace_tables(&a, &opts).unwrap_err().to_string().contains("is not a trace's metadata"));
    }

    #[test]
    fn bad_arguments() {
        let mut a = sargs(vec![]);
        a.by = vec!["as".into()];
        assert!(summary_options(&a).unwrap_err().to_string().contains("--pfx2as"));
        a.by = vec!["12".into()];
        assert!(summary_options(&a).unwrap_err().to_string().contains("unknown breakdown"));
    }

    #[test]
    fn diff_of_two_synthetic_scans() {
        // The same scan twice: nothing changed.
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
        let c = |rows| SynthConfig { rows, seed: 5, probes: vec![ProbeVersion::V1], ports: vec![443], ipv6_share: 0.0 };
        synth::write_files(&c(20_000), &a, None).unwrap();
        synth::write_files(&c(20_000), &b, None).unwrap();
        let d = Diff::run(
            &Input::open_all(std::slice::from_ref(&a), diff::NEEDED).unwrap(),
            &Input::open_all(std::slice::from_ref(&b), diff::NEEDED).unwrap(),
            2,
        )
        .unwrap();
        assert!(d.changes.is_empty());
        assert_eq!(d.old_targets, 20_000);
        let args = DiffArgs {
            old: a,
            new: b,
            old_more: vec![],
            new_more: vec![],
            limit: 5,
            format: Format::Markdown,
            plots: Some(dir.path().join("p")),
            threads: None,
        };
        diff(&args).unwrap();
        crate::plots::tests::check_all(&[dir.path().join("p/diff.svg")]);
    }
}
