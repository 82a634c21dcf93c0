//! Privilege: may this process open raw sockets (checked up front, so the user gets one clear
//! line instead of an `EPERM` from deep inside the socket set-up), and shedding what a scan does
//! not need once its sockets are open.
//!
//! A scan needs exactly one capability, CAP_NET_RAW, to open its AF_PACKET sockets (and to
//! reopen them if the interface goes away mid-scan, `crate::scan::flap`). An ordinary user runs
//! it from a copy of the binary given that capability (`setcap cap_net_raw+ep`, README). A
//! process started as root keeps only CAP_NET_RAW once its sockets and files are open
//! ([`keep_only_net_raw`]): the code that parses answers from the network then runs without
//! the other powers of root (loading modules, tracing processes, overriding file permissions).
#![allow(unsafe_code)]

use std::fmt;
use std::io;

/// Linux capability number of CAP_NET_RAW (linux/capability.h).
const CAP_NET_RAW: u32 = 13;

/// The process may not open AF_PACKET sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedsRoot;

impl fmt::Display for NeedsRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exe = std::env::current_exe().map_or_else(|_| "/path/to/mpscan".to_string(), |p| p.display().to_string());
        write!(
            f,
            "sending raw packets needs CAP_NET_RAW: run as root, or give a copy of the binary the capability with \
             `sudo setcap cap_net_raw+ep {exe}` (or use --dry-run to print the probes)"
        )
    }
}

impl std::error::Error for NeedsRoot {}

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

/// Keeps CAP_NET_RAW and drops every other capability, for good. Called once the scan's sockets
/// and files are open, while the process has one thread: Linux keeps capabilities per thread,
/// and threads started afterwards inherit the reduced sets. The user id is unchanged (files a
/// resumed scan reopens stay the user's); what root loses is its power over everything else.
/// Afterwards every other capability is gone from the effective, permitted, inheritable, ambient
/// and bounding sets (so not even an `exec` as root could regain one), and `no_new_privs` is
/// set. A process with no permitted capability but CAP_NET_RAW is left as it is.
pub fn keep_only_net_raw() -> io::Result<()> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let permitted = cap_mask(&status, "CapPrm:").ok_or_else(|| io::Error::other("no CapPrm in /proc/self/status"))?;
    let bounding = cap_mask(&status, "CapBnd:").unwrap_or(0);
    let keep = 1u64 << CAP_NET_RAW;
    // An ordinary user with the capability on the binary has nothing else to drop (and may not
    // shrink its bounding set, which needs CAP_SETPCAP).
    if permitted & !keep == 0 {
        return Ok(());
    }
    let threads = std::fs::read_dir("/proc/self/task")?.count();
    if threads != 1 {
        return Err(io::Error::other(format!("{threads} threads already run, and capabilities are per thread")));
    }
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(63)
        .min(63);
    // SAFETY: prctl with integer arguments only; no memory is passed.
    let prctl = |op: libc::c_int, arg: u64| unsafe { libc::prctl(op, arg as libc::c_ulong, 0, 0, 0) };
    // The bounding set first: dropping from it needs CAP_SETPCAP, which the capset below removes.
    for cap in (0..=last).filter(|&c| c != CAP_NET_RAW && bounding & (1u64 << c) != 0) {
        if prctl(libc::PR_CAPBSET_DROP, u64::from(cap)) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    if prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as u64) != 0 {
        return Err(io::Error::last_os_error());
    }
    capset(permitted & keep)?;
    if prctl(libc::PR_SET_NO_NEW_PRIVS, 1) != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// capset(2), version 3 (64 capability bits in two words): effective = permitted = `set`,
/// inheritable empty, for the calling thread.
fn capset(set: u64) -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header { version: VERSION_3, pid: 0 };
    let word = |w: u32| Data { effective: w, permitted: w, inheritable: 0 };
    let data = [word(set as u32), word((set >> 32) as u32)];
    // SAFETY: both pointers are to live, properly laid out values of the sizes the kernel reads
    // for version 3 (one header, two data words).
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads a `Cap*:` hex mask line of a `/proc/PID/status` text.
fn cap_mask(status: &str, name: &str) -> Option<u64> {
    u64::from_str_radix(status_field(status, name)?, 16).ok()
}

fn status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim)
}

/// Reads the `CapEff:` hex mask of a `/proc/PID/status` text and tests bit `cap`.
fn cap_eff_has(status: &str, cap: u32) -> Option<bool> {
    Some(cap_mask(status, "CapEff:")? & (1u64 << cap) != 0)
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
        let text = NeedsRoot.to_string();
        assert!(text.contains("CAP_NET_RAW") && text.contains("setcap cap_net_raw+ep /"), "{text}");
    }
}
