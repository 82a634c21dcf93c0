//! One trait for every result format: the scanner's receive loop writes [`Row`]s to a
//! [`RowSink`] and does not know whether they become CSV lines ([`crate::csv_file::CsvSink`])
//! or Parquet row groups (`parquet_file::ParquetSink`, with the `parquet` feature). A JSON-lines
//! writer would be a third implementation.
//!
//! CSV is the streaming, crash-safe format (whole rows are flushed as they come); Parquet is the
//! format for study series too large for one disk, queried where they are stored (DuckDB, Spark,
//! Trino). A Parquet file is readable only once [`RowSink::finish`] has written its footer.

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
    /// Ends the file (Parquet: the last row group and the footer). Call once, after the last
    /// row; writing afterwards is an error.
    fn finish(&mut self) -> anyhow::Result<()> {
        self.flush()
    }
}
