//! Flink's value ranges for dates and times: DATE and TIMESTAMP from year 0000 to 9999, TIME
//! within a day. Decoded rows are checked (a JSON number or an Avro int can hold any count of
//! days or milliseconds), and so are rows to encode, so that every value has its text form.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Time32MillisecondType, Time32SecondType, Time64MicrosecondType,
    Time64NanosecondType, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, ArrowPrimitiveType, PrimitiveArray};
use arrow_schema::{DataType, TimeUnit};

/// Days from 1970-01-01 to 0000-01-01.
const FIRST_DAY: i64 = -719_528;
/// Days from 1970-01-01 to 9999-12-31.
const LAST_DAY: i64 = 2_932_896;

/// A value out of range: the row, when the value is in a top-level column, and what is wrong.
pub(super) type OutOfRange = (Option<usize>, String);

/// Checks every date, time and timestamp in `array` (nested ones included).
pub(super) fn check(name: &str, array: &dyn Array) -> Result<(), OutOfRange> {
    let units = |unit: &TimeUnit| match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    };
    match array.data_type() {
        DataType::Date32 => within(
            array.as_primitive::<Date32Type>(),
            FIRST_DAY..=LAST_DAY,
            name,
            "dates run from 0000-01-01 to 9999-12-31",
        ),
        DataType::Time32(unit) => {
            let day = 86_400 * units(unit);
            let message = "times run from 00:00:00 to 23:59:59.999999999";
            match unit {
                TimeUnit::Second => within(
                    array.as_primitive::<Time32SecondType>(),
                    0..=day - 1,
                    name,
                    message,
                ),
                _ => within(
                    array.as_primitive::<Time32MillisecondType>(),
                    0..=day - 1,
                    name,
                    message,
                ),
            }
        }
        DataType::Time64(unit) => {
            let day = 86_400 * units(unit);
            let message = "times run from 00:00:00 to 23:59:59.999999999";
            match unit {
                TimeUnit::Microsecond => within(
                    array.as_primitive::<Time64MicrosecondType>(),
                    0..=day - 1,
                    name,
                    message,
                ),
                _ => within(
                    array.as_primitive::<Time64NanosecondType>(),
                    0..=day - 1,
                    name,
                    message,
                ),
            }
        }
        DataType::Timestamp(unit, _) => {
            let per_day = i128::from(86_400 * units(unit));
            // The nanosecond range of an i64 is narrower than the years: clamp to it.
            let first = i64::try_from(i128::from(FIRST_DAY) * per_day).unwrap_or(i64::MIN);
            let last = i64::try_from(i128::from(LAST_DAY + 1) * per_day - 1).unwrap_or(i64::MAX);
            let message = "timestamps run from year 0000 to 9999";
            match unit {
                TimeUnit::Second => within(
                    array.as_primitive::<TimestampSecondType>(),
                    first..=last,
                    name,
                    message,
                ),
                TimeUnit::Millisecond => within(
                    array.as_primitive::<TimestampMillisecondType>(),
                    first..=last,
                    name,
                    message,
                ),
                TimeUnit::Microsecond => within(
                    array.as_primitive::<TimestampMicrosecondType>(),
                    first..=last,
                    name,
                    message,
                ),
                TimeUnit::Nanosecond => within(
                    array.as_primitive::<TimestampNanosecondType>(),
                    first..=last,
                    name,
                    message,
                ),
            }
        }
        DataType::List(_) => nested(name, array.as_list::<i32>().values().as_ref()),
        DataType::Struct(_) => array
            .as_struct()
            .columns()
            .iter()
            .try_for_each(|column| nested(name, column.as_ref())),
        DataType::Map(_, _) => {
            let entries = array.as_map().entries();
            entries
                .columns()
                .iter()
                .try_for_each(|column| nested(name, column.as_ref()))
        }
        _ => Ok(()),
    }
}

/// A nested array's problem has no row of its own.
fn nested(name: &str, array: &dyn Array) -> Result<(), OutOfRange> {
    check(name, array).map_err(|(_, message)| (None, message))
}

fn within<T: ArrowPrimitiveType>(
    array: &PrimitiveArray<T>,
    range: std::ops::RangeInclusive<i64>,
    name: &str,
    message: &str,
) -> Result<(), OutOfRange>
where
    T::Native: Into<i64>,
{
    for (row, value) in array.iter().enumerate() {
        if let Some(value) = value {
            let value: i64 = value.into();
            if !range.contains(&value) {
                return Err((
                    Some(row),
                    format!("column `{name}` holds {value}, out of range: {message}"),
                ));
            }
        }
    }
    Ok(())
}
