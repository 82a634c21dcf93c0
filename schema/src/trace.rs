//! The outputs of `mpscan trace`, written once for the scanner and for analysis: the verdict
//! names, the counts of its metadata JSON ([`TraceCounts`]), and the hop and verdict files'
//! columns.

use crate::probe::ProbeVersion;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

/// The verdicts of a trace, in table order (the verdicts CSV's `verdict` column).
pub const VERDICTS: [&str; 5] = ["intact", "removed-at", "modified-at", "answered-on-path", "unknown"];

/// The address families, as the counts spell them.
pub const FAMILIES: [&str; 2] = ["ipv4", "ipv6"];

/// What a trace counted, in its metadata JSON under `trace` (a scan's metadata has none): the
/// verdicts per family and the answers behind them, so that a trace's results can be judged
/// without reading its files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceCounts {
    /// The highest TTL / hop limit probed.
    pub max_ttl: u8,
    /// Verdicts per family (`ipv4`, `ipv6`), then per verdict ([`VERDICTS`], every one present,
    /// zeros included): one per traced (target, port, version) that got any answer.
    pub verdicts: BTreeMap<String, BTreeMap<String, u64>>,
    /// Hop rows written (validated answers, one per probe and kind of answer).
    pub hop_rows: u64,
    /// Hop rows by kind of answer: `icmp`, `syn-ack`, `rst`.
    pub answers: BTreeMap<String, u64>,
    /// ICMP hop rows by what the quote says of MP_CAPABLE: `intact`, `removed`, `modified`,
    /// `unknown`.
    pub quotes: BTreeMap<String, u64>,
    /// ICMP hop rows whose quoted sequence number was rewritten on the way (the TTL came from the
    /// IPv4 IP ID).
    pub seq_rewritten: u64,
}

impl TraceCounts {
    /// Empty counts for a trace up to `max_ttl`, with every family and verdict at zero.
    pub fn new(max_ttl: u8) -> TraceCounts {
        let zeros: BTreeMap<String, u64> = VERDICTS.iter().map(|v| (v.to_string(), 0)).collect();
        TraceCounts {
            max_ttl,
            verdicts: FAMILIES.iter().map(|f| (f.to_string(), zeros.clone())).collect(),
            ..TraceCounts::default()
        }
    }

    /// Counts one verdict of a target of `family`.
    pub fn add_verdict(&mut self, family: &str, verdict: &str) {
        *self.verdicts.entry(family.to_string()).or_default().entry(verdict.to_string()).or_default() += 1;
    }

    /// Verdicts of one kind over both families.
    pub fn verdict(&self, verdict: &str) -> u64 {
        self.verdicts.values().filter_map(|per| per.get(verdict)).sum()
    }

    /// Every verdict of every family.
    pub fn total_verdicts(&self) -> u64 {
        self.verdicts.values().flat_map(|per| per.values()).sum()
    }

    /// Adds the counts of another shard (or run) of the same trace.
    pub fn merge(&mut self, other: &TraceCounts) {
        self.max_ttl = self.max_ttl.max(other.max_ttl);
        for (fam, per) in &other.verdicts {
            for (v, n) in per {
                *self.verdicts.entry(fam.clone()).or_default().entry(v.clone()).or_default() += n;
            }
        }
        self.hop_rows += other.hop_rows;
        for (k, n) in &other.answers {
            *self.answers.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &other.quotes {
            *self.quotes.entry(k.clone()).or_default() += n;
        }
        self.seq_rewritten += other.seq_rewritten;
    }
}

/// The type of a hop column: its Arrow type in Parquet, its text in CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    /// Text (Utf8).
    Text,
    /// An unsigned byte.
    U8,
    /// An unsigned 16-bit integer.
    U16,
    /// An unsigned 32-bit integer.
    U32,
    /// `true` / `false`.
    Bool,
}

/// One column of the hops file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HopColumn {
    /// The header name.
    pub name: &'static str,
    /// Its type.
    pub ty: ColType,
    /// Whether it may be empty (null in Parquet).
    pub nullable: bool,
}

const fn col(name: &'static str, ty: ColType, nullable: bool) -> HopColumn {
    HopColumn { name, ty, nullable }
}

/// The hop columns, in order, defined once: the CSV header, the Parquet schema and
/// [`HopRow::cells`] follow this list.
pub const HOP_COLUMNS: [HopColumn; 19] = [
    col("target", ColType::Text, false),
    col("port", ColType::U16, false),
    col("probe", ColType::Text, false),
    col("ttl", ColType::U8, false),
    col("router", ColType::Text, false),
    col("kind", ColType::Text, false),
    col("icmp_type", ColType::U8, true),
    col("icmp_code", ColType::U8, true),
    col("reply_ttl", ColType::U8, false),
    col("rtt_ms", ColType::U32, true),
    col("quoted_bytes", ColType::U16, true),
    col("mpc", ColType::Text, true),
    col("mss", ColType::U16, true),
    col("options", ColType::Text, true),
    col("window", ColType::U16, true),
    col("dscp", ColType::U8, true),
    col("ecn", ColType::U8, true),
    col("seq_rewritten", ColType::Bool, false),
    col("class", ColType::Text, true),
];

/// The verdicts file's columns, in order (written by the scanner's verdict rows, read by
/// analysis by name).
pub const VERDICT_COLUMNS: [&str; 10] =
    ["target", "port", "probe", "verdict", "hop", "router", "last_intact", "answer_ttl", "answer_class", "detail"];

/// One value of a hop row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// Empty (null).
    Null,
    /// Text.
    Text(String),
    /// A byte.
    U8(u8),
    /// A 16-bit number.
    U16(u16),
    /// A 32-bit number.
    U32(u32),
    /// A flag.
    Bool(bool),
}

impl Cell {
    /// The CSV text of the value.
    pub fn text(&self) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Text(s) => s.clone(),
            Cell::U8(v) => v.to_string(),
            Cell::U16(v) => v.to_string(),
            Cell::U32(v) => v.to_string(),
            Cell::Bool(v) => v.to_string(),
        }
    }
}

/// One row of the hops file: one validated answer to a trace probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopRow {
    /// The probed address.
    pub target: IpAddr,
    /// The probed port.
    pub port: u16,
    /// The probe's MP_CAPABLE version.
    pub probe: ProbeVersion,
    /// The probe's TTL / hop limit.
    pub ttl: u8,
    /// Who answered (a router for ICMP).
    pub router: IpAddr,
    /// `icmp`, `syn-ack` or `rst`.
    pub kind: &'static str,
    /// ICMP type (none for TCP).
    pub icmp_type: Option<u8>,
    /// ICMP code.
    pub icmp_code: Option<u8>,
    /// The TTL / hop limit the answer arrived with.
    pub reply_ttl: u8,
    /// Round trip in milliseconds (none when the answer does not carry our send time).
    pub rtt_ms: Option<u32>,
    /// Bytes of our probe quoted (ICMP).
    pub quoted_bytes: Option<u16>,
    /// `intact`, `removed`, `modified`, `unknown` (ICMP).
    pub mpc: Option<&'static str>,
    /// The quoted MSS (none: not quoted, or no MSS option).
    pub mss: Option<u16>,
    /// The rest of the option list: `same`, `removed`, `reordered`, `changed`, `unknown`.
    pub options: Option<&'static str>,
    /// The quoted window.
    pub window: Option<u16>,
    /// Quoted DSCP.
    pub dscp: Option<u8>,
    /// Quoted ECN bits.
    pub ecn: Option<u8>,
    /// The quoted sequence number was not ours but the IP ID was (a box rewrote it).
    pub seq_rewritten: bool,
    /// SYN-ACK/RST: the class `scan` gives it.
    pub class: Option<&'static str>,
}

impl HopRow {
    /// The row's values in [`HOP_COLUMNS`] order.
    pub fn cells(&self) -> [Cell; 19] {
        let text = |s: Option<&str>| s.map_or(Cell::Null, |s| Cell::Text(s.to_string()));
        let opt = |v: Option<Cell>| v.unwrap_or(Cell::Null);
        [
            Cell::Text(self.target.to_string()),
            Cell::U16(self.port),
            Cell::Text(self.probe.label().to_string()),
            Cell::U8(self.ttl),
            Cell::Text(self.router.to_string()),
            Cell::Text(self.kind.to_string()),
            opt(self.icmp_type.map(Cell::U8)),
            opt(self.icmp_code.map(Cell::U8)),
            Cell::U8(self.reply_ttl),
            opt(self.rtt_ms.map(Cell::U32)),
            opt(self.quoted_bytes.map(Cell::U16)),
            text(self.mpc),
            opt(self.mss.map(Cell::U16)),
            text(self.options),
            opt(self.window.map(Cell::U16)),
            opt(self.dscp.map(Cell::U8)),
            opt(self.ecn.map(Cell::U8)),
            Cell::Bool(self.seq_rewritten),
            text(self.class),
        ]
    }
}

/// Where hop rows go: a CSV ([`CsvHops`]) or, with the `parquet` feature,
/// `crate::parquet_file::ParquetHops`.
pub trait HopSink: Send {
    /// Writes one row.
    fn write(&mut self, row: &HopRow) -> anyhow::Result<()>;
    /// Pushes buffered rows to the file where the format allows (CSV; Parquet keeps them).
    fn flush(&mut self) -> anyhow::Result<()>;
    /// Ends the file (Parquet's footer). Call once, after the last row.
    fn finish(&mut self) -> anyhow::Result<()> {
        self.flush()
    }
}

/// The hops as CSV, streamed: [`HOP_COLUMNS`] as the header, one line per row.
pub struct CsvHops {
    w: csv::Writer<Box<dyn Write + Send>>,
}

impl CsvHops {
    /// Hops to `out`, header first.
    pub fn new(out: Box<dyn Write + Send>) -> anyhow::Result<CsvHops> {
        let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(out);
        w.write_record(HOP_COLUMNS.iter().map(|c| c.name))?;
        Ok(CsvHops { w })
    }

    /// Hops appended to `out`, an existing hops file that already has its header.
    pub fn appending(out: Box<dyn Write + Send>) -> CsvHops {
        CsvHops { w: csv::WriterBuilder::new().has_headers(false).from_writer(out) }
    }
}

impl HopSink for CsvHops {
    fn write(&mut self, row: &HopRow) -> anyhow::Result<()> {
        self.w.write_record(row.cells().iter().map(Cell::text))?;
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        Ok(self.w.flush()?)
    }
}

/// The records of an existing hops CSV (text, [`HOP_COLUMNS`] order), for a resumed trace:
/// a last line cut short by a crash is removed from the file first. An empty file (killed before
/// its header) has none; a file whose header is not [`HOP_COLUMNS`] is an error.
pub fn read_hops_csv(path: &Path) -> anyhow::Result<Option<Vec<csv::StringRecord>>> {
    use anyhow::Context as _;
    let what = || format!("cannot resume the hops file {}", path.display());
    let text = std::fs::read(path).with_context(what)?;
    let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if whole < text.len() {
        let f = std::fs::OpenOptions::new().write(true).open(path).with_context(what)?;
        f.set_len(whole as u64).with_context(what)?;
    }
    if whole == 0 {
        return Ok(None);
    }
    let mut r = csv::ReaderBuilder::new().has_headers(true).from_reader(&text[..whole]);
    let header = r.headers().with_context(what)?.clone();
    anyhow::ensure!(
        header.iter().eq(HOP_COLUMNS.iter().map(|c| c.name)),
        "{}: not the hops file of an mpscan trace (its header is not the hop columns)",
        path.display()
    );
    let rows = r.records().collect::<Result<Vec<_>, _>>().with_context(what)?;
    Ok(Some(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_start_at_zero_for_every_verdict_and_add_up() {
        let mut c = TraceCounts::new(16);
        assert_eq!(c.verdicts["ipv6"]["answered-on-path"], 0);
        assert_eq!(c.total_verdicts(), 0);
        c.add_verdict("ipv4", "removed-at");
        c.add_verdict("ipv6", "removed-at");
        c.add_verdict("ipv4", "intact");
        assert_eq!((c.verdict("removed-at"), c.verdict("intact"), c.total_verdicts()), (2, 1, 3));
        let mut d = TraceCounts::new(32);
        d.hop_rows = 5;
        d.add_verdict("ipv4", "unknown");
        c.merge(&d);
        assert_eq!((c.max_ttl, c.hop_rows, c.total_verdicts(), c.verdicts["ipv4"]["unknown"]), (32, 5, 4, 1));
        // The JSON round trip analysis relies on.
        let back: TraceCounts = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    fn hop() -> HopRow {
        HopRow {
            target: "198.18.0.1".parse().unwrap(),
            port: 443,
            probe: ProbeVersion::V1,
            ttl: 3,
            router: "198.19.0.3".parse().unwrap(),
            kind: "icmp",
            icmp_type: Some(11),
            icmp_code: Some(0),
            reply_ttl: 62,
            rtt_ms: None,
            quoted_bytes: Some(64),
            mpc: Some("removed"),
            mss: Some(1460),
            options: Some("same"),
            window: Some(64240),
            dscp: Some(0),
            ecn: Some(0),
            seq_rewritten: false,
            class: None,
        }
    }

    #[test]
    fn hop_cells_follow_the_columns_and_csv_reads_back() {
        let cells = hop().cells();
        for (c, col) in cells.iter().zip(HOP_COLUMNS) {
            let ok = match (c, col.ty) {
                (Cell::Null, _) => col.nullable,
                (Cell::Text(_), ColType::Text)
                | (Cell::U8(_), ColType::U8)
                | (Cell::U16(_), ColType::U16)
                | (Cell::U32(_), ColType::U32)
                | (Cell::Bool(_), ColType::Bool) => true,
                _ => false,
            };
            assert!(ok, "column {} holds {c:?}", col.name);
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hops.csv");
        let mut s = CsvHops::new(Box::new(std::fs::File::create(&p).unwrap())).unwrap();
        s.write(&hop()).unwrap();
        s.finish().unwrap();
        drop(s);
        // A torn last line (a crash mid-write) is cut away on resume.
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"198.18.0.2,443,v1,4").unwrap();
        let rows = read_hops_csv(&p).unwrap().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((&rows[0][0], &rows[0][3], &rows[0][9], &rows[0][11]), ("198.18.0.1", "3", "", "removed"));
        assert!(std::fs::read_to_string(&p).unwrap().ends_with("false,\n"));
        std::fs::write(&p, "ip,port\n1.2.3.4,80\n").unwrap();
        assert!(read_hops_csv(&p).unwrap_err().to_string().contains("not the hops file"));
        std::fs::write(&p, "").unwrap();
        assert!(read_hops_csv(&p).unwrap().is_none());
    }
}
