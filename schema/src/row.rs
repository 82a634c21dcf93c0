//! One result row, owned: what the scanner builds for each classified answer and every writer
//! ([`crate::sink::RowSink`]) takes. Its fields are [`crate::COLUMNS`], in order, spelled as the
//! CSV spells them (serde writes the CSV line from this struct).

use crate::class::Class;
use crate::probe::ProbeVersion;
use serde::Serialize;
use std::net::IpAddr;

/// One result row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The probed address.
    pub ip: IpAddr,
    /// The probed port.
    pub port: u16,
    /// The probe's MP_CAPABLE version.
    pub probe: ProbeVersion,
    /// The class.
    pub class: Class,
    /// Who answered (a router for ICMP).
    pub responder: IpAddr,
    /// MP_CAPABLE version in the answer.
    pub mptcp_version: Option<u8>,
    /// MP_CAPABLE flags as `0x..`.
    pub mpc_flags: Option<String>,
    /// The answer's MP_CAPABLE key, 16 hex digits.
    pub mpc_key: Option<String>,
    /// The answer's TCP options in hex.
    pub options: String,
    /// The whole option list came back unchanged.
    pub mirrored: bool,
    /// Our TSval came back as TSval.
    pub ts_echoed: bool,
    /// TTL / hop limit of the answer.
    pub ttl: u8,
    /// TCP window of the answer (0 for ICMP).
    pub window: u16,
    /// When the answer arrived, RFC 3339 with microseconds, UTC.
    pub timestamp: String,
    /// Why `malformed`; the ICMP type/code for `unreachable`.
    pub detail: String,
}

impl Row {
    /// The value of column `c`, typed as JSON lines write it: numbers and booleans as such, a
    /// missing value as null, the rest as the CSV's text.
    pub fn value(&self, c: crate::Col) -> serde_json::Value {
        use crate::Col;
        use serde_json::Value;
        let opt = |s: &Option<String>| s.as_ref().map_or(Value::Null, |s| Value::from(s.as_str()));
        match c {
            Col::Ip => self.ip.to_string().into(),
            Col::Port => self.port.into(),
            Col::Probe => self.probe.label().into(),
            Col::Class => self.class.label().into(),
            Col::Responder => self.responder.to_string().into(),
            Col::MptcpVersion => self.mptcp_version.map_or(Value::Null, Value::from),
            Col::MpcFlags => opt(&self.mpc_flags),
            Col::MpcKey => opt(&self.mpc_key),
            Col::Options => self.options.as_str().into(),
            Col::Mirrored => self.mirrored.into(),
            Col::TsEchoed => self.ts_echoed.into(),
            Col::Ttl => self.ttl.into(),
            Col::Window => self.window.into(),
            Col::Timestamp => self.timestamp.as_str().into(),
            Col::Detail => self.detail.as_str().into(),
        }
    }

    /// The CSV text of column `c` (what the whole-row CSV writer writes for it).
    pub fn text(&self, c: crate::Col) -> String {
        match self.value(c) {
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => String::new(),
            v => v.to_string(),
        }
    }
}
