//! HTTP: a pooled hyper client over TCP and rustls, HTTP/1.1 or HTTP/2 by ALPN on TLS, HTTP/1.1
//! or HTTP/2 with prior knowledge on plain endpoints.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::error::{Error, ErrorKind};

/// The HTTP versions a client speaks.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/2 or HTTP/1.1 as ALPN settles on TLS; HTTP/1.1 on plain endpoints.
    #[default]
    Auto,
    /// HTTP/1.1 only (the connector's `HTTP1_1`).
    Http1,
    /// HTTP/2 only: by ALPN on TLS, with prior knowledge (h2c) on plain endpoints (the
    /// connector's `HTTP2`).
    Http2,
}

/// The largest response body read: a 10 MiB GetRecords page as base64 JSON, and room.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// The connection settings of a client.
#[derive(Clone, Debug)]
pub(crate) struct TransportConfig {
    pub(crate) version: HttpVersion,
    pub(crate) connect_timeout: Duration,
    pub(crate) trust_all_certificates: bool,
    /// Whether the endpoint is `https`.
    pub(crate) tls: bool,
    pub(crate) pool_idle_timeout: Duration,
    pub(crate) max_idle_per_host: usize,
    pub(crate) keep_alive_interval: Duration,
    pub(crate) keep_alive_timeout: Duration,
}

/// Sends requests and reads whole responses.
#[derive(Clone, Debug)]
pub(crate) struct Transport {
    client: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// What new pools are built from: TLS set up once.
    connector: HttpsConnector<HttpConnector>,
    config: TransportConfig,
    buffers: BodyBuffers,
}

/// A whole response.
pub(crate) struct Response {
    pub(crate) status: http::StatusCode,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Bytes,
}

impl Transport {
    pub(crate) fn new(config: &TransportConfig) -> Result<Self, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::config("no TLS protocol versions").with_source(e))?;
        let tls = if config.trust_all_certificates {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(TrustAll(
                    provider.signature_verification_algorithms,
                )))
                .with_no_client_auth()
        } else if !config.tls {
            // Plain endpoints never use TLS: no need for the system's certificates.
            builder
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        } else {
            let mut roots = rustls::RootCertStore::empty();
            let native = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                return Err(Error::config(format!(
                    "no trusted root certificates found on this system ({} errors reading them)",
                    native.errors.len()
                )));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http();
        let https = match config.version {
            HttpVersion::Auto => https.enable_http1().enable_http2().wrap_connector(http),
            HttpVersion::Http1 => https.enable_http1().wrap_connector(http),
            HttpVersion::Http2 => https.enable_http2().wrap_connector(http),
        };
        Ok(Self {
            client: pool(&https, config),
            connector: https,
            config: config.clone(),
            buffers: BodyBuffers::default(),
        })
    }

    /// A transport with the same settings for an endpoint that is `https` or not, spoken to
    /// in `version`: this one when neither changes, a new one (with the system's
    /// certificates when needed) when one does.
    pub(crate) fn for_endpoint(&self, tls: bool, version: HttpVersion) -> Result<Self, Error> {
        if tls == self.config.tls && version == self.config.version {
            return Ok(self.clone());
        }
        Self::new(&TransportConfig {
            tls,
            version,
            ..self.config.clone()
        })
    }

    /// A transport with the same settings and connections of its own.
    pub(crate) fn with_own_pool(&self) -> Self {
        Self {
            client: pool(&self.connector, &self.config),
            connector: self.connector.clone(),
            config: self.config.clone(),
            buffers: self.buffers.clone(),
        }
    }

    /// Sends `request` and reads the whole response.
    pub(crate) async fn send(&self, request: http::Request<Bytes>) -> Result<Response, Error> {
        let response = self.open(request).await?;
        let (parts, body) = response.into_parts();
        let body = read_body(body, &self.buffers).await?;
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// Sends `request` and returns the response once its head has arrived.
    pub(crate) async fn open(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Incoming>, Error> {
        let authority = request
            .uri()
            .authority()
            .map_or_else(String::new, ToString::to_string);
        self.client
            .request(request.map(Full::new))
            .await
            .map_err(|e| {
                if timed_out(&e) {
                    Error::new(
                        ErrorKind::Timeout,
                        format!("no connection to {authority} within the connect timeout"),
                    )
                    .with_source(e)
                } else if e.is_connect() {
                    Error::new(
                        ErrorKind::Transport,
                        format!("cannot connect to {authority}"),
                    )
                    .with_source(e)
                } else {
                    Error::new(ErrorKind::Transport, "the connection failed").with_source(e)
                }
            })
    }

    /// The buffers whole bodies are read into.
    pub(crate) fn buffers(&self) -> &BodyBuffers {
        &self.buffers
    }
}

/// A pool of connections made by `connector`.
fn pool(
    connector: &HttpsConnector<HttpConnector>,
    config: &TransportConfig,
) -> HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>> {
    HyperClient::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(config.pool_idle_timeout)
        .pool_max_idle_per_host(config.max_idle_per_host)
        .http2_only(config.version == HttpVersion::Http2)
        .http2_keep_alive_interval(config.keep_alive_interval)
        .http2_keep_alive_timeout(config.keep_alive_timeout)
        // Room for a whole SubscribeToShard event in one DATA frame (16 KiB by default), so
        // the event-stream decoder can slice it without copying it together first.
        .http2_max_frame_size(256 * 1024)
        .build(connector.clone())
}

/// The most bytes of buffers [`BodyBuffers`] keeps between calls.
const KEPT_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Buffers that bodies arriving in pieces are joined into, kept from call to call (shared by
/// a client's clones).
///
/// A page of records reaches the client in many pieces. Joined into a new buffer per call, it
/// cost a fresh allocation of the page's size each time, which the system allocator handed
/// back to the kernel and faulted in again page by page: in the client benchmark, more CPU
/// than decoding the page. A body is given back ([`give_back`](Self::give_back)) once it is
/// decoded; it is kept when nothing decoded from it holds it any more.
#[derive(Clone, Debug, Default)]
pub(crate) struct BodyBuffers(Arc<Mutex<Vec<BytesMut>>>);

impl BodyBuffers {
    /// A kept buffer, the largest one, or a new empty one.
    fn take(&self) -> BytesMut {
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        kept.pop().unwrap_or_default()
    }

    /// Keeps `body`'s buffer for later bodies when nothing else holds it, and while the kept
    /// buffers stay within [`KEPT_BODY_BYTES`].
    pub(crate) fn give_back(&self, body: Bytes) {
        let Ok(mut buffer) = body.try_into_mut() else {
            return;
        };
        buffer.clear();
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let total: usize = kept.iter().map(BytesMut::capacity).sum();
        if total + buffer.capacity() <= KEPT_BODY_BYTES {
            kept.push(buffer);
            // The largest last, to be taken first.
            kept.sort_unstable_by_key(BytesMut::capacity);
        }
    }
}

/// Reads a whole body, at most [`MAX_BODY`] bytes: a body of one piece as it came, one of many
/// joined into a buffer of `buffers`.
pub(crate) async fn read_body(mut body: Incoming, buffers: &BodyBuffers) -> Result<Bytes, Error> {
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut total = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            Error::new(ErrorKind::Transport, "the response body could not be read").with_source(e)
        })?;
        // Trailers carry nothing a caller needs.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total += data.len();
        if total > MAX_BODY {
            return Err(Error::new(
                ErrorKind::Decode,
                format!("the response body is over {MAX_BODY} bytes"),
            ));
        }
        if let Some(buffer) = &mut joined {
            buffer.extend_from_slice(&data);
        } else if let Some(before) = first.take() {
            // A second piece: from here on, pieces are joined.
            let mut buffer = buffers.take();
            buffer.extend_from_slice(&before);
            buffer.extend_from_slice(&data);
            joined = Some(buffer);
        } else {
            first = Some(data);
        }
    }
    Ok(joined.map_or_else(|| first.unwrap_or_default(), BytesMut::freeze))
}

/// Whether a connection error comes from a timeout (hyper-util's connect timeout).
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// Accepts every server certificate: only when asked (`aws.trust.all.certificates`).
#[derive(Debug)]
struct TrustAll(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for TrustAll {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kds_test_support::proxy::{Fault, Proxy};

    /// Found with the client benchmark (issue 19): a body that arrived in pieces was joined
    /// into a new buffer on every call, which the allocator faulted in anew each time.
    #[tokio::test]
    async fn bodies_in_pieces_are_joined_into_a_kept_buffer() {
        let proxy = Proxy::start().await;
        // A MiB: hyper reads it in pieces of at most a few hundred KiB.
        let page = format!(
            r#"{{"Records":[],"NextShardIterator":"{}"}}"#,
            "A".repeat(1 << 20)
        );
        proxy.script((0..3).map(|_| Fault::Reply(page.clone())));
        let transport = Transport::new(&TransportConfig {
            version: HttpVersion::Http1,
            connect_timeout: Duration::from_secs(5),
            trust_all_certificates: false,
            tls: false,
            pool_idle_timeout: Duration::from_secs(60),
            max_idle_per_host: 4,
            keep_alive_interval: Duration::from_secs(30),
            keep_alive_timeout: Duration::from_secs(10),
        })
        .unwrap();
        let request = || {
            http::Request::post(&proxy.url)
                .header("x-amz-target", "Kinesis_20131202.GetRecords")
                .header("content-type", "application/x-amz-json-1.1")
                .body(Bytes::from_static(b"{}"))
                .unwrap()
        };
        let first = transport.send(request()).await.unwrap().body;
        assert_eq!(first, page.as_bytes());
        // Still held by what was decoded from it: not kept.
        let held = first.clone();
        transport.buffers().give_back(first);
        let second = transport.send(request()).await.unwrap().body;
        assert_ne!(second.as_ptr(), held.as_ptr());
        drop(held);
        // Held by nothing else: kept, and the next body is read into it.
        let at = second.as_ptr();
        transport.buffers().give_back(second);
        assert_eq!(transport.buffers().0.lock().unwrap().len(), 1);
        let third = transport.send(request()).await.unwrap().body;
        assert!(transport.buffers().0.lock().unwrap().is_empty());
        assert_eq!(third.as_ptr(), at, "the kept buffer is read into again");
        assert_eq!(third, page.as_bytes());
        assert_eq!(proxy.unused_faults(), 0);
    }

    #[test]
    fn kept_buffers_are_bounded() {
        let buffers = BodyBuffers::default();
        for _ in 0..10 {
            buffers.give_back(Bytes::from(vec![0u8; 4 * 1024 * 1024]));
        }
        let kept = buffers.0.lock().unwrap();
        assert_eq!(kept.len(), KEPT_BODY_BYTES / (4 * 1024 * 1024));
        assert!(kept.iter().all(BytesMut::is_empty));
    }
}
