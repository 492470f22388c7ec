//! Every shard of a stream, read through enhanced fan-out: one [`ShardReader`] per open shard,
//! each in a task of its own, and a shard's children started once all their parents have been
//! read to the end (parents before children, so a key's records stay in order across
//! resharding). Subscriptions are spread over connections of their own, at most
//! [`ReaderConfig::subscriptions_per_connection`] on each.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kds_client::{Batch, ChildOf, Client, ShardLineage, StreamId};
use kds_proto::model::{Shard, StartingPosition};
use kds_proto::types::{ConsumerArn, ShardId};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::batches::Batches;
use crate::error::Error;
use crate::reader::{ReaderConfig, ShardReader};

/// What a shard's task reports.
enum Report {
    Batch(Batch),
    /// The shard was read to its end; its children, as the service named them.
    Ended(ShardId, Vec<ChildOf>),
    /// The shard was read up to [`ReaderConfig::end_at`].
    AtEnd(ShardId),
    Failed(ShardId, Error),
}

/// A client with its own connections, and how many subscriptions use it.
#[derive(Debug)]
struct Connection {
    client: Client,
    subscriptions: usize,
}

/// Reads every shard of a stream, following splits and merges.
#[derive(Debug)]
pub struct StreamReader {
    client: Client,
    /// The clients subscriptions are spread over, each with connections of its own (none
    /// shared with the caller's client, whose connection may carry streams of its own).
    connections: Vec<Connection>,
    /// Which connection each running shard uses.
    connection_of: HashMap<ShardId, usize>,
    stream: StreamId,
    consumer: ConsumerArn,
    config: ReaderConfig,
    lineage: ShardLineage,
    running: usize,
    reports: mpsc::Receiver<Report>,
    sender: mpsc::Sender<Report>,
    /// The shards' tasks, stopped when the reader is dropped.
    tasks: JoinSet<()>,
    /// Records the service sent again after a resubscription, dropped by the shards' readers.
    repeats_dropped: Arc<AtomicU64>,
}

impl StreamReader {
    /// Reads the `shards` of `stream` (a ListShards result) for `consumer` from `start`:
    /// shards whose parents are not in the list at once, the others once their parents have
    /// ended (see [`ShardLineage`] for where they start). Each shard buffers at most one
    /// batch ahead of the reader.
    pub fn new(
        client: Client,
        stream: StreamId,
        consumer: ConsumerArn,
        shards: &[Shard],
        start: &StartingPosition,
        config: ReaderConfig,
    ) -> Self {
        let (sender, reports) = mpsc::channel(1);
        let (lineage, ready) = ShardLineage::new(shards, start);
        let mut reader = Self {
            connections: Vec::new(),
            connection_of: HashMap::new(),
            client,
            stream,
            consumer,
            config,
            lineage,
            running: 0,
            reports,
            sender,
            tasks: JoinSet::new(),
            repeats_dropped: Arc::default(),
        };
        for (shard, position) in ready {
            reader.start(shard, position);
        }
        reader
    }

    fn start(&mut self, shard: ShardId, position: StartingPosition) {
        self.running += 1;
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
        let mut reader = ShardReader::new(
            self.connections[index].client.clone(),
            self.consumer.clone(),
            shard.clone(),
            position,
            self.config.clone(),
        );
        let sender = self.sender.clone();
        let repeats = Arc::clone(&self.repeats_dropped);
        self.tasks.spawn(async move {
            let mut counted = 0;
            loop {
                let next = reader.next_batch().await;
                // Repeats are counted before the batch is handed on.
                repeats.fetch_add(reader.repeats_dropped() - counted, Ordering::Relaxed);
                counted = reader.repeats_dropped();
                let report = match next {
                    Ok(Some(batch)) => Report::Batch(batch),
                    Ok(None) => match reader.children() {
                        Some(children) => Report::Ended(
                            shard.clone(),
                            children.iter().map(ChildOf::from).collect(),
                        ),
                        None => Report::AtEnd(shard.clone()),
                    },
                    Err(error) => Report::Failed(shard.clone(), error),
                };
                let last = !matches!(report, Report::Batch(_));
                // The reader went away: stop.
                if sender.send(report).await.is_err() || last {
                    return;
                }
            }
        });
    }

    /// A shard's task ended: its connection has room for another subscription.
    fn stopped(&mut self, shard: &ShardId) {
        self.running -= 1;
        // Reap finished tasks, so that a long read across many reshardings stays small.
        while self.tasks.try_join_next().is_some() {}
        if let Some(index) = self.connection_of.remove(shard) {
            self.connections[index].subscriptions -= 1;
        }
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

    /// Records the service delivered again after a resubscription (not after the last one
    /// returned), dropped, over all shards so far (see [`ShardReader::repeats_dropped`]).
    pub fn repeats_dropped(&self) -> u64 {
        self.repeats_dropped.load(Ordering::Relaxed)
    }

    /// How many connections (clients of their own) the subscriptions are spread over.
    pub fn connections(&self) -> usize {
        self.connections.len()
    }

    /// The next batch of any shard; `None` once every shard has ended and no child is left.
    ///
    /// # Errors
    ///
    /// The first shard error (see [`ShardReader::next_batch`]); that shard is not read further.
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
                Report::Failed(shard, error) => {
                    self.stopped(&shard);
                    return Err(error);
                }
                Report::AtEnd(shard) => self.stopped(&shard),
                Report::Ended(shard, mut children) => {
                    self.stopped(&shard);
                    if children.is_empty() {
                        // The service named none: ask which shards descend from this one.
                        children = self
                            .client
                            .children_of(&self.stream, &shard)
                            .await
                            .map_err(Error::client)?;
                    }
                    for (child, position) in self.lineage.ended(&shard, children) {
                        self.start(child, position);
                    }
                }
            }
        }
    }
}
