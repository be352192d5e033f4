//! [`ExchangeLayer`]: configuration of the exchange middleware.

use std::fmt;
use std::sync::Arc;

use tollgate_verify::Verifier;
use tower_layer::Layer;

use super::Exchange;
use crate::Issuer;

/// Runs Cloudflare Access's service-token flow in front of a service, for one application.
/// Built by [`Issuer::exchange_layer`]; cheap to clone. See the [module docs](super).
#[derive(Clone)]
#[must_use]
pub struct ExchangeLayer {
    pub(super) shared: Arc<Shared>,
}

pub(super) struct Shared {
    pub(super) issuer: Issuer,
    pub(super) app_name: String,
    pub(super) verifier: Verifier,
}

impl ExchangeLayer {
    pub(crate) fn new(issuer: Issuer, app_name: String, verifier: Verifier) -> Self {
        Self {
            shared: Arc::new(Shared {
                issuer,
                app_name,
                verifier,
            }),
        }
    }

    /// The name of the protected application.
    pub fn app_name(&self) -> &str {
        &self.shared.app_name
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
        }
    }
}
