//! # tollgate-metrics
//!
//! Prometheus metrics and health checks for tollgate, with
//! [`prometheus-client`](https://docs.rs/prometheus-client) (no global registry: every
//! [`Metrics`] is its own).
//!
//! - **Counted on the request path**, through the issuer's
//!   [`Events`](tollgate_core::events::Events): exchanges by application and result, refusals
//!   by application, kind and reason ([`Metrics::sink`]). One read lock, one lookup and one
//!   atomic add per event.
//! - **Read at scrape** from live state: verified-token cache hits and signature checks, key
//!   fetches and their failures, seconds since the last good fetch, the issuer's key ring,
//!   signing times, tokens expiring within 7 days, the snapshot's freshness
//!   ([`Metrics::watch_issuer`], [`Metrics::watch_verifier`]), and counters kept elsewhere
//!   ([`Metrics::register_counter_source`]).
//! - **Store latency and failures** by wrapping the store: [`Metrics::measure_store`].
//! - **Routes**: [`metrics_router`] serves `/metrics`, `/healthz` and `/readyz`
//!   ([`Readiness`]).
//!
//! Labels are bounded: application names (at most [`MAX_APP_LABELS`]), event kinds, reasons
//! ([`RejectionKind`](tollgate_core::RejectionKind)), store operations. Client IDs, token
//! names and addresses never become labels. The README's "Metrics and health" section lists
//! every metric.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use tollgate_core::events::Events;
//! use tollgate_issue::{Issuer, MemoryStore};
//! use tollgate_metrics::{Metrics, Readiness, metrics_router};
//!
//! let metrics = Metrics::new();
//! let store = metrics.measure_store(Arc::new(MemoryStore::new()));
//! let issuer = Issuer::builder("team.example.com")
//!     .store(store.clone())
//!     .events(Events::none().with(metrics.sink()))
//!     .build()
//!     .await?;
//! metrics.watch_issuer(&issuer);
//! let admin = metrics_router(
//!     metrics.clone(),
//!     Readiness::new().with_store(store).with_issuer(issuer.clone()),
//! );
//! // axum::serve(an internal listener, admin) …
//! # let _ = admin;
//! assert!(metrics.encode().contains("tollgate_signing_keys_published 1"));
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod auth;
mod live;
mod routes;
mod store;

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::registry::Registry;
use tollgate_core::events::EventSink;
use tollgate_issue::Issuer;
use tollgate_verify::Verifier;

pub use auth::{AuthCounters, MAX_APP_LABELS};
pub use routes::{
    Check, DEFAULT_STORE_TIMEOUT, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE, Readiness,
    metrics_router,
};
pub use store::{MeasuredStore, STORE_BUCKETS};

use live::{CounterSource, Live};
use store::StoreMetrics;

/// A registry of tollgate's metrics. Cheap to clone; clones share the registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Mutex<Registry>,
    live: Arc<Live>,
    store: StoreMetrics,
    source_names: Mutex<Vec<String>>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Names a collector or source already uses.
const RESERVED: &[&str] = &[
    "tollgate_exchanges",
    "tollgate_refusals",
    "tollgate_verify_cache_hits",
    "tollgate_verify_signature_checks",
    "tollgate_verify_cached_tokens",
    "tollgate_key_fetches",
    "tollgate_key_fetch_failures",
    "tollgate_key_fetch_last_success_age_seconds",
    "tollgate_signing_keys_published",
    "tollgate_signing_key_available",
    "tollgate_signing_key_age_seconds",
    "tollgate_signing_key_rotation_in_seconds",
    "tollgate_signing_seconds",
    "tollgate_service_tokens_expiring_within_7d",
    "tollgate_snapshot_age_seconds",
    "tollgate_store_seconds",
    "tollgate_store_errors",
];

impl Metrics {
    /// An empty registry: the exchange and refusal counters and the store families, no
    /// issuer or verifier watched yet.
    pub fn new() -> Self {
        let live = Arc::new(Live::default());
        let store = StoreMetrics::default();
        let mut registry = Registry::default();
        registry.register_collector(Box::new(live.clone()));
        registry.register(
            "tollgate_store_seconds",
            "Time a store call took, by operation",
            store.seconds.clone(),
        );
        registry.register(
            "tollgate_store_errors",
            "Store calls that failed in the backend (I/O, connection, corrupt data), by \
             operation",
            store.errors.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry: Mutex::new(registry),
                live,
                store,
                source_names: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The event sink counting exchanges and refusals: add it to the issuer's
    /// [`Events`](tollgate_core::events::Events) (`Events::none().with(metrics.sink())`).
    pub fn sink(&self) -> Arc<dyn EventSink> {
        self.inner.live.auth.clone()
    }

    /// The counters behind [`sink`](Self::sink), to read them directly.
    pub fn auth_counters(&self) -> &AuthCounters {
        &self.inner.live.auth
    }

    /// Reads `issuer` at every scrape: its verifiers' caches and key fetches, its key ring,
    /// signing times, tokens expiring within 7 days and snapshot age. The registry holds a
    /// clone of the issuer (keeping its background task alive); a second call replaces the
    /// first.
    pub fn watch_issuer(&self, issuer: &Issuer) {
        *self
            .inner
            .live
            .issuer
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(issuer.clone());
    }

    /// Reads `verifier`'s counters at every scrape, labelled `app="<label>"` (say, a remote
    /// team domain's verifier in front of an application).
    pub fn watch_verifier(&self, label: impl Into<String>, verifier: Verifier) {
        self.inner
            .live
            .verifiers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((label.into(), verifier));
    }

    /// Wraps `store` so every call is timed (`tollgate_store_seconds{op}`) and every backend
    /// failure counted (`tollgate_store_errors_total{op}`).
    pub fn measure_store<S: ?Sized>(&self, store: Arc<S>) -> Arc<MeasuredStore<S>> {
        Arc::new(MeasuredStore::new(store, self.inner.store.clone()))
    }

    /// Registers a counter read from `read` at every scrape, exported as `<name>_total`
    /// (`name` may already end in `_total`). Returns `false`, registering nothing, if the
    /// name is taken or is not a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use tollgate_metrics::Metrics;
    ///
    /// let metrics = Metrics::new();
    /// let dropped = Arc::new(AtomicU64::new(3));
    /// let read = dropped.clone();
    /// assert!(metrics.register_counter_source(
    ///     "tollgate_log_events_dropped",
    ///     "Authentication-log events dropped because the queue was full.",
    ///     Arc::new(move || read.load(Ordering::Relaxed)),
    /// ));
    /// assert!(metrics.encode().contains("tollgate_log_events_dropped_total 3"));
    /// ```
    pub fn register_counter_source(
        &self,
        name: &str,
        help: &str,
        read: Arc<dyn Fn() -> u64 + Send + Sync>,
    ) -> bool {
        let name = name.strip_suffix("_total").unwrap_or(name);
        if !valid_name(name) || RESERVED.contains(&name) {
            return false;
        }
        let mut names = self
            .inner
            .source_names
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if names.iter().any(|n| n == name) {
            return false;
        }
        names.push(name.to_owned());
        self.registry().register_collector(Box::new(CounterSource {
            name: name.to_owned(),
            help: help.to_owned(),
            read,
        }));
        true
    }

    /// Every metric in the Prometheus text format (0.0.4).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        // Writing to a String cannot fail; an encoder error would be a bug in a collector.
        if prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry()).is_err()
        {
            out.push_str("# tollgate: encoding failed\n");
        }
        out
    }

    /// Every metric in the OpenMetrics text format (ends with `# EOF`).
    pub fn encode_openmetrics(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        if prometheus_client::encoding::text::encode(&mut out, &self.registry()).is_err() {
            out.push_str("# tollgate: encoding failed\n# EOF\n");
        }
        out
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner
            .registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}
