//! `INSERT INTO sink SELECT … FROM source` between Kinesis tables, the source read unbounded:
//! a loop of our own, not DataFusion's pull, because positions may be committed only for rows
//! the sink's stream acknowledged. DataFusion plans the `SELECT` once over a one-batch leaf
//! and evaluates it on each batch the source reads; the sink is flushed every second (and
//! when the source ends or the session stops), and only then are the source's batches
//! acknowledged and their positions committed. A pipeline killed at any point and run again
//! with the same state directory writes every source row at least once: what it writes
//! again comes from after the last commit.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::TableType;
use datafusion::datasource::provider_as_source;
use datafusion::datasource::source_as_provider;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{DmlStatement, Expr, LogicalPlan, TableScan, WriteOp};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{
    Boundedness, EmissionType, ReplaceChildrenOptions, reset_plan_states,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream, collect,
};
use kds_stream::{
    FileLeaseStore, LeaseStore, MemoryLeaseStore, SinkConfig, SourceConfig, SourceStats, TableSink,
    TableSource, WriterStats,
};
use tokio::time::Instant;

use crate::error::{Error, ErrorKind};
use crate::scan::{lease_table_store, open_unless, stopped};
use crate::session::{Environment, KdsOptions};
use crate::table::KinesisTable;

/// How often a pipeline flushes its sink and commits its source.
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// What a pipeline did.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PipelineReport {
    /// Rows the source read.
    pub rows_in: u64,
    /// Rows the query gave the sink.
    pub rows_out: u64,
    /// Times the sink was flushed and the source's positions committed.
    pub commits: u64,
    /// The source's counters (skipped and filtered records among them).
    pub source: SourceStats,
    /// The sink's counters (rows possibly written twice among them).
    pub sink: WriterStats,
}

/// A planned pipeline.
pub(crate) struct Pipeline {
    sink: Arc<dyn TableProvider>,
    source: Arc<dyn TableProvider>,
    /// The source's scan: its projection and filters.
    scan: TableScan,
    /// The `SELECT`, over the slot.
    plan: Arc<dyn ExecutionPlan>,
    slot: Slot,
    task: Arc<TaskContext>,
}

impl Pipeline {
    /// The pipeline `plan` is, if it is one: an `INSERT INTO` a Kinesis table whose input
    /// reads one Kinesis table, unbounded.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unbounded`] when the input does more than filter and project (what needs
    /// all of an unbounded input cannot run), or reads more than one Kinesis table.
    pub(crate) async fn plan(
        state: &SessionState,
        plan: &LogicalPlan,
    ) -> Result<Option<Self>, Error> {
        let LogicalPlan::Dml(DmlStatement {
            target,
            op: WriteOp::Insert(InsertOp::Append),
            input,
            ..
        }) = plan
        else {
            return Ok(None);
        };
        let sink = source_as_provider(target).map_err(Error::datafusion)?;
        if sink.downcast_ref::<KinesisTable>().is_none() {
            return Ok(None);
        }
        let bounded = state
            .config_options()
            .extensions
            .get::<KdsOptions>()
            .is_some_and(|o| o.bounded);
        if bounded || !reads_kinesis(input)? {
            // DataFusion runs it: a bounded input ends, and the sink flushes before the count.
            return Ok(None);
        }
        // Checked after optimization, subqueries included: what runs is what is checked.
        let optimized = state.optimize(input).map_err(Error::datafusion)?;
        let mut kinesis_scans = 0usize;
        let mut stateful: Option<String> = None;
        optimized
            .apply_with_subqueries(|node| {
                match node {
                    LogicalPlan::TableScan(scan) => {
                        if is_kinesis(scan) {
                            kinesis_scans += 1;
                        } else {
                            stateful.get_or_insert_with(|| {
                                format!("reading table `{}` too", scan.table_name)
                            });
                        }
                    }
                    LogicalPlan::Projection(_)
                    | LogicalPlan::Filter(_)
                    | LogicalPlan::SubqueryAlias(_) => {}
                    other => {
                        stateful.get_or_insert_with(|| other.display().to_string());
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
            .map_err(Error::datafusion)?;
        if let Some(node) = stateful {
            return Err(Error::new(
                ErrorKind::Unbounded,
                format!(
                    "INSERT … SELECT from an unbounded Kinesis table may filter and project \
                     the rows of that one table; `{node}` needs more: run \
                     `SET kds.bounded = true` first to write the result over a snapshot"
                ),
            ));
        }
        if kinesis_scans != 1 {
            return Err(Error::new(
                ErrorKind::Unbounded,
                "INSERT … SELECT reads one unbounded Kinesis table; run `SET kds.bounded = true` \
                 first to combine snapshots",
            ));
        }
        let slot = Slot::default();
        let mut found: Option<TableScan> = None;
        let over_slot = optimized
            .transform_up(|node| match node {
                LogicalPlan::TableScan(scan) if is_kinesis(&scan) => {
                    let provider = source_as_provider(&scan.source)?;
                    let mut replaced = scan.clone();
                    replaced.source = provider_as_source(Arc::new(SlotTable {
                        schema: provider.schema(),
                        slot: slot.clone(),
                    }));
                    found = Some(scan);
                    Ok(Transformed::yes(LogicalPlan::TableScan(replaced)))
                }
                other => Ok(Transformed::no(other)),
            })
            .map_err(Error::datafusion)?
            .data;
        let scan = found.ok_or_else(|| {
            Error::new(
                ErrorKind::Query,
                "the optimized query no longer reads the table",
            )
        })?;
        let source = source_as_provider(&scan.source).map_err(Error::datafusion)?;
        // One partition, no repartitioning: the plan runs once per batch.
        let mut state = state.clone();
        state.config_mut().options_mut().execution.target_partitions = 1;
        let plan = state
            .create_physical_plan(&over_slot)
            .await
            .map_err(Error::datafusion)?;
        Ok(Some(Self {
            sink,
            source,
            scan,
            plan,
            slot,
            task: state.task_ctx(),
        }))
    }

    /// Runs until the source ends (it does not, unless its shards close) or the session is
    /// stopped; then flushes the sink and commits.
    pub(crate) async fn run(self, env: &Arc<Environment>) -> Result<PipelineReport, Error> {
        let sink_table = self
            .sink
            .downcast_ref::<KinesisTable>()
            .expect("planned over a Kinesis sink");
        let source_table = self
            .source
            .downcast_ref::<KinesisTable>()
            .expect("planned over a Kinesis source");
        let source_definition = source_table.scan_definition(&self.scan.filters);
        let sink_definition = sink_table.definition();
        let source_client = env.clients.client(&source_definition).await?;
        let store: Arc<dyn LeaseStore> = match &env.state_dir {
            // Pipelines in any number of processes share the source's shards.
            _ if source_definition.options.source.lease_table.is_some() => {
                lease_table_store(&source_definition, &source_client).await?
            }
            Some(dir) => Arc::new(
                FileLeaseStore::open(
                    dir,
                    &store_name(&[
                        &source_definition.table.name,
                        &source_definition.options.stream,
                        "into",
                        &sink_definition.table.name,
                    ]),
                )
                .map_err(Error::stream)?,
            ),
            None => Arc::new(MemoryLeaseStore::new()),
        };
        let mut config = SourceConfig::default();
        config.projection = self.scan.projection.clone();
        let sink_client = env.clients.client(sink_definition).await?;
        let mut sink = TableSink::open(
            sink_definition,
            sink_client,
            &env.partitioners,
            SinkConfig::default(),
        )
        .await
        .map_err(Error::stream)?;
        let mut stop = env.stop_signal();
        let opened = open_unless(
            TableSource::open(&source_definition, source_client, store, config),
            stopped(&mut stop),
            env,
        )
        .await?;
        let Some(mut source) = opened else {
            let written = sink.close().await.map_err(Error::stream)?;
            env.record_writes(written);
            return Ok(PipelineReport {
                sink: written,
                ..PipelineReport::default()
            });
        };
        let mut report = PipelineReport::default();
        let mut pending = Vec::new();
        let mut next_commit = Instant::now() + COMMIT_INTERVAL;
        let result: Result<(), Error> = async {
            loop {
                let next = tokio::select! {
                    biased;
                    () = stopped(&mut stop) => break,
                    () = tokio::time::sleep_until(next_commit), if !pending.is_empty() => {
                        commit(&mut sink, &mut source, &mut pending, &mut report).await?;
                        next_commit = Instant::now() + COMMIT_INTERVAL;
                        continue;
                    }
                    next = source.next() => next.map_err(Error::stream)?,
                };
                let Some(batch) = next else { break };
                report.rows_in += batch.rows.num_rows() as u64;
                self.slot.put(batch.rows);
                let plan = reset_plan_states(Arc::clone(&self.plan)).map_err(Error::datafusion)?;
                let output = collect(plan, Arc::clone(&self.task))
                    .await
                    .map_err(Error::datafusion)?;
                for rows in &output {
                    sink.write(rows).await.map_err(Error::stream)?;
                    report.rows_out += rows.num_rows() as u64;
                }
                pending.push(batch.token);
                if Instant::now() >= next_commit {
                    commit(&mut sink, &mut source, &mut pending, &mut report).await?;
                    next_commit = Instant::now() + COMMIT_INTERVAL;
                }
            }
            commit(&mut sink, &mut source, &mut pending, &mut report).await
        }
        .await;
        // On an error, what was acknowledged stays committed and nothing after it.
        let closed = source.close().await;
        let written = sink.close().await;
        if let Ok(stats) = &closed {
            report.source = *stats;
            env.record(*stats);
        }
        if let Ok(stats) = &written {
            report.sink = *stats;
            env.record_writes(*stats);
        }
        result?;
        closed.map_err(Error::stream)?;
        written.map_err(Error::stream)?;
        Ok(report)
    }
}

/// The name of a pipeline's lease file: its source table and stream and its sink, with what a
/// file name should not hold replaced by `_`.
fn store_name(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|part| {
            part.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Flushes the sink, then acknowledges the batches written before the flush and commits.
async fn commit(
    sink: &mut TableSink,
    source: &mut TableSource,
    pending: &mut Vec<kds_stream::AckToken>,
    report: &mut PipelineReport,
) -> Result<(), Error> {
    sink.flush().await.map_err(Error::stream)?;
    for token in pending.drain(..) {
        source.ack(token).map_err(Error::stream)?;
    }
    source.commit().await.map_err(Error::stream)?;
    report.commits += 1;
    Ok(())
}

/// Whether `plan` reads a Kinesis table anywhere (subqueries included).
fn reads_kinesis(plan: &LogicalPlan) -> Result<bool, Error> {
    let mut found = false;
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && is_kinesis(scan)
        {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(Error::datafusion)?;
    Ok(found)
}

fn is_kinesis(scan: &TableScan) -> bool {
    source_as_provider(&scan.source).is_ok_and(|p| p.downcast_ref::<KinesisTable>().is_some())
}

/// The batch the plan reads next.
#[derive(Clone, Default)]
struct Slot(Arc<Mutex<Option<RecordBatch>>>);

impl Slot {
    fn put(&self, batch: RecordBatch) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(batch);
    }

    fn take(&self) -> Option<RecordBatch> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// The source table in the pipeline's plan: the batch in the slot, once.
struct SlotTable {
    schema: SchemaRef,
    slot: Slot,
}

impl fmt::Debug for SlotTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotTable").finish_non_exhaustive()
    }
}

#[async_trait]
impl TableProvider for SlotTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = match projection {
            Some(columns) => Arc::new(self.schema.project(columns)?),
            None => Arc::clone(&self.schema),
        };
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(Arc::new(SlotExec {
            schema,
            slot: self.slot.clone(),
            properties: Arc::new(properties),
        }))
    }
}

/// Hands out the batch in the slot.
struct SlotExec {
    schema: SchemaRef,
    slot: Slot,
    properties: Arc<PlanProperties>,
}

impl fmt::Debug for SlotExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotExec").finish_non_exhaustive()
    }
}

impl DisplayAs for SlotExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SlotExec: the batch the Kinesis source read")
    }
}

impl ExecutionPlan for SlotExec {
    fn name(&self) -> &str {
        "SlotExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "SlotExec has one partition, not {}",
                partition + 1
            )));
        }
        let batch = self.slot.take();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            futures_util::stream::iter(batch.map(Ok)),
        )))
    }
}
