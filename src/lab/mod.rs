//! The lab: a mini-internet of network namespaces that stands for the Internet as a scan sees it.
//!
//! A scanner namespace whose only link goes to a router namespace, and population namespaces
//! behind the router that answer for whole prefixes: real Linux MPTCP servers, plain TCP
//! servers, closed ports, a silently dropped range, an ICMP-rejecting range, a SYN proxy that
//! strips MP_CAPABLE, a load-balanced MPTCP server, and three userspace responders (an echoing
//! middlebox, a mirroring one and a v0-only MPTCP server). Addresses come only from the ranges
//! reserved for documentation and benchmarking. Nothing in the lab reaches outside it.
//!
//! * [`plan`]: the address plan (pure data).
//! * [`ground_truth`]: what a correct scan reports for every range, port and probe version.
//! * [`topology`]: [`Lab::up`] / [`Lab`] (dropping it tears the lab down) / [`down`].
//! * [`state`]: what a run made, so that exactly that is removed, even after a crash.
//! * [`serve`], [`responder`]: the processes that answer inside the namespaces.
//! * [`connect`]: kernel connects from inside a namespace (readiness, MPTCP checks).
//! * [`probe`]: the project's own SYN probes sent from the scanner namespace (test support).
//! * [`netns`], [`sys`]: the tools and system calls underneath.
//!
//! The CLI is `mpscan lab up|down|status` (see [`LabCommand`]), and `mpscan lab paths up|down|truth`
//! for the trace paths ([`paths::cli`]); docs/LAB.md has the diagrams.

pub mod check;
pub mod connect;
pub mod ground_truth;
pub mod netns;
pub mod paths;
pub mod plan;
pub mod probe;
pub mod responder;
pub mod serve;
pub mod state;
pub mod sys;
pub mod topology;

pub use ground_truth::{Class, Expected, GroundTruth};
pub use plan::{Plan, RangeKind, Size};
pub use topology::{down, preflight, Lab, LabInfo, LabOptions, LabRange};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use ipnet::Ipv4Net;
use state::LabState;
use std::net::SocketAddrV4;
use std::time::Duration;

/// `mpscan lab ...` arguments.
#[derive(Debug, Args)]
pub struct LabArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: LabCommand,
}

/// The lab's subcommands.
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Bring a lab up (tearing down a previous one of the same name) and print what a scan needs.
    Up {
        /// Run name (1-8 lowercase letters/digits); namespaces are mps-NAME-*. Random if omitted.
        #[arg(long)]
        name: Option<String>,
        /// small: a few hundred addresses; full: tens of thousands.
        #[arg(long, value_enum, default_value = "full")]
        size: Size,
        /// Print the lab's description as JSON.
        #[arg(long)]
        json: bool,
        /// Keep the lab only while this command runs: it takes the lab down at end of input
        /// (Ctrl-D); if it is killed, the lab is stale and the next `up` or `down --all-stale`
        /// removes it.
        #[arg(long)]
        hold: bool,
    },
    /// Take a lab down: kill its processes and delete its namespaces.
    Down {
        /// The run to take down.
        #[arg(long, required_unless_present = "all_stale", conflicts_with = "all_stale")]
        name: Option<String>,
        /// Take down every lab nobody uses any more (its owner died, or its servers did).
        #[arg(long)]
        all_stale: bool,
    },
    /// Show a lab's (or every lab's) namespaces, processes, ranges and isolation.
    Status {
        /// The run to show (all if omitted).
        #[arg(long)]
        name: Option<String>,
    },
    /// Trace paths (issue 14): a chain of 6 router namespaces with a box, for `mpscan trace`.
    Paths {
        /// What to do.
        #[command(subcommand)]
        command: paths::cli::PathsCommand,
    },
    /// Compare a scan's CSV with a lab's ground truth, range by range; fails if they differ.
    Check {
        /// The lab run whose ground truth to use.
        #[arg(long)]
        name: String,
        /// The scan's result CSV.
        csv: std::path::PathBuf,
    },
    /// (internal) Run a server or responder; started by `up` inside a namespace.
    #[command(hide = true)]
    Serve {
        /// What to run.
        #[arg(long, value_enum)]
        kind: serve::ServeKind,
        /// Ports, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "80,443")]
        ports: Vec<u16>,
        /// Interface of a userspace responder.
        #[arg(long)]
        iface: Option<String>,
        /// Prefix a userspace responder answers for.
        #[arg(long)]
        prefix: Option<Ipv4Net>,
        /// IPv6 prefix the on-path echo answers for too.
        #[arg(long)]
        prefix6: Option<ipnet::Ipv6Net>,
        /// Address the RFC 792 router (quote8) answers from.
        #[arg(long)]
        source: Option<std::net::Ipv4Addr>,
    },
    /// (internal) Send one MP_CAPABLE SYN probe to each ADDR:PORT and print the frames that come
    /// back as hex; test support, run in the scanner namespace.
    #[command(hide = true)]
    Probe {
        /// Interface to send on.
        #[arg(long, default_value = "v-rtr")]
        iface: String,
        /// Source address.
        #[arg(long, default_value = "192.0.2.2")]
        src: std::net::Ipv4Addr,
        /// Next hop's MAC address.
        #[arg(long)]
        gateway_mac: String,
        /// Probe version: v0 or v1.
        #[arg(long, value_parser = parse_version)]
        version: crate::probe::ProbeVersion,
        /// Seed of the probes' keyed values.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How long to collect answers.
        #[arg(long, default_value_t = 1000)]
        wait_ms: u64,
        /// Targets.
        #[arg(required = true)]
        targets: Vec<SocketAddrV4>,
    },
    /// (internal) Connect to each ADDR:PORT and print the outcome; used inside namespaces.
    #[command(hide = true)]
    Connect {
        /// Use IPPROTO_MPTCP sockets and report whether the connection is MPTCP.
        #[arg(long)]
        mptcp: bool,
        /// Give up on a target after this long.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
        /// Targets.
        #[arg(required = true)]
        targets: Vec<SocketAddrV4>,
    },
}

/// Runs a lab command.
pub fn run(a: &LabArgs) -> anyhow::Result<()> {
    match &a.command {
        LabCommand::Up { name, size, json, hold } => {
            let lab = Lab::up(LabOptions { name: name.clone(), size: *size, exe: None })?;
            let print = |info: &LabInfo| -> anyhow::Result<()> {
                if *json {
                    println!("{}", serde_json::to_string_pretty(info)?);
                } else {
                    print!("{}", info.describe());
                }
                Ok(())
            };
            if *hold {
                print(&lab.info)?;
                eprintln!("mpscan lab: holding lab {}; end input (Ctrl-D) to take it down", lab.info.run);
                let mut sink = String::new();
                while std::io::stdin().read_line(&mut sink)? > 0 {
                    sink.clear();
                }
                lab.down()
            } else {
                let info = lab.detach()?;
                print(&info)
            }
        }
        LabCommand::Down { name, all_stale } => {
            if *all_stale {
                let mut failed = false;
                for (run, r) in topology::reap_stale(true) {
                    match r {
                        Ok(()) => println!("removed stale lab {run}"),
                        Err(e) => {
                            eprintln!("mpscan lab: {e:#}");
                            failed = true;
                        }
                    }
                }
                if failed {
                    bail!("some stale labs could not be removed");
                }
                Ok(())
            } else {
                let run = name.as_deref().expect("clap requires --name");
                if down(run)? {
                    println!("lab {run} is down");
                } else {
                    println!("lab {run} was not up");
                }
                Ok(())
            }
        }
        LabCommand::Status { name } => status(name.as_deref()),
        LabCommand::Paths { command } => paths::cli::run(command),
        LabCommand::Check { name, csv } => {
            let info = LabInfo::load(name)?;
            let truth = GroundTruth::load(&info.ground_truth)?;
            let lines = check::compare(&truth, csv)?;
            print!("{}", check::render(&lines));
            if lines.iter().any(|l| l.missing + l.wrong > 0) {
                bail!("the scan of lab {name} differs from its ground truth");
            }
            Ok(())
        }
        LabCommand::Serve { kind, ports, iface, prefix, prefix6, source } => {
            let place = serve::Place { iface: iface.as_deref(), prefix: *prefix, prefix6: *prefix6, source: *source };
            serve::serve(*kind, ports, &place)
        }
        LabCommand::Probe { iface, src, gateway_mac, version, seed, wait_ms, targets } => {
            probe::probe(iface, *src, gateway_mac, *version, *seed, targets, Duration::from_millis(*wait_ms))
        }
        LabCommand::Connect { mptcp, timeout_ms, targets } => {
            for t in targets {
                let o = connect::connect(*t, *mptcp, Duration::from_millis(*timeout_ms));
                println!("{}", connect::format_line(*t, &o));
            }
            Ok(())
        }
    }
}

fn parse_version(s: &str) -> Result<crate::probe::ProbeVersion, String> {
    match s {
        "v0" | "0" => Ok(crate::probe::ProbeVersion::V0),
        "v1" | "1" => Ok(crate::probe::ProbeVersion::V1),
        _ => Err(format!("{s:?} is not a probe version (v0 or v1)")),
    }
}

fn status(name: Option<&str>) -> anyhow::Result<()> {
    let runs = match name {
        Some(n) => {
            state::check_run_name(n)?;
            vec![n.to_string()]
        }
        None => LabState::runs(),
    };
    if runs.is_empty() {
        println!("no lab is up");
    }
    for run in runs {
        let st = LabState::load(&run)?.with_context(|| format!("lab {run} is not up"))?;
        let owner = match st.owner {
            Some(o) if o.alive() => format!("held by pid {}", o.pid),
            Some(o) => format!("STALE: its owner (pid {}) is gone", o.pid),
            None => "left up".to_string(),
        };
        println!("lab {run}: {}, {owner}", if st.complete { "complete" } else { "INCOMPLETE" });
        for l in topology::namespace_report(&st) {
            println!("  namespace {l}");
        }
        for l in topology::process_report(&st) {
            println!("  process {l}");
        }
        if let Ok(info) = LabInfo::load(&run) {
            for r in &info.ranges {
                println!("  range {:<18} {:<7} {:?}", r.prefix, r.name, r.kind);
            }
            match info.isolation() {
                Ok(checks) => {
                    for c in checks {
                        println!("  isolated: {c}");
                    }
                }
                Err(e) => println!("  NOT ISOLATED: {e:#}"),
            }
        }
    }
    Ok(())
}
