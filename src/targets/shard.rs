//! Walking the cyclic group: the [`Permutation`] of a scan and the [`Cursor`]s that split it.
//!
//! The group (see [`super::cyclic`]) orders the targets along one cycle of `L = p - 1` positions:
//! position `i` holds the element `start * g^i mod p`. Splitting the work is splitting the cycle by
//! position, the way zmap's `shard.c` does: with `S` sub-shards, sub-shard `s` takes positions
//! `s, s + S, s + 2S, ...`. Its first element is `start * g^s` and each step multiplies by `g^S`,
//! so every sub-shard is itself a cheap multiplicative walk, the sub-shards are disjoint, and
//! together they cover every position (hence every target) exactly once.
//!
//! Machines and threads nest: shard `I` of `N`, thread `T` of `Tn` is sub-shard `I * Tn + T` of
//! `N * Tn`. All machines must use the same seed and the same target arguments.
//!
//! A cursor's state is one number, its *position*: how many of its own cycle positions it has
//! consumed. Resuming a crashed scan is creating the cursor again with that position: its element
//! is `start * g^(s + position * S)`, one fast exponentiation away.

use super::cyclic::{Group, Montgomery};
use super::error::TargetError;

/// The seeded order of a target space of `n` indices: a cyclic group and its walk parameters.
/// Cheap to copy; create [`Cursor`]s from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permutation {
    group: Group,
    mont: Montgomery,
}

impl Permutation {
    /// The permutation of `0..n` fixed by `seed`. `n` must be in `1..=2^62` (a
    /// [`super::TargetSpace`] always is).
    pub fn new(n: u64, seed: u64) -> Permutation {
        let group = Group::new(n, seed);
        Permutation { group, mont: Montgomery::new(group.p) }
    }

    /// Number of target indices permuted.
    pub fn len(&self) -> u64 {
        self.group.n
    }

    /// Always false: a permutation has at least one index.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Number of cycle positions, `p - 1` (at least `len()`; the extra ones are skipped).
    pub fn cycle_len(&self) -> u64 {
        self.group.p - 1
    }

    /// The group parameters (for the scan's metadata: prime, root, generator, start).
    pub fn group(&self) -> &Group {
        &self.group
    }

    /// The cursor of thread `thread` of `threads` within shard `shard` of `shards`, resumed at
    /// `position` (0 for a fresh scan; otherwise a value of [`Cursor::position`] saved from the
    /// same shard and thread of the same scan). Errors if `shard >= shards`, `thread >= threads`
    /// or either count is 0.
    pub fn cursor(
        &self,
        shard: u32,
        shards: u32,
        thread: u32,
        threads: u32,
        position: u64,
    ) -> Result<Cursor, TargetError> {
        if shards == 0 || threads == 0 || shard >= shards || thread >= threads {
            return Err(TargetError::Shard { shard, shards, thread, threads });
        }
        let subs = u64::from(shards) * u64::from(threads);
        let sub = u64::from(shard) * u64::from(threads) + u64::from(thread);
        Ok(self.sub_shard(sub, subs, position))
    }

    /// The cursor of sub-shard `sub` of `subs` (`sub < subs`), resumed at `position`.
    pub fn sub_shard(&self, sub: u64, subs: u64, position: u64) -> Cursor {
        assert!(sub < subs, "sub-shard {sub} of {subs}");
        let cycle = self.cycle_len();
        // Positions sub, sub + subs, ... below cycle.
        let total = if sub < cycle { (cycle - 1 - sub) / subs + 1 } else { 0 };
        let remaining = total.saturating_sub(position);
        let m = &self.mont;
        let g = self.group.generator;
        // Element at position `position`: start * g^(sub + position * subs), exponent mod p - 1.
        let exp = (u128::from(sub) + u128::from(position.min(total)) * u128::from(subs)) % u128::from(cycle);
        let cur = m.mul(self.group.start, m.pow(g, exp as u64));
        let step = m.to_mont(m.pow(g, subs % cycle));
        Cursor { mont: *m, step, cur, n: self.group.n, remaining, position: position.min(total), limit: u64::MAX }
    }
}

/// An iterator over the target indices of one sub-shard, in permutation order.
///
/// Each `next()` multiplies the current element by the step (one Montgomery multiplication) until
/// an element maps to a target; nothing is allocated. [`Cursor::position`] is the resume point.
#[derive(Debug, Clone)]
pub struct Cursor {
    mont: Montgomery,
    /// `g^S` in Montgomery form, so `mul_redc(cur, step) = cur * g^S mod p`.
    step: u64,
    /// The element at the current position, ordinary form, in `1..p`.
    cur: u64,
    /// Elements `1..=n` are targets.
    n: u64,
    /// Cycle positions left in this sub-shard.
    remaining: u64,
    /// Cycle positions of this sub-shard consumed so far (including a resume offset).
    position: u64,
    /// Targets this cursor may still yield (`u64::MAX`: unlimited).
    limit: u64,
}

impl Cursor {
    /// How many of this sub-shard's cycle positions have been consumed (targets and skipped
    /// elements alike). Pass it back to [`Permutation::cursor`] to resume after the last yielded
    /// target.
    #[inline]
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Cycle positions still to walk; the targets left are about `remaining * len / cycle_len`.
    pub fn remaining_positions(&self) -> u64 {
        self.remaining
    }

    /// Stops the cursor after it has yielded `max` more targets (the scan's `--max-targets`; see
    /// [`share`] to divide a shard's limit among its threads).
    pub fn limit(mut self, max: u64) -> Cursor {
        self.limit = max;
        self
    }
}

impl Iterator for Cursor {
    type Item = u64;

    #[inline]
    fn next(&mut self) -> Option<u64> {
        if self.limit == 0 {
            return None;
        }
        while self.remaining != 0 {
            let e = self.cur;
            self.cur = self.mont.mul_redc(e, self.step);
            self.remaining -= 1;
            self.position += 1;
            if e <= self.n {
                self.limit -= 1;
                return Some(e - 1);
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let upper = self.remaining.min(self.limit);
        (0, usize::try_from(upper).ok())
    }
}

/// Part `part` of `total` split into `parts` nearly equal shares (the first `total % parts` get one
/// more), e.g. a shard's `--max-targets` divided among its send threads. `parts` must be >= 1.
pub fn share(total: u64, parts: u32, part: u32) -> u64 {
    let parts = u64::from(parts.max(1));
    total / parts + u64::from(u64::from(part) < total % parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(p: &Permutation) -> Vec<u64> {
        p.cursor(0, 1, 0, 1, 0).unwrap().collect()
    }

    fn assert_bijection(n: u64, mut got: Vec<u64>) {
        assert_eq!(got.len() as u64, n, "n={n}");
        got.sort_unstable();
        assert!(got.iter().copied().eq(0..n), "n={n}: not every index exactly once");
    }

    #[test]
    fn bijection_small_and_odd_sizes() {
        // 1009 is prime, 1008 = prime - 1, 1 << 16 a power of two.
        for n in [1u64, 2, 3, 4, 5, 7, 100, 1000, 1008, 1009, 1010, 65536, 99_991] {
            for seed in [0u64, 1, 0xdead_beef] {
                let p = Permutation::new(n, seed);
                assert_bijection(n, all(&p));
            }
        }
    }

    #[test]
    fn shards_and_threads_partition_the_space() {
        for n in [1u64, 2, 7, 100, 1009, 4099] {
            let p = Permutation::new(n, 99);
            for shards in 1..=8u32 {
                for threads in 1..=3u32 {
                    let mut got = Vec::new();
                    for s in 0..shards {
                        for t in 0..threads {
                            got.extend(p.cursor(s, shards, t, threads, 0).unwrap());
                        }
                    }
                    assert_bijection(n, got);
                }
            }
        }
    }

    #[test]
    fn more_sub_shards_than_positions() {
        let p = Permutation::new(2, 5); // p = 3: two positions
        let mut got = Vec::new();
        for s in 0..8 {
            got.extend(p.cursor(s, 8, 0, 1, 0).unwrap());
        }
        assert_bijection(2, got);
    }

    #[test]
    fn shard_is_every_nth_position_of_the_whole_walk() {
        // Shard s of N yields the elements at cycle positions s, s+N, ...: check against the
        // unsharded walk, skipped positions included.
        let p = Permutation::new(1000, 3);
        let g = p.group();
        let mut elems = Vec::new();
        let mut x = g.start;
        for _ in 0..p.cycle_len() {
            elems.push(x);
            x = x * g.generator % g.p;
        }
        for shards in [1u32, 3, 4] {
            for s in 0..shards {
                let want: Vec<u64> = elems
                    .iter()
                    .skip(s as usize)
                    .step_by(shards as usize)
                    .filter(|&&e| e <= 1000)
                    .map(|e| e - 1)
                    .collect();
                let got: Vec<u64> = p.cursor(s, shards, 0, 1, 0).unwrap().collect();
                assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn resume_gives_the_same_remaining_sequence() {
        let p = Permutation::new(10_007, 11);
        for (shard, shards, thread, threads) in [(0, 1, 0, 1), (2, 3, 1, 2), (0, 4, 3, 4)] {
            let full: Vec<u64> = p.cursor(shard, shards, thread, threads, 0).unwrap().collect();
            for k in [0usize, 1, 17, full.len() / 2, full.len()] {
                let mut c = p.cursor(shard, shards, thread, threads, 0).unwrap();
                let head: Vec<u64> = c.by_ref().take(k).collect();
                let pos = c.position();
                let rest: Vec<u64> = p.cursor(shard, shards, thread, threads, pos).unwrap().collect();
                assert_eq!([head, rest].concat(), full, "k={k}");
            }
            // Past the end: empty.
            assert_eq!(p.cursor(shard, shards, thread, threads, u64::MAX).unwrap().count(), 0);
        }
    }

    #[test]
    fn position_counts_cycle_positions() {
        let p = Permutation::new(100, 1);
        let mut c = p.cursor(0, 1, 0, 1, 0).unwrap();
        assert_eq!(c.position(), 0);
        assert_eq!(c.by_ref().count(), 100);
        assert_eq!(c.position(), p.cycle_len()); // 100 targets + the skipped element 101
        assert_eq!(c.remaining_positions(), 0);
    }

    #[test]
    fn seed_fixes_the_order() {
        let a = all(&Permutation::new(1000, 1));
        assert_eq!(a, all(&Permutation::new(1000, 1)));
        let b = all(&Permutation::new(1000, 2));
        assert_ne!(a, b);
        assert_ne!(a, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn limit_stops_early_and_resumes() {
        let p = Permutation::new(1000, 4);
        let full: Vec<u64> = p.cursor(1, 2, 0, 1, 0).unwrap().collect();
        let mut c = p.cursor(1, 2, 0, 1, 0).unwrap().limit(10);
        let head: Vec<u64> = c.by_ref().collect();
        assert_eq!(head, full[..10]);
        let rest: Vec<u64> = p.cursor(1, 2, 0, 1, c.position()).unwrap().collect();
        assert_eq!(rest, full[10..]);
        assert_eq!(p.cursor(0, 1, 0, 1, 0).unwrap().limit(0).count(), 0);
    }

    #[test]
    fn bad_shard_arguments_are_errors() {
        let p = Permutation::new(10, 0);
        for (s, n, t, tn) in [(0, 0, 0, 1), (1, 1, 0, 1), (0, 1, 0, 0), (0, 1, 2, 2)] {
            assert!(matches!(p.cursor(s, n, t, tn, 0), Err(TargetError::Shard { .. })));
        }
    }

    #[test]
    fn share_splits_exactly() {
        for total in [0u64, 1, 7, 100, u64::MAX] {
            for parts in 1..=5u32 {
                let sum: u128 = (0..parts).map(|i| u128::from(share(total, parts, i))).sum();
                assert_eq!(sum, u128::from(total));
            }
        }
    }
}
