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

use crate::probe::ProbeVersion;
use siphasher::sip128::SipHasher13;
use std::net::IpAddr;

/// Lowest source port a probe uses.
pub const SPORT_LO: u16 = 32768;
/// Highest source port a probe uses (the range zmap uses by default ends at 61000; ours runs to
/// 65535 to spread probes over more ports).
pub const SPORT_HI: u16 = 65535;
const SPORT_COUNT: u32 = (SPORT_HI - SPORT_LO) as u32 + 1;

/// What the hash gives for one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTag {
    /// Our initial sequence number.
    pub seq: u32,
    /// Our source port.
    pub sport: u16,
    /// Our TSval.
    pub tsval: u32,
    /// Our v0 MP_CAPABLE key.
    pub key: u64,
}

/// The per-scan secret and the hash built on it.
#[derive(Clone)]
pub struct Validator {
    hasher: SipHasher13,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Validator { .. }")
    }
}

impl Validator {
    /// A validator keyed by a 128-bit secret.
    pub fn new(secret: [u8; 16]) -> Validator {
        Validator { hasher: SipHasher13::new_with_key(&secret) }
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
        let mut buf = [0u8; 35];
        let n = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                buf[..4].copy_from_slice(&s.octets());
                buf[4..8].copy_from_slice(&d.octets());
                8
            }
            _ => {
                buf[..16].copy_from_slice(&to_v6(src));
                buf[16..32].copy_from_slice(&to_v6(dst));
                32
            }
        };
        buf[n..n + 2].copy_from_slice(&port.to_be_bytes());
        buf[n + 2] = v as u8;
        let h = self.hasher.hash(&buf[..n + 3]);
        ProbeTag {
            seq: h.h1 as u32,
            sport: SPORT_LO + (((h.h1 >> 32) as u32 & 0xffff) % SPORT_COUNT) as u16,
            tsval: (h.h1 >> 48) as u32 | ((h.h2 as u32) << 16),
            key: h.h2.rotate_left(16) ^ h.h1,
        }
    }
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
