//! Every shard of a stream read at once: one task per shard, each at most one batch ahead of the
//! caller, children started once all of their parents have ended. Generic over how one shard is
//! read ([`ShardDriver`]): the polling reader and kds-efo's enhanced fan-out reader are both a
//! [`FanIn`] over their own driver.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use kds_proto::model::{Shard, StartingPosition};
use kds_proto::types::{ShardId, Timestamp};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinError, JoinSet};

use crate::client::Client;
use crate::cursor::{Batch, ShardCursor, ShardEnd};
use crate::error::{Error, ErrorKind};
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

/// What a [`FanIn`] read.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Records of one shard (never empty).
    Batch(Batch),
    /// A shard was read to its end (after its last batch); the shards that follow it. A
    /// [`FanIn`] that follows the lineage has started those whose parents have all ended.
    ShardEnded {
        /// The shard.
        shard: ShardId,
        /// Its children: one after a split, one (shared with a sibling) after a merge.
        children: Vec<ChildOf>,
    },
    /// An open shard was read up to the end time of a bounded read.
    ShardAtEndTime(ShardId),
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

/// A report, with the read it comes from: reports of a stopped read are dropped.
type Sent<E> = (u64, Report<E>);

/// Where a [`ShardDriver`] hands its batches.
pub struct BatchSender<E> {
    reports: mpsc::Sender<Sent<E>>,
    /// The read this sender belongs to.
    read: u64,
    /// Open unless the caller paused the shard ([`FanIn::pause`]).
    gate: watch::Receiver<bool>,
}

impl<E> BatchSender<E> {
    /// Hands on a batch once the shard is not paused and the reader has room for it; `false`
    /// when the reader went away (the driver then stops).
    pub async fn send(&self, batch: Batch) -> bool {
        let mut gate = self.gate.clone();
        if gate.wait_for(|open| *open).await.is_err() {
            return false;
        }
        self.reports
            .send((self.read, Report::Batch(batch)))
            .await
            .is_ok()
    }
}

impl<E> std::fmt::Debug for BatchSender<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchSender")
            .field("closed", &self.reports.is_closed())
            .finish()
    }
}

/// Lookups of an ended shard's children before its read fails (and is resumed by the next
/// call): about 25 s of waiting in all.
const LOOKUPS: u32 = 8;

/// Reads every shard of a stream through a [`ShardDriver`], following splits and merges.
///
/// Built from a ListShards result and a starting position ([`new`](Self::new)): shards whose
/// parents are not listed start at once, the others once their parents have ended
/// ([`ShardLineage`] says where each starts). Or built empty
/// ([`without_lineage`](Self::without_lineage)), for callers that decide themselves which shard
/// to read from where ([`start_shard`](Self::start_shard)). Each shard is read by a task of its
/// own that holds at most one batch the caller has not taken. A shard that ended without naming
/// its children has them looked up with ListShards inside its task, retried with backoff (a
/// closed shard always has children, so an empty answer is retried too).
///
/// # Errors do not end the read
///
/// [`next_event`](Self::next_event) returns a shard's error once; calling it again resumes that
/// shard from its last delivered record (or looks up its children again), after a backoff that
/// grows with the shard's failures in a row (from 100 ms to 30 s). Callers that stop at the
/// first error simply drop the reader. A shard task that panics (a bug) is reported as an error
/// once and not read further.
///
/// # Cancel safety
///
/// [`next_event`](Self::next_event) and [`next_batch`](Self::next_batch) are cancel safe: they
/// wait only for a report or a finished task (both cancel safe), and everything after either
/// runs without awaiting. Dropping their futures (in `select!` or `timeout`) loses no batch and
/// no child shard.
pub struct FanIn<D: ShardDriver> {
    client: Client,
    stream: StreamId,
    end_at: Option<Timestamp>,
    driver: D,
    /// Children are started by the lineage; `None`: by the caller.
    lineage: Option<ShardLineage>,
    /// Shards closed when listed.
    closed: HashSet<ShardId>,
    /// Shard tasks running (a report still to come from each).
    running: usize,
    /// Reads that failed, resumed at the next call, with the shard's failures in a row.
    failed: VecDeque<(ShardCursor, u32)>,
    /// Failures in a row of shards that failed and have not delivered since.
    failures: HashMap<ShardId, u32>,
    /// A shard task that panicked, to report.
    panicked: Option<(ShardId, JoinError)>,
    reports: mpsc::Receiver<Sent<D::Error>>,
    sender: mpsc::Sender<Sent<D::Error>>,
    /// The shards' tasks, stopped when the reader is dropped.
    tasks: JoinSet<()>,
    /// The read of each shard being read (its reports count), and how to stop its task.
    reads: HashMap<ShardId, (u64, tokio::task::AbortHandle)>,
    /// The number of the next read.
    next_read: u64,
    /// Whether each shard being read may hand on batches (see [`pause`](Self::pause)).
    gates: HashMap<ShardId, watch::Sender<bool>>,
}

impl<D: ShardDriver> std::fmt::Debug for FanIn<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanIn")
            .field("stream", &self.stream)
            .field("running", &self.running)
            .field("failed", &self.failed.len())
            .field("waiting", &self.lineage.as_ref().map(ShardLineage::waiting))
            .finish_non_exhaustive()
    }
}

impl<D: ShardDriver> FanIn<D> {
    /// Reads the `shards` of `stream` (a ListShards result) from `start` with `driver`,
    /// following their lineage; with `end_at`, only what the stream held at that time (see
    /// [`ShardCursor`]). `client` looks up children that a shard's end did not name.
    pub fn new(
        client: Client,
        stream: StreamId,
        shards: &[Shard],
        start: &StartingPosition,
        end_at: Option<Timestamp>,
        driver: D,
    ) -> Self {
        let (lineage, ready) = ShardLineage::new(shards, start);
        let mut fan_in = Self::without_lineage(client, stream, end_at, driver);
        fan_in.lineage = Some(lineage);
        fan_in.closed = shards
            .iter()
            .filter(|s| s.is_closed())
            .map(|s| s.shard_id.clone())
            .collect();
        for (shard, position) in ready {
            let closed = fan_in.closed.contains(&shard);
            fan_in.start_shard(shard, position, closed);
        }
        fan_in
    }

    /// A reader of `stream` that reads no shard until told to
    /// ([`start_shard`](Self::start_shard)), and starts no child by itself:
    /// [`Event::ShardEnded`] says which shards follow an ended one.
    pub fn without_lineage(
        client: Client,
        stream: StreamId,
        end_at: Option<Timestamp>,
        driver: D,
    ) -> Self {
        let (sender, reports) = mpsc::channel(1);
        Self {
            client,
            stream,
            end_at,
            driver,
            lineage: None,
            closed: HashSet::new(),
            running: 0,
            failed: VecDeque::new(),
            failures: HashMap::new(),
            panicked: None,
            reports,
            sender,
            tasks: JoinSet::new(),
            reads: HashMap::new(),
            next_read: 0,
            gates: HashMap::new(),
        }
    }

    /// The driver, for the counters it keeps.
    pub fn driver(&self) -> &D {
        &self.driver
    }

    /// Shards being read now (failed ones waiting to resume included).
    pub fn running(&self) -> usize {
        self.running + self.failed.len()
    }

    /// Starts reading `shard` from `start`; `closed`: the shard was closed when listed (it
    /// ends by itself, never for being caught up in a bounded read).
    pub fn start_shard(&mut self, shard: ShardId, start: StartingPosition, closed: bool) {
        self.spawn(ShardCursor::new(shard, start, closed, self.end_at), 0);
    }

    /// Pauses `shard`: its task hands on no further batch (a batch already handed on still
    /// arrives) until [`resume`](Self::resume), so a paused shard holds at most one batch in
    /// memory. The pause outlasts failures and resumed reads of the shard.
    pub fn pause(&mut self, shard: &ShardId) {
        if let Some(gate) = self.gates.get(shard) {
            gate.send_replace(false);
        }
    }

    /// Lets a paused `shard` hand on batches again.
    pub fn resume(&mut self, shard: &ShardId) {
        if let Some(gate) = self.gates.get(shard) {
            gate.send_replace(true);
        }
    }

    /// Stops reading `shard`: its task is stopped, and nothing it read that was not handed
    /// out yet is (a batch in flight is dropped), nor its end or failure. Its children are not
    /// started by this. Returns whether the shard was being read (or waiting to resume after
    /// a failure). A later [`start_shard`](Self::start_shard) reads it anew.
    pub fn stop_shard(&mut self, shard: &ShardId) -> bool {
        let was_failed = self.failed.len();
        self.failed.retain(|(cursor, _)| cursor.shard() != shard);
        let stopped = match self.reads.remove(shard) {
            Some((_, task)) => {
                task.abort();
                self.stopped(shard);
                true
            }
            None => self.failed.len() < was_failed,
        };
        self.gates.remove(shard);
        self.failures.remove(shard);
        if self
            .panicked
            .as_ref()
            .is_some_and(|(panicked, _)| panicked == shard)
        {
            self.panicked = None;
        }
        stopped
    }

    /// Starts a task that reads `cursor`'s shard, after a backoff for `failures` in a row.
    fn spawn(&mut self, cursor: ShardCursor, failures: u32) {
        // One read of a shard at a time: a read still running is stopped first.
        if let Some((_, task)) = self.reads.remove(cursor.shard()) {
            task.abort();
            self.stopped(cursor.shard());
        }
        self.running += 1;
        let read = self.next_read;
        self.next_read += 1;
        let shard = cursor.shard().clone();
        let sender = self.sender.clone();
        let (client, stream) = (self.client.clone(), self.stream.clone());
        let wait = backoff(failures);
        // A cursor that already ended (its children lookup failed) only needs the lookup.
        let start = if cursor.end().is_none() {
            let gate = self
                .gates
                .entry(shard.clone())
                .or_insert_with(|| watch::channel(true).0)
                .subscribe();
            let out = BatchSender {
                reports: sender.clone(),
                read,
                gate,
            };
            Start::Read(self.driver.read(cursor, out))
        } else {
            Start::Ended(Box::new(cursor))
        };
        let task = self.tasks.spawn(async move {
            tokio::time::sleep(wait).await;
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
                            Err(error) => {
                                let error = error.for_shard(cursor.shard());
                                Report::Failed(cursor, error.into())
                            }
                        }
                    }
                },
            };
            let _ = sender.send((read, report)).await;
        });
        self.reads.insert(shard, (read, task));
    }

    /// A shard's task ended.
    fn stopped(&mut self, shard: &ShardId) {
        self.running -= 1;
        self.driver.released(shard);
    }

    /// A task finished: a panic is a shard read that ended without a report. (A task that
    /// was stopped or replaced is no shard's read any more.)
    fn joined(&mut self, joined: Result<tokio::task::Id, JoinError>) {
        let Err(error) = joined else {
            return;
        };
        let id = error.id();
        let shard = self
            .reads
            .iter()
            .find(|(_, (_, task))| task.id() == id)
            .map(|(shard, _)| shard.clone());
        if let Some(shard) = shard
            && error.is_panic()
        {
            self.reads.remove(&shard);
            self.stopped(&shard);
            self.panicked = Some((shard, error));
        }
    }

    /// The next batch of any shard, or the end of a shard's reading; `None` once no shard is
    /// being read (every shard has ended or reached the end time, and no child is left to
    /// read).
    ///
    /// # Errors
    ///
    /// A shard's error once its driver's retries ran out, or a failed lookup of a shard's
    /// children ([`ErrorKind::Lineage`] when ListShards names none). The next call resumes that
    /// shard.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: see [`FanIn`].
    pub async fn next_event(&mut self) -> Result<Option<Event>, D::Error> {
        while let Some((cursor, failures)) = self.failed.pop_front() {
            self.spawn(cursor, failures);
        }
        loop {
            if let Some((shard, error)) = self.panicked.take() {
                return Err(Error::new(
                    ErrorKind::Panic,
                    format!("its task panicked; the shard is not read further: {error}"),
                )
                .for_shard(&shard)
                .into());
            }
            if self.running == 0 {
                return Ok(None);
            }
            // The only awaits: a report or a finished task, both cancel safe; what follows
            // does not await.
            let (reports, tasks) = (&mut self.reports, &mut self.tasks);
            let next = std::future::poll_fn(|cx| {
                if let Poll::Ready(report) = reports.poll_recv(cx) {
                    return Poll::Ready(Ok(report));
                }
                match tasks.poll_join_next_with_id(cx) {
                    Poll::Ready(Some(joined)) => Poll::Ready(Err(joined.map(|(id, ())| id))),
                    _ => Poll::Pending,
                }
            })
            .await;
            let report = match next {
                Ok(Some((read, report))) => {
                    let shard = match &report {
                        Report::Batch(batch) => &batch.shard_id,
                        Report::Ended(shard, _) | Report::AtEndTime(shard) => shard,
                        Report::Failed(cursor, _) => cursor.shard(),
                    };
                    if self.reads.get(shard).map(|(current, _)| *current) != Some(read) {
                        // From a read that was stopped.
                        continue;
                    }
                    if !matches!(report, Report::Batch(_)) {
                        // The read's last report.
                        self.reads.remove(shard);
                    }
                    report
                }
                // The reader holds a sender: the channel never closes while it exists.
                Ok(None) => return Ok(None),
                Err(joined) => {
                    self.joined(joined);
                    continue;
                }
            };
            return Ok(Some(match report {
                Report::Batch(batch) => {
                    self.failures.remove(&batch.shard_id);
                    Event::Batch(batch)
                }
                Report::AtEndTime(shard) => {
                    self.stopped(&shard);
                    self.gates.remove(&shard);
                    self.failures.remove(&shard);
                    Event::ShardAtEndTime(shard)
                }
                Report::Failed(cursor, error) => {
                    let shard = cursor.shard().clone();
                    self.stopped(&shard);
                    let failures = self.failures.entry(shard).or_default();
                    *failures += 1;
                    self.failed.push_back((cursor, *failures));
                    return Err(error);
                }
                Report::Ended(shard, children) => {
                    self.stopped(&shard);
                    self.gates.remove(&shard);
                    self.failures.remove(&shard);
                    if let Some(lineage) = &mut self.lineage {
                        let ready = lineage.ended(&shard, children.clone());
                        for (child, position) in ready {
                            let closed = self.closed.contains(&child);
                            self.start_shard(child, position, closed);
                        }
                    }
                    Event::ShardEnded { shard, children }
                }
            }));
        }
    }

    /// The next batch of any shard (never empty); `None` once no shard is being read. Shard
    /// ends are passed over ([`next_event`](Self::next_event) reports them).
    ///
    /// # Errors
    ///
    /// As [`next_event`](Self::next_event).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: see [`FanIn`].
    pub async fn next_batch(&mut self) -> Result<Option<Batch>, D::Error> {
        loop {
            match self.next_event().await? {
                Some(Event::Batch(batch)) => return Ok(Some(batch)),
                Some(_) => {}
                None => return Ok(None),
            }
        }
    }
}

/// The wait before resuming a shard after `failures` failures in a row: none at first, then
/// from 100 ms doubling to 30 s, with jitter.
fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let cap = Duration::from_millis(100)
        .saturating_mul(1 << (failures - 1).min(16))
        .min(Duration::from_secs(30));
    cap.mul_f64(0.5 + fastrand::f64() / 2.0)
}

/// The children of `shard`, from ListShards: transient failures, and answers that name no child
/// yet, are retried with backoff [`LOOKUPS`] times while the reader is there; then the last
/// error is returned.
async fn look_up_children<E>(
    client: &Client,
    stream: &StreamId,
    shard: &ShardId,
    reader: &mpsc::Sender<Sent<E>>,
) -> Result<Vec<ChildOf>, Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = match client.children_of(stream, shard).await {
            Ok(children) if !children.is_empty() => return Ok(children),
            Ok(_) => Error::new(
                ErrorKind::Lineage,
                format!(
                    "{} ended, but ListShards names no shard that follows it",
                    shard.as_str()
                ),
            ),
            Err(error) if error.is_retryable() => error,
            Err(error) => return Err(error),
        };
        if attempt >= LOOKUPS || reader.is_closed() {
            return Err(error);
        }
        let wait = backoff(attempt);
        tracing::warn!(
            shard = shard.as_str(),
            "looking up the children of an ended shard failed, retrying in {wait:?}: {error}"
        );
        tokio::time::sleep(wait).await;
    }
}
