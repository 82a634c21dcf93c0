//! Where results go: one [`Row`] per (target, port, probe version), streamed as CSV (or written
//! as Parquet) through a `RowSink`, and the scan's metadata JSON (`mpscan_schema::Metadata`) at the end;
//! [`merge`] joins the files of a sharded scan. The row, the columns and the writers are the
//! result schema's (`mpscan_schema`); this module builds rows from responses and picks the sink.

pub mod merge;
pub mod sink;

use crate::accept::Response;
use crate::classify::Classification;
use std::time::SystemTime;

pub use mpscan_schema::{Row, COLUMNS};

/// The row for a validated, classified response received at `at`.
pub fn new_row(r: &Response<'_>, v: &Classification, at: SystemTime) -> Row {
    let detail = match r.kind {
        crate::accept::ResponseKind::Icmp { icmp_type, code } => format!("icmp-{icmp_type}-{code}"),
        _ => v.detail.to_string(),
    };
    Row {
        ip: r.target,
        port: r.port,
        probe: r.version,
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
