//! One trait for every result format: the scanner's receive loop writes [`Row`]s to a
//! [`RowSink`] and does not know whether they become CSV or JSON lines ([`crate::line_file::LineSink`])
//! or Parquet row groups (`parquet_file::ParquetSink`, with the `parquet` feature).
//!
//! CSV is the streaming, crash-safe format (whole rows are flushed as they come); Parquet is the
//! format for study series too large for one disk, queried where they are stored (DuckDB, Spark,
//! Trino). A Parquet file is readable only once [`RowSink::finish`] has written its footer.

use crate::class::Class;
use crate::row::Row;

/// Where result rows go.
pub trait RowSink {
    /// Writes one row.
    fn write(&mut self, row: &Row) -> anyhow::Result<()>;
    /// Pushes buffered rows towards the file, where the format allows it (CSV: always; Parquet:
    /// whole row groups only, so this may keep rows buffered).
    fn flush(&mut self) -> anyhow::Result<()>;
    /// Rows written so far.
    fn rows(&self) -> u64;
    /// Whether rows of `class` are written at all (`--classes`); the caller counts the others
    /// but does not hand them over.
    fn accepts(&self, _class: Class) -> bool {
        true
    }
    /// Ends the file (Parquet: the last row group and the footer). Call once, after the last
    /// row; writing afterwards is an error.
    fn finish(&mut self) -> anyhow::Result<()> {
        self.flush()
    }
}
