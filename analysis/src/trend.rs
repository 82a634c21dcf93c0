//! Series over time (`mpscan trend`): several scans, each its metadata and its result shards,
//! ordered by the metadata's start time; per scan the MPTCP-option answers and all answers by
//! probe version, address family and port; between consecutive scans what `mpscan diff` counts
//! (appeared, disappeared, switched class), with [`crate::diff::Diff`] itself.
//!
//! The command line lists scans one after another, each as its metadata JSON file(s) followed by
//! its result files (CSV or Parquet, any mix), the way a shell glob names them:
//! `mpscan trend 2021/scan.json 2021/scan-*.csv 2022/scan-*.json 2022/scan-*.parquet`. A `.json`
//! argument after a result file starts the next scan; a sharded scan gives all its shards'
//! metadata files (their earliest `start_time` is the scan's start). A metadata file given alone
//! stands for `NAME.csv` or `NAME.parquet` beside it. Rules (README.md, docs/ERRORS.md): every scan needs
//! metadata with a `start_time`; two scans may not start at the same time (the same scan given
//! twice, most likely); each is a one-line error.

use crate::diff::{self, Diff};
use crate::summary::Counts;
use crate::table::{Cell, Table};
use anyhow::{bail, Context, Result};
use mpscan_schema::reader::{for_each_row, Input};
use mpscan_schema::{Class, Col, Ip, Metadata, ProbeVersion, NCLASS};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The classes a trend follows one by one; the rest count in `answers` only.
pub const FOLLOWED: [Class; 3] = [Class::Mptcp, Class::Echo, Class::Malformed];

/// One scan of a series: its files and when it started.
#[derive(Debug, Clone)]
pub struct Scan {
    /// Its metadata file(s).
    pub metadata: Vec<PathBuf>,
    /// Its result files (shards), CSV or Parquet.
    pub shards: Vec<PathBuf>,
    /// The earliest `start_time` of its metadata, as written.
    pub start: String,
    /// `start`, parsed.
    pub start_at: SystemTime,
    /// Name in tables and charts: the start date, or the start time when two scans share a date.
    pub label: String,
}

/// Is this argument a metadata file (by its `.json` extension)?
fn is_metadata(p: &Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Split the command line into scans: metadata file(s), then result files (see the module doc).
pub fn group(args: &[PathBuf]) -> Result<Vec<(Vec<PathBuf>, Vec<PathBuf>)>> {
    let mut scans: Vec<(Vec<PathBuf>, Vec<PathBuf>)> = vec![];
    for a in args {
        if is_metadata(a) {
            // Consecutive metadata files (a sharded scan's) are one scan.
            match scans.last_mut() {
                Some((meta, shards)) if shards.is_empty() => meta.push(a.clone()),
                _ => scans.push((vec![a.clone()], vec![])),
            }
        } else {
            match scans.last_mut() {
                Some((_, shards)) => shards.push(a.clone()),
                None => bail!(
                    "{}: no metadata before it: give each scan as its metadata JSON followed by its result files",
                    a.display()
                ),
            }
        }
    }
    for (meta, shards) in &mut scans {
        if shards.is_empty() {
            // A metadata file alone stands for the result file beside it.
            let m = &meta[0];
            let beside = ["csv", "parquet"].map(|e| m.with_extension(e));
            match beside.iter().find(|p| p.exists()) {
                Some(p) => shards.push(p.clone()),
                None => bail!(
                    "{}: no result files after it and no {} beside it: list the scan's shards after its metadata",
                    m.display(),
                    beside[0].file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
                ),
            }
        }
    }
    if scans.len() < 2 {
        bail!("a trend needs at least two scans (each its metadata JSON followed by its result files)");
    }
    Ok(scans)
}

/// Read the scans' start times and order them; see the module doc for the rules.
pub fn order(groups: Vec<(Vec<PathBuf>, Vec<PathBuf>)>) -> Result<Vec<Scan>> {
    let mut scans = vec![];
    for (metadata, shards) in groups {
        let mut first: Option<(SystemTime, String)> = None;
        for m in &metadata {
            let md = Metadata::read(m)?;
            if md.start_time.is_empty() {
                bail!("{}: no start_time in the metadata: a trend orders scans by it", m.display());
            }
            let t = humantime::parse_rfc3339_weak(&md.start_time).map_err(|e| {
                anyhow::anyhow!("{}: start_time {:?} is not an RFC 3339 time ({e})", m.display(), md.start_time)
            })?;
            if first.as_ref().is_none_or(|(f, _)| t < *f) {
                first = Some((t, md.start_time.clone()));
            }
        }
        let Some((start_at, start)) = first else { bail!("a scan without metadata") };
        scans.push(Scan { metadata, shards, start, start_at, label: String::new() });
    }
    scans.sort_by_key(|s| s.start_at);
    for w in scans.windows(2) {
        if w[0].start_at == w[1].start_at {
            bail!(
                "{} and {} both start at {}: the same scan given twice? (give each scan once)",
                w[0].metadata[0].display(),
                w[1].metadata[0].display(),
                w[1].start
            );
        }
    }
    let dates: Vec<String> = scans.iter().map(|s| s.start.chars().take(10).collect()).collect();
    let distinct = dates.windows(2).all(|w| w[0] != w[1]);
    for (s, d) in scans.iter_mut().zip(dates) {
        s.label = if distinct { d } else { s.start.chars().take(19).collect::<String>() + "Z" };
    }
    Ok(scans)
}

/// Per-class answers of one scan by (probe version, IPv6, port).
pub type ScanCounts = BTreeMap<(ProbeVersion, bool, u16), Counts>;

/// Count one scan's answers, in parallel over its shards.
pub fn count(inputs: &[Input], threads: usize) -> Result<ScanCounts> {
    let parts = for_each_row(inputs, threads, ScanCounts::new, |m, r| {
        m.entry((r.probe, matches!(r.ip, Ip::V6(_)), r.port)).or_insert([0; NCLASS])[r.class as usize] += 1;
        Ok(())
    })?;
    let mut all = ScanCounts::new();
    for p in parts {
        for (k, v) in p {
            let e = all.entry(k).or_insert([0; NCLASS]);
            for (a, b) in e.iter_mut().zip(v) {
                *a += b;
            }
        }
    }
    Ok(all)
}

/// A computed series: the scans in time order, their counts, and the diff of each consecutive pair.
pub struct Trend {
    /// Scans, earliest first.
    pub scans: Vec<Scan>,
    /// Counts of each scan.
    pub counts: Vec<ScanCounts>,
    /// `diffs[i]` compares `scans[i]` with `scans[i + 1]`.
    pub diffs: Vec<Diff>,
}

/// Read every scan (counts) and diff each consecutive pair.
pub fn run(scans: Vec<Scan>, threads: usize) -> Result<Trend> {
    let mut counts = vec![];
    let mut inputs = vec![];
    for s in &scans {
        let inp = Input::open_all(&s.shards, Col::DIFF)?;
        counts.push(count(&inp, threads)?);
        inputs.push(inp);
    }
    let mut diffs = vec![];
    for w in inputs.windows(2) {
        diffs.push(Diff::run(&w[0], &w[1], threads)?);
    }
    Ok(Trend { scans, counts, diffs })
}

fn family(v6: bool) -> &'static str {
    if v6 {
        "IPv6"
    } else {
        "IPv4"
    }
}

/// Sum of a scan's counts over probe, family and port.
pub fn totals(c: &ScanCounts) -> Counts {
    let mut t = [0; NCLASS];
    for v in c.values() {
        for (a, b) in t.iter_mut().zip(v) {
            *a += b;
        }
    }
    t
}

/// The tables of `mpscan trend`: totals per scan, the breakdown by probe, family and port, and
/// the changes between consecutive scans.
pub fn tables(t: &Trend) -> Vec<Table> {
    let followed: Vec<&str> = FOLLOWED.iter().map(|c| c.label()).collect();
    let mut cols = vec!["scan", "start"];
    cols.extend(&followed);
    cols.push("answers");
    let mut tot = Table::new("Scans over time", &cols);
    for (s, c) in t.scans.iter().zip(&t.counts) {
        let sum = totals(c);
        let mut row = vec![Cell::text(&s.label), Cell::text(&s.start)];
        row.extend(FOLLOWED.iter().map(|k| Cell::Int(sum[*k as usize])));
        row.push(Cell::Int(sum.iter().sum()));
        tot.push(row);
    }
    let files: Vec<String> =
        t.scans.iter().map(|s| format!("{}: {} result file(s)", s.label, s.shards.len())).collect();
    let tot = tot.with_note(format!(
        "answers = every row (all classes); scans ordered by their metadata's start_time; {}",
        files.join(", ")
    ));

    let mut cols = vec!["scan", "probe", "family", "port"];
    cols.extend(&followed);
    cols.push("answers");
    let mut by = Table::new("Scans over time by probe version, family and port", &cols);
    for (s, c) in t.scans.iter().zip(&t.counts) {
        for ((probe, v6, port), n) in c {
            let mut row =
                vec![Cell::text(&s.label), Cell::text(probe.label()), Cell::text(family(*v6)), Cell::Int(*port as u64)];
            row.extend(FOLLOWED.iter().map(|k| Cell::Int(n[*k as usize])));
            row.push(Cell::Int(n.iter().sum()));
            by.push(row);
        }
    }

    let mut ch: Option<Table> = None;
    for (i, d) in t.diffs.iter().enumerate() {
        let per_class = diff::tables(d, 0).swap_remove(0);
        let table = ch.get_or_insert_with(|| {
            let mut cols = vec!["scans"];
            cols.extend(per_class.columns.iter().map(String::as_str));
            Table::new("Changes between consecutive scans (targets: address, port, probe)", &cols)
        });
        let pair = format!("{} -> {}", t.scans[i].label, t.scans[i + 1].label);
        for r in per_class.rows {
            let mut row = vec![Cell::text(&pair)];
            row.extend(r);
            table.push(row);
        }
    }
    let mut out = vec![tot, by];
    out.extend(ch.map(|c| {
        c.with_note("as `mpscan diff` counts them: appeared = absent before, disappeared = absent after, switched = another class")
    }));
    out
}

/// Line chart of the series (`--plots DIR`): per scan, MPTCP-option answers by class and probe.
pub fn chart(t: &Trend, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create plot directory", dir.display()))?;
    let mut series = vec![];
    let probes: Vec<ProbeVersion> = {
        let mut v: Vec<ProbeVersion> = t.counts.iter().flat_map(|c| c.keys().map(|k| k.0)).collect();
        v.sort();
        v.dedup();
        v
    };
    for (ci, class) in FOLLOWED.iter().enumerate() {
        for p in probes.iter().rev() {
            let values = t
                .counts
                .iter()
                .map(|c| c.iter().filter(|(k, _)| k.0 == *p).map(|(_, n)| n[*class as usize]).sum())
                .collect();
            let name = format!("{} (probe {})", class.label(), p.label());
            series.push(crate::lines::Series { name, values, color: ci, dashed: *p == ProbeVersion::V0 });
        }
    }
    let lines = crate::lines::Lines {
        title: "MPTCP-option answers per scan".into(),
        y_desc: "answers (log scale; zero not drawn)".into(),
        categories: t.scans.iter().map(|s| s.label.clone()).collect(),
        series,
    };
    let p = dir.join("trend.svg");
    crate::lines::draw(&lines, &p)?;
    Ok(vec![p])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// Rewrite a result CSV as Parquet with the scanner's own sink (the sharded-Parquet scans of tests).
    pub(crate) fn csv_to_parquet(csv: &Path, pq: &Path) {
        use mpscan_schema::parquet_file::ParquetSink;
        use mpscan_schema::{Row, RowSink};
        let mut sink = ParquetSink::create(pq).unwrap();
        let mut rdr = csv::Reader::from_path(csv).unwrap();
        let h = rdr.headers().unwrap().clone();
        for rec in rdr.records() {
            let rec = rec.unwrap();
            let f = |n: &str| h.iter().position(|x| x == n).map_or("", |i| &rec[i]);
            let opt = |n: &str| Some(f(n).to_string()).filter(|s| !s.is_empty());
            let ip: std::net::IpAddr = f("ip").parse().unwrap();
            sink.write(&Row {
                ip,
                port: f("port").parse().unwrap(),
                probe: ProbeVersion::parse(f("probe").as_bytes()).unwrap(),
                class: Class::parse(f("class").as_bytes()).unwrap(),
                responder: opt("responder").map_or(ip, |r| r.parse().unwrap()),
                mptcp_version: opt("mptcp_version").map(|v| v.parse().unwrap()),
                mpc_flags: opt("mpc_flags"),
                mpc_key: opt("mpc_key"),
                options: f("options").into(),
                mirrored: f("mirrored") == "true",
                ts_echoed: f("ts_echoed") == "true",
                ttl: f("ttl").parse().unwrap_or(0),
                window: f("window").parse().unwrap_or(0),
                timestamp: f("timestamp").into(),
                detail: f("detail").into(),
            })
            .unwrap();
        }
        sink.finish().unwrap();
    }

    /// A hand-planted scan: `n[class]` IPv4 rows of each followed class on 443 with probe v1,
    /// plus `n_v6` mptcp rows over IPv6 on port 80 with probe v0 and `tcp` tcp rows. Addresses are
    /// numbered from `base` so consecutive scans share some targets.
    fn plant(path: &Path, base: u32, n: [u64; 3], n_v6: u64, tcp: u64) {
        let mut f = std::fs::File::create(path).unwrap();
        writeln!(f, "ip,port,probe,class,mptcp_version").unwrap();
        let mut a = base;
        for (k, class) in FOLLOWED.iter().enumerate() {
            for _ in 0..n[k] {
                a += 1;
                writeln!(f, "{},443,v1,{},1", std::net::Ipv4Addr::from(0xc612_0000 + a), class.label()).unwrap();
            }
        }
        for i in 0..n_v6 {
            writeln!(f, "2001:db8::{:x},80,v0,mptcp,0", base as u64 + i).unwrap();
        }
        for i in 0..tcp {
            writeln!(f, "{},443,v1,tcp,", std::net::Ipv4Addr::from(0xc613_0000 + base + i as u32)).unwrap();
        }
    }

    fn meta(path: &Path, start: &str) {
        std::fs::write(path, format!(r#"{{"targets_probed":1000,"start_time":"{start}"}}"#)).unwrap();
    }

    /// Three planted scans, given out of time order, one of them as two shards (CSV + Parquet):
    /// every planted count is in the tables, and the changes are the diff's.
    #[test]
    fn three_planted_scans_in_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        plant(&p("a.csv"), 0, [10, 200, 3], 4, 50);
        meta(&p("a.json"), "2021-03-01T10:00:00Z");
        // Scan b in two shards, the second as Parquet.
        plant(&p("b0.csv"), 5, [20, 150, 0], 0, 30);
        plant(&p("b1.tmp.csv"), 1000, [0, 0, 7], 9, 0);
        csv_to_parquet(&p("b1.tmp.csv"), &p("b1.parquet"));
        meta(&p("b.json"), "2022-06-01T10:00:00.5Z");
        plant(&p("c.csv"), 5, [40, 100, 1], 2, 0);
        meta(&p("c.json"), "2025-12-01T00:00:00Z");
        let args: Vec<PathBuf> =
            ["c.json", "c.csv", "a.json", "a.csv", "b.json", "b0.csv", "b1.parquet"].iter().map(|n| p(n)).collect();
        let scans = order(group(&args).unwrap()).unwrap();
        let labels: Vec<&str> = scans.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["2021-03-01", "2022-06-01", "2025-12-01"]);
        let t = run(scans, 2).unwrap();
        let tabs = tables(&t);
        let tot = &tabs[0];
        for (label, mp, echo, malf, all) in
            [("2021-03-01", 14, 200, 3, 267), ("2022-06-01", 29, 150, 7, 216), ("2025-12-01", 42, 100, 1, 143)]
        {
            assert_eq!(tot.int(label, "mptcp"), Some(mp), "{label}");
            assert_eq!(tot.int(label, "echo"), Some(echo), "{label}");
            assert_eq!(tot.int(label, "malformed"), Some(malf), "{label}");
            assert_eq!(tot.int(label, "answers"), Some(all), "{label}");
        }
        // By probe, family and port: scan b's IPv6 v0 port-80 row holds the Parquet shard's 9.
        let by = &tabs[1];
        let row = |scan: &str, probe: &str, fam: &str, port: u64| {
            by.rows
                .iter()
                .find(|r| {
                    r[0] == Cell::text(scan)
                        && r[1] == Cell::text(probe)
                        && r[2] == Cell::text(fam)
                        && r[3] == Cell::Int(port)
                })
                .unwrap_or_else(|| panic!("{scan} {probe} {fam} {port}"))
                .to_vec()
        };
        let cells = |v: [u64; 4]| v.map(Cell::Int).to_vec();
        assert_eq!(row("2022-06-01", "v0", "IPv6", 80)[4..], cells([9, 0, 0, 9]));
        assert_eq!(row("2022-06-01", "v1", "IPv4", 443)[4..], cells([20, 150, 7, 207]));
        assert_eq!(row("2021-03-01", "v0", "IPv6", 80)[4..], cells([4, 0, 0, 4]));
        assert_eq!(by.rows.len(), 6);
        // Changes: exactly what `diff` reports for each consecutive pair.
        let ch = &tabs[2];
        assert_eq!(ch.rows.len(), 2 * Class::ALL.len());
        for (i, pair) in ["2021-03-01 -> 2022-06-01", "2022-06-01 -> 2025-12-01"].iter().enumerate() {
            let want = diff::tables(&t.diffs[i], 0).swap_remove(0);
            let got: Vec<Vec<Cell>> =
                ch.rows.iter().filter(|r| r[0] == Cell::text(*pair)).map(|r| r[1..].to_vec()).collect();
            assert_eq!(got, want.rows, "{pair}");
        }
        // a -> b: a's mptcp v4 targets are addresses 1..=10, b's 6..=25 (11..=25 were echoes in a);
        // b's 9 IPv6 servers are new, a's 4 are gone.
        let tr = &t.diffs[0].transitions;
        let (mp, echo) = (1 + Class::Mptcp as usize, 1 + Class::Echo as usize);
        assert_eq!((tr[0][mp], tr[mp][mp], tr[echo][mp], tr[mp][0]), (9, 5, 15, 5 + 4));
        // Every format renders; the chart is valid SVG.
        for f in [
            crate::table::Format::Text,
            crate::table::Format::Markdown,
            crate::table::Format::Latex,
            crate::table::Format::Csv,
            crate::table::Format::Json,
        ] {
            assert!(crate::table::render(&tabs, f).contains("2025-12-01"), "{f:?}");
        }
        let files = chart(&t, &p("plots")).unwrap();
        crate::plots::tests::check_all(&files);
    }

    #[test]
    fn missing_metadata_and_same_start_are_one_line_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        plant(&p("a.csv"), 0, [1, 1, 1], 0, 0);
        plant(&p("b.csv"), 0, [1, 1, 1], 0, 0);
        meta(&p("a.json"), "2021-03-01T10:00:00Z");
        meta(&p("b.json"), "2021-03-01T10:00:00Z");
        let e = group(&[p("a.csv"), p("b.json"), p("b.csv")]).unwrap_err().to_string();
        assert!(e.contains("a.csv: no metadata before it"), "{e}");
        let e = order(group(&[p("a.json"), p("a.csv"), p("b.json"), p("b.csv")]).unwrap()).unwrap_err().to_string();
        assert!(e.contains("both start at 2021-03-01T10:00:00Z: the same scan given twice?"), "{e}");
        std::fs::write(p("c.json"), r#"{"targets_probed":1}"#).unwrap();
        let e = order(group(&[p("a.json"), p("a.csv"), p("c.json"), p("b.csv")]).unwrap()).unwrap_err().to_string();
        assert!(e.contains("c.json: no start_time in the metadata"), "{e}");
        let e = group(&[p("a.json"), p("a.csv")]).unwrap_err().to_string();
        assert!(e.contains("at least two scans"), "{e}");
        // A metadata file alone stands for the CSV beside it; without one it is an error.
        let g = group(&[p("a.json"), p("c.json"), p("b.csv"), p("a.json")]).unwrap();
        assert_eq!(g[0], (vec![p("a.json"), p("c.json")], vec![p("b.csv")]), "consecutive JSONs are one scan");
        assert_eq!(g[1], (vec![p("a.json")], vec![p("a.csv")]));
        std::fs::write(p("d.json"), "{}").unwrap();
        let e = group(&[p("a.json"), p("a.csv"), p("d.json")]).unwrap_err().to_string();
        assert!(e.contains("d.json: no result files after it and no d.csv beside it"), "{e}");
        // Same date, different times: labels carry the time.
        meta(&p("b.json"), "2021-03-01T18:00:00Z");
        let s = order(group(&[p("b.json"), p("b.csv"), p("a.json"), p("a.csv")]).unwrap()).unwrap();
        assert_eq!(s[0].label, "2021-03-01T10:00:00Z");
        assert_eq!(s[1].label, "2021-03-01T18:00:00Z");
    }

    /// The same synthetic scan as CSV and as Parquet (two shards) gives identical summary and
    /// diff tables.
    #[test]
    fn csv_and_parquet_give_identical_summary_and_diff() {
        use crate::synth::{self, SynthConfig};
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        let cfg = SynthConfig {
            rows: 60_000,
            seed: 4,
            probes: vec![ProbeVersion::V1, ProbeVersion::V0],
            ports: vec![443, 80],
            ipv6_share: 0.05,
        };
        synth::write_files(&cfg, &p("s.csv"), None).unwrap();
        let text = std::fs::read_to_string(p("s.csv")).unwrap();
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        let rows: Vec<&str> = lines.collect();
        let (a, b) = rows.split_at(rows.len() / 3);
        std::fs::write(p("a.csv"), format!("{header}\n{}\n", a.join("\n"))).unwrap();
        std::fs::write(p("b.csv"), format!("{header}\n{}\n", b.join("\n"))).unwrap();
        csv_to_parquet(&p("a.csv"), &p("a.parquet"));
        csv_to_parquet(&p("b.csv"), &p("b.parquet"));
        let opts = crate::summary::Options::default();
        let summary = |files: &[PathBuf]| {
            let agg = crate::cli::aggregate(files, &opts, 2).unwrap();
            crate::summary::tables(&agg, None, &opts)
        };
        let want = summary(&[p("s.csv")]);
        assert_eq!(summary(&[p("a.parquet"), p("b.parquet")]), want);
        assert_eq!(summary(&[p("a.csv"), p("b.parquet")]), want, "mixed shards");
        // diff: the Parquet scan against a later CSV one, and the same with the CSV shards.
        synth::write_files(&SynthConfig { seed: 5, ..cfg }, &p("later.csv"), None).unwrap();
        let d = |old: &[PathBuf]| {
            let o = Input::open_all(old, diff::NEEDED).unwrap();
            let n = Input::open_all(&[p("later.csv")], diff::NEEDED).unwrap();
            diff::tables(&Diff::run(&o, &n, 2).unwrap(), 0)
        };
        let want = d(&[p("a.csv"), p("b.csv")]);
        assert!(want[0].rows.iter().any(|r| r[4] != Cell::Int(0)), "the scans must differ");
        assert_eq!(d(&[p("a.parquet"), p("b.parquet")]), want);
    }
}
