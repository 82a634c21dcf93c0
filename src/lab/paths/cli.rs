//! `mpscan lab paths up|down|truth`: a trace path (issue 14's lab) left up for a person, the demo
//! or a benchmark, with what a trace of it needs and its ground truth as JSON.
//!
//! `up` records the path in the lab state like `mpscan lab up` does (`/run/mpscan-lab/RUN/`): the
//! namespaces before they are made, the processes (PID and start time) once they run. So
//! `mpscan lab paths down --name RUN`, `mpscan lab down --name RUN`, `lab status` and
//! `lab down --all-stale` all know it, and take down exactly what it made (docs/LAB.md).

use super::truth::{LabPath, PathTruth};
use super::{TracePath, MAX_TARGETS, PORT, ROUTERS, TARGETS4, TARGETS6};
use crate::lab::state::{check_run_name, run_dir, LabState, ProcEntry, ProcRef};
use crate::lab::topology::{self, preflight, random_run_name};
use crate::probe::ProbeVersion;
use anyhow::Context;
use clap::Subcommand;
use serde::Serialize;
use std::net::IpAddr;
use std::path::PathBuf;

/// `mpscan lab paths ...`.
#[derive(Debug, Subcommand)]
pub enum PathsCommand {
    /// Bring a trace path up (tearing down a previous lab of the same name) and print what a
    /// trace needs: scanner namespace, interface, gateway MAC, targets, ground truth.
    Up {
        /// Run name (1-8 lowercase letters/digits); namespaces are mps-NAME-t0 (scanner) to
        /// mps-NAME-t7 (server). Random if omitted.
        #[arg(long)]
        name: Option<String>,
        /// Which path (docs/LAB.md, "Trace paths").
        #[arg(long, value_enum, default_value = "stripper")]
        path: LabPath,
        /// Targets per family: 1 is the server's own address; more are the first addresses of
        /// 198.18.0.0/16 and 2001:db8:78::/112, which the server answers for.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_TARGETS)))]
        targets: u32,
        /// Print the description as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Take a trace path down: kill its processes by PID, delete its namespaces (the same as
    /// `mpscan lab down --name NAME`).
    Down {
        /// The run to take down.
        #[arg(long)]
        name: String,
    },
    /// Print a path's ground truth as JSON (no root needed).
    Truth {
        /// Which path.
        #[arg(long, value_enum)]
        path: LabPath,
        /// Targets per family, as for `up` (the rows are the same for every target; the first
        /// target's are printed).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_TARGETS)))]
        targets: u32,
    },
}

/// What a trace of a path needs, written to `path.json` in the run directory and printed by
/// `up` (`--json` for this form).
#[derive(Debug, Clone, Serialize)]
pub struct PathInfo {
    /// The run name.
    pub run: String,
    /// The path's name (docs/LAB.md).
    pub path: String,
    /// The scanner's namespace: run the trace there.
    pub scanner_ns: String,
    /// The scanner's interface in it.
    pub interface: String,
    /// The scanner's addresses.
    pub source_ip: IpAddr,
    /// The scanner's IPv6 address.
    pub source_ip6: IpAddr,
    /// Router 1's addresses on the scanner link.
    pub gateway_ip: IpAddr,
    /// Router 1's IPv6 address on the scanner link.
    pub gateway_ip6: IpAddr,
    /// Router 1's MAC address (`-G`).
    pub gateway_mac: String,
    /// The port the server and the boxes answer on.
    pub port: u16,
    /// The TTL at which the server answers (the path length).
    pub server_ttl: u8,
    /// Targets per family.
    pub targets: u32,
    /// The IPv4 targets, one per line (`@FILE`).
    pub targets4: PathBuf,
    /// The IPv6 targets, one per line (`@FILE`).
    pub targets6: PathBuf,
    /// The ground truth JSON (as `lab paths truth` prints it).
    pub ground_truth: PathBuf,
    /// Every namespace of the path, scanner first.
    pub namespaces: Vec<String>,
    /// A trace of every target, both families and MP_CAPABLE versions.
    pub trace_command: String,
}

/// A path's ground truth: the hop rows of TTL 1 to 6 and the verdict, per family and version,
/// for the first target of each family; every other target has the same rows with its own
/// address where the first target's stands (an on-path answer comes from the target's address).
#[derive(Debug, Clone, Serialize)]
pub struct PathGroundTruth {
    /// The path's name.
    pub path: String,
    /// The port.
    pub port: u16,
    /// The TTL at which the server answers.
    pub server_ttl: u8,
    /// Targets per family.
    pub targets: u32,
    /// The targets' IPv4 addresses: the server's, or a prefix of the server's local route.
    pub targets4: String,
    /// The targets' IPv6 addresses.
    pub targets6: String,
    /// IPv4, MP_CAPABLE v0.
    pub ipv4_v0: PathTruth,
    /// IPv4, MP_CAPABLE v1.
    pub ipv4_v1: PathTruth,
    /// IPv6, MP_CAPABLE v0.
    pub ipv6_v0: PathTruth,
    /// IPv6, MP_CAPABLE v1.
    pub ipv6_v1: PathTruth,
}

/// The ground truth of `path` with `targets` targets per family.
pub fn ground_truth(path: LabPath, targets: u32) -> PathGroundTruth {
    let first = |v6| TracePath::target_addrs(targets, v6)[0];
    let t = |v6, v| path.truth_for(first(v6), v);
    let span = |v6: bool| {
        let a = TracePath::target_addrs(targets, v6);
        match (a.len(), v6) {
            (1, _) => a[0].to_string(),
            (n, false) => format!("{} to {} (local route {TARGETS4})", a[0], a[n - 1]),
            (n, true) => format!("{} to {} (local route {TARGETS6})", a[0], a[n - 1]),
        }
    };
    PathGroundTruth {
        path: path.label().into(),
        port: PORT,
        server_ttl: TracePath::server_ttl(),
        targets,
        targets4: span(false),
        targets6: span(true),
        ipv4_v0: t(false, ProbeVersion::V0),
        ipv4_v1: t(false, ProbeVersion::V1),
        ipv6_v0: t(true, ProbeVersion::V0),
        ipv6_v1: t(true, ProbeVersion::V1),
    }
}

impl PathInfo {
    /// Human-readable summary, as `up` prints it.
    pub fn describe(&self) -> String {
        format!(
            "trace path {} ({}, {} target(s) per family) is up\n  scanner namespace: {}\n  interface:         {}\n  source:            {} / {}\n  gateway:           {} / {} ({})\n  server TTL:        {}\n  targets:           {} and {}\n  ground truth:      {}\n  namespaces:        {}\n  trace it:\n    {}\n",
            self.run,
            self.path,
            self.targets,
            self.scanner_ns,
            self.interface,
            self.source_ip,
            self.source_ip6,
            self.gateway_ip,
            self.gateway_ip6,
            self.gateway_mac,
            self.server_ttl,
            self.targets4.display(),
            self.targets6.display(),
            self.ground_truth.display(),
            self.namespaces.join(" "),
            self.trace_command
        )
    }
}

/// Runs a `lab paths` command.
pub fn run(cmd: &PathsCommand) -> anyhow::Result<()> {
    match cmd {
        PathsCommand::Up { name, path, targets, json } => {
            let info = up(name.clone(), *path, *targets)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                print!("{}", info.describe());
            }
            Ok(())
        }
        PathsCommand::Down { name } => {
            if topology::down(name)? {
                println!("lab {name} is down");
            } else {
                println!("lab {name} was not up");
            }
            Ok(())
        }
        PathsCommand::Truth { path, targets } => {
            println!("{}", serde_json::to_string_pretty(&ground_truth(*path, *targets))?);
            Ok(())
        }
    }
}

/// Brings path `path` up as run `name` (random if `None`) and leaves it up, recorded in the lab
/// state; writes the targets, the ground truth and `path.json` to the run directory.
pub fn up(name: Option<String>, path: LabPath, targets: u32) -> anyhow::Result<PathInfo> {
    preflight()?;
    let run = name.unwrap_or_else(random_run_name);
    check_run_name(&run)?;
    for (stale, r) in topology::reap_stale(false) {
        if let Err(e) = r {
            eprintln!("mpscan lab: removing stale lab {stale}: {e:#}");
        }
    }
    topology::down(&run).with_context(|| format!("removing the previous lab {run}"))?;
    let exe = std::env::current_exe().context("finding the mpscan executable")?;
    let namespaces: Vec<String> = (0..=ROUTERS + 1).map(|n| TracePath::ns(&run, n)).collect();
    // Recorded before anything is made, owned by this process until it is complete: if `up`
    // dies half-way, the lab is stale and the next `up` or `down --all-stale` removes it.
    let mut state = LabState {
        run: run.clone(),
        owner: Some(ProcRef::current()),
        namespaces: namespaces.clone(),
        ..LabState::default()
    };
    state.save()?;
    let made = TracePath::up_targets(&run, path.spec(), targets, &exe, Some(&run_dir(&run)))
        .and_then(|p| finish(&run, path, targets, p, &mut state, namespaces));
    match made {
        Ok(info) => Ok(info),
        Err(e) => {
            let _ = state.teardown();
            Err(e.context(format!("bringing trace path {run} up (everything it made is removed)")))
        }
    }
}

fn finish(
    run: &str,
    path: LabPath,
    targets: u32,
    p: TracePath,
    state: &mut LabState,
    namespaces: Vec<String>,
) -> anyhow::Result<PathInfo> {
    let (scanner_ns, interface, gateway_mac) = (p.scanner_ns.clone(), p.scanner_if.clone(), p.gateway_mac.clone());
    for (what, pid) in p.detach() {
        if let Some(proc) = ProcRef::of(pid) {
            state.processes.push(ProcEntry { what, proc });
        }
    }
    state.save()?;
    let dir = run_dir(run);
    let (targets4, targets6, truth) =
        (dir.join("targets4.txt"), dir.join("targets6.txt"), dir.join("ground-truth.json"));
    for (file, v6) in [(&targets4, false), (&targets6, true)] {
        let lines: String = TracePath::target_addrs(targets, v6).iter().map(|a| format!("{a}\n")).collect();
        std::fs::write(file, lines).with_context(|| format!("writing {}", file.display()))?;
    }
    std::fs::write(&truth, serde_json::to_string_pretty(&ground_truth(path, targets))? + "\n")?;
    let trace_command = format!(
        "ip netns exec {scanner_ns} mpscan trace -i {interface} -G {gateway_mac} -p {PORT} --no-blocklist \
         --mptcp-version both --max-ttl 10 -r 2000 -c 1 @{} @{} -o hops.csv --verdicts verdicts.csv",
        targets4.display(),
        targets6.display()
    );
    let info = PathInfo {
        run: run.to_string(),
        path: path.label().into(),
        scanner_ns,
        interface,
        source_ip: TracePath::addr(0, 1, false),
        source_ip6: TracePath::addr(0, 1, true),
        gateway_ip: TracePath::addr(0, 2, false),
        gateway_ip6: TracePath::addr(0, 2, true),
        gateway_mac,
        port: PORT,
        server_ttl: TracePath::server_ttl(),
        targets,
        targets4,
        targets6,
        ground_truth: truth,
        namespaces,
        trace_command,
    };
    std::fs::write(dir.join("path.json"), serde_json::to_string_pretty(&info)? + "\n")?;
    state.owner = None;
    state.complete = true;
    state.save()?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ground_truth_of_many_targets_names_the_first_target() {
        let g = ground_truth(LabPath::EchoBox, 1000);
        assert_eq!(g.targets4, "198.18.0.1 to 198.18.3.232 (local route 198.18.0.0/16)");
        assert_eq!(g.targets6, "2001:db8:78::1 to 2001:db8:78::3e8 (local route 2001:db8:78::/112)");
        let first4: IpAddr = "198.18.0.1".parse().unwrap();
        assert_eq!(g.ipv4_v1.verdict.router, Some(first4), "the echoing box answers as the target");
        assert_eq!(g.ipv4_v1.hops[3].from, first4);
        let v: serde_json::Value = serde_json::to_value(&g).unwrap();
        assert_eq!(v["ipv6_v0"]["verdict"]["verdict"], "answered-on-path");
        assert_eq!(v["ipv6_v0"]["verdict"]["router"], "2001:db8:78::1");
        let one = ground_truth(LabPath::Stripper, 1);
        assert_eq!(one.targets4, "198.19.206.2");
        assert_eq!(one.ipv4_v0.verdict.hop, Some(4));
    }
}
