//! Classic libpcap files as transmit and receive back ends, so that the whole pipeline can run
//! without root and its frames can be checked with `tshark -r`.
//!
//! File layout (libpcap, LINKTYPE_ETHERNET = 1): a 24-byte global header
//! `magic u32 | version 2.4 | thiszone i32 | sigfigs u32 | snaplen u32 | linktype u32`, then per
//! frame a 16-byte record header `ts_sec u32 | ts_usec u32 | incl_len u32 | orig_len u32` and the
//! frame bytes. The writer writes little-endian microsecond files; the reader also takes
//! big-endian and nanosecond ones.

use super::{Receive, RxStats, Transmit, TxStats, ETH_HEADER_LEN};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Magic of a microsecond-resolution pcap file, as a native u32.
const MAGIC_USEC: u32 = 0xa1b2_c3d4;
/// Magic of a nanosecond-resolution pcap file.
const MAGIC_NSEC: u32 = 0xa1b2_3c4d;
/// LINKTYPE_ETHERNET.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Largest frame the writer accepts and the reader believes, in bytes.
pub const SNAPLEN: u32 = 65_535;
/// Most frames one [`PcapReader::recv_batch`] call hands out.
const READ_BATCH: usize = 1024;

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// A [`Transmit`] that appends frames to a pcap file, timestamped with the wall clock.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    slot: Vec<u8>,
    stats: TxStats,
}

impl PcapWriter<BufWriter<File>> {
    /// Creates (truncates) the file at `path` and writes the global header.
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let f = File::create(path)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display())))?;
        Self::new(BufWriter::with_capacity(1 << 20, f))
    }
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header to `out`; frames follow with each batch.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&MAGIC_USEC.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone = 0, sigfigs = 0
        h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out, slot: vec![0; SNAPLEN as usize], stats: TxStats::default() })
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }

    /// Appends one record: `frame`, stamped `at` (to the microsecond). The receive loop's
    /// `--pcap` recording calls it once per frame; the transmit back end once per probe.
    pub fn record(&mut self, at: SystemTime, frame: &[u8]) -> io::Result<()> {
        let now = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        let len = frame.len().min(SNAPLEN as usize);
        let mut rec = [0u8; 16];
        // pcap's 32-bit seconds run out in 2106; wrap rather than fail.
        rec[0..4].copy_from_slice(&(now.as_secs() as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&now.subsec_micros().to_le_bytes());
        rec[8..12].copy_from_slice(&(len as u32).to_le_bytes());
        rec[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(&frame[..len])
    }

    /// Pushes buffered records to the underlying writer.
    pub fn flush_records(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl PcapWriter<BufWriter<File>> {
    /// Opens the pcap file of a resumed scan to append to it: checks that its global header is
    /// one this writer writes (little-endian, microseconds, Ethernet), cuts a record torn by a
    /// crash (as the result CSV's torn line is cut), and appends after the last whole record.
    /// A missing or empty file (killed before its header reached the disk) starts afresh.
    pub fn append(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let ctx = |e: io::Error| io::Error::new(e.kind(), format!("cannot append to {}: {e}", path.display()));
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Self::create(path),
            Err(e) => return Err(ctx(e)),
        };
        if bytes.len() < 24 {
            return Self::create(path);
        }
        let whole = whole_records(&bytes).map_err(ctx)?;
        let f = std::fs::OpenOptions::new().write(true).open(path).map_err(ctx)?;
        f.set_len(whole as u64).map_err(ctx)?;
        let mut f = f;
        std::io::Seek::seek(&mut f, io::SeekFrom::End(0)).map_err(ctx)?;
        Ok(PcapWriter {
            out: BufWriter::with_capacity(1 << 20, f),
            slot: vec![0; SNAPLEN as usize],
            stats: TxStats::default(),
        })
    }
}

/// The length of `bytes` (a pcap file this writer wrote, at least its 24-byte header) up to the
/// end of its last whole record; an error if the header is not this writer's.
fn whole_records(bytes: &[u8]) -> io::Result<usize> {
    let header = PcapWriter::new(Vec::new())?.into_inner()?;
    if bytes[..24] != header[..] {
        return Err(invalid("not a pcap file written by mpscan --pcap (little-endian, microseconds, Ethernet)".into()));
    }
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let incl = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        if incl > SNAPLEN as usize || at + 16 + incl > bytes.len() {
            break;
        }
        at += 16 + incl;
    }
    Ok(at)
}

impl<W: Write> Transmit for PcapWriter<W> {
    fn send_batch(&mut self, n: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize) -> io::Result<usize> {
        let now = SystemTime::now();
        let mut queued = 0;
        for _ in 0..n {
            let len = fill(&mut self.slot);
            if len == 0 {
                break;
            }
            if !(ETH_HEADER_LEN..=self.slot.len()).contains(&len) {
                self.stats.failed += 1;
                continue;
            }
            let frame = std::mem::take(&mut self.slot);
            let r = self.record(now, &frame[..len]);
            self.slot = frame;
            r?;
            queued += 1;
        }
        self.stats.queued += queued as u64;
        self.stats.sent += queued as u64;
        Ok(queued)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn stats(&self) -> TxStats {
        self.stats
    }
}

/// A [`Receive`] that plays back the frames of a pcap file (Ethernet link type only). Returns 0
/// frames once the file is exhausted, without waiting.
#[derive(Debug)]
pub struct PcapReader<R: Read> {
    input: R,
    big_endian: bool,
    nanos: bool,
    buf: Vec<u8>,
    /// The timestamp of the record in `buf`.
    at: SystemTime,
    done: bool,
    stats: RxStats,
}

impl PcapReader<BufReader<File>> {
    /// Opens the file at `path` and checks its global header.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let f =
            File::open(path).map_err(|e| io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display())))?;
        Self::new(BufReader::new(f))
    }
}

impl<R: Read> PcapReader<R> {
    /// Reads and checks the global header of `input`.
    pub fn new(mut input: R) -> io::Result<Self> {
        let mut h = [0u8; 24];
        input.read_exact(&mut h).map_err(|_| invalid("pcap file shorter than its 24-byte header".into()))?;
        let magic_le = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let magic_be = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let (big_endian, nanos) = match (magic_le, magic_be) {
            (MAGIC_USEC, _) => (false, false),
            (MAGIC_NSEC, _) => (false, true),
            (_, MAGIC_USEC) => (true, false),
            (_, MAGIC_NSEC) => (true, true),
            _ => return Err(invalid(format!("not a pcap file (magic {magic_le:#010x}); pcapng is not supported"))),
        };
        let u32_at = |o: usize| {
            let b = [h[o], h[o + 1], h[o + 2], h[o + 3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let linktype = u32_at(20);
        if linktype != LINKTYPE_ETHERNET {
            return Err(invalid(format!("pcap link type {linktype} is not Ethernet (1)")));
        }
        Ok(PcapReader {
            input,
            big_endian,
            nanos,
            buf: Vec::with_capacity(2048),
            at: UNIX_EPOCH,
            done: false,
            stats: RxStats::default(),
        })
    }

    /// True if the file's timestamps are in nanoseconds.
    pub fn is_nanosecond(&self) -> bool {
        self.nanos
    }

    /// The next frame and the time it was recorded, `None` at a clean end of the file
    /// (`mpscan reclassify` reads a scan's `--pcap` recording with it).
    pub fn next_frame(&mut self) -> io::Result<Option<(SystemTime, &[u8])>> {
        if self.done || !self.next_record()? {
            self.done = true;
            return Ok(None);
        }
        self.stats.received += 1;
        self.stats.handled += 1;
        Ok(Some((self.at, &self.buf)))
    }

    /// Reads the next record into `self.buf`; `Ok(false)` at a clean end of file.
    fn next_record(&mut self) -> io::Result<bool> {
        let mut rec = [0u8; 16];
        let mut got = 0;
        while got < rec.len() {
            match self.input.read(&mut rec[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => return Err(invalid("pcap file ends inside a record header".into())),
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let u32_at = |o: usize| {
            let b = [rec[o], rec[o + 1], rec[o + 2], rec[o + 3]];
            if self.big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let incl = u32_at(8);
        let sub = u64::from(u32_at(4));
        let sub = if self.nanos { Duration::from_nanos(sub) } else { Duration::from_micros(sub) };
        self.at = UNIX_EPOCH + Duration::from_secs(u64::from(u32_at(0))) + sub;
        if incl > SNAPLEN * 4 {
            return Err(invalid(format!("pcap record of {incl} bytes is implausible (corrupt file?)")));
        }
        self.buf.resize(incl as usize, 0);
        self.input
            .read_exact(&mut self.buf)
            .map_err(|_| invalid(format!("pcap file ends inside a {incl}-byte frame")))?;
        Ok(true)
    }
}

impl<R: Read> Receive for PcapReader<R> {
    fn recv_batch(&mut self, _timeout: Duration, handle: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        let mut n = 0;
        while !self.done && n < READ_BATCH {
            if !self.next_record()? {
                self.done = true;
                break;
            }
            handle(&self.buf);
            n += 1;
        }
        self.stats.received += n as u64;
        self.stats.handled += n as u64;
        Ok(n)
    }

    fn stats(&mut self) -> RxStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(i: u8, len: usize) -> Vec<u8> {
        let mut f = vec![i; len];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f
    }

    fn write(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let mut it = frames.iter();
        let n = w
            .send_batch(frames.len() + 1, &mut |slot| match it.next() {
                Some(f) => {
                    slot[..f.len()].copy_from_slice(f);
                    f.len()
                }
                None => 0,
            })
            .unwrap();
        assert_eq!(n, frames.len());
        w.into_inner().unwrap()
    }

    #[test]
    fn header_bytes() {
        let bytes = write(&[]);
        assert_eq!(bytes, [0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn record_layout() {
        let bytes = write(&[frame(7, 60)]);
        assert_eq!(bytes.len(), 24 + 16 + 60);
        assert_eq!(&bytes[24 + 8..24 + 16], &[60, 0, 0, 0, 60, 0, 0, 0]);
        let usec = u32::from_le_bytes(bytes[28..32].try_into().unwrap());
        assert!(usec < 1_000_000);
        assert_eq!(&bytes[40..], &frame(7, 60)[..]);
    }

    #[test]
    fn round_trip() {
        let frames = vec![frame(1, 54), frame(2, 74), frame(3, 1514)];
        let bytes = write(&frames);
        let mut r = PcapReader::new(&bytes[..]).unwrap();
        let mut seen = Vec::new();
        assert_eq!(r.recv_batch(Duration::ZERO, &mut |f| seen.push(f.to_vec())).unwrap(), 3);
        assert_eq!(seen, frames);
        assert_eq!(r.recv_batch(Duration::ZERO, &mut |_| panic!("eof")).unwrap(), 0);
        assert_eq!(r.stats().handled, 3);
    }

    #[test]
    fn recorded_times_come_back_to_the_microsecond() {
        let at = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.record(at, &frame(4, 60)).unwrap();
        let bytes = w.into_inner().unwrap();
        let mut r = PcapReader::new(&bytes[..]).unwrap();
        let (t, f) = r.next_frame().unwrap().unwrap();
        assert_eq!(t, UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_000));
        assert_eq!(f, &frame(4, 60)[..]);
        assert!(r.next_frame().unwrap().is_none());
    }

    #[test]
    fn append_cuts_a_torn_record_and_refuses_other_files() {
        let dir = std::env::temp_dir().join(format!("mpscan-pcap-append-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("rec.pcap");
        let mut w = PcapWriter::create(&p).unwrap();
        w.record(SystemTime::now(), &frame(1, 60)).unwrap();
        drop(w.into_inner().unwrap());
        // A crash in the middle of the second record.
        let mut torn = std::fs::read(&p).unwrap();
        torn.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 60, 0, 0, 0, 60, 0, 0, 0, 9, 9]);
        std::fs::write(&p, &torn).unwrap();
        let mut w = PcapWriter::append(&p).unwrap();
        w.record(SystemTime::now(), &frame(2, 54)).unwrap();
        drop(w.into_inner().unwrap());
        let mut r = PcapReader::open(&p).unwrap();
        let mut seen = Vec::new();
        while let Some((_, f)) = r.next_frame().unwrap() {
            seen.push(f.to_vec());
        }
        assert_eq!(seen, vec![frame(1, 60), frame(2, 54)]);
        // A missing file starts afresh; a file of another writer is refused in one line.
        let fresh = dir.join("fresh.pcap");
        drop(PcapWriter::append(&fresh).unwrap().into_inner().unwrap());
        assert_eq!(std::fs::read(&fresh).unwrap().len(), 24);
        std::fs::write(&p, [0u8; 40]).unwrap();
        let e = PcapWriter::append(&p).unwrap_err().to_string();
        assert!(e.contains("not a pcap file written by mpscan") && !e.contains('\n'), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn big_endian_nanosecond_file() {
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC_NSEC.to_be_bytes());
        b.extend_from_slice(&[0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 1]);
        b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 14, 0, 0, 0, 14]);
        b.extend_from_slice(&[9; 14]);
        let mut r = PcapReader::new(&b[..]).unwrap();
        assert!(r.is_nanosecond());
        let mut seen = Vec::new();
        r.recv_batch(Duration::ZERO, &mut |f| seen.push(f.to_vec())).unwrap();
        assert_eq!(seen, vec![vec![9; 14]]);
    }

    #[test]
    fn bad_files_are_one_line_errors() {
        let cases: Vec<Vec<u8>> = vec![vec![], vec![0; 24], {
            let mut h = write(&[]);
            h[20] = 101; // raw IP link type
            h
        }];
        for c in cases {
            let e = PcapReader::new(&c[..]).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            assert!(!e.to_string().contains('\n'));
        }
        // Truncated record header and truncated frame.
        let full = write(&[frame(1, 60)]);
        for cut in [24 + 5, 24 + 16 + 10] {
            let mut r = PcapReader::new(&full[..cut]).unwrap();
            assert!(r.recv_batch(Duration::ZERO, &mut |_| {}).is_err(), "cut {cut}");
        }
        // Absurd record length.
        let mut huge = write(&[frame(1, 60)]);
        huge[24 + 8..24 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut r = PcapReader::new(&huge[..]).unwrap();
        assert!(r.recv_batch(Duration::ZERO, &mut |_| {}).is_err());
    }

    #[test]
    fn invalid_lengths_counted_not_written() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let mut calls = 0;
        let n = w
            .send_batch(2, &mut |_| {
                calls += 1;
                if calls == 1 {
                    5
                } else {
                    60
                }
            })
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(w.stats().failed, 1);
        assert_eq!(w.into_inner().unwrap().len(), 24 + 16 + 60);
    }

    /// If tshark is installed, it must read our file and see the frame we wrote.
    #[test]
    fn tshark_reads_our_file() {
        if std::process::Command::new("tshark").arg("--version").output().is_err() {
            eprintln!("tshark not installed: skipping");
            return;
        }
        // An IPv4 TCP SYN 192.0.2.1:40000 -> 192.0.2.2:443.
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        f.extend_from_slice(&[0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2]);
        f.extend_from_slice(&[0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
        let path = std::env::temp_dir().join(format!("mpscan-pcap-test-{}.pcap", std::process::id()));
        std::fs::write(&path, write(&[f])).unwrap();
        let out = std::process::Command::new("tshark")
            .args(["-r"])
            .arg(&path)
            .args(["-T", "fields", "-e", "ip.dst", "-e", "tcp.dstport", "-e", "tcp.flags.syn"])
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "tshark failed: {}", String::from_utf8_lossy(&out.stderr));
        let fields: Vec<&str> = text.trim().split('\t').collect();
        assert_eq!(fields[..2], ["192.0.2.2", "443"], "{text}");
        assert!(fields[2] == "1" || fields[2] == "True", "{text}");
    }
}
