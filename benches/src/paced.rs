//! The records of the paced endpoint (`paced_kinesis`): every shard served at its read limit
//! with 1 KiB records whose sequence numbers grow without end, so readers that drop repeats
//! deliver every one.
//!
//! Record `n` has sequence number `1` followed by `n` in 55 digits, partition key
//! `partition-key-` followed by `n` in 12 digits, and the data of its place in its event or page.
//! All numbers have fixed widths, so an encoded event or page differs from the first one only in
//! those digits: [`Template`] patches them into a copy (and fixes the frame's checksum) instead
//! of encoding every record again, which keeps the endpoint ahead of the reader it feeds.

use bytes::Bytes;
use kds_proto::eventstream::SubscribeToShardItem;
use kds_proto::model::{GetRecordsOutput, Record, SubscribeToShardEvent};
use kds_proto::types::{PartitionKey, SequenceNumber, ShardIterator, Timestamp};
use kds_proto::{Protocol, Shape};

use crate::data;

/// Bytes of record data.
pub const RECORD: usize = 1024;
/// Records per SubscribeToShard event, one event every 50 ms: 2 MiB/s.
pub const PER_EVENT: u64 = 100;
/// Records per GetRecords page, five pages a second: 2 MiB/s.
pub const PER_PAGE: u64 = 400;

/// The sequence number of record `n`: 56 digits, as the service's are.
pub fn sequence(n: u64) -> SequenceNumber {
    SequenceNumber::new(sequence_text(n)).expect("valid")
}

fn sequence_text(n: u64) -> String {
    format!("1{n:055}")
}

fn key_text(n: u64) -> String {
    format!("partition-key-{n:012}")
}

/// The record number of one of [`sequence`]'s numbers.
pub fn number(sequence: &SequenceNumber) -> Option<u64> {
    sequence.as_str().get(1..)?.parse().ok()
}

/// Records `first..first + count`; the data of the `i`-th is `data(RECORD, i % 16 + 1)`.
pub fn records(first: u64, count: u64) -> Vec<Record> {
    let payloads: Vec<Bytes> = (0..16).map(|seed| data(RECORD, seed + 1)).collect();
    (0..count)
        .map(|i| {
            let n = first + i;
            let mut record = Record::new(
                sequence(n),
                payloads[i as usize % payloads.len()].clone(),
                PartitionKey::new(key_text(n)).expect("valid"),
            );
            record.approximate_arrival_timestamp = Some(Timestamp::from_millis(
                1_718_000_000_000 + i64::try_from(i).expect("small"),
            ));
            record
        })
        .collect()
}

/// The event-stream message of the event of records `first..first + PER_EVENT`.
pub fn event(first: u64, protocol: Protocol) -> Bytes {
    let mut event = SubscribeToShardEvent::new(records(first, PER_EVENT), 0);
    event.continuation_sequence_number = Some(sequence(first + PER_EVENT - 1));
    SubscribeToShardItem::Event(event)
        .to_message(protocol)
        .to_bytes()
        .expect("encodes")
}

/// The GetRecords page of records `first..first + PER_PAGE` of `shard`, its next iterator
/// `{shard}/{first + PER_PAGE}` with the number in 20 digits.
pub fn page(shard: &str, first: u64, protocol: Protocol) -> Bytes {
    let mut output = GetRecordsOutput::new(records(first, PER_PAGE));
    output.next_shard_iterator = Some(iterator(shard, first + PER_PAGE));
    output.millis_behind_latest = Some(0);
    output.encode_body(protocol).into()
}

/// The iterator that reads `shard` from record `next` on.
pub fn iterator(shard: &str, next: u64) -> ShardIterator {
    ShardIterator::new(format!("{shard}/{next:020}")).expect("valid")
}

/// What a number in a template stands for.
#[derive(Clone, Copy)]
enum Field {
    /// The sequence number digits of record `first + i`.
    Sequence(u64),
    /// The partition key digits of record `first + i`.
    Key(u64),
    /// The next iterator's record number, `first + by`.
    Next(u64),
    /// The shard number in the next iterator.
    Shard,
}

/// An encoded event or page, and where its numbers are.
pub struct Template {
    bytes: Vec<u8>,
    /// Where each number's digits are: offset, width, meaning.
    fields: Vec<(usize, usize, Field)>,
    /// An event-stream frame: its checksum is computed again.
    framed: bool,
}

/// The shard pages are rendered for, replaced by the one asked for.
const TEMPLATE_SHARD: &str = "shardId-000000000000";

impl Template {
    /// The template of [`event`].
    pub fn event(protocol: Protocol) -> Self {
        let mut texts = Vec::new();
        for i in 0..PER_EVENT {
            texts.push((sequence_text(i), 1, Field::Sequence(i)));
            texts.push((key_text(i), 14, Field::Key(i)));
        }
        Self::new(event(0, protocol).to_vec(), &texts, true)
    }

    /// The template of [`page`] (for shards named `shardId-` and 12 digits).
    pub fn page(protocol: Protocol) -> Self {
        let mut texts = Vec::new();
        for i in 0..PER_PAGE {
            texts.push((sequence_text(i), 1, Field::Sequence(i)));
            texts.push((key_text(i), 14, Field::Key(i)));
        }
        let next = format!("{TEMPLATE_SHARD}/{PER_PAGE:020}");
        texts.push((next.clone(), 8, Field::Shard));
        texts.push((next, TEMPLATE_SHARD.len() + 1, Field::Next(PER_PAGE)));
        Self::new(page(TEMPLATE_SHARD, 0, protocol).to_vec(), &texts, false)
    }

    /// Finds every place of each text in `bytes`; its number's digits start `skip` bytes in.
    fn new(bytes: Vec<u8>, texts: &[(String, usize, Field)], framed: bool) -> Self {
        let mut fields = Vec::new();
        for (text, skip, field) in texts {
            let width = match field {
                Field::Shard => 12,
                _ => text.len() - skip,
            };
            let places: Vec<usize> = memchr::memmem::find_iter(&bytes, text.as_bytes()).collect();
            assert!(!places.is_empty(), "`{text}` is in the template");
            fields.extend(places.into_iter().map(|at| (at + skip, width, *field)));
        }
        Self {
            bytes,
            fields,
            framed,
        }
    }

    /// The event or page of records from `first` on (of shard `shard`, for pages).
    pub fn render(&self, first: u64, shard: u64) -> Bytes {
        let mut out = self.bytes.clone();
        for &(at, width, field) in &self.fields {
            let mut digits = match field {
                Field::Sequence(i) | Field::Key(i) => first + i,
                Field::Next(by) => first + by,
                Field::Shard => shard,
            };
            for place in (at..at + width).rev() {
                out[place] = b'0' + (digits % 10) as u8;
                digits /= 10;
            }
        }
        if self.framed {
            let end = out.len() - 4;
            let crc = crc32fast::hash(&out[..end]);
            out[end..].copy_from_slice(&crc.to_be_bytes());
        }
        out.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_what_the_encoders_write() {
        for protocol in [Protocol::Json, Protocol::Cbor] {
            let events = Template::event(protocol);
            let pages = Template::page(protocol);
            for first in [0, 100, 12_345_600, 987_654_321_000] {
                assert_eq!(
                    events.render(first, 0),
                    event(first, protocol),
                    "{protocol:?}"
                );
                assert_eq!(
                    pages.render(first, 7),
                    page("shardId-000000000007", first, protocol),
                    "{protocol:?}"
                );
            }
        }
    }
}
