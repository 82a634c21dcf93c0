//! Riding through a flapping link: what the send loop does when the kernel refuses a send.
//!
//! A week-long scan meets link flaps, NIC resets and moments of ENOBUFS on a busy queue. None of
//! them may end it, and none may skip a probe:
//!
//! ```text
//!  send_batch ── Ok ──► next batch                 (hot path: nothing here runs)
//!       │
//!       Err ── transient? (ENETDOWN ENOBUFS EAGAIN ENOMEM ENXIO ENODEV, ring stuck)
//!       │         no ──► stop as before (exit 1, rows and state kept)
//!       │         yes ─► stall: sleep (10 ms doubling to 1 s), retry() the kept frames
//!       │                 ├─ they all left ──► shift the pacer by the stall, carry on
//!       │                 ├─ ENXIO/ENODEV: reopen() on the interface's name first
//!       │                 └─ --send-error-grace ran out, or a signal ──► stop; the resume
//!       │                    position goes back before the first frame not taken
//! ```
//!
//! A transmit back end keeps every frame it took from the probe stream until the kernel takes it
//! ([`crate::net::Transmit::pending`]): the frames of a failed batch are sent again, in order,
//! by [`crate::net::Transmit::retry`], so the permutation is still covered exactly once. The
//! receiver's duplicate filter makes a probe that went twice give one row.
//!
//! The resume position must never pass a probe the kernel did not take. The send loop records
//! one [`Checkpoint`] per batch (three stores, no branch); when a stall ends the scan, the newest
//! checkpoint all of whose frames were taken is the position published for the state file. The
//! counts (errors by errno, stalls, their length, probes sent again) go to the metadata
//! (docs/ERRORS.md, "When the link goes down").

use super::counters::Counters;
use crate::net::{errno_of, OsError, Transmit};
use mpscan_schema::metadata::LinkReport;
use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long to wait for the link, and how often to try it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// How long a stall may last before the scan stops (`--send-error-grace`; zero: stop at the
    /// first error).
    pub grace: Duration,
    /// First wait between tries; doubles up to `backoff_max`.
    pub backoff_min: Duration,
    /// Longest wait between tries.
    pub backoff_max: Duration,
}

impl Retry {
    /// The scan's policy: tries after 10 ms, 20 ms, ... up to one a second, for `grace`.
    pub fn with_grace(grace: Duration) -> Retry {
        Retry { grace, backoff_min: Duration::from_millis(10), backoff_max: Duration::from_secs(1) }
    }

    /// The same policy with `spent` of the grace already used.
    pub fn less(&self, spent: Duration) -> Retry {
        Retry { grace: self.grace.saturating_sub(spent), ..*self }
    }

    /// Stop at the first error (dry runs, and `--send-error-grace 0`).
    pub const STOP: Retry = Retry { grace: Duration::ZERO, backoff_min: Duration::ZERO, backoff_max: Duration::ZERO };
}

/// A send error worth waiting out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// ENETDOWN: the interface is down.
    NetDown,
    /// ENOBUFS: the device queue is full.
    NoBufs,
    /// EAGAIN: the socket's send buffer is full.
    Again,
    /// ENOMEM: the kernel could not allocate a buffer.
    NoMem,
    /// ENXIO: the interface the socket was bound to is gone.
    NoDevice,
    /// ENODEV: likewise.
    NoDev,
    /// The transmit ring does not drain (no slot came back for a second).
    RingStuck,
}

impl Cause {
    /// Every cause, in the order of [`LinkCounters`]'s slots.
    pub const ALL: [Cause; 7] =
        [Cause::NetDown, Cause::NoBufs, Cause::Again, Cause::NoMem, Cause::NoDevice, Cause::NoDev, Cause::RingStuck];

    /// The cause of `e`, or `None` for an error that waiting does not cure.
    pub fn of(e: &io::Error) -> Option<Cause> {
        match errno_of(e) {
            Some(libc::ENETDOWN) => Some(Cause::NetDown),
            Some(libc::ENOBUFS) => Some(Cause::NoBufs),
            Some(libc::EAGAIN) => Some(Cause::Again),
            Some(libc::ENOMEM) => Some(Cause::NoMem),
            Some(libc::ENXIO) => Some(Cause::NoDevice),
            Some(libc::ENODEV) => Some(Cause::NoDev),
            Some(_) => None,
            None if e.kind() == io::ErrorKind::TimedOut => Some(Cause::RingStuck),
            None => None,
        }
    }

    /// The name in the metadata's `send_errors`.
    pub fn label(self) -> &'static str {
        match self {
            Cause::NetDown => "ENETDOWN",
            Cause::NoBufs => "ENOBUFS",
            Cause::Again => "EAGAIN",
            Cause::NoMem => "ENOMEM",
            Cause::NoDevice => "ENXIO",
            Cause::NoDev => "ENODEV",
            Cause::RingStuck => "ring-stuck",
        }
    }

    /// The interface itself is gone: the back end must be reopened once it is back.
    fn gone(self) -> bool {
        matches!(self, Cause::NoDevice | Cause::NoDev)
    }

    /// What the progress line says while waiting.
    fn waiting_for(self) -> &'static str {
        match self {
            Cause::NetDown | Cause::RingStuck => "link down",
            Cause::NoDevice | Cause::NoDev => "interface gone",
            Cause::NoBufs | Cause::Again | Cause::NoMem => "send queue full",
        }
    }
}

/// The name of an error that is not transient, for the metadata: `E...` when the errno is one we
/// know, else `errno N`, else `other`.
fn fatal_label(e: &io::Error) -> String {
    match errno_of(e) {
        Some(libc::EIO) => "EIO".into(),
        Some(libc::EINVAL) => "EINVAL".into(),
        Some(libc::EPERM) => "EPERM".into(),
        Some(libc::EMSGSIZE) => "EMSGSIZE".into(),
        Some(libc::EFAULT) => "EFAULT".into(),
        Some(n) => format!("errno {n}"),
        None => "other".into(),
    }
}

/// Counts shared by the senders and read by the monitor and the metadata.
#[derive(Debug, Default)]
pub struct LinkCounters {
    /// Send errors per [`Cause::ALL`] slot.
    errors: [AtomicU64; 7],
    /// Errors that are not transient, by name (at most one per sender: it ends the scan).
    fatal: Mutex<BTreeMap<String, u64>>,
    /// Stalls begun.
    stalls: AtomicU64,
    /// Nanoseconds spent in stalls, over every sender.
    stall_ns: AtomicU64,
    /// Frames handed to the kernel again after a stall.
    resent: AtomicU64,
    /// Senders in a stall now.
    stalled: AtomicU64,
    /// Wall-clock milliseconds since 1970 when the current stall began (0: none), and its cause.
    since_ms: AtomicU64,
    cause: AtomicU64,
    /// The grace in milliseconds, for the progress line.
    grace_ms: AtomicU64,
}

impl LinkCounters {
    /// Counts one error of `cause`.
    pub fn count(&self, cause: Cause) {
        self.errors[cause as usize].fetch_add(1, Relaxed);
    }

    /// Counts `n` refusals the back end retried by itself (ENOBUFS, EAGAIN on a busy queue).
    pub fn count_n(&self, cause: Cause, n: u64) {
        self.errors[cause as usize].fetch_add(n, Relaxed);
    }

    fn begin(&self, cause: Cause, grace: Duration) {
        self.stalls.fetch_add(1, Relaxed);
        self.grace_ms.store(grace.as_millis() as u64, Relaxed);
        self.cause.store(cause as u64, Relaxed);
        if self.stalled.fetch_add(1, Relaxed) == 0 {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
            self.since_ms.store(now.max(1), Relaxed);
        }
    }

    fn end(&self, lasted: Duration) {
        self.stall_ns.fetch_add(lasted.as_nanos() as u64, Relaxed);
        if self.stalled.fetch_sub(1, Relaxed) == 1 {
            self.since_ms.store(0, Relaxed);
        }
    }

    /// The progress line while a sender waits: `link down, waiting (12 s of 60)`.
    pub fn waiting_text(&self) -> Option<String> {
        let since = self.since_ms.load(Relaxed);
        if since == 0 {
            return None;
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        let cause = Cause::ALL.get(self.cause.load(Relaxed) as usize).copied().unwrap_or(Cause::NetDown);
        Some(format!(
            "{}, waiting ({} s of {})",
            cause.waiting_for(),
            now.saturating_sub(since) / 1000,
            self.grace_ms.load(Relaxed).div_ceil(1000)
        ))
    }

    /// Adds the counts of the runs before a `--resume` (from the state file).
    pub fn carry(&self, saved: &LinkReport) {
        for (name, n) in &saved.send_errors {
            match Cause::ALL.iter().find(|c| c.label() == name) {
                Some(c) => self.count_n(*c, *n),
                None => {
                    *self.fatal.lock().unwrap_or_else(|p| p.into_inner()).entry(name.clone()).or_default() += n;
                }
            }
        }
        self.stalls.fetch_add(saved.stalls, Relaxed);
        self.stall_ns.fetch_add((saved.stall_secs * 1e9) as u64, Relaxed);
        self.resent.fetch_add(saved.probes_resent, Relaxed);
    }

    /// The counts for the metadata JSON.
    pub fn report(&self) -> LinkReport {
        let mut send_errors: BTreeMap<String, u64> = self.fatal.lock().map(|m| m.clone()).unwrap_or_default();
        for c in Cause::ALL {
            let n = self.errors[c as usize].load(Relaxed);
            if n > 0 {
                *send_errors.entry(c.label().to_string()).or_default() += n;
            }
        }
        LinkReport {
            send_errors,
            stalls: self.stalls.load(Relaxed),
            stall_secs: self.stall_ns.load(Relaxed) as f64 / 1e9,
            probes_resent: self.resent.load(Relaxed),
        }
    }
}

/// Where the probe stream stood after a batch: frames the back end had accepted by then, and the
/// sender's resume position and finished targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Frames accepted by the back end since the loop started, this batch included.
    pub accepted: u64,
    /// The stream's resume position after the batch.
    pub position: u64,
    /// The sender's finished targets after the batch (as in [`super::counters::SenderProgress`]).
    pub done: u64,
}

/// Batches remembered: a batch is about a millisecond of probes, so this reaches back about two
/// seconds. A stall whose untaken frames reach further back falls back to the start of this run
/// (safe: a resume sends probes twice, the duplicate filter keeps one row).
const HISTORY: usize = 2048;

/// The last [`HISTORY`] checkpoints of one sender.
pub struct Checkpoints {
    ring: Box<[Checkpoint; HISTORY]>,
    n: usize,
    first: Checkpoint,
}

impl Checkpoints {
    /// A history starting at `first` (the position the sender started from, nothing accepted).
    pub fn new(first: Checkpoint) -> Checkpoints {
        Checkpoints { ring: Box::new([Checkpoint::default(); HISTORY]), n: 0, first }
    }

    /// Records the state after a batch.
    #[inline(always)]
    pub fn push(&mut self, c: Checkpoint) {
        self.ring[self.n % HISTORY] = c;
        self.n = self.n.wrapping_add(1);
    }

    /// The checkpoint to resume from when the loop stops with the kernel having taken `taken`
    /// frames (from the start of the loop, in order): the newest one at least `margin` frames
    /// before that, so that probes whose answers may have been lost in flight when the link went
    /// down are sent again too; failing that (the history is shorter), the oldest one remembered
    /// whose frames were all taken; failing that, the start of the loop.
    pub fn safe(&self, taken: u64, margin: u64) -> Checkpoint {
        let kept = self.n.min(HISTORY);
        let entry = |k: usize| self.ring[(self.n - k) % HISTORY];
        let want = taken.saturating_sub(margin);
        if let Some(c) = (1..=kept).map(entry).find(|c| c.accepted <= want) {
            return c;
        }
        match (kept > 0).then(|| entry(kept)) {
            Some(oldest) if oldest.accepted <= taken => oldest,
            _ => self.first,
        }
    }
}

/// How a stall ended.
#[derive(Debug)]
pub enum Outcome {
    /// The kept frames left; `resent` of them, after `lasted`.
    Recovered {
        /// Frames handed over again.
        resent: u64,
        /// How long the stall lasted (the pacer's schedule moves by as much).
        lasted: Duration,
    },
    /// A signal asked the senders to stop during the stall; `pending` frames were never taken.
    Stopped {
        /// Frames kept and never taken.
        pending: u64,
    },
    /// The error is not transient, or the grace ran out; `pending` frames were never taken.
    GaveUp {
        /// The error to report (its message says how long the scan waited).
        error: io::Error,
        /// Frames kept and never taken.
        pending: u64,
    },
}

/// Waits out the send error `first`: counts it, then retries the frames `tx` kept with a bounded
/// backoff until they leave, the grace runs out, or `stop` is set. Off the hot path.
#[cold]
#[inline(never)]
pub fn ride_out(
    tx: &mut dyn Transmit,
    first: io::Error,
    counters: &Counters,
    stop: &AtomicBool,
    retry: &Retry,
) -> Outcome {
    let link = &counters.link;
    let Some(mut cause) = Cause::of(&first) else {
        *link.fatal.lock().unwrap_or_else(|p| p.into_inner()).entry(fatal_label(&first)).or_default() += 1;
        return Outcome::GaveUp { error: first, pending: tx.pending() as u64 };
    };
    link.count(cause);
    let pending = tx.pending() as u64;
    if retry.grace.is_zero() {
        return Outcome::GaveUp { error: first, pending };
    }
    let start = Instant::now();
    link.begin(cause, retry.grace);
    let mut error = first;
    let mut backoff = retry.backoff_min;
    let outcome = loop {
        if stop.load(Relaxed) {
            break Outcome::Stopped { pending: tx.pending() as u64 };
        }
        let waited = start.elapsed();
        if waited >= retry.grace {
            let secs = retry.grace.as_secs_f64();
            let message =
                format!("{error}; still failing after the {secs} s of --send-error-grace (raise it to wait longer)");
            let error = match errno_of(&error) {
                Some(errno) => io::Error::new(error.kind(), OsError { errno, message }),
                None => io::Error::new(error.kind(), message),
            };
            break Outcome::GaveUp { error, pending: tx.pending() as u64 };
        }
        std::thread::sleep(backoff.min(retry.grace - waited));
        backoff = (backoff * 2).clamp(retry.backoff_min, retry.backoff_max);
        if cause.gone() && tx.reopen().is_err() {
            // Not back yet (or this back end cannot reopen): keep waiting for the grace.
            continue;
        }
        match tx.retry() {
            Ok(0) => break Outcome::Recovered { resent: pending, lasted: start.elapsed() },
            Ok(_) => {}
            Err(e) => match Cause::of(&e) {
                Some(c) => {
                    cause = c;
                    error = e;
                }
                None => {
                    *link.fatal.lock().unwrap_or_else(|p| p.into_inner()).entry(fatal_label(&e)).or_default() += 1;
                    break Outcome::GaveUp { error: e, pending: tx.pending() as u64 };
                }
            },
        }
    };
    link.end(start.elapsed());
    if let Outcome::Recovered { resent, .. } = &outcome {
        link.resent.fetch_add(*resent, Relaxed);
    }
    outcome
}

/// For the state saver: per sender, the lower of a settled position and the current one. A
/// sender in a stall publishes the position before its first frame not taken, which may lie
/// behind positions recorded (and about to be settled) before the stall began.
pub fn floor(settled: &mut (Vec<u64>, Vec<u64>), current: &(Vec<u64>, Vec<u64>)) {
    for (t, &pos) in current.0.iter().enumerate() {
        if let (Some(s), Some(&done)) = (settled.0.get_mut(t), current.1.get(t)) {
            if pos < *s {
                *s = pos;
                if let Some(d) = settled.1.get_mut(t) {
                    *d = done;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_by_errno_and_ring_stuck() {
        for (errno, want) in [
            (libc::ENETDOWN, Some(Cause::NetDown)),
            (libc::ENOBUFS, Some(Cause::NoBufs)),
            (libc::EAGAIN, Some(Cause::Again)),
            (libc::ENOMEM, Some(Cause::NoMem)),
            (libc::ENXIO, Some(Cause::NoDevice)),
            (libc::ENODEV, Some(Cause::NoDev)),
            (libc::EIO, None),
            (libc::EINVAL, None),
        ] {
            assert_eq!(Cause::of(&io::Error::from_raw_os_error(errno)), want, "errno {errno}");
        }
        // Wrapped by a back end with what it was doing, the number survives.
        let wrapped = io::Error::other(crate::net::OsError {
            errno: libc::ENETDOWN,
            message: "send(PACKET_TX_RING): Network is down".into(),
        });
        assert_eq!(Cause::of(&wrapped), Some(Cause::NetDown));
        assert_eq!(Cause::of(&io::Error::new(io::ErrorKind::TimedOut, "ring stuck")), Some(Cause::RingStuck));
        assert_eq!(Cause::of(&io::Error::other("bad")), None);
    }

    #[test]
    fn safe_checkpoint_is_taken_and_a_margin_back() {
        let first = Checkpoint { accepted: 0, position: 100, done: 7 };
        let mut h = Checkpoints::new(first);
        assert_eq!(h.safe(0, 0), first);
        for b in 1..=5u64 {
            h.push(Checkpoint { accepted: b * 10, position: 100 + b, done: 7 + b });
        }
        assert_eq!(h.safe(50, 0).position, 105);
        assert_eq!(h.safe(49, 0).position, 104);
        assert_eq!(h.safe(40, 0).position, 104);
        assert_eq!(h.safe(9, 0), first);
        // A margin of 15 frames: the newest checkpoint at least 15 before the first untaken one.
        assert_eq!(h.safe(50, 15).position, 103);
        // A margin longer than the history: the oldest checkpoint that was taken.
        assert_eq!(h.safe(50, 1000).position, 101);
        assert_eq!(h.safe(5, 1000), first);
        // Past the history: the oldest remembered entry may be untaken, so the start stands.
        for b in 6..=(HISTORY as u64 + 10) {
            h.push(Checkpoint { accepted: b * 10, position: 100 + b, done: 7 + b });
        }
        assert_eq!(h.safe(15, 0), first);
        assert_eq!(h.safe(200, 0).position, 120);
        assert_eq!(h.safe(200, 1000).position, 111, "the oldest remembered");
    }

    #[test]
    fn floor_takes_the_lower_position_with_its_count() {
        let mut settled = (vec![50, 80], vec![5, 8]);
        floor(&mut settled, &(vec![40, 90], vec![4, 9]));
        assert_eq!(settled, (vec![40, 80], vec![4, 8]));
    }

    #[test]
    fn progress_line_while_waiting() {
        let l = LinkCounters::default();
        assert_eq!(l.waiting_text(), None);
        l.begin(Cause::NetDown, Duration::from_secs(60));
        let t = l.waiting_text().unwrap();
        assert!(t.starts_with("link down, waiting (") && t.ends_with(" s of 60)"), "{t}");
        l.end(Duration::from_millis(1500));
        assert_eq!(l.waiting_text(), None);
        let r = l.report();
        assert_eq!((r.stalls, r.stall_secs), (1, 1.5));
        // A resumed scan adds what the runs before counted.
        let resumed = LinkCounters::default();
        resumed.carry(&r);
        resumed.carry(&LinkReport {
            send_errors: [("ENETDOWN".to_string(), 2), ("EIO".to_string(), 1)].into(),
            stalls: 2,
            stall_secs: 0.5,
            probes_resent: 7,
        });
        let both = resumed.report();
        assert_eq!(both.send_errors, [("ENETDOWN".to_string(), 2), ("EIO".to_string(), 1)].into());
        assert_eq!((both.stalls, both.stall_secs, both.probes_resent), (3, 2.0, 7));
    }
}
