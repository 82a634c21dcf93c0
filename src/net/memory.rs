//! In-memory back ends for unit tests: [`MemoryTx`] records what would have been sent and
//! [`MemoryRx`] plays back frames given to it.

use super::{Receive, RxStats, Transmit, TxStats, ETH_HEADER_LEN};
use std::collections::VecDeque;
use std::time::Duration;

/// A [`Transmit`] that keeps every frame in a vector. Allocates; for tests only.
#[derive(Debug)]
pub struct MemoryTx {
    /// Frames queued so far, in order.
    pub frames: Vec<Vec<u8>>,
    slot: Vec<u8>,
    stats: TxStats,
}

impl MemoryTx {
    /// A recorder whose slots are `slot_len` bytes (at least [`super::MIN_SLOT`]).
    pub fn new(slot_len: usize) -> Self {
        MemoryTx { frames: Vec::new(), slot: vec![0; slot_len.max(super::MIN_SLOT)], stats: TxStats::default() }
    }
}

impl Default for MemoryTx {
    fn default() -> Self {
        Self::new(2048)
    }
}

impl Transmit for MemoryTx {
    fn send_batch(&mut self, n: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize) -> std::io::Result<usize> {
        let mut queued = 0;
        for _ in 0..n {
            self.slot.fill(0);
            let len = fill(&mut self.slot);
            if len == 0 {
                break;
            }
            if !(ETH_HEADER_LEN..=self.slot.len()).contains(&len) {
                self.stats.failed += 1;
                continue;
            }
            self.frames.push(self.slot[..len].to_vec());
            queued += 1;
        }
        self.stats.queued += queued as u64;
        self.stats.sent += queued as u64;
        Ok(queued)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    fn stats(&self) -> TxStats {
        self.stats
    }
}

/// A [`Receive`] that hands out frames pushed into it, all of them in the first call that finds
/// any. Never waits.
#[derive(Debug, Default)]
pub struct MemoryRx {
    /// Frames not yet handed out.
    pub pending: VecDeque<Vec<u8>>,
    stats: RxStats,
}

impl MemoryRx {
    /// A player of `frames`, in order.
    pub fn new(frames: impl IntoIterator<Item = Vec<u8>>) -> Self {
        let pending: VecDeque<_> = frames.into_iter().collect();
        let stats = RxStats { received: pending.len() as u64, ..RxStats::default() };
        MemoryRx { pending, stats }
    }

    /// Adds a frame to play back.
    pub fn push(&mut self, frame: Vec<u8>) {
        self.stats.received += 1;
        self.pending.push_back(frame);
    }
}

impl Receive for MemoryRx {
    fn recv_batch(&mut self, _timeout: Duration, handle: &mut dyn FnMut(&[u8])) -> std::io::Result<usize> {
        let n = self.pending.len();
        for f in self.pending.drain(..) {
            handle(&f);
        }
        self.stats.handled += n as u64;
        Ok(n)
    }

    fn stats(&mut self) -> RxStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_tx_records_and_counts() {
        let mut tx = MemoryTx::new(128);
        let mut i = 0u8;
        let n = tx
            .send_batch(5, &mut |slot| {
                i += 1;
                match i {
                    2 => 3,    // too short: failed, slot reused
                    3 => 4096, // too long: failed
                    5 => 0,    // out of frames
                    _ => {
                        slot[..14].fill(i);
                        14
                    }
                }
            })
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(tx.frames, vec![vec![1; 14], vec![4; 14]]);
        assert_eq!(tx.stats(), TxStats { queued: 2, sent: 2, failed: 2, ring_full_waits: 0 });
    }

    #[test]
    fn memory_rx_plays_back_once() {
        let mut rx = MemoryRx::new(vec![vec![1], vec![2, 2]]);
        let mut seen = Vec::new();
        assert_eq!(rx.recv_batch(Duration::ZERO, &mut |f| seen.push(f.to_vec())).unwrap(), 2);
        assert_eq!(seen, vec![vec![1], vec![2, 2]]);
        assert_eq!(rx.recv_batch(Duration::ZERO, &mut |_| panic!("nothing left")).unwrap(), 0);
        assert_eq!(rx.stats(), RxStats { received: 2, dropped: 0, handled: 2 });
    }
}
