//! A shard kept subscribed: each subscription ends after about five minutes (or earlier on
//! errors), and the reader subscribes again from where the last one stopped, so that no record
//! is lost or repeated.

use std::time::Duration;

use kds_client::{Batch, Client, RetryPolicy};
use kds_proto::model::{ChildShard, StartingPosition, SubscribeToShardInput};
use kds_proto::types::{ConsumerArn, SequenceNumber, ShardId, Timestamp};

use crate::batches::Batches;
use crate::error::Error;
use crate::subscription::Subscription;

/// How a [`ShardReader`] subscribes, waits and gives up.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct ReaderConfig {
    /// Retries of a failing subscription (transient errors, timeouts, broken connections) in a
    /// row, and their backoff: the connector's `scan.shard.subscribetoshard.*` (10 retries from
    /// 1 s to 2 s, growing 1.5× each).
    pub retry: RetryPolicy,
    /// A subscription silent this long is abandoned and made again (an inactivity watchdog;
    /// the service sends an event at least every five seconds).
    pub inactivity: Duration,
    /// The wait after ResourceInUseException (another subscription of the consumer to the
    /// shard is still open): at least five seconds, plus up to a second of jitter.
    pub resource_in_use_wait: Duration,
    /// Read only what the shard held at this time (a bounded read): an open shard ends at its
    /// first record that arrived later, which is not delivered, or once it is caught up (an
    /// event without records, 0 ms behind); [`ShardReader::children`] is then `None`. Closed
    /// shards end, with their children, as usual. `None` (the default): stay subscribed.
    pub end_at: Option<Timestamp>,
    /// For a [`StreamReader`](crate::StreamReader): at most this many subscriptions share an
    /// HTTP/2 connection; more go over connections of their own. Streams beyond a server's
    /// concurrent-stream limit wait for another to end (a subscription lasts up to five
    /// minutes); the default, 100, is the smallest limit RFC 9113 recommends servers allow.
    pub subscriptions_per_connection: usize,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default_for("SubscribeToShard"),
            inactivity: Duration::from_secs(35),
            resource_in_use_wait: Duration::from_secs(5),
            end_at: None,
            subscriptions_per_connection: 100,
        }
    }
}

/// Reads one shard through enhanced fan-out, subscribing again whenever a subscription ends.
#[derive(Debug)]
pub struct ShardReader {
    client: Client,
    consumer: ConsumerArn,
    shard: ShardId,
    config: ReaderConfig,
    /// Where the next subscription starts.
    position: StartingPosition,
    subscription: Option<Subscription>,
    /// Failures in a row.
    failures: u32,
    subscriptions: u64,
    /// The sequence number of the last record returned.
    last_delivered: Option<SequenceNumber>,
    repeats_dropped: u64,
    children: Option<Vec<ChildShard>>,
    ended: bool,
}

impl ShardReader {
    /// A reader of `shard` for `consumer`, starting at `start`.
    pub fn new(
        client: Client,
        consumer: ConsumerArn,
        shard: ShardId,
        start: StartingPosition,
        config: ReaderConfig,
    ) -> Self {
        Self {
            client,
            consumer,
            shard,
            config,
            position: start,
            subscription: None,
            failures: 0,
            subscriptions: 0,
            last_delivered: None,
            repeats_dropped: 0,
            children: None,
            ended: false,
        }
    }

    /// The next batch of records; `None` once the shard has ended (it was split or merged, and
    /// every record was read): [`children`](Self::children) then says which shards follow.
    /// With [`ReaderConfig::end_at`], also `None` once an open shard is read up to that time.
    /// Events without records advance the position and are not returned.
    ///
    /// # Errors
    ///
    /// A terminal error (an unknown consumer or shard, access denied…), or the last failure
    /// once the retries of [`ReaderConfig::retry`] ran out. Reading again after an error
    /// subscribes again from the same position.
    pub async fn next_batch(&mut self) -> Result<Option<Batch>, Error> {
        loop {
            if self.ended {
                return Ok(None);
            }
            let subscription = match &mut self.subscription {
                Some(subscription) => subscription,
                None => {
                    let request = SubscribeToShardInput::new(
                        self.consumer.clone(),
                        self.shard.clone(),
                        self.position.clone(),
                    );
                    match Subscription::open(&self.client, &request).await {
                        Ok(subscription) => {
                            self.subscriptions += 1;
                            self.subscription.insert(subscription)
                        }
                        Err(error) => {
                            self.back_off(error).await?;
                            continue;
                        }
                    }
                }
            };
            let event =
                match tokio::time::timeout(self.config.inactivity, subscription.next_event()).await
                {
                    // The watchdog: a silent subscription is made again.
                    Err(_) => {
                        self.subscription = None;
                        continue;
                    }
                    Ok(Ok(Some(event))) => event,
                    // The service closed the subscription (about every five minutes).
                    Ok(Ok(None)) => {
                        self.subscription = None;
                        continue;
                    }
                    Ok(Err(error)) => {
                        self.subscription = None;
                        self.back_off(error).await?;
                        continue;
                    }
                };
            self.failures = 0;
            // Sequence numbers grow within a shard: anything not after the last record
            // delivered is a repeat (a service that resumed too early), dropped and counted.
            let mut records = event.records;
            if let Some(last) = &self.last_delivered {
                let before = records.len();
                records.retain(|r| &r.sequence_number > last);
                self.repeats_dropped += (before - records.len()) as u64;
            }
            let past_end = self.config.end_at.and_then(|end| {
                records
                    .iter()
                    .position(|r| r.approximate_arrival_timestamp.is_some_and(|t| t > end))
            });
            if let Some(first_after) = past_end {
                records.truncate(first_after);
                self.ended = true;
                self.subscription = None;
            }
            if let Some(last) = records.last() {
                self.last_delivered = Some(last.sequence_number.clone());
            }
            // The shard is closed and every record was delivered: AWS sends no continuation
            // (with the children). ferrokinesis names the children on every event of a closed
            // shard and keeps a continuation: its end is the first such event without new
            // records.
            let children = event.child_shards.filter(|c| !c.is_empty());
            if past_end.is_none()
                && (event.continuation_sequence_number.is_none()
                    || (children.is_some() && records.is_empty()))
            {
                self.ended = true;
                self.subscription = None;
                self.children = Some(children.unwrap_or_default());
            }
            // Resume after the last record delivered (the continuation names it on AWS), or
            // after the continuation when the event had none.
            let resume = match (event.continuation_sequence_number, records.last()) {
                (None, _) => None,
                (Some(_), Some(last)) => Some(last.sequence_number.clone()),
                (Some(continuation), None) => Some(continuation),
            };
            if let Some(resume) = resume {
                self.position = StartingPosition::after_sequence_number(resume);
            }
            if records.is_empty()
                && !self.ended
                && self.config.end_at.is_some()
                && event.millis_behind_latest == 0
            {
                self.ended = true;
                self.subscription = None;
            }
            if !records.is_empty() {
                return Ok(Some(Batch {
                    shard_id: self.shard.clone(),
                    records,
                    millis_behind_latest: event.millis_behind_latest,
                }));
            }
        }
    }

    /// Waits before subscribing again after `error`, or returns it when it is terminal or the
    /// retries ran out.
    async fn back_off(&mut self, error: Error) -> Result<(), Error> {
        let in_use = error.service_code() == Some("ResourceInUseException");
        if !(in_use || error.is_retryable()) || self.failures >= self.config.retry.max_retries {
            return Err(error);
        }
        let wait = if in_use {
            self.config.resource_in_use_wait + Duration::from_millis(fastrand::u64(0..1000))
        } else {
            self.config.retry.backoff(self.failures, fastrand::f64())
        };
        self.failures += 1;
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// The reader as a [`Stream`](futures_core::Stream) of batches.
    pub fn into_stream(self) -> Batches<Self> {
        Batches::new(self, |mut reader| {
            Box::pin(async move {
                let next = reader.next_batch().await;
                (next, reader)
            })
        })
    }

    /// The shards that follow this one, once it has ended (empty when the service named none).
    pub fn children(&self) -> Option<&[ChildShard]> {
        self.children.as_deref()
    }

    /// Records the service delivered again after a resubscription (not after the last one
    /// returned), dropped.
    pub fn repeats_dropped(&self) -> u64 {
        self.repeats_dropped
    }

    /// How many subscriptions were made so far.
    pub fn subscriptions(&self) -> u64 {
        self.subscriptions
    }

    /// The shard read.
    pub fn shard(&self) -> &ShardId {
        &self.shard
    }

    /// Where the next subscription would start.
    pub fn position(&self) -> &StartingPosition {
        &self.position
    }
}
