//! One row per (target, port, probe version), however many answers arrive.
//!
//! IPv4 uses one bit per address per (port, version): a 512 MiB anonymous mapping reserved on the
//! first answer, whose pages the kernel backs with memory only when a bit in them is first set.
//! A full-IPv4 single-port scan in which every address answers costs exactly 512 MiB, a /16 scan
//! 8 KiB, and no page directory is needed (the page tables are the kernel's). IPv6 targets come
//! from hitlists, so a hash set of what was seen suffices.
// The one unsafe part: mapping, indexing and unmapping the bitmap (bounds are checked by type).
#![allow(unsafe_code)]

use crate::probe::ProbeVersion;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

/// Bytes of a bitmap over the whole IPv4 space.
const MAP_BYTES: usize = 1 << 29;

/// A bitmap over the IPv4 space, lazily backed by the kernel: reserving it costs address space,
/// not memory; each 4 KiB page (32,768 addresses) becomes resident when first written.
#[derive(Debug, Default)]
pub struct LazyBitmap {
    /// The mapping (none until the first insert), `MAP_BYTES / 8` words.
    words: Option<std::ptr::NonNull<u64>>,
}

// The mapping is owned by this value alone, like a Box.
unsafe impl Send for LazyBitmap {}

impl LazyBitmap {
    /// Sets the bit of `addr`; returns whether it was clear before. Panics only if the kernel
    /// refuses to reserve 512 MiB of address space (no memory is committed by the reservation).
    pub fn insert(&mut self, addr: u32) -> bool {
        let words = *self.words.get_or_insert_with(|| {
            // SAFETY: a fresh private anonymous mapping; MAP_NORESERVE so that it commits no swap.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    MAP_BYTES,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            assert!(p != libc::MAP_FAILED, "cannot reserve 512 MiB of address space for the duplicate filter");
            std::ptr::NonNull::new(p.cast::<u64>()).expect("mmap returned null")
        });
        let (w, m) = ((addr / 64) as usize, 1u64 << (addr % 64));
        // SAFETY: w < 2^26 = MAP_BYTES / 8, inside the mapping, which only this value touches.
        let word = unsafe { &mut *words.as_ptr().add(w) };
        let fresh = *word & m == 0;
        *word |= m;
        fresh
    }

    /// Bytes of the bitmap that are resident (the kernel's count, from `mincore`): what the
    /// filter costs in memory. For tests and benchmarks; it walks the whole mapping.
    pub fn resident_bytes(&self) -> usize {
        let Some(p) = self.words else { return 0 };
        let page = 4096;
        let mut vec = vec![0u8; MAP_BYTES / page];
        // SAFETY: the mapping is MAP_BYTES long and page-aligned; vec has one byte per page.
        let r = unsafe { libc::mincore(p.as_ptr().cast(), MAP_BYTES, vec.as_mut_ptr()) };
        assert_eq!(r, 0, "mincore: {}", std::io::Error::last_os_error());
        vec.iter().filter(|b| *b & 1 != 0).count() * page
    }
}

impl Drop for LazyBitmap {
    fn drop(&mut self) {
        if let Some(p) = self.words {
            // SAFETY: the mapping made in `insert`, unmapped once.
            unsafe { libc::munmap(p.as_ptr().cast(), MAP_BYTES) };
        }
    }
}

/// The duplicate filter of a scan.
#[derive(Debug, Default)]
pub struct Dedup {
    v4: HashMap<(u16, ProbeVersion), LazyBitmap>,
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
        let mut m = LazyBitmap::default();
        assert_eq!(m.resident_bytes(), 0);
        for a in [0u32, 1, 63, 64, 65535, 65536, u32::MAX - 1, u32::MAX] {
            assert!(m.insert(a), "{a}");
            assert!(!m.insert(a), "{a}");
        }
        // 4 KiB pages touched: the first (0..32767), the second (65535 is in 32768..65535), the
        // third (65536) and the last.
        assert_eq!(m.resident_bytes(), 4 * 4096);
        assert!(m.insert(32768) && m.resident_bytes() == 4 * 4096, "same page as 65535");
    }
}
