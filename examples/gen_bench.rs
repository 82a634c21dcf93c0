//! Cost of the probe generation path alone: permutation cursor, target lookup, validation hash,
//! frame build from the template, driven through the real [`send_loop`] into a transmit back end
//! that discards every frame. No socket, no root.
//!
//! ```text
//! cargo run --release --example gen_bench -- [PROBES] [TARGET] [PORTS] [REPEAT] [SOURCES]
//! # defaults: 20000000 0.0.0.0/0 443 3 1   (the default blocklist applies)
//! ```
//!
//! `SOURCES` > 1 sends from that many IPv4 sources (192.0.2.2 upwards, as `-S` would), the send
//! loop's spreading path.
//!
//! Prints, per repetition, probes, wall seconds and probes per second. `scripts/bench` runs it for
//! wall time and under `valgrind --tool=callgrind` (with two probe counts, so that the set-up cost
//! cancels) for instructions per probe, which are repeatable where seconds are not.

use mpscan::keyed_hash::Validator;
use mpscan::net::{Transmit, TxStats};
use mpscan::probe::{Link, ProbeBuilder, ProbeVersion, MAX_FRAME_LEN};
use mpscan::scan::counters::Counters;
use mpscan::scan::send::{send_loop, ProbeStream};
use mpscan::sources::Sources;
use mpscan::targets::{BlockSource, TargetSpace, TargetSpec};
use std::net::Ipv4Addr;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// A transmit back end that offers one reusable slot and forgets every frame, so that only the
/// generation path is measured. It folds one byte of each frame into a checksum that is printed,
/// so the compiler cannot drop the frame writes.
struct NullTx {
    slot: [u8; 256],
    queued: u64,
    fold: u64,
}

impl Transmit for NullTx {
    fn send_batch(&mut self, n: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize) -> std::io::Result<usize> {
        let mut q = 0;
        for _ in 0..n {
            let len = fill(&mut self.slot);
            if len == 0 {
                break;
            }
            // The TCP checksum (bytes 50-51 of an IPv4 frame) depends on every per-probe field.
            self.fold = self.fold.wrapping_add(u16::from_be_bytes([self.slot[50], self.slot[51]]) as u64);
            q += 1;
        }
        self.queued += q as u64;
        Ok(q)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    fn stats(&self) -> TxStats {
        TxStats { queued: self.queued, sent: self.queued, ..TxStats::default() }
    }
}

/// CPU time of the calling thread: on a machine shared with other work, probes per CPU-second
/// is the figure that says what one core can do; wall time is printed beside it.
fn thread_cpu_secs() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `ts`.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let probes: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(20_000_000);
    let target = args.get(1).cloned().unwrap_or_else(|| "0.0.0.0/0".into());
    let ports = args.get(2).cloned().unwrap_or_else(|| "443".into());
    let repeat: u32 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(3);
    let n_sources: u32 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(1).clamp(1, 4096);
    let targets = [target.clone()];
    let spec = TargetSpec {
        targets: &targets,
        ports: &ports,
        blocklist: BlockSource::Default,
        allowlist: None,
        allow_unblocked_full_space: false,
    };
    let space = match TargetSpace::build(&spec) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gen_bench: {e}");
            std::process::exit(1);
        }
    };
    let link = Link {
        src_mac: [2, 0, 0, 0, 0, 2],
        dst_mac: [2, 0, 0, 0, 0, 1],
        src_v4: Some(Ipv4Addr::new(192, 0, 2, 2)),
        src_v6: None,
    };
    let versions = [ProbeVersion::V1];
    let sources = Sources { v4: (0..n_sources).map(|i| Ipv4Addr::from(0xc000_0202 + i)).collect(), v6: Vec::new() };
    let builder = ProbeBuilder::with_sources(&link, &sources, &versions);
    let validator = Validator::from_seed(42);
    let perm = space.permutation(42);
    const { assert!(MAX_FRAME_LEN <= 256) };
    for r in 0..repeat {
        let cursor = perm.cursor(0, 1, 0, 1, 0).expect("one shard, one thread").limit(probes);
        let mut stream = ProbeStream::new(&space, cursor, &builder, &validator, &versions, 1, &link);
        let counters = Counters::default();
        let mut tx = NullTx { slot: [0; 256], queued: 0, fold: 0 };
        let (start, cpu0) = (Instant::now(), thread_cpu_secs());
        send_loop(&mut tx, &mut stream, 0, &counters, &AtomicBool::new(false), 0).expect("no I/O");
        let (secs, cpu) = (start.elapsed().as_secs_f64(), thread_cpu_secs() - cpu0);
        let n = tx.queued as f64;
        println!(
            "run {r}: {} probes of {target} port {ports}: wall {secs:.3} s = {:.2} Mprobes/s; CPU {cpu:.3} s = {:.2} Mprobes/s per core ({:.1} ns/probe) [fold {}]",
            tx.queued,
            n / secs / 1e6,
            n / cpu / 1e6,
            cpu * 1e9 / n,
            tx.fold
        );
    }
}
