//! Where requests go: the regional endpoint of a region, or an explicit URL (emulators, VPC
//! endpoints, FIPS hosts).

use std::fmt;

use http::Uri;
use http::uri::{Authority, Scheme};

use crate::error::Error;

/// A Kinesis endpoint: a scheme and an authority (host and optional port). Every operation is
/// `POST /` on it.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    uri: Uri,
}

impl Endpoint {
    /// The regional endpoint: `https://kinesis.{region}.amazonaws.com`, or
    /// `https://kinesis.{region}.amazonaws.com.cn` in the China regions (`cn-…`).
    ///
    /// # Errors
    ///
    /// `Config` when `region` is not a region name (lower-case letters, digits and dashes,
    /// like `eu-west-1`).
    pub fn for_region(region: &str) -> Result<Self, Error> {
        Self::regional("kinesis", region)
    }

    /// The regional endpoint of `service` (`kinesis`, `dynamodb`).
    pub(crate) fn regional(service: &str, region: &str) -> Result<Self, Error> {
        let valid = !region.is_empty()
            && region.len() <= 64
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !region.starts_with('-')
            && !region.ends_with('-');
        if !valid {
            return Err(Error::config(format!(
                "`{region}` is not a region name (like `us-east-1`)"
            )));
        }
        let domain = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        Self::parse(&format!("https://{service}.{region}.{domain}"))
    }

    /// An endpoint given as a URL, `http://127.0.0.1:4567` say. The path, if any, must be `/`.
    ///
    /// # Errors
    ///
    /// `Config` when the URL is not `http` or `https` with a host, or has a path, query or user
    /// information.
    pub fn parse(url: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::config(format!("endpoint `{url}` {why}"));
        let uri: Uri = url
            .parse()
            .map_err(|e| bad(&format!("is not a URL: {e}")))?;
        match uri.scheme() {
            Some(s) if *s == Scheme::HTTP || *s == Scheme::HTTPS => {}
            _ => return Err(bad("must start with http:// or https://")),
        }
        let authority = uri.authority().ok_or_else(|| bad("has no host"))?;
        if authority.host().is_empty() {
            return Err(bad("has no host"));
        }
        if authority.as_str().contains('@') {
            return Err(bad("must not carry user information"));
        }
        // `http::Uri` does not check the port's digits.
        let has_port = authority.as_str().len() > authority.host().len();
        if has_port && authority.port_u16().is_none() {
            return Err(bad("has a port that is not a number from 0 to 65535"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(bad(
                "must not have a path or query (every operation is `POST /`)",
            ));
        }
        let scheme = uri.scheme().cloned().unwrap_or(Scheme::HTTPS);
        // The default port is left out, as hyper leaves it out of `Host`: the signed host must
        // be the one sent.
        let default_port = if scheme == Scheme::HTTPS { 443 } else { 80 };
        let authority: Authority = match authority.port_u16() {
            Some(port) if port == default_port => authority
                .host()
                .parse()
                .map_err(|e| bad(&format!("has a bad host: {e}")))?,
            _ => authority.clone(),
        };
        let uri = Uri::builder()
            .scheme(scheme)
            .authority(authority)
            .path_and_query("/")
            .build()
            .map_err(|e| bad(&e.to_string()))?;
        Ok(Self { uri })
    }

    /// The URI requests are sent to (`scheme://authority/`).
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Whether requests go over TLS.
    pub fn is_tls(&self) -> bool {
        self.uri.scheme() == Some(&Scheme::HTTPS)
    }

    /// The authority: host, and port when the URL gave one other than the scheme's default. It
    /// is signed as the `host` header and sent as HTTP/1.1 `Host` or HTTP/2 `:authority`.
    pub fn authority(&self) -> &Authority {
        self.uri
            .authority()
            .expect("endpoints are checked to have an authority")
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({})", self.uri)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.uri)
    }
}

impl std::str::FromStr for Endpoint {
    type Err = Error;

    fn from_str(url: &str) -> Result<Self, Error> {
        Self::parse(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn regional_endpoints() {
        assert_eq!(
            Endpoint::for_region("eu-west-1").unwrap().to_string(),
            "https://kinesis.eu-west-1.amazonaws.com/"
        );
        assert_eq!(
            Endpoint::for_region("cn-northwest-1").unwrap().to_string(),
            "https://kinesis.cn-northwest-1.amazonaws.com.cn/"
        );
        for bad in ["", "EU-WEST-1", "eu west", "-x", "a.b"] {
            let err = Endpoint::for_region(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad}");
        }
    }

    #[test]
    fn explicit_endpoints() {
        let local = Endpoint::parse("http://127.0.0.1:4568").unwrap();
        assert!(!local.is_tls());
        assert_eq!(local.authority().as_str(), "127.0.0.1:4568");
        assert_eq!(local.uri().path(), "/");
        assert!(
            Endpoint::parse("https://vpce-1.kinesis.us-east-1.vpce.amazonaws.com/")
                .unwrap()
                .is_tls()
        );
        assert_eq!(
            Endpoint::parse("https://kinesis.eu-west-1.amazonaws.com:443")
                .unwrap()
                .authority()
                .as_str(),
            "kinesis.eu-west-1.amazonaws.com"
        );
        let authority = |url: &str| Endpoint::parse(url).unwrap().authority().to_string();
        assert_eq!(authority("http://localhost:80/"), "localhost");
        assert_eq!(authority("http://localhost:443"), "localhost:443");
        assert_eq!(authority("http://[::1]:4567"), "[::1]:4567");
        assert_eq!(authority("https://[::1]:443"), "[::1]");
        for (bad, why) in [
            ("http://127.0.0.1:456789", "port"),
            ("http://host:", "port"),
            ("ftp://x", "http:// or https://"),
            ("localhost:4567", "http:// or https://"),
            ("http://x/streams", "path"),
            ("http://x/?a=b", "query"),
            ("http://user:pw@x", "user information"),
            ("not a url", "not a URL"),
        ] {
            let err = Endpoint::parse(bad).unwrap_err();
            assert!(err.to_string().contains(why), "{bad}: {err}");
        }
    }
}
