//! [`VerifyConfig`]: what a [`Verifier`](crate::Verifier) accepts.

use std::sync::Arc;
use std::time::Duration;

use tollgate_core::{AccessIdentity, Rejection, SharedClock, SystemClock, TeamDomain};

use crate::algorithm::Algorithm;
use crate::error::{ConfigError, ConfigErrorKind};

/// What a [`Verifier`](crate::Verifier) accepts, and how it keeps its keys.
///
/// Defaults: RS256 only; 60 s leeway on `nbf`/`iat` (`exp` is strict); tokens living at most
/// 31 days; application tokens (`type:"app"`) only; 16 KiB token cap; a
/// 10,000-entry verified-token cache; keys refreshed per `Cache-Control` (1 h without it, never
/// more often than every 30 s), unknown-`kid` refetches at most every 10 s, a fetch awaited at
/// most 10 s, and last good keys served through fetch failures for up to 24 h past their max
/// age.
///
/// ```
/// use std::time::Duration;
/// use tollgate_verify::{Algorithm, VerifyConfig};
///
/// let config = VerifyConfig::new("https://team.cloudflareaccess.com")
///     .audience("4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2")
///     .algorithms([Algorithm::RS256])
///     .leeway(Duration::from_secs(30));
/// assert_eq!(config.issuer(), "https://team.cloudflareaccess.com");
/// ```
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    pub(crate) issuer: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) leeway: Duration,
    pub(crate) max_token_bytes: usize,
    pub(crate) clock: SharedClock,
    pub(crate) cache_capacity: usize,
    pub(crate) max_stale: Duration,
    pub(crate) refetch_cooldown: Duration,
    pub(crate) refresh_interval: Duration,
    pub(crate) min_refresh_interval: Duration,
    pub(crate) fetch_timeout: Duration,
    pub(crate) key_fetch_alert_after: u32,
    pub(crate) max_lifetime: Duration,
    pub(crate) accept_org_tokens: bool,
    pub(crate) identity_check: Option<IdentityCheckHook>,
}

/// A last check on every identity a [`Verifier`](crate::Verifier) accepts, cached tokens
/// included: what the token alone cannot tell, such as an issuer's revocations. Closures
/// `Fn(&AccessIdentity) -> Result<(), Rejection>` implement it.
pub trait IdentityCheck: Send + Sync + 'static {
    /// `Ok` lets the verified identity through; `Err` refuses it with that rejection.
    fn check(&self, identity: &AccessIdentity) -> Result<(), Rejection>;
}

impl<F> IdentityCheck for F
where
    F: Fn(&AccessIdentity) -> Result<(), Rejection> + Send + Sync + 'static,
{
    fn check(&self, identity: &AccessIdentity) -> Result<(), Rejection> {
        self(identity)
    }
}

/// The configured [`IdentityCheck`], shared by clones of the configuration.
#[derive(Clone)]
pub(crate) struct IdentityCheckHook(pub(crate) Arc<dyn IdentityCheck>);

impl std::fmt::Debug for IdentityCheckHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityCheck")
    }
}

/// After how many failed key fetches in a row a verifier raises a notice, by default.
pub const DEFAULT_KEY_FETCH_ALERT_AFTER: u32 = 3;

/// The longest token lifetime accepted by default: 31 days, above Cloudflare's longest session
/// (one month, `730h`).
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(31 * 86_400);

impl VerifyConfig {
    /// A configuration accepting tokens whose `iss` is exactly `issuer` (for Cloudflare,
    /// `https://<team>.cloudflareaccess.com`, no trailing slash). Add at least one audience.
    /// [`for_team_domain`](Self::for_team_domain) takes the issuer from a [`TeamDomain`]
    /// instead, whatever its spelling.
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audiences: Vec::new(),
            algorithms: vec![Algorithm::RS256],
            leeway: Duration::from_secs(60),
            max_token_bytes: 16 * 1024,
            clock: Arc::new(SystemClock),
            cache_capacity: 10_000,
            max_stale: Duration::from_secs(24 * 3600),
            refetch_cooldown: Duration::from_secs(10),
            refresh_interval: Duration::from_secs(3600),
            min_refresh_interval: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(10),
            key_fetch_alert_after: DEFAULT_KEY_FETCH_ALERT_AFTER,
            max_lifetime: DEFAULT_MAX_LIFETIME,
            accept_org_tokens: false,
            identity_check: None,
        }
    }

    /// A configuration accepting tokens whose `iss` is `team_domain`'s canonical spelling
    /// (`https://team.example.com` for `Team.Example.com`). Add at least one audience.
    pub fn for_team_domain(team_domain: &TeamDomain) -> Self {
        Self::new(team_domain.as_str())
    }

    /// Accepts tokens whose `aud` contains `tag` (an Access application's AUD tag).
    #[must_use]
    pub fn audience(mut self, tag: impl Into<String>) -> Self {
        self.audiences.push(tag.into());
        self
    }

    /// Accepts tokens whose `aud` contains any of `tags`.
    #[must_use]
    pub fn audiences<I>(mut self, tags: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.audiences.extend(tags.into_iter().map(Into::into));
        self
    }

    /// The algorithm allow-list (replaces the default, RS256). The token header's `alg` must be
    /// on it and fit the key.
    #[must_use]
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self.algorithms.dedup();
        self
    }

    /// Clock skew tolerated on `nbf` and `iat` (default 60 s). `exp` gets none.
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Tokens longer than this are refused unread (default 16 KiB).
    #[must_use]
    pub fn max_token_bytes(mut self, max: usize) -> Self {
        self.max_token_bytes = max;
        self
    }

    /// Where "now" comes from (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Verified tokens remembered (default 10,000; 0 disables the cache).
    #[must_use]
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// How long past their max age the last good keys keep serving while fetches fail
    /// (default 24 h). After that, verification answers
    /// [`KeysUnavailable`](tollgate_core::RejectionKind::KeysUnavailable).
    #[must_use]
    pub fn max_stale(mut self, max_stale: Duration) -> Self {
        self.max_stale = max_stale;
        self
    }

    /// Minimum time between two refetches caused by unknown `kid`s (default 10 s). In-process
    /// sources ([`KeySource::is_local`](crate::KeySource::is_local)) have none.
    #[must_use]
    pub fn refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.refetch_cooldown = cooldown;
        self
    }

    /// Refresh interval when the source gives no max age (default 1 h).
    #[must_use]
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// Floor on the refresh interval, whatever `Cache-Control` says (default 30 s).
    #[must_use]
    pub fn min_refresh_interval(mut self, interval: Duration) -> Self {
        self.min_refresh_interval = interval;
        self
    }

    /// Longest a request waits on a key fetch (default 10 s).
    #[must_use]
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// After how many failed key fetches in a row the verifier raises
    /// [`Notice::KeyFetchFailing`](tollgate_core::notice::Notice::KeyFetchFailing) (once per
    /// failure episode, and [`KeyFetchRecovered`](tollgate_core::notice::Notice::KeyFetchRecovered)
    /// when a fetch works again) on [`Verifier::subscribe_notices`](crate::Verifier::subscribe_notices).
    /// Default 3; 0 never. Local sources (an in-process issuer) never raise it.
    #[must_use]
    pub fn key_fetch_alert_after(mut self, failures: u32) -> Self {
        self.key_fetch_alert_after = failures;
        self
    }

    /// The longest lifetime a token may have, `exp` minus `iat` (or `nbf`, or now when it has
    /// neither); longer ones are refused as
    /// [`LifetimeTooLong`](tollgate_core::RejectionKind::LifetimeTooLong). Default 31 days.
    #[must_use]
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = lifetime;
        self
    }

    /// Also accept team-domain tokens (`type:"org"`), not only application tokens
    /// (`type:"app"`, the default). Tokens without a `type` claim are accepted either way.
    #[must_use]
    pub fn accept_org_tokens(mut self, accept: bool) -> Self {
        self.accept_org_tokens = accept;
        self
    }

    /// Runs `check` on every identity the verifier would accept, after the signature and
    /// claims (and on every cache hit): its `Err` refuses the token. None by default.
    #[must_use]
    pub fn identity_check(mut self, check: impl IdentityCheck) -> Self {
        self.identity_check = Some(IdentityCheckHook(Arc::new(check)));
        self
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audiences.
    pub fn audience_tags(&self) -> &[String] {
        &self.audiences
    }

    /// The algorithm allow-list.
    pub fn allowed_algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.issuer.trim().is_empty() {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidIssuer,
                "issuer is empty",
            ));
        }
        if self.audiences.is_empty() {
            return Err(ConfigError::new(
                ConfigErrorKind::NoAudience,
                "add the application's AUD tag with .audience()",
            ));
        }
        if self.audiences.iter().any(|a| a.is_empty()) {
            return Err(ConfigError::new(
                ConfigErrorKind::NoAudience,
                "an audience is empty",
            ));
        }
        if self.algorithms.is_empty() {
            return Err(ConfigError::new(
                ConfigErrorKind::NoAlgorithms,
                "allow at least one algorithm",
            ));
        }
        if self.max_token_bytes < 64 {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidLimit,
                "max_token_bytes must be at least 64",
            ));
        }
        if self.max_lifetime.is_zero() {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidLimit,
                "max_lifetime must be positive",
            ));
        }
        if self.fetch_timeout.is_zero() {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidLimit,
                "fetch_timeout must be positive",
            ));
        }
        if self.min_refresh_interval.is_zero() || self.min_refresh_interval > self.refresh_interval
        {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidLimit,
                "min_refresh_interval must be positive and at most refresh_interval",
            ));
        }
        Ok(())
    }
}

/// Parses a team domain ([`TeamDomain`]: one spelling for `team.example.com`,
/// `https://Team.example.com/`, …), as a configuration error when it is not one.
#[cfg(feature = "remote")]
pub(crate) fn team_domain(input: &str) -> Result<TeamDomain, ConfigError> {
    TeamDomain::parse(input)
        .map_err(|e| ConfigError::new(ConfigErrorKind::InvalidIssuer, e.reason()).with_source(e))
}

#[cfg(all(test, feature = "remote"))]
mod tests {
    use super::*;

    #[test]
    fn team_domains_are_configuration_errors() {
        assert_eq!(
            team_domain(" https://TEAM.cloudflareaccess.com/ ")
                .expect("valid")
                .as_str(),
            "https://team.cloudflareaccess.com"
        );
        let err = team_domain("https://team.example/path").expect_err("path");
        assert_eq!(err.kind(), ConfigErrorKind::InvalidIssuer);
    }
}
