//! The `raw` format: the record data is the value of the table's one physical column.
//!
//! As Flink's raw format: strings are UTF-8 (`raw.charset`), binaries are the bytes as they
//! are, BOOLEAN is one byte (0 or 1), and numbers are their fixed-size two's-complement or IEEE
//! 754 bytes in `raw.endianness` order. Where Flink replaces invalid UTF-8 with U+FFFD, the
//! record is refused here, so no data changes unseen. NULL cannot be written: a record has data.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Float32Builder, Float64Builder, Int8Builder, Int16Builder,
    Int32Builder, Int64Builder, StringBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, SchemaRef};

use super::{RowReader, RowWriter, unsupported};
use crate::ddl::DataType as FlinkType;
use crate::error::Error;

pub(super) fn check_columns(columns: &[(&str, &FlinkType)]) -> Result<(), Error> {
    let [(name, data_type)] = columns else {
        return Err(unsupported(format!(
            "format `raw` reads and writes exactly one physical column, the table has {}",
            columns.len()
        )));
    };
    match data_type {
        FlinkType::Char(_)
        | FlinkType::Varchar(_)
        | FlinkType::Binary(_)
        | FlinkType::Varbinary(_)
        | FlinkType::Boolean
        | FlinkType::TinyInt
        | FlinkType::SmallInt
        | FlinkType::Int
        | FlinkType::BigInt
        | FlinkType::Float
        | FlinkType::Double => Ok(()),
        other => Err(unsupported(format!(
            "format `raw` cannot hold column `{name}` of type {other}; it takes CHAR, VARCHAR, STRING, BINARY, VARBINARY, BYTES, BOOLEAN, TINYINT, SMALLINT, INT, BIGINT, FLOAT or DOUBLE"
        ))),
    }
}

/// The column being built.
enum Column {
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
    Boolean(BooleanBuilder),
    Int8(Int8Builder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
}

impl Column {
    fn new(data_type: &DataType) -> Self {
        match data_type {
            DataType::Utf8 => Self::Utf8(StringBuilder::new()),
            DataType::Boolean => Self::Boolean(BooleanBuilder::new()),
            DataType::Int8 => Self::Int8(Int8Builder::new()),
            DataType::Int16 => Self::Int16(Int16Builder::new()),
            DataType::Int32 => Self::Int32(Int32Builder::new()),
            DataType::Int64 => Self::Int64(Int64Builder::new()),
            DataType::Float32 => Self::Float32(Float32Builder::new()),
            DataType::Float64 => Self::Float64(Float64Builder::new()),
            // The definition admits binaries and the types above only.
            _ => Self::Binary(BinaryBuilder::new()),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Utf8(b) => Arc::new(b.finish()),
            Self::Binary(b) => Arc::new(b.finish()),
            Self::Boolean(b) => Arc::new(b.finish()),
            Self::Int8(b) => Arc::new(b.finish()),
            Self::Int16(b) => Arc::new(b.finish()),
            Self::Int32(b) => Arc::new(b.finish()),
            Self::Int64(b) => Arc::new(b.finish()),
            Self::Float32(b) => Arc::new(b.finish()),
            Self::Float64(b) => Arc::new(b.finish()),
        }
    }
}

/// `N` bytes of `data` in the given order, or an error naming the type.
fn fixed<const N: usize>(
    data: &[u8],
    type_name: &str,
    big_endian: bool,
) -> Result<[u8; N], String> {
    let mut bytes: [u8; N] = data.try_into().map_err(|_| {
        format!(
            "a raw {type_name} is {N} byte{}, the data has {}",
            if N == 1 { "" } else { "s" },
            data.len()
        )
    })?;
    if !big_endian {
        bytes.reverse();
    }
    Ok(bytes)
}

/// Reads the record data as the one column's value.
pub(super) struct RawReader {
    schema: SchemaRef,
    column: Column,
    big_endian: bool,
}

impl RawReader {
    pub(super) fn new(schema: &SchemaRef, big_endian: bool) -> Self {
        Self {
            schema: Arc::clone(schema),
            column: Column::new(schema.field(0).data_type()),
            big_endian,
        }
    }
}

impl RowReader for RawReader {
    fn push(&mut self, data: &[u8]) -> Result<(), String> {
        let be = self.big_endian;
        match &mut self.column {
            Column::Utf8(b) => b.append_value(
                std::str::from_utf8(data).map_err(|e| format!("the data is not UTF-8: {e}"))?,
            ),
            Column::Binary(b) => b.append_value(data),
            Column::Boolean(b) => b.append_value(match fixed::<1>(data, "BOOLEAN", true)? {
                [0] => false,
                [1] => true,
                [other] => return Err(format!("a raw BOOLEAN is 0 or 1, the data is {other}")),
            }),
            Column::Int8(b) => b.append_value(i8::from_be_bytes(fixed(data, "TINYINT", be)?)),
            Column::Int16(b) => b.append_value(i16::from_be_bytes(fixed(data, "SMALLINT", be)?)),
            Column::Int32(b) => b.append_value(i32::from_be_bytes(fixed(data, "INT", be)?)),
            Column::Int64(b) => b.append_value(i64::from_be_bytes(fixed(data, "BIGINT", be)?)),
            Column::Float32(b) => b.append_value(f32::from_be_bytes(fixed(data, "FLOAT", be)?)),
            Column::Float64(b) => b.append_value(f64::from_be_bytes(fixed(data, "DOUBLE", be)?)),
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<RecordBatch, String> {
        RecordBatch::try_new(Arc::clone(&self.schema), vec![self.column.finish()])
            .map_err(|e| e.to_string())
    }

    fn reset(&mut self, _rows: usize) {
        self.column.finish();
    }
}

/// Writes the one column's value as the record data.
pub(super) struct RawWriter {
    big_endian: bool,
}

impl RawWriter {
    pub(super) fn new(big_endian: bool) -> Self {
        Self { big_endian }
    }
}

impl RowWriter for RawWriter {
    fn write(
        &mut self,
        batch: &RecordBatch,
        out: &mut Vec<u8>,
        rows: &mut Vec<Range<usize>>,
    ) -> Result<(), (Option<usize>, String)> {
        let column = batch.column(0);
        macro_rules! number {
            ($t:ty, $row:expr) => {{
                let mut bytes = column.as_primitive::<$t>().value($row).to_be_bytes();
                if !self.big_endian {
                    bytes.reverse();
                }
                out.extend_from_slice(&bytes);
            }};
        }
        for row in 0..batch.num_rows() {
            let start = out.len();
            if column.is_null(row) {
                return Err((
                    Some(row),
                    format!(
                        "column `{}` is NULL, and format `raw` has no NULL",
                        batch.schema_ref().field(0).name()
                    ),
                ));
            }
            match column.data_type() {
                DataType::Utf8 => {
                    out.extend_from_slice(column.as_string::<i32>().value(row).as_bytes());
                }
                DataType::Binary => out.extend_from_slice(column.as_binary::<i32>().value(row)),
                DataType::Boolean => out.push(u8::from(column.as_boolean().value(row))),
                DataType::Int8 => number!(Int8Type, row),
                DataType::Int16 => number!(Int16Type, row),
                DataType::Int32 => number!(Int32Type, row),
                DataType::Int64 => number!(Int64Type, row),
                DataType::Float32 => number!(Float32Type, row),
                DataType::Float64 => number!(Float64Type, row),
                other => return Err((Some(row), format!("format `raw` cannot write {other}"))),
            }
            rows.push(start..out.len());
        }
        Ok(())
    }
}
