//! PollingReader where reading goes wrong: `next_batch` futures dropped at random points,
//! shards that end without naming their children, ListShards failing past its retries, and
//! GetRecords failing past its retries. Every record of a split and merged stream must still be
//! read exactly once.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use kds_client::{Client, PollConfig, PollingReader, StreamId};
use kds_proto::model::StartingPosition;
use kds_proto::types::ShardIteratorType;
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
}

/// Calls `next_batch` until the read ends (at most a minute), giving up on each call after a
/// random wait of up to `patience` (dropping its future) and calling again after errors.
async fn read_impatiently(reader: &mut PollingReader, patience: Duration) -> Outcome {
    let mut outcome = Outcome::default();
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
                assert!(!batch.records.is_empty());
                outcome
                    .data
                    .extend(batch.records.into_iter().map(|r| r.data));
            }
            Ok(Ok(None)) => return outcome,
            Ok(Err(error)) => {
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
    let outcome = read_impatiently(&mut reader, Duration::from_millis(15)).await;
    assert!(
        outcome.dropped > 10,
        "calls were dropped: {}",
        outcome.dropped
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_shard_and_a_refused_lookup_resume_on_the_next_call() {
    let proxy = Proxy::start().await;
    let written = resharded_stream(&proxy.upstream, "resumed").await;
    proxy.strip_child_shards(true);
    // A lookup refused for good (until the next call), and GetRecords failing past its
    // retries, twice.
    proxy.script_for("ListShards", [Fault::Error(400, "AccessDeniedException")]);
    proxy.script_for(
        "GetRecords",
        std::iter::repeat_n(Fault::Error(500, "InternalFailure"), 4),
    );
    let client = client_builder(&proxy.url)
        .retry_policy("GetRecords", fast_retries(1))
        .retry_policy("ListShards", fast_retries(1))
        .build()
        .unwrap();
    let mut reader = reader(&client, &proxy.upstream, "resumed").await;
    let outcome = read_impatiently(&mut reader, Duration::from_secs(5)).await;
    assert_eq!(outcome.errors.len(), 3, "{:?}", outcome.errors);
    assert!(
        outcome
            .errors
            .iter()
            .any(|e| e.contains("AccessDeniedException")),
        "{:?}",
        outcome.errors
    );
    assert_eq!(proxy.unused_faults(), 0);
    assert_eq!(outcome.data.len(), written.len(), "no record twice or lost");
    assert_eq!(sorted(outcome.data), sorted(written));
}
