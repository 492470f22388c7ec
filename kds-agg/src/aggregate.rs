//! Aggregation: user records in, KPL aggregates out, never over the size limit.
//!
//! The size of the aggregate being built is tracked exactly as records are added (the 20 bytes
//! of magic and digest, each new key table entry, each record with its varints), so the decision
//! to start a new aggregate never needs an encoding pass. Time is an argument: the caller passes
//! `now` and asks for expired aggregates; nothing here reads a clock.

use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use md5::{Digest, Md5};
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};

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
    /// The record alone exceeds `max_size` once framed as an aggregate: send it by itself.
    TooLarge(ProducerRecord),
}

struct Pending {
    record: ProducerRecord,
    key_index: u64,
    explicit_index: Option<u64>,
}

/// Builds KPL aggregates from user records.
///
/// Call [`Aggregator::add`] for each record and put every [`Aggregate`] it returns; call
/// [`Aggregator::poll_deadline`] when [`Aggregator::deadline`] passes, and
/// [`Aggregator::flush`] at shutdown. An aggregate of one user record is that record as is; two or
/// more are framed with partition key `"a"` and the first record's hash key, as the KPL does. Key
/// tables are deduplicated in first-seen order.
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// use kds_agg::{Added, Aggregator, AggregatorConfig, ProducerRecord};
///
/// let mut aggregator = Aggregator::new(AggregatorConfig::default())?;
/// let now = Instant::now();
/// assert_eq!(aggregator.add(ProducerRecord::new("pk-a", &b"hello"[..]), now), Added::Buffered);
/// aggregator.add(ProducerRecord::new("pk-b", &b"world"[..]).with_explicit_hash_key(42), now);
/// aggregator.add(ProducerRecord::new("pk-a", &b"!"[..]), now);
/// let aggregate = aggregator.flush().expect("three records");
/// assert_eq!(aggregate.partition_key, "a");
/// assert_eq!(aggregate.user_records, 3);
/// assert_eq!(aggregate.data.len(), 67);
/// # Ok::<(), kds_agg::Error>(())
/// ```
pub struct Aggregator {
    config: AggregatorConfig,
    /// The partition key table: for each entry, the key's hash and the pending record that
    /// holds the key (keys are not copied).
    keys: Vec<(u64, usize)>,
    /// Key table indexes, found by hash and compared against the pending records' keys.
    key_indexes: HashTable<u64>,
    hasher: DefaultHashBuilder,
    explicit_keys: Vec<u128>,
    explicit_indexes: HashMap<u128, u64>,
    pending: Vec<Pending>,
    /// Exact size of the aggregate if flushed now (0 when empty).
    size: usize,
    started: Option<Instant>,
}

impl std::fmt::Debug for Aggregator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aggregator")
            .field("config", &self.config)
            .field("records", &self.pending.len())
            .field("size", &self.size)
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
            keys: Vec::new(),
            key_indexes: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            explicit_keys: Vec::new(),
            explicit_indexes: HashMap::new(),
            pending: Vec::new(),
            size: 0,
            started: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &AggregatorConfig {
        &self.config
    }

    /// User records buffered.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The exact size of the aggregate if flushed now (0 when empty).
    pub fn size(&self) -> usize {
        self.size
    }

    /// When the buffered records must be sent: the first one's arrival plus
    /// `max_buffered_time`.
    pub fn deadline(&self) -> Option<Instant> {
        self.started.map(|t| t + self.config.max_buffered_time)
    }

    /// The size the aggregate would have with `record` added.
    fn size_with(&self, record: &ProducerRecord, key_hash: u64) -> (usize, u64, Option<u64>) {
        let mut size = if self.pending.is_empty() {
            MAGIC.len() + DIGEST_LEN
        } else {
            self.size
        };
        let key = record.partition_key.as_str();
        let found = self.key_indexes.find(key_hash, |&i| {
            let (_, holder) = self.keys[i as usize];
            self.pending[holder].record.partition_key == key
        });
        let key_index = match found {
            Some(&i) => i,
            None => {
                size += field_len(record.partition_key.len());
                self.keys.len() as u64
            }
        };
        let explicit_index =
            record
                .explicit_hash_key
                .map(|hash| match self.explicit_indexes.get(&hash) {
                    Some(&i) => i,
                    None => {
                        size += field_len(decimal_len(hash));
                        self.explicit_keys.len() as u64
                    }
                });
        size += field_len(record_body_len(
            key_index,
            explicit_index,
            record.data.len(),
        ));
        (size, key_index, explicit_index)
    }

    /// Adds a record that arrived at `now`.
    pub fn add(&mut self, record: ProducerRecord, now: Instant) -> Added {
        let mut ready = None;
        let key_hash = self.hasher.hash_one(record.partition_key.as_str());
        let (mut size, mut key_index, mut explicit_index) = self.size_with(&record, key_hash);
        if !self.pending.is_empty()
            && (size > self.config.max_size || self.pending.len() >= self.config.max_count)
        {
            ready = self.flush();
            (size, key_index, explicit_index) = self.size_with(&record, key_hash);
        }
        if size > self.config.max_size {
            // Alone in an empty aggregate and still too large.
            return match ready {
                None => Added::TooLarge(record),
                // Cannot happen: the aggregate was just emptied, so the record was measured alone
                // before the flush too. Keep the record rather than lose it.
                Some(aggregate) => {
                    self.insert(record, key_hash, size, key_index, explicit_index, now);
                    Added::Ready(aggregate)
                }
            };
        }
        self.insert(record, key_hash, size, key_index, explicit_index, now);
        if ready.is_none() && self.pending.len() >= self.config.max_count {
            ready = self.flush();
        }
        ready.map_or(Added::Buffered, Added::Ready)
    }

    fn insert(
        &mut self,
        record: ProducerRecord,
        key_hash: u64,
        size: usize,
        key_index: u64,
        explicit_index: Option<u64>,
        now: Instant,
    ) {
        if key_index as usize == self.keys.len() {
            self.keys.push((key_hash, self.pending.len()));
            let keys = &self.keys;
            self.key_indexes
                .insert_unique(key_hash, key_index, |&i| keys[i as usize].0);
        }
        if let (Some(index), Some(hash)) = (explicit_index, record.explicit_hash_key)
            && index as usize == self.explicit_keys.len()
        {
            self.explicit_keys.push(hash);
            self.explicit_indexes.insert(hash, index);
        }
        self.size = size;
        self.started.get_or_insert(now);
        self.pending.push(Pending {
            record,
            key_index,
            explicit_index,
        });
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
        let aggregate = match self.pending.len() {
            0 => return None,
            1 => {
                let record = self.pending.pop().map(|p| p.record)?;
                Aggregate {
                    partition_key: record.partition_key,
                    explicit_hash_key: record.explicit_hash_key,
                    data: record.data,
                    user_records: 1,
                }
            }
            n => Aggregate {
                partition_key: AGGREGATE_PARTITION_KEY.to_owned(),
                explicit_hash_key: Some(self.pending[0].record.hash_key()),
                data: self.encode(),
                user_records: n,
            },
        };
        self.reset();
        Some(aggregate)
    }

    /// Takes the buffered records back, in arrival order, with the time the first arrived.
    pub fn drain(&mut self) -> (Vec<ProducerRecord>, Option<Instant>) {
        let started = self.started;
        let records = self.pending.drain(..).map(|p| p.record).collect();
        self.reset();
        (records, started)
    }

    fn reset(&mut self) {
        self.pending.clear();
        self.keys.clear();
        self.key_indexes.clear();
        self.explicit_keys.clear();
        self.explicit_indexes.clear();
        self.size = 0;
        self.started = None;
    }

    fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.size);
        out.put_slice(&MAGIC);
        for &(_, holder) in &self.keys {
            let key = &self.pending[holder].record.partition_key;
            encode_key(1, WireType::LengthDelimited, &mut out);
            encode_varint(key.len() as u64, &mut out);
            out.put_slice(key.as_bytes());
        }
        for hash in &self.explicit_keys {
            let text = hash.to_string();
            encode_key(2, WireType::LengthDelimited, &mut out);
            encode_varint(text.len() as u64, &mut out);
            out.put_slice(text.as_bytes());
        }
        for p in &self.pending {
            let body = record_body_len(p.key_index, p.explicit_index, p.record.data.len());
            encode_key(3, WireType::LengthDelimited, &mut out);
            encode_varint(body as u64, &mut out);
            encode_key(1, WireType::Varint, &mut out);
            encode_varint(p.key_index, &mut out);
            if let Some(index) = p.explicit_index {
                encode_key(2, WireType::Varint, &mut out);
                encode_varint(index, &mut out);
            }
            encode_key(3, WireType::LengthDelimited, &mut out);
            encode_varint(p.record.data.len() as u64, &mut out);
            out.put_slice(&p.record.data);
        }
        let digest = Md5::digest(&out[MAGIC.len()..]);
        out.put_slice(&digest);
        debug_assert_eq!(out.len(), self.size, "size accounting drifted");
        out.freeze()
    }
}
