//! `INSERT INTO kinesis_table …` as DataFusion runs it: the rows of the input, written by
//! kds-stream's [`TableSink`] and flushed before the statement reports its count.

use std::fmt;
use std::sync::Arc;

use arrow_schema::SchemaRef;
use async_trait::async_trait;
use datafusion::datasource::sink::DataSink;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, SendableRecordBatchStream};
use futures_util::StreamExt;
use kds_stream::{SinkConfig, TableSink};
use kds_table::TableDefinition;

use crate::error::Error;
use crate::session::Environment;

/// Appends rows to a Kinesis table.
pub(crate) struct KinesisSink {
    definition: TableDefinition,
    schema: SchemaRef,
    env: Arc<Environment>,
}

impl KinesisSink {
    pub(crate) fn new(
        definition: TableDefinition,
        schema: SchemaRef,
        env: Arc<Environment>,
    ) -> Self {
        Self {
            definition,
            schema,
            env,
        }
    }
}

impl fmt::Debug for KinesisSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KinesisSink")
            .field("table", &self.definition.table.name)
            .finish_non_exhaustive()
    }
}

impl DisplayAs for KinesisSink {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KinesisSink: table={}, stream={}",
            self.definition.table.name, self.definition.options.stream
        )
    }
}

#[async_trait]
impl DataSink for KinesisSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        mut data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> Result<u64> {
        let client = self.env.clients.client(&self.definition).await?;
        let mut sink = TableSink::open(
            &self.definition,
            client,
            &self.env.partitioners,
            SinkConfig::default(),
        )
        .await
        .map_err(Error::stream)?;
        let mut rows = 0u64;
        let mut failed = None;
        while let Some(batch) = data.next().await {
            let written = match batch {
                Ok(batch) => sink.write(&batch).await.map(|()| batch.num_rows() as u64),
                Err(error) => {
                    failed = Some(error);
                    break;
                }
            };
            match written {
                Ok(n) => rows += n,
                Err(error) => {
                    failed = Some(Error::stream(error).into());
                    break;
                }
            }
        }
        // Every row given is acknowledged by Kinesis before the count (or the input's error)
        // is reported: what was written before a failure is not left half sent.
        let closed = sink.close().await;
        if let Ok(stats) = &closed {
            self.env.record_writes(*stats);
        }
        if let Some(error) = failed {
            return Err(error);
        }
        closed.map_err(Error::stream)?;
        Ok(rows)
    }
}
