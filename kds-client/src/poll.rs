//! Reading a stream by polling: GetShardIterator, then GetRecords in a loop, for every shard,
//! children after their parents. The polling counterpart of enhanced fan-out.

use std::collections::HashSet;
use std::time::Duration;

use kds_proto::model::{GetRecordsInput, GetShardIteratorInput, Record, Shard, StartingPosition};
use kds_proto::types::{ShardId, ShardIterator, Timestamp};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::client::Client;
use crate::error::Error;
use crate::lineage::{ChildOf, ShardLineage};
use crate::stream_id::StreamId;

/// Records read from one shard in one response (or one enhanced fan-out event).
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// The shard the records are from.
    pub shard_id: ShardId,
    /// The records, in order.
    pub records: Vec<Record>,
    /// How far behind the tip of the shard the response was, in milliseconds.
    pub millis_behind_latest: i64,
}

/// How a [`PollingReader`] polls.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct PollConfig {
    /// Records asked for per GetRecords call (`scan.shard.getrecords.maxrecordcount`, 10000).
    pub max_records: i32,
    /// The pause between two GetRecords calls on a shard (`scan.shard.getrecords.intervalmillis`,
    /// 200 ms: Kinesis allows five calls per second per shard).
    pub interval: Duration,
    /// Read only what the stream held at this time (a bounded read): an open shard ends at
    /// its first record that arrived later, which is not delivered, or once it is caught up
    /// (a response without records, 0 ms behind). Closed shards end, and their children are
    /// read, as usual. `None` (the default): wait for new records forever.
    pub end_at: Option<Timestamp>,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            max_records: 10_000,
            interval: Duration::from_millis(200),
            end_at: None,
        }
    }
}

/// What a shard's task reports.
enum Report {
    Batch(Batch),
    /// The shard was read to its end; the children its last response named.
    Ended(ShardId, Vec<ChildOf>),
    /// The shard was read up to [`PollConfig::end_at`].
    AtEnd,
    Failed(Error),
}

/// Reads every shard of a stream with GetRecords, following splits and merges: one task per
/// shard being read, each at most one batch ahead of the caller.
///
/// An expired iterator is replaced by one after the last record read (or at the starting
/// position when none was); other errors are retried by the client's GetRecords and
/// GetShardIterator policies and then returned.
#[derive(Debug)]
pub struct PollingReader {
    client: Client,
    stream: StreamId,
    config: PollConfig,
    lineage: ShardLineage,
    /// Shards closed when listed: they end by themselves, never at [`PollConfig::end_at`]
    /// for being caught up.
    closed: HashSet<ShardId>,
    running: usize,
    reports: mpsc::Receiver<Report>,
    sender: mpsc::Sender<Report>,
    /// The shards' tasks, stopped when the reader is dropped.
    tasks: JoinSet<()>,
}

impl PollingReader {
    /// Reads the `shards` of `stream` (a ListShards result) from `start`: shards whose parents
    /// are not in the list at once, the others once their parents have ended (see
    /// [`ShardLineage`] for where they start).
    pub fn new(
        client: Client,
        stream: StreamId,
        shards: &[Shard],
        start: &StartingPosition,
        config: PollConfig,
    ) -> Self {
        let (sender, reports) = mpsc::channel(1);
        let (lineage, ready) = ShardLineage::new(shards, start);
        let mut reader = Self {
            client,
            stream,
            config,
            lineage,
            closed: shards
                .iter()
                .filter(|s| s.is_closed())
                .map(|s| s.shard_id.clone())
                .collect(),
            running: 0,
            reports,
            sender,
            tasks: JoinSet::new(),
        };
        for (shard, position) in ready {
            reader.start(shard, position);
        }
        reader
    }

    fn start(&mut self, shard: ShardId, position: StartingPosition) {
        self.running += 1;
        let poller = ShardPoller {
            client: self.client.clone(),
            stream: self.stream.clone(),
            closed: self.closed.contains(&shard),
            shard,
            position,
            config: self.config.clone(),
        };
        self.tasks.spawn(poller.run(self.sender.clone()));
    }

    /// A shard's task ended.
    fn stopped(&mut self) {
        self.running -= 1;
        // Reap finished tasks, so that a long read across many reshardings stays small.
        while self.tasks.try_join_next().is_some() {}
    }

    /// The next batch of any shard (never empty); `None` once every shard has ended (or
    /// reached [`PollConfig::end_at`]) and no child is left to read.
    ///
    /// # Errors
    ///
    /// The first error of a shard whose retries ran out; that shard is not read further.
    pub async fn next_batch(&mut self) -> Result<Option<Batch>, Error> {
        loop {
            if self.running == 0 {
                return Ok(None);
            }
            let Some(report) = self.reports.recv().await else {
                return Ok(None);
            };
            match report {
                Report::Batch(batch) => return Ok(Some(batch)),
                Report::AtEnd => self.stopped(),
                Report::Failed(error) => {
                    self.stopped();
                    return Err(error);
                }
                Report::Ended(shard, mut children) => {
                    self.stopped();
                    if children.is_empty() {
                        children = self.client.children_of(&self.stream, &shard).await?;
                    }
                    for (child, position) in self.lineage.ended(&shard, children) {
                        self.start(child, position);
                    }
                }
            }
        }
    }
}

/// One shard's GetRecords loop.
struct ShardPoller {
    client: Client,
    stream: StreamId,
    shard: ShardId,
    /// Closed when listed: read to its end, even past a response that is caught up (an
    /// emulator may answer one before the end).
    closed: bool,
    /// Where a new iterator starts: the starting position, then after the last record read.
    position: StartingPosition,
    config: PollConfig,
}

impl ShardPoller {
    async fn run(mut self, reports: mpsc::Sender<Report>) {
        let report = match self.poll(&reports).await {
            Ok(report) => report,
            Err(error) => Report::Failed(error),
        };
        let _ = reports.send(report).await;
    }

    /// A new iterator; `None` when the service has none to give (a closed shard read to its
    /// end).
    async fn iterator(&self) -> Result<Option<ShardIterator>, Error> {
        let mut request =
            GetShardIteratorInput::new(self.shard.clone(), self.position.r#type.clone());
        self.stream
            .set(&mut request.stream_name, &mut request.stream_arn);
        request.starting_sequence_number = self.position.sequence_number.clone();
        request.timestamp = self.position.timestamp;
        let output = self.client.send(&request).await?;
        Ok(output.shard_iterator)
    }

    /// Polls until the shard ends, reaches the end time, or the reader went away (`AtEnd`
    /// then, which nobody reads).
    async fn poll(&mut self, reports: &mpsc::Sender<Report>) -> Result<Report, Error> {
        let Some(mut iterator) = self.iterator().await? else {
            return Ok(Report::Ended(self.shard.clone(), Vec::new()));
        };
        loop {
            let mut request = GetRecordsInput::new(iterator.clone());
            request.limit = Some(self.config.max_records);
            request.stream_arn = self.stream.arn().cloned();
            let mut page = match self.client.send(&request).await {
                Ok(page) => page,
                Err(error) if error.service_code() == Some("ExpiredIteratorException") => {
                    match self.iterator().await? {
                        Some(fresh) => iterator = fresh,
                        None => return Ok(Report::Ended(self.shard.clone(), Vec::new())),
                    }
                    tokio::time::sleep(self.config.interval).await;
                    continue;
                }
                Err(error) => return Err(error),
            };
            let behind = page.millis_behind_latest.unwrap_or(0);
            let caught_up = page.records.is_empty() && behind == 0;
            let past_end = self.config.end_at.and_then(|end| {
                page.records
                    .iter()
                    .position(|r| r.approximate_arrival_timestamp.is_some_and(|t| t > end))
            });
            if let Some(first_after) = past_end {
                page.records.truncate(first_after);
            }
            if let Some(last) = page.records.last() {
                self.position =
                    StartingPosition::after_sequence_number(last.sequence_number.clone());
                let batch = Batch {
                    shard_id: self.shard.clone(),
                    records: page.records,
                    millis_behind_latest: behind,
                };
                if reports.send(Report::Batch(batch)).await.is_err() {
                    return Ok(Report::AtEnd);
                }
            }
            if past_end.is_some() {
                return Ok(Report::AtEnd);
            }
            match page.next_shard_iterator {
                None => {
                    let children = page.child_shards.unwrap_or_default();
                    return Ok(Report::Ended(
                        self.shard.clone(),
                        children.iter().map(ChildOf::from).collect(),
                    ));
                }
                Some(next) => iterator = next,
            }
            if caught_up && !self.closed && self.config.end_at.is_some() {
                return Ok(Report::AtEnd);
            }
            tokio::time::sleep(self.config.interval).await;
        }
    }
}
