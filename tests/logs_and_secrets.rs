//! No secret and no token ever reaches a log line or a response body, whatever a client sends;
//! in a test binary of its own, so a process-wide subscriber sees every event.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tollgate::issue::AppSettings;
use tollgate_test::LogCapture;
use tollgate_test::http::{RequestExt as _, single_header_credentials};
use tollgate_test::issue::Harness;

#[tokio::test]
async fn no_secret_or_token_in_logs_or_bodies() {
    let logs = LogCapture::global();
    let h =
        Harness::start(AppSettings::new().read_service_tokens_from_header("Authorization")).await;
    let plain = reqwest::Client::new();
    let mut secrets = vec![h.secret().to_owned()];
    let mut bodies = Vec::new();
    let mut jwts = Vec::new();

    // (The protected handler's own body echoes the token on purpose: not collected.)
    let exchange = h.exchange(&plain).await;
    jwts.push(exchange.json["assertion"].as_str().unwrap().to_owned());
    let wrong = format!("{}x", h.secret());
    secrets.push(wrong.clone());
    bodies.push(h.exchange_with(&plain, &wrong).await.text);
    let single = single_header_credentials(&h.token.client_id, &wrong);
    bodies.push(
        plain
            .get(h.url())
            .header("Authorization", single)
            .reply()
            .await
            .text,
    );
    let rotated = h
        .issuer
        .tokens()
        .rotate_secret(&h.token.client_id, Some(Duration::from_secs(3600)))
        .await
        .unwrap();
    secrets.push(rotated.expose_secret().to_owned());
    tracing::info!(secret = ?rotated, "a careless log line with the secret type");
    assert_eq!(
        h.exchange_with(&plain, rotated.expose_secret())
            .await
            .status,
        200
    );
    let mut tampered = jwts[0].clone();
    tampered.insert(30, 'x');
    bodies.push(h.with_token(&plain, &tampered).await.text);
    jwts.push(tampered);
    h.issuer
        .tokens()
        .delete(&h.token.client_id, true)
        .await
        .unwrap();
    bodies.push(h.with_token(&plain, &jwts[0]).await.text);
    h.issuer.flush_last_seen().await;

    let logs = logs.text();
    assert!(
        logs.contains("service token created"),
        "logs were captured: {logs}"
    );
    assert!(logs.contains("ClientSecret([redacted])"));
    for secret in &secrets {
        // The random part alone, so a prefix-less echo would be caught too.
        let needle = &secret[4..40];
        assert!(!logs.contains(needle), "a secret leaked into the logs");
        for text in &bodies {
            assert!(
                !text.contains(needle),
                "a secret leaked into a body: {text}"
            );
        }
    }
    for jwt in &jwts {
        let signature = jwt.rsplit('.').next().unwrap();
        assert!(!logs.contains(signature), "a token leaked into the logs");
        for text in &bodies {
            assert!(!text.contains(signature), "a token leaked into a body");
        }
    }
}
