//! Errors the service returns: decoded from a non-2xx response, an in-stream exception or a
//! PutRecords entry, and classified for retry decisions (after smithy-rs's `THROTTLING_ERRORS`
//! and `TRANSIENT_ERRORS` and the AWS Java SDK's `AwsErrorCode`).

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use crate::Protocol;
use crate::codec::{Reader, cbor::CborReader, json::JsonReader};
use crate::error::{DecodeError, DecodeErrorKind};

/// How a caller should react to a service error.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Over a rate or quota: retry after a backoff with jitter.
    Throttling,
    /// A server-side or transport fault: retry.
    Transient,
    /// The shard iterator is older than five minutes: get a new one, do not retry the call.
    ExpiredIterator,
    /// The signature was judged against a clock that differs from ours: re-sign with the server's
    /// time and retry once.
    ClockSkew,
    /// Retrying the same request cannot help.
    Terminal,
}

/// The Kinesis error codes a caller may act on, typed (the API reference's "Errors" sections,
/// and `ExpiredNextTokenException` of the listings). Compare these rather than code strings;
/// codes not listed here are [`ErrorCode::Other`] and still readable as text through
/// [`ServiceError::code`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `AccessDeniedException`.
    AccessDenied,
    /// `ExpiredIteratorException`: the shard iterator is older than five minutes.
    ExpiredIterator,
    /// `ExpiredNextTokenException`: a listing's pagination token expired.
    ExpiredNextToken,
    /// `InternalFailureException`.
    InternalFailure,
    /// `InvalidArgumentException`: a parameter is out of range or invalid (a sequence number
    /// that is not in the shard, say).
    InvalidArgument,
    /// `KMSAccessDeniedException`.
    KmsAccessDenied,
    /// `KMSDisabledException`.
    KmsDisabled,
    /// `KMSInvalidStateException`.
    KmsInvalidState,
    /// `KMSNotFoundException`.
    KmsNotFound,
    /// `KMSOptInRequired`.
    KmsOptInRequired,
    /// `KMSThrottlingException`.
    KmsThrottling,
    /// `LimitExceededException`: a control-plane rate or a resource limit.
    LimitExceeded,
    /// `ProvisionedThroughputExceededException`: over a shard's read or write rate.
    ProvisionedThroughputExceeded,
    /// `ResourceInUseException`: the stream or consumer is not in the state the call needs
    /// (or, for SubscribeToShard, another subscription is still open).
    ResourceInUse,
    /// `ResourceNotFoundException`: no such stream, shard or consumer.
    ResourceNotFound,
    /// `ValidationException`.
    Validation,
    /// Any other code.
    Other,
}

impl ErrorCode {
    const ALL: [(Self, &'static str); 16] = [
        (Self::AccessDenied, "AccessDeniedException"),
        (Self::ExpiredIterator, "ExpiredIteratorException"),
        (Self::ExpiredNextToken, "ExpiredNextTokenException"),
        (Self::InternalFailure, "InternalFailureException"),
        (Self::InvalidArgument, "InvalidArgumentException"),
        (Self::KmsAccessDenied, "KMSAccessDeniedException"),
        (Self::KmsDisabled, "KMSDisabledException"),
        (Self::KmsInvalidState, "KMSInvalidStateException"),
        (Self::KmsNotFound, "KMSNotFoundException"),
        (Self::KmsOptInRequired, "KMSOptInRequired"),
        (Self::KmsThrottling, "KMSThrottlingException"),
        (Self::LimitExceeded, "LimitExceededException"),
        (
            Self::ProvisionedThroughputExceeded,
            "ProvisionedThroughputExceededException",
        ),
        (Self::ResourceInUse, "ResourceInUseException"),
        (Self::ResourceNotFound, "ResourceNotFoundException"),
        (Self::Validation, "ValidationException"),
    ];

    /// The typed code of a (cleaned) code string; [`ErrorCode::Other`] when it is not listed.
    pub fn of(code: &str) -> Self {
        Self::ALL
            .iter()
            .find(|(_, text)| *text == code)
            .map_or(Self::Other, |(typed, _)| *typed)
    }

    /// The code as the service spells it; `None` for [`ErrorCode::Other`].
    pub fn as_str(self) -> Option<&'static str> {
        Self::ALL
            .iter()
            .find(|(typed, _)| *typed == self)
            .map(|(_, text)| *text)
    }
}

/// An error response from Kinesis, decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceError {
    code: String,
    message: Option<String>,
    status: Option<u16>,
    request_id: Option<String>,
    class: ErrorClass,
}

impl ServiceError {
    /// Builds an error from its parts; the class follows from the code and status.
    pub fn new(
        code: impl Into<String>,
        message: Option<String>,
        status: Option<u16>,
        request_id: Option<String>,
    ) -> Self {
        let code = clean_code(&code.into()).to_owned();
        let class = classify(&code, status.unwrap_or(400));
        Self {
            code,
            message,
            status,
            request_id,
            class,
        }
    }

    /// Decodes a non-2xx response: the code from `x-amzn-ErrorType`, else the body's `__type`,
    /// else its `code`; the message from `x-amzn-error-message`, else the body's `message`,
    /// `Message` or `errorMessage`. The body may be JSON or CBOR whatever `Content-Type` says;
    /// a body that is neither (an HTML or XML page) gives the code `UnknownError`, or the
    /// element name of a bare `<SomethingException/>`.
    pub fn from_response(
        status: StatusCode,
        headers: &HeaderMap,
        body: &Bytes,
        protocol: Protocol,
    ) -> Self {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let request_id = header("x-amzn-requestid").or_else(|| header("x-amz-request-id"));
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let parsed = Protocol::detect(content_type, body, protocol)
            .and_then(|p| decode_error_body(body, p).ok());
        let (body_code, body_message) = match parsed {
            Some(b) => b.code_and_message(),
            None => (markup_code(body), (!body.is_empty()).then(|| snippet(body))),
        };
        let code = header("x-amzn-errortype")
            .or(body_code)
            .unwrap_or_else(|| "UnknownError".to_owned());
        let message = header("x-amzn-error-message").or(body_message);
        Self::new(code, message, Some(status.as_u16()), request_id)
    }

    /// The error code, without namespace (`ProvisionedThroughputExceededException`, say).
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The error code, typed ([`ErrorCode::Other`] for codes callers need not act on).
    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::of(&self.code)
    }

    /// The service's message, if it sent one.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// The HTTP status, for errors that came as a response (not in-stream or per entry).
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The `x-amzn-RequestId` of the response, if any.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// How to react to the error.
    pub fn class(&self) -> ErrorClass {
        self.class
    }

    /// Whether a retry of the same request may succeed (throttling or transient).
    pub fn is_retryable(&self) -> bool {
        matches!(self.class, ErrorClass::Throttling | ErrorClass::Transient)
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code)?;
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        if let Some(status) = self.status {
            write!(f, " (HTTP {status}")?;
            if let Some(id) = &self.request_id {
                write!(f, ", request id {id}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceError")
            .field("code", &self.code)
            .field("message", &self.message)
            .field("status", &self.status)
            .field("request_id", &self.request_id)
            .field("class", &self.class)
            .finish()
    }
}

impl std::error::Error for ServiceError {}

/// Cleans a code as the Java and smithy-rs parsers do: cut from the first `:`, then keep what
/// follows the last `#` (`com.amazon.coral.service#SerializationException` → `SerializationException`).
pub(crate) fn clean_code(code: &str) -> &str {
    let code = code.split(':').next().unwrap_or(code);
    code.rsplit('#').next().unwrap_or(code).trim()
}

/// The class of an error code (and HTTP status, which decides for unknown codes).
pub(crate) fn classify(code: &str, status: u16) -> ErrorClass {
    match code {
        "ProvisionedThroughputExceededException"
        | "LimitExceededException"
        | "KMSThrottlingException"
        | "ThrottlingException"
        | "Throttling"
        | "ThrottledException"
        | "RequestThrottledException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "BandwidthLimitExceeded"
        | "SlowDown"
        | "PriorRequestNotComplete"
        | "EC2ThrottledException" => ErrorClass::Throttling,
        "InternalFailure"
        | "InternalFailureException"
        | "InternalError"
        | "InternalServerError"
        | "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "RequestTimeout"
        | "RequestTimeoutException" => ErrorClass::Transient,
        "ExpiredIteratorException" => ErrorClass::ExpiredIterator,
        "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "RequestExpired"
        | "RequestTimeTooSkewed"
        | "RequestInTheFuture" => ErrorClass::ClockSkew,
        _ => match status {
            429 => ErrorClass::Throttling,
            500 | 502 | 503 | 504 => ErrorClass::Transient,
            _ => ErrorClass::Terminal,
        },
    }
}

/// `<UnknownOperationException/>` (kinesis-mock's answer to a bad content type) names its code.
fn markup_code(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?.trim_start();
    let rest = text.strip_prefix('<')?;
    let name: String = rest
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    (name.ends_with("Exception") || name.ends_with("Error")).then_some(name)
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The members an error body may carry.
#[derive(Default)]
struct ErrorBody {
    type_: Option<String>,
    code: Option<String>,
    message: Option<String>,
    message_upper: Option<String>,
    error_message: Option<String>,
}

/// The message of an error document (an exception event's payload, say): `message`, else
/// `Message`, else `errorMessage`.
pub(crate) fn error_message(body: &Bytes, protocol: Protocol) -> Option<String> {
    decode_error_body(body, protocol).ok()?.code_and_message().1
}

impl ErrorBody {
    /// The code (`__type`, else `code`) and message (`message`, `Message`, `errorMessage`).
    fn code_and_message(self) -> (Option<String>, Option<String>) {
        (
            self.type_.or(self.code),
            self.message.or(self.message_upper).or(self.error_message),
        )
    }
}

fn decode_error_body(body: &Bytes, protocol: Protocol) -> Result<ErrorBody, DecodeError> {
    let mut out = ErrorBody::default();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(out);
    }
    match protocol {
        Protocol::Cbor => read_error_body(&mut CborReader::new(body.clone()), &mut out)?,
        Protocol::Json => read_error_body(&mut JsonReader::new(body), &mut out)?,
    }
    Ok(out)
}

fn read_error_body<R: Reader>(r: &mut R, out: &mut ErrorBody) -> Result<(), DecodeError> {
    #[derive(Clone, Copy)]
    enum Key {
        Type,
        Code,
        Message,
        MessageUpper,
        ErrorMessage,
    }
    const KEYS: &[(&str, Key)] = &[
        ("__type", Key::Type),
        ("code", Key::Code),
        ("message", Key::Message),
        ("Message", Key::MessageUpper),
        ("errorMessage", Key::ErrorMessage),
    ];
    r.begin_map()?;
    while let Some(key) = r.next_key(KEYS)? {
        let slot = match key {
            Some(Key::Type) => &mut out.type_,
            Some(Key::Code) => &mut out.code,
            Some(Key::Message) => &mut out.message,
            Some(Key::MessageUpper) => &mut out.message_upper,
            Some(Key::ErrorMessage) => &mut out.error_message,
            None => {
                r.skip_value()?;
                continue;
            }
        };
        if r.take_null()? {
            continue;
        }
        // A member of another type than string is passed over, not fatal.
        let at = r.offset();
        match r.read_string() {
            Ok(s) => *slot = Some(s),
            Err(e) if e.kind() == DecodeErrorKind::TypeMismatch && e.offset() == Some(at) => {
                r.skip_value()?;
            }
            Err(e) => return Err(e),
        }
    }
    r.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, content_type: Option<&str>, body: &'static [u8]) -> ServiceError {
        let mut headers = HeaderMap::new();
        if let Some(ct) = content_type {
            headers.insert(http::header::CONTENT_TYPE, ct.parse().unwrap());
        }
        headers.insert("x-amzn-RequestId", "req-1".parse().unwrap());
        ServiceError::from_response(
            StatusCode::from_u16(status).unwrap(),
            &headers,
            &Bytes::from_static(body),
            Protocol::Cbor,
        )
    }

    #[test]
    fn typed_codes_round_trip_and_others_stay_text() {
        for (typed, text) in ErrorCode::ALL {
            assert_eq!(ErrorCode::of(text), typed);
            assert_eq!(typed.as_str(), Some(text));
        }
        assert_eq!(ErrorCode::of("SomethingNewException"), ErrorCode::Other);
        assert_eq!(ErrorCode::Other.as_str(), None);
        let error = ServiceError::new(
            "com.amazon.coral.service#ResourceInUseException",
            None,
            Some(400),
            None,
        );
        assert_eq!(error.error_code(), ErrorCode::ResourceInUse);
        assert_eq!(response(500, None, b"").error_code(), ErrorCode::Other);
    }

    #[test]
    fn codes_are_cleaned() {
        assert_eq!(
            clean_code("com.amazon.coral.service#SerializationException"),
            "SerializationException"
        );
        assert_eq!(
            clean_code("ResourceNotFoundException:http://internal.amazon.com/x"),
            "ResourceNotFoundException"
        );
        assert_eq!(clean_code("Plain"), "Plain");
    }

    #[test]
    fn json_error_body_to_a_cbor_request_is_decoded() {
        let e = response(
            503,
            Some("application/x-amz-cbor-1.1"),
            br#"{"code":"ServiceUnavailable","message":"The request has failed due to a temporary failure of the server."}"#,
        );
        assert_eq!(e.code(), "ServiceUnavailable");
        assert_eq!(e.class(), ErrorClass::Transient);
        assert_eq!(e.request_id(), Some("req-1"));
        assert_eq!(e.status(), Some(503));
    }

    #[test]
    fn serialization_exception_uses_capital_message() {
        let e = response(
            400,
            Some("application/x-amz-json-1.1"),
            br#"{"__type":"com.amazon.coral.service#SerializationException","Message":"bad"}"#,
        );
        assert_eq!(e.code(), "SerializationException");
        assert_eq!(e.message(), Some("bad"));
        assert_eq!(e.class(), ErrorClass::Terminal);
    }

    #[test]
    fn markup_bodies_give_a_generic_error() {
        let e = response(404, Some("text/xml"), b"<UnknownOperationException/>");
        assert_eq!(e.code(), "UnknownOperationException");
        let e = response(
            502,
            Some("text/html"),
            b"<html><body>Bad gateway</body></html>",
        );
        assert_eq!(e.code(), "UnknownError");
        assert_eq!(e.class(), ErrorClass::Transient);
        assert!(e.message().unwrap().contains("Bad gateway"));
        let e = response(500, None, b"");
        assert_eq!(e.code(), "UnknownError");
        assert_eq!(e.class(), ErrorClass::Transient);
    }

    #[test]
    fn classes_follow_the_protocol_table() {
        assert_eq!(
            classify("ProvisionedThroughputExceededException", 400),
            ErrorClass::Throttling
        );
        assert_eq!(
            classify("LimitExceededException", 400),
            ErrorClass::Throttling
        );
        assert_eq!(
            classify("KMSThrottlingException", 400),
            ErrorClass::Throttling
        );
        assert_eq!(
            classify("ExpiredIteratorException", 400),
            ErrorClass::ExpiredIterator
        );
        assert_eq!(classify("RequestTimeTooSkewed", 403), ErrorClass::ClockSkew);
        assert_eq!(
            classify("InvalidSignatureException", 400),
            ErrorClass::ClockSkew
        );
        assert_eq!(
            classify("ResourceNotFoundException", 400),
            ErrorClass::Terminal
        );
        assert_eq!(classify("InternalFailure", 500), ErrorClass::Transient);
        assert_eq!(classify("Whatever", 504), ErrorClass::Transient);
        assert_eq!(classify("Whatever", 429), ErrorClass::Throttling);
    }
}
