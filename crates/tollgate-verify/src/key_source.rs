//! Where signing keys come from: a static set, a remote certs endpoint (`RemoteKeySource`,
//! feature `remote`), or anything that implements [`KeySource`] (such as tollgate's in-process
//! issuer).
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

    /// Where the keys come from, for logs and notices (a certs URL); never a credential.
    fn describe(&self) -> String {
        "a key source".to_owned()
    }
}

impl<T: KeySource + ?Sized> KeySource for Arc<T> {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<KeySet, FetchError>> + Send + '_>> {
        (**self).fetch()
    }
    fn is_local(&self) -> bool {
        (**self).is_local()
    }
    fn describe(&self) -> String {
        (**self).describe()
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
    /// `public_certs`) are ignored, but the whole document must be UTF-8 (serde_json would skip
    /// an ignored member's bytes unchecked; found by the `jwks` fuzz target).
    pub fn from_jwks_json(json: &[u8]) -> Result<Self, FetchError> {
        #[derive(Deserialize)]
        struct Jwks {
            keys: Vec<Value>,
        }
        let json = std::str::from_utf8(json)
            .map_err(|e| FetchError::with_source(FetchErrorKind::InvalidKeySet, e))?;
        let jwks: Jwks = serde_json::from_str(json)
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
