//! Root-needing tests of the real AF_PACKET back ends and route discovery, inside a pair of
//! network namespaces each test creates (and deletes, even on failure) for itself:
//!
//! ```text
//!   netns A  (vA 198.18.0.1/24, 2001:db8:1::1/64)  <== veth ==>  netns B  (vB 198.18.0.2/24, 2001:db8:1::2/64)
//! ```
//!
//! Test threads enter a namespace with setns(2) on /run/netns/NAME; sockets opened there stay in
//! it. Without root or netns support the tests skip with a message, unless MPSCAN_REQUIRE_LAB=1,
//! in which case they fail.
//!
//! The send-rate benchmark is `#[ignore]`d: run it with
//! `cargo test --release --test lab_net -- --ignored --nocapture bench_tx_ring`.

use mpscan::net::bpf::filter_for;
use mpscan::net::route::{resolve, RouteError};
use mpscan::net::{AfPacketRx, AfPacketTx, MmsgTx, Receive, RxConfig, Transmit, TxConfig, TxRing};
use mpscan::wire::{FrameRepr, L4Repr, TcpFlags, TcpRepr};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0xa, 1];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0xb, 1];

/// Runs `ip ARGS`, returning an error with its stderr on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
    if !out.status.success() {
        return Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

fn sh_in(ns: &str, cmd: &str, args: &[&str]) -> Result<String, String> {
    let out =
        Command::new("ip").args(["netns", "exec", ns, cmd]).args(args).output().map_err(|e| format!("{cmd}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Two namespaces joined by a veth pair; deleted on drop.
struct Lab {
    a: String,
    b: String,
    created: Vec<String>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

impl Lab {
    /// Builds the lab, or returns why it cannot be built (not root, no netns, ...).
    fn try_new() -> Result<Lab, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let id = format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let mut lab = Lab { a: format!("mpscan-net-{id}-a"), b: format!("mpscan-net-{id}-b"), created: Vec::new() };
        if !mpscan::net::caps::has_cap_net_raw() {
            return Err("not root (CAP_NET_RAW missing)".into());
        }
        for ns in [lab.a.clone(), lab.b.clone()] {
            ip(&["netns", "add", &ns])?;
            lab.created.push(ns);
        }
        lab.link()?;
        Ok(lab)
    }

    /// The veth pair vA-vB with its addresses, up (again, after a test deleted it).
    fn link(&self) -> Result<(), String> {
        let (a, b) = (self.a.as_str(), self.b.as_str());
        ip(&["link", "add", "vA", "netns", a, "type", "veth", "peer", "name", "vB", "netns", b])?;
        for (ns, dev, mac, v4, v6) in [
            (a, "vA", MAC_A, "198.18.0.1/24", "2001:db8:1::1/64"),
            (b, "vB", MAC_B, "198.18.0.2/24", "2001:db8:1::2/64"),
        ] {
            let mac = mpscan::net::route::format_mac(&mac);
            ip(&["-n", ns, "link", "set", dev, "address", &mac])?;
            ip(&["-n", ns, "addr", "add", v4, "dev", dev])?;
            ip(&["-n", ns, "addr", "add", v6, "dev", dev, "nodad"])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    /// The lab, `None` to skip (with a message), or a panic if MPSCAN_REQUIRE_LAB=1.
    fn new_or_skip() -> Option<Lab> {
        match Lab::try_new() {
            Ok(l) => Some(l),
            Err(why) if std::env::var("MPSCAN_REQUIRE_LAB").as_deref() == Ok("1") => {
                panic!("lab required (MPSCAN_REQUIRE_LAB=1) but unavailable: {why}")
            }
            Err(why) => {
                eprintln!("skipping: lab unavailable: {why}");
                None
            }
        }
    }
}

/// Runs `f` on a thread that has entered namespace `ns`; whatever `f` opens stays in `ns`.
fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        // SAFETY: setns on a valid namespace file descriptor; it changes only this thread.
        let r = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns({path}): {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("namespace thread panicked")
}

/// A TCP segment from port 443 to `dport` with `flags` and `mark` in the sequence number.
fn marked(dport: u16, flags: u8, mark: u32) -> TcpRepr<'static> {
    TcpRepr {
        src_port: 443,
        dst_port: dport,
        seq: mark,
        ack: 0,
        flags: TcpFlags(flags),
        window: 0xffff,
        options: &[],
        payload: &[],
    }
}

/// Writes an Ethernet/IPv4/TCP frame from A to B into `buf`, with `mark` in the sequence number.
/// 198.51.100.7 is not B's: B's kernel drops these frames after the capture saw them.
fn tcp4(buf: &mut [u8], dport: u16, flags: u8, mark: u32) -> usize {
    let (src, dst) = (Ipv4Addr::new(198, 51, 100, 8), Ipv4Addr::new(198, 51, 100, 7));
    FrameRepr::tcp(src.into(), dst.into(), 64, marked(dport, flags, mark)).with_macs(MAC_A, MAC_B).emit(buf)
}

/// The same as IPv6 (2001:db8:9::8 -> 2001:db8:9::7).
fn tcp6(buf: &mut [u8], dport: u16, flags: u8, mark: u32) -> usize {
    let (src, dst): (Ipv6Addr, Ipv6Addr) = ("2001:db8:9::8".parse().unwrap(), "2001:db8:9::7".parse().unwrap());
    FrameRepr::tcp(src.into(), dst.into(), 64, marked(dport, flags, mark)).with_macs(MAC_A, MAC_B).emit(buf)
}

/// The mark of a frame written by `tcp4`/`tcp6` sent from A, if it is one.
fn mark_of(frame: &[u8]) -> Option<u32> {
    match FrameRepr::parse(frame)? {
        Ok(FrameRepr { ethernet, l4: L4Repr::Tcp(t), .. }) if ethernet.src == MAC_A => Some(t.seq),
        _ => None,
    }
}

const SYNACK: u8 = 0x12;
const ACK: u8 = 0x10;
const RST: u8 = 0x04;

/// Receives until `want` distinct marks were seen or nothing arrives for a while (the ring's
/// blocks retire after 10 ms, so 2 s of silence means the frames are not coming).
fn collect(rx: &mut AfPacketRx, want: usize) -> BTreeSet<u32> {
    let mut seen = BTreeSet::new();
    let mut quiet_since = Instant::now();
    while seen.len() < want && quiet_since.elapsed() < Duration::from_secs(2) {
        let n = rx
            .recv_batch(Duration::from_millis(50), &mut |f| {
                if let Some(m) = mark_of(f) {
                    seen.insert(m);
                }
            })
            .expect("recv_batch");
        if n > 0 {
            quiet_since = Instant::now();
        }
    }
    seen
}

fn small_rx() -> RxConfig {
    RxConfig { block_size: 1 << 18, block_count: 32, ..RxConfig::default() }
}

/// Frames sent through the real TX ring in A all arrive, once each, through the real RX ring in B.
#[test]
fn tx_ring_to_rx_ring() {
    let Some(lab) = Lab::new_or_skip() else {
        return;
    };
    let mut rx = in_ns(&lab.b, || AfPacketRx::open("vB", Some(&filter_for(40000..=40999)), small_rx()).unwrap());
    // A small ring, so that 20,000 frames wrap it many times and exercise the ring-full wait.
    let mut tx = in_ns(&lab.a, || TxRing::open("vA", TxConfig { frame_count: 512, ..TxConfig::default() }).unwrap());
    const N: u32 = 20_000;
    let mut next = 0u32;
    while next < N {
        let q = tx
            .send_batch(1000, &mut |slot| {
                if next == N {
                    return 0;
                }
                next += 1;
                tcp4(slot, 40000 + (next % 1000) as u16, SYNACK, next - 1)
            })
            .unwrap();
        assert!(q > 0);
    }
    tx.flush().unwrap();
    let st = tx.stats();
    assert_eq!((st.queued, st.sent, st.failed), (u64::from(N), u64::from(N), 0), "{st:?}");
    assert!(st.ring_full_waits > 0, "a 512-slot ring must fill up under 20,000 frames: {st:?}");

    let seen = collect(&mut rx, N as usize);
    assert_eq!(seen.len(), N as usize, "missing marks, first: {:?}", (0..N).find(|m| !seen.contains(m)));
    let rs = rx.stats();
    assert!(rs.received >= u64::from(N) && rs.dropped == 0, "{rs:?}");
    assert!(rs.handled >= u64::from(N));
}

/// The capture filter, attached in the kernel, lets through exactly what the interpreter says.
#[test]
fn kernel_filter_matches_interpreter() {
    let Some(lab) = Lab::new_or_skip() else {
        return;
    };
    let prog = filter_for(40000..=40999);
    let mut rx = in_ns(&lab.b, move || AfPacketRx::open("vB", Some(&prog), small_rx()).unwrap());
    let mut tx = in_ns(&lab.a, || AfPacketTx::open("vA", TxConfig::default()).unwrap());
    // (frame writer, dport, flags) for marks 0..: which of them pass is the interpreter's call.
    type Writer = fn(&mut [u8], u16, u8, u32) -> usize;
    let cases: Vec<(Writer, u16, u8)> = vec![
        (tcp4, 40000, SYNACK),
        (tcp4, 40999, RST),
        (tcp4, 41000, SYNACK),
        (tcp4, 40500, ACK),
        (tcp4, 39999, RST | ACK),
        (tcp6, 40001, SYNACK),
        (tcp6, 40002, RST | ACK),
        (tcp6, 50000, SYNACK),
        (tcp6, 40003, ACK),
    ];
    let mut frames = Vec::new();
    for (i, (w, port, flags)) in cases.iter().enumerate() {
        let mut buf = vec![0u8; 128];
        let len = w(&mut buf, *port, *flags, i as u32);
        buf.truncate(len);
        frames.push(buf);
    }
    let expect: BTreeSet<u32> = frames
        .iter()
        .enumerate()
        .filter(|(_, f)| mpscan::net::bpf::run(&filter_for(40000..=40999), f).unwrap() > 0)
        .map(|(i, _)| i as u32)
        .collect();
    assert_eq!(expect, BTreeSet::from([0, 1, 5, 6]), "interpreter's verdict on the sample");

    let mut it = frames.iter();
    let sent = tx
        .send_batch(frames.len(), &mut |slot| match it.next() {
            Some(f) => {
                slot[..f.len()].copy_from_slice(f);
                f.len()
            }
            None => 0,
        })
        .unwrap();
    assert_eq!(sent, frames.len());
    tx.flush().unwrap();
    // Wait for the accepted ones, then a little more for any that should not have passed.
    let mut seen = collect(&mut rx, expect.len());
    let more = collect(&mut rx, usize::MAX);
    seen.extend(more);
    assert_eq!(seen, expect);
}

/// PACKET_IGNORE_OUTGOING: a receiver on the sending interface does not read our own frames,
/// while it does read what comes in (B's kernel answers A's frames to 198.18.0.2 with RSTs).
#[test]
fn own_frames_not_read_back() {
    let Some(lab) = Lab::new_or_skip() else {
        return;
    };
    let (mut rx, mut tx) = in_ns(&lab.a, || {
        (
            AfPacketRx::open("vA", None, small_rx()).unwrap(),
            // Through the qdisc: frames sent with PACKET_QDISC_BYPASS never reach packet taps
            // at all, so only the qdisc path shows that IGNORE_OUTGOING works.
            TxRing::open("vA", TxConfig { qdisc_bypass: false, ..TxConfig::default() }).unwrap(),
        )
    });
    let mut k = 0;
    tx.send_batch(100, &mut |slot| {
        k += 1;
        tcp4(slot, 40000, SYNACK, k)
    })
    .unwrap();
    tx.flush().unwrap();
    // Something that does come in: a datagram from B.
    in_ns(&lab.b, || {
        let s = std::net::UdpSocket::bind("198.18.0.2:0").unwrap();
        s.send_to(b"in", "198.18.0.1:9").unwrap();
    });
    let (mut ours, mut from_b) = (0, 0);
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(2) {
        let n = rx
            .recv_batch(Duration::from_millis(50), &mut |f| {
                ours += usize::from(mark_of(f).is_some());
                from_b += usize::from(f.len() >= 12 && f[6..12] == MAC_B);
            })
            .unwrap();
        if n > 0 {
            quiet_since = Instant::now();
        }
    }
    assert_eq!(ours, 0, "read back our own frames");
    assert!(from_b > 0, "incoming frames must still be read");
}

/// The sendmmsg fallback delivers every frame too.
#[test]
fn mmsg_tx_to_rx_ring() {
    let Some(lab) = Lab::new_or_skip() else {
        return;
    };
    let mut rx = in_ns(&lab.b, || AfPacketRx::open("vB", Some(&filter_for(40000..=40999)), small_rx()).unwrap());
    let mut tx = in_ns(&lab.a, || MmsgTx::open("vA", true).unwrap());
    const N: u32 = 3_000;
    let mut next = 0;
    // One call longer than MMSG_BATCH, with a refused length in the middle.
    let q = tx
        .send_batch(N as usize + 1, &mut |slot| {
            next += 1;
            match next {
                7 => 3,
                n if n > N + 1 => 0,
                n => tcp6(slot, 40000, SYNACK, n - 1),
            }
        })
        .unwrap();
    assert_eq!(q, N as usize);
    let st = tx.stats();
    assert_eq!((st.queued, st.sent, st.failed), (u64::from(N), u64::from(N), 1));
    let seen = collect(&mut rx, N as usize);
    let expect: BTreeSet<u32> = (0..=N).filter(|m| *m != 6).collect();
    assert_eq!(seen, expect);
}

/// Route discovery in namespace A: on-link, via a gateway, missing route, overrides, IPv6.
#[test]
fn route_resolution_in_namespace() {
    let Some(lab) = Lab::new_or_skip() else {
        return;
    };
    ip(&["-n", &lab.a, "route", "add", "198.51.100.0/24", "via", "198.18.0.2"]).unwrap();
    ip(&["-n", &lab.a, "-6", "route", "add", "2001:db8:2::/48", "via", "2001:db8:1::2"]).unwrap();
    let ip4 = |s: &str| s.parse::<IpAddr>().unwrap();
    let results = in_ns(&lab.a, move || {
        (
            resolve(ip4("198.18.0.2"), None, None, None),
            resolve(ip4("198.51.100.7"), None, None, None),
            resolve(ip4("203.0.113.1"), None, None, None),
            resolve(ip4("203.0.113.1"), Some("vA"), None, Some([2, 0, 0, 0, 0, 9])),
            resolve(ip4("198.18.0.77"), None, None, None),
            resolve(ip4("2001:db8:2::5"), None, None, None),
            resolve(ip4("198.51.100.7"), None, Some(ip4("192.0.2.99")), None),
        )
    });
    let (on_link, via_gw, no_route, forced, silent, v6, bad_src) = results;
    let on_link = on_link.unwrap();
    assert_eq!(on_link.interface, "vA");
    assert_eq!(on_link.src_ip, ip4("198.18.0.1"));
    assert_eq!(on_link.src_mac, MAC_A);
    assert_eq!(on_link.gateway_ip, None);
    assert_eq!(on_link.gateway_mac, MAC_B);

    let via_gw = via_gw.unwrap();
    assert_eq!((via_gw.gateway_ip, via_gw.gateway_mac), (Some(ip4("198.18.0.2")), MAC_B));

    let e = no_route.unwrap_err();
    assert!(matches!(e, RouteError::NoRoute { .. }), "{e}");

    let forced = forced.unwrap();
    assert_eq!(
        (forced.interface.as_str(), forced.src_ip, forced.gateway_mac),
        ("vA", ip4("198.18.0.1"), [2, 0, 0, 0, 0, 9])
    );

    // 198.18.0.77 is on-link but nobody answers ARP for it.
    let e = silent.unwrap_err();
    assert!(matches!(e, RouteError::NoNeighbour { .. }), "{e}");
    assert!(e.to_string().contains("-G"));

    let v6 = v6.unwrap();
    assert_eq!(v6.src_ip, ip4("2001:db8:1::1"));
    assert_eq!((v6.gateway_ip, v6.gateway_mac), (Some(ip4("2001:db8:1::2")), MAC_B));

    // -S may name an address no interface has (zmap allows it too): the route still decides.
    let spoofed = bad_src.unwrap();
    assert_eq!((spoofed.interface.as_str(), spoofed.src_ip, spoofed.gateway_mac), ("vA", ip4("192.0.2.99"), MAC_B));
}

/// Reads the packet count of the sink's first rule (the one matching our frames).
fn sink_count(ns: &str) -> u64 {
    let out = sh_in(ns, "nft", &["list", "table", "netdev", "sink"]).unwrap();
    out.split_whitespace().skip_while(|w| *w != "packets").nth(1).and_then(|s| s.parse().ok()).expect("nft counter")
}

/// Send-rate benchmark: 2 million 60-byte frames through the TX ring into a veth whose peer drops
/// them at ingress (nftables netdev `counter drop`); the rate is what the counter saw over the
/// wall time of the send loop. If trafgen is installed, it sends the same frame on the same
/// set-up for comparison (one process, then one per CPU).
#[test]
#[ignore]
fn bench_tx_ring() {
    let Some(lab) = Lab::new_or_skip() else {
        return;
    };
    let sink = "table netdev sink {\n  chain ingress {\n    type filter hook ingress device \"vB\" priority 0; policy accept;\n    ip daddr 198.51.100.7 counter drop\n    drop\n  }\n}\n";
    let conf = std::env::temp_dir().join(format!("mpscan-net-sink-{}.nft", std::process::id()));
    std::fs::write(&conf, sink).unwrap();
    sh_in(&lab.b, "nft", &["-f", conf.to_str().unwrap()]).unwrap();
    let _ = std::fs::remove_file(&conf);

    let frames: u64 = std::env::var("MPSCAN_BENCH_FRAMES").ok().and_then(|s| s.parse().ok()).unwrap_or(2_000_000);
    let mut tx = in_ns(&lab.a, || AfPacketTx::open("vA", TxConfig::default()).unwrap());
    eprintln!("back end: {}", tx.describe());
    for run in 1..=3 {
        let before = sink_count(&lab.b);
        let mut made = 0u64;
        let start = Instant::now();
        while made < frames {
            tx.send_batch(512, &mut |slot| {
                if made == frames {
                    return 0;
                }
                // Only the sequence number changes per frame, as in a scan.
                let len = tcp4(slot, 40000, 0x02, made as u32);
                made += 1;
                len.max(60)
            })
            .unwrap();
        }
        tx.flush().unwrap();
        let secs = start.elapsed().as_secs_f64();
        let counted = sink_count(&lab.b) - before;
        eprintln!(
            "mpscan TX ring run {run}: {counted} of {frames} frames counted by the sink in {secs:.3} s = {:.3} Mpps",
            counted as f64 / secs / 1e6
        );
        assert_eq!(counted, frames);
    }
    eprintln!("stats {:?}", tx.stats());

    if Command::new("trafgen").arg("--version").output().is_err() {
        eprintln!("trafgen not installed: no comparison");
        return;
    }
    let mut frame = [0u8; 128];
    let len = tcp4(&mut frame, 40000, 0x02, 1).max(60);
    let bytes: Vec<String> = frame[..len].iter().map(|b| format!("0x{b:02x}")).collect();
    let cfg = std::env::temp_dir().join(format!("mpscan-net-trafgen-{}.cfg", std::process::id()));
    std::fs::write(&cfg, format!("{{ {} }}\n", bytes.join(", "))).unwrap();
    let frames_s = frames.to_string();
    for cpus in ["1", "2"] {
        let before = sink_count(&lab.b);
        let start = Instant::now();
        sh_in(&lab.a, "trafgen", &["-o", "vA", "-i", cfg.to_str().unwrap(), "-n", &frames_s, "-P", cpus, "-C", "-Q"])
            .unwrap();
        let secs = start.elapsed().as_secs_f64();
        let counted = sink_count(&lab.b) - before;
        eprintln!("trafgen -P {cpus}: {counted} frames counted in {secs:.3} s (process wall time, start-up included) = {:.3} Mpps", counted as f64 / secs / 1e6);
    }
    let _ = std::fs::remove_file(&cfg);
}

/// Receive benchmark: 2 million filter-passing SYN-ACKs sent from A as fast as the TX ring goes,
/// received through the default 64 MiB RX ring in B by another thread; reports how many the
/// handler saw and how many the kernel dropped (ring full).
#[test]
#[ignore]
fn bench_rx_ring() {
    let Some(lab) = Lab::new_or_skip() else {
        return;
    };
    let frames: u64 = std::env::var("MPSCAN_BENCH_FRAMES").ok().and_then(|s| s.parse().ok()).unwrap_or(2_000_000);
    let mut rx =
        in_ns(&lab.b, || AfPacketRx::open("vB", Some(&filter_for(40000..=40999)), RxConfig::default()).unwrap());
    let mut tx = in_ns(&lab.a, || AfPacketTx::open("vA", TxConfig::default()).unwrap());
    let start = Instant::now();
    let sender = std::thread::spawn(move || {
        let mut made = 0u64;
        while made < frames {
            tx.send_batch(512, &mut |slot| {
                if made == frames {
                    return 0;
                }
                let len = tcp4(slot, 40000 + (made % 1000) as u16, SYNACK, made as u32);
                made += 1;
                len.max(60)
            })
            .unwrap();
        }
        tx.flush().unwrap();
        start.elapsed().as_secs_f64()
    });
    let mut handled = 0u64;
    let mut quiet_since = Instant::now();
    while handled < frames && quiet_since.elapsed() < Duration::from_secs(2) {
        let n = rx.recv_batch(Duration::from_millis(50), &mut |f| handled += u64::from(mark_of(f).is_some())).unwrap();
        if n > 0 {
            quiet_since = Instant::now();
        }
    }
    let rx_secs = start.elapsed().as_secs_f64();
    let tx_secs = sender.join().unwrap();
    let st = rx.stats();
    eprintln!(
        "RX ring: sent {frames} in {tx_secs:.3} s ({:.3} Mpps); handled {handled} ({:.2}%), kernel dropped {}, last frame by {rx_secs:.3} s (includes up to 2 s of waiting when frames are missing); {st:?}",
        frames as f64 / tx_secs / 1e6,
        handled as f64 * 100.0 / frames as f64,
        st.dropped
    );
    // Every frame the kernel put into the ring reached the handler (nothing else passes the filter).
    assert_eq!(handled, st.received);
}

/// Sends marks `range` through `tx` in one batch, which must succeed.
fn send_marks(tx: &mut dyn Transmit, range: std::ops::Range<u32>) -> std::io::Result<usize> {
    let mut next = range.start;
    tx.send_batch(range.len(), &mut |slot| {
        if next == range.end {
            return 0;
        }
        next += 1;
        tcp4(slot, 40000 + (next % 1000) as u16, SYNACK, next - 1)
    })
}

/// The link of A goes down with frames handed to `tx`: the batch fails with ENETDOWN, the back
/// end keeps its frames (pending), a retry while down fails again, and the first retry once the
/// link is back sends them.
fn ride_through_down(lab: &Lab, tx: &mut dyn Transmit, base: u32) {
    assert_eq!(send_marks(tx, base..base + 100).unwrap(), 100);
    ip(&["-n", &lab.a, "link", "set", "vA", "down"]).unwrap();
    let e = send_marks(tx, base + 100..base + 150).unwrap_err();
    assert_eq!(mpscan::net::errno_of(&e), Some(libc::ENETDOWN), "{e}");
    assert_eq!(tx.pending(), 50, "the refused frames are kept");
    let e = tx.retry().unwrap_err();
    assert_eq!(mpscan::net::errno_of(&e), Some(libc::ENETDOWN), "{e}");
    ip(&["-n", &lab.a, "link", "set", "vA", "up"]).unwrap();
    assert_eq!(tx.retry().unwrap(), 0, "every kept frame left once the link was back");
    assert_eq!(tx.pending(), 0);
    assert_eq!(send_marks(tx, base + 150..base + 200).unwrap(), 50);
    tx.flush().unwrap();
}

/// A link flap loses no frame on either transmit back end, and the receiver keeps its socket
/// through a flap of its own link: frames that arrive after it are read, and the ENETDOWN the
/// kernel set on the socket was read instead of making every poll return at once.
#[test]
fn a_link_flap_loses_no_frame_and_keeps_the_receiver() {
    let Some(lab) = Lab::new_or_skip() else {
        return;
    };
    let mut rx = in_ns(&lab.b, || AfPacketRx::open("vB", Some(&filter_for(40000..=40999)), small_rx()).unwrap());
    let mut ring = in_ns(&lab.a, || TxRing::open("vA", TxConfig::default()).unwrap());
    let mut mmsg = in_ns(&lab.a, || MmsgTx::open("vA", true).unwrap());
    ride_through_down(&lab, &mut ring, 0);
    ride_through_down(&lab, &mut mmsg, 1000);

    let mut seen = collect(&mut rx, 400);
    ip(&["-n", &lab.b, "link", "set", "vB", "down"]).unwrap();
    rx.recv_batch(Duration::from_millis(50), &mut |f| {
        seen.extend(mark_of(f));
    })
    .unwrap();
    ip(&["-n", &lab.b, "link", "set", "vB", "up"]).unwrap();
    assert_eq!(send_marks(&mut ring, 2000..2100).unwrap(), 100);
    ring.flush().unwrap();
    seen.extend(collect(&mut rx, 100));

    let want: BTreeSet<u32> = (0..200).chain(1000..1200).chain(2000..2100).collect();
    assert_eq!(seen, want, "missing: {:?}", want.difference(&seen).take(5).collect::<Vec<_>>());
    assert!(rx.link_events().0 >= 1, "the socket's ENETDOWN was read: {:?}", rx.link_events());
}

/// ENOBUFS provoked for real: with the qdisc bypass off, a token bucket with a 3 KB queue in
/// front of vA refuses most of a 2,000-frame batch. The ring keeps the refused frames, counts
/// the refusals, and sends every frame once as the bucket drains.
#[test]
fn enobufs_from_a_full_qdisc_keeps_every_frame() {
    let Some(lab) = Lab::new_or_skip() else {
        return;
    };
    sh_in(
        &lab.a,
        "tc",
        &["qdisc", "add", "dev", "vA", "root", "tbf", "rate", "10mbit", "burst", "2kb", "limit", "3kb"],
    )
    .unwrap();
    let mut rx = in_ns(&lab.b, || AfPacketRx::open("vB", Some(&filter_for(40000..=40999)), small_rx()).unwrap());
    let cfg = TxConfig { qdisc_bypass: false, ..TxConfig::default() };
    let mut tx = in_ns(&lab.a, move || TxRing::open("vA", cfg).unwrap());
    assert_eq!(send_marks(&mut tx, 0..2000).unwrap(), 2000);
    tx.flush().unwrap();
    let st = tx.stats();
    assert!(st.enobufs > 0, "a 3 KB queue must refuse some of 2,000 frames at once: {st:?}");
    assert_eq!((st.queued, st.sent), (2000, 2000), "{st:?}");
    let seen = collect(&mut rx, 2000);
    assert_eq!(seen, (0..2000).collect::<BTreeSet<u32>>());
}

/// The interface disappears (ENXIO) and comes back under the same name, as after a driver
/// reset: the ring keeps the refused frames, cannot reopen while the interface is gone, then
/// reopens on the new one and sends them; the receiver notices its interface went away and opens
/// its ring again on the new one.
#[test]
fn an_interface_that_comes_back_is_reopened_on_both_sides() {
    let Some(lab) = Lab::new_or_skip() else {
        return;
    };
    let mut rx = in_ns(&lab.b, || AfPacketRx::open("vB", Some(&filter_for(40000..=40999)), small_rx()).unwrap());
    let mut tx = in_ns(&lab.a, || TxRing::open("vA", TxConfig::default()).unwrap());
    assert_eq!(send_marks(&mut tx, 0..50).unwrap(), 50);
    tx.flush().unwrap();
    let mut seen = collect(&mut rx, 50);

    ip(&["-n", &lab.a, "link", "del", "vA"]).unwrap();
    let e = send_marks(&mut tx, 50..100).unwrap_err();
    assert_eq!(mpscan::net::errno_of(&e), Some(libc::ENXIO), "{e}");
    assert_eq!(tx.pending(), 50);
    let (mut tx, gone) = in_ns(&lab.a, move || {
        let r = tx.reopen();
        (tx, r)
    });
    assert!(gone.is_err(), "no interface to reopen on yet");
    let mut rx = in_ns(&lab.b, move || {
        rx.recv_batch(Duration::from_millis(50), &mut |_| {}).unwrap();
        rx
    });

    lab.link().unwrap();
    let mut tx = in_ns(&lab.a, move || {
        tx.reopen().unwrap();
        tx
    });
    assert_eq!(tx.pending(), 50, "the kept frames moved to the new ring");
    let mut rx = in_ns(&lab.b, move || {
        for _ in 0..100 {
            rx.recv_batch(Duration::from_millis(10), &mut |_| {}).unwrap();
            if rx.link_events().1 > 0 {
                break;
            }
        }
        rx
    });
    assert_eq!(rx.link_events().1, 1, "the receiver opened its ring again on the new vB");
    assert_eq!(tx.retry().unwrap(), 0);
    assert_eq!(send_marks(&mut tx, 100..150).unwrap(), 50);
    tx.flush().unwrap();
    seen.extend(collect(&mut rx, 100));
    assert_eq!(seen, (0..150).collect::<BTreeSet<u32>>());
}
