//! `tollgate-load admin`: what an admin API call costs with 1,000 service tokens in the store,
//! on SQLite and on PostgreSQL. One connection, calls back to back (the way a script or
//! Terraform calls), each row for `--seconds` per round: latency p50/p99 and calls/s. The rows,
//! all through the same listener and API token:
//!
//! - `openapi.json`: routing and the HTTP stack only (the baseline);
//! - `GET keys`: plus authentication (the API-token lookup) and the account check;
//! - `GET service_tokens/{id}`: plus one token read by id;
//! - `GET service_tokens`: the first page of 20 of 1,000 (the SDKs' default);
//! - `GET service_tokens?per_page=1000`: all 1,000, about 400 kB of JSON.
//!
//! PostgreSQL runs when `TOLLGATE_TEST_POSTGRES_URL` names a server (a database is created
//! for the run and dropped after it).

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tollgate::admin::AdminApi;
use tollgate::issue::{ApiPermission, ApiTokens, Issuer, TokenDuration};
use tollgate::store::{Store, StoreOptions};

use crate::client::{self, Latencies, Requests};
use crate::gateway::percentile;
use crate::median;
use crate::variants::serve;

/// One row: its name and its request.
struct Row {
    name: &'static str,
    request: Vec<u8>,
}

fn get(path: &str, token: Option<&str>) -> Vec<u8> {
    let mut out = format!("GET {path} HTTP/1.1\r\nHost: admin.example.com\r\n").into_bytes();
    if let Some(token) = token {
        out.extend_from_slice(format!("Authorization: Bearer {token}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Starts the admin API over `store` holding `tokens` service tokens; its address and rows.
async fn start(store: Arc<Store>, tokens: usize) -> (SocketAddr, Vec<Row>) {
    let issuer = Issuer::builder("https://team.example.com")
        .store(store.clone())
        .build()
        .await
        .expect("the issuer");
    let manager = issuer.tokens();
    let mut some_id = String::new();
    for i in 0..tokens {
        let (token, _) = manager
            .create(&format!("bot-{i:04}"), TokenDuration::default())
            .await
            .expect("a token");
        some_id = token.id;
    }
    let api_tokens = ApiTokens::new(store.clone(), issuer.clock().clone());
    let (_, secret) = api_tokens
        .create("load", ApiPermission::Read)
        .await
        .expect("an API token");
    let account = api_tokens.account_id().await.expect("the account");
    let token = secret.expose_secret().to_owned();
    let addr = serve(AdminApi::new(issuer, api_tokens).router()).await;
    let access = format!("/client/v4/accounts/{account}/access");
    let rows = vec![
        Row {
            name: "openapi.json",
            request: get("/client/v4/openapi.json", None),
        },
        Row {
            name: "GET keys",
            request: get(&format!("{access}/keys"), Some(&token)),
        },
        Row {
            name: "GET service_tokens/{id}",
            request: get(&format!("{access}/service_tokens/{some_id}"), Some(&token)),
        },
        Row {
            name: "GET service_tokens",
            request: get(&format!("{access}/service_tokens"), Some(&token)),
        },
        Row {
            name: "GET service_tokens?per_page=1000",
            request: get(
                &format!("{access}/service_tokens?per_page=1000"),
                Some(&token),
            ),
        },
    ];
    (addr, rows)
}

/// Measures every row of one backend, `rounds` times in a rotated order, and prints its table.
async fn measure(backend: &str, addr: SocketAddr, rows: &[Row], rounds: usize, seconds: f64) {
    let mut latencies: Vec<Vec<u32>> = vec![Vec::new(); rows.len()];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    for round in 0..rounds {
        for step in 0..rows.len() {
            let i = (round + step) % rows.len();
            let requests = Requests::new(vec![rows[i].request.clone()]);
            // Warm the connection pool and caches, unmeasured.
            client::run(addr, &requests, 1, Duration::from_millis(200)).await;
            let recorded: Latencies = Rc::default();
            let outcome = client::run_recording(
                addr,
                &requests,
                1,
                Duration::from_secs_f64(seconds),
                Some(&recorded),
            )
            .await;
            assert_eq!(
                outcome.failed, 0,
                "{backend} {}: failed calls",
                rows[i].name
            );
            rates[i].push(outcome.rate());
            latencies[i].extend(recorded.borrow().iter());
        }
    }
    println!("\n{backend}, 1,000 service tokens, one connection, {rounds} rounds of {seconds} s:");
    println!("| call | calls/s (median) | p50 | p99 | p50 × openapi.json |");
    println!("|---|---:|---:|---:|---:|");
    let base_p50 = {
        let mut sorted = latencies[0].clone();
        sorted.sort_unstable();
        percentile(&sorted, 0.5)
    };
    for (i, row) in rows.iter().enumerate() {
        let mut sorted = latencies[i].clone();
        sorted.sort_unstable();
        let (p50, p99) = (percentile(&sorted, 0.5), percentile(&sorted, 0.99));
        println!(
            "| {} | {:.0} | {:.0} µs | {:.0} µs | {:.1} |",
            row.name,
            median(rates[i].clone()),
            p50,
            p99,
            p50 / base_p50
        );
    }
}

/// `tollgate-load admin`.
pub(crate) fn run(tokens: usize, rounds: usize, seconds: f64) {
    // One thread for the server and the single client connection: calls are sequential, so
    // they take turns rather than compete.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = format!("sqlite://{}", dir.path().join("admin.db").display());
        let store = Arc::new(
            tollgate::store::connect(&url, StoreOptions::new())
                .await
                .expect("the SQLite store"),
        );
        let (addr, rows) = start(store, tokens).await;
        measure("SQLite", addr, &rows, rounds, seconds).await;
    });
    if std::env::var_os(tollgate_test::postgres::URL_VAR).is_none() {
        println!(
            "\nPostgreSQL: skipped ({} not set)",
            tollgate_test::postgres::URL_VAR
        );
        return;
    }
    runtime.block_on(tollgate_test::postgres::with_database(
        "tollgate-load admin",
        |url| async move {
            // The measurement's tasks are not Send: they run on a thread of their own.
            let measured = tokio::task::spawn_blocking(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the runtime");
                tokio::task::LocalSet::new().block_on(&runtime, async {
                    let store = Arc::new(
                        tollgate::store::connect(&url, StoreOptions::new())
                            .await
                            .expect("the PostgreSQL store"),
                    );
                    let (addr, rows) = start(store, tokens).await;
                    measure("PostgreSQL", addr, &rows, rounds, seconds).await;
                });
            });
            measured.await.expect("the PostgreSQL measurement");
        },
    ));
}
