//! `mpscan verify`: the second stage. A SYN-ACK with MP_CAPABLE is a claim; a connection is
//! proof. For each scan row of the chosen classes, verify opens a real connection with the Linux
//! kernel's own MPTCP stack (an IPPROTO_MPTCP socket), runs a small application exchange over it
//! (HTTP HEAD or a TLS ClientHello), waits briefly for the server's ADD_ADDR, and reports whether
//! MPTCP held, what the kernel saw (fallback, checksum, subflows, announced addresses), and a
//! verdict: `confirmed`, `fallback`, `no-data`, `refused`, `unreachable`, `timeout` or `error`.
//!
//! Linux speaks MPTCP v1 only: a v0-only server cannot be confirmed by it and shows as
//! `fallback`; the summary says so.
//!
//! Load-balanced deployments show themselves by the C flag in the scan's SYN-ACK (do not join
//! this address) together with an ADD_ADDR announcing the server's own address, which the
//! kernel joins if its path manager accepts ADD_ADDRs (`ip mptcp limits set subflows 2
//! add_addr_accepted 2`). Verify itself connects only to the rows' addresses.
//!
//! * [`input`]: reading the scan CSV and choosing rows.
//! * [`app`]: the HTTP and TLS exchanges and the recognisers of their answers.
//! * [`sys`], [`info`]: the MPTCP socket options, and safe readers of what they return.
//! * [`pm_events`]: every ADD_ADDR, from the kernel's MPTCP path-manager netlink events.
//! * [`conn`]: one attempt.
//! * [`verdict`]: what an attempt means.
//! * [`output`]: the verified CSV and the summary.

pub mod app;
pub mod conn;
pub mod info;
pub mod input;
pub mod output;
pub mod pm_events;
pub mod sys;
pub mod verdict;

use crate::scan::args::Classes;
use anyhow::{bail, Context};
use app::{App, AppArg};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mpscan_schema::Class;
use rand::RngCore;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `mpscan verify SCAN.csv [OPTIONS]`
#[derive(Debug, Args)]
#[command(after_help = "Linux speaks MPTCP v1 only: v0-only servers show as `fallback`.\n\n\
    To see the addresses load balancers announce (ADD_ADDR), this host's path manager must accept them:\n  \
    ip mptcp limits set subflows 2 add_addr_accepted 2\n\n\
    EXAMPLES:\n  \
    mpscan verify scan.csv -o verified.csv\n  \
    mpscan verify scan.csv --classes all --app none --concurrency 500 --rate 200")]
pub struct VerifyArgs {
    /// The scan's result CSV or JSON lines (`mpscan scan -o`); `-` reads them from standard
    /// input (`mpscan scan -o - ... | mpscan verify -`).
    #[arg(value_name = "SCAN.csv")]
    pub input: PathBuf,

    /// Where to write the verified CSV (default: standard output).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Scan classes to verify, comma-separated (mptcp, echo, malformed, tcp, closed, unreachable) or `all`.
    #[arg(long, default_value = "mptcp,echo,malformed", value_parser = |s: &str| Class::parse_list(s).map(Classes))]
    pub classes: Classes,

    /// Connections in flight at most.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub concurrency: usize,

    /// Seconds allowed for the connect, and again for the application exchange.
    #[arg(long, default_value_t = 5.0, value_name = "S")]
    pub timeout: f64,

    /// New connections per second at most (0: no limit beyond --concurrency).
    #[arg(long, default_value_t = 100.0, value_name = "R")]
    pub rate: f64,

    /// Application exchange: auto (80/8080 HTTP, 443/8443 TLS, other ports none), http, tls or none.
    #[arg(long, value_enum, default_value = "auto")]
    pub app: AppArg,

    /// Milliseconds after the connect to wait for the server's ADD_ADDR on MPTCP connections.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub add_addr_wait: u64,

    /// No progress output and no summary.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// The checked configuration `run` works from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Connections in flight at most (at least 1).
    pub concurrency: usize,
    /// New connections per second; `None` for no limit.
    pub rate: Option<f64>,
    /// The per-attempt timing.
    pub timing: conn::Timing,
    /// The exchange choice.
    pub app: AppArg,
}

impl Config {
    /// Checks the arguments: one-line errors that say what to fix.
    pub fn resolve(a: &VerifyArgs) -> anyhow::Result<Config> {
        if a.concurrency == 0 || a.concurrency > 100_000 {
            bail!("--concurrency must be between 1 and 100000 (got {})", a.concurrency);
        }
        if !(a.timeout.is_finite() && a.timeout > 0.0 && a.timeout <= 600.0) {
            bail!("--timeout must be a number of seconds above 0 and at most 600 (got {})", a.timeout);
        }
        if !(a.rate.is_finite() && a.rate >= 0.0) {
            bail!("--rate must be a number of connections per second, 0 for no limit (got {})", a.rate);
        }
        if a.add_addr_wait > 60_000 {
            bail!("--add-addr-wait is in milliseconds and at most 60000 (got {})", a.add_addr_wait);
        }
        Ok(Config {
            concurrency: a.concurrency,
            rate: (a.rate > 0.0).then_some(a.rate),
            timing: conn::Timing {
                timeout: Duration::from_secs_f64(a.timeout),
                add_addr_wait: Duration::from_millis(a.add_addr_wait),
            },
            app: a.app,
        })
    }
}

/// Progress counters shared by the attempts and the reporter.
#[derive(Debug, Default)]
struct Progress {
    done: AtomicU64,
    confirmed: AtomicU64,
}

/// Runs every target's attempt under the concurrency and rate limits; stops launching new ones
/// when `stop` is set. Returns one slot per target (`None`: not tried).
async fn run_all(
    targets: &[SocketAddr],
    cfg: Config,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
    events: Option<Arc<pm_events::Announcements>>,
) -> Vec<Option<conn::Attempt>> {
    let results: Arc<Mutex<Vec<Option<conn::Attempt>>>> = Arc::new(Mutex::new(vec![None; targets.len()]));
    let sem = Arc::new(tokio::sync::Semaphore::new(cfg.concurrency));
    let mut ticker = cfg.rate.map(|r| {
        let mut i = tokio::time::interval(Duration::from_secs_f64(1.0 / r));
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    let mut rng = rand::thread_rng();
    for (idx, &to) in targets.iter().enumerate() {
        if stop.load(Relaxed) {
            break;
        }
        let permit = sem.clone().acquire_owned().await.expect("the semaphore is never closed");
        if let Some(t) = &mut ticker {
            t.tick().await;
        }
        // A signal may have come while this attempt waited for its turn.
        if stop.load(Relaxed) {
            break;
        }
        let mut random = [0u8; 96];
        rng.fill_bytes(&mut random);
        let app = App::choose(cfg.app, to.port());
        let (results, progress, events) = (results.clone(), progress.clone(), events.clone());
        tokio::spawn(async move {
            let a = conn::attempt(to, app, cfg.timing, random, events.as_deref()).await;
            if a.obs.verdict().0 == verdict::ConfirmVerdict::Confirmed {
                progress.confirmed.fetch_add(1, Relaxed);
            }
            results.lock().expect("no attempt panics holding the lock")[idx] = Some(a);
            progress.done.fetch_add(1, Relaxed);
            drop(permit);
        });
    }
    // Every permit back means every attempt finished.
    let _all = sem.acquire_many(cfg.concurrency as u32).await.expect("the semaphore is never closed");
    let mut guard = results.lock().expect("no attempt panics holding the lock");
    std::mem::take(&mut *guard)
}

/// Reports progress on stderr until `done` is set: a bar on a terminal, a line every 5 s otherwise.
async fn report(progress: Arc<Progress>, total: u64, done: Arc<AtomicBool>) {
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} targets, {msg}, ETA {eta}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        b
    });
    let mut ticks = 0u64;
    while !done.load(Relaxed) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        ticks += 1;
        let (d, c) = (progress.done.load(Relaxed), progress.confirmed.load(Relaxed));
        match &bar {
            Some(b) => {
                b.set_position(d);
                b.set_message(format!("{c} confirmed"));
            }
            None if ticks.is_multiple_of(25) => eprintln!("mpscan verify: {d}/{total} targets, {c} confirmed"),
            None => {}
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}

/// Runs `mpscan verify`. Exit code 0 when done, 3 when interrupted by a signal (the rows of the
/// targets tried are written).
pub fn run(a: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let cfg = Config::resolve(a)?;
    let input = input::read_path(&a.input, &a.classes.0)?;
    // Fail early, with the fix, if this kernel has no usable MPTCP.
    conn::mptcp_socket("127.0.0.1:9".parse().expect("literal"))
        .context("cannot open an IPPROTO_MPTCP socket: MPTCP needs Linux 5.6+ and `sysctl net.mptcp.enabled=1`")?;
    let mut out: Box<dyn std::io::Write> = match &a.output {
        Some(p) => Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?),
        None => Box::new(std::io::stdout().lock()),
    };

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The first signal stops new connections (the rows tried are written); a second one exits.
        signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone())
            .context("installing the signal handler")?;
        signal_hook::flag::register(sig, stop.clone()).context("installing the signal handler")?;
    }
    // Every ADD_ADDR, from this namespace's path-manager events (before the first connect).
    let (events, events_error) = match pm_events::start() {
        Ok(e) => (Some(e), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    let progress = Arc::new(Progress::default());
    let done = Arc::new(AtomicBool::new(false));
    let attempts = rt.block_on(async {
        let reporter =
            (!a.quiet).then(|| tokio::spawn(report(progress.clone(), input.targets.len() as u64, done.clone())));
        let r = run_all(&input.targets, cfg, progress.clone(), stop.clone(), events.clone()).await;
        done.store(true, Relaxed);
        if let Some(h) = reporter {
            let _ = h.await;
        }
        r
    });

    let rows: Vec<output::VerifiedRow> = input
        .rows
        .iter()
        .filter_map(|r| attempts[r.target].as_ref().map(|at| output::VerifiedRow::new(r, at)))
        .collect();
    output::write_csv(&mut out, &rows)?;
    out.flush()?;
    let notes = output::Notes {
        targets: attempts.iter().filter(|a| a.is_some()).count(),
        v0_rows: input
            .rows
            .iter()
            .filter(|r| r.class == crate::classify::Class::Mptcp && r.mptcp_version == Some(0))
            .count(),
        add_addr_ignored: attempts.iter().flatten().any(|a| a.info.is_some_and(|i| i.add_addr_accepted_max == 0)),
        rejected: input.rejected,
        not_tried: attempts.iter().filter(|a| a.is_none()).count(),
        events_error,
        events_lost: events.as_ref().map_or(0, |e| e.overruns.load(Relaxed)),
    };
    if !a.quiet {
        eprint!("{}", output::summary(&rows, &notes));
        if let Some(why) = &input.first_rejection {
            eprintln!("first unreadable row: {why}");
        }
    }
    Ok(if stop.load(Relaxed) { ExitCode::from(3) } else { ExitCode::SUCCESS })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        v: VerifyArgs,
    }

    fn parse(args: &[&str]) -> Result<VerifyArgs, clap::Error> {
        T::try_parse_from(std::iter::once("verify").chain(args.iter().copied())).map(|t| t.v)
    }

    #[test]
    fn defaults() {
        let a = parse(&["scan.csv"]).unwrap();
        assert_eq!(
            a.classes.0,
            vec![crate::classify::Class::Mptcp, crate::classify::Class::Echo, crate::classify::Class::Malformed]
        );
        let c = Config::resolve(&a).unwrap();
        assert_eq!(c.concurrency, 100);
        assert_eq!(c.rate, Some(100.0));
        assert_eq!(c.timing.timeout, Duration::from_secs(5));
        assert_eq!(c.app, AppArg::Auto);
    }

    #[test]
    fn bad_arguments_are_one_line_errors() {
        assert!(parse(&["s.csv", "--classes", "mptcp,nope"]).is_err());
        for args in [
            &["s.csv", "--concurrency", "0"][..],
            &["s.csv", "--timeout", "0"],
            &["s.csv", "--timeout", "NaN"],
            &["s.csv", "--rate=-1"],
            &["s.csv", "--add-addr-wait", "999999"],
        ] {
            let e = Config::resolve(&parse(args).unwrap()).unwrap_err().to_string();
            assert!(!e.contains('\n') && e.starts_with("--"), "{e}");
        }
        let a = parse(&["s.csv", "--rate", "0", "--classes", "all", "--app", "none"]).unwrap();
        let c = Config::resolve(&a).unwrap();
        assert_eq!(c.rate, None);
        assert_eq!(a.classes.0.len(), 6);
    }
}
