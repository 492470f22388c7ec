//! The running table's source: the shards this reader owns, read by polling or enhanced fan-out,
//! KPL aggregates opened (keeping only the user records of each shard's hash key range), rows
//! decoded with the table's format, and positions committed to a lease store only for rows the
//! consumer acknowledged.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arrow_array::RecordBatch;
use kds_client::{Batch, Client, Event, FanIn, PollConfig, PollingDriver, StreamId};
use kds_efo::{ConsumerConfig, FanOutDriver, ReaderConfig, Registration};
use kds_proto::model::{DescribeStreamSummaryInput, ListShardsInput, Shard, StartingPosition};
use kds_proto::types::{ConsumerArn, ConsumerName, SequenceNumber, ShardId, StreamName, Timestamp};
use kds_table::{EfoConsumer, ReaderKind, StartPosition, TableDefinition};

use crate::align::{Aligner, Gate};
use crate::assign::ShardAssigner;
use crate::checkpoint::Checkpoint;
use crate::error::{Error, ErrorKind};
use crate::lease::{Lease, LeaseStore};
use crate::rows::RowAssembler;
use crate::taker::LeaseTaker;
use crate::watermark::{WatermarkSpec, Watermarks};

/// How a [`TableSource`] runs.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct SourceConfig {
    /// This reader's index among [`subtasks`](Self::subtasks): it reads the shards the
    /// table's `scan.shard-assigner` gives it (Flink's subtask index).
    pub subtask: usize,
    /// How many readers share the table (Flink's parallelism).
    pub subtasks: usize,
    /// The columns of [`TableDefinition::arrow_schema`] to produce, in this order; `None`: all.
    /// Columns left out are not decoded (see [`TableDefinition::projected_decoder`]).
    pub projection: Option<Vec<usize>>,
    /// Read only what the stream held when the source opened, then end
    /// ([`TableSource::next`] returns `None`).
    pub bounded: bool,
    /// The owner written into the leases this reader holds.
    pub owner: String,
    /// How often [`TableSource::next`] commits acknowledged positions by itself.
    pub commit_interval: Duration,
    /// Shares the stream's shards with other workers through the lease store, as the KCL
    /// does: `Some(lease duration)` (the KCL's is 10 s, [`DEFAULT_LEASE_DURATION`]). Every
    /// worker names the same store (a [`DynamoDbLeaseStore`](crate::DynamoDbLeaseStore)) and
    /// an [`owner`](Self::owner) of its own. See [`TableSource`]'s shared reading. `None`
    /// (the default): the table's `scan.lease.duration` when it declares `scan.lease.table`
    /// (open its store with [`DynamoDbLeaseStore::for_table`](crate::DynamoDbLeaseStore::for_table)),
    /// else this reader reads the shards [`subtask`](Self::subtask) of
    /// [`subtasks`](Self::subtasks) is assigned.
    ///
    /// [`DEFAULT_LEASE_DURATION`]: crate::DEFAULT_LEASE_DURATION
    pub lease_duration: Option<Duration>,
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self {
            subtask: 0,
            subtasks: 1,
            projection: None,
            bounded: false,
            owner: format!("kds-{}-{:08x}", std::process::id(), fastrand::u32(..)),
            commit_interval: Duration::from_secs(1),
            lease_duration: None,
        }
    }
}

/// Acknowledges a [`SourceBatch`]: once every batch of a shard up to one is acknowledged, the
/// shard's position after it may be committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AckToken(u64);

/// Rows of one shard.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct SourceBatch {
    /// The rows, in the shard's order (never empty).
    pub rows: RecordBatch,
    /// The shard they come from.
    pub shard_id: ShardId,
    /// To acknowledge them with ([`TableSource::ack`]) once they are safe downstream.
    pub token: AckToken,
    /// The source's event-time watermark after these rows, in epoch milliseconds: every row
    /// still to come has an event time above it, except late ones (`None`: the table declares
    /// no watermark, or no shard has one yet).
    pub watermark: Option<i64>,
}

/// What a source did so far.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Kinesis records read.
    pub kinesis_records: u64,
    /// Rows handed out.
    pub rows: u64,
    /// User records of KPL aggregates that belong to another shard's hash key range, dropped.
    pub filtered: u64,
    /// Records that did not decode and were skipped (the table ignores parse errors).
    pub skipped: u64,
    /// User records delivered before a restore and skipped after it (inside an aggregate).
    pub redelivery_skipped: u64,
    /// Commits written to the lease store.
    pub commits: u64,
    /// Batches held back now, waiting for slower shards (`scan.watermark.lookahead.millis`).
    pub held_batches: u64,
    /// Leases this reader took ([`SourceConfig::lease_duration`]).
    pub leases_taken: u64,
    /// Leases this reader lost: another worker took them, or they could not be renewed
    /// within a lease duration. Their shards were stopped.
    pub leases_lost: u64,
}

/// Where a shard's reading stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Not read yet: a parent has not been read to its end.
    Waiting,
    Reading,
    /// Read to its end (acknowledgements may be pending).
    Ended,
    /// Read up to the end time of a bounded read.
    AtEndTime,
}

/// One owned shard.
#[derive(Debug)]
struct ShardState {
    /// The lease as last stored.
    lease: Lease,
    phase: Phase,
    hash_range: (u128, u128),
    /// Closed when listed.
    closed: bool,
    /// User records of this Kinesis record up to this sub-sequence number were delivered
    /// before a restore.
    skip: Option<(SequenceNumber, u64)>,
    /// Batches handed out and not acknowledged as a prefix: token, the checkpoint after the
    /// batch, acknowledged.
    unacked: VecDeque<(u64, Checkpoint, bool)>,
    /// The checkpoint of the acknowledged prefix, when it moved past the lease's.
    acked: Option<Checkpoint>,
    /// When the lease was last written (taken or renewed).
    renewed: Instant,
}

impl ShardState {
    /// The position this shard has reached as far as acknowledgements go.
    fn acked_checkpoint(&self) -> &Checkpoint {
        self.acked.as_ref().unwrap_or(&self.lease.checkpoint)
    }

    /// Takes `lease` as stored: the acknowledged position it holds is no longer pending.
    fn stored(&mut self, lease: Lease) {
        if self.acked.as_ref() == Some(&lease.checkpoint) {
            self.acked = None;
        }
        self.lease = lease;
    }

    /// Moves `acked` over the acknowledged prefix.
    fn settle(&mut self) {
        while let Some((_, _, true)) = self.unacked.front() {
            let (_, checkpoint, _) = self.unacked.pop_front().expect("a front");
            self.acked = Some(checkpoint);
        }
    }
}

/// The readers a source uses.
#[derive(Debug)]
enum Reader {
    Polling(FanIn<PollingDriver>),
    FanOut(FanIn<FanOutDriver>),
}

impl Reader {
    fn start_shard(&mut self, shard: ShardId, position: StartingPosition, closed: bool) {
        match self {
            Self::Polling(fan_in) => fan_in.start_shard(shard, position, closed),
            Self::FanOut(fan_in) => fan_in.start_shard(shard, position, closed),
        }
    }

    async fn next_event(&mut self) -> Result<Option<Event>, Error> {
        match self {
            Self::Polling(fan_in) => fan_in.next_event().await.map_err(Error::read),
            Self::FanOut(fan_in) => fan_in.next_event().await.map_err(Error::read_efo),
        }
    }

    /// Stops reading `shard`; nothing it read is handed out after this.
    fn stop_shard(&mut self, shard: &ShardId) {
        match self {
            Self::Polling(fan_in) => fan_in.stop_shard(shard),
            Self::FanOut(fan_in) => fan_in.stop_shard(shard),
        };
    }

    fn running(&self) -> usize {
        match self {
            Self::Polling(fan_in) => fan_in.running(),
            Self::FanOut(fan_in) => fan_in.running(),
        }
    }

    fn gate(&mut self, shard: &ShardId, gate: Gate) {
        match (self, gate) {
            (Self::Polling(fan_in), Gate::Pause) => fan_in.pause(shard),
            (Self::Polling(fan_in), Gate::Resume) => fan_in.resume(shard),
            (Self::FanOut(fan_in), Gate::Pause) => fan_in.pause(shard),
            (Self::FanOut(fan_in), Gate::Resume) => fan_in.resume(shard),
            (_, Gate::Unchanged) => {}
        }
    }
}

/// Event-time alignment of the shards (`scan.watermark.lookahead.millis`).
#[derive(Debug)]
struct Alignment {
    /// Batches held, with their latest event time.
    aligner: Aligner<(SourceBatch, Option<i64>)>,
    sync_interval: Duration,
    next_sync: Instant,
    /// The global watermark from the last exchange through the lease store (several
    /// subtasks).
    global: Option<i64>,
}

/// The source of a Kinesis table: its rows as Arrow record batches, with positions that are
/// committed only after the consumer acknowledged the rows before them.
///
/// # What it guarantees
///
/// - **No gap.** A shard's committed position never passes a row that was not acknowledged. A
///   LATEST start is stored as the time reading first began (never as LATEST), so a restore
///   reads everything written since. A shard restored inside a KPL aggregate resumes at that
///   record and skips the user records it had delivered (counted in
///   [`SourceStats::redelivery_skipped`]); after a plain record it resumes after it.
/// - **Parents first.** A shard's children are read once it has been read to its end; a child's
///   position is committed only after its parents' ends are (so a restore never reads a child
///   ahead of an unfinished parent). A parent another reader owns is waited for when its lease
///   is in the same store; readers with stores of their own (subtasks with a file each) do not
///   see each other's parents and do not wait for them, as Flink's legacy source never does.
/// - **Where shards start.** On a first start (an empty store) every shard starts at the
///   table's start position; shards leased later start at TRIM_HORIZON, since everything in
///   them was written after the first start.
/// - **At least once.** After a restore, rows delivered but not committed come again; nothing
///   committed does.
///
/// # Event-time alignment
///
/// With a WATERMARK clause and `scan.watermark.lookahead.millis`, shards that run ahead in event
/// time wait for the others: a batch whose earliest event time is more than the lookahead past
/// the reference watermark is held back, a shard holding `scan.watermark.sync.queue.capacity`
/// rows stops reading until some go out, and held batches go out earliest first. The reference
/// is this source's watermark; with several subtasks it is the global one, the smallest that
/// the subtasks publish through the lease store every `scan.watermark.sync.interval` (entries
/// older than three intervals do not count, as in Flink's watermark tracker). Only a store the
/// subtasks share aligns them ([`MemoryLeaseStore`](crate::MemoryLeaseStore) in one process); a
/// file store belongs to one subtask. A shard holds the others back only while its last page
/// was behind the tip of the shard and (with `scan.shard.idle.interval`) it delivered within
/// that interval: the slowest reader never waits for a shard that has nothing to give.
/// Alignment works on whole batches (one GetRecords answer or enhanced fan-out event).
///
/// # Shared reading
///
/// With [`SourceConfig::lease_duration`], readers in any number of processes share the
/// stream's shards through one lease store, as KCL consumers do. Each creates the leases of the
/// shards it lists, takes leases with a [`LeaseTaker`](crate::LeaseTaker) every third of a
/// lease duration (unowned and expired ones first, else one stolen from the most loaded
/// reader: readers that start together are balanced within about one duration), and renews
/// the leases it holds at every commit (at least every third of a duration), one lease at a
/// time, with the acknowledged position. A lease another reader took, or one that could not be
/// renewed within a duration, stops its shard: its read ends, and no row delivered after the
/// loss is committed (the write that would commit it fails on the counter), so the new owner
/// starts where the last commit left and repeats only what was not committed. A child is taken
/// only once every parent's lease is at `SHARD_END`. [`close`](TableSource::close) gives the
/// leases up, so others take them at once.
///
/// # Acknowledging and committing
///
/// Every [`SourceBatch`] carries an [`AckToken`]; [`ack`](Self::ack) it once the rows are safe
/// downstream (written to a sink that flushed, printed and flushed). [`commit`](Self::commit)
/// writes the acknowledged positions to the lease store; [`next`](Self::next) also commits by
/// itself every [`SourceConfig::commit_interval`].
#[derive(Debug)]
pub struct TableSource {
    stream: StreamId,
    stream_name: String,
    client: Client,
    store: Arc<dyn LeaseStore>,
    config: SourceConfig,
    assigner: ShardAssigner,
    reader: Reader,
    assembler: RowAssembler,
    /// Columns of the decoded batches to hand out (when the watermark column was decoded only
    /// for the watermark); `None`: all.
    output: Option<Vec<usize>>,
    watermark: Option<(WatermarkSpec, usize, Watermarks)>,
    alignment: Option<Alignment>,
    /// Where shards start when the store held no lease at all when the source opened (a first
    /// start); shards leased later start at TRIM_HORIZON: their records all came after the
    /// first start.
    start: Checkpoint,
    /// The store held no lease when the source opened, and the first listing is not taken yet.
    fresh: bool,
    shards: HashMap<ShardId, ShardState>,
    /// Listed shards this reader does not own, with their lease's checkpoint when the store
    /// has one.
    foreign: HashMap<ShardId, Option<Checkpoint>>,
    /// Shards whose rows stopped: a record that does not decode, or a lease another worker
    /// took. Their batches are dropped and their positions not committed further.
    stopped: HashSet<ShardId>,
    /// Children of ended shards still to lease (ListShards failed or did not list them yet).
    pending_children: Vec<ShardId>,
    /// Which shard each outstanding token belongs to.
    tokens: HashMap<u64, ShardId>,
    next_token: u64,
    next_commit: Instant,
    discovery_interval: Duration,
    next_discovery: Instant,
    /// The enhanced fan-out consumer to release on close, and how.
    consumer: Option<(ConsumerArn, Registration, ConsumerConfig)>,
    /// Shared reading ([`SourceConfig::lease_duration`]): what decides which leases to take.
    taker: Option<LeaseTaker>,
    next_take: Instant,
    /// The shards of the last listing: closed, and their hash key range.
    listed: HashMap<ShardId, (bool, (u128, u128))>,
    stats: SourceStats,
}

/// The earliest and latest event times of a batch's rows, in epoch milliseconds.
type EventTimes = Option<(i64, i64)>;

/// Milliseconds since the epoch, now.
pub(crate) fn now_millis() -> i64 {
    Timestamp::from(SystemTime::now()).as_millis()
}

impl TableSource {
    /// Opens the table `definition` reads: lists the stream's shards, takes (or creates) the
    /// leases of the shards this reader owns in `store`, registers the enhanced fan-out
    /// consumer when the table says so, and starts reading every shard whose parents are done.
    /// `client` talks to Kinesis (see its builder for endpoint, region and credentials).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Definition`] when the table cannot be read as defined (a projection out of
    /// range, an unsupported watermark expression or assigner); [`ErrorKind::Read`] when the
    /// stream cannot be listed or the consumer registered; [`ErrorKind::Store`] and
    /// [`ErrorKind::LeaseLost`] from the lease store.
    pub async fn open(
        definition: &TableDefinition,
        client: Client,
        store: Arc<dyn LeaseStore>,
        config: SourceConfig,
    ) -> Result<Self, Error> {
        let options = &definition.options;
        let stream_name = StreamName::new(options.stream.clone()).map_err(|e| {
            Error::new(
                ErrorKind::Definition,
                format!("stream `{}`", options.stream),
            )
            .with_source(e)
        })?;
        let stream = StreamId::Name(stream_name.clone());
        if config.subtasks == 0 || config.subtask >= config.subtasks {
            return Err(Error::new(
                ErrorKind::Usage,
                format!(
                    "subtask {} of {} does not exist",
                    config.subtask, config.subtasks
                ),
            ));
        }
        let mut config = config;
        if config.lease_duration.is_none() {
            config.lease_duration = options
                .source
                .lease_table
                .as_ref()
                .map(|t| t.lease_duration);
        }
        let taker = match config.lease_duration {
            None => None,
            Some(duration) => {
                if config.subtasks != 1 || config.bounded || duration < Duration::from_millis(3) {
                    return Err(Error::new(
                        ErrorKind::Usage,
                        "a reader sharing shards through leases is one subtask, unbounded, with \
                         a lease duration of at least 3 ms",
                    ));
                }
                // Every commit renews the leases held.
                config.commit_interval = config.commit_interval.min(duration / 3);
                Some(LeaseTaker::new(config.owner.clone(), duration))
            }
        };
        let assigner = ShardAssigner::named(&options.source.shard_assigner)?;
        let schema = definition.arrow_schema();
        let mut decoded: Vec<usize> = config
            .projection
            .clone()
            .unwrap_or_else(|| (0..schema.fields().len()).collect());
        let mut output = None;
        let watermark = match &definition.table.watermark {
            None => None,
            Some(declared) => {
                let spec = WatermarkSpec::parse(&declared.column, &declared.expression)?;
                let index = spec.index_in(&schema)?;
                if !matches!(
                    schema.field(index).data_type(),
                    arrow_schema::DataType::Timestamp(..)
                ) {
                    return Err(Error::new(
                        ErrorKind::Definition,
                        format!(
                            "watermark column `{}` has type {}, not a timestamp",
                            spec.column,
                            schema.field(index).data_type()
                        ),
                    ));
                }
                let position = match decoded.iter().position(|&i| i == index) {
                    Some(position) => position,
                    None => {
                        // Decoded for the watermark only.
                        output = Some((0..decoded.len()).collect());
                        decoded.push(index);
                        decoded.len() - 1
                    }
                };
                let marks = Watermarks::new(spec.delay_millis, options.source.shard_idle_interval);
                Some((spec, position, marks))
            }
        };
        let alignment = match (options.source.watermark_lookahead, &watermark) {
            (None, _) => None,
            (Some(lookahead), Some(_)) => Some(Alignment {
                aligner: Aligner::new(
                    i64::try_from(lookahead.as_millis()).unwrap_or(i64::MAX),
                    usize::try_from(options.source.watermark_sync_queue_capacity)
                        .unwrap_or(usize::MAX),
                    options.source.shard_idle_interval,
                ),
                sync_interval: options.source.watermark_sync_interval,
                next_sync: Instant::now(),
                global: None,
            }),
            (Some(_), None) => {
                return Err(Error::new(
                    ErrorKind::Definition,
                    "`scan.watermark.lookahead.millis` aligns shards by event time: the table \
                     needs a WATERMARK clause",
                ));
            }
        };
        let decoder = definition
            .projected_decoder(&decoded)
            .map_err(Error::table)?;
        let start = match options.source.start {
            // Pinned: a restore reads what arrived since reading first began.
            StartPosition::Latest => Checkpoint::AtTimestamp {
                millis: now_millis(),
            },
            StartPosition::TrimHorizon => Checkpoint::TrimHorizon,
            StartPosition::AtTimestamp(millis) => Checkpoint::AtTimestamp { millis },
            _ => {
                return Err(Error::new(
                    ErrorKind::Definition,
                    "the table's start position is not one this source knows",
                ));
            }
        };
        let end_at = config.bounded.then(|| Timestamp::from(SystemTime::now()));
        let (reader, consumer) = match &options.source.reader {
            ReaderKind::Polling => {
                let mut poll = PollConfig::default();
                poll.max_records = i32::try_from(options.source.get_records_max_count)
                    .unwrap_or(10_000)
                    .clamp(1, 10_000);
                poll.interval = options.source.get_records_interval;
                poll.adaptive = options.source.adaptive_reads;
                poll.end_at = end_at;
                let driver = PollingDriver::new(client.clone(), stream.clone(), poll);
                (
                    Reader::Polling(FanIn::without_lineage(
                        client.clone(),
                        stream.clone(),
                        end_at,
                        driver,
                    )),
                    None,
                )
            }
            ReaderKind::EnhancedFanOut(consumer) => {
                if taker.is_some() && matches!(consumer, EfoConsumer::Lazy(_)) {
                    return Err(Error::new(
                        ErrorKind::Definition,
                        "readers that share the shards share their enhanced fan-out consumer, \
                         which a LAZY registration would deregister when any of them stops: \
                         set `scan.stream.efo.registration` to EAGER or NONE",
                    ));
                }
                let registration = registration(consumer)?;
                let mut describe = DescribeStreamSummaryInput::new();
                describe.stream_name = Some(stream_name.clone());
                let summary = client.send(&describe).await.map_err(Error::read)?;
                let stream_arn = summary.stream_description_summary.stream_arn;
                let mut consumer_config = ConsumerConfig::default();
                consumer_config.register_timeout = options.source.register_consumer_timeout;
                consumer_config.deregister_timeout = options.source.deregister_consumer_timeout;
                let arn =
                    kds_efo::ensure_consumer(&client, &stream_arn, &registration, &consumer_config)
                        .await
                        .map_err(Error::read_efo)?;
                let mut reader = ReaderConfig::default();
                reader.end_at = end_at;
                reader.max_subscriptions =
                    usize::try_from(options.source.efo_max_concurrency).unwrap_or(usize::MAX);
                let backoff = options.source.subscribe_to_shard;
                reader.retry = kds_client::RetryPolicy {
                    max_retries: backoff.max_retries,
                    base: backoff.base,
                    max: backoff.max,
                    exponential_constant: backoff.exponential_constant,
                };
                let driver = FanOutDriver::new(client.clone(), arn.clone(), reader);
                (
                    Reader::FanOut(FanIn::without_lineage(
                        client.clone(),
                        stream.clone(),
                        end_at,
                        driver,
                    )),
                    Some((arn, registration, consumer_config)),
                )
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::Definition,
                    "the table's reader is not one this source knows",
                ));
            }
        };
        let ignore_parse_errors = matches!(
            options.format,
            kds_table::FormatOptions::Json {
                ignore_parse_errors: true,
                ..
            } | kds_table::FormatOptions::Csv {
                ignore_parse_errors: true,
                ..
            }
        );
        let now = Instant::now();
        let mut source = Self {
            stream,
            stream_name: options.stream.clone(),
            client,
            store,
            assigner,
            reader,
            assembler: RowAssembler::new(decoder, ignore_parse_errors),
            output,
            watermark,
            alignment,
            start,
            fresh: true,
            shards: HashMap::new(),
            foreign: HashMap::new(),
            stopped: HashSet::new(),
            pending_children: Vec::new(),
            tokens: HashMap::new(),
            next_token: 0,
            next_commit: now + config.commit_interval,
            discovery_interval: options.source.shard_discovery_interval,
            next_discovery: now + options.source.shard_discovery_interval,
            consumer,
            taker,
            next_take: now,
            listed: HashMap::new(),
            stats: SourceStats::default(),
            config,
        };
        let listed = list_shards(&source.client, &source.stream).await?;
        source.take_shards(&listed).await?;
        source.start_ready();
        Ok(source)
    }

    /// The schema of the batches handed out.
    pub fn schema(&self) -> arrow_schema::SchemaRef {
        match &self.output {
            None => Arc::clone(self.assembler.schema()),
            Some(columns) => Arc::new(
                self.assembler
                    .schema()
                    .project(columns)
                    .expect("output columns are decoded columns"),
            ),
        }
    }

    /// What the source did so far.
    pub fn stats(&self) -> SourceStats {
        let assembled = self.assembler.stats();
        let mut stats = self.stats;
        stats.kinesis_records = assembled.kinesis_records;
        stats.filtered = assembled.filtered;
        stats.skipped = assembled.skipped;
        stats.redelivery_skipped = assembled.redelivery_skipped;
        stats.held_batches = self
            .alignment
            .as_ref()
            .map_or(0, |a| a.aligner.held() as u64);
        stats
    }

    /// The shards this reader owns and has not finished (waiting for a parent, or reading).
    pub fn open_shards(&self) -> usize {
        self.shards
            .values()
            .filter(|s| matches!(s.phase, Phase::Waiting | Phase::Reading))
            .count()
    }

    /// Whether this reader owns `shard`.
    fn owns(&self, shard: &Shard) -> bool {
        let range = &shard.hash_key_range;
        self.assigner.subtask(
            &self.stream_name,
            shard.shard_id.as_str(),
            (range.starting_hash_key.0, range.ending_hash_key.0),
            self.config.subtasks,
        ) == self.config.subtask
    }

    /// Takes the leases of the `listed` shards this reader owns, creating the missing ones: at
    /// the table's start on a first start (an empty store), else at TRIM_HORIZON (a shard that
    /// appeared since holds only records written since).
    async fn take_shards(&mut self, listed: &[Shard]) -> Result<(), Error> {
        if self.taker.is_some() {
            return self.lease_shards(listed).await;
        }
        let mut stored = leases_by_shard(self.store.as_ref()).await?;
        let start = if self.fresh && stored.is_empty() {
            self.start.clone()
        } else {
            Checkpoint::TrimHorizon
        };
        self.fresh = false;
        let mut take = Vec::new();
        for shard in listed {
            if self.shards.contains_key(&shard.shard_id) || self.stopped.contains(&shard.shard_id) {
                continue;
            }
            if !self.owns(shard) {
                let checkpoint = stored.get(&shard.shard_id).map(|l| l.checkpoint.clone());
                self.foreign.insert(shard.shard_id.clone(), checkpoint);
                continue;
            }
            let parents = parents_of(shard);
            let lease = match stored.get(&shard.shard_id) {
                Some(lease) => lease.clone(),
                None => {
                    let range = &shard.hash_key_range;
                    let lease = Lease::new(shard.shard_id.clone(), start.clone(), parents)
                        .with_hash_range(range.starting_hash_key.0, range.ending_hash_key.0);
                    if self.store.create(lease.clone()).await? {
                        lease
                    } else {
                        // Created meanwhile by someone else: theirs stands.
                        stored = leases_by_shard(self.store.as_ref()).await?;
                        match stored.get(&shard.shard_id) {
                            Some(lease) => lease.clone(),
                            None => continue,
                        }
                    }
                }
            };
            let range = &shard.hash_key_range;
            self.shards.insert(
                shard.shard_id.clone(),
                ShardState {
                    phase: Phase::Waiting,
                    hash_range: (range.starting_hash_key.0, range.ending_hash_key.0),
                    closed: shard.is_closed(),
                    skip: None,
                    unacked: VecDeque::new(),
                    acked: None,
                    renewed: Instant::now(),
                    lease: lease.clone(),
                },
            );
            if lease.owner.as_deref() != Some(self.config.owner.as_str()) {
                let mut owned = lease;
                owned.owner = Some(self.config.owner.clone());
                take.push(owned);
            }
        }
        if !take.is_empty() {
            for lease in self.store.update(take).await? {
                if let Some(state) = self.shards.get_mut(&lease.shard_id) {
                    state.lease = lease;
                }
            }
        }
        for state in self.shards.values_mut() {
            if state.phase == Phase::Waiting && state.lease.checkpoint.is_shard_end() {
                state.phase = Phase::Ended;
            }
        }
        Ok(())
    }

    /// Shared reading: creates the missing leases of the `listed` shards (for every worker),
    /// then takes what the lease taker says.
    async fn lease_shards(&mut self, listed: &[Shard]) -> Result<(), Error> {
        for shard in listed {
            let range = &shard.hash_key_range;
            self.listed.insert(
                shard.shard_id.clone(),
                (
                    shard.is_closed(),
                    (range.starting_hash_key.0, range.ending_hash_key.0),
                ),
            );
        }
        let stored = leases_by_shard(self.store.as_ref()).await?;
        self.fresh = false;
        for shard in listed {
            if stored.contains_key(&shard.shard_id) {
                continue;
            }
            let parents = parents_of(shard);
            // By lineage, as the KCL does, so that readers starting together agree: a shard
            // that follows a leased or listed parent holds only records written after that
            // parent's, so it starts at TRIM_HORIZON; any other at the table's start.
            let follows = parents
                .iter()
                .any(|p| stored.contains_key(p) || self.listed.contains_key(p));
            let start = if follows {
                Checkpoint::TrimHorizon
            } else {
                self.start.clone()
            };
            let range = &shard.hash_key_range;
            let lease = Lease::new(shard.shard_id.clone(), start, parents)
                .with_hash_range(range.starting_hash_key.0, range.ending_hash_key.0);
            // `false`: another worker created it first.
            self.store.create(lease).await?;
        }
        self.take_leases().await
    }

    /// Shared reading: takes the leases the taker chooses, and notes the others' positions
    /// (a child waits for parents another worker reads).
    async fn take_leases(&mut self) -> Result<(), Error> {
        let leases = match self.store.list().await {
            Ok(leases) => leases,
            // The next look tries again; held leases lapse by themselves if the store stays
            // away.
            Err(e) if e.kind() == ErrorKind::Store => {
                tracing::warn!(error = %e, "the lease store could not be listed");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let now = Instant::now();
        let Some(taker) = &mut self.taker else {
            return Ok(());
        };
        let chosen = taker.choose(&leases, now);
        // Leases in this reader's name that it does not read: written by a take or renewal
        // whose answer was lost (a cancelled call), or by an earlier run under the same name.
        // They are this reader's: it reads them again.
        let owner = self.config.owner.as_str();
        let unread: Vec<Lease> = leases
            .iter()
            .filter(|l| l.owner.as_deref() == Some(owner) && !self.shards.contains_key(&l.shard_id))
            .cloned()
            .collect();
        self.foreign = leases
            .iter()
            .filter(|l| !self.shards.contains_key(&l.shard_id))
            .map(|l| (l.shard_id.clone(), Some(l.checkpoint.clone())))
            .collect();
        // Both are written (the write proves the lease is still this reader's).
        for lease in unread.into_iter().chain(chosen) {
            // A shard this reader has not listed yet waits for the next listing.
            let Some(&(closed, hash_range)) = self.listed.get(&lease.shard_id) else {
                continue;
            };
            let lease = match self.store.update(vec![lease]).await {
                Ok(mut stored) => stored.remove(0),
                Err(e) if e.kind() == ErrorKind::LeaseLost => {
                    tracing::debug!(error = %e, "another worker took the lease first");
                    continue;
                }
                Err(e) if e.kind() == ErrorKind::Store => {
                    tracing::warn!(error = %e, "a lease could not be taken");
                    continue;
                }
                Err(e) => return Err(e),
            };
            if self.shards.contains_key(&lease.shard_id) {
                // Taken back from a reader that took it before this one noticed: the read
                // of this reader's earlier hold ends, and a new one starts from the lease.
                self.drop_shard(&lease.shard_id);
            }
            // A shard stopped in an earlier hold (a record that did not decode) is read anew.
            self.stopped.remove(&lease.shard_id);
            tracing::info!(
                shard = lease.shard_id.as_str(),
                owner = %self.config.owner,
                "took the lease"
            );
            self.stats.leases_taken += 1;
            self.foreign.remove(&lease.shard_id);
            let phase = if lease.checkpoint.is_shard_end() {
                Phase::Ended
            } else {
                Phase::Waiting
            };
            self.shards.insert(
                lease.shard_id.clone(),
                ShardState {
                    lease,
                    phase,
                    hash_range,
                    closed,
                    skip: None,
                    unacked: VecDeque::new(),
                    acked: None,
                    renewed: now,
                },
            );
        }
        self.start_ready();
        Ok(())
    }

    /// Stops reading `shard` and forgets it: its lease is another worker's now. Rows of it
    /// handed out before may still be acknowledged (to no effect).
    fn drop_shard(&mut self, shard: &ShardId) {
        self.reader.stop_shard(shard);
        self.shards.remove(shard);
        if let Some(alignment) = &mut self.alignment {
            alignment.aligner.forget(shard);
        }
        if let Some((_, _, marks)) = &mut self.watermark {
            marks.ended(shard);
        }
    }

    /// Whether another reader's shard is done: its lease says so. A shard without a lease this
    /// store can see (past retention, or read by a reader with a store of its own) is not
    /// waited for.
    fn foreign_done(&self, shard: &ShardId) -> bool {
        match self.foreign.get(shard) {
            Some(Some(checkpoint)) => checkpoint.is_shard_end(),
            _ => true,
        }
    }

    /// Whether every parent of `shard` has been read to its end.
    fn parents_done(&self, lease: &Lease) -> bool {
        lease
            .parents
            .iter()
            .all(|parent| match self.shards.get(parent) {
                Some(state) => state.phase == Phase::Ended,
                None => self.foreign_done(parent),
            })
    }

    /// Starts every waiting shard whose parents are done.
    fn start_ready(&mut self) {
        let ready: Vec<ShardId> = self
            .shards
            .iter()
            .filter(|(_, s)| s.phase == Phase::Waiting && self.parents_done(&s.lease))
            .map(|(id, _)| id.clone())
            .collect();
        for shard in ready {
            let state = self.shards.get_mut(&shard).expect("listed above");
            let Some(resume) = state.acked_checkpoint().resume() else {
                state.phase = Phase::Ended;
                continue;
            };
            state.phase = Phase::Reading;
            state.skip = resume.skip;
            let closed = state.closed;
            self.reader.start_shard(shard, resume.position, closed);
        }
    }

    /// The next rows of any shard; `None` once a bounded source has read everything it will.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Read`] when reading a shard failed past its retries (the next call resumes
    /// it); [`ErrorKind::Decode`] for a record that does not decode (unless the table ignores
    /// parse errors): that shard stops, its later rows are not handed out and its position is
    /// not committed past the failed batch, so a restored source meets the record again; the
    /// lease store's errors when committing ([`commit`](Self::commit)).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe while it waits for records; a commit or a look for new shards that is
    /// dropped halfway is done again later.
    pub async fn next(&mut self) -> Result<Option<SourceBatch>, Error> {
        loop {
            let now = Instant::now();
            if now >= self.next_commit {
                self.next_commit = now + self.config.commit_interval;
                self.commit().await?;
            }
            if now >= self.next_discovery || !self.pending_children.is_empty() {
                self.next_discovery = now + self.discovery_interval;
                self.discover().await?;
            }
            if let Some(taker) = &self.taker
                && now >= self.next_take
            {
                self.next_take = now + taker.lease_duration() / 3;
                self.take_leases().await?;
            }
            self.sync_watermark(now).await?;
            if let Some(out) = self.release(Instant::now()) {
                return Ok(Some(out));
            }
            let mut until = self.next_commit.min(self.next_discovery);
            if self.taker.is_some() {
                until = until.min(self.next_take);
            }
            if let Some(alignment) = &self.alignment
                && self.config.subtasks > 1
            {
                until = until.min(alignment.next_sync);
            }
            let wait = until.saturating_duration_since(Instant::now());
            if self.reader.running() == 0 {
                if self.config.bounded
                    && self.pending_children.is_empty()
                    && self
                        .alignment
                        .as_ref()
                        .is_none_or(|a| a.aligner.held() == 0)
                {
                    self.commit().await?;
                    return Ok(None);
                }
                tokio::time::sleep(wait).await;
                continue;
            }
            let event = match tokio::time::timeout(wait, self.reader.next_event()).await {
                Err(_) => continue,
                Ok(event) => event?,
            };
            match event {
                None => {}
                Some(Event::Batch(batch)) => {
                    let shard = batch.shard_id.clone();
                    let now = Instant::now();
                    if let Some(alignment) = &mut self.alignment {
                        alignment
                            .aligner
                            .page(&shard, batch.millis_behind_latest > 0, now);
                    }
                    match self.rows_of(batch) {
                        Ok(Some((out, range))) => match &mut self.alignment {
                            None => {
                                let latest = range.map(|(_, high)| high);
                                return Ok(Some(self.deliver(out, latest, now)));
                            }
                            Some(alignment) => {
                                let rows = out.rows.num_rows();
                                let earliest = range.map(|(low, _)| low);
                                let latest = range.map(|(_, high)| high);
                                let gate = alignment.aligner.hold(
                                    &shard,
                                    (out, latest),
                                    rows,
                                    earliest,
                                    now,
                                );
                                self.reader.gate(&shard, gate);
                            }
                        },
                        Ok(None) => {}
                        Err(error) => {
                            // The batch's rows are lost to this source: the shard stops here,
                            // and a restore meets the same record again. Rows held from
                            // before it still go out.
                            self.stopped.insert(shard.clone());
                            if let Some(alignment) = &mut self.alignment {
                                alignment.aligner.done(&shard);
                            }
                            return Err(error);
                        }
                    }
                }
                Some(Event::ShardEnded { shard, children }) => {
                    self.shard_ended(&shard, &children).await?;
                }
                Some(Event::ShardAtEndTime(shard)) => {
                    if let Some(state) = self.shards.get_mut(&shard) {
                        state.phase = Phase::AtEndTime;
                    }
                    if let Some((_, _, marks)) = &mut self.watermark {
                        marks.ended(&shard);
                    }
                    if let Some(alignment) = &mut self.alignment {
                        alignment.aligner.done(&shard);
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// A shard was read to its end: its end is acknowledged after its last batch, and its
    /// children this reader owns get leases and start when their other parents are done.
    async fn shard_ended(
        &mut self,
        shard: &ShardId,
        children: &[kds_client::ChildOf],
    ) -> Result<(), Error> {
        if let Some(state) = self.shards.get_mut(shard) {
            state.phase = Phase::Ended;
            let token = self.next_token;
            self.next_token += 1;
            state.unacked.push_back((token, Checkpoint::ShardEnd, true));
            state.settle();
        }
        if let Some((_, _, marks)) = &mut self.watermark {
            marks.ended(shard);
        }
        if let Some(alignment) = &mut self.alignment {
            alignment.aligner.done(shard);
        }
        // The children's shard records (hash ranges) come from ListShards, at the next look.
        self.pending_children
            .extend(children.iter().map(|c| c.shard_id.clone()));
        self.start_ready();
        Ok(())
    }

    /// Looks for shards this reader has not seen (children of ended shards, a split or merge
    /// elsewhere, a resized stream) and for the progress of other readers' shards.
    async fn discover(&mut self) -> Result<(), Error> {
        let listed = list_shards(&self.client, &self.stream).await?;
        self.take_shards(&listed).await?;
        let listed: HashSet<&ShardId> = listed.iter().map(|s| &s.shard_id).collect();
        // Children not listed yet are looked for again.
        self.pending_children.retain(|c| !listed.contains(c));
        self.start_ready();
        Ok(())
    }

    /// The rows of a batch, with the range of their event times (when the table declares a
    /// watermark); `None` when none is left (all filtered, skipped or repeated), the batch
    /// then counts as acknowledged.
    fn rows_of(&mut self, batch: Batch) -> Result<Option<(SourceBatch, EventTimes)>, Error> {
        let Batch {
            shard_id, records, ..
        } = batch;
        if self.stopped.contains(&shard_id) {
            return Ok(None);
        }
        let Some(state) = self.shards.get_mut(&shard_id) else {
            return Ok(None);
        };
        let skip = state.skip.take();
        let assembled =
            self.assembler
                .assemble(&shard_id, state.hash_range, records, skip.as_ref())?;
        let Some(checkpoint) = assembled.checkpoint else {
            return Ok(None);
        };
        let decoded = assembled.rows;
        let token = self.next_token;
        self.next_token += 1;
        if decoded.num_rows() == 0 {
            state.unacked.push_back((token, checkpoint, true));
            state.settle();
            return Ok(None);
        }
        let range = match &self.watermark {
            None => None,
            Some((spec, index, _)) => spec.event_time_range(&decoded, *index)?,
        };
        let rows = match &self.output {
            None => decoded,
            Some(columns) => decoded
                .project(columns)
                .map_err(|e| Error::new(ErrorKind::Decode, e.to_string()))?,
        };
        let state = self.shards.get_mut(&shard_id).expect("looked up above");
        state.unacked.push_back((token, checkpoint, false));
        self.tokens.insert(token, shard_id.clone());
        Ok(Some((
            SourceBatch {
                rows,
                shard_id,
                token: AckToken(token),
                watermark: None,
            },
            range,
        )))
    }

    /// Hands out `batch` at `now`: its latest event time moves its shard's watermark.
    fn deliver(
        &mut self,
        mut batch: SourceBatch,
        latest: Option<i64>,
        now: Instant,
    ) -> SourceBatch {
        if let Some((_, _, marks)) = &mut self.watermark {
            marks.observe(&batch.shard_id, latest, now);
            batch.watermark = marks.current(now);
        }
        self.stats.rows += batch.rows.num_rows() as u64;
        batch
    }

    /// The next held batch that may go out (see [`TableSource`]'s event-time alignment).
    fn release(&mut self, now: Instant) -> Option<SourceBatch> {
        let alignment = self.alignment.as_mut()?;
        let (_, _, marks) = self.watermark.as_mut()?;
        let local = marks.current(now);
        let (reference, slowest) = if self.config.subtasks > 1 {
            let global = alignment.global;
            // A reader without a watermark yet is not the slowest of readers that have one.
            let slowest = match (local, global) {
                (Some(local), Some(global)) => local <= global,
                (None, Some(_)) => false,
                (_, None) => true,
            };
            (global, slowest)
        } else {
            (local, true)
        };
        let may_force = slowest || self.reader.running() == 0;
        let (shard, (batch, latest), gate) = alignment.aligner.next(reference, may_force, now)?;
        self.reader.gate(&shard, gate);
        Some(self.deliver(batch, latest, now))
    }

    /// Publishes this reader's watermark and takes the global one, every sync interval, when
    /// shards are aligned across subtasks.
    async fn sync_watermark(&mut self, now: Instant) -> Result<(), Error> {
        let Some(alignment) = &mut self.alignment else {
            return Ok(());
        };
        let Some((_, _, marks)) = &mut self.watermark else {
            return Ok(());
        };
        if self.config.subtasks < 2 || now < alignment.next_sync {
            return Ok(());
        }
        alignment.next_sync = now + alignment.sync_interval;
        // An idle reader only asks.
        let local = if marks.any_active(now) {
            marks.current(now)
        } else {
            None
        };
        let fresh_within = alignment.sync_interval.saturating_mul(3);
        alignment.global = self
            .store
            .exchange_watermark(self.config.subtask, local, fresh_within)
            .await?;
        Ok(())
    }

    /// Acknowledges the rows of `token`: the shard's position after them may be committed once
    /// the rows before them are acknowledged too.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Usage`] for a token this source did not hand out, or one acknowledged before.
    pub fn ack(&mut self, token: AckToken) -> Result<(), Error> {
        let shard = self.tokens.remove(&token.0).ok_or_else(|| {
            Error::new(
                ErrorKind::Usage,
                format!(
                    "token {} was not handed out by this source, or was acknowledged before",
                    token.0
                ),
            )
        })?;
        if let Some(state) = self.shards.get_mut(&shard) {
            if let Some(entry) = state.unacked.iter_mut().find(|(t, ..)| *t == token.0) {
                entry.2 = true;
            }
            state.settle();
        }
        Ok(())
    }

    /// Writes every acknowledged position that moved to the lease store. A child's position is
    /// written only once its parents' ends are (in the same write or before).
    ///
    /// # Errors
    ///
    /// The lease store's: [`ErrorKind::LeaseLost`] when another worker took a shard (this
    /// source stops reading and committing it; the next commit writes the others),
    /// [`ErrorKind::Store`] when the store failed (nothing was lost: the next commit writes the
    /// positions again). In shared reading ([`SourceConfig::lease_duration`]) neither is
    /// returned: a lost lease stops its shard (counted in [`SourceStats::leases_lost`]) and a
    /// failing store is logged, its leases lapsing if it stays away.
    pub async fn commit(&mut self) -> Result<(), Error> {
        if self.taker.is_some() {
            return self.renew().await;
        }
        let updates = self.lease_writes(None);
        if updates.is_empty() {
            return Ok(());
        }
        let stored = match self.store.update(updates).await {
            Ok(stored) => stored,
            Err(error) => {
                if error.kind() == ErrorKind::LeaseLost
                    && let Some(shard) = error.shard()
                {
                    // Another worker holds the shard now: this source reads and commits it no
                    // more, and the next commit writes the others.
                    let shard = shard.clone();
                    // Its subscription too: another worker's read of it with the same
                    // enhanced fan-out consumer would be refused while this one lasts.
                    self.drop_shard(&shard);
                    self.stats.leases_lost += 1;
                    self.stopped.insert(shard);
                }
                return Err(error);
            }
        };
        for lease in stored {
            if let Some(state) = self.shards.get_mut(&lease.shard_id) {
                state.stored(lease);
            }
        }
        self.stats.commits += 1;
        Ok(())
    }

    /// The leases to write: each shard's lease with its acknowledged position where it moved
    /// (a child's only once its parents' ends are written, in the same write or before),
    /// ends first. With `renew_after`, unmoved leases too: those last written that long ago
    /// or more (renewals), and those already at their shard's end (to be given up).
    fn lease_writes(&self, renew_after: Option<Duration>) -> Vec<Lease> {
        let now = Instant::now();
        let ended: HashSet<&ShardId> = self
            .shards
            .iter()
            .filter(|(_, s)| s.acked_checkpoint().is_shard_end())
            .map(|(id, _)| id)
            .collect();
        let mut writes: Vec<Lease> = Vec::new();
        for state in self.shards.values() {
            let moved = state
                .acked
                .as_ref()
                .filter(|checkpoint| **checkpoint != state.lease.checkpoint)
                .filter(|checkpoint| {
                    checkpoint.is_shard_end()
                        || state.lease.parents.iter().all(|p| {
                            ended.contains(p)
                                || (!self.shards.contains_key(p) && self.foreign_done(p))
                        })
                });
            let mut lease = state.lease.clone();
            match (moved, renew_after) {
                (Some(checkpoint), _) => lease.checkpoint = checkpoint.clone(),
                (None, Some(after))
                    if now.saturating_duration_since(state.renewed) >= after
                        || lease.checkpoint.is_shard_end() => {}
                _ => continue,
            }
            writes.push(lease);
        }
        writes.sort_by_key(|l| !l.checkpoint.is_shard_end());
        writes
    }

    /// Shared reading's commit: writes the leases held one at a time, with the acknowledged
    /// positions, renewing those not written for a quarter of a lease duration; gives up the
    /// leases of shards committed at their end; and stops the shards whose lease another
    /// reader took or that could not be renewed within a lease duration. A store that fails
    /// is logged, not returned: the leases it could not renew lapse by themselves.
    async fn renew(&mut self) -> Result<(), Error> {
        let duration = self
            .taker
            .as_ref()
            .map_or(Duration::MAX, LeaseTaker::lease_duration);
        let mut lost = Vec::new();
        let mut ended = false;
        let mut failed = false;
        for mut lease in self.lease_writes(Some(duration / 4)) {
            let shard = lease.shard_id.clone();
            let ends = lease.checkpoint.is_shard_end();
            if ends {
                // Read to its end and committed: nothing is left to hold.
                lease.owner = None;
            }
            let sent = Instant::now();
            match self.store.update(vec![lease]).await {
                Ok(_) if ends => {
                    self.drop_shard(&shard);
                    self.foreign.insert(shard, Some(Checkpoint::ShardEnd));
                    ended = true;
                }
                Ok(mut stored) => {
                    let lease = stored.remove(0);
                    if let Some(state) = self.shards.get_mut(&shard) {
                        state.stored(lease);
                        state.renewed = sent;
                    }
                }
                Err(e) if e.kind() == ErrorKind::LeaseLost => lost.push((shard, e)),
                Err(e) => {
                    failed = true;
                    tracing::warn!(error = %e, "a lease could not be written");
                }
            }
        }
        if !lost.is_empty() {
            // A write whose answer was lost (a cancelled call) moved the counter too: a lease
            // still in this reader's name is kept, as stored.
            let stored: HashMap<ShardId, Lease> = match leases_by_shard(self.store.as_ref()).await {
                Ok(stored) => stored,
                Err(e) => {
                    tracing::warn!(error = %e, "the lease store could not be listed");
                    HashMap::new()
                }
            };
            for (shard, error) in lost {
                let owner = Some(self.config.owner.as_str());
                match (stored.get(&shard), self.shards.get_mut(&shard)) {
                    (Some(lease), Some(state)) if lease.owner.as_deref() == owner => {
                        state.stored(lease.clone());
                    }
                    _ => {
                        tracing::info!(%error, owner = %self.config.owner, "lost the lease");
                        self.drop_shard(&shard);
                        self.stats.leases_lost += 1;
                    }
                }
            }
        }
        // Not renewed for a lease duration: another reader may hold it by now.
        let now = Instant::now();
        let lapsed: Vec<ShardId> = self
            .shards
            .iter()
            .filter(|(_, s)| now.saturating_duration_since(s.renewed) >= duration)
            .map(|(id, _)| id.clone())
            .collect();
        for shard in lapsed {
            tracing::warn!(
                shard = shard.as_str(),
                "the lease could not be renewed within its duration: the shard stops"
            );
            self.drop_shard(&shard);
            self.stats.leases_lost += 1;
        }
        if ended {
            // The children of the ended shards may be taken now.
            self.next_take = now;
            self.start_ready();
        }
        if !failed {
            self.stats.commits += 1;
        }
        Ok(())
    }

    /// Shared reading: gives up the leases held (owner none), so other workers take them at
    /// once instead of after they expire.
    async fn release_leases(&mut self) {
        // As stored: the leases read and those in this reader's name it does not read (see
        // `take_leases`).
        let owner = Some(self.config.owner.as_str());
        let held: Vec<Lease> = match self.store.list().await {
            Ok(leases) => leases
                .into_iter()
                .filter(|l| l.owner.as_deref() == owner)
                .collect(),
            Err(e) => {
                tracing::debug!(error = %e, "the leases were not released");
                Vec::new()
            }
        };
        for mut lease in held {
            lease.owner = None;
            if let Err(e) = self.store.update(vec![lease]).await {
                tracing::debug!(error = %e, "a lease was not released");
            }
        }
        self.shards.clear();
    }

    /// Commits what was acknowledged and releases the enhanced fan-out consumer if this source
    /// registered it (`LAZY`).
    ///
    /// # Errors
    ///
    /// As [`commit`](Self::commit), and [`ErrorKind::Read`] when the consumer could not be
    /// deregistered (it stays registered, and billed).
    /// The consumer is released even when the commit fails (the commit's error is returned).
    pub async fn close(mut self) -> Result<SourceStats, Error> {
        let committed = self.commit().await;
        if self.taker.is_some() {
            self.release_leases().await;
        }
        if let Some((arn, registration, consumer_config)) = &self.consumer {
            kds_efo::release_consumer(&self.client, arn, registration, consumer_config)
                .await
                .map_err(Error::read_efo)?;
        }
        committed?;
        Ok(self.stats())
    }
}

/// The shards `shard` follows: one after a split, two after a merge.
fn parents_of(shard: &Shard) -> Vec<ShardId> {
    [&shard.parent_shard_id, &shard.adjacent_parent_shard_id]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
}

/// Every lease in `store`, by shard.
async fn leases_by_shard(store: &dyn LeaseStore) -> Result<HashMap<ShardId, Lease>, Error> {
    Ok(store
        .list()
        .await?
        .into_iter()
        .map(|l| (l.shard_id.clone(), l))
        .collect())
}

/// Every shard of `stream`. A free function: a future holding `&TableSource` would not be
/// `Send` (the row decoder is not `Sync`).
async fn list_shards(client: &Client, stream: &StreamId) -> Result<Vec<Shard>, Error> {
    let mut list = ListShardsInput::new();
    stream.set(&mut list.stream_name, &mut list.stream_arn);
    client.list_all_shards(&list).await.map_err(Error::read)
}

/// The registration of an enhanced fan-out consumer as the table declares it.
fn registration(consumer: &EfoConsumer) -> Result<Registration, Error> {
    let name = |name: &str| {
        ConsumerName::new(name).map_err(|e| {
            Error::new(ErrorKind::Definition, format!("consumer name `{name}`")).with_source(e)
        })
    };
    Ok(match consumer {
        EfoConsumer::Lazy(n) => Registration::Lazy(name(n)?),
        EfoConsumer::Eager(n) => Registration::Eager(name(n)?),
        EfoConsumer::None(arn) => {
            Registration::None(ConsumerArn::new(arn.clone()).map_err(|e| {
                Error::new(ErrorKind::Definition, format!("consumer ARN `{arn}`")).with_source(e)
            })?)
        }
        _ => {
            return Err(Error::new(
                ErrorKind::Definition,
                "the table's consumer registration is not one this source knows",
            ));
        }
    })
}
