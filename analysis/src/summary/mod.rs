//! The study tables of one scan: the headline (in the form of the 2018 RWTH full-IPv4 study),
//! MP_CAPABLE flag combinations of real servers, middlebox fingerprints of echoing boxes, and
//! breakdowns by prefix and origin AS with top-N lists.
//!
//! `Aggregate` is what one worker thread accumulates while rows stream past; workers' aggregates
//! are merged, then turned into `Table`s. Its size depends on the number of distinct keys
//! (prefixes, ASes, fingerprints), never on the number of rows: /8 and /16 counters are dense
//! arrays, /24 counters are kept only for answers that carried an MPTCP option.

use crate::fingerprint::Fingerprint;
use crate::pfx2as::{Pfx2As, NO_ROUTE};
use mpscan_schema::{Class, Ip, ProbeVersion, RowError, RowRef, NCLASS};
use std::collections::HashMap;
use std::sync::Arc;

mod hosts;
mod tables;
pub use hosts::Hosts;
pub use tables::*;

/// Indexes of the classes the tables single out in a per-class counter array.
const MP: usize = Class::Mptcp as usize;
const ECHO: usize = Class::Echo as usize;
const MALF: usize = Class::Malformed as usize;

/// /16 increments buffered before they are applied (see `Aggregate::pending16`).
const PENDING16: usize = 256;

/// Per-class counters.
pub type Counts = [u64; NCLASS];

/// A breakdown the user can ask for with `--by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// IPv4 /8.
    V4p8,
    /// IPv4 /16.
    V4p16,
    /// IPv4 /24 (answers with an MPTCP option only).
    V4p24,
    /// IPv6 /32.
    V6p32,
    /// IPv6 /48.
    V6p48,
    /// Origin AS from `--pfx2as`.
    As,
}

impl Level {
    /// Parse one `--by` item: `8`, `16`, `24`, `32`, `48` or `as`.
    pub fn parse(s: &str) -> Result<Level, String> {
        Ok(match s.trim().trim_start_matches('/') {
            "8" => Level::V4p8,
            "16" => Level::V4p16,
            "24" => Level::V4p24,
            "32" => Level::V6p32,
            "48" => Level::V6p48,
            "as" | "AS" | "asn" => Level::As,
            other => return Err(format!("unknown breakdown {other:?} (use 8, 16, 24, 32, 48 or as)")),
        })
    }
    fn name(self) -> &'static str {
        match self {
            Level::V4p8 => "/8",
            Level::V4p16 => "/16",
            Level::V4p24 => "/24",
            Level::V6p32 => "IPv6 /32",
            Level::V6p48 => "IPv6 /48",
            Level::As => "origin AS",
        }
    }
}

/// How the tables are built.
#[derive(Debug, Clone)]
pub struct Options {
    /// Rows per top-N table (0 = all).
    pub top: usize,
    /// Breakdowns to show.
    pub levels: Vec<Level>,
    /// Only rows of this probe version (`None` = all).
    pub probe: Option<ProbeVersion>,
    /// Prefix-to-AS table for the AS breakdown.
    pub pfx2as: Option<Arc<Pfx2As>>,
    /// Known aliased prefixes (`--aliased`): rows inside them are counted apart (crate::aliased).
    pub aliased: Option<Arc<crate::aliased::AliasedList>>,
    /// Answered IPv6 rows that must agree to flag a prefix as likely aliased (0 = off).
    pub alias_min: u32,
    /// Organization and economy tables (`--as-org`, `--geo`) and the files' names and dates.
    pub enrich: crate::enrich::Enrichment,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            top: 10,
            levels: vec![Level::V4p8, Level::V4p16, Level::V4p24, Level::V6p32, Level::V6p48, Level::As],
            probe: None,
            pfx2as: None,
            aliased: None,
            alias_min: 3,
            enrich: Default::default(),
        }
    }
}

/// Occurrences of one fingerprint and the lowest responder showing it (deterministic example).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FpStat {
    /// Echoing answers with this fingerprint.
    pub count: u64,
    /// Smallest address with it.
    pub example: Ip,
}

/// Everything one pass over the rows accumulates.
#[derive(Debug, Clone)]
pub struct Aggregate {
    probe_filter: Option<ProbeVersion>,
    pfx: Option<Arc<Pfx2As>>,
    /// Rows counted.
    pub rows: u64,
    /// Counters per (port, probe).
    pub headline: Vec<(u16, ProbeVersion, Counts)>,
    /// Real servers per (probe, answer version, flags).
    pub flags: HashMap<(ProbeVersion, Option<u8>, Option<u8>), u64>,
    /// Echoing answers per fingerprint.
    pub fingerprints: HashMap<Fingerprint, FpStat>,
    /// `unreachable` rows per (IPv6, ICMP type, code); `None` where the detail is absent or not
    /// an ICMP type and code.
    pub icmp: HashMap<Option<(bool, u8, u8)>, u64>,
    /// IPv4 counters per /8.
    pub v4_8: Vec<Counts>,
    /// IPv4 counters per /16, 32-bit so the 65,536 of them (1.5 MB) stay in a core's L2 cache:
    /// this is the one random access every row makes. A /16 holds 65,536 addresses, so it
    /// cannot reach 2^32 rows with fewer than 32,768 ports x 2 probes; counts saturate beyond.
    /// Complete once [`Aggregate::finish`] has applied `pending16`.
    v4_16: Vec<[u32; NCLASS]>,
    /// /16 increments not yet applied to `v4_16`, packed `/16 << 3 | class`. Applied in batches
    /// of [`PENDING16`]: a row's parse is too long for the CPU to overlap one row's cache miss
    /// with the next row's, while a tight loop over a batch keeps many misses in flight
    /// (`perf annotate` put 86% of the aggregation's time on that one load before batching).
    pending16: Vec<u32>,
    /// With `--pfx2as` or `--geo`: IPv4 rows whose lookups are still to do, packed
    /// `address << 3 | class`. Done in batches of [`PENDING16`] like the /16 counters: first every
    /// lookup, then every counter, so the cache misses of many rows are in flight at once.
    pending_v4: Vec<u64>,
    /// Whether IPv4 rows go through `pending_v4`.
    batch_v4: bool,
    /// IPv4 counters per /24, only rows with an MPTCP option (mptcp, echo, malformed).
    pub v4_24: HashMap<u32, Counts>,
    /// IPv6 counters per /32.
    pub v6_32: HashMap<u32, Counts>,
    /// IPv6 counters per /48.
    pub v6_48: HashMap<u64, Counts>,
    /// Counters per origin-AS label id; the last entry is "no route".
    pub asn: Vec<Counts>,
    /// Distinct addresses with an MPTCP option, by probe version and class.
    pub hosts: Hosts,
    /// Stack fingerprints of every SYN-ACK class and the alias detector (crate::stacks).
    pub stacks: crate::stacks::Stacks,
    /// Rows set apart by `--aliased` (crate::aliased).
    pub set_apart: Option<crate::aliased::SetApart>,
    /// Counters per organization and per economy (`--as-org`, `--geo`).
    pub enrich: crate::enrich::Counters,
}

impl Aggregate {
    /// Empty aggregate for these options.
    pub fn new(opts: &Options) -> Aggregate {
        Aggregate {
            probe_filter: opts.probe,
            pfx: opts.pfx2as.clone(),
            rows: 0,
            headline: Vec::new(),
            flags: HashMap::new(),
            fingerprints: HashMap::new(),
            icmp: HashMap::new(),
            v4_8: vec![[0; NCLASS]; 256],
            v4_16: vec![[0u32; NCLASS]; 65536],
            pending16: Vec::with_capacity(PENDING16),
            pending_v4: Vec::with_capacity(PENDING16),
            batch_v4: opts.pfx2as.is_some() || opts.enrich.geo.is_some(),
            v4_24: HashMap::new(),
            v6_32: HashMap::new(),
            v6_48: HashMap::new(),
            asn: vec![[0; NCLASS]; opts.pfx2as.as_ref().map_or(0, |t| t.labels.len() + 1)],
            hosts: Hosts::default(),
            stacks: crate::stacks::Stacks::new(opts.alias_min),
            set_apart: opts.aliased.clone().map(crate::aliased::SetApart::new),
            enrich: crate::enrich::Counters::new(&opts.enrich),
        }
    }

    /// Count one row (the hot path).
    #[inline]
    pub fn add(&mut self, r: &RowRef) -> Result<(), RowError> {
        if self.probe_filter.is_some_and(|p| p != r.probe) {
            return Ok(());
        }
        if self.set_apart.as_mut().is_some_and(|s| s.take(r)) {
            return Ok(());
        }
        self.rows += 1;
        let c = r.class as usize;
        let slot = match self.headline.iter().position(|(p, v, _)| *p == r.port && *v == r.probe) {
            Some(i) => i,
            None => {
                self.headline.push((r.port, r.probe, [0; NCLASS]));
                self.headline.len() - 1
            }
        };
        self.headline[slot].2[c] += 1;
        match r.ip {
            Ip::V4(a) => {
                self.v4_8[(a >> 24) as usize][c] += 1;
                self.pending16.push((a >> 16) << 3 | c as u32);
                if self.pending16.len() == PENDING16 {
                    self.apply_pending16();
                }
                if r.class.has_mptcp_option() {
                    self.v4_24.entry(a >> 8).or_insert([0; NCLASS])[c] += 1;
                    self.hosts.add(r.ip, r.probe, r.class);
                }
            }
            Ip::V6(a) => {
                self.v6_32.entry((a >> 96) as u32).or_insert([0; NCLASS])[c] += 1;
                self.v6_48.entry((a >> 80) as u64).or_insert([0; NCLASS])[c] += 1;
                self.hosts.add(r.ip, r.probe, r.class);
            }
        }
        if self.batch_v4 {
            if let Ip::V4(a) = r.ip {
                self.pending_v4.push((a as u64) << 3 | c as u64);
                if self.pending_v4.len() == PENDING16 {
                    self.apply_pending_v4();
                }
            } else {
                self.enrich_now(r.ip, c);
            }
        }
        match r.class {
            Class::Mptcp => *self.flags.entry((r.probe, r.version, r.flags)).or_insert(0) += 1,
            Class::Echo => {
                let fp = Fingerprint::of(r.ttl, r.window, r.options, r.mirrored, r.ts_echoed).map_err(RowError)?;
                let e = self.fingerprints.entry(fp).or_insert(FpStat { count: 0, example: r.ip });
                e.count += 1;
                e.example = e.example.min(r.ip);
            }
            Class::Unreachable => {
                let key = crate::icmp::parse_detail(r.detail).map(|(t, c)| (matches!(r.ip, Ip::V6(_)), t, c));
                *self.icmp.entry(key).or_insert(0) += 1;
            }
            _ => {}
        }
        self.stacks.add(r);
        Ok(())
    }

    /// Apply the buffered /16 increments.
    fn apply_pending16(&mut self) {
        for p in self.pending16.drain(..) {
            let n = &mut self.v4_16[(p >> 3) as usize][(p & 7) as usize];
            *n = n.saturating_add(1);
        }
    }

    /// Counters per /16 (index: the /16's first 16 bits), complete after [`finish`](Self::finish).
    pub fn v4_16(&self) -> &[[u32; NCLASS]] {
        &self.v4_16
    }

    /// The origin-AS, organization and economy counters of one row.
    #[inline]
    fn enrich_now(&mut self, ip: Ip, c: usize) {
        if let Some(t) = &self.pfx {
            let id = t.lookup(ip);
            self.count_origin(id, c);
        }
        if let Some(g) = &mut self.enrich.geo {
            g.add(ip, c);
        }
    }

    #[inline]
    fn count_origin(&mut self, id: u32, c: usize) {
        let i = if id == NO_ROUTE { self.asn.len() - 1 } else { id as usize };
        self.asn[i][c] += 1;
        if let Some(o) = &mut self.enrich.org {
            o.add(i, c);
        }
    }

    /// Do the buffered IPv4 rows' lookups (both tables' in one pass, so their cache misses
    /// overlap), then count them.
    fn apply_pending_v4(&mut self) {
        let batch = std::mem::take(&mut self.pending_v4);
        let (mut as_ids, mut geo_ids) = ([0u32; PENDING16], [0u32; PENDING16]);
        let pfx = self.pfx.clone();
        let geo = self.enrich.geo.as_ref().map(|g| g.table());
        for (k, p) in batch.iter().enumerate() {
            let ip = Ip::V4((p >> 3) as u32);
            if let Some(t) = &pfx {
                as_ids[k] = t.lookup(ip);
            }
            if let Some(g) = &geo {
                geo_ids[k] = g.lookup(ip);
            }
        }
        if pfx.is_some() {
            for (id, p) in as_ids.iter().zip(&batch) {
                self.count_origin(*id, (p & 7) as usize);
            }
        }
        if let Some(g) = &mut self.enrich.geo {
            for (id, p) in geo_ids.iter().zip(&batch) {
                g.count(*id, (p & 7) as usize);
            }
        }
        self.pending_v4 = batch;
        self.pending_v4.clear();
    }

    /// Apply every buffered row: call once after the last [`add`](Self::add) before reading the
    /// counters (`cli::aggregate` and [`merge`](Self::merge) do).
    pub fn finish(&mut self) {
        self.apply_pending16();
        self.apply_pending_v4();
    }

    /// Fold another worker's aggregate into this one.
    pub fn merge(&mut self, mut o: Aggregate) {
        self.finish();
        o.finish();
        self.rows += o.rows;
        for (p, v, c) in o.headline {
            match self.headline.iter_mut().find(|(p2, v2, _)| *p2 == p && *v2 == v) {
                Some(s) => add_counts(&mut s.2, &c),
                None => self.headline.push((p, v, c)),
            }
        }
        for (k, n) in o.flags {
            *self.flags.entry(k).or_insert(0) += n;
        }
        for (k, n) in o.icmp {
            *self.icmp.entry(k).or_insert(0) += n;
        }
        for (k, s) in o.fingerprints {
            let e = self.fingerprints.entry(k).or_insert(FpStat { count: 0, example: s.example });
            e.count += s.count;
            e.example = e.example.min(s.example);
        }
        for (a, b) in self.v4_8.iter_mut().zip(&o.v4_8) {
            add_counts(a, b);
        }
        for (a, b) in self.v4_16.iter_mut().zip(&o.v4_16) {
            for i in 0..NCLASS {
                a[i] = a[i].saturating_add(b[i]);
            }
        }
        merge_map(&mut self.v4_24, o.v4_24);
        merge_map(&mut self.v6_32, o.v6_32);
        merge_map(&mut self.v6_48, o.v6_48);
        for (a, b) in self.asn.iter_mut().zip(&o.asn) {
            add_counts(a, b);
        }
        self.hosts.merge(o.hosts);
        self.stacks.merge(o.stacks);
        crate::aliased::SetApart::merge(&mut self.set_apart, o.set_apart);
        self.enrich.merge(o.enrich);
    }

    /// Counters per probe for one port (`None` = all ports).
    pub fn counts(&self, port: Option<u16>, probe: ProbeVersion) -> Counts {
        let mut c = [0; NCLASS];
        for (p, v, n) in &self.headline {
            if *v == probe && port.is_none_or(|q| q == *p) {
                add_counts(&mut c, n);
            }
        }
        c
    }

    /// Ports seen, sorted.
    pub fn ports(&self) -> Vec<u16> {
        let mut p: Vec<u16> = self.headline.iter().map(|h| h.0).collect();
        p.sort_unstable();
        p.dedup();
        p
    }

    /// Probe versions seen (v1 first).
    pub fn probes(&self) -> Vec<ProbeVersion> {
        ProbeVersion::ALL.into_iter().filter(|v| self.headline.iter().any(|h| h.1 == *v)).collect()
    }
}

fn add_counts(a: &mut Counts, b: &Counts) {
    for i in 0..NCLASS {
        a[i] += b[i];
    }
}

fn merge_map<K: std::hash::Hash + Eq>(a: &mut HashMap<K, Counts>, b: HashMap<K, Counts>) {
    for (k, c) in b {
        add_counts(a.entry(k).or_insert([0; NCLASS]), &c);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::metadata::ScanMeta;
    use crate::table::Cell;
    use mpscan_schema::{Col, Columns};

    pub(crate) const HEADER: &str =
        "ip,port,probe,class,responder,mptcp_version,mpc_flags,mpc_key,options,mirrored,ts_echoed,ttl,window,timestamp";

    /// A hand-made scan whose every count is known. Two ports, both probes, IPv4 and IPv6.
    pub(crate) const SMALL: &str = "\
17.1.1.1,443,v1,mptcp,17.1.1.1,1,0x21,0011223344556677,020405b40402080a0000000100000002010303071e0c0121aabbccddeeff0011,false,false,50,65535,t
17.1.1.2,443,v1,mptcp,17.1.1.2,1,0x01,0011223344556677,020405b41e0c0101aabbccddeeff0011,false,false,50,65535,t
17.1.2.3,443,v0,mptcp,17.1.2.3,0,0x81,0011223344556677,020405b41e0c0081aabbccddeeff0011,false,false,50,65535,t
17.1.2.3,443,v1,mptcp,17.1.2.3,1,0x01,0011223344556677,020405b41e0c0101aabbccddeeff0011,false,false,50,65535,t
10.1.2.3,443,v1,echo,10.1.2.3,1,0x01,,020405b41e040101,false,false,60,8192,t
10.1.2.4,443,v1,echo,10.1.2.4,1,0x01,,020405b41e040101,false,false,61,8192,t
10.1.3.4,443,v1,echo,10.1.3.4,1,0x01,,020405b40402080a0000000100000000010303071e040101,true,true,120,29200,t
10.9.9.9,443,v1,malformed,10.9.9.9,,,,1e03,false,false,60,8192,t
10.1.2.5,443,v1,tcp,10.1.2.5,,,,020405b4,false,false,60,8192,t
10.1.2.6,443,v1,tcp,10.1.2.6,,,,020405b4,false,false,60,8192,t
10.1.2.7,443,v1,closed,10.1.2.7,,,,,false,false,60,0,t
192.0.2.1,443,v1,unreachable,198.51.100.1,,,,,false,false,250,0,t
10.1.2.3,80,v1,echo,10.1.2.3,1,0x01,,1e040101,false,false,60,8192,t
2001:db8::1,443,v1,mptcp,2001:db8::1,1,0x01,0011223344556677,1e0c0101aabbccddeeff0011,false,false,50,65535,t
2001:db8:1::2,443,v1,tcp,2001:db8:1::2,,,,,false,false,50,65535,t
";

    fn agg_of(body: &str, opts: &Options) -> Aggregate {
        agg_of_csv(&format!("{HEADER}\n{body}"), opts)
    }

    /// Summarises a whole CSV text, header included.
    pub(crate) fn agg_of_csv(text: &str, opts: &Options) -> Aggregate {
        let mut rdr = csv::ReaderBuilder::new().from_reader(std::io::Cursor::new(text.as_bytes().to_vec()));
        let cols = Columns::resolve(rdr.byte_headers().unwrap(), Col::SUMMARY).unwrap();
        let mut a = Aggregate::new(opts);
        let mut rec = csv::ByteRecord::new();
        while rdr.read_byte_record(&mut rec).unwrap() {
            a.add(&RowRef::parse(&rec, &cols).unwrap()).unwrap();
        }
        a.finish();
        a
    }

    #[test]
    fn headline_counts_and_shares() {
        let a = agg_of(SMALL, &Options::default());
        assert_eq!(a.rows, 15);
        assert_eq!(a.ports(), vec![80, 443]);
        let h = headline(&a, None, Some(443));
        assert_eq!(h.title, "Headline: port 443");
        let v1 = "probe v1";
        assert_eq!(h.int("answered", v1), Some(13));
        assert_eq!(h.int("with MP_CAPABLE", v1), Some(7));
        assert_eq!(h.int("of which echoed", v1), Some(3));
        assert_eq!(h.int("of which valid MPTCP", v1), Some(4));
        assert_eq!(h.int("malformed MPTCP option", v1), Some(1));
        assert_eq!(h.int("plain TCP (no MP_CAPABLE)", v1), Some(3));
        assert_eq!(h.int("closed (RST)", v1), Some(1));
        assert_eq!(h.int("unreachable (ICMP)", v1), Some(1));
        assert_eq!(h.int("answered", "probe v0"), Some(1));
        assert_eq!(h.row("of which echoed").unwrap()[2], Cell::pct(3, 7));
        assert_eq!(h.row("addresses probed").unwrap()[1], Cell::Empty);
        let all = headline(&a, None, None);
        assert_eq!(all.title, "Headline: all ports");
        assert_eq!(all.int("of which echoed", v1), Some(4));
        let meta = ScanMeta {
            targets_probed: 1000,
            ports: vec![80, 443],
            probe_versions: vec!["v1".into(), "v0".into()],
            files: 1,
            ..Default::default()
        };
        let h = headline(&a, Some(&meta), Some(443));
        assert_eq!(h.int("addresses probed", v1), Some(500));
        assert_eq!(h.row("answered").unwrap()[2], Cell::pct(13, 500));
        // Two ports: one headline per port and one for all.
        let ts = tables(&a, Some(&meta), &Options::default());
        assert!(check_against_metadata(&a, &meta).is_empty(), "no classes in metadata: nothing to check");
        let mut meta2 = meta.clone();
        meta2.classes.insert(("v1".into(), "echo".into()), 4);
        let w = check_against_metadata(&a, &meta2);
        // echo agrees (4); the five other non-empty (probe, class) pairs disagree.
        assert_eq!(w.len(), 6, "{w:?}");
        assert!(w[0].starts_with("probe v1 class mptcp: metadata says 0 rows, the CSVs have 4"), "{w:?}");
        assert_eq!(ts.iter().filter(|t| t.title.starts_with("Headline")).count(), 3);
    }

    #[test]
    fn probe_filter() {
        let a = agg_of(SMALL, &Options { probe: Some(ProbeVersion::V0), ..Options::default() });
        assert_eq!(a.rows, 1);
        assert_eq!(a.probes(), vec![ProbeVersion::V0]);
    }

    #[test]
    fn flags_of_real_servers() {
        let a = agg_of(SMALL, &Options::default());
        let t = flags_table(&a);
        let rows: Vec<Vec<String>> = t
            .rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|c| match c {
                        Cell::Text(s) => s.clone(),
                        Cell::Int(n) => n.to_string(),
                        c => format!("{c:?}"),
                    })
                    .collect()
            })
            .collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(&rows[0][..8], ["v1", "1", "0x01", "no", "no", "no", "HMAC-SHA256", "3"]);
        assert_eq!(&rows[1][..8], ["v1", "1", "0x21", "no", "no", "set (load balancer)", "HMAC-SHA256", "1"]);
        assert_eq!(&rows[2][..8], ["v0", "0", "0x81", "required", "no", "no", "HMAC-SHA1", "1"]);
        assert_eq!(t.rows[0][8], Cell::pct(3, 4));
    }

    #[test]
    fn unreachable_broken_down_by_icmp_type_and_code() {
        let body = format!(
            "{HEADER},detail\n\
            192.0.2.1,443,v1,unreachable,198.51.100.1,,,,,false,false,250,0,t,icmp-3-13\n\
            192.0.2.2,443,v1,unreachable,198.51.100.1,,,,,false,false,250,0,t,icmp-3-13\n\
            192.0.2.3,443,v0,unreachable,198.51.100.9,,,,,false,false,250,0,t,icmp-11-0\n\
            2001:db8::1,443,v1,unreachable,2001:db8::9,,,,,false,false,250,0,t,icmp-3-0\n\
            2001:db8::2,443,v1,unreachable,2001:db8::9,,,,,false,false,250,0,t,garbage\n\
            192.0.2.9,443,v1,malformed,192.0.2.9,1,0x00,,,false,false,250,0,t,mpc-no-algorithm\n"
        );
        let agg = agg_of_csv(&body, &Options::default());
        assert_eq!(agg.icmp.get(&Some((false, 3, 13))), Some(&2));
        assert_eq!(agg.icmp.get(&Some((false, 11, 0))), Some(&1));
        assert_eq!(agg.icmp.get(&Some((true, 3, 0))), Some(&1));
        assert_eq!(agg.icmp.get(&None), Some(&1));
        assert_eq!(agg.icmp.values().sum::<u64>(), 5, "only unreachable rows");
        let t = icmp_table(&agg);
        let text = crate::table::render(&[t], crate::table::Format::Markdown);
        assert!(text.contains("| ICMP | 3 | 13 | admin-prohibited | 2 | 40.00% |"), "{text}");
        assert!(text.contains("| ICMP | 11 | 0 | TTL exceeded in transit | 1 |"), "{text}");
        assert!(text.contains("| ICMPv6 | 3 | 0 | hop limit exceeded in transit | 1 |"), "{text}");
        // A file without the detail column still summarises; the table says what it lacks.
        let agg = agg_of(SMALL, &Options::default());
        assert_eq!(agg.icmp.get(&None), Some(&1));
        // The table is among summary's tables exactly when there are unreachable rows.
        let titles: Vec<String> = tables(&agg, None, &Options::default()).iter().map(|t| t.title.clone()).collect();
        assert!(titles.iter().any(|t| t.starts_with("ICMP errors")), "{titles:?}");
    }

    #[test]
    fn fingerprints_group_echoes() {
        let a = agg_of(SMALL, &Options::default());
        let v = sorted_fingerprints(&a);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].0.to_string(), "ttl<=64 win=8192 opts=mss,mp4 mirrored=false ts_echoed=false");
        assert_eq!(v[0].1.count, 2);
        assert_eq!(v[0].1.example.to_string(), "10.1.2.3");
        assert_eq!(v[1].0.to_string(), "ttl<=64 win=8192 opts=mp4 mirrored=false ts_echoed=false");
        assert_eq!(v[2].0.to_string(), "ttl<=128 win=29200 opts=mss,sok,ts,nop,ws,mp4 mirrored=true ts_echoed=true");
        assert!(fingerprint_table(&a, 1)
            .note
            .unwrap()
            .contains("4 echoing answers from 3 distinct fingerprints; the 1 shown cover 50.00%"));
    }

    #[test]
    fn prefix_breakdowns() {
        let a = agg_of(SMALL, &Options::default());
        let (v, total, distinct) = top_networks(&a, Level::V4p16, Class::Mptcp, 10);
        assert_eq!((total, distinct), (4, 1));
        assert_eq!(v[0].0, "17.1.0.0/16");
        assert_eq!(v[0].1[MP], 4);
        let (v, total, distinct) = top_networks(&a, Level::V4p24, Class::Echo, 10);
        assert_eq!((total, distinct), (4, 2));
        assert_eq!((v[0].0.as_str(), v[0].1[ECHO]), ("10.1.2.0/24", 3));
        assert_eq!((v[1].0.as_str(), v[1].1[ECHO]), ("10.1.3.0/24", 1));
        // /24 keeps only MPTCP-option rows: the tcp and closed rows of 10.1.2.0/24 are not there.
        assert_eq!(v[0].1[Class::Tcp as usize], 0);
        let (v, ..) = top_networks(&a, Level::V4p8, Class::Echo, 1);
        assert_eq!(v.len(), 1);
        assert_eq!((v[0].0.as_str(), v[0].1.iter().sum::<u64>()), ("10.0.0.0/8", 8));
        let (v, ..) = top_networks(&a, Level::V6p48, Class::Mptcp, 0);
        assert_eq!(v[0].0, "2001:db8::/48");
        assert_eq!(networks(&a, Level::V6p32), vec![("2001:db8::/32".to_string(), [1, 0, 0, 1, 0, 0])]);
    }

    #[test]
    fn as_breakdown_uses_longest_prefix() {
        let t = Pfx2As::parse(b"17.0.0.0\t8\t714\n17.1.2.0\t24\t6185\n10.0.0.0\t8\t64500\n2001:db8::\t32\t64501\n");
        let opts = Options { pfx2as: Some(Arc::new(t)), ..Options::default() };
        let a = agg_of(SMALL, &opts);
        let (v, total, _) = top_networks(&a, Level::As, Class::Mptcp, 0);
        assert_eq!(total, 5);
        let got: Vec<(&str, u64)> = v.iter().map(|x| (x.0.as_str(), x.1[MP])).collect();
        assert_eq!(got, vec![("AS6185", 2), ("AS714", 2), ("AS64501", 1)]);
        let all = networks(&a, Level::As);
        assert!(all.contains(&("no route".to_string(), [0, 0, 0, 0, 0, 1])), "{all:?}");
    }

    /// The /16 counters include increments still buffered, whatever the batch boundary.
    #[test]
    fn buffered_16_counts_are_exact() {
        for rows in [1, PENDING16 - 1, PENDING16, PENDING16 + 1, 3 * PENDING16 + 7] {
            let body: Vec<String> = (0..rows)
                .map(|i| {
                    format!("10.{}.0.{},443,v1,{},,,,,,false,false,64,0,t", i % 3, i % 250, ["tcp", "closed"][i % 2])
                })
                .collect();
            let a = agg_of(&body.join("\n"), &Options::default());
            let v = a.v4_16();
            for net in 0..3usize {
                let want = |class: usize| (0..rows).filter(|i| i % 3 == net && i % 2 == class).count() as u32;
                let got = v[(10 << 8) | net];
                assert_eq!((got[Class::Tcp as usize], got[Class::Closed as usize]), (want(0), want(1)), "{rows} rows");
            }
        }
    }

    #[test]
    fn merge_equals_single_pass() {
        let lines: Vec<&str> = SMALL.lines().collect();
        let whole = agg_of(SMALL, &Options::default());
        let mut a = agg_of(&lines[..6].join("\n"), &Options::default());
        a.merge(agg_of(&lines[6..].join("\n"), &Options::default()));
        let o = Options::default();
        assert_eq!(tables(&a, None, &o), tables(&whole, None, &o));
    }
}
