//! The ground truth: for every lab range, port and probe version, what a correct scan reports.
//!
//! `lab up` writes it as JSON next to the lab's state; tests and the demo load it with
//! [`GroundTruth::load`] and ask [`GroundTruth::expected`] about each CSV row (and about every
//! address that should have produced one). It is derived from the [`Plan`], the same data the
//! topology is built from.
//!
//! Classes follow the result CSV: `mptcp`, `echo`, `malformed`, `tcp`, `closed`, `unreachable`;
//! a silent target (no row at all) has no expectation (`None`).

use super::plan::{Plan, RangeKind, Size, INFRA_PREFIX, INFRA_PREFIX6, PORTS, ROUTER_ADDR, ROUTER_ADDR6};
use super::state::run_dir;
use crate::probe::ProbeVersion;
use anyhow::Context;
use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

/// A class a scan can report: the scanner's own, so the lab and the classifier cannot drift.
pub use crate::classify::Class;

/// What one (address, port, probe version) must produce: a row with these values. Fields that
/// are `None` are not constrained (or, for `mptcp_version`/`mpc_flags`, must be empty in the CSV
/// when the class is not `mptcp`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    /// The class.
    pub class: Class,
    /// Who answers: `None` means the probed address itself; the ICMP range's answers come from
    /// the router.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responder: Option<Ipv4Addr>,
    /// The same for an IPv6 range: the ICMPv6 range's answers come from the router's IPv6
    /// address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responder6: Option<Ipv6Addr>,
    /// MP_CAPABLE version of a real server's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mptcp_version: Option<u8>,
    /// MP_CAPABLE flags of a real server's answer, as in the CSV (`0x01`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mpc_flags: Option<String>,
    /// Whether the whole option list comes back (only stated for middleboxes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirrored: Option<bool>,
    /// Whether our TSval comes back as TSval (only stated for middleboxes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts_echoed: Option<bool>,
    /// The CSV's `detail` column where the lab fixes it: why `malformed`, or the ICMP type and
    /// code of an `unreachable` (`icmp-11-0`); the family's own numbers in an IPv6 range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Expected {
    fn class(class: Class) -> Expected {
        Expected {
            class,
            responder: None,
            responder6: None,
            mptcp_version: None,
            mpc_flags: None,
            mirrored: None,
            ts_echoed: None,
            detail: None,
        }
    }

    /// The address the answer to a probe of `target` comes from: the target itself, or the
    /// router (of the target's family) for the ICMP-rejecting ranges and the routing loop.
    pub fn responder_for(&self, target: IpAddr) -> IpAddr {
        match target {
            IpAddr::V4(_) => self.responder.map_or(target, IpAddr::V4),
            IpAddr::V6(_) => self.responder6.map_or(target, IpAddr::V6),
        }
    }

    fn mptcp(version: u8, flags: u8) -> Expected {
        Expected {
            mptcp_version: Some(version),
            mpc_flags: Some(format!("0x{flags:02x}")),
            ..Expected::class(Class::Mptcp)
        }
    }

    fn echo(mirrored: bool) -> Expected {
        Expected { mirrored: Some(mirrored), ts_echoed: Some(mirrored), ..Expected::class(Class::Echo) }
    }
}

/// Expectations for both probe versions; `None` = silent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByVersion {
    /// For a v0 probe.
    pub v0: Option<Expected>,
    /// For a v1 probe.
    pub v1: Option<Expected>,
}

impl ByVersion {
    fn same(e: Option<Expected>) -> ByVersion {
        ByVersion { v0: e.clone(), v1: e }
    }

    /// The expectation for `v`.
    pub fn get(&self, v: ProbeVersion) -> Option<&Expected> {
        match v {
            ProbeVersion::V0 => self.v0.as_ref(),
            ProbeVersion::V1 => self.v1.as_ref(),
        }
    }
}

/// Expectations for one port of a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortTruth {
    /// The port.
    pub port: u16,
    /// What each probe version gets.
    #[serde(flatten)]
    pub expect: ByVersion,
}

/// One range of the lab and what it answers. `P` is [`Ipv4Net`] (the default) or [`Ipv6Net`]
/// ([`RangeTruth6`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "P: std::fmt::Display",
    deserialize = "P: std::str::FromStr, <P as std::str::FromStr>::Err: std::fmt::Display"
))]
pub struct RangeTruth<P = Ipv4Net> {
    /// Population name.
    pub name: String,
    /// How it is built.
    pub kind: RangeKind,
    /// Its addresses.
    #[serde(with = "prefix_text")]
    pub prefix: P,
    /// What it stands for on the Internet.
    pub stands_for: String,
    /// The server ports ([`PORTS`]).
    pub ports: Vec<PortTruth>,
    /// Every other port.
    pub other_ports: ByVersion,
}

/// An IPv6 range of the lab and what it answers.
pub type RangeTruth6 = RangeTruth<Ipv6Net>;

impl<P> RangeTruth<P> {
    /// Expectations for `port`.
    pub fn for_port(&self, port: u16) -> &ByVersion {
        self.ports.iter().find(|p| p.port == port).map_or(&self.other_ports, |p| &p.expect)
    }
}

/// The whole ground truth of one lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// The lab run it describes.
    pub run: String,
    /// Its size.
    pub size: Size,
    /// The server ports.
    pub ports: Vec<u16>,
    /// Every IPv4 range.
    pub ranges: Vec<RangeTruth>,
    /// Every IPv6 range (absent in the ground truth of labs older than IPv6 support).
    #[serde(default)]
    pub ranges6: Vec<RangeTruth6>,
}

mod prefix_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::fmt::Display;
    use std::str::FromStr;

    pub fn serialize<P: Display, S: Serializer>(p: &P, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(p)
    }

    pub fn deserialize<'de, P, D>(d: D) -> Result<P, D::Error>
    where
        P: FromStr,
        P::Err: Display,
        D: Deserializer<'de>,
    {
        let s = String::deserialize(d)?;
        s.parse().map_err(|e| serde::de::Error::custom(format!("bad prefix {s:?}: {e}")))
    }
}

/// What a correct scan reports for one population of `plan`, of either family (`v6`).
fn range_truth<P: Copy>(plan: &Plan, p: &crate::lab::plan::Population<P>, v6: bool) -> RangeTruth<P> {
    let (on_ports, other) = expectations(p.kind, plan.namespace_addrs(p.namespace), v6);
    RangeTruth {
        name: p.name.to_string(),
        kind: p.kind,
        prefix: p.prefix,
        stands_for: p.stands_for.to_string(),
        ports: PORTS.iter().map(|&port| PortTruth { port, expect: on_ports.clone() }).collect(),
        other_ports: other,
    }
}

impl GroundTruth {
    /// The ground truth of a lab built from `plan`.
    pub fn from_plan(run: &str, plan: &Plan) -> GroundTruth {
        let ranges = plan.populations.iter().map(|p| range_truth(plan, p, false)).collect();
        let ranges6 = plan.populations6.iter().map(|p| range_truth(plan, p, true)).collect();
        GroundTruth { run: run.to_string(), size: plan.size, ports: PORTS.to_vec(), ranges, ranges6 }
    }

    /// Reads a ground-truth JSON file.
    pub fn load(path: &Path) -> anyhow::Result<GroundTruth> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading ground truth {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing ground truth {}", path.display()))
    }

    /// Writes it as pretty JSON.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing ground truth {}", path.display()))
    }

    /// The IPv4 range `ip` belongs to.
    pub fn range_of(&self, ip: IpAddr) -> Option<&RangeTruth> {
        let IpAddr::V4(ip) = ip else { return None };
        self.ranges.iter().find(|r| r.prefix.contains(&ip))
    }

    /// The IPv6 range `ip` belongs to.
    pub fn range6_of(&self, ip: IpAddr) -> Option<&RangeTruth6> {
        let IpAddr::V6(ip) = ip else { return None };
        self.ranges6.iter().find(|r| r.prefix.contains(&ip))
    }

    /// What a probe of `version` to `ip:port` must produce, or `None` if it must produce no row
    /// (a silent address, or one outside the lab). Either family.
    pub fn expected(&self, ip: IpAddr, port: u16, version: ProbeVersion) -> Option<&Expected> {
        match ip {
            IpAddr::V4(_) => self.range_of(ip)?.for_port(port).get(version),
            IpAddr::V6(_) => self.range6_of(ip)?.for_port(port).get(version),
        }
    }

    /// Every address of the lab's ranges (network and broadcast addresses included: the lab
    /// answers for all), IPv4 then IPv6.
    pub fn addresses(&self) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = Vec::new();
        for r in &self.ranges {
            v.extend((u32::from(r.prefix.network())..=u32::from(r.prefix.broadcast())).map(|a| IpAddr::V4(a.into())));
        }
        for r in &self.ranges6 {
            v.extend((u128::from(r.prefix.network())..=u128::from(r.prefix.broadcast())).map(|a| IpAddr::V6(a.into())));
        }
        v
    }

    /// The IPv6 hitlist of the lab: every address of every IPv6 range, one per line, as the
    /// studies' hitlists list known addresses (an `@FILE` for `mpscan scan`).
    pub fn hitlist6_text(&self) -> String {
        let mut s = String::from("# mpscan lab IPv6 hitlist (every address of every IPv6 population)\n");
        for r in &self.ranges6 {
            s.push_str(&format!("# {} {}\n", r.name, r.prefix));
            for a in u128::from(r.prefix.network())..=u128::from(r.prefix.broadcast()) {
                s.push_str(&format!("{}\n", Ipv6Addr::from(a)));
            }
        }
        s
    }

    /// The expected class (a shorthand for [`Self::expected`]).
    pub fn expected_class(&self, ip: IpAddr, port: u16, version: ProbeVersion) -> Option<Class> {
        self.expected(ip, port, version).map(|e| e.class)
    }

    /// The prefixes, one per line with the range name as a comment: a `@FILE` target list for
    /// `mpscan scan`.
    pub fn targets_text(&self) -> String {
        let mut s = String::from("# mpscan lab targets (every population range)\n");
        for r in &self.ranges {
            s.push_str(&format!("{}  # {}\n", r.prefix, r.name));
        }
        s
    }
}

/// (server ports, other ports) expectations of a kind, in the family `v6`, for a population
/// whose namespace has the transit addresses `ns_addrs`.
fn expectations(kind: RangeKind, ns_addrs: Option<(Ipv4Addr, Ipv6Addr)>, v6: bool) -> (ByVersion, ByVersion) {
    use Class::*;
    let icmp = |v4: &str, v6_detail: &str| Some(if v6 { v6_detail } else { v4 }.to_string());
    let closed = ByVersion::same(Some(Expected::class(Closed)));
    let tcp = ByVersion::same(Some(Expected::class(Tcp)));
    match kind {
        // Linux is v1 only: v0 SYNs fall back to plain TCP.
        RangeKind::KernelMptcp => {
            (ByVersion { v0: Some(Expected::class(Tcp)), v1: Some(Expected::mptcp(1, 0x01)) }, closed)
        }
        RangeKind::LoadBalancedMptcp => {
            (ByVersion { v0: Some(Expected::class(Tcp)), v1: Some(Expected::mptcp(1, 0x21)) }, closed)
        }
        RangeKind::KernelTcp | RangeKind::Synproxy => (tcp, closed),
        RangeKind::Closed => (closed.clone(), closed),
        RangeKind::Dropped => (ByVersion::same(None), ByVersion::same(None)),
        RangeKind::IcmpRejected => {
            // admin-prohibited: ICMP 3/13, ICMPv6 1/1.
            let e = ByVersion::same(Some(Expected {
                responder: Some(ROUTER_ADDR),
                responder6: Some(ROUTER_ADDR6),
                detail: icmp("icmp-3-13", "icmp-1-1"),
                ..Expected::class(Unreachable)
            }));
            (e.clone(), e)
        }
        RangeKind::RoutingLoop => {
            // Probes leave with TTL 64 (crate::probe::TTL): the router forwards the even TTLs,
            // the loop namespace the odd ones, and so sees TTL 1 and sends the time exceeded
            // (ICMP 11/0, ICMPv6 3/0) from its end of the transit link.
            const _: () =
                assert!(crate::probe::TTL.is_multiple_of(2), "the loop namespace answers only for an even TTL");
            let (a4, a6) = ns_addrs.expect("a population lives in a namespace of the plan");
            let e = ByVersion::same(Some(Expected {
                responder: Some(a4),
                responder6: Some(a6),
                detail: icmp("icmp-11-0", "icmp-3-0"),
                ..Expected::class(Unreachable)
            }));
            (e.clone(), e)
        }
        RangeKind::Echo => (ByVersion::same(Some(Expected::echo(false))), closed),
        RangeKind::Mirror => (ByVersion::same(Some(Expected::echo(true))), closed),
        // RFC 8684 §3.1: a responder signals a version no higher than offered; v0-only means 0.
        RangeKind::V0Server => (ByVersion::same(Some(Expected::mptcp(0, 0x81))), closed),
        // The answer's version is the probe's; the flags name no algorithm.
        RangeKind::NoAlgorithm => {
            let e = |version: u8| Expected {
                mptcp_version: Some(version),
                mpc_flags: Some("0x00".to_string()),
                detail: Some("mpc-no-algorithm".to_string()),
                ..Expected::class(Malformed)
            };
            (ByVersion { v0: Some(e(0)), v1: Some(e(1)) }, closed)
        }
    }
}

/// The files of a run beside its namespaces: the ground truth and what a scan of the lab reads.
pub(crate) struct RunFiles {
    pub ground_truth: PathBuf,
    pub targets: PathBuf,
    pub targets6: PathBuf,
    pub blocklist: PathBuf,
}

/// Writes the ground truth, the target lists and the blocklist of the run into its directory.
pub(crate) fn write_run_files(run: &str, plan: &Plan) -> anyhow::Result<RunFiles> {
    let dir = run_dir(run);
    let gt = GroundTruth::from_plan(run, plan);
    let gt_path = dir.join("ground-truth.json");
    gt.save(&gt_path)?;
    let targets = dir.join("targets.txt");
    std::fs::write(&targets, gt.targets_text())?;
    let targets6 = dir.join("targets6.txt");
    std::fs::write(&targets6, gt.hitlist6_text())?;
    let blocklist = dir.join("blocklist.txt");
    std::fs::write(
        &blocklist,
        format!(
            "# mpscan lab blocklist: the lab's own router and links, never a target\n{INFRA_PREFIX}\n{INFRA_PREFIX6}\n"
        ),
    )?;
    Ok(RunFiles { ground_truth: gt_path, targets, targets6, blocklist })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProbeVersion::{V0, V1};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn expectations_per_population() {
        let gt = GroundTruth::from_plan("t1", &Plan::new(Size::Small));
        assert_eq!(gt.expected_class(ip("198.18.0.5"), 443, V1), Some(Class::Mptcp));
        assert_eq!(gt.expected(ip("198.18.0.5"), 443, V1).unwrap().mpc_flags.as_deref(), Some("0x01"));
        assert_eq!(gt.expected_class(ip("198.18.0.5"), 443, V0), Some(Class::Tcp));
        assert_eq!(gt.expected_class(ip("198.18.0.5"), 22, V1), Some(Class::Closed));
        assert_eq!(gt.expected(ip("203.0.113.130"), 80, V1).unwrap().mpc_flags.as_deref(), Some("0x21"));
        assert_eq!(gt.expected_class(ip("203.0.113.1"), 80, V1), Some(Class::Tcp));
        assert_eq!(gt.expected_class(ip("198.19.3.1"), 80, V1), None);
        assert_eq!(gt.expected_class(ip("198.19.3.1"), 8080, V0), None);
        let icmp = gt.expected(ip("198.19.4.9"), 8080, V0).unwrap();
        assert_eq!((icmp.class, icmp.responder), (Class::Unreachable, Some(ROUTER_ADDR)));
        let m = gt.expected(ip("198.51.100.65"), 80, V0).unwrap();
        assert_eq!((m.class, m.mirrored, m.ts_echoed), (Class::Echo, Some(true), Some(true)));
        let e = gt.expected(ip("198.51.100.1"), 443, V1).unwrap();
        assert_eq!((e.class, e.mirrored, e.ts_echoed), (Class::Echo, Some(false), Some(false)));
        let v0 = gt.expected(ip("198.51.100.129"), 443, V1).unwrap();
        assert_eq!((v0.class, v0.mptcp_version, v0.mpc_flags.as_deref()), (Class::Mptcp, Some(0), Some("0x81")));
        assert_eq!(gt.expected_class(ip("198.51.100.129"), 81, V1), Some(Class::Closed));
        assert_eq!(gt.expected_class(ip("10.0.0.1"), 80, V1), None);
        assert_eq!(gt.expected_class(ip("2001:db8::1"), 80, V1), None);
        // IPv6 ranges.
        assert_eq!(gt.expected_class(ip("2001:db8:1::5"), 443, V1), Some(Class::Mptcp));
        assert_eq!(gt.expected_class(ip("2001:db8:1::5"), 443, V0), Some(Class::Tcp));
        assert_eq!(gt.expected_class(ip("2001:db8:1::5"), 22, V1), Some(Class::Closed));
        assert_eq!(gt.expected_class(ip("2001:db8:1::10"), 443, V1), None, "outside the small /124");
        assert_eq!(gt.expected_class(ip("2001:db8:2::f"), 80, V0), Some(Class::Tcp));
        assert_eq!(gt.expected_class(ip("2001:db8:3::1"), 80, V1), Some(Class::Closed));
        assert_eq!(gt.expected_class(ip("2001:db8:4::1"), 80, V1), None);
        let u = gt.expected(ip("2001:db8:5::3"), 22, V1).unwrap();
        assert_eq!(u.class, Class::Unreachable);
        assert_eq!(u.responder_for(ip("2001:db8:5::3")), IpAddr::V6(ROUTER_ADDR6));
        assert_eq!(u.responder_for(ip("198.19.4.9")), IpAddr::V4(ROUTER_ADDR));
        let m = gt.expected(ip("2001:db8:1::5"), 443, V1).unwrap();
        assert_eq!(m.responder_for(ip("2001:db8:1::5")), ip("2001:db8:1::5"));
        // The new populations: no algorithm, routing loop (both families).
        let n = gt.expected(ip("198.51.100.193"), 443, V1).unwrap();
        assert_eq!(
            (n.class, n.mptcp_version, n.detail.as_deref()),
            (Class::Malformed, Some(1), Some("mpc-no-algorithm"))
        );
        assert_eq!(gt.expected(ip("198.51.100.193"), 80, V0).unwrap().mptcp_version, Some(0));
        assert_eq!(gt.expected_class(ip("198.51.100.193"), 22, V0), Some(Class::Closed));
        let plan = Plan::new(Size::Small);
        let (a4, a6) = plan.namespace_addrs("loop").unwrap();
        let l = gt.expected(ip("198.19.5.3"), 22, V1).unwrap();
        assert_eq!((l.class, l.detail.as_deref()), (Class::Unreachable, Some("icmp-11-0")));
        assert_eq!(l.responder_for(ip("198.19.5.3")), IpAddr::V4(a4));
        let l6 = gt.expected(ip("2001:db8:6::3"), 443, V0).unwrap();
        assert_eq!((l6.class, l6.detail.as_deref()), (Class::Unreachable, Some("icmp-3-0")));
        assert_eq!(l6.responder_for(ip("2001:db8:6::3")), IpAddr::V6(a6));
        assert_eq!(gt.expected(ip("2001:db8:5::3"), 22, V1).unwrap().detail.as_deref(), Some("icmp-1-1"));
        assert_eq!(gt.expected(ip("198.19.4.3"), 22, V1).unwrap().detail.as_deref(), Some("icmp-3-13"));
        assert_eq!(gt.addresses().len() as u64, 304 + 96);
        let hitlist = gt.hitlist6_text();
        assert_eq!(hitlist.lines().filter(|l| !l.starts_with('#')).count(), 96);
        assert!(hitlist.contains("\n2001:db8:5::f\n"), "{hitlist}");
    }

    #[test]
    fn json_round_trip() {
        let gt = GroundTruth::from_plan("t2", &Plan::new(Size::Full));
        let text = serde_json::to_string(&gt).unwrap();
        let back: GroundTruth = serde_json::from_str(&text).unwrap();
        assert_eq!(back, gt);
        assert!(text.contains("\"prefix\":\"198.18.0.0/16\""), "{text}");
        assert!(serde_json::from_str::<GroundTruth>(&text.replace("198.18.0.0/16", "198.18.0.0/33")).is_err());
        assert!(serde_json::from_str::<GroundTruth>(&text.replace("2001:db8:1::/120", "2001:db8:1::/129")).is_err());
        // A ground truth written before IPv6 support still loads.
        let mut old: serde_json::Value = serde_json::from_str(&text).unwrap();
        old.as_object_mut().unwrap().remove("ranges6");
        let old: GroundTruth = serde_json::from_value(old).unwrap();
        assert!(old.ranges6.is_empty());
        assert_eq!(gt.targets_text().lines().count(), 1 + gt.ranges.len());
    }
}
