//! The send path alone on a real interface: [`send_loop`] over a /15 × 16 ports through an
//! [`AfPacketTx`] of a chosen ring shape, with no receiver, monitor or output. For tuning the
//! transmit ring: prints wall time, the process's user and system CPU time and packets per
//! CPU-second, which on a shared machine say more than the wall-clock rate.
//!
//! ```text
//! ip netns exec NS target/release/examples/tx_bench IFACE GATEWAY_MAC [SLOTS] [SLOT_BYTES] [RATE] [novnet]
//! ```
//! Sends from 192.0.2.2 to 198.18.0.0/15, ports 80,443,8000-8013 (2,097,152 probes). Run it only
//! in a namespace whose link leads to a sink (scripts/bench builds one).

use mpscan::keyed_hash::Validator;
use mpscan::net::{AfPacketTx, Transmit, TxConfig};
use mpscan::probe::{Link, ProbeBuilder, ProbeVersion};
use mpscan::scan::counters::Counters;
use mpscan::scan::send::{send_loop, ProbeStream};
use mpscan::targets::{BlockSource, TargetSpace, TargetSpec};
use std::net::Ipv4Addr;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// User and system CPU seconds of this process so far.
fn cpu() -> (f64, f64) {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one rusage into the valid, exclusively borrowed `ru`.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
    (t(ru.ru_utime), t(ru.ru_stime))
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 2 {
        eprintln!("usage: tx_bench IFACE GATEWAY_MAC [SLOTS] [SLOT_BYTES] [RATE] [novnet]");
        std::process::exit(2);
    }
    let mac = mpscan::net::route::parse_mac(&a[1]).expect("gateway MAC aa:bb:cc:dd:ee:ff");
    let mut cfg = TxConfig::default();
    if let Some(n) = a.get(2).and_then(|s| s.parse().ok()) {
        cfg.frame_count = n;
    }
    if let Some(n) = a.get(3).and_then(|s| s.parse().ok()) {
        cfg.frame_size = n;
    }
    let rate: u64 = a.get(4).and_then(|s| s.parse().ok()).unwrap_or(0);
    if a.get(5).map(String::as_str) == Some("novnet") {
        cfg.vnet_hdr = false;
    }
    let targets = ["198.18.0.0/15".to_string()];
    let bl = std::env::temp_dir().join(format!("tx_bench-{}.txt", std::process::id()));
    std::fs::write(&bl, "192.0.2.0/24\n").unwrap();
    let space = TargetSpace::build(&TargetSpec {
        targets: &targets,
        ports: "80,443,8000-8013",
        blocklist: BlockSource::File(bl.clone()),
        allowlist: None,
        allow_unblocked_full_space: false,
    })
    .unwrap();
    let _ = std::fs::remove_file(&bl);
    let mut tx = AfPacketTx::open(&a[0], cfg).expect("open the transmit ring");
    let src_mac = std::fs::read_to_string(format!("/sys/class/net/{}/address", a[0])).unwrap_or_default();
    let link = Link {
        src_mac: mpscan::net::route::parse_mac(src_mac.trim()).unwrap_or([2, 0, 0, 0, 0, 2]),
        dst_mac: mac,
        src_v4: Some(Ipv4Addr::new(192, 0, 2, 2)),
        src_v6: None,
    };
    let versions = [ProbeVersion::V1];
    let builder = ProbeBuilder::new(&link, &versions);
    let validator = Validator::from_seed(1);
    let perm = space.permutation(1);
    let mut stream =
        ProbeStream::new(&space, perm.cursor(0, 1, 0, 1, 0).unwrap(), &builder, &validator, &versions, 1, &link);
    let counters = Counters::default();
    let (u0, s0) = cpu();
    let start = Instant::now();
    send_loop(&mut tx, &mut stream, rate, &counters, &AtomicBool::new(false), 0).expect("send");
    let secs = start.elapsed().as_secs_f64();
    let (u1, s1) = cpu();
    let n = Counters::get(&counters.sent) as f64;
    println!(
        "{} ({cfg:?}): {n} probes in {secs:.3} s wall = {:.0} pps; CPU user {:.3} s + sys {:.3} s = {:.0} probes per CPU-second; {:?}",
        tx.describe(),
        n / secs,
        u1 - u0,
        s1 - s0,
        n / (u1 - u0 + s1 - s0),
        tx.stats()
    );
}
