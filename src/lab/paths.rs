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
//! the scanner), and forwards the rest. A [`Box`] on a router changes SYNs in its netfilter
//! FORWARD hook, which Linux runs after the TTL check: the router quotes the probe as it
//! received it, and the next router's quote shows the change. So a box on router `i` is seen at
//! TTL `i + 1`, with TTL `i` the last intact quote (docs/LAB.md).
//!
//! Every namespace is named `<run>-t<node>`, created here, deleted by [`TracePath::down`] (and
//! on drop); nothing else is touched.

use super::netns;
use std::net::IpAddr;

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
}

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
    /// The router with the box and the box, if any.
    pub middlebox: Option<(u8, Middlebox)>,
    up: bool,
}

impl TracePath {
    /// The namespace of node `n` (0: scanner, 1..=6: routers, 7: server).
    pub fn ns(run: &str, n: u8) -> String {
        format!("{run}-t{n}")
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

    /// Creates the path `run` with `middlebox` on one router. Cleans up what it made on failure.
    pub fn up(run: &str, middlebox: Option<(u8, Middlebox)>) -> anyhow::Result<TracePath> {
        let mut p = TracePath {
            run: run.to_string(),
            scanner_ns: Self::ns(run, 0),
            scanner_if: "s0".into(),
            gateway_mac: String::new(),
            middlebox,
            up: true,
        };
        if let Err(e) = p.build() {
            p.down();
            return Err(e);
        }
        Ok(p)
    }

    fn build(&mut self) -> anyhow::Result<()> {
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
        if let Some((r, b)) = self.middlebox {
            let stmt = match b {
                Middlebox::StripMpCapable => "tcp flags syn reset tcp option mptcp",
                Middlebox::RewriteMss => "tcp flags syn tcp option maxseg size set 1300",
            };
            let rules = format!(
                "table inet mpscan_trace {{\n  chain syn_forward {{\n    type filter hook forward priority mangle;\n    {stmt}\n  }}\n}}\n"
            );
            netns::nft(&Self::ns(&self.run, r), &rules)?;
        }
        self.gateway_mac = netns::mac(&Self::ns(&self.run, 1), "w0")?;
        Ok(())
    }

    /// Deletes every namespace of this path (those that exist).
    pub fn down(&mut self) {
        if !self.up {
            return;
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
