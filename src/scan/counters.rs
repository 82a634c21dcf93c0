//! Counters shared by the send and receive loops and read by the monitor: plain atomics, each
//! written by one thread only, so no lock and no contention on the hot paths. They only count;
//! when to stop is [`super::stop::Stop`]'s.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// Progress of one sender, for the resume state.
#[derive(Debug, Default)]
pub struct SenderProgress {
    /// Cycle position up to which every target's probes were handed to the kernel.
    pub position: AtomicU64,
    /// Targets this sender finished.
    pub done: AtomicU64,
    /// The sender reached the end of its cursor.
    pub complete: AtomicBool,
}

/// Live counters of a scan.
#[derive(Debug, Default)]
pub struct Counters {
    /// One per sender thread.
    pub senders: Vec<SenderProgress>,
    /// Packets handed to the kernel.
    pub sent: AtomicU64,
    /// (address, port) targets whose probes were all sent.
    pub targets_done: AtomicU64,
    /// Frames read by the receiver.
    pub received: AtomicU64,
    /// Frames that validated.
    pub validated: AtomicU64,
    /// Rows written.
    pub rows: AtomicU64,
    /// Rows whose class is `mptcp`.
    pub hits: AtomicU64,
    /// Frames the kernel dropped because the receive ring was full: read from the receive socket
    /// by the receive loop about once a second (with its flush) and at the end, for the status
    /// file (`--status-updates-file`).
    pub kernel_drops: AtomicU64,
    /// Send errors and stalls (written only off the hot path).
    pub link: super::flap::LinkCounters,
}

impl Counters {
    /// Counters for `threads` senders.
    pub fn new(threads: u32) -> Counters {
        Counters { senders: (0..threads).map(|_| SenderProgress::default()).collect(), ..Default::default() }
    }

    /// Adds to a counter.
    #[inline]
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }

    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Relaxed)
    }
}
