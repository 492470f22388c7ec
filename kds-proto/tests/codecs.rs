//! The encoding variants the decoders must accept, golden vectors, and bad input with the error
//! kind each gives.

use bytes::Bytes;
use kds_proto::model::{
    DescribeStreamSummaryOutput, GetRecordsOutput, ListStreamsOutput, PutRecordInput,
    PutRecordsOutput, SubscribeToShardEvent,
};
use kds_proto::types::{EncryptionType, PartitionKey, StreamName};
use kds_proto::{DecodeErrorKind, ErrorClass, Protocol, Shape};

fn json<T: Shape>(text: &str) -> Result<T, kds_proto::DecodeError> {
    T::decode_body(Bytes::copy_from_slice(text.as_bytes()), Protocol::Json)
}

fn cbor<T: Shape>(hex_text: &str) -> Result<T, kds_proto::DecodeError> {
    let compact: String = hex_text.split_whitespace().collect();
    T::decode_body(Bytes::from(hex::decode(compact).unwrap()), Protocol::Cbor)
}

/// PutRecord as the AWS Java SDK writes it (an indefinite map: Jackson's `CBORGenerator` opens
/// objects that way), StreamName "s1", PartitionKey "pk", Data "hi".
const JAVA_PUT_RECORD: &str =
    "bf6a53747265616d4e616d656273316c506172746974696f6e4b657962706b6444617461426869ff";

#[test]
fn java_style_indefinite_put_record_decodes() {
    let request: PutRecordInput = cbor(JAVA_PUT_RECORD).unwrap();
    assert_eq!(request.stream_name, Some(StreamName::new("s1").unwrap()));
    assert_eq!(request.partition_key, PartitionKey::new("pk").unwrap());
    assert_eq!(&request.data[..], b"hi");
    // We write definite lengths with the same members: a0-map of 3 instead of bf…ff.
    let ours = hex::encode(request.encode_body(Protocol::Cbor));
    assert!(ours.starts_with("a3"), "{ours}");
    assert_eq!(cbor::<PutRecordInput>(&ours).unwrap(), request);
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

#[test]
fn cbor_blob_and_timestamp_variants() {
    let millis = 1_718_000_000_123i64;
    let cases = [
        // Byte string, tag 1 + integer millis (the Java SDK).
        ("42 6869", "c1 1b 0000019000c79c7b", millis),
        // Base64 text, untagged integer millis (kinesis-mock).
        ("64 61476b3d", "1b 0000019000c79c7b", millis),
        // Indefinite byte string in two chunks; float seconds (kinesalite).
        ("5f 4168 4169 ff", "fb 41d999a66007df3b", millis),
        // Any other tag is unwrapped and ignored.
        ("d8 40 42 6869", "c1 1b 0000019000c79c7b", millis),
    ];
    for (data, timestamp, expected) in cases {
        let out: GetRecordsOutput = cbor(&cbor_get_records(data, timestamp)).unwrap();
        let record = &out.records[0];
        assert_eq!(&record.data[..], b"hi", "{data}");
        assert_eq!(
            record.approximate_arrival_timestamp.unwrap().as_millis(),
            expected,
            "{timestamp}"
        );
    }
}

#[test]
fn cbor_byte_strings_are_not_copied() {
    let body =
        Bytes::from(hex::decode(cbor_get_records("42 6869", "00").replace(' ', "")).unwrap());
    let out = GetRecordsOutput::decode_body(body.clone(), Protocol::Cbor).unwrap();
    let data = &out.records[0].data;
    let offset = data.as_ptr() as usize - body.as_ptr() as usize;
    assert!(offset < body.len(), "data must point into the body");
}

#[test]
fn cbor_indefinite_text_undefined_and_unknown_members() {
    // {"StreamNames": [_ "a", "b" (chunked: "b" as 7f 61 62 ff)], "HasMoreStreams": false,
    //  "Unknown": {_ "x": [_ 1, 2.5, null]}, "NextToken": undefined}
    let out: ListStreamsOutput = cbor(
        "bf 6b 53747265616d4e616d6573 9f 61 61 7f 61 62 ff ff \
         6e 4861734d6f726553747265616d73 f4 \
         67 556e6b6e6f776e bf 61 78 9f 01 f9 4100 f6 ff ff \
         69 4e657874546f6b656e f7 ff",
    )
    .unwrap();
    let names: Vec<&str> = out.stream_names.iter().map(StreamName::as_str).collect();
    assert_eq!(names, ["a", "b"]);
    assert!(!out.has_more_streams);
    assert_eq!(out.next_token, None);
}

#[test]
fn json_variants() {
    // Exponent timestamps, escaped strings, explicit nulls, unknown nested members, whitespace.
    let out: GetRecordsOutput = json(
        r#" { "Records" : [ { "SequenceNumber" : "42", "ApproximateArrivalTimestamp" : 1.548118964772E9,
              "Data" : "aGk\/", "PartitionKey" : "k\u00e9\ud83d\ude00\n", "EncryptionType": "FUTURE",
              "Extra": {"a": [1, -2.5e-3, true, null, {"b": "c"}]} } ],
            "NextShardIterator" : null, "ChildShards": null } "#,
    )
    .unwrap();
    let record = &out.records[0];
    assert_eq!(
        record.approximate_arrival_timestamp.unwrap().as_millis(),
        1_548_118_964_772
    );
    assert_eq!(&record.data[..], [0x68, 0x69, 0x3f]);
    assert_eq!(record.partition_key.as_str(), "k\u{e9}\u{1F600}\n");
    assert_eq!(
        record.encryption_type,
        Some(EncryptionType::Unknown("FUTURE".into()))
    );
    assert_eq!(out.next_shard_iterator, None);
}

#[test]
fn unit_outputs_accept_empty_bodies() {
    use kds_proto::model::Empty;
    for (body, protocol) in [
        (&b""[..], Protocol::Json),
        (b"{}", Protocol::Json),
        (b"", Protocol::Cbor),
        (&[0xA0], Protocol::Cbor),
        (&[0xBF, 0xFF], Protocol::Cbor),
        (
            b"{\"StreamName\":null,\"MaxRecordSizeInKiB\":2048}",
            Protocol::Json,
        ),
    ] {
        Empty::decode_body(Bytes::copy_from_slice(body), protocol).unwrap();
    }
}

#[test]
fn json_timestamps_encode_as_seconds_with_millis() {
    let mut event = SubscribeToShardEvent::new(Vec::new(), 0);
    event.records = Vec::new();
    let encoded = String::from_utf8(event.encode_body(Protocol::Json)).unwrap();
    assert_eq!(encoded, r#"{"Records":[],"MillisBehindLatest":0}"#);
    let out: GetRecordsOutput = json(r#"{"Records":[{"SequenceNumber":"1","Data":"","PartitionKey":"k","ApproximateArrivalTimestamp":-0.001}]}"#).unwrap();
    let re = String::from_utf8(out.encode_body(Protocol::Json)).unwrap();
    assert!(
        re.contains(r#""ApproximateArrivalTimestamp":-0.001"#),
        "{re}"
    );
}

fn kind<T: Shape + std::fmt::Debug>(
    result: Result<T, kds_proto::DecodeError>,
) -> (DecodeErrorKind, String) {
    let e = result.unwrap_err();
    (e.kind(), e.field())
}

#[test]
fn bad_json_gives_typed_errors() {
    use DecodeErrorKind::*;
    let cases: &[(&str, DecodeErrorKind, &str)] = &[
        // Truncated.
        (
            r#"{"Records":[{"SequenceNumber":"1""#,
            UnexpectedEof,
            "Records[0]",
        ),
        (
            r#"{"Records":[{"SequenceNumber":"1"#,
            UnexpectedEof,
            "Records[0].SequenceNumber",
        ),
        // Wrong type.
        (
            r#"{"Records":[{"SequenceNumber":1,"Data":"","PartitionKey":"k"}]}"#,
            TypeMismatch,
            "Records[0].SequenceNumber",
        ),
        (r#"{"Records":{}}"#, TypeMismatch, "Records"),
        // Missing required member.
        (
            r#"{"Records":[{"SequenceNumber":"1","Data":""}]}"#,
            MissingField,
            "Records[0].PartitionKey",
        ),
        (r#"{}"#, MissingField, "Records"),
        // Invalid values.
        (
            r#"{"Records":[{"SequenceNumber":"01","Data":"","PartitionKey":"k"}]}"#,
            InvalidValue,
            "Records[0].SequenceNumber",
        ),
        (
            r#"{"Records":[{"SequenceNumber":"1","Data":"@@@@","PartitionKey":"k"}]}"#,
            InvalidBase64,
            "Records[0].Data",
        ),
        (
            r#"{"Records":[{"SequenceNumber":"1","Data":"","PartitionKey":""}]}"#,
            InvalidValue,
            "Records[0].PartitionKey",
        ),
        (
            r#"{"Records":[],"MillisBehindLatest":1.5}"#,
            InvalidNumber,
            "MillisBehindLatest",
        ),
        (
            r#"{"Records":[],"MillisBehindLatest":99999999999999999999}"#,
            InvalidNumber,
            "MillisBehindLatest",
        ),
        (
            r#"{"Records":[],"MillisBehindLatest":01}"#,
            InvalidNumber,
            "MillisBehindLatest",
        ),
        (
            r#"{"Records":[{"SequenceNumber":"1","Data":"","PartitionKey":"\ud800"}]}"#,
            InvalidUtf8,
            "Records[0].PartitionKey",
        ),
        // Malformed structure.
        (r#"{"Records":[],}"#, Syntax, ""),
        (r#"{"Records":[],"Records":[]}"#, Syntax, "Records"),
        (
            r#"{"Records":[{"SequenceNumber":"1","SequenceNumber":"2","Data":"","PartitionKey":"k"}]}"#,
            Syntax,
            "Records[0].SequenceNumber",
        ),
        (r#"{"Records":[] "x":1}"#, Syntax, ""),
        (r#"{"Records":[]} x"#, TrailingData, ""),
        (r#"{"Records":[],"x":tru}"#, Syntax, ""),
    ];
    for &(body, expected, field) in cases {
        let (k, f) = kind(json::<GetRecordsOutput>(body));
        assert_eq!((k, f.as_str()), (expected, field), "{body}");
    }
    // i32 members refuse values that do not fit.
    let (k, f) = kind(json::<PutRecordsOutput>(
        r#"{"Records":[],"FailedRecordCount":2147483648}"#,
    ));
    assert_eq!((k, f.as_str()), (InvalidNumber, "FailedRecordCount"));
    // Deep nesting in an unknown member is refused, not recursed into without bound.
    let deep = format!(
        r#"{{"Records":[],"x":{}{}}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    assert_eq!(kind(json::<GetRecordsOutput>(&deep)).0, TooDeep);
}

fn truncated(hex_text: &str, bytes: usize) -> String {
    let compact: String = hex_text.split_whitespace().collect();
    compact[..bytes * 2].to_owned()
}

#[test]
fn bad_cbor_gives_typed_errors() {
    use DecodeErrorKind::*;
    let cases: &[(&str, DecodeErrorKind)] = &[
        // Truncated: a byte string claiming more bytes than remain.
        (&cbor_get_records("5a ffffffff 68", "00"), UnexpectedEof),
        (
            &truncated(&cbor_get_records("42 6869", "00"), 30),
            UnexpectedEof,
        ),
        // Wrong type: an integer where the blob belongs.
        (&cbor_get_records("01", "00"), TypeMismatch),
        // Invalid UTF-8 in a text member.
        (
            "a1 67 5265636f726473 81 a1 6e 53657175656e63654e756d626572 62 ff31",
            InvalidUtf8,
        ),
        // Reserved additional information 28.
        ("a1 67 5265636f726473 1c", Syntax),
        // Trailing bytes.
        ("a1 67 5265636f726473 80 00", TrailingData),
        // A break where no indefinite item is open.
        ("a2 67 5265636f726473 80 ff", Syntax),
        // Missing required member.
        ("a0", MissingField),
        // Timestamp too large for milliseconds in an i64.
        (
            &cbor_get_records("42 6869", "fb 7fefffffffffffff"),
            InvalidNumber,
        ),
    ];
    for &(body, expected) in cases {
        assert_eq!(kind(cbor::<GetRecordsOutput>(body)).0, expected, "{body}");
    }
    let deep = format!("a2 67 5265636f726473 80 61 78 {} 00", "81 ".repeat(100));
    assert_eq!(kind(cbor::<GetRecordsOutput>(&deep)).0, TooDeep);
}

#[test]
fn error_offsets_point_into_the_body() {
    let body = r#"{"Records":[{"SequenceNumber":"1","Data":"aGk=","PartitionKey":"k"},{"SequenceNumber":"x"}]}"#;
    let e = json::<GetRecordsOutput>(body).unwrap_err();
    assert_eq!(e.kind(), DecodeErrorKind::InvalidValue);
    assert_eq!(e.offset(), Some(body.find(r#""x""#).unwrap()));
    assert!(e.to_string().contains("Records[1].SequenceNumber"), "{e}");
}

#[test]
fn partial_put_records_failures_are_exposed_per_entry() {
    let out: PutRecordsOutput = json(
        r#"{"FailedRecordCount":2,"Records":[
            {"SequenceNumber":"1","ShardId":"shardId-000000000000"},
            {"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded for shard"},
            {"ErrorCode":"InternalFailure","ErrorMessage":"Internal service failure."}]}"#,
    )
    .unwrap();
    let failures: Vec<(usize, Option<ErrorClass>)> =
        out.failures().map(|(i, e)| (i, e.error_class())).collect();
    assert_eq!(
        failures,
        [
            (1, Some(ErrorClass::Throttling)),
            (2, Some(ErrorClass::Transient))
        ]
    );
    // An absent FailedRecordCount is allowed (treated as 0 by callers).
    let out: PutRecordsOutput = json(r#"{"Records":[]}"#).unwrap();
    assert_eq!(out.failed_record_count, None);
}

#[test]
fn summary_with_every_member_decodes() {
    let out: DescribeStreamSummaryOutput = json(
        r#"{"StreamDescriptionSummary":{"StreamName":"s","StreamARN":"arn:aws:kinesis:us-east-1:123456789012:stream/s",
        "StreamId":"abcdefghij0123456789-abc","StreamStatus":"ACTIVE","StreamModeDetails":{"StreamMode":"ON_DEMAND"},
        "RetentionPeriodHours":24,"StreamCreationTimestamp":1700000000,"EnhancedMonitoring":[{"ShardLevelMetrics":["ALL"]}],
        "EncryptionType":"KMS","KeyId":"alias/aws/kinesis","OpenShardCount":4,"ConsumerCount":1,
        "WarmThroughput":{"TargetMiBps":10,"CurrentMiBps":5},"MaxRecordSizeInKiB":10240}}"#,
    )
    .unwrap();
    let s = out.stream_description_summary;
    assert_eq!(s.max_record_size_in_kib, Some(10240));
    assert_eq!(s.stream_creation_timestamp.as_millis(), 1_700_000_000_000);
}
