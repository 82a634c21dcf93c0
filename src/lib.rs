//! mpscan: an Internet-wide Multipath TCP deployment scanner.
//!
//! The crate reads bottom-up, one module per idea:
//!
//! * [`wire`]: zero-copy, checked views of Ethernet, IPv4, TCP (with MP_CAPABLE) and ICMP packets,
//!   plus small owned `Repr`s that parse and emit them. Everything that touches bytes from the
//!   network goes through here.
//! * [`targets`]: what to scan: target lists, block/allow lists, and the keyed cyclic permutation
//!   that orders (address, port) pairs and splits them into shards.
//! * [`validate`]: the per-scan secret and the keyed hash that makes the scan stateless (sequence
//!   number, source port, v0 key and timestamp of every probe are recomputed, never stored).
//! * [`probe`]: the MP_CAPABLE SYN probe: a frame template built once, patched per target.
//! * [`classify`]: what a validated response means (`mptcp`, `echo`, `malformed`, `tcp`, ...).
//! * [`net`]: the operating system: routes, neighbours, AF_PACKET sockets.
//! * [`scan`]: the pipeline: configuration, the send loop, the receive loop, deduplication,
//!   the monitor.
//! * [`output`]: result rows, CSV and metadata JSON.
//! * [`verify`]: the second stage: real MPTCP connections (the kernel's stack) to the scan's
//!   candidates, an HTTP/TLS exchange, fallback and ADD_ADDR detection, a verdict per row.
//! * [`lab`]: the mini-internet of namespaces used by tests, benchmarks and the demo.
#![deny(unsafe_code)]

pub mod classify;
pub mod lab;
pub mod net;
pub mod output;
pub mod probe;
pub mod response;
pub mod scan;
pub mod targets;
pub mod trace;
pub mod validate;
pub mod verify;
pub mod wire;
