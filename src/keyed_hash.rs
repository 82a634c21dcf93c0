//! Stateless validation: a per-scan secret and the keyed hash that derives every per-probe
//! value, so that the receiver recognises its own probes' answers without remembering them.
//!
//! For a probe from `src` to `dst:port` with MP_CAPABLE version `v`, SipHash-1-3 (128-bit
//! output) keyed by the secret over `(src, dst, port, v)` gives:
//!
//! * the TCP sequence number (32 bits): a SYN-ACK is ours only if it acknowledges `seq + 1`;
//! * the source port (in [`SPORT_LO`]..=[`SPORT_HI`]): the answer must come back to it;
//! * the TSval of the timestamps option (32 bits): lets the classifier tell whether a box sent
//!   our clock back as its own (a mirror) rather than in TSecr;
//! * the v0 key (64 bits): a different key per probe, so that our own key coming back is an echo
//!   and cannot be mistaken for a server's.
//!
//! The version is part of the hash, so the v0 and v1 probes of a `both` scan are two distinct
//! connections (different source ports and sequence numbers) and their answers are told apart.

use crate::probe::{ProbeTag, ProbeVersion};
use siphasher::sip128::SipHasher13;
use std::net::IpAddr;

/// Lowest source port a probe uses.
pub const SPORT_LO: u16 = 32768;
/// Highest source port a probe uses (the range zmap uses by default ends at 61000; ours runs to
/// 65535 to spread probes over more ports).
pub const SPORT_HI: u16 = 65535;
const SPORT_COUNT: u32 = (SPORT_HI - SPORT_LO) as u32 + 1;

/// The per-scan secret and the hash built on it.
#[derive(Clone)]
pub struct Validator {
    hasher: SipHasher13,
    /// SipHash's initial state for this key (`v0..v3`), for the IPv4 fast path [`sip13_v4`].
    init: [u64; 4],
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
        Validator { hasher: SipHasher13::new_with_key(&secret), init }
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
        tag_of(h.h1, h.h2)
    }

    /// The tag of an IPv4 probe (addresses as network-order octets): the same value as
    /// [`Validator::tag`], computed by a SipHash-1-3 specialised to the 11-byte message
    /// `src | dst | port | version` (one message word and the tail), without the generic
    /// streaming hasher's buffering. This is the send loop's hot path.
    #[inline]
    pub fn tag_v4(&self, src: [u8; 4], dst: [u8; 4], port: u16, v: ProbeVersion) -> ProbeTag {
        let m0 = u64::from_le_bytes([src[0], src[1], src[2], src[3], dst[0], dst[1], dst[2], dst[3]]);
        let p = port.to_be_bytes();
        let tail = u64::from(p[0]) | u64::from(p[1]) << 8 | (v as u64) << 16;
        let (h1, h2) = sip13_v4(self.init, m0, tail);
        tag_of(h1, h2)
    }
}

/// The per-probe values taken from the two 64-bit halves of the hash.
#[inline]
fn tag_of(h1: u64, h2: u64) -> ProbeTag {
    ProbeTag {
        seq: h1 as u32,
        sport: SPORT_LO + (((h1 >> 32) as u32 & 0xffff) % SPORT_COUNT) as u16,
        tsval: (h1 >> 48) as u32 | ((h2 as u32) << 16),
        key: h2.rotate_left(16) ^ h1,
    }
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
                    assert_eq!(fast, tag_of(h.h1, h.h2), "seed {seed} i {i}");
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
}
