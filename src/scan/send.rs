//! The send loop: one per sender thread, flat on purpose so that it reads line by line.
//!
//! For each batch: ask the [`Pacer`] how many probes are due, then let the transmit back end
//! fill its free slots straight from the probe stream (target from the permutation cursor,
//! per-probe values from the hash, frame from the template), and hand them to the kernel in one
//! call. No allocation, no lock, no per-probe syscall.
//!
//! The pacer keeps an absolute schedule (probe `i` is due at `start + i / rate`) rather than a
//! token bucket refilled per batch: a sleep that overshoots (they all do, by tens of
//! microseconds, and by milliseconds on a busy machine) is made up by the next batch instead of
//! being lost, which a token bucket with a burst of one batch silently does. Measured at the
//! sink, the governor-based loop this replaced ran 2.8% slow at 1 kpps, 7% at 100 kpps and 25%
//! at 500 kpps (BENCHMARKS.md).

use super::counters::Counters;
use super::flap::{ride_out, Cause, Checkpoint, Checkpoints, Outcome, Retry};
use crate::keyed_hash::Validator;
use crate::net::{Transmit, TxStats};
use crate::probe::{ProbeBuilder, ProbeVersion};
use crate::targets::{Cursor, TargetSpace};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Most frames handed over in one batch.
pub const MAX_BATCH: usize = 256;

/// The probes of one sender, in order: each target of the cursor, each version, each repeat.
pub struct ProbeStream<'a> {
    space: &'a TargetSpace,
    cursor: Cursor,
    builder: &'a ProbeBuilder,
    validator: &'a Validator,
    versions: &'a [ProbeVersion],
    probes: u32,
    src_v4: Option<IpAddr>,
    src_v6: Option<IpAddr>,
    current: Option<(IpAddr, u16)>,
    /// Cursor position before the target in progress: where a resume must start again.
    before_current: u64,
    next_version: usize,
    next_repeat: u32,
    /// `mpscan trace`: the highest TTL and the clock of the send times (see `crate::trace`).
    trace: Option<(u8, Instant)>,
    /// The TTL of the target in progress (trace only).
    ttl: u8,
    /// Targets fully sent.
    pub targets_done: u64,
}

impl<'a> ProbeStream<'a> {
    /// A stream over `cursor` (which carries any target limit).
    pub fn new(
        space: &'a TargetSpace,
        cursor: Cursor,
        builder: &'a ProbeBuilder,
        validator: &'a Validator,
        versions: &'a [ProbeVersion],
        probes: u32,
        link: &crate::probe::Link,
    ) -> Self {
        ProbeStream {
            space,
            cursor,
            builder,
            validator,
            versions,
            probes,
            src_v4: link.src_v4.map(IpAddr::V4),
            src_v6: link.src_v6.map(IpAddr::V6),
            before_current: 0,
            current: None,
            next_version: 0,
            next_repeat: 0,
            trace: None,
            ttl: 0,
            targets_done: 0,
        }
    }

    /// The same stream as trace probes (`mpscan trace`): the cursor walks (target, port, TTL)
    /// triples, index = pair index * `max_ttl` + TTL - 1, and each probe carries its TTL and
    /// send time (`crate::trace::encode`).
    pub fn trace(mut self, max_ttl: u8, clock: Instant) -> Self {
        self.trace = Some((max_ttl, clock));
        self
    }

    /// The cursor position up to which every target's probes have been written: a resume from
    /// here sends everything not yet sent (and the target in progress again, whole).
    pub fn resume_position(&self) -> u64 {
        if self.current.is_some() {
            self.before_current
        } else {
            self.cursor.position()
        }
    }

    /// Writes the next probe into `buf` and returns its length and its target, or `None` at the
    /// end of the stream.
    ///
    /// The send loop calls this once per frame slot, so what it costs per call is the cost of a
    /// probe (BENCHMARKS.md, "Cost per probe"). The common case is one step and one write with no
    /// loop: a loop here (to skip targets of a family the scan has no source for) let the
    /// compiler hoist loads of every field of the stream to the top of each call, which cost up
    /// to 42 instructions per probe in some builds. Skipping lives in a cold function instead.
    #[inline]
    pub fn next_probe(&mut self, buf: &mut [u8]) -> Option<(usize, IpAddr, u16, ProbeVersion)> {
        let (dst, port, version) = self.step()?;
        let n = self.write(buf, dst, port, version);
        if n > 0 {
            return Some((n, dst, port, version));
        }
        self.next_probe_after_skip(buf)
    }

    /// [`ProbeStream::next_probe`] after a probe that could not be written (no source address of
    /// its target's family): goes on to the next probe that can.
    #[cold]
    #[inline(never)]
    fn next_probe_after_skip(&mut self, buf: &mut [u8]) -> Option<(usize, IpAddr, u16, ProbeVersion)> {
        loop {
            let (dst, port, version) = self.step()?;
            let n = self.write(buf, dst, port, version);
            if n > 0 {
                return Some((n, dst, port, version));
            }
        }
    }

    /// Moves to the next probe, (target, port, version), taking the next target from the cursor
    /// when the current one has had all its probes; `None` at the end of the stream.
    #[inline(always)]
    fn step(&mut self) -> Option<(IpAddr, u16, ProbeVersion)> {
        let (dst, port) = match self.current {
            Some(c) => c,
            None => {
                self.before_current = self.cursor.position();
                let mut index = self.cursor.next()?;
                if let Some((m, _)) = self.trace {
                    self.ttl = (index % u64::from(m)) as u8 + 1;
                    index /= u64::from(m);
                }
                let c = self.space.get(index);
                self.current = Some(c);
                self.next_version = 0;
                self.next_repeat = 0;
                c
            }
        };
        let version = self.versions[self.next_version];
        self.next_repeat += 1;
        if self.next_repeat == self.probes {
            self.next_repeat = 0;
            self.next_version += 1;
            if self.next_version == self.versions.len() {
                self.current = None;
                self.targets_done += 1;
            }
        }
        Some((dst, port, version))
    }

    /// Writes the probe (`dst`, `port`, `version`) into `buf` (a trace probe when tracing) and
    /// returns its length, or 0 if the scan has no source address of `dst`'s family.
    #[inline(always)]
    fn write(&self, buf: &mut [u8], dst: IpAddr, port: u16, version: ProbeVersion) -> usize {
        match (dst, self.src_v4) {
            // The common case, without the generic hash and template search.
            (IpAddr::V4(d), Some(IpAddr::V4(s))) => {
                let tag = self.validator.tag_v4(s.octets(), d.octets(), port, version);
                let n = self.builder.write_v4(buf, d, port, version, &tag);
                if self.trace.is_some() && n > 0 {
                    self.trace_patch(&mut buf[..n], &tag);
                }
                n
            }
            _ => self.write_any(buf, dst, port, version),
        }
    }

    /// [`ProbeStream::write`] for an IPv6 target (or an IPv4 one without an IPv4 source): the
    /// generic hash and template lookup, out of line so that the IPv4 path stays small.
    #[inline(never)]
    fn write_any(&self, buf: &mut [u8], dst: IpAddr, port: u16, version: ProbeVersion) -> usize {
        let src = if dst.is_ipv4() { self.src_v4 } else { self.src_v6 };
        let Some(src) = src else { return 0 };
        let tag = self.validator.tag(src, dst, port, version);
        let n = self.builder.write(buf, dst, port, version, &tag);
        if self.trace.is_some() && n > 0 {
            self.trace_patch(&mut buf[..n], &tag);
        }
        n
    }

    /// Turns the scan probe just written into `frame` for `tag` into the trace probe of the
    /// current target's TTL, sent now (`crate::trace::encode`). Called only when tracing.
    #[inline(never)]
    fn trace_patch(&self, frame: &mut [u8], tag: &crate::probe::ProbeTag) {
        if let Some((_, clock)) = self.trace {
            crate::trace::encode::patch(frame, tag, self.ttl, crate::trace::millis_since(clock));
        }
    }
}

/// Paces probes at `rate` per second against an absolute schedule.
///
/// [`Pacer::grant`] says how many probes may leave now: those due by now and not yet granted,
/// once at least a batch (about a millisecond's worth, 1 to [`MAX_BATCH`]) has come due, at most
/// [`MAX_BATCH`] at once. A sender that fell far behind (descheduled for longer than
/// [`Pacer::MAX_DEBT`]) forgives the excess rather than bursting to catch up.
#[derive(Debug, Clone)]
pub struct Pacer {
    rate: u64,
    batch: u64,
    max_debt: u64,
    start: Instant,
    granted: u64,
}

impl Pacer {
    /// How far behind schedule a sender may catch up.
    pub const MAX_DEBT: Duration = Duration::from_millis(50);

    /// A schedule of `rate` (> 0) probes per second starting at `start`.
    pub fn new(rate: u64, start: Instant) -> Pacer {
        let rate = rate.max(1);
        let batch = (rate / 1000).clamp(1, MAX_BATCH as u64);
        let max_debt = (rate as u128 * Self::MAX_DEBT.as_nanos() / 1_000_000_000) as u64;
        Pacer { rate, batch, max_debt: max_debt.max(2 * batch), start, granted: 0 }
    }

    /// Probes due from the start to `now`.
    fn due(&self, now: Instant) -> u64 {
        let ns = now.saturating_duration_since(self.start).as_nanos();
        (ns * self.rate as u128 / 1_000_000_000) as u64
    }

    /// How many probes may be sent at `now` (0: none yet, wait until [`Pacer::next_at`]); they
    /// count as sent.
    pub fn grant(&mut self, now: Instant) -> usize {
        let due = self.due(now);
        let mut owed = due.saturating_sub(self.granted);
        if owed > self.max_debt {
            self.granted = due - self.batch;
            owed = self.batch;
        }
        if owed < self.batch {
            return 0;
        }
        let n = owed.min(MAX_BATCH as u64);
        self.granted += n;
        n as usize
    }

    /// Moves the whole schedule `by` later: after a stall the pacer carries on where it stopped
    /// instead of bursting to make up the time lost.
    pub fn shift(&mut self, by: Duration) {
        self.start += by;
    }

    /// When the next batch comes due.
    pub fn next_at(&self) -> Instant {
        let ns = (self.granted + self.batch) as u128 * 1_000_000_000 / self.rate as u128;
        self.start + Duration::from_nanos(ns.min(u64::MAX as u128) as u64)
    }
}

/// Sends the whole stream through `tx` at `rate` packets per second (0: unlimited), stopping
/// early when `stop` is set, and publishes the progress of sender `me` after every batch. Returns
/// the transmit error, if any: the first one ends the loop (as [`send_loop_with`] with
/// [`Retry::STOP`]).
pub fn send_loop(
    tx: &mut dyn Transmit,
    stream: &mut ProbeStream<'_>,
    rate: u64,
    counters: &Counters,
    stop: &AtomicBool,
    me: usize,
) -> std::io::Result<()> {
    send_loop_with(tx, stream, rate, counters, stop, me, &Retry::STOP)
}

/// [`send_loop`], riding out transient send errors as `retry` says (see [`super::flap`]): the
/// frames of a failed batch are sent again when the link is back, the pacer's schedule moves by
/// the stall instead of bursting, and a loop that gives up (or is stopped during a stall)
/// publishes a resume position before its first frame the kernel did not take.
pub fn send_loop_with(
    tx: &mut dyn Transmit,
    stream: &mut ProbeStream<'_>,
    rate: u64,
    counters: &Counters,
    stop: &AtomicBool,
    me: usize,
    retry: &Retry,
) -> std::io::Result<()> {
    let mut pacer = (rate > 0).then(|| Pacer::new(rate, Instant::now()));
    let progress = counters.senders.get(me);
    let start_done = progress.map_or(0, |p| p.done.load(Relaxed));
    let mut history =
        Checkpoints::new(Checkpoint { accepted: 0, position: stream.resume_position(), done: start_done });
    let stats_at_start = tx.stats();
    // Frames the back end accepted since the start (and so the base of `tx.stats().queued`).
    let mut accepted = 0u64;
    let mut done = false;
    while !done && !stop.load(Relaxed) {
        let batch = match &mut pacer {
            None => MAX_BATCH,
            Some(p) => match p.grant(Instant::now()) {
                0 => {
                    sleep_until(p.next_at());
                    continue;
                }
                n => n,
            },
        };
        let before = stream.targets_done;
        let sent = match tx.send_batch(batch, &mut |slot: &mut [u8]| match stream.next_probe(slot) {
            Some((n, ..)) => n,
            None => {
                done = true;
                0
            }
        }) {
            Ok(sent) => sent as u64,
            Err(e) => {
                let stall = Stall { history: &history, accepted, stats_at_start, rate, counters, me };
                match stall.ride_out_batch(tx, e, stop, retry) {
                    Ok(BatchEnd::Recovered { sent, lasted }) => {
                        if let Some(p) = &mut pacer {
                            p.shift(lasted);
                        }
                        sent
                    }
                    Ok(BatchEnd::Stopped) => return Ok(()),
                    Err(error) => return Err(error),
                }
            }
        };
        accepted += sent;
        Counters::add(&counters.sent, sent);
        Counters::add(&counters.targets_done, stream.targets_done - before);
        if let Some(p) = progress {
            p.position.store(stream.resume_position(), Relaxed);
            p.done.fetch_add(stream.targets_done - before, Relaxed);
            p.complete.store(done, Relaxed);
        }
        history.push(Checkpoint {
            accepted,
            position: stream.resume_position(),
            done: start_done + stream.targets_done,
        });
    }
    let r = Stall { history: &history, accepted, stats_at_start, rate, counters, me }.flush(tx, stop, retry);
    // Refusals the back end retried by itself (a busy queue), for the metadata.
    let end = tx.stats();
    counters.link.count_n(Cause::NoBufs, end.enobufs.saturating_sub(stats_at_start.enobufs));
    counters.link.count_n(Cause::Again, end.eagain.saturating_sub(stats_at_start.eagain));
    r
}

/// How a failed batch ended once the link was waited for.
enum BatchEnd {
    /// The link came back after `lasted`; the batch put `sent` frames in the back end.
    Recovered { sent: u64, lasted: Duration },
    /// The scan was asked to stop while it waited; the position is published.
    Stopped,
}

/// What the send loop knows when the back end fails (the stall handling, apart from the loop's
/// hot path): the positions it published, the frames accepted so far, and where its counters
/// live.
struct Stall<'a> {
    history: &'a Checkpoints,
    accepted: u64,
    stats_at_start: TxStats,
    rate: u64,
    counters: &'a Counters,
    me: usize,
}

impl Stall<'_> {
    /// A batch failed with `e`: waits for the link ([`ride_out`]). While it waits the state may
    /// be saved (and the scan killed), so a position is published that the untaken frames and
    /// the answers lost in flight lie after; it is restored if the link comes back.
    #[cold]
    #[inline(never)]
    fn ride_out_batch(
        &self,
        tx: &mut dyn Transmit,
        e: std::io::Error,
        stop: &AtomicBool,
        retry: &Retry,
    ) -> std::io::Result<BatchEnd> {
        let (counters, me) = (self.counters, self.me);
        // The frames this batch put in the back end before it failed.
        let queued = tx.stats().queued.wrapping_sub(self.stats_at_start.queued);
        let sent = queued.saturating_sub(self.accepted);
        let taken = (self.accepted + sent).saturating_sub(tx.pending() as u64);
        let shown = rewind(self.history, taken, self.rate, counters, me);
        match ride_out(tx, e, counters, stop, retry) {
            Outcome::Recovered { lasted, .. } => {
                restore(shown, counters, me);
                Ok(BatchEnd::Recovered { sent, lasted })
            }
            Outcome::Stopped { pending } => {
                give_up(self.history, self.accepted + sent, self.accepted, pending, self.rate, counters, me);
                Ok(BatchEnd::Stopped)
            }
            Outcome::GaveUp { error, pending } => {
                give_up(self.history, self.accepted + sent, self.accepted, pending, self.rate, counters, me);
                Err(error)
            }
        }
    }

    /// Flushes the back end at the end of the send loop, riding out failures. A ring whose
    /// frames were taken but never leave would fail flush() again after each retry: the grace
    /// covers the whole flush, not each attempt.
    fn flush(&self, tx: &mut dyn Transmit, stop: &AtomicBool, retry: &Retry) -> std::io::Result<()> {
        let flush_start = Instant::now();
        loop {
            match tx.flush() {
                Ok(()) => return Ok(()),
                Err(e) => match ride_out(tx, e, self.counters, stop, &retry.less(flush_start.elapsed())) {
                    Outcome::Recovered { .. } => {}
                    Outcome::Stopped { pending } => {
                        self.give_up(pending);
                        return Ok(());
                    }
                    Outcome::GaveUp { error, pending } => {
                        self.give_up(pending);
                        return Err(error);
                    }
                },
            }
        }
    }

    /// [`give_up`] after the flush, when every accepted frame was handed over.
    fn give_up(&self, pending: u64) {
        give_up(self.history, self.accepted, self.accepted, pending, self.rate, self.counters, self.me);
    }
}

/// The loop stops with `pending` of its `accepted` frames never taken by the kernel, `counted`
/// of them already in `counters.sent`: counts only the frames that left, and publishes the
/// position a resume must start from ([`rewind`]).
#[cold]
fn give_up(
    history: &Checkpoints,
    accepted: u64,
    counted: u64,
    pending: u64,
    rate: u64,
    counters: &Counters,
    me: usize,
) {
    let left = accepted.saturating_sub(pending);
    if left >= counted {
        Counters::add(&counters.sent, left - counted);
    } else {
        counters.sent.fetch_sub(counted - left, Relaxed);
    }
    rewind(history, left, rate, counters, me);
}

/// Publishes, for sender `me` whose first `taken` frames the kernel took, a position before
/// every frame it did not take and before the last second of those it did (`rate` per second;
/// their answers may have been lost with the link), so that a resume from the state sends them
/// again; the duplicate filter keeps one row for a probe answered twice. Returns the position
/// and finished-target count it replaced, for [`restore`].
#[cold]
fn rewind(history: &Checkpoints, taken: u64, rate: u64, counters: &Counters, me: usize) -> (u64, u64) {
    let margin = if rate == 0 { u64::MAX } else { rate };
    let safe = history.safe(taken, margin);
    let Some(p) = counters.senders.get(me) else {
        return (0, 0);
    };
    let shown = (p.position.load(Relaxed), p.done.load(Relaxed));
    p.position.store(safe.position, Relaxed);
    p.done.store(safe.done, Relaxed);
    p.complete.store(false, Relaxed);
    counters.targets_done.fetch_sub(shown.1.saturating_sub(safe.done), Relaxed);
    shown
}

/// The link came back: publishes again what [`rewind`] replaced.
#[cold]
fn restore((position, done): (u64, u64), counters: &Counters, me: usize) {
    if let Some(p) = counters.senders.get(me) {
        let now = p.done.swap(done, Relaxed);
        p.position.store(position, Relaxed);
        Counters::add(&counters.targets_done, done.saturating_sub(now));
    }
}

/// Sleeps until `deadline`, precisely: the OS sleep for most of it, a yield loop for the rest.
fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline <= now {
        return;
    }
    let d = deadline - now;
    if d > Duration::from_micros(200) {
        std::thread::sleep(d - Duration::from_micros(100));
    }
    while Instant::now() < deadline {
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stop flag nobody sets.
    static NEVER: AtomicBool = AtomicBool::new(false);

    /// Simulated clock: the sender wakes late by a varying amount, as sleeps do.
    fn run(rate: u64, secs: u64, late: impl Fn(u64) -> Duration) -> (u64, usize) {
        let t0 = Instant::now();
        let mut p = Pacer::new(rate, t0);
        let mut now = t0;
        let (mut sent, mut biggest, mut i) = (0u64, 0usize, 0u64);
        let end = t0 + Duration::from_secs(secs);
        while now < end {
            match p.grant(now) {
                0 => {
                    now = p.next_at().max(now) + late(i);
                    i += 1;
                }
                n => {
                    sent += n as u64;
                    biggest = biggest.max(n);
                }
            }
        }
        (sent, biggest)
    }

    #[test]
    fn oversleeping_is_made_up() {
        for rate in [1u64, 1_000, 10_000, 100_000, 500_000, 3_000_000] {
            // Every wake-up 0 to 90 us late: a per-batch token bucket would lose all of it.
            let (sent, biggest) = run(rate, 2, |i| Duration::from_micros(i * 37 % 91));
            let want = 2 * rate;
            assert!(
                sent.abs_diff(want) <= (rate / 1000).clamp(1, MAX_BATCH as u64) + 1,
                "rate {rate}: {sent} of {want}"
            );
            assert!(biggest <= MAX_BATCH);
        }
    }

    #[test]
    fn batches_are_about_a_millisecond() {
        let mut p = Pacer::new(100_000, Instant::now());
        let t = p.start;
        assert_eq!(p.grant(t), 0);
        assert_eq!(p.next_at() - t, Duration::from_millis(1));
        assert_eq!(p.grant(t + Duration::from_millis(1)), 100);
        assert_eq!(p.grant(t + Duration::from_millis(1)), 0);
        // 2.5 ms later: 250 due in all, 150 owed, granted at once (below MAX_BATCH).
        assert_eq!(p.grant(t + Duration::from_micros(2500)), 150);
    }

    #[test]
    fn a_long_stall_is_forgiven_not_burst() {
        let mut p = Pacer::new(100_000, Instant::now());
        let t = p.start;
        // A second asleep: 100,000 probes due, but only one batch goes, and the schedule resumes
        // from there.
        assert_eq!(p.grant(t + Duration::from_secs(1)), 100);
        assert_eq!(p.grant(t + Duration::from_secs(1)), 0);
        assert_eq!(p.grant(t + Duration::from_secs(1) + Duration::from_millis(1)), 100);
    }

    // ---- riding through send errors (scan::flap), over a transport that fails on cue ----

    use crate::net::{FlakyTx, MemoryTx, Outage};
    use crate::probe::Link;
    use crate::targets::{BlockSource, TargetSpec};
    use std::collections::BTreeSet;

    struct Setup {
        space: TargetSpace,
        builder: ProbeBuilder,
        validator: Validator,
        link: Link,
        versions: [ProbeVersion; 1],
    }

    fn setup() -> Setup {
        let targets = ["198.18.0.0/22".to_string()];
        let spec = TargetSpec {
            targets: &targets,
            ports: "443",
            blocklist: BlockSource::None,
            allowlist: None,
            allow_unblocked_full_space: false,
        };
        let link = Link { src_mac: [2; 6], dst_mac: [1; 6], src_v4: Some([192, 0, 2, 2].into()), src_v6: None };
        let versions = [ProbeVersion::V1];
        Setup {
            space: TargetSpace::build(&spec).unwrap(),
            builder: ProbeBuilder::new(&link, &versions),
            validator: Validator::from_seed(9),
            link,
            versions,
        }
    }

    impl Setup {
        fn stream(&self, position: u64) -> ProbeStream<'_> {
            let cursor = self.space.permutation(9).cursor(0, 1, 0, 1, position).unwrap();
            ProbeStream::new(&self.space, cursor, &self.builder, &self.validator, &self.versions, 1, &self.link)
        }

        /// Every frame of an uninterrupted scan, in order.
        fn reference(&self) -> Vec<Vec<u8>> {
            let mut tx = MemoryTx::default();
            send_loop(&mut tx, &mut self.stream(0), 0, &Counters::new(1), &NEVER, 0).unwrap();
            tx.frames
        }
    }

    fn quick(grace: Duration) -> Retry {
        Retry { grace, backoff_min: Duration::from_micros(100), backoff_max: Duration::from_millis(2) }
    }

    #[test]
    fn outages_skip_no_probe_and_send_none_twice() {
        let s = setup();
        let want = s.reference();
        assert_eq!(want.len(), 1024);
        // Down in the middle of a batch (ENETDOWN), a full queue, a ring that does not drain is
        // covered by the cause tests; an interface that vanishes and comes back (ENXIO).
        let mut tx = FlakyTx::new([
            Outage { at: 300, errno: libc::ENETDOWN, failures: 5 },
            Outage { at: 600, errno: libc::ENOBUFS, failures: 1 },
            Outage { at: 900, errno: libc::ENXIO, failures: 0 },
        ]);
        tx.reopen_failures = 3;
        let counters = Counters::new(1);
        send_loop_with(&mut tx, &mut s.stream(0), 0, &counters, &NEVER, 0, &quick(Duration::from_secs(60))).unwrap();
        assert_eq!(tx.taken, want, "every probe once, in the permutation's order");
        assert_eq!(tx.reopens, 4, "reopened until the interface was back");
        assert_eq!(Counters::get(&counters.sent), 1024);
        assert_eq!(Counters::get(&counters.targets_done), 1024);
        assert!(counters.senders[0].complete.load(Relaxed));
        let r = counters.link.report();
        let errors: Vec<_> = r.send_errors.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(errors, [("ENETDOWN", 1), ("ENOBUFS", 1), ("ENXIO", 1)]);
        assert_eq!(r.stalls, 3);
        // Each outage kept the rest of its 256-frame batch: 512-300, 768-600, 1024-900.
        assert_eq!(r.probes_resent, 212 + 168 + 124);
        assert!(r.stall_secs > 0.0);
        assert_eq!(counters.link.waiting_text(), None);
    }

    #[test]
    fn grace_runs_out_then_resume_covers_every_probe() {
        let s = setup();
        let want: BTreeSet<_> = s.reference().into_iter().collect();
        let mut tx = FlakyTx::new([Outage { at: 300, errno: libc::ENETDOWN, failures: u32::MAX }]);
        let counters = Counters::new(1);
        let e = send_loop_with(&mut tx, &mut s.stream(0), 0, &counters, &NEVER, 0, &quick(Duration::from_millis(30)))
            .unwrap_err();
        assert!(e.to_string().contains("--send-error-grace"), "{e}");
        assert_eq!(Cause::of(&e), Some(Cause::NetDown));
        assert_eq!(tx.taken.len(), 300);
        assert_eq!(Counters::get(&counters.sent), 300, "only frames the kernel took count as sent");
        // The state may not pass frame 300: it goes back to the end of the first batch.
        let p = &counters.senders[0];
        let (position, done) = (p.position.load(Relaxed), p.done.load(Relaxed));
        assert_eq!(done, 256);
        assert_eq!(Counters::get(&counters.targets_done), 256);
        assert!(!p.complete.load(Relaxed));
        // Resumed from there, the two runs together send every probe.
        let mut rest = MemoryTx::default();
        send_loop(&mut rest, &mut s.stream(position), 0, &Counters::new(1), &NEVER, 0).unwrap();
        assert_eq!(rest.frames.len(), 1024 - 256);
        let got: BTreeSet<_> = tx.taken.into_iter().chain(rest.frames).collect();
        assert_eq!(got, want);
        assert_eq!(counters.link.report().stalls, 1);
    }

    #[test]
    fn grace_zero_stops_at_the_first_error_as_before() {
        let s = setup();
        let mut tx = FlakyTx::new([Outage { at: 10, errno: libc::ENOBUFS, failures: 1 }]);
        let counters = Counters::new(1);
        let e = send_loop_with(&mut tx, &mut s.stream(0), 0, &counters, &NEVER, 0, &Retry::STOP).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOBUFS));
        assert_eq!(counters.senders[0].position.load(Relaxed), 0, "nothing of the first batch is safe");
        assert_eq!(counters.link.report().stalls, 0);
        assert_eq!(counters.link.report().send_errors.get("ENOBUFS"), Some(&1));
    }

    #[test]
    fn an_error_that_waiting_does_not_cure_stops_at_once() {
        let s = setup();
        let mut tx = FlakyTx::new([Outage { at: 10, errno: libc::EINVAL, failures: 1 }]);
        let counters = Counters::new(1);
        let e = send_loop_with(&mut tx, &mut s.stream(0), 0, &counters, &NEVER, 0, &quick(Duration::from_secs(60)))
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        assert_eq!(counters.link.report().send_errors.get("EINVAL"), Some(&1));
        assert_eq!(counters.link.report().stalls, 0);
    }

    #[test]
    fn a_signal_during_a_stall_stops_with_a_safe_position() {
        let s = setup();
        let mut tx = FlakyTx::new([Outage { at: 700, errno: libc::ENETDOWN, failures: u32::MAX }]);
        let counters = Counters::new(1);
        let stop = AtomicBool::new(false);
        // The stop arrives while the sender waits: from the monitor's view of the stall.
        std::thread::scope(|sc| {
            sc.spawn(|| {
                while counters.link.waiting_text().is_none() {
                    std::thread::yield_now();
                }
                // While it waits, the state would already resume before the untaken frames.
                assert_eq!(counters.senders[0].done.load(Relaxed), 256);
                assert_eq!(Counters::get(&counters.targets_done), 256);
                stop.store(true, Relaxed);
            });
            send_loop_with(&mut tx, &mut s.stream(0), 0, &counters, &stop, 0, &quick(Duration::from_secs(3600)))
                .unwrap();
        });
        assert_eq!(tx.taken.len(), 700);
        // Unpaced, the margin for answers in flight reaches past the history: its oldest entry.
        assert_eq!(counters.senders[0].done.load(Relaxed), 256);
        assert_eq!(Counters::get(&counters.sent), 700);
    }

    #[test]
    fn a_ring_that_never_drains_at_the_end_gives_up_after_the_grace() {
        let s = setup();
        let mut tx = FlakyTx::default();
        tx.stuck_flush = true;
        let counters = Counters::new(1);
        // Each retry finds nothing left to hand over, each flush fails again: the grace bounds
        // the whole flush, so the loop ends.
        let e = send_loop_with(&mut tx, &mut s.stream(0), 0, &counters, &NEVER, 0, &quick(Duration::from_millis(30)))
            .unwrap_err();
        assert_eq!(Cause::of(&e), Some(Cause::RingStuck));
        assert_eq!(tx.taken.len(), 1024);
        let r = counters.link.report();
        assert!(r.stalls >= 1 && r.send_errors["ring-stuck"] > r.stalls, "{r:?}");
    }

    /// Every probe of a stream over `targets` with `link`'s sources: (frame, target, port, version).
    fn probes_of(targets: &[&str], link: &Link, versions: &[ProbeVersion], trace: Option<u8>) -> Vec<Probe> {
        let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
        let spec = TargetSpec {
            targets: &targets,
            ports: "443,80",
            blocklist: BlockSource::None,
            allowlist: None,
            allow_unblocked_full_space: false,
        };
        let space = TargetSpace::build(&spec).unwrap();
        let builder = ProbeBuilder::new(link, versions);
        let validator = Validator::from_seed(9);
        // A trace permutes (target, port, TTL) triples, as `super::workers` sets it up.
        let permutation = match trace {
            Some(m) => crate::targets::Permutation::new(space.len() * u64::from(m), 9),
            None => space.permutation(9),
        };
        let cursor = permutation.cursor(0, 1, 0, 1, 0).unwrap();
        let mut stream = ProbeStream::new(&space, cursor, &builder, &validator, versions, 2, link);
        if let Some(m) = trace {
            stream = stream.trace(m, Instant::now());
        }
        let mut out = Vec::new();
        let mut buf = [0u8; crate::probe::MAX_FRAME_LEN];
        while let Some((n, dst, port, version)) = stream.next_probe(&mut buf) {
            out.push((buf[..n].to_vec(), dst, port, version));
        }
        assert_eq!(stream.targets_done, space.len() * u64::from(trace.unwrap_or(1)), "every target counts as done");
        assert_eq!(stream.resume_position(), stream.cursor.position());
        out
    }

    type Probe = (Vec<u8>, IpAddr, u16, ProbeVersion);

    #[test]
    fn targets_without_a_source_of_their_family_are_skipped_and_nothing_else() {
        let targets = ["198.18.0.0/28", "2001:db8::/124", "198.18.1.0/30"];
        let versions = [ProbeVersion::V1, ProbeVersion::V0];
        let both = Link {
            src_mac: [2; 6],
            dst_mac: [1; 6],
            src_v4: Some([192, 0, 2, 2].into()),
            src_v6: Some("2001:db8:ffff::2".parse().unwrap()),
        };
        let all = probes_of(&targets, &both, &versions, None);
        // 36 targets, 2 ports, 2 versions, 2 probes each.
        assert_eq!(all.len(), 36 * 2 * 2 * 2);
        for (only, v4) in [(Link { src_v6: None, ..both }, true), (Link { src_v4: None, ..both }, false)] {
            let got = probes_of(&targets, &only, &versions, None);
            let want: Vec<_> = all.iter().filter(|p| p.1.is_ipv4() == v4).cloned().collect();
            assert_eq!(want.len(), if v4 { 20 * 2 * 4 } else { 16 * 2 * 4 });
            assert_eq!(got, want, "the same probes, in the same order, as the scan of both families");
        }
    }

    #[test]
    fn trace_probes_are_the_scan_probes_patched_with_their_ttl() {
        let link = Link {
            src_mac: [2; 6],
            dst_mac: [1; 6],
            src_v4: Some([192, 0, 2, 2].into()),
            src_v6: Some("2001:db8:ffff::2".parse().unwrap()),
        };
        let targets = ["198.18.0.0/30", "2001:db8::/126"];
        let versions = [ProbeVersion::V1];
        let scan = probes_of(&targets, &link, &versions, None);
        let trace = probes_of(&targets, &link, &versions, Some(3));
        assert_eq!(trace.len(), scan.len() * 3);
        let validator = Validator::from_seed(9);
        let mut ttls = BTreeSet::new();
        for (frame, dst, port, version) in &trace {
            let src = if dst.is_ipv4() { link.src_v4.map(IpAddr::V4) } else { link.src_v6.map(IpAddr::V6) };
            let tag = validator.tag(src.unwrap(), *dst, *port, *version);
            let (scan_frame, ..) = scan.iter().find(|p| (p.1, p.2, p.3) == (*dst, *port, *version)).unwrap();
            // The TTL or hop limit byte, then the same patch applied to the scan's frame.
            let ttl = if dst.is_ipv4() { frame[22] } else { frame[21] };
            ttls.insert(ttl);
            let mut patched = scan_frame.clone();
            // The send time, in TSval: 16 bytes before the end of a v1 probe (option list offset 8).
            let now = u32::from_be_bytes(frame[frame.len() - 16..frame.len() - 12].try_into().unwrap());
            assert!(crate::trace::encode::patch(&mut patched, &tag, ttl, now));
            assert_eq!(&patched, frame, "{dst} port {port} TTL {ttl}");
        }
        assert_eq!(ttls, BTreeSet::from([1, 2, 3]));
    }

    #[test]
    fn after_a_stall_the_schedule_moves_instead_of_bursting() {
        let mut p = Pacer::new(100_000, Instant::now());
        let t = p.start;
        assert_eq!(p.grant(t + Duration::from_millis(1)), 100);
        // A 2-second stall: the schedule moves by as much, so the next millisecond brings one
        // batch, not the 200,000 probes (or the 50 ms of debt) the stall would have owed.
        p.shift(Duration::from_secs(2));
        let back = t + Duration::from_secs(2) + Duration::from_millis(1);
        assert_eq!(p.grant(back), 0);
        assert_eq!(p.grant(back + Duration::from_millis(1)), 100);
        assert_eq!(p.grant(back + Duration::from_millis(1)), 0);
    }
}
