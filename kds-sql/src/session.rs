//! A SQL session over Kinesis tables: Flink's `CREATE TABLE` registered ahead of DataFusion,
//! everything else run by DataFusion, `INSERT INTO … SELECT` between Kinesis tables run as a
//! pipeline with checkpoints.

use std::fmt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::catalog::TableProvider;
use datafusion::common::config::ConfigExtension;
use datafusion::common::{TableReference, extensions_options};
use datafusion::execution::SessionStateBuilder;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    Ident, ObjectName, ObjectNamePart, Statement as SqlStatement, TableObject,
};
use kds_client::Client;
use kds_stream::{SourceStats, WriterStats};
use kds_table::{Partitioners, TableDefinition};
use tokio::sync::watch;

use crate::error::{Error, ErrorKind};
use crate::pipeline::{self, PipelineReport};
use crate::script::{TableHint, is_flink_create_table, take_hints};
use crate::table::{KinesisTable, KinesisTableFactory};
use crate::unbounded::NoHoldingBack;

extensions_options! {
    /// The session settings of kds, set with `SET kds.<name> = <value>`.
    pub struct KdsOptions {
        /// Read Kinesis tables as snapshots: each shard up to its tip when the query began
        /// reading it, then the scan ends. Aggregates, sorts and joins need it.
        pub bounded: bool, default = false
    }
}

impl ConfigExtension for KdsOptions {
    const PREFIX: &'static str = "kds";
}

/// Makes the client a table is read and written with.
pub trait ClientFactory: Send + Sync {
    /// A client for `table`'s stream.
    fn client<'a>(
        &'a self,
        table: &'a TableDefinition,
    ) -> Pin<Box<dyn Future<Output = Result<Client, Error>> + Send + 'a>>;
}

/// Clients as each table's options describe them (`aws.region`, `aws.endpoint`,
/// `aws.credentials.*`, the retries of `scan.*`): [`kds_stream::client_builder`].
#[derive(Clone, Copy, Debug, Default)]
pub struct TableClients;

impl ClientFactory for TableClients {
    fn client<'a>(
        &'a self,
        table: &'a TableDefinition,
    ) -> Pin<Box<dyn Future<Output = Result<Client, Error>> + Send + 'a>> {
        Box::pin(async move {
            kds_stream::client_builder(table)
                .await
                .build()
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Definition,
                        format!("a client for table `{}`", table.table.name),
                    )
                    .with_source(e)
                })
        })
    }
}

/// What the session's reads and writes counted since the last [`SqlSession::take_report`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Kinesis records read.
    pub kinesis_records: u64,
    /// Records that did not decode in their table's format and were skipped.
    pub skipped: u64,
    /// User records of KPL aggregates that belong to another shard's hash key range, left out.
    pub filtered: u64,
    /// Rows Kinesis acknowledged.
    pub rows_written: u64,
    /// Rows sent again after a request whose outcome was unknown: Kinesis may hold them twice.
    pub maybe_duplicated: u64,
}

/// What the tables of a session share: how to make clients, the partitioners registered in
/// code, the stop signal and the counters.
pub(crate) struct Environment {
    pub(crate) clients: Arc<dyn ClientFactory>,
    pub(crate) partitioners: Partitioners,
    pub(crate) state_dir: Option<PathBuf>,
    stop: watch::Sender<bool>,
    report: Mutex<Report>,
    /// Hinted tables registered so far (their names are numbered).
    hinted: AtomicU64,
    /// Reads running (a scan partition's source not closed yet).
    reads: watch::Sender<usize>,
}

impl Environment {
    pub(crate) fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Counts a read as running until the guard is dropped.
    pub(crate) fn read_started(self: &Arc<Self>) -> ReadGuard {
        self.reads.send_modify(|n| *n += 1);
        ReadGuard(Arc::clone(self))
    }

    pub(crate) fn record(&self, stats: SourceStats) {
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        report.kinesis_records += stats.kinesis_records;
        report.skipped += stats.skipped;
        report.filtered += stats.filtered;
    }

    pub(crate) fn record_writes(&self, stats: WriterStats) {
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        report.rows_written += stats.rows;
        report.maybe_duplicated += stats.maybe_duplicated;
    }
}

/// A running read, counted by its session until dropped.
pub(crate) struct ReadGuard(Arc<Environment>);

impl Drop for ReadGuard {
    fn drop(&mut self) {
        self.0.reads.send_modify(|n| *n -= 1);
    }
}

/// Stops what a session runs: streaming queries end their results, pipelines flush their
/// sink and commit, and enhanced fan-out consumers registered for reading are released.
#[derive(Clone)]
pub struct Stopper(watch::Sender<bool>);

impl fmt::Debug for Stopper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Stopper").field(&*self.0.borrow()).finish()
    }
}

impl Stopper {
    /// Stops every read of the session, now and from now on.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

/// What a statement did.
#[non_exhaustive]
pub enum Outcome {
    /// Flink's `CREATE TABLE` registered this Kinesis table (under its name, lowercased as
    /// DataFusion spells unquoted names).
    Created(Box<TableDefinition>),
    /// The statement's rows, as DataFusion produces them: a query's answer (which for an
    /// unbounded Kinesis table goes on until the session is stopped), the count of an
    /// `INSERT`, or nothing for other statements.
    Rows(SendableRecordBatchStream),
    /// `INSERT INTO` a Kinesis table `SELECT … FROM` an unbounded Kinesis table ran until the
    /// source ended or the session was stopped.
    Pipeline(PipelineReport),
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Created(table) => f.debug_tuple("Created").field(&table.table.name).finish(),
            Self::Rows(_) => f.write_str("Rows(..)"),
            Self::Pipeline(report) => f.debug_tuple("Pipeline").field(report).finish(),
        }
    }
}

/// Builds a [`SqlSession`].
#[derive(Default)]
pub struct SqlSessionBuilder {
    clients: Option<Arc<dyn ClientFactory>>,
    partitioners: Option<Partitioners>,
    state_dir: Option<PathBuf>,
    config: Option<SessionConfig>,
}

impl fmt::Debug for SqlSessionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlSessionBuilder")
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

impl SqlSessionBuilder {
    /// How clients are made ([`TableClients`] by default).
    pub fn clients(mut self, clients: impl ClientFactory + 'static) -> Self {
        self.clients = Some(Arc::new(clients));
        self
    }

    /// Partitioners registered in code, for tables whose `sink.partitioner` names them.
    pub fn partitioners(mut self, partitioners: Partitioners) -> Self {
        self.partitioners = Some(partitioners);
        self
    }

    /// Where pipelines (`INSERT INTO … SELECT … FROM` an unbounded Kinesis table) keep their
    /// source positions, so that a pipeline run again goes on where the last one committed.
    /// Without it they start where the source table says, every time.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// DataFusion's settings (target partitions, batch size …).
    pub fn config(mut self, config: SessionConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// The session.
    pub fn build(self) -> SqlSession {
        let (stop, _) = watch::channel(false);
        let env = Arc::new(Environment {
            clients: self.clients.unwrap_or_else(|| Arc::new(TableClients)),
            partitioners: self.partitioners.unwrap_or_default(),
            state_dir: self.state_dir,
            stop,
            report: Mutex::new(Report::default()),
            hinted: AtomicU64::new(0),
            reads: watch::channel(0).0,
        });
        let config = self
            .config
            .unwrap_or_default()
            .with_option_extension(KdsOptions::default());
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(NoHoldingBack))
            .build();
        state.table_factories_mut().insert(
            "KINESIS".to_owned(),
            Arc::new(KinesisTableFactory::new(Arc::clone(&env))),
        );
        SqlSession {
            context: SessionContext::new_with_state(state),
            env,
        }
    }
}

/// SQL over Kinesis tables.
///
/// [`execute`](Self::execute) runs one statement (split a script with
/// [`split_statements`](crate::split_statements)):
/// - Flink's `CREATE TABLE … WITH ('connector' = 'kinesis', …)` registers a [`KinesisTable`]
///   (kds-table parses it: METADATA columns, `PARTITIONED BY`, `WATERMARK FOR`, every option);
///   DataFusion's `CREATE EXTERNAL TABLE … STORED AS KINESIS` does too;
/// - `INSERT INTO k SELECT … FROM s`, both Kinesis tables and `s` read unbounded, runs as a
///   pipeline: a position of `s` is committed only after every row from before it is
///   acknowledged by `k`'s stream;
/// - anything else is DataFusion's: queries stream their rows as they are read; with
///   `SET kds.bounded = true` Kinesis tables are read as snapshots, so aggregates, sorts and
///   joins answer.
pub struct SqlSession {
    context: SessionContext,
    env: Arc<Environment>,
}

impl fmt::Debug for SqlSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlSession")
            .field("session_id", &self.context.session_id())
            .finish_non_exhaustive()
    }
}

impl Default for SqlSession {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl SqlSession {
    /// A session with clients as the tables' options describe them.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a session with other clients, partitioners, a state directory or settings.
    pub fn builder() -> SqlSessionBuilder {
        SqlSessionBuilder::default()
    }

    /// DataFusion's session, to register other tables and functions.
    pub fn context(&self) -> &SessionContext {
        &self.context
    }

    /// What stops the session's reads (from another task, or a signal handler).
    pub fn stopper(&self) -> Stopper {
        Stopper(self.env.stop.clone())
    }

    /// Stops every read of the session (as [`Stopper::stop`]) and waits until each has closed
    /// its source: acknowledged positions committed, enhanced fan-out consumers registered for
    /// reading released. Reads also close by themselves when their result is dropped (a
    /// `LIMIT` reached, a query dropped); a process should call this before it exits.
    pub async fn close(&self) {
        self.stopper().stop();
        let mut reads = self.env.reads.subscribe();
        let _ = reads.wait_for(|running| *running == 0).await;
    }

    /// What reads and writes counted since the last call.
    pub fn take_report(&self) -> Report {
        std::mem::take(&mut *self.env.report.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Registers the table Flink's `CREATE TABLE` statement `ddl` declares, under its name.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Syntax`] or [`ErrorKind::Definition`] as kds-table reports them (with
    /// line and column, or the option at fault); [`ErrorKind::Query`] when a table of that
    /// name exists.
    pub fn register(&self, ddl: &str) -> Result<TableDefinition, Error> {
        let names = self.env.partitioners.names();
        let definition = TableDefinition::parse(ddl, &names).map_err(|e| {
            let kind = match e.kind() {
                kds_table::ErrorKind::Syntax => ErrorKind::Syntax,
                _ => ErrorKind::Definition,
            };
            Error::new(kind, "").with_source(e)
        })?;
        let name = definition.table.name.clone();
        let table = KinesisTable::new(definition.clone(), Arc::clone(&self.env))?;
        // Unquoted names in DataFusion's SQL are lowercased (unless the session turns that
        // off): register the name as queries will spell it.
        let reference = self.table_reference(&name, false);
        if self
            .context
            .table_exist(reference.clone())
            .map_err(Error::datafusion)?
        {
            return Err(Error::new(
                ErrorKind::Query,
                format!("a table named `{name}` exists already"),
            ));
        }
        self.context
            .register_table(reference, Arc::new(table))
            .map_err(Error::datafusion)?;
        Ok(definition)
    }

    /// Runs one statement.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Syntax`] and [`ErrorKind::Definition`] for statements that do not parse or
    /// tables that cannot be; [`ErrorKind::Unbounded`] for a query that needs all of an
    /// unbounded table (run it after `SET kds.bounded = true`); [`ErrorKind::Query`] for what
    /// DataFusion refuses; [`ErrorKind::Stream`] and [`ErrorKind::Store`] from a pipeline.
    /// Errors while rows stream come through the stream.
    pub async fn execute(&self, statement: &str) -> Result<Outcome, Error> {
        if is_flink_create_table(statement) {
            return self
                .register(statement)
                .map(|table| Outcome::Created(Box::new(table)));
        }
        // Names of their own per statement: statements of one session may run at once.
        let Some((statement, hints)) = take_hints(statement, || {
            let n = self.env.hinted.fetch_add(1, Ordering::Relaxed);
            format!("__kds_hinted_{n}")
        })?
        else {
            return self.run(statement).await;
        };
        let registered = self.register_hinted(&hints).await;
        let outcome = match registered {
            Ok(()) => self.run(&statement).await,
            Err(error) => Err(error),
        };
        for hint in &hints {
            // Plans hold what they read: the names are not needed past planning.
            let _ = self
                .context
                .deregister_table(TableReference::bare(hint.placeholder.as_str()));
        }
        outcome
    }

    /// Registers each hinted table with its options over the table's own, under the hint's
    /// placeholder name.
    async fn register_hinted(&self, hints: &[TableHint]) -> Result<(), Error> {
        for hint in hints {
            let reference = self.table_reference(&hint.table, hint.quoted);
            let name = reference.table().to_owned();
            let provider = self
                .context
                .table_provider(reference)
                .await
                .map_err(Error::datafusion)?;
            let Some(table) = provider.downcast_ref::<KinesisTable>() else {
                return Err(Error::new(
                    ErrorKind::Query,
                    format!(
                        "table `{name}` is no Kinesis table: OPTIONS hints are for Kinesis tables"
                    ),
                ));
            };
            let mut statement = table.definition().table.clone();
            for (key, value) in &hint.options {
                match statement.options.iter_mut().find(|(k, _)| k == key) {
                    Some(option) => option.1.clone_from(value),
                    None => statement.options.push((key.clone(), value.clone())),
                }
            }
            let names = self.env.partitioners.names();
            let definition = TableDefinition::new(statement, &names).map_err(|e| {
                Error::new(
                    ErrorKind::Definition,
                    format!("the OPTIONS hint on `{name}`"),
                )
                .with_source(e)
            })?;
            let hinted = KinesisTable::new(definition, Arc::clone(&self.env))?;
            self.context
                .register_table(
                    TableReference::bare(hint.placeholder.as_str()),
                    Arc::new(hinted),
                )
                .map_err(Error::datafusion)?;
        }
        Ok(())
    }

    /// Gives an `INSERT INTO kinesis_table` without a column list the table's physical
    /// columns, as Flink does: its metadata columns are read-only, so `VALUES` and `SELECT`
    /// name only the others.
    async fn name_written_columns(&self, statement: &mut DfStatement) {
        let DfStatement::Statement(statement) = statement else {
            return;
        };
        let SqlStatement::Insert(insert) = statement.as_mut() else {
            return;
        };
        let TableObject::TableName(name) = &insert.table else {
            return;
        };
        if !insert.columns.is_empty() {
            return;
        }
        let [ObjectNamePart::Identifier(ident)] = name.0.as_slice() else {
            return;
        };
        let Ok(provider) = self
            .context
            .table_provider(self.table_reference(&ident.value, ident.quote_style.is_some()))
            .await
        else {
            return;
        };
        let Some(table) = provider.downcast_ref::<KinesisTable>() else {
            return;
        };
        let written = table.written_columns();
        if written.len() < table.schema().fields().len() {
            insert.columns = written
                .into_iter()
                .map(|column| ObjectName::from(vec![Ident::with_quote('"', column)]))
                .collect();
        }
    }

    /// The table `name` names in DataFusion's SQL: unquoted names are lowercased unless the
    /// session turns that off.
    fn table_reference(&self, name: &str, quoted: bool) -> TableReference {
        let normalize = self
            .context
            .state()
            .config_options()
            .sql_parser
            .enable_ident_normalization;
        if normalize && !quoted {
            TableReference::bare(name.to_lowercase())
        } else {
            TableReference::bare(name)
        }
    }

    /// Runs a statement with no hints left.
    async fn run(&self, statement: &str) -> Result<Outcome, Error> {
        let state = self.context.state();
        let dialect = state.config_options().sql_parser.dialect;
        let mut statement = state
            .sql_to_statement(statement, &dialect)
            .map_err(Error::datafusion)?;
        self.name_written_columns(&mut statement).await;
        let plan = state
            .statement_to_plan(statement)
            .await
            .map_err(Error::datafusion)?;
        if let Some(pipeline) = pipeline::Pipeline::plan(&state, &plan).await? {
            return pipeline.run(&self.env).await.map(Outcome::Pipeline);
        }
        let frame = self
            .context
            .execute_logical_plan(plan)
            .await
            .map_err(Error::datafusion)?;
        let rows = frame.execute_stream().await.map_err(unbounded_hint)?;
        Ok(Outcome::Rows(rows))
    }
}

/// DataFusion's refusal of an operator that needs all of an unbounded input, with the way
/// out.
fn unbounded_hint(error: datafusion::error::DataFusionError) -> Error {
    let text = error.to_string();
    if text.contains("Cannot execute pipeline breaking queries") {
        // DataFusion names the operator, then prints it whole: keep its name only.
        let operator = text
            .split_once("operator: ")
            .map(|(_, rest)| {
                rest.split(|c: char| !c.is_alphanumeric() && c != '_')
                    .next()
                    .unwrap_or_default()
            })
            .filter(|name| !name.is_empty())
            .map(|name| format!(" ({name})"))
            .unwrap_or_default();
        Error::new(
            ErrorKind::Unbounded,
            format!(
                "the query needs all of its input{operator}, and a Kinesis table it reads is \
                 unbounded: run `SET kds.bounded = true` first to query a snapshot (each shard \
                 up to its tip when the query began reading it)"
            ),
        )
    } else {
        Error::datafusion(error)
    }
}
