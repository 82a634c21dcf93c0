//! The lab's address plan: which populations exist, where they live, what they stand for, and
//! what a correct scan must report for each of them.
//!
//! Everything here is pure data, computed from a [`Size`]: the topology code turns it into
//! namespaces and the ground truth is derived from it, so the two can never disagree.
//!
//! Addresses come only from the special-purpose ranges reserved for documentation and
//! benchmarking (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 198.18.0.0/15), which the
//! default blocklist keeps out of real scans.
//!
//! ```text
//! 192.0.2.0/24     lab infrastructure: scanner link 192.0.2.0/30 (router .1, scanner .2),
//!                  then one /30 per population namespace (router .4k+1, population .4k+2)
//! 198.18.0.0/16    kernel MPTCP servers (small: 198.18.0.0/25)
//! 198.19.1.0/24    plain TCP servers           198.19.2.0/24  closed (RST)
//! 198.19.3.0/24    silently dropped            198.19.4.0/24  ICMP admin-prohibited
//! 203.0.113.0/25   SYNPROXY in front of MPTCP  203.0.113.128/25 load-balanced MPTCP (C flag)
//! 198.51.100.0/26  echoing middlebox           198.51.100.64/26 mirroring middlebox
//! 198.51.100.128/26 v0-only MPTCP server       198.51.100.192/27 MP_CAPABLE naming no algorithm
//! 198.19.5.0/24    routing loop (ICMP time exceeded)
//! 198.51.100.254/32 load balancer's direct address
//! ```
//! (small: every population but the first is a /28 at the same base address.)
//!
//! IPv6 (the same kernel tricks; hitlist-sized populations, all from 2001:db8::/32):
//!
//! ```text
//! 2001:db8::/48       lab infrastructure: scanner link 2001:db8::/64 (router ::1, scanner ::2),
//!                     population namespace k's link 2001:db8:0:k+1::/64 (router ::1, population ::2)
//! 2001:db8:1::/120    kernel MPTCP servers     2001:db8:2::/120  plain TCP servers
//! 2001:db8:3::/120    closed (RST)             2001:db8:4::/120  silently dropped
//! 2001:db8:5::/120    ICMPv6 admin-prohibited  2001:db8:6::/120  routing loop (time exceeded)
//! ```
//! (small: /124 at the same bases.)

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The ports every lab server listens on. Other ports answer RST (or as their range's
/// firewall says).
pub const PORTS: [u16; 2] = [80, 443];

/// The router's address on the scanner link: the scanner's gateway, and the source of the ICMP
/// errors of the rejecting firewall.
pub const ROUTER_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The scanner's source address.
pub const SCANNER_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// The prefix of the lab's own links (router and transit addresses): the lab blocklist lists it
/// so that a scan of the lab never probes its infrastructure.
pub const INFRA_PREFIX: &str = "192.0.2.0/24";
/// The router's IPv6 address on the scanner link: the scanner's IPv6 gateway and the source of
/// the ICMPv6 errors of the rejecting firewall.
pub const ROUTER_ADDR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// The scanner's IPv6 source address.
pub const SCANNER_ADDR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
/// The IPv6 prefix of the lab's own links: the lab blocklist lists it beside [`INFRA_PREFIX`].
pub const INFRA_PREFIX6: &str = "2001:db8::/48";
/// The load-balanced server's direct address, announced with ADD_ADDR (`ip mptcp endpoint ...
/// signal`); not a scan target.
pub const LB_DIRECT_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 254);

/// How big a lab to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    /// A few hundred addresses: fast tests.
    #[default]
    Small,
    /// Tens of thousands of addresses: benchmarks and the demo.
    Full,
}

impl Size {
    /// `small` or `full`.
    pub fn label(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Full => "full",
        }
    }
}

/// What answers for a range, and how it is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RangeKind {
    /// Linux listeners opened with IPPROTO_MPTCP (v1 only): MP_CAPABLE v1 to v1 probes, plain
    /// SYN-ACK to v0 probes.
    KernelMptcp,
    /// Like [`RangeKind::KernelMptcp`] with `net.mptcp.allow_join_initial_addr_port=0`: the SYN-ACK
    /// carries the C flag, and the server announces a direct address (ADD_ADDR).
    LoadBalancedMptcp,
    /// Plain TCP listeners.
    KernelTcp,
    /// A local route and no listener: every SYN gets a RST.
    Closed,
    /// The router drops every packet to the range.
    Dropped,
    /// The router rejects every packet to the range with ICMP admin-prohibited.
    IcmpRejected,
    /// nftables SYNPROXY in front of an MPTCP listener: the SYN is answered by the firewall,
    /// without MP_CAPABLE.
    Synproxy,
    /// Userspace responder that copies the probe's MP_CAPABLE into its SYN-ACK.
    Echo,
    /// Userspace responder that returns the probe's whole option list.
    Mirror,
    /// Userspace v0-only MPTCP server: answers MP_CAPABLE v0 with its own key.
    V0Server,
    /// Userspace server that answers MP_CAPABLE of the probe's version with its own key and
    /// flags 0x00: no crypto algorithm, which RFC 8684 §3.1 says MUST be ignored.
    NoAlgorithm,
    /// The router sends the range to a namespace that routes it back: packets loop until their
    /// TTL runs out, and the namespace that sees TTL 1 answers ICMP time exceeded (unrouted
    /// space on the Internet, common in IPv6).
    RoutingLoop,
}

impl RangeKind {
    /// The `lab serve --kind` this range needs in its namespace, if any.
    pub fn serve_kind(self) -> Option<&'static str> {
        match self {
            RangeKind::KernelMptcp | RangeKind::LoadBalancedMptcp | RangeKind::Synproxy => Some("mptcp"),
            RangeKind::KernelTcp => Some("tcp"),
            RangeKind::Echo => Some("echo"),
            RangeKind::Mirror => Some("mirror"),
            RangeKind::V0Server => Some("v0"),
            RangeKind::NoAlgorithm => Some("noalgo"),
            RangeKind::Closed | RangeKind::Dropped | RangeKind::IcmpRejected | RangeKind::RoutingLoop => None,
        }
    }

    /// How `up` checks a range from the scanner: with an IPPROTO_MPTCP socket or not, and the
    /// outcome it must see; `None` for the silent range (nothing to wait for).
    pub(crate) fn readiness(self) -> Option<(bool, &'static str)> {
        match self {
            RangeKind::KernelMptcp | RangeKind::LoadBalancedMptcp => Some((true, "mptcp")),
            // The SYN proxy strips MP_CAPABLE; Linux ignores an echoed 4-byte or a v0 MP_CAPABLE in
            // a SYN-ACK and falls back to TCP.
            RangeKind::Synproxy
            | RangeKind::Echo
            | RangeKind::Mirror
            | RangeKind::V0Server
            | RangeKind::NoAlgorithm => Some((true, "tcp")),
            RangeKind::KernelTcp => Some((false, "tcp")),
            RangeKind::Closed => Some((false, "refused")),
            // An MPTCP socket's connect does not end on an ICMP error (Linux 6.18); a TCP one does.
            RangeKind::IcmpRejected => Some((false, "unreachable")),
            // A TCP connect does not end on a time exceeded (a soft error): nothing to wait for;
            // the scan tests check the loop's answers.
            RangeKind::Dropped | RangeKind::RoutingLoop => None,
        }
    }

    /// Whether the namespace's own kernel answers for the range (a local route), as opposed to
    /// a userspace responder reading frames from the wire.
    pub fn kernel_answers(self) -> bool {
        !matches!(
            self,
            RangeKind::Echo | RangeKind::Mirror | RangeKind::V0Server | RangeKind::NoAlgorithm | RangeKind::RoutingLoop
        )
    }
}

/// One population: a prefix that answers one way. `P` is the prefix type: [`Ipv4Net`] (the
/// default) or [`Ipv6Net`] for the IPv6 populations ([`Population6`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Population<P = Ipv4Net> {
    /// Short name, used in namespace (`mps-RUN-NAME`) and interface (`v-NAME`) names.
    pub name: &'static str,
    /// How it answers.
    pub kind: RangeKind,
    /// The addresses it answers for.
    pub prefix: P,
    /// The namespace it lives in (several populations may share one: the dropped and
    /// ICMP-rejected ranges are plain TCP servers behind the router's firewall).
    pub namespace: &'static str,
    /// What it stands for on the Internet.
    pub stands_for: &'static str,
}

/// An IPv6 population: a hitlist-sized prefix of 2001:db8::/32 that answers one way.
pub type Population6 = Population<Ipv6Net>;

/// The whole plan for one size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The size it was made for.
    pub size: Size,
    /// Every IPv4 population, in a fixed order.
    pub populations: Vec<Population>,
    /// Every IPv6 population, in a fixed order; each lives in a namespace of an IPv4 population
    /// (the kernel answers both families there).
    pub populations6: Vec<Population6>,
}

/// The kinds an IPv6 population may have: the ones the namespace's own kernel (or the router's
/// firewall) answers for; the userspace responders speak IPv4 only.
pub const KINDS6: [RangeKind; 6] = [
    RangeKind::KernelMptcp,
    RangeKind::KernelTcp,
    RangeKind::Closed,
    RangeKind::Dropped,
    RangeKind::IcmpRejected,
    RangeKind::RoutingLoop,
];

fn net(s: &str) -> Ipv4Net {
    s.parse().expect("the plan's prefixes are valid")
}

impl Plan {
    /// The plan for `size`.
    pub fn new(size: Size) -> Plan {
        let full = size == Size::Full;
        Plan { size, populations: Self::populations_v4(full), populations6: Self::populations_v6(full) }
    }

    /// The IPv4 populations: at full size each at its listed length (MPTCP a /16); small, /28s
    /// (MPTCP a /25) at the same bases.
    fn populations_v4(full: bool) -> Vec<Population> {
        let big = if full { "/16" } else { "/25" };
        // Full size: the listed lengths; small: /28 at the same bases.
        let p = |addr: &str, full_len: u8| -> Ipv4Net {
            let len = if full { full_len } else { 28 };
            net(&format!("{addr}/{len}"))
        };
        vec![
            Population {
                name: "mptcp",
                kind: RangeKind::KernelMptcp,
                prefix: net(&format!("198.18.0.0{big}")),
                namespace: "mptcp",
                stands_for: "Linux (upstream, v1) MPTCP servers, e.g. a CDN or a hybrid-access aggregation proxy",
            },
            Population {
                name: "tcp",
                kind: RangeKind::KernelTcp,
                prefix: p("198.19.1.0", 24),
                namespace: "tcp",
                stands_for: "ordinary web servers without MPTCP (most of the Internet)",
            },
            Population {
                name: "closed",
                kind: RangeKind::Closed,
                prefix: p("198.19.2.0", 24),
                namespace: "closed",
                stands_for: "hosts with the port closed (RST)",
            },
            Population {
                name: "drop",
                kind: RangeKind::Dropped,
                prefix: p("198.19.3.0", 24),
                namespace: "tcp",
                stands_for: "a firewall that silently drops (no answer at all)",
            },
            Population {
                name: "icmp",
                kind: RangeKind::IcmpRejected,
                prefix: p("198.19.4.0", 24),
                namespace: "tcp",
                stands_for: "a firewall that rejects with ICMP administratively prohibited",
            },
            Population {
                name: "synp",
                kind: RangeKind::Synproxy,
                prefix: p("203.0.113.0", 25),
                namespace: "synp",
                stands_for: "an option-stripping middlebox (SYN proxy / DDoS scrubber) in front of an MPTCP server",
            },
            Population {
                name: "lb",
                kind: RangeKind::LoadBalancedMptcp,
                prefix: p("203.0.113.128", 25),
                namespace: "lb",
                stands_for: "MPTCP behind a load balancer (Apple-style: C flag, ADD_ADDR of a direct address)",
            },
            Population {
                name: "echo",
                kind: RangeKind::Echo,
                prefix: p("198.51.100.0", 26),
                namespace: "echo",
                stands_for: "a middlebox that echoes the probe's MP_CAPABLE (the ~77k false positives of 2018)",
            },
            Population {
                name: "mirror",
                kind: RangeKind::Mirror,
                prefix: p("198.51.100.64", 26),
                namespace: "mirror",
                stands_for: "a middlebox that mirrors the probe's whole TCP option list",
            },
            Population {
                name: "v0",
                kind: RangeKind::V0Server,
                prefix: p("198.51.100.128", 26),
                namespace: "v0",
                stands_for: "a v0-only MPTCP server (multipath-tcp.org kernel, RFC 6824)",
            },
            Population {
                name: "noalgo",
                kind: RangeKind::NoAlgorithm,
                prefix: p("198.51.100.192", 27),
                namespace: "noalgo",
                stands_for: "an MP_CAPABLE answer naming no crypto algorithm (flags 0x00): not an MPTCP server",
            },
            Population {
                name: "loop",
                kind: RangeKind::RoutingLoop,
                prefix: p("198.19.5.0", 24),
                namespace: "loop",
                stands_for: "a routing loop in unrouted space: ICMP time exceeded from a router",
            },
        ]
    }

    /// The IPv6 populations: /120 at full size, /124 small.
    fn populations_v6(full: bool) -> Vec<Population<Ipv6Net>> {
        let p6 = |addr: &str| -> Ipv6Net {
            let len = if full { 120 } else { 124 };
            format!("{addr}/{len}").parse().expect("the plan's prefixes are valid")
        };
        vec![
            Population {
                name: "mptcp6",
                kind: RangeKind::KernelMptcp,
                prefix: p6("2001:db8:1::"),
                namespace: "mptcp",
                stands_for: "Linux MPTCP servers on an IPv6 hitlist",
            },
            Population {
                name: "tcp6",
                kind: RangeKind::KernelTcp,
                prefix: p6("2001:db8:2::"),
                namespace: "tcp",
                stands_for: "ordinary IPv6 web servers without MPTCP",
            },
            Population {
                name: "closed6",
                kind: RangeKind::Closed,
                prefix: p6("2001:db8:3::"),
                namespace: "closed",
                stands_for: "IPv6 hosts with the port closed (RST)",
            },
            Population {
                name: "drop6",
                kind: RangeKind::Dropped,
                prefix: p6("2001:db8:4::"),
                namespace: "tcp",
                stands_for: "an IPv6 firewall that silently drops",
            },
            Population {
                name: "icmp6",
                kind: RangeKind::IcmpRejected,
                prefix: p6("2001:db8:5::"),
                namespace: "tcp",
                stands_for: "an IPv6 firewall that rejects with ICMPv6 administratively prohibited",
            },
            Population {
                name: "loop6",
                kind: RangeKind::RoutingLoop,
                prefix: p6("2001:db8:6::"),
                namespace: "loop",
                stands_for: "an IPv6 routing loop: ICMPv6 time exceeded from a router",
            },
        ]
    }

    /// The IPv6 transit link of the `i`-th population namespace (0-based): (router side,
    /// population side), both in 2001:db8:0:i+1::/64.
    pub fn transit6(i: usize) -> (Ipv6Addr, Ipv6Addr) {
        let hi = (i as u16) + 1;
        (Ipv6Addr::new(0x2001, 0xdb8, 0, hi, 0, 0, 0, 1), Ipv6Addr::new(0x2001, 0xdb8, 0, hi, 0, 0, 0, 2))
    }

    /// Total number of IPv6 target addresses.
    pub fn address_count6(&self) -> u64 {
        self.populations6.iter().map(|p| 1u64 << (128 - p.prefix.prefix_len())).sum()
    }

    /// The population namespaces (without scanner and router), each once, in plan order.
    pub fn namespaces(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = Vec::new();
        for p in &self.populations {
            if !v.contains(&p.namespace) {
                v.push(p.namespace);
            }
        }
        v
    }

    /// The transit link of the `i`-th population namespace (0-based): (router side,
    /// population side), both in a /30 of 192.0.2.0/24.
    pub fn transit(i: usize) -> (Ipv4Addr, Ipv4Addr) {
        let base = 4 * (i as u32 + 1);
        let net = u32::from(Ipv4Addr::new(192, 0, 2, 0));
        (Ipv4Addr::from(net + base + 1), Ipv4Addr::from(net + base + 2))
    }

    /// Total number of target addresses.
    pub fn address_count(&self) -> u64 {
        self.populations.iter().map(|p| 1u64 << (32 - p.prefix.prefix_len())).sum()
    }

    /// The addresses (IPv4, IPv6) a population namespace sends its own ICMP errors from: its end
    /// of its transit link (the routing loop's time exceeded comes from there).
    pub fn namespace_addrs(&self, namespace: &str) -> Option<(Ipv4Addr, Ipv6Addr)> {
        let i = self.namespaces().iter().position(|n| *n == namespace)?;
        Some((Plan::transit(i).1, Plan::transit6(i).1))
    }

    /// The population `ip` belongs to.
    pub fn population_of(&self, ip: Ipv4Addr) -> Option<&Population> {
        self.populations.iter().find(|p| p.prefix.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_special_purpose_and_disjoint() {
        let special: Vec<Ipv4Net> =
            ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/15"].iter().map(|s| net(s)).collect();
        for size in [Size::Small, Size::Full] {
            let plan = Plan::new(size);
            for (i, a) in plan.populations.iter().enumerate() {
                assert!(special.iter().any(|s| s.contains(&a.prefix)), "{} outside the special ranges", a.prefix);
                assert!(!net(INFRA_PREFIX).contains(&a.prefix.network()));
                for b in &plan.populations[i + 1..] {
                    assert!(!a.prefix.contains(&b.prefix.network()) && !b.prefix.contains(&a.prefix.network()));
                }
                assert!(!a.prefix.contains(&LB_DIRECT_ADDR), "{} holds the LB direct address", a.name);
            }
        }
    }

    #[test]
    fn ipv6_populations_are_documentation_space_outside_the_infrastructure() {
        let doc: Ipv6Net = "2001:db8::/32".parse().unwrap();
        let infra: Ipv6Net = INFRA_PREFIX6.parse().unwrap();
        for size in [Size::Small, Size::Full] {
            let plan = Plan::new(size);
            let names = plan.namespaces();
            for (i, a) in plan.populations6.iter().enumerate() {
                assert!(doc.contains(&a.prefix) && !infra.contains(&a.prefix.network()), "{}", a.prefix);
                assert!(KINDS6.contains(&a.kind), "{:?}", a.kind);
                assert!(names.contains(&a.namespace), "{} lives in no namespace", a.name);
                for b in &plan.populations6[i + 1..] {
                    assert!(!a.prefix.contains(&b.prefix.network()) && !b.prefix.contains(&a.prefix.network()));
                }
            }
            for k in 0..names.len() {
                let (r, p) = Plan::transit6(k);
                assert!(infra.contains(&r) && infra.contains(&p) && r != ROUTER_ADDR6 && p != SCANNER_ADDR6);
            }
        }
        assert_eq!(Plan::new(Size::Small).address_count6(), 6 * 16);
        assert_eq!(Plan::new(Size::Full).address_count6(), 6 * 256);
    }

    #[test]
    fn sizes() {
        let full = Plan::new(Size::Full);
        let small = Plan::new(Size::Small);
        assert!(full.address_count() > 60_000, "{}", full.address_count());
        assert!(small.address_count() < 500 && small.address_count() > 200, "{}", small.address_count());
        assert_eq!(full.population_of("198.18.200.7".parse().unwrap()).unwrap().name, "mptcp");
        assert!(small.population_of("198.18.200.7".parse().unwrap()).is_none());
        assert_eq!(small.population_of("198.51.100.70".parse().unwrap()).unwrap().name, "mirror");
    }

    #[test]
    fn transit_links_fit_and_names_are_short() {
        let plan = Plan::new(Size::Full);
        let n = plan.namespaces().len();
        let (r, p) = Plan::transit(n - 1);
        assert!(net(INFRA_PREFIX).contains(&r) && net(INFRA_PREFIX).contains(&p));
        assert_ne!(Plan::transit(0).0, ROUTER_ADDR);
        for ns in plan.namespaces() {
            assert!(format!("v-{ns}").len() <= 15);
        }
    }
}
