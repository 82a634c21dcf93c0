//! Writes the seed corpora of both fuzz targets: a handful of real answers built by code, each
//! named `EXPECTED--what` where EXPECTED is the class the receive path must give it (or
//! `rejected`), so that `tests/fuzz_replay.rs` can replay them and check the outcome.
//!
//! `cargo run --bin gen_corpus -- DIR` writes `DIR/frame/*` (raw Ethernet frames) and
//! `DIR/syn_ack/*` (recipes, see `harness::RECIPE_HEADER`). The frames reproduce what the lab's
//! populations send (see `mpscan lab probe`): a Linux 6.x MPTCP listener, a v0 server, an
//! echoing box, a mirroring box, a SYN proxy, a closed port and an ICMP-rejecting router.
use mpscan_fuzz::harness::{self, build, probe_options, recipe};
use std::path::PathBuf;

/// `ctl` bits (see the recipe layout).
const V6: u8 = 1;
const V0: u8 = 2;
const RST: u8 = 4;
const ICMP: u8 = 8;

fn linux_syn_ack(ctl: u8, host: u8, mpc: &[u8]) -> Vec<u8> {
    // MSS 1460, SACK-perm, timestamps (TSval 7, TSecr = our TSval), NOP, wscale 7, MP_CAPABLE.
    let probe = probe_options(ctl, host);
    let mut o = vec![0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0, 0, 0, 7];
    o.extend_from_slice(&probe[8..12]);
    o.extend_from_slice(&[0x01, 0x03, 0x03, 0x07]);
    o.extend_from_slice(mpc);
    while o.len() % 4 != 0 {
        o.push(1);
    }
    recipe(ctl, host, &o)
}

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "seeds".into()));
    let key = [0x1e, 0x0c, 0x01, 0x01, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0x00, 0x01];
    let v0key = [0x1e, 0x0c, 0x00, 0x81, 0x0b, 0xad, 0xf0, 0x0d, 0x12, 0x34, 0x56, 0x78];
    let recipes: Vec<(&str, Vec<u8>)> = vec![
        ("mptcp--linux-v1-ipv4", linux_syn_ack(0, 1, &key)),
        ("mptcp--linux-v1-ipv6", linux_syn_ack(V6, 2, &key)),
        ("mptcp--load-balanced-c-flag", linux_syn_ack(0, 3, &[0x1e, 0x0c, 0x01, 0x21, 1, 2, 3, 4, 5, 6, 7, 8])),
        ("mptcp--v0-server", linux_syn_ack(V0, 4, &v0key)),
        ("echo--v1-option-copied", linux_syn_ack(0, 5, &[0x1e, 0x04, 0x01, 0x01])),
        ("echo--v0-key-copied", {
            let p = probe_options(V0, 6);
            linux_syn_ack(V0, 6, &p[20..32])
        }),
        ("echo--mirror-v1", recipe(0, 7, &probe_options(0, 7))),
        ("echo--mirror-v0-ipv6", recipe(V6 | V0, 8, &probe_options(V6 | V0, 8))),
        (
            "tcp--synproxy-stripped",
            recipe(0, 9, &[0x02, 0x04, 0x05, 0xb4, 0x01, 0x01, 0x04, 0x02, 0x01, 0x03, 0x03, 0x07]),
        ),
        ("malformed--mp-join", linux_syn_ack(0, 10, &[0x1e, 0x0c, 0x10, 0x00, 1, 2, 3, 4, 5, 6, 7, 8])),
        ("malformed--zero-length-mptcp", recipe(0, 11, &[0x01, 0x01, 0x1e, 0x00])),
        ("closed--rst", recipe(RST, 12, &[])),
        ("closed--rst-ipv6-v0", recipe(RST | V6 | V0, 13, &[])),
        ("unreachable--icmp-admin-prohibited", recipe(ICMP, 14, &[])),
        ("unreachable--icmpv6-whole-probe", {
            let mut r = recipe(ICMP | V6, 15, &[]);
            r[6] = 255;
            r
        }),
        ("rejected--wrong-ack", {
            let mut r = linux_syn_ack(0x40, 16, &key);
            r[8] = 1;
            r
        }),
    ];
    let ctx = harness::context();
    for target in ["frame", "syn_ack"] {
        std::fs::create_dir_all(dir.join(target))?;
    }
    for (name, r) in &recipes {
        let frame = build(r).expect("a whole recipe");
        // Every seed must come out as its name says, or the seed is wrong.
        let expected = name.split("--").next().unwrap();
        let got = match harness::frame(&ctx, &frame) {
            harness::Outcome::Rejected(_) => "rejected".to_string(),
            harness::Outcome::Row(c, _) => c.label().to_string(),
        };
        assert_eq!(got, expected, "seed {name}");
        std::fs::write(dir.join("syn_ack").join(name), r)?;
        std::fs::write(dir.join("frame").join(name), &frame)?;
    }
    eprintln!("wrote {} seeds per target into {}", recipes.len(), dir.display());
    Ok(())
}
