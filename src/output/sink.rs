//! Which result format a scan writes (`--output-format`), and opening its sink. The sinks
//! themselves ([`CsvSink`], [`ParquetSink`], the [`RowSink`] trait) are the result schema's.

use mpscan_schema::line_file::{Layout, LineSink};
use mpscan_schema::parquet_file::ParquetSink;
use mpscan_schema::{Class, Col, Row, RowSink};
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
    /// One JSON object per line, with the CSV's column names (streamed and crash-safe like CSV).
    Jsonl,
}

impl OutputFormat {
    /// The usual file extension: `csv` or `parquet`.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Csv => "csv",
            OutputFormat::Parquet => "parquet",
            OutputFormat::Jsonl => "jsonl",
        }
    }

    /// Whether a scan can append to it after an interruption (a streamed format).
    pub fn appendable(self) -> bool {
        self != OutputFormat::Parquet
    }

    /// The line layout of a streamed format with `columns`.
    pub fn layout(self, columns: &[Col]) -> Layout {
        Layout { json: self == OutputFormat::Jsonl, columns: columns.to_vec() }
    }
}

/// Opens the sink for `format` at `path` (standard output for CSV and JSON lines without a
/// path), writing `columns`. Fails before the scan sends anything if the file cannot be created.
pub fn create(path: Option<&Path>, format: OutputFormat, columns: &[Col]) -> anyhow::Result<Box<dyn RowSink + Send>> {
    Ok(match format {
        OutputFormat::Csv | OutputFormat::Jsonl => Box::new(LineSink::create(path, format.layout(columns))?),
        OutputFormat::Parquet => {
            let Some(p) = path else {
                anyhow::bail!("--output-format parquet needs a file: add -o FILE.parquet");
            };
            anyhow::ensure!(columns == Col::ALL, "-f works with csv and jsonl output: Parquet keeps every column");
            Box::new(ParquetSink::create(p)?)
        }
    })
}

/// A sink that writes only rows of some classes (`--classes`); the scan still counts every
/// class in its metadata.
pub struct OnlyClasses {
    /// Where accepted rows go.
    pub inner: Box<dyn RowSink + Send>,
    /// The classes written.
    pub classes: Vec<Class>,
}

impl RowSink for OnlyClasses {
    fn write(&mut self, row: &Row) -> anyhow::Result<()> {
        self.inner.write(row)
    }
    fn flush(&mut self) -> anyhow::Result<()> {
        self.inner.flush()
    }
    fn rows(&self) -> u64 {
        self.inner.rows()
    }
    fn accepts(&self, class: Class) -> bool {
        self.classes.contains(&class)
    }
    fn finish(&mut self) -> anyhow::Result<()> {
        self.inner.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parquet_needs_a_path() {
        let e = create(None, OutputFormat::Parquet, &Col::ALL).err().unwrap();
        assert!(e.to_string().contains("-o FILE.parquet"), "{e}");
        assert_eq!(OutputFormat::Parquet.extension(), "parquet");
    }
}
