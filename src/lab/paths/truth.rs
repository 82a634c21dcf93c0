//! The trace paths issue 14 asks for, and what a correct `mpscan trace` reports over each: the
//! hop rows of TTL 1 to 6 and the verdict, per family and MP_CAPABLE version
//! (`tests/lab_trace.rs` compares `mpscan trace`'s CSVs with them).
//!
//! The hop rows follow from what the path does (a router quotes what it received; a box acts
//! after the router's TTL check); the verdicts are the rules of `crate::trace::verdict` applied
//! by hand to those rows, one path at a time:
//!
//! | path | IPv4 verdict | IPv6 verdict |
//! |---|---|---|
//! | `stripper`: router 3 strips MP_CAPABLE | `removed-at` 4 (router 4), last intact 3 | same |
//! | `mss`: router 2 rewrites MSS to 1300 | `intact` (MSS 1300 from TTL 3) | same |
//! | `echo`: router 3 hides an echoing box | `answered-on-path` 4 (the server's address), class `echo`, `hop-count` | same |
//! | `synproxy`: nftables `synproxy` on router 3 | `answered-on-path` 4, class `tcp`, `hop-count` | same |
//! | `short-strip`: routers 2-4 quote 8 bytes (IPv4), router 3 strips | `unknown`, last intact 1, `change-after-unknown-stretch` | `removed-at` 4, last intact 3 |
//! | `short-tail`: routers 4-6 quote 8 bytes (IPv4) | `unknown`, last intact 3, `short-quotes-at-end` | `intact` |
//! | `mptcp`: a kernel MPTCP server, no box | `intact`, class `mptcp` (v1) / `tcp` (v0: Linux is v1 only) | same |
//!
//! On a path with many targets ([`TracePath::up_targets`]) every target has the same rows,
//! the target's own address standing where the server's does ([`LabPath::truth_for`]).
//!
//! The server is 7 hops away and answers every TTL from 7 (a RST where it has no listener,
//! class `closed`); an answering box on router 3 answers every TTL from 4 from 2 routers away.

use super::{Middlebox, PathSpec, Server, TracePath, ROUTERS};
use crate::probe::ProbeVersion;
use std::net::IpAddr;

/// A path of the trace lab (`mpscan lab paths up --path NAME` takes the table's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LabPath {
    /// Router 3 strips MP_CAPABLE.
    #[value(name = "stripper")]
    Stripper,
    /// Router 2 rewrites MSS.
    #[value(name = "mss")]
    MssRewriter,
    /// Router 3 hides an echoing box.
    #[value(name = "echo")]
    EchoBox,
    /// Router 3 runs nftables `synproxy`.
    #[value(name = "synproxy")]
    Synproxy,
    /// Routers 2 to 4 quote 8 bytes (IPv4); router 3 strips MP_CAPABLE.
    #[value(name = "short-strip")]
    ShortQuotesThenStripper,
    /// Routers 4 to 6 quote 8 bytes (IPv4); nothing changes.
    #[value(name = "short-tail")]
    ShortQuotesTail,
    /// A clean path to kernel MPTCP listeners.
    #[value(name = "mptcp")]
    MptcpServer,
}

/// One expected hop row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HopTruth {
    /// The probe's TTL.
    pub ttl: u8,
    /// Who answers it: a router, or (a box's SYN-ACK) the server's address.
    pub from: IpAddr,
    /// `icmp` or `syn-ack`.
    pub kind: &'static str,
    /// ICMP: the MP_CAPABLE state of the quote.
    pub mpc: Option<&'static str>,
    /// ICMP: the quoted MSS (none: an 8-byte quote does not carry it).
    pub mss: Option<u16>,
    /// ICMP: bytes quoted, where the path fixes it (an 8-byte quote of IPv4: 28).
    pub quoted_bytes: Option<usize>,
    /// SYN-ACK: its scan class.
    pub class: Option<&'static str>,
}

/// The expected verdict row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerdictTruth {
    /// The verdict.
    pub verdict: &'static str,
    /// The TTL of the change or of the on-path answer.
    pub hop: Option<u8>,
    /// The router (or answerer) there.
    pub router: Option<IpAddr>,
    /// The highest intact TTL before the change.
    pub last_intact: Option<u8>,
    /// The TTL first answered with a SYN-ACK or RST.
    pub answer_ttl: u8,
    /// That answer's scan class.
    pub answer_class: &'static str,
    /// The verdict's detail token.
    pub detail: &'static str,
}

/// What a probe of TTL 1 to 6 (hops) and the whole trace (verdict) give over one path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PathTruth {
    /// TTL 1 to [`ROUTERS`].
    pub hops: Vec<HopTruth>,
    /// The verdict.
    pub verdict: VerdictTruth,
}

impl LabPath {
    /// Every path, in the table's order.
    pub const ALL: [LabPath; 7] = [
        LabPath::Stripper,
        LabPath::MssRewriter,
        LabPath::EchoBox,
        LabPath::Synproxy,
        LabPath::ShortQuotesThenStripper,
        LabPath::ShortQuotesTail,
        LabPath::MptcpServer,
    ];

    /// The table's name.
    pub fn label(self) -> &'static str {
        match self {
            LabPath::Stripper => "stripper",
            LabPath::MssRewriter => "mss",
            LabPath::EchoBox => "echo",
            LabPath::Synproxy => "synproxy",
            LabPath::ShortQuotesThenStripper => "short-strip",
            LabPath::ShortQuotesTail => "short-tail",
            LabPath::MptcpServer => "mptcp",
        }
    }

    /// What the path has.
    pub fn spec(self) -> PathSpec {
        let spec = |middlebox, short_quotes, server| PathSpec { middlebox, short_quotes, server };
        match self {
            LabPath::Stripper => spec(Some((3, Middlebox::StripMpCapable)), None, Server::Closed),
            LabPath::MssRewriter => spec(Some((2, Middlebox::RewriteMss)), None, Server::Closed),
            LabPath::EchoBox => spec(Some((3, Middlebox::Echo)), None, Server::Closed),
            LabPath::Synproxy => spec(Some((3, Middlebox::Synproxy)), None, Server::Closed),
            LabPath::ShortQuotesThenStripper => {
                spec(Some((3, Middlebox::StripMpCapable)), Some((2, 4)), Server::Closed)
            }
            LabPath::ShortQuotesTail => spec(None, Some((4, 6)), Server::Closed),
            LabPath::MptcpServer => spec(None, None, Server::Mptcp),
        }
    }

    /// What a correct trace of this path's server (`v6`: its IPv6 address) with MP_CAPABLE
    /// `version` reports.
    pub fn truth(self, v6: bool, version: ProbeVersion) -> PathTruth {
        self.truth_for(TracePath::server()[usize::from(v6)], version)
    }

    /// What a correct trace of `target` (the server, or one of the addresses it answers for on
    /// a path with many targets) with MP_CAPABLE `version` reports: an on-path box answers from
    /// the target's address.
    pub fn truth_for(self, target: IpAddr, version: ProbeVersion) -> PathTruth {
        let spec = self.spec();
        let (server, v6) = (target, target.is_ipv6());
        let box_class = |b| if b == Middlebox::Echo { "echo" } else { "tcp" };
        let answering = spec.middlebox.filter(|(_, b)| b.answers());
        let hops = (1..=ROUTERS)
            .map(|ttl| {
                if let Some((_, b)) = answering.filter(|(r, _)| ttl > *r) {
                    let class = Some(box_class(b));
                    return HopTruth {
                        ttl,
                        from: server,
                        kind: "syn-ack",
                        mpc: None,
                        mss: None,
                        quoted_bytes: None,
                        class,
                    };
                }
                let short = spec.quotes_short(ttl, v6);
                let after = |m| spec.middlebox.is_some_and(|(r, b)| b == m && ttl > r);
                let mpc = if short {
                    "unknown"
                } else if after(Middlebox::StripMpCapable) {
                    "removed"
                } else {
                    "intact"
                };
                let mss = (!short).then_some(if after(Middlebox::RewriteMss) { 1300 } else { 1460 });
                let quoted_bytes = short.then_some(20 + 8);
                let from = TracePath::router(ttl, v6);
                HopTruth { ttl, from, kind: "icmp", mpc: Some(mpc), mss, quoted_bytes, class: None }
            })
            .collect();
        PathTruth { hops, verdict: self.verdict(v6, version, server) }
    }

    fn verdict(self, v6: bool, version: ProbeVersion, server: IpAddr) -> VerdictTruth {
        let closed = |verdict, hop: Option<u8>, last_intact, detail| VerdictTruth {
            verdict,
            hop,
            router: hop.map(|h| TracePath::router(h, v6)),
            last_intact: Some(last_intact),
            answer_ttl: TracePath::server_ttl(),
            answer_class: "closed",
            detail,
        };
        let on_path = |answer_class| VerdictTruth {
            verdict: "answered-on-path",
            hop: Some(4),
            router: Some(server),
            last_intact: Some(3),
            answer_ttl: 4,
            answer_class,
            detail: "hop-count",
        };
        match self {
            LabPath::Stripper => closed("removed-at", Some(4), 3, "removed"),
            LabPath::MssRewriter => closed("intact", None, ROUTERS, "answered"),
            LabPath::EchoBox => on_path("echo"),
            LabPath::Synproxy => on_path("tcp"),
            LabPath::ShortQuotesThenStripper if v6 => closed("removed-at", Some(4), 3, "removed"),
            LabPath::ShortQuotesThenStripper => closed("unknown", None, 1, "change-after-unknown-stretch"),
            LabPath::ShortQuotesTail if v6 => closed("intact", None, ROUTERS, "answered"),
            LabPath::ShortQuotesTail => closed("unknown", None, 3, "short-quotes-at-end"),
            LabPath::MptcpServer => VerdictTruth {
                answer_class: if version == ProbeVersion::V1 { "mptcp" } else { "tcp" },
                ..closed("intact", None, ROUTERS, "answered")
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hops_follow_the_path() {
        let t = LabPath::ShortQuotesThenStripper.truth(false, ProbeVersion::V1);
        let mpc: Vec<_> = t.hops.iter().map(|h| h.mpc.unwrap()).collect();
        assert_eq!(mpc, ["intact", "unknown", "unknown", "unknown", "removed", "removed"]);
        assert_eq!(t.hops[1].quoted_bytes, Some(28));
        assert_eq!(t.hops[1].mss, None);
        let t6 = LabPath::ShortQuotesThenStripper.truth(true, ProbeVersion::V1);
        let mpc: Vec<_> = t6.hops.iter().map(|h| h.mpc.unwrap()).collect();
        assert_eq!(mpc, ["intact", "intact", "intact", "removed", "removed", "removed"]);
        let echo = LabPath::EchoBox.truth(true, ProbeVersion::V0);
        assert_eq!(
            echo.hops.iter().map(|h| h.kind).collect::<Vec<_>>(),
            ["icmp", "icmp", "icmp", "syn-ack", "syn-ack", "syn-ack"]
        );
        assert_eq!(echo.hops[3].from, TracePath::server()[1]);
        let mss = LabPath::MssRewriter.truth(false, ProbeVersion::V1);
        assert_eq!(mss.hops.iter().map(|h| h.mss.unwrap()).collect::<Vec<_>>(), [1460, 1460, 1300, 1300, 1300, 1300]);
        assert_eq!(mss.hops[5].from, TracePath::router(6, false));
    }

    #[test]
    fn many_targets_answer_as_themselves() {
        let t: IpAddr = "198.18.0.9".parse().unwrap();
        let echo = LabPath::EchoBox.truth_for(t, ProbeVersion::V1);
        assert_eq!(echo.hops[3].from, t);
        assert_eq!(echo.verdict.router, Some(t));
        assert_eq!(echo.hops[2].from, TracePath::router(3, false), "routers are the path's");
        let t6: IpAddr = "2001:db8:78::9".parse().unwrap();
        let strip = LabPath::Stripper.truth_for(t6, ProbeVersion::V0);
        assert_eq!(strip.verdict.router, Some(TracePath::router(4, true)));
        assert_eq!(strip, LabPath::Stripper.truth(true, ProbeVersion::V0), "no row names the target");
        assert_eq!(TracePath::target_addrs(1, true), vec![TracePath::server()[1]]);
        let many = TracePath::target_addrs(1000, false);
        assert_eq!(
            (many.len(), many[0], many[999]),
            (1000, "198.18.0.1".parse().unwrap(), "198.18.3.232".parse().unwrap())
        );
        let all6 = TracePath::target_addrs(super::super::MAX_TARGETS + 5, true);
        assert_eq!(all6.last().unwrap(), &"2001:db8:78::ffff".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn every_path_has_a_distinct_name_and_a_verdict_per_family() {
        let names: std::collections::BTreeSet<_> = LabPath::ALL.iter().map(|p| p.label()).collect();
        assert_eq!(names.len(), LabPath::ALL.len());
        for p in LabPath::ALL {
            for v6 in [false, true] {
                let t = p.truth(v6, ProbeVersion::V1);
                assert_eq!(t.hops.len(), usize::from(ROUTERS), "{p:?}");
                assert!(t.verdict.answer_ttl <= TracePath::server_ttl());
            }
        }
    }
}
