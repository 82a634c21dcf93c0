//! The verified CSV (one row per selected scan row, joined with its target's attempt) and the
//! summary table.

use super::conn::{Announced, Attempt};
use super::input::ScanRow;
use super::verdict::ConfirmVerdict;
use crate::classify::Class;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

/// The CSV columns, in order (docs/VERIFY.md says what each means). Read them by name.
pub const COLUMNS: [&str; 21] = [
    "ip",
    "port",
    "probe",
    "class",
    "verdict",
    "mptcp",
    "fallback_reason",
    "kernel_flags",
    "checksum",
    "c_flag",
    "add_addr",
    "subflows",
    "app",
    "app_ok",
    "ttfb_ms",
    "error",
    "add_addr_accepted",
    "remote_key",
    "announced",
    "announced_joined",
    "announced_ms",
];

/// One output row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedRow {
    /// The scan row's address.
    pub ip: IpAddr,
    /// The scan row's port.
    pub port: u16,
    /// The scan row's probe version.
    pub probe: mpscan_schema::ProbeVersion,
    /// The scan row's class.
    pub class: Class,
    /// The verdict.
    pub verdict: &'static str,
    /// The connection was MPTCP at the end (`TCP_IS_MPTCP`); empty if it never connected.
    pub mptcp: Option<bool>,
    /// `handshake` or `after-handshake` for a fallback, else empty.
    pub fallback_reason: &'static str,
    /// `mptcpi_flags`, hex (`0x02`: the remote key arrived; `0x01`: fallback); empty without
    /// MPTCP_INFO.
    pub kernel_flags: Option<String>,
    /// DSS checksums in use on the connection (`mptcpi_csum_enabled`); empty without MPTCP_INFO.
    pub checksum: Option<bool>,
    /// The C flag in the scan's SYN-ACK (from its `mpc_flags`); empty if it had no MP_CAPABLE.
    pub c_flag: Option<bool>,
    /// Announced addresses the kernel opened a subflow to, space-separated (`ip` or `ip:port`
    /// when the port differs from the target's).
    pub add_addr: String,
    /// Subflows at the end, the first included; empty if not MPTCP.
    pub subflows: Option<u8>,
    /// `http`, `tls` or `none`.
    pub app: &'static str,
    /// The expected answer came back (HTTP status line, ServerHello); empty with `none`.
    pub app_ok: Option<bool>,
    /// Milliseconds from the request to the first byte of the answer.
    pub ttfb_ms: Option<String>,
    /// What went wrong, if anything.
    pub error: String,
    /// ADD_ADDRs our path manager accepted (`mptcpi_add_addr_accepted`).
    pub add_addr_accepted: Option<u8>,
    /// The peer's MP_CAPABLE key arrived (`MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED`).
    pub remote_key: bool,
    /// Every address the peer announced (ADD_ADDR), `ip:port` (`[ip]:port` for IPv6),
    /// space-separated, from the path manager's events; empty when none came or the events
    /// could not be read (the summary says which).
    pub announced: String,
    /// For each announced address, in the same order: `yes` if our kernel joined a subflow to it.
    pub announced_joined: String,
    /// For each announced address: milliseconds from the start of the connect to its arrival.
    pub announced_ms: String,
}

impl VerifiedRow {
    /// Joins a scan row with its target's attempt.
    pub fn new(row: &ScanRow, a: &Attempt) -> VerifiedRow {
        let (verdict, reason) = a.obs.verdict();
        let mptcp =
            a.obs.mptcp_after.or(a.obs.mptcp_at_connect).map(|after| after && a.obs.mptcp_at_connect == Some(true));
        let add_addr = a
            .announced
            .iter()
            .map(|s| if s.port() == row.port { s.ip().to_string() } else { s.to_string() })
            .collect::<Vec<_>>()
            .join(" ");
        VerifiedRow {
            ip: row.ip,
            port: row.port,
            probe: row.probe,
            class: row.class,
            verdict: verdict.label(),
            mptcp,
            fallback_reason: reason.map_or("", |r| r.label()),
            kernel_flags: a.info.map(|i| format!("0x{:02x}", i.flags)),
            checksum: a.info.map(|i| i.csum_enabled),
            c_flag: row.c_flag(),
            add_addr,
            subflows: a.info.map(|i| i.subflows_total.unwrap_or(i.subflows.saturating_add(1))),
            app: a.app.label(),
            app_ok: a.obs.app_attempted.then_some(a.obs.app_ok),
            ttfb_ms: a.obs.ttfb.map(|d| format!("{:.3}", d.as_secs_f64() * 1000.0)),
            error: a.obs.error.clone().unwrap_or_default(),
            add_addr_accepted: a.info.map(|i| i.add_addr_accepted),
            remote_key: a.obs.remote_key,
            announced: join(&a.announcements, |x| x.addr.to_string()),
            announced_joined: join(&a.announcements, |x| if x.joined { "yes" } else { "no" }.to_string()),
            announced_ms: join(&a.announcements, |x| format!("{:.1}", x.us as f64 / 1000.0)),
        }
    }
}

/// The announcements' `f` values, space-separated.
fn join(a: &Option<Vec<Announced>>, f: impl Fn(&Announced) -> String) -> String {
    a.iter().flatten().map(f).collect::<Vec<_>>().join(" ")
}

/// Writes the rows as CSV with a header.
pub fn write_csv(w: impl std::io::Write, rows: &[VerifiedRow]) -> anyhow::Result<()> {
    let mut wr = csv::Writer::from_writer(w);
    if rows.is_empty() {
        wr.write_record(COLUMNS)?;
    }
    for r in rows {
        wr.serialize(r)?;
    }
    wr.flush()?;
    Ok(())
}

/// Facts the summary states beside the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notes {
    /// Distinct targets connected to.
    pub targets: usize,
    /// Scan rows of class `mptcp` whose MP_CAPABLE was version 0: v0 servers, which Linux
    /// cannot confirm.
    pub v0_rows: usize,
    /// Some MPTCP connection reported `add_addr_accepted_max` 0: announced addresses are ignored.
    pub add_addr_ignored: bool,
    /// Rows the input had that could not be read.
    pub rejected: u64,
    /// The run was interrupted: this many targets were not tried.
    pub not_tried: usize,
    /// Why the path manager's events could not be read (`None`: they were).
    pub events_error: Option<String>,
    /// Event datagrams the kernel dropped because the reader fell behind.
    pub events_lost: u64,
}

/// The summary: rows per scan class and verdict, load-balancer signs, and the v1-only caveat.
pub fn summary(rows: &[VerifiedRow], notes: &Notes) -> String {
    let mut table: BTreeMap<Class, BTreeMap<&str, u64>> = BTreeMap::new();
    for r in rows {
        *table.entry(r.class).or_default().entry(r.verdict).or_default() += 1;
    }
    let verdicts: Vec<&str> = ConfirmVerdict::ALL.iter().map(|v| v.label()).collect();
    let mut s = String::new();
    let _ = writeln!(s, "mpscan verify: {} rows, {} targets", rows.len(), notes.targets);
    let _ = write!(s, "{:<12}", "scan class");
    for v in &verdicts {
        let _ = write!(s, " {v:>11}");
    }
    let _ = writeln!(s, " {:>8}", "total");
    let mut totals = vec![0u64; verdicts.len()];
    for (class, counts) in &table {
        let _ = write!(s, "{:<12}", class.label());
        let mut sum = 0;
        for (i, v) in verdicts.iter().enumerate() {
            let n = counts.get(v).copied().unwrap_or(0);
            totals[i] += n;
            sum += n;
            let _ = write!(s, " {n:>11}");
        }
        let _ = writeln!(s, " {sum:>8}");
    }
    let _ = write!(s, "{:<12}", "all");
    for n in &totals {
        let _ = write!(s, " {n:>11}");
    }
    let _ = writeln!(s, " {:>8}", totals.iter().sum::<u64>());

    let c_rows = rows.iter().filter(|r| r.c_flag == Some(true)).count();
    let announced = rows.iter().filter(|r| !r.add_addr.is_empty()).count();
    let c_and_announced = rows.iter().filter(|r| r.c_flag == Some(true) && !r.add_addr.is_empty()).count();
    let _ = writeln!(
        s,
        "load balancers: {c_rows} rows with the C flag in the scan, {announced} with announced addresses (ADD_ADDR), {c_and_announced} with both"
    );
    match &notes.events_error {
        None => {
            let ann = rows.iter().filter(|r| !r.announced.is_empty()).count();
            let joined = rows.iter().filter(|r| r.announced_joined.split(' ').any(|j| j == "yes")).count();
            let _ = writeln!(
                s,
                "ADD_ADDR (path-manager events): {ann} rows received an announcement, {joined} joined a subflow to one"
            );
        }
        Some(e) => {
            let _ = writeln!(
                s,
                "warning: the MPTCP path-manager events could not be read ({e}): the announced columns are empty"
            );
        }
    }
    if notes.events_lost > 0 {
        let _ = writeln!(
            s,
            "warning: {} path-manager event messages were lost (the reader fell behind): some announcements may be missing",
            notes.events_lost
        );
    }
    let _ = writeln!(
        s,
        "note: Linux speaks MPTCP v1 only; v0-only servers show as fallback ({} mptcp rows had a v0 MP_CAPABLE in the scan)",
        notes.v0_rows
    );
    if notes.add_addr_ignored {
        let _ = writeln!(
            s,
            "warning: this host's MPTCP path manager accepts no ADD_ADDR (add_addr_accepted limit 0): it joins no announced \
             address (the announcements still show in `announced`); to join them, run \
             `ip mptcp limits set subflows 2 add_addr_accepted 2`"
        );
    }
    if notes.rejected > 0 {
        let _ = writeln!(s, "warning: {} input rows could not be read", notes.rejected);
    }
    if notes.not_tried > 0 {
        let _ = writeln!(s, "interrupted: {} targets were not tried (their rows are not written)", notes.not_tried);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::app::App;
    use crate::verify::info::MptcpInfo;
    use crate::verify::verdict::{Connect, Observation};
    use std::time::Duration;

    fn row(class: Class, flags: Option<u8>) -> ScanRow {
        ScanRow {
            ip: "203.0.113.130".parse().unwrap(),
            port: 443,
            probe: mpscan_schema::ProbeVersion::V1,
            class,
            mpc_flags: flags,
            mptcp_version: flags.map(|_| 1),
            target: 0,
        }
    }

    fn confirmed_lb() -> Attempt {
        let mut obs = Observation::failed(Connect::Connected);
        obs.mptcp_at_connect = Some(true);
        obs.mptcp_after = Some(true);
        obs.remote_key = true;
        obs.app_attempted = true;
        obs.app_bytes = 55;
        obs.app_ok = true;
        obs.ttfb = Some(Duration::from_micros(1234));
        let info =
            MptcpInfo { subflows: 1, add_addr_accepted: 1, flags: 2, subflows_total: Some(2), ..Default::default() };
        Attempt {
            app: App::Tls,
            obs,
            info: Some(info),
            subflows: Vec::new(),
            announced: vec!["198.51.100.254:443".parse().unwrap(), "198.51.100.253:8443".parse().unwrap()],
            announcements: Some(vec![
                Announced { addr: "198.51.100.254:443".parse().unwrap(), joined: true, us: 1500 },
                Announced { addr: "198.51.100.253:8443".parse().unwrap(), joined: true, us: 1520 },
                Announced { addr: "[2001:db8::fe]:443".parse().unwrap(), joined: false, us: 1533 },
            ]),
        }
    }

    #[test]
    fn csv_row_snapshot() {
        let r = VerifiedRow::new(&row(Class::Mptcp, Some(0x21)), &confirmed_lb());
        let mut out = Vec::new();
        write_csv(&mut out, &[r]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ip,port,probe,class,verdict,mptcp,fallback_reason,kernel_flags,checksum,c_flag,add_addr,subflows,app,app_ok,\
             ttfb_ms,error,add_addr_accepted,remote_key,announced,announced_joined,announced_ms\n\
             203.0.113.130,443,v1,mptcp,confirmed,true,,0x02,false,true,198.51.100.254 198.51.100.253:8443,2,tls,true,\
             1.234,,1,true,198.51.100.254:443 198.51.100.253:8443 [2001:db8::fe]:443,yes yes no,1.5 1.5 1.5\n"
        );
    }

    #[test]
    fn header_matches_columns_and_empty_output_has_header() {
        let mut out = Vec::new();
        write_csv(&mut out, &[]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap().trim_end(), COLUMNS.join(","));
    }

    #[test]
    fn failed_attempt_row() {
        let a = Attempt {
            app: App::Http,
            obs: Observation::failed(Connect::Refused),
            info: None,
            subflows: Vec::new(),
            announced: Vec::new(),
            announcements: None,
        };
        let r = VerifiedRow::new(&row(Class::Closed, None), &a);
        assert_eq!((r.verdict, r.mptcp, r.app_ok, r.c_flag, r.subflows), ("refused", None, None, None, None));
        assert_eq!(r.error, "connection refused");
    }

    #[test]
    fn summary_counts_and_caveats() {
        let rows = vec![
            VerifiedRow::new(&row(Class::Mptcp, Some(0x21)), &confirmed_lb()),
            VerifiedRow::new(
                &row(Class::Echo, Some(0x01)),
                &Attempt {
                    app: App::Tls,
                    obs: Observation::failed(Connect::Timeout),
                    info: None,
                    subflows: Vec::new(),
                    announced: Vec::new(),
                    announcements: None,
                },
            ),
        ];
        let s = summary(&rows, &Notes { targets: 2, v0_rows: 3, add_addr_ignored: true, ..Default::default() });
        assert!(s.contains("2 rows, 2 targets"), "{s}");
        let mptcp_line = s.lines().find(|l| l.starts_with("mptcp ")).unwrap();
        let cells: Vec<&str> = mptcp_line.split_whitespace().collect();
        assert_eq!(cells, ["mptcp", "1", "0", "0", "0", "0", "0", "0", "1"]);
        let echo_line = s.lines().find(|l| l.starts_with("echo ")).unwrap();
        assert_eq!(echo_line.split_whitespace().nth(6), Some("1"), "timeout column: {s}");
        assert!(s.contains("1 rows with the C flag in the scan, 1 with announced addresses"), "{s}");
        assert!(s.contains("Linux speaks MPTCP v1 only; v0-only servers show as fallback (3 mptcp rows"), "{s}");
        assert!(s.contains("add_addr_accepted 2"), "{s}");
        assert!(
            s.contains("ADD_ADDR (path-manager events): 1 rows received an announcement, 1 joined a subflow to one"),
            "{s}"
        );
        let no_events =
            Notes { events_error: Some("joining mptcp_pm_events: EPERM".into()), events_lost: 2, ..Notes::default() };
        let s = summary(&rows, &no_events);
        assert!(
            s.contains("could not be read (joining mptcp_pm_events: EPERM): the announced columns are empty"),
            "{s}"
        );
        assert!(s.contains("2 path-manager event messages were lost"), "{s}");
    }
}
