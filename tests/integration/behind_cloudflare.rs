//! End to end: the `behind_cloudflare` example against a real certs endpoint on loopback, with
//! tokens signed by an independent implementation (jsonwebtoken) using the Wycheproof RS256
//! key (Apache-2.0, tests/fixtures/wycheproof/PROVENANCE.md).
//!
//! The example's own `app()` is served in-process, and the example binary built by
//! `cargo test` is also run as a subprocess with the documented environment variables.
#![allow(clippy::unwrap_used, missing_docs)]

#[allow(dead_code, unreachable_pub)]
#[path = "../../examples/behind_cloudflare.rs"]
mod example;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tollgate::verify::Verifier;
use tollgate_test::JwksServer;
use tollgate_test::claims::{AUD, CLIENT_ID, service_claims, user_claims};
use tollgate_test::http::{RequestExt as _, serve};
use tollgate_test::wycheproof::{public_jwk, sign, signing_key};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The certs endpoint publishing the Wycheproof key.
async fn certs_endpoint(key: &Value) -> JwksServer {
    JwksServer::start(vec![public_jwk(key)]).await
}

/// Runs the scenario against an app at `base`.
async fn exercise(base: &str, team_domain: &str, key: &Value) {
    let client = reqwest::Client::new();
    let t = now();
    let service = sign(key, &service_claims(team_domain, t, 600));
    let reply = client
        .get(format!("{base}/any/path?x=1"))
        .header("Cf-Access-Jwt-Assertion", &service)
        .reply()
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json["type"], "service");
    assert_eq!(reply.json["common_name"], CLIENT_ID);

    let user = sign(key, &user_claims(team_domain, "jane@example.com", t, 600));
    let reply = client
        .post(format!("{base}/"))
        .header("cookie", format!("CF_Authorization={user}"))
        .reply()
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json["email"], "jane@example.com");

    let reply = client.get(format!("{base}/")).reply().await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json["reason"], "missing_credentials");

    let wrong_aud = sign(
        key,
        &json!({"aud":"other","exp":t + 600,"iss":team_domain,"common_name":"x.access","sub":""}),
    );
    let reply = client
        .get(format!("{base}/"))
        .access_token(&wrong_aud)
        .reply()
        .await;
    assert_eq!(reply.status, 401);
    assert!(reply.text.contains("wrong_audience"), "{}", reply.text);
    assert!(!reply.text.contains(&wrong_aud));
}

#[tokio::test]
async fn example_app_in_process() {
    let key = signing_key();
    let certs = certs_endpoint(&key).await;
    let verifier = Verifier::for_team_domain(&certs.origin, AUD).unwrap();
    let base = serve(example::app(verifier)).await;
    exercise(&base, &certs.origin, &key).await;
    assert_eq!(certs.hits(), 1);
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
    let key = signing_key();
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
    assert_eq!(certs.hits(), 1);
    drop(child);
}
