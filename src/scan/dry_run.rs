//! `--dry-run`: a transmit back end that prints each probe instead of sending it, decoded back
//! from the frame that would have gone out (so the printed line is proof the frame parses).
//!
//! One line per probe, space-separated:
//! `<ip> <port> <probe> sport=<n> seq=<n> len=<frame bytes> options=<hex> frame=<hex>`

use super::config::ScanConfig;
use super::counters::Counters;
use crate::net::{Transmit, TxStats};
use crate::wire::{EtherType, EthernetFrame, Ipv4Packet, Ipv6Packet, TcpPacket};
use std::io::Write;
use std::sync::atomic::AtomicBool;

/// Prints every probe of the scan `config`, thread by thread, to its output file (standard
/// output without `-o`). Needs no root and sends nothing.
pub fn print(config: &ScanConfig) -> anyhow::Result<()> {
    let out: Box<dyn Write> = match &config.output {
        Some(p) => {
            Box::new(std::fs::File::create(p).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", p.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut tx = DryRunTx::new(std::io::BufWriter::new(out));
    let (probing, counters, never) = (config.probing(), Counters::new(config.threads), AtomicBool::new(false));
    for t in 0..config.threads {
        let mut stream = config.probe_stream(&probing, t, 0, 0)?;
        super::send::send_loop(&mut tx, &mut stream, 0, &counters, &never, t as usize)?;
    }
    Ok(())
}

/// Prints probes to a writer.
pub struct DryRunTx<W: Write> {
    out: W,
    buf: Vec<u8>,
    sent: u64,
    /// Print the whole frame in hex too.
    pub with_frame: bool,
}

impl<W: Write> DryRunTx<W> {
    /// A printer to `out`.
    pub fn new(out: W) -> Self {
        DryRunTx { out, buf: vec![0u8; 256], sent: 0, with_frame: true }
    }

    fn print(&mut self, n: usize) -> std::io::Result<()> {
        let frame = &self.buf[..n];
        let eth = EthernetFrame::new_checked(frame).map_err(std::io::Error::other)?;
        let (dst, seg) = match eth.ethertype() {
            EtherType::Ipv4 => {
                let ip = Ipv4Packet::new_checked(&frame[14..]).map_err(std::io::Error::other)?;
                (ip.dst_addr().to_string(), ip.into_payload())
            }
            _ => {
                let ip = Ipv6Packet::new_checked(&frame[14..]).map_err(std::io::Error::other)?;
                (ip.dst_addr().to_string(), ip.into_payload())
            }
        };
        let t = TcpPacket::new_checked(seg).map_err(std::io::Error::other)?;
        let probe = t
            .option_iter()
            .find_map(|o| match o {
                Ok(crate::wire::TcpOption::MpCapable(m)) => Some(if m.version == 0 { "v0" } else { "v1" }),
                _ => None,
            })
            .unwrap_or("none");
        write!(
            self.out,
            "{dst} {} {probe} sport={} seq={} len={n} options={}",
            t.dst_port(),
            t.src_port(),
            t.seq(),
            crate::wire::to_hex(t.options())
        )?;
        if self.with_frame {
            write!(self.out, " frame={}", crate::wire::to_hex(frame))?;
        }
        writeln!(self.out)
    }
}

impl<W: Write> Transmit for DryRunTx<W> {
    fn send_batch(&mut self, n: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize) -> std::io::Result<usize> {
        let mut done = 0;
        for _ in 0..n {
            let len = fill(&mut self.buf);
            if len == 0 {
                break;
            }
            self.print(len)?;
            done += 1;
        }
        self.sent += done as u64;
        Ok(done)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    fn stats(&self) -> TxStats {
        TxStats { sent: self.sent, ..Default::default() }
    }
}
