//! A lean Amazon Kinesis Data Streams client: hyper 1, rustls and `aws-sigv4`, the wire protocol
//! of `kds-proto` (JSON 1.1 or CBOR 1.1), retries with full-jitter backoff per operation, and
//! connect, attempt and total timeouts, so that no call hangs.
//!
//! - [`Client::send`] calls any operation of `kds-proto` with its typed input and output;
//!   [`Client::list_all_shards`], [`Client::list_all_streams`] and
//!   [`Client::list_all_stream_consumers`] read listings to the end;
//!   [`Client::put_records_retrying`] resends only failed records, optionally keeping each
//!   partition key's order ([`PutOrdering`]).
//! - [`PollingReader`] reads every shard of a stream with GetRecords, children after their
//!   parents ([`ShardLineage`]); it is a [`FanIn`] (one task per shard, cancel-safe
//!   `next_batch`) over a GetRecords driver, and every shard's decisions (what to deliver,
//!   where to resume, when the shard ended) are a sans-I/O [`ShardCursor`]'s. Readers are also
//!   [`Stream`](futures_core::Stream)s of batches ([`ReadBatches::into_stream`]).
//! - [`Endpoint`]: the regional endpoint (China regions included) or an explicit URL; TLS by
//!   ALPN (HTTP/2 or HTTP/1.1) with the system's root certificates, or plain HTTP/1.1 or h2c
//!   for emulators ([`HttpVersion`]).
//! - [`credentials`]: static keys, environment variables and process-wide "system properties"
//!   ([`credentials::set_property`]), cached and refreshed before expiry; any
//!   `aws-credential-types` provider plugs in.
//! - [`RetryPolicy`]: the connector's per-operation defaults and knobs.
//! - [`Error`]: one type with an [`ErrorKind`], the operation, the attempts made and the
//!   service's error and request id.
//!
//! ```no_run
//! use kds_client::Client;
//! use kds_client::credentials::Credentials;
//! use kds_proto::model::DescribeStreamSummaryInput;
//! use kds_proto::types::StreamName;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::builder()
//!     .region("eu-west-1")
//!     .credentials(Credentials::new("AKID", "secret", None, None, "example"))
//!     .build()?;
//! let mut request = DescribeStreamSummaryInput::new();
//! request.stream_name = Some(StreamName::new("orders")?);
//! let summary = client.send(&request).await?;
//! println!("{} open shards", summary.stream_description_summary.open_shard_count);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod batches;
mod client;
pub mod credentials;
mod cursor;
mod dynamodb;
mod endpoint;
mod error;
mod fan_in;
mod lineage;
mod pages;
mod poll;
mod put;
mod retry;
mod signing;
mod stream_id;
mod transport;

pub use batches::{Batches, ReadBatches};
pub use client::{Client, ClientBuilder, ResponseStream};
pub use cursor::{Batch, Next, Page, ShardCursor, ShardEnd, Step};
pub use dynamodb::DynamoDbClient;
pub use endpoint::Endpoint;
pub use error::{Error, ErrorKind};
pub use fan_in::{BatchSender, Event, FanIn, ShardDriver};
pub use kds_proto::Protocol;
pub use lineage::{ChildOf, ShardLineage};
pub use poll::{PollConfig, PollingDriver, PollingReader, adapted_max_records};
pub use put::{PutOrdering, PutRecordsOutcome};
pub use retry::RetryPolicy;
pub use stream_id::StreamId;
pub use transport::HttpVersion;
