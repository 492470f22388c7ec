//! The client: typed calls of every operation in `kds-proto`, signed, retried per the
//! operation's policy, and bounded by connect, attempt and total timeouts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::provider::ProvideCredentials;
use bytes::Bytes;
use kds_proto::model::{GetRecordsInput, GetRecordsOutput, RecordRef, RecordsPage};
use kds_proto::{
    ErrorClass, Limits, Protocol, Request, ResponseError, ServiceError, decode_response,
};
use tokio::time::Instant;
use tracing::Instrument;

use crate::credentials::Credentials;
use crate::credentials::{CachedCredentials, EnvironmentVariables, shared};
use crate::dynamodb::DynamoDbClient;
use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorKind};
use crate::retry::RetryPolicy;
use crate::signing::Signer;
use crate::transport::{HttpVersion, Response, Transport, TransportConfig, read_body};

/// Error codes that say the credentials expired or are unknown: the cache is dropped and the
/// call retried once with fresh ones.
const EXPIRED_CREDENTIALS: &[&str] = &[
    "ExpiredToken",
    "ExpiredTokenException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
];

/// Builds a [`Client`].
#[derive(Debug)]
pub struct ClientBuilder {
    region: Option<String>,
    endpoint: Option<String>,
    protocol: Protocol,
    credentials: Option<Arc<CachedCredentials>>,
    retry: HashMap<String, RetryPolicy>,
    connect_timeout: Duration,
    attempt_timeout: Duration,
    total_timeout: Duration,
    version: HttpVersion,
    keep_alive: (Duration, Duration),
    trust_all_certificates: bool,
    limits: Limits,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            region: None,
            endpoint: None,
            protocol: Protocol::Json,
            credentials: None,
            retry: HashMap::new(),
            connect_timeout: Duration::from_secs(3),
            attempt_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(120),
            version: HttpVersion::Auto,
            keep_alive: (Duration::from_secs(30), Duration::from_secs(10)),
            trust_all_certificates: false,
            limits: Limits::default(),
        }
    }
}

impl ClientBuilder {
    /// The region requests are signed for, and whose endpoint they go to unless
    /// [`endpoint`](Self::endpoint) says otherwise. Required.
    #[must_use]
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// An explicit endpoint URL (`aws.endpoint`), `http://127.0.0.1:4567` say.
    #[must_use]
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// JSON 1.1 (the default) or CBOR 1.1.
    #[must_use]
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Where credentials come from; cached, and refreshed five minutes before they expire.
    /// Defaults to [`EnvironmentVariables`].
    #[must_use]
    pub fn credentials(mut self, provider: impl ProvideCredentials + 'static) -> Self {
        self.credentials = Some(shared(provider));
        self
    }

    /// The retry policy of `operation` (`GetRecords` say), instead of
    /// [`RetryPolicy::default_for`].
    #[must_use]
    pub fn retry_policy(mut self, operation: &str, policy: RetryPolicy) -> Self {
        self.retry.insert(operation.to_owned(), policy);
        self
    }

    /// How long a connection may take to open (default 3 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one attempt may take, from sending the request to the end of the response
    /// (default 30 s).
    #[must_use]
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// How long a call may take, every attempt and backoff included (default 2 min).
    #[must_use]
    pub fn total_timeout(mut self, timeout: Duration) -> Self {
        self.total_timeout = timeout;
        self
    }

    /// The HTTP versions spoken (default: ALPN on TLS, HTTP/1.1 on plain endpoints).
    #[must_use]
    pub fn http_version(mut self, version: HttpVersion) -> Self {
        self.version = version;
        self
    }

    /// HTTP/2 keep-alive: a PING after `interval` without frames from the server, and the
    /// connection closed (its requests failing) when no answer comes within `timeout`. Turns
    /// a dead peer under a long-lived request (a SubscribeToShard stream) into an error.
    /// Default: 30 s and 10 s.
    #[must_use]
    pub fn http2_keep_alive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.keep_alive = (interval, timeout);
        self
    }

    /// Accepts any server certificate (`aws.trust.all.certificates`). Off by default; only for
    /// test endpoints with self-signed certificates.
    #[must_use]
    pub fn trust_all_certificates(mut self, trust: bool) -> Self {
        self.trust_all_certificates = trust;
        self
    }

    /// The stream limits requests are checked against before they are sent (the record size
    /// of streams with `MaxRecordSizeInKiB` above 1024, say).
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The client.
    ///
    /// # Errors
    ///
    /// `Config` without a region, with a bad region or endpoint, or when TLS cannot be set up
    /// (no root certificates on the system).
    pub fn build(self) -> Result<Client, Error> {
        let region = self
            .region
            .ok_or_else(|| Error::config("a region is required (it is part of the signature)"))?;
        let endpoint = match &self.endpoint {
            Some(url) => Endpoint::parse(url)?,
            None => Endpoint::for_region(&region)?,
        };
        let transport = Transport::new(&TransportConfig {
            version: self.version,
            connect_timeout: self.connect_timeout,
            trust_all_certificates: self.trust_all_certificates,
            tls: endpoint.is_tls(),
            pool_idle_timeout: Duration::from_secs(60),
            max_idle_per_host: 64,
            keep_alive_interval: self.keep_alive.0,
            keep_alive_timeout: self.keep_alive.1,
        })?;
        Ok(Client {
            inner: Arc::new(Inner {
                transport,
                signer: Arc::new(Signer::new(region, Service::Kinesis.signing_name())),
                service: Service::Kinesis,
                endpoint,
                protocol: self.protocol,
                credentials: self
                    .credentials
                    .unwrap_or_else(|| shared(EnvironmentVariables)),
                retry: self.retry,
                attempt_timeout: self.attempt_timeout,
                total_timeout: self.total_timeout,
                limits: self.limits,
            }),
        })
    }
}

/// A Kinesis client. Cheap to clone: clones share connections and credentials.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Clone, Debug)]
struct Inner {
    transport: Transport,
    /// Shared with clients made by `with_own_connections`: the clock offset it learns holds
    /// for them too.
    signer: Arc<Signer>,
    /// Kinesis, or DynamoDB for a [`DynamoDbClient`].
    service: Service,
    endpoint: Endpoint,
    protocol: Protocol,
    credentials: Arc<CachedCredentials>,
    retry: HashMap<String, RetryPolicy>,
    attempt_timeout: Duration,
    total_timeout: Duration,
    limits: Limits,
}

/// The service a client calls: what it signs for and how requests name their operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Service {
    /// Kinesis: awsJson1.1 or CBOR 1.1, `Kinesis_20131202.<Operation>`.
    Kinesis,
    /// DynamoDB: awsJson1.0, `DynamoDB_20120810.<Operation>`.
    DynamoDb,
}

impl Service {
    pub(crate) fn signing_name(self) -> &'static str {
        match self {
            Self::Kinesis => "kinesis",
            Self::DynamoDb => "dynamodb",
        }
    }

    fn content_type(self, protocol: Protocol) -> &'static str {
        match self {
            Self::Kinesis => protocol.content_type(),
            Self::DynamoDb => "application/x-amz-json-1.0",
        }
    }
}

/// One operation call, as the retry loop and its logs see it.
pub(crate) struct Call<'a> {
    pub(crate) operation: &'static str,
    /// The `X-Amz-Target` header.
    pub(crate) target: &'a str,
    pub(crate) stream: &'a str,
    pub(crate) shard: &'a str,
}

/// Why one attempt failed, and what the server's clock said.
struct Failure {
    error: Error,
    server_date: Option<String>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self {
            error,
            server_date: None,
        }
    }
}

impl Client {
    /// A builder.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client like this one (endpoint, credentials and their cache, retries, timeouts) whose
    /// requests go over connections of its own. HTTP/2 multiplexes a client's requests over
    /// one connection per endpoint, up to the server's limit of concurrent streams; long-lived
    /// requests such as SubscribeToShard beyond that limit wait for a stream to end. Spread
    /// them over clients made by this method.
    pub fn with_own_connections(&self) -> Self {
        let mut inner = Inner::clone(&self.inner);
        inner.transport = self.inner.transport.with_own_pool();
        Self {
            inner: Arc::new(inner),
        }
    }

    /// A client of DynamoDB at `endpoint` (default: the region's,
    /// `https://dynamodb.{region}.amazonaws.com`), signed for the same region with the same
    /// credentials, timeouts and TLS settings, over HTTP/1.1.
    ///
    /// # Errors
    ///
    /// `Config` for an endpoint that is not a URL, or when TLS cannot be set up.
    pub fn dynamodb(&self, endpoint: Option<&str>) -> Result<DynamoDbClient, Error> {
        let inner = &self.inner;
        let endpoint = match endpoint {
            Some(url) => Endpoint::parse(url)?,
            None => Endpoint::regional("dynamodb", inner.signer.region())?,
        };
        let service = Service::DynamoDb;
        let client = Self {
            inner: Arc::new(Inner {
                // DynamoDB speaks HTTP/1.1, whatever the Kinesis client speaks (HTTP/2 only
                // for enhanced fan-out).
                transport: inner
                    .transport
                    .for_endpoint(endpoint.is_tls(), HttpVersion::Http1)?,
                signer: Arc::new(inner.signer.for_service(service.signing_name())),
                service,
                endpoint,
                protocol: Protocol::Json,
                credentials: Arc::clone(&inner.credentials),
                retry: inner.retry.clone(),
                attempt_timeout: inner.attempt_timeout,
                total_timeout: inner.total_timeout,
                limits: inner.limits,
            }),
        };
        Ok(DynamoDbClient::new(client))
    }

    /// The protocol requests are sent in.
    pub fn protocol(&self) -> Protocol {
        self.inner.protocol
    }

    /// Where requests go.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// The retry policy of `operation`.
    pub fn retry_policy(&self, operation: &str) -> RetryPolicy {
        self.inner
            .retry
            .get(operation)
            .copied()
            .unwrap_or_else(|| RetryPolicy::default_for(operation))
    }

    /// Calls the operation of `request` and returns its output. Every operation but
    /// SubscribeToShard, whose event stream kds-efo reads.
    ///
    /// The request is checked first ([`Request::validate`]), encoded once, and signed anew
    /// for each attempt. Throttling, transient service errors, timeouts and transport failures
    /// are retried per the operation's [`RetryPolicy`] within the total timeout; a clock-skew
    /// error is retried once at once, signed with the server's clock; expired or unknown
    /// credentials once, with fresh ones; an expired iterator and terminal errors are not
    /// retried. Fetching credentials counts against the attempt timeout.
    ///
    /// # Errors
    ///
    /// An [`Error`] naming the operation and the attempts made: `InvalidRequest` before
    /// anything is sent, `Service` with the service's error and request id, `Timeout`,
    /// `Transport`, `Decode` or `Credentials`.
    pub async fn send<Q: Request>(&self, request: &Q) -> Result<Q::Response, Error> {
        self.call(request, |response, protocol| {
            decode_response::<Q>(response.status, &response.headers, response.body, protocol)
        })
        .await
    }

    /// Calls GetRecords and lends each record of the page to `visit` as it is decoded, without
    /// an owned [`Record`](kds_proto::model::Record) per record (the cheapest way to read a
    /// page; see `GetRecordsOutput::visit_records`). Returns the rest of the page. Retries,
    /// timeouts and errors are those of [`send`](Self::send); records are visited only from a
    /// successful response, once.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send). On a `Decode` error, the records visited before it belong to
    /// a page that did not decode whole.
    pub async fn get_records_visit(
        &self,
        request: &GetRecordsInput,
        mut visit: impl FnMut(RecordRef<'_>),
    ) -> Result<RecordsPage, Error> {
        self.call(request, |response, protocol| {
            if !response.status.is_success() {
                return Err(ResponseError::Service(ServiceError::from_response(
                    response.status,
                    &response.headers,
                    &response.body,
                    protocol,
                )));
            }
            let content_type = response
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            let detected =
                Protocol::detect(content_type, &response.body, protocol).unwrap_or(protocol);
            GetRecordsOutput::visit_records(response.body, detected, &mut visit)
                .map_err(ResponseError::Decode)
        })
        .await
    }

    /// Sends `request` with retries and timeouts; `decode` turns a whole response into the
    /// result or the service's error.
    async fn call<Q: Request, T>(
        &self,
        request: &Q,
        decode: impl FnMut(Response, Protocol) -> Result<T, ResponseError>,
    ) -> Result<T, Error> {
        let operation = Q::OPERATION;
        if operation == "SubscribeToShard" {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                "SubscribeToShard answers with a stream of events, which kds-efo reads",
            )
            .in_call(operation, 0));
        }
        let body = self.body(request)?;
        let call = Call {
            operation,
            target: Q::TARGET,
            stream: request.stream().unwrap_or_default(),
            shard: request.shard().unwrap_or_default(),
        };
        self.call_with(&call, &body, decode).await
    }

    /// Sends `body` as `call`, retried, and decodes the response with `decode`.
    pub(crate) async fn call_with<T>(
        &self,
        call: &Call<'_>,
        body: &Bytes,
        mut decode: impl FnMut(Response, Protocol) -> Result<T, ResponseError>,
    ) -> Result<T, Error> {
        let operation = call.operation;
        let policy = self.retry_policy(operation);
        let now = Instant::now();
        let deadline = now
            .checked_add(self.inner.total_timeout)
            .unwrap_or(now + Duration::from_secs(365 * 86_400));
        let mut attempts = 0;
        let mut retries = 0;
        let mut resigned = false;
        let mut refreshed = false;
        loop {
            attempts += 1;
            let span = tracing::debug_span!(
                "aws",
                service = self.inner.service.signing_name(),
                operation,
                stream = call.stream,
                shard = call.shard,
                attempt = attempts
            );
            let started = Instant::now();
            let outcome = self
                .attempt(call.target, body, deadline, &mut decode)
                .instrument(span.clone())
                .await;
            let failure = match outcome {
                Ok(output) => {
                    span.in_scope(|| tracing::debug!(latency = ?started.elapsed(), "ok"));
                    return Ok(output);
                }
                Err(failure) => failure,
            };
            let error = failure.error;
            span.in_scope(|| {
                tracing::debug!(latency = ?started.elapsed(), error = %error, "attempt failed");
            });
            let code = error.service_error().map(ServiceError::code);
            let time_left = Instant::now() < deadline;
            if error.service_error().map(ServiceError::class) == Some(ErrorClass::ClockSkew)
                && !resigned
                && time_left
            {
                resigned = true;
                if failure
                    .server_date
                    .as_deref()
                    .is_some_and(|date| self.inner.signer.learn_offset(date))
                {
                    continue;
                }
            }
            if code.is_some_and(|c| EXPIRED_CREDENTIALS.contains(&c)) && !refreshed && time_left {
                // Credentials without an expiry (static, environment, profile) are cached until
                // the service calls them expired or unknown.
                refreshed = true;
                self.inner.credentials.invalidate().await;
                continue;
            }
            if !error.is_retryable() || retries >= policy.max_retries {
                return Err(error.in_call(operation, attempts));
            }
            let wait = policy.backoff(retries, fastrand::f64());
            if Instant::now()
                .checked_add(wait)
                .is_none_or(|end| end >= deadline)
            {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "no success within the total timeout of {:?}; the last attempt failed",
                        self.inner.total_timeout
                    ),
                )
                .caused_by(error)
                .in_call(operation, attempts));
            }
            retries += 1;
            tokio::time::sleep(wait).await;
        }
    }

    /// The body of `request`, checked against the stream limits first.
    fn body<Q: Request>(&self, request: &Q) -> Result<Bytes, Error> {
        request.validate(&self.inner.limits).map_err(|e| {
            Error::new(ErrorKind::InvalidRequest, "the request is invalid")
                .with_source(e)
                .in_call(Q::OPERATION, 0)
        })?;
        Ok(Bytes::from(request.encode_body(self.inner.protocol)))
    }

    /// Credentials from the cache or the provider, within `wait`.
    async fn credentials(&self, wait: Duration) -> Result<Credentials, Error> {
        tokio::time::timeout(wait, self.inner.credentials.get())
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Timeout,
                    format!("no credentials from the provider within {wait:?}"),
                )
            })?
            .map_err(|e| {
                Error::new(ErrorKind::Credentials, "no credentials could be had").with_source(e)
            })
    }

    /// The signed HTTP request of the operation `target` (its `X-Amz-Target`) with `body`.
    fn signed(
        &self,
        target: &str,
        body: &Bytes,
        credentials: &Credentials,
    ) -> Result<http::Request<Bytes>, Error> {
        let inner = &self.inner;
        let mut request = http::Request::builder()
            .method(http::Method::POST)
            .uri(inner.endpoint.uri().clone())
            .header(
                http::header::CONTENT_TYPE,
                inner.service.content_type(inner.protocol),
            )
            .header("x-amz-target", target)
            .body(body.clone())
            .map_err(|e| Error::config("cannot build the request").with_source(e))?;
        inner
            .signer
            .sign(&mut request, credentials, inner.signer.now())?;
        Ok(request)
    }

    /// Sends `request` once and returns its body as a stream of chunks as soon as a successful
    /// response head arrives (within the attempt timeout), for operations that answer with an
    /// event stream: SubscribeToShard. It is not retried (resubscribing is the caller's
    /// decision), and the body has no timeout of its own: readers watch for inactivity.
    ///
    /// # Errors
    ///
    /// `InvalidRequest`, `Credentials`, `Timeout` or `Transport` as for
    /// [`send`](Self::send), and `Service` when the service refuses the request.
    pub async fn open_stream<Q: Request>(&self, request: &Q) -> Result<ResponseStream, Error> {
        let operation = Q::OPERATION;
        let fail = |error: Error| error.in_call(operation, 1);
        let body = self.body(request)?;
        let timeout = self.inner.attempt_timeout;
        let started = Instant::now();
        let credentials = self.credentials(timeout).await.map_err(fail)?;
        let signed = self.signed(Q::TARGET, &body, &credentials).map_err(fail)?;
        let left = timeout.saturating_sub(started.elapsed());
        let response = tokio::time::timeout(left, self.inner.transport.open(signed))
            .await
            .map_err(|_| {
                fail(Error::new(
                    ErrorKind::Timeout,
                    format!("no response within {timeout:?}"),
                ))
            })?
            .map_err(fail)?;
        let (parts, body) = response.into_parts();
        if !parts.status.is_success() {
            let left = timeout.saturating_sub(started.elapsed());
            let body = tokio::time::timeout(left, read_body(body, self.inner.transport.buffers()))
                .await
                .map_err(|_| {
                    fail(Error::new(
                        ErrorKind::Timeout,
                        format!("no response within {timeout:?}"),
                    ))
                })?
                .map_err(fail)?;
            let service = ServiceError::from_response(
                parts.status,
                &parts.headers,
                &body,
                self.inner.protocol,
            );
            return Err(fail(Error::service(service)));
        }
        Ok(ResponseStream {
            body,
            protocol: self.inner.protocol,
            operation,
        })
    }

    async fn attempt<T>(
        &self,
        target: &str,
        body: &Bytes,
        deadline: Instant,
        decode: &mut impl FnMut(Response, Protocol) -> Result<T, ResponseError>,
    ) -> Result<T, Failure> {
        let inner = &self.inner;
        let remaining = || deadline.saturating_duration_since(Instant::now());
        let credentials = self
            .credentials(inner.attempt_timeout.min(remaining()))
            .await?;
        let request = self.signed(target, body, &credentials)?;
        let timeout = inner.attempt_timeout.min(remaining());
        let response = tokio::time::timeout(timeout, inner.transport.send(request))
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Timeout,
                    format!("no response within {timeout:?}"),
                )
            })??;
        let server_date = response
            .headers
            .get(http::header::DATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Given back once decoded: kept for the next body when nothing decoded holds it.
        let body = response.body.clone();
        let decoded = decode(response, inner.protocol);
        inner.transport.buffers().give_back(body);
        decoded.map_err(|e| Failure {
            error: match e {
                ResponseError::Service(service) => Error::service(service),
                ResponseError::Decode(decode) => Error::new(
                    ErrorKind::Decode,
                    "the response is not the operation's output",
                )
                .with_source(decode),
                other => Error::new(ErrorKind::Decode, other.to_string()),
            },
            server_date,
        })
    }
}

/// The body of a response that streams (SubscribeToShard), chunk by chunk.
#[derive(Debug)]
pub struct ResponseStream {
    body: hyper::body::Incoming,
    protocol: Protocol,
    operation: &'static str,
}

impl ResponseStream {
    /// The protocol of the request: event payloads without a content type are read in it.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The next chunk of the body, `None` at its end.
    ///
    /// # Errors
    ///
    /// `Transport` when the body breaks off (a reset, a GOAWAY, a closed connection).
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, Error> {
        use http_body_util::BodyExt as _;
        loop {
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(
                        Error::new(ErrorKind::Transport, "the response stream broke off")
                            .with_source(e)
                            .in_operation(self.operation),
                    );
                }
                Some(Ok(frame)) => {
                    // Trailers carry nothing a reader needs.
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }
}
