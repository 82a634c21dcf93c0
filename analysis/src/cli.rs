//! Command-line arguments of the analysis commands (`summary`, `diff`, `synth`).
use clap::Args;

/// `mpscan summary`: the headline table of one scan (its shards).
#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// Result CSVs of one scan (all shards).
    #[arg(required = true)]
    pub csv: Vec<std::path::PathBuf>,
}

/// `mpscan diff`: change between two scans.
#[derive(Debug, Args)]
pub struct DiffArgs {
    pub old: std::path::PathBuf,
    pub new: std::path::PathBuf,
}

/// `mpscan synth`: synthetic result CSVs.
#[derive(Debug, Args)]
pub struct SynthArgs {
    #[arg(long)]
    pub rows: u64,
}

pub fn summary(_a: &SummaryArgs) -> anyhow::Result<()> { anyhow::bail!("not yet") }
pub fn diff(_a: &DiffArgs) -> anyhow::Result<()> { anyhow::bail!("not yet") }
pub fn synth(_a: &SynthArgs) -> anyhow::Result<()> { anyhow::bail!("not yet") }
