//! Loopback load runner for the in-process issuer: service-token exchanges per second, and
//! requests per second riding an application token (`cf-access-token`, the verify-with-cookie
//! path), with the server on a one-worker runtime and the load on another. While exchanges run,
//! a probe task on the server's runtime measures how late a 5 ms timer fires: RSA signing runs
//! on the blocking pool, so the worker stays free for other requests.
//!
//! Run with:
//!
//! ```sh
//! cargo bench --bench exchange --features issue -- [seconds per phase, default 5] [concurrency, default 32]
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use tollgate::issue::{AppSettings, Issuer, KeyStore, MemoryStore, TokenDuration};

struct Load {
    ok: u64,
    failed: u64,
    elapsed: Duration,
}

async fn load(
    seconds: u64,
    concurrency: usize,
    make: Arc<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync>,
) -> Load {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (ok, failed, stop, client, make) = (
            ok.clone(),
            failed.clone(),
            stop.clone(),
            client.clone(),
            make.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match make(&client).send().await {
                    Ok(r) if r.status() == 200 => {
                        r.bytes().await.ok();
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    Load {
        ok: ok.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
    }
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let concurrency: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(32);

    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (base, client_id, secret, lateness, pkcs8) = server.block_on(async {
        let store = Arc::new(MemoryStore::new());
        let issuer = Issuer::builder("team.example.com")
            .store(store.clone())
            .build()
            .await
            .unwrap();
        issuer
            .apps()
            .create("bench", AppSettings::new())
            .await
            .unwrap();
        let (token, secret) = issuer
            .tokens()
            .create("bench-bot", TokenDuration::default())
            .await
            .unwrap();
        let app = Router::new()
            .route("/", get(|| async { "ok" }))
            .layer(issuer.exchange_layer("bench").unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        // Responsiveness probe: how late a 5 ms timer fires on the server's only worker.
        let lateness = Arc::new(Mutex::new(Vec::new()));
        let probe = lateness.clone();
        tokio::spawn(async move {
            loop {
                let start = Instant::now();
                tokio::time::sleep(Duration::from_millis(5)).await;
                let late = start.elapsed().saturating_sub(Duration::from_millis(5));
                probe.lock().unwrap().push(late.as_micros() as u64);
            }
        });
        let pkcs8 = store.load_ring().await.unwrap().1[0]
            .private_key_pkcs8
            .clone();
        (
            base,
            token.client_id,
            secret.expose_secret().to_owned(),
            lateness,
            pkcs8,
        )
    });

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    client_rt.block_on(async {
        let (url, id, key) = (base.clone(), client_id.clone(), secret.clone());
        take(&lateness);
        let exchange = load(
            seconds,
            concurrency,
            Arc::new(move |c: &reqwest::Client| {
                c.get(&url)
                    .header("CF-Access-Client-Id", &id)
                    .header("CF-Access-Client-Secret", &key)
            }),
        )
        .await;
        let exchange_late = take(&lateness);

        let jwt = reqwest::Client::new()
            .get(&base)
            .header("CF-Access-Client-Id", &client_id)
            .header("CF-Access-Client-Secret", &secret)
            .send()
            .await
            .unwrap()
            .headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .trim_start_matches("CF_Authorization=")
            .to_owned();
        let url = base.clone();
        let reuse = load(
            seconds,
            concurrency,
            Arc::new(move |c: &reqwest::Client| c.get(&url).header("cf-access-token", &jwt)),
        )
        .await;
        let reuse_late = take(&lateness);

        for (name, result, late) in [
            ("exchange (credentials -> signed token)", &exchange, exchange_late),
            ("cf-access-token reuse (verify)", &reuse, reuse_late),
        ] {
            println!(
                "{name:40} {:>7.0} req/s ({} ok, {} failed, {:.1}s, {concurrency} conns); server-worker timer lateness {}",
                result.ok as f64 / result.elapsed.as_secs_f64(),
                result.ok,
                result.failed,
                result.elapsed.as_secs_f64(),
                late,
            );
        }
    });

    // Counterfactual: the same burst signing ON the server's worker (jsonwebtoken::encode, as
    // a naive middleware would), with no HTTP at all. The probe shows what the blocking pool
    // spares the runtime.
    let pem = pkcs8_pem(&pkcs8);
    server.block_on(async {
        let key = Arc::new(jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let signed = Arc::new(AtomicU64::new(0));
        take(&lateness);
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (key, stop, signed) = (key.clone(), stop.clone(), signed.clone());
            tasks.push(tokio::spawn(async move {
                let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
                let claims = serde_json::json!({"aud": "a", "exp": 1});
                while !stop.load(Ordering::Relaxed) {
                    jsonwebtoken::encode(&header, &claims, &key).unwrap();
                    signed.fetch_add(1, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            task.await.unwrap();
        }
        println!(
            "{:40} {:>7.0} signs/s ({concurrency} tasks on the worker); server-worker timer lateness {}",
            "counterfactual: signing inline",
            signed.load(Ordering::Relaxed) as f64 / seconds as f64,
            take(&lateness),
        );
    });
}

/// Lateness percentiles of the probe's samples since the last call.
struct Lateness(Vec<u64>);

impl std::fmt::Display for Lateness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut v = self.0.clone();
        v.sort_unstable();
        let at = |q: f64| {
            v.get(((v.len() as f64 - 1.0) * q) as usize)
                .copied()
                .unwrap_or(0) as f64
                / 1000.0
        };
        write!(
            f,
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples)",
            at(0.5),
            at(0.99),
            at(1.0),
            v.len()
        )
    }
}

fn take(lateness: &Mutex<Vec<u64>>) -> Lateness {
    Lateness(std::mem::take(&mut *lateness.lock().unwrap()))
}

fn pkcs8_pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}
