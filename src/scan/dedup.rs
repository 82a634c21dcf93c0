//! One row per (target, port, probe version), however many answers arrive.
//!
//! IPv4 uses a bitmap per (port, version) over the 2^32 address space, allocated lazily in 8 KiB
//! pages: a full-IPv4 single-port scan costs at most 512 MiB plus a 512 KiB page directory, a /16
//! scan a few pages. IPv6 targets come from hitlists, so a hash set of what was seen suffices.

use crate::probe::ProbeVersion;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

const PAGE_BITS: u32 = 16;
const WORDS_PER_PAGE: usize = (1 << PAGE_BITS) / 64;

/// A bitmap over the IPv4 space whose pages are allocated on first use.
#[derive(Debug, Default)]
pub struct PagedBitmap {
    pages: Vec<Option<Box<[u64; WORDS_PER_PAGE]>>>,
}

impl PagedBitmap {
    /// Sets the bit of `addr`; returns whether it was clear before.
    pub fn insert(&mut self, addr: u32) -> bool {
        if self.pages.is_empty() {
            self.pages.resize_with(1 << (32 - PAGE_BITS), || None);
        }
        let page = self.pages[(addr >> PAGE_BITS) as usize].get_or_insert_with(|| Box::new([0; WORDS_PER_PAGE]));
        let bit = addr & ((1 << PAGE_BITS) - 1);
        let (w, m) = ((bit / 64) as usize, 1u64 << (bit % 64));
        let fresh = page[w] & m == 0;
        page[w] |= m;
        fresh
    }

    /// Bytes allocated.
    pub fn allocated_bytes(&self) -> usize {
        self.pages.len() * std::mem::size_of::<usize>() + self.pages.iter().flatten().count() * WORDS_PER_PAGE * 8
    }
}

/// The duplicate filter of a scan.
#[derive(Debug, Default)]
pub struct Dedup {
    v4: HashMap<(u16, ProbeVersion), PagedBitmap>,
    v6: HashSet<(u128, u16, ProbeVersion)>,
}

impl Dedup {
    /// Records (target, port, version); returns whether it is the first time.
    pub fn first(&mut self, target: IpAddr, port: u16, version: ProbeVersion) -> bool {
        match target {
            IpAddr::V4(a) => self.v4.entry((port, version)).or_default().insert(a.into()),
            IpAddr::V6(a) => self.v6.insert((a.into(), port, version)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_target_port_version() {
        let mut d = Dedup::default();
        let a: IpAddr = "198.18.0.1".parse().unwrap();
        assert!(d.first(a, 443, ProbeVersion::V1));
        assert!(!d.first(a, 443, ProbeVersion::V1));
        assert!(d.first(a, 443, ProbeVersion::V0));
        assert!(d.first(a, 80, ProbeVersion::V1));
        assert!(d.first("198.18.0.2".parse().unwrap(), 443, ProbeVersion::V1));
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(d.first(b, 443, ProbeVersion::V1));
        assert!(!d.first(b, 443, ProbeVersion::V1));
    }

    #[test]
    fn edges_of_the_space_and_lazy_pages() {
        let mut m = PagedBitmap::default();
        for a in [0u32, 1, 63, 64, 65535, 65536, u32::MAX - 1, u32::MAX] {
            assert!(m.insert(a), "{a}");
            assert!(!m.insert(a), "{a}");
        }
        // Pages touched: 0, 1 and the last one.
        assert_eq!(m.allocated_bytes(), 65536 * 8 + 3 * 8192);
    }
}
