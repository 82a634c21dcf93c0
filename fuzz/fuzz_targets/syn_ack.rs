//! Structure-aware: the input is a recipe (see `harness::RECIPE_HEADER`) for an answer to one of
//! our probes (SYN-ACK, RST or ICMP, IPv4 or IPv6, v0 or v1) with the right acknowledgment, so it
//! validates, and the fuzzer's bytes become its TCP options, data offset and IP length.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mpscan_fuzz::harness;
use std::sync::OnceLock;

static CTX: OnceLock<mpscan::accept::Context> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let ctx = CTX.get_or_init(harness::context);
    harness::structured(ctx, data);
});
