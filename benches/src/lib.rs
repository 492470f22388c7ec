//! Fixtures for the kds benchmarks: deterministic Kinesis payloads of the sizes the targets in
//! `BENCHMARKS.md` name, built with kds-proto's own encoders.

#![forbid(unsafe_code)]

pub mod anchor;
pub mod paced;

use bytes::Bytes;
use kds_proto::eventstream::SubscribeToShardItem;
use kds_proto::model::{
    ChildShard, GetRecordsOutput, HashKeyRange, PutRecordsInput, PutRecordsRequestEntry, Record,
    SubscribeToShardEvent,
};
use kds_proto::types::{
    HashKey, PartitionKey, SequenceNumber, ShardId, ShardIterator, StreamName, Timestamp,
};
use kds_proto::{Protocol, Shape};

/// Deterministic pseudo-random bytes (xorshift), so every run measures the same input.
pub fn data(len: usize, seed: u64) -> Bytes {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// `count` records of `size` bytes with realistic 56-digit sequence numbers.
pub fn records(count: usize, size: usize) -> Vec<Record> {
    records_from(0, count, size)
}

/// Records `first..first + count` of a shard: `size` bytes each, sequence numbers growing.
pub fn records_from(first: usize, count: usize, size: usize) -> Vec<Record> {
    (first..first + count)
        .map(|i| {
            let mut record = Record::new(
                SequenceNumber::new(format!(
                    "4959033827149025660855969253836157109592157598913{i:07}"
                ))
                .expect("valid"),
                data(size, i as u64 + 1),
                PartitionKey::new(format!("partition-key-{i}")).expect("valid"),
            );
            record.approximate_arrival_timestamp =
                Some(Timestamp::from_millis(1_718_000_000_123 + i as i64));
            record
        })
        .collect()
}

/// A GetRecords response body of `count` records of `size` bytes.
pub fn get_records_body(count: usize, size: usize, protocol: Protocol) -> Bytes {
    let mut output = GetRecordsOutput::new(records(count, size));
    output.next_shard_iterator =
        Some(ShardIterator::new("AAAAAAAAAAHb".repeat(20)).expect("valid"));
    output.millis_behind_latest = Some(0);
    output.encode_body(protocol).into()
}

/// A PutRecords request of `count` records of `size` bytes.
pub fn put_records_request(count: usize, size: usize) -> PutRecordsInput {
    let entries = (0..count)
        .map(|i| {
            PutRecordsRequestEntry::new(
                data(size, i as u64 + 7),
                PartitionKey::new(format!("partition-key-{i}")).expect("valid"),
            )
        })
        .collect();
    let mut request = PutRecordsInput::new(entries);
    request.stream_name = Some(StreamName::new("bench-stream").expect("valid"));
    request
}

/// A SubscribeToShard response body: `events` event-stream messages, each a
/// SubscribeToShardEvent of `per_event` records of `size` bytes, payloads in `protocol`.
pub fn subscribe_body(events: usize, per_event: usize, size: usize, protocol: Protocol) -> Bytes {
    let mut out = Vec::new();
    for _ in 0..events {
        let mut event = SubscribeToShardEvent::new(records(per_event, size), 0);
        event.continuation_sequence_number =
            event.records.last().map(|r| r.sequence_number.clone());
        encode_event(&event, protocol, &mut out);
    }
    out.into()
}

/// The whole subscription of a closed shard: `events` events of `per_event` records of
/// `size` bytes, sequence numbers growing across events, the last event without a
/// continuation and naming the shard's child, as the service ends a shard that was resharded.
/// (A last event naming no child is a broken subscription to a reader, which subscribes again.)
pub fn closed_shard_subscription(
    events: usize,
    per_event: usize,
    size: usize,
    protocol: Protocol,
) -> Bytes {
    let mut out = Vec::new();
    for e in 0..events {
        let mut event = SubscribeToShardEvent::new(records_from(e * per_event, per_event, size), 0);
        if e + 1 < events {
            event.continuation_sequence_number =
                event.records.last().map(|r| r.sequence_number.clone());
        } else {
            event.child_shards = Some(vec![ChildShard::new(
                ShardId::new("shardId-000000001000").expect("valid"),
                vec![ShardId::new("shardId-000000000000").expect("valid")],
                HashKeyRange::new(HashKey::MIN, HashKey::MAX),
            )]);
        }
        encode_event(&event, protocol, &mut out);
    }
    out.into()
}

fn encode_event(event: &SubscribeToShardEvent, protocol: Protocol, out: &mut Vec<u8>) {
    SubscribeToShardItem::Event(event.clone())
        .to_message(protocol)
        .encode(out)
        .expect("small frames encode");
}
