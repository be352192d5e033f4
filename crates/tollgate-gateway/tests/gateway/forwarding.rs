//! Who reaches the origin, and exactly what it sees: identity, cookies, credentials, forwarded
//! and hop-by-hop headers, `Host`, path and query.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use crate::common::*;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use axum::routing::get;
use http::{HeaderValue, StatusCode, Version};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tollgate_gateway::{HostHeader, Proxy};
use tower::ServiceExt;

#[tokio::test]
async fn without_an_identity_nothing_reaches_the_origin() {
    let origin = origin().await;
    let proxy = Proxy::new(&origin.url()).unwrap();
    let hostile = request("/")
        .header("cf-access-jwt-assertion", TOKEN)
        .header("cookie", format!("CF_Authorization={TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let (status, body) = json(proxy.clone().oneshot(hostile).await.unwrap()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["reason"], "misconfigured");

    // Through a real server too, with the identity layer missing.
    let front = front(proxy.clone(), None).await;
    let response = client()
        .request(
            request(&format!("http://{front}/"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(origin.accepts(), 0, "the proxy never connected");

    // The same request with the identity goes through.
    let ok = authenticated(request("/").body(Body::empty()).unwrap(), user());
    assert_eq!(proxy.oneshot(ok).await.unwrap().status(), StatusCode::OK);
    assert_eq!(origin.requests(), 1);
}

#[tokio::test]
async fn an_identity_without_a_token_uses_the_layers_assertion_header_or_is_refused() {
    let origin = origin().await;
    let proxy = Proxy::new(&origin.url()).unwrap();
    let claims = tollgate_core::AccessClaims::service_token("aud", "https://t", "c.access", 0, 9);
    let tokenless = tollgate_core::AccessIdentity::from_claims(claims).unwrap();
    assert!(tokenless.token().is_none());

    let bare = authenticated(request("/").body(Body::empty()).unwrap(), tokenless.clone());
    let (status, body) = json(proxy.clone().oneshot(bare).await.unwrap()).await;
    assert_eq!(
        (status, &body["reason"]),
        (StatusCode::INTERNAL_SERVER_ERROR, &"misconfigured".into())
    );
    let twice = request("/")
        .header("cf-access-jwt-assertion", "one")
        .header("cf-access-jwt-assertion", "two")
        .body(Body::empty())
        .unwrap();
    let twice = authenticated(twice, tokenless.clone());
    assert_eq!(proxy.clone().oneshot(twice).await.unwrap().status(), 500);
    assert_eq!(origin.accepts(), 0);

    let set_by_layer = request("/")
        .header("cf-access-jwt-assertion", "minted.by.exchange")
        .body(Body::empty())
        .unwrap();
    let response = proxy
        .oneshot(authenticated(set_by_layer, tokenless))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = origin.last();
    assert_eq!(
        seen.one("cf-access-jwt-assertion").as_deref(),
        Some("minted.by.exchange")
    );
    assert_eq!(
        seen.one("cookie").as_deref(),
        Some("CF_Authorization=minted.by.exchange")
    );
}

#[tokio::test]
async fn the_origin_sees_what_cloudflare_hands_an_origin_and_nothing_the_client_forged() {
    let origin = origin().await;
    let proxy = Proxy::new(&origin.url()).unwrap();
    let hostile = request("/")
        .header("host", "app.example.com")
        .header("cf-access-jwt-assertion", "forged")
        .header("Cf_Access_Jwt_Assertion", "forged")
        .header("cf-access_jwt-assertion", "forged")
        .header("cf-access-authenticated-user-email", "admin@example.com")
        .header("CF_ACCESS_AUTHENTICATED_USER_EMAIL", "admin@example.com")
        .header(
            "cf-access-client-id",
            "0123456789abcdef0123456789abcdef.access",
        )
        .header("cf-access-client-secret", "s3cret")
        .header("cf_access_client_secret", "s3cret")
        .header("cf-access-token", "other.token")
        .header("cookie", "theme=dark; CF_Authorization=stale")
        .header("cookie", "CF_Authorization=older; lang=fr")
        .header("x-forwarded-for", "10.6.6.6")
        .header("X_Forwarded_For", "10.6.6.6")
        .header("x-forwarded-host", "evil.example")
        .header("x-forwarded-proto", "https")
        .header("forwarded", "for=10.6.6.6;proto=https")
        .header("x-real-ip", "10.6.6.6")
        .header("cf-connecting-ip", "10.6.6.6")
        .header("CF_Connecting_IP", "10.6.6.6")
        .header("true-client-ip", "10.6.6.6")
        .header("cf-ipcountry", "T1")
        .header("cf-ray", "forged-ray")
        .header("cf-visitor", "{\"scheme\":\"https\"}")
        .header("accept", "text/plain")
        .body(Body::empty())
        .unwrap();
    let response = proxy.oneshot(authenticated(hostile, user())).await.unwrap();
    assert_eq!(response.status(), 200);
    let seen = origin.last();
    assert_eq!(seen.one("cf-access-jwt-assertion").as_deref(), Some(TOKEN));
    assert_eq!(
        seen.one("cf-access-authenticated-user-email").as_deref(),
        Some("jane@example.com")
    );
    assert_eq!(
        seen.one("cookie").as_deref(),
        Some(format!("theme=dark; lang=fr; CF_Authorization={TOKEN}").as_str())
    );
    assert_eq!(seen.one("host").as_deref(), Some("app.example.com"));
    assert_eq!(
        seen.one("x-forwarded-host").as_deref(),
        Some("app.example.com")
    );
    assert_eq!(seen.one("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(
        seen.one("x-forwarded-for"),
        None,
        "no ConnectInfo: no address to claim"
    );
    assert_eq!(seen.one("accept").as_deref(), Some("text/plain"));
    for (name, _) in &seen.headers {
        let name = name.as_str().replace('_', "-");
        assert!(
            !matches!(
                name.as_str(),
                "cf-access-client-id"
                    | "cf-access-client-secret"
                    | "cf-access-token"
                    | "forwarded"
                    | "x-real-ip"
                    | "cf-connecting-ip"
                    | "true-client-ip"
                    | "cf-ipcountry"
                    | "cf-ray"
                    | "cf-visitor"
            ),
            "{name} reached the origin: {:?}",
            seen.headers
        );
    }
    let flat = format!("{:?}", seen.headers);
    for forged in [
        "forged",
        "admin@example.com",
        "s3cret",
        "stale",
        "older",
        "other.token",
        "10.6.6.6",
        "evil",
    ] {
        assert!(
            !flat.contains(forged),
            "{forged} reached the origin: {flat}"
        );
    }
}

#[tokio::test]
async fn a_service_identity_sends_no_email_and_the_forged_one_goes() {
    let origin = origin().await;
    let proxy = Proxy::new(&origin.url()).unwrap();
    let forged = request("/")
        .header("cf-access-authenticated-user-email", "admin@example.com")
        .body(Body::empty())
        .unwrap();
    proxy
        .oneshot(authenticated(forged, service()))
        .await
        .unwrap();
    let seen = origin.last();
    assert_eq!(seen.one("cf-access-authenticated-user-email"), None);
    assert_eq!(seen.one("cf-access-jwt-assertion").as_deref(), Some(TOKEN));
    assert_eq!(
        seen.one("cookie").as_deref(),
        Some(format!("CF_Authorization={TOKEN}").as_str())
    );
}

#[tokio::test]
async fn hop_by_hop_fields_go_both_ways_but_te_trailers_stays() {
    let origin = origin_with(Router::new().route(
        "/hop",
        get(|| async {
            (
                [
                    ("connection", "x-origin-hop"),
                    ("x-origin-hop", "secret"),
                    ("keep-alive", "timeout=5"),
                    ("proxy-authenticate", "Basic realm=\"origin\""),
                    ("trailer", "x-checksum"),
                    ("upgrade", "h2c"),
                    ("x-end-to-end", "kept"),
                ],
                "hop",
            )
        }),
    ))
    .await;
    let proxy = Proxy::new(&origin.url()).unwrap();
    let hostile = request("/hop")
        .header("connection", "keep-alive, X-Client-Hop")
        .header("x-client-hop", "1")
        .header("keep-alive", "timeout=99")
        .header("proxy-connection", "keep-alive")
        .header("te", "trailers, deflate")
        .header("trailer", "x-sum")
        .header("upgrade", "h2c")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .header("x-end-to-end", "kept")
        .body(Body::empty())
        .unwrap();
    let response = proxy.oneshot(authenticated(hostile, user())).await.unwrap();
    let headers = response.headers().clone();
    let (status, body) = text(response).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "hop"));
    for name in [
        "x-origin-hop",
        "keep-alive",
        "proxy-authenticate",
        "trailer",
        "upgrade",
    ] {
        assert!(!headers.contains_key(name), "{name} came back: {headers:?}");
    }
    assert!(
        headers
            .get("connection")
            .is_none_or(|v| v != "x-origin-hop")
    );
    assert_eq!(headers["x-end-to-end"], "kept");

    let seen = origin.last();
    for name in [
        "x-client-hop",
        "keep-alive",
        "proxy-connection",
        "trailer",
        "upgrade",
        "proxy-authorization",
    ] {
        assert!(
            seen.one(name).is_none(),
            "{name} reached the origin: {:?}",
            seen.headers
        );
    }
    assert_eq!(seen.one("te").as_deref(), Some("trailers"));
    assert_eq!(seen.one("x-end-to-end").as_deref(), Some("kept"));
}

#[tokio::test]
async fn paths_are_prefixed_queries_kept_and_host_rewritten_on_request() {
    let origin = origin().await;
    let proxy = Proxy::new(&format!("{}/api/", origin.url())).unwrap();
    let req = request("/users/7?expand=all&x=%20y")
        .header("host", "app.example.com")
        .body(Body::empty())
        .unwrap();
    proxy
        .clone()
        .oneshot(authenticated(req, user()))
        .await
        .unwrap();
    let seen = origin.last();
    assert_eq!(seen.uri, "/api/users/7?expand=all&x=%20y");
    assert_eq!(seen.one("host").as_deref(), Some("app.example.com"));

    let rewriting = proxy
        .with_host(HostHeader::Origin)
        .with_forwarded_proto(http::uri::Scheme::HTTPS);
    let req = request("/")
        .header("host", "app.example.com")
        .body(Body::empty())
        .unwrap();
    rewriting.oneshot(authenticated(req, user())).await.unwrap();
    let seen = origin.last();
    assert_eq!(seen.uri, "/api/");
    assert_eq!(seen.one("host"), Some(origin.addr.to_string()));
    assert_eq!(
        seen.one("x-forwarded-host").as_deref(),
        Some("app.example.com")
    );
    assert_eq!(seen.one("x-forwarded-proto").as_deref(), Some("https"));
}

/// Through a real server: `X-Forwarded-For` is the socket's peer, whatever the client claims.
#[tokio::test]
async fn x_forwarded_for_is_the_peer_address() {
    let origin = origin().await;
    let front = front(Proxy::new(&origin.url()).unwrap(), Some(user())).await;
    let req = request(&format!("http://{front}/"))
        .header("x-forwarded-for", "203.0.113.9")
        .header("cf-connecting-ip", "203.0.113.9")
        .body(Body::empty())
        .unwrap();
    let response = client().request(req).await.unwrap();
    assert_eq!(response.status(), 200);
    let seen = origin.last();
    assert_eq!(seen.one("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    assert_eq!(seen.one("cf-connecting-ip").as_deref(), Some("127.0.0.1"));
    assert_eq!(seen.one("host"), Some(front.to_string()));
    assert_eq!(seen.version, Version::HTTP_11);
}

/// An HTTP/2 client sends `:authority` and no `Host`: the origin still gets a `Host` (over
/// HTTP/1.1) and `X-Forwarded-Host`.
#[tokio::test]
async fn an_http2_client_authority_becomes_host() {
    let origin = origin().await;
    let front = front(Proxy::new(&origin.url()).unwrap(), Some(user())).await;
    let h2: Client<_, Body> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let req = request(&format!("http://{front}/h2?q=1"))
        .version(Version::HTTP_2)
        .header("x-test", HeaderValue::from_static("h2"))
        .body(Body::empty())
        .unwrap();
    assert!(req.headers().get("host").is_none());
    let response = h2.request(req).await.unwrap();
    assert_eq!(response.status(), 200, "{response:?}");
    assert_eq!(response.version(), Version::HTTP_2);
    let seen = origin.last();
    assert_eq!(seen.version, Version::HTTP_11);
    assert_eq!(seen.uri, "/h2?q=1");
    assert_eq!(seen.one("host"), Some(front.to_string()));
    assert_eq!(seen.one("x-forwarded-host"), Some(front.to_string()));
    assert_eq!(seen.one("x-test").as_deref(), Some("h2"));
}

/// The peer address the front saw reaches handlers in front of the proxy too (sanity check of
/// the fixture: `ConnectInfo` is there).
#[tokio::test]
async fn the_front_fixture_serves_with_connect_info() {
    let app = Router::new().route(
        "/",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
            peer.ip().to_string().into_response()
        }),
    );
    let front = serve(app).await;
    let response = client()
        .request(
            request(&format!("http://{front}/"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(text(response).await.1, "127.0.0.1");
}

#[tokio::test]
async fn connect_is_refused_without_connecting() {
    let origin = origin().await;
    let proxy = Proxy::new(&origin.url()).unwrap();
    let tunnel = request("app.example.com:443")
        .method("CONNECT")
        .body(Body::empty())
        .unwrap();
    let response = proxy.oneshot(authenticated(tunnel, user())).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(origin.accepts(), 0);
}
