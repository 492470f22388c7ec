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
    /// Adapt the records asked for to the shard's read limit of 2 MiB/s
    /// (`scan.shard.adaptivereads`, off): after each page with records, the next call asks
    /// for as many records of the page's average size as the time since the previous answer
    /// allows at that rate (see [`adapted_max_records`]).
    pub adaptive: bool,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            max_records: 10_000,
            interval: Duration::from_millis(200),
            end_at: None,
            adaptive: false,
        }
    }
}

/// The bytes a shard serves per second to GetRecords.
const SHARD_READ_BYTES_PER_SECOND: f64 = 2.0 * 1024.0 * 1024.0;

/// Records to ask for next when reads adapt to the shard's 2 MiB/s limit: the bytes that
/// limit allows in `loop_time` (one GetRecords cycle, the interval's wait included), divided
/// by the average data size of the last page's `records` records of `bytes` bytes, between 1
/// and 10 000. `None` for a page without records or a zero loop time (keep the previous
/// count). This is the rule
/// of Flink's adaptive polling publisher, except that records are counted as Kinesis records
/// (what GetRecords' limit counts) where Flink counts the user records of KPL aggregates, and
/// so asks for several times too many when records are aggregated.
pub fn adapted_max_records(loop_time: Duration, records: usize, bytes: usize) -> Option<i32> {
    if records == 0 || loop_time.is_zero() {
        return None;
    }
    let average = (bytes / records) as f64;
    let allowed = SHARD_READ_BYTES_PER_SECOND * loop_time.as_secs_f64();
    // A zero average is unbounded; the float-to-int cast saturates.
    let count = (allowed / average) as i64;
    Some(count.clamp(1, 10_000) as i32)
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
    let mut max_records = config.max_records;
    let mut previous_answer: Option<Instant> = None;
    loop {
        let mut request = GetRecordsInput::new(iterator);
        request.limit = Some(max_records);
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
        if config.adaptive
            && let Some(previous) = previous_answer.replace(answered)
        {
            let bytes = output.records.iter().map(|r| r.data.len()).sum();
            let loop_time = answered.duration_since(previous);
            if let Some(adapted) = adapted_max_records(loop_time, output.records.len(), bytes) {
                max_records = adapted;
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapted_reads_ask_for_what_two_mebibytes_a_second_allow() {
        let ms = Duration::from_millis;
        for (loop_time, records, bytes, expected) in [
            // 200 ms cycles of 1 KiB records: 2 MiB / 5 / 1 KiB.
            (ms(200), 100, 100 * 1024, Some(409)),
            // Twice the time, twice the records.
            (ms(400), 7, 7 * 1024, Some(819)),
            // The average is an integer division: 1 500 / 2 = 750 bytes.
            (ms(1000), 2, 1_500, Some(2796)),
            // Small records: capped at GetRecords' 10 000.
            (ms(200), 10, 100, Some(10_000)),
            // Empty data: unbounded, so capped.
            (ms(200), 3, 0, Some(10_000)),
            // Records larger than a cycle allows: at least one.
            (ms(200), 1, 1024 * 1024, Some(1)),
            // A zero loop time keeps the previous count.
            (ms(0), 5, 5_000, None),
            // No records: keep the previous count.
            (ms(200), 0, 0, None),
        ] {
            assert_eq!(
                adapted_max_records(loop_time, records, bytes),
                expected,
                "{loop_time:?}, {records} records of {bytes} bytes"
            );
        }
    }
}
