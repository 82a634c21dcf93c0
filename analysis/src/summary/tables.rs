//! The tables of one scan's summary, made from a merged [`Aggregate`]: the headline, flag
//! combinations, ICMP answers, middlebox fingerprints and the prefix / origin-AS top lists.

use super::{Aggregate, Counts, FpStat, Level, Options, ECHO, MALF, MP};
use crate::fingerprint::Fingerprint;
use crate::metadata::ScanMeta;
use crate::table::{Cell, Table};
use mpscan_schema::{Class, ProbeVersion};

/// Label rows of the headline table, in order (also used by charts and tests).
pub const HEADLINE_ROWS: [&str; 9] = [
    "addresses probed",
    "answered",
    "with MP_CAPABLE",
    "of which echoed",
    "of which valid MPTCP",
    "malformed MPTCP option",
    "plain TCP (no MP_CAPABLE)",
    "closed (RST)",
    "unreachable (ICMP)",
];

/// The headline table for one port (`None` = all ports).
pub fn headline(agg: &Aggregate, meta: Option<&ScanMeta>, port: Option<u16>) -> Table {
    let mut probes = agg.probes();
    if let Some(m) = meta {
        for v in ProbeVersion::ALL {
            if m.probe_versions.iter().any(|s| s == v.label())
                && !probes.contains(&v)
                && agg.probe_filter.is_none_or(|f| f == v)
            {
                probes.push(v);
            }
        }
        probes.sort_by_key(|p| std::cmp::Reverse(*p as u8));
    }
    if probes.is_empty() {
        probes.push(agg.probe_filter.unwrap_or(ProbeVersion::V1));
    }
    let mut cols = vec!["".to_string()];
    for p in &probes {
        cols.push(format!("probe {}", p.label()));
        cols.push(format!("{} %", p.label()));
    }
    cols.push("% of".into());
    let title = match port {
        Some(p) => format!("Headline: port {p}"),
        None if agg.ports().len() > 1 => "Headline: all ports".to_string(),
        None => match agg.ports().first() {
            Some(p) => format!("Headline: port {p}"),
            None => "Headline".to_string(),
        },
    };
    let mut t = Table { title, columns: cols, rows: vec![], note: None };
    let counts: Vec<Counts> = probes.iter().map(|p| agg.counts(port, *p)).collect();
    let probed: Vec<Option<u64>> = probes.iter().map(|p| meta.and_then(|m| m.probed(port, p.label()))).collect();
    let indent = ["", "", "  ", "    ", "    ", "  ", "  ", "  ", "  "];
    let of = ["", "probed", "answered", "MP_CAPABLE", "MP_CAPABLE", "answered", "answered", "answered", "answered"];
    for (i, label) in HEADLINE_ROWS.iter().enumerate() {
        let mut row = vec![Cell::text(format!("{}{}", indent[i], label))];
        for (c, pr) in counts.iter().zip(&probed) {
            let answered: u64 = c.iter().sum();
            let mpc = c[MP] + c[ECHO];
            let (n, base) = match i {
                0 => (*pr, None),
                1 => (Some(answered), *pr),
                2 => (Some(mpc), Some(answered)),
                3 => (Some(c[ECHO]), Some(mpc)),
                4 => (Some(c[MP]), Some(mpc)),
                5 => (Some(c[MALF]), Some(answered)),
                6 => (Some(c[Class::Tcp as usize]), Some(answered)),
                7 => (Some(c[Class::Closed as usize]), Some(answered)),
                _ => (Some(c[Class::Unreachable as usize]), Some(answered)),
            };
            row.push(n.map_or(Cell::Empty, Cell::Int));
            row.push(match (n, base) {
                (Some(n), Some(b)) => Cell::pct(n, b),
                (_, _) if i == 0 => Cell::text(""),
                _ => Cell::Pct(None),
            });
        }
        row.push(Cell::text(of[i]));
        t.push(row);
    }
    let mut notes = vec![];
    if meta.is_none() {
        notes.push("addresses probed: pass the scan's metadata JSON with --metadata".to_string());
    } else if port.is_some() && agg.ports().len() > 1 {
        notes.push("addresses probed per port = targets probed / ports scanned".to_string());
    }
    if let Some(f) = agg.probe_filter {
        notes.push(format!("only probe {} rows", f.label()));
    }
    if !notes.is_empty() {
        t.note = Some(notes.join("; "));
    }
    t
}

/// Differences between the scanner's own class counts (metadata) and the rows found in the CSVs:
/// a missing or truncated shard CSV shows up here.
pub fn check_against_metadata(agg: &Aggregate, meta: &ScanMeta) -> Vec<String> {
    let mut out = vec![];
    if meta.classes.is_empty() || agg.probe_filter.is_some() {
        return out;
    }
    for p in ProbeVersion::ALL {
        let mut have = agg.counts(None, p);
        super::add_counts(&mut have, &crate::aliased::set_apart_counts(agg, p));
        for c in Class::ALL {
            let want = meta.classes.get(&(p.label().to_string(), c.label().to_string())).copied().unwrap_or(0);
            if want != have[c as usize] {
                out.push(format!(
                    "probe {} class {}: metadata says {} rows, the CSVs have {} (a shard CSV or metadata file missing?)",
                    p.label(),
                    c.label(),
                    want,
                    have[c as usize]
                ));
            }
        }
    }
    out
}

fn flag_bits(version: Option<u8>, flags: Option<u8>) -> [String; 4] {
    let Some(f) = flags else { return ["-".into(), "-".into(), "-".into(), "-".into()] };
    let a = if f & 0x80 != 0 { "required" } else { "no" };
    let b = if f & 0x40 != 0 { "set (invalid)" } else { "no" };
    let c = if f & 0x20 != 0 { "set (load balancer)" } else { "no" };
    let h = match (f & 0x01 != 0, version) {
        (false, _) => "none",
        (true, Some(0)) => "HMAC-SHA1",
        (true, Some(1)) => "HMAC-SHA256",
        (true, _) => "H bit",
    };
    [a.into(), b.into(), c.into(), h.into()]
}

/// MP_CAPABLE flag combinations among real MPTCP servers.
pub fn flags_table(agg: &Aggregate) -> Table {
    let mut t = Table::new(
        "MP_CAPABLE flags of real MPTCP servers",
        &["probe", "version", "flags", "A checksum", "B", "C no subflows", "H (HMAC)", "servers", "% of probe"],
    );
    let mut v: Vec<_> = agg.flags.iter().collect();
    v.sort_by(|a, b| {
        (std::cmp::Reverse(a.0 .0 as u8), std::cmp::Reverse(a.1), a.0).cmp(&(
            std::cmp::Reverse(b.0 .0 as u8),
            std::cmp::Reverse(b.1),
            b.0,
        ))
    });
    for ((probe, ver, flags), n) in v {
        let total = agg.counts(None, *probe)[MP];
        let [a, b, c, h] = flag_bits(*ver, *flags);
        t.push(vec![
            Cell::text(probe.label()),
            Cell::text(ver.map_or("-".into(), |v| v.to_string())),
            Cell::text(flags.map_or("-".into(), |f| format!("0x{f:02x}"))),
            Cell::text(a),
            Cell::text(b),
            Cell::text(c),
            Cell::text(h),
            Cell::Int(*n),
            Cell::pct(*n, total),
        ]);
    }
    t
}

/// The `unreachable` rows broken down by ICMP type and code (the family's own numbers), most
/// frequent first.
pub fn icmp_table(agg: &Aggregate) -> Table {
    let mut t = Table::new(
        "ICMP errors that ended probes (unreachable)",
        &["family", "type", "code", "meaning", "rows", "% of unreachable"],
    );
    let total: u64 = agg.icmp.values().sum();
    let mut v: Vec<_> = agg.icmp.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    for (key, n) in v {
        let (family, ty, code, meaning) = match *key {
            Some((v6, ty, code)) => (
                if v6 { "ICMPv6" } else { "ICMP" },
                ty.to_string(),
                code.to_string(),
                crate::icmp::describe(v6, ty, code),
            ),
            None => ("-", "-".into(), "-".into(), "no ICMP type/code in the detail column"),
        };
        t.push(vec![
            Cell::text(family),
            Cell::text(ty),
            Cell::text(code),
            Cell::text(meaning),
            Cell::Int(*n),
            Cell::pct(*n, total),
        ]);
    }
    t.with_note("types and codes in the numbers of the answer's family; the responder column says which router or host sent each error")
}

/// Fingerprints sorted by count (ties by key), for tables and charts.
pub fn sorted_fingerprints(agg: &Aggregate) -> Vec<(&Fingerprint, &FpStat)> {
    let mut v: Vec<_> = agg.fingerprints.iter().collect();
    v.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(b.0)));
    v
}

/// Middlebox fingerprints of echoing responders.
pub fn fingerprint_table(agg: &Aggregate, top: usize) -> Table {
    let mut t = Table::new(
        "Middlebox fingerprints of echoing responders",
        &["#", "initial TTL", "window", "options", "mirrored", "TS echoed", "answers", "% of echoes", "example"],
    );
    let v = sorted_fingerprints(agg);
    let total: u64 = v.iter().map(|x| x.1.count).sum();
    let shown = if top == 0 { v.len() } else { top.min(v.len()) };
    for (i, (fp, st)) in v.iter().take(shown).enumerate() {
        t.push(vec![
            Cell::text((i + 1).to_string()),
            Cell::text(fp.ttl_bucket.to_string()),
            Cell::text(fp.window.to_string()),
            Cell::text(fp.layout.clone()),
            Cell::text(if fp.mirrored { "yes" } else { "no" }),
            Cell::text(if fp.ts_echoed { "yes" } else { "no" }),
            Cell::Int(st.count),
            Cell::pct(st.count, total),
            Cell::text(st.example.to_string()),
        ]);
    }
    let covered: u64 = v.iter().take(shown).map(|x| x.1.count).sum();
    t.with_note(format!(
        "{} echoing answers from {} distinct fingerprints; the {} shown cover {:.2}%",
        crate::table::thousands(total),
        v.len(),
        shown,
        if total > 0 { 100.0 * covered as f64 / total as f64 } else { 0.0 }
    ))
}

/// (label, counts) of every network at a level that has any row.
pub fn networks(agg: &Aggregate, level: Level) -> Vec<(String, Counts)> {
    let nz = |c: &Counts| c.iter().any(|n| *n > 0);
    match level {
        Level::V4p8 => {
            agg.v4_8.iter().enumerate().filter(|x| nz(x.1)).map(|(i, c)| (format!("{i}.0.0.0/8"), *c)).collect()
        }
        Level::V4p16 => agg
            .v4_16()
            .iter()
            .enumerate()
            .filter(|x| x.1.iter().any(|n| *n > 0))
            .map(|(i, c)| (format!("{}/16", std::net::Ipv4Addr::from((i as u32) << 16)), c.map(u64::from)))
            .collect(),
        Level::V4p24 => {
            agg.v4_24.iter().map(|(k, c)| (format!("{}/24", std::net::Ipv4Addr::from(k << 8)), *c)).collect()
        }
        Level::V6p32 => agg
            .v6_32
            .iter()
            .map(|(k, c)| (format!("{}/32", std::net::Ipv6Addr::from((*k as u128) << 96)), *c))
            .collect(),
        Level::V6p48 => agg
            .v6_48
            .iter()
            .map(|(k, c)| (format!("{}/48", std::net::Ipv6Addr::from((*k as u128) << 80)), *c))
            .collect(),
        Level::As => match &agg.pfx {
            None => vec![],
            Some(t) => agg
                .asn
                .iter()
                .enumerate()
                .filter(|x| nz(x.1))
                .map(|(i, c)| (if i == agg.asn.len() - 1 { "no route".to_string() } else { t.labels[i].clone() }, *c))
                .collect(),
        },
    }
}

/// The networks of a level with the most rows of `class`, largest first (ties by label).
pub fn top_networks(agg: &Aggregate, level: Level, class: Class, top: usize) -> (Vec<(String, Counts)>, u64, usize) {
    let mut v: Vec<(String, Counts)> = networks(agg, level).into_iter().filter(|x| x.1[class as usize] > 0).collect();
    let total = v.iter().map(|x| x.1[class as usize]).sum();
    let distinct = v.len();
    v.sort_by(|a, b| b.1[class as usize].cmp(&a.1[class as usize]).then_with(|| a.0.cmp(&b.0)));
    if top > 0 {
        v.truncate(top);
    }
    (v, total, distinct)
}

fn top_table(agg: &Aggregate, level: Level, class: Class, top: usize) -> Table {
    let what = if class == Class::Mptcp { "real MPTCP servers" } else { "echoing boxes" };
    let full = level != Level::V4p24;
    let mut cols = vec!["#", "network"];
    if full {
        cols.push("answered");
    }
    cols.extend(["mptcp", "echo", "malformed", "% of all"]);
    let n = if top == 0 { String::new() } else { format!("{top} ") };
    let mut t = Table::new(format!("Top {n}{} networks by {what}", level.name()), &cols);
    let (v, total, distinct) = top_networks(agg, level, class, top);
    for (i, (label, c)) in v.iter().enumerate() {
        let mut row = vec![Cell::text((i + 1).to_string()), Cell::text(label.clone())];
        if full {
            row.push(Cell::Int(c.iter().sum()));
        }
        row.extend([Cell::Int(c[MP]), Cell::Int(c[ECHO]), Cell::Int(c[MALF]), Cell::pct(c[class as usize], total)]);
        t.push(row);
    }
    let mut note =
        format!("{} {what} in {} distinct {} networks", crate::table::thousands(total), distinct, level.name());
    if !full {
        note.push_str("; /24 counters are kept for answers with an MPTCP option only");
    }
    t.with_note(note)
}

/// All tables of `mpscan summary`.
pub fn tables(agg: &Aggregate, meta: Option<&ScanMeta>, opts: &Options) -> Vec<Table> {
    let mut out = vec![];
    let ports = agg.ports();
    if ports.len() > 1 {
        for p in &ports {
            out.push(headline(agg, meta, Some(*p)));
        }
    }
    out.push(headline(agg, meta, None));
    out.push(agg.hosts.table(&agg.probes()));
    out.push(flags_table(agg));
    if !agg.icmp.is_empty() {
        out.push(icmp_table(agg));
    }
    out.push(fingerprint_table(agg, opts.top));
    crate::stacks::extend_tables(agg, opts, &mut out);
    let has_v4 = agg.v4_8.iter().any(|c| c.iter().any(|n| *n > 0));
    let has_v6 = !agg.v6_32.is_empty();
    for level in &opts.levels {
        let show = match level {
            Level::V4p8 | Level::V4p16 | Level::V4p24 => has_v4,
            Level::V6p32 | Level::V6p48 => has_v6,
            Level::As => agg.pfx.is_some(),
        };
        if show {
            out.push(top_table(agg, *level, Class::Mptcp, opts.top));
            out.push(top_table(agg, *level, Class::Echo, opts.top));
        }
    }
    crate::enrich::tables(agg, opts, &mut out);
    out
}
