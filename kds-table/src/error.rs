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
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, option: Option<&str>, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            kind,
            option: option.map(str::to_owned),
            message: message.into(),
        }))
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
            .finish()
    }
}

impl std::error::Error for Error {}
