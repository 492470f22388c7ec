//! The providers that need files or STS: a profile file, assume-role with a base provider and an
//! external id, and web identity from a token file, against a fake STS on loopback.

#![cfg(feature = "aws-config")]

use std::sync::{Arc, Mutex};

use aws_credential_types::provider::ProvideCredentials;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kds_client::credentials::aws::{Sts, WebIdentity, assume_role, profile};
use kds_client::credentials::{CachedCredentials, Credentials};

/// What the fake STS received: the Authorization header and the form body of each call.
type Calls = Arc<Mutex<Vec<(Option<String>, String)>>>;

/// An STS that answers AssumeRole and AssumeRoleWithWebIdentity with fixed credentials.
async fn fake_sts() -> (String, Calls) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let calls: Calls = Arc::default();
    let seen = Arc::clone(&calls);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let seen = Arc::clone(&seen);
                    async move {
                        let authorization = request
                            .headers()
                            .get("authorization")
                            .map(|v| v.to_str().unwrap().to_owned());
                        let body = request.into_body().collect().await?.to_bytes();
                        let form = String::from_utf8(body.to_vec()).unwrap();
                        let action = if form.contains("Action=AssumeRoleWithWebIdentity") {
                            "AssumeRoleWithWebIdentity"
                        } else {
                            "AssumeRole"
                        };
                        seen.lock().unwrap().push((authorization, form));
                        let xml = format!(
                            r#"<{action}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <{action}Result>
    <Credentials>
      <AccessKeyId>ASIAFROM{action}</AccessKeyId>
      <SecretAccessKey>secret-from-sts</SecretAccessKey>
      <SessionToken>token-from-sts</SessionToken>
      <Expiration>2099-01-01T00:00:00Z</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/reader/session</Arn>
      <AssumedRoleId>AROAEXAMPLE:session</AssumedRoleId>
    </AssumedRoleUser>
  </{action}Result>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</{action}Response>"#
                        );
                        Ok::<_, hyper::Error>(
                            http::Response::builder()
                                .header("content-type", "text/xml")
                                .body(Full::new(Bytes::from(xml)))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, calls)
}

fn scratch_file(name: &str, contents: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("kds-client-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[tokio::test]
async fn profile_files_and_names() {
    let path = scratch_file(
        "credentials",
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s1\n\n\
         [reader]\naws_access_key_id = AKIDREADER\naws_secret_access_key = s2\naws_session_token = t2\n",
    );
    let sts = Sts::new("us-east-1");
    let default = profile(&sts, Some(path.clone()), None)
        .provide_credentials()
        .await
        .unwrap();
    assert_eq!(default.access_key_id(), "AKIDDEFAULT");
    let reader = profile(&sts, Some(path.clone()), Some("reader"))
        .provide_credentials()
        .await
        .unwrap();
    assert_eq!(reader.access_key_id(), "AKIDREADER");
    assert_eq!(reader.session_token(), Some("t2"));
    let missing = profile(&sts, Some(path), Some("writer"))
        .provide_credentials()
        .await
        .unwrap_err();
    assert!(format!("{missing:?}").contains("writer"), "{missing:?}");
}

#[tokio::test]
async fn assume_role_signs_with_the_base_credentials() {
    let (url, calls) = fake_sts().await;
    let sts = Sts::new("eu-west-1").with_endpoint(url);
    let base = Credentials::new("AKIDBASE", "base-secret", None, None, "base");
    let provider = assume_role(
        &sts,
        "arn:aws:iam::123456789012:role/reader",
        "kds-session",
        Some("external-42".to_owned()),
        base,
    )
    .await;
    let cached = CachedCredentials::new(provider);
    let credentials = cached.get().await.unwrap();
    assert_eq!(credentials.access_key_id(), "ASIAFROMAssumeRole");
    assert_eq!(credentials.session_token(), Some("token-from-sts"));
    assert!(credentials.expiry().is_some());
    // Cached until shortly before 2099.
    cached.get().await.unwrap();
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    let (authorization, form) = &calls[0];
    assert!(
        authorization
            .as_deref()
            .unwrap()
            .contains("Credential=AKIDBASE/"),
        "{authorization:?}"
    );
    assert!(
        authorization
            .as_deref()
            .unwrap()
            .contains("/eu-west-1/sts/aws4_request")
    );
    for field in [
        "Action=AssumeRole",
        "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Freader",
        "RoleSessionName=kds-session",
        "ExternalId=external-42",
    ] {
        assert!(form.contains(field), "{form} lacks {field}");
    }
}

#[tokio::test]
async fn web_identity_reads_the_token_file_on_each_refresh() {
    let (url, calls) = fake_sts().await;
    let sts = Sts::new("us-west-2").with_endpoint(url);
    let token_file = scratch_file("token", "first-token\n");
    let provider = WebIdentity::new(
        &sts,
        &token_file,
        "arn:aws:iam::123456789012:role/web",
        "pod-session",
    );
    let credentials = provider.provide_credentials().await.unwrap();
    assert_eq!(
        credentials.access_key_id(),
        "ASIAFROMAssumeRoleWithWebIdentity"
    );
    std::fs::write(&token_file, "second-token").unwrap();
    provider.provide_credentials().await.unwrap();
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    assert!(
        calls[0].1.contains("WebIdentityToken=first-token"),
        "{}",
        calls[0].1
    );
    assert!(
        calls[1].1.contains("WebIdentityToken=second-token"),
        "{}",
        calls[1].1
    );
    assert!(calls[0].1.contains("RoleSessionName=pod-session"));
    // AssumeRoleWithWebIdentity is not signed.
    assert_eq!(calls[0].0, None);

    let missing = WebIdentity::new(&sts, "/nonexistent/token", "arn:aws:iam::1:role/r", "s")
        .provide_credentials()
        .await
        .unwrap_err();
    assert!(
        format!("{missing:?}").contains("/nonexistent/token"),
        "{missing:?}"
    );
}

/// The environment is process-wide: the check runs in a child process of this test binary
/// with the variables set (or removed).
#[test]
fn environment_variables() {
    use kds_client::credentials::EnvironmentVariables;
    if let Some(expect) = std::env::var_os("KDS_ENVIRONMENT_CHILD") {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let result = runtime.block_on(EnvironmentVariables.provide_credentials());
        if expect == "keys" {
            let credentials = result.unwrap();
            assert_eq!(credentials.access_key_id(), "AKIDFROMENV");
            assert_eq!(credentials.secret_access_key(), "env-secret");
            assert_eq!(credentials.session_token(), Some("env-token"));
        } else {
            let err = result.unwrap_err();
            assert!(format!("{err:?}").contains("AWS_ACCESS_KEY_ID"), "{err:?}");
        }
        return;
    }
    let child = |expect: &str, keys: bool| {
        let mut command = std::process::Command::new(std::env::current_exe().unwrap());
        command
            .args(["--exact", "environment_variables", "--test-threads", "1"])
            .env("KDS_ENVIRONMENT_CHILD", expect);
        if keys {
            command
                .env("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
                .env("AWS_SECRET_ACCESS_KEY", "env-secret")
                .env("AWS_SESSION_TOKEN", "env-token");
        } else {
            command
                .env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_SECRET_ACCESS_KEY")
                .env_remove("AWS_SESSION_TOKEN");
        }
        let output = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}");
        // The child ran this test, not nothing.
        assert!(stdout.contains("1 passed"), "{stdout}");
    };
    child("keys", true);
    child("none", false);
}

#[tokio::test]
async fn assume_role_chains() {
    // A role assumed with the credentials of another assumed role.
    let (url, calls) = fake_sts().await;
    let sts = Sts::new("us-east-1").with_endpoint(url);
    let base = Credentials::new("AKIDBASE", "base-secret", None, None, "base");
    let first = assume_role(
        &sts,
        "arn:aws:iam::123456789012:role/first",
        "one",
        None,
        base,
    )
    .await;
    let second = assume_role(
        &sts,
        "arn:aws:iam::123456789012:role/second",
        "two",
        None,
        first,
    )
    .await;
    let credentials = second.provide_credentials().await.unwrap();
    assert_eq!(credentials.access_key_id(), "ASIAFROMAssumeRole");
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    // The first role is assumed with the base keys, the second with the first role's.
    assert!(calls[0].1.contains("role%2Ffirst"), "{}", calls[0].1);
    assert!(
        calls[0]
            .0
            .as_deref()
            .unwrap()
            .contains("Credential=AKIDBASE/")
    );
    assert!(calls[1].1.contains("role%2Fsecond"), "{}", calls[1].1);
    assert!(
        calls[1]
            .0
            .as_deref()
            .unwrap()
            .contains("Credential=ASIAFROMAssumeRole/")
    );
}

/// The default chain (AUTO) in a child process: environment keys win; with none anywhere it
/// fails (instance metadata disabled, no profile files), rather than hanging.
#[test]
fn default_chain() {
    use kds_client::credentials::aws::default_chain;
    if let Some(expect) = std::env::var_os("KDS_DEFAULT_CHAIN_CHILD") {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let result = runtime.block_on(async {
            default_chain(&Sts::new("us-east-1"))
                .await
                .provide_credentials()
                .await
        });
        if expect == "env" {
            assert_eq!(result.unwrap().access_key_id(), "AKIDCHAIN");
        } else {
            assert!(result.is_err());
        }
        return;
    }
    let missing = std::env::temp_dir().join("kds-no-such-aws-file");
    for (expect, keys) in [("env", true), ("none", false)] {
        let mut command = std::process::Command::new(std::env::current_exe().unwrap());
        command
            .args(["--exact", "default_chain", "--test-threads", "1"])
            .env("KDS_DEFAULT_CHAIN_CHILD", expect)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", &missing)
            .env("AWS_SHARED_CREDENTIALS_FILE", &missing)
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
            .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
            .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI");
        if keys {
            command
                .env("AWS_ACCESS_KEY_ID", "AKIDCHAIN")
                .env("AWS_SECRET_ACCESS_KEY", "chain-secret");
        } else {
            command
                .env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_SECRET_ACCESS_KEY");
        }
        let output = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{expect}: {stdout}");
        assert!(stdout.contains("1 passed"), "{stdout}");
    }
}
