//! The crate's error: an opaque type with a public kind, naming the option at fault.

use std::fmt;

/// A table definition that cannot be used as written.
#[derive(Clone, PartialEq, Eq)]
pub struct Error(Box<Inner>);

#[derive(Clone, PartialEq, Eq)]
struct Inner {
    kind: ErrorKind,
    option: Option<String>,
    message: String,
    location: Option<(usize, usize)>,
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
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, option: Option<&str>, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            kind,
            option: option.map(str::to_owned),
            message: message.into(),
            location: None,
        }))
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

    /// The option at fault, as the user wrote its key, when one option is.
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
            .finish()
    }
}

impl std::error::Error for Error {}
