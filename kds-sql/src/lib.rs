//! SQL over Kinesis tables, on [DataFusion](https://datafusion.apache.org).
//!
//! A [`SqlSession`] runs Flink's Kinesis connector DDL as written
//! (`CREATE TABLE … WITH ('connector' = 'kinesis', …)`, parsed by kds-table: METADATA columns,
//! `PARTITIONED BY`, every option) and DataFusion's SQL over the tables it declares:
//!
//! - `SELECT … FROM kinesis_table` streams rows as they are read, projection pushed into the
//!   decoder, `LIMIT` honoured, a `timestamp >= X` filter on the `timestamp` metadata column
//!   turned into an AT_TIMESTAMP start where the table sets no start position;
//! - `SET kds.bounded = true` reads tables as snapshots (each shard up to its tip when the
//!   query began reading it), so `GROUP BY`, joins and `count(*)` answer; without it, a query that
//!   needs all of an unbounded table is refused with [`ErrorKind::Unbounded`];
//! - `INSERT INTO kinesis_table VALUES …` / `SELECT …` writes through kds-stream's sink
//!   (`PARTITIONED BY` columns make the partition key) and reports once Kinesis acknowledged
//!   every row;
//! - `INSERT INTO sink SELECT … FROM source` between Kinesis tables, the source unbounded,
//!   runs as a pipeline that commits a source position only after the sink acknowledged the
//!   rows before it: with a [state directory](SqlSessionBuilder::state_dir), a pipeline run
//!   again goes on where the last one committed;
//! - `CREATE EXTERNAL TABLE … STORED AS KINESIS OPTIONS (…) LOCATION 'kinesis://stream'`
//!   declares a table in DataFusion's own syntax;
//! - Flink's dynamic table options, `FROM t /*+ OPTIONS('scan.stream.initpos' = 'TRIM_HORIZON') */`,
//!   change a table's options for one query.
//!
//! ```
//! use kds_sql::{Outcome, SqlSession, split_statements};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let session = SqlSession::new();
//! let script = "
//!     CREATE TABLE orders (
//!       id BIGINT,
//!       item STRING,
//!       arrived TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL
//!     ) PARTITIONED BY (item)
//!     WITH ('connector' = 'kinesis', 'stream' = 'orders', 'aws.region' = 'eu-west-1',
//!           'scan.stream.initpos' = 'TRIM_HORIZON', 'format' = 'json');
//!     SET kds.bounded = true;
//! ";
//! for statement in split_statements(script)? {
//!     if let Outcome::Created(table) = session.execute(&statement.text).await? {
//!         println!("{} reads stream {}", table.table.name, table.options.stream);
//!     }
//! }
//! let orders = session.context().table("orders").await?;
//! assert_eq!(orders.schema().fields().len(), 3);
//! # Ok(()) }
//! ```
//!
//! Queries then stream their rows (this one reads the stream, so it is not run here):
//!
//! ```no_run
//! # use futures_util::TryStreamExt;
//! # use kds_sql::{Outcome, SqlSession};
//! # async fn run(session: SqlSession) -> Result<(), Box<dyn std::error::Error>> {
//! let sql = "SELECT item, count(*) FROM orders GROUP BY item";
//! if let Outcome::Rows(rows) = session.execute(sql).await? {
//!     let batches: Vec<_> = rows.try_collect().await?;
//!     println!("{}", datafusion::arrow::util::pretty::pretty_format_batches(&batches)?);
//! }
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod pipeline;
mod scan;
mod script;
mod session;
mod sink;
mod table;
mod unbounded;

/// The DataFusion this crate builds on, for its types in this crate's API (streams of record
/// batches, the session context).
pub use datafusion;
pub use error::{Error, ErrorKind};
pub use pipeline::PipelineReport;
pub use script::{Statement, split_statements};
pub use session::{
    ClientFactory, KdsOptions, Outcome, Report, SqlSession, SqlSessionBuilder, Stopper,
    TableClients,
};
pub use table::{KinesisTable, KinesisTableFactory};
