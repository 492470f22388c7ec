//! From a shard's Kinesis records to rows of a table, without I/O: KPL aggregates opened (only
//! the user records of the shard's hash key range kept, as
//! [`HashRangeFilter::PerRecord`] does), user records delivered before a restore skipped, rows
//! decoded with the table's format, and the checkpoint after the last record.

use std::borrow::Cow;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use kds_agg::{Deaggregator, HashRangeFilter, KinesisRecord};
use kds_proto::model::Record;
use kds_proto::types::{SequenceNumber, ShardId, Timestamp};
use kds_table::{RowDecoder, SourceRecord};

use crate::checkpoint::Checkpoint;
use crate::error::{Error, ErrorKind};

/// What a [`RowAssembler`] did so far.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AssemblerStats {
    /// Kinesis records read.
    pub kinesis_records: u64,
    /// User records of KPL aggregates that belong to another shard's hash key range, dropped.
    pub filtered: u64,
    /// Records that did not decode (rows, or malformed aggregates) and were skipped because
    /// the table ignores parse errors.
    pub skipped: u64,
    /// User records delivered before a restore and skipped after it (inside an aggregate).
    pub redelivery_skipped: u64,
}

/// A shard's rows, and where the shard stands after them.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct Assembled {
    /// The rows, in the shard's order (possibly none: all filtered, skipped or delivered
    /// before).
    pub rows: RecordBatch,
    /// The position after the last Kinesis record (with its last sub-sequence number for an
    /// aggregate); `None` for no records.
    pub checkpoint: Option<Checkpoint>,
}

/// Turns Kinesis records into rows of a table (see the [crate docs](crate)).
#[derive(Debug)]
pub struct RowAssembler {
    decoder: RowDecoder,
    ignore_parse_errors: bool,
    stats: AssemblerStats,
}

impl RowAssembler {
    /// Rows with `decoder`'s columns. `ignore_parse_errors`: skip malformed aggregates too
    /// (rows that do not decode follow the decoder's own setting).
    pub fn new(decoder: RowDecoder, ignore_parse_errors: bool) -> Self {
        Self {
            decoder,
            ignore_parse_errors,
            stats: AssemblerStats::default(),
        }
    }

    /// The schema of the rows.
    pub fn schema(&self) -> &SchemaRef {
        self.decoder.schema()
    }

    /// What was assembled so far.
    pub fn stats(&self) -> AssemblerStats {
        let mut stats = self.stats;
        stats.skipped += self.decoder.skipped();
        stats
    }

    /// The rows of `records`, read from `shard` whose hash key range is `hash_range`
    /// (inclusive). `skip`: the user records of that Kinesis record up to that sub-sequence
    /// number were delivered before a restore.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Decode`] naming the shard and record of a malformed aggregate (unless parse
    /// errors are ignored) or a row that does not decode (see [`RowDecoder::decode`]).
    pub fn assemble(
        &mut self,
        shard: &ShardId,
        hash_range: (u128, u128),
        records: Vec<Record>,
        skip: Option<&(SequenceNumber, u64)>,
    ) -> Result<Assembled, Error> {
        self.stats.kinesis_records += records.len() as u64;
        let deaggregator = Deaggregator::new()
            .with_hash_range(hash_range.0..=hash_range.1, HashRangeFilter::PerRecord);
        let kinesis: Vec<KinesisRecord> = records
            .into_iter()
            .map(|r| {
                let mut record =
                    KinesisRecord::new(r.data, String::new(), r.sequence_number.as_str());
                record.partition_key = r.partition_key.into_bytes();
                record.approximate_arrival_timestamp =
                    r.approximate_arrival_timestamp.map(Timestamp::as_millis);
                record
            })
            .collect();
        let mut users = Vec::with_capacity(kinesis.len());
        let mut last = None;
        for record in &kinesis {
            let before = users.len();
            let visited = match deaggregator.visit(record, |user| users.push(user)) {
                Ok(visited) => visited,
                Err(error) if self.ignore_parse_errors => {
                    tracing::warn!(
                        shard = shard.as_str(),
                        "skipping a malformed aggregate: {error}"
                    );
                    self.stats.skipped += 1;
                    users.truncate(before);
                    last = Some((record, None));
                    continue;
                }
                Err(error) => {
                    return Err(Error::new(
                        ErrorKind::Decode,
                        format!(
                            "the aggregate at sequence number {}",
                            record.sequence_number
                        ),
                    )
                    .with_source(error)
                    .for_shard(shard));
                }
            };
            self.stats.filtered += visited.filtered as u64;
            // Delivered before the restore: the user records up to the stored one.
            if let Some((at, upto)) = skip
                && at.as_str() == &*record.sequence_number
            {
                let kept_from = users[before..]
                    .iter()
                    .position(|u| u.sub_sequence_number > *upto)
                    .map_or(users.len(), |i| before + i);
                self.stats.redelivery_skipped += (kept_from - before) as u64;
                users.drain(before..kept_from);
            }
            let sub = visited
                .plain
                .is_none()
                .then(|| (visited.delivered + visited.filtered).saturating_sub(1) as u64);
            last = Some((record, sub));
        }
        let keys: Vec<Cow<'_, str>> = users.iter().map(|u| u.partition_key_lossy()).collect();
        let rows: Vec<SourceRecord<'_>> = users
            .iter()
            .zip(&keys)
            .map(|(user, key)| SourceRecord {
                shard_id: shard.as_str(),
                sequence_number: &user.record.sequence_number,
                sub_sequence_number: user.aggregated.then_some(user.sub_sequence_number),
                partition_key: key,
                arrival_millis: user.record.approximate_arrival_timestamp.unwrap_or(0),
                data: user.data,
            })
            .collect();
        let decoded = self.decoder.decode(&rows).map_err(Error::table)?;
        let checkpoint = match last {
            Some((record, sub_sequence_number)) => Some(Checkpoint::Record {
                sequence_number: sequence(record).map_err(|e| e.for_shard(shard))?,
                sub_sequence_number,
            }),
            None => None,
        };
        Ok(Assembled {
            rows: decoded,
            checkpoint,
        })
    }
}

/// The sequence number of a Kinesis record, in a buffer of its own.
fn sequence(record: &KinesisRecord) -> Result<SequenceNumber, Error> {
    SequenceNumber::new(&*record.sequence_number).map_err(|e| {
        Error::new(
            ErrorKind::Decode,
            format!("sequence number `{}`", record.sequence_number),
        )
        .with_source(e)
    })
}
