//! The issuer's background task and its reloads: poll the stores' revision, reload the
//! snapshot on change, keep the key ring up to date, flush last-use times, warn of expiring
//! tokens.

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
    pub(super) async fn maintain_keys(&self, rotation: Rotation) -> Result<(), ManageError> {
        signing_keys::maintain(
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

    pub(super) async fn reload(&self) -> Result<(), ManageError> {
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
            certs: ArcSwapOption::empty(),
        };
        self.snapshot.store(Arc::new(snapshot));
        self.forget_verifiers_of_deleted_apps();
        if ring_changed {
            self.refresh_verifiers().await;
        }
        self.warn_expiring();
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

    fn warn_expiring(&self) {
        let snapshot = self.snapshot.load();
        let now = self.now();
        let mut warned = self.warned.lock().unwrap_or_else(PoisonError::into_inner);
        for token in snapshot.tokens.values() {
            if !token.expires_within(now, EXPIRY_WARNING_WINDOW) {
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
        if ring_due && let Err(err) = self.maintain_keys(Rotation::Scheduled).await {
            tracing::error!(error = %err, "key ring maintenance failed");
        }
        if ring_due || revisions != snapshot.revisions {
            if let Err(err) = self.reload().await {
                tracing::warn!(error = %err, "could not reload from the store; serving the last snapshot");
            }
        } else {
            self.freshness.mark();
            if last_warn.elapsed() >= Duration::from_secs(60) {
                self.warn_expiring();
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
