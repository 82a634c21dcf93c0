//! Where results go: one [`Row`] per (target, port, probe version), streamed as CSV (or written
//! as Parquet, [`sink::RowSink`]), and the scan's [`metadata::Metadata`] as JSON at the end;
//! [`merge`] joins the files of a sharded scan.

pub mod csv;
pub mod merge;
pub mod metadata;
pub mod parquet;
pub mod sink;

use crate::accept::Response;
use crate::classify::{Class, Classification};
use serde::Serialize;
use std::net::IpAddr;
use std::time::SystemTime;

/// The CSV columns, in order. Analysis reads them by name; extra columns may follow.
pub const COLUMNS: [&str; 15] = [
    "ip",
    "port",
    "probe",
    "class",
    "responder",
    "mptcp_version",
    "mpc_flags",
    "mpc_key",
    "options",
    "mirrored",
    "ts_echoed",
    "ttl",
    "window",
    "timestamp",
    "detail",
];

/// One result row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The probed address.
    pub ip: IpAddr,
    /// The probed port.
    pub port: u16,
    /// `v0` or `v1`.
    pub probe: &'static str,
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
    /// The row for a validated, classified response received at `at`.
    pub fn new(r: &Response<'_>, v: &Classification, at: SystemTime) -> Row {
        let detail = match r.kind {
            crate::accept::ResponseKind::Icmp { icmp_type, code } => format!("icmp-{icmp_type}-{code}"),
            _ => v.detail.to_string(),
        };
        Row {
            ip: r.target,
            port: r.port,
            probe: r.version.label(),
            class: v.class,
            responder: r.responder,
            mptcp_version: v.mpc.map(|m| m.version),
            mpc_flags: v.mpc.map(|m| format!("0x{:02x}", m.flags)),
            mpc_key: v.mpc.and_then(|m| m.sender_key).map(|k| format!("{k:016x}")),
            options: crate::wire::to_hex(r.options),
            mirrored: v.mirrored,
            ts_echoed: v.ts_echoed,
            ttl: r.ttl,
            window: r.window,
            timestamp: humantime::format_rfc3339_micros(at).to_string(),
            detail,
        }
    }
}
