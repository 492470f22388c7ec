//! A stream named either way the API allows: by name (in the caller's account) or by ARN
//! (which also reaches streams shared from other accounts).

use kds_proto::types::{StreamArn, StreamName};

/// A stream, by name or by ARN.
///
/// Requests that accept both carry the one given. Some emulators look streams up only by
/// name; AWS takes either.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StreamId {
    /// The stream's name.
    Name(StreamName),
    /// The stream's ARN.
    Arn(StreamArn),
}

impl StreamId {
    /// Sets a request's `StreamName` or `StreamARN` member to this stream.
    pub fn set(&self, name: &mut Option<StreamName>, arn: &mut Option<StreamArn>) {
        match self {
            Self::Name(n) => *name = Some(n.clone()),
            Self::Arn(a) => *arn = Some(a.clone()),
        }
    }

    /// The ARN, when the stream is named by ARN (GetRecords carries no name).
    pub fn arn(&self) -> Option<&StreamArn> {
        match self {
            Self::Name(_) => None,
            Self::Arn(arn) => Some(arn),
        }
    }
}

impl From<StreamName> for StreamId {
    fn from(name: StreamName) -> Self {
        Self::Name(name)
    }
}

impl From<StreamArn> for StreamId {
    fn from(arn: StreamArn) -> Self {
        Self::Arn(arn)
    }
}
