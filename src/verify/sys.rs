//! The system calls verify needs that socket2 does not offer: the getsockopts `TCP_IS_MPTCP`,
//! `MPTCP_INFO` and `MPTCP_SUBFLOW_ADDRS`, and a generic netlink socket (for the path manager's
//! events, [`super::pm_events`]). Each returns raw bytes (or an int); the layouts are read by the
//! safe, checked views in [`super::info`] and [`super::pm_events`], so nothing here knows a
//! struct layout.
//!
//! This is the only verify file allowed `unsafe`; each block says why it is sound.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `SOL_MPTCP` (include/linux/socket.h): the socket-option level of MPTCP's own options.
pub const SOL_MPTCP: libc::c_int = 284;
/// `MPTCP_INFO` (include/uapi/linux/mptcp.h): the connection-level `struct mptcp_info`.
pub const MPTCP_INFO: libc::c_int = 1;
/// `MPTCP_SUBFLOW_ADDRS`: a `struct mptcp_subflow_data` header followed by one
/// `struct mptcp_subflow_addrs` (local and remote `sockaddr_storage`) per subflow.
pub const MPTCP_SUBFLOW_ADDRS: libc::c_int = 3;
/// `TCP_IS_MPTCP` (include/uapi/linux/tcp.h): 1 on an MPTCP socket whose connection did not fall
/// back to TCP.
pub const TCP_IS_MPTCP: libc::c_int = 43;
/// `IPPROTO_MPTCP`, the protocol of `socket(AF_INET, SOCK_STREAM, 262)`.
pub const IPPROTO_MPTCP: i32 = 262;

/// Calls getsockopt(level, name) into `buf` (which the caller may pre-fill: MPTCP_SUBFLOW_ADDRS
/// reads its header from it) and returns how many bytes the kernel wrote.
fn getsockopt_bytes(fd: &impl AsRawFd, level: libc::c_int, name: libc::c_int, buf: &mut [u8]) -> io::Result<usize> {
    let mut len = libc::socklen_t::try_from(buf.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "getsockopt buffer too large"))?;
    // SAFETY: the pointer and length describe `buf`, writable for the whole call; the kernel
    // writes at most `len` bytes and updates `len`, which is a valid, writable socklen_t.
    let rc = unsafe { libc::getsockopt(fd.as_raw_fd(), level, name, buf.as_mut_ptr() as *mut libc::c_void, &mut len) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((len as usize).min(buf.len()))
}

/// Whether the connected socket is a real MPTCP connection (`TCP_IS_MPTCP`).
pub fn tcp_is_mptcp(fd: &impl AsRawFd) -> io::Result<bool> {
    let mut b = [0u8; 4];
    let n = getsockopt_bytes(fd, libc::SOL_TCP, TCP_IS_MPTCP, &mut b)?;
    if n != 4 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("TCP_IS_MPTCP returned {n} bytes")));
    }
    Ok(i32::from_ne_bytes(b) != 0)
}

/// The bytes of `struct mptcp_info` as the kernel fills them (as many as it knows, at most
/// `buf.len()`); read them with [`super::info::MptcpInfo::parse`].
pub fn mptcp_info(fd: &impl AsRawFd, buf: &mut [u8]) -> io::Result<usize> {
    getsockopt_bytes(fd, SOL_MPTCP, MPTCP_INFO, buf)
}

/// The bytes of `MPTCP_SUBFLOW_ADDRS`: `buf` must start with a `struct mptcp_subflow_data`
/// header giving its own size and the element size we want (see
/// [`super::info::subflow_addrs_request`]); read the answer with [`super::info::parse_subflow_addrs`].
pub fn mptcp_subflow_addrs(fd: &impl AsRawFd, buf: &mut [u8]) -> io::Result<usize> {
    getsockopt_bytes(fd, SOL_MPTCP, MPTCP_SUBFLOW_ADDRS, buf)
}

/// A new `NETLINK_GENERIC` socket (close-on-exec).
pub fn netlink_generic_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_GENERIC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sends `msg` to the kernel (netlink port 0) on netlink socket `fd`.
pub fn netlink_send(fd: &OwnedFd, msg: &[u8]) -> io::Result<()> {
    // SAFETY: an all-zero sockaddr_nl is valid (it addresses the kernel once nl_family is set).
    let mut to: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    to.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: `msg` is readable for its length; `to` is a valid sockaddr_nl of the size given.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&to as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Receives one datagram into `buf` (`MSG_DONTWAIT` if `nonblocking`), returning its length.
pub fn recv(fd: &OwnedFd, buf: &mut [u8], nonblocking: bool) -> io::Result<usize> {
    let flags = if nonblocking { libc::MSG_DONTWAIT } else { 0 };
    // SAFETY: `buf` is writable for its length for the whole call.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), flags) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Sets a `u32` socket option.
pub fn setsockopt_u32(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, v: u32) -> io::Result<()> {
    // SAFETY: the pointer and size describe `v`, readable for the whole call.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&v as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Waits at most `ms` milliseconds for `fd` to be readable (errors and signals end the wait too).
pub fn poll_readable(fd: &OwnedFd, ms: i32) {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid, writable pollfd.
    unsafe { libc::poll(&mut p, 1, ms) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener, TcpStream};

    #[test]
    fn plain_tcp_socket_is_not_mptcp_and_has_no_mptcp_info() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        assert!(!tcp_is_mptcp(&s).unwrap());
        let mut buf = [0u8; 128];
        assert!(mptcp_info(&s, &mut buf).is_err(), "SOL_MPTCP on a plain TCP socket must fail");
    }
}
