//! What `--pcap` costs the receive path per frame, without the machine's load: N answers
//! recorded as the receive loop records them (the wall clock read once, a 16-byte record header
//! and the frame into the recording's buffered file, here `/dev/null`), for
//! `valgrind --tool=callgrind` at N and 2N (the difference divided by N is the instructions per
//! recorded frame; set-up cancels). With `plain` as the second argument it only reads the clock
//! per frame, which the receive loop does without `--pcap` too, for each row it writes.
//!
//! ```text
//! valgrind --tool=callgrind target/release/examples/pcap_bench 100000   (and 200000)
//! ```
use mpscan::net::PcapWriter;
use std::time::SystemTime;

fn main() {
    let n: u64 = std::env::args().nth(1).unwrap().parse().unwrap();
    let plain = std::env::args().nth(2).as_deref() == Some("plain");
    // A SYN-ACK with MSS and MP_CAPABLE: 78 bytes, about what an answer is.
    let frame = [0x5au8; 78];
    let out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create("/dev/null").unwrap());
    let mut w = PcapWriter::new(out).unwrap();
    let mut t = 0u64;
    for _ in 0..n {
        let at = std::hint::black_box(SystemTime::now());
        if plain {
            t = t.wrapping_add(at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().subsec_nanos() as u64);
        } else {
            w.record(at, std::hint::black_box(&frame)).unwrap();
        }
    }
    w.into_inner().unwrap();
    println!("{t}");
}
