//! Streaming queries hand rows on as they are read: DataFusion's `FilterExec` gathers matching
//! rows until it holds a full batch (8192 by default), which over an unbounded Kinesis table
//! can mean never. [`NoHoldingBack`] replaces it, in unbounded plans only, with a filter that
//! hands on the rows of each batch at once.

use std::fmt;
use std::sync::Arc;

use arrow_array::RecordBatch;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::filter_record_batch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
    SendableRecordBatchStream,
};
use futures_util::StreamExt;

/// Replaces each `FilterExec` over an unbounded input with a [`PassingFilterExec`].
#[derive(Debug, Default)]
pub(crate) struct NoHoldingBack;

impl PhysicalOptimizerRule for NoHoldingBack {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(filter) = node.downcast_ref::<FilterExec>() else {
                return Ok(Transformed::no(node));
            };
            if !filter.input().boundedness().is_unbounded() {
                return Ok(Transformed::no(node));
            }
            Ok(Transformed::yes(Arc::new(PassingFilterExec {
                predicate: Arc::clone(filter.predicate()),
                projection: filter.projection().as_ref().map(|p| p.to_vec()),
                fetch: filter.fetch(),
                input: Arc::clone(filter.input()),
                properties: Arc::clone(filter.properties()),
            }) as Arc<dyn ExecutionPlan>))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "kds_no_holding_back"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A filter that hands on each input batch's matching rows as soon as they are found.
pub(crate) struct PassingFilterExec {
    predicate: Arc<dyn PhysicalExpr>,
    projection: Option<Vec<usize>>,
    fetch: Option<usize>,
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl fmt::Debug for PassingFilterExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PassingFilterExec")
            .field("predicate", &self.predicate)
            .field("projection", &self.projection)
            .field("fetch", &self.fetch)
            .finish_non_exhaustive()
    }
}

impl DisplayAs for PassingFilterExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PassingFilterExec: {}", self.predicate)?;
        if let Some(fetch) = self.fetch {
            write!(f, ", fetch={fetch}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for PassingFilterExec {
    fn name(&self) -> &str {
        "PassingFilterExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        f(&self.predicate)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [_] = children.as_slice() else {
            return Err(DataFusionError::Internal(
                "PassingFilterExec has one child".into(),
            ));
        };
        let input = children.swap_remove(0);
        let properties = match options.children_properties {
            ChildrenPropertiesMode::Keep => Arc::clone(&self.properties),
            // What FilterExec computes for the new input.
            ChildrenPropertiesMode::Recompute => Arc::clone(
                FilterExecBuilder::new(Arc::clone(&self.predicate), Arc::clone(&input))
                    .apply_projection(self.projection.clone())?
                    .build()?
                    .properties(),
            ),
        };
        Ok(Arc::new(Self {
            predicate: Arc::clone(&self.predicate),
            projection: self.projection.clone(),
            fetch: self.fetch,
            input,
            properties,
        }))
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn fetch(&self) -> Option<usize> {
        self.fetch
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let schema = self.schema();
        let state = Passing {
            input,
            predicate: Arc::clone(&self.predicate),
            projection: self.projection.clone(),
            left: self.fetch.unwrap_or(usize::MAX),
        };
        // Ends as soon as the last row the fetch allows is handed on, without waiting for
        // the input's next batch (which on a quiet stream may never come).
        let rows = futures_util::stream::unfold(state, |mut state| async move {
            while state.left > 0 {
                let batch = state.input.next().await?;
                let matched = batch.and_then(|batch| {
                    filter(
                        &batch,
                        state.predicate.as_ref(),
                        state.projection.as_deref(),
                    )
                });
                match matched {
                    Ok(batch) if batch.num_rows() == 0 => {}
                    Ok(batch) => {
                        let take = batch.num_rows().min(state.left);
                        state.left -= take;
                        return Some((Ok(batch.slice(0, take)), state));
                    }
                    Err(error) => {
                        state.left = 0;
                        return Some((Err(error), state));
                    }
                }
            }
            None
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, rows)))
    }
}

/// A [`PassingFilterExec`] partition's state.
struct Passing {
    input: SendableRecordBatchStream,
    predicate: Arc<dyn PhysicalExpr>,
    projection: Option<Vec<usize>>,
    /// Rows the fetch still allows.
    left: usize,
}

fn filter(
    batch: &RecordBatch,
    predicate: &dyn PhysicalExpr,
    projection: Option<&[usize]>,
) -> Result<RecordBatch> {
    let mask = predicate.evaluate(batch)?.into_array(batch.num_rows())?;
    let Some(mask) = mask.as_boolean_opt() else {
        return Err(DataFusionError::Internal(
            "a filter's predicate is not boolean".into(),
        ));
    };
    let batch = match projection {
        Some(columns) => batch.project(columns)?,
        None => batch.clone(),
    };
    Ok(filter_record_batch(&batch, mask)?)
}
