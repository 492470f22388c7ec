//! The client against two independent Kinesis implementations: ferrokinesis in process (over
//! HTTP/1.1 and h2c) and kinesis-local in a node process (plain HTTP/1.1, and TLS with HTTP/2
//! by ALPN), in JSON and CBOR. kinesis-local is skipped, with a notice, only when node is
//! missing.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use kds_client::credentials::Credentials;
use kds_client::{Client, ErrorKind, HttpVersion, PollConfig, PollingReader, Protocol, StreamId};
use kds_proto::model::{
    DeleteStreamInput, DeregisterStreamConsumerInput, DescribeStreamConsumerInput,
    DescribeStreamSummaryInput, GetRecordsInput, GetShardIteratorInput, ListShardsInput,
    ListStreamConsumersInput, MergeShardsInput, PutRecordInput, PutRecordsInput,
    PutRecordsRequestEntry, Record, RegisterStreamConsumerInput, Shard, SplitShardInput,
    StartingPosition,
};
use kds_proto::types::{
    ConsumerName, ConsumerStatus, HashKey, PartitionKey, SequenceNumber, ShardId, ShardIterator,
    ShardIteratorType, Timestamp,
};
use kds_proto::{ErrorClass, ErrorCode};

use kds_test_support::{
    Ferrokinesis, KinesisLocal, client_builder, create_stream, name, put_keyed, wait_active,
};

fn client(url: &str, protocol: Protocol, version: HttpVersion) -> Client {
    client_builder(url)
        .protocol(protocol)
        .http_version(version)
        .attempt_timeout(Duration::from_secs(20))
        .total_timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn create_active_stream(client: &Client, stream: &str, shards: i32) {
    create_stream(client, stream, shards).await;
}

/// Every shard, over pages of `page_size` shards.
async fn all_shards(client: &Client, stream: &str, page_size: Option<i32>) -> Vec<Shard> {
    let mut request = ListShardsInput::new();
    request.stream_name = Some(name(stream));
    request.max_results = page_size;
    let mut shards = Vec::new();
    let mut pages = 0;
    loop {
        let page = client.send(&request).await.unwrap();
        pages += 1;
        shards.extend(page.shards.unwrap_or_default());
        match page.next_token {
            Some(token) => request = request.next_page(token),
            None => break,
        }
        assert!(pages < 100, "ListShards does not end");
    }
    shards
}

async fn iterator(
    client: &Client,
    stream: &str,
    shard: &ShardId,
    kind: ShardIteratorType,
    sequence_number: Option<&SequenceNumber>,
    timestamp: Option<Timestamp>,
) -> ShardIterator {
    let mut request = GetShardIteratorInput::new(shard.clone(), kind);
    request.stream_name = Some(name(stream));
    request.starting_sequence_number = sequence_number.cloned();
    request.timestamp = timestamp;
    client
        .send(&request)
        .await
        .unwrap()
        .shard_iterator
        .expect("an iterator")
}

/// Every record from `iterator` to the tip.
async fn read_to_tip(client: &Client, mut iterator: ShardIterator) -> Vec<Record> {
    let mut records = Vec::new();
    for _ in 0..50 {
        let page = client
            .send(&GetRecordsInput::new(iterator.clone()))
            .await
            .unwrap();
        let empty = page.records.is_empty();
        records.extend(page.records);
        match page.next_shard_iterator {
            Some(next) if !empty => iterator = next,
            _ => return records,
        }
    }
    panic!("GetRecords does not reach the tip");
}

fn binary(seed: u8, len: usize) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into()
}

/// The scenario on one emulator. `page_size` pages ListShards (ferrokinesis 0.7 answers a page
/// that carries only NextToken, as AWS requires, with ResourceNotFoundException, so it is
/// listed in one page).
async fn streams_records_and_iterators(client: &Client, stream: &str, page_size: Option<i32>) {
    let client = client.clone();
    create_active_stream(&client, stream, 3).await;
    let shards = all_shards(&client, stream, page_size).await;
    assert_eq!(shards.len(), 3);

    // Every byte value, an empty-ish record, a record at the 1 MiB limit, and a batch.
    let key = PartitionKey::new("big").unwrap();
    let mut sent: Vec<Bytes> = vec![
        (0..=255u8).collect::<Vec<_>>().into(),
        Bytes::from_static(b"x"),
    ];
    sent.push(binary(7, 1024 * 1024 - key.as_str().len()));
    for data in &sent {
        let mut put = PutRecordInput::new(data.clone(), key.clone());
        put.stream_name = Some(name(stream));
        client.send(&put).await.unwrap();
    }
    let batch: Vec<PutRecordsRequestEntry> = (0..100u8)
        .map(|i| {
            PutRecordsRequestEntry::new(
                binary(i, 1000 + usize::from(i)),
                PartitionKey::new(format!("key-{i}")).unwrap(),
            )
        })
        .collect();
    sent.extend(batch.iter().map(|e| e.data.clone()));
    let mut put_records = PutRecordsInput::new(batch);
    put_records.stream_name = Some(name(stream));
    let output = client.send(&put_records).await.unwrap();
    assert_eq!(output.failures().count(), 0);
    assert_eq!(output.records.len(), 100);

    // TRIM_HORIZON on every shard reads back exactly what was sent.
    let mut read = Vec::new();
    for shard in &shards {
        let start = iterator(
            &client,
            stream,
            &shard.shard_id,
            ShardIteratorType::TrimHorizon,
            None,
            None,
        )
        .await;
        read.extend(read_to_tip(&client, start).await);
    }
    // The lending call reads the same pages.
    for shard in &shards {
        let start = iterator(
            &client,
            stream,
            &shard.shard_id,
            ShardIteratorType::TrimHorizon,
            None,
            None,
        )
        .await;
        let owned = client
            .send(&GetRecordsInput::new(start.clone()))
            .await
            .unwrap();
        let mut lent = Vec::new();
        let page = client
            .get_records_visit(&GetRecordsInput::new(start), |record| {
                lent.push((record.sequence_number.to_owned(), record.data.clone()));
            })
            .await
            .unwrap();
        let expected: Vec<_> = owned
            .records
            .iter()
            .map(|r| (r.sequence_number.as_str().to_owned(), r.data.clone()))
            .collect();
        assert_eq!(lent, expected);
        assert_eq!(page.records, expected.len());
        assert!(page.next_shard_iterator.is_some());
    }
    let digest = |data: &[Bytes]| data.iter().cloned().collect::<BTreeSet<Bytes>>();
    let read_data: Vec<Bytes> = read.iter().map(|r| r.data.clone()).collect();
    assert_eq!(read_data.len(), sent.len());
    assert_eq!(digest(&read_data), digest(&sent));

    // The records of the "big" key are in one shard, in order: position by sequence number.
    let shard = &output.records[0].shard_id.clone().unwrap();
    let from_trim = read_to_tip(
        &client,
        iterator(
            &client,
            stream,
            shard,
            ShardIteratorType::TrimHorizon,
            None,
            None,
        )
        .await,
    )
    .await;
    let second = &from_trim[1];
    let at = read_to_tip(
        &client,
        iterator(
            &client,
            stream,
            shard,
            ShardIteratorType::AtSequenceNumber,
            Some(&second.sequence_number),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(at[0].sequence_number, second.sequence_number);
    assert_eq!(at.len(), from_trim.len() - 1);
    let after = read_to_tip(
        &client,
        iterator(
            &client,
            stream,
            shard,
            ShardIteratorType::AfterSequenceNumber,
            Some(&second.sequence_number),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(after.len(), from_trim.len() - 2);

    // AT_TIMESTAMP at the first record's arrival reads it and what follows.
    let arrival = from_trim[0]
        .approximate_arrival_timestamp
        .expect("arrival time");
    let at_time = read_to_tip(
        &client,
        iterator(
            &client,
            stream,
            shard,
            ShardIteratorType::AtTimestamp,
            None,
            Some(arrival),
        )
        .await,
    )
    .await;
    assert_eq!(at_time.len(), from_trim.len());

    // LATEST reads only what is put after it.
    let latest = iterator(
        &client,
        stream,
        shard,
        ShardIteratorType::Latest,
        None,
        None,
    )
    .await;
    let mut put = PutRecordInput::new(Bytes::from_static(b"after latest"), key.clone());
    put.stream_name = Some(name(stream));
    put.explicit_hash_key = None;
    let put_output = client.send(&put).await.unwrap();
    assert_eq!(&put_output.shard_id, shard);
    let new = read_to_tip(&client, latest).await;
    assert_eq!(new.len(), 1);
    assert_eq!(&new[0].data[..], b"after latest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_over_http1() {
    let ferrokinesis = Ferrokinesis::start().await;
    let ferro = client(&ferrokinesis.url, Protocol::Json, HttpVersion::Http1);
    streams_records_and_iterators(&ferro, "json", None).await;
    if let Some(local) = KinesisLocal::get() {
        let kinesis_local = client(&local.plain_url, Protocol::Json, HttpVersion::Http1);
        streams_records_and_iterators(&kinesis_local, "json-http1", Some(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbor_over_http2() {
    let ferrokinesis = Ferrokinesis::start().await;
    let ferro = client(&ferrokinesis.url, Protocol::Cbor, HttpVersion::Http2);
    streams_records_and_iterators(&ferro, "cbor", None).await;
    if let Some(local) = KinesisLocal::get() {
        // TLS, HTTP/2 by ALPN.
        let kinesis_local = client(&local.tls_url, Protocol::Cbor, HttpVersion::Auto);
        streams_records_and_iterators(&kinesis_local, "cbor-h2", Some(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_typed() {
    let ferrokinesis = Ferrokinesis::start().await;
    let mut endpoints = vec![("ferrokinesis", ferrokinesis.url.clone())];
    if let Some(local) = KinesisLocal::get() {
        endpoints.push(("kinesis-local", local.plain_url.clone()));
    }
    for ((emulator, url), protocol) in endpoints
        .iter()
        .flat_map(|e| [(e.clone(), Protocol::Json), (e.clone(), Protocol::Cbor)])
    {
        let client = client(&url, protocol, HttpVersion::Auto);

        let mut describe = DescribeStreamSummaryInput::new();
        describe.stream_name = Some(name("missing"));
        let err = client.send(&describe).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Service, "{err}");
        let service = err.service_error().unwrap();
        assert_eq!(service.code(), "ResourceNotFoundException");
        assert_eq!(service.class(), ErrorClass::Terminal);
        assert_eq!(err.attempts(), 1, "terminal errors are not retried");
        assert_eq!(err.operation(), Some("DescribeStreamSummary"));
        assert!(
            err.to_string().starts_with("DescribeStreamSummary: "),
            "{err}"
        );

        // Over the limit: refused before sending.
        let mut put = PutRecordInput::new(
            Bytes::from(vec![0; 1024 * 1024]),
            PartitionKey::new("k").unwrap(),
        );
        put.stream_name = Some(name("missing"));
        let err = client.send(&put).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        assert_eq!(err.attempts(), 0);

        // kinesis-local 0.6.2 fails with an empty HTTP 500 on a garbage iterator (an emulator
        // bug), so this case runs on ferrokinesis only.
        if emulator == "ferrokinesis" {
            let stream = if protocol == Protocol::Json {
                "errors-json"
            } else {
                "errors-cbor"
            };
            create_active_stream(&client, stream, 1).await;
            let garbage = ShardIterator::new("AAAAAAAAAAGarbage").unwrap();
            let err = client
                .send(&GetRecordsInput::new(garbage))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Service, "{err}");
            assert!(!err.is_retryable(), "{err}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_fails_within_the_total_timeout() {
    // A port nothing listens on: connections are refused, retried, and the call ends.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = Client::builder()
        .region("us-east-1")
        .endpoint(url)
        .credentials(Credentials::new("AKID", "secret", None, None, "test"))
        .total_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let mut describe = DescribeStreamSummaryInput::new();
    describe.stream_name = Some(name("s"));
    let err = client.send(&describe).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Transport | ErrorKind::Timeout),
        "{err}"
    );
    assert!(err.attempts() > 1, "connection failures are retried: {err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

async fn put_keys(client: &Client, stream: &str, prefix: &str, count: usize) -> Vec<Bytes> {
    put_keyed(client, stream, prefix, count).await
}

async fn read_shard(client: &Client, stream: &str, shard: &ShardId) -> Vec<Bytes> {
    let start = iterator(
        client,
        stream,
        shard,
        ShardIteratorType::TrimHorizon,
        None,
        None,
    )
    .await;
    read_to_tip(client, start)
        .await
        .into_iter()
        .map(|r| r.data)
        .collect()
}

fn sorted(mut data: Vec<Bytes>) -> Vec<Bytes> {
    data.sort();
    data
}

/// Reads every shard of `stream` with a [`PollingReader`] up to the tips: each record once, and
/// each generation (`generations`, oldest first) before the next.
async fn read_whole_stream_by_polling(client: &Client, stream: &str, generations: &[Vec<Bytes>]) {
    let shards = all_shards(client, stream, None).await;
    let mut config = PollConfig::default();
    // Nothing is written while reading. (ferrokinesis dates a new child shard a second ahead,
    // and the records written to it in that second too: hence the margin.)
    config.end_at = Some((std::time::SystemTime::now() + Duration::from_secs(2)).into());
    config.interval = Duration::from_millis(20);
    let mut reader = PollingReader::new(
        client.clone(),
        StreamId::Name(name(stream)),
        &shards,
        &StartingPosition::new(ShardIteratorType::TrimHorizon),
        config,
    );
    let mut read = Vec::new();
    let reading = async {
        while let Some(batch) = reader.next_batch().await.unwrap() {
            assert!(!batch.records.is_empty());
            assert!(shards.iter().any(|s| s.shard_id == batch.shard_id));
            read.extend(batch.records.into_iter().map(|r| r.data));
        }
    };
    tokio::time::timeout(Duration::from_secs(60), reading)
        .await
        .expect("the polling reader stops at the tips");
    let all: Vec<Bytes> = generations.iter().flatten().cloned().collect();
    assert_eq!(sorted(read.clone()), sorted(all), "every record once");
    let mut start = 0;
    for generation in generations {
        let end = start + generation.len();
        assert_eq!(
            sorted(read[start..end].to_vec()),
            sorted(generation.clone()),
            "parents are read before their children"
        );
        start = end;
    }
}

/// Split a shard and merge its children, reading parents and children; register, describe,
/// list and deregister a consumer; delete the stream.
async fn resharding_consumers_and_deletion(
    client: &Client,
    stream: &str,
    describe_consumers: bool,
) {
    create_active_stream(client, stream, 1).await;
    let parent = all_shards(client, stream, None).await.remove(0).shard_id;
    let before = put_keys(client, stream, "before", 10).await;

    let mut split = SplitShardInput::new(parent.clone(), HashKey(1 << 127));
    split.stream_name = Some(name(stream));
    client.send(&split).await.unwrap();
    wait_active(client, stream).await;
    let shards = all_shards(client, stream, None).await;
    let children: Vec<&Shard> = shards
        .iter()
        .filter(|s| s.parent_shard_id.as_ref() == Some(&parent))
        .collect();
    assert_eq!(children.len(), 2, "{shards:?}");
    let after = put_keys(client, stream, "after", 20).await;
    assert_eq!(
        sorted(read_shard(client, stream, &parent).await),
        sorted(before.clone())
    );
    let mut from_children = Vec::new();
    for child in &children {
        from_children.extend(read_shard(client, stream, &child.shard_id).await);
    }
    assert_eq!(sorted(from_children), sorted(after.clone()));

    // The children cover adjacent ranges: merge them.
    let (low, high) = if children[0].hash_key_range.starting_hash_key
        < children[1].hash_key_range.starting_hash_key
    {
        (children[0], children[1])
    } else {
        (children[1], children[0])
    };
    let mut merge = MergeShardsInput::new(low.shard_id.clone(), high.shard_id.clone());
    merge.stream_name = Some(name(stream));
    client.send(&merge).await.unwrap();
    wait_active(client, stream).await;
    let shards = all_shards(client, stream, None).await;
    let merged = shards
        .iter()
        .find(|s| {
            s.parent_shard_id.as_ref() == Some(&low.shard_id)
                && s.adjacent_parent_shard_id.as_ref() == Some(&high.shard_id)
        })
        .unwrap_or_else(|| panic!("no merged shard in {shards:?}"));
    let last = put_keys(client, stream, "merged", 5).await;
    assert_eq!(
        sorted(read_shard(client, stream, &merged.shard_id).await),
        sorted(last.clone())
    );
    read_whole_stream_by_polling(client, stream, &[before, after, last]).await;

    // Consumers.
    let mut describe = DescribeStreamSummaryInput::new();
    describe.stream_name = Some(name(stream));
    let arn = client
        .send(&describe)
        .await
        .unwrap()
        .stream_description_summary
        .stream_arn;
    let consumer = ConsumerName::new("interop-reader").unwrap();
    let registered = client
        .send(&RegisterStreamConsumerInput::new(
            arn.clone(),
            consumer.clone(),
        ))
        .await
        .unwrap()
        .consumer;
    assert_eq!(registered.consumer_name, consumer);
    // Wait for ACTIVE through the listing: ferrokinesis 0.7 leaves the required StreamARN out
    // of DescribeStreamConsumer's ConsumerDescription, so that call is checked on
    // kinesis-local only.
    let consumers = ListStreamConsumersInput::new(arn.clone());
    let mut active = false;
    for _ in 0..300 {
        let listed = client.list_all_stream_consumers(&consumers).await.unwrap();
        let status = listed
            .iter()
            .find(|c| c.consumer_arn == registered.consumer_arn)
            .map(|c| c.consumer_status.clone());
        if status == Some(ConsumerStatus::Active) {
            active = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(active, "the consumer did not become ACTIVE");
    if describe_consumers {
        let mut request = DescribeStreamConsumerInput::new();
        request.stream_arn = Some(arn.clone());
        request.consumer_name = Some(consumer.clone());
        let description = client.send(&request).await.unwrap().consumer_description;
        assert_eq!(description.consumer_arn, registered.consumer_arn);
        assert_eq!(description.stream_arn.as_ref(), Some(&arn));
    }
    let mut deregister = DeregisterStreamConsumerInput::new();
    deregister.consumer_arn = Some(registered.consumer_arn.clone());
    client.send(&deregister).await.unwrap();
    let mut gone = false;
    for _ in 0..300 {
        let listed = client.list_all_stream_consumers(&consumers).await.unwrap();
        if listed
            .iter()
            .all(|c| c.consumer_arn != registered.consumer_arn)
        {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "the consumer was not deregistered");

    // Deletion.
    let mut delete = DeleteStreamInput::new();
    delete.stream_name = Some(name(stream));
    delete.enforce_consumer_deletion = Some(true);
    client.send(&delete).await.unwrap();
    let mut deleted = false;
    for _ in 0..300 {
        match client.send(&describe).await {
            Err(e) if e.error_code() == Some(ErrorCode::ResourceNotFound) => {
                deleted = true;
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(deleted, "the stream was not deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resharding_consumers_and_deletion_on_both_emulators() {
    let ferrokinesis = Ferrokinesis::start().await;
    let ferro = client(&ferrokinesis.url, Protocol::Json, HttpVersion::Http1);
    resharding_consumers_and_deletion(&ferro, "reshard", false).await;
    if let Some(local) = KinesisLocal::get() {
        let kinesis_local = client(&local.plain_url, Protocol::Cbor, HttpVersion::Http1);
        resharding_consumers_and_deletion(&kinesis_local, "reshard-cbor", true).await;
    }
}
