//! Kinesis-backed tables as the Flink Kinesis SQL connector declares them.
//!
//! This part of `kds-table` checks a table's `WITH (...)` options the way the connector's
//! reference page documents them and turns them into typed configuration for the client, the
//! source and the sink ([`TableOptions`]). Every option lives in one registry
//! ([`registry::OPTIONS`]) that also renders the reference table of the docs.
//!
//! # Example
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

mod error;
mod options;
pub mod registry;
mod timestamp;

pub use error::{Error, ErrorKind};
pub use options::{
    AggregationOptions, AwsOptions, Backoff, Credentials, EfoConsumer, FormatOptions, Partitioner,
    ReaderKind, SinkOptions, SourceOptions, StartPosition, TableOptions,
};
