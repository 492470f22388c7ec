//! Binary and decimal values in text formats, which readers decode as strings and turn into
//! their types here.
//!
//! Flink writes BYTES as base64 text in JSON and CSV, while arrow-rs readers take them as hex.
//! Decimals in exponent notation are rewritten as plain numbers before arrow-cast parses them:
//! its exponent arithmetic wraps (`1e65538` read as `100`), and its plain-number parsing is
//! the well-trodden path.

use std::borrow::Cow;
use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, Decimal128Builder};
use arrow_array::cast::AsArray;
use arrow_array::types::Decimal128Type;
use arrow_array::{Array, ArrayRef, ListArray, MapArray, StructArray};
use arrow_schema::{DataType, Field, Fields};

/// The largest exponent magnitude read in a decimal: a DECIMAL holds at most 38 digits, so
/// larger ones only ever overflow, or round to zero.
const MAX_DECIMAL_EXPONENT: u32 = 1000;

/// `data_type` with every binary and decimal type, however deeply nested, read as a string.
pub(super) fn binary_as_text(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Binary | DataType::Decimal128(..) => DataType::Utf8,
        DataType::List(element) => DataType::List(Arc::new(field_as_text(element))),
        DataType::Struct(fields) => DataType::Struct(fields_as_text(fields)),
        DataType::Map(entries, sorted) => DataType::Map(Arc::new(field_as_text(entries)), *sorted),
        other => other.clone(),
    }
}

fn field_as_text(field: &Field) -> Field {
    field
        .clone()
        .with_data_type(binary_as_text(field.data_type()))
}

fn fields_as_text(fields: &Fields) -> Fields {
    fields.iter().map(|f| field_as_text(f)).collect()
}

/// `array`, read with [`binary_as_text`]'s type, as `target`: base64 strings become binary,
/// and numbers decimals.
pub(super) fn restore_binary(array: &ArrayRef, target: &DataType) -> Result<ArrayRef, String> {
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
                            .map_err(|_| format!("`{}` is not base64", shorten(text)))?;
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
            let values = restore_binary(list.values(), element.data_type())?;
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
        .map(|(column, field)| restore_binary(column, field.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    StructArray::try_new(fields.clone(), columns, array.nulls().cloned()).map_err(|e| e.to_string())
}

/// `text` as a decimal of `precision` digits, `scale` of them after the point.
fn decimal(text: &str, precision: u8, scale: i8) -> Result<i128, String> {
    let plain = plain_decimal(text)?;
    arrow_cast::parse::parse_decimal::<Decimal128Type>(&plain, precision, scale)
        .map_err(|_| format!("`{}` is not a DECIMAL({precision}, {scale})", shorten(text)))
}

/// `text`, a decimal number, without an exponent (`-1.5e3` as `-1500`). Text without one is
/// given back as it is, for the parser to judge.
fn plain_decimal(text: &str) -> Result<Cow<'_, str>, String> {
    let Some(e) = text.find(['e', 'E']) else {
        return Ok(Cow::Borrowed(text));
    };
    let not_a_number = || format!("`{}` is not a decimal number", shorten(text));
    let (mantissa, exponent) = (&text[..e], &text[e + 1..]);
    let (negative, mantissa) = match mantissa.as_bytes().first() {
        Some(b'-') => (true, &mantissa[1..]),
        Some(b'+') => (false, &mantissa[1..]),
        _ => (false, mantissa),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let exponent_digits = exponent.strip_prefix(['-', '+']).unwrap_or(exponent);
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.len() + fraction.len() == 0
        || !digits_only(whole)
        || !digits_only(fraction)
        || exponent_digits.is_empty()
        || !digits_only(exponent_digits)
    {
        return Err(not_a_number());
    }
    // Leading zeros of the exponent do not count; the rest must be small.
    let significant = exponent_digits.trim_start_matches('0');
    let magnitude: u32 = match significant.len() {
        0 => 0,
        1..=4 => significant.parse().map_err(|_| not_a_number())?,
        _ => u32::MAX,
    };
    if magnitude > MAX_DECIMAL_EXPONENT {
        return Err(format!(
            "`{}` has an exponent beyond ±{MAX_DECIMAL_EXPONENT}",
            shorten(text)
        ));
    }
    // The digits, and where the point falls among them once the exponent is applied.
    let digits: String = [whole, fraction].concat();
    let magnitude = i64::from(magnitude);
    let point = whole.len() as i64
        + if exponent.starts_with('-') {
            -magnitude
        } else {
            magnitude
        };
    let mut plain = String::with_capacity(digits.len() + 4 + magnitude as usize);
    if negative {
        plain.push('-');
    }
    if point <= 0 {
        plain.push_str("0.");
        plain.extend(std::iter::repeat_n('0', point.unsigned_abs() as usize));
        plain.push_str(&digits);
    } else if point as usize >= digits.len() {
        plain.push_str(&digits);
        plain.extend(std::iter::repeat_n('0', point as usize - digits.len()));
    } else {
        let (left, right) = digits.split_at(point as usize);
        plain.push_str(left);
        plain.push('.');
        plain.push_str(right);
    }
    Ok(Cow::Owned(plain))
}

/// The start of `text` for an error message.
fn shorten(text: &str) -> &str {
    match text.char_indices().nth(40) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents_are_written_out() {
        for (text, plain) in [
            ("1.5", "1.5"),
            ("-1.5e3", "-1500"),
            ("1.5E+1", "15"),
            ("12.345e-1", "1.2345"),
            ("12.345e-2", "0.12345"),
            ("12.345e-4", "0.0012345"),
            ("+7e0", "7"),
            (".5e1", "5"),
            ("5.e1", "50"),
            ("1e0001", "10"),
        ] {
            assert_eq!(plain_decimal(text).unwrap(), plain, "{text}");
        }
        for bad in [
            "e5", "1e", "1e+", "1.2.3e1", "1e1.5", "1e--1", "x1e1", "1e99999",
        ] {
            assert!(plain_decimal(bad).is_err(), "{bad}");
        }
    }

    /// Found by the `table_decode_json` fuzz target: arrow-cast's exponent arithmetic wraps
    /// (an overflow panic with debug assertions), so `1e65538` read as 100 in a release build.
    #[test]
    fn large_exponents_are_errors_not_other_numbers() {
        assert_eq!(decimal("1e2", 10, 0), Ok(100));
        assert_eq!(decimal("1.25e-1", 10, 3), Ok(125));
        for text in ["1e65538", "44e034410", "1e-65538", "1e1001"] {
            let error = decimal(text, 38, 18).unwrap_err();
            assert!(error.contains(text), "{error}");
        }
        assert!(decimal("1e39", 38, 0).is_err());
    }
}
