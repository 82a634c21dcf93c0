//! Address sets as sorted, disjoint, non-adjacent intervals.
//!
//! Targets, blocklists and allowlists are all unions of CIDR prefixes. A prefix is an interval of
//! integers (`u32` for IPv4, `u128` for IPv6), so the natural representation is a sorted list of
//! inclusive intervals `[lo, hi]` with every pair separated by at least one missing address: set
//! difference and intersection are then linear merges, membership is a binary search, and the set
//! of the whole Internet minus the special-purpose blocks is a few dozen intervals, not a 512 MiB
//! bitmap.
//!
//! [`IntervalSet`] does the set algebra. [`AddrSet`] is the finished, indexable set the scanner
//! walks: it adds to every interval the number of addresses before it (a prefix sum), so the
//! `i`-th address of the set is found by a binary search over those sums ([`AddrSet::nth`],
//! O(log intervals), no allocation). IPv4 addresses come first, then IPv6.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An integer type that can be an interval end point: `u32` (IPv4) and `u128` (IPv6), and `u8`
/// for exhaustive tests.
pub trait Point: Copy + Ord + std::fmt::Debug {
    /// The largest value (the end of the address space).
    const MAX: Self;
    /// `self + 1`, or `None` at `MAX`.
    fn succ(self) -> Option<Self>;
    /// `self - 1`, or `None` at zero.
    fn pred(self) -> Option<Self>;
    /// Number of points in `[lo, hi]`, saturated at `u128::MAX` (only the full `u128` space,
    /// 2^128 points, saturates).
    fn span(lo: Self, hi: Self) -> u128;
}

macro_rules! impl_point {
    ($($t:ty),*) => {$(
        impl Point for $t {
            const MAX: Self = <$t>::MAX;
            #[inline]
            fn succ(self) -> Option<Self> { self.checked_add(1) }
            #[inline]
            fn pred(self) -> Option<Self> { self.checked_sub(1) }
            #[inline]
            fn span(lo: Self, hi: Self) -> u128 { ((hi - lo) as u128).saturating_add(1) }
        }
    )*};
}
impl_point!(u8, u32, u128);

/// A set of integers stored as sorted, disjoint, non-adjacent inclusive intervals.
///
/// The invariant (`lo <= hi` in each interval; `next.lo > prev.hi + 1`) is established by
/// [`IntervalSet::from_ranges`] and kept by every operation, so two sets are equal iff their
/// interval lists are equal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IntervalSet<T> {
    ranges: Vec<(T, T)>,
}

impl<T: Point> IntervalSet<T> {
    /// The empty set.
    pub fn new() -> Self {
        IntervalSet { ranges: Vec::new() }
    }

    /// Builds a set from arbitrary inclusive ranges (any order, overlapping or adjacent ranges are
    /// merged). Ranges with `lo > hi` are ignored.
    pub fn from_ranges(mut ranges: Vec<(T, T)>) -> Self {
        ranges.retain(|&(lo, hi)| lo <= hi);
        ranges.sort_unstable();
        let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            if let Some(last) = out.last_mut() {
                // Merge when overlapping or adjacent (lo <= last.hi + 1).
                let touches = match last.1.succ() {
                    Some(next) => lo <= next,
                    None => true, // last reaches MAX: everything after is inside it
                };
                if touches {
                    if hi > last.1 {
                        last.1 = hi;
                    }
                    continue;
                }
            }
            out.push((lo, hi));
        }
        IntervalSet { ranges: out }
    }

    /// The intervals, sorted, disjoint and non-adjacent.
    pub fn ranges(&self) -> &[(T, T)] {
        &self.ranges
    }

    /// True when the set holds no point.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Number of points, saturated at `u128::MAX`.
    pub fn len(&self) -> u128 {
        self.ranges.iter().fold(0u128, |acc, &(lo, hi)| acc.saturating_add(T::span(lo, hi)))
    }

    /// Is `x` in the set? O(log intervals).
    pub fn contains(&self, x: T) -> bool {
        let i = self.ranges.partition_point(|&(lo, _)| lo <= x);
        i > 0 && self.ranges[i - 1].1 >= x
    }

    /// Is the whole of `[lo, hi]` in the set? Because intervals never touch, a covered range lies
    /// inside a single interval.
    pub fn covers(&self, lo: T, hi: T) -> bool {
        let i = self.ranges.partition_point(|&(l, _)| l <= lo);
        i > 0 && self.ranges[i - 1].1 >= hi
    }

    /// `self \ other`: the points of `self` that are not in `other`. Linear in both sizes.
    pub fn subtract(&self, other: &Self) -> Self {
        let b = &other.ranges;
        let mut out = Vec::with_capacity(self.ranges.len());
        let mut j = 0;
        for &(lo, hi) in &self.ranges {
            // Blocks that end before this range cannot touch it or any later range.
            while j < b.len() && b[j].1 < lo {
                j += 1;
            }
            // Walk the blocks that overlap [lo, hi], emitting the gaps between them.
            let mut start = lo;
            let mut k = j;
            loop {
                if k == b.len() || b[k].0 > hi {
                    out.push((start, hi));
                    break;
                }
                let (blo, bhi) = b[k];
                if blo > start {
                    out.push((start, blo.pred().expect("blo > start")));
                }
                if bhi >= hi {
                    break;
                }
                start = bhi.succ().expect("bhi < hi");
                k += 1;
            }
        }
        IntervalSet { ranges: out }
    }

    /// `self ∩ other`. Linear in both sizes.
    pub fn intersect(&self, other: &Self) -> Self {
        let (a, b) = (&self.ranges, &other.ranges);
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while i < a.len() && j < b.len() {
            let lo = a[i].0.max(b[j].0);
            let hi = a[i].1.min(b[j].1);
            if lo <= hi {
                out.push((lo, hi));
            }
            if a[i].1 < b[j].1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        IntervalSet { ranges: out }
    }
}

/// One IPv4 interval with the number of set addresses before it.
#[derive(Debug, Clone, Copy)]
struct Span4 {
    before: u64,
    lo: u32,
    hi: u32,
}

/// One IPv6 interval with the number of set addresses before it (IPv4 ones included).
#[derive(Debug, Clone, Copy)]
struct Span6 {
    before: u64,
    lo: u128,
    hi: u128,
}

/// The finished set of target addresses: indexable (`nth`) and searchable (`contains`).
///
/// Index order: IPv4 intervals in ascending order, then IPv6 intervals in ascending order. Built
/// once per scan; lookups never allocate.
#[derive(Debug, Clone, Default)]
pub struct AddrSet {
    v4: Vec<Span4>,
    v6: Vec<Span6>,
    b4: Buckets,
    b6: Buckets,
    v4_len: u64,
    len: u64,
}

/// A radix index over one family's intervals, so `nth` touches two cache lines rather than a
/// whole binary-search path: with a hitlist of a million single addresses the intervals fill
/// 16 MiB and a plain binary search costs ~20 cache misses (measured: ~190 ns per lookup).
///
/// Indices are cut into buckets of `2^shift` (the largest power of two not above the average
/// interval length, so there are between one and two buckets per interval). `first[b]` is the
/// interval holding the bucket's first index; a lookup binary-searches only the intervals from
/// `first[b]` to `first[b + 1]`, usually one or two.
#[derive(Debug, Clone, Default)]
struct Buckets {
    /// Index of this family's first address (0 for IPv4, the IPv4 count for IPv6).
    base: u64,
    shift: u32,
    first: Vec<u32>,
}

impl Buckets {
    /// Below this many intervals a plain binary search over the (cache-resident) intervals is
    /// faster than the extra table lookup (measured: the full IPv4 space minus the default
    /// blocklist, 14 intervals: 8-10 ns per (address, port) without the table, 14 ns with it).
    const MIN_INTERVALS: usize = 256;

    /// Builds the index for `n` intervals holding `count` addresses, `before(i)` being the
    /// absolute index of interval `i`'s first address.
    fn new(base: u64, count: u64, n: usize, before: impl Fn(usize) -> u64) -> Buckets {
        if n < Self::MIN_INTERVALS || count == 0 {
            return Buckets { base, shift: 0, first: Vec::new() };
        }
        let avg = (count / n as u64).max(1);
        let shift = 63 - avg.leading_zeros();
        let buckets = ((count - 1) >> shift) + 1;
        let mut first = Vec::with_capacity(buckets as usize);
        let mut j = 0usize;
        for b in 0..buckets {
            let x = base + (b << shift);
            while j + 1 < n && before(j + 1) <= x {
                j += 1;
            }
            first.push(j as u32);
        }
        Buckets { base, shift, first }
    }

    /// The inclusive range of intervals that can hold absolute index `index` (all of them when
    /// the set is too small to have a table).
    #[inline]
    fn candidates(&self, index: u64, n: usize) -> (usize, usize) {
        if self.first.is_empty() {
            return (0, n - 1);
        }
        let b = ((index - self.base) >> self.shift) as usize;
        let lo = self.first[b] as usize;
        let hi = self.first.get(b + 1).map_or(n - 1, |&h| h as usize);
        (lo, hi)
    }
}

impl AddrSet {
    /// Builds the indexable set. Returns `None` when the total number of addresses does not fit
    /// in a `u64` (only possible with billions of distinct IPv6 prefixes).
    pub fn new(v4: &IntervalSet<u32>, v6: &IntervalSet<u128>) -> Option<AddrSet> {
        let mut before: u64 = 0;
        let mut s4 = Vec::with_capacity(v4.ranges().len());
        for &(lo, hi) in v4.ranges() {
            s4.push(Span4 { before, lo, hi });
            before += u64::from(hi - lo) + 1; // at most 2^32 in total: cannot overflow
        }
        let v4_len = before;
        let mut s6 = Vec::with_capacity(v6.ranges().len());
        for &(lo, hi) in v6.ranges() {
            s6.push(Span6 { before, lo, hi });
            let n = u64::try_from(u128::span(lo, hi)).ok()?;
            before = before.checked_add(n)?;
        }
        let b4 = Buckets::new(0, v4_len, s4.len(), |i| s4[i].before);
        let b6 = Buckets::new(v4_len, before - v4_len, s6.len(), |i| s6[i].before);
        Some(AddrSet { v4: s4, v6: s6, b4, b6, v4_len, len: before })
    }

    /// Number of addresses in the set.
    #[inline]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the set holds no address.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of IPv4 addresses (they occupy indices `0..len_v4()`).
    pub fn len_v4(&self) -> u64 {
        self.v4_len
    }

    /// Number of intervals (IPv4 + IPv6): the cost driver of `nth` and `contains`.
    pub fn intervals(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// The `index`-th address of the set (0-based, IPv4 first). One bucket lookup, then a binary
    /// search over the few intervals of that bucket (O(log intervals) at worst).
    ///
    /// # Panics
    /// If `index >= len()`: callers get indices from a permutation of `0..len()`.
    #[inline]
    pub fn nth(&self, index: u64) -> IpAddr {
        assert!(index < self.len, "AddrSet::nth({index}) out of range (len {})", self.len);
        if index < self.v4_len {
            let (lo, hi) = self.b4.candidates(index, self.v4.len());
            let i = lo + self.v4[lo..=hi].partition_point(|s| s.before <= index) - 1;
            let s = &self.v4[i];
            IpAddr::V4(Ipv4Addr::from(s.lo + (index - s.before) as u32))
        } else {
            let (lo, hi) = self.b6.candidates(index, self.v6.len());
            let i = lo + self.v6[lo..=hi].partition_point(|s| s.before <= index) - 1;
            let s = &self.v6[i];
            IpAddr::V6(Ipv6Addr::from(s.lo + u128::from(index - s.before)))
        }
    }

    /// Is `addr` in the set? O(log intervals). IPv4-mapped IPv6 addresses are IPv6 here: they are
    /// only in the set if an IPv6 target named them.
    #[inline]
    pub fn contains(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => {
                let x = u32::from(a);
                let i = self.v4.partition_point(|s| s.lo <= x);
                i > 0 && self.v4[i - 1].hi >= x
            }
            IpAddr::V6(a) => {
                let x = u128::from(a);
                let i = self.v6.partition_point(|s| s.lo <= x);
                i > 0 && self.v6[i - 1].hi >= x
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn model(s: &IntervalSet<u8>) -> BTreeSet<u8> {
        s.ranges().iter().flat_map(|&(lo, hi)| lo..=hi).collect()
    }

    fn naive(ranges: &[(u8, u8)]) -> BTreeSet<u8> {
        ranges.iter().filter(|(lo, hi)| lo <= hi).flat_map(|&(lo, hi)| lo..=hi).collect()
    }

    fn check_invariant<T: Point>(s: &IntervalSet<T>) {
        for w in s.ranges().windows(2) {
            let gap_ok = w[0].1.succ().is_some_and(|n| n < w[1].0);
            assert!(gap_ok, "intervals touch or overlap: {:?}", s.ranges());
        }
        for &(lo, hi) in s.ranges() {
            assert!(lo <= hi);
        }
    }

    fn ranges_strategy() -> impl Strategy<Value = Vec<(u8, u8)>> {
        // Biased to the edges 0 and 255 and to small, overlapping ranges.
        let point = prop_oneof![Just(0u8), Just(255u8), Just(254u8), Just(1u8), any::<u8>()];
        proptest::collection::vec((point.clone(), point), 0..8)
    }

    proptest! {
        #[test]
        fn from_ranges_matches_model(r in ranges_strategy()) {
            let s = IntervalSet::from_ranges(r.clone());
            check_invariant(&s);
            prop_assert_eq!(model(&s), naive(&r));
            prop_assert_eq!(s.len(), naive(&r).len() as u128);
        }

        #[test]
        fn subtract_matches_model(a in ranges_strategy(), b in ranges_strategy()) {
            let (sa, sb) = (IntervalSet::from_ranges(a.clone()), IntervalSet::from_ranges(b.clone()));
            let d = sa.subtract(&sb);
            check_invariant(&d);
            let want: BTreeSet<u8> = naive(&a).difference(&naive(&b)).copied().collect();
            prop_assert_eq!(model(&d), want);
        }

        #[test]
        fn intersect_matches_model(a in ranges_strategy(), b in ranges_strategy()) {
            let (sa, sb) = (IntervalSet::from_ranges(a.clone()), IntervalSet::from_ranges(b.clone()));
            let d = sa.intersect(&sb);
            check_invariant(&d);
            let want: BTreeSet<u8> = naive(&a).intersection(&naive(&b)).copied().collect();
            prop_assert_eq!(model(&d), want);
        }

        #[test]
        fn contains_and_covers_match_model(a in ranges_strategy(), x in any::<u8>(), y in any::<u8>()) {
            let s = IntervalSet::from_ranges(a.clone());
            let m = naive(&a);
            prop_assert_eq!(s.contains(x), m.contains(&x));
            let (lo, hi) = (x.min(y), x.max(y));
            prop_assert_eq!(s.covers(lo, hi), (lo..=hi).all(|p| m.contains(&p)));
        }

        #[test]
        fn addrset_nth_enumerates_in_order(a in proptest::collection::vec((0u32..300, 0u32..40), 0..6),
                                           b in proptest::collection::vec((0u128..300, 0u128..40), 0..6)) {
            // Offsets near the top of the spaces exercise the 255.255.255.255 / ffff:... edges.
            let v4 = IntervalSet::from_ranges(a.iter().map(|&(lo, n)| (u32::MAX - 400 + lo, (u32::MAX - 400 + lo).saturating_add(n))).chain(a.iter().map(|&(lo, n)| (lo, lo + n))).collect());
            let v6 = IntervalSet::from_ranges(b.iter().map(|&(lo, n)| (lo, lo + n)).chain(b.iter().map(|&(lo, n)| (u128::MAX - 400 + lo, (u128::MAX - 400 + lo).saturating_add(n)))).collect());
            let set = AddrSet::new(&v4, &v6).unwrap();
            let want: Vec<IpAddr> = v4.ranges().iter().flat_map(|&(lo, hi)| (lo..=hi).map(|x| IpAddr::V4(x.into())))
                .chain(v6.ranges().iter().flat_map(|&(lo, hi)| (lo..=hi).map(|x| IpAddr::V6(x.into())))).collect();
            prop_assert_eq!(set.len(), want.len() as u64);
            for (i, w) in want.iter().enumerate() {
                prop_assert_eq!(set.nth(i as u64), *w);
                prop_assert!(set.contains(*w));
            }
        }
    }

    #[test]
    fn merges_adjacent_and_overlapping() {
        let s = IntervalSet::from_ranges(vec![(10u32, 19), (20, 29), (25, 40), (42, 42)]);
        assert_eq!(s.ranges(), &[(10, 40), (42, 42)]);
    }

    #[test]
    fn full_space_edges() {
        let full = IntervalSet::from_ranges(vec![(0u32, u32::MAX)]);
        assert_eq!(full.len(), 1u128 << 32);
        let set = AddrSet::new(&full, &IntervalSet::new()).unwrap();
        assert_eq!(set.len(), 1u64 << 32);
        assert_eq!(set.nth(0), "0.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(set.nth(u32::MAX as u64), "255.255.255.255".parse::<IpAddr>().unwrap());
        assert!(set.contains("255.255.255.255".parse().unwrap()));
        assert!(!set.contains("::".parse().unwrap()));
        let full6 = IntervalSet::from_ranges(vec![(0u128, u128::MAX)]);
        assert_eq!(full6.len(), u128::MAX); // saturated
        assert!(AddrSet::new(&IntervalSet::new(), &full6).is_none());
    }

    #[test]
    fn subtract_edges() {
        let full = IntervalSet::from_ranges(vec![(0u32, u32::MAX)]);
        let holes = IntervalSet::from_ranges(vec![(0u32, 0), (u32::MAX, u32::MAX), (100, 200)]);
        let d = full.subtract(&holes);
        assert_eq!(d.ranges(), &[(1, 99), (201, u32::MAX - 1)]);
        assert!(full.subtract(&full).is_empty());
        // One block spanning several ranges.
        let a = IntervalSet::from_ranges(vec![(0u32, 5), (10, 15), (20, 25)]);
        let b = IntervalSet::from_ranges(vec![(3u32, 22)]);
        assert_eq!(a.subtract(&b).ranges(), &[(0, 2), (23, 25)]);
    }

    #[test]
    fn nth_with_uneven_intervals() {
        // One big interval and many singletons, in both families: buckets then hold many
        // intervals each, and the search inside a bucket must still find the right one.
        let mut r4 = vec![(1u32 << 30, (1u32 << 30) + (1 << 24) - 1)];
        let mut r6 = vec![(0u128, 5u128)];
        for k in 0..1000u32 {
            r4.push((k * 2, k * 2));
            r4.push((u32::MAX - k * 3, u32::MAX - k * 3));
            r6.push((100 + u128::from(k) * 7, 100 + u128::from(k) * 7));
        }
        r6.push((1 << 100, (1 << 100) + (1 << 20)));
        let (v4, v6) = (IntervalSet::from_ranges(r4), IntervalSet::from_ranges(r6));
        let set = AddrSet::new(&v4, &v6).unwrap();
        let mut index = 0u64;
        for &(lo, hi) in v4.ranges() {
            for x in [lo, lo + (hi - lo) / 2, hi] {
                assert_eq!(set.nth(index + u64::from(x - lo)), IpAddr::V4(x.into()));
            }
            index += u64::from(hi - lo) + 1;
        }
        assert_eq!(index, set.len_v4());
        for &(lo, hi) in v6.ranges() {
            for x in [lo, lo + (hi - lo) / 2, hi] {
                assert_eq!(set.nth(index + (x - lo) as u64), IpAddr::V6(x.into()));
            }
            index += (hi - lo) as u64 + 1;
        }
        assert_eq!(index, set.len());
    }

    #[test]
    fn contains_between_intervals_is_false() {
        let v4 = IntervalSet::from_ranges(vec![(10u32, 20), (30, 40)]);
        let set = AddrSet::new(&v4, &IntervalSet::new()).unwrap();
        for x in [0u32, 9, 21, 29, 41, u32::MAX] {
            assert!(!set.contains(IpAddr::V4(x.into())), "{x}");
        }
        for x in [10u32, 20, 30, 40] {
            assert!(set.contains(IpAddr::V4(x.into())), "{x}");
        }
        assert_eq!(set.nth(11), IpAddr::V4(30u32.into()));
    }
}
