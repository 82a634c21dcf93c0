//! Distinct addresses behind the answers that carried an MPTCP option, by probe version and
//! family: deployment as the TUM studies count it ("13k+ IPv4 hosts speak MPTCP v0"). Result rows
//! are per (address, port, probe), so an address that answers on ports 80 and 443 is two rows of
//! the headline table and one host here.
//!
//! Memory grows with the number of addresses that answered with an MPTCP option (a few hundred
//! thousand in a full IPv4 scan), not with the number of rows.

use crate::table::{Cell, Table};
use mpscan_schema::{Class, Ip, ProbeVersion};
use std::collections::HashMap;

/// Bit of (probe, class) in an address's mask: 3 classes per probe version.
fn bit(probe: ProbeVersion, class: Class) -> Option<u8> {
    let k = match class {
        Class::Mptcp => 0,
        Class::Echo => 1,
        Class::Malformed => 2,
        _ => return None,
    };
    Some(1 << (3 * (probe as u8) + k))
}

/// Which (probe, class) pairs each address answered with, for the classes with an MPTCP option.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hosts {
    seen: HashMap<Ip, u8>,
}

impl Hosts {
    /// Count one row (rows of other classes are ignored).
    #[inline]
    pub fn add(&mut self, ip: Ip, probe: ProbeVersion, class: Class) {
        if let Some(b) = bit(probe, class) {
            *self.seen.entry(ip).or_insert(0) |= b;
        }
    }

    /// Fold another worker's addresses in.
    pub fn merge(&mut self, o: Hosts) {
        for (ip, m) in o.seen {
            *self.seen.entry(ip).or_insert(0) |= m;
        }
    }

    /// Addresses (IPv4, IPv6) whose mask has any bit of `mask`.
    pub fn count(&self, mask: u8) -> (u64, u64) {
        let (mut v4, mut v6) = (0, 0);
        for (ip, m) in &self.seen {
            if m & mask != 0 {
                match ip {
                    Ip::V4(_) => v4 += 1,
                    Ip::V6(_) => v6 += 1,
                }
            }
        }
        (v4, v6)
    }

    /// The table: real servers and echoing boxes per probe version and family, and real servers
    /// over both versions. Only the probe versions in `probes` get rows.
    pub fn table(&self, probes: &[ProbeVersion]) -> Table {
        let mut t = Table::new("Distinct addresses by probe version and family", &["", "IPv4", "IPv6", "all"]);
        let mut row = |label: String, mask: u8| {
            let (v4, v6) = self.count(mask);
            t.push(vec![Cell::text(label), Cell::Int(v4), Cell::Int(v6), Cell::Int(v4 + v6)]);
        };
        let mask = |classes: &[Class], ps: &[ProbeVersion]| {
            let mut m = 0;
            for p in ps {
                for c in classes {
                    m |= bit(*p, *c).unwrap_or(0);
                }
            }
            m
        };
        for p in probes {
            row(format!("real MPTCP, probe {}", p.label()), mask(&[Class::Mptcp], &[*p]));
        }
        if probes.len() > 1 {
            row("real MPTCP, either probe".into(), mask(&[Class::Mptcp], probes));
        }
        for p in probes {
            row(format!("echoing, probe {}", p.label()), mask(&[Class::Echo], &[*p]));
        }
        for p in probes {
            row(format!("malformed MPTCP option, probe {}", p.label()), mask(&[Class::Malformed], &[*p]));
        }
        t.with_note("an address counts once however many ports answered; rows are per address, port and probe")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_on_two_ports_is_one_host() {
        let mut h = Hosts::default();
        let a = Ip::V4(0x0a00_0001);
        let b = Ip::V6(0x2001_0db8 << 96 | 1);
        // a: real on v0 at two ports, echo on v1; b: real on v1; c: tcp only (not counted).
        h.add(a, ProbeVersion::V0, Class::Mptcp);
        h.add(a, ProbeVersion::V0, Class::Mptcp);
        h.add(a, ProbeVersion::V1, Class::Echo);
        let mut other = Hosts::default();
        other.add(b, ProbeVersion::V1, Class::Mptcp);
        other.add(Ip::V4(7), ProbeVersion::V1, Class::Tcp);
        h.merge(other);
        let t = h.table(&[ProbeVersion::V1, ProbeVersion::V0]);
        assert_eq!(t.int("real MPTCP, probe v0", "IPv4"), Some(1));
        assert_eq!(t.int("real MPTCP, probe v1", "IPv6"), Some(1));
        assert_eq!(t.int("real MPTCP, probe v1", "IPv4"), Some(0));
        assert_eq!(t.int("real MPTCP, either probe", "all"), Some(2));
        assert_eq!(t.int("echoing, probe v1", "all"), Some(1));
        assert_eq!(t.int("echoing, probe v0", "all"), Some(0));
        assert_eq!(t.int("malformed MPTCP option, probe v0", "all"), Some(0));
        // One probe version: no "either" row.
        assert!(h.table(&[ProbeVersion::V0]).row("real MPTCP, either probe").is_none());
    }
}
