//! [`MeasuredStore`]: a store decorator that times every call and counts backend failures.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use tollgate_issue::{
    AppStore, ApplicationRecord, KeyStore, PolicyRecord, Revision, ServiceTokenRecord,
    SigningKeyRecord, StoreError, StoreFuture, TokenStore,
};

/// Bucket bounds (seconds) of `tollgate_store_seconds`.
pub const STORE_BUCKETS: [f64; 13] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The `op` label: one store method.
pub(crate) type OpLabel = [(&'static str, &'static str); 1];

fn new_histogram() -> Histogram {
    Histogram::new(STORE_BUCKETS)
}

/// The families a [`MeasuredStore`] writes to, shared by every store measured through one
/// [`Metrics`](crate::Metrics).
#[derive(Debug, Clone)]
pub(crate) struct StoreMetrics {
    pub(crate) seconds: Family<OpLabel, Histogram, fn() -> Histogram>,
    pub(crate) errors: Family<OpLabel, Counter>,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        Self {
            seconds: Family::new_with_constructor(new_histogram),
            errors: Family::default(),
        }
    }
}

/// A store that times every call into `tollgate_store_seconds{op}` and counts backend
/// failures in `tollgate_store_errors_total{op}` (`op` is the method: `revision`,
/// `get_token`, `swap_ring`, …). Answers that are not failures — a conflict, a record not
/// found — are not counted as errors.
///
/// Made by [`Metrics::measure_store`](crate::Metrics::measure_store); it implements every
/// store trait its inner store implements, so it goes wherever the store went.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use tollgate_issue::{Issuer, MemoryStore};
/// use tollgate_metrics::Metrics;
///
/// let metrics = Metrics::new();
/// let store = metrics.measure_store(Arc::new(MemoryStore::new()));
/// let issuer = Issuer::builder("team.example.com").store(store).build().await?;
/// assert!(metrics.encode().contains("tollgate_store_seconds_count{op=\"load_ring\"}"));
/// # let _ = issuer; Ok(()) }
/// ```
#[derive(Debug)]
pub struct MeasuredStore<S: ?Sized> {
    metrics: StoreMetrics,
    inner: Arc<S>,
}

impl<S: ?Sized> MeasuredStore<S> {
    pub(crate) fn new(inner: Arc<S>, metrics: StoreMetrics) -> Self {
        Self { metrics, inner }
    }

    /// The store measured.
    pub fn get_ref(&self) -> &Arc<S> {
        &self.inner
    }

    /// Times `call` as `op`, counting a backend failure.
    fn measure<'a, T: Send + 'a>(
        &'a self,
        op: &'static str,
        call: StoreFuture<'a, T>,
    ) -> StoreFuture<'a, T> {
        let started = Instant::now();
        let metrics = &self.metrics;
        Box::pin(async move {
            let result = call.await;
            let labels = [("op", op)];
            metrics
                .seconds
                .get_or_create(&labels)
                .observe(started.elapsed().as_secs_f64());
            if let Err(StoreError::Backend(_)) = &result {
                metrics.errors.get_or_create(&labels).inc();
            }
            result
        })
    }
}

impl<S: Revision + ?Sized> Revision for MeasuredStore<S> {
    fn revision(&self) -> StoreFuture<'_, u64> {
        self.measure("revision", self.inner.revision())
    }
}

impl<S: TokenStore + ?Sized> TokenStore for MeasuredStore<S> {
    fn insert_token<'a>(&'a self, token: &'a ServiceTokenRecord) -> StoreFuture<'a, ()> {
        self.measure("insert_token", self.inner.insert_token(token))
    }

    fn insert_token_if_name_free<'a>(
        &'a self,
        token: &'a ServiceTokenRecord,
    ) -> StoreFuture<'a, bool> {
        self.measure(
            "insert_token_if_name_free",
            self.inner.insert_token_if_name_free(token),
        )
    }

    fn get_token<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, Option<ServiceTokenRecord>> {
        self.measure("get_token", self.inner.get_token(client_id))
    }

    fn get_token_by_id<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<ServiceTokenRecord>> {
        self.measure("get_token_by_id", self.inner.get_token_by_id(id))
    }

    fn list_tokens(&self) -> StoreFuture<'_, Vec<ServiceTokenRecord>> {
        self.measure("list_tokens", self.inner.list_tokens())
    }

    fn update_token<'a>(
        &'a self,
        expected: &'a ServiceTokenRecord,
        token: &'a ServiceTokenRecord,
    ) -> StoreFuture<'a, bool> {
        self.measure("update_token", self.inner.update_token(expected, token))
    }

    fn list_tokens_page<'a>(
        &'a self,
        name: Option<&'a str>,
        offset: u64,
        limit: u64,
    ) -> StoreFuture<'a, (u64, Vec<ServiceTokenRecord>)> {
        self.measure(
            "list_tokens_page",
            self.inner.list_tokens_page(name, offset, limit),
        )
    }

    fn delete_token<'a>(&'a self, client_id: &'a str, detach: bool) -> StoreFuture<'a, bool> {
        self.measure("delete_token", self.inner.delete_token(client_id, detach))
    }

    fn record_last_seen<'a>(&'a self, seen: &'a [(String, i64)]) -> StoreFuture<'a, ()> {
        self.measure("record_last_seen", self.inner.record_last_seen(seen))
    }
}

impl<S: KeyStore + ?Sized> KeyStore for MeasuredStore<S> {
    fn load_ring(&self) -> StoreFuture<'_, (u64, Vec<SigningKeyRecord>)> {
        self.measure("load_ring", self.inner.load_ring())
    }

    fn swap_ring<'a>(
        &'a self,
        expected: u64,
        ring: &'a [SigningKeyRecord],
    ) -> StoreFuture<'a, bool> {
        self.measure("swap_ring", self.inner.swap_ring(expected, ring))
    }

    fn rotation_period(&self) -> StoreFuture<'_, Option<u64>> {
        self.measure("rotation_period", self.inner.rotation_period())
    }

    fn set_rotation_period(&self, seconds: Option<u64>) -> StoreFuture<'_, ()> {
        self.measure(
            "set_rotation_period",
            self.inner.set_rotation_period(seconds),
        )
    }
}

impl<S: AppStore + ?Sized> AppStore for MeasuredStore<S> {
    fn insert_app<'a>(&'a self, app: &'a ApplicationRecord) -> StoreFuture<'a, ()> {
        self.measure("insert_app", self.inner.insert_app(app))
    }

    fn get_app<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<ApplicationRecord>> {
        self.measure("get_app", self.inner.get_app(name))
    }

    fn get_app_by_id<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<ApplicationRecord>> {
        self.measure("get_app_by_id", self.inner.get_app_by_id(id))
    }

    fn list_apps(&self) -> StoreFuture<'_, Vec<ApplicationRecord>> {
        self.measure("list_apps", self.inner.list_apps())
    }

    fn update_app<'a>(
        &'a self,
        expected: &'a ApplicationRecord,
        app: &'a ApplicationRecord,
    ) -> StoreFuture<'a, bool> {
        self.measure("update_app", self.inner.update_app(expected, app))
    }

    fn delete_app<'a>(&'a self, name: &'a str) -> StoreFuture<'a, bool> {
        self.measure("delete_app", self.inner.delete_app(name))
    }

    fn insert_policy<'a>(&'a self, policy: &'a PolicyRecord) -> StoreFuture<'a, ()> {
        self.measure("insert_policy", self.inner.insert_policy(policy))
    }

    fn get_policy<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<PolicyRecord>> {
        self.measure("get_policy", self.inner.get_policy(id))
    }

    fn list_policies(&self) -> StoreFuture<'_, Vec<PolicyRecord>> {
        self.measure("list_policies", self.inner.list_policies())
    }

    fn update_policy<'a>(
        &'a self,
        expected: &'a PolicyRecord,
        policy: &'a PolicyRecord,
    ) -> StoreFuture<'a, bool> {
        self.measure("update_policy", self.inner.update_policy(expected, policy))
    }

    fn delete_policy<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        self.measure("delete_policy", self.inner.delete_policy(id))
    }
}
