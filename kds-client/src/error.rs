//! The client's error: an opaque type with a public kind, naming the operation, the number of
//! attempts and the service's request id.

use std::fmt;

use kds_proto::types::ShardId;
use kds_proto::{ErrorClass, ErrorCode, ServiceError};

/// A failed call, or a client that could not be built.
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    /// The shard being read, for errors of the readers.
    shard: Option<ShardId>,
    operation: Option<&'static str>,
    attempts: u32,
    message: String,
    service: Option<ServiceError>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// The kind of an [`Error`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The service answered with an error ([`Error::service_error`] has it, with its class).
    Service,
    /// A connect, attempt or total timeout expired.
    Timeout,
    /// The connection failed: refused, reset, closed by GOAWAY, a TLS failure.
    Transport,
    /// A successful response whose body is not the operation's output.
    Decode,
    /// The request breaks a documented constraint and was not sent.
    InvalidRequest,
    /// No credentials could be had from the provider.
    Credentials,
    /// The client configuration is unusable (endpoint, region, TLS setup).
    Config,
    /// A shard ended, but ListShards names no shard that follows it (yet).
    Lineage,
    /// A reader's task panicked (a bug in kds); its shard is not read further.
    Panic,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            kind,
            shard: None,
            operation: None,
            attempts: 0,
            message: message.into(),
            service: None,
            source: None,
        }))
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    pub(crate) fn service(error: ServiceError) -> Self {
        let mut e = Self::new(ErrorKind::Service, error.to_string());
        e.0.service = Some(error);
        e
    }

    pub(crate) fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.0.source = Some(source.into());
        self
    }

    /// This error, caused by `cause`, whose service error it keeps.
    pub(crate) fn caused_by(mut self, cause: Self) -> Self {
        self.0.service = cause.0.service.clone();
        self.0.source = Some(Box::new(cause));
        self
    }

    /// Names the operation without changing the attempt count.
    pub(crate) fn in_operation(mut self, operation: &'static str) -> Self {
        self.0.operation = Some(operation);
        self
    }

    pub(crate) fn in_call(mut self, operation: &'static str, attempts: u32) -> Self {
        self.0.operation = Some(operation);
        self.0.attempts = attempts;
        self
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

    /// The operation called, `PutRecords` say.
    pub fn operation(&self) -> Option<&'static str> {
        self.0.operation
    }

    /// How many attempts were made (0 when the request was refused before any; an attempt that
    /// failed to get credentials counts).
    pub fn attempts(&self) -> u32 {
        self.0.attempts
    }

    /// The service's error: for [`ErrorKind::Service`], and for a [`ErrorKind::Timeout`] of the
    /// total timeout whose last attempt the service refused.
    pub fn service_error(&self) -> Option<&ServiceError> {
        self.0.service.as_ref()
    }

    /// The code of the service's error (`ResourceNotFoundException`, …), if any.
    pub fn service_code(&self) -> Option<&str> {
        self.0.service.as_ref().map(ServiceError::code)
    }

    /// The code of the service's error, typed, if any.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.0.service.as_ref().map(ServiceError::error_code)
    }

    /// The request id of the service's error response.
    pub fn request_id(&self) -> Option<&str> {
        self.0.service.as_ref().and_then(ServiceError::request_id)
    }

    /// Whether calling again later may succeed: throttling, transient service errors, timeouts,
    /// transport failures, and children of an ended shard not listed yet.
    pub fn is_retryable(&self) -> bool {
        match self.0.kind {
            ErrorKind::Service => self.0.service.as_ref().is_some_and(|s| {
                matches!(s.class(), ErrorClass::Throttling | ErrorClass::Transient)
            }),
            ErrorKind::Timeout | ErrorKind::Transport | ErrorKind::Lineage => true,
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(shard) = &self.0.shard {
            write!(f, "{}: ", shard.as_str())?;
        }
        if let Some(operation) = self.0.operation {
            write!(f, "{operation}: ")?;
        }
        f.write_str(&self.0.message)?;
        // The whole chain: wrappers such as hyper's "client error (Connect)" hide the cause
        // ("Connection refused") in their own source.
        let mut source = self
            .0
            .source
            .as_deref()
            .map(|s| s as &dyn std::error::Error);
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            // An error of this crate has written its own chain.
            source = match cause.downcast_ref::<Self>() {
                Some(_) => None,
                None => cause.source(),
            };
        }
        // The service error's text carries its request id.
        if self.0.attempts > 1 {
            write!(f, " (after {} attempts)", self.0.attempts)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("shard", &self.0.shard)
            .field("operation", &self.0.operation)
            .field("attempts", &self.0.attempts)
            .field("message", &self.0.message)
            .field("service", &self.0.service)
            .field("source", &self.0.source)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        if let Some(service) = &self.0.service {
            return Some(service);
        }
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, StatusCode};
    use kds_proto::{Protocol, ServiceError};

    use super::*;

    #[test]
    fn a_timeout_keeps_the_service_error_of_the_last_attempt() {
        let body = bytes::Bytes::from_static(
            br#"{"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded"}"#,
        );
        let mut headers = HeaderMap::new();
        headers.insert("x-amzn-RequestId", "req-1".parse().unwrap());
        let service =
            ServiceError::from_response(StatusCode::BAD_REQUEST, &headers, &body, Protocol::Json);
        let error = Error::new(ErrorKind::Timeout, "no success within the total timeout")
            .caused_by(Error::service(service))
            .in_call("GetRecords", 7);
        assert_eq!(error.kind(), ErrorKind::Timeout);
        assert_eq!(error.request_id(), Some("req-1"));
        assert_eq!(
            error.service_error().map(ServiceError::class),
            Some(ErrorClass::Throttling)
        );
        let text = error.to_string();
        assert!(
            text.starts_with("GetRecords: no success within the total timeout: "),
            "{text}"
        );
        assert!(text.ends_with("(after 7 attempts)"), "{text}");
        assert_eq!(text.matches("req-1").count(), 1, "{text}");
    }
}
