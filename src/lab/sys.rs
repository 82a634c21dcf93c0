//! The few system calls the lab needs that the standard library and socket2 do not offer: an
//! AF_PACKET socket bound to one interface (the userspace responders), `TCP_IS_MPTCP` (to tell
//! whether a connection really is MPTCP), and sending a signal to one process by PID.
//!
//! This is the only lab file allowed `unsafe`; each block says why it is sound.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `TCP_IS_MPTCP` (include/uapi/linux/tcp.h): 1 on an MPTCP socket whose connection did not
/// fall back to TCP, 0 on a plain or fallen-back one.
pub const TCP_IS_MPTCP: libc::c_int = 43;
/// IPPROTO_MPTCP, the protocol number of `socket(AF_INET, SOCK_STREAM, 262)`.
pub const IPPROTO_MPTCP: i32 = 262;

/// An AF_PACKET raw socket bound to one interface, receiving IPv4 (or all) frames addressed to it and
/// sending whole Ethernet frames out of it.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    /// Opens the socket on interface `ifname` (ETH_P_IP only; our own transmissions are not
    /// looped back to us).
    pub fn open(ifname: &str) -> io::Result<PacketSocket> {
        Self::open_proto(ifname, libc::ETH_P_IP)
    }

    /// Like [`Self::open`], receiving every EtherType (IPv4 and IPv6: the trace lab's boxes).
    pub fn open_all(ifname: &str) -> io::Result<PacketSocket> {
        Self::open_proto(ifname, libc::ETH_P_ALL)
    }

    fn open_proto(ifname: &str, ethertype: libc::c_int) -> io::Result<PacketSocket> {
        let ifindex = if_index(ifname)?;
        let proto_be = (ethertype as u16).to_be();
        // SAFETY: plain socket(2) call with constant arguments; the result is checked.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto_be as i32) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh, valid descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto_be;
        sll.sll_ifindex = ifindex;
        // SAFETY: the pointer and length describe `sll`, which lives across the call.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let one: libc::c_int = 1;
        // SAFETY: the pointer and length describe `one`, an int, as PACKET_IGNORE_OUTGOING expects.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_IGNORE_OUTGOING,
                &one as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PacketSocket { fd })
    }

    /// Makes [`Self::recv`] give up after `t` (an error of kind `WouldBlock`/`TimedOut`).
    pub fn set_read_timeout(&self, t: std::time::Duration) -> io::Result<()> {
        socket2::SockRef::from(&self.fd).set_read_timeout(Some(t))
    }

    /// Receives one frame into `buf` (blocking); returns its length (truncated to `buf`).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: the pointer and length describe `buf`, writable for the whole call.
        let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Sends one whole Ethernet frame out of the bound interface.
    pub fn send(&self, frame: &[u8]) -> io::Result<usize> {
        // SAFETY: the pointer and length describe `frame`, readable for the whole call.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr() as *const libc::c_void, frame.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}

/// The index of interface `name` in the current namespace.
pub fn if_index(name: &str) -> io::Result<i32> {
    let c = CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name has a NUL"))?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface {name}: {}", io::Error::last_os_error()),
        ));
    }
    Ok(idx as i32)
}

/// Whether the connected socket `fd` is a real MPTCP connection (`TCP_IS_MPTCP`).
pub fn tcp_is_mptcp(fd: &impl AsRawFd) -> io::Result<bool> {
    let mut val: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the pointers describe `val` and `len`, writable for the whole call.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_TCP,
            TCP_IS_MPTCP,
            &mut val as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(val != 0)
}

/// Sends SIGKILL to process `pid`. The caller has checked (by its start time) that `pid` is the
/// process it started; never call this with a PID read from anywhere else.
pub fn kill_pid(pid: u32) -> io::Result<()> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    if pid <= 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "refusing to signal a process group"));
    }
    // SAFETY: kill(2) with a positive PID signals that one process; no memory is involved.
    let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether this process runs as root (effective UID 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// `SIOCETHTOOL` and `ETHTOOL_STXCSUM` (include/uapi/linux/sockios.h, ethtool.h).
const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_STXCSUM: u32 = 0x17;

/// `struct ethtool_value`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// `struct ifreq` with the `ifr_data` member of its union (40 bytes on 64-bit Linux).
#[repr(C)]
struct IfreqData {
    name: [u8; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _rest: [u8; 24 - std::mem::size_of::<*mut libc::c_void>()],
}

/// Turns off transmit checksum offload on `ifname` (what `ethtool -K IF tx off` does), so
/// that the kernel writes complete TCP checksums into what it sends. Over a veth the kernel
/// otherwise leaves them for a NIC that does not exist, and a capture further on sees bad
/// checksums that no packet from the Internet would have.
pub fn disable_tx_checksum_offload(ifname: &str) -> io::Result<()> {
    if ifname.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "interface name too long"));
    }
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
    let mut val = EthtoolValue { cmd: ETHTOOL_STXCSUM, data: 0 };
    let mut req = IfreqData {
        name: [0; libc::IFNAMSIZ],
        data: &mut val as *mut EthtoolValue as *mut libc::c_void,
        _rest: [0; 24 - std::mem::size_of::<*mut libc::c_void>()],
    };
    req.name[..ifname.len()].copy_from_slice(ifname.as_bytes());
    // SAFETY: SIOCETHTOOL reads an ifreq whose data member points at an ethtool_value; both
    // live on this stack frame across the call and have the kernel's layouts.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL as _, &mut req as *mut IfreqData) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
