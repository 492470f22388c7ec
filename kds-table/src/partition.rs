//! Partition keys of written rows: the PARTITIONED BY columns joined (Flink's rule), a random
//! key, the writer's index, or a partitioner registered in code.

use std::collections::HashMap;
use std::fmt;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;

use crate::error::{Error, ErrorKind};
use crate::options::Partitioner;

/// Kinesis partition keys are at most 256 characters (counted as UTF-16 units, like Flink).
const MAX_KEY_UNITS: usize = 256;

/// Chooses the partition key of each written row.
pub trait PartitionKeyGenerator: Send {
    /// The partition key of `row` of `batch` (1 to 256 characters).
    fn partition_key(&mut self, batch: &RecordBatch, row: usize) -> String;
}

/// Makes a generator for a writer: given the writer's index.
pub type PartitionerFactory = Box<dyn Fn(usize) -> Box<dyn PartitionKeyGenerator> + Send + Sync>;

/// Custom partitioners, registered by name from code and chosen with `sink.partitioner`.
#[derive(Default)]
pub struct Partitioners {
    factories: HashMap<String, PartitionerFactory>,
}

impl fmt::Debug for Partitioners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.factories.keys()).finish()
    }
}

impl Partitioners {
    /// No custom partitioners.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `factory` under `name` (not `random` or `fixed`, which are built in).
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, factory: PartitionerFactory) -> Self {
        self.factories.insert(name.into(), factory);
        self
    }

    /// The registered names, for [`crate::TableOptions::parse`].
    pub fn names(&self) -> Vec<&str> {
        self.factories.keys().map(String::as_str).collect()
    }

    /// The generator `partitioner` describes, for the writer with index `writer`.
    ///
    /// # Errors
    ///
    /// `InvalidDefinition` when a PARTITIONED BY column is missing from `schema` or has a type
    /// without a single string form, or when a custom partitioner is not registered.
    pub fn generator(
        &self,
        partitioner: &Partitioner,
        schema: &arrow_schema::Schema,
        writer: usize,
    ) -> Result<Box<dyn PartitionKeyGenerator>, Error> {
        Ok(match partitioner {
            Partitioner::Fields { columns, delimiter } => {
                Box::new(FieldsKey::new(columns, delimiter, schema)?)
            }
            Partitioner::Random => Box::new(RandomKey),
            Partitioner::Fixed => Box::new(FixedKey(writer.to_string())),
            Partitioner::Custom(name) => match self.factories.get(name) {
                Some(factory) => factory(writer),
                None => {
                    return Err(Error::new(
                        ErrorKind::InvalidDefinition,
                        Some("sink.partitioner"),
                        format!("no partitioner named `{name}` is registered"),
                    ));
                }
            },
        })
    }
}

/// A random UUID per record.
struct RandomKey;

impl PartitionKeyGenerator for RandomKey {
    fn partition_key(&mut self, _: &RecordBatch, _: usize) -> String {
        uuid::Uuid::new_v4().to_string()
    }
}

/// The writer's index for every record.
struct FixedKey(String);

impl PartitionKeyGenerator for FixedKey {
    fn partition_key(&mut self, _: &RecordBatch, _: usize) -> String {
        self.0.clone()
    }
}

/// The PARTITIONED BY values joined by the delimiter, truncated to 256 UTF-16 units.
struct FieldsKey {
    columns: Vec<usize>,
    delimiter: String,
}

impl FieldsKey {
    fn new(
        columns: &[String],
        delimiter: &str,
        schema: &arrow_schema::Schema,
    ) -> Result<Self, Error> {
        let indexes = columns
            .iter()
            .map(|name| {
                let (i, field) = schema.column_with_name(name).ok_or_else(|| {
                    Error::new(ErrorKind::InvalidDefinition, None, format!("PARTITIONED BY column `{name}` is not in the rows"))
                })?;
                let supported = matches!(
                    field.data_type(),
                    DataType::Utf8
                        | DataType::LargeUtf8
                        | DataType::Boolean
                        | DataType::Int8
                        | DataType::Int16
                        | DataType::Int32
                        | DataType::Int64
                        | DataType::Float32
                        | DataType::Float64
                );
                if supported {
                    Ok(i)
                } else {
                    Err(Error::new(
                        ErrorKind::InvalidDefinition,
                        None,
                        format!("PARTITIONED BY column `{name}` has type {}, which has no single string form", field.data_type()),
                    ))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            columns: indexes,
            delimiter: delimiter.to_owned(),
        })
    }
}

impl PartitionKeyGenerator for FieldsKey {
    fn partition_key(&mut self, batch: &RecordBatch, row: usize) -> String {
        // Flink appends each value and the delimiter, stops once 256 characters are reached, and
        // keeps at most 256 characters of the result less the trailing delimiter.
        let delimiter_units = self.delimiter.encode_utf16().count();
        let mut key = String::new();
        let mut units = 0;
        for &column in &self.columns {
            let start = key.len();
            push_value(&mut key, batch.column(column).as_ref(), row);
            units += key[start..].encode_utf16().count() + delimiter_units;
            key.push_str(&self.delimiter);
            if units >= MAX_KEY_UNITS {
                break;
            }
        }
        truncate_units(&mut key, (units - delimiter_units).min(MAX_KEY_UNITS));
        key
    }
}

/// Cuts `text` to its first `units` UTF-16 units (never splitting a character).
fn truncate_units(text: &mut String, units: usize) {
    let mut count = 0;
    let end = text
        .char_indices()
        .find(|&(_, c)| {
            count += c.len_utf16();
            count > units
        })
        .map_or(text.len(), |(at, _)| at);
    text.truncate(end);
}

/// Appends a value as Java's `toString` writes it; NULL is `null`.
fn push_value(out: &mut String, array: &dyn Array, row: usize) {
    use std::fmt::Write as _;
    if array.is_null(row) {
        out.push_str("null");
        return;
    }
    // Writing to a String cannot fail.
    let _ = match array.data_type() {
        DataType::Utf8 => write!(out, "{}", array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => write!(out, "{}", array.as_string::<i64>().value(row)),
        DataType::Boolean => write!(out, "{}", array.as_boolean().value(row)),
        DataType::Int8 => write!(out, "{}", array.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => write!(out, "{}", array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => write!(out, "{}", array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => write!(out, "{}", array.as_primitive::<Int64Type>().value(row)),
        DataType::Float32 => {
            let v = array.as_primitive::<Float32Type>().value(row);
            write!(out, "{}", java_float(f64::from(v), &v.to_string()))
        }
        DataType::Float64 => {
            let v = array.as_primitive::<Float64Type>().value(row);
            write!(out, "{}", java_float(v, &v.to_string()))
        }
        // Other types are refused when the generator is made.
        _ => write!(out, "null"),
    };
}

/// Java's `Double.toString` / `Float.toString` from the shortest round-trip digits (`shortest`
/// is Rust's `Display` of the value): plain notation with at least one fractional digit for
/// magnitudes in [10^-3, 10^7), else `d.dddE±n`.
fn java_float(value: f64, shortest: &str) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let (sign, magnitude) = match shortest.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", shortest),
    };
    // Digits and the position of the decimal point.
    let (int_part, frac_part) = magnitude.split_once('.').unwrap_or((magnitude, ""));
    let digits: String = format!("{int_part}{frac_part}");
    let first = digits.find(|c| c != '0');
    let Some(first) = first else {
        return format!("{sign}0.0");
    };
    let significant = digits[first..].trim_end_matches('0');
    // Exponent of the first significant digit.
    let exponent =
        i64::try_from(int_part.len()).unwrap_or(0) - 1 - i64::try_from(first).unwrap_or(0);
    let abs = value.abs();
    if (1e-3..1e7).contains(&abs) {
        let frac = if frac_part.is_empty() { "0" } else { frac_part };
        let int = if int_part.is_empty() { "0" } else { int_part };
        return format!("{sign}{int}.{frac}");
    }
    let (lead, rest) = significant.split_at(1);
    let rest = if rest.is_empty() { "0" } else { rest };
    format!("{sign}{lead}.{rest}E{exponent}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_float_formatting() {
        for (value, expected) in [
            (1.0, "1.0"),
            (1.5, "1.5"),
            (100.0, "100.0"),
            (0.001, "0.001"),
            (0.0001, "1.0E-4"),
            (1e7, "1.0E7"),
            (1e10, "1.0E10"),
            (1.2345e10, "1.2345E10"),
            (-2.5e-5, "-2.5E-5"),
            (9_999_999.0, "9999999.0"),
            (0.0, "0.0"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(java_float(value, &value.to_string()), expected, "{value}");
        }
        let f = 0.1f32;
        assert_eq!(java_float(f64::from(f), &f.to_string()), "0.1");
    }

    #[test]
    fn truncation_counts_utf16_units() {
        let cut = |units| {
            let mut text = "ab\u{1F600}c".to_owned();
            truncate_units(&mut text, units);
            text
        };
        assert_eq!(cut(3), "ab");
        assert_eq!(cut(4), "ab\u{1F600}");
        assert_eq!(cut(9), "ab\u{1F600}c");
    }
}
