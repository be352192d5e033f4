//! [`Signer`]: mints application tokens, signing on tokio's blocking pool.
//!
//! An RSA-2048 signature costs about 0.7 ms of CPU. Signing on the async workers would stall
//! every other request on that worker for as long, so signatures run on the blocking pool, at
//! most one per permit (one per CPU by default): a burst of exchanges queues on an async
//! semaphore instead of occupying the runtime.

use std::sync::Arc;

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

/// Mints tokens for one issuer URL, a bounded number of signatures at a time.
#[derive(Debug)]
pub(super) struct Signer {
    issuer_url: String,
    permits: Semaphore,
}

impl Signer {
    pub(super) fn new(issuer_url: String, concurrency: usize) -> Self {
        Self {
            issuer_url,
            permits: Semaphore::new(concurrency.max(1)),
        }
    }

    /// Mints an application token for `client_id` and `app` with the snapshot's signing key:
    /// Cloudflare's service-token claims, `exp - iat` = the session duration.
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
            .permits
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
}
