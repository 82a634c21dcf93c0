//! When the scan's threads stop early: two flags and why, apart from the counters (which only
//! count).
//!
//! The first SIGINT/SIGTERM, an output error, a failed sender or `--max-runtime` stops the
//! senders; the receiver still waits out the cooldown, so late answers to probes already sent
//! are kept. A second signal, or the end of the cooldown, stops the receiver too; so does the
//! row that reaches `--max-results`. Each loop reads its flag once per batch.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;

/// Why the senders stopped before every probe was sent (the first reason wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Why {
    /// SIGINT or SIGTERM.
    Signal = 1,
    /// Writing results, receiving or a sender failed.
    Error = 2,
    /// `--max-runtime` elapsed.
    MaxRuntime = 3,
    /// `--max-results` rows were written.
    MaxResults = 4,
}

impl Why {
    /// The metadata's `end_reason` for a scan stopped for this reason.
    pub fn label(self) -> &'static str {
        match self {
            Why::Signal => "signal",
            Why::Error => "error",
            Why::MaxRuntime => "max-runtime",
            Why::MaxResults => "max-results",
        }
    }
}

/// The stop flags of one scan.
#[derive(Debug, Default)]
pub struct Stop {
    /// Senders: stop now (signal, output error, a sender failed, a limit).
    pub sending: AtomicBool,
    /// Receiver: stop now (end of the cooldown, second signal, `--max-results`).
    pub receiving: AtomicBool,
    why: AtomicU8,
    /// `--max-results`: the receiver writes no row past this many and stops the scan there.
    pub max_rows: Option<u64>,
}

impl Stop {
    /// Stop flags for a scan that ends by itself after `max_rows` rows.
    pub fn with_max_rows(max_rows: Option<u64>) -> Stop {
        Stop { max_rows, ..Stop::default() }
    }

    /// Stops the senders because of an error.
    pub fn stop_sending(&self) {
        self.stop_for(Why::Error);
    }

    /// Stops the senders for `why` (kept unless an earlier reason was given).
    pub fn stop_for(&self, why: Why) {
        let _ = self.why.compare_exchange(0, why as u8, Relaxed, Relaxed);
        self.sending.store(true, Relaxed);
    }

    /// Why the senders were stopped, if they were.
    pub fn why(&self) -> Option<Why> {
        match self.why.load(Relaxed) {
            1 => Some(Why::Signal),
            2 => Some(Why::Error),
            3 => Some(Why::MaxRuntime),
            4 => Some(Why::MaxResults),
            _ => None,
        }
    }

    /// Whether `rows` rows reach `--max-results`.
    #[inline]
    pub fn rows_reached(&self, rows: u64) -> bool {
        self.max_rows.is_some_and(|m| rows >= m)
    }

    /// Stops the receiver.
    pub fn stop_receiving(&self) {
        self.receiving.store(true, Relaxed);
    }

    /// Whether the senders were told to stop (the scan is then interrupted).
    pub fn sending_stopped(&self) -> bool {
        self.sending.load(Relaxed)
    }

    /// Whether the receiver was told to stop.
    pub fn receiving_stopped(&self) -> bool {
        self.receiving.load(Relaxed)
    }

    /// What a signal does: the first stops the senders, the next one the receiver too.
    pub fn signal(&self) {
        let _ = self.why.compare_exchange(0, Why::Signal as u8, Relaxed, Relaxed);
        if self.sending.swap(true, Relaxed) {
            self.stop_receiving();
        }
    }

    /// Calls [`Stop::signal`] on every SIGINT and SIGTERM until the returned handle is closed.
    pub fn on_signals(self: &Arc<Self>) -> anyhow::Result<signal_hook::iterator::Handle> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
        let handle = signals.handle();
        let stop = Arc::clone(self);
        std::thread::spawn(move || {
            for _ in signals.forever() {
                stop.signal();
            }
        });
        Ok(handle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_signal_stops_sending_the_second_receiving() {
        let s = Stop::default();
        assert!(!s.sending_stopped() && !s.receiving_stopped());
        s.signal();
        assert!(s.sending_stopped() && !s.receiving_stopped());
        s.signal();
        assert!(s.sending_stopped() && s.receiving_stopped());
        assert_eq!(s.why(), Some(Why::Signal));
    }

    #[test]
    fn the_first_reason_wins_and_limits_are_reasons() {
        let s = Stop::with_max_rows(Some(3));
        assert_eq!(s.why(), None);
        assert!(!s.rows_reached(2) && s.rows_reached(3));
        s.stop_for(Why::MaxRuntime);
        s.signal();
        assert_eq!(s.why(), Some(Why::MaxRuntime));
        assert!(s.receiving_stopped(), "the signal after a limit ends the cooldown");
        assert!(!Stop::default().rows_reached(u64::MAX));
    }

    #[test]
    fn after_an_error_one_signal_ends_the_cooldown() {
        // A sender that failed stops the others; a signal after that still ends the cooldown.
        let s = Stop::default();
        s.stop_sending();
        assert!(!s.receiving_stopped());
        s.signal();
        assert!(s.receiving_stopped());
        assert_eq!(s.why(), Some(Why::Error));
    }
}
