//! Errors of configuration and of key fetching. Verification failures are
//! [`Rejection`](tollgate_core::Rejection)s, not these.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

type BoxError = Box<dyn StdError + Send + Sync>;

/// Why a key set could not be fetched or parsed. Cheap to clone.
///
/// ```
/// use tollgate_verify::{FetchError, FetchErrorKind};
///
/// let err = FetchError::new("issuer is shutting down");
/// assert_eq!(err.kind(), FetchErrorKind::Other);
/// assert_eq!(err.to_string(), "fetching signing keys failed: issuer is shutting down");
/// ```
#[derive(Clone)]
pub struct FetchError {
    inner: Arc<FetchInner>,
}

struct FetchInner {
    kind: FetchErrorKind,
    source: Option<BoxError>,
}

/// The category of a [`FetchError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FetchErrorKind {
    /// The endpoint could not be reached or the connection failed.
    Connect,
    /// The fetch took longer than its timeout.
    Timeout,
    /// The endpoint answered with a non-success HTTP status.
    Status(u16),
    /// The response exceeded the size cap.
    TooLarge,
    /// The body is not a JWK Set (`{"keys":[…]}`).
    InvalidKeySet,
    /// The key set parsed, but holds no key this verifier can use.
    NoUsableKeys,
    /// Any other failure, e.g. from a custom [`KeySource`](crate::KeySource).
    Other,
}

impl FetchError {
    /// A fetch error from any error or message (kind [`FetchErrorKind::Other`]).
    pub fn new(source: impl Into<BoxError>) -> Self {
        Self::with_source(FetchErrorKind::Other, source)
    }

    pub(crate) fn with_source(kind: FetchErrorKind, source: impl Into<BoxError>) -> Self {
        Self {
            inner: Arc::new(FetchInner {
                kind,
                source: Some(source.into()),
            }),
        }
    }

    pub(crate) fn of_kind(kind: FetchErrorKind) -> Self {
        Self {
            inner: Arc::new(FetchInner { kind, source: None }),
        }
    }

    /// The category.
    pub fn kind(&self) -> FetchErrorKind {
        self.inner.kind
    }
}

impl fmt::Debug for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchError")
            .field("kind", &self.inner.kind)
            .field("source", &self.inner.source)
            .finish()
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("fetching signing keys failed")?;
        match self.inner.kind {
            FetchErrorKind::Connect => f.write_str(": connection failed")?,
            FetchErrorKind::Timeout => f.write_str(": timed out")?,
            FetchErrorKind::Status(status) => write!(f, ": HTTP status {status}")?,
            FetchErrorKind::TooLarge => f.write_str(": response too large")?,
            FetchErrorKind::InvalidKeySet => f.write_str(": not a JWK Set")?,
            FetchErrorKind::NoUsableKeys => f.write_str(": no usable key in the set")?,
            FetchErrorKind::Other => {}
        }
        if let Some(source) = &self.inner.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl StdError for FetchError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

/// A configuration the verifier or layer refuses to run with. Raised when it is built, never
/// on a request.
///
/// ```
/// use tollgate_verify::{ConfigErrorKind, StaticKeySource, Verifier, VerifyConfig};
///
/// let keys = StaticKeySource::from_jwks_json(br#"{"keys":[]}"#).unwrap();
/// let err = Verifier::new(VerifyConfig::new("https://team.example"), keys).unwrap_err();
/// assert_eq!(err.kind(), ConfigErrorKind::NoAudience);
/// ```
#[derive(Debug)]
pub struct ConfigError {
    kind: ConfigErrorKind,
    detail: Option<String>,
    source: Option<BoxError>,
}

/// The category of a [`ConfigError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The issuer (team domain) is empty or not an `https://` origin.
    InvalidIssuer,
    /// No audience (AUD tag) was configured.
    NoAudience,
    /// The algorithm allow-list is empty.
    NoAlgorithms,
    /// The certs URL is not a valid URL.
    InvalidUrl,
    /// The HTTP client could not be built.
    HttpClient,
    /// Static keys could not be parsed.
    InvalidKeys,
    /// A layer option is invalid (e.g. an empty token-location list).
    InvalidLayer,
    /// A numeric limit is out of range (e.g. a zero token size cap).
    InvalidLimit,
}

impl ConfigError {
    pub(crate) fn new(kind: ConfigErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: Some(detail.into()),
            source: None,
        }
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The category.
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            ConfigErrorKind::InvalidIssuer => "invalid issuer",
            ConfigErrorKind::NoAudience => "no audience configured",
            ConfigErrorKind::NoAlgorithms => "no algorithm allowed",
            ConfigErrorKind::InvalidUrl => "invalid certs URL",
            ConfigErrorKind::HttpClient => "cannot build the HTTP client",
            ConfigErrorKind::InvalidKeys => "invalid keys",
            ConfigErrorKind::InvalidLayer => "invalid layer configuration",
            ConfigErrorKind::InvalidLimit => "limit out of range",
        })?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl StdError for ConfigError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}
