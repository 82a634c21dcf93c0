//! mpscan: an Internet-wide Multipath TCP deployment scanner.
//!
//! The crate reads bottom-up, one module per idea:
//!
//! * [`wire`]: zero-copy, checked views of Ethernet, IPv4, IPv6, TCP (with MP_CAPABLE) and ICMP
//!   packets, plus small owned `Repr`s that parse and emit them (every frame is built from them). Everything that touches bytes from the
//!   network goes through here.
//! * [`targets`]: what to scan: target lists, block/allow lists, and the keyed cyclic permutation
//!   that orders (address, port) pairs and splits them into shards.
//! * [`keyed_hash`]: the per-scan secret and the keyed hash that makes the scan stateless (sequence
//!   number, source port, v0 key and timestamp of every probe are recomputed, never stored).
//! * [`sources`]: where probes come from: the source addresses of `-S` (several, ranges, prefixes)
//!   and the `--source-port` range.
//! * [`probe`]: the MP_CAPABLE SYN probe: a frame template built once, patched per target.
//! * [`accept`]: the receive side's acceptance stage: a captured frame becomes a validated response
//!   to one of our probes (recognised by the keyed hash alone), or a counted rejection.
//! * [`classify`]: what a validated response means (`mptcp`, `echo`, `malformed`, `tcp`, ...).
//! * [`net`]: the operating system: routes, neighbours, AF_PACKET sockets.
//! * [`scan`]: the pipeline: configuration, the send loop, the receive loop, deduplication,
//!   the monitor.
//! * [`output`]: result rows, CSV and metadata JSON.
//! * [`verify`]: the second stage: real MPTCP connections (the kernel's stack) to the scan's
//!   candidates, an HTTP/TLS exchange, fallback and ADD_ADDR detection, a verdict per row.
//! * [`lab`]: the mini-internet of namespaces used by tests, benchmarks and the demo.
#![deny(unsafe_code)]

pub mod accept;
pub mod classify;
pub mod keyed_hash;
pub mod lab;
pub mod net;
pub mod output;
pub mod probe;
pub mod reclassify;
pub mod scan;
pub mod sources;
pub mod targets;
pub mod trace;
pub mod verify;
pub mod wire;
