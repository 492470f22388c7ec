//! Small checks shared by the operations' `validate` methods.

use std::collections::BTreeMap;

use crate::error::{ValidationError, ValidationErrorKind};
use crate::types::{ShardIteratorType, Timestamp};

pub(crate) fn stream_given<A, B>(name: Option<&A>, arn: Option<&B>) -> Result<(), ValidationError> {
    if name.is_none() && arn.is_none() {
        return Err(ValidationError::new(
            ValidationErrorKind::Missing,
            "StreamName",
            "either StreamName or StreamARN is required",
        ));
    }
    Ok(())
}

pub(crate) fn required<T>(field: &str, value: Option<&T>) -> Result<(), ValidationError> {
    if value.is_none() {
        return Err(ValidationError::new(
            ValidationErrorKind::Missing,
            field,
            format!("{field} is required"),
        ));
    }
    Ok(())
}

pub(crate) fn absent<T>(
    field: &str,
    value: Option<&T>,
    because: &str,
) -> Result<(), ValidationError> {
    if value.is_some() {
        return Err(ValidationError::new(
            ValidationErrorKind::Conflict,
            field,
            format!("{field} must not be sent {because}"),
        ));
    }
    Ok(())
}

pub(crate) fn range(
    field: &str,
    value: Option<i64>,
    min: i64,
    max: i64,
) -> Result<(), ValidationError> {
    match value {
        Some(v) if !(min..=max).contains(&v) => Err(ValidationError::new(
            ValidationErrorKind::OutOfRange,
            field,
            format!("must be in {min}..={max}, got {v}"),
        )),
        _ => Ok(()),
    }
}

pub(crate) fn known<E: AsRef<str>>(
    field: &str,
    is_known: bool,
    value: &E,
) -> Result<(), ValidationError> {
    if is_known {
        Ok(())
    } else {
        Err(ValidationError::new(
            ValidationErrorKind::UnknownEnumValue,
            field,
            format!("`{}` is not a value the service defines", value.as_ref()),
        ))
    }
}

/// The members a starting position of type `kind` needs: a sequence number for AT_ and
/// AFTER_SEQUENCE_NUMBER, a timestamp for AT_TIMESTAMP.
pub(crate) fn position<S>(
    kind: &ShardIteratorType,
    kind_field: &str,
    sequence: Option<&S>,
    sequence_field: &str,
    timestamp: Option<&Timestamp>,
    timestamp_field: &str,
) -> Result<(), ValidationError> {
    known(kind_field, kind.is_known(), &kind.as_str())?;
    match kind {
        ShardIteratorType::AtSequenceNumber | ShardIteratorType::AfterSequenceNumber => {
            required(sequence_field, sequence)
        }
        ShardIteratorType::AtTimestamp => required(timestamp_field, timestamp),
        _ => Ok(()),
    }
}

/// Tags: 1..=200 entries, keys 1..=128 characters, values up to 256.
pub(crate) fn tags(
    field: &str,
    tags: Option<&BTreeMap<String, String>>,
) -> Result<(), ValidationError> {
    let Some(tags) = tags else { return Ok(()) };
    if !(1..=200).contains(&tags.len()) {
        return Err(ValidationError::new(
            ValidationErrorKind::Length,
            field,
            format!("must have 1..=200 entries, got {}", tags.len()),
        ));
    }
    for (key, value) in tags {
        let key_len = key.chars().count();
        if !(1..=128).contains(&key_len) {
            return Err(ValidationError::new(
                ValidationErrorKind::Length,
                format!("{field}.{key}"),
                format!("tag keys must be 1..=128 characters, got {key_len}"),
            ));
        }
        let value_len = value.chars().count();
        if value_len > 256 {
            return Err(ValidationError::new(
                ValidationErrorKind::Length,
                format!("{field}.{key}"),
                format!("tag values must be at most 256 characters, got {value_len}"),
            ));
        }
    }
    Ok(())
}

pub(crate) fn record_size(
    field: &str,
    data: usize,
    partition_key: usize,
    max: usize,
) -> Result<(), ValidationError> {
    let size = data + partition_key;
    if size > max {
        return Err(ValidationError::new(
            ValidationErrorKind::RecordTooLarge,
            field,
            format!("data plus partition key is {size} bytes, over the stream's limit of {max}"),
        ));
    }
    Ok(())
}
