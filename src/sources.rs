//! Where probes come from: the scan's source addresses (`-S/--source-ip`) and source ports
//! (`--source-port`).
//!
//! `-S` takes addresses, ranges (`192.0.2.1-192.0.2.8`) and CIDR prefixes (`192.0.2.0/29`),
//! comma-separated and/or repeated, as zmap's `--source-ip` and XMap's do. They expand into one
//! ordered list per family ([`Sources`]); each probe's source is the one at the index the keyed
//! hash gives (`crate::keyed_hash::source_index`), so the receiver needs no per-probe state to
//! know which of our addresses a probe left from, and a resumed scan sends every probe from the
//! source it would have had. The first address of each family is the *key source*: the one the
//! hash is computed over, whichever source the probe then leaves from (a scan with one source per
//! family hashes exactly as before several were possible).
//!
//! `--source-port A-B` bounds the probes' source ports ([`SourcePorts`]); the hash spreads them
//! over the range (`crate::keyed_hash::Validator::with_ports`). The metadata records both
//! (`config.source_ip`, `config.source_ports`), which is all a reader needs to rebuild the
//! validation (`crate::accept::Context::from_record`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Most source addresses of one family (a /20 of IPv4): every source is a few bytes of the
/// probe builder's table and an entry of the receiver's lookup.
pub const MAX_PER_FAMILY: u128 = 4096;

/// One item of `-S`: an address, a range `first-last`, or a CIDR prefix, as the inclusive range
/// of addresses it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceRange {
    /// The first address.
    pub first: IpAddr,
    /// The last address (same family, not below `first`).
    pub last: IpAddr,
}

impl SourceRange {
    /// Parses one item of `-S`: `192.0.2.1`, `192.0.2.1-192.0.2.8`, `192.0.2.0/29` or their
    /// IPv6 forms. The error says what is wrong with the item.
    pub fn parse(s: &str) -> Result<SourceRange, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty source (give an address, a range a-b or a prefix, comma-separated)".into());
        }
        let addr = |a: &str| -> Result<IpAddr, String> {
            a.trim().parse().map_err(|_| format!("{a:?} is not an IPv4 or IPv6 address"))
        };
        if let Some((a, b)) = s.split_once('-') {
            let (first, last) = (addr(a)?, addr(b)?);
            if first.is_ipv4() != last.is_ipv4() {
                return Err(format!("range {s} mixes IPv4 and IPv6"));
            }
            if wide(last) < wide(first) {
                return Err(format!("range {s} is reversed (write {}-{})", last, first));
            }
            return Ok(SourceRange { first, last });
        }
        if s.contains('/') {
            let net: ipnet::IpNet =
                s.parse().map_err(|_| format!("{s:?} is not a prefix (write e.g. 192.0.2.0/29 or 2001:db8::/126)"))?;
            if net.addr() != net.network() {
                return Err(format!("prefix {s} has host bits set (write {})", net.trunc()));
            }
            return Ok(SourceRange { first: net.network(), last: net.broadcast() });
        }
        let a = addr(s)?;
        Ok(SourceRange { first: a, last: a })
    }

    /// Parses one `-S` value: items separated by commas. An empty item is an error.
    pub fn parse_list(s: &str) -> Result<Vec<SourceRange>, String> {
        s.split(',').map(SourceRange::parse).collect()
    }

    /// How many addresses the range holds.
    pub fn len(&self) -> u128 {
        wide(self.last) - wide(self.first) + 1
    }

    /// Whether the range is empty (never: a parsed range holds at least its first address).
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// An address as a number, IPv4 and IPv6 alike, for range arithmetic.
fn wide(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The scan's source addresses, per family, in the order given (duplicates dropped): index `i`
/// of a family is the address `crate::keyed_hash::source_index` names with `i`. The first of
/// each family is the key source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    /// IPv4 sources.
    pub v4: Vec<Ipv4Addr>,
    /// IPv6 sources.
    pub v6: Vec<Ipv6Addr>,
}

impl Sources {
    /// At most one source per family (the scan before `-S` took several, or the route's source).
    pub fn one(v4: Option<Ipv4Addr>, v6: Option<Ipv6Addr>) -> Sources {
        Sources { v4: v4.into_iter().collect(), v6: v6.into_iter().collect() }
    }

    /// Expands the items of `-S`, in order, dropping repeats. Fails on more than
    /// [`MAX_PER_FAMILY`] addresses of a family.
    pub fn expand(items: &[SourceRange]) -> Result<Sources, String> {
        let (mut n4, mut n6) = (0u128, 0u128);
        for r in items {
            let n = if r.first.is_ipv4() { &mut n4 } else { &mut n6 };
            *n = n.saturating_add(r.len());
            if *n > MAX_PER_FAMILY {
                return Err(format!(
                    "-S: more than {MAX_PER_FAMILY} {} source addresses (at {}-{}); give fewer",
                    if r.first.is_ipv4() { "IPv4" } else { "IPv6" },
                    r.first,
                    r.last
                ));
            }
        }
        let mut s = Sources::default();
        let (mut seen4, mut seen6) = (std::collections::HashSet::new(), std::collections::HashSet::new());
        for r in items {
            let (a, b) = (wide(r.first), wide(r.last));
            for x in a..=b {
                match r.first {
                    IpAddr::V4(_) => {
                        if seen4.insert(x as u32) {
                            s.v4.push(Ipv4Addr::from(x as u32));
                        }
                    }
                    IpAddr::V6(_) => {
                        if seen6.insert(x) {
                            s.v6.push(Ipv6Addr::from(x));
                        }
                    }
                }
            }
        }
        Ok(s)
    }

    /// Reads the sources back from the metadata's `config.source_ip` (IPv4 and IPv6 addresses
    /// in index order, as [`Sources::strings`] wrote them; files of older versions hold one
    /// per family, which reads the same way).
    pub fn from_strings(list: &[String]) -> Result<Sources, String> {
        let mut s = Sources::default();
        for a in list {
            match a.parse::<IpAddr>() {
                Ok(IpAddr::V4(a)) => s.v4.push(a),
                Ok(IpAddr::V6(a)) => s.v6.push(a),
                Err(_) => return Err(format!("source {a:?} is not an IPv4 or IPv6 address")),
            }
        }
        Ok(s)
    }

    /// Every source as text, IPv4 first, each family in index order: the metadata's
    /// `config.source_ip`.
    pub fn strings(&self) -> Vec<String> {
        self.v4.iter().map(|a| a.to_string()).chain(self.v6.iter().map(|a| a.to_string())).collect()
    }

    /// The key source of `dst`'s family: the address the keyed hash is computed over.
    #[inline]
    pub fn key_for(&self, ipv4: bool) -> Option<IpAddr> {
        if ipv4 {
            self.v4.first().map(|&a| a.into())
        } else {
            self.v6.first().map(|&a| a.into())
        }
    }

    /// How many sources the family has.
    #[inline]
    pub fn count(&self, ipv4: bool) -> usize {
        if ipv4 {
            self.v4.len()
        } else {
            self.v6.len()
        }
    }

    /// Source `i` of the family (`i` below [`Sources::count`]).
    #[inline]
    pub fn nth(&self, ipv4: bool, i: usize) -> IpAddr {
        if ipv4 {
            self.v4[i].into()
        } else {
            self.v6[i].into()
        }
    }

    /// Whether the scan has any source address (a scan needs one of each family it probes).
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Whether every family has at most one source (the send loop's fast path).
    pub fn single(&self) -> bool {
        self.v4.len() <= 1 && self.v6.len() <= 1
    }
}

/// The receiver's membership test of our addresses: one comparison for a single source, a
/// binary search over the sorted sources otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceSet {
    v4: Vec<u32>,
    v6: Vec<u128>,
}

impl SourceSet {
    /// The set of `sources`.
    pub fn new(sources: &Sources) -> SourceSet {
        let mut v4: Vec<u32> = sources.v4.iter().map(|&a| a.into()).collect();
        let mut v6: Vec<u128> = sources.v6.iter().map(|&a| a.into()).collect();
        v4.sort_unstable();
        v6.sort_unstable();
        SourceSet { v4, v6 }
    }

    /// Whether `a` is one of our source addresses.
    #[inline]
    pub fn contains(&self, a: IpAddr) -> bool {
        match a {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                match self.v4.as_slice() {
                    [one] => *one == a,
                    all => all.binary_search(&a).is_ok(),
                }
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                match self.v6.as_slice() {
                    [one] => *one == a,
                    all => all.binary_search(&a).is_ok(),
                }
            }
        }
    }
}

/// The probes' source ports (`--source-port A-B`), inclusive: by default
/// [`SourcePorts::DEFAULT`], 32768-65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourcePorts {
    /// The lowest source port.
    pub lo: u16,
    /// The highest source port.
    pub hi: u16,
}

impl Default for SourcePorts {
    fn default() -> Self {
        SourcePorts::DEFAULT
    }
}

impl SourcePorts {
    /// The range a scan without `--source-port` uses: 32768-65535 (zmap's ends at 61000).
    pub const DEFAULT: SourcePorts = SourcePorts { lo: 32768, hi: 65535 };

    /// Parses `--source-port`: `A-B` (1 <= A <= B <= 65535) or one port `A`.
    pub fn parse(s: &str) -> Result<SourcePorts, String> {
        let s = s.trim();
        let port = |p: &str| -> Result<u16, String> {
            let p = p.trim();
            if p.is_empty() {
                return Err(format!("{s:?} is empty: give a range low-high, e.g. 40000-49999"));
            }
            match p.parse::<u32>() {
                Ok(0) => Err("port 0 cannot be a source port (1 to 65535)".into()),
                Ok(n) if n > 65535 => Err(format!("{n} is above 65535")),
                Ok(n) => Ok(n as u16),
                Err(_) => Err(format!("{p:?} is not a port number (give a range low-high, e.g. 40000-49999)")),
            }
        };
        let (lo, hi) = match s.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => {
                let p = port(s)?;
                (p, p)
            }
        };
        if hi < lo {
            return Err(format!("range {lo}-{hi} is reversed (write {hi}-{lo})"));
        }
        Ok(SourcePorts { lo, hi })
    }

    /// How many ports the range holds (1 to 65535).
    pub fn count(&self) -> u32 {
        u32::from(self.hi) - u32::from(self.lo) + 1
    }

    /// Whether `p` lies in the range.
    pub fn contains(&self, p: u16) -> bool {
        (self.lo..=self.hi).contains(&p)
    }

    /// As the metadata records it: `[lo, hi]`.
    pub fn pair(&self) -> [u16; 2] {
        [self.lo, self.hi]
    }

    /// The range `[lo, hi]` the metadata recorded (absent in files written before
    /// `--source-port`: the default). Fails on a reversed or zero range.
    pub fn from_pair(pair: Option<[u16; 2]>) -> Result<SourcePorts, String> {
        match pair {
            None => Ok(SourcePorts::DEFAULT),
            Some([lo, hi]) if lo >= 1 && lo <= hi => Ok(SourcePorts { lo, hi }),
            Some([lo, hi]) => Err(format!("source port range {lo}-{hi} is not a range of ports")),
        }
    }

    /// The part of this range that the kernel's local port range `kernel` (its ephemeral
    /// ports) also holds, if any.
    pub fn overlap(&self, kernel: (u16, u16)) -> Option<(u16, u16)> {
        let (lo, hi) = (self.lo.max(kernel.0), self.hi.min(kernel.1));
        (lo <= hi).then_some((lo, hi))
    }
}

impl std::fmt::Display for SourcePorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.lo, self.hi)
    }
}

/// The kernel's local (ephemeral) port range of the calling thread's network namespace, from
/// `/proc/sys/net/ipv4/ip_local_port_range` (which is per namespace, and covers IPv6 too).
pub fn kernel_local_ports() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    parse_local_ports(&text)
}

/// Parses the two numbers of `ip_local_port_range`.
fn parse_local_ports(text: &str) -> Option<(u16, u16)> {
    let mut it = text.split_whitespace().map(|n| n.parse::<u16>().ok());
    let (lo, hi) = (it.next()??, it.next()??);
    Some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn expand(items: &[&str]) -> Sources {
        let r: Vec<SourceRange> = items.iter().flat_map(|s| SourceRange::parse_list(s).unwrap()).collect();
        Sources::expand(&r).unwrap()
    }

    #[test]
    fn every_form_parses() {
        assert_eq!(
            SourceRange::parse("192.0.2.7").unwrap(),
            SourceRange { first: ip("192.0.2.7"), last: ip("192.0.2.7") }
        );
        assert_eq!(
            SourceRange::parse("192.0.2.1-192.0.2.8").unwrap(),
            SourceRange { first: ip("192.0.2.1"), last: ip("192.0.2.8") }
        );
        assert_eq!(SourceRange::parse("192.0.2.8/29").unwrap().len(), 8);
        assert_eq!(SourceRange::parse("192.0.2.8/29").unwrap().first, ip("192.0.2.8"));
        assert_eq!(SourceRange::parse("2001:db8::1-2001:db8::4").unwrap().len(), 4);
        assert_eq!(SourceRange::parse("2001:db8::/126").unwrap().last, ip("2001:db8::3"));
        assert_eq!(SourceRange::parse(" 2001:db8::5 ").unwrap().len(), 1);
    }

    #[test]
    fn bad_forms_say_why() {
        for (s, why) in [
            ("", "empty source"),
            ("192.0.2.256", "is not an IPv4 or IPv6 address"),
            ("192.0.2.8-192.0.2.1", "is reversed (write 192.0.2.1-192.0.2.8)"),
            ("192.0.2.1-2001:db8::1", "mixes IPv4 and IPv6"),
            ("192.0.2.1-", "is not an IPv4 or IPv6 address"),
            ("192.0.2.0/33", "is not a prefix"),
            ("192.0.2.1/30", "has host bits set (write 192.0.2.0/30)"),
            ("host.example", "is not an IPv4 or IPv6 address"),
        ] {
            let e = SourceRange::parse(s).unwrap_err();
            assert!(e.contains(why), "{s:?}: {e}");
        }
    }

    #[test]
    fn expansion_keeps_order_drops_repeats_and_splits_families() {
        let s = expand(&["192.0.2.9,2001:db8::2", "192.0.2.1-192.0.2.3", "192.0.2.2/31,2001:db8::2"]);
        assert!(SourceRange::parse_list("192.0.2.1,,192.0.2.2").unwrap_err().contains("empty source"));
        assert!(SourceRange::parse_list("192.0.2.1,").unwrap_err().contains("empty source"));
        let want: Vec<Ipv4Addr> =
            ["192.0.2.9", "192.0.2.1", "192.0.2.2", "192.0.2.3"].iter().map(|a| a.parse().unwrap()).collect();
        assert_eq!(s.v4, want);
        assert_eq!(s.v6, vec!["2001:db8::2".parse::<Ipv6Addr>().unwrap()]);
        assert_eq!(s.key_for(true), Some(ip("192.0.2.9")));
        assert_eq!(s.strings()[4], "2001:db8::2");
        assert_eq!(Sources::from_strings(&s.strings()).unwrap(), s);
        assert!(!s.single());
        assert!(Sources::one(Some("192.0.2.2".parse().unwrap()), None).single());
    }

    #[test]
    fn too_many_sources_are_refused_before_expanding() {
        let r = [SourceRange::parse("2001:db8::/64").unwrap()];
        assert!(Sources::expand(&r).unwrap_err().contains("more than 4096 IPv6 source addresses"));
        let r = [SourceRange::parse("198.18.0.0/20").unwrap()];
        assert_eq!(Sources::expand(&r).unwrap().v4.len(), 4096);
    }

    #[test]
    fn the_set_knows_every_source_and_nothing_else() {
        let s = expand(&["192.0.2.10-192.0.2.20", "192.0.2.5", "2001:db8::9"]);
        let set = SourceSet::new(&s);
        for a in s.v4.iter().map(|&a| IpAddr::from(a)).chain(s.v6.iter().map(|&a| a.into())) {
            assert!(set.contains(a), "{a}");
        }
        for a in ["192.0.2.9", "192.0.2.21", "192.0.2.6", "2001:db8::8", "198.18.0.1"] {
            assert!(!set.contains(ip(a)), "{a}");
        }
        let one = SourceSet::new(&Sources::one(Some("192.0.2.2".parse().unwrap()), None));
        assert!(one.contains(ip("192.0.2.2")) && !one.contains(ip("192.0.2.3")) && !one.contains(ip("2001:db8::2")));
    }

    #[test]
    fn source_ports_parse_and_refuse() {
        assert_eq!(SourcePorts::parse("40000-40999").unwrap(), SourcePorts { lo: 40000, hi: 40999 });
        assert_eq!(SourcePorts::parse("5000").unwrap().count(), 1);
        assert_eq!(SourcePorts::DEFAULT.count(), 32768);
        for (s, why) in [
            ("41000-40000", "range 41000-40000 is reversed (write 40000-41000)"),
            ("", "is empty"),
            ("-", "is empty"),
            ("40000-", "is empty"),
            ("0-100", "port 0"),
            ("1-70000", "above 65535"),
            ("http", "is not a port number"),
        ] {
            let e = SourcePorts::parse(s).unwrap_err();
            assert!(e.contains(why), "{s:?}: {e}");
        }
        assert_eq!(SourcePorts::from_pair(None).unwrap(), SourcePorts::DEFAULT);
        assert_eq!(SourcePorts::from_pair(Some([100, 200])).unwrap().count(), 101);
        assert!(SourcePorts::from_pair(Some([0, 200])).is_err());
    }

    #[test]
    fn overlap_with_the_kernels_local_ports() {
        let linux = (32768, 60999);
        assert_eq!(SourcePorts::DEFAULT.overlap(linux), Some((32768, 60999)));
        assert_eq!(SourcePorts { lo: 61000, hi: 65535 }.overlap(linux), None);
        assert_eq!(SourcePorts { lo: 20000, hi: 32768 }.overlap(linux), Some((32768, 32768)));
        assert_eq!(parse_local_ports("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_local_ports("garbage"), None);
    }
}
