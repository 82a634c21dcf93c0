//! The classifier's verdict on one answer, as the result files spell it (the `class` column).
//! The scanner decides it (docs/MPTCP.md, "Classification"); everything that reads results
//! counts by it.

use serde::{Deserialize, Serialize};

/// What the classifier made of an answer (the `class` column). The discriminants index every
/// per-class counter array (`[u64; NCLASS]`), in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// A real MPTCP server: a well-formed MP_CAPABLE that is not the probe's.
    Mptcp = 0,
    /// A middlebox echoing the probe's MP_CAPABLE.
    Echo = 1,
    /// An MPTCP option that is not a valid MP_CAPABLE answer.
    Malformed = 2,
    /// A SYN-ACK without MP_CAPABLE: plain TCP, or a box that stripped the option.
    Tcp = 3,
    /// A RST.
    Closed = 4,
    /// An ICMP(v6) error that ends the probe (destination unreachable, time exceeded, parameter
    /// problem) quoting it.
    Unreachable = 5,
}

/// Number of classes, the length of every per-class counter array.
pub const NCLASS: usize = 6;

impl Class {
    /// Every class, in table order.
    pub const ALL: [Class; NCLASS] =
        [Class::Mptcp, Class::Echo, Class::Malformed, Class::Tcp, Class::Closed, Class::Unreachable];

    /// The CSV spelling.
    pub fn label(self) -> &'static str {
        match self {
            Class::Mptcp => "mptcp",
            Class::Echo => "echo",
            Class::Malformed => "malformed",
            Class::Tcp => "tcp",
            Class::Closed => "closed",
            Class::Unreachable => "unreachable",
        }
    }

    /// Parses a comma-separated list of classes, or `all`: each named once, in the order given.
    pub fn parse_list(s: &str) -> Result<Vec<Class>, String> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "all" {
                return Ok(Class::ALL.to_vec());
            }
            let c = Class::ALL.into_iter().find(|c| c.label() == part).ok_or_else(|| {
                format!("unknown class {part:?} (one of mptcp, echo, malformed, tcp, closed, unreachable, all)")
            })?;
            if !out.contains(&c) {
                out.push(c);
            }
        }
        if out.is_empty() {
            return Err("no class given".into());
        }
        Ok(out)
    }

    /// The class spelled `b` in a result file, if any.
    #[inline]
    pub fn parse(b: &[u8]) -> Option<Class> {
        Some(match b {
            b"mptcp" => Class::Mptcp,
            b"echo" => Class::Echo,
            b"malformed" => Class::Malformed,
            b"tcp" => Class::Tcp,
            b"closed" => Class::Closed,
            b"unreachable" => Class::Unreachable,
            _ => return None,
        })
    }

    /// Inverse of `as u8`.
    pub fn from_index(i: u8) -> Option<Class> {
        Class::ALL.get(i as usize).copied()
    }

    /// True for the classes that carried an MPTCP option (the ones prefix tables at /24 track).
    pub fn has_mptcp_option(self) -> bool {
        matches!(self, Class::Mptcp | Class::Echo | Class::Malformed)
    }
}

impl std::fmt::Display for Class {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_argument() {
        assert_eq!(
            Class::parse_list("mptcp,echo,malformed").unwrap(),
            vec![Class::Mptcp, Class::Echo, Class::Malformed]
        );
        assert_eq!(Class::parse_list("all").unwrap().len(), 6);
        assert_eq!(Class::parse_list("mptcp,mptcp").unwrap(), vec![Class::Mptcp]);
        assert!(Class::parse_list("mptcp,bogus").unwrap_err().contains("bogus"));
        assert!(Class::parse_list("").is_err());
    }

    #[test]
    fn labels_parse_back_and_index_in_order() {
        for (i, c) in Class::ALL.into_iter().enumerate() {
            assert_eq!(Class::parse(c.label().as_bytes()), Some(c));
            assert_eq!(Class::from_index(i as u8), Some(c));
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{c}\""));
        }
        assert_eq!(Class::parse(b"Mptcp"), None);
        assert_eq!(Class::from_index(NCLASS as u8), None);
    }
}
