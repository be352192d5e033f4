//! The issuer's background task and its reloads: poll the stores' revision, reload the
//! snapshot on change, keep the key ring up to date, flush last-use times, raise notices
//! (expiring and expired tokens, a new signing key).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use tollgate_verify::Verifier;

use super::Inner;
use super::snapshot::Snapshot;
use crate::error::ManageError;
use crate::key_ring::KeyRing;
use crate::records::{ApplicationRecord, SigningKeyRecord};
use crate::reload::Reload;
use tollgate_core::notice::{Notice, TokenNotice};

use crate::service_tokens::{EXPIRY_WARNING_WINDOW, ExpiryWarning};
use crate::signing_keys::{self, Rotation, RotationPolicy};

/// When the snapshot was last confirmed current (a poll that found no change, or a reload that
/// succeeded), on a monotonic clock: one atomic store per poll.
#[derive(Debug)]
pub(super) struct Freshness {
    base: Instant,
    /// Milliseconds after `base`, plus one; 0: never.
    last_ok: AtomicU64,
}

impl Default for Freshness {
    fn default() -> Self {
        Self {
            base: Instant::now(),
            last_ok: AtomicU64::new(0),
        }
    }
}

impl Freshness {
    fn mark(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.last_ok.store(ms + 1, Ordering::Relaxed);
    }

    pub(super) fn since_last(&self) -> Option<Duration> {
        let stored = self.last_ok.load(Ordering::Relaxed).checked_sub(1)?;
        Some(
            self.base
                .elapsed()
                .saturating_sub(Duration::from_millis(stored)),
        )
    }
}

impl Inner {
    /// The rotation policy in force: the issuer's own, with the period the store sets for
    /// every instance when it sets one.
    pub(super) fn rotation_now(&self) -> RotationPolicy {
        match self.snapshot.load().rotation_period {
            Some(secs) => self.rotation.every(Duration::from_secs(secs)),
            None => self.rotation,
        }
    }

    pub(super) async fn maintain_keys(&self, rotation: Rotation) -> Result<(), ManageError> {
        signing_keys::maintain(
            self.key_store.as_ref(),
            self.now(),
            &self.rotation_now(),
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

    pub(super) async fn reload(&self) -> Result<(), ManageError> {
        let _guard = self.reload_lock.lock().await;
        let revisions = self.revisions().await?;
        let tokens = self.token_store.list_tokens().await?;
        let apps = self.app_store.list_apps().await?;
        let (generation, records) = self.key_store.load_ring().await?;
        let rotation_period = self.key_store.rotation_period().await?;
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
            rotation_period,
            certs: ArcSwapOption::empty(),
        };
        self.snapshot.store(Arc::new(snapshot));
        self.forget_verifiers_of_deleted_apps();
        if ring_changed {
            self.refresh_verifiers().await;
        }
        self.raise_notices();
        self.freshness.mark();
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

    /// Raises the notices the snapshot calls for now — tokens expiring within 7 days, tokens
    /// expired within the last 7 days, a new signing key — each once per occurrence in this
    /// process (a shared outbox dedupes across processes and restarts).
    fn raise_notices(&self) {
        for notice in self.current_notices() {
            self.raise(notice);
        }
        self.notice_rotation();
    }

    /// The token notices in force: expiring within the window, or expired within the last one.
    pub(super) fn current_notices(&self) -> Vec<Notice> {
        let snapshot = self.snapshot.load();
        let now = self.now();
        let window = i64::try_from(EXPIRY_WARNING_WINDOW.as_secs()).unwrap_or(i64::MAX);
        let mut notices: Vec<Notice> = snapshot
            .tokens
            .values()
            .filter_map(|token| {
                let expires_at = token.expires_at?;
                let about = || TokenNotice {
                    token_id: token.id.clone(),
                    client_id: token.client_id.clone(),
                    name: token.name.clone(),
                    expires_at,
                };
                if token.expires_within(now, EXPIRY_WARNING_WINDOW) {
                    Some(Notice::TokenExpiring(about()))
                } else if expires_at <= now && now.saturating_sub(expires_at) <= window {
                    Some(Notice::TokenExpired(about()))
                } else {
                    None
                }
            })
            .collect();
        notices.sort_by_key(Notice::dedupe_key);
        notices
    }

    /// Raises [`Notice::KeyRotated`] when the signing key differs from the one seen last (not
    /// for the first key this process sees).
    fn notice_rotation(&self) {
        let now = self.now();
        let snapshot = self.snapshot.load();
        let Some(kid) = snapshot
            .ring
            .signing_key(now)
            .map(|key| key.kid().to_owned())
        else {
            return;
        };
        let previous = {
            let mut seen = self
                .signing_kid
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if seen.as_deref() == Some(kid.as_str()) {
                return;
            }
            seen.replace(kid.clone())
        };
        if let Some(previous_kid) = previous {
            self.raise(Notice::KeyRotated {
                kid,
                previous_kid,
                at: now,
            });
        }
    }

    /// Logs and broadcasts `notice` unless this process raised it already.
    fn raise(&self, notice: Notice) {
        let fresh = self
            .noticed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(notice.dedupe_key());
        if !fresh {
            return;
        }
        match &notice {
            Notice::TokenExpiring(token) => {
                tracing::warn!(
                    client_id = %token.client_id,
                    name = %token.name,
                    expires_at = token.expires_at,
                    "service token expires within 7 days; refresh it"
                );
                let _ = self.expiry.send(ExpiryWarning {
                    client_id: token.client_id.clone(),
                    name: token.name.clone(),
                    expires_at: token.expires_at,
                });
            }
            Notice::TokenExpired(token) => tracing::warn!(
                client_id = %token.client_id,
                name = %token.name,
                expires_at = token.expires_at,
                "service token expired; refresh it or delete it"
            ),
            Notice::KeyRotated {
                kid, previous_kid, ..
            } => tracing::info!(%kid, %previous_kid, "a new signing key signs now"),
            other => tracing::warn!(notice = %other, "notice"),
        }
        let _ = self.notices.send(notice);
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
        let ring_due = ring_needs_work(&snapshot.ring, now, &self.rotation_now());
        if ring_due && let Err(err) = self.maintain_keys(Rotation::Scheduled).await {
            tracing::error!(error = %err, "key ring maintenance failed");
        }
        if ring_due || revisions != snapshot.revisions {
            if let Err(err) = self.reload().await {
                tracing::warn!(error = %err, "could not reload from the store; serving the last snapshot");
            }
        } else {
            self.freshness.mark();
            // A key switch is a matter of time, not of a store change: look every poll (a
            // snapshot read and a lock). Token expiry windows are checked once a minute.
            self.notice_rotation();
            if last_warn.elapsed() >= Duration::from_secs(60) {
                self.raise_notices();
                *last_warn = Instant::now();
            }
        }
        if last_flush.elapsed() >= self.last_seen_flush {
            self.last_seen.flush(self.token_store.as_ref()).await;
            *last_flush = Instant::now();
        }
    }
}

impl Reload for Inner {
    fn reload(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.reload_logged())
    }
}

fn ring_needs_work(ring: &KeyRing, now: i64, policy: &RotationPolicy) -> bool {
    let records: Vec<SigningKeyRecord> = ring.records().cloned().collect();
    signing_keys::needs_work(&records, now, policy)
}

/// The background task: one [`Inner::tick`] per `interval`, until the issuer is dropped.
pub(super) async fn run(inner: Weak<Inner>, interval: Duration) {
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
