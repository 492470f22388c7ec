//! Every shard of a stream, read through enhanced fan-out: a [`FanIn`] whose driver keeps each
//! shard subscribed with a [`ShardReader`], children started once all their parents have been
//! read to the end (parents before children, so a key's records stay in order across
//! resharding). FanOutDriver are spread over connections of their own, at most
//! [`ReaderConfig::subscriptions_per_connection`] on each.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kds_client::{
    Batch, BatchSender, Client, FanIn, ReadBatches, ShardCursor, ShardDriver, StreamId,
};
use kds_proto::model::{Shard, StartingPosition};
use kds_proto::types::{ConsumerArn, ShardId};

use crate::error::Error;
use crate::reader::{ReaderConfig, ShardReader};
use tokio::sync::Semaphore;

/// A client with its own connections, and how many subscriptions use it.
#[derive(Debug)]
struct Connection {
    client: Client,
    subscriptions: usize,
}

/// Counters summed over every shard's reader.
#[derive(Debug, Default)]
struct Counters {
    repeats_dropped: AtomicU64,
    protocol_breaks: AtomicU64,
    empty_subscriptions: AtomicU64,
}

/// Reads every shard of a stream, following splits and merges (see [`FanIn`], which also says
/// why [`next_batch`](Self::next_batch) is cancel safe and how errors resume).
#[derive(Debug)]
pub struct StreamReader {
    fan_in: FanIn<FanOutDriver>,
}

impl StreamReader {
    /// Reads the `shards` of `stream` (a ListShards result) for `consumer` from `start`:
    /// shards whose parents are not in the list at once, the others once their parents have
    /// ended (see [`ShardLineage`](kds_client::ShardLineage) for where they start). Each shard
    /// buffers at most one batch ahead of the reader.
    pub fn new(
        client: Client,
        stream: StreamId,
        consumer: ConsumerArn,
        shards: &[Shard],
        start: &StartingPosition,
        config: ReaderConfig,
    ) -> Self {
        let end_at = config.end_at;
        let driver = FanOutDriver::new(client.clone(), consumer, config);
        Self {
            fan_in: FanIn::new(client, stream, shards, start, end_at, driver),
        }
    }

    /// Records the service delivered again after a resubscription (not after the last one
    /// returned), dropped, over all shards so far (see [`ShardReader::repeats_dropped`]).
    pub fn repeats_dropped(&self) -> u64 {
        self.fan_in.driver().repeats_dropped()
    }

    /// Events that broke the protocol, over all shards so far (see
    /// [`ShardReader::protocol_breaks`]).
    pub fn protocol_breaks(&self) -> u64 {
        self.fan_in.driver().protocol_breaks()
    }

    /// Subscriptions that ended without any event, over all shards so far.
    pub fn empty_subscriptions(&self) -> u64 {
        self.fan_in.driver().empty_subscriptions()
    }

    /// How many connections (clients of their own) the subscriptions are spread over.
    pub fn connections(&self) -> usize {
        self.fan_in.driver().connections()
    }

    /// The next batch of any shard; `None` once every shard has ended and no child is left.
    ///
    /// # Errors
    ///
    /// A shard's error (see [`ShardReader::next_batch`]); calling again resumes that shard.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future loses no batch and no child shard.
    pub async fn next_batch(&mut self) -> Result<Option<Batch>, Error> {
        self.fan_in.next_batch().await
    }
}

impl ReadBatches for StreamReader {
    type Error = Error;

    fn next_batch(&mut self) -> impl Future<Output = Result<Option<Batch>, Error>> + Send {
        self.fan_in.next_batch()
    }
}

/// Keeps shards subscribed, spread over connections: the [`ShardDriver`] of [`StreamReader`],
/// for a [`FanIn`] of one's own (one that places shards itself, say).
#[derive(Debug)]
pub struct FanOutDriver {
    client: Client,
    consumer: ConsumerArn,
    config: ReaderConfig,
    /// Subscriptions that may be open at once ([`ReaderConfig::max_subscriptions`]).
    permits: Arc<Semaphore>,
    /// The clients subscriptions are spread over, each with connections of its own (none
    /// shared with the caller's client, whose connection may carry streams of its own).
    connections: Vec<Connection>,
    /// Which connection each shard being read uses.
    connection_of: HashMap<ShardId, usize>,
    counters: Arc<Counters>,
}

impl FanOutDriver {
    /// Subscribes shards for `consumer` with connections of its own made from `client`, as
    /// `config` says (its `end_at` is the [`FanIn`]'s to apply: pass the same one there).
    pub fn new(client: Client, consumer: ConsumerArn, config: ReaderConfig) -> Self {
        Self {
            client,
            consumer,
            permits: Arc::new(Semaphore::new(config.max_subscriptions.max(1))),
            config,
            connections: Vec::new(),
            connection_of: HashMap::new(),
            counters: Arc::default(),
        }
    }

    /// Records the service sent again after resubscriptions, dropped, over all shards.
    pub fn repeats_dropped(&self) -> u64 {
        self.counters.repeats_dropped.load(Ordering::Relaxed)
    }

    /// Events that broke the protocol, over all shards.
    pub fn protocol_breaks(&self) -> u64 {
        self.counters.protocol_breaks.load(Ordering::Relaxed)
    }

    /// Subscriptions that ended without any event, over all shards.
    pub fn empty_subscriptions(&self) -> u64 {
        self.counters.empty_subscriptions.load(Ordering::Relaxed)
    }

    /// How many connections the subscriptions are spread over.
    pub fn connections(&self) -> usize {
        self.connections.len()
    }

    /// A connection with room for one more subscription.
    fn connection_for(&mut self, shard: &ShardId) -> Client {
        let limit = self.config.subscriptions_per_connection.max(1);
        let index = match self
            .connections
            .iter()
            .position(|c| c.subscriptions < limit)
        {
            Some(index) => index,
            None => {
                self.connections.push(Connection {
                    client: self.client.with_own_connections(),
                    subscriptions: 0,
                });
                self.connections.len() - 1
            }
        };
        self.connections[index].subscriptions += 1;
        self.connection_of.insert(shard.clone(), index);
        self.connections[index].client.clone()
    }
}

impl ShardDriver for FanOutDriver {
    type Error = Error;

    fn read(
        &mut self,
        cursor: ShardCursor,
        out: BatchSender<Error>,
    ) -> impl Future<Output = (ShardCursor, Result<(), Error>)> + Send + 'static {
        let client = self.connection_for(cursor.shard());
        let mut reader =
            ShardReader::from_cursor(client, self.consumer.clone(), cursor, self.config.clone())
                .limited_by(Arc::clone(&self.permits));
        let counters = Arc::clone(&self.counters);
        // A resumed cursor brings the repeats it counted before.
        let mut counted = (reader.repeats_dropped(), reader.protocol_breaks(), 0);
        async move {
            let result = loop {
                let next = reader.next_batch().await;
                // Counted before the batch is handed on.
                let now = (
                    reader.repeats_dropped(),
                    reader.protocol_breaks(),
                    reader.empty_subscriptions(),
                );
                counters
                    .repeats_dropped
                    .fetch_add(now.0 - counted.0, Ordering::Relaxed);
                counters
                    .protocol_breaks
                    .fetch_add(now.1 - counted.1, Ordering::Relaxed);
                counters
                    .empty_subscriptions
                    .fetch_add(now.2 - counted.2, Ordering::Relaxed);
                counted = now;
                match next {
                    Ok(Some(batch)) => {
                        if !out.send(batch).await {
                            break Ok(());
                        }
                    }
                    Ok(None) => break Ok(()),
                    Err(error) => break Err(error),
                }
            };
            (reader.into_cursor(), result)
        }
    }

    fn released(&mut self, shard: &ShardId) {
        if let Some(index) = self.connection_of.remove(shard) {
            self.connections[index].subscriptions -= 1;
        }
    }
}
