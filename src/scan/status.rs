//! `--status-updates-file`: one CSV line a second with the scan's progress, as zmap's
//! `--status-updates-file` writes, for a machine (a dashboard, a job runner) to follow an
//! unattended scan. The monitor thread writes it from the atomic counters, flushing each line,
//! and writes a last line once the receiver has stopped, whose counts are the metadata's.
//!
//! Columns (zmap's names where the meaning is zmap's; README, "Status file"):
//!
//! | column | meaning |
//! |---|---|
//! | `real-time` | UTC wall clock, RFC 3339 (zmap: local time) |
//! | `time-elapsed` | whole seconds since this run started |
//! | `sent-total` | probes handed to the kernel (the metadata's `probes_sent`) |
//! | `sent-last-one-sec` | probes sent per second since the previous line |
//! | `sent-avg-per-sec` | probes sent per second since this run started |
//! | `received-total` | frames read by the receiver (`responses_received`; mpscan's own) |
//! | `recv-total` | frames that validated as answers (`responses_validated`) |
//! | `recv-success-total` | rows of class `mptcp` (zmap: successful answers) |
//! | `hit-rate` | `recv-success-total` per probe sent, in percent (zmap's) |
//! | `pcap-drop-total` | frames the kernel dropped, ring full (`kernel_drops`) |
//! | `sendto-fail-total` | send errors (the sum of `send_errors`) |
//!
//! A resumed scan appends to the file (without a second header), after cutting a line torn by a
//! crash; the totals include the runs before, as the metadata's do.

use super::counters::Counters;
use anyhow::Context as _;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// The header line.
pub const HEADER: &str = "real-time,time-elapsed,sent-total,sent-last-one-sec,sent-avg-per-sec,received-total,\
recv-total,recv-success-total,hit-rate,pcap-drop-total,sendto-fail-total";

/// An open status file.
pub struct StatusFile {
    out: BufWriter<File>,
    start: Instant,
    /// Probes sent when this run started (a resumed scan's carried count).
    sent_at_start: u64,
    last: Option<(Instant, u64)>,
    /// When the next line is due: whole seconds after the start, so that a run of `n` seconds
    /// has `n` lines however late each one is written.
    due: Instant,
}

impl StatusFile {
    /// Opens `path`: creates it with its header, or (`append`, a resumed scan) appends to it,
    /// cutting a torn last line. An unwritable path is a one-line error naming it.
    pub fn open(path: &Path, append: bool) -> anyhow::Result<StatusFile> {
        let what =
            || format!("--status-updates-file {}: cannot write the status file; give a writable path", path.display());
        let mut f =
            OpenOptions::new().read(true).write(true).create(true).truncate(!append).open(path).with_context(what)?;
        let mut old = Vec::new();
        f.read_to_end(&mut old).with_context(what)?;
        let whole = old.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        f.set_len(whole as u64).with_context(what)?;
        f.seek(SeekFrom::End(0)).with_context(what)?;
        let mut out = BufWriter::new(f);
        if whole == 0 {
            writeln!(out, "{HEADER}").and_then(|()| out.flush()).with_context(what)?;
        }
        let start = Instant::now();
        Ok(StatusFile { out, start, sent_at_start: 0, last: None, due: start + Duration::from_secs(1) })
    }

    /// Starts the clock when the scan starts: rates count from here and from the probes already
    /// sent (a resumed scan's), and the first line is due a second later.
    pub fn begin(&mut self, counters: &Counters) {
        self.start = Instant::now();
        self.due = self.start + Duration::from_secs(1);
        self.sent_at_start = Counters::get(&counters.sent);
        self.last = Some((self.start, self.sent_at_start));
    }

    /// Writes one line from `counters` and flushes it.
    pub fn line(&mut self, counters: &Counters) -> std::io::Result<()> {
        let now = Instant::now();
        let sent = Counters::get(&counters.sent);
        let (last_t, last_sent) = self.last.unwrap_or((self.start, self.sent_at_start));
        let per_sec = |n: u64, since: Instant| n as f64 / now.duration_since(since).as_secs_f64().max(1e-3);
        let hits = Counters::get(&counters.hits);
        let hit_rate = if sent == 0 { 0.0 } else { hits as f64 * 100.0 / sent as f64 };
        let send_errors: u64 = counters.link.report().send_errors.values().sum();
        writeln!(
            self.out,
            "{},{},{},{:.0},{:.0},{},{},{},{:.6},{},{}",
            humantime::format_rfc3339_seconds(SystemTime::now()),
            now.duration_since(self.start).as_secs(),
            sent,
            per_sec(sent.saturating_sub(last_sent), last_t),
            per_sec(sent.saturating_sub(self.sent_at_start), self.start),
            Counters::get(&counters.received),
            Counters::get(&counters.validated),
            hits,
            hit_rate,
            Counters::get(&counters.kernel_drops),
            send_errors,
        )?;
        self.out.flush()?;
        self.last = Some((now, sent));
        Ok(())
    }

    /// Whether the next line is due (and if so, schedules the one after it).
    pub fn due(&mut self) -> bool {
        let now = Instant::now();
        if now < self.due {
            return false;
        }
        while self.due <= now {
            self.due += Duration::from_secs(1);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lines_and_appending_after_a_torn_line() {
        let dir = std::env::temp_dir().join(format!("mpscan-status-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("status.csv");
        let c = Counters::new(1);
        let mut s = StatusFile::open(&p, false).unwrap();
        s.begin(&c);
        Counters::add(&c.sent, 200);
        Counters::add(&c.hits, 5);
        s.line(&c).unwrap();
        // The probes since the start count in the rates (not only those since a first line).
        let first = std::fs::read_to_string(&p).unwrap();
        let f: Vec<&str> = first.lines().nth(1).unwrap().split(',').collect();
        assert!(f[3].parse::<f64>().unwrap() > 0.0 && f[4].parse::<f64>().unwrap() > 0.0, "{first}");
        drop(s);
        std::fs::OpenOptions::new().append(true).open(&p).unwrap().write_all(b"2026-01-01T00:00:00Z,3,2").unwrap();
        let mut s = StatusFile::open(&p, true).unwrap();
        s.line(&c).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], HEADER);
        let cols = HEADER.split(',').count();
        for l in &lines[1..] {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), cols, "{l}");
            assert_eq!(f[2], "200");
            assert_eq!(f[8].parse::<f64>().unwrap(), 2.5);
        }
        // A new scan starts the file again.
        drop(StatusFile::open(&p, false).unwrap());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), format!("{HEADER}\n"));
        let e = StatusFile::open(&dir.join("no/such/dir"), false).err().unwrap();
        assert!(format!("{e:#}").starts_with("--status-updates-file ") && !format!("{e:#}").contains('\n'));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
