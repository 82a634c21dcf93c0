//! The columns of a result file, as one ordered list: the CSV header, the Parquet schema's
//! field order and every reader's lookup come from [`COLUMNS`]. A new column is added here (and
//! to [`crate::Row`], [`crate::RowRef`] and the writers), and nowhere else.

/// The result columns, in order. Readers find them by name; extra columns may follow.
pub const COLUMNS: [&str; NCOL] = [
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

/// Number of result columns.
pub const NCOL: usize = 15;

/// A result column, by position in [`COLUMNS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    /// Probed address.
    Ip = 0,
    /// Target port.
    Port,
    /// Probe version.
    Probe,
    /// Classifier verdict.
    Class,
    /// Who answered (a router for ICMP).
    Responder,
    /// Version in the answer's MP_CAPABLE.
    MptcpVersion,
    /// Flags byte of the answer's MP_CAPABLE.
    MpcFlags,
    /// The answer's MP_CAPABLE key.
    MpcKey,
    /// Answer's TCP options as hex.
    Options,
    /// Whole option list came back byte-identical.
    Mirrored,
    /// Our TSval came back as TSval.
    TsEchoed,
    /// IP TTL of the answer.
    Ttl,
    /// TCP window of the answer.
    Window,
    /// When the answer arrived.
    Timestamp,
    /// Why `malformed`, or the ICMP type and code of `unreachable` (`icmp-11-0`).
    Detail,
}

impl Col {
    /// Every column, in [`COLUMNS`] order.
    pub const ALL: [Col; NCOL] = [
        Col::Ip,
        Col::Port,
        Col::Probe,
        Col::Class,
        Col::Responder,
        Col::MptcpVersion,
        Col::MpcFlags,
        Col::MpcKey,
        Col::Options,
        Col::Mirrored,
        Col::TsEchoed,
        Col::Ttl,
        Col::Window,
        Col::Timestamp,
        Col::Detail,
    ];

    /// Header name of the column.
    pub fn name(self) -> &'static str {
        COLUMNS[self as usize]
    }

    /// The column named `name`, if any.
    pub fn named(name: &str) -> Option<Col> {
        Col::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Parses a comma-separated column selection (`ip,port,class`, zmap's `-f`): names of
    /// [`COLUMNS`], in the order given, each once.
    pub fn parse_list(s: &str) -> Result<Vec<Col>, String> {
        let mut out = Vec::new();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let c =
                Col::named(name).ok_or_else(|| format!("unknown field {name:?} (one of {})", COLUMNS.join(", ")))?;
            if !out.contains(&c) {
                out.push(c);
            }
        }
        if out.is_empty() {
            return Err("no field given".into());
        }
        Ok(out)
    }

    /// Columns the `summary` command reads (and `detail` when the file has it: files written
    /// before it was read still summarise).
    pub const SUMMARY: &'static [Col] = &[
        Col::Ip,
        Col::Port,
        Col::Probe,
        Col::Class,
        Col::MptcpVersion,
        Col::MpcFlags,
        Col::Options,
        Col::Mirrored,
        Col::TsEchoed,
        Col::Ttl,
        Col::Window,
    ];
    /// Columns the `diff` command reads.
    pub const DIFF: &'static [Col] = &[Col::Ip, Col::Port, Col::Probe, Col::Class, Col::MptcpVersion];
    /// The key of a row (one per target, port and probe version) and its class: what resuming a
    /// scan and checking it against the lab need.
    pub const KEY_CLASS: &'static [Col] = &[Col::Ip, Col::Port, Col::Probe, Col::Class];
}

/// Where each column sits in one file's records (files may order columns differently).
#[derive(Debug, Clone)]
pub struct Columns {
    idx: [Option<usize>; NCOL],
    /// Number of fields in the header; every record must have exactly as many.
    pub width: usize,
}

impl Columns {
    /// Finds the columns by name in a header record; a missing `needed` one is an error naming it.
    pub fn resolve(header: &csv::ByteRecord, needed: &[Col]) -> Result<Columns, String> {
        let mut idx = [None; NCOL];
        for (i, field) in header.iter().enumerate() {
            let name = std::str::from_utf8(field).unwrap_or("").trim();
            if let Some(c) = COLUMNS.iter().position(|n| *n == name) {
                idx[c].get_or_insert(i);
            }
        }
        let missing: Vec<&str> = needed.iter().filter(|c| idx[**c as usize].is_none()).map(|c| c.name()).collect();
        if !missing.is_empty() {
            let have: Vec<String> = header.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
            return Err(format!(
                "missing column{} {} (header has: {})",
                if missing.len() > 1 { "s" } else { "" },
                missing.join(", "),
                have.join(",")
            ));
        }
        Ok(Columns { idx, width: header.len() })
    }

    /// The field index of column `c` in this file, if the file has it.
    #[inline]
    pub fn index(&self, c: Col) -> Option<usize> {
        self.idx[c as usize]
    }

    /// True when the header is exactly [`COLUMNS`], in order (a file this version wrote).
    pub fn is_exact(header: &csv::ByteRecord) -> bool {
        header.iter().eq(COLUMNS.iter().map(|c| c.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_the_list_and_selections_parse() {
        assert!(Col::ALL.iter().enumerate().all(|(i, c)| *c as usize == i && c.name() == COLUMNS[i]));
        assert_eq!(Col::parse_list("ip, port,class,ip").unwrap(), [Col::Ip, Col::Port, Col::Class]);
        assert!(Col::parse_list("ip,bogus").unwrap_err().contains("unknown field \"bogus\""));
        assert!(Col::parse_list(" , ").is_err());
    }

    #[test]
    fn names_follow_the_list() {
        assert_eq!(Col::Ip.name(), "ip");
        assert_eq!(Col::Responder.name(), "responder");
        assert_eq!(Col::Detail.name(), "detail");
        assert!(Columns::is_exact(&csv::ByteRecord::from(COLUMNS.to_vec())));
        assert!(!Columns::is_exact(&csv::ByteRecord::from(vec!["ip", "port"])));
    }
}
