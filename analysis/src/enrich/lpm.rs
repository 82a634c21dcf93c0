//! Longest-prefix (most-specific-range) lookups for IPv4 and IPv6, shared by the origin-AS table
//! (`--pfx2as`) and the economy table (`--geo`).
//!
//! Possibly nested prefixes or address ranges are flattened once into disjoint ranges sorted by
//! start, each labelled with its most specific source range; a lookup is then one binary search.
//! For IPv4 a 65,536-entry index by /16 narrows that search to the few ranges inside the
//! address's /16, so a full routing table (about a million prefixes) or a full country database
//! costs a handful of comparisons per row. How the tables are built and what a lookup costs is in
//! BENCHMARKS.md ("Enrichment lookups").

use mpscan_schema::Ip;

/// Label id meaning "no covering range".
pub const NONE: u32 = u32::MAX;

/// Entry of the /24 table meaning "more than one range starts inside this /24": search instead.
const MIXED: u32 = u32::MAX - 1;

/// Range counts above which the IPv4 table also gets the direct /24 table: beyond this many
/// ranges (256 KiB of starts) the binary search's steps miss the cache, and one load from the
/// 64 MiB /24 table costs less (see BENCHMARKS.md, "Enrichment lookups").
const DIRECT_24_ABOVE: usize = 65_536;

/// One source range: first and last address (as u128 for both families), its label id, and the
/// input line it came from (reported when it is rejected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// First address.
    pub start: u128,
    /// Last address (inclusive).
    pub end: u128,
    /// Label id.
    pub val: u32,
    /// 1-based input line (or record number) it came from.
    pub line: u64,
}

impl Interval {
    /// The range of an IPv4 prefix (`len` <= 32, host bits clear).
    pub fn v4_prefix(addr: u32, len: u8, val: u32, line: u64) -> Interval {
        let end = addr as u128 | (u32::MAX as u128 >> len);
        Interval { start: addr as u128, end, val, line }
    }
    /// The range of an IPv6 prefix (`len` <= 128, host bits clear). A /128 is one address (a
    /// plain `>> 128` would overflow, which release builds wrap to `>> 0`: the whole space).
    pub fn v6_prefix(addr: u128, len: u8, val: u32, line: u64) -> Interval {
        let end = addr | u128::MAX.checked_shr(len as u32).unwrap_or(0);
        Interval { start: addr, end, val, line }
    }
}

/// The /24 table of disjoint sorted IPv4 ranges (the first starting at 0, as `flatten` makes
/// them): one pass over the 2^24 blocks and the ranges together.
fn direct_24(starts: &[u32], vals: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(1 << 24);
    let mut i = 0;
    for k in 0..1u32 << 24 {
        let first = k << 8;
        while i + 1 < starts.len() && starts[i + 1] <= first {
            i += 1;
        }
        let uniform = i + 1 == starts.len() || starts[i + 1] > first | 0xff;
        out.push(if uniform { vals[i] } else { MIXED });
    }
    out
}

/// Disjoint sorted ranges for both families: the lookup structure.
#[derive(Debug, Clone, Default)]
pub struct RangeTable {
    v4_starts: Vec<u32>,
    v4_vals: Vec<u32>,
    /// `v4_index[k]` = range containing address `k << 16`.
    v4_index: Vec<u32>,
    /// For large tables: `v4_24[k]` = the label of /24 `k` when one range covers all of it, else
    /// `MIXED`; empty for small tables.
    v4_24: Vec<u32>,
    v6_starts: Vec<u128>,
    v6_vals: Vec<u32>,
}

impl RangeTable {
    /// Build the table. Nested ranges: the most specific (shortest) wins; identical ranges: the
    /// first line wins. A range that partly overlaps an earlier one without containing it or lying
    /// inside it (possible in range CSVs, never with prefixes) is left out and returned, so the
    /// caller can count it as a skipped line.
    pub fn build(v4: Vec<Interval>, v6: Vec<Interval>) -> (RangeTable, Vec<Interval>) {
        let (s4, v4v, mut rejected) = flatten(v4, u32::MAX as u128);
        let v4_starts: Vec<u32> = s4.into_iter().map(|s| s as u32).collect();
        let v4_index =
            (0..=u16::MAX as u32).map(|k| (v4_starts.partition_point(|s| *s <= k << 16) - 1) as u32).collect();
        let (v6_starts, v6_vals, r6) = flatten(v6, u128::MAX);
        rejected.extend(r6);
        let v4_24 = if v4_starts.len() > DIRECT_24_ABOVE { direct_24(&v4_starts, &v4v) } else { vec![] };
        (RangeTable { v4_starts, v4_vals: v4v, v4_index, v4_24, v6_starts, v6_vals }, rejected)
    }

    /// Label id of the most specific range covering `ip`, or `NONE`. The common case, one load
    /// from the /24 table, is inlined into the caller's loop (so a batch of lookups keeps many
    /// cache misses in flight); the searches are out of line.
    #[inline(always)]
    pub fn lookup(&self, ip: Ip) -> u32 {
        if let Ip::V4(a) = ip {
            if let Some(&v) = self.v4_24.get((a >> 8) as usize) {
                if v != MIXED {
                    return v;
                }
            }
        }
        self.search(ip)
    }

    /// The binary search behind [`lookup`](Self::lookup).
    #[inline(never)]
    fn search(&self, ip: Ip) -> u32 {
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
                    NONE
                } else {
                    self.v6_vals[i - 1]
                }
            }
        }
    }

    /// Disjoint ranges held (IPv4, IPv6), including the unlabelled gaps.
    pub fn len(&self) -> (usize, usize) {
        (self.v4_starts.len(), self.v6_starts.len())
    }

    /// True when no family has any labelled range.
    pub fn is_empty(&self) -> bool {
        self.v4_vals.iter().chain(&self.v6_vals).all(|v| *v == NONE)
    }
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

    /// Close every open range that ends before `limit` (all of them for `None`): after its end
    /// the enclosing range's label (or none) applies again.
    fn close_until(&mut self, stack: &mut Vec<(u128, u32)>, limit: Option<u128>, max: u128) {
        while let Some(&(end, _)) = stack.last() {
            if limit.is_some_and(|l| end >= l) {
                break;
            }
            stack.pop();
            if let Some(after) = end.checked_add(1).filter(|a| *a <= max) {
                self.emit(after, stack.last().map_or(NONE, |t| t.1));
            }
        }
    }
}

/// Turn possibly nested ranges into disjoint ones: (starts, labels, rejected), starts[0] == 0,
/// range i covering [starts[i], starts[i+1]), `max` the family's last address.
fn flatten(mut p: Vec<Interval>, max: u128) -> (Vec<u128>, Vec<u32>, Vec<Interval>) {
    // Outer ranges before the ranges they contain; among identical ones the first line first.
    p.sort_unstable_by_key(|x| (x.start, std::cmp::Reverse(x.end), x.line)); // lines are unique: a total order
    p.dedup_by_key(|x| (x.start, x.end));
    let mut out = Ranges { starts: vec![0], vals: vec![NONE] };
    let mut stack: Vec<(u128, u32)> = vec![];
    let mut rejected = vec![];
    for x in &p {
        out.close_until(&mut stack, Some(x.start), max);
        if stack.last().is_some_and(|t| t.0 < x.end) {
            rejected.push(*x);
            continue;
        }
        out.emit(x.start, x.val);
        stack.push((x.end, x.val));
    }
    out.close_until(&mut stack, None, max);
    rejected.sort_by_key(|x| x.line);
    (out.starts, out.vals, rejected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The label a linear scan finds: the smallest range containing `a`, first line on ties,
    /// among the ranges `build` kept.
    fn naive(kept: &[Interval], a: u128) -> u32 {
        kept.iter()
            .filter(|x| x.start <= a && a <= x.end)
            .min_by_key(|x| (x.end - x.start, x.line))
            .map_or(NONE, |x| x.val)
    }

    /// Random nested prefixes of one family: a few short ones, many long ones clustered inside
    /// them, so nesting is deep; probes land in the clusters half of the time.
    fn check_family(bits: u32, seed: u64) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let top = |len: u32| if len == 0 { 0 } else { u128::MAX << (128 - len) >> (128 - bits) };
        let mut p = vec![];
        let mut line = 0;
        let base: u128 = rng.gen::<u128>() >> (128 - bits);
        for _ in 0..400 {
            line += 1;
            let len = rng.gen_range(if bits == 32 { 4..=32 } else { 16..=128 });
            // Clustered: share the base's first 12 bits (v4) or 40 bits (v6) half of the time.
            let mut addr: u128 = rng.gen::<u128>() >> (128 - bits);
            if rng.gen_bool(0.7) {
                let keep = if bits == 32 { 12 } else { 40 };
                addr = (base & top(keep)) | (addr & !top(keep));
            }
            addr &= top(len);
            let val = rng.gen_range(0..50);
            p.push(if bits == 32 {
                Interval::v4_prefix(addr as u32, len as u8, val, line)
            } else {
                Interval::v6_prefix(addr, len as u8, val, line)
            });
        }
        // The whole space and a duplicate of an earlier prefix with another label (first wins).
        line += 1;
        p.push(Interval { start: 0, end: u128::MAX >> (128 - bits), val: 99, line });
        line += 1;
        p.push(Interval { val: 77, line, ..p[3] });
        let (t, rejected) =
            if bits == 32 { RangeTable::build(p.clone(), vec![]) } else { RangeTable::build(vec![], p.clone()) };
        assert!(rejected.is_empty(), "prefixes never partly overlap: {:x?}", &rejected[..rejected.len().min(2)]);
        for i in 0..20_000u32 {
            let mut a: u128 = rng.gen::<u128>() >> (128 - bits);
            if i % 2 == 0 {
                // Near a random prefix's edges, where off-by-one errors live.
                let x = p[rng.gen_range(0..p.len())];
                a = match i % 6 {
                    0 => x.start,
                    2 => x.end,
                    _ => x.end.saturating_add(1).min(u128::MAX >> (128 - bits)),
                };
            }
            let ip = if bits == 32 { Ip::V4(a as u32) } else { Ip::V6(a) };
            assert_eq!(t.lookup(ip), naive(&p, a), "{a:#x}");
        }
    }

    #[test]
    fn v4_matches_a_naive_scan_over_random_addresses() {
        check_family(32, 1);
        check_family(32, 2);
    }

    /// A table large enough for the direct /24 table answers as the binary search does (which
    /// the tests above hold against a naive scan), at /24 edges, inside /24s split by longer
    /// prefixes (`MIXED` entries) and at random.
    #[test]
    fn direct_24_table_agrees_with_the_search() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let mut p = vec![];
        for line in 0..90_000u64 {
            let len = [8, 16, 20, 22, 24, 24, 24, 26, 28, 32][rng.gen_range(0..10)];
            let addr = if len == 32 { rng.gen() } else { rng.gen::<u32>() & (u32::MAX << (32 - len)) };
            p.push(Interval::v4_prefix(addr, len as u8, rng.gen_range(0..5_000), line + 1));
        }
        let (t, _) = RangeTable::build(p.clone(), vec![]);
        assert_eq!(t.v4_24.len(), 1 << 24, "{} ranges", t.v4_starts.len());
        assert!(t.v4_24.contains(&MIXED));
        let search = RangeTable { v4_24: vec![], ..t.clone() };
        for i in 0..300_000u32 {
            let a = match i % 4 {
                0 => rng.gen(),
                1 => p[rng.gen_range(0..p.len())].start as u32,
                2 => p[rng.gen_range(0..p.len())].end as u32,
                _ => (p[rng.gen_range(0..p.len())].end as u32).wrapping_add(1),
            };
            assert_eq!(t.lookup(Ip::V4(a)), search.lookup(Ip::V4(a)), "{a:#x}");
        }
    }

    #[test]
    fn v6_matches_a_naive_scan_over_random_addresses() {
        check_family(128, 3);
        check_family(128, 4);
    }

    #[test]
    fn ranges_that_partly_overlap_are_rejected_and_nested_ranges_kept() {
        let r = |s: u128, e: u128, val: u32, line: u64| Interval { start: s, end: e, val, line };
        let (t, rej) =
            RangeTable::build(vec![r(10, 20, 1, 1), r(15, 30, 2, 2), r(12, 13, 3, 3), r(21, 25, 4, 4)], vec![]);
        assert_eq!(rej, vec![r(15, 30, 2, 2)]);
        let got: Vec<u32> = [9, 10, 11, 12, 13, 14, 20, 21, 25, 26].iter().map(|a| t.lookup(Ip::V4(*a))).collect();
        assert_eq!(got, [NONE, 1, 1, 3, 3, 1, 1, 4, 4, NONE]);
        // The last address of both families can be covered.
        let (t, _) =
            RangeTable::build(vec![r(u32::MAX as u128, u32::MAX as u128, 5, 1)], vec![r(u128::MAX, u128::MAX, 6, 2)]);
        assert_eq!((t.lookup(Ip::V4(u32::MAX)), t.lookup(Ip::V6(u128::MAX)), t.lookup(Ip::V6(0))), (5, 6, NONE));
        assert!(!t.is_empty() && RangeTable::build(vec![], vec![]).0.is_empty());
    }
}
