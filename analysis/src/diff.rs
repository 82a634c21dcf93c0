//! Longitudinal change between two scans: which (address, port, probe) targets appeared,
//! disappeared, switched class or switched MPTCP version.
//!
//! The old scan's keys are held in memory, compactly: an IPv4 target packs into one `u64` key
//! (address, port, probe) with a one-byte value (class, answer version, seen bit), in a hash map
//! with a cheap integer mixer. The new scan is then streamed against it; whatever was never seen
//! has disappeared.

use crate::table::{Cell, Table};
use anyhow::Result;
use mpscan_schema::reader::{for_each_row, Input};
use mpscan_schema::{Class, Col, Ip, ProbeVersion, RowError, RowRef, NCLASS};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// splitmix64 finaliser as a `Hasher`: integer keys only, every bit mixed into every bit.
#[derive(Default, Clone, Copy)]
pub struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        let mut z = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ *b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(23) ^ n;
    }
    fn write_u128(&mut self, n: u128) {
        self.write_u64(n as u64);
        self.write_u64((n >> 64) as u64);
    }
    fn write_u16(&mut self, n: u16) {
        self.write_u64(n as u64);
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(n as u64);
    }
}

type Fast = BuildHasherDefault<MixHasher>;

/// Value byte: class in bits 0-2, answer version + 1 in bits 3-4 (0 = none, 3 = other), seen bit 7.
fn pack(class: Class, version: Option<u8>) -> u8 {
    let v = match version {
        None => 0,
        Some(0) => 1,
        Some(1) => 2,
        Some(_) => 3,
    };
    class as u8 | v << 3
}

fn unpack(b: u8) -> (Class, Option<u8>) {
    let class = Class::from_index(b & 7).unwrap_or(Class::Tcp);
    let v = match (b >> 3) & 3 {
        0 => None,
        1 => Some(0),
        2 => Some(1),
        _ => Some(2),
    };
    (class, v)
}

const SEEN: u8 = 0x80;

/// A target of a scan: address, port, probe version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    /// Probed address.
    pub ip: Ip,
    /// Port.
    pub port: u16,
    /// Probe version.
    pub probe: ProbeVersion,
}

/// One scan's targets with class and version, compact.
#[derive(Default)]
pub struct ScanIndex {
    v4: HashMap<u64, u8, Fast>,
    v6: HashMap<(u128, u16, u8), u8, Fast>,
    /// Rows that repeated an earlier (address, port, probe); the last one wins.
    pub duplicates: u64,
    /// Rows read.
    pub rows: u64,
}

fn v4_key(a: u32, port: u16, probe: ProbeVersion) -> u64 {
    (a as u64) << 17 | (port as u64) << 1 | probe as u64
}

impl ScanIndex {
    fn insert(&mut self, r: &RowRef) {
        self.rows += 1;
        let v = pack(r.class, r.version);
        let old = match r.ip {
            Ip::V4(a) => self.v4.insert(v4_key(a, r.port, r.probe), v),
            Ip::V6(a) => self.v6.insert((a, r.port, r.probe as u8), v),
        };
        self.duplicates += old.is_some() as u64;
    }

    fn merge(&mut self, o: ScanIndex) {
        self.rows += o.rows;
        self.duplicates += o.duplicates;
        for (k, v) in o.v4 {
            self.duplicates += self.v4.insert(k, v).is_some() as u64;
        }
        for (k, v) in o.v6 {
            self.duplicates += self.v6.insert(k, v).is_some() as u64;
        }
    }

    /// Number of distinct targets.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// True when the scan had no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Read every row of a scan (all its shards) into an index, in parallel.
    pub fn read(inputs: &[Input], threads: usize) -> Result<ScanIndex> {
        let parts = for_each_row(inputs, threads, ScanIndex::default, |ix, r| {
            ix.insert(r);
            Ok(())
        })?;
        let mut it = parts.into_iter();
        let mut all = it.next().unwrap_or_default();
        for p in it {
            all.merge(p);
        }
        Ok(all)
    }
}

/// One listed change.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    /// The target.
    pub target: Target,
    /// Class and answer version before (`None` = absent).
    pub old: Option<(Class, Option<u8>)>,
    /// Class and answer version after (`None` = absent).
    pub new: Option<(Class, Option<u8>)>,
}

/// State index in the transition matrix: 0 = absent, 1 + class.
fn state(s: Option<(Class, Option<u8>)>) -> usize {
    s.map_or(0, |(c, _)| 1 + c as usize)
}

/// The result of comparing two scans.
#[derive(Debug, Clone, Default)]
pub struct Diff {
    /// Targets in old / new.
    pub old_targets: u64,
    /// Targets in new.
    pub new_targets: u64,
    /// Duplicate rows in old and new.
    pub duplicates: (u64, u64),
    /// transitions[from][to], states 0 = absent, 1.. = class.
    pub transitions: [[u64; NCLASS + 1]; NCLASS + 1],
    /// Real MPTCP servers whose answer version changed, per (probe, old version, new version).
    pub version_changes: HashMap<(ProbeVersion, Option<u8>, Option<u8>), u64>,
    /// Changes involving an MPTCP-option class (mptcp, echo, malformed) on either side, sorted.
    pub changes: Vec<Change>,
}

fn interesting(s: Option<(Class, Option<u8>)>) -> bool {
    s.is_some_and(|(c, _)| c.has_mptcp_option())
}

impl Diff {
    fn record(&mut self, target: Target, old: Option<(Class, Option<u8>)>, new: Option<(Class, Option<u8>)>) {
        self.transitions[state(old)][state(new)] += 1;
        let version_change = matches!((old, new), (Some((Class::Mptcp, a)), Some((Class::Mptcp, b))) if a != b);
        if version_change {
            *self.version_changes.entry((target.probe, old.and_then(|x| x.1), new.and_then(|x| x.1))).or_insert(0) += 1;
        }
        let changed = state(old) != state(new) || version_change;
        if changed && (interesting(old) || interesting(new)) {
            self.changes.push(Change { target, old, new });
        }
    }

    /// Compare two scans given as their (sharded) CSVs.
    pub fn run(old: &[Input], new: &[Input], threads: usize) -> Result<Diff> {
        let mut ix = ScanIndex::read(old, threads)?;
        let mut d = Diff { old_targets: ix.len() as u64, duplicates: (ix.duplicates, 0), ..Diff::default() };
        // Stream the new scan against the index (one thread: it marks entries as seen).
        let mut dups = 0u64;
        let mut new_targets = 0u64;
        let mut st = (&mut ix, &mut d, &mut dups, &mut new_targets);
        let res = for_each_row_seq(new, |r| {
            let (ix, d, dups, nt) = &mut st;
            let target = Target { ip: r.ip, port: r.port, probe: r.probe };
            let slot = match r.ip {
                Ip::V4(a) => ix.v4.get_mut(&v4_key(a, r.port, r.probe)),
                Ip::V6(a) => ix.v6.get_mut(&(a, r.port, r.probe as u8)),
            };
            let newv = Some((r.class, r.version));
            match slot {
                Some(v) if *v & SEEN != 0 => **dups += 1,
                Some(v) => {
                    let oldv = unpack(*v);
                    *v |= SEEN;
                    **nt += 1;
                    d.record(target, Some(oldv), newv);
                }
                None => {
                    // Appeared: remember it so a duplicate row in the new scan is not counted twice.
                    match r.ip {
                        Ip::V4(a) => ix.v4.insert(v4_key(a, r.port, r.probe), SEEN | 0x40),
                        Ip::V6(a) => ix.v6.insert((a, r.port, r.probe as u8), SEEN | 0x40),
                    };
                    **nt += 1;
                    d.record(target, None, newv);
                }
            }
            Ok(())
        });
        res?;
        d.new_targets = new_targets;
        d.duplicates.1 = dups;
        // Whatever the new scan never mentioned has disappeared.
        let mut gone: Vec<(Target, u8)> = vec![];
        for (k, v) in &ix.v4 {
            if v & SEEN == 0 {
                let probe = if k & 1 == 1 { ProbeVersion::V1 } else { ProbeVersion::V0 };
                gone.push((Target { ip: Ip::V4((k >> 17) as u32), port: (k >> 1) as u16, probe }, *v));
            }
        }
        for ((a, port, p), v) in &ix.v6 {
            if v & SEEN == 0 {
                let probe = if *p == 1 { ProbeVersion::V1 } else { ProbeVersion::V0 };
                gone.push((Target { ip: Ip::V6(*a), port: *port, probe }, *v));
            }
        }
        for (t, v) in gone {
            d.record(t, Some(unpack(v)), None);
        }
        d.changes.sort();
        Ok(d)
    }
}

/// Sequential row loop with a mutable closure (the parallel reader wants `Fn`).
fn for_each_row_seq(inputs: &[Input], mut f: impl FnMut(&RowRef) -> Result<(), RowError> + Send) -> Result<()> {
    let cell = std::sync::Mutex::new(&mut f);
    for_each_row(inputs, 1, || (), |_, r| (cell.lock().map_err(|_| RowError("poisoned".into()))?)(r))?;
    Ok(())
}

/// Columns a diff needs.
pub const NEEDED: &[Col] = Col::DIFF;

fn state_name(i: usize) -> &'static str {
    if i == 0 {
        "absent"
    } else {
        Class::ALL[i - 1].label()
    }
}

fn fmt_state(s: Option<(Class, Option<u8>)>) -> String {
    match s {
        None => "absent".into(),
        Some((Class::Mptcp, Some(v))) => format!("mptcp v{v}"),
        Some((c, _)) => c.label().into(),
    }
}

/// Tables of `mpscan diff`; `limit` caps each list (0 = no cap).
pub fn tables(d: &Diff, limit: usize) -> Vec<Table> {
    let tr = &d.transitions;
    let mut out = vec![];
    let mut t = Table::new(
        "Change by class (old scan -> new scan)",
        &["class", "old", "new", "stayed", "appeared", "disappeared", "switched in", "switched out", "net change"],
    );
    for (ci, c) in Class::ALL.iter().enumerate() {
        let s = ci + 1;
        let old: u64 = tr[s].iter().sum();
        let new: u64 = (0..=NCLASS).map(|f| tr[f][s]).sum();
        let switched_in: u64 = (1..=NCLASS).filter(|f| *f != s).map(|f| tr[f][s]).sum();
        let switched_out: u64 = (1..=NCLASS).filter(|t| *t != s).map(|t| tr[s][t]).sum();
        let net = new as i64 - old as i64;
        t.push(vec![
            Cell::text(c.label()),
            Cell::Int(old),
            Cell::Int(new),
            Cell::Int(tr[s][s]),
            Cell::Int(tr[0][s]),
            Cell::Int(tr[s][0]),
            Cell::Int(switched_in),
            Cell::Int(switched_out),
            Cell::text(format!("{net:+}")),
        ]);
    }
    let note = format!(
        "targets (address, port, probe): old {}, new {}; duplicate rows ignored: old {}, new {}",
        crate::table::thousands(d.old_targets),
        crate::table::thousands(d.new_targets),
        d.duplicates.0,
        d.duplicates.1
    );
    out.push(t.with_note(note));

    let mut cols = vec!["old \\ new"];
    cols.extend((0..=NCLASS).map(state_name));
    let mut m = Table::new("Transitions between classes", &cols);
    for (f, row) in tr.iter().enumerate() {
        let mut r = vec![Cell::text(state_name(f))];
        r.extend(row.iter().map(|n| Cell::Int(*n)));
        m.push(r);
    }
    out.push(m);

    let mut v =
        Table::new("MPTCP version changes of real servers", &["probe", "old version", "new version", "servers"]);
    let mut vc: Vec<_> = d.version_changes.iter().collect();
    vc.sort();
    for ((p, a, b), n) in vc {
        let f = |x: &Option<u8>| x.map_or("-".to_string(), |v| v.to_string());
        v.push(vec![Cell::text(p.label()), Cell::text(f(a)), Cell::text(f(b)), Cell::Int(*n)]);
    }
    out.push(v);

    type Pick = fn(&Change) -> bool;
    let lists: [(&str, Pick); 4] = [
        ("Real MPTCP servers that appeared", |c| c.old.is_none() && matches!(c.new, Some((Class::Mptcp, _)))),
        ("Real MPTCP servers that disappeared", |c| c.new.is_none() && matches!(c.old, Some((Class::Mptcp, _)))),
        (
            "Targets that switched class (MPTCP option on either side)",
            |c| matches!((c.old, c.new), (Some(a), Some(b)) if a.0 != b.0),
        ),
        (
            "Real MPTCP servers that switched version",
            |c| matches!((c.old, c.new), (Some((Class::Mptcp, a)), Some((Class::Mptcp, b))) if a != b),
        ),
    ];
    for (title, pick) in lists {
        let all: Vec<&Change> = d.changes.iter().filter(|c| pick(c)).collect();
        let shown = if limit == 0 { all.len() } else { limit.min(all.len()) };
        let mut t = Table::new(title, &["address", "port", "probe", "old", "new"]);
        for c in &all[..shown] {
            t.push(vec![
                Cell::text(c.target.ip.to_string()),
                Cell::Int(c.target.port as u64),
                Cell::text(c.target.probe.label()),
                Cell::text(fmt_state(c.old)),
                Cell::text(fmt_state(c.new)),
            ]);
        }
        let note = if shown < all.len() {
            format!(
                "{} in all; first {} by address shown (--limit 0 lists all)",
                crate::table::thousands(all.len() as u64),
                shown
            )
        } else {
            format!("{} in all", all.len())
        };
        out.push(t.with_note(note));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const H: &str = "ip,port,probe,class,mptcp_version\n";

    fn scan(body: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(format!("{H}{body}").as_bytes()).unwrap();
        f
    }

    fn run(old: &str, new: &str) -> Diff {
        let (a, b) = (scan(old), scan(new));
        let ia = Input::open_all(&[a.path().into()], NEEDED).unwrap();
        let ib = Input::open_all(&[b.path().into()], NEEDED).unwrap();
        Diff::run(&ia, &ib, 2).unwrap()
    }

    #[test]
    fn pack_round_trip() {
        for c in Class::ALL {
            for v in [None, Some(0), Some(1), Some(2)] {
                assert_eq!(unpack(pack(c, v)), (c, v));
            }
        }
    }

    #[test]
    fn crafted_scans() {
        let old = "\
1.0.0.1,443,v1,mptcp,1
1.0.0.2,443,v1,mptcp,1
1.0.0.3,443,v1,echo,1
1.0.0.4,443,v1,tcp,
1.0.0.5,443,v0,mptcp,0
1.0.0.6,443,v1,closed,
1.0.0.1,80,v1,tcp,
2001:db8::1,443,v1,mptcp,1
2001:db8::2,443,v1,echo,1
";
        let new = "\
1.0.0.1,443,v1,mptcp,1
1.0.0.3,443,v1,mptcp,1
1.0.0.4,443,v1,tcp,
1.0.0.4,443,v1,tcp,
1.0.0.5,443,v0,mptcp,1
1.0.0.7,443,v1,mptcp,1
1.0.0.8,443,v1,tcp,
1.0.0.1,443,v0,tcp,
1.0.0.1,80,v1,closed,
2001:db8::1,443,v1,mptcp,1
2001:db8::3,443,v1,echo,1
";
        let d = run(old, new);
        assert_eq!((d.old_targets, d.new_targets, d.duplicates), (9, 10, (0, 1)));
        let s = |c: Class| 1 + c as usize;
        let tr = d.transitions;
        assert_eq!(tr[s(Class::Mptcp)][s(Class::Mptcp)], 3); // 1.0.0.1, 1.0.0.5 (version), 2001:db8::1
        assert_eq!(tr[s(Class::Mptcp)][0], 1); // 1.0.0.2 gone
        assert_eq!(tr[s(Class::Echo)][s(Class::Mptcp)], 1); // 1.0.0.3
        assert_eq!(tr[s(Class::Echo)][0], 1); // 2001:db8::2
        assert_eq!(tr[0][s(Class::Mptcp)], 1); // 1.0.0.7
        assert_eq!(tr[0][s(Class::Tcp)], 2); // 1.0.0.8, 1.0.0.1 v0
        assert_eq!(tr[0][s(Class::Echo)], 1);
        assert_eq!(tr[s(Class::Tcp)][s(Class::Tcp)], 1);
        assert_eq!(tr[s(Class::Tcp)][s(Class::Closed)], 1);
        assert_eq!(tr[s(Class::Closed)][0], 1);
        assert_eq!(tr.iter().flatten().sum::<u64>(), 13);
        assert_eq!(d.version_changes.get(&(ProbeVersion::V0, Some(0), Some(1))), Some(&1));
        let ts = tables(&d, 0);
        let by_class = &ts[0];
        assert_eq!(by_class.int("mptcp", "old"), Some(4));
        assert_eq!(by_class.int("mptcp", "new"), Some(5));
        assert_eq!(by_class.int("mptcp", "switched in"), Some(1));
        assert_eq!(by_class.int("echo", "switched out"), Some(1));
        let list = |title: &str| -> Vec<String> {
            ts.iter()
                .find(|t| t.title == title)
                .unwrap()
                .rows
                .iter()
                .map(|r| match &r[0] {
                    Cell::Text(s) => s.clone(),
                    _ => panic!(),
                })
                .collect()
        };
        assert_eq!(list("Real MPTCP servers that appeared"), ["1.0.0.7"]);
        assert_eq!(list("Real MPTCP servers that disappeared"), ["1.0.0.2"]);
        assert_eq!(list("Targets that switched class (MPTCP option on either side)"), ["1.0.0.3"]);
        assert_eq!(list("Real MPTCP servers that switched version"), ["1.0.0.5"]);
        let capped = tables(&d, 1);
        assert!(capped[0].rows.len() == 6);
    }

    #[test]
    fn identical_scans_have_no_change() {
        let body = "1.0.0.1,443,v1,mptcp,1\n1.0.0.2,443,v1,echo,1\n";
        let d = run(body, body);
        assert!(d.changes.is_empty());
        assert_eq!(d.transitions[1][1] + d.transitions[2][2], 2);
    }
}
