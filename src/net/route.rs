//! Where do probes to a destination go? The interface, our source address and MAC, the gateway,
//! and the MAC address every frame must be sent to (the next hop's).
//!
//! The kernel is asked, not second-guessed: a UDP socket `connect()`ed to the destination (which
//! sends nothing) reveals the source address the kernel would choose; the routing table
//! (`/proc/thread-self/net/route`, `.../ipv6_route`, longest-prefix match) gives the interface and
//! gateway; the neighbour table (`/proc/thread-self/net/arp`, `ip -6 neigh` for IPv6) gives the
//! next hop's MAC. If the neighbour entry is missing, one empty UDP datagram to the next hop's
//! discard port (9) makes the kernel resolve it, and the table is polled for up to 2 s.
//!
//! `/proc/thread-self/net` rather than `/proc/net`: the latter shows the namespace of the process's
//! main thread, while tests resolve routes from threads that entered lab namespaces.
//!
//! Every user-facing failure is one line naming what is missing and the option that fixes it
//! (`-i` interface, `-S` source address, `-G` gateway MAC).

use super::ifaddrs::{if_hwaddr, if_index, interface_addrs, ARPHRD_LOOPBACK};
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::time::{Duration, Instant};

/// How long to wait for the kernel to resolve the next hop's MAC.
const NEIGHBOUR_WAIT: Duration = Duration::from_secs(2);
/// The discard port: where the resolution-provoking datagram goes.
const DISCARD_PORT: u16 = 9;

/// Everything the frame builder needs to put a probe on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Outgoing interface name.
    pub interface: String,
    /// Its index (for binding AF_PACKET sockets).
    pub ifindex: u32,
    /// Its MAC address: the Ethernet source of every probe.
    pub src_mac: [u8; 6],
    /// The IP source of every probe.
    pub src_ip: IpAddr,
    /// The gateway, if the destination is not on-link (None also when `-G` made it moot).
    pub gateway_ip: Option<IpAddr>,
    /// The Ethernet destination of every probe: the gateway's MAC, the on-link destination's, or
    /// all zeros on loopback.
    pub gateway_mac: [u8; 6],
}

/// Why a route could not be resolved. `Display` is one line with the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// `-S` and the destination are different IP versions.
    FamilyMismatch { dst: IpAddr, src: IpAddr },
    /// The kernel has no route to the destination.
    NoRoute { dst: IpAddr, detail: String },
    /// The interface named (by `-i` or found in the routing table) does not exist.
    NoSuchInterface { name: String, detail: String },
    /// `-S` names an address no interface has.
    SourceNotLocal { src: IpAddr },
    /// The interface has no address of the destination's IP version.
    NoSourceOnInterface { iface: String, dst: IpAddr },
    /// The next hop's MAC could not be learnt.
    NoNeighbour { next_hop: IpAddr, iface: String },
    /// A MAC address string did not parse.
    BadMac { text: String, why: &'static str },
    /// A kernel table could not be read.
    Io { what: String, detail: String },
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::FamilyMismatch { dst, src } => {
                write!(f, "source address {src} (-S) and target {dst} are not the same IP version: fix -S")
            }
            RouteError::NoRoute { dst, detail } => {
                write!(f, "no route to {dst} ({detail}): choose the interface with -i, the source with -S and the gateway MAC with -G")
            }
            RouteError::NoSuchInterface { name, detail } => write!(f, "interface '{name}' not usable ({detail}): fix -i"),
            RouteError::SourceNotLocal { src } => {
                write!(f, "source address {src} (-S) is not configured on any interface: name the interface with -i")
            }
            RouteError::NoSourceOnInterface { iface, dst } => {
                write!(f, "interface {iface} has no address of the same IP version as {dst}: set the source address with -S")
            }
            RouteError::NoNeighbour { next_hop, iface } => write!(
                f,
                "no MAC address for next hop {next_hop} on {iface} (not resolved within {} s): give the gateway MAC with -G aa:bb:cc:dd:ee:ff",
                NEIGHBOUR_WAIT.as_secs()
            ),
            RouteError::BadMac { text, why } => {
                write!(f, "bad MAC address '{}' ({why}): expected -G aa:bb:cc:dd:ee:ff", text.escape_debug())
            }
            RouteError::Io { what, detail } => {
                write!(f, "cannot read {what} ({detail}): give -i, -S and -G explicitly")
            }
        }
    }
}

impl std::error::Error for RouteError {}

/// Parses `aa:bb:cc:dd:ee:ff` (hex digits of either case; `-` also accepted as separator).
pub fn parse_mac(text: &str) -> Result<[u8; 6], RouteError> {
    let bad = |why| RouteError::BadMac { text: text.to_string(), why };
    let parts: Vec<&str> = text.trim().split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(bad("needs six bytes separated by ':'"));
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(&parts) {
        if p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("each byte is one or two hex digits"));
        }
        *m = u8::from_str_radix(p, 16).map_err(|_| bad("each byte is one or two hex digits"))?;
    }
    Ok(mac)
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// One row of a kernel routing table, either family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    /// Outgoing interface.
    pub iface: String,
    /// Destination prefix.
    pub dst: IpAddr,
    /// Prefix length in bits.
    pub prefix_len: u8,
    /// Gateway, or None for an on-link route.
    pub gateway: Option<IpAddr>,
    /// Route metric (lower wins among equal prefixes).
    pub metric: u32,
}

impl RouteEntry {
    /// True if `ip` lies in this route's prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.dst, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix_len.min(32))).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix_len.min(128))).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

const RTF_UP: u32 = 0x0001;
const RTF_GATEWAY: u32 = 0x0002;
const RTF_REJECT: u32 = 0x0200;

/// Parses `/proc/net/route` (IPv4). Addresses are the in-memory network-order u32 printed as hex,
/// so their native-endian bytes are the address bytes. Routes that are down or reject routes are
/// left out; malformed lines are skipped.
pub fn parse_proc_route(text: &str) -> Vec<RouteEntry> {
    let ip = |s: &str| u32::from_str_radix(s, 16).ok().map(|v| Ipv4Addr::from(v.to_ne_bytes()));
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let (dst, gw, mask) = (ip(f[1])?, ip(f[2])?, ip(f[7])?);
            let flags = u32::from_str_radix(f[3], 16).ok()?;
            let metric = f[6].parse().ok()?;
            if flags & RTF_UP == 0 || flags & RTF_REJECT != 0 {
                return None;
            }
            Some(RouteEntry {
                iface: f[0].to_string(),
                dst: IpAddr::V4(dst),
                prefix_len: u32::from(mask).count_ones() as u8,
                gateway: (flags & RTF_GATEWAY != 0 && !gw.is_unspecified()).then_some(IpAddr::V4(gw)),
                metric,
            })
        })
        .collect()
}

/// Parses `/proc/net/ipv6_route`: `dst plen src plen nexthop metric refcnt use flags dev`, all hex
/// but the device. Down, reject and loopback-device routes are left out.
pub fn parse_ipv6_route(text: &str) -> Vec<RouteEntry> {
    let ip = |s: &str| (s.len() == 32).then(|| u128::from_str_radix(s, 16).ok().map(Ipv6Addr::from)).flatten();
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                return None;
            }
            let dst = ip(f[0])?;
            let prefix_len = u8::from_str_radix(f[1], 16).ok().filter(|p| *p <= 128)?;
            let nexthop = ip(f[4])?;
            let metric = u32::from_str_radix(f[5], 16).ok()?;
            let flags = u32::from_str_radix(f[8], 16).ok()?;
            if flags & RTF_UP == 0 || flags & RTF_REJECT != 0 || f[9] == "lo" {
                return None;
            }
            Some(RouteEntry {
                iface: f[9].to_string(),
                dst: IpAddr::V6(dst),
                prefix_len,
                gateway: (!nexthop.is_unspecified()).then_some(IpAddr::V6(nexthop)),
                metric,
            })
        })
        .collect()
}

/// Longest-prefix match for `dst` among `routes` (only those via `iface` if given); among equal
/// prefixes the lowest metric wins.
pub fn lookup<'a>(routes: &'a [RouteEntry], dst: IpAddr, iface: Option<&str>) -> Option<&'a RouteEntry> {
    routes
        .iter()
        .filter(|r| r.contains(dst) && iface.is_none_or(|i| r.iface == i))
        .max_by(|a, b| a.prefix_len.cmp(&b.prefix_len).then(b.metric.cmp(&a.metric)))
}

/// Finds the complete entry for `ip` on `iface` in `/proc/net/arp`
/// (`IP address  HW type  Flags  HW address  Mask  Device`); incomplete entries (flag 0x2 unset)
/// and all-zero addresses count as missing.
pub fn parse_proc_arp(text: &str, ip: Ipv4Addr, iface: &str) -> Option<[u8; 6]> {
    const ATF_COM: u32 = 0x2;
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 || f[0].parse::<Ipv4Addr>().ok()? != ip || f[5] != iface {
            return None;
        }
        let flags = u32::from_str_radix(f[2].trim_start_matches("0x"), 16).ok()?;
        let mac = parse_mac(f[3]).ok()?;
        (flags & ATF_COM != 0 && mac != [0; 6]).then_some(mac)
    })
}

/// Reads the MAC from `ip -6 neigh show to ADDR dev IF` output
/// (`2001:db8::1 lladdr aa:bb:cc:dd:ee:ff REACHABLE`); FAILED and INCOMPLETE entries have none.
pub fn parse_ip_neigh(text: &str) -> Option<[u8; 6]> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        if line.contains("FAILED") || line.contains("INCOMPLETE") {
            return None;
        }
        words.by_ref().find(|w| *w == "lladdr")?;
        parse_mac(words.next()?).ok().filter(|m| *m != [0; 6])
    })
}

fn read_proc(name: &str) -> Result<String, RouteError> {
    let path = format!("/proc/thread-self/net/{name}");
    std::fs::read_to_string(&path).map_err(|e| RouteError::Io { what: path, detail: e.to_string() })
}

/// The next hop's MAC from the kernel's neighbour table, if complete.
fn neighbour(ip: IpAddr, iface: &str) -> Result<Option<[u8; 6]>, RouteError> {
    match ip {
        IpAddr::V4(v4) => Ok(parse_proc_arp(&read_proc("arp")?, v4, iface)),
        IpAddr::V6(v6) => {
            let out = std::process::Command::new("ip")
                .args(["-6", "neigh", "show", "to", &v6.to_string(), "dev", iface])
                .output()
                .map_err(|e| RouteError::Io { what: "`ip -6 neigh` (iproute2)".into(), detail: e.to_string() })?;
            Ok(parse_ip_neigh(&String::from_utf8_lossy(&out.stdout)))
        }
    }
}

/// Makes the kernel resolve `next_hop` by sending it one empty UDP datagram on the discard port.
fn provoke_resolution(next_hop: IpAddr, src: IpAddr, ifindex: u32) -> io::Result<()> {
    let to = match next_hop {
        IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => {
            SocketAddr::V6(SocketAddrV6::new(v6, DISCARD_PORT, 0, ifindex))
        }
        ip => SocketAddr::new(ip, DISCARD_PORT),
    };
    // Bind to the source if it is ours (it need not be: -S may name any address).
    let sock = UdpSocket::bind(SocketAddr::new(src, 0)).or_else(|_| {
        UdpSocket::bind(SocketAddr::new(
            if src.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() },
            0,
        ))
    })?;
    sock.send_to(&[], to)?;
    Ok(())
}

/// Polls the neighbour table for `next_hop`, provoking resolution once, for up to 2 s.
fn resolve_neighbour(next_hop: IpAddr, src: IpAddr, iface: &str, ifindex: u32) -> Result<[u8; 6], RouteError> {
    if let Some(mac) = neighbour(next_hop, iface)? {
        return Ok(mac);
    }
    // A failure to send is not fatal: the table may still fill in (or we report NoNeighbour).
    let _ = provoke_resolution(next_hop, src, ifindex);
    let start = Instant::now();
    while start.elapsed() < NEIGHBOUR_WAIT {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(mac) = neighbour(next_hop, iface)? {
            return Ok(mac);
        }
    }
    Err(RouteError::NoNeighbour { next_hop, iface: iface.to_string() })
}

/// The source address the kernel picks for `dst` (a UDP `connect()` sends nothing).
fn kernel_source(dst: IpAddr) -> Result<IpAddr, RouteError> {
    let any = match dst {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let no_route = |e: io::Error| RouteError::NoRoute { dst, detail: e.to_string() };
    let sock = UdpSocket::bind(SocketAddr::new(any, 0)).map_err(no_route)?;
    sock.connect(SocketAddr::new(dst, DISCARD_PORT)).map_err(no_route)?;
    Ok(sock.local_addr().map_err(no_route)?.ip())
}

/// Resolves the route to `dst`, honouring the overrides `iface` (-i), `src` (-S) and
/// `gw_mac` (-G). Looks only at the calling thread's network namespace.
pub fn resolve(
    dst: IpAddr,
    iface: Option<&str>,
    src: Option<IpAddr>,
    gw_mac: Option<[u8; 6]>,
) -> Result<Route, RouteError> {
    if let Some(s) = src {
        if s.is_ipv4() != dst.is_ipv4() {
            return Err(RouteError::FamilyMismatch { dst, src: s });
        }
    }
    let addrs =
        interface_addrs().map_err(|e| RouteError::Io { what: "interface addresses".into(), detail: e.to_string() })?;
    let dst_is_local = dst.is_loopback() || addrs.iter().any(|a| a.addr == dst);

    // The routing table entry, for the interface and gateway.
    let routes = if dst.is_ipv4() {
        parse_proc_route(&read_proc("route")?)
    } else {
        parse_ipv6_route(&read_proc("ipv6_route")?)
    };
    let entry = if dst_is_local { None } else { lookup(&routes, dst, iface).cloned() };

    // Source address: -S, else the first matching address of -i, else the kernel's choice.
    let src_ip = match (src, iface) {
        (Some(s), _) => s,
        (None, Some(i)) => {
            let mut cands: Vec<IpAddr> =
                addrs.iter().filter(|a| a.name == i && a.addr.is_ipv4() == dst.is_ipv4()).map(|a| a.addr).collect();
            // Prefer a global IPv6 address over a link-local one.
            cands.sort_by_key(|a| matches!(a, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80));
            if addrs.iter().all(|a| a.name != i) && if_index(i).is_err() {
                return Err(RouteError::NoSuchInterface { name: i.to_string(), detail: "no such interface".into() });
            }
            *cands.first().ok_or_else(|| RouteError::NoSourceOnInterface { iface: i.to_string(), dst })?
        }
        (None, None) => kernel_source(dst)?,
    };

    // Interface: -i, else loopback for local targets, else the route's, else the source's.
    let interface = match iface {
        Some(i) => i.to_string(),
        None if dst_is_local => {
            addrs.iter().find(|a| a.addr.is_loopback()).map(|a| a.name.clone()).unwrap_or_else(|| "lo".to_string())
        }
        None => match &entry {
            Some(e) => e.iface.clone(),
            None => match addrs.iter().find(|a| a.addr == src_ip) {
                Some(a) => a.name.clone(),
                None if src.is_some() => return Err(RouteError::SourceNotLocal { src: src_ip }),
                None => return Err(RouteError::NoRoute { dst, detail: "not in the main routing table".into() }),
            },
        },
    };

    let no_iface = |e: io::Error| RouteError::NoSuchInterface { name: interface.clone(), detail: e.to_string() };
    let ifindex = if_index(&interface).map_err(no_iface)?;
    let (src_mac, hwtype) = if_hwaddr(&interface).map_err(no_iface)?;

    let gateway_ip = entry.as_ref().and_then(|e| e.gateway);
    let gateway_mac = match gw_mac {
        Some(m) => m,
        None if hwtype == ARPHRD_LOOPBACK || dst_is_local => [0; 6],
        None => {
            if entry.is_none() {
                return Err(RouteError::NoRoute { dst, detail: format!("no route via {interface}") });
            }
            resolve_neighbour(gateway_ip.unwrap_or(dst), src_ip, &interface, ifindex)?
        }
    };
    Ok(Route { interface, ifindex, src_mac, src_ip, gateway_ip, gateway_mac })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC_ROUTE: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010011AC\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t000011AC\t00000000\t0001\t0\t0\t100\t0000FFFF\t0\t0\t0
veth1\t000212C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
veth1\t000012C6\t010212C6\t0003\t0\t0\t0\t0000FEFF\t0\t0\t0
veth2\t000012C6\t010212C6\t0003\t0\t0\t50\t0000FEFF\t0\t0\t0
eth0\t0000000A\t00000000\t0201\t0\t0\t0\t000000FF\t0\t0\t0
eth0\t0000000B\t00000000\t0000\t0\t0\t0\t000000FF\t0\t0\t0
garbage line
eth0\tZZZZZZZZ\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0
";

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn proc_route_parses() {
        // The fixture is in the in-memory byte order of a little-endian host.
        if cfg!(target_endian = "big") {
            return;
        }
        let r = parse_proc_route(PROC_ROUTE);
        assert_eq!(r.len(), 5, "{r:#?}"); // reject, down and malformed lines dropped
        assert_eq!(
            r[0],
            RouteEntry {
                iface: "eth0".into(),
                dst: v4("0.0.0.0"),
                prefix_len: 0,
                gateway: Some(v4("172.17.0.1")),
                metric: 100
            }
        );
        assert_eq!(r[2].dst, v4("198.18.2.0"));
        assert_eq!(r[2].prefix_len, 24);
        assert_eq!(r[2].gateway, None);
        assert_eq!(r[3].prefix_len, 15);
    }

    #[test]
    fn longest_prefix_wins_then_metric() {
        if cfg!(target_endian = "big") {
            return;
        }
        let r = parse_proc_route(PROC_ROUTE);
        let on_link = lookup(&r, v4("198.18.2.77"), None).unwrap();
        assert_eq!((on_link.iface.as_str(), on_link.gateway), ("veth1", None));
        let via = lookup(&r, v4("198.19.0.1"), None).unwrap();
        assert_eq!(via.iface, "veth1");
        assert_eq!(via.gateway, Some(v4("198.18.2.1")));
        assert_eq!(via.metric, 0); // veth1 (metric 0) beats veth2 (metric 50)
        assert_eq!(lookup(&r, v4("198.19.0.1"), Some("veth2")).unwrap().metric, 50);
        assert_eq!(lookup(&r, v4("8.8.8.8"), None).unwrap().gateway, Some(v4("172.17.0.1")));
        assert!(lookup(&r, v4("8.8.8.8"), Some("veth9")).is_none());
        // The reject route for 10/8 is gone: default route applies.
        assert_eq!(lookup(&r, v4("10.1.1.1"), None).unwrap().prefix_len, 0);
    }

    const IPV6_ROUTE: &str = "\
20010db8000100000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001    veth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 20010db8000100000000000000000001 00000400 00000001 00000000 00000003    veth0
20010db8000200000000000000000000 30 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003    veth0
20010db8000100000000000000000002 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo
20010db8000300000000000000000000 30 00000000000000000000000000000000 00 00000000000000000000000000000000 00000400 00000001 00000000 00000201    veth0
short line
";

    #[test]
    fn ipv6_route_parses_and_matches() {
        let r = parse_ipv6_route(IPV6_ROUTE);
        assert_eq!(r.len(), 3, "{r:#?}");
        assert_eq!(r[0].dst, "2001:db8:1::".parse::<IpAddr>().unwrap());
        assert_eq!(r[0].prefix_len, 64);
        assert_eq!(r[0].metric, 256);
        assert_eq!(r[1].gateway, Some("2001:db8:1::1".parse().unwrap()));
        let on_link = lookup(&r, "2001:db8:1::99".parse().unwrap(), None).unwrap();
        assert_eq!(on_link.gateway, None);
        let via_ll = lookup(&r, "2001:db8:2:5::1".parse().unwrap(), None).unwrap();
        assert_eq!(via_ll.gateway, Some("fe80::1".parse().unwrap()));
        let default = lookup(&r, "2001:db8:3::1".parse().unwrap(), None).unwrap(); // reject route dropped
        assert_eq!(default.prefix_len, 0);
    }

    const PROC_ARP: &str = "\
IP address       HW type     Flags       HW address            Mask     Device
198.18.2.1       0x1         0x2         02:00:00:00:02:01     *        veth1
198.18.2.9       0x1         0x0         00:00:00:00:00:00     *        veth1
198.18.2.1       0x1         0x2         02:00:00:00:09:09     *        veth2
198.18.2.7       0x1         0x6         02:00:00:00:02:07     *        veth1
198.18.2.8       0x1         0x2         not-a-mac             *        veth1
";

    #[test]
    fn proc_arp_parses() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(parse_proc_arp(PROC_ARP, ip("198.18.2.1"), "veth1"), Some([2, 0, 0, 0, 2, 1]));
        assert_eq!(parse_proc_arp(PROC_ARP, ip("198.18.2.1"), "veth2"), Some([2, 0, 0, 0, 9, 9]));
        assert_eq!(parse_proc_arp(PROC_ARP, ip("198.18.2.7"), "veth1"), Some([2, 0, 0, 0, 2, 7])); // permanent
        assert_eq!(parse_proc_arp(PROC_ARP, ip("198.18.2.9"), "veth1"), None); // incomplete
        assert_eq!(parse_proc_arp(PROC_ARP, ip("198.18.2.8"), "veth1"), None); // garbage
        assert_eq!(parse_proc_arp(PROC_ARP, ip("198.18.2.2"), "veth1"), None);
        assert_eq!(parse_proc_arp("", ip("198.18.2.1"), "veth1"), None);
    }

    #[test]
    fn ip_neigh_parses() {
        assert_eq!(parse_ip_neigh("2001:db8:1::1 lladdr 02:00:00:00:01:01 REACHABLE\n"), Some([2, 0, 0, 0, 1, 1]));
        assert_eq!(parse_ip_neigh("fe80::1 lladdr 02:00:00:00:01:02 router STALE\n"), Some([2, 0, 0, 0, 1, 2]));
        assert_eq!(parse_ip_neigh("2001:db8:1::1  FAILED\n"), None);
        assert_eq!(parse_ip_neigh("2001:db8:1::1  INCOMPLETE\n"), None);
        assert_eq!(parse_ip_neigh("2001:db8:1::1 lladdr\n"), None);
        assert_eq!(parse_ip_neigh(""), None);
    }

    #[test]
    fn macs_parse_or_explain() {
        assert_eq!(parse_mac("aa:bb:cc:dd:ee:ff").unwrap(), [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
        assert_eq!(parse_mac("AA-BB-CC-DD-EE-0F").unwrap(), [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f]);
        assert_eq!(parse_mac("2:0:0:0:0:1").unwrap(), [2, 0, 0, 0, 0, 1]);
        for bad in [
            "",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:ff:00",
            "aa:bb:cc:dd:ee:gg",
            "aaa:bb:cc:dd:ee:ff",
            "aa::cc:dd:ee:ff",
            "+a:bb:cc:dd:ee:ff",
            "aa:bb:cc:dd:ee:ff\n:",
        ] {
            let e = parse_mac(bad).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains("-G") && !msg.contains('\n'), "{bad:?}: {msg}");
        }
        assert_eq!(format_mac(&[2, 0, 0xab, 0, 0, 1]), "02:00:ab:00:00:01");
    }

    #[test]
    fn errors_are_one_line_with_the_fix() {
        let dst = v4("198.18.0.1");
        let errs = [
            RouteError::FamilyMismatch { dst, src: "2001:db8::1".parse().unwrap() },
            RouteError::NoRoute { dst, detail: "Network is unreachable".into() },
            RouteError::NoSuchInterface { name: "eth9".into(), detail: "no such device".into() },
            RouteError::SourceNotLocal { src: v4("192.0.2.9") },
            RouteError::NoSourceOnInterface { iface: "eth0".into(), dst },
            RouteError::NoNeighbour { next_hop: v4("198.18.0.254"), iface: "eth0".into() },
            RouteError::Io { what: "/proc/thread-self/net/route".into(), detail: "gone".into() },
        ];
        for e in errs {
            let m = e.to_string();
            assert!(!m.contains('\n'), "{m}");
            assert!(m.contains("-i") || m.contains("-S") || m.contains("-G"), "{m}");
        }
    }

    #[test]
    fn loopback_destination_resolves_without_neighbours() {
        let r = resolve(v4("127.0.0.1"), None, None, None).unwrap();
        assert_eq!(r.src_ip, v4("127.0.0.1"));
        assert_eq!(r.gateway_mac, [0; 6]);
        assert_eq!(r.gateway_ip, None);
        assert_eq!(r.ifindex, if_index(&r.interface).unwrap());
        let e = resolve(v4("127.0.0.1"), None, Some("::1".parse().unwrap()), None).unwrap_err();
        assert!(matches!(e, RouteError::FamilyMismatch { .. }));
        let e = resolve(v4("127.0.0.1"), Some("mpscan-none0"), None, None).unwrap_err();
        assert!(matches!(e, RouteError::NoSuchInterface { .. }), "{e}");
    }
}
