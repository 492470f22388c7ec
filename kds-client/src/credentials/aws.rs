//! The credential providers that need AWS services or files, from `aws-config` and
//! `aws-sdk-sts`: the default chain (the connector's `AUTO`), profiles (`PROFILE`), assume-role
//! (`ASSUME_ROLE`) and web identity (`WEB_IDENTITY_TOKEN`). STS calls go over rustls with ring,
//! like the client.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, ProvideCredentials};
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use aws_smithy_http_client::tls::Provider;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;

use super::Credentials;

/// Where STS is called: the region, and an endpoint URL instead of the regional one (a VPC
/// endpoint, or a test server).
#[derive(Clone, Debug)]
pub struct Sts {
    /// The region of the STS endpoint.
    pub region: String,
    /// An explicit endpoint URL.
    pub endpoint: Option<String>,
}

impl Sts {
    /// STS of `region`.
    pub fn new(region: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            endpoint: None,
        }
    }

    /// STS at `url`.
    #[must_use]
    pub fn with_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    fn sdk_config(&self) -> SdkConfig {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut builder = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()))
            .http_client(http)
            .time_source(aws_smithy_async::time::SystemTimeSource::new());
        if let Some(sleep) = aws_smithy_async::rt::sleep::default_async_sleep() {
            builder = builder.sleep_impl(sleep);
        }
        if let Some(endpoint) = &self.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        // No STS call may hang: the SDK sets only a connect timeout by default.
        builder
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(10))
                    .operation_timeout(Duration::from_secs(30))
                    .build(),
            )
            .build()
    }

    fn provider_config(&self) -> ProviderConfig {
        let sdk = self.sdk_config();
        let mut config = ProviderConfig::empty()
            .with_region(Some(Region::new(self.region.clone())))
            .with_time_source(aws_smithy_async::time::SystemTimeSource::new());
        if let Some(http) = sdk.http_client() {
            config = config.with_http_client(http);
        }
        if let Some(sleep) = sdk.sleep_impl() {
            config = config.with_sleep_impl(sleep);
        }
        config
    }
}

/// The AWS default chain (`AUTO`): environment variables, the shared profile files, web
/// identity, the container and the instance metadata credentials, in that order.
pub async fn default_chain(sts: &Sts) -> DefaultCredentialsChain {
    DefaultCredentialsChain::builder()
        .configure(sts.provider_config())
        .build()
        .await
}

/// Keys from a profile (`PROFILE`): `aws.credentials.profile.path` (default: the shared
/// `~/.aws/credentials` and `~/.aws/config`) and `aws.credentials.profile.name` (default:
/// `AWS_PROFILE`, else `default`).
pub fn profile(
    sts: &Sts,
    path: Option<PathBuf>,
    name: Option<&str>,
) -> ProfileFileCredentialsProvider {
    let mut builder = ProfileFileCredentialsProvider::builder().configure(&sts.provider_config());
    if let Some(path) = path {
        builder = builder.profile_files(
            EnvConfigFiles::builder()
                .with_file(EnvConfigFileKind::Credentials, path)
                .build(),
        );
    }
    if let Some(name) = name {
        builder = builder.profile_name(name);
    }
    builder.build()
}

/// A role assumed with `base`'s credentials (`ASSUME_ROLE`), refreshed before it expires.
pub async fn assume_role(
    sts: &Sts,
    role_arn: impl Into<String>,
    session_name: impl Into<String>,
    external_id: Option<String>,
    base: impl ProvideCredentials + 'static,
) -> AssumeRoleProvider {
    let mut builder = AssumeRoleProvider::builder(role_arn)
        .session_name(session_name)
        .configure(&sts.sdk_config());
    if let Some(external_id) = external_id {
        builder = builder.external_id(external_id);
    }
    builder.build_from_provider(base).await
}

/// A role assumed with a web identity token read from a file (`WEB_IDENTITY_TOKEN`, as EKS
/// service accounts provide it), read again on every refresh.
#[derive(Debug)]
pub struct WebIdentity {
    client: aws_sdk_sts::Client,
    token_file: PathBuf,
    role_arn: String,
    session_name: String,
}

impl WebIdentity {
    /// Assumes `role_arn` as `session_name` with the token in `token_file`.
    pub fn new(
        sts: &Sts,
        token_file: impl Into<PathBuf>,
        role_arn: impl Into<String>,
        session_name: impl Into<String>,
    ) -> Self {
        Self {
            client: aws_sdk_sts::Client::new(&sts.sdk_config()),
            token_file: token_file.into(),
            role_arn: role_arn.into(),
            session_name: session_name.into(),
        }
    }

    async fn fetch(&self) -> provider::Result {
        let token = tokio::fs::read_to_string(&self.token_file)
            .await
            .map_err(|e| {
                CredentialsError::invalid_configuration(format!(
                    "cannot read the web identity token file {}: {e}",
                    self.token_file.display()
                ))
            })?;
        let output = self
            .client
            .assume_role_with_web_identity()
            .role_arn(&self.role_arn)
            .role_session_name(&self.session_name)
            .web_identity_token(token.trim())
            .send()
            .await
            .map_err(CredentialsError::provider_error)?;
        let credentials = output.credentials.ok_or_else(|| {
            CredentialsError::unhandled("AssumeRoleWithWebIdentity returned no credentials")
        })?;
        let expiry = SystemTime::try_from(credentials.expiration).ok();
        Ok(Credentials::new(
            credentials.access_key_id,
            credentials.secret_access_key,
            Some(credentials.session_token),
            expiry,
            "WebIdentity",
        ))
    }
}

impl ProvideCredentials for WebIdentity {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(self.fetch())
    }
}
