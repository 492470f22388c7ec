//! Aggregation: user records in, KPL aggregates out, never over the size limit.
//!
//! Records are encoded as they are added, into three buffers (the partition key table, the
//! explicit hash key table and the records), so the size of the aggregate being built is always
//! exact and a flush is three copies and an MD5. Records are borrowed: the aggregator copies what
//! it needs and never takes ownership. Time is an argument: the caller passes `now` and asks for
//! expired aggregates; nothing here reads a clock.

use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use md5::{Digest, Md5};
use prost::encoding::{decode_varint, encode_varint, encoded_len_varint};

use crate::error::{Error, ErrorKind};
use crate::{DIGEST_LEN, MAGIC, hash_key_of};

/// The KPL's default `AggregationMaxSize`: 51200 bytes.
pub const DEFAULT_MAX_SIZE: usize = 51_200;

/// The largest aggregate any stream accepts: 10 MiB (`MaxRecordSizeInKiB` 10240). Streams accept
/// 1 MiB unless raised, counting the partition key: configure `max_size` from the stream's limit.
pub const MAX_SIZE_LIMIT: usize = 10 * 1024 * 1024;

/// The partition key of every aggregate of two or more user records, as the KPL sends it.
pub const AGGREGATE_PARTITION_KEY: &str = "a";

/// Limits of an [`Aggregator`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AggregatorConfig {
    /// The largest aggregate, in bytes of record data (magic, protobuf and digest), 64 to
    /// 10 MiB. Default 51200, like the KPL.
    pub max_size: usize,
    /// The most user records in one aggregate, at least 1. Default: unlimited.
    pub max_count: usize,
    /// How long the first user record of an aggregate may wait (`record_max_buffered_time`).
    /// Default 100 ms, like the KPL.
    pub max_buffered_time: Duration,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        Self {
            max_size: DEFAULT_MAX_SIZE,
            max_count: usize::MAX,
            max_buffered_time: Duration::from_millis(100),
        }
    }
}

impl AggregatorConfig {
    /// Sets `max_size`.
    #[must_use]
    pub fn with_max_size(mut self, max_size: usize) -> Self {
        self.max_size = max_size;
        self
    }

    /// Sets `max_count`.
    #[must_use]
    pub fn with_max_count(mut self, max_count: usize) -> Self {
        self.max_count = max_count;
        self
    }

    /// Sets `max_buffered_time`.
    #[must_use]
    pub fn with_max_buffered_time(mut self, max_buffered_time: Duration) -> Self {
        self.max_buffered_time = max_buffered_time;
        self
    }

    /// Checks the ranges.
    ///
    /// # Errors
    ///
    /// `InvalidConfig` naming the value and its allowed range.
    pub fn validate(&self) -> Result<(), Error> {
        if !(64..=MAX_SIZE_LIMIT).contains(&self.max_size) {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "max_size is {}, allowed 64..={MAX_SIZE_LIMIT}",
                    self.max_size
                ),
            ));
        }
        if self.max_count == 0 {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "max_count is 0, allowed 1 or more",
            ));
        }
        Ok(())
    }
}

/// A record to aggregate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerRecord {
    /// The partition key (1 to 256 characters for Kinesis).
    pub partition_key: String,
    /// A hash key that places the record directly, instead of the partition key's MD5.
    pub explicit_hash_key: Option<u128>,
    /// The data.
    pub data: Bytes,
}

impl ProducerRecord {
    /// A record placed by its partition key.
    pub fn new(partition_key: impl Into<String>, data: impl Into<Bytes>) -> Self {
        Self {
            partition_key: partition_key.into(),
            explicit_hash_key: None,
            data: data.into(),
        }
    }

    /// Places the record by an explicit hash key.
    #[must_use]
    pub fn with_explicit_hash_key(mut self, hash_key: u128) -> Self {
        self.explicit_hash_key = Some(hash_key);
        self
    }

    /// The hash key that places the record: the explicit one, else the partition key's MD5.
    pub fn hash_key(&self) -> u128 {
        self.explicit_hash_key
            .unwrap_or_else(|| hash_key_of(self.partition_key.as_bytes()))
    }
}

/// A Kinesis record ready to put.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aggregate {
    /// The partition key to send: the user record's own for a single record, `"a"` for an
    /// aggregate.
    pub partition_key: String,
    /// The explicit hash key to send: for an aggregate, the first user record's hash key, so the
    /// aggregate lands where its records belong; for a single record, its own explicit hash key.
    pub explicit_hash_key: Option<u128>,
    /// The record data: a KPL aggregate, or the single user record's data as is.
    pub data: Bytes,
    /// How many user records it carries.
    pub user_records: usize,
}

/// What [`Aggregator::add`] did with a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Added {
    /// The record is buffered.
    Buffered,
    /// An aggregate is ready to put (the record may be in it, or buffered for the next one).
    Ready(Aggregate),
    /// The record alone exceeds `max_size` once framed as an aggregate: put `flushed` (what
    /// was buffered, so that arrival order is kept), then the record by itself.
    TooLarge {
        /// The aggregate of the records buffered before this one, if any.
        flushed: Option<Aggregate>,
    },
}

/// Builds KPL aggregates from user records.
///
/// Call [`Aggregator::add`] for each record and put every [`Aggregate`] it returns; call
/// [`Aggregator::poll_deadline`] when [`Aggregator::deadline`] passes, and
/// [`Aggregator::flush`] at shutdown. An aggregate of one user record is that record as is; two or
/// more are framed with partition key `"a"` and the first record's hash key, as the KPL does. Key
/// tables are deduplicated in first-seen order, so the bytes are the KPL libraries' bytes.
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// use kds_agg::{Added, Aggregator, AggregatorConfig, ProducerRecord};
///
/// let mut aggregator = Aggregator::new(AggregatorConfig::default())?;
/// let now = Instant::now();
/// assert_eq!(aggregator.add(&ProducerRecord::new("pk-a", &b"hello"[..]), now), Added::Buffered);
/// aggregator.add(&ProducerRecord::new("pk-b", &b"world"[..]).with_explicit_hash_key(42), now);
/// aggregator.add(&ProducerRecord::new("pk-a", &b"!"[..]), now);
/// let aggregate = aggregator.flush().expect("three records");
/// assert_eq!(aggregate.partition_key, "a");
/// assert_eq!(aggregate.user_records, 3);
/// assert_eq!(aggregate.data.len(), 67);
/// # Ok::<(), kds_agg::Error>(())
/// ```
pub struct Aggregator {
    config: AggregatorConfig,
    hasher: DefaultHashBuilder,
    /// Encoded `partition_key_table` entries (field 1), in first-seen order.
    key_entries: Vec<u8>,
    /// Per key table entry: the key's hash and where its bytes lie in `key_entries`.
    keys: Vec<(u64, usize, usize)>,
    /// Key table indexes, found by hash and compared against `key_entries`.
    key_indexes: HashTable<u64>,
    /// Encoded `explicit_hash_key_table` entries (field 2).
    explicit_entries: Vec<u8>,
    explicit_keys: Vec<u128>,
    explicit_indexes: HashMap<u128, u64>,
    /// Encoded `records` (field 3).
    record_entries: Vec<u8>,
    count: usize,
    /// The first record, sent as is when it stays alone; its hash key routes the aggregate.
    first: Option<ProducerRecord>,
    started: Option<Instant>,
}

impl std::fmt::Debug for Aggregator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aggregator")
            .field("config", &self.config)
            .field("records", &self.count)
            .field("size", &self.size())
            .finish()
    }
}

/// Bytes of a length-delimited field with a one-byte tag.
fn field_len(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

/// Bytes of the decimal rendering of `value`.
fn decimal_len(value: u128) -> usize {
    value
        .checked_ilog10()
        .map_or(1, |digits| digits as usize + 1)
}

/// Bytes of a `Record` message body.
fn record_body_len(key_index: u64, explicit_index: Option<u64>, data_len: usize) -> usize {
    1 + encoded_len_varint(key_index)
        + explicit_index.map_or(0, |i| 1 + encoded_len_varint(i))
        + field_len(data_len)
}

/// Tag bytes: field 1, 2 and 3 as length-delimited, fields 1 and 2 as varints.
const TAG_KEY_TABLE: u8 = 0x0A;
const TAG_EXPLICIT_TABLE: u8 = 0x12;
const TAG_RECORD: u8 = 0x1A;
const TAG_KEY_INDEX: u8 = 0x08;
const TAG_EXPLICIT_INDEX: u8 = 0x10;
const TAG_DATA: u8 = 0x1A;

/// Where a record goes in the tables: existing entries, or new ones at the end.
struct Placement {
    key_index: u64,
    new_key: bool,
    explicit_index: Option<u64>,
    new_explicit: bool,
    /// Bytes the record adds to the aggregate.
    growth: usize,
}

impl Aggregator {
    /// An empty aggregator.
    ///
    /// # Errors
    ///
    /// `InvalidConfig` when the configuration is out of range.
    pub fn new(config: AggregatorConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self::with_valid_config(config))
    }

    /// An empty aggregator with a configuration already validated.
    pub(crate) fn with_valid_config(config: AggregatorConfig) -> Self {
        Self {
            config,
            hasher: DefaultHashBuilder::default(),
            key_entries: Vec::new(),
            keys: Vec::new(),
            key_indexes: HashTable::new(),
            explicit_entries: Vec::new(),
            explicit_keys: Vec::new(),
            explicit_indexes: HashMap::new(),
            record_entries: Vec::new(),
            count: 0,
            first: None,
            started: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &AggregatorConfig {
        &self.config
    }

    /// User records buffered.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The exact size of the aggregate if flushed now with two or more records (0 when empty).
    pub fn size(&self) -> usize {
        if self.count == 0 {
            0
        } else {
            MAGIC.len()
                + DIGEST_LEN
                + self.key_entries.len()
                + self.explicit_entries.len()
                + self.record_entries.len()
        }
    }

    /// When the buffered records must be sent: the first one's arrival plus
    /// `max_buffered_time`.
    pub fn deadline(&self) -> Option<Instant> {
        self.started.map(|t| t + self.config.max_buffered_time)
    }

    fn place(&self, record: &ProducerRecord, key_hash: u64) -> Placement {
        let key = record.partition_key.as_bytes();
        let found = self.key_indexes.find(key_hash, |&i| {
            let (_, start, len) = self.keys[i as usize];
            &self.key_entries[start..start + len] == key
        });
        let (key_index, new_key) = match found {
            Some(&i) => (i, false),
            None => (self.keys.len() as u64, true),
        };
        let mut growth = if new_key { field_len(key.len()) } else { 0 };
        let (explicit_index, new_explicit) = match record.explicit_hash_key {
            None => (None, false),
            Some(hash) => match self.explicit_indexes.get(&hash) {
                Some(&i) => (Some(i), false),
                None => {
                    growth += field_len(decimal_len(hash));
                    (Some(self.explicit_keys.len() as u64), true)
                }
            },
        };
        growth += field_len(record_body_len(
            key_index,
            explicit_index,
            record.data.len(),
        ));
        Placement {
            key_index,
            new_key,
            explicit_index,
            new_explicit,
            growth,
        }
    }

    /// Adds a record that arrived at `now`. The record is copied, not kept.
    pub fn add(&mut self, record: &ProducerRecord, now: Instant) -> Added {
        // Alone in a fresh aggregate: too large means too large anywhere.
        let alone = MAGIC.len()
            + DIGEST_LEN
            + field_len(record.partition_key.len())
            + record
                .explicit_hash_key
                .map_or(0, |hash| field_len(decimal_len(hash)))
            + field_len(record_body_len(
                0,
                record.explicit_hash_key.map(|_| 0),
                record.data.len(),
            ));
        if alone > self.config.max_size {
            return Added::TooLarge {
                flushed: self.flush(),
            };
        }
        let key_hash = self.hasher.hash_one(record.partition_key.as_str());
        let mut placement = self.place(record, key_hash);
        let mut ready = None;
        if self.count > 0
            && (self.size() + placement.growth > self.config.max_size
                || self.count >= self.config.max_count)
        {
            ready = self.flush();
            placement = self.place(record, key_hash);
        }
        self.insert(record, key_hash, &placement, now);
        if ready.is_none() && self.count >= self.config.max_count {
            ready = self.flush();
        }
        ready.map_or(Added::Buffered, Added::Ready)
    }

    fn insert(
        &mut self,
        record: &ProducerRecord,
        key_hash: u64,
        placement: &Placement,
        now: Instant,
    ) {
        if placement.new_key {
            let key = record.partition_key.as_bytes();
            self.key_entries.push(TAG_KEY_TABLE);
            encode_varint(key.len() as u64, &mut self.key_entries);
            let start = self.key_entries.len();
            self.key_entries.extend_from_slice(key);
            self.keys.push((key_hash, start, key.len()));
            let keys = &self.keys;
            self.key_indexes
                .insert_unique(key_hash, placement.key_index, |&i| keys[i as usize].0);
        }
        if let (true, Some(hash), Some(index)) = (
            placement.new_explicit,
            record.explicit_hash_key,
            placement.explicit_index,
        ) {
            let text = hash.to_string();
            self.explicit_entries.push(TAG_EXPLICIT_TABLE);
            encode_varint(text.len() as u64, &mut self.explicit_entries);
            self.explicit_entries.extend_from_slice(text.as_bytes());
            self.explicit_keys.push(hash);
            self.explicit_indexes.insert(hash, index);
        }
        let out = &mut self.record_entries;
        out.push(TAG_RECORD);
        encode_varint(
            record_body_len(
                placement.key_index,
                placement.explicit_index,
                record.data.len(),
            ) as u64,
            out,
        );
        out.push(TAG_KEY_INDEX);
        encode_varint(placement.key_index, out);
        if let Some(index) = placement.explicit_index {
            out.push(TAG_EXPLICIT_INDEX);
            encode_varint(index, out);
        }
        out.push(TAG_DATA);
        encode_varint(record.data.len() as u64, out);
        out.extend_from_slice(&record.data);
        if self.count == 0 {
            self.first = Some(record.clone());
            self.started = Some(now);
        }
        self.count += 1;
    }

    /// The aggregate if its deadline has passed at `now`.
    pub fn poll_deadline(&mut self, now: Instant) -> Option<Aggregate> {
        match self.deadline() {
            Some(deadline) if deadline <= now => self.flush(),
            _ => None,
        }
    }

    /// Empties the aggregator into an aggregate (`None` when empty).
    pub fn flush(&mut self) -> Option<Aggregate> {
        let first = self.first.take()?;
        let aggregate = if self.count == 1 {
            Aggregate {
                partition_key: first.partition_key,
                explicit_hash_key: first.explicit_hash_key,
                data: first.data,
                user_records: 1,
            }
        } else {
            let mut out = BytesMut::with_capacity(self.size());
            out.put_slice(&MAGIC);
            out.put_slice(&self.key_entries);
            out.put_slice(&self.explicit_entries);
            out.put_slice(&self.record_entries);
            let digest = Md5::digest(&out[MAGIC.len()..]);
            out.put_slice(&digest);
            Aggregate {
                partition_key: AGGREGATE_PARTITION_KEY.to_owned(),
                explicit_hash_key: Some(first.hash_key()),
                data: out.freeze(),
                user_records: self.count,
            }
        };
        self.reset();
        Some(aggregate)
    }

    /// Takes the buffered records back, in arrival order, with the time the first arrived.
    pub fn drain(&mut self) -> (Vec<ProducerRecord>, Option<Instant>) {
        let started = self.started;
        let records = self.decode_records();
        self.reset();
        (records, started)
    }

    /// Reads the buffered records back out of `record_entries`.
    fn decode_records(&self) -> Vec<ProducerRecord> {
        let mut out = Vec::with_capacity(self.count);
        let mut buf = &self.record_entries[..];
        while let Some((&TAG_RECORD, rest)) = buf.split_first() {
            buf = rest;
            let Ok(body_len) = decode_varint(&mut buf) else {
                break;
            };
            let Some((mut body, rest)) = buf.split_at_checked(body_len as usize) else {
                break;
            };
            buf = rest;
            let mut key_index = 0;
            let mut explicit_index = None;
            let mut data: &[u8] = &[];
            while let Some((&tag, rest)) = body.split_first() {
                body = rest;
                match tag {
                    TAG_KEY_INDEX => key_index = decode_varint(&mut body).unwrap_or(0),
                    TAG_EXPLICIT_INDEX => explicit_index = decode_varint(&mut body).ok(),
                    _ => {
                        let len = decode_varint(&mut body).unwrap_or(0) as usize;
                        (data, body) = body.split_at_checked(len).unwrap_or((body, &[]));
                    }
                }
            }
            let (_, start, len) = self.keys[key_index as usize];
            // Keys were copied from `&str`s, so they are UTF-8.
            let key = String::from_utf8_lossy(&self.key_entries[start..start + len]).into_owned();
            let mut record = ProducerRecord::new(key, Bytes::copy_from_slice(data));
            record.explicit_hash_key = explicit_index.map(|i| self.explicit_keys[i as usize]);
            out.push(record);
        }
        out
    }

    fn reset(&mut self) {
        self.key_entries.clear();
        self.keys.clear();
        self.key_indexes.clear();
        self.explicit_entries.clear();
        self.explicit_keys.clear();
        self.explicit_indexes.clear();
        self.record_entries.clear();
        self.count = 0;
        self.first = None;
        self.started = None;
    }
}
