//! When the scan's threads stop early: two flags, apart from the counters (which only count).
//!
//! The first SIGINT/SIGTERM, an output error or a failed sender stops the senders; the receiver
//! still waits out the cooldown, so late answers to probes already sent are kept. A second
//! signal, or the end of the cooldown, stops the receiver too. Each loop reads its flag once per
//! batch.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

/// The stop flags of one scan.
#[derive(Debug, Default)]
pub struct Stop {
    /// Senders: stop now (signal, output error, a sender failed).
    pub sending: AtomicBool,
    /// Receiver: stop now (end of the cooldown, second signal).
    pub receiving: AtomicBool,
}

impl Stop {
    /// Stops the senders.
    pub fn stop_sending(&self) {
        self.sending.store(true, Relaxed);
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
    }

    #[test]
    fn after_an_error_one_signal_ends_the_cooldown() {
        // A sender that failed stops the others; a signal after that still ends the cooldown.
        let s = Stop::default();
        s.stop_sending();
        assert!(!s.receiving_stopped());
        s.signal();
        assert!(s.receiving_stopped());
    }
}
