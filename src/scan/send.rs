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
use crate::keyed_hash::{source_index, Validator};
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
    /// The key source of each family (the first; the hash is computed over it).
    src_v4: Option<IpAddr>,
    src_v6: Option<IpAddr>,
    /// Probes leave from several sources or ports outside the default range: the send loop takes
    /// the spreading path ([`ProbeStream::fill`] with `SPREAD`), otherwise the single-source one.
    spread: bool,
    /// Number of IPv4 sources (the `n` of [`source_index`]).
    n_v4: usize,
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
            spread: builder.source_count(true) > 1 || builder.source_count(false) > 1 || !validator.default_ports(),
            n_v4: builder.source_count(true),
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
    ///
    /// With several sources or a `--source-port` range the probe takes the spreading path
    /// (`SPREAD`: the source picked from the hash, the port reduced into the range); the send
    /// loop chooses the path once per batch, so a scan from one source with the default ports
    /// runs exactly the code it ran before several sources existed.
    #[inline]
    pub fn next_probe(&mut self, buf: &mut [u8]) -> Option<(usize, IpAddr, u16, ProbeVersion)> {
        if self.spread {
            self.next::<true>(buf)
        } else {
            self.next::<false>(buf)
        }
    }

    /// Whether the stream takes the spreading path (several sources, or a `--source-port`
    /// range).
    pub fn spreads(&self) -> bool {
        self.spread
    }

    /// [`ProbeStream::next_probe`] on the path `SPREAD` (which must be [`ProbeStream::spreads`]).
    #[inline]
    fn next<const SPREAD: bool>(&mut self, buf: &mut [u8]) -> Option<(usize, IpAddr, u16, ProbeVersion)> {
        let (dst, port, version) = self.step()?;
        let n = self.write::<SPREAD>(buf, dst, port, version);
        if n > 0 {
            return Some((n, dst, port, version));
        }
        self.next_probe_after_skip::<SPREAD>(buf)
    }

    /// [`ProbeStream::next_probe`] after a probe that could not be written (no source address of
    /// its target's family): goes on to the next probe that can.
    #[cold]
    #[inline(never)]
    fn next_probe_after_skip<const SPREAD: bool>(
        &mut self,
        buf: &mut [u8],
    ) -> Option<(usize, IpAddr, u16, ProbeVersion)> {
        loop {
            let (dst, port, version) = self.step()?;
            let n = self.write::<SPREAD>(buf, dst, port, version);
            if n > 0 {
                return Some((n, dst, port, version));
            }
        }
    }

    /// Fills one frame slot of the send loop on the path `SPREAD`: the probe's length, or 0 at
    /// the end of the stream (and `done` set).
    #[inline(always)]
    fn fill<const SPREAD: bool>(&mut self, slot: &mut [u8], done: &mut bool) -> usize {
        match self.next::<SPREAD>(slot) {
            Some((n, ..)) => n,
            None => {
                *done = true;
                0
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
    fn write<const SPREAD: bool>(&self, buf: &mut [u8], dst: IpAddr, port: u16, version: ProbeVersion) -> usize {
        match (dst, self.src_v4) {
            // The common case, without the generic hash and template search.
            (IpAddr::V4(d), Some(IpAddr::V4(s))) => {
                if SPREAD {
                    // The hash over the key source; the source the probe leaves from is picked
                    // from it (the receiver does the same).
                    let tag = self.validator.tag_v4(s.octets(), d.octets(), port, version);
                    let n = self.builder.write_v4_from(buf, source_index(&tag, self.n_v4), d, port, version, &tag);
                    if self.trace.is_some() && n > 0 {
                        self.trace_patch(&mut buf[..n], &tag);
                    }
                    n
                } else {
                    let tag = self.validator.tag_v4_default_ports(s.octets(), d.octets(), port, version);
                    let n = self.builder.write_v4(buf, d, port, version, &tag);
                    if self.trace.is_some() && n > 0 {
                        self.trace_patch(&mut buf[..n], &tag);
                    }
                    n
                }
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
        let n = match self.builder.source_count(dst.is_ipv4()) {
            1 => self.builder.write(buf, dst, port, version, &tag),
            k => self.builder.write_from(buf, source_index(&tag, k), dst, port, version, &tag),
        };
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
        // The path is chosen once per batch: each closure is compiled for its own path.
        let filled = if stream.spread {
            tx.send_batch(batch, &mut |slot: &mut [u8]| stream.fill::<true>(slot, &mut done))
        } else {
            tx.send_batch(batch, &mut |slot: &mut [u8]| stream.fill::<false>(slot, &mut done))
        };
        let sent = match filled {
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
mod tests;
