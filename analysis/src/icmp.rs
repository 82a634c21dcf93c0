//! The ICMP errors that end a probe, as the scan's `detail` column writes them (`icmp-TYPE-CODE`,
//! in the numbers of the answer's family), read back and named for the summary's table.

/// Parses a `detail` value of an `unreachable` row: `icmp-11-0` gives `(11, 0)`.
pub fn parse_detail(d: &[u8]) -> Option<(u8, u8)> {
    let rest = d.strip_prefix(b"icmp-")?;
    let dash = rest.iter().position(|&b| b == b'-')?;
    let num = |t: &[u8]| -> Option<u8> {
        if t.is_empty() || t.len() > 3 || !t.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(t).ok()?.parse().ok()
    };
    Some((num(&rest[..dash])?, num(&rest[dash + 1..])?))
}

/// A short name for an ICMPv4 (`v6 == false`) or ICMPv6 type and code, for tables.
pub fn describe(v6: bool, msg_type: u8, code: u8) -> &'static str {
    match (v6, msg_type, code) {
        (false, 3, 0) => "net unreachable",
        (false, 3, 1) => "host unreachable",
        (false, 3, 2) => "protocol unreachable",
        (false, 3, 3) => "port unreachable",
        (false, 3, 4) => "fragmentation needed",
        (false, 3, 9 | 10) => "net/host admin-prohibited",
        (false, 3, 13) => "admin-prohibited",
        (false, 3, _) => "unreachable (other code)",
        (false, 11, 0) => "TTL exceeded in transit",
        (false, 11, _) => "time exceeded (reassembly)",
        (false, 12, _) => "parameter problem",
        (true, 1, 0) => "no route",
        (true, 1, 1) => "admin-prohibited",
        (true, 1, 3) => "address unreachable",
        (true, 1, 4) => "port unreachable",
        (true, 1, 5 | 6) => "source policy / reject route",
        (true, 1, _) => "unreachable (other code)",
        (true, 3, 0) => "hop limit exceeded in transit",
        (true, 3, _) => "time exceeded (reassembly)",
        (true, 4, _) => "parameter problem",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_parse_and_name() {
        assert_eq!(parse_detail(b"icmp-11-0"), Some((11, 0)));
        assert_eq!(parse_detail(b"icmp-3-13"), Some((3, 13)));
        for bad in
            [&b""[..], b"icmp-", b"icmp-3", b"icmp-3-", b"icmp--1", b"icmp-300-1", b"mpc-no-algorithm", b"icmp-a-1"]
        {
            assert_eq!(parse_detail(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(describe(false, 11, 0), "TTL exceeded in transit");
        assert_eq!(describe(true, 3, 0), "hop limit exceeded in transit");
        assert_eq!(describe(true, 1, 1), "admin-prohibited");
        assert_eq!(describe(false, 3, 13), "admin-prohibited");
    }
}
