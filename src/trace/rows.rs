//! The trace's output rows: one per validated answer (hops CSV), one per traced (target, port,
//! version) (verdicts CSV). Their own small serde types for now; they move to the result-schema
//! crate with the scan's rows.

use super::answer::Answer;
use super::verdict::TraceVerdict;
use crate::accept::ResponseKind as Kind;
use serde::Serialize;
use std::net::IpAddr;

/// One row of the hops CSV.
#[derive(Debug, Clone, Serialize)]
pub struct HopRow {
    /// The probed address.
    pub target: IpAddr,
    /// The probed port.
    pub port: u16,
    /// `v0` or `v1`.
    pub probe: &'static str,
    /// The probe's TTL / hop limit.
    pub ttl: u8,
    /// Who answered (a router for ICMP).
    pub router: IpAddr,
    /// `icmp`, `syn-ack` or `rst`.
    pub kind: &'static str,
    /// ICMP type and code (empty for TCP).
    pub icmp_type: Option<u8>,
    /// ICMP code.
    pub icmp_code: Option<u8>,
    /// Round trip in milliseconds (empty when the answer does not carry our send time).
    pub rtt_ms: Option<u32>,
    /// Bytes of our probe quoted (ICMP).
    pub quoted_bytes: Option<usize>,
    /// `intact`, `removed`, `modified`, `unknown` (ICMP).
    pub mpc: Option<&'static str>,
    /// The quoted MSS (empty: not quoted, or no MSS option).
    pub mss: Option<u16>,
    /// The rest of the option list: `same`, `removed`, `reordered`, `changed`, `unknown`.
    pub options: Option<&'static str>,
    /// The quoted window.
    pub window: Option<u16>,
    /// Quoted DSCP.
    pub dscp: Option<u8>,
    /// Quoted ECN bits.
    pub ecn: Option<u8>,
    /// The quoted sequence number was not ours but the IP ID was (a box rewrote it).
    pub seq_rewritten: bool,
    /// SYN-ACK/RST: the class `scan` gives it.
    pub class: Option<&'static str>,
}

impl HopRow {
    /// The row of one answer.
    pub fn new(a: &Answer) -> HopRow {
        let (kind, icmp_type, icmp_code) = match a.kind {
            Kind::Icmp { icmp_type, code } => ("icmp", Some(icmp_type), Some(code)),
            Kind::SynAck => ("syn-ack", None, None),
            Kind::Rst => ("rst", None, None),
        };
        let q = a.quote.as_ref();
        HopRow {
            target: a.target,
            port: a.port,
            probe: a.version.label(),
            ttl: a.probe_ttl,
            router: a.responder,
            kind,
            icmp_type,
            icmp_code,
            rtt_ms: a.rtt_ms,
            quoted_bytes: q.map(|q| q.quoted_bytes),
            mpc: q.map(|q| q.mpc.label()),
            mss: q.and_then(|q| q.mss),
            options: q.map(|q| q.options.label()),
            window: q.and_then(|q| q.window),
            dscp: q.map(|q| q.dscp),
            ecn: q.map(|q| q.ecn),
            seq_rewritten: a.seq_rewritten,
            class: a.class.map(|c| c.label()),
        }
    }
}

/// One row of the verdicts CSV.
#[derive(Debug, Clone, Serialize)]
pub struct VerdictRow {
    /// The probed address.
    pub target: IpAddr,
    /// The probed port.
    pub port: u16,
    /// `v0` or `v1`.
    pub probe: &'static str,
    /// `intact`, `removed-at`, `modified-at`, `answered-on-path`, `unknown`.
    pub verdict: &'static str,
    /// The TTL of the change or of the on-path answer.
    pub hop: Option<u8>,
    /// The router (or answerer) there.
    pub router: Option<IpAddr>,
    /// The highest TTL before the change whose quote was intact.
    pub last_intact: Option<u8>,
    /// The TTL at which a SYN-ACK or RST first came (the path length, for the target's own).
    pub answer_ttl: Option<u8>,
    /// The class `scan` gives that answer.
    pub answer_class: Option<&'static str>,
    /// Why (see `super::verdict`).
    pub detail: &'static str,
}

impl VerdictRow {
    /// The row of one verdict.
    pub fn new(target: IpAddr, port: u16, version: crate::probe::ProbeVersion, v: &TraceVerdict) -> VerdictRow {
        VerdictRow {
            target,
            port,
            probe: version.label(),
            verdict: v.kind.label(),
            hop: v.hop,
            router: v.router,
            last_intact: v.last_intact,
            answer_ttl: v.answer_ttl,
            answer_class: v.answer_class.map(|c| c.label()),
            detail: v.detail,
        }
    }
}
