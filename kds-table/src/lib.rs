//! Kinesis-backed tables as the Flink Kinesis SQL connector declares them.
//!
//! [`TableDefinition::parse`] takes the `CREATE TABLE … WITH ('connector' = 'kinesis', …)`
//! statement users already run on Flink: the [`ddl`] parser reads it (metadata columns,
//! computed columns, watermarks and primary keys included, errors with line and column), the
//! columns are checked against what Kinesis records carry ([`MetadataKey`], partition key
//! columns), and the `WITH` options are checked the way the connector's reference page documents
//! them into typed configuration for the client, the source and the sink ([`TableOptions`]).
//! Every option lives in one registry ([`registry::OPTIONS`]) that also renders the reference
//! table of the docs (`kds-table/OPTIONS.md`).
//!
//! Rows are Arrow record batches ([`TableDefinition::arrow_schema`]). A [`RowDecoder`] turns
//! records read from a shard into rows with the table's format (`json`, `csv`, `avro`, `raw`)
//! and fills metadata columns from the record fields; a record that does not decode is an
//! error naming its shard and sequence number, or is skipped and counted when the table
//! ignores parse errors. A [`RowEncoder`] turns rows into records with their partition keys.
//!
//! ```
//! use kds_table::{MetadataKey, TableDefinition};
//!
//! let table = TableDefinition::parse(
//!     "CREATE TABLE orders (
//!        id BIGINT,
//!        body STRING,
//!        arrival TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL
//!      ) PARTITIONED BY (id)
//!      WITH ('connector' = 'kinesis', 'stream' = 'orders', 'aws.region' = 'eu-west-1', 'format' = 'json')",
//!     &[],
//! )?;
//! assert_eq!(table.metadata, [(2, MetadataKey::Timestamp)]);
//! # Ok::<(), kds_table::Error>(())
//! ```
//!
//! # Records to rows and back
//!
//! ```
//! use kds_table::{Partitioners, SourceRecord, TableDefinition};
//!
//! let table = TableDefinition::parse(
//!     "CREATE TABLE clicks (
//!        user_id BIGINT,
//!        page STRING,
//!        seq VARCHAR(128) METADATA FROM 'sequence-number' VIRTUAL
//!      ) PARTITIONED BY (user_id)
//!      WITH ('connector' = 'kinesis', 'stream' = 'clicks', 'aws.region' = 'eu-west-1',
//!            'format' = 'json', 'json.ignore-parse-errors' = 'true')",
//!     &[],
//! )?;
//! let record = |sequence_number, data| SourceRecord {
//!     shard_id: "shardId-000000000000",
//!     sequence_number,
//!     sub_sequence_number: None,
//!     partition_key: "42",
//!     arrival_millis: 1_700_000_000_000,
//!     data,
//! };
//! let mut decoder = table.decoder()?;
//! let rows = decoder.decode(&[
//!     record("1", br#"{"user_id": 42, "page": "/home"}"#),
//!     record("2", b"not json"),
//! ])?;
//! assert_eq!((rows.num_rows(), decoder.skipped()), (1, 1));
//!
//! let records = table.encoder(&Partitioners::new(), 0)?.encode(&rows)?;
//! assert_eq!(records[0].partition_key, "42");
//! assert_eq!(&records[0].data[..], br#"{"user_id":42,"page":"/home"}"#);
//! # Ok::<(), kds_table::Error>(())
//! ```
//!
//! # Options alone
//!
//! ```
//! use std::collections::BTreeMap;
//! use kds_table::{StartPosition, TableOptions};
//!
//! let options: BTreeMap<String, String> = [
//!     ("connector", "kinesis"),
//!     ("stream", "user_behavior"),
//!     ("aws.region", "us-east-2"),
//!     ("scan.stream.initpos", "AT_TIMESTAMP"),
//!     ("scan.stream.initpos-timestamp", "1459799926.480"),
//!     ("format", "csv"),
//! ]
//! .into_iter()
//! .map(|(k, v)| (k.to_owned(), v.to_owned()))
//! .collect();
//! let table = TableOptions::parse(&options, &["user_id".to_owned()], &[])?;
//! assert_eq!(table.source.start, StartPosition::AtTimestamp(1_459_799_926_480));
//!
//! let mut typo = options.clone();
//! typo.insert("scan.stream.initpos-timestmap".into(), "x".into());
//! let err = TableOptions::parse(&typo, &[], &[]).unwrap_err();
//! assert!(err.to_string().contains("did you mean `scan.stream.initpos-timestamp`?"));
//! # Ok::<(), kds_table::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ddl;
mod definition;
mod error;
mod format;
mod options;
mod partition;
pub mod registry;
pub mod schema;
mod timestamp;

pub use definition::{MetadataKey, TableDefinition};
pub use error::{Error, ErrorKind, RecordPosition};
pub use format::{RowDecoder, RowEncoder, SinkRecord, SourceRecord};
pub use options::{
    AggregationOptions, AwsOptions, Backoff, Credentials, EfoConsumer, FormatOptions, LeaseTable,
    Partitioner, ReaderKind, SinkOptions, SourceOptions, StartPosition, TableOptions,
};
pub use partition::{PartitionKeyGenerator, PartitionerFactory, Partitioners};
