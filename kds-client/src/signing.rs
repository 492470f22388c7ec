//! SigV4 signing with `aws-sigv4`, for the service `kinesis` (or `dynamodb`), the endpoint's
//! authority signed as `host`, the session token signed when present, and a clock offset
//! learnt from the server when it says our clock is off.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;

use crate::credentials::Credentials;
use crate::error::{Error, ErrorKind};

/// The largest clock offset learnt from a server's `Date`: a day.
pub(crate) const MAX_CLOCK_OFFSET: Duration = Duration::from_secs(24 * 60 * 60);

/// Signs requests for one service in one region.
#[derive(Debug)]
pub(crate) struct Signer {
    region: String,
    /// The signing name: `kinesis`, `dynamodb`.
    service: &'static str,
    /// Server time minus our time, in milliseconds, once a clock-skew error taught it.
    clock_offset_millis: AtomicI64,
}

impl Signer {
    pub(crate) fn new(region: impl Into<String>, service: &'static str) -> Self {
        Self {
            region: region.into(),
            service,
            clock_offset_millis: AtomicI64::new(0),
        }
    }

    /// A signer of `service` in the same region, starting from the clock offset learnt so far.
    pub(crate) fn for_service(&self, service: &'static str) -> Self {
        Self {
            region: self.region.clone(),
            service,
            clock_offset_millis: AtomicI64::new(self.clock_offset_millis.load(Ordering::Relaxed)),
        }
    }

    /// The region signed for.
    pub(crate) fn region(&self) -> &str {
        &self.region
    }

    /// Our clock corrected by the learnt offset.
    pub(crate) fn now(&self) -> SystemTime {
        let offset = self.clock_offset_millis.load(Ordering::Relaxed);
        let magnitude = Duration::from_millis(offset.unsigned_abs());
        if offset >= 0 {
            SystemTime::now() + magnitude
        } else {
            SystemTime::now() - magnitude
        }
    }

    /// Learns the offset from the server's `Date` header (`Tue, 15 Nov 1994 08:12:31 GMT`).
    /// Returns whether it could: a date that does not parse, or more than
    /// [`MAX_CLOCK_OFFSET`] away from ours (a broken or hostile server, not a drifting clock),
    /// is not adopted, and the latter is logged.
    pub(crate) fn learn_offset(&self, server_date: &str) -> bool {
        let Ok(server) = httpdate::parse_http_date(server_date) else {
            return false;
        };
        let ours = SystemTime::now();
        let (offset, distance) = match server.duration_since(ours) {
            Ok(ahead) => (i64::try_from(ahead.as_millis()).unwrap_or(i64::MAX), ahead),
            Err(behind) => {
                let behind = behind.duration();
                (
                    -i64::try_from(behind.as_millis()).unwrap_or(i64::MAX),
                    behind,
                )
            }
        };
        if distance > MAX_CLOCK_OFFSET {
            tracing::warn!(
                server_date,
                offset_seconds = offset / 1000,
                "the server's clock is more than a day from ours: not adopted"
            );
            return false;
        }
        tracing::info!(
            offset_millis = offset,
            "adopting the server's clock for signing"
        );
        self.clock_offset_millis.store(offset, Ordering::Relaxed);
        true
    }

    /// Signs `request` (whose URI carries the endpoint's authority) as of `time`: adds
    /// `X-Amz-Date`, `Authorization` and, for temporary credentials, `X-Amz-Security-Token`.
    pub(crate) fn sign(
        &self,
        request: &mut http::Request<Bytes>,
        credentials: &Credentials,
        time: SystemTime,
    ) -> Result<(), Error> {
        let identity: Identity = credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(self.service)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| Error::new(ErrorKind::Config, "cannot sign").with_source(e))?
            .into();
        let authority = request
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let headers = std::iter::once(("host", authority.as_str())).chain(
            request
                .headers()
                .iter()
                .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?))),
        );
        let signable = SignableRequest::new(
            request.method().as_str(),
            request.uri().to_string(),
            headers,
            SignableBody::Bytes(request.body()),
        )
        .map_err(|e| Error::new(ErrorKind::Config, "cannot sign").with_source(e))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| Error::new(ErrorKind::Config, "cannot sign").with_source(e))?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_offsets_past_a_day_are_not_adopted() {
        let signer = Signer::new("us-east-1", "kinesis");
        let at = |offset: Duration, ahead: bool| {
            let time = if ahead {
                SystemTime::now() + offset
            } else {
                SystemTime::now() - offset
            };
            httpdate::fmt_http_date(time)
        };
        let hour = Duration::from_secs(3600);
        assert!(signer.learn_offset(&at(hour, true)));
        let learnt = signer.now().duration_since(SystemTime::now()).unwrap();
        assert!(learnt > hour - Duration::from_secs(5) && learnt < hour + Duration::from_secs(5));
        for (offset, ahead) in [
            (hour * 25, true),
            (hour * 25, false),
            (hour * 24 * 365 * 50, true),
        ] {
            assert!(
                !signer.learn_offset(&at(offset, ahead)),
                "{offset:?} ahead: {ahead}"
            );
        }
        // The hour learnt before stays.
        let kept = signer.now().duration_since(SystemTime::now()).unwrap();
        assert!(kept > hour - Duration::from_secs(5));
        assert!(!signer.learn_offset("not a date"));
    }

    /// Requests signed by botocore's SigV4 signer (`testdata/sigv4_botocore.py`): the same
    /// request signed here must carry the same `Authorization` header, so that a signing bug
    /// cannot hide behind emulators that do not check signatures.
    #[test]
    fn signatures_match_botocore() {
        let vectors: serde_json::Value =
            serde_json::from_str(include_str!("../testdata/sigv4_botocore.json")).unwrap();
        let cases = vectors["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 4);
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        for case in cases {
            let text = |key: &str| case[key].as_str().unwrap().to_owned();
            let body = hex::decode(text("body_hex")).unwrap();
            let mut request = http::Request::builder()
                .method("POST")
                .uri(text("url"))
                .header("content-type", text("content_type"))
                .header("x-amz-target", text("target"))
                .body(Bytes::from(body))
                .unwrap();
            let token = case["session_token"].as_str().map(str::to_owned);
            let credentials = Credentials::new(
                "AKIDEXAMPLE",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                token.clone(),
                None,
                "test",
            );
            let service = if text("service") == "dynamodb" {
                "dynamodb"
            } else {
                "kinesis"
            };
            Signer::new(text("region"), service)
                .sign(&mut request, &credentials, time)
                .unwrap();
            let header = |name: &str| {
                request
                    .headers()
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_owned())
            };
            assert_eq!(
                header("authorization"),
                Some(text("authorization")),
                "{}",
                text("name")
            );
            assert_eq!(header("x-amz-date"), Some(text("x_amz_date")));
            assert_eq!(header("x-amz-security-token"), token);
        }
    }

    #[test]
    fn the_clock_offset_comes_from_the_server_date() {
        let signer = Signer::new("us-east-1", "kinesis");
        assert!(!signer.learn_offset("yesterday"));
        let ahead = SystemTime::now() + Duration::from_secs(3600);
        assert!(signer.learn_offset(&httpdate::fmt_http_date(ahead)));
        let corrected = signer.now().duration_since(SystemTime::now()).unwrap();
        assert!(corrected > Duration::from_secs(3590) && corrected < Duration::from_secs(3610));
    }
}
