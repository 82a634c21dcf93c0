//! Interface facts from the kernel: index, MTU, hardware address, configured addresses.
//!
//! These use ioctls and `getifaddrs(3)` rather than `/sys/class/net`, because sysfs shows the
//! network namespace it was mounted in, while a socket (and thus an ioctl) lives in the calling
//! thread's namespace: tests enter lab namespaces per thread with `setns(2)`.
//! `getifaddrs` comes from libc directly (already a dependency) instead of `nix`, to avoid a
//! second large crate for one call.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// ARPHRD_LOOPBACK: `lo`.
pub(crate) const ARPHRD_LOOPBACK: u16 = 772;

/// One address configured on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IfAddr {
    pub name: String,
    pub addr: IpAddr,
}

fn ifreq_for(name: &str) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("'{name}' is not a valid interface name")));
    }
    // SAFETY: ifreq is plain old data; all-zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    Ok(req)
}

fn ioctl_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; result checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ioctl(name: &str, request: libc::Ioctl) -> io::Result<libc::ifreq> {
    let mut req = ifreq_for(name)?;
    let s = ioctl_socket()?;
    // SAFETY: `req` is a valid, NUL-terminated ifreq that the kernel fills in.
    let r = unsafe { libc::ioctl(s.as_raw_fd(), request, &mut req) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENODEV) {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("no interface named '{name}'")));
        }
        return Err(e);
    }
    Ok(req)
}

/// Index of interface `name` in the calling thread's network namespace.
pub(crate) fn if_index(name: &str) -> io::Result<u32> {
    let req = ioctl(name, libc::SIOCGIFINDEX)?;
    // SAFETY: SIOCGIFINDEX fills the ifru_ifindex member of the union.
    Ok(unsafe { req.ifr_ifru.ifru_ifindex } as u32)
}

/// MTU of interface `name`.
pub(crate) fn if_mtu(name: &str) -> io::Result<u32> {
    let req = ioctl(name, libc::SIOCGIFMTU)?;
    // SAFETY: SIOCGIFMTU fills the ifru_mtu member of the union.
    Ok(unsafe { req.ifr_ifru.ifru_mtu } as u32)
}

/// Hardware address and ARPHRD type of interface `name`.
pub(crate) fn if_hwaddr(name: &str) -> io::Result<([u8; 6], u16)> {
    let req = ioctl(name, libc::SIOCGIFHWADDR)?;
    // SAFETY: SIOCGIFHWADDR fills the ifru_hwaddr member of the union.
    let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (d, s) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *d = *s as u8;
    }
    Ok((mac, sa.sa_family))
}

/// Every IPv4 and IPv6 address configured in the calling thread's namespace, with its interface.
pub(crate) fn interface_addrs() -> io::Result<Vec<IfAddr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we free with freeifaddrs below.
    if unsafe { libc::getifaddrs(&mut head) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, alive until freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) }.to_string_lossy().into_owned();
        // SAFETY: ifa_addr is non-null and points to a sockaddr whose family says its real type;
        // we read the larger struct only for the matching family.
        let addr = unsafe {
            match i32::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    Some(IpAddr::V4(Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes())))
                }
                libc::AF_INET6 => {
                    let sin6 = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
                }
                _ => None,
            }
        };
        if let Some(addr) = addr {
            out.push(IfAddr { name, addr });
        }
    }
    // SAFETY: frees the list getifaddrs allocated; no reference into it is kept.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_facts() {
        // Every namespace has `lo`.
        assert!(if_index("lo").unwrap() >= 1);
        let (mac, ty) = if_hwaddr("lo").unwrap();
        assert_eq!((mac, ty), ([0; 6], ARPHRD_LOOPBACK));
        assert!(if_mtu("lo").unwrap() >= 1500);
        let addrs = interface_addrs().unwrap();
        assert!(addrs.iter().any(|a| a.name == "lo" && a.addr == IpAddr::V4(Ipv4Addr::LOCALHOST)), "{addrs:?}");
    }

    #[test]
    fn bad_names_are_errors() {
        assert_eq!(if_index("mpscan-nope0").unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(if_index("").unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(if_index("a-name-far-too-long-for-linux").unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert!(if_index("a\0b").is_err());
    }
}
