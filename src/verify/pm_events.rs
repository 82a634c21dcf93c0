//! Every ADD_ADDR the peers announce, from the kernel's MPTCP path-manager events: a small
//! generic-netlink client (a raw `NETLINK_GENERIC` socket through libc) subscribed to the
//! `mptcp_pm` family's `mptcp_pm_events` multicast group, recording `MPTCP_EVENT_ANNOUNCED` per
//! connection token. A connection's token is `mptcpi_token` of its `MPTCP_INFO` (the same
//! `msk->token` the events carry), so each verify attempt looks its announcements up by token,
//! and checks them against the 4-tuple that `MPTCP_EVENT_CREATED` gave for that token.
//!
//! Why events, not the subflow list: the kernel announces an ADD_ADDR on this group when it
//! receives it, before its path manager decides whether to accept it, so an announcement shows
//! even when no subflow was joined to it (limits at 0, or the join lost); the subflow list
//! (`MPTCP_SUBFLOW_ADDRS`) shows only the joins (docs/VERIFY.md).
//!
//! Events are per network namespace: the socket belongs to the namespace verify runs in, the one
//! its connections are made from. Subscribing needs CAP_NET_ADMIN there (the group is marked
//! `GENL_MCAST_CAP_NET_ADMIN`); without it verify says so and leaves the columns empty.
//!
//! The system calls are in [`super::sys`]; this file is safe code. Written by hand rather than
//! with a netlink crate: it sends one request (the family lookup)
//! and parses three message shapes, about 200 lines with their byte-vector tests, where a crate
//! would bring an async runtime binding or a code generator for the same.
//!
//! Wire layout (all headers native-endian; addresses and ports in network order, as the kernel's
//! `nla_put_in_addr` / `nla_put_be16` write them):
//!
//! ```text
//! nlmsghdr   u32 len, u16 type, u16 flags, u32 seq, u32 pid        (16 bytes, aligned to 4)
//! genlmsghdr u8 cmd, u8 version, u16 reserved                      (4 bytes)
//! nlattr     u16 len (header included), u16 type (low 14 bits), payload, padding to 4
//! ```

use super::sys;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The generic netlink family of the MPTCP path manager.
pub const FAMILY_NAME: &str = "mptcp_pm";
/// Its event multicast group.
pub const EVENTS_GROUP: &str = "mptcp_pm_events";

const NLMSG_HDRLEN: usize = 16;
const GENL_HDRLEN: usize = 4;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const CTRL_ATTR_MCAST_GROUPS: u16 = 7;
const CTRL_ATTR_MCAST_GRP_NAME: u16 = 1;
const CTRL_ATTR_MCAST_GRP_ID: u16 = 2;
const SOL_NETLINK: libc::c_int = 270;
const NETLINK_ADD_MEMBERSHIP: libc::c_int = 1;

/// `enum mptcp_event_type` values we read.
pub mod event {
    /// A connection was created (client: SYN sent): token, family, saddr, daddr, sport, dport.
    pub const CREATED: u8 = 1;
    /// The connection is fully established.
    pub const ESTABLISHED: u8 = 2;
    /// An ADD_ADDR arrived: token, rem_id, family, daddr4 | daddr6 [, dport].
    pub const ANNOUNCED: u8 = 6;
}

/// `enum mptcp_event_attr` values we read.
mod attr {
    pub const TOKEN: u16 = 1;
    pub const REM_ID: u16 = 4;
    pub const DADDR4: u16 = 7;
    pub const DADDR6: u16 = 8;
    pub const DPORT: u16 = 10;
}

/// Malformed netlink bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NlError(pub &'static str);

impl std::fmt::Display for NlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed netlink message: {}", self.0)
    }
}

impl std::error::Error for NlError {}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn u16_ne(b: &[u8]) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(..2)?.try_into().ok()?))
}

fn u32_ne(b: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(..4)?.try_into().ok()?))
}

/// The messages in one datagram: (type, payload after the 16-byte header).
pub fn messages(mut b: &[u8]) -> Result<Vec<(u16, &[u8])>, NlError> {
    let mut out = Vec::new();
    while b.len() >= NLMSG_HDRLEN {
        let len = u32_ne(b).ok_or(NlError("header"))? as usize;
        if len < NLMSG_HDRLEN || len > b.len() {
            return Err(NlError("message length"));
        }
        out.push((u16_ne(&b[4..]).ok_or(NlError("header"))?, &b[NLMSG_HDRLEN..len]));
        b = &b[align4(len).min(b.len())..];
    }
    Ok(out)
}

/// The attributes of `b`: (type without the nested / byte-order flags, payload).
pub fn attrs(mut b: &[u8]) -> Result<Vec<(u16, &[u8])>, NlError> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = usize::from(u16_ne(b).ok_or(NlError("attribute"))?);
        if len < 4 || len > b.len() {
            return Err(NlError("attribute length"));
        }
        out.push((u16_ne(&b[2..]).ok_or(NlError("attribute"))? & 0x3fff, &b[4..len]));
        b = &b[align4(len).min(b.len())..];
    }
    Ok(out)
}

/// One path-manager event, as far as verify needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PmEvent {
    /// `MPTCP_EVENT_CREATED` / `ESTABLISHED`: the connection of `token` goes to `remote`.
    Connection {
        /// The connection's token.
        token: u32,
        /// Its remote address and port (absent if the event lacked them).
        remote: Option<SocketAddr>,
    },
    /// `MPTCP_EVENT_ANNOUNCED`: the peer of `token` announced `addr` (the port is the event's
    /// `dport`, absent when the ADD_ADDR had none and the kernel left it out).
    Announced {
        /// The connection's token.
        token: u32,
        /// The address ID the peer gave it.
        rem_id: Option<u8>,
        /// The announced address.
        addr: IpAddr,
        /// Its port.
        port: Option<u16>,
    },
    /// Any other event.
    Other(u8),
}

/// The address in a `DADDR4` / `DADDR6` attribute.
fn daddr(list: &[(u16, &[u8])]) -> Option<IpAddr> {
    list.iter().find_map(|(t, p)| match *t {
        attr::DADDR4 => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(p.get(..4)?).ok()?))),
        attr::DADDR6 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(p.get(..16)?).ok()?))),
        _ => None,
    })
}

/// Parses the generic netlink payload (genlmsghdr and attributes) of an event message.
pub fn parse_event(payload: &[u8]) -> Result<PmEvent, NlError> {
    if payload.len() < GENL_HDRLEN {
        return Err(NlError("generic netlink header"));
    }
    let cmd = payload[0];
    if !matches!(cmd, event::CREATED | event::ESTABLISHED | event::ANNOUNCED) {
        return Ok(PmEvent::Other(cmd));
    }
    let list = attrs(&payload[GENL_HDRLEN..])?;
    let get = |t: u16| list.iter().find(|(a, _)| *a == t).map(|(_, p)| *p);
    let token = get(attr::TOKEN).and_then(u32_ne).ok_or(NlError("event without a token"))?;
    let port = get(attr::DPORT).and_then(|p| Some(u16::from_be_bytes(p.get(..2)?.try_into().ok()?)));
    if cmd == event::ANNOUNCED {
        let addr = daddr(&list).ok_or(NlError("ANNOUNCED without an address"))?;
        let rem_id = get(attr::REM_ID).and_then(|p| p.first().copied());
        return Ok(PmEvent::Announced { token, rem_id, addr, port });
    }
    let remote = daddr(&list).map(|a| SocketAddr::new(a, port.unwrap_or(0)));
    Ok(PmEvent::Connection { token, remote })
}

/// The `CTRL_CMD_GETFAMILY` request for `name`.
pub fn getfamily_request(name: &str, seq: u32) -> Vec<u8> {
    let nla_len = 4 + name.len() + 1;
    let len = NLMSG_HDRLEN + GENL_HDRLEN + align4(nla_len);
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&GENL_ID_CTRL.to_ne_bytes());
    m.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[CTRL_CMD_GETFAMILY, 1, 0, 0]);
    m.extend_from_slice(&(nla_len as u16).to_ne_bytes());
    m.extend_from_slice(&CTRL_ATTR_FAMILY_NAME.to_ne_bytes());
    m.extend_from_slice(name.as_bytes());
    m.push(0);
    m.resize(len, 0);
    m
}

/// From the controller's answer (one datagram): the family ID and the ID of multicast group
/// `group`. A netlink error answer becomes its errno.
pub fn parse_family_reply(datagram: &[u8], group: &str) -> Result<(u16, Option<u32>), io::Error> {
    let bad = |e: NlError| io::Error::new(io::ErrorKind::InvalidData, e);
    for (ty, payload) in messages(datagram).map_err(bad)? {
        match ty {
            NLMSG_ERROR => {
                let errno = u32_ne(payload).ok_or_else(|| bad(NlError("error message")))? as i32;
                return Err(io::Error::from_raw_os_error(-errno));
            }
            GENL_ID_CTRL if payload.len() >= GENL_HDRLEN => {
                let list = attrs(&payload[GENL_HDRLEN..]).map_err(bad)?;
                let id = list.iter().find(|(t, _)| *t == CTRL_ATTR_FAMILY_ID).and_then(|(_, p)| u16_ne(p));
                let id = id.ok_or_else(|| bad(NlError("family answer without an ID")))?;
                let mut grp = None;
                if let Some((_, groups)) = list.iter().find(|(t, _)| *t == CTRL_ATTR_MCAST_GROUPS) {
                    for (_, g) in attrs(groups).map_err(bad)? {
                        let g = attrs(g).map_err(bad)?;
                        let name = g.iter().find(|(t, _)| *t == CTRL_ATTR_MCAST_GRP_NAME).map(|(_, p)| *p);
                        let name = name.map(|p| p.split(|&c| c == 0).next().unwrap_or_default());
                        if name == Some(group.as_bytes()) {
                            grp = g.iter().find(|(t, _)| *t == CTRL_ATTR_MCAST_GRP_ID).and_then(|(_, p)| u32_ne(p));
                        }
                    }
                }
                return Ok((id, grp));
            }
            _ => {}
        }
    }
    Err(bad(NlError("no family answer")))
}

/// One announcement a connection received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announcement {
    /// The address and port announced (the target's port when the event carried none).
    pub addr: SocketAddr,
    /// When the event was read.
    pub at: Instant,
}

#[derive(Debug, Default)]
struct Conn {
    remote: Option<SocketAddr>,
    announced: Vec<(IpAddr, Option<u16>, Instant)>,
}

#[derive(Debug, Default)]
struct Table {
    conns: HashMap<u32, Conn>,
    /// When the socket was last found empty: every event queued before then has been read.
    drained: Option<Instant>,
}

/// The announcements of the namespace's MPTCP connections, kept by a background thread that
/// reads the event group. Shared by the attempts.
#[derive(Debug)]
pub struct Announcements {
    table: Mutex<Table>,
    /// Datagrams the kernel dropped because the socket's buffer was full (ENOBUFS).
    pub overruns: AtomicU64,
}

impl Announcements {
    /// Records one event read at `at`.
    pub fn record(&self, ev: PmEvent, at: Instant) {
        let mut t = self.table.lock().expect("not poisoned");
        match ev {
            PmEvent::Connection { token, remote } => {
                let c = t.conns.entry(token).or_default();
                // CREATED of a reused token: a new connection, the old one's announcements go.
                if c.remote.is_some() && remote.is_some() && c.remote != remote {
                    c.announced.clear();
                }
                c.remote = remote.or(c.remote);
            }
            PmEvent::Announced { token, addr, port, .. } => {
                t.conns.entry(token).or_default().announced.push((addr, port, at))
            }
            PmEvent::Other(_) => {}
        }
    }

    fn mark_drained(&self, at: Instant) {
        self.table.lock().expect("not poisoned").drained = Some(at);
    }

    /// Takes the announcements of the connection with `token` to `target`, once every event
    /// queued before this call has been read (waiting at most `patience`): the ADD_ADDRs came
    /// before the caller looked, so they are in by then. Announcements recorded for a token
    /// whose connection goes elsewhere are not returned.
    pub async fn take(&self, token: u32, target: SocketAddr, patience: Duration) -> Vec<Announcement> {
        let asked = Instant::now();
        while Instant::now() < asked + patience {
            if self.table.lock().expect("not poisoned").drained.is_some_and(|d| d >= asked) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let mut t = self.table.lock().expect("not poisoned");
        let Some(c) = t.conns.remove(&token) else { return Vec::new() };
        if c.remote.is_some_and(|r| r.ip() != target.ip() || (r.port() != 0 && r.port() != target.port())) {
            return Vec::new();
        }
        let mut out: Vec<Announcement> = Vec::new();
        for (ip, port, at) in c.announced {
            let addr = SocketAddr::new(ip, port.filter(|&p| p != 0).unwrap_or(target.port()));
            if !out.iter().any(|a| a.addr == addr) {
                out.push(Announcement { addr, at });
            }
        }
        out
    }
}

/// Subscribes to the path-manager events of this network namespace and starts the thread that
/// records them. Fails if the kernel has no `mptcp_pm` family or the group may not be joined.
pub fn start() -> io::Result<Arc<Announcements>> {
    let sock = sys::netlink_generic_socket()?;
    sys::netlink_send(&sock, &getfamily_request(FAMILY_NAME, 1))?;
    let mut buf = vec![0u8; 16384];
    let n = sys::recv(&sock, &mut buf, false)?;
    let (_, group) = parse_family_reply(&buf[..n], EVENTS_GROUP).map_err(|e| {
        io::Error::new(e.kind(), format!("looking up the {FAMILY_NAME} netlink family (is MPTCP built in?): {e}"))
    })?;
    let group = group.ok_or_else(|| io::Error::other(format!("{FAMILY_NAME} has no {EVENTS_GROUP} group")))?;
    sys::setsockopt_u32(&sock, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
        .map_err(|e| io::Error::new(e.kind(), format!("joining {EVENTS_GROUP} (needs CAP_NET_ADMIN): {e}")))?;
    // Room for bursts of events from many connections at once (best effort: FORCE needs
    // CAP_NET_ADMIN, the plain one is capped by net.core.rmem_max).
    let _ = sys::setsockopt_u32(&sock, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 8 << 20)
        .or_else(|_| sys::setsockopt_u32(&sock, libc::SOL_SOCKET, libc::SO_RCVBUF, 8 << 20));
    let ann = Arc::new(Announcements { table: Mutex::default(), overruns: AtomicU64::new(0) });
    let a = Arc::clone(&ann);
    std::thread::Builder::new().name("mptcp-pm-events".into()).spawn(move || listen(sock, &a, buf))?;
    Ok(ann)
}

/// The listener: reads every datagram, records its events, and notes each time the socket is
/// empty. Runs until the process ends.
fn listen(sock: OwnedFd, ann: &Announcements, mut buf: Vec<u8>) {
    loop {
        match sys::recv(&sock, &mut buf, true) {
            Ok(n) => {
                let at = Instant::now();
                if let Ok(msgs) = messages(&buf[..n]) {
                    for (ty, payload) in msgs {
                        if ty == NLMSG_ERROR || ty == NLMSG_DONE {
                            continue;
                        }
                        if let Ok(ev) = parse_event(payload) {
                            ann.record(ev, at);
                        }
                    }
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                ann.overruns.fetch_add(1, Relaxed);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                ann.mark_drained(Instant::now());
                // A short wait, so that `drained` keeps moving while no event comes.
                sys::poll_readable(&sock, 5);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("mpscan verify: reading MPTCP path-manager events stopped: {e}");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An attribute: header (native-endian), payload, padding.
    fn nla(ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = ((4 + payload.len()) as u16).to_ne_bytes().to_vec();
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(payload);
        v.resize(align4(v.len()), 0);
        v
    }

    /// A netlink message of `ty` around a generic netlink header with `cmd` and `body`.
    fn msg(ty: u16, cmd: u8, body: &[u8]) -> Vec<u8> {
        let len = (16 + 4 + body.len()) as u32;
        let mut v = len.to_ne_bytes().to_vec();
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(&[0; 10]);
        v.extend_from_slice(&[cmd, 1, 0, 0]);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn announced_ipv4_with_port() {
        // MPTCP_EVENT_ANNOUNCED: token 0x11223344, rem_id 1, dport 443, daddr4 198.51.100.254,
        // as mptcp_event_addr_announced() writes them.
        let body = [
            nla(attr::TOKEN, &0x1122_3344u32.to_ne_bytes()),
            nla(attr::REM_ID, &[1]),
            nla(attr::DPORT, &[0x01, 0xbb]),
            nla(attr::DADDR4, &[198, 51, 100, 254]),
        ]
        .concat();
        let m = msg(0x1d, event::ANNOUNCED, &body);
        let ms = messages(&m).unwrap();
        assert_eq!(ms.len(), 1);
        assert_eq!(
            parse_event(ms[0].1).unwrap(),
            PmEvent::Announced {
                token: 0x1122_3344,
                rem_id: Some(1),
                addr: "198.51.100.254".parse().unwrap(),
                port: Some(443)
            }
        );
    }

    #[test]
    fn announced_ipv6_without_port_and_created_with_the_tuple() {
        let a6: Ipv6Addr = "2001:db8::fe".parse().unwrap();
        let body =
            [nla(attr::TOKEN, &7u32.to_ne_bytes()), nla(2, &10u16.to_ne_bytes()), nla(attr::DADDR6, &a6.octets())]
                .concat();
        let m = msg(0x1d, event::ANNOUNCED, &body);
        assert_eq!(
            parse_event(messages(&m).unwrap()[0].1).unwrap(),
            PmEvent::Announced { token: 7, rem_id: None, addr: a6.into(), port: None }
        );
        // CREATED: token, family, saddr4, daddr4, sport, dport (two messages in one datagram).
        let created = [
            nla(attr::TOKEN, &9u32.to_ne_bytes()),
            nla(2, &2u16.to_ne_bytes()),
            nla(5, &[192, 0, 2, 2]),
            nla(attr::DADDR4, &[203, 0, 113, 130]),
            nla(9, &[0x9c, 0x40]),
            nla(attr::DPORT, &[0, 80]),
        ]
        .concat();
        let two = [msg(0x1d, event::CREATED, &created), msg(0x1d, 3, &nla(attr::TOKEN, &9u32.to_ne_bytes()))].concat();
        let ms = messages(&two).unwrap();
        assert_eq!(ms.len(), 2);
        assert_eq!(
            parse_event(ms[0].1).unwrap(),
            PmEvent::Connection { token: 9, remote: Some("203.0.113.130:80".parse().unwrap()) }
        );
        assert_eq!(parse_event(ms[1].1).unwrap(), PmEvent::Other(3), "CLOSED is not read");
    }

    #[test]
    fn malformed_bytes_are_errors_not_panics() {
        assert!(messages(&[0xff; 8]).unwrap().is_empty(), "shorter than a header: nothing");
        let mut m = msg(0x1d, event::ANNOUNCED, &nla(attr::TOKEN, &1u32.to_ne_bytes()));
        assert_eq!(parse_event(messages(&m).unwrap()[0].1), Err(NlError("ANNOUNCED without an address")));
        m[0] = 200; // length beyond the datagram
        assert_eq!(messages(&m), Err(NlError("message length")));
        let bad_attr = msg(0x1d, event::ANNOUNCED, &[9, 0, 1, 0, 0, 0, 0, 0]);
        assert_eq!(parse_event(messages(&bad_attr).unwrap()[0].1), Err(NlError("attribute length")));
        let no_token = msg(0x1d, event::CREATED, &nla(attr::DADDR4, &[1, 2, 3, 4]));
        assert_eq!(parse_event(messages(&no_token).unwrap()[0].1), Err(NlError("event without a token")));
        assert_eq!(parse_event(&[6, 1]), Err(NlError("generic netlink header")));
    }

    #[test]
    fn family_lookup_request_and_answer() {
        let r = getfamily_request("mptcp_pm", 5);
        assert_eq!(r.len(), 16 + 4 + 16);
        assert_eq!(&r[..4], &36u32.to_ne_bytes());
        assert_eq!(&r[4..6], &GENL_ID_CTRL.to_ne_bytes());
        assert_eq!(&r[16..20], &[CTRL_CMD_GETFAMILY, 1, 0, 0]);
        assert_eq!(&r[20..22], &13u16.to_ne_bytes(), "attribute length: 4 + 8 + NUL");
        assert_eq!(&r[24..33], b"mptcp_pm\0");
        // The controller's answer: family ID 0x1d, groups mptcp_pm_cmds (3) and mptcp_pm_events (4).
        let grp = |i: u16, name: &str, id: u32| {
            let mut n = name.as_bytes().to_vec();
            n.push(0);
            nla(i, &[nla(CTRL_ATTR_MCAST_GRP_ID, &id.to_ne_bytes()), nla(CTRL_ATTR_MCAST_GRP_NAME, &n)].concat())
        };
        let groups = [grp(1, "mptcp_pm_cmds", 3), grp(2, "mptcp_pm_events", 4)].concat();
        let body = [
            nla(CTRL_ATTR_FAMILY_ID, &0x1du16.to_ne_bytes()),
            nla(CTRL_ATTR_FAMILY_NAME, b"mptcp_pm\0"),
            nla(CTRL_ATTR_MCAST_GROUPS | 0x8000, &groups),
        ]
        .concat();
        let answer = msg(GENL_ID_CTRL, 1, &body);
        assert_eq!(parse_family_reply(&answer, EVENTS_GROUP).unwrap(), (0x1d, Some(4)));
        assert_eq!(parse_family_reply(&answer, "nope").unwrap(), (0x1d, None));
        // NLMSG_ERROR with -ENOENT: no such family.
        let mut err = 36u32.to_ne_bytes().to_vec();
        err.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        err.extend_from_slice(&[0; 10]);
        err.extend_from_slice(&(-libc::ENOENT).to_ne_bytes());
        err.extend_from_slice(&[0; 16]);
        assert_eq!(parse_family_reply(&err, EVENTS_GROUP).unwrap_err().raw_os_error(), Some(libc::ENOENT));
    }

    #[test]
    fn announcements_are_matched_by_token_and_target() {
        let ann = Announcements { table: Mutex::default(), overruns: AtomicU64::new(0) };
        let t0 = Instant::now();
        let target: SocketAddr = "203.0.113.130:443".parse().unwrap();
        ann.record(PmEvent::Connection { token: 1, remote: Some(target) }, t0);
        let lb: IpAddr = "198.51.100.254".parse().unwrap();
        ann.record(PmEvent::Announced { token: 1, rem_id: Some(1), addr: lb, port: None }, t0);
        ann.record(PmEvent::Announced { token: 1, rem_id: Some(1), addr: lb, port: Some(443) }, t0);
        ann.record(PmEvent::Announced { token: 1, rem_id: Some(2), addr: lb, port: Some(8443) }, t0);
        ann.record(PmEvent::Connection { token: 2, remote: Some("203.0.113.131:443".parse().unwrap()) }, t0);
        ann.record(PmEvent::Announced { token: 2, rem_id: Some(1), addr: lb, port: None }, t0);
        ann.mark_drained(t0 + Duration::from_secs(3600));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let got = rt.block_on(ann.take(1, target, Duration::from_millis(10)));
        let addrs: Vec<String> = got.iter().map(|a| a.addr.to_string()).collect();
        assert_eq!(addrs, ["198.51.100.254:443", "198.51.100.254:8443"], "no port: the target's; repeats go");
        assert!(rt.block_on(ann.take(1, target, Duration::ZERO)).is_empty(), "taken once");
        assert!(rt.block_on(ann.take(2, target, Duration::ZERO)).is_empty(), "token 2 is another target's");
        assert!(rt.block_on(ann.take(3, target, Duration::ZERO)).is_empty());
    }
}
