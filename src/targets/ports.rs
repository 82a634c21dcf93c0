//! Port specifications: `443`, `80,443`, `8000-8100`, `22,80,8000-8010`.
//!
//! A scan probes every (address, port) pair, so the port list is the second factor of the target
//! space. It is kept sorted and free of duplicates (so `80,80` probes once), plus a 65,536-bit map
//! for O(1) membership on the receive path.

use super::error::{PortProblem, TargetError};

/// A sorted, duplicate-free set of ports (never empty, never containing 0).
#[derive(Clone)]
pub struct Ports {
    list: Vec<u16>,
    bits: Box<[u64; 1024]>,
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Ports").field(&self.list).finish()
    }
}

impl Ports {
    /// Parses a comma-separated list of ports and `low-high` ranges (whitespace around items is
    /// allowed). Port 0, numbers above 65535, reversed ranges and empty items are errors.
    pub fn parse(spec: &str) -> Result<Ports, TargetError> {
        let err = |problem| TargetError::Ports { spec: spec.to_string(), problem };
        let mut bits = Box::new([0u64; 1024]);
        for item in spec.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err(err(PortProblem::Empty));
            }
            let (low, high) = match item.split_once('-') {
                Some((a, b)) => (port(a.trim()).map_err(err)?, port(b.trim()).map_err(err)?),
                None => {
                    let p = port(item).map_err(err)?;
                    (p, p)
                }
            };
            if low > high {
                return Err(err(PortProblem::Reversed { low, high }));
            }
            for p in low..=high {
                bits[usize::from(p >> 6)] |= 1 << (p & 63);
            }
        }
        let list = (1..=u16::MAX).filter(|&p| bits[usize::from(p >> 6)] >> (p & 63) & 1 == 1).collect();
        Ok(Ports { list, bits })
    }

    /// The ports, ascending.
    #[inline]
    pub fn as_slice(&self) -> &[u16] {
        &self.list
    }

    /// Number of ports (at least 1).
    #[inline]
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Always false: a parsed port set holds at least one port.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Is `port` one of the scanned ports? O(1).
    #[inline]
    pub fn contains(&self, port: u16) -> bool {
        self.bits[usize::from(port >> 6)] >> (port & 63) & 1 == 1
    }
}

/// One port number: decimal digits only, 1..=65535.
fn port(s: &str) -> Result<u16, PortProblem> {
    if s.is_empty() {
        return Err(PortProblem::Empty);
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PortProblem::NotANumber(s.to_string()));
    }
    let digits = s.trim_start_matches('0');
    if digits.len() > 5 {
        return Err(PortProblem::TooLarge(s.to_string()));
    }
    match digits.parse::<u32>().unwrap_or(0) {
        0 => Err(PortProblem::Zero),
        n if n > 65535 => Err(PortProblem::TooLarge(s.to_string())),
        n => Ok(n as u16),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Vec<u16> {
        Ports::parse(s).unwrap().as_slice().to_vec()
    }

    fn problem(s: &str) -> PortProblem {
        match Ports::parse(s).unwrap_err() {
            TargetError::Ports { problem, .. } => problem,
            e => panic!("{e}"),
        }
    }

    #[test]
    fn forms() {
        assert_eq!(ok("443"), vec![443]);
        assert_eq!(ok("443,80"), vec![80, 443]);
        assert_eq!(ok("8000-8003"), vec![8000, 8001, 8002, 8003]);
        assert_eq!(ok("22, 80 ,8000-8002"), vec![22, 80, 8000, 8001, 8002]);
        assert_eq!(ok("80,80,79-81"), vec![79, 80, 81]);
        assert_eq!(ok("65535"), vec![65535]);
        assert_eq!(ok("1-65535").len(), 65535);
        assert_eq!(ok("0443"), vec![443]);
    }

    #[test]
    fn errors() {
        assert_eq!(problem("0"), PortProblem::Zero);
        assert_eq!(problem("0-10"), PortProblem::Zero);
        assert_eq!(problem("65536"), PortProblem::TooLarge("65536".into()));
        assert_eq!(problem("99999999999999999999"), PortProblem::TooLarge("99999999999999999999".into()));
        assert_eq!(problem("100-90"), PortProblem::Reversed { low: 100, high: 90 });
        assert_eq!(problem(""), PortProblem::Empty);
        assert_eq!(problem("80,,443"), PortProblem::Empty);
        assert_eq!(problem("80-"), PortProblem::Empty);
        assert_eq!(problem("http"), PortProblem::NotANumber("http".into()));
        assert_eq!(problem("-5"), PortProblem::Empty);
        assert_eq!(problem("1-2-3"), PortProblem::NotANumber("2-3".into()));
        // A reversed range says how to write it, once.
        let msg = Ports::parse("100-90").unwrap_err().to_string();
        assert_eq!(msg, r#"port spec "100-90": range 100-90 is reversed (write 90-100)"#);
    }

    #[test]
    fn membership() {
        let p = Ports::parse("22,80,8000-8010").unwrap();
        for x in [22, 80, 8000, 8005, 8010] {
            assert!(p.contains(x));
        }
        for x in [0, 21, 23, 443, 7999, 8011, 65535] {
            assert!(!p.contains(x));
        }
    }
}
