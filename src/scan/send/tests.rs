//! The send loop's and the probe stream's tests (beside `send.rs`, which stays readable).
use super::*;

/// A stop flag nobody sets.
static NEVER: AtomicBool = AtomicBool::new(false);

/// Simulated clock: the sender wakes late by a varying amount, as sleeps do.
fn run(rate: u64, secs: u64, late: impl Fn(u64) -> Duration) -> (u64, usize) {
    let t0 = Instant::now();
    let mut p = Pacer::new(rate, t0);
    let mut now = t0;
    let (mut sent, mut biggest, mut i) = (0u64, 0usize, 0u64);
    let end = t0 + Duration::from_secs(secs);
    while now < end {
        match p.grant(now) {
            0 => {
                now = p.next_at().max(now) + late(i);
                i += 1;
            }
            n => {
                sent += n as u64;
                biggest = biggest.max(n);
            }
        }
    }
    (sent, biggest)
}

#[test]
fn oversleeping_is_made_up() {
    for rate in [1u64, 1_000, 10_000, 100_000, 500_000, 3_000_000] {
        // Every wake-up 0 to 90 us late: a per-batch token bucket would lose all of it.
        let (sent, biggest) = run(rate, 2, |i| Duration::from_micros(i * 37 % 91));
        let want = 2 * rate;
        assert!(sent.abs_diff(want) <= (rate / 1000).clamp(1, MAX_BATCH as u64) + 1, "rate {rate}: {sent} of {want}");
        assert!(biggest <= MAX_BATCH);
    }
}

#[test]
fn batches_are_about_a_millisecond() {
    let mut p = Pacer::new(100_000, Instant::now());
    let t = p.start;
    assert_eq!(p.grant(t), 0);
    assert_eq!(p.next_at() - t, Duration::from_millis(1));
    assert_eq!(p.grant(t + Duration::from_millis(1)), 100);
    assert_eq!(p.grant(t + Duration::from_millis(1)), 0);
    // 2.5 ms later: 250 due in all, 150 owed, granted at once (below MAX_BATCH).
    assert_eq!(p.grant(t + Duration::from_micros(2500)), 150);
}

#[test]
fn a_long_stall_is_forgiven_not_burst() {
    let mut p = Pacer::new(100_000, Instant::now());
    let t = p.start;
    // A second asleep: 100,000 probes due, but only one batch goes, and the schedule resumes
    // from there.
    assert_eq!(p.grant(t + Duration::from_secs(1)), 100);
    assert_eq!(p.grant(t + Duration::from_secs(1)), 0);
    assert_eq!(p.grant(t + Duration::from_secs(1) + Duration::from_millis(1)), 100);
}

// ---- riding through send errors (scan::flap), over a transport that fails on cue ----

use crate::net::{FlakyTx, MemoryTx, Outage};
use crate::probe::Link;
use crate::targets::{BlockSource, TargetSpec};
use std::collections::BTreeSet;

struct Setup {
    space: TargetSpace,
    builder: ProbeBuilder,
    validator: Validator,
    link: Link,
    versions: [ProbeVersion; 1],
}

/// The target space of `targets` on `ports`, nothing blocked.
fn space_of(targets: &[String], ports: &str) -> TargetSpace {
    let spec =
        TargetSpec { targets, ports, blocklist: BlockSource::None, allowlist: None, allow_unblocked_full_space: false };
    TargetSpace::build(&spec).unwrap()
}

fn setup() -> Setup {
    let targets = ["198.18.0.0/22".to_string()];
    let link = Link { src_mac: [2; 6], dst_mac: [1; 6], src_v4: Some([192, 0, 2, 2].into()), src_v6: None };
    let versions = [ProbeVersion::V1];
    Setup {
        space: space_of(&targets, "443"),
        builder: ProbeBuilder::new(&link, &versions),
        validator: Validator::from_seed(9),
        link,
        versions,
    }
}

impl Setup {
    fn stream(&self, position: u64) -> ProbeStream<'_> {
        let cursor = self.space.permutation(9).cursor(0, 1, 0, 1, position).unwrap();
        ProbeStream::new(&self.space, cursor, &self.builder, &self.validator, &self.versions, 1, &self.link)
    }

    /// Every frame of an uninterrupted scan, in order.
    fn reference(&self) -> Vec<Vec<u8>> {
        let mut tx = MemoryTx::default();
        send_loop(&mut tx, &mut self.stream(0), 0, &Counters::new(1), &NEVER, 0).unwrap();
        tx.frames
    }
}

fn quick(grace: Duration) -> Retry {
    Retry { grace, backoff_min: Duration::from_micros(100), backoff_max: Duration::from_millis(2) }
}

#[test]
fn outages_skip_no_probe_and_send_none_twice() {
    let s = setup();
    let want = s.reference();
    assert_eq!(want.len(), 1024);
    // Down in the middle of a batch (ENETDOWN), a full queue, a ring that does not drain is
    // covered by the cause tests; an interface that vanishes and comes back (ENXIO).
    let mut tx = FlakyTx::new([
        Outage { at: 300, errno: libc::ENETDOWN, failures: 5 },
        Outage { at: 600, errno: libc::ENOBUFS, failures: 1 },
        Outage { at: 900, errno: libc::ENXIO, failures: 0 },
    ]);
    tx.reopen_failures = 3;
    let counters = Counters::new(1);
    send_loop_with(&mut tx, &mut s.stream(0), 0, &counters, &NEVER, 0, &quick(Duration::from_secs(60))).unwrap();
    assert_eq!(tx.taken, want, "every probe once, in the permutation's order");
    assert_eq!(tx.reopens, 4, "reopened until the interface was back");
    assert_eq!(Counters::get(&counters.sent), 1024);
    assert_eq!(Counters::get(&counters.targets_done), 1024);
    assert!(counters.senders[0].complete.load(Relaxed));
    let r = counters.link.report();
    let errors: Vec<_> = r.send_errors.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(errors, [("ENETDOWN", 1), ("ENOBUFS", 1), ("ENXIO", 1)]);
    assert_eq!(r.stalls, 3);
    // Each outage kept the rest of its 256-frame batch: 512-300, 768-600, 1024-900.
    assert_eq!(r.probes_resent, 212 + 168 + 124);
    assert!(r.stall_secs > 0.0);
    assert_eq!(counters.link.waiting_text(), None);
}

#[test]
fn grace_runs_out_then_resume_covers_every_probe() {
    let s = setup();
    let want: BTreeSet<_> = s.reference().into_iter().collect();
    let mut tx = FlakyTx::new([Outage { at: 300, errno: libc::ENETDOWN, failures: u32::MAX }]);
    let counters = Counters::new(1);
    let e = send_loop_with(&mut tx, &mut s.stream(0), 0, &counters, &NEVER, 0, &quick(Duration::from_millis(30)))
        .unwrap_err();
    assert!(e.to_string().contains("--send-error-grace"), "{e}");
    assert_eq!(Cause::of(&e), Some(Cause::NetDown));
    assert_eq!(tx.taken.len(), 300);
    assert_eq!(Counters::get(&counters.sent), 300, "only frames the kernel took count as sent");
    // The state may not pass frame 300: it goes back to the end of the first batch.
    let p = &counters.senders[0];
    let (position, done) = (p.position.load(Relaxed), p.done.load(Relaxed));
    assert_eq!(done, 256);
    assert_eq!(Counters::get(&counters.targets_done), 256);
    assert!(!p.complete.load(Relaxed));
    // Resumed from there, the two runs together send every probe.
    let mut rest = MemoryTx::default();
    send_loop(&mut rest, &mut s.stream(position), 0, &Counters::new(1), &NEVER, 0).unwrap();
    assert_eq!(rest.frames.len(), 1024 - 256);
    let got: BTreeSet<_> = tx.taken.into_iter().chain(rest.frames).collect();
    assert_eq!(got, want);
    assert_eq!(counters.link.report().stalls, 1);
}

#[test]
fn grace_zero_stops_at_the_first_error_as_before() {
    let s = setup();
    let mut tx = FlakyTx::new([Outage { at: 10, errno: libc::ENOBUFS, failures: 1 }]);
    let counters = Counters::new(1);
    let e = send_loop_with(&mut tx, &mut s.stream(0), 0, &counters, &NEVER, 0, &Retry::STOP).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOBUFS));
    assert_eq!(counters.senders[0].position.load(Relaxed), 0, "nothing of the first batch is safe");
    assert_eq!(counters.link.report().stalls, 0);
    assert_eq!(counters.link.report().send_errors.get("ENOBUFS"), Some(&1));
}

#[test]
fn an_error_that_waiting_does_not_cure_stops_at_once() {
    let s = setup();
    let mut tx = FlakyTx::new([Outage { at: 10, errno: libc::EINVAL, failures: 1 }]);
    let counters = Counters::new(1);
    let e = send_loop_with(&mut tx, &mut s.stream(0), 0, &counters, &NEVER, 0, &quick(Duration::from_secs(60)))
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    assert_eq!(counters.link.report().send_errors.get("EINVAL"), Some(&1));
    assert_eq!(counters.link.report().stalls, 0);
}

#[test]
fn a_signal_during_a_stall_stops_with_a_safe_position() {
    let s = setup();
    let mut tx = FlakyTx::new([Outage { at: 700, errno: libc::ENETDOWN, failures: u32::MAX }]);
    let counters = Counters::new(1);
    let stop = AtomicBool::new(false);
    // The stop arrives while the sender waits: from the monitor's view of the stall.
    std::thread::scope(|sc| {
        sc.spawn(|| {
            while counters.link.waiting_text().is_none() {
                std::thread::yield_now();
            }
            // While it waits, the state would already resume before the untaken frames.
            assert_eq!(counters.senders[0].done.load(Relaxed), 256);
            assert_eq!(Counters::get(&counters.targets_done), 256);
            stop.store(true, Relaxed);
        });
        send_loop_with(&mut tx, &mut s.stream(0), 0, &counters, &stop, 0, &quick(Duration::from_secs(3600))).unwrap();
    });
    assert_eq!(tx.taken.len(), 700);
    // Unpaced, the margin for answers in flight reaches past the history: its oldest entry.
    assert_eq!(counters.senders[0].done.load(Relaxed), 256);
    assert_eq!(Counters::get(&counters.sent), 700);
}

#[test]
fn a_ring_that_never_drains_at_the_end_gives_up_after_the_grace() {
    let s = setup();
    let mut tx = FlakyTx::default();
    tx.stuck_flush = true;
    let counters = Counters::new(1);
    // Each retry finds nothing left to hand over, each flush fails again: the grace bounds
    // the whole flush, so the loop ends.
    let e = send_loop_with(&mut tx, &mut s.stream(0), 0, &counters, &NEVER, 0, &quick(Duration::from_millis(30)))
        .unwrap_err();
    assert_eq!(Cause::of(&e), Some(Cause::RingStuck));
    assert_eq!(tx.taken.len(), 1024);
    let r = counters.link.report();
    assert!(r.stalls >= 1 && r.send_errors["ring-stuck"] > r.stalls, "{r:?}");
}

/// Every probe of a stream over `targets` with `link`'s sources: (frame, target, port, version).
fn probes_of(targets: &[&str], link: &Link, versions: &[ProbeVersion], trace: Option<u8>) -> Vec<Probe> {
    let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
    let space = space_of(&targets, "443,80");
    let builder = ProbeBuilder::new(link, versions);
    let validator = Validator::from_seed(9);
    // A trace permutes (target, port, TTL) triples, as `super::workers` sets it up.
    let permutation = match trace {
        Some(m) => crate::targets::Permutation::new(space.len() * u64::from(m), 9),
        None => space.permutation(9),
    };
    let cursor = permutation.cursor(0, 1, 0, 1, 0).unwrap();
    let mut stream = ProbeStream::new(&space, cursor, &builder, &validator, versions, 2, link);
    if let Some(m) = trace {
        stream = stream.trace(m, Instant::now());
    }
    let mut out = Vec::new();
    let mut buf = [0u8; crate::probe::MAX_FRAME_LEN];
    while let Some((n, dst, port, version)) = stream.next_probe(&mut buf) {
        out.push((buf[..n].to_vec(), dst, port, version));
    }
    assert_eq!(stream.targets_done, space.len() * u64::from(trace.unwrap_or(1)), "every target counts as done");
    assert_eq!(stream.resume_position(), stream.cursor.position());
    out
}

type Probe = (Vec<u8>, IpAddr, u16, ProbeVersion);

#[test]
fn targets_without_a_source_of_their_family_are_skipped_and_nothing_else() {
    let targets = ["198.18.0.0/28", "2001:db8::/124", "198.18.1.0/30"];
    let versions = [ProbeVersion::V1, ProbeVersion::V0];
    let both = Link {
        src_mac: [2; 6],
        dst_mac: [1; 6],
        src_v4: Some([192, 0, 2, 2].into()),
        src_v6: Some("2001:db8:ffff::2".parse().unwrap()),
    };
    let all = probes_of(&targets, &both, &versions, None);
    // 36 targets, 2 ports, 2 versions, 2 probes each.
    assert_eq!(all.len(), 36 * 2 * 2 * 2);
    for (only, v4) in [(Link { src_v6: None, ..both }, true), (Link { src_v4: None, ..both }, false)] {
        let got = probes_of(&targets, &only, &versions, None);
        let want: Vec<_> = all.iter().filter(|p| p.1.is_ipv4() == v4).cloned().collect();
        assert_eq!(want.len(), if v4 { 20 * 2 * 4 } else { 16 * 2 * 4 });
        assert_eq!(got, want, "the same probes, in the same order, as the scan of both families");
    }
}

#[test]
fn trace_probes_are_the_scan_probes_patched_with_their_ttl() {
    let link = Link {
        src_mac: [2; 6],
        dst_mac: [1; 6],
        src_v4: Some([192, 0, 2, 2].into()),
        src_v6: Some("2001:db8:ffff::2".parse().unwrap()),
    };
    let targets = ["198.18.0.0/30", "2001:db8::/126"];
    let versions = [ProbeVersion::V1];
    let scan = probes_of(&targets, &link, &versions, None);
    let trace = probes_of(&targets, &link, &versions, Some(3));
    assert_eq!(trace.len(), scan.len() * 3);
    let validator = Validator::from_seed(9);
    let mut ttls = BTreeSet::new();
    for (frame, dst, port, version) in &trace {
        let src = if dst.is_ipv4() { link.src_v4.map(IpAddr::V4) } else { link.src_v6.map(IpAddr::V6) };
        let tag = validator.tag(src.unwrap(), *dst, *port, *version);
        let (scan_frame, ..) = scan.iter().find(|p| (p.1, p.2, p.3) == (*dst, *port, *version)).unwrap();
        // The TTL or hop limit byte, then the same patch applied to the scan's frame.
        let ttl = if dst.is_ipv4() { frame[22] } else { frame[21] };
        ttls.insert(ttl);
        let mut patched = scan_frame.clone();
        // The send time, in TSval: 16 bytes before the end of a v1 probe (option list offset 8).
        let now = u32::from_be_bytes(frame[frame.len() - 16..frame.len() - 12].try_into().unwrap());
        assert!(crate::trace::encode::patch(&mut patched, &tag, ttl, now));
        assert_eq!(&patched, frame, "{dst} port {port} TTL {ttl}");
    }
    assert_eq!(ttls, BTreeSet::from([1, 2, 3]));
}

#[test]
fn after_a_stall_the_schedule_moves_instead_of_bursting() {
    let mut p = Pacer::new(100_000, Instant::now());
    let t = p.start;
    assert_eq!(p.grant(t + Duration::from_millis(1)), 100);
    // A 2-second stall: the schedule moves by as much, so the next millisecond brings one
    // batch, not the 200,000 probes (or the 50 ms of debt) the stall would have owed.
    p.shift(Duration::from_secs(2));
    let back = t + Duration::from_secs(2) + Duration::from_millis(1);
    assert_eq!(p.grant(back), 0);
    assert_eq!(p.grant(back + Duration::from_millis(1)), 100);
    assert_eq!(p.grant(back + Duration::from_millis(1)), 0);
}

/// A scan from several sources of both families with a `--source-port` range, through the send
/// loop: every frame leaves from the source the hash picks (the receiver's pick for the same
/// target), every source is used, every port lies in the range, every checksum holds, and the
/// receive context accepts a SYN-ACK to each probe at its own source only.
#[test]
fn several_sources_and_a_port_range_through_the_send_loop() {
    use crate::accept::{Context, Reject};
    use crate::sources::{SourcePorts, SourceRange, Sources};
    use crate::wire::{EthernetFrame, FrameRepr, Ipv4Packet, Ipv6Packet, TcpFlags, TcpPacket, TcpRepr};
    let items: Vec<SourceRange> = ["192.0.2.10-192.0.2.13", "192.0.2.20", "2001:db8::10/126"]
        .iter()
        .map(|s| SourceRange::parse(s).unwrap())
        .collect();
    let sources = Sources::expand(&items).unwrap();
    let ports = SourcePorts { lo: 40000, hi: 40099 };
    let targets: Vec<String> = ["198.18.0.0/24", "2001:db8:1::/120"].iter().map(|s| s.to_string()).collect();
    let space = space_of(&targets, "443");
    let link = Link { src_mac: [2; 6], dst_mac: [1; 6], src_v4: Some(sources.v4[0]), src_v6: Some(sources.v6[0]) };
    let versions = [ProbeVersion::V1, ProbeVersion::V0];
    let builder = ProbeBuilder::with_sources(&link, &sources, &versions);
    let validator = Validator::from_seed(21).with_ports(ports);
    let cursor = space.permutation(21).cursor(0, 1, 0, 1, 0).unwrap();
    let mut stream = ProbeStream::new(&space, cursor, &builder, &validator, &versions, 1, &link);
    assert!(stream.spreads());
    let mut tx = MemoryTx::default();
    send_loop(&mut tx, &mut stream, 0, &Counters::new(1), &NEVER, 0).unwrap();
    assert_eq!(tx.frames.len() as u64, space.len() * 2);
    let ctx = Context::new(validator.clone(), sources.clone(), versions.to_vec());
    let mut used = BTreeSet::new();
    for f in &tx.frames {
        let eth = EthernetFrame::new_checked(&f[..]).unwrap();
        let (src, dst, seg) = if f[12..14] == [0x08, 0x00] {
            let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
            assert!(ip.verify_checksum());
            let t = TcpPacket::new_checked(ip.payload()).unwrap();
            assert!(t.verify_checksum_v4(ip.src_addr(), ip.dst_addr()));
            (IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()), ip.payload().to_vec())
        } else {
            let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
            let t = TcpPacket::new_checked(ip.payload()).unwrap();
            assert!(t.verify_checksum_v6(ip.src_addr(), ip.dst_addr()));
            (IpAddr::V6(ip.src_addr()), IpAddr::V6(ip.dst_addr()), ip.payload().to_vec())
        };
        let t = TcpPacket::new_checked(&seg[..]).unwrap();
        assert!(ports.contains(t.src_port()), "port {} outside {ports}", t.src_port());
        let version = if t.options().len() == 32 { ProbeVersion::V0 } else { ProbeVersion::V1 };
        let key = sources.key_for(dst.is_ipv4()).unwrap();
        let tag = validator.tag(key, dst, 443, version);
        assert_eq!((t.src_port(), t.seq()), (tag.sport, tag.seq));
        let n = sources.count(dst.is_ipv4());
        assert_eq!(src, sources.nth(dst.is_ipv4(), crate::keyed_hash::source_index(&tag, n)), "the hash's source");
        used.insert(src);
        // The target's SYN-ACK to the probe's source validates; the same to another of ours is
        // a source-mismatch; to an address not ours, not-to-us.
        let answer = |to: IpAddr| {
            let tcp = TcpRepr {
                src_port: 443,
                dst_port: tag.sport,
                seq: 7,
                ack: tag.seq.wrapping_add(1),
                flags: TcpFlags(0x12),
                window: 1000,
                options: &[],
                payload: &[],
            };
            FrameRepr::tcp(dst, to, 60, tcp).to_vec()
        };
        let good = answer(src);
        let r = ctx.parse(&good).unwrap();
        assert_eq!((r.target, r.port, r.version), (dst, 443, version));
        let other = (0..n).map(|i| sources.nth(dst.is_ipv4(), i)).find(|a| *a != src).unwrap();
        assert_eq!(ctx.parse(&answer(other)).unwrap_err(), Reject("source-mismatch"));
        let stranger: IpAddr =
            if dst.is_ipv4() { "192.0.2.99".parse().unwrap() } else { "2001:db8::99".parse().unwrap() };
        assert_eq!(ctx.parse(&answer(stranger)).unwrap_err(), Reject("not-to-us"));
    }
    let all: BTreeSet<IpAddr> =
        sources.v4.iter().map(|&a| IpAddr::from(a)).chain(sources.v6.iter().map(|&a| IpAddr::from(a))).collect();
    assert_eq!(used, all, "every source sends");
    // Deterministic: the same seed sends the same frames again.
    let cursor = space.permutation(21).cursor(0, 1, 0, 1, 0).unwrap();
    let mut again = MemoryTx::default();
    let mut s2 = ProbeStream::new(&space, cursor, &builder, &validator, &versions, 1, &link);
    send_loop(&mut again, &mut s2, 0, &Counters::new(1), &NEVER, 0).unwrap();
    assert_eq!(again.frames, tx.frames);
}

/// One source with the default ports takes the single-source path; the spreading path with
/// one source and the default ports writes the very same frames (so the fast path is only a
/// faster way to the same probes).
#[test]
fn the_fast_path_and_the_spreading_path_agree_on_one_source() {
    let s = setup();
    let fast = s.reference();
    assert!(!s.stream(0).spreads());
    let mut stream = s.stream(0);
    let mut buf = [0u8; crate::probe::MAX_FRAME_LEN];
    let mut slow = Vec::new();
    while let Some((n, ..)) = stream.next::<true>(&mut buf) {
        slow.push(buf[..n].to_vec());
    }
    assert_eq!(slow, fast);
}
