//! Every shard of a stream, read through enhanced fan-out: one [`ShardReader`] per open shard,
//! each in a task of its own, and a shard's children started once all their parents have been
//! read to the end (parents before children, so a key's records stay in order across
//! resharding).

use std::collections::{HashMap, HashSet};

use kds_client::Client;
use kds_proto::model::{ListShardsInput, Shard, StartingPosition};
use kds_proto::types::{ConsumerArn, ShardId, ShardIteratorType, StreamArn};
use tokio::sync::mpsc;

use crate::error::Error;
use crate::reader::{Batch, ReaderConfig, ShardReader};

/// What a shard's task reports.
enum Report {
    Batch(Batch),
    /// The shard was read to its end; its children, as the service named them (parent ids
    /// per child).
    Ended(ShardId, Vec<(ShardId, Vec<ShardId>)>),
    Failed(Error),
}

/// Reads every shard of a stream, following splits and merges.
#[derive(Debug)]
pub struct StreamReader {
    client: Client,
    stream: StreamArn,
    consumer: ConsumerArn,
    config: ReaderConfig,
    /// Shards waiting for their parents, with the parents they wait for.
    waiting: HashMap<ShardId, HashSet<ShardId>>,
    finished: HashSet<ShardId>,
    started: HashSet<ShardId>,
    running: usize,
    reports: mpsc::Receiver<Report>,
    sender: mpsc::Sender<Report>,
}

impl StreamReader {
    /// Reads the `shards` of `stream` (a ListShards result) for `consumer`: shards whose parents
    /// are not in the list start at `start`, the others at TRIM_HORIZON once their parents have
    /// ended. Each shard buffers at most one batch ahead of the reader.
    pub fn new(
        client: Client,
        stream: StreamArn,
        consumer: ConsumerArn,
        shards: &[Shard],
        start: &StartingPosition,
        config: ReaderConfig,
    ) -> Self {
        let (sender, reports) = mpsc::channel(1);
        let mut reader = Self {
            client,
            stream,
            consumer,
            config,
            waiting: HashMap::new(),
            finished: HashSet::new(),
            started: HashSet::new(),
            running: 0,
            reports,
            sender,
        };
        let listed: HashSet<&ShardId> = shards.iter().map(|s| &s.shard_id).collect();
        for shard in shards {
            let parents: HashSet<ShardId> =
                [&shard.parent_shard_id, &shard.adjacent_parent_shard_id]
                    .into_iter()
                    .flatten()
                    .filter(|p| listed.contains(p))
                    .cloned()
                    .collect();
            if parents.is_empty() {
                reader.start(shard.shard_id.clone(), start.clone());
            } else {
                reader.waiting.insert(shard.shard_id.clone(), parents);
            }
        }
        reader
    }

    fn start(&mut self, shard: ShardId, position: StartingPosition) {
        if !self.started.insert(shard.clone()) {
            return;
        }
        self.running += 1;
        let mut reader = ShardReader::new(
            self.client.clone(),
            self.consumer.clone(),
            shard.clone(),
            position,
            self.config.clone(),
        );
        let sender = self.sender.clone();
        tokio::spawn(async move {
            loop {
                let report = match reader.next_batch().await {
                    Ok(Some(batch)) => Report::Batch(batch),
                    Ok(None) => Report::Ended(
                        shard.clone(),
                        reader
                            .children()
                            .unwrap_or_default()
                            .iter()
                            .map(|c| (c.shard_id.clone(), c.parent_shards.clone()))
                            .collect(),
                    ),
                    Err(error) => Report::Failed(error),
                };
                let last = !matches!(report, Report::Batch(_));
                // The reader went away: stop.
                if sender.send(report).await.is_err() || last {
                    return;
                }
            }
        });
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
                Report::Failed(error) => {
                    self.running -= 1;
                    return Err(error);
                }
                Report::Ended(shard, mut children) => {
                    self.running -= 1;
                    self.finished.insert(shard.clone());
                    if children.is_empty() {
                        // The service named none: ask which shards descend from this one.
                        children = self.children_of(&shard).await?;
                    }
                    for (child, parents) in children {
                        let waiting = self
                            .waiting
                            .entry(child.clone())
                            .or_insert_with(|| parents.into_iter().collect());
                        waiting.retain(|p| !self.finished.contains(p));
                        if waiting.is_empty() {
                            self.waiting.remove(&child);
                            self.start(
                                child,
                                StartingPosition::new(ShardIteratorType::TrimHorizon),
                            );
                        }
                    }
                }
            }
        }
    }

    async fn children_of(&self, parent: &ShardId) -> Result<Vec<(ShardId, Vec<ShardId>)>, Error> {
        let mut list = ListShardsInput::new();
        list.stream_arn = Some(self.stream.clone());
        let shards = self
            .client
            .list_all_shards(&list)
            .await
            .map_err(Error::client)?;
        Ok(shards
            .into_iter()
            .filter(|s| {
                s.parent_shard_id.as_ref() == Some(parent)
                    || s.adjacent_parent_shard_id.as_ref() == Some(parent)
            })
            .map(|s| {
                let parents = [s.parent_shard_id, s.adjacent_parent_shard_id]
                    .into_iter()
                    .flatten()
                    .collect();
                (s.shard_id, parents)
            })
            .collect())
    }
}
