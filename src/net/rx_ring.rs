//! The receive path: an AF_PACKET socket with a TPACKET_V3 receive ring and the capture filter.
//!
//! A V3 ring is a sequence of large blocks in memory shared with the kernel. The kernel fills
//! the current block with frames back to back and hands it to us (block status `TP_STATUS_USER`)
//! when it is full or when the retire timer fires; we walk its frames, call the handler on each
//! frame in place (zero copy), and give the block back (`TP_STATUS_KERNEL`):
//!
//! ```text
//!  block: | tpacket_block_desc: version, offset_to_priv,
//!         |   hdr.bh1 { block_status, num_pkts, offset_to_first_pkt, blk_len, seq, ts.. } |
//!         | tpacket3_hdr { tp_next_offset, .., tp_snaplen, tp_len, tp_status, tp_mac, .. } frame |
//!         | tpacket3_hdr ... frame | ...
//! ```
//!
//! `PACKET_IGNORE_OUTGOING` keeps our own probes out of the ring, and the BPF filter
//! ([`super::bpf::filter_for`]) keeps everything that cannot be an answer out of it.
#![allow(unsafe_code)]

use super::bpf::SockFilter;
use super::ifaddrs::if_index;
use super::packet_socket::{ctx, Mmap, PacketSocket};
use super::{Receive, RxStats};
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// TPACKET_V3 (enum tpacket_versions).
const TPACKET_V3: i32 = 2;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
/// ETH_P_ALL: every protocol (the filter does the choosing).
const ETH_P_ALL: u16 = 0x0003;
// Offsets inside struct tpacket_block_desc (version u32, offset_to_priv u32, then bh1).
const BLOCK_STATUS: usize = 8;
const BLOCK_NUM_PKTS: usize = 12;
const BLOCK_FIRST_PKT: usize = 16;
// Offsets inside struct tpacket3_hdr.
const PKT_NEXT: usize = 0;
const PKT_SNAPLEN: usize = 12;
const PKT_MAC: usize = 24;

/// Shape of the receive ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxConfig {
    /// Bytes per block: a multiple of the page size.
    pub block_size: usize,
    /// Number of blocks.
    pub block_count: usize,
    /// Upper bound of one frame's slot (header + frame), for the kernel's bookkeeping.
    pub frame_size: usize,
    /// Milliseconds after which the kernel hands over a block that is not full.
    pub retire_ms: u32,
}

impl Default for RxConfig {
    /// 64 blocks of 1 MiB: a 64 MiB ring absorbs about 0.5 s of answers at 1 Mpps of 128-byte
    /// frames; blocks retire after 10 ms so that a slow trickle is still seen promptly.
    fn default() -> Self {
        RxConfig { block_size: 1 << 20, block_count: 64, frame_size: 2048, retire_ms: 10 }
    }
}

impl RxConfig {
    /// Bytes one answer takes in a block: a `tpacket3_hdr` (48 bytes, with the MAC offset
    /// padding) plus a SYN-ACK or RST frame of up to 98 bytes, rounded to 16.
    pub const BYTES_PER_ANSWER: usize = 160;

    /// The default ring, shrunk for a scan that can receive at most `answers` answers (its
    /// probes, counting every version and repeat): a ring never needs more than room for every
    /// answer the scan can get, so a /16 scan keeps its resident memory low (the ring's pages
    /// are resident from `mmap` on) while a large scan keeps the full 64 MiB; at least 4 MiB.
    ///
    /// A small ring keeps the default's 64 blocks and shrinks the blocks instead: the kernel
    /// retires a block that is not full after `retire_ms`, so a trickle of answers uses one
    /// block per 10 ms, and 4 big blocks were a 40 ms window in which a receiver kept off the
    /// CPU (three lab scans and Ansible on two cores) lost answers although the ring was all
    /// but empty. 64 blocks make it 640 ms.
    pub fn for_answers(answers: u64) -> RxConfig {
        let d = RxConfig::default();
        let page = 4096u64;
        let bytes = answers.saturating_mul(Self::BYTES_PER_ANSWER as u64).clamp(Self::MIN_BYTES, d.bytes() as u64);
        let block = bytes.div_ceil(d.block_count as u64).div_ceil(page) * page;
        RxConfig { block_size: block as usize, ..d }
    }

    /// The smallest ring [`RxConfig::for_answers`] makes.
    pub const MIN_BYTES: u64 = 4 << 20;

    /// The ring's size in bytes.
    pub fn bytes(&self) -> usize {
        self.block_size * self.block_count
    }
}

/// An AF_PACKET socket with a TPACKET_V3 receive ring.
#[derive(Debug)]
pub struct AfPacketRx {
    ring: Mmap,
    sock: PacketSocket,
    block_size: usize,
    block_count: usize,
    current: usize,
    stats: RxStats,
    /// Frames skipped because their ring header was inconsistent (should stay 0).
    malformed: u64,
    /// What the ring was opened with, to open it again on an interface that came back.
    ifname: String,
    ifindex: u32,
    filter: Option<Vec<SockFilter>>,
    cfg: RxConfig,
    /// The interface went away (its index is gone or changed): open again once it is back.
    detached: bool,
    /// Errors the kernel reported on the socket (ENETDOWN on every link down), and reopenings.
    link_errors: u64,
    reopened: u64,
}

/// Reads a u32 the kernel wrote into the ring.
///
/// # Safety
/// `p` must be 4-aligned and point inside a block we own.
unsafe fn read_u32(p: *const u8) -> u32 {
    // SAFETY: guaranteed by the caller.
    unsafe { (p as *const u32).read_volatile() }
}

/// Reads a u16 the kernel wrote into the ring.
///
/// # Safety
/// `p` must be 2-aligned and point inside a block we own.
unsafe fn read_u16(p: *const u8) -> u16 {
    // SAFETY: guaranteed by the caller.
    unsafe { (p as *const u16).read_volatile() }
}

impl AfPacketRx {
    /// Opens a receive ring on `ifname` (in the calling thread's namespace). With `filter`
    /// `None`, every frame is captured (for tests and debugging).
    pub fn open(ifname: &str, filter: Option<&[SockFilter]>, cfg: RxConfig) -> io::Result<Self> {
        if cfg.block_size == 0
            || !cfg.block_size.is_multiple_of(4096)
            || cfg.block_count == 0
            || cfg.frame_size < 64
            || cfg.frame_size > cfg.block_size
        {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bad RX ring shape {cfg:?}")));
        }
        let ifindex = if_index(ifname).map_err(|e| ctx(&format!("interface {ifname}"), e))?;
        let sock = PacketSocket::open()?;
        sock.set_packet_int(libc::PACKET_VERSION, TPACKET_V3, "setsockopt(PACKET_VERSION, TPACKET_V3)")?;
        sock.set_packet_int(libc::PACKET_IGNORE_OUTGOING, 1, "setsockopt(PACKET_IGNORE_OUTGOING)")?;
        if let Some(prog) = filter {
            sock.attach_filter(prog)?;
        }
        let req = libc::tpacket_req3 {
            tp_block_size: cfg.block_size as u32,
            tp_block_nr: cfg.block_count as u32,
            tp_frame_size: cfg.frame_size as u32,
            tp_frame_nr: ((cfg.block_size / cfg.frame_size) * cfg.block_count) as u32,
            tp_retire_blk_tov: cfg.retire_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        sock.set_opt(libc::SOL_PACKET, libc::PACKET_RX_RING, &req, "setsockopt(PACKET_RX_RING)")?;
        let ring = sock.mmap(cfg.block_size * cfg.block_count)?;
        // Only now start receiving: options and filter are in place.
        sock.bind(ifindex, ETH_P_ALL)?;
        Ok(AfPacketRx {
            ring,
            sock,
            block_size: cfg.block_size,
            block_count: cfg.block_count,
            current: 0,
            stats: RxStats::default(),
            malformed: 0,
            ifname: ifname.to_string(),
            ifindex,
            filter: filter.map(<[SockFilter]>::to_vec),
            cfg,
            detached: false,
            link_errors: 0,
            reopened: 0,
        })
    }

    /// Errors the kernel reported on the socket (one ENETDOWN per link down) and times the ring
    /// was opened again after its interface disappeared and came back.
    pub fn link_events(&self) -> (u64, u64) {
        (self.link_errors, self.reopened)
    }

    /// poll() said POLLERR: read the error (else POLLERR stays up and every poll returns at
    /// once), and notice an interface that went away. A link that merely went down keeps the
    /// socket: the kernel hooks it in again when the link comes back up.
    #[cold]
    fn on_socket_error(&mut self) {
        if self.sock.take_error().is_some() {
            self.link_errors += 1;
        }
        if if_index(&self.ifname).ok() != Some(self.ifindex) {
            self.detached = true;
        }
    }

    /// The interface went away: once one of the same name is back, open a ring on it, after
    /// handing the frames left in the old ring to `handle` (rows already validated are in the
    /// receive loop, not here, so nothing is lost).
    #[cold]
    fn try_reattach(&mut self, handle: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        let mut n = 0;
        for _ in 0..self.block_count {
            match self.drain_block(handle) {
                Some(k) => n += k,
                None => break,
            }
        }
        if if_index(&self.ifname).is_ok() {
            let mut fresh = AfPacketRx::open(&self.ifname, self.filter.as_deref(), self.cfg)?;
            fresh.stats = self.stats;
            fresh.malformed = self.malformed;
            fresh.link_errors = self.link_errors;
            fresh.reopened = self.reopened + 1;
            fresh.stats.handled += n as u64;
            *self = fresh;
            return Ok(0);
        }
        self.stats.handled += n as u64;
        Ok(n)
    }

    /// Frames skipped because the kernel's ring header for them did not fit the block.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    fn block_status(&self, b: usize) -> &AtomicU32 {
        // SAFETY: block `b` < block_count starts at b * block_size (page-aligned) inside the
        // mapping; block_status is the u32 at offset 8 of its descriptor, shared with the kernel.
        unsafe { &*(self.ring.base().add(b * self.block_size + BLOCK_STATUS) as *const AtomicU32) }
    }

    /// If the current block is ours, hands each of its frames to `handle`, returns the block to
    /// the kernel and moves on; returns the number of frames, or `None` if the block is still the
    /// kernel's.
    fn drain_block(&mut self, handle: &mut dyn FnMut(&[u8])) -> Option<usize> {
        let b = self.current;
        if self.block_status(b).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
            return None;
        }
        // SAFETY: block `b` lies inside the mapping (see block_status).
        let block = unsafe { self.ring.base().add(b * self.block_size) };
        // SAFETY: descriptor fields at fixed aligned offsets of a block we own.
        let (num, mut off) =
            unsafe { (read_u32(block.add(BLOCK_NUM_PKTS)) as usize, read_u32(block.add(BLOCK_FIRST_PKT)) as usize) };
        let mut n = 0;
        for _ in 0..num {
            // Defensive bounds checks: the header is the kernel's, but a bad offset must not
            // make us read outside the block.
            if !off.is_multiple_of(4) || off + PKT_MAC + 2 > self.block_size {
                self.malformed += 1;
                break;
            }
            // SAFETY: `off` is 4-aligned and the header's fields up to tp_mac lie inside the block
            // (checked just above).
            let (pkt, next, snaplen, mac) = unsafe {
                let pkt = block.add(off);
                (
                    pkt,
                    read_u32(pkt.add(PKT_NEXT)) as usize,
                    read_u32(pkt.add(PKT_SNAPLEN)) as usize,
                    read_u16(pkt.add(PKT_MAC)) as usize,
                )
            };
            if off + mac + snaplen > self.block_size {
                self.malformed += 1;
                break;
            }
            // SAFETY: the frame lies inside this block (checked just above), which is ours
            // (TP_STATUS_USER) until we store TP_STATUS_KERNEL below; the slice does not outlive
            // the call to `handle`.
            let frame = unsafe { std::slice::from_raw_parts(pkt.add(mac), snaplen) };
            handle(frame);
            n += 1;
            if next == 0 {
                break;
            }
            off += next;
        }
        self.block_status(b).store(TP_STATUS_KERNEL, Ordering::Release);
        self.current = (b + 1) % self.block_count;
        Some(n)
    }
}

impl Receive for AfPacketRx {
    fn recv_batch(&mut self, timeout: Duration, handle: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        if self.detached {
            let n = self.try_reattach(handle)?;
            if self.detached {
                std::thread::sleep(timeout);
            }
            return Ok(n);
        }
        let deadline = Instant::now() + timeout;
        let mut handled = 0;
        loop {
            // Drain every block that is ready, at most one lap of the ring.
            let mut blocks = 0;
            while blocks < self.block_count {
                match self.drain_block(handle) {
                    Some(n) => {
                        handled += n;
                        blocks += 1;
                    }
                    None => break,
                }
            }
            if blocks > 0 {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if self.sock.poll(libc::POLLIN | libc::POLLERR, deadline - now)? & libc::POLLERR != 0 {
                self.on_socket_error();
                if self.detached {
                    break;
                }
            }
        }
        self.stats.handled += handled as u64;
        Ok(handled)
    }

    fn stats(&mut self) -> RxStats {
        // The kernel resets its counters on each read: accumulate. Its "packets" includes drops.
        if let Ok((packets, drops)) = self.sock.packet_stats_v3() {
            self.stats.received += u64::from(packets.saturating_sub(drops));
            self.stats.dropped += u64::from(drops);
        }
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_fits_the_scan() {
        // A /16 single-port scan: 65,536 answers at most, 10 MiB; a full scan: the default.
        let d = RxConfig::default();
        assert_eq!(RxConfig::for_answers(65_536).bytes(), 64 * 163_840);
        assert_eq!(RxConfig::for_answers(65_536).block_size, 163_840);
        // A tiny scan: 4 MiB, still in 64 blocks (a 640 ms window at 10 ms per block).
        assert_eq!(RxConfig::for_answers(1).bytes(), 4 << 20);
        assert_eq!(RxConfig::for_answers(800), RxConfig { block_size: 64 << 10, ..d });
        assert_eq!(RxConfig::for_answers(1 << 32), d);
        assert_eq!(RxConfig::for_answers(u64::MAX), d);
        for n in [1, 799, 800, 65_536, 1 << 20, 1 << 32] {
            let c = RxConfig::for_answers(n);
            assert!(c.block_size % 4096 == 0 && c.block_size >= c.frame_size && c.block_count == 64, "{n}: {c:?}");
        }
    }

    #[test]
    fn rejects_bad_shapes() {
        for cfg in [
            RxConfig { block_size: 1000, ..RxConfig::default() },
            RxConfig { block_count: 0, ..RxConfig::default() },
            RxConfig { frame_size: 16, ..RxConfig::default() },
        ] {
            assert_eq!(AfPacketRx::open("lo", None, cfg).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        }
    }
}
