//! What the kds test suites share: the emulators ([`Ferrokinesis`] in process, [`KdsLocal`] as
//! a process, [`KinesisLocal`] in node), a test client, stream helpers (create and wait until
//! ACTIVE, consumers, puts), a fault-injecting [`proxy`] in front of an emulator, and a [`scripted`] HTTP/2 server that
//! answers SubscribeToShard as each test says. Not published: the pattern of h2's
//! `tests/h2-support` and rustls' `rustls-test`.
//!
//! Everything panics on failure, with a message naming what failed: these are test fixtures.

#![forbid(unsafe_code)]

mod emulators;
pub mod proxy;
pub mod scripted;

use std::time::Duration;

use bytes::Bytes;
use kds_client::credentials::Credentials;
use kds_client::{Client, ClientBuilder, RetryPolicy};
use kds_proto::model::{
    CreateStreamInput, DescribeStreamSummaryInput, ListShardsInput, ListStreamConsumersInput,
    MergeShardsInput, PutRecordsInput, PutRecordsRequestEntry, RegisterStreamConsumerInput, Shard,
    SplitShardInput,
};
use kds_proto::types::{
    ConsumerArn, ConsumerName, ConsumerStatus, HashKey, PartitionKey, ShardId, StreamArn,
    StreamName, StreamStatus,
};

pub use emulators::{Dynoxide, Ferrokinesis, KdsLocal, KinesisLocal};

/// A client builder for a test endpoint: region us-east-1, static test credentials, and a
/// trusted self-signed certificate on `https` URLs (kinesis-local's TLS port).
pub fn client_builder(url: &str) -> ClientBuilder {
    Client::builder()
        .region("us-east-1")
        .endpoint(url)
        .trust_all_certificates(url.starts_with("https:"))
        .credentials(Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        ))
}

/// A client for a test endpoint with the defaults of [`client_builder`].
pub fn client(url: &str) -> Client {
    client_builder(url).build().unwrap()
}

/// Retries with waits of at most a few milliseconds.
pub fn fast_retries(retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries: retries,
        base: Duration::from_millis(1),
        max: Duration::from_millis(5),
        exponential_constant: 2.0,
    }
}

/// A stream name.
pub fn name(text: &str) -> StreamName {
    StreamName::new(text).unwrap()
}

/// Creates `stream` with `shards` shards and waits until it is ACTIVE; its ARN.
pub async fn create_stream(client: &Client, stream: &str, shards: i32) -> StreamArn {
    let mut create = CreateStreamInput::new(name(stream));
    create.shard_count = Some(shards);
    client.send(&create).await.unwrap();
    wait_active(client, stream).await
}

/// Waits (up to 30 s) until `stream` is ACTIVE; its ARN.
pub async fn wait_active(client: &Client, stream: &str) -> StreamArn {
    let mut describe = DescribeStreamSummaryInput::new();
    describe.stream_name = Some(name(stream));
    for _ in 0..1500 {
        let summary = client
            .send(&describe)
            .await
            .unwrap()
            .stream_description_summary;
        if summary.stream_status == StreamStatus::Active {
            return summary.stream_arn;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("stream {stream} did not become ACTIVE within 30 s");
}

/// Every shard of `stream`.
pub async fn shards(client: &Client, stream: &str) -> Vec<Shard> {
    let mut list = ListShardsInput::new();
    list.stream_name = Some(name(stream));
    client.list_all_shards(&list).await.unwrap()
}

/// Registers a consumer called `consumer` of `stream` and waits (up to 10 s) until it is
/// ACTIVE; its ARN.
pub async fn register_consumer(client: &Client, stream: &StreamArn, consumer: &str) -> ConsumerArn {
    let registered = client
        .send(&RegisterStreamConsumerInput::new(
            stream.clone(),
            ConsumerName::new(consumer).unwrap(),
        ))
        .await
        .unwrap()
        .consumer;
    for _ in 0..1000 {
        let listed = client
            .list_all_stream_consumers(&ListStreamConsumersInput::new(stream.clone()))
            .await
            .unwrap();
        if listed.iter().any(|c| {
            c.consumer_arn == registered.consumer_arn && c.consumer_status == ConsumerStatus::Active
        }) {
            return registered.consumer_arn;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("consumer {consumer} did not become ACTIVE within 10 s");
}

/// Puts `count` records `{prefix}-{i}` with partition keys `{prefix}-key-{i}` in one
/// PutRecords call, every one written; their data, in order.
pub async fn put_keyed(client: &Client, stream: &str, prefix: &str, count: usize) -> Vec<Bytes> {
    let entries: Vec<PutRecordsRequestEntry> = (0..count)
        .map(|i| {
            PutRecordsRequestEntry::new(
                Bytes::from(format!("{prefix}-{i}")),
                PartitionKey::new(format!("{prefix}-key-{i}")).unwrap(),
            )
        })
        .collect();
    let data = entries.iter().map(|e| e.data.clone()).collect();
    let mut request = PutRecordsInput::new(entries);
    request.stream_name = Some(name(stream));
    let output = client.send(&request).await.unwrap();
    assert_eq!(output.failures().count(), 0, "every record is written");
    data
}

/// Splits `shard` of `stream` in the middle of its hash range and waits until the stream is
/// ACTIVE again; the two children, lower range first.
pub async fn split_shard(client: &Client, stream: &str, shard: &ShardId) -> (ShardId, ShardId) {
    let listed = shards(client, stream).await;
    let parent = listed
        .iter()
        .find(|s| &s.shard_id == shard)
        .unwrap_or_else(|| panic!("{shard:?} is not a shard of {stream}"));
    let (low, high) = (
        parent.hash_key_range.starting_hash_key.0,
        parent.hash_key_range.ending_hash_key.0,
    );
    let middle = low + (high - low) / 2 + 1;
    let mut split = SplitShardInput::new(shard.clone(), HashKey(middle));
    split.stream_name = Some(name(stream));
    client.send(&split).await.unwrap();
    wait_active(client, stream).await;
    let mut children: Vec<Shard> = shards(client, stream)
        .await
        .into_iter()
        .filter(|s| s.parent_shard_id.as_ref() == Some(shard))
        .collect();
    assert_eq!(children.len(), 2, "{shard:?} split in two");
    children.sort_by_key(|s| s.hash_key_range.starting_hash_key);
    (children[0].shard_id.clone(), children[1].shard_id.clone())
}

/// Merges the adjacent shards `low` and `high` of `stream` and waits until the stream is
/// ACTIVE again; the merged shard.
pub async fn merge_shards(client: &Client, stream: &str, low: &ShardId, high: &ShardId) -> ShardId {
    let mut merge = MergeShardsInput::new(low.clone(), high.clone());
    merge.stream_name = Some(name(stream));
    client.send(&merge).await.unwrap();
    wait_active(client, stream).await;
    shards(client, stream)
        .await
        .into_iter()
        .find(|s| s.parent_shard_id.as_ref() == Some(low))
        .unwrap_or_else(|| panic!("no shard merged from {low:?} and {high:?}"))
        .shard_id
}
