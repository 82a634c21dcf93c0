//! The scan pipeline (placeholder).
use std::process::ExitCode;

/// Runs `mpscan scan`.
pub fn run(_a: &crate::cli::ScanArgs) -> anyhow::Result<ExitCode> { anyhow::bail!("not yet") }
