//! The streaming CSV sink: a header, then whole rows as they come.
//!
//! Rows go through a buffer that is flushed at row boundaries (every [`FLUSH_EVERY`] rows and
//! when asked), so a crash leaves at most a torn last line, never a half-written row in the
//! middle. A write error (disk full) is reported once, clearly, and the caller stops sending.

use super::{Row, COLUMNS};
use anyhow::Context as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Rows buffered before a flush.
pub const FLUSH_EVERY: u64 = 256;

/// A CSV writer to a file or standard output.
pub struct CsvSink {
    w: csv::Writer<BufWriter<Box<dyn Write + Send>>>,
    path: Option<PathBuf>,
    rows: u64,
}

impl CsvSink {
    /// Creates (truncates) `path`, or writes to standard output if `None`, and writes the header.
    /// Fails at once if the file cannot be created, before any probe is sent.
    pub fn create(path: Option<&Path>) -> anyhow::Result<CsvSink> {
        let out: Box<dyn Write + Send> = match path {
            Some(p) => Box::new(
                File::create(p).with_context(|| format!("cannot write the output file {}: check the path and permissions", p.display()))?,
            ),
            None => Box::new(io::stdout()),
        };
        let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(BufWriter::with_capacity(1 << 16, out));
        w.write_record(COLUMNS)?;
        let mut sink = CsvSink { w, path: path.map(Path::to_path_buf), rows: 0 };
        sink.flush()?;
        Ok(sink)
    }

    /// Writes one row (flushing every [`FLUSH_EVERY`] rows).
    pub fn write(&mut self, row: &Row) -> anyhow::Result<()> {
        self.w.serialize(row).map_err(|e| self.error(e.into()))?;
        self.rows += 1;
        if self.rows % FLUSH_EVERY == 0 {
            self.flush()?;
        }
        Ok(())
    }

    /// Rows written.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Pushes buffered rows to the file.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.w.flush().map_err(|e| self.error(e))
    }

    fn error(&self, e: io::Error) -> anyhow::Error {
        let what = self.path.as_ref().map_or("standard output".to_string(), |p| p.display().to_string());
        anyhow::anyhow!("writing results to {what} failed: {e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Class;

    fn row() -> Row {
        Row {
            ip: "198.18.0.1".parse().unwrap(),
            port: 443,
            probe: "v1",
            class: Class::Mptcp,
            responder: "198.18.0.1".parse().unwrap(),
            mptcp_version: Some(1),
            mpc_flags: Some("0x01".into()),
            mpc_key: Some("feedf00ddeadbeef".into()),
            options: "020405b4".into(),
            mirrored: false,
            ts_echoed: false,
            ttl: 64,
            window: 65160,
            timestamp: "2026-11-21T18:00:00.123456Z".into(),
            detail: String::new(),
        }
    }

    #[test]
    fn header_and_row_snapshot() {
        let dir = std::env::temp_dir().join(format!("mpscan-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("out.csv");
        let mut s = CsvSink::create(Some(&p)).unwrap();
        s.write(&row()).unwrap();
        let mut r = row();
        r.class = Class::Closed;
        r.mptcp_version = None;
        r.mpc_flags = None;
        r.mpc_key = None;
        r.options = String::new();
        s.write(&r).unwrap();
        s.flush().unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            text,
            "ip,port,probe,class,responder,mptcp_version,mpc_flags,mpc_key,options,mirrored,ts_echoed,ttl,window,timestamp,detail\n\
             198.18.0.1,443,v1,mptcp,198.18.0.1,1,0x01,feedf00ddeadbeef,020405b4,false,false,64,65160,2026-11-21T18:00:00.123456Z,\n\
             198.18.0.1,443,v1,closed,198.18.0.1,,,,,false,false,64,65160,2026-11-21T18:00:00.123456Z,\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unwritable_path_is_a_clear_error() {
        let e = CsvSink::create(Some(Path::new("/nonexistent-dir/x.csv"))).err().unwrap();
        assert!(e.to_string().contains("/nonexistent-dir/x.csv"), "{e}");
    }
}
