//! The metrics over real loopback sockets: an issuer's exchange layer counted through the
//! sink, scrape-time collectors, the store decorator, and `/readyz` when the store fails —
//! every scrape parsed by an independent Prometheus text-format parser (`prometheus-parse`).

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use prometheus_parse::{Scrape, Value};
use tollgate_core::AccessIdentity;
use tollgate_core::events::Events;
use tollgate_issue::{
    AppSettings, Issuer, MemoryStore, Revision, StoreError, StoreFuture, TokenDuration,
};
use tollgate_metrics::{Metrics, Readiness, metrics_router};

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, service).await.unwrap();
    });
    format!("http://{addr}")
}

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The value of the one sample named `name` whose labels include `labels`.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            other => panic!("{name}: not a scalar: {other:?}"),
        })
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?}: {found:?}");
    found.first().copied()
}

#[tokio::test]
async fn exchanges_refusals_and_live_state_are_scraped() {
    let metrics = Metrics::new();
    let store = metrics.measure_store(Arc::new(MemoryStore::new()));
    let issuer = Issuer::builder("team.example.com")
        .store(store.clone())
        .events(Events::none().with(metrics.sink()))
        .build()
        .await
        .unwrap();
    metrics.watch_issuer(&issuer);
    issuer
        .apps()
        .create("api", AppSettings::new())
        .await
        .unwrap();
    let (bot, secret) = issuer
        .tokens()
        .create("bot", Default::default())
        .await
        .unwrap();
    issuer
        .tokens()
        .create("soon", TokenDuration::Seconds(100 * 3600))
        .await
        .unwrap();
    let app = Router::new()
        .route(
            "/",
            get(|who: AccessIdentity| async move { who.name().to_owned() }),
        )
        .layer(issuer.exchange_layer("api").unwrap());
    let url = serve(app).await;
    let admin = serve(metrics_router(
        metrics.clone(),
        Readiness::new()
            .with_store(store.clone())
            .with_issuer(issuer.clone()),
    ))
    .await;
    let http = reqwest::Client::new();
    let exchange = |id: &str, secret: &str| {
        http.get(format!("{url}/"))
            .header("CF-Access-Client-Id", id)
            .header("CF-Access-Client-Secret", secret)
            .send()
    };
    let mut cookie = String::new();
    for _ in 0..3 {
        let response = exchange(&bot.client_id, secret.expose_secret())
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        cookie = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
    }
    for _ in 0..2 {
        let response = exchange(&bot.client_id, "wrong").await.unwrap();
        assert_eq!(response.status(), 401);
    }
    for _ in 0..4 {
        let ride = http
            .get(format!("{url}/"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(ride.status(), 200);
    }
    let bad_token = http
        .get(format!("{url}/"))
        .header("cf-access-token", "not.a.jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_token.status(), 401);

    let response = http.get(format!("{admin}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        tollgate_metrics::PROMETHEUS_CONTENT_TYPE
    );
    let text = response.text().await.unwrap();
    let scrape = parse(&text);
    let exchanges = |result| {
        value(
            &scrape,
            "tollgate_exchanges_total",
            &[("app", "api"), ("result", result)],
        )
    };
    assert_eq!(exchanges("allowed"), Some(3.0), "{text}");
    assert_eq!(exchanges("refused"), Some(2.0), "{text}");
    assert_eq!(
        value(
            &scrape,
            "tollgate_refusals_total",
            &[
                ("app", "api"),
                ("kind", "exchange"),
                ("reason", "invalid_credentials")
            ]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &scrape,
            "tollgate_refusals_total",
            &[
                ("app", "api"),
                ("kind", "token"),
                ("reason", "malformed_token")
            ]
        ),
        Some(1.0),
        "{text}"
    );
    // The first ride verified the signature, the next three came from the cache.
    assert_eq!(
        value(
            &scrape,
            "tollgate_verify_cache_hits_total",
            &[("app", "api")]
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(
            &scrape,
            "tollgate_verify_signature_checks_total",
            &[("app", "api")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &scrape,
            "tollgate_key_fetch_failures_total",
            &[("app", "api")]
        ),
        Some(0.0)
    );
    assert!(value(&scrape, "tollgate_key_fetches_total", &[("app", "api")]).unwrap() >= 1.0);
    assert!(
        value(
            &scrape,
            "tollgate_key_fetch_last_success_age_seconds",
            &[("app", "api")]
        )
        .unwrap()
            < 60.0
    );
    assert_eq!(
        value(&scrape, "tollgate_signing_keys_published", &[]),
        Some(1.0)
    );
    assert_eq!(
        value(&scrape, "tollgate_signing_key_available", &[]),
        Some(1.0)
    );
    assert!(value(&scrape, "tollgate_signing_key_age_seconds", &[]).unwrap() < 60.0);
    let rotation = value(&scrape, "tollgate_signing_key_rotation_in_seconds", &[]).unwrap();
    assert!(
        (41.0 * 86_400.0..=42.0 * 86_400.0).contains(&rotation),
        "{rotation}"
    );
    assert_eq!(
        value(&scrape, "tollgate_service_tokens_expiring_within_7d", &[]),
        Some(1.0)
    );
    assert!(value(&scrape, "tollgate_snapshot_age_seconds", &[]).unwrap() < 5.0);
    // Three signatures, each under a second.
    let signing = scrape
        .samples
        .iter()
        .find(|s| s.metric == "tollgate_signing_seconds")
        .unwrap();
    let Value::Histogram(buckets) = &signing.value else {
        panic!("{signing:?}")
    };
    let under_a_second = buckets.iter().find(|b| b.less_than == 1.0).unwrap();
    assert_eq!(under_a_second.count, 3.0);
    assert_eq!(
        value(&scrape, "tollgate_signing_seconds_count", &[]),
        Some(3.0)
    );
    // Every store call is timed; nothing failed.
    let polls = scrape
        .samples
        .iter()
        .find(|s| s.metric == "tollgate_store_seconds" && s.labels.get("op") == Some("revision"))
        .unwrap();
    assert!(matches!(&polls.value, Value::Histogram(b) if b.last().unwrap().count >= 1.0));
    assert!(!text.contains("tollgate_store_errors_total{"), "{text}");
    // No client ID, no address.
    assert!(!text.contains(&bot.client_id), "{text}");
    assert!(!text.contains("127.0.0.1"), "{text}");

    // OpenMetrics for a scraper that asks for it.
    let response = http
        .get(format!("{admin}/metrics"))
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        tollgate_metrics::OPENMETRICS_CONTENT_TYPE
    );
    let text = response.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("tollgate_exchanges_total{app=\"api\",result=\"allowed\"} 3"));

    for path in ["/healthz", "/readyz"] {
        let response = http.get(format!("{admin}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let body: serde_json::Value = http
        .get(format!("{admin}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["ready"], true);
    assert_eq!(body["checks"]["store"], "ok");
    assert_eq!(body["checks"]["signing_key"], "ok");
    assert_eq!(body["checks"]["snapshot"], "ok");
}

/// A store whose `revision()` fails or hangs on demand.
#[derive(Default)]
struct Breakable {
    broken: AtomicBool,
    hangs: AtomicBool,
}

impl Revision for Breakable {
    fn revision(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            if self.hangs.load(Ordering::Relaxed) {
                std::future::pending::<()>().await;
            }
            if self.broken.load(Ordering::Relaxed) {
                return Err(StoreError::Backend("connection refused".into()));
            }
            Ok(7)
        })
    }
}

#[tokio::test]
async fn readyz_names_a_failing_store_and_store_errors_are_counted() {
    let metrics = Metrics::new();
    let store = metrics.measure_store(Arc::new(Breakable::default()));
    let admin = serve(metrics_router(
        metrics.clone(),
        Readiness::new()
            .with_store(store.clone())
            .store_timeout(Duration::from_millis(200)),
    ))
    .await;
    let http = reqwest::Client::new();
    let ready = || async {
        let response = http.get(format!("{admin}/readyz")).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json::<serde_json::Value>().await.unwrap())
    };
    assert_eq!(ready().await.0, 200);

    store.get_ref().broken.store(true, Ordering::Relaxed);
    let (status, body) = ready().await;
    assert_eq!(status, 503);
    assert_eq!(body["ready"], false);
    assert_eq!(body["failing"], serde_json::json!(["store"]));
    assert!(
        body["checks"]["store"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{body}"
    );

    store.get_ref().hangs.store(true, Ordering::Relaxed);
    let (status, body) = ready().await;
    assert_eq!(status, 503);
    assert!(
        body["checks"]["store"]
            .as_str()
            .unwrap()
            .contains("did not answer within 200 ms"),
        "{body}"
    );
    // /healthz does not care.
    let health = http.get(format!("{admin}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let scrape = parse(&metrics.encode());
    assert_eq!(
        value(
            &scrape,
            "tollgate_store_errors_total",
            &[("op", "revision")]
        ),
        Some(1.0)
    );
}

#[test]
fn counter_sources_are_scraped_and_names_checked() {
    let metrics = Metrics::new();
    assert!(metrics.register_counter_source(
        "tollgate_log_events_dropped_total",
        "Dropped.",
        Arc::new(|| 42)
    ));
    assert!(!metrics.register_counter_source(
        "tollgate_log_events_dropped",
        "Again.",
        Arc::new(|| 1)
    ));
    assert!(!metrics.register_counter_source("tollgate_exchanges", "Taken.", Arc::new(|| 1)));
    assert!(!metrics.register_counter_source("no spaces", "Invalid.", Arc::new(|| 1)));
    let scrape = parse(&metrics.encode());
    assert_eq!(
        value(&scrape, "tollgate_log_events_dropped_total", &[]),
        Some(42.0)
    );
    assert_eq!(
        scrape
            .docs
            .get("tollgate_log_events_dropped_total")
            .map(String::as_str),
        Some("Dropped.")
    );
}
