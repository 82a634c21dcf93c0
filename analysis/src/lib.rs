//! Study tables from mpscan result CSVs: the headline table of a scan, flag combinations of real
//! MPTCP servers, middlebox fingerprints, prefix and origin-AS breakdowns, scan-to-scan diffs,
//! charts, and a synthetic result generator for tests and benchmarks.
//!
//! Rows are streamed (never loaded): every command reads CSVs through the result schema's reader
//! (`mpscan_schema::reader`), which splits the files into byte ranges parsed in parallel.
#![forbid(unsafe_code)]

pub mod aliased;
pub mod cli;
pub mod diff;
pub mod enrich;
pub mod fingerprint;
pub mod hilbert;
pub mod icmp;
pub mod lines;
pub mod metadata;
pub mod pfx2as;
pub mod plots;
pub mod stacks;
pub mod summary;
pub mod synth;
pub mod table;
pub mod trace;
pub mod trend;
pub mod verified;
