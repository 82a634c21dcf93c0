//! The cyclic multiplicative group that orders a scan (zmap's `cyclic.c`, generalised).
//!
//! Why a cyclic group: a scan must visit each of `n` targets exactly once, in an order that looks
//! random (so no network sees a burst of probes), with O(1) state (so it can be sharded, threaded
//! and resumed from a single number). For a prime `p > n`, the nonzero residues mod `p` form a
//! cyclic group of order `p - 1`: for a generator `g`, the sequence `start * g^i mod p`,
//! `i = 0 .. p-2`, runs through every residue `1 .. p-1` exactly once. Elements `e <= n` map to
//! targets `e - 1`; the few above `n` are skipped (with `p` the smallest prime above `n` they are a
//! vanishing fraction: prime gaps are about `ln n`). The state is the current element, one
//! multiplication mod `p` moves to the next, and position `i` is reached directly by `g^i`.
//!
//! A generator is a primitive root `r` of `p` raised to a power `k` coprime to `p - 1`; both `k`
//! and `start` come from the scan's seed, so the seed fixes the order. Finding `r` needs the prime
//! factors of `p - 1` (`r` is primitive iff `r^((p-1)/q) != 1` for each prime `q | p-1`): they are
//! found by trial division and Pollard's rho, with a deterministic Miller-Rabin test for `u64`.
//!
//! The per-step multiplication uses Montgomery reduction ([`Montgomery`]): three 64-bit
//! multiplications, no division, valid for every odd modulus below 2^64.

/// Arithmetic modulo an odd `p < 2^64` by Montgomery reduction with `R = 2^64`.
///
/// [`Montgomery::mul_redc`] computes `a * b / R mod p`. Keeping the walking element in ordinary
/// form and the step in Montgomery form (`b = step * R mod p`) makes one `mul_redc` an ordinary
/// modular multiplication: `a * (step * R) / R = a * step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Montgomery {
    p: u64,
    /// `p^-1 mod 2^64`.
    p_inv: u64,
    /// `R^2 mod p`, to convert into Montgomery form.
    r2: u64,
}

impl Montgomery {
    /// Prepares arithmetic mod `p`. `p` must be odd and greater than 1.
    pub fn new(p: u64) -> Montgomery {
        assert!(p > 1 && p & 1 == 1, "Montgomery modulus must be odd and > 1, got {p}");
        // Newton's iteration doubles the number of correct low bits: p*p == 1 mod 8 gives 3 bits.
        let mut inv = p;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(p.wrapping_mul(inv)));
        }
        debug_assert_eq!(p.wrapping_mul(inv), 1);
        let r = (u128::from(u64::MAX) % u128::from(p) + 1) % u128::from(p); // 2^64 mod p
        let r2 = (r * r % u128::from(p)) as u64;
        Montgomery { p, p_inv: inv, r2 }
    }

    /// The modulus.
    #[inline]
    pub fn modulus(&self) -> u64 {
        self.p
    }

    /// `a * b * 2^-64 mod p`, for `a, b < p`. The result is `< p`.
    #[inline(always)]
    pub fn mul_redc(&self, a: u64, b: u64) -> u64 {
        let t = u128::from(a) * u128::from(b);
        let m = (t as u64).wrapping_mul(self.p_inv);
        // t - m*p is divisible by 2^64 (low words cancel exactly), so only the high words matter.
        let mp_hi = ((u128::from(m) * u128::from(self.p)) >> 64) as u64;
        let (r, borrow) = ((t >> 64) as u64).overflowing_sub(mp_hi);
        if borrow {
            r.wrapping_add(self.p)
        } else {
            r
        }
    }

    /// `a` in Montgomery form (`a * 2^64 mod p`).
    #[inline]
    pub fn to_mont(&self, a: u64) -> u64 {
        self.mul_redc(a % self.p, self.r2)
    }

    /// `a * b mod p` for ordinary `a, b`.
    #[inline]
    pub fn mul(&self, a: u64, b: u64) -> u64 {
        self.mul_redc(a % self.p, self.to_mont(b))
    }

    /// `base^exp mod p` for ordinary `base`, by square-and-multiply.
    pub fn pow(&self, base: u64, mut exp: u64) -> u64 {
        let mut result = self.to_mont(1);
        let mut b = self.to_mont(base);
        while exp > 0 {
            if exp & 1 == 1 {
                result = self.mul_redc(result, b);
            }
            b = self.mul_redc(b, b);
            exp >>= 1;
        }
        self.mul_redc(result, 1) // out of Montgomery form
    }
}

/// `a * b mod m` by 128-bit arithmetic (set-up paths only).
fn mul_mod(a: u64, b: u64, m: u64) -> u64 {
    (u128::from(a) * u128::from(b) % u128::from(m)) as u64
}

/// `a^e mod m` by 128-bit arithmetic (set-up paths only).
fn pow_mod(mut a: u64, mut e: u64, m: u64) -> u64 {
    let mut r = 1 % m;
    a %= m;
    while e > 0 {
        if e & 1 == 1 {
            r = mul_mod(r, a, m);
        }
        a = mul_mod(a, a, m);
        e >>= 1;
    }
    r
}

/// Deterministic primality test for every `u64`: Miller-Rabin with the first twelve primes as
/// bases, which is exact below 3.3 * 10^24.
pub fn is_prime(n: u64) -> bool {
    const BASES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
    if n < 2 {
        return false;
    }
    for &b in &BASES {
        if n.is_multiple_of(b) {
            return n == b;
        }
    }
    let s = (n - 1).trailing_zeros();
    let d = (n - 1) >> s;
    'bases: for &a in &BASES {
        let mut x = pow_mod(a, d, n);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mul_mod(x, x, n);
            if x == n - 1 {
                continue 'bases;
            }
        }
        return false;
    }
    true
}

/// The smallest prime strictly greater than `n`, or `None` if there is none below 2^64.
pub fn next_prime_above(n: u64) -> Option<u64> {
    let mut c = n.checked_add(1)?;
    while !is_prime(c) {
        c = c.checked_add(1)?;
    }
    Some(c)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A non-trivial factor of the odd composite `n` by Pollard's rho (Brent's variant); tries
/// successive polynomial constants until one works, which always happens for composite `n`.
fn pollard_rho(n: u64) -> u64 {
    let mut c = 1u64;
    loop {
        let f = |x: u64| ((u128::from(mul_mod(x, x, n)) + u128::from(c)) % u128::from(n)) as u64;
        let (mut x, mut y, mut d) = (2u64, 2u64, 1u64);
        while d == 1 {
            x = f(x);
            y = f(f(y));
            d = gcd(x.abs_diff(y), n);
        }
        if d != n {
            return d;
        }
        c += 1;
    }
}

/// The distinct prime factors of `n >= 1`, ascending.
pub fn prime_factors(mut n: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut d = 2u64;
    while d < 1000 && d * d <= n {
        if n.is_multiple_of(d) {
            out.push(d);
            while n.is_multiple_of(d) {
                n /= d;
            }
        }
        d += if d == 2 { 1 } else { 2 };
    }
    let mut stack = vec![];
    if n > 1 {
        stack.push(n);
    }
    while let Some(m) = stack.pop() {
        if is_prime(m) {
            out.push(m);
        } else {
            let f = pollard_rho(m);
            stack.push(f);
            stack.push(m / f);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The smallest primitive root of the prime `p` (a generator of the group of residues mod `p`).
pub fn primitive_root(p: u64) -> u64 {
    if p == 2 {
        return 1;
    }
    let factors = prime_factors(p - 1);
    (2..p)
        .find(|&g| factors.iter().all(|&q| pow_mod(g, (p - 1) / q, p) != 1))
        .expect("every prime has a primitive root")
}

/// SplitMix64: a tiny, well-mixed, seedable generator used to derive the generator exponent and
/// the start of the walk from the scan seed (`seed -> (k, start)` must be reproducible across
/// runs, platforms and crate versions, so it is written out here rather than borrowed).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator whose output is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound > 0`), by rejection so no value is favoured.
    pub fn below(&mut self, bound: u64) -> u64 {
        let zone = u64::MAX - (u64::MAX % bound); // accept x < zone: a multiple of bound
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % bound;
            }
        }
    }
}

/// The group chosen for a space of `n` targets: prime modulus, primitive root, and the
/// seed-derived generator and start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    /// Number of targets; elements `1..=n` are targets `0..n`.
    pub n: u64,
    /// The smallest odd prime above `n` (at least 3, so Montgomery arithmetic applies).
    pub p: u64,
    /// The smallest primitive root of `p`.
    pub root: u64,
    /// `root^k` for a seed-derived `k` coprime to `p - 1`: also a primitive root.
    pub generator: u64,
    /// The seed-derived first element, in `1..p`.
    pub start: u64,
}

impl Group {
    /// Largest supported space: keeps `p` far below 2^64 (every target space mpscan can build is
    /// at most 2^62 by construction).
    pub const MAX_N: u64 = 1 << 62;

    /// Picks the group for `n` targets (`1 <= n <= MAX_N`) and derives generator and start from
    /// `seed`.
    pub fn new(n: u64, seed: u64) -> Group {
        assert!((1..=Self::MAX_N).contains(&n), "target space of {n} is out of range");
        let p = next_prime_above(n.max(2)).expect("a prime exists below 2^64 above 2^62");
        let root = primitive_root(p);
        let order = p - 1;
        let mut rng = SplitMix64::new(seed);
        let k = loop {
            // k in 1..order; for p = 3 the order is 2 and k = 1.
            let k = 1 + rng.below(order - 1);
            if gcd(k, order) == 1 {
                break k;
            }
        };
        let generator = pow_mod(root, k, p);
        let start = 1 + rng.below(order);
        Group { n, p, root, generator, start }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primes() {
        let small: Vec<u64> = (0..60).filter(|&n| is_prime(n)).collect();
        assert_eq!(small, vec![2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59]);
        // zmap's IPv4 prime.
        assert_eq!(next_prime_above(1 << 32), Some((1 << 32) + 15));
        assert!(is_prime(18_446_744_073_709_551_557)); // largest u64 prime
        assert!(!is_prime(3_215_031_751)); // strong pseudoprime to bases 2, 3, 5, 7
        assert!(!is_prime(341_550_071_728_321)); // strong pseudoprime to bases 2..17
        assert!(!is_prime(4_294_967_297)); // 641 * 6700417
        assert_eq!(next_prime_above(u64::MAX - 58), None);
        // Compare with trial division over a range.
        for n in 0..5000u64 {
            let naive = n >= 2 && (2..n).take_while(|d| d * d <= n).all(|d| n % d != 0);
            assert_eq!(is_prime(n), naive, "{n}");
        }
    }

    #[test]
    fn factors() {
        assert_eq!(prime_factors(1), Vec::<u64>::new());
        assert_eq!(prime_factors(2), vec![2]);
        assert_eq!(prime_factors(360), vec![2, 3, 5]);
        assert_eq!(prime_factors((1 << 32) + 14), vec![2, 3, 5, 131, 364_289]);
        // A semiprime with two ~31-bit factors (needs rho).
        let (a, b) = (2_147_483_647u64, 2_147_483_629u64);
        assert_eq!(prime_factors(a * b), vec![b, a]);
        assert_eq!(prime_factors(1 << 61), vec![2]);
    }

    #[test]
    fn roots() {
        assert_eq!(primitive_root((1 << 32) + 15), 3); // zmap's
        assert_eq!(primitive_root(7), 3);
        assert_eq!(primitive_root(3), 2);
        // Exhaustive check on small primes: the root's powers hit every residue.
        for p in (3..400u64).filter(|&p| is_prime(p)) {
            let r = primitive_root(p);
            let mut seen = vec![false; p as usize];
            let mut x = 1;
            for _ in 0..p - 1 {
                assert!(!seen[x as usize], "p={p} r={r}");
                seen[x as usize] = true;
                x = x * r % p;
            }
        }
    }

    #[test]
    fn montgomery_matches_u128() {
        let mut rng = SplitMix64::new(1);
        for &p in &[3u64, 5, 4_294_967_311, (1 << 48) + 21, 18_446_744_073_709_551_557] {
            let m = Montgomery::new(p);
            for _ in 0..2000 {
                let (a, b) = (rng.below(p), rng.below(p));
                assert_eq!(m.mul(a, b), mul_mod(a, b, p), "p={p}");
                let e = rng.next_u64() % 1000;
                assert_eq!(m.pow(a, e), pow_mod(a, e, p));
            }
            assert_eq!(m.mul(p - 1, p - 1), 1);
        }
    }

    #[test]
    fn group_generator_is_primitive_and_seeded() {
        let g = Group::new(1000, 42);
        assert_eq!(g.p, 1009);
        let f = prime_factors(g.p - 1);
        assert!(f.iter().all(|&q| pow_mod(g.generator, (g.p - 1) / q, g.p) != 1));
        assert!((1..g.p).contains(&g.start));
        assert_eq!(g, Group::new(1000, 42));
        assert_ne!(g, Group::new(1000, 43));
        // Tiny spaces still get an odd prime.
        assert_eq!(Group::new(1, 0).p, 3);
        assert_eq!(Group::new(2, 0).p, 3);
        assert_eq!(Group::new(3, 0).p, 5);
    }

    #[test]
    fn large_spaces_get_a_primitive_generator() {
        // Full IPv4 x all ports, the IPv4 space, and the largest supported space.
        for n in [(1u64 << 32) * 65535, 1 << 32, (1 << 32) - 1, Group::MAX_N] {
            let g = Group::new(n, 9);
            assert!(g.p > n && is_prime(g.p));
            assert!((n + 1..g.p).all(|c| !is_prime(c)), "not the smallest prime above {n}");
            for q in prime_factors(g.p - 1) {
                assert!(is_prime(q));
                assert_ne!(pow_mod(g.generator, (g.p - 1) / q, g.p), 1, "n={n}");
            }
            // The factors really are all of p - 1's prime factors.
            let mut rest = g.p - 1;
            for q in prime_factors(g.p - 1) {
                while rest.is_multiple_of(q) {
                    rest /= q;
                }
            }
            assert_eq!(rest, 1);
        }
    }

    #[test]
    fn below_is_in_range() {
        let mut r = SplitMix64::new(7);
        for bound in [1u64, 2, 3, 1000, u64::MAX] {
            for _ in 0..100 {
                assert!(r.below(bound) < bound);
            }
        }
    }
}
