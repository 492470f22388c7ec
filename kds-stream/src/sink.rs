//! The running table's sink: rows encoded in the table's format with its partitioner, packed
//! into KPL aggregates per shard when the table says so, and written by PutRecords under the
//! `sink.*` limits, with [`flush`](TableSink::flush) returning once Kinesis acknowledged every
//! row given before it. [`RecordWriter`] is the part below the table: user records ([`ProducerRecord`]) in,
//! PutRecords out (what `kds put` uses).

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use bytes::Bytes;
use kds_agg::{
    AggregatorConfig, Deaggregator, KinesisRecord, ProducerRecord, Routed, ShardAggregator,
    ShardMap,
};
use kds_client::{Client, RetryPolicy, StreamId};
use kds_proto::model::{
    DescribeStreamSummaryInput, ListShardsInput, PutRecordsInput, PutRecordsOutput,
    PutRecordsRequestEntry,
};
use kds_proto::types::{HashKey, PartitionKey, ShardId};
use kds_proto::{ErrorClass, Limits};
use kds_table::{Partitioners, RowEncoder, TableDefinition};
use tokio::task::JoinSet;

use crate::error::{Error, ErrorKind};
use crate::put_queue::{Completion, PutQueue, RequestFailure};

/// How a [`RecordWriter`] writes: the table's `sink.*` options, and what they do not say.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct WriterConfig {
    /// Records per PutRecords request (`sink.batch.max-size`, 500; at most 500).
    pub batch_records: usize,
    /// PutRecords requests in flight at most (`sink.requests.max-inflight`, 50, and no more
    /// than `sink.http-client.max-concurrency`); throttling halves the number allowed, each
    /// request without throttling allows one more.
    pub max_in_flight: usize,
    /// Records buffered before writes wait (`sink.requests.max-buffered`, 10 000): with
    /// `batch_records` and the record size limit, this bounds the memory the writer holds.
    pub max_buffered: usize,
    /// Buffered bytes (data and partition keys) that send a request at once
    /// (`sink.flush-buffer.size`, 5 MiB).
    pub flush_bytes: usize,
    /// How long a record waits for its request to fill (`sink.flush-buffer.timeout`, 5 s).
    pub flush_after: Duration,
    /// A record that fails fails the writer at once, without retries (`sink.fail-on-error`).
    pub fail_on_error: bool,
    /// Keep each partition key's order: a request carries at most one record of a key, sent
    /// once the key's record before it was written. Slower for keys with many records.
    pub ordered: bool,
    /// Retries of a record that failed (throttled, a failed or lost request), with full-jitter
    /// backoff; then it fails. 10 retries from 100 ms to 5 s by default.
    pub retry: RetryPolicy,
    /// KPL aggregation (`sink.producer.aggregation-*`): user records per shard packed into
    /// aggregates; `None` writes one Kinesis record per user record.
    pub aggregation: Option<AggregatorConfig>,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            batch_records: Limits::MAX_PUT_RECORDS_ENTRIES,
            max_in_flight: 50,
            max_buffered: 10_000,
            flush_bytes: 5 * 1024 * 1024,
            flush_after: Duration::from_secs(5),
            fail_on_error: false,
            ordered: false,
            retry: RetryPolicy {
                max_retries: 10,
                base: Duration::from_millis(100),
                max: Duration::from_secs(5),
                exponential_constant: 2.0,
            },
            aggregation: None,
        }
    }
}

impl WriterConfig {
    /// The writer `definition`'s `sink.*` options describe.
    pub fn from_table(definition: &TableDefinition) -> Self {
        let sink = &definition.options.sink;
        let count = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
        Self {
            batch_records: count(sink.batch_max_size).clamp(1, Limits::MAX_PUT_RECORDS_ENTRIES),
            // The HTTP client's concurrency bounds the requests in flight too.
            max_in_flight: count(sink.max_inflight_requests)
                .min(count(sink.http_max_concurrency))
                .max(1),
            max_buffered: count(sink.max_buffered_requests).max(1),
            flush_bytes: usize::try_from(sink.flush_buffer_size).unwrap_or(usize::MAX),
            flush_after: sink.flush_buffer_timeout,
            fail_on_error: sink.fail_on_error,
            aggregation: sink.aggregation.map(|a| {
                AggregatorConfig::default()
                    .with_max_count(a.max_count)
                    .with_max_size(a.max_size)
                    .with_max_buffered_time(sink.flush_buffer_timeout)
            }),
            ..Self::default()
        }
    }
}

/// What a writer did so far.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Rows (user records) Kinesis acknowledged.
    pub rows: u64,
    /// Kinesis records written (an aggregate counts once).
    pub kinesis_records: u64,
    /// KPL aggregates among them.
    pub aggregates: u64,
    /// Bytes written: data and partition keys.
    pub bytes: u64,
    /// PutRecords requests sent.
    pub requests: u64,
    /// Records sent again after they failed (throttled, failed, or in a request that failed as
    /// a whole).
    pub retries: u64,
    /// Rows that will not be written: their retries ran out or their error cannot be retried.
    pub failed: u64,
    /// Rows sent again after a request whose outcome is unknown (a lost response, a timeout, a
    /// server error): Kinesis may hold them twice.
    pub maybe_duplicated: u64,
    /// User records of aggregates that landed on another shard than the one they were packed
    /// for (the shard map changed), sent again to their own shard: a reader of the shard that
    /// got the aggregate drops them.
    pub rerouted: u64,
    /// Times the shard map was read again.
    pub map_refreshes: u64,
}

/// What the writer keeps about a buffered Kinesis record.
#[derive(Debug)]
struct Tag {
    /// User records in it.
    rows: u64,
    /// The shard it was packed for (aggregation on).
    predicted: Option<ShardId>,
    /// A KPL aggregate.
    aggregate: bool,
}

/// Writes user records to a stream by PutRecords, as [`WriterConfig`] says.
///
/// [`write`](Self::write) buffers and sends requests as they fill, waiting when the buffer is
/// full; [`flush`](Self::flush) returns once every record given so far is written, or says how
/// many will not be. With aggregation, records are packed per shard of the current shard map;
/// when Kinesis puts an aggregate on another shard than the one it was packed for (a split or
/// merge happened), the map is read again and the aggregate's user records that belong
/// elsewhere are sent again, so no reader drops them.
#[derive(Debug)]
pub struct RecordWriter {
    client: Client,
    stream: StreamId,
    config: WriterConfig,
    queue: PutQueue<Tag>,
    tasks: JoinSet<(u64, Result<PutRecordsOutput, kds_client::Error>)>,
    aggregator: Option<ShardAggregator<ShardId>>,
    /// Every listed shard's hash key range (closed ones too).
    ranges: HashMap<ShardId, RangeInclusive<u128>>,
    /// Aggregates written to another shard than predicted, to check once the map is read
    /// again.
    misrouted: Vec<(Bytes, ShardId)>,
    refresh: bool,
    /// Rows that failed since the last flush: how many, and the first error.
    failed: Option<(u64, String)>,
    /// User records given and neither written nor failed yet.
    pending_rows: u64,
    stats: WriterStats,
}

impl RecordWriter {
    /// A writer to `stream`: reads the stream's record size limit, and its shards when
    /// aggregating.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Write`] when the stream cannot be described or listed.
    pub async fn open(
        client: Client,
        stream: StreamId,
        config: WriterConfig,
    ) -> Result<Self, Error> {
        let mut describe = DescribeStreamSummaryInput::new();
        stream.set(&mut describe.stream_name, &mut describe.stream_arn);
        let summary = client.send(&describe).await.map_err(write_error)?;
        let kib = summary
            .stream_description_summary
            .max_record_size_in_kib
            .and_then(|k| u32::try_from(k).ok())
            .unwrap_or(1024);
        let queue = PutQueue::with_limits(&config, Limits::with_max_record_size_kib(kib));
        let mut writer = Self {
            client,
            stream,
            queue,
            tasks: JoinSet::new(),
            aggregator: None,
            ranges: HashMap::new(),
            misrouted: Vec::new(),
            refresh: false,
            failed: None,
            pending_rows: 0,
            stats: WriterStats::default(),
            config,
        };
        if let Some(aggregation) = writer.config.aggregation {
            let aggregation =
                aggregation.with_max_size(aggregation.max_size.min(writer.queue.max_record_size()));
            let map = writer.shard_map().await?;
            writer.aggregator = Some(ShardAggregator::new(map, aggregation).map_err(|e| {
                Error::new(ErrorKind::Definition, "KPL aggregation").with_source(e)
            })?);
        }
        Ok(writer)
    }

    /// What the writer did so far.
    pub fn stats(&self) -> WriterStats {
        self.stats
    }

    /// The open shards, as a map; every shard's range noted.
    async fn shard_map(&mut self) -> Result<ShardMap<ShardId>, Error> {
        let mut list = ListShardsInput::new();
        self.stream.set(&mut list.stream_name, &mut list.stream_arn);
        let shards = self
            .client
            .list_all_shards(&list)
            .await
            .map_err(write_error)?;
        self.stats.map_refreshes += 1;
        let range = |s: &kds_proto::model::Shard| {
            s.hash_key_range.starting_hash_key.0..=s.hash_key_range.ending_hash_key.0
        };
        for shard in &shards {
            self.ranges.insert(shard.shard_id.clone(), range(shard));
        }
        ShardMap::new(
            shards
                .iter()
                .filter(|s| !s.is_closed())
                .map(|s| (s.shard_id.clone(), range(s))),
        )
        .map_err(|e| {
            Error::new(
                ErrorKind::Write,
                "the stream's open shards cannot place records",
            )
            .with_source(e)
        })
    }

    /// Buffers `record`, sending requests that are due; waits while the buffer is full.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Encode`] for a record larger than the stream accepts or with a partition
    /// key Kinesis refuses; [`ErrorKind::Write`] once a record failed and the writer fails on
    /// errors.
    pub async fn write(&mut self, record: ProducerRecord) -> Result<(), Error> {
        self.add(record, Instant::now())?;
        self.pump(false).await
    }

    /// Buffers `record` as a Kinesis record of its own, even when the writer aggregates, and
    /// sends requests that are due; waits while the buffer is full.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub async fn write_alone(&mut self, record: ProducerRecord) -> Result<(), Error> {
        self.check_size(&record)?;
        self.push_single(record, None, Instant::now())?;
        self.pending_rows += 1;
        self.pump(false).await
    }

    /// When something falls due by the clock (a record waited its time, an aggregate its
    /// buffering time, a retry its backoff): [`send_due`](Self::send_due) has work then.
    pub fn deadline(&self) -> Option<Instant> {
        let queue = self.queue.next_due();
        let aggregate = self.aggregator.as_ref().and_then(ShardAggregator::deadline);
        match (queue, aggregate) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Takes in finished requests and sends what is due, without waiting for more.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub async fn send_due(&mut self) -> Result<(), Error> {
        self.pump(false).await
    }

    /// User records given and not yet written or failed: buffered, aggregating or in flight
    /// (what dropping the writer would lose).
    pub fn pending_rows(&self) -> u64 {
        self.pending_rows
    }

    fn check_size(&self, record: &ProducerRecord) -> Result<(), Error> {
        let size = record.data.len() + record.partition_key.len();
        if size > self.queue.max_record_size() {
            return Err(Error::new(
                ErrorKind::Encode,
                format!(
                    "a record of {size} bytes (data and partition key `{}`) is larger than the \
                     {} bytes the stream accepts",
                    record.partition_key,
                    self.queue.max_record_size()
                ),
            ));
        }
        Ok(())
    }

    /// Buffers `record` without sending anything.
    fn add(&mut self, record: ProducerRecord, now: Instant) -> Result<(), Error> {
        self.check_size(&record)?;
        self.pending_rows += 1;
        self.route(record, now)
    }

    /// Places a counted record: in an aggregate, or alone.
    fn route(&mut self, record: ProducerRecord, now: Instant) -> Result<(), Error> {
        let Some(aggregator) = &mut self.aggregator else {
            return self.push_single(record, None, now);
        };
        match aggregator.add(&record, now) {
            Routed::Buffered => {}
            Routed::Ready { shard, aggregate } => {
                self.push_aggregate(Some(shard), aggregate, now)?;
            }
            Routed::TooLarge { shard, flushed } => {
                if let Some(flushed) = flushed {
                    self.push_aggregate(Some(shard.clone()), flushed, now)?;
                }
                self.push_single(record, Some(shard), now)?;
            }
            Routed::Unmapped => {
                // No open shard owns it: sent alone, and the map read again.
                self.refresh = true;
                self.push_single(record, None, now)?;
            }
        }
        Ok(())
    }

    fn push_aggregate(
        &mut self,
        shard: Option<ShardId>,
        aggregate: kds_agg::Aggregate,
        now: Instant,
    ) -> Result<(), Error> {
        let rows = aggregate.user_records as u64;
        let entry = entry(
            aggregate.partition_key,
            aggregate.data,
            aggregate.explicit_hash_key,
        )?;
        let tag = Tag {
            rows,
            predicted: shard,
            aggregate: rows > 1,
        };
        self.queue.push(entry, tag, now);
        Ok(())
    }

    /// Takes in finished requests, reads the shard map again when needed, and sends what is
    /// due; waits while the buffer is full (or, `flushing`, until nothing is left).
    async fn pump(&mut self, flushing: bool) -> Result<(), Error> {
        loop {
            while let Some(joined) = self.tasks.try_join_next() {
                self.finished(joined)?;
            }
            if self.refresh {
                self.refresh_map().await?;
            }
            let now = Instant::now();
            if let Some(aggregator) = &mut self.aggregator {
                let ready = if flushing {
                    aggregator.flush_all()
                } else {
                    aggregator.poll_deadlines(now)
                };
                for (shard, aggregate) in ready {
                    self.push_aggregate(Some(shard), aggregate, now)?;
                }
            }
            while let Some(request) = self.queue.next_request(now, flushing) {
                let mut input = PutRecordsInput::new(request.entries);
                self.stream
                    .set(&mut input.stream_name, &mut input.stream_arn);
                let client = self.client.clone();
                let id = request.id;
                self.stats.requests += 1;
                self.tasks
                    .spawn(async move { (id, client.send(&input).await) });
            }
            let done = if flushing {
                self.queue.is_empty()
                    && self.tasks.is_empty()
                    && !self.refresh
                    && self
                        .aggregator
                        .as_ref()
                        .is_none_or(|a| a.deadline().is_none())
            } else {
                !self.queue.is_full()
            };
            if done {
                return Ok(());
            }
            // Wait for a request to finish or for something to fall due.
            let mut due = self.queue.next_due();
            if let Some(deadline) = self.aggregator.as_ref().and_then(ShardAggregator::deadline) {
                due = Some(due.map_or(deadline, |d| d.min(deadline)));
            }
            let wait = due.map(tokio::time::Instant::from_std);
            if self.tasks.is_empty() {
                match wait {
                    Some(at) => tokio::time::sleep_until(at).await,
                    // Nothing in flight and nothing due: the queue sends at once next round.
                    None => tokio::task::yield_now().await,
                }
                continue;
            }
            let joined = match wait {
                Some(at) => match tokio::time::timeout_at(at, self.tasks.join_next()).await {
                    Ok(joined) => joined,
                    Err(_) => continue,
                },
                None => self.tasks.join_next().await,
            };
            if let Some(joined) = joined {
                self.finished(joined)?;
            }
        }
    }

    /// A request task ended.
    fn finished(
        &mut self,
        joined: Result<(u64, Result<PutRecordsOutput, kds_client::Error>), tokio::task::JoinError>,
    ) -> Result<(), Error> {
        let (id, sent) = joined
            .map_err(|e| Error::new(ErrorKind::Write, "a PutRecords task failed").with_source(e))?;
        let now = Instant::now();
        let outcome = match sent {
            Ok(output) => Ok(output.records),
            Err(error) => {
                let class = error.service_error().map(|e| e.class());
                Err(RequestFailure {
                    code: error
                        .service_error()
                        .map_or("RequestFailed", |e| e.code())
                        .to_owned(),
                    message: error.to_string(),
                    throttled: class == Some(ErrorClass::Throttling),
                    terminal: class == Some(ErrorClass::Terminal),
                })
            }
        };
        // A request whose outcome is unknown may have been written.
        let unknown = matches!(&outcome, Err(f) if !f.throttled && !f.terminal);
        let completion = self.queue.completed(id, outcome, now);
        self.account(completion, unknown)
    }

    /// Counts what a request did, and checks where aggregates landed.
    fn account(&mut self, completion: Completion<Tag>, unknown: bool) -> Result<(), Error> {
        self.stats.retries += completion.retried as u64;
        if unknown {
            // Every retried entry of the request was in it.
            self.stats.maybe_duplicated += completion.retried as u64;
        }
        for written in completion.written {
            self.pending_rows -= written.tag.rows;
            self.stats.rows += written.tag.rows;
            self.stats.kinesis_records += 1;
            self.stats.aggregates += u64::from(written.tag.aggregate);
            self.stats.bytes +=
                (written.entry.data.len() + written.entry.partition_key.as_str().len()) as u64;
            if let Some(predicted) = &written.tag.predicted
                && predicted != &written.shard_id
            {
                self.refresh = true;
                if written.tag.aggregate {
                    self.misrouted.push((written.entry.data, written.shard_id));
                }
            }
        }
        if let Some(first) = completion.failed.first() {
            let rows: u64 = completion.failed.iter().map(|f| f.tag.rows).sum();
            self.pending_rows -= rows;
            self.stats.failed += rows;
            let cause = format!("{}: {}", first.code, first.message);
            if self.config.fail_on_error {
                return Err(Error::new(
                    ErrorKind::Write,
                    format!("{rows} rows were not written (sink.fail-on-error): {cause}"),
                ));
            }
            let failed = self.failed.get_or_insert((0, cause));
            failed.0 += rows;
        }
        Ok(())
    }

    /// Reads the shard map again: buffered records go to the shards that now own them, and
    /// user records of misrouted aggregates that their new shard does not own are sent again.
    async fn refresh_map(&mut self) -> Result<(), Error> {
        self.refresh = false;
        let map = self.shard_map().await?;
        let now = Instant::now();
        let Some(aggregator) = &mut self.aggregator else {
            return Ok(());
        };
        let rerouted = aggregator.replace_map(map);
        for (shard, aggregate) in rerouted.ready {
            self.push_aggregate(Some(shard), aggregate, now)?;
        }
        for record in rerouted.unsent {
            self.push_single(record, None, now)?;
        }
        for (data, shard) in std::mem::take(&mut self.misrouted) {
            let Some(range) = self.ranges.get(&shard).cloned() else {
                continue;
            };
            let record = KinesisRecord::new(data, "a", "0");
            let Ok(deaggregated) = Deaggregator::new().trust_digests().deaggregate(record) else {
                continue;
            };
            for user in deaggregated.records {
                if range.contains(&user.effective_hash_key()) {
                    continue;
                }
                // Counted as written with its aggregate, the stray is pending again.
                self.stats.rerouted += 1;
                self.stats.rows -= 1;
                self.pending_rows += 1;
                let record = ProducerRecord {
                    partition_key: user.partition_key_lossy().into_owned(),
                    explicit_hash_key: user.explicit_hash_key,
                    data: user.data,
                };
                self.route(record, now)?;
            }
        }
        Ok(())
    }

    /// Buffers a counted record as a Kinesis record of its own; `predicted`: the shard it
    /// should land on.
    fn push_single(
        &mut self,
        record: ProducerRecord,
        predicted: Option<ShardId>,
        now: Instant,
    ) -> Result<(), Error> {
        let entry = entry(record.partition_key, record.data, record.explicit_hash_key)?;
        let tag = Tag {
            rows: 1,
            predicted,
            aggregate: false,
        };
        self.queue.push(entry, tag, now);
        Ok(())
    }

    /// Sends everything buffered and waits until Kinesis acknowledged every record given so
    /// far.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Write`] when some records will not be written (their retries ran out or
    /// their error cannot be retried): how many, and the first error. They are counted in
    /// [`WriterStats::failed`]; the writer goes on with later records.
    pub async fn flush(&mut self) -> Result<(), Error> {
        self.pump(true).await?;
        match self.failed.take() {
            None => Ok(()),
            Some((rows, cause)) => Err(Error::new(
                ErrorKind::Write,
                format!("{rows} rows were not written: {cause}"),
            )),
        }
    }

    /// Flushes, and returns what the writer did.
    ///
    /// # Errors
    ///
    /// As [`flush`](Self::flush).
    pub async fn close(mut self) -> Result<WriterStats, Error> {
        self.flush().await?;
        Ok(self.stats)
    }
}

impl Drop for RecordWriter {
    fn drop(&mut self) {
        if self.pending_rows > 0 {
            tracing::warn!(
                rows = self.pending_rows,
                buffered_records = self.queue.buffered(),
                in_flight_requests = self.queue.in_flight(),
                "a record writer was dropped before every row it was given was written: \
                 those rows may not be written"
            );
        }
    }
}

/// A PutRecords entry.
fn entry(
    partition_key: String,
    data: Bytes,
    explicit_hash_key: Option<u128>,
) -> Result<PutRecordsRequestEntry, Error> {
    let key = PartitionKey::new(partition_key)
        .map_err(|e| Error::new(ErrorKind::Encode, "a partition key").with_source(e))?;
    let mut entry = PutRecordsRequestEntry::new(data, key);
    entry.explicit_hash_key = explicit_hash_key.map(HashKey);
    Ok(entry)
}

fn write_error(error: kds_client::Error) -> Error {
    Error::new(ErrorKind::Write, "writing the stream failed").with_source(error)
}

/// How a [`TableSink`] runs.
#[non_exhaustive]
#[derive(Clone, Debug, Default)]
pub struct SinkConfig {
    /// This writer's index among the table's writers: the `fixed` partitioner's key (Flink's
    /// subtask index).
    pub writer: usize,
    /// Keep each partition key's order (see [`WriterConfig::ordered`]).
    pub ordered: bool,
}

/// The sink of a Kinesis table: Arrow record batches in, the table's records out.
///
/// Rows are encoded in the table's format, keyed by its partitioner (`PARTITIONED BY`
/// columns, `random`, `fixed` or one registered in code), and written by a
/// [`RecordWriter`] configured by the table's `sink.*` options.
/// [`flush`](Self::flush) returns once every row written before it is acknowledged by Kinesis:
/// a pipeline acknowledges its source's rows after that, for at-least-once delivery with no
/// gap.
#[derive(Debug)]
pub struct TableSink {
    encoder: RowEncoder,
    writer: RecordWriter,
}

impl TableSink {
    /// Opens the sink of `definition` with `client`; `partitioners` holds partitioners
    /// registered in code (for `sink.partitioner` names other than `random` and `fixed`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Definition`] when the table cannot be written as defined;
    /// [`ErrorKind::Write`] when the stream cannot be described or listed.
    pub async fn open(
        definition: &TableDefinition,
        client: Client,
        partitioners: &Partitioners,
        config: SinkConfig,
    ) -> Result<Self, Error> {
        let encoder = definition
            .encoder(partitioners, config.writer)
            .map_err(Error::table)?;
        let stream =
            kds_proto::types::StreamName::new(definition.options.stream.clone()).map_err(|e| {
                Error::new(
                    ErrorKind::Definition,
                    format!("stream `{}`", definition.options.stream),
                )
                .with_source(e)
            })?;
        let mut writer_config = WriterConfig::from_table(definition);
        writer_config.ordered = config.ordered;
        let writer = RecordWriter::open(client, StreamId::Name(stream), writer_config).await?;
        Ok(Self { encoder, writer })
    }

    /// Writes the rows of `batch` (the table's physical columns, by name), waiting while the
    /// buffer is full.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Encode`] when a row cannot be encoded (the message names it) or is larger
    /// than the stream accepts: no row of the batch is buffered then;
    /// [`ErrorKind::Write`] as [`RecordWriter::write`].
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<(), Error> {
        let records = self.encoder.encode(batch).map_err(Error::table)?;
        let max = self.writer.queue.max_record_size();
        if let Some((row, record)) = records
            .iter()
            .enumerate()
            .find(|(_, r)| r.data.len() + r.partition_key.len() > max)
        {
            return Err(Error::new(
                ErrorKind::Encode,
                format!(
                    "row {row} encodes to {} bytes with its partition key, more than the {max} \
                     bytes the stream accepts",
                    record.data.len() + record.partition_key.len()
                ),
            ));
        }
        let now = Instant::now();
        for record in records {
            // Sizes were checked above, for the whole batch.
            self.writer.pending_rows += 1;
            self.writer
                .route(ProducerRecord::new(record.partition_key, record.data), now)?;
            if self.writer.queue.is_full() {
                self.writer.pump(false).await?;
            }
        }
        self.writer.pump(false).await
    }

    /// Waits until Kinesis acknowledged every row written so far.
    ///
    /// # Errors
    ///
    /// As [`RecordWriter::flush`].
    pub async fn flush(&mut self) -> Result<(), Error> {
        self.writer.flush().await
    }

    /// What the sink did so far.
    pub fn stats(&self) -> WriterStats {
        self.writer.stats()
    }

    /// Flushes, and returns what the sink did.
    ///
    /// # Errors
    ///
    /// As [`RecordWriter::flush`].
    pub async fn close(self) -> Result<WriterStats, Error> {
        self.writer.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(options: &str) -> TableDefinition {
        TableDefinition::parse(
            &format!(
                "CREATE TABLE t (id BIGINT) WITH ('connector' = 'kinesis', 'stream' = 's',
                   'aws.region' = 'us-east-1', 'format' = 'json' {options})"
            ),
            &[],
        )
        .unwrap()
    }

    #[test]
    fn the_writer_follows_the_sink_options_and_flinks_defaults() {
        let defaults = WriterConfig::from_table(&table(""));
        assert_eq!(defaults.batch_records, 500);
        assert_eq!(defaults.max_in_flight, 50);
        assert_eq!(defaults.max_buffered, 10_000);
        assert_eq!(defaults.flush_bytes, 5 * 1024 * 1024);
        assert_eq!(defaults.flush_after, Duration::from_secs(5));
        assert!(!defaults.fail_on_error);
        assert!(defaults.aggregation.is_none());
        let set = WriterConfig::from_table(&table(
            ", 'sink.batch.max-size' = '100', 'sink.requests.max-inflight' = '20',
               'sink.http-client.max-concurrency' = '4', 'sink.requests.max-buffered' = '300',
               'sink.flush-buffer.size' = '1024', 'sink.flush-buffer.timeout' = '250',
               'sink.fail-on-error' = 'true', 'sink.producer.aggregation-enabled' = 'true',
               'sink.producer.aggregation-max-count' = '7'",
        ));
        assert_eq!(set.batch_records, 100);
        assert_eq!(
            set.max_in_flight, 4,
            "the HTTP client's concurrency bounds it"
        );
        assert_eq!(set.max_buffered, 300);
        assert_eq!(set.flush_bytes, 1024);
        assert_eq!(set.flush_after, Duration::from_millis(250));
        assert!(set.fail_on_error);
        let aggregation = set.aggregation.expect("aggregating");
        assert_eq!(aggregation.max_count, 7);
        assert_eq!(aggregation.max_buffered_time, Duration::from_millis(250));
    }
}
