//! The streaming line sink: one line per row as rows come, CSV (after a header) or JSON lines
//! (one object per row, with the CSV's column names), every column or a selection ([`Layout`]).
//!
//! Rows go through a buffer that is flushed at row boundaries (every [`FLUSH_EVERY`] rows and
//! when asked), so a crash leaves at most a torn last line, never a half-written row in the
//! middle. A write error (disk full) is reported once, clearly, and the caller stops sending.
//! Both formats resume the same way: the torn last line is cut and the rows already there are
//! read back ([`LineSink::resume`]).

use crate::class::Class;
use crate::columns::{Col, Columns};
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

/// How rows become lines: the format and the columns, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// JSON lines instead of CSV.
    pub json: bool,
    /// The columns written (every one by default).
    pub columns: Vec<Col>,
}

impl Default for Layout {
    fn default() -> Layout {
        Layout { json: false, columns: Col::ALL.to_vec() }
    }
}

impl Layout {
    /// Whether every column is written, in order (the CSV's whole-row fast path).
    fn is_full(&self) -> bool {
        self.columns == Col::ALL
    }

    /// Whether the rows carry what a resumed scan must read back (ip, port, probe, class).
    pub fn resumable(&self) -> bool {
        Col::KEY_CLASS.iter().all(|c| self.columns.contains(c))
    }

    /// The header line of a CSV (none for JSON lines).
    fn header(&self) -> Option<csv::ByteRecord> {
        (!self.json).then(|| self.columns.iter().map(|c| c.name()).collect())
    }
}

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

/// The (target, port, version, class) of every row in `text`, the whole lines of a result file
/// being resumed; `None` when not even the header of a CSV reached the disk.
fn read_existing(path: &Path, text: &[u8], layout: &Layout) -> anyhow::Result<Option<Vec<Existing>>> {
    if layout.json {
        return read_existing_json(path, text).map(Some);
    }
    read_existing_csv(path, text, layout)
}

/// [`read_existing`] of JSON lines: each line an object with (at least) ip, port, probe, class.
fn read_existing_json(path: &Path, text: &[u8]) -> anyhow::Result<Vec<Existing>> {
    #[derive(serde::Deserialize)]
    struct Key {
        ip: IpAddr,
        port: u16,
        probe: ProbeVersion,
        class: Class,
    }
    let mut existing = Vec::new();
    for (i, line) in text.split(|&b| b == b'\n').enumerate().filter(|(_, l)| !l.is_empty()) {
        let k: Key = serde_json::from_slice(line).map_err(|e| {
            anyhow::anyhow!(
                "{} line {}: not an mpscan JSON row ({e}): resume with the scan's own output file",
                path.display(),
                i + 1
            )
        })?;
        existing.push(Existing { ip: k.ip, port: k.port, version: k.probe, class: k.class });
    }
    Ok(existing)
}

/// [`read_existing`] of a CSV: the header must be the layout's; rows are parsed as every reader
/// parses them ([`RowRef::parse`]).
fn read_existing_csv(path: &Path, text: &[u8], layout: &Layout) -> anyhow::Result<Option<Vec<Existing>>> {
    let what = || format!("cannot resume the output file {}", path.display());
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).from_reader(text);
    let mut rec = csv::ByteRecord::new();
    if !rdr.read_byte_record(&mut rec).with_context(what)? {
        return Ok(None);
    }
    anyhow::ensure!(
        layout.header().is_some_and(|h| h == rec),
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

/// A line writer (CSV or JSON lines) to a file or standard output.
pub struct LineSink {
    out: Out,
    layout: Layout,
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

/// The buffered output: through a CSV writer, or straight for JSON lines.
enum Out {
    Csv(Box<csv::Writer<BufWriter<Box<dyn Write + Send>>>>),
    Json(BufWriter<Box<dyn Write + Send>>),
}

impl Out {
    fn new(inner: Box<dyn Write + Send>, json: bool) -> Out {
        let b = BufWriter::with_capacity(1 << 16, inner);
        if json {
            Out::Json(b)
        } else {
            Out::Csv(Box::new(csv::WriterBuilder::new().has_headers(false).from_writer(b)))
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Out::Csv(w) => w.flush(),
            Out::Json(w) => w.flush(),
        }
    }
}

impl LineSink {
    /// Creates (truncates) `path`, or writes to standard output if `None`, and writes the CSV
    /// header. Fails at once if the file cannot be created, before any probe is sent.
    pub fn create(path: Option<&Path>, layout: Layout) -> anyhow::Result<LineSink> {
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
        let out = Out::new(Box::new(out), layout.json);
        let mut sink = LineSink { out, layout, path: path.map(Path::to_path_buf), rows: 0, file, poisoned };
        if let (Some(h), Out::Csv(w)) = (sink.layout.header(), &mut sink.out) {
            w.write_byte_record(&h)?;
        }
        sink.flush()?;
        Ok(sink)
    }

    /// Reopens the result file of an interrupted scan for appending: checks its header (CSV),
    /// cuts a torn last line (a row half-written when the scan was killed), and returns the
    /// (target, port, version, class) of every row already there, so the scan can go on without
    /// writing any of them twice.
    pub fn resume(path: &Path, layout: Layout) -> anyhow::Result<(LineSink, Vec<Existing>)> {
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
        let Some(existing) = read_existing(path, &text[..whole], &layout)? else {
            // Killed before the header reached the disk: start the file again.
            return Ok((LineSink::create(Some(path), layout)?, Vec::new()));
        };
        let f = OpenOptions::new().append(true).open(path).with_context(what)?;
        let second = f.try_clone().with_context(what)?;
        let poisoned = Arc::new(AtomicBool::new(false));
        let out: Box<dyn Write + Send> = Box::new(Guarded { inner: Box::new(f), poisoned: poisoned.clone() });
        let out = Out::new(out, layout.json);
        let rows = existing.len() as u64;
        let file = Some((second, whole as u64));
        Ok((LineSink { out, layout, path: Some(path.to_path_buf()), rows, file, poisoned }, existing))
    }

    /// Encodes `row` as one line of the layout into the output buffer.
    fn encode(&mut self, row: &Row) -> io::Result<()> {
        match &mut self.out {
            Out::Json(w) => {
                // One object, keys in the layout's column order (a map would sort them).
                for (i, c) in self.layout.columns.iter().enumerate() {
                    w.write_all(if i == 0 { b"{\"" } else { b",\"" })?;
                    w.write_all(c.name().as_bytes())?;
                    w.write_all(b"\":")?;
                    serde_json::to_writer(&mut *w, &row.value(*c))?;
                }
                w.write_all(b"}\n")
            }
            Out::Csv(w) if self.layout.is_full() => w.serialize(row).map_err(io::Error::other),
            Out::Csv(w) => w.write_record(self.layout.columns.iter().map(|c| row.text(*c))).map_err(io::Error::other),
        }
    }

    /// Writes one row (flushing every [`FLUSH_EVERY`] rows).
    pub fn write(&mut self, row: &Row) -> anyhow::Result<()> {
        if let Err(e) = self.encode(row) {
            // A full buffer reached the file and failed part-way: cut back to the last whole row.
            self.cut();
            return Err(self.error(e));
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
        match self.out.flush() {
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

impl RowSink for LineSink {
    fn write(&mut self, row: &Row) -> anyhow::Result<()> {
        LineSink::write(self, row)
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        LineSink::flush(self)
    }

    fn rows(&self) -> u64 {
        LineSink::rows(self)
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
        let mut s = LineSink::create(Some(&p), Layout::default()).unwrap();
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
        let mut s = LineSink::create(Some(&p), Layout::default()).unwrap();
        s.write(&row()).unwrap();
        s.flush().unwrap();
        drop(s);
        // A row cut in the middle by a crash.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"198.18.0.9,443,v1,mpt").unwrap();
        drop(f);
        let (mut s, existing) = LineSink::resume(&p, Layout::default()).unwrap();
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
        assert!(LineSink::resume(&p, Layout::default())
            .err()
            .unwrap()
            .to_string()
            .contains("not an mpscan result CSV"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn json_lines_read_back_as_the_csvs_records() {
        use crate::records::ResultFile;
        let rows = [row(), Row { mptcp_version: None, mpc_flags: None, mpc_key: None, mirrored: true, ..row() }];
        let dir = std::env::temp_dir().join(format!("mpscan-lines-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut read = Vec::new();
        for (name, json) in [("out.csv", false), ("out.jsonl", true)] {
            let p = dir.join(name);
            let mut s = LineSink::create(Some(&p), Layout { json, columns: Col::ALL.to_vec() }).unwrap();
            rows.iter().for_each(|r| s.write(r).unwrap());
            s.flush().unwrap();
            drop(s);
            let mut f = ResultFile::open(&p, Col::KEY_CLASS).unwrap();
            assert_eq!(f.header, csv::ByteRecord::from(crate::COLUMNS.to_vec()), "{name}");
            let (mut recs, mut rec) = (Vec::new(), csv::ByteRecord::new());
            while f.next_record(&mut rec).unwrap() {
                recs.push((f.line(), rec.clone()));
            }
            read.push(recs);
        }
        assert_eq!(read[0].len(), 2);
        let records = |r: &Vec<(u64, csv::ByteRecord)>| r.iter().map(|x| x.1.clone()).collect::<Vec<_>>();
        assert_eq!(records(&read[0]), records(&read[1]), "the same records from CSV and JSON lines");
        assert_eq!(read[1].iter().map(|x| x.0).collect::<Vec<_>>(), [1, 2], "JSON lines are numbered from 1");
        // A line that is not JSON is an error naming the file and line.
        let p = dir.join("bad.jsonl");
        std::fs::write(
            &p,
            format!(
                "{}\n{{\"ip\": \n",
                std::fs::read_to_string(dir.join("out.jsonl")).unwrap().lines().next().unwrap()
            ),
        )
        .unwrap();
        let mut f = ResultFile::open(&p, Col::KEY_CLASS).unwrap();
        let mut rec = csv::ByteRecord::new();
        assert!(f.next_record(&mut rec).unwrap());
        let e = format!("{:#}", f.next_record(&mut rec).unwrap_err());
        assert!(e.contains("bad.jsonl:2") && e.contains("not a JSON object"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_selection_writes_the_whole_rows_text_and_json_lines_resume() {
        // The per-column text is what the whole-row writer writes.
        for r in [row(), Row { mptcp_version: None, mpc_flags: None, mpc_key: None, mirrored: true, ..row() }] {
            let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(vec![]);
            w.serialize(&r).unwrap();
            let whole = String::from_utf8(w.into_inner().unwrap()).unwrap();
            let fields: Vec<String> = Col::ALL.iter().map(|c| r.text(*c)).collect();
            assert_eq!(whole.trim_end(), fields.join(","));
        }
        let dir = std::env::temp_dir().join(format!("mpscan-lines-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("out.jsonl");
        let json = Layout { json: true, columns: Col::ALL.to_vec() };
        let mut s = LineSink::create(Some(&p), json.clone()).unwrap();
        s.write(&row()).unwrap();
        s.flush().unwrap();
        drop(s);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with(r#"{"ip":"198.18.0.1","port":443,"probe":"v1","class":"mptcp""#), "{text}");
        assert!(text.contains(r#""mptcp_version":1,"#) && text.ends_with("\"detail\":\"\"}\n"), "{text}");
        // A torn JSON line is cut, the whole ones read back.
        std::fs::write(&p, format!("{text}{{\"ip\":\"198.18")).unwrap();
        let (_, existing) = LineSink::resume(&p, json).unwrap();
        assert_eq!(existing.len(), 1);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), text);
        let sel = Layout { json: false, columns: vec![Col::Class, Col::Ip] };
        assert!(!sel.resumable());
        let mut s = LineSink::create(Some(&dir.join("sel.csv")), sel).unwrap();
        s.write(&row()).unwrap();
        s.flush().unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("sel.csv")).unwrap(), "class,ip\nmptcp,198.18.0.1\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unwritable_path_is_a_clear_error() {
        let e = LineSink::create(Some(Path::new("/nonexistent-dir/x.csv")), Layout::default()).err().unwrap();
        assert!(e.to_string().contains("/nonexistent-dir/x.csv"), "{e}");
    }
}
