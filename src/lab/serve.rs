//! `lab serve`: the long-running processes `up` starts inside population namespaces.
//!
//! * `--kind mptcp` / `--kind tcp`: kernel listeners on 0.0.0.0 and [::] for each port (IPPROTO_MPTCP for
//!   `mptcp`); with a local route for a prefix, every address in it is a real server. Each
//!   accepted connection gets a thread that answers its first request ([`app_answer`]: an HTTP
//!   HEAD/GET with a minimal HTTP/1.1 response, a TLS ClientHello with a minimal ServerHello
//!   record), then keeps the connection open until the client closes it (or 10 s pass), so that a
//!   client's path manager has time to join announced addresses. With `--iface`, transmit
//!   checksum offload is turned off on that link first, so that the kernel's SYN-ACKs leave with
//!   complete checksums.
//! * `--kind echo|mirror|v0|noalgo`: a [`Responder`] on an AF_PACKET socket.
//! * `--kind on-path-echo|on-path-plain|quote8`: the trace lab's boxes inside routers
//!   (`super::paths`): the echo and a SYN proxy's plain SYN-ACK, answering only what the router
//!   would forward, and an RFC 792 router's 8-byte quotes.
//!
//! Each prints `ready` on standard output once it is listening (that is what `up` waits for),
//! then runs until killed.

use super::paths::quote8::{self, ShortQuoter};
use super::responder::{Fresh, Ignored, Responder, ResponderKind, MAX_ANSWER_LEN};
use super::sys::{self, PacketSocket};
use anyhow::{bail, Context};
use ipnet::{Ipv4Net, Ipv6Net};
use rand::Rng;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::time::Instant;

/// What `lab serve` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServeKind {
    /// Kernel listeners opened with IPPROTO_MPTCP.
    Mptcp,
    /// Plain kernel TCP listeners.
    Tcp,
    /// Userspace echoing middlebox.
    Echo,
    /// Userspace mirroring middlebox.
    Mirror,
    /// Userspace v0-only MPTCP server.
    V0,
    /// Userspace server answering MP_CAPABLE with no crypto algorithm (flags 0x00).
    Noalgo,
    /// The trace lab's echoing box in a router: the echo, IPv4 and (with `--prefix6`) IPv6,
    /// answering only the SYNs the router would forward.
    OnPathEcho,
    /// The trace lab's IPv6 SYN proxy in a router: a SYN-ACK without MP_CAPABLE to the SYNs the
    /// router would forward.
    OnPathPlain,
    /// The trace lab's RFC 792 router: time exceeded quoting the IP header and 8 bytes, from
    /// `--source`, for the IPv4 datagrams to `--prefix` whose TTL expires here.
    Quote8,
}

/// Where a userspace process answers: its interface and what it answers for.
#[derive(Debug, Clone, Default)]
pub struct Place<'a> {
    /// The interface it reads and writes frames on.
    pub iface: Option<&'a str>,
    /// The IPv4 range it answers for.
    pub prefix: Option<Ipv4Net>,
    /// The IPv6 range it answers for (on-path echo).
    pub prefix6: Option<Ipv6Net>,
    /// The address it answers from (RFC 792 router).
    pub source: Option<Ipv4Addr>,
}

/// Listen backlog of the kernel listeners (capped by net.core.somaxconn, which `up` raises).
const BACKLOG: i32 = 65535;

/// Runs a server of `kind` until killed.
pub fn serve(kind: ServeKind, ports: &[u16], place: &Place<'_>) -> anyhow::Result<()> {
    let Place { iface, prefix, .. } = *place;
    match kind {
        ServeKind::Mptcp | ServeKind::Tcp => {
            if let Some(i) = iface {
                // Kernel SYN-ACKs over a veth otherwise carry checksums left to an absent NIC.
                sys::disable_tx_checksum_offload(i).with_context(|| format!("turning off checksum offload on {i}"))?;
            }
            listen(kind == ServeKind::Mptcp, ports)
        }
        ServeKind::Echo | ServeKind::Mirror | ServeKind::V0 | ServeKind::Noalgo => {
            let rk = match kind {
                ServeKind::Echo => ResponderKind::Echo,
                ServeKind::Mirror => ResponderKind::Mirror,
                ServeKind::Noalgo => ResponderKind::NoAlgorithm,
                _ => ResponderKind::V0Server,
            };
            let iface = iface.context("--iface is required for a userspace responder")?;
            let prefix = prefix.context("--prefix is required for a userspace responder")?;
            respond(Responder::new(rk, mac_of(iface)?, prefix, ports.to_vec()), iface)
        }
        ServeKind::OnPathEcho | ServeKind::OnPathPlain => {
            let iface = iface.context("--iface is required for a userspace responder")?;
            let rk = if kind == ServeKind::OnPathEcho { ResponderKind::Echo } else { ResponderKind::Plain };
            let (mac, ports) = (mac_of(iface)?, ports.to_vec());
            let r = match (prefix, place.prefix6) {
                (Some(p), None) => Responder::new(rk, mac, p, ports),
                (Some(p), Some(p6)) => Responder::new(rk, mac, p, ports).with_ipv6(p6),
                (None, Some(p6)) => Responder::new_ipv6(rk, mac, p6, ports),
                (None, None) => bail!("--prefix or --prefix6 is required for a userspace responder"),
            };
            respond(r.on_path(), iface)
        }
        ServeKind::Quote8 => {
            let iface = iface.context("--iface is required for a userspace router")?;
            let prefix = prefix.context("--prefix is required for a userspace router")?;
            let source = place.source.context("--source is required for a userspace router")?;
            let q = ShortQuoter::new(mac_of(iface)?, source, prefix);
            let sock = PacketSocket::open(iface).with_context(|| format!("opening an AF_PACKET socket on {iface}"))?;
            let mut rng = rand::thread_rng();
            packet_loop(&sock, |frame, out| q.answer(frame, rng.gen(), out))
        }
    }
}

fn ready() -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    Ok(())
}

fn listen(mptcp: bool, ports: &[u16]) -> anyhow::Result<()> {
    if ports.is_empty() {
        bail!("no ports to listen on");
    }
    let proto = if mptcp { Protocol::from(sys::IPPROTO_MPTCP) } else { Protocol::TCP };
    let mut threads = Vec::new();
    // One listener per port and family: 0.0.0.0 and [::] (IPv6 only, so the IPv4 one keeps its
    // own socket): the namespace's local routes make every address of both families a server.
    for (&port, v6) in ports.iter().flat_map(|p| [(p, false), (p, true)]) {
        let (domain, addr) = if v6 {
            (Domain::IPV6, SockAddr::from(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0)))
        } else {
            (Domain::IPV4, SockAddr::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)))
        };
        let s = Socket::new(domain, Type::STREAM, Some(proto))
            .with_context(|| format!("socket({domain:?}, SOCK_STREAM, {proto:?}) (is MPTCP enabled?)"))?;
        s.set_reuse_address(true)?;
        if v6 {
            s.set_only_v6(true)?;
        }
        s.bind(&addr).with_context(|| format!("binding port {port} ({domain:?})"))?;
        s.listen(BACKLOG)?;
        threads.push(std::thread::spawn(move || loop {
            match s.accept() {
                Ok((c, _)) => {
                    std::thread::spawn(move || answer_connection(c));
                }
                Err(e) => eprintln!("accept on port {port}: {e}"),
            }
        }));
    }
    ready()?;
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

/// How long a served connection stays open without the client closing it.
const IDLE: std::time::Duration = std::time::Duration::from_secs(10);

/// Answers one accepted connection's first request, then waits for the client to close.
fn answer_connection(c: Socket) {
    use std::io::Read;
    let mut c = std::net::TcpStream::from(c);
    let _ = c.set_read_timeout(Some(IDLE));
    let mut buf = [0u8; 4096];
    let Ok(n) = c.read(&mut buf) else { return };
    if let Some(answer) = app_answer(&buf[..n]) {
        if c.write_all(&answer).is_err() {
            return;
        }
    }
    // Drain until the client closes (or goes idle): closing first would end the connection
    // before the client's path manager could open its subflows.
    while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
}

/// The lab server's answer to a connection's first bytes: a minimal HTTP/1.1 response to an HTTP
/// request, a minimal TLS ServerHello record (handshake record, message type 2, TLS 1.3 in
/// supported_versions) to a TLS ClientHello, nothing to anything else.
pub fn app_answer(req: &[u8]) -> Option<Vec<u8>> {
    if req.starts_with(b"HEAD ") || req.starts_with(b"GET ") {
        return Some(b"HTTP/1.1 200 OK\r\nServer: mpscan-lab\r\nContent-Length: 0\r\n\r\n".to_vec());
    }
    // Record type 22 (handshake), version 3.x, first message type 1 (ClientHello).
    if req.len() >= 6 && req[0] == 0x16 && req[1] == 0x03 && req[5] == 0x01 {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[0x5a; 32]); // server random (a lab constant)
        body.push(0); // empty legacy session id
        body.extend_from_slice(&[0x13, 0x01, 0x00]); // TLS_AES_128_GCM_SHA256, null compression
        body.extend_from_slice(&[0x00, 0x06, 0x00, 0x2b, 0x00, 0x02, 0x03, 0x04]); // supported_versions: 1.3
        let mut rec = vec![0x16, 0x03, 0x03];
        rec.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
        rec.push(0x02); // ServerHello
        rec.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        rec.extend_from_slice(&body);
        return Some(rec);
    }
    None
}

/// The MAC address of `iface`.
fn mac_of(iface: &str) -> anyhow::Result<[u8; 6]> {
    let mac_text = std::fs::read_to_string(format!("/sys/class/net/{iface}/address"))
        .with_context(|| format!("reading the MAC address of {iface}"))?;
    crate::net::route::parse_mac(mac_text.trim()).with_context(|| format!("bad MAC {mac_text:?}"))
}

fn respond(responder: Responder, iface: &str) -> anyhow::Result<()> {
    // Every EtherType when the responder speaks IPv6 too.
    let sock = if responder.speaks_ipv6() { PacketSocket::open_all(iface) } else { PacketSocket::open(iface) }
        .with_context(|| format!("opening an AF_PACKET socket on {iface}"))?;
    let mut rng = rand::thread_rng();
    let start = Instant::now();
    let ts_base: u32 = rng.gen();
    packet_loop(&sock, |frame, out| {
        let fresh = Fresh {
            isn: rng.gen(),
            tsval: ts_base.wrapping_add(start.elapsed().as_millis() as u32),
            key: rng.gen(),
            ident: rng.gen(),
        };
        responder.answer(frame, fresh, out)
    })
}

/// Says `ready`, then answers every frame received on `sock` with what `answer` writes, counting
/// what it ignores (reported every 10 s on standard error), until an error.
fn packet_loop(
    sock: &PacketSocket,
    mut answer: impl FnMut(&[u8], &mut [u8]) -> Result<usize, Ignored>,
) -> anyhow::Result<()> {
    let mut buf = [0u8; 2048];
    const OUT: usize = if MAX_ANSWER_LEN > quote8::MAX_LEN { MAX_ANSWER_LEN } else { quote8::MAX_LEN };
    let mut out = [0u8; OUT];
    let mut ignored: BTreeMap<&'static str, u64> = BTreeMap::new();
    let (mut answered, mut last_report) = (0u64, Instant::now());
    ready()?;
    loop {
        let n = sock.recv(&mut buf).context("receiving")?;
        match answer(&buf[..n], &mut out) {
            Ok(len) => {
                sock.send(&out[..len]).context("sending")?;
                answered += 1;
            }
            Err(why) => *ignored.entry(why.reason()).or_default() += 1,
        }
        if last_report.elapsed().as_secs() >= 10 {
            eprintln!("answered {answered}, ignored {ignored:?}");
            last_report = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::app::{App, AppResult};

    #[test]
    fn answers_what_verify_sends() {
        let ip = "198.18.0.1".parse().unwrap();
        for app in [App::Http, App::Tls] {
            let answer = app_answer(&app.request(ip, &[1; 96])).expect("an answer");
            assert_eq!(app.judge(&answer), Some(AppResult::Ok), "{app:?}");
        }
        let sh = app_answer(&App::Tls.request(ip, &[1; 96])).unwrap();
        assert_eq!(u16::from_be_bytes([sh[3], sh[4]]) as usize, sh.len() - 5);
        assert_eq!(u32::from_be_bytes([0, sh[6], sh[7], sh[8]]) as usize, sh.len() - 9);
        assert_eq!(app_answer(b"SSH-2.0-x\r\n"), None);
        assert_eq!(app_answer(&[0x16, 0x03]), None);
    }
}
