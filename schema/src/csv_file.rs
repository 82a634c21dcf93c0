//! The streaming CSV sink: a header, then whole rows as they come.
//!
//! Rows go through a buffer that is flushed at row boundaries (every [`FLUSH_EVERY`] rows and
//! when asked), so a crash leaves at most a torn last line, never a half-written row in the
//! middle. A write error (disk full) is reported once, clearly, and the caller stops sending.

use crate::class::Class;
use crate::columns::{Col, Columns, COLUMNS};
use crate::probe::ProbeVersion;
use crate::row::Row;
use crate::row_ref::RowRef;
use crate::sink::RowSink;
use anyhow::Context as _;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

/// Rows buffered before a flush.
pub const FLUSH_EVERY: u64 = 256;

/// A row already in the file of a resumed scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Existing {
    /// Target.
    pub ip: IpAddr,
    /// Port.
    pub port: u16,
    /// Probe version.
    pub version: ProbeVersion,
    /// Class.
    pub class: Class,
}

/// The (target, port, version, class) of every row in `text`, the whole lines of a result CSV
/// being resumed; `None` when not even the header reached the disk. Rows are parsed as every
/// reader parses them ([`RowRef::parse`]).
fn read_existing(path: &Path, text: &[u8]) -> anyhow::Result<Option<Vec<Existing>>> {
    let what = || format!("cannot resume the output file {}", path.display());
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).from_reader(text);
    let mut rec = csv::ByteRecord::new();
    if !rdr.read_byte_record(&mut rec).with_context(what)? {
        return Ok(None);
    }
    anyhow::ensure!(
        Columns::is_exact(&rec),
        "{} is not an mpscan result CSV (its header differs): resume with the scan's own output file",
        path.display()
    );
    let cols = Columns::resolve(&rec, Col::KEY_CLASS).map_err(anyhow::Error::msg)?;
    let mut existing = Vec::new();
    for line in 2.. {
        if !rdr.read_byte_record(&mut rec).with_context(|| format!("{} line {line}", path.display()))? {
            break;
        }
        let r = RowRef::parse(&rec, &cols)
            .map_err(|e| anyhow::anyhow!("{} line {line}: not an mpscan row ({e})", path.display()))?;
        existing.push(Existing { ip: r.ip.into(), port: r.port, version: r.probe, class: r.class });
    }
    Ok(Some(existing))
}

/// A CSV writer to a file or standard output.
pub struct CsvSink {
    w: csv::Writer<BufWriter<Box<dyn Write + Send>>>,
    path: Option<PathBuf>,
    rows: u64,
    /// The file (a second handle) and its length after the last successful flush: a failed
    /// flush (disk full) cuts the file back to it, so no row is left half-written.
    file: Option<(File, u64)>,
    /// Set after a failed write: nothing more reaches the file (not even the buffers' flush on
    /// drop, which would write a torn row after the cut).
    poisoned: Arc<AtomicBool>,
}

/// The output stream: passes writes through until the sink is poisoned, then refuses them.
struct Guarded {
    inner: Box<dyn Write + Send>,
    poisoned: Arc<AtomicBool>,
}

impl Write for Guarded {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.poisoned.load(Relaxed) {
            return Err(io::Error::other("output already failed"));
        }
        self.inner.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.poisoned.load(Relaxed) {
            return Err(io::Error::other("output already failed"));
        }
        self.inner.flush()
    }
}

impl CsvSink {
    /// Creates (truncates) `path`, or writes to standard output if `None`, and writes the header.
    /// Fails at once if the file cannot be created, before any probe is sent.
    pub fn create(path: Option<&Path>) -> anyhow::Result<CsvSink> {
        let what = |p: &Path| format!("cannot write the output file {}: check the path and permissions", p.display());
        let (out, file): (Box<dyn Write + Send>, _) = match path {
            Some(p) => {
                let f = File::create(p).with_context(|| what(p))?;
                let second = f.try_clone().with_context(|| what(p))?;
                (Box::new(f), Some((second, 0)))
            }
            None => (Box::new(io::stdout()), None),
        };
        let poisoned = Arc::new(AtomicBool::new(false));
        let out = Guarded { inner: out, poisoned: poisoned.clone() };
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(BufWriter::with_capacity(1 << 16, Box::new(out) as Box<dyn Write + Send>));
        w.write_record(COLUMNS)?;
        let mut sink = CsvSink { w, path: path.map(Path::to_path_buf), rows: 0, file, poisoned };
        sink.flush()?;
        Ok(sink)
    }

    /// Reopens the CSV of an interrupted scan for appending: checks its header, cuts a torn last
    /// line (a row half-written when the scan was killed), and returns the (target, port,
    /// version, class) of every row already there, so the scan can go on without writing any
    /// of them twice.
    pub fn resume(path: &Path) -> anyhow::Result<(CsvSink, Vec<Existing>)> {
        let what = || format!("cannot resume the output file {}", path.display());
        let text = std::fs::read(path).with_context(what)?;
        let whole = match text.iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None => 0,
        };
        if whole < text.len() {
            let f = OpenOptions::new().write(true).open(path).with_context(what)?;
            f.set_len(whole as u64).with_context(what)?;
        }
        let Some(existing) = read_existing(path, &text[..whole])? else {
            // Killed before the header reached the disk: start the file again.
            return Ok((CsvSink::create(Some(path))?, Vec::new()));
        };
        let f = OpenOptions::new().append(true).open(path).with_context(what)?;
        let second = f.try_clone().with_context(what)?;
        let poisoned = Arc::new(AtomicBool::new(false));
        let out: Box<dyn Write + Send> = Box::new(Guarded { inner: Box::new(f), poisoned: poisoned.clone() });
        let w = csv::WriterBuilder::new().has_headers(false).from_writer(BufWriter::with_capacity(1 << 16, out));
        let rows = existing.len() as u64;
        Ok((
            CsvSink { w, path: Some(path.to_path_buf()), rows, file: Some((second, whole as u64)), poisoned },
            existing,
        ))
    }

    /// Writes one row (flushing every [`FLUSH_EVERY`] rows).
    pub fn write(&mut self, row: &Row) -> anyhow::Result<()> {
        if let Err(e) = self.w.serialize(row) {
            // A full buffer reached the file and failed part-way: cut back to the last whole row.
            self.cut();
            return Err(self.error(e.into()));
        }
        self.rows += 1;
        if self.rows.is_multiple_of(FLUSH_EVERY) {
            self.flush()?;
        }
        Ok(())
    }

    /// Rows written.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Pushes buffered rows to the file. If that fails, the file is cut back to its last whole
    /// row and the error is returned; the sink must not be written to again.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        match self.w.flush() {
            Ok(()) => {
                if let Some((f, committed)) = &mut self.file {
                    if let Ok(m) = f.metadata() {
                        *committed = m.len();
                    }
                }
                Ok(())
            }
            Err(e) => {
                self.cut();
                Err(self.error(e))
            }
        }
    }

    /// After a failed write: stop all further output and cut the file to its last whole row.
    fn cut(&self) {
        self.poisoned.store(true, Relaxed);
        if let Some((f, committed)) = &self.file {
            let _ = f.set_len(*committed);
        }
    }

    fn error(&self, e: io::Error) -> anyhow::Error {
        let what = self.path.as_ref().map_or("standard output".to_string(), |p| p.display().to_string());
        anyhow::anyhow!("writing results to {what} failed: {e}")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        Row {
            ip: "198.18.0.1".parse().unwrap(),
            port: 443,
            probe: ProbeVersion::V1,
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
    fn resume_cuts_a_torn_line_and_reports_existing_rows() {
        let dir = std::env::temp_dir().join(format!("mpscan-csv-resume-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("out.csv");
        let mut s = CsvSink::create(Some(&p)).unwrap();
        s.write(&row()).unwrap();
        s.flush().unwrap();
        drop(s);
        // A row cut in the middle by a crash.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"198.18.0.9,443,v1,mpt").unwrap();
        drop(f);
        let (mut s, existing) = CsvSink::resume(&p).unwrap();
        assert_eq!(existing.len(), 1);
        assert_eq!((existing[0].port, existing[0].version, existing[0].class), (443, ProbeVersion::V1, Class::Mptcp));
        let mut r = row();
        r.ip = "198.18.0.2".parse().unwrap();
        s.write(&r).unwrap();
        s.flush().unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(!text.contains("mpt\n") && text.ends_with('\n'));
        // Not a result CSV: refused.
        std::fs::write(&p, "a,b\n1,2\n").unwrap();
        assert!(CsvSink::resume(&p).err().unwrap().to_string().contains("not an mpscan result CSV"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unwritable_path_is_a_clear_error() {
        let e = CsvSink::create(Some(Path::new("/nonexistent-dir/x.csv"))).err().unwrap();
        assert!(e.to_string().contains("/nonexistent-dir/x.csv"), "{e}");
    }
}
