//! Subscriptions against ferrokinesis in process, over h2c, in JSON and CBOR.

use std::time::Duration;

use bytes::Bytes;
use kds_client::{Client, HttpVersion, Protocol};
use kds_efo::{ErrorKind, ReaderConfig, ShardReader, StreamReader, Subscription};
use kds_proto::model::{
    DescribeStreamSummaryInput, ListShardsInput, SplitShardInput, StartingPosition,
    SubscribeToShardInput,
};
use kds_proto::types::{ConsumerArn, HashKey, ShardId, ShardIteratorType, StreamStatus};

use kds_test_support::{
    self as support, Ferrokinesis, client_builder, create_stream, name, put_keyed,
    register_consumer, shards,
};

/// An HTTP/2 client (h2c on plain URLs, ALPN on kinesis-local's TLS port).
fn client(url: &str, protocol: Protocol) -> Client {
    let version = if url.starts_with("https:") {
        HttpVersion::Auto
    } else {
        HttpVersion::Http2
    };
    client_builder(url)
        .protocol(protocol)
        .http_version(version)
        .build()
        .unwrap()
}

/// A stream of one shard with a registered, active consumer called `reader`.
async fn stream_with_consumer(client: &Client, stream: &str) -> (ConsumerArn, ShardId) {
    let arn = create_stream(client, stream, 1).await;
    let consumer = register_consumer(client, &arn, "reader").await;
    (consumer, shards(client, stream).await.remove(0).shard_id)
}

/// Puts `count` records `{prefix}-{i}` with keys `{prefix}-key-{i}`; their data.
async fn put(client: &Client, stream: &str, prefix: &str, count: usize) -> Vec<Bytes> {
    put_keyed(client, stream, prefix, count).await
}

async fn records_in_order(protocol: Protocol) {
    let emulator = Ferrokinesis::with_subscriptions_of(Duration::from_secs(3)).await;
    let url = emulator.url.as_str();
    let client = client(url, protocol);
    let (consumer, shard) = stream_with_consumer(&client, "efo").await;
    let sent = put(&client, "efo", "record", 50).await;
    let request = SubscribeToShardInput::new(
        consumer,
        shard,
        StartingPosition::new(ShardIteratorType::TrimHorizon),
    );
    let mut subscription = Subscription::open(&client, &request).await.unwrap();
    let mut received = Vec::new();
    let mut last_continuation = None;
    // The subscription ends by itself after three seconds; bound the wait anyway.
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(event) = subscription.next_event().await.unwrap() {
            received.extend(event.records.iter().map(|r| r.data.clone()));
            if let Some(last) = event.records.last() {
                // Resuming from the continuation never repeats a delivered record.
                let continuation = event.continuation_sequence_number.as_ref().unwrap();
                assert!(continuation >= &last.sequence_number);
            }
            last_continuation = event.continuation_sequence_number;
        }
    })
    .await;
    assert!(read.is_ok(), "the subscription did not end");
    assert_eq!(received, sent, "every record once, in order");
    assert!(last_continuation.is_some(), "an open shard continues");
    assert_eq!(subscription.skipped(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_events_deliver_every_record_in_order() {
    records_in_order(Protocol::Json).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbor_events_deliver_every_record_in_order() {
    records_in_order(Protocol::Cbor).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_consumer_is_refused_with_the_service_error() {
    let emulator = Ferrokinesis::with_subscriptions_of(Duration::from_secs(3)).await;
    let url = emulator.url.as_str();
    let client = client(url, Protocol::Json);
    let (consumer, shard) = stream_with_consumer(&client, "efo").await;
    let unknown = ConsumerArn::new(consumer.as_str().replace("reader", "nobody")).unwrap();
    let request = SubscribeToShardInput::new(
        unknown,
        shard,
        StartingPosition::new(ShardIteratorType::Latest),
    );
    let err = Subscription::open(&client, &request).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Client, "{err}");
    assert_eq!(
        err.service_error().map(|s| s.code()),
        Some("ResourceNotFoundException"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_resubscribes_without_losing_or_repeating_records() {
    // Subscriptions of one second: records put over three seconds span several.
    let emulator = Ferrokinesis::with_subscriptions_of(Duration::from_secs(1)).await;
    let url = emulator.url.as_str();
    let client = client(url, Protocol::Cbor);
    let (consumer, shard) = stream_with_consumer(&client, "efo").await;
    let mut reader = ShardReader::new(
        client.clone(),
        consumer,
        shard,
        StartingPosition::new(ShardIteratorType::TrimHorizon),
        ReaderConfig::default(),
    );
    let writer = client.clone();
    let putting = tokio::spawn(async move {
        let mut sent = Vec::new();
        for round in 0..4 {
            sent.extend(put(&writer, "efo", &format!("round-{round}"), 25).await);
            tokio::time::sleep(Duration::from_millis(800)).await;
        }
        sent
    });
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        while received.len() < 100 {
            let batch = reader.next_batch().await.unwrap().expect("an open shard");
            received.extend(batch.records.into_iter().map(|r| r.data));
        }
    })
    .await;
    assert!(read.is_ok(), "only {} records arrived", received.len());
    let sent = putting.await.unwrap();
    assert_eq!(received, sent, "every record once, in order");
    assert!(
        reader.subscriptions() >= 2,
        "{} subscriptions",
        reader.subscriptions()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_reader_follows_a_split_parent_first() {
    let emulator = Ferrokinesis::with_subscriptions_of(Duration::from_secs(2)).await;
    let url = emulator.url.as_str();
    let client = client(url, Protocol::Cbor);
    let (consumer, _) = stream_with_consumer(&client, "split").await;
    let mut describe = DescribeStreamSummaryInput::new();
    describe.stream_name = Some(name("split"));
    let mut list = ListShardsInput::new();
    list.stream_name = Some(name("split"));
    let shards = client.list_all_shards(&list).await.unwrap();
    let parent = shards[0].shard_id.clone();
    let before = put(&client, "split", "record", 20).await;

    let mut reader = StreamReader::new(
        client.clone(),
        name("split").into(),
        consumer,
        &shards,
        &StartingPosition::new(ShardIteratorType::TrimHorizon),
        ReaderConfig::default(),
    );
    let mut split = SplitShardInput::new(parent, HashKey(1 << 127));
    split.stream_name = Some(name("split"));
    client.send(&split).await.unwrap();
    loop {
        let summary = client
            .send(&describe)
            .await
            .unwrap()
            .stream_description_summary;
        if summary.stream_status == StreamStatus::Active {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let after = put(&client, "split", "after", 40).await;

    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        while received.len() < 60 {
            let batch = reader.next_batch().await.unwrap().expect("shards remain");
            received.extend(batch.records.into_iter().map(|r| r.data));
        }
    })
    .await;
    assert!(read.is_ok(), "only {} records arrived", received.len());
    // The parent's records first, in order; then the children's, each once.
    assert_eq!(received[..20], before[..]);
    let mut rest: Vec<Bytes> = received[20..].to_vec();
    rest.sort();
    let mut expected = after;
    expected.sort();
    assert_eq!(rest, expected);
}

/// Enough for a ResourceInUse wait and kinesis-local's event interval.
const WAIT: Duration = Duration::from_secs(20);

/// Subscribes from `start` and collects records until `count` arrived or `within` passed.
async fn read_from(
    client: &Client,
    consumer: &ConsumerArn,
    shard: &ShardId,
    start: StartingPosition,
    count: usize,
    within: Duration,
) -> Vec<Bytes> {
    let mut reader = ShardReader::new(
        client.clone(),
        consumer.clone(),
        shard.clone(),
        start,
        ReaderConfig::default(),
    );
    let mut received = Vec::new();
    let _ = tokio::time::timeout(within, async {
        while received.len() < count {
            match reader.next_batch().await.unwrap() {
                Some(batch) => received.extend(batch.records.into_iter().map(|r| r.data)),
                None => break,
            }
        }
    })
    .await;
    received
}

/// Every starting position on one emulator. `like_aws`: the emulator honors the sequence number
/// of AT/AFTER_SEQUENCE_NUMBER and the five-second rule between subscriptions (kinesis-local);
/// ferrokinesis 0.7 does neither (it starts at the beginning of the shard).
async fn starting_positions(client: &Client, stream: &str, like_aws: bool) {
    let (consumer, shard) = stream_with_consumer(client, stream).await;
    let sent = put(client, stream, "record", 10).await;

    // Sequence numbers and arrival times of what was put, read once from the start.
    let mut first = ShardReader::new(
        client.clone(),
        consumer.clone(),
        shard.clone(),
        StartingPosition::new(ShardIteratorType::TrimHorizon),
        ReaderConfig::default(),
    );
    let records = first.next_batch().await.unwrap().unwrap().records;
    assert_eq!(records.len(), 10);
    // Each subscription below comes within five seconds of the one before: kinesis-local (like
    // AWS) answers ResourceInUse, and the readers wait it out.
    drop(first);
    let at = |kind, record: &kds_proto::model::Record| {
        let mut position = StartingPosition::new(kind);
        position.sequence_number = Some(record.sequence_number.clone());
        position
    };
    if like_aws {
        let from = |kind| read_from(client, &consumer, &shard, at(kind, &records[4]), 6, WAIT);
        assert_eq!(from(ShardIteratorType::AtSequenceNumber).await, sent[4..]);
        assert_eq!(
            from(ShardIteratorType::AfterSequenceNumber).await,
            sent[5..]
        );
    }
    let mut timestamp = StartingPosition::new(ShardIteratorType::AtTimestamp);
    timestamp.timestamp = records[0].approximate_arrival_timestamp;
    assert_eq!(
        read_from(client, &consumer, &shard, timestamp, 10, WAIT).await,
        sent[..]
    );
    // LATEST: only what is put after the subscription starts.
    let mut latest = ShardReader::new(
        client.clone(),
        consumer.clone(),
        shard.clone(),
        StartingPosition::new(ShardIteratorType::Latest),
        ReaderConfig::default(),
    );
    let reading = tokio::spawn(async move {
        let batch = tokio::time::timeout(Duration::from_secs(25), latest.next_batch())
            .await
            .expect("a batch")
            .unwrap()
            .unwrap();
        batch
            .records
            .into_iter()
            .map(|r| r.data)
            .collect::<Vec<_>>()
    });
    // Past a ResourceInUse wait, so that the LATEST subscription is open.
    tokio::time::sleep(Duration::from_secs(if like_aws { 8 } else { 1 })).await;
    let later = put(client, stream, "record", 3).await;
    assert_eq!(reading.await.unwrap(), later);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_starting_position() {
    let emulator = Ferrokinesis::with_subscriptions_of(Duration::from_secs(3)).await;
    let url = emulator.url.as_str();
    starting_positions(&client(url, Protocol::Json), "positions-json", false).await;
    starting_positions(&client(url, Protocol::Cbor), "positions-cbor", false).await;
    if let Some(local) = support::KinesisLocal::get() {
        for (protocol, stream) in [
            (Protocol::Cbor, "efo-positions-cbor"),
            (Protocol::Json, "efo-positions-json"),
        ] {
            let local = client(&local.tls_url, protocol);
            starting_positions(&local, stream, true).await;
        }
    }
}

/// Records put before a subscription and while it is open arrive once each, in order, also
/// across the resubscriptions that happen meanwhile.
async fn before_and_during(client: &Client, stream: &str) {
    let (consumer, shard) = stream_with_consumer(client, stream).await;
    let mut sent = put(client, stream, "before", 20).await;
    let expected = 40;
    let reading = {
        let client = client.clone();
        let start = StartingPosition::new(ShardIteratorType::TrimHorizon);
        tokio::spawn(async move {
            let within = Duration::from_secs(60);
            read_from(&client, &consumer, &shard, start, expected, within).await
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    for round in 0..4 {
        sent.extend(put(client, stream, &format!("during-{round}"), 5).await);
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    assert_eq!(sent.len(), expected);
    assert_eq!(
        reading.await.unwrap(),
        sent,
        "{stream}: every record once, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_put_before_and_during_a_subscription_arrive_once_in_order() {
    // Subscriptions of three seconds: the reader resubscribes while records arrive.
    let emulator = Ferrokinesis::with_subscriptions_of(Duration::from_secs(3)).await;
    let url = emulator.url.as_str();
    before_and_during(&client(url, Protocol::Json), "during-json").await;
    before_and_during(&client(url, Protocol::Cbor), "during-cbor").await;
    if let Some(local) = support::KinesisLocal::get() {
        for (protocol, stream) in [
            (Protocol::Json, "efo-during-json"),
            (Protocol::Cbor, "efo-during-cbor"),
        ] {
            let local = client(&local.tls_url, protocol);
            before_and_during(&local, stream).await;
        }
    }
}
