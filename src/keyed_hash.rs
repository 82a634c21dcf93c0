//! Stateless validation: a per-scan secret and the keyed hash that derives every per-probe
//! value, so that the receiver recognises its own probes' answers without remembering them.
//!
//! For a probe from `src` to `dst:port` with MP_CAPABLE version `v`, SipHash-1-3 (128-bit
//! output) keyed by the secret over `(src, dst, port, v)` gives:
//!
//! * the TCP sequence number (32 bits): a SYN-ACK is ours only if it acknowledges `seq + 1`;
//! * the source port (in the scan's `--source-port` range, by default [`SPORT_LO`]..=[`SPORT_HI`]):
//!   the answer must come back to it;
//! * the TSval of the timestamps option (32 bits): lets the classifier tell whether a box sent
//!   our clock back as its own (a mirror) rather than in TSecr;
//! * the v0 key (64 bits): a different key per probe, so that our own key coming back is an echo
//!   and cannot be mistaken for a server's.
//!
//! The version is part of the hash, so the v0 and v1 probes of a `both` scan are two distinct
//! connections (different source ports and sequence numbers) and their answers are told apart.
//!
//! With several source addresses (`-S`, [`crate::sources`]) the hash is computed over the family's
//! key source (its first), and [`source_index`] picks the probe's actual source from the hash:
//! the receiver recomputes the same pick from the answer's (target, port), so validation stays
//! stateless. Ranges are reduced by multiply-shift (`(bits * n) >> width`), not `%`.

use crate::probe::{ProbeTag, ProbeVersion};
use crate::sources::SourcePorts;
use siphasher::sip128::SipHasher13;
use std::net::IpAddr;

/// Lowest source port a probe uses.
pub const SPORT_LO: u16 = 32768;
/// Highest source port a probe uses (the range zmap uses by default ends at 61000; ours runs to
/// 65535 to spread probes over more ports).
pub const SPORT_HI: u16 = 65535;
const SPORT_COUNT: u32 = (SPORT_HI - SPORT_LO) as u32 + 1;

/// The per-scan secret and the hash built on it, with the source-port range the hash spreads
/// the probes over.
#[derive(Clone)]
pub struct Validator {
    hasher: SipHasher13,
    /// SipHash's initial state for this key (`v0..v3`), for the IPv4 fast path [`sip13_v4`].
    init: [u64; 4],
    /// Lowest source port.
    sport_lo: u16,
    /// Number of source ports (1 to 65535).
    sport_count: u32,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Validator { .. }")
    }
}

impl Validator {
    /// A validator keyed by a 128-bit secret.
    pub fn new(secret: [u8; 16]) -> Validator {
        let k0 = u64::from_le_bytes(secret[..8].try_into().unwrap());
        let k1 = u64::from_le_bytes(secret[8..].try_into().unwrap());
        // SipHash's constants ("somepseudorandomlygeneratedbytes"); v1 already carries the
        // 128-bit variant's 0xee.
        let init = [
            k0 ^ 0x736f_6d65_7073_6575,
            k1 ^ 0x646f_7261_6e64_6f83,
            k0 ^ 0x6c79_6765_6e65_7261,
            k1 ^ 0x7465_6462_7974_6573,
        ];
        Validator { hasher: SipHasher13::new_with_key(&secret), init, sport_lo: SPORT_LO, sport_count: SPORT_COUNT }
    }

    /// The same validator with the probes' source ports in `ports` (`--source-port`). With
    /// [`SourcePorts::DEFAULT`] the ports are exactly those of a validator without a range.
    pub fn with_ports(mut self, ports: SourcePorts) -> Validator {
        self.sport_lo = ports.lo;
        self.sport_count = ports.count();
        self
    }

    /// The source ports the probes use.
    pub fn ports(&self) -> SourcePorts {
        SourcePorts { lo: self.sport_lo, hi: (u32::from(self.sport_lo) + self.sport_count - 1) as u16 }
    }

    /// Whether the ports are the default range, which the send loop's fast path assumes.
    pub fn default_ports(&self) -> bool {
        self.sport_lo == SPORT_LO && self.sport_count == SPORT_COUNT
    }

    /// The secret derived from a scan seed: the same seed gives the same probes, which is what
    /// makes a scan reproducible and resumable.
    pub fn from_seed(seed: u64) -> Validator {
        let kdf = SipHasher13::new_with_keys(0x6d70_7363_616e_2d76, 0x616c_6964_6174_696f); // "mpscan-validatio"
        let h = kdf.hash(&seed.to_be_bytes());
        let mut secret = [0u8; 16];
        secret[..8].copy_from_slice(&h.h1.to_le_bytes());
        secret[8..].copy_from_slice(&h.h2.to_le_bytes());
        Validator::new(secret)
    }

    /// The tag of the probe from `src` to `dst:port` with version `v`.
    #[inline]
    pub fn tag(&self, src: IpAddr, dst: IpAddr, port: u16, v: ProbeVersion) -> ProbeTag {
        if let (IpAddr::V4(s), IpAddr::V4(d)) = (src, dst) {
            return self.tag_v4(s.octets(), d.octets(), port, v);
        }
        let mut buf = [0u8; 35];
        buf[..16].copy_from_slice(&to_v6(src));
        buf[16..32].copy_from_slice(&to_v6(dst));
        buf[32..34].copy_from_slice(&port.to_be_bytes());
        buf[34] = v as u8;
        let h = self.hasher.hash(&buf);
        self.tag_of(h.h1, h.h2)
    }

    /// The tag of an IPv4 probe (addresses as network-order octets): the same value as
    /// [`Validator::tag`], computed by a SipHash-1-3 specialised to the 11-byte message
    /// `src | dst | port | version` (one message word and the tail), without the generic
    /// streaming hasher's buffering. This is the send loop's hot path (inlined into it).
    #[inline(always)]
    pub fn tag_v4(&self, src: [u8; 4], dst: [u8; 4], port: u16, v: ProbeVersion) -> ProbeTag {
        let (h1, h2) = self.hash_v4(src, dst, port, v);
        self.tag_of(h1, h2)
    }

    /// [`Validator::tag_v4`] for a validator with the default source ports ([`default_ports`]),
    /// with the range as constants: the send loop's path for a scan without `--source-port`.
    ///
    /// [`default_ports`]: Validator::default_ports
    #[inline]
    pub fn tag_v4_default_ports(&self, src: [u8; 4], dst: [u8; 4], port: u16, v: ProbeVersion) -> ProbeTag {
        let (h1, h2) = self.hash_v4(src, dst, port, v);
        tag_default_ports(h1, h2)
    }

    #[inline(always)]
    fn hash_v4(&self, src: [u8; 4], dst: [u8; 4], port: u16, v: ProbeVersion) -> (u64, u64) {
        let m0 = u64::from_le_bytes([src[0], src[1], src[2], src[3], dst[0], dst[1], dst[2], dst[3]]);
        let p = port.to_be_bytes();
        let tail = u64::from(p[0]) | u64::from(p[1]) << 8 | (v as u64) << 16;
        sip13_v4(self.init, m0, tail)
    }

    /// The per-probe values taken from the two 64-bit halves of the hash, the source port in
    /// this validator's range.
    ///
    /// The port is `lo + (y * count) >> 16`, `y` the 16 bits 32-47 of `h1` rotated left by one
    /// (bit 47 lowest): a multiply-shift over bits no other value takes whole (the sequence
    /// number is bits 0-31, the TSval starts at bit 48), chosen so that the default range
    /// (count 32768) gives `32768 + bits 32-46`, the ports of every earlier version.
    #[inline(always)]
    fn tag_of(&self, h1: u64, h2: u64) -> ProbeTag {
        let y = ((h1 >> 32) as u16).rotate_left(1) as u32;
        ProbeTag {
            sport: self.sport_lo.wrapping_add(((y * self.sport_count) >> 16) as u16),
            ..tag_default_ports(h1, h2)
        }
    }
}

/// The per-probe values taken from the two 64-bit halves of the hash, with the default
/// source-port range ([`SPORT_LO`]..=[`SPORT_HI`]).
#[inline(always)]
fn tag_default_ports(h1: u64, h2: u64) -> ProbeTag {
    ProbeTag {
        seq: h1 as u32,
        sport: SPORT_LO + (((h1 >> 32) as u32 & 0xffff) % SPORT_COUNT) as u16,
        tsval: (h1 >> 48) as u32 | ((h2 as u32) << 16),
        key: h2.rotate_left(16) ^ h1,
    }
}

/// Which of `n` sources (of the probe's family, `n` >= 1) the probe with `tag` leaves from:
/// a multiply-shift of the high 32 bits of the v0 key, which the other per-probe values do
/// not use whole. With one source, always 0. The sender and the receiver both call this.
#[inline(always)]
pub fn source_index(tag: &ProbeTag, n: usize) -> usize {
    (((tag.key >> 32) * n as u64) >> 32) as usize
}

/// One SipRound.
#[inline(always)]
fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

/// SipHash-1-3 with 128-bit output of an 11-byte message: word `m0` (bytes 0-7, little endian)
/// and the 3 tail bytes in `tail`, from the keyed initial state `v`.
#[inline(always)]
fn sip13_v4(mut v: [u64; 4], m0: u64, tail: u64) -> (u64, u64) {
    v[3] ^= m0;
    sip_round(&mut v);
    v[0] ^= m0;
    let b = 11u64 << 56 | tail;
    v[3] ^= b;
    sip_round(&mut v);
    v[0] ^= b;
    v[2] ^= 0xee;
    sip_round(&mut v);
    sip_round(&mut v);
    sip_round(&mut v);
    let h1 = v[0] ^ v[1] ^ v[2] ^ v[3];
    v[1] ^= 0xdd;
    sip_round(&mut v);
    sip_round(&mut v);
    sip_round(&mut v);
    (h1, v[0] ^ v[1] ^ v[2] ^ v[3])
}

fn to_v6(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn deterministic_per_seed() {
        let a = Validator::from_seed(1).tag(ip("192.0.2.2"), ip("198.18.0.1"), 443, ProbeVersion::V1);
        let b = Validator::from_seed(1).tag(ip("192.0.2.2"), ip("198.18.0.1"), 443, ProbeVersion::V1);
        let c = Validator::from_seed(2).tag(ip("192.0.2.2"), ip("198.18.0.1"), 443, ProbeVersion::V1);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn every_input_matters() {
        let v = Validator::from_seed(7);
        let base = v.tag(ip("192.0.2.2"), ip("198.18.0.1"), 443, ProbeVersion::V1);
        let others = [
            v.tag(ip("192.0.2.3"), ip("198.18.0.1"), 443, ProbeVersion::V1),
            v.tag(ip("192.0.2.2"), ip("198.18.0.2"), 443, ProbeVersion::V1),
            v.tag(ip("192.0.2.2"), ip("198.18.0.1"), 80, ProbeVersion::V1),
            v.tag(ip("192.0.2.2"), ip("198.18.0.1"), 443, ProbeVersion::V0),
            v.tag(ip("2001:db8::2"), ip("2001:db8::1"), 443, ProbeVersion::V1),
        ];
        for o in others {
            assert_ne!(o.seq, base.seq);
            assert_ne!(o.key, base.key);
        }
    }

    #[test]
    fn ipv4_fast_path_equals_the_generic_siphash() {
        for seed in [0u64, 1, 0xdead_beef] {
            let v = Validator::from_seed(seed);
            for i in 0..5000u32 {
                let (s, d) = (i.wrapping_mul(2_654_435_761), i.wrapping_mul(40_503) ^ 0xc612_0000);
                let port = (i.wrapping_mul(7919) & 0xffff) as u16;
                for ver in [ProbeVersion::V0, ProbeVersion::V1] {
                    let mut buf = [0u8; 11];
                    buf[..4].copy_from_slice(&s.to_be_bytes());
                    buf[4..8].copy_from_slice(&d.to_be_bytes());
                    buf[8..10].copy_from_slice(&port.to_be_bytes());
                    buf[10] = ver as u8;
                    let h = v.hasher.hash(&buf);
                    let fast = v.tag_v4(s.to_be_bytes(), d.to_be_bytes(), port, ver);
                    assert_eq!(fast, v.tag_of(h.h1, h.h2), "seed {seed} i {i}");
                    assert_eq!(fast, v.tag_v4_default_ports(s.to_be_bytes(), d.to_be_bytes(), port, ver));
                    assert_eq!(fast, v.tag(IpAddr::V4(s.into()), IpAddr::V4(d.into()), port, ver));
                }
            }
        }
    }

    #[test]
    fn source_ports_stay_in_range_and_spread() {
        let v = Validator::from_seed(3);
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000u32 {
            let t = v.tag(ip("192.0.2.2"), IpAddr::V4(i.into()), 443, ProbeVersion::V1);
            assert!((SPORT_LO..=SPORT_HI).contains(&t.sport));
            seen.insert(t.sport);
        }
        // 10,000 draws from 32,768 ports: about 8,600 distinct if uniform.
        assert!(seen.len() > 8_000, "{} distinct ports", seen.len());
    }

    #[test]
    fn the_default_range_gives_the_ports_of_the_constant_formula() {
        // tag_of (any range) and tag_default_ports (the constants) agree on the default range,
        // so a scan without --source-port probes from the same ports as before the option.
        let v = Validator::from_seed(11);
        assert!(v.default_ports() && v.clone().with_ports(SourcePorts::DEFAULT).default_ports());
        for i in 0..200_000u64 {
            let (h1, h2) = (i.wrapping_mul(0x9e37_79b9_7f4a_7c15), i.wrapping_mul(0xc2b2_ae3d_27d4_eb4f));
            assert_eq!(v.tag_of(h1, h2), tag_default_ports(h1, h2), "{h1:#x}");
        }
    }

    #[test]
    fn source_ports_stay_in_a_given_range_and_cover_it() {
        for (lo, hi) in [(40000u16, 40009u16), (1, 1), (1024, 65535), (61000, 65535), (5000, 5000)] {
            let ports = SourcePorts { lo, hi };
            let v = Validator::from_seed(4).with_ports(ports);
            assert_eq!(v.ports(), ports);
            assert_eq!(v.default_ports(), ports == SourcePorts::DEFAULT);
            let mut seen = std::collections::HashSet::new();
            for i in 0..20_000u32 {
                let t = v.tag(ip("192.0.2.2"), IpAddr::V4(i.into()), 443, ProbeVersion::V1);
                assert!(ports.contains(t.sport), "{} outside {ports}", t.sport);
                let t6 = v.tag(ip("2001:db8::2"), IpAddr::V6((i as u128).into()), 80, ProbeVersion::V0);
                assert!(ports.contains(t6.sport), "{} outside {ports}", t6.sport);
                seen.insert(t.sport);
            }
            if ports.count() <= 10 {
                assert_eq!(seen.len() as u32, ports.count(), "{ports}: every port used");
            }
        }
    }

    #[test]
    fn source_index_is_deterministic_covers_every_source_and_is_uniform() {
        let v = Validator::from_seed(9);
        for n in [1usize, 2, 3, 7, 256] {
            let mut hits = vec![0u32; n];
            for i in 0..(n as u32 * 2000) {
                let t = v.tag(ip("192.0.2.2"), IpAddr::V4((0xc612_0000 + i).into()), 443, ProbeVersion::V1);
                let k = source_index(&t, n);
                assert!(k < n);
                assert_eq!(
                    k,
                    source_index(
                        &v.tag(ip("192.0.2.2"), IpAddr::V4((0xc612_0000 + i).into()), 443, ProbeVersion::V1),
                        n
                    )
                );
                hits[k] += 1;
            }
            // 2000 draws per source on average: every source within +-15% of it.
            for (k, h) in hits.iter().enumerate() {
                assert!((1700..=2300).contains(h), "n {n}: source {k} drawn {h} times");
            }
        }
        // The same seed picks the same sources; another seed others.
        let picks = |seed| -> Vec<usize> {
            let v = Validator::from_seed(seed);
            (0..64u32)
                .map(|i| source_index(&v.tag(ip("192.0.2.2"), IpAddr::V4(i.into()), 443, ProbeVersion::V1), 4))
                .collect()
        };
        assert_eq!(picks(1), picks(1));
        assert_ne!(picks(1), picks(2));
    }
}
