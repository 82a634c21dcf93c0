//! One result file read in order, record by record: the sequential reader that every reader of
//! one file shares (resuming a scan's CSV, `mpscan merge`, verify's input, the lab check). The
//! analysis's parallel reader ([`crate::reader`]) is for whole scans; this one keeps file order
//! and line numbers, reads from any `Read` (a pipe, a test's bytes), takes JSON lines
//! (`--output-format jsonl`) as well as CSV, and, with the `parquet` feature, reads Parquet
//! result files as the same CSV text records.
//!
//! A record is a `csv::ByteRecord` in the file's own column order; [`RowRef::parse`] with
//! [`ResultFile::cols`] reads the columns a caller needs, and the record itself can be copied
//! to another result file unchanged.

use crate::columns::{Col, Columns};
use crate::row_ref::{RowError, RowRef};
use anyhow::Context as _;
use std::io::Read;
use std::path::Path;

/// A result file whose header has been read and whose columns are resolved.
pub struct ResultFile {
    /// The file's name, for errors.
    pub name: String,
    /// The header as written.
    pub header: csv::ByteRecord,
    /// Where the needed (and every other known) column sits.
    pub cols: Columns,
    source: Source,
    /// 1-based line (CSV) or record (Parquet, counting the header as 1) of the last record read.
    line: u64,
}

enum Source {
    Csv(csv::Reader<Box<dyn Read>>),
    /// JSON lines, and the header's names (the order the records are given in).
    Jsonl(std::io::BufReader<Box<dyn Read>>, Vec<String>),
    #[cfg(feature = "parquet")]
    Parquet(std::vec::IntoIter<Vec<String>>),
}

impl ResultFile {
    /// Opens `path` (Parquet by the `.parquet` extension, CSV otherwise) and finds the `needed`
    /// columns; an empty file or a missing column is an error naming the file.
    pub fn open(path: &Path, needed: &[Col]) -> anyhow::Result<ResultFile> {
        let name = path.display().to_string();
        if path.extension().is_some_and(|e| e == "parquet") {
            return Self::open_parquet(path, needed);
        }
        let f = std::fs::File::open(path).with_context(|| format!("cannot read {name}"))?;
        Self::from_reader(std::io::BufReader::new(f), name, needed)
    }

    /// Reads a result CSV, or JSON lines (the first byte is `{`), from `r` (named `name` in
    /// errors).
    pub fn from_reader(r: impl Read + 'static, name: String, needed: &[Col]) -> anyhow::Result<ResultFile> {
        use std::io::BufRead;
        let mut r = std::io::BufReader::new(Box::new(r) as Box<dyn Read>);
        if r.fill_buf().with_context(|| format!("cannot read {name}"))?.first() == Some(&b'{') {
            return Self::from_json_lines(r, name, needed);
        }
        let mut rdr =
            csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(Box::new(r) as Box<dyn Read>);
        let mut header = csv::ByteRecord::new();
        if !rdr.read_byte_record(&mut header).with_context(|| format!("{name}:1: cannot read the header"))? {
            anyhow::bail!("{name}: empty file (no header row; expected ip,port,probe,class,...)");
        }
        let cols = Columns::resolve(&header, needed).map_err(|e| anyhow::anyhow!("{name}:1: {e}"))?;
        Ok(ResultFile { name, header, cols, source: Source::Csv(rdr), line: 1 })
    }

    /// JSON lines: the first object's keys make the header (in the schema's column order, then
    /// any other key), and every line becomes a record of those columns' CSV text (a string as
    /// it is, null as empty, a number or boolean as JSON writes it: what the CSV writer writes).
    fn from_json_lines(
        mut r: std::io::BufReader<Box<dyn Read>>,
        name: String,
        needed: &[Col],
    ) -> anyhow::Result<ResultFile> {
        use std::io::BufRead;
        let mut first = String::new();
        r.read_line(&mut first).with_context(|| format!("{name}:1: cannot read"))?;
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&first).with_context(|| format!("{name}:1: not a JSON object"))?;
        let mut names: Vec<String> =
            Col::ALL.iter().map(|c| c.name().to_string()).filter(|n| object.contains_key(n)).collect();
        names.extend(object.keys().filter(|k| Col::named(k).is_none()).cloned());
        let header = csv::ByteRecord::from(names.clone());
        let cols = Columns::resolve(&header, needed).map_err(|e| anyhow::anyhow!("{name}:1: {e}"))?;
        // The first line is a record too: read it again from the text kept.
        let rest: Box<dyn Read> = Box::new(std::io::Cursor::new(first.into_bytes()).chain(r));
        let source = Source::Jsonl(std::io::BufReader::new(rest), names);
        // No header line: the first record is line 1.
        Ok(ResultFile { name, header, cols, source, line: 0 })
    }

    #[cfg(feature = "parquet")]
    fn open_parquet(path: &Path, needed: &[Col]) -> anyhow::Result<ResultFile> {
        let recs = crate::parquet_file::read_as_csv_records(path)?;
        let header = csv::ByteRecord::from(crate::COLUMNS.to_vec());
        let cols = Columns::resolve(&header, needed).map_err(anyhow::Error::msg)?;
        let name = path.display().to_string();
        Ok(ResultFile { name, header, cols, source: Source::Parquet(recs.into_iter()), line: 1 })
    }

    #[cfg(not(feature = "parquet"))]
    fn open_parquet(path: &Path, _needed: &[Col]) -> anyhow::Result<ResultFile> {
        anyhow::bail!("{}: this build reads result CSVs only (convert the Parquet file, or use mpscan)", path.display())
    }

    /// Reads the next record into `rec`; false at the end. A record the CSV parser cannot read
    /// (invalid quoting, I/O) is an error naming the file and line.
    pub fn next_record(&mut self, rec: &mut csv::ByteRecord) -> anyhow::Result<bool> {
        let more = match &mut self.source {
            Source::Csv(r) => {
                let line = self.line + 1;
                r.read_byte_record(rec).with_context(|| format!("{}:{line}", self.name))?
            }
            Source::Jsonl(r, names) => {
                use std::io::BufRead;
                let line = self.line + 1;
                let mut text = String::new();
                loop {
                    text.clear();
                    if r.read_line(&mut text).with_context(|| format!("{}:{line}", self.name))? == 0 {
                        break false;
                    }
                    if !text.trim().is_empty() {
                        *rec = json_record(&text, names).map_err(|e| anyhow::anyhow!("{}:{line}: {e}", self.name))?;
                        break true;
                    }
                }
            }
            #[cfg(feature = "parquet")]
            Source::Parquet(it) => match it.next() {
                Some(fields) => {
                    *rec = csv::ByteRecord::from(fields);
                    true
                }
                None => false,
            },
        };
        if more {
            self.line += 1;
        }
        Ok(more)
    }

    /// The line of the last record read (the header is line 1).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Reads every remaining record, parsed as a row, in order: `f` gets the line and the row or
    /// why it could not be parsed (the caller counts or refuses it).
    pub fn for_each_row(&mut self, mut f: impl FnMut(u64, Result<RowRef<'_>, RowError>)) -> anyhow::Result<()> {
        let mut rec = csv::ByteRecord::new();
        while self.next_record(&mut rec)? {
            let cols = &self.cols;
            f(self.line, RowRef::parse(&rec, cols));
        }
        Ok(())
    }
}

/// One JSON line as a record of the `names` columns' CSV text (absent keys empty).
fn json_record(text: &str, names: &[String]) -> Result<csv::ByteRecord, String> {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| format!("not a JSON object: {e}"))?;
    let field = |n: &String| match object.get(n) {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    Ok(csv::ByteRecord::from(names.iter().map(field).collect::<Vec<_>>()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Class, ProbeVersion, COLUMNS};

    const ROW: &str = "198.51.100.1,443,v1,mptcp,198.51.100.1,1,0x01,0011223344556677,,false,false,63,64240,2024-01-01T00:00:00.000000Z,";

    fn file(text: String) -> anyhow::Result<ResultFile> {
        ResultFile::from_reader(std::io::Cursor::new(text.into_bytes()), "t.csv".into(), Col::KEY_CLASS)
    }

    #[test]
    fn rows_come_in_order_with_their_lines_and_bad_ones_are_reported() {
        let text = format!("{}\n{ROW}\nnot-an-ip,443,v1,mptcp\n{}\n", COLUMNS.join(","), ROW.replace("v1", "v0"));
        let mut f = file(text).unwrap();
        let mut seen = vec![];
        f.for_each_row(|line, r| seen.push((line, r.map(|r| (r.probe, r.class)).map_err(|e| e.0)))).unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0], (2, Ok((ProbeVersion::V1, Class::Mptcp))));
        assert_eq!(seen[1].0, 3);
        assert!(seen[1].1.as_ref().unwrap_err().contains("fields"), "{:?}", seen[1]);
        assert_eq!(seen[2], (4, Ok((ProbeVersion::V0, Class::Mptcp))));
    }

    #[test]
    fn a_header_without_a_needed_column_or_no_header_is_an_error_naming_the_file() {
        let e = file("ip,port\n1.2.3.4,80\n".into()).err().unwrap().to_string();
        assert!(e.contains("t.csv:1") && e.contains("missing columns probe, class"), "{e}");
        let e = file(String::new()).err().unwrap().to_string();
        assert!(e.contains("t.csv: empty file"), "{e}");
    }

    #[test]
    fn records_copy_unchanged() {
        let mut f = file(format!("{}\n{ROW}\n", COLUMNS.join(","))).unwrap();
        let mut rec = csv::ByteRecord::new();
        assert!(f.next_record(&mut rec).unwrap());
        let mut w = csv::Writer::from_writer(vec![]);
        w.write_byte_record(&rec).unwrap();
        assert_eq!(String::from_utf8(w.into_inner().unwrap()).unwrap(), format!("{ROW}\n"));
        assert!(!f.next_record(&mut rec).unwrap());
    }
}
