//! The servers compared: each an axum `Router` with the same handler on its own loopback
//! listener, all on one single-threaded runtime pinned to the server core.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use aws_lc_rs::digest;
use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt as _;
use http::{HeaderValue, StatusCode, header};
use tollgate::issue::{AppSettings, Issuer, KeyStore, MemoryStore, TokenDuration};
use tollgate::verify::{KeySet, StaticKeySource, Verifier, VerifyConfig, VerifyLayer};
use tollgate_test::claims::{AUD, ISS};

use crate::client;
use crate::tokens::{Fixture, HandClaims, HandSigner, HandVerifier, unix_now};

/// One server of the comparison.
pub(crate) struct Variant {
    pub(crate) name: &'static str,
    /// The variant this one is also compared with (besides bare axum).
    pub(crate) baseline: Option<&'static str>,
    pub(crate) addr: SocketAddr,
    /// The requests the load sends it, in turn.
    pub(crate) requests: Vec<Vec<u8>>,
    /// The status of an answered request (401 for the refused exchanges).
    pub(crate) expected: u16,
}

/// The tokens prepared before the servers start.
pub(crate) struct Inputs {
    pub(crate) user_token: String,
    /// Distinct valid tokens for the cache flood (more than the flood cache holds).
    pub(crate) flood: Vec<String>,
    pub(crate) flood_capacity: usize,
}

async fn ok() -> &'static str {
    "ok"
}

pub(crate) async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    // Every server in the comparison answers without a Nagle delay.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

fn base() -> Router {
    Router::new().route("/", get(ok))
}

pub(crate) async fn verifier(fixture: &Fixture, capacity: usize) -> Verifier {
    let source = StaticKeySource::new(KeySet::from_jwks(vec![fixture.jwk.clone()]));
    let config = VerifyConfig::new(ISS)
        .audience(AUD)
        .cache_capacity(capacity);
    let verifier = Verifier::new(config, source).expect("a valid verifier configuration");
    verifier.refresh().await.expect("static keys load");
    verifier
}

/// The naive cache of the issue's table: SHA-256 of the token, `RwLock<HashMap>`, the
/// hand-written verifier on a miss.
struct NaiveCache {
    verifier: HandVerifier,
    map: RwLock<HashMap<[u8; 32], Arc<HandClaims>>>,
}

impl NaiveCache {
    fn lookup(&self, token: &str) -> Option<Arc<HandClaims>> {
        let mut key = [0u8; 32];
        key.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
        if let Some(hit) = self.map.read().ok()?.get(&key) {
            return Some(hit.clone());
        }
        let claims = self.verifier.verify(token, unix_now())?;
        self.map.write().ok()?.insert(key, claims.clone());
        Some(claims)
    }
}

fn assertion(request: &Request) -> Option<&str> {
    request
        .headers()
        .get("cf-access-jwt-assertion")?
        .to_str()
        .ok()
}

/// Builds and starts every variant. Runs on the server runtime.
pub(crate) async fn start(fixture: Arc<Fixture>, inputs: Inputs) -> Vec<Variant> {
    let user = vec![client::get(&[(
        "Cf-Access-Jwt-Assertion",
        inputs.user_token.as_str(),
    )])];
    let mut variants = Vec::new();
    let mut add = |name, baseline, addr, requests: &Vec<Vec<u8>>| {
        variants.push(Variant {
            name,
            baseline,
            addr,
            requests: requests.clone(),
            expected: 200,
        });
    };

    add("bare axum", None, serve(base()).await, &user);

    let noop = base().layer(middleware::from_fn(|req: Request, next: Next| {
        next.run(req)
    }));
    add("from_fn no-op", None, serve(noop).await, &user);

    let naive = Arc::new(NaiveCache {
        verifier: fixture.hand_verifier(),
        map: RwLock::new(HashMap::new()),
    });
    let naive = base().layer(middleware::from_fn(move |mut req: Request, next: Next| {
        let naive = naive.clone();
        async move {
            match assertion(&req).and_then(|token| naive.lookup(token)) {
                Some(claims) => {
                    req.extensions_mut().insert(claims);
                    next.run(req).await
                }
                None => StatusCode::UNAUTHORIZED.into_response(),
            }
        }
    }));
    add(
        "naive cache (RwLock<HashMap>)",
        None,
        serve(naive).await,
        &user,
    );

    let hit = base().layer(VerifyLayer::new(verifier(&fixture, 10_000).await));
    add("VerifyLayer, cache hit", None, serve(hit).await, &user);

    let hand = Arc::new(fixture.hand_verifier());
    let hand = base().layer(middleware::from_fn(move |mut req: Request, next: Next| {
        let hand = hand.clone();
        async move {
            match assertion(&req).and_then(|token| hand.verify(token, unix_now())) {
                Some(claims) => {
                    req.extensions_mut().insert(claims);
                    next.run(req).await
                }
                None => StatusCode::UNAUTHORIZED.into_response(),
            }
        }
    }));
    add("hand-written verify", None, serve(hand).await, &user);

    let miss = base().layer(VerifyLayer::new(verifier(&fixture, 0).await));
    add(
        "VerifyLayer, cache off",
        Some("hand-written verify"),
        serve(miss).await,
        &user,
    );

    let flood: Vec<Vec<u8>> = inputs
        .flood
        .iter()
        .map(|t| client::get(&[("Cf-Access-Jwt-Assertion", t.as_str())]))
        .collect();
    let off = base().layer(VerifyLayer::new(verifier(&fixture, 0).await));
    add(
        "flood of distinct tokens, cache off",
        None,
        serve(off).await,
        &flood,
    );
    let full = base().layer(VerifyLayer::new(
        verifier(&fixture, inputs.flood_capacity).await,
    ));
    add(
        "flood of distinct tokens, cache full",
        Some("flood of distinct tokens, cache off"),
        serve(full).await,
        &flood,
    );

    let (issuer, pkcs8, kid, client_id, secret) = issuer().await;
    let exchange_addr = serve(base().layer(issuer.exchange_layer("bench").expect("the app"))).await;
    let exchange = vec![client::get(&[
        ("CF-Access-Client-Id", client_id.as_str()),
        ("CF-Access-Client-Secret", secret.as_str()),
    ])];
    let cookie = first_cookie(exchange_addr, &exchange[0]).await;
    let reuse = vec![client::get(&[("Cookie", cookie.as_str())])];
    add("ExchangeLayer, cookie reuse", None, exchange_addr, &reuse);

    let signer = Arc::new(HandSigner::from_pkcs8(&pkcs8, &kid));
    let sign = base().layer(middleware::from_fn(move |mut req: Request, next: Next| {
        let signer = signer.clone();
        async move {
            let token = signer.mint("bench.access");
            let Ok(value) = HeaderValue::from_str(&token) else {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            let cookie = HeaderValue::from_str(&format!(
                "CF_Authorization={token}; Path=/; Secure; HttpOnly; SameSite=Lax"
            ));
            req.headers_mut().insert("cf-access-jwt-assertion", value);
            let mut response: Response = next.run(req).await;
            if let Ok(cookie) = cookie {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
    }));
    add("per-request RS256 sign", None, serve(sign).await, &exchange);
    add(
        "ExchangeLayer, exchange",
        Some("per-request RS256 sign"),
        exchange_addr,
        &exchange,
    );
    // Keep the issuer (and its background tasks) for the whole run.
    std::mem::forget(issuer);
    variants.extend(crate::logged::start().await);
    variants
}

/// An issuer on a memory store with one application and one service token; answers the
/// issuer, its signing key (PKCS#8, kid) and the token's credentials.
pub(crate) async fn issuer() -> (Issuer, Vec<u8>, String, String, String) {
    let store = Arc::new(MemoryStore::new());
    let issuer = Issuer::builder("team.example.com")
        .store(store.clone())
        .build()
        .await
        .expect("an issuer on a memory store");
    issuer
        .apps()
        .create("bench", AppSettings::new())
        .await
        .expect("create the app");
    let (token, secret) = issuer
        .tokens()
        .create("bench-bot", TokenDuration::default())
        .await
        .expect("create the token");
    let ring = store.load_ring().await.expect("the key ring").1;
    let key = &ring[0];
    (
        issuer,
        key.private_key_pkcs8.clone(),
        key.kid.clone(),
        token.client_id,
        secret.expose_secret().to_owned(),
    )
}

/// Exchanges once and answers the `CF_Authorization=…` pair of the `Set-Cookie`.
pub(crate) async fn first_cookie(addr: SocketAddr, request: &[u8]) -> String {
    let (status, head) = client::once(addr, request)
        .await
        .expect("the first exchange");
    assert_eq!(status, 200, "the first exchange failed: {head}");
    head.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie")
                .then(|| value.trim().split(';').next().unwrap_or("").to_owned())
        })
        .expect("the exchange sets a cookie")
}
