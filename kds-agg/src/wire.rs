//! A reader of the `AggregatedRecord` protobuf (proto2) that borrows from its input.
//!
//! It decodes what prost would decode from the KPL's schema (awslabs/amazon-kinesis-producer
//! `aws/kinesis/protobuf/messages.proto`), with proto2 semantics: unknown fields (groups included)
//! are skipped, the last value of a repeated scalar wins, a known field with the wrong wire type or
//! a missing `required` member fails the parse. Unlike a generated message it builds nothing per
//! record but a few offsets, and it is checked against prost in the tests and the fuzz targets.

use prost::encoding::decode_varint;

/// The wire types of protobuf.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LENGTH_DELIMITED: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

/// Nested groups deeper than this fail the parse, as in prost.
const MAX_GROUP_DEPTH: usize = 100;

/// An `AggregatedRecord`, borrowing from the protobuf bytes.
pub(crate) struct Message<'a> {
    pub(crate) keys: Vec<&'a [u8]>,
    pub(crate) explicit_keys: Vec<&'a [u8]>,
    pub(crate) records: Vec<WireRecord<'a>>,
}

/// A `Record` of an aggregate.
pub(crate) struct WireRecord<'a> {
    pub(crate) key_index: u64,
    pub(crate) explicit_index: Option<u64>,
    pub(crate) data: &'a [u8],
    /// The record's body, for reading its tags when it has any.
    pub(crate) body: &'a [u8],
    pub(crate) has_tags: bool,
}

fn key(buf: &mut &[u8]) -> Option<(u64, u8)> {
    let key = decode_varint(buf).ok()?;
    let field = key >> 3;
    // Field numbers are 1..=2^29-1.
    if field == 0 || field > u64::from(u32::MAX >> 3) {
        return None;
    }
    Some((field, (key & 7) as u8))
}

fn length_delimited<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(decode_varint(buf).ok()?).ok()?;
    let (value, rest) = buf.split_at_checked(len)?;
    *buf = rest;
    Some(value)
}

fn skip(buf: &mut &[u8], field: u64, wire: u8, depth: usize) -> Option<()> {
    match wire {
        VARINT => decode_varint(buf).ok().map(drop),
        FIXED64 => buf.split_at_checked(8).map(|(_, rest)| *buf = rest),
        FIXED32 => buf.split_at_checked(4).map(|(_, rest)| *buf = rest),
        LENGTH_DELIMITED => length_delimited(buf).map(drop),
        START_GROUP if depth < MAX_GROUP_DEPTH => loop {
            let (inner, inner_wire) = key(buf)?;
            if inner_wire == END_GROUP {
                return (inner == field).then_some(());
            }
            skip(buf, inner, inner_wire, depth + 1)?;
        },
        _ => None,
    }
}

/// Reads an `AggregatedRecord`; `None` when the bytes are not one.
pub(crate) fn parse(mut buf: &[u8]) -> Option<Message<'_>> {
    let mut message = Message {
        keys: Vec::new(),
        explicit_keys: Vec::new(),
        records: Vec::new(),
    };
    while !buf.is_empty() {
        match key(&mut buf)? {
            (1, LENGTH_DELIMITED) => message.keys.push(length_delimited(&mut buf)?),
            (2, LENGTH_DELIMITED) => message.explicit_keys.push(length_delimited(&mut buf)?),
            (3, LENGTH_DELIMITED) => message.records.push(record(length_delimited(&mut buf)?)?),
            (1..=3, _) => return None,
            (field, wire) => skip(&mut buf, field, wire, 0)?,
        }
    }
    Some(message)
}

fn record(body: &[u8]) -> Option<WireRecord<'_>> {
    let mut buf = body;
    let mut key_index = None;
    let mut explicit_index = None;
    let mut data = None;
    let mut has_tags = false;
    while !buf.is_empty() {
        match key(&mut buf)? {
            (1, VARINT) => key_index = Some(decode_varint(&mut buf).ok()?),
            (2, VARINT) => explicit_index = Some(decode_varint(&mut buf).ok()?),
            (3, LENGTH_DELIMITED) => data = Some(length_delimited(&mut buf)?),
            (4, LENGTH_DELIMITED) => {
                tag(length_delimited(&mut buf)?)?;
                has_tags = true;
            }
            (1..=4, _) => return None,
            (field, wire) => skip(&mut buf, field, wire, 0)?,
        }
    }
    Some(WireRecord {
        key_index: key_index?,
        explicit_index,
        data: data?,
        body,
        has_tags,
    })
}

/// Reads a `Tag`: its key (required) and value.
pub(crate) fn tag(mut buf: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let mut key_value = None;
    let mut value = None;
    while !buf.is_empty() {
        match key(&mut buf)? {
            (1, LENGTH_DELIMITED) => key_value = Some(length_delimited(&mut buf)?),
            (2, LENGTH_DELIMITED) => value = Some(length_delimited(&mut buf)?),
            (1..=2, _) => return None,
            (field, wire) => skip(&mut buf, field, wire, 0)?,
        }
    }
    Some((key_value?, value))
}

/// The tags of a record body that `parse` accepted.
pub(crate) fn tags(mut buf: &[u8]) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
    std::iter::from_fn(move || {
        while !buf.is_empty() {
            let (field, wire) = key(&mut buf)?;
            if (field, wire) == (4, LENGTH_DELIMITED) {
                return tag(length_delimited(&mut buf)?);
            }
            skip(&mut buf, field, wire, 0)?;
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use proptest::prelude::*;
    use prost::Message as _;

    use super::*;
    use crate::proto::{AggregatedRecord, ProtoTag, Record};

    /// What prost makes of the bytes, with the proto2 `required` rule applied.
    fn with_prost(bytes: &[u8]) -> Option<AggregatedRecord> {
        let message = AggregatedRecord::decode(Bytes::copy_from_slice(bytes)).ok()?;
        let complete = message.records.iter().all(|r| {
            r.partition_key_index.is_some()
                && r.data.is_some()
                && r.tags.iter().all(|t| t.key.is_some())
        });
        complete.then_some(message)
    }

    fn same(bytes: &[u8]) {
        let ours = parse(bytes);
        let theirs = with_prost(bytes);
        match (ours, theirs) {
            (None, None) => {}
            (Some(ours), Some(theirs)) => {
                assert_eq!(
                    ours.keys,
                    theirs
                        .partition_key_table
                        .iter()
                        .map(|k| &k[..])
                        .collect::<Vec<_>>()
                );
                assert_eq!(
                    ours.explicit_keys,
                    theirs
                        .explicit_hash_key_table
                        .iter()
                        .map(|k| &k[..])
                        .collect::<Vec<_>>()
                );
                assert_eq!(ours.records.len(), theirs.records.len());
                for (o, t) in ours.records.iter().zip(&theirs.records) {
                    assert_eq!(Some(o.key_index), t.partition_key_index);
                    assert_eq!(o.explicit_index, t.explicit_hash_key_index);
                    assert_eq!(Some(o.data), t.data.as_deref());
                    let tags: Vec<_> = tags(o.body).collect();
                    let expected: Vec<_> = t
                        .tags
                        .iter()
                        .map(|tag| (tag.key.as_deref().unwrap_or_default(), tag.value.as_deref()))
                        .collect();
                    assert_eq!(tags, expected);
                    assert_eq!(o.has_tags, !t.tags.is_empty());
                }
            }
            (ours, theirs) => panic!(
                "disagree on {}: ours {}, prost {}",
                hex::encode(bytes),
                ours.is_some(),
                theirs.is_some()
            ),
        }
    }

    fn message() -> impl Strategy<Value = AggregatedRecord> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..12).prop_map(Bytes::from);
        let tag = (proptest::option::of(bytes()), proptest::option::of(bytes()))
            .prop_map(|(key, value)| ProtoTag { key, value });
        let record = (
            proptest::option::weighted(0.95, 0u64..5),
            proptest::option::of(0u64..5),
            proptest::option::weighted(0.95, bytes()),
            proptest::collection::vec(tag, 0..2),
        )
            .prop_map(
                |(partition_key_index, explicit_hash_key_index, data, tags)| Record {
                    partition_key_index,
                    explicit_hash_key_index,
                    data,
                    tags,
                },
            );
        (
            proptest::collection::vec(bytes(), 0..4),
            proptest::collection::vec(bytes(), 0..3),
            proptest::collection::vec(record, 0..6),
        )
            .prop_map(|(partition_key_table, explicit_hash_key_table, records)| {
                AggregatedRecord {
                    partition_key_table,
                    explicit_hash_key_table,
                    records,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn agrees_with_prost_on_messages(m in message(), cut in any::<prop::sample::Index>(), flip in any::<(prop::sample::Index, u8)>()) {
            let bytes = m.encode_to_vec();
            same(&bytes);
            same(&bytes[..cut.index(bytes.len() + 1)]);
            if !bytes.is_empty() {
                let mut flipped = bytes.clone();
                flipped[flip.0.index(bytes.len())] ^= flip.1;
                same(&flipped);
            }
        }

        #[test]
        fn agrees_with_prost_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            same(&bytes);
        }
    }

    #[test]
    fn groups_and_unknown_fields_are_skipped() {
        // Field 9 varint, field 9 group containing field 1 varint, fixed32 and fixed64 fields.
        same(&hex::decode("48014b08014c5d00000000590000000000000000").unwrap());
        same(&hex::decode("48014b08014c5d000000005900000000000000000a0161").unwrap());
        // An end group that does not match its start.
        same(&hex::decode("4b54").unwrap());
        // Deeply nested groups.
        let deep = "4b".repeat(150) + &"4c".repeat(150);
        same(&hex::decode(deep).unwrap());
    }
}
