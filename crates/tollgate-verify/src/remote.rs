//! [`RemoteKeySource`]: keys from a certs endpoint over HTTPS (feature `remote`, on by
//! default). An in-process issuer needs none of this: without the feature, tollgate-verify
//! compiles no HTTP client.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use http::HeaderMap;
use http::header::{AGE, CACHE_CONTROL};

use crate::error::{ConfigError, ConfigErrorKind, FetchError, FetchErrorKind};
use crate::key_source::{KeySet, KeySource};

/// The default connect timeout of [`RemoteKeySource`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The default total timeout (connect, send, read the body) of [`RemoteKeySource`].
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(10);
/// The default response size cap of [`RemoteKeySource`]: 256 KiB, far above any real key set.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Keys from a certs endpoint over HTTPS (reqwest with rustls), such as Cloudflare's
/// `https://<team>.cloudflareaccess.com/cdn-cgi/access/certs`.
///
/// Connect and total timeouts bound every fetch, the body is capped in size, and
/// `Cache-Control: max-age` (minus `Age`) becomes the set's max age. Plain `http://` is only
/// accepted for loopback hosts (local development and tests).
///
/// ```
/// use tollgate_verify::RemoteKeySource;
///
/// let source = RemoteKeySource::for_team_domain("team.cloudflareaccess.com")?;
/// assert_eq!(source.url(), "https://team.cloudflareaccess.com/cdn-cgi/access/certs");
/// assert!(RemoteKeySource::new("http://example.com/certs").is_err()); // not https
/// # Ok::<(), tollgate_verify::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct RemoteKeySource {
    url: reqwest::Url,
    client: reqwest::Client,
    max_bytes: usize,
}

impl std::fmt::Debug for RemoteKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKeySource")
            .field("url", &self.url.as_str())
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl RemoteKeySource {
    /// Keys from `certs_url`, with the default timeouts and size cap.
    pub fn new(certs_url: &str) -> Result<Self, ConfigError> {
        let url = reqwest::Url::parse(certs_url)
            .map_err(|e| ConfigError::new(ConfigErrorKind::InvalidUrl, certs_url).with_source(e))?;
        check_scheme(&url)?;
        Ok(Self {
            url,
            client: build_client(DEFAULT_CONNECT_TIMEOUT, DEFAULT_TOTAL_TIMEOUT)?,
            max_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        })
    }

    /// Keys from `<team domain>/cdn-cgi/access/certs`. The team domain may be given with or
    /// without `https://`.
    pub fn for_team_domain(team_domain: &str) -> Result<Self, ConfigError> {
        Self::new(&crate::config::team_domain(team_domain)?.certs_url())
    }

    /// Sets the connect and total timeouts (rebuilds the HTTP client).
    pub fn with_timeouts(
        mut self,
        connect: Duration,
        total: Duration,
    ) -> Result<Self, ConfigError> {
        if connect.is_zero() || total.is_zero() {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidLimit,
                "timeouts must be positive",
            ));
        }
        self.client = build_client(connect, total)?;
        Ok(self)
    }

    /// Uses `client` as is. It should have timeouts of its own.
    #[must_use]
    pub fn with_client(mut self, client: reqwest::Client) -> Self {
        self.client = client;
        self
    }

    /// Caps the response body at `max_bytes`.
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The certs URL.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    async fn fetch_set(&self) -> Result<KeySet, FetchError> {
        let mut response = self
            .client
            .get(self.url.clone())
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(classify)?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::of_kind(FetchErrorKind::Status(status.as_u16())));
        }
        if response
            .content_length()
            .is_some_and(|len| len > self.max_bytes as u64)
        {
            return Err(FetchError::of_kind(FetchErrorKind::TooLarge));
        }
        let max_age = cache_max_age(response.headers());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(FetchError::of_kind(FetchErrorKind::TooLarge));
            }
            body.extend_from_slice(&chunk);
        }
        let set = KeySet::from_jwks_json(&body)?;
        Ok(match max_age {
            Some(age) => set.with_max_age(age),
            None => set,
        })
    }
}

impl KeySource for RemoteKeySource {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<KeySet, FetchError>> + Send + '_>> {
        Box::pin(self.fetch_set())
    }

    fn describe(&self) -> String {
        // Without a query or fragment: a receiver's certs URL should hold no secret, but a
        // notice is no place to find out.
        let mut url = self.url.clone();
        url.set_query(None);
        url.set_fragment(None);
        url.to_string()
    }
}

fn check_scheme(url: &reqwest::Url) -> Result<(), ConfigError> {
    let loopback = match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(ConfigError::new(
            ConfigErrorKind::InvalidUrl,
            "certs URL must be https (http only for loopback hosts)",
        )),
    }
}

fn build_client(connect: Duration, total: Duration) -> Result<reqwest::Client, ConfigError> {
    reqwest::Client::builder()
        .connect_timeout(connect)
        .timeout(total)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("tollgate-verify/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ConfigError::new(ConfigErrorKind::HttpClient, "reqwest").with_source(e))
}

fn classify(err: reqwest::Error) -> FetchError {
    let kind = if err.is_timeout() {
        FetchErrorKind::Timeout
    } else if err.is_connect() {
        FetchErrorKind::Connect
    } else {
        FetchErrorKind::Other
    };
    FetchError::with_source(kind, err.without_url())
}

/// `Cache-Control: max-age` minus `Age`; `no-store`/`no-cache` mean zero.
pub(crate) fn cache_max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut max_age = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',').map(str::trim) {
            let lower = directive.to_ascii_lowercase();
            if lower == "no-store" || lower == "no-cache" {
                return Some(Duration::ZERO);
            }
            if let Some(secs) = lower.strip_prefix("max-age=")
                && let Ok(secs) = secs.trim_matches('"').parse::<u64>()
            {
                max_age = Some(secs);
            }
        }
    }
    let age = headers
        .get(AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    max_age.map(|secs| Duration::from_secs(secs.saturating_sub(age)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control() {
        let mut headers = HeaderMap::new();
        assert_eq!(cache_max_age(&headers), None);
        headers.insert(
            CACHE_CONTROL,
            "public, max-age=300".parse().expect("header value"),
        );
        assert_eq!(cache_max_age(&headers), Some(Duration::from_secs(300)));
        headers.insert(AGE, "100".parse().expect("header value"));
        assert_eq!(cache_max_age(&headers), Some(Duration::from_secs(200)));
        headers.insert(CACHE_CONTROL, "no-store".parse().expect("header value"));
        assert_eq!(cache_max_age(&headers), Some(Duration::ZERO));
    }

    #[test]
    fn loopback_http_only() {
        assert!(RemoteKeySource::new("http://127.0.0.1:8080/certs").is_ok());
        assert!(RemoteKeySource::new("http://localhost/certs").is_ok());
        assert!(RemoteKeySource::new("http://[::1]:9/certs").is_ok());
        assert!(RemoteKeySource::new("http://10.0.0.1/certs").is_err());
        assert!(RemoteKeySource::new("ftp://example.com/certs").is_err());
        assert!(RemoteKeySource::new("not a url").is_err());
    }
}
