//! The crate's error: an opaque type with a public kind.

use std::fmt;

use crate::deaggregate::KinesisRecord;

/// What went wrong in `kds-agg`.
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    detail: String,
    record: Option<KinesisRecord>,
}

/// The kind of an [`Error`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A well-formed aggregate (magic, MD5 and protobuf all valid) holds no user records.
    EmptyAggregate,
    /// A user record's `partition_key_index` is past the end of the partition key table.
    PartitionKeyIndexOutOfRange,
    /// A user record's `explicit_hash_key_index` is past the end of the explicit hash key table.
    ExplicitHashKeyIndexOutOfRange,
    /// An explicit hash key is not a decimal integer in `0..=2^128-1`.
    InvalidExplicitHashKey,
    /// A configuration value is outside its allowed range.
    InvalidConfig,
    /// Shard hash ranges overlap or are reversed.
    InvalidShardMap,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            kind,
            detail: detail.into(),
            record: None,
        }))
    }

    pub(crate) fn with_record(mut self, record: KinesisRecord) -> Self {
        self.0.record = Some(record);
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// For deaggregation errors, the Kinesis record that could not be deaggregated, untouched, so
    /// that it can be kept aside (a dead-letter queue, say) instead of being lost.
    pub fn record(&self) -> Option<&KinesisRecord> {
        self.0.record.as_ref()
    }

    /// Takes the Kinesis record out of the error (see [`Error::record`]).
    pub fn into_record(self) -> Option<KinesisRecord> {
        self.0.record
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.0.kind {
            ErrorKind::EmptyAggregate => "aggregate holds no user records",
            ErrorKind::PartitionKeyIndexOutOfRange => "partition key index out of range",
            ErrorKind::ExplicitHashKeyIndexOutOfRange => "explicit hash key index out of range",
            ErrorKind::InvalidExplicitHashKey => "invalid explicit hash key",
            ErrorKind::InvalidConfig => "invalid configuration",
            ErrorKind::InvalidShardMap => "invalid shard map",
        };
        f.write_str(what)?;
        if let Some(record) = &self.0.record {
            write!(
                f,
                " in the record with sequence number {}",
                record.sequence_number
            )?;
        }
        if !self.0.detail.is_empty() {
            write!(f, ": {}", self.0.detail)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("detail", &self.0.detail)
            .field(
                "sequence_number",
                &self.0.record.as_ref().map(|r| &*r.sequence_number),
            )
            .finish()
    }
}

impl std::error::Error for Error {}
