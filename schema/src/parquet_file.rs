//! The Parquet result sink: the same rows and columns as the CSV ([`crate::COLUMNS`]), typed,
//! columnar and Snappy-compressed, for study series queried where they are stored (DuckDB,
//! Spark, Trino: `SELECT class, count(*) FROM 'scan.parquet' GROUP BY class`).
//!
//! | column | Arrow type | | column | Arrow type |
//! |---|---|---|---|---|
//! | `ip`, `responder` | Utf8 | | `mirrored`, `ts_echoed` | Boolean |
//! | `port`, `window` | UInt16 | | `ttl` | UInt8 |
//! | `probe`, `class`, `options`, `detail` | Utf8 | | `mptcp_version` | UInt8, null if none |
//! | `mpc_flags`, `mpc_key` | Utf8, null if none | | `timestamp` | Timestamp(µs, UTC) |
//!
//! Rows are collected in column builders and handed to the writer [`BATCH_ROWS`] at a time; the
//! writer cuts row groups of [`ROW_GROUP_ROWS`]. Unlike the CSV, a Parquet file is readable only
//! after [`ParquetSink::finish`] has written the footer: a scan that ends normally or by a signal
//! finishes it; a crash (kill -9, power loss) leaves an unreadable file, so keep CSV where a
//! crash must leave partial results.

use crate::columns::COLUMNS;
use crate::row::Row;
use crate::sink::RowSink;
use crate::trace::{Cell, ColType, HopRow, HopSink, HOP_COLUMNS};
use anyhow::{bail, Context as _};
use arrow_array::builder::{BooleanBuilder, StringBuilder, TimestampMicrosecondBuilder, UInt16Builder, UInt8Builder};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// Rows collected before they are handed to the Parquet writer.
pub const BATCH_ROWS: usize = 8192;
/// Rows per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 256 * 1024;

/// The Arrow schema of a result file: [`COLUMNS`] in order, typed.
pub fn schema() -> SchemaRef {
    let utf8 = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    Arc::new(Schema::new(vec![
        utf8("ip", false),
        Field::new("port", DataType::UInt16, false),
        utf8("probe", false),
        utf8("class", false),
        utf8("responder", false),
        Field::new("mptcp_version", DataType::UInt8, true),
        utf8("mpc_flags", true),
        utf8("mpc_key", true),
        utf8("options", false),
        Field::new("mirrored", DataType::Boolean, false),
        Field::new("ts_echoed", DataType::Boolean, false),
        Field::new("ttl", DataType::UInt8, false),
        Field::new("window", DataType::UInt16, false),
        Field::new("timestamp", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        utf8("detail", false),
    ]))
}

/// Column builders for one batch.
struct Columns {
    ip: StringBuilder,
    port: UInt16Builder,
    probe: StringBuilder,
    class: StringBuilder,
    responder: StringBuilder,
    mptcp_version: UInt8Builder,
    mpc_flags: StringBuilder,
    mpc_key: StringBuilder,
    options: StringBuilder,
    mirrored: BooleanBuilder,
    ts_echoed: BooleanBuilder,
    ttl: UInt8Builder,
    window: UInt16Builder,
    timestamp: TimestampMicrosecondBuilder,
    detail: StringBuilder,
    len: usize,
}

impl Columns {
    fn new() -> Columns {
        Columns {
            ip: StringBuilder::new(),
            port: UInt16Builder::new(),
            probe: StringBuilder::new(),
            class: StringBuilder::new(),
            responder: StringBuilder::new(),
            mptcp_version: UInt8Builder::new(),
            mpc_flags: StringBuilder::new(),
            mpc_key: StringBuilder::new(),
            options: StringBuilder::new(),
            mirrored: BooleanBuilder::new(),
            ts_echoed: BooleanBuilder::new(),
            ttl: UInt8Builder::new(),
            window: UInt16Builder::new(),
            timestamp: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            detail: StringBuilder::new(),
            len: 0,
        }
    }

    fn push(&mut self, r: &Row) {
        self.ip.append_value(r.ip.to_string());
        self.port.append_value(r.port);
        self.probe.append_value(r.probe.label());
        self.class.append_value(r.class.label());
        self.responder.append_value(r.responder.to_string());
        self.mptcp_version.append_option(r.mptcp_version);
        self.mpc_flags.append_option(r.mpc_flags.as_deref());
        self.mpc_key.append_option(r.mpc_key.as_deref());
        self.options.append_value(&r.options);
        self.mirrored.append_value(r.mirrored);
        self.ts_echoed.append_value(r.ts_echoed);
        self.ttl.append_value(r.ttl);
        self.window.append_value(r.window);
        self.timestamp.append_option(micros(&r.timestamp));
        self.detail.append_value(&r.detail);
        self.len += 1;
    }

    /// The batch so far; the builders start over empty.
    fn take(&mut self) -> anyhow::Result<RecordBatch> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.ip.finish()),
            Arc::new(self.port.finish()),
            Arc::new(self.probe.finish()),
            Arc::new(self.class.finish()),
            Arc::new(self.responder.finish()),
            Arc::new(self.mptcp_version.finish()),
            Arc::new(self.mpc_flags.finish()),
            Arc::new(self.mpc_key.finish()),
            Arc::new(self.options.finish()),
            Arc::new(self.mirrored.finish()),
            Arc::new(self.ts_echoed.finish()),
            Arc::new(self.ttl.finish()),
            Arc::new(self.window.finish()),
            Arc::new(self.timestamp.finish()),
            Arc::new(self.detail.finish()),
        ];
        self.len = 0;
        Ok(RecordBatch::try_new(schema(), cols)?)
    }
}

/// Microseconds since the epoch of an RFC 3339 timestamp (the row's text form).
fn micros(ts: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339(ts).ok()?;
    i64::try_from(t.duration_since(UNIX_EPOCH).ok()?.as_micros()).ok()
}

/// A Parquet writer to a file.
pub struct ParquetSink {
    writer: Option<ArrowWriter<BufWriter<File>>>,
    cols: Columns,
    path: PathBuf,
    rows: u64,
}

impl ParquetSink {
    /// Creates (truncates) `path`. Fails at once if the file cannot be created.
    pub fn create(path: &Path) -> anyhow::Result<ParquetSink> {
        let file = File::create(path).with_context(|| {
            format!("cannot write the output file {}: check the path and permissions", path.display())
        })?;
        let writer = ArrowWriter::try_new(BufWriter::with_capacity(1 << 16, file), schema(), Some(properties()))
            .with_context(|| format!("cannot start the Parquet file {}", path.display()))?;
        Ok(ParquetSink { writer: Some(writer), cols: Columns::new(), path: path.to_path_buf(), rows: 0 })
    }

    fn error(&self, e: impl std::fmt::Display) -> anyhow::Error {
        anyhow::anyhow!("writing results to {} failed: {e}", self.path.display())
    }

    /// Hands the collected rows to the writer.
    fn write_batch(&mut self) -> anyhow::Result<()> {
        if self.cols.len == 0 {
            return Ok(());
        }
        let batch = self.cols.take()?;
        let r = match self.writer.as_mut() {
            Some(w) => w.write(&batch),
            None => bail!("{} is already finished", self.path.display()),
        };
        r.map_err(|e| self.error(e))
    }
}

impl RowSink for ParquetSink {
    fn write(&mut self, row: &Row) -> anyhow::Result<()> {
        if self.writer.is_none() {
            bail!("{} is already finished", self.path.display());
        }
        self.cols.push(row);
        self.rows += 1;
        if self.cols.len >= BATCH_ROWS {
            self.write_batch()?;
        }
        Ok(())
    }

    /// Parquet cannot append a few rows to a file: this keeps them until a batch is full.
    fn flush(&mut self) -> anyhow::Result<()> {
        Ok(())
    }

    fn rows(&self) -> u64 {
        self.rows
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        self.write_batch()?;
        let Some(w) = self.writer.take() else { return Ok(()) };
        w.close().map_err(|e| self.error(e))?;
        Ok(())
    }
}

impl Drop for ParquetSink {
    /// A sink dropped without `finish` (an error path) still tries to leave a readable file.
    fn drop(&mut self) {
        if self.writer.is_some() {
            if let Err(e) = self.finish() {
                eprintln!("mpscan: {e:#}");
            }
        }
    }
}

/// The writer properties of every mpscan Parquet file.
fn properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(format!("mpscan {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The Arrow schema of a hops file: [`HOP_COLUMNS`], typed.
pub fn hop_schema() -> SchemaRef {
    let fields = HOP_COLUMNS.iter().map(|c| {
        let ty = match c.ty {
            ColType::Text => DataType::Utf8,
            ColType::U8 => DataType::UInt8,
            ColType::U16 => DataType::UInt16,
            ColType::U32 => DataType::UInt32,
            ColType::Bool => DataType::Boolean,
        };
        Field::new(c.name, ty, c.nullable)
    });
    Arc::new(Schema::new(fields.collect::<Vec<_>>()))
}

/// The hops of a trace as Parquet (`mpscan trace --output-format parquet`): the columns and types
/// of [`HOP_COLUMNS`], batched and Snappy-compressed like the scan's results; readable once
/// [`HopSink::finish`] has written the footer.
pub struct ParquetHops {
    writer: Option<ArrowWriter<BufWriter<File>>>,
    rows: Vec<[Cell; 19]>,
    path: PathBuf,
}

impl ParquetHops {
    /// Creates (truncates) `path`.
    pub fn create(path: &Path) -> anyhow::Result<ParquetHops> {
        let file = File::create(path).with_context(|| {
            format!("cannot write the hops file {}: check the path and permissions", path.display())
        })?;
        let writer = ArrowWriter::try_new(BufWriter::with_capacity(1 << 16, file), hop_schema(), Some(properties()))
            .with_context(|| format!("cannot start the Parquet file {}", path.display()))?;
        Ok(ParquetHops { writer: Some(writer), rows: Vec::new(), path: path.to_path_buf() })
    }

    /// The collected rows as one batch, column by column from [`HOP_COLUMNS`].
    fn batch(&mut self) -> anyhow::Result<RecordBatch> {
        use arrow_array::{BooleanArray, StringArray, UInt16Array, UInt32Array, UInt8Array};
        let rows = std::mem::take(&mut self.rows);
        let cols = HOP_COLUMNS.iter().enumerate().map(|(i, c)| -> ArrayRef {
            let cells = rows.iter().map(|r| &r[i]);
            match c.ty {
                ColType::Text => Arc::new(
                    cells.map(|v| if let Cell::Text(s) = v { Some(s.as_str()) } else { None }).collect::<StringArray>(),
                ),
                ColType::U8 => {
                    Arc::new(cells.map(|v| if let Cell::U8(x) = v { Some(*x) } else { None }).collect::<UInt8Array>())
                }
                ColType::U16 => {
                    Arc::new(cells.map(|v| if let Cell::U16(x) = v { Some(*x) } else { None }).collect::<UInt16Array>())
                }
                ColType::U32 => {
                    Arc::new(cells.map(|v| if let Cell::U32(x) = v { Some(*x) } else { None }).collect::<UInt32Array>())
                }
                ColType::Bool => Arc::new(
                    cells.map(|v| if let Cell::Bool(x) = v { Some(*x) } else { None }).collect::<BooleanArray>(),
                ),
            }
        });
        Ok(RecordBatch::try_new(hop_schema(), cols.collect())?)
    }

    fn write_batch(&mut self) -> anyhow::Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let batch = self.batch()?;
        let path = self.path.display().to_string();
        match self.writer.as_mut() {
            Some(w) => w.write(&batch).map_err(|e| anyhow::anyhow!("writing hops to {path} failed: {e}")),
            None => bail!("{path} is already finished"),
        }
    }
}

impl HopSink for ParquetHops {
    fn write(&mut self, row: &HopRow) -> anyhow::Result<()> {
        if self.writer.is_none() {
            bail!("{} is already finished", self.path.display());
        }
        self.rows.push(row.cells());
        if self.rows.len() >= BATCH_ROWS {
            self.write_batch()?;
        }
        Ok(())
    }

    /// Parquet cannot append a few rows to a file: this keeps them until a batch is full.
    fn flush(&mut self) -> anyhow::Result<()> {
        Ok(())
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        self.write_batch()?;
        let Some(w) = self.writer.take() else { return Ok(()) };
        w.close().map_err(|e| anyhow::anyhow!("writing hops to {} failed: {e}", self.path.display()))?;
        Ok(())
    }
}

/// Reads a result Parquet file back as records of CSV text ([`COLUMNS`] order, the CSV's
/// spelling of every value): what the same rows look like in a result CSV. For tests and
/// for tools that compare the two formats.
pub fn read_as_csv_records(path: &Path) -> anyhow::Result<Vec<Vec<String>>> {
    read_records(path, &COLUMNS)
}

/// [`read_as_csv_records`] for a hops file ([`HOP_COLUMNS`]).
pub fn read_hops_as_csv_records(path: &Path) -> anyhow::Result<Vec<Vec<String>>> {
    read_records(path, &HOP_COLUMNS.map(|c| c.name))
}

/// A Parquet file with the columns `names`, as records of CSV text.
fn read_records(path: &Path, want: &[&str]) -> anyhow::Result<Vec<Vec<String>>> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{TimestampMicrosecondType, UInt16Type, UInt32Type, UInt8Type};
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{} is not a readable Parquet file", path.display()))?
        .build()?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.with_context(|| format!("reading {}", path.display()))?;
        let names: Vec<&str> = batch.schema_ref().fields().iter().map(|f| f.name().as_str()).collect();
        if names != want {
            bail!("{} does not have the expected columns: {names:?}", path.display());
        }
        for i in 0..batch.num_rows() {
            let mut rec = Vec::with_capacity(COLUMNS.len());
            for col in batch.columns() {
                let text = if col.is_null(i) {
                    String::new()
                } else {
                    match col.data_type() {
                        DataType::Utf8 => col.as_string::<i32>().value(i).to_string(),
                        DataType::UInt16 => col.as_primitive::<UInt16Type>().value(i).to_string(),
                        DataType::UInt8 => col.as_primitive::<UInt8Type>().value(i).to_string(),
                        DataType::UInt32 => col.as_primitive::<UInt32Type>().value(i).to_string(),
                        DataType::Boolean => col.as_boolean().value(i).to_string(),
                        DataType::Timestamp(TimeUnit::Microsecond, _) => {
                            let us = col.as_primitive::<TimestampMicrosecondType>().value(i);
                            let t = UNIX_EPOCH + Duration::from_micros(u64::try_from(us).unwrap_or(0));
                            humantime::format_rfc3339_micros(t).to_string()
                        }
                        t => bail!("{}: unexpected column type {t}", path.display()),
                    }
                };
                rec.push(text);
            }
            out.push(rec);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::class::Class;
    use crate::line_file::{Layout, LineSink};
    use crate::probe::ProbeVersion;

    fn rows() -> Vec<Row> {
        let mut v = Vec::new();
        for i in 0..20_000u32 {
            let v6 = i % 3 == 0;
            let ip: std::net::IpAddr = if v6 {
                std::net::Ipv6Addr::from(0x2001_0db8_0001_u128 << 80 | i as u128).into()
            } else {
                std::net::Ipv4Addr::from(0xc612_0000 + i).into()
            };
            let mptcp = i % 5 == 0;
            v.push(Row {
                ip,
                port: [80, 443, 8080][i as usize % 3],
                probe: if i % 2 == 0 { ProbeVersion::V1 } else { ProbeVersion::V0 },
                class: if mptcp {
                    Class::Mptcp
                } else if i % 7 == 0 {
                    Class::Unreachable
                } else {
                    Class::Closed
                },
                responder: ip,
                mptcp_version: mptcp.then_some(1),
                mpc_flags: mptcp.then(|| "0x01".into()),
                mpc_key: mptcp.then(|| format!("{:016x}", i as u64 * 0x9e37_79b9)),
                options: if mptcp { "1e0c0101".into() } else { String::new() },
                mirrored: i % 11 == 0,
                ts_echoed: i % 13 == 0,
                ttl: (i % 256) as u8,
                window: (i % 65536) as u16,
                timestamp: format!("2026-11-21T18:00:{:02}.{:06}Z", i % 60, i),
                detail: if i % 7 == 0 { "icmp-3-13".into() } else { String::new() },
            });
        }
        v
    }

    #[test]
    fn parquet_and_csv_hold_the_same_rows() {
        let dir = std::env::temp_dir().join(format!("mpscan-parquet-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (pq, csv) = (dir.join("r.parquet"), dir.join("r.csv"));
        let mut p = ParquetSink::create(&pq).unwrap();
        let mut c = LineSink::create(Some(&csv), Layout::default()).unwrap();
        for r in rows() {
            RowSink::write(&mut p, &r).unwrap();
            RowSink::write(&mut c, &r).unwrap();
        }
        assert_eq!(RowSink::rows(&p), 20_000);
        p.finish().unwrap();
        RowSink::finish(&mut c).unwrap();
        let back = read_as_csv_records(&pq).unwrap();
        let mut rdr = ::csv::Reader::from_path(&csv).unwrap();
        assert_eq!(rdr.headers().unwrap().iter().collect::<Vec<_>>(), COLUMNS);
        let want: Vec<Vec<String>> = rdr.records().map(|r| r.unwrap().iter().map(str::to_string).collect()).collect();
        assert_eq!(back.len(), want.len());
        assert_eq!(back, want);
        // Writing after the end is an error, not a panic.
        assert!(RowSink::write(&mut p, &rows()[0]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parquet_hops_hold_the_csv_hops() {
        use crate::trace::CsvHops;
        let dir = tempfile::tempdir().unwrap();
        let (pq, csv) = (dir.path().join("h.parquet"), dir.path().join("h.csv"));
        let mut p = ParquetHops::create(&pq).unwrap();
        let mut c = CsvHops::new(Box::new(File::create(&csv).unwrap())).unwrap();
        for i in 0..20_000u32 {
            let icmp = i % 4 != 0;
            let row = HopRow {
                target: std::net::Ipv4Addr::from(0xc612_0000 + i / 32).into(),
                port: 443,
                probe: if i % 2 == 0 { ProbeVersion::V1 } else { ProbeVersion::V0 },
                ttl: (i % 32 + 1) as u8,
                router: std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | i as u128).into(),
                kind: if icmp { "icmp" } else { "syn-ack" },
                icmp_type: icmp.then_some(11),
                icmp_code: icmp.then_some(0),
                reply_ttl: (i % 200) as u8,
                rtt_ms: (i % 3 == 0).then_some(i * 1000),
                quoted_bytes: icmp.then_some(28 + (i % 40) as u16),
                mpc: icmp.then_some(["intact", "removed", "unknown"][i as usize % 3]),
                mss: icmp.then_some(1460),
                options: icmp.then_some("same"),
                window: icmp.then_some(64240),
                dscp: icmp.then_some((i % 64) as u8),
                ecn: icmp.then_some((i % 4) as u8),
                seq_rewritten: i % 7 == 0,
                class: (!icmp).then_some("mptcp"),
            };
            p.write(&row).unwrap();
            c.write(&row).unwrap();
        }
        p.finish().unwrap();
        c.finish().unwrap();
        drop(c);
        let back = read_hops_as_csv_records(&pq).unwrap();
        let mut rdr = ::csv::Reader::from_path(&csv).unwrap();
        let want: Vec<Vec<String>> = rdr.records().map(|r| r.unwrap().iter().map(str::to_string).collect()).collect();
        assert_eq!(back.len(), 20_000);
        assert_eq!(back, want);
        // A scan's file is not a hops file, and the other way round.
        assert!(read_as_csv_records(&pq).unwrap_err().to_string().contains("expected columns"));
        assert!(p.write(&HopRow { kind: "rst", ..any_hop() }).is_err(), "finished");
    }

    /// Any hop row (for the write-after-finish check).
    fn any_hop() -> HopRow {
        HopRow {
            target: std::net::Ipv4Addr::LOCALHOST.into(),
            port: 1,
            probe: ProbeVersion::V1,
            ttl: 1,
            router: std::net::Ipv4Addr::LOCALHOST.into(),
            kind: "icmp",
            icmp_type: None,
            icmp_code: None,
            reply_ttl: 1,
            rtt_ms: None,
            quoted_bytes: None,
            mpc: None,
            mss: None,
            options: None,
            window: None,
            dscp: None,
            ecn: None,
            seq_rewritten: false,
            class: None,
        }
    }

    #[test]
    fn empty_scan_is_a_valid_file_and_bad_files_are_errors() {
        let dir = std::env::temp_dir().join(format!("mpscan-parquet-e-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("empty.parquet");
        let mut s = ParquetSink::create(&p).unwrap();
        s.finish().unwrap();
        assert!(read_as_csv_records(&p).unwrap().is_empty());
        std::fs::write(dir.join("bad.parquet"), b"ip,port\n").unwrap();
        let e = read_as_csv_records(&dir.join("bad.parquet")).err().unwrap();
        assert!(e.to_string().contains("not a readable Parquet file"), "{e}");
        assert!(ParquetSink::create(Path::new("/nonexistent-dir/x.parquet")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
