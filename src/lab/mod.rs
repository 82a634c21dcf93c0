//! The lab: namespaces that stand for the Internet as a scan sees it (placeholder).
use clap::Args;

/// `mpscan lab ...` arguments.
#[derive(Debug, Args)]
pub struct LabArgs {}

/// Runs a lab command.
pub fn run(_a: &LabArgs) -> anyhow::Result<()> { anyhow::bail!("not yet") }
