//! [`Snapshot`]: what the request path reads — tokens, applications and the key ring, loaded —
//! and the checks it answers without touching a store.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use tollgate_core::{AccessIdentity, Rejection, RejectionKind};

use crate::key_ring::KeyRing;
use crate::policy::Subject;
use crate::records::{ApplicationRecord, ServiceTokenRecord};

/// What the request path reads: everything, loaded.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub(super) revisions: (u64, u64, u64),
    pub(crate) tokens: HashMap<String, ServiceTokenRecord>,
    pub(crate) apps: HashMap<String, Arc<ApplicationRecord>>,
    pub(crate) apps_by_aud: HashMap<String, Arc<ApplicationRecord>>,
    pub(crate) ring: KeyRing,
    /// The rotation period the store sets for every instance ([`KeyStore::rotation_period`](crate::KeyStore::rotation_period)).
    pub(crate) rotation_period: Option<u64>,
    /// The certs document, rendered once per ring and period in which it cannot change.
    pub(super) certs: ArcSwapOption<CachedCerts>,
}

#[derive(Debug)]
pub(super) struct CachedCerts {
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

    /// The token with `client_id` if it is valid at `now` (exists, enabled, not expired).
    pub(crate) fn live_token(&self, client_id: &str, now: i64) -> Option<&ServiceTokenRecord> {
        self.tokens
            .get(client_id)
            .filter(|token| token.enabled && !token.is_expired_at(now))
    }

    /// Checks service-token credentials (existence, secret in constant time, enabled, expiry)
    /// and that `app`'s policies admit the token from `ip`. That a token is disabled is said
    /// only to a caller holding its secret.
    pub(crate) fn check_credentials(
        &self,
        app: &ApplicationRecord,
        client_id: &str,
        secret: &str,
        now: i64,
        ip: Option<IpAddr>,
    ) -> Result<(), Rejection> {
        let wrong = || {
            Rejection::new(RejectionKind::InvalidCredentials)
                .with_detail("unknown client ID or wrong secret")
        };
        let Some(token) = self.tokens.get(client_id) else {
            // Burn the same hash work as a real check, so timing does not reveal which client
            // IDs exist.
            let _ = crate::secret::secret_matches(secret, &[0; 32]);
            return Err(wrong());
        };
        if !token.accepts_secret(secret, now) {
            return Err(wrong());
        }
        if !token.enabled {
            return Err(Rejection::new(RejectionKind::ServiceTokenDisabled)
                .with_detail("service token disabled"));
        }
        if token.is_expired_at(now) {
            return Err(
                Rejection::new(RejectionKind::InvalidCredentials).with_detail(EXPIRED_DETAIL)
            );
        }
        app.authorize(&Subject {
            service_token_id: Some(&token.id),
            email: None,
            ip,
        })
    }

    /// Checks a verified identity: it must be for `app`'s current AUD and not minted before the
    /// application's tokens were revoked ([`ApplicationRecord::revokes_token_issued_at`]); a
    /// service token must still exist, be enabled and be unexpired; and `app`'s policies must
    /// admit it from `ip`.
    pub(crate) fn check_identity(
        &self,
        app: &ApplicationRecord,
        identity: &AccessIdentity,
        now: i64,
        ip: Option<IpAddr>,
    ) -> Result<(), Rejection> {
        if !identity.audience().contains(&app.aud) {
            return Err(Rejection::new(RejectionKind::WrongAudience)
                .with_detail("token is not for the application's current AUD"));
        }
        app.check_not_revoked(identity)?;
        let subject = match identity.client_id() {
            Some(client_id) => {
                let Some(token) = self.live_token(client_id, now) else {
                    let detail = match self.tokens.get(client_id) {
                        Some(token) if !token.enabled => "service token disabled",
                        _ => "service token deleted or expired",
                    };
                    return Err(Rejection::new(RejectionKind::Revoked).with_detail(detail));
                };
                Subject {
                    service_token_id: Some(&token.id),
                    email: None,
                    ip,
                }
            }
            None => Subject {
                service_token_id: None,
                email: identity.email(),
                ip,
            },
        };
        app.authorize(&subject)
    }
}

/// The detail of an expired token's refusal: the exchange's operator explanation keeps it.
pub(crate) const EXPIRED_DETAIL: &str = "service token expired";
