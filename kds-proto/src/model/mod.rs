//! Request, response and event shapes of every Kinesis operation kds uses, with client-side
//! validation.
//!
//! Each input shape implements [`Request`], which names the operation, its `X-Amz-Target`, its
//! response shape and the checks to run before sending. Every shape implements [`Shape`]:
//! encoding to and decoding from a JSON 1.1 or CBOR 1.1 body.

#[macro_use]
mod macros;
#[cfg(test)]
mod generate;
mod records;
mod shapes;
#[cfg(test)]
mod tests;
mod validate;

#[cfg(fuzzing)]
pub(crate) use records::general_only;
pub use records::{RecordRef, RecordsPage};
pub use shapes::*;

use bytes::Bytes;

use crate::Protocol;
use crate::codec::{Reader, Value, Writer};
use crate::error::{DecodeError, DecodeErrorKind};
use crate::types::{
    ConsumerArn, ConsumerName, ConsumerStatus, EncryptionType, HashKey, MetricsName, PartitionKey,
    ScalingType, SequenceNumber, ShardFilterType, ShardId, ShardIterator, ShardIteratorType,
    StreamArn, StreamMode, StreamName, StreamStatus,
};

pub(crate) mod sealed {
    pub trait Sealed {}
}

/// A wire structure: encodes to and decodes from a JSON 1.1 or CBOR 1.1 body.
pub trait Shape: Sized + sealed::Sealed {
    /// Encodes the shape as a whole body. Absent optional members are omitted.
    fn encode_body(&self, protocol: Protocol) -> Vec<u8>;

    /// Decodes a whole body. An empty body reads as an empty document.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] naming the member and byte offset at fault.
    fn decode_body(body: Bytes, protocol: Protocol) -> Result<Self, DecodeError>;
}

/// The input of a Kinesis operation.
pub trait Request: Shape {
    /// The output shape (an empty shape for operations without output).
    type Response: Shape;
    /// The operation name, `PutRecords` say.
    const OPERATION: &'static str;
    /// The `X-Amz-Target` header value, `Kinesis_20131202.PutRecords` say.
    const TARGET: &'static str;

    /// Checks the request against the service's documented constraints, so that a request the
    /// service would refuse is never sent.
    ///
    /// # Errors
    ///
    /// A [`crate::ValidationError`] naming the member and the limit it breaks.
    fn validate(&self, limits: &Limits) -> Result<(), crate::ValidationError>;

    /// The stream the request names, by name, ARN or consumer ARN, for logs and traces.
    fn stream(&self) -> Option<&str> {
        None
    }

    /// The shard the request names, for logs and traces.
    fn shard(&self) -> Option<&str> {
        None
    }
}

/// Limits that depend on the stream, for [`Request::validate`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest record, data plus partition key, in bytes: the stream's `MaxRecordSizeInKiB`
    /// times 1024. Defaults to 1 MiB.
    pub max_record_size: usize,
}

impl Limits {
    /// PutRecords takes at most this many entries.
    pub const MAX_PUT_RECORDS_ENTRIES: usize = 500;
    /// PutRecords takes at most this many bytes of data plus partition keys.
    pub const MAX_PUT_RECORDS_BYTES: usize = 10 * 1024 * 1024;

    /// Limits for a stream whose `MaxRecordSizeInKiB` is `kib`.
    pub const fn with_max_record_size_kib(kib: u32) -> Self {
        Self {
            max_record_size: kib as usize * 1024,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::with_max_record_size_kib(1024)
    }
}

pub(crate) const fn one(_: &str) -> usize {
    1
}

pub(crate) fn decode_member<T: Value, R: Reader>(
    r: &mut R,
    name: &'static str,
) -> Result<Option<T>, DecodeError> {
    if r.take_null().map_err(|e| e.in_field(name))? {
        return Ok(None);
    }
    T::decode(r).map(Some).map_err(|e| e.in_field(name))
}

pub(crate) fn duplicate(name: &'static str, at: usize) -> DecodeError {
    DecodeError::new(DecodeErrorKind::Syntax, at, "the member appears twice").in_field(name)
}

pub(crate) fn missing(name: &'static str, start: usize) -> DecodeError {
    DecodeError::new(
        DecodeErrorKind::MissingField,
        start,
        format!("the structure starting here has no `{name}`"),
    )
    .in_field(name)
}

/// Newtypes travel as strings and are checked by their constructors.
macro_rules! value_via_str {
    ($($ty:ty => $parse:expr,)+) => {$(
        impl Value for $ty {
            fn decode<R: Reader>(r: &mut R) -> Result<Self, DecodeError> {
                let at = r.offset();
                let text = r.read_string()?;
                $parse(text).map_err(|e: crate::ValidationError| {
                    DecodeError::new(DecodeErrorKind::InvalidValue, at, e.to_string())
                })
            }
            fn encode<W: Writer>(&self, w: &mut W) {
                w.string(self.as_ref());
            }
        }
    )+};
}

value_via_str! {
    StreamName => StreamName::new,
    StreamArn => StreamArn::new,
    ConsumerName => ConsumerName::new,
    ConsumerArn => ConsumerArn::new,
    ShardId => ShardId::new,
    PartitionKey => PartitionKey::new,
    ShardIterator => ShardIterator::new,
    SequenceNumber => SequenceNumber::new,
}

impl Value for HashKey {
    fn decode<R: Reader>(r: &mut R) -> Result<Self, DecodeError> {
        let at = r.offset();
        let text = r.read_string()?;
        Self::parse(&text)
            .map_err(|e| DecodeError::new(DecodeErrorKind::InvalidValue, at, e.to_string()))
    }
    fn encode<W: Writer>(&self, w: &mut W) {
        w.string(&self.to_string());
    }
}

/// Enums keep unknown values (`Unknown`), so decoding them never fails on the value.
macro_rules! value_via_enum {
    ($($ty:ty,)+) => {$(
        impl Value for $ty {
            fn decode<R: Reader>(r: &mut R) -> Result<Self, DecodeError> {
                r.read_string().map(Self::from)
            }
            fn encode<W: Writer>(&self, w: &mut W) {
                w.string(self.as_str());
            }
        }
    )+};
}

value_via_enum! {
    StreamStatus,
    ConsumerStatus,
    EncryptionType,
    StreamMode,
    ShardIteratorType,
    ScalingType,
    ShardFilterType,
    MetricsName,
}
