//! The send loop: one per sender thread, flat on purpose so that it reads line by line.
//!
//! For each batch: ask the rate limiter for the batch's tokens, then let the transmit back end
//! fill its free slots straight from the probe stream (target from the permutation cursor,
//! per-probe values from the hash, frame from the template), and hand them to the kernel in one
//! call. No allocation, no lock, no per-probe syscall.

use super::counters::Counters;
use crate::net::Transmit;
use crate::probe::{ProbeBuilder, ProbeVersion};
use crate::targets::{Cursor, TargetSpace};
use crate::validate::Validator;
use governor::{Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::Ordering::Relaxed;
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
    next_version: usize,
    next_repeat: u32,
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
            current: None,
            next_version: 0,
            next_repeat: 0,
            targets_done: 0,
        }
    }

    /// The cursor's position (for resume).
    pub fn position(&self) -> u64 {
        self.cursor.position()
    }

    /// Writes the next probe into `buf` and returns its length and its target, or `None` at the
    /// end of the stream.
    #[inline]
    pub fn next_probe(&mut self, buf: &mut [u8]) -> Option<(usize, IpAddr, u16, ProbeVersion)> {
        loop {
            if self.current.is_none() {
                let index = self.cursor.next()?;
                self.current = Some(self.space.get(index));
                self.next_version = 0;
                self.next_repeat = 0;
            }
            let (dst, port) = self.current.unwrap();
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
            let n = match (dst, self.src_v4) {
                // The common case, without the generic hash and template search.
                (IpAddr::V4(d), Some(IpAddr::V4(s))) => {
                    let tag = self.validator.tag_v4(s.octets(), d.octets(), port, version);
                    self.builder.write_v4(buf, d, port, version, &tag)
                }
                _ => {
                    let src = if dst.is_ipv4() { self.src_v4 } else { self.src_v6 };
                    let Some(src) = src else { continue };
                    let tag = self.validator.tag(src, dst, port, version);
                    self.builder.write(buf, dst, port, version, &tag)
                }
            };
            if n > 0 {
                return Some((n, dst, port, version));
            }
        }
    }
}

/// Sends the whole stream through `tx` at `rate` packets per second (0: unlimited), stopping
/// early when `counters.stop_sending` is set. Returns the transmit error, if any.
pub fn send_loop(tx: &mut dyn Transmit, stream: &mut ProbeStream<'_>, rate: u64, counters: &Counters) -> std::io::Result<()> {
    // Batches of about a millisecond's worth of packets keep the rate smooth at any speed.
    let batch = if rate == 0 { MAX_BATCH } else { (rate / 1000).clamp(1, MAX_BATCH as u64) as usize };
    let limiter = (rate > 0).then(|| {
        let per_sec = NonZeroU32::new(rate.min(u32::MAX as u64) as u32).unwrap();
        RateLimiter::direct(Quota::per_second(per_sec).allow_burst(NonZeroU32::new(batch as u32).unwrap()))
    });
    let mut done = false;
    while !done && !counters.stop_sending.load(Relaxed) {
        if let Some(l) = &limiter {
            let n = NonZeroU32::new(batch as u32).unwrap();
            loop {
                match l.check_n(n) {
                    Ok(Ok(())) => break,
                    Ok(Err(not_until)) => {
                        let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
                        spin_sleep(wait);
                    }
                    Err(_) => unreachable!("batch never exceeds the burst size"),
                }
            }
        }
        let before = stream.targets_done;
        let sent = tx.send_batch(batch, &mut |slot: &mut [u8]| match stream.next_probe(slot) {
            Some((n, ..)) => n,
            None => {
                done = true;
                0
            }
        })?;
        Counters::add(&counters.sent, sent as u64);
        Counters::add(&counters.targets_done, stream.targets_done - before);
    }
    tx.flush()
}

/// Sleeps for `d`, precisely: the OS sleep for most of it, a yield loop for the rest.
fn spin_sleep(d: Duration) {
    let end = Instant::now() + d;
    if d > Duration::from_micros(200) {
        std::thread::sleep(d - Duration::from_micros(100));
    }
    while Instant::now() < end {
        std::thread::yield_now();
    }
}
