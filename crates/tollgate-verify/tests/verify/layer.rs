//! VerifyLayer over real HTTP: an axum app on 127.0.0.1:0, reqwest as the client.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tollgate_core::{AccessIdentity, ManualClock, Rejection, TokenLocation};
use tollgate_test::{AUD, CLIENT_ID, ISS, JwksServer, NOW, keys, service_payload, user_payload};
use tollgate_verify::authorize::{email_domain, service_tokens};
use tollgate_verify::{
    ConfigErrorKind, KeySet, RemoteKeySource, StaticKeySource, Verifier, VerifyConfig, VerifyLayer,
};

/// Echoes what the handler sees: the identity and the identity headers.
async fn echo(identity: Option<AccessIdentity>, request: Request) -> Json<Value> {
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("cf"))
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    Json(json!({
        "identity": identity.map(|id| serde_json::to_value(id).unwrap()),
        "headers": headers,
    }))
}

fn static_verifier() -> Verifier {
    let k = keys();
    let clock = ManualClock::at_unix(NOW);
    Verifier::new(
        VerifyConfig::new(ISS).audience(AUD).clock(Arc::new(clock)),
        StaticKeySource::new(KeySet::from_jwks(vec![k[0].jwk(), k[1].jwk()])),
    )
    .unwrap()
}

async fn serve(layer: VerifyLayer) -> String {
    let app = Router::new().fallback(get(echo)).layer(layer);
    format!("{}/", tollgate_test::serve(app).await)
}

fn header<'a>(body: &'a Value, name: &str) -> Vec<&'a str> {
    body["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|pair| pair[0] == name)
        .map(|pair| pair[1].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn token_from_each_location() {
    let url = serve(VerifyLayer::new(static_verifier())).await;
    let client = reqwest::Client::new();
    let token = keys()[0].service_token(NOW, 3600);
    let requests = [
        client.get(&url).header("Cf-Access-Jwt-Assertion", &token),
        client.get(&url).header("cf-access-token", &token),
        client.get(&url).header(
            "cookie",
            format!("theme=dark; CF_Authorization={token}; x=1"),
        ),
    ];
    for request in requests {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["identity"]["common_name"], CLIENT_ID);
        assert_eq!(header(&body, "cf-access-jwt-assertion"), [token.as_str()]);
        assert!(header(&body, "cf-access-authenticated-user-email").is_empty());
    }
}

#[tokio::test]
async fn missing_and_invalid_tokens_answer_401_without_the_token() {
    let url = serve(VerifyLayer::new(static_verifier())).await;
    let client = reqwest::Client::new();
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer realm="Cloudflare Access""#
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["reason"], "missing_credentials");

    let k = keys();
    let forged = k[1].sign(&k[0].header(), &service_payload(NOW, 3600));
    let response = client
        .get(&url)
        .header("cf-access-token", &forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["reason"], "invalid_signature");
    for part in forged.split('.') {
        assert!(!text.contains(part), "the body echoes no part of the token");
    }

    // Sent twice: the same token is one token; two different ones are ambiguous, refused.
    let token = k[0].service_token(NOW, 3600);
    let response = client
        .get(&url)
        .header("cf-access-jwt-assertion", &token)
        .header("cf-access-jwt-assertion", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = client
        .get(&url)
        .header("cf-access-jwt-assertion", &token)
        .header("cf-access-jwt-assertion", k[0].service_token(NOW, 60))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["reason"], "ambiguous_credentials");
}

#[tokio::test]
async fn token_order_is_configurable() {
    assert_eq!(
        VerifyLayer::new(static_verifier())
            .with_token_order([])
            .unwrap_err()
            .kind(),
        ConfigErrorKind::InvalidLayer
    );
    assert!(
        VerifyLayer::new(static_verifier())
            .with_token_order([TokenLocation::Cookie, TokenLocation::Cookie])
            .is_err()
    );

    let layer = VerifyLayer::new(static_verifier())
        .with_token_order([TokenLocation::Cookie, TokenLocation::AccessTokenHeader])
        .unwrap();
    let url = serve(layer).await;
    let client = reqwest::Client::new();
    let token = keys()[0].service_token(NOW, 3600);
    // The assertion header is not a configured location.
    let response = client
        .get(&url)
        .header("cf-access-jwt-assertion", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // A broken cf-access-token beside the cookie: two different tokens, never one picked.
    let response = client
        .get(&url)
        .header("cookie", format!("CF_Authorization={token}"))
        .header("cf-access-token", "garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["reason"], "ambiguous_credentials");
    // A configured location holding the token: in.
    let response = client
        .get(&url)
        .header("cookie", format!("CF_Authorization={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn client_supplied_identity_headers_are_replaced() {
    let url = serve(VerifyLayer::new(static_verifier())).await;
    let client = reqwest::Client::new();
    let k = &keys()[0];
    let user = k.sign(&k.header(), &user_payload("jane@example.com", NOW, 3600));
    let response = client
        .get(&url)
        .header("cookie", format!("CF_Authorization={user}"))
        .header("Cf-Access-Authenticated-User-Email", "admin@example.com")
        .header("cf_access_authenticated_user_email", "root@example.com")
        .header("cf_access_jwt_assertion", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["identity"]["email"], "jane@example.com");
    assert_eq!(
        header(&body, "cf-access-authenticated-user-email"),
        ["jane@example.com"]
    );
    assert!(header(&body, "cf_access_authenticated_user_email").is_empty());
    assert!(header(&body, "cf_access_jwt_assertion").is_empty());
    assert_eq!(header(&body, "cf-access-jwt-assertion"), [user.as_str()]);
}

#[tokio::test]
async fn predicates_answer_403() {
    let k = &keys()[0];
    let user = k.sign(&k.header(), &user_payload("jane@example.com", NOW, 3600));
    let outsider = k.sign(&k.header(), &user_payload("eve@evil.example", NOW, 3600));
    let bot = k.service_token(NOW, 3600);

    let url =
        serve(VerifyLayer::new(static_verifier()).with_authorization(email_domain("example.com")))
            .await;
    let client = reqwest::Client::new();
    let status = |token: String| {
        let request = client.get(&url).header("cf-access-token", token);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(status(user.clone()).await, 200);
    assert_eq!(status(outsider.clone()).await, 403);
    assert_eq!(status(bot.clone()).await, 403);

    let url = serve(
        VerifyLayer::new(static_verifier())
            .with_authorization(service_tokens([CLIENT_ID]))
            .with_authorization(|id: &AccessIdentity| id.issuer() == ISS),
    )
    .await;
    let response = client
        .get(&url)
        .header("cf-access-token", &bot)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = client
        .get(&url)
        .header("cf-access-token", &user)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(!response.headers().contains_key("www-authenticate"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["reason"], "forbidden");
}

#[tokio::test]
async fn optional_mode_lets_anonymous_requests_through() {
    let url = serve(VerifyLayer::new(static_verifier()).optional()).await;
    let client = reqwest::Client::new();
    let response = client
        .get(&url)
        .header("cf-access-authenticated-user-email", "admin@example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["identity"], Value::Null);
    assert!(header(&body, "cf-access-authenticated-user-email").is_empty());

    let response = client
        .get(&url)
        .header("cf-access-token", "not.a.jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        401,
        "a token that is present must be valid"
    );
}

#[tokio::test]
async fn rejection_handler_is_replaceable() {
    let layer = VerifyLayer::new(static_verifier()).with_rejection_handler(|r: Rejection| {
        (StatusCode::IM_A_TEAPOT, r.kind().as_str()).into_response()
    });
    let url = serve(layer).await;
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 418);
    assert_eq!(response.text().await.unwrap(), "missing_credentials");
}

#[tokio::test]
async fn first_request_waits_for_keys_over_http() {
    let k = keys();
    let jwks = JwksServer::start(vec![k[0].jwk()]).await;
    let clock = ManualClock::at_unix(NOW);
    let verifier = Verifier::new(
        VerifyConfig::new(ISS).audience(AUD).clock(Arc::new(clock)),
        RemoteKeySource::new(&jwks.certs_url()).unwrap(),
    )
    .unwrap();
    let url = serve(VerifyLayer::new(verifier)).await;
    let client = reqwest::Client::new();
    let token = k[0].service_token(NOW, 3600);
    let responses = futures_util::future::join_all(
        (0..8).map(|_| client.get(&url).header("cf-access-token", &token).send()),
    )
    .await;
    for response in responses {
        assert_eq!(response.unwrap().status(), 200);
    }
    assert_eq!(
        jwks.hits(),
        1,
        "eight concurrent first requests share one fetch"
    );
}

#[tokio::test]
async fn extractor_without_the_layer_answers_500() {
    let app = Router::new().route(
        "/",
        get(|id: AccessIdentity| async move { id.name().to_owned() }),
    );
    let origin = tollgate_test::serve(app).await;
    let token = keys()[0].service_token(NOW, 3600);
    let response = reqwest::Client::new()
        .get(format!("{origin}/"))
        .header("cf-access-jwt-assertion", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500, "never runs unauthenticated");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["reason"], "misconfigured");
}
