//! PollingReader where reading goes wrong: `next_batch` futures dropped at random points,
//! shards that end without naming their children, ListShards failing past its retries, and
//! GetRecords failing past its retries. Every record of a split and merged stream must still be
//! read exactly once.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use kds_client::{Client, PollConfig, PollingReader, StreamId};
use kds_proto::model::{GetShardIteratorInput, StartingPosition};
use kds_proto::types::{SequenceNumber, ShardId, ShardIteratorType};
use kds_proto::{Protocol, Shape};
use kds_test_support::proxy::{Fault, Proxy};
use kds_test_support::{
    client_builder, create_stream, fast_retries, merge_shards, name, put_keyed, shards, split_shard,
};

/// A stream of two shards whose first shard was split and its children merged again, with
/// records written before the split, between split and merge, and after the merge; their data.
async fn resharded_stream(setup: &Client, stream: &str) -> Vec<Bytes> {
    create_stream(setup, stream, 2).await;
    let mut written = put_keyed(setup, stream, "first", 150).await;
    let first = shards(setup, stream).await.remove(0).shard_id;
    let (low, high) = split_shard(setup, stream, &first).await;
    written.extend(put_keyed(setup, stream, "second", 150).await);
    merge_shards(setup, stream, &low, &high).await;
    written.extend(put_keyed(setup, stream, "third", 150).await);
    written
}

/// A polling reader of the whole stream, as written so far, through `client`.
async fn reader(client: &Client, setup: &Client, stream: &str) -> PollingReader {
    let mut config = PollConfig::default();
    config.interval = Duration::from_millis(5);
    // ferrokinesis dates a new child shard's records a second ahead: a margin.
    config.end_at = Some((SystemTime::now() + Duration::from_secs(3)).into());
    PollingReader::new(
        client.clone(),
        StreamId::Name(name(stream)),
        &shards(setup, stream).await,
        &StartingPosition::new(ShardIteratorType::TrimHorizon),
        config,
    )
}

fn sorted(mut data: Vec<Bytes>) -> Vec<Bytes> {
    data.sort();
    data
}

/// What a read that abandons and repeats calls saw.
#[derive(Debug, Default)]
struct Outcome {
    data: Vec<Bytes>,
    dropped: usize,
    errors: Vec<String>,
    /// For each error that named a shard: the shard, the last record it had delivered, and the
    /// error.
    failed: Vec<(ShardId, Option<SequenceNumber>, String)>,
    /// The last record delivered by each shard.
    last: HashMap<ShardId, SequenceNumber>,
}

/// Calls `next_batch` until the read ends (at most a minute), giving up on each call after a
/// random wait of up to `patience` (dropping its future) and calling again after errors.
async fn read_impatiently(reader: &mut PollingReader, patience: Duration, outcome: &mut Outcome) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "the read did not end: {outcome:?}"
        );
        let wait = patience.mul_f64(fastrand::f64());
        match tokio::time::timeout(wait, reader.next_batch()).await {
            Err(_) => outcome.dropped += 1,
            Ok(Ok(Some(batch))) => {
                let last = batch.records.last().expect("batches are never empty");
                outcome
                    .last
                    .insert(batch.shard_id.clone(), last.sequence_number.clone());
                outcome
                    .data
                    .extend(batch.records.into_iter().map(|r| r.data));
            }
            Ok(Ok(None)) => return,
            Ok(Err(error)) => {
                if let Some(shard) = error.shard() {
                    let last = outcome.last.get(shard).cloned();
                    outcome
                        .failed
                        .push((shard.clone(), last, error.to_string()));
                }
                outcome.errors.push(error.to_string());
                assert!(outcome.errors.len() < 20, "{outcome:?}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_calls_and_failing_children_lookups_lose_no_record() {
    let proxy = Proxy::start().await;
    let written = resharded_stream(&proxy.upstream, "resharded").await;
    // Closed shards end without naming their children, so each end needs ListShards; the
    // first lookups fail more often than the client retries (two attempts a call).
    proxy.strip_child_shards(true);
    proxy.script_for(
        "ListShards",
        std::iter::repeat_n(Fault::Error(500, "InternalFailure"), 5),
    );
    let client = client_builder(&proxy.url)
        .retry_policy("ListShards", fast_retries(1))
        .build()
        .unwrap();
    let mut reader = reader(&client, &proxy.upstream, "resharded").await;
    let mut outcome = Outcome::default();
    read_impatiently(&mut reader, Duration::from_millis(15), &mut outcome).await;
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(proxy.unused_faults(), 0, "every ListShards fault was met");
    assert_eq!(outcome.data.len(), written.len(), "no record twice or lost");
    assert_eq!(sorted(outcome.data), sorted(written));
    assert!(
        outcome.dropped > 10,
        "calls were dropped: {}",
        outcome.dropped
    );
}

/// Which iterator of `shard` follows the failure `error`: the first is the shard's start, and
/// each failed read of it takes one more.
fn failed_reads_seen_of(
    failed: &[(ShardId, Option<SequenceNumber>, String)],
    shard: &ShardId,
    error: &str,
) -> usize {
    let position = failed
        .iter()
        .filter(|(s, _, e)| s == shard && !e.contains("AccessDenied"))
        .position(|(_, _, e)| e == error)
        .unwrap();
    position + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_shard_and_a_refused_lookup_resume_on_the_next_call_where_they_stopped() {
    let proxy = Proxy::start().await;
    let written = resharded_stream(&proxy.upstream, "resumed").await;
    proxy.strip_child_shards(true);
    let client = client_builder(&proxy.url)
        .retry_policy("GetRecords", fast_retries(1))
        .retry_policy("ListShards", fast_retries(1))
        .build()
        .unwrap();
    let mut reader = reader(&client, &proxy.upstream, "resumed").await;
    // Some records first, so that the failures come in the middle of shards.
    let mut outcome = Outcome::default();
    while outcome.data.len() < 100 {
        let batch = reader.next_batch().await.unwrap().expect("more to read");
        let last = batch.records.last().unwrap().sequence_number.clone();
        outcome.last.insert(batch.shard_id.clone(), last);
        outcome
            .data
            .extend(batch.records.into_iter().map(|r| r.data));
    }
    // A lookup refused for good (until the next call), and GetRecords failing past its
    // retries: two attempts a call, so one or two shards fail.
    proxy.script_for("ListShards", [Fault::Error(400, "AccessDeniedException")]);
    proxy.script_for(
        "GetRecords",
        std::iter::repeat_n(Fault::Error(500, "InternalFailure"), 4),
    );
    read_impatiently(&mut reader, Duration::from_secs(5), &mut outcome).await;
    let refused = outcome
        .errors
        .iter()
        .filter(|e| e.contains("AccessDeniedException"))
        .count();
    let failed_reads = outcome
        .errors
        .iter()
        .filter(|e| e.contains("InternalFailure"))
        .count();
    assert_eq!((refused, outcome.errors.len() - refused), (1, failed_reads));
    assert!((1..=2).contains(&failed_reads), "{:?}", outcome.errors);
    assert_eq!(
        outcome.failed.len(),
        outcome.errors.len(),
        "errors name their shard"
    );
    assert_eq!(proxy.unused_faults(), 0);
    assert_eq!(outcome.data.len(), written.len(), "no record twice or lost");
    assert_eq!(sorted(outcome.data), sorted(written));
    // A shard's first iterator is at its start; after a failed read, the next one is after
    // the last record the shard had delivered (at its start if it had delivered none).
    let mut iterators: HashMap<ShardId, Vec<GetShardIteratorInput>> = HashMap::new();
    for body in proxy.bodies_of("GetShardIterator") {
        let request = GetShardIteratorInput::decode_body(body, Protocol::Json).unwrap();
        iterators
            .entry(request.shard_id.clone())
            .or_default()
            .push(request);
    }
    let mut failed_reads_seen = 0;
    for (shard, last, error) in &outcome.failed {
        let requests = &iterators[shard];
        assert_eq!(
            requests[0].shard_iterator_type,
            ShardIteratorType::TrimHorizon
        );
        if error.contains("AccessDenied") {
            continue;
        }
        failed_reads_seen += 1;
        let resumed = requests
            .get(failed_reads_seen_of(&outcome.failed, shard, error))
            .unwrap_or_else(|| panic!("{shard:?} resumed"));
        match last {
            Some(last) => {
                assert_eq!(
                    resumed.shard_iterator_type,
                    ShardIteratorType::AfterSequenceNumber
                );
                assert_eq!(resumed.starting_sequence_number.as_ref(), Some(last));
            }
            None => assert_eq!(resumed.shard_iterator_type, ShardIteratorType::TrimHorizon),
        }
    }
    assert_eq!(failed_reads_seen, failed_reads);
    // Shards that never failed took one iterator each.
    for (shard, requests) in &iterators {
        if !outcome.failed.iter().any(|(s, ..)| s == shard) {
            assert_eq!(requests.len(), 1, "{shard:?}: {requests:?}");
        }
    }
}

/// A stopped shard hands out nothing more, not even a batch its task had read already, while
/// the other shards read on; started again, it reads from where it is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_shard_hands_out_nothing_more_and_restarts_where_told() {
    use kds_client::{Event, FanIn, PollingDriver};
    let emulator = kds_test_support::Ferrokinesis::start().await;
    let client = kds_test_support::client(&emulator.url);
    create_stream(&client, "stops", 2).await;
    let written = put_keyed(&client, "stops", "k", 400).await;
    let listed = shards(&client, "stops").await;
    let (first, second) = (listed[0].shard_id.clone(), listed[1].shard_id.clone());
    let mut config = PollConfig::default();
    config.interval = Duration::from_millis(5);
    config.max_records = 10;
    let stream = StreamId::Name(name("stops"));
    let driver = PollingDriver::new(client.clone(), stream.clone(), config);
    let mut fan_in = FanIn::without_lineage(client.clone(), stream, None, driver);
    let trim = || StartingPosition::new(ShardIteratorType::TrimHorizon);
    fan_in.start_shard(first.clone(), trim(), false);
    let mut read: HashMap<ShardId, Vec<Bytes>> = HashMap::new();
    let mut last_of_first = None;
    // Read one batch of the first shard, and give its task time to hand on the next (it
    // waits in the reader's one-report buffer) and read a third.
    let deadline = Instant::now() + Duration::from_secs(20);
    while last_of_first.is_none() {
        assert!(Instant::now() < deadline, "no batch of {first:?}");
        if let Some(Event::Batch(batch)) = fan_in.next_event().await.unwrap() {
            if batch.shard_id == first {
                last_of_first = batch.records.last().map(|r| r.sequence_number.clone());
            }
            read.entry(batch.shard_id.clone())
                .or_default()
                .extend(batch.records.into_iter().map(|r| r.data));
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(fan_in.stop_shard(&first));
    assert!(!fan_in.stop_shard(&first), "stopped once");
    assert_eq!(fan_in.running(), 0);
    fan_in.start_shard(second.clone(), trim(), false);
    let before = read[&first].len();
    // The second shard reads to its tip; nothing more of the first comes.
    let quiet = Instant::now() + Duration::from_secs(2);
    while Instant::now() < quiet {
        match tokio::time::timeout(Duration::from_millis(200), fan_in.next_event()).await {
            Ok(Ok(Some(Event::Batch(batch)))) => {
                assert_eq!(batch.shard_id, second, "a batch of a stopped shard");
                read.entry(second.clone())
                    .or_default()
                    .extend(batch.records.into_iter().map(|r| r.data));
            }
            Ok(other) => panic!("{other:?}"),
            Err(_) => {}
        }
    }
    assert_eq!(read[&first].len(), before);
    // Started again after the last record handed out: the rest of the shard, once.
    // Started twice from the same place: the second start replaces the first read.
    let rest = StartingPosition::after_sequence_number(last_of_first.unwrap());
    fan_in.start_shard(first.clone(), rest.clone(), false);
    fan_in.start_shard(first.clone(), rest, false);
    assert_eq!(fan_in.running(), 2);
    let deadline = Instant::now() + Duration::from_secs(20);
    while read.values().map(Vec::len).sum::<usize>() < written.len() {
        assert!(
            Instant::now() < deadline,
            "the rest of {first:?} did not come"
        );
        if let Ok(Ok(Some(Event::Batch(batch)))) =
            tokio::time::timeout(Duration::from_millis(500), fan_in.next_event()).await
        {
            read.entry(batch.shard_id.clone())
                .or_default()
                .extend(batch.records.into_iter().map(|r| r.data));
        }
    }
    let all: Vec<Bytes> = read.into_values().flatten().collect();
    assert_eq!(sorted(all), sorted(written), "every record once");
}

/// A driver whose read of one shard panics after a while, and whose reads of others wait.
struct PanickingDriver {
    panics: ShardId,
}

impl kds_client::ShardDriver for PanickingDriver {
    type Error = kds_client::Error;

    fn read(
        &mut self,
        cursor: kds_client::ShardCursor,
        _out: kds_client::BatchSender<Self::Error>,
    ) -> impl Future<Output = (kds_client::ShardCursor, Result<(), Self::Error>)> + Send + 'static
    {
        let panics = cursor.shard() == &self.panics;
        async move {
            tokio::time::sleep(Duration::from_millis(if panics { 50 } else { 60_000 })).await;
            assert!(!panics, "the driver's read panics");
            (cursor, Ok(()))
        }
    }
}

/// A shard's task that panics is reported for that shard, once, and a shard stopped and
/// started again with the same task replaced is not taken for it.
#[tokio::test]
async fn a_panicking_shard_task_is_reported_for_its_shard() {
    use kds_client::FanIn;
    let client = kds_test_support::client("http://127.0.0.1:9");
    let (bad, good) = (
        ShardId::new("shardId-000000000001").unwrap(),
        ShardId::new("shardId-000000000002").unwrap(),
    );
    let driver = PanickingDriver {
        panics: bad.clone(),
    };
    let stream = StreamId::Name(name("panics"));
    let mut fan_in = FanIn::without_lineage(client, stream, None, driver);
    let trim = || StartingPosition::new(ShardIteratorType::TrimHorizon);
    fan_in.start_shard(good.clone(), trim(), false);
    fan_in.start_shard(bad.clone(), trim(), false);
    // Replaced before it panics: the first task of `bad` is aborted, the second panics.
    fan_in.start_shard(bad.clone(), trim(), false);
    let error = tokio::time::timeout(Duration::from_secs(10), fan_in.next_event())
        .await
        .expect("the panic is reported")
        .unwrap_err();
    assert_eq!(error.shard(), Some(&bad), "{error}");
    assert!(error.to_string().contains("its task panicked"), "{error}");
    assert_eq!(fan_in.running(), 1, "the other shard is still read");
}
