//! The duplicate storm's frame for `scripts/bench`: the one valid SYN-ACK that the sink repeats
//! at the scanner, built with the wire layer's `FrameRepr` (the one frame builder) and printed as
//! a trafgen packet configuration.
//!
//! ```text
//! cargo run --release --example storm_frame -- DST_MAC SRC_MAC SPORT SEQ
//! ```
//!
//! The answer comes from 198.18.0.1:443 to the scanner's 192.0.2.2:`SPORT` and acknowledges
//! `SEQ` + 1 (the probe's sequence number, from `mpscan scan --dry-run`); TTL 64, DF, ident 1,
//! window 65535, no options.

use mpscan::wire::{FrameRepr, IpRepr, TcpFlags, TcpRepr};
use std::net::Ipv4Addr;
use std::process::ExitCode;

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    mpscan::net::route::parse_mac(s).ok()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match &args[..] {
        [dst, src, sport, seq] => {
            (|| Some((parse_mac(dst)?, parse_mac(src)?, sport.parse::<u16>().ok()?, seq.parse::<u32>().ok()?)))()
        }
        _ => None,
    };
    let Some((dst_mac, src_mac, sport, seq)) = parsed else {
        eprintln!("usage: storm_frame DST_MAC SRC_MAC SPORT SEQ");
        return ExitCode::from(2);
    };
    let tcp = TcpRepr {
        src_port: 443,
        dst_port: sport,
        seq: 12345,
        ack: seq.wrapping_add(1),
        flags: TcpFlags(TcpFlags::SYN | TcpFlags::ACK),
        window: 65535,
        options: &[],
        payload: &[],
    };
    let mut frame = FrameRepr::tcp(Ipv4Addr::new(198, 18, 0, 1).into(), Ipv4Addr::new(192, 0, 2, 2).into(), 64, tcp)
        .with_macs(src_mac, dst_mac);
    if let IpRepr::V4(ip) = &mut frame.ip {
        ip.ident = 1;
        ip.dont_frag = true;
    }
    let bytes: Vec<String> = frame.to_vec().iter().map(|b| format!("0x{b:02x}")).collect();
    println!("{{ {} }}", bytes.join(", "));
    ExitCode::SUCCESS
}
