//! One row per (target, port, probe version), however many answers arrive.
//!
//! IPv4 uses one bit per address per (port, version): a 512 MiB anonymous mapping reserved on the
//! first answer, whose pages the kernel backs with memory only when a bit in them is first set.
//! A full-IPv4 single-port scan in which every address answers costs exactly 512 MiB, a /16 scan
//! 8 KiB, and no page directory is needed (the page tables are the kernel's). Where an
//! address-space limit refuses the reservation, a set of the addresses seen takes its place.
//! IPv6 targets come from hitlists, so a hash set of what was seen suffices.
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
    /// The mapping, `MAP_BYTES / 8` words (none until the first insert, or if it was refused).
    words: Option<std::ptr::NonNull<u64>>,
    /// Where the kernel refused the 512 MiB reservation (an address-space limit, `ulimit -v`): a
    /// set of the addresses seen, which grows with the answers but keeps the filter exact.
    fallback: Option<HashSet<u32>>,
}

// The mapping is owned by this value alone, like a Box.
unsafe impl Send for LazyBitmap {}

impl LazyBitmap {
    /// Sets the bit of `addr`; returns whether it was clear before.
    pub fn insert(&mut self, addr: u32) -> bool {
        if let Some(words) = self.words {
            let (w, m) = ((addr / 64) as usize, 1u64 << (addr % 64));
            // SAFETY: w < 2^26 = MAP_BYTES / 8, inside the mapping, which only this value touches.
            let word = unsafe { &mut *words.as_ptr().add(w) };
            let fresh = *word & m == 0;
            *word |= m;
            return fresh;
        }
        self.insert_slow(addr)
    }

    /// The first insert (which reserves the mapping) and the fallback set.
    #[cold]
    fn insert_slow(&mut self, addr: u32) -> bool {
        if self.fallback.is_none() {
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
            match std::ptr::NonNull::new(p.cast::<u64>()) {
                Some(words) if p != libc::MAP_FAILED => {
                    self.words = Some(words);
                    return self.insert(addr);
                }
                _ => self.fallback = Some(HashSet::new()),
            }
        }
        self.fallback.as_mut().is_some_and(|set| set.insert(addr))
    }

    /// Whether the kernel refused the mapping and the fallback set is in use.
    #[cfg(test)]
    fn is_fallback(&self) -> bool {
        self.fallback.is_some()
    }

    /// Bytes of the bitmap that are resident (the kernel's count, from `mincore`): what the
    /// filter costs in memory. For tests and benchmarks; it walks the whole mapping.
    pub fn resident_bytes(&self) -> usize {
        if let Some(set) = &self.fallback {
            return set.capacity() * std::mem::size_of::<u32>();
        }
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
            // SAFETY: the mapping made in `insert_slow`, unmapped once.
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

    /// The fallback when the 512 MiB reservation is refused: run this test again in a child
    /// process whose address space is limited to 256 MiB, where the mapping must fail and the
    /// filter must stay exact.
    #[test]
    fn exact_without_the_reservation() {
        if std::env::var_os("MPSCAN_DEDUP_CHILD").is_some() {
            let mut m = LazyBitmap::default();
            for a in (0..200_000u32).map(|i| i.wrapping_mul(2_654_435_761)) {
                assert!(m.insert(a), "{a}");
                assert!(!m.insert(a), "{a}");
            }
            assert!(m.is_fallback(), "the reservation should have been refused");
            return;
        }
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", "scan::dedup::tests::exact_without_the_reservation", "--test-threads=1"]);
        cmd.env("MPSCAN_DEDUP_CHILD", "1");
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit { rlim_cur: 256 << 20, rlim_max: 256 << 20 };
                if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("1 passed"),
            "child: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
