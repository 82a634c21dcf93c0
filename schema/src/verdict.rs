//! What `mpscan verify` concluded about one target over a real kernel MPTCP connection (the
//! `verdict` column of a verified CSV; docs/VERIFY.md gives the rules). Named for what it
//! confirms, so it is not taken for the classifier's verdict on one answer.

/// The final verdict of `mpscan verify` on one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfirmVerdict {
    /// MPTCP held from the handshake through the exchange, and data came back.
    Confirmed,
    /// The connection was (or became) plain TCP.
    Fallback,
    /// MPTCP held but nothing came back to the request.
    NoData,
    /// The connect was answered with a RST.
    Refused,
    /// An ICMP error ended the connect.
    Unreachable,
    /// No answer within the timeout.
    Timeout,
    /// A local failure (socket creation, address in use, ...).
    Error,
}

impl ConfirmVerdict {
    /// Every verdict, in table order.
    pub const ALL: [ConfirmVerdict; 7] = [
        ConfirmVerdict::Confirmed,
        ConfirmVerdict::Fallback,
        ConfirmVerdict::NoData,
        ConfirmVerdict::Refused,
        ConfirmVerdict::Unreachable,
        ConfirmVerdict::Timeout,
        ConfirmVerdict::Error,
    ];

    /// The CSV spelling.
    pub fn label(self) -> &'static str {
        match self {
            ConfirmVerdict::Confirmed => "confirmed",
            ConfirmVerdict::Fallback => "fallback",
            ConfirmVerdict::NoData => "no-data",
            ConfirmVerdict::Refused => "refused",
            ConfirmVerdict::Unreachable => "unreachable",
            ConfirmVerdict::Timeout => "timeout",
            ConfirmVerdict::Error => "error",
        }
    }

    /// The verdict spelled `s` in a verified CSV, if any.
    pub fn parse(s: &str) -> Option<ConfirmVerdict> {
        ConfirmVerdict::ALL.into_iter().find(|v| v.label() == s)
    }
}

impl std::fmt::Display for ConfirmVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_back() {
        for v in ConfirmVerdict::ALL {
            assert_eq!(ConfirmVerdict::parse(v.label()), Some(v));
        }
        assert_eq!(ConfirmVerdict::parse("maybe"), None);
    }
}
