//! Server-stack fingerprints of every SYN-ACK class (mptcp, echo, malformed, tcp), in the shape of
//! FoxIO's JA4TS: `window_kinds_mss_wscale` (`64240_2-4-8-1-3_1460_7`), option kinds in wire order
//! joined by `-`, `00` for an absent MSS, window scale or option list, plus the initial-TTL bucket.
//! Everything comes from existing result columns (options hex, window, ttl); docs/FINGERPRINTS.md
//! lists what the lab's Linux servers and, as far as it is known, Apple's servers look like.
//!
//! Cost: this runs for every SYN-ACK row of a scan (most of them plain TCP). The per-row path
//! ([`compact_of`]) walks the hex text once, decoding only the kind and length bytes and the MSS
//! and window-scale values, and packs the fingerprint into one `u128` counted in a map with a
//! multiply-rotate hasher: no allocation, no struct per row. The full [`StackKey`] is built once
//! per distinct fingerprint, strings only when the tables are rendered. BENCHMARKS.md ("Stack
//! fingerprints and alias detection") has the measured instructions per row.
//!
//! The existing echo fingerprint (`crate::fingerprint`, p0f-style with mirrored / TS echoed) stays
//! as it is; this key sits beside it and covers every class.

use crate::aliased::Detector;
use crate::fingerprint::ttl_bucket;
use crate::summary::{Aggregate, FpStat, Options};
use crate::table::{thousands, Cell, Table};
use mpscan_schema::{Class, Ip, ProbeVersion, RowRef};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

/// Most option kinds one TCP header can hold: 40 option bytes, one per NOP or EOL at most.
pub const MAX_KINDS: usize = 40;

/// How the walk over an option list ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OptEnd {
    /// Every byte was read as an option.
    Complete,
    /// An option ran past the end, had a length under 2, or the list was longer than 40 bytes.
    Truncated,
    /// The options column held text that is not hex (never written by mpscan; counted, not fatal).
    NotHex,
}

/// JA4TS-shaped fingerprint of one answer plus its initial-TTL bucket. Fixed size and `Copy` so
/// the per-row path never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StackKey {
    /// Initial TTL guess (32, 64, 128 or 255; see `fingerprint::ttl_bucket`).
    pub ttl_bucket: u8,
    /// TCP window of the answer.
    pub window: u16,
    /// MSS option value, if present.
    pub mss: Option<u16>,
    /// Window-scale shift, if present.
    pub wscale: Option<u8>,
    nkinds: u8,
    kinds: [u8; MAX_KINDS],
    /// How the option walk ended.
    pub end: OptEnd,
}

/// One answer's options walked once: its stack key and the MPTCP details the alias detector
/// compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// The fingerprint.
    pub key: StackKey,
    /// Length of the first MPTCP option (kind 30), 0 when there is none: 12 means it carried a
    /// key (a SYN-ACK's MP_CAPABLE), 4 a key-less one (a v1 SYN's, echoed).
    pub mp_len: u8,
}

/// Value of each hex digit byte, `0xff` for a byte that is not one (a table: no branches).
const HEX: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Byte `i` of a hex string, or a value above 255 when either digit is not hex. The walk asks
/// only for `i` below half the text's length, so both digits exist.
#[inline(always)]
fn hex_byte(h: &[u8], i: usize) -> u16 {
    let (a, b) = (u16::from(HEX[h[2 * i] as usize]), u16::from(HEX[h[2 * i + 1] as usize]));
    a << 4 | b | (b & 0xf0) << 4
}

impl StackKey {
    /// The option kinds in wire order (NOP 1 and EOL 0 included, as JA4TScan lists them).
    pub fn kinds(&self) -> &[u8] {
        &self.kinds[..self.nkinds as usize]
    }

    /// The JA4TS string: `window_kinds_mss_wscale`, `00` for what is absent; a truncated list
    /// ends in `-trunc`, text that is not hex in `-badhex`.
    pub fn ja4ts(&self) -> String {
        let mut kinds: Vec<String> = self.kinds().iter().map(|k| k.to_string()).collect();
        match self.end {
            OptEnd::Complete => {}
            OptEnd::Truncated => kinds.push("trunc".into()),
            OptEnd::NotHex => kinds.push("badhex".into()),
        }
        let kinds = if kinds.is_empty() { "00".to_string() } else { kinds.join("-") };
        let mss = self.mss.map_or("00".to_string(), |m| m.to_string());
        let ws = self.wscale.map_or("00".to_string(), |w| w.to_string());
        format!("{}_{}_{}_{}", self.window, kinds, mss, ws)
    }

    /// Which family of stacks writes its options in this order (a hint, from the order alone,
    /// see docs/FINGERPRINTS.md): `Linux` for the orders Linux's `tcp_options_write` produces
    /// (MSS, then SACK-permitted / timestamps, then NOP + window scale), `BSD-like` for MSS, NOP,
    /// window scale first (FreeBSD and Apple's XNU; Windows writes the same start), else `other`.
    /// A trailing MPTCP option is ignored.
    pub fn order(&self) -> &'static str {
        let mut k = self.kinds();
        if let Some((30, rest)) = k.split_last() {
            k = rest;
        }
        const LINUX: [&[u8]; 6] =
            [&[2, 4, 8, 1, 3], &[2, 1, 1, 8, 1, 3], &[2, 1, 1, 4, 1, 3], &[2, 4, 8], &[2, 1, 1, 8], &[2, 1, 1, 4]];
        if LINUX.contains(&k) {
            "Linux"
        } else if k.starts_with(&[2, 1, 3, 1, 1]) {
            "BSD-like"
        } else {
            "other"
        }
    }
}

/// 4-bit code of an option kind in [`StackKey::compact`]: kinds 0-8 as themselves, MPTCP (30),
/// TCP Fast Open (34), MD5 (19), user timeout (28) and TCP-AO (29); 15 for any other kind.
const CODE: [u8; 256] = {
    let mut t = [15u8; 256];
    let mut i = 0;
    while i <= 8 {
        t[i] = i as u8;
        i += 1;
    }
    t[30] = 9;
    t[34] = 10;
    t[19] = 11;
    t[28] = 12;
    t[29] = 13;
    t
};

/// Packs option kinds as they are walked (see [`StackKey::compact`]).
#[derive(Clone, Copy)]
struct Packer {
    packed: u64,
    exact: bool,
    digest: FxHasher,
    n: u32,
}

impl Packer {
    fn new() -> Packer {
        Packer { packed: 0, exact: true, digest: FxHasher::default(), n: 0 }
    }

    #[inline(always)]
    fn push(&mut self, kind: u8) {
        let c = CODE[kind as usize];
        self.exact &= c != 15 && self.n < 16;
        self.packed |= u64::from(c) << ((4 * self.n) & 63);
        self.digest.add(u64::from(kind));
        self.n += 1;
    }

    /// The 128-bit key of a walked list with the other fields of the fingerprint.
    #[inline(always)]
    fn finish(&self, end: OptEnd, ttl_bucket: u8, window: u16, mss: Option<u16>, wscale: Option<u8>) -> u128 {
        let ttl = match ttl_bucket {
            32 => 0u128,
            64 => 1,
            128 => 2,
            _ => 3,
        };
        u128::from(if self.exact { self.packed } else { self.digest.0 })
            | u128::from(!self.exact) << 64
            | u128::from(self.n) << 65
            | (end as u128) << 71
            | ttl << 73
            | u128::from(window) << 75
            | u128::from(mss.is_some()) << 91
            | u128::from(mss.unwrap_or(0)) << 92
            | u128::from(wscale.is_some()) << 108
            | u128::from(wscale.unwrap_or(0)) << 109
    }
}

impl StackKey {
    /// The key in 128 bits, for the per-row maps: hashing and comparing one `u128` costs a
    /// fraction of the 50-byte struct. Bits 0-63 hold the kinds as 4-bit codes, exact for up to
    /// 16 kinds of the common ones; any other list (rare: more than 16 options or an unusual
    /// kind) is keyed by a 64-bit digest of its kinds instead, flagged by bit 64, so two such
    /// lists collide only with 64-bit-hash odds. Above: kind count, end, TTL bucket, window, MSS,
    /// window scale, each with its presence bit. Bits 120-127 are free for the caller.
    /// [`compact_of`] computes the same from the hex text without building the struct.
    pub fn compact(&self) -> u128 {
        let mut p = Packer::new();
        for k in self.kinds() {
            p.push(*k);
        }
        p.finish(self.end, self.ttl_bucket, self.window, self.mss, self.wscale)
    }
}

impl fmt::Display for StackKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ttl<={}", self.ja4ts(), self.ttl_bucket)
    }
}

/// What one walk over an option list found.
struct Walk {
    packer: Packer,
    end: OptEnd,
    mss: Option<u16>,
    wscale: Option<u8>,
    mp_len: u8,
}

/// The one walk over an options hex text, shared by [`parse`] (which also records the kinds) and
/// [`compact_of`] (which only packs them); it decodes only the kind, length, MSS and window-scale
/// bytes (decoding the whole text first measured slower). Never fails and never panics: a list
/// that runs past its end or is not hex is marked as such (`OptEnd`).
#[inline(always)]
fn walk(hex: &[u8], mut kinds: Option<&mut [u8; MAX_KINDS]>) -> Walk {
    let mut w = Walk { packer: Packer::new(), end: OptEnd::Complete, mss: None, wscale: None, mp_len: 0 };
    let n = hex.len() / 2;
    let mut i = 0;
    while i < n {
        let kind = hex_byte(hex, i);
        if kind > 255 {
            w.end = OptEnd::NotHex;
            break;
        }
        let kind = kind as u8;
        let nk = w.packer.n as usize;
        if nk == MAX_KINDS {
            w.end = OptEnd::Truncated;
            break;
        }
        if let Some(k) = kinds.as_deref_mut() {
            k[nk] = kind;
        }
        w.packer.push(kind);
        if kind <= 1 {
            i += 1;
            continue;
        }
        if i + 1 >= n {
            w.end = OptEnd::Truncated;
            break;
        }
        let len = hex_byte(hex, i + 1);
        if len > 255 {
            w.end = OptEnd::NotHex;
            break;
        }
        if len < 2 || i + len as usize > n {
            w.end = OptEnd::Truncated;
            break;
        }
        // In bounds: i + len <= n, so bytes i + 2 and i + 3 of a 4-byte option exist.
        let value = match (kind, len) {
            (2, 4) => {
                let (h, l) = (hex_byte(hex, i + 2), hex_byte(hex, i + 3));
                if h | l <= 255 {
                    w.mss = Some(h << 8 | l);
                }
                h | l
            }
            (3, 3) => {
                let v = hex_byte(hex, i + 2);
                if v <= 255 {
                    w.wscale = Some(v as u8);
                }
                v
            }
            (30, _) if w.mp_len == 0 => {
                w.mp_len = len as u8;
                0
            }
            _ => 0,
        };
        if value > 255 {
            w.end = OptEnd::NotHex;
            break;
        }
        i += len as usize;
    }
    if !hex.len().is_multiple_of(2) {
        w.end = OptEnd::NotHex;
    }
    w
}

/// Fingerprint an answer from its TTL, window and options hex (the whole key, for tables).
pub fn parse(ttl: u8, window: u16, hex: &[u8]) -> Parsed {
    let mut kinds = [0; MAX_KINDS];
    let w = walk(hex, Some(&mut kinds));
    let key = StackKey {
        ttl_bucket: ttl_bucket(ttl),
        window,
        mss: w.mss,
        wscale: w.wscale,
        nkinds: w.packer.n as u8,
        kinds,
        end: w.end,
    };
    Parsed { key, mp_len: w.mp_len }
}

/// The per-row path: the fingerprint's [`StackKey::compact`] and the MPTCP option length, from
/// one walk that decodes only kind, length, MSS and window-scale bytes and builds no struct.
#[inline]
pub fn compact_of(ttl: u8, window: u16, hex: &[u8]) -> (u128, u8) {
    let w = walk(hex, None);
    (w.packer.finish(w.end, ttl_bucket(ttl), window, w.mss, w.wscale), w.mp_len)
}

/// A multiply-rotate hasher (the one rustc uses internally): keys here are small fixed structs
/// built from our own parse, so SipHash's flood resistance buys nothing and costs per row.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut c = bytes.chunks_exact(8);
        for w in &mut c {
            self.add(u64::from_le_bytes(w.try_into().unwrap_or([0; 8])));
        }
        for b in c.remainder() {
            self.add(*b as u64);
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64)
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(i as u64)
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64)
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i)
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64)
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64)
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// Hash maps of the per-row paths of this module and `crate::aliased`.
pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Whether a class is a SYN-ACK (the classes that get a stack fingerprint).
#[inline]
pub fn is_syn_ack(c: Class) -> bool {
    matches!(c, Class::Mptcp | Class::Echo | Class::Malformed | Class::Tcp)
}

/// One counted fingerprint of one probe version and class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fp {
    /// Probe version.
    pub probe: ProbeVersion,
    /// Class of the answers.
    pub class: Class,
    /// The fingerprint.
    pub key: StackKey,
    /// Answers and the lowest responder.
    pub stat: FpStat,
}

/// What one pass accumulates: answers per (probe, class, fingerprint), and the IPv6 alias
/// detector when it is on. Size grows with distinct fingerprints (and answered IPv6 prefixes),
/// never with rows.
#[derive(Debug, Clone, Default)]
pub struct Stacks {
    /// Answers and lowest responder per (probe version, class, fingerprint), SYN-ACK classes only,
    /// keyed by the fingerprint's `compact()` with probe and class in bits 120-127.
    pub by_key: FxMap<u128, Fp>,
    /// Likely-aliased prefix detection over IPv6 answers (`None` = off).
    pub detect: Option<Detector>,
}

impl Stacks {
    /// Empty state; `alias_min` rows agreeing flag a prefix (0 = detection off).
    pub fn new(alias_min: u32) -> Stacks {
        Stacks { by_key: FxMap::default(), detect: (alias_min > 0).then(|| Detector::new(alias_min)) }
    }

    /// Count one row (per-row path: one walk over the options, one map update).
    #[inline]
    pub fn add(&mut self, r: &RowRef) {
        let syn_ack = is_syn_ack(r.class);
        let v6 = matches!(r.ip, Ip::V6(_)) && self.detect.is_some() && (syn_ack || r.class == Class::Closed);
        if !syn_ack && !v6 {
            return;
        }
        let (c, mp_len) = compact_of(r.ttl, r.window, r.options);
        if syn_ack {
            let k = c | (r.probe as u128) << 120 | (r.class as u128) << 121;
            match self.by_key.entry(k) {
                Entry::Occupied(mut e) => {
                    let s = &mut e.get_mut().stat;
                    s.count += 1;
                    if r.ip < s.example {
                        s.example = r.ip;
                    }
                }
                Entry::Vacant(v) => {
                    let key = parse(r.ttl, r.window, r.options).key;
                    v.insert(Fp { probe: r.probe, class: r.class, key, stat: FpStat { count: 1, example: r.ip } });
                }
            }
        }
        if v6 {
            if let (Some(d), Ip::V6(a)) = (&mut self.detect, r.ip) {
                d.add(a, r, c, mp_len);
            }
        }
    }

    /// Fold another worker's state into this one.
    pub fn merge(&mut self, o: Stacks) {
        for (k, s) in o.by_key {
            match self.by_key.entry(k) {
                Entry::Occupied(mut e) => {
                    let e = &mut e.get_mut().stat;
                    e.count += s.stat.count;
                    e.example = e.example.min(s.stat.example);
                }
                Entry::Vacant(v) => {
                    v.insert(s);
                }
            }
        }
        match (&mut self.detect, o.detect) {
            (Some(a), Some(b)) => a.merge(b),
            (None, Some(b)) => self.detect = Some(b),
            _ => {}
        }
    }

    /// Fingerprints of one class (any probe when `probe` is `None`), most answers first, ties by
    /// key; with the class's total.
    pub fn sorted(&self, class: Class, probe: Option<ProbeVersion>) -> (Vec<(StackKey, FpStat)>, u64) {
        let mut m: FxMap<StackKey, FpStat> = FxMap::default();
        for f in self.by_key.values() {
            if f.class == class && probe.is_none_or(|q| q == f.probe) {
                let (k, s) = (&f.key, &f.stat);
                let e = m.entry(*k).or_insert(FpStat { count: 0, example: s.example });
                e.count += s.count;
                e.example = e.example.min(s.example);
            }
        }
        let total = m.values().map(|s| s.count).sum();
        let mut v: Vec<_> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(&b.0)));
        (v, total)
    }
}

/// Push the top `top` (0 = all) fingerprints of `v` as rows labelled `label`; returns how many.
fn push_top(t: &mut Table, label: &str, v: &[(StackKey, FpStat)], total: u64, top: usize) -> usize {
    let shown = if top == 0 { v.len() } else { top.min(v.len()) };
    for (i, (k, st)) in v.iter().take(shown).enumerate() {
        t.push(vec![
            Cell::text(label),
            Cell::text((i + 1).to_string()),
            Cell::text(k.ja4ts()),
            Cell::text(k.ttl_bucket.to_string()),
            Cell::text(k.order()),
            Cell::Int(st.count),
            Cell::pct(st.count, total),
            Cell::text(st.example.to_string()),
        ]);
    }
    shown
}

/// Real MPTCP servers by fingerprint, per probe version, with each one's share of the probe's
/// servers and the option-order hint that sets Linux apart from BSD-like (Apple) stacks.
pub fn mptcp_servers_table(s: &Stacks, top: usize) -> Table {
    let mut t = Table::new(
        "MPTCP servers by stack fingerprint (JA4TS)",
        &["probe", "#", "JA4TS", "initial TTL", "option order", "servers", "% of probe", "example"],
    );
    let mut notes = vec![];
    for p in ProbeVersion::ALL {
        let (v, total) = s.sorted(Class::Mptcp, Some(p));
        if total == 0 {
            continue;
        }
        let shown = push_top(&mut t, p.label(), &v, total, top);
        notes.push(format!(
            "probe {}: {} servers, {} distinct fingerprints, {} shown",
            p.label(),
            thousands(total),
            v.len(),
            shown
        ));
    }
    notes.push(
        "JA4TS = window_option-kinds_MSS_window-scale (00: absent); option order is a hint (docs/FINGERPRINTS.md)"
            .into(),
    );
    t.with_note(notes.join("; "))
}

/// The top fingerprints of every SYN-ACK class (both probe versions together), compactly.
pub fn per_class_table(s: &Stacks, top: usize) -> Table {
    let mut t = Table::new(
        "Stack fingerprints (JA4TS) per SYN-ACK class",
        &["class", "#", "JA4TS", "initial TTL", "option order", "answers", "% of class", "example"],
    );
    let mut notes = vec![];
    for c in [Class::Mptcp, Class::Echo, Class::Malformed, Class::Tcp] {
        let (v, total) = s.sorted(c, None);
        if total == 0 {
            continue;
        }
        let shown = push_top(&mut t, c.label(), &v, total, top);
        let covered: u64 = v.iter().take(shown).map(|x| x.1.count).sum();
        notes.push(format!(
            "{}: {} answers, {} fingerprints, top {} cover {:.2}%",
            c.label(),
            thousands(total),
            v.len(),
            shown,
            100.0 * covered as f64 / total as f64
        ));
    }
    t.with_note(notes.join("; "))
}

/// The tables of this module and of `crate::aliased`, appended to summary's (the one hook in
/// `summary::tables`): MPTCP servers by fingerprint, fingerprints per class, likely aliased
/// prefixes when IPv6 rows were answered, and the rows `--aliased` set apart (also named in the
/// headline notes, since the headline leaves them out).
pub fn extend_tables(agg: &Aggregate, opts: &Options, out: &mut Vec<Table>) {
    out.push(mptcp_servers_table(&agg.stacks, opts.top));
    out.push(per_class_table(&agg.stacks, opts.top));
    if let Some(d) = agg.stacks.detect.as_ref().filter(|d| !d.is_empty()) {
        out.push(crate::aliased::flagged_table(d, opts.top));
    }
    if let Some(s) = &agg.set_apart {
        let line = format!("{} rows in known aliased prefixes set apart (--aliased)", thousands(s.total()));
        for t in out.iter_mut().filter(|t| t.title.starts_with("Headline")) {
            t.note = Some(match t.note.take() {
                Some(n) => format!("{n}; {line}"),
                None => line.clone(),
            });
        }
        out.push(crate::aliased::set_apart_table(s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Linux 6.x SYN-ACK to a v1 probe, byte for byte: MSS 1460, SACK permitted, timestamps,
    /// NOP, window scale 7, MP_CAPABLE v1 with flags 0x01 and a 64-bit key.
    const LINUX_V1: &[u8] = b"020405b40402080a0000000100000002010303071e0c0101aabbccddeeff0011";

    /// Hex with spaces between options for reading, as bytes without them.
    fn h(spaced: &str) -> Vec<u8> {
        spaced.replace(' ', "").into_bytes()
    }

    fn p(hex: &[u8]) -> Parsed {
        parse(57, 65160, hex)
    }

    #[test]
    fn linux_and_mptcp_v1_syn_acks() {
        let x = p(LINUX_V1);
        assert_eq!(x.key.kinds(), [2, 4, 8, 1, 3, 30]);
        assert_eq!((x.key.mss, x.key.wscale, x.key.end, x.mp_len), (Some(1460), Some(7), OptEnd::Complete, 12));
        assert_eq!(x.key.ja4ts(), "65160_2-4-8-1-3-30_1460_7");
        assert_eq!(x.key.ttl_bucket, 64);
        assert_eq!(x.key.order(), "Linux");
        assert_eq!(x.key.to_string(), "65160_2-4-8-1-3-30_1460_7 ttl<=64");
        // The same stack without MPTCP (a plain Linux SYN-ACK): JA4TScan's "AWS Linux 2" shape.
        let plain = parse(60, 62727, b"020423010402080a000000010000000201030307");
        assert_eq!(plain.key.ja4ts(), "62727_2-4-8-1-3_8961_7");
        assert_eq!(plain.mp_len, 0);
        // Linux without timestamps: mss, nop, nop, sackOK, nop, ws, then MP_CAPABLE.
        let nots = p(&h("020405b40101040201030307 1e0c0101aabbccddeeff0011"));
        assert_eq!(nots.key.kinds(), [2, 1, 1, 4, 1, 3, 30]);
        assert_eq!(nots.key.order(), "Linux");
    }

    #[test]
    fn bsd_order_and_apple_siri_2014() {
        // macOS / iPhone SYN-ACK as JA4TScan lists it: mss, nop, ws, nop, nop, ts, sackOK, eol, eol.
        let mac = parse(64, 65535, &h("020405b4010303060101080a00000001000000020402 0000"));
        assert_eq!(mac.key.ja4ts(), "65535_2-1-3-1-1-8-4-0-0_1460_6");
        assert_eq!(mac.key.order(), "BSD-like");
        // Siri's server in 2014 (docs/FINGERPRINTS.md): mss 1460, nop, ws 4, nop, nop, sackOK,
        // MP_CAPABLE v0 with a key, TTL 244, window 8190.
        let siri = parse(244, 8190, &h("020405b4010303040101040 21e0c0001d7b705e4d86c1a66"));
        assert_eq!(siri.key.ja4ts(), "8190_2-1-3-1-1-4-30_1460_4");
        assert_eq!((siri.key.ttl_bucket, siri.mp_len, siri.key.order()), (255, 12, "BSD-like"));
    }

    #[test]
    fn empty_odd_and_truncated_options_never_panic() {
        assert_eq!(p(b"").key.ja4ts(), "65160_00_00_00");
        assert_eq!(p(b"").mp_len, 0);
        // Echo of a v1 probe's key-less MP_CAPABLE.
        let e = p(b"020405b41e040101");
        assert_eq!((e.key.ja4ts(), e.mp_len), ("65160_2-30_1460_00".to_string(), 4));
        for (hex, want) in [
            (&b"02"[..], "65160_2-trunc_00_00"),
            (b"0200", "65160_2-trunc_00_00"),
            (b"0201", "65160_2-trunc_00_00"),
            (b"020405", "65160_2-trunc_00_00"),
            (b"2205aabb", "65160_34-trunc_00_00"),
            (b"2203aabb", "65160_34-187-trunc_00_00"),
            (b"0303", "65160_3-trunc_00_00"),
            (b"0g", "65160_badhex_00_00"),
            (b"0204zzzz", "65160_2-badhex_00_00"),
            (b"020", "65160_2-badhex_00_00"),
            (b"1e", "65160_30-trunc_00_00"),
            // MSS with a wrong length: kind kept, value not read.
            (b"0203aa", "65160_2_00_00"),
        ] {
            assert_eq!(p(hex).key.ja4ts(), want, "{}", String::from_utf8_lossy(hex));
        }
        // 41 NOPs: more kinds than a header holds.
        let many = "01".repeat(41);
        let k = p(many.as_bytes()).key;
        assert_eq!((k.kinds().len(), k.end), (MAX_KINDS, OptEnd::Truncated));
        // Every byte string of up to 3 bytes walks without panicking.
        for a in 0..=255u8 {
            for b in [0u8, 1, 2, 3, 4, 30, 255] {
                let h = format!("{a:02x}{b:02x}ff");
                let _ = p(h.as_bytes());
            }
        }
    }

    #[test]
    fn fx_hasher_separates_keys() {
        use std::hash::BuildHasher;
        let b = BuildHasherDefault::<FxHasher>::default();
        let h = |k: &StackKey| b.hash_one(k.compact());
        let a = p(LINUX_V1).key;
        let mut c = a;
        c.window = 65161;
        assert_ne!(h(&a), h(&c));
        assert_eq!(h(&a), h(&p(LINUX_V1).key));
    }

    /// Different fingerprints never share a compact key: every field moves it, lists of common
    /// kinds are packed exactly, and lists with rare kinds or more than 16 kinds are digested.
    #[test]
    fn compact_keys_are_distinct() {
        let mut keys = vec![];
        for hex in [
            &b""[..],
            b"00",
            b"0000",
            b"01",
            b"0101",
            b"020405b4",
            b"020405b5",
            b"020405b40303",
            b"02040000",
            b"0204000001030300",
            b"0204000001030301",
            b"1e0c0101aabbccddeeff0011",
            LINUX_V1,
            b"2203aabb",
            b"2205aabb",
            b"fe03aa",
            b"fd03aa",
            b"0g",
            b"02",
        ] {
            for (ttl, win) in [(57, 65160), (120, 65160), (57, 65161)] {
                keys.push(parse(ttl, win, hex).key);
            }
        }
        // 17 and 18 NOPs, 16 NOPs then a rare kind: past the packed form.
        for n in [16, 17, 18] {
            keys.push(p("01".repeat(n).as_bytes()).key);
        }
        keys.push(p(format!("{}fe02", "01".repeat(15)).as_bytes()).key);
        keys.sort();
        keys.dedup();
        let mut compact: Vec<u128> = keys.iter().map(|k| k.compact()).collect();
        assert!(compact.iter().all(|c| c >> 120 == 0), "bits 120-127 stay free");
        compact.sort();
        compact.dedup();
        assert_eq!(compact.len(), keys.len());
        assert_eq!(p(LINUX_V1).key.compact() >> 64 & 1, 0, "exact");
        // The per-row path computes the same key and option length as the full parse, on
        // pseudo-random hex (valid option bytes, junk, odd lengths) as on the lists above.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for round in 0..20_000u32 {
            let mut hex = Vec::new();
            for _ in 0..round % 45 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let b = [0u8, 1, 2, 3, 4, 8, 30, 10, 12, 3, 4, (x >> 40) as u8][(x % 12) as usize];
                hex.extend_from_slice(format!("{b:02x}").as_bytes());
            }
            if round % 97 == 0 {
                hex.push(b'z');
            }
            if round % 89 == 0 {
                hex.push(b'0');
            }
            let (ttl, win) = ((x >> 8) as u8, (x >> 16) as u16);
            let full = parse(ttl, win, &hex);
            assert_eq!(
                compact_of(ttl, win, &hex),
                (full.key.compact(), full.mp_len),
                "{}",
                String::from_utf8_lossy(&hex)
            );
        }
        assert_eq!(p("01".repeat(17).as_bytes()).key.compact() >> 64 & 1, 1, "digested");
    }

    /// The hand-made scan of the summary tests: the MPTCP-servers table, exactly.
    #[test]
    fn mptcp_servers_by_fingerprint_on_a_known_scan() {
        use crate::summary::tests::{agg_of_csv, HEADER, SMALL};
        let a = agg_of_csv(&format!("{HEADER}\n{SMALL}"), &Options::default());
        let t = mptcp_servers_table(&a.stacks, 10);
        let rows: Vec<String> = t.rows.iter().map(|r| format!("{r:?}")).collect();
        assert_eq!(t.rows.len(), 4, "{rows:#?}");
        let want = [
            ("v1", "65535_2-30_1460_00", 2, (2, 4)),
            ("v1", "65535_30_00_00", 1, (1, 4)),
            ("v1", "65535_2-4-8-1-3-30_1460_7", 1, (1, 4)),
            ("v0", "65535_2-30_1460_00", 1, (1, 1)),
        ];
        for (r, (probe, ja4ts, n, (p, of))) in t.rows.iter().zip(want) {
            assert_eq!(
                (&r[0], &r[2], &r[5], &r[6]),
                (&Cell::text(probe), &Cell::text(ja4ts), &Cell::Int(n), &Cell::pct(p, of))
            );
        }
        assert_eq!((&t.rows[1][4], &t.rows[2][4]), (&Cell::text("other"), &Cell::text("Linux")));
        assert_eq!(t.rows[0][7], Cell::text("17.1.1.2"), "lowest address as example");
        let c = per_class_table(&a.stacks, 1);
        let classes: Vec<&Cell> = c.rows.iter().map(|r| &r[0]).collect();
        assert_eq!(classes, [&Cell::text("mptcp"), &Cell::text("echo"), &Cell::text("malformed"), &Cell::text("tcp")]);
        // tcp: two 10.1.2.x rows "60,8192,020405b4" and one IPv6 row without options.
        assert_eq!((&c.rows[3][2], &c.rows[3][5]), (&Cell::text("8192_2_1460_00"), &Cell::Int(2)));
        let note = c.note.unwrap();
        assert!(note.contains("tcp: 3 answers, 2 fingerprints, top 1 cover 66.67%"), "{note}");
        assert!(note.contains("echo: 4 answers, 3 fingerprints"), "{note}");
    }

    /// A synthetic scan: every SYN-ACK row is counted once under its class, real servers all
    /// carry synth's Linux option layout, and closed / unreachable rows get no fingerprint.
    #[test]
    fn synthetic_scan_counts_every_syn_ack() {
        use crate::synth::{self, SynthConfig};
        let dir = tempfile::tempdir().unwrap();
        let cfg = SynthConfig {
            rows: 60_000,
            seed: 4,
            probes: vec![ProbeVersion::V1, ProbeVersion::V0],
            ports: vec![443],
            ipv6_share: 0.02,
        };
        let csv = dir.path().join("s.csv");
        let st = synth::write_files(&cfg, &csv, None).unwrap();
        let agg = crate::cli::aggregate(&[csv], &Options::default(), 2).unwrap();
        for c in [Class::Mptcp, Class::Echo, Class::Malformed, Class::Tcp] {
            for p in ProbeVersion::ALL {
                let (_, total) = agg.stacks.sorted(c, Some(p));
                assert_eq!(total, st.classes.get(&(443, p, c)).copied().unwrap_or(0), "{c:?} {p:?}");
            }
        }
        assert!(agg.stacks.by_key.values().all(|f| is_syn_ack(f.class)));
        let (mp, total) = agg.stacks.sorted(Class::Mptcp, None);
        assert!(total > 0);
        for (k, _) in &mp {
            assert_eq!(
                (k.kinds(), k.mss, k.wscale, k.order()),
                (&[2, 4, 8, 1, 3, 30][..], Some(1460), Some(7), "Linux")
            );
            assert!([65160, 29200, 8192, 65535, 64240].contains(&k.window), "{k}");
        }
        // Five windows x three initial TTLs at most.
        assert!(mp.len() <= 15, "{}", mp.len());
        let t = mptcp_servers_table(&agg.stacks, 0);
        let sum: u64 = t.rows.iter().map(|r| if let Cell::Int(n) = r[5] { n } else { 0 }).sum();
        assert_eq!(sum, st.class(Class::Mptcp));
    }
}
