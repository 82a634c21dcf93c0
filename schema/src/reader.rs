//! Streaming, parallel reader over the result CSVs of one scan (all its shards).
//!
//! Each file is cut into byte ranges at line boundaries; worker threads take ranges from a shared
//! counter, parse them line by line (the schema's own layout in one pass, see [`crate::exact_line`];
//! anything else split at commas, or through the csv crate when quoted) and feed every row to
//! their own aggregate. Memory is the aggregates plus one buffer per thread: it does not grow with
//! the number of rows. Result rows never contain quoted newlines (no field of the schema can hold
//! one), so a newline is always a record boundary.
//!
//! A Parquet file (recognised by its `PAR1` magic) is read by [`crate::reader_parquet`] instead, one
//! row group per unit of work, into the same `RowRef`s.

use crate::columns::{Col, Columns};
use crate::exact_line::{separators, ExactLayout};
use crate::row_ref::{Fields, RowError, RowRef};
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
    /// Row groups when the file is Parquet (`None`: a CSV); see [`crate::reader_parquet`].
    pub row_groups: Option<usize>,
}

impl Input {
    /// Open `path`, read its header and find the `needed` columns; an empty file is an error.
    pub fn open(path: &Path, needed: &[Col]) -> Result<Input> {
        if crate::reader_parquet::is_parquet(path) {
            return crate::reader_parquet::open(path, needed);
        }
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
        Ok(Input { path: path.to_owned(), cols, data_start, len, row_groups: None })
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

/// Cut every CSV input into ranges that start right after a newline (a Parquet one into row groups).
fn plan(inputs: &[Input]) -> Result<Vec<Chunk>> {
    let mut chunks = Vec::new();
    for (i, inp) in inputs.iter().enumerate() {
        if let Some(n) = inp.row_groups {
            // Parquet: one unit of work per row group.
            chunks.extend((0..n as u64).map(|g| Chunk { input: i, start: g, end: g + 1 }));
            continue;
        }
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
    F: Fn(&mut W, &RowRef) -> Result<(), RowError> + Sync,
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
            let res = match inp.row_groups {
                None => run_chunk(inp, c, &mut rec, state, &f),
                Some(_) => crate::reader_parquet::run_row_group(inp, c.start as usize, state, &f),
            };
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

/// Field bounds of one unquoted line, split at commas (the fast path).
struct Split<'a> {
    line: &'a [u8],
    bounds: &'a [(u32, u32)],
}

impl Fields for Split<'_> {
    fn count(&self) -> usize {
        self.bounds.len()
    }
    fn field(&self, i: usize) -> &[u8] {
        let (a, b) = self.bounds[i];
        &self.line[a as usize..b as usize]
    }
}

/// Offsets of the bytes `,` and `"` in a line, in order, found eight bytes at a time with
/// SWAR arithmetic on `u64` words (no SIMD intrinsics, no unsafe). Result rows have a separator
/// every eight bytes or so, too dense for a `memchr` call per hit to pay off.
struct Specials<'a> {
    buf: &'a [u8],
    base: usize,
    next: usize,
    mask: u64,
}

impl<'a> Specials<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Specials { buf, base: 0, next: 0, mask: 0 }
    }
}

impl Iterator for Specials<'_> {
    type Item = usize;
    #[inline]
    fn next(&mut self) -> Option<usize> {
        loop {
            if self.mask != 0 {
                let bit = self.mask.trailing_zeros() as usize;
                self.mask &= self.mask - 1;
                return Some(self.base + bit / 8);
            }
            let start = self.next;
            let n = self.buf.len();
            if start >= n {
                return None;
            }
            let word = if start + 8 <= n {
                u64::from_le_bytes(self.buf[start..start + 8].try_into().unwrap_or([0; 8]))
            } else {
                let mut w = [0u8; 8];
                w[..n - start].copy_from_slice(&self.buf[start..]);
                u64::from_le_bytes(w)
            };
            self.mask = separators(word);
            self.base = start;
            self.next = start + 8;
        }
    }
}

/// Most fields a line may have before it is rejected (the schema has 14).
const MAX_FIELDS: usize = 256;

/// Parse one byte range, line by line: a file whose header is the schema's columns in order (all
/// that `mpscan scan` writes) takes the one-pass fast path (`exact_line`), and every line it
/// declines, or every line of another layout, goes through `general_line`.
fn run_chunk<W, F>(inp: &Input, c: Chunk, rec: &mut csv::ByteRecord, state: &mut W, f: &F) -> Result<()>
where
    F: Fn(&mut W, &RowRef) -> Result<(), RowError>,
{
    let mut file = File::open(&inp.path).with_context(|| format!("{}: cannot open", inp.path.display()))?;
    file.seek(SeekFrom::Start(c.start))?;
    let mut src = file.take(c.end - c.start);
    let at = |off: u64| format!("{}:{}", inp.path.display(), line_of(&inp.path, c.start + off));
    let mut buf = vec![0u8; 1 << 20];
    let mut filled = 0usize; // bytes in buf
    let mut consumed = 0u64; // chunk offset of buf[0]
    let mut eof = false;
    let mut bounds: Vec<(u32, u32)> = Vec::with_capacity(32);
    let exact = ExactLayout::of(&inp.cols);
    while !eof || filled > 0 {
        if !eof && filled < buf.len() {
            let n = src.read(&mut buf[filled..])?;
            if n == 0 {
                eof = true;
                // A last line without a newline: terminate it.
                if filled > 0 && buf[filled - 1] != b'\n' {
                    if filled == buf.len() {
                        buf.push(0);
                    }
                    buf[filled] = b'\n';
                    filled += 1;
                }
            }
            filled += n;
        }
        let mut line_start = 0usize;
        while let Some(nl) = memchr::memchr(b'\n', &buf[line_start..filled]) {
            let pos = line_start + nl;
            let mut end = pos;
            if end > line_start && buf[end - 1] == b'\r' {
                end -= 1;
            }
            let line = &buf[line_start..end];
            let off = consumed + line_start as u64;
            if !line.is_empty() {
                let r = match exact.and_then(|l| l.parse(line)) {
                    Some(row) => f(state, &row),
                    None => general_line(line, &inp.cols, rec, &mut bounds, state, f)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", at(off)))?,
                };
                if let Err(e) = r {
                    bail!("{}: {e}", at(off));
                }
            }
            line_start = pos + 1;
        }
        if line_start == 0 && filled == buf.len() {
            // One line longer than the buffer: grow it.
            let n = buf.len();
            buf.resize(n * 2, 0);
            continue;
        }
        buf.copy_within(line_start..filled, 0);
        filled -= line_start;
        consumed += line_start as u64;
        if eof && line_start == 0 {
            break; // nothing more can be parsed
        }
    }
    Ok(())
}

/// One line the fast path declined (or a file whose header is not the schema's in order): a line
/// without a quote character is split at every comma in one pass (see `Specials`), a line with one
/// goes through the csv crate so quoting rules hold. The outer error is an unreadable record or a
/// bad field; the inner one is `f`'s.
fn general_line<W, F>(
    line: &[u8],
    cols: &Columns,
    rec: &mut csv::ByteRecord,
    bounds: &mut Vec<(u32, u32)>,
    state: &mut W,
    f: &F,
) -> Result<Result<(), RowError>>
where
    F: Fn(&mut W, &RowRef) -> Result<(), RowError>,
{
    bounds.clear();
    let mut field_start = 0usize;
    for pos in Specials::new(line) {
        match line[pos] {
            b',' => {
                if bounds.len() < MAX_FIELDS {
                    bounds.push((field_start as u32, pos as u32));
                }
                field_start = pos + 1;
            }
            b'"' => {
                let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(line);
                return match r.read_byte_record(rec) {
                    Ok(true) => Ok(f(state, &RowRef::parse(rec, cols)?)),
                    Ok(false) => Ok(Ok(())),
                    Err(e) => bail!("unreadable CSV record: {e}"),
                };
            }
            _ => {} // no newline inside a line
        }
    }
    bounds.push((field_start as u32, line.len() as u32));
    let split = Split { line, bounds };
    Ok(f(state, &RowRef::parse(&split, cols)?))
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
        let states = for_each_row(
            &inputs,
            threads,
            || 0u64,
            |n, _r| {
                *n += 1;
                Ok(())
            },
        )?;
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
    fn quoted_crlf_unterminated_and_huge_lines() {
        let huge = "ab".repeat(3 << 20);
        let body = format!(
            "ip,port,probe,class,mptcp_version,options\r\n\
             1.2.3.4,443,v1,tcp,,\r\n\
             \"1.2.3.5\",443,\"v1\",\"mptcp\",\"1\",\n\
             1.2.3.6,443,v1,tcp,,\n\
             1.2.3.7,443,v1,echo,1,{huge}\n\
             1.2.3.8,443,v0,closed,,"
        );
        let f = file(&body);
        let inputs = Input::open_all(&[f.path().to_owned()], Col::DIFF).unwrap();
        let got = for_each_row(&inputs, 1, Vec::new, |v: &mut Vec<(String, String)>, r| {
            v.push((r.ip.to_string(), r.class.label().to_string()));
            Ok(())
        })
        .unwrap()
        .remove(0);
        let want: Vec<(String, String)> =
            [("1.2.3.4", "tcp"), ("1.2.3.5", "mptcp"), ("1.2.3.6", "tcp"), ("1.2.3.7", "echo"), ("1.2.3.8", "closed")]
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn specials_finds_exactly_the_separators() {
        let mut x: u32 = 12345;
        for len in 0..300 {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    // Mostly neighbours of the separators (+-1) and high bytes, to catch carries.
                    b",\n\"+-!#\t\x0b\xac\x2c\xff\x80a0"[(x >> 16) as usize % 15]
                })
                .collect();
            let want: Vec<usize> = buf.iter().enumerate().filter(|(_, b)| b",\"".contains(b)).map(|(i, _)| i).collect();
            assert_eq!(Specials::new(&buf).collect::<Vec<_>>(), want, "{buf:?}");
        }
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
