//! Reading a stream by polling: GetShardIterator, then GetRecords in a loop, for every shard,
//! children after their parents. The polling counterpart of enhanced fan-out: a [`FanIn`] over
//! a GetRecords driver.

use std::time::Duration;

use kds_proto::ErrorCode;
use kds_proto::model::{GetRecordsInput, GetShardIteratorInput, Shard, StartingPosition};
use kds_proto::types::{ShardIterator, Timestamp};
use tokio::time::Instant;

use crate::batches::ReadBatches;
use crate::client::Client;
use crate::cursor::{Batch, Page, ShardCursor};
use crate::error::Error;
use crate::fan_in::{BatchSender, FanIn, ShardDriver};
use crate::stream_id::StreamId;

/// How a [`PollingReader`] polls.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct PollConfig {
    /// Records asked for per GetRecords call (`scan.shard.getrecords.maxrecordcount`, 10000).
    pub max_records: i32,
    /// The time from a GetRecords answer on a shard to the next call
    /// (`scan.shard.getrecords.intervalmillis`, 200 ms: Kinesis allows five calls per second
    /// per shard). Measured from the answer, the calls of the loop reach the service at least
    /// this far apart; retries of a failed call follow the client's GetRecords policy.
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

/// Reads every shard of a stream with GetRecords, following splits and merges: one task per
/// shard being read, each at most one batch ahead of the caller (see [`FanIn`], which also
/// says why [`next_batch`](Self::next_batch) is cancel safe).
///
/// An expired iterator is replaced by one after the last record read (or at the starting
/// position when none was); other errors are retried by the client's GetRecords and
/// GetShardIterator policies and then returned, and the next call resumes the shard.
#[derive(Debug)]
pub struct PollingReader {
    fan_in: FanIn<PollingDriver>,
}

impl PollingReader {
    /// Reads the `shards` of `stream` (a ListShards result) from `start`: shards whose parents
    /// are not in the list at once, the others once their parents have ended (see
    /// [`ShardLineage`](crate::ShardLineage) for where they start).
    pub fn new(
        client: Client,
        stream: StreamId,
        shards: &[Shard],
        start: &StartingPosition,
        config: PollConfig,
    ) -> Self {
        let end_at = config.end_at;
        let driver = PollingDriver::new(client.clone(), stream.clone(), config);
        Self {
            fan_in: FanIn::new(client, stream, shards, start, end_at, driver),
        }
    }

    /// The next batch of any shard (never empty); `None` once every shard has ended (or
    /// reached [`PollConfig::end_at`]) and no child is left to read.
    ///
    /// # Errors
    ///
    /// The first error of a shard whose retries ran out; calling again resumes that shard.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future loses no batch and no child shard.
    pub async fn next_batch(&mut self) -> Result<Option<Batch>, Error> {
        self.fan_in.next_batch().await
    }

    /// Shards being read now.
    pub fn running(&self) -> usize {
        self.fan_in.running()
    }
}

/// Reads a shard with GetShardIterator and GetRecords: the [`ShardDriver`] of
/// [`PollingReader`], for a [`FanIn`] of one's own (one that places shards itself, say).
#[derive(Debug)]
pub struct PollingDriver {
    client: Client,
    stream: StreamId,
    config: PollConfig,
}

impl PollingDriver {
    /// Reads shards of `stream` with `client`, as `config` says (its `end_at` is the
    /// [`FanIn`]'s to apply: pass the same one there).
    pub fn new(client: Client, stream: StreamId, config: PollConfig) -> Self {
        Self {
            client,
            stream,
            config,
        }
    }
}

impl ShardDriver for PollingDriver {
    type Error = Error;

    fn read(
        &mut self,
        mut cursor: ShardCursor,
        out: BatchSender<Error>,
    ) -> impl Future<Output = (ShardCursor, Result<(), Error>)> + Send + 'static {
        let (client, stream, config) = (
            self.client.clone(),
            self.stream.clone(),
            self.config.clone(),
        );
        async move {
            let result = poll(&client, &stream, &config, &mut cursor, &out).await;
            let result = result.map_err(|e| e.for_shard(cursor.shard()));
            (cursor, result)
        }
    }
}

/// A new iterator at the cursor's position; `None` when the service has none to give (a
/// closed shard read to its end).
async fn iterator(
    client: &Client,
    stream: &StreamId,
    cursor: &mut ShardCursor,
) -> Result<Option<ShardIterator>, Error> {
    let position = cursor.request(Timestamp::from(std::time::SystemTime::now()));
    let mut request = GetShardIteratorInput::new(cursor.shard().clone(), position.r#type.clone());
    stream.set(&mut request.stream_name, &mut request.stream_arn);
    request.starting_sequence_number = position.sequence_number;
    request.timestamp = position.timestamp;
    Ok(client.send(&request).await?.shard_iterator)
}

/// Polls until the cursor ends or the reader went away. Each call waits `config.interval`
/// after the previous answer arrived: the service saw that call before it answered, so two
/// calls of the loop never reach it closer than the interval, whatever the network's delays.
async fn poll(
    client: &Client,
    stream: &StreamId,
    config: &PollConfig,
    cursor: &mut ShardCursor,
    out: &BatchSender<Error>,
) -> Result<(), Error> {
    let Some(mut iterator) = iterator(client, stream, cursor).await? else {
        cursor.read_to_end();
        return Ok(());
    };
    loop {
        let mut request = GetRecordsInput::new(iterator);
        request.limit = Some(config.max_records);
        request.stream_arn = stream.arn().cloned();
        let output = match client.send(&request).await {
            Ok(output) => output,
            Err(error) if error.error_code() == Some(ErrorCode::ExpiredIterator) => {
                match self::iterator(client, stream, cursor).await? {
                    Some(fresh) => iterator = fresh,
                    None => {
                        cursor.read_to_end();
                        return Ok(());
                    }
                }
                tokio::time::sleep(config.interval).await;
                continue;
            }
            Err(error) => return Err(error),
        };
        let answered = Instant::now();
        let (page, next) = Page::from_get_records(output);
        let step = cursor.advance(page, answered.into_std());
        if let Some(batch) = step.into_batch(cursor.shard())
            && !out.send(batch).await
        {
            return Ok(());
        }
        match next {
            Some(next) if cursor.end().is_none() => iterator = next,
            _ => return Ok(()),
        }
        tokio::time::sleep_until(answered + config.interval).await;
    }
}

impl ReadBatches for PollingReader {
    type Error = Error;

    fn next_batch(&mut self) -> impl Future<Output = Result<Option<Batch>, Error>> + Send {
        self.fan_in.next_batch()
    }
}
