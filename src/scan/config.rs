//! From what the user typed ([`ScanArgs`]) to a finished, checked [`ScanConfig`] (ripgrep's
//! shape). Every check that can fail happens here, before a single packet is sent, and each
//! failure is one line naming the input and the fix. Nothing after [`ScanConfig::resolve`] reads
//! the arguments again: the configuration builds every worker (`super::workers`).

use super::args::{ScanArgs, VersionArg, DRY_RUN_SOURCE};
use super::resume::Resume;
use crate::net::route::{self, Route};
use crate::output::sink::OutputFormat;
use crate::probe::{Link, ProbeVersion};
use crate::sources::{SourcePorts, Sources};
use crate::targets::{BlockSource, TargetSpace, TargetSpec};
use anyhow::{bail, Context as _};
use mpscan_schema::metadata::ConfigRecord;
use mpscan_schema::{Class, Col};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A rate above this on a real interface gets a warning about the networks being scanned.
pub const LOUD_RATE: u64 = 100_000;

/// The longest `--send-error-grace`: a day.
pub const MAX_GRACE: f64 = 86_400.0;

/// Everything a scan needs, checked.
pub struct ScanConfig {
    /// What to scan.
    pub space: TargetSpace,
    /// `mpscan trace`: send every target with TTL `1..=max_ttl` (none: a scan, TTL 64).
    pub trace_ttls: Option<u8>,
    /// Probe versions, in sending order.
    pub versions: Vec<ProbeVersion>,
    /// Probes per target and version.
    pub probes: u32,
    /// Packets per second (0: unlimited).
    pub rate: u64,
    /// Receive time after the last probe.
    pub cooldown: Duration,
    /// How long a send error may last before the scan stops (`--send-error-grace`).
    pub send_error_grace: Duration,
    /// Permutation and validation seed.
    pub seed: u64,
    /// Number of shards.
    pub shards: u32,
    /// This shard.
    pub shard: u32,
    /// Sender threads.
    pub threads: u32,
    /// Stop after this many targets.
    pub max_targets: Option<u64>,
    /// `--max-runtime`: how long the senders may send.
    pub max_runtime: Option<Duration>,
    /// `--max-results`: the rows after which the scan ends.
    pub max_results: Option<u64>,
    /// The columns written (`-f`; every one by default).
    pub columns: Vec<Col>,
    /// `--classes`: the classes written (all when `None`).
    pub classes: Option<Vec<Class>>,
    /// `--notes`, for the metadata.
    pub notes: Option<String>,
    /// `--user-metadata`, for the metadata.
    pub user_metadata: Option<serde_json::Value>,
    /// Result file (CSV on stdout if none).
    pub output: Option<PathBuf>,
    /// Format of the result file.
    pub output_format: OutputFormat,
    /// Metadata JSON.
    pub metadata: Option<PathBuf>,
    /// `--status-updates-file`: the monitor's one line a second.
    pub status_updates: Option<PathBuf>,
    /// `--pcap`: the recording of every frame received.
    pub pcap: Option<PathBuf>,
    /// The state file to write (and, with `resume`, to continue from); none for a dry run or
    /// standard output.
    pub state_file: Option<PathBuf>,
    /// The scan to continue (`--resume`), read and checked once here.
    pub resume: Option<Resume>,
    /// Print probes instead of sending.
    pub dry_run: bool,
    /// No progress output.
    pub quiet: bool,
    /// Interface to send on and read from ("" in a dry run without a route).
    pub interface: String,
    /// Addresses and MACs of the probes (the addresses: each family's key source, the first of
    /// `sources`).
    pub link: Link,
    /// Every source address, per family in index order (`-S`, or the route's one).
    pub sources: Sources,
    /// The probes' source ports (`--source-port`, or the default range).
    pub source_ports: SourcePorts,
    /// The IPv6 router's MAC when it differs from the IPv4 one (`link.dst_mac`).
    pub gateway_mac6: Option<[u8; 6]>,
    /// The configuration as recorded in the metadata.
    pub record: ConfigRecord,
    /// The scan definition (`--config`) as recorded in the metadata.
    pub definition: Option<serde_json::Value>,
}

/// Where a scan's link layer comes from.
#[derive(Debug, Clone)]
pub enum Network {
    /// This machine's routes and neighbours, and its raw sockets (root needed, except for a dry
    /// run).
    System,
    /// Given addresses and MACs, for a scan over an in-memory transport: no route is looked up
    /// and no root is needed, since nothing reaches a network.
    Given {
        /// The probes' addresses and MACs.
        link: Link,
        /// The interface name recorded in the metadata.
        interface: String,
    },
}

impl ScanConfig {
    /// Checks and resolves the arguments against this machine's network.
    pub fn resolve(a: &ScanArgs) -> anyhow::Result<ScanConfig> {
        ScanConfig::resolve_on(a, &Network::System)
    }

    /// Checks and resolves the arguments, with the link layer from `net`.
    pub fn resolve_on(a: &ScanArgs, net: &Network) -> anyhow::Result<ScanConfig> {
        check_numbers(a)?;
        let blocklist = block_source(a)?;
        let spec = TargetSpec {
            targets: &a.targets,
            ports: &a.port,
            blocklist: blocklist.clone(),
            allowlist: a.allowlist.as_deref(),
            allow_unblocked_full_space: a.i_know_what_i_am_doing,
        };
        let space = TargetSpace::build(&spec)?;
        if space.is_empty() {
            bail!("nothing to scan: every target is excluded by the blocklist or allowlist");
        }
        let versions = match a.mptcp_version {
            VersionArg::V0 => vec![ProbeVersion::V0],
            VersionArg::V1 => vec![ProbeVersion::V1],
            VersionArg::Both => vec![ProbeVersion::V1, ProbeVersion::V0],
        };
        let resume = Resume::open(a)?;
        // The seed of a resumed scan is the saved one: that is what makes its probes the same.
        let seed = a.seed.or(resume.as_ref().map(|r| r.saved.identity.seed)).unwrap_or_else(rand::random);
        let gw_mac = match &a.gateway_mac {
            Some(s) => {
                Some(route::parse_mac(s).with_context(|| format!("-G {s:?}: write the MAC as aa:bb:cc:dd:ee:ff"))?)
            }
            None => None,
        };
        let given = Sources::expand(&a.source_items()).map_err(anyhow::Error::msg)?;
        check_families(a, &space, &given)?;
        if let Some(m) = &a.metadata {
            check_writable(m, a.dry_run)
                .with_context(|| format!("-m {}: cannot write the metadata file; give a writable path", m.display()))?;
        }
        check_recordings(a)?;
        let (mut link, interface, gateway_mac6) = match net {
            Network::System => resolve_link(a, &space, &given, gw_mac)?,
            Network::Given { link, interface } => (*link, interface.clone(), None),
        };
        let sources = sources_of(&mut link, &given);
        let source_ports = a.source_port.unwrap_or_default();
        if let Some(p) = a.source_port.filter(|_| !a.quiet) {
            warn_local_ports(p);
        }
        if !a.dry_run && (a.rate == 0 || a.rate > LOUD_RATE) && !a.quiet {
            eprintln!(
                "mpscan: warning: {} pps is a lot for the networks being scanned; be sure you may, and keep an opt-out list",
                if a.rate == 0 { "unlimited".to_string() } else { a.rate.to_string() }
            );
        }
        let record = record_of(
            a,
            &space,
            &versions,
            seed,
            &blocklist,
            (&link, &interface, gateway_mac6),
            (&sources, source_ports),
        );
        let config = ScanConfig {
            trace_ttls: a.trace_max_ttl,
            space,
            versions,
            probes: a.probes,
            rate: a.rate,
            cooldown: Duration::from_secs_f64(a.cooldown),
            send_error_grace: Duration::from_secs_f64(a.send_error_grace),
            seed,
            shards: a.shards,
            shard: a.shard,
            threads: a.sender_threads,
            max_targets: a.max_targets,
            max_runtime: a.max_runtime.map(Duration::from_secs_f64),
            max_results: a.max_results,
            notes: a.notes.clone(),
            user_metadata: a.user_metadata.clone(),
            output: a.output_file().map(Path::to_path_buf),
            columns: a.output_fields.clone().map_or_else(|| Col::ALL.to_vec(), |f| f.0),
            classes: a.classes.clone().map(|c| c.0),
            output_format: a.output_format,
            metadata: a.metadata.clone(),
            status_updates: a.status_updates_file.clone(),
            pcap: a.pcap.clone(),
            state_file: state_file_of(a),
            resume,
            dry_run: a.dry_run,
            quiet: a.quiet,
            interface,
            link,
            sources,
            source_ports,
            gateway_mac6,
            record,
            definition: a.definition.clone(),
        };
        // Everything a resume can get wrong is refused before anything is opened or sent.
        if let Some(r) = &config.resume {
            r.check(&config.identity(), a)?;
        }
        Ok(config)
    }
}

/// `--status-updates-file` and `--pcap` must be writable before the first probe (opened, not
/// truncated: the scan creates or appends to them when it starts); a trace records no `--pcap`.
fn check_recordings(a: &ScanArgs) -> anyhow::Result<()> {
    if a.trace_max_ttl.is_some() && a.pcap.is_some() {
        bail!("--pcap records the answers of mpscan scan; mpscan trace does not take it: drop --pcap");
    }
    for (flag, path, what) in
        [("--status-updates-file", &a.status_updates_file, "status file"), ("--pcap", &a.pcap, "pcap file")]
    {
        if let Some(p) = path {
            check_writable(p, a.dry_run)
                .with_context(|| format!("{flag} {}: cannot write the {what}; give a writable path", p.display()))?;
        }
    }
    Ok(())
}

/// The counts and limits that must make sense on their own.
fn check_numbers(a: &ScanArgs) -> anyhow::Result<()> {
    if a.shards == 0 {
        bail!("--shards 0: there must be at least one shard");
    }
    if a.shard >= a.shards {
        bail!(
            "--shard {} is out of range for --shards {}: shards are numbered 0 to {}",
            a.shard,
            a.shards,
            a.shards - 1
        );
    }
    if a.probes == 0 {
        bail!("--probes 0: each target needs at least one probe");
    }
    if a.max_results == Some(0) {
        bail!("--max-results 0: the scan would end before its first row; give 1 or more, or drop it");
    }
    if let Some(t) = a.max_runtime.filter(|t| !t.is_finite() || *t <= 0.0 || *t > 1e9) {
        bail!("--max-runtime {t}: give the seconds to send for, more than 0");
    }
    if a.max_targets == Some(0) {
        bail!("--max-targets 0: nothing would be probed; give 1 or more, or drop -n to scan every target");
    }
    if a.sender_threads == 0 || a.sender_threads > 64 {
        bail!("--sender-threads {}: use 1 to 64", a.sender_threads);
    }
    if !a.cooldown.is_finite() || a.cooldown < 0.0 || a.cooldown > 3600.0 {
        bail!("--cooldown {}: give a number of seconds between 0 and 3600", a.cooldown);
    }
    if !a.send_error_grace.is_finite() || a.send_error_grace < 0.0 || a.send_error_grace > MAX_GRACE {
        bail!(
            "--send-error-grace {}: give a number of seconds between 0 (stop at the first error) and {MAX_GRACE}",
            a.send_error_grace
        );
    }
    Ok(())
}

/// The blocklist the arguments ask for.
fn block_source(a: &ScanArgs) -> anyhow::Result<BlockSource> {
    Ok(match (&a.blocklist, a.no_blocklist) {
        (Some(_), true) => bail!("--blocklist and --no-blocklist contradict each other: keep one"),
        (Some(p), false) => BlockSource::File(p.clone()),
        (None, true) => BlockSource::None,
        (None, false) => BlockSource::Default,
    })
}

/// `-6` and `-S` against the families of the targets: every source must be of a family some
/// target has (an IPv6 scan needs IPv6 sources).
fn check_families(a: &ScanArgs, space: &TargetSpace, given: &Sources) -> anyhow::Result<()> {
    let set = space.address_set();
    let n4 = set.len_v4();
    let (has_v4, has_v6) = (n4 > 0, set.len() > n4);
    if a.ipv6 && has_v4 {
        bail!(
            "-6: {n4} of the targets are IPv4 (e.g. {}): give only IPv6 targets, or drop -6 to scan both families",
            set.nth(0)
        );
    }
    match (given.v4.first(), given.v6.first()) {
        (_, Some(ip)) if !has_v6 => {
            bail!("-S {ip}: the source is IPv6 but every target is IPv4; give IPv4 source addresses, or drop -S")
        }
        (Some(ip), _) if !has_v4 => {
            bail!("-S {ip}: the source is IPv4 but every target is IPv6; give IPv6 source addresses, or drop -S")
        }
        _ => Ok(()),
    }
}

/// Every source of the scan: per family with targets (the link has a key source of it), the
/// `-S` addresses of that family if any were given, else the link's one. The link's addresses
/// become each family's first source, the key source.
fn sources_of(link: &mut Link, given: &Sources) -> Sources {
    let mut s = Sources::one(link.src_v4, link.src_v6);
    if link.src_v4.is_some() && !given.v4.is_empty() {
        s.v4 = given.v4.clone();
        link.src_v4 = Some(s.v4[0]);
    }
    if link.src_v6.is_some() && !given.v6.is_empty() {
        s.v6 = given.v6.clone();
        link.src_v6 = Some(s.v6[0]);
    }
    s
}

/// `--source-port`: one line on standard error when the range overlaps the kernel's local
/// port range in this network namespace (README, "Source ports": our kernel answers a SYN-ACK
/// with the RST that frees the server's half-open connection only when no local socket has the
/// port).
fn warn_local_ports(ports: SourcePorts) {
    if let Some((k_lo, k_hi)) = crate::sources::kernel_local_ports() {
        if let Some((lo, hi)) = ports.overlap((k_lo, k_hi)) {
            eprintln!(
                "mpscan: warning: --source-port {ports} overlaps the kernel's local port range {k_lo}-{k_hi} (ports {lo}-{hi}): a local connection on one of them can take an answer meant for a probe; see the README's \"Source ports\""
            );
        }
    }
}

/// The link of the probes from this machine's routes: addresses, MACs, the interface, and the
/// IPv6 router's MAC when it is another machine than the IPv4 one. A dry run without a route
/// uses placeholders; a real scan needs CAP_NET_RAW (root, or the capability on the binary).
fn resolve_link(
    a: &ScanArgs,
    space: &TargetSpace,
    given: &Sources,
    gw_mac: Option<[u8; 6]>,
) -> anyhow::Result<(Link, String, Option<[u8; 6]>)> {
    let set = space.address_set();
    let n4 = set.len_v4();
    let (has_v4, has_v6) = (n4 > 0, set.len() > n4);
    let route_for = |want_v4: bool| -> anyhow::Result<Option<Route>> {
        let dst = set.nth(if want_v4 { 0 } else { n4 });
        let src = given.key_for(want_v4);
        // A dry run must send nothing, not even the datagram that provokes neighbour resolution.
        let gw = if a.dry_run { gw_mac.or(Some([0; 6])) } else { gw_mac };
        match route::resolve(dst, a.interface.as_deref(), src, gw) {
            Ok(r) => Ok(Some(r)),
            Err(e) if a.dry_run => {
                eprintln!("mpscan: dry run: {e}; using placeholder addresses");
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    };
    if !a.dry_run {
        crate::net::caps::require_cap_net_raw()?;
    }
    let r4 = if has_v4 { route_for(true)? } else { None };
    let r6 = if has_v6 { route_for(false)? } else { None };
    let main = r4.as_ref().or(r6.as_ref());
    let placeholder_v4 = || given.v4.first().copied().unwrap_or(DRY_RUN_SOURCE);
    let link = Link {
        src_mac: main.map_or([0; 6], |r| r.src_mac),
        dst_mac: main.map_or(gw_mac.unwrap_or([0; 6]), |r| r.gateway_mac),
        src_v4: has_v4.then(|| match &r4 {
            Some(Route { src_ip: IpAddr::V4(s), .. }) => *s,
            _ => placeholder_v4(),
        }),
        src_v6: has_v6.then(|| match (&r6, given.v6.first()) {
            (Some(Route { src_ip: IpAddr::V6(s), .. }), _) => *s,
            (_, Some(s)) => *s,
            _ => "2001:db8::1".parse().unwrap(),
        }),
    };
    let interface = main.map_or(a.interface.clone().unwrap_or_default(), |r| r.interface.clone());
    let mut gateway_mac6 = None;
    if let (Some(r4), Some(r6)) = (&r4, &r6) {
        if r4.interface != r6.interface {
            bail!(
                "IPv4 targets route via {} but IPv6 targets via {}: scan each family separately, or pick one with -i",
                r4.interface,
                r6.interface
            );
        }
        // One frame template per family: IPv6 probes go to the IPv6 router when it is another
        // machine than the IPv4 one (-G sets one next hop for both).
        if r4.gateway_mac != r6.gateway_mac && gw_mac.is_none() && !a.dry_run {
            gateway_mac6 = Some(r6.gateway_mac);
        }
    }
    Ok((link, interface, gateway_mac6))
}

/// The configuration as the metadata records it.
fn record_of(
    a: &ScanArgs,
    space: &TargetSpace,
    versions: &[ProbeVersion],
    seed: u64,
    blocklist: &BlockSource,
    (link, interface, gateway_mac6): (&Link, &str, Option<[u8; 6]>),
    (sources, source_ports): (&Sources, SourcePorts),
) -> ConfigRecord {
    ConfigRecord {
        targets: a.targets.clone(),
        ports: space.ports().to_vec(),
        rate: a.rate,
        probe_versions: versions.iter().map(|v| v.label().to_string()).collect(),
        probes_per_target: a.probes,
        cooldown_secs: a.cooldown,
        send_error_grace_secs: a.send_error_grace,
        seed,
        seed_note: mpscan_schema::metadata::SEED_NOTE.to_string(),
        shards: a.shards,
        shard: Some(a.shard),
        sender_threads: a.sender_threads,
        interface: interface.to_string(),
        source_ip: sources.strings(),
        source_ports: Some(source_ports.pair()),
        gateway_mac: route::format_mac(&link.dst_mac),
        gateway_mac6: gateway_mac6.map(|m| route::format_mac(&m)),
        blocklist: match blocklist {
            BlockSource::Default => Some("builtin".into()),
            BlockSource::File(p) => Some(p.display().to_string()),
            BlockSource::None => None,
        },
        allowlist: a.allowlist.as_ref().map(|p| p.display().to_string()),
        max_targets: a.max_targets,
        max_runtime_secs: a.max_runtime,
        max_results: a.max_results,
        output_format: Some(a.output_format.extension().to_string()),
        output_fields: a.output_fields.as_ref().map(|f| f.0.iter().map(|c| c.name().to_string()).collect()),
        classes_written: a.classes.as_ref().map(|c| c.0.iter().map(|c| c.label().to_string()).collect()),
        dry_run: a.dry_run,
        contact: a.contact.clone(),
    }
}

/// Where the resume state goes: the `--resume` file, `--state-file`, or the output's name +
/// `.state`; none for a dry run or standard output. (A Parquet scan writes none, see
/// `super::workers`.)
fn state_file_of(a: &ScanArgs) -> Option<PathBuf> {
    if a.dry_run {
        return None;
    }
    a.resume.clone().or(a.state_file.clone()).or_else(|| {
        a.output_file().map(|o| {
            let mut s = o.as_os_str().to_os_string();
            s.push(".state");
            PathBuf::from(s)
        })
    })
}

/// Opens `path` for writing without truncating it, so that an unwritable metadata path is an
/// error before the first probe rather than after the last. A file this check creates stays (the
/// scan overwrites it at the end), except in a dry run, which writes no metadata.
fn check_writable(path: &std::path::Path, dry_run: bool) -> std::io::Result<()> {
    let existed = path.exists();
    std::fs::OpenOptions::new().append(true).create(true).open(path)?;
    if dry_run && !existed {
        std::fs::remove_file(path)?;
    }
    Ok(())
}
