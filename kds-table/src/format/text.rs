//! Binary values in text formats: Flink writes BYTES as base64 text in JSON and CSV, while
//! arrow-rs readers take them as hex. Readers decode such columns as strings and turn them
//! into binary here.

use std::sync::Arc;

use arrow_array::builder::BinaryBuilder;
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, ListArray, MapArray, StructArray};
use arrow_schema::{DataType, Field, Fields};

/// `data_type` with every binary type, however deeply nested, read as a string.
pub(super) fn binary_as_text(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Binary => DataType::Utf8,
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

/// `array`, read with [`binary_as_text`]'s type, as `target`: base64 strings become binary.
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

/// The start of `text` for an error message.
fn shorten(text: &str) -> &str {
    match text.char_indices().nth(40) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}
