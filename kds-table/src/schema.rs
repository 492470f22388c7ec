//! Flink types as Arrow types, and the Arrow schema of a table's rows.
//!
//! The mapping is Flink's own (its `ArrowUtils`): strings are `Utf8`, binaries `Binary`,
//! timestamps carry the unit their precision needs, `TIMESTAMP_LTZ` is zoned at UTC ([`UTC`]), `ARRAY` is a
//! `List`, `MAP` a `Map` of non-null keys, `ROW` a `Struct`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType as ArrowType, Field as ArrowField, Fields, Schema, TimeUnit};

use crate::ddl::{ColumnKind, DataType, Field};
use crate::definition::TableDefinition;

/// The zone of `TIMESTAMP_LTZ` columns. The offset form, not `UTC`: arrow-rs parses and
/// formats offsets without the time zone database (DataFusion writes UTC this way too).
pub const UTC: &str = "+00:00";

/// The field metadata key that marks a metadata column, with the Kinesis metadata key as value.
pub const METADATA_KEY: &str = "kds.metadata";

fn unit(precision: u32) -> TimeUnit {
    match precision {
        0 => TimeUnit::Second,
        1..=3 => TimeUnit::Millisecond,
        4..=6 => TimeUnit::Microsecond,
        _ => TimeUnit::Nanosecond,
    }
}

/// The Arrow type of a Flink type.
pub fn arrow_type(data_type: &DataType) -> ArrowType {
    match data_type {
        DataType::Boolean => ArrowType::Boolean,
        DataType::TinyInt => ArrowType::Int8,
        DataType::SmallInt => ArrowType::Int16,
        DataType::Int => ArrowType::Int32,
        DataType::BigInt => ArrowType::Int64,
        DataType::Float => ArrowType::Float32,
        DataType::Double => ArrowType::Float64,
        // Precision is checked to be at most 38 when the table is defined.
        DataType::Decimal(p, s) => ArrowType::Decimal128(
            u8::try_from(*p).unwrap_or(38),
            i8::try_from(*s).unwrap_or(0),
        ),
        DataType::Char(_) | DataType::Varchar(_) => ArrowType::Utf8,
        DataType::Binary(_) | DataType::Varbinary(_) => ArrowType::Binary,
        DataType::Date => ArrowType::Date32,
        DataType::Time(p) => match unit(*p) {
            u @ (TimeUnit::Second | TimeUnit::Millisecond) => ArrowType::Time32(u),
            u => ArrowType::Time64(u),
        },
        DataType::Timestamp(p) => ArrowType::Timestamp(unit(*p), None),
        DataType::TimestampLtz(p) => ArrowType::Timestamp(unit(*p), Some(UTC.into())),
        DataType::Array(element) => ArrowType::List(Arc::new(arrow_field("element", element))),
        DataType::Map(key, value) => {
            let key = ArrowField::new("key", arrow_type(&key.data_type), false);
            let entries = Fields::from(vec![key, arrow_field("value", value)]);
            ArrowType::Map(
                Arc::new(ArrowField::new(
                    "entries",
                    ArrowType::Struct(entries),
                    false,
                )),
                false,
            )
        }
        DataType::Row(fields) => ArrowType::Struct(
            fields
                .iter()
                .map(|(name, field)| arrow_field(name, field))
                .collect::<Vec<_>>()
                .into(),
        ),
    }
}

fn arrow_field(name: &str, field: &Field) -> ArrowField {
    ArrowField::new(name, arrow_type(&field.data_type), field.nullable)
}

impl TableDefinition {
    /// The schema of the table's rows: its physical and metadata columns in declaration order
    /// (computed columns are evaluated above this layer). Metadata columns carry their key in
    /// the field metadata under [`METADATA_KEY`].
    pub fn arrow_schema(&self) -> Schema {
        let fields: Vec<ArrowField> =
            self.table
                .columns
                .iter()
                .filter_map(|column| {
                    let field = column.field.as_ref()?;
                    let arrow = arrow_field(&column.name, field);
                    Some(match &column.kind {
                        ColumnKind::Metadata { key, .. } => arrow
                            .with_metadata(HashMap::from([(METADATA_KEY.to_owned(), key.clone())])),
                        _ => arrow,
                    })
                })
                .collect();
        Schema::new(fields)
    }
}
