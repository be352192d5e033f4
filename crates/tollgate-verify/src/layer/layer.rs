//! [`VerifyLayer`] and its options.

use std::fmt;
use std::sync::Arc;

use tollgate_core::events::Events;
use tollgate_core::request::TokenLocation;
use tollgate_core::{DefaultOnRejection, OnRejection};
use tower_layer::Layer;

use super::Verify;
use crate::authorize::{Authorize, DynAuthorize};
use crate::error::{ConfigError, ConfigErrorKind};
use crate::verifier::Verifier;

/// Whether a request without any token may pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Mode {
    /// No token: 401 (the default).
    #[default]
    Required,
    /// No token: the request passes without an identity. A token that is present must still
    /// be valid (401 otherwise) and authorized (403 otherwise).
    Optional,
}

#[derive(Clone)]
pub(super) struct Shared {
    pub(super) verifier: Verifier,
    pub(super) mode: Mode,
    pub(super) locations: Vec<TokenLocation>,
    /// The locations not read, whose tokens are stripped before the inner service.
    pub(super) ignored: Vec<TokenLocation>,
    pub(super) authorizers: Vec<Arc<DynAuthorize>>,
    pub(super) on_rejection: Arc<dyn OnRejection>,
    pub(super) events: Events,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyLayer")
            .field("verifier", &self.verifier)
            .field("mode", &self.mode)
            .field("locations", &self.locations)
            .field("authorizers", &self.authorizers.len())
            .finish_non_exhaustive()
    }
}

/// A [`Layer`] that verifies the Access token of every request. See the
/// [module docs](crate::layer).
#[derive(Clone, Debug)]
#[must_use]
pub struct VerifyLayer {
    pub(super) shared: Arc<Shared>,
}

impl VerifyLayer {
    /// A layer verifying with `verifier`: token required, looked for in
    /// [`TokenLocation::DEFAULT_ORDER`], every verified identity allowed.
    pub fn new(verifier: Verifier) -> Self {
        Self {
            shared: Arc::new(Shared {
                verifier,
                mode: Mode::Required,
                locations: TokenLocation::DEFAULT_ORDER.to_vec(),
                ignored: Vec::new(),
                authorizers: Vec::new(),
                on_rejection: Arc::new(DefaultOnRejection),
                events: Events::none(),
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Shared)) -> Self {
        f(Arc::make_mut(&mut self.shared));
        self
    }

    /// Sets the mode.
    pub fn with_mode(self, mode: Mode) -> Self {
        self.edit(|s| s.mode = mode)
    }

    /// [`Mode::Optional`]: requests without a token pass without an identity.
    pub fn optional(self) -> Self {
        self.with_mode(Mode::Optional)
    }

    /// Where to look for the token. Every token found in these locations must be the same one
    /// (otherwise 401 `ambiguous_credentials`); tokens in the other locations are not read and
    /// are stripped before the inner service. Fails on an empty list or repeats.
    pub fn with_token_order(
        self,
        order: impl IntoIterator<Item = TokenLocation>,
    ) -> Result<Self, ConfigError> {
        let order: Vec<TokenLocation> = order.into_iter().collect();
        let distinct = order
            .iter()
            .enumerate()
            .all(|(i, loc)| !order[..i].contains(loc));
        if order.is_empty() || !distinct {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidLayer,
                "token order must list each location at most once, and at least one",
            ));
        }
        let ignored = TokenLocation::DEFAULT_ORDER
            .into_iter()
            .filter(|location| !order.contains(location))
            .collect();
        Ok(self.edit(|s| {
            s.locations = order;
            s.ignored = ignored;
        }))
    }

    /// Adds an authorization predicate; every one must agree, or the answer is 403.
    pub fn with_authorization(self, predicate: impl Authorize) -> Self {
        let predicate = Arc::new(DynAuthorize(Box::new(predicate)));
        self.edit(|s| s.authorizers.push(predicate))
    }

    /// Replaces the rejection response.
    pub fn with_rejection_handler(self, handler: impl OnRejection) -> Self {
        let handler: Arc<dyn OnRejection> = Arc::new(handler);
        self.edit(|s| s.on_rejection = handler)
    }

    /// Reports every refused request to `events` (an authentication log, metrics): one
    /// [`EventKind::Token`](tollgate_core::events::EventKind::Token) event with the reason, the
    /// token's location, the refused identity (a 403) and the request id. The client's address
    /// is not recorded: behind a proxy the socket peer is the proxy.
    pub fn with_events(self, events: Events) -> Self {
        self.edit(|s| s.events = events)
    }

    /// The verifier.
    pub fn verifier(&self) -> &Verifier {
        &self.shared.verifier
    }
}

impl<S> Layer<S> for VerifyLayer {
    type Service = Verify<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Verify::new(inner, self.shared.clone())
    }
}
