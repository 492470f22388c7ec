//! Responses captured from kinesis-local 0.6.2 (see `testdata/captured/README.md`) decode, in
//! JSON and in CBOR, through the same entry point a client uses.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use kds_proto::eventstream::{SubscribeToShardDecoder, SubscribeToShardItem};
use kds_proto::model::*;
use kds_proto::types::StreamStatus;
use kds_proto::{ErrorClass, Protocol, Request, ResponseError, decode_response};

struct Capture {
    name: String,
    operation: String,
    variant: Option<String>,
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

fn captures(protocol: &str) -> Vec<Capture> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/captured")
        .join(protocol);
    let mut metas: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".meta.json"))
        .collect();
    metas.sort();
    metas
        .into_iter()
        .map(|meta_path| {
            let meta: serde_json::Value =
                serde_json::from_slice(&fs::read(&meta_path).unwrap()).unwrap();
            let name = meta_path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .replace(".meta.json", "");
            let body = fs::read(dir.join(format!("{name}.body"))).unwrap();
            let mut headers = HeaderMap::new();
            if let Some(ct) = meta["content_type"].as_str() {
                headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_str(ct).unwrap(),
                );
            }
            if let Some(id) = meta["request_id"].as_str() {
                headers.insert("x-amzn-requestid", HeaderValue::from_str(id).unwrap());
            }
            Capture {
                name,
                operation: meta["operation"].as_str().unwrap().to_owned(),
                variant: meta["variant"].as_str().map(str::to_owned),
                status: meta["status"].as_u64().unwrap() as u16,
                headers,
                body: Bytes::from(body),
            }
        })
        .collect()
}

fn decode<Q: Request>(c: &Capture, protocol: Protocol) -> Result<Q::Response, ResponseError> {
    decode_response::<Q>(
        StatusCode::from_u16(c.status).unwrap(),
        &c.headers,
        c.body.clone(),
        protocol,
    )
}

fn expect_ok<Q: Request>(c: &Capture, protocol: Protocol) -> Q::Response {
    decode::<Q>(c, protocol).unwrap_or_else(|e| panic!("{}: {e}", c.name))
}

fn expected_error(variant: &str) -> (&'static str, ErrorClass) {
    match variant {
        "error-not-found" => ("ResourceNotFoundException", ErrorClass::Terminal),
        // kinesis-local crashes on a garbage iterator: HTTP 500, empty body.
        "error-garbage-iterator" | "error-garbage-iterator-base64" => {
            ("UnknownError", ErrorClass::Transient)
        }
        "error-oversize" | "error-limit-0" | "error-limit-10001" => {
            ("InvalidArgumentException", ErrorClass::Terminal)
        }
        "error-unknown-target" => ("AccessDeniedException", ErrorClass::Terminal),
        other => panic!("no expectation for {other}"),
    }
}

fn subscribe_items(c: &Capture, protocol: Protocol) -> Vec<SubscribeToShardItem> {
    let mut decoder = SubscribeToShardDecoder::new(protocol);
    decoder.feed(c.body.clone());
    let mut items = Vec::new();
    while let Some(item) = decoder
        .next_item()
        .unwrap_or_else(|e| panic!("{}: {e}", c.name))
    {
        items.push(item);
    }
    decoder.finish().unwrap();
    assert_eq!(decoder.skipped(), 0);
    items
}

fn check_all(dir: &str, protocol: Protocol) {
    let captures = captures(dir);
    assert!(captures.len() >= 35, "captures missing in {dir}");
    let mut checked = 0;
    for c in &captures {
        let variant = c.variant.as_deref().unwrap_or("");
        if variant.starts_with("error-") && c.operation != "SubscribeToShard" {
            let (code, class) = expected_error(variant);
            let error = match c.operation.as_str() {
                "DescribeStreamSummary" => {
                    decode::<DescribeStreamSummaryInput>(c, protocol).map(drop)
                }
                "GetRecords" => decode::<GetRecordsInput>(c, protocol).map(drop),
                "PutRecord" => decode::<PutRecordInput>(c, protocol).map(drop),
                _ => decode::<ListStreamsInput>(c, protocol).map(drop),
            };
            let Err(ResponseError::Service(e)) = error else {
                panic!("{}: expected a service error, got {error:?}", c.name)
            };
            assert_eq!(
                (e.code(), e.class(), e.status()),
                (code, class, Some(c.status)),
                "{}",
                c.name
            );
            if c.status == 400 {
                assert!(e.message().is_some_and(|m| !m.is_empty()), "{}", c.name);
                assert!(e.request_id().is_some(), "{}", c.name);
            }
            checked += 1;
            continue;
        }
        match c.operation.as_str() {
            "CreateStream" => {
                expect_ok::<CreateStreamInput>(c, protocol);
            }
            "DeleteStream" => {
                expect_ok::<DeleteStreamInput>(c, protocol);
            }
            "DescribeStream" => {
                let out = expect_ok::<DescribeStreamInput>(c, protocol);
                let d = out.stream_description;
                assert_eq!(d.shards.len(), 2, "{}", c.name);
                assert_eq!(d.stream_status, StreamStatus::Active);
                assert!(
                    d.shards[0].hash_key_range.ending_hash_key
                        < d.shards[1].hash_key_range.starting_hash_key
                );
            }
            "DescribeStreamSummary" => {
                let s =
                    expect_ok::<DescribeStreamSummaryInput>(c, protocol).stream_description_summary;
                assert!(s.stream_arn.as_str().ends_with(s.stream_name.as_str()));
                assert!(s.stream_creation_timestamp.as_millis() > 1_700_000_000_000);
            }
            "ListStreams" => {
                let out = expect_ok::<ListStreamsInput>(c, protocol);
                assert!(!out.stream_names.is_empty());
            }
            "ListShards" => {
                let out = expect_ok::<ListShardsInput>(c, protocol);
                let shards = out.shards.unwrap_or_default();
                match variant {
                    "page1" => {
                        assert_eq!(shards.len(), 1);
                        assert!(out.next_token.is_some());
                    }
                    _ => assert!(!shards.is_empty()),
                }
            }
            "PutRecord" => {
                let out = expect_ok::<PutRecordInput>(c, protocol);
                assert!(out.shard_id.as_str().starts_with("shardId-"));
            }
            "PutRecords" => {
                let out = expect_ok::<PutRecordsInput>(c, protocol);
                assert_eq!(out.records.len(), 3);
                assert_eq!(out.failures().count(), 0);
                assert_eq!(out.failed_record_count, Some(0));
            }
            "GetShardIterator" => {
                assert!(
                    expect_ok::<GetShardIteratorInput>(c, protocol)
                        .shard_iterator
                        .is_some()
                );
            }
            "GetRecords" => {
                let out = expect_ok::<GetRecordsInput>(c, protocol);
                let data: Vec<String> = out.records.iter().map(|r| hex::encode(&r.data)).collect();
                assert_eq!(
                    data,
                    [
                        "000102feff80c3286b64732d7075742d7265636f7264",
                        "fffefd006669727374",
                        "808182007365636f6e64",
                        "c0c1f5f874686972642d6578706c696369742d686173682d6b6579"
                    ],
                    "{}",
                    c.name
                );
                assert!(
                    out.records
                        .windows(2)
                        .all(|w| w[0].sequence_number < w[1].sequence_number)
                );
                let ts = out.records[0]
                    .approximate_arrival_timestamp
                    .unwrap()
                    .as_millis();
                assert!(ts > 1_700_000_000_000, "{}: {ts}", c.name);
                assert!(out.next_shard_iterator.is_some());
            }
            "RegisterStreamConsumer" => {
                let out = expect_ok::<RegisterStreamConsumerInput>(c, protocol);
                assert_eq!(
                    out.consumer.consumer_arn.consumer_name(),
                    out.consumer.consumer_name.as_str()
                );
            }
            "DescribeStreamConsumer" => {
                expect_ok::<DescribeStreamConsumerInput>(c, protocol);
            }
            "ListStreamConsumers" => {
                assert_eq!(
                    expect_ok::<ListStreamConsumersInput>(c, protocol)
                        .consumers
                        .unwrap()
                        .len(),
                    1
                );
            }
            "DeregisterStreamConsumer" => {
                expect_ok::<DeregisterStreamConsumerInput>(c, protocol);
            }
            "IncreaseStreamRetentionPeriod" => {
                expect_ok::<IncreaseStreamRetentionPeriodInput>(c, protocol);
            }
            "DecreaseStreamRetentionPeriod" => {
                expect_ok::<DecreaseStreamRetentionPeriodInput>(c, protocol);
            }
            "UpdateMaxRecordSize" => {
                expect_ok::<UpdateMaxRecordSizeInput>(c, protocol);
            }
            "SplitShard" => {
                expect_ok::<SplitShardInput>(c, protocol);
            }
            "MergeShards" => {
                expect_ok::<MergeShardsInput>(c, protocol);
            }
            "UpdateShardCount" => {
                assert!(
                    expect_ok::<UpdateShardCountInput>(c, protocol)
                        .target_shard_count
                        .is_some()
                );
            }
            "SubscribeToShard" => {
                let items = subscribe_items(c, protocol);
                if variant == "error-in-use" {
                    let [SubscribeToShardItem::Exception(e)] = &items[..] else {
                        panic!("{}: {items:?}", c.name)
                    };
                    assert_eq!(e.code(), "ResourceInUseException");
                } else {
                    let records: usize = items
                        .iter()
                        .map(|i| match i {
                            SubscribeToShardItem::Event(e) => e.records.len(),
                            other => panic!("{}: {other:?}", c.name),
                        })
                        .sum();
                    assert!(records > 0, "{}", c.name);
                }
            }
            other => panic!("{}: no check for operation {other}", c.name),
        }
        checked += 1;
    }
    assert_eq!(checked, captures.len());
}

#[test]
fn json_captures_decode() {
    check_all("json", Protocol::Json);
}

#[test]
fn cbor_captures_decode() {
    check_all("cbor", Protocol::Cbor);
}
