//! The fallback transmit path: an AF_PACKET socket and one `sendmmsg()` per batch of up to
//! [`MMSG_BATCH`] frames, from buffers allocated once. Slower than the ring (each frame is copied
//! into an skb) but works wherever raw sockets do.
#![allow(unsafe_code)]

use super::ifaddrs::{if_index, if_mtu};
use super::packet_socket::{ctx, PacketSocket};
use super::{Transmit, TxStats, ETH_HEADER_LEN};
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Frames per `sendmmsg()` call.
pub const MMSG_BATCH: usize = 256;
/// Bytes per frame buffer.
const SLOT: usize = 2048;
/// How long a send may keep failing with ENOBUFS before the error goes to the send loop (which
/// waits up to `--send-error-grace`, the frames kept).
const STUCK_AFTER: Duration = Duration::from_secs(1);

/// A [`Transmit`] over `sendmmsg()`.
pub struct MmsgTx {
    sock: PacketSocket,
    bufs: Box<[u8]>,
    iovs: Box<[libc::iovec]>,
    msgs: Box<[libc::mmsghdr]>,
    max_len: usize,
    stats: TxStats,
    /// Messages filled but not sent when a send failed: sent first by the next call.
    unsent: std::ops::Range<usize>,
    /// Interface and option, to open the socket again after the interface came back.
    ifname: String,
    qdisc_bypass: bool,
}

// SAFETY: the raw pointers inside `iovs`/`msgs` point into `bufs`/`iovs`, heap blocks owned by
// the same struct that move with it; nothing else aliases them.
unsafe impl Send for MmsgTx {}

impl std::fmt::Debug for MmsgTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmsgTx").field("fd", &self.sock.as_raw_fd()).field("stats", &self.stats).finish()
    }
}

impl MmsgTx {
    /// Opens a raw socket bound to `ifname` for sending.
    pub fn open(ifname: &str, qdisc_bypass: bool) -> io::Result<Self> {
        let ifindex = if_index(ifname).map_err(|e| ctx(&format!("interface {ifname}"), e))?;
        let mtu = if_mtu(ifname).map_err(|e| ctx(&format!("MTU of {ifname}"), e))? as usize;
        let sock = PacketSocket::open()?;
        if qdisc_bypass {
            sock.set_packet_int(libc::PACKET_QDISC_BYPASS, 1, "setsockopt(PACKET_QDISC_BYPASS)")?;
        }
        sock.bind(ifindex, 0)?;
        let mut bufs = vec![0u8; MMSG_BATCH * SLOT].into_boxed_slice();
        let mut iovs: Box<[libc::iovec]> = (0..MMSG_BATCH)
            // SAFETY: offset i*SLOT stays inside `bufs` (MMSG_BATCH * SLOT bytes).
            .map(|i| libc::iovec { iov_base: unsafe { bufs.as_mut_ptr().add(i * SLOT) }.cast(), iov_len: 0 })
            .collect();
        let mut msgs: Box<[libc::mmsghdr]> = (0..MMSG_BATCH)
            .map(|_| {
                // SAFETY: mmsghdr is plain old data; all-zero is valid (no name, no control).
                unsafe { std::mem::zeroed::<libc::mmsghdr>() }
            })
            .collect();
        for (i, m) in msgs.iter_mut().enumerate() {
            // SAFETY: i < MMSG_BATCH = iovs.len().
            m.msg_hdr.msg_iov = unsafe { iovs.as_mut_ptr().add(i) };
            m.msg_hdr.msg_iovlen = 1;
        }
        Ok(MmsgTx {
            sock,
            bufs,
            iovs,
            msgs,
            max_len: (mtu + ETH_HEADER_LEN).min(SLOT),
            stats: TxStats::default(),
            unsent: 0..0,
            ifname: ifname.to_string(),
            qdisc_bypass,
        })
    }

    /// Sends messages `from..count`, retrying on EINTR / ENOBUFS / partial sends. On an error
    /// the messages not sent are kept in `unsent` for [`Transmit::retry`].
    fn send_filled(&mut self, from: usize, count: usize) -> io::Result<()> {
        self.unsent = 0..0;
        let mut done = from;
        let mut stuck_since: Option<Instant> = None;
        while done < count {
            // SAFETY: msgs[done..count] are initialised mmsghdrs whose iovecs point into `bufs`
            // with lengths within their slots; the kernel only reads them during the call.
            let r = unsafe {
                libc::sendmmsg(self.sock.as_raw_fd(), self.msgs.as_mut_ptr().add(done), (count - done) as u32, 0)
            };
            if r >= 0 {
                done += r as usize;
                self.stats.sent += r as u64;
                stuck_since = None;
                continue;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::ENOBUFS) | Some(libc::EAGAIN) => {
                    // The device queue is full: give it a moment to drain.
                    self.stats.ring_full_waits += 1;
                    if e.raw_os_error() == Some(libc::ENOBUFS) {
                        self.stats.enobufs += 1;
                    } else {
                        self.stats.eagain += 1;
                    }
                    let since = *stuck_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > STUCK_AFTER {
                        self.unsent = done..count;
                        return Err(ctx("sendmmsg(AF_PACKET): device queue full for 1 s", e));
                    }
                    if let Err(e) = self.sock.poll(libc::POLLOUT, Duration::from_millis(1)) {
                        self.unsent = done..count;
                        return Err(e);
                    }
                }
                _ => {
                    self.unsent = done..count;
                    return Err(ctx("sendmmsg(AF_PACKET)", e));
                }
            }
        }
        Ok(())
    }
}

impl Transmit for MmsgTx {
    fn send_batch(&mut self, n: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize) -> io::Result<usize> {
        // Frames kept from a failed call go first (their buffers are not reused before).
        if !self.unsent.is_empty() {
            self.send_filled(self.unsent.start, self.unsent.end)?;
        }
        let mut queued = 0;
        let mut calls = 0;
        let mut more = true;
        while more && calls < n {
            let mut count = 0;
            while count < MMSG_BATCH && calls < n {
                calls += 1;
                let slot = &mut self.bufs[count * SLOT..(count + 1) * SLOT];
                let len = fill(slot);
                if len == 0 {
                    more = false;
                    break;
                }
                if !(ETH_HEADER_LEN..=self.max_len).contains(&len) {
                    self.stats.failed += 1;
                    continue;
                }
                self.iovs[count].iov_len = len;
                count += 1;
            }
            self.stats.queued += count as u64;
            self.send_filled(0, count)?;
            queued += count;
        }
        Ok(queued)
    }

    fn flush(&mut self) -> io::Result<()> {
        // sendmmsg() returns once the frames are in the kernel; nothing of ours is pending.
        Ok(())
    }

    fn stats(&self) -> TxStats {
        self.stats
    }

    fn pending(&self) -> usize {
        self.unsent.len()
    }

    fn retry(&mut self) -> io::Result<usize> {
        if !self.unsent.is_empty() {
            self.send_filled(self.unsent.start, self.unsent.end)?;
        }
        Ok(0)
    }

    fn reopen(&mut self) -> io::Result<()> {
        let fresh = MmsgTx::open(&self.ifname, self.qdisc_bypass)?;
        // The buffers (and the kept frames in them) stay; only the socket is new.
        self.sock = fresh.sock;
        Ok(())
    }
}
