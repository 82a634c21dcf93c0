//! The scan's metadata JSON: the full configuration (seed and shard included), times, and every
//! counter, so that a result file can be judged and reproduced.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The configuration as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigRecord {
    /// Target arguments as given.
    pub targets: Vec<String>,
    /// Ports probed.
    pub ports: Vec<u16>,
    /// Packets per second asked (0: unlimited).
    pub rate: u64,
    /// `v0`/`v1`.
    pub probe_versions: Vec<&'static str>,
    /// Probes per target and version.
    pub probes_per_target: u32,
    /// Seconds of cooldown.
    pub cooldown_secs: f64,
    /// The seed.
    pub seed: u64,
    /// Number of shards.
    pub shards: u32,
    /// This shard.
    pub shard: u32,
    /// Sender threads.
    pub sender_threads: u32,
    /// Interface.
    pub interface: String,
    /// Source address(es).
    pub source_ip: Vec<String>,
    /// Gateway MAC (of IPv6 probes too, unless `gateway_mac6` is given).
    pub gateway_mac: String,
    /// The IPv6 router's MAC, when a scan of both families leaves through two routers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_mac6: Option<String>,
    /// Blocklist used (`builtin`, a path, or null).
    pub blocklist: Option<String>,
    /// Allowlist used.
    pub allowlist: Option<String>,
    /// Target limit.
    pub max_targets: Option<u64>,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Who ran the scan.
    pub contact: Option<String>,
    /// How long a send error may last before the scan stops (`--send-error-grace`).
    pub send_error_grace_secs: f64,
}

/// How the scan rode through send errors (docs/ERRORS.md, "When the link goes down"). Flattened
/// into [`Metadata`], next to the other counters, and carried across `--resume` in the state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkReport {
    /// Send errors by errno name (`ENETDOWN`, `ENOBUFS`, ..., `ring-stuck` for a transmit ring
    /// that did not drain): each stall counts the error that began it, and ENOBUFS/EAGAIN also
    /// count each refusal the transmit back end retried by itself.
    pub send_errors: BTreeMap<String, u64>,
    /// Times a sender stopped to wait for the link.
    pub stalls: u64,
    /// Seconds spent waiting, summed over senders.
    pub stall_secs: f64,
    /// Probes handed to the kernel again after a stall (their first hand-over failed).
    pub probes_resent: u64,
}

/// The whole metadata document.
#[derive(Debug, Clone, Serialize)]
pub struct Metadata {
    /// Always `mpscan`.
    pub tool: &'static str,
    /// Tool version.
    pub version: &'static str,
    /// The command line.
    pub command_line: Vec<String>,
    /// Configuration.
    pub config: ConfigRecord,
    /// Start, RFC 3339.
    pub start_time: String,
    /// End, RFC 3339.
    pub end_time: String,
    /// Stopped early (signal or error).
    pub interrupted: bool,
    /// Continued from a state file (`--resume`): the counters cover the whole scan.
    pub resumed: bool,
    /// (address, port) pairs in the whole space after block/allow lists.
    pub targets_total: u64,
    /// Addresses the blocklist removed from the targets.
    pub addresses_blocked: u64,
    /// (address, port) pairs sent to by this shard.
    pub targets_probed: u64,
    /// Packets sent.
    pub probes_sent: u64,
    /// Frames that reached the receiver.
    pub responses_received: u64,
    /// Frames that validated as answers to our probes.
    pub responses_validated: u64,
    /// Frames rejected.
    pub responses_invalid: u64,
    /// Rejections by reason.
    pub invalid_reasons: BTreeMap<String, u64>,
    /// Validated answers for a (target, port, version) that already had a row.
    pub duplicates: u64,
    /// Frames the kernel dropped before we could read them.
    pub kernel_drops: u64,
    /// Rows per probe version and class (empty for a trace, which writes no scan rows: its counts
    /// are in `trace`).
    pub classes: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    /// `mpscan trace`: verdicts per family, hop rows and answers (absent for a scan).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<mpscan_schema::trace::TraceCounts>,
    /// Rows written.
    pub rows: u64,
    /// Send errors, stalls and probes sent again.
    #[serde(flatten)]
    pub link: LinkReport,
    /// The scan definition (`--config`) the scan ran, if any: path, values, overridden flags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub definition: Option<serde_json::Value>,
}

impl Metadata {
    /// Writes the document to `path` (pretty-printed).
    pub fn write(&self, path: &std::path::Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n")
            .map_err(|e| anyhow::anyhow!("cannot write the metadata file {}: {e}", path.display()))
    }
}
