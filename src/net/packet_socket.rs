//! The AF_PACKET socket and the shared-memory mapping of its rings: the thin, unsafe layer the
//! transmit and receive back ends are built on. Everything above this file is safe code.
#![allow(unsafe_code)]

use super::bpf::SockFilter;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::time::Duration;

/// Adds what was being done to an OS error, keeping its kind; EPERM becomes the root hint.
pub(crate) fn ctx(what: &str, e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::EPERM) || e.raw_os_error() == Some(libc::EACCES) {
        return io::Error::new(e.kind(), format!("{what}: {e}: {}", super::caps::NeedsRoot));
    }
    let message = format!("{what}: {e}");
    match e.raw_os_error() {
        // Keep the number: the send loop decides from it whether to wait for the link.
        Some(errno) => io::Error::new(e.kind(), super::OsError { errno, message }),
        None => io::Error::new(e.kind(), message),
    }
}

/// An AF_PACKET, SOCK_RAW socket. Created with protocol 0 so that it receives nothing until
/// [`PacketSocket::bind`] names a protocol: options and the filter are set first, with no window
/// in which unfiltered frames could be queued.
#[derive(Debug)]
pub(crate) struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    /// Opens the socket (needs CAP_NET_RAW).
    pub fn open() -> io::Result<Self> {
        // SAFETY: plain syscall with constant arguments; the result is checked below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(ctx("socket(AF_PACKET, SOCK_RAW)", io::Error::last_os_error()));
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        Ok(PacketSocket { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// `setsockopt(level, name, value)` for a plain-data option value.
    pub fn set_opt<T: Copy>(&self, level: i32, name: i32, value: &T, what: &str) -> io::Result<()> {
        // SAFETY: `value` points to a live `T` of exactly the length passed; the kernel only
        // reads it during the call.
        let r = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                (value as *const T).cast(),
                std::mem::size_of::<T>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(ctx(what, io::Error::last_os_error()));
        }
        Ok(())
    }

    /// `setsockopt(SOL_PACKET, name, int)`.
    pub fn set_packet_int(&self, name: i32, v: i32, what: &str) -> io::Result<()> {
        self.set_opt(libc::SOL_PACKET, name, &v, what)
    }

    /// `getsockopt(SOL_PACKET, PACKET_STATISTICS)` for a TPACKET_V3 socket: (packets, drops),
    /// where packets includes drops. The kernel resets the counters on each read.
    pub fn packet_stats_v3(&self) -> io::Result<(u32, u32)> {
        let mut st = [0u32; 3]; // struct tpacket_stats_v3 { packets, drops, freeze_q_cnt }
        let mut len = std::mem::size_of_val(&st) as libc::socklen_t;
        // SAFETY: `st` is writable for `len` bytes and `len` is a valid in/out length.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                st.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if r < 0 {
            return Err(ctx("getsockopt(PACKET_STATISTICS)", io::Error::last_os_error()));
        }
        Ok((st[0], st[1]))
    }

    /// Reads and clears the socket's pending error (`SO_ERROR`): the kernel sets ENETDOWN on a
    /// bound socket when its interface goes down, and poll() reports POLLERR until it is read.
    pub fn take_error(&self) -> Option<i32> {
        let mut err: i32 = 0;
        let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
        // SAFETY: `err` is writable for `len` bytes and `len` is a valid in/out length.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut err as *mut i32).cast(),
                &mut len,
            )
        };
        (r == 0 && err != 0).then_some(err)
    }

    /// Attaches a classic BPF program (`SO_ATTACH_FILTER`); the kernel verifies it.
    pub fn attach_filter(&self, prog: &[SockFilter]) -> io::Result<()> {
        let len = u16::try_from(prog.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "BPF program longer than 65535 instructions"))?;
        let fprog = libc::sock_fprog { len, filter: prog.as_ptr() as *mut libc::sock_filter };
        // `SockFilter` is #[repr(C)] with the same fields as `struct sock_filter`.
        const _: () = assert!(std::mem::size_of::<SockFilter>() == std::mem::size_of::<libc::sock_filter>());
        self.set_opt(libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog, "setsockopt(SO_ATTACH_FILTER)")
    }

    /// Binds the socket to interface `ifindex` for frames of `protocol` (host order; 0 = send only,
    /// receive nothing; `ETH_P_ALL` = every frame).
    pub fn bind(&self, ifindex: u32, protocol: u16) -> io::Result<()> {
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = protocol.to_be();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: `sll` is a valid sockaddr_ll of the length given.
        let r = unsafe {
            libc::bind(
                self.fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(ctx(&format!("bind(AF_PACKET) to interface index {ifindex}"), io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Maps the socket's ring(s) into memory.
    pub fn mmap(&self, len: usize) -> io::Result<Mmap> {
        // SAFETY: a fresh shared mapping of the socket's ring; the kernel checks `len` against the
        // ring it set up. The pointer is checked for MAP_FAILED below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                self.fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(ctx("mmap(packet ring)", io::Error::last_os_error()));
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned NULL"))?;
        Ok(Mmap { ptr, len })
    }

    /// `poll()` for `events` at most `timeout`; returns the revents (0 on timeout, or when
    /// interrupted by a signal: callers loop anyway).
    pub fn poll(&self, events: i16, timeout: Duration) -> io::Result<i16> {
        let mut pfd = libc::pollfd { fd: self.fd.as_raw_fd(), events, revents: 0 };
        // Round up so that a sub-millisecond timeout still waits.
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd, count 1.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(ctx("poll(packet socket)", e));
        }
        Ok(pfd.revents)
    }

    /// `send(fd, NULL, 0, flags)`: tells the kernel to transmit every frame marked
    /// `TP_STATUS_SEND_REQUEST` in the TX ring.
    pub fn kick(&self, flags: i32) -> io::Result<usize> {
        // SAFETY: a zero-length send with a null buffer is how PACKET_TX_RING is flushed; the
        // kernel reads no user buffer.
        let r = unsafe { libc::send(self.fd.as_raw_fd(), std::ptr::null(), 0, flags) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r as usize)
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// A shared mapping of a packet ring, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is owned by exactly one back end; moving it to another thread moves that
// ownership. It is not Sync: only the owner touches it.
unsafe impl Send for Mmap {}

impl Mmap {
    /// Base address of the mapping.
    pub fn base(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the region `mmap` returned; no reference into it outlives
        // `self` (slices handed out borrow the back end that owns this mapping).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}
