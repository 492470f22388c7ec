//! The `json` format: one JSON object per record, read and written with arrow-json.
//!
//! As Flink's JSON format: unknown fields are ignored, absent fields are NULL (or an error with
//! `json.fail-on-missing-field`), numbers and booleans are read into string columns, numbers
//! written as strings are read into numeric columns, BYTES are base64 text, dates, times and
//! timestamps are read from their text or from a number of days or time units (within Flink's
//! ranges), timestamps follow `json.timestamp-format.standard` (`SQL`:
//! `2020-01-01 10:00:00.123`, `ISO-8601`: `2020-01-01T10:00:00.123`, with a `Z` for
//! TIMESTAMP_LTZ; fractions in 3, 6 or 9 digits as needed, none when zero), times are
//! `10:00:00.123`, and non-finite floats are written as the strings `NaN`, `Infinity` and
//! `-Infinity`. Decimals are always written as plain numbers. NULL fields are written as `null`,
//! or left out with `json.encode.ignore-null-fields`.

use std::io::Write as _;
use std::ops::Range;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Time32MillisecondType, Time32SecondType, Time64MicrosecondType,
    Time64NanosecondType, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, BinaryArray, RecordBatch, StructArray};
use arrow_buffer::ScalarBuffer;
use arrow_json::reader::{Decoder, ReaderBuilder};
use arrow_json::writer::{Encoder, EncoderFactory, EncoderOptions, NullableEncoder, make_encoder};
use arrow_schema::{ArrowError, DataType, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit};
use serde_json::Value;

use super::clock;
use super::text::{as_text, from_text};
use super::{CHUNK_ROWS, RowReader, RowWriter};
use crate::error::Error;

/// Reads one JSON object per record.
pub(super) struct JsonReader {
    physical: SchemaRef,
    /// `physical` with binary (base64) and decimal columns as strings, as arrow-json reads
    /// them.
    text: SchemaRef,
    /// Whether `text` differs from `physical`, so that read batches need converting.
    converted: bool,
    decoder: Decoder,
    fail_on_missing_field: bool,
}

/// A decoder for at most `rows` rows between flushes.
fn build(schema: &SchemaRef, rows: usize) -> Result<Decoder, ArrowError> {
    ReaderBuilder::new(Arc::clone(schema))
        // One more, so that the last record never finds the decoder full.
        .with_batch_size(rows + 1)
        .with_coerce_primitive(true)
        .build_decoder()
}

impl JsonReader {
    pub(super) fn new(physical: SchemaRef, fail_on_missing_field: bool) -> Result<Self, Error> {
        let text: Fields = physical
            .fields()
            .iter()
            .map(|f| Arc::new(f.as_ref().clone().with_data_type(as_text(f.data_type()))))
            .collect();
        let text = Arc::new(Schema::new(text));
        let decoder = build(&text, CHUNK_ROWS).map_err(|e| super::unsupported(e.to_string()))?;
        Ok(Self {
            converted: text != physical,
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
        if !self.converted {
            return Ok(batch);
        }
        let columns = batch
            .columns()
            .iter()
            .zip(self.physical.fields())
            .map(|(column, field)| from_text(column, field.data_type()))
            .collect::<Result<Vec<_>, _>>()?;
        RecordBatch::try_new(Arc::clone(&self.physical), columns).map_err(|e| e.to_string())
    }

    fn reset(&mut self, rows: usize) {
        // The decoder allocates room for `rows` rows up front.
        self.decoder = build(&self.text, rows).expect("the schema built a decoder before");
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
    pub(super) fn new(iso_8601: bool, ignore_null_fields: bool) -> Self {
        let options = EncoderOptions::default()
            .with_explicit_nulls(!ignore_null_fields)
            .with_encoder_factory(Arc::new(FlinkValues {
                timestamp_separator: if iso_8601 { b'T' } else { b' ' },
            }));
        Self { options }
    }
}

impl RowWriter for JsonWriter {
    fn write(
        &mut self,
        batch: &RecordBatch,
        out: &mut Vec<u8>,
        rows: &mut Vec<Range<usize>>,
    ) -> Result<(), (Option<usize>, String)> {
        let array = StructArray::from(batch.clone());
        let field: FieldRef = Arc::new(Field::new_struct(
            "",
            batch.schema_ref().fields().clone(),
            false,
        ));
        let mut encoder =
            make_encoder(&field, &array, &self.options).map_err(|e| (None, e.to_string()))?;
        for row in 0..batch.num_rows() {
            let start = out.len();
            encoder.encode(row, out);
            rows.push(start..out.len());
        }
        Ok(())
    }
}

/// Values arrow-json writes differently from Flink: binary (base64, not hex) and non-finite
/// floats (strings, not NULL); and times and timestamps, which arrow-json writes in a custom
/// form only through chrono's format strings, parsed again for every value (a third of the
/// encoding time).
#[derive(Debug)]
struct FlinkValues {
    /// `' '` (SQL) or `'T'` (ISO-8601) between date and time.
    timestamp_separator: u8,
}

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
            DataType::Timestamp(unit, zone) => Box::new(TimestampText {
                values: match unit {
                    TimeUnit::Second => array.as_primitive::<TimestampSecondType>().values(),
                    TimeUnit::Millisecond => {
                        array.as_primitive::<TimestampMillisecondType>().values()
                    }
                    TimeUnit::Microsecond => {
                        array.as_primitive::<TimestampMicrosecondType>().values()
                    }
                    TimeUnit::Nanosecond => {
                        array.as_primitive::<TimestampNanosecondType>().values()
                    }
                },
                nanos_per_unit: nanos_per(*unit),
                separator: self.timestamp_separator,
                zoned: zone.is_some(),
            }),
            DataType::Time32(unit) => {
                let values = match unit {
                    TimeUnit::Second => array.as_primitive::<Time32SecondType>().values(),
                    _ => array.as_primitive::<Time32MillisecondType>().values(),
                };
                Box::new(TimeText {
                    values: values.iter().map(|&v| i64::from(v)).collect(),
                    nanos_per_unit: nanos_per(*unit),
                })
            }
            DataType::Time64(unit) => {
                let values = match unit {
                    TimeUnit::Microsecond => array.as_primitive::<Time64MicrosecondType>().values(),
                    _ => array.as_primitive::<Time64NanosecondType>().values(),
                };
                Box::new(TimeText {
                    values: values.to_vec(),
                    nanos_per_unit: nanos_per(*unit),
                })
            }
            DataType::Float32 => {
                let values = array.as_primitive::<Float32Type>();
                if values.values().iter().all(|v| v.is_finite()) {
                    return Ok(None);
                }
                Box::new(Floats(values.values()))
            }
            DataType::Float64 => {
                let values = array.as_primitive::<Float64Type>();
                if values.values().iter().all(|v| v.is_finite()) {
                    return Ok(None);
                }
                Box::new(Floats(values.values()))
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
struct Floats<'a, T>(&'a [T]);

impl<T: Copy + std::fmt::Display + Into<f64>> Encoder for Floats<'_, T> {
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

fn nanos_per(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    }
}

/// `yyyy-MM-dd HH:mm:ss[.fraction]` (or with `T`), and `Z` when zoned (always UTC here).
struct TimestampText<'a> {
    values: &'a ScalarBuffer<i64>,
    nanos_per_unit: i64,
    separator: u8,
    zoned: bool,
}

impl Encoder for TimestampText<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        let units_per_second = 1_000_000_000 / self.nanos_per_unit;
        let value = self.values[idx];
        let seconds = value.div_euclid(units_per_second);
        let nanos = value.rem_euclid(units_per_second) * self.nanos_per_unit;
        out.push(b'"');
        clock::write_date(out, seconds.div_euclid(86_400));
        out.push(self.separator);
        clock::write_time(out, seconds.rem_euclid(86_400), nanos);
        if self.zoned {
            out.push(b'Z');
        }
        out.push(b'"');
    }
}

/// `HH:mm:ss[.fraction]`.
struct TimeText {
    values: Vec<i64>,
    nanos_per_unit: i64,
}

impl Encoder for TimeText {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        let nanos = self.values[idx] * self.nanos_per_unit;
        out.push(b'"');
        clock::write_time(
            out,
            nanos.div_euclid(1_000_000_000),
            nanos.rem_euclid(1_000_000_000),
        );
        out.push(b'"');
    }
}
