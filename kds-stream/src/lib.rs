//! Running Kinesis tables: the source and the sink of a table declared with Flink's DDL
//! ([`kds_table::TableDefinition`]) as Arrow record batches, with checkpoints that never lose
//! a record, kept in a [`LeaseStore`].
//!
//! [`TableSource`] reads the shards a reader owns (all of them, or subtask i of n as Flink's
//! `default` and `uniform` assigners place them: [`ShardAssigner`]) by polling or enhanced
//! fan-out, opens KPL aggregates keeping only the user records of each shard's hash key range,
//! decodes rows with the table's format (only the projected columns), fills the metadata
//! columns, and tracks the table's event-time watermark per shard. Positions reach the lease
//! store only for rows the consumer acknowledged ([`TableSource::ack`]), so a consumer that
//! acknowledges rows once they are safe gets every record at least once across crashes and
//! restarts, with repeats only of what was not committed. A LATEST start is pinned to the time
//! reading began; shards are read parents first; restores resume inside KPL aggregates without
//! repeating their user records.
//!
//! With `scan.watermark.lookahead.millis`, shards (and subtasks sharing a store) that run
//! ahead in event time wait for the slowest; `scan.shard.adaptivereads` sizes GetRecords calls
//! to the shard's read limit.
//!
//! [`TableSink`] writes batches: rows encoded with the table's format and keyed by its
//! partitioner, cut into PutRecords requests by the `sink.*` options, failed records retried
//! with full-jitter backoff under an AIMD limit on requests in flight, optionally in each key's
//! order, optionally packed into KPL aggregates per shard that follow splits and merges.
//! [`TableSink::flush`] returns once Kinesis acknowledged every row: acknowledge the source's
//! rows after it, and a pipeline delivers every row at least once. [`RecordWriter`] is the
//! part below the table (user records in), and [`PutQueue`] its sans-I/O core.
//!
//! Leases live in memory ([`MemoryLeaseStore`]), in a local file ([`FileLeaseStore`], the
//! default for one process: atomic writes, and a lock that keeps a second process out), or in
//! a DynamoDB table that workers on several machines share ([`DynamoDbLeaseStore`]: the KCL's
//! attribute names, every write conditional on the lease counter). [`LeaseTaker`] decides which
//! leases a worker takes when several share a stream, as the KCL's lease taker does.
//!
//! ```no_run
//! use std::sync::Arc;
//! use kds_client::Client;
//! use kds_stream::{FileLeaseStore, SourceConfig, TableSource};
//! use kds_table::TableDefinition;
//!
//! # async fn run(client: Client) -> Result<(), Box<dyn std::error::Error>> {
//! let table = TableDefinition::parse(
//!     "CREATE TABLE orders (id BIGINT, item STRING)
//!      WITH ('connector' = 'kinesis', 'stream' = 'orders', 'aws.region' = 'eu-west-1',
//!            'scan.stream.initpos' = 'TRIM_HORIZON', 'format' = 'json')",
//!     &[],
//! )?;
//! let store = Arc::new(FileLeaseStore::open("state", "orders")?);
//! let mut source = TableSource::open(&table, client, store, SourceConfig::default()).await?;
//! while let Some(batch) = source.next().await? {
//!     println!("{} rows from {}", batch.rows.num_rows(), batch.shard_id.as_str());
//!     source.ack(batch.token)?; // the rows are safe: their position may be committed
//! }
//! source.close().await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod align;
mod assign;
mod checkpoint;
mod connect;
mod dynamodb_store;
mod error;
mod file_store;
mod lease;
mod put_queue;
mod rows;
mod sink;
mod source;
mod taker;
mod watermark;

pub use assign::{ShardAssigner, java_string_hash};
pub use checkpoint::{Checkpoint, Resume};
pub use connect::{client_builder, credentials_provider};
pub use dynamodb_store::DynamoDbLeaseStore;
pub use error::{Error, ErrorKind};
pub use file_store::FileLeaseStore;
pub use lease::{Lease, LeaseStore, MemoryLeaseStore, StoreFuture};
pub use put_queue::{Completion, Failed, PutQueue, PutRequest, RequestFailure, Written};
pub use rows::{Assembled, AssemblerStats, RowAssembler};
pub use sink::{RecordWriter, SinkConfig, TableSink, WriterConfig, WriterStats};
pub use source::{AckToken, SourceBatch, SourceConfig, SourceStats, TableSource};
pub use taker::{DEFAULT_LEASE_DURATION, LeaseTaker};
pub use watermark::WatermarkSpec;
