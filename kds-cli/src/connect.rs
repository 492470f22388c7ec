//! From the connection flags to a client, and from a stream name to its ARN and shards.

use std::time::Duration;

use aws_credential_types::provider::{self, ProvideCredentials};
use kds_client::credentials::{self, Credentials, SystemProperties};
use kds_client::{Client, Endpoint, HttpVersion, RetryPolicy, StreamId};
use kds_proto::model::{DescribeStreamSummaryInput, ListShardsInput, Shard};
use kds_proto::types::{StreamArn, StreamName, StreamStatus};
use kds_proto::{ErrorCode, Limits};

use crate::cli::{Connection, Protocol};
use crate::failure::Failure;

/// A stream, found.
#[derive(Debug)]
pub(crate) struct StreamInfo {
    /// The stream by name, as data requests name it (some emulators know streams only by
    /// name).
    pub(crate) id: StreamId,
    /// Its ARN, for consumer registration.
    pub(crate) arn: StreamArn,
    /// Every shard, open and closed.
    pub(crate) shards: Vec<Shard>,
    /// The stream's limits (its largest record: `MaxRecordSizeInKiB`, 1 MiB unless raised).
    pub(crate) limits: Limits,
}

impl Connection {
    /// A client for these flags. `http2` asks for HTTP/2 also on a plain `http://` endpoint
    /// (enhanced fan-out needs it; TLS endpoints choose by ALPN anyway).
    pub(crate) async fn client(&self, http2: bool) -> Result<Client, Failure> {
        self.client_with(http2, Limits::default()).await
    }

    /// A client that checks requests against `limits` (a stream's raised record size).
    pub(crate) async fn client_with(&self, http2: bool, limits: Limits) -> Result<Client, Failure> {
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            for warning in security_warnings(self.endpoint.as_deref(), self.no_verify_tls) {
                eprintln!("kds: warning: {warning}");
            }
        });
        for (key, value) in &self.properties {
            credentials::set_property(key.clone(), value.clone());
        }
        let region = match &self.region {
            Some(region) => Some(region.clone()),
            None => std::env::var("AWS_REGION")
                .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                .ok()
                .filter(|r| !r.is_empty()),
        };
        let mut builder = Client::builder()
            .protocol(match self.protocol {
                Protocol::Json => kds_client::Protocol::Json,
                Protocol::Cbor => kds_client::Protocol::Cbor,
            })
            .trust_all_certificates(self.no_verify_tls)
            .limits(limits)
            // A mistyped endpoint should fail in seconds, not after the minute of retries a
            // long-running reader wants.
            .retry_policy(
                "DescribeStreamSummary",
                RetryPolicy::default_for("GetRecords"),
            )
            .retry_policy("ListShards", RetryPolicy::default_for("GetRecords"))
            .connect_timeout(Duration::from_secs(3));
        if http2 {
            builder = builder.http_version(HttpVersion::Http2);
        }
        let sts_region = match (&self.endpoint, region) {
            (Some(endpoint), region) => {
                let region = region.unwrap_or_else(|| "us-east-1".to_owned());
                builder = builder.endpoint(endpoint.clone()).region(region.clone());
                region
            }
            (None, Some(region)) => {
                builder = builder.region(region.clone());
                region
            }
            (None, None) => {
                return Err(Failure::usage(
                    "no region: pass --region, set AWS_REGION, or give an --endpoint",
                ));
            }
        };
        let loopback = self.endpoint.as_deref().is_some_and(is_loopback);
        let sts = credentials::aws::Sts::new(sts_region);
        builder = if self.properties.iter().any(|(k, _)| k == "aws.accessKeyId") {
            builder.credentials(SystemProperties)
        } else if let Some(profile) = &self.profile {
            builder.credentials(OrPlaceholder::new(
                credentials::aws::profile(&sts, None, Some(profile)),
                loopback,
            ))
        } else {
            builder.credentials(OrPlaceholder::new(
                credentials::aws::default_chain(&sts).await,
                loopback,
            ))
        };
        builder.build().map_err(|e| Failure::usage(e.to_string()))
    }
}

/// What the user should know about how requests travel: TLS certificates not verified, or
/// signed requests (with any session token) sent unencrypted to another machine.
pub(crate) fn security_warnings(endpoint: Option<&str>, no_verify_tls: bool) -> Vec<String> {
    let mut warnings = Vec::new();
    if no_verify_tls {
        warnings.push(
            "TLS certificates are not verified (--no-verify-tls): anyone on the way can read \
             and change requests"
                .to_owned(),
        );
    }
    if let Some(endpoint) = endpoint
        && endpoint.starts_with("http://")
        && !is_loopback(endpoint)
    {
        warnings.push(format!(
            "{endpoint} is plain HTTP to another machine: records and credentials' session \
             tokens travel unencrypted"
        ));
    }
    warnings
}

/// Whether `url` names this machine (an emulator such as `kds local`).
pub(crate) fn is_loopback(url: &str) -> bool {
    let Ok(endpoint) = Endpoint::parse(url) else {
        return false;
    };
    let host = endpoint.authority().host();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A provider's credentials; for a loopback endpoint, placeholder keys when the provider has
/// none (emulators do not check signatures, so `kds local` works without AWS credentials).
#[derive(Debug)]
pub(crate) struct OrPlaceholder<P> {
    inner: P,
    loopback: bool,
}

impl<P> OrPlaceholder<P> {
    pub(crate) fn new(inner: P, loopback: bool) -> Self {
        Self { inner, loopback }
    }
}

impl<P: ProvideCredentials> ProvideCredentials for OrPlaceholder<P> {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            match self.inner.provide_credentials().await {
                Err(_) if self.loopback => Ok(Credentials::new(
                    "kds-local",
                    "kds-local",
                    None,
                    None,
                    "placeholder for a loopback endpoint",
                )),
                result => result,
            }
        })
    }
}

/// The ARN and the shards of the stream called `name`, which must be ACTIVE or UPDATING.
pub(crate) async fn find_stream(client: &Client, name: &str) -> Result<StreamInfo, Failure> {
    let stream_name = StreamName::new(name)
        .map_err(|e| Failure::usage(format!("bad stream name `{name}`: {e}")))?;
    let mut describe = DescribeStreamSummaryInput::new();
    describe.stream_name = Some(stream_name.clone());
    let summary = match client.send(&describe).await {
        Ok(output) => output.stream_description_summary,
        Err(error) if error.error_code() == Some(ErrorCode::ResourceNotFound) => {
            return Err(Failure::new(format!(
                "stream `{name}` not found at {}",
                client.endpoint().uri()
            )));
        }
        Err(error) => return Err(error.into()),
    };
    match summary.stream_status {
        StreamStatus::Active | StreamStatus::Updating => {}
        status => {
            return Err(Failure::new(format!(
                "stream `{name}` is {}, not ACTIVE",
                status.as_str()
            )));
        }
    }
    let mut list = ListShardsInput::new();
    list.stream_name = Some(stream_name.clone());
    let shards = client.list_all_shards(&list).await?;
    let limits = summary
        .max_record_size_in_kib
        .and_then(|kib| u32::try_from(kib).ok())
        .filter(|&kib| kib > 0)
        .map_or_else(Limits::default, Limits::with_max_record_size_kib);
    Ok(StreamInfo {
        limits,
        id: StreamId::Name(stream_name),
        arn: summary.stream_arn,
        shards,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unverified_tls_and_plain_http_to_other_machines_are_warned_about() {
        assert!(security_warnings(Some("http://127.0.0.1:4567"), false).is_empty());
        assert!(security_warnings(None, false).is_empty());
        assert!(security_warnings(Some("https://kinesis.example.com"), false).is_empty());
        let tls = security_warnings(Some("https://127.0.0.1:4567"), true);
        assert_eq!(tls.len(), 1);
        assert!(tls[0].contains("--no-verify-tls"));
        let plain = security_warnings(Some("http://10.0.0.7:4567"), true);
        assert_eq!(plain.len(), 2);
        assert!(plain[1].contains("http://10.0.0.7:4567") && plain[1].contains("unencrypted"));
    }

    #[test]
    fn loopback_endpoints_are_recognised() {
        for url in [
            "http://127.0.0.1:4567",
            "http://localhost:4567/",
            "https://[::1]:4568",
            "http://127.0.0.2",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "https://kinesis.eu-west-1.amazonaws.com",
            "http://10.0.0.1:4567",
            "http://localhost.example.com",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
    }
}
