//! What to scan, in what order, split how.
//!
//! The scanner sees one flat *target space*: indices `0..len()`, each an (address, port) pair.
//! [`TargetSpace::build`] resolves what the user typed (addresses, CIDR prefixes, `@FILE` lists, a
//! port spec, a blocklist and an optional allowlist) into that space; [`TargetSpace::get`] maps an
//! index back to its pair (`address = nth(index / ports)`, `port = ports[index % ports]`, so the
//! ports of one address are spread across the scan), and [`TargetSpace::contains`] tells the
//! receiver whether a reply comes from something it probed.
//!
//! The order is a seeded permutation of the indices ([`TargetSpace::permutation`]): a walk of the
//! multiplicative group modulo a prime just above `len()` (zmap's design, see [`cyclic`]). Shards
//! (machines) and threads take interleaved positions of the same cycle ([`shard`]), so they
//! cover the space exactly once between them, and each [`Cursor`] can be resumed from the single
//! number it reports as its position.
//!
//! Files: [`parse`] (entries and list files), [`ports`], [`addrset`] (interval sets), [`cyclic`]
//! (primes, primitive roots, Montgomery arithmetic), [`shard`] (permutation and cursors),
//! [`error`]. Nothing here does I/O except reading the list files named by the user.

#![warn(missing_docs)]
pub mod addrset;
pub mod cyclic;
pub mod error;
pub mod parse;
pub mod ports;
pub mod shard;

pub use addrset::{AddrSet, IntervalSet};
pub use error::{EntryProblem, ListKind, Origin, PortProblem, TargetError};
pub use ports::Ports;
pub use shard::{share, Cursor, Permutation};

use parse::Net;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The default blocklist: the IANA special-purpose IPv4 and IPv6 registries plus multicast (the
/// repository's `blocklist.txt`, embedded so the default holds wherever the binary runs).
pub const DEFAULT_BLOCKLIST: &str = include_str!("../../blocklist.txt");

/// The name the embedded blocklist goes by in error messages.
const DEFAULT_BLOCKLIST_NAME: &str = "<built-in blocklist.txt>";

/// IPv6 target prefixes must be at least this long (at most 2^32 addresses each).
const MIN_IPV6_TARGET_PREFIX: u8 = 96;

/// Which blocklist applies to a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockSource {
    /// The embedded [`DEFAULT_BLOCKLIST`].
    Default,
    /// The user's own list (`-b FILE`), replacing the default.
    File(PathBuf),
    /// No blocklist at all (`--no-blocklist`).
    None,
}

/// What the user asked for, as typed: the input of [`TargetSpace::build`].
#[derive(Debug, Clone)]
pub struct TargetSpec<'a> {
    /// Target arguments: addresses, CIDR prefixes, `@FILE` lists.
    pub targets: &'a [String],
    /// Port spec: `443`, `80,443`, `22,8000-8100`.
    pub ports: &'a str,
    /// The blocklist to subtract.
    pub blocklist: BlockSource,
    /// An allowlist file to intersect with, if any.
    pub allowlist: Option<&'a Path>,
    /// Allow the whole IPv4 space with no blocklist (the explicit override flag).
    pub allow_unblocked_full_space: bool,
}

/// The finished target space: addresses × ports, indexable and searchable.
#[derive(Debug, Clone)]
pub struct TargetSpace {
    addrs: AddrSet,
    ports: Ports,
    nports: u64,
    len: u64,
    blocked: u64,
}

impl TargetSpace {
    /// Resolves a [`TargetSpec`]: parse the ports, load the blocklist and allowlist, parse every
    /// target (refusing any that the blocklist covers entirely), then
    /// `addresses = (targets − blocklist) ∩ allowlist`.
    pub fn build(spec: &TargetSpec) -> Result<TargetSpace, TargetError> {
        let ports = Ports::parse(spec.ports)?;

        // Blocklist.
        let (block_text, block_path, block_name) = match &spec.blocklist {
            BlockSource::Default => {
                (DEFAULT_BLOCKLIST.to_string(), PathBuf::from(DEFAULT_BLOCKLIST_NAME), "built-in blocklist".to_string())
            }
            BlockSource::File(p) => {
                (parse::read_list(p, ListKind::Blocklist)?, p.clone(), format!("blocklist {}", p.display()))
            }
            BlockSource::None => (String::new(), PathBuf::new(), String::new()),
        };
        let (block4, block6) = load_list(&block_text, &block_path)?;

        // Allowlist.
        let allow = match spec.allowlist {
            Some(p) => {
                let text = parse::read_list(p, ListKind::Allowlist)?;
                Some(load_list(&text, p)?)
            }
            None => None,
        };

        // Targets.
        if spec.targets.is_empty() {
            return Err(TargetError::NoTargets);
        }
        let mut t4: Vec<(u32, u32)> = Vec::new();
        let mut t6: Vec<(u128, u128)> = Vec::new();
        for arg in spec.targets {
            let arg = arg.trim();
            if let Some(file) = arg.strip_prefix('@') {
                let path = Path::new(file);
                let text = parse::read_list(path, ListKind::Targets)?;
                let n = parse::parse_list(&text, path, |net, entry, line| {
                    let origin = || Origin::Line { file: path.to_path_buf(), line };
                    add_target(net, entry, origin, &block4, &block6, &block_name, &mut t4, &mut t6)
                })
                .map_err(|e| match e {
                    // An `@` line fails to parse as an address first: report it as nesting.
                    TargetError::BadEntry { origin, entry, .. } if entry.starts_with('@') => {
                        TargetError::NestedList { origin, entry }
                    }
                    e => e,
                })?;
                if n == 0 {
                    return Err(TargetError::EmptyList { kind: ListKind::Targets, path: path.into() });
                }
            } else {
                if arg.is_empty() {
                    return Err(TargetError::NoTargets);
                }
                let net = parse::parse_entry(arg).map_err(|problem| TargetError::BadEntry {
                    origin: Origin::Argument,
                    entry: arg.into(),
                    problem,
                })?;
                add_target(net, arg, || Origin::Argument, &block4, &block6, &block_name, &mut t4, &mut t6)?;
            }
        }
        let (t4, t6) = (IntervalSet::from_ranges(t4), IntervalSet::from_ranges(t6));

        // Subtract the blocklist, intersect the allowlist.
        let (mut a4, mut a6) = (t4.subtract(&block4), t6.subtract(&block6));
        let blocked = (t4.len() - a4.len()).saturating_add(t6.len() - a6.len());
        let blocked = u64::try_from(blocked).unwrap_or(u64::MAX);
        if let Some((w4, w6)) = &allow {
            let after_blocklist = a4.len().saturating_add(a6.len());
            a4 = a4.intersect(w4);
            a6 = a6.intersect(w6);
            if a4.is_empty() && a6.is_empty() {
                return Err(TargetError::NothingLeft {
                    after_blocklist: u64::try_from(after_blocklist).unwrap_or(u64::MAX),
                    allowlist: spec.allowlist.map(Path::to_path_buf),
                });
            }
        }
        // Every target was partially blocked, and together they vanished (cannot happen when each
        // target is checked, but a union of partial blocks could in principle).
        if a4.is_empty() && a6.is_empty() {
            return Err(TargetError::NothingLeft { after_blocklist: 0, allowlist: None });
        }
        let no_blocklist = block4.is_empty() && block6.is_empty();
        if no_blocklist && !spec.allow_unblocked_full_space && a4.len() == 1u128 << 32 {
            return Err(TargetError::FullSpaceUnblocked);
        }

        let too_large =
            || TargetError::SpaceTooLarge { addresses: a4.len().saturating_add(a6.len()), ports: ports.len() };
        let addrs = AddrSet::new(&a4, &a6).ok_or_else(too_large)?;
        let nports = ports.len() as u64;
        let len = addrs.len().checked_mul(nports).filter(|&l| l <= cyclic::Group::MAX_N).ok_or_else(too_large)?;
        Ok(TargetSpace { addrs, ports, nports, len, blocked })
    }

    /// Number of (address, port) pairs.
    #[inline]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Always false: building an empty space is an error.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of distinct addresses.
    pub fn addresses(&self) -> u64 {
        self.addrs.len()
    }

    /// The ports, ascending, without duplicates.
    pub fn ports(&self) -> &[u16] {
        self.ports.as_slice()
    }

    /// How many target addresses the blocklist removed (before the allowlist was applied).
    pub fn blocked(&self) -> u64 {
        self.blocked
    }

    /// The address set (for callers that need `nth`/`contains` on addresses alone).
    pub fn address_set(&self) -> &AddrSet {
        &self.addrs
    }

    /// The (address, port) pair of `index`: `address = nth(index / ports)`,
    /// `port = ports[index % ports]`. O(log intervals), no allocation.
    ///
    /// # Panics
    /// If `index >= len()` (indices come from this space's permutation).
    #[inline]
    pub fn get(&self, index: u64) -> (IpAddr, u16) {
        if self.nports == 1 {
            return (self.addrs.nth(index), self.ports.as_slice()[0]);
        }
        let (a, p) = (index / self.nports, index % self.nports);
        (self.addrs.nth(a), self.ports.as_slice()[p as usize])
    }

    /// Is (`addr`, `port`) one of the targets? For the receiver: replies from anything else are
    /// not ours.
    #[inline]
    pub fn contains(&self, addr: IpAddr, port: u16) -> bool {
        self.ports.contains(port) && self.addrs.contains(addr)
    }

    /// The seeded order of this space; the same seed and the same spec give the same order on
    /// every machine, which is what lets shards split one scan.
    pub fn permutation(&self, seed: u64) -> Permutation {
        Permutation::new(self.len, seed)
    }
}

/// Parses a block/allow list text into IPv4 and IPv6 interval sets.
fn load_list(text: &str, file: &Path) -> Result<(IntervalSet<u32>, IntervalSet<u128>), TargetError> {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    parse::parse_list(text, file, |net, _, _| {
        match net {
            Net::V4 { lo, hi } => v4.push((lo, hi)),
            Net::V6 { lo, hi, .. } => v6.push((lo, hi)),
        }
        Ok(())
    })?;
    Ok((IntervalSet::from_ranges(v4), IntervalSet::from_ranges(v6)))
}

/// Checks one target (IPv6 size, not entirely blocked) and records its range.
#[allow(clippy::too_many_arguments)]
fn add_target(
    net: Net,
    entry: &str,
    origin: impl Fn() -> Origin,
    block4: &IntervalSet<u32>,
    block6: &IntervalSet<u128>,
    block_name: &str,
    t4: &mut Vec<(u32, u32)>,
    t6: &mut Vec<(u128, u128)>,
) -> Result<(), TargetError> {
    let blocked = || TargetError::Blocked { origin: origin(), entry: entry.into(), blocklist: block_name.into() };
    match net {
        Net::V4 { lo, hi } => {
            if block4.covers(lo, hi) {
                return Err(blocked());
            }
            t4.push((lo, hi));
        }
        Net::V6 { lo, hi, prefix } => {
            if prefix < MIN_IPV6_TARGET_PREFIX {
                return Err(TargetError::Ipv6TooLarge { origin: origin(), entry: entry.into() });
            }
            if block6.covers(lo, hi) {
                return Err(blocked());
            }
            t6.push((lo, hi));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A temporary list file, removed on drop.
    struct TempList(PathBuf);

    impl TempList {
        fn new(name: &str, text: &str) -> TempList {
            let dir = std::env::temp_dir().join(format!("mpscan-targets-test-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(name);
            std::fs::File::create(&path).unwrap().write_all(text.as_bytes()).unwrap();
            TempList(path)
        }
    }

    impl Drop for TempList {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn spec<'a>(targets: &'a [String], ports: &'a str, blocklist: BlockSource) -> TargetSpec<'a> {
        TargetSpec { targets, ports, blocklist, allowlist: None, allow_unblocked_full_space: false }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn default_blocklist_parses_and_blocks_the_special_blocks() {
        let (b4, b6) = load_list(DEFAULT_BLOCKLIST, Path::new(DEFAULT_BLOCKLIST_NAME)).unwrap();
        for a in [
            "0.1.2.3",
            "10.9.9.9",
            "100.64.0.1",
            "127.0.0.1",
            "169.254.1.1",
            "172.31.255.255",
            "192.0.0.9",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.255",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            let x = u32::from(a.parse::<std::net::Ipv4Addr>().unwrap());
            assert!(b4.contains(x), "{a} should be blocked");
        }
        for a in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "11.0.0.0",
        ] {
            let x = u32::from(a.parse::<std::net::Ipv4Addr>().unwrap());
            assert!(!b4.contains(x), "{a} should not be blocked");
        }
        for a in [
            "::",
            "::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "100::1",
            "2001::1",
            "2001:1ff::",
            "2001:db8::1",
            "2002::1",
            "fc00::1",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "3fff::1",
        ] {
            let x = u128::from(a.parse::<std::net::Ipv6Addr>().unwrap());
            assert!(b6.contains(x), "{a} should be blocked");
        }
        for a in ["2001:200::1", "2a00:1450::1", "2600::1", "::2"] {
            let x = u128::from(a.parse::<std::net::Ipv6Addr>().unwrap());
            assert!(!b6.contains(x), "{a} should not be blocked");
        }
    }

    #[test]
    fn full_ipv4_minus_default_blocklist() {
        let t = strings(&["0.0.0.0/0"]);
        let s = TargetSpace::build(&spec(&t, "443", BlockSource::Default)).unwrap();
        // 2^32 minus the IPv4 blocks (255.255.255.255/32 lies inside 240.0.0.0/4; no other overlaps).
        let blocked: u64 =
            [8u32, 8, 10, 8, 16, 12, 24, 24, 24, 16, 15, 24, 24, 4, 4].iter().map(|&l| 1u64 << (32 - l)).sum();
        assert_eq!(s.blocked(), blocked);
        assert_eq!(s.addresses(), (1u64 << 32) - blocked);
        assert_eq!(s.len(), s.addresses());
        assert!(!s.contains(ip("10.0.0.1"), 443));
        assert!(s.contains(ip("1.1.1.1"), 443));
        assert!(!s.contains(ip("1.1.1.1"), 80));
        assert_eq!(s.get(0), (ip("1.0.0.0"), 443));
        assert_eq!(s.get(s.len() - 1), (ip("223.255.255.255"), 443));
    }

    #[test]
    fn entirely_blocked_target_is_an_error() {
        let t = strings(&["198.51.100.0/24"]);
        let e = TargetSpace::build(&spec(&t, "443", BlockSource::Default)).unwrap_err();
        assert!(matches!(e, TargetError::Blocked { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("198.51.100.0/24") && msg.contains("built-in blocklist") && msg.contains("-b"), "{msg}");
        // With no blocklist the lab prefix is fine.
        let s = TargetSpace::build(&spec(&t, "443", BlockSource::None)).unwrap();
        assert_eq!(s.len(), 256);
        assert_eq!(s.blocked(), 0);
    }

    #[test]
    fn partially_blocked_target_loses_the_blocked_part() {
        let bl = TempList::new("partial-block.txt", "198.18.0.128/25 # upper half\n");
        let t = strings(&["198.18.0.0/24", "198.18.1.0/31"]);
        let s = TargetSpace::build(&spec(&t, "80", BlockSource::File(bl.0.clone()))).unwrap();
        assert_eq!(s.addresses(), 128 + 2);
        assert_eq!(s.blocked(), 128);
        assert!(s.contains(ip("198.18.0.127"), 80));
        assert!(!s.contains(ip("198.18.0.128"), 80));
        assert_eq!(s.get(128), (ip("198.18.1.0"), 80));
        // Entirely covered with a user file: names the file, and does not tell the user to pass
        // the blocklist they already passed.
        let t = strings(&["198.18.0.200"]);
        let e = TargetSpace::build(&spec(&t, "80", BlockSource::File(bl.0.clone()))).unwrap_err();
        assert!(e.to_string().contains("partial-block.txt"), "{e}");
        assert!(!e.to_string().contains("-b FILE"), "{e}");
    }

    #[test]
    fn full_space_without_blocklist_needs_override() {
        let t = strings(&["0.0.0.0/1", "128.0.0.0/1"]);
        let e = TargetSpace::build(&spec(&t, "443", BlockSource::None)).unwrap_err();
        assert_eq!(e, TargetError::FullSpaceUnblocked);
        let mut sp = spec(&t, "443", BlockSource::None);
        sp.allow_unblocked_full_space = true;
        assert_eq!(TargetSpace::build(&sp).unwrap().len(), 1 << 32);
        // An empty blocklist file is no blocklist either.
        let empty = TempList::new("empty-block.txt", "# nothing\n");
        let e = TargetSpace::build(&spec(&t, "443", BlockSource::File(empty.0.clone()))).unwrap_err();
        assert_eq!(e, TargetError::FullSpaceUnblocked);
    }

    #[test]
    fn allowlist_intersects() {
        let allow = TempList::new("allow.txt", "198.18.0.0/30\n198.18.0.10 # one more\n2001:db8::/126\n");
        let t = strings(&["198.18.0.0/24", "2001:db8::/120"]);
        let mut sp = spec(&t, "443", BlockSource::None);
        sp.allowlist = Some(&allow.0);
        let s = TargetSpace::build(&sp).unwrap();
        assert_eq!(s.addresses(), 4 + 1 + 4);
        let got: Vec<IpAddr> = (0..s.len()).map(|i| s.get(i).0).collect();
        assert_eq!(got[4], ip("198.18.0.10"));
        assert_eq!(got[5], ip("2001:db8::"));
        assert_eq!(got[8], ip("2001:db8::3"));
        // Allowlist disjoint from the targets.
        let t = strings(&["203.0.113.0/24"]);
        let mut sp = spec(&t, "443", BlockSource::None);
        sp.allowlist = Some(&allow.0);
        let e = TargetSpace::build(&sp).unwrap_err();
        assert_eq!(e, TargetError::NothingLeft { after_blocklist: 256, allowlist: Some(allow.0.clone()) });
        assert!(e.to_string().contains("allow.txt"), "{e}");
    }

    #[test]
    fn target_files_and_errors_with_line_numbers() {
        let good =
            TempList::new("targets-good.txt", "# lab\n198.18.0.1\n\n 198.18.0.0/30  # dup overlap\n2001:db8::5\n");
        let arg = format!("@{}", good.0.display());
        let t = vec![arg, "198.18.0.9".to_string()];
        let s = TargetSpace::build(&spec(&t, "80,443", BlockSource::None)).unwrap();
        assert_eq!(s.addresses(), 4 + 1 + 1);
        assert_eq!(s.len(), 12);
        assert_eq!(s.ports(), &[80, 443]);

        let bad = TempList::new("targets-bad.txt", "198.18.0.1\n# c\n10.0.0.300/8\n");
        let t = vec![format!("@{}", bad.0.display())];
        let e = TargetSpace::build(&spec(&t, "80", BlockSource::None)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("targets-bad.txt:3: \"10.0.0.300/8\" is not an IPv4/IPv6 address"), "{msg}");

        let nested = TempList::new("targets-nested.txt", "@other.txt\n");
        let t = vec![format!("@{}", nested.0.display())];
        let e = TargetSpace::build(&spec(&t, "80", BlockSource::None)).unwrap_err();
        assert!(matches!(e, TargetError::NestedList { .. }), "{e}");

        let empty = TempList::new("targets-empty.txt", "\n# only comments\n");
        let t = vec![format!("@{}", empty.0.display())];
        let e = TargetSpace::build(&spec(&t, "80", BlockSource::None)).unwrap_err();
        assert!(matches!(e, TargetError::EmptyList { .. }), "{e}");

        let t = strings(&["@/nonexistent/mpscan-targets.txt"]);
        let e = TargetSpace::build(&spec(&t, "80", BlockSource::None)).unwrap_err();
        assert!(matches!(e, TargetError::Io { kind: ListKind::Targets, .. }), "{e}");

        let bl = TempList::new("bad-block.txt", "10.0.0.0/8\n\n10.0.0.0/40 # oops\n");
        let t = strings(&["198.18.0.0/24"]);
        let e = TargetSpace::build(&spec(&t, "80", BlockSource::File(bl.0.clone()))).unwrap_err();
        assert!(e.to_string().contains("bad-block.txt:3: \"10.0.0.0/40\" has a bad prefix length"), "{e}");
    }

    #[test]
    fn argument_errors() {
        let e = TargetSpace::build(&spec(&[], "80", BlockSource::None)).unwrap_err();
        assert_eq!(e, TargetError::NoTargets);
        let t = strings(&["192.0.2.256"]);
        let e = TargetSpace::build(&spec(&t, "80", BlockSource::None)).unwrap_err();
        assert!(e.to_string().starts_with("argument \"192.0.2.256\""), "{e}");
        let t = strings(&["2001:db8::/64"]);
        let e = TargetSpace::build(&spec(&t, "80", BlockSource::None)).unwrap_err();
        assert!(matches!(e, TargetError::Ipv6TooLarge { .. }) && e.to_string().contains("hitlist"), "{e}");
        let t = strings(&["::/0"]);
        let e = TargetSpace::build(&spec(&t, "80", BlockSource::None)).unwrap_err();
        assert!(matches!(e, TargetError::Ipv6TooLarge { .. }), "{e}");
        let t = strings(&["192.0.2.0/24"]);
        let e = TargetSpace::build(&spec(&t, "0", BlockSource::None)).unwrap_err();
        assert!(matches!(e, TargetError::Ports { .. }), "{e}");
    }

    #[test]
    fn ipv6_targets() {
        let t = strings(&["2001:db8::/96", "2001:db8:1::1"]);
        let s = TargetSpace::build(&spec(&t, "443", BlockSource::None)).unwrap();
        assert_eq!(s.addresses(), (1 << 32) + 1);
        assert_eq!(s.get(0).0, ip("2001:db8::"));
        assert_eq!(s.get(1 << 32).0, ip("2001:db8:1::1"));
        assert!(s.contains(ip("2001:db8::ffff:ffff"), 443));
        assert!(!s.contains(ip("2001:db8::1:0:0"), 443));
        // Blocked by default.
        let e = TargetSpace::build(&spec(&t, "443", BlockSource::Default)).unwrap_err();
        assert!(matches!(e, TargetError::Blocked { .. }));
    }

    #[test]
    fn host_bits_are_dropped_and_duplicates_merged() {
        let t = strings(&["198.18.0.7/24", "198.18.0.0/25", "198.18.0.255"]);
        let s = TargetSpace::build(&spec(&t, "443", BlockSource::None)).unwrap();
        assert_eq!(s.addresses(), 256);
        assert_eq!(s.get(0).0, ip("198.18.0.0"));
    }

    #[test]
    fn many_ports_bijection_and_contains() {
        // 7 addresses x 13 ports: every (address, port) pair exactly once across 3 shards x 2 threads.
        let t = strings(&["198.18.0.1", "198.18.0.2/31", "198.18.0.4/30"]);
        let s = TargetSpace::build(&spec(&t, "22,80,443,8000-8009", BlockSource::None)).unwrap();
        assert_eq!((s.addresses(), s.ports().len(), s.len()), (7, 13, 91));
        let perm = s.permutation(7);
        let mut seen = std::collections::HashSet::new();
        for shard in 0..3 {
            for thread in 0..2 {
                for i in perm.cursor(shard, 3, thread, 2, 0).unwrap() {
                    let (a, p) = s.get(i);
                    assert!(s.contains(a, p));
                    assert!(seen.insert((a, p)), "duplicate {a}:{p}");
                }
            }
        }
        assert_eq!(seen.len(), 91);
    }

    /// Release-mode measurement of the whole generation path (cursor step + index -> pair):
    /// `cargo test --release --lib targets::tests::measure_generation -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn measure_generation() {
        let t = strings(&["0.0.0.0/0"]);
        for ports in ["443", "80,443"] {
            let s = TargetSpace::build(&spec(&t, ports, BlockSource::Default)).unwrap();
            let perm = s.permutation(1);
            let n = 200_000_000u64;
            let start = std::time::Instant::now();
            let mut acc = 0u64;
            for i in perm.cursor(0, 1, 0, 1, 0).unwrap().limit(n) {
                let (a, p) = s.get(i);
                if let IpAddr::V4(a) = a {
                    acc = acc.wrapping_add(u64::from(u32::from(a)) ^ u64::from(p));
                }
            }
            let full = start.elapsed();
            let start = std::time::Instant::now();
            let mut acc2 = 0u64;
            for i in perm.cursor(0, 1, 0, 1, 0).unwrap().limit(n) {
                acc2 = acc2.wrapping_add(i);
            }
            let cursor_only = start.elapsed();
            println!(
                "ports {ports}: {n} targets: cursor+get {:.2} ns/target ({:.1} M/s), cursor only {:.2} ns/target [{acc:x} {acc2:x}]",
                full.as_nanos() as f64 / n as f64,
                n as f64 / full.as_secs_f64() / 1e6,
                cursor_only.as_nanos() as f64 / n as f64,
            );
        }
        // A hitlist: one million scattered single addresses (a million intervals).
        let mut rng = cyclic::SplitMix64::new(5);
        let v4 = IntervalSet::from_ranges(
            (0..1_000_000)
                .map(|_| {
                    let a = rng.next_u64() as u32;
                    (a, a)
                })
                .collect(),
        );
        let addrs = AddrSet::new(&v4, &IntervalSet::new()).unwrap();
        let perm = Permutation::new(addrs.len(), 1);
        let n = 20_000_000u64;
        let start = std::time::Instant::now();
        let mut acc = 0u64;
        let mut done = 0u64;
        while done < n {
            for i in perm.cursor(0, 1, 0, 1, 0).unwrap() {
                if let IpAddr::V4(a) = addrs.nth(i) {
                    acc = acc.wrapping_add(u64::from(u32::from(a)));
                }
                done += 1;
            }
        }
        let t = start.elapsed();
        println!(
            "hitlist of {} intervals: cursor+nth {:.2} ns/target [{acc:x}]",
            addrs.intervals(),
            t.as_nanos() as f64 / done as f64
        );
    }
}
