//! What a router's ICMP quote says about our probe as that router received it (tracebox's
//! comparison): the MP_CAPABLE option, the MSS, the option list, the window, DSCP/ECN.
//!
//! Linux routers quote the whole probe; RFC 792 routers quote the IP header and 8 bytes of TCP
//! (ports and sequence number), which say nothing about options, the window or MSS. A field the
//! quote does not carry is unknown, never "unchanged".
//!
//! MP_CAPABLE states (the hop CSV's `mpc` column):
//!
//! | state | quote |
//! |---|---|
//! | `intact` | the TCP header is whole and carries an MP_CAPABLE byte-identical to what we sent |
//! | `removed` | the TCP header is whole and carries no kind-30 option (gone, or replaced by NOPs) |
//! | `modified` | a kind-30 option with other bytes, or an option list that no longer parses |
//! | `unknown` | the quote ends before the end of the TCP header's options |

use crate::probe::{ProbeVersion, SynOption, MSS, WINDOW};
use crate::wire::tcp_option::kind;

/// What the quote says about our MP_CAPABLE option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MpcState {
    /// Byte-identical to what we sent.
    Intact,
    /// Gone, or replaced by NOPs.
    Removed,
    /// Other bytes.
    Modified,
    /// The quote is too short to say.
    Unknown,
}

impl MpcState {
    /// The CSV spelling.
    pub fn label(self) -> &'static str {
        match self {
            MpcState::Intact => "intact",
            MpcState::Removed => "removed",
            MpcState::Modified => "modified",
            MpcState::Unknown => "unknown",
        }
    }

    /// The state a CSV label names.
    pub fn parse(s: &str) -> Option<MpcState> {
        [MpcState::Intact, MpcState::Removed, MpcState::Modified, MpcState::Unknown]
            .into_iter()
            .find(|m| m.label() == s)
    }
}

/// How the quoted option list compares with ours, MP_CAPABLE aside (its own column says that).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptionsChange {
    /// The same kinds in the same order.
    Same,
    /// Some of ours are missing, the rest in order, nothing added.
    Removed,
    /// The same kinds in another order.
    Reordered,
    /// Anything else: kinds added, or a list that does not parse.
    Changed,
    /// Not quoted.
    Unknown,
}

impl OptionsChange {
    /// The CSV spelling.
    pub fn label(self) -> &'static str {
        match self {
            OptionsChange::Same => "same",
            OptionsChange::Removed => "removed",
            OptionsChange::Reordered => "reordered",
            OptionsChange::Changed => "changed",
            OptionsChange::Unknown => "unknown",
        }
    }

    /// The change a CSV label names.
    pub fn parse(s: &str) -> Option<OptionsChange> {
        use OptionsChange::*;
        [Same, Removed, Reordered, Changed, Unknown].into_iter().find(|o| o.label() == s)
    }
}

/// Everything one quote says about our probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuoteReport {
    /// Bytes of our datagram quoted (IP header included).
    pub quoted_bytes: usize,
    /// Bytes of TCP quoted.
    pub tcp_bytes: usize,
    /// The MP_CAPABLE state.
    pub mpc: MpcState,
    /// The MSS option's value in the quote (none: not quoted, or no MSS option).
    pub mss: Option<u16>,
    /// The rest of the option list.
    pub options: OptionsChange,
    /// The window in the quote (none: not quoted).
    pub window: Option<u16>,
    /// DSCP of the quoted IP header (we send 0).
    pub dscp: u8,
    /// ECN bits of the quoted IP header (we send 0).
    pub ecn: u8,
    /// The quoted TSval (the probe's send time, see `super::encode`), when the options are quoted.
    pub tsval: Option<u32>,
}

impl QuoteReport {
    /// Whether the MSS was rewritten (none: unknown). An MSS option that vanished counts as
    /// rewritten.
    pub fn mss_rewritten(&self) -> Option<bool> {
        match (self.options, self.mss) {
            (OptionsChange::Unknown, _) => None,
            (_, Some(m)) => Some(m != MSS),
            (_, None) => Some(true),
        }
    }

    /// Whether the window was changed (none: unknown).
    pub fn window_changed(&self) -> Option<bool> {
        self.window.map(|w| w != WINDOW)
    }
}

/// Compares the TCP bytes of a quote (`tcp`, from the TCP header on, cut anywhere) with the probe
/// of `version` whose v0 key is `key`. `ip_header` is the quoted IP header (IPv4: 20+ bytes,
/// IPv6: 40) for DSCP/ECN.
pub fn compare(ip_header: &[u8], tcp: &[u8], version: ProbeVersion, key: u64) -> QuoteReport {
    let tclass = match ip_header.first().map(|b| b >> 4) {
        Some(4) => ip_header.get(1).copied().unwrap_or(0),
        Some(6) if ip_header.len() >= 2 => (ip_header[0] << 4) | (ip_header[1] >> 4),
        _ => 0,
    };
    let window = (tcp.len() >= 16).then(|| u16::from_be_bytes([tcp[14], tcp[15]]));
    let mut r = QuoteReport {
        quoted_bytes: ip_header.len() + tcp.len(),
        tcp_bytes: tcp.len(),
        mpc: MpcState::Unknown,
        mss: None,
        options: OptionsChange::Unknown,
        window,
        dscp: tclass >> 2,
        ecn: tclass & 3,
        tsval: None,
    };
    let Some(&off) = tcp.get(12) else { return r };
    let hl = usize::from(off >> 4) * 4;
    if hl < 20 || tcp.len() < hl {
        return r;
    }
    let mut sent = [0u8; 12];
    let sent_len = version.syn_option(key).emit(&mut sent);
    let sent_mpc = &sent[..sent_len];
    let Some(opts) = walk(&tcp[20..hl]) else {
        r.options = OptionsChange::Changed;
        r.mpc = if tcp[20..hl].contains(&kind::MPTCP) { MpcState::Modified } else { MpcState::Removed };
        return r;
    };
    let mut kinds = Vec::with_capacity(opts.len());
    r.mpc = MpcState::Removed;
    for (k, bytes) in &opts {
        match *k {
            kind::MSS if bytes.len() == 4 => r.mss = Some(u16::from_be_bytes([bytes[2], bytes[3]])),
            kind::TIMESTAMPS if bytes.len() == 10 => {
                r.tsval = Some(u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]))
            }
            kind::MPTCP => {
                r.mpc = if *bytes == sent_mpc && r.mpc == MpcState::Removed {
                    MpcState::Intact
                } else {
                    MpcState::Modified
                };
                continue;
            }
            _ => {}
        }
        kinds.push(*k);
    }
    r.options = change(&kinds, &SENT_KINDS);
    r
}

/// The option kinds of our probe, NOPs and MP_CAPABLE aside, in order (see `crate::probe`).
const SENT_KINDS: [u8; 4] = [kind::MSS, kind::SACK_PERM, kind::TIMESTAMPS, kind::WSCALE];

/// How `got` compares with `sent` (both without NOPs).
fn change(got: &[u8], sent: &[u8]) -> OptionsChange {
    if got == sent {
        return OptionsChange::Same;
    }
    let mut a = got.to_vec();
    let mut b = sent.to_vec();
    a.sort_unstable();
    b.sort_unstable();
    if a == b {
        return OptionsChange::Reordered;
    }
    // A subsequence of ours: options removed, nothing added or moved.
    let mut it = sent.iter();
    if got.iter().all(|g| it.any(|s| s == g)) {
        OptionsChange::Removed
    } else {
        OptionsChange::Changed
    }
}

/// The options of an option area as (kind, whole option bytes), NOPs skipped, up to the end of
/// list; none if a length is impossible.
fn walk(mut area: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    while let Some(&k) = area.first() {
        match k {
            kind::END => break,
            kind::NOP => area = &area[1..],
            _ => {
                let len = usize::from(*area.get(1)?);
                if len < 2 || len > area.len() {
                    return None;
                }
                out.push((k, &area[..len]));
                area = &area[len..];
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: u64 = 0x0102_0304_0506_0708;

    /// Our v1 probe's TCP header as Linux quotes it (whole): ports, seq, ack, offset 11 words,
    /// SYN, window 64240, then MSS 1460, SACK-permitted, timestamps, NOP, wscale 7, MP_CAPABLE v1.
    #[rustfmt::skip]
    const V1_TCP: [u8; 44] = [
        0x9c, 0x40, 0x01, 0xbb,  0x12, 0x34, 0x56, 0x79,  0, 0, 0, 0,
        0xb0, 0x02, 0xfa, 0xf0,  0x00, 0x00, 0x00, 0x00,
        0x02, 0x04, 0x05, 0xb4,  0x04, 0x02,  0x08, 0x0a, 0, 0, 0, 7, 0, 0, 0, 0,
        0x01,  0x03, 0x03, 0x07,  0x1e, 0x04, 0x01, 0x01,
    ];

    /// An IPv4 header quoted by a router: ToS 0.
    const V4_HDR: [u8; 20] = [0x45, 0, 0, 64, 0x12, 0x35, 0x40, 0, 1, 6, 0, 0, 192, 0, 2, 2, 198, 18, 0, 1];

    fn v6_hdr(tclass: u8) -> [u8; 40] {
        let mut h = [0u8; 40];
        h[0] = 0x60 | (tclass >> 4);
        h[1] = tclass << 4;
        h[6] = 6;
        h
    }

    #[test]
    fn whole_quote_of_an_untouched_probe_is_intact() {
        let r = compare(&V4_HDR, &V1_TCP, ProbeVersion::V1, KEY);
        assert_eq!(r.mpc, MpcState::Intact);
        assert_eq!((r.mss, r.mss_rewritten(), r.options), (Some(1460), Some(false), OptionsChange::Same));
        assert_eq!((r.window, r.window_changed(), r.dscp, r.ecn), (Some(64240), Some(false), 0, 0));
        assert_eq!((r.quoted_bytes, r.tcp_bytes, r.tsval), (64, 44, Some(7)));
        // IPv6: the same TCP bytes behind a 40-byte header.
        let r6 = compare(&v6_hdr(0), &V1_TCP, ProbeVersion::V1, KEY);
        assert_eq!((r6.mpc, r6.options, r6.quoted_bytes), (MpcState::Intact, OptionsChange::Same, 84));
    }

    #[test]
    fn eight_byte_quotes_say_nothing_about_options() {
        for hdr in [&V4_HDR[..], &v6_hdr(0)[..]] {
            let r = compare(hdr, &V1_TCP[..8], ProbeVersion::V1, KEY);
            assert_eq!((r.mpc, r.options, r.mss, r.window), (MpcState::Unknown, OptionsChange::Unknown, None, None));
            assert_eq!((r.mss_rewritten(), r.window_changed()), (None, None));
            assert_eq!(r.tcp_bytes, 8);
        }
        // A quote cut inside the options is unknown too, though the window is known.
        let r = compare(&V4_HDR, &V1_TCP[..40], ProbeVersion::V1, KEY);
        assert_eq!((r.mpc, r.window), (MpcState::Unknown, Some(64240)));
    }

    #[test]
    fn nft_reset_mptcp_turns_the_option_into_nops() {
        // `tcp option mptcp reset`: the option's 4 bytes become NOPs, the header keeps its size.
        let mut t = V1_TCP;
        t[40..44].copy_from_slice(&[1, 1, 1, 1]);
        let r = compare(&V4_HDR, &t, ProbeVersion::V1, KEY);
        assert_eq!((r.mpc, r.options), (MpcState::Removed, OptionsChange::Same));
        // A box that drops the option and shrinks the header: removed as well.
        let mut cut = V1_TCP[..40].to_vec();
        cut[12] = 0xa0;
        let r = compare(&v6_hdr(0), &cut, ProbeVersion::V1, KEY);
        assert_eq!(r.mpc, MpcState::Removed);
    }

    #[test]
    fn other_mptcp_bytes_are_modified() {
        let mut t = V1_TCP;
        t[42] = 0x00; // version 0 in a 4-byte MP_CAPABLE
        assert_eq!(compare(&V4_HDR, &t, ProbeVersion::V1, KEY).mpc, MpcState::Modified);
        // A v0 probe whose key was rewritten.
        let mut v0 = V1_TCP[..40].to_vec();
        v0[12] = 0xd0;
        let mut mpc = [0u8; 12];
        ProbeVersion::V0.syn_option(KEY).emit(&mut mpc);
        v0.extend_from_slice(&mpc);
        assert_eq!(compare(&V4_HDR, &v0, ProbeVersion::V0, KEY).mpc, MpcState::Intact);
        v0[50] ^= 0xff;
        assert_eq!(compare(&V4_HDR, &v0, ProbeVersion::V0, KEY).mpc, MpcState::Modified);
        // A v0 probe quoted against the v1 option: modified (the receiver never mixes them up,
        // since the tag says which version the probe was).
        assert_eq!(compare(&V4_HDR, &V1_TCP, ProbeVersion::V0, KEY).mpc, MpcState::Modified);
        // An option list that no longer parses around a kind-30 byte.
        let mut broken = V1_TCP;
        broken[41] = 40;
        let r = compare(&V4_HDR, &broken, ProbeVersion::V1, KEY);
        assert_eq!((r.mpc, r.options), (MpcState::Modified, OptionsChange::Changed));
    }

    #[test]
    fn mss_window_and_dscp_rewrites_are_seen() {
        let mut t = V1_TCP;
        t[22..24].copy_from_slice(&1300u16.to_be_bytes());
        t[14..16].copy_from_slice(&1024u16.to_be_bytes());
        let mut h = V4_HDR;
        h[1] = 0xb9; // DSCP 46 (EF), ECN 01
        let r = compare(&h, &t, ProbeVersion::V1, KEY);
        assert_eq!(
            (r.mpc, r.mss, r.mss_rewritten(), r.options),
            (MpcState::Intact, Some(1300), Some(true), OptionsChange::Same)
        );
        assert_eq!((r.window_changed(), r.dscp, r.ecn), (Some(true), 46, 1));
        let r6 = compare(&v6_hdr(0xb9), &t, ProbeVersion::V1, KEY);
        assert_eq!((r6.dscp, r6.ecn), (46, 1));
    }

    #[test]
    fn removed_and_reordered_options_are_told_apart() {
        // SACK-permitted replaced by NOPs: removed.
        let mut t = V1_TCP;
        t[24..26].copy_from_slice(&[1, 1]);
        let r = compare(&V4_HDR, &t, ProbeVersion::V1, KEY);
        assert_eq!((r.options, r.mpc), (OptionsChange::Removed, MpcState::Intact));
        // Timestamps first, then MSS: reordered.
        let mut t = V1_TCP;
        let ts: Vec<u8> = V1_TCP[26..36].to_vec();
        t[20..30].copy_from_slice(&ts);
        t[30..34].copy_from_slice(&[2, 4, 5, 0xb4]);
        t[34..36].copy_from_slice(&[4, 2]);
        assert_eq!(compare(&V4_HDR, &t, ProbeVersion::V1, KEY).options, OptionsChange::Reordered);
        // An option added (kind 253 in place of SACK-permitted): changed.
        let mut t = V1_TCP;
        t[24..26].copy_from_slice(&[253, 2]);
        assert_eq!(compare(&V4_HDR, &t, ProbeVersion::V1, KEY).options, OptionsChange::Changed);
        // MSS gone: removed, and counted as an MSS rewrite.
        let mut t = V1_TCP;
        t[20..24].copy_from_slice(&[1, 1, 1, 1]);
        let r = compare(&V4_HDR, &t, ProbeVersion::V1, KEY);
        assert_eq!((r.options, r.mss, r.mss_rewritten()), (OptionsChange::Removed, None, Some(true)));
    }

    #[test]
    fn garbage_never_panics() {
        for n in 0..V1_TCP.len() {
            let _ = compare(&V4_HDR[..n.min(20)], &V1_TCP[..n], ProbeVersion::V1, KEY);
        }
        let mut t = V1_TCP;
        t[12] = 0xf0; // offset 60 bytes, more than quoted
        assert_eq!(compare(&V4_HDR, &t, ProbeVersion::V1, KEY).mpc, MpcState::Unknown);
        t[12] = 0x10; // offset 4 bytes: impossible
        assert_eq!(compare(&V4_HDR, &t, ProbeVersion::V1, KEY).mpc, MpcState::Unknown);
    }
}
