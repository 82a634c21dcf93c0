//! One trait for every result format: the receive loop writes [`Row`]s to a [`RowSink`] and does
//! not know whether they become CSV lines ([`CsvSink`]) or Parquet row groups
//! ([`ParquetSink`]).
//!
//! CSV is the streaming, crash-safe format (whole rows are flushed as they come); Parquet is the
//! format for study series too large for one disk, queried where they are stored (DuckDB, Spark,
//! Trino). A Parquet file is readable only once [`RowSink::finish`] has written its footer.

use super::csv::CsvSink;
use super::parquet::ParquetSink;
use super::Row;
use std::path::Path;

/// The format of the result file (`mpscan scan --output-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// One CSV line per row, flushed as rows come (the default; crash-safe).
    #[default]
    Csv,
    /// Apache Parquet (columnar, compressed, typed); complete when the scan ends.
    Parquet,
}

impl OutputFormat {
    /// The usual file extension: `csv` or `parquet`.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Csv => "csv",
            OutputFormat::Parquet => "parquet",
        }
    }
}

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

impl RowSink for CsvSink {
    fn write(&mut self, row: &Row) -> anyhow::Result<()> {
        CsvSink::write(self, row)
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        CsvSink::flush(self)
    }

    fn rows(&self) -> u64 {
        CsvSink::rows(self)
    }
}

/// Opens the sink for `format` at `path` (standard output for CSV without a path). Fails before
/// the scan sends anything if the file cannot be created.
pub fn create(path: Option<&Path>, format: OutputFormat) -> anyhow::Result<Box<dyn RowSink + Send>> {
    Ok(match format {
        OutputFormat::Csv => Box::new(CsvSink::create(path)?),
        OutputFormat::Parquet => {
            let Some(p) = path else {
                anyhow::bail!("--output-format parquet needs a file: add -o FILE.parquet");
            };
            Box::new(ParquetSink::create(p)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parquet_needs_a_path() {
        let e = create(None, OutputFormat::Parquet).err().unwrap();
        assert!(e.to_string().contains("-o FILE.parquet"), "{e}");
        assert_eq!(OutputFormat::Parquet.extension(), "parquet");
    }
}
