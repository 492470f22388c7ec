//! Inputs the fuzzers found, each with what was wrong.

use bytes::Bytes;
use kds_proto::model::GetRecordsOutput;
use kds_proto::{Protocol, Shape};

/// The record visitor checked for trailing bytes before it checked for `Records`, so it and the
/// general decoder reported different errors for a document without `Records` followed by
/// garbage (found by `json_response` and `cbor_response`).
#[test]
fn missing_records_is_reported_before_trailing_bytes() {
    for (body, protocol) in [
        (&br#"{"message":"Un178"},"Sh`ed"}"#[..], Protocol::Json),
        (
            &hex::decode("a0694e650000000000000000000000004031").unwrap()[..],
            Protocol::Cbor,
        ),
    ] {
        let body = Bytes::copy_from_slice(body);
        let owned = GetRecordsOutput::decode_body(body.clone(), protocol).unwrap_err();
        let lent = GetRecordsOutput::visit_records(body, protocol, |_| ()).unwrap_err();
        assert_eq!((owned.kind(), owned.field()), (lent.kind(), lent.field()));
    }
}

/// The record visitor read the members of both GetRecords and SubscribeToShardEvent, so a
/// GetRecords body with a malformed `ContinuationSequenceNumber` (a member it does not have)
/// failed on that member instead of skipping it like the general decoder (found by
/// `json_response`).
#[test]
fn members_of_the_other_shape_are_skipped() {
    let body = Bytes::from_static(
        br#"{"ContinuationSequenceNumber":[{"x":1}],"Records":[],"NextShardIterator":"AAAA"}"#,
    );
    let owned = GetRecordsOutput::decode_body(body.clone(), Protocol::Json).unwrap();
    let page = GetRecordsOutput::visit_records(body, Protocol::Json, |_| ()).unwrap();
    assert_eq!(page.next_shard_iterator, owned.next_shard_iterator);
    assert_eq!(page.continuation_sequence_number, None);
}
