//! A whole table definition: the statement's columns checked against Kinesis (metadata keys,
//! partition key columns) and its options checked into [`TableOptions`].

use std::collections::{BTreeMap, HashSet};

use crate::ddl::{
    Column, ColumnKind, CreateTable, DataType, Field, MAX_TYPE_DEPTH, parse_create_table,
};
use crate::error::{Error, ErrorKind};
use crate::options::TableOptions;

/// The record fields a metadata column can read.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetadataKey {
    /// `timestamp`: the record's approximate arrival time, `TIMESTAMP_LTZ(3) NOT NULL`.
    Timestamp,
    /// `shard-id`: the shard read from, `VARCHAR(128) NOT NULL`.
    ShardId,
    /// `sequence-number`: the record's sequence number, `VARCHAR(128) NOT NULL`.
    SequenceNumber,
    /// `partition-key`: the user record's partition key, `VARCHAR(256) NOT NULL`.
    PartitionKey,
    /// `sub-sequence-number`: the user record's position in a KPL aggregate (0 otherwise),
    /// `BIGINT NOT NULL`.
    SubSequenceNumber,
}

impl MetadataKey {
    /// Every key with its name.
    pub const ALL: &'static [(&'static str, Self)] = &[
        ("timestamp", Self::Timestamp),
        ("shard-id", Self::ShardId),
        ("sequence-number", Self::SequenceNumber),
        ("partition-key", Self::PartitionKey),
        ("sub-sequence-number", Self::SubSequenceNumber),
    ];

    fn accepts(self, data_type: &DataType) -> bool {
        match self {
            Self::Timestamp => matches!(
                data_type,
                DataType::TimestampLtz(_) | DataType::Timestamp(_)
            ),
            Self::ShardId | Self::SequenceNumber | Self::PartitionKey => {
                matches!(data_type, DataType::Varchar(_) | DataType::Char(_))
            }
            Self::SubSequenceNumber => matches!(data_type, DataType::BigInt),
        }
    }
}

/// A Kinesis table: its columns and its checked options.
///
/// Its Debug output prints no secrets: the statement's options and the credentials print
/// secret values as `<redacted>`.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub struct TableDefinition {
    /// The statement as parsed.
    pub table: CreateTable,
    /// The metadata columns: column index and key.
    pub metadata: Vec<(usize, MetadataKey)>,
    /// The checked options.
    pub options: TableOptions,
}

/// Types whose values have one string form, as partition keys need (Flink's rule).
fn has_string_form(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Char(_)
            | DataType::Varchar(_)
            | DataType::Boolean
            | DataType::TinyInt
            | DataType::SmallInt
            | DataType::Int
            | DataType::BigInt
            | DataType::Float
            | DataType::Double
    )
}

/// Limits of Flink's types: DECIMAL precision 1..=38 and scale within it, time precisions
/// 0..=9 (TIME 0..=9 too, as Arrow holds it), and at most [`MAX_TYPE_DEPTH`] nested types
/// (for types built in code rather than parsed). `depth` is the number of enclosing types.
fn check_type(column: &str, field: &Field, depth: usize) -> Result<(), Error> {
    let nested = matches!(
        field.data_type,
        DataType::Array(_) | DataType::Map(..) | DataType::Row(_)
    );
    if nested && depth >= MAX_TYPE_DEPTH {
        return Err(invalid(format!(
            "column `{column}`: the type nests deeper than {MAX_TYPE_DEPTH} levels of ARRAY, MAP and ROW"
        )));
    }
    match &field.data_type {
        DataType::Decimal(p, s) if !(1..=38).contains(p) || s > p => Err(invalid(format!(
            "column `{column}`: DECIMAL({p}, {s}) needs a precision from 1 to 38 and a scale no larger than it"
        ))),
        DataType::Time(p) | DataType::Timestamp(p) | DataType::TimestampLtz(p) if *p > 9 => Err(
            invalid(format!("column `{column}`: time precision {p} is over 9")),
        ),
        DataType::Array(element) => check_type(column, element, depth + 1),
        DataType::Map(key, value) => {
            check_type(column, key, depth + 1)?;
            check_type(column, value, depth + 1)
        }
        DataType::Row(fields) => fields
            .iter()
            .try_for_each(|(_, f)| check_type(column, f, depth + 1)),
        _ => Ok(()),
    }
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidDefinition, None, message)
}

impl TableDefinition {
    /// Parses and checks a `CREATE TABLE … WITH ('connector' = 'kinesis', …)` statement.
    /// `partitioners` names the custom partitioners registered in code.
    ///
    /// # Errors
    ///
    /// A syntax error with its line and column, an invalid column definition, or an invalid
    /// option (see [`TableOptions::parse`]).
    pub fn parse(sql: &str, partitioners: &[&str]) -> Result<Self, Error> {
        Self::new(parse_create_table(sql)?, partitioners)
    }

    /// Checks a table given as its parts (a name, columns, partition keys and the `WITH`
    /// options) rather than as a statement, as a catalog holds it.
    ///
    /// ```
    /// use kds_table::TableDefinition;
    /// use kds_table::ddl::{Column, ColumnKind, CreateTable, DataType, Field};
    ///
    /// let column = |name: &str, data_type| Column {
    ///     name: name.into(),
    ///     field: Some(Field { data_type, nullable: true }),
    ///     kind: ColumnKind::Physical,
    ///     comment: None,
    /// };
    /// let options = [("connector", "kinesis"), ("stream", "orders"), ("aws.region", "eu-west-1"), ("format", "json")];
    /// let table = TableDefinition::new(
    ///     CreateTable {
    ///         name: "orders".into(),
    ///         columns: vec![column("id", DataType::BigInt), column("body", DataType::Varchar(100))],
    ///         watermark: None,
    ///         primary_key: None,
    ///         partitioned_by: vec!["id".into()],
    ///         options: options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    ///         comment: None,
    ///     },
    ///     &[],
    /// )?;
    /// assert_eq!(table.physical_schema().fields().len(), 2);
    /// # Ok::<(), kds_table::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`parse`](Self::parse), less the syntax errors.
    pub fn new(table: CreateTable, partitioners: &[&str]) -> Result<Self, Error> {
        let mut seen = HashSet::new();
        for column in &table.columns {
            if !seen.insert(column.name.as_str()) {
                return Err(invalid(format!(
                    "column `{}` is declared twice",
                    column.name
                )));
            }
        }
        for column in &table.columns {
            match (&column.kind, &column.field) {
                (ColumnKind::Computed { .. }, None) => {}
                (ColumnKind::Computed { .. }, Some(_)) => {
                    return Err(invalid(format!(
                        "computed column `{}` takes its type from its expression, not a declared one",
                        column.name
                    )));
                }
                (_, None) => {
                    return Err(invalid(format!("column `{}` has no type", column.name)));
                }
                (_, Some(field)) => check_type(&column.name, field, 0)?,
            }
        }
        let find = |name: &str| table.columns.iter().position(|c| c.name == name);
        let mut metadata = Vec::new();
        for (i, column) in table.columns.iter().enumerate() {
            if let ColumnKind::Metadata { key, .. } = &column.kind {
                let known = MetadataKey::ALL.iter().find(|(k, _)| k == key).map(|&(_, m)| m).ok_or_else(|| {
                    let keys: Vec<&str> = MetadataKey::ALL.iter().map(|(k, _)| *k).collect();
                    invalid(format!(
                        "column `{}` reads metadata `{key}`, which Kinesis records do not have (available: {})",
                        column.name,
                        keys.join(", ")
                    ))
                })?;
                let data_type = column.field.as_ref().map(|f| &f.data_type);
                if !data_type.is_some_and(|t| known.accepts(t)) {
                    return Err(invalid(format!(
                        "column `{}` has type {data_type:?}, which cannot hold metadata `{key}`",
                        column.name
                    )));
                }
                metadata.push((i, known));
            }
        }
        for key in &table.partitioned_by {
            let Some(i) = find(key) else {
                return Err(invalid(format!(
                    "PARTITIONED BY column `{key}` is not a column of the table"
                )));
            };
            let column: &Column = &table.columns[i];
            match (&column.kind, &column.field) {
                (ColumnKind::Physical, Some(Field { data_type, .. }))
                    if has_string_form(data_type) => {}
                (ColumnKind::Physical, _) => {
                    return Err(invalid(format!(
                        "PARTITIONED BY column `{key}` has a type without a single string form; partition keys take CHAR, VARCHAR, BOOLEAN, TINYINT, SMALLINT, INT, BIGINT, FLOAT or DOUBLE columns"
                    )));
                }
                _ => {
                    return Err(invalid(format!(
                        "PARTITIONED BY column `{key}` must be a physical column"
                    )));
                }
            }
        }
        let mut keys = HashSet::new();
        if let Some(duplicate) = table
            .partitioned_by
            .iter()
            .find(|k| !keys.insert(k.as_str()))
        {
            return Err(invalid(format!("PARTITIONED BY names `{duplicate}` twice")));
        }
        if let Some(watermark) = &table.watermark
            && find(&watermark.column).is_none()
        {
            return Err(invalid(format!(
                "WATERMARK FOR `{}` names no column of the table",
                watermark.column
            )));
        }
        for key in table.primary_key.iter().flatten() {
            if find(key).is_none() {
                return Err(invalid(format!(
                    "PRIMARY KEY column `{key}` is not a column of the table"
                )));
            }
        }
        let mut options = BTreeMap::new();
        for (key, value) in &table.options {
            if options.insert(key.clone(), value.clone()).is_some() {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    Some(key),
                    format!("option `{key}` is given twice"),
                ));
            }
        }
        let options = TableOptions::parse(&options, &table.partitioned_by, partitioners)?;
        let physical: Vec<(&str, &DataType)> = table
            .columns
            .iter()
            .filter(|c| c.kind == ColumnKind::Physical)
            .filter_map(|c| Some((c.name.as_str(), &c.field.as_ref()?.data_type)))
            .collect();
        crate::format::check_columns(&options.format, &physical)?;
        Ok(Self {
            table,
            metadata,
            options,
        })
    }
}
