//! Which result format a scan writes (`--output-format`), and opening its sink. The sinks
//! themselves ([`CsvSink`], [`ParquetSink`], the [`RowSink`] trait) are the result schema's.

use mpscan_schema::csv_file::CsvSink;
use mpscan_schema::parquet_file::ParquetSink;
use mpscan_schema::RowSink;
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
