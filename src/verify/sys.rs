//! The getsockopt calls verify needs that socket2 does not offer: `TCP_IS_MPTCP`, `MPTCP_INFO`
//! and `MPTCP_SUBFLOW_ADDRS`. Each returns raw bytes (or an int); the layouts are read by the
//! safe, checked views in [`super::info`], so nothing here knows a struct layout.
//!
//! This is the only verify file allowed `unsafe`; each block says why it is sound.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;

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
