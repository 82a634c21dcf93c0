//! The trace's output rows: one per validated answer (the hops file, whose columns and writers
//! are the result schema's: `mpscan_schema::trace`), one per traced (target, port, version) (the
//! verdicts CSV). A resumed trace reads its hops back into answers ([`answer_of`]) to judge them
//! with the new ones.

use super::answer::Answer;
use super::quote::{MpcState, OptionsChange, QuoteReport};
use super::verdict::TraceVerdict;
use crate::accept::ResponseKind as Kind;
use crate::classify::Class;
use crate::probe::ProbeVersion;
use mpscan_schema::trace::{HopRow, HOP_COLUMNS};
use serde::Serialize;
use std::net::IpAddr;

/// The hop row of one answer.
pub fn hop_row(a: &Answer) -> HopRow {
    let (kind, icmp_type, icmp_code) = match a.kind {
        Kind::Icmp { icmp_type, code } => ("icmp", Some(icmp_type), Some(code)),
        Kind::SynAck => ("syn-ack", None, None),
        Kind::Rst => ("rst", None, None),
    };
    let q = a.quote.as_ref();
    HopRow {
        target: a.target,
        port: a.port,
        probe: a.version,
        ttl: a.probe_ttl,
        router: a.responder,
        kind,
        icmp_type,
        icmp_code,
        reply_ttl: a.reply_ttl,
        rtt_ms: a.rtt_ms,
        quoted_bytes: q.map(|q| u16::try_from(q.quoted_bytes).unwrap_or(u16::MAX)),
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

/// The answer a hops-file record (text, `HOP_COLUMNS` order) stands for, as far as the verdict
/// needs it (a quote's TCP byte count and TSval are not in the file). An error names the column.
pub fn answer_of(rec: &csv::StringRecord) -> anyhow::Result<Answer> {
    let field = |name: &str| -> &str {
        let i = HOP_COLUMNS.iter().position(|c| c.name == name).expect("a hop column");
        rec.get(i).unwrap_or("")
    };
    fn parse<T: std::str::FromStr>(name: &str, s: &str) -> anyhow::Result<T> {
        s.parse().map_err(|_| anyhow::anyhow!("column {name}: {s:?} is not valid"))
    }
    let opt = |name: &str| -> anyhow::Result<Option<&str>> { Ok(Some(field(name)).filter(|s| !s.is_empty())) };
    let num = |name: &str| -> anyhow::Result<Option<u16>> { opt(name)?.map(|s| parse(name, s)).transpose() };
    let byte = |name: &str| -> anyhow::Result<Option<u8>> { opt(name)?.map(|s| parse(name, s)).transpose() };
    let version = ProbeVersion::parse(field("probe").as_bytes())
        .ok_or_else(|| anyhow::anyhow!("column probe: {:?} is not v0 or v1", field("probe")))?;
    let kind = match field("kind") {
        "icmp" => Kind::Icmp { icmp_type: byte("icmp_type")?.unwrap_or(0), code: byte("icmp_code")?.unwrap_or(0) },
        "syn-ack" => Kind::SynAck,
        "rst" => Kind::Rst,
        k => anyhow::bail!("column kind: {k:?} is not icmp, syn-ack or rst"),
    };
    let quote = match opt("mpc")? {
        Some(m) => Some(QuoteReport {
            quoted_bytes: usize::from(num("quoted_bytes")?.unwrap_or(0)),
            tcp_bytes: 0,
            mpc: MpcState::parse(m).ok_or_else(|| anyhow::anyhow!("column mpc: {m:?} is not a state"))?,
            mss: num("mss")?,
            options: opt("options")?.and_then(OptionsChange::parse).unwrap_or(OptionsChange::Unknown),
            window: num("window")?,
            dscp: byte("dscp")?.unwrap_or(0),
            ecn: byte("ecn")?.unwrap_or(0),
            tsval: None,
        }),
        None => None,
    };
    let class = opt("class")?
        .map(|c| Class::parse(c.as_bytes()).ok_or_else(|| anyhow::anyhow!("column class: {c:?} is not a class")))
        .transpose()?;
    Ok(Answer {
        target: parse("target", field("target"))?,
        port: parse("port", field("port"))?,
        version,
        probe_ttl: parse("ttl", field("ttl"))?,
        responder: parse("router", field("router"))?,
        kind,
        reply_ttl: parse("reply_ttl", field("reply_ttl"))?,
        rtt_ms: opt("rtt_ms")?.map(|s| parse("rtt_ms", s)).transpose()?,
        quote,
        seq_rewritten: parse("seq_rewritten", field("seq_rewritten"))?,
        class,
    })
}

/// One row of the verdicts CSV (its header is `mpscan_schema::trace::VERDICT_COLUMNS`).
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
    pub fn new(target: IpAddr, port: u16, version: ProbeVersion, v: &TraceVerdict) -> VerdictRow {
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

#[cfg(test)]
mod tests {
    use super::*;
    use mpscan_schema::trace::{Cell, VERDICT_COLUMNS};

    fn answers() -> Vec<Answer> {
        let q = QuoteReport {
            quoted_bytes: 64,
            tcp_bytes: 44,
            mpc: MpcState::Removed,
            mss: Some(1300),
            options: OptionsChange::Same,
            window: Some(64240),
            dscp: 2,
            ecn: 1,
            tsval: None,
        };
        let icmp = Answer {
            target: "198.18.0.1".parse().unwrap(),
            port: 443,
            version: ProbeVersion::V0,
            probe_ttl: 3,
            responder: "2001:db8::3".parse().unwrap(),
            kind: Kind::Icmp { icmp_type: 11, code: 0 },
            reply_ttl: 62,
            rtt_ms: Some(7),
            quote: Some(q),
            seq_rewritten: true,
            class: None,
        };
        let syn_ack = Answer {
            kind: Kind::SynAck,
            quote: None,
            class: Some(Class::Echo),
            seq_rewritten: false,
            rtt_ms: None,
            ..icmp
        };
        vec![icmp, syn_ack, Answer { kind: Kind::Rst, class: Some(Class::Closed), ..syn_ack }]
    }

    /// A hop row written as text reads back as the answer it came from (what a resumed trace
    /// judges), except the quote's TCP byte count, which the file does not keep.
    #[test]
    fn hop_rows_read_back_as_their_answers() {
        for a in answers() {
            let rec = csv::StringRecord::from(hop_row(&a).cells().iter().map(Cell::text).collect::<Vec<_>>());
            let mut back = answer_of(&rec).unwrap();
            if let (Some(b), Some(q)) = (back.quote.as_mut(), a.quote) {
                b.tcp_bytes = q.tcp_bytes;
            }
            assert_eq!(back, a);
        }
        let mut rec: Vec<String> = hop_row(&answers()[0]).cells().iter().map(Cell::text).collect();
        rec[11] = "gone".into();
        let e = answer_of(&csv::StringRecord::from(rec.clone())).unwrap_err();
        assert_eq!(e.to_string(), "column mpc: \"gone\" is not a state");
        rec[11] = "removed".into();
        rec[3] = "x".into();
        assert!(answer_of(&csv::StringRecord::from(rec)).unwrap_err().to_string().contains("column ttl"));
    }

    #[test]
    fn verdict_rows_have_the_schema_s_columns() {
        let v = crate::trace::verdict::judge(&answers());
        let mut w = csv::Writer::from_writer(vec![]);
        w.serialize(VerdictRow::new("198.18.0.1".parse().unwrap(), 443, ProbeVersion::V0, &v)).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(text.lines().next().unwrap(), VERDICT_COLUMNS.join(","));
    }
}
