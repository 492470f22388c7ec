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
use prost::Message as _;

use crate::error::{Error, ErrorKind};
use crate::proto::{AggregatedRecord, ProtoTag};
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

    /// Deaggregates one Kinesis record.
    ///
    /// # Errors
    ///
    /// A well-formed aggregate that cannot be delivered: it holds no user records
    /// (`EmptyAggregate`), a table index is out of range, or an explicit hash key is not a
    /// 128-bit decimal. The error carries the Kinesis record ([`Error::into_record`]).
    pub fn deaggregate(&self, record: KinesisRecord) -> Result<Deaggregated, Error> {
        let (message, reason) = self.parse(&record.data);
        let Some(message) = message else {
            return Ok(Deaggregated {
                records: vec![plain(record)],
                plain: Some(reason),
                filtered: 0,
            });
        };
        match self.unpack(message, &record) {
            Ok((records, filtered)) => Ok(Deaggregated {
                records,
                plain: None,
                filtered,
            }),
            Err(error) => Err(error.with_record(record)),
        }
    }

    /// The protobuf of an aggregate, or why the data is not one.
    fn parse(&self, data: &Bytes) -> (Option<AggregatedRecord>, PlainReason) {
        // The KCL wants more than the digest after the magic: 20 bytes is never an aggregate.
        if data.len() <= MAGIC.len() + DIGEST_LEN || data[..MAGIC.len()] != MAGIC {
            return (None, PlainReason::NotAggregated);
        }
        let end = data.len() - DIGEST_LEN;
        let body = data.slice(MAGIC.len()..end);
        if self.verify_digest && Md5::digest(&body)[..] != data[end..] {
            return (None, PlainReason::DigestMismatch);
        }
        match AggregatedRecord::decode(body) {
            Ok(message) if is_complete(&message) => (Some(message), PlainReason::NotAggregated),
            _ => (None, PlainReason::InvalidProtobuf),
        }
    }

    fn unpack(
        &self,
        message: AggregatedRecord,
        outer: &KinesisRecord,
    ) -> Result<(Vec<UserRecord>, usize), Error> {
        if message.records.is_empty() {
            return Err(Error::new(
                ErrorKind::EmptyAggregate,
                format!(
                    "{} partition keys, {} explicit hash keys, no records",
                    message.partition_key_table.len(),
                    message.explicit_hash_key_table.len()
                ),
            ));
        }
        let keys = &message.partition_key_table;
        let explicit = parse_explicit_hash_keys(&message.explicit_hash_key_table)?;
        // Check every index before emitting anything.
        let mut resolved = Vec::with_capacity(message.records.len());
        for (i, r) in message.records.iter().enumerate() {
            let pk = index(r.partition_key_index.unwrap_or(0), keys.len()).ok_or_else(|| {
                Error::new(
                    ErrorKind::PartitionKeyIndexOutOfRange,
                    format!(
                        "user record {i} has index {:?}, the table has {} keys",
                        r.partition_key_index,
                        keys.len()
                    ),
                )
            })?;
            let ehk = match r.explicit_hash_key_index {
                None => None,
                Some(at) => Some(index(at, explicit.len()).ok_or_else(|| {
                    Error::new(
                        ErrorKind::ExplicitHashKeyIndexOutOfRange,
                        format!(
                            "user record {i} has index {at}, the table has {} keys",
                            explicit.len()
                        ),
                    )
                })?),
            };
            resolved.push((pk, ehk));
        }
        let keep = self.keep_mask(&resolved, keys, &explicit);
        let filtered = keep.iter().filter(|k| !**k).count();
        let mut out = Vec::with_capacity(resolved.len() - filtered);
        for (i, (r, (pk, ehk))) in message.records.into_iter().zip(resolved).enumerate() {
            if !keep[i] {
                continue;
            }
            out.push(UserRecord {
                data: r.data.unwrap_or_default(),
                partition_key: keys[pk].clone(),
                explicit_hash_key: ehk.map(|e| explicit[e]),
                sequence_number: outer.sequence_number.clone(),
                sub_sequence_number: i as u64,
                aggregated: true,
                approximate_arrival_timestamp: outer.approximate_arrival_timestamp,
                tags: r
                    .tags
                    .into_iter()
                    .map(|ProtoTag { key, value }| Tag {
                        key: key.unwrap_or_default(),
                        value,
                    })
                    .collect(),
            });
        }
        Ok((out, filtered))
    }

    /// Which user records to keep under the hash range filter.
    fn keep_mask(
        &self,
        resolved: &[(usize, Option<usize>)],
        keys: &[Bytes],
        explicit: &[u128],
    ) -> Vec<bool> {
        let Some(range) = &self.hash_range else {
            return vec![true; resolved.len()];
        };
        // One MD5 per distinct partition key, not per user record.
        let mut key_hashes: Vec<Option<u128>> = vec![None; keys.len()];
        let mut keep: Vec<bool> = resolved
            .iter()
            .map(|&(pk, ehk)| {
                let hash = match ehk {
                    Some(e) => explicit[e],
                    None => *key_hashes[pk].get_or_insert_with(|| hash_key_of(&keys[pk])),
                };
                range.contains(&hash)
            })
            .collect();
        if self.filter == HashRangeFilter::WholeAggregate && keep.contains(&false) {
            keep.fill(false);
        }
        keep
    }
}

/// Proto2 `required` members: a message without them does not parse (the KCL's behaviour).
fn is_complete(message: &AggregatedRecord) -> bool {
    message.records.iter().all(|r| {
        r.partition_key_index.is_some()
            && r.data.is_some()
            && r.tags.iter().all(|t| t.key.is_some())
    })
}

fn index(value: u64, len: usize) -> Option<usize> {
    usize::try_from(value).ok().filter(|&i| i < len)
}

fn parse_explicit_hash_keys(table: &[Bytes]) -> Result<Vec<u128>, Error> {
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

fn plain(record: KinesisRecord) -> UserRecord {
    UserRecord {
        data: record.data,
        partition_key: record.partition_key,
        explicit_hash_key: None,
        sequence_number: record.sequence_number,
        sub_sequence_number: 0,
        aggregated: false,
        approximate_arrival_timestamp: record.approximate_arrival_timestamp,
        tags: Vec::new(),
    }
}
