//! Raw bytes as a frame captured on the scanner's interface, through the whole receive path:
//! validation (or a counted rejection), classification, the result row and its CSV record.
//! Random bytes almost never validate: this target exercises the header walk and the rejection
//! reasons; `syn_ack` reaches the classifier.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mpscan_fuzz::harness;
use std::sync::OnceLock;

static CTX: OnceLock<mpscan::accept::Context> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let ctx = CTX.get_or_init(harness::context);
    harness::frame(ctx, data);
});
