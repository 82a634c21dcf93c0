//! Economy (country) of an address, from a MaxMind-format database (GeoLite2-Country, IPinfo's
//! free country database) or from a CSV of `start,end,country` ranges.
//!
//! Which of the two a file is, is decided by its content: a MaxMind DB ends with the metadata
//! marker `\xAB\xCD\xEFMaxMind.com` (searched in its last 128 KiB), whatever the file is called.
//!
//! Neither is looked up per row: the database's every network (read once with the `maxminddb`
//! crate) or the CSV's every range is flattened into the same disjoint sorted ranges the origin-AS
//! lookup uses ([`super::lpm`]), so a row costs one binary search within its /16, not a walk of
//! up to 128 tree nodes plus a record decode.

use super::lpm::{Interval, RangeTable, NONE};
use super::{first_problem, Skips};
use crate::stacks::FxMap;
use anyhow::{bail, Context, Result};
use mpscan_schema::Ip;
use serde::Deserialize;
use std::path::Path;

/// The MaxMind DB metadata marker.
const MMDB_MARKER: &[u8] = b"\xab\xcd\xefMaxMind.com";

/// Where the economy table came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GeoKind {
    /// A MaxMind DB: its `database_type` and `build_epoch` (seconds since 1970).
    Mmdb {
        /// `GeoLite2-Country`, `ipinfo country.mmdb`, ...
        database_type: String,
        /// When the database was built.
        build_epoch: u64,
    },
    /// A `start,end,country` CSV.
    Csv,
}

/// Economy lookup table.
#[derive(Debug, Clone)]
pub struct Geo {
    /// Economy labels (ISO 3166 alpha-2 codes, upper case), indexed by label id.
    pub labels: Vec<String>,
    table: RangeTable,
    /// What the file was.
    pub kind: GeoKind,
    /// Networks (MaxMind) or range lines (CSV) used.
    pub ranges: u64,
    /// Records or lines counted and skipped.
    pub skips: Skips,
}

/// True when `bytes` hold a MaxMind DB (its metadata marker near the end).
pub fn is_mmdb(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(128 * 1024)..];
    tail.windows(MMDB_MARKER.len()).any(|w| w == MMDB_MARKER)
}

/// A country field: a map with `iso_code` (MaxMind) or the code itself (IPinfo's older layout).
#[derive(Deserialize)]
#[serde(untagged)]
enum CountryField {
    Code(String),
    Map {
        #[serde(default)]
        iso_code: Option<String>,
    },
}

/// The fields of a record that name an economy, in the order they are used: IPinfo's
/// `country_code`, then `country` (where the network is), then `registered_country` (where its
/// holder registered it; MaxMind gives only this for some anycast and satellite networks).
#[derive(Deserialize)]
struct Record {
    #[serde(default)]
    country_code: Option<String>,
    #[serde(default)]
    country: Option<CountryField>,
    #[serde(default)]
    registered_country: Option<CountryField>,
}

impl Record {
    fn code(self) -> Option<String> {
        let field = |f: Option<CountryField>| match f {
            Some(CountryField::Code(s)) => Some(s),
            Some(CountryField::Map { iso_code }) => iso_code,
            None => None,
        };
        [self.country_code, field(self.country), field(self.registered_country)]
            .into_iter()
            .flatten()
            .find_map(|s| country_code(&s))
    }
}

/// `s` as an upper-case ISO 3166 alpha-2 code, if it is two ASCII letters.
fn country_code(s: &str) -> Option<String> {
    let s = s.trim();
    (s.len() == 2 && s.bytes().all(|b| b.is_ascii_alphabetic())).then(|| s.to_ascii_uppercase())
}

/// Label ids by code, filled as records are read.
#[derive(Default)]
struct Labels {
    labels: Vec<String>,
    ids: FxMap<String, u32>,
}

impl Labels {
    fn id(&mut self, code: String) -> u32 {
        let next = self.labels.len() as u32;
        *self.ids.entry(code).or_insert_with_key(|k| {
            self.labels.push(k.clone());
            next
        })
    }
}

impl Geo {
    /// Read a MaxMind DB or a range CSV (decided by content); an unusable file is a one-line
    /// error naming it and the fix.
    pub fn read(path: &Path) -> Result<Geo> {
        let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read geo file", path.display()))?;
        if is_mmdb(&bytes) {
            let g = Geo::from_mmdb(bytes).map_err(|e| {
                anyhow::anyhow!(
                    "{}: not a readable MaxMind database ({e}); download the .mmdb again, or give a \
                     start,end,country CSV",
                    path.display()
                )
            })?;
            if g.ranges == 0 {
                bail!(
                    "{}: MaxMind database without a single country record{}",
                    path.display(),
                    first_problem(&g.skips)
                );
            }
            return Ok(g);
        }
        if bytes.starts_with(&[0x1f, 0x8b]) {
            bail!("{}: geo file is gzip-compressed; decompress it first (gunzip)", path.display());
        }
        let g = Geo::parse_csv(&bytes);
        if g.ranges == 0 {
            bail!(
                "{}: no usable range lines in geo CSV{}; expected start,end,country per line (or a MaxMind .mmdb)",
                path.display(),
                first_problem(&g.skips)
            );
        }
        Ok(g)
    }

    /// Flatten a MaxMind DB: every network with data, its record's economy as label.
    pub fn from_mmdb(bytes: Vec<u8>) -> Result<Geo, String> {
        let reader = maxminddb::Reader::from_source(bytes).map_err(|e| e.to_string())?;
        let meta = reader.metadata();
        let kind = GeoKind::Mmdb { database_type: meta.database_type.clone(), build_epoch: meta.build_epoch };
        let mut labels = Labels::default();
        let mut skips = Skips::default();
        // Records are shared by many networks: decode each once.
        let mut by_offset: FxMap<usize, Option<u32>> = FxMap::default();
        let (mut v4, mut v6) = (vec![], vec![]);
        let mut ranges = 0;
        for (n, item) in reader.networks(Default::default()).map_err(|e| e.to_string())?.enumerate() {
            let item = item.map_err(|e| e.to_string())?;
            let net = item.network().map_err(|e| e.to_string())?;
            let Some(offset) = item.offset() else { continue };
            let val = match by_offset.get(&offset) {
                Some(v) => *v,
                None => {
                    let code =
                        item.decode::<Record>().map_err(|e| format!("network {net}: {e}"))?.and_then(Record::code);
                    let v = code.map(|c| labels.id(c));
                    by_offset.insert(offset, v);
                    v
                }
            };
            let Some(val) = val else {
                skips.add_other(format!("network {net}: no country code"));
                continue;
            };
            let line = n as u64 + 1;
            match (net.network(), net.prefix()) {
                (std::net::IpAddr::V4(a), len) => v4.push(Interval::v4_prefix(a.into(), len, val, line)),
                (std::net::IpAddr::V6(a), len) => v6.push(Interval::v6_prefix(a.into(), len, val, line)),
            }
            ranges += 1;
        }
        // A tree's networks are disjoint: nothing is rejected.
        let (table, _) = RangeTable::build(v4, v6);
        Ok(Geo { labels: labels.labels, table, kind, ranges, skips })
    }

    /// Parse a `start,end,country` CSV (more columns are ignored, so IPinfo's and DB-IP's CSVs
    /// read as they are; a first line that is not a range is a header). Bad lines, and ranges
    /// that partly overlap an earlier one, are counted and skipped.
    pub fn parse_csv(text: &[u8]) -> Geo {
        let mut labels = Labels::default();
        let mut skips = Skips::default();
        let (mut v4, mut v6) = (vec![], vec![]);
        let mut seen_data = false;
        for (i, raw) in text.split(|b| *b == b'\n').enumerate() {
            let line = String::from_utf8_lossy(raw);
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = line.split(',').map(|s| s.trim().trim_matches('"')).collect();
            let ip = |s: &str| mpscan_schema::row_ref::parse_ip(s.as_bytes());
            let first = !std::mem::replace(&mut seen_data, true);
            let why = match (f.len(), f.first().and_then(|s| ip(s)), f.get(1).and_then(|s| ip(s))) {
                (0..=2, ..) => format!("expected 3 fields: start,end,country; found {}", f.len()),
                (_, None, _) if first => continue,
                (_, None, _) => format!("bad start address {:?}", f[0]),
                (_, _, None) => format!("bad end address {:?}", f[1]),
                (_, Some(s), Some(e)) => match (s, e, country_code(f[2])) {
                    (_, _, None) => format!("bad country code {:?} (two letters, e.g. DE)", f[2]),
                    (Ip::V4(s), Ip::V4(e), Some(c)) if s <= e => {
                        v4.push(Interval { start: s as u128, end: e as u128, val: labels.id(c), line: i as u64 + 1 });
                        continue;
                    }
                    (Ip::V6(s), Ip::V6(e), Some(c)) if s <= e => {
                        v6.push(Interval { start: s, end: e, val: labels.id(c), line: i as u64 + 1 });
                        continue;
                    }
                    (Ip::V4(_), Ip::V4(_), _) | (Ip::V6(_), Ip::V6(_), _) => "start after end".to_string(),
                    _ => "start and end of different families".to_string(),
                },
            };
            skips.add(i as u64 + 1, why);
        }
        let used = (v4.len() + v6.len()) as u64;
        let (table, rejected) = RangeTable::build(v4, v6);
        for r in &rejected {
            skips.add(r.line, "range partly overlaps an earlier one".into());
        }
        Geo { labels: labels.labels, table, kind: GeoKind::Csv, ranges: used - rejected.len() as u64, skips }
    }

    /// Economy label id of `ip`, or `lpm::NONE` when no range covers it.
    #[inline(always)]
    pub fn lookup(&self, ip: Ip) -> u32 {
        self.table.lookup(ip)
    }

    /// Label of an id.
    pub fn label(&self, id: u32) -> &str {
        if id == NONE {
            return "-";
        }
        self.labels.get(id as usize).map_or("-", |s| s.as_str())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn ip(s: &str) -> Ip {
        mpscan_schema::row_ref::parse_ip(s.as_bytes()).unwrap()
    }

    /// The MaxMind fixtures: see scripts/make-geo-fixtures.py, which wrote them.
    pub(crate) fn fixture(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
    }

    /// What every fixture holds (GeoLite2 and IPinfo layouts alike): nested IPv4 and IPv6
    /// networks.
    pub(crate) const FIXTURE_ANSWERS: [(&str, &str); 10] = [
        ("17.0.0.1", "US"),
        ("17.1.2.3", "DE"),
        ("17.1.3.0", "US"),
        ("17.255.255.255", "US"),
        ("10.1.2.3", "HK"),
        ("192.0.2.1", "-"),
        ("2001:db8::1", "NL"),
        ("2001:db8:1::2", "JP"),
        ("2001:db8:2::", "NL"),
        ("2001:db9::", "-"),
    ];

    #[test]
    fn maxmind_databases_in_both_layouts() {
        for (name, db_type) in
            [("geolite2-country-test.mmdb", "GeoLite2-Country"), ("ipinfo-country-test.mmdb", "ipinfo")]
        {
            let p = fixture(name);
            let g = Geo::read(&p).unwrap();
            let GeoKind::Mmdb { database_type, build_epoch } = &g.kind else { panic!("{name}: not read as mmdb") };
            assert!(database_type.starts_with(db_type), "{database_type}");
            assert!(*build_epoch > 1_700_000_000, "{build_epoch}");
            for (a, want) in FIXTURE_ANSWERS {
                assert_eq!(g.label(g.lookup(ip(a))), want, "{name} {a}");
                // The flattened table agrees with the database's own tree walk.
                let r = maxminddb::Reader::open_readfile(&p).unwrap();
                let code = r.lookup(a.parse().unwrap()).unwrap().decode::<Record>().unwrap().and_then(Record::code);
                assert_eq!(code.as_deref().unwrap_or("-"), want, "{name} {a} by maxminddb");
            }
            // The record without any country is counted, not fatal.
            assert_eq!(g.skips.count, 1, "{name}: {:?}", g.skips.examples);
            assert!(g.skips.examples[0].contains("no country code"), "{:?}", g.skips.examples);
        }
    }

    #[test]
    fn content_not_name_decides_the_format() {
        let dir = tempfile::tempdir().unwrap();
        let renamed = dir.path().join("countries.csv");
        std::fs::copy(fixture("geolite2-country-test.mmdb"), &renamed).unwrap();
        assert!(matches!(Geo::read(&renamed).unwrap().kind, GeoKind::Mmdb { .. }));
        let csv = dir.path().join("countries.mmdb");
        std::fs::write(&csv, "17.0.0.0,17.255.255.255,US\n").unwrap();
        assert_eq!(Geo::read(&csv).unwrap().kind, GeoKind::Csv);
        // A truncated database: the marker survives, the tree does not.
        let bytes = std::fs::read(fixture("geolite2-country-test.mmdb")).unwrap();
        let cut = dir.path().join("cut.mmdb");
        std::fs::write(&cut, &bytes[bytes.len() - 300..]).unwrap();
        let e = Geo::read(&cut).unwrap_err().to_string();
        assert!(e.contains("cut.mmdb: not a readable MaxMind database") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn csv_ranges_and_bad_lines() {
        let text = "start_ip,end_ip,country,country_name\n\
                    17.0.0.0,17.255.255.255,us,United States\n\
                    17.1.2.0,17.1.2.255,DE\n\
                    10.0.0.0,10.255.255.255,HK\n\
                    2001:db8::,2001:db8:ffff:ffff:ffff:ffff:ffff:ffff,NL\n\
                    2001:db8:1::,2001:db8:1:ffff:ffff:ffff:ffff:ffff,JP\n\
                    17.200.0.0,18.0.0.255,FR\n\
                    1.2.3.4,1.2.3.0,FR\n\
                    1.2.3.4,::1,FR\n\
                    1.2.3.4,1.2.3.5,France\n\
                    1.2.3.x,1.2.3.5,FR\n\
                    1.2.3.4\n";
        let g = Geo::parse_csv(text.as_bytes());
        for (a, want) in FIXTURE_ANSWERS {
            assert_eq!(g.label(g.lookup(ip(a))), want, "{a}");
        }
        assert_eq!((g.ranges, g.skips.count), (5, 6));
        assert_eq!(
            g.skips.examples,
            [
                "line 8: start after end",
                "line 9: start and end of different families",
                "line 10: bad country code \"France\" (two letters, e.g. DE)",
                "line 11: bad start address \"1.2.3.x\"",
                "line 12: expected 3 fields: start,end,country; found 1",
            ]
        );
        assert_eq!(g.skips.count, 6, "line 7 partly overlaps 17.0.0.0/8 and is the sixth");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.csv");
        std::fs::write(&p, "a,b,c\nnot,a,range\n").unwrap();
        let e = Geo::read(&p).unwrap_err().to_string();
        assert!(
            e.contains("bad.csv: no usable range lines in geo CSV (first problem: line 2: bad start address"),
            "{e}"
        );
    }
}
