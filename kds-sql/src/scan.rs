//! The leaf of a query over a Kinesis table: each partition is one kds-stream
//! [`TableSource`] (subtask i of n), its batches handed to DataFusion as they are read.

use std::fmt;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{
    Boundedness, EmissionType, ReplaceChildrenOptions, SchedulingType,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use kds_client::Client;
use kds_stream::{DynamoDbLeaseStore, LeaseStore, MemoryLeaseStore, SourceConfig, TableSource};
use kds_table::TableDefinition;
use tokio::sync::{mpsc, watch};

use crate::error::{Error, ErrorKind};
use crate::session::Environment;

/// Reads a Kinesis table in `partitions` partitions.
pub(crate) struct KinesisScanExec {
    definition: TableDefinition,
    client: Client,
    /// The columns handed out (the table's, projected).
    schema: SchemaRef,
    projection: Option<Vec<usize>>,
    limit: Option<usize>,
    bounded: bool,
    env: Arc<Environment>,
    properties: Arc<PlanProperties>,
}

impl fmt::Debug for KinesisScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KinesisScanExec")
            .field("table", &self.definition.table.name)
            .field("projection", &self.projection)
            .field("limit", &self.limit)
            .field("bounded", &self.bounded)
            .finish_non_exhaustive()
    }
}

impl KinesisScanExec {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        definition: TableDefinition,
        client: Client,
        table_schema: SchemaRef,
        projection: Option<Vec<usize>>,
        limit: Option<usize>,
        bounded: bool,
        partitions: usize,
        env: Arc<Environment>,
    ) -> Result<Self> {
        let schema = match &projection {
            Some(columns) => Arc::new(table_schema.project(columns)?),
            None => table_schema,
        };
        let boundedness = if bounded {
            Boundedness::Bounded
        } else {
            Boundedness::Unbounded {
                requires_infinite_memory: false,
            }
        };
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            boundedness,
        )
        .with_scheduling_type(SchedulingType::Cooperative);
        Ok(Self {
            definition,
            client,
            schema,
            projection,
            limit,
            bounded,
            env,
            properties: Arc::new(properties),
        })
    }
}

impl DisplayAs for KinesisScanExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KinesisScanExec: table={}, stream={}, partitions={}, bounded={}",
            self.definition.table.name,
            self.definition.options.stream,
            self.properties.partitioning.partition_count(),
            self.bounded
        )?;
        if let kds_table::StartPosition::AtTimestamp(millis) = self.definition.options.source.start
        {
            write!(f, ", start=AT_TIMESTAMP({millis})")?;
        }
        if let Some(limit) = self.limit {
            write!(f, ", limit={limit}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for KinesisScanExec {
    fn name(&self) -> &str {
        "KinesisScanExec"
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
        let partitions = self.properties.partitioning.partition_count();
        if partition >= partitions {
            return Err(DataFusionError::Internal(format!(
                "KinesisScanExec has {partitions} partitions, not {}",
                partition + 1
            )));
        }
        let mut config = SourceConfig::default();
        let shared = self.definition.options.source.lease_table.is_some();
        if !shared {
            config.subtask = partition;
            config.subtasks = partitions;
        }
        config.projection = self.projection.clone();
        config.bounded = self.bounded;
        let read = PartitionRead {
            definition: self.definition.clone(),
            client: self.client.clone(),
            // Each partition of each execution starts where the table says: a store shared by
            // the partitions would make all but the first see a later start (their shards
            // would begin at TRIM_HORIZON), and one kept across executions would resume. With
            // a lease table, the partitions are readers that share it.
            store: (!shared).then(|| Arc::new(MemoryLeaseStore::new()) as Arc<dyn LeaseStore>),
            config,
            limit: self.limit,
            env: Arc::clone(&self.env),
        };
        // Not a task tied to the stream: when the stream is dropped (a LIMIT reached above,
        // a failed query) the read notices and closes its source, which releases an enhanced
        // fan-out consumer it registered.
        let (tx, rx) = mpsc::channel::<Result<RecordBatch>>(2);
        let running = self.env.read_started();
        tokio::spawn(async move {
            let _running = running;
            if let Err(error) = read.run(&tx).await {
                let _ = tx.send(Err(error.into())).await;
            }
        });
        let batches = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|batch| (batch, rx))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            batches,
        )))
    }
}

/// One partition's reading.
pub(crate) struct PartitionRead {
    pub(crate) definition: TableDefinition,
    pub(crate) client: Client,
    /// `None`: the table's lease table (`scan.lease.table`).
    pub(crate) store: Option<Arc<dyn LeaseStore>>,
    pub(crate) config: SourceConfig,
    pub(crate) limit: Option<usize>,
    pub(crate) env: Arc<Environment>,
}

impl PartitionRead {
    /// Reads until the source ends, the limit is reached, `tx`'s receiver is gone or the
    /// session is stopped; a batch is acknowledged once handed over. The source is closed in
    /// every case, so that an enhanced fan-out consumer it registered is released.
    async fn run(self, tx: &mpsc::Sender<Result<RecordBatch>>) -> Result<(), Error> {
        let mut stop = self.env.stop_signal();
        let cancelled = async {
            tokio::select! {
                () = stopped(&mut stop) => {}
                () = tx.closed() => {}
            }
        };
        let store = match self.store {
            Some(store) => store,
            None => lease_table_store(&self.definition, &self.client).await?,
        };
        let opened = open_unless(
            TableSource::open(&self.definition, self.client, store, self.config),
            cancelled,
            &self.env,
        )
        .await?;
        let Some(mut source) = opened else {
            return Ok(());
        };
        let mut left = self.limit.unwrap_or(usize::MAX);
        let result = loop {
            if left == 0 {
                break Ok(());
            }
            let next = tokio::select! {
                biased;
                () = stopped(&mut stop) => break Ok(()),
                () = tx.closed() => break Ok(()),
                next = source.next() => next,
            };
            let batch = match next {
                Ok(Some(batch)) => batch,
                Ok(None) => break Ok(()),
                Err(error) => break Err(Error::stream(error)),
            };
            let whole = batch.rows.num_rows() <= left;
            let rows = if whole {
                batch.rows
            } else {
                batch.rows.slice(0, left)
            };
            left -= rows.num_rows();
            if tx.send(Ok(rows)).await.is_err() {
                break Ok(());
            }
            // A batch cut by the limit is not acknowledged: its position is not committed
            // (to a shared lease table, where other readers would skip the rows left out).
            if whole && let Err(error) = source.ack(batch.token) {
                break Err(Error::stream(error));
            }
        };
        let closed = source.close().await;
        result?;
        self.env.record(closed.map_err(Error::stream)?);
        Ok(())
    }
}

/// Opens a source unless `cancelled` resolves first (`None` then). Opening may register an
/// enhanced fan-out consumer: a cancelled open is let finish, and the source closed, which
/// releases it.
pub(crate) async fn open_unless(
    open: impl Future<Output = Result<TableSource, kds_stream::Error>>,
    cancelled: impl Future<Output = ()>,
    env: &Environment,
) -> Result<Option<TableSource>, Error> {
    tokio::pin!(open);
    tokio::select! {
        opened = &mut open => opened.map(Some).map_err(Error::stream),
        () = cancelled => {
            if let Ok(source) = open.await {
                env.record(source.close().await.map_err(Error::stream)?);
            }
            Ok(None)
        }
    }
}

/// The DynamoDB lease store of a table that declares `scan.lease.table`.
pub(crate) async fn lease_table_store(
    definition: &TableDefinition,
    client: &Client,
) -> Result<Arc<dyn LeaseStore>, Error> {
    match DynamoDbLeaseStore::for_table(definition, client).await {
        Ok(Some(store)) => Ok(Arc::new(store)),
        Ok(None) => Err(Error::new(
            ErrorKind::Definition,
            format!(
                "table `{}` declares no `scan.lease.table`",
                definition.table.name
            ),
        )),
        Err(error) => Err(Error::stream(error)),
    }
}

/// Resolves once the session is stopped (at once if it is already).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|stopped| *stopped).await.is_err() {
        // The session is gone: nothing will stop this read but its consumer.
        std::future::pending::<()>().await;
    }
}
