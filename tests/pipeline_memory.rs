//! The whole scan pipeline without root: `mpscan::scan::run_with` over the memory transport
//! (`mpscan::net::MemoryWire`), whose far end answers each probe with frames built here from the
//! wire module's views, by the target's address:
//!
//! | last octet mod 8 | answer | expected |
//! |---|---|---|
//! | 0 | SYN-ACK with a 12-byte MP_CAPABLE v1 and its own key | an `mptcp` row |
//! | 1 | SYN-ACK echoing the probe's 4-byte MP_CAPABLE | an `echo` row |
//! | 2 | SYN-ACK without options | a `tcp` row |
//! | 3 | RST | a `closed` row |
//! | 4 | the `mptcp` answer twice | one row, one duplicate |
//! | 5 | a SYN-ACK acknowledging the wrong sequence number | no row, one rejection |
//! | 6 | the `mptcp` answer, after the last probe (in the cooldown) | an `mptcp` row |
//! | 7 | nothing | no row |
//!
//! Checked, with one and with two sender threads: the rows (one per answering target, with its
//! class), the duplicates, the late answers kept by the cooldown, every counter of the metadata.
//! And resume durability: a scan stopped by a signal at an exact probe index saves exactly that
//! position, and its resumption sends exactly the remaining probes and ends with the rows of an
//! uninterrupted scan.
//!
//! And raw evidence: `--pcap` + `mpscan reclassify` give the scan's rows and counters again (also
//! across a resume, which appends to the recording), another seed's metadata is refused; and the
//! `--status-updates-file` lines follow the scan.
//!
//! Nothing is sent on any network (the targets are in 127.0.0.0/8 all the same), so these tests
//! need neither root nor namespaces and run in plain `cargo test`.

mod common;
use clap::{CommandFactory, FromArgMatches, Parser};
use common::sorted_lines;
use mpscan::net::memory::{Answer, MemoryWire};
use mpscan::probe::Link;
use mpscan::scan::config::{Network, ScanConfig};
use mpscan::scan::stop::{Stop, Why};
use mpscan::scan::workers::Transport;
use mpscan::scan::{run_with, Outcome, ScanArgs};
use mpscan::wire::{tcp_option, EthernetFrame, Ipv4Packet, MpCapable, TcpFlags, TcpOption, TcpPacket};
use mpscan::wire::{FrameRepr, L4Repr, TcpRepr};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The scanner's address: the probes' source.
const SCANNER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
/// 64 targets, eight of each kind of answer.
const TARGETS: &str = "127.0.1.0/26";

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    scan: ScanArgs,
}

/// A configuration from a `mpscan scan` command line, on the memory link.
fn config(argv: &[&str]) -> ScanConfig {
    let m = Cli::command().try_get_matches_from(std::iter::once("scan").chain(argv.iter().copied())).unwrap();
    let args = Cli::from_arg_matches(&m).unwrap().scan;
    let link = Link { src_mac: [2, 0, 0, 0, 0, 1], dst_mac: [2, 0, 0, 0, 0, 2], src_v4: Some(SCANNER), src_v6: None };
    ScanConfig::resolve_on(&args, &Network::Given { link, interface: "memory".into() }).unwrap()
}

/// A scratch directory of one test.
fn scratch(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mpscan-pipeline-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The command line of the test scans: every target once, unpaced, a short cooldown.
fn argv<'a>(dir: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut v: Vec<String> =
        ["-p", "443", "-r", "0", "-c", "1", "-e", "7", "-q", "--no-blocklist"].iter().map(|s| s.to_string()).collect();
    v.extend(["-o".into(), format!("{dir}/out.csv"), "-m".into(), format!("{dir}/meta.json")]);
    v.extend(extra.iter().map(|s| s.to_string()));
    v.push(TARGETS.into());
    v
}

/// An answer to `probe` (an Ethernet/IPv4/TCP SYN): `flags`, acknowledging the probe's sequence
/// number + `ack_delta`, with `options`, from the probed address to the scanner.
fn reply(probe: &[u8], flags: u8, ack_delta: u32, options: &[TcpOption]) -> Vec<u8> {
    let Some(Ok(FrameRepr { ethernet, ip, l4: L4Repr::Tcp(syn) })) = FrameRepr::parse(probe) else {
        panic!("a probe is Ethernet/IP/TCP")
    };
    let mut opts = [0u8; 40];
    let opts_len = tcp_option::emit_all(options, &mut opts);
    let rst = flags & TcpFlags::RST != 0;
    let tcp = TcpRepr {
        src_port: syn.dst_port,
        dst_port: syn.src_port,
        seq: if rst { 0 } else { 0x1234_5678 },
        ack: syn.seq.wrapping_add(1).wrapping_add(ack_delta),
        flags: TcpFlags(flags),
        window: if rst { 0 } else { 64_240 },
        options: &opts[..opts_len],
        payload: &[],
    };
    FrameRepr::tcp(ip.dst_addr(), ip.src_addr(), 64, tcp).with_macs(ethernet.dst, ethernet.src).to_vec()
}

/// The probed address of a probe frame.
fn target(probe: &[u8]) -> Ipv4Addr {
    Ipv4Packet::new_checked(EthernetFrame::new_checked(probe).unwrap().payload()).unwrap().dst_addr()
}

/// The probe's MP_CAPABLE option.
fn probe_mp_capable(probe: &[u8]) -> MpCapable {
    let eth = EthernetFrame::new_checked(probe).unwrap();
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    let syn = TcpPacket::new_checked(ip.payload()).unwrap();
    let found = syn.option_iter().find_map(|o| match o {
        Ok(TcpOption::MpCapable(m)) => Some(m),
        _ => None,
    });
    found.expect("every probe carries MP_CAPABLE")
}

/// The far end of the memory wire: the table at the top of this file.
fn respond(probe: &[u8]) -> Vec<Answer> {
    const SYN_ACK: u8 = TcpFlags::SYN | TcpFlags::ACK;
    let server = MpCapable { version: 1, flags: 0x01, sender_key: Some(0x0102_0304_0506_0708), receiver_key: None };
    let mptcp = || reply(probe, SYN_ACK, 0, &[TcpOption::MaxSegmentSize(1460), TcpOption::MpCapable(server)]);
    match target(probe).octets()[3] % 8 {
        0 => vec![Answer::Now(mptcp())],
        1 => vec![Answer::Now(reply(probe, SYN_ACK, 0, &[TcpOption::MpCapable(probe_mp_capable(probe))]))],
        2 => vec![Answer::Now(reply(probe, SYN_ACK, 0, &[]))],
        3 => vec![Answer::Now(reply(probe, TcpFlags::RST | TcpFlags::ACK, 0, &[]))],
        4 => vec![Answer::Now(mptcp()), Answer::Now(mptcp())],
        5 => vec![Answer::Now(reply(probe, SYN_ACK, 1000, &[]))],
        6 => vec![Answer::Late(mptcp())],
        _ => vec![],
    }
}

/// The class each answering target must get, by last octet mod 8.
fn expected_class(ip: Ipv4Addr) -> Option<&'static str> {
    match ip.octets()[3] % 8 {
        0 | 4 | 6 => Some("mptcp"),
        1 => Some("echo"),
        2 => Some("tcp"),
        3 => Some("closed"),
        _ => None,
    }
}

/// Runs `config` over a memory wire with one transmitter per sender thread.
fn run(config: &ScanConfig, wire: &MemoryWire, stop: &Stop) -> Outcome {
    let txs = (0..config.threads).map(|_| Box::new(wire.tx()) as _).collect();
    let transport = Transport { rx: Box::new(wire.rx()), txs };
    run_with(config, transport, config.output().unwrap(), stop).unwrap()
}

/// The result file's rows as (ip, class), in file order.
fn rows(path: &Path) -> Vec<(Ipv4Addr, String)> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let h = r.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|c| c == name).unwrap();
    let (ip, class) = (col("ip"), col("class"));
    r.records().map(|rec| rec.unwrap()).map(|rec| (rec[ip].parse().unwrap(), rec[class].to_string())).collect()
}

fn metadata(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every answering target has exactly one row, of the right class, and no other target has one.
fn assert_rows_are_the_expected_ones(rows: &[(Ipv4Addr, String)]) {
    let by_ip: BTreeMap<Ipv4Addr, &str> = rows.iter().map(|(ip, c)| (*ip, c.as_str())).collect();
    assert_eq!(by_ip.len(), rows.len(), "a target has two rows");
    let want: BTreeMap<Ipv4Addr, &str> =
        (0..64u8).map(|i| Ipv4Addr::new(127, 0, 1, i)).filter_map(|ip| expected_class(ip).map(|c| (ip, c))).collect();
    assert_eq!(by_ip, want);
}

#[test]
fn memory_scan_writes_the_rows_and_counts_everything() {
    for threads in ["1", "2"] {
        memory_scan_with_sender_threads(threads);
    }
}

/// One scan of the table's targets with `threads` sender threads, checked whole.
fn memory_scan_with_sender_threads(threads: &str) {
    let dir = scratch(&format!("rows-{threads}"));
    let config = config(&argv(dir.to_str().unwrap(), &["-T", threads]).iter().map(String::as_str).collect::<Vec<_>>());
    let wire = MemoryWire::new(respond);
    assert_eq!(run(&config, &wire, &Stop::default()), Outcome::Finished);

    let rows = rows(&dir.join("out.csv"));
    assert_rows_are_the_expected_ones(&rows);
    let late: Vec<_> = rows.iter().filter(|(ip, _)| ip.octets()[3] % 8 == 6).collect();
    assert_eq!(late.len(), 8, "answers arriving after the last probe are kept by the cooldown");

    let md = metadata(&dir.join("meta.json"));
    let count = |k: &str| md[k].as_u64().unwrap_or_else(|| panic!("{k} in {md}"));
    assert_eq!(wire.taken(), 64);
    assert_eq!(count("probes_sent"), 64);
    assert_eq!(count("targets_probed"), 64);
    assert_eq!(count("targets_total"), 64);
    // 7 of 8 kinds answer, one of them twice.
    assert_eq!(count("responses_received"), 64);
    assert_eq!(count("responses_validated"), 56);
    assert_eq!(count("responses_invalid"), 8);
    assert_eq!(md["invalid_reasons"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum::<u64>(), 8);
    assert_eq!(count("duplicates"), 8);
    assert_eq!(count("rows"), 48);
    assert_eq!(md["interrupted"], false);
    assert_eq!(md["resumed"], false);
    let classes = &md["classes"]["v1"];
    for (class, n) in [("mptcp", 24), ("echo", 8), ("tcp", 8), ("closed", 8), ("malformed", 0), ("unreachable", 0)] {
        assert_eq!(classes[class], n, "{class} in {classes}");
    }
    assert_eq!(md["config"]["interface"], "memory");
    assert_eq!(md["config"]["seed"], 7);
    assert_eq!(md["config"]["sender_threads"], config.threads);
    let state = mpscan::scan::state::load(&dir.join("out.csv.state")).unwrap();
    assert!(state.finished && state.sending_complete, "{state:?}");
    assert_eq!((state.sent, state.duplicates, state.targets_done.iter().sum::<u64>()), (64, 8, 64));
    assert_eq!(state.targets_done.len(), config.threads as usize);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_scan_stopped_at_an_exact_probe_resumes_there_and_loses_nothing() {
    for stop_at in [1u64, 20, 63] {
        let dir = scratch(&format!("resume-{stop_at}"));
        let d = dir.to_str().unwrap();
        let args = argv(d, &[]);
        let config1 = config(&args.iter().map(String::as_str).collect::<Vec<_>>());
        // The wire takes `stop_at` probes, then signals the scan, as Ctrl-C would.
        let stop = Arc::new(Stop::default());
        let s = Arc::clone(&stop);
        let wire = MemoryWire::new(respond).limit(stop_at, move || s.signal());
        assert_eq!(run(&config1, &wire, &stop), Outcome::Interrupted);
        assert_eq!(wire.taken(), stop_at);
        let md = metadata(&dir.join("meta.json"));
        assert_eq!(md["interrupted"], true);
        assert_eq!(md["probes_sent"], stop_at);
        let state_path = dir.join("out.csv.state");
        let saved = mpscan::scan::state::load(&state_path).unwrap();
        assert!(!saved.finished && !saved.sending_complete, "{saved:?}");
        assert_eq!((saved.sent, saved.targets_done.clone()), (stop_at, vec![stop_at]));
        let first = rows(&dir.join("out.csv"));

        // Resume: the same command with --resume; the rest of the probes, and only those.
        let state = state_path.to_str().unwrap();
        let args = argv(d, &["--resume", state]);
        let config2 = config(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let wire = MemoryWire::new(respond);
        assert_eq!(run(&config2, &wire, &Stop::default()), Outcome::Finished);
        assert_eq!(wire.taken(), 64 - stop_at, "the resumed scan sends exactly the probes not sent");
        let all = rows(&dir.join("out.csv"));
        assert_eq!(all[..first.len()], first[..], "the first run's rows stay, in place");
        assert_rows_are_the_expected_ones(&all);
        let md = metadata(&dir.join("meta.json"));
        assert_eq!((md["resumed"].clone(), md["interrupted"].clone()), (true.into(), false.into()));
        assert_eq!((md["probes_sent"].clone(), md["rows"].clone()), (64.into(), 48.into()));
        assert_eq!(md["duplicates"], 8);
        assert!(mpscan::scan::state::load(&state_path).unwrap().finished);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn max_results_ends_the_scan_at_exactly_that_many_rows_and_records_why() {
    let dir = scratch("max-results");
    let d = dir.to_str().unwrap();
    let args = argv(d, &["--max-results", "10", "--notes", "memory run", "--user-metadata", r#"{"campaign":7}"#]);
    let config = config(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let stop = Stop::with_max_rows(config.max_results);
    assert_eq!(run(&config, &MemoryWire::new(respond), &stop), Outcome::Limited(Why::MaxResults));
    let rows = rows(&dir.join("out.csv"));
    assert_eq!(rows.len(), 10, "no row past --max-results");
    let md = metadata(&dir.join("meta.json"));
    assert_eq!((md["rows"].clone(), md["end_reason"].clone()), (10.into(), "max-results".into()));
    assert_eq!(md["interrupted"], true, "not every target was probed");
    assert_eq!(md["config"]["max_results"], 10);
    assert_eq!((md["notes"].clone(), md["user_metadata"]["campaign"].clone()), ("memory run".into(), 7.into()));
    assert!(!md["vantage"]["host_name"].as_str().unwrap().is_empty(), "{md}");
    // The scan reached what it was asked for: its state is finished, not to be resumed.
    assert!(mpscan::scan::state::load(&dir.join("out.csv.state")).unwrap().finished);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn max_runtime_stops_sending_cleanly_and_the_scan_resumes_from_there() {
    let dir = scratch("max-runtime");
    let d = dir.to_str().unwrap();
    // 64 probes at 20 per second need 3.2 s; the scan may send for 0.5 s.
    let mut args = argv(d, &["--max-runtime", "0.5"]);
    args[3] = "20".into();
    let config1 = config(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let wire = MemoryWire::new(respond);
    assert_eq!(run(&config1, &wire, &Stop::default()), Outcome::Limited(Why::MaxRuntime));
    let sent = wire.taken();
    assert!(sent > 0 && sent < 64, "{sent} probes sent in 0.5 s at 20 pps");
    let md = metadata(&dir.join("meta.json"));
    assert_eq!((md["end_reason"].clone(), md["interrupted"].clone()), ("max-runtime".into(), true.into()));
    assert_eq!(md["probes_sent"], sent);
    let state_path = dir.join("out.csv.state");
    assert!(!mpscan::scan::state::load(&state_path).unwrap().finished);
    // The same command with --resume (unpaced) sends the rest, and only the rest.
    let state = state_path.to_str().unwrap().to_string();
    let args = argv(d, &["--resume", &state]);
    let config2 = config(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let wire = MemoryWire::new(respond);
    assert_eq!(run(&config2, &wire, &Stop::default()), Outcome::Finished);
    assert_eq!(wire.taken(), 64 - sent);
    assert_rows_are_the_expected_ones(&rows(&dir.join("out.csv")));
    assert_eq!(metadata(&dir.join("meta.json"))["end_reason"], "completed");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `argv` with `-o`/`-m` in `dir` and the result file named `out`.
fn argv_to<'a>(dir: &'a str, out: &str, extra: &[&'a str]) -> Vec<String> {
    let mut v = argv(dir, extra);
    let i = v.iter().position(|a| a == "-o").unwrap();
    v[i + 1] = format!("{dir}/{out}");
    v
}

#[test]
fn json_lines_carry_the_csv_rows_and_resume_like_them() {
    let dir = scratch("jsonl");
    let d = dir.to_str().unwrap();
    let csv_config = config(&argv(d, &[]).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run(&csv_config, &MemoryWire::new(respond), &Stop::default()), Outcome::Finished);
    let csv_rows = rows(&dir.join("out.csv"));

    // Stopped at probe 20 and resumed, as the CSV resume test does.
    let args = argv_to(d, "out.jsonl", &["--output-format", "jsonl"]);
    let stop = Arc::new(Stop::default());
    let s = Arc::clone(&stop);
    let wire = MemoryWire::new(respond).limit(20, move || s.signal());
    let c1 = config(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run(&c1, &wire, &stop), Outcome::Interrupted);
    let state = format!("{d}/out.jsonl.state");
    let args = argv_to(d, "out.jsonl", &["--output-format", "jsonl", "--resume", &state]);
    let c2 = config(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run(&c2, &MemoryWire::new(respond), &Stop::default()), Outcome::Finished);

    let text = std::fs::read_to_string(dir.join("out.jsonl")).unwrap();
    let objs: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let names: Vec<&str> = objs[0].as_object().unwrap().keys().map(String::as_str).collect();
    let mut want: Vec<&str> = mpscan::output::COLUMNS.to_vec();
    want.sort_unstable();
    assert_eq!(names, want, "the CSV's column names");
    assert!(objs[0]["port"].is_u64() && objs[0]["mirrored"].is_boolean(), "typed values: {}", objs[0]);
    let json_rows: Vec<(Ipv4Addr, String)> = objs
        .iter()
        .map(|o| (o["ip"].as_str().unwrap().parse().unwrap(), o["class"].as_str().unwrap().to_string()))
        .collect();
    assert_rows_are_the_expected_ones(&json_rows);
    let (mut a, mut b) = (csv_rows, json_rows);
    a.sort();
    b.sort();
    assert_eq!(a, b, "the same rows as the CSV");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fields_and_classes_select_what_is_written_and_the_metadata_counts_everything() {
    let dir = scratch("select");
    let d = dir.to_str().unwrap();
    let args = argv(d, &["-f", "class,ip", "--classes", "mptcp,echo"]);
    let selected = config(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run(&selected, &MemoryWire::new(respond), &Stop::default()), Outcome::Finished);
    let text = std::fs::read_to_string(dir.join("out.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("class,ip"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 24 + 8, "only mptcp and echo rows");
    assert!(rows.iter().all(|r| r.starts_with("mptcp,127.0.1.") || r.starts_with("echo,127.0.1.")), "{rows:?}");
    let md = metadata(&dir.join("meta.json"));
    assert_eq!(md["rows"], 32);
    assert_eq!((md["classes"]["v1"]["tcp"].clone(), md["classes"]["v1"]["closed"].clone()), (8.into(), 8.into()));
    assert_eq!(md["config"]["output_fields"], serde_json::json!(["class", "ip"]));
    assert_eq!(md["config"]["classes_written"], serde_json::json!(["mptcp", "echo"]));
    // Without port and probe the rows cannot be read back: no resume state is kept.
    assert!(!dir.join("out.csv.state").exists());
    // `-o -` is standard output: no file named "-", no state.
    let c = config(&["-p", "443", "--no-blocklist", "-o", "-", TARGETS]);
    assert_eq!((c.output.clone(), c.state_file.clone()), (None, None));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `mpscan reclassify` of `dir`'s recording into `reclassified.csv`, with its counts.
fn reclassify(dir: &Path, metadata: &Path) -> anyhow::Result<()> {
    mpscan::reclassify::run(&mpscan::reclassify::ReclassifyArgs {
        pcap: dir.join("scan.pcap"),
        metadata: metadata.to_path_buf(),
        output: Some(dir.join("reclassified.csv")),
        counts: Some(dir.join("counts.json")),
    })
}

/// The receive counters of a metadata document (what a re-classification must give again).
fn receive_counts(md: &serde_json::Value) -> Vec<serde_json::Value> {
    [
        "responses_received",
        "responses_validated",
        "responses_invalid",
        "invalid_reasons",
        "duplicates",
        "classes",
        "rows",
    ]
    .iter()
    .map(|k| md[*k].clone())
    .collect()
}

/// `--pcap` records every frame the receiver took (the invalid ones too), and `mpscan
/// reclassify` rebuilds from it and the metadata the scan's rows byte for byte and its counters;
/// also across a resume, which appends to the recording. tshark reads the file when installed.
#[test]
fn pcap_recording_reclassifies_to_the_same_rows_and_counters() {
    for stop_at in [None, Some(20u64)] {
        let dir = scratch(&format!("pcap-{stop_at:?}"));
        let d = dir.to_str().unwrap();
        let pcap = format!("{d}/scan.pcap");
        let args = argv(d, &["--pcap", &pcap, "-P", "2"]);
        let stop = Arc::new(Stop::default());
        let s = Arc::clone(&stop);
        let wire = match stop_at {
            Some(n) => MemoryWire::new(respond).limit(n, move || s.signal()),
            None => MemoryWire::new(respond),
        };
        run(&config(&args.iter().map(String::as_str).collect::<Vec<_>>()), &wire, &stop);
        if stop_at.is_some() {
            let state = format!("{d}/out.csv.state");
            let args = argv(d, &["--pcap", &pcap, "-P", "2", "--resume", &state]);
            let outcome =
                run(&config(&args.iter().map(String::as_str).collect::<Vec<_>>()), &wire_again(), &Stop::default());
            assert_eq!(outcome, Outcome::Finished);
        }
        let md = metadata(&dir.join("meta.json"));
        assert!(md["config"]["seed_note"].as_str().unwrap().contains("forge answers to this scan's probes"));
        reclassify(&dir, &dir.join("meta.json")).unwrap();
        let (scan_header, scan_rows) = sorted_lines(&dir.join("out.csv"));
        let (re_header, re_rows) = sorted_lines(&dir.join("reclassified.csv"));
        assert_eq!(scan_header, re_header);
        assert_eq!(scan_rows.len(), 48, "{stop_at:?}");
        assert_eq!(scan_rows, re_rows, "{stop_at:?}");
        let counts = metadata(&dir.join("counts.json"));
        if stop_at.is_none() {
            // The resumed scan's duplicate count is its state's (answers to probes sent twice
            // around the interruption are counted once there): compared whole only unresumed.
            assert_eq!(receive_counts(&counts), receive_counts(&md));
            assert_eq!(md["responses_received"], 128, "two probes per target, every answer recorded");
        } else {
            assert_eq!(counts["rows"], md["rows"]);
            assert_eq!(counts["classes"], md["classes"]);
            assert_eq!(counts["responses_received"], md["responses_received"]);
        }
        if std::process::Command::new("tshark").arg("--version").output().is_ok() {
            let out = std::process::Command::new("tshark")
                .args(["-r", &pcap, "-T", "fields", "-e", "tcp.srcport"])
                .output()
                .unwrap();
            assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
            let frames = String::from_utf8_lossy(&out.stdout).lines().count() as u64;
            assert_eq!(frames, md["responses_received"].as_u64().unwrap());
            assert!(String::from_utf8_lossy(&out.stdout).lines().any(|l| l == "443"));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// The far end of a resumed scan: the same answers.
fn wire_again() -> MemoryWire {
    MemoryWire::new(respond)
}

/// A recording re-read with another scan's metadata (another seed: another key) is an error in
/// one line, not an empty result, and leaves no output file.
#[test]
fn reclassify_of_another_scans_recording_is_an_error() {
    let dir = scratch("pcap-other");
    let d = dir.to_str().unwrap();
    let pcap = format!("{d}/scan.pcap");
    let args = argv(d, &["--pcap", &pcap]);
    run(&config(&args.iter().map(String::as_str).collect::<Vec<_>>()), &MemoryWire::new(respond), &Stop::default());
    let mut md = metadata(&dir.join("meta.json"));
    md["config"]["seed"] = 8.into();
    let other = dir.join("other.json");
    std::fs::write(&other, md.to_string()).unwrap();
    let e = format!("{:#}", reclassify(&dir, &other).unwrap_err());
    assert!(e.contains("none of its 64 frames answers a probe") && !e.contains('\n'), "{e}");
    assert!(!dir.join("reclassified.csv").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The receive context `mpscan reclassify` builds from the metadata is the scan's own.
#[test]
fn reclassify_context_is_the_scans() {
    let dir = scratch("context");
    for v in ["0", "1", "both"] {
        let args = argv(dir.to_str().unwrap(), &["--mptcp-version", v]);
        let config = config(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let scan = config.receive_context(&config.validator());
        let re = mpscan::reclassify::context_of(&config.record).unwrap();
        assert_eq!((scan.sources(), &scan.versions), (re.sources(), &re.versions));
        for port in [22, 443] {
            for version in &scan.versions {
                let (a, b) = (
                    scan.validator.tag(SCANNER.into(), "127.0.1.9".parse().unwrap(), port, *version),
                    re.validator.tag(SCANNER.into(), "127.0.1.9".parse().unwrap(), port, *version),
                );
                assert_eq!(format!("{a:?}"), format!("{b:?}"));
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--status-updates-file`: a header, then about a line a second (at least one per whole second
/// the scan ran, but one), every line with the header's columns, and a last line whose counts
/// are the metadata's. No timing is asserted beyond what the scan's own clock says.
#[test]
fn status_file_has_a_line_a_second_and_ends_with_the_metadatas_counts() {
    let dir = scratch("status");
    let d = dir.to_str().unwrap();
    let status = format!("{d}/status.csv");
    let mut args = argv(d, &["--status-updates-file", &status]);
    // A cooldown of 3 s: the scan lasts a few seconds.
    let c = args.iter().position(|a| a == "-c").unwrap();
    args[c + 1] = "3".into();
    run(&config(&args.iter().map(String::as_str).collect::<Vec<_>>()), &MemoryWire::new(respond), &Stop::default());
    let md = metadata(&dir.join("meta.json"));
    let text = std::fs::read_to_string(&status).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header.join(","), mpscan::scan::status::HEADER);
    let rows: Vec<BTreeMap<&str, &str>> =
        lines.map(|l| header.iter().copied().zip(l.split(',')).collect::<BTreeMap<_, _>>()).collect();
    assert!(rows.iter().all(|r| r.len() == header.len()), "{text}");
    let t = |k: &str| humantime::parse_rfc3339(md[k].as_str().unwrap()).unwrap();
    let secs = t("end_time").duration_since(t("start_time")).unwrap().as_secs();
    assert!(secs >= 3, "the cooldown alone lasts 3 s");
    assert!(rows.len() as u64 >= secs - 1, "{} lines for {secs} s: {text}", rows.len());
    for r in &rows {
        humantime::parse_rfc3339(r["real-time"]).unwrap();
        r["hit-rate"].parse::<f64>().unwrap();
        r["sent-last-one-sec"].parse::<f64>().unwrap();
    }
    // Every probe leaves within the first second: the first line's rates count them.
    assert_eq!(rows[0]["sent-total"], "64", "{text}");
    assert!(rows[0]["sent-last-one-sec"].parse::<f64>().unwrap() > 0.0, "{text}");
    assert!(rows[0]["sent-avg-per-sec"].parse::<f64>().unwrap() > 0.0, "{text}");
    let last = rows.last().unwrap();
    let n = |k: &str| last[k].parse::<u64>().unwrap();
    assert_eq!(n("sent-total"), md["probes_sent"]);
    assert_eq!(n("received-total"), md["responses_received"]);
    assert_eq!(n("recv-total"), md["responses_validated"]);
    assert_eq!(n("recv-success-total"), md["classes"]["v1"]["mptcp"]);
    assert_eq!(n("pcap-drop-total"), md["kernel_drops"]);
    assert_eq!(n("sendto-fail-total"), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
