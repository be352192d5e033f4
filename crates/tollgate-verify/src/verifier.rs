//! [`Verifier`]: checks an Access JWT and answers the [`AccessIdentity`] it carries.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::IgnoredAny;
use tollgate_core::claims::{AccessClaims, ClaimsErrorKind};
use tollgate_core::clock::unix_seconds;
use tollgate_core::{AccessIdentity, Rejection, RejectionKind};

use crate::algorithm::Algorithm;
use crate::config::VerifyConfig;
use crate::error::{ConfigError, FetchError};
use crate::key_cache::{KeyCache, Reason, Slot};
use crate::key_source::KeySource;
use crate::public_key::PublicKey;
use crate::token_cache::{CachedToken, TokenCache};

/// Verifies Cloudflare Access JWTs. Cheap to clone (an `Arc` inside); share one per
/// application.
///
/// What it checks, in order: size cap; compact JWS shape and strict base64url; a UTF-8 header
/// with no member twice, `typ` (when present) `JWT`, none of `crit`, `b64`, `zip`, `enc`,
/// `p2c`, `epk`; the header's `alg` against the allow-list and the key (`jku`, `x5u`, `jwk`,
/// `x5c` are never read); the `kid` in the key set (refetching once, single flight, on an
/// unknown one); the signature; then the claims — a UTF-8 object with no claim twice, times
/// that are numbers (`null` is refused), `exp` required and strict, `nbf` and `iat` with the
/// leeway, a lifetime of at most [`max_lifetime`](VerifyConfig::max_lifetime) (31 days),
/// `type` (when present) `app`, `iss` exact, `aud` containing a configured tag — and that they
/// name a user or a service.
/// Verified tokens are cached (exact match, bounded) until `exp` or until their key leaves
/// the set.
///
/// A tokio runtime (with timers) must be running when [`verify`](Self::verify) is called; the
/// constructor needs none. The background key refresh starts on the first verification and
/// stops when the last clone is dropped.
///
/// ```no_run
/// use tollgate_verify::Verifier;
///
/// # async fn demo(token: &str) -> Result<(), Box<dyn std::error::Error>> {
/// let verifier = Verifier::for_team_domain("https://team.cloudflareaccess.com", "<AUD tag>")?;
/// let identity = verifier.verify(token).await?;
/// println!("{} ({:?})", identity.name(), identity.kind());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Verifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: VerifyConfig,
    keys: Arc<KeyCache>,
    tokens: TokenCache,
    cache_hits: AtomicU64,
    signature_checks: AtomicU64,
}

/// Counters of a [`Verifier`], for tests and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct VerifyStats {
    /// Tokens answered from the verified-token cache.
    pub cache_hits: u64,
    /// Signature verifications performed.
    pub signature_checks: u64,
    /// Key fetches started.
    pub key_fetches: u64,
    /// Key fetches that failed: the source failed or timed out, or served no usable key (the
    /// last good keys keep serving meanwhile, up to `max_stale`).
    pub key_fetch_failures: u64,
    /// When a key fetch last succeeded (by the configured clock); `None` before the first.
    pub last_key_fetch_success: Option<std::time::SystemTime>,
    /// Entries in the verified-token cache.
    pub cached_tokens: usize,
}

/// The outcome of [`Verifier::try_verify`], which never waits.
#[derive(Debug)]
#[must_use]
pub enum Attempt {
    /// Verified or refused without waiting: a verified-token cache hit, or a full check with
    /// keys already known.
    Done(Result<AccessIdentity, Rejection>),
    /// The key set lacks the token's `kid`, or holds no usable key: a key fetch is needed.
    /// [`Verifier::verify`] does it (single flight) and answers.
    NeedsKeyFetch,
}

impl Attempt {
    /// The result, if it is [`Done`](Attempt::Done).
    pub fn done(self) -> Option<Result<AccessIdentity, Rejection>> {
        match self {
            Attempt::Done(result) => Some(result),
            Attempt::NeedsKeyFetch => None,
        }
    }
}

/// The outcome of the JWS layer.
enum Checked<'t> {
    Verified(Jws<'t>, Arc<PublicKey>),
    Refused(Rejection),
    NeedKeys,
}

/// The JOSE header members tollgate reads. A member named twice is refused by serde; the
/// unsupported ones are caught by name, whatever their value (`null` included).
#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
    #[serde(default, deserialize_with = "present")]
    b64: bool,
    #[serde(default, deserialize_with = "present")]
    zip: bool,
    #[serde(default, deserialize_with = "present")]
    enc: bool,
    #[serde(default, deserialize_with = "present")]
    p2c: bool,
    #[serde(default, deserialize_with = "present")]
    epk: bool,
}

/// A header member that is there at all (its value is not looked at).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer).map(|_| true)
}

impl Verifier {
    /// A verifier for `config`, with keys from `source`. Fails on an invalid configuration (no
    /// audience, empty allow-list, …). No key is fetched until the first verification.
    pub fn new(config: VerifyConfig, source: impl KeySource) -> Result<Self, ConfigError> {
        config.validate()?;
        let keys = Arc::new(KeyCache::new(&config, Arc::new(source)));
        Ok(Self {
            inner: Arc::new(Inner {
                tokens: TokenCache::new(config.cache_capacity),
                config,
                keys,
                cache_hits: AtomicU64::new(0),
                signature_checks: AtomicU64::new(0),
            }),
        })
    }

    /// A verifier for a Cloudflare Access application: issuer `https://<team domain>` (any
    /// spelling [`TeamDomain`](tollgate_core::TeamDomain) accepts, compared in its canonical
    /// one), keys from `<team domain>/cdn-cgi/access/certs`, audience `aud` (the
    /// application's AUD tag). Feature `remote`.
    #[cfg(feature = "remote")]
    pub fn for_team_domain(
        team_domain_text: &str,
        aud: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        let domain = crate::config::team_domain(team_domain_text)?;
        let source = crate::RemoteKeySource::new(&domain.certs_url())?;
        Self::new(VerifyConfig::for_team_domain(&domain).audience(aud), source)
    }

    /// The configuration.
    pub fn config(&self) -> &VerifyConfig {
        &self.inner.config
    }

    /// Verifies `token` and answers its identity, or why it is refused. Fetches keys when the
    /// token names a `kid` the verifier does not know yet.
    pub async fn verify(&self, token: &str) -> Result<AccessIdentity, Rejection> {
        match self.try_verify(token) {
            Attempt::Done(result) => result,
            Attempt::NeedsKeyFetch => self.verify_after_fetch(token).await,
        }
    }

    /// Forces a key fetch now (joining one already in flight) and waits for it.
    pub async fn refresh(&self) -> Result<(), FetchError> {
        self.inner.keys.ensure_refresher();
        match self.inner.keys.refetch(Reason::Forced).await {
            Some(result) => result,
            None => Ok(()),
        }
    }

    /// Notices about this verifier's key source from now on:
    /// [`Notice::KeyFetchFailing`](tollgate_core::notice::Notice::KeyFetchFailing) once
    /// [`key_fetch_alert_after`](VerifyConfig::key_fetch_alert_after) fetches in a row failed
    /// (once per episode), [`KeyFetchRecovered`](tollgate_core::notice::Notice::KeyFetchRecovered)
    /// when one works again. Each is also logged. Clones share them.
    pub fn subscribe_notices(
        &self,
    ) -> tokio::sync::broadcast::Receiver<tollgate_core::notice::Notice> {
        self.inner.keys.subscribe_notices()
    }

    /// Counters since the verifier was built.
    pub fn stats(&self) -> VerifyStats {
        VerifyStats {
            cache_hits: self.inner.cache_hits.load(Ordering::Relaxed),
            signature_checks: self.inner.signature_checks.load(Ordering::Relaxed),
            key_fetches: self.inner.keys.fetch_count(),
            key_fetch_failures: self.inner.keys.fetch_failure_count(),
            last_key_fetch_success: self.inner.keys.last_fetch_success(),
            cached_tokens: self.inner.tokens.len(),
        }
    }

    pub(crate) async fn verify_after_fetch(
        &self,
        token: &str,
    ) -> Result<AccessIdentity, Rejection> {
        let fetched = self.inner.keys.refetch(Reason::Missing).await;
        match self.try_verify(token) {
            Attempt::Done(result) => result,
            Attempt::NeedsKeyFetch => {
                let now = self.inner.config.clock.now();
                if self.inner.keys.load().usable(now) {
                    Err(Rejection::new(RejectionKind::UnknownKey))
                } else {
                    let detail = match fetched {
                        None => "key fetch cooling down after a failure",
                        Some(_) => "no usable signing keys",
                    };
                    Err(Rejection::new(RejectionKind::KeysUnavailable).with_detail(detail))
                }
            }
        }
    }

    /// Verifies `token` if that needs no waiting — a verified-token cache hit, or a full check
    /// with keys already known — and otherwise says a key fetch is needed. This is the fast
    /// path of tollgate's layers: a request whose token verifies now is passed on without
    /// allocating a future; only [`Attempt::NeedsKeyFetch`] goes on to
    /// [`verify`](Self::verify).
    ///
    /// ```
    /// use tollgate_verify::{Attempt, StaticKeySource, Verifier, VerifyConfig};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let config = VerifyConfig::new("https://team.example.com").audience("aud");
    /// let verifier = Verifier::new(config, StaticKeySource::from_jwks_json(br#"{"keys":[]}"#)?)?;
    /// match verifier.try_verify("not-a-jwt") {
    ///     Attempt::Done(result) => assert!(result.is_err()),
    ///     Attempt::NeedsKeyFetch => unreachable!("malformed tokens are refused at once"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn try_verify(&self, token: &str) -> Attempt {
        match self.try_verify_token(token) {
            Attempt::Done(Ok(identity)) => Attempt::Done(self.check_identity(identity)),
            other => other,
        }
    }

    /// The configured [`IdentityCheck`](crate::IdentityCheck), if any, on an identity the token
    /// itself proved.
    fn check_identity(&self, identity: AccessIdentity) -> Result<AccessIdentity, Rejection> {
        match &self.inner.config.identity_check {
            Some(hook) => hook.0.check(&identity).map(|()| identity),
            None => Ok(identity),
        }
    }

    /// [`try_verify`](Self::try_verify) without the identity check: the token alone.
    fn try_verify_token(&self, token: &str) -> Attempt {
        let inner = &*self.inner;
        inner.keys.ensure_refresher();
        if token.len() > inner.config.max_token_bytes {
            return Attempt::Done(Err(Rejection::new(RejectionKind::TokenTooLarge)));
        }
        let now = inner.config.clock.now();
        let now_secs = unix_seconds(now);
        let hash = inner.tokens.hash(token);
        let snapshot = inner.keys.load();
        if inner.tokens.enabled() {
            let hit = inner.tokens.get(token, hash, |entry| {
                now_secs < entry.exp && snapshot.usable(now) && snapshot.holds(&entry.key)
            });
            if let Some(identity) = hit {
                inner.cache_hits.fetch_add(1, Ordering::Relaxed);
                inner.keys.kick_if_stale(&snapshot, now);
                return Attempt::Done(Ok(identity));
            }
        }
        drop(snapshot);
        let (jws, key) = match self.check_signature(token, now) {
            Checked::Verified(jws, key) => (jws, key),
            Checked::Refused(rejection) => return Attempt::Done(Err(rejection)),
            Checked::NeedKeys => return Attempt::NeedsKeyFetch,
        };
        let result = self.check_claims(token, &jws, now);
        if let Ok(identity) = &result {
            let current = inner.keys.load_full();
            inner.tokens.insert(
                token,
                hash,
                CachedToken {
                    identity: identity.clone(),
                    exp: identity.claims().expires_at(),
                    key,
                },
                |entry| now_secs < entry.exp && current.holds(&entry.key),
            );
        }
        Attempt::Done(result)
    }

    /// The JWS layer: shape, header, algorithm, key and signature — no claims.
    fn check_signature<'t>(&self, token: &'t str, now: SystemTime) -> Checked<'t> {
        let inner = &*self.inner;
        let jws = match Jws::parse(token) {
            Ok(jws) => jws,
            Err(rejection) => return Checked::Refused(rejection),
        };
        let alg = match jws.header.alg.parse::<Algorithm>() {
            Ok(alg) if inner.config.algorithms.contains(&alg) => alg,
            _ => return Checked::Refused(Rejection::new(RejectionKind::DisallowedAlgorithm)),
        };
        let Some(kid) = jws.header.kid.as_deref() else {
            return Checked::Refused(
                Rejection::new(RejectionKind::UnknownKey).with_detail("token header has no kid"),
            );
        };
        let snapshot = inner.keys.load();
        if !snapshot.usable(now) {
            return Checked::NeedKeys;
        }
        inner.keys.kick_if_stale(&snapshot, now);
        let key = match snapshot.get(kid) {
            Some(Slot::Key(key)) => key.clone(),
            Some(Slot::Ambiguous) => {
                return Checked::Refused(
                    Rejection::new(RejectionKind::UnknownKey)
                        .with_detail("kid names two different keys in the key set"),
                );
            }
            None => return Checked::NeedKeys,
        };
        drop(snapshot);
        let Some(verifier) = key.verifier(alg) else {
            return Checked::Refused(
                Rejection::new(RejectionKind::DisallowedAlgorithm)
                    .with_detail("algorithm does not fit the key"),
            );
        };
        inner.signature_checks.fetch_add(1, Ordering::Relaxed);
        if verifier
            .verify_sig(jws.signing_input.as_bytes(), &jws.signature)
            .is_err()
        {
            return Checked::Refused(Rejection::new(RejectionKind::InvalidSignature));
        }
        Checked::Verified(jws, key)
    }

    /// The JWS layer alone, fetching keys if needed: the payload bytes of a token whose
    /// signature verifies. For signature-level test vectors, whose payloads are not claims.
    #[cfg(test)]
    pub(crate) async fn verify_signature_only(&self, token: &str) -> Result<Vec<u8>, Rejection> {
        let now = self.inner.config.clock.now();
        let mut checked = self.check_signature(token, now);
        if matches!(checked, Checked::NeedKeys) {
            self.inner.keys.refetch(Reason::Missing).await;
            checked = self.check_signature(token, now);
        }
        match checked {
            Checked::Verified(jws, _) => URL_SAFE_NO_PAD
                .decode(jws.payload)
                .map_err(|_| Rejection::new(RejectionKind::MalformedToken)),
            Checked::Refused(rejection) => Err(rejection),
            Checked::NeedKeys => Err(Rejection::new(RejectionKind::UnknownKey)),
        }
    }

    fn check_claims(
        &self,
        token: &str,
        jws: &Jws<'_>,
        now: SystemTime,
    ) -> Result<AccessIdentity, Rejection> {
        let config = &self.inner.config;
        let payload = URL_SAFE_NO_PAD.decode(jws.payload).map_err(|_| {
            Rejection::new(RejectionKind::MalformedToken).with_detail("payload is not base64url")
        })?;
        if std::str::from_utf8(&payload).is_err() {
            return Err(
                Rejection::new(RejectionKind::MalformedToken).with_detail("payload is not UTF-8")
            );
        }
        let claims = AccessClaims::from_json(&payload).map_err(|err| match err.kind() {
            ClaimsErrorKind::DuplicateClaim => {
                Rejection::new(RejectionKind::MalformedToken).with_detail("a claim appears twice")
            }
            ClaimsErrorKind::MissingClaim => Rejection::new(RejectionKind::MissingClaim),
            ClaimsErrorKind::InvalidClaim => Rejection::new(RejectionKind::InvalidClaim),
            _ => Rejection::new(RejectionKind::MalformedToken)
                .with_detail("payload is not a JSON object"),
        })?;
        let now = unix_seconds(now);
        let leeway = i64::try_from(config.leeway.as_secs()).unwrap_or(i64::MAX);
        let exp = claims.expires_at();
        if now >= exp {
            return Err(Rejection::expired(exp, now));
        }
        for not_before in [claims.not_before(), claims.issued_at()]
            .into_iter()
            .flatten()
        {
            if not_before > now.saturating_add(leeway) {
                return Err(Rejection::not_yet_valid(not_before, now));
            }
        }
        let max_lifetime = i64::try_from(config.max_lifetime.as_secs()).unwrap_or(i64::MAX);
        let start = claims.issued_at().or(claims.not_before()).unwrap_or(now);
        if exp.saturating_sub(start) > max_lifetime {
            return Err(Rejection::new(RejectionKind::LifetimeTooLong));
        }
        match claims.token_type() {
            None | Some("app") => {}
            Some("org") if config.accept_org_tokens => {}
            Some(_) => {
                return Err(Rejection::new(RejectionKind::WrongTokenType)
                    .with_detail("the type claim is not app"));
            }
        }
        if claims.issuer() != config.issuer {
            return Err(Rejection::new(RejectionKind::WrongIssuer));
        }
        if !config
            .audiences
            .iter()
            .any(|tag| claims.audience().contains(tag))
        {
            return Err(Rejection::new(RejectionKind::WrongAudience));
        }
        AccessIdentity::from_verified(claims, token)
    }
}

/// A compact JWS, split and its header and signature decoded.
pub(crate) struct Jws<'a> {
    header: Header,
    payload: &'a str,
    signing_input: &'a str,
    signature: Vec<u8>,
}

impl<'a> Jws<'a> {
    pub(crate) fn parse(token: &'a str) -> Result<Self, Rejection> {
        let malformed = |detail: &'static str| {
            Rejection::new(RejectionKind::MalformedToken).with_detail(detail)
        };
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("not three dot-separated parts"));
        };
        if header_b64.is_empty() || signature.is_empty() {
            return Err(malformed("empty header or signature"));
        }
        let header_json = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|_| malformed("header is not base64url"))?;
        // serde_json skips the members it ignores without checking their UTF-8.
        if std::str::from_utf8(&header_json).is_err() {
            return Err(malformed("header is not UTF-8"));
        }
        let header: Header = serde_json::from_slice(&header_json)
            .map_err(|_| malformed("header is not a valid JOSE header"))?;
        if header.crit || header.b64 || header.zip || header.enc || header.p2c || header.epk {
            return Err(Rejection::new(RejectionKind::UnsupportedHeader)
                .with_detail("crit, b64, zip, enc, p2c and epk are not supported"));
        }
        if header
            .typ
            .as_deref()
            .is_some_and(|typ| !typ.eq_ignore_ascii_case("JWT"))
        {
            return Err(Rejection::new(RejectionKind::WrongTokenType)
                .with_detail("the header's typ is not JWT"));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| malformed("signature is not base64url"))?;
        let signing_input = &token[..header_b64.len() + 1 + payload.len()];
        Ok(Self {
            header,
            payload,
            signing_input,
            signature,
        })
    }
}
