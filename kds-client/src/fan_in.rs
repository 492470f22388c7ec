//! Every shard of a stream read at once: one task per shard, each at most one batch ahead of the
//! caller, children started once all of their parents have ended. Generic over how one shard is
//! read ([`ShardDriver`]): the polling reader and kds-efo's enhanced fan-out reader are both a
//! [`FanIn`] over their own driver.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::time::Duration;

use kds_proto::model::{Shard, StartingPosition};
use kds_proto::types::{ShardId, Timestamp};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::client::Client;
use crate::cursor::{Batch, ShardCursor, ShardEnd};
use crate::error::Error;
use crate::lineage::{ChildOf, ShardLineage};
use crate::stream_id::StreamId;

/// How a [`FanIn`] reads one shard: the part that differs between polling and enhanced
/// fan-out.
pub trait ShardDriver: Send + 'static {
    /// The error of a failed read.
    type Error: From<Error> + Send + 'static;

    /// Reads `cursor`'s shard until the cursor ends, the read fails, or `out` reports that
    /// the reader went away; hands every batch to `out`. Returns the cursor, from which a
    /// failed read is resumed later.
    fn read(
        &mut self,
        cursor: ShardCursor,
        out: BatchSender<Self::Error>,
    ) -> impl Future<Output = (ShardCursor, Result<(), Self::Error>)> + Send + 'static;

    /// The read of `shard` is over (ended or failed): what it held, a connection say, is free
    /// again.
    fn released(&mut self, shard: &ShardId) {
        let _ = shard;
    }
}

/// What a shard's task reports.
enum Report<E> {
    Batch(Batch),
    /// The shard was read to its end; its children.
    Ended(ShardId, Vec<ChildOf>),
    /// The shard was read up to the end time of a bounded read.
    AtEndTime(ShardId),
    /// The read failed; it resumes from the cursor.
    Failed(ShardCursor, E),
}

/// How a shard's task begins.
enum Start<F> {
    /// Reading, with the driver's future.
    Read(F),
    /// Its reading ended before (its children are still to be found).
    Ended(Box<ShardCursor>),
}

/// Where a [`ShardDriver`] hands its batches.
pub struct BatchSender<E> {
    reports: mpsc::Sender<Report<E>>,
}

impl<E> BatchSender<E> {
    /// Hands on a batch once the reader has room for it; `false` when the reader went away
    /// (the driver then stops).
    pub async fn send(&self, batch: Batch) -> bool {
        self.reports.send(Report::Batch(batch)).await.is_ok()
    }
}

impl<E> std::fmt::Debug for BatchSender<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchSender")
            .field("closed", &self.reports.is_closed())
            .finish()
    }
}

/// Reads every shard of a stream through a [`ShardDriver`], following splits and merges.
///
/// Built from a ListShards result and a starting position: shards whose parents are not listed
/// start at once, the others once their parents have ended ([`ShardLineage`] says where each
/// starts). Each shard is read by a task of its own that holds at most one batch the caller has
/// not taken. A shard that ended without naming its children has them looked up with ListShards
/// inside its task, retried with backoff while the failure is transient, so no child is lost.
///
/// # Errors do not end the read
///
/// [`next_batch`](Self::next_batch) returns a shard's error once; calling it again resumes that
/// shard from its last delivered record (or looks up its children again). Callers that stop at
/// the first error simply drop the reader.
///
/// # Cancel safety
///
/// [`next_batch`](Self::next_batch) is cancel safe: its only await is the receipt of a report,
/// and everything after a receipt runs without awaiting. Dropping its future (in `select!` or
/// `timeout`) loses no batch and no child shard.
pub struct FanIn<D: ShardDriver> {
    client: Client,
    stream: StreamId,
    end_at: Option<Timestamp>,
    driver: D,
    lineage: ShardLineage,
    /// Shards closed when listed.
    closed: HashSet<ShardId>,
    /// Shard tasks running (a report still to come from each).
    running: usize,
    /// Reads that failed, resumed at the next call.
    failed: VecDeque<ShardCursor>,
    reports: mpsc::Receiver<Report<D::Error>>,
    sender: mpsc::Sender<Report<D::Error>>,
    /// The shards' tasks, stopped when the reader is dropped.
    tasks: JoinSet<()>,
}

impl<D: ShardDriver> std::fmt::Debug for FanIn<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanIn")
            .field("stream", &self.stream)
            .field("running", &self.running)
            .field("failed", &self.failed.len())
            .field("waiting", &self.lineage.waiting())
            .finish_non_exhaustive()
    }
}

impl<D: ShardDriver> FanIn<D> {
    /// Reads the `shards` of `stream` (a ListShards result) from `start` with `driver`; with
    /// `end_at`, only what the stream held at that time (see [`ShardCursor`]). `client` looks
    /// up children that a shard's end did not name.
    pub fn new(
        client: Client,
        stream: StreamId,
        shards: &[Shard],
        start: &StartingPosition,
        end_at: Option<Timestamp>,
        driver: D,
    ) -> Self {
        let (sender, reports) = mpsc::channel(1);
        let (lineage, ready) = ShardLineage::new(shards, start);
        let mut fan_in = Self {
            client,
            stream,
            end_at,
            driver,
            lineage,
            closed: shards
                .iter()
                .filter(|s| s.is_closed())
                .map(|s| s.shard_id.clone())
                .collect(),
            running: 0,
            failed: VecDeque::new(),
            reports,
            sender,
            tasks: JoinSet::new(),
        };
        for (shard, position) in ready {
            let closed = fan_in.closed.contains(&shard);
            fan_in.start(ShardCursor::new(shard, position, closed, end_at));
        }
        fan_in
    }

    /// The driver, for the counters it keeps.
    pub fn driver(&self) -> &D {
        &self.driver
    }

    /// Shards being read now.
    pub fn running(&self) -> usize {
        self.running
    }

    fn start(&mut self, cursor: ShardCursor) {
        self.running += 1;
        let sender = self.sender.clone();
        let (client, stream) = (self.client.clone(), self.stream.clone());
        // A cursor that already ended (its children lookup failed) only needs the lookup.
        let start = if cursor.end().is_none() {
            let out = BatchSender {
                reports: sender.clone(),
            };
            Start::Read(self.driver.read(cursor, out))
        } else {
            Start::Ended(Box::new(cursor))
        };
        self.tasks.spawn(async move {
            let (mut cursor, result) = match start {
                Start::Read(read) => read.await,
                Start::Ended(cursor) => (*cursor, Ok(())),
            };
            let report = match result {
                Err(error) => Report::Failed(cursor, error),
                Ok(()) => match cursor.end().cloned() {
                    // The reader went away.
                    None => return,
                    Some(ShardEnd::EndTime) => Report::AtEndTime(cursor.shard().clone()),
                    Some(ShardEnd::Closed(children)) if !children.is_empty() => {
                        Report::Ended(cursor.shard().clone(), children)
                    }
                    Some(ShardEnd::Closed(_)) => {
                        match look_up_children(&client, &stream, cursor.shard(), &sender).await {
                            Ok(children) => {
                                cursor.set_children(children.clone());
                                Report::Ended(cursor.shard().clone(), children)
                            }
                            Err(error) => Report::Failed(cursor, error.into()),
                        }
                    }
                },
            };
            let _ = sender.send(report).await;
        });
    }

    /// A shard's task ended.
    fn stopped(&mut self, shard: &ShardId) {
        self.running -= 1;
        self.driver.released(shard);
        // Reap finished tasks, so that a long read across many reshardings stays small.
        while self.tasks.try_join_next().is_some() {}
    }

    /// The next batch of any shard (never empty); `None` once every shard has ended (or
    /// reached the end time) and no child is left to read.
    ///
    /// # Errors
    ///
    /// A shard's error once its driver's retries ran out, or a failed lookup of a shard's
    /// children that retrying cannot mend (access denied, say). The next call resumes that
    /// shard.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: see [`FanIn`].
    pub async fn next_batch(&mut self) -> Result<Option<Batch>, D::Error> {
        while let Some(cursor) = self.failed.pop_front() {
            self.start(cursor);
        }
        loop {
            if self.running == 0 {
                return Ok(None);
            }
            // The only await: `recv` is cancel safe, and what follows does not await.
            let Some(report) = self.reports.recv().await else {
                return Ok(None);
            };
            match report {
                Report::Batch(batch) => return Ok(Some(batch)),
                Report::AtEndTime(shard) => self.stopped(&shard),
                Report::Failed(cursor, error) => {
                    self.stopped(&cursor.shard().clone());
                    self.failed.push_back(cursor);
                    return Err(error);
                }
                Report::Ended(shard, children) => {
                    self.stopped(&shard);
                    for (child, position) in self.lineage.ended(&shard, children) {
                        let closed = self.closed.contains(&child);
                        self.start(ShardCursor::new(child, position, closed, self.end_at));
                    }
                }
            }
        }
    }
}

/// The children of `shard`, from ListShards: transient failures are retried with backoff (up
/// to a minute apart) for as long as the reader is there; others are returned.
async fn look_up_children<E>(
    client: &Client,
    stream: &StreamId,
    shard: &ShardId,
    reader: &mpsc::Sender<Report<E>>,
) -> Result<Vec<ChildOf>, Error> {
    let mut wait = Duration::from_millis(100);
    loop {
        match client.children_of(stream, shard).await {
            Ok(children) => return Ok(children),
            Err(error) if error.is_retryable() && !reader.is_closed() => {
                tracing::warn!(
                    shard = shard.as_str(),
                    "looking up the children of an ended shard failed, retrying in {wait:?}: {error}"
                );
                tokio::time::sleep(wait.mul_f64(0.5 + fastrand::f64() / 2.0)).await;
                wait = (wait * 2).min(Duration::from_secs(60));
            }
            Err(error) => return Err(error),
        }
    }
}
