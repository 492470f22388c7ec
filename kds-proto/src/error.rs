//! Errors of the sans-IO core: decoding untrusted bytes, and validating requests before they are sent.

use std::borrow::Cow;
use std::fmt;

/// Bytes that could not be decoded: a response body, an event payload or an event-stream frame.
///
/// The error is opaque; [`DecodeError::kind`] says what went wrong, [`DecodeError::offset`] where in
/// the input (a byte offset) and [`DecodeError::field`] in which member of the document (for
/// example `Records[3].SequenceNumber`).
#[derive(Clone, PartialEq, Eq)]
pub struct DecodeError(Box<DecodeErrorInner>);

#[derive(Clone, PartialEq, Eq)]
struct DecodeErrorInner {
    kind: DecodeErrorKind,
    offset: Option<usize>,
    /// Innermost segment first: segments are pushed as the error travels outwards.
    path: Vec<PathSegment>,
    detail: Cow<'static, str>,
}

#[derive(Clone, PartialEq, Eq)]
enum PathSegment {
    Field(&'static str),
    Index(usize),
}

/// What kind of [`DecodeError`] happened.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecodeErrorKind {
    /// The input ended in the middle of a value.
    UnexpectedEof,
    /// The input is not well-formed JSON or CBOR.
    Syntax,
    /// A value had the wrong type for its member (a number where a string belongs, say).
    TypeMismatch,
    /// A string was not valid UTF-8.
    InvalidUtf8,
    /// A blob was not valid base64.
    InvalidBase64,
    /// A number was malformed or out of range for its member.
    InvalidNumber,
    /// A value broke the member's constraint (a malformed shard id or hash key, say).
    InvalidValue,
    /// A required member was absent.
    MissingField,
    /// Documents nested deeper than the decoder allows.
    TooDeep,
    /// Bytes followed a complete document.
    TrailingData,
    /// The body is neither JSON nor CBOR (HTML or XML, say).
    UnknownContentType,
    /// An event-stream prelude CRC did not match.
    PreludeCrcMismatch,
    /// An event-stream message CRC did not match.
    MessageCrcMismatch,
    /// An event-stream frame was longer than the configured maximum.
    FrameTooLarge,
    /// An event-stream frame length or header length was inconsistent, or the headers were
    /// over 128 KiB.
    InvalidFrameLength,
    /// An event-stream header was malformed (bad name, length or value).
    InvalidHeader,
    /// An event-stream header had a value type outside 0..=9.
    InvalidHeaderValueType,
    /// An event-stream message lacked a header it needs (`:message-type`, say).
    MissingHeader,
}

impl DecodeErrorKind {
    fn describe(self) -> &'static str {
        match self {
            Self::UnexpectedEof => "unexpected end of input",
            Self::Syntax => "syntax error",
            Self::TypeMismatch => "wrong type",
            Self::InvalidUtf8 => "invalid UTF-8",
            Self::InvalidBase64 => "invalid base64",
            Self::InvalidNumber => "invalid number",
            Self::InvalidValue => "invalid value",
            Self::MissingField => "missing required member",
            Self::TooDeep => "nesting too deep",
            Self::TrailingData => "trailing data after the document",
            Self::UnknownContentType => "body is neither JSON nor CBOR",
            Self::PreludeCrcMismatch => "event-stream prelude CRC mismatch",
            Self::MessageCrcMismatch => "event-stream message CRC mismatch",
            Self::FrameTooLarge => "event-stream frame too large",
            Self::InvalidFrameLength => "invalid event-stream frame length",
            Self::InvalidHeader => "invalid event-stream header",
            Self::InvalidHeaderValueType => "invalid event-stream header value type",
            Self::MissingHeader => "missing event-stream header",
        }
    }
}

impl DecodeError {
    pub(crate) fn new(
        kind: DecodeErrorKind,
        offset: usize,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self(Box::new(DecodeErrorInner {
            kind,
            offset: Some(offset),
            path: Vec::new(),
            detail: detail.into(),
        }))
    }

    pub(crate) fn without_offset(
        kind: DecodeErrorKind,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self(Box::new(DecodeErrorInner {
            kind,
            offset: None,
            path: Vec::new(),
            detail: detail.into(),
        }))
    }

    /// Prepends a member name to the error's field path.
    pub(crate) fn in_field(mut self, name: &'static str) -> Self {
        self.0.path.push(PathSegment::Field(name));
        self
    }

    /// Prepends a list index to the error's field path.
    pub(crate) fn at_index(mut self, index: usize) -> Self {
        self.0.path.push(PathSegment::Index(index));
        self
    }

    /// Shifts the byte offset, for errors found in a slice of a larger input.
    pub(crate) fn shift_offset(mut self, by: usize) -> Self {
        if let Some(offset) = &mut self.0.offset {
            *offset += by;
        }
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> DecodeErrorKind {
        self.0.kind
    }

    /// The byte offset in the input where the problem was found, when known.
    pub fn offset(&self) -> Option<usize> {
        self.0.offset
    }

    /// The member the problem is in, as a path like `Records[3].SequenceNumber`; empty at top level.
    pub fn field(&self) -> String {
        let mut out = String::new();
        for segment in self.0.path.iter().rev() {
            match segment {
                PathSegment::Field(name) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                }
                PathSegment::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
        out
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.kind.describe())?;
        let field = self.field();
        if !field.is_empty() {
            write!(f, " in `{field}`")?;
        }
        if let Some(offset) = self.0.offset {
            write!(f, " at byte {offset}")?;
        }
        if !self.0.detail.is_empty() {
            write!(f, ": {}", self.0.detail)?;
        }
        Ok(())
    }
}

impl fmt::Debug for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecodeError")
            .field("kind", &self.0.kind)
            .field("offset", &self.0.offset)
            .field("field", &self.field())
            .field("detail", &self.0.detail)
            .finish()
    }
}

impl std::error::Error for DecodeError {}

/// A request that breaks a Kinesis constraint, found before anything is sent.
///
/// [`ValidationError::field`] names the offending member (`Records[7].PartitionKey`, say) and the
/// message states the limit.
#[derive(Clone, PartialEq, Eq)]
pub struct ValidationError(Box<ValidationErrorInner>);

#[derive(Clone, PartialEq, Eq)]
struct ValidationErrorInner {
    kind: ValidationErrorKind,
    field: String,
    detail: String,
}

/// What kind of [`ValidationError`] happened.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValidationErrorKind {
    /// A string or list was shorter or longer than allowed.
    Length,
    /// A string did not match the member's pattern.
    Pattern,
    /// A number was outside its allowed range.
    OutOfRange,
    /// A required member was absent.
    Missing,
    /// Members that may not appear together did (NextToken with StreamName, say).
    Conflict,
    /// An enum value that the service does not define.
    UnknownEnumValue,
    /// A PutRecords request had more entries than allowed.
    TooManyRecords,
    /// A record (data plus partition key) was larger than the stream allows.
    RecordTooLarge,
    /// A whole request was larger than allowed.
    RequestTooLarge,
}

impl ValidationError {
    pub(crate) fn new(
        kind: ValidationErrorKind,
        field: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self(Box::new(ValidationErrorInner {
            kind,
            field: field.into(),
            detail: detail.into(),
        }))
    }

    /// Prefixes the field path with `parent.` (or `parent` when the path is empty).
    pub(crate) fn within(mut self, parent: &str) -> Self {
        self.0.field = if self.0.field.is_empty() {
            parent.to_owned()
        } else if self.0.field.starts_with('[') {
            format!("{parent}{}", self.0.field)
        } else {
            format!("{parent}.{}", self.0.field)
        };
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ValidationErrorKind {
        self.0.kind
    }

    /// The member at fault, as a path like `Records[7].PartitionKey`.
    pub fn field(&self) -> &str {
        &self.0.field
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.field.is_empty() {
            f.write_str(&self.0.detail)
        } else {
            write!(f, "`{}`: {}", self.0.field, self.0.detail)
        }
    }
}

impl fmt::Debug for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidationError")
            .field("kind", &self.0.kind)
            .field("field", &self.0.field)
            .field("detail", &self.0.detail)
            .finish()
    }
}

impl std::error::Error for ValidationError {}
