//! The `json` format: one JSON object per record, read and written with arrow-json.
//!
//! As Flink's JSON format: unknown fields are ignored, absent fields are NULL (or an error with
//! `json.fail-on-missing-field`), numbers and booleans are read into string columns, numbers
//! written as strings are read into numeric columns, BYTES are base64 text, NULLs are written
//! explicitly, timestamps follow `json.timestamp-format.standard` (`SQL`:
//! `2020-01-01 10:00:00.123`, `ISO-8601`: `2020-01-01T10:00:00.123`, with a `Z` for
//! TIMESTAMP_LTZ) and non-finite floats are written as the strings `NaN`, `Infinity` and
//! `-Infinity`. Decimals are always written as plain numbers.

use std::io::Write as _;
use std::ops::Range;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type};
use arrow_array::{Array, BinaryArray, RecordBatch, StructArray};
use arrow_json::reader::{Decoder, ReaderBuilder};
use arrow_json::writer::{Encoder, EncoderFactory, EncoderOptions, NullableEncoder, make_encoder};
use arrow_schema::{ArrowError, DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use serde_json::Value;

use super::text::{binary_as_text, restore_binary};
use super::{CHUNK_ROWS, RowReader, RowWriter};
use crate::error::Error;

/// Reads one JSON object per record.
pub(super) struct JsonReader {
    physical: SchemaRef,
    /// `physical` with binary columns as strings (base64), as arrow-json reads them.
    text: SchemaRef,
    decoder: Decoder,
    fail_on_missing_field: bool,
}

fn build(schema: &SchemaRef) -> Result<Decoder, ArrowError> {
    ReaderBuilder::new(Arc::clone(schema))
        // One more than a chunk, so that a chunk never fills the decoder mid-record.
        .with_batch_size(CHUNK_ROWS + 1)
        .with_coerce_primitive(true)
        .build_decoder()
}

impl JsonReader {
    pub(super) fn new(physical: SchemaRef, fail_on_missing_field: bool) -> Result<Self, Error> {
        let text: Fields = physical
            .fields()
            .iter()
            .map(|f| {
                Arc::new(
                    f.as_ref()
                        .clone()
                        .with_data_type(binary_as_text(f.data_type())),
                )
            })
            .collect();
        let text = Arc::new(Schema::new(text));
        let decoder = build(&text).map_err(|e| super::unsupported(e.to_string()))?;
        Ok(Self {
            physical,
            text,
            decoder,
            fail_on_missing_field,
        })
    }
}

impl RowReader for JsonReader {
    fn push(&mut self, data: &[u8]) -> Result<(), String> {
        let before = self.decoder.len();
        let consumed = self.decoder.decode(data).map_err(|e| e.to_string())?;
        if consumed != data.len() || self.decoder.has_partial_record() {
            return Err("the data ends inside a JSON value".to_owned());
        }
        match self.decoder.len() - before {
            1 => {}
            0 => return Err("the data holds no JSON value".to_owned()),
            n => {
                return Err(format!(
                    "the data holds {n} JSON values, and a record holds one row"
                ));
            }
        }
        if self.fail_on_missing_field {
            let value: Value = serde_json::from_slice(data).map_err(|e| e.to_string())?;
            check_present(&value, self.physical.fields(), "")?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<RecordBatch, String> {
        let batch = self
            .decoder
            .flush()
            .map_err(|e| e.to_string())?
            .unwrap_or_else(|| RecordBatch::new_empty(Arc::clone(&self.text)));
        if self.text == self.physical {
            return Ok(batch);
        }
        let columns = batch
            .columns()
            .iter()
            .zip(self.physical.fields())
            .map(|(column, field)| restore_binary(column, field.data_type()))
            .collect::<Result<Vec<_>, _>>()?;
        RecordBatch::try_new(Arc::clone(&self.physical), columns).map_err(|e| e.to_string())
    }

    fn reset(&mut self) {
        self.decoder = build(&self.text).expect("the schema built a decoder before");
    }
}

/// `json.fail-on-missing-field`: every field of every object, nested rows included, is
/// present (as a value or as `null`).
fn check_present(value: &Value, fields: &Fields, path: &str) -> Result<(), String> {
    let Value::Object(object) = value else {
        // Not an object where a row is expected: the decoder reports that.
        return Ok(());
    };
    for field in fields {
        let name = field.name();
        let Some(value) = object.get(name) else {
            return Err(format!("field `{path}{name}` is missing"));
        };
        check_nested(value, field.data_type(), &format!("{path}{name}."))?;
    }
    Ok(())
}

fn check_nested(value: &Value, data_type: &DataType, path: &str) -> Result<(), String> {
    match (data_type, value) {
        (DataType::Struct(fields), _) => check_present(value, fields, path),
        (DataType::List(element), Value::Array(items)) => items
            .iter()
            .try_for_each(|item| check_nested(item, element.data_type(), path)),
        (DataType::Map(entries, _), Value::Object(object)) => {
            let DataType::Struct(entry) = entries.data_type() else {
                return Ok(());
            };
            object
                .values()
                .try_for_each(|v| check_nested(v, entry[1].data_type(), path))
        }
        _ => Ok(()),
    }
}

/// Writes one JSON object per row.
pub(super) struct JsonWriter {
    options: EncoderOptions,
}

impl JsonWriter {
    pub(super) fn new(iso_8601: bool) -> Self {
        let separator = if iso_8601 { 'T' } else { ' ' };
        let timestamp = format!("%Y-%m-%d{separator}%H:%M:%S%.f");
        let options = EncoderOptions::default()
            .with_explicit_nulls(true)
            .with_encoder_factory(Arc::new(FlinkValues))
            .with_timestamp_tz_format(format!("{timestamp}Z"))
            .with_timestamp_format(timestamp)
            .with_time_format("%H:%M:%S%.f".to_owned());
        Self { options }
    }
}

impl RowWriter for JsonWriter {
    fn write(
        &mut self,
        batch: &RecordBatch,
        out: &mut Vec<u8>,
        rows: &mut Vec<Range<usize>>,
    ) -> Result<(), (usize, String)> {
        let array = StructArray::from(batch.clone());
        let field: FieldRef = Arc::new(Field::new_struct(
            "",
            batch.schema_ref().fields().clone(),
            false,
        ));
        let mut encoder =
            make_encoder(&field, &array, &self.options).map_err(|e| (0, e.to_string()))?;
        for row in 0..batch.num_rows() {
            let start = out.len();
            encoder.encode(row, out);
            rows.push(start..out.len());
        }
        Ok(())
    }
}

/// Values arrow-json writes differently from Flink: binary (base64, not hex) and non-finite
/// floats (strings, not NULL).
#[derive(Debug)]
struct FlinkValues;

impl EncoderFactory for FlinkValues {
    fn make_default_encoder<'a>(
        &self,
        _field: &'a FieldRef,
        array: &'a dyn Array,
        _options: &'a EncoderOptions,
    ) -> Result<Option<NullableEncoder<'a>>, ArrowError> {
        let nulls = array.nulls().cloned();
        let encoder: Box<dyn Encoder + 'a> = match array.data_type() {
            DataType::Binary => Box::new(Base64(array.as_binary::<i32>())),
            DataType::Float32 => {
                let values = array.as_primitive::<Float32Type>();
                if values.values().iter().all(|v| v.is_finite()) {
                    return Ok(None);
                }
                Box::new(Floats(values.values().to_vec()))
            }
            DataType::Float64 => {
                let values = array.as_primitive::<Float64Type>();
                if values.values().iter().all(|v| v.is_finite()) {
                    return Ok(None);
                }
                Box::new(Floats(values.values().to_vec()))
            }
            _ => return Ok(None),
        };
        Ok(Some(NullableEncoder::new(encoder, nulls)))
    }
}

struct Base64<'a>(&'a BinaryArray);

impl Encoder for Base64<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        out.push(b'"');
        base64_simd::STANDARD.encode_append(self.0.value(idx), out);
        out.push(b'"');
    }
}

/// Floats of an array that holds a non-finite value.
struct Floats<T>(Vec<T>);

impl<T: Copy + std::fmt::Display + Into<f64>> Encoder for Floats<T> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        let value = self.0[idx];
        let text = match value.into() {
            v if v.is_nan() => "\"NaN\"",
            f64::INFINITY => "\"Infinity\"",
            f64::NEG_INFINITY => "\"-Infinity\"",
            _ => {
                // Writing to a Vec cannot fail.
                let _ = write!(out, "{value}");
                return;
            }
        };
        out.extend_from_slice(text.as_bytes());
    }
}
