//! Enhanced fan-out for Amazon Kinesis Data Streams: SubscribeToShard over HTTP/2, read as a
//! sequence of events.
//!
//! [`Subscription::open`] subscribes a registered consumer to one shard with a
//! [`kds_client::Client`] (HTTP/2 by ALPN on TLS; on plain emulator endpoints, build the client
//! with [`kds_client::HttpVersion::Http2`]); [`Subscription::next_event`] decodes the response
//! body incrementally with kds-proto's event-stream decoder, each payload by its own
//! `:content-type`. An `initial-response` is accepted and never required; exception and error
//! messages end the subscription with a typed [`Error`]; messages of unknown kinds are skipped
//! and counted.
//!
//! [`ShardReader`] keeps a shard subscribed: when a subscription ends (about every five minutes)
//! it subscribes again after the continuation sequence number, waits at least five seconds
//! after ResourceInUse, backs off on transient errors with the connector's
//! `scan.shard.subscribetoshard.*` knobs, abandons a silent subscription (an inactivity
//! watchdog), and stops at the end of a closed shard, reporting its children.
//! [`ensure_consumer`] and [`release_consumer`] carry out the connector's consumer registration
//! strategies (LAZY, EAGER, NONE). [`StreamReader`] reads every shard of a stream, one task
//! per shard, starting children once their parents have ended: a [`kds_client::FanIn`] over
//! subscriptions, with a cancel-safe `next_batch`. Both are also
//! [`Stream`](futures_core::Stream)s of batches ([`ReadBatches::into_stream`]).
//!
//! ```no_run
//! use kds_client::{Client, HttpVersion};
//! use kds_efo::Subscription;
//! use kds_proto::model::{StartingPosition, SubscribeToShardInput};
//! use kds_proto::types::{ConsumerArn, ShardId, ShardIteratorType};
//!
//! # async fn run(client: Client, consumer: ConsumerArn) -> Result<(), Box<dyn std::error::Error>> {
//! let request = SubscribeToShardInput::new(
//!     consumer,
//!     ShardId::new("shardId-000000000000")?,
//!     StartingPosition::new(ShardIteratorType::TrimHorizon),
//! );
//! let mut subscription = Subscription::open(&client, &request).await?;
//! while let Some(event) = subscription.next_event().await? {
//!     for record in &event.records {
//!         println!("{} bytes at {}", record.data.len(), record.sequence_number.as_str());
//!     }
//! }
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod consumer;
mod error;
mod reader;
mod stream;
mod subscription;

pub use consumer::{ConsumerConfig, Registration, ensure_consumer, release_consumer};
pub use error::{Error, ErrorKind};
pub use kds_client::{Batch, Batches, ReadBatches};
pub use reader::{ReaderConfig, ShardReader};
pub use stream::{FanOutDriver, StreamReader};
pub use subscription::Subscription;
