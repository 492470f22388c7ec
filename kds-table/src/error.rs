//! The crate's error: an opaque type with a public kind, naming the option, the statement
//! position or the record at fault.

use std::borrow::Cow;
use std::fmt;

/// The most characters of a key, name or token an error message repeats.
const MAX_ECHO: usize = 100;

/// `text` as an error message repeats it: cut to [`MAX_ECHO`] characters, with `…` when cut.
pub(crate) fn clip(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(MAX_ECHO) {
        Some((at, _)) => Cow::Owned(format!("{}…", &text[..at])),
        None => Cow::Borrowed(text),
    }
}

/// A table definition that cannot be used as written, a record that does not decode, or a row
/// that does not encode.
#[derive(Clone, PartialEq, Eq)]
pub struct Error(Box<Inner>);

#[derive(Clone, PartialEq, Eq)]
struct Inner {
    kind: ErrorKind,
    option: Option<String>,
    message: String,
    location: Option<(usize, usize)>,
    record: Option<RecordPosition>,
}

/// Where in a stream the record at fault of a decode error is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordPosition {
    /// The shard the record was read from.
    pub shard_id: String,
    /// The record's sequence number.
    pub sequence_number: String,
    /// The user record's position in a KPL aggregate, for aggregated records.
    pub sub_sequence_number: Option<u64>,
}

impl fmt::Display for RecordPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "record {} of shard {}",
            self.sequence_number, self.shard_id
        )?;
        if let Some(sub) = self.sub_sequence_number {
            write!(f, " (sub-sequence {sub})")?;
        }
        Ok(())
    }
}

/// The kind of an [`Error`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Required options are absent.
    MissingOption,
    /// Options that no part of the table knows.
    UnsupportedOption,
    /// An option's value is not of its type or outside its allowed values.
    InvalidValue,
    /// Options that contradict each other.
    Conflict,
    /// The statement is not valid Flink DDL.
    Syntax,
    /// The statement is valid DDL, but not a valid Kinesis table (an unknown metadata key, a
    /// partition key column that does not exist or has no string form, …).
    InvalidDefinition,
    /// A record's data is not a row in the table's format, or its fields do not fit the
    /// metadata columns ([`Error::record`] says which record).
    Decode,
    /// A row cannot be written in the table's format, or a batch does not have the table's
    /// columns.
    Encode,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, option: Option<&str>, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            kind,
            option: option.map(|key| clip(key).into_owned()),
            message: message.into(),
            location: None,
            record: None,
        }))
    }

    /// A decode error of `record`; the message names the record.
    pub(crate) fn decode(record: RecordPosition, cause: &str) -> Self {
        let mut error = Self::new(ErrorKind::Decode, None, format!("{record}: {cause}"));
        error.0.record = Some(record);
        error
    }

    /// The record whose data could not be decoded, for [`ErrorKind::Decode`].
    pub fn record(&self) -> Option<&RecordPosition> {
        self.0.record.as_ref()
    }

    /// Records where in the statement the problem is.
    pub(crate) fn at(mut self, line: usize, column: usize) -> Self {
        self.0.location = Some((line, column));
        self
    }

    /// The line and column (both from 1) in the statement, for syntax errors.
    pub fn location(&self) -> Option<(usize, usize)> {
        self.0.location
    }

    pub(crate) fn invalid(option: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidValue, Some(option), message)
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The option at fault, as the user wrote its key, when one option is. A key longer than
    /// 100 characters is cut there, with `…` (no option's key is nearly that long).
    pub fn option(&self) -> Option<&str> {
        self.0.option.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("option", &self.0.option)
            .field("message", &self.0.message)
            .field("location", &self.0.location)
            .field("record", &self.0.record)
            .finish()
    }
}

impl std::error::Error for Error {}
