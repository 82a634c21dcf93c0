//! Trace paths (issue 14): a chain of router namespaces between a scanner namespace and a server
//! namespace, each path with its ground truth, for `mpscan trace`'s lab test. Separate from the
//! scan lab's topology (its populations and counts are untouched).
//!
//! ```text
//!  scanner ─ r1 ─ r2 ─ ... ─ r6 ─ server        link k joins node k and k + 1:
//!  node 0    1    2          6    7             198.19.(200+k).1 / 2001:db8:77:k::1 on node k,
//!                                               198.19.(200+k).2 / 2001:db8:77:k::2 on node k + 1
//! ```
//!
//! Router `i` answers a probe's time exceeded from its address on link `i - 1` (the one toward
//! the scanner), and forwards the rest. A [`Middlebox`] on a router acts in its netfilter
//! FORWARD hook, which Linux runs after the TTL check: the router quotes the probe as it
//! received it, and the next router's quote shows a change; a box that answers (echo, SYN
//! proxy) answers the probes the router would forward. So a box on router `i` is seen at TTL
//! `i + 1`, with TTL `i` the last intact quote (docs/LAB.md).
//!
//! * [`PathSpec`]: what a path has (a box, a stretch of RFC 792 routers, the server);
//!   [`truth::LabPath`] names the paths issue 14 asks for, each with its ground truth.
//! * [`quote8`]: the RFC 792 router's 8-byte time exceeded (userspace, IPv4).
//!
//! * [`cli`]: `mpscan lab paths up|down|truth`, a path left up for a person or a benchmark.
//!
//! Every namespace is named `mps-<run>-t<node>`, created here, deleted by [`TracePath::down`] (and
//! on drop), after the processes it started there (`mpscan lab serve`) are killed by PID;
//! nothing else is touched.
//!
//! A path has one target per family (the server's own address) or, with
//! [`TracePath::up_targets`], `K` targets per family that the server namespace answers for
//! through local routes ([`TARGETS4`], [`TARGETS6`]), for tracing at scale.

pub mod cli;
pub mod quote8;
pub mod truth;

use super::netns;
use anyhow::{bail, Context};
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A lab router: it forwards both families, and every time exceeded goes out (no ICMP rate
/// limit), or answers would be missing.
pub const ROUTER_SYSCTLS: [&str; 6] = [
    "net.ipv4.ip_forward=1",
    "net.ipv6.conf.all.forwarding=1",
    "net.ipv4.icmp_ratelimit=0",
    "net.ipv4.icmp_msgs_per_sec=1000000",
    "net.ipv4.icmp_msgs_burst=1000000",
    "net.ipv6.icmp.ratelimit=0",
];

/// Routers on a path.
pub const ROUTERS: u8 = 6;

/// What a router does to SYNs passing through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Middlebox {
    /// `tcp option mptcp reset`: MP_CAPABLE becomes NOPs.
    StripMpCapable,
    /// `tcp option maxseg size set 1300`.
    RewriteMss,
    /// An echoing box: the router forwards no TCP to the server (nftables drop in FORWARD); a
    /// userspace responder (`lab serve --kind on-path-echo`) answers each SYN it would forward
    /// with a SYN-ACK echoing the probe's MP_CAPABLE byte for byte, IPv4 and IPv6.
    Echo,
    /// A SYN proxy: it answers for the server with a SYN-ACK of its own, without MP_CAPABLE.
    /// IPv4: nftables `synproxy` in FORWARD (SYNs untracked in prerouting). IPv6: the kernel's
    /// drops our raw SYNs (docs/LAB.md), so a userspace one (`lab serve --kind on-path-plain`)
    /// behind a FORWARD drop, as for the echo.
    Synproxy,
}

impl Middlebox {
    /// Whether the box answers SYNs for the server (instead of changing and forwarding them).
    pub fn answers(self) -> bool {
        matches!(self, Middlebox::Echo | Middlebox::Synproxy)
    }
}

/// What answers at the end of the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// No listener: the kernel resets (class `closed`).
    Closed,
    /// Kernel MPTCP listeners on port 443, IPv4 and IPv6 (`lab serve --kind mptcp`).
    Mptcp,
}

/// What a trace path has besides its routers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathSpec {
    /// The router with a box, and the box.
    pub middlebox: Option<(u8, Middlebox)>,
    /// The routers `first..=last` that quote only 8 bytes in IPv4 (RFC 792, [`quote8`]).
    pub short_quotes: Option<(u8, u8)>,
    /// The server.
    pub server: Server,
}

impl PathSpec {
    /// Whether router `i` quotes only 8 bytes of a probe of this family.
    pub fn quotes_short(&self, i: u8, v6: bool) -> bool {
        !v6 && self.short_quotes.is_some_and(|(a, b)| (a..=b).contains(&i))
    }
}

/// The port the trace lab's server and boxes answer on.
pub const PORT: u16 = 443;

/// The IPv4 prefix the server answers for (local route) when a path has more than one target
/// (benchmarking space; the trace lab's namespaces are its own, apart from the scan lab's).
pub const TARGETS4: &str = "198.18.0.0/16";

/// The IPv6 prefix the server answers for when a path has more than one target.
pub const TARGETS6: &str = "2001:db8:78::/112";

/// Most targets per family a path can have (the prefixes' addresses but the first).
pub const MAX_TARGETS: u32 = 65535;

/// A path brought up: its namespaces, addresses and ground truth.
#[derive(Debug)]
pub struct TracePath {
    /// The run name, the prefix of every namespace.
    pub run: String,
    /// The scanner's namespace.
    pub scanner_ns: String,
    /// The scanner's interface.
    pub scanner_if: String,
    /// The MAC of router 1's interface toward the scanner (the probes' next hop).
    pub gateway_mac: String,
    /// What the path has.
    pub spec: PathSpec,
    /// Targets per family: 1 (the server's own address) or `2..=MAX_TARGETS` (the first
    /// addresses after [`TARGETS4`]'s and [`TARGETS6`]'s base).
    pub targets: u32,
    /// The processes started in the path's namespaces (what, the process), killed by PID.
    children: Vec<(String, Child)>,
    /// Where the processes' standard error goes: a file per process in this directory (a path
    /// left up outlives the command that made it, whose stderr must not stay open), or ours.
    log_dir: Option<std::path::PathBuf>,
    up: bool,
}

impl TracePath {
    /// The namespace of node `n` (0: scanner, 1..=6: routers, 7: server): `mps-RUN-tN`, so that
    /// `mpscan lab down --name RUN` finds it as it finds the scan lab's.
    pub fn ns(run: &str, n: u8) -> String {
        super::topology::ns_name(run, &format!("t{n}"))
    }

    /// The targets of family `v6` of a path with `count` targets per family: the server's own
    /// address for 1, else the first `count` addresses after the base of [`TARGETS4`] /
    /// [`TARGETS6`] (`count` is capped at [`MAX_TARGETS`]).
    pub fn target_addrs(count: u32, v6: bool) -> Vec<IpAddr> {
        if count <= 1 {
            return vec![Self::server()[usize::from(v6)]];
        }
        let n = count.min(MAX_TARGETS);
        if v6 {
            let base: ipnet::Ipv6Net = TARGETS6.parse().expect("constant");
            let b = u128::from(base.network());
            (1..=n).map(|i| IpAddr::V6((b + u128::from(i)).into())).collect()
        } else {
            let base: ipnet::Ipv4Net = TARGETS4.parse().expect("constant");
            let b = u32::from(base.network());
            (1..=n).map(|i| IpAddr::V4((b + i).into())).collect()
        }
    }

    /// What the boxes' rules and responders match of family `v6`: the server's address, or the
    /// whole target prefix.
    fn target_net(&self, v6: bool) -> String {
        match (self.targets > 1, v6) {
            (true, false) => TARGETS4.to_string(),
            (true, true) => TARGETS6.to_string(),
            (false, v6) => {
                let a = Self::server()[usize::from(v6)];
                format!("{a}/{}", if v6 { 128 } else { 32 })
            }
        }
    }

    /// The server's addresses (the targets), IPv4 and IPv6.
    pub fn server() -> [IpAddr; 2] {
        [Self::addr(ROUTERS, 2, false), Self::addr(ROUTERS, 2, true)]
    }

    /// The address of side `side` (1: node k, 2: node k + 1) of link `k`.
    pub fn addr(k: u8, side: u8, v6: bool) -> IpAddr {
        if v6 {
            format!("2001:db8:77:{k}::{side}").parse().unwrap()
        } else {
            format!("198.19.{}.{side}", 200 + u16::from(k)).parse().unwrap()
        }
    }

    /// The address router `i` answers time exceeded from (its side of link `i - 1`).
    pub fn router(i: u8, v6: bool) -> IpAddr {
        Self::addr(i - 1, 2, v6)
    }

    /// The hop count of the server: it answers probes of this TTL and more.
    pub fn server_ttl() -> u8 {
        ROUTERS + 1
    }

    /// Creates the path `run` as `spec` says, with one target per family (the server); `exe` is
    /// the mpscan binary that runs the path's processes. Cleans up what it made on failure.
    pub fn up(run: &str, spec: PathSpec, exe: &Path) -> anyhow::Result<TracePath> {
        Self::up_targets(run, spec, 1, exe, None)
    }

    /// [`TracePath::up`] with `targets` targets per family (`1..=MAX_TARGETS`): above 1 the
    /// server namespace answers for [`TARGETS4`] and [`TARGETS6`] through local routes, and the
    /// boxes act on the whole prefix. With `log_dir`, each process's standard error goes to
    /// `serve-tN.log` there instead of ours.
    pub fn up_targets(
        run: &str,
        spec: PathSpec,
        targets: u32,
        exe: &Path,
        log_dir: Option<&Path>,
    ) -> anyhow::Result<TracePath> {
        if !(1..=MAX_TARGETS).contains(&targets) {
            bail!("a trace path has 1 to {MAX_TARGETS} targets per family, not {targets}");
        }
        let mut p = TracePath {
            run: run.to_string(),
            scanner_ns: Self::ns(run, 0),
            scanner_if: "s0".into(),
            gateway_mac: String::new(),
            spec,
            targets,
            children: Vec::new(),
            log_dir: log_dir.map(Path::to_path_buf),
            up: true,
        };
        if let Err(e) = p.build(exe) {
            p.down();
            return Err(e);
        }
        Ok(p)
    }

    fn build(&mut self, exe: &Path) -> anyhow::Result<()> {
        self.links()?;
        if self.targets > 1 {
            let ns = Self::ns(&self.run, ROUTERS + 1);
            netns::ip(&ns, &["route", "add", "local", TARGETS4, "dev", "lo"])?;
            netns::ip(&ns, &["-6", "route", "add", "local", TARGETS6, "dev", "lo"])?;
        }
        if let Some((r, b)) = self.spec.middlebox {
            self.middlebox(r, b, exe)?;
        }
        if let Some((a, b)) = self.spec.short_quotes {
            for i in a..=b {
                self.short_quotes(i, exe)?;
            }
        }
        if self.spec.server == Server::Mptcp {
            let ns = Self::ns(&self.run, ROUTERS + 1);
            netns::sysctl(&ns, &["net.mptcp.enabled=1"])?;
            let iface = format!("w{ROUTERS}");
            self.spawn(ROUTERS + 1, exe, &["--kind", "mptcp", "--iface", &iface])?;
        }
        self.gateway_mac = netns::mac(&Self::ns(&self.run, 1), "w0")?;
        Ok(())
    }

    /// The namespaces, links, addresses, routes and router sysctls.
    fn links(&self) -> anyhow::Result<()> {
        let last = ROUTERS + 1;
        for n in 0..=last {
            netns::add(&Self::ns(&self.run, n))?;
        }
        for k in 0..last {
            let (a, b) = (Self::ns(&self.run, k), Self::ns(&self.run, k + 1));
            let (ia, ib) = (if k == 0 { "s0".to_string() } else { format!("e{k}") }, format!("w{k}"));
            netns::veth(&a, &ia, &b, &ib)?;
            for (ns, ifname, side) in [(&a, &ia, 1u8), (&b, &ib, 2u8)] {
                let v4 = format!("{}/24", Self::addr(k, side, false));
                let v6 = format!("{}/64", Self::addr(k, side, true));
                netns::ip(ns, &["addr", "add", &v4, "dev", ifname])?;
                netns::ip(ns, &["-6", "addr", "add", &v6, "dev", ifname, "nodad"])?;
                netns::ip(ns, &["link", "set", ifname, "up"])?;
            }
        }
        for n in 0..=last {
            let ns = Self::ns(&self.run, n);
            netns::ip(&ns, &["link", "set", "lo", "up"])?;
            if n < last {
                // Toward the server: the next node.
                netns::ip(&ns, &["route", "add", "default", "via", &Self::addr(n, 2, false).to_string()])?;
                netns::ip(&ns, &["-6", "route", "add", "default", "via", &Self::addr(n, 2, true).to_string()])?;
            } else {
                netns::ip(&ns, &["route", "add", "default", "via", &Self::addr(n - 1, 1, false).to_string()])?;
                netns::ip(&ns, &["-6", "route", "add", "default", "via", &Self::addr(n - 1, 1, true).to_string()])?;
            }
            if (2..last).contains(&n) {
                // Back toward the scanner (router 1 is on its link): the previous node.
                let (v4, v6) = (Self::addr(n - 1, 1, false), Self::addr(n - 1, 1, true));
                netns::ip(&ns, &["route", "add", "198.19.200.0/24", "via", &v4.to_string()])?;
                netns::ip(&ns, &["-6", "route", "add", "2001:db8:77:0::/64", "via", &v6.to_string()])?;
            }
            if (1..last).contains(&n) {
                netns::sysctl(&ns, &ROUTER_SYSCTLS)?;
            }
        }
        self.permanent_neighbours()
    }

    /// Permanent neighbour entries at both ends of every link, both families, as the scan lab
    /// has: no answer waits for neighbour discovery. (All the TTLs of a target share one
    /// 4-tuple; a server whose SYN-ACK waited would meet the next SYNs with its connection
    /// request still open and not answer them, and the target's first answer would come late.)
    fn permanent_neighbours(&self) -> anyhow::Result<()> {
        for k in 0..=ROUTERS {
            let (a, b) = (Self::ns(&self.run, k), Self::ns(&self.run, k + 1));
            let (ia, ib) = (if k == 0 { "s0".to_string() } else { format!("e{k}") }, format!("w{k}"));
            let (mac_a, mac_b) = (netns::mac(&a, &ia)?, netns::mac(&b, &ib)?);
            for (ns, ifname, peer_side, peer_mac) in [(&a, &ia, 2u8, &mac_b), (&b, &ib, 1u8, &mac_a)] {
                for v6 in [false, true] {
                    let peer = Self::addr(k, peer_side, v6).to_string();
                    let fam = if v6 { "-6" } else { "-4" };
                    let args = [fam, "neigh", "replace", &peer, "lladdr", peer_mac, "dev", ifname, "nud", "permanent"];
                    netns::ip(ns, &args)?;
                }
            }
        }
        Ok(())
    }

    /// Puts box `b` on router `r`: its nftables rules, and its responder for an echo.
    fn middlebox(&mut self, r: u8, b: Middlebox, exe: &Path) -> anyhow::Result<()> {
        let (s4, s6) = (self.target_net(false), self.target_net(true));
        let (pre, fwd) = match b {
            Middlebox::StripMpCapable => (String::new(), "tcp flags syn reset tcp option mptcp".to_string()),
            Middlebox::RewriteMss => (String::new(), "tcp flags syn tcp option maxseg size set 1300".to_string()),
            // The kernel forwards nothing to the server; the responder answers instead.
            Middlebox::Echo => (String::new(), format!("ip daddr {s4} meta l4proto tcp drop\n    ip6 daddr {s6} meta l4proto tcp drop")),
            // IPv4: the kernel's SYN proxy. IPv6: a userspace one (docs/LAB.md: this kernel's
            // nftables synproxy drops IPv6 SYNs sent from a raw socket).
            Middlebox::Synproxy => (
                format!(
                    "  chain pre {{\n    type filter hook prerouting priority raw; policy accept;\n    \
                     ip daddr {s4} tcp flags syn notrack\n  }}\n"
                ),
                format!(
                    "ip daddr {s4} tcp dport {PORT} ct state invalid,untracked synproxy mss 1460 wscale 7 timestamp sack-perm\n    \
                     ip daddr {s4} ct state invalid drop\n    ip6 daddr {s6} meta l4proto tcp drop"
                ),
            ),
        };
        let rules = format!(
            "table inet mpscan_trace {{\n{pre}  chain syn_forward {{\n    type filter hook forward priority mangle;\n    {fwd}\n  }}\n}}\n"
        );
        let ns = Self::ns(&self.run, r);
        netns::nft(&ns, &rules)?;
        match b {
            Middlebox::Synproxy => {
                netns::sysctl(&ns, &["net.netfilter.nf_conntrack_tcp_loose=0"])?;
                let (iface, p6) = (format!("w{}", r - 1), s6.clone());
                self.spawn(r, exe, &["--kind", "on-path-plain", "--iface", &iface, "--prefix6", &p6])?;
            }
            Middlebox::Echo => {
                let (iface, p4, p6) = (format!("w{}", r - 1), s4.clone(), s6.clone());
                let args = ["--kind", "on-path-echo", "--iface", &iface, "--prefix", &p4, "--prefix6", &p6];
                self.spawn(r, exe, &args)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Makes router `i` an RFC 792 router for IPv4 probes to the server: nftables drops them in
    /// prerouting when their TTL expires there (before the kernel's own time exceeded), and
    /// `lab serve --kind quote8` answers them from the router's address toward the scanner.
    fn short_quotes(&mut self, i: u8, exe: &Path) -> anyhow::Result<()> {
        let s4 = self.target_net(false);
        let rules = format!(
            "table ip mpscan_quote8 {{\n  chain pre {{\n    type filter hook prerouting priority raw; policy accept;\n    \
             ip daddr {s4} ip ttl <= 1 drop\n  }}\n}}\n"
        );
        netns::nft(&Self::ns(&self.run, i), &rules)?;
        let (iface, prefix, source) = (format!("w{}", i - 1), s4, Self::router(i, false).to_string());
        self.spawn(i, exe, &["--kind", "quote8", "--iface", &iface, "--prefix", &prefix, "--source", &source])
    }

    /// Starts `exe lab serve --ports 443 ARGS` in node `n`'s namespace and waits for its `ready`.
    fn spawn(&mut self, n: u8, exe: &Path, args: &[&str]) -> anyhow::Result<()> {
        let ns = Self::ns(&self.run, n);
        let what = format!("lab serve {} in {ns}", args.join(" "));
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns]).arg(exe).args(["lab", "serve", "--ports", &PORT.to_string()]).args(args);
        let stderr = match &self.log_dir {
            Some(d) => {
                let log = d.join(format!("serve-t{n}.log"));
                let f = std::fs::OpenOptions::new().create(true).append(true).open(&log);
                Stdio::from(f.with_context(|| format!("creating {}", log.display()))?)
            }
            None => Stdio::inherit(),
        };
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(stderr).process_group(0);
        let mut child = cmd.spawn().with_context(|| format!("starting {what}"))?;
        let stdout = child.stdout.take().expect("piped");
        self.children.push((what.clone(), child));
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if line.trim() != "ready" {
            bail!("{what} did not become ready (its errors are above, or in serve-t{n}.log of the run directory)");
        }
        Ok(())
    }

    /// Leaves the path up after this handle is gone, returning the processes it started (what,
    /// PID) for the caller to record (`cli` writes them to the lab state, which `lab down`
    /// kills by PID and start time).
    pub fn detach(mut self) -> Vec<(String, u32)> {
        self.up = false;
        // Dropping a `Child` neither kills nor waits for it.
        self.children.drain(..).map(|(what, c)| (what, c.id())).collect()
    }

    /// Stops the processes this path started, then deletes every namespace of this path (those
    /// that exist).
    pub fn down(&mut self) {
        if !self.up {
            return;
        }
        // The processes first (by PID: `Child::kill`), so that no namespace outlives its delete.
        for (what, mut child) in self.children.drain(..) {
            if let Err(e) = child.kill() {
                eprintln!("stopping {what}: {e}");
            }
            let _ = child.wait();
        }
        for n in 0..=ROUTERS + 1 {
            let ns = Self::ns(&self.run, n);
            if netns::list(&ns).contains(&ns) {
                let _ = netns::delete(&ns);
            }
        }
        self.up = false;
    }
}

impl Drop for TracePath {
    fn drop(&mut self) {
        self.down();
    }
}
