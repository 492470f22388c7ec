//! Faults injected between the client and ferrokinesis by a scripted proxy: throttling,
//! server errors, clock skew, connection resets, a stalled peer and partial PutRecords failures.
//! Retries must lose nothing and duplicate nothing beyond what the API allows; exhausted
//! retries must say why.

use std::time::Duration;

use bytes::Bytes;
use kds_client::credentials::Credentials;
use kds_client::{Client, ErrorKind, PutOrdering, RetryPolicy};
use kds_proto::model::{
    DescribeStreamSummaryInput, GetRecordsInput, GetShardIteratorInput, ListShardsInput,
    ListStreamConsumersInput, ListStreamsInput, PutRecordsInput, PutRecordsRequestEntry, Record,
};
use kds_proto::types::{PartitionKey, ShardIteratorType, StreamArn, StreamName};

use kds_test_support::proxy::{Fault, Proxy, throttle};
use kds_test_support::{client_builder, create_stream, fast_retries as fast, name};

/// A client of `url` whose DescribeStreamSummary, PutRecords and CreateStream calls follow
/// `policy`, each attempt within `attempt_timeout`.
fn client(url: &str, policy: RetryPolicy, attempt_timeout: Duration) -> Client {
    let mut builder = client_builder(url)
        .attempt_timeout(attempt_timeout)
        .total_timeout(Duration::from_secs(30));
    for operation in ["DescribeStreamSummary", "PutRecords", "CreateStream"] {
        builder = builder.retry_policy(operation, policy);
    }
    builder.build().unwrap()
}

fn describe(stream: &str) -> DescribeStreamSummaryInput {
    let mut request = DescribeStreamSummaryInput::new();
    request.stream_name = Some(name(stream));
    request
}

async fn create(client: &Client, stream: &str, shards: i32) {
    create_stream(client, stream, shards).await;
}

/// Every record of the stream, shard by shard, in each shard's order.
async fn read_all(client: &Client, stream: &str) -> Vec<Record> {
    let mut list = ListShardsInput::new();
    list.stream_name = Some(name(stream));
    let mut records = Vec::new();
    for shard in client.list_all_shards(&list).await.unwrap() {
        let mut request =
            GetShardIteratorInput::new(shard.shard_id, ShardIteratorType::TrimHorizon);
        request.stream_name = Some(name(stream));
        let mut iterator = client.send(&request).await.unwrap().shard_iterator.unwrap();
        loop {
            let page = client.send(&GetRecordsInput::new(iterator)).await.unwrap();
            if page.records.is_empty() {
                break;
            }
            records.extend(page.records);
            iterator = page.next_shard_iterator.unwrap();
        }
    }
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_server_errors_and_resets_are_retried() {
    let proxy = Proxy::start().await;
    create(&proxy.upstream, "s", 1).await;
    proxy.script([
        Fault::Error(400, "ProvisionedThroughputExceededException"),
        Fault::Error(503, "ServiceUnavailable"),
        Fault::Error(500, "InternalFailure"),
        Fault::Reset,
        Fault::Error(400, "LimitExceededException"),
    ]);
    let summary = proxy.client(5).send(&describe("s")).await.unwrap();
    assert_eq!(summary.stream_description_summary.stream_name.as_str(), "s");
    assert_eq!(proxy.requests().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_say_why() {
    let proxy = Proxy::start().await;
    proxy.script(std::iter::repeat_n(
        Fault::Error(400, "ProvisionedThroughputExceededException"),
        3,
    ));
    let err = proxy.client(2).send(&describe("s")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Service);
    assert_eq!(err.attempts(), 3);
    assert_eq!(err.request_id(), Some("injected-request"));
    let text = err.to_string();
    assert!(
        text.starts_with("DescribeStreamSummary: ProvisionedThroughputExceededException"),
        "{text}"
    );
    assert!(text.contains("after 3 attempts"), "{text}");
    assert_eq!(proxy.requests().len(), 3);

    // Terminal errors and expired iterators are not retried at all.
    for code in ["AccessDeniedException", "ExpiredIteratorException"] {
        proxy.script([Fault::Error(400, code)]);
        let err = proxy.client(5).send(&describe("s")).await.unwrap_err();
        assert_eq!(err.attempts(), 1, "{code}");
        assert!(!err.is_retryable(), "{code}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skew_is_corrected_once() {
    let proxy = Proxy::start().await;
    create(&proxy.upstream, "s", 1).await;
    // No retries allowed: the re-signed attempt is not a retry. The server is an hour ahead.
    proxy.script([Fault::Skewed(Duration::from_secs(3600))]);
    proxy.client(0).send(&describe("s")).await.unwrap();
    let dates = proxy.dates();
    assert_eq!(dates.len(), 2);
    // X-Amz-Date is yyyyMMddTHHmmssZ: the re-signed request is an hour later.
    let hour = |date: &str| date[9..11].parse::<u32>().unwrap();
    assert_eq!((hour(&dates[0]) + 1) % 24, hour(&dates[1]), "{dates:?}");
    // A second skew error in the same call is not corrected again.
    proxy.script([
        Fault::Error(400, "InvalidSignatureException"),
        Fault::Error(400, "InvalidSignatureException"),
    ]);
    let err = proxy.client(0).send(&describe("s")).await.unwrap_err();
    assert_eq!(err.attempts(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_peer_times_out_and_the_call_is_retried() {
    let proxy = Proxy::start().await;
    create(&proxy.upstream, "s", 1).await;
    let impatient = |retries| client(&proxy.url, fast(retries), Duration::from_millis(500));
    proxy.script([Fault::Stall(Duration::from_secs(3))]);
    let started = std::time::Instant::now();
    impatient(2).send(&describe("s")).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the attempt timeout fired"
    );

    proxy.script([Fault::Stall(Duration::from_secs(3))]);
    let err = impatient(0).send(&describe("s")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        err.to_string().contains("no response within 500ms"),
        "{err}"
    );
}

fn entries(keys: &[&str]) -> Vec<PutRecordsRequestEntry> {
    keys.iter()
        .enumerate()
        .map(|(i, key)| {
            PutRecordsRequestEntry::new(
                Bytes::from(format!("{key}-{i}")),
                PartitionKey::new(*key).unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_put_records_failures_are_resent_once_each() {
    let proxy = Proxy::start().await;
    create(&proxy.upstream, "s", 2).await;
    let keys: Vec<String> = (0..100).map(|i| format!("key-{i}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let mut request = PutRecordsInput::new(entries(&keys));
    request.stream_name = Some(name("s"));
    // First request: three throttled; second (the three again): the first throttled again.
    proxy.script([throttle(vec![3, 50, 99]), throttle(vec![0])]);
    let outcome = proxy
        .client(3)
        .put_records_retrying(&request, PutOrdering::Unordered)
        .await
        .unwrap();
    assert_eq!(outcome.requests, 3);
    assert_eq!(proxy.requests(), ["PutRecords"; 3]);
    assert_eq!(outcome.failures().count(), 0);
    assert!(outcome.entries.iter().all(|e| e.sequence_number.is_some()));
    let mut read: Vec<Bytes> = read_all(&proxy.upstream, "s")
        .await
        .into_iter()
        .map(|r| r.data)
        .collect();
    read.sort();
    let mut sent: Vec<Bytes> = request.records.iter().map(|e| e.data.clone()).collect();
    sent.sort();
    assert_eq!(read, sent, "every record exactly once");

    // Retries run out: the entry is returned with its error, the rest are written.
    proxy.script(std::iter::repeat_n(throttle(vec![0]), 5));
    let mut small = PutRecordsInput::new(entries(&["x", "y"]));
    small.stream_name = Some(name("s"));
    let outcome = proxy
        .client(2)
        .put_records_retrying(&small, PutOrdering::Unordered)
        .await
        .unwrap();
    let failures: Vec<_> = outcome.failures().collect();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].0, 0);
    assert_eq!(
        failures[0].1.error_code.as_deref(),
        Some("ProvisionedThroughputExceededException")
    );
    assert_eq!(outcome.requests, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_ordering_survives_failures() {
    let proxy = Proxy::start().await;
    create(&proxy.upstream, "ordered", 1).await;
    let keys = ["a", "a", "a", "b", "b", "c"];
    let mut request = PutRecordsInput::new(entries(&keys));
    request.stream_name = Some(name("ordered"));
    // Each request carries the first unwritten record of each key: [a0, b3, c5], [a0, b4],
    // [a0], [a1], [a2]; a0 is throttled in the first three.
    proxy.script([throttle(vec![0]), throttle(vec![0])]);
    let outcome = proxy
        .client(5)
        .put_records_retrying(&request, PutOrdering::PerPartitionKey)
        .await
        .unwrap();
    assert_eq!(outcome.failures().count(), 0);
    let read = read_all(&proxy.upstream, "ordered").await;
    let of_key = |key: &str| -> Vec<String> {
        read.iter()
            .filter(|r| r.partition_key.as_str() == key)
            .map(|r| String::from_utf8(r.data.to_vec()).unwrap())
            .collect()
    };
    assert_eq!(of_key("a"), ["a-0", "a-1", "a-2"]);
    assert_eq!(of_key("b"), ["b-3", "b-4"]);
    assert_eq!(read.len(), keys.len());
    let sent = proxy
        .requests()
        .iter()
        .filter(|t| *t == "PutRecords")
        .count();
    assert_eq!(sent, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_listings_follow_the_paging_rule_and_restart_on_expired_tokens() {
    let proxy = Proxy::start().await;
    const PAGE_1: &str = r#"{"Shards":[{"ShardId":"shardId-000000000000","HashKeyRange":{"StartingHashKey":"0","EndingHashKey":"1"},"SequenceNumberRange":{"StartingSequenceNumber":"1"}}],"NextToken":"token-1"}"#;
    const PAGE_2: &str = r#"{"Shards":[{"ShardId":"shardId-000000000001","HashKeyRange":{"StartingHashKey":"2","EndingHashKey":"3"},"SequenceNumberRange":{"StartingSequenceNumber":"2"}}]}"#;
    proxy.script([
        Fault::Reply(PAGE_1.into()),
        Fault::Error(400, "ExpiredNextTokenException"),
        Fault::Reply(PAGE_1.into()),
        Fault::Reply(PAGE_2.into()),
    ]);
    let mut request = ListShardsInput::new();
    request.stream_name = Some(name("s"));
    request.max_results = Some(1);
    let shards = proxy.client(0).list_all_shards(&request).await.unwrap();
    let ids: Vec<&str> = shards.iter().map(|s| s.shard_id.as_str()).collect();
    assert_eq!(ids, ["shardId-000000000000", "shardId-000000000001"]);
    let bodies = proxy.bodies();
    assert_eq!(bodies.len(), 4);
    let json = |body: &Bytes| serde_json::from_slice::<serde_json::Value>(body).unwrap();
    assert_eq!(
        json(&bodies[0]),
        serde_json::json!({"StreamName": "s", "MaxResults": 1})
    );
    // Later pages carry the token and the page size only.
    assert_eq!(
        json(&bodies[1]),
        serde_json::json!({"NextToken": "token-1", "MaxResults": 1})
    );
    // The expired token restarted the listing from the first page.
    assert_eq!(bodies[2], bodies[0]);

    // A service that hands out the same token again would page forever: an error instead.
    proxy.script([Fault::Reply(PAGE_1.into()), Fault::Reply(PAGE_1.into())]);
    let err = proxy.client(0).list_all_shards(&request).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("page token it had returned before"),
        "{err}"
    );
}

/// The error code of each entry, `None` for written ones.
fn error_codes(outcome: &kds_client::PutRecordsOutcome) -> Vec<Option<&str>> {
    outcome
        .entries
        .iter()
        .map(|e| e.error_code.as_deref())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_ordering_stops_a_key_only() {
    let proxy = Proxy::start().await;
    create(&proxy.upstream, "keys", 1).await;
    // a0 fails for good: a1 is not sent, b's records are written.
    let mut request = PutRecordsInput::new(entries(&["a", "a", "b", "b"]));
    request.stream_name = Some(name("keys"));
    proxy.script([Fault::FailEntries(vec![0], "InvalidArgumentException")]);
    let outcome = proxy
        .client(3)
        .put_records_retrying(&request, PutOrdering::PerPartitionKey)
        .await
        .unwrap();
    let codes = error_codes(&outcome);
    assert_eq!(
        codes,
        [
            Some("InvalidArgumentException"),
            Some("NotSent"),
            None,
            None
        ]
    );

    // a0's retries run out: a1 is not sent, b's records are still written.
    proxy.script([throttle(vec![0])]);
    let outcome = proxy
        .client(0)
        .put_records_retrying(&request, PutOrdering::PerPartitionKey)
        .await
        .unwrap();
    let codes = error_codes(&outcome);
    assert_eq!(
        codes,
        [
            Some("ProvisionedThroughputExceededException"),
            Some("NotSent"),
            None,
            None
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_success_is_not_retried() {
    let proxy = Proxy::start().await;
    proxy.script([Fault::Reply("not a document".into())]);
    let err = proxy.client(5).send(&describe("s")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
    assert_eq!(err.attempts(), 1);
}

/// A provider that never answers.
#[derive(Debug)]
struct Silent;

impl aws_credential_types::provider::ProvideCredentials for Silent {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(std::future::pending())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_credentials_provider_times_out() {
    let proxy = Proxy::start().await;
    let client = Client::builder()
        .region("us-east-1")
        .endpoint(&proxy.url)
        .credentials(Silent)
        .attempt_timeout(Duration::from_millis(200))
        .total_timeout(Duration::from_secs(1))
        .retry_policy("DescribeStreamSummary", fast(1))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let err = client.send(&describe("s")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        err.to_string().contains("no credentials from the provider"),
        "{err}"
    );
    assert_eq!(err.attempts(), 2);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(proxy.requests().is_empty(), "nothing was sent");

    // Secrets stay out of Debug output.
    let keyed = Client::builder()
        .region("us-east-1")
        .endpoint(&proxy.url)
        .credentials(Credentials::new(
            "AKIDEXAMPLE",
            "very-secret-key",
            Some("session-token".into()),
            None,
            "test",
        ));
    assert!(!format!("{keyed:?}").contains("very-secret-key"));
    let keyed = keyed.build().unwrap();
    keyed.send(&describe("s")).await.unwrap_err();
    let debug = format!("{keyed:?}");
    assert!(
        !debug.contains("very-secret-key") && !debug.contains("session-token"),
        "{debug}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_goaway_moves_calls_to_a_new_connection() {
    let proxy = Proxy::start().await;
    create(&proxy.upstream, "s", 1).await;
    let client = Client::builder()
        .region("us-east-1")
        .endpoint(&proxy.url)
        .http_version(kds_client::HttpVersion::Http2)
        .credentials(Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "test",
        ))
        .retry_policy("DescribeStreamSummary", fast(3))
        .build()
        .unwrap();
    client.send(&describe("s")).await.unwrap();
    proxy.script([Fault::GoAway, Fault::GoAway]);
    for _ in 0..6 {
        client.send(&describe("s")).await.unwrap();
    }
    assert_eq!(proxy.requests().len(), 7, "no call lost or repeated");
    let connections = proxy.connections();
    assert_eq!(connections, 3, "two GOAWAYs, three connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_and_consumer_listings_page_to_the_end() {
    let proxy = Proxy::start().await;
    proxy.script([
        Fault::Reply(r#"{"StreamNames":["a","b"],"HasMoreStreams":true,"NextToken":"t1"}"#.into()),
        Fault::Reply(r#"{"StreamNames":["c"],"HasMoreStreams":false}"#.into()),
    ]);
    let mut request = ListStreamsInput::new();
    request.limit = Some(2);
    let (names, _) = proxy.client(0).list_all_streams(&request).await.unwrap();
    let names: Vec<&str> = names.iter().map(StreamName::as_str).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let json = |body: &Bytes| serde_json::from_slice::<serde_json::Value>(body).unwrap();
    let bodies = proxy.bodies();
    assert_eq!(
        json(&bodies[1]),
        serde_json::json!({"Limit": 2, "NextToken": "t1"})
    );

    const CONSUMER: &str = r#"{"ConsumerName":"NAME","ConsumerARN":"arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/NAME:1","ConsumerStatus":"ACTIVE","ConsumerCreationTimestamp":1}"#;
    let page_1 = format!(
        r#"{{"Consumers":[{}],"NextToken":"c1"}}"#,
        CONSUMER.replace("NAME", "one")
    );
    let page_2 = format!(r#"{{"Consumers":[{}]}}"#, CONSUMER.replace("NAME", "two"));
    proxy.script([Fault::Reply(page_1), Fault::Reply(page_2)]);
    let arn = StreamArn::new("arn:aws:kinesis:us-east-1:123456789012:stream/s").unwrap();
    let consumers = proxy
        .client(0)
        .list_all_stream_consumers(&ListStreamConsumersInput::new(arn))
        .await
        .unwrap();
    let names: Vec<&str> = consumers.iter().map(|c| c.consumer_name.as_str()).collect();
    assert_eq!(names, ["one", "two"]);
    let bodies = proxy.bodies();
    // Consumer pages name the stream again, with the token.
    assert_eq!(
        json(&bodies[3]),
        serde_json::json!({"StreamARN": "arn:aws:kinesis:us-east-1:123456789012:stream/s", "NextToken": "c1"})
    );
}
