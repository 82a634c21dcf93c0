//! The receive stage's cost without the machine's load: N validations of one SYN-ACK by
//! `mpscan::accept::Context::parse` (the scan's path), for `valgrind --tool=callgrind` at N and 2N
//! (the difference divided by N is the instructions per answer; set-up cancels).
//!
//! ```text
//! valgrind --tool=callgrind target/release/examples/accept_bench 100000   (and 200000)
//! ```
use mpscan::accept::Context;
use mpscan::keyed_hash::Validator;
use mpscan::probe::ProbeVersion;
use mpscan::wire::{FrameRepr, TcpFlags, TcpRepr};
use std::net::Ipv4Addr;
fn main() {
    let n: u64 = std::env::args().nth(1).unwrap().parse().unwrap();
    let us = Ipv4Addr::new(192, 0, 2, 2);
    let t = Ipv4Addr::new(198, 18, 0, 1);
    let c = Context::one_source(Validator::from_seed(5), Some(us), None, vec![ProbeVersion::V1]);
    let tag = c.validator.tag(us.into(), t.into(), 443, ProbeVersion::V1);
    let tcp = TcpRepr {
        src_port: 443,
        dst_port: tag.sport,
        seq: 7,
        ack: tag.seq.wrapping_add(1),
        flags: TcpFlags(0x12),
        window: 29200,
        options: &[],
        payload: &[],
    };
    let f = FrameRepr::tcp(t.into(), us.into(), 57, tcp).to_vec();
    let mut ok = 0u64;
    for _ in 0..n {
        ok += std::hint::black_box(c.parse(std::hint::black_box(&f))).is_ok() as u64;
    }
    println!("{ok}");
}
