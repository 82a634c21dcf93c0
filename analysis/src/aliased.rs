//! Aliased prefixes in IPv6 hitlist scans: prefixes where one machine answers for every address,
//! so that counting addresses would count that machine thousands of times.
//!
//! Two tools, both documented in docs/FINGERPRINTS.md:
//! - **Known aliases** (`summary --aliased FILE`): the hitlist service's aliased-prefix list, one
//!   prefix per line (`#` comments; IPv6 and IPv4). Rows inside a listed prefix are counted apart,
//!   per probe version and class, and left out of every other table. Lines that do not parse are
//!   skipped and reported like `--pfx2as` does (`crate::pfx2as`); a list with no usable line is an
//!   error naming the file and the first bad line.
//! - **Detection** (`summary --alias-min K`, default 3): per /64 and /96, per port and probe
//!   version, the answered IPv6 rows are compared; a prefix where at least K rows fell and all
//!   agree on class, stack fingerprint (`crate::stacks`) and MP_CAPABLE behaviour (version, flags,
//!   and whether the option carried a key) is flagged as likely aliased. Flagged prefixes stay in
//!   the counts: agreement is a hint, not proof (a rack of identically configured servers agrees
//!   too), and a single answer is never evidence, so K is at least 2. Key values are not compared:
//!   a real stack draws a fresh random key per connection (RFC 8684), so one host answering a
//!   whole /64 shows different keys anyway.
//!
//! Memory: the detector keeps 24 bytes per (prefix, port, probe) that had an answered IPv6 row,
//! at two levels, plus one entry per distinct answer signature; nothing for IPv4 rows or rows
//! without an answer. It grows with distinct prefixes, not rows.

use crate::stacks::{FxMap, StackKey};
use crate::summary::{Aggregate, Counts};
use crate::table::{thousands, Cell, Table};
use anyhow::{bail, Context, Result};
use mpscan_schema::{Class, Ip, ProbeVersion, RowRef, NCLASS};
use std::collections::hash_map::Entry;
use std::path::Path;
use std::sync::Arc;

/// The hitlist service's aliased prefixes, flattened into sorted disjoint ranges per family.
#[derive(Debug, Clone, Default)]
pub struct AliasedList {
    /// The file the list came from (named in the table note).
    pub source: String,
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
    /// Prefix lines used.
    pub prefixes: u64,
    /// Lines skipped as unparseable.
    pub skipped: u64,
    /// The first few skipped lines, as `line N: reason`.
    pub skip_examples: Vec<String>,
}

/// What a good line looks like, for error messages.
pub const FIX: &str = "one IPv6 or IPv4 prefix per line, e.g. 2001:db8::/32";

/// Sort ranges and merge overlapping or adjacent ones.
fn merge_ranges<T: Ord + Copy>(mut v: Vec<(T, T)>, next: impl Fn(T) -> Option<T>) -> Vec<(T, T)> {
    v.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(v.len());
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if next(last.1).is_none_or(|n| s <= n) => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

fn parse_line(line: &str) -> Result<(Ip, u8), String> {
    let (addr, len) = match line.split_once('/') {
        Some((a, l)) => (a.trim(), Some(l.trim())),
        None => (line, None),
    };
    if addr.contains(char::is_whitespace) || len.is_some_and(|l| l.contains(char::is_whitespace)) {
        return Err(format!("expected one prefix, got {line:?}"));
    }
    let ip = mpscan_schema::row_ref::parse_ip(addr.as_bytes()).ok_or_else(|| format!("bad address {addr:?}"))?;
    let max = if matches!(ip, Ip::V4(_)) { 32 } else { 128 };
    let len: u8 = match len {
        None => max,
        Some(l) => l.parse().ok().filter(|n| *n <= max).ok_or_else(|| format!("bad prefix length {l:?}"))?,
    };
    let host_bits = match ip {
        Ip::V4(a) => len < 32 && a & (u32::MAX >> len) != 0,
        Ip::V6(a) => len < 128 && a & (u128::MAX >> len) != 0,
    };
    if host_bits {
        return Err(format!("{addr}/{len} has host bits set"));
    }
    Ok((ip, len))
}

impl AliasedList {
    /// Read a list file: bad lines are skipped and counted, a file without a usable line is an
    /// error naming the first problem and the fix.
    pub fn read(path: &Path) -> Result<AliasedList> {
        let text =
            std::fs::read(path).with_context(|| format!("{}: cannot read aliased-prefix list", path.display()))?;
        let mut t = AliasedList::parse(&text);
        t.source = path.display().to_string();
        if t.prefixes == 0 {
            let why = t.skip_examples.first().map(|s| format!(" (first problem: {s})")).unwrap_or_default();
            bail!("{}: no usable prefix in aliased-prefix list{why}; {FIX}", path.display());
        }
        Ok(t)
    }

    /// Parse list text (see `read`).
    pub fn parse(text: &[u8]) -> AliasedList {
        let mut t = AliasedList::default();
        let (mut v4, mut v6) = (vec![], vec![]);
        for (i, raw) in text.split(|b| *b == b'\n').enumerate() {
            let line = String::from_utf8_lossy(raw);
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            match parse_line(line) {
                Ok((Ip::V4(a), len)) => {
                    v4.push((a, a | (u32::MAX.checked_shr(len as u32).unwrap_or(0))));
                    t.prefixes += 1;
                }
                Ok((Ip::V6(a), len)) => {
                    v6.push((a, a | (u128::MAX.checked_shr(len as u32).unwrap_or(0))));
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
        t.v4 = merge_ranges(v4, |x: u32| x.checked_add(1));
        t.v6 = merge_ranges(v6, |x: u128| x.checked_add(1));
        t
    }

    /// Whether a listed prefix covers `ip` (one binary search).
    #[inline]
    pub fn contains(&self, ip: Ip) -> bool {
        match ip {
            Ip::V4(a) => {
                let i = self.v4.partition_point(|r| r.0 <= a);
                i > 0 && self.v4[i - 1].1 >= a
            }
            Ip::V6(a) => {
                let i = self.v6.partition_point(|r| r.0 <= a);
                i > 0 && self.v6[i - 1].1 >= a
            }
        }
    }
}

/// Rows set apart because a known aliased prefix covers them.
#[derive(Debug, Clone)]
pub struct SetApart {
    /// The list.
    pub list: Arc<AliasedList>,
    /// Rows per probe version (indexed by `ProbeVersion as usize`) and class.
    pub counts: [Counts; 2],
}

impl SetApart {
    /// Empty counters over a list.
    pub fn new(list: Arc<AliasedList>) -> SetApart {
        SetApart { list, counts: [[0; NCLASS]; 2] }
    }

    /// Count `r` apart if a listed prefix covers it; true means the caller skips the row.
    #[inline]
    pub fn take(&mut self, r: &RowRef) -> bool {
        if self.list.contains(r.ip) {
            self.counts[r.probe as usize][r.class as usize] += 1;
            true
        } else {
            false
        }
    }

    /// Fold another worker's counters in.
    pub fn merge(a: &mut Option<SetApart>, b: Option<SetApart>) {
        if let (Some(a), Some(b)) = (a.as_mut(), b) {
            for p in 0..2 {
                for c in 0..NCLASS {
                    a.counts[p][c] += b.counts[p][c];
                }
            }
        }
    }

    /// Rows set apart in all.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }
}

/// Rows of one probe version that `--aliased` set apart (zero without it): the metadata check
/// adds them back, since the scanner counted them.
pub fn set_apart_counts(agg: &Aggregate, p: ProbeVersion) -> Counts {
    agg.set_apart.as_ref().map_or([0; NCLASS], |s| s.counts[p as usize])
}

/// Rows in known aliased prefixes, per class and probe version.
pub fn set_apart_table(s: &SetApart) -> Table {
    let probes: Vec<ProbeVersion> =
        ProbeVersion::ALL.into_iter().filter(|p| s.counts[*p as usize].iter().any(|n| *n > 0)).collect();
    let mut cols = vec!["class".to_string()];
    cols.extend(probes.iter().map(|p| format!("probe {}", p.label())));
    let cols: Vec<&str> = cols.iter().map(|c| c.as_str()).collect();
    let mut t = Table::new("Rows in known aliased prefixes (set apart)", &cols);
    for c in Class::ALL {
        let mut row = vec![Cell::text(c.label())];
        row.extend(probes.iter().map(|p| Cell::Int(s.counts[*p as usize][c as usize])));
        t.push(row);
    }
    t.with_note(format!(
        "{} rows inside the {} prefixes of {} set apart: they are left out of the headline, flags, fingerprints and breakdowns",
        thousands(s.total()),
        thousands(s.list.prefixes),
        s.list.source
    ))
}

/// What one answer looked like, as the detector compares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sig {
    /// Class of the answer.
    pub class: Class,
    /// Its stack fingerprint.
    pub key: StackKey,
    /// MP_CAPABLE version, if any.
    pub version: Option<u8>,
    /// MP_CAPABLE flags, if any.
    pub flags: Option<u8>,
    /// MPTCP option length (12: carried a key, 4: no key, 0: no MPTCP option).
    pub mp_len: u8,
}

/// Answers seen in one (prefix, port, probe): how many, and the one signature they share.
#[derive(Debug, Clone, Copy)]
struct PState {
    rows: u32,
    /// Index into `Detector::sigs`, `MIXED` once two answers differ.
    id: u32,
}

const MIXED: u32 = u32::MAX;

/// Likely-aliased prefix detection over answered IPv6 rows (see the module doc).
#[derive(Debug, Clone)]
pub struct Detector {
    /// Rows that must agree before a prefix is flagged (at least 2).
    pub min_rows: u32,
    sigs: Vec<Sig>,
    /// Signature ids by (compact fingerprint | class, MP_CAPABLE version, flags, option length).
    ids: FxMap<(u128, u32), u32>,
    /// Per /64, port and probe: key = /64 bits | port << 8 | probe.
    p64: FxMap<u128, PState>,
    /// Per /96, port and probe: key = /96 bits | port << 8 | probe.
    p96: FxMap<u128, PState>,
}

/// One flagged prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flagged {
    /// `2001:db8::/64`.
    pub prefix: String,
    /// Prefix length, 64 or 96.
    pub len: u8,
    /// Port probed.
    pub port: u16,
    /// Probe version.
    pub probe: ProbeVersion,
    /// Answered rows in it.
    pub rows: u64,
    /// What every one of them looked like.
    pub sig: Sig,
}

fn bump(m: &mut FxMap<u128, PState>, k: u128, id: u32, rows: u32) {
    match m.entry(k) {
        Entry::Occupied(mut e) => {
            let s = e.get_mut();
            s.rows = s.rows.saturating_add(rows);
            if s.id != id {
                s.id = MIXED;
            }
        }
        Entry::Vacant(v) => {
            v.insert(PState { rows, id });
        }
    }
}

impl Detector {
    /// Empty detector; `min_rows` is clamped to at least 2 (one answer is never evidence).
    pub fn new(min_rows: u32) -> Detector {
        Detector {
            min_rows: min_rows.max(2),
            sigs: vec![],
            ids: FxMap::default(),
            p64: FxMap::default(),
            p96: FxMap::default(),
        }
    }

    /// Id of a signature given as (fingerprint's compact key, class, version, flags, option
    /// length); `key` builds the full fingerprint the first time only.
    fn intern(&mut self, compact: u128, s: (Class, Option<u8>, Option<u8>, u8), key: impl FnOnce() -> StackKey) -> u32 {
        let next = self.sigs.len() as u32;
        let (class, version, flags, mp_len) = s;
        // mp_len in bits 0-7, flags with a presence bit in 8-16, version with one in 17-25.
        let mpc = u32::from(version.map_or(0, |v| u16::from(v) | 0x100)) << 17
            | u32::from(flags.map_or(0, |f| u16::from(f) | 0x100)) << 8
            | u32::from(mp_len);
        match self.ids.entry((compact | (class as u128) << 120, mpc)) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(v) => {
                v.insert(next);
                self.sigs.push(Sig { class, key: key(), version, flags, mp_len });
                next
            }
        }
    }

    /// Count one answered IPv6 row whose fingerprint's compact key is `compact`.
    #[inline]
    pub fn add(&mut self, a: u128, r: &RowRef, compact: u128, mp_len: u8) {
        let id = self.intern(compact, (r.class, r.version, r.flags, mp_len), || {
            crate::stacks::parse(r.ttl, r.window, r.options).key
        });
        let tail = (r.port as u128) << 8 | r.probe as u128;
        bump(&mut self.p64, (a >> 64) << 64 | tail, id, 1);
        bump(&mut self.p96, (a >> 32) << 32 | tail, id, 1);
    }

    /// Fold another worker's detector in (its signature ids are translated to ours).
    pub fn merge(&mut self, o: Detector) {
        let map: Vec<u32> = o
            .sigs
            .iter()
            .map(|s| self.intern(s.key.compact(), (s.class, s.version, s.flags, s.mp_len), || s.key))
            .collect();
        let tr = |id: u32| if id == MIXED { MIXED } else { map[id as usize] };
        for (k, s) in o.p64 {
            bump(&mut self.p64, k, tr(s.id), s.rows);
        }
        for (k, s) in o.p96 {
            bump(&mut self.p96, k, tr(s.id), s.rows);
        }
    }

    /// Whether any answered IPv6 row was seen.
    pub fn is_empty(&self) -> bool {
        self.p64.is_empty()
    }

    /// Flagged prefixes, most rows first: every /64 whose rows agree, and every /96 whose rows
    /// agree inside a /64 that is not flagged itself. Also (/64s with at least `min_rows` rows,
    /// rows in flagged prefixes).
    pub fn flagged(&self) -> (Vec<Flagged>, usize, u64) {
        let mut out = vec![];
        let enough = |s: &PState| s.rows >= self.min_rows;
        let flag = |k: u128, s: &PState, len: u8| {
            let probe = if k as u8 == ProbeVersion::V0 as u8 { ProbeVersion::V0 } else { ProbeVersion::V1 };
            let net = std::net::Ipv6Addr::from(k >> (128 - len) << (128 - len));
            Flagged {
                prefix: format!("{net}/{len}"),
                len,
                port: (k >> 8) as u16,
                probe,
                rows: s.rows as u64,
                sig: self.sigs[s.id as usize],
            }
        };
        let mut candidates = 0;
        for (k, s) in &self.p64 {
            if enough(s) {
                candidates += 1;
                if s.id != MIXED {
                    out.push(flag(*k, s, 64));
                }
            }
        }
        for (k, s) in &self.p96 {
            let parent = self.p64.get(&(k >> 64 << 64 | k & 0xff_ffff));
            if enough(s) && s.id != MIXED && !parent.is_some_and(|p| enough(p) && p.id != MIXED) {
                out.push(flag(*k, s, 96));
            }
        }
        out.sort_by(|a, b| {
            b.rows.cmp(&a.rows).then_with(|| (a.len, &a.prefix, a.port).cmp(&(b.len, &b.prefix, b.port)))
        });
        let rows = out.iter().map(|f| f.rows).sum();
        (out, candidates, rows)
    }
}

/// MP_CAPABLE behaviour of a signature, for the table: `v1 0x01 key`, `v1 0x01 no key`, `-`.
pub fn behaviour(s: &Sig) -> String {
    match (s.version, s.flags, s.mp_len) {
        (None, None, 0) => "-".into(),
        (v, f, len) => format!(
            "v{} {} {}",
            v.map_or("?".into(), |v| v.to_string()),
            f.map_or("-".into(), |f| format!("0x{f:02x}")),
            if len >= 12 { "key" } else { "no key" }
        ),
    }
}

/// The table of likely aliased prefixes (top-N by rows).
pub fn flagged_table(d: &Detector, top: usize) -> Table {
    let mut t = Table::new(
        "Likely aliased IPv6 prefixes (every answer identical)",
        &["prefix", "port", "probe", "rows", "class", "JA4TS", "initial TTL", "MP_CAPABLE"],
    );
    let (v, candidates, rows) = d.flagged();
    let shown = if top == 0 { v.len() } else { top.min(v.len()) };
    for f in v.iter().take(shown) {
        t.push(vec![
            Cell::text(f.prefix.clone()),
            Cell::text(f.port.to_string()),
            Cell::text(f.probe.label()),
            Cell::Int(f.rows),
            Cell::text(f.sig.class.label()),
            Cell::text(f.sig.key.ja4ts()),
            Cell::text(f.sig.key.ttl_bucket.to_string()),
            Cell::text(behaviour(&f.sig)),
        ]);
    }
    t.with_note(format!(
        "a prefix is flagged when at least {} answered addresses in it (same port and probe) agree on class, \
         fingerprint and MP_CAPABLE version, flags and key presence; a single answer is never evidence; \
         {} /64s had {} or more answers, {} prefixes flagged ({} rows), {} shown; flagged rows stay in the counts \
         (set known aliases apart with --aliased)",
        d.min_rows,
        thousands(candidates as u64),
        d.min_rows,
        v.len(),
        thousands(rows),
        shown
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "\
# aliased prefixes, as the hitlist service publishes them
2001:db8:a::/48
2001:db8:b:1::/64   # trailing comment
2001:db8:a:5::/64
192.0.2.0/24
198.51.100.7
not a prefix
2001:db8::1/129
10.0.0.1/8
";

    fn ip(s: &str) -> Ip {
        mpscan_schema::row_ref::parse_ip(s.as_bytes()).unwrap()
    }

    #[test]
    fn list_parses_and_covers_exactly_its_prefixes() {
        let l = AliasedList::parse(LIST.as_bytes());
        assert_eq!((l.prefixes, l.skipped), (5, 3));
        assert_eq!(l.skip_examples[0], "line 7: expected one prefix, got \"not a prefix\"");
        assert_eq!(l.skip_examples[1], "line 8: bad prefix length \"129\"");
        assert!(l.skip_examples[2].starts_with("line 9: 10.0.0.1/8 has host bits set"), "{:?}", l.skip_examples);
        // The /64 inside the /48 merged into it.
        assert_eq!(l.v6.len(), 2);
        for (a, want) in [
            ("2001:db8:a::", true),
            ("2001:db8:a:ffff:ffff:ffff:ffff:ffff", true),
            ("2001:db8:b::", false),
            ("2001:db8:b:1::99", true),
            ("2001:db8:b:2::", false),
            ("2001:db8:9:ffff:ffff:ffff:ffff:ffff", false),
            ("192.0.2.0", true),
            ("192.0.2.255", true),
            ("192.0.3.0", false),
            ("198.51.100.7", true),
            ("198.51.100.8", false),
            ("::", false),
        ] {
            assert_eq!(l.contains(ip(a)), want, "{a}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("aliased.txt");
        std::fs::write(&p, "# only comments\nfoo/12\n2001:db8::/64 2001:db8:1::/64\n").unwrap();
        let e = AliasedList::read(&p).unwrap_err().to_string();
        assert!(e.contains("aliased.txt: no usable prefix") && e.contains("line 2: bad address \"foo\""), "{e}");
        assert!(e.contains(FIX), "{e}");
        std::fs::write(&p, "::/0\n").unwrap();
        let l = AliasedList::read(&p).unwrap();
        assert!(l.contains(ip("ffff::1")) && !l.contains(ip("1.2.3.4")));
        assert!(AliasedList::read(&dir.path().join("missing")).unwrap_err().to_string().contains("cannot read"));
    }

    use crate::summary::tests::{agg_of_csv, HEADER, SMALL};
    use crate::summary::{headline, tables, Options};

    /// One row of a result CSV with the answer fields that matter here.
    fn row(
        ip: &str,
        port: u16,
        probe: &str,
        class: &str,
        mpc: (&str, &str),
        options: &str,
        (ttl, win): (u8, u16),
    ) -> String {
        format!("{ip},{port},{probe},{class},{ip},{},{},,{options},false,false,{ttl},{win},t\n", mpc.0, mpc.1)
    }

    const LINUX: &str = "020405b40402080a0000000100000002010303071e0c0101aabbccddeeff0011";

    /// A planted aliased /64 (one Linux MPTCP host answering every address), a /64 of varied
    /// servers, a /64 with only two answers, a /64 whose one /96 agrees, and a /64 where one
    /// answer's MP_CAPABLE flags differ.
    fn planted() -> String {
        let mut s = String::new();
        for i in 1..=6 {
            s += &row(&format!("2001:db8:aa::{i:x}"), 443, "v1", "mptcp", ("1", "0x01"), LINUX, (50, 65160));
        }
        // The same /64 on port 80: plain TCP everywhere, also identical.
        for i in 1..=3 {
            s += &row(&format!("2001:db8:aa::{i:x}"), 80, "v1", "tcp", ("", ""), "020405b4", (50, 65160));
        }
        for (i, (class, opts, win)) in
            [("tcp", "020405b4", 29200), ("tcp", "020405b4", 65535), ("closed", "", 0), ("mptcp", LINUX, 65160)]
                .iter()
                .enumerate()
        {
            let mpc = if *class == "mptcp" { ("1", "0x01") } else { ("", "") };
            s += &row(&format!("2001:db8:bb::{:x}", i + 1), 443, "v1", class, mpc, opts, (60, *win));
        }
        for i in 1..=2 {
            s += &row(&format!("2001:db8:dd::{i:x}"), 443, "v1", "tcp", ("", ""), "020405b4", (60, 8192));
        }
        for i in 1..=3 {
            s += &row(&format!("2001:db8:cc::1:0:{i:x}"), 443, "v1", "tcp", ("", ""), "", (250, 4128));
        }
        s += &row("2001:db8:cc::9", 443, "v1", "tcp", ("", ""), "020405b4", (60, 8192));
        for (i, f) in ["0x01", "0x01", "0x21"].iter().enumerate() {
            s += &row(&format!("2001:db8:ee::{:x}", i + 1), 443, "v1", "mptcp", ("1", f), LINUX, (50, 65160));
        }
        // IPv4 rows never enter the detector.
        for i in 1..=5 {
            s += &row(&format!("192.0.2.{i}"), 443, "v1", "tcp", ("", ""), "020405b4", (60, 8192));
        }
        s
    }

    fn flagged_of(a: &crate::summary::Aggregate) -> Vec<(String, u16, u64, Class)> {
        let d = a.stacks.detect.as_ref().unwrap();
        d.flagged().0.into_iter().map(|f| (f.prefix, f.port, f.rows, f.sig.class)).collect()
    }

    #[test]
    fn detection_flags_the_planted_prefix_only() {
        let text = format!("{HEADER}\n{}", planted());
        let a = agg_of_csv(&text, &Options::default());
        assert_eq!(
            flagged_of(&a),
            vec![
                ("2001:db8:aa::/64".to_string(), 443, 6, Class::Mptcp),
                ("2001:db8:aa::/64".to_string(), 80, 3, Class::Tcp),
                ("2001:db8:cc::1:0:0/96".to_string(), 443, 3, Class::Tcp),
            ]
        );
        let d = a.stacks.detect.as_ref().unwrap();
        let (v, candidates, rows) = d.flagged();
        // /64s with 3 or more answers: aa (twice: two ports), bb, cc, ee.
        assert_eq!((candidates, rows), (5, 12));
        assert_eq!(behaviour(&v[0].sig), "v1 0x01 key");
        assert_eq!(v[0].sig.key.ja4ts(), "65160_2-4-8-1-3-30_1460_7");
        assert_eq!(behaviour(&v[1].sig), "-");
        let t = flagged_table(d, 10);
        assert_eq!(t.rows.len(), 3);
        assert!(t.note.as_ref().unwrap().contains("at least 3 answered addresses"), "{:?}", t.note);
        // K = 7: nothing has that many; K = 2 adds the /64 with two answers.
        let a7 = agg_of_csv(&text, &Options { alias_min: 7, ..Options::default() });
        assert!(flagged_of(&a7).is_empty());
        let a2 = agg_of_csv(&text, &Options { alias_min: 2, ..Options::default() });
        assert!(flagged_of(&a2).iter().any(|f| f.0 == "2001:db8:dd::/64"));
        // One answer is never evidence: K = 1 acts as 2.
        assert_eq!(Detector::new(1).min_rows, 2);
        // Off: no detector, no table.
        let off = agg_of_csv(&text, &Options { alias_min: 0, ..Options::default() });
        assert!(off.stacks.detect.is_none());
        assert!(!tables(&off, None, &Options::default()).iter().any(|t| t.title.starts_with("Likely aliased")));
        assert!(tables(&a, None, &Options::default()).iter().any(|t| t.title.starts_with("Likely aliased")));
    }

    #[test]
    fn detection_merges_like_a_single_pass() {
        let body = planted();
        let lines: Vec<&str> = body.lines().collect();
        let whole = agg_of_csv(&format!("{HEADER}\n{body}"), &Options::default());
        // Split so that the aliased /64 and the mixed /64 are cut across two workers.
        for cut in [3, 8, 12, 20] {
            let mut a = agg_of_csv(&format!("{HEADER}\n{}\n", lines[..cut].join("\n")), &Options::default());
            a.merge(agg_of_csv(&format!("{HEADER}\n{}\n", lines[cut..].join("\n")), &Options::default()));
            assert_eq!(flagged_of(&a), flagged_of(&whole), "cut {cut}");
        }
    }

    #[test]
    fn known_aliases_are_set_apart() {
        let list = Arc::new(AliasedList::parse(b"17.1.0.0/16\n2001:db8::/48\n"));
        let opts = Options { aliased: Some(list), ..Options::default() };
        let a = agg_of_csv(&format!("{HEADER}\n{SMALL}"), &opts);
        let s = a.set_apart.as_ref().unwrap();
        assert_eq!(s.counts[ProbeVersion::V1 as usize][Class::Mptcp as usize], 4);
        assert_eq!(s.counts[ProbeVersion::V0 as usize][Class::Mptcp as usize], 1);
        assert_eq!(s.total(), 5);
        assert_eq!(a.rows, 10);
        let h = headline(&a, None, Some(443));
        assert_eq!(h.int("of which valid MPTCP", "probe v1"), Some(0));
        assert_eq!(h.int("with MP_CAPABLE", "probe v1"), Some(3));
        assert_eq!(a.stacks.sorted(Class::Mptcp, None).1, 0, "left out of the fingerprints too");
        let ts = tables(&a, None, &opts);
        let head = ts.iter().find(|t| t.title == "Headline: port 443").unwrap();
        assert!(head.note.as_ref().unwrap().contains("5 rows in known aliased prefixes set apart"), "{:?}", head.note);
        let t = ts.iter().find(|t| t.title.starts_with("Rows in known aliased")).unwrap();
        assert_eq!(t.int("mptcp", "probe v1"), Some(4));
        assert_eq!(t.int("mptcp", "probe v0"), Some(1));
        assert!(t.note.as_ref().unwrap().starts_with("5 rows inside the 2 prefixes of"), "{:?}", t.note);
        // The scanner counted them: the metadata check adds them back.
        let whole = agg_of_csv(&format!("{HEADER}\n{SMALL}"), &Options::default());
        let mut meta = crate::metadata::ScanMeta::default();
        for p in ProbeVersion::ALL {
            for c in Class::ALL {
                let n = whole.counts(None, p)[c as usize];
                if n > 0 {
                    meta.classes.insert((p.label().into(), c.label().into()), n);
                }
            }
        }
        assert_eq!(crate::summary::check_against_metadata(&a, &meta), Vec::<String>::new());
        // Merged workers add up.
        let lines: Vec<&str> = SMALL.lines().collect();
        let mut m = agg_of_csv(&format!("{HEADER}\n{}\n", lines[..2].join("\n")), &opts);
        m.merge(agg_of_csv(&format!("{HEADER}\n{}\n", lines[2..].join("\n")), &opts));
        assert_eq!(m.set_apart.unwrap().counts, s.counts);
    }
}
