//! The reader's fast path: one line of a file whose header is exactly the schema's columns in order
//! (every file `mpscan scan` writes: [`COLUMNS`], or its first 14 columns for files written before
//! `detail` existed), parsed into a [`RowRef`] in one left-to-right pass.
//!
//! The general path (split the line at every comma, then look each column up by index) reads each
//! byte twice and pays a lookup per column; profiling `mpscan summary` showed the split alone was
//! half of its instructions. Here every column is where the header says, so each field is parsed
//! (or skipped) as the cursor reaches it.
//!
//! The fast path is only ever *stricter* than the general one: any line it does not accept
//! (a quote character, a wrong number of fields, a value that does not parse) returns `None`, and
//! the reader hands that line to the general path, which accepts it or reports the error naming
//! the column. So both paths give the same rows and the same errors; a test holds them equal.
//!
//! [`COLUMNS`]: crate::COLUMNS

use crate::columns::{Col, Columns, NCOL};
use crate::row_ref::{parse_hex_byte, parse_ip, Ip, RowRef};
use crate::{Class, ProbeVersion};

/// A file whose columns allow the fast path: the number of columns (14 or 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExactLayout {
    width: usize,
}

impl ExactLayout {
    /// The layout of `cols` when its header was the schema's columns in order (all of them, or all
    /// but the trailing `detail`); `None` sends every line of the file down the general path.
    pub fn of(cols: &Columns) -> Option<ExactLayout> {
        let width = cols.width;
        if width != NCOL && width != NCOL - 1 {
            return None;
        }
        let in_place = Col::ALL[..width].iter().enumerate().all(|(i, c)| cols.index(*c) == Some(i));
        in_place.then_some(ExactLayout { width })
    }

    /// Parse one line (no newline, no trailing `\r`); `None` when the general path must decide.
    #[inline]
    pub fn parse<'a>(self, line: &'a [u8]) -> Option<RowRef<'a>> {
        let mut c = Cursor { b: line, i: 0 };
        let ip = c.ip()?;
        let port = c.uint(u16::MAX as u32)? as u16;
        let probe = c.probe()?;
        let class = c.class()?;
        c.skip()?; // responder
        let version = if c.empty() { None } else { Some(c.uint(15)? as u8) };
        let flags = if c.empty() { None } else { Some(parse_hex_byte(c.field()?)?) };
        if !c.empty() {
            c.skip()?; // mpc_key
        }
        let options = c.field()?;
        let mirrored = c.bool()?;
        let ts_echoed = c.bool()?;
        let ttl = c.uint(255)? as u8;
        let window = c.uint(65535)? as u16;
        let detail = if self.width == NCOL {
            c.skip()?; // timestamp
            c.last()?
        } else {
            c.last()?; // timestamp
            b""
        };
        Some(RowRef { ip, port, probe, class, version, flags, options, mirrored, ts_echoed, ttl, window, detail })
    }
}

/// One decimal octet at `b[j..]`: one to three digits, no leading zero, at most 255; its value
/// and the index after it. The digit after a third one is left to the caller (it must be a
/// separator there).
#[inline]
fn octet(b: &[u8], j: usize) -> Option<(u32, usize)> {
    let d = |k: usize| b.get(j + k).map_or(10, |x| x.wrapping_sub(b'0')) as u32;
    let d0 = d(0);
    if d0 > 9 {
        return None;
    }
    let d1 = d(1);
    if d1 > 9 {
        return Some((d0, j + 1));
    }
    if d0 == 0 {
        return None; // a leading zero
    }
    let d2 = d(2);
    if d2 > 9 {
        return Some((d0 * 10 + d1, j + 2));
    }
    let v = d0 * 100 + d1 * 10 + d2;
    (v <= 255).then_some((v, j + 3))
}

/// High bit set in each byte of `x` that is a comma or a quote (exact: no false positives).
#[inline]
pub(crate) fn separators(x: u64) -> u64 {
    const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const ONES: u64 = 0x0101_0101_0101_0101;
    let zero = |y: u64| !(((y & LO7).wrapping_add(LO7)) | y | LO7);
    zero(x ^ (ONES * b',' as u64)) | zero(x ^ (ONES * b'"' as u64))
}

/// A position in a line. Every method consumes one field and the comma after it, or returns
/// `None` (leaving the line to the general path).
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    /// Index of the first comma or quote at or after the cursor, eight bytes at a time.
    #[inline]
    fn find(&self) -> Option<usize> {
        let mut at = self.i;
        while at + 8 <= self.b.len() {
            let word = u64::from_le_bytes(self.b[at..at + 8].try_into().ok()?);
            let m = separators(word);
            if m != 0 {
                return Some(at + m.trailing_zeros() as usize / 8);
            }
            at += 8;
        }
        self.b.get(at..)?.iter().position(|&x| x == b',' || x == b'"').map(|n| at + n)
    }

    /// Move past the separator at `end`, which must be a comma; the field before it.
    #[inline]
    fn take(&mut self, end: usize) -> Option<&'a [u8]> {
        if self.b[end] != b',' {
            return None; // a quote: the general path applies CSV quoting
        }
        let f = &self.b[self.i..end];
        self.i = end + 1;
        Some(f)
    }

    /// The field at the cursor, as text.
    #[inline]
    fn field(&mut self) -> Option<&'a [u8]> {
        let end = self.find()?;
        self.take(end)
    }

    /// Skip a field whose text no reader uses.
    #[inline]
    fn skip(&mut self) -> Option<()> {
        self.field().map(|_| ())
    }

    /// True (and consumed) when the field at the cursor is empty.
    #[inline]
    fn empty(&mut self) -> bool {
        let e = self.b.get(self.i) == Some(&b',');
        self.i += e as usize;
        e
    }

    /// `text` followed by a comma, consumed (a fixed-size compare the compiler unrolls).
    #[inline]
    fn eat<const N: usize>(&mut self, text: &[u8; N]) -> bool {
        let ok = self.b.get(self.i..self.i + N + 1).is_some_and(|f| f[..N] == *text && f[N] == b',');
        if ok {
            self.i += N + 1;
        }
        ok
    }

    /// Decimal without sign or leading `+`, at most `max`, as the general path's `parse_uint`.
    #[inline]
    fn uint(&mut self, max: u32) -> Option<u32> {
        let mut v: u64 = 0;
        let mut n = 0;
        loop {
            let b = *self.b.get(self.i + n)?;
            if b == b',' {
                break;
            }
            let d = b.wrapping_sub(b'0');
            if d > 9 || n == 10 {
                return None;
            }
            v = v * 10 + d as u64;
            n += 1;
        }
        if n == 0 || v > max as u64 {
            return None;
        }
        self.i += n + 1;
        Some(v as u32)
    }

    /// A dotted quad, read octet by octet in the same pass; anything else (IPv6, or not an
    /// address) goes through the general parser, so both paths agree on every spelling.
    #[inline]
    fn ip(&mut self) -> Option<Ip> {
        let b = self.b;
        let dot = |j: usize, sep: u8| (b.get(j) == Some(&sep)).then_some(j + 1);
        let quad = || {
            let (o1, j) = octet(b, self.i)?;
            let (o2, j) = octet(b, dot(j, b'.')?)?;
            let (o3, j) = octet(b, dot(j, b'.')?)?;
            let (o4, j) = octet(b, dot(j, b'.')?)?;
            Some((o1 << 24 | o2 << 16 | o3 << 8 | o4, dot(j, b',')?))
        };
        match quad() {
            Some((a, next)) => {
                self.i = next;
                Some(Ip::V4(a))
            }
            None => parse_ip(self.field()?),
        }
    }

    #[inline]
    fn probe(&mut self) -> Option<ProbeVersion> {
        if self.eat(b"v1") {
            Some(ProbeVersion::V1)
        } else if self.eat(b"v0") {
            Some(ProbeVersion::V0)
        } else {
            None
        }
    }

    /// The class, told apart by its first letter.
    #[inline]
    fn class(&mut self) -> Option<Class> {
        let (ok, class) = match *self.b.get(self.i)? {
            b't' => (self.eat(b"tcp"), Class::Tcp),
            b'c' => (self.eat(b"closed"), Class::Closed),
            b'u' => (self.eat(b"unreachable"), Class::Unreachable),
            b'e' => (self.eat(b"echo"), Class::Echo),
            b'm' if self.eat(b"mptcp") => (true, Class::Mptcp),
            b'm' => (self.eat(b"malformed"), Class::Malformed),
            _ => (false, Class::Tcp),
        };
        ok.then_some(class)
    }

    #[inline]
    fn bool(&mut self) -> Option<bool> {
        if self.eat(b"false") || self.empty() {
            Some(false)
        } else if self.eat(b"true") {
            Some(true)
        } else {
            None
        }
    }

    /// The last field: the rest of the line, which must hold no further comma or quote.
    #[inline]
    fn last(&mut self) -> Option<&'a [u8]> {
        let rest = self.b.get(self.i..)?;
        if !rest.is_empty() && self.find().is_some() {
            return None;
        }
        self.i = self.b.len();
        Some(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::COLUMNS;

    fn cols(names: &[&str]) -> Columns {
        Columns::resolve(&csv::ByteRecord::from(names.to_vec()), Col::SUMMARY).unwrap()
    }

    /// The general path on one line, as the reader takes it: a line with a quote through the csv
    /// crate, any other split at every comma.
    fn general<'a>(line: &'a [u8], rec: &'a mut csv::ByteRecord, cols: &Columns) -> Result<RowRef<'a>, String> {
        if line.contains(&b'"') {
            let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(line);
            if !r.read_byte_record(rec).map_err(|e| e.to_string())? {
                return Err("no record".into());
            }
        } else {
            *rec = line.split(|&b| b == b',').collect();
        }
        RowRef::parse(&*rec, cols).map_err(|e| e.0)
    }

    #[test]
    fn layout_only_for_the_schema_in_order() {
        assert_eq!(ExactLayout::of(&cols(&COLUMNS)), Some(ExactLayout { width: 15 }));
        assert_eq!(ExactLayout::of(&cols(&COLUMNS[..14])), Some(ExactLayout { width: 14 }));
        let mut swapped = COLUMNS.to_vec();
        swapped.swap(12, 11);
        assert_eq!(ExactLayout::of(&cols(&swapped)), None);
        let mut extra = COLUMNS.to_vec();
        extra.push("note");
        assert_eq!(ExactLayout::of(&cols(&extra)), None);
        assert_eq!(ExactLayout::of(&cols(&COLUMNS[..13])), None);
        let mut dup = COLUMNS[..14].to_vec();
        dup[4] = "ip"; // the first `ip` is column 0: `responder` is missing, so not in place
        assert_eq!(ExactLayout::of(&cols(&dup)), None);
    }

    const LINES: &[&str] = &[
        "198.51.100.7,443,v1,mptcp,198.51.100.7,1,0x21,0011223344556677,1e0c0121,false,true,57,65535,2026-11-21T18:00:00.123456Z,",
        "198.51.100.8,80,v0,echo,198.51.100.8,0,0x81,,020405b41e0c0081aabbccddeeff0011,true,true,250,1024,2026-11-21T18:00:00Z,",
        "2001:db8::1,443,v1,tcp,2001:db8::1,,,,020405a0,false,false,64,28800,2026-11-21T18:00:00Z,",
        "203.0.113.9,443,v1,unreachable,198.51.100.1,,,,,false,false,250,0,2026-11-21T18:00:00Z,icmp 3/13",
        "203.0.113.9,443,v1,closed,203.0.113.9,,,,,false,false,250,0,,",
        // Flags without `0x` and empty booleans (false) are accepted by both paths.
        "203.0.113.9,443,v1,mptcp,203.0.113.9,1,1,,,,,250,0,,",
        // Each of these the fast path must leave to the general one (which accepts or rejects it).
        "\"203.0.113.9\",443,v1,closed,203.0.113.9,,,,,false,false,250,0,,",
        "203.0.113.9,443,v1,closed,203.0.113.9,,,,,false,false,250,0,,\"a, b\"",
        "203.0.113.9,443,v1,closed,203.0.113.9,,,,,false,false,250,0,,,",
        "203.0.113.9,443,v1,closed,203.0.113.9,,,,,false,false,250,0,",
        "203.0.113.9,443,v1,closed,203.0.113.9,,,,,false,false,250,0",
        "203.0.113.9,443,v2,closed,203.0.113.9,,,,,false,false,250,0,,",
        "203.0.113.9,443,v1,closd,203.0.113.9,,,,,false,false,250,0,,",
        "203.0.113.9,443,v1,mptcp,203.0.113.9,16,,,,false,false,250,0,,",
        "203.0.113.9,443,v1,mptcp,203.0.113.9,1,0x123,,,false,false,250,0,,",
        "203.0.113.9,443,v1,mptcp,203.0.113.9,1,0x1,,,False,false,250,0,,",
        "203.0.113.9,65536,v1,tcp,203.0.113.9,,,,,false,false,250,0,,",
        "203.0.113.9,443,v1,tcp,203.0.113.9,,,,,false,false,256,0,,",
        "203.0.113.9,443,v1,tcp,203.0.113.9,,,,,false,false,,0,,",
        "203.0.113.9,443,v1,tcp,203.0.113.9,,,,,false,false,1,65536,,",
        "1.2.3,443,v1,tcp,,,,,,false,false,1,1,,",
        "2001:db8::zz,443,v1,tcp,,,,,,false,false,1,1,,",
        ",,,,,,,,,,,,,,",
        "",
    ];

    /// Every line, with and without the trailing `detail` column: where the fast path accepts a
    /// line, the general path gives the same row; where it declines, the general path decides.
    #[test]
    fn same_rows_as_the_general_path() {
        let mut accepted = 0;
        for width in [15, 14] {
            let cols = cols(&COLUMNS[..width]);
            let layout = ExactLayout::of(&cols).unwrap();
            for l in LINES {
                let line = if width == 15 { l.to_string() } else { l.rsplit_once(',').map_or("", |p| p.0).to_string() };
                let mut rec = csv::ByteRecord::new();
                let slow = general(line.as_bytes(), &mut rec, &cols);
                match layout.parse(line.as_bytes()) {
                    Some(fast) => {
                        assert_eq!(Ok(&fast), slow.as_ref(), "{line}");
                        accepted += 1;
                    }
                    None => assert!(slow.is_err() || line.contains('"'), "declined a good line: {line} {slow:?}"),
                }
            }
        }
        assert_eq!(accepted, 12, "the six good lines, at both widths");
    }

    /// Address spellings: the fast path accepts every one the general path accepts, with the
    /// same value, and no other.
    #[test]
    fn address_spellings() {
        let cols = cols(&COLUMNS);
        let layout = ExactLayout::of(&cols).unwrap();
        for a in [
            "0.0.0.0",
            "255.255.255.255",
            "1.2.3.4",
            "10.20.30.40",
            "100.200.250.199",
            "9.99.199.255",
            "256.1.1.1",
            "1.256.1.1",
            "1.1.1.256",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            "01.2.3.4",
            "1.02.3.4",
            "1.2.3.00",
            "1.2.3.",
            ".1.2.3",
            "1.2.3.4x",
            "1.2.3.1000",
            "1234.1.1.1",
            "a.b.c.d",
            "",
            "2001:db8::1",
            "::",
            "::ffff:1.2.3.4",
            "1::2",
            "2001:db8::zz",
            " 1.2.3.4",
        ] {
            let line = format!("{a},443,v1,tcp,{a},,,,,false,false,64,0,t,");
            let mut rec = csv::ByteRecord::new();
            let slow = general(line.as_bytes(), &mut rec, &cols);
            let fast = layout.parse(line.as_bytes());
            match &slow {
                Ok(row) => assert_eq!(fast.as_ref(), Some(row), "{a}"),
                Err(_) => assert_eq!(fast, None, "{a}"),
            }
        }
    }

    /// Random mutations of good lines (bytes replaced by separators, digits, letters, quotes):
    /// the fast path never accepts what the general path rejects, nor disagrees on what both accept.
    #[test]
    fn mutated_lines_agree() {
        let cols = cols(&COLUMNS);
        let layout = ExactLayout::of(&cols).unwrap();
        let alphabet = b",\"0159afvx.:-_ \r";
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut fast_ok, mut checked) = (0, 0);
        for _ in 0..20_000 {
            let mut line = LINES[(next() % 6) as usize].as_bytes().to_vec();
            for _ in 0..1 + next() % 3 {
                let i = (next() as usize) % line.len();
                match next() % 3 {
                    0 => line[i] = alphabet[(next() as usize) % alphabet.len()],
                    1 => {
                        line.remove(i);
                    }
                    _ => line.insert(i, alphabet[(next() as usize) % alphabet.len()]),
                }
            }
            let mut rec = csv::ByteRecord::new();
            let slow = general(&line, &mut rec, &cols);
            if let Some(fast) = layout.parse(&line) {
                assert_eq!(Ok(&fast), slow.as_ref(), "{}", String::from_utf8_lossy(&line));
                fast_ok += 1;
            }
            checked += 1;
        }
        assert!(fast_ok > 1000 && fast_ok < checked, "{fast_ok} of {checked}: the mutations must exercise both");
    }
}
