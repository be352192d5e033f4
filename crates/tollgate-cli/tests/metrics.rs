//! `tollgate serve --metrics-addr`: the real binary, exchanges over loopback, `/metrics` read
//! by an independent Prometheus text-format parser (`prometheus-parse`), `/healthz` and
//! `/readyz` — and `/readyz` turning 503, naming the store, when the PostgreSQL database
//! under a running server is dropped.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use prometheus_parse::{Scrape, Value};
use sqlx::Connection as _;
use tollgate_test::cli::CliEnv;
use tollgate_test::http::wait_until;

fn scratch() -> CliEnv {
    CliEnv::new(env!("CARGO_BIN_EXE_tollgate"))
}

const METRICS: [&str; 2] = ["--metrics-addr", "127.0.0.1:0"];

/// The one sample named `name` whose labels include `labels`.
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

async fn get(http: &reqwest::Client, url: String) -> (u16, String) {
    let response = http.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_counts_exchanges_and_refusals_and_answers_health_checks() {
    let env = scratch();
    let server = env.serve(&METRICS);
    let metrics = server
        .metrics
        .clone()
        .expect("the banner names the metrics listener");
    assert_ne!(metrics, server.base);
    let (id, secret) = server.first_token.clone().unwrap();
    let http = reqwest::Client::new();
    let exchange = |secret: &str| {
        http.get(server.url())
            .header("CF-Access-Client-Id", &id)
            .header("CF-Access-Client-Secret", secret)
            .send()
    };
    let mut cookie = String::new();
    for _ in 0..3 {
        let response = exchange(&secret).await.unwrap();
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
        assert_eq!(exchange("wrong-secret").await.unwrap().status(), 401);
    }
    for _ in 0..5 {
        let ride = http
            .get(server.url())
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(ride.status(), 200);
    }
    // The metrics are not on the public listener.
    assert_eq!(get(&http, format!("{}/metrics", server.base)).await.0, 401);

    let (status, text) = get(&http, format!("{metrics}/metrics")).await;
    assert_eq!(status, 200);
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let exchanges = |result| {
        value(
            &scrape,
            "tollgate_exchanges_total",
            &[("app", "demo"), ("result", result)],
        )
    };
    assert_eq!(exchanges("allowed"), Some(3.0), "{text}");
    assert_eq!(exchanges("refused"), Some(2.0), "{text}");
    let wrong_secret = [
        ("app", "demo"),
        ("kind", "exchange"),
        ("reason", "invalid_credentials"),
    ];
    assert_eq!(
        value(&scrape, "tollgate_refusals_total", &wrong_secret),
        Some(2.0)
    );
    let refusals: f64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "tollgate_refusals_total")
        .map(|s| match s.value {
            Value::Counter(v) | Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum();
    let no_credentials = [
        ("app", "demo"),
        ("kind", "token"),
        ("reason", "missing_credentials"),
    ];
    assert_eq!(
        value(&scrape, "tollgate_refusals_total", &no_credentials),
        Some(1.0),
        "the request for /metrics on the public listener"
    );
    assert_eq!(refusals, 3.0, "nothing else was refused: {text}");
    // Cookie rides: the first checked a signature, the rest hit the verified-token cache.
    let hits = value(
        &scrape,
        "tollgate_verify_cache_hits_total",
        &[("app", "demo")],
    );
    assert_eq!(hits, Some(4.0), "{text}");
    assert_eq!(
        value(&scrape, "tollgate_signing_seconds_count", &[]),
        Some(3.0)
    );
    assert_eq!(
        value(&scrape, "tollgate_signing_keys_published", &[]),
        Some(1.0)
    );
    assert_eq!(
        value(&scrape, "tollgate_service_tokens_expiring_within_7d", &[]),
        Some(0.0)
    );
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "tollgate_store_seconds" && s.labels.get("op") == Some("revision")),
        "{text}"
    );
    // Never a client ID, a secret or an address.
    for secret_or_id in [id.as_str(), secret.as_str(), "127.0.0.1"] {
        assert!(!text.contains(secret_or_id), "{secret_or_id} in {text}");
    }

    assert_eq!(get(&http, format!("{metrics}/healthz")).await.0, 200);
    let (status, body) = get(&http, format!("{metrics}/readyz")).await;
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["failing"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_never_served_on_the_public_listener() {
    let env = scratch();
    for metrics in ["127.0.0.1:18089", "0.0.0.0:18089"] {
        let error = env.fails(&[
            "serve",
            "--addr",
            "127.0.0.1:18089",
            "--metrics-addr",
            metrics,
        ]);
        assert!(error.contains("public listener"), "{error}");
    }
    // Off unless asked for.
    let server = env.serve(&[]);
    assert!(server.metrics.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_the_store_once_the_database_is_gone() {
    tollgate_test::postgres::with_database("readyz_store_gone", |database| async move {
        let mut env = scratch();
        env.database = database.clone();
        let server = env.serve(&METRICS);
        let metrics = server.metrics.clone().unwrap();
        let http = reqwest::Client::new();
        let (status, body) = get(&http, format!("{metrics}/readyz")).await;
        assert_eq!(status, 200, "{body}");

        // Drop the database under the running server (its connections are terminated).
        let admin_url = std::env::var(tollgate_test::postgres::URL_VAR).unwrap();
        let name = database
            .rsplit('/')
            .next()
            .unwrap()
            .split('?')
            .next()
            .unwrap()
            .to_owned();
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {name} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await
        .unwrap();

        let took = wait_until(Duration::from_secs(10), "/readyz still answers 200", || {
            let http = http.clone();
            let url = format!("{metrics}/readyz");
            async move { get(&http, url).await.0 == 503 }
        })
        .await;
        eprintln!("/readyz answered 503 {took:?} after the database was dropped");
        let (status, body) = get(&http, format!("{metrics}/readyz")).await;
        assert_eq!(status, 503);
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        let failing = body["failing"].as_array().unwrap();
        assert!(failing.contains(&serde_json::json!("store")), "{body}");
        assert_ne!(body["checks"]["store"], "ok", "{body}");
        // The process is up, and the public listener still serves its last snapshot.
        assert_eq!(get(&http, format!("{metrics}/healthz")).await.0, 200);
        let (_, text) = get(&http, format!("{metrics}/metrics")).await;
        let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
        let errors = value(
            &scrape,
            "tollgate_store_errors_total",
            &[("op", "revision")],
        );
        assert!(errors.unwrap_or(0.0) >= 1.0, "{text}");
    })
    .await;
}
