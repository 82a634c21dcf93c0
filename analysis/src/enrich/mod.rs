//! Enrichment of `mpscan summary` from files the user downloads (nothing is fetched):
//! organizations from CAIDA's AS-to-organization file (`--as-org`, through the origin AS of
//! `--pfx2as`) and economies from a MaxMind-format database or a range CSV (`--geo`).
//!
//! Both are optional and combinable. Each adds two top-N tables (by real MPTCP servers and by
//! echoing boxes, with every class's count) and their charts; each table's note names the files
//! it was made from with their dates. Per row the cost is one array index for the organization
//! (resolved once per origin label) and one range lookup for the economy ([`lpm`]); with the
//! options off, one branch each.

pub mod asorg;
pub mod geo;
pub mod lpm;

use crate::plots::Bars;
use crate::summary::{Aggregate, Counts, Options};
use crate::table::{thousands, Cell, Table};
use anyhow::{bail, Result};
use asorg::{AsOrg, OrgOfAs};
use geo::{Geo, GeoKind};
use mpscan_schema::{Class, Ip, NCLASS};
use std::path::Path;
use std::sync::Arc;

/// Lines or records of an enrichment file that were counted and skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skips {
    /// How many.
    pub count: u64,
    /// The first few, as `line N: reason`.
    pub examples: Vec<String>,
}

impl Skips {
    /// Count a bad line.
    pub fn add(&mut self, line: u64, why: String) {
        self.add_other(format!("line {line}: {why}"));
    }
    /// Count a bad record that has no line (a database network).
    pub fn add_other(&mut self, what: String) {
        self.count += 1;
        if self.examples.len() < 5 {
            self.examples.push(what);
        }
    }
}

/// ` (first problem: line N: ...)` for an error message, or nothing.
pub(crate) fn first_problem(s: &Skips) -> String {
    s.examples.first().map(|e| format!(" (first problem: {e})")).unwrap_or_default()
}

/// An enrichment file as the table notes name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// What it gives: `origin AS`, `organizations`, `economies`.
    pub what: &'static str,
    /// File name (without directories).
    pub file: String,
    /// Its date and where the date comes from (`2024-07-01 by its name`).
    pub date: String,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} ({})", self.what, self.file, self.date)
    }
}

/// `YYYY-MM-DD` of a day number `YYYYMMDD`, if it is a plausible date.
fn ymd(d: u32) -> Option<String> {
    let (y, m, day) = (d / 10_000, d / 100 % 100, d % 100);
    ((1990..=2999).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&day))
        .then(|| format!("{y:04}-{m:02}-{day:02}"))
}

/// The date in a file name such as `20240701.as-org2info.txt` or
/// `routeviews-rv2-20240701-1200.pfx2as`: the first run of exactly eight digits that is a date.
pub fn date_in_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_string_lossy().to_string();
    name.split(|c: char| !c.is_ascii_digit()).filter(|run| run.len() == 8).find_map(|run| ymd(run.parse().ok()?))
}

/// The file's modification date (UTC), or `unknown date`.
fn modified(path: &Path) -> String {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or("unknown date".to_string(), |d| format!("modified {}", &crate::synth::rfc3339(d.as_secs())[..10]))
}

fn source(what: &'static str, path: &Path, date: String) -> Source {
    let file = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().to_string());
    Source { what, file, date }
}

/// Print the skipped-lines warning of an enrichment, pfx2as or aliased-prefix file: how many, the
/// first few, and the fix when there is one to suggest.
pub fn warn_skips(path: &Path, count: u64, examples: &[String], fix: &str) {
    if count > 0 {
        let fix = if fix.is_empty() { String::new() } else { format!("; {fix}") };
        eprintln!(
            "mpscan: {}: skipped {} unreadable line{} ({}){fix}",
            path.display(),
            count,
            if count == 1 { "" } else { "s" },
            examples.join("; ")
        );
    }
}

/// The enrichment part of summary's options: loaded tables and the files they came from.
#[derive(Debug, Clone, Default)]
pub struct Enrichment {
    /// Organization of each origin label (`--as-org`).
    pub org: Option<Arc<OrgOfAs>>,
    /// Economy lookup (`--geo`).
    pub geo: Option<Arc<Geo>>,
    /// The files, for the table notes: pfx2as first when given, then as-org2info, then geo.
    pub sources: Vec<Source>,
}

/// The enrichment files as read, before they are tied to the origin-AS table: reading them is
/// most of summary's start-up, so [`Files::read`] reads them on threads of their own.
#[derive(Debug, Default)]
pub struct Files {
    as_org: Option<Result<AsOrg>>,
    geo: Option<Result<Geo>>,
}

impl Files {
    /// Read `--as-org` and `--geo` concurrently (errors are kept for [`Enrichment::load`], which
    /// reports them in the options' order).
    pub fn read(as_org: Option<&Path>, geo: Option<&Path>) -> Files {
        std::thread::scope(|s| {
            let g = s.spawn(|| geo.map(Geo::read));
            let as_org = as_org.map(AsOrg::read);
            let geo = g.join().unwrap_or_else(|_| Some(Err(anyhow::anyhow!("reading the geo file failed"))));
            Files { as_org, geo }
        })
    }
}

impl Enrichment {
    /// Load `--as-org` and `--geo` (`pfx` is the already loaded `--pfx2as` from `pfx_path`).
    pub fn load(
        pfx_path: Option<&Path>,
        pfx: Option<&crate::pfx2as::Pfx2As>,
        as_org: Option<&Path>,
        geo: Option<&Path>,
    ) -> Result<Enrichment> {
        Enrichment::from_files(pfx_path, pfx, as_org, geo, Files::read(as_org, geo))
    }

    /// [`load`](Self::load) from files already read with [`Files::read`] of the same paths.
    pub fn from_files(
        pfx_path: Option<&Path>,
        pfx: Option<&crate::pfx2as::Pfx2As>,
        as_org: Option<&Path>,
        geo: Option<&Path>,
        mut files: Files,
    ) -> Result<Enrichment> {
        let mut e = Enrichment::default();
        if let Some(p) = pfx_path {
            e.sources.push(source(
                "origin AS",
                p,
                date_in_name(p).map_or_else(|| modified(p), |d| format!("{d} by its name")),
            ));
        }
        if let Some(p) = as_org {
            let Some(pfx) = pfx else {
                bail!("--as-org needs --pfx2as FILE: organizations are found through the origin AS")
            };
            let t = files.as_org.take().unwrap_or_else(|| AsOrg::read(p))?;
            warn_skips(p, t.skips.count, &t.skips.examples, "");
            let date = match (date_in_name(p), t.latest_changed.and_then(ymd)) {
                (Some(d), _) => format!("{d} by its name"),
                (None, Some(d)) => format!("latest change {d}"),
                (None, None) => modified(p),
            };
            e.sources.push(source("organizations", p, date));
            e.org = Some(Arc::new(OrgOfAs::new(pfx, &t)));
        }
        if let Some(p) = geo {
            let g = files.geo.take().unwrap_or_else(|| Geo::read(p))?;
            warn_skips(p, g.skips.count, &g.skips.examples, "");
            let date = match &g.kind {
                GeoKind::Mmdb { database_type, build_epoch } => {
                    format!("{database_type} built {}", &crate::synth::rfc3339(*build_epoch)[..10])
                }
                GeoKind::Csv => modified(p),
            };
            e.sources.push(source("economies", p, date));
            e.geo = Some(Arc::new(g));
        }
        Ok(e)
    }
}

/// Per-row organization counters: dense, by organization label id.
#[derive(Debug, Clone)]
pub struct OrgCounts {
    map: Arc<OrgOfAs>,
    /// Counters per organization label id.
    pub counts: Vec<Counts>,
}

impl OrgCounts {
    /// Count a row whose origin-AS counter slot is `as_slot` (the last slot is "no route").
    #[inline]
    pub fn add(&mut self, as_slot: usize, class: usize) {
        self.counts[self.map.of_label[as_slot] as usize][class] += 1;
    }
}

/// Per-row economy counters: dense, by economy label id; the last entry is "not in the file".
#[derive(Debug, Clone)]
pub struct GeoCounts {
    geo: Arc<Geo>,
    /// Counters per economy label id, then one for addresses no range covers.
    pub counts: Vec<Counts>,
}

impl GeoCounts {
    /// Count a row.
    #[inline]
    pub fn add(&mut self, ip: Ip, class: usize) {
        let id = self.geo.lookup(ip);
        self.count(id, class);
    }

    /// The economy lookup, for callers that look up a batch of rows before counting them.
    pub fn table(&self) -> Arc<Geo> {
        self.geo.clone()
    }

    /// Count a row whose economy label id is `id`.
    #[inline]
    pub fn count(&mut self, id: u32, class: usize) {
        let i = if id == lpm::NONE { self.counts.len() - 1 } else { id as usize };
        self.counts[i][class] += 1;
    }
}

/// What one worker accumulates for the enrichment tables.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// By organization (`--as-org`).
    pub org: Option<OrgCounts>,
    /// By economy (`--geo`).
    pub geo: Option<GeoCounts>,
}

impl Counters {
    /// Empty counters for these options.
    pub fn new(e: &Enrichment) -> Counters {
        Counters {
            org: e.org.as_ref().map(|m| OrgCounts { map: m.clone(), counts: vec![[0; NCLASS]; m.labels.len()] }),
            geo: e.geo.as_ref().map(|g| GeoCounts { geo: g.clone(), counts: vec![[0; NCLASS]; g.labels.len() + 1] }),
        }
    }

    /// Fold another worker's counters in.
    pub fn merge(&mut self, o: Counters) {
        let add = |a: &mut Vec<Counts>, b: Vec<Counts>| {
            for (x, y) in a.iter_mut().zip(b) {
                for i in 0..NCLASS {
                    x[i] += y[i];
                }
            }
        };
        if let (Some(a), Some(b)) = (&mut self.org, o.org) {
            add(&mut a.counts, b.counts);
        }
        if let (Some(a), Some(b)) = (&mut self.geo, o.geo) {
            add(&mut a.counts, b.counts);
        }
    }
}

/// A breakdown of the enrichment tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// Organization of the origin AS.
    Org,
    /// Economy (country) of the address.
    Economy,
}

/// One row of a top list: label, the organization's country (empty for economies), counts.
pub type TopRow = (String, String, Counts);

/// The organizations or economies with the most rows of `class`, largest first (ties by label),
/// with the total of `class` and how many distinct labels have any; empty when not enabled.
pub fn top(agg: &Aggregate, by: By, class: Class, n: usize) -> (Vec<TopRow>, u64, usize) {
    let mut v: Vec<TopRow> = match (by, &agg.enrich.org, &agg.enrich.geo) {
        (By::Org, Some(o), _) => {
            o.counts.iter().zip(&o.map.labels).map(|(c, org)| (org.name.clone(), org.country.clone(), *c)).collect()
        }
        (By::Economy, _, Some(g)) => g
            .counts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (g.geo.labels.get(i).cloned().unwrap_or_else(|| "(not in geo file)".into()), String::new(), *c)
            })
            .collect(),
        _ => vec![],
    };
    let k = class as usize;
    v.retain(|x| x.2[k] > 0);
    let total = v.iter().map(|x| x.2[k]).sum();
    let distinct = v.len();
    v.sort_by(|a, b| b.2[k].cmp(&a.2[k]).then_with(|| a.0.cmp(&b.0)));
    if n > 0 {
        v.truncate(n);
    }
    (v, total, distinct)
}

fn what(class: Class) -> &'static str {
    if class == Class::Mptcp {
        "real MPTCP servers"
    } else {
        "echoing boxes"
    }
}

fn top_table(agg: &Aggregate, by: By, class: Class, n: usize, sources: &str) -> Table {
    let (noun, plural) = match by {
        By::Org => ("organization", "organizations"),
        By::Economy => ("economy", "economies"),
    };
    let mut cols = vec!["#", noun];
    if by == By::Org {
        cols.push("country");
    }
    cols.extend(["answered", "mptcp", "echo", "malformed", "% of all"]);
    let count = if n == 0 { String::new() } else { format!("{n} ") };
    let mut t = Table::new(format!("Top {count}{plural} by {}", what(class)), &cols);
    let (v, total, distinct) = top(agg, by, class, n);
    for (i, (label, country, c)) in v.iter().enumerate() {
        let mut row = vec![Cell::text((i + 1).to_string()), Cell::text(label.clone())];
        if by == By::Org {
            row.push(Cell::text(if country.is_empty() { "-" } else { country }));
        }
        row.extend([
            Cell::Int(c.iter().sum()),
            Cell::Int(c[Class::Mptcp as usize]),
            Cell::Int(c[Class::Echo as usize]),
            Cell::Int(c[Class::Malformed as usize]),
            Cell::pct(c[class as usize], total),
        ]);
        t.push(row);
    }
    let how = match by {
        By::Org => {
            "organization of the origin AS; a multi-origin prefix counts for the one organization its ASes share"
        }
        By::Economy => "the country of the address",
    };
    t.with_note(format!("{} {} in {distinct} {plural} ({how}); {sources}", thousands(total), what(class)))
}

/// Append the enrichment tables to summary's tables, and name the pfx2as file in the notes of
/// the origin-AS tables.
pub fn tables(agg: &Aggregate, opts: &Options, out: &mut Vec<Table>) {
    let e = &opts.enrich;
    let named = |what: &[&str]| -> String {
        e.sources.iter().filter(|s| what.contains(&s.what)).map(|s| s.to_string()).collect::<Vec<_>>().join("; ")
    };
    if let Some(s) = e.sources.iter().find(|s| s.what == "origin AS") {
        for t in out.iter_mut().filter(|t| t.title.contains(" origin AS networks by ")) {
            t.note = Some(format!("{}; {s}", t.note.as_deref().unwrap_or_default()));
        }
    }
    for (by, on, files) in [
        (By::Org, agg.enrich.org.is_some(), named(&["origin AS", "organizations"])),
        (By::Economy, agg.enrich.geo.is_some(), named(&["economies"])),
    ] {
        if on {
            for class in [Class::Mptcp, Class::Echo] {
                out.push(top_table(agg, by, class, opts.top, &files));
            }
        }
    }
}

/// A chart label no wider than 40 characters (the label column stays under a third of the chart).
fn short(s: &str) -> String {
    if s.chars().count() <= 40 {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(37).collect::<String>().trim_end())
    }
}

/// The charts of the enrichment tables: (file name, bars).
pub fn charts(agg: &Aggregate, opts: &Options) -> Vec<(String, Bars)> {
    let mut out = vec![];
    let n = if opts.top == 0 { 20 } else { opts.top };
    for (by, file, noun) in [(By::Org, "org", "organizations"), (By::Economy, "economy", "economies")] {
        for class in [Class::Mptcp, Class::Echo] {
            let (v, _, _) = top(agg, by, class, n);
            if v.is_empty() {
                continue;
            }
            let label = |(l, c, _): &TopRow| if c.is_empty() { short(l) } else { format!("{} ({c})", short(l)) };
            out.push((
                format!("top_{}_{file}.svg", class.label()),
                Bars {
                    title: format!("Top {noun} by {}", what(class)),
                    x_desc: what(class).into(),
                    categories: v.iter().map(label).collect(),
                    series: vec![(what(class).to_string(), v.iter().map(|x| x.2[class as usize]).collect())],
                    log: false,
                },
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{self, SynthConfig};
    use mpscan_schema::ProbeVersion;
    use std::collections::HashMap;

    const PFX2AS: &str = "0.0.0.0\t1\t100\n64.0.0.0\t2\t200\n128.0.0.0\t1\t300_301\n192.0.0.0\t8\t400\n\
                          17.1.0.0\t16\t200_100\n2001:db8::\t32\t500\n";
    const AS_ORG: &str = "# format:aut|changed|aut_name|org_id|opaque_id|source\n\
                          100|20240101|A1|ORG-A|x|ARIN\n200|20240101|B1|ORG-B|x|APNIC\n\
                          300|20240101|C1|ORG-C|x|RIPE\n301|20240101|C2|ORG-C|x|RIPE\n500|20240101|A2|ORG-A|x|ARIN\n\
                          # format:org_id|changed|org_name|country|source\n\
                          ORG-A|20240101|Alpha Networks|US|ARIN\nORG-B|20240101|Beta Broadband|HK|APNIC\n\
                          ORG-C|20240101|Gamma|DE|RIPE\n";
    const GEO_CSV: &str = "0.0.0.0,63.255.255.255,US\n64.0.0.0,127.255.255.255,HK\n\
                           2001:db8::,2001:db8::ffff:ffff:ffff:ffff,NL\n";

    /// The organization and economy a naive reading of the planted files gives.
    fn naive(ip: Ip) -> (&'static str, &'static str) {
        match ip {
            Ip::V4(a) if a >> 16 == 0x1101 => ("(multi-origin, several organizations)", "US"),
            Ip::V4(a) if a < 0x4000_0000 => ("Alpha Networks", "US"),
            Ip::V4(a) if a < 0x8000_0000 => ("Beta Broadband", "HK"),
            Ip::V4(a) if a >> 24 == 192 => ("(AS not in as-org2info)", "(not in geo file)"),
            Ip::V4(_) => ("Gamma", "(not in geo file)"),
            Ip::V6(a) if a >> 64 == 0x2001_0db8_0000_0000 => ("Alpha Networks", "NL"),
            Ip::V6(a) if a >> 96 == 0x2001_0db8 => ("Alpha Networks", "(not in geo file)"),
            Ip::V6(_) => ("(no route in pfx2as)", "(not in geo file)"),
        }
    }

    /// Per label, per class, from the rows of a CSV, with `key` choosing the label.
    fn count_rows(csv: &Path, key: impl Fn(Ip) -> String) -> HashMap<String, Counts> {
        let mut out: HashMap<String, Counts> = HashMap::new();
        let mut r = csv::Reader::from_path(csv).unwrap();
        for rec in r.records() {
            let rec = rec.unwrap();
            let ip = mpscan_schema::row_ref::parse_ip(rec[0].as_bytes()).unwrap();
            let class = Class::ALL.into_iter().find(|c| c.label() == &rec[3]).unwrap();
            out.entry(key(ip)).or_insert([0; NCLASS])[class as usize] += 1;
        }
        out
    }

    /// A table's rows as label -> (answered, mptcp, echo, malformed).
    fn rows(t: &Table) -> HashMap<String, [u64; 4]> {
        let label = t.col("organization").or(t.col("economy")).unwrap();
        let at = |r: &[Cell], c: &str| match r[t.col(c).unwrap()] {
            Cell::Int(n) => n,
            _ => panic!("{c}"),
        };
        t.rows
            .iter()
            .map(|r| {
                let Cell::Text(l) = &r[label] else { panic!() };
                (l.clone(), [at(r, "answered"), at(r, "mptcp"), at(r, "echo"), at(r, "malformed")])
            })
            .collect()
    }

    fn scan(dir: &Path) -> std::path::PathBuf {
        let cfg = SynthConfig {
            rows: 60_000,
            seed: 11,
            probes: vec![ProbeVersion::V1, ProbeVersion::V0],
            ports: vec![443],
            ipv6_share: 0.1,
        };
        let csv = dir.join("scan.csv");
        synth::write_files(&cfg, &csv, None).unwrap();
        // Plant rows where the files nest: a multi-origin /16 inside 0.0.0.0/1, the /8 without an
        // organization, an IPv6 address outside every prefix, and the fixtures' networks.
        let text = std::fs::read_to_string(&csv).unwrap();
        let mp = text.lines().find(|l| l.split(',').nth(3) == Some("mptcp")).unwrap();
        let rest = &mp[mp.find(',').unwrap()..];
        let mut more = String::new();
        for ip in
            ["17.1.0.1", "17.1.2.3", "17.1.3.3", "192.0.2.7", "10.1.2.3", "2001:db8:1::2", "2001:db8::1", "2002::1"]
        {
            more.push_str(&format!("{ip}{rest}\n"));
        }
        std::fs::write(&csv, format!("{text}{more}")).unwrap();
        csv
    }

    fn run(csv: &Path, pfx: &Path, org: Option<&Path>, geo: Option<&Path>) -> (Aggregate, Vec<Table>, Options) {
        let p = Arc::new(crate::pfx2as::Pfx2As::read(pfx).unwrap());
        let enrich = Enrichment::load(Some(pfx), Some(&p), org, geo).unwrap();
        let opts = Options { top: 0, pfx2as: Some(p), enrich, ..Options::default() };
        let agg = crate::cli::aggregate(&[csv.to_path_buf()], &opts, 2).unwrap();
        let t = crate::summary::tables(&agg, None, &opts);
        (agg, t, opts)
    }

    #[test]
    fn tables_count_a_synthetic_scan_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let csv = scan(dir.path());
        let (pfx, org, geo) = (
            dir.path().join("routeviews-rv2-20240701-1200.pfx2as"),
            dir.path().join("20240702.as-org2info.txt"),
            dir.path().join("ranges.csv"),
        );
        std::fs::write(&pfx, PFX2AS).unwrap();
        std::fs::write(&org, AS_ORG).unwrap();
        std::fs::write(&geo, GEO_CSV).unwrap();
        let (agg, tables, _) = run(&csv, &pfx, Some(&org), Some(&geo));
        let want_org = count_rows(&csv, |ip| naive(ip).0.to_string());
        let want_geo = count_rows(&csv, |ip| naive(ip).1.to_string());
        assert!(want_org.len() == 6 && want_geo.len() == 4, "{want_org:?} {want_geo:?}");
        let find = |title: &str| tables.iter().find(|t| t.title == title).unwrap_or_else(|| panic!("{title}"));
        for (title, want, class) in [
            ("Top organizations by real MPTCP servers", &want_org, Class::Mptcp),
            ("Top organizations by echoing boxes", &want_org, Class::Echo),
            ("Top economies by real MPTCP servers", &want_geo, Class::Mptcp),
            ("Top economies by echoing boxes", &want_geo, Class::Echo),
        ] {
            let t = find(title);
            let got = rows(t);
            let expect: HashMap<String, [u64; 4]> = want
                .iter()
                .filter(|(_, c)| c[class as usize] > 0)
                .map(|(l, c)| (l.clone(), [c.iter().sum(), c[0], c[1], c[2]]))
                .collect();
            assert_eq!(got, expect, "{title}");
            // Largest first.
            let k = 1 + (class == Class::Echo) as usize;
            let order: Vec<u64> = t.rows.iter().map(|r| rows_of(r, t)[k]).collect();
            assert!(order.windows(2).all(|w| w[0] >= w[1]), "{title}: {order:?}");
            let note = t.note.as_deref().unwrap();
            if title.contains("organizations") {
                assert!(
                    note.contains("origin AS: routeviews-rv2-20240701-1200.pfx2as (2024-07-01 by its name)"),
                    "{note}"
                );
                assert!(note.contains("organizations: 20240702.as-org2info.txt (2024-07-02 by its name)"), "{note}");
            } else {
                assert!(note.contains("economies: ranges.csv (modified 20"), "{note}");
            }
        }
        let gamma = find("Top organizations by real MPTCP servers")
            .rows
            .iter()
            .find(|r| r[1] == Cell::text("Gamma"))
            .unwrap()
            .clone();
        assert_eq!(gamma[2], Cell::text("DE"));
        // The origin-AS tables name the pfx2as file too.
        let asn = tables.iter().find(|t| t.title.contains("origin AS networks by real")).unwrap();
        assert!(asn
            .note
            .as_deref()
            .unwrap()
            .ends_with("; origin AS: routeviews-rv2-20240701-1200.pfx2as (2024-07-01 by its name)"));
        // Every row is counted once in each breakdown.
        let sum = |v: &Vec<Counts>| v.iter().flatten().sum::<u64>();
        assert_eq!(sum(&agg.enrich.org.as_ref().unwrap().counts), agg.rows);
        assert_eq!(sum(&agg.enrich.geo.as_ref().unwrap().counts), agg.rows);
        // Rendered in all five formats with the note.
        for f in [
            crate::table::Format::Text,
            crate::table::Format::Markdown,
            crate::table::Format::Latex,
            crate::table::Format::Json,
            crate::table::Format::Csv,
        ] {
            let s = crate::table::render(&tables, f);
            assert!(s.contains("20240702.as-org2info.txt"), "{f:?}");
        }
        // Either option alone.
        let (_, t, _) = run(&csv, &pfx, None, Some(&geo));
        assert!(
            t.iter().any(|t| t.title.contains("economies")) && !t.iter().any(|t| t.title.contains("organizations"))
        );
        let (_, t, _) = run(&csv, &pfx, Some(&org), None);
        assert!(
            !t.iter().any(|t| t.title.contains("economies")) && t.iter().any(|t| t.title.contains("organizations"))
        );
    }

    fn rows_of(r: &[Cell], t: &Table) -> [u64; 4] {
        let at = |c: &str| match r[t.col(c).unwrap()] {
            Cell::Int(n) => n,
            _ => 0,
        };
        [at("answered"), at("mptcp"), at("echo"), at("malformed")]
    }

    /// The MaxMind fixture: every row's economy equals the database's own per-address lookup.
    #[test]
    fn maxmind_economies_equal_the_readers_own_lookups() {
        let dir = tempfile::tempdir().unwrap();
        let csv = scan(dir.path());
        let pfx = dir.path().join("p.pfx2as");
        std::fs::write(&pfx, PFX2AS).unwrap();
        let db = geo::tests::fixture("geolite2-country-test.mmdb");
        let (agg, tables, opts) = run(&csv, &pfx, None, Some(&db));
        let reader = maxminddb::Reader::open_readfile(&db).unwrap();
        let want = count_rows(&csv, |ip| {
            let a: std::net::IpAddr = match ip {
                Ip::V4(a) => std::net::Ipv4Addr::from(a).into(),
                Ip::V6(a) => std::net::Ipv6Addr::from(a).into(),
            };
            let r = reader.lookup(a).unwrap();
            r.decode_path::<String>(&maxminddb::path!["country", "iso_code"])
                .unwrap()
                .unwrap_or("(not in geo file)".into())
        });
        assert!(want.len() >= 4, "the planted rows reach several economies: {want:?}");
        let g = agg.enrich.geo.as_ref().unwrap();
        let all: HashMap<String, Counts> = g
            .counts
            .iter()
            .enumerate()
            .filter(|(_, c)| c.iter().any(|n| *n > 0))
            .map(|(i, c)| (g.geo.labels.get(i).cloned().unwrap_or_else(|| "(not in geo file)".into()), *c))
            .collect();
        assert_eq!(all.len(), want.len());
        for (l, c) in &want {
            assert_eq!(all.get(l), Some(c), "{l}");
        }
        let t = tables.iter().find(|t| t.title == "Top economies by real MPTCP servers").unwrap();
        assert!(
            t.note.as_deref().unwrap().contains("geolite2-country-test.mmdb (GeoLite2-Country built 20"),
            "{:?}",
            t.note
        );
        // And the charts of both.
        let files = crate::plots::summary_charts(&agg, &opts, &dir.path().join("plots")).unwrap();
        assert!(files.iter().any(|f| f.ends_with("top_mptcp_economy.svg")), "{files:?}");
        crate::plots::tests::check_all(&files);
    }

    #[test]
    fn as_org_without_pfx2as_and_dates() {
        let e = Enrichment::load(None, None, Some(Path::new("x.as-org2info.txt")), None).unwrap_err().to_string();
        assert_eq!(e, "--as-org needs --pfx2as FILE: organizations are found through the origin AS");
        // Without a date in its name, an as-org2info file is dated by its latest change, a
        // pfx2as file by its modification date.
        let dir = tempfile::tempdir().unwrap();
        let (pfx, org) = (dir.path().join("table.pfx2as"), dir.path().join("orgs.txt"));
        std::fs::write(&pfx, PFX2AS).unwrap();
        std::fs::write(&org, asorg::tests::SAMPLE).unwrap();
        let p = crate::pfx2as::Pfx2As::read(&pfx).unwrap();
        let e = Enrichment::load(Some(&pfx), Some(&p), Some(&org), None).unwrap();
        let names: Vec<String> = e.sources.iter().map(|s| s.to_string()).collect();
        assert!(names[0].starts_with("origin AS: table.pfx2as (modified 20"), "{names:?}");
        assert_eq!(names[1], "organizations: orgs.txt (latest change 2024-06-12)");
        assert_eq!(date_in_name(Path::new("/d/20240701.as-org2info.txt")).as_deref(), Some("2024-07-01"));
        assert_eq!(date_in_name(Path::new("routeviews-rv6-20231130-0600.pfx2as.gz")).as_deref(), Some("2023-11-30"));
        assert_eq!(date_in_name(Path::new("as-org-99999999.txt")), None);
        assert_eq!(date_in_name(Path::new("GeoLite2-Country.mmdb")), None);
        assert_eq!(
            short("China Telecom (Group) Corporation Limited Beijing"),
            "China Telecom (Group) Corporation Lim..."
        );
        assert_eq!(short(asorg::SPECIAL_LABELS[1]), asorg::SPECIAL_LABELS[1]);
    }
}
