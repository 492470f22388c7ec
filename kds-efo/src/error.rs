//! The crate's error: an opaque type with a public kind.

use std::fmt;

use kds_proto::types::ShardId;
use kds_proto::{ErrorCode, ServiceError};

/// A subscription that could not be opened or broke off.
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    /// The shard being read, for errors of the readers.
    shard: Option<ShardId>,
    message: String,
    service: Option<ServiceError>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// The kind of an [`Error`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request failed ([`Error::client_error`] has the client's error): refused by the
    /// service, timed out, or the connection broke.
    Client,
    /// The service ended the subscription with an exception or error message
    /// ([`Error::service_error`] has it, with its class).
    Service,
    /// The event stream is corrupt (a bad frame or payload) and was abandoned.
    Decode,
    /// A wait ran out (a consumer that did not become ACTIVE, or did not go away).
    Timeout,
    /// The service broke the protocol: an event without a continuation on a shard that is
    /// open, or a subscription that ended without any event. The shard is subscribed again
    /// after a backoff.
    Protocol,
}

impl Error {
    pub(crate) fn client(error: kds_client::Error) -> Self {
        Self(Box::new(Inner {
            shard: None,
            kind: ErrorKind::Client,
            message: error.to_string(),
            service: error.service_error().cloned(),
            source: Some(Box::new(error)),
        }))
    }

    pub(crate) fn service(error: ServiceError) -> Self {
        Self(Box::new(Inner {
            shard: None,
            kind: ErrorKind::Service,
            message: format!("the subscription ended with {error}"),
            service: Some(error),
            source: None,
        }))
    }

    pub(crate) fn decode(error: kds_proto::DecodeError) -> Self {
        Self(Box::new(Inner {
            shard: None,
            kind: ErrorKind::Decode,
            message: format!("the event stream is corrupt: {error}"),
            service: None,
            source: Some(Box::new(error)),
        }))
    }

    pub(crate) fn timeout(message: String) -> Self {
        Self(Box::new(Inner {
            shard: None,
            kind: ErrorKind::Timeout,
            message,
            service: None,
            source: None,
        }))
    }

    pub(crate) fn protocol(message: String) -> Self {
        Self(Box::new(Inner {
            shard: None,
            kind: ErrorKind::Protocol,
            message,
            service: None,
            source: None,
        }))
    }

    /// Names the shard being read when the error happened.
    #[must_use]
    pub fn for_shard(mut self, shard: &ShardId) -> Self {
        self.0.shard = Some(shard.clone());
        self
    }

    /// The shard being read when the error happened (errors of the readers).
    pub fn shard(&self) -> Option<&ShardId> {
        self.0.shard.as_ref()
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The service's error: an in-stream exception, or the refusal of the request.
    pub fn service_error(&self) -> Option<&ServiceError> {
        self.0.service.as_ref()
    }

    /// The code of the service's error (`ResourceInUseException`, …), if any.
    pub fn service_code(&self) -> Option<&str> {
        self.0.service.as_ref().map(ServiceError::code)
    }

    /// The code of the service's error, typed, if any.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.0.service.as_ref().map(ServiceError::error_code)
    }

    /// Whether subscribing again later may succeed: a retryable client error (throttling,
    /// transient, timeout, transport), a retryable in-stream error, or a corrupt stream.
    pub fn is_retryable(&self) -> bool {
        match self.0.kind {
            ErrorKind::Client => self
                .client_error()
                .is_some_and(kds_client::Error::is_retryable),
            ErrorKind::Service => self
                .0
                .service
                .as_ref()
                .is_some_and(ServiceError::is_retryable),
            ErrorKind::Decode | ErrorKind::Timeout | ErrorKind::Protocol => true,
        }
    }

    /// The client's error, for [`ErrorKind::Client`].
    pub fn client_error(&self) -> Option<&kds_client::Error> {
        self.0
            .source
            .as_deref()
            .and_then(|source| source.downcast_ref::<kds_client::Error>())
    }
}

impl From<kds_client::Error> for Error {
    fn from(error: kds_client::Error) -> Self {
        Self::client(error)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(shard) = &self.0.shard {
            write!(f, "{}: ", shard.as_str())?;
        }
        f.write_str(&self.0.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("shard", &self.0.shard)
            .field("message", &self.0.message)
            .field("service", &self.0.service)
            .finish_non_exhaustive()
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
