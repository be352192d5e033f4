//! [`IssuerBuilder`]: stores, clock, rotation schedule and intervals of an [`Issuer`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::broadcast;
use tollgate_core::events::Events;
use tollgate_core::{SharedClock, TeamDomain};

use super::last_seen::LastSeen;
use super::signer::Signer;
use super::snapshot::Snapshot;
use super::{Inner, Issuer, watch};
use crate::error::ManageError;
use crate::signing_keys::{Rotation, RotationPolicy};
use crate::store::{AppStore, KeyStore, TokenStore};

/// Builds an [`Issuer`]. See [`Issuer::builder`].
#[must_use]
pub struct IssuerBuilder {
    pub(super) team_domain: String,
    pub(super) tokens: Option<Arc<dyn TokenStore>>,
    pub(super) keys: Option<Arc<dyn KeyStore>>,
    pub(super) apps: Option<Arc<dyn AppStore>>,
    pub(super) clock: SharedClock,
    pub(super) rotation: RotationPolicy,
    pub(super) poll_interval: Duration,
    pub(super) last_seen_flush: Duration,
    pub(super) signing_concurrency: usize,
    pub(super) events: Events,
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

    /// Where the issuer's layers report authentication events (every exchange attempt, every
    /// refused application token): an authentication log, metrics (default: nowhere).
    pub fn events(mut self, events: Events) -> Self {
        self.events = events;
        self
    }

    /// Loads the stores (creating the first signing key if the ring is empty) and starts the
    /// background task. Must run inside a tokio runtime. Fails on a team domain that
    /// [`TeamDomain`] refuses and on a store error.
    pub async fn build(self) -> Result<Issuer, ManageError> {
        let team_domain = TeamDomain::parse(&self.team_domain)
            .map_err(|e| ManageError::invalid(e.to_string()))?;
        let (Some(tokens), Some(keys), Some(apps)) = (self.tokens, self.keys, self.apps) else {
            return Err(ManageError::invalid(
                "an issuer needs stores: call .store(..) or .stores(..)",
            ));
        };
        let inner = Arc::new(Inner {
            signer: Signer::new(team_domain.as_str().to_owned(), self.signing_concurrency),
            team_domain,
            token_store: tokens,
            key_store: keys,
            app_store: apps,
            clock: self.clock,
            rotation: self.rotation,
            poll_interval: self.poll_interval,
            last_seen_flush: self.last_seen_flush,
            snapshot: Arc::new(ArcSwap::from_pointee(Snapshot::default())),
            last_seen: LastSeen::default(),
            expiry: broadcast::channel(64).0,
            notices: broadcast::channel(256).0,
            noticed: Mutex::new(HashSet::new()),
            signing_kid: Mutex::new(None),
            verifiers: Mutex::new(HashMap::new()),
            reload_lock: tokio::sync::Mutex::new(()),
            events: self.events,
            freshness: watch::Freshness::default(),
        });
        inner.maintain_keys(Rotation::Scheduled).await?;
        inner.reload().await?;
        tokio::spawn(watch::run(Arc::downgrade(&inner), inner.poll_interval));
        let issuer = Issuer { inner };
        Ok(issuer)
    }
}
