//! The scan pipeline: the arguments ([`args::ScanArgs`]) resolve into a finished
//! [`config::ScanConfig`], which builds the workers ([`workers`]), which
//! [`pipeline::run_with`] runs:
//!
//! ```text
//!  permutation cursor ─► send loop(s) ─► Transmit (AF_PACKET TX ring)       (one thread per sender)
//!  Receive (AF_PACKET RX ring) ─► validate ─► dedup ─► classify ─► sink    (one receiver thread)
//!  atomic counters ─► monitor (progress on stderr, --status-updates-file)    (one thread)
//!  atomic counters + receiver's flushes ─► checkpoint (resume state)         (one thread)
//! ```
//!
//! The transport is whatever [`pipeline::run_with`] is given: the AF_PACKET rings for
//! `mpscan scan`, the memory back ends (`crate::net::MemoryWire`) in tests without root.
//!
//! The receiver starts before the first probe and runs until the cooldown after the last one
//! ends. SIGINT/SIGTERM stop the senders (the receiver still waits out the cooldown); a second
//! signal ends the cooldown too. Results already written are kept in every case.

pub mod args;
pub mod checkpoint;
pub mod config;
pub mod counters;
pub mod dedup;
pub mod definition;
pub mod dry_run;
pub mod flap;
pub mod monitor;
pub mod pipeline;
pub mod recv;
pub mod resume;
pub mod send;
pub mod state;
pub mod status;
pub mod stop;
pub mod workers;

pub use args::ScanArgs;
pub use pipeline::{run_receiving, run_with, Outcome};

use config::ScanConfig;
use std::process::ExitCode;
use std::sync::Arc;
use stop::Stop;

/// Exit code of a scan stopped by a signal (its results and metadata are complete up to then).
pub const EXIT_INTERRUPTED: u8 = 3;

/// Once a scan's (or trace's) sockets and files are open, keeps only CAP_NET_RAW
/// (`crate::net::caps::keep_only_net_raw`, silently); a failure to drop is a warning, not a stop.
pub fn shed_privileges() {
    if let Err(e) = crate::net::caps::keep_only_net_raw() {
        eprintln!("mpscan: warning: could not drop root's other capabilities ({e}); scanning with them");
    }
}

/// Runs `mpscan scan`.
pub fn run(args: &ScanArgs) -> anyhow::Result<ExitCode> {
    let config = ScanConfig::resolve(args)?;
    if config.dry_run {
        dry_run::print(&config)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Open everything that can fail before the first probe: the output, the state, the sockets.
    let output = config.output()?;
    let transport = config.transport()?;
    shed_privileges();
    let stop = Arc::new(Stop::with_max_rows(config.max_results));
    let signals = stop.on_signals()?;
    let outcome = pipeline::run_with(&config, transport, output, &stop);
    signals.close();
    match outcome? {
        Outcome::Finished => Ok(ExitCode::SUCCESS),
        Outcome::Interrupted => {
            eprintln!("mpscan: interrupted; results and metadata written up to here{}", config.resume_hint());
            Ok(ExitCode::from(EXIT_INTERRUPTED))
        }
        Outcome::Limited(why) => {
            if !config.quiet {
                let more = if why == stop::Why::MaxRuntime { config.resume_hint() } else { String::new() };
                eprintln!("mpscan: ended at --{}, as asked; results and metadata written{more}", why.label());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
