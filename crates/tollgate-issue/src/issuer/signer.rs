//! [`Signer`]: mints application tokens, signing on tokio's blocking pool.
//!
//! An RSA-2048 signature costs about 0.7 ms of CPU. Signing on the async workers would stall
//! every other request on that worker for as long, so signatures run on the blocking pool, at
//! most one per permit (one per CPU by default): a burst of exchanges queues on an async
//! semaphore instead of occupying the runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tollgate_core::{AccessClaims, AccessIdentity, Rejection, RejectionKind};

use super::snapshot::Snapshot;
use crate::key_ring::LoadedKey;
use crate::records::ApplicationRecord;

/// Application-token lifetime used for the inner request when an application's session duration
/// is zero (no cookie is set; the token only has to outlive the request).
pub const ZERO_SESSION_TOKEN_LIFETIME: i64 = 60;

/// A service-token exchange that succeeded.
#[derive(Debug)]
pub(crate) struct Minted {
    pub(crate) jwt: String,
    pub(crate) identity: AccessIdentity,
    pub(crate) expires_at: i64,
}

/// Upper bounds (seconds) of the [`SigningStats`] buckets: an RSA-2048 signature takes about
/// 0.7 ms of CPU, more while a burst queues for the signing permits.
pub const SIGNING_BUCKETS: [f64; 12] = [
    0.000_5, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.125, 0.25, 0.5, 1.0,
];

/// How long signatures took, from asking for one (waiting for a signing permit included) to
/// having it: a histogram over [`SIGNING_BUCKETS`], read with
/// [`Issuer::signing_stats`](crate::Issuer::signing_stats). Failed signatures are not counted.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SigningStats {
    /// Signatures made.
    pub count: u64,
    /// Their total duration, in seconds.
    pub sum_seconds: f64,
    /// Cumulative counts: `buckets[i]` signatures took at most `SIGNING_BUCKETS[i]` seconds.
    pub buckets: [u64; SIGNING_BUCKETS.len()],
}

/// Lock-free counters behind [`SigningStats`]: one atomic add per bucket boundary crossed.
#[derive(Debug, Default)]
struct SigningTimes {
    /// Non-cumulative: `per_bucket[i]` counts durations in `(SIGNING_BUCKETS[i-1], SIGNING_BUCKETS[i]]`;
    /// the last slot counts those above every bound.
    per_bucket: [AtomicU64; SIGNING_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl SigningTimes {
    fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let slot = SIGNING_BUCKETS
            .iter()
            .position(|&bound| secs <= bound)
            .unwrap_or(SIGNING_BUCKETS.len());
        self.per_bucket[slot].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn stats(&self) -> SigningStats {
        let mut buckets = [0; SIGNING_BUCKETS.len()];
        let mut total = 0u64;
        for (slot, cumulative) in buckets.iter_mut().enumerate() {
            total += self.per_bucket[slot].load(Ordering::Relaxed);
            *cumulative = total;
        }
        total += self.per_bucket[SIGNING_BUCKETS.len()].load(Ordering::Relaxed);
        SigningStats {
            count: total,
            // Precision: f64 holds nanoseconds exactly up to ~104 days of total signing time.
            #[allow(clippy::cast_precision_loss)]
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            buckets,
        }
    }
}

/// Mints tokens for one issuer URL, a bounded number of signatures at a time.
#[derive(Debug)]
pub(super) struct Signer {
    issuer_url: String,
    permits: Semaphore,
    times: SigningTimes,
}

impl Signer {
    pub(super) fn new(issuer_url: String, concurrency: usize) -> Self {
        Self {
            issuer_url,
            permits: Semaphore::new(concurrency.max(1)),
            times: SigningTimes::default(),
        }
    }

    /// How long signatures took so far.
    pub(super) fn stats(&self) -> SigningStats {
        self.times.stats()
    }

    /// Mints an application token for `client_id` and `app` with the snapshot's signing key:
    /// Cloudflare's service-token claims, `exp - iat` = the session duration, `iat` never
    /// before the application's revocation instant ([`ApplicationRecord::issue_time`]).
    pub(super) async fn mint(
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
        let issued_at = app.issue_time(now);
        let expires_at = issued_at.saturating_add(lifetime);
        let claims = AccessClaims::service_token(
            app.aud.clone(),
            self.issuer_url.clone(),
            client_id,
            issued_at,
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
        let started = Instant::now();
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| failed("signing closed"))?;
        let signed = tokio::task::spawn_blocking(move || key.sign(&claims))
            .await
            .map_err(|_| failed("signing task failed"))?;
        let jwt = signed.map_err(|err| {
            tracing::error!(error = %err, "signing an application token failed");
            failed("signing failed")
        })?;
        self.times.observe(started.elapsed());
        Ok(jwt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_times_are_a_cumulative_histogram() {
        let times = SigningTimes::default();
        times.observe(Duration::from_micros(300));
        times.observe(Duration::from_micros(700));
        times.observe(Duration::from_millis(3));
        times.observe(Duration::from_secs(2));
        let stats = times.stats();
        assert_eq!(stats.count, 4);
        assert_eq!(stats.buckets[0], 1, "<= 0.5 ms");
        assert_eq!(stats.buckets[1], 2, "<= 1 ms");
        assert_eq!(stats.buckets[2], 2, "<= 2 ms");
        assert_eq!(stats.buckets[3], 3, "<= 4 ms");
        assert_eq!(
            stats.buckets[SIGNING_BUCKETS.len() - 1],
            3,
            "2 s is above every bound"
        );
        assert!((stats.sum_seconds - 2.004).abs() < 1e-9);
    }
}
