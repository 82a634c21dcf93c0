//! May this process open raw sockets? Checked up front so the user gets one clear line instead
//! of an `EPERM` from deep inside the socket set-up.

use std::fmt;

/// Linux capability number of CAP_NET_RAW (linux/capability.h).
const CAP_NET_RAW: u32 = 13;

/// The process may not open AF_PACKET sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedsRoot;

impl fmt::Display for NeedsRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "needs root (CAP_NET_RAW) to send and receive raw frames: run as root or `setcap cap_net_raw+ep` the binary (or use --dryrun)")
    }
}

impl std::error::Error for NeedsRoot {}

/// True when the effective user id is 0 (read from `/proc/self/status`, no syscall wrapper
/// needed).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| status_field(&s, "Uid:").and_then(|v| v.split_whitespace().nth(1).map(|e| e == "0")))
        .unwrap_or(false)
}

/// True when CAP_NET_RAW is in the effective capability set (root normally has it; a binary
/// given it with `setcap` has it without being root).
pub fn has_cap_net_raw() -> bool {
    std::fs::read_to_string("/proc/self/status").ok().and_then(|s| cap_eff_has(&s, CAP_NET_RAW)).unwrap_or(false)
}

/// `Ok` when raw sockets may be opened, else the one-line [`NeedsRoot`] error.
pub fn require_cap_net_raw() -> Result<(), NeedsRoot> {
    if has_cap_net_raw() {
        Ok(())
    } else {
        Err(NeedsRoot)
    }
}

fn status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim)
}

/// Reads the `CapEff:` hex mask of a `/proc/PID/status` text and tests bit `cap`.
fn cap_eff_has(status: &str, cap: u32) -> Option<bool> {
    let mask = u64::from_str_radix(status_field(status, "CapEff:")?, 16).ok()?;
    Some(mask & (1u64 << cap) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cap_eff() {
        let root = "Name:\tx\nUid:\t0\t0\t0\t0\nCapEff:\t000001ffffffffff\n";
        assert_eq!(cap_eff_has(root, CAP_NET_RAW), Some(true));
        let user = "Uid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000000000\n";
        assert_eq!(cap_eff_has(user, CAP_NET_RAW), Some(false));
        let only_raw = "CapEff:\t0000000000002000\n";
        assert_eq!(cap_eff_has(only_raw, CAP_NET_RAW), Some(true));
        assert_eq!(cap_eff_has("CapEff:\tzz\n", CAP_NET_RAW), None);
        assert_eq!(cap_eff_has("", CAP_NET_RAW), None);
    }

    #[test]
    fn error_is_one_line() {
        assert!(!NeedsRoot.to_string().contains('\n'));
        assert!(NeedsRoot.to_string().contains("CAP_NET_RAW"));
    }
}
