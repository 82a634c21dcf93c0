//! `lab connect`: a kernel TCP (or MPTCP) connect from inside a lab namespace, used by `up` to
//! confirm that every range answers as planned, and by the tests to check that a connection to
//! the kernel MPTCP servers really is MPTCP (`TCP_IS_MPTCP`) while the SYN proxy's is not.
//!
//! The helper runs in the namespace (`ip netns exec NS mpscan lab connect ...`) and prints one
//! line per target: `ADDR:PORT OUTCOME [detail]`, which [`parse_line`] reads back.

use super::sys;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::SocketAddrV4;
use std::time::Duration;

/// What a connect attempt ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Connected, and the connection is MPTCP.
    Mptcp,
    /// Connected as plain TCP (or fell back to it).
    Tcp,
    /// RST: connection refused.
    Refused,
    /// An ICMP error or no route: the detail is the OS error.
    Unreachable(String),
    /// No answer within the timeout.
    Timeout,
    /// Anything else.
    Error(String),
}

impl Outcome {
    /// The word printed for this outcome.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Mptcp => "mptcp",
            Outcome::Tcp => "tcp",
            Outcome::Refused => "refused",
            Outcome::Unreachable(_) => "unreachable",
            Outcome::Timeout => "timeout",
            Outcome::Error(_) => "error",
        }
    }
}

/// Connects to `to` (with an IPPROTO_MPTCP socket if `mptcp`), waits at most `timeout`, and
/// closes with a RST (linger 0) so that nothing lingers in the lab.
pub fn connect(to: SocketAddrV4, mptcp: bool, timeout: Duration) -> Outcome {
    let proto = if mptcp { Protocol::from(sys::IPPROTO_MPTCP) } else { Protocol::TCP };
    let sock = match Socket::new(Domain::IPV4, Type::STREAM, Some(proto)) {
        Ok(s) => s,
        Err(e) => return Outcome::Error(format!("socket: {e}")),
    };
    let _ = sock.set_linger(Some(Duration::ZERO));
    match sock.connect_timeout(&SockAddr::from(to), timeout) {
        Ok(()) => match sys::tcp_is_mptcp(&sock) {
            Ok(true) => Outcome::Mptcp,
            Ok(false) => Outcome::Tcp,
            Err(e) => Outcome::Error(format!("TCP_IS_MPTCP: {e}")),
        },
        Err(e) => classify_error(&e),
    }
}

fn classify_error(e: &io::Error) -> Outcome {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => Outcome::Refused,
        Some(libc::EHOSTUNREACH) | Some(libc::ENETUNREACH) => Outcome::Unreachable(e.to_string()),
        Some(libc::ETIMEDOUT) => Outcome::Timeout,
        _ if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock => Outcome::Timeout,
        _ => Outcome::Error(e.to_string()),
    }
}

/// The line the helper prints for one target.
pub fn format_line(to: SocketAddrV4, o: &Outcome) -> String {
    match o {
        Outcome::Unreachable(d) | Outcome::Error(d) => format!("{to} {} {d}", o.label()),
        _ => format!("{to} {}", o.label()),
    }
}

/// Reads a line printed by the helper back.
pub fn parse_line(line: &str) -> Option<(SocketAddrV4, Outcome)> {
    let mut parts = line.splitn(3, ' ');
    let to = parts.next()?.parse().ok()?;
    let label = parts.next()?;
    let detail = parts.next().unwrap_or("").to_string();
    let o = match label {
        "mptcp" => Outcome::Mptcp,
        "tcp" => Outcome::Tcp,
        "refused" => Outcome::Refused,
        "unreachable" => Outcome::Unreachable(detail),
        "timeout" => Outcome::Timeout,
        "error" => Outcome::Error(detail),
        _ => return None,
    };
    Some((to, o))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener};

    #[test]
    fn lines_round_trip() {
        let to: SocketAddrV4 = "198.18.0.1:443".parse().unwrap();
        for o in [
            Outcome::Mptcp,
            Outcome::Tcp,
            Outcome::Refused,
            Outcome::Timeout,
            Outcome::Unreachable("No route to host (os error 113)".into()),
            Outcome::Error("x y".into()),
        ] {
            assert_eq!(parse_line(&format_line(to, &o)), Some((to, o)));
        }
        assert_eq!(parse_line("nonsense"), None);
        assert_eq!(parse_line("198.18.0.1:443 maybe"), None);
    }

    #[test]
    fn loopback_tcp_and_refused() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let to = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        assert_eq!(connect(to, false, Duration::from_secs(5)), Outcome::Tcp);
        drop(l);
        assert_eq!(connect(to, false, Duration::from_secs(5)), Outcome::Refused);
    }
}
