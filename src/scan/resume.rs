//! `--resume STATE`: every check of a resumed scan, in one place, and what it carries over.
//!
//! `--resume STATE` is also the command of the first run: with no state file there yet (or one
//! the first run created but never saved into) and no output file, the scan starts afresh and
//! keeps its state in STATE, so a systemd unit or a job runner can restart one unchanging
//! command. With no state but an output file, it refuses: those rows' progress is unknown.
//!
//! A resume is refused before anything is opened or sent when it could not continue the same
//! scan: no output file to append to, a state file other than the one named, a file that is not
//! a state, another seed, another scan (any field of [`Identity`]), a scan that already finished,
//! Parquet output (written whole at the end, so nothing to append to) or a dry run (which would
//! overwrite the results with probes). The checks run in that order, so that every check of the
//! state file comes before the refusal of a dry run (docs/ERRORS.md relies on it).

use super::args::ScanArgs;
use super::counters::Counters;
use super::state::{self, Identity, ScanState};
use anyhow::bail;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;

/// The scan being continued: its state file and what that file held.
#[derive(Debug, Clone)]
pub struct Resume {
    /// The state file (`--resume`), written on as the scan goes on.
    pub path: PathBuf,
    /// The newest valid state it held.
    pub saved: ScanState,
}

impl Resume {
    /// Reads `--resume`, if given, after the checks that need only the arguments and the file.
    pub fn open(a: &ScanArgs) -> anyhow::Result<Option<Resume>> {
        let Some(path) = &a.resume else { return Ok(None) };
        if a.output_file().is_none() {
            bail!("--resume needs -o FILE: the rows of the interrupted scan are in its output file, and the new ones are appended there");
        }
        if let Some(s) = a.state_file.as_ref().filter(|s| *s != path) {
            bail!("--resume {} and --state-file {} differ: give only --resume", path.display(), s.display());
        }
        if !state::has_saved(path)? {
            if let Some(out) = a.output_file().filter(|o| o.exists() && !path.exists()) {
                bail!(
                    "--resume {}: no state file, but the output {} exists: give the state file the interrupted scan wrote, or move the output away to start afresh",
                    path.display(),
                    out.display()
                );
            }
            appendable(a)?;
            if !a.quiet {
                eprintln!(
                    "mpscan: --resume {}: no saved state yet; starting the scan and keeping its state there",
                    path.display()
                );
            }
            return Ok(None);
        }
        let saved = state::load(path)?;
        if let Some(seed) = a.seed.filter(|s| *s != saved.identity.seed) {
            bail!(
                "--resume: the state was saved by the scan with --seed {}, not {seed}; drop -e or give the same seed",
                saved.identity.seed
            );
        }
        Ok(Some(Resume { path: path.clone(), saved }))
    }

    /// The checks that need the resolved scan: it is the saved one, it has something left to
    /// send, and this run can append to its results.
    pub fn check(&self, now: &Identity, a: &ScanArgs) -> anyhow::Result<()> {
        state::check_identity(&self.saved.identity, now, &self.path)?;
        anyhow::ensure!(
            !self.saved.finished,
            "--resume {}: that scan already finished; nothing to resume",
            self.path.display()
        );
        appendable(a)
    }

    /// Puts the saved counters and each sender's position back, so that the scan goes on where
    /// it stopped and its metadata covers the whole scan.
    pub fn restore(&self, counters: &Counters) {
        let s = &self.saved;
        Counters::add(&counters.sent, s.sent);
        Counters::add(&counters.received, s.received);
        Counters::add(&counters.validated, s.validated);
        counters.link.carry(&s.link);
        for (t, p) in counters.senders.iter().enumerate() {
            p.position.store(s.positions.get(t).copied().unwrap_or(0), Relaxed);
            let done = s.targets_done.get(t).copied().unwrap_or(0);
            p.done.store(done, Relaxed);
            Counters::add(&counters.targets_done, done);
        }
    }
}

/// A scan run with `--resume` must be able to append to its results on the next run: a
/// streamed format (CSV or JSON lines) whose rows carry their key, not a dry run.
fn appendable(a: &ScanArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.output_format.appendable(),
        "--resume works with CSV or JSON-lines output only (a Parquet file is written whole at the end): drop --output-format parquet"
    );
    let layout = a.output_format.layout(a.output_fields.as_ref().map_or(&mpscan_schema::Col::ALL[..], |f| &f.0));
    anyhow::ensure!(
        layout.resumable(),
        "--resume needs the fields ip, port, probe and class in -f: a resumed scan reads them back"
    );
    anyhow::ensure!(
        !a.dry_run,
        "--resume with --dry-run: a dry run would overwrite the results in -o with probes; drop --dry-run"
    );
    Ok(())
}
