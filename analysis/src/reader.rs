//! Streaming, parallel reader over the result CSVs of one scan (all its shards).
//!
//! Each file is cut into byte ranges at line boundaries; worker threads take ranges from a shared
//! counter, parse them with their own `csv::Reader` and one reused `ByteRecord`, and feed every row to
//! their own aggregate. Memory is the aggregates plus one buffer per thread: it does not grow with
//! the number of rows. Result rows never contain quoted newlines (no field of the schema can hold
//! one), so a newline is always a record boundary.

use crate::row::{Col, Columns, Row, RowError};
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Size of one unit of work: big enough to amortise opening a reader, small enough to balance.
const CHUNK: u64 = if cfg!(test) { 1 << 20 } else { 16 << 20 };

/// One result CSV whose header has been read and resolved.
#[derive(Debug, Clone)]
pub struct Input {
    /// The file.
    pub path: PathBuf,
    /// Where the needed columns are in this file.
    pub cols: Columns,
    /// Byte offset of the first data record.
    pub data_start: u64,
    /// File length in bytes.
    pub len: u64,
}

impl Input {
    /// Open `path`, read its header and find the `needed` columns; an empty file is an error.
    pub fn open(path: &Path, needed: &[Col]) -> Result<Input> {
        let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
        let len = file.metadata().with_context(|| format!("{}: cannot stat", path.display()))?.len();
        let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(file);
        let mut header = csv::ByteRecord::new();
        let got = rdr
            .read_byte_record(&mut header)
            .with_context(|| format!("{}:1: cannot read the header", path.display()))?;
        if !got {
            bail!("{}: empty file (no header row; expected ip,port,probe,class,...)", path.display());
        }
        let cols = Columns::resolve(&header, needed).map_err(|e| anyhow::anyhow!("{}:1: {e}", path.display()))?;
        let data_start = rdr.position().byte();
        Ok(Input { path: path.to_owned(), cols, data_start, len })
    }

    /// Open every file of a scan.
    pub fn open_all(paths: &[PathBuf], needed: &[Col]) -> Result<Vec<Input>> {
        paths.iter().map(|p| Input::open(p, needed)).collect()
    }
}

/// A byte range of one input, starting at a record boundary.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    input: usize,
    start: u64,
    end: u64,
}

/// Cut every input into ranges that start right after a newline.
fn plan(inputs: &[Input]) -> Result<Vec<Chunk>> {
    let mut chunks = Vec::new();
    for (i, inp) in inputs.iter().enumerate() {
        let mut start = inp.data_start;
        if start >= inp.len {
            continue;
        }
        let mut file = File::open(&inp.path).with_context(|| format!("{}: cannot open", inp.path.display()))?;
        let mut buf = vec![0u8; 1 << 16];
        while start < inp.len {
            let mut end = start + CHUNK;
            if end >= inp.len {
                end = inp.len;
            } else {
                end = next_line(&mut file, end, &mut buf, inp.len)?;
            }
            chunks.push(Chunk { input: i, start, end });
            start = end;
        }
    }
    Ok(chunks)
}

/// Offset just after the first newline at or after `pos` (or `len`).
fn next_line(file: &mut File, mut pos: u64, buf: &mut [u8], len: u64) -> Result<u64> {
    file.seek(SeekFrom::Start(pos))?;
    loop {
        let n = file.read(buf)?;
        if n == 0 {
            return Ok(len);
        }
        if let Some(i) = memchr::memchr(b'\n', &buf[..n]) {
            return Ok(pos + i as u64 + 1);
        }
        pos += n as u64;
    }
}

/// 1-based line number of byte `offset` of `path` (error path only: it rereads the file).
fn line_of(path: &Path, offset: u64) -> u64 {
    let Ok(file) = File::open(path) else { return 0 };
    let mut rd = file.take(offset);
    let mut buf = vec![0u8; 1 << 20];
    let mut lines = 1;
    while let Ok(n) = rd.read(&mut buf) {
        if n == 0 {
            break;
        }
        lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
    }
    lines
}

/// Feed every row of `inputs` to `f` on `threads` threads, each with its own state from `make`;
/// returns the states for the caller to merge. The first bad row stops everything with an error
/// naming the file and line.
pub fn for_each_row<W, M, F>(inputs: &[Input], threads: usize, make: M, f: F) -> Result<Vec<W>>
where
    W: Send,
    M: Fn() -> W + Sync,
    F: Fn(&mut W, &Row) -> Result<(), RowError> + Sync,
{
    let chunks = plan(inputs)?;
    let threads = threads.clamp(1, chunks.len().max(1));
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let work = |state: &mut W| -> Result<()> {
        let mut rec = csv::ByteRecord::new();
        loop {
            let ci = next.fetch_add(1, Ordering::Relaxed);
            if ci >= chunks.len() || stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let c = chunks[ci];
            let inp = &inputs[c.input];
            let res = run_chunk(inp, c, &mut rec, state, &f);
            if res.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            res?;
        }
    };
    if threads == 1 {
        let mut s = make();
        work(&mut s)?;
        return Ok(vec![s]);
    }
    let results: Vec<Result<W>> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                sc.spawn(|| {
                    let mut s = make();
                    work(&mut s).map(|()| s)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("worker thread panicked")))).collect()
    });
    // Report the error of the earliest failing chunk deterministically enough: the first one found.
    results.into_iter().collect()
}

fn run_chunk<W, F>(inp: &Input, c: Chunk, rec: &mut csv::ByteRecord, state: &mut W, f: &F) -> Result<()>
where
    F: Fn(&mut W, &Row) -> Result<(), RowError>,
{
    let mut file = File::open(&inp.path).with_context(|| format!("{}: cannot open", inp.path.display()))?;
    file.seek(SeekFrom::Start(c.start))?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 18)
        .from_reader(file.take(c.end - c.start));
    let at = |pos: Option<&csv::Position>| {
        let off = c.start + pos.map_or(0, |p| p.byte());
        format!("{}:{}", inp.path.display(), line_of(&inp.path, off))
    };
    loop {
        match rdr.read_byte_record(rec) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => {
                let pos = e.position().cloned();
                bail!("{}: unreadable CSV record: {e}", at(pos.as_ref()));
            }
        }
        if rec.len() == 1 && rec[0].is_empty() {
            continue; // blank line
        }
        let row = match Row::parse(rec, &inp.cols) {
            Ok(r) => r,
            Err(e) => bail!("{}: {e}", at(rec.position())),
        };
        if let Err(e) = f(state, &row) {
            bail!("{}: {e}", at(rec.position()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const HEADER: &str = "ip,port,probe,class,mptcp_version\n";

    fn file(body: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(body.as_bytes()).unwrap();
        f
    }

    fn count(paths: &[PathBuf], threads: usize) -> Result<u64> {
        let inputs = Input::open_all(paths, Col::DIFF)?;
        let states = for_each_row(&inputs, threads, || 0u64, |n, _r| {
            *n += 1;
            Ok(())
        })?;
        Ok(states.iter().sum())
    }

    #[test]
    fn every_row_once_across_chunks_and_threads() {
        // Enough rows to cross several chunk boundaries.
        let mut body = String::from(HEADER);
        let n = 100_000u64;
        for i in 0..n {
            body.push_str(&format!("10.{}.{}.{},443,v1,tcp,\n", (i >> 16) & 255, (i >> 8) & 255, i & 255));
        }
        let f = file(&body);
        assert!(body.len() as u64 > 2 * CHUNK, "test must span chunks: {}", body.len());
        let p = vec![f.path().to_owned()];
        assert_eq!(count(&p, 1).unwrap(), n);
        assert_eq!(count(&p, 2).unwrap(), n);
        assert_eq!(count(&[p[0].clone(), p[0].clone()], 2).unwrap(), 2 * n);
    }

    #[test]
    fn errors_name_file_and_line() {
        let f = file(&format!("{HEADER}1.2.3.4,443,v1,tcp,\n\n1.2.3.5,443,v1,tcp,\n1.2.3.6,443,v3,tcp,\n"));
        let e = count(&[f.path().to_owned()], 2).unwrap_err().to_string();
        assert!(e.contains(&format!("{}:5: bad probe value \"v3\"", f.path().display())), "{e}");
        let f = file(&format!("{HEADER}1.2.3.4,443,v1,tcp\n"));
        let e = count(&[f.path().to_owned()], 1).unwrap_err().to_string();
        assert!(e.contains(":2: 4 fields, header has 5"), "{e}");
    }

    #[test]
    fn empty_file_and_missing_column() {
        let f = file("");
        let e = count(&[f.path().to_owned()], 1).unwrap_err().to_string();
        assert!(e.contains("empty file"), "{e}");
        let f = file("ip,port,class,mptcp_version\n1.2.3.4,443,tcp,\n");
        let e = count(&[f.path().to_owned()], 1).unwrap_err().to_string();
        assert!(e.contains("missing column probe"), "{e}");
        let f = file(HEADER);
        assert_eq!(count(&[f.path().to_owned()], 2).unwrap(), 0);
    }
}
