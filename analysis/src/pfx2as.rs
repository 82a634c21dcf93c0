//! Origin AS of an address by longest-prefix match over a CAIDA RouteViews prefix-to-AS file
//! (`routeviews-rv2-*.pfx2as`: `prefix<TAB>length<TAB>asn` per line, where asn may be a
//! multi-origin `701_702` or an AS set `{1,2}`; IPv6 files have the same layout).
//!
//! Nested prefixes are flattened once into disjoint address ranges sorted by start, each labelled
//! with its most specific origin; a lookup is then one binary search. For IPv4 a 65,536-entry index
//! by /16 narrows that search to the few ranges inside the address's /16, so a full routing table
//! (about a million prefixes) costs a handful of comparisons per row.

use anyhow::{bail, Context, Result};
use mpscan_schema::Ip;
use std::collections::HashMap;
use std::path::Path;

/// Label id meaning "no covering prefix".
pub const NO_ROUTE: u32 = u32::MAX;

/// Longest-prefix-match table from address to origin AS label.
#[derive(Debug, Clone, Default)]
pub struct Pfx2As {
    /// Origin labels (`AS13335`, `AS701_702`), indexed by label id.
    pub labels: Vec<String>,
    v4_starts: Vec<u32>,
    v4_vals: Vec<u32>,
    /// `v4_index[k]` = range containing address `k << 16`.
    v4_index: Vec<u32>,
    v6_starts: Vec<u128>,
    v6_vals: Vec<u32>,
    /// Prefix lines used.
    pub prefixes: u64,
    /// Lines skipped as unparseable.
    pub skipped: u64,
    /// The first few skipped lines, as `line N: reason`.
    pub skip_examples: Vec<String>,
}

/// One parsed prefix: first and last address (as u128 for both families) and label.
struct Pfx {
    start: u128,
    end: u128,
    len: u8,
    val: u32,
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
        let mut ids: HashMap<String, u32> = HashMap::new();
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for (i, raw) in text.split(|b| *b == b'\n').enumerate() {
            let line = String::from_utf8_lossy(raw);
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line) {
                Ok((ip, len, asn)) => {
                    let next = t.labels.len() as u32;
                    let val = *ids.entry(asn.to_string()).or_insert_with(|| {
                        t.labels.push(format!("AS{asn}"));
                        next
                    });
                    match ip {
                        Ip::V4(a) => {
                            let end = a as u128 | (u32::MAX as u128 >> len);
                            v4.push(Pfx { start: a as u128, end, len, val })
                        }
                        Ip::V6(a) => {
                            let end = if len == 0 { u128::MAX } else { a | (u128::MAX >> len) };
                            v6.push(Pfx { start: a, end, len, val })
                        }
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
        let (s4, v4v) = flatten(v4, u32::MAX as u128);
        t.v4_starts = s4.into_iter().map(|s| s as u32).collect();
        t.v4_vals = v4v;
        t.v4_index =
            (0..=u16::MAX as u32).map(|k| (t.v4_starts.partition_point(|s| *s <= k << 16) - 1) as u32).collect();
        let (s6, v6v) = flatten(v6, u128::MAX);
        t.v6_starts = s6;
        t.v6_vals = v6v;
        t
    }

    /// Label id of the longest prefix covering `ip`, or `NO_ROUTE`.
    #[inline]
    pub fn lookup(&self, ip: Ip) -> u32 {
        match ip {
            Ip::V4(a) => {
                let top = (a >> 16) as usize;
                let lo = self.v4_index[top] as usize;
                let hi = if top < 0xffff { self.v4_index[top + 1] as usize + 1 } else { self.v4_starts.len() };
                let i = lo + self.v4_starts[lo..hi].partition_point(|s| *s <= a) - 1;
                self.v4_vals[i]
            }
            Ip::V6(a) => {
                let i = self.v6_starts.partition_point(|s| *s <= a);
                if i == 0 {
                    NO_ROUTE
                } else {
                    self.v6_vals[i - 1]
                }
            }
        }
    }

    /// Label of an id (`-` for `NO_ROUTE`).
    pub fn label(&self, id: u32) -> &str {
        self.labels.get(id as usize).map_or("-", |s| s.as_str())
    }
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

/// Disjoint ranges under construction: range i covers [starts[i], starts[i+1]).
struct Ranges {
    starts: Vec<u128>,
    vals: Vec<u32>,
}

impl Ranges {
    /// From `pos` on, the label is `val` (merging with the previous range when equal).
    fn emit(&mut self, pos: u128, val: u32) {
        let n = self.starts.len();
        if self.starts[n - 1] == pos {
            self.vals[n - 1] = val;
            if n >= 2 && self.vals[n - 2] == val {
                self.starts.pop();
                self.vals.pop();
            }
        } else if self.vals[n - 1] != val {
            self.starts.push(pos);
            self.vals.push(val);
        }
    }

    /// Close every open prefix that ends before `limit` (all of them for `None`): after its end
    /// the enclosing prefix's label (or no route) applies again.
    fn close_until(&mut self, stack: &mut Vec<(u128, u32)>, limit: Option<u128>, max: u128) {
        while let Some(&(end, _)) = stack.last() {
            if limit.is_some_and(|l| end >= l) {
                break;
            }
            stack.pop();
            if let Some(after) = end.checked_add(1).filter(|a| *a <= max) {
                self.emit(after, stack.last().map_or(NO_ROUTE, |t| t.1));
            }
        }
    }
}

/// Turn possibly nested prefixes into disjoint ranges: (starts, labels), starts[0] == 0, the
/// range i covering [starts[i], starts[i+1]), `max` the family's last address. The most specific
/// prefix wins; among identical prefixes the first line wins.
fn flatten(mut p: Vec<Pfx>, max: u128) -> (Vec<u128>, Vec<u32>) {
    p.sort_by_key(|x| (x.start, x.len));
    p.dedup_by_key(|x| (x.start, x.len));
    let mut out = Ranges { starts: vec![0], vals: vec![NO_ROUTE] };
    let mut stack: Vec<(u128, u32)> = vec![];
    for x in &p {
        out.close_until(&mut stack, Some(x.start), max);
        out.emit(x.start, x.val);
        stack.push((x.end, x.val));
    }
    out.close_until(&mut stack, None, max);
    (out.starts, out.vals)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Ip {
        mpscan_schema::row_ref::parse_ip(s.as_bytes()).unwrap()
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
