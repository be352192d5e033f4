//! What the gateway logs when it refuses or an origin fails: the category, never a token, a
//! secret, a cookie or the origin's own words. A binary of its own: the capture is global.
#![allow(clippy::unwrap_used)]

#[path = "gateway/common/mod.rs"]
mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::*;
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tollgate_gateway::Proxy;
use tollgate_test::logs::LogCapture;
use tower::ServiceExt;

const SECRET: &str = "s3cret-0f-the-bot";

fn hostile(path: &str) -> http::Request<Body> {
    request(path)
        .header(
            "cf-access-client-id",
            "0123456789abcdef0123456789abcdef.access",
        )
        .header("cf-access-client-secret", SECRET)
        .header(
            "cookie",
            format!("CF_Authorization={TOKEN}; session=private-cookie"),
        )
        .header("authorization", "Bearer private-bearer")
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn refusals_and_origin_failures_log_categories_not_secrets() {
    let capture = LogCapture::global();

    // An origin answering nonsense full of its internals.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let garbage = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(b"ORIGIN-INTERNAL-TRACE at db.internal\r\n\r\n")
                .await;
        }
    });
    let slow = origin_with(Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            "late"
        }),
    ))
    .await;
    let dead = dead_port().await;

    let proxy = |origin: String| {
        Proxy::new(&origin)
            .unwrap()
            .with_response_timeout(Duration::from_millis(200))
            .with_body_limit(4)
    };
    let unauthenticated = proxy(slow.url()).oneshot(hostile("/")).await.unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::INTERNAL_SERVER_ERROR);
    for (origin, path, status) in [
        (format!("http://{garbage}"), "/", StatusCode::BAD_GATEWAY),
        (format!("http://{dead}"), "/", StatusCode::BAD_GATEWAY),
        (slow.url(), "/slow", StatusCode::GATEWAY_TIMEOUT),
    ] {
        let response = proxy(origin)
            .oneshot(authenticated(hostile(path), user()))
            .await
            .unwrap();
        assert_eq!(response.status(), status);
    }
    let mut too_large = hostile("/");
    *too_large.body_mut() = Body::from("more than four bytes");
    let response = proxy(slow.url())
        .oneshot(authenticated(too_large, user()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let logs = capture.text();
    for expected in [
        "misconfigured",
        "origin request failed",
        "origin_unreachable",
        "origin_timeout",
        "payload_too_large",
    ] {
        assert!(logs.contains(expected), "{expected} not logged:\n{logs}");
    }
    for secret in [
        SECRET,
        TOKEN,
        "CF_Authorization",
        "private-cookie",
        "private-bearer",
        "jane@example.com",
        "ORIGIN-INTERNAL",
    ] {
        assert!(!logs.contains(secret), "{secret} was logged:\n{logs}");
    }
}
