//! What reaches the protected handler through the `ExchangeLayer`: the application token in
//! `Cf-Access-Jwt-Assertion`, never the service token's credentials, and never identity headers
//! a client sent itself.

#![allow(clippy::unwrap_used)]

use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use tollgate::issue::AppSettings;
use tollgate_test::http::{Reply, RequestExt as _, serve, single_header_credentials};
use tollgate_test::issue::{APP, Harness};

#[tokio::test]
async fn service_token_credentials_never_reach_the_handler() {
    let h =
        Harness::start(AppSettings::new().read_service_tokens_from_header("Authorization")).await;
    // A handler that answers the names of the headers it received.
    let app = Router::new()
        .route(
            "/",
            get(|headers: HeaderMap| async move {
                Json(
                    headers
                        .keys()
                        .map(|name| name.as_str().to_owned())
                        .collect::<Vec<_>>(),
                )
            }),
        )
        .layer(h.issuer.exchange_layer(APP).unwrap());
    let url = format!("{}/", serve(app).await);
    let plain = reqwest::Client::new();
    let seen = |reply: Reply| {
        assert_eq!(reply.status, 200, "{}", reply.text);
        let names: Vec<String> = serde_json::from_value(reply.json).unwrap();
        assert!(
            names.iter().any(|n| n == "cf-access-jwt-assertion"),
            "{names:?}"
        );
        names
    };

    // The two headers.
    let names = seen(
        plain
            .get(&url)
            .credentials(&h.token.client_id, h.secret())
            .reply()
            .await,
    );
    for gone in ["cf-access-client-id", "cf-access-client-secret"] {
        assert!(
            !names.iter().any(|n| n == gone),
            "{gone} forwarded: {names:?}"
        );
    }

    // The application's single header.
    let json_credentials = single_header_credentials(&h.token.client_id, h.secret());
    let reply = plain
        .get(&url)
        .header("Authorization", &json_credentials)
        .reply()
        .await;
    let jwt = reply.cookie_token().unwrap().to_owned();
    let names = seen(reply);
    assert!(!names.iter().any(|n| n == "authorization"), "{names:?}");

    // An Authorization header that is not ours (no credentials in it) is left alone.
    let names = seen(
        plain
            .get(&url)
            .access_token(&jwt)
            .header("Authorization", "Bearer upstream")
            .reply()
            .await,
    );
    assert!(names.iter().any(|n| n == "authorization"), "{names:?}");
}

#[tokio::test]
async fn spoofed_identity_headers_never_reach_the_handler() {
    let h = Harness::start(AppSettings::new()).await;
    let plain = reqwest::Client::new();
    let spoof = |request: reqwest::RequestBuilder| {
        request
            .header("Cf-Access-Jwt-Assertion", "forged")
            .header("cf_access_jwt_assertion", "forged")
            .header("Cf-Access-Authenticated-User-Email", "forged@example.com")
            .header("cf_access_authenticated_user_email", "forged@example.com")
    };
    let anonymous = spoof(plain.get(h.url())).reply().await;
    assert_eq!(anonymous.status, 401, "spoofed headers are not credentials");
    let reply = spoof(h.with_credentials(&plain, h.secret())).reply().await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json["forged_seen"], false);
    assert_eq!(reply.json["email_header"], false);
    assert_eq!(reply.json["assertions"], 1);
    assert_ne!(reply.json["assertion"], "forged");
    h.verify_seen_independently().await;
}
