//! What a validated response means: one [`Class`] per response, decided on parsed options, never
//! on raw bytes alone.
//!
//! The rule every MPTCP scan must apply (docs/MPTCP.md): the MP_CAPABLE that comes back must differ
//! from the one that was sent. The probe's own option bytes are recomputed from the hash (see
//! [`crate::probe::write_options`]) and compared:
//!
//! | response | class |
//! |---|---|
//! | SYN-ACK, MP_CAPABLE byte-identical to the probe's, our own v0 key back, or a 4-byte MP_CAPABLE answering a v1 probe | `echo` |
//! | SYN-ACK, 12-byte MP_CAPABLE, version 0 or 1 not above the probe's, key not ours, B clear, algorithm bits (D-H) exactly H | `mptcp` |
//! | SYN-ACK, any other kind-30 option (wrong length, other subtype, impossible version, B set, no algorithm or one not offered, or a broken option list around it) | `malformed` |
//! | SYN-ACK without any kind-30 option | `tcp` |
//! | RST | `closed` |
//! | ICMP(v6) destination unreachable, time exceeded or parameter problem quoting our probe | `unreachable` |
//!
//! Besides the class, two facts about middleboxes are recorded: whether the whole option list
//! came back byte-identical (a mirroring box), and whether our TSval came back as TSval (a box
//! that copies options rather than a TCP stack, which would put it in TSecr).

use crate::accept::{Response, ResponseKind};
use crate::probe::{options_of, ProbeVersion, SynOption};
use crate::wire::{mptcp, MpCapable, TcpOption, TcpOptions};

/// The class of a response (the CSV's `class` column): the result schema's, so every reader of
/// results counts by the same enum.
pub use mpscan_schema::Class;

/// The verdict on one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    /// The class.
    pub class: Class,
    /// The first MP_CAPABLE seen (for `mptcp`, `echo`; and `malformed` when one parsed).
    pub mpc: Option<MpCapable>,
    /// The whole option list came back byte-identical to the probe's.
    pub mirrored: bool,
    /// Our TSval came back in the TSval field.
    pub ts_echoed: bool,
    /// Why, for `malformed` (and the ICMP code for `unreachable`): a short stable token.
    pub detail: &'static str,
}

/// Classifies a validated response.
pub fn classify(r: &Response<'_>) -> Classification {
    let mut v = Classification { class: Class::Tcp, mpc: None, mirrored: false, ts_echoed: false, detail: "" };
    match r.kind {
        ResponseKind::Rst => {
            v.class = Class::Closed;
            return v;
        }
        ResponseKind::Icmp { .. } => {
            v.class = Class::Unreachable;
            return v;
        }
        ResponseKind::SynAck => {}
    }
    let (probe_opts, probe_len) = options_of(r.version, &r.tag);
    let probe_opts = &probe_opts[..probe_len];
    v.mirrored = r.options == probe_opts;

    // One pass over the options: timestamps, the first MP_CAPABLE, any other kind-30 option,
    // and whether the list is broken around a kind-30 option.
    let mut other_mptcp = false;
    let mut broken_mptcp = false;
    let mut mpc_bytes: Option<&[u8]> = None;
    // Each option with its own bytes, as they came (`buffer_len` is the emitted length, which
    // for a 22/24-byte MP_CAPABLE is 20).
    for (item, here) in TcpOptions::new(r.options).with_bytes() {
        match item {
            Ok(opt) => {
                match opt {
                    TcpOption::Timestamps { tsval, .. } => v.ts_echoed |= tsval == r.tag.tsval,
                    TcpOption::MpCapable(m) if v.mpc.is_none() => {
                        v.mpc = Some(m);
                        mpc_bytes = Some(here);
                    }
                    // A second MP_CAPABLE: a SYN-ACK carries one. The first still decides an echo,
                    // but the answer is not a clean server's (it may be our own option copied
                    // in after one that looks like a server's).
                    TcpOption::MpCapable(_) => other_mptcp = true,
                    TcpOption::Mptcp { .. } => other_mptcp = true,
                    _ => {}
                }
            }
            Err(crate::wire::Error::BadOptionLength { kind: 30, .. }) => broken_mptcp = true,
            Err(_) => {}
        }
    }

    let Some(m) = v.mpc else {
        if other_mptcp || broken_mptcp {
            v.class = Class::Malformed;
            v.detail = if broken_mptcp { "mptcp-option-overflows" } else { "not-mp-capable" };
        }
        return v;
    };
    let probe_mpc = &probe_opts[probe_len - r.version.syn_option(r.tag.key).buffer_len()..];
    let ours_key = m.sender_key == Some(r.tag.key) && r.version == ProbeVersion::V0;
    (v.class, v.detail) = if mpc_bytes == Some(probe_mpc) || ours_key {
        (Class::Echo, "")
    } else if m.sender_key.is_none() {
        // A 4-byte MP_CAPABLE is a SYN's, never a SYN-ACK's: a box replaying a SYN option.
        if r.version == ProbeVersion::V1 && m.version == 1 {
            (Class::Echo, "")
        } else {
            (Class::Malformed, "mpc-without-key")
        }
    } else if m.receiver_key.is_some() {
        (Class::Malformed, "mpc-third-ack-shape")
    } else if m.version > r.version as u8 {
        // RFC 8684 §3.1: the answer's version must not exceed the one offered.
        (Class::Malformed, "mpc-version-above-offer")
    } else if m.flags & mptcp::FLAG_B_EXTENSIBILITY != 0 {
        (Class::Malformed, "mpc-flag-b-set")
    } else if m.flags & mptcp::ALGORITHM_BITS == 0 {
        // RFC 8684 §3.1 (and RFC 6824 for v0): no algorithm bit means the option MUST be
        // ignored; the handshake is plain TCP, so no MPTCP server answered.
        (Class::Malformed, "mpc-no-algorithm")
    } else if m.flags & mptcp::ALGORITHM_BITS != mptcp::FLAG_H_HMAC {
        // An algorithm the probe did not offer (it offers H alone): Linux falls back to TCP.
        (Class::Malformed, "mpc-algorithm-not-offered")
    } else if other_mptcp || broken_mptcp {
        (Class::Malformed, "extra-mptcp-option")
    } else {
        (Class::Mptcp, "")
    };
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accept::tests::{ctx, tcp_reply_raw, TARGET, US};
    use crate::accept::Context;
    use crate::probe::ProbeVersion::{V0, V1};
    use crate::wire::tcp_option;
    use crate::wire::TcpOption as O;

    /// Builds a validated SYN-ACK for `version` carrying `options` and classifies it.
    fn verdict_with(
        c: &Context,
        version: ProbeVersion,
        options: impl Fn(&crate::probe::ProbeTag) -> Vec<u8>,
    ) -> Classification {
        let tag = c.validator.tag(US.into(), TARGET.into(), 443, version);
        let opts = options(&tag);
        assert_eq!(opts.len() % 4, 0);
        let f = tcp_reply_raw(TARGET, 443, tag.sport, 0x12, tag.seq.wrapping_add(1), &opts);
        let r = c.parse(&f).expect("validates");
        classify(&r)
    }

    fn emit(opts: &[O]) -> Vec<u8> {
        let mut b = [0u8; 40];
        let n = tcp_option::emit_all(opts, &mut b);
        b[..n].to_vec()
    }

    fn linux_syn_ack(tag: &crate::probe::ProbeTag, mpc: MpCapable) -> Vec<u8> {
        emit(&[
            O::MaxSegmentSize(1460),
            O::SackPermitted,
            O::Timestamps { tsval: 99, tsecr: tag.tsval },
            O::NoOperation,
            O::WindowScale(7),
            O::MpCapable(mpc),
        ])
    }

    fn server_mpc(version: u8, flags: u8) -> MpCapable {
        MpCapable { version, flags, sender_key: Some(0xfeed_f00d_dead_beef), receiver_key: None }
    }

    #[test]
    fn real_v1_server() {
        let c = ctx(&[V1]);
        let v = verdict_with(&c, V1, |t| linux_syn_ack(t, server_mpc(1, 0x01)));
        assert_eq!((v.class, v.mirrored, v.ts_echoed), (Class::Mptcp, false, false));
        assert_eq!(v.mpc.unwrap().sender_key, Some(0xfeed_f00d_dead_beef));
        // Load-balanced deployment: C flag.
        assert_eq!(verdict_with(&c, V1, |t| linux_syn_ack(t, server_mpc(1, 0x21))).class, Class::Mptcp);
        // A v0-only server answering a v1 probe with version 0 (RFC 8684 §3.1 allows it).
        assert_eq!(verdict_with(&c, V1, |t| linux_syn_ack(t, server_mpc(0, 0x81))).class, Class::Mptcp);
    }

    #[test]
    fn real_v0_server() {
        let c = ctx(&[V0]);
        let v = verdict_with(&c, V0, |t| linux_syn_ack(t, server_mpc(0, 0x81)));
        assert_eq!(v.class, Class::Mptcp);
        // Answering a v0 offer with v1 is not allowed.
        let v = verdict_with(&c, V0, |t| linux_syn_ack(t, server_mpc(1, 0x01)));
        assert_eq!((v.class, v.detail), (Class::Malformed, "mpc-version-above-offer"));
    }

    #[test]
    fn echoes() {
        let c = ctx(&[V0, V1]);
        // v1: the 4-byte option copied into an otherwise normal SYN-ACK.
        let v = verdict_with(&c, V1, |t| linux_syn_ack(t, MpCapable::v1_syn()));
        assert_eq!((v.class, v.mirrored), (Class::Echo, false));
        // v0: our key back, even with other flags.
        let v = verdict_with(&c, V0, |t| {
            linux_syn_ack(t, MpCapable { version: 0, flags: 0x01, sender_key: Some(t.key), receiver_key: None })
        });
        assert_eq!(v.class, Class::Echo);
        // Mirror: the whole option list, TSval in TSval.
        for ver in [V0, V1] {
            let v = verdict_with(&c, ver, |t| options_of(ver, t).0[..options_of(ver, t).1].to_vec());
            assert_eq!((v.class, v.mirrored, v.ts_echoed), (Class::Echo, true, true), "{ver}");
        }
    }

    #[test]
    fn plain_tcp_and_stripped() {
        let c = ctx(&[V1]);
        let v = verdict_with(&c, V1, |t| {
            emit(&[
                O::MaxSegmentSize(1460),
                O::SackPermitted,
                O::Timestamps { tsval: 5, tsecr: t.tsval },
                O::NoOperation,
                O::WindowScale(7),
            ])
        });
        assert_eq!((v.class, v.mpc, v.ts_echoed), (Class::Tcp, None, false));
        assert_eq!(verdict_with(&c, V1, |_| vec![]).class, Class::Tcp);
    }

    #[test]
    fn malformed_cases() {
        let c = ctx(&[V0, V1]);
        let cases: Vec<(ProbeVersion, Vec<u8>, &str)> = vec![
            (V1, vec![0x1e, 0x08, 0x01, 0x01, 1, 2, 3, 4], "not-mp-capable"), // length 8
            (V1, vec![0x1e, 0x0c, 0x10, 0x00, 1, 2, 3, 4, 5, 6, 7, 8], "not-mp-capable"), // MP_JOIN
            (V1, vec![0x01, 0x1e, 0x28, 0x01], "mptcp-option-overflows"),     // length 40 in a 4-byte area
            (V1, vec![0x1e, 0x00, 0x01, 0x01], "mptcp-option-overflows"),     // zero length
            (
                V1,
                {
                    let mut b = emit(&[O::MpCapable(MpCapable {
                        version: 1,
                        flags: 1,
                        sender_key: Some(1),
                        receiver_key: Some(2),
                    })]);
                    b.truncate(20);
                    b
                },
                "mpc-third-ack-shape",
            ),
            (V0, vec![0x1e, 0x04, 0x00, 0x81], "mpc-without-key"), // 4 bytes to a 12-byte probe
            (V1, emit(&[O::MpCapable(server_mpc(5, 0x01))]), "mpc-version-above-offer"),
            (V1, emit(&[O::MpCapable(server_mpc(1, 0x41))]), "mpc-flag-b-set"),
        ];
        for (ver, opts, why) in cases {
            let v = verdict_with(&c, ver, |_| opts.clone());
            assert_eq!((v.class, v.detail), (Class::Malformed, why), "{opts:02x?}");
        }
    }

    /// RFC 8684 §3.1: the flag bits D to H choose the algorithm; all zero MUST be ignored, and
    /// an answer may only pick what the SYN offered (H alone). The byte vectors are the whole
    /// 12-byte option as it arrives.
    #[test]
    fn algorithm_bits_must_be_h_alone() {
        let c = ctx(&[V0, V1]);
        let key = [0xfe, 0xed, 0xf0, 0x0d, 0xde, 0xad, 0xbe, 0xef];
        let opt = |version: u8, flags: u8| {
            let mut o = vec![0x1e, 0x0c, version, flags];
            o.extend_from_slice(&key);
            o
        };
        for (probe, version) in [(V1, 1), (V0, 0), (V1, 0)] {
            for flags in [0x00, 0x80, 0x20, 0xa0] {
                let v = verdict_with(&c, probe, |_| opt(version, flags));
                assert_eq!(
                    (v.class, v.detail),
                    (Class::Malformed, "mpc-no-algorithm"),
                    "{probe} v{version} {flags:#04x}"
                );
                assert_eq!(v.mpc.unwrap().flags, flags);
            }
            for flags in [0x02, 0x03, 0x1f, 0x10, 0x81 | 0x04, 0x21 | 0x08] {
                let v = verdict_with(&c, probe, |_| opt(version, flags));
                assert_eq!(
                    (v.class, v.detail),
                    (Class::Malformed, "mpc-algorithm-not-offered"),
                    "{probe} v{version} {flags:#04x}"
                );
            }
            // A, C and H are what real servers send: Linux 0x01, load balancers 0x21, checksums 0x81.
            for flags in [0x01, 0x21, 0x81, 0xa1] {
                let v = verdict_with(&c, probe, |_| opt(version, flags));
                assert_eq!((v.class, v.detail), (Class::Mptcp, ""), "{probe} v{version} {flags:#04x}");
            }
        }
    }

    #[test]
    fn echoed_flags_stay_an_echo() {
        // Our own option back is an echo whatever its flags say: the echo test comes first.
        let c = ctx(&[V0, V1]);
        let v = verdict_with(&c, V0, |t| emit(&[O::MpCapable(MpCapable { flags: 0x00, ..MpCapable::v0_syn(t.key) })]));
        assert_eq!(v.class, Class::Echo);
        let v = verdict_with(&c, V1, |_| vec![0x1e, 0x04, 0x01, 0x00]);
        assert_eq!(v.class, Class::Echo);
    }

    #[test]
    fn malformed_cases_unchanged_by_the_flag_test() {
        let c = ctx(&[V0, V1]);
        let cases: Vec<(ProbeVersion, Vec<u8>, &str)> = vec![
            (V1, emit(&[O::MpCapable(server_mpc(5, 0x00))]), "mpc-version-above-offer"),
            (V1, emit(&[O::MpCapable(server_mpc(1, 0x40))]), "mpc-flag-b-set"),
        ];
        for (ver, opts, why) in cases {
            let v = verdict_with(&c, ver, |_| opts.clone());
            assert_eq!((v.class, v.detail), (Class::Malformed, why), "{opts:02x?}");
        }
    }

    #[test]
    fn first_mp_capable_decides_not_the_first_kind_30() {
        let c = ctx(&[V1]);
        // An MP_JOIN-shaped option before a real MP_CAPABLE: reported, but as malformed
        // (a SYN-ACK carrying two MPTCP options is not a clean answer), never as the key.
        let v = verdict_with(&c, V1, |_| {
            let mut o = vec![0x1e, 0x04, 0x10, 0x00];
            o.extend(emit(&[O::MpCapable(server_mpc(1, 0x01))]));
            o
        });
        assert_eq!((v.class, v.detail), (Class::Malformed, "extra-mptcp-option"));
        assert_eq!(v.mpc.unwrap().sender_key, Some(0xfeed_f00d_dead_beef));
    }

    /// Found by the fuzzer (fuzz/regressions/frame/malformed--second-mp-capable-is-our-key): a
    /// server-looking MP_CAPABLE followed by our own v0 option was counted as a real server.
    #[test]
    fn a_second_mp_capable_is_not_a_clean_answer() {
        let c = ctx(&[V0, V1]);
        let v = verdict_with(&c, V0, |t| {
            emit(&[O::MpCapable(server_mpc(0, 0x81)), O::MpCapable(MpCapable::v0_syn(t.key))])
        });
        assert_eq!((v.class, v.detail), (Class::Malformed, "extra-mptcp-option"));
        // Two server-looking ones: not clean either.
        let v = verdict_with(&c, V1, |_| emit(&[O::MpCapable(server_mpc(1, 0x01)), O::MpCapable(server_mpc(1, 0x01))]));
        assert_eq!((v.class, v.detail), (Class::Malformed, "extra-mptcp-option"));
        // Our own option first: still an echo, whatever follows.
        let v = verdict_with(&c, V1, |_| emit(&[O::MpCapable(MpCapable::v1_syn()), O::MpCapable(server_mpc(1, 0x01))]));
        assert_eq!(v.class, Class::Echo);
    }
}

/// Property tests: any option bytes in a validated SYN-ACK get exactly one of the six classes,
/// consistently with what the options hold, and never a panic.
#[cfg(test)]
mod proptests {
    use super::*;
    use crate::accept::tests::{ctx, tcp_reply_raw, TARGET, US};
    use crate::probe::ProbeVersion::{V0, V1};
    use proptest::prelude::*;

    /// A validated SYN-ACK for `version` whose option area is `opts` (padded to a multiple of 4
    /// with End of Option List), classified.
    fn verdict(version: ProbeVersion, opts: &[u8]) -> (Classification, crate::probe::ProbeTag) {
        let c = ctx(&[V1, V0]);
        let tag = c.validator.tag(US.into(), TARGET.into(), 443, version);
        let mut o = opts.to_vec();
        o.resize(opts.len().div_ceil(4) * 4, 0);
        let f = tcp_reply_raw(TARGET, 443, tag.sport, 0x12, tag.seq.wrapping_add(1), &o);
        let r = c.parse(&f).expect("validates");
        assert_eq!(r.options, &o[..]);
        (classify(&r), tag)
    }

    /// Option bytes biased towards what matters: kind-30 options of every length, the probe's
    /// own option, timestamps, NOPs, and anything.
    fn option_bytes() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            proptest::collection::vec(any::<u8>(), 1..8),
            (0u8..=26, any::<u8>(), proptest::collection::vec(any::<u8>(), 0..24)).prop_map(|(len, st, body)| {
                let mut b = vec![30, len, st];
                b.extend(body.into_iter().take((len as usize).saturating_sub(3)));
                b
            }),
            Just(vec![0x1e, 0x04, 0x01, 0x01]),
            Just(vec![1]),
            (any::<u32>(), any::<u32>()).prop_map(|(a, b)| {
                let mut v = vec![8, 10];
                v.extend(a.to_be_bytes());
                v.extend(b.to_be_bytes());
                v
            }),
        ];
        proptest::collection::vec(piece, 0..6).prop_map(|v| {
            let mut b: Vec<u8> = v.concat();
            b.truncate(40);
            b
        })
    }

    proptest! {
        #[test]
        fn any_options_get_one_consistent_class(opts in option_bytes(), v0 in any::<bool>()) {
            let version = if v0 { V0 } else { V1 };
            let (v, tag) = verdict(version, &opts);
            prop_assert!(Class::ALL.contains(&v.class));
            prop_assert!(!matches!(v.class, Class::Closed | Class::Unreachable), "a SYN-ACK is never {:?}", v.class);
            let mut padded = opts.clone();
            padded.resize(opts.len().div_ceil(4) * 4, 0);
            let has_kind_30 = TcpOptions::new(&padded).any(|o| matches!(o,
                Ok(TcpOption::MpCapable(_) | TcpOption::Mptcp { .. }) | Err(crate::wire::Error::BadOptionLength { kind: 30, .. })));
            match v.class {
                Class::Tcp => prop_assert!(!has_kind_30 && v.mpc.is_none()),
                Class::Mptcp => {
                    let m = v.mpc.unwrap();
                    prop_assert!(m.sender_key.is_some() && m.receiver_key.is_none());
                    prop_assert!(m.version <= version as u8 && m.flags & 0x40 == 0);
                    prop_assert_eq!(m.flags & mptcp::ALGORITHM_BITS, mptcp::FLAG_H_HMAC);
                    prop_assert!(!(version == V0 && m.sender_key == Some(tag.key)));
                }
                Class::Echo => prop_assert!(v.mpc.is_some()),
                Class::Malformed => prop_assert!(has_kind_30 && !v.detail.is_empty()),
                Class::Closed | Class::Unreachable => unreachable!(),
            }
        }

        /// No flag byte outside the legal set (A, C and H around the one algorithm offered) ever
        /// makes a real server, whatever the version and the probe.
        #[test]
        fn only_legal_flags_classify_as_mptcp(flags in any::<u8>(), version in 0u8..=1, v0 in any::<bool>(), key in any::<u64>()) {
            let probe = if v0 { V0 } else { V1 };
            let mut opts = vec![0x1e, 0x0c, version, flags];
            opts.extend(key.to_be_bytes());
            let (v, tag) = verdict(probe, &opts);
            let legal = [0x01, 0x21, 0x81, 0xa1].contains(&flags);
            let ours = probe == V0 && key == tag.key;
            if v.class == Class::Mptcp {
                prop_assert!(legal, "flags {flags:#04x} classified as mptcp");
            }
            if legal && !ours && version <= probe as u8 {
                prop_assert_eq!(v.class, Class::Mptcp);
            }
        }

        /// Whatever the box does around it, a server key after our exact options is classified by
        /// the first MP_CAPABLE: appending options after a real server's answer never makes it
        /// an echo.
        #[test]
        fn server_key_is_never_an_echo(key in any::<u64>(), flags in any::<u8>(), tail in proptest::collection::vec(any::<u8>(), 0..12)) {
            let mut opts = vec![0x1e, 0x0c, 0x01, flags & !0x40];
            opts.extend(key.to_be_bytes());
            opts.extend(tail);
            let (v, _) = verdict(V1, &opts);
            prop_assert!(matches!(v.class, Class::Mptcp | Class::Malformed), "{:?}", v);
            prop_assert_eq!(v.mpc.unwrap().sender_key, Some(key));
        }
    }
}
