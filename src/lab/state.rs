//! What a lab run made, written down before it is made, so that `down` (or the next `up`, or
//! `down --all-stale` after a crash) removes exactly that and nothing else.
//!
//! Each run has a directory `/run/mpscan-lab/RUN/` holding `state.json` (namespaces and
//! processes), the ground truth, the targets and blocklist files and the responders' logs.
//! A process is recorded with its start time (field 22 of `/proc/PID/stat`), so that a PID the
//! kernel has since given to another process is never signalled.

use super::sys;
use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the runs' directories live.
pub const STATE_ROOT: &str = "/run/mpscan-lab";

/// A process, identified for sure: its PID and its start time in clock ticks since boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcRef {
    /// Process ID.
    pub pid: u32,
    /// Field 22 of `/proc/PID/stat`.
    pub start_time: u64,
}

impl ProcRef {
    /// The process `pid` as it is now, or `None` if there is no such process.
    pub fn of(pid: u32) -> Option<ProcRef> {
        let (start_time, _) = stat(pid)?;
        Some(ProcRef { pid, start_time })
    }

    /// This process.
    pub fn current() -> ProcRef {
        ProcRef::of(std::process::id()).expect("/proc/self/stat is readable")
    }

    /// Whether this very process still runs (same PID, same start time, not a zombie).
    pub fn alive(&self) -> bool {
        matches!(stat(self.pid), Some((t, state)) if t == self.start_time && state != 'Z' && state != 'X')
    }

    /// Kills the process with SIGKILL if it is still the one recorded. Returns whether it sent
    /// the signal.
    pub fn kill(&self) -> bool {
        self.alive() && sys::kill_pid(self.pid).is_ok()
    }
}

/// (start time, state letter) of `pid`, from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(u64, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: fields restart after
    // the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // `rest` starts at field 3 (state); start time is field 22.
    let start = fields.nth(22 - 4)?.parse().ok()?;
    Some((start, state))
}

/// A process the lab started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcEntry {
    /// What it is (`serve echo in mps-RUN-echo`).
    pub what: String,
    /// The process.
    pub proc: ProcRef,
}

/// Everything one lab run made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct LabState {
    /// The run name.
    pub run: String,
    /// The process whose lifetime the lab is tied to (a test holding a `Lab`, or an `up` that
    /// has not finished); `None` for a lab left up on purpose by `mpscan lab up`.
    pub owner: Option<ProcRef>,
    /// Whether `up` finished.
    pub complete: bool,
    /// Namespaces, in creation order (recorded just before each is created).
    pub namespaces: Vec<String>,
    /// Processes started in them.
    pub processes: Vec<ProcEntry>,
}

/// The directory of run `run`.
pub fn run_dir(run: &str) -> PathBuf {
    Path::new(STATE_ROOT).join(run)
}

/// Checks that `run` is a usable run name: 1 to 8 lowercase letters and digits (it goes into
/// namespace names and file paths).
pub fn check_run_name(run: &str) -> anyhow::Result<()> {
    if run.is_empty() || run.len() > 8 || !run.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
        bail!("bad lab name {run:?}: use 1 to 8 lowercase letters and digits");
    }
    Ok(())
}

impl LabState {
    /// The path of this run's state file.
    pub fn path(run: &str) -> PathBuf {
        run_dir(run).join("state.json")
    }

    /// Loads run `run`'s state, or `None` if there is none.
    pub fn load(run: &str) -> anyhow::Result<Option<LabState>> {
        let path = LabState::path(run);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes the state file (atomically: a crash leaves the old or the new one).
    pub fn save(&self) -> anyhow::Result<()> {
        let dir = run_dir(&self.run);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = dir.join("state.json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(self)? + "\n")?;
        std::fs::rename(&tmp, LabState::path(&self.run))?;
        Ok(())
    }

    /// The runs that have a state directory.
    pub fn runs() -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(STATE_ROOT)
            .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
            .unwrap_or_default();
        v.retain(|r| check_run_name(r).is_ok());
        v.sort();
        v
    }

    /// Whether nobody uses this lab any more: its owner died, or (for a lab left up on
    /// purpose) none of its processes runs.
    pub fn is_stale(&self) -> bool {
        match self.owner {
            Some(o) => !o.alive(),
            None => !self.processes.is_empty() && !self.processes.iter().any(|p| p.proc.alive()),
        }
    }

    /// Removes everything recorded: kills the processes that are still the recorded ones,
    /// deletes the namespaces that still exist, then the run directory. Carries on past
    /// failures and reports them all at the end.
    pub fn teardown(&self) -> anyhow::Result<()> {
        let mut errors = Vec::new();
        for p in &self.processes {
            p.proc.kill();
        }
        for ns in self.namespaces.iter().rev() {
            if namespace_exists(ns) {
                // Another process may be removing the same stale lab at the same time: a
                // namespace that is gone by now is not a failure.
                if let Err(e) = super::netns::delete(ns) {
                    if namespace_exists(ns) {
                        errors.push(format!("{ns}: {e:#}"));
                    }
                }
            }
        }
        let dir = run_dir(&self.run);
        if errors.is_empty() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    errors.push(format!("{}: {e}", dir.display()));
                }
            }
        }
        if !errors.is_empty() {
            bail!("lab {} not fully removed: {}", self.run, errors.join("; "));
        }
        Ok(())
    }
}

/// Whether namespace `name` exists (as a name under /run/netns).
pub fn namespace_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_ref_of_self_and_of_nothing() {
        let me = ProcRef::current();
        assert!(me.alive());
        assert!(!ProcRef { start_time: me.start_time + 1, ..me }.alive(), "a recycled PID is not us");
        assert!(ProcRef::of(u32::MAX).is_none());
    }

    #[test]
    fn dead_child_is_not_alive() {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let r = ProcRef::of(c.id()).unwrap();
        c.wait().unwrap();
        assert!(!r.alive());
        assert!(!r.kill());
    }

    #[test]
    fn run_names() {
        for ok in ["a", "t1", "abcd1234"] {
            check_run_name(ok).unwrap();
        }
        for bad in ["", "A", "a-b", "../x", "abcdefghi", "a b"] {
            assert!(check_run_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn staleness() {
        let mut s = LabState { run: "x".into(), ..LabState::default() };
        assert!(!s.is_stale(), "nothing recorded yet: not stale");
        s.owner = Some(ProcRef::current());
        assert!(!s.is_stale());
        s.owner = Some(ProcRef { pid: u32::MAX, start_time: 1 });
        assert!(s.is_stale());
        s.owner = None;
        s.processes.push(ProcEntry { what: "gone".into(), proc: ProcRef { pid: u32::MAX, start_time: 1 } });
        assert!(s.is_stale());
        s.processes.push(ProcEntry { what: "me".into(), proc: ProcRef::current() });
        assert!(!s.is_stale());
    }
}
