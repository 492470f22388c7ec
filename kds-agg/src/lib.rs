//! KPL-compatible record aggregation and deaggregation for Amazon Kinesis Data Streams.
//!
//! The Kinesis Producer Library packs many user records into one Kinesis record to get past the
//! per-shard limit of 1000 records per second: magic bytes `F3 89 9A C2`, an `AggregatedRecord`
//! protobuf, and the MD5 of the protobuf. This crate reads and writes that format byte for byte
//! like the KPL and the KCL, without I/O and without a clock (time is an argument):
//!
//! - [`Deaggregator`] turns a [`KinesisRecord`] into [`UserRecord`]s, or hands borrowed
//!   [`UserRecordRef`]s to a closure ([`Deaggregator::visit`], which copies and counts nothing
//!   per record and runs within a few percent of the MD5 check). Records that are not aggregates
//!   pass through whole, exactly as the KCL decides; user record data is sliced from the Kinesis
//!   record without copying; an aggregate is checked completely before anything is emitted, and
//!   one that cannot be delivered is reported with the original record, never dropped. Filtering
//!   by the shard's hash key range keeps the user records that belong to the shard
//!   ([`HashRangeFilter::PerRecord`]) or drops the whole aggregate like the KCL
//!   ([`HashRangeFilter::WholeAggregate`]); what is filtered is counted.
//! - [`Aggregator`] builds aggregates that never exceed `max_size`: records are encoded as they
//!   are added, so the size is always exact, and the output is byte for byte what the KPL
//!   libraries write. [`ShardAggregator`] keeps one per shard of a [`ShardMap`], so an aggregate
//!   never holds records of two shards, and re-routes its buffered records when the map changes.
//!
//! The protobuf is read by a small borrowing reader that is tested against prost's
//! generated decoder; prost's varint primitives do the encoding.
//!
//! # Example
//!
//! ```
//! use std::time::Instant;
//! use kds_agg::{Aggregator, AggregatorConfig, Deaggregator, KinesisRecord, ProducerRecord};
//!
//! let mut aggregator = Aggregator::new(AggregatorConfig::default())?;
//! for i in 0..10 {
//!     aggregator.add(&ProducerRecord::new(format!("user-{i}"), format!("event {i}")), Instant::now());
//! }
//! let aggregate = aggregator.flush().expect("ten records buffered");
//!
//! // What a consumer reads back from the stream:
//! let record = KinesisRecord::new(aggregate.data, aggregate.partition_key, "49590338271490256608559692538361571095921575989136588898");
//! let out = Deaggregator::new().deaggregate(record)?;
//! assert_eq!(out.records.len(), 10);
//! assert_eq!(out.records[3].partition_key_lossy(), "user-3");
//! assert_eq!(&out.records[3].data[..], b"event 3");
//! assert_eq!(out.records[3].sub_sequence_number, 3);
//! # Ok::<(), kds_agg::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod aggregate;
mod deaggregate;
mod error;
#[cfg(test)]
mod proto;
mod shard_map;
mod wire;

#[cfg(fuzzing)]
#[doc(hidden)]
#[allow(missing_docs)]
pub mod fuzzing;

pub use aggregate::{
    AGGREGATE_PARTITION_KEY, Added, Aggregate, Aggregator, AggregatorConfig, DEFAULT_MAX_SIZE,
    MAX_SIZE_LIMIT, ProducerRecord,
};
pub use deaggregate::{
    Deaggregated, Deaggregator, HashRangeFilter, KinesisRecord, PlainReason, Tag, UserRecord,
    UserRecordRef, Visited,
};
pub use error::{Error, ErrorKind};
pub use shard_map::{Rerouted, Routed, ShardAggregator, ShardMap};

use md5::{Digest, Md5};

/// The first four bytes of every KPL aggregate.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];

/// Length of the MD5 digest that ends every aggregate.
pub const DIGEST_LEN: usize = 16;

/// The hash key of a partition key: its MD5, read as a big-endian `u128`.
pub fn hash_key_of(partition_key: &[u8]) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key).into())
}
