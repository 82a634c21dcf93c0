//! The MP_CAPABLE option of Multipath TCP: v0 (RFC 6824 §3.1) and v1 (RFC 8684 §3.1).
//!
//! ```text
//!                      1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +---------------+---------------+-------+-------+---------------+
//! |     Kind      |    Length     |Subtype|Version|A|B|C|D|E|F|G|H|
//! +---------------+---------------+-------+-------+---------------+
//! |                   Option Sender's Key (64 bits)               |
//! |                      (if option Length > 4)                   |
//! +---------------------------------------------------------------+
//! |                  Option Receiver's Key (64 bits)              |
//! |                      (if option Length > 12)                  |
//! +-------------------------------+-------------------------------+
//! |  Data-Level Length (16 bits)  |  Checksum (16 bits, optional) |
//! +-------------------------------+-------------------------------+
//! ```
//!
//! Lengths by message: v1 SYN 4 (no key); v0 SYN and both versions' SYN-ACK 12 (one key);
//! third ACK 20 (both keys); v1 third ACK with data 22, or 24 with the DSS checksum.
//! Flags: A (0x80) checksum required, B (0x40) extensibility, C (0x20, v1) do not open subflows to
//! the source address, H (0x01) HMAC-SHA1 (v0) / HMAC-SHA256 (v1).
//!
//! Keys are carried in network byte order; the 64-bit value here is the big-endian reading of the
//! 8 bytes (one earlier tool wrote a constant key in host byte order).

/// The MP_CAPABLE option's kind.
pub const KIND: u8 = 30;
/// Flag A: checksum required.
pub const FLAG_A_CHECKSUM: u8 = 0x80;
/// Flag B: extensibility (must be 0).
pub const FLAG_B_EXTENSIBILITY: u8 = 0x40;
/// Flag C: do not open subflows to this source address (v1).
pub const FLAG_C_NO_SOURCE_SUBFLOWS: u8 = 0x20;
/// Flag H: HMAC-SHA1 (v0) or HMAC-SHA256 (v1).
pub const FLAG_H_HMAC: u8 = 0x01;
/// The crypto-algorithm bits D to H (RFC 8684 §3.1). An answer must choose exactly one algorithm
/// the SYN offered; our probes offer H alone, so an answer's `flags & ALGORITHM_BITS` must be
/// [`FLAG_H_HMAC`] (the test the Linux client applies). All zero means no algorithm: the option
/// MUST be ignored. v0 (RFC 6824) has H as its only assigned algorithm, so the same test holds.
pub const ALGORITHM_BITS: u8 = 0x1f;

/// An MP_CAPABLE option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MpCapable {
    /// Protocol version: 0 (RFC 6824) or 1 (RFC 8684); other values are kept as seen.
    pub version: u8,
    /// The flag byte (A to H).
    pub flags: u8,
    /// The option sender's key (lengths 12 and up).
    pub sender_key: Option<u64>,
    /// The option receiver's key (lengths 20 and up).
    pub receiver_key: Option<u64>,
}

impl MpCapable {
    /// Parses a whole kind-30 option (kind and length bytes included). Returns `None` unless it
    /// is subtype 0 with one of the lengths MP_CAPABLE can have (4, 12, 20, 22, 24); such an
    /// option is surfaced raw by the option walker instead.
    pub fn parse(opt: &[u8]) -> Option<MpCapable> {
        if opt.len() < 4 || opt[0] != KIND || opt[1] as usize != opt.len() || opt[2] >> 4 != 0 {
            return None;
        }
        let key = |at: usize| u64::from_be_bytes(opt[at..at + 8].try_into().unwrap());
        let (sender_key, receiver_key) = match opt.len() {
            4 => (None, None),
            12 => (Some(key(4)), None),
            20 | 22 | 24 => (Some(key(4)), Some(key(12))),
            _ => return None,
        };
        Some(MpCapable { version: opt[2] & 0x0f, flags: opt[3], sender_key, receiver_key })
    }

    /// Bytes on the wire (4, 12 or 20: the data-level length is not emitted).
    pub fn buffer_len(&self) -> usize {
        match (self.sender_key, self.receiver_key) {
            (None, _) => 4,
            (Some(_), None) => 12,
            (Some(_), Some(_)) => 20,
        }
    }

    /// Writes the option into `buf` (at least [`Self::buffer_len`] bytes); returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let len = self.buffer_len();
        buf[0] = KIND;
        buf[1] = len as u8;
        buf[2] = self.version & 0x0f;
        buf[3] = self.flags;
        if let Some(k) = self.sender_key {
            buf[4..12].copy_from_slice(&k.to_be_bytes());
        }
        if let Some(k) = self.receiver_key {
            buf[12..20].copy_from_slice(&k.to_be_bytes());
        }
        len
    }

    /// The v1 SYN option mpscan sends: `1e 04 01 01` (HMAC-SHA256, no checksum), the shape Linux
    /// accepts (it demands `flags & 0x1f == 0x01` and B = 0).
    pub fn v1_syn() -> MpCapable {
        MpCapable { version: 1, flags: FLAG_H_HMAC, sender_key: None, receiver_key: None }
    }

    /// The v0 SYN option: `1e 0c 00 81` + key (checksum required and HMAC-SHA1, as the
    /// multipath-tcp.org kernel sends).
    pub fn v0_syn(key: u64) -> MpCapable {
        MpCapable { version: 0, flags: FLAG_A_CHECKSUM | FLAG_H_HMAC, sender_key: Some(key), receiver_key: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_syn_vector() {
        let mut b = [0u8; 4];
        assert_eq!(MpCapable::v1_syn().emit(&mut b), 4);
        assert_eq!(b, [0x1e, 0x04, 0x01, 0x01]);
        assert_eq!(MpCapable::parse(&b), Some(MpCapable::v1_syn()));
    }

    #[test]
    fn v0_syn_vector() {
        let mut b = [0u8; 12];
        MpCapable::v0_syn(0x0102030405060708).emit(&mut b);
        assert_eq!(b, [0x1e, 0x0c, 0x00, 0x81, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(MpCapable::parse(&b).unwrap().sender_key, Some(0x0102030405060708));
    }

    #[test]
    fn linux_syn_ack_vector() {
        // Linux 6.x answering a v1 SYN (seen on this kind of machine): 1e 0c 01 01 + key.
        let b = [0x1e, 0x0c, 0x01, 0x01, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1];
        let m = MpCapable::parse(&b).unwrap();
        assert_eq!((m.version, m.flags, m.sender_key), (1, 1, Some(0xdeadbeef00000001)));
    }

    #[test]
    fn third_ack_lengths() {
        let mut b = [0u8; 24];
        b[0] = 0x1e;
        b[2] = 0x01;
        for len in [20u8, 22, 24] {
            b[1] = len;
            let m = MpCapable::parse(&b[..len as usize]).unwrap();
            assert!(m.receiver_key.is_some());
        }
    }

    #[test]
    fn rejects_impossible_shapes() {
        assert_eq!(MpCapable::parse(&[0x1e, 0x08, 0x00, 0x81, 1, 2, 3, 4]), None); // length 8
        assert_eq!(MpCapable::parse(&[0x1e, 0x04, 0x11, 0x01]), None); // subtype 1 (MP_JOIN)
        assert_eq!(MpCapable::parse(&[0x1e, 0x05, 0x01, 0x01]), None); // length byte lies
        assert_eq!(MpCapable::parse(&[0x1e, 0x03, 0x01]), None); // too short
        assert_eq!(MpCapable::parse(&[0x02, 0x04, 0x01, 0x01]), None); // not kind 30
    }
}

/// Property tests: MP_CAPABLE emit -> parse for every version, flag byte and key shape.
#[cfg(test)]
mod proptests {
    use super::*;
    use crate::wire::tcp_option::proptests::mp_capable;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn emit_then_parse(m in mp_capable()) {
            let mut b = [0u8; 24];
            let n = m.emit(&mut b);
            prop_assert_eq!(n, m.buffer_len());
            prop_assert_eq!(b[1] as usize, n);
            prop_assert_eq!(MpCapable::parse(&b[..n]), Some(m));
            // The same option with its length byte changed to anything else is not MP_CAPABLE
            // unless it is one of the lengths MP_CAPABLE has and the bytes are there.
            for len in 0..=24u8 {
                let mut c = b;
                c[1] = len;
                let parsed = MpCapable::parse(&c[..n]);
                prop_assert_eq!(parsed.is_some(), len as usize == n);
            }
        }

        /// Any bytes: parse never panics, and what it accepts is subtype 0 of a valid length.
        #[test]
        fn parse_any_bytes(b in proptest::collection::vec(any::<u8>(), 0..30)) {
            if let Some(m) = MpCapable::parse(&b) {
                prop_assert!(matches!(b.len(), 4 | 12 | 20 | 22 | 24));
                prop_assert_eq!((b[0], b[1] as usize, b[2] >> 4), (KIND, b.len(), 0));
                prop_assert_eq!(m.version, b[2] & 0x0f);
            }
        }
    }
}
