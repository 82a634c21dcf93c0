//! Memory of the duplicate filter in the worst case: a full-IPv4 single-port scan in which every
//! address answers. Inserts every IPv4 address (or one per 32 Ki-address page with `--pages`,
//! which makes the same pages resident in a fraction of the time) into the receiver's
//! [`LazyBitmap`] and prints what it allocated and the process's peak resident memory.
//!
//! ```text
//! cargo run --release --example dedup_mem [-- --pages]
//! ```

use mpscan::scan::dedup::LazyBitmap;
use std::time::Instant;

/// A field of /proc/self/status, in KiB.
fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let pages_only = std::env::args().any(|a| a == "--pages");
    let before = status_kib("VmRSS:");
    let start = Instant::now();
    let mut m = LazyBitmap::default();
    let mut fresh = 0u64;
    if pages_only {
        for page in 0..(1u32 << 17) {
            fresh += m.insert(page << 15) as u64;
        }
    } else {
        for a in 0..=u32::MAX {
            fresh += m.insert(a) as u64;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} addresses inserted ({}) in {secs:.1} s: bitmap resident {} bytes = {:.2} MiB; process RSS before {:.1} MiB, peak {:.1} MiB",
        fresh,
        if pages_only { "one per page" } else { "every IPv4 address" },
        m.resident_bytes(),
        m.resident_bytes() as f64 / (1 << 20) as f64,
        before as f64 / 1024.0,
        status_kib("VmHWM:") as f64 / 1024.0
    );
}
