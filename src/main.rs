//! The `mpscan` binary: parses the command line and hands over to the library.
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "mpscan",
    version,
    about = "Internet-wide Multipath TCP deployment scanner",
    long_about = "Internet-wide Multipath TCP deployment scanner.\n\nSends TCP SYNs carrying MP_CAPABLE \
    (v1, v0 or both) statelessly over a permuted address space, validates every answer, and tells real \
    MPTCP servers from middleboxes that echo, mirror or strip the option."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scan address ranges for Multipath TCP support (zmap-style, stateless).
    Scan(Box<mpscan::scan::ScanArgs>),
    /// Find where on the path MPTCP is lost: TTL-limited MP_CAPABLE SYNs, router quotes compared.
    Trace(Box<mpscan::trace::TraceArgs>),
    /// Confirm scan candidates over real MPTCP connections (Linux's own stack, v1 only).
    Verify(Box<mpscan::verify::VerifyArgs>),
    /// Bring the namespace lab up or down, or show its status.
    Lab(mpscan::lab::LabArgs),
    /// Summarise result CSVs into the study's headline tables.
    Summary(mpscan_analysis::cli::SummaryArgs),
    /// Compare two scans: servers that appeared, disappeared or changed.
    Diff(mpscan_analysis::cli::DiffArgs),
    /// A series of scans in time order: answers per scan, and the changes between consecutive ones.
    Trend(mpscan_analysis::cli::TrendArgs),
    /// Write a synthetic result CSV with the class mix of the 2018 study.
    Synth(mpscan_analysis::cli::SynthArgs),
    /// Rebuild a scan's rows from its --pcap recording with this mpscan's classifier (sends nothing).
    Reclassify(mpscan::reclassify::ReclassifyArgs),
    /// Join the result files of a sharded scan into one, adding up the shards' metadata.
    Merge(mpscan::output::merge::MergeArgs),
}

/// Exit code of a command line clap rejects (an unknown option, a value of the wrong type).
const EXIT_USAGE: u8 = 2;

/// A clap error as one line: its message lines joined, without the usage block.
fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let msg: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let msg = msg.iter().fold(String::new(), |acc, l| match (acc.is_empty(), l.starts_with("tip:")) {
        (true, _) => l.to_string(),
        (false, true) => format!("{acc}; {l}"),
        (false, false) => format!("{acc} {l}"),
    });
    format!("{} (see --help)", msg.strip_prefix("error: ").unwrap_or(&msg))
}

fn main() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        // --help, --version, and a bare `mpscan` (which prints the help).
        Err(e) if !e.use_stderr() || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            e.exit()
        }
        Err(e) => {
            eprintln!("mpscan: {}", one_line(&e));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mpscan: {}", one_line(&e));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let result = match &mut cli.command {
        Command::Scan(a) => {
            // A scan definition (--config) fills in what the command line leaves out.
            let sub = matches.subcommand_matches("scan").expect("the scan subcommand was parsed");
            let given = |id: &str| sub.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
            mpscan::scan::definition::apply(a, &given).and_then(|()| mpscan::scan::run(a))
        }
        Command::Trace(a) => mpscan::trace::run(a),
        Command::Verify(a) => mpscan::verify::run(a),
        Command::Lab(a) => mpscan::lab::run(a).map(|()| ExitCode::SUCCESS),
        Command::Summary(a) => mpscan_analysis::cli::summary(a).map(|()| ExitCode::SUCCESS),
        Command::Diff(a) => mpscan_analysis::cli::diff(a).map(|()| ExitCode::SUCCESS),
        Command::Trend(a) => mpscan_analysis::cli::trend(a).map(|()| ExitCode::SUCCESS),
        Command::Synth(a) => mpscan_analysis::cli::synth(a).map(|()| ExitCode::SUCCESS),
        Command::Reclassify(a) => mpscan::reclassify::run(a).map(|()| ExitCode::SUCCESS),
        Command::Merge(a) => mpscan::output::merge::run(a).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mpscan: {e:#}");
            ExitCode::from(1)
        }
    }
}
