//! Round trips of every shape through both codecs, and request validation.

use bytes::Bytes;
use proptest::prelude::*;

use super::generate::{Generate, Rng};
use super::records::general_only;
use super::*;
use crate::{DecodeError, DecodeErrorKind, ValidationErrorKind};

/// Encodes, decodes and re-encodes `value` in both protocols.
fn round_trip<T: Shape + Generate + PartialEq + std::fmt::Debug>(seed: u64) {
    let value = T::generate(&mut Rng::new(seed));
    for protocol in [Protocol::Json, Protocol::Cbor] {
        let encoded = value.encode_body(protocol);
        let decoded = T::decode_body(Bytes::from(encoded.clone()), protocol).unwrap_or_else(|e| {
            panic!(
                "{protocol:?}: {e}\n{value:?}\n{}",
                String::from_utf8_lossy(&encoded)
            )
        });
        assert_eq!(decoded, value, "{protocol:?}");
        assert_eq!(decoded.encode_body(protocol), encoded, "{protocol:?}");
    }
}

macro_rules! round_trips {
    ($($shape:ident),+ $(,)?) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]
            #[test]
            #[allow(non_snake_case)]
            fn every_shape_round_trips(seed in any::<u64>()) {
                $( round_trip::<$shape>(seed); )+
            }
        }
    };
}

round_trips!(
    HashKeyRange,
    SequenceNumberRange,
    Shard,
    ChildShard,
    Record,
    Consumer,
    ConsumerDescription,
    StreamModeDetails,
    EnhancedMetrics,
    WarmThroughput,
    StreamDescription,
    StreamDescriptionSummary,
    StreamSummary,
    ShardFilter,
    StartingPosition,
    Empty,
    PutRecordInput,
    PutRecordOutput,
    PutRecordsRequestEntry,
    PutRecordsInput,
    PutRecordsResultEntry,
    PutRecordsOutput,
    GetShardIteratorInput,
    GetShardIteratorOutput,
    GetRecordsInput,
    GetRecordsOutput,
    ListShardsInput,
    ListShardsOutput,
    DescribeStreamInput,
    DescribeStreamOutput,
    DescribeStreamSummaryInput,
    DescribeStreamSummaryOutput,
    CreateStreamInput,
    DeleteStreamInput,
    ListStreamsInput,
    ListStreamsOutput,
    RegisterStreamConsumerInput,
    RegisterStreamConsumerOutput,
    DescribeStreamConsumerInput,
    DescribeStreamConsumerOutput,
    DeregisterStreamConsumerInput,
    ListStreamConsumersInput,
    ListStreamConsumersOutput,
    SubscribeToShardInput,
    SubscribeToShardEvent,
    SplitShardInput,
    MergeShardsInput,
    UpdateShardCountInput,
    UpdateShardCountOutput,
    IncreaseStreamRetentionPeriodInput,
    DecreaseStreamRetentionPeriodInput,
    UpdateMaxRecordSizeInput,
);

fn key(k: &str) -> PartitionKey {
    PartitionKey::new(k).unwrap()
}

fn stream() -> Option<StreamName> {
    Some(StreamName::new("s").unwrap())
}

#[test]
fn put_records_limits() {
    let limits = Limits::default();
    let entry = PutRecordsRequestEntry::new(Bytes::from_static(b"x"), key("k"));
    let mut request = PutRecordsInput::new(vec![entry.clone(); 500]);
    request.stream_name = stream();
    assert!(request.validate(&limits).is_ok());

    request.records.push(entry.clone());
    let err = request.validate(&limits).unwrap_err();
    assert_eq!(
        (err.kind(), err.field()),
        (ValidationErrorKind::TooManyRecords, "Records")
    );

    request.records.clear();
    assert_eq!(
        request.validate(&limits).unwrap_err().kind(),
        ValidationErrorKind::Length
    );

    // Eleven records of 1 MiB minus the key: each fits, together they exceed 10 MiB.
    let big = PutRecordsRequestEntry::new(Bytes::from(vec![0u8; 1024 * 1024 - 1]), key("k"));
    request.records = vec![big.clone(); 11];
    assert_eq!(
        request.validate(&limits).unwrap_err().kind(),
        ValidationErrorKind::RequestTooLarge
    );

    // One byte more than the stream allows, counting the key.
    let mut too_big = big;
    too_big.data = Bytes::from(vec![0u8; 1024 * 1024]);
    request.records = vec![entry, too_big];
    let err = request.validate(&limits).unwrap_err();
    assert_eq!(
        (err.kind(), err.field()),
        (ValidationErrorKind::RecordTooLarge, "Records[1].Data")
    );
    assert!(
        request
            .validate(&Limits::with_max_record_size_kib(2048))
            .is_ok()
    );
}

#[test]
fn stream_must_be_named() {
    let request = PutRecordInput::new(Bytes::from_static(b"x"), key("k"));
    let err = request.validate(&Limits::default()).unwrap_err();
    assert_eq!(err.kind(), ValidationErrorKind::Missing);
}

#[test]
fn get_records_limit_range() {
    let iterator = ShardIterator::new("AAAA").unwrap();
    let mut request = GetRecordsInput::new(iterator);
    for (limit, ok) in [(1, true), (10_000, true), (0, false), (10_001, false)] {
        request.limit = Some(limit);
        let result = request.validate(&Limits::default());
        assert_eq!(result.is_ok(), ok, "{limit}");
        if let Err(e) = result {
            assert_eq!(
                (e.kind(), e.field()),
                (ValidationErrorKind::OutOfRange, "Limit")
            );
        }
    }
}

#[test]
fn list_shards_paging_rule() {
    let mut first = ListShardsInput::new();
    first.stream_name = stream();
    first.max_results = Some(100);
    first.shard_filter = Some(ShardFilter::new(ShardFilterType::AtLatest));
    assert!(first.validate(&Limits::default()).is_ok());
    let next = first.next_page("token".into());
    assert!(next.validate(&Limits::default()).is_ok());
    assert_eq!(
        String::from_utf8(next.encode_body(Protocol::Json)).unwrap(),
        r#"{"NextToken":"token","MaxResults":100}"#
    );
    let mut mixed = next;
    mixed.stream_name = stream();
    let err = mixed.validate(&Limits::default()).unwrap_err();
    assert_eq!(
        (err.kind(), err.field()),
        (ValidationErrorKind::Conflict, "StreamName")
    );

    let mut filter = first;
    filter.shard_filter = Some(ShardFilter::new(ShardFilterType::AtTimestamp));
    let err = filter.validate(&Limits::default()).unwrap_err();
    assert_eq!(
        (err.kind(), err.field()),
        (ValidationErrorKind::Missing, "ShardFilter.Timestamp")
    );
}

#[test]
fn iterator_positions_need_their_members() {
    let mut request = GetShardIteratorInput::new(
        ShardId::new("shardId-0").unwrap(),
        ShardIteratorType::AtSequenceNumber,
    );
    request.stream_name = stream();
    let err = request.validate(&Limits::default()).unwrap_err();
    assert_eq!(err.field(), "StartingSequenceNumber");
    request.shard_iterator_type = ShardIteratorType::AtTimestamp;
    assert_eq!(
        request.validate(&Limits::default()).unwrap_err().field(),
        "Timestamp"
    );
    request.shard_iterator_type = ShardIteratorType::from("SOMEWHERE");
    let err = request.validate(&Limits::default()).unwrap_err();
    assert_eq!(err.kind(), ValidationErrorKind::UnknownEnumValue);
    request.shard_iterator_type = ShardIteratorType::TrimHorizon;
    assert!(request.validate(&Limits::default()).is_ok());
}

#[test]
fn ranges_of_stream_settings() {
    let mut retention = IncreaseStreamRetentionPeriodInput::new(23);
    retention.stream_name = stream();
    assert_eq!(
        retention.validate(&Limits::default()).unwrap_err().field(),
        "RetentionPeriodHours"
    );
    retention.retention_period_hours = 8760;
    assert!(retention.validate(&Limits::default()).is_ok());

    let mut size = UpdateMaxRecordSizeInput::new(2048);
    assert_eq!(
        size.validate(&Limits::default()).unwrap_err().field(),
        "StreamARN"
    );
    size.stream_arn =
        Some(StreamArn::new("arn:aws:kinesis:us-east-1:123456789012:stream/s").unwrap());
    assert!(size.validate(&Limits::default()).is_ok());
    size.max_record_size_in_kib = 10_241;
    assert_eq!(
        size.validate(&Limits::default()).unwrap_err().kind(),
        ValidationErrorKind::OutOfRange
    );

    let create = CreateStreamInput::new(StreamName::new("s").unwrap());
    assert_eq!(
        create.validate(&Limits::default()).unwrap_err().field(),
        "ShardCount"
    );
    let mut on_demand = create;
    on_demand.stream_mode_details = Some(StreamModeDetails::new(StreamMode::OnDemand));
    assert!(on_demand.validate(&Limits::default()).is_ok());
}

#[test]
fn consumers_are_named_by_arn_or_stream_and_name() {
    let request = DescribeStreamConsumerInput::new();
    assert_eq!(
        request.validate(&Limits::default()).unwrap_err().kind(),
        ValidationErrorKind::Missing
    );
    let mut by_name = request;
    by_name.stream_arn =
        Some(StreamArn::new("arn:aws:kinesis:us-east-1:123456789012:stream/s").unwrap());
    by_name.consumer_name = Some(ConsumerName::new("app").unwrap());
    assert!(by_name.validate(&Limits::default()).is_ok());
}

#[test]
fn targets_name_the_operation() {
    assert_eq!(
        SubscribeToShardInput::TARGET,
        "Kinesis_20131202.SubscribeToShard"
    );
    assert_eq!(UpdateMaxRecordSizeInput::OPERATION, "UpdateMaxRecordSize");
}

/// A `visit_records` function.
type VisitRecords =
    fn(Bytes, Protocol, &mut dyn FnMut(RecordRef<'_>)) -> Result<RecordsPage, DecodeError>;

/// `visit_records` lends exactly the records `decode_body` returns, with the same page members.
fn visit_matches_decode<T: Shape + Generate + std::fmt::Debug>(
    seed: u64,
    records_of: fn(&T) -> &Vec<Record>,
    visit: VisitRecords,
) {
    let value = T::generate(&mut Rng::new(seed));
    for protocol in [Protocol::Json, Protocol::Cbor] {
        let body = Bytes::from(value.encode_body(protocol));
        let mut seen = Vec::new();
        let page = visit(body, protocol, &mut |r| seen.push(r.to_record())).unwrap();
        assert_eq!(&seen, records_of(&value), "{protocol:?}");
        assert_eq!(page.records, seen.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn visit_records_matches_decode_body(seed in any::<u64>()) {
        visit_matches_decode::<GetRecordsOutput>(seed, |o| &o.records, |b, p, f| GetRecordsOutput::visit_records(b, p, f));
        visit_matches_decode::<SubscribeToShardEvent>(seed, |e| &e.records, |b, p, f| SubscribeToShardEvent::visit_records(b, p, f));
    }
}

#[test]
fn visit_records_reports_bad_records_like_decode_body() {
    let body = r#"{"Records":[{"SequenceNumber":"1","Data":"","PartitionKey":"k"},{"SequenceNumber":"01","Data":"","PartitionKey":"k"}]}"#;
    let mut visited = 0;
    let err = GetRecordsOutput::visit_records(
        Bytes::from_static(body.as_bytes()),
        Protocol::Json,
        |_| visited += 1,
    )
    .unwrap_err();
    let owned = GetRecordsOutput::decode_body(Bytes::from_static(body.as_bytes()), Protocol::Json)
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.field(), err.offset()),
        (owned.kind(), owned.field(), owned.offset())
    );
    assert_eq!(visited, 1, "records before the bad one were lent");
    let err = GetRecordsOutput::visit_records(Bytes::from_static(b"{}"), Protocol::Json, |_| ())
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.field().as_str()),
        (DecodeErrorKind::MissingField, "Records")
    );
    let err = SubscribeToShardEvent::visit_records(
        Bytes::from_static(br#"{"Records":[]}"#),
        Protocol::Json,
        |_| (),
    )
    .unwrap_err();
    assert_eq!(err.field(), "MillisBehindLatest");
}

#[test]
fn requests_name_their_stream_and_shard() {
    let mut get = GetShardIteratorInput::new(
        ShardId::new("shardId-000000000001").unwrap(),
        ShardIteratorType::Latest,
    );
    assert_eq!(
        (get.stream(), get.shard()),
        (None, Some("shardId-000000000001"))
    );
    get.stream_name = Some(StreamName::new("orders").unwrap());
    assert_eq!(get.stream(), Some("orders"));
    let create = CreateStreamInput::new(StreamName::new("events").unwrap());
    assert_eq!((create.stream(), create.shard()), (Some("events"), None));
    assert_eq!(ListStreamsInput::new().stream(), None);
}

/// A GetRecords record map in CBOR with the given data and timestamp items (hex).
fn cbor_get_records(data: &str, timestamp: &str) -> String {
    format!(
        "a1 67 5265636f726473 81 a4 \
         6e 53657175656e63654e756d626572 62 3432 \
         64 44617461 {data} \
         6c 506172746974696f6e4b6579 61 6b \
         78 1b 417070726f78696d6174654172726976616c54696d657374616d70 {timestamp}"
    )
}

/// The record fast paths, owned (`decode_body`) and lent (`visit_records`), give what the
/// general decoder gives for `bytes`, or fail the same way.
fn fast_paths_agree(bytes: Bytes, protocol: Protocol, body: &str) {
    let general = general_only(|| GetRecordsOutput::decode_body(bytes.clone(), protocol));
    let same_error = |a: &DecodeError, b: &DecodeError| {
        assert_eq!(
            (a.kind(), a.field(), a.offset()),
            (b.kind(), b.field(), b.offset()),
            "{body}"
        );
    };
    match (
        &general,
        GetRecordsOutput::decode_body(bytes.clone(), protocol),
    ) {
        (Ok(a), Ok(b)) => assert_eq!(a, &b, "{body}"),
        (Err(a), Err(b)) => same_error(a, &b),
        (a, b) => panic!("{body}: general {a:?}, fast {b:?}"),
    }
    let mut lent = Vec::new();
    let visited = GetRecordsOutput::visit_records(bytes, protocol, |r| lent.push(r.to_record()));
    match (general, visited) {
        (Ok(general), Ok(page)) => {
            assert_eq!(general.records, lent, "{body}");
            assert_eq!(page.records, lent.len());
        }
        (Err(a), Err(b)) => same_error(&a, &b),
        (a, b) => panic!("{body}: general {a:?}, visit {b:?}"),
    }
}

// The record fast paths (lent through `visit_records`, owned through `decode_body`) against the
// general decoder (`general_only`), on every encoding variant and on bad records.

/// The record visitor (with its fast path for the common CBOR encoding) lends exactly what the
/// general decoder returns, for every encoding variant, and fails the same way.
#[test]
fn visit_records_agrees_with_decode_body_on_every_variant() {
    let mut bodies: Vec<String> = [
        ("42 6869", "c1 1b 0000019000c79c7b"),
        ("64 61476b3d", "1b 0000019000c79c7b"),
        ("5f 4168 4169 ff", "fb 41d999a66007df3b"),
        ("d8 40 42 6869", "c1 1b 0000019000c79c7b"),
        ("42 6869", "00"),
        ("42 6869", "18 ff"),
        ("42 6869", "19 ffff"),
        ("42 6869", "1a ffffffff"),
        ("42 6869", "3a 00000001"),
        ("58 02 6869", "c1 01"),
        ("59 0002 6869", "c1 01"),
        ("5a 00000002 6869", "c1 01"),
    ]
    .iter()
    .map(|(data, ts)| cbor_get_records(data, ts))
    .collect();
    // Bad records: leading-zero sequence number, empty partition key, a missing member, a
    // truncated byte string, an unknown extra member.
    bodies.push("a1 67 5265636f726473 81 a3 6e 53657175656e63654e756d626572 62 3031 64 44617461 40 6c 506172746974696f6e4b6579 61 6b".into());
    bodies.push("a1 67 5265636f726473 81 a3 6e 53657175656e63654e756d626572 61 31 64 44617461 40 6c 506172746974696f6e4b6579 60".into());
    bodies.push(
        "a1 67 5265636f726473 81 a2 6e 53657175656e63654e756d626572 61 31 64 44617461 40".into(),
    );
    bodies.push("a1 67 5265636f726473 81 a3 6e 53657175656e63654e756d626572 61 31 64 44617461 45 6869 6c 506172746974696f6e4b6579 61 6b".into());
    bodies.push("a1 67 5265636f726473 81 a4 6e 53657175656e63654e756d626572 61 31 64 44617461 40 6c 506172746974696f6e4b6579 61 6b 61 78 f5".into());
    for body in bodies {
        let compact: String = body.split_whitespace().collect();
        let bytes = Bytes::from(hex::decode(&compact).unwrap());
        fast_paths_agree(bytes, Protocol::Cbor, &body);
    }
}

/// The record visitor's JSON fast path gives what the general decoder gives, for common and
/// unusual record objects alike, and fails the same way.
#[test]
fn json_visit_records_agrees_with_decode_body() {
    let record = |members: &str| format!(r#"{{"Records":[{members}],"MillisBehindLatest":0}}"#);
    let bodies = [
        record(r#"{"SequenceNumber":"1","Data":"aGk=","PartitionKey":"k"}"#),
        record(
            r#" { "PartitionKey" : "k" , "Data" : "aGk=" , "SequenceNumber" : "12" , "ApproximateArrivalTimestamp" : 1.7e9 , "EncryptionType" : "KMS" } "#,
        ),
        record(r#"{"SequenceNumber":"1","Data":"","PartitionKey":"k\u00e9"}"#),
        record(
            r#"{"SequenceNumber":"1","Data":"aGk=","PartitionKey":"k","ApproximateArrivalTimestamp":1718000000.1239}"#,
        ),
        record(r#"{"SequenceNumber":"1","Data":"aGk=","PartitionKey":"k","Extra":[1,{"a":null}]}"#),
        record(r#"{"SequenceNumber":"1","Data":"aGk=","PartitionKey":"k","EncryptionType":null}"#),
        record(
            r#"{"SequenceNumber":"1","Data":"aGk=","PartitionKey":"k"},{"SequenceNumber":"2","Data":"aGk=","PartitionKey":"k"}"#,
        ),
        // Bad: a leading zero, an empty key, a missing member, a duplicate member, bad
        // base64, a string timestamp, a trailing comma, an unterminated object.
        record(r#"{"SequenceNumber":"01","Data":"aGk=","PartitionKey":"k"}"#),
        record(r#"{"SequenceNumber":"1","Data":"aGk=","PartitionKey":""}"#),
        record(r#"{"SequenceNumber":"1","Data":"aGk="}"#),
        record(r#"{"SequenceNumber":"1","SequenceNumber":"2","Data":"aGk=","PartitionKey":"k"}"#),
        record(r#"{"SequenceNumber":"1","Data":"a*k=","PartitionKey":"k"}"#),
        record(
            r#"{"SequenceNumber":"1","Data":"aGk=","PartitionKey":"k","ApproximateArrivalTimestamp":"1"}"#,
        ),
        record(r#"{"SequenceNumber":"1","Data":"aGk=","PartitionKey":"k",}"#),
        r#"{"Records":[{"SequenceNumber":"1","Data":"aGk=""#.to_owned(),
    ];
    for body in bodies {
        let bytes = Bytes::from(body.clone());
        fast_paths_agree(bytes, Protocol::Json, &body);
    }
}
