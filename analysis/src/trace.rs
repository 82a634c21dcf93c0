//! The trace tables of `mpscan summary --trace VERDICTS.csv`: the verdicts of `mpscan trace` by
//! the class the scan gave each target, and the routers where MP_CAPABLE was lost or something
//! answered for the target, with their /24 (IPv4) or /48 (IPv6) and, with `--pfx2as`, origin AS.
//!
//! A verdict names the first router whose quote shows the change (`hop`, `router`); the box that
//! made it sits between the last router that quoted the option intact and that one (tracebox's
//! interval). The verdicts file gives only the TTL of the last intact quote; the hops file
//! (`--hops`) names the router there too.

use crate::pfx2as::Pfx2As;
use crate::table::{Cell, Table};
use anyhow::{bail, Context, Result};
use mpscan_schema::reader::{for_each_row, Input};
use mpscan_schema::trace::{HOP_COLUMNS, VERDICTS, VERDICT_COLUMNS};
use mpscan_schema::{Class, Col, Ip};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// One row of a verdicts file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictRec {
    /// The traced address.
    pub target: IpAddr,
    /// The traced port.
    pub port: u16,
    /// `v0` or `v1`.
    pub probe: String,
    /// One of [`VERDICTS`].
    pub verdict: String,
    /// The TTL of the change (or of the on-path answer).
    pub hop: Option<u8>,
    /// The router there.
    pub router: Option<IpAddr>,
    /// The TTL of the last intact quote before the change.
    pub last_intact: Option<u8>,
}

/// The key that ties a verdict to a scan row and to its hops.
type Key = (IpAddr, u16, String);

/// Reads a CSV whose header must hold `cols`, calling `f` with each record and the columns'
/// indexes; errors name the file and the row.
fn read_csv(
    path: &Path,
    what: &str,
    cols: &[&str],
    mut f: impl FnMut(&csv::StringRecord, &[usize]) -> Result<()>,
) -> Result<()> {
    let mut r = csv::Reader::from_path(path).with_context(|| format!("{}: cannot read the {what}", path.display()))?;
    let h = r.headers().with_context(|| format!("{}: cannot read the {what}", path.display()))?.clone();
    let idx: Option<Vec<usize>> = cols.iter().map(|c| h.iter().position(|n| n == *c)).collect();
    let Some(idx) = idx else {
        bail!("{}: not the {what} of an mpscan trace (no {} columns)", path.display(), cols.join(", "));
    };
    for (i, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: row {}", path.display(), i + 2))?;
        f(&rec, &idx).with_context(|| format!("{}: row {}", path.display(), i + 2))?;
    }
    Ok(())
}

fn parse<T: std::str::FromStr>(col: &str, s: &str) -> Result<T> {
    s.parse().map_err(|_| anyhow::anyhow!("{col} {s:?} is not valid"))
}

fn opt<T: std::str::FromStr>(col: &str, s: &str) -> Result<Option<T>> {
    if s.is_empty() {
        Ok(None)
    } else {
        parse(col, s).map(Some)
    }
}

/// Reads verdicts files (`mpscan trace --verdicts`).
pub fn read_verdicts(paths: &[PathBuf]) -> Result<Vec<VerdictRec>> {
    let mut out = Vec::new();
    for p in paths {
        read_csv(p, "verdicts", &VERDICT_COLUMNS[..7], |rec, i| {
            let verdict = rec[i[3]].to_string();
            if !VERDICTS.contains(&verdict.as_str()) {
                bail!("verdict {verdict:?} is not one of {}", VERDICTS.join(", "));
            }
            out.push(VerdictRec {
                target: parse("target", &rec[i[0]])?,
                port: parse("port", &rec[i[1]])?,
                probe: rec[i[2]].to_string(),
                verdict,
                hop: opt("hop", &rec[i[4]])?,
                router: opt("router", &rec[i[5]])?,
                last_intact: opt("last_intact", &rec[i[6]])?,
            });
            Ok(())
        })?;
    }
    Ok(out)
}

/// The router that answered each (target, port, probe) at each TTL, from hops files, for the
/// (target, port, probe)s in `wanted` only.
pub fn read_hop_routers(paths: &[PathBuf], wanted: &HashMap<Key, ()>) -> Result<HashMap<(Key, u8), IpAddr>> {
    let cols: Vec<&str> = ["target", "port", "probe", "ttl", "router", "kind"].to_vec();
    debug_assert!(cols.iter().all(|c| HOP_COLUMNS.iter().any(|h| h.name == *c)));
    let mut out = HashMap::new();
    for p in paths {
        read_csv(p, "hops", &cols, |rec, i| {
            let key: Key = (parse("target", &rec[i[0]])?, parse("port", &rec[i[1]])?, rec[i[2]].to_string());
            if &rec[i[5]] == "icmp" && wanted.contains_key(&key) {
                out.insert((key, parse("ttl", &rec[i[3]])?), parse("router", &rec[i[4]])?);
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// The class each traced (target, port, probe) had in the scan CSVs.
pub fn scan_classes(scan: &[PathBuf], wanted: &HashMap<Key, ()>, threads: usize) -> Result<HashMap<Key, Class>> {
    let inputs = Input::open_all(scan, Col::KEY_CLASS)?;
    let parts = for_each_row(&inputs, threads, HashMap::new, |m: &mut HashMap<Key, Class>, row| {
        let key: Key = (to_std(row.ip), row.port, row.probe.label().to_string());
        if wanted.contains_key(&key) {
            m.insert(key, row.class);
        }
        Ok(())
    })?;
    Ok(parts.into_iter().flatten().collect())
}

fn to_std(ip: Ip) -> IpAddr {
    match ip {
        Ip::V4(a) => IpAddr::V4(a.into()),
        Ip::V6(a) => IpAddr::V6(a.into()),
    }
}

/// The keys of the verdicts, for the lookups.
pub fn keys(v: &[VerdictRec]) -> HashMap<Key, ()> {
    v.iter().map(|r| ((r.target, r.port, r.probe.clone()), ())).collect()
}

/// Verdicts by the class the scan gave the target (rows: the scan's classes, then targets the
/// scan files do not have; columns: every verdict).
pub fn by_class_table(v: &[VerdictRec], classes: Option<&HashMap<Key, Class>>) -> Table {
    let mut cols = vec!["scan class", "traced"];
    cols.extend(VERDICTS);
    let mut t = Table::new("Trace verdicts by scan class", &cols);
    let not_in_scan = if classes.is_some() { "not in the scan" } else { "(no scan given)" };
    let mut counts: BTreeMap<usize, (String, [u64; 5])> = BTreeMap::new();
    for r in v {
        let class = classes.and_then(|c| c.get(&(r.target, r.port, r.probe.clone())));
        let (at, label) = match class {
            Some(c) => (*c as usize, c.label().to_string()),
            None => (usize::MAX, not_in_scan.to_string()),
        };
        let e = counts.entry(at).or_insert_with(|| (label, [0; 5]));
        let k = VERDICTS.iter().position(|x| *x == r.verdict).unwrap_or(4);
        e.1[k] += 1;
    }
    let mut total = [0u64; 5];
    for (label, n) in counts.values() {
        let sum: u64 = n.iter().sum();
        let mut row = vec![Cell::text(label), Cell::Int(sum)];
        row.extend(n.iter().map(|&x| Cell::Int(x)));
        t.push(row);
        for (a, b) in total.iter_mut().zip(n) {
            *a += b;
        }
    }
    let mut row = vec![Cell::text("all"), Cell::Int(total.iter().sum())];
    row.extend(total.iter().map(|&x| Cell::Int(x)));
    t.push(row);
    t.with_note("one verdict per traced (target, port, probe version); classes are the scan's (mpscan scan) for the same target, port and version")
}

/// The /24 (IPv4) or /48 (IPv6) of an address.
pub fn prefix_of(a: IpAddr) -> String {
    match a {
        IpAddr::V4(v) => {
            let o = v.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v) => {
            let s = v.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
            format!("{net}/48")
        }
    }
}

/// The routers where the option was removed or modified, or that answered for the target, most
/// targets first (`top` rows, 0 = all): the first changed router, its prefix and origin AS (with
/// `pfx2as`), and the last router that quoted the option intact (with the hops).
pub fn routers_table(
    v: &[VerdictRec],
    hops: Option<&HashMap<(Key, u8), IpAddr>>,
    pfx2as: Option<&Pfx2As>,
    top: usize,
) -> Table {
    let mut groups: HashMap<(String, IpAddr, Option<IpAddr>), u64> = HashMap::new();
    for r in v.iter().filter(|r| matches!(r.verdict.as_str(), "removed-at" | "modified-at" | "answered-on-path")) {
        let Some(router) = r.router else { continue };
        let key: Key = (r.target, r.port, r.probe.clone());
        let before = match (hops, r.last_intact) {
            (Some(h), Some(ttl)) => h.get(&(key, ttl)).copied(),
            _ => None,
        };
        *groups.entry((r.verdict.clone(), router, before)).or_default() += 1;
    }
    let mut rows: Vec<_> = groups.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| (&a.0 .0, a.0 .1).cmp(&(&b.0 .0, b.0 .1))));
    let shown = if top == 0 { rows.len() } else { top.min(rows.len()) };
    let mut t = Table::new(
        "Routers where MP_CAPABLE was lost or answered for",
        &["verdict", "router", "prefix", "origin AS", "after (last intact)", "targets"],
    );
    let origin = |a: IpAddr| -> Cell {
        match pfx2as {
            Some(p) => Cell::text(p.label(p.lookup(from_std(a)))),
            None => Cell::Empty,
        }
    };
    for ((verdict, router, before), n) in &rows[..shown] {
        t.push(vec![
            Cell::text(verdict),
            Cell::text(router.to_string()),
            Cell::text(prefix_of(*router)),
            origin(*router),
            before.map_or(Cell::Empty, |b| Cell::text(b.to_string())),
            Cell::Int(*n),
        ]);
    }
    let mut note = format!("{} of {} (verdict, router) pairs", shown, rows.len());
    note.push_str("; the router is the first whose quote shows the change (or the on-path answerer); the box that changed it is between it and the last router that quoted the option intact");
    if hops.is_none() {
        note.push_str(" (give --hops to name that router)");
    }
    if pfx2as.is_none() {
        note.push_str("; origin AS with --pfx2as");
    }
    t.with_note(note)
}

fn from_std(a: IpAddr) -> Ip {
    match a {
        IpAddr::V4(v) => Ip::V4(v.into()),
        IpAddr::V6(v) => Ip::V6(v.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(target: &str, verdict: &str, hop: Option<u8>, router: Option<&str>, last: Option<u8>) -> VerdictRec {
        VerdictRec {
            target: target.parse().unwrap(),
            port: 443,
            probe: "v1".into(),
            verdict: verdict.into(),
            hop,
            router: router.map(|r| r.parse().unwrap()),
            last_intact: last,
        }
    }

    fn sample() -> Vec<VerdictRec> {
        vec![
            v("198.18.0.1", "removed-at", Some(3), Some("198.19.1.3"), Some(2)),
            v("198.18.0.2", "removed-at", Some(3), Some("198.19.1.3"), Some(2)),
            v("198.18.0.3", "intact", None, None, Some(4)),
            v("198.18.0.4", "answered-on-path", Some(2), Some("198.19.7.2"), None),
            v("2001:db8:5:6::1", "modified-at", Some(5), Some("2001:db8:5:9::1"), Some(4)),
            v("198.18.0.9", "unknown", None, None, None),
        ]
    }

    #[test]
    fn verdicts_are_counted_by_the_scan_class() {
        let vs = sample();
        let mut classes = HashMap::new();
        for (t, c) in [("198.18.0.1", Class::Tcp), ("198.18.0.2", Class::Tcp), ("198.18.0.3", Class::Mptcp)] {
            classes.insert((t.parse().unwrap(), 443, "v1".to_string()), c);
        }
        classes.insert(("198.18.0.4".parse().unwrap(), 443, "v1".to_string()), Class::Echo);
        let t = by_class_table(&vs, Some(&classes));
        assert_eq!((t.int("tcp", "removed-at"), t.int("tcp", "traced")), (Some(2), Some(2)));
        assert_eq!(t.int("mptcp", "intact"), Some(1));
        assert_eq!(t.int("echo", "answered-on-path"), Some(1));
        assert_eq!((t.int("not in the scan", "modified-at"), t.int("not in the scan", "unknown")), (Some(1), Some(1)));
        assert_eq!((t.int("all", "traced"), t.int("all", "removed-at")), (Some(6), Some(2)));
        // Without a scan, every target is in one row.
        assert_eq!(by_class_table(&vs, None).int("(no scan given)", "traced"), Some(6));
    }

    #[test]
    fn routers_are_grouped_with_prefix_origin_and_the_interval() {
        let vs = sample();
        let pfx = Pfx2As::parse(b"198.19.0.0\t16\t64500\n2001:db8::\t32\t64501\n");
        let mut hops = HashMap::new();
        for t in ["198.18.0.1", "198.18.0.2"] {
            hops.insert(((t.parse().unwrap(), 443, "v1".to_string()), 2u8), "198.19.1.2".parse().unwrap());
        }
        let t = routers_table(&vs, Some(&hops), Some(&pfx), 10);
        let r = t.row("removed-at").unwrap();
        assert_eq!(r[1], Cell::text("198.19.1.3"));
        assert_eq!(r[2], Cell::text("198.19.1.0/24"));
        assert_eq!(r[3], Cell::text("AS64500"));
        assert_eq!(r[4], Cell::text("198.19.1.2"));
        assert_eq!(r[5], Cell::Int(2));
        let m = t.row("modified-at").unwrap();
        assert_eq!(
            (m[2].clone(), m[3].clone(), m[4].clone()),
            (Cell::text("2001:db8:5::/48"), Cell::text("AS64501"), Cell::Empty)
        );
        assert!(t.row("answered-on-path").is_some());
        assert!(t.row("intact").is_none() && t.row("unknown").is_none());
        // Top 1: the two-target router only; no hops, no pfx2as: empty cells and a note.
        let t = routers_table(&vs, None, None, 1);
        assert_eq!(t.row("removed-at").unwrap()[3], Cell::Empty);
        assert!(t.row("modified-at").is_none());
    }

    #[test]
    fn verdicts_and_hops_files_are_read_and_bad_ones_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.csv");
        std::fs::write(
            &p,
            format!("{}\n198.18.0.1,443,v1,removed-at,3,198.19.1.3,2,,,removed\n198.18.0.3,443,v1,intact,,,4,5,mptcp,answered\n", VERDICT_COLUMNS.join(",")),
        )
        .unwrap();
        let vs = read_verdicts(std::slice::from_ref(&p)).unwrap();
        assert_eq!(vs.len(), 2);
        assert_eq!((vs[0].hop, vs[0].last_intact, vs[1].router), (Some(3), Some(2), None));
        let h = dir.path().join("h.csv");
        let names: Vec<&str> = HOP_COLUMNS.iter().map(|c| c.name).collect();
        std::fs::write(
            &h,
            format!(
                "{}\n198.18.0.1,443,v1,2,198.19.1.2,icmp,11,0,62,,64,intact,1460,same,64240,0,0,false,\n",
                names.join(",")
            ),
        )
        .unwrap();
        let hops = read_hop_routers(&[h], &keys(&vs)).unwrap();
        assert_eq!(hops.len(), 1);
        // A scan result given as verdicts, and a bad verdict: one error naming the file and row.
        let bad = dir.path().join("scan.csv");
        std::fs::write(&bad, "ip,port,probe,class\n").unwrap();
        let e = format!("{:#}", read_verdicts(std::slice::from_ref(&bad)).unwrap_err());
        assert!(e.contains("scan.csv: not the verdicts of an mpscan trace"), "{e}");
        std::fs::write(&p, format!("{}\n198.18.0.1,443,v1,lost,,,,,,\n", VERDICT_COLUMNS.join(","))).unwrap();
        let e = format!("{:#}", read_verdicts(&[p]).unwrap_err());
        assert!(e.contains("v.csv: row 2") && e.contains("\"lost\" is not one of"), "{e}");
    }
}
