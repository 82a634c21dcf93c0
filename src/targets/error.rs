//! Errors of the targets module.
//!
//! One enum, [`TargetError`], whose every variant prints as a single line naming what was typed,
//! where it came from (the argument, or `file:line`) and how to fix it, in the manner of ripgrep:
//! `targets.txt:7: "10.0.0.300/8" is not an IPv4/IPv6 address or CIDR prefix (...)`.
//! The variants carry the offending values so a caller can also match on them.

use std::fmt;
use std::path::PathBuf;

/// Where an entry came from: a command-line argument or a line of a list file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Typed on the command line as a target argument.
    Argument,
    /// Line `line` (1-based) of the list file `file`.
    Line {
        /// The file as the user named it (or `<built-in blocklist.txt>` for the embedded list).
        file: PathBuf,
        /// 1-based line number.
        line: usize,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Argument => f.write_str("argument"),
            Origin::Line { file, line } => write!(f, "{}:{}:", file.display(), line),
        }
    }
}

/// Which kind of list a file is, so messages can say "blocklist" rather than "file".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// An `@FILE` target list.
    Targets,
    /// A blocklist (`-b FILE`).
    Blocklist,
    /// An allowlist (`-w FILE`).
    Allowlist,
}

impl fmt::Display for ListKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ListKind::Targets => "target list",
            ListKind::Blocklist => "blocklist",
            ListKind::Allowlist => "allowlist",
        })
    }
}

/// Why a single address/prefix entry did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryProblem {
    /// Neither an IPv4/IPv6 address nor `address/length`.
    NotAnAddress,
    /// The prefix length is not a number or is longer than the address (32 or 128 bits).
    BadPrefixLength {
        /// The longest allowed length for this address family.
        max: u8,
    },
}

/// Why a port specification did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortProblem {
    /// The spec (or one of its comma-separated items) is empty.
    Empty,
    /// An item is not a number or a `low-high` range.
    NotANumber(String),
    /// Port 0 cannot be probed.
    Zero,
    /// A number above 65535.
    TooLarge(String),
    /// A range whose low end is above its high end.
    Reversed {
        /// The range's first number.
        low: u16,
        /// The range's second number.
        high: u16,
    },
}

/// Everything that can go wrong while building the set of targets; each prints as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    /// An entry of a target argument, target file, blocklist or allowlist did not parse.
    BadEntry {
        /// Where the entry was read.
        origin: Origin,
        /// The entry as written (trimmed, without its comment).
        entry: String,
        /// What is wrong with it.
        problem: EntryProblem,
    },
    /// An IPv6 target prefix holds more than 2^32 addresses: IPv6 cannot be swept.
    Ipv6TooLarge {
        /// Where the entry was read.
        origin: Origin,
        /// The entry as written.
        entry: String,
    },
    /// A line of a target file starts with `@`: lists do not nest.
    NestedList {
        /// Where the entry was read.
        origin: Origin,
        /// The entry as written.
        entry: String,
    },
    /// A list file could not be read.
    Io {
        /// Which list.
        kind: ListKind,
        /// The path as given.
        path: PathBuf,
        /// The operating system's message.
        message: String,
    },
    /// A target list file holds no entries (only blank lines and comments).
    EmptyList {
        /// Which list.
        kind: ListKind,
        /// The path as given.
        path: PathBuf,
    },
    /// No target argument was given at all (or an argument was empty).
    NoTargets,
    /// A target lies entirely inside the blocklist.
    Blocked {
        /// Where the target was read.
        origin: Origin,
        /// The target as written.
        entry: String,
        /// The blocklist that covers it (file name or `built-in blocklist`).
        blocklist: String,
    },
    /// The targets cover the whole IPv4 space and no blocklist is in force.
    FullSpaceUnblocked,
    /// Every target address was removed by the blocklist and/or the allowlist.
    NothingLeft {
        /// Addresses before the allowlist was applied (after the blocklist).
        after_blocklist: u64,
        /// The allowlist that removed them, if one was given.
        allowlist: Option<PathBuf>,
    },
    /// Addresses times ports exceed what one permutation can walk.
    SpaceTooLarge {
        /// Number of addresses (saturated at u128::MAX).
        addresses: u128,
        /// Number of ports.
        ports: usize,
    },
    /// The port specification did not parse.
    Ports {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        problem: PortProblem,
    },
    /// Shard/thread numbers out of range (shard >= shards, zero shards, ...).
    Shard {
        /// This shard.
        shard: u32,
        /// Number of shards.
        shards: u32,
        /// This thread.
        thread: u32,
        /// Threads per shard.
        threads: u32,
    },
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TargetError::*;
        match self {
            BadEntry { origin, entry, problem } => match problem {
                EntryProblem::NotAnAddress => write!(
                    f,
                    "{origin} {entry:?} is not an IPv4/IPv6 address or CIDR prefix \
                     (write e.g. 192.0.2.7, 198.51.100.0/24, 2001:db8::1 or 2001:db8::/120)"
                ),
                EntryProblem::BadPrefixLength { max } => {
                    write!(f, "{origin} {entry:?} has a bad prefix length (use /0 to /{max} for this address family)")
                }
            },
            Ipv6TooLarge { origin, entry } => write!(
                f,
                "{origin} {entry:?} holds more than 2^32 addresses: IPv6 cannot be swept, \
                 use a hitlist (@FILE of addresses or prefixes of /96 or longer)"
            ),
            NestedList { origin, entry } => write!(
                f,
                "{origin} {entry:?}: target lists cannot include other lists; give each @FILE on the command line"
            ),
            Io { kind, path, message } => {
                write!(f, "cannot read {kind} {}: {message} (check the path and its permissions)", path.display())
            }
            EmptyList { kind, path } => {
                write!(f, "{kind} {} holds no entries (only blank lines and comments)", path.display())
            }
            NoTargets => {
                f.write_str("no targets given: name addresses, CIDR prefixes or @FILE lists (e.g. 198.51.100.0/24)")
            }
            Blocked { origin, entry, blocklist } => {
                write!(f, "{origin} {entry:?} lies entirely inside the {blocklist}; ")?;
                if blocklist.starts_with("built-in") {
                    f.write_str("to scan it pass your own blocklist with -b FILE")
                } else {
                    f.write_str("remove it from the target list, or the covering entry from that blocklist")
                }
            }
            FullSpaceUnblocked => f.write_str(
                "refusing to scan the whole IPv4 space without a blocklist: drop --no-blocklist \
                 (or pass -b FILE), or add --i-know-what-i-am-doing if you really mean it",
            ),
            NothingLeft { after_blocklist, allowlist: Some(path) } => write!(
                f,
                "no target address is left: {after_blocklist} remained after the blocklist and \
                 none of them is in the allowlist {}; check -w and -b",
                path.display()
            ),
            NothingLeft { allowlist: None, .. } => {
                f.write_str("no target address is left after the blocklist; check -b and the targets")
            }
            SpaceTooLarge { addresses, ports } => write!(
                f,
                "{addresses} addresses x {ports} ports is too many targets (at most 2^62); \
                 scan fewer prefixes or ports"
            ),
            Ports { spec, problem } => {
                write!(f, "port spec {spec:?}: ")?;
                match problem {
                    PortProblem::Empty => f.write_str("empty item"),
                    PortProblem::NotANumber(s) => write!(f, "{s:?} is not a port or a low-high range"),
                    PortProblem::Zero => f.write_str("port 0 cannot be probed"),
                    PortProblem::TooLarge(s) => write!(f, "{s:?} is above 65535"),
                    PortProblem::Reversed { low, high } => {
                        return write!(f, "range {low}-{high} is reversed (write {high}-{low})");
                    }
                }?;
                f.write_str(" (write e.g. 443, 80,443 or 22,8000-8100)")
            }
            Shard { shard, shards, thread, threads } => write!(
                f,
                "shard {shard} of {shards}, thread {thread} of {threads} is out of range \
                 (shards and threads must be >= 1, shard < shards, thread < threads)"
            ),
        }
    }
}

impl std::error::Error for TargetError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_entry_names_file_line_and_fix() {
        let e = TargetError::BadEntry {
            origin: Origin::Line { file: "targets.txt".into(), line: 7 },
            entry: "10.0.0.300/8".into(),
            problem: EntryProblem::NotAnAddress,
        };
        let s = e.to_string();
        assert!(s.starts_with(r#"targets.txt:7: "10.0.0.300/8" is not an IPv4/IPv6 address or CIDR prefix"#), "{s}");
        assert!(!s.contains('\n'));
    }

    #[test]
    fn messages_are_one_line() {
        let all = [
            TargetError::NoTargets,
            TargetError::FullSpaceUnblocked,
            TargetError::NothingLeft { after_blocklist: 3, allowlist: Some("allow.txt".into()) },
            TargetError::NothingLeft { after_blocklist: 0, allowlist: None },
            TargetError::Ports { spec: "0".into(), problem: PortProblem::Zero },
            TargetError::Ports { spec: "9-1".into(), problem: PortProblem::Reversed { low: 9, high: 1 } },
            TargetError::Blocked {
                origin: Origin::Argument,
                entry: "10.0.0.0/8".into(),
                blocklist: "built-in blocklist".into(),
            },
            TargetError::Ipv6TooLarge { origin: Origin::Argument, entry: "::/0".into() },
        ];
        for e in all {
            let s = e.to_string();
            assert!(!s.is_empty() && !s.contains('\n'), "{s}");
        }
    }
}
