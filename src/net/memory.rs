//! In-memory back ends for tests without root: [`MemoryTx`] records what would have been sent,
//! [`FlakyTx`] does too but fails on cue as a link that goes down does, and [`MemoryRx`] plays
//! back frames given to it.
//!
//! A [`MemoryWire`] connects them, so that a whole scan runs in memory
//! (`crate::scan::run_with`): every frame a transmitter sends goes to a responder function, and
//! its answers come back through the receiver, at once or, as answers that arrive during the
//! cooldown, once every transmitter has flushed (the send phase is over). A wire can also stop
//! taking frames after an exact number and call a function then (a test stops the scan there, as
//! a signal would).

use super::{Receive, RxStats, Transmit, TxStats, ETH_HEADER_LEN};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// An answer of a [`MemoryWire`]'s responder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Received at once.
    Now(Vec<u8>),
    /// Held back until every transmitter of the wire has flushed: an answer that arrives after
    /// the last probe, during the cooldown.
    Late(Vec<u8>),
}

/// What a wire's responder is: frame sent in, answers out.
type Respond = dyn Fn(&[u8]) -> Vec<Answer> + Send + Sync;

/// A wire between memory back ends: transmitters ([`MemoryWire::tx`]) feed a responder whose
/// answers a receiver ([`MemoryWire::rx`]) plays back.
#[derive(Clone)]
pub struct MemoryWire {
    inner: Arc<Wire>,
}

struct Wire {
    respond: Box<Respond>,
    limit: Option<(u64, Box<dyn Fn() + Send + Sync>)>,
    state: Mutex<WireState>,
    ready: Condvar,
}

#[derive(Default)]
struct WireState {
    arrived: VecDeque<Vec<u8>>,
    late: Vec<Vec<u8>>,
    taken: u64,
    transmitters: usize,
    flushed: usize,
}

impl MemoryWire {
    /// A wire whose far end answers each frame with `respond(frame)`.
    pub fn new(respond: impl Fn(&[u8]) -> Vec<Answer> + Send + Sync + 'static) -> MemoryWire {
        let inner = Wire { respond: Box::new(respond), limit: None, state: Default::default(), ready: Condvar::new() };
        MemoryWire { inner: Arc::new(inner) }
    }

    /// Takes no more than `frames` frames in all, and calls `then` when the last one is taken;
    /// transmitters then refuse to fill more slots. Set before making any transmitter.
    pub fn limit(self, frames: u64, then: impl Fn() + Send + Sync + 'static) -> MemoryWire {
        let w = Arc::try_unwrap(self.inner).unwrap_or_else(|_| panic!("limit the wire before using it"));
        let inner = Wire { limit: Some((frames, Box::new(then))), ..w };
        MemoryWire { inner: Arc::new(inner) }
    }

    /// A new transmitter on the wire.
    pub fn tx(&self) -> MemoryTx {
        self.inner.state.lock().unwrap().transmitters += 1;
        MemoryTx { wire: Some(self.inner.clone()), ..MemoryTx::default() }
    }

    /// A receiver of the wire's answers.
    pub fn rx(&self) -> MemoryRx {
        MemoryRx { wire: Some(self.inner.clone()), ..MemoryRx::default() }
    }

    /// Frames the wire has taken from its transmitters.
    pub fn taken(&self) -> u64 {
        self.inner.state.lock().unwrap().taken
    }
}

impl Wire {
    /// Whether another frame may be taken.
    fn open(&self) -> bool {
        self.limit.as_ref().is_none_or(|(n, _)| self.state.lock().unwrap().taken < *n)
    }

    /// Takes a sent frame: answers it, and calls the limit's function on the last frame allowed.
    fn take(&self, frame: &[u8]) {
        let answers = (self.respond)(frame);
        let mut s = self.state.lock().unwrap();
        s.taken += 1;
        for a in answers {
            match a {
                Answer::Now(f) => s.arrived.push_back(f),
                Answer::Late(f) => s.late.push(f),
            }
        }
        let at_limit = self.limit.as_ref().filter(|(n, _)| s.taken == *n);
        drop(s);
        self.ready.notify_all();
        if let Some((_, then)) = at_limit {
            then();
        }
    }

    /// A transmitter flushed: once all have, the late answers arrive.
    fn flushed(&self) {
        let mut s = self.state.lock().unwrap();
        s.flushed += 1;
        if s.flushed >= s.transmitters {
            let late = std::mem::take(&mut s.late);
            s.arrived.extend(late);
            self.ready.notify_all();
        }
    }

    /// Waits up to `timeout` for answers and moves them to `into`.
    fn wait(&self, timeout: Duration, into: &mut VecDeque<Vec<u8>>) -> u64 {
        let s = self.state.lock().unwrap();
        let (mut s, _) = self.ready.wait_timeout_while(s, timeout, |s| s.arrived.is_empty()).unwrap();
        let n = s.arrived.len() as u64;
        into.extend(s.arrived.drain(..));
        n
    }
}

/// A [`Transmit`] that keeps every frame in a vector (and hands it to its wire, if it has one).
/// Allocates; for tests only.
pub struct MemoryTx {
    /// Frames queued so far, in order.
    pub frames: Vec<Vec<u8>>,
    slot: Vec<u8>,
    stats: TxStats,
    wire: Option<Arc<Wire>>,
}

impl MemoryTx {
    /// A recorder whose slots are `slot_len` bytes (at least [`super::MIN_SLOT`]).
    pub fn new(slot_len: usize) -> Self {
        MemoryTx {
            frames: Vec::new(),
            slot: vec![0; slot_len.max(super::MIN_SLOT)],
            stats: TxStats::default(),
            wire: None,
        }
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
            if self.wire.as_ref().is_some_and(|w| !w.open()) {
                break;
            }
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
            if let Some(w) = &self.wire {
                w.take(&self.slot[..len]);
            }
            queued += 1;
        }
        self.stats.queued += queued as u64;
        self.stats.sent += queued as u64;
        Ok(queued)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if let Some(w) = &self.wire {
            w.flushed();
        }
        Ok(())
    }

    fn stats(&self) -> TxStats {
        self.stats
    }
}

/// One outage of a [`FlakyTx`]: once `at` frames have been accepted, the "kernel" refuses with
/// `errno` until `failures` calls of [`Transmit::retry`] have failed (`u32::MAX`: for ever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    /// Accepted frames before it begins (the frame with this index is the first refused).
    pub at: u64,
    /// The error the kernel answers with.
    pub errno: i32,
    /// Retries that fail before the link is back.
    pub failures: u32,
}

/// A [`Transmit`] that behaves as a transmit ring over a link that goes down on cue: frames are
/// accepted into the back end; while the link is up they are taken at once (into `taken`), while
/// it is down they are kept, in order, and the call fails with the outage's errno; each failed
/// [`Transmit::retry`] counts towards the outage's end, and the first one after it hands the kept
/// frames over. For unit tests of the send loop's retry logic (src/scan/flap.rs).
#[derive(Debug, Default)]
pub struct FlakyTx {
    /// Frames the kernel took, in order.
    pub taken: Vec<Vec<u8>>,
    kept: VecDeque<Vec<u8>>,
    outages: VecDeque<Outage>,
    down: Option<(i32, u32)>,
    accepted: u64,
    /// Calls of [`Transmit::reopen`].
    pub reopens: u32,
    /// Calls of [`Transmit::reopen`] that fail before one succeeds (an interface not yet back).
    pub reopen_failures: u32,
    /// [`Transmit::flush`] always fails as a ring that never drains (`TimedOut`), while
    /// [`Transmit::retry`] finds nothing to hand over.
    pub stuck_flush: bool,
    stats: TxStats,
}

impl FlakyTx {
    /// A link that goes down as `outages` (sorted by `at`) say.
    pub fn new(outages: impl IntoIterator<Item = Outage>) -> Self {
        FlakyTx { outages: outages.into_iter().collect(), ..Default::default() }
    }

    fn refuse(&self) -> std::io::Error {
        std::io::Error::from_raw_os_error(self.down.map_or(0, |d| d.0))
    }

    fn hand_over(&mut self) {
        let n = self.kept.len() as u64;
        self.taken.extend(self.kept.drain(..));
        self.stats.sent += n;
    }
}

impl Transmit for FlakyTx {
    fn send_batch(&mut self, n: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize) -> std::io::Result<usize> {
        if self.down.is_some() {
            return Err(self.refuse());
        }
        let mut slot = [0u8; 256];
        let mut queued = 0;
        for _ in 0..n {
            let len = fill(&mut slot);
            if len == 0 {
                break;
            }
            if self.down.is_none() && self.outages.front().is_some_and(|o| o.at == self.accepted) {
                let o = self.outages.pop_front().unwrap();
                self.down = Some((o.errno, o.failures));
            }
            self.kept.push_back(slot[..len].to_vec());
            self.accepted += 1;
            queued += 1;
            if self.down.is_none() {
                self.hand_over();
            }
        }
        self.stats.queued += queued as u64;
        if self.down.is_some() {
            return Err(self.refuse());
        }
        Ok(queued)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.down.is_some() {
            return Err(self.refuse());
        }
        if self.stuck_flush {
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "transmit ring stuck"));
        }
        Ok(())
    }

    fn stats(&self) -> TxStats {
        self.stats
    }

    fn pending(&self) -> usize {
        self.kept.len()
    }

    fn retry(&mut self) -> std::io::Result<usize> {
        if let Some((errno, failures)) = self.down {
            if failures > 0 {
                self.down = Some((errno, failures.saturating_sub(u32::from(failures != u32::MAX))));
                return Err(self.refuse());
            }
            self.down = None;
        }
        self.hand_over();
        Ok(0)
    }

    fn reopen(&mut self) -> std::io::Result<()> {
        self.reopens += 1;
        if self.reopens <= self.reopen_failures {
            return Err(std::io::Error::from_raw_os_error(libc::ENODEV));
        }
        Ok(())
    }
}

/// A [`Receive`] that hands out frames pushed into it (or arriving from its wire), all of them
/// in the first call that finds any. Without a wire it never waits.
#[derive(Default)]
pub struct MemoryRx {
    /// Frames not yet handed out.
    pub pending: VecDeque<Vec<u8>>,
    stats: RxStats,
    wire: Option<Arc<Wire>>,
}

impl MemoryRx {
    /// A player of `frames`, in order.
    pub fn new(frames: impl IntoIterator<Item = Vec<u8>>) -> Self {
        let pending: VecDeque<_> = frames.into_iter().collect();
        let stats = RxStats { received: pending.len() as u64, ..RxStats::default() };
        MemoryRx { pending, stats, wire: None }
    }

    /// Adds a frame to play back.
    pub fn push(&mut self, frame: Vec<u8>) {
        self.stats.received += 1;
        self.pending.push_back(frame);
    }
}

impl Receive for MemoryRx {
    fn recv_batch(&mut self, timeout: Duration, handle: &mut dyn FnMut(&[u8])) -> std::io::Result<usize> {
        if let (Some(w), true) = (&self.wire, self.pending.is_empty()) {
            self.stats.received += w.wait(timeout, &mut self.pending);
        }
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
        assert_eq!(tx.stats(), TxStats { queued: 2, sent: 2, failed: 2, ..TxStats::default() });
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

    #[test]
    fn a_wire_answers_late_answers_after_the_flush_and_stops_at_its_limit() {
        use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
        let stopped = Arc::new(AtomicBool::new(false));
        let s = stopped.clone();
        let wire = MemoryWire::new(|f| vec![Answer::Now(vec![f[0]; 14]), Answer::Late(vec![f[0] + 100; 14])])
            .limit(3, move || s.store(true, Relaxed));
        let (mut tx, mut rx) = (wire.tx(), wire.rx());
        let mut i = 0u8;
        let mut fill = |slot: &mut [u8]| {
            i += 1;
            slot[..14].fill(i);
            14
        };
        assert_eq!(tx.send_batch(2, &mut fill).unwrap(), 2);
        assert!(!stopped.load(Relaxed));
        // Only one more frame fits under the limit.
        assert_eq!(tx.send_batch(5, &mut fill).unwrap(), 1);
        assert!(stopped.load(Relaxed));
        assert_eq!(tx.send_batch(5, &mut fill).unwrap(), 0);
        assert_eq!(wire.taken(), 3);
        let mut seen = Vec::new();
        rx.recv_batch(Duration::ZERO, &mut |f| seen.push(f[0])).unwrap();
        assert_eq!(seen, vec![1, 2, 3], "the late answers wait for the flush");
        tx.flush().unwrap();
        rx.recv_batch(Duration::ZERO, &mut |f| seen.push(f[0])).unwrap();
        assert_eq!(seen, vec![1, 2, 3, 101, 102, 103]);
        assert_eq!(rx.stats().received, 6);
    }
}
