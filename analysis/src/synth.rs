//! Synthetic result CSVs with the class mix of the 2018 RWTH full-IPv4 scan on port 443
//! (88,484 MP_CAPABLE answers: 77,384 echoes and 11,100 real servers), for tests and benchmarks.
//!
//! Deterministic from the seed (ChaCha8). Class counts are exact, not sampled: the number of
//! targets of each class is fixed up front (largest remainder) and classes are drawn without
//! replacement, so a file of N rows has a known count of every class. Real servers and echoing
//! boxes cluster in a few /16 networks (Zipf-weighted), echoes come from six middlebox models
//! with their own TTL, window and option layout, and every (address, port, probe) is unique.

use anyhow::{bail, Context, Result};
use mpscan_schema::{Class, ProbeVersion, NCLASS};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::io::Write;

/// Answered targets assumed for the 2018 scan (not published with the MP_CAPABLE figures; a
/// plausible full-IPv4 port-443 response count that sets the shares of the other classes).
pub const ANSWERED_2018: u64 = 45_000_000;

/// Share of each class among answered targets, in `Class` order, per 45 million.
pub const MIX_2018: [u64; NCLASS] = [
    11_100,     // mptcp
    77_384,     // echo
    200,        // malformed
    27_000_000, // tcp (SYN-ACK without MP_CAPABLE)
    15_000_000, // closed (RST)
    2_911_316,  // unreachable (ICMP): the rest
];

/// Answered targets per probed target, for the metadata's `targets_probed` (1 in 82).
pub const PROBED_PER_ANSWER: u64 = 82;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    /// Rows to write.
    pub rows: u64,
    /// Seed of the generator.
    pub seed: u64,
    /// Probe versions: each target gets one row per version.
    pub probes: Vec<ProbeVersion>,
    /// Ports, assigned to targets in turn.
    pub ports: Vec<u16>,
    /// Share of targets that are IPv6 (in 2001:db8::/32).
    pub ipv6_share: f64,
}

/// What was written, tallied while writing (a test's ground truth).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SynthStats {
    /// Rows written.
    pub rows: u64,
    /// Targets, (address, port) pairs.
    pub targets: u64,
    /// Rows per (port, probe, class).
    pub classes: HashMap<(u16, ProbeVersion, Class), u64>,
    /// Real-server rows per (probe, answer version, flags).
    pub flags: HashMap<(ProbeVersion, u8, u8), u64>,
    /// Echo rows per middlebox model.
    pub models: HashMap<&'static str, u64>,
}

impl SynthStats {
    /// Rows of one class over all ports and probes.
    pub fn class(&self, c: Class) -> u64 {
        self.classes.iter().filter(|x| x.0 .2 == c).map(|x| x.1).sum()
    }
}

/// Exact class counts for `n` targets (largest remainder over `MIX_2018`).
pub fn class_counts(n: u64) -> [u64; NCLASS] {
    let total: u64 = MIX_2018.iter().sum();
    let mut c = [0u64; NCLASS];
    let mut rem: Vec<(u128, usize)> = vec![];
    for i in 0..NCLASS {
        let x = n as u128 * MIX_2018[i] as u128;
        c[i] = (x / total as u128) as u64;
        rem.push((x % total as u128, i));
    }
    let mut left = n - c.iter().sum::<u64>();
    rem.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in rem {
        if left == 0 {
            break;
        }
        c[i] += 1;
        left -= 1;
    }
    c
}

/// An echoing middlebox model: how its SYN-ACK looks.
struct Model {
    name: &'static str,
    weight: u32,
    ttl: u8,
    window: Option<u16>,
    /// Options before the echoed MP_CAPABLE; `None` = mirror the probe's whole option list.
    prefix: Option<&'static str>,
    ts: bool,
}

const MODELS: [Model; 6] = [
    Model { name: "cpe-mirror", weight: 35, ttl: 64, window: None, prefix: None, ts: true },
    Model { name: "isp-firewall", weight: 25, ttl: 255, window: Some(8192), prefix: Some("02040564"), ts: false },
    Model {
        name: "load-balancer",
        weight: 20,
        ttl: 64,
        window: Some(29200),
        prefix: Some("020405b40402080a"),
        ts: false,
    },
    Model { name: "cgnat", weight: 10, ttl: 128, window: Some(65535), prefix: Some("0204057801030308"), ts: false },
    Model { name: "old-router", weight: 6, ttl: 255, window: Some(4128), prefix: Some(""), ts: false },
    Model {
        name: "ts-rewriting-proxy",
        weight: 4,
        ttl: 64,
        window: Some(14600),
        prefix: Some("020405b40402080a"),
        ts: false,
    },
];

/// A real server's MP_CAPABLE answer (version, flags), or `None` for a plain TCP answer.
type Answer = Option<(u8, u8)>;

/// Real server kinds: (name, weight, answer to a v1 probe, answer to a v0 probe).
/// Upstream Linux ignores a v0 MP_CAPABLE; an RFC 6824 stack answers a v1 probe with v0.
const SERVERS: [(&str, u32, Answer, Answer); 3] = [
    ("linux-v1", 60, Some((1, 0x01)), None),
    ("mptcp.org-v0", 30, Some((0, 0x81)), Some((0, 0x81))),
    ("load-balanced", 10, Some((1, 0x21)), Some((0, 0x01))),
];

const PROBE_WINDOW: u16 = 65535;
const PROBE_FLAGS: u8 = 0x01;

struct Addresses {
    used: Vec<u32>,
    mp_nets: Vec<u16>,
    echo_nets: Vec<u16>,
    v6_next: u64,
}

impl Addresses {
    fn new(rng: &mut ChaCha8Rng) -> Addresses {
        let mut pick = |n: usize| -> Vec<u16> {
            let mut v = vec![];
            while v.len() < n {
                let k: u16 = rng.gen();
                if routable(k) && !v.contains(&k) {
                    v.push(k);
                }
            }
            v
        };
        let mp_nets = pick(64);
        let echo_nets = pick(256);
        Addresses { used: vec![0; 65536], mp_nets, echo_nets, v6_next: 0 }
    }

    /// Next unused address in /16 `net`, or in the next /16 with room.
    fn take(&mut self, mut net: u16) -> u32 {
        loop {
            let u = self.used[net as usize];
            if u < 65536 && routable(net) {
                self.used[net as usize] += 1;
                // Fill one /24 before the next (servers cluster in /24s), in an order that looks
                // random: both bytes are odd-multiplier bijections of the counter, keyed by net.
                let n = net as u32;
                let third = ((u >> 8) * 167 + (n >> 3)) & 255;
                let fourth = ((u & 255) * 73 + n * 29 + 1) & 255;
                return n << 16 | third << 8 | fourth;
            }
            net = net.wrapping_add(1);
        }
    }
}

/// Skip 0/8, 10/8, 127/8 and multicast/reserved space, as a real scan's target set would.
fn routable(net16: u16) -> bool {
    let a = net16 >> 8;
    !(a == 0 || a == 10 || a == 127 || a >= 224)
}

/// Zipf-like pick: index i has weight 1/(i+1).
fn zipf(rng: &mut ChaCha8Rng, n: usize) -> usize {
    let h: f64 = (1..=n).map(|i| 1.0 / i as f64).sum();
    let mut x = rng.gen::<f64>() * h;
    for i in 0..n {
        x -= 1.0 / (i + 1) as f64;
        if x <= 0.0 {
            return i;
        }
    }
    n - 1
}

fn weighted<T>(rng: &mut ChaCha8Rng, items: &[T], w: impl Fn(&T) -> u32) -> usize {
    let total: u32 = items.iter().map(&w).sum();
    let mut x = rng.gen_range(0..total);
    for (i, it) in items.iter().enumerate() {
        if x < w(it) {
            return i;
        }
        x -= w(it);
    }
    items.len() - 1
}

/// Seconds since the epoch to `YYYY-MM-DDTHH:MM:SS` (UTC), civil-from-days.
pub(crate) fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let tod = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", tod / 3600, tod / 60 % 60, tod % 60)
}

/// Scan start of every synthetic scan: 2026-11-21T18:00:00Z.
const START: u64 = 1_795_284_000;
/// Synthetic probe rate, rows per second, for timestamps.
const RATE: u64 = 10_000;

fn probe_options(probe: ProbeVersion, tsval: u32, key: u64) -> String {
    let mpc = match probe {
        ProbeVersion::V1 => format!("1e0401{PROBE_FLAGS:02x}"),
        ProbeVersion::V0 => format!("1e0c00{PROBE_FLAGS:02x}{key:016x}"),
    };
    format!("020405b40402080a{tsval:08x}00000000010303 07{mpc}").replace(' ', "")
}

/// What was drawn for one (target, probe) row before its answer is written out.
struct Drawn {
    class: Class,
    probe: ProbeVersion,
    server: usize,
    model: &'static Model,
    server_key: u64,
    tsval: u32,
    probe_key: u64,
}

/// The answer columns of one row, as CSV text where the CSV has text.
struct RowAnswer {
    class: Class,
    version: String,
    flags: String,
    key: String,
    options: String,
    mirrored: bool,
    ts_echoed: bool,
    window: u16,
    responder: String,
}

/// The answer a target of class `d.class` gives to probe `d.probe` (a server without MPTCP for
/// that version answers as plain TCP); counts flag combinations and middlebox models in `st`.
fn answer(d: Drawn, ip: &str, st: &mut SynthStats) -> RowAnswer {
    let Drawn { class, probe, server, model, server_key, tsval, probe_key } = d;
    let mut class = class;
    let (mut version, mut flags, mut key, mut options) = (String::new(), String::new(), String::new(), String::new());
    let (mut mirrored, mut ts_echoed) = (false, false);
    let mut window: u16 = [65160, 29200, 8192, 65535, 64240][(server_key % 5) as usize];
    let mut responder = ip.to_string();
    let linux = |tail: &str| format!("020405b40402080a{:08x}{tsval:08x}01030307{tail}", server_key as u32);
    match class {
        Class::Mptcp => match if probe == ProbeVersion::V1 { SERVERS[server].2 } else { SERVERS[server].3 } {
            Some((v, f)) => {
                version = v.to_string();
                flags = format!("0x{f:02x}");
                key = format!("{server_key:016x}");
                options = linux(&format!("1e0c{v:02x}{f:02x}{server_key:016x}"));
                *st.flags.entry((probe, v, f)).or_insert(0) += 1;
            }
            None => {
                class = Class::Tcp;
                options = linux("");
            }
        },
        Class::Echo => {
            let pv = probe as u8;
            version = pv.to_string();
            flags = format!("0x{PROBE_FLAGS:02x}");
            if probe == ProbeVersion::V0 {
                key = format!("{probe_key:016x}");
            }
            let mpc = match probe {
                ProbeVersion::V1 => format!("1e0401{PROBE_FLAGS:02x}"),
                ProbeVersion::V0 => format!("1e0c00{PROBE_FLAGS:02x}{probe_key:016x}"),
            };
            options = match model.prefix {
                None => {
                    mirrored = true;
                    probe_options(probe, tsval, probe_key)
                }
                Some(p) if p.ends_with("080a") => {
                    format!("{p}{:08x}{tsval:08x}01030307{mpc}", server_key as u32)
                }
                Some(p) => format!("{p}{mpc}"),
            };
            ts_echoed = model.ts;
            window = model.window.unwrap_or(PROBE_WINDOW);
            *st.models.entry(model.name).or_insert(0) += 1;
        }
        Class::Malformed => {
            // Subtype 1 (MP_JOIN) or a short MP_CAPABLE where an answer belongs.
            options = if server_key & 1 == 0 {
                "020405b41e0c1101aabbccdd00112233".into()
            } else {
                "020405b41e0601".to_string() + "01aa"
            };
        }
        Class::Tcp => options = linux(""),
        Class::Closed => window = 0,
        Class::Unreachable => {
            window = 0;
            responder = match ip.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V4(a)) => std::net::Ipv4Addr::from(u32::from(a) & 0xffff_ff00 | 1).to_string(),
                _ => "2001:db8::1".to_string(),
            };
        }
    }
    RowAnswer { class, version, flags, key, options, mirrored, ts_echoed, window, responder }
}

/// Write a synthetic scan as CSV to `out`; returns what was written.
pub fn generate(cfg: &SynthConfig, out: &mut dyn Write) -> Result<SynthStats> {
    if cfg.probes.is_empty() || cfg.ports.is_empty() {
        bail!("synth needs at least one probe version and one port");
    }
    if !(0.0..=1.0).contains(&cfg.ipv6_share) {
        bail!("--ipv6 must be a share between 0 and 1, not {}", cfg.ipv6_share);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let nv = cfg.probes.len() as u64;
    let targets = cfg.rows.div_ceil(nv);
    let mut left = class_counts(targets);
    let mut left_total = targets;
    let mut addrs = Addresses::new(&mut rng);
    let mut st = SynthStats { targets, ..SynthStats::default() };
    let mut w = std::io::BufWriter::with_capacity(1 << 20, out);
    // The columns up to `timestamp`: a synthetic scan has no `detail` (as files written before it).
    writeln!(w, "{}", mpscan_schema::COLUMNS.split_at(14).0.join(","))?;
    let mut second = u64::MAX;
    let mut stamp = String::new();
    for t in 0..targets {
        // Draw the class without replacement: exact totals, random order.
        let mut x = rng.gen_range(0..left_total);
        let mut ci = 0;
        while x >= left[ci] {
            x -= left[ci];
            ci += 1;
        }
        left[ci] -= 1;
        left_total -= 1;
        let class = Class::ALL[ci];
        let port = cfg.ports[(t % cfg.ports.len() as u64) as usize];
        let v6 = cfg.ipv6_share > 0.0 && rng.gen::<f64>() < cfg.ipv6_share;
        let ip: String = if v6 {
            addrs.v6_next += 1;
            let n = addrs.v6_next;
            format!("2001:db8:{:x}:{:x}::{:x}", (n >> 32) & 0xffff, (n >> 16) & 0xffff, n & 0xffff)
        } else {
            let net = match class {
                Class::Mptcp => addrs.mp_nets[zipf(&mut rng, addrs.mp_nets.len())],
                Class::Echo => addrs.echo_nets[zipf(&mut rng, addrs.echo_nets.len())],
                _ => rng.gen(),
            };
            std::net::Ipv4Addr::from(addrs.take(net)).to_string()
        };
        let server = weighted(&mut rng, &SERVERS, |s| s.1);
        let model = &MODELS[weighted(&mut rng, &MODELS, |m| m.weight)];
        let hops: u8 = rng.gen_range(4..24);
        let initial_ttl = match class {
            Class::Echo => model.ttl,
            Class::Unreachable => 255,
            _ => [64, 64, 64, 128, 255][rng.gen_range(0..5)],
        };
        let ttl = initial_ttl - hops;
        let server_key: u64 = rng.gen();
        for (vi, &probe) in cfg.probes.iter().enumerate() {
            let row = t * nv + vi as u64;
            if row >= cfg.rows {
                break;
            }
            let tsval: u32 = rng.gen();
            let probe_key: u64 = rng.gen();
            let RowAnswer { class, version, flags, key, options, mirrored, ts_echoed, window, responder } =
                answer(Drawn { class, probe, server, model, server_key, tsval, probe_key }, &ip, &mut st);
            let at = START * 1_000_000 + row * 1_000_000 / RATE;
            if at / 1_000_000 != second {
                second = at / 1_000_000;
                stamp = rfc3339(second);
            }
            writeln!(
                w,
                "{ip},{port},{},{},{responder},{version},{flags},{key},{options},{mirrored},{ts_echoed},{ttl},{window},{stamp}.{:06}Z",
                probe.label(),
                class.label(),
                at % 1_000_000
            )?;
            *st.classes.entry((port, probe, class)).or_insert(0) += 1;
            st.rows += 1;
        }
    }
    w.flush()?;
    Ok(st)
}

/// Metadata for a synthetic scan, in the result schema's type (what the scanner writes).
pub fn metadata(cfg: &SynthConfig, st: &SynthStats) -> mpscan_schema::Metadata {
    use mpscan_schema::metadata::{ConfigRecord, LinkReport, MergeRecord};
    let mut classes = std::collections::BTreeMap::new();
    for p in &cfg.probes {
        let per: &mut std::collections::BTreeMap<String, u64> = classes.entry(p.label().to_string()).or_default();
        for c in Class::ALL {
            let n: u64 = st.classes.iter().filter(|x| x.0 .1 == *p && x.0 .2 == c).map(|x| x.1).sum();
            per.insert(c.label().into(), n);
        }
    }
    let probed = st.targets * PROBED_PER_ANSWER;
    let secs = st.rows / RATE + 8;
    mpscan_schema::Metadata {
        tool: "mpscan".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        command_line: vec![],
        config: ConfigRecord {
            targets: vec!["synthetic".into()],
            ports: cfg.ports.clone(),
            rate: RATE,
            probe_versions: cfg.probes.iter().map(|p| p.label().to_string()).collect(),
            probes_per_target: 1,
            cooldown_secs: 8.0,
            seed: cfg.seed,
            shards: 1,
            shard: Some(0),
            interface: "synthetic".into(),
            source_ip: vec!["192.0.2.1".into()],
            gateway_mac: "00:00:00:00:00:00".into(),
            ..ConfigRecord::default()
        },
        start_time: format!("{}.000000Z", rfc3339(START)),
        end_time: format!("{}.000000Z", rfc3339(START + secs)),
        interrupted: false,
        end_reason: "completed".into(),
        resumed: false,
        targets_total: probed,
        addresses_blocked: 0,
        targets_probed: probed,
        probes_sent: probed * cfg.probes.len() as u64,
        responses_received: st.rows,
        responses_validated: st.rows,
        responses_invalid: 0,
        invalid_reasons: Default::default(),
        duplicates: 0,
        kernel_drops: 0,
        classes,
        rows: st.rows,
        link: LinkReport::default(),
        trace: None,
        notes: None,
        user_metadata: None,
        vantage: None,
        definition: None,
        merge: MergeRecord::default(),
    }
}

/// Write CSV to `path` (`-` = stdout) and optionally metadata; returns the tally.
pub fn write_files(cfg: &SynthConfig, path: &std::path::Path, meta: Option<&std::path::Path>) -> Result<SynthStats> {
    let st = if path.as_os_str() == "-" {
        generate(cfg, &mut std::io::stdout().lock())?
    } else {
        let mut f = std::fs::File::create(path).with_context(|| format!("{}: cannot create", path.display()))?;
        generate(cfg, &mut f).with_context(|| format!("{}: write failed", path.display()))?
    };
    if let Some(m) = meta {
        metadata(cfg, &st).write(m)?;
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(rows: u64, probes: Vec<ProbeVersion>) -> SynthConfig {
        SynthConfig { rows, seed: 7, probes, ports: vec![443], ipv6_share: 0.0 }
    }

    #[test]
    fn class_counts_are_exact_and_scale_the_2018_mix() {
        let c = class_counts(ANSWERED_2018);
        assert_eq!(c, MIX_2018);
        assert_eq!(c[0] + c[1], 88_484);
        for n in [0, 1, 7, 1000, 123_457, 10_000_000] {
            assert_eq!(class_counts(n).iter().sum::<u64>(), n);
        }
        let c = class_counts(10_000_000);
        // 17,196.44 echoes and 44.44 malformed tie on the remainder: the lower class index wins.
        assert_eq!((c[0], c[1], c[2]), (2_467, 17_197, 44));
    }

    #[test]
    fn deterministic_exact_and_unique() {
        let mut a = vec![];
        let st = generate(&cfg(50_000, vec![ProbeVersion::V1]), &mut a).unwrap();
        let mut b = vec![];
        generate(&cfg(50_000, vec![ProbeVersion::V1]), &mut b).unwrap();
        assert_eq!(a, b);
        let mut c = vec![];
        generate(&SynthConfig { seed: 8, ..cfg(50_000, vec![ProbeVersion::V1]) }, &mut c).unwrap();
        assert_ne!(a, c);
        let want = class_counts(50_000);
        for cl in Class::ALL {
            assert_eq!(st.class(cl), want[cl as usize], "{cl:?}");
        }
        let text = String::from_utf8(a).unwrap();
        assert_eq!(text.lines().count(), 50_001);
        let mut ips: Vec<&str> = text.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
        ips.sort_unstable();
        ips.dedup();
        assert_eq!(ips.len(), 50_000);
        assert!(text.lines().nth(1).unwrap().ends_with("Z"));
        assert!(text.contains("2026-11-21T18:00:00.000000Z"), "{}", &text[..400]);
    }

    #[test]
    fn both_probes_and_partial_last_target() {
        let st = generate(&cfg(1001, vec![ProbeVersion::V1, ProbeVersion::V0]), &mut std::io::sink()).unwrap();
        assert_eq!((st.rows, st.targets), (1001, 501));
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00");
        assert_eq!(rfc3339(START), "2026-11-21T18:00:00");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00");
    }
}
