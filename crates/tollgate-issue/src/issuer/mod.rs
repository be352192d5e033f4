//! [`Issuer`]: the runtime that ties the stores, the clock and the team domain together.
//!
//! The parts, a file each: [`IssuerBuilder`] (`builder.rs`); the [`Snapshot`] the request path
//! reads, with the credential and identity checks (`snapshot.rs`); the [`Signer`]
//! (`signer.rs`); the background task and reloads (`watch.rs`) with the batched last-use times
//! (`last_seen.rs`); and [`IssuerKeySource`] (`key_source.rs`).

mod builder;
mod key_source;
mod last_seen;
mod signer;
mod snapshot;
mod watch;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::broadcast;
use tollgate_core::events::Events;
use tollgate_core::notice::Notice;
use tollgate_core::{AccessIdentity, Rejection, SharedClock, SystemClock, TeamDomain};
use tollgate_verify::{Verifier, VerifyConfig, VerifyStats};

pub use self::builder::IssuerBuilder;
pub use self::key_source::IssuerKeySource;
use self::last_seen::LastSeen;
pub(crate) use self::signer::Minted;
use self::signer::Signer;
pub use self::signer::{SIGNING_BUCKETS, SigningStats, ZERO_SESSION_TOKEN_LIFETIME};
pub(crate) use self::snapshot::{EXPIRED_DETAIL, Snapshot};
use self::watch::Freshness;
use crate::applications::Applications;
use crate::error::{ManageError, ManageErrorKind};
use crate::records::ApplicationRecord;
use crate::reload::{Reload, ReloadHandle};
use crate::service_tokens::{ExpiryWarning, ServiceTokens};
use crate::signing_keys::{KeyInfo, KeyRingStatus, Rotation, RotationPolicy};
use crate::store::{AppStore, KeyStore, TokenStore};

/// How often the stores' revision is polled by default.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How often batched `last_seen_at` times are written by default.
pub const DEFAULT_LAST_SEEN_FLUSH: Duration = Duration::from_secs(10);

/// The in-process Access issuer. Cheap to clone; the background task stops when the last clone
/// is dropped.
///
/// An issuer keeps an in-memory **snapshot** of the service tokens, applications and key ring,
/// so the request path never waits on a store: checking a secret is a hash-map lookup and a
/// SHA-256, checking that a cookie's token is still valid (not deleted, not expired) is a lookup.
/// A background task, tied to the issuer's lifetime (it stops when the last clone is dropped):
///
/// - polls the stores' [`revision`](crate::store::Revision) every 250 ms (configurable) and
///   reloads on change, so a token created, rotated or revoked by another process sharing the
///   store is honoured here within one poll interval plus a reload (< 1 s); changes made through
///   this issuer's own [`tokens`](Issuer::tokens) / [`apps`](Issuer::apps) managers are picked up
///   at once;
/// - keeps the key ring up to date ([`RotationPolicy`]): publishes the next key ahead of time,
///   switches to it, drops retired keys;
/// - writes the batched `last_seen_at` times every 10 s;
/// - raises [`Notice`]s ([`subscribe_notices`](Issuer::subscribe_notices)): service tokens
///   expiring within 7 days (also an [`ExpiryWarning`] on
///   [`subscribe_expiry`](Issuer::subscribe_expiry)) or expired, once per token and expiry;
///   a new signing key, once per key. Each is also a `tracing` line.
///
/// Signing happens on tokio's blocking pool, at most one signature per CPU at a time; a burst of
/// exchanges queues on an async semaphore instead of occupying the runtime's workers.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use tollgate_issue::{AppSettings, Issuer, MemoryStore};
///
/// let issuer = Issuer::builder("team.example.com").store(Arc::new(MemoryStore::new())).build().await?;
/// assert_eq!(issuer.issuer_url(), "https://team.example.com");
/// issuer.apps().create("api", AppSettings::new()).await?;
/// let (token, secret) = issuer.tokens().create("bot", Default::default()).await?;
/// let layer = issuer.exchange_layer("api")?; // wrap a router with it
/// # let _ = (layer, token, secret);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Issuer {
    inner: Arc<Inner>,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snapshot = self.inner.snapshot.load();
        f.debug_struct("Issuer")
            .field("issuer", &self.inner.team_domain.as_str())
            .field("tokens", &snapshot.tokens.len())
            .field("apps", &snapshot.apps.len())
            .field("key_generation", &snapshot.ring.generation)
            .finish_non_exhaustive()
    }
}

/// The runtime behind every clone of an [`Issuer`]. Only this module's files reach into it;
/// managers hold a [`ReloadHandle`], the layers and routes go through `Issuer`.
struct Inner {
    team_domain: TeamDomain,
    token_store: Arc<dyn TokenStore>,
    key_store: Arc<dyn KeyStore>,
    app_store: Arc<dyn AppStore>,
    clock: SharedClock,
    rotation: RotationPolicy,
    poll_interval: Duration,
    last_seen_flush: Duration,
    snapshot: Arc<ArcSwap<Snapshot>>,
    last_seen: LastSeen,
    signer: Signer,
    expiry: broadcast::Sender<ExpiryWarning>,
    notices: broadcast::Sender<Notice>,
    /// Dedupe keys of the notices this process raised.
    noticed: Mutex<HashSet<String>>,
    /// The signing key's `kid` at the last look, for [`Notice::KeyRotated`].
    signing_kid: Mutex<Option<String>>,
    verifiers: Mutex<HashMap<String, Verifier>>,
    reload_lock: tokio::sync::Mutex<()>,
    events: Events,
    freshness: Freshness,
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
            events: Events::none(),
        }
    }

    /// The `iss` of every token this issuer mints, e.g. `https://team.example.com`: its team
    /// domain's canonical spelling.
    pub fn issuer_url(&self) -> &str {
        self.inner.team_domain.as_str()
    }

    /// Where this issuer's layers report authentication events ([`IssuerBuilder::events`]).
    pub fn events(&self) -> &Events {
        &self.inner.events
    }

    /// The team domain, parsed.
    pub fn team_domain(&self) -> &TeamDomain {
        &self.inner.team_domain
    }

    /// The clock the issuer reads "now" from ([`IssuerBuilder::clock`]).
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// The signing-key rotation policy in force: [`IssuerBuilder::rotation`]'s, with the
    /// period [`set_rotation_period`](Self::set_rotation_period) shared through the store
    /// when one is set.
    pub fn rotation_policy(&self) -> RotationPolicy {
        self.inner.rotation_now()
    }

    /// Sets the rotation period of every issuer sharing the store (the admin API's
    /// `key_rotation_interval_days`), or with `None` lets each follow its own
    /// [`IssuerBuilder::rotation`]. At least one minute. It governs the next rotation: a
    /// key already scheduled keeps its time; when a shorter period makes the next key due at
    /// once, it is published now and signs after the policy's publish-ahead time (a day by
    /// default), as any scheduled key.
    pub async fn set_rotation_period(&self, period: Option<Duration>) -> Result<(), ManageError> {
        if period.is_some_and(|p| p < Duration::from_secs(60)) {
            return Err(ManageError::invalid(
                "the rotation period must be at least one minute",
            ));
        }
        self.inner
            .key_store
            .set_rotation_period(period.map(|p| p.as_secs()))
            .await?;
        self.inner.reload().await?;
        self.inner.maintain_keys(Rotation::Scheduled).await?;
        self.inner.reload().await
    }

    /// The service-token manager, wired to this issuer (its changes apply at once).
    pub fn tokens(&self) -> ServiceTokens {
        ServiceTokens::new(self.inner.token_store.clone(), self.inner.clock.clone())
            .with_reload(self.reload_handle())
    }

    /// The application manager, wired to this issuer.
    pub fn apps(&self) -> Applications {
        Applications::new(self.inner.app_store.clone(), self.inner.clock.clone())
            .with_tokens(self.inner.token_store.clone())
            .with_reload(self.reload_handle())
    }

    /// The reusable-policy manager, wired to this issuer.
    pub fn policies(&self) -> crate::Policies {
        crate::Policies::new(
            self.inner.app_store.clone(),
            self.inner.token_store.clone(),
            self.inner.clock.clone(),
        )
        .with_reload(self.reload_handle())
    }

    /// Rotates the signing key now (emergency rotation): a new key is published at once and
    /// signs after [`RotationPolicy::rotate_now_lead`] (1 s), so every instance sharing the
    /// store has loaded it before any token it signed arrives; the previous key stays
    /// accepted for the policy's overlap. A remote verifier that cached the old certs learns
    /// the new key on its first unknown-`kid` refetch.
    pub async fn rotate_keys_now(&self) -> Result<(), ManageError> {
        self.inner.maintain_keys(Rotation::Now).await?;
        self.inner.reload().await
    }

    /// Rotates the signing key now and revokes every previous key at once (a compromised
    /// key): the new key signs immediately and tokens signed by the old keys stop verifying
    /// here as soon as this returns. See
    /// [`SigningKeys::rotate_now_revoking`](crate::SigningKeys::rotate_now_revoking) for
    /// the trade-off (cookies re-exchange; other instances may refuse new tokens for < 1 s).
    pub async fn rotate_keys_now_revoking(&self) -> Result<(), ManageError> {
        self.inner.maintain_keys(Rotation::NowRevoking).await?;
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

    /// Every [`Notice`] the background task raises from now on: a token expiring within 7
    /// days, a token expired within the last 7 days (each once per token and expiry), a new
    /// signing key (once per key). Each is also logged (`warn`, `info` for a rotation). A
    /// receiver that falls more than 256 notices behind loses the oldest
    /// ([`broadcast`](tokio::sync::broadcast)).
    ///
    /// Notices raised before the subscription (the first reload, in
    /// [`build`](IssuerBuilder::build)) are not replayed: read
    /// [`current_notices`](Self::current_notices) after subscribing.
    pub fn subscribe_notices(&self) -> broadcast::Receiver<Notice> {
        self.inner.notices.subscribe()
    }

    /// The token notices in force now (expiring within 7 days, expired within the last 7),
    /// whether or not they were raised already: what a notifier that attaches late enqueues
    /// (its outbox dedupes them).
    pub fn current_notices(&self) -> Vec<Notice> {
        self.inner.current_notices()
    }

    /// A [`KeySource`](tollgate_verify::KeySource) serving this issuer's published keys with no HTTP (`is_local`).
    pub fn key_source(&self) -> IssuerKeySource {
        IssuerKeySource {
            snapshot: self.inner.snapshot.clone(),
            clock: self.inner.clock.clone(),
        }
    }

    /// A [`Verifier`] for tokens of the application with AUD tag `aud`, with keys from this
    /// issuer in-process. Verifiers are cached per AUD. Besides the token itself it checks the
    /// application's revocation ([`Applications::revoke_tokens`]) in the issuer's snapshot, on
    /// every verification: a token minted before it is refused as
    /// [`Revoked`](tollgate_core::RejectionKind::Revoked).
    ///
    /// It does not evaluate the application's Access policies, nor whether a service token is
    /// still live: it has no request to take a client address from. The
    /// [`ExchangeLayer`](crate::ExchangeLayer) does both on every request (cookie and
    /// `cf-access-token` included), so put it, not a bare verifier, in front of what the
    /// policies guard.
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

    /// Every application in the snapshot (in no particular order), with the application
    /// store's revision it was loaded at. The revision moves whenever an application may have
    /// changed, so whatever is built from the list (a router by domain) knows when to rebuild.
    pub fn applications(&self) -> (u64, Vec<ApplicationRecord>) {
        let snapshot = self.inner.snapshot.load();
        let apps = snapshot
            .apps
            .values()
            .map(|a| ApplicationRecord::clone(a))
            .collect();
        (snapshot.revisions.2, apps)
    }

    /// The application store's revision the snapshot was loaded at (see
    /// [`applications`](Issuer::applications)): one atomic load.
    pub fn applications_revision(&self) -> u64 {
        self.inner.snapshot.load().revisions.2
    }

    /// How often the stores' revision is polled ([`IssuerBuilder::poll_interval`]).
    pub fn poll_interval(&self) -> Duration {
        self.inner.poll_interval
    }

    /// How long ago the snapshot was last confirmed current: the stores answered a poll with
    /// no change, or a reload succeeded. `None` if never (it is set by [`build`](IssuerBuilder::build)).
    /// Grows past a few [`poll_interval`](Self::poll_interval)s while the store is unreachable,
    /// the issuer serving its last snapshot meanwhile.
    pub fn since_last_sync(&self) -> Option<Duration> {
        self.inner.freshness.since_last()
    }

    /// How long signatures took so far (a histogram over [`SIGNING_BUCKETS`]).
    pub fn signing_stats(&self) -> SigningStats {
        self.inner.signer.stats()
    }

    /// The counters of each cached in-process verifier (one per application that verified a
    /// token), by application name, sorted. A deleted application's verifier leaves the list.
    pub fn verifier_stats(&self) -> Vec<(String, VerifyStats)> {
        let snapshot = self.inner.snapshot.load();
        let mut stats: Vec<(String, VerifyStats)> = self
            .inner
            .verifiers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(|(aud, verifier)| {
                let app = snapshot.apps_by_aud.get(aud)?;
                Some((app.name.clone(), verifier.stats()))
            })
            .collect();
        stats.sort_by(|a, b| a.0.cmp(&b.0));
        stats
    }

    /// How many service tokens in the snapshot expire within `within` from now (and have not
    /// expired yet).
    pub fn tokens_expiring_within(&self, within: Duration) -> usize {
        let now = self.now();
        self.inner
            .snapshot
            .load()
            .tokens
            .values()
            .filter(|token| token.expires_within(now, within))
            .count()
    }

    /// The key ring now: keys published, since when the current key signs, when the next one
    /// takes over.
    pub fn key_ring_status(&self) -> KeyRingStatus {
        let now = self.now();
        let snapshot = self.inner.snapshot.load();
        let ring = &snapshot.ring;
        let signing = ring.signing_key(now).map(|k| &k.record);
        let successor = ring
            .records()
            .filter(|r| r.activates_at > now)
            .map(|r| r.activates_at)
            .min();
        let every = i64::try_from(self.inner.rotation_now().rotation_period().as_secs())
            .unwrap_or(i64::MAX);
        let next_rotation_at = successor.or_else(|| {
            signing.map(|r| r.retires_at.unwrap_or(r.activates_at.saturating_add(every)))
        });
        KeyRingStatus {
            now,
            published: ring.published(now).count(),
            signing_since: signing.map(|r| r.activates_at),
            next_rotation_at,
        }
    }

    fn reload_handle(&self) -> ReloadHandle {
        let target: Weak<dyn Reload> = Arc::downgrade(&self.inner) as Weak<dyn Reload>;
        ReloadHandle::new(target)
    }

    /// The snapshot the request path reads.
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.snapshot.load_full()
    }

    /// "Now", in unix seconds, from the issuer's clock.
    pub(crate) fn now(&self) -> i64 {
        self.inner.clock.unix_now()
    }

    /// "Now", in unix milliseconds, from the issuer's clock (for events).
    pub(crate) fn now_ms(&self) -> i64 {
        tollgate_core::clock::unix_millis(self.inner.clock.now())
    }

    /// The application with AUD tag `aud`, from the snapshot.
    pub(crate) fn app_by_aud(&self, aud: &str) -> Option<Arc<ApplicationRecord>> {
        self.inner.snapshot.load().apps_by_aud.get(aud).cloned()
    }

    /// [`Snapshot::check_credentials`], recording the use when they pass.
    pub(crate) fn check_credentials(
        &self,
        snapshot: &Snapshot,
        app: &ApplicationRecord,
        client_id: &str,
        secret: &str,
        now: i64,
        ip: Option<std::net::IpAddr>,
    ) -> Result<(), Rejection> {
        snapshot.check_credentials(app, client_id, secret, now, ip)?;
        self.inner.last_seen.touch(client_id, now);
        Ok(())
    }

    /// [`Snapshot::check_identity`] against the current snapshot, recording a service token's
    /// use when it passes.
    pub(crate) fn check_identity(
        &self,
        app: &ApplicationRecord,
        identity: &AccessIdentity,
        ip: Option<std::net::IpAddr>,
    ) -> Result<(), Rejection> {
        let now = self.now();
        self.inner
            .snapshot
            .load()
            .check_identity(app, identity, now, ip)?;
        if let Some(client_id) = identity.client_id() {
            self.inner.last_seen.touch(client_id, now);
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
        self.inner.signer.mint(snapshot, app, client_id, now).await
    }
}

impl Inner {
    fn now(&self) -> i64 {
        self.clock.unix_now()
    }

    fn verifier(&self, aud: &str, source: IssuerKeySource) -> Result<Verifier, ManageError> {
        let mut verifiers = self
            .verifiers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(verifier) = verifiers.get(aud) {
            return Ok(verifier.clone());
        }
        let snapshot = self.snapshot.clone();
        let tag = aud.to_owned();
        let not_revoked = move |identity: &AccessIdentity| {
            snapshot
                .load()
                .apps_by_aud
                .get(&tag)
                .map_or(Ok(()), |app| app.check_not_revoked(identity))
        };
        let config = VerifyConfig::for_team_domain(&self.team_domain)
            .audience(aud)
            .clock(self.clock.clone())
            .min_refresh_interval(Duration::from_secs(1))
            .identity_check(not_revoked);
        let verifier = Verifier::new(config, source)
            .map_err(|e| ManageError::new(ManageErrorKind::InvalidArgument, e.to_string()))?;
        verifiers.insert(aud.to_owned(), verifier.clone());
        Ok(verifier)
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
}
