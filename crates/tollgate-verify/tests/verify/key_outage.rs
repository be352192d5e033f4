//! Fault drill (issue 11, part 5): the key endpoint down for simulated hours, seen through a
//! `VerifyLayer` on loopback and a manual clock. The last good keys keep verifying until
//! max-age + `max_stale`, then requests get 503 `keys_unavailable` (no key material in the
//! body); a token signed by a key that appeared during the outage is refused; when the endpoint
//! comes back, verification recovers and the new key is fetched, without a restart.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use tollgate_core::{ManualClock, RejectionKind};
use tollgate_test::flaky_certs::{FlakyCerts, Mode};
use tollgate_test::http::RequestExt as _;
use tollgate_test::{AUD, ISS, NOW, Reply, keys};
use tollgate_verify::{RemoteKeySource, Verifier, VerifyConfig, VerifyLayer};

const HOUR: i64 = 3600;
/// The endpoint's `Cache-Control: max-age`.
const MAX_AGE: i64 = HOUR;
/// How long past max-age the last good keys may serve.
const MAX_STALE: i64 = 6 * HOUR;

struct Drill {
    clock: ManualClock,
    verifier: Verifier,
    url: String,
    client: reqwest::Client,
}

impl Drill {
    fn now(&self) -> i64 {
        tollgate_core::clock::unix_seconds(tollgate_core::Clock::now(&self.clock))
    }

    fn set(&self, unix: i64) {
        self.clock
            .set(tollgate_core::clock::from_unix_seconds(unix));
    }

    /// GET the protected app with `token` in `Cf-Access-Jwt-Assertion`.
    async fn get(&self, token: &str) -> Reply {
        self.client
            .get(&self.url)
            .header("Cf-Access-Jwt-Assertion", token)
            .reply()
            .await
    }

    /// A fresh token signed by `key` now (ten minutes to live), so the verified-token cache
    /// cannot answer for it: every one is checked against the key set.
    fn fresh(&self, key: usize) -> String {
        keys()[key].service_token(self.now(), 600)
    }
}

/// Asserts `reply` is the 503 `keys_unavailable` refusal, holding no key or token.
fn assert_keys_unavailable(reply: &Reply, token: &str, at: &str) {
    assert_eq!(reply.code(), 503, "{at}: {}", reply.text);
    assert_eq!(reply.reason(), Some("keys_unavailable"), "{at}");
    let mut fields: Vec<&String> = reply.json.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(fields, ["error", "message", "reason"], "{at}: body shape");
    for k in keys() {
        let n = k.jwk()["n"].as_str().unwrap().to_owned();
        assert!(
            !reply.text.contains(&n[..40]),
            "{at}: key material in the body"
        );
    }
    let signature = token.rsplit('.').next().unwrap();
    assert!(
        !reply.text.contains(signature),
        "{at}: the token in the body"
    );
    assert!(!reply.text.contains("BEGIN"), "{at}: PEM in the body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_endpoint_down_for_hours() {
    let started = Instant::now();
    let k = keys();
    let mut certs = FlakyCerts::start(vec![k[0].jwk()], MAX_AGE as u64).await;
    let clock = ManualClock::at_unix(NOW);
    let config = VerifyConfig::new(ISS)
        .audience(AUD)
        .clock(Arc::new(clock.clone()))
        .max_stale(Duration::from_secs(MAX_STALE as u64));
    let verifier =
        Verifier::new(config, RemoteKeySource::new(&certs.certs_url()).unwrap()).unwrap();
    let app = Router::new()
        .fallback(get(|| async { "in" }))
        .layer(VerifyLayer::new(verifier.clone()));
    let drill = Drill {
        clock,
        verifier,
        url: format!("{}/", tollgate_test::serve(app).await),
        client: reqwest::Client::new(),
    };

    // Keys fetched at NOW; a long-lived token verified once is then a cache hit.
    let long_lived = k[0].service_token(NOW, 12 * HOUR);
    assert_eq!(drill.get(&long_lived).await.code(), 200);
    assert_eq!(drill.get(&drill.fresh(0)).await.code(), 200);
    assert_eq!(certs.hits(), 1);
    let bound = NOW + MAX_AGE + MAX_STALE;

    // The endpoint goes away: first refused connections, then two hours of 500s, then refused
    // again. Every ten simulated minutes, both tokens are tried up to the last second of the bound.
    certs.set_mode(Mode::Refuse).await;
    let mut hits_while_failing = 0;
    let mut t = NOW + 600;
    while t < bound {
        if t == NOW + 2 * HOUR {
            certs.set_mode(Mode::Fail(500)).await;
            hits_while_failing = certs.hits();
            // A key that appeared while the endpoint is down is never taken on trust.
            let rogue = drill.fresh(1);
            let reply = drill.get(&rogue).await;
            assert_eq!(
                reply.refusal(),
                (401, Some("unknown_key")),
                "new key while down"
            );
            let err = drill.verifier.verify(&rogue).await.unwrap_err();
            assert_eq!(err.kind(), RejectionKind::UnknownKey);
        }
        if t == NOW + 4 * HOUR {
            hits_while_failing = certs.hits() - hits_while_failing;
            certs.set_mode(Mode::Refuse).await;
        }
        drill.set(t);
        let at = format!("{:.2} h into the outage", (t - NOW) as f64 / HOUR as f64);
        let reply = drill.get(&drill.fresh(0)).await;
        assert_eq!(
            reply.code(),
            200,
            "{at}: a fresh token with the last good key"
        );
        assert_eq!(
            drill.get(&long_lived).await.code(),
            200,
            "{at}: cached token"
        );
        t = (t + 600).min(bound - 1).max(t + 1);
    }
    assert!(
        hits_while_failing >= 6,
        "verification kept trying the endpoint while it failed ({hits_while_failing} attempts)"
    );
    // The very last second of the bound: still served.
    drill.set(bound - 1);
    assert_eq!(drill.get(&drill.fresh(0)).await.code(), 200, "bound - 1 s");
    // What metrics read: the failed fetches, and the last good one from before the outage.
    let stats = drill.verifier.stats();
    assert!(stats.key_fetch_failures >= 6, "{stats:?}");
    let last_good = stats.last_key_fetch_success.unwrap();
    assert!(
        last_good < tollgate_core::clock::from_unix_seconds(NOW + 600),
        "{stats:?}"
    );

    // Past max-age + max_stale: 503, for fresh and cached tokens alike, for hours on end.
    for t in [
        bound,
        bound + 1,
        bound + 600,
        bound + HOUR,
        bound + 3 * HOUR,
    ] {
        drill.set(t);
        let at = format!("{} s past the bound", t - bound);
        let token = drill.fresh(0);
        assert_keys_unavailable(&drill.get(&token).await, &token, &at);
        assert_keys_unavailable(&drill.get(&long_lived).await, &long_lived, &at);
        let err = drill.verifier.verify(&token).await.unwrap_err();
        assert_eq!(err.kind(), RejectionKind::KeysUnavailable, "{at}");
        assert_eq!(err.status(), 503);
        let rogue = drill.fresh(1);
        assert_ne!(drill.get(&rogue).await.code(), 200, "{at}: new key");
    }

    // The endpoint comes back, now also publishing the new key: once the refetch cooldown has
    // passed, verification recovers on the same verifier, and the new kid is fetched.
    certs.set_keys(vec![k[0].jwk(), k[1].jwk()]);
    certs.set_mode(Mode::Serve).await;
    let before = certs.hits();
    drill.set(drill.now() + 11);
    assert_eq!(drill.get(&drill.fresh(0)).await.code(), 200, "recovered");
    assert_eq!(
        drill.get(&drill.fresh(1)).await.code(),
        200,
        "new key fetched"
    );
    let token = drill.fresh(1);
    assert_eq!(
        drill.verifier.verify(&token).await.unwrap().client_id(),
        Some(tollgate_test::CLIENT_ID)
    );
    assert_eq!(
        drill.get(&long_lived).await.code(),
        200,
        "cached token again"
    );
    let stats = drill.verifier.stats();
    assert!(
        stats.last_key_fetch_success.unwrap() >= tollgate_core::clock::from_unix_seconds(bound),
        "a good fetch after the outage: {stats:?}"
    );
    assert!(
        certs.hits() - before <= 2,
        "recovery cost {} fetches",
        certs.hits() - before
    );
    eprintln!(
        "key endpoint drill: {} fetch attempts answered while failing; wall time {:?}",
        hits_while_failing,
        started.elapsed()
    );
}
