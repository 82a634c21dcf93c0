//! The MP_CAPABLE version a probe carries, as the result files spell it (the `probe` column).

use serde::{Deserialize, Serialize};

/// The MP_CAPABLE version a probe carries (the `probe` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum ProbeVersion {
    /// RFC 6824: 12-byte option with the sender's key.
    #[serde(rename = "v0")]
    V0 = 0,
    /// RFC 8684: 4-byte option, no key.
    #[serde(rename = "v1")]
    V1 = 1,
}

impl ProbeVersion {
    /// Both versions, v1 first (the current protocol is the one readers look for first).
    pub const ALL: [ProbeVersion; 2] = [ProbeVersion::V1, ProbeVersion::V0];

    /// `v0` or `v1`, as in the CSV's `probe` column.
    pub fn label(self) -> &'static str {
        match self {
            ProbeVersion::V0 => "v0",
            ProbeVersion::V1 => "v1",
        }
    }

    /// The version spelled `b` in a result file, if any.
    #[inline]
    pub fn parse(b: &[u8]) -> Option<ProbeVersion> {
        match b {
            b"v0" => Some(ProbeVersion::V0),
            b"v1" => Some(ProbeVersion::V1),
            _ => None,
        }
    }
}

impl std::fmt::Display for ProbeVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_back() {
        for v in ProbeVersion::ALL {
            assert_eq!(ProbeVersion::parse(v.label().as_bytes()), Some(v));
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{v}\""));
        }
        assert_eq!(ProbeVersion::parse(b"v2"), None);
        assert!(ProbeVersion::V0 < ProbeVersion::V1);
    }
}
