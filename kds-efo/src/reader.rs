//! A shard kept subscribed: each subscription ends after about five minutes (or earlier on
//! errors), and the reader subscribes again from where the last one stopped, so that no record
//! is lost or repeated.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use kds_client::{
    Batch, ChildOf, Client, Next, Page, ReadBatches, RetryPolicy, ShardCursor, ShardEnd,
};
use kds_proto::ErrorCode;
use kds_proto::model::{StartingPosition, SubscribeToShardInput};
use kds_proto::types::{ConsumerArn, ShardId, Timestamp};

use crate::error::Error;
use crate::subscription::Subscription;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
    /// For a [`StreamReader`](crate::StreamReader): at most this many subscriptions open at
    /// once over all its shards (`scan.stream.efo.http-client.max-concurrency`, 10 000); a
    /// shard beyond it subscribes once another subscription ends.
    pub max_subscriptions: usize,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default_for("SubscribeToShard"),
            inactivity: Duration::from_secs(35),
            resource_in_use_wait: Duration::from_secs(5),
            end_at: None,
            subscriptions_per_connection: 100,
            max_subscriptions: 10_000,
        }
    }
}

/// Reads one shard through enhanced fan-out, subscribing again whenever a subscription ends.
///
/// What to deliver, where to resubscribe and when the shard ended are its
/// [`ShardCursor`]'s decisions. A subscription that breaks the protocol (an event without a
/// continuation on an open shard, or no event at all) is abandoned and made again from the last
/// record delivered, after a backoff counted like an error's.
#[derive(Debug)]
pub struct ShardReader {
    client: Client,
    consumer: ConsumerArn,
    config: ReaderConfig,
    cursor: ShardCursor,
    /// The open subscription, with its share of the reader's subscription limit.
    subscription: Option<(Subscription, Option<OwnedSemaphorePermit>)>,
    /// The subscription limit shared with other shards' readers.
    permits: Option<Arc<Semaphore>>,
    /// Events read from the current subscription.
    events: u64,
    /// An error to back off from before subscribing again (after records it came with were
    /// delivered).
    pending: Option<Error>,
    /// Failures in a row.
    failures: u32,
    subscriptions: u64,
    empty_subscriptions: u64,
}

impl ShardReader {
    /// A reader of `shard` for `consumer`, starting at `start`, treating the shard as open: an
    /// event without a continuation that names no children is a protocol break. For a shard
    /// closed when listed (it has an ending sequence number), use
    /// [`from_cursor`](Self::from_cursor) with `ShardCursor::new(shard, start, true, end_at)`:
    /// its last event then ends it even when the service names no children.
    pub fn new(
        client: Client,
        consumer: ConsumerArn,
        shard: ShardId,
        start: StartingPosition,
        config: ReaderConfig,
    ) -> Self {
        let cursor = ShardCursor::new(shard, start, false, config.end_at);
        Self::from_cursor(client, consumer, cursor, config)
    }

    /// A reader that goes on from `cursor` (its shard, where it stopped, what it delivered).
    pub fn from_cursor(
        client: Client,
        consumer: ConsumerArn,
        cursor: ShardCursor,
        config: ReaderConfig,
    ) -> Self {
        Self {
            client,
            consumer,
            config,
            cursor,
            subscription: None,
            permits: None,
            events: 0,
            pending: None,
            failures: 0,
            subscriptions: 0,
            empty_subscriptions: 0,
        }
    }

    /// Shares `permits` with other readers: a subscription is opened only with one of them,
    /// held until it ends.
    pub(crate) fn limited_by(mut self, permits: Arc<Semaphore>) -> Self {
        self.permits = Some(permits);
        self
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
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses no record: a record is handed out in the same poll that
    /// decodes it. A subscription being read is kept; one being opened is abandoned, and a
    /// backoff being waited is not waited again.
    pub async fn next_batch(&mut self) -> Result<Option<Batch>, Error> {
        loop {
            if self.cursor.end().is_some() {
                self.subscription = None;
                return Ok(None);
            }
            if let Some(error) = self.pending.take() {
                self.back_off(error).await?;
            }
            let subscription = match &mut self.subscription {
                Some((subscription, _)) => subscription,
                None => {
                    // Waiting for a share is cancel safe: nothing is taken until it is given.
                    let permit = match &self.permits {
                        Some(permits) => Arc::clone(permits).acquire_owned().await.ok(),
                        None => None,
                    };
                    let position = self.cursor.request(Timestamp::from(SystemTime::now()));
                    let request = SubscribeToShardInput::new(
                        self.consumer.clone(),
                        self.cursor.shard().clone(),
                        position,
                    );
                    match Subscription::open(&self.client, &request).await {
                        Ok(subscription) => {
                            self.subscriptions += 1;
                            self.events = 0;
                            &mut self.subscription.insert((subscription, permit)).0
                        }
                        Err(error) => {
                            self.pending = Some(error);
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
                    // The service closed the subscription (about every five minutes): made
                    // again at once, unless it ended without a single event.
                    Ok(Ok(None)) => {
                        self.subscription = None;
                        if self.events == 0 {
                            self.empty_subscriptions += 1;
                            self.pending = Some(Error::protocol(format!(
                                "the subscription to {} ended without any event",
                                self.cursor.shard().as_str()
                            )));
                        }
                        continue;
                    }
                    Ok(Err(error)) => {
                        self.subscription = None;
                        self.pending = Some(error);
                        continue;
                    }
                };
            self.events += 1;
            let step = self.cursor.advance(Page::from_event(event), Instant::now());
            match step.next {
                Next::Resubscribe => {
                    self.subscription = None;
                    self.pending = Some(Error::protocol(format!(
                        "an event of open shard {} has no continuation sequence number and \
                         names no child shards",
                        self.cursor.shard().as_str()
                    )));
                }
                Next::Ended => {
                    self.failures = 0;
                    self.subscription = None;
                }
                _ => self.failures = 0,
            }
            if let Some(batch) = step.into_batch(self.cursor.shard()) {
                return Ok(Some(batch));
            }
        }
    }

    /// Waits before subscribing again after `error`, or returns it when it is terminal or the
    /// retries ran out.
    async fn back_off(&mut self, error: Error) -> Result<(), Error> {
        let in_use = error.error_code() == Some(ErrorCode::ResourceInUse);
        if !(in_use || error.is_retryable()) || self.failures >= self.config.retry.max_retries {
            // Reading again starts a new round of retries.
            self.failures = 0;
            return Err(error.for_shard(self.cursor.shard()));
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

    /// The shards that follow this one, once it has ended (empty when the service named none).
    pub fn children(&self) -> Option<&[ChildOf]> {
        match self.cursor.end() {
            Some(ShardEnd::Closed(children)) => Some(children),
            _ => None,
        }
    }

    /// Records the service delivered again after a resubscription (not after the last one
    /// returned), dropped.
    pub fn repeats_dropped(&self) -> u64 {
        self.cursor.repeats_dropped()
    }

    /// Events that broke the protocol (no continuation on an open shard), each followed by a
    /// new subscription.
    pub fn protocol_breaks(&self) -> u64 {
        self.cursor.protocol_breaks()
    }

    /// Subscriptions that ended without any event, each followed by a backoff.
    pub fn empty_subscriptions(&self) -> u64 {
        self.empty_subscriptions
    }

    /// How many subscriptions were made so far.
    pub fn subscriptions(&self) -> u64 {
        self.subscriptions
    }

    /// The shard read.
    pub fn shard(&self) -> &ShardId {
        self.cursor.shard()
    }

    /// Where the next subscription would start.
    pub fn position(&self) -> &StartingPosition {
        self.cursor.position()
    }

    /// The reader's cursor: to resume the shard later with [`from_cursor`](Self::from_cursor).
    pub fn into_cursor(self) -> ShardCursor {
        self.cursor
    }
}

impl ReadBatches for ShardReader {
    type Error = Error;

    fn next_batch(&mut self) -> impl Future<Output = Result<Option<Batch>, Error>> + Send {
        Self::next_batch(self)
    }
}
