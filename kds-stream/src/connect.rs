//! A client as a table's options describe it: `aws.region` or `aws.endpoint`,
//! `aws.trust.all.certificates`, the credentials provider of `aws.credentials.*`, and the retries
//! and backoffs of the `scan.*` options for each operation the source calls.

use std::path::PathBuf;

use aws_credential_types::provider::SharedCredentialsProvider;
use kds_client::credentials::{EnvironmentVariables, SystemProperties, aws};
use kds_client::{Client, ClientBuilder, HttpVersion, RetryPolicy};
use kds_table::{Backoff, Credentials, ReaderKind, TableDefinition};

fn policy(backoff: Backoff) -> RetryPolicy {
    RetryPolicy {
        max_retries: backoff.max_retries,
        base: backoff.base,
        max: backoff.max,
        exponential_constant: backoff.exponential_constant,
    }
}

/// The credentials provider `credentials` names, with STS calls (assume-role, web identity)
/// in `region`.
pub async fn credentials_provider(
    credentials: &Credentials,
    region: &str,
) -> SharedCredentialsProvider {
    let sts = aws::Sts::new(region);
    let mut chain = vec![credentials];
    // Assumed roles nest: resolve the innermost source first.
    while let Credentials::AssumeRole { source, .. } = chain[chain.len() - 1] {
        chain.push(source);
    }
    let mut provider: Option<SharedCredentialsProvider> = None;
    for credentials in chain.into_iter().rev() {
        provider = Some(match credentials {
            Credentials::Auto => SharedCredentialsProvider::new(aws::default_chain(&sts).await),
            Credentials::Basic {
                access_key_id,
                secret_key,
            } => SharedCredentialsProvider::new(kds_client::credentials::Credentials::new(
                access_key_id.clone(),
                secret_key.clone(),
                None,
                None,
                "aws.credentials.basic",
            )),
            Credentials::EnvVar => SharedCredentialsProvider::new(EnvironmentVariables),
            Credentials::SysProp => SharedCredentialsProvider::new(SystemProperties),
            Credentials::Profile { path, name } => SharedCredentialsProvider::new(aws::profile(
                &sts,
                path.as_ref().map(PathBuf::from),
                name.as_deref(),
            )),
            Credentials::AssumeRole {
                role_arn,
                session_name,
                external_id,
                ..
            } => {
                let base = provider
                    .take()
                    .expect("the source of an assumed role is resolved first");
                SharedCredentialsProvider::new(
                    aws::assume_role(&sts, role_arn, session_name, external_id.clone(), base).await,
                )
            }
            Credentials::WebIdentityToken {
                role_arn,
                session_name,
                token_file,
            } => {
                let env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
                match (
                    token_file
                        .clone()
                        .or_else(|| env("AWS_WEB_IDENTITY_TOKEN_FILE")),
                    role_arn.clone().or_else(|| env("AWS_ROLE_ARN")),
                ) {
                    (Some(token_file), Some(role_arn)) => {
                        SharedCredentialsProvider::new(aws::WebIdentity::new(
                            &sts,
                            token_file,
                            role_arn,
                            session_name
                                .clone()
                                .or_else(|| env("AWS_ROLE_SESSION_NAME"))
                                .unwrap_or_else(|| "kds".to_owned()),
                        ))
                    }
                    // Without a token file or role, the default chain's own web identity
                    // provider reports what is missing.
                    _ => SharedCredentialsProvider::new(aws::default_chain(&sts).await),
                }
            }
            _ => SharedCredentialsProvider::new(aws::default_chain(&sts).await),
        });
    }
    provider.expect("at least one provider")
}

/// A client builder for `definition`'s stream: endpoint or region, TLS trust, credentials, the
/// retries of every operation the source calls (`scan.stream.describe.*`,
/// `scan.list.shards.*`, `scan.shard.getrecords.*`, `scan.shard.getiterator.*`, the consumer
/// registration and `scan.shard.subscribetoshard.*` ones; none for PutRecords, which
/// [`TableSink`](crate::TableSink) retries itself), HTTP/2 on plain endpoints when the table
/// reads by enhanced fan-out, else HTTP/1.1 only when `sink.http-client.protocol.version` is
/// `HTTP1_1`. Callers may change any of it before building.
pub async fn client_builder(definition: &TableDefinition) -> ClientBuilder {
    let aws_options = &definition.options.aws;
    let source = &definition.options.source;
    let region = aws_options
        .region
        .clone()
        .unwrap_or_else(|| "us-east-1".to_owned());
    let mut builder = Client::builder()
        .region(region.clone())
        .trust_all_certificates(aws_options.trust_all_certificates)
        .credentials(credentials_provider(&aws_options.credentials, &region).await)
        .retry_policy("DescribeStreamSummary", policy(source.describe_stream))
        .retry_policy("ListShards", policy(source.list_shards))
        .retry_policy("DescribeStreamConsumer", policy(source.describe_consumer))
        .retry_policy("RegisterStreamConsumer", policy(source.register_consumer))
        .retry_policy(
            "DeregisterStreamConsumer",
            policy(source.deregister_consumer),
        )
        .retry_policy("GetRecords", policy(source.get_records))
        .retry_policy("GetShardIterator", policy(source.get_iterator))
        // The sink retries PutRecords itself, entry by entry, and counts what it sends again.
        .retry_policy("PutRecords", RetryPolicy::NONE);
    if let Some(endpoint) = &aws_options.endpoint {
        builder = builder.endpoint(endpoint.clone());
    }
    if matches!(source.reader, ReaderKind::EnhancedFanOut(_)) {
        builder = builder.http_version(HttpVersion::Http2);
    } else if definition.options.sink.http_protocol == "HTTP1_1" {
        // `sink.http-client.protocol.version`; enhanced fan-out needs HTTP/2 whatever it says.
        builder = builder.http_version(HttpVersion::Http1);
    }
    builder
}
