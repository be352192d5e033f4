//! Where signing keys come from: a remote certs endpoint, a static set, or anything that
//! implements [`KeySource`] (such as tollgate's in-process issuer).
//!
//! ```
//! use tollgate_verify::{KeySet, KeySource, StaticKeySource};
//!
//! # tokio_test_block_on(async {
//! let source = StaticKeySource::from_jwks_json(br#"{"keys":[{"kid":"a","kty":"oct","k":"c2VjcmV0"}]}"#)?;
//! let set: KeySet = source.fetch().await?;
//! assert_eq!(set.len(), 1); // parsed and filtered one by one later: this `oct` key will be skipped
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use http::header::{AGE, CACHE_CONTROL};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ConfigError, ConfigErrorKind, FetchError, FetchErrorKind};
use crate::public_key::pem_to_jwks;

/// A boxed, sendable future, as [`KeySource::fetch`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A source of signing keys.
///
/// The verifier calls [`fetch`](KeySource::fetch) at start, on a background schedule, and when a
/// token names an unknown `kid` (single flight, with a cooldown for remote sources).
pub trait KeySource: Send + Sync + fmt::Debug + 'static {
    /// Fetch the current key set.
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<KeySet, FetchError>> + Send + '_>>;

    /// True for in-process sources (no HTTP): unknown-kid refetches need no cooldown.
    fn is_local(&self) -> bool {
        false
    }
}

impl<T: KeySource + ?Sized> KeySource for Arc<T> {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<KeySet, FetchError>> + Send + '_>> {
        (**self).fetch()
    }
    fn is_local(&self) -> bool {
        (**self).is_local()
    }
}

/// A set of public keys as JWK objects, not yet judged: the verifier parses them one by one and
/// skips (and logs) those it cannot or must not use.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: Arc<Vec<Value>>,
    max_age: Option<Duration>,
}

impl KeySet {
    /// A key set from raw JWK objects such as
    /// `{"kid","kty":"RSA","alg":"RS256","use":"sig","n","e"}`.
    pub fn from_jwks(keys: Vec<Value>) -> Self {
        Self {
            keys: Arc::new(keys),
            max_age: None,
        }
    }

    /// Parses a JWK Set document, `{"keys":[…]}`. Other members (Cloudflare's `public_cert`,
    /// `public_certs`) are ignored.
    pub fn from_jwks_json(json: &[u8]) -> Result<Self, FetchError> {
        #[derive(Deserialize)]
        struct Jwks {
            keys: Vec<Value>,
        }
        let jwks: Jwks = serde_json::from_slice(json)
            .map_err(|e| FetchError::with_source(FetchErrorKind::InvalidKeySet, e))?;
        Ok(Self::from_jwks(jwks.keys))
    }

    /// How long the set may be used before it should be fetched again (e.g. from
    /// `Cache-Control: max-age`). Without it the verifier's refresh interval applies.
    #[must_use]
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// The max age, if the source gave one.
    pub fn max_age(&self) -> Option<Duration> {
        self.max_age
    }

    /// The raw JWK objects.
    pub fn jwks(&self) -> &[Value] {
        &self.keys
    }

    /// The number of JWKs, usable or not.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set has no JWK at all.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub(crate) fn same_keys(&self, other: &KeySet) -> bool {
        Arc::ptr_eq(&self.keys, &other.keys) || self.keys == other.keys
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<&str> = self
            .keys
            .iter()
            .map(|k| k.get("kid").and_then(Value::as_str).unwrap_or("?"))
            .collect();
        f.debug_struct("KeySet")
            .field("kids", &kids)
            .field("max_age", &self.max_age)
            .finish()
    }
}

/// A fixed key set: a JWK Set document or PEM public keys. Never changes, needs no network.
///
/// PEM keys get the `kid` tollgate's issuer and Cloudflare use: the lowercase hex SHA-256 of
/// the key's DER `SubjectPublicKeyInfo`.
#[derive(Debug, Clone)]
pub struct StaticKeySource {
    set: KeySet,
}

impl StaticKeySource {
    /// A source that always answers `set`.
    pub fn new(set: KeySet) -> Self {
        Self { set }
    }

    /// From a JWK Set document (`{"keys":[…]}`).
    pub fn from_jwks_json(json: &[u8]) -> Result<Self, ConfigError> {
        let set = KeySet::from_jwks_json(json).map_err(|e| {
            ConfigError::new(ConfigErrorKind::InvalidKeys, "JWK Set").with_source(e)
        })?;
        Ok(Self::new(set))
    }

    /// From one or more PEM RSA public keys (`-----BEGIN PUBLIC KEY-----` or
    /// `-----BEGIN RSA PUBLIC KEY-----` blocks).
    pub fn from_pem(pem: &str) -> Result<Self, ConfigError> {
        let keys =
            pem_to_jwks(pem).map_err(|why| ConfigError::new(ConfigErrorKind::InvalidKeys, why))?;
        Ok(Self::new(KeySet::from_jwks(keys)))
    }

    /// The key set.
    pub fn key_set(&self) -> &KeySet {
        &self.set
    }
}

impl KeySource for StaticKeySource {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<KeySet, FetchError>> + Send + '_>> {
        let set = self.set.clone();
        Box::pin(async move { Ok(set) })
    }

    fn is_local(&self) -> bool {
        true
    }
}

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

impl fmt::Debug for RemoteKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
