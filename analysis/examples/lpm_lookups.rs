//! Per-row cost of summary's enrichment lookups, for callgrind (BENCHMARKS.md, "Enrichment
//! lookups"): builds a routing-table-sized pfx2as table or a country-database-sized range table
//! from synthetic data (or opens a real MaxMind DB), then looks up N random addresses inside one
//! non-inlined function, so `--toggle-collect='*lookup_all*'` counts the lookups alone.
//!
//! ```sh
//! cargo build --release -p mpscan-analysis --example lpm_lookups
//! valgrind --tool=callgrind --toggle-collect='*lookup_all*' --callgrind-out-file=/dev/null \
//!     target/release/examples/lpm_lookups pfx2as v4 1000000
//! ```
//!
//! Modes: `pfx2as` (950,000 IPv4 and 200,000 IPv6 prefixes, nested), `geo` (450,000 IPv4 and
//! 250,000 IPv6 country ranges, about the size of GeoLite2-Country; IPv6 in 2a00::/12), `flat FILE.mmdb` (a MaxMind DB
//! flattened as `--geo` does), `walk FILE.mmdb` (the same DB's own tree walk per address,
//! without decoding the record: what a per-row lookup would cost at least), `write DIR` (the
//! synthetic tables as files, for `mpscan summary`).

use mpscan_analysis::enrich::geo::Geo;
use mpscan_analysis::pfx2as::Pfx2As;
use mpscan_schema::Ip;
use rand::{Rng, SeedableRng};
use std::fmt::Write;

/// A random IPv6 address in 2a00::/12 (a RIR's block): tables and probes share one region, as
/// routed IPv6 and hitlists do, so most lookups find a range rather than the empty rest.
fn v6_addr(rng: &mut impl Rng) -> u128 {
    0x2a0u128 << 116 | rng.gen::<u128>() >> 12
}

fn pfx2as_text(rng: &mut impl Rng) -> String {
    let mut s = String::new();
    for _ in 0..950_000 {
        // Roughly the IPv4 table's mix: most prefixes are /24s, some short ones hold them.
        let len = match rng.gen_range(0..100) {
            0..=59 => 24,
            60..=69 => 23,
            70..=79 => 22,
            80..=87 => 21,
            88..=92 => 20,
            _ => rng.gen_range(8..=19),
        };
        let a: u32 = rng.gen_range(0x0100_0000..0xe000_0000u32) & (u32::MAX << (32 - len));
        let _ = writeln!(s, "{}\t{len}\t{}", std::net::Ipv4Addr::from(a), rng.gen_range(1..80_000));
    }
    for _ in 0..200_000 {
        let len = [32, 36, 40, 44, 48, 48, 48][rng.gen_range(0..7)];
        let a: u128 = v6_addr(rng) & (u128::MAX << (128 - len));
        let _ = writeln!(s, "{}\t{len}\t{}", std::net::Ipv6Addr::from(a), rng.gen_range(1..80_000));
    }
    s
}

fn geo_csv(rng: &mut impl Rng) -> String {
    let mut s = String::new();
    let mut cuts: Vec<u32> = (0..450_000).map(|_| rng.gen()).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let code = |rng: &mut dyn rand::RngCore| {
        let n = rng.gen_range(0..250u32);
        format!("{}{}", (b'A' + (n / 26) as u8) as char, (b'A' + (n % 26) as u8) as char)
    };
    for w in cuts.windows(2) {
        let c = code(rng);
        let _ = writeln!(s, "{},{},{c}", std::net::Ipv4Addr::from(w[0]), std::net::Ipv4Addr::from(w[1] - 1));
    }
    let mut cuts: Vec<u128> = (0..250_000).map(|_| v6_addr(rng)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    for w in cuts.windows(2) {
        let c = code(rng);
        let _ = writeln!(s, "{},{},{c}", std::net::Ipv6Addr::from(w[0]), std::net::Ipv6Addr::from(w[1] - 1));
    }
    s
}

/// `write DIR`: the synthetic tables as files (`synthetic.pfx2as`, `synthetic-geo.csv`, and an
/// `as-org2info` putting the pfx2as's 80,000 ASes in 20,000 organizations), to time
/// `mpscan summary` with every enrichment on tables of real size.
fn write_files(dir: &std::path::Path) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    std::fs::write(dir.join("synthetic.pfx2as"), pfx2as_text(&mut rng)).unwrap();
    std::fs::write(dir.join("synthetic-geo.csv"), geo_csv(&mut rng)).unwrap();
    let mut s = String::from("# format:aut|changed|aut_name|org_id|opaque_id|source\n");
    for asn in 1..80_000 {
        let _ = writeln!(s, "{asn}|20240101|AS{asn}|ORG-{}|x|ARIN", asn % 20_000);
    }
    s.push_str("# format:org_id|changed|org_name|country|source\n");
    for org in 0..20_000 {
        let _ = writeln!(s, "ORG-{org}|20240101|Organization number {org}|US|ARIN");
    }
    std::fs::write(dir.join("20240101.as-org2info.txt"), s).unwrap();
}

#[inline(never)]
fn lookup_all(addrs: &[Ip], f: impl Fn(Ip) -> u32) -> u64 {
    addrs.iter().map(|a| f(*a) as u64).sum()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("write") {
        return write_files(std::path::Path::new(args.get(2).expect("usage: lpm_lookups write DIR")));
    }
    let usage = "usage: lpm_lookups pfx2as|geo v4|v6 N, or lpm_lookups flat|walk FILE.mmdb v4|v6 N";
    let (mode, file, rest) = match args.get(1).map(String::as_str) {
        Some(m @ ("flat" | "walk")) => (m, args.get(2).cloned(), &args[3.min(args.len())..]),
        Some(m @ ("pfx2as" | "geo")) => (m, None, &args[2..]),
        _ => panic!("{usage}"),
    };
    let v6 = rest.first().map(String::as_str) == Some("v6");
    let n: usize = rest.get(1).and_then(|s| s.parse().ok()).expect(usage);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let addrs: Vec<Ip> = (0..n).map(|_| if v6 { Ip::V6(v6_addr(&mut rng)) } else { Ip::V4(rng.gen()) }).collect();
    let sum = match mode {
        "pfx2as" => {
            let t = Pfx2As::parse(pfx2as_text(&mut rng).as_bytes());
            eprintln!("{} prefixes, {} labels", t.prefixes, t.labels.len());
            lookup_all(&addrs, |ip| t.lookup(ip))
        }
        "geo" => {
            let g = Geo::parse_csv(geo_csv(&mut rng).as_bytes());
            eprintln!("{} ranges, {} economies, {} skipped", g.ranges, g.labels.len(), g.skips.count);
            lookup_all(&addrs, |ip| g.lookup(ip))
        }
        "flat" => {
            let g = Geo::read(std::path::Path::new(&file.expect(usage))).unwrap();
            eprintln!("{} networks, {} economies", g.ranges, g.labels.len());
            lookup_all(&addrs, |ip| g.lookup(ip))
        }
        _ => {
            let r = maxminddb::Reader::open_readfile(file.expect(usage)).unwrap();
            lookup_all(&addrs, |ip| {
                let a: std::net::IpAddr = match ip {
                    Ip::V4(a) => std::net::Ipv4Addr::from(a).into(),
                    Ip::V6(a) => std::net::Ipv6Addr::from(a).into(),
                };
                r.lookup(a).ok().and_then(|x| x.offset()).unwrap_or(0) as u32
            })
        }
    };
    println!("{n} lookups, checksum {sum}");
}
