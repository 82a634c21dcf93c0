//! Organization of an origin AS, from CAIDA's AS-to-organization file (`YYYYMMDD.as-org2info.txt`).
//!
//! The file has two sections, each opened by a `# format:` comment naming its fields:
//! `# format:aut|changed|aut_name|org_id|opaque_id|source` (one line per AS) and
//! `# format:org_id|changed|org_name|country|source` (one line per organization). Either section
//! may come first. A line that does not fit its section is counted and skipped, as pfx2as does;
//! a file without an AS section or without a single usable AS line is an error.
//!
//! The per-row cost is nil: the organization is resolved once per origin label of the pfx2as
//! table ([`OrgOfAs`]), and a row's organization is an array index by its origin label id.

use super::{first_problem, Skips};
use crate::pfx2as::Pfx2As;
use crate::stacks::FxMap;
use anyhow::{bail, Context, Result};
use std::path::Path;

/// One organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    /// CAIDA's organization id (`APPLE-1-ARIN`).
    pub id: String,
    /// Its name (the id when the file has no org line for it).
    pub name: String,
    /// ISO 3166 country of registration (empty when unknown).
    pub country: String,
}

/// A parsed as-org2info file.
#[derive(Debug, Clone, Default)]
pub struct AsOrg {
    /// Organizations, by index.
    pub orgs: Vec<Org>,
    /// AS number to organization index.
    pub of_as: FxMap<u32, u32>,
    /// The latest `changed` date in the file (`YYYYMMDD`), if any.
    pub latest_changed: Option<u32>,
    /// Lines counted and skipped.
    pub skips: Skips,
}

#[derive(Clone, Copy, PartialEq)]
enum Section {
    None,
    Aut,
    Org,
    Other,
}

impl AsOrg {
    /// Read and parse a file; an unusable file is a one-line error naming it and the fix.
    pub fn read(path: &Path) -> Result<AsOrg> {
        let text = std::fs::read(path).with_context(|| format!("{}: cannot read as-org2info file", path.display()))?;
        if text.starts_with(&[0x1f, 0x8b]) {
            bail!("{}: as-org2info file is gzip-compressed; decompress it first (gunzip)", path.display());
        }
        let t = AsOrg::parse(&text);
        if t.of_as.is_empty() {
            bail!(
                "{}: no usable AS lines in as-org2info file{}; expected CAIDA's format with a \
                 '# format:aut|changed|aut_name|org_id|opaque_id|source' section",
                path.display(),
                first_problem(&t.skips)
            );
        }
        Ok(t)
    }

    /// Parse as-org2info text (see the module doc).
    pub fn parse(text: &[u8]) -> AsOrg {
        let mut t = AsOrg::default();
        let mut section = Section::None;
        // aut lines wait for the org section (which may come later): (asn, org_id).
        let mut auts: Vec<(u32, String)> = vec![];
        let mut orgs: FxMap<String, (String, String)> = FxMap::default();
        for (i, raw) in text.split(|b| *b == b'\n').enumerate() {
            let line = String::from_utf8_lossy(raw);
            let line = line.trim_end_matches('\r');
            if let Some(fmt) = line.strip_prefix("# format:") {
                section = match fmt.split('|').next() {
                    Some("aut") => Section::Aut,
                    Some("org_id") => Section::Org,
                    _ => Section::Other,
                };
                continue;
            }
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = line.split('|').collect();
            let problem = match section {
                Section::None => Some("a data line before any '# format:' line".to_string()),
                Section::Other => None,
                // Names may themselves contain '|': the fixed fields are counted from both ends.
                Section::Aut if f.len() < 6 => Some(format!("expected 6 '|'-separated AS fields, found {}", f.len())),
                Section::Aut => match f[0].trim().parse::<u32>() {
                    Ok(asn) if !f[f.len() - 3].trim().is_empty() => {
                        t.note_changed(f[1]);
                        auts.push((asn, f[f.len() - 3].trim().to_string()));
                        None
                    }
                    Ok(_) => Some("empty org_id".to_string()),
                    Err(_) => Some(format!("bad AS number {:?}", f[0])),
                },
                Section::Org if f.len() < 5 => {
                    Some(format!("expected 5 '|'-separated organization fields, found {}", f.len()))
                }
                Section::Org if f[0].trim().is_empty() => Some("empty org_id".to_string()),
                Section::Org => {
                    t.note_changed(f[1]);
                    let name = f[2..f.len() - 2].join("|").trim().to_string();
                    orgs.entry(f[0].trim().to_string()).or_insert((name, f[f.len() - 2].trim().to_string()));
                    None
                }
            };
            if let Some(why) = problem {
                t.skips.add(i as u64 + 1, why);
            }
        }
        let mut index: FxMap<String, u32> = FxMap::default();
        for (asn, org_id) in auts {
            let next = t.orgs.len() as u32;
            let id = *index.entry(org_id.clone()).or_insert_with(|| {
                let (name, country) = orgs.get(&org_id).cloned().unwrap_or_default();
                let name = if name.is_empty() { org_id.clone() } else { name };
                t.orgs.push(Org { id: org_id, name, country });
                next
            });
            t.of_as.entry(asn).or_insert(id);
        }
        t
    }

    fn note_changed(&mut self, f: &str) {
        if let Ok(d) = f.trim().parse::<u32>() {
            if (19_000_101..=29_991_231).contains(&d) {
                self.latest_changed = self.latest_changed.max(Some(d));
            }
        }
    }
}

/// Organization label ids after the file's organizations: origins the file does not name, origin
/// sets whose ASes belong to several organizations, and addresses without a route.
pub const SPECIAL_LABELS: [&str; 3] =
    ["(AS not in as-org2info)", "(multi-origin, several organizations)", "(no route in pfx2as)"];

/// The organization of every origin label of one pfx2as table, resolved once.
///
/// A multi-origin label (`AS701_702`, `AS{1,2}`) maps to the organization its ASes share: when
/// every member the file knows belongs to one organization (siblings announcing one prefix, the
/// common case), that organization; when they belong to several, the row "(multi-origin, several
/// organizations)", so no organization is credited with another's prefix; when the file knows
/// none of them, "(AS not in as-org2info)".
#[derive(Debug, Clone)]
pub struct OrgOfAs {
    /// Organizations that some origin label maps to, then the three [`SPECIAL_LABELS`].
    pub labels: Vec<Org>,
    /// Organization label id for each pfx2as label id, with one more entry last for "no route"
    /// (the layout of the origin-AS counters).
    pub of_label: Vec<u32>,
}

impl OrgOfAs {
    /// Resolve every origin label of `pfx` through `orgs`.
    pub fn new(pfx: &Pfx2As, orgs: &AsOrg) -> OrgOfAs {
        let mut labels: Vec<Org> = vec![];
        let mut compact: FxMap<u32, u32> = FxMap::default();
        let mut of_org: Vec<Option<u32>> = vec![];
        for label in &pfx.labels {
            let mut members: Vec<u32> = label
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse::<u32>().ok())
                .filter_map(|asn| orgs.of_as.get(&asn).copied())
                .collect();
            members.sort_unstable();
            members.dedup();
            of_org.push(match members[..] {
                [] => None,
                [one] => {
                    let next = labels.len() as u32;
                    Some(*compact.entry(one).or_insert_with(|| {
                        labels.push(orgs.orgs[one as usize].clone());
                        next
                    }))
                }
                _ => Some(u32::MAX),
            });
        }
        let n = labels.len() as u32;
        for s in SPECIAL_LABELS {
            labels.push(Org { id: s.to_string(), name: s.to_string(), country: String::new() });
        }
        let mut of_label: Vec<u32> =
            of_org.into_iter().map(|o| o.map_or(n, |id| if id == u32::MAX { n + 1 } else { id })).collect();
        of_label.push(n + 2);
        OrgOfAs { labels, of_label }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const SAMPLE: &str = "\
# name: AS Org
# some other comment
# format:aut|changed|aut_name|org_id|opaque_id|source
714|20240110|APPLE-ENGINEERING|APPLE-1-ARIN|e5e3b9c13678dfc483fb1f819d70883c_ARIN|ARIN
6185|20240612|APPLE-AUSTIN|APPLE-1-ARIN|e5e3b9c13678dfc483fb1f819d70883c_ARIN|ARIN
9269|20231201|HKBN-AS-AP|ORG-HKBN1-AP|a|APNIC
64500|20200101|DOC|ORG-DOC|b|ARIN
64501|20200101|NO-ORG-LINE|ORG-MISSING|c|ARIN
bad|20200101|X|Y|Z|ARIN
65000|20200101|short line
# format:org_id|changed|org_name|country|source
APPLE-1-ARIN|20230606|Apple Inc.|US|ARIN
ORG-HKBN1-AP|20220101|Hong Kong Broadband Network Ltd|HK|APNIC
ORG-DOC|20200101|Docs | Examples Ltd|NL|RIPE
broken org line
";

    #[test]
    fn parses_both_sections_and_counts_bad_lines() {
        let t = AsOrg::parse(SAMPLE.as_bytes());
        assert_eq!(t.of_as.len(), 5);
        let org = |asn: u32| &t.orgs[t.of_as[&asn] as usize];
        assert_eq!((org(714).name.as_str(), org(714).country.as_str()), ("Apple Inc.", "US"));
        assert_eq!(t.of_as[&714], t.of_as[&6185]);
        assert_eq!(org(9269).name, "Hong Kong Broadband Network Ltd");
        assert_eq!(org(64500).name, "Docs | Examples Ltd", "a '|' inside a name");
        assert_eq!((org(64501).name.as_str(), org(64501).country.as_str()), ("ORG-MISSING", ""));
        assert_eq!(t.latest_changed, Some(20240612));
        assert_eq!(t.skips.count, 3);
        assert_eq!(t.skips.examples[0], "line 9: bad AS number \"bad\"");
        assert_eq!(t.skips.examples[1], "line 10: expected 6 '|'-separated AS fields, found 3");
        assert_eq!(t.skips.examples[2], "line 15: expected 5 '|'-separated organization fields, found 1");
    }

    #[test]
    fn unusable_files_are_one_line_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.as-org2info.txt");
        std::fs::write(&p, "714|20240110|A|B|C|ARIN\n").unwrap();
        let e = AsOrg::read(&p).unwrap_err().to_string();
        assert!(e.contains("x.as-org2info.txt: no usable AS lines") && e.contains("line 1: a data line before"), "{e}");
        assert!(!e.contains('\n'));
        std::fs::write(&p, [0x1f, 0x8b, 8, 0]).unwrap();
        assert!(AsOrg::read(&p).unwrap_err().to_string().contains("gunzip"));
        assert!(AsOrg::read(&dir.path().join("none")).unwrap_err().to_string().contains("cannot read"));
    }

    #[test]
    fn multi_origin_labels_resolve_to_the_shared_organization() {
        let pfx = Pfx2As::parse(
            b"17.0.0.0\t8\t714\n17.1.0.0\t16\t714_6185\n17.2.0.0\t16\t714_9269\n17.3.0.0\t16\t{64999,6185}\n\
              10.0.0.0\t8\t64999\n",
        );
        let o = OrgOfAs::new(&pfx, &AsOrg::parse(SAMPLE.as_bytes()));
        let name = |label: &str| {
            let i = pfx.labels.iter().position(|l| l == label).unwrap();
            o.labels[o.of_label[i] as usize].name.clone()
        };
        assert_eq!(name("AS714"), "Apple Inc.");
        assert_eq!(name("AS714_6185"), "Apple Inc.", "siblings");
        assert_eq!(name("AS714_9269"), SPECIAL_LABELS[1]);
        assert_eq!(name("AS{64999,6185}"), "Apple Inc.", "only known member");
        assert_eq!(name("AS64999"), SPECIAL_LABELS[0]);
        assert_eq!(o.of_label.len(), pfx.labels.len() + 1);
        assert_eq!(o.labels[*o.of_label.last().unwrap() as usize].name, SPECIAL_LABELS[2]);
        assert_eq!(o.labels.len(), 1 + 3, "only organizations some origin maps to");
    }
}
