//! Writing user records to a stream: PutRecords batches of up to 500 records and 10 MiB,
//! optionally packed into KPL aggregates per shard, failed records retried by the client, and
//! every record counted as written or failed.
//!
//! Each partition key's records are sent in the order they were added; a record retried
//! after throttling may land after later records of its key (as with the KPL).

use std::time::{Duration, Instant};

use bytes::Bytes;
use kds_agg::{AggregatorConfig, ProducerRecord, Routed, ShardAggregator, ShardMap};
use kds_client::{Client, PutOrdering, StreamId};
use kds_proto::Limits;
use kds_proto::model::{PutRecordsInput, PutRecordsRequestEntry};
use kds_proto::types::{HashKey, PartitionKey, ShardId};

use crate::connect::StreamInfo;
use crate::failure::Failure;

/// How long a partly filled batch waits for more records, unless told otherwise.
pub(crate) const LINGER: Duration = Duration::from_millis(100);

/// What a [`Writer`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    /// User records written.
    pub(crate) written: u64,
    /// User records not written (refused before sending, or failed for good).
    pub(crate) failed: u64,
    /// Kinesis records sent (aggregates count once).
    pub(crate) kinesis_records: u64,
    /// Why the first failed record failed.
    pub(crate) first_failure: Option<String>,
}

/// Writes user records to one stream.
pub(crate) struct Writer {
    client: Client,
    stream: StreamId,
    aggregator: Option<ShardAggregator<ShardId>>,
    limits: Limits,
    /// The records of the next request, and how many user records each carries.
    batch: Vec<PutRecordsRequestEntry>,
    batch_users: Vec<u64>,
    batch_bytes: usize,
    /// When the oldest record of the batch was added.
    batch_started: Option<Instant>,
    /// How long a partly filled batch waits for more records.
    linger: Duration,
    totals: Totals,
}

impl Writer {
    /// A writer to `stream`; with `aggregate`, user records are packed into KPL aggregates, one
    /// per open shard (so each lands on the shard its own key maps to). A record waits at most
    /// `linger` for its batch, and for its aggregate, to fill.
    pub(crate) fn new(
        client: Client,
        stream: &StreamInfo,
        aggregate: bool,
        linger: Duration,
    ) -> Result<Self, Failure> {
        let aggregator = if aggregate {
            let open = stream.shards.iter().filter(|s| !s.is_closed()).map(|s| {
                (
                    s.shard_id.clone(),
                    s.hash_key_range.starting_hash_key.0..=s.hash_key_range.ending_hash_key.0,
                )
            });
            let map = ShardMap::new(open).map_err(|e| {
                Failure::new(format!(
                    "the stream's open shards cannot place records: {e}"
                ))
            })?;
            let config = AggregatorConfig::default().with_max_buffered_time(linger);
            Some(
                ShardAggregator::new(map, config)
                    .map_err(|e| Failure::new(format!("cannot aggregate: {e}")))?,
            )
        } else {
            None
        };
        Ok(Self {
            client,
            stream: stream.id.clone(),
            aggregator,
            limits: stream.limits,
            batch: Vec::new(),
            batch_users: Vec::new(),
            batch_bytes: 0,
            batch_started: None,
            linger,
            totals: Totals::default(),
        })
    }

    /// The counts so far.
    pub(crate) fn totals(&self) -> &Totals {
        &self.totals
    }

    /// When [`flush_due`](Self::flush_due) has work to do: the batch's linger or an aggregate's
    /// buffering time running out.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let batch = self.batch_started.map(|t| t + self.linger);
        let aggregate = self.aggregator.as_ref().and_then(ShardAggregator::deadline);
        match (batch, aggregate) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Adds a user record: `aggregate` packs it into a KPL aggregate when the writer
    /// aggregates. Sends a batch when one is full.
    pub(crate) async fn add(
        &mut self,
        key: &str,
        data: Bytes,
        aggregate: bool,
    ) -> Result<(), Failure> {
        // Checked here, once, also for records that travel inside an aggregate.
        let partition_key = match PartitionKey::new(key) {
            Ok(partition_key) => partition_key,
            Err(e) => {
                self.fail(1, format!("partition key `{key}`: {e}"));
                return Ok(());
            }
        };
        let now = Instant::now();
        match &mut self.aggregator {
            Some(aggregator) if aggregate => {
                let record = ProducerRecord::new(key, data);
                match aggregator.add(&record, now) {
                    Routed::Buffered => Ok(()),
                    Routed::Ready { aggregate, .. } => self.push_aggregate(aggregate).await,
                    Routed::TooLarge { flushed, .. } => {
                        if let Some(flushed) = flushed
                            && let Err(failure) = self.push_aggregate(flushed).await
                        {
                            self.fail(1, format!("not sent: {failure}"));
                            return Err(failure);
                        }
                        self.push(partition_key, record.data, None, 1).await
                    }
                    Routed::Unmapped => self.push(partition_key, record.data, None, 1).await,
                }
            }
            _ => self.push(partition_key, data, None, 1).await,
        }
    }

    /// Sends what is due: aggregates past their buffering time (they have waited long
    /// enough: the batch goes with them), a batch past its linger.
    pub(crate) async fn flush_due(&mut self) -> Result<(), Failure> {
        let now = Instant::now();
        let due = self
            .aggregator
            .as_mut()
            .map(|a| a.poll_deadlines(now))
            .unwrap_or_default();
        let aggregates_due = !due.is_empty();
        self.push_aggregates(due).await?;
        if aggregates_due || self.batch_started.is_some_and(|t| t + self.linger <= now) {
            self.send().await?;
        }
        Ok(())
    }

    /// Sends everything buffered and returns the counts.
    pub(crate) async fn finish(mut self) -> (Totals, Option<Failure>) {
        let ready = self
            .aggregator
            .as_mut()
            .map(ShardAggregator::flush_all)
            .unwrap_or_default();
        let sent = match self.push_aggregates(ready).await {
            Ok(()) => self.send().await,
            Err(failure) => Err(failure),
        };
        match sent {
            Ok(()) => (self.totals, None),
            Err(failure) => {
                let why = failure.to_string();
                (self.abandon(&why), Some(failure))
            }
        }
    }

    /// Pushes `ready` aggregates; when sending fails, the ones not pushed count as failed.
    async fn push_aggregates(
        &mut self,
        ready: Vec<(ShardId, kds_agg::Aggregate)>,
    ) -> Result<(), Failure> {
        let mut ready = ready.into_iter();
        while let Some((_, aggregate)) = ready.next() {
            if let Err(failure) = self.push_aggregate(aggregate).await {
                let rest = ready.map(|(_, a)| a.user_records as u64).sum();
                self.fail(rest, format!("not sent: {failure}"));
                return Err(failure);
            }
        }
        Ok(())
    }

    /// Gives up on what is buffered after `why` stopped the writing: every record not yet
    /// written counts as failed. Returns the counts.
    pub(crate) fn abandon(mut self, why: &str) -> Totals {
        let mut unsent: u64 = self.batch_users.iter().sum();
        if let Some(aggregator) = &mut self.aggregator {
            unsent += aggregator
                .flush_all()
                .iter()
                .map(|(_, a)| a.user_records as u64)
                .sum::<u64>();
        }
        if unsent > 0 {
            self.fail(unsent, format!("not sent: {why}"));
        }
        self.totals
    }

    async fn push_aggregate(&mut self, aggregate: kds_agg::Aggregate) -> Result<(), Failure> {
        let count = aggregate.user_records as u64;
        // `"a"`, or the one user record's key, checked when it was added.
        let partition_key = match PartitionKey::new(aggregate.partition_key) {
            Ok(partition_key) => partition_key,
            Err(e) => {
                self.fail(count, format!("aggregate partition key: {e}"));
                return Ok(());
            }
        };
        self.push(
            partition_key,
            aggregate.data,
            aggregate.explicit_hash_key,
            count,
        )
        .await
    }

    /// Counts a user record that cannot be written, and why.
    pub(crate) fn refuse(&mut self, why: String) {
        self.fail(1, why);
    }

    fn fail(&mut self, user_records: u64, why: String) {
        self.totals.failed += user_records;
        self.totals.first_failure.get_or_insert(why);
    }

    async fn push(
        &mut self,
        partition_key: PartitionKey,
        data: Bytes,
        hash_key: Option<u128>,
        user_records: u64,
    ) -> Result<(), Failure> {
        let size = data.len() + partition_key.as_str().len();
        if size > self.limits.max_record_size {
            self.fail(
                user_records,
                format!(
                    "a record of {size} bytes (data and partition key) is over the limit of {} bytes",
                    self.limits.max_record_size
                ),
            );
            return Ok(());
        }
        if (self.batch.len() == Limits::MAX_PUT_RECORDS_ENTRIES
            || self.batch_bytes + size > Limits::MAX_PUT_RECORDS_BYTES)
            && let Err(failure) = self.send().await
        {
            self.fail(user_records, format!("not sent: {failure}"));
            return Err(failure);
        }
        let mut entry = PutRecordsRequestEntry::new(data, partition_key);
        entry.explicit_hash_key = hash_key.map(HashKey);
        self.batch.push(entry);
        self.batch_users.push(user_records);
        self.batch_bytes += size;
        self.batch_started.get_or_insert_with(Instant::now);
        if self.batch.len() == Limits::MAX_PUT_RECORDS_ENTRIES {
            self.send().await?;
        }
        Ok(())
    }

    /// Sends the batch, retrying failed records with the client's PutRecords policy.
    async fn send(&mut self) -> Result<(), Failure> {
        self.batch_started = None;
        self.batch_bytes = 0;
        if self.batch.is_empty() {
            return Ok(());
        }
        let users = std::mem::take(&mut self.batch_users);
        let mut request = PutRecordsInput::new(std::mem::take(&mut self.batch));
        self.stream
            .set(&mut request.stream_name, &mut request.stream_arn);
        let outcome = match self
            .client
            .put_records_retrying(&request, PutOrdering::Unordered)
            .await
        {
            Ok(outcome) => outcome,
            Err(error) => {
                self.fail(users.iter().sum(), error.to_string());
                return Err(error.into());
            }
        };
        for (&users, result) in users.iter().zip(&outcome.entries) {
            if result.is_failure() {
                let why = format!(
                    "{}: {}",
                    result.error_code.as_deref().unwrap_or("failed"),
                    result.error_message.as_deref().unwrap_or_default()
                );
                self.fail(users, why);
            } else {
                self.totals.written += users;
                self.totals.kinesis_records += 1;
            }
        }
        Ok(())
    }
}
