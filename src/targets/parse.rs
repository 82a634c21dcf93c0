//! Parsing target arguments and list files.
//!
//! Targets, blocklists and allowlists share one entry syntax: an IPv4 or IPv6 address
//! (`192.0.2.7`, `2001:db8::1`) or a CIDR prefix (`198.51.100.0/24`, `2001:db8::/120`). A prefix
//! with host bits set (`192.0.2.7/24`) is accepted as its network (`192.0.2.0/24`), as zmap does:
//! the user plainly means "the /24 around this address". Lists hold one entry per line; `#` starts
//! a comment (whole line or end of line); blank lines and surrounding whitespace are ignored.
//!
//! Every entry becomes an inclusive integer range ([`Net`]); errors carry the origin
//! (argument, or `file:line`) so they can say exactly where to look.

use super::error::{EntryProblem, ListKind, Origin, TargetError};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// One parsed entry: an inclusive range of IPv4 or IPv6 addresses as integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    /// IPv4 range `[lo, hi]`.
    V4 {
        /// First address.
        lo: u32,
        /// Last address.
        hi: u32,
    },
    /// IPv6 range `[lo, hi]` with the prefix length it was written with (128 for an address).
    V6 {
        /// First address.
        lo: u128,
        /// Last address.
        hi: u128,
        /// Prefix length, used to refuse sweeps of prefixes shorter than /96.
        prefix: u8,
    },
}

/// Parses one address or CIDR prefix (already trimmed). Host bits below the prefix are dropped.
pub fn parse_entry(s: &str) -> Result<Net, EntryProblem> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    if let Ok(a) = addr.parse::<Ipv4Addr>() {
        let len = prefix_len(len, 32)?;
        let a = u32::from(a);
        // mask with `len` leading ones; computed in u64 so that len 0 does not shift by 32
        let mask = (u64::from(u32::MAX) << (32 - len)) as u32;
        let lo = a & mask;
        return Ok(Net::V4 { lo, hi: lo | !mask });
    }
    if let Ok(a) = addr.parse::<Ipv6Addr>() {
        let len = prefix_len(len, 128)?;
        let a = u128::from(a);
        let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
        let lo = a & mask;
        return Ok(Net::V6 { lo, hi: lo | !mask, prefix: len });
    }
    Err(EntryProblem::NotAnAddress)
}

/// The prefix length after `/`, or the full length when there is none.
fn prefix_len(s: Option<&str>, max: u8) -> Result<u8, EntryProblem> {
    match s {
        None => Ok(max),
        Some(s) => {
            // Only plain decimal digits: u8::from_str would also take "+24".
            if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(EntryProblem::BadPrefixLength { max });
            }
            match s.parse::<u8>() {
                Ok(n) if n <= max => Ok(n),
                _ => Err(EntryProblem::BadPrefixLength { max }),
            }
        }
    }
}

/// The entries of a list text: `(1-based line number, entry)` for every line that is not blank or
/// a comment, with end-of-line comments and surrounding whitespace removed.
pub fn list_entries(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let entry = match line.split_once('#') {
            Some((before, _)) => before,
            None => line,
        }
        .trim();
        (!entry.is_empty()).then_some((i + 1, entry))
    })
}

/// Reads a list file whole.
pub fn read_list(path: &Path, kind: ListKind) -> Result<String, TargetError> {
    std::fs::read_to_string(path).map_err(|e| TargetError::Io {
        kind,
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Parses every entry of a list text, calling `sink` with each; `file` names the text in errors.
/// Returns the number of entries.
pub fn parse_list(
    text: &str,
    file: &Path,
    mut sink: impl FnMut(Net, &str, usize) -> Result<(), TargetError>,
) -> Result<usize, TargetError> {
    let mut n = 0;
    for (line, entry) in list_entries(text) {
        let net = parse_entry(entry).map_err(|problem| TargetError::BadEntry {
            origin: Origin::Line { file: file.to_path_buf(), line },
            entry: entry.to_string(),
            problem,
        })?;
        sink(net, entry, line)?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> (String, String) {
        match parse_entry(s).unwrap() {
            Net::V4 { lo, hi } => (Ipv4Addr::from(lo).to_string(), Ipv4Addr::from(hi).to_string()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ipv4_forms() {
        assert_eq!(v4("192.0.2.7"), ("192.0.2.7".into(), "192.0.2.7".into()));
        assert_eq!(v4("198.51.100.0/24"), ("198.51.100.0".into(), "198.51.100.255".into()));
        // Host bits set: taken as the network.
        assert_eq!(v4("192.0.2.7/24"), ("192.0.2.0".into(), "192.0.2.255".into()));
        assert_eq!(v4("0.0.0.0/0"), ("0.0.0.0".into(), "255.255.255.255".into()));
        assert_eq!(v4("255.255.255.255/32"), ("255.255.255.255".into(), "255.255.255.255".into()));
        assert_eq!(v4("10.1.2.3/31"), ("10.1.2.2".into(), "10.1.2.3".into()));
    }

    #[test]
    fn ipv6_forms() {
        assert_eq!(
            parse_entry("2001:db8::1").unwrap(),
            Net::V6 { lo: 0x2001_0db8 << 96 | 1, hi: 0x2001_0db8 << 96 | 1, prefix: 128 }
        );
        assert_eq!(
            parse_entry("2001:db8::1/120").unwrap(),
            Net::V6 { lo: 0x2001_0db8 << 96, hi: 0x2001_0db8 << 96 | 0xff, prefix: 120 }
        );
        assert_eq!(parse_entry("::/0").unwrap(), Net::V6 { lo: 0, hi: u128::MAX, prefix: 0 });
    }

    #[test]
    fn bad_entries() {
        use EntryProblem::*;
        assert_eq!(parse_entry("10.0.0.300/8"), Err(NotAnAddress));
        assert_eq!(parse_entry("example.com"), Err(NotAnAddress));
        assert_eq!(parse_entry(""), Err(NotAnAddress));
        assert_eq!(parse_entry("/24"), Err(NotAnAddress));
        assert_eq!(parse_entry("10.0.0.0/33"), Err(BadPrefixLength { max: 32 }));
        assert_eq!(parse_entry("10.0.0.0/"), Err(BadPrefixLength { max: 32 }));
        assert_eq!(parse_entry("10.0.0.0/+8"), Err(BadPrefixLength { max: 32 }));
        assert_eq!(parse_entry("10.0.0.0/8/8"), Err(BadPrefixLength { max: 32 }));
        assert_eq!(parse_entry("::/129"), Err(BadPrefixLength { max: 128 }));
        assert_eq!(parse_entry("fe80::1%eth0"), Err(NotAnAddress));
    }

    #[test]
    fn list_lines_comments_and_whitespace() {
        let text = "# header\n\n  192.0.2.1  \n198.51.100.0/24 # lab\n\t#indented comment\n2001:db8::/120\r\n";
        let got: Vec<_> = list_entries(text).collect();
        assert_eq!(got, vec![(3, "192.0.2.1"), (4, "198.51.100.0/24"), (6, "2001:db8::/120")]);
    }

    #[test]
    fn parse_list_reports_file_and_line() {
        let text = "192.0.2.1\n# c\n\n10.0.0.300/8\n";
        let err = parse_list(text, Path::new("targets.txt"), |_, _, _| Ok(())).unwrap_err();
        assert_eq!(
            err,
            TargetError::BadEntry {
                origin: Origin::Line { file: "targets.txt".into(), line: 4 },
                entry: "10.0.0.300/8".into(),
                problem: EntryProblem::NotAnAddress,
            }
        );
        assert!(err.to_string().starts_with("targets.txt:4: \"10.0.0.300/8\""), "{err}");
    }
}
