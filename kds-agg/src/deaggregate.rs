//! Deaggregation: a Kinesis record in, the user records it carries out.
//!
//! Classification follows the KCL exactly: a record shorter than 21 bytes, without the magic, with
//! an MD5 that does not match, or whose protobuf does not parse (including a missing proto2
//! `required` member) is a plain record and is passed through whole. A well-formed aggregate is
//! then checked completely (every table index, every explicit hash key) before any user record
//! is emitted, so an aggregate is delivered whole or reported, never half.

use std::borrow::Cow;
use std::ops::RangeInclusive;
use std::sync::Arc;

use bytes::Bytes;
use md5::{Digest, Md5};

use crate::error::{Error, ErrorKind};
use crate::wire::{self, Message, WireRecord};
use crate::{DIGEST_LEN, MAGIC, hash_key_of};

/// A record as Kinesis delivers it (GetRecords or SubscribeToShard).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KinesisRecord {
    /// The record's data.
    pub data: Bytes,
    /// The record's partition key (`"a"` for KPL aggregates).
    pub partition_key: Bytes,
    /// The record's sequence number; shared by every user record of an aggregate.
    pub sequence_number: Arc<str>,
    /// When Kinesis accepted the record, in milliseconds since the epoch.
    pub approximate_arrival_timestamp: Option<i64>,
}

impl KinesisRecord {
    /// A record without an arrival timestamp.
    pub fn new(
        data: impl Into<Bytes>,
        partition_key: impl Into<String>,
        sequence_number: impl Into<Arc<str>>,
    ) -> Self {
        Self {
            data: data.into(),
            partition_key: Bytes::from(partition_key.into()),
            sequence_number: sequence_number.into(),
            approximate_arrival_timestamp: None,
        }
    }
}

/// A user record: one record as the producer wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    /// The data, a slice of the Kinesis record's data (no copy).
    pub data: Bytes,
    /// The partition key as bytes: UTF-8 from every known producer, but not checked
    /// (see [`UserRecord::partition_key_lossy`]).
    pub partition_key: Bytes,
    /// The explicit hash key the producer gave, if any.
    pub explicit_hash_key: Option<u128>,
    /// The Kinesis record's sequence number.
    pub sequence_number: Arc<str>,
    /// The user record's position in its aggregate (0 for plain records). With the
    /// sequence number it identifies the user record, also for checkpoints; it stays the
    /// position in the aggregate when other user records were filtered out.
    pub sub_sequence_number: u64,
    /// Whether the record came out of an aggregate.
    pub aggregated: bool,
    /// The Kinesis record's arrival time, in milliseconds since the epoch.
    pub approximate_arrival_timestamp: Option<i64>,
    /// Tags attached to the user record (no known producer writes any).
    pub tags: Vec<Tag>,
}

impl UserRecord {
    /// The partition key as text, with invalid UTF-8 replaced.
    pub fn partition_key_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.partition_key)
    }

    /// The hash key that places the record on a shard: the explicit hash key, else the MD5 of
    /// the partition key read as a big-endian `u128`.
    pub fn effective_hash_key(&self) -> u128 {
        self.explicit_hash_key
            .unwrap_or_else(|| hash_key_of(&self.partition_key))
    }
}

/// A tag of a user record (`message Tag` of the format).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    /// The key, as bytes.
    pub key: Bytes,
    /// The value, if any.
    pub value: Option<Bytes>,
}

/// A user record borrowed from its Kinesis record: what [`Deaggregator::visit`] hands out.
///
/// Nothing is copied or reference-counted to make one; [`UserRecordRef::to_user_record`] makes a
/// [`UserRecord`] that shares the Kinesis record's buffers.
#[derive(Clone, Copy, Debug)]
pub struct UserRecordRef<'a> {
    /// The data.
    pub data: &'a [u8],
    /// The partition key as bytes.
    pub partition_key: &'a [u8],
    /// The explicit hash key the producer gave, if any.
    pub explicit_hash_key: Option<u128>,
    /// The position in the aggregate (0 for plain records).
    pub sub_sequence_number: u64,
    /// Whether the record came out of an aggregate.
    pub aggregated: bool,
    /// The Kinesis record it came from (sequence number, arrival time).
    pub record: &'a KinesisRecord,
    /// The user record's protobuf body, for its tags.
    body: &'a [u8],
}

impl<'a> UserRecordRef<'a> {
    /// The partition key as text, with invalid UTF-8 replaced.
    pub fn partition_key_lossy(&self) -> Cow<'a, str> {
        String::from_utf8_lossy(self.partition_key)
    }

    /// The hash key that places the record: the explicit hash key, else the partition key's MD5
    /// read as a big-endian `u128`.
    pub fn effective_hash_key(&self) -> u128 {
        self.explicit_hash_key
            .unwrap_or_else(|| hash_key_of(self.partition_key))
    }

    /// The tags (key, value) attached to the user record.
    pub fn tags(&self) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> {
        wire::tags(self.body)
    }

    /// An owned [`UserRecord`] sharing the Kinesis record's buffers (no copy).
    pub fn to_user_record(&self) -> UserRecord {
        let record = self.record;
        let (data, partition_key) = if self.aggregated {
            (
                record.data.slice_ref(self.data),
                record.data.slice_ref(self.partition_key),
            )
        } else {
            (record.data.clone(), record.partition_key.clone())
        };
        UserRecord {
            data,
            partition_key,
            explicit_hash_key: self.explicit_hash_key,
            sequence_number: record.sequence_number.clone(),
            sub_sequence_number: self.sub_sequence_number,
            aggregated: self.aggregated,
            approximate_arrival_timestamp: record.approximate_arrival_timestamp,
            tags: self
                .tags()
                .map(|(key, value)| Tag {
                    key: record.data.slice_ref(key),
                    value: value.map(|v| record.data.slice_ref(v)),
                })
                .collect(),
        }
    }
}

/// What [`Deaggregator::visit`] did with a Kinesis record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Visited {
    /// User records handed to the visitor.
    pub delivered: usize,
    /// `None` for an aggregate, else why the record was passed through whole.
    pub plain: Option<PlainReason>,
    /// User records dropped by the hash range filter.
    pub filtered: usize,
}

/// Which user records of an aggregate to keep when the shard's hash key range is known.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HashRangeFilter {
    /// Keep the user records whose effective hash key lies in the shard's range; count the rest.
    /// After resharding, an aggregate routed with a stale shard map can hold records of two
    /// shards: this keeps exactly the ones that belong here.
    #[default]
    PerRecord,
    /// Drop the whole aggregate when any user record lies outside the range, as the KCL does.
    /// The KPL (since 0.15.11) retries only the out-of-range records of such an aggregate, so
    /// this mode can lose the in-range ones; it exists for output identical to the KCL's.
    WholeAggregate,
}

/// Why a record was passed through as a plain record.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PlainReason {
    /// Too short, or no magic: an ordinary record.
    NotAggregated,
    /// It starts with the magic but its MD5 does not match.
    DigestMismatch,
    /// It starts with the magic and its MD5 matches, but the protobuf does not parse (or lacks
    /// a required member).
    InvalidProtobuf,
}

/// What [`Deaggregator::deaggregate`] made of a Kinesis record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deaggregated {
    /// The user records to deliver, in order.
    pub records: Vec<UserRecord>,
    /// `None` for an aggregate, else why the record was passed through whole.
    pub plain: Option<PlainReason>,
    /// User records dropped by the hash range filter.
    pub filtered: usize,
}

/// Turns Kinesis records into user records.
///
/// One deaggregator serves one shard: give it the shard's hash key range to filter out user
/// records that belong to another shard.
///
/// # Examples
///
/// ```
/// use kds_agg::{Deaggregator, KinesisRecord};
///
/// // The golden vector: three user records, keys pk-a, pk-b (explicit hash key 42) and pk-a.
/// let data = hex::decode(
///     "f3899ac20a04706b2d610a04706b2d62120234321a0908001a0568656c6c6f1a0b080110001a05776f726c64\
///      1a0508001a0121cc58be436761fa6b8500be9a596a819a",
/// )?;
/// let out = Deaggregator::new().deaggregate(KinesisRecord::new(data, "a", "4959"))?;
/// assert_eq!(out.records.len(), 3);
/// assert_eq!(&out.records[1].data[..], b"world");
/// assert_eq!(out.records[1].explicit_hash_key, Some(42));
/// assert_eq!(out.records[2].sub_sequence_number, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Deaggregator {
    hash_range: Option<RangeInclusive<u128>>,
    filter: HashRangeFilter,
    verify_digest: bool,
}

impl Default for Deaggregator {
    fn default() -> Self {
        Self::new()
    }
}

impl Deaggregator {
    /// A deaggregator that verifies digests and does not filter by hash key.
    pub fn new() -> Self {
        Self {
            hash_range: None,
            filter: HashRangeFilter::default(),
            verify_digest: true,
        }
    }

    /// Filters user records against the shard's hash key range.
    #[must_use]
    pub fn with_hash_range(mut self, range: RangeInclusive<u128>, filter: HashRangeFilter) -> Self {
        self.hash_range = Some(range);
        self.filter = filter;
        self
    }

    /// Skips the MD5 check, for trusted input. A record with the magic is then taken as an
    /// aggregate whenever its protobuf parses.
    #[must_use]
    pub fn trust_digests(mut self) -> Self {
        self.verify_digest = false;
        self
    }

    /// Deaggregates one Kinesis record into owned user records.
    ///
    /// # Errors
    ///
    /// A well-formed aggregate that cannot be delivered: it holds no user records
    /// (`EmptyAggregate`), a table index is out of range, or an explicit hash key is not a
    /// 128-bit decimal. The error carries the Kinesis record ([`Error::into_record`]).
    pub fn deaggregate(&self, record: KinesisRecord) -> Result<Deaggregated, Error> {
        let mut records = Vec::new();
        let visited = self.visit(&record, |r| records.push(r.to_user_record()))?;
        Ok(Deaggregated {
            records,
            plain: visited.plain,
            filtered: visited.filtered,
        })
    }

    /// Hands each user record of `record` to `visit`, borrowed: the fastest way through, for
    /// callers that process records in place. Every check runs before the first call, so
    /// `visit` sees a whole aggregate or nothing.
    ///
    /// # Errors
    ///
    /// As [`Deaggregator::deaggregate`]; `visit` has not been called then.
    pub fn visit<'a>(
        &self,
        record: &'a KinesisRecord,
        mut visit: impl FnMut(UserRecordRef<'a>),
    ) -> Result<Visited, Error> {
        let (message, reason) = self.parse(&record.data);
        let Some(message) = message else {
            visit(UserRecordRef {
                data: &record.data,
                partition_key: &record.partition_key,
                explicit_hash_key: None,
                sub_sequence_number: 0,
                aggregated: false,
                record,
                body: &[],
            });
            return Ok(Visited {
                delivered: 1,
                plain: Some(reason),
                filtered: 0,
            });
        };
        let explicit = self
            .check(&message)
            .map_err(|error| error.with_record(record.clone()))?;
        let keep = self.keep_mask(&message, &explicit);
        let mut delivered = 0;
        for (i, r) in message.records.iter().enumerate() {
            if keep.as_ref().is_some_and(|keep| !keep[i]) {
                continue;
            }
            delivered += 1;
            visit(UserRecordRef {
                data: r.data,
                partition_key: message.keys[r.key_index as usize],
                explicit_hash_key: r.explicit_index.map(|e| explicit[e as usize]),
                sub_sequence_number: i as u64,
                aggregated: true,
                record,
                body: if r.has_tags { r.body } else { &[] },
            });
        }
        Ok(Visited {
            delivered,
            plain: None,
            filtered: message.records.len() - delivered,
        })
    }

    /// The protobuf of an aggregate, or why the data is not one.
    fn parse<'a>(&self, data: &'a [u8]) -> (Option<Message<'a>>, PlainReason) {
        // The KCL wants more than the digest after the magic: 20 bytes is never an aggregate.
        if data.len() <= MAGIC.len() + DIGEST_LEN || data[..MAGIC.len()] != MAGIC {
            return (None, PlainReason::NotAggregated);
        }
        let end = data.len() - DIGEST_LEN;
        let body = &data[MAGIC.len()..end];
        if self.verify_digest && Md5::digest(body)[..] != data[end..] {
            return (None, PlainReason::DigestMismatch);
        }
        match wire::parse(body) {
            Some(message) => (Some(message), PlainReason::NotAggregated),
            None => (None, PlainReason::InvalidProtobuf),
        }
    }

    /// Checks every index and explicit hash key; returns the explicit hash keys parsed.
    fn check(&self, message: &Message<'_>) -> Result<Vec<u128>, Error> {
        if message.records.is_empty() {
            return Err(Error::new(
                ErrorKind::EmptyAggregate,
                format!(
                    "{} partition keys, {} explicit hash keys, no records",
                    message.keys.len(),
                    message.explicit_keys.len()
                ),
            ));
        }
        let explicit = parse_explicit_hash_keys(&message.explicit_keys)?;
        for (i, r) in message.records.iter().enumerate() {
            if index(r.key_index, message.keys.len()).is_none() {
                return Err(Error::new(
                    ErrorKind::PartitionKeyIndexOutOfRange,
                    format!(
                        "user record {i} has index {}, the table has {} keys",
                        r.key_index,
                        message.keys.len()
                    ),
                ));
            }
            if let Some(at) = r.explicit_index
                && index(at, explicit.len()).is_none()
            {
                return Err(Error::new(
                    ErrorKind::ExplicitHashKeyIndexOutOfRange,
                    format!(
                        "user record {i} has index {at}, the table has {} keys",
                        explicit.len()
                    ),
                ));
            }
        }
        Ok(explicit)
    }

    /// Which user records to keep under the hash range filter (`None`: all of them).
    fn keep_mask(&self, message: &Message<'_>, explicit: &[u128]) -> Option<Vec<bool>> {
        let range = self.hash_range.as_ref()?;
        // One MD5 per distinct partition key, not per user record.
        let mut key_hashes: Vec<Option<u128>> = vec![None; message.keys.len()];
        let mut keep: Vec<bool> = message
            .records
            .iter()
            .map(|r: &WireRecord<'_>| {
                let hash = match r.explicit_index {
                    Some(e) => explicit[e as usize],
                    None => *key_hashes[r.key_index as usize]
                        .get_or_insert_with(|| hash_key_of(message.keys[r.key_index as usize])),
                };
                range.contains(&hash)
            })
            .collect();
        if self.filter == HashRangeFilter::WholeAggregate && keep.contains(&false) {
            keep.fill(false);
        }
        Some(keep)
    }
}

fn index(value: u64, len: usize) -> Option<usize> {
    usize::try_from(value).ok().filter(|&i| i < len)
}

fn parse_explicit_hash_keys(table: &[&[u8]]) -> Result<Vec<u128>, Error> {
    table
        .iter()
        .enumerate()
        .map(|(i, key)| {
            std::str::from_utf8(key)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u128>().ok())
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidExplicitHashKey,
                        format!(
                            "table entry {i}, {:?}, is not a decimal in 0..=2^128-1",
                            String::from_utf8_lossy(key)
                        ),
                    )
                })
        })
        .collect()
}
