//! [`ExchangeLayer`]: configuration of the exchange middleware.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tollgate_core::{DefaultOnRejection, OnRejection, Rejection, RejectionKind};
use tollgate_verify::Verifier;
use tower_layer::Layer;

use super::Exchange;
use super::throttle::{Failures, Throttle};
use crate::Issuer;
use crate::error::ManageError;
use crate::records::ApplicationRecord;

/// Runs Cloudflare Access's service-token flow in front of a service, for one application.
/// Built by [`Issuer::exchange_layer`]; cheap to clone. See the [module docs](super).
#[derive(Clone)]
#[must_use]
pub struct ExchangeLayer {
    pub(super) shared: Arc<Shared>,
    on_rejection: Arc<dyn OnRejection>,
    failures: Arc<Failures>,
}

pub(super) struct Shared {
    pub(super) issuer: Issuer,
    pub(super) app_name: String,
    /// The verifier for the application's AUD as last seen. An application deleted and
    /// recreated under the same name gets a new AUD: the verifier follows it per request.
    verifier: ArcSwap<AudVerifier>,
    /// `Secure` (and `SameSite=None`) by default: the issuer URL is https.
    pub(super) secure_by_default: bool,
}

/// A verifier and the AUD it checks.
pub(super) struct AudVerifier {
    aud: String,
    pub(super) verifier: Verifier,
}

impl Shared {
    /// The verifier for `app`'s current AUD: an atomic load and a comparison, except on the
    /// first request after the AUD changed (then the issuer's per-AUD cache).
    pub(super) fn verifier_for(
        &self,
        app: &ApplicationRecord,
    ) -> Result<Arc<AudVerifier>, Rejection> {
        let current = self.verifier.load_full();
        if current.aud == app.aud {
            return Ok(current);
        }
        let verifier = self.issuer.verifier(&app.aud).map_err(|_| {
            Rejection::new(RejectionKind::Misconfigured)
                .with_detail("no verifier for the application")
        })?;
        let fresh = Arc::new(AudVerifier {
            aud: app.aud.clone(),
            verifier,
        });
        self.verifier.store(fresh.clone());
        Ok(fresh)
    }
}

impl ExchangeLayer {
    fn new(issuer: Issuer, app_name: String, aud: String, verifier: Verifier) -> Self {
        let secure_by_default = issuer.team_domain().is_https();
        Self {
            shared: Arc::new(Shared {
                issuer,
                app_name,
                verifier: ArcSwap::from_pointee(AudVerifier { aud, verifier }),
                secure_by_default,
            }),
            on_rejection: Arc::new(DefaultOnRejection),
            failures: Arc::new(Failures::new(Throttle::default())),
        }
    }

    /// Replaces the rejection response (by default the rejection's own JSON answer), as
    /// `VerifyLayer::with_rejection_handler` does. Refusals are logged before the handler runs.
    pub fn with_rejection_handler(mut self, handler: impl OnRejection) -> Self {
        self.on_rejection = Arc::new(handler);
        self
    }

    /// Throttles failed exchanges by `throttle` instead of the default (30 failures a minute
    /// per address and client ID, 300 per address); [`Throttle::disabled`] turns it off. The
    /// counters start afresh.
    pub fn with_throttle(mut self, throttle: Throttle) -> Self {
        self.failures = Arc::new(Failures::new(throttle));
        self
    }

    /// The name of the protected application.
    pub fn app_name(&self) -> &str {
        &self.shared.app_name
    }
}

// Built from the issuer, defined here: the exchange depends on the issuer, never the reverse.
impl Issuer {
    /// An [`ExchangeLayer`] protecting the application named `app` (which must exist). It
    /// follows later changes to the application's settings and policy, and its AUD: if the
    /// application is deleted and recreated under the same name, tokens for the old AUD are
    /// refused and tokens for the new one accepted.
    pub fn exchange_layer(&self, app: &str) -> Result<ExchangeLayer, ManageError> {
        let record = self
            .snapshot()
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
}

impl fmt::Debug for ExchangeLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExchangeLayer")
            .field("app", &self.shared.app_name)
            .field("issuer", &self.shared.issuer.issuer_url())
            .finish()
    }
}

impl<S> Layer<S> for ExchangeLayer {
    type Service = Exchange<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Exchange {
            inner,
            shared: self.shared.clone(),
            on_rejection: self.on_rejection.clone(),
            failures: self.failures.clone(),
        }
    }
}
