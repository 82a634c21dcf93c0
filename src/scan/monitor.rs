//! Progress on stderr: an indicatif bar when stderr is a terminal, a plain status line every few
//! seconds otherwise, nothing with `--quiet`; and the `--status-updates-file` lines, one a second
//! and a last one at the end ([`super::status`]). It only reads the atomic counters.

use super::counters::Counters;
use super::status::StatusFile;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Reports progress until `done` is set. `total` is the number of targets this shard sends to.
/// With `quiet`, only the status file (if any) is written.
pub fn monitor(counters: &Counters, total: u64, done: &AtomicBool, quiet: bool, mut status: Option<StatusFile>) {
    let start = Instant::now();
    if let Some(f) = status.as_mut() {
        f.begin(counters);
    }
    let tty = std::io::stderr().is_terminal();
    let status_line = |status: &mut Option<StatusFile>, last: bool| {
        let Some(f) = status.as_mut() else { return };
        if !last && !f.due() {
            return;
        }
        if let Err(e) = f.line(counters) {
            eprintln!("mpscan: warning: cannot write the status file ({e}); no more status lines");
            *status = None;
        }
    };
    let bar = (tty && !quiet).then(|| {
        let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} targets, {msg}, ETA {eta}")
                .unwrap()
                .progress_chars("=> "),
        );
        b
    });
    let mut last_line = Instant::now();
    let mut last_sent = 0u64;
    let mut last_t = Instant::now();
    let mut was_waiting = false;
    while !done.load(Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        status_line(&mut status, false);
        if quiet {
            continue;
        }
        let sent = Counters::get(&counters.sent);
        let now = Instant::now();
        let rate = (sent - last_sent) as f64 / now.duration_since(last_t).as_secs_f64().max(1e-6);
        // While a sender waits for the link: "link down, waiting (12 s of 60)" (scan::flap).
        let waiting = counters.link.waiting_text();
        let msg = match &waiting {
            Some(w) => format!("{sent} sent, {w}"),
            None => format!(
                "{} sent ({:.0} pps), {} received, {} rows, {} mptcp",
                sent,
                rate,
                Counters::get(&counters.received),
                Counters::get(&counters.rows),
                Counters::get(&counters.hits)
            ),
        };
        match &bar {
            Some(b) => {
                b.set_position(Counters::get(&counters.targets_done));
                b.set_message(msg);
                last_sent = sent;
                last_t = now;
            }
            None if last_line.elapsed() >= Duration::from_secs(5) || (waiting.is_some() && !was_waiting) => {
                eprintln!(
                    "mpscan: {:.0}s {}/{} targets, {msg}",
                    start.elapsed().as_secs_f64(),
                    Counters::get(&counters.targets_done),
                    total
                );
                last_line = Instant::now();
                last_sent = sent;
                last_t = now;
            }
            None => {}
        }
        was_waiting = waiting.is_some();
    }
    // The last line, after the receiver stopped: its counts are the metadata's.
    status_line(&mut status, true);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}
