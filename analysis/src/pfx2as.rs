//! Origin AS of an address by longest-prefix match over a CAIDA RouteViews prefix-to-AS file
//! (`routeviews-rv2-*.pfx2as`: `prefix<TAB>length<TAB>asn` per line, where asn may be a
//! multi-origin `701_702` or an AS set `{1,2}`; IPv6 files have the same layout).
//!
//! Nested prefixes are flattened once into disjoint address ranges sorted by start, each labelled
//! with its most specific origin ([`crate::enrich::lpm`], shared with the economy lookup); a
//! lookup is then one binary search within the address's /16.

use crate::enrich::lpm::{Interval, RangeTable};
use anyhow::{bail, Context, Result};
use mpscan_schema::Ip;
use std::path::Path;

/// Label id meaning "no covering prefix".
pub const NO_ROUTE: u32 = crate::enrich::lpm::NONE;

/// Longest-prefix-match table from address to origin AS label.
#[derive(Debug, Clone, Default)]
pub struct Pfx2As {
    /// Origin labels (`AS13335`, `AS701_702`), indexed by label id.
    pub labels: Vec<String>,
    table: RangeTable,
    /// Prefix lines used.
    pub prefixes: u64,
    /// Lines skipped as unparseable.
    pub skipped: u64,
    /// The first few skipped lines, as `line N: reason`.
    pub skip_examples: Vec<String>,
}

impl Pfx2As {
    /// Read a pfx2as file. Unreadable lines are skipped and counted; a file with no usable line
    /// is an error.
    pub fn read(path: &Path) -> Result<Pfx2As> {
        let text = std::fs::read(path).with_context(|| format!("{}: cannot read pfx2as file", path.display()))?;
        let t = Pfx2As::parse(&text);
        if t.prefixes == 0 {
            let why = t.skip_examples.first().map(|s| format!(" (first problem: {s})")).unwrap_or_default();
            bail!("{}: no usable prefix lines in pfx2as file{why}", path.display());
        }
        Ok(t)
    }

    /// Parse pfx2as text (see `read`).
    pub fn parse(text: &[u8]) -> Pfx2As {
        let mut t = Pfx2As::default();
        let mut ids = LabelIds::default();
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for (i, raw) in text.split(|b| *b == b'\n').enumerate() {
            // The common line, `a.b.c.d<TAB>len<TAB>asn`, without building a string.
            if let Some((a, len, n)) = fast_v4_line(raw) {
                let val = ids.of_number(n, &mut t.labels);
                v4.push(Interval::v4_prefix(a, len, val, i as u64 + 1));
                t.prefixes += 1;
                continue;
            }
            let line = String::from_utf8_lossy(raw);
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line) {
                Ok((ip, len, asn)) => {
                    let val = ids.of_text(asn, &mut t.labels);
                    match ip {
                        Ip::V4(a) => v4.push(Interval::v4_prefix(a, len, val, i as u64 + 1)),
                        Ip::V6(a) => v6.push(Interval::v6_prefix(a, len, val, i as u64 + 1)),
                    }
                    t.prefixes += 1;
                }
                Err(why) => {
                    t.skipped += 1;
                    if t.skip_examples.len() < 5 {
                        t.skip_examples.push(format!("line {}: {why}", i + 1));
                    }
                }
            }
        }
        // Prefixes nest or coincide but never partly overlap: nothing is rejected.
        t.table = RangeTable::build(v4, v6).0;
        t
    }

    /// Label id of the longest prefix covering `ip`, or `NO_ROUTE`.
    #[inline(always)]
    pub fn lookup(&self, ip: Ip) -> u32 {
        self.table.lookup(ip)
    }

    /// Label of an id (`-` for `NO_ROUTE`).
    pub fn label(&self, id: u32) -> &str {
        self.labels.get(id as usize).map_or("-", |s| s.as_str())
    }
}

/// Label ids of origins in order of first appearance. Most lines repeat an origin already seen,
/// so an id is looked up before anything is allocated: a plain AS number by its value (below
/// 2^20 in a vector, no hashing), anything else (`701_702`, `{1,2}`, `0123`) by its text.
struct LabelIds {
    small: Vec<u32>,
    numeric: crate::stacks::FxMap<u64, u32>,
    text: crate::stacks::FxMap<String, u32>,
}

impl Default for LabelIds {
    fn default() -> Self {
        LabelIds { small: vec![NO_ROUTE; 1 << 20], numeric: Default::default(), text: Default::default() }
    }
}

impl LabelIds {
    /// The id of plain AS number `n` (labelled `AS<n>`), adding its label on first sight.
    #[inline]
    fn of_number(&mut self, n: u64, labels: &mut Vec<String>) -> u32 {
        let slot = match self.small.get_mut(n as usize) {
            Some(v) => v,
            None => self.numeric.entry(n).or_insert(NO_ROUTE),
        };
        if *slot == NO_ROUTE {
            *slot = labels.len() as u32;
            labels.push(format!("AS{n}"));
        }
        *slot
    }

    /// The id of an origin as the file spells it (`0123` is not `123`: leading zeros keep the text).
    fn of_text(&mut self, asn: &str, labels: &mut Vec<String>) -> u32 {
        if asn.len() == 1 || !asn.starts_with('0') {
            if let Ok(n) = asn.parse::<u64>() {
                return self.of_number(n, labels);
            }
        }
        if let Some(v) = self.text.get(asn) {
            return *v;
        }
        let next = labels.len() as u32;
        labels.push(format!("AS{asn}"));
        self.text.insert(asn.to_string(), next);
        next
    }
}

/// `a.b.c.d<TAB>len<TAB>asn` with a plain AS number (no leading zero) and no host bits set:
/// what [`parse_line`] accepts of such a line, read from bytes; `None` sends the line to it.
#[inline]
fn fast_v4_line(raw: &[u8]) -> Option<(u32, u8, u64)> {
    let mut f = raw.split(|b| *b == b'\t');
    let (Some(p), Some(l), Some(asn), None) = (f.next(), f.next(), f.next(), f.next()) else {
        return None;
    };
    let Some(Ip::V4(a)) = mpscan_schema::row_ref::parse_ip(p) else {
        return None;
    };
    let digits = |t: &[u8]| !t.is_empty() && t.len() <= 10 && t.iter().all(u8::is_ascii_digit);
    if !digits(l) || l.len() > 2 || !digits(asn) || (asn.len() > 1 && asn[0] == b'0') {
        return None;
    }
    let len = l.iter().fold(0u8, |v, d| v * 10 + (d - b'0'));
    let n = asn.iter().fold(0u64, |v, d| v * 10 + (d - b'0') as u64);
    (len <= 32 && (len == 32 || a & (u32::MAX >> len) == 0)).then_some((a, len, n))
}

fn parse_line(line: &str) -> Result<(Ip, u8, &str), String> {
    let mut f = line.split_whitespace();
    let (Some(p), Some(l), Some(asn), None) = (f.next(), f.next(), f.next(), f.next()) else {
        return Err("expected 3 fields: prefix, length, ASN".into());
    };
    let ip = mpscan_schema::row_ref::parse_ip(p.as_bytes()).ok_or_else(|| format!("bad prefix address {p:?}"))?;
    let max = if matches!(ip, Ip::V4(_)) { 32 } else { 128 };
    let len: u8 = l.parse().ok().filter(|n| *n <= max).ok_or_else(|| format!("bad prefix length {l:?}"))?;
    let host_bits_set = match ip {
        Ip::V4(a) => len < 32 && a & (u32::MAX >> len) != 0,
        Ip::V6(a) => len < 128 && a & (u128::MAX >> len) != 0,
    };
    if host_bits_set {
        return Err(format!("{p}/{len} has host bits set"));
    }
    let ok = !asn.is_empty() && asn.bytes().all(|b| b.is_ascii_digit() || b"_,{}".contains(&b));
    if !ok {
        return Err(format!("bad ASN {asn:?}"));
    }
    Ok((ip, len, asn))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Ip {
        mpscan_schema::row_ref::parse_ip(s.as_bytes()).unwrap()
    }

    /// The byte fast path and the general line parser agree: the same file read through each
    /// (a trailing space sends every line to the general parser) gives the same labels, counts
    /// and lookups, bad lines included.
    #[test]
    fn fast_lines_read_as_the_general_parser_reads_them() {
        let lines = [
            "10.0.0.0\t8\t100",
            "10.1.0.0\t16\t200",
            "10.1.2.0\t24\t0",
            "10.1.3.0\t24\t0123",
            "10.1.4.0\t24\t4294967296",
            "10.1.5.0\t24\t701_702",
            "10.1.6.1\t24\t5",
            "10.1.7.0\t33\t5",
            "10.1.8.0\t032\t5",
            "10.255.255.255\t32\t500",
            "0.0.0.0\t0\t1",
            "2001:db8::\t32\t64501",
            "1.2.3\t24\t5",
            "10.1.9.0\t24",
            "10.1.9.0\t24\t5\t6",
        ];
        let fast = Pfx2As::parse(lines.join("\n").as_bytes());
        let slow = Pfx2As::parse(lines.map(|l| format!("{l} ")).join("\n").as_bytes());
        assert_eq!(
            (fast.labels.clone(), fast.prefixes, fast.skipped),
            (slow.labels.clone(), slow.prefixes, slow.skipped)
        );
        assert_eq!(fast.skipped, 5, "{:?}", fast.skip_examples);
        for a in ["10.1.2.9", "10.1.3.9", "10.1.4.9", "10.1.5.9", "10.255.255.255", "10.1.200.1", "11.0.0.1"] {
            assert_eq!(fast.lookup(v4(a)), slow.lookup(v4(a)), "{a}");
        }
    }

    const NESTED: &str = "\
# nested prefixes: /8 > /16 > /24, a sibling /24, a duplicate, a MOAS, IPv6
10.0.0.0\t8\t100
10.1.0.0\t16\t200
10.1.2.0\t24\t300
10.1.4.0\t24\t400
10.1.0.0\t16\t999
10.255.255.255\t32\t500
192.0.2.0\t24\t64496_64497
0.0.0.0\t1\t1
255.255.255.255\t32\t2
2001:db8::\t32\t600
2001:db8:1::\t48\t700
";

    fn label(t: &Pfx2As, ip: &str) -> String {
        t.label(t.lookup(mpscan_schema::row_ref::parse_ip(ip.as_bytes()).unwrap())).to_string()
    }

    #[test]
    fn longest_prefix_wins_on_nested_prefixes() {
        let t = Pfx2As::parse(NESTED.as_bytes());
        assert_eq!((t.prefixes, t.skipped), (11, 0));
        for (ip, want) in [
            ("10.0.0.0", "AS100"),
            ("10.0.255.255", "AS100"),
            ("10.1.0.0", "AS200"),
            ("10.1.1.255", "AS200"),
            ("10.1.2.0", "AS300"),
            ("10.1.2.255", "AS300"),
            ("10.1.3.0", "AS200"),
            ("10.1.4.7", "AS400"),
            ("10.1.5.0", "AS200"),
            ("10.1.255.255", "AS200"),
            ("10.2.0.0", "AS100"),
            ("10.255.255.254", "AS100"),
            ("10.255.255.255", "AS500"),
            ("11.0.0.0", "AS1"),
            ("0.0.0.0", "AS1"),
            ("127.255.255.255", "AS1"),
            ("128.0.0.0", "-"),
            ("192.0.2.1", "AS64496_64497"),
            ("192.0.3.0", "-"),
            ("255.255.255.254", "-"),
            ("255.255.255.255", "AS2"),
            ("2001:db8::1", "AS600"),
            ("2001:db8:1::5", "AS700"),
            ("2001:db8:2::", "AS600"),
            ("2001:db9::", "-"),
            ("::1", "-"),
        ] {
            assert_eq!(label(&t, ip), want, "{ip}");
        }
    }

    #[test]
    fn matches_a_naive_longest_prefix_scan() {
        let t = Pfx2As::parse(NESTED.as_bytes());
        let pfx: Vec<(u32, u8, String)> = NESTED
            .lines()
            .filter(|l| !l.starts_with('#') && !l.contains(':'))
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                let Ip::V4(a) = v4(f[0]) else { unreachable!() };
                (a, f[1].parse().unwrap(), format!("AS{}", f[2]))
            })
            .collect();
        let mut x: u32 = 0x9e37_79b9;
        for _ in 0..20_000 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            // Bias half the probes into 10.1.0.0/16 where the nesting is.
            let a = if x & 1 == 0 { 0x0a01_0000 | (x >> 16) } else { x };
            let best = pfx
                .iter()
                .filter(|(p, l, _)| *l == 0 || (a ^ p) >> (32 - *l as u32) == 0)
                .max_by_key(|(_, l, _)| *l)
                .map_or("-".to_string(), |(_, _, s)| if s == "AS999" { "AS200".into() } else { s.clone() });
            assert_eq!(t.label(t.lookup(Ip::V4(a))), best, "{}", std::net::Ipv4Addr::from(a));
        }
    }

    #[test]
    fn a_host_route_covers_one_address() {
        // A /128 once covered the whole rest of the space: `>> 128` wraps to `>> 0` in release.
        let t = Pfx2As::parse(b"2001:db8::\t32\t600\n2001:db8::5\t128\t800\n10.0.0.5\t32\t900\n");
        assert_eq!(label(&t, "2001:db8::5"), "AS800");
        assert_eq!(label(&t, "2001:db8::6"), "AS600");
        assert_eq!(label(&t, "2001:db9::"), "-");
        assert_eq!((label(&t, "10.0.0.5"), label(&t, "10.0.0.6")), ("AS900".into(), "-".into()));
    }

    #[test]
    fn bad_lines_are_counted_and_skipped() {
        let text = "10.0.0.0\t8\t100\nnot a line\ntwo fields\n10.0.0.0\t33\t1\n10.0.0.1\t24\t1\n10.0.0.0\t8\tASX\n300.0.0.0\t8\t1\n\n11.0.0.0 8 7\n";
        let t = Pfx2As::parse(text.as_bytes());
        assert_eq!((t.prefixes, t.skipped), (2, 6));
        assert_eq!(t.skip_examples[1], "line 3: expected 3 fields: prefix, length, ASN");
        assert_eq!(t.skip_examples[0], "line 2: bad prefix address \"not\"");
        assert!(t.skip_examples[3].contains("host bits"), "{:?}", t.skip_examples);
        assert_eq!(label(&t, "11.1.1.1"), "AS7");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.pfx2as");
        std::fs::write(&p, "garbage\n").unwrap();
        let e = Pfx2As::read(&p).unwrap_err().to_string();
        assert!(e.contains("no usable prefix lines") && e.contains("line 1"), "{e}");
    }
}
