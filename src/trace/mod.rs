//! `mpscan trace`: where on the path MPTCP is lost (issue 14), tracebox's method at scan scale.
//!
//! The scan's MP_CAPABLE SYN is sent with TTL (hop limit) `1..=--max-ttl` to every target, the
//! (target, port, TTL) triples in one keyed permutation. Each router's ICMP time exceeded quotes
//! the probe as the router received it; comparing the quotes hop by hop locates the box that
//! strips or changes the option. Validation stays stateless: the TTL is recovered from the quote
//! ([`encode`]).
//!
//! * [`encode`]: the TTL (and the send time) in the probe, recovered from quotes and answers.
//! * [`answer`]: a captured frame to a validated answer (router quote, SYN-ACK, RST) or a rejection.
//! * [`quote`]: what one quote says about our probe (MP_CAPABLE state, MSS, options, window,
//!   DSCP/ECN).
//! * [`recv`], [`rows`], [`run`]: the receiver the scan pipeline runs for a trace, its CSV rows, and
//!   `mpscan trace` itself.
//! * [`verdict`]: one verdict per target: where MP_CAPABLE was lost, or who answered on the path.

pub mod answer;
pub mod encode;
pub mod quote;
pub mod recv;
pub mod rows;
pub mod run;
pub mod verdict;

pub use run::{run, TraceArgs};

use std::sync::OnceLock;
use std::time::Instant;

/// The process's trace clock: send times in probes and receive times are milliseconds since it,
/// so the sender and receiver threads agree without sharing state.
pub fn clock() -> &'static Instant {
    static CLOCK: OnceLock<Instant> = OnceLock::new();
    CLOCK.get_or_init(Instant::now)
}

/// Milliseconds from `clock` to now, wrapping at 2^32 (49 days; RTTs are differences).
pub fn millis_since(clock: Instant) -> u32 {
    clock.elapsed().as_millis() as u32
}
