//! The resume state: where each sender's cursor stands, and the scan's counters, written every
//! half second and on exit, so that a scan stopped by a signal, a crash or a power cut goes on
//! where it stopped (`--resume STATE`).
//!
//! The file is written in place into one of two fixed-size slots, alternately, each slot a JSON
//! document padded to [`SLOT_LEN`] bytes and carrying a sequence number and a checksum. A torn
//! write (power cut) spoils at most the slot being written, and the other still holds the
//! previous state; an in-place write of an existing block needs no new disk space, so the state
//! is still saved when the results have filled the disk.
//!
//! A saved position is exact for what the kernel accepted up to the save; after a hard kill at
//! most the probes of the last interval are sent again, and the duplicate filter (seeded from the
//! rows already in the CSV on resume) keeps them from becoming second rows.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Bytes per slot.
pub const SLOT_LEN: usize = 8192;

/// What identifies a scan: resuming with any of these changed would probe other targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Permutation and validation seed.
    pub seed: u64,
    /// Shards.
    pub shards: u32,
    /// This shard.
    pub shard: u32,
    /// Sender threads (each has its own cursor).
    pub threads: u32,
    /// (address, port) pairs in the target space.
    pub targets_total: u64,
    /// Probe versions.
    pub versions: Vec<String>,
    /// Probes per target and version.
    pub probes: u32,
    /// Ports.
    pub ports: Vec<u16>,
    /// Target limit.
    pub max_targets: Option<u64>,
    /// `mpscan trace`'s `--max-ttl` (absent for a scan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ttl: Option<u8>,
    /// Every source address (`-S`, or the route's), in index order: the keyed hash picks each
    /// probe's source by its index, so a resume from other sources would send the rest of the
    /// scan from other addresses than its metadata says. Absent in states of earlier versions
    /// (not checked then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<String>>,
    /// The source-port range `[low, high]` (absent in states of earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ports: Option<[u16; 2]>,
}

/// One saved state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanState {
    /// Increases with every save; the slot with the highest valid one wins.
    pub seq: u64,
    /// The scan.
    pub identity: Identity,
    /// Cycle position of each sender's cursor (what it has handed to the kernel).
    pub positions: Vec<u64>,
    /// Targets each sender has finished.
    pub targets_done: Vec<u64>,
    /// Every sender reached the end of its cursor.
    pub sending_complete: bool,
    /// Counters carried across resumes.
    pub sent: u64,
    /// Frames received.
    pub received: u64,
    /// Frames validated.
    pub validated: u64,
    /// Duplicates.
    pub duplicates: u64,
    /// Rejections by reason.
    pub invalid: BTreeMap<String, u64>,
    /// Set once the scan ended normally (nothing left to resume).
    pub finished: bool,
    /// Send errors, stalls and probes sent again, carried across resumes (absent from states
    /// written before they were counted).
    #[serde(default)]
    pub link: mpscan_schema::metadata::LinkReport,
}

/// The state file, open for writing.
pub struct StateFile {
    file: File,
    path: PathBuf,
    seq: u64,
}

impl StateFile {
    /// Creates (or truncates) the state file and reserves both slots, failing at once if it
    /// cannot be written.
    pub fn create(path: &Path) -> anyhow::Result<StateFile> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| anyhow::anyhow!("cannot write the state file {}: {e}", path.display()))?;
        file.write_all(&[b' '; 2 * SLOT_LEN])
            .and_then(|()| file.sync_all())
            .map_err(|e| anyhow::anyhow!("cannot write the state file {}: {e}", path.display()))?;
        Ok(StateFile { file, path: path.to_path_buf(), seq: 0 })
    }

    /// Opens an existing state file to continue writing after `state`.
    pub fn reopen(path: &Path, state: &ScanState) -> anyhow::Result<StateFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| anyhow::anyhow!("cannot write the state file {}: {e}", path.display()))?;
        Ok(StateFile { file, path: path.to_path_buf(), seq: state.seq })
    }

    /// Saves `state` into the older slot (and flushes it to disk).
    pub fn save(&mut self, state: &mut ScanState) -> anyhow::Result<()> {
        self.seq += 1;
        state.seq = self.seq;
        let body = serde_json::to_string(state)?;
        let doc = format!("mpscan-state {:016x} {body}", fnv(body.as_bytes()));
        anyhow::ensure!(doc.len() < SLOT_LEN, "state too large for its slot ({} bytes)", doc.len());
        let mut slot = doc.into_bytes();
        slot.resize(SLOT_LEN - 1, b' ');
        slot.push(b'\n');
        let at = (self.seq % 2) * SLOT_LEN as u64;
        let r = self
            .file
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.file.write_all(&slot))
            .and_then(|()| self.file.sync_data());
        r.map_err(|e| anyhow::anyhow!("cannot write the state file {}: {e}", self.path.display()))
    }
}

/// Loads the newest valid state of a file.
pub fn load(path: &Path) -> anyhow::Result<ScanState> {
    let mut buf = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut buf))
        .map_err(|e| anyhow::anyhow!("cannot read the state file {}: {e}", path.display()))?;
    let mut best: Option<ScanState> = None;
    for slot in buf.chunks(SLOT_LEN) {
        // A slot is `mpscan-state <fnv64 hex> <json>` padded with spaces.
        let Ok(text) = std::str::from_utf8(slot) else { continue };
        let Some(rest) = text.strip_prefix("mpscan-state ") else { continue };
        let Some((check, body)) = rest.split_once(' ') else { continue };
        let body = body.trim_end();
        if u64::from_str_radix(check, 16).ok() != Some(fnv(body.as_bytes())) {
            continue;
        }
        let Ok(s) = serde_json::from_str::<ScanState>(body) else { continue };
        if best.as_ref().is_none_or(|b| s.seq > b.seq) {
            best = Some(s);
        }
    }
    best.ok_or_else(|| {
        anyhow::anyhow!("{} is not an mpscan state file (or both its slots are damaged)", path.display())
    })
}

/// Whether `path` holds a state to resume: false when there is no such file, or when it is
/// the blank file [`StateFile::create`] writes before the first save (a scan that was stopped
/// before it saved anything starts afresh). A file with anything else in it is for [`load`] to
/// read or refuse.
pub fn has_saved(path: &Path) -> anyhow::Result<bool> {
    let mut buf = Vec::new();
    match File::open(path).and_then(|mut f| f.read_to_end(&mut buf)) {
        Ok(_) => Ok(buf.iter().any(|&b| b != b' ')),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(anyhow::anyhow!("cannot read the state file {}: {e}", path.display())),
    }
}

/// FNV-1a, 64 bits: enough to tell a torn slot from a whole one.
fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| (h ^ x as u64).wrapping_mul(0x0100_0000_01b3))
}

/// How a resume error names the TTL range: a scan has none.
fn ttls(max_ttl: Option<u8>) -> String {
    max_ttl.map_or("none (a scan, not a trace)".to_string(), |m| m.to_string())
}

/// Checks that a saved scan is the one the arguments describe; the error names what differs.
pub fn check_identity(saved: &Identity, now: &Identity, path: &Path) -> anyhow::Result<()> {
    // A state of an earlier version does not record the sources: whatever they are now agrees.
    let opt_list = |l: &Option<Vec<String>>| l.as_ref().map_or("-".to_string(), |l| l.join(","));
    let saved_or =
        |saved: &Option<Vec<String>>, now: &Option<Vec<String>>| opt_list(if saved.is_some() { saved } else { now });
    let ports = |p: Option<[u16; 2]>| p.map_or("-".to_string(), |[lo, hi]| format!("{lo}-{hi}"));
    let saved_ports = |saved: Option<[u16; 2]>, now: Option<[u16; 2]>| ports(saved.or(now));
    let diffs: Vec<String> = [
        ("--seed", saved.seed.to_string(), now.seed.to_string()),
        ("--shards", saved.shards.to_string(), now.shards.to_string()),
        ("--shard", saved.shard.to_string(), now.shard.to_string()),
        ("--sender-threads", saved.threads.to_string(), now.threads.to_string()),
        ("targets (after block/allow lists)", saved.targets_total.to_string(), now.targets_total.to_string()),
        ("--mptcp-version", saved.versions.join(","), now.versions.join(",")),
        ("--probes", saved.probes.to_string(), now.probes.to_string()),
        ("--port", format!("{:?}", saved.ports), format!("{:?}", now.ports)),
        ("--max-targets", format!("{:?}", saved.max_targets), format!("{:?}", now.max_targets)),
        ("--max-ttl", ttls(saved.max_ttl), ttls(now.max_ttl)),
        ("-S (sources)", saved_or(&saved.sources, &now.sources), opt_list(&now.sources)),
        ("--source-port", saved_ports(saved.source_ports, now.source_ports), ports(now.source_ports)),
    ]
    .into_iter()
    .filter(|(_, a, b)| a != b)
    .map(|(what, a, b)| format!("{what} was {a}, now {b}"))
    .collect();
    if diffs.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "--resume {}: this is a different scan ({}); run the same command as the interrupted scan",
            path.display(),
            diffs.join("; ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> ScanState {
        ScanState {
            seq: 0,
            identity: Identity {
                seed: 1,
                shards: 1,
                shard: 0,
                threads: 1,
                targets_total: 100,
                versions: vec!["v1".into()],
                probes: 1,
                ports: vec![443],
                max_targets: None,
                max_ttl: None,
                sources: Some(vec!["192.0.2.2".into()]),
                source_ports: Some([32768, 65535]),
            },
            positions: vec![10],
            targets_done: vec![9],
            sending_complete: false,
            sent: 9,
            received: 3,
            validated: 3,
            duplicates: 0,
            invalid: BTreeMap::new(),
            finished: false,
            link: Default::default(),
        }
    }

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("mpscan-state-{}-{name}", std::process::id()))
    }

    #[test]
    fn newest_slot_wins_and_a_torn_slot_is_ignored() {
        let p = tmp("slots");
        let mut f = StateFile::create(&p).unwrap();
        let mut s = state();
        f.save(&mut s).unwrap();
        s.positions = vec![20];
        f.save(&mut s).unwrap();
        assert_eq!(load(&p).unwrap().positions, vec![20]);
        // Tear the newest slot (seq 2 lives in slot 0): the previous state survives.
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[30] ^= 0x55;
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(load(&p).unwrap().positions, vec![10]);
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn only_a_saved_state_is_one_to_resume() {
        let p = tmp("saved");
        assert!(!has_saved(&p).unwrap(), "no file");
        let mut f = StateFile::create(&p).unwrap();
        assert!(!has_saved(&p).unwrap(), "created, never saved");
        f.save(&mut state()).unwrap();
        assert!(has_saved(&p).unwrap());
        std::fs::write(&p, "hello").unwrap();
        assert!(has_saved(&p).unwrap(), "garbage is for load to refuse");
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let p = tmp("garbage");
        std::fs::write(&p, "hello").unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("not an mpscan state file"), "{e}");
        std::fs::remove_file(&p).unwrap();
        assert!(load(&p).unwrap_err().to_string().contains("cannot read"));
    }

    #[test]
    fn identity_differences_are_named() {
        let a = state().identity;
        let mut b = a.clone();
        assert!(check_identity(&a, &b, Path::new("s")).is_ok());
        b.seed = 2;
        b.ports = vec![80];
        let e = check_identity(&a, &b, Path::new("s")).unwrap_err().to_string();
        assert!(e.contains("--seed was 1, now 2") && e.contains("--port"), "{e}");
        // A trace's state is not a scan's, nor one of another --max-ttl; a scan's state keeps
        // its old form (no max_ttl field).
        let trace = Identity { max_ttl: Some(8), ..a.clone() };
        let e = check_identity(&a, &trace, Path::new("s")).unwrap_err().to_string();
        assert!(e.contains("--max-ttl was none (a scan, not a trace), now 8"), "{e}");
        let e = check_identity(&trace, &Identity { max_ttl: Some(9), ..a.clone() }, Path::new("s")).unwrap_err();
        assert!(e.to_string().contains("--max-ttl was 8, now 9"), "{e}");
        assert!(!serde_json::to_string(&a).unwrap().contains("max_ttl"));
        // Other sources or source ports: another scan. A state of an earlier version (neither
        // recorded) agrees with any.
        let more = Identity { sources: Some(vec!["192.0.2.2".into(), "192.0.2.3".into()]), ..a.clone() };
        let e = check_identity(&a, &more, Path::new("s")).unwrap_err().to_string();
        assert!(e.contains("-S (sources) was 192.0.2.2, now 192.0.2.2,192.0.2.3"), "{e}");
        let ports = Identity { source_ports: Some([40000, 40999]), ..a.clone() };
        let e = check_identity(&a, &ports, Path::new("s")).unwrap_err().to_string();
        assert!(e.contains("--source-port was 32768-65535, now 40000-40999"), "{e}");
        let old = Identity { sources: None, source_ports: None, ..a.clone() };
        assert!(check_identity(&old, &more, Path::new("s")).is_ok());
        let old_json = serde_json::to_string(&old).unwrap();
        assert!(!old_json.contains("sources") && serde_json::from_str::<Identity>(&old_json).unwrap() == old);
    }
}
