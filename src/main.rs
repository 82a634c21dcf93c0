//! The `mpscan` binary: parses the command line and hands over to the library.
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "mpscan", version, about = "Internet-wide Multipath TCP deployment scanner",
    long_about = "Internet-wide Multipath TCP deployment scanner.\n\nSends TCP SYNs carrying MP_CAPABLE \
    (v1, v0 or both) statelessly over a permuted address space, validates every answer, and tells real \
    MPTCP servers from middleboxes that echo, mirror or strip the option.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scan address ranges for Multipath TCP support (zmap-style, stateless).
    Scan(Box<mpscan::cli::ScanArgs>),
    /// Confirm scan candidates over real MPTCP connections (Linux's own stack, v1 only).
    Verify(Box<mpscan::verify::VerifyArgs>),
    /// Bring the namespace lab up or down, or show its status.
    Lab(mpscan::lab::LabArgs),
    /// Summarise result CSVs into the study's headline tables.
    Summary(mpscan_analysis::cli::SummaryArgs),
    /// Compare two scans: servers that appeared, disappeared or changed.
    Diff(mpscan_analysis::cli::DiffArgs),
    /// Write a synthetic result CSV with the class mix of the 2018 study.
    Synth(mpscan_analysis::cli::SynthArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Scan(a) => mpscan::scan::run(a),
        Command::Verify(a) => mpscan::verify::run(a),
        Command::Lab(a) => mpscan::lab::run(a).map(|()| ExitCode::SUCCESS),
        Command::Summary(a) => mpscan_analysis::cli::summary(a).map(|()| ExitCode::SUCCESS),
        Command::Diff(a) => mpscan_analysis::cli::diff(a).map(|()| ExitCode::SUCCESS),
        Command::Synth(a) => mpscan_analysis::cli::synth(a).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mpscan: {e:#}");
            ExitCode::from(1)
        }
    }
}
