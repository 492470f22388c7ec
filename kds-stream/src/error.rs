//! The crate's error: one opaque type with a public kind, naming the shard (and record) at
//! fault where there is one.

use std::fmt;

use kds_proto::types::ShardId;

/// A failure of a running table.
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    shard: Option<ShardId>,
    /// The source's text names the shard already.
    shard_named_by_source: bool,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// The kind of an [`Error`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The lease store failed: I/O, a file that does not parse, or a store another process
    /// holds.
    Store,
    /// A lease changed under its owner (its counter moved): another worker took the shard, or
    /// a write raced. The shard must not be read or checkpointed further by this owner.
    LeaseLost,
    /// Reading the stream failed once retrying could not help (`std::error::Error::source` gives the
    /// client's or enhanced fan-out's error).
    Read,
    /// Writing the stream failed, or some rows will not be written (the message says how
    /// many, and why the first failed).
    Write,
    /// A row could not be written in the table's format (the message names the row), or its
    /// record is larger than the stream accepts.
    Encode,
    /// A record did not decode in the table's format (the message names shard, sequence number
    /// and sub-sequence number), or an aggregate is malformed.
    Decode,
    /// The table cannot run as defined: an expression or option this runtime does not support,
    /// a projection out of range.
    Definition,
    /// An argument is out of range (an acknowledgement token of another source, say).
    Usage,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            kind,
            shard: None,
            shard_named_by_source: false,
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

    pub(crate) fn for_shard(mut self, shard: &ShardId) -> Self {
        self.0.shard = Some(shard.clone());
        self
    }

    pub(crate) fn store(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Store, message)
    }

    pub(crate) fn read(error: kds_client::Error) -> Self {
        let shard = error.shard().cloned();
        let mut e = Self::new(ErrorKind::Read, "reading the stream failed").with_source(error);
        e.0.shard_named_by_source = shard.is_some();
        e.0.shard = shard;
        e
    }

    pub(crate) fn read_efo(error: kds_efo::Error) -> Self {
        let shard = error.shard().cloned();
        let mut e = Self::new(ErrorKind::Read, "reading the stream failed").with_source(error);
        e.0.shard_named_by_source = shard.is_some();
        e.0.shard = shard;
        e
    }

    pub(crate) fn table(error: kds_table::Error) -> Self {
        let kind = match error.kind() {
            kds_table::ErrorKind::Decode => ErrorKind::Decode,
            kds_table::ErrorKind::Encode => ErrorKind::Encode,
            _ => ErrorKind::Definition,
        };
        Self::new(kind, "the table's records").with_source(error)
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The shard at fault, if any.
    pub fn shard(&self) -> Option<&ShardId> {
        self.0.shard.as_ref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.shard {
            Some(shard) if !self.0.shard_named_by_source => write!(f, "{}: ", shard.as_str())?,
            _ => {}
        }
        f.write_str(&self.0.message)?;
        // The errors wrapped here (client, enhanced fan-out, table, I/O) write their own causes.
        if let Some(source) = &self.0.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("shard", &self.0.shard)
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
