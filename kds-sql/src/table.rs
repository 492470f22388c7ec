//! A Kinesis table in DataFusion: [`KinesisTable`] scans it ([`KinesisScanExec`](crate::scan))
//! and appends to it (`INSERT INTO`), and [`KinesisTableFactory`] makes one from DataFusion's
//! own `CREATE EXTERNAL TABLE … STORED AS KINESIS`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow_schema::{DataType as ArrowType, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider, TableProviderFactory};
use datafusion::common::ScalarValue;
use datafusion::datasource::TableType;
use datafusion::datasource::sink::DataSinkExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{
    BinaryExpr, CreateExternalTable, Expr, Operator, TableProviderFilterPushDown,
};
use datafusion::physical_plan::ExecutionPlan;
use kds_proto::model::ListShardsInput;
use kds_proto::types::StreamName;
use kds_table::ddl::{Column, ColumnKind, CreateTable, DataType, Field};
use kds_table::{MetadataKey, ReaderKind, StartPosition, TableDefinition};

use crate::error::{Error, ErrorKind};
use crate::scan::KinesisScanExec;
use crate::session::{Environment, KdsOptions};
use crate::sink::KinesisSink;

/// A Kinesis table declared with Flink's DDL, as DataFusion scans and appends to it.
///
/// Its columns are the table's physical and metadata columns. A scan reads the stream as the
/// table's `scan.*` options say, decoding only the columns the query uses, in
/// `min(target_partitions, shards)` partitions (one with enhanced fan-out, which registers one
/// consumer); `SET kds.bounded = true` reads a snapshot instead (what the stream held when the
/// query started). A filter `timestamp >= X` (or `>`) on the `timestamp` metadata column
/// starts reading at X when the table sets no `scan.stream.initpos`. With
/// `scan.lease.table`, each partition of an unbounded scan is a reader that shares the shards
/// through that DynamoDB lease table with the other partitions and with readers in other
/// processes. `INSERT INTO` appends through kds-stream's sink.
pub struct KinesisTable {
    definition: TableDefinition,
    schema: SchemaRef,
    /// What `INSERT` puts in the metadata columns, which are not written (any value of the
    /// column's type that is not NULL: NOT NULL columns refuse NULL).
    metadata_defaults: HashMap<String, Expr>,
    /// The column of the `timestamp` metadata key, if the table declares one.
    timestamp_column: Option<String>,
    env: Arc<Environment>,
}

impl fmt::Debug for KinesisTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The definition's Debug output redacts secrets.
        f.debug_struct("KinesisTable")
            .field("definition", &self.definition)
            .finish_non_exhaustive()
    }
}

impl KinesisTable {
    pub(crate) fn new(definition: TableDefinition, env: Arc<Environment>) -> Result<Self, Error> {
        if let Some(column) = definition
            .table
            .columns
            .iter()
            .find(|c| matches!(c.kind, ColumnKind::Computed { .. }))
        {
            return Err(Error::new(
                ErrorKind::Definition,
                format!(
                    "column `{}`: computed columns are evaluated by queries here; select the \
                     expression in the query (or a view) instead of declaring it in the table",
                    column.name
                ),
            ));
        }
        let timestamp_column = definition
            .metadata
            .iter()
            .find(|(_, key)| *key == MetadataKey::Timestamp)
            .map(|(index, _)| definition.table.columns[*index].name.clone());
        let schema = Arc::new(definition.arrow_schema());
        let mut metadata_defaults = HashMap::new();
        for (index, _) in &definition.metadata {
            let name = &definition.table.columns[*index].name;
            let field = schema.field_with_name(name).map_err(|e| {
                Error::new(ErrorKind::Definition, format!("column `{name}`")).with_source(e)
            })?;
            let value = ScalarValue::new_default(field.data_type()).map_err(|e| {
                Error::new(ErrorKind::Definition, format!("column `{name}`")).with_source(e)
            })?;
            metadata_defaults.insert(name.clone(), Expr::Literal(value, None));
        }
        Ok(Self {
            schema,
            metadata_defaults,
            definition,
            timestamp_column,
            env,
        })
    }

    /// The columns an `INSERT` writes: the physical ones, in order (metadata columns are
    /// read-only).
    pub(crate) fn written_columns(&self) -> Vec<&str> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .filter(|name| !self.metadata_defaults.contains_key(*name))
            .collect()
    }

    /// The table as declared.
    pub fn definition(&self) -> &TableDefinition {
        &self.definition
    }

    /// Whether the statement set where reading starts.
    fn start_is_set(&self) -> bool {
        self.definition
            .table
            .options
            .iter()
            .any(|(key, _)| key == "scan.stream.initpos")
    }

    /// The latest start that `filters` allow on the `timestamp` metadata column, in epoch
    /// milliseconds.
    fn start_from_filters(&self, filters: &[Expr]) -> Option<i64> {
        let column = self.timestamp_column.as_deref()?;
        filters
            .iter()
            .filter_map(|filter| lower_bound(filter, column))
            .max()
    }

    /// The definition a scan reads: the filters' start when the statement set none.
    pub(crate) fn scan_definition(&self, filters: &[Expr]) -> TableDefinition {
        let mut definition = self.definition.clone();
        if !self.start_is_set()
            && let Some(start) = self.start_from_filters(filters)
        {
            definition.options.source.start = StartPosition::AtTimestamp(start);
        }
        definition
    }
}

/// `column >= X`, `column > X`, `X <= column` or `X < column` with X a timestamp: X in epoch
/// milliseconds (rounded down: reading starts at or before it, and the filter still applies).
fn lower_bound(filter: &Expr, column: &str) -> Option<i64> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = filter else {
        return None;
    };
    let (value, op) = match (left.as_ref(), right.as_ref()) {
        (Expr::Column(c), Expr::Literal(value, _)) if c.name == column => (value, *op),
        (Expr::Literal(value, _), Expr::Column(c)) if c.name == column => (value, op.swap()?),
        _ => return None,
    };
    if !matches!(op, Operator::GtEq | Operator::Gt) {
        return None;
    }
    match value {
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1000),
        ScalarValue::TimestampMillisecond(Some(v), _) => Some(*v),
        ScalarValue::TimestampMicrosecond(Some(v), _) => Some(v.div_euclid(1000)),
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(v.div_euclid(1_000_000)),
        _ => None,
    }
}

#[async_trait]
impl TableProvider for KinesisTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.metadata_defaults.get(column)
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // A start from a filter only skips what the filter drops: DataFusion still applies it.
        Ok(filters
            .iter()
            .map(|filter| match &self.timestamp_column {
                Some(column) if lower_bound(filter, column).is_some() => {
                    TableProviderFilterPushDown::Inexact
                }
                _ => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let bounded = state
            .config_options()
            .extensions
            .get::<KdsOptions>()
            .is_some_and(|options| options.bounded);
        let mut definition = self.scan_definition(filters);
        if bounded {
            // A snapshot reads every shard itself and commits nothing: it takes no lease.
            definition.options.source.lease_table = None;
        }
        let client = self.env.clients.client(&definition).await?;
        let partitions = match definition.options.source.reader {
            // One consumer registration per table read.
            ReaderKind::EnhancedFanOut(_) => 1,
            _ => {
                let stream = StreamName::new(definition.options.stream.clone()).map_err(|e| {
                    Error::new(
                        ErrorKind::Definition,
                        format!("stream `{}`", definition.options.stream),
                    )
                    .with_source(e)
                })?;
                let mut list = ListShardsInput::new();
                list.stream_name = Some(stream);
                let shards = client.list_all_shards(&list).await.map_err(|e| {
                    Error::new(
                        ErrorKind::Stream,
                        format!("listing the shards of `{}`", definition.options.stream),
                    )
                    .with_source(e)
                })?;
                let readable = shards.iter().filter(|s| bounded || !s.is_closed()).count();
                readable.clamp(1, state.config().target_partitions().max(1))
            }
        };
        Ok(Arc::new(KinesisScanExec::new(
            definition,
            client,
            Arc::clone(&self.schema),
            projection.cloned(),
            limit,
            bounded,
            partitions,
            Arc::clone(&self.env),
        )?))
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return Err(DataFusionError::Plan(format!(
                "a Kinesis table is only appended to: `{insert_op}` is not possible on `{}`",
                self.definition.table.name
            )));
        }
        let sink = KinesisSink::new(
            self.definition.clone(),
            Arc::clone(&self.schema),
            Arc::clone(&self.env),
        );
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }
}

/// Makes [`KinesisTable`]s for DataFusion's
/// `CREATE [UNBOUNDED] EXTERNAL TABLE name (columns) STORED AS KINESIS [PARTITIONED BY (…)]
/// OPTIONS ('aws.region' 'eu-west-1', 'format' 'json', …) LOCATION 'kinesis://stream'`.
///
/// The options are the table's `WITH` options (`connector` and `stream` come from the
/// statement); the location names the stream (`kinesis://name`, or the stream's ARN). Columns
/// are physical columns; metadata columns need Flink's `CREATE TABLE`.
pub struct KinesisTableFactory {
    env: Arc<Environment>,
}

impl fmt::Debug for KinesisTableFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KinesisTableFactory")
            .finish_non_exhaustive()
    }
}

impl KinesisTableFactory {
    pub(crate) fn new(env: Arc<Environment>) -> Self {
        Self { env }
    }
}

#[async_trait]
impl TableProviderFactory for KinesisTableFactory {
    async fn create(
        &self,
        _state: &dyn Session,
        cmd: &CreateExternalTable,
    ) -> Result<Arc<dyn TableProvider>> {
        let table = external_to_create_table(cmd)?;
        let names = self.env.partitioners.names();
        let definition = TableDefinition::new(table, &names).map_err(|e| {
            Error::new(
                ErrorKind::Definition,
                format!("table `{}`", cmd.name.table()),
            )
            .with_source(e)
        })?;
        Ok(Arc::new(KinesisTable::new(
            definition,
            Arc::clone(&self.env),
        )?))
    }
}

/// The Flink statement equivalent to a `CREATE EXTERNAL TABLE … STORED AS KINESIS`.
fn external_to_create_table(cmd: &CreateExternalTable) -> Result<CreateTable, Error> {
    let definition_error = |message: String| Error::new(ErrorKind::Definition, message);
    let [location] = cmd.locations.as_slice() else {
        return Err(definition_error(format!(
            "table `{}`: a Kinesis table reads one stream; LOCATION names {}",
            cmd.name.table(),
            cmd.locations.len()
        )));
    };
    let mut options: Vec<(String, String)> = vec![("connector".into(), "kinesis".into())];
    if location.starts_with("arn:") {
        options.push(("stream.arn".into(), location.clone()));
    } else {
        let name = location.strip_prefix("kinesis://").unwrap_or(location);
        options.push(("stream".into(), name.trim_end_matches('/').to_owned()));
    }
    // DataFusion keeps the keys lowercased, and puts `format.` before a key with no dot.
    let mut given: Vec<(String, String)> = cmd
        .options
        .iter()
        .map(|(key, value)| {
            let key = match key.strip_prefix("format.") {
                Some(rest) if !rest.contains('.') => rest.to_owned(),
                _ => key.clone(),
            };
            (key, value.clone())
        })
        .collect();
    given.sort();
    if let Some((key, _)) = given
        .iter()
        .find(|(key, _)| key == "connector" || key == "stream" || key == "stream.arn")
    {
        return Err(definition_error(format!(
            "table `{}`: option `{key}` comes from STORED AS and LOCATION",
            cmd.name.table()
        )));
    }
    options.extend(given);
    let columns = cmd
        .schema
        .fields()
        .iter()
        .map(|field| {
            let data_type = flink_type(field.data_type()).ok_or_else(|| {
                definition_error(format!(
                    "column `{}`: type {} has no Flink SQL type",
                    field.name(),
                    field.data_type()
                ))
            })?;
            Ok(Column {
                name: field.name().clone(),
                field: Some(Field {
                    data_type,
                    nullable: field.is_nullable(),
                }),
                kind: ColumnKind::Physical,
                comment: None,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(CreateTable {
        name: cmd.name.table().to_owned(),
        columns,
        watermark: None,
        primary_key: None,
        partitioned_by: cmd.table_partition_cols.clone(),
        options,
        comment: None,
    })
}

/// The Flink SQL type DataFusion's SQL type became (DataFusion maps `VARCHAR` to Utf8 and
/// `TIMESTAMP` to nanoseconds).
fn flink_type(arrow: &ArrowType) -> Option<DataType> {
    let field = |f: &arrow_schema::Field| {
        Some(Field {
            data_type: flink_type(f.data_type())?,
            nullable: f.is_nullable(),
        })
    };
    Some(match arrow {
        ArrowType::Boolean => DataType::Boolean,
        ArrowType::Int8 => DataType::TinyInt,
        ArrowType::Int16 => DataType::SmallInt,
        ArrowType::Int32 => DataType::Int,
        ArrowType::Int64 => DataType::BigInt,
        ArrowType::Float32 => DataType::Float,
        ArrowType::Float64 => DataType::Double,
        ArrowType::Decimal128(p, s) => DataType::Decimal(u32::from(*p), u32::try_from(*s).ok()?),
        ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View => {
            DataType::Varchar(u32::MAX >> 1)
        }
        ArrowType::Binary | ArrowType::LargeBinary | ArrowType::BinaryView => {
            DataType::Varbinary(u32::MAX >> 1)
        }
        ArrowType::Date32 => DataType::Date,
        ArrowType::Time32(TimeUnit::Second) => DataType::Time(0),
        ArrowType::Time32(_) => DataType::Time(3),
        ArrowType::Time64(TimeUnit::Microsecond) => DataType::Time(6),
        ArrowType::Time64(_) => DataType::Time(9),
        ArrowType::Timestamp(unit, zone) => {
            let precision = match unit {
                TimeUnit::Second => 0,
                TimeUnit::Millisecond => 3,
                TimeUnit::Microsecond => 6,
                TimeUnit::Nanosecond => 9,
            };
            if zone.is_some() {
                DataType::TimestampLtz(precision)
            } else {
                DataType::Timestamp(precision)
            }
        }
        ArrowType::List(element) | ArrowType::LargeList(element) => {
            DataType::Array(Box::new(field(element)?))
        }
        ArrowType::Struct(fields) => DataType::Row(
            fields
                .iter()
                .map(|f| Some((f.name().clone(), field(f)?)))
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    })
}
