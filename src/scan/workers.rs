//! What a finished [`ScanConfig`] builds: the validator, the probe builder, the receive context,
//! each sender's probe stream, the counters, the transport (AF_PACKET rings), and the output (the
//! result sink and the resume checkpoint). `scan::run` only calls these and hands the results to
//! the pipeline, which never looks at an argument.

use super::checkpoint::Checkpointer;
use super::config::ScanConfig;
use super::counters::Counters;
use super::recv::Carried;
use super::send::ProbeStream;
use super::state::{Identity, StateFile};
use crate::accept::Context;
use crate::keyed_hash::Validator;
use crate::net::{self, Receive, Transmit};
use crate::output::sink;
use crate::probe::ProbeBuilder;
use crate::targets::Permutation;
use mpscan_schema::line_file::LineSink;
use mpscan_schema::metadata::MetadataFile;
use mpscan_schema::RowSink;

/// Where probes go and answers come from: one transmit back end per sender thread, one receive
/// back end. AF_PACKET rings for a real scan ([`ScanConfig::transport`]); the memory back ends
/// (`crate::net::memory`) in tests.
pub struct Transport {
    /// The receiver's back end.
    pub rx: Box<dyn Receive + Send>,
    /// One per sender thread, in thread order.
    pub txs: Vec<Box<dyn Transmit + Send>>,
}

/// Where results and progress go: the result sink, what a resumed scan already had, and the
/// resume checkpoint (none for standard output or Parquet).
pub struct Output {
    /// The result file.
    pub sink: Box<dyn RowSink + Send>,
    /// The rows and counters of the scan being resumed (empty otherwise).
    pub carried: Carried,
    /// Saves the resume state.
    pub checkpoint: Option<Checkpointer>,
    /// The metadata file (`--metadata`), opened before the first probe.
    pub metadata: Option<MetadataFile>,
}

/// The stateless parts every thread shares: the hash, the frame templates, the permutation.
pub struct Probing {
    /// Computes and checks each probe's per-target values.
    pub validator: Validator,
    /// Writes probe frames from their templates.
    pub builder: ProbeBuilder,
    /// The order of the targets.
    pub permutation: Permutation,
}

impl ScanConfig {
    /// The keyed hash of this scan (from its seed), over its source-port range.
    pub fn validator(&self) -> Validator {
        Validator::from_seed(self.seed).with_ports(self.source_ports)
    }

    /// The probe templates (every source), with the IPv6 router's MAC when it differs from the
    /// IPv4 one.
    pub fn probe_builder(&self) -> ProbeBuilder {
        let mut builder = ProbeBuilder::with_sources(&self.link, &self.sources, &self.versions);
        if let Some(mac) = self.gateway_mac6 {
            builder.set_v6_next_hop(mac);
        }
        builder
    }

    /// The validator, the probe builder and the permutation.
    pub fn probing(&self) -> Probing {
        Probing {
            validator: self.validator(),
            builder: self.probe_builder(),
            // A trace permutes (target, port, TTL) triples: index = pair index * max_ttl + TTL - 1.
            permutation: match self.trace_ttls {
                Some(m) => crate::targets::Permutation::new(self.space.len() * u64::from(m), self.seed),
                None => self.space.permutation(self.seed),
            },
        }
    }

    /// What the receiver needs to accept answers to this scan's probes (every source counts).
    /// The metadata records all of it: `Context::from_record(&self.record)` rebuilds the same.
    pub fn receive_context(&self, validator: &Validator) -> Context {
        Context::new(validator.clone(), self.sources.clone(), self.versions.clone())
    }

    /// What identifies this scan in its resume state.
    pub fn identity(&self) -> Identity {
        Identity {
            seed: self.seed,
            shards: self.shards,
            shard: self.shard,
            threads: self.threads,
            targets_total: self.space.len(),
            versions: self.versions.iter().map(|v| v.label().to_string()).collect(),
            probes: self.probes,
            ports: self.space.ports().to_vec(),
            max_targets: self.max_targets,
            max_ttl: self.trace_ttls,
            sources: Some(self.sources.strings()),
            source_ports: Some(self.source_ports.pair()),
        }
    }

    /// Counters for the sender threads, holding a resumed scan's saved counts and positions.
    pub fn counters(&self) -> Counters {
        let counters = Counters::new(self.threads);
        if let Some(r) = &self.resume {
            r.restore(&counters);
        }
        counters
    }

    /// About how many targets this shard sends to (for the progress bar and the receive ring).
    pub fn expected_targets(&self) -> u64 {
        let per_shard = (self.space.len() * u64::from(self.trace_ttls.unwrap_or(1))).div_ceil(self.shards as u64);
        self.max_targets.map_or(per_shard, |m| m.min(per_shard))
    }

    /// Each sender's share of the rate (0: unlimited).
    pub fn rate_per_sender(&self) -> u64 {
        if self.rate == 0 {
            0
        } else {
            (self.rate / self.threads as u64).max(1)
        }
    }

    /// The probe stream of sender thread `t`, from cycle `position` with `done` targets already
    /// sent: a resumed sender starts at its saved position, and its share of `--max-targets`
    /// shrinks by what it already sent.
    pub fn probe_stream<'a>(
        &'a self,
        probing: &'a Probing,
        t: u32,
        position: u64,
        done: u64,
    ) -> anyhow::Result<ProbeStream<'a>> {
        let mut cursor = probing.permutation.cursor(self.shard, self.shards, t, self.threads, position)?;
        if let Some(m) = self.max_targets {
            cursor = cursor.limit(crate::targets::share(m, self.threads, t).saturating_sub(done));
        }
        let p = probing;
        let stream =
            ProbeStream::new(&self.space, cursor, &p.builder, &p.validator, &self.versions, self.probes, &self.link);
        Ok(match self.trace_ttls {
            Some(m) => stream.trace(m, self.trace_clock()),
            None => stream,
        })
    }

    /// The trace's clock: the send times in the probes and the receive times are milliseconds
    /// since this instant (see `crate::trace::encode`).
    pub fn trace_clock(&self) -> std::time::Instant {
        *crate::trace::clock()
    }

    /// How to go on after an interruption (`; resume with ...`), or nothing without a state file.
    pub fn resume_hint(&self) -> String {
        match &self.state_file {
            Some(p) => format!("; resume with the same command and --resume {}", p.display()),
            None => String::new(),
        }
    }

    /// Opens the AF_PACKET receive ring (filtered to this scan's answers, sized for them) and one
    /// transmit ring per sender thread.
    pub fn transport(&self) -> anyhow::Result<Transport> {
        let filter = net::bpf::filter_for(self.source_ports.lo..=self.source_ports.hi);
        let answers = self.expected_targets().saturating_mul(u64::from(self.probes) * self.versions.len() as u64);
        let rx = net::AfPacketRx::open(&self.interface, Some(&filter), net::RxConfig::for_answers(answers))
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", self.interface))?;
        let txs = (0..self.threads)
            .map(|_| {
                net::AfPacketTx::open(&self.interface, net::TxConfig::default())
                    .map(|t| Box::new(t) as Box<dyn Transmit + Send>)
                    .map_err(|e| anyhow::anyhow!("cannot send on {}: {e}", self.interface))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Transport { rx: Box::new(rx), txs })
    }

    /// Opens the metadata file (`--metadata`) for the end of the scan.
    pub fn open_metadata(&self) -> anyhow::Result<Option<MetadataFile>> {
        self.metadata.as_deref().map(MetadataFile::open).transpose()
    }

    /// `sink`, writing only the rows of `--classes` when given.
    fn only_classes(&self, sink: Box<dyn RowSink + Send>) -> Box<dyn RowSink + Send> {
        match &self.classes {
            Some(c) => Box::new(sink::OnlyClasses { inner: sink, classes: c.clone() }),
            None => sink,
        }
    }

    /// Opens the result file and the resume state: appends to the CSV of a resumed scan (its
    /// rows carried over) and reopens its state file; otherwise creates both. Fails before the
    /// scan sends anything.
    pub fn output(&self) -> anyhow::Result<Output> {
        if let (Some(path), Some(r)) = (&self.state_file, &self.resume) {
            let out = self.output.as_deref().expect("checked by Resume::open");
            let (sink, rows) = LineSink::resume(out, self.output_format.layout(&self.columns))?;
            let carried = Carried { rows, invalid: r.saved.invalid.clone(), duplicates: r.saved.duplicates };
            let file = StateFile::reopen(path, &r.saved)?;
            let checkpoint = Checkpointer::new(file, self.identity(), self.cooldown);
            let (sink, checkpoint) = (self.only_classes(Box::new(sink)), Some(checkpoint));
            return Ok(Output { sink, carried, checkpoint, metadata: self.open_metadata()? });
        }
        let sink = self.only_classes(sink::create(self.output.as_deref(), self.output_format, &self.columns)?);
        // Only a streamed format whose rows carry their key can be resumed: a Parquet file is
        // written whole at the end, and a resumed scan reads back ip, port, probe and class.
        let resumable = self.output_format.appendable() && self.output_format.layout(&self.columns).resumable();
        let file = self.state_file.as_deref().filter(|_| resumable).map(StateFile::create).transpose()?;
        let checkpoint = file.map(|f| Checkpointer::new(f, self.identity(), self.cooldown));
        Ok(Output { sink, carried: Carried::default(), checkpoint, metadata: self.open_metadata()? })
    }
}
