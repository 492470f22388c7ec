//! Credentials: the providers the connector's `aws.credentials.provider` names that need no
//! network (static keys, environment variables, system properties), and a cache that refreshes
//! temporary credentials before they expire.
//!
//! Any [`ProvideCredentials`] works with the client. With the default `aws-config` feature,
//! [`aws`] has the AWS default chain, profiles, assume-role and web identity.

#[cfg(feature = "aws-config")]
pub mod aws;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, SystemTime};

pub use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, ProvideCredentials, SharedCredentialsProvider};

/// Credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and, for temporary ones,
/// `AWS_SESSION_TOKEN` (the connector's `ENV_VAR`), read whenever asked. A client keeps them
/// until the service calls them expired or unknown.
#[derive(Clone, Copy, Debug, Default)]
pub struct EnvironmentVariables;

impl ProvideCredentials for EnvironmentVariables {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        provider::future::ProvideCredentials::ready(keys(
            var("AWS_ACCESS_KEY_ID"),
            var("AWS_SECRET_ACCESS_KEY"),
            var("AWS_SESSION_TOKEN"),
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            "EnvironmentVariables",
        ))
    }
}

fn properties() -> &'static RwLock<HashMap<String, String>> {
    static PROPERTIES: OnceLock<RwLock<HashMap<String, String>>> = OnceLock::new();
    PROPERTIES.get_or_init(RwLock::default)
}

/// Sets a process-wide property, as `java -Dkey=value` sets a Java system property (Rust has
/// none): [`SystemProperties`] reads `aws.accessKeyId`, `aws.secretKey` (or
/// `aws.secretAccessKey`) and `aws.sessionToken` from here. The `kds` command's `-D key=value`
/// calls this.
pub fn set_property(key: impl Into<String>, value: impl Into<String>) {
    properties()
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(key.into(), value.into());
}

/// A process-wide property set by [`set_property`].
pub fn property(key: &str) -> Option<String> {
    properties()
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(key)
        .cloned()
}

/// Credentials from the process-wide properties (the connector's `SYS_PROP`): `aws.accessKeyId`,
/// `aws.secretKey` or `aws.secretAccessKey`, and `aws.sessionToken`. See [`set_property`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemProperties;

impl ProvideCredentials for SystemProperties {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let get = |key: &str| property(key).filter(|v| !v.is_empty());
        provider::future::ProvideCredentials::ready(keys(
            get("aws.accessKeyId"),
            get("aws.secretKey").or_else(|| get("aws.secretAccessKey")),
            get("aws.sessionToken"),
            "the properties aws.accessKeyId and aws.secretKey",
            "SystemProperties",
        ))
    }
}

fn keys(
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    needed: &str,
    provider_name: &'static str,
) -> provider::Result {
    match (access_key_id, secret_access_key) {
        (Some(id), Some(secret)) => Ok(Credentials::new(
            id,
            secret,
            session_token,
            None,
            provider_name,
        )),
        _ => Err(CredentialsError::not_loaded(format!(
            "{needed} are not set"
        ))),
    }
}

/// Keeps the credentials of another provider until shortly before they expire (credentials
/// without an expiry until [`invalidate`](Self::invalidate)), and asks it again then (one
/// caller asks; the others wait for its answer).
#[derive(Debug)]
pub struct CachedCredentials {
    provider: SharedCredentialsProvider,
    refresh_before: Duration,
    cached: tokio::sync::Mutex<Option<Credentials>>,
}

impl CachedCredentials {
    /// Caches `provider`'s credentials, refreshing them five minutes before they expire.
    pub fn new(provider: impl ProvideCredentials + 'static) -> Self {
        Self::with_refresh_before(provider, Duration::from_secs(300))
    }

    /// Caches `provider`'s credentials, refreshing them `refresh_before` before they expire.
    pub fn with_refresh_before(
        provider: impl ProvideCredentials + 'static,
        refresh_before: Duration,
    ) -> Self {
        Self {
            provider: SharedCredentialsProvider::new(provider),
            refresh_before,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// The cached credentials while they are fresh, else new ones. When asking fails while the
    /// cached credentials have not yet expired (inside the refresh margin), those are returned.
    ///
    /// # Errors
    ///
    /// The provider's error when it has to be asked, fails, and nothing usable is cached.
    pub async fn get(&self) -> provider::Result {
        let mut cached = self.cached.lock().await;
        let now = SystemTime::now();
        if let Some(credentials) = cached.as_ref() {
            let fresh = credentials
                .expiry()
                .is_none_or(|expiry| now + self.refresh_before < expiry);
            if fresh {
                return Ok(credentials.clone());
            }
        }
        match self.provider.provide_credentials().await {
            Ok(credentials) => {
                *cached = Some(credentials.clone());
                Ok(credentials)
            }
            Err(error) => match cached.as_ref() {
                Some(credentials) if credentials.expiry().is_some_and(|e| now < e) => {
                    Ok(credentials.clone())
                }
                _ => Err(error),
            },
        }
    }

    /// Drops the cached credentials, so that the provider is asked on the next call (after the
    /// service called them expired or unknown).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}

impl ProvideCredentials for CachedCredentials {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(self.get())
    }
}

/// A shared provider, as the client holds it.
pub(crate) fn shared(provider: impl ProvideCredentials + 'static) -> Arc<CachedCredentials> {
    Arc::new(CachedCredentials::new(provider))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[derive(Debug)]
    struct Counting {
        calls: Arc<AtomicU32>,
        lifetime: Duration,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            provider::future::ProvideCredentials::ready(Ok(Credentials::new(
                format!("AKID{n}"),
                "secret",
                Some("token".into()),
                Some(SystemTime::now() + self.lifetime),
                "Counting",
            )))
        }
    }

    #[tokio::test]
    async fn temporary_credentials_are_refreshed_before_they_expire() {
        let calls = Arc::new(AtomicU32::new(0));
        let long = CachedCredentials::new(Counting {
            calls: Arc::clone(&calls),
            lifetime: Duration::from_secs(3600),
        });
        assert_eq!(long.get().await.unwrap().access_key_id(), "AKID0");
        assert_eq!(long.get().await.unwrap().access_key_id(), "AKID0");
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let calls = Arc::new(AtomicU32::new(0));
        // Four minutes left is inside the five-minute margin: asked every time.
        let short = CachedCredentials::new(Counting {
            calls: Arc::clone(&calls),
            lifetime: Duration::from_secs(240),
        });
        assert_eq!(short.get().await.unwrap().access_key_id(), "AKID0");
        assert_eq!(short.get().await.unwrap().access_key_id(), "AKID1");
    }

    #[tokio::test]
    async fn system_properties() {
        let err = SystemProperties.provide_credentials().await.unwrap_err();
        assert!(format!("{err:?}").contains("aws.accessKeyId"), "{err:?}");
        set_property("aws.accessKeyId", "AKIDPROP");
        set_property("aws.secretKey", "secret");
        let credentials = SystemProperties.provide_credentials().await.unwrap();
        assert_eq!(credentials.access_key_id(), "AKIDPROP");
        assert_eq!(credentials.session_token(), None);
        // Secrets stay out of Debug output.
        assert!(!format!("{credentials:?}").contains("secret\""));
    }
}
