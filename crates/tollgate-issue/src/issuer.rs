//! [`Issuer`]: the runtime that ties the stores, the clock and the team domain together.
//!
//! An issuer keeps an in-memory **snapshot** of the service tokens, applications and key ring,
//! so the request path never waits on a store: checking a secret is a hash-map lookup and a
//! SHA-256, checking that a cookie's token is still valid (not deleted, not expired) is a lookup.
//! A background task, tied to the issuer's lifetime (it stops when the last clone is dropped):
//!
//! - polls the stores' [`revision`](crate::store::Revision) every 250 ms (configurable) and
//!   reloads on change, so a token created, rotated or revoked by another process sharing the
//!   store is honoured here within one poll interval plus a reload (< 1 s); changes made through
//!   this issuer's own [`tokens`](Issuer::tokens) / [`apps`](Issuer::apps) managers are picked up
//!   at once;
//! - keeps the key ring up to date ([`RotationPolicy`]): publishes the next key ahead of time,
//!   switches to it, drops retired keys;
//! - writes the batched `last_seen_at` times every 10 s;
//! - warns about service tokens expiring within 7 days (a `tracing` warning plus an
//!   [`ExpiryWarning`] on [`subscribe_expiry`](Issuer::subscribe_expiry)), once per token and
//!   expiry.
//!
//! Signing happens on tokio's blocking pool, at most one signature per CPU at a time; a burst of
//! exchanges queues on an async semaphore instead of occupying the runtime's workers.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use tollgate_issue::{AppSettings, Issuer, MemoryStore};
//!
//! let issuer = Issuer::builder("team.example.com").store(Arc::new(MemoryStore::new())).build().await?;
//! assert_eq!(issuer.issuer_url(), "https://team.example.com");
//! issuer.apps().create("api", AppSettings::new()).await?;
//! let (token, secret) = issuer.tokens().create("bot", Default::default()).await?;
//! let layer = issuer.exchange_layer("api")?; // wrap a router with it
//! # let _ = (layer, token, secret);
//! # Ok(()) }
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::{Semaphore, broadcast};
use tollgate_core::{
    AccessClaims, AccessIdentity, Rejection, RejectionKind, SharedClock, SystemClock,
};
use tollgate_verify::{FetchError, KeySet, KeySource, Verifier, VerifyConfig};

use crate::apps::Applications;
use crate::error::{ManageError, ManageErrorKind};
use crate::exchange::ExchangeLayer;
use crate::keys::{self, KeyInfo, KeyRing, LoadedKey, RotationPolicy};
use crate::store::{
    AppStore, ApplicationRecord, KeyStore, ServiceAuthPolicy, ServiceTokenRecord, SigningKeyRecord,
    TokenStore,
};
use crate::tokens::{
    EXPIRY_WARNING_WINDOW, ExpiryWarning, LastSeen, ServiceTokens, expires_within,
};

/// How often the stores' revision is polled by default.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How often batched `last_seen_at` times are written by default.
pub const DEFAULT_LAST_SEEN_FLUSH: Duration = Duration::from_secs(10);
/// Application-token lifetime used for the inner request when an application's session duration
/// is zero (no cookie is set; the token only has to outlive the request).
pub const ZERO_SESSION_TOKEN_LIFETIME: i64 = 60;

/// What the request path reads: everything, loaded.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    revisions: (u64, u64, u64),
    pub(crate) tokens: HashMap<String, ServiceTokenRecord>,
    pub(crate) apps: HashMap<String, Arc<ApplicationRecord>>,
    apps_by_aud: HashMap<String, Arc<ApplicationRecord>>,
    pub(crate) ring: KeyRing,
    /// The certs document, rendered once per ring and period in which it cannot change.
    certs: arc_swap::ArcSwapOption<CachedCerts>,
}

#[derive(Debug)]
struct CachedCerts {
    from: i64,
    until: i64,
    json: Arc<str>,
}

impl Snapshot {
    /// The certs document at `now`, rendered at most once per period in which the published
    /// set and the signing key stay the same.
    pub(crate) fn certs_json(&self, now: i64) -> Arc<str> {
        if let Some(cached) = self.certs.load().as_ref()
            && (cached.from..cached.until).contains(&now)
        {
            return cached.json.clone();
        }
        let json: Arc<str> = serde_json::to_string(&self.ring.certs(now))
            .unwrap_or_default()
            .into();
        self.certs.store(Some(Arc::new(CachedCerts {
            from: now,
            until: self.ring.next_change_after(now),
            json: json.clone(),
        })));
        json
    }

    /// The token with `client_id` if it is valid at `now` (exists, not expired).
    pub(crate) fn live_token(&self, client_id: &str, now: i64) -> Option<&ServiceTokenRecord> {
        self.tokens
            .get(client_id)
            .filter(|token| !token.is_expired_at(now))
    }
}

/// Builds an [`Issuer`]. See [`Issuer::builder`].
#[must_use]
pub struct IssuerBuilder {
    team_domain: String,
    tokens: Option<Arc<dyn TokenStore>>,
    keys: Option<Arc<dyn KeyStore>>,
    apps: Option<Arc<dyn AppStore>>,
    clock: SharedClock,
    rotation: RotationPolicy,
    poll_interval: Duration,
    last_seen_flush: Duration,
    signing_concurrency: usize,
}

impl fmt::Debug for IssuerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerBuilder")
            .field("team_domain", &self.team_domain)
            .field("rotation", &self.rotation)
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

impl IssuerBuilder {
    /// Uses one store for tokens, keys and applications (e.g. [`MemoryStore`](crate::MemoryStore)
    /// or a SQL store).
    pub fn store<S>(self, store: Arc<S>) -> Self
    where
        S: TokenStore + KeyStore + AppStore,
    {
        self.stores(store.clone(), store.clone(), store)
    }

    /// Uses separate stores.
    pub fn stores(
        mut self,
        tokens: Arc<dyn TokenStore>,
        keys: Arc<dyn KeyStore>,
        apps: Arc<dyn AppStore>,
    ) -> Self {
        self.tokens = Some(tokens);
        self.keys = Some(keys);
        self.apps = Some(apps);
        self
    }

    /// Where "now" comes from (default: the system clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Key rotation schedule (default: every 42 days, previous key kept 7 days).
    pub fn rotation(mut self, policy: RotationPolicy) -> Self {
        self.rotation = policy;
        self
    }

    /// How often the stores are polled for changes (default 250 ms, at least 10 ms).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// How often `last_seen_at` times are written (default 10 s).
    pub fn last_seen_flush(mut self, interval: Duration) -> Self {
        self.last_seen_flush = interval;
        self
    }

    /// How many RSA signatures may run at once (default: the number of CPUs).
    pub fn signing_concurrency(mut self, permits: usize) -> Self {
        self.signing_concurrency = permits.max(1);
        self
    }

    /// Loads the stores (creating the first signing key if the ring is empty) and starts the
    /// background task. Must run inside a tokio runtime.
    pub async fn build(self) -> Result<Issuer, ManageError> {
        let issuer_url = normalize_issuer(&self.team_domain)?;
        let (Some(tokens), Some(keys), Some(apps)) = (self.tokens, self.keys, self.apps) else {
            return Err(ManageError::invalid(
                "an issuer needs stores: call .store(..) or .stores(..)",
            ));
        };
        let inner = Arc::new(Inner {
            issuer_url,
            token_store: tokens,
            key_store: keys,
            app_store: apps,
            clock: self.clock,
            rotation: self.rotation,
            poll_interval: self.poll_interval,
            last_seen_flush: self.last_seen_flush,
            snapshot: Arc::new(ArcSwap::from_pointee(Snapshot::default())),
            last_seen: LastSeen::default(),
            signing: Semaphore::new(self.signing_concurrency),
            expiry: broadcast::channel(64).0,
            warned: Mutex::new(HashSet::new()),
            verifiers: Mutex::new(HashMap::new()),
            reload_lock: tokio::sync::Mutex::new(()),
        });
        inner.maintain_keys(keys::Rotation::Scheduled).await?;
        inner.reload().await?;
        let issuer = Issuer { inner };
        tokio::spawn(watch(
            Arc::downgrade(&issuer.inner),
            issuer.inner.poll_interval,
        ));
        Ok(issuer)
    }
}

/// The in-process Access issuer. Cheap to clone; the background task stops when the last clone
/// is dropped. See the [module docs](self).
#[derive(Clone)]
pub struct Issuer {
    inner: Arc<Inner>,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snapshot = self.inner.snapshot.load();
        f.debug_struct("Issuer")
            .field("issuer", &self.inner.issuer_url)
            .field("tokens", &snapshot.tokens.len())
            .field("apps", &snapshot.apps.len())
            .field("key_generation", &snapshot.ring.generation)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    issuer_url: String,
    token_store: Arc<dyn TokenStore>,
    key_store: Arc<dyn KeyStore>,
    app_store: Arc<dyn AppStore>,
    pub(crate) clock: SharedClock,
    rotation: RotationPolicy,
    poll_interval: Duration,
    last_seen_flush: Duration,
    pub(crate) snapshot: Arc<ArcSwap<Snapshot>>,
    last_seen: LastSeen,
    signing: Semaphore,
    expiry: broadcast::Sender<ExpiryWarning>,
    warned: Mutex<HashSet<(String, i64)>>,
    verifiers: Mutex<HashMap<String, Verifier>>,
    reload_lock: tokio::sync::Mutex<()>,
}

impl Issuer {
    /// Starts building an issuer for `team_domain`: a bare name such as `team.example.com`
    /// becomes `https://team.example.com` (the `iss` of every token); a URL is kept as given
    /// (origin only, e.g. `http://127.0.0.1:8080` for development).
    pub fn builder(team_domain: impl Into<String>) -> IssuerBuilder {
        IssuerBuilder {
            team_domain: team_domain.into(),
            tokens: None,
            keys: None,
            apps: None,
            clock: Arc::new(SystemClock),
            rotation: RotationPolicy::default(),
            poll_interval: DEFAULT_POLL_INTERVAL,
            last_seen_flush: DEFAULT_LAST_SEEN_FLUSH,
            signing_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }

    /// The `iss` of every token this issuer mints, e.g. `https://team.example.com`.
    pub fn issuer_url(&self) -> &str {
        &self.inner.issuer_url
    }

    /// The service-token manager, wired to this issuer (its changes apply at once).
    pub fn tokens(&self) -> ServiceTokens {
        ServiceTokens::new(self.inner.token_store.clone(), self.inner.clock.clone())
            .with_issuer(Arc::downgrade(&self.inner))
    }

    /// The application manager, wired to this issuer.
    pub fn apps(&self) -> Applications {
        Applications::new(self.inner.app_store.clone(), self.inner.clock.clone())
            .with_issuer(Arc::downgrade(&self.inner))
    }

    /// Rotates the signing key now (emergency rotation): a new key is published at once and
    /// signs after [`RotationPolicy::rotate_now_lead`] (1 s), so every instance sharing the
    /// store has loaded it before any token it signed arrives; the previous key stays
    /// accepted for the policy's overlap. A remote verifier that cached the old certs learns
    /// the new key on its first unknown-`kid` refetch.
    pub async fn rotate_keys_now(&self) -> Result<(), ManageError> {
        self.inner.maintain_keys(keys::Rotation::Now).await?;
        self.inner.reload().await
    }

    /// Rotates the signing key now and revokes every previous key at once (a compromised
    /// key): the new key signs immediately and tokens signed by the old keys stop verifying
    /// here as soon as this returns. See
    /// [`SigningKeys::rotate_now_revoking`](crate::keys::SigningKeys::rotate_now_revoking) for
    /// the trade-off (cookies re-exchange; other instances may refuse new tokens for < 1 s).
    pub async fn rotate_keys_now_revoking(&self) -> Result<(), ManageError> {
        self.inner
            .maintain_keys(keys::Rotation::NowRevoking)
            .await?;
        self.inner.reload().await
    }

    /// Reloads the snapshot from the stores now (the background task does it on every change).
    pub async fn reload(&self) -> Result<(), ManageError> {
        self.inner.reload().await
    }

    /// Writes pending `last_seen_at` times now (the background task does it every 10 s).
    pub async fn flush_last_seen(&self) {
        self.inner
            .last_seen
            .flush(self.inner.token_store.as_ref())
            .await;
    }

    /// Warnings for tokens about to expire (within 7 days), each sent once per token and
    /// expiry date. They are also logged at `warn` level.
    pub fn subscribe_expiry(&self) -> broadcast::Receiver<ExpiryWarning> {
        self.inner.expiry.subscribe()
    }

    /// A [`KeySource`] serving this issuer's published keys with no HTTP (`is_local`).
    pub fn key_source(&self) -> IssuerKeySource {
        IssuerKeySource {
            snapshot: self.inner.snapshot.clone(),
            clock: self.inner.clock.clone(),
        }
    }

    /// A [`Verifier`] for tokens of the application with AUD tag `aud`, with keys from this
    /// issuer in-process. Verifiers are cached per AUD.
    pub fn verifier(&self, aud: &str) -> Result<Verifier, ManageError> {
        self.inner.verifier(aud, self.key_source())
    }

    /// The certs document, as `GET /cdn-cgi/access/certs` serves it.
    pub fn certs_json(&self) -> String {
        let now = self.inner.clock.unix_now();
        self.inner.snapshot.load().certs_json(now).to_string()
    }

    /// The ring's keys (public facts only), oldest activation first.
    pub fn signing_keys(&self) -> Vec<KeyInfo> {
        self.inner
            .snapshot
            .load()
            .ring
            .records()
            .map(KeyInfo::from)
            .collect()
    }

    /// The application named `name`, from the snapshot.
    pub fn app(&self, name: &str) -> Option<ApplicationRecord> {
        self.inner
            .snapshot
            .load()
            .apps
            .get(name)
            .map(|a| ApplicationRecord::clone(a))
    }

    /// An [`ExchangeLayer`] protecting the application named `app` (which must exist). It
    /// follows later changes to the application's settings and policy, and its AUD: if the
    /// application is deleted and recreated under the same name, tokens for the old AUD are
    /// refused and tokens for the new one accepted.
    pub fn exchange_layer(&self, app: &str) -> Result<ExchangeLayer, ManageError> {
        let record = self
            .inner
            .snapshot
            .load()
            .apps
            .get(app)
            .cloned()
            .ok_or_else(|| ManageError::not_found(&format!("application {app}")))?;
        let verifier = self.verifier(&record.aud)?;
        Ok(ExchangeLayer::new(
            self.clone(),
            record.name.clone(),
            record.aud.clone(),
            verifier,
        ))
    }

    /// `GET /cdn-cgi/access/certs` (the published keys, Cloudflare's format) and
    /// `GET /cdn-cgi/access/get-identity` (the caller's identity, from its cookie or
    /// `cf-access-token`). Merge it into your router outside the [`ExchangeLayer`].
    pub fn routes(&self) -> axum::Router {
        crate::routes::router(self.clone())
    }

    pub(crate) fn shared(&self) -> &Arc<Inner> {
        &self.inner
    }
}

/// A service-token exchange that succeeded.
#[derive(Debug)]
pub(crate) struct Minted {
    pub(crate) jwt: String,
    pub(crate) identity: AccessIdentity,
    pub(crate) expires_at: i64,
}

impl Inner {
    pub(crate) fn now(&self) -> i64 {
        self.clock.unix_now()
    }

    pub(crate) fn verifier(
        &self,
        aud: &str,
        source: IssuerKeySource,
    ) -> Result<Verifier, ManageError> {
        let mut verifiers = self
            .verifiers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(verifier) = verifiers.get(aud) {
            return Ok(verifier.clone());
        }
        let config = VerifyConfig::new(self.issuer_url.clone())
            .audience(aud)
            .clock(self.clock.clone())
            .min_refresh_interval(Duration::from_secs(1));
        let verifier = Verifier::new(config, source)
            .map_err(|e| ManageError::new(ManageErrorKind::InvalidArgument, e.to_string()))?;
        verifiers.insert(aud.to_owned(), verifier.clone());
        Ok(verifier)
    }

    /// Checks service-token credentials against the snapshot (existence, secret in constant
    /// time, expiry, policy) and records the use.
    pub(crate) fn check_credentials(
        &self,
        snapshot: &Snapshot,
        app: &ApplicationRecord,
        client_id: &str,
        secret: &str,
        now: i64,
    ) -> Result<(), Rejection> {
        let Some(token) = snapshot.tokens.get(client_id) else {
            // Burn the same hash work as a real check, so timing does not reveal which client
            // IDs exist.
            let _ = crate::secret::secret_matches(secret, &[0; 32]);
            return Err(Rejection::new(RejectionKind::InvalidCredentials)
                .with_detail("unknown client ID or wrong secret"));
        };
        if !token.accepts_secret(secret, now) {
            return Err(Rejection::new(RejectionKind::InvalidCredentials)
                .with_detail("unknown client ID or wrong secret"));
        }
        if token.is_expired_at(now) {
            return Err(Rejection::new(RejectionKind::InvalidCredentials)
                .with_detail("service token expired"));
        }
        check_policy(app, client_id)?;
        self.last_seen.touch(client_id, now);
        Ok(())
    }

    /// Checks a verified identity against the snapshot: it must be for `app`'s current AUD; a
    /// service token must still exist, be unexpired and be allowed by the application's
    /// policy; an application restricted to a list of service tokens refuses user identities.
    pub(crate) fn check_identity(
        &self,
        snapshot: &Snapshot,
        app: &ApplicationRecord,
        identity: &AccessIdentity,
        now: i64,
    ) -> Result<(), Rejection> {
        if !identity.audience().contains(&app.aud) {
            return Err(Rejection::new(RejectionKind::WrongAudience)
                .with_detail("token is not for the application's current AUD"));
        }
        match identity.client_id() {
            Some(client_id) => {
                if snapshot.live_token(client_id, now).is_none() {
                    return Err(Rejection::new(RejectionKind::Revoked)
                        .with_detail("service token deleted or expired"));
                }
                check_policy(app, client_id)?;
                self.last_seen.touch(client_id, now);
            }
            None => {
                if let ServiceAuthPolicy::Tokens(_) = app.policy {
                    return Err(Rejection::new(RejectionKind::Forbidden)
                        .with_detail("the application allows listed service tokens only"));
                }
            }
        }
        Ok(())
    }

    /// Mints an application token for `client_id` and `app`, signing off the async workers.
    pub(crate) async fn mint(
        &self,
        snapshot: &Snapshot,
        app: &ApplicationRecord,
        client_id: &str,
        now: i64,
    ) -> Result<Minted, Rejection> {
        let key: Arc<LoadedKey> = snapshot.ring.signing_key(now).cloned().ok_or_else(|| {
            Rejection::new(RejectionKind::KeysUnavailable).with_detail("no signing key")
        })?;
        let lifetime = match i64::try_from(app.session_duration) {
            Ok(0) => ZERO_SESSION_TOKEN_LIFETIME,
            Ok(secs) => secs,
            Err(_) => i64::MAX,
        };
        let expires_at = now.saturating_add(lifetime);
        let claims = AccessClaims::service_token(
            app.aud.clone(),
            self.issuer_url.clone(),
            client_id,
            now,
            expires_at,
        );
        let jwt = self.sign(key, claims.clone()).await?;
        let identity = AccessIdentity::from_claims(claims)?;
        Ok(Minted {
            jwt,
            identity,
            expires_at,
        })
    }

    async fn sign(&self, key: Arc<LoadedKey>, claims: AccessClaims) -> Result<String, Rejection> {
        let failed = |detail| Rejection::new(RejectionKind::Misconfigured).with_detail(detail);
        let _permit = self
            .signing
            .acquire()
            .await
            .map_err(|_| failed("signing closed"))?;
        let signed = tokio::task::spawn_blocking(move || key.sign(&claims))
            .await
            .map_err(|_| failed("signing task failed"))?;
        signed.map_err(|err| {
            tracing::error!(error = %err, "signing an application token failed");
            failed("signing failed")
        })
    }

    async fn maintain_keys(&self, rotation: keys::Rotation) -> Result<(), ManageError> {
        keys::maintain(
            self.key_store.as_ref(),
            self.now(),
            &self.rotation,
            rotation,
        )
        .await?;
        Ok(())
    }

    async fn revisions(&self) -> Result<(u64, u64, u64), ManageError> {
        Ok((
            self.token_store.revision().await?,
            self.key_store.revision().await?,
            self.app_store.revision().await?,
        ))
    }

    /// Reloads, logging a failure (the next poll retries).
    pub(crate) async fn reload_logged(&self) {
        if let Err(err) = self.reload().await {
            tracing::warn!(error = %err, "could not reload from the store; serving the last snapshot");
        }
    }

    async fn reload(&self) -> Result<(), ManageError> {
        let _guard = self.reload_lock.lock().await;
        let revisions = self.revisions().await?;
        let tokens = self.token_store.list_tokens().await?;
        let apps = self.app_store.list_apps().await?;
        let (generation, records) = self.key_store.load_ring().await?;
        let previous = self.snapshot.load_full();
        let ring_changed = !(generation == previous.ring.generation && generation != 0);
        let ring = if ring_changed {
            KeyRing::load(generation, records, &previous.ring)?
        } else {
            previous.ring.clone()
        };
        let apps: HashMap<String, Arc<ApplicationRecord>> = apps
            .into_iter()
            .map(|a| (a.name.clone(), Arc::new(a)))
            .collect();
        let apps_by_aud = apps.values().map(|a| (a.aud.clone(), a.clone())).collect();
        self.last_seen
            .track(tokens.iter().map(|t| t.client_id.as_str()));
        let snapshot = Snapshot {
            revisions,
            tokens: tokens
                .into_iter()
                .map(|t| (t.client_id.clone(), t))
                .collect(),
            apps,
            apps_by_aud,
            ring,
            certs: arc_swap::ArcSwapOption::empty(),
        };
        self.snapshot.store(Arc::new(snapshot));
        self.forget_verifiers_of_deleted_apps();
        if ring_changed {
            self.refresh_verifiers().await;
        }
        self.warn_expiring();
        Ok(())
    }

    /// Drops cached verifiers whose AUD no application has any more (a deleted or recreated
    /// application), so the cache stays as large as the set of applications. Clones already
    /// handed out keep working; a later request for that AUD builds a fresh one.
    fn forget_verifiers_of_deleted_apps(&self) {
        let snapshot = self.snapshot.load();
        self.verifiers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|aud, _| snapshot.apps_by_aud.contains_key(aud));
    }

    /// Makes every cached verifier re-read the published keys now (an in-process read), so a
    /// key that left the ring (revoked) stops verifying at once, cached tokens included.
    async fn refresh_verifiers(&self) {
        let verifiers: Vec<Verifier> = self
            .verifiers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for verifier in verifiers {
            if let Err(err) = verifier.refresh().await {
                tracing::debug!(error = %err, "verifier key refresh after a ring change failed");
            }
        }
    }

    fn warn_expiring(&self) {
        let snapshot = self.snapshot.load();
        let now = self.now();
        let mut warned = self.warned.lock().unwrap_or_else(PoisonError::into_inner);
        for token in snapshot.tokens.values() {
            if !expires_within(token, now, EXPIRY_WARNING_WINDOW) {
                continue;
            }
            let Some(expires_at) = token.expires_at else {
                continue;
            };
            if warned.insert((token.client_id.clone(), expires_at)) {
                tracing::warn!(
                    client_id = %token.client_id,
                    name = %token.name,
                    expires_at,
                    "service token expires within 7 days; refresh it"
                );
                let _ = self.expiry.send(ExpiryWarning {
                    client_id: token.client_id.clone(),
                    name: token.name.clone(),
                    expires_at,
                });
            }
        }
    }

    pub(crate) fn app_by_aud(&self, aud: &str) -> Option<Arc<ApplicationRecord>> {
        self.snapshot.load().apps_by_aud.get(aud).cloned()
    }

    /// One pass of the background task.
    async fn tick(&self, last_flush: &mut Instant, last_warn: &mut Instant) {
        let revisions = match self.revisions().await {
            Ok(r) => r,
            Err(err) => {
                tracing::warn!(error = %err, "could not poll the store; serving the last snapshot");
                return;
            }
        };
        let snapshot = self.snapshot.load_full();
        let now = self.now();
        let ring_due = ring_needs_work(&snapshot.ring, now, &self.rotation);
        if ring_due && let Err(err) = self.maintain_keys(keys::Rotation::Scheduled).await {
            tracing::error!(error = %err, "key ring maintenance failed");
        }
        if ring_due || revisions != snapshot.revisions {
            if let Err(err) = self.reload().await {
                tracing::warn!(error = %err, "could not reload from the store; serving the last snapshot");
            }
        } else if last_warn.elapsed() >= Duration::from_secs(60) {
            self.warn_expiring();
            *last_warn = Instant::now();
        }
        if last_flush.elapsed() >= self.last_seen_flush {
            self.last_seen.flush(self.token_store.as_ref()).await;
            *last_flush = Instant::now();
        }
    }
}

fn ring_needs_work(ring: &KeyRing, now: i64, policy: &RotationPolicy) -> bool {
    let records: Vec<SigningKeyRecord> = ring.records().cloned().collect();
    keys::needs_work(&records, now, policy)
}

fn check_policy(app: &ApplicationRecord, client_id: &str) -> Result<(), Rejection> {
    match &app.policy {
        ServiceAuthPolicy::AnyValidServiceToken => Ok(()),
        ServiceAuthPolicy::Tokens(allowed) if allowed.iter().any(|id| id == client_id) => Ok(()),
        ServiceAuthPolicy::Tokens(_) => Err(Rejection::new(RejectionKind::Forbidden)
            .with_detail("service token not allowed by the application's policy")),
    }
}

async fn watch(inner: Weak<Inner>, interval: Duration) {
    let mut last_flush = Instant::now();
    let mut last_warn = Instant::now();
    loop {
        tokio::time::sleep(interval).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        inner.tick(&mut last_flush, &mut last_warn).await;
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let pending = self.last_seen.drain();
        if !pending.is_empty() {
            tracing::debug!(
                count = pending.len(),
                "issuer dropped with unflushed last-seen times; call flush_last_seen() before shutdown to keep them"
            );
        }
    }
}

/// A [`KeySource`] over an [`Issuer`]'s published keys, in-process. See [`Issuer::key_source`].
#[derive(Clone)]
pub struct IssuerKeySource {
    snapshot: Arc<ArcSwap<Snapshot>>,
    clock: SharedClock,
}

impl fmt::Debug for IssuerKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerKeySource").finish_non_exhaustive()
    }
}

impl KeySource for IssuerKeySource {
    fn fetch(
        &self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<KeySet, FetchError>> + Send + '_>> {
        let snapshot = self.snapshot.load();
        let now = self.clock.unix_now();
        let jwks: Vec<serde_json::Value> = snapshot
            .ring
            .published(now)
            .map(|k| k.jwk_value.clone())
            .collect();
        // Re-read every second: retired keys stop being accepted promptly.
        let set = KeySet::from_jwks(jwks).with_max_age(Duration::from_secs(1));
        Box::pin(std::future::ready(Ok(set)))
    }

    fn is_local(&self) -> bool {
        true
    }
}

/// `team.example.com` → `https://team.example.com`; URLs keep their scheme; no trailing slash.
fn normalize_issuer(team_domain: &str) -> Result<String, ManageError> {
    let trimmed = team_domain.trim().trim_end_matches('/');
    let url = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("https://{trimmed}")
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host) if valid_authority(host) => Ok(url),
        _ => Err(ManageError::invalid(
            "team domain must be a host name (team.example.com) or an origin (https://team.example.com)",
        )),
    }
}

/// `host`, `host:port` or `[v6]:port`, nothing else.
fn valid_authority(authority: &str) -> bool {
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, _)) if !host.ends_with(']') && host.contains(':') => (authority, None),
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !v6.is_empty()
            && v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    };
    port_ok && host_ok
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn the_background_task_ends_with_the_issuer() {
        let issuer = Issuer::builder("team.example.com")
            .store(Arc::new(crate::MemoryStore::new()))
            .poll_interval(Duration::from_millis(10))
            .build()
            .await
            .unwrap();
        let weak = Arc::downgrade(&issuer.inner);
        drop(issuer);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            weak.upgrade().is_none(),
            "the watch task must not keep the issuer alive"
        );
    }

    #[tokio::test]
    async fn verifiers_of_deleted_apps_are_forgotten() {
        let issuer = Issuer::builder("team.example.com")
            .store(Arc::new(crate::MemoryStore::new()))
            .build()
            .await
            .unwrap();
        let cached = |issuer: &Issuer| issuer.inner.verifiers.lock().unwrap().len();
        let app = issuer
            .apps()
            .create("api", crate::AppSettings::new())
            .await
            .unwrap();
        let _layer = issuer.exchange_layer("api").unwrap();
        issuer.verifier(&app.aud).unwrap();
        assert_eq!(cached(&issuer), 1, "one verifier per AUD");
        issuer.apps().delete("api").await.unwrap();
        assert_eq!(cached(&issuer), 0, "the deleted app's verifier is dropped");
        let again = issuer
            .apps()
            .create("api", crate::AppSettings::new())
            .await
            .unwrap();
        assert_ne!(again.aud, app.aud);
        let _layer = issuer.exchange_layer("api").unwrap();
        issuer.verifier(&again.aud).unwrap();
        assert_eq!(cached(&issuer), 1);
    }

    #[test]
    fn issuer_normalisation() {
        assert_eq!(
            normalize_issuer("team.example.com").unwrap(),
            "https://team.example.com"
        );
        assert_eq!(
            normalize_issuer("http://127.0.0.1:3000/").unwrap(),
            "http://127.0.0.1:3000"
        );
        assert_eq!(
            normalize_issuer("http://[::1]:8080").unwrap(),
            "http://[::1]:8080"
        );
        for bad in [
            "",
            "https://",
            "team.example.com/path",
            "ftp://x",
            "a b",
            "h:",
            "u@h",
            "h:99999999",
        ] {
            assert!(normalize_issuer(bad).is_err(), "{bad}");
        }
    }
}
