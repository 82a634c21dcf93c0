//! Bringing a lab up and down: namespaces, veths, routes, sysctls, nftables, servers and
//! responders, built from the [`Plan`] and recorded in the [`LabState`] as they are made.
//!
//! ```text
//!   mps-RUN-scan                mps-RUN-rtr                      mps-RUN-<population>
//!  +-------------+  veth   +----------------------+  veth   +---------------------------+
//!  | v-rtr       |---------| v-scan     v-mptcp   |---------| v-rtr  local 198.18.0.0/16|
//!  | 192.0.2.2   |         | 192.0.2.1  v-tcp     |---------| v-rtr  local 198.19.1.0/24|
//!  | default via |         |            v-closed  |-- ...   |        ...                |
//!  | 192.0.2.1   |         | forwarding, nftables |         | default via the router    |
//!  +-------------+         | (drop, ICMP reject), |         +---------------------------+
//!                          | no default route     |
//!                          +----------------------+
//! ```
//!
//! Nothing in the lab links to the root namespace, and no namespace has a route out of the lab.

use super::connect::{self, Outcome};
use super::ground_truth::{write_run_files, GroundTruth, RunFiles};
use super::netns;
use super::plan::{
    Plan, RangeKind, Size, LB_DIRECT_ADDR, PORTS, ROUTER_ADDR, ROUTER_ADDR6, SCANNER_ADDR, SCANNER_ADDR6,
};
use super::state::{self, check_run_name, run_dir, LabState, ProcEntry, ProcRef};
use super::sys;
use anyhow::{bail, Context};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The scanner's interface name (in the scanner namespace); every population namespace's link
/// to the router has the same name.
pub const SCANNER_IF: &str = "v-rtr";

/// How to build a lab.
#[derive(Debug, Clone, Default)]
pub struct LabOptions {
    /// The run name (1 to 8 lowercase letters and digits); random if `None`.
    pub name: Option<String>,
    /// How big.
    pub size: Size,
    /// The `mpscan` executable to start the servers with (`lab serve`); the current executable
    /// if `None`. Integration tests pass `env!("CARGO_BIN_EXE_mpscan")`.
    pub exe: Option<PathBuf>,
}

/// One range of a running lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabRange {
    /// Population name.
    pub name: String,
    /// How it answers.
    pub kind: RangeKind,
    /// Its addresses.
    pub prefix: String,
    /// The namespace behind it.
    pub namespace: String,
}

/// Everything a scanner (or a test) needs to know about a running lab. Written to
/// `info.json` in the run directory and printed by `up --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabInfo {
    /// The run name.
    pub run: String,
    /// Its size.
    pub size: Size,
    /// The scanner's namespace: run the scan there (`ip netns exec NS mpscan scan ...`).
    pub scanner_ns: String,
    /// The router's namespace.
    pub router_ns: String,
    /// Every namespace of the lab.
    pub namespaces: Vec<String>,
    /// The scanner's interface (in `scanner_ns`).
    pub interface: String,
    /// The scanner's source address.
    pub source_ip: Ipv4Addr,
    /// The gateway (the router's address on the scanner link).
    pub gateway_ip: Ipv4Addr,
    /// The gateway's MAC address.
    pub gateway_mac: String,
    /// The scanner's IPv6 source address (`None` for a lab made before IPv6 support).
    #[serde(default)]
    pub source_ip6: Option<Ipv6Addr>,
    /// The IPv6 gateway (the router's IPv6 address on the scanner link; same MAC).
    #[serde(default)]
    pub gateway_ip6: Option<Ipv6Addr>,
    /// The server ports.
    pub ports: Vec<u16>,
    /// Every IPv4 range.
    pub ranges: Vec<LabRange>,
    /// Every IPv6 range.
    #[serde(default)]
    pub ranges6: Vec<LabRange>,
    /// The run directory.
    pub dir: PathBuf,
    /// The ground-truth JSON.
    pub ground_truth: PathBuf,
    /// The targets file (one IPv4 prefix per line): `mpscan scan @FILE`.
    pub targets: PathBuf,
    /// The IPv6 hitlist (one address per line): `mpscan scan -6 @FILE`, or both families with
    /// `@targets @targets6`.
    #[serde(default)]
    pub targets6: Option<PathBuf>,
    /// The lab blocklist (the lab's own infrastructure only): `mpscan scan -b FILE`.
    pub blocklist: PathBuf,
}

impl LabInfo {
    /// The path of a run's info file.
    pub fn path(run: &str) -> PathBuf {
        run_dir(run).join("info.json")
    }

    /// Loads run `run`'s info, if the run finished coming up.
    pub fn load(run: &str) -> anyhow::Result<LabInfo> {
        let p = LabInfo::path(run);
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("lab {run} is not up ({} missing)", p.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
    }

    /// The command line that scans the whole lab from the scanner namespace.
    pub fn scan_command(&self, exe: &str) -> String {
        format!(
            "ip netns exec {} {exe} scan -i {} -S {} -G {} -b {} -p {} @{}",
            self.scanner_ns,
            self.interface,
            self.source_ip,
            self.gateway_mac,
            self.blocklist.display(),
            self.ports.iter().map(u16::to_string).collect::<Vec<_>>().join(","),
            self.targets.display()
        )
    }

    /// Human-readable summary, `key: value` lines, as printed by `lab up`.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "lab {} ({}) is up\n  scanner namespace: {}\n  interface:         {}\n  source:            {}\n  gateway:           {} ({})\n  ground truth:      {}\n  targets:           {}\n  blocklist:         {}\n  ranges:\n",
            self.run,
            self.size.label(),
            self.scanner_ns,
            self.interface,
            self.source_ip,
            self.gateway_ip,
            self.gateway_mac,
            self.ground_truth.display(),
            self.targets.display(),
            self.blocklist.display()
        );
        for r in self.ranges.iter().chain(&self.ranges6) {
            s.push_str(&format!("    {:<18} {:<8} {:?} in {}\n", r.prefix, r.name, r.kind, r.namespace));
        }
        if let (Some(src6), Some(t6)) = (self.source_ip6, &self.targets6) {
            s.push_str(&format!("  IPv6 source:       {src6}\n  IPv6 hitlist:      {}\n", t6.display()));
        }
        s.push_str(&format!("  scan it:\n    {}\n", self.scan_command("mpscan")));
        s
    }

    /// Runs `exe args...` inside the scanner namespace, returning its standard output.
    pub fn exec_in_scanner(&self, exe: &Path, args: &[&str]) -> anyhow::Result<String> {
        let exe = exe.to_str().context("executable path is not UTF-8")?;
        netns::exec(&self.scanner_ns, exe, args)
    }

    /// Connects from the scanner namespace to each target (with IPPROTO_MPTCP sockets if
    /// `mptcp`), using `exe lab connect`.
    pub fn connect_from_scanner(
        &self,
        exe: &Path,
        targets: &[SocketAddrV4],
        mptcp: bool,
        timeout_ms: u64,
    ) -> anyhow::Result<Vec<(SocketAddrV4, Outcome)>> {
        let mut args: Vec<String> = vec!["lab".into(), "connect".into(), "--timeout-ms".into(), timeout_ms.to_string()];
        if mptcp {
            args.push("--mptcp".into());
        }
        args.extend(targets.iter().map(|t| t.to_string()));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.exec_in_scanner(exe, &argv)?;
        let v: Vec<_> = out.lines().filter_map(connect::parse_line).collect();
        if v.len() != targets.len() {
            bail!("lab connect printed {} results for {} targets:\n{out}", v.len(), targets.len());
        }
        Ok(v)
    }

    /// Checks that the lab cannot reach outside itself: the scanner namespace has exactly one
    /// link besides loopback and every route goes through it; the router has no default route
    /// and routes only over the lab's own links; no lab namespace has any interface but
    /// loopback and the lab's veths. Returns what it checked, or every violation found.
    pub fn isolation(&self) -> anyhow::Result<Vec<String>> {
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        for ns in &self.namespaces {
            let links = links(ns)?;
            for (name, kind) in &links {
                if name != "lo" && !(name.starts_with("v-") && kind == "veth") {
                    bad.push(format!("{ns}: unexpected interface {name} ({kind})"));
                }
            }
        }
        let scan_links: Vec<String> = links(&self.scanner_ns)?.into_iter().map(|l| l.0).filter(|n| n != "lo").collect();
        if scan_links == [self.interface.clone()] {
            ok.push(format!("{}: one link besides lo ({})", self.scanner_ns, self.interface));
        } else {
            bad.push(format!("{}: links {scan_links:?}, expected only {}", self.scanner_ns, self.interface));
        }
        for (dst, dev) in routes(&self.scanner_ns)? {
            if dev != self.interface {
                bad.push(format!("{}: route {dst} via {dev}", self.scanner_ns));
            }
        }
        ok.push(format!("{}: every route goes through {}", self.scanner_ns, self.interface));
        let rtr = routes(&self.router_ns)?;
        if rtr.iter().any(|(d, _)| d == "default") {
            bad.push(format!("{}: has a default route", self.router_ns));
        } else {
            ok.push(format!("{}: no default route ({} routes, all to lab links)", self.router_ns, rtr.len()));
        }
        for (dst, dev) in rtr {
            if !dev.starts_with("v-") {
                bad.push(format!("{}: route {dst} via {dev}", self.router_ns));
            }
        }
        if bad.is_empty() {
            Ok(ok)
        } else {
            bail!("lab {} is not isolated:\n  {}", self.run, bad.join("\n  "))
        }
    }
}

/// (name, kind) of every interface in `ns`.
fn links(ns: &str) -> anyhow::Result<Vec<(String, String)>> {
    let v: serde_json::Value = serde_json::from_str(&netns::ip(ns, &["-d", "-j", "link", "show"])?)?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            let name = l["ifname"].as_str().unwrap_or("?").to_string();
            let kind = l["linkinfo"]["info_kind"].as_str().unwrap_or(if name == "lo" { "loopback" } else { "?" });
            (name, kind.to_string())
        })
        .collect())
}

/// (destination, device) of every route, IPv4 and IPv6, in `ns`'s main table.
fn routes(ns: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for family in ["-4", "-6"] {
        let v: serde_json::Value = serde_json::from_str(&netns::ip(ns, &[family, "-j", "route", "show"])?)?;
        out.extend(
            v.as_array()
                .into_iter()
                .flatten()
                .map(|r| (r["dst"].as_str().unwrap_or("?").to_string(), r["dev"].as_str().unwrap_or("?").to_string())),
        );
    }
    Ok(out)
}

/// A running lab. Dropping it tears the lab down (namespaces and processes); [`Lab::detach`]
/// leaves it up instead (what `mpscan lab up` does).
#[derive(Debug)]
pub struct Lab {
    /// What the scanner needs.
    pub info: LabInfo,
    state: LabState,
    children: Vec<Child>,
    exe: PathBuf,
    done: bool,
}

/// Checks that this machine can build a lab: root, and `ip` and `nft` installed.
pub fn preflight() -> anyhow::Result<()> {
    if !sys::is_root() {
        bail!("the lab needs root (network namespaces, nftables)");
    }
    for tool in ["ip", "nft", "sysctl"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        if !found {
            bail!("the lab needs `{tool}` (apt-get install iproute2 nftables procps)");
        }
    }
    Ok(())
}

/// A random run name: 6 lowercase letters and digits.
pub fn random_run_name() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..6).map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char).collect()
}

/// The name of namespace `what` of run `run`.
pub fn ns_name(run: &str, what: &str) -> String {
    format!("mps-{run}-{what}")
}

/// Removes every lab whose owner died (a test or an `up` that crashed). Returns the runs
/// removed. Labs left up on purpose are kept unless `include_orphans` and none of their
/// processes runs any more.
pub fn reap_stale(include_orphans: bool) -> Vec<(String, anyhow::Result<()>)> {
    let mut v = Vec::new();
    for run in LabState::runs() {
        let Ok(Some(st)) = LabState::load(&run) else { continue };
        if st.is_stale() && (st.owner.is_some() || include_orphans) {
            v.push((run, st.teardown()));
        }
    }
    v
}

/// Tears down run `run` (whatever state it is in). Succeeds if there was nothing to remove.
pub fn down(run: &str) -> anyhow::Result<bool> {
    check_run_name(run)?;
    let existed = match LabState::load(run)? {
        Some(st) => {
            st.teardown()?;
            true
        }
        None => false,
    };
    // Namespaces of this run that the state does not list (its file was lost).
    let left = netns::list(&format!("mps-{run}-"));
    for ns in &left {
        netns::delete(ns)?;
    }
    Ok(existed || !left.is_empty())
}

impl Lab {
    /// Brings a lab up and returns once every server and responder answers. Tears down a
    /// previous lab of the same name first, and everything it made if it fails.
    pub fn up(opts: LabOptions) -> anyhow::Result<Lab> {
        preflight()?;
        let run = opts.name.clone().unwrap_or_else(random_run_name);
        check_run_name(&run)?;
        for (stale, r) in reap_stale(false) {
            if let Err(e) = r {
                eprintln!("mpscan lab: removing stale lab {stale}: {e:#}");
            }
        }
        down(&run).with_context(|| format!("removing the previous lab {run}"))?;
        let exe = match &opts.exe {
            Some(p) => p.clone(),
            None => std::env::current_exe().context("finding the mpscan executable")?,
        };
        let mut state = LabState { run: run.clone(), owner: Some(ProcRef::current()), ..LabState::default() };
        state.save()?;
        let mut children = Vec::new();
        match build(&run, opts.size, &exe, &mut state, &mut children) {
            Ok(info) => {
                state.complete = true;
                state.save()?;
                Ok(Lab { info, state, children, exe, done: false })
            }
            Err(e) => {
                let _ = state.teardown();
                for mut c in children {
                    let _ = c.wait();
                }
                Err(e.context(format!("bringing lab {run} up (everything it made is removed)")))
            }
        }
    }

    /// The ground truth of this lab.
    pub fn ground_truth(&self) -> anyhow::Result<GroundTruth> {
        GroundTruth::load(&self.info.ground_truth)
    }

    /// The `mpscan` executable the lab's servers run.
    pub fn exe(&self) -> &Path {
        &self.exe
    }

    /// The processes the lab started (what they are, PID and start time).
    pub fn processes(&self) -> &[ProcEntry] {
        &self.state.processes
    }

    /// Leaves the lab up after this handle is gone: it is then removed only by `lab down`.
    pub fn detach(mut self) -> anyhow::Result<LabInfo> {
        self.state.owner = None;
        self.state.save()?;
        self.done = true;
        Ok(self.info.clone())
    }

    /// Tears the lab down now, reporting failures (dropping it does the same silently).
    pub fn down(mut self) -> anyhow::Result<()> {
        self.done = true;
        self.teardown()
    }

    fn teardown(&mut self) -> anyhow::Result<()> {
        let r = self.state.teardown();
        for c in &mut self.children {
            let _ = c.wait();
        }
        r
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) = self.teardown() {
                eprintln!("mpscan lab: {e:#}");
            }
        }
    }
}

/// Makes one namespace, recording it first.
fn add_ns(state: &mut LabState, name: &str) -> anyhow::Result<()> {
    state.namespaces.push(name.to_string());
    state.save()?;
    netns::add(name)?;
    netns::ip(name, &["link", "set", "lo", "up"])?;
    // No duplicate address detection on the links made later: IPv6 addresses are usable at once.
    netns::sysctl(name, &["net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0"])?;
    Ok(())
}

/// Adds a permanent IPv6 neighbour entry: the lab's links never need neighbour discovery, so the
/// first probes of a scan are not queued (or dropped) behind it.
fn neigh6(ns: &str, addr: Ipv6Addr, mac: &str, dev: &str) -> anyhow::Result<()> {
    netns::ip(ns, &["-6", "neigh", "replace", &addr.to_string(), "lladdr", mac, "dev", dev, "nud", "permanent"])?;
    Ok(())
}

/// Adds an IPv6 address without duplicate address detection.
fn addr6(ns: &str, addr: Ipv6Addr, dev: &str) -> anyhow::Result<()> {
    netns::ip(ns, &["-6", "addr", "add", &format!("{addr}/64"), "dev", dev, "nodad"])?;
    Ok(())
}

/// Everything `up` does between recording the owner and declaring the lab complete.
fn build(
    run: &str,
    size: Size,
    exe: &Path,
    state: &mut LabState,
    children: &mut Vec<Child>,
) -> anyhow::Result<LabInfo> {
    let plan = Plan::new(size);
    let dir = run_dir(run);
    let files = write_run_files(run, &plan)?;

    let scan = ns_name(run, "scan");
    let rtr = ns_name(run, "rtr");
    add_ns(state, &scan)?;
    add_ns(state, &rtr)?;
    let pop_names = plan.namespaces();
    for p in &pop_names {
        add_ns(state, &ns_name(run, p))?;
    }
    router_settings(&rtr)?;
    scanner_link(&scan, &rtr)?;
    let (transit, transit6) = population_links(run, &rtr, &pop_names)?;
    range_routes(run, &rtr, &plan, &transit, &transit6)?;
    firewall(&rtr, &plan)?;
    for p in &pop_names {
        namespace_settings(run, &rtr, &plan, p, &transit)?;
    }
    start_servers(run, exe, &plan, &pop_names, state, children)?;

    let RunFiles { ground_truth: gt_path, targets, targets6, blocklist } = files;
    let gateway_mac = netns::mac(&rtr, "v-scan")?;
    let mut namespaces = vec![scan.clone(), rtr.clone()];
    namespaces.extend(pop_names.iter().map(|p| ns_name(run, p)));
    let info = LabInfo {
        run: run.to_string(),
        size,
        scanner_ns: scan,
        router_ns: rtr,
        namespaces,
        interface: SCANNER_IF.to_string(),
        source_ip: SCANNER_ADDR,
        gateway_ip: ROUTER_ADDR,
        gateway_mac,
        source_ip6: Some(SCANNER_ADDR6),
        gateway_ip6: Some(ROUTER_ADDR6),
        ports: PORTS.to_vec(),
        ranges: plan.populations.iter().map(|p| lab_range(run, p)).collect(),
        ranges6: plan.populations6.iter().map(|p| lab_range(run, p)).collect(),
        dir: dir.clone(),
        ground_truth: gt_path,
        targets,
        targets6: Some(targets6),
        blocklist,
    };
    check_ready(&info, exe, &plan)?;
    std::fs::write(LabInfo::path(run), serde_json::to_string_pretty(&info)? + "\n")?;
    Ok(info)
}

/// The router: forwarding on, ICMP errors not rate-limited (the ICMP range must answer every
/// probe).
fn router_settings(rtr: &str) -> anyhow::Result<()> {
    let mut settings = super::paths::ROUTER_SYSCTLS.to_vec();
    // The routing loop's packets come back on the loop's link with the scanner's source: no
    // reverse-path filter may drop them.
    settings.extend(["net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"]);
    netns::sysctl(rtr, &settings)?;
    Ok(())
}

/// The scanner's link to the router, both families.
fn scanner_link(scan: &str, rtr: &str) -> anyhow::Result<()> {
    netns::veth(scan, SCANNER_IF, rtr, "v-scan")?;
    netns::ip(scan, &["addr", "add", &format!("{SCANNER_ADDR}/30"), "dev", SCANNER_IF])?;
    netns::ip(rtr, &["addr", "add", &format!("{ROUTER_ADDR}/30"), "dev", "v-scan"])?;
    netns::ip(scan, &["link", "set", SCANNER_IF, "up"])?;
    netns::ip(rtr, &["link", "set", "v-scan", "up"])?;
    netns::ip(scan, &["route", "add", "default", "via", &ROUTER_ADDR.to_string()])?;
    let scan_mac = netns::mac(scan, SCANNER_IF)?;
    addr6(scan, SCANNER_ADDR6, SCANNER_IF)?;
    addr6(rtr, ROUTER_ADDR6, "v-scan")?;
    netns::ip(scan, &["-6", "route", "add", "default", "via", &ROUTER_ADDR6.to_string()])?;
    // The scanner resolves its gateway itself (`ip -6 neigh`, provoked if missing), as on a real
    // machine; everything behind it is pinned.
    neigh6(rtr, SCANNER_ADDR6, &scan_mac, "v-scan")?;
    Ok(())
}

/// Addresses of the population namespaces on their transit links, by namespace.
type Transit<A> = std::collections::HashMap<&'static str, A>;

/// A transit link from the router to each population namespace, both families.
fn population_links(
    run: &str,
    rtr: &str,
    pop_names: &[&'static str],
) -> anyhow::Result<(Transit<Ipv4Addr>, Transit<Ipv6Addr>)> {
    let mut transit = std::collections::HashMap::new();
    let mut transit6 = std::collections::HashMap::new();
    for (i, p) in pop_names.iter().enumerate() {
        let ns = ns_name(run, p);
        let rif = format!("v-{p}");
        let (r_addr, p_addr) = Plan::transit(i);
        netns::veth(&ns, "v-rtr", rtr, &rif)?;
        netns::ip(&ns, &["addr", "add", &format!("{p_addr}/30"), "dev", "v-rtr"])?;
        netns::ip(rtr, &["addr", "add", &format!("{r_addr}/30"), "dev", &rif])?;
        netns::ip(&ns, &["link", "set", "v-rtr", "up"])?;
        netns::ip(rtr, &["link", "set", &rif, "up"])?;
        netns::ip(&ns, &["route", "add", "default", "via", &r_addr.to_string()])?;
        transit.insert(*p, p_addr);
        let (r6, p6) = Plan::transit6(i);
        addr6(&ns, p6, "v-rtr")?;
        addr6(rtr, r6, &rif)?;
        netns::ip(&ns, &["-6", "route", "add", "default", "via", &r6.to_string()])?;
        neigh6(&ns, r6, &netns::mac(rtr, &rif)?, "v-rtr")?;
        neigh6(rtr, p6, &netns::mac(&ns, "v-rtr")?, &rif)?;
        transit6.insert(*p, p6);
    }
    Ok((transit, transit6))
}

/// The ranges: the router routes each prefix to its namespace; where the kernel answers, a
/// local route makes it answer for every address.
fn range_routes(
    run: &str,
    rtr: &str,
    plan: &Plan,
    transit: &Transit<Ipv4Addr>,
    transit6: &Transit<Ipv6Addr>,
) -> anyhow::Result<()> {
    for pop in &plan.populations {
        let ns = ns_name(run, pop.namespace);
        let via = transit[pop.namespace].to_string();
        netns::ip(rtr, &["route", "add", &pop.prefix.to_string(), "via", &via])?;
        if pop.kind.kernel_answers() {
            netns::ip(&ns, &["route", "add", "local", &pop.prefix.to_string(), "dev", "lo"])?;
        }
    }
    for pop in &plan.populations6 {
        let ns = ns_name(run, pop.namespace);
        let via = transit6[pop.namespace].to_string();
        netns::ip(rtr, &["-6", "route", "add", &pop.prefix.to_string(), "via", &via])?;
        if pop.kind.kernel_answers() {
            netns::ip(&ns, &["-6", "route", "add", "local", &pop.prefix.to_string(), "dev", "lo"])?;
        }
    }
    Ok(())
}

/// The router's firewall: the silent range and the ICMP-rejecting one.
fn firewall(rtr: &str, plan: &Plan) -> anyhow::Result<()> {
    let find = |k: RangeKind| plan.populations.iter().find(|p| p.kind == k).map(|p| p.prefix).expect("in the plan");
    let find6 = |k: RangeKind| plan.populations6.iter().find(|p| p.kind == k).map(|p| p.prefix).expect("in the plan");
    netns::nft(
        rtr,
        &format!(
            "table inet mpslab {{\n  chain forward {{\n    type filter hook forward priority filter; policy accept;\n    \
             ip daddr {} drop\n    ip daddr {} reject with icmp type admin-prohibited\n    \
             ip6 daddr {} drop\n    ip6 daddr {} reject with icmpv6 type admin-prohibited\n  }}\n}}\n",
            find(RangeKind::Dropped),
            find(RangeKind::IcmpRejected),
            find6(RangeKind::Dropped),
            find6(RangeKind::IcmpRejected)
        ),
    )?;
    Ok(())
}

/// The settings of population namespace `p`: backlog, MPTCP, the load balancer's direct address,
/// the routing loop's forwarding and the SYN proxy's rules, as its populations need.
fn namespace_settings(run: &str, rtr: &str, plan: &Plan, p: &str, transit: &Transit<Ipv4Addr>) -> anyhow::Result<()> {
    let ns = ns_name(run, p);
    let kinds: Vec<RangeKind> = plan.populations.iter().filter(|x| x.namespace == p).map(|x| x.kind).collect();
    let kernel_server = kinds.iter().any(|k| k.serve_kind().is_some() && k.kernel_answers());
    if kernel_server {
        // Room for the SYN flood of a scan (beyond it the kernel falls back to SYN cookies).
        netns::sysctl(&ns, &["net.core.somaxconn=65535", "net.ipv4.tcp_max_syn_backlog=65535"])?;
    }
    if kinds.iter().any(|k| matches!(k, RangeKind::KernelMptcp | RangeKind::LoadBalancedMptcp | RangeKind::Synproxy)) {
        netns::sysctl(&ns, &["net.mptcp.enabled=1"])?;
    }
    if kinds.contains(&RangeKind::LoadBalancedMptcp) {
        // Apple-style: the C flag in the SYN-ACK, and ADD_ADDR of a direct address.
        netns::sysctl(&ns, &["net.mptcp.allow_join_initial_addr_port=0"])?;
        netns::ip(&ns, &["addr", "add", &format!("{LB_DIRECT_ADDR}/32"), "dev", "v-rtr"])?;
        netns::ip(&ns, &["mptcp", "endpoint", "add", &LB_DIRECT_ADDR.to_string(), "dev", "v-rtr", "signal"])?;
        netns::ip(rtr, &["route", "add", &format!("{LB_DIRECT_ADDR}/32"), "via", &transit[p].to_string()])?;
    }
    if kinds.contains(&RangeKind::RoutingLoop) {
        // Forward the range back to the router (its default route): the loop. Every time
        // exceeded must go out, and no redirect muddles the answers.
        let mut settings = super::paths::ROUTER_SYSCTLS.to_vec();
        settings.extend([
            "net.ipv4.conf.all.send_redirects=0",
            "net.ipv4.conf.v-rtr.send_redirects=0",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.v-rtr.rp_filter=0",
        ]);
        netns::sysctl(&ns, &settings)?;
    }
    if kinds.contains(&RangeKind::Synproxy) {
        let ports = PORTS.iter().map(u16::to_string).collect::<Vec<_>>().join(", ");
        netns::nft(
            &ns,
            &format!(
                "table inet mpslab {{\n  chain pre {{\n    type filter hook prerouting priority raw; policy accept;\n    \
                 tcp dport {{ {ports} }} tcp flags syn notrack\n  }}\n  chain in {{\n    \
                 type filter hook input priority filter; policy accept;\n    \
                 tcp dport {{ {ports} }} ct state invalid,untracked synproxy mss 1460 wscale 7 timestamp sack-perm\n    \
                 ct state invalid drop\n  }}\n}}\n"
            ),
        )?;
        netns::sysctl(&ns, &["net.netfilter.nf_conntrack_tcp_loose=0"])?;
    }
    Ok(())
}

/// Starts the servers and responders of the populations; waits for each one's "ready".
fn start_servers(
    run: &str,
    exe: &Path,
    plan: &Plan,
    pop_names: &[&'static str],
    state: &mut LabState,
    children: &mut Vec<Child>,
) -> anyhow::Result<()> {
    let log_dir = run_dir(run);
    let ports_arg = PORTS.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
    for p in pop_names {
        let ns = ns_name(run, p);
        let Some(pop) = plan.populations.iter().find(|x| x.namespace == *p && x.kind.serve_kind().is_some()) else {
            continue;
        };
        let kind = pop.kind.serve_kind().expect("filtered");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns]).arg(exe).args(["lab", "serve", "--kind", kind, "--ports", &ports_arg]);
        cmd.args(["--iface", "v-rtr"]);
        if !pop.kind.kernel_answers() {
            cmd.args(["--prefix", &pop.prefix.to_string()]);
        }
        let log_path = log_dir.join(format!("serve-{p}.log"));
        let log = std::fs::File::create(&log_path)?;
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log).process_group(0);
        let mut child = cmd.spawn().context("starting `ip netns exec ... mpscan lab serve`")?;
        let what = format!("serve {kind} in {ns}");
        match ProcRef::of(child.id()) {
            Some(proc) => {
                state.processes.push(ProcEntry { what: what.clone(), proc });
                state.save()?;
            }
            None => {
                let _ = child.wait();
                bail!("{what} exited at once (see {})", log_path.display());
            }
        }
        let stdout = child.stdout.take().expect("piped");
        children.push(child);
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if line.trim() != "ready" {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!("{what} did not become ready: {}", log.trim());
        }
    }
    Ok(())
}

/// Confirms from the scanner namespace that every range answers as planned: one connect to
/// the first address of each range on the first port.
fn check_ready(info: &LabInfo, exe: &Path, plan: &Plan) -> anyhow::Result<()> {
    let mut wrong = Vec::new();
    for mptcp in [true, false] {
        let mut targets = Vec::new();
        let mut want = Vec::new();
        for p in &plan.populations {
            if let Some((m, o)) = p.kind.readiness() {
                if m == mptcp {
                    targets.push(SocketAddrV4::new(first_host(p.prefix), PORTS[0]));
                    want.push((p.name, o));
                }
            }
        }
        let got = info.connect_from_scanner(exe, &targets, mptcp, 3000)?;
        wrong.extend(
            got.iter().zip(&want).filter(|((_, o), (_, w))| o.label() != *w).map(|((to, o), (name, w))| {
                format!("{name} ({to}): expected {w}, got {}", connect::format_line(*to, o))
            }),
        );
    }
    if !wrong.is_empty() {
        bail!("the lab does not answer as planned:\n  {}", wrong.join("\n  "));
    }
    Ok(())
}

/// The first address of a prefix after its network address.
pub fn first_host(p: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(p.network()) + 1)
}

/// Whether the processes of a run are all alive, for `status`.
pub fn process_report(st: &LabState) -> Vec<String> {
    st.processes
        .iter()
        .map(|p| format!("{} (pid {}): {}", p.what, p.proc.pid, if p.proc.alive() { "running" } else { "DEAD" }))
        .collect()
}

/// Whether a namespace exists, for `status`.
pub fn namespace_report(st: &LabState) -> Vec<String> {
    st.namespaces
        .iter()
        .map(|n| format!("{n}: {}", if state::namespace_exists(n) { "present" } else { "MISSING" }))
        .collect()
}

/// What the lab's info file says of one population, of either family.
fn lab_range<P: std::fmt::Display>(run: &str, p: &crate::lab::plan::Population<P>) -> LabRange {
    LabRange {
        name: p.name.to_string(),
        kind: p.kind,
        prefix: p.prefix.to_string(),
        namespace: ns_name(run, p.namespace),
    }
}
