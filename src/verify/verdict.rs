//! What one verification attempt saw ([`Observation`]) and what it means ([`ConfirmVerdict`]).
//!
//! The rules, in order:
//!
//! 1. the connect failed: `refused` (RST), `unreachable` (an ICMP error the kernel reported),
//!    `timeout` (no answer within the timeout), `error` (a local failure);
//! 2. the connection was not MPTCP once connected (`TCP_IS_MPTCP` = 0: the SYN-ACK carried no
//!    valid MP_CAPABLE v1, as from a SYN proxy, an echoing box, or a v0-only server, since
//!    Linux speaks v1 only): `fallback`, reason `handshake`;
//! 3. it was MPTCP after the handshake but not after the exchange (a middlebox dropped the
//!    MPTCP options of data segments, or the peer's DSS went missing): `fallback`, reason
//!    `after-handshake`;
//! 4. it stayed MPTCP but no byte came back to the request (or the connection broke): `no-data`;
//! 5. it stayed MPTCP and data came back (or `--app none` and the peer's key arrived): `confirmed`.

use std::time::Duration;

/// The final verdict on one target: the result schema's, so analysis counts verified CSVs by
/// the same names.
pub use mpscan_schema::ConfirmVerdict;

/// When MPTCP was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackReason {
    /// The handshake ended as plain TCP.
    Handshake,
    /// MPTCP after the handshake, plain TCP after the data exchange.
    AfterHandshake,
}

impl FallbackReason {
    /// The CSV spelling.
    pub fn label(self) -> &'static str {
        match self {
            FallbackReason::Handshake => "handshake",
            FallbackReason::AfterHandshake => "after-handshake",
        }
    }
}

/// How the connect ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connect {
    /// The handshake completed.
    Connected,
    /// RST.
    Refused,
    /// An ICMP error (the OS error text).
    Unreachable(String),
    /// No answer within the timeout.
    Timeout,
    /// A local error (its text).
    Error(String),
}

impl Connect {
    /// Maps a connect error to an outcome.
    pub fn from_error(e: &std::io::Error) -> Connect {
        match e.raw_os_error() {
            Some(libc::ECONNREFUSED) => Connect::Refused,
            Some(libc::EHOSTUNREACH | libc::ENETUNREACH | libc::EACCES | libc::EPERM | libc::EPROTO) => {
                Connect::Unreachable(e.to_string())
            }
            Some(libc::ETIMEDOUT) => Connect::Timeout,
            _ => Connect::Error(e.to_string()),
        }
    }
}

/// Everything one attempt observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// How the connect ended.
    pub connect: Connect,
    /// `TCP_IS_MPTCP` right after the connect.
    pub mptcp_at_connect: Option<bool>,
    /// `TCP_IS_MPTCP` after the exchange and the ADD_ADDR wait.
    pub mptcp_after: Option<bool>,
    /// The peer's key arrived (`MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED`).
    pub remote_key: bool,
    /// Whether an exchange was attempted (`--app` other than none for this port).
    pub app_attempted: bool,
    /// Bytes that came back to the request.
    pub app_bytes: usize,
    /// The answer was the expected one (HTTP status line, ServerHello).
    pub app_ok: bool,
    /// Time from sending the request to the first byte back.
    pub ttfb: Option<Duration>,
    /// What went wrong, if anything (connect, exchange or socket options).
    pub error: Option<String>,
}

impl Observation {
    /// An attempt whose connect did not complete.
    pub fn failed(connect: Connect) -> Observation {
        let error = match &connect {
            Connect::Unreachable(e) | Connect::Error(e) => Some(e.clone()),
            Connect::Refused => Some("connection refused".into()),
            Connect::Timeout => Some("no answer within the timeout".into()),
            Connect::Connected => None,
        };
        Observation {
            connect,
            mptcp_at_connect: None,
            mptcp_after: None,
            remote_key: false,
            app_attempted: false,
            app_bytes: 0,
            app_ok: false,
            ttfb: None,
            error,
        }
    }

    /// The verdict, by the rules in the module documentation, and the fallback reason if any.
    pub fn verdict(&self) -> (ConfirmVerdict, Option<FallbackReason>) {
        match &self.connect {
            Connect::Refused => return (ConfirmVerdict::Refused, None),
            Connect::Unreachable(_) => return (ConfirmVerdict::Unreachable, None),
            Connect::Timeout => return (ConfirmVerdict::Timeout, None),
            Connect::Error(_) => return (ConfirmVerdict::Error, None),
            Connect::Connected => {}
        }
        match (self.mptcp_at_connect, self.mptcp_after) {
            (Some(false), _) => return (ConfirmVerdict::Fallback, Some(FallbackReason::Handshake)),
            (Some(true), Some(false)) => return (ConfirmVerdict::Fallback, Some(FallbackReason::AfterHandshake)),
            (Some(true), _) => {}
            // The kernel would not say: count it as a local failure rather than guess.
            (None, _) => return (ConfirmVerdict::Error, None),
        }
        let data = if self.app_attempted { self.app_bytes > 0 } else { self.remote_key };
        if data {
            (ConfirmVerdict::Confirmed, None)
        } else {
            (ConfirmVerdict::NoData, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connected(at: bool, after: bool, bytes: usize) -> Observation {
        Observation {
            connect: Connect::Connected,
            mptcp_at_connect: Some(at),
            mptcp_after: Some(after),
            remote_key: at,
            app_attempted: true,
            app_bytes: bytes,
            app_ok: bytes > 0,
            ttfb: None,
            error: None,
        }
    }

    #[test]
    fn connect_failures() {
        assert_eq!(Observation::failed(Connect::Refused).verdict(), (ConfirmVerdict::Refused, None));
        assert_eq!(Observation::failed(Connect::Timeout).verdict(), (ConfirmVerdict::Timeout, None));
        assert_eq!(
            Observation::failed(Connect::Unreachable("x".into())).verdict(),
            (ConfirmVerdict::Unreachable, None)
        );
        assert_eq!(Observation::failed(Connect::Error("x".into())).verdict(), (ConfirmVerdict::Error, None));
        assert_eq!(Observation::failed(Connect::Timeout).error.as_deref(), Some("no answer within the timeout"));
    }

    #[test]
    fn mptcp_and_data_is_confirmed() {
        assert_eq!(connected(true, true, 55).verdict(), (ConfirmVerdict::Confirmed, None));
    }

    #[test]
    fn plain_tcp_after_handshake_is_fallback_even_with_data() {
        assert_eq!(connected(false, false, 55).verdict(), (ConfirmVerdict::Fallback, Some(FallbackReason::Handshake)));
        assert_eq!(connected(false, false, 0).verdict(), (ConfirmVerdict::Fallback, Some(FallbackReason::Handshake)));
    }

    #[test]
    fn mptcp_lost_after_handshake() {
        assert_eq!(
            connected(true, false, 10).verdict(),
            (ConfirmVerdict::Fallback, Some(FallbackReason::AfterHandshake))
        );
    }

    #[test]
    fn mptcp_without_answer_is_no_data() {
        assert_eq!(connected(true, true, 0).verdict(), (ConfirmVerdict::NoData, None));
    }

    #[test]
    fn no_app_needs_the_remote_key() {
        let mut o = connected(true, true, 0);
        o.app_attempted = false;
        assert_eq!(o.verdict(), (ConfirmVerdict::Confirmed, None));
        o.remote_key = false;
        assert_eq!(o.verdict(), (ConfirmVerdict::NoData, None));
    }

    #[test]
    fn unknown_mptcp_state_is_an_error() {
        let mut o = connected(true, true, 1);
        o.mptcp_at_connect = None;
        assert_eq!(o.verdict(), (ConfirmVerdict::Error, None));
    }

    #[test]
    fn connect_errors_map() {
        let e = |n| std::io::Error::from_raw_os_error(n);
        assert_eq!(Connect::from_error(&e(libc::ECONNREFUSED)), Connect::Refused);
        assert_eq!(Connect::from_error(&e(libc::ETIMEDOUT)), Connect::Timeout);
        assert!(matches!(Connect::from_error(&e(libc::EHOSTUNREACH)), Connect::Unreachable(_)));
        assert!(matches!(Connect::from_error(&e(libc::EADDRNOTAVAIL)), Connect::Error(_)));
    }
}
