//! The routes of a metrics listener: `GET /metrics`, `GET /healthz`, `GET /readyz`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Map, Value, json};
use tollgate_issue::{Issuer, Revision};

use crate::Metrics;

/// The content type of the OpenMetrics text format, served to a scraper that asks for it.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of the Prometheus text format (0.0.4), served otherwise.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How long `/readyz` waits for the store's `revision()` by default.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// What `/readyz` checks. Each check is optional: a process without a store or an issuer
/// is ready as far as the others go.
///
/// - `store`: the store answers `revision()` within the timeout (default 2 s);
/// - `signing_key`: the issuer has a key that can sign now;
/// - `snapshot`: the issuer confirmed its snapshot current (a poll or a reload) within the
///   allowed age: by default 8 poll intervals, at least 3 s.
#[derive(Clone, Default)]
#[must_use]
pub struct Readiness {
    store: Option<Arc<dyn Revision>>,
    issuer: Option<Issuer>,
    store_timeout: Option<Duration>,
    max_snapshot_age: Option<Duration>,
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Readiness")
            .field("store", &self.store.is_some())
            .field("issuer", &self.issuer)
            .field("store_timeout", &self.store_timeout)
            .field("max_snapshot_age", &self.max_snapshot_age)
            .finish()
    }
}

/// The outcome of one readiness check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Check {
    /// `store`, `signing_key` or `snapshot`.
    pub name: &'static str,
    /// `None` if it passed, else why not (no secret, no address).
    pub failure: Option<String>,
}

impl Readiness {
    /// No checks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks that `store` answers `revision()`.
    pub fn with_store(mut self, store: Arc<dyn Revision>) -> Self {
        self.store = Some(store);
        self
    }

    /// Checks that `issuer` has a signing key and a fresh snapshot.
    pub fn with_issuer(mut self, issuer: Issuer) -> Self {
        self.issuer = Some(issuer);
        self
    }

    /// How long the store may take to answer (default 2 s).
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = Some(timeout);
        self
    }

    /// How old the issuer's last confirmed snapshot may be (default: 8 poll intervals, at
    /// least 3 s).
    pub fn max_snapshot_age(mut self, age: Duration) -> Self {
        self.max_snapshot_age = Some(age);
        self
    }

    /// Runs every check (the store's concurrently with nothing else to wait on).
    pub async fn check(&self) -> Vec<Check> {
        let mut checks = Vec::with_capacity(3);
        if let Some(store) = &self.store {
            let timeout = self.store_timeout.unwrap_or(DEFAULT_STORE_TIMEOUT);
            let failure = match tokio::time::timeout(timeout, store.revision()).await {
                Ok(Ok(_)) => None,
                Ok(Err(err)) => Some(format!("store failed: {err}")),
                Err(_) => Some(format!(
                    "store did not answer within {} ms",
                    timeout.as_millis()
                )),
            };
            checks.push(Check {
                name: "store",
                failure,
            });
        }
        if let Some(issuer) = &self.issuer {
            let ring = issuer.key_ring_status();
            checks.push(Check {
                name: "signing_key",
                failure: ring
                    .signing_since
                    .is_none()
                    .then(|| "no signing key can sign now".to_owned()),
            });
            let allowed = self.max_snapshot_age.unwrap_or_else(|| {
                issuer
                    .poll_interval()
                    .saturating_mul(8)
                    .max(Duration::from_secs(3))
            });
            let failure = match issuer.since_last_sync() {
                None => Some("snapshot never loaded".to_owned()),
                Some(age) if age > allowed => Some(format!(
                    "snapshot last confirmed {} ms ago (allowed {} ms)",
                    age.as_millis(),
                    allowed.as_millis()
                )),
                Some(_) => None,
            };
            checks.push(Check {
                name: "snapshot",
                failure,
            });
        }
        checks
    }
}

/// The router of a metrics listener:
///
/// - `GET /metrics`: every metric, in the OpenMetrics text format if the scraper's `Accept`
///   asks for `application/openmetrics-text` (Prometheus does), else the Prometheus text
///   format 0.0.4;
/// - `GET /healthz`: 200 `ok` while the process serves;
/// - `GET /readyz`: 200 when every [`Readiness`] check passes, else 503; both with a JSON body
///   `{"ready":bool,"checks":{"store":"ok"|why,…},"failing":[names]}`.
///
/// Serve it on its own listener (an admin or internal address), not the public one.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use tower::ServiceExt as _;
/// use tollgate_metrics::{Metrics, Readiness, metrics_router};
///
/// let app = metrics_router(Metrics::new(), Readiness::new());
/// let request = http::Request::get("/readyz").body(axum::body::Body::empty()).unwrap();
/// let response = app.oneshot(request).await.unwrap();
/// assert_eq!(response.status(), 200);
/// # }
/// ```
pub fn metrics_router(metrics: Metrics, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics)
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(
            Router::new()
                .route("/readyz", get(ready))
                .with_state(Arc::new(readiness)),
        )
}

async fn scrape(State(metrics): State<Metrics>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let (body, content_type) = if openmetrics {
        (metrics.encode_openmetrics(), OPENMETRICS_CONTENT_TYPE)
    } else {
        (metrics.encode(), PROMETHEUS_CONTENT_TYPE)
    };
    (
        [(CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

async fn ready(State(readiness): State<Arc<Readiness>>) -> Response {
    let checks = readiness.check().await;
    let failing: Vec<&str> = checks
        .iter()
        .filter(|c| c.failure.is_some())
        .map(|c| c.name)
        .collect();
    let mut by_name = Map::new();
    for check in &checks {
        let value = check.failure.clone().unwrap_or_else(|| "ok".to_owned());
        by_name.insert(check.name.to_owned(), Value::String(value));
    }
    let status = if failing.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({ "ready": failing.is_empty(), "checks": by_name, "failing": failing });
    (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body.to_string(),
    )
        .into_response()
}
