//! The Amazon Kinesis Data Streams wire protocol, sans I/O.
//!
//! `kds-proto` knows how Kinesis requests and responses look on the wire, and nothing about
//! sockets, clocks or runtimes: it takes and returns bytes. It is the layer under `kds-client`
//! (HTTP, signing, retries) and `kds-efo` (SubscribeToShard over HTTP/2), and can be used alone,
//! to decode captured traffic say.
//!
//! - [`model`]: the input and output shapes of every operation kds uses, with client-side
//!   validation ([`Request::validate`]), encoded and decoded in JSON 1.1 or CBOR 1.1
//!   ([`Shape`], [`Protocol`]). Record data is [`bytes::Bytes`]; with CBOR it is sliced from the
//!   response body without copying.
//! - [`types`]: newtypes that carry the service's invariants (names, ARNs, shard ids, partition
//!   keys, hash keys, sequence numbers, timestamps).
//! - [`ServiceError`]: error responses, decoded and classified for retry decisions.
//! - [`eventstream`]: the framing of SubscribeToShard responses, an incremental decoder and an
//!   encoder, and the classification of its messages.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use kds_proto::model::{GetRecordsOutput, PutRecordsInput, PutRecordsRequestEntry};
//! use kds_proto::types::{PartitionKey, StreamName};
//! use kds_proto::{Limits, Protocol, Request, Shape};
//!
//! // Build and check a request, then encode it in both protocols.
//! let entry = PutRecordsRequestEntry::new(Bytes::from_static(b"hello"), PartitionKey::new("user-1")?);
//! let mut request = PutRecordsInput::new(vec![entry]);
//! request.stream_name = Some(StreamName::new("orders")?);
//! request.validate(&Limits::default())?;
//! assert_eq!(PutRecordsInput::TARGET, "Kinesis_20131202.PutRecords");
//! let json = request.encode_body(Protocol::Json);
//! assert_eq!(
//!     std::str::from_utf8(&json)?,
//!     r#"{"Records":[{"Data":"aGVsbG8=","PartitionKey":"user-1"}],"StreamName":"orders"}"#
//! );
//! let cbor = request.encode_body(Protocol::Cbor);
//! assert_eq!(PutRecordsInput::decode_body(cbor.into(), Protocol::Cbor)?, request);
//!
//! // Decode a response.
//! let body = br#"{"Records":[{"SequenceNumber":"49590338271490256608559692538361571095921575989136588898",
//!     "ApproximateArrivalTimestamp":1718000000.123,"Data":"aGVsbG8=","PartitionKey":"user-1"}],
//!     "NextShardIterator":"AAAA","MillisBehindLatest":0}"#;
//! let output = GetRecordsOutput::decode_body(Bytes::from_static(body), Protocol::Json)?;
//! assert_eq!(&output.records[0].data[..], b"hello");
//! assert_eq!(output.records[0].approximate_arrival_timestamp.unwrap().as_millis(), 1_718_000_000_123);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Decoding a whole response
//!
//! [`decode_response`] takes the status, headers and body of an HTTP response and returns the
//! operation's output or a [`ServiceError`]. It picks the decoder from `Content-Type` and checks
//! it against the first byte, because Kinesis answers some CBOR requests with JSON error bodies.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod codec;
mod error;
pub mod eventstream;
pub mod model;
mod response;
mod service_error;
pub mod types;

#[cfg(fuzzing)]
#[doc(hidden)]
#[allow(missing_docs)]
pub mod fuzzing;

pub use codec::Protocol;
pub use error::{DecodeError, DecodeErrorKind, ValidationError, ValidationErrorKind};
pub use model::{Limits, Request, Shape};
pub use response::{ResponseError, decode_response};
pub use service_error::{ErrorClass, ErrorCode, ServiceError};
