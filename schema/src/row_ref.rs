//! One result row, borrowed: the columns a reader needs, found by header name ([`Columns`]),
//! parsed by hand from the line's bytes without serde or allocation (this is the hot path of
//! every analysis command, and the parse every other reader of result files shares).
//!
//! Only the columns a reader asks for must exist; extra columns are ignored and the order is free.

use crate::class::Class;
use crate::columns::{Col, Columns};
use crate::probe::ProbeVersion;
use std::fmt;

/// A probed address, kept as integers so prefixes and hash keys are cheap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ip {
    /// IPv4 address in host order.
    V4(u32),
    /// IPv6 address in host order.
    V6(u128),
}

impl fmt::Display for Ip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Ip::V4(a) => std::net::Ipv4Addr::from(a).fmt(f),
            Ip::V6(a) => std::net::Ipv6Addr::from(a).fmt(f),
        }
    }
}

impl From<Ip> for std::net::IpAddr {
    fn from(ip: Ip) -> std::net::IpAddr {
        match ip {
            Ip::V4(a) => std::net::Ipv4Addr::from(a).into(),
            Ip::V6(a) => std::net::Ipv6Addr::from(a).into(),
        }
    }
}

/// Fields of one CSV record, by index: implemented by `csv::ByteRecord` and by the reader's
/// own splitter for unquoted lines (the fast path).
pub trait Fields {
    /// Number of fields.
    fn count(&self) -> usize;
    /// Field `i` (`i < count()`).
    fn field(&self, i: usize) -> &[u8];
}

impl Fields for csv::ByteRecord {
    fn count(&self) -> usize {
        self.len()
    }
    fn field(&self, i: usize) -> &[u8] {
        &self[i]
    }
}

/// One parsed row, borrowing the line it came from: the columns some reader computes with.
/// `options` stays hex text (only fingerprinting decodes it). `responder`, `mpc_key` and
/// `timestamp` are not parsed: no reader uses them, and three more fields cost the analysis hot
/// path about 3% more instructions per row (callgrind, `mpscan summary`). A column the reader did not
/// ask for gets a neutral default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowRef<'a> {
    /// Probed address.
    pub ip: Ip,
    /// Target port.
    pub port: u16,
    /// Probe version.
    pub probe: ProbeVersion,
    /// Classifier verdict.
    pub class: Class,
    /// Version in the answer's MP_CAPABLE, if any.
    pub version: Option<u8>,
    /// Flags of the answer's MP_CAPABLE, if any.
    pub flags: Option<u8>,
    /// Answer's TCP options as lowercase hex text (unvalidated here).
    pub options: &'a [u8],
    /// Whole option list mirrored.
    pub mirrored: bool,
    /// TSval echoed as TSval.
    pub ts_echoed: bool,
    /// IP TTL.
    pub ttl: u8,
    /// TCP window.
    pub window: u16,
    /// The `detail` column's text (empty when absent).
    pub detail: &'a [u8],
}

/// Why a row could not be parsed: the column and the offending text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError(pub String);

impl std::error::Error for RowError {}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad(col: Col, v: &[u8]) -> RowError {
    let mut s = String::from_utf8_lossy(v).into_owned();
    if s.len() > 60 {
        s.truncate(60);
        s.push('…');
    }
    RowError(format!("bad {} value {:?}", col.name(), s))
}

impl<'a> RowRef<'a> {
    /// Parse the needed fields of `rec`; columns the command did not ask for get neutral defaults.
    pub fn parse<R: Fields + ?Sized>(rec: &'a R, cols: &Columns) -> Result<RowRef<'a>, RowError> {
        if rec.count() != cols.width {
            return Err(RowError(format!("{} fields, header has {}", rec.count(), cols.width)));
        }
        let f = |c: Col| cols.index(c).map(|i| rec.field(i));
        let ip_t = f(Col::Ip).unwrap_or(b"");
        let ip = parse_ip(ip_t).ok_or_else(|| bad(Col::Ip, ip_t))?;
        let port_t = f(Col::Port).unwrap_or(b"");
        let port = parse_uint(port_t, u16::MAX as u32).ok_or_else(|| bad(Col::Port, port_t))? as u16;
        let probe_t = f(Col::Probe).unwrap_or(b"");
        let probe = ProbeVersion::parse(probe_t).ok_or_else(|| bad(Col::Probe, probe_t))?;
        let class_t = f(Col::Class).unwrap_or(b"");
        let class = Class::parse(class_t).ok_or_else(|| bad(Col::Class, class_t))?;
        let version = match f(Col::MptcpVersion) {
            None | Some(b"") => None,
            Some(t) => Some(parse_uint(t, 15).ok_or_else(|| bad(Col::MptcpVersion, t))? as u8),
        };
        let flags = match f(Col::MpcFlags) {
            None | Some(b"") => None,
            Some(t) => Some(parse_hex_byte(t).ok_or_else(|| bad(Col::MpcFlags, t))?),
        };
        let options = f(Col::Options).unwrap_or(b"");
        let mirrored = parse_bool(f(Col::Mirrored), Col::Mirrored)?;
        let ts_echoed = parse_bool(f(Col::TsEchoed), Col::TsEchoed)?;
        let ttl = match f(Col::Ttl) {
            None => 0,
            Some(t) => parse_uint(t, 255).ok_or_else(|| bad(Col::Ttl, t))? as u8,
        };
        let window = match f(Col::Window) {
            None => 0,
            Some(t) => parse_uint(t, 65535).ok_or_else(|| bad(Col::Window, t))? as u16,
        };
        let detail = f(Col::Detail).unwrap_or(b"");
        Ok(RowRef { ip, port, probe, class, version, flags, options, mirrored, ts_echoed, ttl, window, detail })
    }
}

#[inline]
fn parse_bool(v: Option<&[u8]>, col: Col) -> Result<bool, RowError> {
    match v {
        None => Ok(false),
        Some(t) => parse_bool_text(t).ok_or_else(|| bad(col, t)),
    }
}

/// `true`, or `false` (also spelled as an empty field).
#[inline]
pub(crate) fn parse_bool_text(t: &[u8]) -> Option<bool> {
    match t {
        b"false" | b"" => Some(false),
        b"true" => Some(true),
        _ => None,
    }
}

/// Decimal without sign, at most `max`.
#[inline]
pub(crate) fn parse_uint(t: &[u8], max: u32) -> Option<u32> {
    if t.is_empty() || t.len() > 10 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in t {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as u64;
    }
    (v <= max as u64).then_some(v as u32)
}

/// `0x01`-style byte (also accepts it without the prefix).
#[inline]
pub(crate) fn parse_hex_byte(t: &[u8]) -> Option<u8> {
    let t = t.strip_prefix(b"0x").or_else(|| t.strip_prefix(b"0X")).unwrap_or(t);
    if t.is_empty() || t.len() > 2 {
        return None;
    }
    let mut v = 0u8;
    for &b in t {
        v = (v << 4) | hex_val(b)?;
    }
    Some(v)
}

/// Value of one hex digit.
#[inline]
pub fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Dotted-quad fast path; anything with a colon goes to the standard IPv6 parser.
#[inline]
pub fn parse_ip(t: &[u8]) -> Option<Ip> {
    if let Some(v4) = parse_ipv4(t) {
        return Some(Ip::V4(v4));
    }
    if t.contains(&b':') {
        let s = std::str::from_utf8(t).ok()?;
        return s.parse::<std::net::Ipv6Addr>().ok().map(|a| Ip::V6(u128::from(a)));
    }
    None
}

#[inline]
fn parse_ipv4(t: &[u8]) -> Option<u32> {
    let mut addr: u32 = 0;
    let mut octet: u32 = 0;
    let mut digits = 0;
    let mut dots = 0;
    for &b in t {
        if b == b'.' {
            if digits == 0 || dots == 3 {
                return None;
            }
            addr = (addr << 8) | octet;
            octet = 0;
            digits = 0;
            dots += 1;
        } else {
            let d = b.wrapping_sub(b'0');
            if d > 9 || digits == 3 || (digits > 0 && octet == 0) {
                return None; // not a digit, too long, or a leading zero
            }
            octet = octet * 10 + d as u32;
            if octet > 255 {
                return None;
            }
            digits += 1;
        }
    }
    if dots != 3 || digits == 0 {
        return None;
    }
    Some((addr << 8) | octet)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(fields: &[&str]) -> csv::ByteRecord {
        csv::ByteRecord::from(fields.to_vec())
    }

    /// The result header of files written before the `detail` column.
    const HEADER: &[&str] = crate::COLUMNS.split_at(14).0;

    #[test]
    fn ipv4_parser() {
        assert_eq!(parse_ip(b"198.51.100.7"), Some(Ip::V4(0xc6336407)));
        assert_eq!(parse_ip(b"0.0.0.0"), Some(Ip::V4(0)));
        assert_eq!(parse_ip(b"255.255.255.255"), Some(Ip::V4(u32::MAX)));
        for bad in ["256.1.1.1", "1.2.3", "1.2.3.4.5", "1..2.3", "01.2.3.4", "1.2.3.", "", "a.b.c.d", "1.2.3.1000"] {
            assert_eq!(parse_ip(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(parse_ip(b"2001:db8::1"), Some(Ip::V6(0x2001_0db8_0000_0000_0000_0000_0000_0001)));
        assert_eq!(parse_ip(b"2001:db8::zz"), None);
    }

    #[test]
    fn full_row_parses() {
        let cols = Columns::resolve(&rec(HEADER), Col::SUMMARY).unwrap();
        let r = rec(&[
            "198.51.100.7",
            "443",
            "v1",
            "mptcp",
            "198.51.100.7",
            "1",
            "0x21",
            "0011223344556677",
            "1e0c0121",
            "false",
            "true",
            "57",
            "65535",
            "2026-11-21T18:00:00.123456Z",
        ]);
        let row = RowRef::parse(&r, &cols).unwrap();
        assert_eq!(row.ip, Ip::V4(0xc6336407));
        assert_eq!((row.port, row.probe, row.class), (443, ProbeVersion::V1, Class::Mptcp));
        assert_eq!((row.version, row.flags), (Some(1), Some(0x21)));
        assert_eq!(row.options, b"1e0c0121");
        assert_eq!((row.mirrored, row.ts_echoed, row.ttl, row.window), (false, true, 57, 65535));
    }

    #[test]
    fn columns_found_by_name_in_any_order_extra_ignored() {
        let cols = Columns::resolve(&rec(&["extra", "class", "probe", "port", "ip"]), Col::DIFF);
        assert!(cols.as_ref().unwrap_err().contains("mptcp_version"), "{cols:?}");
        let cols =
            Columns::resolve(&rec(&["extra", "class", "probe", "mptcp_version", "port", "ip"]), Col::DIFF).unwrap();
        let r = rec(&["x", "echo", "v0", "0", "80", "2001:db8::1"]);
        let row = RowRef::parse(&r, &cols).unwrap();
        assert_eq!((row.class, row.probe, row.port, row.version), (Class::Echo, ProbeVersion::V0, 80, Some(0)));
    }

    #[test]
    fn bad_fields_name_the_column() {
        let cols = Columns::resolve(&rec(HEADER), Col::SUMMARY).unwrap();
        let good =
            ["198.51.100.7", "443", "v1", "tcp", "198.51.100.7", "", "", "", "", "false", "false", "57", "65535", "t"];
        assert!(RowRef::parse(&rec(&good), &cols).is_ok());
        for (i, v, col) in [
            (0, "1.2.3", "ip"),
            (1, "70000", "port"),
            (2, "v2", "probe"),
            (3, "mptcpp", "class"),
            (5, "x", "mptcp_version"),
            (6, "0x123", "mpc_flags"),
            (9, "yes", "mirrored"),
            (10, "1", "ts_echoed"),
            (11, "-1", "ttl"),
            (12, "65536", "window"),
        ] {
            let mut f = good;
            f[i] = v;
            let e = RowRef::parse(&rec(&f), &cols).unwrap_err();
            assert!(e.0.contains(col), "{e}");
        }
        let e = RowRef::parse(&rec(&good[..5]), &cols).unwrap_err();
        assert!(e.0.contains("5 fields"), "{e}");
    }
}
