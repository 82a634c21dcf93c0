//! TCP options (RFC 9293 §3.2, RFC 7323, RFC 2018, RFC 8684), parsed one at a time.
//!
//! An option is either a single byte (End of Option List, kind 0; No-Operation, kind 1) or
//! `kind, length, data...` where the length counts the kind and length bytes. The walker never
//! trusts a length: a length below 2 or one that runs past the option area is an error (the
//! "loops forever on a zero length" bug of earlier tools is impossible here, since every step
//! consumes at least one byte), and after an error the iterator ends.
//!
//! Every kind-30 (Multipath TCP) option is surfaced: MP_CAPABLE (subtype 0) of a valid length
//! becomes [`TcpOption::MpCapable`]; any other kind-30 option, including an MP_CAPABLE of an
//! impossible length, stays [`TcpOption::Mptcp`] with its raw bytes, so that the classifier sees
//! it rather than a walker that takes "the first kind-30 option whatever its subtype".

use super::{mptcp::MpCapable, Error, Result};

/// Option kinds used here.
pub mod kind {
    /// End of option list.
    pub const END: u8 = 0;
    /// No-operation (padding).
    pub const NOP: u8 = 1;
    /// Maximum segment size.
    pub const MSS: u8 = 2;
    /// Window scale.
    pub const WSCALE: u8 = 3;
    /// SACK permitted.
    pub const SACK_PERM: u8 = 4;
    /// SACK blocks.
    pub const SACK: u8 = 5;
    /// Timestamps.
    pub const TIMESTAMPS: u8 = 8;
    /// Multipath TCP.
    pub const MPTCP: u8 = 30;
}

/// One TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    /// Kind 0: the end of the option list; what follows is padding.
    EndOfList,
    /// Kind 1: padding.
    NoOperation,
    /// Kind 2, length 4.
    MaxSegmentSize(u16),
    /// Kind 3, length 3: the shift count.
    WindowScale(u8),
    /// Kind 4, length 2.
    SackPermitted,
    /// Kind 5: SACK blocks, raw.
    Sack(&'a [u8]),
    /// Kind 8, length 10.
    Timestamps {
        /// The sender's clock.
        tsval: u32,
        /// The echoed peer clock.
        tsecr: u32,
    },
    /// Kind 30, subtype 0, of a valid length.
    MpCapable(MpCapable),
    /// Any other kind-30 option (other subtypes, or an MP_CAPABLE of an impossible length).
    Mptcp {
        /// The subtype nibble (0 for a malformed MP_CAPABLE).
        subtype: u8,
        /// The whole option, kind and length included.
        bytes: &'a [u8],
    },
    /// A known kind with the wrong length, or an unknown kind: raw.
    Unknown {
        /// The kind.
        kind: u8,
        /// The data after kind and length.
        data: &'a [u8],
    },
}

impl<'a> TcpOption<'a> {
    /// Parses the option at the start of `buf`, returning it and the rest of the buffer.
    pub fn parse(buf: &'a [u8]) -> Result<(TcpOption<'a>, &'a [u8])> {
        let Some(&k) = buf.first() else {
            return Err(Error::Truncated { what: "tcp option", need: 1, have: 0 });
        };
        match k {
            kind::END => return Ok((TcpOption::EndOfList, &buf[1..])),
            kind::NOP => return Ok((TcpOption::NoOperation, &buf[1..])),
            _ => {}
        }
        let Some(&len) = buf.get(1) else {
            return Err(Error::BadOptionLength { kind: k, len: 0 });
        };
        if len < 2 || len as usize > buf.len() {
            return Err(Error::BadOptionLength { kind: k, len });
        }
        let (opt, rest) = buf.split_at(len as usize);
        let data = &opt[2..];
        let parsed = match (k, len) {
            (kind::MSS, 4) => TcpOption::MaxSegmentSize(u16::from_be_bytes([data[0], data[1]])),
            (kind::WSCALE, 3) => TcpOption::WindowScale(data[0]),
            (kind::SACK_PERM, 2) => TcpOption::SackPermitted,
            (kind::SACK, _) => TcpOption::Sack(data),
            (kind::TIMESTAMPS, 10) => TcpOption::Timestamps {
                tsval: u32::from_be_bytes(data[0..4].try_into().unwrap()),
                tsecr: u32::from_be_bytes(data[4..8].try_into().unwrap()),
            },
            (kind::MPTCP, _) => {
                let subtype = data.first().map_or(0xff, |b| b >> 4);
                match MpCapable::parse(opt) {
                    Some(m) => TcpOption::MpCapable(m),
                    None => TcpOption::Mptcp { subtype, bytes: opt },
                }
            }
            _ => TcpOption::Unknown { kind: k, data },
        };
        Ok((parsed, rest))
    }

    /// Bytes this option takes on the wire.
    pub fn buffer_len(&self) -> usize {
        match self {
            TcpOption::EndOfList | TcpOption::NoOperation => 1,
            TcpOption::MaxSegmentSize(_) => 4,
            TcpOption::WindowScale(_) => 3,
            TcpOption::SackPermitted => 2,
            TcpOption::Sack(d) => 2 + d.len(),
            TcpOption::Timestamps { .. } => 10,
            TcpOption::MpCapable(m) => m.buffer_len(),
            TcpOption::Mptcp { bytes, .. } => bytes.len(),
            TcpOption::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Writes the option at the start of `buf` (which must hold [`Self::buffer_len`] bytes) and
    /// returns the number of bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let len = self.buffer_len();
        let b = &mut buf[..len];
        match *self {
            TcpOption::EndOfList => b[0] = kind::END,
            TcpOption::NoOperation => b[0] = kind::NOP,
            TcpOption::MaxSegmentSize(v) => {
                b[..2].copy_from_slice(&[kind::MSS, 4]);
                b[2..].copy_from_slice(&v.to_be_bytes());
            }
            TcpOption::WindowScale(v) => b.copy_from_slice(&[kind::WSCALE, 3, v]),
            TcpOption::SackPermitted => b.copy_from_slice(&[kind::SACK_PERM, 2]),
            TcpOption::Sack(d) => {
                b[..2].copy_from_slice(&[kind::SACK, len as u8]);
                b[2..].copy_from_slice(d);
            }
            TcpOption::Timestamps { tsval, tsecr } => {
                b[..2].copy_from_slice(&[kind::TIMESTAMPS, 10]);
                b[2..6].copy_from_slice(&tsval.to_be_bytes());
                b[6..].copy_from_slice(&tsecr.to_be_bytes());
            }
            TcpOption::MpCapable(m) => {
                m.emit(b);
            }
            TcpOption::Mptcp { bytes, .. } => b.copy_from_slice(bytes),
            TcpOption::Unknown { kind, data } => {
                b[..2].copy_from_slice(&[kind, len as u8]);
                b[2..].copy_from_slice(data);
            }
        }
        len
    }
}

/// An iterator over an option area. Yields each option in order, stops after End of Option
/// List, and yields at most one error (then ends).
#[derive(Debug, Clone)]
pub struct TcpOptions<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> TcpOptions<'a> {
    /// Walks `options` (the bytes between the fixed TCP header and the data offset).
    pub fn new(options: &'a [u8]) -> Self {
        TcpOptions { rest: options, done: false }
    }

    /// The bytes not walked yet (empty once the walk has ended, after End of Option List or an
    /// error).
    pub fn rest(&self) -> &'a [u8] {
        if self.done {
            &[]
        } else {
            self.rest
        }
    }

    /// The same walk, yielding each option with its own bytes as they stand in the option area
    /// (for an MP_CAPABLE of 22 or 24 bytes, all of them, where its `buffer_len` is 20; for an
    /// error, the rest of the area, which the walk did not get past).
    pub fn with_bytes(self) -> TcpOptionSpans<'a> {
        TcpOptionSpans { walk: self }
    }
}

/// [`TcpOptions::with_bytes`]: each option and the bytes it was parsed from.
#[derive(Debug, Clone)]
pub struct TcpOptionSpans<'a> {
    walk: TcpOptions<'a>,
}

impl<'a> Iterator for TcpOptionSpans<'a> {
    type Item = (Result<TcpOption<'a>>, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let before = self.walk.rest();
        let item = self.walk.next()?;
        let span = match item {
            Ok(_) => &before[..before.len() - self.walk.rest().len()],
            Err(_) => before,
        };
        Some((item, span))
    }
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = Result<TcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        match TcpOption::parse(self.rest) {
            Ok((opt, rest)) => {
                self.rest = rest;
                if opt == TcpOption::EndOfList {
                    self.done = true;
                }
                Some(Ok(opt))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Writes `options` one after another into `buf`, pads with NOPs to a multiple of 4, and returns
/// the padded length. `buf` must be large enough.
pub fn emit_all(options: &[TcpOption<'_>], buf: &mut [u8]) -> usize {
    let mut n = 0;
    for o in options {
        n += o.emit(&mut buf[n..]);
    }
    while n % 4 != 0 {
        buf[n] = kind::NOP;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts that `bytes` parse to `opt` with nothing left, and that `opt` emits `bytes`.
    macro_rules! round_trip {
        ($bytes:expr, $opt:expr) => {{
            let bytes: &[u8] = &$bytes;
            let (parsed, rest) = TcpOption::parse(bytes).unwrap();
            assert_eq!(parsed, $opt);
            assert!(rest.is_empty());
            let mut buf = vec![0u8; bytes.len()];
            assert_eq!($opt.emit(&mut buf), bytes.len());
            assert_eq!(buf, bytes);
        }};
    }

    #[test]
    fn known_options() {
        round_trip!([1], TcpOption::NoOperation);
        round_trip!([0], TcpOption::EndOfList);
        round_trip!([2, 4, 0x05, 0xb4], TcpOption::MaxSegmentSize(1460));
        round_trip!([3, 3, 7], TcpOption::WindowScale(7));
        round_trip!([4, 2], TcpOption::SackPermitted);
        round_trip!([8, 10, 0, 0, 0, 1, 0, 0, 0, 2], TcpOption::Timestamps { tsval: 1, tsecr: 2 });
        round_trip!([5, 10, 1, 2, 3, 4, 5, 6, 7, 8], TcpOption::Sack(&[1, 2, 3, 4, 5, 6, 7, 8]));
        round_trip!([0xfd, 4, 0xab, 0xcd], TcpOption::Unknown { kind: 0xfd, data: &[0xab, 0xcd] });
    }

    #[test]
    fn mptcp_options() {
        round_trip!(
            [0x1e, 0x04, 0x01, 0x01],
            TcpOption::MpCapable(MpCapable { version: 1, flags: 0x01, sender_key: None, receiver_key: None })
        );
        // MP_JOIN (subtype 1) is kind 30 but not MP_CAPABLE: it must not be taken for one.
        let join = [0x1e, 0x0c, 0x10, 0x00, 1, 2, 3, 4, 5, 6, 7, 8];
        round_trip!(join, TcpOption::Mptcp { subtype: 1, bytes: &join });
        // An MP_CAPABLE of length 8 does not exist.
        let odd = [0x1e, 0x08, 0x00, 0x81, 1, 2, 3, 4];
        round_trip!(odd, TcpOption::Mptcp { subtype: 0, bytes: &odd });
        // A kind-30 option with no subtype byte at all.
        let bare = [0x1e, 0x02];
        round_trip!(bare, TcpOption::Mptcp { subtype: 0xff, bytes: &bare });
    }

    #[test]
    fn wrong_length_known_kind_is_unknown() {
        round_trip!([2, 3, 5], TcpOption::Unknown { kind: 2, data: &[5] });
    }

    #[test]
    fn malformed_lengths_end_the_walk() {
        // Zero length: the classic infinite loop.
        let v: Vec<_> = TcpOptions::new(&[2, 0, 1, 1]).collect();
        assert_eq!(v, vec![Err(Error::BadOptionLength { kind: 2, len: 0 })]);
        // Length 1.
        let v: Vec<_> = TcpOptions::new(&[30, 1, 1, 1]).collect();
        assert_eq!(v, vec![Err(Error::BadOptionLength { kind: 30, len: 1 })]);
        // Overflowing the area.
        let v: Vec<_> = TcpOptions::new(&[1, 30, 12, 0, 0x81]).collect();
        assert_eq!(v, vec![Ok(TcpOption::NoOperation), Err(Error::BadOptionLength { kind: 30, len: 12 })]);
        // A kind with no length byte.
        let v: Vec<_> = TcpOptions::new(&[1, 8]).collect();
        assert_eq!(v, vec![Ok(TcpOption::NoOperation), Err(Error::BadOptionLength { kind: 8, len: 0 })]);
    }

    #[test]
    fn end_of_list_stops() {
        let v: Vec<_> = TcpOptions::new(&[1, 0, 2, 4, 5, 0xb4]).collect();
        assert_eq!(v, vec![Ok(TcpOption::NoOperation), Ok(TcpOption::EndOfList)]);
    }

    #[test]
    fn emit_all_pads() {
        let mut buf = [0xffu8; 8];
        let n = emit_all(&[TcpOption::WindowScale(7), TcpOption::SackPermitted], &mut buf);
        assert_eq!(n, 8);
        assert_eq!(buf, [3, 3, 7, 4, 2, 1, 1, 1]);
    }
}

/// Property tests: emit-then-parse round trips over arbitrary option lists, and the walker over
/// arbitrary bytes (terminates, never panics, gives back the bytes it consumed).
#[cfg(test)]
pub(crate) mod proptests {
    use super::*;
    use proptest::prelude::*;

    /// An owned option (the borrowed [`TcpOption`] needs its bytes to live somewhere).
    #[derive(Debug, Clone)]
    enum Owned {
        Nop,
        Mss(u16),
        Wscale(u8),
        SackPerm,
        Sack(Vec<u8>),
        Ts(u32, u32),
        Mpc(MpCapable),
        /// Kind 30 with a subtype other than MP_CAPABLE.
        Mptcp(Vec<u8>),
        Unknown(u8, Vec<u8>),
    }

    impl Owned {
        fn as_option(&self) -> TcpOption<'_> {
            match self {
                Owned::Nop => TcpOption::NoOperation,
                Owned::Mss(v) => TcpOption::MaxSegmentSize(*v),
                Owned::Wscale(v) => TcpOption::WindowScale(*v),
                Owned::SackPerm => TcpOption::SackPermitted,
                Owned::Sack(d) => TcpOption::Sack(d),
                Owned::Ts(a, b) => TcpOption::Timestamps { tsval: *a, tsecr: *b },
                Owned::Mpc(m) => TcpOption::MpCapable(*m),
                Owned::Mptcp(b) => TcpOption::Mptcp { subtype: b[2] >> 4, bytes: b },
                Owned::Unknown(k, d) => TcpOption::Unknown { kind: *k, data: d },
            }
        }
    }

    pub(crate) fn mp_capable() -> impl Strategy<Value = MpCapable> {
        (0u8..16, any::<u8>(), prop_oneof![Just(0u8), Just(1), Just(2)], any::<u64>(), any::<u64>()).prop_map(
            |(version, flags, keys, a, b)| MpCapable {
                version,
                flags,
                sender_key: (keys >= 1).then_some(a),
                receiver_key: (keys == 2).then_some(b),
            },
        )
    }

    fn option() -> impl Strategy<Value = Owned> {
        prop_oneof![
            Just(Owned::Nop),
            any::<u16>().prop_map(Owned::Mss),
            any::<u8>().prop_map(Owned::Wscale),
            Just(Owned::SackPerm),
            proptest::collection::vec(any::<u8>(), 0..=38).prop_map(Owned::Sack),
            (any::<u32>(), any::<u32>()).prop_map(|(a, b)| Owned::Ts(a, b)),
            mp_capable().prop_map(Owned::Mpc),
            // MP_JOIN, DSS, ADD_ADDR...: subtypes 1 to 15, any body.
            (1u8..16, any::<u8>(), proptest::collection::vec(any::<u8>(), 0..=35)).prop_map(|(st, low, body)| {
                let mut b = vec![kind::MPTCP, (3 + body.len()) as u8, st << 4 | (low & 0x0f)];
                b.extend(body);
                Owned::Mptcp(b)
            }),
            // Unknown kinds (not one the walker knows).
            (
                any::<u8>().prop_filter("unknown kind", |k| ![0, 1, 2, 3, 4, 5, 8, 30].contains(k)),
                proptest::collection::vec(any::<u8>(), 0..=38)
            )
                .prop_map(|(k, d)| Owned::Unknown(k, d)),
        ]
    }

    proptest! {
        /// Any option list emitted back to back parses to the same list, and each option takes
        /// exactly its `buffer_len` bytes.
        #[test]
        fn option_lists_round_trip(list in proptest::collection::vec(option(), 0..12), end in any::<bool>()) {
            let mut opts: Vec<TcpOption<'_>> = list.iter().map(Owned::as_option).collect();
            if end {
                opts.push(TcpOption::EndOfList);
            }
            let mut buf = vec![0u8; opts.iter().map(TcpOption::buffer_len).sum()];
            let mut n = 0;
            for o in &opts {
                n += o.emit(&mut buf[n..]);
            }
            prop_assert_eq!(n, buf.len());
            let parsed: Vec<TcpOption<'_>> = TcpOptions::new(&buf).collect::<Result<_>>().unwrap();
            prop_assert_eq!(parsed, opts);
        }

        /// The option walker over any bytes: at most one step per byte (plus one error), at most
        /// one error and nothing after it, nothing after End of Option List, and every option it
        /// yields emits back to exactly the bytes it consumed (a 22/24-byte MP_CAPABLE is emitted
        /// in its 20-byte form: the data-level length is not kept).
        #[test]
        fn walker_over_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut rest: &[u8] = &bytes;
            let mut steps = 0;
            let mut it = TcpOptions::new(&bytes);
            while let Some(item) = it.next() {
                steps += 1;
                prop_assert!(steps <= bytes.len() + 1);
                match item {
                    Ok(o) => {
                        let (again, after) = TcpOption::parse(rest).unwrap();
                        prop_assert_eq!(again, o);
                        if o != TcpOption::EndOfList {
                            prop_assert_eq!(it.rest(), after);
                        }
                        let consumed = &rest[..rest.len() - after.len()];
                        let mut out = vec![0u8; o.buffer_len()];
                        prop_assert_eq!(o.emit(&mut out), out.len());
                        match o {
                            TcpOption::MpCapable(_) if consumed.len() > 20 => {
                                prop_assert!(consumed.len() == 22 || consumed.len() == 24);
                                prop_assert_eq!(&out[2..], &consumed[2..20]);
                            }
                            _ => prop_assert_eq!(&out[..], consumed),
                        }
                        rest = after;
                        if o == TcpOption::EndOfList {
                            prop_assert!(it.next().is_none());
                        }
                    }
                    Err(e) => {
                        prop_assert!(matches!(e, Error::BadOptionLength { .. }), "{:?}", e);
                        prop_assert!(it.next().is_none());
                    }
                }
            }
            prop_assert!(steps <= bytes.len());
        }
    }

    #[test]
    fn spans_are_each_options_own_bytes() {
        // NOP, a 24-byte MP_CAPABLE (v1 with both keys: emitted as 20), an unknown kind 99,
        // End of Option List, then padding.
        let mut area = vec![1u8, 30, 24, 0x01, 0x81];
        area.extend_from_slice(&[7; 20]);
        area.extend_from_slice(&[99, 3, 0xaa, 0, 0, 0]);
        let spans: Vec<_> = TcpOptions::new(&area).with_bytes().collect();
        assert_eq!(spans.len(), 4);
        assert_eq!(spans[0], (Ok(TcpOption::NoOperation), &area[..1]));
        assert!(matches!(spans[1].0, Ok(TcpOption::MpCapable(_))));
        assert_eq!(spans[1].1, &area[1..25]);
        assert_eq!(spans[2].1, &[99, 3, 0xaa]);
        // End of Option List takes the padding after it with it.
        assert_eq!(spans[3], (Ok(TcpOption::EndOfList), &area[28..]));
        // A bad length: the error and the bytes left.
        let bad = [1u8, 30, 40, 0x01];
        let spans: Vec<_> = TcpOptions::new(&bad).with_bytes().collect();
        assert_eq!(spans[1], (Err(Error::BadOptionLength { kind: 30, len: 40 }), &bad[1..]));
        assert_eq!(spans.len(), 2);
    }
}
