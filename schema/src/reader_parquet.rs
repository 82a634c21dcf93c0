//! Parquet inputs of the parallel reader ([`crate::reader`]): a result file written by the
//! scanner's Parquet sink ([`crate::parquet_file`]), or by any tool that keeps the result
//! columns' names (DuckDB's `COPY ... TO 'x.parquet'`), is read without conversion.
//!
//! A file is Parquet when it starts with the magic `PAR1`; the reader then plans one unit of
//! work per row group instead of one per byte range, so shards and row groups are spread over the
//! worker threads like CSV chunks. Only the columns the command needs (and `detail`, which the
//! summary reads when present) are decoded. Each value is seen as the text a CSV would hold
//! (`true`, `443`, `0x21`, empty for null), and the row goes through the same [`RowRef::parse`]
//! as a CSV line: one validation, identical rows, identical error messages.

use crate::columns::{Col, Columns};
use crate::row_ref::{RowError, RowRef};
use anyhow::Result;
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// True when `path` starts with the Parquet magic `PAR1` (an unreadable file is not: the CSV
/// path reports why it cannot be opened).
pub fn is_parquet(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && &magic == b"PAR1"
}

/// Columns read from a Parquet file: the `needed` ones and `detail` (summary's ICMP details).
fn wanted(c: Col, needed: &[Col]) -> bool {
    needed.contains(&c) || c == Col::Detail
}

#[cfg(feature = "parquet")]
mod imp {
    use super::*;
    use crate::reader::Input;
    use crate::row_ref::Fields;
    use anyhow::{bail, Context};
    use arrow_array::cast::AsArray;
    use arrow_array::types::*;
    use arrow_array::{Array, ArrayRef, GenericStringArray};
    use arrow_schema::DataType;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::arrow::ProjectionMask;
    use std::io::Write;

    /// Rows per decoded batch.
    const BATCH: usize = 8192;

    fn builder(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
        let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| {
            let e = e.to_string().replace('\n', " ");
            anyhow::anyhow!(
                "{}: not a readable Parquet file ({e}); a scan stopped by kill -9 leaves no footer: rerun it, or write CSV",
                path.display()
            )
        })
    }

    /// The file's top-level column names, in order.
    fn names(b: &ParquetRecordBatchReaderBuilder<File>) -> Vec<String> {
        b.schema().fields().iter().map(|f| f.name().clone()).collect()
    }

    /// Open a Parquet input: check that the needed columns exist with a type read as text.
    pub fn open(path: &Path, needed: &[Col]) -> Result<Input> {
        let b = builder(path)?;
        let all = names(&b);
        // Missing columns are named against the whole file's columns.
        Columns::resolve(&csv::ByteRecord::from(all.clone()), needed)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let (idx, projected) = projection(&all, needed);
        for &i in &idx {
            let f = &b.schema().fields()[i];
            if !readable(f.data_type()) {
                bail!(
                    "{}: column {} is {}; mpscan reads result columns stored as text, integer or boolean",
                    path.display(),
                    f.name(),
                    f.data_type()
                );
            }
        }
        let cols = Columns::resolve(&csv::ByteRecord::from(projected), needed)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        Ok(Input { path: path.to_owned(), cols, data_start: 0, len, row_groups: Some(b.metadata().num_row_groups()) })
    }

    /// Indexes and names of the file's columns to decode (the first of each name, in file order).
    fn projection(all: &[String], needed: &[Col]) -> (Vec<usize>, Vec<String>) {
        let mut seen = vec![];
        let mut idx = vec![];
        for (i, n) in all.iter().enumerate() {
            if let Some(c) = Col::named(n) {
                if wanted(c, needed) && !seen.contains(&c) {
                    seen.push(c);
                    idx.push(i);
                }
            }
        }
        let names = idx.iter().map(|&i| all[i].clone()).collect();
        (idx, names)
    }

    fn readable(t: &DataType) -> bool {
        use DataType::*;
        matches!(
            t,
            Utf8 | LargeUtf8 | Utf8View | Boolean | UInt8 | UInt16 | UInt32 | UInt64 | Int8 | Int16 | Int32 | Int64
        )
    }

    /// One decoded column as the text a CSV field would hold.
    enum Text<'a> {
        Str(&'a GenericStringArray<i32>),
        LargeStr(&'a GenericStringArray<i64>),
        View(&'a arrow_array::StringViewArray),
        /// Numbers and booleans rendered once per batch: bytes and the end of each value.
        Owned(Vec<u8>, Vec<usize>),
    }

    impl Text<'_> {
        #[inline]
        fn get(&self, i: usize) -> &[u8] {
            match self {
                Text::Str(a) if !a.is_null(i) => a.value(i).as_bytes(),
                Text::LargeStr(a) if !a.is_null(i) => a.value(i).as_bytes(),
                Text::View(a) if !a.is_null(i) => a.value(i).as_bytes(),
                Text::Owned(data, ends) => &data[if i == 0 { 0 } else { ends[i - 1] }..ends[i]],
                _ => b"",
            }
        }
    }

    /// Render a non-text column value by value (null = empty).
    fn render(a: &ArrayRef) -> Text<'_> {
        let mut data = Vec::with_capacity(a.len() * 4);
        let mut ends = Vec::with_capacity(a.len());
        macro_rules! each {
            ($arr:expr) => {
                for v in $arr.iter() {
                    if let Some(v) = v {
                        let _ = write!(data, "{v}");
                    }
                    ends.push(data.len());
                }
            };
        }
        match a.data_type() {
            DataType::Boolean => each!(a.as_boolean()),
            DataType::UInt8 => each!(a.as_primitive::<UInt8Type>()),
            DataType::UInt16 => each!(a.as_primitive::<UInt16Type>()),
            DataType::UInt32 => each!(a.as_primitive::<UInt32Type>()),
            DataType::UInt64 => each!(a.as_primitive::<UInt64Type>()),
            DataType::Int8 => each!(a.as_primitive::<Int8Type>()),
            DataType::Int16 => each!(a.as_primitive::<Int16Type>()),
            DataType::Int32 => each!(a.as_primitive::<Int32Type>()),
            DataType::Int64 => each!(a.as_primitive::<Int64Type>()),
            // `open` refused every other type.
            _ => ends.resize(a.len(), 0),
        }
        Text::Owned(data, ends)
    }

    fn text(a: &ArrayRef) -> Text<'_> {
        match a.data_type() {
            DataType::Utf8 => Text::Str(a.as_string::<i32>()),
            DataType::LargeUtf8 => Text::LargeStr(a.as_string::<i64>()),
            DataType::Utf8View => Text::View(a.as_string_view()),
            _ => render(a),
        }
    }

    /// One row of a batch, field by field.
    struct RowFields<'a> {
        cols: &'a [Text<'a>],
        row: usize,
    }

    impl Fields for RowFields<'_> {
        fn count(&self) -> usize {
            self.cols.len()
        }
        fn field(&self, i: usize) -> &[u8] {
            self.cols[i].get(self.row)
        }
    }

    /// Feed every row of row group `group` of `inp` to `f`; errors name the file and the row.
    pub fn run_row_group<W, F>(inp: &Input, group: usize, state: &mut W, f: &F) -> Result<()>
    where
        F: Fn(&mut W, &RowRef) -> Result<(), RowError>,
    {
        let path = &inp.path;
        let b = builder(path)?;
        let first: i64 = b.metadata().row_groups()[..group].iter().map(|g| g.num_rows()).sum();
        let present: Vec<Col> = Col::ALL.into_iter().filter(|c| inp.cols.index(*c).is_some()).collect();
        let idx = projection(&names(&b), &present).0;
        let mask = ProjectionMask::roots(b.parquet_schema(), idx);
        let reader = b
            .with_row_groups(vec![group])
            .with_projection(mask)
            .with_batch_size(BATCH)
            .build()
            .with_context(|| format!("{}: row group {group}: cannot read", path.display()))?;
        let mut row_no = first as u64;
        for batch in reader {
            let batch = batch.map_err(|e| {
                anyhow::anyhow!(
                    "{}: row group {group}: unreadable ({})",
                    path.display(),
                    e.to_string().replace('\n', " ")
                )
            })?;
            let cols: Vec<Text> = batch.columns().iter().map(text).collect();
            for row in 0..batch.num_rows() {
                row_no += 1;
                let fields = RowFields { cols: &cols, row };
                let at = || format!("{}: row {row_no}", path.display());
                let r = RowRef::parse(&fields, &inp.cols).map_err(|e| anyhow::anyhow!("{}: {e}", at()))?;
                f(state, &r).map_err(|e| anyhow::anyhow!("{}: {e}", at()))?;
            }
        }
        Ok(())
    }
}

#[cfg(feature = "parquet")]
pub use imp::{open, run_row_group};

/// Without the `parquet` feature a Parquet input is refused with one line.
#[cfg(not(feature = "parquet"))]
pub fn open(path: &Path, _needed: &[Col]) -> Result<crate::reader::Input> {
    anyhow::bail!("{}: a Parquet file, and this build reads CSV only (build with the parquet feature)", path.display())
}

/// Never reached without the `parquet` feature: [`open`] refuses every Parquet input.
#[cfg(not(feature = "parquet"))]
pub fn run_row_group<W, F>(inp: &crate::reader::Input, _group: usize, _state: &mut W, _f: &F) -> Result<()>
where
    F: Fn(&mut W, &RowRef) -> Result<(), RowError>,
{
    anyhow::bail!("{}: Parquet support is not built in", inp.path.display())
}

#[cfg(all(test, feature = "parquet"))]
mod tests {
    use crate::parquet_file::ParquetSink;
    use crate::reader::{for_each_row, Input};
    use crate::sink::RowSink;
    use crate::{Class, Col, Ip, ProbeVersion, Row, RowRef};
    use std::io::Write;

    /// A varied row: every class, both probes, v4 and v6, nulls and flags.
    fn row(i: u32) -> Row {
        let class = Class::ALL[i as usize % Class::ALL.len()];
        let v6 = i.is_multiple_of(7);
        let ip: std::net::IpAddr = if v6 {
            std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | i as u128).into()
        } else {
            std::net::Ipv4Addr::from(0xc612_0000 + i).into()
        };
        Row {
            ip,
            port: if i.is_multiple_of(3) { 80 } else { 443 },
            probe: if i.is_multiple_of(2) { ProbeVersion::V1 } else { ProbeVersion::V0 },
            class,
            responder: ip,
            mptcp_version: class.has_mptcp_option().then_some((i % 2) as u8),
            mpc_flags: class.has_mptcp_option().then(|| "0x81".to_string()),
            mpc_key: None,
            options: if class == Class::Echo { "020405b41e0c0081aabbccddeeff0011".into() } else { String::new() },
            mirrored: i.is_multiple_of(5),
            ts_echoed: i.is_multiple_of(11),
            ttl: (i % 200) as u8,
            window: (i % 60000) as u16,
            timestamp: "2026-11-21T18:00:00.123456Z".into(),
            detail: if class == Class::Unreachable { "icmp-3-1".into() } else { String::new() },
        }
    }

    const NEUTRAL: RowRef<'static> = RowRef {
        ip: Ip::V4(0),
        port: 0,
        probe: ProbeVersion::V0,
        class: Class::Tcp,
        version: None,
        flags: None,
        options: b"",
        mirrored: false,
        ts_echoed: false,
        ttl: 0,
        window: 0,
        detail: b"",
    };

    type Seen = Vec<(Ip, u16, ProbeVersion, Class, Option<u8>, Option<u8>, Vec<u8>, bool, bool, u8, u16, Vec<u8>)>;

    fn read(paths: &[std::path::PathBuf], needed: &[Col], threads: usize) -> anyhow::Result<Seen> {
        let inputs = Input::open_all(paths, needed)?;
        // Only what the command asked for: a CSV reader also parses the other columns it finds.
        let all = needed.len() > Col::DIFF.len();
        let parts = for_each_row(&inputs, threads, Vec::new, |v: &mut Seen, r| {
            let r = if all {
                r.clone()
            } else {
                RowRef { ip: r.ip, port: r.port, probe: r.probe, class: r.class, version: r.version, ..NEUTRAL }
            };
            v.push((
                r.ip,
                r.port,
                r.probe,
                r.class,
                r.version,
                r.flags,
                r.options.to_vec(),
                r.mirrored,
                r.ts_echoed,
                r.ttl,
                r.window,
                r.detail.to_vec(),
            ));
            Ok(())
        })?;
        let mut all: Seen = parts.into_iter().flatten().collect();
        all.sort();
        Ok(all)
    }

    /// The same rows as CSV and as Parquet (several row groups) give the same `RowRef`s, on one
    /// thread and on several, for the summary's columns and for diff's.
    #[test]
    fn parquet_rows_equal_csv_rows() {
        let dir = tempfile::tempdir().unwrap();
        let (pq, csv) = (dir.path().join("s.parquet"), dir.path().join("s.csv"));
        let mut p = ParquetSink::create(&pq).unwrap();
        let mut c = std::fs::File::create(&csv).unwrap();
        writeln!(c, "{}", crate::COLUMNS.join(",")).unwrap();
        let n = crate::parquet_file::ROW_GROUP_ROWS as u32 + 5000;
        for i in 0..n {
            let r = row(i);
            p.write(&r).unwrap();
            let f = |o: Option<String>| o.unwrap_or_default();
            writeln!(
                c,
                "{},{},{},{},{},{},{},,{},{},{},{},{},{},{}",
                r.ip,
                r.port,
                r.probe.label(),
                r.class.label(),
                r.responder,
                f(r.mptcp_version.map(|v| v.to_string())),
                f(r.mpc_flags.clone()),
                r.options,
                r.mirrored,
                r.ts_echoed,
                r.ttl,
                r.window,
                r.timestamp,
                r.detail
            )
            .unwrap();
        }
        p.finish().unwrap();
        drop(c);
        let inputs = Input::open_all(std::slice::from_ref(&pq), Col::SUMMARY).unwrap();
        assert_eq!(inputs[0].row_groups, Some(2), "the test must span row groups");
        for needed in [Col::SUMMARY, Col::DIFF] {
            let want = read(std::slice::from_ref(&csv), needed, 1).unwrap();
            assert_eq!(want.len(), n as usize);
            for threads in [1, 2] {
                let got = read(std::slice::from_ref(&pq), needed, threads).unwrap();
                assert_eq!(got.len(), want.len());
                if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
                    panic!("row {i}: parquet {:?} csv {:?}", got[i], want[i]);
                }
            }
        }
        // Mixed shards: a CSV and a Parquet file are one scan.
        assert_eq!(read(&[csv.clone(), pq.clone()], Col::DIFF, 2).unwrap().len(), 2 * n as usize);
    }

    #[test]
    fn broken_and_foreign_parquet_files_are_one_line_errors() {
        let dir = tempfile::tempdir().unwrap();
        let pq = dir.path().join("s.parquet");
        let mut p = ParquetSink::create(&pq).unwrap();
        for i in 0..100 {
            p.write(&row(i)).unwrap();
        }
        p.finish().unwrap();
        // Cut before the footer: what kill -9 leaves.
        let bytes = std::fs::read(&pq).unwrap();
        let cut = dir.path().join("cut.parquet");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let e = read(std::slice::from_ref(&cut), Col::SUMMARY, 1).unwrap_err().to_string();
        assert!(e.contains("cut.parquet: not a readable Parquet file") && !e.contains('\n'), "{e}");
        // A Parquet file without the result columns.
        let hops = dir.path().join("hops.parquet");
        let mut h = crate::parquet_file::ParquetHops::create(&hops).unwrap();
        crate::trace::HopSink::finish(&mut h).unwrap();
        let e = read(&[hops], Col::SUMMARY, 1).unwrap_err().to_string();
        assert!(e.contains("hops.parquet: missing columns ip, mptcp_version"), "{e}");
        // A bad value names the row.
        let bad = dir.path().join("bad.parquet");
        let mut p = ParquetSink::create(&bad).unwrap();
        for i in 0..10 {
            let mut r = row(i);
            if i == 6 {
                r.mpc_flags = Some("zz".into());
                r.class = Class::Mptcp;
            }
            p.write(&r).unwrap();
        }
        p.finish().unwrap();
        let e = read(&[bad], Col::SUMMARY, 1).unwrap_err().to_string();
        assert!(e.contains("bad.parquet: row 7: bad mpc_flags value \"zz\""), "{e}");
    }
}
