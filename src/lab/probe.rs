//! `lab probe`: sends the project's own SYN probes (built by [`crate::probe`]) from inside the
//! scanner namespace and prints every IPv4 frame that comes back, as hex.
//!
//! Test support: it lets the lab's tests check what each population answers to v0 and v1
//! probes, byte for byte, before and independently of `mpscan scan`. It is not a scanner: no
//! rate control, no validation, one probe per target.

use super::sys::PacketSocket;
use crate::keyed_hash::Validator;
use crate::probe::{Link, ProbeBuilder, ProbeVersion, MAX_FRAME_LEN};
use crate::wire::to_hex;
use anyhow::Context;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// Sends one `version` probe to each target out of `iface` (source `src`, next hop
/// `gateway_mac`), then prints each IPv4 frame received within `wait` as one hex line.
pub fn probe(
    iface: &str,
    src: Ipv4Addr,
    gateway_mac: &str,
    version: ProbeVersion,
    seed: u64,
    targets: &[SocketAddrV4],
    wait: Duration,
) -> anyhow::Result<()> {
    let mac_text = std::fs::read_to_string(format!("/sys/class/net/{iface}/address"))
        .with_context(|| format!("reading the MAC address of {iface}"))?;
    let src_mac = crate::net::route::parse_mac(mac_text.trim()).context("bad interface MAC")?;
    let dst_mac =
        crate::net::route::parse_mac(gateway_mac).with_context(|| format!("bad gateway MAC {gateway_mac:?}"))?;
    let sock = PacketSocket::open(iface).with_context(|| format!("opening an AF_PACKET socket on {iface}"))?;
    let builder = ProbeBuilder::new(&Link { src_mac, dst_mac, src_v4: Some(src), src_v6: None }, &[version]);
    let validator = Validator::from_seed(seed);
    let mut frame = [0u8; MAX_FRAME_LEN];
    for t in targets {
        let tag = validator.tag(IpAddr::V4(src), IpAddr::V4(*t.ip()), t.port(), version);
        let n = builder.write(&mut frame, IpAddr::V4(*t.ip()), t.port(), version, &tag);
        sock.send(&frame[..n]).context("sending a probe")?;
    }
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 2048];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if left.is_zero() {
            break;
        }
        sock.set_read_timeout(left)?;
        match sock.recv(&mut buf) {
            Ok(n) => println!("{}", to_hex(&buf[..n])),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => break,
            Err(e) => return Err(e).context("receiving"),
        }
    }
    Ok(())
}
