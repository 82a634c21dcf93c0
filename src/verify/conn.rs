//! One verification attempt: an IPPROTO_MPTCP connect to the target with the kernel's own MPTCP
//! stack, the application exchange, a short wait for the peer's ADD_ADDR, and what the kernel
//! says about the connection at each step.
//!
//! Sequence (all under the per-step timeout):
//!
//! 1. `socket(AF_INET[6], SOCK_STREAM, IPPROTO_MPTCP)`, non-blocking connect;
//! 2. `TCP_IS_MPTCP` and `MPTCP_INFO`: did the handshake end as MPTCP?
//! 3. the request (HTTP HEAD / TLS ClientHello), then reading until the answer can be judged;
//! 4. while the connection is MPTCP, `MPTCP_INFO` is polled until the ADD_ADDR wait (counted from
//!    the connect) ends or the path manager has opened a subflow to an announced address; then
//!    `MPTCP_SUBFLOW_ADDRS` lists the subflows, whose remote addresses other than the target's
//!    are the announced ones the kernel joined;
//! 5. `TCP_IS_MPTCP` again: did MPTCP survive the data?
//! 6. every ADD_ADDR the peer sent, from the path manager's netlink events
//!    ([`super::pm_events`]), looked up by the connection's token (`mptcpi_token`), each with
//!    whether a subflow was joined to it and when it came.
//!
//! The kernel opens the extra subflow only if its path manager accepts ADD_ADDRs (`ip mptcp
//! limits set add_addr_accepted 2 subflows 2`); `mptcpi_add_addr_accepted_max` tells us when it
//! does not, and the summary says so.

use super::app::{App, AppResult};
use super::info::{self, MptcpInfo, SubflowAddrs};
use super::pm_events::Announcements;
use super::sys;
use super::verdict::{Connect, Observation};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{sleep, timeout, timeout_at, Instant};

/// How long each step may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Limit of the connect, and separately of the exchange.
    pub timeout: Duration,
    /// How long after the connect to wait for the peer's ADD_ADDR (only on MPTCP connections).
    pub add_addr_wait: Duration,
}

/// Everything one attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The exchange that was chosen.
    pub app: App,
    /// What was observed (the verdict is derived from it).
    pub obs: Observation,
    /// `MPTCP_INFO` at the end of the attempt (`None` on a fallen-back or failed connection).
    pub info: Option<MptcpInfo>,
    /// The subflows at the end of the attempt.
    pub subflows: Vec<SubflowAddrs>,
    /// Remote addresses of subflows other than the target: addresses the peer announced
    /// (ADD_ADDR) and our kernel joined.
    pub announced: Vec<SocketAddr>,
    /// Every ADD_ADDR the path manager's events reported for this connection (`None`: the
    /// events were not read, or the connection was not MPTCP).
    pub announcements: Option<Vec<Announced>>,
}

/// One ADD_ADDR a connection received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announced {
    /// The address and port announced.
    pub addr: SocketAddr,
    /// Whether our kernel opened a subflow to it (it is among the subflows' remote ends).
    pub joined: bool,
    /// Microseconds from the start of the connect to the event's arrival.
    pub us: u64,
}

/// How long a lookup waits for the event reader to catch up with what the kernel queued.
const EVENTS_PATIENCE: Duration = Duration::from_millis(500);

/// Creates the non-blocking IPPROTO_MPTCP socket for `to`.
pub fn mptcp_socket(to: SocketAddr) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(to), Type::STREAM, Some(Protocol::from(sys::IPPROTO_MPTCP)))?;
    s.set_nonblocking(true)?;
    s.set_nodelay(true)?;
    Ok(s)
}

fn read_info(s: &TcpStream) -> io::Result<MptcpInfo> {
    let mut buf = [0u8; info::MPTCP_INFO_LEN];
    let n = sys::mptcp_info(s, &mut buf)?;
    MptcpInfo::parse(&buf[..n]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn read_subflows(s: &TcpStream) -> io::Result<Vec<SubflowAddrs>> {
    let mut buf = info::subflow_addrs_request(8);
    let n = sys::mptcp_subflow_addrs(s, &mut buf)?;
    info::parse_subflow_addrs(&buf[..n]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// What the exchange produced.
struct Exchange {
    bytes: usize,
    ttfb: Option<Duration>,
    result: Option<AppResult>,
    error: Option<String>,
}

/// Sends `req` and reads until `app` can judge the answer, the peer closes, or `deadline`.
async fn exchange(s: &TcpStream, app: App, req: &[u8], deadline: Instant) -> Exchange {
    let mut ex = Exchange { bytes: 0, ttfb: None, result: None, error: None };
    let mut off = 0;
    while off < req.len() {
        if timeout_at(deadline, s.writable()).await.is_err() {
            ex.error = Some("timeout sending the request".into());
            return ex;
        }
        match s.try_write(&req[off..]) {
            Ok(n) => off += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                ex.error = Some(format!("sending the request: {e}"));
                return ex;
            }
        }
    }
    let sent = Instant::now();
    let mut got = Vec::with_capacity(512);
    let mut chunk = [0u8; 2048];
    loop {
        if timeout_at(deadline, s.readable()).await.is_err() {
            ex.error = Some(
                if ex.bytes == 0 { "no answer within the timeout" } else { "answer incomplete at the timeout" }.into(),
            );
            return ex;
        }
        match s.try_read(&mut chunk) {
            Ok(0) => {
                ex.error = Some(
                    if ex.bytes == 0 {
                        "closed by the peer without an answer"
                    } else {
                        "closed by the peer mid-answer"
                    }
                    .into(),
                );
                return ex;
            }
            Ok(n) => {
                ex.ttfb.get_or_insert_with(|| sent.elapsed());
                ex.bytes += n;
                if got.len() < 4096 {
                    got.extend_from_slice(&chunk[..n]);
                }
                if let Some(r) = app.judge(&got) {
                    if let AppResult::Unexpected(why) = &r {
                        ex.error = Some(format!("unexpected answer: {why}"));
                    }
                    ex.result = Some(r);
                    return ex;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                ex.error = Some(format!("reading the answer: {e}"));
                return ex;
            }
        }
    }
}

/// Runs one attempt against `to`; `random` seeds the ClientHello; `events` (if verify could
/// subscribe to them) has the path manager's announcements.
pub async fn attempt(to: SocketAddr, app: App, t: Timing, random: [u8; 96], events: Option<&Announcements>) -> Attempt {
    let failed = |c| Attempt {
        app,
        obs: Observation::failed(c),
        info: None,
        subflows: Vec::new(),
        announced: Vec::new(),
        announcements: None,
    };
    let began = std::time::Instant::now();
    let sock = match mptcp_socket(to) {
        Ok(s) => s,
        Err(e) => return failed(Connect::Error(format!("socket(IPPROTO_MPTCP): {e}"))),
    };
    let std_stream: std::net::TcpStream = sock.into();
    let ts = TcpSocket::from_std_stream(std_stream);
    let stream = match timeout(t.timeout, ts.connect(to)).await {
        Err(_) => return failed(Connect::Timeout),
        Ok(Err(e)) => return failed(Connect::from_error(&e)),
        Ok(Ok(s)) => s,
    };
    let connected = Instant::now();
    let mut errors: Vec<String> = Vec::new();
    let mut obs = Observation::failed(Connect::Connected);
    obs.mptcp_at_connect = match sys::tcp_is_mptcp(&stream) {
        Ok(m) => Some(m),
        Err(e) => {
            errors.push(format!("TCP_IS_MPTCP: {e}"));
            None
        }
    };
    let is_mptcp = obs.mptcp_at_connect == Some(true);
    if is_mptcp {
        if let Ok(i) = read_info(&stream) {
            obs.remote_key = i.remote_key_received();
        }
    }

    if app != App::None {
        obs.app_attempted = true;
        let ex = exchange(&stream, app, &app.request(to.ip(), &random), Instant::now() + t.timeout).await;
        obs.app_bytes = ex.bytes;
        obs.ttfb = ex.ttfb;
        obs.app_ok = ex.result == Some(AppResult::Ok);
        errors.extend(ex.error);
    }

    // The ADD_ADDR wait: poll until a subflow to another address shows up, or time is up.
    let mut info = None;
    if is_mptcp {
        let deadline = connected + t.add_addr_wait;
        loop {
            match read_info(&stream) {
                Ok(i) => info = Some(i),
                Err(e) => {
                    // A connection that fell back answers SOL_MPTCP like a TCP socket (an error).
                    if sys::tcp_is_mptcp(&stream).unwrap_or(false) {
                        errors.push(format!("MPTCP_INFO: {e}"));
                    }
                    break;
                }
            }
            let joined = info.is_some_and(|i| i.add_addr_accepted > 0 && i.subflows > 0);
            if joined || Instant::now() >= deadline {
                break;
            }
            sleep(Duration::from_millis(20).min(deadline.saturating_duration_since(Instant::now()))).await;
        }
        if let Some(i) = info {
            obs.remote_key |= i.remote_key_received();
        }
    }
    let subflows = if is_mptcp {
        match read_subflows(&stream) {
            Ok(s) => s,
            Err(e) => {
                if sys::tcp_is_mptcp(&stream).unwrap_or(false) {
                    errors.push(format!("MPTCP_SUBFLOW_ADDRS: {e}"));
                }
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    obs.mptcp_after = match sys::tcp_is_mptcp(&stream) {
        Ok(m) => Some(m),
        Err(e) => {
            errors.push(format!("TCP_IS_MPTCP after the exchange: {e}"));
            None
        }
    };
    let announced = announced(to, &subflows);
    let announcements = match (events, info) {
        (Some(ev), Some(i)) if is_mptcp => {
            let got = ev.take(i.token, to, EVENTS_PATIENCE).await;
            Some(
                got.into_iter()
                    .map(|a| Announced {
                        addr: a.addr,
                        joined: announced.contains(&a.addr),
                        us: a.at.saturating_duration_since(began).as_micros() as u64,
                    })
                    .collect(),
            )
        }
        _ => None,
    };
    if !errors.is_empty() {
        obs.error = Some(errors.join("; "));
    }
    // Closing: a plain close (FIN), as any client would.
    drop(stream);
    Attempt { app, obs, info, subflows, announced, announcements }
}

/// The remote ends of subflows that do not go to the target's address, without repeats.
pub fn announced(to: SocketAddr, subflows: &[SubflowAddrs]) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for s in subflows {
        if s.remote.ip() != to.ip() && !out.contains(&s.remote) {
            out.push(s.remote);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::verdict::ConfirmVerdict;

    /// The test server's side of one HTTP exchange: read the request, answer 200, wait for the
    /// client to close.
    fn answer_one_http(mut c: std::net::TcpStream) {
        use std::io::{Read, Write};
        let mut b = [0u8; 512];
        let _ = c.read(&mut b).unwrap();
        c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
        let _ = c.read(&mut b);
    }

    #[test]
    fn announced_addresses_exclude_the_target() {
        let to: SocketAddr = "203.0.113.130:443".parse().unwrap();
        let sf = |l: &str, r: &str| SubflowAddrs { local: l.parse().unwrap(), remote: r.parse().unwrap() };
        let s = [
            sf("192.0.2.2:40000", "203.0.113.130:443"),
            sf("192.0.2.2:40001", "198.51.100.254:443"),
            sf("192.0.2.2:40002", "198.51.100.254:443"),
        ];
        assert_eq!(announced(to, &s), vec!["198.51.100.254:443".parse().unwrap()]);
        assert!(announced(to, &s[..1]).is_empty());
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    fn timing() -> Timing {
        Timing { timeout: Duration::from_secs(5), add_addr_wait: Duration::from_millis(100) }
    }

    /// Over loopback: a plain TCP listener answering HTTP makes an MPTCP client fall back at the
    /// handshake, with the answer still read; a closed port is refused. Skips where the kernel
    /// has no MPTCP (socket(262) fails).
    #[test]
    fn loopback_fallback_and_refused() {
        if mptcp_socket("127.0.0.1:1".parse().unwrap()).is_err() {
            eprintln!("SKIPPED: no kernel MPTCP here");
            return;
        }
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let to = l.local_addr().unwrap();
        let server = std::thread::spawn(move || answer_one_http(l.accept().unwrap().0));
        let a = rt().block_on(attempt(to, App::Http, timing(), [0; 96], None));
        server.join().unwrap();
        assert_eq!(a.obs.mptcp_at_connect, Some(false));
        assert!(a.obs.app_ok, "{a:?}");
        assert_eq!(a.obs.verdict().0, ConfirmVerdict::Fallback);

        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let to = closed.local_addr().unwrap();
        drop(closed);
        let a = rt().block_on(attempt(to, App::Http, timing(), [0; 96], None));
        assert_eq!(a.obs.verdict().0, ConfirmVerdict::Refused, "{a:?}");
    }

    /// Over loopback against a kernel MPTCP listener: MPTCP holds, the answer arrives, the kernel
    /// reports the remote key and one subflow to the target: `confirmed`.
    #[test]
    fn loopback_mptcp_is_confirmed() {
        let Ok(l) = mptcp_socket("127.0.0.1:1".parse().unwrap()) else {
            eprintln!("SKIPPED: no kernel MPTCP here");
            return;
        };
        l.set_nonblocking(false).unwrap();
        l.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
        l.listen(4).unwrap();
        let to = l.local_addr().unwrap().as_socket().unwrap();
        let server = std::thread::spawn(move || answer_one_http(std::net::TcpStream::from(l.accept().unwrap().0)));
        let a = rt().block_on(attempt(to, App::Http, timing(), [0; 96], None));
        server.join().unwrap();
        assert_eq!((a.obs.mptcp_at_connect, a.obs.mptcp_after), (Some(true), Some(true)), "{a:?}");
        assert!(a.obs.app_ok && a.obs.remote_key, "{a:?}");
        assert_eq!(a.obs.verdict(), (ConfirmVerdict::Confirmed, None));
        let info = a.info.expect("MPTCP_INFO on an MPTCP connection");
        // The byte counters at their 6.18 offsets match what crossed the connection.
        let answer_len = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".len() as u64;
        if let (Some(sent), Some(received)) = (info.bytes_sent, info.bytes_received) {
            assert_eq!(sent, App::Http.request(to.ip(), &[0; 96]).len() as u64);
            assert_eq!(received, answer_len);
        }
        assert_eq!(info.subflows_total.unwrap_or(1), 1);
        assert!(!info.fallback());
        assert_eq!(a.subflows.len(), 1, "{a:?}");
        assert_eq!(a.subflows[0].remote, to);
        assert!(a.announced.is_empty());
    }
}
