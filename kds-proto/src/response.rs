//! Turning an HTTP response (status, headers, body) into an operation's output or its error.

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use crate::Protocol;
use crate::error::{DecodeError, DecodeErrorKind};
use crate::model::{Request, Shape};
use crate::service_error::ServiceError;

/// Why [`decode_response`] returned no output.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseError {
    /// The service answered with an error.
    Service(ServiceError),
    /// A successful response whose body could not be decoded.
    Decode(DecodeError),
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Service(e) => write!(f, "service error: {e}"),
            Self::Decode(e) => write!(f, "undecodable response: {e}"),
        }
    }
}

impl std::error::Error for ResponseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Service(e) => Some(e),
            Self::Decode(e) => Some(e),
        }
    }
}

/// Decodes the response to a `Q` request sent in `protocol`.
///
/// A 2xx response is decoded as `Q::Response`, by `Content-Type` checked against the first byte.
/// Any other status becomes a [`ServiceError`].
///
/// # Errors
///
/// [`ResponseError::Service`] for error responses, [`ResponseError::Decode`] for a 2xx body
/// that is not a valid `Q::Response`.
pub fn decode_response<Q: Request>(
    status: StatusCode,
    headers: &HeaderMap,
    body: Bytes,
    protocol: Protocol,
) -> Result<Q::Response, ResponseError> {
    if !status.is_success() {
        return Err(ResponseError::Service(ServiceError::from_response(
            status, headers, &body, protocol,
        )));
    }
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let Some(detected) = Protocol::detect(content_type, &body, protocol) else {
        return Err(ResponseError::Decode(DecodeError::new(
            DecodeErrorKind::UnknownContentType,
            0,
            format!("content type {content_type:?}"),
        )));
    };
    Q::Response::decode_body(body, detected).map_err(ResponseError::Decode)
}
