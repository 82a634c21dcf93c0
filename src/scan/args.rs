//! What the user typed for `mpscan scan`, before it is checked and resolved into a finished
//! [`super::config::ScanConfig`]. Like every subcommand's arguments (`verify::VerifyArgs`,
//! `lab::LabArgs`, `output::merge::MergeArgs`), they live beside the code that runs them.
use crate::output::sink::OutputFormat;
use crate::sources::{SourcePorts, SourceRange};
use clap::{Args, ValueEnum};
use mpscan_schema::{Class, Col};
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// Which MP_CAPABLE version(s) to put in the probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VersionArg {
    /// RFC 6824 (12-byte option with a per-probe key).
    #[value(name = "0")]
    V0,
    /// RFC 8684 (4-byte option, no key). The default.
    #[value(name = "1")]
    V1,
    /// Two probes per target, v1 and v0, reported as separate rows.
    #[value(name = "both")]
    Both,
}

/// `mpscan scan [OPTIONS] <TARGETS>...`
#[derive(Debug, Args)]
#[command(after_help = "EXAMPLES (run only against networks you are allowed to scan):\n  \
    mpscan scan -p 443 -r 10000 0.0.0.0/0 -o scan.csv -m scan.json\n  \
    mpscan scan -p 80,443 --mptcp-version both @targets.txt\n  \
    mpscan scan -p 443 --dry-run -n 5 198.51.100.0/24 -b my-blocklist.txt")]
pub struct ScanArgs {
    /// Targets: CIDR prefixes (198.51.100.0/24), single addresses, or @FILE (one per line, # comments).
    #[arg(required_unless_present = "config", value_name = "TARGETS")]
    pub targets: Vec<String>,

    /// Target port(s): 443, 80,443 or 8000-8100.
    #[arg(short = 'p', long = "port", value_name = "PORTS", required_unless_present = "config", default_value = "")]
    pub port: String,

    /// Scan definition (TOML, e.g. scans/rwth2018-443.toml): targets, ports, rate, versions, seed,
    /// blocklist, output naming. Flags given on the command line override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Every target must be IPv6 (an IPv6 hitlist: -6 @hitlist.txt); IPv4 targets are an error.
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,

    /// Send rate in packets per second (0: as fast as the machine goes).
    #[arg(short = 'r', long, default_value_t = 10_000, value_name = "PPS")]
    pub rate: u64,

    /// Interface to send on (default: the one the route to the first target uses).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: Option<String>,

    /// Source address(es): addresses, ranges (192.0.2.1-192.0.2.8) and prefixes (192.0.2.0/29),
    /// comma-separated or repeated, IPv4 and IPv6 (default: the interface's address the kernel
    /// would use). Each probe leaves from the one the keyed hash picks.
    #[arg(short = 'S', long = "source-ip", value_name = "ADDRS", value_parser = |s: &str| SourceRange::parse_list(s).map(SourceList))]
    pub source_ip: Vec<SourceList>,

    /// Source ports of the probes, LOW-HIGH (default: 32768-65535). A warning says when the
    /// range overlaps the kernel's local port range (README, "Source ports").
    #[arg(long = "source-port", value_name = "LOW-HIGH", value_parser = SourcePorts::parse)]
    pub source_port: Option<SourcePorts>,

    /// Gateway MAC address (default: from the neighbour table).
    #[arg(short = 'G', long = "gateway-mac", value_name = "MAC")]
    pub gateway_mac: Option<String>,

    /// Blocklist: one CIDR per line, # comments. Default: the shipped IANA special-purpose list.
    #[arg(short = 'b', long, value_name = "FILE")]
    pub blocklist: Option<PathBuf>,

    /// Do not apply any blocklist (needed with --i-know-what-i-am-doing for 0.0.0.0/0).
    #[arg(long)]
    pub no_blocklist: bool,

    /// Allowlist: only addresses inside these CIDRs are scanned.
    #[arg(short = 'w', long, value_name = "FILE")]
    pub allowlist: Option<PathBuf>,

    /// MP_CAPABLE version of the probes: 0, 1 or both.
    #[arg(long = "mptcp-version", value_enum, default_value = "1")]
    pub mptcp_version: VersionArg,

    /// Probes sent to each target (and version); repeats guard against loss.
    #[arg(short = 'P', long, default_value_t = 1, value_name = "N")]
    pub probes: u32,

    /// Seconds to keep receiving after the last probe.
    #[arg(short = 'c', long, default_value_t = 8.0, value_name = "SECS")]
    pub cooldown: f64,

    /// Seconds to wait for the link when sending fails (interface down, device queue full,
    /// interface gone and back after a driver reset); the probes not yet sent go when it is back.
    /// Then the scan stops, resumable. 0: stop at the first error.
    #[arg(long = "send-error-grace", default_value_t = 60.0, value_name = "SECS")]
    pub send_error_grace: f64,

    /// Seed of the permutation and of the validation secret (random if not given).
    #[arg(short = 'e', long, value_name = "N")]
    pub seed: Option<u64>,

    /// Total number of shards the scan is split into.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub shards: u32,

    /// This machine's shard, 0-based.
    #[arg(long, default_value_t = 0, value_name = "I")]
    pub shard: u32,

    /// Stop after this many targets (of this shard).
    #[arg(short = 'n', long = "max-targets", value_name = "N")]
    pub max_targets: Option<u64>,

    /// Stop sending after this many seconds (then wait out the cooldown); the scan ends cleanly
    /// (exit 0), resumable with `--resume`, and its metadata says `"end_reason": "max-runtime"`.
    #[arg(long = "max-runtime", value_name = "SECONDS")]
    pub max_runtime: Option<f64>,

    /// End the scan once this many rows are written (no row past it); its state says finished and
    /// its metadata `"end_reason": "max-results"`.
    #[arg(long = "max-results", value_name = "N")]
    pub max_results: Option<u64>,

    /// Free text recorded in the metadata (`notes`), as zmap's `--notes`.
    #[arg(long, value_name = "TEXT")]
    pub notes: Option<String>,

    /// JSON recorded in the metadata as it is (`user_metadata`), as zmap's `--user-metadata`.
    #[arg(long = "user-metadata", value_name = "JSON", value_parser = parse_json)]
    pub user_metadata: Option<serde_json::Value>,

    /// Result file (default, or `-`: standard output, for pipes; progress stays on stderr).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The columns written, in this order (zmap's `-f`): names of the CSV header, comma-separated.
    /// A scan whose fields lack ip, port, probe or class keeps no resume state.
    #[arg(short = 'f', long = "output-fields", value_name = "FIELDS", value_parser = |s: &str| Col::parse_list(s).map(Fields))]
    pub output_fields: Option<Fields>,

    /// Write only rows of these classes (e.g. `mptcp,echo`, to feed `mpscan verify`); the
    /// metadata still counts every class. In `mpscan trace`, the classes `--from` takes.
    #[arg(long, value_name = "CLASSES", value_parser = |s: &str| Class::parse_list(s).map(Classes))]
    pub classes: Option<Classes>,

    /// Continue the scan whose state file this is (run the interrupted command again, adding
    /// this option): targets already sent are skipped, rows are appended to the same CSV.
    #[arg(long, value_name = "STATE")]
    pub resume: Option<PathBuf>,

    /// Where to keep the resume state (default: the output file's name + ".state"; none when
    /// writing to standard output).
    #[arg(long = "state-file", value_name = "FILE")]
    pub state_file: Option<PathBuf>,

    /// Format of the result file: csv (streamed, crash-safe), jsonl (the same, one JSON object
    /// per row) or parquet (needs -o).
    #[arg(long = "output-format", value_enum, default_value = "csv")]
    pub output_format: OutputFormat,

    /// One CSV line a second with the scan's progress (zmap's `--status-updates-file`: sent,
    /// send rate, received, validated, hit rate, kernel drops, send errors); a resumed scan
    /// appends. The columns are in the README ("Status file").
    #[arg(long = "status-updates-file", value_name = "FILE")]
    pub status_updates_file: Option<PathBuf>,

    /// Record every frame the receiver takes, validated or not, with its arrival time, as a
    /// standard pcap file (tcpdump, tshark); a resumed scan appends. `mpscan reclassify` rebuilds
    /// the rows from it and the metadata.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,

    /// Metadata JSON file.
    #[arg(short = 'm', long, value_name = "FILE")]
    pub metadata: Option<PathBuf>,

    /// Print the probes that would be sent, one per line; needs no root and sends nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// No progress output.
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Sender threads.
    #[arg(short = 'T', long = "sender-threads", default_value_t = 1, value_name = "N")]
    pub sender_threads: u32,

    /// Allow scanning 0.0.0.0/0 (or ::/0) without a blocklist.
    #[arg(long = "i-know-what-i-am-doing")]
    pub i_know_what_i_am_doing: bool,

    /// Contact of the person running the scan, recorded in the metadata.
    #[arg(long, value_name = "TEXT")]
    pub contact: Option<String>,

    /// The scan definition applied from `--config` (path, values, overridden flags), recorded in
    /// the metadata; set by [`super::definition::apply`], never typed.
    #[arg(skip)]
    pub definition: Option<serde_json::Value>,

    /// `mpscan trace`: probe every target with TTL `1..=MAX` (its `--max-ttl`); set by
    /// `crate::trace::run`, never typed. Part of the resume identity.
    #[arg(skip)]
    pub trace_max_ttl: Option<u8>,
}

/// `-f`: the columns, in order (a newtype, so clap takes the list as one value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields(pub Vec<Col>);

/// One `-S` value: its comma-separated addresses, ranges and prefixes (a newtype, so clap takes
/// the list as one value and an error names it whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceList(pub Vec<SourceRange>);

/// `--classes`: the classes (a newtype, so clap takes the list as one value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classes(pub Vec<Class>);

impl ScanArgs {
    /// Every item of every `-S`, in order.
    pub fn source_items(&self) -> Vec<SourceRange> {
        self.source_ip.iter().flat_map(|l| l.0.iter().copied()).collect()
    }

    /// The output file, if any: `-o -` is standard output, as no `-o` is.
    pub fn output_file(&self) -> Option<&std::path::Path> {
        self.output.as_deref().filter(|p| p.as_os_str() != "-")
    }
}

/// Parses `--user-metadata`: any JSON value.
fn parse_json(s: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(s).map_err(|e| format!("not JSON ({e})"))
}

/// The default source address is unknown until routes are read; this is the placeholder for dry runs.
pub const DRY_RUN_SOURCE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
