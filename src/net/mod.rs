//! The operating system: raw Ethernet frames in and out, and where to send them.
//!
//! The scan pipeline sees two traits and nothing else of the kernel:
//!
//! * [`Transmit`]: hand frames to the wire in batches. The real back end is an AF_PACKET socket
//!   with a `PACKET_TX_RING` ([`AfPacketTx`]): frames are written straight into memory shared with
//!   the kernel and a whole batch leaves with one `send()`; no allocation, lock or per-frame
//!   syscall on the hot path. [`PcapWriter`] and [`MemoryTx`] stand in for it in tests.
//! * [`Receive`]: take candidate responses off the wire. The real back end is an AF_PACKET
//!   socket with a `TPACKET_V3` receive ring ([`AfPacketRx`]) and a classic BPF filter
//!   ([`bpf::filter_for`]) so that only SYN/RST segments to our source ports and ICMP
//!   unreachables reach userspace. [`PcapReader`] and [`MemoryRx`] stand in for it in tests.
//!
//! A [`MemoryWire`] joins a [`MemoryTx`] per sender to a [`MemoryRx`] through a responder
//! function, so that a whole scan runs in memory without root (`crate::scan::run_with`,
//! `tests/pipeline_memory.rs`).
//!
//! [`route`] finds the interface, source address and next-hop MAC for a destination, and
//! [`caps`] says whether the process may open raw sockets at all.
//!
//! The crate denies `unsafe` (`#![deny(unsafe_code)]` in `lib.rs`); these files, and only these,
//! allow it, because they make system calls or map memory, and each block says why it is sound:
//!
//! * `src/net/caps.rs`: `prctl` and `capset`, which drop what a scan does not need;
//! * `src/net/packet_socket.rs`, `tx_ring.rs`, `tx_mmsg.rs`, `rx_ring.rs`: AF_PACKET sockets,
//!   their memory-mapped rings and `sendmmsg`;
//! * `src/net/ifaddrs.rs`: `getifaddrs`, the interfaces' addresses;
//! * `src/scan/dedup.rs`: the lazily backed `mmap` bitmap of the duplicate filter (and `mincore`,
//!   which says how much of it is resident);
//! * `src/lab/sys.rs`: the lab's raw sockets, `if_nametoindex`, `kill` of the lab's own
//!   processes, `geteuid`, and the ethtool `ioctl` that turns transmit checksum offload off;
//! * `src/verify/sys.rs`: `getsockopt` for the kernel's MPTCP connection information.
//!
//! Outside the library, `tests/lab_net.rs` and `tests/lab_hostile.rs` call `setns(2)` to enter the
//! namespaces they created; the analysis crate forbids `unsafe` altogether.

pub mod bpf;
pub mod caps;
mod ifaddrs;
pub mod memory;
mod packet_socket;
pub mod pcap;
pub mod route;
mod rx_ring;
mod tx_mmsg;
mod tx_ring;

use std::time::Duration;

pub(crate) use ifaddrs::interface_addrs;
pub use memory::{FlakyTx, MemoryRx, MemoryTx, MemoryWire, Outage};
pub use pcap::{PcapReader, PcapWriter};
pub use route::{resolve, Route, RouteError};
pub use rx_ring::{AfPacketRx, RxConfig};
pub use tx_mmsg::MmsgTx;
pub use tx_ring::{AfPacketTx, TxConfig, TxRing};

/// Smallest frame slot a [`Transmit`] back end hands to its `fill` callback, in bytes: room for
/// Ethernet + IPv6 + TCP with a full 40-byte option block (14 + 40 + 60 = 114).
pub const MIN_SLOT: usize = 128;

/// Counters of a transmit back end. Monotonic over the life of the back end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxStats {
    /// Frames handed to the kernel (or the file, or memory).
    pub queued: u64,
    /// Frames the kernel has finished with (its slot came back as available).
    pub sent: u64,
    /// Frames refused: by us (a `fill` length that is not a valid frame) or by the kernel.
    pub failed: u64,
    /// Times a batch found the ring full and had to wait for the kernel.
    pub ring_full_waits: u64,
    /// Hand-overs the kernel refused with ENOBUFS (a full device queue): the frames stayed
    /// queued and went with a later one.
    pub enobufs: u64,
    /// Hand-overs the kernel refused with EAGAIN (a full send buffer), likewise.
    pub eagain: u64,
}

/// Counters of a receive back end. Monotonic over the life of the back end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxStats {
    /// Frames that passed the filter and were put in the ring by the kernel.
    pub received: u64,
    /// Frames that passed the filter but were dropped by the kernel because the ring was full.
    pub dropped: u64,
    /// Frames handed to a `handle` callback.
    pub handled: u64,
}

/// A way to put Ethernet frames on the wire, in batches.
///
/// The scan's send loop calls [`Transmit::send_batch`] with a closure that writes one probe
/// per call; the back end decides where the bytes live (a ring slot shared with the kernel, a
/// file buffer, a vector) so that the probe is written exactly once.
pub trait Transmit {
    /// Fills up to `n` free frame slots by calling `fill(slot) -> frame_len` at most `n` times,
    /// then hands them to the kernel in one go. Returns how many frames were queued.
    ///
    /// `slot` is a zeroed-or-stale buffer of at least [`MIN_SLOT`] bytes; the callee writes a
    /// whole frame (Ethernet header first) and returns its length. Returning `0` means "no more
    /// frames now": the batch ends there and the slot is not used. A length below 14 or above
    /// what the slot or the interface can carry is counted in [`TxStats::failed`] and the slot
    /// is offered again to the next call.
    ///
    /// When every slot is busy the call waits for the kernel to free some, so the result is
    /// below `n` only when `fill` returned 0 or refused lengths.
    fn send_batch(&mut self, n: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize) -> std::io::Result<usize>;

    /// Waits until every queued frame has left (called at the end of the scan).
    fn flush(&mut self) -> std::io::Result<()>;

    /// Frames queued, sent and failed so far.
    fn stats(&self) -> TxStats;

    /// Frames taken from `fill` that the kernel has not taken yet, after [`Transmit::send_batch`]
    /// or [`Transmit::flush`] failed. A back end never drops such a frame on an error: it keeps
    /// it, in order, and hands it over on [`Transmit::retry`], so that a link that goes down skips
    /// no probe (docs/ERRORS.md, "the link goes down"). Cold path: may walk the whole ring.
    fn pending(&self) -> usize {
        0
    }

    /// After a failure: tries again to hand the kept frames to the kernel. `Ok(0)` when every
    /// one has gone and the back end takes new frames again, `Ok(n)` while `n` still wait (the
    /// kernel took the call but not the frames, e.g. a full device queue), `Err` when the kernel
    /// refused again.
    fn retry(&mut self) -> std::io::Result<usize> {
        Ok(self.pending())
    }

    /// After the interface disappeared (ENXIO, ENODEV) and may have come back under the same
    /// name (a driver reset): opens the back end again on it, carrying the kept frames over.
    /// Back ends without an interface answer `Unsupported`.
    fn reopen(&mut self) -> std::io::Result<()> {
        Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "this transmit back end cannot be reopened"))
    }
}

/// The OS error number behind `e`, also when a back end wrapped it with what it was doing
/// ([`OsError`]).
pub fn errno_of(e: &std::io::Error) -> Option<i32> {
    e.raw_os_error().or_else(|| e.get_ref().and_then(|r| r.downcast_ref::<OsError>()).map(|o| o.errno))
}

/// An OS error with what was being done when it happened, keeping its number so that the send
/// loop can tell a transient error (link down, full queue) from a fatal one.
#[derive(Debug)]
pub struct OsError {
    /// The errno.
    pub errno: i32,
    /// The whole message: what was being done, then the OS's text.
    pub message: String,
}

impl std::fmt::Display for OsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OsError {}

/// A way to take Ethernet frames off the wire, in batches.
pub trait Receive {
    /// Waits at most `timeout` for frames, calls `handle(frame)` for each frame available
    /// (zero-copy where the back end allows), returns how many were handled.
    fn recv_batch(&mut self, timeout: Duration, handle: &mut dyn FnMut(&[u8])) -> std::io::Result<usize>;

    /// Counters: frames received, dropped by the kernel, handled.
    fn stats(&mut self) -> RxStats;
}

/// Smallest valid Ethernet frame we accept from a `fill` callback: a bare Ethernet header.
pub(crate) const ETH_HEADER_LEN: usize = 14;

impl<T: Transmit + ?Sized> Transmit for Box<T> {
    fn send_batch(&mut self, n: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize) -> std::io::Result<usize> {
        (**self).send_batch(n, fill)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        (**self).flush()
    }
    fn stats(&self) -> TxStats {
        (**self).stats()
    }
    fn pending(&self) -> usize {
        (**self).pending()
    }
    fn retry(&mut self) -> std::io::Result<usize> {
        (**self).retry()
    }
    fn reopen(&mut self) -> std::io::Result<()> {
        (**self).reopen()
    }
}

impl<T: Receive + ?Sized> Receive for Box<T> {
    fn recv_batch(&mut self, timeout: Duration, handle: &mut dyn FnMut(&[u8])) -> std::io::Result<usize> {
        (**self).recv_batch(timeout, handle)
    }
    fn stats(&mut self) -> RxStats {
        (**self).stats()
    }
}

#[cfg(test)]
mod tests {
    /// The list of files allowed `unsafe` in this module's documentation is complete: every file
    /// of the crate that allows `unsafe_code` is named in it.
    #[test]
    fn every_file_allowed_unsafe_is_listed() {
        let list: String = include_str!("mod.rs").lines().take_while(|l| l.starts_with("//!")).collect();
        let mut stack = vec![std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))];
        let mut found = 0;
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if std::fs::read_to_string(&p).unwrap().contains(&format!("#![allow({}_code)]", "unsafe")) {
                    let name = p.file_name().unwrap().to_str().unwrap();
                    let parent = p.parent().unwrap().file_name().unwrap().to_str().unwrap();
                    let named = list.contains(&format!("{parent}/{name}")) || (parent == "net" && list.contains(name));
                    assert!(named, "{} allows unsafe but is not listed in src/net/mod.rs", p.display());
                    found += 1;
                }
            }
        }
        assert!(found >= 8, "only {found} files allow unsafe: is the search looking in the right place?");
    }
}
