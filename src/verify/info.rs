//! Checked, safe readers of what the kernel's MPTCP socket options return: `struct mptcp_info`
//! (`MPTCP_INFO`) and the subflow address list (`MPTCP_SUBFLOW_ADDRS`). The kernel copies as
//! many bytes as both it and we know, so an older kernel's shorter struct parses too, with the
//! fields it lacks left out.
//!
//! `struct mptcp_info` (include/uapi/linux/mptcp.h, Linux 6.18), byte offsets:
//!
//! ```text
//!  0 u8  mptcpi_subflows            1 u8  mptcpi_add_addr_signal      2 u8 mptcpi_add_addr_accepted
//!  3 u8  mptcpi_subflows_max        4 u8  mptcpi_add_addr_signal_max  5 u8 mptcpi_add_addr_accepted_max
//!  8 u32 mptcpi_flags (1 = FALLBACK, 2 = REMOTE_KEY_RECEIVED)        12 u32 mptcpi_token
//! 16 u64 mptcpi_write_seq          24 u64 mptcpi_snd_una             32 u64 mptcpi_rcv_nxt
//! 40 u8  mptcpi_local_addr_used    41 u8  mptcpi_local_addr_max      42 u8 mptcpi_csum_enabled
//! 44 u32 mptcpi_retransmits        48 u64 mptcpi_bytes_retrans       56 u64 mptcpi_bytes_sent
//! 64 u64 mptcpi_bytes_received     72 u64 mptcpi_bytes_acked         80 u8 mptcpi_subflows_total
//! 84 u32 mptcpi_last_data_sent     88 u32 mptcpi_last_data_recv      92 u32 mptcpi_last_ack_recv
//! ```
//!
//! `mptcpi_subflows` counts the subflows *beyond* the first (the path manager's count);
//! `mptcpi_subflows_total` (Linux 6.7+) counts them all.
//!
//! `MPTCP_SUBFLOW_ADDRS`: a 16-byte `struct mptcp_subflow_data { u32 size_subflow_data,
//! num_subflows, size_kernel, size_user }` that the caller fills with its own sizes, then
//! `size_user`-byte elements `struct mptcp_subflow_addrs { sockaddr_storage local, remote }`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Byte ranges of `struct mptcp_info`.
mod field {
    pub const SUBFLOWS: usize = 0;
    pub const ADD_ADDR_SIGNAL: usize = 1;
    pub const ADD_ADDR_ACCEPTED: usize = 2;
    pub const SUBFLOWS_MAX: usize = 3;
    pub const ADD_ADDR_ACCEPTED_MAX: usize = 5;
    pub const FLAGS: usize = 8;
    pub const TOKEN: usize = 12;
    pub const CSUM_ENABLED: usize = 42;
    pub const BYTES_SENT: usize = 56;
    pub const BYTES_RECEIVED: usize = 64;
    pub const SUBFLOWS_TOTAL: usize = 80;
    /// The end of the 5.x struct (through `mptcpi_csum_enabled`, padded).
    pub const LEN_BASE: usize = 44;
    /// The size of the 6.18 struct.
    pub const LEN_FULL: usize = 96;
}

/// `MPTCP_INFO_FLAG_FALLBACK`: the connection fell back to plain TCP.
pub const FLAG_FALLBACK: u32 = 1;
/// `MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED`: the peer's key arrived (an MP_CAPABLE exchange happened).
pub const FLAG_REMOTE_KEY_RECEIVED: u32 = 2;

/// The buffer size to pass to `MPTCP_INFO` (the largest struct we read).
pub const MPTCP_INFO_LEN: usize = field::LEN_FULL;

/// What `MPTCP_INFO` says about one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MptcpInfo {
    /// Additional subflows (beyond the first) the path manager counts.
    pub subflows: u8,
    /// ADD_ADDRs we sent.
    pub add_addr_signal: u8,
    /// ADD_ADDRs received from the peer and accepted by our path manager.
    pub add_addr_accepted: u8,
    /// Our path manager's subflow limit.
    pub subflows_max: u8,
    /// Our path manager's limit on accepted ADD_ADDRs (0: announced addresses are ignored).
    pub add_addr_accepted_max: u8,
    /// `mptcpi_flags` ([`FLAG_FALLBACK`], [`FLAG_REMOTE_KEY_RECEIVED`]).
    pub flags: u32,
    /// The connection's local token.
    pub token: u32,
    /// DSS checksums are in use (one side set the A flag).
    pub csum_enabled: bool,
    /// Bytes sent at the MPTCP level (Linux 6.6+).
    pub bytes_sent: Option<u64>,
    /// Bytes received at the MPTCP level (Linux 6.6+).
    pub bytes_received: Option<u64>,
    /// Every subflow, the first included (Linux 6.7+).
    pub subflows_total: Option<u8>,
}

/// Why kernel bytes could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfoError {
    /// Fewer bytes than the oldest layout we read.
    Truncated {
        /// How many bytes there were.
        len: usize,
        /// How many are needed.
        need: usize,
    },
}

impl std::fmt::Display for InfoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InfoError::Truncated { len, need } => write!(f, "kernel returned {len} bytes, need at least {need}"),
        }
    }
}

impl std::error::Error for InfoError {}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8).map(|s| u64::from_ne_bytes(s.try_into().expect("8 bytes")))
}

impl MptcpInfo {
    /// Reads the first `b.len()` bytes the kernel returned (native byte order, as the kernel
    /// writes them).
    pub fn parse(b: &[u8]) -> Result<MptcpInfo, InfoError> {
        if b.len() < field::LEN_BASE {
            return Err(InfoError::Truncated { len: b.len(), need: field::LEN_BASE });
        }
        Ok(MptcpInfo {
            subflows: b[field::SUBFLOWS],
            add_addr_signal: b[field::ADD_ADDR_SIGNAL],
            add_addr_accepted: b[field::ADD_ADDR_ACCEPTED],
            subflows_max: b[field::SUBFLOWS_MAX],
            add_addr_accepted_max: b[field::ADD_ADDR_ACCEPTED_MAX],
            flags: u32_at(b, field::FLAGS),
            token: u32_at(b, field::TOKEN),
            csum_enabled: b[field::CSUM_ENABLED] != 0,
            bytes_sent: u64_at(b, field::BYTES_SENT),
            bytes_received: u64_at(b, field::BYTES_RECEIVED),
            subflows_total: b.get(field::SUBFLOWS_TOTAL).copied(),
        })
    }

    /// The kernel marked the connection as fallen back to TCP.
    pub fn fallback(&self) -> bool {
        self.flags & FLAG_FALLBACK != 0
    }

    /// The peer's MP_CAPABLE key arrived.
    pub fn remote_key_received(&self) -> bool {
        self.flags & FLAG_REMOTE_KEY_RECEIVED != 0
    }
}

/// Size of `struct mptcp_subflow_data`.
pub const SUBFLOW_DATA_LEN: usize = 16;
/// Size of `struct sockaddr_storage`.
const SOCKADDR_STORAGE_LEN: usize = 128;
/// Size of one `struct mptcp_subflow_addrs` (two `sockaddr_storage`).
pub const SUBFLOW_ADDRS_LEN: usize = 2 * SOCKADDR_STORAGE_LEN;

/// A buffer for `MPTCP_SUBFLOW_ADDRS` with room for `max` subflows, its header filled in as the
/// kernel requires (our sizes; `num_subflows` and `size_kernel` zero).
pub fn subflow_addrs_request(max: usize) -> Vec<u8> {
    let mut b = vec![0u8; SUBFLOW_DATA_LEN + max * SUBFLOW_ADDRS_LEN];
    b[0..4].copy_from_slice(&(SUBFLOW_DATA_LEN as u32).to_ne_bytes());
    b[12..16].copy_from_slice(&(SUBFLOW_ADDRS_LEN as u32).to_ne_bytes());
    b
}

/// One subflow's endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubflowAddrs {
    /// Our end.
    pub local: SocketAddr,
    /// The peer's end.
    pub remote: SocketAddr,
}

/// Reads a `sockaddr_in` / `sockaddr_in6` out of a `sockaddr_storage`'s bytes; `None` for
/// another family or too few bytes.
fn sockaddr(b: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes(b.get(0..2)?.try_into().ok()?);
    let port = u16::from_be_bytes(b.get(2..4)?.try_into().ok()?);
    match family as i32 {
        libc::AF_INET => {
            let a: [u8; 4] = b.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a)), port))
        }
        libc::AF_INET6 => {
            let a: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(a)), port))
        }
        _ => None,
    }
}

/// Reads what `MPTCP_SUBFLOW_ADDRS` returned (`b` cut to the returned length): the subflows
/// whose both ends are IPv4 or IPv6 addresses, in the kernel's order. Elements are laid out at
/// the header size and element size the kernel echoes back.
pub fn parse_subflow_addrs(b: &[u8]) -> Result<Vec<SubflowAddrs>, InfoError> {
    if b.len() < SUBFLOW_DATA_LEN {
        return Err(InfoError::Truncated { len: b.len(), need: SUBFLOW_DATA_LEN });
    }
    let hdr = u32_at(b, 0) as usize;
    let num = u32_at(b, 4) as usize;
    let size_kernel = u32_at(b, 8) as usize;
    let size_user = u32_at(b, 12) as usize;
    let elem = size_user.min(size_kernel.max(1));
    if hdr < SUBFLOW_DATA_LEN || elem < 2 * 24 {
        return Ok(Vec::new());
    }
    let stride = size_user;
    let mut out = Vec::new();
    for i in 0..num {
        let Some(e) = b.get(hdr + i * stride..hdr + i * stride + elem) else { break };
        let half = SOCKADDR_STORAGE_LEN.min(e.len() / 2);
        if let (Some(local), Some(remote)) = (sockaddr(&e[..half]), sockaddr(&e[SOCKADDR_STORAGE_LEN.min(e.len())..])) {
            out.push(SubflowAddrs { local, remote });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `struct mptcp_info` as Linux 6.18 fills it for a client connection that accepted one
    /// ADD_ADDR and opened one extra subflow (values set field by field at the documented offsets).
    fn info_bytes() -> Vec<u8> {
        let mut b = vec![0u8; MPTCP_INFO_LEN];
        b[0] = 1; // subflows
        b[2] = 1; // add_addr_accepted
        b[3] = 2; // subflows_max
        b[5] = 2; // add_addr_accepted_max
        b[8..12].copy_from_slice(&FLAG_REMOTE_KEY_RECEIVED.to_ne_bytes());
        b[12..16].copy_from_slice(&0xdead_beefu32.to_ne_bytes());
        b[42] = 0; // csum_enabled
        b[56..64].copy_from_slice(&77u64.to_ne_bytes());
        b[64..72].copy_from_slice(&130u64.to_ne_bytes());
        b[80] = 2;
        b
    }

    #[test]
    fn parses_full_struct() {
        let i = MptcpInfo::parse(&info_bytes()).unwrap();
        assert_eq!(i.subflows, 1);
        assert_eq!(i.add_addr_accepted, 1);
        assert_eq!(i.add_addr_accepted_max, 2);
        assert_eq!(i.subflows_max, 2);
        assert_eq!(i.token, 0xdead_beef);
        assert!(i.remote_key_received() && !i.fallback() && !i.csum_enabled);
        assert_eq!(i.bytes_sent, Some(77));
        assert_eq!(i.bytes_received, Some(130));
        assert_eq!(i.subflows_total, Some(2));
    }

    #[test]
    fn older_kernel_struct_lacks_the_counters() {
        let b = info_bytes();
        let i = MptcpInfo::parse(&b[..44]).unwrap();
        assert_eq!((i.bytes_sent, i.bytes_received, i.subflows_total), (None, None, None));
        assert_eq!(i.token, 0xdead_beef);
    }

    #[test]
    fn truncated_info_is_an_error_not_a_panic() {
        for n in [0, 1, 8, 43] {
            assert_eq!(MptcpInfo::parse(&info_bytes()[..n]), Err(InfoError::Truncated { len: n, need: 44 }));
        }
    }

    fn sockaddr_in(a: [u8; 4], port: u16) -> [u8; 128] {
        let mut s = [0u8; 128];
        s[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        s[2..4].copy_from_slice(&port.to_be_bytes());
        s[4..8].copy_from_slice(&a);
        s
    }

    #[test]
    fn subflow_addrs_round_trip_through_the_kernel_layout() {
        let mut b = subflow_addrs_request(4);
        assert_eq!(u32_at(&b, 0), 16);
        assert_eq!(u32_at(&b, 12), 256);
        // What the kernel writes back for two subflows.
        b[4..8].copy_from_slice(&2u32.to_ne_bytes());
        b[8..12].copy_from_slice(&256u32.to_ne_bytes());
        b[16..144].copy_from_slice(&sockaddr_in([192, 0, 2, 2], 40000));
        b[144..272].copy_from_slice(&sockaddr_in([203, 0, 113, 130], 443));
        b[272..400].copy_from_slice(&sockaddr_in([192, 0, 2, 2], 40001));
        b[400..528].copy_from_slice(&sockaddr_in([198, 51, 100, 254], 443));
        let s = parse_subflow_addrs(&b[..528]).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].remote, "203.0.113.130:443".parse().unwrap());
        assert_eq!(s[1].local, "192.0.2.2:40001".parse().unwrap());
        assert_eq!(s[1].remote, "198.51.100.254:443".parse().unwrap());
        // Cut short: only the complete elements are read.
        assert_eq!(parse_subflow_addrs(&b[..300]).unwrap().len(), 1);
        assert!(parse_subflow_addrs(&b[..10]).is_err());
    }

    #[test]
    fn unknown_family_is_skipped() {
        let mut b = subflow_addrs_request(1);
        b[4..8].copy_from_slice(&1u32.to_ne_bytes());
        b[8..12].copy_from_slice(&256u32.to_ne_bytes());
        b[16] = 0xff;
        assert!(parse_subflow_addrs(&b).unwrap().is_empty());
    }
}
