//! The resume checkpoint: what goes into the state file ([`super::state`]) while the scan runs
//! and when it ends.
//!
//! A position is saved only once the answers to its probes have had the cooldown to arrive and
//! a successful flush has put their rows in the file, so that a hard kill (or a full disk) loses
//! no row: a resume sends those last probes again instead, and the duplicate filter keeps them
//! from becoming second rows.

use super::counters::Counters;
use super::recv::Published;
use super::state::{Identity, ScanState, StateFile};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Cursor positions and finished-target counts of every sender.
pub type Progress = (Vec<u64>, Vec<u64>);

/// How often the state is saved while the scan runs.
pub const SAVE_INTERVAL: Duration = Duration::from_millis(500);

/// Slack on top of the cooldown before a position counts as settled.
const MARGIN: Duration = Duration::from_millis(200);

/// The senders' progress now.
pub fn progress(counters: &Counters) -> Progress {
    (
        counters.senders.iter().map(|p| p.position.load(Relaxed)).collect(),
        counters.senders.iter().map(|p| p.done.load(Relaxed)).collect(),
    )
}

/// Writes the scan's state to its file.
pub struct Checkpointer {
    file: StateFile,
    identity: Identity,
    cooldown: Duration,
}

impl Checkpointer {
    /// A checkpointer of the scan `identity`, whose answers arrive within `cooldown`.
    pub fn new(file: StateFile, identity: Identity, cooldown: Duration) -> Checkpointer {
        Checkpointer { file, identity, cooldown }
    }

    /// The state with the senders at `at`, the counters now and the receiver's last
    /// published counts.
    fn snapshot(&self, counters: &Counters, published: &Published, at: Progress, finished: bool) -> ScanState {
        let p = published.lock().map(|p| p.clone()).unwrap_or_default();
        let (positions, targets_done) = at;
        ScanState {
            seq: 0,
            identity: self.identity.clone(),
            positions,
            targets_done,
            sending_complete: counters.senders.iter().all(|p| p.complete.load(Relaxed)),
            sent: Counters::get(&counters.sent),
            received: Counters::get(&counters.received),
            validated: Counters::get(&counters.validated),
            duplicates: p.duplicates,
            invalid: p.invalid,
            finished,
            link: counters.link.report(),
        }
    }

    /// Saves the state with the senders at `at`.
    pub fn save(
        &mut self,
        counters: &Counters,
        published: &Published,
        at: Progress,
        finished: bool,
    ) -> anyhow::Result<()> {
        let mut state = self.snapshot(counters, published, at, finished);
        self.file.save(&mut state)
    }

    /// Saves the settled progress every [`SAVE_INTERVAL`] until `done` is set, and returns the
    /// last settled progress: the positions whose answers had the cooldown to arrive before the
    /// receiver's last successful flush.
    pub fn run(&mut self, counters: &Counters, published: &Published, done: &AtomicBool) -> anyhow::Result<Progress> {
        let mut history = VecDeque::from([(Instant::now(), progress(counters))]);
        let mut settled = history[0].1.clone();
        while !done.load(Relaxed) {
            std::thread::sleep(SAVE_INTERVAL);
            history.push_back((Instant::now(), progress(counters)));
            let durable = published.lock().ok().and_then(|p| p.durable_at);
            while let (Some((t, _)), Some(d)) = (history.front(), durable) {
                if *t + self.cooldown + MARGIN > d {
                    break;
                }
                settled = history.pop_front().unwrap().1;
            }
            // A sender in a stall has published a position before its untaken frames: never save
            // past it.
            super::flap::floor(&mut settled, &progress(counters));
            self.save(counters, published, settled.clone(), false)?;
        }
        Ok(settled)
    }
}
