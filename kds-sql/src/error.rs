//! The crate's error: one opaque type with a public kind.

use std::fmt;
use std::sync::Arc;

use datafusion::error::DataFusionError;

/// A statement that could not run.
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// The kind of an [`Error`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The statement does not parse (Flink's `CREATE TABLE` or DataFusion's SQL); the message
    /// names the line and column.
    Syntax,
    /// A Kinesis table definition is invalid: an option, a column, a type (the message names
    /// it).
    Definition,
    /// The query needs all of its input before it answers (an aggregate, a sort, a join) and
    /// reads an unbounded Kinesis table: run it on a snapshot with `SET kds.bounded = true`.
    Unbounded,
    /// DataFusion could not plan or run the statement.
    Query,
    /// Reading or writing a stream failed (the source is kds-stream's error, naming the shard).
    Stream,
    /// The lease store (`--state-dir`) failed, or another process holds it.
    Store,
    /// No client could be made for a table (a [`ClientFactory`](crate::ClientFactory) failed).
    Client,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            kind,
            message: message.into(),
            source: None,
        }))
    }

    pub(crate) fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.0.source = Some(source.into());
        self
    }

    /// A [`ClientFactory`](crate::ClientFactory) that could not make a client, and why.
    pub fn client(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::new(ErrorKind::Client, "no client for the table").with_source(cause)
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// An error of kds-stream, kept whole.
    pub(crate) fn stream(error: kds_stream::Error) -> Self {
        let kind = match error.kind() {
            kds_stream::ErrorKind::Store | kds_stream::ErrorKind::LeaseLost => ErrorKind::Store,
            kds_stream::ErrorKind::Definition => ErrorKind::Definition,
            _ => ErrorKind::Stream,
        };
        Self::new(kind, "").with_source(error)
    }

    /// A DataFusion error, with the errors of this crate and kds-stream it carries taken out
    /// (they cross DataFusion as external errors).
    pub(crate) fn datafusion(error: DataFusionError) -> Self {
        match error {
            DataFusionError::External(external) => match external.downcast::<Self>() {
                Ok(ours) => return *ours,
                Err(external) => match external.downcast::<kds_stream::Error>() {
                    Ok(stream) => return Self::stream(*stream),
                    Err(other) => {
                        return Self::new(ErrorKind::Query, "").with_source(other);
                    }
                },
            },
            DataFusionError::Context(context, inner) => {
                let mut error = Self::datafusion(*inner);
                error.0.message = if error.0.message.is_empty() {
                    context
                } else {
                    format!("{context}: {}", error.0.message)
                };
                return error;
            }
            DataFusionError::Shared(shared) => {
                let error = Arc::try_unwrap(shared)
                    .unwrap_or_else(|shared| DataFusionError::Execution(shared.to_string()));
                return Self::datafusion(error);
            }
            _ => {}
        }
        let kind = match &error {
            DataFusionError::SQL(..) => ErrorKind::Syntax,
            _ => ErrorKind::Query,
        };
        Self::new(kind, "").with_source(error)
    }
}

impl From<Error> for DataFusionError {
    fn from(error: Error) -> Self {
        Self::External(Box::new(error))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)?;
        if let Some(source) = &self.0.source {
            if !self.0.message.is_empty() {
                f.write_str(": ")?;
            }
            write!(f, "{source}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("message", &self.0.message)
            .field("source", &self.0.source)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}
