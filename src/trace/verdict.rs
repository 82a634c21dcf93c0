//! One verdict per traced (target, port, version), from its validated answers: where the
//! MP_CAPABLE option was lost (tracebox's interval), whether something on the path answered for
//! the target, the path length.
//!
//! | verdict | when |
//! |---|---|
//! | `removed-at` / `modified-at` | the first quote (lowest TTL) whose MP_CAPABLE is `removed` / `modified`, where the quote at the TTL before it is `intact` (or it is TTL 1: the hop before is us) |
//! | `answered-on-path` | no such change, and a SYN-ACK or RST came for a TTL that cannot reach the target: a router quoted a probe with that TTL or a higher one (the probe went on past the answerer), or the answer came back over no more hops than a quoting router is away (its sender sits at or before that router, which the target is beyond: a SYN proxy or echoing box in a router) |
//! | `intact` | no change; the target answered, and the last quote (the last quoting hop) is `intact` |
//! | `unknown` | a change whose hop before it quoted too little or nothing (`detail` says after which intact TTL), or quotes after the last intact one too short to say (`short-quotes-at-end`: a change there would not show), or no quote with a known state, or no answer from the target |
//!
//! The hop-count test assumes the answer's initial TTL is one of 64, 128, 255 and the path back
//! is as long as the path out; on the Internet an asymmetric path can make it wrong, so the
//! `detail` column says which test fired (`beyond` or `hop-count`). It compares the answer's
//! distance with the quoting routers', not with the TTL it came for: a server may answer only
//! some of the SYNs of one 4-tuple (all TTLs of a target share it), so the first answer can be
//! for a TTL above the path length (tests/lab_trace.rs saw a kernel MPTCP server do that).

use super::answer::Answer;
use super::quote::MpcState;
use crate::accept::ResponseKind as Kind;
use crate::classify::Class;
use std::net::IpAddr;

/// The verdict kinds (the verdict CSV's `verdict` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VerdictKind {
    /// MP_CAPABLE arrived unchanged at the last quoting hop, and the target answered.
    Intact,
    /// A hop removed it.
    RemovedAt,
    /// A hop changed it.
    ModifiedAt,
    /// Something on the path answered for the target.
    AnsweredOnPath,
    /// Cannot say.
    Unknown,
}

impl VerdictKind {
    /// The CSV spelling.
    pub fn label(self) -> &'static str {
        match self {
            VerdictKind::Intact => "intact",
            VerdictKind::RemovedAt => "removed-at",
            VerdictKind::ModifiedAt => "modified-at",
            VerdictKind::AnsweredOnPath => "answered-on-path",
            VerdictKind::Unknown => "unknown",
        }
    }

    /// Every verdict, in table order.
    pub const ALL: [VerdictKind; 5] = [
        VerdictKind::Intact,
        VerdictKind::RemovedAt,
        VerdictKind::ModifiedAt,
        VerdictKind::AnsweredOnPath,
        VerdictKind::Unknown,
    ];
}

/// The verdict on one traced (target, port, version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceVerdict {
    /// What happened.
    pub kind: VerdictKind,
    /// `removed-at`/`modified-at`: the TTL of the first changed quote; `answered-on-path`: the TTL
    /// the answer came for.
    pub hop: Option<u8>,
    /// The router (or the answerer) at `hop`.
    pub router: Option<IpAddr>,
    /// The highest TTL below the change whose quote was `intact` (the interval's start).
    pub last_intact: Option<u8>,
    /// The TTL at which a SYN-ACK or RST first came (the path length when it is the target's).
    pub answer_ttl: Option<u8>,
    /// The class `scan` gives that first answer.
    pub answer_class: Option<Class>,
    /// Why, in a short stable token (see the module table).
    pub detail: &'static str,
}

/// The verdict for the answers of one (target, port, version), in any order.
pub fn judge(answers: &[Answer]) -> TraceVerdict {
    let mut quotes: Vec<(u8, IpAddr, MpcState)> = answers
        .iter()
        .filter_map(|a| a.quote.map(|q| (a.probe_ttl, a.responder, q.mpc)))
        .filter(|(_, r, _)| answers.first().is_some_and(|a| *r != a.target))
        .collect();
    quotes.sort_by_key(|q| q.0);
    quotes.dedup_by_key(|q| q.0);
    let first_answer =
        answers.iter().filter(|a| matches!(a.kind, Kind::SynAck | Kind::Rst)).min_by_key(|a| a.probe_ttl);
    let mut v = TraceVerdict {
        kind: VerdictKind::Unknown,
        hop: None,
        router: None,
        last_intact: None,
        answer_ttl: first_answer.map(|a| a.probe_ttl),
        answer_class: first_answer.and_then(|a| a.class),
        detail: "",
    };
    // The first change, and what the TTL just before it quoted.
    let mut prev: Option<(u8, MpcState)> = None;
    for &(ttl, router, state) in &quotes {
        if state == MpcState::Intact {
            v.last_intact = Some(ttl);
        }
        if matches!(state, MpcState::Removed | MpcState::Modified) {
            let before_intact = ttl == 1 || prev == Some((ttl - 1, MpcState::Intact));
            if before_intact {
                v.kind = if state == MpcState::Removed { VerdictKind::RemovedAt } else { VerdictKind::ModifiedAt };
                v.hop = Some(ttl);
                v.router = Some(router);
                v.detail = if state == MpcState::Removed { "removed" } else { "modified" };
            } else {
                v.detail = "change-after-unknown-stretch";
            }
            return v;
        }
        prev = Some((ttl, state));
    }
    if let Some(a) = first_answer {
        let beyond = quotes.iter().any(|q| q.0 >= a.probe_ttl);
        let hops_back = hops_back(a.reply_ttl);
        let farthest_quote = quotes.last().map_or(0, |q| u32::from(q.0));
        // The answerer is `h + 1` hops away: at or before the farthest quoting router.
        let closer = hops_back.is_some_and(|h| u32::from(h) < farthest_quote);
        if beyond || closer {
            v.kind = VerdictKind::AnsweredOnPath;
            v.hop = Some(a.probe_ttl);
            v.router = Some(a.responder);
            v.detail = if beyond { "beyond" } else { "hop-count" };
            return v;
        }
    }
    // Issue 14: intact means "unchanged at the last quoting hop"; short quotes after the last
    // intact one could hide a change (a stripper among RFC 792 routers at the path's end).
    let short_at_end = quotes.last().is_some_and(|q| q.2 == MpcState::Unknown);
    match (quotes.iter().rev().find(|q| q.2 != MpcState::Unknown), first_answer) {
        (Some(&(_, _, MpcState::Intact)), Some(_)) if short_at_end => v.detail = "short-quotes-at-end",
        (Some(&(_, _, MpcState::Intact)), Some(_)) => {
            v.kind = VerdictKind::Intact;
            v.detail = "answered";
        }
        (_, None) => v.detail = "no-answer",
        (None, Some(_)) => v.detail = "no-full-quote",
        // Unreachable: a removed/modified state returned above.
        (Some(_), Some(_)) => v.detail = "no-full-quote",
    }
    v
}

/// How many routers an answer crossed, from its TTL and the nearest common initial TTL at or
/// above it (64, 128, 255).
pub fn hops_back(reply_ttl: u8) -> Option<u8> {
    [64u8, 128, 255].into_iter().find(|&i| reply_ttl <= i && reply_ttl > 0).map(|i| i - reply_ttl)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::ProbeVersion;
    use crate::trace::quote::{OptionsChange, QuoteReport};
    use std::net::Ipv4Addr;

    const T: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));

    fn router(ttl: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, ttl, 1))
    }

    fn quote(ttl: u8, mpc: MpcState) -> Answer {
        let q = QuoteReport {
            quoted_bytes: 64,
            tcp_bytes: 44,
            mpc,
            mss: Some(1460),
            options: OptionsChange::Same,
            window: Some(64240),
            dscp: 0,
            ecn: 0,
            tsval: None,
        };
        Answer {
            target: T,
            port: 443,
            version: ProbeVersion::V1,
            probe_ttl: ttl,
            responder: router(ttl),
            kind: Kind::Icmp { icmp_type: 11, code: 0 },
            reply_ttl: 65 - ttl,
            rtt_ms: None,
            quote: Some(q),
            seq_rewritten: false,
            class: None,
        }
    }

    /// A SYN-ACK for `ttl` from something `back` routers away.
    fn answer(ttl: u8, back: u8, class: Class) -> Answer {
        Answer {
            responder: T,
            kind: Kind::SynAck,
            reply_ttl: 64 - back,
            quote: None,
            class: Some(class),
            ..quote(ttl, MpcState::Unknown)
        }
    }

    /// A clean 6-hop path to a target at distance 7, answering every TTL from 7.
    fn clean() -> Vec<Answer> {
        let mut a: Vec<Answer> = (1..=6).map(|t| quote(t, MpcState::Intact)).collect();
        a.extend((7..=10).map(|t| answer(t, 6, Class::Mptcp)));
        a
    }

    #[test]
    fn clean_path_is_intact_with_its_length() {
        let v = judge(&clean());
        assert_eq!(
            (v.kind, v.answer_ttl, v.answer_class, v.last_intact),
            (VerdictKind::Intact, Some(7), Some(Class::Mptcp), Some(6))
        );
    }

    #[test]
    fn stripper_is_located_by_the_first_removed_quote() {
        let mut a = clean();
        for x in a.iter_mut().filter(|x| (4..=6).contains(&x.probe_ttl)) {
            x.quote.as_mut().unwrap().mpc = MpcState::Removed;
        }
        let v = judge(&a);
        assert_eq!(
            (v.kind, v.hop, v.router, v.last_intact),
            (VerdictKind::RemovedAt, Some(4), Some(router(4)), Some(3))
        );
        // Modified at the first hop: the hop before is us.
        let mut a = clean();
        a[0].quote.as_mut().unwrap().mpc = MpcState::Modified;
        let v = judge(&a);
        assert_eq!((v.kind, v.hop, v.last_intact), (VerdictKind::ModifiedAt, Some(1), None));
    }

    #[test]
    fn change_after_short_quotes_is_unknown() {
        // Hops 3 and 4 quote 8 bytes; hop 5 shows the option gone: somewhere in 3..=5.
        let mut a = clean();
        for x in a.iter_mut() {
            match x.probe_ttl {
                3 | 4 => x.quote.as_mut().unwrap().mpc = MpcState::Unknown,
                5 | 6 => x.quote.as_mut().unwrap().mpc = MpcState::Removed,
                _ => {}
            }
        }
        let v = judge(&a);
        assert_eq!(
            (v.kind, v.hop, v.last_intact, v.detail),
            (VerdictKind::Unknown, None, Some(2), "change-after-unknown-stretch")
        );
        // A silent hop before the change: also unknown.
        let mut a = clean();
        a.retain(|x| x.probe_ttl != 3);
        a.iter_mut().filter(|x| x.probe_ttl == 4).for_each(|x| x.quote.as_mut().unwrap().mpc = MpcState::Removed);
        assert_eq!(judge(&a).kind, VerdictKind::Unknown);
    }

    #[test]
    fn short_quotes_at_the_end_are_not_intact() {
        // Routers 4..6 quote 8 bytes: a stripper there would not show, so not `intact`, even
        // though every full quote (1..3) is intact and the target answered.
        let mut a = clean();
        for x in a.iter_mut().filter(|x| (4..=6).contains(&x.probe_ttl)) {
            x.quote.as_mut().unwrap().mpc = MpcState::Unknown;
        }
        let v = judge(&a);
        assert_eq!(
            (v.kind, v.last_intact, v.answer_ttl, v.detail),
            (VerdictKind::Unknown, Some(3), Some(7), "short-quotes-at-end")
        );
        // A short quote in the middle, full intact quotes after it: intact.
        let mut a = clean();
        a[2].quote.as_mut().unwrap().mpc = MpcState::Unknown;
        assert_eq!(judge(&a).kind, VerdictKind::Intact);
    }

    #[test]
    fn all_short_quotes_or_no_answer_is_unknown() {
        let mut a = clean();
        a.iter_mut().filter_map(|x| x.quote.as_mut()).for_each(|q| q.mpc = MpcState::Unknown);
        assert_eq!((judge(&a).kind, judge(&a).detail), (VerdictKind::Unknown, "no-full-quote"));
        let mut a = clean();
        a.retain(|x| x.quote.is_some());
        assert_eq!((judge(&a).kind, judge(&a).detail), (VerdictKind::Unknown, "no-answer"));
    }

    #[test]
    fn answers_from_inside_the_path_are_on_path() {
        // An echoing box at hop 4 answers TTL 4 and lets the probe go on: routers 4..6 quote.
        let mut a: Vec<Answer> = (1..=6).map(|t| quote(t, MpcState::Intact)).collect();
        a.push(answer(4, 3, Class::Echo));
        let v = judge(&a);
        assert_eq!(
            (v.kind, v.hop, v.answer_class, v.detail),
            (VerdictKind::AnsweredOnPath, Some(4), Some(Class::Echo), "beyond")
        );
        // A SYN proxy on router 3 (TTL checked before the FORWARD hook): quotes up to TTL 3, a
        // SYN-ACK for TTL 4 that came back over 2 routers, not 3.
        let mut a: Vec<Answer> = (1..=3).map(|t| quote(t, MpcState::Intact)).collect();
        a.extend((4..=8).map(|t| answer(t, 2, Class::Tcp)));
        let v = judge(&a);
        assert_eq!(
            (v.kind, v.hop, v.answer_class, v.detail),
            (VerdictKind::AnsweredOnPath, Some(4), Some(Class::Tcp), "hop-count")
        );
    }

    #[test]
    fn target_answering_only_a_higher_ttl_is_not_on_path() {
        // The server at distance 7 answers only the probe of TTL 10 (the SYN-ACKs of 7..9 lost,
        // or not sent for a 4-tuple it already answered): still the target, 6 routers back.
        let mut a: Vec<Answer> = (1..=6).map(|t| quote(t, MpcState::Intact)).collect();
        a.push(answer(10, 6, Class::Mptcp));
        let v = judge(&a);
        assert_eq!((v.kind, v.answer_ttl, v.detail), (VerdictKind::Intact, Some(10), "answered"));
        // A box in router 3 answering only TTL 6: 2 routers back, within the quoting routers.
        let mut a: Vec<Answer> = (1..=3).map(|t| quote(t, MpcState::Intact)).collect();
        a.push(answer(6, 2, Class::Tcp));
        assert_eq!((judge(&a).kind, judge(&a).detail), (VerdictKind::AnsweredOnPath, "hop-count"));
    }

    #[test]
    fn hop_count_from_reply_ttl() {
        assert_eq!(hops_back(64), Some(0));
        assert_eq!(hops_back(58), Some(6));
        assert_eq!(hops_back(120), Some(8));
        assert_eq!(hops_back(250), Some(5));
        assert_eq!(hops_back(0), None);
    }
}
