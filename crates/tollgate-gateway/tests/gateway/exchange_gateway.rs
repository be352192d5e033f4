//! The `gateway` example end to end: tollgate's real `ExchangeLayer` in front of the proxy.
//! One hostile request goes through both: credentials plus forged identity headers.
#![allow(clippy::unwrap_used)]

#[path = "../../examples/gateway.rs"]
#[allow(dead_code, unreachable_pub)]
mod gateway;

use crate::common::*;
use axum::body::Body;
use http::StatusCode;
use tollgate_gateway::OriginClient;

/// The `gateway` example on 127.0.0.1:0 in front of `origin`: its address, and the example's
/// issuer, service token and secret.
async fn start(
    origin: &TestOrigin,
) -> (
    std::net::SocketAddr,
    (
        tollgate_issue::Issuer,
        tollgate_issue::ServiceTokenRecord,
        tollgate_issue::ClientSecret,
    ),
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front = listener.local_addr().unwrap();
    let setup = gateway::setup(&format!("http://{front}")).await.unwrap();
    let app = gateway::app(&setup.0, &origin.url(), OriginClient::new().unwrap()).unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    (front, setup)
}

#[tokio::test]
async fn exchange_then_cookie_through_the_gateway() {
    let origin = origin().await;
    let (front, (_issuer, token, secret)) = start(&origin).await;
    let client = client();

    // Nothing outside /app is proxied; nothing unauthenticated reaches the origin.
    let anonymous = request(&format!("http://{front}/app/x"))
        .body(Body::empty())
        .unwrap();
    let (status, _) = text(client.request(anonymous).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(origin.accepts(), 0);

    let hostile = request(&format!("http://{front}/app/items?page=2"))
        .header("cf-access-client-id", &token.client_id)
        .header("cf-access-client-secret", secret.expose_secret())
        .header("cf_access_jwt_assertion", "forged")
        .header("cf-access-authenticated-user-email", "admin@example.com")
        .header("cookie", "CF_Authorization=forged; theme=dark")
        .body(Body::empty())
        .unwrap();
    let response = client.request(hostile).await.unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = origin.last();
    assert_eq!(seen.uri, "/items?page=2");
    let minted = seen.one("cf-access-jwt-assertion").unwrap();
    assert_eq!(minted.split('.').count(), 3, "a JWT");
    assert!(cookie.starts_with(&format!("CF_Authorization={minted};")));
    assert_eq!(
        seen.one("cookie"),
        Some(format!("theme=dark; CF_Authorization={minted}"))
    );
    assert_eq!(
        seen.one("cf-access-authenticated-user-email"),
        None,
        "a service token"
    );
    let flat = format!("{:?}", seen.headers);
    for leaked in [secret.expose_secret(), "forged", "admin@example.com"] {
        assert!(
            !flat.contains(leaked),
            "{leaked} reached the origin: {flat}"
        );
    }
    assert!(!flat.contains("cf-access-client-id"), "{flat}");

    // The cookie alone rides: the origin gets the same token.
    let riding = request(&format!("http://{front}/app/"))
        .header("cookie", format!("CF_Authorization={minted}"))
        .body(Body::empty())
        .unwrap();
    let (status, body) = text(client.request(riding).await.unwrap()).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    let seen = origin.last();
    assert_eq!(seen.uri, "/");
    assert_eq!(seen.one("cf-access-jwt-assertion"), Some(minted.clone()));
    assert_eq!(
        seen.one("cookie"),
        Some(format!("CF_Authorization={minted}"))
    );
    assert_eq!(seen.one("x-forwarded-for").as_deref(), Some("127.0.0.1"));
}

/// A `bypass` policy (here: loopback) lets a request with no credentials through to the origin
/// with no identity at all, as Cloudflare's Bypass does: no assertion, no `CF_Authorization`
/// cookie, none of the client's forged copies (a forged cookie is taken off, not refused).
/// Outside its rules, the 401 stands.
#[tokio::test]
async fn a_bypass_policy_reaches_the_origin_with_no_identity() {
    use tollgate_issue::{AppPolicy, PolicyDecision, PolicyRule, PolicyRules};

    let origin = origin().await;
    let (front, (issuer, _, _)) = start(&origin).await;
    let client = client();
    let bare = || {
        request(&format!("http://{front}/app/open"))
            .header("cf-access-jwt-assertion", "forged")
            .header("cf-access-authenticated-user-email", "admin@example.com")
            .header("cookie", "CF_Authorization=forged; theme=dark")
            .body(Body::empty())
            .unwrap()
    };
    let bypass = |net: &str| {
        let rules = PolicyRules::including(vec![PolicyRule::Ip {
            ip: net.parse().unwrap(),
        }]);
        move |policies: &mut Vec<AppPolicy>, now: i64| {
            policies.retain(|p| p.policy.decision != PolicyDecision::Bypass);
            policies.push(AppPolicy {
                precedence: 9,
                policy: tollgate_issue::PolicyRecord {
                    id: tollgate_issue::random_uuid(),
                    name: "office".into(),
                    decision: PolicyDecision::Bypass,
                    rules: rules.clone(),
                    reusable: false,
                    created_at: now,
                    updated_at: now,
                },
            });
            Ok(())
        }
    };
    issuer
        .apps()
        .edit_policies(gateway::APP_NAME, bypass("192.0.2.0/24"))
        .await
        .unwrap();
    let (status, _) = text(client.request(bare()).await.unwrap()).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "not from the bypassed network"
    );
    assert_eq!(origin.accepts(), 0);

    issuer
        .apps()
        .edit_policies(gateway::APP_NAME, bypass("127.0.0.0/8"))
        .await
        .unwrap();
    let (status, body) = text(client.request(bare()).await.unwrap()).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    let seen = origin.last();
    assert_eq!(seen.uri, "/open");
    assert_eq!(seen.one("cf-access-jwt-assertion"), None);
    assert_eq!(seen.one("cookie"), Some("theme=dark".to_owned()));
    let flat = format!("{:?}", seen.headers);
    for leaked in ["forged", "admin@example.com"] {
        assert!(
            !flat.contains(leaked),
            "{leaked} reached the origin: {flat}"
        );
    }
}
