//! Reading the scan's result CSV (or JSON lines, from a file or a pipe): the rows of the chosen classes, and the distinct (address,
//! port) targets they name (a target probed with v0 and v1 is connected to once; both rows get
//! its result).

use crate::classify::Class;
use anyhow::{bail, Context};
use mpscan_schema::records::ResultFile;
use mpscan_schema::{Col, ProbeVersion};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// The key columns of one selected scan row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRow {
    /// The probed address.
    pub ip: IpAddr,
    /// The probed port.
    pub port: u16,
    /// The probe's version.
    pub probe: ProbeVersion,
    /// The scan's class.
    pub class: Class,
    /// The scan's MP_CAPABLE flag byte, if the answer had one.
    pub mpc_flags: Option<u8>,
    /// The scan's MP_CAPABLE version (`mptcp_version`), if the answer had one and the CSV has
    /// the column.
    pub mptcp_version: Option<u8>,
    /// Index into [`Input::targets`].
    pub target: usize,
}

impl ScanRow {
    /// The C flag (0x20) was set in the scan's SYN-ACK: the server asked not to be joined on this
    /// address, as load balancers do.
    pub fn c_flag(&self) -> Option<bool> {
        self.mpc_flags.map(|f| f & 0x20 != 0)
    }
}

/// The selected rows and the targets to connect to.
#[derive(Debug, Default)]
pub struct Input {
    /// Selected rows, in file order.
    pub rows: Vec<ScanRow>,
    /// Distinct targets, in order of first appearance.
    pub targets: Vec<SocketAddr>,
    /// Rows read in all.
    pub read: u64,
    /// Rows that could not be read (bad address, port, class, flags), with the first reason.
    pub rejected: u64,
    /// The first rejection: line number and why.
    pub first_rejection: Option<String>,
}

/// The columns verify reads (`mptcp_version` too when the file has it).
const NEEDED: &[Col] = &[Col::Ip, Col::Port, Col::Probe, Col::Class, Col::MpcFlags];

/// Reads scan rows from `r` (a result CSV with a header, or JSON lines; named `name` in errors), keeping those
/// whose class is in `classes`. Rows are parsed by the result schema's reader; a row it cannot
/// parse is counted, not fatal.
pub fn read(r: impl std::io::Read + 'static, name: &str, classes: &[Class]) -> anyhow::Result<Input> {
    let mut file = ResultFile::from_reader(r, name.to_string(), NEEDED)
        .context("is it an `mpscan scan` result? (columns: ip, port, probe, class, mpc_flags)")?;
    let mut input = Input::default();
    let mut index: HashMap<SocketAddr, usize> = HashMap::new();
    file.for_each_row(|line, row| {
        input.read += 1;
        let r = match row {
            Ok(r) => r,
            Err(why) => {
                input.rejected += 1;
                input.first_rejection.get_or_insert_with(|| format!("line {line}: {why}"));
                return;
            }
        };
        if !classes.contains(&r.class) {
            return;
        }
        let sa = SocketAddr::new(r.ip.into(), r.port);
        let target = *index.entry(sa).or_insert_with(|| {
            input.targets.push(sa);
            input.targets.len() - 1
        });
        input.rows.push(ScanRow {
            ip: sa.ip(),
            port: r.port,
            probe: r.probe,
            class: r.class,
            mpc_flags: r.flags,
            mptcp_version: r.version,
            target,
        });
    })?;
    Ok(input)
}

/// Reads the scan's rows at `path`, or from standard input for `-` (a pipe from
/// `mpscan scan -o -`); CSV or JSON lines (see [`read`]).
pub fn read_path(path: &Path, classes: &[Class]) -> anyhow::Result<Input> {
    let input = if path == Path::new("-") {
        read(std::io::stdin(), "standard input", classes)?
    } else {
        let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        read(std::io::BufReader::new(f), &path.display().to_string(), classes)?
    };
    if input.read > 0 && input.rejected == input.read {
        bail!("{}: no row could be read ({})", path.display(), input.first_rejection.as_deref().unwrap_or("?"));
    }
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "ip,port,probe,class,responder,mptcp_version,mpc_flags,mpc_key,options,mirrored,ts_echoed,ttl,window,timestamp,detail
198.18.0.1,443,v1,mptcp,198.18.0.1,1,0x01,0011223344556677,,false,false,63,64240,2024-01-01T00:00:00.000000Z,
198.18.0.1,443,v0,tcp,198.18.0.1,,,,,false,false,63,64240,2024-01-01T00:00:00.000000Z,
203.0.113.130,443,v1,mptcp,203.0.113.130,1,0x21,0011223344556677,,false,false,63,64240,2024-01-01T00:00:00.000000Z,
198.51.100.1,80,v1,echo,198.51.100.1,1,0x01,,,false,false,63,64240,2024-01-01T00:00:00.000000Z,
198.19.2.1,80,v1,closed,198.19.2.1,,,,,false,false,63,0,2024-01-01T00:00:00.000000Z,
not-an-ip,80,v1,mptcp,,,,,,,,,,,
198.18.0.9,80,v1,weird,,,,,,,,,,,
";

    #[test]
    fn selects_classes_and_dedups_targets() {
        let i = read(CSV.as_bytes(), "t.csv", &[Class::Mptcp, Class::Echo]).unwrap();
        assert_eq!(i.read, 7);
        assert_eq!(i.rejected, 2);
        assert_eq!(i.first_rejection.as_deref(), Some("line 7: bad ip value \"not-an-ip\""));
        assert_eq!(i.rows.len(), 3);
        assert_eq!(i.targets.len(), 3);
        assert_eq!(i.rows[1].c_flag(), Some(true));
        assert_eq!(i.rows[0].c_flag(), Some(false));
        assert_eq!(i.rows[2].class, Class::Echo);

        let all = read(CSV.as_bytes(), "t.csv", &Class::ALL).unwrap();
        assert_eq!(all.rows.len(), 5);
        // v0 and v1 rows of one target share one connection.
        assert_eq!(all.targets.len(), 4);
        assert_eq!(all.rows[0].target, all.rows[1].target);
        assert_eq!(all.rows[1].c_flag(), None);
    }

    #[test]
    fn missing_column_is_a_clear_error() {
        let e = read("ip,port\n1.2.3.4,80\n".as_bytes(), "t.csv", &Class::ALL).unwrap_err();
        assert!(format!("{e:#}").contains("t.csv:1: missing columns probe, class, mpc_flags"), "{e:#}");
    }

    #[test]
    fn bad_flags_are_rejected_not_panicking() {
        let i = read(
            "ip,port,probe,class,mpc_flags\n1.2.3.4,80,v1,mptcp,0xzz\n1.2.3.4,80,v1,mptcp,0x1ff\n".as_bytes(),
            "t.csv",
            &Class::ALL,
        )
        .unwrap();
        assert_eq!(i.rejected, 2);
        assert!(i.rows.is_empty());
    }
}
