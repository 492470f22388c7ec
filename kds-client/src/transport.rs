//! HTTP: a pooled hyper client over TCP and rustls, HTTP/1.1 or HTTP/2 by ALPN on TLS, HTTP/1.1
//! or HTTP/2 with prior knowledge on plain endpoints.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
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
        }
    }

    /// Sends `request` and reads the whole response.
    pub(crate) async fn send(&self, request: http::Request<Bytes>) -> Result<Response, Error> {
        let response = self.open(request).await?;
        let (parts, body) = response.into_parts();
        let body = read_body(body).await?;
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

/// Reads a whole body, at most [`MAX_BODY`] bytes.
pub(crate) async fn read_body(body: Incoming) -> Result<Bytes, Error> {
    Ok(Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<LengthLimitError>() {
                Error::new(
                    ErrorKind::Decode,
                    format!("the response body is over {MAX_BODY} bytes"),
                )
            } else {
                Error::new(ErrorKind::Transport, "the response body could not be read")
                    .with_source(e)
            }
        })?
        .to_bytes())
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
