//! Binary and decimal values in text formats, which readers decode as strings and turn into
//! their types here.
//!
//! Flink writes BYTES as base64 text in JSON and CSV, while arrow-rs readers take them as hex.
//! Decimals are parsed here, with checked arithmetic (see [`decimal`]).

use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, Decimal128Builder};
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, ListArray, MapArray, StructArray};
use arrow_schema::{DataType, Field, Fields};

use crate::error::clip;

/// `data_type` with every binary and decimal type, however deeply nested, read as a string.
pub(super) fn as_text(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Binary | DataType::Decimal128(..) => DataType::Utf8,
        DataType::List(element) => DataType::List(Arc::new(field_as_text(element))),
        DataType::Struct(fields) => DataType::Struct(fields_as_text(fields)),
        DataType::Map(entries, sorted) => DataType::Map(Arc::new(field_as_text(entries)), *sorted),
        other => other.clone(),
    }
}

fn field_as_text(field: &Field) -> Field {
    field.clone().with_data_type(as_text(field.data_type()))
}

fn fields_as_text(fields: &Fields) -> Fields {
    fields.iter().map(|f| field_as_text(f)).collect()
}

/// `array`, read with [`as_text`]'s type, as `target`: base64 strings become binary,
/// and numbers decimals.
pub(super) fn from_text(array: &ArrayRef, target: &DataType) -> Result<ArrayRef, String> {
    if array.data_type() == target {
        return Ok(Arc::clone(array));
    }
    Ok(match target {
        DataType::Binary => {
            let strings = array.as_string::<i32>();
            let mut builder = BinaryBuilder::with_capacity(strings.len(), strings.values().len());
            let mut value = Vec::new();
            for text in strings {
                match text {
                    Some(text) => {
                        value.clear();
                        base64_simd::STANDARD
                            .decode_append(text, &mut value)
                            .map_err(|_| format!("`{}` is not base64", clip(text)))?;
                        builder.append_value(&value);
                    }
                    None => builder.append_null(),
                }
            }
            Arc::new(builder.finish())
        }
        DataType::Decimal128(precision, scale) => {
            let strings = array.as_string::<i32>();
            let mut builder = Decimal128Builder::with_capacity(strings.len())
                .with_precision_and_scale(*precision, *scale)
                .map_err(|e| e.to_string())?;
            for text in strings {
                match text {
                    Some(text) => builder.append_value(decimal(text, *precision, *scale)?),
                    None => builder.append_null(),
                }
            }
            Arc::new(builder.finish())
        }
        DataType::List(element) => {
            let list = array.as_list::<i32>();
            let values = from_text(list.values(), element.data_type())?;
            Arc::new(
                ListArray::try_new(
                    Arc::clone(element),
                    list.offsets().clone(),
                    values,
                    list.nulls().cloned(),
                )
                .map_err(|e| e.to_string())?,
            )
        }
        DataType::Struct(fields) => Arc::new(restore_struct(array.as_struct(), fields)?),
        DataType::Map(entries, sorted) => {
            let map = array.as_map();
            let DataType::Struct(entry_fields) = entries.data_type() else {
                return Err("map entries are not a struct".to_owned());
            };
            Arc::new(
                MapArray::try_new(
                    Arc::clone(entries),
                    map.offsets().clone(),
                    restore_struct(map.entries(), entry_fields)?,
                    map.nulls().cloned(),
                    *sorted,
                )
                .map_err(|e| e.to_string())?,
            )
        }
        other => return Err(format!("cannot read {} as {other}", array.data_type())),
    })
}

fn restore_struct(array: &StructArray, fields: &Fields) -> Result<StructArray, String> {
    let columns = array
        .columns()
        .iter()
        .zip(fields.iter())
        .map(|(column, field)| from_text(column, field.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    StructArray::try_new(fields.clone(), columns, array.nulls().cloned()).map_err(|e| e.to_string())
}

/// `text` as a decimal of `precision` digits, `scale` of them after the point: a sign, digits
/// with at most one point, and an exponent (`-1.5e3`). Digits past the scale are dropped, as
/// arrow-cast drops them. Parsed here with checked arithmetic: arrow-cast 59's `parse_decimal`
/// counts digits in a `u8` and exponents in an `i16` that wrap, so that `1e65538` and numbers
/// of over 255 digits read as other numbers.
fn decimal(text: &str, precision: u8, scale: i8) -> Result<i128, String> {
    let not_a_number = || format!("`{}` is not a decimal number", clip(text));
    let out_of_range = || format!("`{}` is not a DECIMAL({precision}, {scale})", clip(text));
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(e) => (&text[..e], Some(&text[e + 1..])),
        None => (text, None),
    };
    let (negative, mantissa) = match mantissa.as_bytes().first() {
        Some(b'-') => (true, &mantissa[1..]),
        Some(b'+') => (false, &mantissa[1..]),
        _ => (false, mantissa),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.len() + fraction.len() == 0 || !digits_only(whole) || !digits_only(fraction) {
        return Err(not_a_number());
    }
    // The exponent, held to ±10^15: far past any position in a record.
    let exponent: i64 = match exponent {
        None => 0,
        Some(exponent) => {
            let magnitude = exponent.strip_prefix(['-', '+']).unwrap_or(exponent);
            if magnitude.is_empty() || !digits_only(magnitude) {
                return Err(not_a_number());
            }
            let magnitude = magnitude.trim_start_matches('0');
            let magnitude: i64 = if magnitude.len() > 15 {
                10i64.pow(15)
            } else {
                magnitude.parse().unwrap_or(0)
            };
            if exponent.starts_with('-') {
                -magnitude
            } else {
                magnitude
            }
        }
    };
    // The digits of the unscaled value: those before the point moved by the exponent and
    // the scale, then zeros.
    let digits = whole.bytes().chain(fraction.bytes());
    let length = (whole.len() + fraction.len()) as i64;
    let end = whole.len() as i64 + exponent + i64::from(scale);
    let kept = end.clamp(0, length) as usize;
    let zeros = (end - length).max(0);
    let mut value: i128 = 0;
    let mut significant = 0i64;
    for digit in digits.take(kept) {
        if value == 0 && digit == b'0' {
            continue;
        }
        significant += 1;
        if significant > i64::from(precision) {
            return Err(out_of_range());
        }
        value = value * 10 + i128::from(digit - b'0');
    }
    if value != 0 {
        if significant + zeros > i64::from(precision) {
            return Err(out_of_range());
        }
        // At most 38 digits in all: no overflow.
        value *= 10i128.pow(zeros as u32);
    }
    Ok(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_read_at_their_scale() {
        for (text, precision, scale, value) in [
            ("1.5", 10, 3, 1_500),
            ("-1.5e3", 10, 0, -1_500),
            ("1.5E+1", 10, 1, 150),
            ("12.345e-1", 10, 4, 12_345),
            ("12.345e-4", 10, 4, 12),
            ("+7e0", 5, 0, 7),
            (".5e1", 5, 0, 5),
            ("5.", 5, 1, 50),
            ("1e0001", 5, 0, 10),
            ("0.000", 5, 2, 0),
            ("0e99999999999999999999", 5, 2, 0),
            ("1e-99999999999999999999", 5, 2, 0),
            ("-0.019", 5, 2, -1),
            (
                "99999999999999999999999999999999999999",
                38,
                0,
                10i128.pow(38) - 1,
            ),
        ] {
            assert_eq!(decimal(text, precision, scale), Ok(value), "{text}");
        }
        for bad in [
            "", "-", ".", "e5", "1e", "1e+", "1.2.3", "1e1.5", "1e--1", "x1", "1 ",
        ] {
            assert!(
                decimal(bad, 10, 2)
                    .unwrap_err()
                    .contains("not a decimal number"),
                "{bad}"
            );
        }
    }

    /// Found by the `table_decode_json` fuzz target: arrow-cast's exponent (an `i16`) and digit
    /// count (a `u8`) wrap, so `1e65538` read as 100 and a number of 256 digits as another
    /// (both panicked with overflow checks).
    #[test]
    fn numbers_past_a_decimal_are_errors_not_other_numbers() {
        let long = format!("1{}", "0".repeat(300));
        let long_fraction = format!("0.{}1", "0".repeat(300));
        for (text, precision, scale) in [
            ("1e65538", 38, 18),
            ("44e034410", 38, 18),
            ("050.0000000000e0401", 38, 18),
            ("1e99999999999999999999", 38, 0),
            ("100", 2, 0),
            ("1e2", 2, 0),
            ("1", 2, 2),
            (long.as_str(), 38, 0),
        ] {
            let error = decimal(text, precision, scale).unwrap_err();
            assert!(
                error.contains(&format!("DECIMAL({precision}, {scale})")),
                "{error}"
            );
        }
        assert_eq!(decimal(&long_fraction, 38, 18), Ok(0));
        assert_eq!(decimal(&format!("{long}e-300"), 5, 2), Ok(100));
    }
}
