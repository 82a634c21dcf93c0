//! The fast transmit path: an AF_PACKET socket with a `PACKET_TX_RING` (TPACKET_V2), as
//! trafgen uses it.
//!
//! The ring is an array of fixed-size frame slots in memory shared with the kernel. Each slot
//! starts with a `struct tpacket2_hdr`, whose `tp_status` says who owns the slot:
//!
//! ```text
//!  slot i:  | tpacket2_hdr (32 bytes, tp_status, tp_len, ...) | frame bytes ... |
//!  tp_status: AVAILABLE (ours) -> we write the frame, tp_len, then SEND_REQUEST (kernel's)
//!             -> send() -> SENDING -> AVAILABLE again once the driver freed the skb
//! ```
//!
//! A batch writes probes straight into the slots, marks them, and makes one `send()` with
//! `MSG_DONTWAIT`: no copy, no allocation, one syscall per batch. `head` is the next slot we fill,
//! `tail` the oldest slot still owned by the kernel; slots come back in order, so reclaiming walks
//! from `tail`. When the ring is full we `poll()` for POLLOUT. `PACKET_QDISC_BYPASS` skips the
//! qdisc layer (the driver queue is our only queue), and `PACKET_LOSS` makes the kernel skip a
//! malformed frame instead of stopping the ring on it; we check lengths ourselves first, so that
//! failures are counted.
//!
//! `PACKET_VNET_HDR` (on by default): each slot's frame is preceded by a 10-byte
//! `struct virtio_net_hdr` whose `hdr_len` is the whole frame, which makes the kernel copy the
//! frame into the socket buffer's linear area. Without it, the kernel copies only the Ethernet
//! header and attaches the rest as a reference to the ring's page, marked zero-copy; a veth (and
//! any path that may hold the buffer) must then copy that page fragment into a freshly allocated
//! page (`skb_copy_ubufs`), and every frame takes and drops a reference on the shared ring page.
//! For a 78-byte probe the linear copy is far cheaper (measured in BENCHMARKS.md).
//!
//! ```text
//!  slot i:  | tpacket2_hdr (32) | virtio_net_hdr (10): flags 0, gso NONE, hdr_len = frame len | frame |
//! ```
#![allow(unsafe_code)]

use super::ifaddrs::{if_index, if_mtu};
use super::packet_socket::{ctx, Mmap, PacketSocket};
use super::tx_mmsg::MmsgTx;
use super::{Transmit, TxStats, ETH_HEADER_LEN, MIN_SLOT};
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// TPACKET_V2 (enum tpacket_versions).
const TPACKET_V2: i32 = 1;
/// Where frame data starts in a V2 TX slot: TPACKET_ALIGN(sizeof(struct tpacket2_hdr)).
const TX_DATA_OFFSET: usize = 32;
const TP_STATUS_AVAILABLE: u32 = 0;
const TP_STATUS_SEND_REQUEST: u32 = 1;
const TP_STATUS_WRONG_FORMAT: u32 = 4;
/// How long flush() and a full ring may wait without any slot coming back before reporting the
/// ring stuck (a transient error: the send loop then waits up to `--send-error-grace`).
const STUCK_AFTER: Duration = Duration::from_secs(1);

/// The error of a ring that does not drain: `TimedOut`, which the send loop treats as transient.
fn ring_stuck(in_flight: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("transmit ring stuck: no frame left in {} s ({in_flight} in flight)", STUCK_AFTER.as_secs()),
    )
}

/// Shape of the transmit ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxConfig {
    /// Bytes per slot, header included: a multiple of 16, at least 32 + [`MIN_SLOT`].
    pub frame_size: usize,
    /// Number of slots.
    pub frame_count: usize,
    /// Skip the qdisc layer (`PACKET_QDISC_BYPASS`).
    pub qdisc_bypass: bool,
    /// Prefix frames with a virtio-net header asking for a linear copy (`PACKET_VNET_HDR`; see
    /// the module documentation). Silently off if the kernel refuses it.
    pub vnet_hdr: bool,
}

/// Size of `struct virtio_net_hdr`.
const VNET_HDR_LEN: usize = 10;

impl Default for TxConfig {
    /// 16,384 slots of 256 bytes (4 MiB): room for any SYN probe, and enough in flight to
    /// keep the driver busy while the sender computes the next batch.
    fn default() -> Self {
        TxConfig { frame_size: 256, frame_count: 16_384, qdisc_bypass: true, vnet_hdr: true }
    }
}

/// An AF_PACKET socket with a `PACKET_TX_RING`.
#[derive(Debug)]
pub struct TxRing {
    ring: Mmap,
    sock: PacketSocket,
    frame_size: usize,
    frames_per_block: usize,
    block_size: usize,
    frame_count: usize,
    /// Largest frame the interface takes: MTU + Ethernet header, capped by the slot.
    max_len: usize,
    /// Bytes of virtio-net header before each frame (0 or [`VNET_HDR_LEN`]).
    vnet: usize,
    head: usize,
    tail: usize,
    in_flight: usize,
    /// Slots marked SEND_REQUEST that no successful send() has yet covered.
    unkicked: bool,
    stats: TxStats,
    /// Interface and shape, to open the ring again after the interface came back.
    ifname: String,
    cfg: TxConfig,
}

fn round_up(x: usize, to: usize) -> usize {
    x.div_ceil(to) * to
}

impl TxRing {
    /// Opens a TX ring on interface `ifname` (in the calling thread's network namespace).
    pub fn open(ifname: &str, cfg: TxConfig) -> io::Result<Self> {
        if !cfg.frame_size.is_multiple_of(16)
            || cfg.frame_size < TX_DATA_OFFSET + VNET_HDR_LEN + MIN_SLOT
            || cfg.frame_size > 1 << 16
            || cfg.frame_count == 0
        {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bad TX ring shape {cfg:?}")));
        }
        let ifindex = if_index(ifname).map_err(|e| ctx(&format!("interface {ifname}"), e))?;
        let mtu = if_mtu(ifname).map_err(|e| ctx(&format!("MTU of {ifname}"), e))? as usize;
        let page = 4096;
        let frames_per_block = ((1usize << 16) / cfg.frame_size).max(1);
        let block_size = round_up(frames_per_block * cfg.frame_size, page);
        let block_count = cfg.frame_count.div_ceil(frames_per_block);
        let frame_count = block_count * frames_per_block;

        let sock = PacketSocket::open()?;
        sock.set_packet_int(libc::PACKET_VERSION, TPACKET_V2, "setsockopt(PACKET_VERSION, TPACKET_V2)")?;
        sock.set_packet_int(libc::PACKET_LOSS, 1, "setsockopt(PACKET_LOSS)")?;
        if cfg.qdisc_bypass {
            sock.set_packet_int(libc::PACKET_QDISC_BYPASS, 1, "setsockopt(PACKET_QDISC_BYPASS)")?;
        }
        // Must come before the ring is set up (the kernel answers EBUSY after).
        let vnet =
            if cfg.vnet_hdr && sock.set_packet_int(libc::PACKET_VNET_HDR, 1, "setsockopt(PACKET_VNET_HDR)").is_ok() {
                VNET_HDR_LEN
            } else {
                0
            };
        // Every frame in flight is charged to the send buffer; the default (~200 KiB) would
        // stop a non-blocking send() after a few hundred frames.
        let sndbuf = i32::try_from(frame_count * 1024).unwrap_or(i32::MAX);
        if sock.set_opt(libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, &sndbuf, "SO_SNDBUFFORCE").is_err() {
            sock.set_opt(libc::SOL_SOCKET, libc::SO_SNDBUF, &sndbuf, "setsockopt(SO_SNDBUF)")?;
        }
        let req = libc::tpacket_req {
            tp_block_size: block_size as u32,
            tp_block_nr: block_count as u32,
            tp_frame_size: cfg.frame_size as u32,
            tp_frame_nr: frame_count as u32,
        };
        sock.set_opt(libc::SOL_PACKET, libc::PACKET_TX_RING, &req, "setsockopt(PACKET_TX_RING)")?;
        let ring = sock.mmap(block_size * block_count)?;
        // Protocol 0: this socket sends only and never has frames queued for reading.
        sock.bind(ifindex, 0)?;
        Ok(TxRing {
            ring,
            sock,
            frame_size: cfg.frame_size,
            frames_per_block,
            block_size,
            frame_count,
            max_len: (mtu + ETH_HEADER_LEN).min(cfg.frame_size - TX_DATA_OFFSET - vnet),
            vnet,
            head: 0,
            tail: 0,
            in_flight: 0,
            unkicked: false,
            stats: TxStats::default(),
            ifname: ifname.to_string(),
            cfg,
        })
    }

    /// Number of slots in the ring.
    pub fn capacity(&self) -> usize {
        self.frame_count
    }

    /// Offset of slot `i` in the mapping.
    fn slot_offset(&self, i: usize) -> usize {
        (i / self.frames_per_block) * self.block_size + (i % self.frames_per_block) * self.frame_size
    }

    /// The status word of slot `i`, shared with the kernel.
    fn status(&self, i: usize) -> &AtomicU32 {
        let off = self.slot_offset(i);
        debug_assert!(off + self.frame_size <= self.ring.len());
        // SAFETY: `off` is the 16-aligned start of a slot inside the mapping (checked by the
        // layout computed in `open`); tp_status is its first u32. The kernel accesses it
        // concurrently, hence an atomic.
        unsafe { &*(self.ring.base().add(off) as *const AtomicU32) }
    }

    /// Walks from `tail` over the slots the kernel has given back, counting them.
    fn reclaim(&mut self) -> usize {
        let mut n = 0;
        while self.in_flight > 0 {
            match self.status(self.tail).load(Ordering::Acquire) {
                TP_STATUS_AVAILABLE => self.stats.sent += 1,
                TP_STATUS_WRONG_FORMAT => {
                    self.stats.failed += 1;
                    self.status(self.tail).store(TP_STATUS_AVAILABLE, Ordering::Relaxed);
                }
                _ => break,
            }
            self.tail = (self.tail + 1) % self.frame_count;
            self.in_flight -= 1;
            n += 1;
        }
        n
    }

    /// One `send(MSG_DONTWAIT)` over all SEND_REQUEST slots. A full device queue (ENOBUFS) or
    /// send buffer (EAGAIN) is not an error: the slots stay marked and the next kick retries
    /// (counted in [`TxStats::enobufs`] and [`TxStats::eagain`]). Any other error (ENETDOWN: the
    /// interface is down) leaves the slots marked too: [`Transmit::retry`] kicks them again.
    fn kick(&mut self) -> io::Result<()> {
        loop {
            match self.sock.kick(libc::MSG_DONTWAIT) {
                Ok(_) => {
                    self.unkicked = false;
                    return Ok(());
                }
                Err(e) => match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::EAGAIN) => {
                        self.stats.eagain += 1;
                        return Ok(());
                    }
                    Some(libc::ENOBUFS) => {
                        self.stats.enobufs += 1;
                        return Ok(());
                    }
                    _ => return Err(ctx("send(PACKET_TX_RING)", e)),
                },
            }
        }
    }

    /// Waits until at least one in-flight slot comes back; errors out if none does for
    /// [`STUCK_AFTER`] (interface down, or a kernel that stopped draining the ring), keeping
    /// every frame: the send loop waits for the link and calls [`Transmit::retry`].
    fn wait_for_slot(&mut self) -> io::Result<()> {
        let start = Instant::now();
        loop {
            self.kick()?;
            if self.reclaim() > 0 {
                return Ok(());
            }
            if start.elapsed() > STUCK_AFTER {
                return Err(ring_stuck(self.in_flight));
            }
            // POLLOUT fires when the kernel's next slot is free again; the short timeout covers a
            // missed wake-up and the retry after ENOBUFS.
            self.sock.poll(libc::POLLOUT, Duration::from_millis(1))?;
        }
    }
}

impl Transmit for TxRing {
    fn send_batch(&mut self, n: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize) -> io::Result<usize> {
        let mut queued = 0;
        let r = self.fill_and_kick(n, fill, &mut queued);
        // Counted on an error too: the frames are in the ring and leave on retry().
        self.stats.queued += queued as u64;
        r.map(|()| queued)
    }

    fn flush(&mut self) -> io::Result<()> {
        while self.in_flight > 0 {
            self.wait_for_slot()?;
        }
        Ok(())
    }

    fn stats(&self) -> TxStats {
        self.stats
    }

    fn pending(&self) -> usize {
        self.send_requests()
    }

    fn retry(&mut self) -> io::Result<usize> {
        self.reclaim();
        if self.send_requests() > 0 {
            self.kick()?;
            self.reclaim();
        }
        let pending = self.send_requests();
        if pending == 0 && self.in_flight == self.frame_count {
            // Taken, but the driver gives no slot back: still stuck.
            return Err(ring_stuck(self.in_flight));
        }
        Ok(pending)
    }

    fn reopen(&mut self) -> io::Result<()> {
        let mut fresh = TxRing::open(&self.ifname, self.cfg)?;
        // Carry over, in order, every frame the old ring's kernel never took.
        let mut i = self.tail;
        for _ in 0..self.in_flight {
            if self.status(i).load(Ordering::Acquire) == TP_STATUS_SEND_REQUEST {
                let (from, to) = (self.slot_offset(i), fresh.slot_offset(fresh.head));
                let len = self.frame_size.min(fresh.frame_size);
                // SAFETY: both ranges are whole slots inside their own mappings (layouts from
                // `open`); the old slot is SEND_REQUEST to a socket whose device is gone and the
                // new one is AVAILABLE and ours; the header's status word is set below.
                unsafe { std::ptr::copy_nonoverlapping(self.ring.base().add(from), fresh.ring.base().add(to), len) };
                fresh.status(fresh.head).store(TP_STATUS_SEND_REQUEST, Ordering::Release);
                fresh.head = (fresh.head + 1) % fresh.frame_count;
                fresh.in_flight += 1;
                fresh.unkicked = true;
            }
            i = (i + 1) % self.frame_count;
        }
        fresh.stats = self.stats;
        *self = fresh;
        Ok(())
    }
}

impl TxRing {
    /// Slots marked SEND_REQUEST: frames the kernel has not taken (cold path: walks the ring).
    fn send_requests(&self) -> usize {
        let mut i = self.tail;
        let mut n = 0;
        for _ in 0..self.in_flight {
            n += usize::from(self.status(i).load(Ordering::Acquire) == TP_STATUS_SEND_REQUEST);
            i = (i + 1) % self.frame_count;
        }
        n
    }

    /// The body of [`Transmit::send_batch`]: counts into `queued` every frame it marks, also the
    /// ones of a batch that ends in an error.
    fn fill_and_kick(
        &mut self,
        n: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> usize,
        queued: &mut usize,
    ) -> io::Result<()> {
        self.reclaim();
        for _ in 0..n {
            if self.in_flight == self.frame_count {
                self.stats.ring_full_waits += 1;
                self.wait_for_slot()?;
            }
            let off = self.slot_offset(self.head);
            // SAFETY: slot `head` is not in flight (in_flight < frame_count and slots are used in
            // ring order), so its status is AVAILABLE and the kernel does not touch its bytes until
            // we mark it SEND_REQUEST below. The slice covers the data area of this slot only and
            // does not outlive this iteration.
            let data = unsafe {
                std::slice::from_raw_parts_mut(
                    self.ring.base().add(off + TX_DATA_OFFSET + self.vnet),
                    self.frame_size - TX_DATA_OFFSET - self.vnet,
                )
            };
            let len = fill(data);
            if len == 0 {
                break;
            }
            if !(ETH_HEADER_LEN..=self.max_len).contains(&len) {
                self.stats.failed += 1;
                continue;
            }
            if self.vnet > 0 {
                // struct virtio_net_hdr { u8 flags; u8 gso_type; u16 hdr_len; u16 gso_size;
                // u16 csum_start; u16 csum_offset; }, in the host's byte order (legacy virtio):
                // no offload, and the whole frame counts as header, to be copied.
                let mut h = [0u8; VNET_HDR_LEN];
                h[2..4].copy_from_slice(&(len as u16).to_ne_bytes());
                // SAFETY: the header lies in this slot, between the tpacket2_hdr and the frame
                // (the slot is ours, see above); `data` is not used past this point.
                unsafe {
                    std::ptr::copy_nonoverlapping(h.as_ptr(), self.ring.base().add(off + TX_DATA_OFFSET), VNET_HDR_LEN)
                };
            }
            // SAFETY: tp_len is the u32 at offset 4 of the slot's header, which we own (see above).
            unsafe { (self.ring.base().add(off + 4) as *mut u32).write_volatile((self.vnet + len) as u32) };
            self.status(self.head).store(TP_STATUS_SEND_REQUEST, Ordering::Release);
            self.head = (self.head + 1) % self.frame_count;
            self.in_flight += 1;
            self.unkicked = true;
            *queued += 1;
            // A batch larger than the ring: hand over what we have before waiting for space.
            if self.in_flight == self.frame_count {
                self.kick()?;
            }
        }
        if self.unkicked {
            self.kick()?;
        }
        Ok(())
    }
}

/// The transmit back end for real interfaces: a [`TxRing`] when the kernel lets us set one up,
/// else [`MmsgTx`] (one `sendmmsg()` per batch, with a copy into the kernel).
#[derive(Debug)]
pub enum AfPacketTx {
    /// PACKET_TX_RING.
    Ring(TxRing),
    /// sendmmsg fallback, with the reason the ring could not be used.
    Mmsg(MmsgTx, String),
}

impl AfPacketTx {
    /// Opens the fastest available back end on `ifname`.
    pub fn open(ifname: &str, cfg: TxConfig) -> io::Result<Self> {
        match TxRing::open(ifname, cfg) {
            Ok(r) => Ok(AfPacketTx::Ring(r)),
            // Permission and missing-interface problems will not go away with sendmmsg.
            Err(e) if matches!(e.kind(), io::ErrorKind::PermissionDenied | io::ErrorKind::NotFound) => Err(e),
            Err(e) => Ok(AfPacketTx::Mmsg(MmsgTx::open(ifname, cfg.qdisc_bypass)?, e.to_string())),
        }
    }

    /// A short description for the scan metadata: which back end, and why not the ring.
    pub fn describe(&self) -> String {
        match self {
            AfPacketTx::Ring(r) => format!(
                "PACKET_TX_RING ({} slots of {} bytes{})",
                r.frame_count,
                r.frame_size,
                if r.vnet > 0 { ", PACKET_VNET_HDR linear copy" } else { "" }
            ),
            AfPacketTx::Mmsg(_, why) => format!("sendmmsg (TX ring unavailable: {why})"),
        }
    }
}

impl Transmit for AfPacketTx {
    fn send_batch(&mut self, n: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize) -> io::Result<usize> {
        match self {
            AfPacketTx::Ring(r) => r.send_batch(n, fill),
            AfPacketTx::Mmsg(m, _) => m.send_batch(n, fill),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            AfPacketTx::Ring(r) => r.flush(),
            AfPacketTx::Mmsg(m, _) => m.flush(),
        }
    }

    fn stats(&self) -> TxStats {
        match self {
            AfPacketTx::Ring(r) => r.stats(),
            AfPacketTx::Mmsg(m, _) => m.stats(),
        }
    }

    fn pending(&self) -> usize {
        match self {
            AfPacketTx::Ring(r) => r.pending(),
            AfPacketTx::Mmsg(m, _) => m.pending(),
        }
    }

    fn retry(&mut self) -> io::Result<usize> {
        match self {
            AfPacketTx::Ring(r) => r.retry(),
            AfPacketTx::Mmsg(m, _) => m.retry(),
        }
    }

    fn reopen(&mut self) -> io::Result<()> {
        match self {
            AfPacketTx::Ring(r) => r.reopen(),
            AfPacketTx::Mmsg(m, _) => m.reopen(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_shapes() {
        for cfg in [
            TxConfig { frame_size: 100, ..TxConfig::default() },
            TxConfig { frame_size: 144, ..TxConfig::default() },
            TxConfig { frame_count: 0, ..TxConfig::default() },
        ] {
            assert_eq!(TxRing::open("lo", cfg).unwrap_err().kind(), io::ErrorKind::InvalidInput, "{cfg:?}");
        }
    }

    #[test]
    fn layout_rounds_to_blocks() {
        assert_eq!(round_up(1, 4096), 4096);
        assert_eq!(round_up(65536, 4096), 65536);
        assert_eq!(round_up(65537, 4096), 69632);
    }
}
