//! End to end: the `behind_cloudflare` example against a real certs endpoint on loopback, with
//! tokens signed by an independent implementation (jsonwebtoken) using the Wycheproof RS256
//! key (Apache-2.0, tests/fixtures/wycheproof/PROVENANCE.md).
//!
//! The example's own `app()` is served in-process, and the example binary built by
//! `cargo test` is also run as a subprocess with the documented environment variables.
#![allow(clippy::unwrap_used, missing_docs)]

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/behind_cloudflare.rs"]
mod example;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use tollgate::verify::Verifier;

#[path = "common/wycheproof_key.rs"]
mod wycheproof_key;
use wycheproof_key::{sign, wycheproof_key};

const AUD: &str = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

struct Certs {
    origin: String,
    hits: Arc<AtomicUsize>,
}

async fn certs_endpoint(key: &Value) -> Certs {
    let public = json!({"kid": key["kid"], "kty": "RSA", "alg": "RS256", "use": "sig",
                        "n": key["n"], "e": key["e"]});
    let body = json!({"keys": [public]}).to_string();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new().route(
        "/cdn-cgi/access/certs",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let body = body.clone();
            async move { ([("content-type", "application/json")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Certs { origin, hits }
}

/// Runs the scenario against an app at `base`.
async fn exercise(base: &str, team_domain: &str, key: &Value) {
    let client = reqwest::Client::new();
    let t = now();
    let service = sign(
        key,
        &json!({"type":"app","aud":AUD,"exp":t + 600,"iss":team_domain,
                "common_name":"5a1b4f0cbd6df4b22b11c8ffb5d4b4a9.access","iat":t,"sub":""}),
    );
    let response = client
        .get(format!("{base}/any/path?x=1"))
        .header("Cf-Access-Jwt-Assertion", &service)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let identity: Value = response.json().await.unwrap();
    assert_eq!(identity["type"], "service");
    assert_eq!(
        identity["common_name"],
        "5a1b4f0cbd6df4b22b11c8ffb5d4b4a9.access"
    );

    let user = sign(
        key,
        &json!({"aud":[AUD],"email":"jane@example.com","exp":t + 600,"iat":t,"nbf":t,
                "iss":team_domain,"type":"app","sub":"7335d417-61da-459d-899c-0a01c76a2f94"}),
    );
    let response = client
        .post(format!("{base}/"))
        .header("cookie", format!("CF_Authorization={user}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let identity: Value = response.json().await.unwrap();
    assert_eq!(identity["email"], "jane@example.com");

    let response = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["reason"], "missing_credentials");

    let wrong_aud = sign(
        key,
        &json!({"aud":"other","exp":t + 600,"iss":team_domain,"common_name":"x.access","sub":""}),
    );
    let response = client
        .get(format!("{base}/"))
        .header("cf-access-token", &wrong_aud)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let text = response.text().await.unwrap();
    assert!(text.contains("wrong_audience"), "{text}");
    assert!(!text.contains(&wrong_aud));
}

#[tokio::test]
async fn example_app_in_process() {
    let key = wycheproof_key();
    let certs = certs_endpoint(&key).await;
    let verifier = Verifier::for_team_domain(&certs.origin, AUD).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, example::app(verifier)).await.unwrap() });
    exercise(&base, &certs.origin, &key).await;
    assert_eq!(certs.hits.load(Ordering::SeqCst), 1);
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

#[tokio::test]
async fn example_binary_with_the_documented_environment() {
    // `cargo test` builds examples next to the test binaries' directory.
    let exe = std::env::current_exe().unwrap();
    let binary = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| {
            dir.join("examples")
                .join(format!("behind_cloudflare{}", std::env::consts::EXE_SUFFIX))
        })
        .unwrap();
    if !binary.exists() {
        eprintln!(
            "skipping: {} not built (run the whole `cargo test`)",
            binary.display()
        );
        return;
    }
    let key = wycheproof_key();
    let certs = certs_endpoint(&key).await;
    let mut child = Command::new(&binary)
        .env("TEAM_DOMAIN", &certs.origin)
        .env("POLICY_AUD", AUD)
        .env("ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = KillOnDrop(child);
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    });
    let line = tokio::time::timeout(Duration::from_secs(30), line)
        .await
        .expect("the example prints its address")
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    exercise(&base, &certs.origin, &key).await;
    assert_eq!(certs.hits.load(Ordering::SeqCst), 1);
    drop(child);
}
